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
