/*
 * nabla bench — training-speed and GEMM-throughput measurements.  Compare
 * with the PyTorch scripts in shared/bench side by side, in one run.
 */
#include "train.h"

#include <blis.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct bench_args {
	const char *model;
	int epochs, repeat, threads;
	bool json;
} bench_args;

static double peak_rss_mib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0;
}

/* XOR, full batch of 4, SGD lr 0.5: per-op overhead (torch_xor.py) */
static int bench_xor(const bench_args *b)
{
	train_args a = {.model = "xor", .seed = 1, .dtype = NB_F32, .lr = 0.5};
	model m = {0};
	if (build_xor(&m, &a) < 0 || !(m.opt = nb_sgd(m.g, m.loss, (nb_sgd_opts){.lr = a.lr})))
		return report_graph_error(m.g);
	int epochs = b->epochs ? b->epochs : 10000;
	nb_eval(m.loss);
	double loss0 = nb_item(m.loss);
	double t0 = now_seconds();
	for (int e = 0; e < epochs; e++)
		nb_step(m.opt);
	double total = now_seconds() - t0;
	double out[4];
	nb_eval(m.out);
	nb_read_f64(m.out, out, 4);
	nb_eval(m.loss);
	bool solved = true;
	for (int i = 0; i < 4; i++)
		solved &= (out[i] > 0.5) == (i == 1 || i == 2);
	if (b->json)
		printf("{\"bench\": \"nabla_xor_2_2_1\", \"epochs\": %d, \"total_s\": %.4f, "
		       "\"us_per_epoch\": %.3f, \"loss_initial\": %.5f, \"loss_final\": %.5f, "
		       "\"solved\": %s, \"steps_in_schedule\": %d, \"peak_rss_mib\": %.1f}\n",
		       epochs, total, total / epochs * 1e6, loss0, nb_item(m.loss), solved ? "true" : "false",
		       nb_program_num_steps(nb_optim_program(m.opt)), peak_rss_mib());
	else
		printf("xor: %d epochs in %.4f s (%.3f us/epoch), loss %.4f -> %.5f, solved=%s\n", epochs,
		       total, total / epochs * 1e6, loss0, nb_item(m.loss), solved ? "yes" : "no");
	nb_graph_free(m.g);
	return 0;
}

/* 64x784 . 784x256 in f32: nabla's matmul op against bli_sgemm called
 * directly on the same buffers.  Best of `repeat` rounds each. */
static int bench_matmul(const bench_args *b)
{
	const int M = 64, K = 784, N = 256;
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(M, K)), *w = nb_input(g, "w", NB_SHAPE(K, N));
	nb_tensor *y = nb_matmul(x, w);
	nb_program *p = nb_compile(g, &y, 1);
	if (!p)
		return report_graph_error(g);
	nb_init_tensor(x, NB_UNIFORM(-1, 1));
	nb_init_tensor(w, NB_UNIFORM(-1, 1));
	float *c = malloc(sizeof(float) * M * N);
	float one = 1, zero = 0;
	int iters = b->epochs ? b->epochs : 2000, rounds = b->repeat ? b->repeat : 5;
	double best_nb = INFINITY, best_raw = INFINITY;
	for (int r = 0; r < rounds; r++) {
		double t0 = now_seconds();
		for (int i = 0; i < iters; i++)
			nb_run(p);
		double t1 = now_seconds();
		for (int i = 0; i < iters; i++)
			bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &one, nb_data(x), K, 1,
			          nb_data(w), N, 1, &zero, c, N, 1);
		double t2 = now_seconds();
		best_nb = fmin(best_nb, t1 - t0);
		best_raw = fmin(best_raw, t2 - t1);
	}
	double flops = 2.0 * M * N * K * iters;
	double gf_nb = flops / best_nb * 1e-9, gf_raw = flops / best_raw * 1e-9;
	if (b->json)
		printf("{\"bench\": \"matmul_64x784x256_f32\", \"threads\": %d, \"iters\": %d, "
		       "\"nabla_gflops\": %.2f, \"blis_gflops\": %.2f, \"ratio\": %.4f}\n",
		       nb_get_num_threads(), iters, gf_nb, gf_raw, gf_nb / gf_raw);
	else
		printf("matmul 64x784 . 784x256 f32, %d threads: nabla %.2f GFLOP/s, raw BLIS %.2f "
		       "GFLOP/s, ratio %.1f%%\n",
		       nb_get_num_threads(), gf_nb, gf_raw, 100 * gf_nb / gf_raw);
	free(c);
	nb_graph_free(g);
	return 0;
}

typedef struct bench_entry {
	const char *name, *summary;
	int (*run)(const bench_args *b);
} bench_entry;

static const bench_entry benches[] = {
    {"xor", "2-2-1 sigmoid MLP, 4 samples, 10000 epochs (compare torch_xor.py)", bench_xor},
    {"matmul", "64x784 . 784x256 f32 through nabla vs raw bli_sgemm", bench_matmul},
};

static void usage(FILE *fp)
{
	fprintf(fp, "usage: nabla bench --model NAME [--epochs N] [--repeat R] [--threads N] [--json]\n\n"
	            "Measure speed; compare against shared/bench/torch_*.py run side by side.\n\n"
	            "  --epochs N   epochs (xor) or iterations (matmul)\n"
	            "  --repeat R   rounds, best one reported (matmul; default 5)\n"
	            "  --threads N  threads (default: all cores)\n"
	            "  --json       one JSON object on stdout\n\nmodels:\n");
	for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
		fprintf(fp, "  %-8s %s\n", benches[i].name, benches[i].summary);
}

int cmd_bench(int argc, char **argv)
{
	bench_args b = {.model = NULL};
	for (int i = 1; i < argc; i++) {
		const char *v;
		long n;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			b.json = true;
		} else if ((v = cli_opt_value(argc, argv, &i, "--model"))) {
			b.model = v;
		} else if ((v = cli_opt_value(argc, argv, &i, "--epochs"))) {
			if (!cli_parse_int("--epochs", v, &n) || n <= 0)
				return 2;
			b.epochs = (int)n;
		} else if ((v = cli_opt_value(argc, argv, &i, "--repeat"))) {
			if (!cli_parse_int("--repeat", v, &n) || n <= 0)
				return 2;
			b.repeat = (int)n;
		} else if ((v = cli_opt_value(argc, argv, &i, "--threads"))) {
			if (!cli_parse_int("--threads", v, &n) || n < 0)
				return 2;
			b.threads = (int)n;
		} else {
			fprintf(stderr, "nabla bench: unknown option '%s' (see nabla bench --help)\n", argv[i]);
			return 2;
		}
	}
	if (!b.model) {
		usage(stderr);
		return 2;
	}
	nb_set_num_threads(b.threads);
	for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
		if (!strcmp(benches[i].name, b.model))
			return benches[i].run(&b);
	fprintf(stderr, "nabla bench: unknown model '%s' (see nabla bench --help)\n", b.model);
	return 2;
}
