/*
 * Symbolic reverse mode.  The backward pass is built as more nodes of the
 * same graph: walk the nodes the loss depends on in reverse topological
 * order, call each op's VJP rule (which emits ordinary op nodes), and sum
 * the contributions where a tensor fans out.  Only nodes that lie on a path
 * from a requested tensor to the loss get gradients.
 */
#include "graph/internal.h"

#include <stdlib.h>

nb_status nb_grads(nb_tensor *loss, nb_tensor *const *wrt, int n, nb_tensor **out)
{
	if (!loss)
		return NB_ERR_ARG;
	nb_graph *g = loss->g;
	char buf[128];
	if (g->status != NB_OK)
		goto placeholders;
	if (nb__is_placeholder(loss)) {
		nb__fail(g, NB_ERR_GRAPH, "grad: the loss is the error placeholder");
		goto placeholders;
	}
	if (!out || (n > 0 && !wrt) || n < 0) {
		nb__fail(g, NB_ERR_ARG, "grad(%s): NULL or negative arguments", loss->name);
		return g->status;
	}
	if (loss->size != 1) {
		nb__fail(g, NB_ERR_SHAPE,
		         "grad(%s): can only differentiate a scalar, but the loss has shape %s "
		         "(reduce it with nb_sum or nb_mean first)",
		         loss->name, nb_shape_str(loss->shape, buf, sizeof buf));
		goto placeholders;
	}
	for (int i = 0; i < n; i++) {
		if (!wrt[i]) {
			nb__fail(g, NB_ERR_ARG, "grad(%s): wrt[%d] is NULL", loss->name, i);
			goto placeholders;
		}
		if (wrt[i]->g != g) {
			nb__fail(g, NB_ERR_GRAPH, "grad(%s): wrt[%d] (%s) belongs to another graph",
			         loss->name, i, wrt[i]->name);
			goto placeholders;
		}
	}

	int nn = g->n_nodes; /* nodes added from here on are gradients */
	unsigned char *dep = calloc((size_t)nn, 1);  /* depends on some wrt */
	unsigned char *live = calloc((size_t)nn, 1); /* loss depends on it */
	nb_tensor **grad = calloc((size_t)nn, sizeof *grad);
	if (!dep || !live || !grad) {
		free(dep), free(live), free(grad);
		nb__fail(g, NB_ERR_NOMEM, "grad: out of memory");
		goto placeholders;
	}
	for (int i = 0; i < n; i++)
		dep[wrt[i]->id] = 1;
	/* node ids are a topological order: inputs are always created first */
	for (int id = 0; id < nn; id++) {
		nb_tensor *t = g->nodes[id];
		for (int k = 0; k < t->n_in && !dep[id]; k++)
			dep[id] = dep[t->in[k]->id];
		if (nb__ops[t->op]->flags & NB_OPF_NO_GRAD || t->op == NB_OP_STOP_GRADIENT)
			dep[id] = dep[id] && (t->n_in == 0);
	}
	live[loss->id] = 1;
	for (int id = nn - 1; id >= 0; id--)
		if (live[id])
			for (int k = 0; k < g->nodes[id]->n_in; k++)
				live[g->nodes[id]->in[k]->id] = 1;

	int saved_role = g->building_role;
	g->building_role = NB_ROLE_GRAD;
	if (dep[loss->id]) {
		grad[loss->id] = nb_constant(g, "1", loss->shape, (double[]){1.0});
	}
	for (int id = loss->id; id >= 0 && g->status == NB_OK; id--) {
		nb_tensor *t = g->nodes[id];
		if (!grad[id] || !live[id] || !dep[id] || t->n_in == 0)
			continue;
		const nb_opdef *def = nb__ops[t->op];
		/* one slot per input: ops such as concat take any number of them */
		nb_tensor *small[8] = {0}, **gin = small;
		bool small_need[8] = {0}, *need = small_need;
		if (t->n_in > 8 && (!(gin = calloc((size_t)t->n_in, sizeof *gin)) ||
		                    !(need = calloc((size_t)t->n_in, sizeof *need)))) {
			free(gin);
			nb__fail(g, NB_ERR_NOMEM, "grad: out of memory");
			break;
		}
		bool any = false;
		for (int k = 0; k < t->n_in; k++)
			any |= need[k] = dep[t->in[k]->id];
		if (!any) {
			if (gin != small)
				free(gin), free(need);
			continue;
		}
		if (!def->vjp) {
			nb__fail(g, NB_ERR_GRAPH,
			         "grad(%s): op %s (%s) has no derivative rule; it cannot be differentiated "
			         "(a second derivative through a backward kernel?)",
			         loss->name, def->name, t->name);
			if (gin != small)
				free(gin), free(need);
			break;
		}
		def->vjp(t, grad[id], gin, need);
		for (int k = 0; k < t->n_in && g->status == NB_OK; k++) {
			nb_tensor *c = t->in[k], *gk = gin[k];
			if (!gk || !need[k])
				continue;
			/* internal invariant: a VJP returns the input's shape */
			if (!nb__shape_eq(gk->shape, c->shape)) {
				char b1[128], b2[128];
				nb__fail(g, NB_ERR_GRAPH, "grad: VJP of %s returned %s for input %s of shape %s",
				         def->name, nb_shape_str(gk->shape, b1, sizeof b1), c->name,
				         nb_shape_str(c->shape, b2, sizeof b2));
				break;
			}
			grad[c->id] = grad[c->id] ? nb_add(grad[c->id], gk) : gk;
		}
		if (gin != small)
			free(gin), free(need);
	}
	g->building_role = saved_role;
	for (int i = 0; i < n; i++) {
		nb_tensor *gi = g->status == NB_OK ? grad[wrt[i]->id] : NULL;
		if (!gi && g->status == NB_OK) {
			g->building_role = NB_ROLE_GRAD;
			gi = nb__zeros_like(wrt[i]);
			g->building_role = saved_role;
		}
		out[i] = g->status == NB_OK ? gi : g->placeholder;
	}
	free(dep), free(live), free(grad);
	return g->status;

placeholders:
	for (int i = 0; out && i < n; i++)
		out[i] = g->placeholder;
	return g->status;
}

nb_tensor *nb_grad(nb_tensor *loss, nb_tensor *wrt)
{
	nb_tensor *out = NULL;
	if (!loss)
		return NULL;
	nb_grads(loss, &wrt, 1, &out);
	return out;
}
