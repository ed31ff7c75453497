/* Activations: exact values, the notes' derivative identities against the
 * graph's gradients, softmax stability, straight-through steps and the
 * perceptron rule, f32 against f64, errors. */
#include "test_util.h"

#include "graph/internal.h" /* the op table, for the DOT label */

#include <string.h>

typedef nb_tensor *(*act_fn)(nb_tensor *);

/* y = f(v) for n values in a graph of the given dtype; out gets y */
static void run_act(nb_dtype dt, act_fn f, const double *v, int n, double *out)
{
	nb_graph *g = nb_graph_new(dt);
	nb_tensor *x = nb_constant(g, "v", NB_SHAPE(n), v);
	nb_tensor *y = f(x);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_eval(y), NB_OK);
	ck_assert_int_eq(nb_read_f64(y, out, n), NB_OK);
	nb_graph_free(g);
}

/* y = f(v) and dv = d sum(c * f(v)) / dv in f64, with c = 1 when NULL */
static void run_grad(act_fn f, const double *v, const double *c, int n, double *y, double *dv)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "v", NB_SHAPE(n), NB_ZEROS);
	nb_feed_f64(x, v, n);
	nb_tensor *out = f(x), *w = out;
	if (c)
		w = nb_mul(out, nb_constant(g, "c", NB_SHAPE(n), c));
	nb_tensor *d = nb_grad(nb_sum(w), x);
	nb_program *p = nb_compile(g, (nb_tensor *[]){out, d}, 2);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_run(p), NB_OK);
	nb_read_f64(out, y, n);
	nb_read_f64(d, dv, n);
	nb_graph_free(g);
}

static nb_tensor *hardlim_st(nb_tensor *v)
{
	return nb_hardlim_st(v);
}
static nb_tensor *hardlims_st(nb_tensor *v)
{
	return nb_hardlims_st(v);
}

/* -0.0 >= 0, so it is on the "1" side like 0 itself */
static const double step_in[7] = {-2, -1e-30, -0.0, 0, 1e-30, 0.5, 3};

START_TEST(test_step_values)
{
	/* the notes: hardlim(0) = 1, hardlims(0) = +1 */
	const double want_hl[7] = {0, 0, 1, 1, 1, 1, 1}, want_hls[7] = {-1, -1, 1, 1, 1, 1, 1};
	double y[7];
	for (int dt = 0; dt < 2; dt++) {
		act_fn fns[4] = {nb_hardlim, hardlim_st, nb_hardlims, hardlims_st};
		for (int k = 0; k < 4; k++) {
			run_act(dt ? NB_F64 : NB_F32, fns[k], step_in, 7, y);
			for (int i = 0; i < 7; i++)
				ck_near(y[i], k < 2 ? want_hl[i] : want_hls[i], 0);
		}
	}
}
END_TEST

START_TEST(test_linear_family_values)
{
	const double v[9] = {-2, -1, -0.5, 0, 0.25, 0.5, 1, 1.5, 1e300};
	const double purelin[9] = {-2, -1, -0.5, 0, 0.25, 0.5, 1, 1.5, 1e300};
	const double satlin[9] = {0, 0, 0, 0, 0.25, 0.5, 1, 1, 1};
	const double satlins[9] = {-1, -1, -0.5, 0, 0.25, 0.5, 1, 1, 1};
	const double relu[9] = {0, 0, 0, 0, 0.25, 0.5, 1, 1.5, 1e300};
	act_fn fns[4] = {nb_purelin, nb_satlin, nb_satlins, nb_relu};
	const double *want[4] = {purelin, satlin, satlins, relu};
	double y[9];
	for (int k = 0; k < 4; k++) {
		run_act(NB_F64, fns[k], v, 9, y);
		for (int i = 0; i < 9; i++)
			ck_near(y[i], want[k][i], 0);
	}
}
END_TEST

static double g_a, g_b; /* parameters for the wrappers below */
static nb_tensor *logsig_a(nb_tensor *v)
{
	return nb_logsig(v, g_a);
}
static nb_tensor *tanh_ab(nb_tensor *v)
{
	return nb_tanh_ab(v, g_a, g_b);
}

START_TEST(test_logsig_values)
{
	const double v[8] = {-3, -0.5, 0, 0.25, 1, 2, 7, 30};
	double y[8];
	const double as[3] = {1, 2.5, -0.75};
	for (int k = 0; k < 3; k++) {
		g_a = as[k];
		run_act(NB_F64, logsig_a, v, 8, y);
		for (int i = 0; i < 8; i++) {
			double want = 1 / (1 + exp(-g_a * v[i]));
			ck_near(y[i], want, 2e-16 * fmax(1, 1 / want) * want);
		}
		ck_near(y[2], 0.5, 0); /* logsig(0) = 1/2 exactly */
	}
	/* sigmoid is logsig with a = 1, to the bit */
	double s[8];
	g_a = 1;
	run_act(NB_F64, logsig_a, v, 8, y);
	run_act(NB_F64, nb_sigmoid, v, 8, s);
	for (int i = 0; i < 8; i++)
		ck_near(s[i], y[i], 0);
}
END_TEST

/* far in the tails the stable form gives the limits or the exact tiny value,
 * never inf or NaN (1/(1+exp(800)) would be 1/inf, exp(800) overflows) */
START_TEST(test_logsig_extremes)
{
	const double v[5] = {-800, -720, -40, 40, 800};
	double y[5];
	run_act(NB_F64, nb_sigmoid, v, 5, y);
	ck_near(y[0], 0, 0);
	ck_near(y[1], exp(-720.0), 0); /* subnormal, 1 + it rounds to 1 */
	ck_near(y[2], exp(-40.0) / (1 + exp(-40.0)), 0);
	ck_near(y[3], 1 / (1 + exp(-40.0)), 0);
	ck_near(y[4], 1, 0);
	g_a = 100; /* large |a v| in f32 */
	double v32[2] = {-10, 10};
	run_act(NB_F32, logsig_a, v32, 2, y);
	ck_near(y[0], 0, 0);
	ck_near(y[1], 1, 0);
}
END_TEST

START_TEST(test_tanh_values)
{
	const double v[7] = {-1000, -2, -0.3, 0, 0.3, 2, 1000};
	double y[7];
	/* LeCun's a = 1.7159, b = 2/3 and plain tanh */
	const double ab[3][2] = {{1.7159, 2.0 / 3}, {1, 1}, {-2, 0.5}};
	for (int k = 0; k < 3; k++) {
		g_a = ab[k][0], g_b = ab[k][1];
		run_act(NB_F64, tanh_ab, v, 7, y);
		for (int i = 0; i < 7; i++)
			ck_near(y[i], g_a * tanh(g_b * v[i]), 0);
		ck_near(y[0], -g_a, 0); /* the limits: tanh -> -1, +1 */
		ck_near(y[6], g_a, 0);
	}
	double t[7];
	run_act(NB_F64, nb_tanh, v, 7, t);
	for (int i = 0; i < 7; i++)
		ck_near(t[i], tanh(v[i]), 0);
}
END_TEST

/* The notes' derivative identities against the gradients the graph
 * computes: logsig' = a y (1 - y) (and the intermediate form
 * a e^{-av} / (1 + e^{-av})^2); tanh' = (b/a)(a + y)(a - y) (and
 * a b (1 - tanh^2(b v))); purelin' = 1. */
START_TEST(test_derivative_identities)
{
	const double v[6] = {-2.5, -0.7, -0.1, 0.2, 1.3, 3};
	double y[6], d[6];
	const double as[3] = {1, 2, -0.6};
	for (int k = 0; k < 3; k++) {
		g_a = as[k];
		run_grad(logsig_a, v, NULL, 6, y, d);
		for (int i = 0; i < 6; i++) {
			ck_near(d[i], g_a * y[i] * (1 - y[i]), 1e-16);
			double e = exp(-g_a * v[i]);
			ck_near(d[i], g_a * e / ((1 + e) * (1 + e)), 1e-15);
		}
	}
	const double ab[3][2] = {{1.7159, 2.0 / 3}, {1, 1}, {-2, 0.5}};
	for (int k = 0; k < 3; k++) {
		g_a = ab[k][0], g_b = ab[k][1];
		run_grad(tanh_ab, v, NULL, 6, y, d);
		for (int i = 0; i < 6; i++) {
			ck_near(d[i], g_b / g_a * (g_a + y[i]) * (g_a - y[i]), 1e-15);
			double th = tanh(g_b * v[i]);
			ck_near(d[i], g_a * g_b * (1 - th * th), 1e-14);
		}
	}
	run_grad(nb_purelin, v, NULL, 6, y, d);
	for (int i = 0; i < 6; i++)
		ck_near(d[i], 1, 0);
}
END_TEST

/* a = 0: the output is 0 and so is the gradient, with no 0/0 NaN */
START_TEST(test_tanh_a_zero)
{
	const double v[3] = {-1, 0, 2};
	double y[3], d[3];
	g_a = 0, g_b = 3;
	run_grad(tanh_ab, v, NULL, 3, y, d);
	for (int i = 0; i < 3; i++) {
		ck_near(y[i], 0, 0);
		ck_near(d[i], 0, 0);
	}
}
END_TEST

/* piecewise linear: slope 1 strictly inside the linear range, 0 outside
 * and at the corners */
START_TEST(test_piecewise_gradients)
{
	const double v[8] = {-2, -1, -0.5, 0, 0.5, 1, 1.5, 3};
	const double satlin[8] = {0, 0, 0, 0, 1, 0, 0, 0};
	const double satlins[8] = {0, 0, 1, 1, 1, 0, 0, 0};
	const double relu[8] = {0, 0, 0, 0, 1, 1, 1, 1};
	act_fn fns[3] = {nb_satlin, nb_satlins, nb_relu};
	const double *want[3] = {satlin, satlins, relu};
	double y[8], d[8];
	for (int k = 0; k < 3; k++) {
		run_grad(fns[k], v, NULL, 8, y, d);
		for (int i = 0; i < 8; i++)
			ck_near(d[i], want[k][i], 0);
	}
}
END_TEST

/* hardlim, hardlims: zero derivative, so no gradient flows; the
 * straight-through forms pass the upstream gradient c unchanged */
START_TEST(test_step_gradients)
{
	const double c[7] = {0.5, -1, 2, 3, -0.25, 1.5, 7};
	double y[7], d[7];
	act_fn plain[2] = {nb_hardlim, nb_hardlims}, st[2] = {hardlim_st, hardlims_st};
	for (int k = 0; k < 2; k++) {
		run_grad(plain[k], step_in, c, 7, y, d);
		for (int i = 0; i < 7; i++)
			ck_near(d[i], 0, 0);
		run_grad(st[k], step_in, c, 7, y, d);
		for (int i = 0; i < 7; i++)
			ck_near(d[i], c[i], 0);
	}
}
END_TEST

/* The DOT label tells the straight-through form apart. */
START_TEST(test_step_label)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2));
	nb_tensor *a = nb_hardlim(x), *b = nb_hardlims_st(x);
	ck_graph_ok(g);
	char buf[64];
	nb__ops[a->op]->label(a, buf, sizeof buf);
	ck_assert_str_eq(buf, "");
	nb__ops[b->op]->label(b, buf, sizeof buf);
	ck_assert_str_eq(buf, "straight-through");
	ck_assert_str_eq(nb_tensor_op(b), "hardlims");
	nb_graph_free(g);
}
END_TEST

/* One SGD step on L = 1/2 (y - yhat)^2 with yhat = hardlim_st(w.x + b) is
 * the perceptron rule w <- w + eta (y - yhat) x, b <- b + eta (y - yhat),
 * to the bit.  First the notes' AND-gate step (w = [1,1], b = 0,
 * x = (0,0), y = 0, eta = 1: hardlim(0) = 1, error -1, b becomes -1), then
 * a run of other samples, also with hardlims_st and targets +-1. */
static void perceptron(act_fn step, bool symmetric)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(1, 2));
	nb_tensor *y = nb_input(g, "y", NB_SHAPE(1, 1));
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(2, 1), NB_ONES);
	nb_tensor *b = nb_param(g, "b", NB_SHAPE(1), NB_ZEROS);
	nb_tensor *yhat = step(nb_add(nb_matmul(x, w), b));
	nb_tensor *L = nb_half_sse(yhat, y);
	nb_optim *o = nb_sgd(g, L, (nb_sgd_opts){.lr = 1});
	ck_graph_ok(g);
	double W[2] = {1, 1}, B = 0, X[2] = {0, 0}, Y = symmetric ? -1 : 0;
	int updates = 0;
	for (int s = 0; s < 40; s++) {
		/* dyadic eta and inputs keep every product exact, so no
		 * rounding can move w.x + b across 0 */
		double eta = s == 0 ? 1 : 0.375;
		nb_optim_set_lr(o, eta);
		nb_feed_f64(x, X, 2);
		nb_feed_f64(y, &Y, 1);
		double v = X[0] * W[0] + X[1] * W[1] + B;
		double yh = v >= 0 ? 1 : symmetric ? -1 : 0;
		ck_assert_int_eq(nb_step(o), NB_OK);
		ck_near(nb_item(L), 0.5 * (Y - yh) * (Y - yh), 0);
		W[0] = W[0] + eta * (Y - yh) * X[0];
		W[1] = W[1] + eta * (Y - yh) * X[1];
		B = B + eta * (Y - yh);
		updates += Y != yh;
		double wv[2];
		nb_read_f64(w, wv, 2);
		ck_near(wv[0], W[0], 0);
		ck_near(wv[1], W[1], 0);
		ck_near(nb_item(b), B, 0);
		if (s == 0 && !symmetric) { /* the notes' numbers */
			ck_near(W[0], 1, 0);
			ck_near(W[1], 1, 0);
			ck_near(B, -1, 0);
		}
		X[0] = (double)(s * 7 % 11) / 4 - 1;
		X[1] = (double)(s * 5 % 13) / 8 - 1;
		Y = (s * 3 % 5) < 2 ? 1 : symmetric ? -1 : 0;
	}
	ck_assert_int_ge(updates, 5); /* the rule was exercised, not just error 0 */
	nb_graph_free(g);
}

START_TEST(test_perceptron_rule)
{
	perceptron(hardlim_st, false);
	perceptron(hardlims_st, true);
}
END_TEST

/* softmax over the last of three values, with inputs whose exp overflows */
static void softmax_row(nb_dtype dt, const double *v, double *y, double *ly)
{
	nb_graph *g = nb_graph_new(dt);
	nb_tensor *x = nb_constant(g, "v", NB_SHAPE(1, 3), v);
	nb_tensor *s = nb_softmax(x, -1), *l = nb_log_softmax(x, 1);
	nb_program *p = nb_compile(g, (nb_tensor *[]){s, l}, 2);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_run(p), NB_OK);
	nb_read_f64(s, y, 3);
	nb_read_f64(l, ly, 3);
	nb_graph_free(g);
}

START_TEST(test_softmax_huge)
{
	/* softmax is shift invariant: softmax(1000, 1001, 1002) =
	 * (e^-2, e^-1, 1) / (e^-2 + e^-1 + 1) = (0.0900.., 0.2447.., 0.6652..) */
	const double big[3] = {1000, 1001, 1002}, neg[3] = {-1002, -1001, -1000};
	double S = exp(-2.0) + exp(-1.0) + 1;
	double want[3] = {exp(-2.0) / S, exp(-1.0) / S, 1 / S};
	for (int dt = 0; dt < 2; dt++)
		for (int k = 0; k < 2; k++) {
			double y[3], ly[3];
			softmax_row(dt ? NB_F64 : NB_F32, k ? neg : big, y, ly);
			double tol = dt ? 1e-16 : 1e-7;
			for (int i = 0; i < 3; i++) {
				ck_assert(isfinite(y[i]) && isfinite(ly[i]));
				ck_near(y[i], want[i], tol);
				ck_near(ly[i], (i - 2.0) - log(S), dt ? 1e-15 : 1e-6);
			}
		}
	ck_near(want[0], 0.090030573170380462, 1e-17);
	ck_near(want[2], 0.66524095577482178, 1e-16);
}
END_TEST

/* rows sum to 1 along any axis; log_softmax = log(softmax) */
START_TEST(test_softmax_axes)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(3, 4, 5), NB_UNIFORM(-4, 4));
	for (int axis = -3; axis < 3; axis++) {
		nb_tensor *s = nb_softmax(x, axis), *l = nb_log_softmax(x, axis);
		nb_tensor *sums = nb_sum_axes(s, &axis, 1, false);
		nb_tensor *diff = nb_max(nb_abs(nb_sub(l, nb_log(s))));
		nb_program *p = nb_compile(g, (nb_tensor *[]){sums, diff}, 2);
		ck_graph_ok(g);
		ck_assert_int_eq(nb_run(p), NB_OK);
		double v[20];
		int64_t n = nb_tensor_size(sums);
		nb_read_f64(sums, v, n);
		for (int64_t i = 0; i < n; i++)
			ck_near(v[i], 1, 4e-16);
		ck_assert_double_le(nb_item(diff), 1e-15);
	}
	nb_graph_free(g);
}
END_TEST

/* The softmax Jacobian dy_k/dz_j = y_k (delta_kj - y_j) and the
 * log_softmax one, delta_kj - y_j, from the graph's gradients, along a
 * middle axis. */
START_TEST(test_softmax_jacobian)
{
	const double v[6] = {0.3, -1.2, 2.0, 0.7, -0.4, 1.1}; /* [3, 2], axis 0 */
	for (int k = 0; k < 3; k++) {
		nb_graph *g = nb_graph_new(NB_F64);
		nb_tensor *z = nb_param(g, "z", NB_SHAPE(3, 2), NB_ZEROS);
		nb_feed_f64(z, v, 6);
		nb_tensor *y = nb_softmax(z, 0), *ly = nb_log_softmax(z, -2);
		nb_tensor *dy = nb_grad(nb_sum(nb_slice(y, 0, k, k + 1)), z);
		nb_tensor *dly = nb_grad(nb_sum(nb_slice(ly, 0, k, k + 1)), z);
		nb_program *p = nb_compile(g, (nb_tensor *[]){y, dy, dly}, 3);
		ck_graph_ok(g);
		ck_assert_int_eq(nb_run(p), NB_OK);
		double Y[6], D[6], DL[6];
		nb_read_f64(y, Y, 6);
		nb_read_f64(dy, D, 6);
		nb_read_f64(dly, DL, 6);
		for (int j = 0; j < 3; j++)
			for (int c = 0; c < 2; c++) {
				double delta = j == k;
				ck_near(D[j * 2 + c], Y[k * 2 + c] * (delta - Y[j * 2 + c]), 1e-16);
				ck_near(DL[j * 2 + c], delta - Y[j * 2 + c], 2e-16);
			}
		nb_graph_free(g);
	}
}
END_TEST

/* f32 and f64 agree on values and gradients of every activation */
static nb_tensor *softmax0(nb_tensor *v)
{
	return nb_softmax(v, 0);
}
static nb_tensor *log_softmax0(nb_tensor *v)
{
	return nb_log_softmax(v, -1);
}

START_TEST(test_f32_matches_f64)
{
	act_fn fns[] = {nb_hardlim, nb_hardlims, hardlim_st,  nb_purelin, nb_satlin,
	                nb_satlins, nb_sigmoid,  logsig_a,    nb_tanh,    tanh_ab,
	                nb_relu,    softmax0,    log_softmax0};
	const double v[6] = {-2.3, -0.8, -0.3, 0.4, 0.9, 1.7};
	const double c[6] = {0.3, -1, 2, 0.5, 1.5, -0.7};
	g_a = 1.5, g_b = 0.8;
	for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++) {
		double res[2][2][6];
		for (int dt = 0; dt < 2; dt++) {
			nb_graph *g = nb_graph_new(dt ? NB_F64 : NB_F32);
			nb_tensor *x = nb_param(g, "v", NB_SHAPE(6), NB_ZEROS);
			nb_feed_f64(x, v, 6);
			nb_tensor *y = fns[k](x);
			nb_tensor *d =
			    nb_grad(nb_sum(nb_mul(y, nb_constant(g, "c", NB_SHAPE(6), c))), x);
			nb_program *p = nb_compile(g, (nb_tensor *[]){y, d}, 2);
			ck_graph_ok(g);
			ck_assert_int_eq(nb_run(p), NB_OK);
			nb_read_f64(y, res[dt][0], 6);
			nb_read_f64(d, res[dt][1], 6);
			nb_graph_free(g);
		}
		for (int i = 0; i < 6; i++)
			for (int w = 0; w < 2; w++)
				ck_assert_msg(fabs(res[0][w][i] - res[1][w][i]) <=
				                  1e-6 * (1 + fabs(res[1][w][i])),
				              "activation %zu %s[%d]: f32 %.9g f64 %.17g", k,
				              w ? "grad" : "value", i, res[0][w][i], res[1][w][i]);
	}
}
END_TEST

/* bad axes and parameters are reported on the graph with the shape */
START_TEST(test_errors)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 3));
	nb_tensor *y = nb_softmax(x, 2);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_ARG);
	ck_assert_str_eq(nb_graph_errmsg(g), "softmax(x): axis 2 out of range for shape [2,3]");
	ck_assert_ptr_eq(y, nb_relu(y)); /* later constructors give the placeholder */
	nb_graph_clear_error(g);
	nb_log_softmax(x, -3);
	ck_assert_str_eq(nb_graph_errmsg(g),
	                 "log_softmax(x): axis -3 out of range for shape [2,3]");
	nb_graph_clear_error(g);
	nb_softmax(nb_sum(x), -1); /* a scalar has no axis */
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(g), "out of range for shape []"));
	nb_graph_clear_error(g);
	nb_logsig(x, NAN);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(g), "logsig(x): parameters must be finite"));
	nb_graph_clear_error(g);
	nb_tanh_ab(x, 1, INFINITY);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_ARG);
	ck_assert_ptr_null(nb_relu(NULL));
	nb_graph_free(g);
}
END_TEST

/* relu(add(a, b)) as one step (the fusion add+relu), against the two
 * steps (fusions off) and against add kept as a target (then unfused):
 * y, da and db the same bits, with NaN, +-inf, +-0 and sums that cancel
 * to 0 in a and b; equal shapes, a per-channel b and a scalar b; f32 and
 * f64; 1 and 3 threads.  relu's gradient (its mask from its output) is g
 * where 0 < y < inf, else 0. */
static int add_relu_run(nb_dtype dt, nb_shape as, nb_shape bs, const double *av, const double *bv,
                        int mode, double *y, double *da, double *db)
{
	nb_graph *g = nb_graph_new(dt);
	nb_tensor *a = nb_param(g, "a", as, NB_ZEROS), *b = nb_param(g, "b", bs, NB_ZEROS);
	nb_feed_f64(a, av, nb_shape_size(as));
	nb_feed_f64(b, bv, nb_shape_size(bs));
	nb_tensor *s = nb_add(a, b), *r = nb_relu(s);
	const int64_t n = nb_tensor_size(r);
	double *cv = malloc(sizeof(double) * (size_t)n);
	for (int64_t i = 0; i < n; i++)
		cv[i] = 0.25 * (double)(i % 9) - 1;
	nb_tensor *d[2];
	ck_assert_int_eq(
	    nb_grads(nb_sum(nb_mul(r, nb_constant(g, "c", as, cv))), (nb_tensor *[]){a, b}, 2, d),
	    NB_OK);
	nb__fusion_off = mode == 1;
	nb_program *p = nb_compile(g, (nb_tensor *[]){r, d[0], d[1], s}, mode == 2 ? 4 : 3);
	nb__fusion_off = false;
	ck_graph_ok(g);
	nb_program_profile(p, true);
	ck_assert_int_eq(nb_run(p), NB_OK);
	ck_assert_int_eq(nb_run(p), NB_OK);
	nb_read_f64(r, y, n);
	nb_read_f64(d[0], da, n);
	nb_read_f64(d[1], db, nb_shape_size(bs));
	ck_assert(mode != 0 || nb_program_profile_op_ms(p, "add+relu") >= 0);
	ck_assert(mode == 0 || nb_program_profile_op_ms(p, "add+relu") < 0);
	/* relu's gradient: c where 0 < y < inf */
	for (int64_t i = 0; i < n; i++) {
		const double want = y[i] > 0 && y[i] < INFINITY ? cv[i] : 0;
		ck_assert_msg(!memcmp(&da[i], &want, sizeof want), "[%lld] y %g: da %g, want %g",
		              (long long)i, y[i], da[i], want);
	}
	const int steps = nb_program_num_steps(p);
	free(cv);
	nb_graph_free(g);
	return steps;
}

START_TEST(test_add_relu_fused_bits)
{
	static const double special[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0};
	const nb_shape as = NB_SHAPE(16, 3, 28, 28);
	const nb_shape bshape[3] = {NB_SHAPE(16, 3, 28, 28), NB_SHAPE(1, 3, 1, 1), NB_SHAPE(1)};
	const int64_t n = nb_shape_size(as);
	double *av = malloc(sizeof(double) * (size_t)n), *bv = malloc(sizeof(double) * (size_t)n);
	double *y[3], *da[3], *db[3];
	for (int m = 0; m < 3; m++) {
		y[m] = malloc(sizeof(double) * (size_t)n);
		da[m] = malloc(sizeof(double) * (size_t)n);
		db[m] = malloc(sizeof(double) * (size_t)n);
	}
	for (int v = 0; v < 16; v++) { /* b's shape, dtype, threads */
		const nb_shape bs = bshape[v % 3];
		const int64_t nb = nb_shape_size(bs);
		unsigned rs = 7u + (unsigned)v;
		for (int64_t i = 0; i < n; i++) {
			rs = rs * 1103515245u + 12345u;
			const unsigned u = (rs >> 16) % 64;
			av[i] = u < 5 ? special[u] : 0.5 * (double)(u % 13) - 3;
		}
		for (int64_t i = 0; i < nb; i++) /* and sums a + b that are 0 */
			bv[i] = i % 29 == 3 ? special[i % 5] : nb == n ? -av[(i * 7) % n] : 1.5;
		nb_set_num_threads(v & 4 ? 3 : 1);
		const nb_dtype dt = v & 8 ? NB_F64 : NB_F32;
		int steps[3];
		for (int m = 0; m < 3; m++)
			steps[m] = add_relu_run(dt, as, bs, av, bv, m, y[m], da[m], db[m]);
		ck_assert_int_eq(steps[0], steps[1] - 1);
		ck_assert_int_eq(steps[2], steps[1]);
		int pos = 0;
		for (int m = 1; m < 3; m++) {
			ck_assert_msg(!memcmp(y[0], y[m], sizeof(double) * (size_t)n), "y, v %d",
			              v);
			ck_assert_msg(!memcmp(da[0], da[m], sizeof(double) * (size_t)n), "da, v %d",
			              v);
			ck_assert_msg(!memcmp(db[0], db[m], sizeof(double) * (size_t)nb),
			              "db, v %d", v);
		}
		for (int64_t i = 0; i < n; i++)
			pos += y[0][i] > 0;
		ck_assert(pos > n / 8 && pos < n - n / 8);
	}
	nb_set_num_threads(0);
	for (int m = 0; m < 3; m++)
		free(y[m]), free(da[m]), free(db[m]);
	free(av), free(bv);
}
END_TEST

/* add, relu, max pooling: relu could fuse with the add before it or with
 * the pooling after it; the pooling's fusions take it (the steps are
 * tried last first), and the bits are the separate steps' */
static int add_relu_pool_run(bool off, const double *av, double *y, double *da, char *prof,
                             size_t np)
{
	nb_graph *g = nb_graph_new(NB_F32);
	const nb_shape xs = NB_SHAPE(4, 3, 8, 8);
	nb_tensor *a = nb_param(g, "a", xs, NB_ZEROS), *b = nb_param(g, "b", xs, NB_ZEROS);
	nb_feed_f64(a, av, 768);
	nb_feed_f64(b, av + 768, 768);
	nb_tensor *out = nb_maxpool2d(nb_relu(nb_add(a, b)), 2, 2, 0);
	nb_tensor *d = nb_grad(nb_sum(out), a);
	nb__fusion_off = off;
	nb_program *p = nb_compile(g, (nb_tensor *[]){out, d}, 2);
	nb__fusion_off = false;
	ck_graph_ok(g);
	nb_program_profile(p, true);
	ck_assert_int_eq(nb_run(p), NB_OK);
	nb_read_f64(out, y, 192);
	nb_read_f64(d, da, 768);
	nb_test_profile_text(p, prof, np);
	const int steps = nb_program_num_steps(p);
	nb_graph_free(g);
	return steps;
}

START_TEST(test_add_relu_pool_chain)
{
	double av[1536], y[2][192], da[2][768];
	char prof[2][4096];
	for (int i = 0; i < 1536; i++)
		av[i] = i % 17 == 4 ? NAN : 0.5 * (double)((i * 7) % 11) - 2.5;
	const int fused = add_relu_pool_run(false, av, y[0], da[0], prof[0], sizeof prof[0]),
	          plain = add_relu_pool_run(true, av, y[1], da[1], prof[1], sizeof prof[1]);
	ck_assert_int_eq(fused, plain - 2);
	ck_assert_msg(strstr(prof[0], "maxpool2d+relu") &&
	                  strstr(prof[0], "maxpool2d_backward+relu") &&
	                  !strstr(prof[0], "add+relu"),
	              "%s", prof[0]);
	ck_assert(!memcmp(y[0], y[1], sizeof y[0]) && !memcmp(da[0], da[1], sizeof da[0]));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("activation");
	TCase *tc = tcase_create("activation");
	tcase_add_test(tc, test_step_values);
	tcase_add_test(tc, test_linear_family_values);
	tcase_add_test(tc, test_logsig_values);
	tcase_add_test(tc, test_logsig_extremes);
	tcase_add_test(tc, test_tanh_values);
	tcase_add_test(tc, test_derivative_identities);
	tcase_add_test(tc, test_tanh_a_zero);
	tcase_add_test(tc, test_piecewise_gradients);
	tcase_add_test(tc, test_step_gradients);
	tcase_add_test(tc, test_step_label);
	tcase_add_test(tc, test_perceptron_rule);
	tcase_add_test(tc, test_softmax_huge);
	tcase_add_test(tc, test_softmax_axes);
	tcase_add_test(tc, test_softmax_jacobian);
	tcase_add_test(tc, test_f32_matches_f64);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_add_relu_fused_bits);
	tcase_add_test(tc, test_add_relu_pool_chain);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
