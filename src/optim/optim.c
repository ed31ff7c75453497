/*
 * Optimizer core and plain SGD: w <- w - lr (g + wd w).
 */
#include "optim/optim.h"
#include "ops/kernel.h"

#include <stdlib.h>

void nb__optim_free(nb_optim *o)
{
	if (!o)
		return;
	free(o->params);
	free(o->grads);
	free(o->updates);
	free(o);
}

nb_optim *nb__optim_begin(nb_graph *g, nb_tensor *loss, const char *kind)
{
	if (!g)
		return NULL;
	if (g->status != NB_OK)
		return NULL;
	if (!loss) {
		nb__fail(g, NB_ERR_ARG, "%s: loss is NULL", kind);
		return NULL;
	}
	if (loss->g != g) {
		nb__fail(g, NB_ERR_GRAPH, "%s: loss %s belongs to another graph", kind, loss->name);
		return NULL;
	}
	nb_optim *o = calloc(1, sizeof *o);
	int n = nb_graph_num_params(g);
	if (!o || !(o->params = calloc((size_t)n + 1, sizeof *o->params)) ||
	    !(o->grads = calloc((size_t)n + 1, sizeof *o->grads)) ||
	    !(o->updates = calloc((size_t)n + 1, sizeof *o->updates)) || nb__register_optim(g, o) < 0) {
		nb__optim_free(o);
		nb__fail(g, NB_ERR_NOMEM, "%s: out of memory", kind);
		return NULL;
	}
	o->g = g;
	o->loss = loss;
	o->kind = kind;
	/* only parameters the loss depends on are trained */
	for (int i = 0; i < n; i++)
		o->params[o->n++] = nb_graph_param(g, i);
	if (o->n == 0) {
		nb__fail(g, NB_ERR_GRAPH, "%s(%s): the graph has no parameters to train", kind,
		         loss->name);
		return NULL;
	}
	if (nb_grads(loss, o->params, o->n, o->grads) != NB_OK)
		return NULL;
	return o;
}

nb_optim *nb__optim_finish(nb_optim *o)
{
	nb_graph *g = o->g;
	if (g->status != NB_OK)
		return NULL;
	nb_tensor **targets = malloc(((size_t)o->n + 1) * sizeof *targets);
	if (!targets) {
		nb__fail(g, NB_ERR_NOMEM, "%s: out of memory", o->kind);
		return NULL;
	}
	targets[0] = o->loss;
	for (int i = 0; i < o->n; i++)
		targets[i + 1] = o->updates[i];
	o->prog = nb_compile(g, targets, o->n + 1);
	free(targets);
	return o->prog ? o : NULL;
}

nb_status nb_step(nb_optim *o)
{
	if (!o)
		return NB_ERR_ARG;
	o->steps++;
	return nb_run(o->prog);
}

void nb_optim_set_lr(nb_optim *o, double lr)
{
	if (o)
		o->lr = lr;
}

double nb_optim_lr(const nb_optim *o)
{
	return o ? o->lr : 0;
}

int64_t nb_optim_steps(const nb_optim *o)
{
	return o ? o->steps : 0;
}

nb_program *nb_optim_program(nb_optim *o)
{
	return o ? o->prog : NULL;
}

nb_tensor *nb_optim_grad(nb_optim *o, nb_tensor *param)
{
	for (int i = 0; o && i < o->n; i++)
		if (o->params[i] == param)
			return o->grads[i];
	return NULL;
}

/* ---- SGD ------------------------------------------------------------------------ */

static nb_status shape_update(nb_tensor *t)
{
	char b1[128], b2[128];
	if (!nb__shape_eq(t->in[0]->shape, t->in[1]->shape))
		return nb__op_fail(t, NB_ERR_SHAPE, "parameter %s and gradient %s differ",
		                   nb_shape_str(t->in[0]->shape, b1, sizeof b1),
		                   nb_shape_str(t->in[1]->shape, b2, sizeof b2));
	t->shape = t->in[0]->shape;
	return NB_OK;
}

/* w <- w - lr (g + wd w), in place on the parameter */
NB_KERNELS(sgd_update, {
	const nb_optim *o = t->a.p;
	T *W = (T *)t->in[0]->data;
	const T *G = NB_IN(t, 1, T);
	const T lr = (T)o->lr, wd = (T)o->weight_decay;
	int64_t n = t->size;
	_Pragma("omp parallel for if (n >= NB_PAR_MIN)")
	for (int64_t i = 0; i < n; i++)
		W[i] -= lr * (G[i] + wd * W[i]);
})

static void label_sgd(const nb_tensor *t, char *buf, size_t n)
{
	const nb_optim *o = t->a.p;
	snprintf(buf, n, "lr %g", o->lr);
}

const nb_opdef nb__op_sgd_update = {
    .name = "sgd_update", .n_inputs = 2, .shape = shape_update,
    .forward_f32 = sgd_update_f32, .forward_f64 = sgd_update_f64,
    .label = label_sgd, .flags = NB_OPF_UPDATE | NB_OPF_NO_GRAD};

nb_optim *nb_sgd(nb_graph *g, nb_tensor *loss, nb_sgd_opts opts)
{
	nb_optim *o = nb__optim_begin(g, loss, "sgd");
	if (!o)
		return NULL;
	o->lr = opts.lr > 0 ? opts.lr : 0.01;
	o->weight_decay = opts.weight_decay;
	if (opts.lr < 0 || opts.weight_decay < 0) {
		nb__fail(g, NB_ERR_ARG, "sgd: learning rate (%g) and weight decay (%g) must not be negative",
		         opts.lr, opts.weight_decay);
		return NULL;
	}
	for (int i = 0; i < o->n; i++) {
		nb_attrs at = {.p = o};
		o->updates[i] = nb__op2(NB_OP_SGD_UPDATE, o->params[i], o->grads[i], &at);
		char name[256];
		snprintf(name, sizeof name, "%s.update", o->params[i]->name);
		nb_set_name(o->updates[i], name);
	}
	return nb__optim_finish(o);
}
