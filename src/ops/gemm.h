/*
 * The GEMM every op runs (matmul, im2col convolution): BLIS's, with the
 * context BLIS chose for the CPU, or with nabla's AVX-512 micro-kernels
 * where the CPU has AVX-512F but BLIS chose a configuration without it
 * (docs/design.md, "ISA levels").  BLIS keeps its packing, blocking and
 * threading either way; only the micro-kernel and its block sizes change.
 */
#ifndef NB_GEMM_H
#define NB_GEMM_H

#include <blis.h>
#include <stdbool.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NB_GEMM_AVX512 1
#else
#define NB_GEMM_AVX512 0
#endif

/* The context to pass to bli_?gemm_ex for a kernel running at ISA level
 * isa (nb_exec.isa): NULL for BLIS's own choice. */
cntx_t *nb__gemm_cntx(int isa);

/* C (m x n, by rows, row stride ldc) = op(A) op(B), A(i, p) at
 * a[i rsa + p csa] and B(p, j) at b[p rsb + j csb], at ISA level isa on
 * `threads` threads: through gemm_small.c at the avx512 level when a
 * dimension is small (scratch space ws, see nb__gemm_scratch), else
 * bli_?gemm_ex with nb__gemm_cntx(isa).  The bits are BLIS's packed
 * path's in the first case, and BLIS's (packed or small-matrix path, by
 * BLIS's choice) in the second: at a given level they never depend on
 * which packed kernel runs. */
void nb__sgemm(int isa, int threads, dim_t m, dim_t n, dim_t k, const float *a, inc_t rsa,
               inc_t csa, const float *b, inc_t rsb, inc_t csb, float *c, inc_t ldc, void *ws,
               size_t ws_bytes);
void nb__dgemm(int isa, int threads, dim_t m, dim_t n, dim_t k, const double *a, inc_t rsa,
               inc_t csa, const double *b, inc_t rsb, inc_t csb, double *c, inc_t ldc, void *ws,
               size_t ws_bytes);
/* the scratch bytes nb__sgemm (elem 4) or nb__dgemm (elem 8) would use for
 * this product at level isa on `threads` threads: pass at least that much
 * as ws, or it allocates its own */
size_t nb__gemm_scratch(int isa, int threads, dim_t m, dim_t n, dim_t k, inc_t rsa, inc_t csb,
                        size_t elem);

/* The runtime to pass to bli_?gemm_ex for a GEMM on `threads` threads
 * (the kernel's nb_exec threads, or 1): r, initialised. */
static inline rntm_t *nb__gemm_rntm(rntm_t *r, int threads)
{
	bli_rntm_init(r);
	bli_rntm_set_num_threads(threads, r);
	return r;
}

#if NB_GEMM_AVX512
/* one thread's fp32 FMA rate in GFLOP/s with 256-bit (AVX2 + FMA) or
 * 512-bit (AVX-512F) vectors, over `iters` rounds of 12 FMAs; call only
 * at the ISA level that has them */
double nb__fma_gflops(int bits, long iters);
void nb__sgemm_avx512_32x12(dim_t m, dim_t n, dim_t k, float *restrict alpha, float *restrict a,
                            float *restrict b, float *restrict beta, float *restrict c, inc_t rs_c,
                            inc_t cs_c, auxinfo_t *restrict data, cntx_t *restrict cntx);
void nb__dgemm_avx512_16x12(dim_t m, dim_t n, dim_t k, double *restrict alpha, double *restrict a,
                            double *restrict b, double *restrict beta, double *restrict c,
                            inc_t rs_c, inc_t cs_c, auxinfo_t *restrict data,
                            cntx_t *restrict cntx);
/* Winograd's products (MR 16 by NR 16 floats, 8 by 16 doubles) */
void nb__sgemm_avx512_16x16(dim_t m, dim_t n, dim_t k, float *restrict alpha, float *restrict a,
                            float *restrict b, float *restrict beta, float *restrict c, inc_t rs_c,
                            inc_t cs_c, auxinfo_t *restrict data, cntx_t *restrict cntx);
void nb__dgemm_avx512_8x16(dim_t m, dim_t n, dim_t k, double *restrict alpha, double *restrict a,
                           double *restrict b, double *restrict beta, double *restrict c,
                           inc_t rs_c, inc_t cs_c, auxinfo_t *restrict data, cntx_t *restrict cntx);

/* C (m x n, by rows, row stride ldc) = op(A) op(B), A(i, p) at
 * a[i rsa + p csa] and B(p, j) at b[p rsb + j csb], with the small-matrix
 * kernels of gemm_small.c on `threads` threads, k cut in blocks of kc (up
 * to kc_max for the last): BLIS's packed path's bits.  Scratch space: ws
 * when ws_bytes is at least nb__gemm_small_bytes, else allocated.  false,
 * with C untouched, when it cannot (no memory, bad sizes). */
bool nb__gemm_small_f32(dim_t m, dim_t n, dim_t k, const float *a, inc_t rsa, inc_t csa,
                        const float *b, inc_t rsb, inc_t csb, float *c, inc_t ldc, int threads,
                        dim_t kc, dim_t kc_max, void *ws, size_t ws_bytes);
bool nb__gemm_small_f64(dim_t m, dim_t n, dim_t k, const double *a, inc_t rsa, inc_t csa,
                        const double *b, inc_t rsb, inc_t csb, double *c, inc_t ldc, int threads,
                        dim_t kc, dim_t kc_max, void *ws, size_t ws_bytes);
/* the scratch bytes the small-matrix kernels need for such a product on
 * `threads` threads (elements of `elem` bytes) */
size_t nb__gemm_small_bytes(dim_t m, dim_t n, dim_t k, inc_t rsa, inc_t csb, int threads,
                            size_t elem);
/* the most scratch bytes that the threads' own copies of an operand may
 * take together (gemm_small.c), else they share one; tests set 0 */
extern size_t nb__gemm_private_max;
#endif

#endif
