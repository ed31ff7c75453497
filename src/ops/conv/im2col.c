/*
 * im2col + GEMM convolution (CONV_PATH_IM2COL): any stride, padding,
 * dilation and groups; the general path and the reference the fast paths
 * are tested against (docs/conv.md, "im2col + GEMM").
 *
 * For one image and one group, col(X) [K, P] (K = Cg kH kW, P = oH oW)
 * holds each output pixel's receptive field in a column:
 *   col[(c kH + m) kW + k][i oW + j] = X[c, i sH - pT + m dH, j sW - pL + k dW]
 * (0 in the padding).  im2col is a linear map C; its adjoint C^T (col2im)
 * scatters each entry back to its pixel and adds.  With W_g the group's
 * weight rows as an [Og, K] matrix:
 *   forward        Y_g  = W_g col(X_g)
 *   input grad     dX_g = col2im(W_g^T dY_g)          (Y linear in X)
 *   weight grad    dW_g = sum_n dY_{n,g} col(X_{n,g})^T  (Y linear in W)
 * All GEMMs are BLIS's with row and column strides (no transposed copies).
 * A 1x1, stride-1, unpadded convolution is its own column matrix.  Each
 * GEMM covers a block: a chunk of images side by side, or a band of
 * output rows of one image (the plan's chunk and rows, from policy.c).
 */
/* The kernels here are chains of multiply-adds held in registers: let GCC
 * fuse them into FMA instructions in the AVX2 and AVX-512 variants (ISO C mode keeps
 * contraction off, which doubles the arithmetic instructions and the
 * latency of each accumulation).  The variants then round differently from the baseline, by
 * an ulp per product; results stay deterministic on one machine. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif

#include "ops/conv/im2col.h"
#include "ops/gemm.h"

#include <blis.h>
#include <omp.h>
#include <string.h>

typedef nb__conv_geom geom;

#define wide nb__im2col_wide
#define gemm_cols nb__im2col_cols

/* 1x1, stride 1, no padding: x (one image, one group) is its own column
 * matrix, no im2col needed */
static bool pointwise(const geom *g)
{
	return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && !g->pt && !g->pl && !g->pb &&
	       !g->pr;
}

/* A 1x1 convolution of one image is its own column matrix, unless its
 * rows alias (then it is copied with the padded stride). */
static bool x_is_col(const geom *g, int64_t nb, size_t es)
{
	return pointwise(g) && nb == 1 && nb__pad_ld(g->oh * g->ow, es) == g->oh * g->ow;
}

/* A GEMM's block: nb images, output rows [r0, r1) (all rows when nb > 1);
 * rows: the plan's rows per band */
typedef struct blk {
	int64_t nb, r0, r1, rows;
} blk;

/* columns of one image in a block */
static int64_t blk_cols(const geom *g, blk b)
{
	return wide(g) ? gemm_cols(g) : (b.r1 - b.r0) * g->ow;
}

/* the most columns a block of a plan with this chunk and band has */
static int64_t max_cols(const geom *g, int64_t chunk, int64_t rows)
{
	return rows < g->oh ? rows * g->ow : chunk * gemm_cols(g);
}

static size_t col_bytes(const geom *g, int64_t chunk, int64_t rows, size_t es)
{
	if (x_is_col(g, chunk, es))
		return 0;
	return nb__align_up(
	    (size_t)(g->cg * g->kh * g->kw * nb__pad_ld(max_cols(g, chunk, rows), es)) * es);
}

/* The [Og, block] part of y or dy with the column matrix's stride: the
 * forward's GEMM writes it and it is scattered to y; the backward passes
 * gather dy into it.  One image or band needs none, except in the wide
 * layout, and for the input gradient when dy's rows alias (dy is the B
 * operand there). */
static size_t ybuf_bytes(const geom *g, const nb__conv_plan *p)
{
	const size_t es = p->es;
	const int64_t q = g->oh * g->ow, ld = nb__pad_ld(max_cols(g, p->chunk, p->rows), es);
	if (p->chunk > 1 || wide(g) || (p->pass == CONV_PASS_INPUT_GRAD && nb__pad_ld(q, es) != q))
		return nb__align_up((size_t)(g->og * ld) * es);
	return 0;
}

/* One thread's slice: the column matrix, the y / dy block, and for the
 * weight gradient on batch threads a private dW. */
static size_t slice_bytes(const geom *g, const nb__conv_plan *p)
{
	size_t b = col_bytes(g, p->chunk, p->rows, p->es) + ybuf_bytes(g, p);
	if (p->pass == CONV_PASS_WEIGHT_GRAD && p->threads > 1)
		b += nb__align_up((size_t)(g->o * g->cg * g->kh * g->kw) * p->es);
	return b;
}

size_t nb__im2col_workspace(const nb__conv_geom *g, const nb__conv_plan *p)
{
	/* one more row past the last slice: BLIS may read it (nb__blas_slack) */
	return (size_t)p->threads * slice_bytes(g, p) +
	       nb__align_up((size_t)nb__pad_ld(max_cols(g, p->chunk, p->rows), p->es) * p->es);
}

/* rn for a batch run on one thread: the GEMM on the team's threads when the
 * plan gives them to BLIS, else on the calling thread alone */
#define ONE_THREAD_RNTM(p)                                                                         \
	rntm_t one_;                                                                               \
	rntm_t *rn = nb__gemm_rntm(&one_, (p)->blis_threads ? (p)->team : 1)

/* The blocks of thread tid of th: it takes images [lo, hi) of the batch,
 * splits them evenly into pieces of at most pl->chunk images, and cuts an
 * image into bands of pl->rows output rows when that is fewer than oH.
 * Runs the statement for each block: K its index, B0 its first image, BK
 * the block. */
#define FOR_BLOCKS(g, pl, th, tid, K, B0, BK, ...)                                                 \
	do {                                                                                       \
		const int64_t lo_ = (g)->n * (tid) / (th), hi_ = (g)->n * ((tid) + 1) / (th);      \
		const int64_t np_ = hi_ > lo_ ? (hi_ - lo_ + (pl)->chunk - 1) / (pl)->chunk : 0;   \
		const int64_t rows_ = (pl)->rows;                                                  \
		int64_t K = 0;                                                                     \
		for (int64_t k_ = 0; k_ < np_; k_++) {                                             \
			const int64_t B0 = lo_ + (hi_ - lo_) * k_ / np_;                           \
			const int64_t b1_ = lo_ + (hi_ - lo_) * (k_ + 1) / np_;                    \
			for (int64_t r_ = 0; r_ < (g)->oh; r_ += rows_, K++) {                     \
				const blk BK = {b1_ - B0, r_,                                      \
				                r_ + rows_ < (g)->oh ? r_ + rows_ : (g)->oh,       \
				                rows_};                                            \
				__VA_ARGS__;                                                       \
			}                                                                          \
		}                                                                                  \
	} while (0)

#define gemm_ex_f32 bli_sgemm_ex
#define gemm_ex_f64 bli_dgemm_ex
#define NB_VARIANTS_IMPL "ops/conv/im2col_impl.h"
#include "ops/variants.h"
