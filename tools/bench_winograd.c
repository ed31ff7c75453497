/*
 * Winograd F(2x2, 3x3) (src/ops/conv/winograd.c) against nabla's conv2d
 * (im2col + GEMM) on ResNet-20's 3x3 convolutions at batch 64: the forward
 * pass, the input gradient and the weight gradient, f32, one and two
 * threads.
 *
 *   build/tools/bench_winograd [rounds] [batch]
 *
 * nabla runs through the public API (nb_conv2d in a graph, nb_compile,
 * nb_run); its time is the conv kernel's own, from the program profile
 * (the gradient programs also make dy = c * 1, not counted).  The
 * two methods alternate, each timed as the best of `rounds` rounds (the
 * machine is shared).  A check column gives the largest difference of the
 * two results relative to the largest |value|.
 */
#include "graph/internal.h"
#include "ops/conv/winograd.h"
#include "util/clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ms per run of the program's conv kernels (ops op), over iters runs */
static double nabla_ms(nb_program *p, int op, int iters)
{
	nb_program_profile(p, true);
	for (int i = 0; i < iters; i++)
		nb_run(p);
	double ns = 0;
	for (int s = 0; s < p->n; s++)
		if (p->sched[s]->op == op)
			ns += p->prof_ns[s];
	ns /= (double)p->prof_runs;
	nb_program_profile(p, false);
	return ns * 1e-6;
}

static double wino_ms(const nb__wino_geom *g, const float *in, const float *w, float *out, void *ws,
                      int threads, int iters)
{
	double t0 = nb__now();
	for (int i = 0; i < iters; i++)
		nb__wino_forward_f32(g, in, w, out, ws, threads);
	return (nb__now() - t0) / iters * 1e3;
}

static double wgrad_ms(const nb__wino_geom *g, const float *dy, const float *x, float *out,
                       void *ws, int threads, int iters)
{
	double t0 = nb__now();
	for (int i = 0; i < iters; i++)
		nb__wino_weight_grad_f32(g, dy, x, out, ws, threads);
	return (nb__now() - t0) / iters * 1e3;
}

static double max_rel_diff(const float *a, const float *b, int64_t n)
{
	double d = 0, m = 0;
	for (int64_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - b[i]));
		m = fmax(m, fabs((double)b[i]));
	}
	return m > 0 ? d / m : d;
}

int main(int argc, char **argv)
{
	const int rounds = argc > 1 ? atoi(argv[1]) : 7, N = argc > 2 ? atoi(argv[2]) : 64;
	if (argc > 3 || rounds < 1 || N < 1) {
		fprintf(
		    argc > 1 && !strcmp(argv[1], "--help") ? stdout : stderr,
		    "usage: bench_winograd [ROUNDS (default 7)] [BATCH (default 64)]\n"
		    "Times ResNet-20's 3x3 convolutions, im2col against Winograd, 1 and 2 threads.\n");
		return argc > 1 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	static const struct {
		int c, hw;
	} layers[] = {{16, 32}, {32, 16}, {64, 8}};
	static const int thread_counts[] = {1, 2};
	printf("ResNet-20 3x3 convolutions, batch %d, f32, best of %d rounds (ms per pass)\n", N,
	       rounds);
	printf("%-7s %-14s %-10s %9s %9s %8s %9s\n", "threads", "layer", "pass", "im2col",
	       "winograd", "speedup", "check");
	for (size_t ti = 0; ti < sizeof thread_counts / sizeof thread_counts[0]; ti++) {
		const int th = thread_counts[ti];
		nb_set_num_threads(th);
		for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
			const int C = layers[li].c, H = layers[li].hw;
			nb_graph *g = nb_graph_new(NB_F32);
			nb_tensor *x = nb_requires_grad(nb_input(g, "x", NB_SHAPE(N, C, H, H)));
			nb_tensor *w =
			    nb_param(g, "w", NB_SHAPE(C, C, 3, 3), NB_UNIFORM(-0.1, 0.1));
			nb_conv2d_opts co = NB_CONV_OPTS(1, 1);
			co.algo = NB_CONV_IM2COL; /* AUTO would take Winograd at 64 channels */
			nb_tensor *y = nb_conv2d(x, w, NULL, co);
			nb_tensor *cst = nb_constant(g, "c", nb_tensor_shape(y), NULL);
			nb_tensor *loss = nb_sum(nb_mul(y, cst));
			nb_tensor *dx = nb_grad(loss, x), *dw = nb_grad(loss, w);
			nb_program *pr[3] = {nb_compile(g, &y, 1), nb_compile(g, &dx, 1),
			                     nb_compile(g, &dw, 1)};
			if (nb_graph_status(g) != NB_OK) {
				fprintf(stderr, "graph error: %s\n", nb_graph_errmsg(g));
				return 1;
			}
			nb_init_tensor(x, NB_UNIFORM(-1, 1));
			nb_init_tensor(cst, NB_UNIFORM(-1, 1));
			const int64_t n = (int64_t)N * C * H * H;
			nb__wino_geom wg = {.isa = nb__isa_level(),
			                    .n = N,
			                    .c = C,
			                    .h = H,
			                    .w = H,
			                    .o = C,
			                    .pt = 1,
			                    .pl = 1,
			                    .pb = 1,
			                    .pr = 1};
			size_t wsb = nb__wino_workspace(&wg, sizeof(float), th);
			wg.flip = true;
			if (nb__wino_workspace(&wg, sizeof(float), th) > wsb)
				wsb = nb__wino_workspace(&wg, sizeof(float), th);
			if (nb__wino_wgrad_workspace(&wg, sizeof(float), th) > wsb)
				wsb = nb__wino_wgrad_workspace(&wg, sizeof(float), th);
			void *ws = aligned_alloc(64, (wsb + 63) / 64 * 64);
			float *out = malloc((size_t)n * sizeof(float)),
			      *ref = malloc((size_t)n * sizeof(float));
			if (!ws || !out || !ref)
				return 1;
			const float *wd = nb_data(w);
			const double flops = 2.0 * N * C * C * H * H * 9;
			const int iters = (int)fmax(1, 1e9 / flops);
			static const char *pass_names[] = {"forward", "input grad", "weight grad"};
			static const int ops[] = {NB_OP_CONV2D, NB_OP_CONV2D_BACKWARD_INPUT,
			                          NB_OP_CONV2D_BACKWARD_WEIGHT};
			for (int pass = 0; pass < 3; pass++) {
				wg.flip = pass == 1;
				const float *in = nb_data(pass ? cst : x);
				const int64_t nout = pass == 2 ? (int64_t)C * C * 9 : n;
				double tn = INFINITY, tw = INFINITY;
				for (int r = 0; r < rounds; r++) {
					tn = fmin(tn, nabla_ms(pr[pass], ops[pass], iters));
					tw = fmin(tw, pass == 2 ? wgrad_ms(&wg, in, nb_data(x), out,
					                                   ws, th, iters)
					                        : wino_ms(&wg, in, wd, out, ws, th,
					                                  iters));
				}
				nb_read_f32(pass == 2 ? dw : pass ? dx : y, ref, nout);
				char name[32];
				snprintf(name, sizeof name, "%dch %dx%d", C, H, H);
				printf("%-7d %-14s %-10s %9.3f %9.3f %7.2fx %9.1e\n", th, name,
				       pass_names[pass], tn, tw, tn / tw,
				       max_rel_diff(out, ref, nout));
				fflush(stdout);
			}
			free(ws), free(out), free(ref);
			nb_graph_free(g);
		}
	}
	return 0;
}
