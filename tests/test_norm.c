/* Batch normalisation and dropout: the lecture notes' worked examples,
 * running statistics, train/eval, references, gradients, errors. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-5

/* deterministic test data in [lo, hi) */
static void fill(double *v, int n, uint64_t seed, double lo, double hi)
{
	for (int i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		v[i] = lo + (hi - lo) * (double)(seed >> 11) * 0x1.0p-53;
	}
}

static double biased_var(const double *v, int n, double mean)
{
	double q = 0;
	for (int i = 0; i < n; i++)
		q += (v[i] - mean) * (v[i] - mean);
	return q / n;
}

/* Naive batchnorm of x viewed as [N, C, S]: batch statistics when mu is
 * NULL (returned in bmu, bvar; biased variance), else the given ones. */
static void ref_bn(const double *x, int N, int C, int S, const double *ga, const double *be,
                   const double *mu, const double *var, double eps, double *y, double *bmu,
                   double *bvar)
{
	for (int c = 0; c < C; c++) {
		double m = 0, v = 0;
		if (mu) {
			m = mu[c], v = var[c];
		} else {
			for (int n = 0; n < N; n++)
				for (int s = 0; s < S; s++)
					m += x[(n * C + c) * S + s];
			m /= N * S;
			for (int n = 0; n < N; n++)
				for (int s = 0; s < S; s++)
					v += pow(x[(n * C + c) * S + s] - m, 2);
			v /= N * S;
			bmu[c] = m, bvar[c] = v;
		}
		for (int n = 0; n < N; n++)
			for (int s = 0; s < S; s++) {
				int i = (n * C + c) * S + s;
				y[i] = ga[c] * (x[i] - m) / sqrt(v + eps) + be[c];
			}
	}
}

static nb_tensor *state(nb_graph *g, const char *name, int C, const double *v)
{
	return nb_constant(g, name, NB_SHAPE(C), v);
}

/* ---- the lecture notes' worked examples ------------------------------------------ */

/* Two images x two channels of 2x2 (the notes' "Image 1: channel 1
 * [1 2; 3 4], channel 2 [5 6; 7 8]; Image 2: [9 10; 11 12], [13 14; 15 16]"),
 * i.e. NCHW [2,2,2,2] holding 1..16 in order.  Channel means 6.5 and 10.5,
 * biased variance 17.25 for both.  (The notes write "sigma_1^2 = 52/8 =
 * 6.5", which is the mean, then derive 17.25 correctly.)  The notes divide
 * by sqrt(17.25) rounded to 4.15 (exact: 4.1533...) and ignore eps, so
 * their printed values are off in the third decimal; channel 1's printed
 * matrix also has slips (-0.23 for (3-6.5)/4.15 = -0.843, 0.618 for
 * (11-6.5)/4.15 = 1.084).  We test the exact (x - mu)/sqrt(var + eps). */
START_TEST(test_notes_conv_example)
{
	nb_graph *g = nb_graph_new(NB_F64);
	double xv[16], y[16];
	for (int i = 0; i < 16; i++)
		xv[i] = i + 1;
	nb_tensor *x = nb_constant(g, "x", NB_SHAPE(2, 2, 2, 2), xv);
	nb_tensor *bn = nb_batchnorm_layer(x, "bn", (nb_batchnorm_opts){0});
	ck_graph_ok(g);
	ck_assert_int_eq(nb_eval(bn), NB_OK);
	ck_assert_int_eq(nb_read_f64(bn, y, 16), NB_OK);

	const double mu[2] = {6.5, 10.5};
	for (int c = 0; c < 2; c++) {
		/* the channel's 8 values: both images' feature maps */
		double v[8];
		for (int n = 0; n < 2; n++)
			memcpy(v + 4 * n, xv + (n * 2 + c) * 4, 4 * sizeof *v);
		double m = 0;
		for (int i = 0; i < 8; i++)
			m += v[i] / 8;
		ck_near(m, mu[c], 0);
		ck_near(biased_var(v, 8, m), 17.25, 0);
	}
	double ym[2] = {0}, yv[2] = {0};
	for (int i = 0; i < 16; i++) {
		int c = i / 4 % 2;
		ck_near(y[i], (xv[i] - mu[c]) / sqrt(17.25 + EPS), 1e-15);
		ym[c] += y[i] / 8;
		yv[c] += y[i] * y[i] / 8;
	}
	/* the notes' check: mean 0 and variance ~1 after normalisation
	 * (exactly 17.25 / (17.25 + eps) because of eps) */
	for (int c = 0; c < 2; c++) {
		ck_near(ym[c], 0, 1e-15);
		ck_near(yv[c], 17.25 / (17.25 + EPS), 1e-15);
	}
	/* the notes' channel 2 values, computed with 4.15 and rounded: within
	 * their rounding of (x - mu)/4.15, and about 1e-3 from the exact ones */
	const double notes_c2[8] = {-1.3253, -1.0842, -0.843, -0.602, 0.602, 0.843, 1.084, 1.3253};
	for (int j = 0; j < 8; j++) {
		int i = (j / 4 * 2 + 1) * 4 + j % 4; /* image j/4, channel 2 */
		ck_near(notes_c2[j], (xv[i] - 10.5) / 4.15, 5e-4);
		ck_near(y[i], notes_c2[j], 1.1e-3);
	}
	/* one training run moved the running statistics (momentum 0.1) with
	 * the unbiased variance 17.25 * 8/7 */
	double rm[2], rv[2];
	nb_read_f64(nb_graph_find(g, "bn.running_mean"), rm, 2);
	nb_read_f64(nb_graph_find(g, "bn.running_var"), rv, 2);
	for (int c = 0; c < 2; c++) {
		ck_near(rm[c], 0.1 * mu[c], 1e-15);
		ck_near(rv[c], 0.9 * 1 + 0.1 * (17.25 * 8 / 7), 1e-14);
	}
	nb_graph_free(g);
}
END_TEST

/* The dense example: one neuron over a batch of three, x = {4, 5, 8}:
 * mean 17/3, biased variance 26/9 (the notes' 2.89).  The notes' printed
 * normalised values {-0.8, -0.32, 1.12} are wrong: they used mu = 5.6
 * instead of 5.67 (and even (x - 5.6)/1.7 gives {-0.94, -0.35, 1.41}).
 * The exact values are {-0.98058, -0.39223, 1.37281}. */
START_TEST(test_notes_dense_example)
{
	nb_graph *g = nb_graph_new(NB_F64);
	const double xv[3] = {4, 5, 8}, exact[3] = {-0.98058, -0.39223, 1.37281};
	nb_tensor *x = nb_constant(g, "x", NB_SHAPE(3, 1), xv);
	nb_tensor *y = nb_batchnorm_layer(x, "bn", (nb_batchnorm_opts){0});
	ck_graph_ok(g);
	ck_assert_int_eq(nb_eval(y), NB_OK);
	double out[3];
	nb_read_f64(y, out, 3);
	double mu = 17.0 / 3, var = biased_var(xv, 3, mu);
	ck_near(var, 26.0 / 9, 1e-15);
	for (int i = 0; i < 3; i++) {
		ck_near(out[i], (xv[i] - mu) / sqrt(var + EPS), 1e-15);
		ck_near(out[i], exact[i], 5e-6);
	}
	nb_graph_free(g);
}
END_TEST

/* ---- modes and running statistics --------------------------------------------------- */

/* Eval mode normalises with the running statistics, leaves them alone,
 * and needs no recompilation after a training run. */
START_TEST(test_eval_uses_running_stats)
{
	nb_graph *g = nb_graph_new(NB_F64);
	double xv[12], ga[3] = {1.5, -0.5, 2}, be[3] = {0.1, 0.2, -0.3};
	double rm0[3] = {0.5, -1, 2}, rv0[3] = {0.25, 4, 1.5}, y[12], want[12];
	fill(xv, 12, 7, -2, 2);
	nb_tensor *x = nb_constant(g, "x", NB_SHAPE(4, 3), xv);
	nb_tensor *rm = state(g, "rm", 3, rm0), *rv = state(g, "rv", 3, rv0);
	nb_tensor *out = nb_batchnorm(x, nb_constant(g, "gamma", NB_SHAPE(3), ga),
	                              nb_constant(g, "beta", NB_SHAPE(3), be), rm, rv,
	                              (nb_batchnorm_opts){.eps = 1e-3, .momentum = 0.25});
	ck_graph_ok(g);
	nb_graph_set_training(g, false);
	ck_assert(!nb_graph_training(g));
	for (int rep = 0; rep < 2; rep++) {
		ck_assert_int_eq(nb_eval(out), NB_OK);
		nb_read_f64(out, y, 12);
		ref_bn(xv, 4, 3, 1, ga, be, rm0, rv0, 1e-3, want, NULL, NULL);
		for (int i = 0; i < 12; i++)
			ck_near(y[i], want[i], 1e-14);
		double r[3];
		nb_read_f64(rm, r, 3);
		ck_assert_mem_eq(r, rm0, sizeof r);
		nb_read_f64(rv, r, 3);
		ck_assert_mem_eq(r, rv0, sizeof r);
	}
	/* same program in training mode: batch statistics, stats move */
	nb_graph_set_training(g, true);
	ck_assert_int_eq(nb_eval(out), NB_OK);
	nb_read_f64(out, y, 12);
	double bmu[3], bvar[3], r[3];
	ref_bn(xv, 4, 3, 1, ga, be, NULL, NULL, 1e-3, want, bmu, bvar);
	for (int i = 0; i < 12; i++)
		ck_near(y[i], want[i], 1e-14);
	nb_read_f64(rm, r, 3);
	for (int c = 0; c < 3; c++)
		ck_near(r[c], 0.75 * rm0[c] + 0.25 * bmu[c], 1e-15);
	nb_graph_free(g);
}
END_TEST

/* k training steps on changing batches follow the hand-unrolled recurrence
 * running = (1-m) running + m batch, with the unbiased batch variance. */
START_TEST(test_running_stats_recurrence)
{
	enum { N = 4, C = 2, S = 3, K = 6 };
	const double m = 0.3;
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(N, C, 1, S));
	nb_tensor *y = nb_batchnorm_layer(x, "bn", (nb_batchnorm_opts){.momentum = m});
	nb_tensor *rm = nb_graph_find(g, "bn.running_mean");
	nb_tensor *rv = nb_graph_find(g, "bn.running_var");
	ck_graph_ok(g);
	double em[C] = {0, 0}, ev[C] = {1, 1}; /* the layer's initial values */
	for (int k = 0; k < K; k++) {
		double xv[N * C * S];
		fill(xv, N * C * S, 100 + k, -1 - k, 2 + 0.5 * k);
		ck_assert_int_eq(nb_feed_f64(x, xv, N * C * S), NB_OK);
		ck_assert_int_eq(nb_eval(y), NB_OK);
		for (int c = 0; c < C; c++) {
			double v[N * S], mean = 0;
			for (int n = 0; n < N; n++)
				for (int s = 0; s < S; s++)
					mean += (v[n * S + s] = xv[(n * C + c) * S + s]) / (N * S);
			double unbiased = biased_var(v, N * S, mean) * (N * S) / (N * S - 1);
			em[c] = (1 - m) * em[c] + m * mean;
			ev[c] = (1 - m) * ev[c] + m * unbiased;
		}
		double r[C];
		nb_read_f64(rm, r, C);
		for (int c = 0; c < C; c++)
			ck_near(r[c], em[c], 1e-14);
		nb_read_f64(rv, r, C);
		for (int c = 0; c < C; c++)
			ck_near(r[c], ev[c], 1e-13);
	}
	nb_graph_free(g);
}
END_TEST

/* nb_batchnorm_defaults; momentum 0 as written keeps the running
 * statistics as they are (PyTorch's momentum=0) while the batch is still
 * normalised with its own statistics; a zero-initialised struct still
 * means momentum 0.1. */
START_TEST(test_bn_momentum_zero)
{
	nb_batchnorm_opts d = nb_batchnorm_defaults();
	ck_assert(d.eps == 1e-5 && d.momentum == 0.1 && !d.relu && d.as_written);
	enum { N = 4, C = 2, S = 3 };
	for (int as_written = 0; as_written < 2; as_written++) {
		nb_graph *g = nb_graph_new(NB_F64);
		nb_tensor *x = nb_input(g, "x", NB_SHAPE(N, C, 1, S));
		nb_batchnorm_opts o = as_written ? nb_batchnorm_defaults() : (nb_batchnorm_opts){0};
		o.momentum = 0;
		nb_tensor *y = nb_batchnorm_layer(x, "bn", o);
		nb_tensor *rm = nb_graph_find(g, "bn.running_mean");
		nb_tensor *rv = nb_graph_find(g, "bn.running_var");
		ck_graph_ok(g);
		const double rm0[C] = {0.25, -1.5}, rv0[C] = {2, 0.5};
		nb_feed_f64(rm, rm0, C);
		nb_feed_f64(rv, rv0, C);
		double xv[N * C * S], out[N * C * S];
		for (int k = 0; k < 3; k++) {
			fill(xv, N * C * S, 7 + k, -2, 3);
			ck_assert_int_eq(nb_feed_f64(x, xv, N * C * S), NB_OK);
			ck_assert_int_eq(nb_eval(y), NB_OK);
		}
		double r[C], v[C];
		nb_read_f64(rm, r, C);
		nb_read_f64(rv, v, C);
		bool kept = !memcmp(r, rm0, sizeof r) && !memcmp(v, rv0, sizeof v);
		ck_assert_msg(kept == (as_written == 1), "as_written %d: running stats %s",
		              as_written, kept ? "kept" : "moved");
		/* training mode: normalised by the batch's statistics (mean 0) */
		nb_read_f64(y, out, N * C * S);
		double mean0 = 0;
		for (int n = 0; n < N; n++)
			for (int s = 0; s < S; s++)
				mean0 += out[(n * C) * S + s];
		ck_near(mean0, 0, 1e-12);
		nb_graph_free(g);
	}
}
END_TEST

/* ---- references: naive loops, and the same maths from primitive ops ---------------- */

/* batchnorm written with mean/sub/square/pow/mul/add; axes = the reduced
 * axes, gamma/beta reshaped to broadcast over them */
static nb_tensor *composed_bn(nb_tensor *x, nb_tensor *ga, nb_tensor *be, nb_tensor *rm,
                              nb_tensor *rv, bool training)
{
	nb_shape s = nb_tensor_shape(x);
	int axes[3] = {0, 2, 3}, na = s.ndim == 4 ? 3 : 1;
	nb_shape cs = s.ndim == 4 ? NB_SHAPE(1, s.d[1], 1, 1) : NB_SHAPE(1, s.d[1]);
	nb_tensor *mu = training ? nb_mean_axes(x, axes, na, true) : nb_reshape(rm, cs);
	nb_tensor *d = nb_sub(x, mu);
	nb_tensor *var = training ? nb_mean_axes(nb_square(d), axes, na, true) : nb_reshape(rv, cs);
	nb_tensor *xhat = nb_mul(d, nb_pow(nb_add_scalar(var, EPS), -0.5));
	return nb_add(nb_mul(xhat, nb_reshape(ga, cs)), nb_reshape(be, cs));
}

static void check_against_references(nb_shape xs)
{
	int N = (int)xs.d[0], C = (int)xs.d[1], S = (int)(nb_shape_size(xs) / (N * C));
	int n = N * C * S;
	double *xv = malloc(sizeof(double) * n), *cv = malloc(sizeof(double) * n);
	double *y = malloc(sizeof(double) * n), *want = malloc(sizeof(double) * n);
	double ga[4], be[4], rm0[4], rv0[4], bmu[4], bvar[4];
	fill(xv, n, 1, -3, 3);
	fill(cv, n, 2, -1, 1);
	fill(ga, C, 3, 0.5, 2);
	fill(be, C, 4, -1, 1);
	fill(rm0, C, 5, -1, 1);
	fill(rv0, C, 6, 0.5, 2);
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "x", xs, NB_ZEROS);
	nb_tensor *gamma = nb_param(g, "gamma", NB_SHAPE(C), NB_ZEROS);
	nb_tensor *beta = nb_param(g, "beta", NB_SHAPE(C), NB_ZEROS);
	nb_feed_f64(x, xv, n);
	nb_feed_f64(gamma, ga, C);
	nb_feed_f64(beta, be, C);
	nb_tensor *rm = state(g, "rm", C, rm0), *rv = state(g, "rv", C, rv0);
	nb_tensor *c = nb_constant(g, "c", xs, cv);
	nb_tensor *bn = nb_batchnorm(x, gamma, beta, rm, rv, (nb_batchnorm_opts){0});
	nb_tensor *ref[2] = {composed_bn(x, gamma, beta, rm, rv, false),
	                     composed_bn(x, gamma, beta, rm, rv, true)};
	nb_tensor *wrt[3] = {x, gamma, beta}, *gb[3], *gr[2][3];
	nb_grads(nb_sum(nb_mul(bn, c)), wrt, 3, gb);
	for (int t = 0; t < 2; t++)
		nb_grads(nb_sum(nb_mul(ref[t], c)), wrt, 3, gr[t]);
	ck_graph_ok(g);
	nb_program *pb = nb_compile(g, (nb_tensor *[]){bn, gb[0], gb[1], gb[2]}, 4);
	nb_program *pr[2];
	for (int t = 0; t < 2; t++)
		pr[t] = nb_compile(g, (nb_tensor *[]){ref[t], gr[t][0], gr[t][1], gr[t][2]}, 4);
	ck_graph_ok(g);
	for (int t = 0; t < 2; t++) { /* eval first: running stats still rm0, rv0 */
		nb_graph_set_training(g, t == 1);
		ck_assert_int_eq(nb_run(pb), NB_OK);
		/* loops */
		nb_read_f64(bn, y, n);
		ref_bn(xv, N, C, S, ga, be, t ? NULL : rm0, t ? NULL : rv0, EPS, want, bmu, bvar);
		for (int i = 0; i < n; i++)
			ck_near(y[i], want[i], 1e-13);
		/* composed ops, values and gradients */
		double got[3][64], exp_[3][64];
		for (int k = 0; k < 3; k++)
			nb_read_f64(gb[k], got[k], nb_tensor_size(wrt[k]));
		/* training: y ignores a per-channel shift of x, so dx sums to 0 */
		for (int ch = 0; t == 1 && ch < C; ch++) {
			double sum = 0;
			for (int i = 0; i < n; i++)
				sum += i / S % C == ch ? got[0][i] : 0;
			ck_near(sum, 0, 1e-13);
		}
		ck_assert_int_eq(nb_run(pr[t]), NB_OK);
		nb_read_f64(ref[t], want, n);
		for (int i = 0; i < n; i++)
			ck_near(y[i], want[i], 1e-13);
		for (int k = 0; k < 3; k++) {
			nb_read_f64(gr[t][k], exp_[k], nb_tensor_size(wrt[k]));
			for (int i = 0; i < nb_tensor_size(wrt[k]); i++)
				ck_near(got[k][i], exp_[k][i], 1e-12);
		}
	}
	nb_graph_free(g);
	free(xv), free(cv), free(y), free(want);
}

START_TEST(test_matches_references_dense)
{
	check_against_references(NB_SHAPE(5, 3));
}
END_TEST

START_TEST(test_matches_references_conv)
{
	check_against_references(NB_SHAPE(2, 4, 2, 3));
	check_against_references(NB_SHAPE(3, 1, 3, 1));
}
END_TEST

/* finite differences in both modes, with non-default eps and momentum; in
 * training the repeated forward runs keep moving the running statistics,
 * which the training-mode output does not read */
START_TEST(test_bn_gradcheck)
{
	nb_shape shapes[2] = {NB_SHAPE(4, 3), NB_SHAPE(2, 2, 3, 2)};
	for (int k = 0; k < 4; k++) {
		int s = k / 2, train = k % 2;
		nb_graph *g = nb_graph_new(NB_F64);
		nb_graph_seed(g, 11 + s);
		int C = (int)shapes[s].d[1];
		nb_tensor *x = nb_param(g, "x", shapes[s], NB_UNIFORM(-2, 2));
		nb_tensor *ga = nb_param(g, "gamma", NB_SHAPE(C), NB_UNIFORM(0.5, 1.5));
		nb_tensor *be = nb_param(g, "beta", NB_SHAPE(C), NB_UNIFORM(-1, 1));
		nb_tensor *c = nb_param(g, "c", shapes[s], NB_UNIFORM(-1, 1));
		nb_tensor *rm = state(g, "rm", C, NULL), *rv = state(g, "rv", C, NULL);
		nb_init_tensor(rv, NB_UNIFORM(0.5, 2));
		nb_batchnorm_opts o = {.eps = 1e-3, .momentum = 0.5};
		nb_tensor *y = nb_batchnorm(x, ga, be, rm, rv, o);
		/* a nonlinear loss, so the incoming gradient depends on x */
		nb_tensor *L = nb_sum(nb_mul(nb_square(y), nb_stop_gradient(c)));
		nb_graph_set_training(g, train);
		nb_gradcheck_report r;
		nb_tensor *wrt[3] = {x, ga, be};
		ck_assert_int_eq(nb_gradcheck(L, wrt, 3, (nb_gradcheck_opts){0}, &r), NB_OK);
		ck_assert_msg(r.passed, "shape %d train %d: err %g (analytic %g numeric %g)", s,
		              train, r.max_abs_err, r.worst_analytic, r.worst_numeric);
		ck_assert_int_eq(r.checked, nb_tensor_size(x) + 2 * C);
		nb_graph_free(g);
	}
}
END_TEST

/* f32 graphs compute the same as f64 to f32 precision */
START_TEST(test_bn_f32_matches_f64)
{
	enum { n = 2 * 3 * 2 * 2, C = 3 };
	double xv[n], cv[n], out[2][2][n], rs[2][2][C];
	fill(xv, n, 21, -2, 3);
	fill(cv, n, 22, -1, 1);
	for (int dt = 0; dt < 2; dt++) {
		nb_graph *g = nb_graph_new(dt ? NB_F64 : NB_F32);
		nb_tensor *x = nb_param(g, "x", NB_SHAPE(2, C, 2, 2), NB_ZEROS);
		nb_feed_f64(x, xv, n);
		nb_tensor *y = nb_batchnorm_layer(x, "bn", (nb_batchnorm_opts){0});
		nb_tensor *c = nb_constant(g, "c", NB_SHAPE(2, C, 2, 2), cv);
		nb_tensor *dx = nb_grad(nb_sum(nb_mul(y, c)), x);
		ck_graph_ok(g);
		nb_program *p = nb_compile(g, (nb_tensor *[]){y, dx}, 2);
		ck_assert_int_eq(nb_run(p), NB_OK);
		nb_read_f64(y, out[dt][0], n);
		nb_read_f64(dx, out[dt][1], n);
		nb_read_f64(nb_graph_find(g, "bn.running_mean"), rs[dt][0], C);
		nb_read_f64(nb_graph_find(g, "bn.running_var"), rs[dt][1], C);
		nb_graph_free(g);
	}
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < n; i++)
			ck_near(out[0][k][i], out[1][k][i], 1e-5);
	for (int k = 0; k < 2; k++)
		for (int c = 0; c < C; c++)
			ck_near(rs[0][k][c], rs[1][k][c], 1e-6);
}
END_TEST

/* gamma, beta and the running mean of layer "bn" drawn at random (the
 * running statistics away from the batch's, so eval mode differs), then p
 * run in the mode asked for */
static void bn_run_with_random_leaves(nb_graph *g, nb_program *p, bool training)
{
	nb_init_tensor(nb_graph_find(g, "bn.running_mean"), NB_UNIFORM(-0.5, 0.5));
	nb_init_tensor(nb_graph_find(g, "bn.gamma"), NB_UNIFORM(0.5, 1.5));
	nb_init_tensor(nb_graph_find(g, "bn.beta"), NB_UNIFORM(-0.5, 0.5));
	nb_graph_set_training(g, training);
	ck_assert_int_eq(nb_run(p), NB_OK);
}

/* batchnorm with .relu is nb_relu(nb_batchnorm(...)) fused: the same
 * output and gradients of x, gamma and beta, in training and in eval mode,
 * f32 and f64, per channel and per feature */
static void fused_relu_run(nb_dtype dt, nb_shape xs, bool fused, bool training, double *out)
{
	const int64_t n = nb_shape_size(xs), C = xs.d[1];
	double *xv = malloc(sizeof(double) * (size_t)n), *cv = malloc(sizeof(double) * (size_t)n);
	fill(xv, n, 31, -2, 3);
	fill(cv, n, 32, -1, 1);
	nb_graph *g = nb_graph_new(dt);
	nb_tensor *x = nb_param(g, "x", xs, NB_ZEROS);
	nb_feed_f64(x, xv, n);
	nb_tensor *y = nb_batchnorm_layer(x, "bn", (nb_batchnorm_opts){.relu = fused});
	if (!fused)
		y = nb_relu(y);
	nb_tensor *c = nb_constant(g, "c", xs, cv);
	nb_tensor *wrt[3] = {x, nb_graph_find(g, "bn.gamma"), nb_graph_find(g, "bn.beta")}, *gr[3];
	ck_assert_int_eq(nb_grads(nb_sum(nb_mul(y, c)), wrt, 3, gr), NB_OK);
	nb_program *p = nb_compile(g, (nb_tensor *[]){y, gr[0], gr[1], gr[2]}, 4);
	ck_graph_ok(g);
	bn_run_with_random_leaves(g, p, training);
	nb_read_f64(y, out, n);
	nb_read_f64(gr[0], out + n, n);
	nb_read_f64(gr[1], out + 2 * n, C);
	nb_read_f64(gr[2], out + 2 * n + C, C);
	nb_graph_free(g);
	free(xv), free(cv);
}

START_TEST(test_bn_relu_fused_matches_unfused)
{
	const nb_shape shapes[2] = {NB_SHAPE(3, 4, 5, 6), NB_SHAPE(7, 5)};
	for (int dt = 0; dt < 2; dt++)
		for (int si = 0; si < 2; si++)
			for (int tr = 0; tr < 2; tr++) {
				const int64_t n = nb_shape_size(shapes[si]),
				              len = 2 * n + 2 * shapes[si].d[1];
				double *a = malloc(sizeof(double) * (size_t)len),
				       *b = malloc(sizeof(double) * (size_t)len);
				fused_relu_run(dt ? NB_F64 : NB_F32, shapes[si], true, tr, a);
				fused_relu_run(dt ? NB_F64 : NB_F32, shapes[si], false, tr, b);
				int zeros = 0;
				/* the output is the same bits; the gradients' channel sums
				 * may be vectorised differently (lanes), so they agree to
				 * rounding: 1e-6 (f32) / 1e-13 (f64) of the largest value */
				double big = 0;
				for (int64_t i = n; i < len; i++)
					big = fmax(big, fabs(b[i]));
				for (int64_t i = 0; i < len; i++)
					ck_assert_msg(
					    i < n ? a[i] == b[i]
					          : fabs(a[i] - b[i]) <= (dt ? 1e-13 : 1e-6) * big,
					    "dtype %d shape %d training %d: [%lld] fused %.17g unfused %.17g",
					    dt, si, tr, (long long)i, a[i], b[i]);
				for (int64_t i = 0; i < n; i++)
					zeros += a[i] == 0;
				/* the ReLU did something: some outputs clipped, some not */
				ck_assert(zeros > n / 8 && zeros < n - n / 8);
				free(a), free(b);
			}
}
END_TEST

/* The fused ReLU's backward recomputes x scale + shift from x for its mask
 * instead of reading y: at the edge of the ReLU, where the rounding of
 * that expression decides the mask, its mask must be the forward's to the
 * bit.  Eval mode (dx = gamma invstd g, no sums) with x at and around
 * -shift/scale in every channel: dx of the fused node, bitwise that of
 * nb_relu after an unfused one, and both sides of the edge present. */
static void edge_run(nb_dtype dt, bool fused, const double *xv, const double *cv, int C, int n,
                     const double *st, double *dx)
{
	nb_graph *g = nb_graph_new(dt);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(n / C, C), NB_ZEROS);
	nb_feed_f64(x, xv, n);
	nb_tensor *y = nb_batchnorm_layer(x, "bn", (nb_batchnorm_opts){.relu = fused});
	if (!fused)
		y = nb_relu(y);
	nb_tensor *c = nb_constant(g, "c", NB_SHAPE(n / C, C), cv);
	nb_tensor *d = nb_grad(nb_sum(nb_mul(y, c)), x);
	nb_program *p = nb_compile(g, (nb_tensor *[]){d}, 1);
	ck_graph_ok(g);
	const char *names[4] = {"bn.gamma", "bn.beta", "bn.running_mean", "bn.running_var"};
	for (int k = 0; k < 4; k++)
		nb_feed_f64(nb_graph_find(g, names[k]), st + k * C, C);
	nb_graph_set_training(g, false);
	ck_assert_int_eq(nb_run(p), NB_OK);
	nb_read_f64(d, dx, n);
	nb_graph_free(g);
}

START_TEST(test_bn_relu_mask_at_the_edge)
{
	enum { C = 7, K = 24, N = 2 * K + 1, n = N * C };
	for (int dt = 0; dt < 2; dt++) {
		double st[4 * C], xv[n], cv[n], a[n], b[n];
		fill(st, C, 71, 0.3, 1.7);          /* gamma */
		fill(st + C, C, 72, -0.9, 0.9);     /* beta */
		fill(st + 2 * C, C, 73, -0.5, 0.5); /* running mean */
		fill(st + 3 * C, C, 74, 0.2, 3.0);  /* running var */
		fill(cv, n, 75, 0.5, 1.5);
		for (int c = 0; c < C; c++) {
			/* scale and shift as the kernel rounds them */
			const double is = 1 / sqrt(st[3 * C + c] + 1e-5), ga = st[c],
			             be = st[C + c], mu = st[2 * C + c];
			const double scale = dt ? ga * is : (float)(ga * is),
			             shift = dt ? be - mu * ga * is : (float)(be - mu * ga * is);
			double e = -shift / scale;
			if (!dt)
				e = (float)e;
			/* e and K neighbours either side, a unit in the last place apart */
			double lo = e, hi = e;
			for (int k = 0; k <= K; k++) {
				xv[(K - k) * C + c] = lo;
				xv[(K + k) * C + c] = hi;
				lo = dt ? nextafter(lo, -INFINITY)
				        : nextafterf((float)lo, -INFINITY);
				hi = dt ? nextafter(hi, INFINITY) : nextafterf((float)hi, INFINITY);
			}
		}
		edge_run(dt ? NB_F64 : NB_F32, true, xv, cv, C, n, st, a);
		edge_run(dt ? NB_F64 : NB_F32, false, xv, cv, C, n, st, b);
		int on = 0;
		for (int i = 0; i < n; i++) {
			ck_assert_msg(
			    !memcmp(&a[i], &b[i], sizeof a[i]),
			    "%s x[%d] = %.17g: fused dx %.17g, relu after batchnorm %.17g",
			    dt ? "f64" : "f32", i, xv[i], a[i], b[i]);
			on += a[i] != 0;
		}
		ck_assert_msg(on > n / 4 && on < n - n / 4, "%s: %d of %d positions pass the ReLU",
		              dt ? "f64" : "f32", on, n);
	}
}
END_TEST

/* dgamma and dbeta come from the sums the dx kernel computes on its way
 * when x takes a gradient, from a sums node of their own when it does not:
 * the same bits either way (relu fused or not, training or eval, f32 and
 * f64, per channel and per feature) */
static void param_grads_run(nb_dtype dt, nb_shape xs, bool with_dx, bool relu, bool training,
                            double *out)
{
	const int64_t n = nb_shape_size(xs), C = xs.d[1];
	double *xv = malloc(sizeof(double) * (size_t)n), *cv = malloc(sizeof(double) * (size_t)n);
	fill(xv, n, 41, -2, 3);
	fill(cv, n, 42, -1, 1);
	nb_graph *g = nb_graph_new(dt);
	nb_tensor *x = with_dx ? nb_param(g, "x", xs, NB_ZEROS) : nb_constant(g, "x", xs, xv);
	if (with_dx)
		nb_feed_f64(x, xv, n);
	nb_tensor *y = nb_batchnorm_layer(x, "bn", (nb_batchnorm_opts){.relu = relu});
	nb_tensor *c = nb_constant(g, "c", xs, cv);
	nb_tensor *wrt[3] = {nb_graph_find(g, "bn.gamma"), nb_graph_find(g, "bn.beta"), x}, *gr[3];
	ck_assert_int_eq(nb_grads(nb_sum(nb_mul(y, c)), wrt, with_dx ? 3 : 2, gr), NB_OK);
	nb_program *p = nb_compile(g, gr, with_dx ? 3 : 2);
	ck_graph_ok(g);
	bn_run_with_random_leaves(g, p, training);
	nb_read_f64(gr[0], out, C);
	nb_read_f64(gr[1], out + C, C);
	nb_graph_free(g);
	free(xv), free(cv);
}

START_TEST(test_bn_param_grads_with_and_without_dx)
{
	const nb_shape shapes[2] = {NB_SHAPE(3, 4, 5, 6), NB_SHAPE(7, 5)};
	for (int k = 0; k < 16; k++) {
		const nb_shape xs = shapes[k & 1];
		const nb_dtype dt = k & 2 ? NB_F64 : NB_F32;
		const bool relu = k & 4, training = k & 8;
		const int64_t C = xs.d[1];
		double a[10], b[10];
		param_grads_run(dt, xs, true, relu, training, a);
		param_grads_run(dt, xs, false, relu, training, b);
		for (int64_t i = 0; i < 2 * C; i++)
			ck_assert_msg(a[i] == b[i] && a[i] != 0,
			              "case %d [%lld]: with dx %.17g, without %.17g", k,
			              (long long)i, a[i], b[i]);
	}
}
END_TEST

/* the layer helper's parameters, state and initial values */
START_TEST(test_bn_layer_leaves)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(8, 5, 3, 3));
	nb_tensor *y = nb_batchnorm_layer(x, "block1.bn", (nb_batchnorm_opts){0});
	ck_graph_ok(g);
	ck_assert_str_eq(nb_tensor_op(y), "batchnorm");
	ck_assert_int_eq(nb_graph_num_params(g), 2);
	const char *names[4] = {"block1.bn.gamma", "block1.bn.beta", "block1.bn.running_mean",
	                        "block1.bn.running_var"};
	const double init[4] = {1, 0, 0, 1};
	for (int k = 0; k < 4; k++) {
		nb_tensor *t = nb_graph_find(g, names[k]);
		ck_assert_ptr_nonnull(t);
		ck_assert(nb_is_param(t) == (k < 2));
		ck_assert_int_eq(nb_tensor_size(t), 5);
		double v[5];
		nb_read_f64(t, v, 5);
		for (int c = 0; c < 5; c++)
			ck_near(v[c], init[k], 0);
	}
	nb_graph_free(g);
}
END_TEST

/* SGD through a batchnorm layer: the loss falls, gamma/beta get their
 * gradients, and each step moves the running statistics once */
START_TEST(test_bn_trains_with_sgd)
{
	enum { N = 6, C = 2 };
	double xv[N * C], tv[N * C];
	fill(xv, N * C, 31, -1, 4);
	for (int i = 0; i < N * C; i++)
		tv[i] = 3 * (i % C) - 1 + 0.1 * i;
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_constant(g, "x", NB_SHAPE(N, C), xv);
	nb_tensor *t = nb_constant(g, "t", NB_SHAPE(N, C), tv);
	nb_tensor *y = nb_batchnorm_layer(x, "bn", (nb_batchnorm_opts){0});
	nb_tensor *L = nb_mean(nb_square(nb_sub(y, t)));
	nb_optim *o = nb_sgd(g, L, (nb_sgd_opts){.lr = 0.1});
	ck_graph_ok(g);
	double first = 0, last = 0, mean[C] = {0}, em[C] = {0};
	for (int i = 0; i < N * C; i++)
		mean[i % C] += xv[i] / N;
	for (int step = 0; step < 20; step++) {
		ck_assert_int_eq(nb_step(o), NB_OK);
		last = nb_item(L);
		if (step == 0)
			first = last;
		for (int c = 0; c < C; c++)
			em[c] = 0.9 * em[c] + 0.1 * mean[c];
	}
	ck_assert_msg(last < 0.5 * first, "loss %g -> %g", first, last);
	double rm[C];
	nb_read_f64(nb_graph_find(g, "bn.running_mean"), rm, C);
	for (int c = 0; c < C; c++)
		ck_near(rm[c], em[c], 1e-13);
	nb_graph_free(g);
}
END_TEST

/* ---- batchnorm errors ------------------------------------------------------------------ */

static void expect_error(nb_graph *g, nb_status st, const char *needle)
{
	ck_assert_int_eq(nb_graph_status(g), st);
	ck_assert_msg(strstr(nb_graph_errmsg(g), needle), "message '%s' lacks '%s'",
	              nb_graph_errmsg(g), needle);
	nb_graph_clear_error(g);
}

START_TEST(test_bn_errors)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(4, 3));
	nb_tensor *x3 = nb_input(g, "x3", NB_SHAPE(4, 3, 2));
	nb_tensor *c3 = nb_constant(g, "c3", NB_SHAPE(3), NULL);
	nb_tensor *c4 = nb_constant(g, "c4", NB_SHAPE(4), NULL);
	nb_tensor *p3 = nb_param(g, "p3", NB_SHAPE(3), NB_ZEROS);
	nb_batchnorm_opts o = {0};

	nb_tensor *y = nb_batchnorm(x, c4, c3, c3, c3, o);
	ck_assert_int_eq(nb_tensor_shape(y).ndim, 0); /* the placeholder */
	expect_error(g, NB_ERR_SHAPE, "gamma has shape [4], expected [3]");
	nb_batchnorm(x, c3, c3, c3, c4, o);
	expect_error(g, NB_ERR_SHAPE, "running_var has shape [4]");
	nb_batchnorm(x3, c3, c3, c3, c3, o);
	expect_error(g, NB_ERR_SHAPE, "x must be [N,C] or [N,C,H,W], got [4,3,2]");
	nb_batchnorm_layer(x3, "bn", o);
	expect_error(g, NB_ERR_SHAPE, "batchnorm_layer(x3)");
	nb_batchnorm_layer(x, NULL, o);
	expect_error(g, NB_ERR_ARG, "name is NULL");
	nb_batchnorm(x, c3, c3, p3, c3, o);
	expect_error(g, NB_ERR_ARG, "running_mean must be a leaf that takes no gradient");
	nb_batchnorm(x, c3, c3, c3, nb_exp(c3), o);
	expect_error(g, NB_ERR_ARG, "running_var must be a leaf");
	nb_batchnorm(x, c3, c3, c3, c3, (nb_batchnorm_opts){.eps = -1});
	expect_error(g, NB_ERR_ARG, "eps = -1 must be positive");
	nb_batchnorm(x, c3, c3, c3, c3, (nb_batchnorm_opts){.momentum = 1.5});
	expect_error(g, NB_ERR_ARG, "momentum = 1.5");
	nb_batchnorm(x, c3, c3, c3, c3, (nb_batchnorm_opts){.momentum = -0.1});
	expect_error(g, NB_ERR_ARG, "momentum = -0.1 in [0, 1]");
	/* as written, eps 0 is 0 and refused */
	nb_batchnorm(x, c3, c3, c3, c3, (nb_batchnorm_opts){.as_written = true});
	expect_error(g, NB_ERR_ARG, "eps = 0 must be positive");
	nb_batchnorm(x, c3, c3, NULL, c3, o);
	expect_error(g, NB_ERR_ARG, "input 3 is NULL");
	/* no gradient into the running statistics */
	nb_tensor *rm = nb_constant(g, "rm", NB_SHAPE(3), NULL);
	nb_tensor *L = nb_sum(nb_batchnorm(nb_requires_grad(x), c3, c3, rm, c3, o));
	ck_graph_ok(g);
	nb_grad(L, nb_requires_grad(rm));
	expect_error(g, NB_ERR_GRAPH, "running statistics");
	nb_graph_free(g);
}
END_TEST

/* one value per channel: a run-time error in training, fine in eval */
START_TEST(test_bn_single_value_training)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_constant(g, "x", NB_SHAPE(1, 2, 1, 1), (double[]){3, 4});
	nb_tensor *y = nb_batchnorm_layer(x, "bn", (nb_batchnorm_opts){0});
	ck_graph_ok(g);
	ck_assert_int_eq(nb_eval(y), NB_ERR_VALUE);
	expect_error(g, NB_ERR_VALUE, "more than one value per channel");
	/* and names the way out under data parallelism */
	ck_assert_int_eq(nb_eval(y), NB_ERR_VALUE);
	expect_error(g, NB_ERR_VALUE, "nb_dist_sync_batchnorm, nabla train --sync-bn");
	nb_graph_set_training(g, false);
	ck_assert_int_eq(nb_eval(y), NB_OK);
	double out[2];
	nb_read_f64(y, out, 2);
	ck_near(out[0], 3 / sqrt(1 + EPS), 1e-15);
	ck_near(out[1], 4 / sqrt(1 + EPS), 1e-15);
	nb_graph_free(g);
}
END_TEST

/* ---- a padded batch: statistics from its real rows -------------------------------- */

/* One batchnorm (+ReLU) run and its gradients, L = sum(y^2 c):
 * x [N, C, S] (S = 1: [N, C]), statistics from the first R rows (R = 0:
 * all).  Outputs y, dx (N*C*S), dgamma, dbeta, running mean, var (C). */
typedef struct bn_run {
	double y[96], dx[96], dga[4], dbe[4], rm[4], rv[4];
} bn_run;

static void bn_rows_run(nb_dtype dt, int N, int C, int S, int R, bool relu, const double *xv,
                        const double *cv, const double *ga, const double *be, bn_run *out)
{
	nb_graph *g = nb_graph_new(dt);
	nb_shape xs = S == 1 ? NB_SHAPE(N, C) : NB_SHAPE(N, C, 2, S / 2);
	nb_tensor *x = nb_param(g, "x", xs, NB_ZEROS);
	nb_tensor *gam = nb_param(g, "gamma", NB_SHAPE(C), NB_ZEROS);
	nb_tensor *bet = nb_param(g, "beta", NB_SHAPE(C), NB_ZEROS);
	nb_tensor *c = nb_constant(g, "c", xs, cv);
	const double rm0[4] = {0.1, -0.2, 0.3, 0}, rv0[4] = {1.5, 0.5, 2, 1};
	nb_tensor *rm = state(g, "rm", C, rm0), *rv = state(g, "rv", C, rv0);
	nb_feed_f64(x, xv, N * C * S), nb_feed_f64(gam, ga, C), nb_feed_f64(bet, be, C);
	nb_tensor *y =
	    nb_batchnorm(x, gam, bet, rm, rv, (nb_batchnorm_opts){.relu = relu, .momentum = 0.25});
	nb_tensor *d[3];
	nb_grads(nb_sum(nb_mul(nb_square(y), c)), (nb_tensor *[]){x, gam, bet}, 3, d);
	nb_program *p = nb_compile(g, (nb_tensor *[]){y, d[0], d[1], d[2]}, 4);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_graph_set_batch_rows(g, R), NB_OK);
	ck_assert_int_eq(nb_graph_batch_rows(g), R);
	ck_assert_int_eq(nb_run(p), NB_OK);
	nb_read_f64(y, out->y, N * C * S), nb_read_f64(d[0], out->dx, N * C * S);
	nb_read_f64(d[1], out->dga, C), nb_read_f64(d[2], out->dbe, C);
	nb_read_f64(rm, out->rm, C), nb_read_f64(rv, out->rv, C);
	nb_graph_free(g);
}

/* A batch of N rows whose last N - R repeat real ones with weight 0 (what
 * nb_fit feeds) computes what the batch of the R real rows computes: the
 * same outputs, gradients and running statistics, the latter unbiased with
 * the real count R S; the padded rows are normalised with the real rows'
 * statistics and pass no gradient. */
START_TEST(test_bn_batch_rows_match_real_batch)
{
	const struct {
		int N, C, S, R;
	} cases[] = {{5, 3, 1, 2}, {5, 3, 1, 4}, {4, 2, 6, 1}, {4, 2, 6, 3}, {3, 4, 2, 2}};
	for (int dt = 0; dt < 2; dt++)
		for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
			for (int relu = 0; relu < 2; relu++) {
				const int N = cases[k].N, C = cases[k].C, S = cases[k].S,
				          R = cases[k].R;
				const int row = C * S; /* values per sample */
				double xv[96], cv[96], ga[4], be[4];
				fill(xv, R * row, 10 + k, -2, 2);
				fill(cv, R * row, 20 + k, -1, 1);
				fill(ga, C, 30 + k, 0.5, 1.5);
				fill(be, C, 40 + k, -0.5, 0.5);
				for (int i = R * row; i < N * row;
				     i++) /* padding: copies, weight 0 */
					xv[i] = xv[i % (R * row)], cv[i] = 0;
				bn_run padded, real;
				bn_rows_run(dt ? NB_F64 : NB_F32, N, C, S, R, relu, xv, cv, ga, be,
				            &padded);
				bn_rows_run(dt ? NB_F64 : NB_F32, R, C, S, 0, relu, xv, cv, ga, be,
				            &real);
				const double tol = dt ? 1e-13 : 1e-5;
#define SAME(a, b, what, i)                                                                        \
	ck_assert_msg(fabs((a) - (b)) <= tol * (1 + fabs(b)),                                      \
	              "%s case %zu relu %d: %s[%d] = %.17g with padding, %.17g without",           \
	              dt ? "f64" : "f32", k, relu, what, (int)(i), (a), (b))
				for (int i = 0; i < R * row; i++) {
					SAME(padded.y[i], real.y[i], "y", i);
					SAME(padded.dx[i], real.dx[i], "dx", i);
				}
				for (int i = R * row; i < N * row; i++) {
					SAME(padded.y[i], real.y[i % (R * row)], "padded y", i);
					ck_assert_msg(padded.dx[i] == 0, "padded dx[%d] = %g", i,
					              padded.dx[i]);
				}
				for (int c = 0; c < C; c++) {
					SAME(padded.dga[c], real.dga[c], "dgamma", c);
					SAME(padded.dbe[c], real.dbe[c], "dbeta", c);
					SAME(padded.rm[c], real.rm[c], "running_mean", c);
					SAME(padded.rv[c], real.rv[c], "running_var", c);
				}
#undef SAME
				if (R * S < 2)
					continue;
				/* the running statistics from the definition: the real rows' mean
				 * and unbiased variance, momentum 0.25 from (rm0, rv0) */
				double y[96], mu[4], var[4];
				ref_bn(xv, R, C, S, ga, be, NULL, NULL, EPS, y, mu, var);
				const double rm0[4] = {0.1, -0.2, 0.3, 0},
				             rv0[4] = {1.5, 0.5, 2, 1};
				for (int c = 0; c < C; c++) {
					const double M = R * S;
					ck_near(padded.rm[c], 0.75 * rm0[c] + 0.25 * mu[c],
					        dt ? 1e-15 : 1e-6);
					ck_near(padded.rv[c],
					        0.75 * rv0[c] + 0.25 * var[c] * M / (M - 1),
					        dt ? 1e-15 : 1e-6);
				}
				for (int i = 0; i < R * row && !relu; i++)
					ck_near(padded.y[i], y[i], dt ? 1e-14 : 1e-5);
			}
}
END_TEST

/* The VJP with R < N rows in the statistics is the exact derivative of
 * that function, also where the padded rows get a gradient (here they do:
 * c is nonzero there). */
START_TEST(test_bn_batch_rows_gradcheck)
{
	nb_shape shapes[2] = {NB_SHAPE(5, 3), NB_SHAPE(3, 2, 3, 2)};
	for (int k = 0; k < 4; k++) {
		int s = k / 2, relu = k % 2;
		nb_graph *g = nb_graph_new(NB_F64);
		nb_graph_seed(g, 17 + k);
		int C = (int)shapes[s].d[1];
		nb_tensor *x = nb_param(g, "x", shapes[s], NB_UNIFORM(-2, 2));
		nb_tensor *ga = nb_param(g, "gamma", NB_SHAPE(C), NB_UNIFORM(0.5, 1.5));
		nb_tensor *be = nb_param(g, "beta", NB_SHAPE(C), NB_UNIFORM(-1, 1));
		nb_tensor *c = nb_param(g, "c", shapes[s], NB_UNIFORM(-1, 1));
		nb_tensor *rm = state(g, "rm", C, NULL), *rv = state(g, "rv", C, NULL);
		nb_init_tensor(rv, NB_UNIFORM(0.5, 2));
		nb_tensor *y =
		    nb_batchnorm(x, ga, be, rm, rv, (nb_batchnorm_opts){.relu = relu, .eps = 1e-3});
		nb_tensor *L = nb_sum(nb_mul(nb_square(y), nb_stop_gradient(c)));
		ck_assert_int_eq(nb_graph_set_batch_rows(g, 2), NB_OK);
		nb_gradcheck_report r;
		nb_tensor *wrt[3] = {x, ga, be};
		ck_assert_int_eq(nb_gradcheck(L, wrt, 3, (nb_gradcheck_opts){0}, &r), NB_OK);
		ck_assert_msg(r.passed, "shape %d relu %d: err %g (analytic %g numeric %g)", s,
		              relu, r.max_abs_err, r.worst_analytic, r.worst_numeric);
		ck_assert_int_ge(r.checked, nb_tensor_size(x) / 2);
		nb_graph_free(g);
	}
}
END_TEST

START_TEST(test_bn_batch_rows_errors)
{
	ck_assert_int_eq(nb_graph_set_batch_rows(NULL, 1), NB_ERR_ARG);
	ck_assert_int_eq(nb_graph_batch_rows(NULL), 0);
	nb_graph *g = nb_graph_new(NB_F64);
	ck_assert_int_eq(nb_graph_set_batch_rows(g, -1), NB_ERR_ARG);
	expect_error(g, NB_ERR_ARG, "nb_graph_set_batch_rows: -1 rows");
	ck_assert_int_eq(nb_graph_batch_rows(g), 0);
	/* the shard's first row (dropout under data parallelism) */
	ck_assert_int_eq(nb_graph_set_batch_first(NULL, 1), NB_ERR_ARG);
	ck_assert_int_eq(nb_graph_set_batch_first(g, -1), NB_ERR_ARG);
	expect_error(g, NB_ERR_ARG, "nb_graph_set_batch_first: -1 as the first row");
	ck_assert_int_eq(nb_graph_set_batch_first(g, 5), NB_OK);
	ck_assert_int_eq(nb_graph_batch_first(g), 5);
	ck_assert_int_eq(nb_graph_set_batch_first(g, 0), NB_OK);
	/* one real row of a dense batchnorm: one value per channel */
	nb_tensor *x = nb_constant(g, "x", NB_SHAPE(4, 2), (double[]){1, 2, 3, 4, 5, 6, 7, 8});
	nb_tensor *y = nb_batchnorm_layer(x, "bn", (nb_batchnorm_opts){0});
	ck_graph_ok(g);
	ck_assert_int_eq(nb_graph_set_batch_rows(g, 1), NB_OK);
	ck_assert_int_eq(nb_eval(y), NB_ERR_VALUE);
	expect_error(g, NB_ERR_VALUE, "only 1 of the 4 rows of x [4,2] hold real samples");
	/* more rows than the batch has: all of them, as 0 */
	double a[8], b[8];
	ck_assert_int_eq(nb_graph_set_batch_rows(g, 9), NB_OK);
	ck_assert_int_eq(nb_eval(y), NB_OK);
	nb_read_f64(y, a, 8);
	ck_assert_int_eq(nb_graph_set_batch_rows(g, 0), NB_OK);
	ck_assert_int_eq(nb_eval(y), NB_OK);
	nb_read_f64(y, b, 8);
	for (int i = 0; i < 8; i++)
		ck_assert(a[i] == b[i]);
	nb_graph_free(g);
}
END_TEST

/* ---- dropout ----------------------------------------------------------------------------- */

/* y and dL/dx for L = sum(dropout(x) * c), computed in one run */
typedef struct drop_case {
	nb_graph *g;
	nb_tensor *x, *y, *dx;
	nb_program *p;
} drop_case;

static drop_case drop_build(nb_dtype dt, uint64_t seed, int n, double p, const double *xv,
                            const double *cv)
{
	drop_case d = {.g = nb_graph_new(dt)};
	nb_graph_seed(d.g, seed);
	d.x = nb_param(d.g, "x", NB_SHAPE(n), NB_ZEROS);
	nb_feed_f64(d.x, xv, n);
	d.y = nb_dropout(d.x, p);
	d.dx = nb_grad(nb_sum(nb_mul(d.y, nb_constant(d.g, "c", NB_SHAPE(n), cv))), d.x);
	d.p = nb_compile(d.g, (nb_tensor *[]){d.y, d.dx}, 2);
	ck_graph_ok(d.g);
	return d;
}

START_TEST(test_dropout_identity_cases)
{
	enum { n = 64 };
	double xv[n], cv[n], y[n], dx[n];
	fill(xv, n, 41, -2, 2);
	fill(cv, n, 42, -1, 1);
	/* p = 0 in training, and p = 0.5 in eval: y = x, dx = c exactly */
	for (int k = 0; k < 2; k++) {
		drop_case d = drop_build(NB_F64, 1, n, k ? 0.5 : 0.0, xv, cv);
		nb_graph_set_training(d.g, k == 0);
		for (int rep = 0; rep < 2; rep++) {
			ck_assert_int_eq(nb_run(d.p), NB_OK);
			nb_read_f64(d.y, y, n);
			nb_read_f64(d.dx, dx, n);
			ck_assert_mem_eq(y, xv, sizeof y);
			ck_assert_mem_eq(dx, cv, sizeof dx);
		}
		nb_graph_free(d.g);
	}
}
END_TEST

/* 100000 ones with p = 0.3: the dropped fraction is within 5 binomial
 * standard deviations of p (sd = sqrt(p(1-p)/n) = 0.00145), kept values
 * are exactly 1/(1-p), and the gradient is the same mask and scale */
START_TEST(test_dropout_fraction_and_scale)
{
	enum { n = 100000 };
	const double p = 0.3, scale = 1 / (1 - p), bound = 5 * sqrt(p * (1 - p) / n);
	double *xv = malloc(n * sizeof *xv), *y = malloc(n * sizeof *y);
	double *dx = malloc(n * sizeof *dx), *prev = malloc(n * sizeof *prev);
	for (int i = 0; i < n; i++)
		xv[i] = 1;
	drop_case d = drop_build(NB_F64, 5, n, p, xv, xv);
	for (int run = 0; run < 3; run++) {
		ck_assert_int_eq(nb_run(d.p), NB_OK);
		nb_read_f64(d.y, y, n);
		nb_read_f64(d.dx, dx, n);
		int dropped = 0, changed = 0;
		for (int i = 0; i < n; i++) {
			ck_assert(y[i] == 0 || y[i] == scale);
			ck_assert(dx[i] == y[i]); /* c = x = 1: dx = mask * scale */
			dropped += y[i] == 0;
			changed += run && y[i] != prev[i];
		}
		ck_assert_msg(fabs((double)dropped / n - p) <= bound, "dropped %d of %d", dropped,
		              n);
		/* a fresh mask each run: two independent masks differ in about
		 * 2 p (1-p) n = 42000 places */
		if (run)
			ck_assert_int_gt(changed, 40000);
		memcpy(prev, y, n * sizeof *y);
	}
	nb_graph_free(d.g);
	free(xv), free(y), free(dx), free(prev);
}
END_TEST

/* same seed, same masks, run after run (also across dtypes); another seed
 * gives other masks */
START_TEST(test_dropout_deterministic)
{
	enum { n = 1000 };
	double xv[n], cv[n], y[3][n];
	fill(xv, n, 51, 0.5, 2); /* nonzero, so zeros mark dropped units */
	fill(cv, n, 52, -1, 1);
	drop_case d[3] = {drop_build(NB_F64, 77, n, 0.5, xv, cv),
	                  drop_build(NB_F32, 77, n, 0.5, xv, cv),
	                  drop_build(NB_F64, 78, n, 0.5, xv, cv)};
	for (int run = 0; run < 3; run++) {
		for (int k = 0; k < 3; k++) {
			ck_assert_int_eq(nb_run(d[k].p), NB_OK);
			nb_read_f64(d[k].y, y[k], n);
		}
		int same_other_seed = 0;
		for (int i = 0; i < n; i++) {
			ck_assert((y[0][i] == 0) == (y[1][i] == 0));
			ck_near(y[1][i], y[0][i], 1e-6);
			same_other_seed += (y[0][i] == 0) == (y[2][i] == 0);
		}
		ck_assert_int_lt(same_other_seed, 600); /* about 500 by chance */
	}
	/* and a rebuilt graph with the first seed repeats the first run */
	drop_case again = drop_build(NB_F64, 77, n, 0.5, xv, cv);
	drop_case first = drop_build(NB_F64, 77, n, 0.5, xv, cv);
	nb_run(again.p);
	nb_run(first.p);
	double a[n], b[n];
	nb_read_f64(again.y, a, n);
	nb_read_f64(first.y, b, n);
	ck_assert_mem_eq(a, b, sizeof a);
	for (int k = 0; k < 3; k++)
		nb_graph_free(d[k].g);
	nb_graph_free(again.g);
	nb_graph_free(first.g);
}
END_TEST

/* The gradient exactly: dx = c * keep / (1-p), keep read off y of the same
 * run.  Then finite differences through two dropouts and a nonlinearity:
 * nb_gradcheck rewinds the graph RNG before every run, so every run of the
 * check draws the same masks and the function is a fixed one. */
START_TEST(test_dropout_gradient)
{
	enum { n = 200 };
	const double p = 0.4;
	double xv[n], cv[n], y[n], dx[n];
	fill(xv, n, 61, 0.5, 2);
	fill(cv, n, 62, -1, 1);
	drop_case d = drop_build(NB_F64, 9, n, p, xv, cv);
	ck_assert_int_eq(nb_run(d.p), NB_OK);
	nb_read_f64(d.y, y, n);
	nb_read_f64(d.dx, dx, n);
	const double scale = 1 / (1 - p);
	int kept = 0;
	for (int i = 0; i < n; i++) {
		bool keep = y[i] != 0;
		kept += keep;
		ck_assert(y[i] == (keep ? xv[i] * scale : 0));
		ck_assert(dx[i] == (keep ? cv[i] * scale : 0));
	}
	ck_assert(kept > 0 && kept < n);
	nb_graph_free(d.g);

	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(3, 5), NB_UNIFORM(-1, 1));
	nb_tensor *h = nb_exp(nb_dropout(x, 0.5));
	nb_tensor *L = nb_sum(nb_square(nb_dropout(nb_add(h, x), 0.25)));
	nb_gradcheck_report r;
	ck_assert_int_eq(nb_gradcheck(L, &x, 1, (nb_gradcheck_opts){0}, &r), NB_OK);
	ck_assert_msg(r.passed, "err %g (analytic %g numeric %g), %lld skipped as kinks",
	              r.max_abs_err, r.worst_analytic, r.worst_numeric, (long long)r.skipped_kinks);
	ck_assert_int_eq(r.checked, 15);
	nb_graph_free(g);
}
END_TEST

START_TEST(test_dropout_errors)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(4));
	const double bad[4] = {-0.1, 1.0, 1.5, NAN};
	for (int k = 0; k < 4; k++) {
		nb_tensor *y = nb_dropout(x, bad[k]);
		ck_assert_int_eq(nb_tensor_shape(y).ndim, 0);
		expect_error(g, NB_ERR_ARG, "dropout(x): p = ");
	}
	ck_assert_ptr_null(nb_dropout(NULL, 0.5));
	/* once the graph has failed, dropout returns the placeholder quietly */
	nb_dropout(x, 2);
	nb_tensor *y = nb_dropout(x, 0.5);
	ck_assert_int_eq(nb_tensor_shape(y).ndim, 0);
	expect_error(g, NB_ERR_ARG, "p = 2");
	nb_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("norm");
	TCase *tc = tcase_create("norm");
	tcase_add_test(tc, test_notes_conv_example);
	tcase_add_test(tc, test_notes_dense_example);
	tcase_add_test(tc, test_eval_uses_running_stats);
	tcase_add_test(tc, test_running_stats_recurrence);
	tcase_add_test(tc, test_bn_momentum_zero);
	tcase_add_test(tc, test_matches_references_dense);
	tcase_add_test(tc, test_matches_references_conv);
	tcase_add_test(tc, test_bn_gradcheck);
	tcase_add_test(tc, test_bn_f32_matches_f64);
	tcase_add_test(tc, test_bn_relu_fused_matches_unfused);
	tcase_add_test(tc, test_bn_relu_mask_at_the_edge);
	tcase_add_test(tc, test_bn_param_grads_with_and_without_dx);
	tcase_add_test(tc, test_bn_layer_leaves);
	tcase_add_test(tc, test_bn_trains_with_sgd);
	tcase_add_test(tc, test_bn_errors);
	tcase_add_test(tc, test_bn_single_value_training);
	tcase_add_test(tc, test_bn_batch_rows_match_real_batch);
	tcase_add_test(tc, test_bn_batch_rows_gradcheck);
	tcase_add_test(tc, test_bn_batch_rows_errors);
	tcase_add_test(tc, test_dropout_identity_cases);
	tcase_add_test(tc, test_dropout_fraction_and_scale);
	tcase_add_test(tc, test_dropout_deterministic);
	tcase_add_test(tc, test_dropout_gradient);
	tcase_add_test(tc, test_dropout_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
