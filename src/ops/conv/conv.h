/*
 * Window geometry shared by convolution (conv.c) and pooling (pool.c).
 * Not public API.
 */
#ifndef NB_CONV_H
#define NB_CONV_H

#include "ops/kernel.h"
#include "ops/simd.h"

/* Convolution attributes, the same slots for all four conv ops:
 *   i[A_SH], i[A_SW]        stride
 *   i[A_PT], i[A_PL]        padding top, left
 *   i[A_PB], i[A_PR]        padding bottom, right (differ from top/left only
 *                           for NB_PAD_SAME with an even total)
 *   i[A_DH], i[A_DW]        dilation
 *   i[A_GROUPS], i[A_ALGO]  groups, nb_conv_algo
 *   i[A_D0], i[A_D1]        backward_input: H, W of x; backward_weight: kH, kW
 */
enum { A_SH, A_SW, A_PT, A_PL, A_PB, A_PR, A_DH, A_DW, A_GROUPS, A_ALGO, A_D0, A_D1 };

/* Output length along one axis: floor((in + pads - d (k-1) - 1) / s) + 1,
 * or 0 when the dilated kernel d (k-1) + 1 does not fit in the padded
 * input. */
static inline int64_t nb__window_out(int64_t in, int64_t k, int64_t s, int64_t pads, int64_t d)
{
	int64_t span = in + pads - d * (k - 1) - 1;
	return span < 0 ? 0 : span / s + 1;
}

/* Output positions o in [0, out) whose input position o*s + off lies in
 * [0, in): the half-open range [*lo, *hi) (empty: *lo == *hi).  Loops over
 * one kernel tap use it to skip the padding without a test per element. */
static inline void nb__tap_range(int64_t in, int64_t out, int64_t s, int64_t off, int64_t *lo,
                                 int64_t *hi)
{
	int64_t a = off >= 0 ? 0 : s == 1 ? -off : (-off + s - 1) / s; /* s == 1: no division */
	int64_t b = in - off <= 0 ? 0 : s == 1 ? in - off : (in - off + s - 1) / s;
	if (a > out)
		a = out;
	if (b > out)
		b = out;
	if (b < a)
		b = a;
	*lo = a;
	*hi = b;
}

/* A leading dimension of n elements: n, plus one cache line when a row of
 * n is a multiple of 1 KiB.  Rows a power of two apart alias in the L1
 * cache: BLIS reading 16x1024x144 with rows 4 KiB apart ran at 45
 * GFLOP/s, with 4160 bytes at 90 (one Zen core). */
static inline int64_t nb__pad_ld(int64_t n, size_t es)
{
	return (size_t)n * es % 1024 ? n : n + (int64_t)(NB_ALIGN / es);
}

/* Sum of n contiguous values (vectorised: several partial sums), as
 * nb__sum_f32 and nb__sum_f64; nb__sum picks one by the pointer type. */
#define NB__SUM_FN(T, SFX)                                                                         \
	static inline double nb__sum_##SFX(const T *x, int64_t n)                                  \
	{                                                                                          \
		T s = 0;                                                                           \
		NB_SIMD(reduction(+ : s)) for (int64_t i = 0; i < n; i++) s += x[i];               \
		return s;                                                                          \
	}
NB__SUM_FN(float, f32)
NB__SUM_FN(double, f64)
#undef NB__SUM_FN
#define nb__sum(x, n)                                                                              \
	_Generic((x), float *: nb__sum_f32, const float *: nb__sum_f32,        \
	         double *: nb__sum_f64, const double *: nb__sum_f64)((x), (n))

#endif
