/*
 * im2col + GEMM convolution kernels (not public API): any stride,
 * padding, dilation and groups.  im2col.c documents the maths and the
 * adjoint; docs/conv.md the blocks and the measurements.
 *
 * The plan's chunk (images per GEMM), rows (output rows per band),
 * threads (batch threads, each with its own slice of the workspace) and
 * blis_threads (one image at a time, the GEMM on BLIS's threads) come
 * from policy.c.
 */
#ifndef NB_CONV_IM2COL_H
#define NB_CONV_IM2COL_H

#include "ops/conv/plan.h"

/* Valid, stride-1 rows shorter than the input's: the "wide" layout.  The
 * GEMMs run over oH x W columns per image (W the input width), so that
 * each tap of im2col is one contiguous run of x instead of oH short rows;
 * the W - oW extra columns of a row are dropped (forward) or zero
 * (gradients).  LeNet's conv2: 150 copies of 140 values per image instead
 * of 1500 copies of 10, for 40% more GEMM columns. */
static inline bool nb__im2col_wide(const nb__conv_geom *g)
{
	return g->sh == 1 && g->sw == 1 && g->dw == 1 && !g->pl && !g->pr && g->ow < g->w &&
	       g->ow <= 32;
}

/* GEMM columns per image */
static inline int64_t nb__im2col_cols(const nb__conv_geom *g)
{
	return g->oh * (nb__im2col_wide(g) ? g->w : g->ow);
}

/* Bytes of workspace for the plan: a slice per batch thread, and one
 * row more (BLIS may read past the last slice: nb__blas_slack). */
size_t nb__im2col_workspace(const nb__conv_geom *g, const nb__conv_plan *p);

/* y = conv(x, w) + b (b may be NULL) */
NB__CONV_FWD(nb__im2col_forward)
/* dx = col2im(W^T dy) */
NB__CONV_BWD(nb__im2col_input_grad)
/* dw = sum_n dy_n col(x_n)^T */
NB__CONV_BWD(nb__im2col_weight_grad)

#endif
