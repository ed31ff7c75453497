/*
 * The gradient buckets' ops (src/dist/buckets.c builds them; the
 * communication itself is src/dist/dist.c's):
 *
 *   dist_allreduce(g1, ..., gk) -> [n]  packs the gradients into one
 *       buffer and starts its sum over the ranks (non-blocking, in place)
 *   dist_wait(bucket) -> [n]  waits for it (in place: the planner gives
 *       the output the bucket's buffer)
 *   dist_unpack(reduced) -> the shape of one gradient, at an offset
 *
 * attrs: p = the nb_dist, i0 = the bucket's request slot (allreduce,
 * wait); unpack: i0 = offset in elements, i1 = ndim, i2.. = the shape.
 * dist_wait and dist_unpack are flagged NB_OPF_DEFER: the schedule runs
 * them just before their first reader, so the backward pass goes on while
 * the sum is under way.  None has a gradient.
 */
#include "dist/dist.h"
#include "ops/kernel.h"

#include <stdio.h>
#include <string.h>

static nb_status shape_allreduce(nb_tensor *t)
{
	int64_t n = 0;
	for (int k = 0; k < t->n_in; k++)
		n += t->in[k]->size;
	t->shape = (nb_shape){1, {n}};
	return NB_OK;
}

static void allreduce_fwd(const nb_exec *ex, nb_tensor *t)
{
	(void)ex;
	const size_t es = nb__is_f32(t) ? 4 : 8;
	char *out = t->data;
	for (int k = 0; k < t->n_in; k++) {
		memcpy(out, t->in[k]->data, (size_t)t->in[k]->size * es);
		out += (size_t)t->in[k]->size * es;
	}
	char err[600];
	nb_status st =
	    nb__dist_start(t->a.p, (int)t->a.i[0], t->data, t->size, es == 4, err, sizeof err);
	if (st)
		nb__fail(t->g, st, "dist_allreduce (bucket %d): %s", (int)t->a.i[0], err);
}

static void label_allreduce(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "bucket %d, %d tensor%s", (int)t->a.i[0], t->n_in,
	         t->n_in == 1 ? "" : "s");
}

static nb_status shape_same(nb_tensor *t)
{
	t->shape = t->in[0]->shape;
	return NB_OK;
}

static void wait_fwd(const nb_exec *ex, nb_tensor *t)
{
	(void)ex;
	char err[600];
	nb_status st = nb__dist_wait(t->a.p, (int)t->a.i[0], err, sizeof err);
	if (st) {
		nb__fail(t->g, st, "dist_wait (bucket %d): %s", (int)t->a.i[0], err);
		return;
	}
	if (t->data != t->in[0]->data)
		memcpy(t->data, t->in[0]->data, (size_t)t->size * (nb__is_f32(t) ? 4 : 8));
}

static void label_wait(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "bucket %d", (int)t->a.i[0]);
}

static nb_status shape_unpack(nb_tensor *t)
{
	nb_shape s = {(int)t->a.i[1], {0}};
	for (int k = 0; k < s.ndim; k++)
		s.d[k] = t->a.i[2 + k];
	t->shape = s;
	return NB_OK;
}

static void unpack_fwd(const nb_exec *ex, nb_tensor *t)
{
	(void)ex;
	const size_t es = nb__is_f32(t) ? 4 : 8;
	memcpy(t->data, (const char *)t->in[0]->data + (size_t)t->a.i[0] * es,
	       (size_t)t->size * es);
}

static void label_unpack(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "at %lld", (long long)t->a.i[0]);
}

const nb_opdef nb__op_dist_allreduce = {.name = "dist_allreduce",
                                        .n_inputs = -1,
                                        .shape = shape_allreduce,
                                        .forward_f32 = allreduce_fwd,
                                        .forward_f64 = allreduce_fwd,
                                        .label = label_allreduce,
                                        .flags = NB_OPF_INTERNAL | NB_OPF_NO_GRAD};

const nb_opdef nb__op_dist_wait = {.name = "dist_wait",
                                   .n_inputs = 1,
                                   .shape = shape_same,
                                   .forward_f32 = wait_fwd,
                                   .forward_f64 = wait_fwd,
                                   .label = label_wait,
                                   .flags = NB_OPF_INTERNAL | NB_OPF_NO_GRAD | NB_OPF_INPLACE |
                                            NB_OPF_DEFER};

const nb_opdef nb__op_dist_unpack = {.name = "dist_unpack",
                                     .n_inputs = 1,
                                     .shape = shape_unpack,
                                     .forward_f32 = unpack_fwd,
                                     .forward_f64 = unpack_fwd,
                                     .label = label_unpack,
                                     .flags = NB_OPF_INTERNAL | NB_OPF_NO_GRAD | NB_OPF_DEFER};
