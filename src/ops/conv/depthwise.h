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

void nb__depthwise_forward_f32(const nb__conv_geom *g, const nb__conv_plan *p, const float *x,
                               const float *w, const float *b, float *y, void *ws);
void nb__depthwise_forward_f64(const nb__conv_geom *g, const nb__conv_plan *p, const double *x,
                               const double *w, const double *b, double *y, void *ws);
void nb__depthwise_input_grad_f32(const nb__conv_geom *g, const nb__conv_plan *p, const float *dy,
                                  const float *w, float *dx, void *ws);
void nb__depthwise_input_grad_f64(const nb__conv_geom *g, const nb__conv_plan *p, const double *dy,
                                  const double *w, double *dx, void *ws);
void nb__depthwise_weight_grad_f32(const nb__conv_geom *g, const nb__conv_plan *p, const float *dy,
                                   const float *x, float *dw, void *ws);
void nb__depthwise_weight_grad_f64(const nb__conv_geom *g, const nb__conv_plan *p, const double *dy,
                                   const double *x, double *dw, void *ws);

#endif
