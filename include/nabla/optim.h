/* nabla/optim.h — part of the public API; include "nabla.h" instead. */
#ifndef NABLA_OPTIM_H
#define NABLA_OPTIM_H

#include "nabla.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
