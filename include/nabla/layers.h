/* nabla/layers.h — layer builders; include "nabla.h" instead. */
#ifndef NABLA_LAYERS_H
#define NABLA_LAYERS_H

#include "nabla.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Dense (fully connected) layer: y = x W^T + b with W [units, in] and
 * b [units], PyTorch's nn.Linear layout, named "<name>.w" and "<name>.b".
 * x is [N, in] (or [..., in]).  Default initialisation is PyTorch's:
 * U(-1/sqrt(in), 1/sqrt(in)) for both. */
typedef struct nb_dense_opts {
	bool no_bias;
	bool custom_init; /* use w_init and b_init below */
	nb_init w_init, b_init;
} nb_dense_opts;

nb_tensor *nb_dense(nb_tensor *x, int64_t units, const char *name);
nb_tensor *nb_dense_ex(nb_tensor *x, int64_t units, const char *name, nb_dense_opts o);

#ifdef __cplusplus
}
#endif
#endif
