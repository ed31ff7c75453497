/* nabla/gradnorms.h — per-layer gradient statistics; include "nabla.h" instead.
 *
 * The lecture notes' vanishing gradients, measured: while an optimizer
 * tracks them, every step records for each layer (the parameters sharing a
 * name prefix up to the last '.', as nb_summary groups them: "fc1.w" and
 * "fc1.b" are layer "fc1")
 *
 *   - the L2 norm of the layer's gradient, all its parameters together,
 *     before any clipping: one global_norm node per layer in the compiled
 *     step, reading the gradients the step computes anyway;
 *   - the L2 norm of the layer's update (the change the step made to its
 *     parameters) divided by the L2 norm of its parameters before the step.
 *     The update ops write the parameters in place, so nb_step copies them
 *     before running (summing their squares on the way) and sums the
 *     squared differences after: two passes over the parameters on the
 *     calling thread, in double and in a fixed order.
 *
 * Both are averaged over the steps (the mean of the per-step norms) until
 * the next reset.  Tracking is off by default; off, the step has no extra
 * node and nb_step does no extra work.  nb_fit_opts.grad_norms turns it on
 * for a training run and reports the means per epoch (and every N steps).
 */
/* the core types first, outside the guard: whichever header comes first,
 * nabla.h then includes this one with them defined */
#include "nabla.h"

#ifndef NABLA_GRADNORMS_H
#define NABLA_GRADNORMS_H

#ifdef __cplusplus
extern "C" {
#endif

/* One layer's statistics, means over the steps since the last reset (NaN
 * when no step was taken). */
typedef struct nb_layer_norms {
	char name[128];      /* the layer */
	int n_tensors;       /* parameter tensors in the layer */
	int64_t params;      /* their elements */
	double grad_norm;    /* mean of ||g||, the layer's gradient (before clipping) */
	double update_ratio; /* mean of ||w_after - w_before|| / ||w_before|| (NaN
	                      * for a step where ||w_before|| is 0) */
	double weight_norm;  /* ||w|| before the last step */
} nb_layer_norms;

/* Start (on) or stop (off) tracking.  On adds a global_norm node per layer
 * to the graph (once; turning it on again reuses them) and recompiles the
 * step with them; off recompiles it without them, and nb_step copies
 * nothing.  The
 * layers are numbered in the order of their first parameters' creation:
 * input to output for a model built front to back.  Returns NB_OK or the
 * graph's error (NB_ERR_NOMEM). */
NB_API nb_status nb_optim_track_grad_norms(nb_optim *o, bool on);
NB_API bool nb_optim_tracks_grad_norms(const nb_optim *o);
/* Fills up to max rows (rows may be NULL when max is 0) with the means
 * since the last reset and returns the number of layers (0 when tracking
 * never started); *steps (may be NULL) gets the steps averaged. */
NB_API int nb_optim_grad_norms(const nb_optim *o, nb_layer_norms *rows, int max, int64_t *steps);
/* Starts new means. */
NB_API void nb_optim_grad_norms_reset(nb_optim *o);

/* What nb_fit reports when nb_fit_opts.grad_norms is set: the means over
 * the optimizer steps first_step..last_step (an epoch, or a window of
 * grad_norm_interval steps). */
typedef struct nb_grad_norms {
	int epoch;                     /* the epoch of last_step */
	int64_t first_step, last_step; /* optimizer step counts, 1-based */
	int n_layers;
	const nb_layer_norms *layers; /* valid during the callback */
} nb_grad_norms;

#ifdef __cplusplus
}
#endif
#endif
