/* nabla/data.h — part of the public API; include "nabla.h" instead. */
#ifndef NABLA_DATA_H
#define NABLA_DATA_H

#include "nabla.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
