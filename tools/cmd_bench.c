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
	int epochs, repeat, threads, batch, steps, warmup;
	bool json;
	const char *data;
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

/* A zoo model: warm-up steps, then timed training steps through nb_fit on
 * the model's data (Fashion-MNIST when present; synthetic CIFAR-shaped data
 * for the resnets, as torch_resnet20.py).  One step = batch gather + forward
 * + backward + update + reading the loss, like the PyTorch scripts. */
static int bench_zoo(const bench_args *b)
{
	const nb_zoo_entry *z = nb_zoo_find(b->model);
	int64_t batch = b->batch ? b->batch : 64;
	int steps = b->steps ? b->steps : (z->c == 3 ? 20 : 200), warm = b->warmup ? b->warmup : 5;
	nb_dataset train = {0};
	char err[512];
	nb_status st;
	if (z->c == 3 || (b->data && !strcmp(b->data, "synthetic")))
		st = nb_synthetic_cifar(4 * batch, 1, &train);
	else
		st = nb_fashion_mnist_load(b->data, true, &train, err, sizeof err);
	if (st) {
		fprintf(stderr, "nabla bench: no data (%s); install dataset-fashion-mnist\n", nb_status_string(st));
		return 1;
	}
	if (z->num_classes == 2) {
		nb_dataset two;
		if (nb_dataset_select_classes(&train, (const int[]){2, 4}, 2, &two) == NB_OK) {
			nb_dataset_free(&train);
			train = two;
		}
	}
	nb_model m;
	st = nb_zoo_build(&m, z->name, NB_F32, batch, 1);
	nb_optim *o = NULL;
	if (!st) {
		if (!strcmp(z->name, "mlp") || z->num_classes == 2)
			o = nb_adam(m.g, m.loss, (nb_adam_opts){.lr = 1e-3});
		else
			o = nb_optimizer(m.g, m.loss, (nb_optim_opts){.kind = NB_OPTIM_MOMENTUM, .lr = z->c == 3 ? 0.1 : 0.01,
			                                              .momentum = 0.9, .weight_decay = z->c == 3 ? 5e-4 : 0});
	}
	if (!o) {
		fprintf(stderr, "nabla bench: %s\n", nb_graph_errmsg(m.g));
		nb_graph_free(m.g);
		nb_dataset_free(&train);
		return 1;
	}
	nb_fit_opts fo = {.epochs = 1, .seed = 1, .max_batches = warm};
	st = nb_fit(&m, o, &train, fo);
	double t0 = now_seconds();
	int done = 0;
	while (!st && done < steps) {
		fo.max_batches = steps - done;
		int64_t before = nb_optim_steps(o);
		st = nb_fit(&m, o, &train, fo);
		done += (int)(nb_optim_steps(o) - before);
	}
	double dt = now_seconds() - t0;
	if (st) {
		fprintf(stderr, "nabla bench: %s\n", nb_graph_errmsg(m.g));
	} else {
		nb_program *p = nb_optim_program(o);
		double ms = 1e3 * dt / done, sps = (double)done * (double)batch / dt;
		if (b->json)
			printf("{\"bench\": \"nabla_%s\", \"batch\": %lld, \"threads\": %d, \"steps\": %d, "
			       "\"ms_per_step\": %.4f, \"samples_per_s\": %.1f, \"peak_rss_mib\": %.1f, "
			       "\"arena_mib\": %.2f, \"params\": %lld, \"loss\": %.5f}\n",
			       z->name, (long long)batch, nb_get_num_threads(), done, ms, sps, peak_rss_mib(),
			       (double)nb_program_planned_bytes(p) / 1048576.0, (long long)nb_count_params(m.g),
			       nb_item(m.loss));
		else
			printf("%s: batch %lld, %d threads: %.3f ms/step, %.0f samples/s, peak RSS %.1f MiB "
			       "(activations arena %.1f MiB, %d steps in the schedule)\n",
			       z->name, (long long)batch, nb_get_num_threads(), ms, sps, peak_rss_mib(),
			       (double)nb_program_planned_bytes(p) / 1048576.0, nb_program_num_steps(p));
	}
	nb_model_free(&m);
	nb_graph_free(m.g);
	nb_dataset_free(&train);
	return st ? 1 : 0;
}

typedef struct bench_entry {
	const char *name, *summary;
	int (*run)(const bench_args *b);
} bench_entry;

static const bench_entry benches[] = {
    {"xor", "2-2-1 sigmoid MLP, 4 samples, 10000 epochs (compare torch_xor.py)", bench_xor},
    {"matmul", "64x784 . 784x256 f32 through nabla vs raw bli_sgemm", bench_matmul},
    {"mlp", "training steps of the zoo mlp, Adam (compare torch_mlp.py)", bench_zoo},
    {"lenet", "training steps of the zoo lenet, SGD momentum (compare torch_lenet.py)", bench_zoo},
    {"resnet20", "training steps of ResNet-20, synthetic data (compare torch_resnet20.py)", bench_zoo},
    {"resnet50", "training steps of ResNet-50 (CIFAR stem), synthetic data", bench_zoo},
};

static void usage(FILE *fp)
{
	fprintf(fp, "usage: nabla bench --model NAME [--epochs N] [--repeat R] [--threads N] [--json]\n\n"
	            "Measure speed; compare against shared/bench/torch_*.py run side by side.\n\n"
	            "  --epochs N   epochs (xor) or iterations (matmul)\n"
	            "  --repeat R   rounds, best one reported (matmul; default 5)\n"
	            "  --threads N  threads (default: all cores)\n"
	            "  --batch N    batch size (zoo models; default 64)\n"
	            "  --steps N    timed training steps (zoo models; default 200, resnets 20)\n"
	            "  --warmup N   untimed steps first (default 5)\n"
	            "  --data DIR   Fashion-MNIST directory (default: Debian's)\n"
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
		} else if ((v = cli_opt_value(argc, argv, &i, "--batch"))) {
			if (!cli_parse_int("--batch", v, &n) || n <= 0)
				return 2;
			b.batch = (int)n;
		} else if ((v = cli_opt_value(argc, argv, &i, "--steps"))) {
			if (!cli_parse_int("--steps", v, &n) || n <= 0)
				return 2;
			b.steps = (int)n;
		} else if ((v = cli_opt_value(argc, argv, &i, "--warmup"))) {
			if (!cli_parse_int("--warmup", v, &n) || n <= 0)
				return 2;
			b.warmup = (int)n;
		} else if ((v = cli_opt_value(argc, argv, &i, "--data"))) {
			b.data = v;
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
