/* nabla/nn.h — part of the public API; include "nabla.h" instead. */
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include "nabla.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
