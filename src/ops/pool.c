/*
 * Pooling on [N, C, H, W]: max and average over kH x kW windows, and the
 * global average over H x W.
 *
 *   maxpool2d(x)               y = max over the window (padding is -inf);
 *                              the argmax of every output element (its
 *                              index in the input plane, int32) is kept in
 *                              y->aux, written by each forward run
 *   maxpool2d_backward(dy, y)  dx = dy scattered to y's argmax
 *   maxpool2d_gather(u, y)     u read at y's argmax (shaped like y)
 *   avgpool2d(x)               y = sum over the window / (kH kW), padding
 *                              counted as zeros (count_include_pad)
 *   avgpool2d_backward(dy)     dx = the adjoint: dy / (kH kW) spread back
 *   global_avgpool(x)          [N, C]: mean over H, W
 *
 * The scatter and the gather are adjoint (and linear in the gradient), so
 * they are each other's VJP; avgpool and its backward likewise.  Taking y
 * as an input orders the backward after the forward that wrote the argmax.
 *
 * Attributes: i[0], i[1] = kH, kW; i[2], i[3] = stride; i[4], i[5] =
 * padding (each side); i[6], i[7] = H, W of x (avgpool2d_backward only).
 */
#include "ops/conv/conv.h"

#include <math.h>
#include <stdlib.h>

typedef struct pgeom {
	int64_t planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
} pgeom;

/* the input x's shape, whichever pooling op t is */
static nb_shape x_shape(const nb_tensor *t)
{
	switch (t->op) {
	case NB_OP_MAXPOOL2D_BACKWARD:
	case NB_OP_MAXPOOL2D_GATHER:
		return t->in[1]->in[0]->shape;
	case NB_OP_AVGPOOL2D_BACKWARD: {
		nb_shape s = t->in[0]->shape;
		s.d[2] = t->a.i[6];
		s.d[3] = t->a.i[7];
		return s;
	}
	default:
		return t->in[0]->shape;
	}
}

static pgeom pgeom_of(const nb_tensor *t)
{
	const int64_t *a = t->a.i;
	nb_shape x = x_shape(t);
	pgeom g = {.planes = x.d[0] * x.d[1],
	           .h = x.d[2],
	           .w = x.d[3],
	           .kh = a[0],
	           .kw = a[1],
	           .sh = a[2],
	           .sw = a[3],
	           .ph = a[4],
	           .pw = a[5]};
	g.oh = nb__window_out(g.h, g.kh, g.sh, 2 * g.ph, 1);
	g.ow = nb__window_out(g.w, g.kw, g.sw, 2 * g.pw, 1);
	return g;
}

/* The window of output (i, j) clipped to the input: rows [*m0, *m1) and
 * columns [*k0, *k1) of the kernel, at input offset (*ih, *iw) (inlined
 * into each ISA variant of the pooling kernels). */
NB_INLINE void window(const pgeom *g, int64_t i, int64_t j, int64_t *ih, int64_t *iw, int64_t *m0,
                      int64_t *m1, int64_t *k0, int64_t *k1)
{
	*ih = i * g->sh - g->ph;
	*iw = j * g->sw - g->pw;
	*m0 = *ih < 0 ? -*ih : 0;
	*k0 = *iw < 0 ? -*iw : 0;
	*m1 = g->h - *ih < g->kh ? g->h - *ih : g->kh;
	*k1 = g->w - *iw < g->kw ? g->w - *iw : g->kw;
}

#define LL(v) ((long long)(v))

/* ---- shape rules ----------------------------------------------------------------- */

static nb_status shape_pool(nb_tensor *t)
{
	char b[128];
	nb_shape x = t->in[0]->shape;
	if (x.ndim != 4)
		return nb__op_fail(t, NB_ERR_SHAPE, "input must be 4-D [N,C,H,W], got %s",
		                   nb_shape_str(x, b, sizeof b));
	pgeom g = pgeom_of(t);
	if (g.oh <= 0 || g.ow <= 0)
		return nb__op_fail(
		    t, NB_ERR_SHAPE,
		    "window %lldx%lld is larger than the padded input %lldx%lld (input %s, "
		    "padding %lld,%lld)",
		    LL(g.kh), LL(g.kw), LL(g.h + 2 * g.ph), LL(g.w + 2 * g.pw),
		    nb_shape_str(x, b, sizeof b), LL(g.ph), LL(g.pw));
	if (g.h * g.w > INT32_MAX)
		return nb__op_fail(t, NB_ERR_SHAPE,
		                   "planes of %lldx%lld are too large (argmax is int32)", LL(g.h),
		                   LL(g.w));
	t->shape = NB_SHAPE(x.d[0], x.d[1], g.oh, g.ow);
	return NB_OK;
}

/* (dy, y) or (u, y) with y a maxpool2d result; want: dy's or u's shape */
static nb_status check_maxpool_pair(nb_tensor *t, nb_shape want, nb_shape out)
{
	char b1[128], b2[128];
	if (t->in[1]->op != NB_OP_MAXPOOL2D)
		return nb__op_fail(t, NB_ERR_ARG, "second input must be a maxpool2d result, not %s",
		                   nb__ops[t->in[1]->op]->name);
	if (!nb__shape_eq(t->in[0]->shape, want))
		return nb__op_fail(t, NB_ERR_SHAPE, "first input %s must have shape %s",
		                   nb_shape_str(t->in[0]->shape, b1, sizeof b1),
		                   nb_shape_str(want, b2, sizeof b2));
	t->shape = out;
	return NB_OK;
}

static nb_status shape_maxpool_backward(nb_tensor *t)
{
	nb_tensor *y = t->in[1];
	return check_maxpool_pair(t, y->shape,
	                          y->op == NB_OP_MAXPOOL2D ? y->in[0]->shape : y->shape);
}

static nb_status shape_maxpool_gather(nb_tensor *t)
{
	nb_tensor *y = t->in[1];
	return check_maxpool_pair(t, y->op == NB_OP_MAXPOOL2D ? y->in[0]->shape : y->shape,
	                          y->shape);
}

static nb_status shape_avgpool_backward(nb_tensor *t)
{
	char b1[128], b2[128];
	nb_shape dy = t->in[0]->shape;
	if (dy.ndim != 4)
		return nb__op_fail(t, NB_ERR_SHAPE, "gradient must be 4-D, got %s",
		                   nb_shape_str(dy, b1, sizeof b1));
	pgeom g = pgeom_of(t);
	nb_shape want = NB_SHAPE(dy.d[0], dy.d[1], g.oh, g.ow);
	if (!nb__shape_eq(dy, want))
		return nb__op_fail(
		    t, NB_ERR_SHAPE, "gradient %s does not match the pooled output %s",
		    nb_shape_str(dy, b1, sizeof b1), nb_shape_str(want, b2, sizeof b2));
	t->shape = x_shape(t);
	return NB_OK;
}

static nb_status shape_global_avgpool(nb_tensor *t)
{
	char b[128];
	nb_shape x = t->in[0]->shape;
	if (x.ndim != 4)
		return nb__op_fail(t, NB_ERR_SHAPE, "input must be 4-D [N,C,H,W], got %s",
		                   nb_shape_str(x, b, sizeof b));
	t->shape = NB_SHAPE(x.d[0], x.d[1]);
	return NB_OK;
}

/* ---- kernels: one (n, c) plane per thread ------------------------------------------- */

/* Pooling's rows are short (LeNet's 14 and 5 outputs, fewer than a 512-bit
 * register's 16 floats): its AVX-512 variants keep 256-bit vectors, which
 * measured the 2x2 max pooling 1.8x as fast as 512-bit ones on Zen 4
 * (docs/design.md, "Kernels for the CPU"). */
#if defined(NB_MULTIVERSION)
#undef NB_TARGET_AVX512
#define NB_TARGET_AVX512 NB_TARGET_AVX512_256
#endif

#define PLANES_PARALLEL                                                                            \
	_Pragma(                                                                                   \
	    "omp parallel for num_threads(ex->threads) if (g.planes * g.oh * g.ow * g.kh * g.kw >= NB_PAR_MIN)")

/* ---- 2x2 stride-2 windows of floats at AVX-512 ----------------------------------
 * LeNet's planes give rows of 14 and 5 outputs: the loops here ran them as
 * a vector of 8, one of 4 and single elements, plus the bounds of each.
 * These take 16 outputs of a row at once: two masked loads per input row,
 * the even and odd columns permuted apart, masked stores (no load or store
 * beyond the row).  Called where the kernel's level is AVX-512. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define POOL_AVX512 1
#include <immintrin.h>
#define AVX512_FN __attribute__((target("avx512f")))

static const int32_t pool_even[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};

/* the mask of the first n lanes, n clipped to [0, 16] */
static inline unsigned pool_lanes(int64_t n)
{
	return n <= 0 ? 0u : n >= 16 ? 0xffffu : (1u << n) - 1u;
}

/* y and the argmax of one NaN-free plane x [h, w], of relu(x) with relu */
AVX512_FN static void pool2_plane_f32(const float *x, int64_t w, int64_t oh, int64_t ow, float *y,
                                      int32_t *am, bool relu)
{
	const __m512i even = _mm512_loadu_si512(pool_even),
	              odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
	const __m512i one = _mm512_set1_epi32(1), wo = _mm512_set1_epi32((int32_t)w),
	              w1 = _mm512_set1_epi32((int32_t)w + 1);
	for (int64_t i = 0; i < oh; i++)
		for (int64_t j0 = 0; j0 < ow; j0 += 16) {
			const int64_t n = ow - j0 < 16 ? ow - j0 : 16, at = 2 * i * w + 2 * j0;
			const __mmask16 lo = (__mmask16)pool_lanes(2 * n),
			                hi = (__mmask16)pool_lanes(2 * n - 16);
			const float *r0 = x + at, *r1 = r0 + w;
			__m512 p0 = _mm512_maskz_loadu_ps(lo, r0),
			       p1 = _mm512_maskz_loadu_ps(hi, r0 + 16);
			__m512 q0 = _mm512_maskz_loadu_ps(lo, r1),
			       q1 = _mm512_maskz_loadu_ps(hi, r1 + 16);
			if (relu) { /* relu's x > 0 ? x : 0 */
				const __m512 z = _mm512_setzero_ps();
				p0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p0, z, _CMP_GT_OQ), p0);
				p1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p1, z, _CMP_GT_OQ), p1);
				q0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(q0, z, _CMP_GT_OQ), q0);
				q1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(q1, z, _CMP_GT_OQ), q1);
			}
			const __m512 a = _mm512_permutex2var_ps(p0, even, p1),
			             b = _mm512_permutex2var_ps(p0, odd, p1),
			             c = _mm512_permutex2var_ps(q0, even, q1),
			             d = _mm512_permutex2var_ps(q0, odd, q1);
			/* the first maximum in window order: a later value only
			 * when strictly greater */
			__m512 v = a;
			__m512i off = _mm512_setzero_si512();
			__mmask16 m = _mm512_cmp_ps_mask(b, v, _CMP_GT_OQ);
			v = _mm512_mask_mov_ps(v, m, b), off = _mm512_mask_mov_epi32(off, m, one);
			m = _mm512_cmp_ps_mask(c, v, _CMP_GT_OQ);
			v = _mm512_mask_mov_ps(v, m, c), off = _mm512_mask_mov_epi32(off, m, wo);
			m = _mm512_cmp_ps_mask(d, v, _CMP_GT_OQ);
			v = _mm512_mask_mov_ps(v, m, d), off = _mm512_mask_mov_epi32(off, m, w1);
			const __m512i arg = _mm512_add_epi32(
			    _mm512_add_epi32(even, _mm512_set1_epi32((int32_t)at)), off);
			const __mmask16 out = (__mmask16)pool_lanes(n);
			_mm512_mask_storeu_ps(y + i * ow + j0, out, v);
			_mm512_mask_storeu_epi32(am + i * ow + j0, out, arg);
		}
}

/* dx of one plane from dy and the argmax: each input is in one window at
 * most, so each of a window's four positions gets dy where it is the
 * argmax, else 0 (dy + 0, as the scatter's 0 + dy turns -0 into +0); the
 * column and row no window covers (odd w, h) are zeroed.  With y (the
 * pooled values), dy counts only where lo < y < hi, else 0. */
AVX512_FN static void pool2_back_plane_f32(const float *dy, const int32_t *am, int64_t h, int64_t w,
                                           int64_t oh, int64_t ow, float *dx, const float *y,
                                           float lo_y, float hi_y)
{
	static const int32_t ilo[16] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
	static const int32_t ihi[16] = {8,  24, 9,  25, 10, 26, 11, 27,
	                                12, 28, 13, 29, 14, 30, 15, 31};
	const __m512i even = _mm512_loadu_si512(pool_even), one = _mm512_set1_epi32(1);
	const __m512i xlo = _mm512_loadu_si512(ilo), xhi = _mm512_loadu_si512(ihi);
	for (int64_t i = 0; i < oh; i++)
		for (int64_t j0 = 0; j0 < ow; j0 += 16) {
			const int64_t n = ow - j0 < 16 ? ow - j0 : 16, e = i * ow + j0;
			const __mmask16 in = (__mmask16)pool_lanes(n),
			                lo = (__mmask16)pool_lanes(2 * n),
			                hi = (__mmask16)pool_lanes(2 * n - 16);
			__mmask16 keep = in;
			if (y) {
				const __m512 v = _mm512_maskz_loadu_ps(in, y + e);
				keep = _mm512_mask_cmp_ps_mask(keep, v, _mm512_set1_ps(lo_y),
				                               _CMP_GT_OQ);
				keep = _mm512_mask_cmp_ps_mask(keep, v, _mm512_set1_ps(hi_y),
				                               _CMP_LT_OQ);
			}
			const __m512 g =
			    _mm512_add_ps(_mm512_maskz_loadu_ps(keep, dy + e), _mm512_setzero_ps());
			const __m512i arg = _mm512_maskz_loadu_epi32(in, am + e);
			for (int r = 0; r < 2; r++) {
				const int64_t at = (2 * i + r) * w + 2 * j0;
				const __m512i p =
				    _mm512_add_epi32(even, _mm512_set1_epi32((int32_t)at));
				const __m512 ev = _mm512_maskz_mov_ps(
				                 _mm512_cmpeq_epi32_mask(arg, p), g),
				             od = _mm512_maskz_mov_ps(
				                 _mm512_cmpeq_epi32_mask(arg,
				                                         _mm512_add_epi32(p, one)),
				                 g);
				_mm512_mask_storeu_ps(dx + at, lo,
				                      _mm512_permutex2var_ps(ev, xlo, od));
				_mm512_mask_storeu_ps(dx + at + 16, hi,
				                      _mm512_permutex2var_ps(ev, xhi, od));
			}
		}
	if (w % 2)
		for (int64_t r = 0; r < 2 * oh; r++)
			dx[r * w + w - 1] = 0;
	memset(dx + 2 * oh * w, 0, (size_t)((h - 2 * oh) * w) * sizeof(float));
}
#else
#define POOL_AVX512 0
#define pool2_plane_f32(...) ((void)0)
#define pool2_back_plane_f32(...) ((void)0)
#endif

/* First maximum in row-major window order; a NaN wins (and stays).
 * MAXPOOL_BODY(RELU): with RELU, t = maxpool2d(relu(x)) computed from x, each
 * value taken through relu's x > 0 ? x : 0 as it is read (the fusion
 * "maxpool2d+relu", below). */
#define RELU_OF(RELU, v) ((RELU) && !isgreater((v), (T)0) ? (T)0 : (v))
#define MAXPOOL_BODY(RELU)                                                                         \
	const pgeom g = pgeom_of(t);                                                               \
	const T *X = (const T *)((RELU) ? t->in[0]->in[0] : t->in[0])->data;                       \
	T *Y = NB_OUT(t, T);                                                                       \
	int32_t *arg = t->aux;                                                                     \
	/* the common 2x2 stride-2 window without padding: no bounds per window */                 \
	const bool two =                                                                           \
	    g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0;            \
	PLANES_PARALLEL                                                                            \
	for (int64_t p = 0; p < g.planes; p++) {                                                   \
		const T *x = X + p * g.h * g.w;                                                    \
		T *y = Y + p * g.oh * g.ow;                                                        \
		int32_t *am = arg + p * g.oh * g.ow;                                               \
		/* a NaN-free plane takes the 2x2 path below: branch-free quiet compares           \
		 * (isgreater: data-dependent branches mispredict, and a plain > may               \
		 * trap, so the compiler would not vectorise it); a NaN needs the                  \
		 * general loop's rule */                                                          \
		int nan = 0;                                                                       \
		for (int64_t k = 0; !(RELU) && two && k < g.h * g.w; k++)                          \
			nan |= x[k] != x[k];                                                       \
		if (POOL_AVX512 && two && !nan && sizeof(T) == sizeof(float) && ex->isa >= 2) {    \
			pool2_plane_f32((const float *)x, g.w, g.oh, g.ow, (float *)y, am, RELU);  \
			continue;                                                                  \
		}                                                                                  \
		if (two && !nan) {                                                                 \
			const int32_t w = (int32_t)g.w;                                            \
			for (int64_t i = 0; i < g.oh; i++) {                                       \
				const T *r0 = x + 2 * i * g.w, *r1 = r0 + g.w;                     \
				T *yr = y + i * g.ow;                                              \
				int32_t *ar = am + i * g.ow;                                       \
				const int32_t e0 = (int32_t)(2 * i * g.w);                         \
				for (int64_t j = 0; j < g.ow; j++) {                               \
					T a = RELU_OF(RELU, r0[2 * j]),                            \
					  b = RELU_OF(RELU, r0[2 * j + 1]),                        \
					  c = RELU_OF(RELU, r1[2 * j]),                            \
					  d = RELU_OF(RELU, r1[2 * j + 1]);                        \
					T v = a;                                                   \
					int32_t off = 0;                                           \
					int cb = isgreater(b, v);                                  \
					v = cb ? b : v, off = cb ? 1 : off;                        \
					int cc = isgreater(c, v);                                  \
					v = cc ? c : v, off = cc ? w : off;                        \
					int cd = isgreater(d, v);                                  \
					v = cd ? d : v, off = cd ? w + 1 : off;                    \
					yr[j] = v;                                                 \
					ar[j] = e0 + 2 * (int32_t)j + off;                         \
				}                                                                  \
			}                                                                          \
			continue;                                                                  \
		}                                                                                  \
		for (int64_t i = 0; i < g.oh; i++)                                                 \
			for (int64_t j = 0; j < g.ow; j++) {                                       \
				int64_t ih, iw, m0, m1, k0, k1;                                    \
				window(&g, i, j, &ih, &iw, &m0, &m1, &k0, &k1);                    \
				int64_t best = (ih + m0) * g.w + iw + k0;                          \
				T v = RELU_OF(RELU, x[best]);                                      \
				for (int64_t m = m0; m < m1; m++)                                  \
					for (int64_t k = k0; k < k1; k++) {                        \
						int64_t e = (ih + m) * g.w + iw + k;               \
						const T u = RELU_OF(RELU, x[e]);                   \
						if (u > v || (isnan(u) && !isnan(v)))              \
							v = u, best = e;                           \
					}                                                          \
				y[i * g.ow + j] = v;                                               \
				am[i * g.ow + j] = (int32_t)best;                                  \
			}                                                                          \
	}

NB_KERNELS(maxpool, MAXPOOL_BODY(0))
NB_KERNELS(maxpool_relu, MAXPOOL_BODY(1))

/* dx[argmax] += dy (windows may overlap).  MAXPOOL_BACK_BODY(MASK): with
 * MASK, t = mask_range(maxpool2d_backward(dy, y), r) with y =
 * maxpool2d(r), r = relu(x), computed from dy and y (the fusion
 * "maxpool2d_backward+relu", below): a window's dy counts only where lo < y
 * < hi, the mask's range, as y is x at the argmax wherever y > 0. */
#define MAXPOOL_BACK_BODY(MASK)                                                                    \
	const nb_tensor *b = (MASK) ? t->in[0] : t; /* the maxpool2d_backward node */              \
	const pgeom g = pgeom_of(b);                                                               \
	const T *DY = NB_IN(b, 0, T), *YV = (MASK) ? NB_IN(b, 1, T) : NULL;                        \
	const int32_t *arg = b->in[1]->aux;                                                        \
	T *DX = NB_OUT(t, T);                                                                      \
	const T lo = (T)t->a.f[0], hi = (T)t->a.f[1];                                              \
	(void)lo, (void)hi;                                                                        \
	const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;                                           \
	const bool two =                                                                           \
	    g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0;            \
	PLANES_PARALLEL                                                                            \
	for (int64_t p = 0; p < g.planes; p++) {                                                   \
		T *dx = DX + p * hw;                                                               \
		if (POOL_AVX512 && two && sizeof(T) == sizeof(float) && ex->isa >= 2) {            \
			pool2_back_plane_f32((const float *)DY + p * ohw, arg + p * ohw, g.h, g.w, \
			                     g.oh, g.ow, (float *)dx,                              \
			                     (MASK) ? (const float *)YV + p * ohw : NULL,          \
			                     (float)lo, (float)hi);                                \
			continue;                                                                  \
		}                                                                                  \
		memset(dx, 0, (size_t)hw * sizeof(T));                                             \
		for (int64_t e = 0; e < ohw; e++) {                                                \
			const T d = DY[p * ohw + e];                                               \
			dx[arg[p * ohw + e]] +=                                                    \
			    !(MASK) || (YV[p * ohw + e] > lo && YV[p * ohw + e] < hi) ? d : (T)0;  \
		}                                                                                  \
	}

NB_KERNELS(maxpool_backward, MAXPOOL_BACK_BODY(0))
NB_KERNELS(maxpool_backward_relu, MAXPOOL_BACK_BODY(1))

NB_KERNELS(maxpool_gather, {
	const pgeom g = pgeom_of(t);
	const T *U = NB_IN(t, 0, T);
	const int32_t *arg = t->in[1]->aux;
	T *Y = NB_OUT(t, T);
	const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
	PLANES_PARALLEL
	for (int64_t p = 0; p < g.planes; p++)
		for (int64_t e = 0; e < ohw; e++)
			Y[p * ohw + e] = U[p * hw + arg[p * ohw + e]];
})

NB_KERNELS(avgpool, {
	const pgeom g = pgeom_of(t);
	const T *X = NB_IN(t, 0, T);
	T *Y = NB_OUT(t, T);
	const T scale = (T)(1.0 / (double)(g.kh * g.kw));
	/* a 1x1 window is a subsampling (option-A shortcuts): a strided copy */
	const bool one = g.kh == 1 && g.kw == 1 && !g.ph && !g.pw;
	PLANES_PARALLEL
	for (int64_t p = 0; p < g.planes; p++) {
		const T *x = X + p * g.h * g.w;
		T *y = Y + p * g.oh * g.ow;
		if (one) {
			for (int64_t i = 0; i < g.oh; i++)
				for (int64_t j = 0; j < g.ow; j++)
					y[i * g.ow + j] = x[i * g.sh * g.w + j * g.sw];
			continue;
		}
		for (int64_t i = 0; i < g.oh; i++)
			for (int64_t j = 0; j < g.ow; j++) {
				int64_t ih, iw, m0, m1, k0, k1;
				window(&g, i, j, &ih, &iw, &m0, &m1, &k0, &k1);
				T s = 0;
				for (int64_t m = m0; m < m1; m++)
					for (int64_t k = k0; k < k1; k++)
						s += x[(ih + m) * g.w + iw + k];
				y[i * g.ow + j] = s * scale;
			}
	}
})

NB_KERNELS(avgpool_backward, {
	const pgeom g = pgeom_of(t);
	const T *DY = NB_IN(t, 0, T);
	T *DX = NB_OUT(t, T);
	const T scale = (T)(1.0 / (double)(g.kh * g.kw));
	const bool one = g.kh == 1 && g.kw == 1 && !g.ph && !g.pw;
	PLANES_PARALLEL
	for (int64_t p = 0; p < g.planes; p++) {
		T *dx = DX + p * g.h * g.w;
		const T *dy = DY + p * g.oh * g.ow;
		memset(dx, 0, (size_t)(g.h * g.w) * sizeof(T));
		if (one) { /* the strided copy's adjoint */
			for (int64_t i = 0; i < g.oh; i++)
				for (int64_t j = 0; j < g.ow; j++)
					dx[i * g.sh * g.w + j * g.sw] = dy[i * g.ow + j];
			continue;
		}
		for (int64_t i = 0; i < g.oh; i++)
			for (int64_t j = 0; j < g.ow; j++) {
				int64_t ih, iw, m0, m1, k0, k1;
				window(&g, i, j, &ih, &iw, &m0, &m1, &k0, &k1);
				const T v = dy[i * g.ow + j] * scale;
				for (int64_t m = m0; m < m1; m++)
					for (int64_t k = k0; k < k1; k++)
						dx[(ih + m) * g.w + iw + k] += v;
			}
	}
})

NB_KERNELS(global_avgpool, {
	const nb_shape s = t->in[0]->shape;
	const int64_t planes = s.d[0] * s.d[1], hw = s.d[2] * s.d[3];
	const T *X = NB_IN(t, 0, T);
	T *Y = NB_OUT(t, T);
	_Pragma("omp parallel for num_threads(ex->threads) if (planes * hw >= NB_PAR_MIN)") for (
	    int64_t p = 0; p < planes; p++) Y[p] = (T)(nb__sum(X + p * hw, hw) / (double)hw);
})

/* ---- VJPs ------------------------------------------------------------------------------
 * maxpool:           dx = scatter(g, y)            (maxpool2d_backward)
 * scatter(dy, y):    d dy = gather(u, y); y gets none (piecewise constant)
 * gather(u, y):      du = scatter(g, y)
 * avgpool:           dx = avgpool2d_backward(g);   its VJP is avgpool2d again
 * global_avgpool:    dx = g / (H W) broadcast over H, W                        */

static void vjp_maxpool(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb__op2(NB_OP_MAXPOOL2D_BACKWARD, g, t, &t->a);
}

static void vjp_maxpool_backward(nb_tensor *t, nb_tensor *u, nb_tensor **gin, const bool *need)
{
	if (need[0])
		gin[0] = nb__op2(NB_OP_MAXPOOL2D_GATHER, u, t->in[1], &t->a);
}

static void vjp_maxpool_gather(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	if (need[0])
		gin[0] = nb__op2(NB_OP_MAXPOOL2D_BACKWARD, g, t->in[1], &t->a);
}

static void vjp_avgpool(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	nb_attrs at = t->a;
	at.i[6] = t->in[0]->shape.d[2];
	at.i[7] = t->in[0]->shape.d[3];
	gin[0] = nb__op1(NB_OP_AVGPOOL2D_BACKWARD, g, &at);
}

static void vjp_avgpool_backward(nb_tensor *t, nb_tensor *u, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb__op1(NB_OP_AVGPOOL2D, u, &t->a);
}

static void vjp_global_avgpool(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	nb_shape s = t->in[0]->shape;
	nb_tensor *g4 = nb_reshape(g, NB_SHAPE(s.d[0], s.d[1], 1, 1));
	gin[0] = nb_mul_scalar(nb__broadcast_to(g4, s), 1.0 / (double)(s.d[2] * s.d[3]));
}

static void label_pool(const nb_tensor *t, char *buf, size_t n)
{
	const int64_t *a = t->a.i;
	snprintf(buf, n, "%lldx%lld stride %lld pad %lld", LL(a[0]), LL(a[1]), LL(a[2]), LL(a[4]));
}

/* ---- constructors ---------------------------------------------------------------------- */

static nb_tensor *pool(int op, nb_tensor *x, int kernel, int stride, int pad)
{
	if (!x)
		return NULL;
	nb_graph *g = x->g;
	if (g->status != NB_OK)
		return g->placeholder;
	const char *name = nb__ops[op]->name;
	if (kernel < 1 || stride < 0 || pad < 0) {
		nb__fail(g, NB_ERR_ARG,
		         "%s(%s): kernel must be >= 1, stride >= 0 (0: the kernel "
		         "size) and pad >= 0; got kernel %d stride %d pad %d",
		         name, x->name, kernel, stride, pad);
		return g->placeholder;
	}
	/* PyTorch's rule; it also keeps every window on at least one real pixel */
	if (pad > kernel / 2) { /* 2 * pad would overflow for a pad near INT_MAX */
		nb__fail(g, NB_ERR_ARG, "%s(%s): pad %d must be at most half the kernel %d", name,
		         x->name, pad, kernel);
		return g->placeholder;
	}
	if (!stride)
		stride = kernel;
	nb_attrs at = {.i = {kernel, kernel, stride, stride, pad, pad}};
	return nb__op1(op, x, &at);
}

nb_tensor *nb_maxpool2d(nb_tensor *x, int kernel, int stride, int pad)
{
	nb_tensor *y = pool(NB_OP_MAXPOOL2D, x, kernel, stride, pad);
	if (!y || nb__is_placeholder(y))
		return y;
	/* the argmax lives with the node, so no per-run allocation */
	y->aux_bytes = (size_t)y->size * sizeof(int32_t);
	if (!(y->aux = malloc(y->aux_bytes))) {
		nb__fail(y->g, NB_ERR_NOMEM, "maxpool2d(%s): out of memory for the argmax",
		         x->name);
		return y->g->placeholder;
	}
	return y;
}

nb_tensor *nb_avgpool2d(nb_tensor *x, int kernel, int stride, int pad)
{
	return pool(NB_OP_AVGPOOL2D, x, kernel, stride, pad);
}

nb_tensor *nb_global_avgpool(nb_tensor *x)
{
	return nb__op1(NB_OP_GLOBAL_AVGPOOL, x, NULL);
}

/* ---- gradcheck examples ---------------------------------------------------------------- */

static int rnd(nb_graph *g, int n)
{
	return (int)(nb__rng_next(g) % (uint64_t)n);
}

/* x [1-2, 1-3, H, W] with a kernel 1-3, stride 0-2 and pad <= kernel/2 */
static nb_tensor *rand_pool(nb_graph *g, int op, nb_tensor **x)
{
	int k = 1 + rnd(g, 3), s = rnd(g, 3), p = rnd(g, k / 2 + 1);
	*x = NB_EX_PARAM(g, "x",
	                 NB_SHAPE(1 + rnd(g, 2), 1 + rnd(g, 3), k + rnd(g, 4), k + rnd(g, 4)));
	return op == NB_OP_MAXPOOL2D ? nb_maxpool2d(*x, k, s, p) : nb_avgpool2d(*x, k, s, p);
}

static nb_tensor *ex_maxpool(nb_graph *g, nb_tensor **wrt, int *n)
{
	*n = 1;
	return rand_pool(g, NB_OP_MAXPOOL2D, &wrt[0]);
}

static nb_tensor *ex_avgpool(nb_graph *g, nb_tensor **wrt, int *n)
{
	*n = 1;
	return rand_pool(g, NB_OP_AVGPOOL2D, &wrt[0]);
}

/* the adjoint ops: x only fixes the argmax / geometry and is not checked */
static nb_tensor *ex_maxpool_pair(nb_graph *g, nb_tensor **wrt, int *n, int op)
{
	nb_tensor *x, *y = rand_pool(g, NB_OP_MAXPOOL2D, &x);
	if (nb__is_placeholder(y))
		return y;
	wrt[0] = NB_EX_PARAM(g, "u", op == NB_OP_MAXPOOL2D_BACKWARD ? y->shape : x->shape);
	*n = 1;
	return nb__op2(op, wrt[0], y, &y->a);
}

static nb_tensor *ex_maxpool_backward(nb_graph *g, nb_tensor **wrt, int *n)
{
	return ex_maxpool_pair(g, wrt, n, NB_OP_MAXPOOL2D_BACKWARD);
}

static nb_tensor *ex_maxpool_gather(nb_graph *g, nb_tensor **wrt, int *n)
{
	return ex_maxpool_pair(g, wrt, n, NB_OP_MAXPOOL2D_GATHER);
}

static nb_tensor *ex_avgpool_backward(nb_graph *g, nb_tensor **wrt, int *n)
{
	nb_tensor *x, *y = rand_pool(g, NB_OP_AVGPOOL2D, &x);
	if (nb__is_placeholder(y))
		return y;
	wrt[0] = NB_EX_PARAM(g, "dy", y->shape);
	*n = 1;
	nb_attrs at = y->a;
	at.i[6] = x->shape.d[2];
	at.i[7] = x->shape.d[3];
	return nb__op1(NB_OP_AVGPOOL2D_BACKWARD, wrt[0], &at);
}

static nb_tensor *ex_global_avgpool(nb_graph *g, nb_tensor **wrt, int *n)
{
	wrt[0] = NB_EX_PARAM(g, "x", nb__rand_shape(g, 4, 4, 4));
	*n = 1;
	return nb_global_avgpool(wrt[0]);
}

/* ---- fusions (graph/compile.c) ---------------------------------------------------------
 * relu then max pooling, the convolutional nets' pattern, in one pass each
 * way: the relu's output and the scatter's dx are never stored.  The same
 * bits as the separate steps: the pooling takes relu of each value as it
 * reads it; and where y = maxpool2d(relu(x)) > 0, y is x at the argmax, so
 * relu's mask (0 < x < inf) at the argmax is 0 < y < inf, and everywhere
 * else the scatter wrote 0. */

/* maxpool2d(relu(x)): the pooling reads x */
const nb_fusion nb__fuse_maxpool_relu = {.name = "maxpool2d+relu",
                                         .op = NB_OP_MAXPOOL2D,
                                         .producer = NB_OP_RELU,
                                         .forward_f32 = maxpool_relu_f32,
                                         .forward_f64 = maxpool_relu_f64};

/* relu's VJP mask_range(g, r, 0, inf) of g = maxpool2d_backward(dy, y), y =
 * maxpool2d(r), r = relu(x): dx from dy and y */
static bool match_maxpool_backward_relu(const nb_tensor *t)
{
	if (t->a.i[0] || t->a.f[0] != 0 || t->a.f[1] != INFINITY)
		return false;
	const nb_tensor *b = t->in[0], *y = b->in[b->n_in - 1];
	return y->op == NB_OP_MAXPOOL2D && y->in[0]->op == NB_OP_RELU && y->in[0] == t->in[1];
}

const nb_fusion nb__fuse_maxpool_backward_relu = {.name = "maxpool2d_backward+relu",
                                                  .op = NB_OP_MASK_RANGE,
                                                  .producer = NB_OP_MAXPOOL2D_BACKWARD,
                                                  .match = match_maxpool_backward_relu,
                                                  .forward_f32 = maxpool_backward_relu_f32,
                                                  .forward_f64 = maxpool_backward_relu_f64};

const nb_opdef nb__op_maxpool2d = {.name = "maxpool2d",
                                   .n_inputs = 1,
                                   .shape = shape_pool,
                                   .forward_f32 = maxpool_f32,
                                   .forward_f64 = maxpool_f64,
                                   .vjp = vjp_maxpool,
                                   .label = label_pool,
                                   .example = ex_maxpool};

const nb_opdef nb__op_maxpool2d_backward = {.name = "maxpool2d_backward",
                                            .n_inputs = 2,
                                            .shape = shape_maxpool_backward,
                                            .forward_f32 = maxpool_backward_f32,
                                            .forward_f64 = maxpool_backward_f64,
                                            .vjp = vjp_maxpool_backward,
                                            .label = label_pool,
                                            .example = ex_maxpool_backward};

const nb_opdef nb__op_maxpool2d_gather = {.name = "maxpool2d_gather",
                                          .n_inputs = 2,
                                          .shape = shape_maxpool_gather,
                                          .forward_f32 = maxpool_gather_f32,
                                          .forward_f64 = maxpool_gather_f64,
                                          .vjp = vjp_maxpool_gather,
                                          .label = label_pool,
                                          .example = ex_maxpool_gather};

const nb_opdef nb__op_avgpool2d = {.name = "avgpool2d",
                                   .n_inputs = 1,
                                   .shape = shape_pool,
                                   .forward_f32 = avgpool_f32,
                                   .forward_f64 = avgpool_f64,
                                   .vjp = vjp_avgpool,
                                   .label = label_pool,
                                   .example = ex_avgpool};

const nb_opdef nb__op_avgpool2d_backward = {.name = "avgpool2d_backward",
                                            .n_inputs = 1,
                                            .shape = shape_avgpool_backward,
                                            .forward_f32 = avgpool_backward_f32,
                                            .forward_f64 = avgpool_backward_f64,
                                            .vjp = vjp_avgpool_backward,
                                            .label = label_pool,
                                            .example = ex_avgpool_backward};

const nb_opdef nb__op_global_avgpool = {.name = "global_avgpool",
                                        .n_inputs = 1,
                                        .shape = shape_global_avgpool,
                                        .forward_f32 = global_avgpool_f32,
                                        .forward_f64 = global_avgpool_f64,
                                        .vjp = vjp_global_avgpool,
                                        .example = ex_global_avgpool};
