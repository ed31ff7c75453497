/*
 * Small matrix products with AVX-512, for the shapes of dense layers
 * (gemm.h, nb__gemm_small_f32/_f64).
 *
 * BLIS sends a product with a dimension under about 200 to its
 * small-matrix ("sup") path, whose kernels are the AVX2 ones of the
 * configuration BLIS chose; its packed path spends as long packing a
 * 64 x 784 x 256 product as multiplying it.  Here no operand is packed
 * when it need not be: one operand is read in vectors along its rows (it
 * must have unit column stride), the other broadcast one value at a time
 * (any strides), and a block of 12 rows by 2 vectors of C is kept in
 * registers (24 accumulators).  When neither operand has a unit stride in
 * C's row direction, the smaller one is copied into the order needed.
 *
 * The sums are BLIS's packed path's to the bit: k is cut into blocks as
 * BLIS cuts it (KC, with the last block taking what is left up to KC's
 * maximum), each block of each element is one FMA chain in order of k
 * starting from zero, and the blocks are added to C in order (the first
 * stored).  So a product gives the same bits here, through nabla's packed
 * AVX-512 kernels and through BLIS's packed kernels, on any number of
 * threads: threads share out blocks of C, never k.
 */
#include "ops/gemm.h"

#include <stdlib.h>

#if NB_GEMM_AVX512

#include <immintrin.h>
#include <omp.h>

#define AVX512 __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline))

/* rows of C in a block (broadcast values per k step) */
#define ROWS 12

/* One block of O (rows x 2 VL columns, O(r, j) at o[r ldo + j]) summed over
 * kc steps: O(r, j) (+)= sum_p X(r, p) V(p, j), X(r, p) at x[r rsx + p csx],
 * V(p, j) at v[p ldv + j].  Lanes beyond the block's width are masked off
 * (m0, m1).  add: add to O, else store. */
#define TILE(NAME, T, V, VL, MT, LOAD, STORE, SET1, FMA, ADD, ZERO)                                \
	AVX512 INLINE void NAME(const int R, dim_t kc, const T *x, inc_t rsx, inc_t csx,           \
	                        const T *v, inc_t ldv, T *o, inc_t ldo, MT m0, MT m1, bool add)    \
	{                                                                                          \
		V c0[ROWS], c1[ROWS];                                                              \
		_Pragma("GCC unroll 12") for (int r = 0; r < R; r++)                               \
		{                                                                                  \
			c0[r] = ZERO();                                                            \
			c1[r] = ZERO();                                                            \
		}                                                                                  \
		for (dim_t p = 0; p < kc; p++) {                                                   \
			const V b0 = LOAD(m0, v), b1 = LOAD(m1, v + VL);                           \
			_Pragma("GCC unroll 12") for (int r = 0; r < R; r++)                       \
			{                                                                          \
				const V a = SET1(x[r * rsx]);                                      \
				c0[r] = FMA(a, b0, c0[r]);                                         \
				c1[r] = FMA(a, b1, c1[r]);                                         \
			}                                                                          \
			x += csx;                                                                  \
			v += ldv;                                                                  \
		}                                                                                  \
		_Pragma("GCC unroll 12") for (int r = 0; r < R; r++)                               \
		{                                                                                  \
			T *row = o + r * ldo;                                                      \
			if (add) {                                                                 \
				c0[r] = ADD(LOAD(m0, row), c0[r]);                                 \
				c1[r] = ADD(LOAD(m1, row + VL), c1[r]);                            \
			}                                                                          \
			STORE(row, m0, c0[r]);                                                     \
			STORE(row + VL, m1, c1[r]);                                                \
		}                                                                                  \
	}

TILE(tile_f32, float, __m512, 16, __mmask16, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps,
     _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_setzero_ps)
TILE(tile_f64, double, __m512d, 8, __mmask8, _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd,
     _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_setzero_pd)

/* the tile for R rows, R a constant in each case so the accumulators stay
 * in registers */
#define TILE_R(NAME, TILE, T, MT)                                                                  \
	AVX512 static void NAME(int R, dim_t kc, const T *x, inc_t rsx, inc_t csx, const T *v,     \
	                        inc_t ldv, T *o, inc_t ldo, MT m0, MT m1, bool add)                \
	{                                                                                          \
		switch (R) {                                                                       \
		case 12:                                                                           \
			TILE(12, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);                    \
			break;                                                                     \
		case 11:                                                                           \
			TILE(11, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);                    \
			break;                                                                     \
		case 10:                                                                           \
			TILE(10, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);                    \
			break;                                                                     \
		case 9:                                                                            \
			TILE(9, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);                     \
			break;                                                                     \
		case 8:                                                                            \
			TILE(8, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);                     \
			break;                                                                     \
		case 7:                                                                            \
			TILE(7, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);                     \
			break;                                                                     \
		case 6:                                                                            \
			TILE(6, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);                     \
			break;                                                                     \
		case 5:                                                                            \
			TILE(5, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);                     \
			break;                                                                     \
		case 4:                                                                            \
			TILE(4, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);                     \
			break;                                                                     \
		case 3:                                                                            \
			TILE(3, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);                     \
			break;                                                                     \
		case 2:                                                                            \
			TILE(2, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);                     \
			break;                                                                     \
		default:                                                                           \
			TILE(1, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);                     \
			break;                                                                     \
		}                                                                                  \
	}

TILE_R(tiles_f32, tile_f32, float, __mmask16)
TILE_R(tiles_f64, tile_f64, double, __mmask8)

/* the mask of the first n lanes (n up to 16; 0 for n <= 0) */
INLINE unsigned lanes(dim_t n)
{
	return n <= 0 ? 0u : n >= 16 ? 0xffffu : (1u << n) - 1u;
}

/* where BLIS ends the k block that starts at p: KC steps, or all that is
 * left when that is at most KC's maximum */
INLINE dim_t block_end(dim_t p, dim_t k, dim_t kc, dim_t kc_max)
{
	return k - p <= kc_max ? k : p + kc;
}

/* O (rows x cols, row stride ldo, unit column stride) = X V over k, X(r, p)
 * at x[r rsx + p csx], V(p, j) at v[p ldv + j], on the threads of the
 * enclosing parallel region (or one).  Threads take whole blocks of O;
 * every thread runs the k blocks in order. */
#define CORE(NAME, T, VL, MT, TILES)                                                               \
	AVX512 static void NAME(dim_t rows, dim_t cols, dim_t k, const T *x, inc_t rsx, inc_t csx, \
	                        const T *v, inc_t ldv, T *o, inc_t ldo, dim_t kc, dim_t kc_max)    \
	{                                                                                          \
		const dim_t rb = (rows + ROWS - 1) / ROWS, cb = (cols + 2 * VL - 1) / (2 * VL);    \
		const int th = omp_get_num_threads(), me = omp_get_thread_num();                   \
		/* each thread reads its share of the larger operand */                            \
		const bool split_rows = rows >= cols;                                              \
		const dim_t n = split_rows ? rb : cb;                                              \
		const dim_t lo = n * me / th, hi = n * (me + 1) / th;                              \
		const dim_t r0 = split_rows ? lo : 0, r1 = split_rows ? hi : rb;                   \
		const dim_t c0 = split_rows ? 0 : lo, c1 = split_rows ? cb : hi;                   \
		for (dim_t p = 0; p < k;) {                                                        \
			const dim_t pe = block_end(p, k, kc, kc_max);                              \
			for (dim_t cj = c0; cj < c1; cj++)                                         \
				for (dim_t ri = r0; ri < r1; ri++) {                               \
					const dim_t i = ri * ROWS, j = cj * 2 * VL, w = cols - j;  \
					const int r = rows - i < ROWS ? (int)(rows - i) : ROWS;    \
					TILES(r, pe - p, x + i * rsx + p * csx, rsx, csx,          \
					      v + p * ldv + j, ldv, o + i * ldo + j, ldo,          \
					      (MT)lanes(w), (MT)lanes(w - VL), p > 0);             \
				}                                                                  \
			p = pe;                                                                    \
		}                                                                                  \
	}

CORE(core_f32, float, 16, __mmask16, tiles_f32)
CORE(core_f64, double, 8, __mmask8, tiles_f64)

/* dst (cols x rows, by rows) = the transpose of src (rows x cols, source
 * element (r, c) at src[r rs + c cs]); this thread's share of dst's rows */
/* dst[c ldd + r] = src[r rs + c cs] for r < rows and this thread's share
 * of c < cols (a value moves, so any order gives the same bits) */
#define TRANSPOSE_SCALAR(T, c0, c1, r0, r1)                                                        \
	for (dim_t c = (c0); c < (c1); c++)                                                        \
		for (dim_t r = (r0); r < (r1); r++)                                                \
	dst[c * ldd + r] = src[r * rs + c * cs]

static void transpose_f64(dim_t rows, dim_t cols, const double *src, inc_t rs, inc_t cs,
                          double *dst, inc_t ldd)
{
	const int th = omp_get_num_threads(), me = omp_get_thread_num();
	TRANSPOSE_SCALAR(double, cols *me / th, cols * (me + 1) / th, 0, rows);
}

/* floats: blocks of 8 x 8 through registers where src's rows are
 * contiguous (cs 1: A by rows, B^T by rows, C^T), the edges one by one;
 * the threads share c in multiples of 8 */
AVX512 static void transpose_f32(dim_t rows, dim_t cols, const float *src, inc_t rs, inc_t cs,
                                 float *dst, inc_t ldd)
{
	const int th = omp_get_num_threads(), me = omp_get_thread_num();
	const dim_t c8 = (cols + 7) / 8, lo = c8 * me / th * 8, hi = c8 * (me + 1) / th * 8;
	const dim_t chi = hi < cols ? hi : cols;
	if (cs != 1 || lo >= chi) {
		TRANSPOSE_SCALAR(float, lo < cols ? lo : cols, chi, 0, rows);
		return;
	}
	const dim_t r8 = rows / 8 * 8, cend = lo + (chi - lo) / 8 * 8;
	for (dim_t c0 = lo; c0 < cend; c0 += 8)
		for (dim_t r0 = 0; r0 < r8; r0 += 8) {
			__m256 x[8], t[8], u[8];
			for (int i = 0; i < 8; i++)
				x[i] = _mm256_loadu_ps(src + (r0 + i) * rs + c0);
			for (int i = 0; i < 8; i += 2) {
				t[i] = _mm256_unpacklo_ps(x[i], x[i + 1]);
				t[i + 1] = _mm256_unpackhi_ps(x[i], x[i + 1]);
			}
			for (int i = 0; i < 8; i += 4) {
				u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
				u[i + 1] =
				    _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
				u[i + 2] =
				    _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
				u[i + 3] =
				    _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
			}
			for (int j = 0; j < 4; j++) {
				_mm256_storeu_ps(dst + (c0 + j) * ldd + r0,
				                 _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
				_mm256_storeu_ps(dst + (c0 + j + 4) * ldd + r0,
				                 _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
			}
		}
	TRANSPOSE_SCALAR(float, lo, cend, r8, rows);
	TRANSPOSE_SCALAR(float, cend, chi, 0, rows);
}

/* how the operands are laid out for the core (see SMALL) */
typedef struct layout {
	bool by_rows, copy_a, copy_b, transposed;
} layout;

static layout layout_of(dim_t m, dim_t n, dim_t k, inc_t rsa, inc_t csb)
{
	layout l = {.by_rows = csb == 1};
	const bool by_cols = !l.by_rows && rsa == 1;
	l.copy_a = !l.by_rows && !by_cols && m * (k + n) < k * n;
	l.copy_b = !l.by_rows && !by_cols && !l.copy_a;
	l.transposed = by_cols || l.copy_a;
	return l;
}

/* the elements of scratch space a product needs */
static size_t scratch(dim_t m, dim_t n, dim_t k, layout l)
{
	return (size_t)((l.copy_a ? m * k : 0) + (l.copy_b ? k * n : 0) +
	                (l.transposed ? m * n : 0));
}

size_t nb__gemm_small_bytes(dim_t m, dim_t n, dim_t k, inc_t rsa, inc_t csb, size_t elem)
{
	if (m <= 0 || n <= 0 || k <= 0)
		return 0;
	return scratch(m, n, k, layout_of(m, n, k, rsa, csb)) * elem;
}

/* C (m x n, by rows, ldc) = op(A) op(B): A(i, p) at a[i rsa + p csa],
 * B(p, j) at b[p rsb + j csb].
 *   B by rows (csb 1): C = A B directly.
 *   A by columns (rsa 1): C^T = B^T A^T into scratch space, then C from it.
 *   neither: the smaller of A and B copied by columns / by rows first.
 * The scratch space is ws when it has room, else allocated. */
#define SMALL(NAME, T, CORE, TRANSPOSE)                                                            \
	bool NAME(dim_t m, dim_t n, dim_t k, const T *a, inc_t rsa, inc_t csa, const T *b,         \
	          inc_t rsb, inc_t csb, T *c, inc_t ldc, int threads, dim_t kc, dim_t kc_max,      \
	          void *ws, size_t ws_bytes)                                                       \
	{                                                                                          \
		if (m <= 0 || n <= 0 || k <= 0 || kc <= 0 || kc_max < kc)                          \
			return false;                                                              \
		const layout l = layout_of(m, n, k, rsa, csb);                                     \
		const size_t need = scratch(m, n, k, l) * sizeof(T);                               \
		T *buf = ws, *own = NULL;                                                          \
		if (need > ws_bytes && !(buf = own = malloc(need)))                                \
			return false;                                                              \
		T *packed = buf, *ct = buf + (l.copy_a ? m * k : l.copy_b ? k * n : 0);            \
		_Pragma("omp parallel num_threads(threads) if (threads > 1)")                      \
		{                                                                                  \
			if (l.copy_a) /* A^T, k x m by rows */                                     \
				TRANSPOSE(m, k, a, rsa, csa, packed, m);                           \
			if (l.copy_b) /* B, k x n by rows: the transpose of B^T */                 \
				TRANSPOSE(n, k, b, csb, rsb, packed, n);                           \
			if (l.copy_a || l.copy_b) {                                                \
				_Pragma("omp barrier")                                             \
			}                                                                          \
			if (l.by_rows)                                                             \
				CORE(m, n, k, a, rsa, csa, b, rsb, c, ldc, kc, kc_max);            \
			else if (l.copy_b)                                                         \
				CORE(m, n, k, a, rsa, csa, packed, n, c, ldc, kc, kc_max);         \
			else /* C^T (n x m) = B^T A^T */                                           \
				CORE(n, m, k, b, csb, rsb, l.copy_a ? packed : a,                  \
				     l.copy_a ? m : csa, ct, m, kc, kc_max);                       \
			if (l.transposed) {                                                        \
				_Pragma("omp barrier") TRANSPOSE(n, m, ct, m, 1, c, ldc);          \
			}                                                                          \
		}                                                                                  \
		free(own);                                                                         \
		return true;                                                                       \
	}

SMALL(nb__gemm_small_f32, float, core_f32, transpose_f32)
SMALL(nb__gemm_small_f64, double, core_f64, transpose_f64)

#endif
