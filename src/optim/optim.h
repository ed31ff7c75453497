/*
 * Optimizer internals.  An optimizer is a client of the graph: it
 * differentiates the loss with respect to every parameter, appends one
 * update node per parameter (src/ops/update.c; scheduled after all forward
 * and backward work) and compiles the whole step into one program, which
 * the graph owns like any other.
 *
 * An update node takes (param, grad, state..., hyper, [norm]) and writes
 * the parameter and its state in place.  State tensors are persistent
 * leaves of role NB_ROLE_STATE named "<param>.<slot>"; hyper is the
 * optimizer's one vector of hyper-parameters ("<kind>.hyper", doubles in
 * any graph), which every update reads and which the optimizer rewrites
 * whenever the learning rate or the step count changes, so a schedule
 * needs no recompile; norm is the global gradient norm node, present when
 * clipping is on, which every update reads so that the norm is complete
 * before any parameter changes.
 */
#ifndef NB_OPTIM_H
#define NB_OPTIM_H

#include "graph/internal.h"

#define NB_OPTIM_MAX_STATE 2 /* state tensors per parameter (Adam: m, v) */

typedef struct nb__gradnorms nb__gradnorms;

struct nb_optim {
	nb_graph *g;
	nb_tensor *loss;
	nb_optim_kind kind;
	const char *name; /* the kind's name, for messages */
	/* hyper-parameters, defaults filled in; the kernels read their copy
	 * in hyper */
	double lr, momentum, beta2, eps, weight_decay, clip_norm;
	bool nesterov; /* also set for kind nesterov */
	nb_momentum_style style;
	int n; /* trained parameters */
	nb_tensor **params;
	nb_tensor **grads;   /* gradient nodes (targets: readable after a step) */
	nb_tensor **state;   /* n * NB_OPTIM_MAX_STATE, NULL where unused */
	nb_tensor **updates; /* update nodes */
	nb_tensor *norm;     /* global gradient norm, or NULL without clipping */
	nb_tensor *hyper;    /* the update nodes' hyper-parameter input */
	nb_program *prog;
	int64_t steps;
	nb_tensor **keep; /* extra targets kept readable after a step */
	int n_keep;
	nb__gradnorms *gn; /* per-layer gradient statistics (gradnorms.c), or NULL */
	nb_dist *dist;     /* gradients summed over its ranks (grads are the sums) */
};

/* Create the optimizer skeleton: params, grads (one backward pass), no
 * updates yet.  NULL on error (recorded on the graph). */
nb_optim *nb__optim_begin(nb_graph *g, nb_tensor *loss, const char *name);
/* Compile loss, grads, norm and updates into one program; returns o or NULL. */
nb_optim *nb__optim_finish(nb_optim *o);

/* Per-layer gradient statistics (gradnorms.c).  While tracking, nb_step
 * calls _before (copies the parameters) ahead of the run and _after (adds
 * the step's norms to the means) when it succeeded. */
void nb__gradnorms_free(nb__gradnorms *s);
void nb__gradnorms_before(nb_optim *o);
void nb__gradnorms_after(nb_optim *o);
/* nb_fit's window: the means since the last window (rows as
 * nb_optim_grad_norms; *first_step its first step), then a new window */
int nb__gradnorms_window(nb_optim *o, nb_layer_norms *rows, int max, int64_t *first_step);
void nb__gradnorms_window_reset(nb_optim *o);

#endif
