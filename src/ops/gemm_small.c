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
 * C's row direction, one is copied into the order needed (layout_of).
 * The threads take contiguous shares of C without waiting for each other
 * (one parallel region, no barrier inside: with OMP_WAIT_POLICY=passive
 * each barrier costs several microseconds on a virtual machine).
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
#include <stdatomic.h>
#include <x86intrin.h>

#define AVX512 __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline))

/* rows of C in a block (broadcast values per k step) */
#define ROWS 12

/* One block of O (rows x 2 VL columns, O(r, j) at o[r ldo + j]) summed over
 * kc steps: O(r, j) (+)= sum_p X(r, p) V(p, j), X(r, p) at x[r rsx + p csx],
 * V(p, j) at v[p ldv + j].  Lanes beyond the block's width are masked off
 * (m0, m1); full: none are, and V is read without masks.  add: add to O,
 * else store.  X's rows are reached from four pointers, three rows apart,
 * so that the loop keeps its addresses in registers (twelve row pointers
 * spill). */
#define TILE(NAME, T, V, VL, MT, LOADU, LOAD, STORE, SET1, FMA, ADD, ZERO)                         \
	AVX512 INLINE void NAME(const int R, const bool full, dim_t kc, const T *x, inc_t rsx,     \
	                        inc_t csx, const T *v, inc_t ldv, T *o, inc_t ldo, MT m0, MT m1,   \
	                        bool add)                                                          \
	{                                                                                          \
		V c0[ROWS], c1[ROWS];                                                              \
		_Pragma("GCC unroll 12") for (int r = 0; r < R; r++)                               \
		{                                                                                  \
			c0[r] = ZERO();                                                            \
			c1[r] = ZERO();                                                            \
		}                                                                                  \
		/* (only the rows the block has: no pointer past X) */                             \
		const T *x0 = x, *x3 = R > 3 ? x + 3 * rsx : x, *x6 = R > 6 ? x + 6 * rsx : x,     \
		        *x9 = R > 9 ? x + 9 * rsx : x;                                             \
		for (dim_t p = 0; p < kc; p++) {                                                   \
			const V b0 = full ? LOADU(v) : LOAD(m0, v);                                \
			const V b1 = full ? LOADU(v + VL) : LOAD(m1, v + VL);                      \
			_Pragma("GCC unroll 12") for (int r = 0; r < R; r++)                       \
			{                                                                          \
				const T *xr = r < 3 ? x0 : r < 6 ? x3 : r < 9 ? x6 : x9;           \
				const V a = SET1(xr[(r % 3) * rsx]);                               \
				c0[r] = FMA(a, b0, c0[r]);                                         \
				c1[r] = FMA(a, b1, c1[r]);                                         \
			}                                                                          \
			x0 += csx, x3 += csx, x6 += csx, x9 += csx;                                \
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

TILE(tile_f32, float, __m512, 16, __mmask16, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
     _mm512_mask_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_setzero_ps)
TILE(tile_f64, double, __m512d, 8, __mmask8, _mm512_loadu_pd, _mm512_maskz_loadu_pd,
     _mm512_mask_storeu_pd, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_setzero_pd)

/* the tile for R rows, R and full constants in each case so that the
 * accumulators stay in registers and full blocks read V without masks */
#define TILE_CASE(TILE, N)                                                                         \
	case N:                                                                                    \
		if (full)                                                                          \
			TILE(N, true, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);               \
		else                                                                               \
			TILE(N, false, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);              \
		break
#define TILE_R(NAME, TILE, T, MT)                                                                  \
	AVX512 static void NAME(int R, bool full, dim_t kc, const T *x, inc_t rsx, inc_t csx,      \
	                        const T *v, inc_t ldv, T *o, inc_t ldo, MT m0, MT m1, bool add)    \
	{                                                                                          \
		switch (R) {                                                                       \
			TILE_CASE(TILE, 12);                                                       \
			TILE_CASE(TILE, 11);                                                       \
			TILE_CASE(TILE, 10);                                                       \
			TILE_CASE(TILE, 9);                                                        \
			TILE_CASE(TILE, 8);                                                        \
			TILE_CASE(TILE, 7);                                                        \
			TILE_CASE(TILE, 6);                                                        \
			TILE_CASE(TILE, 5);                                                        \
			TILE_CASE(TILE, 4);                                                        \
			TILE_CASE(TILE, 3);                                                        \
			TILE_CASE(TILE, 2);                                                        \
		default:                                                                           \
			TILE(1, full, kc, x, rsx, csx, v, ldv, o, ldo, m0, m1, add);               \
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

/* What the threads of one product share (each counter on its own cache
 * line): the panels of a copy made before the products, claimed in order
 * and counted when made, and the threads through with their blocks. */
typedef struct work {
	_Alignas(64) atomic_long pack;   /* the next panel to copy */
	_Alignas(64) atomic_long packed; /* panels copied */
	_Alignas(64) atomic_int done;    /* threads through */
} work;

/* The end of a thread's part of a product.  The first thread then waits
 * (a spin of at most about 10^5 cycles) until the others are through, so
 * that it reaches the parallel region's closing barrier last: with
 * OMP_WAIT_POLICY=passive a thread that waits at a barrier sleeps, and
 * waking the first one costs it 5 to 20 us on a virtual machine, where
 * the others only go back to sleep. */
static void finish(work *w)
{
	const int th = omp_get_num_threads();
	atomic_fetch_add_explicit(&w->done, 1, memory_order_release);
	if (th == 1 || omp_get_thread_num() != 0)
		return;
	const unsigned long long t0 = __rdtsc();
	while (atomic_load_explicit(&w->done, memory_order_acquire) < th && __rdtsc() - t0 < 100000)
		_mm_pause();
}

/* dst[c ldd + r] = src[r rs + c cs] for r0 <= r < r1, c < cols (a value
 * moves, so any order gives the same bits) */
#define TRANSPOSE_SCALAR(c0, c1, r0, r1)                                                           \
	for (dim_t c = (c0); c < (c1); c++)                                                        \
		for (dim_t r = (r0); r < (r1); r++)                                                \
	dst[c * ldd + r] = src[r * rs + c * cs]

static void transpose_f64(dim_t r0, dim_t r1, dim_t cols, const double *src, inc_t rs, inc_t cs,
                          double *dst, inc_t ldd)
{
	TRANSPOSE_SCALAR(0, cols, r0, r1);
}

/* floats: blocks of 8 x 8 through registers where src's rows are
 * contiguous (cs 1: A by rows, B^T by rows, C^T), the edges one by one */
AVX512 static void transpose_f32(dim_t r0, dim_t r1, dim_t cols, const float *src, inc_t rs,
                                 inc_t cs, float *dst, inc_t ldd)
{
	if (cs != 1) {
		TRANSPOSE_SCALAR(0, cols, r0, r1);
		return;
	}
	const dim_t r8 = r0 + (r1 - r0) / 8 * 8, c8 = cols / 8 * 8;
	/* dst's rows one after the other, so that its lines are written whole */
	for (dim_t cb = 0; cb < c8; cb += 8)
		for (dim_t rb = r0; rb < r8; rb += 8) {
			__m256 x[8], t[8], u[8];
			for (int i = 0; i < 8; i++)
				x[i] = _mm256_loadu_ps(src + (rb + i) * rs + cb);
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
				_mm256_storeu_ps(dst + (cb + j) * ldd + rb,
				                 _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
				_mm256_storeu_ps(dst + (cb + j + 4) * ldd + rb,
				                 _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
			}
		}
	TRANSPOSE_SCALAR(c8, cols, r0, r8);
	TRANSPOSE_SCALAR(0, cols, r8, r1);
}

/* O (rows x cols) = X V over k, X(r, p) at x[r rsx + p csx], V(p, j) at
 * v[p ldv + j], on the threads of the enclosing parallel region (or one);
 * O by rows (O(r, j) at o[r ldo + j]); with dst, the thread's share of O
 * then transposed to dst (O(r, j) at dst[j ldd + r]) once its k blocks are
 * done (a block scattered in columns after every k block took longer than
 * its products).
 *
 * Each thread takes a contiguous share of the rows of blocks where there
 * are at least as many rows as columns, else of the columns of blocks, so
 * that it reads its own share of the larger operand; the first thread the
 * larger share, as the others start later (they are woken).  With pk, V
 * is copied first, a column of blocks at a time by the thread that takes
 * it, from ps (V(p, j) at ps[j prs + p pcs]) to pk (2 VL columns by k for
 * each).  The first k block of a block of O is stored, the others added
 * in order: whichever thread makes a block, its bits are the same. */
#define CORE(NAME, T, VL, MT, TILES, TRANSPOSE)                                                    \
	/* one block of O: rows from i, columns from j, k from p to pe; V's                        \
	 * columns from j at vj */                                                                 \
	AVX512 INLINE void NAME##_block(dim_t rows, dim_t cols, dim_t i, dim_t j, dim_t p,         \
	                                dim_t pe, const T *x, inc_t rsx, inc_t csx, const T *vj,   \
	                                inc_t ldv, T *o, inc_t ldo)                                \
	{                                                                                          \
		const dim_t w = cols - j;                                                          \
		const int r = rows - i < ROWS ? (int)(rows - i) : ROWS;                            \
		TILES(r, w >= 2 * VL, pe - p, x + i * rsx + p * csx, rsx, csx, vj + p * ldv, ldv,  \
		      o + i * ldo + j, ldo, (MT)lanes(w), (MT)lanes(w - VL), p > 0);               \
	}                                                                                          \
                                                                                                   \
	AVX512 static void NAME(dim_t rows, dim_t cols, dim_t k, const T *x, inc_t rsx, inc_t csx, \
	                        const T *v, inc_t ldv, T *o, inc_t ldo, T *dst, inc_t ldd,         \
	                        dim_t kc, dim_t kc_max, T *pk, const T *ps, inc_t prs, inc_t pcs)  \
	{                                                                                          \
		const dim_t rb = (rows + ROWS - 1) / ROWS, cb = (cols + 2 * VL - 1) / (2 * VL);    \
		const dim_t th = omp_get_num_threads(), me = omp_get_thread_num();                 \
		const dim_t n = rows >= cols ? rb : cb;                                            \
		const dim_t u0 = n - n * (th - me) / th, u1 = n - n * (th - me - 1) / th;          \
		if (rows >= cols) { /* rows of blocks, V's k block in cache across them */         \
			for (dim_t p = 0, pe; p < k; p = pe) {                                     \
				pe = block_end(p, k, kc, kc_max);                                  \
				for (dim_t cj = 0; cj < cb; cj++)                                  \
					for (dim_t ri = u0; ri < u1; ri++)                         \
						NAME##_block(rows, cols, ri *ROWS, cj * 2 * VL, p, \
						             pe, x, rsx, csx, v + cj * 2 * VL,     \
						             ldv, o, ldo);                         \
			}                                                                          \
			const dim_t r1 = u1 * ROWS < rows ? u1 * ROWS : rows;                      \
			if (dst && u0 * ROWS < r1)                                                 \
				TRANSPOSE(u0 *ROWS, r1, cols, o, ldo, 1, dst, ldd);                \
			return;                                                                    \
		}                                                                                  \
		/* columns of blocks */                                                            \
		for (dim_t cj = u0; cj < u1; cj++) {                                               \
			const dim_t j = cj * 2 * VL;                                               \
			const T *vj = v + j;                                                       \
			inc_t ld = ldv;                                                            \
			if (pk) {                                                                  \
				T *pan = pk + cj * k * 2 * VL;                                     \
				TRANSPOSE(0, cols - j < 2 * VL ? cols - j : 2 * VL, k,             \
				          ps + j * prs, prs, pcs, pan, 2 * VL);                    \
				vj = pan, ld = 2 * VL;                                             \
			}                                                                          \
			for (dim_t p = 0, pe; p < k; p = pe) {                                     \
				pe = block_end(p, k, kc, kc_max);                                  \
				for (dim_t ri = 0; ri < rb; ri++)                                  \
					NAME##_block(rows, cols, ri *ROWS, j, p, pe, x, rsx, csx,  \
					             vj, ld, o, ldo);                              \
			}                                                                          \
		}                                                                                  \
		const dim_t c0 = u0 * 2 * VL, c1 = u1 * 2 * VL < cols ? u1 * 2 * VL : cols;        \
		if (dst && c0 < c1)                                                                \
			TRANSPOSE(0, rows, c1 - c0, o + c0, ldo, 1, dst + c0 * ldd, ldd);          \
	}

CORE(core_f32, float, 16, __mmask16, tiles_f32, transpose_f32)
CORE(core_f64, double, 8, __mmask8, tiles_f64, transpose_f64)

/* how the operands are laid out for the core (see SMALL) */
typedef struct layout {
	bool by_rows, copy_a, copy_b, transposed;
	/* the copy made by the core, each thread copying the panels it uses
	 * (the copied operand is on the side of C's longer dimension) */
	bool own;
	/* else, on more than one thread: each thread copies the whole operand
	 * for itself (see layout_of) */
	bool priv;
} layout;

/* the elements of the copy, in panels 2 VL (128 bytes) wide where the
 * threads make their own */
static dim_t copy_size(dim_t m, dim_t n, dim_t k, layout l, size_t elem)
{
	const dim_t w = (dim_t)(128 / elem), r = l.copy_a ? m : l.copy_b ? n : 0;
	return k * (l.own ? (r + w - 1) / w * w : r);
}

size_t nb__gemm_private_max = (size_t)8 << 20;

static layout layout_of(dim_t m, dim_t n, dim_t k, inc_t rsa, inc_t csb, int threads, size_t elem)
{
	layout l = {.by_rows = csb == 1};
	const bool by_cols = !l.by_rows && rsa == 1;
	if (!l.by_rows && !by_cols) {
		/* what each copy moves: A^T and C^T, or B.  On one thread the
		 * smaller; on more, the one each thread makes for itself unless it
		 * moves more than twice as much: no thread then waits for
		 * another's copy */
		const dim_t ca = m * (k + n), cb = k * n;
		if (threads > 1 && n > m && cb <= 2 * ca)
			l.copy_b = true;
		else if (threads > 1 && m > n && ca <= 2 * cb)
			l.copy_a = true;
		else
			l.copy_a = ca < cb, l.copy_b = !l.copy_a;
		l.own = l.copy_b ? n > m : m > n;
		/* Every thread reads all of a copy that is not its own.  Made
		 * once in shared panels, the panels another core wrote cost it
		 * more to read than a copy of its own costs to make (the MLP's
		 * 64 x 256 x 784 on two threads: 0.105 ms with a shared copy of
		 * A, 0.069 with one each; Xeon, docs/performance.md), and no
		 * thread waits for another's panels.  Up to
		 * nb__gemm_private_max bytes for all the copies together. */
		l.priv = threads > 1 && !l.own &&
		         (size_t)copy_size(m, n, k, l, elem) * elem * (size_t)threads <=
		             nb__gemm_private_max;
	}
	l.transposed = by_cols || l.copy_a;
	return l;
}

/* the elements of scratch space a product needs on `threads` threads: the
 * copy (one a thread when each makes its own), and C^T where C is
 * transposed */
static size_t scratch(dim_t m, dim_t n, dim_t k, layout l, int threads, size_t elem)
{
	return (size_t)copy_size(m, n, k, l, elem) * (size_t)(l.priv ? threads : 1) +
	       (size_t)(l.transposed ? m * n : 0);
}

size_t nb__gemm_small_bytes(dim_t m, dim_t n, dim_t k, inc_t rsa, inc_t csb, int threads,
                            size_t elem)
{
	if (m <= 0 || n <= 0 || k <= 0 || threads < 1)
		return 0;
	return scratch(m, n, k, layout_of(m, n, k, rsa, csb, threads, elem), threads, elem) * elem;
}

/* C (m x n, by rows, ldc) = op(A) op(B): A(i, p) at a[i rsa + p csa],
 * B(p, j) at b[p rsb + j csb].
 *   B by rows (csb 1): C = A B directly.
 *   A by columns (rsa 1): C^T = B^T A^T.
 *   neither: A copied by columns (then C^T = B^T A^T) or B by rows (then
 *   C = A B), see layout_of: by the threads in the core's columns of
 *   blocks (own), else first: a whole copy by each thread for itself
 *   (priv), or one in panels of 2 VL that the threads claim.
 * C^T goes to scratch space, each thread's share transposed into C when
 * the thread has made it.  No thread waits for another but for the
 * panels of a shared copy and at the end (see finish).
 * The scratch space is ws when it has room, else allocated. */
#define SMALL(NAME, T, VL, CORE, TRANSPOSE)                                                        \
	bool NAME(dim_t m, dim_t n, dim_t k, const T *a, inc_t rsa, inc_t csa, const T *b,         \
	          inc_t rsb, inc_t csb, T *c, inc_t ldc, int threads, dim_t kc, dim_t kc_max,      \
	          void *ws, size_t ws_bytes)                                                       \
	{                                                                                          \
		if (m <= 0 || n <= 0 || k <= 0 || kc <= 0 || kc_max < kc)                          \
			return false;                                                              \
		const layout l = layout_of(m, n, k, rsa, csb, threads, sizeof(T));                 \
		const size_t need = scratch(m, n, k, l, threads, sizeof(T)) * sizeof(T);           \
		T *scr = ws, *own = NULL;                                                          \
		if (need > ws_bytes && !(scr = own = malloc(need)))                                \
			return false;                                                              \
		const dim_t cs = copy_size(m, n, k, l, sizeof(T));                                 \
		T *pk = l.own ? scr : NULL, *ct = scr + cs * (l.priv ? threads : 1);               \
		/* the copy made first: A^T (k x m by rows) from A's rows, or B                    \
		 * (k x n by rows) from B^T's rows, in panels of 2 VL of those rows */             \
		const dim_t pr = l.own ? 0 : l.copy_a ? m : l.copy_b ? n : 0;                      \
		const dim_t panels = (pr + 2 * VL - 1) / (2 * VL);                                 \
		work w = {0};                                                                      \
		_Pragma("omp parallel num_threads(threads) if (threads > 1)")                      \
		{                                                                                  \
			/* each thread's own copy, or the panels the threads share */              \
			T *packed = l.priv ? scr + cs * omp_get_thread_num() : scr;                \
			for (dim_t mine = 0, u;                                                    \
			     (u = l.priv ? mine++                                                  \
			                 : atomic_fetch_add_explicit(                              \
			                       &w.pack, 1, memory_order_relaxed)) < panels;) {     \
				const dim_t r0 = u * 2 * VL,                                       \
				            r1 = r0 + 2 * VL < pr ? r0 + 2 * VL : pr;              \
				if (l.copy_a)                                                      \
					TRANSPOSE(r0, r1, k, a, rsa, csa, packed, m);              \
				else                                                               \
					TRANSPOSE(r0, r1, k, b, csb, rsb, packed, n);              \
				if (!l.priv)                                                       \
					atomic_fetch_add_explicit(&w.packed, 1,                    \
					                          memory_order_release);           \
			}                                                                          \
			/* the others' panels, being copied now */                                 \
			while (!l.priv &&                                                          \
			       atomic_load_explicit(&w.packed, memory_order_acquire) < panels)     \
				_mm_pause();                                                       \
			if (l.by_rows)                                                             \
				CORE(m, n, k, a, rsa, csa, b, rsb, c, ldc, NULL, 0, kc, kc_max,    \
				     NULL, NULL, 0, 0);                                            \
			else if (l.copy_b)                                                         \
				CORE(m, n, k, a, rsa, csa, packed, n, c, ldc, NULL, 0, kc, kc_max, \
				     pk, b, csb, rsb);                                             \
			else /* C^T (n x m) = B^T A^T */                                           \
				CORE(n, m, k, b, csb, rsb, l.copy_a ? packed : a,                  \
				     l.copy_a ? m : csa, ct, m, c, ldc, kc, kc_max, pk, a, rsa,    \
				     csa);                                                         \
			finish(&w);                                                                \
		}                                                                                  \
		free(own);                                                                         \
		return true;                                                                       \
	}

SMALL(nb__gemm_small_f32, float, 16, core_f32, transpose_f32)
SMALL(nb__gemm_small_f64, double, 8, core_f64, transpose_f64)

#endif
