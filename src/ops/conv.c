/*
 * 2-D convolution (cross-correlation, as deep-learning frameworks define
 * it), NCHW input, OIHW weight, optional bias; strides, explicit / valid /
 * same padding, dilation and groups.  See docs/conv.md for the maths.
 *
 *   conv2d(x, w[, b])               y = W * col(x) (+ b)          im2col + GEMM
 *   conv2d_backward_input(dy, w)    dx = col2im(W^T dy)           transposed conv
 *   conv2d_backward_weight(dy, x)   dW = sum_n dy_n col(x_n)^T
 *   conv2d_backward_bias(dy)        db = sum over N, H, W of dy
 *
 * The two backward ops are linear in both inputs and adjoint to the
 * forward, so their VJPs are the other two ops again: second derivatives
 * work.  Depthwise convolutions (C/groups == 1) use direct loops instead
 * of im2col.  Attributes: see conv.h.
 */
/* The kernels here are chains of multiply-adds held in registers: let GCC
 * fuse them into FMA instructions in the AVX2 clone (ISO C mode keeps
 * contraction off, which doubles the arithmetic instructions and the
 * latency of each accumulation).  The clones then round differently, by
 * an ulp per product; results stay deterministic on one machine. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif

#include "ops/conv.h"
#include "ops/winograd.h"

#include <blis.h>
#include <omp.h>

/* Geometry of one convolution, whichever of the three ops holds it. */
typedef struct geom {
	int64_t n, c, h, w; /* input */
	int64_t o, cg, kh, kw; /* weight [O, C/groups, kH, kW] */
	int64_t oh, ow;     /* output */
	int64_t sh, sw, pt, pl, pb, pr, dh, dw;
	int64_t groups, og; /* og = O / groups */
	int algo;
} geom;

/* The conv op reads x and w directly; backward_input knows w and the
 * gradient, plus H, W from the attributes; backward_weight knows x and the
 * gradient, plus kH, kW.  Shapes must be 4-D (the shape rules check first). */
static geom geom_of(const nb_tensor *t)
{
	const int64_t *a = t->a.i;
	geom g = {.sh = a[A_SH], .sw = a[A_SW], .pt = a[A_PT], .pl = a[A_PL], .pb = a[A_PB],
	          .pr = a[A_PR], .dh = a[A_DH], .dw = a[A_DW], .groups = a[A_GROUPS],
	          .algo = (int)a[A_ALGO]};
	const int64_t *s0 = t->in[0]->shape.d, *s1 = t->in[1]->shape.d;
	const int64_t *x = s0, *w = s1;
	int64_t xd[4], wd[4];
	if (t->op == NB_OP_CONV2D_BACKWARD_INPUT) {
		x = xd;
		xd[0] = s0[0], xd[1] = s1[1] * g.groups, xd[2] = a[A_D0], xd[3] = a[A_D1];
	} else if (t->op == NB_OP_CONV2D_BACKWARD_WEIGHT) {
		x = s1, w = wd;
		wd[0] = s0[1], wd[1] = s1[1] / g.groups, wd[2] = a[A_D0], wd[3] = a[A_D1];
	}
	g.n = x[0], g.c = x[1], g.h = x[2], g.w = x[3];
	g.o = w[0], g.cg = w[1], g.kh = w[2], g.kw = w[3];
	g.og = g.o / g.groups;
	g.oh = nb__window_out(g.h, g.kh, g.sh, g.pt + g.pb, g.dh);
	g.ow = nb__window_out(g.w, g.kw, g.sw, g.pl + g.pr, g.dw);
	return g;
}

/* 1x1, stride 1, no padding: x (one image, one group) is its own column
 * matrix, no im2col needed */
static bool pointwise(const geom *g)
{
	return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && !g->pt && !g->pl && !g->pb &&
	       !g->pr;
}

/* A 1x1 convolution of one image is its own column matrix, unless its
 * rows alias (then it is copied with the padded stride). */
static bool x_is_col(const geom *g, int64_t nb, size_t es)
{
	return pointwise(g) && nb == 1 && nb__pad_ld(g->oh * g->ow, es) == g->oh * g->ow;
}

/* Valid, stride-1 rows shorter than the input's: the "wide" layout.  The
 * GEMMs run over oH x W columns per image (W the input width), so that
 * each tap of im2col is one contiguous run of x instead of oH short rows;
 * the W - oW extra columns of a row are dropped (forward) or zero
 * (gradients).  LeNet's conv2: 150 copies of 140 values per image instead
 * of 1500 copies of 10, for 40% more GEMM columns. */
static bool wide(const geom *g)
{
	return g->sh == 1 && g->sw == 1 && g->dw == 1 && !g->pl && !g->pr && g->ow < g->w &&
	       g->ow <= 32;
}

/* GEMM columns per image */
static int64_t gemm_cols(const geom *g)
{
	return g->oh * (wide(g) ? g->w : g->ow);
}

/* ---- Winograd (see winograd.h) ------------------------------------------ */

static nb__wino_geom wino_geom(const geom *g, bool flip)
{
	return (nb__wino_geom){.n = g->n, .c = g->c, .h = g->h, .w = g->w, .o = g->o, .pt = g->pt,
	                       .pl = g->pl, .pb = g->pb, .pr = g->pr, .flip = flip};
}

/* the shapes the Winograd kernels take */
static bool wino_fits(const geom *g)
{
	nb__wino_geom wg = wino_geom(g, false);
	return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 &&
	       g->groups == 1 && nb__wino_supported(&wg);
}

/* Winograd runs every pass when asked for, and by default in f32 from 16
 * channels in and out, where all three passes measured at least as fast
 * as the banded im2col on one thread and on two (build/tools/bench_winograd,
 * batch 64, best of five alternating rounds, ResNet-20's 16 / 32 / 64-
 * channel layers, 2 threads, ms per pass, im2col -> Winograd):
 *   forward          2.48 -> 2.36   1.86 -> 1.86   1.81 -> 1.65
 *   input gradient   2.63 -> 2.33   2.03 -> 1.80   1.92 -> 1.67
 *   weight gradient  2.23 -> 1.75   1.88 -> 1.26   1.94 -> 1.12
 * (one thread: 1.13 / 1.02 / 1.26x forward, 1.32 / 1.06 / 1.36x input,
 * 1.29 / 1.36 / 1.65x weight gradient).  Below 16 channels its GEMMs are
 * too thin. */
static bool use_wino(const nb_tensor *t, const geom *g)
{
	if (!wino_fits(g))
		return false;
	if (g->algo == NB_CONV_WINOGRAD)
		return true;
	return g->algo == NB_CONV_AUTO && t->g->dtype == NB_F32 && g->c >= 16 && g->o >= 16;
}

/* threads for a Winograd run: all, for a batch worth splitting */
static int wino_threads(const geom *g)
{
	const int th = nb_get_num_threads();
	const double work = (double)g->n * (double)(g->o * g->oh * g->ow) * (double)(g->c * 9);
	return th > 1 && g->n >= 2 && work >= 2 * NB_PAR_MIN ? th : 1;
}

/* ---- one input channel: register-blocked direct kernels ---------------------
 * The forward of a single-channel image (LeNet's first layer: 1 -> 6, 5x5)
 * is a GEMM with K = kH kW (25): im2col copies the image 25 times for a
 * thin product.  With one group, stride 1 and dilation 1 it runs directly
 * on a zero-padded copy of the plane instead, D1_OB output channels by
 * 2 D1_VW pixels held in registers; the weight gradient (kW 3 or 5) holds
 * two channels' kW taps in registers over the whole image.  Measured on
 * LeNet's conv1 (batch 64, best of four alternating runs), direct vs
 * im2col: forward 0.19 vs 0.28 ms on two threads (0.35 vs 0.32 on one),
 * weight gradient 0.18 vs 0.20 ms (0.32 vs 0.34 on one). */
#define D1_OB 6
#define D1_VW 8
#define D1_KW 8 /* the widest kernel that takes this path */
_Static_assert(D1_VW == 8, "dp_unpack transposes 8 x 8 blocks");

typedef struct d1geom {
	int64_t hp, wp, owr, ob; /* padded plane; output row rounded up to 2 D1_VW; O to D1_OB */
} d1geom;

static d1geom d1_of(const geom *g)
{
	d1geom d = {.owr = (g->ow + 2 * D1_VW - 1) / (2 * D1_VW) * (2 * D1_VW),
	            .ob = (g->o + D1_OB - 1) / D1_OB * D1_OB};
	d.wp = d.owr + D1_KW; /* a tap's window stays in its row */
	d.hp = g->oh + g->kh - 1;
	return d;
}

static bool use_one(const nb_tensor *t, const geom *g)
{
	const bool shape = g->algo == NB_CONV_AUTO && g->c == 1 && g->groups == 1 && g->sh == 1 &&
	                   g->sw == 1 && g->dh == 1 && g->dw == 1 && g->kw <= D1_KW;
	/* the weight gradient has kernels for 3- and 5-wide kernels */
	return shape && (t->op == NB_OP_CONV2D ||
	                 (t->op == NB_OP_CONV2D_BACKWARD_WEIGHT && (g->kw == 3 || g->kw == 5)));
}

/* bytes of one thread's slice: the padded plane; for the weight gradient
 * also two padded dy planes and a private dW */
static size_t d1_slice(const nb_tensor *t, const geom *g)
{
	const d1geom d = d1_of(g);
	size_t b = (size_t)(d.hp * d.wp);
	if (t->op == NB_OP_CONV2D_BACKWARD_WEIGHT)
		b += (size_t)(2 * g->oh * d.owr + g->o * g->kh * g->kw);
	return nb__align_up(b * t->g->esize);
}

/* the forward's weights, [O / D1_OB][kH kW][D1_OB] (zeros past O) */
static size_t d1_wbytes(const nb_tensor *t, const geom *g)
{
	const size_t b = (size_t)(d1_of(g).ob * g->kh * g->kw) * t->g->esize;
	return t->op == NB_OP_CONV2D ? nb__align_up(b) : 0;
}

static bool use_direct(const geom *g)
{
	return g->cg == 1 && (g->groups > 1 || g->algo == NB_CONV_DIRECT) && g->algo != NB_CONV_IM2COL;
}

/* ---- direct kernels for up to a few dozen channels (one group) ---------------
 * Thin GEMMs are what im2col makes of a small convolution (LeNet's conv2:
 * 16 x 150 by 100 columns per image), and the column matrix costs as many
 * memory passes as the products.  These kernels read the (padded) image
 * directly:
 *  - forward and weight gradient ("dc"): DC_OB = 2 D1_VW output channels in
 *    the lanes of two vectors.  The forward holds DC_NP pixels of an output
 *    row in registers over all C kH kW taps, each tap a broadcast of x per
 *    pixel; the weight gradient holds DC_TB taps over all pixels of an
 *    image, each pixel a broadcast of x per tap, dy transposed so that a
 *    pixel's DC_OB channels are one run.  Any stride, padding, dilation.
 *  - input gradient ("dt", stride 1, dilation 1): the transposed
 *    convolution as a correlation of dy with the flipped kernel, as the
 *    one-channel forward above computes it (D1_OB channels of dx by 2 D1_VW
 *    pixels of a row in registers), skipping the kernel rows that fall
 *    outside dy.
 *  - input gradient in phases ("dp", any stride): see dpgeom.
 * Which passes take them: see dc_auto; measurements: docs/conv.md. */
#define DC_OB (2 * D1_VW)
#define DC_NP(T) ((int)(24 / sizeof(T))) /* pixels per forward block: 6 f32, 3 f64 */
#define DC_TB(T) ((int)(24 / sizeof(T))) /* taps per weight-gradient block */
#define DC_MAX 6

typedef struct dcgeom {
	int64_t hp, wp; /* the padded plane (the input's own when there is no padding) */
	int64_t nt;     /* taps: C kH kW */
	int64_t ob;     /* O rounded up to DC_OB */
	bool pad;
} dcgeom;

static dcgeom dc_of(const geom *g)
{
	dcgeom d = {.hp = g->h + g->pt + g->pb, .wp = g->w + g->pl + g->pr,
	            .nt = g->c * g->kh * g->kw, .ob = (g->o + DC_OB - 1) / DC_OB * DC_OB};
	d.pad = g->pt || g->pb || g->pl || g->pr;
	return d;
}

/* the rows of dy a stride-1 input gradient reads through: kW - 1 - padL
 * zeros on the left, dx's width rounded up to 2 D1_VW plus a kernel to the
 * right (so a tap's window stays in its row) */
typedef struct dtgeom {
	int64_t qt, ql; /* kH - 1 - padT, kW - 1 - padL */
	int64_t wq;     /* row length */
	int64_t cb;     /* C rounded up to D1_OB */
} dtgeom;

static dtgeom dt_of(const geom *g)
{
	const int64_t wr = (g->w + 2 * D1_VW - 1) / (2 * D1_VW) * (2 * D1_VW);
	return (dtgeom){.qt = g->kh - 1 - g->pt, .ql = g->kw - 1 - g->pl, .wq = wr + g->kw,
	                .cb = (g->c + D1_OB - 1) / D1_OB * D1_OB};
}

/* The direct kernels run when asked for (NB_CONV_DIRECT, one group: dt
 * for the input gradient where it applies, else dp) and by default (both
 * types) for kernels of 9 taps or more, when the lanes are mostly used
 * (at least 3/4 of O, dx's row or C rounded up to a block), from 2 input
 * channels up to:
 *  - forward: 32, ahead of Winograd;
 *  - weight gradient: 64, when Winograd does not take it;
 *  - input gradient: 32, dt if dx's rows fill its lanes and one image's
 *    padded dy stays under DT_MAX_DY, else dp if C fills them and
 *    Winograd does not take it.
 * Measured with the program profile, batch 64, f32, 2 threads, ms per
 * pass (im2col or Winograd -> direct):
 *   ResNet-20 16 -> 16 3x3 32x32    forward 3.1 -> 1.8 (wino), dx 3.2 -> 2.5 (wino)
 *             32 -> 32 3x3 16x16    forward 2.5 -> 1.8 (wino), dx 2.7 -> 2.3 (wino)
 *             16 -> 32 3x3 s2 32x32 forward 1.48 -> 1.01, dx 1.7 -> 1.1 (dp),
 *                                   dW 1.42 -> 0.91
 *             32 -> 64 3x3 s2 16x16 forward 1.12 -> 0.95, dW 1.23 -> 0.85
 *             64 -> 128 3x3 s2 16x16 dW 5.0 -> 3.1
 *   LeNet conv2 6 -> 16 5x5 14x14    forward 0.36 -> 0.16, dx 0.36 -> 0.28,
 *                                    dW 0.36 -> 0.16
 * Winograd keeps the weight gradient of its layers (16 -> 16: 1.87 vs
 * 1.91; 32 -> 32: 1.31 vs 1.56) and everything from 64 channels (64 -> 64
 * 8x8: 1.40 / 1.41 / 1.15 vs 1.69 / 3.6 / 1.51); on one thread Winograd's
 * input gradient of 16 channels is ahead (4.1 vs 5.0 ms), the rest as on
 * two.  dp and dt are within noise of each other at stride 1 and 16 or
 * 32 channels (2.3-2.4 vs 2.4-3.3; 2.0 vs 1.8-1.9 ms). */
static bool lanes_used(int64_t n, int64_t block)
{
	return 4 * n >= 3 * ((n + block - 1) / block * block);
}

static bool dc_auto(const nb_tensor *t, const geom *g)
{
	if (g->kh * g->kw < 9)
		return false;
	if (t->op == NB_OP_CONV2D_BACKWARD_INPUT) /* and the lanes: see use_dt, use_dp */
		return g->c <= 32;
	if (!lanes_used(g->o, DC_OB))
		return false;
	if (t->op == NB_OP_CONV2D)
		return g->c <= 32;
	return g->c <= 64 && !use_wino(t, g);
}

static bool use_dc(const nb_tensor *t, const geom *g)
{
	if (g->groups != 1 || g->c < 2 || t->op == NB_OP_CONV2D_BACKWARD_INPUT)
		return false;
	return g->algo == NB_CONV_DIRECT || (g->algo == NB_CONV_AUTO && dc_auto(t, g));
}

#define DT_MAX_DY (128 << 10)

static bool use_dt(const nb_tensor *t, const geom *g)
{
	if (g->groups != 1 || g->c < 2 || t->op != NB_OP_CONV2D_BACKWARD_INPUT || g->sh != 1 ||
	    g->sw != 1 || g->dh != 1 || g->dw != 1 || g->pt >= g->kh || g->pl >= g->kw)
		return false;
	/* by default only while one image's padded dy, which each block of dx's
	 * channels sweeps, stays small enough for L2: 32 -> 64 channels at
	 * 28x28 (250 KiB) measured 15.2 ms against Winograd's 11.7-16.2 and
	 * im2col's 13.0 (batch 64), ResNet-20's layers take 39-72 KiB */
	return g->algo == NB_CONV_DIRECT ||
	       (g->algo == NB_CONV_AUTO && dc_auto(t, g) && lanes_used(g->w, 2 * D1_VW) &&
	        (size_t)(g->o * g->oh * dt_of(g).wq) * t->g->esize <= DT_MAX_DY);
}

/* The input gradient in phases ("dp", any stride, dilation, padding):
 * the pixels of dx whose row is ph mod sH and column pw mod sW receive the
 * kernel taps (m, k) with sH | ph + padT - m dH and sW | pw + padL - k dW,
 * from dy row a + e(ph, m) and column b + f(pw, k) (a, b: the pixel's
 * row and column within its phase).  So each phase is a stride-1
 * correlation of dy with some of the taps, which dc_fblock computes with
 * dx's channels in the lanes: the phases' taps and their offsets in a
 * zero-padded copy of dy are tabulated once per run. */
typedef struct dpgeom {
	int64_t pt, pl, hp, wp; /* dy padded: pt rows above, pl columns left; the plane */
	int64_t cb;             /* C rounded up to DC_OB */
} dpgeom;

/* whether kernel row (or column) m takes part in phase ph, and e: its dy
 * offset, (ph + pad - m d) / s */
static bool dp_tap(int64_t ph, int64_t pad, int64_t m, int64_t d, int64_t s, int64_t *e)
{
	const int64_t v = ph + pad - m * d;
	if (((v % s) + s) % s)
		return false;
	*e = v / s;
	return true;
}

static dpgeom dp_of(const geom *g)
{
	int64_t lo[2] = {0, 0}, hi[2] = {0, 0}, e;
	for (int ax = 0; ax < 2; ax++) {
		const int64_t s = ax ? g->sw : g->sh, k = ax ? g->kw : g->kh;
		for (int64_t ph = 0; ph < s; ph++)
			for (int64_t m = 0; m < k; m++)
				if (dp_tap(ph, ax ? g->pl : g->pt, m, ax ? g->dw : g->dh, s, &e)) {
					lo[ax] = e < lo[ax] ? e : lo[ax];
					hi[ax] = e > hi[ax] ? e : hi[ax];
				}
	}
	const int64_t na = (g->h + g->sh - 1) / g->sh, nb = (g->w + g->sw - 1) / g->sw;
	dpgeom q = {.pt = -lo[0], .pl = -lo[1], .cb = (g->c + DC_OB - 1) / DC_OB * DC_OB};
	q.hp = q.pt + (na + hi[0] > g->oh ? na + hi[0] : g->oh);
	q.wp = q.pl + (nb + hi[1] > g->ow ? nb + hi[1] : g->ow);
	return q;
}

static size_t dp_dy_bytes(const geom *g, const dpgeom *q, size_t es)
{
	return nb__align_up((size_t)(g->o * q->hp * q->wp) * es);
}

static bool use_dp(const nb_tensor *t, const geom *g)
{
	if (g->groups != 1 || g->c < 2 || t->op != NB_OP_CONV2D_BACKWARD_INPUT || use_dt(t, g))
		return false;
	return g->algo == NB_CONV_DIRECT || (g->algo == NB_CONV_AUTO && dc_auto(t, g) &&
	                                     lanes_used(g->c, DC_OB) && !use_wino(t, g));
}

/* the forward's packed weights [O / DC_OB][C kH kW][DC_OB] (zeros past O)
 * and the taps' offsets in the padded image; the input gradient's flipped
 * weights [C / D1_OB][O][kH][kW][D1_OB] */
static size_t dc_shared_bytes(const nb_tensor *t, const geom *g)
{
	const size_t es = t->g->esize;
	const int64_t nt = g->o * g->kh * g->kw;
	if (use_dp(t, g)) /* the taps' offsets, the phases' first taps, [C / DC_OB][taps][DC_OB] */
		return nb__align_up((size_t)(nt + g->sh * g->sw + 1) * sizeof(int64_t)) +
		       nb__align_up((size_t)(dp_of(g).cb * nt) * es);
	if (t->op == NB_OP_CONV2D_BACKWARD_INPUT)
		return nb__align_up((size_t)(dt_of(g).cb * nt) * es);
	const dcgeom d = dc_of(g);
	size_t b = nb__align_up((size_t)d.nt * sizeof(int64_t));
	if (t->op == NB_OP_CONV2D)
		b += nb__align_up((size_t)(d.ob * d.nt) * es);
	return b;
}

/* one thread's slice: the padded image (forward, weight gradient), the
 * transposed dy, packed dW and the thread's dW (weight gradient); the
 * padded dy (input gradient) */
static size_t dc_slice(const nb_tensor *t, const geom *g)
{
	const size_t es = t->g->esize;
	if (use_dp(t, g)) { /* dy padded, dx's block of channels pixel-major */
		const dpgeom q = dp_of(g);
		return dp_dy_bytes(g, &q, es) + nb__align_up((size_t)(g->h * g->w * DC_OB) * es);
	}
	if (t->op == NB_OP_CONV2D_BACKWARD_INPUT) {
		const dtgeom q = dt_of(g);
		return nb__align_up((size_t)(g->o * g->oh * q.wq) * es);
	}
	const dcgeom d = dc_of(g);
	size_t b = d.pad ? nb__align_up((size_t)(g->c * d.hp * d.wp) * es) : 0;
	if (t->op == NB_OP_CONV2D_BACKWARD_WEIGHT)
		b += nb__align_up((size_t)(g->oh * g->ow * DC_OB) * es) +
		     nb__align_up((size_t)(d.ob * d.nt) * es) + nb__align_up((size_t)(g->o * d.nt) * es);
	return b;
}

/* ---- workspace and threads ---------------------------------------------------
 * Three ways to run a batch:
 *  - serial: small convolutions (below PAR_WORK multiply-adds) run on the
 *    calling thread only, GEMM included: a parallel region would cost more
 *    than it saves;
 *  - batch threads: when the batch splits evenly over the threads, each
 *    thread takes whole images with a single-threaded GEMM and its own
 *    slice of the workspace (better than splitting the small per-image
 *    GEMMs of CIFAR-sized layers);
 *  - otherwise images go one at a time with BLIS's threads inside the GEMM
 *    and OpenMP inside im2col / col2im. */

#define PAR_WORK (2 * NB_PAR_MIN)

typedef struct plan {
	int threads;       /* > 1: batch threads */
	bool blis_threads; /* threads == 1: GEMM on BLIS's threads, loops parallel */
	int64_t chunk;     /* at most this many images per GEMM */
} plan;

/* Columns per GEMM.  One image of a small layer is a thin GEMM (LeNet's
 * conv2: 16 x 100 x 150; ResNet's last stage: 64 x 64 x 576), far below
 * BLIS's peak, and a large one makes a column matrix that leaves the L2
 * cache (ResNet's first stage: 144 x 1024).  So a GEMM covers a block of
 * about target_cols columns (the N of the forward and input-gradient
 * GEMMs, the K of the weight gradient's): either a chunk of whole images
 * side by side, or a band of output rows of one image.  The target keeps
 * the column matrix near 256 KiB (f32), and at least 512 columns.  On one
 * Zen core: 16x144 by 1024 columns 88 / 62 / 91 GFLOP/s (forward / weight
 * / input gradient) vs 100 / 83 / 93 by 512; 64x576 by 64 columns 88 /
 * 51 / 84 vs 105 / 90 / 97 by 512. */
static int64_t target_cols(const geom *g)
{
	const int64_t t = 65536 / (g->cg * g->kh * g->kw);
	return t > 512 ? t : 512;
}

/* Output rows per band: oH (whole images) unless an image is at least
 * 1.5 targets wide; the wide layout always takes whole images. */
static int64_t rows_for(const geom *g)
{
	const int64_t p = g->oh * g->ow, t = target_cols(g);
	const int64_t bands = (p + t / 2) / t;
	if (wide(g) || bands < 2)
		return g->oh;
	return (g->oh + bands - 1) / bands;
}

/* Images per chunk: each thread splits its share of the batch evenly into
 * pieces of at most this many images (1 when images are cut into bands). */
static int64_t chunk_for(const geom *g, int threads)
{
	const int64_t per = (g->n + threads - 1) / threads, p = gemm_cols(g);
	const int64_t want = (target_cols(g) + p - 1) / p;
	if (want <= 1 || per <= 1 || rows_for(g) < g->oh)
		return 1;
	const int64_t pieces = (per + want - 1) / want;
	return (per + pieces - 1) / pieces;
}

/* A GEMM's block: nb images, output rows [r0, r1) (all rows when nb > 1) */
typedef struct blk {
	int64_t nb, r0, r1;
} blk;

/* columns of one image in a block */
static int64_t blk_cols(const geom *g, blk b)
{
	return wide(g) ? gemm_cols(g) : (b.r1 - b.r0) * g->ow;
}

/* the most columns a block of a plan with this chunk has */
static int64_t max_cols(const geom *g, int64_t chunk)
{
	const int64_t r = rows_for(g);
	return r < g->oh ? r * g->ow : chunk * gemm_cols(g);
}

static size_t col_bytes(const geom *g, int64_t chunk, size_t es)
{
	if (x_is_col(g, chunk, es))
		return 0;
	return nb__align_up((size_t)(g->cg * g->kh * g->kw * nb__pad_ld(max_cols(g, chunk), es)) * es);
}

/* The [Og, block] part of y or dy with the column matrix's stride: the
 * forward's GEMM writes it and it is scattered to y; the backward passes
 * gather dy into it.  One image or band needs none, except in the wide
 * layout, and for the input gradient when dy's rows alias (dy is the B
 * operand there). */
static size_t ybuf_bytes(int op, const geom *g, int64_t chunk, size_t es)
{
	const int64_t p = g->oh * g->ow, ld = nb__pad_ld(max_cols(g, chunk), es);
	if (chunk > 1 || wide(g) || (op == NB_OP_CONV2D_BACKWARD_INPUT && nb__pad_ld(p, es) != p))
		return nb__align_up((size_t)(g->og * ld) * es);
	return 0;
}

/* One thread's slice: the column matrix, the y / dy block, and for the
 * weight gradient on batch threads a private dW. */
static size_t slice_bytes(int op, const geom *g, size_t es, int threads, int64_t chunk)
{
	size_t b = col_bytes(g, chunk, es) + ybuf_bytes(op, g, chunk, es);
	if (op == NB_OP_CONV2D_BACKWARD_WEIGHT && threads > 1)
		b += nb__align_up((size_t)(g->o * g->cg * g->kh * g->kw) * es);
	return b;
}

/* the direct kernels' batch threads: images need not split evenly (there is
 * no GEMM to balance), only be more than one */
static double dc_work(const geom *g)
{
	return (double)g->n * (double)(g->o * g->oh * g->ow) * (double)(g->c * g->kh * g->kw);
}

static int dc_plan_threads(const geom *g)
{
	const int th = nb_get_num_threads();
	if (th < 2 || g->n < 2 || dc_work(g) < PAR_WORK)
		return 1;
	return g->n < th ? (int)g->n : th;
}

static plan plan_for(const geom *g)
{
	int th = nb_get_num_threads();
	double work = (double)g->n * (double)(g->o * g->oh * g->ow) * (double)(g->cg * g->kh * g->kw);
	plan p = {1, false, 1};
	if (th >= 2 && work >= PAR_WORK) {
		if (g->n >= 2 && (g->n % th == 0 || g->n >= 4 * th))
			p.threads = th;
		else
			p.blis_threads = true;
	}
	p.chunk = chunk_for(g, p.threads);
	return p;
}

/* The kernel a conv node runs: the one place that orders the rules above
 * (the workspace, the three ops and the profile's kernel names follow it). */
typedef enum conv_path {
	PATH_DEPTHWISE, PATH_ONE, PATH_DC, PATH_DT, PATH_DP, PATH_WINO, PATH_IM2COL
} conv_path;

static conv_path path_of(const nb_tensor *t, const geom *g)
{
	if (use_direct(g))
		return PATH_DEPTHWISE;
	if (use_one(t, g))
		return PATH_ONE;
	if (use_dc(t, g))
		return PATH_DC;
	if (use_dt(t, g))
		return PATH_DT;
	if (use_dp(t, g))
		return PATH_DP;
	if (use_wino(t, g))
		return PATH_WINO;
	return PATH_IM2COL;
}

static size_t ws_conv(const nb_tensor *t)
{
	geom g = geom_of(t);
	switch (path_of(t, &g)) {
	case PATH_DEPTHWISE:
		return 0;
	case PATH_ONE:
		return d1_wbytes(t, &g) + (size_t)plan_for(&g).threads * d1_slice(t, &g);
	case PATH_DC:
	case PATH_DT:
	case PATH_DP:
		return dc_shared_bytes(t, &g) + (size_t)dc_plan_threads(&g) * dc_slice(t, &g);
	case PATH_WINO: {
		nb__wino_geom wg = wino_geom(&g, t->op == NB_OP_CONV2D_BACKWARD_INPUT);
		if (t->op == NB_OP_CONV2D_BACKWARD_WEIGHT)
			return nb__wino_wgrad_workspace(&wg, t->g->esize, wino_threads(&g));
		return nb__wino_workspace(&wg, t->g->esize, wino_threads(&g));
	}
	case PATH_IM2COL:
		break;
	}
	plan p = plan_for(&g);
	/* one more row past the last slice: BLIS may read it (nb__blas_slack) */
	const size_t es = t->g->esize;
	return (size_t)p.threads * slice_bytes(t->op, &g, es, p.threads, p.chunk) +
	       nb__align_up((size_t)nb__pad_ld(max_cols(&g, p.chunk), es) * es);
}

/* At run time: no more batch threads, nor images per chunk, than the
 * workspace has room for (the thread count may have changed since
 * compile; one thread and one image always fit). */
static plan run_plan(const nb_tensor *t, const geom *g)
{
	plan p = plan_for(g);
	const bool batch_threads = p.threads > 1;
	const size_t es = t->g->esize, have = t->g->workspace_bytes;
	while (p.threads > 1 && (size_t)p.threads * slice_bytes(t->op, g, es, p.threads, p.chunk) > have)
		p.threads--;
	while (p.chunk > 1 && (size_t)p.threads * slice_bytes(t->op, g, es, p.threads, p.chunk) > have)
		p.chunk--;
	if (batch_threads && p.threads == 1) /* no room for batch threads: BLIS's then */
		p.blis_threads = true;
	return p;
}

/* a BLIS runtime that keeps the GEMM on the calling thread */
static void one_thread(rntm_t *r)
{
	bli_rntm_init(r);
	bli_rntm_set_num_threads(1, r);
}

/* rn for a batch run on one thread: NULL lets BLIS use its threads */
#define ONE_THREAD_RNTM                                                         \
	rntm_t one_;                                                            \
	one_thread(&one_);                                                      \
	rntm_t *rn = pl.blis_threads ? NULL : &one_

/* The blocks of thread tid of th: it takes images [lo, hi) of the batch,
 * splits them evenly into pieces of at most pl->chunk images, and cuts an
 * image into bands of rows_for() output rows when that is fewer than oH.
 * Runs the statement for each block: K its index, B0 its first image, BK
 * the block. */
#define FOR_BLOCKS(g, pl, th, tid, K, B0, BK, ...)                              \
	do {                                                                    \
		const int64_t lo_ = (g)->n * (tid) / (th), hi_ = (g)->n * ((tid) + 1) / (th); \
		const int64_t np_ = hi_ > lo_ ? (hi_ - lo_ + (pl)->chunk - 1) / (pl)->chunk : 0; \
		const int64_t rows_ = rows_for(g);                              \
		int64_t K = 0;                                                  \
		for (int64_t k_ = 0; k_ < np_; k_++) {                          \
			const int64_t B0 = lo_ + (hi_ - lo_) * k_ / np_;        \
			const int64_t b1_ = lo_ + (hi_ - lo_) * (k_ + 1) / np_; \
			for (int64_t r_ = 0; r_ < (g)->oh; r_ += rows_, K++) {  \
				const blk BK = {b1_ - B0, r_,                   \
				                r_ + rows_ < (g)->oh ? r_ + rows_ : (g)->oh}; \
				__VA_ARGS__;                                    \
			}                                                       \
		}                                                               \
	} while (0)

/* Runs the statement for each image N of the batch on th batch threads
 * (static shares), SLICE being the thread's sb bytes of workspace from base */
#define FOR_IMAGES(g, th, base, sb, N, SLICE, ...)                              \
	do {                                                                    \
		const int th_ = (th);                                           \
		char *const base_ = (char *)(base);                             \
		const size_t sb_ = (sb);                                        \
		_Pragma("omp parallel for num_threads(th_) schedule(static) if (th_ > 1)") \
		for (int64_t N = 0; N < (g)->n; N++) {                          \
			void *SLICE = base_ + (size_t)omp_get_thread_num() * sb_; \
			__VA_ARGS__;                                            \
		}                                                               \
	} while (0)

/* batch threads for the direct kernels: as many as the workspace has
 * slices for */
static int dc_threads(const nb_tensor *t, const geom *g)
{
	int th = dc_plan_threads(g);
	while (th > 1 && dc_shared_bytes(t, g) + (size_t)th * dc_slice(t, g) > t->g->workspace_bytes)
		th--;
	return th;
}

/* FOR_IMAGES with the direct kernels' threads and slices */
#define DC_FOR_IMAGES(t, g, N, SLICE, ...)                                      \
	FOR_IMAGES(g, dc_threads(t, g), (char *)(t)->g->workspace + dc_shared_bytes(t, g), \
	           dc_slice(t, g), N, SLICE, __VA_ARGS__)

/* v = the D1_VW values at p (unaligned); a macro: a function returning a
 * vector would change the ABI between the clones */
#define D1_LOAD(v, p) memcpy(&(v), (p), sizeof(v))

/* CALL(args..., np) with np a constant 1..DC_MAX, for inlined block kernels */
#define DC_CASES(CALL, ...)                                                     \
	switch (np) {                                                           \
	case 1: CALL(__VA_ARGS__, 1); break;                                    \
	case 2: CALL(__VA_ARGS__, 2); break;                                    \
	case 3: CALL(__VA_ARGS__, 3); break;                                    \
	case 4: CALL(__VA_ARGS__, 4); break;                                    \
	case 5: CALL(__VA_ARGS__, 5); break;                                    \
	default: CALL(__VA_ARGS__, 6); break;                                   \
	}

/* dt_block for channel count NC with kW 5, 3 or any (inside dt_backward) */
#define DT_KW_CASES(NC)                                                          \
	do {                                                                    \
		if (g->kw == 5)                                                 \
			SFX(dt_block)(g, q, dyp, wb, i, j0, out, 5, NC);        \
		else if (g->kw == 3)                                            \
			SFX(dt_block)(g, q, dyp, wb, i, j0, out, 3, NC);        \
		else                                                            \
			SFX(dt_block)(g, q, dyp, wb, i, j0, out, 0, NC);        \
	} while (0)

/* ---- kernels, one copy per element type --------------------------------------- */

#define T float
#define SFX(name) name##_f32
#define GEMM_EX bli_sgemm_ex
#include "ops/conv_impl.h"
#undef T
#undef SFX
#undef GEMM_EX

#define T double
#define SFX(name) name##_f64
#define GEMM_EX bli_dgemm_ex
#include "ops/conv_impl.h"
#undef T
#undef SFX
#undef GEMM_EX

/* ---- shape rules ------------------------------------------------------------------ */

static nb_status need_4d(nb_tensor *t, int k, const char *what, const char *layout)
{
	char b[128];
	nb_shape s = t->in[k]->shape;
	if (s.ndim == 4)
		return NB_OK;
	return nb__op_fail(t, NB_ERR_SHAPE, "%s must be 4-D %s, got %s", what, layout,
	                   nb_shape_str(s, b, sizeof b));
}

#define LL(v) ((long long)(v))

/* The checks all three conv ops share, on the (possibly derived) input and
 * weight shapes; cg_given is the weight's in-channel count. */
static nb_status check_geom(nb_tensor *t, const geom *g, int64_t cg_given)
{
	char bx[128], bw[128];
	nb_shape xs = NB_SHAPE(g->n, g->c, g->h, g->w);
	nb_shape ws = NB_SHAPE(g->o, cg_given, g->kh, g->kw);
	nb_shape_str(xs, bx, sizeof bx);
	nb_shape_str(ws, bw, sizeof bw);
	if (g->c % g->groups)
		return nb__op_fail(t, NB_ERR_SHAPE, "input channels %lld (input %s) are not divisible by groups %lld",
		                   LL(g->c), bx, LL(g->groups));
	if (g->o % g->groups)
		return nb__op_fail(t, NB_ERR_SHAPE, "output channels %lld (weight %s) are not divisible by groups %lld",
		                   LL(g->o), bw, LL(g->groups));
	if (cg_given != g->c / g->groups)
		return nb__op_fail(t, NB_ERR_SHAPE,
		                   "weight in-channels %lld != input channels %lld / groups %lld = %lld "
		                   "(input %s, weight %s)",
		                   LL(cg_given), LL(g->c), LL(g->groups), LL(g->c / g->groups), bx, bw);
	if (g->oh <= 0 || g->ow <= 0)
		return nb__op_fail(t, NB_ERR_SHAPE,
		                   "kernel %lldx%lld (dilation %lld,%lld: spans %lldx%lld) is larger than "
		                   "the padded input %lldx%lld (input %s, weight %s, padding top %lld "
		                   "left %lld bottom %lld right %lld): the output size would be <= 0",
		                   LL(g->kh), LL(g->kw), LL(g->dh), LL(g->dw), LL(g->dh * (g->kh - 1) + 1),
		                   LL(g->dw * (g->kw - 1) + 1), LL(g->h + g->pt + g->pb),
		                   LL(g->w + g->pl + g->pr), bx, bw, LL(g->pt), LL(g->pl), LL(g->pb),
		                   LL(g->pr));
	if (g->algo == NB_CONV_DIRECT && g->cg != 1 && g->groups != 1)
		return nb__op_fail(t, NB_ERR_ARG,
		                   "NB_CONV_DIRECT needs one group or a depthwise convolution (C/groups "
		                   "== 1), got C/groups = %lld (input %s, groups %lld)",
		                   LL(g->c / g->groups), bx, LL(g->groups));
	if (g->algo == NB_CONV_WINOGRAD && !wino_fits(g))
		return nb__op_fail(t, NB_ERR_ARG,
		                   "NB_CONV_WINOGRAD needs a 3x3 kernel, stride 1, dilation 1, one group "
		                   "and padding 0..2, got kernel %lldx%lld, stride %lld,%lld, dilation "
		                   "%lld,%lld, groups %lld, padding top %lld left %lld bottom %lld right "
		                   "%lld (input %s, weight %s)",
		                   LL(g->kh), LL(g->kw), LL(g->sh), LL(g->sw), LL(g->dh), LL(g->dw),
		                   LL(g->groups), LL(g->pt), LL(g->pl), LL(g->pb), LL(g->pr), bx, bw);
	return NB_OK;
}

static nb_status shape_conv2d(nb_tensor *t)
{
	char b1[128];
	if (t->n_in != 2 && t->n_in != 3)
		return nb__op_fail(t, NB_ERR_ARG, "takes (x, w) or (x, w, bias), got %d inputs", t->n_in);
	nb_status st;
	if ((st = need_4d(t, 0, "input", "[N,C,H,W]")) || (st = need_4d(t, 1, "weight", "[O,C/groups,kH,kW]")))
		return st;
	geom g = geom_of(t);
	if ((st = check_geom(t, &g, t->in[1]->shape.d[1])))
		return st;
	if (t->n_in == 3) {
		nb_shape bs = t->in[2]->shape;
		if (bs.ndim != 1 || bs.d[0] != g.o)
			return nb__op_fail(t, NB_ERR_SHAPE, "bias must be [%lld] (one per output channel), got %s",
			                   LL(g.o), nb_shape_str(bs, b1, sizeof b1));
	}
	t->shape = NB_SHAPE(g.n, g.o, g.oh, g.ow);
	return NB_OK;
}

/* the incoming gradient must have the forward output's shape */
static nb_status check_dy(nb_tensor *t, const geom *g)
{
	char b1[128], b2[128];
	nb_shape want = NB_SHAPE(g->n, g->o, g->oh, g->ow), dy = t->in[0]->shape;
	if (!nb__shape_eq(dy, want))
		return nb__op_fail(t, NB_ERR_SHAPE, "gradient %s does not match the convolution output %s",
		                   nb_shape_str(dy, b1, sizeof b1), nb_shape_str(want, b2, sizeof b2));
	return NB_OK;
}

/* backward_input (dy, w) -> [N, C, H, W]; backward_weight (dy, x) ->
 * [O, C/groups, kH, kW] */
static nb_status shape_backward(nb_tensor *t)
{
	bool bi = t->op == NB_OP_CONV2D_BACKWARD_INPUT;
	nb_status st;
	if ((st = need_4d(t, 0, "gradient", "[N,O,oH,oW]")) ||
	    (st = need_4d(t, 1, bi ? "weight" : "input", bi ? "[O,C/groups,kH,kW]" : "[N,C,H,W]")))
		return st;
	geom g = geom_of(t);
	if ((st = check_geom(t, &g, bi ? g.cg : g.c / g.groups)) || (st = check_dy(t, &g)))
		return st;
	t->shape = bi ? NB_SHAPE(g.n, g.c, g.h, g.w) : NB_SHAPE(g.o, g.cg, g.kh, g.kw);
	return NB_OK;
}

static nb_status shape_backward_bias(nb_tensor *t)
{
	nb_status st = need_4d(t, 0, "gradient", "[N,O,oH,oW]");
	if (st)
		return st;
	t->shape = NB_SHAPE(t->in[0]->shape.d[1]);
	return NB_OK;
}

/* ---- VJPs ---------------------------------------------------------------------------
 * With C(x, w) the convolution, B(dy, w) = C^T dy the input gradient and
 * V(dy, x) the weight gradient, all three bilinear:
 *   <dy, C(x, w)> = <B(dy, w), x> = <V(dy, x), w>.
 * Hence for upstream gradients u (shaped like x) and v (shaped like w):
 *   y = C(x, w):   dx = B(g, w),      dw = V(g, x),   db = sum_{n,h,w} g
 *   B(dy, w):      d dy = C(u, w),    dw = V(dy, u)
 *   V(dy, x):      d dy = C(x, v),    dx = B(dy, v)                      */

static nb_tensor *conv_node(int op, nb_tensor *a, nb_tensor *b, const nb_attrs *at, int64_t d0,
                            int64_t d1)
{
	nb_attrs c = *at;
	c.i[A_D0] = d0;
	c.i[A_D1] = d1;
	return nb__op2(op, a, b, &c);
}

static void vjp_conv2d(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	geom k = geom_of(t);
	if (need[0])
		gin[0] = conv_node(NB_OP_CONV2D_BACKWARD_INPUT, g, t->in[1], &t->a, k.h, k.w);
	if (need[1])
		gin[1] = conv_node(NB_OP_CONV2D_BACKWARD_WEIGHT, g, t->in[0], &t->a, k.kh, k.kw);
	if (t->n_in == 3 && need[2])
		gin[2] = nb__op1(NB_OP_CONV2D_BACKWARD_BIAS, g, NULL);
}

static void vjp_backward_input(nb_tensor *t, nb_tensor *u, nb_tensor **gin, const bool *need)
{
	geom k = geom_of(t);
	if (need[0])
		gin[0] = conv_node(NB_OP_CONV2D, u, t->in[1], &t->a, 0, 0);
	if (need[1])
		gin[1] = conv_node(NB_OP_CONV2D_BACKWARD_WEIGHT, t->in[0], u, &t->a, k.kh, k.kw);
}

static void vjp_backward_weight(nb_tensor *t, nb_tensor *v, nb_tensor **gin, const bool *need)
{
	geom k = geom_of(t);
	if (need[0])
		gin[0] = conv_node(NB_OP_CONV2D, t->in[1], v, &t->a, 0, 0);
	if (need[1])
		gin[1] = conv_node(NB_OP_CONV2D_BACKWARD_INPUT, t->in[0], v, &t->a, k.h, k.w);
}

/* db = sum of dy over N, H, W is linear; its VJP broadcasts back */
static void vjp_backward_bias(nb_tensor *t, nb_tensor *v, nb_tensor **gin, const bool *need)
{
	(void)need;
	nb_shape s = t->in[0]->shape;
	gin[0] = nb__broadcast_to(nb_reshape(v, NB_SHAPE(1, s.d[1], 1, 1)), s);
}

/* ---- DOT labels ------------------------------------------------------------------------ */

static void label_conv(const nb_tensor *t, char *buf, size_t n)
{
	geom g = geom_of(t);
	size_t k = (size_t)snprintf(buf, n, "%lldx%lld", LL(g.kh), LL(g.kw));
#define PUT(...)                                                                \
	do {                                                                    \
		if (k < n)                                                      \
			k += (size_t)snprintf(buf + k, n - k, __VA_ARGS__);     \
	} while (0)
	if (g.sh != 1 || g.sw != 1)
		PUT(g.sh == g.sw ? " stride %lld" : " stride %lld,%lld", LL(g.sh), LL(g.sw));
	if (g.pt || g.pl || g.pb || g.pr) {
		if (g.pt == g.pb && g.pl == g.pr)
			PUT(g.pt == g.pl ? " pad %lld" : " pad %lld,%lld", LL(g.pt), LL(g.pl));
		else
			PUT(" pad %lld,%lld,%lld,%lld", LL(g.pt), LL(g.pl), LL(g.pb), LL(g.pr));
	}
	if (g.dh != 1 || g.dw != 1)
		PUT(g.dh == g.dw ? " dilation %lld" : " dilation %lld,%lld", LL(g.dh), LL(g.dw));
	if (g.groups != 1)
		PUT(g.cg == 1 ? " depthwise" : " groups %lld", LL(g.groups));
	if (g.algo != NB_CONV_AUTO)
		PUT(g.algo == NB_CONV_DIRECT ? " direct" : g.algo == NB_CONV_WINOGRAD ? " winograd" : " im2col");
#undef PUT
}

/* the kernel a conv node runs (path_of), for the profile */
static const char *kernel_conv(const nb_tensor *t)
{
	static const char *const name[] = {
	    [PATH_DEPTHWISE] = "depthwise", [PATH_ONE] = "one-channel", [PATH_DC] = "direct",
	    [PATH_DT] = "direct dt",        [PATH_DP] = "direct phases", [PATH_WINO] = "winograd",
	    [PATH_IM2COL] = "im2col"};
	const geom g = geom_of(t);
	return name[path_of(t, &g)];
}

/* ---- constructor -------------------------------------------------------------------------- */

/* TensorFlow's "same": out = ceil(in / s); the total padding goes half
 * before, and the odd pixel after. */
static void same_pad(int64_t in, int64_t k, int64_t s, int64_t d, int64_t *lo, int64_t *hi)
{
	int64_t out = (in + s - 1) / s, total = (out - 1) * s + d * (k - 1) + 1 - in;
	if (total < 0)
		total = 0;
	*lo = total / 2;
	*hi = total - *lo;
}

static bool opts_ok(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_conv2d_opts o)
{
	const char *xn = x ? x->name : "(null)", *wn = w ? w->name : "(null)";
	const struct {
		const char *name;
		int v;
	} pos[] = {{"stride_h", o.stride_h},     {"stride_w", o.stride_w}, {"dilation_h", o.dilation_h},
	           {"dilation_w", o.dilation_w}, {"groups", o.groups}},
	  pads[] = {{"pad_h", o.pad_h}, {"pad_w", o.pad_w}};
	for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
		if (pos[i].v < 0) {
			nb__fail(g, NB_ERR_ARG, "conv2d(%s, %s): %s must be positive (0 means 1), got %d",
			         xn, wn, pos[i].name, pos[i].v);
			return false;
		}
	for (size_t i = 0; i < sizeof pads / sizeof pads[0]; i++)
		if (pads[i].v < 0) {
			nb__fail(g, NB_ERR_ARG, "conv2d(%s, %s): %s must be >= 0, got %d", xn, wn,
			         pads[i].name, pads[i].v);
			return false;
		}
	if ((unsigned)o.padding > NB_PAD_SAME || (unsigned)o.algo > NB_CONV_WINOGRAD) {
		nb__fail(g, NB_ERR_ARG, "conv2d(%s, %s): unknown %s %d", xn, wn,
		         (unsigned)o.padding > NB_PAD_SAME ? "padding mode" : "algorithm",
		         (unsigned)o.padding > NB_PAD_SAME ? (int)o.padding : (int)o.algo);
		return false;
	}
	if (o.padding != NB_PAD_EXPLICIT && (o.pad_h || o.pad_w)) {
		nb__fail(g, NB_ERR_ARG, "conv2d(%s, %s): pad_h/pad_w (%d, %d) are only used with "
		         "NB_PAD_EXPLICIT, not with NB_PAD_%s",
		         xn, wn, o.pad_h, o.pad_w, o.padding == NB_PAD_SAME ? "SAME" : "VALID");
		return false;
	}
	/* the dilated kernel's span d (k - 1) + 1 enters the shape rule and
	 * the SAME padding: keep it far from int64 overflow */
	for (int i = 0; w && w->shape.ndim == 4 && i < 2; i++) {
		int64_t k = w->shape.d[2 + i], d = i ? o.dilation_w : o.dilation_h;
		if (k > 1 && d > 1 && d > NB_MAX_SIZE / (k - 1)) {
			nb__fail(
			    g, NB_ERR_SHAPE,
			    "conv2d(%s, %s): kernel size %lld with dilation %lld spans more than "
			    "2^60 elements",
			    xn, wn, (long long)k, (long long)d);
			return false;
		}
	}
	return true;
}

nb_tensor *nb_conv2d(nb_tensor *x, nb_tensor *w, nb_tensor *bias, nb_conv2d_opts o)
{
	nb_tensor *in[3] = {x, w, bias};
	int n = bias ? 3 : 2;
	nb_graph *g = nb__graph_of(in, n);
	if (!g)
		return NULL;
	if (g->status != NB_OK)
		return g->placeholder;
	if (!opts_ok(g, x, w, o))
		return g->placeholder;
	nb_attrs at = {.i = {[A_SH] = o.stride_h ? o.stride_h : 1,
	                     [A_SW] = o.stride_w ? o.stride_w : 1,
	                     [A_DH] = o.dilation_h ? o.dilation_h : 1,
	                     [A_DW] = o.dilation_w ? o.dilation_w : 1,
	                     [A_GROUPS] = o.groups ? o.groups : 1,
	                     [A_ALGO] = o.algo}};
	int64_t *a = at.i;
	if (o.padding == NB_PAD_EXPLICIT) {
		a[A_PT] = a[A_PB] = o.pad_h;
		a[A_PL] = a[A_PR] = o.pad_w;
	} else if (o.padding == NB_PAD_SAME && x && w && x->shape.ndim == 4 && w->shape.ndim == 4) {
		same_pad(x->shape.d[2], w->shape.d[2], a[A_SH], a[A_DH], &a[A_PT], &a[A_PB]);
		same_pad(x->shape.d[3], w->shape.d[3], a[A_SW], a[A_DW], &a[A_PL], &a[A_PR]);
	}
	return nb__op(NB_OP_CONV2D, in, n, &at);
}

/* ---- gradcheck examples --------------------------------------------------------------------
 * Random small configurations: groups 1-3 with 1-2 channels per group
 * (C/groups == 1 is depthwise, with multiplier O/C of 1 or 2), kernels 1-3
 * (rectangular too), strides and dilations 1-2, every padding mode, with
 * and without bias, both algorithms for depthwise; a quarter of them 3x3
 * stride-1 convolutions on Winograd. */

typedef struct conv_cfg {
	nb_shape x, w;
	nb_conv2d_opts o;
	bool bias;
} conv_cfg;

static int64_t rnd(nb_graph *g, int64_t n)
{
	return (int64_t)(nb__rng_next(g) % (uint64_t)n);
}

static conv_cfg rand_cfg(nb_graph *g)
{
	conv_cfg c = {0};
	int64_t groups = 1 + rnd(g, 3), cg = 1 + rnd(g, 2), og = 1 + rnd(g, 2);
	int64_t kh = 1 + rnd(g, 3), kw = rnd(g, 2) ? kh : 1 + rnd(g, 3);
	c.o.stride_h = 1 + (int)rnd(g, 2);
	c.o.stride_w = rnd(g, 2) ? c.o.stride_h : 1 + (int)rnd(g, 2);
	c.o.dilation_h = 1 + (int)rnd(g, 2);
	c.o.dilation_w = 1 + (int)rnd(g, 2);
	c.o.groups = (int)groups;
	c.o.padding = (nb_padding)rnd(g, 3);
	if (c.o.padding == NB_PAD_EXPLICIT) {
		c.o.pad_h = (int)rnd(g, 3);
		c.o.pad_w = (int)rnd(g, 3);
	}
	if (cg == 1)
		c.o.algo = rnd(g, 2) ? NB_CONV_IM2COL : NB_CONV_AUTO;
	else if (groups == 1 && rnd(g, 2)) /* the direct kernels for few channels */
		c.o.algo = NB_CONV_DIRECT;
	if (rnd(g, 4) == 0) { /* a Winograd convolution */
		groups = 1, kh = kw = 3;
		c.o = (nb_conv2d_opts){.pad_h = (int)rnd(g, 3), .pad_w = (int)rnd(g, 3),
		                       .algo = NB_CONV_WINOGRAD};
	}
	int64_t h = (c.o.dilation_h ? c.o.dilation_h : 1) * (kh - 1) + 1 + rnd(g, 4);
	int64_t w = (c.o.dilation_w ? c.o.dilation_w : 1) * (kw - 1) + 1 + rnd(g, 4);
	c.x = NB_SHAPE(1 + rnd(g, 2), groups * cg, h, w);
	c.w = NB_SHAPE(groups * og, cg, kh, kw);
	c.bias = rnd(g, 2);
	return c;
}

static nb_tensor *ex_conv2d(nb_graph *g, nb_tensor **wrt, int *n)
{
	conv_cfg c = rand_cfg(g);
	wrt[0] = NB_EX_PARAM(g, "x", c.x);
	wrt[1] = NB_EX_PARAM(g, "w", c.w);
	*n = 2;
	if (c.bias)
		wrt[(*n)++] = NB_EX_PARAM(g, "b", NB_SHAPE(c.w.d[0]));
	return nb_conv2d(wrt[0], wrt[1], c.bias ? wrt[2] : NULL, c.o);
}

/* the backward ops on their own: a forward conv gives the attributes and
 * the gradient's shape; the checked inputs are fresh parameters */
static nb_tensor *ex_backward(nb_graph *g, nb_tensor **wrt, int *n, int op)
{
	conv_cfg c = rand_cfg(g);
	nb_tensor *x = NB_EX_PARAM(g, "x", c.x), *w = NB_EX_PARAM(g, "w", c.w);
	nb_tensor *y = nb_conv2d(x, w, NULL, c.o);
	if (nb__is_placeholder(y))
		return y;
	wrt[0] = NB_EX_PARAM(g, "dy", y->shape);
	*n = 2;
	if (op == NB_OP_CONV2D_BACKWARD_INPUT) {
		wrt[1] = w;
		return conv_node(op, wrt[0], w, &y->a, c.x.d[2], c.x.d[3]);
	}
	wrt[1] = x;
	return conv_node(op, wrt[0], x, &y->a, c.w.d[2], c.w.d[3]);
}

static nb_tensor *ex_backward_input(nb_graph *g, nb_tensor **wrt, int *n)
{
	return ex_backward(g, wrt, n, NB_OP_CONV2D_BACKWARD_INPUT);
}

static nb_tensor *ex_backward_weight(nb_graph *g, nb_tensor **wrt, int *n)
{
	return ex_backward(g, wrt, n, NB_OP_CONV2D_BACKWARD_WEIGHT);
}

static nb_tensor *ex_backward_bias(nb_graph *g, nb_tensor **wrt, int *n)
{
	wrt[0] = NB_EX_PARAM(g, "dy", nb__rand_shape(g, 4, 4, 4));
	*n = 1;
	return nb__op1(NB_OP_CONV2D_BACKWARD_BIAS, wrt[0], NULL);
}

const nb_opdef nb__op_conv2d = {
    .name = "conv2d", .n_inputs = -1, .shape = shape_conv2d,
    .forward_f32 = conv_forward_f32, .forward_f64 = conv_forward_f64,
    .vjp = vjp_conv2d, .label = label_conv, .workspace = ws_conv, .kernel = kernel_conv,
    .example = ex_conv2d};

const nb_opdef nb__op_conv2d_backward_input = {
    .name = "conv2d_backward_input", .n_inputs = 2, .shape = shape_backward,
    .forward_f32 = conv_backward_input_f32, .forward_f64 = conv_backward_input_f64,
    .vjp = vjp_backward_input, .label = label_conv, .workspace = ws_conv, .kernel = kernel_conv,
    .example = ex_backward_input};

const nb_opdef nb__op_conv2d_backward_weight = {
    .name = "conv2d_backward_weight", .n_inputs = 2, .shape = shape_backward,
    .forward_f32 = conv_backward_weight_f32, .forward_f64 = conv_backward_weight_f64,
    .vjp = vjp_backward_weight, .label = label_conv, .workspace = ws_conv, .kernel = kernel_conv,
    .example = ex_backward_weight};

const nb_opdef nb__op_conv2d_backward_bias = {
    .name = "conv2d_backward_bias", .n_inputs = 1, .shape = shape_backward_bias,
    .forward_f32 = conv_backward_bias_f32, .forward_f64 = conv_backward_bias_f64,
    .vjp = vjp_backward_bias, .example = ex_backward_bias};
