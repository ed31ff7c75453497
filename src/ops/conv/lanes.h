/*
 * Register blocking shared by the one-channel and direct kernels (not
 * public API): vectors of NB_LANE_VW elements (GCC vector extensions; the
 * AVX2 clone maps one to a register of 8 floats, the baseline clone to
 * several), blocks of channels held in registers.
 */
#ifndef NB_CONV_LANES_H
#define NB_CONV_LANES_H

#include <string.h>

#define D1_OB 6
#define D1_VW 8
#define D1_KW 8 /* the widest kernel the one-channel path takes */
_Static_assert(D1_VW == 8, "dp_unpack transposes 8 x 8 blocks");

/* the direct kernels: 2 D1_VW channels in the lanes of two vectors */
#define DC_OB (2 * D1_VW)
#define DC_NP(T) ((int)(24 / sizeof(T))) /* pixels per forward block: 6 f32, 3 f64 */
#define DC_TB(T) ((int)(24 / sizeof(T))) /* taps per weight-gradient block */
#define DC_MAX 6

/* v = the D1_VW values at p (unaligned); a macro: a function returning a
 * vector would change the ABI between the clones */
#define D1_LOAD(v, p) memcpy(&(v), (p), sizeof(v))

#endif
