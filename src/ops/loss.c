/*
 * Losses: mse, bce (on probabilities), bce_logits, cce (softmax fused with
 * cross-entropy), sparse_cce (class ids), the one_hot encoder, and the
 * notes' half sum of squares (composed from mse).
 *
 * Attributes: the losses: i[0] = reduction (NB_MEAN, NB_SUM, NB_NONE);
 * one_hot: i[0] = number of classes.
 *
 * Shapes: mse, bce and bce_logits take a prediction and a target of one
 * shape (no broadcasting: [N,1] against [N] is almost always a bug) and
 * give a scalar, or with NB_NONE one loss per element.  cce and sparse_cce
 * treat the last axis of the logits as the classes and every leading index
 * as a sample; NB_NONE gives one loss per sample (shape logits[:-1]) and
 * NB_MEAN averages over the samples.
 */
#include "ops/kernel.h"

#include <tgmath.h>

/* BCE clamps the arguments of its logs to at least this */
#define BCE_EPS 1e-12

static const char *const reduction_names[] = {"mean", "sum", "none"};

static nb_status check_reduction(nb_tensor *t)
{
	if (t->a.i[0] < NB_MEAN || t->a.i[0] > NB_NONE)
		return nb__op_fail(t, NB_ERR_ARG,
		                   "unknown reduction %lld (use NB_MEAN, NB_SUM or NB_NONE)",
		                   (long long)t->a.i[0]);
	return NB_OK;
}

static int64_t classes_of(const nb_tensor *logits)
{
	return logits->shape.d[logits->shape.ndim - 1];
}

/* ---- shape rules ---------------------------------------------------------------- */

static nb_status shape_elementwise(nb_tensor *t)
{
	char b1[128], b2[128];
	if (check_reduction(t) != NB_OK)
		return t->g->status;
	if (!nb__shape_eq(t->in[0]->shape, t->in[1]->shape))
		return nb__op_fail(t, NB_ERR_SHAPE,
		                   "prediction %s and target %s differ (losses do not broadcast; "
		                   "reshape one of them)",
		                   nb_shape_str(t->in[0]->shape, b1, sizeof b1),
		                   nb_shape_str(t->in[1]->shape, b2, sizeof b2));
	t->shape = t->a.i[0] == NB_NONE ? t->in[0]->shape : NB_SCALAR;
	return NB_OK;
}

/* the logits without their class axis: the shape of the per-sample losses
 * and of sparse class ids */
static nb_status samples_shape(nb_tensor *t, nb_shape *s)
{
	if (t->in[0]->shape.ndim < 1)
		return nb__op_fail(t, NB_ERR_SHAPE,
		                   "logits are a scalar; they need a last axis of classes");
	*s = t->in[0]->shape;
	s->ndim--;
	return NB_OK;
}

static nb_status shape_cce(nb_tensor *t)
{
	char b1[128], b2[128];
	nb_shape s;
	if (check_reduction(t) != NB_OK || samples_shape(t, &s) != NB_OK)
		return t->g->status;
	if (!nb__shape_eq(t->in[0]->shape, t->in[1]->shape))
		return nb__op_fail(t, NB_ERR_SHAPE,
		                   "targets %s must have the logits' shape %s (one-hot rows over "
		                   "the last axis; for class ids use sparse_cce)",
		                   nb_shape_str(t->in[1]->shape, b1, sizeof b1),
		                   nb_shape_str(t->in[0]->shape, b2, sizeof b2));
	t->shape = t->a.i[0] == NB_NONE ? s : NB_SCALAR;
	return NB_OK;
}

static nb_status shape_sparse_cce(nb_tensor *t)
{
	char b1[128], b2[128], b3[128];
	nb_shape s;
	if (check_reduction(t) != NB_OK || samples_shape(t, &s) != NB_OK)
		return t->g->status;
	if (!nb__shape_eq(t->in[1]->shape, s))
		return nb__op_fail(t, NB_ERR_SHAPE,
		                   "class ids %s must have shape %s (the logits %s without the "
		                   "class axis; for one-hot targets use cce)",
		                   nb_shape_str(t->in[1]->shape, b1, sizeof b1),
		                   nb_shape_str(s, b2, sizeof b2),
		                   nb_shape_str(t->in[0]->shape, b3, sizeof b3));
	t->shape = t->a.i[0] == NB_NONE ? s : NB_SCALAR;
	return NB_OK;
}

static nb_status shape_one_hot(nb_tensor *t)
{
	char b[128];
	nb_shape s = t->in[0]->shape;
	if (s.ndim >= NB_MAX_DIMS)
		return nb__op_fail(t, NB_ERR_SHAPE,
		                   "ids %s already have %d dimensions (at most %d)",
		                   nb_shape_str(s, b, sizeof b), s.ndim, NB_MAX_DIMS);
	s.d[s.ndim++] = t->a.i[0];
	t->shape = s;
	return NB_OK;
}

/* ---- class ids ------------------------------------------------------------------
 * Ids are values of the graph's dtype (f32 holds integers exactly up to
 * 2^24).  They arrive at run time, so a bad one is a run-time error: the
 * kernel records NB_ERR_VALUE on the graph (nb_run returns it), fills its
 * output with NaN and never indexes with it. */

static bool ids_valid(nb_tensor *t, const nb_tensor *ids, int64_t classes)
{
	for (int64_t i = 0; i < ids->size; i++) {
		double v = nb__get(ids, i);
		if (v >= 0 && v < (double)classes && v == floor(v))
			continue;
		const char *why = v == floor(v) ? "out of range" : "not an integer";
		nb__op_fail(t, NB_ERR_VALUE,
		            "class id %.9g at index %lld of %s is %s (%lld classes: ids 0 to %lld)",
		            v, (long long)i, ids->name, why, (long long)classes,
		            (long long)classes - 1);
		for (int64_t k = 0; k < t->size; k++)
			nb__set(t, k, NAN);
		return false;
	}
	return true;
}

NB_KERNELS(one_hot, {
	const T *ID = NB_IN(t, 0, T);
	T *Y = NB_OUT(t, T);
	int64_t C = t->a.i[0];
	if (!ids_valid(t, t->in[0], C))
		return;
	memset(Y, 0, (size_t)t->size * sizeof(T));
	for (int64_t i = 0; i < t->in[0]->size; i++)
		Y[i * C + (int64_t)ID[i]] = 1;
})

/* ---- elementwise losses -----------------------------------------------------------
 * Per element l(p, q) of prediction p and target q; summed in double. */

#define ELEMENTWISE_LOSS(NAME, ...)                                                                \
	NB_KERNELS(NAME, {                                                                         \
		const T *P = NB_IN(t, 0, T), *Q = NB_IN(t, 1, T);                                  \
		T *Y = NB_OUT(t, T);                                                               \
		const T eps = (T)BCE_EPS;                                                          \
		(void)eps;                                                                         \
		int64_t n = t->in[0]->size;                                                        \
		if (t->a.i[0] == NB_NONE) {                                                        \
			NB_PAR_FOR(ex->threads, i, n, T p = P[i]; T q = Q[i];                      \
			           Y[i] = (__VA_ARGS__););                                         \
			return;                                                                    \
		}                                                                                  \
		double s = 0;                                                                      \
		NB_PAR_SUM_LANES(ex->threads, i, n, T p = P[i]; T q = Q[i];                        \
		                 v = (double)(__VA_ARGS__););                                      \
		Y[0] = (T)(t->a.i[0] == NB_MEAN ? s / (double)n : s);                              \
	})

/* (p - q)^2 */
ELEMENTWISE_LOSS(mse, (p - q) * (p - q))

/* -(q log max(p, eps) + (1 - q) log max(1 - p, eps)); a NaN p stays NaN */
ELEMENTWISE_LOSS(bce, -(q *log(p < eps ? eps : p) + (1 - q) * log(1 - p < eps ? eps : 1 - p)))

/* -(q log sigmoid(z) + (1 - q) log(1 - sigmoid(z))) rewritten so that no
 * exp overflows and no log sees 0: max(z, 0) - z q + log(1 + exp(-|z|)) */
ELEMENTWISE_LOSS(bce_logits, (p > 0 ? p : 0) - p * q + log1p(exp(-fabs(p))))

/* ---- softmax cross-entropy over the last axis -------------------------------------
 * Row r holds the logits z of one sample.  With M = max z and
 * S = sum exp(z - M), -log softmax(z)_c = (M - z_c) + log S, so
 *   cce:        l = sum_c q_c ((M - z_c) + log S)   (terms with q_c = 0
 *               skipped, so -inf logits of impossible classes are fine)
 *   sparse_cce: l = (M - z_k) + log S,  k = the class id
 * For a one-hot q both give the same bits. */

#define ROW_LOSS(NAME, VALID, ...)                                                                 \
	NB_KERNELS(NAME, {                                                                         \
		const T *Z = NB_IN(t, 0, T), *Q = NB_IN(t, 1, T);                                  \
		T *Y = NB_OUT(t, T);                                                               \
		int64_t C = classes_of(t->in[0]), rows = t->in[0]->size / C;                       \
		if (!(VALID))                                                                      \
			return;                                                                    \
		bool none = t->a.i[0] == NB_NONE;                                                  \
		double s = 0;                                                                      \
		NB_PAR_SUM_IF(ex->threads, t->in[0]->size >= NB_PAR_MIN, r, rows, {                \
			const T *z = Z + r * C;                                                    \
			T M, l = 0;                                                                \
			double S;                                                                  \
			NB_ROW_MAX_SUMEXP(z, C, 1, M, S);                                          \
			const T lS = (T)log(S);                                                    \
			__VA_ARGS__;                                                               \
			if (none)                                                                  \
				Y[r] = l;                                                          \
			else                                                                       \
				s += (double)l;                                                    \
		});                                                                                \
		if (!none)                                                                         \
			Y[0] = (T)(t->a.i[0] == NB_MEAN ? s / (double)rows : s);                   \
	})

ROW_LOSS(cce, true, {
	const T *q = Q + r * C;
	for (int64_t c = 0; c < C; c++)
		if (q[c] != 0)
			l += q[c] * ((M - z[c]) + lS);
})

ROW_LOSS(sparse_cce, ids_valid(t, t->in[1], C), { l = (M - z[(int64_t)Q[r]]) + lS; })

/* ---- VJPs ------------------------------------------------------------------------
 * The upstream gradient g is a scalar (mean: scaled by 1/count) or, with
 * NB_NONE, one value per loss; per-sample losses reshape it to [..., 1] so
 * it broadcasts over the class axis. */

static nb_tensor *upstream(nb_tensor *t, nb_tensor *g, int64_t count, bool per_sample)
{
	if (t->a.i[0] == NB_MEAN)
		return nb_mul_scalar(g, 1.0 / (double)count);
	if (t->a.i[0] == NB_SUM || !per_sample)
		return g;
	nb_shape s = t->in[0]->shape;
	s.d[s.ndim - 1] = 1;
	return nb_reshape(g, s);
}

/* mse: dp = 2 (p - q) g, dq = -dp */
static void vjp_mse(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	nb_tensor *u = upstream(t, g, t->in[0]->size, false);
	nb_tensor *dp = nb_mul(nb_mul_scalar(nb_sub(t->in[0], t->in[1]), 2.0), u);
	if (need[0])
		gin[0] = dp;
	if (need[1])
		gin[1] = nb_neg(dp);
}

/* bce with pc = max(p, eps), qc = max(1 - p, eps):
 *   dp = ((1 - q) / qc [1 - p > eps] - q / pc [p > eps]) g
 *   dq = (log qc - log pc) g
 * (a clamped log is flat: the masks give it zero slope) */
static void vjp_bce(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	nb_tensor *p = t->in[0], *q = t->in[1], *u = upstream(t, g, p->size, false);
	nb_tensor *omp = nb_rsub_scalar(p, 1.0);
	nb_tensor *pc = nb_clamp(p, BCE_EPS, INFINITY), *qc = nb_clamp(omp, BCE_EPS, INFINITY);
	if (need[0]) {
		nb_tensor *a = nb__mask_range(nb_div(q, pc), p, BCE_EPS, INFINITY);
		nb_tensor *b =
		    nb__mask_range(nb_div(nb_rsub_scalar(q, 1.0), qc), omp, BCE_EPS, INFINITY);
		gin[0] = nb_mul(nb_sub(b, a), u);
	}
	if (need[1])
		gin[1] = nb_mul(nb_sub(nb_log(qc), nb_log(pc)), u);
}

/* bce_logits: dz = (sigmoid(z) - q) g, dq = -z g */
static void vjp_bce_logits(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	nb_tensor *z = t->in[0], *q = t->in[1], *u = upstream(t, g, z->size, false);
	if (need[0])
		gin[0] = nb_mul(nb_sub(nb_sigmoid(z), q), u);
	if (need[1])
		gin[1] = nb_mul(nb_neg(z), u);
}

/* cce: l = sum_c q_c (lse - z_c), so
 *   dz = (softmax(z) sum_c q_c - q) g   (= (softmax(z) - q) g for one-hot
 *                                        or probability rows)
 *   dq = (lse - z) g = -log_softmax(z) g */
static void vjp_cce(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	nb_tensor *z = t->in[0], *q = t->in[1];
	nb_tensor *u = upstream(t, g, z->size / classes_of(z), true);
	int last = -1;
	if (need[0]) {
		nb_tensor *mass = nb_sum_axes(q, &last, 1, true);
		gin[0] = nb_mul(nb_sub(nb_mul(nb_softmax(z, -1), mass), q), u);
	}
	if (need[1])
		gin[1] = nb_mul(nb_neg(nb_log_softmax(z, -1)), u);
}

/* sparse_cce: dz = (softmax(z) - one_hot(ids)) g; the ids are discrete and
 * get no gradient */
static void vjp_sparse_cce(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	nb_tensor *z = t->in[0];
	int64_t C = classes_of(z);
	if (need[0]) {
		nb_tensor *u = upstream(t, g, z->size / C, true);
		gin[0] = nb_mul(nb_sub(nb_softmax(z, -1), nb_one_hot(t->in[1], (int)C)), u);
	}
}

static void label_reduction(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "%s", reduction_names[t->a.i[0]]);
}

static void label_one_hot(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "%lld classes", (long long)t->a.i[0]);
}

/* ---- constructors --------------------------------------------------------------- */

static nb_tensor *loss(int op, nb_tensor *pred, nb_tensor *target, nb_reduction r)
{
	nb_attrs at = {.i = {(int64_t)r}};
	return nb__op2(op, pred, target, &at);
}

nb_tensor *nb_mse(nb_tensor *pred, nb_tensor *target, nb_reduction r)
{
	return loss(NB_OP_MSE, pred, target, r);
}

/* 1/2 sum (y - yhat)^2: the notes' loss, whose gradient is -(y - yhat) */
nb_tensor *nb_half_sse(nb_tensor *pred, nb_tensor *target)
{
	return nb_mul_scalar(nb_mse(pred, target, NB_SUM), 0.5);
}

nb_tensor *nb_bce(nb_tensor *prob, nb_tensor *target, nb_reduction r)
{
	return loss(NB_OP_BCE, prob, target, r);
}

nb_tensor *nb_bce_logits(nb_tensor *logits, nb_tensor *target, nb_reduction r)
{
	return loss(NB_OP_BCE_LOGITS, logits, target, r);
}

nb_tensor *nb_cce(nb_tensor *logits, nb_tensor *onehot, nb_reduction r)
{
	return loss(NB_OP_CCE, logits, onehot, r);
}

nb_tensor *nb_sparse_cce(nb_tensor *logits, nb_tensor *ids, nb_reduction r)
{
	return loss(NB_OP_SPARSE_CCE, logits, ids, r);
}

nb_tensor *nb_one_hot(nb_tensor *ids, int classes)
{
	if (ids && ids->g->status == NB_OK && classes <= 0) {
		nb__fail(ids->g, NB_ERR_ARG, "one_hot(%s): %d classes (must be positive)",
		         ids->name, classes);
		return ids->g->placeholder;
	}
	nb_attrs at = {.i = {classes}};
	return nb__op1(NB_OP_ONE_HOT, ids, &at);
}

/* ---- gradcheck examples -----------------------------------------------------------
 * Targets are parameters too where they have a gradient, so both sides of
 * every VJP are checked; the reduction is drawn at random. */

static nb_reduction rand_reduction(nb_graph *g)
{
	return (nb_reduction)(nb__rng_next(g) % 3);
}

static nb_tensor *ex_pair(nb_graph *g, nb_tensor **w, int *n, int op, double lo, double hi)
{
	nb_shape s = nb__rand_shape(g, 1, 3, 4);
	w[0] = nb__rand_param(g, "pred", s, lo, hi);
	w[1] = nb__rand_param(g, "target", s, 0, 1);
	*n = 2;
	return loss(op, w[0], w[1], rand_reduction(g));
}

#define EX_PAIR(NAME, OP, LO, HI)                                                                  \
	static nb_tensor *ex_##NAME(nb_graph *g, nb_tensor **w, int *n)                            \
	{                                                                                          \
		return ex_pair(g, w, n, OP, LO, HI);                                               \
	}

EX_PAIR(mse, NB_OP_MSE, -1, 1)
/* probabilities well inside (eps, 1 - eps) */
EX_PAIR(bce, NB_OP_BCE, 0.05, 0.95)
EX_PAIR(bce_logits, NB_OP_BCE_LOGITS, -3, 3)
/* soft targets (rows not summing to 1) exercise the general dz */
EX_PAIR(cce, NB_OP_CCE, -2, 2)

/* random valid class ids for logits of shape s */
static nb_tensor *rand_ids(nb_graph *g, nb_shape s)
{
	int64_t C = s.d[s.ndim - 1];
	s.ndim--;
	nb_tensor *ids = nb_constant(g, "ids", s, NULL);
	for (int64_t i = 0; i < ids->size; i++)
		nb__set(ids, i, (double)(nb__rng_next(g) % (uint64_t)C));
	return ids;
}

static nb_tensor *ex_sparse_cce(nb_graph *g, nb_tensor **w, int *n)
{
	nb_shape s = nb__rand_shape(g, 1, 3, 4);
	w[0] = nb__rand_param(g, "logits", s, -2, 2);
	*n = 1;
	return nb_sparse_cce(w[0], rand_ids(g, s), rand_reduction(g));
}

/* one_hot has no gradient: x * one_hot(ids) must pass x's gradient
 * through the selected entries only */
static nb_tensor *ex_one_hot(nb_graph *g, nb_tensor **w, int *n)
{
	nb_shape s = nb__rand_shape(g, 1, 3, 4);
	w[0] = NB_EX_PARAM(g, "x", s);
	*n = 1;
	return nb_mul(w[0], nb_one_hot(rand_ids(g, s), (int)s.d[s.ndim - 1]));
}

/* ---- op table entries ------------------------------------------------------------- */

#define LOSS_DEF(NAME, STR, SHAPE)                                                                 \
	const nb_opdef nb__op_##NAME = {.name = STR,                                               \
	                                .n_inputs = 2,                                             \
	                                .shape = SHAPE,                                            \
	                                .forward_f32 = NAME##_f32,                                 \
	                                .forward_f64 = NAME##_f64,                                 \
	                                .vjp = vjp_##NAME,                                         \
	                                .label = label_reduction,                                  \
	                                .example = ex_##NAME}

LOSS_DEF(mse, "mse", shape_elementwise);
LOSS_DEF(bce, "bce", shape_elementwise);
LOSS_DEF(bce_logits, "bce_logits", shape_elementwise);
LOSS_DEF(cce, "cce", shape_cce);
LOSS_DEF(sparse_cce, "sparse_cce", shape_sparse_cce);

const nb_opdef nb__op_one_hot = {.name = "one_hot",
                                 .n_inputs = 1,
                                 .shape = shape_one_hot,
                                 .forward_f32 = one_hot_f32,
                                 .forward_f64 = one_hot_f64,
                                 .label = label_one_hot,
                                 .example = ex_one_hot,
                                 .flags = NB_OPF_NO_GRAD};
