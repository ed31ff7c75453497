/*
 * Shape ops: reshape (flatten), transpose of two axes, concat, slice and
 * its adjoint embed.
 *
 * Attributes: reshape: target shape packed (nb__pack_shape);
 * transpose: i[0], i[1] = the axes; concat: i[0] = axis;
 * slice/embed: i[0] = axis, i[1] = start, i[2] = end (slice), i[3] = the
 * full length (embed).
 */
#include "ops/kernel.h"

/* ---- reshape --------------------------------------------------------------- */

static nb_status shape_reshape(nb_tensor *t)
{
	nb_shape s = nb__unpack_shape(&t->a);
	char b1[128], b2[128];
	if (nb_shape_size(s) != t->in[0]->size)
		return nb__op_fail(t, NB_ERR_SHAPE, "cannot reshape %s (%lld elements) to %s",
		                   nb_shape_str(t->in[0]->shape, b1, sizeof b1),
		                   (long long)t->in[0]->size, nb_shape_str(s, b2, sizeof b2));
	t->shape = s;
	return NB_OK;
}

NB_KERNELS(copy, {
	if (t->data != t->in[0]->data)
		memcpy(t->data, t->in[0]->data, (size_t)t->size * sizeof(T));
})

static void vjp_reshape(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb_reshape(g, t->in[0]->shape);
}

static void label_reshape(const nb_tensor *t, char *buf, size_t n)
{
	char b[128];
	snprintf(buf, n, "to %s", nb_shape_str(t->shape, b, sizeof b));
}

nb_tensor *nb_reshape(nb_tensor *a, nb_shape s)
{
	if (!a)
		return NULL;
	nb_graph *g = a->g;
	if (g->status != NB_OK)
		return g->placeholder;
	char b[128];
	if (s.ndim < 0 || s.ndim > NB_MAX_DIMS) {
		nb__fail(g, NB_ERR_SHAPE, "reshape(%s): %d dimensions (at most %d)", a->name,
		         s.ndim, NB_MAX_DIMS);
		return g->placeholder;
	}
	/* one dimension may be -1: inferred from the element count */
	int infer = -1;
	int64_t known = 1;
	for (int i = 0; i < s.ndim; i++) {
		if (s.d[i] == -1 && infer < 0) {
			infer = i;
		} else if (s.d[i] <= 0) {
			nb__fail(
			    g, NB_ERR_SHAPE,
			    "reshape(%s): bad target %s (dimensions must be positive, one may be -1)",
			    a->name, nb_shape_str(s, b, sizeof b));
			return g->placeholder;
		} else if (s.d[i] > a->size / known) {
			/* more elements than a has (and no int64 overflow) */
			char b2[128];
			nb__fail(g, NB_ERR_SHAPE,
			         "reshape(%s): cannot reshape %s (%lld elements) to %s", a->name,
			         nb_shape_str(a->shape, b2, sizeof b2), (long long)a->size,
			         nb_shape_str(s, b, sizeof b));
			return g->placeholder;
		} else {
			known *= s.d[i];
		}
	}
	if (infer >= 0) {
		if (a->size % known) {
			nb__fail(g, NB_ERR_SHAPE, "reshape(%s): %lld elements do not fill %s",
			         a->name, (long long)a->size, nb_shape_str(s, b, sizeof b));
			return g->placeholder;
		}
		s.d[infer] = a->size / known;
	}
	if (nb__shape_eq(s, a->shape))
		return a;
	nb_attrs at = {0};
	nb__pack_shape(&at, s);
	return nb__op1(NB_OP_RESHAPE, a, &at);
}

nb_tensor *nb_flatten(nb_tensor *a)
{
	if (!a)
		return NULL;
	if (a->shape.ndim < 1) {
		nb__fail(a->g, NB_ERR_SHAPE, "flatten(%s): needs at least one dimension", a->name);
		return a->g->placeholder;
	}
	return nb_reshape(a, NB_SHAPE(a->shape.d[0], -1));
}

/* ---- transpose of two axes ---------------------------------------------------
 * Viewed as [d0, A, d1, B, d2] with A, B the swapped axes' lengths, the
 * output is [d0, B, d1, A, d2]. */

static nb_status shape_transpose(nb_tensor *t)
{
	nb_shape s = t->in[0]->shape;
	int64_t tmp = s.d[t->a.i[0]];
	s.d[t->a.i[0]] = s.d[t->a.i[1]];
	s.d[t->a.i[1]] = tmp;
	t->shape = s;
	return NB_OK;
}

NB_KERNELS(transpose, {
	const T *X = NB_IN(t, 0, T);
	T *Y = NB_OUT(t, T);
	nb_shape s = t->in[0]->shape;
	int p = (int)t->a.i[0], q = (int)t->a.i[1];
	int64_t d0 = 1, d1 = 1, d2 = 1, A = s.d[p], B = s.d[q];
	for (int i = 0; i < p; i++)
		d0 *= s.d[i];
	for (int i = p + 1; i < q; i++)
		d1 *= s.d[i];
	for (int i = q + 1; i < s.ndim; i++)
		d2 *= s.d[i];
	for (int64_t i0 = 0; i0 < d0; i0++)
		for (int64_t a = 0; a < A; a++)
			for (int64_t i1 = 0; i1 < d1; i1++)
				for (int64_t b = 0; b < B; b++) {
					const T *x = X + (((i0 * A + a) * d1 + i1) * B + b) * d2;
					T *y = Y + (((i0 * B + b) * d1 + i1) * A + a) * d2;
					for (int64_t i2 = 0; i2 < d2; i2++)
						y[i2] = x[i2];
				}
})

static void vjp_transpose(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb_transpose(g, (int)t->a.i[0], (int)t->a.i[1]);
}

static void label_transpose(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "axes %d,%d", (int)t->a.i[0], (int)t->a.i[1]);
}

nb_tensor *nb_transpose(nb_tensor *a, int axis0, int axis1)
{
	if (!a)
		return NULL;
	if (a->g->status != NB_OK)
		return a->g->placeholder;
	int p = nb__norm_axis(axis0, a->shape.ndim), q = nb__norm_axis(axis1, a->shape.ndim);
	if (p < 0 || q < 0) {
		char b[128];
		nb__fail(a->g, NB_ERR_ARG, "transpose(%s): axes %d, %d out of range for shape %s",
		         a->name, axis0, axis1, nb_shape_str(a->shape, b, sizeof b));
		return a->g->placeholder;
	}
	if (p == q)
		return a;
	nb_attrs at = {.i = {p < q ? p : q, p < q ? q : p}};
	return nb__op1(NB_OP_TRANSPOSE, a, &at);
}

/* ---- concat along an axis --------------------------------------------------- */

static nb_status shape_concat(nb_tensor *t)
{
	int ax = (int)t->a.i[0];
	nb_shape s = t->in[0]->shape;
	char b1[128], b2[128];
	if (ax >= s.ndim)
		return nb__op_fail(t, NB_ERR_ARG, "axis %d out of range for shape %s", ax,
		                   nb_shape_str(s, b1, sizeof b1));
	for (int k = 1; k < t->n_in; k++) {
		nb_shape o = t->in[k]->shape;
		bool ok = o.ndim == s.ndim;
		for (int i = 0; ok && i < s.ndim; i++)
			ok = i == ax || o.d[i] == s.d[i];
		if (!ok)
			return nb__op_fail(
			    t, NB_ERR_SHAPE,
			    "input %d has shape %s, which does not match %s outside axis %d", k,
			    nb_shape_str(o, b1, sizeof b1), nb_shape_str(s, b2, sizeof b2), ax);
		/* the size check comes after: keep the sum itself from overflowing */
		if (s.d[ax] > NB_MAX_SIZE - o.d[ax])
			return nb__op_fail(
			    t, NB_ERR_SHAPE,
			    "the %d inputs' lengths along axis %d add up to more than 2^60",
			    t->n_in, ax);
		s.d[ax] += o.d[ax];
	}
	t->shape = s;
	return NB_OK;
}

/* outer = product of dims before the axis; each input contributes a
 * contiguous run of len_k * inner elements per outer index */
static int64_t outer_of(nb_shape s, int ax)
{
	int64_t o = 1;
	for (int i = 0; i < ax; i++)
		o *= s.d[i];
	return o;
}

NB_KERNELS(concat, {
	int ax = (int)t->a.i[0];
	int64_t outer = outer_of(t->shape, ax), row = t->size / outer, off = 0;
	T *Y = NB_OUT(t, T);
	for (int k = 0; k < t->n_in; k++) {
		const T *X = NB_IN(t, k, T);
		int64_t run = t->in[k]->size / outer;
		for (int64_t o = 0; o < outer; o++)
			memcpy(Y + o * row + off, X + o * run, (size_t)run * sizeof(T));
		off += run;
	}
})

static void vjp_concat(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	int ax = (int)t->a.i[0];
	int64_t start = 0;
	for (int k = 0; k < t->n_in; k++) {
		int64_t len = t->in[k]->shape.d[ax];
		if (need[k])
			gin[k] = nb_slice(g, ax, start, start + len);
		start += len;
	}
}

static void label_axis(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "axis %d", (int)t->a.i[0]);
}

nb_tensor *nb_concat(nb_tensor *const *ts, int n, int axis)
{
	if (!ts || n <= 0)
		return NULL;
	nb_graph *g = nb__graph_of(ts, n);
	if (!g)
		return NULL;
	if (g->status != NB_OK)
		return g->placeholder;
	if (!ts[0]) {
		nb__fail(g, NB_ERR_ARG, "concat: input 0 is NULL");
		return g->placeholder;
	}
	int ax = nb__norm_axis(axis, ts[0]->shape.ndim);
	if (ax < 0) {
		char b[128];
		nb__fail(g, NB_ERR_ARG, "concat(%s, ...): axis %d out of range for shape %s",
		         ts[0]->name, axis, nb_shape_str(ts[0]->shape, b, sizeof b));
		return g->placeholder;
	}
	if (n == 1)
		return ts[0];
	nb_attrs at = {.i = {ax}};
	return nb__op(NB_OP_CONCAT, ts, n, &at);
}

/* ---- slice [start, end) along an axis, and embed (its adjoint) --------------- */

static nb_status shape_slice(nb_tensor *t)
{
	t->shape = t->in[0]->shape;
	t->shape.d[t->a.i[0]] = t->a.i[2] - t->a.i[1];
	return NB_OK;
}

static nb_status shape_embed(nb_tensor *t)
{
	t->shape = t->in[0]->shape;
	t->shape.d[t->a.i[0]] = t->a.i[3];
	return NB_OK;
}

/* copy the window: slice reads big->small, embed writes small->big (zeros
 * elsewhere) */
#define WINDOW_BODY(EMBED)                                                                         \
	int ax = (int)t->a.i[0];                                                                   \
	const nb_tensor *big = EMBED ? t : t->in[0];                                               \
	int64_t outer = outer_of(big->shape, ax), brow = big->size / outer;                        \
	int64_t srow = (EMBED ? t->in[0]->size : t->size) / outer;                                 \
	int64_t inner = brow / big->shape.d[ax], off = t->a.i[1] * inner;                          \
	const T *X = NB_IN(t, 0, T);                                                               \
	T *Y = NB_OUT(t, T);                                                                       \
	if (EMBED)                                                                                 \
		memset(Y, 0, (size_t)t->size * sizeof(T));                                         \
	for (int64_t o = 0; o < outer; o++) {                                                      \
		if (EMBED)                                                                         \
			memcpy(Y + o * brow + off, X + o * srow, (size_t)srow * sizeof(T));        \
		else                                                                               \
			memcpy(Y + o * srow, X + o * brow + off, (size_t)srow * sizeof(T));        \
	}

NB_KERNELS(slice, {WINDOW_BODY(0)})
NB_KERNELS(embed, {WINDOW_BODY(1)})

static void vjp_slice(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	nb_attrs at = t->a;
	at.i[3] = t->in[0]->shape.d[t->a.i[0]];
	gin[0] = nb__op1(NB_OP_EMBED, g, &at);
}

static void vjp_embed(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb_slice(g, (int)t->a.i[0], t->a.i[1], t->a.i[2]);
}

static void label_slice(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "axis %d [%lld:%lld]", (int)t->a.i[0], (long long)t->a.i[1],
	         (long long)t->a.i[2]);
}

nb_tensor *nb_slice(nb_tensor *a, int axis, int64_t start, int64_t end)
{
	if (!a)
		return NULL;
	nb_graph *g = a->g;
	if (g->status != NB_OK)
		return g->placeholder;
	char b[128];
	int ax = nb__axis_arg(a, "slice", axis);
	if (ax < 0)
		return g->placeholder;
	if (start < 0 || end > a->shape.d[ax] || start >= end) {
		nb__fail(g, NB_ERR_ARG,
		         "slice(%s): range [%lld, %lld) is empty or outside axis %d of %s", a->name,
		         (long long)start, (long long)end, ax, nb_shape_str(a->shape, b, sizeof b));
		return g->placeholder;
	}
	if (start == 0 && end == a->shape.d[ax])
		return a;
	nb_attrs at = {.i = {ax, start, end}};
	return nb__op1(NB_OP_SLICE, a, &at);
}

/* ---- gradcheck examples ---------------------------------------------------------- */

static nb_tensor *ex_reshape(nb_graph *g, nb_tensor **w, int *n)
{
	w[0] = NB_EX_PARAM(g, "x", NB_SHAPE(2, 3, 2));
	*n = 1;
	return nb_reshape(w[0], nb__rng_next(g) & 1 ? NB_SHAPE(4, -1) : NB_SHAPE(3, 2, 2));
}

static nb_tensor *ex_transpose(nb_graph *g, nb_tensor **w, int *n)
{
	nb_shape s = nb__rand_shape(g, 2, 4, 4);
	w[0] = NB_EX_PARAM(g, "x", s);
	*n = 1;
	int p = (int)(nb__rng_next(g) % (uint64_t)s.ndim);
	int q = (p + 1 + (int)(nb__rng_next(g) % (uint64_t)(s.ndim - 1))) % s.ndim;
	return nb_transpose(w[0], p, q);
}

static nb_tensor *ex_concat(nb_graph *g, nb_tensor **w, int *n)
{
	nb_shape s = nb__rand_shape(g, 1, 3, 3);
	int ax = (int)(nb__rng_next(g) % (uint64_t)s.ndim);
	static const char *const names[3] = {"x0", "x1", "x2"};
	*n = 3;
	for (int k = 0; k < 3; k++) {
		nb_shape sk = s;
		sk.d[ax] = 1 + (int64_t)(nb__rng_next(g) % 3);
		w[k] = NB_EX_PARAM(g, names[k], sk);
	}
	return nb_concat(w, 3, ax);
}

static nb_tensor *ex_slice(nb_graph *g, nb_tensor **w, int *n)
{
	nb_shape s = nb__rand_shape(g, 1, 3, 3);
	int ax = (int)(nb__rng_next(g) % (uint64_t)s.ndim);
	s.d[ax] = 4;
	w[0] = NB_EX_PARAM(g, "x", s);
	*n = 1;
	return nb_slice(w[0], ax, 1, 3);
}

static nb_tensor *ex_embed(nb_graph *g, nb_tensor **w, int *n)
{
	nb_shape s = nb__rand_shape(g, 1, 3, 3);
	int ax = (int)(nb__rng_next(g) % (uint64_t)s.ndim);
	w[0] = NB_EX_PARAM(g, "x", s);
	*n = 1;
	nb_attrs at = {.i = {ax, 1, 1 + s.d[ax], s.d[ax] + 3}};
	return nb__op1(NB_OP_EMBED, w[0], &at);
}

const nb_opdef nb__op_reshape = {.name = "reshape",
                                 .n_inputs = 1,
                                 .shape = shape_reshape,
                                 .forward_f32 = copy_f32,
                                 .forward_f64 = copy_f64,
                                 .vjp = vjp_reshape,
                                 .label = label_reshape,
                                 .example = ex_reshape,
                                 .flags =
                                     NB_OPF_INPLACE /* a free view when the input dies here */};

const nb_opdef nb__op_transpose = {.name = "transpose",
                                   .n_inputs = 1,
                                   .shape = shape_transpose,
                                   .forward_f32 = transpose_f32,
                                   .forward_f64 = transpose_f64,
                                   .vjp = vjp_transpose,
                                   .label = label_transpose,
                                   .example = ex_transpose};

const nb_opdef nb__op_concat = {.name = "concat",
                                .n_inputs = -1,
                                .shape = shape_concat,
                                .forward_f32 = concat_f32,
                                .forward_f64 = concat_f64,
                                .vjp = vjp_concat,
                                .label = label_axis,
                                .example = ex_concat};

const nb_opdef nb__op_slice = {.name = "slice",
                               .n_inputs = 1,
                               .shape = shape_slice,
                               .forward_f32 = slice_f32,
                               .forward_f64 = slice_f64,
                               .vjp = vjp_slice,
                               .label = label_slice,
                               .example = ex_slice};

const nb_opdef nb__op_embed = {.name = "embed",
                               .n_inputs = 1,
                               .shape = shape_embed,
                               .forward_f32 = embed_f32,
                               .forward_f64 = embed_f64,
                               .vjp = vjp_embed,
                               .label = label_slice,
                               .example = ex_embed};
