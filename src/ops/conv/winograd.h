/*
 * Winograd F(2x2, 3x3) convolution kernels (not public API).
 *
 * The convolution: x [N, C, H, W], weight W [O, C, 3, 3], stride 1,
 * dilation 1, groups 1, zero padding pt / pl / pb / pr each in 0..2,
 *   y[n,o,i,j] = sum_{c,m,k} W[o,c,m,k] x[n, c, i + m - pt, j + k - pl]
 * with y [N, O, oH, oW], oH = H + pt + pb - 2, oW = W + pl + pr - 2.
 *
 * flip computes the adjoint (the input gradient) of that same convolution:
 * the input is dy [N, O, oH, oW] and the output dx [N, C, H, W],
 *   dx[n,c,a,b] = sum_{o,i,j: i + m - pt = a, j + k - pl = b} W[o,c,m,k] dy[n,o,i,j]
 *               = sum_{o,m,k} W'[c,o,m,k] dy[n, o, a + m - (2 - pt), b + k - (2 - pl)]
 * with W'[c][o][m][k] = W[o][c][2-m][2-k]: a forward convolution of dy
 * with W' and the adjoint padding top 2 - pt, left 2 - pl, bottom 2 - pb,
 * right 2 - pr.  The geometry always describes the forward convolution
 * (as conv2d_backward_input knows it); W is the same array either way.
 *
 * Method (Lavin & Gray): output tiles of 2x2 from input tiles of 4x4
 * (stride 2); per tile and channel V = B^T d B, per weight U = G g G^T,
 * then for each of the 16 positions xi a product M_xi [O, T] = U_xi [O, C]
 * V_xi [C, T], and y = A^T M A per tile: 4 multiplies per output pixel and
 * channel pair instead of 9.  U and V are written in BLIS's packed panel
 * layouts and multiplied by a gemm micro-kernel directly (the one BLIS
 * picked for this CPU at run time, nabla's AVX-512 16 x 16 or a portable
 * one: nb__wino_kernel), one NR-tile panel at a time, so that M stays in
 * L1 for the output transform (docs/winograd.md).
 *
 * Threads: threads > 1 runs one OpenMP parallel region in which each
 * thread takes a contiguous share of the batch with single-threaded GEMMs;
 * threads == 1 runs on the calling thread without a parallel region.
 * Results are the same bits run to run for a given thread count.
 */
#ifndef NB_WINOGRAD_H
#define NB_WINOGRAD_H

#include "ops/conv/plan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nb__wino_geom {
	int64_t n, c, h, w;     /* the forward convolution's input x [N, C, H, W] */
	int64_t o;              /* output channels: W is [O, C, 3, 3] */
	int64_t pt, pl, pb, pr; /* padding of the forward convolution, each 0..2 */
	bool flip;              /* false: y = conv(x); true: dx = conv^T(dy) */
	int isa;                /* the ISA level of the kernels' variants (nb_exec isa) */
	bool blis_ukr;          /* never nabla's micro-kernel: BLIS's where it fits, else
	                           the portable one (for tests) */
	bool tile_lanes;        /* the transforms along the tiles even where the
	                           channel lanes would run (for tests) */
} nb__wino_geom;

/* Whether the kernels handle g: every size >= 1, paddings in 0..2 and an
 * output of at least 1x1 (a micro-kernel is there for every CPU and ISA
 * level: see nb__wino_kernel). */
bool nb__wino_supported(const nb__wino_geom *g);

/* The micro-kernel g's products run for elements of es bytes: "avx512"
 * (nabla's: for floats at avx512, where nabla's GEMM context is in use at
 * g->isa, or at avx512 where BLIS's kernel does not fit the packed
 * layouts, as skx's 32 x 12 does not), "blis" (BLIS's own) or "portable" (plain C, where neither
 * can run).  All but the portable one give the same bits. */
const char *nb__wino_kernel(const nb__wino_geom *g, size_t es);

/* Whether the forward and the input gradient of g run with the channels in
 * the vector lanes (floats at the avx512 level, where the kernel is
 * nabla's AVX-512 one: winograd_avx512.h), the same bits as the
 * transforms along the tiles but 1.5-4 times as fast on narrow planes. */
bool nb__wino_channel_lanes(const nb__wino_geom *g, size_t es);

/* Bytes of workspace for threads threads (64-byte aligned by the caller). */
size_t nb__wino_workspace(const nb__wino_geom *g, size_t elem_size, int threads);

/* flip false: in = x [N,C,H,W], out = y [N,O,oH,oW]; flip true: in = dy
 * [N,O,oH,oW], out = dx [N,C,H,W].  w = W [O,C,3,3] either way.  ws holds
 * nb__wino_workspace(g, sizeof element, threads) bytes.  out is
 * overwritten. */
void nb__wino_forward_f32(const nb__wino_geom *g, const float *in, const float *w, float *out,
                          void *ws, int threads);
void nb__wino_forward_f64(const nb__wino_geom *g, const double *in, const double *w, double *out,
                          void *ws, int threads);

/* The weight gradient of the convolution g describes (g->flip is ignored):
 *   dW[o][c][m][k] = sum_{n,i,j} dy[n,o,i,j] x[n, c, i + m - pt, j + k - pl]
 * (zero padding), dy [N, O, oH, oW], x [N, C, H, W], dW [O, C, 3, 3]
 * (overwritten).  Per 4x4 position xi, dU_xi [O, C] = sum over tiles of
 * (A dy_t A^T)_xi (B^T d_t B)_xi (a product with the tiles as k), then
 * dW = G^T dU G (docs/winograd.md).  Threads > 1: each thread sums its
 * share of the batch into a private dU; the private sums are added in
 * thread order, so the bits depend only on the thread count.  ws holds
 * nb__wino_wgrad_workspace(g, sizeof element, threads) bytes. */
size_t nb__wino_wgrad_workspace(const nb__wino_geom *g, size_t elem_size, int threads);
void nb__wino_weight_grad_f32(const nb__wino_geom *g, const float *dy, const float *x, float *dw,
                              void *ws, int threads);
void nb__wino_weight_grad_f64(const nb__wino_geom *g, const double *dy, const double *x, double *dw,
                              void *ws, int threads);

/* ---- the convolution op's entry points (plan.h's family interface) ------
 * The geometry of the pass in nb__conv_geom form; p->threads as above;
 * the forward adds the bias after the Winograd product. */
nb__wino_geom nb__conv_wino_geom(const nb__conv_geom *g, bool flip);
size_t nb__wino_conv_workspace(const nb__conv_geom *g, const nb__conv_plan *p);
NB__CONV_FWD(nb__wino_conv_forward)
NB__CONV_BWD(nb__wino_conv_input_grad)
NB__CONV_BWD(nb__wino_conv_weight_grad)

#endif
