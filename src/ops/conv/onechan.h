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

void nb__onechan_forward_f32(const nb__conv_geom *g, const nb__conv_plan *p, const float *x,
                             const float *w, const float *b, float *y, void *ws);
void nb__onechan_forward_f64(const nb__conv_geom *g, const nb__conv_plan *p, const double *x,
                             const double *w, const double *b, double *y, void *ws);
void nb__onechan_weight_grad_f32(const nb__conv_geom *g, const nb__conv_plan *p, const float *dy,
                                 const float *x, float *dw, void *ws);
void nb__onechan_weight_grad_f64(const nb__conv_geom *g, const nb__conv_plan *p, const double *dy,
                                 const double *x, double *dw, void *ws);

#endif
