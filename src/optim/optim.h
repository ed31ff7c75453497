/*
 * Optimizer internals.  An optimizer differentiates the loss with respect
 * to every parameter, appends one update node per parameter to the graph
 * (scheduled after all forward and backward work) and compiles the whole
 * step into one program.  Hyper-parameters are read from the optimizer at
 * run time, so a schedule can change the learning rate without recompiling.
 */
#ifndef NB_OPTIM_H
#define NB_OPTIM_H

#include "graph/internal.h"

struct nb_optim {
	nb_graph *g;
	nb_tensor *loss;
	const char *kind;
	double lr;
	double weight_decay;
	int n;               /* parameters */
	nb_tensor **params;
	nb_tensor **grads;   /* gradient nodes (transient buffers) */
	nb_tensor **updates; /* update nodes */
	nb_program *prog;
	int64_t steps;
};

/* Create the optimizer skeleton: params, grads (one backward pass), no
 * updates yet.  NULL on error (recorded on the graph). */
nb_optim *nb__optim_begin(nb_graph *g, nb_tensor *loss, const char *kind);
/* Compile loss + updates; returns o or NULL. */
nb_optim *nb__optim_finish(nb_optim *o);
void nb__optim_free(nb_optim *o);

#endif
