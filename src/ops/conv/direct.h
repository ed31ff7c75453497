/*
 * Direct convolution kernels for one group and a few dozen channels (not
 * public API): three paths, CONV_PATH_DIRECT (forward, weight gradient;
 * any stride, padding, dilation), CONV_PATH_DIRECT_TRANSPOSED (input
 * gradient at stride 1, dilation 1, padding below the kernel) and
 * CONV_PATH_DIRECT_PHASES (input gradient, any geometry).  direct.c
 * documents the maths and the adjoints.
 *
 * Threads: p->threads batch threads, each with its own slice of the
 * workspace after a shared part (packed weights, tap offsets); the
 * forward with p->row_threads > 0 instead splits each image's output rows
 * over that many threads.  Weight gradients sum private copies in thread
 * order: the bits depend only on the thread count.
 */
#ifndef NB_CONV_DIRECT_H
#define NB_CONV_DIRECT_H

#include "ops/conv/lanes.h"
#include "ops/conv/plan.h"

/* bytes of one image's dy as the transposed input gradient pads it (the
 * policy keeps it under L2 size by default) */
size_t nb__direct_transposed_dy_bytes(const nb__conv_geom *g, size_t es);

/* bytes of workspace for the plan (p->path picks the input gradient's
 * kernel) */
size_t nb__direct_workspace(const nb__conv_geom *g, const nb__conv_plan *p);

void nb__direct_forward_f32(const nb__conv_geom *g, const nb__conv_plan *p, const float *x,
                            const float *w, const float *b, float *y, void *ws);
void nb__direct_forward_f64(const nb__conv_geom *g, const nb__conv_plan *p, const double *x,
                            const double *w, const double *b, double *y, void *ws);
void nb__direct_weight_grad_f32(const nb__conv_geom *g, const nb__conv_plan *p, const float *dy,
                                const float *x, float *dw, void *ws);
void nb__direct_weight_grad_f64(const nb__conv_geom *g, const nb__conv_plan *p, const double *dy,
                                const double *x, double *dw, void *ws);
void nb__direct_input_grad_transposed_f32(const nb__conv_geom *g, const nb__conv_plan *p,
                                          const float *dy, const float *w, float *dx, void *ws);
void nb__direct_input_grad_transposed_f64(const nb__conv_geom *g, const nb__conv_plan *p,
                                          const double *dy, const double *w, double *dx, void *ws);
void nb__direct_input_grad_phases_f32(const nb__conv_geom *g, const nb__conv_plan *p,
                                      const float *dy, const float *w, float *dx, void *ws);
void nb__direct_input_grad_phases_f64(const nb__conv_geom *g, const nb__conv_plan *p,
                                      const double *dy, const double *w, double *dx, void *ws);

#endif
