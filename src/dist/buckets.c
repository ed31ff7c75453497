/*
 * Gradient buckets: the optimizer's gradients replaced by their sums over
 * the ranks, as nodes of the step's program.  The gradients are cut, from
 * the last parameter to the first (about the order in which the backward
 * pass finishes them), into buckets of at most the handle's bucket size
 * (a larger gradient is a bucket of its own); each bucket is
 * dist_allreduce -> dist_wait -> one dist_unpack per gradient
 * (src/ops/dist.c).
 */
#include "dist/dist.h"

#include <stdio.h>

nb_status nb__dist_bucket_grads(nb_dist *d, nb_tensor *const *params, nb_tensor **grads, int n)
{
	if (!nb__dist_active(d) || n <= 0)
		return NB_OK;
	nb_graph *g = grads[0]->g;
	if (g->status != NB_OK)
		return g->status;
	const size_t cap = nb__dist_bucket_bytes(d);
	int saved = g->building_role;
	g->building_role = NB_ROLE_GRAD;
	for (int end = n, k = 0; end > 0 && g->status == NB_OK; k++) {
		int start = end - 1;
		size_t bytes = (size_t)grads[start]->size * g->esize;
		while (start > 0 && bytes + (size_t)grads[start - 1]->size * g->esize <= cap)
			bytes += (size_t)grads[--start]->size * g->esize;
		int slot = nb__dist_new_bucket(d);
		if (slot < 0) {
			nb__fail(g, NB_ERR_NOMEM, "dist: out of memory");
			break;
		}
		nb_attrs a = {.i = {slot}, .p = d};
		char name[256];
		nb_tensor *sum = nb__op(NB_OP_DIST_ALLREDUCE, grads + start, end - start, &a);
		snprintf(name, sizeof name, "allreduce.bucket%d", k);
		nb_set_name(sum, name);
		sum = nb__op(NB_OP_DIST_WAIT, &sum, 1, &a);
		snprintf(name, sizeof name, "wait.bucket%d", k);
		nb_set_name(sum, name);
		int64_t off = 0;
		for (int i = start; i < end && g->status == NB_OK; i++) {
			nb_attrs u = {.i = {off, grads[i]->shape.ndim}};
			for (int j = 0; j < grads[i]->shape.ndim; j++)
				u.i[2 + j] = grads[i]->shape.d[j];
			off += grads[i]->size;
			grads[i] = nb__op(NB_OP_DIST_UNPACK, &sum, 1, &u);
			snprintf(name, sizeof name, "%s.grad_sum", params[i]->name);
			nb_set_name(grads[i], name);
		}
		end = start;
	}
	g->building_role = saved;
	return g->status;
}
