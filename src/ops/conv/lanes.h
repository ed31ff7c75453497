/*
 * Register blocking shared by the one-channel and direct kernels (not
 * public API): vectors of NB_LANE_VW elements (GCC vector extensions; the
 * AVX2 variant maps one to a register of 8 floats, the baseline to
 * several), blocks of channels held in registers.
 */
#ifndef NB_CONV_LANES_H
#define NB_CONV_LANES_H

#include <string.h>

#define D1_OB 6
#define D1_VW 8
#define D1_KW 8 /* the widest kernel the one-channel path takes */
_Static_assert(D1_VW == 8, "dp_unpack transposes 8 x 8 blocks");

/* the direct kernels: DC_OB channels in the lanes of DC_NV(T) vectors of
 * DC_VW(T) lanes each, the vector width a parameter of the ISA level
 * (NB_V, ops/variants.h): one 512-bit register at AVX-512 (16 floats, 8
 * doubles), else D1_VW lanes (the AVX2 variant maps 8 floats to a
 * register, the baseline to several).  DC_NP(T) pixels per forward block
 * and DC_TB(T) taps per weight-gradient block keep 12 accumulators of a
 * register's width: 12 pixels of 16 floats at AVX-512, 6 of 2 x 8 at
 * AVX2, 3 doubles' blocks.  Only the blocks in registers differ; the
 * packed layouts ([.][DC_OB]) are the same at every level. */
#define DC_OB (2 * D1_VW)
#define DC_VW(T) (NB_V == 2 ? (int)(64 / sizeof(T)) : D1_VW)
#define DC_NV(T) (DC_OB / DC_VW(T))
#define DC_NP(T) (NB_V == 2 ? 12 / DC_NV(T) : (int)(24 / sizeof(T)))
#define DC_TB(T) DC_NP(T)
#define DC_MAX 12 /* the most of either */

/* v = the D1_VW values at p (unaligned); a macro: a function returning a
 * vector would change the ABI between the ISA variants */
#define D1_LOAD(v, p) memcpy(&(v), (p), sizeof(v))

#endif
