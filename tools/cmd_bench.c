/*
 * nabla bench — training-speed and GEMM-throughput measurements.  Compare
 * with the PyTorch scripts in shared/bench side by side, in one run.
 */
#include "bench.h"
#include "train.h"

#include "graph/internal.h"

#include <blis.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

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
	double t0 = nb__now();
	for (int e = 0; e < epochs; e++)
		nb_step(m.opt);
	double total = nb__now() - t0;
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
		       epochs, total, total / epochs * 1e6, loss0, nb_item(m.loss),
		       solved ? "true" : "false", nb_program_num_steps(nb_optim_program(m.opt)),
		       peak_rss_mib());
	else
		printf("xor: %d epochs in %.4f s (%.3f us/epoch), loss %.4f -> %.5f, solved=%s\n",
		       epochs, total, total / epochs * 1e6, loss0, nb_item(m.loss),
		       solved ? "yes" : "no");
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
		double t0 = nb__now();
		for (int i = 0; i < iters; i++)
			nb_run(p);
		double t1 = nb__now();
		for (int i = 0; i < iters; i++)
			bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &one, nb_data(x),
			          K, 1, nb_data(w), N, 1, &zero, c, N, 1);
		double t2 = nb__now();
		best_nb = fmin(best_nb, t1 - t0);
		best_raw = fmin(best_raw, t2 - t1);
	}
	double flops = 2.0 * M * N * K * iters;
	double gf_nb = flops / best_nb * 1e-9, gf_raw = flops / best_raw * 1e-9;
	if (b->json)
		printf("{\"bench\": \"matmul_64x784x256_f32\", \"threads\": %d, \"iters\": %d, "
		       "\"nabla_gflops\": %.2f, \"blis_gflops\": %.2f, \"ratio\": %.4f}\n",
		       nb_num_threads(), iters, gf_nb, gf_raw, gf_nb / gf_raw);
	else
		printf("matmul 64x784 . 784x256 f32, %d threads: nabla %.2f GFLOP/s, raw BLIS %.2f "
		       "GFLOP/s, ratio %.1f%%\n",
		       nb_num_threads(), gf_nb, gf_raw, 100 * gf_nb / gf_raw);
	free(c);
	nb_graph_free(g);
	return 0;
}

/* per-step times of a bench run, from nb_fit's on_batch callback */
typedef struct step_clock {
	double last, *ms;
	int n, cap;
} step_clock;

static void on_step(const nb_progress *p, void *user)
{
	(void)p;
	step_clock *c = user;
	double t = nb__now();
	if (c->n < c->cap)
		c->ms[c->n++] = 1e3 * (t - c->last);
	c->last = t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The multiply-adds of a program's convolutions and matrix products, two
 * FLOPs each: what one training step computes, whatever the algorithm
 * (Winograd does fewer multiplications for the same result). */
static double step_flops(const nb_program *p)
{
	double f = 0;
	for (int i = 0; i < p->n; i++) {
		const nb_tensor *t = p->sched[i];
		if (t->op == NB_OP_MATMUL) {
			const nb_shape a = t->in[0]->shape;
			f += (double)t->size * (double)a.d[a.ndim - (t->a.i[0] ? 2 : 1)];
		} else if (t->op == NB_OP_CONV2D || t->op == NB_OP_CONV2D_BACKWARD_INPUT) {
			/* out (y or dx) . w: y's or dy's elements by C/groups kH kW */
			const nb_shape w = t->in[1]->shape;
			const nb_tensor *y = t->op == NB_OP_CONV2D ? t : t->in[0];
			f += (double)y->size * (double)(w.d[1] * w.d[2] * w.d[3]);
		} else if (t->op == NB_OP_CONV2D_BACKWARD_WEIGHT) { /* dw [O, C/g, kH, kW] */
			f += (double)t->in[0]->size * (double)(t->size / t->shape.d[0]);
		}
	}
	return 2 * f;
}

/* A zoo model: warm-up steps, then timed training steps through nb_fit on
 * the model's data (Fashion-MNIST when present; synthetic CIFAR-shaped data
 * for the resnets, as torch_resnet20.py).  One step = batch gather + forward
 * + backward + update + reading the loss, like the PyTorch scripts. */
/* The training set a zoo model's bench runs on (Fashion-MNIST, or
 * synthetic CIFAR-shaped data); nonzero after a message. */
static int bench_data(const bench_args *b, const nb_zoo_entry *z, int64_t batch, nb_dataset *train)
{
	char err[512];
	nb_status st;
	if (z->recipe.data == NB_ZOO_DATA_CIFAR10 || (b->data && !strcmp(b->data, "synthetic"))) {
		if ((st = nb_synthetic_cifar(4 * batch, 1, train)))
			snprintf(err, sizeof err, "synthetic data: %s", nb_status_string(st));
	} else {
		st = nb_fashion_mnist_load(b->data, true, train, err, sizeof err);
	}
	if (st) {
		cli_data_error("bench", z->name, false, err);
		return 1;
	}
	if (z->num_classes == 2) {
		nb_dataset two;
		if (nb_dataset_select_classes(train, (const int[]){2, 4}, 2, &two) == NB_OK) {
			nb_dataset_free(train);
			*train = two;
		}
	}
	return 0;
}

/* A zoo bench's timings, for its report. */
typedef struct zoo_timing {
	int64_t batch; /* global */
	int done, ranks;
	double dt, median;            /* seconds in all; ms of the median step */
	double comm, exposed, hidden; /* allreduce seconds per step, the part waited for */
	double drift;                 /* the most any rank waited per step */
	int64_t allreduces;
} zoo_timing;

/* rank 0's line (or JSON object) for a zoo bench */
static void bench_zoo_report(const bench_args *b, const nb_zoo_entry *z, nb_model *m, nb_program *p,
                             const zoo_timing *t)
{
	double ms = 1e3 * t->dt / t->done, sps = (double)t->done * (double)t->batch / t->dt;
	char dj[256] = "";
	if (t->ranks > 1)
		snprintf(dj, sizeof dj,
		         ", \"ranks\": %d, \"global_batch\": %lld, \"comm_ms_per_step\": %.4f, "
		         "\"exposed_comm_ms_per_step\": %.4f, \"max_rank_wait_ms_per_step\": %.4f, "
		         "\"hidden_share\": %.3f, "
		         "\"allreduces_per_step\": %.1f",
		         t->ranks, (long long)t->batch, 1e3 * t->comm, 1e3 * t->exposed,
		         1e3 * t->drift, t->hidden, t->done ? (double)t->allreduces / t->done : 0);
	/* GFLOP/s at the median step, against the FMA peak of the level's
	 * widest vectors measured now (NaN below AVX2) */
	const double gflop = step_flops(p) / 1e9, gflops = gflop / (t->median / 1e3),
	             peak = bench_peak_gflops();
	if (nb_dist_rank(b->dist) != 0) {
		; /* rank 0 reports */
	} else if (b->json) {
		printf(
		    "{\"bench\": \"nabla_%s\", \"batch\": %lld, \"threads\": %d, \"steps\": %d, "
		    "\"ms_per_step\": %.4f, \"ms_per_step_median\": %.4f, \"samples_per_s\": %.1f, "
		    "\"peak_rss_mib\": %.1f, \"arena_mib\": %.2f, \"params\": %lld, \"loss\": %.5f, "
		    "\"isa\": \"%s\", \"blis_config\": \"%s\", \"gemm_kernel\": \"%s\", "
		    "\"gflop_per_step\": %.6g, \"gflops\": %.2f, ",
		    z->name, (long long)t->batch, nb_num_threads(), t->done, ms, t->median, sps,
		    peak_rss_mib(), (double)nb_program_planned_bytes(p) / 1048576.0,
		    (long long)nb_count_params(nb_model_graph(m)), nb_item(nb_model_loss(m)),
		    nb_isa(), nb_blis_config(), nb_gemm_kernel(), gflop, gflops);
		if (isfinite(peak) && peak > 0)
			printf("\"peak_gflops\": %.1f, \"fraction_of_peak\": %.4f%s}\n", peak,
			       gflops / peak, dj);
		else
			printf("\"peak_gflops\": null, \"fraction_of_peak\": null%s}\n", dj);
	} else if (t->ranks > 1) {
		printf("%s: %d ranks x %d threads, global batch %lld: %.3f ms/step (median "
		       "%.3f), %.0f samples/s; gradient allreduce %.3f ms/step, %.3f ms of it "
		       "exposed (%.0f%% hidden behind the backward pass)\n",
		       z->name, t->ranks, nb_num_threads(), (long long)t->batch, ms, t->median, sps,
		       1e3 * t->comm, 1e3 * t->exposed, 100 * t->hidden);
	} else {
		printf(
		    "%s: batch %lld, %d threads: %.3f ms/step (median %.3f), %.0f samples/s, peak RSS "
		    "%.1f MiB (activations arena %.1f MiB, %d steps in the schedule)\n",
		    z->name, (long long)t->batch, nb_num_threads(), ms, t->median, sps,
		    peak_rss_mib(), (double)nb_program_planned_bytes(p) / 1048576.0,
		    nb_program_num_steps(p));
		printf("%s: %.3f GFLOP per step (convolutions and matrix products), %.1f "
		       "GFLOP/s at the median step",
		       z->name, gflop, gflops);
		if (isfinite(peak) && peak > 0)
			printf(", %.1f%% of the measured FMA peak (%.1f GFLOP/s, isa %s)",
			       100 * gflops / peak, peak, nb_isa());
		printf("\n");
	}
}

/* w[0], w[1]: the least and the most time any rank spent waiting on
 * collectives (each rank's own in both on entry) */
static nb_status bench_rank_waits(nb_dist *d, double w[2])
{
	const int n = nb_dist_size(d);
	double *all = calloc((size_t)n, sizeof *all);
	if (!all)
		return NB_ERR_NOMEM;
	all[nb_dist_rank(d)] = w[0];
	nb_status st = nb_dist_allreduce_sum(d, all, n);
	for (int r = 0; !st && r < n; r++) {
		w[0] = r == 0 || all[r] < w[0] ? all[r] : w[0];
		w[1] = r == 0 || all[r] > w[1] ? all[r] : w[1];
	}
	free(all);
	return st;
}

static int bench_zoo(const bench_args *b)
{
	const nb_zoo_entry *z = nb_zoo_find(b->model);
	int64_t batch = b->batch ? b->batch : 64;
	int steps = b->steps ? b->steps : (z->recipe.data == NB_ZOO_DATA_CIFAR10 ? 20 : 200),
	    warm = b->warmup >= 0 ? b->warmup : 5;
	nb_dataset train = {0};
	if (bench_data(b, z, batch, &train))
		return 1;
	nb_status st = NB_OK;
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, 1);
	/* under mpirun: batch is the global batch, each rank's graph its shard */
	int ranks = nb_dist_size(b->dist);
	nb_model *m = nb_zoo_build(g, z->name, nb_dist_local_batch(b->dist, batch));
	/* the recipe `nabla train` uses, which the PyTorch scripts mirror */
	nb_optim_opts oo = cli_recipe_optim(&z->recipe);
	oo.dist = b->dist;
	nb_optim *o = m ? nb_optimizer(g, nb_model_loss(m), oo) : NULL;
	if (!o) {
		fprintf(stderr, "nabla bench: %s\n", nb_graph_errmsg(g));
		nb_graph_free(g);
		nb_dataset_free(&train);
		return 1;
	}
	nb_fit_opts fo = {.epochs = 1,
	                  .seed = 1,
	                  .max_batches = warm,
	                  .grad_norms = b->grad_norms,
	                  .global_batch = batch};
	if (warm == 0 && b->grad_norms) /* nb_fit turns them on: before the clock starts */
		st = nb_optim_track_grad_norms(o, true);
	if (warm > 0 && !st) /* max_batches 0 would be a whole epoch */
		st = nb_fit(m, o, &train, fo);
	nb_dist_reset_stats(b->dist);
	if (!st && b->profile)
		st = nb_program_profile(nb_optim_program(o), true);
	/* each step timed too: the median is robust to the machine's hiccups,
	 * and it is what torch_resnet20.py reports */
	step_clock clk = {.ms = calloc((size_t)steps, sizeof(double))};
	clk.cap = clk.ms ? steps : 0; /* no room: no median (NaN), the mean still */
	fo.on_batch = on_step;
	fo.user = &clk;
	double t0 = nb__now();
	int done = 0;
	while (!st && done < steps) {
		fo.max_batches = steps - done;
		int64_t before = nb_optim_steps(o);
		clk.last = nb__now();
		st = nb_fit(m, o, &train, fo);
		done += (int)(nb_optim_steps(o) - before);
	}
	double dt = nb__now() - t0, median = NAN;
	/* communication: what the step waited for, against a blocking sum of
	 * the same buckets (what it would cost if the backward hid none) */
	nb_dist_stats ds = nb_dist_stats_of(b->dist);
	double comm = ranks > 1 && !st
	                  ? nb_dist_time_allreduce(b->dist, (size_t)nb_count_params(g) * 4, 5)
	                  : 0,
	       waits[2] = {ds.exposed_s, ds.exposed_s}; /* the least and most any rank waited */
	if (ranks > 1 && !st)
		st = bench_rank_waits(b->dist, waits);
	/* the rank that waited least is the one the others waited for: its
	 * waits are the sum's unhidden part, theirs add the ranks' drift */
	double exposed = done ? waits[0] / done : 0, drift = done ? waits[1] / done : 0,
	       hidden = comm > 0 ? fmax(0, 1 - exposed / comm) : 0;
	if (clk.ms && clk.n > 0) {
		qsort(clk.ms, (size_t)clk.n, sizeof *clk.ms, cmp_double);
		median =
		    clk.n % 2 ? clk.ms[clk.n / 2] : (clk.ms[clk.n / 2 - 1] + clk.ms[clk.n / 2]) / 2;
	}
	free(clk.ms);
	if (st) {
		fprintf(stderr, "nabla bench: %s\n", nb_graph_errmsg(g));
	} else {
		nb_program *p = nb_optim_program(o);
		const zoo_timing t = {.batch = batch,
		                      .done = done,
		                      .ranks = ranks,
		                      .dt = dt,
		                      .median = median,
		                      .comm = comm,
		                      .exposed = exposed,
		                      .drift = drift,
		                      .hidden = hidden,
		                      .allreduces = ds.allreduces};
		bench_zoo_report(b, z, m, p, &t);
		if (b->profile)
			nb_program_profile_report(p, stderr);
	}
	nb_graph_free(g); /* and the model */
	nb_dataset_free(&train);
	return st ? 1 : 0;
}

/* ---- convolution layers: nabla's conv passes against raw GEMMs ------------- */

typedef struct conv_case {
	const char *name;
	int c, o, h, k, stride, pad;
} conv_case;

static const conv_case conv_cases[] = {
    {"lenet.conv1 1->6 5x5 28x28", 1, 6, 28, 5, 1, 2},
    {"lenet.conv2 6->16 5x5 14x14", 6, 16, 14, 5, 1, 0},
    {"resnet20 16->16 3x3 32x32", 16, 16, 32, 3, 1, 1},
    {"resnet20 16->32 3x3 s2 32x32", 16, 32, 32, 3, 2, 1},
    {"resnet20 32->32 3x3 16x16", 32, 32, 16, 3, 1, 1},
    {"resnet20 32->64 3x3 s2 16x16", 32, 64, 16, 3, 2, 1},
    {"resnet20 64->64 3x3 8x8", 64, 64, 8, 3, 1, 1},
};

/* best time of `rounds` rounds of `iters` runs of the program's `op` nodes
 * alone (the kernel's own time, from the program profile: not the dy = c
 * product feeding the backward passes) */
static double time_op(nb_program *p, const char *op, int iters, int rounds)
{
	double best = INFINITY;
	nb_run(p);
	for (int r = 0; r < rounds; r++) {
		nb_program_profile(p, true);
		for (int i = 0; i < iters; i++)
			nb_run(p);
		double ms = nb_program_profile_op_ms(p, op);
		if (ms >= 0)
			best = fmin(best, ms / 1e3);
	}
	nb_program_profile(p, false);
	return best;
}

/* the same GEMMs run straight through bli_sgemm, one per image:
 * forward  Y[o,p]  = W[o,K] col[K,p]
 * dx       col[K,p] = W^T[K,o] dY[o,p]      (then col2im)
 * dw       dW[o,K] += dY[o,p] col^T[p,K]    (accumulated over images) */
static void raw_gemms(int N, int O, int K, int P, int iters, int rounds, double t[3])
{
	float *w = calloc((size_t)O * K, 4), *col = calloc((size_t)K * P, 4),
	      *y = calloc((size_t)O * P, 4);
	float one = 1, zero = 0;
	for (int pass = 0; pass < 3; pass++) {
		t[pass] = INFINITY;
		for (int r = 0; r < rounds; r++) {
			double t0 = nb__now();
			for (int it = 0; it < iters; it++)
				for (int n = 0; n < N; n++) {
					if (pass == 0)
						bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, O,
						          P, K, &one, w, K, 1, col, P, 1, &zero, y,
						          P, 1);
					else if (pass == 1)
						bli_sgemm(BLIS_TRANSPOSE, BLIS_NO_TRANSPOSE, K, P,
						          O, &one, w, K, 1, y, P, 1, &zero, col, P,
						          1);
					else
						bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, O, K,
						          P, &one, y, P, 1, col, P, 1,
						          n ? &one : &zero, w, K, 1);
				}
			t[pass] = fmin(t[pass], (nb__now() - t0) / iters);
		}
	}
	free(w), free(col), free(y);
}

static int bench_conv(const bench_args *b)
{
	int N = b->batch ? b->batch : 64, rounds = b->repeat ? b->repeat : 3;
	static const char *pass_name[3] = {"forward", "input grad", "weight grad"};
	if (!b->json)
		printf("%-30s %-11s %9s %9s %7s\n", "layer (batch N)", "pass", "nabla", "raw GEMM",
		       "ratio");
	for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
		const conv_case *cc = &conv_cases[i];
		nb_graph *g = nb_graph_new(NB_F32);
		nb_tensor *x = nb_requires_grad(nb_input(g, "x", NB_SHAPE(N, cc->c, cc->h, cc->h)));
		nb_tensor *w =
		    nb_param(g, "w", NB_SHAPE(cc->o, cc->c, cc->k, cc->k), NB_UNIFORM(-0.1, 0.1));
		nb_tensor *y = nb_conv2d(x, w, NULL, NB_CONV_OPTS(cc->stride, cc->pad));
		nb_tensor *cst = nb_constant(g, "c", nb_tensor_shape(y), NULL);
		nb_tensor *L = nb_sum(nb_mul(y, cst));
		nb_tensor *dx = nb_grad(L, x), *dw = nb_grad(L, w);
		nb_program *pr[3] = {nb_compile(g, &y, 1), nb_compile(g, &dx, 1),
		                     nb_compile(g, &dw, 1)};
		if (nb_graph_status(g) != NB_OK)
			return report_graph_error(g);
		nb_init_tensor(x, NB_UNIFORM(-1, 1));
		nb_init_tensor(cst, NB_UNIFORM(-1, 1));
		int P = (int)(nb_tensor_shape(y).d[2] * nb_tensor_shape(y).d[3]),
		    K = cc->c * cc->k * cc->k;
		double flops = 2.0 * N * cc->o * (double)P * K;
		int iters = (int)fmax(1, 2e8 / flops);
		double raw[3];
		raw_gemms(N, cc->o, K, P, iters, rounds, raw);
		for (int pass = 0; pass < 3; pass++) {
			static const char *op_name[3] = {"conv2d", "conv2d_backward_input",
			                                 "conv2d_backward_weight"};
			double t = time_op(pr[pass], op_name[pass], iters, rounds);
			double gf = flops / t * 1e-9, gr = flops / raw[pass] * 1e-9;
			if (b->json)
				printf(
				    "{\"bench\": \"conv\", \"layer\": \"%s\", \"batch\": %d, \"pass\": \"%s\", "
				    "\"threads\": %d, \"nabla_gflops\": %.2f, \"gemm_gflops\": %.2f, \"ratio\": %.3f}\n",
				    cc->name, N, pass_name[pass], nb_num_threads(), gf, gr,
				    gf / gr);
			else
				printf("%-30s %-11s %9.2f %9.2f %6.1f%%\n", pass ? "" : cc->name,
				       pass_name[pass], gf, gr, 100 * gf / gr);
		}
		nb_graph_free(g);
	}
	if (!b->json)
		printf(
		    "GFLOP/s of the im2col FLOP count: nabla's conv kernel (im2col/col2im included; "
		    "Winograd and the direct kernel do fewer FLOPs), raw GEMM only the products\n");
	return 0;
}

/* the options a model reads, beyond --threads and --json: one given to a
 * model that does not read it is refused, not silently ignored */
enum {
	USE_EPOCHS = 1 << 0,
	USE_REPEAT = 1 << 1,
	USE_BATCH = 1 << 2,
	USE_STEPS = 1 << 3,
	USE_WARMUP = 1 << 4,
	USE_DATA = 1 << 5,
	USE_PROFILE = 1 << 6,
	USE_GRAD_NORMS = 1 << 7,
	USE_BUCKET = 1 << 8,
	USE_ZOO = USE_BATCH | USE_STEPS | USE_WARMUP | USE_PROFILE | USE_GRAD_NORMS | USE_BUCKET,
};
/* the option of each USE_ bit, in bit order */
static const char *const use_names[] = {"--epochs",  "--repeat",     "--batch",
                                        "--steps",   "--warmup",     "--data",
                                        "--profile", "--grad-norms", "--bucket-kib"};

typedef struct bench_entry {
	const char *name, *summary;
	int (*run)(const bench_args *b);
	unsigned uses;
} bench_entry;

static const bench_entry benches[] = {
    {"xor", "2-2-1 sigmoid MLP, 4 samples, 10000 epochs (compare torch_xor.py)", bench_xor,
     USE_EPOCHS},
    {"peak", "the CPU's fp32 FMA peak with 256- and 512-bit vectors", bench_peak, 0},
    {"gemm", "sgemm 512-2048 through nabla's GEMM path vs BLIS's own, against the peak", bench_gemm,
     USE_REPEAT},
    {"matmul", "64x784 . 784x256 f32 through nabla vs raw bli_sgemm", bench_matmul,
     USE_EPOCHS | USE_REPEAT},
    {"conv", "each conv layer's passes through nabla vs the same GEMMs in raw BLIS", bench_conv,
     USE_BATCH | USE_REPEAT},
    {"mlp", "training steps of the zoo mlp, Adam (compare torch_mlp.py)", bench_zoo,
     USE_ZOO | USE_DATA},
    {"lenet", "training steps of the zoo lenet, SGD momentum (compare torch_lenet.py)", bench_zoo,
     USE_ZOO | USE_DATA},
    {"resnet20", "training steps of ResNet-20, synthetic data (compare torch_resnet20.py)",
     bench_zoo, USE_ZOO},
    {"resnet50", "training steps of ResNet-50 (CIFAR stem), synthetic data", bench_zoo, USE_ZOO},
};

static void usage(FILE *fp)
{
	fprintf(
	    fp,
	    "usage: nabla bench --model NAME [--epochs N] [--repeat R] [--threads N] [--json]\n\n"
	    "Measure speed; compare against shared/bench/torch_*.py run side by side.\n\n"
	    "  --epochs N   epochs (xor) or iterations (matmul), 1 to 10^9\n"
	    "  --repeat R   rounds, best one reported (gemm, matmul: default 5; conv: default 3,\n"
	    "               7 steadies it on a noisy machine), 1 to 1000\n"
	    "  --threads N  threads, 0 to %d (default 0: all cores)\n"
	    "  --batch N    batch size (zoo models, conv; default 64), 1 to %d\n"
	    "  --steps N    timed training steps (zoo models; default 200, resnets 20),\n"
	    "               1 to 10^6\n"
	    "  --warmup N   untimed steps first (zoo models; default 5), 0 to 10^6\n"
	    "  --data DIR   Fashion-MNIST directory (mlp, lenet; default: Debian's)\n"
	    "  --profile    zoo models: time every kernel of a step, a table by op on stderr\n"
	    "  --grad-norms zoo models: steps that record the per-layer gradient statistics\n"
	    "               (nabla train --grad-norms), to measure what they cost\n"
	    "  --bucket-kib N  zoo models: gradient bucket size under mpirun, in KiB (default 2048),\n"
	    "               1 to 2^20\n"
	    "  --json       one JSON object on stdout\n"
	    "An option the chosen model does not read (see the models it names) is an error.\n\n"
	    "Under mpirun -np N (a build with MPI) the zoo models train data-parallel:\n"
	    "--batch is the global batch, threads default to the host's cores over its\n"
	    "ranks, and rank 0 reports global samples/s, the gradient allreduce's time per\n"
	    "step and the share of it hidden behind the backward pass.\n\nmodels:\n",
	    CLI_MAX_THREADS, CLI_MAX_BATCH);
	for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
		fprintf(fp, "  %-8s %s\n", benches[i].name, benches[i].summary);
}

static const char *const options[] = {
    "--model", "--epochs",  "--repeat", "--threads",    "--batch",      "--steps", "--warmup",
    "--data",  "--profile", "--json",   "--grad-norms", "--bucket-kib", "--help",  NULL};

/* The command line into *b: -1, or the exit status (0 after --help, 2
 * after a message). */
static int parse_bench_args(int argc, char **argv, bench_args *b)
{
	for (int i = 1; i < argc; i++) {
		const char *v;
		long n;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			b->json = true;
		} else if (!strcmp(argv[i], "--profile")) {
			b->profile = true;
			b->given |= USE_PROFILE;
		} else if (!strcmp(argv[i], "--grad-norms")) {
			b->grad_norms = true;
			b->given |= USE_GRAD_NORMS;
		} else if ((v = cli_opt_value(argc, argv, &i, "--model"))) {
			b->model = v;
		} else if ((v = cli_opt_value(argc, argv, &i, "--epochs"))) {
			if (!cli_parse_long("bench", "--epochs", v, 1, 1000000000, &n))
				return 2;
			b->epochs = (int)n;
			b->given |= USE_EPOCHS;
		} else if ((v = cli_opt_value(argc, argv, &i, "--repeat"))) {
			if (!cli_parse_long("bench", "--repeat", v, 1, 1000, &n))
				return 2;
			b->repeat = (int)n;
			b->given |= USE_REPEAT;
		} else if ((v = cli_opt_value(argc, argv, &i, "--threads"))) {
			if (!cli_parse_long("bench", "--threads", v, 0, CLI_MAX_THREADS, &n))
				return 2;
			b->threads = (int)n;
		} else if ((v = cli_opt_value(argc, argv, &i, "--batch"))) {
			if (!cli_parse_long("bench", "--batch", v, 1, CLI_MAX_BATCH, &n))
				return 2;
			b->batch = (int)n;
			b->given |= USE_BATCH;
		} else if ((v = cli_opt_value(argc, argv, &i, "--steps"))) {
			if (!cli_parse_long("bench", "--steps", v, 1, 1000000, &n))
				return 2;
			b->steps = (int)n;
			b->given |= USE_STEPS;
		} else if ((v = cli_opt_value(argc, argv, &i, "--warmup"))) {
			if (!cli_parse_long("bench", "--warmup", v, 0, 1000000, &n))
				return 2;
			b->warmup = (int)n;
			b->given |= USE_WARMUP;
		} else if ((v = cli_opt_value(argc, argv, &i, "--data"))) {
			if (!*v) {
				fprintf(stderr, "nabla bench: --data is empty\n");
				return 2;
			}
			b->data = v;
			b->given |= USE_DATA;
		} else if ((v = cli_opt_value(argc, argv, &i, "--bucket-kib"))) {
			if (!cli_parse_long("bench", "--bucket-kib", v, 1, 1 << 20, &n))
				return 2;
			b->bucket_kib = (int)n;
			b->given |= USE_BUCKET;
		} else if (cli_missing_value) {
			return 2; /* already reported */
		} else {
			cli_unknown_option("bench", argv[i], options);
			return 2;
		}
	}
	return -1;
}

int cmd_bench(int argc, char **argv)
{
	bench_args b = {.model = NULL, .warmup = -1};
	int prc = parse_bench_args(argc, argv, &b);
	if (prc >= 0)
		return prc;
	if (!b.model) {
		usage(stderr);
		return 2;
	}
	const bench_entry *e = NULL;
	for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
		if (!strcmp(benches[i].name, b.model))
			e = &benches[i];
	if (!e) {
		char sh[128];
		fprintf(stderr, "nabla bench: unknown model '%s' (see nabla bench --help)\n",
		        nb__shown(b.model, sh, sizeof sh));
		return 2;
	}
	if (b.grad_norms && e->run != bench_zoo) {
		fprintf(stderr,
		        "nabla bench: --grad-norms applies to the training steps of the zoo models "
		        "(mlp, lenet, resnet20, resnet50), not %s\n",
		        b.model);
		return 2;
	}
	for (size_t k = 0; k < sizeof use_names / sizeof *use_names; k++)
		if ((b.given >> k & 1) && !(e->uses >> k & 1)) {
			fprintf(stderr,
			        "nabla bench: %s does not apply to --model %s (see nabla bench "
			        "--help)\n",
			        use_names[k], b.model);
			return 2;
		}
	char err[512];
	nb_dist_opts dopts = {.bucket_bytes = (size_t)b.bucket_kib << 10};
	if (nb_dist_init(NULL, NULL, dopts, &b.dist, err, sizeof err) != NB_OK) {
		fprintf(stderr, "nabla bench: %s\n", err);
		return 2;
	}
	int ranks = nb_dist_size(b.dist), rc = 2;
	if (ranks > 1 && e->run != bench_zoo) {
		fprintf(stderr,
		        "nabla bench: under mpirun (%d ranks) only the zoo models (mlp, lenet, "
		        "resnet20, resnet50) run, data-parallel\n",
		        ranks);
	} else if (ranks > 1 && (b.batch ? b.batch : 64) < ranks) {
		fprintf(stderr, "nabla bench: --batch %d is smaller than the %d ranks\n",
		        b.batch ? b.batch : 64, ranks);
	} else {
		/* under mpirun: the host's cores shared by its ranks */
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		int per = (int)(cores / nb_dist_local_size(b.dist));
		nb_set_num_threads(b.threads || ranks < 2 ? b.threads : per > 0 ? per : 1);
		if (ranks > 1 && nb_dist_rank(b.dist) != 0 && !freopen("/dev/null", "w", stdout))
			fprintf(stderr, "nabla bench: cannot silence rank %d\n",
			        nb_dist_rank(b.dist));
		rc = e->run(&b);
	}
	if (rc)
		nb_dist_abort(b.dist, rc);
	nb_dist_finalize(b.dist);
	return rc;
}
