/*
 * The op enum, generated from the op list (oplist.h): NB_OP_<ENUM> for
 * each row, numbered from 0 in the list's order, then NB_OP_COUNT.  The
 * same list generates the op table (optable.c).
 */
#ifndef NB_OPS_H
#define NB_OPS_H

#include "ops/oplist.h"

#define NB_OP_ENUM_(E, N) NB_OP_##E,
enum nb_op { NB_OPS(NB_OP_ENUM_) NB_OP_COUNT };
#undef NB_OP_ENUM_

#endif
