/*
 * Symbolic reverse mode.  The backward pass is built as more nodes of the
 * same graph: walk the nodes the loss depends on in reverse topological
 * order, call each op's VJP rule (which emits ordinary op nodes), and sum
 * the contributions where a tensor fans out.  Only nodes that lie on a path
 * from a requested tensor to the loss get gradients.
 */
#include "graph/internal.h"

#include <stdlib.h>

/* nb_grads' argument checks: NB_OK, or the error recorded on the graph;
 * *fill tells whether out[] is to be filled with placeholders */
static nb_status grads_args(nb_tensor *loss, nb_tensor *const *wrt, int n, nb_tensor **out,
                            bool *fill)
{
	nb_graph *g = loss->g;
	char buf[128];
	*fill = true;
	if (g->status != NB_OK)
		return g->status;
	if (nb__is_placeholder(loss)) {
		nb__fail(g, NB_ERR_GRAPH, "grad: the loss is the error placeholder");
		return g->status;
	}
	if (!out || (n > 0 && !wrt) || n < 0) {
		*fill = false;
		nb__fail(g, NB_ERR_ARG, "grad(%s): NULL or negative arguments", loss->name);
		return g->status;
	}
	if (loss->size != 1) {
		nb__fail(g, NB_ERR_SHAPE,
		         "grad(%s): can only differentiate a scalar, but the loss has shape %s "
		         "(reduce it with nb_sum or nb_mean first)",
		         loss->name, nb_shape_str(loss->shape, buf, sizeof buf));
		return g->status;
	}
	for (int i = 0; i < n; i++) {
		if (!wrt[i]) {
			nb__fail(g, NB_ERR_ARG, "grad(%s): wrt[%d] is NULL", loss->name, i);
			return g->status;
		}
		if (wrt[i]->g != g) {
			nb__fail(g, NB_ERR_GRAPH, "grad(%s): wrt[%d] (%s) belongs to another graph",
			         loss->name, i, wrt[i]->name);
			return g->status;
		}
	}
	return NB_OK;
}

/* dep[id]: node id depends on some wrt (through ops with a gradient);
 * live[id]: the loss depends on node id.  Node ids are a topological
 * order: inputs are always created first. */
static void mark_paths(nb_graph *g, nb_tensor *loss, nb_tensor *const *wrt, int n, int nn,
                       unsigned char *dep, unsigned char *live)
{
	for (int i = 0; i < n; i++)
		dep[wrt[i]->id] = 1;
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
}

/* Add the VJP of node t (whose gradient is grad[t->id]) to the gradients
 * of its inputs that need one (dep); false to stop (an error is recorded). */
static bool backprop_node(nb_tensor *loss, nb_tensor *t, nb_tensor **grad, const unsigned char *dep)
{
	nb_graph *g = t->g;
	const nb_opdef *def = nb__ops[t->op];
	/* one slot per input: ops such as concat take any number of them */
	nb_tensor *small[8] = {0}, **gin = small;
	bool small_need[8] = {0}, *need = small_need;
	if (t->n_in > 8 && (!(gin = calloc((size_t)t->n_in, sizeof *gin)) ||
	                    !(need = calloc((size_t)t->n_in, sizeof *need)))) {
		free(gin);
		nb__fail(g, NB_ERR_NOMEM, "grad: out of memory");
		return false;
	}
	bool any = false, go_on = true;
	for (int k = 0; k < t->n_in; k++)
		any |= need[k] = dep[t->in[k]->id];
	if (any && !def->vjp) {
		nb__fail(g, NB_ERR_GRAPH,
		         "grad(%s): op %s (%s) has no derivative rule; it cannot be differentiated "
		         "(a second derivative through a backward kernel?)",
		         loss->name, nb__op_name(t), t->name);
		go_on = false;
	} else if (any) {
		def->vjp(t, grad[t->id], gin, need);
		for (int k = 0; k < t->n_in && g->status == NB_OK; k++) {
			nb_tensor *c = t->in[k], *gk = gin[k];
			if (!gk || !need[k])
				continue;
			/* internal invariant: a VJP returns the input's shape */
			if (!nb__shape_eq(gk->shape, c->shape)) {
				char b1[128], b2[128];
				nb__fail(g, NB_ERR_GRAPH,
				         "grad: VJP of %s returned %s for input %s of shape %s",
				         nb__op_name(t), nb_shape_str(gk->shape, b1, sizeof b1),
				         c->name, nb_shape_str(c->shape, b2, sizeof b2));
				break;
			}
			grad[c->id] = grad[c->id] ? nb_add(grad[c->id], gk) : gk;
		}
	}
	if (gin != small)
		free(gin), free(need);
	return go_on;
}

nb_status nb_grads(nb_tensor *loss, nb_tensor *const *wrt, int n, nb_tensor **out)
{
	if (!loss)
		return NB_ERR_ARG;
	nb_graph *g = loss->g;
	bool fill;
	if (grads_args(loss, wrt, n, out, &fill) != NB_OK) {
		for (int i = 0; fill && out && i < n; i++)
			out[i] = g->placeholder;
		return g->status;
	}
	int nn = g->n_nodes;                         /* nodes added from here on are gradients */
	unsigned char *dep = calloc((size_t)nn, 1);  /* depends on some wrt */
	unsigned char *live = calloc((size_t)nn, 1); /* loss depends on it */
	nb_tensor **grad = calloc((size_t)nn, sizeof *grad);
	if (!dep || !live || !grad) {
		free(dep), free(live), free(grad);
		nb__fail(g, NB_ERR_NOMEM, "grad: out of memory");
		for (int i = 0; i < n; i++)
			out[i] = g->placeholder;
		return g->status;
	}
	mark_paths(g, loss, wrt, n, nn, dep, live);

	int saved_role = g->building_role;
	g->building_role = NB_ROLE_GRAD;
	if (dep[loss->id]) {
		grad[loss->id] = nb_constant(g, "1", loss->shape, (double[]){1.0});
	}
	for (int id = loss->id; id >= 0 && g->status == NB_OK; id--) {
		nb_tensor *t = g->nodes[id];
		if (!grad[id] || !live[id] || !dep[id] || t->n_in == 0)
			continue;
		if (!backprop_node(loss, t, grad, dep))
			break;
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
}

nb_tensor *nb_grad(nb_tensor *loss, nb_tensor *wrt)
{
	nb_tensor *out = NULL;
	if (!loss)
		return NULL;
	nb_grads(loss, &wrt, 1, &out);
	return out;
}
