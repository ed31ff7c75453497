/*
 * The optimizer update ops (update.c): what a client such as src/optim
 * passes to them.
 *
 * An update node's inputs are (w, g, state..., hyper, [norm]).  It writes w
 * and the state in place and has no output buffer.  hyper is a persistent
 * vector of NB_HYPER_COUNT doubles in any graph (nb__hyper_new), which the
 * client writes before each run; the kernels read it and cast to the
 * graph's type, so a new learning rate or step count needs no recompile.
 * norm is the global gradient norm (global_norm), present with clipping.
 *
 * Attributes: i[0] = number of state inputs, i[1] = 1 when the last input
 * is the norm, i[2] = NB_UPDATE_* variant flags.
 */
#ifndef NB_UPDATE_H
#define NB_UPDATE_H

#include "graph/internal.h"

/* The slots of the hyper-parameter vector. */
enum nb_hyper_slot {
	NB_HYPER_LR,    /* learning rate */
	NB_HYPER_BETA1, /* momentum's beta, Adam's beta1 */
	NB_HYPER_BETA2, /* RMSprop's rho, Adam's beta2 */
	NB_HYPER_EPS,
	NB_HYPER_WD,   /* weight decay */
	NB_HYPER_CLIP, /* the global norm the gradients are clipped to */
	NB_HYPER_STEP, /* the step being taken, t >= 1 */
	NB_HYPER_BC1,  /* Adam's bias corrections 1 - beta1^t, */
	NB_HYPER_BC2,  /* and 1 - beta2^t */
	NB_HYPER_COUNT
};

/* Variant flags (attribute i[2]). */
enum {
	NB_UPDATE_NESTEROV = 1u << 0,  /* momentum: Nesterov look-ahead */
	NB_UPDATE_EWMA = 1u << 1,      /* momentum: v <- beta v + (1-beta) g */
	NB_UPDATE_DECOUPLED = 1u << 2, /* adam: decoupled weight decay (AdamW) */
};

/* A zeroed hyper-parameter vector named name. */
nb_tensor *nb__hyper_new(nb_graph *g, const char *name);

#endif
