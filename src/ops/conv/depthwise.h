/*
 * Depthwise convolution kernels, C/groups == 1 (not public API): direct
 * loops, any stride, padding, dilation and channel multiplier O/C; no
 * workspace.  depthwise.c documents the maths and the adjoint.  Threads:
 * p->threads over (n, o) planes (forward), (n, c) planes (input
 * gradient), output channels (weight gradient, the batch summed inside):
 * the bits never depend on the thread count.
 */
#ifndef NB_CONV_DEPTHWISE_H
#define NB_CONV_DEPTHWISE_H

#include "ops/conv/plan.h"

size_t nb__depthwise_workspace(const nb__conv_geom *g, const nb__conv_plan *p);

NB__CONV_FWD(nb__depthwise_forward)
NB__CONV_BWD(nb__depthwise_input_grad)
NB__CONV_BWD(nb__depthwise_weight_grad)

#endif
