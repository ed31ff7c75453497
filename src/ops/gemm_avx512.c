/*
 * AVX-512 GEMM micro-kernels for BLIS (see gemm.c for when they are used).
 *
 * BLIS computes C = beta C + alpha A B by packing A into panels of MR rows
 * and B into panels of NR columns and calling a micro-kernel for each
 * MR x NR block of C.  Ours are column-preferring: per step p of k they
 * load one column of the A panel (MR = 2 vectors), broadcast the NR = 12
 * values of B's row p, and keep the 2 x 12 = 24 accumulator vectors of
 * the block in registers (AVX-512 has 32), each element summed as one FMA
 * chain in order of p, as BLIS's own kernels do.
 *
 *   float:  MR 32, NR 12  (16 floats per vector)
 *   double: MR 16, NR 12  (8 doubles per vector)
 *
 * Winograd's products (ops/conv/winograd.c) take a narrower pair, one
 * vector by NR = 16 columns (16 accumulators): ResNet's 16, 32 and 64
 * channels fill MR = 16 and NR = 16 exactly, where 32 x 12 would pad 16
 * channels to 32, and a B row of 16 floats is a whole cache line, as the
 * Winograd layouts need.
 *
 *   float:  MR 16, NR 16      double: MR 8, NR 16
 *
 * Edge blocks (m < MR or n < NR) and C with a general stride go through a
 * block in memory.  beta == 0 never reads C (it may hold NaNs).  Compiled
 * for AVX-512F by function attribute, so the rest of the library keeps its
 * baseline; gemm.c calls them only where the CPU has AVX-512F.
 */
#include "ops/gemm.h"
#include "util/clock.h"

#if NB_GEMM_AVX512

#include <immintrin.h>
#include <math.h>

#define AVX512 __attribute__((target("avx512f")))

/* how far ahead (in k steps) the A panel is prefetched */
#define PF_A 8

/* A kernel of NV vectors (MR = NV VL) by NC columns (NR), NV 1 or 2:
 * NV NC accumulators, at most 24 */
#define UKR(NAME, T, V, VL, NV, NC, LOAD, STORE, SET1, FMA, MUL, ZERO, SFMA)                       \
	AVX512 void NAME(dim_t m, dim_t n, dim_t k, T *restrict alpha, T *restrict a,              \
	                 T *restrict b, T *restrict beta, T *restrict c, inc_t rs_c, inc_t cs_c,   \
	                 auxinfo_t *restrict data, cntx_t *restrict cntx)                          \
	{                                                                                          \
		(void)data;                                                                        \
		(void)cntx;                                                                        \
		V c0[NC], c1[NC];                                                                  \
		_Pragma("GCC unroll 16") for (int j = 0; j < NC; j++)                              \
		{                                                                                  \
			c0[j] = ZERO();                                                            \
			c1[j] = ZERO();                                                            \
		}                                                                                  \
		const bool direct = m == NV * VL && n == NC && rs_c == 1;                          \
		if (direct)                                                                        \
			for (int j = 0; j < NC; j++)                                               \
				_mm_prefetch((const char *)(c + j * cs_c), _MM_HINT_T0);           \
		for (dim_t p = 0; p < k; p++) {                                                    \
			const V a0 = LOAD(a), a1 = NV > 1 ? LOAD(a + VL) : ZERO();                 \
			_mm_prefetch((const char *)(a + PF_A * NV * VL), _MM_HINT_T0);             \
			if (NV > 1)                                                                \
				_mm_prefetch((const char *)(a + PF_A * NV * VL + VL),              \
				             _MM_HINT_T0);                                         \
			_Pragma("GCC unroll 16") for (int j = 0; j < NC; j++)                      \
			{                                                                          \
				const V bj = SET1(b[j]);                                           \
				c0[j] = FMA(a0, bj, c0[j]);                                        \
				if (NV > 1)                                                        \
					c1[j] = FMA(a1, bj, c1[j]);                                \
			}                                                                          \
			a += NV * VL;                                                              \
			b += NC;                                                                   \
		}                                                                                  \
		const V va = SET1(*alpha);                                                         \
		const T bt = *beta;                                                                \
		if (direct) {                                                                      \
			const V vb = SET1(bt);                                                     \
			for (int j = 0; j < NC; j++) {                                             \
				T *col = c + j * cs_c;                                             \
				V r0 = MUL(va, c0[j]), r1 = MUL(va, c1[j]);                        \
				if (bt != 0) {                                                     \
					r0 = FMA(vb, LOAD(col), r0);                               \
					if (NV > 1)                                                \
						r1 = FMA(vb, LOAD(col + VL), r1);                  \
				}                                                                  \
				STORE(col, r0);                                                    \
				if (NV > 1)                                                        \
					STORE(col + VL, r1);                                       \
			}                                                                          \
			return;                                                                    \
		}                                                                                  \
		T blk[NC][NV * VL];                                                                \
		for (int j = 0; j < NC; j++) {                                                     \
			STORE(blk[j], MUL(va, c0[j]));                                             \
			if (NV > 1)                                                                \
				STORE(blk[j] + VL, MUL(va, c1[j]));                                \
		}                                                                                  \
		for (dim_t j = 0; j < n; j++)                                                      \
			for (dim_t i = 0; i < m; i++) {                                            \
				T *x = c + i * rs_c + j * cs_c;                                    \
				*x = bt == 0 ? blk[j][i] : SFMA(bt, *x, blk[j][i]);                \
			}                                                                          \
	}

#define SGEMM_OPS                                                                                  \
	_mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_mul_ps,         \
	    _mm512_setzero_ps, fmaf
#define DGEMM_OPS                                                                                  \
	_mm512_loadu_pd, _mm512_storeu_pd, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_mul_pd,         \
	    _mm512_setzero_pd, fma
/* expands the OPS lists before UKR counts its arguments */
#define UKR_OF(...) UKR(__VA_ARGS__)
/* the GEMMs' kernels (2 vectors by 12 columns) */
UKR_OF(nb__sgemm_avx512_32x12, float, __m512, 16, 2, 12, SGEMM_OPS)
UKR_OF(nb__dgemm_avx512_16x12, double, __m512d, 8, 2, 12, DGEMM_OPS)
/* Winograd's (one vector by 16 columns, see gemm.h) */
UKR_OF(nb__sgemm_avx512_16x16, float, __m512, 16, 1, 16, SGEMM_OPS)
UKR_OF(nb__dgemm_avx512_8x16, double, __m512d, 8, 1, 16, DGEMM_OPS)

/* fp32 FMA throughput of one thread (GFLOP/s) with 256- or 512-bit vectors:
 * 12 independent FMA chains, more than latency x units on any current
 * x86 core, so the FMA units never wait on a result. */
#define FMA_CHAINS 12
#define FMA_LOOP(V, SET1, FMA, STORE, LANES)                                                       \
	V acc[FMA_CHAINS];                                                                         \
	const V mul = SET1(0.999999f), add = SET1(1e-7f);                                          \
	for (int c = 0; c < FMA_CHAINS; c++)                                                       \
		acc[c] = SET1((float)(c + 1));                                                     \
	for (long i = 0; i < iters; i++)                                                           \
		_Pragma("GCC unroll 12") for (int c = 0; c < FMA_CHAINS; c++) acc[c] =             \
		    FMA(acc[c], mul, add);                                                         \
	float out[LANES], s = 0;                                                                   \
	for (int c = 0; c < FMA_CHAINS; c++) {                                                     \
		STORE(out, acc[c]);                                                                \
		s += out[0];                                                                       \
	}                                                                                          \
	return s

__attribute__((target("avx2,fma"))) static float fma256(long iters)
{
	FMA_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps, 8);
}

AVX512 static float fma512(long iters)
{
	FMA_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps, 16);
}

double nb__fma_gflops(int bits, long iters)
{
	const double t0 = nb__now();
	volatile float sink = bits == 512 ? fma512(iters) : fma256(iters);
	(void)sink;
	const double s = nb__now() - t0;
	return 2.0 * (bits / 32) * FMA_CHAINS * (double)iters / s * 1e-9;
}

#endif
