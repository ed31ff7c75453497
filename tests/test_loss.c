/* Losses: the notes' worked values, reductions, stability at extreme
 * logits, agreement between the equivalent forms (bce_logits and
 * bce(sigmoid), cce and sparse_cce), gradients, f32 against f64, shape
 * errors and bad class ids at run time. */
#include "test_util.h"

#include <string.h>

typedef nb_tensor *(*loss_fn)(nb_tensor *, nb_tensor *, nb_reduction);

enum { MAXN = 24 };

typedef struct result {
	int64_t n;                            /* number of loss values */
	double val[MAXN], dp[MAXN], dq[MAXN]; /* loss, d sum(loss) / d pred, / d target */
} result;

/* Runs f(pred, target, r) and the gradients of sum(loss); the target is a
 * parameter when grad_q (so it gets a gradient) and a constant otherwise. */
static void run(nb_dtype dt, loss_fn f, nb_reduction r, nb_shape sp, const double *p, nb_shape sq,
                const double *q, bool grad_q, result *res)
{
	nb_graph *g = nb_graph_new(dt);
	nb_tensor *P = nb_param(g, "pred", sp, NB_ZEROS);
	nb_tensor *Q =
	    grad_q ? nb_param(g, "target", sq, NB_ZEROS) : nb_constant(g, "target", sq, NULL);
	nb_feed_f64(P, p, nb_shape_size(sp));
	nb_feed_f64(Q, q, nb_shape_size(sq));
	nb_tensor *L = f(P, Q, r), *d[2];
	nb_grads(nb_sum(L), (nb_tensor *[]){P, Q}, grad_q ? 2 : 1, d);
	nb_program *prog = nb_compile(g, (nb_tensor *[]){L, d[0], d[1]}, grad_q ? 3 : 2);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_run(prog), NB_OK);
	res->n = nb_tensor_size(L);
	ck_assert_int_le(res->n, MAXN);
	nb_read_f64(L, res->val, res->n);
	nb_read_f64(d[0], res->dp, nb_shape_size(sp));
	if (grad_q)
		nb_read_f64(d[1], res->dq, nb_shape_size(sq));
	nb_graph_free(g);
}

/* value of a scalar loss of two constants */
static double loss_value(loss_fn f, nb_reduction r, nb_shape s, const double *p, const double *q)
{
	result res;
	run(NB_F64, f, r, s, p, s, q, false, &res);
	ck_assert_int_eq(res.n, 1);
	return res.val[0];
}

/* The notes: y = 0, yhat = 0.99 gives BCE = -ln(1 - 0.99) = -ln 0.01 =
 * 4.605170185988091.  The notes write 4.63, an arithmetic slip (ln 0.01 is
 * -4.60517..., not -4.63); this is the exact value.  In doubles 1 - 0.99 is
 * 0.010000000000000009, whose log differs from ln 0.01 by 9e-16, so the
 * tolerance is 2 ulps. */
START_TEST(test_bce_notes_example)
{
	double p = 0.99, y = 0;
	ck_near(loss_value(nb_bce, NB_MEAN, NB_SHAPE(1), &p, &y), 4.605170185988091, 2e-15);
	/* case (i) of the notes: correct classifications cost 0 */
	double ps[2] = {0, 1}, ys[2] = {0, 1};
	ck_near(loss_value(nb_bce, NB_SUM, NB_SHAPE(2), ps, ys), 0, 0);
	/* case (ii): y = 0, yhat = 1 would be -ln 0 = inf; the clamp inside
	 * the log makes it -ln 1e-12 = 12 ln 10, finite */
	double one = 1, zero = 0;
	ck_near(loss_value(nb_bce, NB_MEAN, NB_SHAPE(1), &one, &zero), -log(1e-12), 0);
	ck_near(-log(1e-12), 27.631021115928547, 4e-15);
	ck_near(loss_value(nb_bce, NB_MEAN, NB_SHAPE(1), &zero, &one), -log(1e-12), 0);
}
END_TEST

/* Gradients at and beyond the clamp are finite: where a log's argument
 * is clamped the log is flat, so that term contributes 0. */
START_TEST(test_bce_clamped_gradient)
{
	const double p[5] = {0, 1, 0.25, 1e-15, 1e-9}, y[5] = {1, 0, 1, 1, 1};
	result r;
	run(NB_F64, nb_bce, NB_NONE, NB_SHAPE(5), p, NB_SHAPE(5), y, true, &r);
	ck_near(r.val[3], -log(1e-12), 0); /* clamped: -log(max(1e-15, 1e-12)) */
	ck_near(r.val[4], -log(1e-9), 0);
	ck_near(r.dp[0], 0, 0);
	ck_near(r.dp[1], 0, 0);
	ck_near(r.dp[2], -1 / 0.25, 0); /* -y / p */
	ck_near(r.dp[3], 0, 0);
	ck_near(r.dp[4], -1 / 1e-9, 0);
	/* dq = log max(1 - p, eps) - log max(p, eps) */
	ck_near(r.dq[0], -log(1e-12), 0);
	ck_near(r.dq[1], log(1e-12), 0);
	ck_near(r.dq[2], log(0.75) - log(0.25), 0);
	ck_near(r.dq[3], log(1 - 1e-15) - log(1e-12), 0);
}
END_TEST

/* max(z,0) - z y + log1p(exp(-|z|)): finite and exact where the naive
 * -log(sigmoid) form gives inf (z = 100, y = 0 -> log(1 - 1)) or loses
 * every digit (z = 100, y = 1 -> -log(1) = 0 instead of e^-100). */
START_TEST(test_bce_logits_extremes)
{
	const double z[4] = {100, 100, -100, -100}, y[4] = {1, 0, 1, 0};
	const double tiny = 3.7200759760208361e-44; /* log(1 + e^-100) = e^-100 in doubles */
	const double want[4] = {tiny, 100, 100, tiny};
	result r;
	run(NB_F64, nb_bce_logits, NB_NONE, NB_SHAPE(4), z, NB_SHAPE(4), y, false, &r);
	for (int i = 0; i < 4; i++) {
		ck_assert(isfinite(r.val[i]) && isfinite(r.dp[i]));
		ck_near(r.val[i], want[i], 1e-15 * want[i]);
	}
	/* sigmoid(z) - y */
	ck_near(r.dp[1], 1, 0);
	ck_near(r.dp[2], -1, 0);
	ck_near(r.dp[3], exp(-100.0), 1e-15 * exp(-100.0));
	/* in f32 e^-100 is a subnormal: the nearest one, 27 * 2^-149 */
	run(NB_F32, nb_bce_logits, NB_NONE, NB_SHAPE(4), z, NB_SHAPE(4), y, false, &r);
	for (int i = 0; i < 4; i++)
		ck_near(r.val[i], (float)want[i], 1e-6 * want[i]);
	ck_near(r.val[0], 27 * 0x1p-149, 0);
}
END_TEST

static nb_tensor *bce_of_sigmoid(nb_tensor *z, nb_tensor *y, nb_reduction r)
{
	return nb_bce(nb_sigmoid(z), y, r);
}

/* for moderate z the two forms agree, values and gradients */
START_TEST(test_bce_logits_matches_bce)
{
	double z[12], y[12];
	for (int i = 0; i < 12; i++) {
		z[i] = -5.5 + i;
		y[i] = (double)(i * 5 % 7) / 6;
	}
	for (nb_reduction red = NB_MEAN; red <= NB_NONE; red++) {
		result a, b;
		run(NB_F64, nb_bce_logits, red, NB_SHAPE(3, 4), z, NB_SHAPE(3, 4), y, true, &a);
		run(NB_F64, bce_of_sigmoid, red, NB_SHAPE(3, 4), z, NB_SHAPE(3, 4), y, true, &b);
		ck_assert_int_eq(a.n, b.n);
		for (int i = 0; i < a.n; i++)
			ck_near(a.val[i], b.val[i], 1e-13);
		for (int i = 0; i < 12; i++) {
			ck_near(a.dp[i], b.dp[i], 1e-13);
			ck_near(a.dq[i], b.dq[i], 1e-13);
		}
	}
}
END_TEST

/* per-element and reduced values of the elementwise losses */
START_TEST(test_reductions)
{
	const double p[4] = {1, 2, 3, 4}, q[4] = {0, 2, 5, 1};
	result r;
	run(NB_F64, nb_mse, NB_NONE, NB_SHAPE(2, 2), p, NB_SHAPE(2, 2), q, false, &r);
	ck_assert_int_eq(r.n, 4);
	const double sq[4] = {1, 0, 4, 9};
	for (int i = 0; i < 4; i++)
		ck_near(r.val[i], sq[i], 0);
	ck_near(loss_value(nb_mse, NB_SUM, NB_SHAPE(4), p, q), 14, 0);
	ck_near(loss_value(nb_mse, NB_MEAN, NB_SHAPE(4), p, q), 3.5, 0);

	const double pb[3] = {0.2, 0.6, 0.9}, qb[3] = {0, 1, 0.5};
	double e[3], s = 0;
	for (int i = 0; i < 3; i++)
		s += e[i] = -(qb[i] * log(pb[i]) + (1 - qb[i]) * log(1 - pb[i]));
	run(NB_F64, nb_bce, NB_NONE, NB_SHAPE(3), pb, NB_SHAPE(3), qb, false, &r);
	for (int i = 0; i < 3; i++)
		ck_near(r.val[i], e[i], 1e-15);
	ck_near(loss_value(nb_bce, NB_SUM, NB_SHAPE(3), pb, qb), s, 1e-15);
	ck_near(loss_value(nb_bce, NB_MEAN, NB_SHAPE(3), pb, qb), s / 3, 1e-15);

	const double zb[3] = {-1.5, 0, 2};
	s = 0;
	for (int i = 0; i < 3; i++)
		s += e[i] = -(qb[i] * log(1 / (1 + exp(-zb[i]))) +
		              (1 - qb[i]) * log(1 - 1 / (1 + exp(-zb[i]))));
	run(NB_F64, nb_bce_logits, NB_NONE, NB_SHAPE(3), zb, NB_SHAPE(3), qb, false, &r);
	for (int i = 0; i < 3; i++)
		ck_near(r.val[i], e[i], 1e-15);
	ck_near(loss_value(nb_bce_logits, NB_SUM, NB_SHAPE(3), zb, qb), s, 1e-15);
	ck_near(loss_value(nb_bce_logits, NB_MEAN, NB_SHAPE(3), zb, qb), s / 3, 1e-15);
}
END_TEST

/* cce over the last axis with the batch in the leading dims: [2,2,3]
 * logits are 4 samples; NONE keeps their [2,2] shape */
START_TEST(test_cce_reductions)
{
	double z[12], y[12] = {0};
	const int ids[4] = {2, 0, 1, 1};
	for (int i = 0; i < 12; i++)
		z[i] = (double)(i * 7 % 5) - 1.5;
	double each[4], total = 0;
	for (int n = 0; n < 4; n++) {
		y[n * 3 + ids[n]] = 1;
		double S = 0;
		for (int c = 0; c < 3; c++)
			S += exp(z[n * 3 + c]);
		total += each[n] = log(S) - z[n * 3 + ids[n]];
	}
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *Z = nb_constant(g, "z", NB_SHAPE(2, 2, 3), z);
	nb_tensor *Y = nb_constant(g, "y", NB_SHAPE(2, 2, 3), y);
	nb_tensor *none = nb_cce(Z, Y, NB_NONE), *sum = nb_cce(Z, Y, NB_SUM),
	          *mean = nb_cce(Z, Y, NB_MEAN);
	nb_program *p = nb_compile(g, (nb_tensor *[]){none, sum, mean}, 3);
	ck_graph_ok(g);
	nb_shape s = nb_tensor_shape(none);
	ck_assert_int_eq(s.ndim, 2);
	ck_assert_int_eq(s.d[0], 2);
	ck_assert_int_eq(s.d[1], 2);
	ck_assert_int_eq(nb_tensor_shape(mean).ndim, 0);
	ck_assert_int_eq(nb_run(p), NB_OK);
	double v[4];
	nb_read_f64(none, v, 4);
	for (int n = 0; n < 4; n++)
		ck_near(v[n], each[n], 1e-15);
	ck_near(nb_item(sum), total, 2e-15);
	ck_near(nb_item(mean), total / 4, 1e-15);
	nb_graph_free(g);
}
END_TEST

/* The notes' CCE example: y = [0 1 0], yhat = [0.1 0.2 0.7]: L = -ln 0.2
 * = 1.6094379124341003 (the notes round it to 1.6).  cce takes logits, and
 * softmax(log yhat) = yhat since yhat sums to 1. */
START_TEST(test_cce_notes_example)
{
	const double z[3] = {log(0.1), log(0.2), log(0.7)}, y[3] = {0, 1, 0};
	ck_near(loss_value(nb_cce, NB_MEAN, NB_SHAPE(3), z, y), 1.6094379124341003, 4e-16);
	/* the same as -sum(y * log_softmax(z)) written with ops */
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *Z = nb_constant(g, "z", NB_SHAPE(1, 3), z),
	          *Y = nb_constant(g, "y", NB_SHAPE(1, 3), y);
	nb_tensor *L = nb_neg(nb_sum(nb_mul(Y, nb_log_softmax(Z, -1))));
	ck_graph_ok(g);
	nb_eval(L);
	ck_near(nb_item(L), 1.6094379124341003, 4e-16);
	nb_graph_free(g);
}
END_TEST

static nb_tensor *cce_one_hot(nb_tensor *z, nb_tensor *ids, nb_reduction r)
{
	return nb_cce(z, nb_one_hot(ids, (int)nb_tensor_shape(z).d[1]), r);
}

/* cce with one-hot rows equals sparse_cce with the ids: values and
 * gradients to the bit, in both dtypes and every reduction */
START_TEST(test_cce_matches_sparse)
{
	double z[20];
	const double ids[4] = {3, 0, 4, 1};
	for (int i = 0; i < 20; i++)
		z[i] = sin(i * 1.7) * 3;
	for (int dt = 0; dt < 2; dt++)
		for (nb_reduction red = NB_MEAN; red <= NB_NONE; red++) {
			result a, b;
			nb_dtype d = dt ? NB_F64 : NB_F32;
			run(d, cce_one_hot, red, NB_SHAPE(4, 5), z, NB_SHAPE(4), ids, false, &a);
			run(d, nb_sparse_cce, red, NB_SHAPE(4, 5), z, NB_SHAPE(4), ids, false, &b);
			ck_assert_int_eq(a.n, red == NB_NONE ? 4 : 1);
			ck_assert_int_eq(a.n, b.n);
			for (int i = 0; i < a.n; i++)
				ck_near(a.val[i], b.val[i], 0);
			for (int i = 0; i < 20; i++)
				ck_near(a.dp[i], b.dp[i], 0);
		}
}
END_TEST

/* The VJPs in closed form: mse 2(p - q)/N, bce (p - q)/(p(1 - p))/N,
 * bce_logits (sigmoid(z) - q)/N, cce (softmax(z) - y)/N; targets as
 * parameters get -2(p - q)/N, (log(1-p) - log p)/N, -z/N, -log softmax/N. */
START_TEST(test_gradients_closed_form)
{
	const double p[6] = {0.15, 0.4, 0.55, 0.7, 0.85, 0.95}, q[6] = {0, 1, 0.3, 1, 0, 0.5};
	for (nb_reduction red = NB_MEAN; red <= NB_SUM; red++) {
		double k = red == NB_MEAN ? 1.0 / 6 : 1;
		result r;
		run(NB_F64, nb_mse, red, NB_SHAPE(6), p, NB_SHAPE(6), q, true, &r);
		for (int i = 0; i < 6; i++) {
			ck_near(r.dp[i], 2 * (p[i] - q[i]) * k, 1e-16);
			ck_near(r.dq[i], -2 * (p[i] - q[i]) * k, 1e-16);
		}
		run(NB_F64, nb_bce, red, NB_SHAPE(6), p, NB_SHAPE(6), q, true, &r);
		for (int i = 0; i < 6; i++) {
			ck_near(r.dp[i], (p[i] - q[i]) / (p[i] * (1 - p[i])) * k, 1e-14);
			ck_near(r.dq[i], (log(1 - p[i]) - log(p[i])) * k, 1e-15);
		}
		run(NB_F64, nb_bce_logits, red, NB_SHAPE(6), p, NB_SHAPE(6), q, true, &r);
		for (int i = 0; i < 6; i++) {
			ck_near(r.dp[i], (1 / (1 + exp(-p[i])) - q[i]) * k, 1e-16);
			ck_near(r.dq[i], -p[i] * k, 1e-16);
		}
		/* cce: 2 samples of 3 classes; soft rows summing to 1 */
		const double y[6] = {0.2, 0.5, 0.3, 1, 0, 0};
		run(NB_F64, nb_cce, red, NB_SHAPE(2, 3), p, NB_SHAPE(2, 3), y, true, &r);
		k = red == NB_MEAN ? 0.5 : 1;
		for (int n = 0; n < 2; n++) {
			double S = 0;
			for (int c = 0; c < 3; c++)
				S += exp(p[n * 3 + c]);
			for (int c = 0; c < 3; c++) {
				int i = n * 3 + c;
				ck_near(r.dp[i], (exp(p[i]) / S - y[i]) * k, 1e-16);
				ck_near(r.dq[i], -(p[i] - log(S)) * k, 1e-15);
			}
		}
	}
}
END_TEST

/* The notes' digression: errors 3 - 2 = 1 and 3 - 4 = -1 cancel in a
 * plain sum, but MSE = (1 + 1)/2 = 1; the notes' loss 1/2 sum (y-yhat)^2
 * = 1 too, and its gradient is -(y - yhat) (equation 6). */
START_TEST(test_half_sse)
{
	const double yhat[2] = {2, 4}, y[2] = {3, 3};
	ck_near(loss_value(nb_mse, NB_MEAN, NB_SHAPE(2), yhat, y), 1, 0);
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *P = nb_param(g, "yhat", NB_SHAPE(2), NB_ZEROS);
	nb_tensor *Y = nb_param(g, "y", NB_SHAPE(2), NB_ZEROS);
	nb_feed_f64(P, yhat, 2);
	nb_feed_f64(Y, y, 2);
	nb_tensor *L = nb_half_sse(P, Y), *d[2];
	nb_grads(L, (nb_tensor *[]){P, Y}, 2, d);
	nb_program *p = nb_compile(g, (nb_tensor *[]){L, d[0], d[1]}, 3);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_run(p), NB_OK);
	ck_near(nb_item(L), 1, 0);
	double dp[2], dy[2];
	nb_read_f64(d[0], dp, 2);
	nb_read_f64(d[1], dy, 2);
	for (int i = 0; i < 2; i++) {
		ck_near(dp[i], -(y[i] - yhat[i]), 0);
		ck_near(dy[i], y[i] - yhat[i], 0);
	}
	nb_graph_free(g);
}
END_TEST

/* f32 and f64 agree on every loss, every reduction, values and gradients */
START_TEST(test_f32_matches_f64)
{
	loss_fn fns[5] = {nb_mse, nb_bce, nb_bce_logits, nb_cce, nb_sparse_cce};
	double p[12], q[12], ids[4] = {1, 2, 0, 2};
	for (int i = 0; i < 12; i++) {
		p[i] = 0.05 + 0.9 * (double)(i * 5 % 12) / 11;
		q[i] = (double)(i * 7 % 4) / 3;
	}
	for (int k = 0; k < 5; k++)
		for (nb_reduction red = NB_MEAN; red <= NB_NONE; red++) {
			result r[2];
			bool sparse = k == 4;
			for (int dt = 0; dt < 2; dt++)
				run(dt ? NB_F64 : NB_F32, fns[k], red, NB_SHAPE(4, 3), p,
				    sparse ? NB_SHAPE(4) : NB_SHAPE(4, 3), sparse ? ids : q,
				    !sparse, &r[dt]);
			for (int i = 0; i < r[1].n; i++)
				ck_near(r[0].val[i], r[1].val[i], 1e-6 * (1 + fabs(r[1].val[i])));
			for (int i = 0; i < 12; i++) {
				ck_near(r[0].dp[i], r[1].dp[i], 1e-6 * (1 + fabs(r[1].dp[i])));
				if (!sparse)
					ck_near(r[0].dq[i], r[1].dq[i],
					        1e-6 * (1 + fabs(r[1].dq[i])));
			}
		}
}
END_TEST

/* the first error is recorded with the op, the tensor names and shapes */
static void expect_error(nb_graph *g, nb_status st, const char *msg)
{
	ck_assert_int_eq(nb_graph_status(g), st);
	ck_assert_str_eq(nb_graph_errmsg(g), msg);
	nb_graph_clear_error(g);
}

START_TEST(test_shape_errors)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *p = nb_input(g, "pred", NB_SHAPE(4)), *t = nb_input(g, "y", NB_SHAPE(4, 1));
	nb_mse(p, t, NB_MEAN);
	expect_error(g, NB_ERR_SHAPE,
	             "mse(pred, y): prediction [4] and target [4,1] differ (losses do not "
	             "broadcast; reshape one of them)");
	nb_bce_logits(t, p, NB_SUM);
	ck_assert_ptr_nonnull(
	    strstr(nb_graph_errmsg(g), "bce_logits(y, pred): prediction [4,1] and target [4]"));
	nb_graph_clear_error(g);
	nb_half_sse(p, t);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_SHAPE);
	nb_graph_clear_error(g);

	nb_tensor *z = nb_input(g, "logits", NB_SHAPE(8, 10)),
	          *oh = nb_input(g, "onehot", NB_SHAPE(8, 9));
	nb_tensor *ids = nb_input(g, "ids", NB_SHAPE(8, 1));
	nb_cce(z, oh, NB_MEAN);
	expect_error(
	    g, NB_ERR_SHAPE,
	    "cce(logits, onehot): targets [8,9] must have the logits' shape [8,10] (one-hot "
	    "rows over the last axis; for class ids use sparse_cce)");
	nb_sparse_cce(z, ids, NB_MEAN);
	expect_error(
	    g, NB_ERR_SHAPE,
	    "sparse_cce(logits, ids): class ids [8,1] must have shape [8] (the logits [8,10] "
	    "without the class axis; for one-hot targets use cce)");
	nb_sparse_cce(nb_sum(z), nb_sum(z), NB_SUM);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_SHAPE);
	ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(g), "logits are a scalar"));
	nb_graph_clear_error(g);
	nb_mse(p, p, (nb_reduction)7);
	expect_error(g, NB_ERR_ARG,
	             "mse(pred, pred): unknown reduction 7 (use NB_MEAN, NB_SUM or NB_NONE)");
	nb_one_hot(ids, 0);
	expect_error(g, NB_ERR_ARG, "one_hot(ids): 0 classes (must be positive)");
	nb_graph_free(g);
}
END_TEST

/* A bad class id is a run-time error, not a crash: nb_run returns
 * NB_ERR_VALUE and the message names the op, the id and where it is. */
START_TEST(test_sparse_bad_ids)
{
	const double bad[3][3] = {{0, 7, 1}, {1.5, 0, 0}, {0, 2, -1}};
	const char *msgs[3] = {
	    "sparse_cce(z, ids): class id 7 at index 1 of ids is out of range (5 classes: ids 0 to "
	    "4)",
	    "sparse_cce(z, ids): class id 1.5 at index 0 of ids is not an integer (5 classes: ids "
	    "0 to 4)",
	    "sparse_cce(z, ids): class id -1 at index 2 of ids is out of range (5 classes: ids 0 "
	    "to 4)",
	};
	for (int dt = 0; dt < 2; dt++) {
		nb_graph *g = nb_graph_new(dt ? NB_F64 : NB_F32);
		nb_tensor *z = nb_param(g, "z", NB_SHAPE(3, 5), NB_UNIFORM(-1, 1));
		nb_tensor *ids = nb_input(g, "ids", NB_SHAPE(3));
		nb_tensor *L = nb_sparse_cce(z, ids, NB_MEAN);
		nb_optim *o = nb_sgd(g, L, (nb_sgd_opts){.lr = 0.1});
		ck_graph_ok(g);
		double before[15], after[15];
		nb_read_f64(z, before, 15);
		for (int k = 0; k < 3; k++) {
			nb_feed_f64(ids, bad[k], 3);
			ck_assert_int_eq(nb_step(o), NB_ERR_VALUE);
			ck_assert_str_eq(nb_graph_errmsg(g), msgs[k]);
			ck_assert(isnan(nb_item(L)));
			nb_graph_clear_error(g);
		}
		/* the run stopped at the failing kernel: no update with NaNs */
		nb_read_f64(z, after, 15);
		for (int i = 0; i < 15; i++)
			ck_near(after[i], before[i], 0);
		/* good ids again: the program runs */
		nb_feed_f64(ids, (double[]){4, 0, 2}, 3);
		ck_assert_int_eq(nb_step(o), NB_OK);
		ck_assert(isfinite(nb_item(L)));
		nb_graph_free(g);
	}
}
END_TEST

START_TEST(test_one_hot)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *ids = nb_input(g, "labels", NB_SHAPE(2, 2));
	nb_tensor *oh = nb_one_hot(ids, 3);
	ck_graph_ok(g);
	nb_shape s = nb_tensor_shape(oh);
	ck_assert_int_eq(s.ndim, 3);
	ck_assert_int_eq(s.d[2], 3);
	nb_feed_f64(ids, (double[]){2, 0, 1, 2}, 4);
	ck_assert_int_eq(nb_eval(oh), NB_OK);
	double v[12];
	nb_read_f64(oh, v, 12);
	const double want[12] = {0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1};
	for (int i = 0; i < 12; i++)
		ck_near(v[i], want[i], 0);
	nb_feed_f64(ids, (double[]){2, 0, 3, 2}, 4);
	ck_assert_int_eq(nb_eval(oh), NB_ERR_VALUE);
	ck_assert_str_eq(nb_graph_errmsg(g), "one_hot(labels): class id 3 at index 2 of labels is "
	                                     "out of range (3 classes: ids 0 to 2)");
	nb_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("loss");
	TCase *tc = tcase_create("loss");
	tcase_add_test(tc, test_bce_notes_example);
	tcase_add_test(tc, test_bce_clamped_gradient);
	tcase_add_test(tc, test_bce_logits_extremes);
	tcase_add_test(tc, test_bce_logits_matches_bce);
	tcase_add_test(tc, test_reductions);
	tcase_add_test(tc, test_cce_reductions);
	tcase_add_test(tc, test_cce_notes_example);
	tcase_add_test(tc, test_cce_matches_sparse);
	tcase_add_test(tc, test_gradients_closed_form);
	tcase_add_test(tc, test_half_sse);
	tcase_add_test(tc, test_f32_matches_f64);
	tcase_add_test(tc, test_shape_errors);
	tcase_add_test(tc, test_sparse_bad_ids);
	tcase_add_test(tc, test_one_hot);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
