/*
 * Convolution of a single input channel (CONV_PATH_ONE_CHANNEL): one
 * group, stride 1, dilation 1 (docs/conv.md).  The forward of a
 * single-channel image (LeNet's first layer: 1 -> 6, 5x5) is a GEMM with
 * K = kH kW (25): im2col copies the image 25 times for a thin product.
 * Here it runs on a zero-padded copy xp of the plane instead:
 *   forward      y[n,o,i,j] = b[o] + sum_{m,k} w[o,0,m,k] xp[n, i + m, j + k]
 *                D1_OB output channels by 2 vectors of pixels held in
 *                registers (16 pixels; 32 floats at AVX-512);
 *   weight grad  dw[o,0,m,k] = sum_{n,i,j} dy[n,o,i,j] xp[n, i + m, j + k]
 *                (the forward is linear in w; kW 3 or 5): two channels' kW
 *                taps in registers over the whole image, a vector of the
 *                level's lanes each, summed over a thread's images before
 *                the lanes are added.
 * The input gradient (its adjoint in x) goes to im2col or the direct
 * kernels.  Measured on LeNet's conv1 (batch 64, best of four alternating
 * runs), this vs im2col: forward 0.19 vs 0.28 ms on two threads (0.35 vs
 * 0.32 on one), weight gradient 0.18 vs 0.20 ms (0.32 vs 0.34 on one).
 */
/* The kernels here are chains of multiply-adds held in registers: let GCC
 * fuse them into FMA instructions in the AVX2 and AVX-512 variants (ISO C mode keeps
 * contraction off, which doubles the arithmetic instructions and the
 * latency of each accumulation).  The variants then round differently from the baseline, by
 * an ulp per product; results stay deterministic on one machine. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif

#include "ops/conv/onechan.h"

#include <omp.h>
#include <string.h>

typedef nb__conv_geom geom;

typedef struct d1geom {
	int64_t hp, wp, owr, ob; /* padded plane; output row rounded up to D1_PX; O to D1_OB */
	int64_t o2;              /* O rounded up to 2 (the weight gradient's channel pairs) */
} d1geom;

/* the geometry for blocks of px pixels: the forward's D1_PX of its level,
 * 2 D1_VW for the weight gradient */
static d1geom d1_of(const geom *g, int64_t px)
{
	d1geom d = {.owr = (g->ow + px - 1) / px * px,
	            .ob = (g->o + D1_OB - 1) / D1_OB * D1_OB,
	            .o2 = (g->o + 1) / 2 * 2};
	d.wp = d.owr + D1_KW; /* a tap's window stays in its row */
	d.hp = g->oh + g->kh - 1;
	return d;
}

/* bytes of one thread's slice: the padded plane; for the weight gradient
 * also two padded dy planes, a private dW and its vector sums (the level's
 * lanes for each weight of O rounded to 2 channels) */
static size_t d1_slice(const geom *g, const nb__conv_plan *p)
{
	const d1geom d = d1_of(g, p->pass == CONV_PASS_FORWARD ? D1_PX(p->es, NB_LANE_LEVEL(p->isa))
	                                                       : 2 * D1_VW);
	size_t b = (size_t)(d.hp * d.wp);
	if (p->pass != CONV_PASS_WEIGHT_GRAD)
		return nb__align_up(b * p->es);
	b = nb__align_up((b + (size_t)(2 * g->oh * d.owr + g->o * g->kh * g->kw)) * p->es);
	return b +
	       nb__align_up(
	           (size_t)(d.o2 * g->kh * g->kw * D1_VW_OF(p->es, NB_LANE_LEVEL(p->isa))) * p->es);
}

/* the forward's weights, [O / D1_OB][kH kW][D1_OB] (zeros past O) */
static size_t d1_wbytes(const geom *g, const nb__conv_plan *p)
{
	const size_t b = (size_t)(d1_of(g, 2 * D1_VW).ob * g->kh * g->kw) * p->es;
	return p->pass == CONV_PASS_FORWARD ? nb__align_up(b) : 0;
}

size_t nb__onechan_workspace(const nb__conv_geom *g, const nb__conv_plan *p)
{
	return d1_wbytes(g, p) + (size_t)p->threads * d1_slice(g, p);
}

/* NB_IN_REGISTER where a d1vec is one AVX2 register */
#define D1_PIN_f32(v) NB_IN_REGISTER(v)
#define D1_PIN_f64(v) ((void)(v))

#define NB_VARIANTS_IMPL "ops/conv/onechan_impl.h"
#include "ops/variants.h"
