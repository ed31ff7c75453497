/*
 * The optimizer ops: one update op per family, and the global gradient
 * norm that clipping reads.
 *
 * An update node's inputs are (w, g, state..., hyper, [norm]); it writes w
 * and the state in place and has no output buffer.  The hyper-parameters
 * come from the input hyper, a vector of doubles (update.h names the
 * slots) that the optimizer writes before each run; i[0] = number of state
 * inputs, i[1] = 1 when the last input is the global norm, i[2] = variant
 * flags (NB_UPDATE_*).  With clipping the gradient is first scaled by
 * c = min(1, clip_norm / norm).  The formulas are in docs/optim.md.
 */
#include "ops/update.h"
#include "ops/kernel.h"

/* every multiply and add rounded on its own, as ISO C mode has GCC do:
 * the AVX-512 Adam kernel below gives these loops' bits */
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#include <tgmath.h>

nb_tensor *nb__hyper_new(nb_graph *g, const char *name)
{
	return nb__leaf_f64(g, name, NB_SHAPE(NB_HYPER_COUNT));
}

/* ---- shape rule and common pieces -------------------------------------------- */

static nb_status shape_update(nb_tensor *t)
{
	char b1[128], b2[128];
	int n_state = (int)t->a.i[0], clip = (int)t->a.i[1];
	if (t->n_in != 3 + n_state + clip)
		return nb__op_fail(
		    t, NB_ERR_ARG,
		    "takes %d inputs (parameter, gradient, %d state%s, hyper-parameters%s), got %d",
		    3 + n_state + clip, n_state, n_state == 1 ? "" : "s", clip ? ", norm" : "",
		    t->n_in);
	for (int k = 1; k < 2 + n_state; k++)
		if (!nb__shape_eq(t->in[0]->shape, t->in[k]->shape))
			return nb__op_fail(t, NB_ERR_SHAPE, "parameter %s and %s %s differ",
			                   nb_shape_str(t->in[0]->shape, b1, sizeof b1),
			                   k == 1 ? "gradient" : "state",
			                   nb_shape_str(t->in[k]->shape, b2, sizeof b2));
	const nb_tensor *h = t->in[2 + n_state];
	if (!(h->flags & NB_TF_F64) || h->shape.ndim != 1 || h->size != NB_HYPER_COUNT)
		return nb__op_fail(t, NB_ERR_ARG,
		                   "input %d (%s) is not a hyper-parameter vector of %d doubles",
		                   2 + n_state, h->name, NB_HYPER_COUNT);
	if (clip && t->in[t->n_in - 1]->size != 1)
		return nb__op_fail(t, NB_ERR_SHAPE, "the gradient norm must be a scalar, not %s",
		                   nb_shape_str(t->in[t->n_in - 1]->shape, b1, sizeof b1));
	t->shape = t->in[0]->shape;
	return NB_OK;
}

/* The hyper-parameters of update node t. */
static const double *hyper(const nb_tensor *t)
{
	return (const double *)t->in[2 + t->a.i[0]]->data;
}

/* The clipping factor min(1, clip_norm / norm); 1 without clipping.  A
 * NaN norm leaves the gradient alone (and the NaN reaches the weights, as
 * in PyTorch without error_if_nonfinite). */
static double clip_scale(const nb_tensor *t)
{
	if (!t->a.i[1])
		return 1.0;
	double norm = nb__get(t->in[t->n_in - 1], 0), c = hyper(t)[NB_HYPER_CLIP];
	return norm > c ? c / norm : 1.0;
}

/* Declarations every update kernel starts with: the hyper-parameters H,
 * the parameter W, the gradient G, the clip factor sc, lr and the L2
 * weight decay wd. */
#define UPDATE_HEAD                                                                                \
	const double *H = hyper(t);                                                                \
	T *W = (T *)t->in[0]->data;                                                                \
	const T *G = NB_IN(t, 1, T);                                                               \
	const T sc = (T)clip_scale(t), lr = (T)H[NB_HYPER_LR];                                     \
	const T wd = (T)H[NB_HYPER_WD];                                                            \
	const int64_t n = t->size;

/* ---- SGD: w <- w - lr (g + wd w) ------------------------------------------------- */

NB_KERNELS(sgd_update, {
	UPDATE_HEAD
	NB_PAR_FOR(ex->threads, i, n, W[i] -= lr * (sc * G[i] + wd * W[i]););
})

/* ---- momentum --------------------------------------------------------------------
 * g' = g + wd w, k = 1 (classic) or 1 - beta (EWMA):
 *   v <- beta v + k g'
 *   w <- w - lr v                 (heavy ball)
 *   w <- w - lr (k g' + beta v)   (Nesterov, PyTorch's formulation) */

NB_KERNELS(momentum_update, {
	UPDATE_HEAD
	T *V = (T *)t->in[2]->data;
	const T beta = (T)H[NB_HYPER_BETA1];
	const T k = t->a.i[2] & NB_UPDATE_EWMA ? (T)(1.0 - H[NB_HYPER_BETA1]) : (T)1;
	const bool nesterov = t->a.i[2] & NB_UPDATE_NESTEROV;
	NB_PAR_FOR(ex->threads, i, n, {
		T g = sc * G[i] + wd * W[i];
		T v = beta * V[i] + k * g;
		V[i] = v;
		W[i] -= lr * (nesterov ? k * g + beta * v : v);
	});
})

/* ---- RMSprop: s <- rho s + (1-rho) g'^2, w <- w - lr g' / (sqrt(s) + eps) ----- */

NB_KERNELS(rmsprop_update, {
	UPDATE_HEAD
	T *S = (T *)t->in[2]->data;
	const T rho = (T)H[NB_HYPER_BETA2], omr = (T)(1.0 - H[NB_HYPER_BETA2]);
	const T eps = (T)H[NB_HYPER_EPS];
	NB_PAR_FOR(ex->threads, i, n, {
		T g = sc * G[i] + wd * W[i];
		T s = rho * S[i] + omr * g * g;
		S[i] = s;
		W[i] -= lr * g / (sqrt(s) + eps);
	});
})

/* ---- Adam's float kernel at AVX-512 ----------------------------------------------------
 * A multiply, divide or square root whose operand or result is a subnormal
 * float takes a microcode assist on x86 cores (about 50 ns a vector on an
 * Intel Xeon; adds take none).  A moment whose gradient stays 0 decays
 * geometrically into that range (m by b1 each step) and stays there:
 * round(0.9 q) = q for the smallest q units of the last place.  The MLP's
 * Adam update spent half its time in assists after 700 steps.
 *
 * So at AVX-512, a vector of 16 elements holding a tiny m, v, w (below
 * 2^-100) or gradient (below 2^-50) takes the same formula with its
 * multiplies, divide and square root done in double and rounded to float
 * (only the products of m and the quotient when m alone is tiny).
 * That gives the float operations' bits: the product of two floats is
 * exact in double, and rounding a double quotient or root to float is the
 * same as rounding the exact one (53 >= 2 x 24 + 2 bits), subnormal
 * results included; no double here is subnormal, and conversions to and
 * from subnormal floats take no assist.  The test only picks the faster
 * way; both give the bits of the plain loop below at every level
 * (test_optim's test_adam_subnormal_bits).  c: the float constants of the
 * plain loop, {sc, l2, b1, 1 - b1, b2, 1 - b2, lr wd, alpha, rs2, eps}. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ADAM_AVX512 1
#include <immintrin.h>
#define AVX512_FN __attribute__((target("avx512f")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f")))

/* the low and high 8 floats of a in double, 16 doubles back in float;
 * xmul, xdiv, xsqrt: a op b in double, rounded to float */
AVX512_INLINE __m512d pd_lo(__m512 a)
{
	return _mm512_cvtps_pd(_mm512_castps512_ps256(a));
}
AVX512_INLINE __m512d pd_hi(__m512 a)
{
	return _mm512_cvtps_pd(
	    _mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(a), 1)));
}
AVX512_INLINE __m512 ps_of(__m512d lo, __m512d hi)
{
	return _mm512_castpd_ps(
	    _mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo))),
	                       _mm256_castps_pd(_mm512_cvtpd_ps(hi)), 1));
}
AVX512_INLINE __m512 xmul(__m512 a, __m512 b)
{
	return ps_of(_mm512_mul_pd(pd_lo(a), pd_lo(b)), _mm512_mul_pd(pd_hi(a), pd_hi(b)));
}
AVX512_INLINE __m512 xdiv(__m512 a, __m512 b)
{
	return ps_of(_mm512_div_pd(pd_lo(a), pd_lo(b)), _mm512_div_pd(pd_hi(a), pd_hi(b)));
}
AVX512_INLINE __m512 xsqrt(__m512 a)
{
	return ps_of(_mm512_sqrt_pd(pd_lo(a)), _mm512_sqrt_pd(pd_hi(a)));
}

/* lanes of x with 0 < |x| < the float whose bits are lim */
AVX512_INLINE __mmask16 tiny(__m512 x, uint32_t lim)
{
	const __m512i b = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff));
	return _mm512_cmp_epu32_mask(_mm512_sub_epi32(b, _mm512_set1_epi32(1)),
	                             _mm512_set1_epi32((int32_t)(lim - 1)), _MM_CMPINT_LT);
}

/* one vector of the update, with MUL, DIV and SQRT, and MM for the two
 * products of m (b1 m and alpha m) */
#define ADAM_VEC(MUL, MM, DIV, SQRT)                                                               \
	do {                                                                                       \
		__m512 g_ = _mm512_add_ps(MUL(sc, G), MUL(l2, W));                                 \
		__m512 m_ = _mm512_add_ps(MM(b1, M), MUL(omb1, g_));                               \
		__m512 v_ = _mm512_add_ps(MUL(b2, V), MUL(MUL(omb2, g_), g_));                     \
		M = m_;                                                                            \
		V = v_;                                                                            \
		__m512 w_ = _mm512_sub_ps(W, MUL(lrwd, W));                                        \
		W = _mm512_sub_ps(w_, DIV(MM(alpha, m_), _mm512_add_ps(MUL(SQRT(v_), rs2), eps))); \
	} while (0)

/* elements [i0, i1) */
AVX512_FN static void adam_f32_avx512(int64_t i0, int64_t i1, float *w, const float *gr, float *m,
                                      float *v, const float *c)
{
	const __m512 sc = _mm512_set1_ps(c[0]), l2 = _mm512_set1_ps(c[1]),
	             b1 = _mm512_set1_ps(c[2]), omb1 = _mm512_set1_ps(c[3]),
	             b2 = _mm512_set1_ps(c[4]), omb2 = _mm512_set1_ps(c[5]),
	             lrwd = _mm512_set1_ps(c[6]), alpha = _mm512_set1_ps(c[7]),
	             rs2 = _mm512_set1_ps(c[8]), eps = _mm512_set1_ps(c[9]);
	const uint32_t small = 27u << 23, grad = 77u << 23; /* 2^-100, 2^-50 */
	for (int64_t i = i0; i < i1; i += 16) {
		const __mmask16 k = i1 - i >= 16 ? 0xffff : (__mmask16)((1u << (i1 - i)) - 1u);
		__m512 W = _mm512_maskz_loadu_ps(k, w + i), G = _mm512_maskz_loadu_ps(k, gr + i),
		       M = _mm512_maskz_loadu_ps(k, m + i), V = _mm512_maskz_loadu_ps(k, v + i);
		const __mmask16 tm = tiny(M, small),
		                to = tiny(V, small) | tiny(W, small) | tiny(G, grad);
		if (to) /* all in double */
			ADAM_VEC(xmul, xmul, xdiv, xsqrt);
		else if (tm) /* a decaying m alone: its products and the quotient */
			ADAM_VEC(_mm512_mul_ps, xmul, xdiv, _mm512_sqrt_ps);
		else
			ADAM_VEC(_mm512_mul_ps, _mm512_mul_ps, _mm512_div_ps, _mm512_sqrt_ps);
		_mm512_mask_storeu_ps(w + i, k, W);
		_mm512_mask_storeu_ps(m + i, k, M);
		_mm512_mask_storeu_ps(v + i, k, V);
	}
}
#else
#define ADAM_AVX512 0
#define adam_f32_avx512(...) ((void)0)
#endif

/* ---- Adam and AdamW ---------------------------------------------------------------
 * g' = g + wd w (Adam only), t = the step count:
 *   m <- b1 m + (1-b1) g',  v <- b2 v + (1-b2) g'^2
 *   m^ = m / (1 - b1^t),    v^ = v / (1 - b2^t)
 *   w <- w - lr wd w                   (AdamW only: decoupled decay)
 *   w <- w - lr m^ / (sqrt(v^) + eps) */

NB_KERNELS(adam_update, {
	UPDATE_HEAD
	T *M = (T *)t->in[2]->data, *V = (T *)t->in[3]->data;
	const bool decoupled = t->a.i[2] & NB_UPDATE_DECOUPLED;
	const T l2 = decoupled ? 0 : wd;
	const T lrwd = decoupled ? (T)(H[NB_HYPER_LR] * H[NB_HYPER_WD]) : 0;
	const T b1 = (T)H[NB_HYPER_BETA1], b2 = (T)H[NB_HYPER_BETA2], eps = (T)H[NB_HYPER_EPS];
	const T omb1 = (T)(1.0 - H[NB_HYPER_BETA1]), omb2 = (T)(1.0 - H[NB_HYPER_BETA2]);
	/* lr m^/(sqrt(v^)+eps) = (lr/bc1) m / (sqrt(v)/sqrt(bc2) + eps): the
	 * bias corrections become two per-step scalars */
	const T alpha = (T)(H[NB_HYPER_LR] / H[NB_HYPER_BC1]);
	const T rs2 = (T)(1.0 / sqrt(H[NB_HYPER_BC2]));
	(void)lr;
	if (ADAM_AVX512 && sizeof(T) == sizeof(float) && ex->isa >= 2) {
		const float c[] = {(float)sc,   (float)l2,   (float)b1,    (float)omb1, (float)b2,
		                   (float)omb2, (float)lrwd, (float)alpha, (float)rs2,  (float)eps};
		(void)c; /* unused where adam_f32_avx512 is not built */
		enum { SPAN = 4096 };
		NB_PAR_FOR_IF(ex->threads, n >= NB_PAR_MIN, s, (n + SPAN - 1) / SPAN,
		              adam_f32_avx512(s * SPAN, n - s * SPAN < SPAN ? n : (s + 1) * SPAN,
		                              (float *)W, (const float *)G, (float *)M, (float *)V,
		                              c););
		return;
	}
	NB_PAR_FOR(ex->threads, i, n, {
		T w = W[i];
		T g = sc * G[i] + l2 * w;
		T m = b1 * M[i] + omb1 * g, v = b2 * V[i] + omb2 * g * g;
		M[i] = m;
		V[i] = v;
		w -= lrwd * w;
		W[i] = w - alpha * m / (sqrt(v) * rs2 + eps);
	});
})

/* ---- DOT labels ---------------------------------------------------------------------- */

static int label_clip(const nb_tensor *t, char *buf, size_t n, int k)
{
	const double *H = hyper(t);
	if (k < 0 || (size_t)k >= n)
		return k;
	if (H[NB_HYPER_WD] > 0)
		k += snprintf(buf + k, n - (size_t)k, " wd %g%s", H[NB_HYPER_WD],
		              t->a.i[2] & NB_UPDATE_DECOUPLED ? " decoupled" : "");
	if (k >= 0 && (size_t)k < n && t->a.i[1])
		k += snprintf(buf + k, n - (size_t)k, " clip %g", H[NB_HYPER_CLIP]);
	return k;
}

static void label_sgd(const nb_tensor *t, char *buf, size_t n)
{
	label_clip(t, buf, n, snprintf(buf, n, "lr %g", hyper(t)[NB_HYPER_LR]));
}

static void label_momentum(const nb_tensor *t, char *buf, size_t n)
{
	const double *H = hyper(t);
	label_clip(t, buf, n,
	           snprintf(buf, n, "lr %g beta %g %s%s", H[NB_HYPER_LR], H[NB_HYPER_BETA1],
	                    t->a.i[2] & NB_UPDATE_EWMA ? "ewma" : "classic",
	                    t->a.i[2] & NB_UPDATE_NESTEROV ? " nesterov" : ""));
}

static void label_rmsprop(const nb_tensor *t, char *buf, size_t n)
{
	const double *H = hyper(t);
	label_clip(t, buf, n,
	           snprintf(buf, n, "lr %g rho %g eps %g", H[NB_HYPER_LR], H[NB_HYPER_BETA2],
	                    H[NB_HYPER_EPS]));
}

static void label_adam(const nb_tensor *t, char *buf, size_t n)
{
	const double *H = hyper(t);
	int k = snprintf(buf, n, "lr %g b1 %g b2 %g eps %g", H[NB_HYPER_LR], H[NB_HYPER_BETA1],
	                 H[NB_HYPER_BETA2], H[NB_HYPER_EPS]);
	label_clip(t, buf, n, k);
}

#define UPDATE_OP(NAME)                                                                            \
	const nb_opdef nb__op_##NAME##_update = {.name = #NAME "_update",                          \
	                                         .n_inputs = -1,                                   \
	                                         .shape = shape_update,                            \
	                                         .forward_f32 = NAME##_update_f32,                 \
	                                         .forward_f64 = NAME##_update_f64,                 \
	                                         .label = label_##NAME,                            \
	                                         .flags = NB_OPF_UPDATE | NB_OPF_NO_GRAD};

UPDATE_OP(sgd)
UPDATE_OP(momentum)
UPDATE_OP(rmsprop)
UPDATE_OP(adam)

/* ---- global norm: sqrt(sum_k sum_i x_ki^2) ----------------------------------------
 * VJP: d norm / d x_ki = x_ki / norm, so dx_k = x_k (gout / norm). */

static nb_status shape_global_norm(nb_tensor *t)
{
	t->shape = NB_SCALAR;
	return NB_OK;
}

/* The squares are accumulated in double, tensor after tensor, each in
 * NB_SUM_LANES independent lanes (NB_PAR_SUM_LANES: the same bits at every
 * thread count and ISA level) */
NB_KERNELS(global_norm, {
	double s = 0;
	for (int k = 0; k < t->n_in; k++) {
		const T *X = NB_IN(t, k, T);
		NB_PAR_SUM_LANES(ex->threads, i, t->in[k]->size, v = (double)X[i] * (double)X[i];);
	}
	NB_OUT(t, T)[0] = (T)sqrt(s);
})

static void vjp_global_norm(nb_tensor *t, nb_tensor *gout, nb_tensor **gin, const bool *need)
{
	nb_tensor *r = nb_div(gout, t);
	for (int k = 0; k < t->n_in; k++)
		if (need[k])
			gin[k] = nb_mul(t->in[k], r);
}

static void label_global_norm(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "%d tensor%s", t->n_in, t->n_in == 1 ? "" : "s");
}

static nb_tensor *ex_global_norm(nb_graph *g, nb_tensor **w, int *n)
{
	static const char *const names[] = {"a", "b", "c"};
	*n = 1 + (int)(nb__rng_next(g) % 3);
	for (int k = 0; k < *n; k++)
		w[k] = NB_EX_PARAM(g, names[k], nb__rand_shape(g, 0, 3, 3));
	return nb_global_norm(w, *n);
}

const nb_opdef nb__op_global_norm = {.name = "global_norm",
                                     .n_inputs = -1,
                                     .shape = shape_global_norm,
                                     .forward_f32 = global_norm_f32,
                                     .forward_f64 = global_norm_f64,
                                     .vjp = vjp_global_norm,
                                     .label = label_global_norm,
                                     .example = ex_global_norm};

nb_tensor *nb_global_norm(nb_tensor *const *ts, int n)
{
	if (!ts || n < 1)
		return NULL; /* no tensor, so no graph to record the error on */
	return nb__op(NB_OP_GLOBAL_NORM, ts, n, NULL);
}
