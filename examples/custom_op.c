/* An op of your own: swish(x) = x sigmoid(beta x), with hand-written
 * kernels and a VJP built from nabla's ops; gradchecked in f64, then used
 * to fit sin(3x) with a small network trained by Adam in f32. */
#include <math.h>
#include <nabla.h>
#include <stdio.h>

/* the output has the input's shape; beta (f[0]) must be finite */
static nb_status swish_shape(const nb_custom_shape_args *a, nb_shape *out)
{
	if (!isfinite(a->attrs->f[0])) {
		snprintf(a->err, a->err_len, "beta must be finite, not %g", a->attrs->f[0]);
		return NB_ERR_ARG;
	}
	*out = a->in[0];
	return NB_OK;
}

/* The kernels, one per element type: x sigmoid(beta x), written so that
 * exp never overflows, on the threads nb_run hands the kernel. */
static nb_status swish_f32(const nb_custom_kernel_args *k)
{
	const float *x = k->in[0];
	float *y = k->out, beta = (float)k->attrs->f[0];
#pragma omp parallel for num_threads(k->threads) if (k->out_size >= 65536)
	for (int64_t i = 0; i < k->out_size; i++) {
		float u = beta * x[i], e = expf(u < 0 ? u : -u);
		y[i] = x[i] * (u >= 0 ? 1 / (1 + e) : e / (1 + e));
	}
	return NB_OK;
}

static nb_status swish_f64(const nb_custom_kernel_args *k)
{
	const double *x = k->in[0];
	double *y = k->out, beta = k->attrs->f[0];
#pragma omp parallel for num_threads(k->threads) if (k->out_size >= 65536)
	for (int64_t i = 0; i < k->out_size; i++) {
		double u = beta * x[i], e = exp(u < 0 ? u : -u);
		y[i] = x[i] * (u >= 0 ? 1 / (1 + e) : e / (1 + e));
	}
	return NB_OK;
}

/* dy/dx = s + beta x s (1 - s) = s + beta y (1 - s), s = sigmoid(beta x) */
static void swish_vjp(const nb_custom_vjp_args *a, nb_tensor **gin)
{
	double beta = a->attrs->f[0];
	nb_tensor *s = nb_logsig(a->in[0], beta);
	nb_tensor *d = nb_add(s, nb_mul_scalar(nb_mul(a->out, nb_rsub_scalar(s, 1)), beta));
	gin[0] = nb_mul(a->gout, d);
}

static void swish_label(const nb_custom_attrs *at, void *user, char *buf, size_t n)
{
	(void)user;
	snprintf(buf, n, "beta %g", at->f[0]);
}

static nb_tensor *swish(const nb_custom_op *op, nb_tensor *x, double beta)
{
	return nb_custom(op, &x, 1, &(nb_custom_attrs){.f = {beta}});
}

/* for nb_custom_gradcheck: a random [3,4] input, beta in [0.5, 2) */
static nb_tensor *swish_example(nb_graph *g, const nb_custom_op *op, nb_tensor **wrt, int *n)
{
	wrt[0] = nb_param(g, "x", NB_SHAPE(3, 4), NB_UNIFORM(-3, 3));
	*n = 1;
	double beta = 0.5 + 1.5 * nb_item(nb_param(g, "beta", NB_SHAPE(1), NB_UNIFORM(0, 1)));
	return swish(op, wrt[0], beta);
}

static const nb_custom_def swish_def = {.name = "swish",
                                        .n_inputs = 1,
                                        .shape = swish_shape,
                                        .forward_f32 = swish_f32,
                                        .forward_f64 = swish_f64,
                                        .vjp = swish_vjp,
                                        .label = swish_label,
                                        .example = swish_example};

static int fail(nb_graph *g)
{
	fprintf(stderr, "%s\n", nb_graph_errmsg(g));
	nb_graph_free(g);
	return 1;
}

int main(void)
{
	/* 1. the gradient by finite differences, on random examples */
	for (uint64_t seed = 1; seed <= 5; seed++) {
		nb_gradcheck_report r;
		char err[256];
		if (nb_custom_gradcheck(&swish_def, seed, &r, err, sizeof err) != NB_OK ||
		    !r.passed) {
			fprintf(stderr, "gradcheck seed %d: %s (max abs err %g)\n", (int)seed, err,
			        r.max_abs_err);
			return 1;
		}
		printf("gradcheck seed %d: %lld elements, max abs err %.1e\n", (int)seed,
		       (long long)r.checked, r.max_abs_err);
	}

	/* 2. y = sin(3x) on [-1, 1] by a 1-32-32-1 swish network */
	enum { N = 64 };
	float X[N], Y[N];
	for (int i = 0; i < N; i++) {
		X[i] = -1.0f + 2.0f * (float)i / (N - 1);
		Y[i] = sinf(3 * X[i]);
	}
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, 7);
	const nb_custom_op *sw = nb_custom_register(g, &swish_def);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(N, 1));
	nb_tensor *y = nb_input(g, "y", NB_SHAPE(N, 1));
	nb_tensor *h = swish(sw, nb_dense(x, 32, "h1"), 1.0);
	h = swish(sw, nb_dense(h, 32, "h2"), 1.0);
	nb_tensor *p = nb_dense(h, 1, "out");
	nb_tensor *loss = nb_mse(p, y, NB_MEAN);
	nb_optim *opt = nb_adam(g, loss, (nb_adam_opts){.lr = 0.01});
	if (nb_graph_status(g) != NB_OK)
		return fail(g);
	nb_feed_f32(x, X, N);
	nb_feed_f32(y, Y, N);
	double first = 0, last = 0;
	for (int step = 1; step <= 600; step++) {
		if (nb_step(opt) != NB_OK)
			return fail(g);
		last = nb_item(loss);
		if (step == 1)
			first = last;
		if (step % 150 == 0)
			printf("step %3d  loss %.5f\n", step, last);
	}
	nb_graph_save_dot(g, "custom_op.dot", NB_DOT_FORWARD); /* nodes "swish\nbeta 1" */
	nb_graph_free(g);
	printf("loss %.4f -> %.5f\n", first, last);
	return last < 0.01 && last < first / 20 ? 0 : 1; /* learned? */
}
