/*
 * Elementwise ops: binary arithmetic with NumPy broadcasting, unary maths,
 * scalar ops, and the broadcast/reduce pair their VJPs need.
 */
#include "ops/kernel.h"

#include <tgmath.h>

/* ---- shape rules ----------------------------------------------------------- */

static nb_status shape_same(nb_tensor *t)
{
	t->shape = t->in[0]->shape;
	return NB_OK;
}

static nb_status shape_broadcast(nb_tensor *t)
{
	char b1[128], b2[128];
	if (!nb__broadcast_shape(t->in[0]->shape, t->in[1]->shape, &t->shape))
		return nb__op_fail(t, NB_ERR_SHAPE, "shapes %s and %s do not broadcast",
		                   nb_shape_str(t->in[0]->shape, b1, sizeof b1),
		                   nb_shape_str(t->in[1]->shape, b2, sizeof b2));
	return NB_OK;
}

/* ---- binary kernels ------------------------------------------------------------ */

/* Fast paths for equal shapes and a scalar operand, else the general
 * broadcast loop.  BINARY_BODY(S, OUT, expr): OUT = expr of the inputs a
 * and b of node S, in S's shape (OUT is S, or a fused step's node). */
#define BINARY(NAME, ...) NB_KERNELS(NAME, BINARY_BODY(t, t, __VA_ARGS__))
#define BINARY_BODY(S, OUT, ...)                                                                   \
	{                                                                                          \
		const nb_tensor *s_ = (S);                                                         \
		const T *A = NB_IN(s_, 0, T), *B = NB_IN(s_, 1, T);                                \
		T *Y = NB_OUT(OUT, T);                                                             \
		int64_t n = s_->size, na = s_->in[0]->size, nbb = s_->in[1]->size;                 \
		if (na == n && nbb == n) {                                                         \
			NB_PAR_FOR(ex->threads, i, n, T a = A[i]; T b = B[i];                      \
			           Y[i] = (__VA_ARGS__););                                         \
		} else if (nbb == 1 && na == n) {                                                  \
			const T b = B[0];                                                          \
			NB_PAR_FOR(ex->threads, i, n, T a = A[i]; Y[i] = (__VA_ARGS__););          \
		} else if (na == 1 && nbb == n) {                                                  \
			const T a = A[0];                                                          \
			NB_PAR_FOR(ex->threads, i, n, T b = B[i]; Y[i] = (__VA_ARGS__););          \
		} else {                                                                           \
			nb_bcast bc;                                                               \
			nb_bcast_init(&bc, s_->shape, s_->in[0]->shape, s_->in[1]->shape);         \
			NB_BCAST_LOOP(&bc, n, {                                                    \
				T a = A[ia], b = B[ib];                                            \
				Y[o] = (__VA_ARGS__);                                              \
			});                                                                        \
		}                                                                                  \
	}

BINARY(add, a + b)
BINARY(sub, a - b)
BINARY(mul, a *b)
BINARY(div, a / b)

/* ---- binary VJPs --------------------------------------------------------------
 * y = a + b:  da = sum_to(g),        db = sum_to(g)
 * y = a - b:  da = sum_to(g),        db = sum_to(-g)
 * y = a * b:  da = sum_to(g b),      db = sum_to(g a)
 * y = a / b:  da = sum_to(g / b),    db = sum_to(-g y / b)
 * sum_to reduces over the axes that broadcasting expanded. */

static void vjp_add(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	if (need[0])
		gin[0] = nb__sum_to(g, t->in[0]->shape);
	if (need[1])
		gin[1] = nb__sum_to(g, t->in[1]->shape);
}

static void vjp_sub(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	if (need[0])
		gin[0] = nb__sum_to(g, t->in[0]->shape);
	if (need[1])
		gin[1] = nb__sum_to(nb_neg(g), t->in[1]->shape);
}

static void vjp_mul(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	if (need[0])
		gin[0] = nb__sum_to(nb_mul(g, t->in[1]), t->in[0]->shape);
	if (need[1])
		gin[1] = nb__sum_to(nb_mul(g, t->in[0]), t->in[1]->shape);
}

static void vjp_div(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	if (need[0])
		gin[0] = nb__sum_to(nb_div(g, t->in[1]), t->in[0]->shape);
	if (need[1])
		gin[1] = nb__sum_to(nb_neg(nb_mul(g, nb_div(t, t->in[1]))), t->in[1]->shape);
}

/* ---- unary kernels -------------------------------------------------------------- */

#define UNARY NB_UNARY_KERNELS

UNARY(neg, -x)
UNARY(add_scalar, x + f0)
UNARY(mul_scalar, x *f0)
UNARY(rsub_scalar, f0 - x)
UNARY(exp, exp(x))
UNARY(log, log(x))
UNARY(sqrt, sqrt(x))
UNARY(square, x *x)
UNARY(pow, pow(x, f0))
UNARY(abs, fabs(x))
UNARY(sign, (T)((x > 0) - (x < 0)))
UNARY(clamp, x<f0 ? f0 : x> f1 ? f1 : x)
UNARY(identity, x)

/* mask_range(g, x): g where f0 < x < f1, else 0 -- the derivative of
 * relu, satlin and satlins, whose corners get 0 as in PyTorch (relu,
 * hardtanh); with i[0] = 1 the range is closed, f0 <= x <= f1: the
 * derivative of clamp, whose bounds get g as in PyTorch's clamp */
NB_KERNELS(mask_range, {
	const T *G = NB_IN(t, 0, T), *X = NB_IN(t, 1, T);
	T *Y = NB_OUT(t, T);
	const T lo = (T)t->a.f[0], hi = (T)t->a.f[1];
	int64_t n = t->size;
	/* G[i] read unconditionally: a conditional load kept the compiler from
	 * vectorising the loop */
	if (t->a.i[0])
		NB_PAR_FOR(ex->threads, i, n, const T gi = G[i];
		           Y[i] = X[i] >= lo && X[i] <= hi ? gi : 0;);
	else
		NB_PAR_FOR(ex->threads, i, n, const T gi = G[i];
		           Y[i] = X[i] > lo && X[i] < hi ? gi : 0;);
})

/* ---- unary VJPs ------------------------------------------------------------------ */

static void vjp_neg(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)t, (void)need;
	gin[0] = nb_neg(g);
}

static void vjp_identity(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)t, (void)need;
	gin[0] = g;
}

static void vjp_mul_scalar(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb_mul_scalar(g, t->a.f[0]);
}

/* d exp(x) = exp(x) = y */
static void vjp_exp(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb_mul(g, t);
}

/* d log(x) = 1/x */
static void vjp_log(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb_div(g, t->in[0]);
}

/* d sqrt(x) = 1 / (2 y) */
static void vjp_sqrt(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb_div(nb_mul_scalar(g, 0.5), t);
}

/* d x^2 = 2x */
static void vjp_square(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb_mul(g, nb_mul_scalar(t->in[0], 2.0));
}

/* d x^p = p x^(p-1).  x^0 is the constant 1: no gradient, also at x = 0
 * where p x^(p-1) would be 0 * inf = NaN (PyTorch gives 0 too).  Every
 * other p follows the formula: at x = 0 it is 1 for p = 1, 0 for p > 1
 * and inf (NaN where g = 0) for p < 1. */
static void vjp_pow(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	double p = t->a.f[0];
	gin[0] = p == 0 ? NULL : nb_mul(g, nb_mul_scalar(nb_pow(t->in[0], p - 1.0), p));
}

/* d |x| = sign(x) (0 at 0) */
static void vjp_abs(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb_mul(g, nb__sign(t->in[0]));
}

/* g where lo <= x <= hi: the bounds pass the gradient, as in PyTorch */
static void vjp_clamp(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb__mask_range_ex(g, t->in[0], t->a.f[0], t->a.f[1], true);
}

/* linear in g; piecewise constant in x (zero derivative almost everywhere) */
static void vjp_mask_range(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	if (need[0])
		gin[0] = nb__mask_range_ex(g, t->in[1], t->a.f[0], t->a.f[1], t->a.i[0]);
}

/* ---- broadcast_to / sum_to ------------------------------------------------------
 * broadcast_to(x, s): y[o] = x[o mapped onto x's axes]
 * sum_to(x, s): the transpose: y[j] = sum of x[o] over o mapping to j.
 * Each is the other's VJP. */

static nb_status shape_broadcast_to(nb_tensor *t)
{
	nb_shape s = nb__unpack_shape(&t->a), r;
	char b1[128], b2[128];
	if (!nb__broadcast_shape(t->in[0]->shape, s, &r) || !nb__shape_eq(r, s))
		return nb__op_fail(t, NB_ERR_SHAPE, "cannot broadcast %s to %s",
		                   nb_shape_str(t->in[0]->shape, b1, sizeof b1),
		                   nb_shape_str(s, b2, sizeof b2));
	t->shape = s;
	return NB_OK;
}

static nb_status shape_sum_to(nb_tensor *t)
{
	nb_shape s = nb__unpack_shape(&t->a), r;
	char b1[128], b2[128];
	if (!nb__broadcast_shape(s, t->in[0]->shape, &r) || !nb__shape_eq(r, t->in[0]->shape))
		return nb__op_fail(t, NB_ERR_SHAPE, "cannot sum %s down to %s",
		                   nb_shape_str(t->in[0]->shape, b1, sizeof b1),
		                   nb_shape_str(s, b2, sizeof b2));
	t->shape = s;
	return NB_OK;
}

/* The elements of y each value of x fills when x is y's shape on its
 * leading axes and 1 on the rest (a scalar, a value per channel over the
 * pixels: the broadcasts of loss seeds and pooling gradients), else 0. */
static int64_t fill_run(const nb_tensor *t)
{
	const nb_shape in = t->in[0]->shape, out = t->shape;
	const int off = out.ndim - in.ndim;
	int k = out.ndim; /* the first axis from which x is 1 */
	while (k > 0 && (k - 1 < off || in.d[k - 1 - off] == 1))
		k--;
	int64_t run = 1;
	for (int a = 0; a < out.ndim; a++) {
		if (a < k && (a < off || in.d[a - off] != out.d[a]))
			return 0;
		if (a >= k)
			run *= out.d[a];
	}
	return run;
}

#define FILL_PARALLEL                                                                              \
	_Pragma("omp parallel for num_threads(ex->threads) if (t->size >= NB_PAR_MIN)")

NB_KERNELS(broadcast_to, {
	const T *X = NB_IN(t, 0, T);
	T *Y = NB_OUT(t, T);
	const int64_t run = fill_run(t), nx = t->in[0]->size;
	if (run > 0 && nx == 1) { /* one value everywhere */
		FILL_PARALLEL
		for (int64_t e = 0; e < t->size; e++)
			Y[e] = X[0];
		return;
	}
	if (run > 0) { /* runs of one value, on the threads when large */
		FILL_PARALLEL
		for (int64_t i = 0; i < nx; i++)
			for (int64_t j = 0; j < run; j++)
				Y[i * run + j] = X[i];
		return;
	}
	nb_bcast bc;
	nb_bcast_init(&bc, t->shape, t->in[0]->shape, t->in[0]->shape);
	NB_BCAST_LOOP(&bc, t->size, Y[o] = X[ia]);
})

NB_KERNELS(sum_to, {
	const T *X = NB_IN(t, 0, T);
	T *Y = NB_OUT(t, T);
	memset(Y, 0, (size_t)t->size * sizeof(T));
	nb_bcast bc;
	nb_bcast_init(&bc, t->in[0]->shape, t->shape, t->shape);
	NB_BCAST_LOOP(&bc, t->in[0]->size, Y[ia] += X[o]);
})

static void vjp_broadcast_to(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb__sum_to(g, t->in[0]->shape);
}

static void vjp_sum_to(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb__broadcast_to(g, t->in[0]->shape);
}

static void label_shape_attr(const nb_tensor *t, char *buf, size_t n)
{
	char b[128];
	snprintf(buf, n, "to %s", nb_shape_str(nb__unpack_shape(&t->a), b, sizeof b));
}

static void label_f0(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "%g", t->a.f[0]);
}

static void label_range(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "[%g, %g]", t->a.f[0], t->a.f[1]);
}

/* the open range (lo, hi), or the closed [lo, hi] */
static void label_mask(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, t->a.i[0] ? "[%g, %g]" : "(%g, %g)", t->a.f[0], t->a.f[1]);
}

/* ---- constructors ----------------------------------------------------------------- */

nb_tensor *nb_add(nb_tensor *a, nb_tensor *b)
{
	return nb__op2(NB_OP_ADD, a, b, NULL);
}
nb_tensor *nb_sub(nb_tensor *a, nb_tensor *b)
{
	return nb__op2(NB_OP_SUB, a, b, NULL);
}
nb_tensor *nb_mul(nb_tensor *a, nb_tensor *b)
{
	return nb__op2(NB_OP_MUL, a, b, NULL);
}
nb_tensor *nb_div(nb_tensor *a, nb_tensor *b)
{
	return nb__op2(NB_OP_DIV, a, b, NULL);
}
nb_tensor *nb_neg(nb_tensor *a)
{
	return nb__op1(NB_OP_NEG, a, NULL);
}
nb_tensor *nb_exp(nb_tensor *a)
{
	return nb__op1(NB_OP_EXP, a, NULL);
}
nb_tensor *nb_log(nb_tensor *a)
{
	return nb__op1(NB_OP_LOG, a, NULL);
}
nb_tensor *nb_sqrt(nb_tensor *a)
{
	return nb__op1(NB_OP_SQRT, a, NULL);
}
nb_tensor *nb_square(nb_tensor *a)
{
	return nb__op1(NB_OP_SQUARE, a, NULL);
}
nb_tensor *nb_abs(nb_tensor *a)
{
	return nb__op1(NB_OP_ABS, a, NULL);
}
nb_tensor *nb__sign(nb_tensor *a)
{
	return nb__op1(NB_OP_SIGN, a, NULL);
}
nb_tensor *nb_stop_gradient(nb_tensor *a)
{
	return nb__op1(NB_OP_STOP_GRADIENT, a, NULL);
}

static nb_tensor *op_f(int op, nb_tensor *a, double f0, double f1)
{
	nb_attrs at = {.f = {f0, f1}};
	return nb__op1(op, a, &at);
}

nb_tensor *nb_add_scalar(nb_tensor *a, double s)
{
	return op_f(NB_OP_ADD_SCALAR, a, s, 0);
}
nb_tensor *nb_mul_scalar(nb_tensor *a, double s)
{
	return op_f(NB_OP_MUL_SCALAR, a, s, 0);
}
nb_tensor *nb_rsub_scalar(nb_tensor *a, double s)
{
	return op_f(NB_OP_RSUB_SCALAR, a, s, 0);
}
nb_tensor *nb_pow(nb_tensor *a, double p)
{
	return op_f(NB_OP_POW, a, p, 0);
}

nb_tensor *nb_clamp(nb_tensor *a, double lo, double hi)
{
	if (a && !(lo <= hi) && a->g->status == NB_OK) { /* NaN bounds fail too */
		if (isnan(lo) || isnan(hi))
			nb__fail(a->g, NB_ERR_ARG, "clamp(%s): a bound is NaN (lo %g, hi %g)",
			         a->name, lo, hi);
		else
			nb__fail(a->g, NB_ERR_ARG,
			         "clamp(%s): lower bound %g is above upper bound %g", a->name, lo,
			         hi);
		return a->g->placeholder;
	}
	return op_f(NB_OP_CLAMP, a, lo, hi);
}

nb_tensor *nb__mask_range_ex(nb_tensor *g, nb_tensor *x, double lo, double hi, bool closed)
{
	nb_attrs at = {.f = {lo, hi}, .i = {closed}};
	return nb__op2(NB_OP_MASK_RANGE, g, x, &at);
}

nb_tensor *nb__mask_range(nb_tensor *g, nb_tensor *x, double lo, double hi)
{
	return nb__mask_range_ex(g, x, lo, hi, false);
}

static nb_status shape_mask(nb_tensor *t)
{
	char b1[128], b2[128];
	if (!nb__shape_eq(t->in[0]->shape, t->in[1]->shape))
		return nb__op_fail(t, NB_ERR_SHAPE, "shapes %s and %s differ",
		                   nb_shape_str(t->in[0]->shape, b1, sizeof b1),
		                   nb_shape_str(t->in[1]->shape, b2, sizeof b2));
	t->shape = t->in[0]->shape;
	return NB_OK;
}

nb_tensor *nb__sum_to(nb_tensor *x, nb_shape s)
{
	if (!x || nb__shape_eq(x->shape, s))
		return x;
	nb_attrs at = {0};
	nb__pack_shape(&at, s);
	return nb__op1(NB_OP_SUM_TO, x, &at);
}

nb_tensor *nb__broadcast_to(nb_tensor *x, nb_shape s)
{
	if (!x || nb__shape_eq(x->shape, s))
		return x;
	nb_attrs at = {0};
	nb__pack_shape(&at, s);
	return nb__op1(NB_OP_BROADCAST_TO, x, &at);
}

/* ---- gradcheck examples ------------------------------------------------------------
 * Binary ops get random broadcasting pairs: b's shape is a's with some axes
 * set to 1 and some leading axes dropped. */

static nb_shape drop_axes(nb_graph *g, nb_shape a)
{
	nb_shape b = a;
	for (int i = 0; i < b.ndim; i++)
		if (nb__rng_next(g) % 3 == 0)
			b.d[i] = 1;
	int drop = (int)(nb__rng_next(g) % (uint64_t)(a.ndim + 1));
	b.ndim -= drop;
	memmove(b.d, b.d + drop, (size_t)b.ndim * sizeof b.d[0]);
	return b;
}

static nb_tensor *ex_binary(nb_graph *g, nb_tensor **wrt, int *n, int op, bool positive_b)
{
	nb_shape sa = nb__rand_shape(g, 1, 4, 3), sb = drop_axes(g, sa);
	if (nb__rng_next(g) & 1) { /* swap roles: broadcast a instead */
		nb_shape tmp = sa;
		sa = sb, sb = tmp;
	}
	wrt[0] = NB_EX_PARAM(g, "a", sa);
	wrt[1] = positive_b ? nb__rand_param(g, "b", sb, 0.5, 2.0) : NB_EX_PARAM(g, "b", sb);
	*n = 2;
	return nb__op2(op, wrt[0], wrt[1], NULL);
}

static nb_tensor *ex_add(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_binary(g, w, n, NB_OP_ADD, false);
}
static nb_tensor *ex_sub(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_binary(g, w, n, NB_OP_SUB, false);
}
static nb_tensor *ex_mul(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_binary(g, w, n, NB_OP_MUL, false);
}
static nb_tensor *ex_div(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_binary(g, w, n, NB_OP_DIV, true);
}

/* unary: x drawn from [lo, hi] (keeping clear of domain edges and kinks) */
static nb_tensor *ex_unary(nb_graph *g, nb_tensor **wrt, int *n, int op, double lo, double hi,
                           double f0, double f1)
{
	wrt[0] = nb__rand_param(g, "x", nb__rand_shape(g, 1, 4, 3), lo, hi);
	*n = 1;
	return op_f(op, wrt[0], f0, f1);
}

static nb_tensor *ex_neg(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_unary(g, w, n, NB_OP_NEG, -1, 1, 0, 0);
}
static nb_tensor *ex_add_scalar(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_unary(g, w, n, NB_OP_ADD_SCALAR, -1, 1, 0.7, 0);
}
static nb_tensor *ex_mul_scalar(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_unary(g, w, n, NB_OP_MUL_SCALAR, -1, 1, -1.5, 0);
}
static nb_tensor *ex_rsub_scalar(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_unary(g, w, n, NB_OP_RSUB_SCALAR, -1, 1, 2.5, 0);
}
static nb_tensor *ex_exp(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_unary(g, w, n, NB_OP_EXP, -2, 2, 0, 0);
}
static nb_tensor *ex_log(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_unary(g, w, n, NB_OP_LOG, 0.2, 3, 0, 0);
}
static nb_tensor *ex_sqrt(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_unary(g, w, n, NB_OP_SQRT, 0.2, 3, 0, 0);
}
static nb_tensor *ex_square(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_unary(g, w, n, NB_OP_SQUARE, -2, 2, 0, 0);
}
/* x > 0, and exponents with special derivatives (p = 0: none, p = 1: 1) */
static nb_tensor *ex_pow(nb_graph *g, nb_tensor **w, int *n)
{
	static const double p[] = {2.5, 0, 1, -1.5, 0.5, 3};
	return ex_unary(g, w, n, NB_OP_POW, 0.2, 2, p[nb__rng_next(g) % 6], 0);
}
/* |x| with x kept away from the kink at 0 by the sign of the range */
static nb_tensor *ex_abs(nb_graph *g, nb_tensor **w, int *n)
{
	bool neg = nb__rng_next(g) & 1;
	return ex_unary(g, w, n, NB_OP_ABS, neg ? -2 : 0.1, neg ? -0.1 : 2, 0, 0);
}
/* clamp: the gradcheck skips elements within eps of a bound (kinks) */
static nb_tensor *ex_clamp(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_unary(g, w, n, NB_OP_CLAMP, -2, 2, -0.5, 0.8);
}
/* Finite differences cannot see stop_gradient (its forward is the
 * identity); test_core checks the zero gradient.  Here: it passes values
 * through and leaves the other paths' gradients intact. */
static nb_tensor *ex_stop(nb_graph *g, nb_tensor **w, int *n)
{
	nb_shape s = nb__rand_shape(g, 1, 3, 3);
	nb_tensor *c = nb_constant(g, "c", s, NULL);
	nb_init_tensor(c, NB_UNIFORM(-1, 1));
	w[0] = NB_EX_PARAM(g, "x", s);
	*n = 1;
	return nb_mul(w[0], nb_stop_gradient(c));
}
static nb_tensor *ex_mask_range(nb_graph *g, nb_tensor **w, int *n)
{
	nb_shape s = nb__rand_shape(g, 1, 3, 4);
	w[0] = NB_EX_PARAM(g, "g", s);
	w[1] = nb__rand_param(g, "x", s, -2, 2);
	*n = 2;
	return nb__mask_range_ex(w[0], w[1], -0.5, 0.5, nb__rng_next(g) & 1);
}
static nb_tensor *ex_broadcast_to(nb_graph *g, nb_tensor **w, int *n)
{
	nb_shape big = nb__rand_shape(g, 1, 4, 3), small = drop_axes(g, big);
	w[0] = NB_EX_PARAM(g, "x", small);
	*n = 1;
	nb_attrs at = {0};
	nb__pack_shape(&at, big);
	return nb__op1(NB_OP_BROADCAST_TO, w[0], &at);
}
static nb_tensor *ex_sum_to(nb_graph *g, nb_tensor **w, int *n)
{
	nb_shape big = nb__rand_shape(g, 1, 4, 3), small = drop_axes(g, big);
	w[0] = NB_EX_PARAM(g, "x", big);
	*n = 1;
	nb_attrs at = {0};
	nb__pack_shape(&at, small);
	return nb__op1(NB_OP_SUM_TO, w[0], &at);
}
static nb_tensor *ex_sign(nb_graph *g, nb_tensor **w, int *n)
{
	/* sign has zero derivative: x * sign(x) = |x| must check out */
	w[0] = nb__rand_param(g, "x", nb__rand_shape(g, 1, 3, 3), 0.1, 2);
	*n = 1;
	return nb_mul(w[0], nb__sign(w[0]));
}

/* ---- op table entries ------------------------------------------------------------ */

#define BIN_DEF(NAME, STR)                                                                         \
	const nb_opdef nb__op_##NAME = {.name = STR,                                               \
	                                .n_inputs = 2,                                             \
	                                .shape = shape_broadcast,                                  \
	                                .forward_f32 = NAME##_f32,                                 \
	                                .forward_f64 = NAME##_f64,                                 \
	                                .vjp = vjp_##NAME,                                         \
	                                .example = ex_##NAME,                                      \
	                                .flags = NB_OPF_INPLACE}

BIN_DEF(add, "add");
BIN_DEF(sub, "sub");
BIN_DEF(mul, "mul");
BIN_DEF(div, "div");

/* ---- the fusion add+relu (graph/compile.c) ----------------------------------------
 * t = relu(s), s = add(a, b), that only relu reads: relu's rule applied to
 * each sum as it is made, the sum never stored.  The same bits as the two
 * steps.  ResNet's residual blocks end so. */
NB_KERNELS(add_relu, BINARY_BODY(t->in[0], t, NB_RELU_OF(a + b)))

const nb_fusion nb__fuse_add_relu = {.name = "add+relu",
                                     .op = NB_OP_RELU,
                                     .producer = NB_OP_ADD,
                                     .forward_f32 = add_relu_f32,
                                     .forward_f64 = add_relu_f64};

#define UN_DEF(NAME, STR, VJP, LABEL, FLAGS)                                                       \
	const nb_opdef nb__op_##NAME = {.name = STR,                                               \
	                                .n_inputs = 1,                                             \
	                                .shape = shape_same,                                       \
	                                .forward_f32 = NAME##_f32,                                 \
	                                .forward_f64 = NAME##_f64,                                 \
	                                .vjp = VJP,                                                \
	                                .label = LABEL,                                            \
	                                .example = ex_##NAME,                                      \
	                                .flags = (FLAGS) | NB_OPF_INPLACE}

UN_DEF(neg, "neg", vjp_neg, NULL, 0);
UN_DEF(add_scalar, "add_scalar", vjp_identity, label_f0, 0);
UN_DEF(mul_scalar, "mul_scalar", vjp_mul_scalar, label_f0, 0);
UN_DEF(rsub_scalar, "rsub_scalar", vjp_neg, label_f0, 0);
UN_DEF(exp, "exp", vjp_exp, NULL, 0);
UN_DEF(log, "log", vjp_log, NULL, 0);
UN_DEF(sqrt, "sqrt", vjp_sqrt, NULL, 0);
UN_DEF(square, "square", vjp_square, NULL, 0);
UN_DEF(pow, "pow", vjp_pow, label_f0, 0);
UN_DEF(abs, "abs", vjp_abs, NULL, 0);
UN_DEF(sign, "sign", NULL, NULL, NB_OPF_NO_GRAD);
UN_DEF(clamp, "clamp", vjp_clamp, label_range, 0);

const nb_opdef nb__op_stop_gradient = {.name = "stop_gradient",
                                       .n_inputs = 1,
                                       .shape = shape_same,
                                       .forward_f32 = identity_f32,
                                       .forward_f64 = identity_f64,
                                       .example = ex_stop,
                                       .flags = NB_OPF_NO_GRAD | NB_OPF_INPLACE};

const nb_opdef nb__op_mask_range = {.name = "mask_range",
                                    .n_inputs = 2,
                                    .shape = shape_mask,
                                    .forward_f32 = mask_range_f32,
                                    .forward_f64 = mask_range_f64,
                                    .vjp = vjp_mask_range,
                                    .label = label_mask,
                                    .example = ex_mask_range,
                                    .flags = NB_OPF_INPLACE};

const nb_opdef nb__op_broadcast_to = {.name = "broadcast_to",
                                      .n_inputs = 1,
                                      .shape = shape_broadcast_to,
                                      .forward_f32 = broadcast_to_f32,
                                      .forward_f64 = broadcast_to_f64,
                                      .vjp = vjp_broadcast_to,
                                      .label = label_shape_attr,
                                      .example = ex_broadcast_to};

const nb_opdef nb__op_sum_to = {.name = "sum_to",
                                .n_inputs = 1,
                                .shape = shape_sum_to,
                                .forward_f32 = sum_to_f32,
                                .forward_f64 = sum_to_f64,
                                .vjp = vjp_sum_to,
                                .label = label_shape_attr,
                                .example = ex_sum_to};
