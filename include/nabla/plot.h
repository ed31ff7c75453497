/* nabla/plot.h — part of the public API; include "nabla.h" instead. */
#ifndef NABLA_PLOT_H
#define NABLA_PLOT_H

#include "nabla.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
