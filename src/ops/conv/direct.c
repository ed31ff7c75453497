/*
 * Direct convolution kernels for one group and a few dozen channels
 * (docs/conv.md, "Few input channels").  A small convolution is a thin
 * GEMM after im2col (LeNet's conv2: 16 x 150 by 100 columns per image),
 * and the column matrix costs as many memory passes as the products;
 * these kernels read the (padded) image directly.
 *
 * CONV_PATH_DIRECT, forward and weight gradient: DC_OB output channels in
 * the lanes of two vectors.
 *   forward      y[n,o,i,j] = b[o] + sum_{c,m,k} w[o,c,m,k] xp[n,c,i sH + m dH, j sW + k dW]
 *                (xp: x zero-padded); DC_NP pixels of an output row stay in
 *                registers over all C kH kW taps, each tap a broadcast of x
 *                per pixel times 16 packed weights.
 *   weight grad  dw[o,c,m,k] = sum_{n,i,j} dy[n,o,i,j] xp[n,c,i sH + m dH, j sW + k dW]
 *                (the forward is linear in w); DC_TB taps' 16-channel
 *                gradients stay in registers over all pixels of an image,
 *                dy copied pixel-major.
 * CONV_PATH_DIRECT_TRANSPOSED, input gradient at stride 1 and dilation 1
 * (padding below the kernel): the adjoint of the forward in x,
 *   dx[n,c,a,b] = sum_{o,m,k} w[o,c,kH-1-m,kW-1-k] dyq[n,o,a+m,b+k]
 *   (dyq: dy with kH-1-pT rows above and kW-1-pL columns left of zeros),
 *   a correlation of dy with the flipped kernel: a block of dx's channels
 *   (6; 16 floats or 12 doubles at AVX-512) by DT_PX (16) pixels of a row
 *   in registers, kernel rows outside dy skipped.
 * CONV_PATH_DIRECT_ROWS, at stride 1 and dilation 1 (the kernels assume
 *   both): the forward, the same correlation as the transposed input
 *   gradient, of x with the kernel unflipped (dr_of), by the same blocks,
 *   then the bias; the weight gradient with pixels in the lanes, a block
 *   of output channels by a kernel row's taps in registers (drw_of).
 *   Any padding and any oW.
 * CONV_PATH_DIRECT_PHASES, input gradient for any geometry: the pixels of
 *   dx whose row is ph mod sH and column pw mod sW receive only the taps
 *   (m, k) with sH | ph + pT - m dH and sW | pw + pL - k dW, each from a
 *   fixed offset of dy (see dpgeom): each phase is a stride-1 correlation
 *   of dy with its taps, computed by the forward's block with DC_OB
 *   channels of dx in the lanes, then transposed into dx's planes.
 */
/* The kernels here are chains of multiply-adds held in registers: let GCC
 * fuse them into FMA instructions in the AVX2 and AVX-512 variants (ISO C mode keeps
 * contraction off, which doubles the arithmetic instructions and the
 * latency of each accumulation).  The variants then round differently from the baseline, by
 * an ulp per product; results stay deterministic on one machine. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif

#include "ops/conv/direct.h"

#include <omp.h>
#include <string.h>

typedef nb__conv_geom geom;

/* the forward and weight gradient's padded image */
typedef struct dcgeom {
	int64_t hp, wp; /* the padded plane (the input's own when there is no padding) */
	int64_t nt;     /* taps: C kH kW */
	int64_t ob;     /* O rounded up to DC_OB */
	bool pad;
} dcgeom;

static dcgeom dc_of(const geom *g)
{
	dcgeom d = {.hp = g->h + g->pt + g->pb,
	            .wp = g->w + g->pl + g->pr,
	            .nt = g->c * g->kh * g->kw,
	            .ob = (g->o + DC_OB - 1) / DC_OB * DC_OB};
	d.pad = g->pt || g->pb || g->pl || g->pr;
	return d;
}

/* the rows of dy a stride-1 input gradient reads through: kW - 1 - padL
 * zeros on the left, dx's width rounded up to DT_PX plus a kernel to the
 * right (so a tap's window stays in its row); the blocks of dx's channels
 * of level v (ops/conv/lanes.h) */
typedef struct dtgeom {
	int64_t qt, ql; /* kH - 1 - padT, kW - 1 - padL */
	int64_t wq;     /* row length */
	int64_t ob;     /* channels per block, DT_OB_OF */
	int64_t cb;     /* C rounded up to ob */
} dtgeom;

static dtgeom dt_of(const geom *g, size_t es, int v)
{
	const int64_t wr = (g->w + DT_PX - 1) / DT_PX * DT_PX, ob = DT_OB_OF(es, v);
	return (dtgeom){.qt = g->kh - 1 - g->pt,
	                .ql = g->kw - 1 - g->pl,
	                .wq = wr + g->kw,
	                .ob = ob,
	                .cb = (g->c + ob - 1) / ob * ob};
}

size_t nb__direct_transposed_dy_bytes(const nb__conv_geom *g, size_t es)
{
	return (size_t)(g->o * g->oh * dt_of(g, es, 0).wq) * es;
}

/* The forward at stride 1 and dilation 1 is the same correlation as that
 * input gradient, of x with the kernel unflipped:
 *   y[o,i,j] = b[o] + sum_{c,m,k} w[o,c,m,k] x[c, i+m-padT, j+k-padL]
 * so it runs dt_rows on the geometry with the roles swapped (x as "dy",
 * y as "dx", padT and padL where the input gradient has kH-1-padT and
 * kW-1-padL). */
static geom dr_of(const geom *g)
{
	geom r = *g;
	r.c = g->o, r.o = g->c, r.h = g->oh, r.w = g->ow, r.oh = g->h, r.ow = g->w;
	r.pt = g->kh - 1 - g->pt, r.pl = g->kw - 1 - g->pl;
	return r;
}

/* The weight gradient at stride 1 by rows: with pixels in the lanes,
 *   dw[o,c,m,k] = sum over the lanes of sum_{n,i,j0} dy[n,o,i,j0..] xp[n,c,i+m,j0+k..]
 * (xp: x zero-padded, its rows to a whole number of vectors plus the
 * kernel, so that a row's last vector reads zeros), a block of ob channels
 * by a kernel row's taps in registers over each image's rows, dy packed
 * so that the block's vectors of a pixel block are adjacent; each lane's
 * partial sums are kept per thread until the end ([O / ob][C][kH][ob][kW]
 * [lanes]).  A thread's slice: xp, the packed dy, the partial sums. */
typedef struct drgeom {
	int64_t hp, wp;  /* the padded plane */
	int64_t ob;      /* channels per block (DRW_OB_OF) */
	size_t xp_bytes; /* xp's bytes (aligned) */
	size_t buf_at;   /* the partial sums' offset in the slice */
	int64_t buf_len; /* their elements */
	size_t slice;    /* the slice's bytes */
} drgeom;

static drgeom drw_of(const geom *g, int v, size_t es)
{
	const int64_t lanes = D1_VW_OF(es, v), nv = (g->ow + lanes - 1) / lanes;
	drgeom q = {
	    .hp = g->h + g->pt + g->pb, .wp = nv * lanes + g->kw - 1, .ob = DRW_OB_OF(v, g->kw)};
	const int64_t ob = (g->o + q.ob - 1) / q.ob * q.ob;
	q.xp_bytes = nb__align_up((size_t)(g->c * q.hp * q.wp) * es);
	q.buf_at = q.xp_bytes + nb__align_up((size_t)(ob * g->oh * nv * lanes) * es);
	q.buf_len = ob * g->c * g->kh * g->kw * lanes;
	q.slice = q.buf_at + nb__align_up((size_t)q.buf_len * es);
	return q;
}

size_t nb__direct_rows_x_bytes(const nb__conv_geom *g, size_t es)
{
	const geom r = dr_of(g);
	return nb__direct_transposed_dy_bytes(&r, es);
}

/* The input gradient in phases: the pixels of dx whose row is ph mod sH
 * and column pw mod sW receive the kernel taps (m, k) with
 * sH | ph + padT - m dH and sW | pw + padL - k dW, from dy row a + e(ph, m)
 * and column b + f(pw, k) (a, b: the pixel's row and column within its
 * phase).  So each phase is a stride-1 correlation of dy with some of the
 * taps, which dc_fblock computes with dx's channels in the lanes: the
 * phases' taps and their offsets in a zero-padded copy of dy are
 * tabulated once per run. */
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

#include "ops/conv/images_avx512.h"

#if IL_AVX512
/* The geometry the kernels with images in the lanes (images_avx512.h)
 * run for plan p, in the input gradient's terms: g itself for the
 * transposed input gradient and the weight gradient, dr_of(g) for the
 * direct forward at stride 1 (whose padding must then be below the
 * kernel); false where they do not run. */
static bool use_il(const geom *g, const nb__conv_plan *p, geom *r)
{
	if (p->path == CONV_PATH_DIRECT_TRANSPOSED && p->pass == CONV_PASS_INPUT_GRAD) {
		*r = *g;
		return il_fits(r, p->es, p->isa);
	}
	if (p->path == CONV_PATH_DIRECT && p->pass == CONV_PASS_WEIGHT_GRAD) {
		*r = *g;
		return ilw_fits(r, p->es, p->isa);
	}
	if (p->path == CONV_PATH_DIRECT && p->pass == CONV_PASS_FORWARD && !p->row_threads &&
	    g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->pt < g->kh &&
	    g->pl < g->kw) {
		*r = dr_of(g);
		return il_fits(r, p->es, p->isa);
	}
	return false;
}
#endif

bool nb__direct_images_lanes(const nb__conv_geom *g, nb__conv_pass pass, size_t es, int isa)
{
#if IL_AVX512
	const nb__conv_plan p = {.path = pass == CONV_PASS_INPUT_GRAD ? CONV_PATH_DIRECT_TRANSPOSED
	                                                              : CONV_PATH_DIRECT,
	                         .pass = pass,
	                         .es = es,
	                         .isa = isa};
	geom r;
	return g->groups == 1 && use_il(g, &p, &r);
#else
	(void)g, (void)pass, (void)es, (void)isa;
	return false;
#endif
}

/* The shared part of the workspace: the forward's packed weights
 * [O / DC_OB][C kH kW][DC_OB] (zeros past O) and the taps' offsets in the
 * padded image; the transposed input gradient's flipped weights
 * [C / ob][O][kH][kW][ob] (ob: the plan's level's DT_OB_OF); the forward
 * by rows' weights [O / ob][C][kH][kW][ob], unflipped (the weight
 * gradient by rows shares nothing); the phases' taps' offsets, each
 * phase's first tap and the weights [C / DC_OB][taps][DC_OB]. */
static size_t dc_shared_bytes(const geom *g, const nb__conv_plan *p)
{
	const size_t es = p->es;
	const int64_t nt = g->o * g->kh * g->kw;
	if (p->path == CONV_PATH_DIRECT_PHASES)
		return nb__align_up((size_t)(nt + g->sh * g->sw + 1) * sizeof(int64_t)) +
		       nb__align_up((size_t)(dp_of(g).cb * nt) * es);
#if IL_AVX512
	geom r;
	if (use_il(g, p, &r))
		return p->pass == CONV_PASS_WEIGHT_GRAD ? 0 : il_shared_bytes(&r);
#endif
	if (p->path == CONV_PATH_DIRECT_TRANSPOSED)
		return nb__align_up((size_t)(dt_of(g, es, NB_LANE_LEVEL(p->isa)).cb * nt) * es);
	if (p->path == CONV_PATH_DIRECT_ROWS && p->pass == CONV_PASS_WEIGHT_GRAD)
		return 0;
	if (p->path == CONV_PATH_DIRECT_ROWS) {
		const geom r = dr_of(g);
		return nb__align_up(
		    (size_t)(dt_of(&r, es, NB_LANE_LEVEL(p->isa)).cb * r.o * r.kh * r.kw) * es);
	}
	const dcgeom d = dc_of(g);
	size_t b = nb__align_up((size_t)d.nt * sizeof(int64_t));
	if (p->pass == CONV_PASS_FORWARD)
		b += nb__align_up((size_t)(d.ob * d.nt) * es);
	return b;
}

/* one thread's slice: the padded image (forward, weight gradient), the
 * transposed dy, packed dW and the thread's dW (weight gradient); the
 * padded dy (transposed input gradient); the padded x (forward by rows);
 * the padded image, the packed dy and the lanes' partial sums (weight
 * gradient by rows, drw_of);
 * the padded dy and a block of dx's channels pixel-major (phases) */
static size_t dc_slice(const geom *g, const nb__conv_plan *p)
{
	const size_t es = p->es;
	if (p->path == CONV_PATH_DIRECT_PHASES) {
		const dpgeom q = dp_of(g);
		return dp_dy_bytes(g, &q, es) + nb__align_up((size_t)(g->h * g->w * DC_OB) * es);
	}
#if IL_AVX512
	geom r;
	if (use_il(g, p, &r))
		return p->pass == CONV_PASS_WEIGHT_GRAD ? ilw_slice_bytes(&r) : il_slice_bytes(&r);
#endif
	if (p->path == CONV_PATH_DIRECT_TRANSPOSED)
		return nb__align_up(nb__direct_transposed_dy_bytes(g, es));
	if (p->path == CONV_PATH_DIRECT_ROWS && p->pass == CONV_PASS_WEIGHT_GRAD)
		return drw_of(g, NB_LANE_LEVEL(p->isa), es).slice;
	if (p->path == CONV_PATH_DIRECT_ROWS)
		return nb__align_up(nb__direct_rows_x_bytes(g, es));
	const dcgeom d = dc_of(g);
	size_t b = d.pad ? nb__align_up((size_t)(g->c * d.hp * d.wp) * es) : 0;
	if (p->pass == CONV_PASS_WEIGHT_GRAD)
		b += nb__align_up((size_t)(g->oh * g->ow * DC_OB) * es) +
		     nb__align_up((size_t)(d.ob * d.nt) * es) +
		     nb__align_up((size_t)(g->o * d.nt) * es);
	return b;
}

size_t nb__direct_workspace(const nb__conv_geom *g, const nb__conv_plan *p)
{
	return dc_shared_bytes(g, p) + (size_t)p->threads * dc_slice(g, p);
}

/* Runs the statement for each image N of the batch on the plan's batch
 * threads (static shares), SLICE being the thread's slice of the
 * workspace ws after the shared part */
#define DC_FOR_IMAGES(g, p, ws, N, SLICE, ...)                                                     \
	do {                                                                                       \
		const int th_ = (p)->threads;                                                      \
		char *const base_ = (char *)(ws) + dc_shared_bytes(g, p);                          \
		const size_t sb_ = dc_slice(g, p);                                                 \
		_Pragma("omp parallel for num_threads(th_) schedule(static) if (th_ > 1)") for (   \
		    int64_t N = 0; N < (g)->n; N++)                                                \
		{                                                                                  \
			void *SLICE = base_ + (size_t)omp_get_thread_num() * sb_;                  \
			__VA_ARGS__;                                                               \
		}                                                                                  \
	} while (0)

/* CALL(args..., np) with np a constant 1..DC_NP(T) (the level's block
 * size, 6 or 12 for float), for inlined block kernels */
#define DC_CASES(CALL, ...)                                                                        \
	if (DC_NP(T) > 6) {                                                                        \
		DC_CASES_TO(12, CALL, __VA_ARGS__)                                                 \
	} else {                                                                                   \
		DC_CASES_TO(6, CALL, __VA_ARGS__)                                                  \
	}
#define DC_CASES_TO(MAX, CALL, ...)                                                                \
	switch (np < MAX ? np : MAX) {                                                             \
	case 1:                                                                                    \
		CALL(__VA_ARGS__, 1);                                                              \
		break;                                                                             \
	case 2:                                                                                    \
		CALL(__VA_ARGS__, 2);                                                              \
		break;                                                                             \
	case 3:                                                                                    \
		CALL(__VA_ARGS__, 3);                                                              \
		break;                                                                             \
	case 4:                                                                                    \
		CALL(__VA_ARGS__, 4);                                                              \
		break;                                                                             \
	case 5:                                                                                    \
		CALL(__VA_ARGS__, 5);                                                              \
		break;                                                                             \
	case 6:                                                                                    \
		CALL(__VA_ARGS__, 6);                                                              \
		break;                                                                             \
	case 7:                                                                                    \
		CALL(__VA_ARGS__, 7);                                                              \
		break;                                                                             \
	case 8:                                                                                    \
		CALL(__VA_ARGS__, 8);                                                              \
		break;                                                                             \
	case 9:                                                                                    \
		CALL(__VA_ARGS__, 9);                                                              \
		break;                                                                             \
	case 10:                                                                                   \
		CALL(__VA_ARGS__, 10);                                                             \
		break;                                                                             \
	case 11:                                                                                   \
		CALL(__VA_ARGS__, 11);                                                             \
		break;                                                                             \
	default:                                                                                   \
		CALL(__VA_ARGS__, MAX);                                                            \
		break;                                                                             \
	}

/* dt_block for channel count NC with kW 5, 3 or any (inside dt_backward) */
#define DT_KW_CASES(NC)                                                                            \
	do {                                                                                       \
		if (g->kw == 5)                                                                    \
			SFX(dt_block)(g, q, dyp, wb, i, j0, blk, os, cn, 5, NC);                   \
		else if (g->kw == 3)                                                               \
			SFX(dt_block)(g, q, dyp, wb, i, j0, blk, os, cn, 3, NC);                   \
		else                                                                               \
			SFX(dt_block)(g, q, dyp, wb, i, j0, blk, os, cn, 0, NC);                   \
	} while (0)

/* dt_block2 for the cn <= 8 channels of a block: 2, 4, 6 or 8 of them,
 * kW 5, 3 or any */
#define DT2_KW_CASES(NC)                                                                           \
	do {                                                                                       \
		if (g->kw == 5)                                                                    \
			SFX(dt_block2)(g, q, dyp, wb, i, j0, b0, b1, os, cn, 5, NC);               \
		else if (g->kw == 3)                                                               \
			SFX(dt_block2)(g, q, dyp, wb, i, j0, b0, b1, os, cn, 3, NC);               \
		else                                                                               \
			SFX(dt_block2)(g, q, dyp, wb, i, j0, b0, b1, os, cn, 0, NC);               \
	} while (0)
#define DT2_NC_CASES                                                                               \
	do {                                                                                       \
		if (cn <= 2)                                                                       \
			DT2_KW_CASES(2);                                                           \
		else if (cn <= 4)                                                                  \
			DT2_KW_CASES(4);                                                           \
		else if (cn <= 6)                                                                  \
			DT2_KW_CASES(6);                                                           \
		else                                                                               \
			DT2_KW_CASES(8);                                                           \
	} while (0)

/* DT_KW_CASES for the cn channels of a block of OB (a constant): the even
 * count from cn up (a last block of 1-4 channels computes 2 or 4 of them,
 * not 6) */
#define DT_NC_CASES(OB)                                                                            \
	if ((OB) <= 6 || cn <= 6) {                                                                \
		if (cn <= 2)                                                                       \
			DT_KW_CASES(2);                                                            \
		else if (cn <= 4)                                                                  \
			DT_KW_CASES(4);                                                            \
		else                                                                               \
			DT_KW_CASES(6);                                                            \
	} else if ((OB) > 6) {                                                                     \
		switch ((cn + 1) / 2) {                                                            \
		case 4:                                                                            \
			DT_KW_CASES((OB) > 8 ? 8 : (OB));                                          \
			break;                                                                     \
		case 5:                                                                            \
			DT_KW_CASES((OB) > 10 ? 10 : (OB));                                        \
			break;                                                                     \
		case 6:                                                                            \
			DT_KW_CASES((OB) > 12 ? 12 : (OB));                                        \
			break;                                                                     \
		case 7:                                                                            \
			DT_KW_CASES((OB) > 14 ? 14 : (OB));                                        \
			break;                                                                     \
		default:                                                                           \
			DT_KW_CASES(OB);                                                           \
			break;                                                                     \
		}                                                                                  \
	}

/* NB_IN_REGISTER where a d1vec is one AVX2 register */
#define DRW_PIN_f32(v) NB_IN_REGISTER(v)
#define DRW_PIN_f64(v) ((void)(v))

#define NB_VARIANTS_IMPL "ops/conv/direct_impl.h"
#include "ops/variants.h"
