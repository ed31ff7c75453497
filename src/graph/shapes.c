/*
 * Shapes: printing and sizes (public), equality, NumPy broadcasting and
 * axis arguments for the ops' shape rules, and random shapes for the ops'
 * gradcheck examples.
 */
#include "graph/internal.h"

#include <stdio.h>

char *nb_shape_str(nb_shape s, char *buf, size_t n)
{
	size_t k = 0;
	if (n == 0)
		return buf;
	if (s.ndim < 0 || s.ndim > NB_MAX_DIMS) {
		snprintf(buf, n, "[%d dims?]", s.ndim);
		return buf;
	}
	k += (size_t)snprintf(buf + k, n - k, "[");
	for (int i = 0; i < s.ndim && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)s.d[i]);
	if (k < n)
		snprintf(buf + k, n - k, "]");
	return buf;
}

int64_t nb_shape_size(nb_shape s)
{
	if (s.ndim < 0 || s.ndim > NB_MAX_DIMS)
		return -1;
	int64_t n = 1;
	for (int i = 0; i < s.ndim; i++) {
		if (s.d[i] < 0 || (s.d[i] > 0 && n > NB_MAX_SIZE / s.d[i]))
			return -1;
		n *= s.d[i];
	}
	return n;
}

bool nb__shape_eq(nb_shape a, nb_shape b)
{
	if (a.ndim != b.ndim)
		return false;
	for (int i = 0; i < a.ndim; i++)
		if (a.d[i] != b.d[i])
			return false;
	return true;
}

bool nb__broadcast_shape(nb_shape a, nb_shape b, nb_shape *out)
{
	int n = a.ndim > b.ndim ? a.ndim : b.ndim;
	nb_shape r = {.ndim = n};
	for (int i = 0; i < n; i++) {
		int ia = a.ndim - n + i, ib = b.ndim - n + i;
		int64_t da = ia >= 0 ? a.d[ia] : 1, db = ib >= 0 ? b.d[ib] : 1;
		if (da != db && da != 1 && db != 1)
			return false;
		r.d[i] = da == 1 ? db : da;
	}
	*out = r;
	return true;
}

int nb__norm_axis(int axis, int ndim)
{
	if (axis < 0)
		axis += ndim;
	return axis >= 0 && axis < ndim ? axis : -1;
}

int nb__axis_arg(nb_tensor *a, const char *op, int axis)
{
	int ax = nb__norm_axis(axis, a->shape.ndim);
	if (ax < 0) {
		char b[128];
		nb__fail(a->g, NB_ERR_ARG, "%s(%s): axis %d out of range for shape %s", op, a->name,
		         axis, nb_shape_str(a->shape, b, sizeof b));
	}
	return ax;
}

/* ---- random shapes for op examples (gradcheck) ---------------------------- */

nb_shape nb__rand_shape(nb_graph *g, int min_ndim, int max_ndim, int maxlen)
{
	nb_shape s = {.ndim =
	                  min_ndim + (int)(nb__rng_next(g) % (uint64_t)(max_ndim - min_ndim + 1))};
	for (int i = 0; i < s.ndim; i++)
		s.d[i] = 1 + (int64_t)(nb__rng_next(g) % (uint64_t)maxlen);
	return s;
}
