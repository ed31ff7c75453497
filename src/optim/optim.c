/*
 * Optimizer core: options and their defaults, the backward pass, state,
 * hyper-parameter and update nodes, the compiled step, and the public
 * constructors.
 */
#include "optim/optim.h"
#include "dist/dist.h"
#include "ops/update.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const kind_names[NB_OPTIM_KIND_COUNT] = {
    [NB_OPTIM_SGD] = "sgd",           [NB_OPTIM_MOMENTUM] = "momentum",
    [NB_OPTIM_NESTEROV] = "nesterov", [NB_OPTIM_RMSPROP] = "rmsprop",
    [NB_OPTIM_ADAM] = "adam",         [NB_OPTIM_ADAMW] = "adamw",
};

const char *nb_optim_kind_name(nb_optim_kind kind)
{
	return kind >= 0 && kind < NB_OPTIM_KIND_COUNT ? kind_names[kind] : NULL;
}

nb_optim_kind nb_optim_kind_from_name(const char *name)
{
	for (int k = 0; name && k < NB_OPTIM_KIND_COUNT; k++)
		if (!strcasecmp(name, kind_names[k]))
			return (nb_optim_kind)k;
	return NB_OPTIM_INVALID;
}

/* The graph's destructor for an optimizer (nb__graph_own). */
static void optim_free(void *p)
{
	nb_optim *o = p;
	if (!o)
		return;
	free(o->params);
	free(o->grads);
	free(o->state);
	free(o->updates);
	free(o->keep);
	nb__gradnorms_free(o->gn);
	free(o);
}

/* Parameters the loss depends on (node ids are a topological order). */
static int live_params(nb_graph *g, nb_tensor *loss, nb_tensor **out)
{
	unsigned char *live = calloc((size_t)g->n_nodes, 1);
	if (!live)
		return -1;
	int n = 0;
	live[loss->id] = 1;
	for (int id = loss->id; id >= 0; id--) {
		nb_tensor *t = g->nodes[id];
		if (!live[id])
			continue;
		for (int k = 0; k < t->n_in; k++)
			live[t->in[k]->id] = 1;
	}
	for (int id = 0; id <= loss->id; id++)
		if (live[id] && g->nodes[id]->op == NB_OP_PARAM)
			out[n++] = g->nodes[id];
	free(live);
	return n;
}

nb_optim *nb__optim_begin(nb_graph *g, nb_tensor *loss, const char *name)
{
	if (!g)
		return NULL;
	if (g->status != NB_OK)
		return NULL;
	if (!loss) {
		nb__fail(g, NB_ERR_ARG, "%s: loss is NULL", name);
		return NULL;
	}
	if (loss->g != g) {
		nb__fail(g, NB_ERR_GRAPH, "%s: loss %s belongs to another graph", name, loss->name);
		return NULL;
	}
	if (nb__is_placeholder(loss)) {
		nb__fail(g, NB_ERR_GRAPH, "%s: the loss is the error placeholder", name);
		return NULL;
	}
	nb_optim *o = calloc(1, sizeof *o);
	size_t n = (size_t)nb_graph_num_params(g) + 1;
	if (!o || !(o->params = calloc(n, sizeof *o->params)) ||
	    !(o->grads = calloc(n, sizeof *o->grads)) ||
	    !(o->state = calloc(n * NB_OPTIM_MAX_STATE, sizeof *o->state)) ||
	    !(o->updates = calloc(n, sizeof *o->updates)) ||
	    (o->n = live_params(g, loss, o->params)) < 0 || nb__graph_own(g, o, optim_free)) {
		optim_free(o);
		nb__fail(g, NB_ERR_NOMEM, "%s: out of memory", name);
		return NULL;
	}
	o->g = g;
	o->loss = loss;
	o->name = name;
	if (o->n == 0) {
		nb__fail(g, NB_ERR_GRAPH,
		         "%s(%s): the loss depends on no parameter, nothing to train", name,
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
	/* loss, norm, grads, updates: the grads are targets so that every one
	 * is complete before the first update (and readable after a step) */
	nb_tensor **targets = malloc((2 * (size_t)o->n + 2 + (size_t)o->n_keep) * sizeof *targets);
	if (!targets) {
		nb__fail(g, NB_ERR_NOMEM, "%s: out of memory", o->name);
		return NULL;
	}
	int k = 0;
	targets[k++] = o->loss;
	if (o->dist && nb__dist_active(o->dist)) {
		/* the last parameters' gradients first: the schedule then
		 * finishes (and starts summing) a bucket as soon as the
		 * backward pass gets there, not all of them at its end */
		for (int i = o->n - 1; i >= 0; i--)
			targets[k++] = o->grads[i];
		if (o->norm)
			targets[k++] = o->norm;
	} else {
		if (o->norm)
			targets[k++] = o->norm;
		for (int i = 0; i < o->n; i++)
			targets[k++] = o->grads[i];
	}
	for (int i = 0; i < o->n_keep; i++)
		targets[k++] = o->keep[i];
	for (int i = 0; i < o->n; i++)
		targets[k++] = o->updates[i];
	nb_program *old = o->prog;
	o->prog = nb_compile(g, targets, k);
	if (o->prog && o->dist && nb__dist_active(o->dist)) {
		o->prog->between = nb__dist_progress;
		o->prog->between_user = o->dist;
	}
	if (o->prog && old)
		nb__program_release(g, old);
	free(targets);
	return o->prog ? o : NULL;
}

/* ---- options -------------------------------------------------------------------- */

static bool is_momentum(nb_optim_kind k)
{
	return k == NB_OPTIM_MOMENTUM || k == NB_OPTIM_NESTEROV;
}

static bool is_adam(nb_optim_kind k)
{
	return k == NB_OPTIM_ADAM || k == NB_OPTIM_ADAMW;
}

static bool in_unit(double x) /* [0, 1); false for NaN */
{
	return x >= 0 && x < 1;
}

nb_optim_opts nb_optim_defaults(nb_optim_kind kind)
{
	nb_optim_opts d = {.kind = kind, .as_written = true};
	if (!nb_optim_kind_name(kind))
		return d;
	bool adam = is_adam(kind);
	d.lr = adam ? 1e-3 : 1e-2;
	if (is_momentum(kind) || adam)
		d.momentum = 0.9;
	if (adam || kind == NB_OPTIM_RMSPROP) {
		d.beta2 = adam ? 0.999 : 0.99;
		d.eps = 1e-8;
	}
	d.weight_decay = kind == NB_OPTIM_ADAMW ? 0.01 : 0;
	d.nesterov = kind == NB_OPTIM_NESTEROV;
	return d;
}

/* Without as_written, fill the kind's defaults into the zero fields of *p;
 * then check every option; false after recording an error on g. */
static bool resolve_opts(nb_graph *g, nb_optim_opts *p)
{
	const char *name = nb_optim_kind_name(p->kind);
	if (!name) {
		nb__fail(g, NB_ERR_ARG, "optimizer: unknown kind %d", (int)p->kind);
		return false;
	}
	if (p->kind == NB_OPTIM_MOMENTUM && p->nesterov)
		p->kind = NB_OPTIM_NESTEROV;
	if (p->kind == NB_OPTIM_NESTEROV)
		p->nesterov = true;
	bool mom = is_momentum(p->kind), adam = is_adam(p->kind), rms = p->kind == NB_OPTIM_RMSPROP;
	const char *not_for = NULL;
	if (!mom && !adam && p->momentum != 0)
		not_for = "momentum (use kind momentum, nesterov, adam or adamw)";
	else if (!adam && !rms && p->beta2 != 0)
		not_for = "beta2 (used by rmsprop, adam and adamw)";
	else if (!adam && !rms && p->eps != 0)
		not_for = "eps (used by rmsprop, adam and adamw)";
	else if (!mom && p->nesterov)
		not_for = "nesterov (a variant of momentum)";
	else if (!mom && p->style != NB_MOMENTUM_CLASSIC)
		not_for = "a momentum style (used by momentum and nesterov)";
	if (not_for) {
		nb__fail(g, NB_ERR_ARG, "%s: option %s does not apply", name, not_for);
		return false;
	}
	if (p->style != NB_MOMENTUM_CLASSIC && p->style != NB_MOMENTUM_EWMA) {
		nb__fail(g, NB_ERR_ARG, "%s: unknown momentum style %d", name, (int)p->style);
		return false;
	}

	if (!p->as_written) { /* nabla 0.1's convention: a 0 field means its default */
		nb_optim_opts d = nb_optim_defaults(p->kind);
		p->lr = p->lr == 0 ? d.lr : p->lr;
		p->momentum = p->momentum == 0 ? d.momentum : p->momentum;
		p->beta2 = p->beta2 == 0 ? d.beta2 : p->beta2;
		p->eps = p->eps == 0 ? d.eps : p->eps;
		p->weight_decay = p->weight_decay == 0 ? d.weight_decay : p->weight_decay;
		p->as_written = true;
	}

	const char *b1 = adam ? "beta1" : "momentum", *b2 = adam ? "beta2" : "rho (alpha)";
	if (!(p->lr >= 0 && isfinite(p->lr)))
		nb__fail(g, NB_ERR_ARG, "%s: learning rate %g must be finite and not negative",
		         name, p->lr);
	else if ((mom || adam) && !in_unit(p->momentum))
		nb__fail(g, NB_ERR_ARG, "%s: %s = %g is outside [0, 1)", name, b1, p->momentum);
	else if ((adam || rms) && !in_unit(p->beta2))
		nb__fail(g, NB_ERR_ARG, "%s: %s = %g is outside [0, 1)", name, b2, p->beta2);
	else if ((adam || rms) && !(p->eps > 0 && isfinite(p->eps)))
		nb__fail(g, NB_ERR_ARG, "%s: eps = %g must be positive", name, p->eps);
	else if (!(p->weight_decay >= 0 && isfinite(p->weight_decay)))
		nb__fail(g, NB_ERR_ARG, "%s: weight decay %g must not be negative", name,
		         p->weight_decay);
	else if (!(p->clip_norm >= 0 && isfinite(p->clip_norm)))
		nb__fail(g, NB_ERR_ARG, "%s: clip norm %g must not be negative", name,
		         p->clip_norm);
	else
		return true;
	return false;
}

/* Copy the hyper-parameters into the vector the update nodes read, for
 * the step count now in o (the learning rate and the step count change
 * between runs; a program run by hand, nb_run at step 0, counts as the
 * first step).  Adam's bias corrections are computed here once per step. */
static void write_hyper(nb_optim *o)
{
	if (!o->hyper || !(o->hyper->flags & NB_TF_F64))
		return; /* construction failed: the error placeholder */
	double *H = o->hyper->data, step = o->steps > 0 ? (double)o->steps : 1.0;
	bool adam = is_adam(o->kind);
	H[NB_HYPER_LR] = o->lr;
	H[NB_HYPER_BETA1] = o->momentum;
	H[NB_HYPER_BETA2] = o->beta2;
	H[NB_HYPER_EPS] = o->eps;
	H[NB_HYPER_WD] = o->weight_decay;
	H[NB_HYPER_CLIP] = o->clip_norm;
	H[NB_HYPER_STEP] = step;
	H[NB_HYPER_BC1] = adam ? 1.0 - pow(o->momentum, step) : 1.0;
	H[NB_HYPER_BC2] = adam ? 1.0 - pow(o->beta2, step) : 1.0;
}

/* The update op of each kind and its state slots. */
static const struct {
	int op;
	int n_state;
	const char *slot[NB_OPTIM_MAX_STATE];
} fam[NB_OPTIM_KIND_COUNT] = {
    [NB_OPTIM_SGD] = {NB_OP_SGD_UPDATE, 0, {NULL}},
    [NB_OPTIM_MOMENTUM] = {NB_OP_MOMENTUM_UPDATE, 1, {"v"}},
    [NB_OPTIM_NESTEROV] = {NB_OP_MOMENTUM_UPDATE, 1, {"v"}},
    [NB_OPTIM_RMSPROP] = {NB_OP_RMSPROP_UPDATE, 1, {"s"}},
    [NB_OPTIM_ADAM] = {NB_OP_ADAM_UPDATE, 2, {"m", "v"}},
    [NB_OPTIM_ADAMW] = {NB_OP_ADAM_UPDATE, 2, {"m", "v"}},
};

/* Build the update node of parameter i from o's kind: creates its state
 * and names it "<param>.update". */
static void add_update(nb_optim *o, int i)
{
	nb_tensor *p = o->params[i], *in[4 + NB_OPTIM_MAX_STATE];
	int k = 0;
	in[k++] = p;
	in[k++] = o->grads[i];
	for (int j = 0; j < fam[o->kind].n_state; j++) {
		nb_tensor *s = nb__state_like(p, fam[o->kind].slot[j]);
		in[k++] = o->state[i * NB_OPTIM_MAX_STATE + j] = s;
	}
	in[k++] = o->hyper;
	if (o->norm)
		in[k++] = o->norm;
	int64_t variant = (o->nesterov ? NB_UPDATE_NESTEROV : 0) |
	                  (o->style == NB_MOMENTUM_EWMA ? NB_UPDATE_EWMA : 0) |
	                  (o->kind == NB_OPTIM_ADAMW ? NB_UPDATE_DECOUPLED : 0);
	nb_attrs at = {.i = {fam[o->kind].n_state, o->norm != NULL, variant}};
	o->updates[i] = nb__op(fam[o->kind].op, in, k, &at);
	char name[256];
	snprintf(name, sizeof name, "%s.update", p->name);
	nb_set_name(o->updates[i], name);
}

nb_optim *nb_optimizer(nb_graph *g, nb_tensor *loss, nb_optim_opts opts)
{
	if (!g || g->status != NB_OK || !resolve_opts(g, &opts))
		return NULL;
	nb_optim *o = nb__optim_begin(g, loss, nb_optim_kind_name(opts.kind));
	if (!o)
		return NULL;
	o->kind = opts.kind;
	o->lr = opts.lr;
	o->momentum = opts.momentum;
	o->beta2 = opts.beta2;
	o->eps = opts.eps;
	o->weight_decay = opts.weight_decay;
	o->clip_norm = opts.clip_norm;
	o->nesterov = opts.nesterov;
	o->style = opts.style;
	o->dist = opts.dist;
	if (nb__dist_bucket_grads(o->dist, o->params, o->grads, o->n) != NB_OK)
		return NULL;
	if (o->clip_norm > 0) {
		/* a gradient node: the DOT views group it with the backward pass */
		int saved = g->building_role;
		g->building_role = NB_ROLE_GRAD;
		o->norm = nb_set_name(nb_global_norm(o->grads, o->n), "grad_norm");
		g->building_role = saved;
	}
	char name[32];
	snprintf(name, sizeof name, "%s.hyper", o->name);
	o->hyper = nb__hyper_new(g, name);
	write_hyper(o);
	for (int i = 0; i < o->n && g->status == NB_OK; i++)
		add_update(o, i);
	return nb__optim_finish(o);
}

nb_optim *nb_sgd(nb_graph *g, nb_tensor *loss, nb_sgd_opts opts)
{
	return nb_optimizer(g, loss,
	                    (nb_optim_opts){.kind = NB_OPTIM_SGD,
	                                    .lr = opts.lr,
	                                    .weight_decay = opts.weight_decay,
	                                    .clip_norm = opts.clip_norm,
	                                    .as_written = opts.as_written});
}

nb_optim *nb_momentum(nb_graph *g, nb_tensor *loss, nb_momentum_opts opts)
{
	return nb_optimizer(g, loss,
	                    (nb_optim_opts){.kind = NB_OPTIM_MOMENTUM,
	                                    .lr = opts.lr,
	                                    .momentum = opts.momentum,
	                                    .weight_decay = opts.weight_decay,
	                                    .clip_norm = opts.clip_norm,
	                                    .nesterov = opts.nesterov,
	                                    .style = opts.style,
	                                    .as_written = opts.as_written});
}

nb_optim *nb_rmsprop(nb_graph *g, nb_tensor *loss, nb_rmsprop_opts opts)
{
	return nb_optimizer(g, loss,
	                    (nb_optim_opts){.kind = NB_OPTIM_RMSPROP,
	                                    .lr = opts.lr,
	                                    .beta2 = opts.alpha,
	                                    .eps = opts.eps,
	                                    .weight_decay = opts.weight_decay,
	                                    .clip_norm = opts.clip_norm,
	                                    .as_written = opts.as_written});
}

static nb_optim *adam_kind(nb_graph *g, nb_tensor *loss, nb_adam_opts opts, nb_optim_kind kind)
{
	return nb_optimizer(g, loss,
	                    (nb_optim_opts){.kind = kind,
	                                    .lr = opts.lr,
	                                    .momentum = opts.beta1,
	                                    .beta2 = opts.beta2,
	                                    .eps = opts.eps,
	                                    .weight_decay = opts.weight_decay,
	                                    .clip_norm = opts.clip_norm,
	                                    .as_written = opts.as_written});
}

nb_sgd_opts nb_sgd_defaults(void)
{
	nb_optim_opts d = nb_optim_defaults(NB_OPTIM_SGD);
	return (nb_sgd_opts){.lr = d.lr, .weight_decay = d.weight_decay, .as_written = true};
}

nb_momentum_opts nb_momentum_defaults(void)
{
	nb_optim_opts d = nb_optim_defaults(NB_OPTIM_MOMENTUM);
	return (nb_momentum_opts){.lr = d.lr,
	                          .momentum = d.momentum,
	                          .weight_decay = d.weight_decay,
	                          .style = d.style,
	                          .as_written = true};
}

nb_rmsprop_opts nb_rmsprop_defaults(void)
{
	nb_optim_opts d = nb_optim_defaults(NB_OPTIM_RMSPROP);
	return (nb_rmsprop_opts){.lr = d.lr,
	                         .alpha = d.beta2,
	                         .eps = d.eps,
	                         .weight_decay = d.weight_decay,
	                         .as_written = true};
}

static nb_adam_opts adam_defaults(nb_optim_kind kind)
{
	nb_optim_opts d = nb_optim_defaults(kind);
	return (nb_adam_opts){.lr = d.lr,
	                      .beta1 = d.momentum,
	                      .beta2 = d.beta2,
	                      .eps = d.eps,
	                      .weight_decay = d.weight_decay,
	                      .as_written = true};
}

nb_adam_opts nb_adam_defaults(void)
{
	return adam_defaults(NB_OPTIM_ADAM);
}

nb_adam_opts nb_adamw_defaults(void)
{
	return adam_defaults(NB_OPTIM_ADAMW);
}

nb_optim *nb_adam(nb_graph *g, nb_tensor *loss, nb_adam_opts opts)
{
	return adam_kind(g, loss, opts, NB_OPTIM_ADAM);
}

nb_optim *nb_adamw(nb_graph *g, nb_tensor *loss, nb_adam_opts opts)
{
	return adam_kind(g, loss, opts, NB_OPTIM_ADAMW);
}

/* ---- running and queries ---------------------------------------------------------- */

nb_status nb_optim_keep(nb_optim *o, nb_tensor *t)
{
	if (!o)
		return NB_ERR_ARG;
	nb_graph *g = o->g;
	if (g->status != NB_OK)
		return g->status;
	if (!t || t->g != g || nb__is_placeholder(t)) {
		nb__fail(g, NB_ERR_ARG,
		         "%s: keep: tensor is NULL, the error placeholder or from another graph",
		         o->name);
		return NB_ERR_ARG;
	}
	for (int i = 0; i < o->n_keep; i++)
		if (o->keep[i] == t)
			return NB_OK; /* already kept: no recompile */
	nb_tensor **k = realloc(o->keep, ((size_t)o->n_keep + 1) * sizeof *k);
	if (!k) {
		nb__fail(g, NB_ERR_NOMEM, "%s: out of memory", o->name);
		return NB_ERR_NOMEM;
	}
	o->keep = k;
	o->keep[o->n_keep++] = t;
	return nb__optim_finish(o) ? NB_OK : g->status;
}

nb_status nb_step(nb_optim *o)
{
	if (!o)
		return NB_ERR_ARG;
	if (o->g->status != NB_OK)
		return o->g->status;
	if (o->steps >= NB_OPTIM_MAX_STEPS) {
		nb__fail(o->g, NB_ERR_VALUE, "%s: the step count is at its limit %lld", o->name,
		         (long long)NB_OPTIM_MAX_STEPS);
		return NB_ERR_VALUE;
	}
	if (nb__program_check_fed(o->prog) != NB_OK) /* nothing ran: the count stays */
		return NB_ERR_ARG;
	o->steps++;
	write_hyper(o);
	bool track = nb_optim_tracks_grad_norms(o);
	if (track)
		nb__gradnorms_before(o);
	nb_status st = nb_run(o->prog);
	if (track && st == NB_OK)
		nb__gradnorms_after(o);
	return st;
}

void nb_optim_set_lr(nb_optim *o, double lr)
{
	if (!o)
		return;
	if (!(lr >= 0 && isfinite(lr))) {
		nb__fail(o->g, NB_ERR_ARG,
		         "%s: set_lr(%g): the learning rate must be finite and not negative",
		         o->name, lr);
		return;
	}
	o->lr = lr;
	write_hyper(o);
}

double nb_optim_lr(const nb_optim *o)
{
	return o ? o->lr : 0;
}

int64_t nb_optim_steps(const nb_optim *o)
{
	return o ? o->steps : 0;
}

void nb_optim_set_steps(nb_optim *o, int64_t steps)
{
	if (!o)
		return;
	if (steps < 0 || steps > NB_OPTIM_MAX_STEPS) {
		nb__fail(o->g, NB_ERR_ARG,
		         "%s: set_steps(%lld): the step count must be from 0 to %lld", o->name,
		         (long long)steps, (long long)NB_OPTIM_MAX_STEPS);
		return;
	}
	o->steps = steps;
	write_hyper(o);
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

nb_optim_kind nb_optim_kind_of(const nb_optim *o)
{
	return o ? o->kind : NB_OPTIM_INVALID;
}

nb_optim_kind nb_optim_get_kind(const nb_optim *o)
{
	return nb_optim_kind_of(o);
}

nb_optim_opts nb_optim_get_opts(const nb_optim *o)
{
	return nb_optim_opts_of(o);
}

nb_optim_opts nb_optim_opts_of(const nb_optim *o)
{
	if (!o)
		return (nb_optim_opts){.kind = NB_OPTIM_INVALID};
	return (nb_optim_opts){.kind = o->kind,
	                       .lr = o->lr,
	                       .momentum = o->momentum,
	                       .beta2 = o->beta2,
	                       .eps = o->eps,
	                       .weight_decay = o->weight_decay,
	                       .clip_norm = o->clip_norm,
	                       .nesterov = o->nesterov,
	                       .style = o->style,
	                       .dist = o->dist,
	                       .as_written = true};
}

nb_dist *nb_optim_dist(const nb_optim *o)
{
	return o ? o->dist : NULL;
}

int nb_optim_num_params(const nb_optim *o)
{
	return o ? o->n : 0;
}

nb_tensor *nb_optim_param(const nb_optim *o, int i)
{
	return o && i >= 0 && i < o->n ? o->params[i] : NULL;
}

nb_tensor *nb_optim_state(const nb_optim *o, const nb_tensor *param, const char *slot)
{
	for (int i = 0; o && slot && i < o->n; i++)
		for (int j = 0; o->params[i] == param && j < fam[o->kind].n_state; j++)
			if (!strcmp(fam[o->kind].slot[j], slot))
				return o->state[i * NB_OPTIM_MAX_STATE + j];
	return NULL;
}

nb_graph *nb_optim_graph(const nb_optim *o)
{
	return o ? o->g : NULL;
}

double nb_optim_grad_norm(const nb_optim *o)
{
	if (!o || !o->norm || o->steps == 0 || !o->norm->data)
		return NAN;
	return nb__get(o->norm, 0);
}
