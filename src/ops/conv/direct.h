/*
 * Direct convolution kernels for one group and a few dozen channels (not
 * public API): four paths, CONV_PATH_DIRECT (forward, weight gradient;
 * any stride, padding, dilation), CONV_PATH_DIRECT_TRANSPOSED (input
 * gradient at stride 1, dilation 1, padding below the kernel),
 * CONV_PATH_DIRECT_ROWS (forward, same geometry, same kernel; weight
 * gradient at stride 1, pixels in the lanes) and
 * CONV_PATH_DIRECT_PHASES (input gradient, any geometry).  direct.c
 * documents the maths and the adjoints.
 *
 * Threads: p->threads batch threads, each with its own slice of the
 * workspace after a shared part (packed weights, tap offsets); the
 * forward with p->row_threads > 0 instead splits each image's output rows
 * over that many threads.  Weight gradients sum private copies in thread
 * order: the bits depend only on the thread count.  The work is split by
 * the team a region gets (omp_get_num_threads), which inside a caller's
 * own parallel region is smaller than planned.
 */
#ifndef NB_CONV_DIRECT_H
#define NB_CONV_DIRECT_H

#include "ops/conv/lanes.h"
#include "ops/conv/plan.h"

/* bytes of one image's dy as the transposed input gradient pads it (the
 * policy keeps it under L2 size by default) */
size_t nb__direct_transposed_dy_bytes(const nb__conv_geom *g, size_t es);

/* bytes of one image's x as the stride-1 forward (CONV_PATH_DIRECT_ROWS)
 * pads it */
size_t nb__direct_rows_x_bytes(const nb__conv_geom *g, size_t es);

/* bytes of workspace for the plan (p->path picks the input gradient's
 * kernel) */
size_t nb__direct_workspace(const nb__conv_geom *g, const nb__conv_plan *p);

/* Whether the pass runs with 16 images in the vector lanes
 * (images_avx512.h) when its plan, at ISA level isa, takes the direct
 * path for it (CONV_PATH_DIRECT_TRANSPOSED for the input gradient,
 * CONV_PATH_DIRECT otherwise, with no row threads): floats at AVX-512,
 * stride 1, rows of at most 16 pixels, a batch of 16 or more (for tests) */
bool nb__direct_images_lanes(const nb__conv_geom *g, nb__conv_pass pass, size_t es, int isa);

NB__CONV_FWD(nb__direct_forward)
NB__CONV_FWD(nb__direct_forward_rows)
NB__CONV_BWD(nb__direct_weight_grad_rows)
NB__CONV_BWD(nb__direct_weight_grad)
NB__CONV_BWD(nb__direct_input_grad_transposed)
NB__CONV_BWD(nb__direct_input_grad_phases)

#endif
