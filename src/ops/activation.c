/*
 * Activation functions, with the lecture notes' names: hardlim, hardlims
 * (and their straight-through forms), purelin, satlin, satlins, logsig,
 * tanh (a tanh(b v)), relu, softmax and log_softmax.
 *
 * Attributes: hardlim, hardlims: i[0] = straight-through;
 * logsig: f[0] = a; tanh: f[0] = a, f[1] = b;
 * softmax, log_softmax: i[0] = the axis (normalised, >= 0).
 */
#include "ops/kernel.h"

#include <tgmath.h>

static nb_status shape_same(nb_tensor *t)
{
	t->shape = t->in[0]->shape;
	return NB_OK;
}

/* ---- elementwise kernels --------------------------------------------------------
 * hardlim(0) = 1 and hardlims(0) = +1, as in the notes (v >= 0). */

NB_UNARY_KERNELS(hardlim, x >= 0 ? (T)1 : (T)0)
NB_UNARY_KERNELS(hardlims, x >= 0 ? (T)1 : (T)-1)
NB_UNARY_KERNELS(purelin, x)
NB_UNARY_KERNELS(satlin, x<0 ? (T)0 : x> 1 ? (T)1 : x)
NB_UNARY_KERNELS(satlins, x<-1 ? (T)-1 : x> 1 ? (T)1 : x)
NB_UNARY_KERNELS(relu, NB_RELU_OF(x))
NB_UNARY_KERNELS(tanh, f0 *tanh(f1 *x))

/* logsig(v) = 1 / (1 + exp(-u)), u = a v.  For u < 0 the same value is
 * written exp(u) / (1 + exp(u)): exp never overflows, so large |a v| gives
 * exactly 0 or 1 in the limit instead of inf / NaN. */
NB_UNARY_KERNELS(logsig, f0 *x >= 0 ? 1 / (1 + exp(-f0 * x)) : exp(f0 * x) / (1 + exp(f0 * x)))

/* ---- elementwise VJPs -----------------------------------------------------------
 * hardlim, hardlims: the derivative is 0 wherever it exists, so no gradient
 * flows (the input gets none).  The straight-through forms pretend the step
 * is the identity on the way back: dv = g.  With L = 1/2 (y - yhat)^2 this
 * makes one SGD step the perceptron rule w += eta (y - yhat) x. */
static void vjp_step(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = t->a.i[0] ? g : NULL;
}

static void vjp_purelin(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)t, (void)need;
	gin[0] = g;
}

/* satlin, satlins, relu: slope 1 strictly inside the linear range, else 0
 * (the corners get 0, a subgradient) */
static void vjp_satlin(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb__mask_range(g, t->in[0], 0, 1);
}

static void vjp_satlins(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb__mask_range(g, t->in[0], -1, 1);
}

/* relu's mask from its output y, not its input x: 0 < y < inf exactly
 * where 0 < x < inf (y = x there; elsewhere y is 0, or +inf where x is),
 * so the same bits, and x need not live until the backward pass: relu
 * may run in place, and a producer that only relu reads can fuse with it
 * (add+relu, maxpool2d+relu) */
static void vjp_relu(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb__mask_range(g, t, 0, INFINITY);
}

/* the notes: phi'(v) = a y (1 - y) */
static void vjp_logsig(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	nb_tensor *d = nb_mul_scalar(nb_mul(t, nb_rsub_scalar(t, 1.0)), t->a.f[0]);
	gin[0] = nb_mul(g, d);
}

/* the notes: phi'(v) = (b/a) (a + y) (a - y) = a b (1 - tanh^2(b v)).  With
 * a = 0 the output is constantly 0: no gradient (and no division by 0). */
static void vjp_tanh(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	double a = t->a.f[0], b = t->a.f[1];
	if (a == 0) {
		gin[0] = NULL;
		return;
	}
	nb_tensor *d = nb_mul(nb_add_scalar(t, a), nb_rsub_scalar(t, a));
	gin[0] = nb_mul(g, nb_mul_scalar(d, b / a));
}

/* ---- softmax and log_softmax along one axis ---------------------------------------
 * Each row (the elements along the axis, stride inner) is shifted by its
 * maximum M first: y = exp(x - M) / S with S = sum exp(x - M) in [1, len],
 * so inputs like 1000 do not overflow.  log_softmax = (x - M) - log S. */

#define ROWS(BODY)                                                                                 \
	const T *X = NB_IN(t, 0, T);                                                               \
	T *Y = NB_OUT(t, T);                                                                       \
	int64_t outer, len, inner;                                                                 \
	nb__split_axis(t->shape, (int)t->a.i[0], &outer, &len, &inner);                            \
	int64_t rows = outer * inner;                                                              \
	NB_PAR_FOR_IF(ex->threads, t->size >= NB_PAR_MIN, r, rows, {                               \
		int64_t base = r / inner * len * inner + r % inner;                                \
		const T *x = X + base;                                                             \
		T *y = Y + base;                                                                   \
		T M;                                                                               \
		double S;                                                                          \
		NB_ROW_MAX_SUMEXP(x, len, inner, M, S);                                            \
		BODY;                                                                              \
	});

NB_KERNELS(softmax, {
	ROWS(for (int64_t k = 0; k < len; k++) y[k * inner] = (T)(exp(x[k * inner] - M) / S))
})

NB_KERNELS(log_softmax, {
	ROWS(T lS = (T)log(S);
	     for (int64_t k = 0; k < len; k++) y[k * inner] = (x[k * inner] - M) - lS)
})

/* softmax: dx = y * (g - sum(g y, axis, keepdims)), the Jacobian
 * diag(y) - y y^T applied to g. */
static void vjp_softmax(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	int ax = (int)t->a.i[0];
	nb_tensor *dot = nb_sum_axes(nb_mul(g, t), &ax, 1, true);
	gin[0] = nb_mul(t, nb_sub(g, dot));
}

/* log_softmax: dx = g - softmax(x) * sum(g, axis, keepdims), and
 * softmax(x) = exp(y). */
static void vjp_log_softmax(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	int ax = (int)t->a.i[0];
	gin[0] = nb_sub(g, nb_mul(nb_exp(t), nb_sum_axes(g, &ax, 1, true)));
}

/* ---- DOT labels ---------------------------------------------------------------- */

static void label_step(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "%s", t->a.i[0] ? "straight-through" : "");
}

static void label_logsig(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "a %g", t->a.f[0]);
}

static void label_tanh(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "a %g, b %g", t->a.f[0], t->a.f[1]);
}

static void label_axis(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "axis %d", (int)t->a.i[0]);
}

/* ---- constructors ----------------------------------------------------------------- */

static nb_tensor *step(int op, nb_tensor *v, bool st)
{
	nb_attrs at = {.i = {st}};
	return nb__op1(op, v, &at);
}

nb_tensor *nb_hardlim(nb_tensor *v)
{
	return step(NB_OP_HARDLIM, v, false);
}
nb_tensor *nb_hardlims(nb_tensor *v)
{
	return step(NB_OP_HARDLIMS, v, false);
}
nb_tensor *nb_hardlim_st(nb_tensor *v)
{
	return step(NB_OP_HARDLIM, v, true);
}
nb_tensor *nb_hardlims_st(nb_tensor *v)
{
	return step(NB_OP_HARDLIMS, v, true);
}
nb_tensor *nb_purelin(nb_tensor *v)
{
	return nb__op1(NB_OP_PURELIN, v, NULL);
}
nb_tensor *nb_satlin(nb_tensor *v)
{
	return nb__op1(NB_OP_SATLIN, v, NULL);
}
nb_tensor *nb_satlins(nb_tensor *v)
{
	return nb__op1(NB_OP_SATLINS, v, NULL);
}
nb_tensor *nb_relu(nb_tensor *v)
{
	return nb__op1(NB_OP_RELU, v, NULL);
}

/* a NaN or infinite slope would make every output NaN or a step function */
static bool finite_args(nb_tensor *v, const char *op, double a, double b)
{
	if (!v || v->g->status != NB_OK || (isfinite(a) && isfinite(b)))
		return true;
	nb__fail(v->g, NB_ERR_ARG, "%s(%s): parameters must be finite (a = %g, b = %g)", op,
	         v->name, a, b);
	return false;
}

nb_tensor *nb_logsig(nb_tensor *v, double a)
{
	if (!finite_args(v, "logsig", a, 0))
		return v->g->placeholder;
	nb_attrs at = {.f = {a}};
	return nb__op1(NB_OP_LOGSIG, v, &at);
}

nb_tensor *nb_sigmoid(nb_tensor *v)
{
	return nb_logsig(v, 1.0);
}

nb_tensor *nb_tanh_ab(nb_tensor *v, double a, double b)
{
	if (!finite_args(v, "tanh", a, b))
		return v->g->placeholder;
	nb_attrs at = {.f = {a, b}};
	return nb__op1(NB_OP_TANH, v, &at);
}

nb_tensor *nb_tanh(nb_tensor *v)
{
	return nb_tanh_ab(v, 1.0, 1.0);
}

static nb_tensor *along_axis(int op, nb_tensor *v, int axis)
{
	if (!v)
		return NULL;
	if (v->g->status != NB_OK)
		return v->g->placeholder;
	int ax = nb__axis_arg(v, nb__ops[op]->name, axis);
	if (ax < 0)
		return v->g->placeholder;
	nb_attrs at = {.i = {ax}};
	return nb__op1(op, v, &at);
}

nb_tensor *nb_softmax(nb_tensor *v, int axis)
{
	return along_axis(NB_OP_SOFTMAX, v, axis);
}
nb_tensor *nb_log_softmax(nb_tensor *v, int axis)
{
	return along_axis(NB_OP_LOG_SOFTMAX, v, axis);
}

/* ---- gradcheck examples -------------------------------------------------------------- */

static nb_tensor *ex_param(nb_graph *g, nb_tensor **w, int *n, double lo, double hi)
{
	w[0] = nb__rand_param(g, "v", nb__rand_shape(g, 1, 4, 3), lo, hi);
	*n = 1;
	return w[0];
}

/* a nonzero real in +-[0.5, 2.5] */
static double rand_coef(nb_graph *g)
{
	double c = 0.5 + 2.0 * nb__rng_uniform(g);
	return nb__rng_next(g) & 1 ? -c : c;
}

/* The plain step functions are checked: away from 0 the finite difference
 * is 0, and so must the symbolic gradient be (a VJP that let gradient
 * through would fail).  A jump within eps of an element is a kink the
 * gradcheck skips.  The straight-through forms are the same ops with
 * i[0] = 1; their gradient is by definition not the derivative of the
 * forward, so finite differences cannot check it: test_activation.c checks
 * it exactly (dv = g, and the perceptron rule). */
#define EX_PLAIN(NAME, LO, HI)                                                                     \
	static nb_tensor *ex_##NAME(nb_graph *g, nb_tensor **w, int *n)                            \
	{                                                                                          \
		return nb_##NAME(ex_param(g, w, n, LO, HI));                                       \
	}

EX_PLAIN(hardlim, -1, 1)
EX_PLAIN(hardlims, -1, 1)
EX_PLAIN(purelin, -2, 2)
/* ranges across the corners: elements within eps of one are skipped */
EX_PLAIN(satlin, -0.5, 1.5)
EX_PLAIN(satlins, -2, 2)
EX_PLAIN(relu, -2, 2)

static nb_tensor *ex_logsig(nb_graph *g, nb_tensor **w, int *n)
{
	nb_tensor *v = ex_param(g, w, n, -2, 2);
	return nb_logsig(v, rand_coef(g));
}

static nb_tensor *ex_tanh(nb_graph *g, nb_tensor **w, int *n)
{
	nb_tensor *v = ex_param(g, w, n, -1.5, 1.5);
	double a = rand_coef(g);
	return nb_tanh_ab(v, a, rand_coef(g));
}

/* a random axis, given in its negative form half of the time */
static int rand_axis(nb_graph *g, int ndim)
{
	int ax = (int)(nb__rng_next(g) % (uint64_t)ndim);
	return nb__rng_next(g) & 1 ? ax - ndim : ax;
}

static nb_tensor *ex_softmax(nb_graph *g, nb_tensor **w, int *n)
{
	nb_tensor *v = ex_param(g, w, n, -3, 3);
	return nb_softmax(v, rand_axis(g, v->shape.ndim));
}

static nb_tensor *ex_log_softmax(nb_graph *g, nb_tensor **w, int *n)
{
	nb_tensor *v = ex_param(g, w, n, -3, 3);
	return nb_log_softmax(v, rand_axis(g, v->shape.ndim));
}

/* ---- op table entries ------------------------------------------------------------ */

#define ACT_DEF(NAME, STR, KERNEL, VJP, LABEL, FLAGS)                                              \
	const nb_opdef nb__op_##NAME = {.name = STR,                                               \
	                                .n_inputs = 1,                                             \
	                                .shape = shape_same,                                       \
	                                .forward_f32 = KERNEL##_f32,                               \
	                                .forward_f64 = KERNEL##_f64,                               \
	                                .vjp = VJP,                                                \
	                                .label = LABEL,                                            \
	                                .example = ex_##NAME,                                      \
	                                .flags = FLAGS}

ACT_DEF(hardlim, "hardlim", hardlim, vjp_step, label_step, NB_OPF_INPLACE);
ACT_DEF(hardlims, "hardlims", hardlims, vjp_step, label_step, NB_OPF_INPLACE);
ACT_DEF(purelin, "purelin", purelin, vjp_purelin, NULL, NB_OPF_INPLACE);
ACT_DEF(satlin, "satlin", satlin, vjp_satlin, NULL, NB_OPF_INPLACE);
ACT_DEF(satlins, "satlins", satlins, vjp_satlins, NULL, NB_OPF_INPLACE);
ACT_DEF(logsig, "logsig", logsig, vjp_logsig, label_logsig, NB_OPF_INPLACE);
ACT_DEF(tanh, "tanh", tanh, vjp_tanh, label_tanh, NB_OPF_INPLACE);
ACT_DEF(relu, "relu", relu, vjp_relu, NULL, NB_OPF_INPLACE);
ACT_DEF(softmax, "softmax", softmax, vjp_softmax, label_axis, 0);
ACT_DEF(log_softmax, "log_softmax", log_softmax, vjp_log_softmax, label_axis, 0);
