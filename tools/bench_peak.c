/*
 * nabla bench --model peak | gemm: the machine's fp32 FMA peak, measured,
 * and large sgemms through nabla's GEMM path against it.
 *
 * The peak: every thread runs 12 independent chains of vector FMAs
 * (nb__fma_gflops, src/ops/gemm_avx512.c), with 256-bit vectors and, where
 * the CPU has AVX-512F, 512-bit ones, all threads at once.  GFLOP/s = 2 x lanes x FMAs / time,
 * summed over the threads.  On Zen 4 the two rates are about equal (a 512-bit FMA takes both
 * 256-bit units); on Intel cores with two 512-bit units the 512-bit rate is about twice the 256-bit
 * one.
 */
#include "bench.h"
#include "train.h"

#include "graph/internal.h"
#include "ops/gemm.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define ITERS 20000000L /* per thread: about 0.1 s at 3 GHz */

/* GFLOP/s of `threads` threads running `bits`-wide FMA chains at once;
 * the best of three rounds */
static double measure(int bits, int threads)
{
	double best = 0;
	for (int r = 0; r < 3; r++) {
		double sum = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sum)
		sum += nb__fma_gflops(bits, ITERS);
		best = fmax(best, sum);
	}
	return best;
}

/* the widest vectors the ISA level allows: 512 at avx512, 256 at avx2 */
static int widest_bits(void)
{
	return nb__isa_level() >= 2 ? 512 : nb__isa_level() == 1 ? 256 : 0;
}

double bench_peak_gflops(void)
{
	static double peak = -1;
	if (peak < 0)
		peak = widest_bits() ? measure(widest_bits(), nb_num_threads()) : NAN;
	return peak;
}

int bench_peak(const bench_args *b)
{
	const int th = nb_num_threads();
	const bool has512 = nb__isa_level() >= 2, has256 = nb__isa_level() >= 1;
	double p256 = has256 ? measure(256, th) : NAN, p512 = has512 ? measure(512, th) : NAN;
	if (b->json) {
		printf("{\"bench\": \"fma_peak_f32\", \"threads\": %d, \"isa\": \"%s\", "
		       "\"gflops_256\": ",
		       th, nb_isa());
		printf(has256 ? "%.1f" : "null", p256);
		printf(", \"gflops_512\": ");
		printf(has512 ? "%.1f" : "null", p512);
		printf("}\n");
		return 0;
	}
	printf("fp32 FMA peak, %d threads (isa %s):\n", th, nb_isa());
	if (has256)
		printf("  256-bit vectors: %.1f GFLOP/s\n", p256);
	if (has512)
		printf("  512-bit vectors: %.1f GFLOP/s\n", p512);
	if (!has256)
		printf("  no AVX2/FMA at this ISA level: nothing to measure\n");
	return 0;
}

/* best time of sgemm n x n x n through ctx, over `rounds` rounds
 * alternating with the other path (the caller) */
static double sgemm_time(int n, const float *a, const float *bm, float *c, cntx_t *ctx)
{
	float one = 1, zero = 0;
	double t0 = omp_get_wtime();
	bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, n, n, n, &one, (float *)a, n, 1,
	             (float *)bm, n, 1, &zero, c, n, 1, ctx, NULL);
	return omp_get_wtime() - t0;
}

int bench_gemm(const bench_args *b)
{
	static const int sizes[] = {512, 1024, 2048};
	const int rounds = b->repeat ? b->repeat : 5;
	const double peak = bench_peak_gflops();
	cntx_t *ours = nb__gemm_cntx(nb__isa_level());
	if (!b->json)
		printf("sgemm n x n x n, %d threads, isa %s, BLIS %s, GEMM kernel %s, "
		       "measured FMA peak %.1f GFLOP/s:\n",
		       nb_num_threads(), nb_isa(), nb_blis_config(), nb_gemm_kernel(), peak);
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		const int n = sizes[s];
		float *a = malloc(sizeof(float) * (size_t)n * n),
		      *bm = malloc(sizeof(float) * (size_t)n * n);
		float *c = malloc(sizeof(float) * (size_t)n * n);
		if (!a || !bm || !c) {
			fprintf(stderr, "nabla bench: out of memory\n");
			free(a), free(bm), free(c);
			return 1;
		}
		for (size_t i = 0; i < (size_t)n * n; i++)
			a[i] = (float)(i % 7) - 3, bm[i] = (float)(i % 5) - 2;
		double best_nb = INFINITY, best_blis = INFINITY;
		for (int r = 0; r < rounds; r++) { /* alternating */
			best_nb = fmin(best_nb, sgemm_time(n, a, bm, c, ours));
			best_blis = fmin(best_blis, sgemm_time(n, a, bm, c, NULL));
		}
		const double fl = 2.0 * n * n * n * 1e-9, g_nb = fl / best_nb,
		             g_blis = fl / best_blis;
		if (b->json) {
			printf(
			    "{\"bench\": \"sgemm_%d\", \"threads\": %d, \"isa\": \"%s\", "
			    "\"blis_config\": \"%s\", \"gemm_kernel\": \"%s\", \"nabla_gflops\": %.1f, "
			    "\"blis_gflops\": %.1f, ",
			    n, nb_num_threads(), nb_isa(), nb_blis_config(), nb_gemm_kernel(), g_nb,
			    g_blis);
			if (isnan(peak)) /* nothing to measure at the baseline */
				printf("\"peak_gflops\": null, \"fraction_of_peak\": null}\n");
			else
				printf("\"peak_gflops\": %.1f, \"fraction_of_peak\": %.3f}\n", peak,
				       g_nb / peak);
		} else if (isnan(peak))
			printf("  %4d: nabla's path %.1f GFLOP/s, BLIS's %s kernel %.1f GFLOP/s\n",
			       n, g_nb, nb_blis_config(), g_blis);
		else
			printf(
			    "  %4d: nabla's path %.1f GFLOP/s (%.0f%% of peak), BLIS's %s kernel "
			    "%.1f GFLOP/s\n",
			    n, g_nb, 100 * g_nb / peak, nb_blis_config(), g_blis);
		free(a), free(bm), free(c);
	}
	return 0;
}
