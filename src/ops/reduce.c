/*
 * Reductions: sum and mean over all or chosen axes, max over one axis.
 *
 * Attributes: i[0] = bit mask of reduced axes, i[1] = keepdims (sum, mean);
 * i[0] = axis, i[1] = keepdims (max).
 */
#include "ops/kernel.h"

/* the shape with reduced axes kept as 1 */
static nb_shape kept_shape(nb_shape s, int64_t mask)
{
	for (int i = 0; i < s.ndim; i++)
		if (mask >> i & 1)
			s.d[i] = 1;
	return s;
}

static nb_shape reduced_shape(nb_shape s, int64_t mask, bool keep)
{
	if (keep)
		return kept_shape(s, mask);
	nb_shape r = {.ndim = 0};
	for (int i = 0; i < s.ndim; i++)
		if (!(mask >> i & 1))
			r.d[r.ndim++] = s.d[i];
	return r;
}

static nb_status shape_reduce(nb_tensor *t)
{
	t->shape = reduced_shape(t->in[0]->shape, t->a.i[0], t->a.i[1]);
	return NB_OK;
}

static int64_t reduced_count(const nb_tensor *t)
{
	return t->in[0]->size / t->size;
}

/* y[j] = sum of x over the reduced axes: the input is iterated with the
 * (kept-dims) output's strides, 0 on reduced axes. */
#define SUM_BODY(SCALE)                                                                            \
	const T *X = NB_IN(t, 0, T);                                                               \
	T *Y = NB_OUT(t, T);                                                                       \
	nb_shape in = t->in[0]->shape, ks = kept_shape(in, t->a.i[0]);                             \
	if (t->size == 1) {                                                                        \
		double s = 0; /* accumulate a full sum in double */                                \
		int64_t n = t->in[0]->size;                                                        \
		NB_PAR_SUM_LANES(ex->threads, i, n, v = X[i];);                                    \
		Y[0] = (T)(s * (SCALE));                                                           \
		return;                                                                            \
	}                                                                                          \
	memset(Y, 0, (size_t)t->size * sizeof(T));                                                 \
	nb_bcast bc;                                                                               \
	nb_bcast_init(&bc, in, ks, ks);                                                            \
	NB_BCAST_LOOP(&bc, t->in[0]->size, Y[ia] += X[o]);                                         \
	if ((SCALE) != 1.0)                                                                        \
		for (int64_t i = 0; i < t->size; i++)                                              \
			Y[i] *= (T)(SCALE);

NB_KERNELS(sum, {SUM_BODY(1.0)})
NB_KERNELS(mean, {SUM_BODY(1.0 / (double)reduced_count(t))})

/* d sum: broadcast g back over the reduced axes; mean also scales by 1/n */
static void vjp_sum(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	nb_shape in = t->in[0]->shape;
	nb_tensor *gk = nb_reshape(g, kept_shape(in, t->a.i[0]));
	gin[0] = nb__broadcast_to(gk, in);
	if (t->op == NB_OP_MEAN)
		gin[0] = nb_mul_scalar(gin[0], 1.0 / (double)reduced_count(t));
}

static void label_reduce(const nb_tensor *t, char *buf, size_t n)
{
	size_t k = (size_t)snprintf(buf, n, "axes");
	for (int i = 0; i < t->in[0]->shape.ndim && k < n; i++)
		if (t->a.i[0] >> i & 1)
			k += (size_t)snprintf(buf + k, n - k, " %d", i);
	if (t->a.i[1] && k < n)
		snprintf(buf + k, n - k, " keepdims");
}

static nb_tensor *reduce(int op, nb_tensor *a, const int *axes, int n, bool keep)
{
	if (!a)
		return NULL;
	nb_graph *g = a->g;
	if (g->status != NB_OK)
		return g->placeholder;
	int64_t mask = 0;
	if (n < 0 || (n > 0 && !axes)) {
		nb__fail(g, NB_ERR_ARG, "%s(%s): axes list is NULL or has negative length",
		         nb__ops[op]->name, a->name);
		return g->placeholder;
	}
	if (n == 0)
		mask = (1 << a->shape.ndim) - 1;
	for (int i = 0; i < n; i++) {
		int ax = nb__axis_arg(a, nb__ops[op]->name, axes[i]);
		if (ax < 0)
			return g->placeholder;
		if (mask >> ax & 1) {
			char b[128];
			nb__fail(g, NB_ERR_ARG, "%s(%s): axis %d (= %d of shape %s) given twice",
			         nb__ops[op]->name, a->name, axes[i], ax,
			         nb_shape_str(a->shape, b, sizeof b));
			return g->placeholder;
		}
		mask |= (int64_t)1 << ax;
	}
	nb_attrs at = {.i = {mask, keep}};
	return nb__op1(op, a, &at);
}

nb_tensor *nb_sum_axes(nb_tensor *a, const int *axes, int n, bool keepdims)
{
	return reduce(NB_OP_SUM, a, axes, n, keepdims);
}

nb_tensor *nb_mean_axes(nb_tensor *a, const int *axes, int n, bool keepdims)
{
	return reduce(NB_OP_MEAN, a, axes, n, keepdims);
}

nb_tensor *nb_sum(nb_tensor *a)
{
	return reduce(NB_OP_SUM, a, NULL, 0, false);
}

nb_tensor *nb_mean(nb_tensor *a)
{
	return reduce(NB_OP_MEAN, a, NULL, 0, false);
}

/* ---- max over one axis -------------------------------------------------------
 * The input is viewed as [outer, len, inner].  A maximum shared by several
 * elements (a tie) splits the gradient evenly among them, as PyTorch's
 * torch.max(x) and torch.amax(x, dim) do (torch.max(x, dim), which also
 * returns indices, sends it all to the returned index instead).  NaN
 * propagates: a slice holding one has the maximum NaN, and its NaNs share
 * the gradient. */

/* x[k] counts as a largest element; m is the running maximum */
#define MAX_BEATS(v, m) ((v) > (m) || ((v) != (v) && (m) == (m)))
#define MAX_TIES(v, m) ((v) == (m) || ((v) != (v) && (m) != (m)))

static nb_status shape_max(nb_tensor *t)
{
	t->shape = reduced_shape(t->in[0]->shape, (int64_t)1 << t->a.i[0], t->a.i[1]);
	return NB_OK;
}

NB_KERNELS(max, {
	const T *X = NB_IN(t, 0, T);
	T *Y = NB_OUT(t, T);
	int64_t outer, len, inner;
	nb__split_axis(t->in[0]->shape, (int)t->a.i[0], &outer, &len, &inner);
	for (int64_t o = 0; o < outer; o++)
		for (int64_t j = 0; j < inner; j++) {
			const T *x = X + o * len * inner + j;
			T m = x[0];
			for (int64_t k = 1; k < len; k++)
				if (MAX_BEATS(x[k * inner], m))
					m = x[k * inner];
			Y[o * inner + j] = m;
		}
})

/* max_backward(g, x): dx = g / c at each of the c positions holding the
 * maximum (the NaNs when it is NaN), else 0 */
NB_KERNELS(max_backward, {
	const T *G = NB_IN(t, 0, T), *X = NB_IN(t, 1, T);
	T *D = NB_OUT(t, T);
	int64_t outer, len, inner;
	nb__split_axis(t->in[1]->shape, (int)t->a.i[0], &outer, &len, &inner);
	memset(D, 0, (size_t)t->size * sizeof(T));
	for (int64_t o = 0; o < outer; o++)
		for (int64_t j = 0; j < inner; j++) {
			const T *x = X + o * len * inner + j;
			T *d = D + o * len * inner + j;
			T m = x[0];
			for (int64_t k = 1; k < len; k++)
				if (MAX_BEATS(x[k * inner], m))
					m = x[k * inner];
			int64_t ties = 0; /* at least 1: m is one of the x */
			for (int64_t k = 0; k < len; k++)
				ties += MAX_TIES(x[k * inner], m);
			const T share = G[o * inner + j] / (T)ties;
			for (int64_t k = 0; k < len; k++)
				if (MAX_TIES(x[k * inner], m))
					d[k * inner] = share;
		}
})

static nb_status shape_max_backward(nb_tensor *t)
{
	t->shape = t->in[1]->shape;
	return NB_OK;
}

static void vjp_max(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	nb_attrs at = t->a;
	gin[0] = nb__op2(NB_OP_MAX_BACKWARD, g, t->in[0], &at);
}

static void label_max(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "axis %d%s", (int)t->a.i[0], t->a.i[1] ? " keepdims" : "");
}

nb_tensor *nb_max_axis(nb_tensor *a, int axis, bool keepdims)
{
	if (!a)
		return NULL;
	if (a->g->status != NB_OK)
		return a->g->placeholder;
	int ax = nb__axis_arg(a, "max", axis);
	if (ax < 0)
		return a->g->placeholder;
	nb_attrs at = {.i = {ax, keepdims}};
	return nb__op1(NB_OP_MAX, a, &at);
}

nb_tensor *nb_max(nb_tensor *a)
{
	if (!a)
		return NULL;
	return nb_max_axis(nb_reshape(a, NB_SHAPE(a->size)), 0, false);
}

/* ---- gradcheck examples ---------------------------------------------------------- */

static nb_tensor *ex_reduce(nb_graph *g, nb_tensor **w, int *n, int op)
{
	nb_shape s = nb__rand_shape(g, 1, 4, 3);
	w[0] = NB_EX_PARAM(g, "x", s);
	*n = 1;
	int axes[NB_MAX_DIMS], k = 0;
	for (int i = 0; i < s.ndim; i++)
		if (nb__rng_next(g) & 1)
			axes[k++] = i;
	return reduce(op, w[0], axes, k, nb__rng_next(g) & 1);
}

static nb_tensor *ex_sum(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_reduce(g, w, n, NB_OP_SUM);
}
static nb_tensor *ex_mean(nb_graph *g, nb_tensor **w, int *n)
{
	return ex_reduce(g, w, n, NB_OP_MEAN);
}

static nb_tensor *ex_max(nb_graph *g, nb_tensor **w, int *n)
{
	nb_shape s = nb__rand_shape(g, 1, 4, 4);
	w[0] = NB_EX_PARAM(g, "x", s);
	*n = 1;
	return nb_max_axis(w[0], (int)(nb__rng_next(g) % (uint64_t)s.ndim), nb__rng_next(g) & 1);
}

const nb_opdef nb__op_sum = {.name = "sum",
                             .n_inputs = 1,
                             .shape = shape_reduce,
                             .forward_f32 = sum_f32,
                             .forward_f64 = sum_f64,
                             .vjp = vjp_sum,
                             .label = label_reduce,
                             .example = ex_sum};

const nb_opdef nb__op_mean = {.name = "mean",
                              .n_inputs = 1,
                              .shape = shape_reduce,
                              .forward_f32 = mean_f32,
                              .forward_f64 = mean_f64,
                              .vjp = vjp_sum,
                              .label = label_reduce,
                              .example = ex_mean};

const nb_opdef nb__op_max = {.name = "max",
                             .n_inputs = 1,
                             .shape = shape_max,
                             .forward_f32 = max_f32,
                             .forward_f64 = max_f64,
                             .vjp = vjp_max,
                             .label = label_max,
                             .example = ex_max};

/* Backward helper of max; its own derivative is not implemented (a second
 * derivative through max reports a clear error). */
const nb_opdef nb__op_max_backward = {.name = "max_backward",
                                      .n_inputs = 2,
                                      .shape = shape_max_backward,
                                      .forward_f32 = max_backward_f32,
                                      .forward_f64 = max_backward_f64,
                                      .label = label_max,
                                      .flags = NB_OPF_INTERNAL};
