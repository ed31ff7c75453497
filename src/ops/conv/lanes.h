/*
 * Register blocking shared by the one-channel and direct kernels (not
 * public API): vectors of several lanes (GCC vector extensions), blocks of
 * channels held in registers.  Every lane count is a parameter of the
 * element size ES and the ISA level V (NB_V inside a variant,
 * NB_LANE_LEVEL(p->isa) outside), never a copy of a kernel: the blocks,
 * and with them the packed layouts and workspaces that follow them, are
 * the ones of the level the plan was made for.
 */
#ifndef NB_CONV_LANES_H
#define NB_CONV_LANES_H

#include <string.h>

/* the level whose blocks a plan of ISA level isa runs: its own in a build
 * with the ISA variants, else the baseline's (the one variant every level
 * then runs) */
#if defined(NB_MULTIVERSION)
#define NB_LANE_LEVEL(isa) ((isa) >= 2 ? 2 : (isa) < 0 ? 0 : (isa))
#else
#define NB_LANE_LEVEL(isa) ((void)(isa), 0)
#endif

#define D1_VW 8 /* lanes below AVX-512, and of dp_unpack's 8 x 8 transposes */
#define D1_KW 8 /* the widest kernel the one-channel path takes */
/* lanes per vector of the one-channel and transposed kernels: a 512-bit
 * register of floats at AVX-512; else D1_VW (the AVX2 variant maps 8 floats
 * to one register and 8 doubles to two, the baseline to several; doubles
 * at AVX-512 fill one zmm) */
#define D1_VW_OF(es, v) ((v) == 2 && (es) == 4 ? 16 : D1_VW)

/* The one-channel forward: D1_OB output channels by 2 D1_VW_OF vectors of
 * pixels (12 accumulators: one ymm each at AVX2, one zmm at AVX-512) */
#define D1_OB 6
#define D1_PX(es, v) (2 * D1_VW_OF(es, v))

/* The stride-1 input gradient (dt_block): DT_OB_OF channels of dx by
 * DT_PX pixels of a row, DT_NV_OF vectors of D1_VW_OF lanes each: 6 x 2 x 8
 * below AVX-512; at AVX-512, whose 32 registers hold more, 16 channels by
 * one zmm of 16 floats or 12 by two of 8 doubles (16 or 24 accumulators).
 * The pixel block is the same at every level (the policy's rules and dy's
 * padded rows do not depend on it); the channel block sets the flipped
 * weights' layout. */
#define DT_PX 16
#define DT_NV_OF(es, v) (DT_PX / D1_VW_OF(es, v))
#define DT_OB_OF(es, v) ((v) == 2 ? ((es) == 4 ? 16 : 12) : 6)
#define DT_OB_MAX 16

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

/* The weight gradient by rows (CONV_PATH_DIRECT_ROWS): DRW_OB_OF output
 * channels by the kW taps of one kernel row, each a vector of D1_VW_OF
 * lanes of pixels' partial sums: 8 x 3 (24 zmm accumulators) at AVX-512,
 * 3 x 3 below it (9 vectors: 9 ymm of floats at AVX2, twice as many
 * registers for the baseline's floats and AVX2's doubles), fewer channels
 * for 5-wide kernels; a kernel row of DRW_KW_MAX taps at most at a time. */
#define DRW_OB_OF(v, kw)                                                                           \
	((((v) == 2 ? 24 : 9) / (kw)) > 8   ? 8                                                    \
	 : (((v) == 2 ? 24 : 9) / (kw)) < 1 ? 1                                                    \
	                                    : (((v) == 2 ? 24 : 9) / (kw)))
#define DRW_KW_MAX 7 /* the taps of a kernel row it holds at a time */

/* keeps vector v in a register from here on: an empty asm that GCC must
 * assume reads and changes it (x86 vector registers: "v"), so a load is
 * not folded into every instruction that uses it; nothing elsewhere */
#if defined(__GNUC__) && defined(__x86_64__)
#define NB_IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define NB_IN_REGISTER(v) ((void)0)
#endif

/* v = the values at p (unaligned) that fill v; a macro: a function
 * returning a vector would change the ABI between the ISA variants */
#define D1_LOAD(v, p) memcpy(&(v), (p), sizeof(v))

#endif
