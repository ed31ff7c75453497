/* Graph core: building, running, broadcasting, autodiff, planning, SGD. */
#include "test_util.h"

#include "graph/internal.h" /* nb__graph_own, the op list and the op table */
#include "ops/conv/plan.h"  /* a convolution node's plan */

#include <math.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_add_broadcast_values)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *a = nb_constant(g, "a", NB_SHAPE(2, 3), (double[]){1, 2, 3, 4, 5, 6});
	nb_tensor *b = nb_constant(g, "b", NB_SHAPE(3), (double[]){10, 20, 30});
	nb_tensor *c = nb_constant(g, "c", NB_SHAPE(2, 1), (double[]){100, 200});
	nb_tensor *y = nb_add(nb_add(a, b), c);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_eval(y), NB_OK);
	double out[6];
	ck_assert_int_eq(nb_read_f64(y, out, 6), NB_OK);
	double want[6] = {111, 122, 133, 214, 225, 236};
	for (int i = 0; i < 6; i++)
		ck_near(out[i], want[i], 0);
	nb_graph_free(g);
}
END_TEST

/* broadcast_to's fills (x is y's shape on leading axes, 1 on the rest: a
 * scalar, a value per channel) and its general path, against the
 * definition, on 1 and 3 threads, large enough to run on them */
START_TEST(test_broadcast_to_values)
{
	static const nb_shape cases[][2] = {
	    {{1, {1}}, {2, {300, 700}}},
	    {{0, {0}}, {3, {2, 3, 4}}},
	    {{4, {64, 64, 1, 1}}, {4, {64, 64, 8, 8}}},
	    {{2, {50, 1}}, {2, {50, 2000}}},
	    {{4, {1, 3, 1, 1}}, {4, {2, 3, 40, 400}}},
	    {{1, {700}}, {2, {300, 700}}},
	    {{2, {5, 7}}, {2, {5, 7}}},
	};
	for (int th = 1; th <= 3; th += 2)
		for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
			nb_set_num_threads(th);
			const nb_shape xs = cases[k][0], ys = cases[k][1];
			nb_graph *g = nb_graph_new(NB_F64);
			const int64_t nx = nb_shape_size(xs), ny = nb_shape_size(ys);
			double *xv = malloc(sizeof(double) * (size_t)nx),
			       *yv = malloc(sizeof(double) * (size_t)ny);
			for (int64_t i = 0; i < nx; i++)
				xv[i] = (double)(i * 7 % 13) - 6.5;
			nb_tensor *x = nb_constant(g, "x", xs, xv);
			nb_tensor *y = nb__broadcast_to(x, ys);
			ck_graph_ok(g);
			ck_assert_int_eq(nb_eval(y), NB_OK);
			ck_assert_int_eq(nb_read_f64(y, yv, ny), NB_OK);
			const int off = ys.ndim - xs.ndim;
			for (int64_t e = 0; e < ny; e++) { /* x's element for y's e */
				int64_t r = e, at = 0, stride = 1;
				for (int a = ys.ndim - 1; a >= 0; a--) {
					const int64_t i = r % ys.d[a];
					r /= ys.d[a];
					if (a >= off) {
						at += (xs.d[a - off] == 1 ? 0 : i) * stride;
						stride *= xs.d[a - off];
					}
				}
				ck_assert_msg(yv[e] == xv[at],
				              "case %zu, %d threads: y[%lld] %g, want %g", k, th,
				              (long long)e, yv[e], xv[at]);
			}
			free(xv), free(yv);
			nb_graph_free(g);
		}
	nb_set_num_threads(0);
}
END_TEST

START_TEST(test_matmul_values)
{
	for (int dt = 0; dt < 2; dt++) {
		nb_graph *g = nb_graph_new(dt ? NB_F64 : NB_F32);
		/* big enough for the BLIS path and small for the loop path */
		int sizes[2][3] = {{2, 3, 2}, {40, 30, 20}};
		for (int s = 0; s < 2; s++) {
			int m = sizes[s][0], k = sizes[s][1], n = sizes[s][2];
			double *A = malloc(sizeof(double) * m * k),
			       *B = malloc(sizeof(double) * k * n);
			for (int i = 0; i < m * k; i++)
				A[i] = (i % 7) - 3;
			for (int i = 0; i < k * n; i++)
				B[i] = (i % 5) - 2;
			nb_tensor *a = nb_constant(g, "A", NB_SHAPE(m, k), A);
			nb_tensor *b = nb_constant(g, "B", NB_SHAPE(k, n), B);
			nb_tensor *bt = nb_constant(g, "Bt", NB_SHAPE(n, k), NULL);
			double *Bt = malloc(sizeof(double) * k * n);
			for (int i = 0; i < k; i++)
				for (int j = 0; j < n; j++)
					Bt[j * k + i] = B[i * n + j];
			nb_feed_f64(bt, Bt, (int64_t)k * n);
			nb_tensor *c = nb_matmul(a, b), *c2 = nb_matmul_t(a, bt, false, true);
			ck_graph_ok(g);
			nb_program *prog = nb_compile(g, (nb_tensor *[]){c, c2}, 2);
			ck_assert_int_eq(nb_run(prog), NB_OK);
			double *C = malloc(sizeof(double) * m * n),
			       *C2 = malloc(sizeof(double) * m * n);
			ck_assert_int_eq(nb_read_f64(c, C, (int64_t)m * n), NB_OK);
			ck_assert_int_eq(nb_read_f64(c2, C2, (int64_t)m * n), NB_OK);
			for (int i = 0; i < m; i++)
				for (int j = 0; j < n; j++) {
					double ref = 0;
					for (int p = 0; p < k; p++)
						ref += A[i * k + p] * B[p * n + j];
					ck_near(C[i * n + j], ref, 0);
					ck_near(C2[i * n + j], ref, 0);
				}
			free(A), free(B), free(Bt), free(C), free(C2);
		}
		nb_graph_free(g);
	}
}
END_TEST

/* d/dx sum(x*x + 3x) = 2x + 3; x used twice, so contributions add */
START_TEST(test_grad_fanout)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(3), NB_ZEROS);
	nb_feed_f64(x, (double[]){1, -2, 0.5}, 3);
	nb_tensor *y = nb_sum(nb_add(nb_mul(x, x), nb_mul_scalar(x, 3)));
	nb_tensor *dx = nb_grad(y, x);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_eval(dx), NB_OK);
	double d[3];
	nb_read_f64(dx, d, 3);
	ck_near(d[0], 5, 0);
	ck_near(d[1], -1, 0);
	ck_near(d[2], 4, 0);
	nb_graph_free(g);
}
END_TEST

START_TEST(test_stop_gradient)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(1), NB_ONES);
	nb_feed_f64(x, (double[]){3}, 1);
	nb_tensor *y = nb_sum(nb_mul(x, nb_stop_gradient(x))); /* dy/dx = stop(x) = 3 */
	nb_tensor *dx = nb_grad(y, x);
	ck_graph_ok(g);
	nb_eval(dx);
	ck_near(nb_item(dx), 3, 0);
	nb_graph_free(g);
}
END_TEST

/* Ops with any number of inputs (concat, global_norm) get one gradient slot
 * per input, past 64 as well: the first 64 inputs here are constants and
 * the last ones parameters, so only gradients past the 64th are needed. */
START_TEST(test_grad_many_inputs)
{
	enum { N = 70, FIRST = 64 };
	for (int which = 0; which < 2; which++) {
		nb_graph *g = nb_graph_new(NB_F64);
		nb_tensor *ts[N], *ps[N - FIRST], *dp[N - FIRST];
		for (int k = 0; k < N; k++) {
			double v[2] = {k + 1, -(k + 1) * 0.5};
			char name[16];
			snprintf(name, sizeof name, "t%d", k);
			ts[k] = k < FIRST ? nb_constant(g, name, NB_SHAPE(1, 2), v)
			                  : nb_param(g, name, NB_SHAPE(1, 2), NB_ZEROS);
			if (k >= FIRST) {
				ps[k - FIRST] = ts[k];
				nb_feed_f64(ts[k], v, 2);
			}
		}
		nb_tensor *L;
		if (which == 0) {
			/* d/dt_k sum(concat * w) = w's slice for t_k: w = 1..2N */
			double w[2 * N];
			for (int i = 0; i < 2 * N; i++)
				w[i] = i + 1;
			nb_tensor *wc = nb_constant(g, "w", NB_SHAPE(1, 2 * N), w);
			L = nb_sum(nb_mul(nb_concat(ts, N, 1), wc));
		} else {
			L = nb_global_norm(ts, N); /* d/dt_k = t_k / norm */
		}
		ck_assert_int_eq(nb_grads(L, ps, N - FIRST, dp), NB_OK);
		ck_graph_ok(g);
		ck_assert_int_eq(nb_eval(L), NB_OK);
		double norm = nb_item(L);
		for (int k = FIRST; k < N; k++) {
			double d[2];
			ck_assert_int_eq(nb_eval(dp[k - FIRST]), NB_OK);
			ck_assert_int_eq(nb_read_f64(dp[k - FIRST], d, 2), NB_OK);
			for (int i = 0; i < 2; i++) {
				double v = i == 0 ? k + 1 : -(k + 1) * 0.5;
				double want = which == 0 ? 2 * k + i + 1 : v / norm;
				ck_near(d[i], want, 1e-15);
			}
		}
		nb_graph_free(g);
	}
}
END_TEST

/* d sum(f(x)) / dx read back in f32 and f64 (n <= 8) */
static void grad_of(nb_dtype dt, nb_tensor *(*f)(nb_tensor *, const double *), const double *arg,
                    const double *x, int n, double *out)
{
	nb_graph *g = nb_graph_new(dt);
	nb_tensor *v = nb_param(g, "x", NB_SHAPE(n), NB_ZEROS);
	nb_feed_f64(v, x, n);
	nb_tensor *d = nb_grad(nb_sum(f(v, arg)), v);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_eval(d), NB_OK);
	ck_assert_int_eq(nb_read_f64(d, out, n), NB_OK);
	nb_graph_free(g);
}

static nb_tensor *f_pow(nb_tensor *x, const double *a)
{
	return nb_pow(x, a[0]);
}

/* d x^p = p x^(p-1), except that x^0 is a constant: its gradient is 0 also
 * at x = 0, where the formula gives 0 * inf = NaN (PyTorch gives 0) */
START_TEST(test_pow_gradient_edges)
{
	const double x[5] = {0, 1, -2, 0.5, 3};
	const double ps[] = {0, 1, 2, 3, 0.5, -1, 1.5};
	for (int dt = 0; dt < 2; dt++)
		for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
			double p = ps[k], d[5];
			grad_of(dt ? NB_F64 : NB_F32, f_pow, &p, x, 5, d);
			for (int i = 0; i < 5; i++) {
				double want = p == 0 ? 0 : p * pow(x[i], p - 1);
				if (isnan(want) ||
				    isinf(want)) /* 0.5 and 1.5 at -2; 0.5, -1 at 0 */
					ck_assert_msg(isnan(want) ? isnan(d[i]) : d[i] == want,
					              "%s: d/dx x^%g at %g = %g, expected %g",
					              dt ? "f64" : "f32", p, x[i], d[i], want);
				else
					ck_near(d[i], want, dt ? 1e-15 : 1e-6 * fabs(want));
			}
		}
	/* at x = 0: p = 0 gives 0, p = 1 gives 1, p = 2 gives 0, p = 0.5 gives inf */
	for (int dt = 0; dt < 2; dt++) {
		double d[1], zero = 0;
		const double p0 = 0, p1 = 1, p2 = 2, ph = 0.5;
		grad_of(dt ? NB_F64 : NB_F32, f_pow, &p0, &zero, 1, d);
		ck_assert_msg(d[0] == 0, "d/dx x^0 at 0 = %g", d[0]);
		grad_of(dt ? NB_F64 : NB_F32, f_pow, &p1, &zero, 1, d);
		ck_assert_msg(d[0] == 1, "d/dx x^1 at 0 = %g", d[0]);
		grad_of(dt ? NB_F64 : NB_F32, f_pow, &p2, &zero, 1, d);
		ck_assert_msg(d[0] == 0, "d/dx x^2 at 0 = %g", d[0]);
		grad_of(dt ? NB_F64 : NB_F32, f_pow, &ph, &zero, 1, d);
		ck_assert_msg(isinf(d[0]) && d[0] > 0, "d/dx x^0.5 at 0 = %g", d[0]);
	}
}
END_TEST

static nb_tensor *f_clamp(nb_tensor *x, const double *a)
{
	return nb_clamp(x, a[0], a[1]);
}
static nb_tensor *f_relu(nb_tensor *x, const double *a)
{
	return (void)a, nb_relu(x);
}
static nb_tensor *f_abs(nb_tensor *x, const double *a)
{
	return (void)a, nb_abs(x);
}
static nb_tensor *f_satlin(nb_tensor *x, const double *a)
{
	return (void)a, nb_satlin(x);
}
static nb_tensor *f_satlins(nb_tensor *x, const double *a)
{
	return (void)a, nb_satlins(x);
}
static nb_tensor *f_max(nb_tensor *x, const double *a)
{
	return (void)a, nb_max(x);
}
static nb_tensor *f_max_rows(nb_tensor *x, const double *a)
{
	(void)a;
	return nb_max_axis(nb_reshape(x, NB_SHAPE(2, 4)), 1, false);
}
static nb_tensor *f_max_cols(nb_tensor *x, const double *a)
{
	(void)a;
	return nb_max_axis(nb_reshape(x, NB_SHAPE(2, 4)), 0, true);
}

/* The gradient at kinks and ties, PyTorch's conventions: clamp passes it at
 * its bounds (inclusive range); relu, satlin and satlins (PyTorch's
 * hardtanh) give 0 at their corners; abs gives sign(0) = 0; a maximum held
 * by several elements splits it evenly among them (torch.max(x),
 * torch.amax). */
START_TEST(test_kink_conventions)
{
	const double nan = NAN;
	const struct {
		const char *what;
		nb_tensor *(*f)(nb_tensor *, const double *);
		double arg[2];
		int n;
		double x[8], want[8];
	} cases[] = {
	    {"clamp", f_clamp, {-1, 1}, 5, {-2, -1, 0, 1, 2}, {0, 1, 1, 1, 0}},
	    {"clamp lo == hi", f_clamp, {0.5, 0.5}, 3, {0, 0.5, 1}, {0, 1, 0}},
	    {"relu", f_relu, {0}, 3, {-1, 0, 1}, {0, 0, 1}},
	    {"abs", f_abs, {0}, 3, {-1, 0, 1}, {-1, 0, 1}},
	    {"satlin", f_satlin, {0}, 5, {-1, 0, 0.5, 1, 2}, {0, 0, 1, 0, 0}},
	    {"satlins", f_satlins, {0}, 5, {-2, -1, 0, 1, 2}, {0, 0, 1, 0, 0}},
	    {"max, a tie of two", f_max, {0}, 4, {1, 3, 3, 2}, {0, 0.5, 0.5, 0}},
	    {"max, no tie", f_max, {0}, 4, {1, 3, -3, 2}, {0, 1, 0, 0}},
	    {"max, all equal", f_max, {0}, 4, {-1, -1, -1, -1}, {0.25, 0.25, 0.25, 0.25}},
	    {"max rows",
	     f_max_rows,
	     {0},
	     8,
	     {3, 3, 3, 0, 1, 2, 0, 2},
	     {1.0 / 3, 1.0 / 3, 1.0 / 3, 0, 0, 0.5, 0, 0.5}},
	    {"max columns",
	     f_max_cols,
	     {0},
	     8,
	     {3, 1, 2, 0, 3, 2, 2, -1},
	     {0.5, 0, 0.5, 1, 0.5, 1, 0.5, 0}},
	    {"max with NaN", f_max, {0}, 4, {1, nan, 3, nan}, {0, 0.5, 0, 0.5}},
	};
	for (int dt = 0; dt < 2; dt++)
		for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
			double d[8];
			grad_of(dt ? NB_F64 : NB_F32, cases[c].f, cases[c].arg, cases[c].x,
			        cases[c].n, d);
			for (int i = 0; i < cases[c].n; i++)
				ck_assert_msg(
				    fabs(d[i] - cases[c].want[i]) <= (dt ? 1e-16 : 1e-7),
				    "%s, %s: gradient %.9g at element %d (x = %g), expected %.9g",
				    dt ? "f64" : "f32", cases[c].what, d[i], i, cases[c].x[i],
				    cases[c].want[i]);
		}
	/* the forward of max propagates NaN wherever it is */
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *v = nb_constant(g, "v", NB_SHAPE(3), (double[]){1, nan, 3});
	nb_tensor *m = nb_max(v);
	ck_assert_int_eq(nb_eval(m), NB_OK);
	ck_assert(isnan(nb_item(m)));
	nb_graph_free(g);
}
END_TEST

/* only paths that need gradients get backward nodes */
START_TEST(test_grad_prunes_constant_paths)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(4), NB_ONES);
	nb_tensor *c = nb_constant(g, "c", NB_SHAPE(4), NULL);
	nb_tensor *big = nb_exp(nb_exp(nb_exp(c))); /* constant-only branch */
	nb_tensor *L = nb_sum(nb_mul(w, big));
	int before = nb_graph_num_nodes(g);
	nb_tensor *dw = nb_grad(L, w);
	ck_graph_ok(g);
	/* backward: "1" seed, broadcast of the seed, mul by big (no exp VJPs) */
	ck_assert_int_le(nb_graph_num_nodes(g) - before, 4);
	ck_assert_int_eq(nb_eval(dw), NB_OK);
	nb_graph_free(g);
}
END_TEST

/* A deep chain: liveness reuse keeps the arena far below the sum of sizes. */
START_TEST(test_planner_reuses_memory)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(256, 256));
	nb_tensor *h = x;
	for (int i = 0; i < 20; i++)
		h = nb_mul_scalar(nb_add_scalar(h, 1.0), 0.5);
	nb_tensor *L = nb_sum(h);
	nb_program *p = nb_compile(g, &L, 1);
	ck_graph_ok(g);
	size_t planned = nb_program_planned_bytes(p), naive = nb_program_unplanned_bytes(p);
	ck_assert_uint_eq(naive, 40u * 256 * 256 * 4 + 64);
	/* two live activations at a time suffice */
	ck_assert_uint_le(planned, 2u * 256 * 256 * 4 + 64);
	float *zeros = calloc(256 * 256, sizeof *zeros);
	ck_assert_int_eq(nb_feed_f32(x, zeros, 256 * 256), NB_OK);
	free(zeros);
	ck_assert_int_eq(nb_run(p), NB_OK);
	/* x = 0: h converges towards 1 */
	ck_assert(nb_item(L) > 0.99 * 65536 && nb_item(L) < 65536);
	nb_graph_free(g);
}
END_TEST

/* dead nodes are not scheduled */
START_TEST(test_dead_nodes_not_scheduled)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(8));
	nb_tensor *used = nb_exp(x);
	for (int i = 0; i < 10; i++)
		nb_log(x); /* never needed */
	nb_tensor *L = nb_sum(used);
	nb_program *p = nb_compile(g, &L, 1);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_program_num_steps(p), 2);
	nb_graph_free(g);
}
END_TEST

/* least squares by SGD: w -> solution */
START_TEST(test_sgd_linear_regression)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *X = nb_constant(g, "X", NB_SHAPE(4, 2), (double[]){0, 0, 0, 1, 1, 0, 1, 1});
	nb_tensor *y =
	    nb_constant(g, "y", NB_SHAPE(4, 1), (double[]){1, 3, 2, 4}); /* 1 + x1 + 2 x2 */
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(2, 1), NB_ZEROS);
	nb_tensor *b = nb_param(g, "b", NB_SHAPE(1), NB_ZEROS);
	nb_tensor *e = nb_sub(nb_add(nb_matmul(X, w), b), y);
	nb_tensor *L = nb_mean(nb_square(e));
	nb_optim *o = nb_sgd(g, L, (nb_sgd_opts){.lr = 0.2});
	ck_graph_ok(g);
	for (int i = 0; i < 2000; i++)
		ck_assert_int_eq(nb_step(o), NB_OK);
	double wv[2];
	nb_read_f64(w, wv, 2);
	ck_near(wv[0], 1, 1e-9);
	ck_near(wv[1], 2, 1e-9);
	ck_near(nb_item(b), 1, 1e-9);
	nb_graph_free(g);
}
END_TEST

/* The op table has one complete entry per row of the op list, in the
 * list's order: row k is op k, its entry carries the row's name, a shape
 * rule and both kernels, and no two ops share a name. */
START_TEST(test_op_table_matches_op_list)
{
#define ROW_NAME(E, N) #N,
	static const char *const rows[] = {NB_OPS(ROW_NAME)};
#undef ROW_NAME
	const int n = (int)(sizeof rows / sizeof rows[0]);
	ck_assert_int_eq(nb_num_ops(), n);
	ck_assert_int_eq(NB_OP_COUNT, n);
	ck_assert_ptr_null(nb_op_name(-1));
	ck_assert_ptr_null(nb_op_name(n));
	for (int op = 0; op < n; op++) {
		const nb_opdef *d = nb__ops[op];
		ck_assert_msg(d != NULL, "op %d (%s) has no table entry", op, rows[op]);
		ck_assert_str_eq(d->name, rows[op]);
		ck_assert_str_eq(nb_op_name(op), rows[op]);
		ck_assert_msg(d->shape && d->forward_f32 && d->forward_f64, "%s: incomplete entry",
		              rows[op]);
		for (int k = 0; k < op; k++)
			ck_assert_msg(strcmp(rows[k], rows[op]) != 0, "%s listed twice", rows[op]);
	}
	ck_assert_int_eq(NB_OP_INPUT, 0);
	ck_assert_str_eq(nb_op_name(NB_OP_CONV2D), "conv2d");
	ck_assert_str_eq(nb_op_name(NB_OP_GLOBAL_AVGPOOL), "global_avgpool");
}
END_TEST

/* Every checkable op in the table passes its gradcheck on several seeds. */
START_TEST(test_gradcheck_every_op)
{
	for (int op = 0; op < nb_num_ops(); op++) {
		if (!nb_op_is_checkable(op))
			continue;
		for (uint64_t seed = 1; seed <= 5; seed++) {
			nb_gradcheck_report r;
			char err[512];
			nb_status st = nb_op_gradcheck(op, seed, &r, err, sizeof err);
			ck_assert_msg(st == NB_OK, "%s seed %llu: %s", nb_op_name(op),
			              (unsigned long long)seed, err);
			ck_assert_msg(
			    r.passed,
			    "%s seed %llu: worst abs err %g (analytic %g numeric %g), %lld failed",
			    nb_op_name(op), (unsigned long long)seed, r.max_abs_err,
			    r.worst_analytic, r.worst_numeric, (long long)r.failed);
		}
	}
}
END_TEST

/* a wrong gradient is caught: the check can fail */
START_TEST(test_gradcheck_detects_error)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(3), NB_UNIFORM(0.5, 1));
	/* max(x) with an exact tie is a kink: skipped, not failed */
	nb_tensor *t = nb_param(g, "t", NB_SHAPE(2), NB_ZEROS);
	nb_feed_f64(t, (double[]){0.7, 0.7}, 2);
	nb_tensor *L1 = nb_add(nb_sum(nb_exp(x)), nb_max(t));
	nb_gradcheck_report r;
	ck_assert_int_eq(nb_gradcheck(L1, (nb_tensor *[]){x, t}, 2, (nb_gradcheck_opts){0}, &r),
	                 NB_OK);
	ck_assert(r.passed);
	ck_assert_int_eq(r.skipped_kinks, 2);
	ck_assert_int_eq(r.checked, 3);
	nb_graph_free(g);
}
END_TEST

/* nb_gradcheck_defaults; atol and rtol 0 as written are an exact
 * comparison (which central differences fail), where a zero-initialised
 * struct still means the default tolerances; bad tolerances are refused */
START_TEST(test_gradcheck_opts_as_written)
{
	nb_gradcheck_opts d = nb_gradcheck_defaults();
	ck_assert(d.eps == 1e-6 && d.atol == 1e-6 && d.rtol == 1e-4 && d.as_written);
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(4), NB_UNIFORM(0.5, 1));
	nb_tensor *L = nb_sum(nb_exp(x));
	nb_gradcheck_report r;
	ck_assert_int_eq(nb_gradcheck(L, &x, 1, d, &r), NB_OK);
	ck_assert(r.passed && r.checked == 4);
	ck_assert_int_eq(nb_gradcheck(L, &x, 1, (nb_gradcheck_opts){.atol = 0, .rtol = 0}, &r),
	                 NB_OK);
	ck_assert(r.passed);
	nb_gradcheck_opts exact = d;
	exact.atol = exact.rtol = 0;
	ck_assert_int_eq(nb_gradcheck(L, &x, 1, exact, &r), NB_OK);
	ck_assert(!r.passed && r.failed > 0 && r.max_abs_err > 0);
	nb_gradcheck_opts bad[] = {{.atol = -1e-6},
	                           {.rtol = NAN},
	                           {.eps = -1},
	                           {.as_written = true}, /* eps 0 */
	                           {.eps = INFINITY, .as_written = true}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(nb_gradcheck(L, &x, 1, bad[i], &r), NB_ERR_ARG);
		ck_assert(strstr(nb_graph_errmsg(g), "gradcheck("));
		ck_assert(strstr(nb_graph_errmsg(g), "must be positive and finite"));
		nb_graph_clear_error(g);
	}
	nb_graph_free(g);
}
END_TEST

/* f32 graphs also compute gradients (checked against f64 at 1e-5) */
START_TEST(test_f32_matches_f64)
{
	double vals[6] = {0.1, -0.4, 0.3, 0.9, -0.7, 0.2};
	double res[2][6];
	for (int dt = 0; dt < 2; dt++) {
		nb_graph *g = nb_graph_new(dt ? NB_F64 : NB_F32);
		nb_tensor *x = nb_param(g, "x", NB_SHAPE(2, 3), NB_ZEROS);
		nb_feed_f64(x, vals, 6);
		nb_tensor *L = nb_sum(nb_exp(nb_matmul_t(x, x, false, true)));
		nb_tensor *dx = nb_grad(L, x);
		ck_graph_ok(g);
		nb_eval(dx);
		nb_read_f64(dx, res[dt], 6);
		nb_graph_free(g);
	}
	for (int i = 0; i < 6; i++)
		ck_near(res[0][i], res[1][i], 1e-5);
}
END_TEST

/* The backward pass is made of ordinary differentiable nodes, so it can be
 * differentiated again: a Hessian-vector product of f = sum(x^3 + x*y^2):
 * H v = d/dx (grad f . v), with grad_x f = 3x^2 + y^2 -> d/dx (grad_x f . v)
 * = 6 x v (elementwise) and d/dy = 2 y v. */
START_TEST(test_hessian_vector_product)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(3), NB_ZEROS);
	nb_tensor *y = nb_param(g, "y", NB_SHAPE(3), NB_ZEROS);
	nb_tensor *v = nb_constant(g, "v", NB_SHAPE(3), (double[]){1, -2, 0.5});
	nb_feed_f64(x, (double[]){0.5, -1, 2}, 3);
	nb_feed_f64(y, (double[]){1, 3, -0.25}, 3);
	nb_tensor *f = nb_sum(nb_add(nb_pow(x, 3), nb_mul(x, nb_square(y))));
	nb_tensor *gx = nb_grad(f, x);
	nb_tensor *hv[2];
	ck_assert_int_eq(nb_grads(nb_sum(nb_mul(gx, v)), (nb_tensor *[]){x, y}, 2, hv), NB_OK);
	nb_program *p = nb_compile(g, hv, 2);
	ck_assert_int_eq(nb_run(p), NB_OK);
	double hx[3], hy[3];
	nb_read_f64(hv[0], hx, 3);
	nb_read_f64(hv[1], hy, 3);
	const double xs[3] = {0.5, -1, 2}, ys[3] = {1, 3, -0.25}, vs[3] = {1, -2, 0.5};
	for (int i = 0; i < 3; i++) {
		ck_near(hx[i], 6 * xs[i] * vs[i], 1e-14);
		ck_near(hy[i], 2 * ys[i] * vs[i], 1e-14);
	}
	nb_graph_free(g);
}
END_TEST

/* Profiling: per-op times appear once it is on, and only then */
START_TEST(test_program_profile)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *a = nb_param(g, "a", NB_SHAPE(32, 48), NB_UNIFORM(-1, 1));
	nb_tensor *b = nb_param(g, "b", NB_SHAPE(48, 16), NB_UNIFORM(-1, 1));
	nb_tensor *y = nb_sum(nb_relu(nb_matmul(a, b)));
	nb_program *p = nb_compile(g, &y, 1);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_run(p), NB_OK);
	ck_assert(nb_program_profile_op_ms(p, "matmul") == -1); /* off */
	ck_assert_int_eq(nb_program_profile(p, true), NB_OK);
	ck_assert(nb_program_profile_op_ms(p, "matmul") == -1); /* nothing ran yet */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(nb_run(p), NB_OK);
	double mm = nb_program_profile_op_ms(p, "matmul"), rl = nb_program_profile_op_ms(p, "relu");
	ck_assert(mm >= 0 && rl >= 0);
	ck_assert(nb_program_profile_op_ms(p, "conv2d") == -1); /* not in this program */
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(nb_program_profile_report(p, f), NB_OK);
	rewind(f);
	char text[4096] = {0};
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	ck_assert(n > 0);
	ck_assert_msg(strstr(text, "matmul") && strstr(text, "relu") && strstr(text, "(3 runs)"),
	              "%s", text);
	ck_assert_int_eq(nb_program_profile(p, false), NB_OK);
	ck_assert(nb_program_profile_op_ms(p, "matmul") == -1);
	ck_assert_int_eq(nb_program_profile(NULL, true), NB_ERR_ARG);
	nb_graph_free(g);
}
END_TEST

/* Objects handed to the graph are destroyed with it, the last one first,
 * and not before. */
static int own_log[4], own_n;

static void own_destroy(void *p)
{
	own_log[own_n++] = *(const int *)p;
}

START_TEST(test_graph_owns_objects)
{
	static int a = 1, b = 2;
	own_n = 0;
	nb_graph *g = nb_graph_new(NB_F32);
	ck_assert_int_eq(nb__graph_own(g, &a, own_destroy), NB_OK);
	ck_assert_int_eq(nb__graph_own(g, &b, own_destroy), NB_OK);
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(2), NB_ONES);
	ck_assert_ptr_nonnull(nb_sgd(g, nb_sum(w), (nb_sgd_opts){0})); /* owned too */
	ck_assert_int_eq(nb_step(nb_sgd(g, nb_sum(nb_square(w)), (nb_sgd_opts){0})), NB_OK);
	ck_assert_int_eq(own_n, 0);
	nb_graph_free(g);
	ck_assert_int_eq(own_n, 2);
	ck_assert_int_eq(own_log[0], 2);
	ck_assert_int_eq(own_log[1], 1);
}
END_TEST

/* Kernels run with what nb_run hands them (nb_exec): a program is planned
 * for the thread count at compile time, and a run at another count plans
 * it again first: the convolution's plan then names the run's threads,
 * and the workspace is what that plan needs. */
START_TEST(test_program_planned_for_run_threads)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, 3);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(8, 16, 10, 10), NB_UNIFORM(-1, 1));
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(16, 16, 3, 3), NB_UNIFORM(-1, 1));
	nb_conv2d_opts o = NB_CONV_OPTS(1, 1);
	o.algo = NB_CONV_IM2COL;
	nb_tensor *y = nb_conv2d(x, w, NULL, o);
	nb_set_num_threads(1);
	nb_program *p = nb_compile(g, &y, 1);
	ck_assert_ptr_nonnull(p);
	int s = 0;
	while (s < p->n && p->sched[s] != y)
		s++;
	ck_assert_int_lt(s, p->n);
	const nb__conv_node_plan *np = p->plan[s];
	ck_assert_int_eq(p->plan_threads, 1);
	ck_assert_int_eq(np->plan.team, 1);
	ck_assert_int_eq(np->plan.threads, 1);
	const size_t ws1 = p->workspace_bytes;
	ck_assert_uint_ge(ws1, nb__conv_paths[np->plan.path].workspace(&np->geom, &np->plan));
	nb_set_num_threads(2);
	ck_assert_int_eq(nb_run(p), NB_OK);
	ck_assert_int_eq(p->plan_threads, 2);
	ck_assert_int_eq(np->plan.team, 2);
	ck_assert_int_eq(np->plan.threads, 2); /* 8 images split over both threads */
	ck_assert_uint_ge(p->workspace_bytes,
	                  nb__conv_paths[np->plan.path].workspace(&np->geom, &np->plan));
	ck_assert_uint_gt(p->workspace_bytes, ws1); /* a slice per batch thread */
	nb_set_num_threads(1);
	ck_assert_int_eq(nb_run(p), NB_OK);
	ck_assert_int_eq(np->plan.threads, 1);
	nb_set_num_threads(0);
	nb_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_add_broadcast_values);
	tcase_add_test(tc, test_broadcast_to_values);
	tcase_add_test(tc, test_gradcheck_opts_as_written);
	tcase_add_test(tc, test_matmul_values);
	tcase_add_test(tc, test_grad_fanout);
	tcase_add_test(tc, test_stop_gradient);
	tcase_add_test(tc, test_grad_many_inputs);
	tcase_add_test(tc, test_pow_gradient_edges);
	tcase_add_test(tc, test_kink_conventions);
	tcase_add_test(tc, test_grad_prunes_constant_paths);
	tcase_add_test(tc, test_planner_reuses_memory);
	tcase_add_test(tc, test_dead_nodes_not_scheduled);
	tcase_add_test(tc, test_sgd_linear_regression);
	tcase_add_test(tc, test_op_table_matches_op_list);
	tcase_add_test(tc, test_gradcheck_every_op);
	tcase_add_test(tc, test_gradcheck_detects_error);
	tcase_add_test(tc, test_f32_matches_f64);
	tcase_add_test(tc, test_hessian_vector_product);
	tcase_add_test(tc, test_program_profile);
	tcase_add_test(tc, test_graph_owns_objects);
	tcase_add_test(tc, test_program_planned_for_run_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
