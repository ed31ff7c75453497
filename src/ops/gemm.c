/*
 * Which GEMM micro-kernel BLIS runs for us (gemm.h).
 *
 * BLIS picks a sub-configuration for the CPU when it starts.  Debian's
 * BLIS 0.9 has AVX-512 configurations only for Intel (skx, knl), and picks
 * one only when it can tell the number of FMA units from the CPU's brand
 * string, which a virtual machine often hides; AMD's Zen 4 gets zen3 (AVX2).
 * Where the CPU has AVX-512F and BLIS chose a configuration without it, we
 * copy BLIS's context, give it our micro-kernels (gemm_avx512.c) with their
 * register and cache block sizes, and pass that context to the expert
 * interface (bli_?gemm_ex).  At the avx512 level, whichever packed kernel
 * runs, products with a small dimension (dense layers) go to our
 * small-matrix kernels (gemm_small.c) instead of BLIS's small-matrix
 * ("sup") path, whose kernels are the AVX2 ones where BLIS chose haswell
 * or zen3.
 *
 * Our packed kernels give BLIS's packed path's results to the bit (see the
 * block sizes below), and so do our small-matrix ones, so which packed
 * kernel runs is a matter of speed alone, decided by measurement:
 * where 512-bit FMAs run at least 1.4 times as fast as 256-bit ones (two
 * 512-bit FMA units, as on Intel's server cores), ours; where they run at
 * the same rate (AMD's Zen 4 splits a 512-bit FMA over its two 256-bit
 * units), BLIS's tuned AVX2 kernels.  NABLA_GEMM=avx512 or blis decides
 * instead (tests, comparisons).
 */
#include "ops/gemm.h"
#include "graph/internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* the ISA levels' names, by level (nb_isa, NABLA_ISA) */
static const char *const isa_names[] = {"baseline", "avx2", "avx512"};

static cntx_t avx512_cntx;
static bool use_avx512;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* the vector level the CPU has, capped by NABLA_ISA (gemm.h) */
static int cpu_level(void)
{
	int have = 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		have = 1;
	if (have && __builtin_cpu_supports("avx512f"))
		have = 2;
#endif
	int cap = nb__isa_from_name(getenv("NABLA_ISA"));
	return cap >= 0 && cap < have ? cap : have;
}

static int level;

_Thread_local int nb__isa_ran;

#if NB_GEMM_AVX512 /* what init uses where nabla's AVX-512 kernels exist */
static bool blis_has_avx512(void)
{
	arch_t id = bli_arch_query_id();
	return id == BLIS_ARCH_SKX || id == BLIS_ARCH_KNL;
}

/* a block size of ours for float and double; the complex types keep BLIS's */
static void block(blksz_t *b, bszid_t id, dim_t s, dim_t d, const cntx_t *def)
{
	cntx_t *cx = (cntx_t *)def;
	bli_blksz_init(b, s, d, bli_cntx_get_blksz_def_dt(BLIS_SCOMPLEX, id, cx),
	               bli_cntx_get_blksz_def_dt(BLIS_DCOMPLEX, id, cx), s, d,
	               bli_cntx_get_blksz_max_dt(BLIS_SCOMPLEX, id, cx),
	               bli_cntx_get_blksz_max_dt(BLIS_DCOMPLEX, id, cx));
}

/* whether 512-bit FMAs are worth it here: the best of five interleaved
 * rounds of each width, about 10 ms in all */
static bool wide_fma_faster(void)
{
#if NB_GEMM_AVX512
	double r256 = 0, r512 = 0;
	for (int r = 0; r < 5; r++) {
		double a = nb__fma_gflops(256, 100000), b = nb__fma_gflops(512, 100000);
		r256 = a > r256 ? a : r256;
		r512 = b > r512 ? b : r512;
	}
	return r512 >= 1.4 * r256;
#else
	return false;
#endif
}

static bool want_avx512(void)
{
	const char *s = getenv("NABLA_GEMM");
	if (s && !strcmp(s, "avx512"))
		return true;
	if (s && !strcmp(s, "blis"))
		return false;
	return wide_fma_faster();
}
#endif

static void init(void)
{
	level = cpu_level();
#if NB_GEMM_AVX512
	if (level < 2 || blis_has_avx512() || !want_avx512())
		return;
	const cntx_t *def = bli_gks_query_cntx();
	if (!def)
		return;
	avx512_cntx = *def;
	cntx_t *cx = &avx512_cntx;
	/* float: MR 32, NR 12; double: MR 16, NR 12.  KC is BLIS's own: each
	 * element of C is then summed in the same blocks of k, each block as
	 * one FMA chain in order, and added to C the same way, so the results
	 * are bitwise those of BLIS's kernels and the choice of kernel never
	 * changes a result (test_gemm checks it).  MC keeps an A block in L2
	 * (384 x 256 x 4 bytes = 384 KiB), NC the B panel in L3. */
	blksz_t mr, nr, mc, kc, nc;
	block(&mr, BLIS_MR, 32, 16, def);
	block(&nr, BLIS_NR, 12, 12, def);
	block(&mc, BLIS_MC, 384, 192, def);
	kc = *bli_cntx_get_blksz(BLIS_KC, (cntx_t *)def); /* default and maximum */
	block(&nc, BLIS_NC, 3072, 3072, def);
	bli_cntx_set_blkszs(BLIS_NAT, 5, BLIS_NC, &nc, BLIS_NR, BLIS_KC, &kc, BLIS_KR, BLIS_MC, &mc,
	                    BLIS_MR, BLIS_NR, &nr, BLIS_NR, BLIS_MR, &mr, BLIS_MR, cx);
	/* BLIS takes kernels as void *: copy the bits (ISO C has no cast from
	 * function to object pointers) */
	const sgemm_ukr_ft sk = nb__sgemm_avx512_32x12;
	const dgemm_ukr_ft dk = nb__dgemm_avx512_16x12;
	void_fp sf, df;
	_Static_assert(sizeof sf == sizeof sk && sizeof df == sizeof dk, "pointer sizes");
	memcpy(&sf, &sk, sizeof sf);
	memcpy(&df, &dk, sizeof df);
	bli_cntx_set_l3_nat_ukrs(2, BLIS_GEMM_UKR, BLIS_FLOAT, sf, FALSE, BLIS_GEMM_UKR,
	                         BLIS_DOUBLE, df, FALSE, cx);
	use_avx512 = true;
#endif
}

cntx_t *nb__gemm_cntx(int isa)
{
	pthread_once(&once, init);
	return use_avx512 && isa >= 2 ? &avx512_cntx : NULL;
}

/* Products with a dimension up to this go through gemm_small.c at the
 * avx512 level: a dense layer's 64 x 784 x 256 runs there 1.2 to 2 times
 * as fast as through BLIS's small-matrix or packed paths; at
 * 256 x 1024 x 1024 the packed path is 1.2 times as fast (Xeon, AVX-512,
 * docs/performance.md).  The level alone decides it, not which packed
 * kernel runs: that choice is a timing measurement, which a busy machine
 * can tip, and the small-matrix kernels sum in other blocks than BLIS's
 * small-matrix path, so the bits would follow it. */
#define SMALL_DIM 128

/* whether a product goes through gemm_small.c at level isa */
static bool small(int isa, dim_t m, dim_t n, dim_t k)
{
	return NB_GEMM_AVX512 && isa >= 2 && nb__isa_level() >= 2 &&
	       (m <= SMALL_DIM || n <= SMALL_DIM || k <= SMALL_DIM);
}

#if NB_GEMM_AVX512
size_t nb__gemm_scratch(int isa, int threads, dim_t m, dim_t n, dim_t k, inc_t rsa, inc_t csb,
                        size_t elem)
{
	return small(isa, m, n, k) ? nb__gemm_small_bytes(m, n, k, rsa, csb, threads, elem) : 0;
}
#else
size_t nb__gemm_scratch(int isa, int threads, dim_t m, dim_t n, dim_t k, inc_t rsa, inc_t csb,
                        size_t elem)
{
	(void)isa, (void)threads, (void)m, (void)n, (void)k, (void)rsa, (void)csb, (void)elem;
	return 0;
}
#define nb__gemm_small_f32(...) false
#define nb__gemm_small_f64(...) false
#endif

#define GEMM(NAME, T, DT, SMALL, EX)                                                               \
	void NAME(int isa, int threads, dim_t m, dim_t n, dim_t k, const T *a, inc_t rsa,          \
	          inc_t csa, const T *b, inc_t rsb, inc_t csb, T *c, inc_t ldc, void *ws,          \
	          size_t ws_bytes)                                                                 \
	{                                                                                          \
		(void)ws, (void)ws_bytes; /* unused without the small-matrix kernels */            \
		cntx_t *cx = nb__gemm_cntx(isa);                                                   \
		/* KC: the packed path's, ours or BLIS's (the same) */                             \
		cntx_t *kx = !small(isa, m, n, k) ? NULL                                           \
		             : cx                 ? cx                                             \
		                                  : (cntx_t *)bli_gks_query_cntx();                                \
		if (kx && SMALL(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, threads,                \
		                bli_cntx_get_blksz_def_dt(DT, BLIS_KC, kx),                        \
		                bli_cntx_get_blksz_max_dt(DT, BLIS_KC, kx), ws, ws_bytes))         \
			return;                                                                    \
		T one = 1, zero = 0;                                                               \
		rntm_t r;                                                                          \
		EX(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &one, (T *)a, rsa, csa, (T *)b,  \
		   rsb, csb, &zero, c, ldc, 1, cx, nb__gemm_rntm(&r, threads));                    \
	}

GEMM(nb__sgemm, float, BLIS_FLOAT, nb__gemm_small_f32, bli_sgemm_ex)
GEMM(nb__dgemm, double, BLIS_DOUBLE, nb__gemm_small_f64, bli_dgemm_ex)

const char *nb_gemm_kernel(void)
{
	return nb__gemm_cntx(nb__isa_level()) ? "avx512" : "blis";
}

const char *nb_blis_config(void)
{
	return bli_arch_string(bli_arch_query_id());
}

int nb__isa_level(void)
{
	pthread_once(&once, init);
	return level;
}

int nb__isa_from_name(const char *s)
{
	for (int i = 0; s && i < 3; i++)
		if (!strcmp(s, isa_names[i]))
			return i;
	return -1;
}

const char *nb_isa(void)
{
	return isa_names[nb__isa_level()];
}
