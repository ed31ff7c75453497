/*
 * Convolution kernels for a single input channel (not public API): one
 * group, stride 1, dilation 1, kernels up to D1_KW wide; the forward, and
 * the weight gradient for 3- and 5-wide kernels.  onechan.c documents the
 * maths and the adjoint.  Threads: p->threads batch threads, each with its
 * own slice of the workspace; the weight gradient sums private copies in
 * thread order.
 */
#ifndef NB_CONV_ONECHAN_H
#define NB_CONV_ONECHAN_H

#include "ops/conv/lanes.h"
#include "ops/conv/plan.h"

size_t nb__onechan_workspace(const nb__conv_geom *g, const nb__conv_plan *p);

NB__CONV_FWD(nb__onechan_forward)
NB__CONV_BWD(nb__onechan_weight_grad)

#endif
