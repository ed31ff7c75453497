/* nabla/nn.h — part of the public API; include "nabla.h" instead. */
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include "nabla.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== batch normalisation and dropout (src/ops/norm.c, docs/norm.md) ==== */

/* Zero fields mean the defaults. */
typedef struct nb_batchnorm_opts {
	double eps;      /* added to the variance; default 1e-5 (must be > 0) */
	double momentum; /* running = (1-m) running + m batch (PyTorch's
	                  * convention); default 0.1, must be in (0, 1] */
} nb_batchnorm_opts;

/* Batch normalisation of x [N,C] (per feature) or [N,C,H,W] (per channel);
 * gamma, beta, running_mean and running_var have shape [C].
 *
 * Training mode (nb_graph_training): per channel, over the M = N*H*W
 * values, mu = mean, var = BIASED variance (divide by M);
 * y = gamma (x - mu) / sqrt(var + eps) + beta.  The forward run also
 * updates the running statistics in place:
 *   running_mean = (1-m) running_mean + m mu
 *   running_var  = (1-m) running_var  + m var * M/(M-1)   (UNBIASED, as PyTorch)
 * M = 1 in training mode is a run-time error (NB_ERR_VALUE).
 * Eval mode: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta,
 * running statistics untouched.  The mode is read at every run (no
 * recompiling).  Running statistics must be leaves that take no gradient
 * (constants or state); they are written in place. */
nb_tensor *nb_batchnorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta,
                        nb_tensor *running_mean, nb_tensor *running_var,
                        nb_batchnorm_opts o);
/* Creates parameters <name>.gamma (ones) and <name>.beta (zeros) and state
 * <name>.running_mean (zeros) and <name>.running_var (ones), all [C]
 * with C = x's dimension 1, and applies nb_batchnorm. */
nb_tensor *nb_batchnorm_layer(nb_tensor *x, const char *name, nb_batchnorm_opts o);

/* Inverted dropout: in training mode each element is kept with
 * probability 1-p and scaled by 1/(1-p), else zeroed; the identity in eval
 * mode.  A new mask is drawn from the graph's seeded RNG at every run, so
 * runs are reproducible given nb_graph_seed.  p must be in [0, 1). */
nb_tensor *nb_dropout(nb_tensor *x, double p);

/* ==== end of batch normalisation and dropout ==== */

#ifdef __cplusplus
}
#endif
#endif
