/* nabla bench: the options every benchmark takes, and the benchmarks
 * defined outside cmd_bench.c. */
#ifndef NB_TOOLS_BENCH_H
#define NB_TOOLS_BENCH_H

#include <nabla.h>
#include <stdbool.h>

typedef struct bench_args {
	const char *model;
	int epochs, repeat, threads, batch, steps, warmup; /* 0 (warmup -1): the default */
	bool json, profile;
	bool grad_norms; /* zoo models: the step with the per-layer gradient statistics */
	const char *data;
	nb_dist *dist;  /* the ranks mpirun started (zoo models: data-parallel) */
	int bucket_kib; /* gradient bucket size under mpirun; 0: the default */
	unsigned given; /* the options given (cmd_bench.c's USE_ bits) */
} bench_args;

/* bench_peak.c: the CPU's FMA peak, and large GEMMs against it */
int bench_peak(const bench_args *b);
int bench_gemm(const bench_args *b);
/* the measured fp32 FMA peak (GFLOP/s) of the widest vectors nabla's ISA
 * level uses, on nb_num_threads() threads; measured once per process */
double bench_peak_gflops(void);

#endif
