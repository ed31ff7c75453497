/*
 * The optimizer ops: one update op per family, and the global gradient
 * norm that clipping reads.
 *
 * An update node's inputs are (w, g, state..., [norm]); it writes w and the
 * state in place and has no output buffer.  Attributes: i[0] = number of
 * state inputs, i[1] = 1 when the last input is the global norm, p = the
 * nb_optim whose hyper-parameters are read at every run.  With clipping the
 * gradient is first scaled by c = min(1, clip_norm / norm).  The formulas
 * are in docs/optim.md.
 */
#include "optim/optim.h"
#include "ops/kernel.h"

#include <tgmath.h>

/* ---- shape rule and common pieces -------------------------------------------- */

static nb_status shape_update(nb_tensor *t)
{
	char b1[128], b2[128];
	int n_state = (int)t->a.i[0], clip = (int)t->a.i[1];
	if (t->n_in != 2 + n_state + clip)
		return nb__op_fail(t, NB_ERR_ARG,
		                   "takes %d inputs (parameter, gradient, %d state%s), got %d",
		                   2 + n_state + clip, n_state, clip ? ", norm" : "", t->n_in);
	for (int k = 1; k < 2 + n_state; k++)
		if (!nb__shape_eq(t->in[0]->shape, t->in[k]->shape))
			return nb__op_fail(t, NB_ERR_SHAPE, "parameter %s and %s %s differ",
			                   nb_shape_str(t->in[0]->shape, b1, sizeof b1),
			                   k == 1 ? "gradient" : "state",
			                   nb_shape_str(t->in[k]->shape, b2, sizeof b2));
	if (clip && t->in[t->n_in - 1]->size != 1)
		return nb__op_fail(t, NB_ERR_SHAPE, "the gradient norm must be a scalar, not %s",
		                   nb_shape_str(t->in[t->n_in - 1]->shape, b1, sizeof b1));
	t->shape = t->in[0]->shape;
	return NB_OK;
}

/* The clipping factor min(1, clip_norm / norm); 1 without clipping.  A
 * NaN norm leaves the gradient alone (and the NaN reaches the weights, as
 * in PyTorch without error_if_nonfinite). */
static double clip_scale(const nb_tensor *t)
{
	const nb_optim *o = t->a.p;
	if (!t->a.i[1])
		return 1.0;
	double norm = nb__get(t->in[t->n_in - 1], 0);
	return norm > o->clip_norm ? o->clip_norm / norm : 1.0;
}

/* Declarations every update kernel starts with: the parameter W, the
 * gradient G, the clip factor sc, lr and the L2 weight decay wd. */
#define UPDATE_HEAD                                                            \
	const nb_optim *o = t->a.p;                                             \
	T *W = (T *)t->in[0]->data;                                             \
	const T *G = NB_IN(t, 1, T);                                            \
	const T sc = (T)clip_scale(t), lr = (T)o->lr;                           \
	const int64_t n = t->size;

/* ---- SGD: w <- w - lr (g + wd w) ------------------------------------------------- */

NB_KERNELS(sgd_update, {
	UPDATE_HEAD
	const T wd = (T)o->weight_decay;
	NB_PAR_FOR(i, n, W[i] -= lr * (sc * G[i] + wd * W[i]););
})

/* ---- momentum --------------------------------------------------------------------
 * g' = g + wd w, k = 1 (classic) or 1 - beta (EWMA):
 *   v <- beta v + k g'
 *   w <- w - lr v                 (heavy ball)
 *   w <- w - lr (k g' + beta v)   (Nesterov, PyTorch's formulation) */

NB_KERNELS(momentum_update, {
	UPDATE_HEAD
	T *V = (T *)t->in[2]->data;
	const T wd = (T)o->weight_decay, beta = (T)o->momentum;
	const T k = o->style == NB_MOMENTUM_EWMA ? (T)(1.0 - o->momentum) : (T)1;
	const bool nesterov = o->nesterov;
	NB_PAR_FOR(i, n, {
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
	const T wd = (T)o->weight_decay, rho = (T)o->beta2, omr = (T)(1.0 - o->beta2);
	const T eps = (T)o->eps;
	NB_PAR_FOR(i, n, {
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
	const bool decoupled = o->kind == NB_OPTIM_ADAMW;
	const T l2 = decoupled ? 0 : (T)o->weight_decay;
	const T lrwd = decoupled ? (T)(o->lr * o->weight_decay) : 0;
	const T b1 = (T)o->momentum, b2 = (T)o->beta2, eps = (T)o->eps;
	const T omb1 = (T)(1.0 - o->momentum), omb2 = (T)(1.0 - o->beta2);
	/* a program run by hand (nb_run, steps 0) counts as the first step */
	double step = o->steps > 0 ? (double)o->steps : 1.0;
	/* lr m^/(sqrt(v^)+eps) = (lr/bc1) m / (sqrt(v)/sqrt(bc2) + eps): the
	 * bias corrections become two per-step scalars */
	const double bc1 = 1.0 - pow(o->momentum, step), bc2 = 1.0 - pow(o->beta2, step);
	const T alpha = (T)(o->lr / bc1), rs2 = (T)(1.0 / sqrt(bc2));
	(void)lr;
	NB_PAR_FOR(i, n, {
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
	const nb_optim *o = t->a.p;
	if (k < 0 || (size_t)k >= n)
		return k;
	if (o->weight_decay > 0)
		k += snprintf(buf + k, n - (size_t)k, " wd %g%s", o->weight_decay,
		              o->kind == NB_OPTIM_ADAMW ? " decoupled" : "");
	if (k >= 0 && (size_t)k < n && t->a.i[1])
		k += snprintf(buf + k, n - (size_t)k, " clip %g", o->clip_norm);
	return k;
}

static void label_sgd(const nb_tensor *t, char *buf, size_t n)
{
	const nb_optim *o = t->a.p;
	label_clip(t, buf, n, snprintf(buf, n, "lr %g", o->lr));
}

static void label_momentum(const nb_tensor *t, char *buf, size_t n)
{
	const nb_optim *o = t->a.p;
	label_clip(t, buf, n,
	           snprintf(buf, n, "lr %g beta %g %s%s", o->lr, o->momentum,
	                    o->style == NB_MOMENTUM_EWMA ? "ewma" : "classic",
	                    o->nesterov ? " nesterov" : ""));
}

static void label_rmsprop(const nb_tensor *t, char *buf, size_t n)
{
	const nb_optim *o = t->a.p;
	label_clip(t, buf, n, snprintf(buf, n, "lr %g rho %g eps %g", o->lr, o->beta2, o->eps));
}

static void label_adam(const nb_tensor *t, char *buf, size_t n)
{
	const nb_optim *o = t->a.p;
	int k = snprintf(buf, n, "lr %g b1 %g b2 %g eps %g", o->lr, o->momentum, o->beta2, o->eps);
	label_clip(t, buf, n, k);
}

#define UPDATE_OP(NAME)                                                         \
	const nb_opdef nb__op_##NAME##_update = {                              \
	    .name = #NAME "_update", .n_inputs = -1, .shape = shape_update,     \
	    .forward_f32 = NAME##_update_f32, .forward_f64 = NAME##_update_f64, \
	    .label = label_##NAME, .flags = NB_OPF_UPDATE | NB_OPF_NO_GRAD};

UPDATE_OP(sgd)
UPDATE_OP(momentum)
UPDATE_OP(rmsprop)
UPDATE_OP(adam)

/* ---- building the update node of one parameter ---------------------------------- */

void nb__optim_add_update(nb_optim *o, int i)
{
	static const struct {
		int op;
		int n_state;
		const char *slot[NB_OPTIM_MAX_STATE];
	} fam[NB_OPTIM_KIND_COUNT] = {
	    [NB_OPTIM_SGD] = {NB_OP_SGD_UPDATE, 0, {NULL}},
	    [NB_OPTIM_MOMENTUM] = {NB_OP_MOMENTUM_UPDATE, 1, {"v"}},
	    [NB_OPTIM_NESTEROV] = {NB_OP_MOMENTUM_UPDATE, 1, {"v"}},
	    [NB_OPTIM_RMSPROP] = {NB_OP_RMSPROP_UPDATE, 1, {"s"}},
	    [NB_OPTIM_ADAM] = {NB_OP_ADAM_UPDATE, 2, {"m", "v"}},
	    [NB_OPTIM_ADAMW] = {NB_OP_ADAM_UPDATE, 2, {"m", "v"}},
	};
	nb_tensor *p = o->params[i], *in[3 + NB_OPTIM_MAX_STATE];
	int k = 0;
	in[k++] = p;
	in[k++] = o->grads[i];
	for (int j = 0; j < fam[o->kind].n_state; j++) {
		nb_tensor *s = nb__state_like(p, fam[o->kind].slot[j]);
		in[k++] = o->state[i * NB_OPTIM_MAX_STATE + j] = s;
	}
	if (o->norm)
		in[k++] = o->norm;
	nb_attrs at = {.i = {fam[o->kind].n_state, o->norm != NULL}, .p = o};
	o->updates[i] = nb__op(fam[o->kind].op, in, k, &at);
	char name[256];
	snprintf(name, sizeof name, "%s.update", p->name);
	nb_set_name(o->updates[i], name);
}

/* ---- global norm: sqrt(sum_k sum_i x_ki^2) ----------------------------------------
 * VJP: d norm / d x_ki = x_ki / norm, so dx_k = x_k (gout / norm). */

static nb_status shape_global_norm(nb_tensor *t)
{
	t->shape = NB_SCALAR;
	return NB_OK;
}

NB_KERNELS(global_norm, {
	double s = 0; /* accumulate in double, tensor after tensor */
	for (int k = 0; k < t->n_in; k++) {
		const T *X = NB_IN(t, k, T);
		int64_t n = t->in[k]->size;
		NB_PAR_SUM(i, n, s += (double)X[i] * (double)X[i];);
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

const nb_opdef nb__op_global_norm = {
    .name = "global_norm", .n_inputs = -1, .shape = shape_global_norm,
    .forward_f32 = global_norm_f32, .forward_f64 = global_norm_f64,
    .vjp = vjp_global_norm, .label = label_global_norm, .example = ex_global_norm};

nb_tensor *nb_global_norm(nb_tensor *const *ts, int n)
{
	if (!ts || n < 1)
		return NULL; /* no tensor, so no graph to record the error on */
	return nb__op(NB_OP_GLOBAL_NORM, ts, n, NULL);
}
