/* Ops added through the public API (include/nabla/op.h): f32 against f64
 * and against the same function of built-in ops, gradchecks (first and
 * second derivatives), DOT, a compiled training step, what a kernel sees,
 * the planner's buffers, and every error: registrations, constructions,
 * shape rules, kernels, VJPs, ONNX export. */
#include "test_util.h"

#include "graph/internal.h" /* NB_OP_CUSTOM */

#include <string.h>
#include <unistd.h>

/* ---- swish(x) = x sigmoid(beta x), beta = f[0] ----------------------------- */

static nb_status same_shape(const nb_custom_shape_args *a, nb_shape *out)
{
	*out = a->in[0];
	return NB_OK;
}

static nb_status swish_f32(const nb_custom_kernel_args *k)
{
	const float *x = k->in[0];
	float *y = k->out, b = (float)k->attrs->f[0];
	for (int64_t i = 0; i < k->out_size; i++)
		y[i] = x[i] / (1 + expf(-b * x[i]));
	return NB_OK;
}

static nb_status swish_f64(const nb_custom_kernel_args *k)
{
	const double *x = k->in[0];
	double *y = k->out, b = k->attrs->f[0];
	for (int64_t i = 0; i < k->out_size; i++)
		y[i] = x[i] / (1 + exp(-b * x[i]));
	return NB_OK;
}

/* dy/dx = s + beta y (1 - s), s = sigmoid(beta x) */
static void swish_vjp(const nb_custom_vjp_args *a, nb_tensor **gin)
{
	double b = a->attrs->f[0];
	nb_tensor *s = nb_logsig(a->in[0], b);
	nb_tensor *d = nb_add(s, nb_mul_scalar(nb_mul(a->out, nb_rsub_scalar(s, 1)), b));
	gin[0] = nb_mul(a->gout, d);
}

static void swish_label(const nb_custom_attrs *at, void *user, char *buf, size_t n)
{
	(void)user;
	snprintf(buf, n, "beta %g", at->f[0]);
}

static nb_tensor *swish_example(nb_graph *g, const nb_custom_op *op, nb_tensor **w, int *n)
{
	w[0] = nb_param(g, "x", NB_SHAPE(2, 5), NB_UNIFORM(-3, 3));
	*n = 1;
	return nb_custom(op, w, 1, &(nb_custom_attrs){.f = {1.5}});
}

static const nb_custom_def swish_def = {.name = "swish",
                                        .n_inputs = 1,
                                        .shape = same_shape,
                                        .forward_f32 = swish_f32,
                                        .forward_f64 = swish_f64,
                                        .vjp = swish_vjp,
                                        .label = swish_label,
                                        .example = swish_example};

static nb_tensor *swish(nb_tensor *x, double beta)
{
	const nb_custom_op *op = nb_custom_register(nb_tensor_graph(x), &swish_def);
	return nb_custom(op, &x, 1, &(nb_custom_attrs){.f = {beta}});
}

/* the same function of built-in ops */
static nb_tensor *swish_ref(nb_tensor *x, double beta)
{
	return nb_mul(x, nb_logsig(x, beta));
}

static const double xs[8] = {-4, -1.5, -0.25, 0, 0.3, 1, 2.5, 6};

/* The kernels agree with each other and with built-in ops; nodes are named
 * after the op, the table's row is "custom". */
START_TEST(test_forward_f32_f64_and_builtin)
{
	double y[2][8], ref[8];
	for (int d = 0; d < 2; d++) {
		nb_graph *g = nb_graph_new(d ? NB_F64 : NB_F32);
		nb_tensor *x = nb_constant(g, "x", NB_SHAPE(2, 4), xs);
		nb_tensor *s = swish(x, 1.5), *r = swish_ref(x, 1.5);
		ck_graph_ok(g);
		ck_assert_str_eq(nb_tensor_op(s), "swish");
		ck_assert_int_eq(s->op, NB_OP_CUSTOM);
		ck_assert_str_eq(nb_op_name(NB_OP_CUSTOM), "custom");
		char want[32];
		snprintf(want, sizeof want, "swish_%d", s->id);
		ck_assert_str_eq(nb_tensor_name(s), want);
		ck_assert_int_eq(nb_shape_size(nb_tensor_shape(s)), 8);
		nb_program *p = nb_compile(g, (nb_tensor *[]){s, r}, 2);
		ck_assert_int_eq(nb_run(p), NB_OK);
		nb_read_f64(s, y[d], 8);
		if (d)
			nb_read_f64(r, ref, 8);
		nb_graph_free(g);
	}
	for (int i = 0; i < 8; i++) {
		ck_near(y[1][i], ref[i], 1e-15 * (1 + fabs(ref[i])));
		ck_near(y[0][i], y[1][i], 1e-6 * (1 + fabs(y[1][i])));
	}
}
END_TEST

/* The example-based check passes, through the public entry and through the
 * table's row (whose example is a two-input custom op) */
START_TEST(test_gradcheck)
{
	for (uint64_t seed = 1; seed <= 4; seed++) {
		nb_gradcheck_report r;
		char err[256];
		ck_assert_int_eq(nb_custom_gradcheck(&swish_def, seed, &r, err, sizeof err), NB_OK);
		ck_assert_msg(r.passed, "seed %d: max abs err %g", (int)seed, r.max_abs_err);
		ck_assert_int_eq(r.checked, 10);
		ck_assert_int_eq(nb_op_gradcheck(NB_OP_CUSTOM, seed, &r, err, sizeof err), NB_OK);
		ck_assert_msg(r.passed, "custom row seed %d: max abs err %g", (int)seed,
		              r.max_abs_err);
	}
	/* nb_gradcheck on a graph of one's own */
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(8), NB_ZEROS);
	nb_feed_f64(x, xs, 8);
	nb_tensor *L = nb_sum(nb_square(swish(x, 0.7)));
	nb_gradcheck_report r;
	ck_assert_int_eq(nb_gradcheck(L, &x, 1, (nb_gradcheck_opts){0}, &r), NB_OK);
	ck_assert(r.passed);
	nb_graph_free(g);
	/* no example: refused with a message */
	nb_custom_def d = swish_def;
	d.example = NULL;
	char err[256];
	ck_assert_int_eq(nb_custom_gradcheck(&d, 1, &r, err, sizeof err), NB_ERR_ARG);
	ck_assert_str_eq(err, "custom op swish has no gradcheck example (.example)");
}
END_TEST

/* a VJP that forgets the beta y (1 - s) term */
static void wrong_vjp(const nb_custom_vjp_args *a, nb_tensor **gin)
{
	gin[0] = nb_mul(a->gout, nb_logsig(a->in[0], a->attrs->f[0]));
}

/* the check can fail */
START_TEST(test_gradcheck_catches_wrong_vjp)
{
	nb_custom_def d = swish_def;
	d.vjp = wrong_vjp;
	nb_gradcheck_report r;
	char err[256];
	ck_assert_int_eq(nb_custom_gradcheck(&d, 1, &r, err, sizeof err), NB_OK);
	ck_assert(!r.passed);
	ck_assert_int_gt(r.failed, 0);
}
END_TEST

/* The VJP is made of differentiable ops: the second derivative is the
 * analytic one and passes a gradcheck of the gradient. */
START_TEST(test_second_derivative)
{
	const double b = 1.3;
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(8), NB_ZEROS);
	nb_feed_f64(x, xs, 8);
	nb_tensor *gx = nb_grad(nb_sum(swish(x, b)), x);
	nb_tensor *hv = nb_grad(nb_sum(gx), x); /* d2y/dx2 elementwise */
	ck_graph_ok(g);
	ck_assert_int_eq(nb_eval(hv), NB_OK);
	double h[8];
	nb_read_f64(hv, h, 8);
	for (int i = 0; i < 8; i++) {
		/* y'' = b s' (2 + b x (1 - 2 s)), s' = s (1 - s) */
		double s = 1 / (1 + exp(-b * xs[i]));
		double want = b * s * (1 - s) * (2 + b * xs[i] * (1 - 2 * s));
		ck_near(h[i], want, 1e-12);
	}
	nb_gradcheck_report r;
	nb_tensor *L2 = nb_sum(nb_square(gx));
	ck_assert_int_eq(nb_gradcheck(L2, &x, 1, (nb_gradcheck_opts){0}, &r), NB_OK);
	ck_assert(r.passed);
	nb_graph_free(g);
}
END_TEST

/* DOT draws the node under the op's name with its label */
START_TEST(test_dot_label)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(3));
	nb_tensor *y = swish(x, 1.5);
	ck_graph_ok(g);
	char *mem = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&mem, &len);
	ck_assert_int_eq(nb_graph_write_dot(g, fp, NB_DOT_FORWARD), NB_OK);
	fclose(fp);
	char want[96];
	snprintf(want, sizeof want, "{swish_%d|swish\\nbeta 1.5|[3]}", y->id);
	ck_assert_msg(strstr(mem, want), "no \"%s\" in\n%s", want, mem);
	free(mem);
	nb_graph_free(g);
}
END_TEST

/* y = w2 act(w1 x + b1) fitted to fixed targets by Adam; the loss after
 * every step */
static void train(bool custom, nb_dtype dt, double *loss_out, int steps)
{
	nb_graph *g = nb_graph_new(dt);
	nb_graph_seed(g, 3);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(16, 2));
	nb_tensor *t = nb_input(g, "t", NB_SHAPE(16, 1));
	nb_tensor *w1 = nb_param(g, "w1", NB_SHAPE(2, 8), NB_UNIFORM(-1, 1));
	nb_tensor *b1 = nb_param(g, "b1", NB_SHAPE(8), NB_UNIFORM(-0.5, 0.5));
	nb_tensor *w2 = nb_param(g, "w2", NB_SHAPE(8, 1), NB_UNIFORM(-1, 1));
	nb_tensor *v = nb_add(nb_matmul(x, w1), b1);
	nb_tensor *h = custom ? swish(v, 1.2) : swish_ref(v, 1.2);
	nb_tensor *loss = nb_mse(nb_matmul(h, w2), t, NB_MEAN);
	nb_optim *o = nb_adam(g, loss, (nb_adam_opts){.lr = 0.05});
	ck_graph_ok(g);
	double X[32], T[16];
	for (int i = 0; i < 16; i++) {
		X[2 * i] = -1 + i / 7.5;
		X[2 * i + 1] = cos(i);
		T[i] = sin(2 * X[2 * i]) * X[2 * i + 1];
	}
	nb_feed_f64(x, X, 32);
	nb_feed_f64(t, T, 16);
	for (int s = 0; s < steps; s++) {
		ck_assert_int_eq(nb_step(o), NB_OK);
		loss_out[s] = nb_item(loss);
	}
	nb_graph_free(g);
}

/* Inside an optimizer's compiled step the custom op trains as the same
 * function of built-in ops does, step for step, in f64 and f32. */
START_TEST(test_training_step)
{
	enum { STEPS = 60 };
	double a[STEPS], b[STEPS];
	train(true, NB_F64, a, STEPS);
	train(false, NB_F64, b, STEPS);
	for (int s = 0; s < STEPS; s++)
		ck_near(a[s], b[s], 1e-9 * b[s]);
	ck_assert_double_lt(a[STEPS - 1], a[0] / 4);
	train(true, NB_F32, a, STEPS);
	ck_assert_double_lt(a[STEPS - 1], a[0] / 4);
	ck_near(a[STEPS - 1], b[STEPS - 1], 1e-3 * b[0]);
}
END_TEST

/* ---- what a kernel sees ------------------------------------------------------ */

typedef struct seen {
	int calls, threads, n_in;
	bool training;
	int64_t batch_rows, out_size, in_size;
	nb_dtype dtype;
	int64_t i3;
} seen;

static nb_status spy_f64(const nb_custom_kernel_args *k)
{
	seen *s = k->user;
	s->calls++;
	s->threads = k->threads;
	s->training = k->training;
	s->batch_rows = k->batch_rows;
	s->out_size = k->out_size;
	s->in_size = k->in_size[0];
	s->n_in = k->n_in;
	s->dtype = k->dtype;
	s->i3 = k->attrs->i[3];
	/* reversed: the output is written from the front while the input is
	 * read from the back, so a shared buffer would corrupt it */
	const double *x = k->in[0];
	double *y = k->out;
	for (int64_t i = 0; i < k->out_size; i++)
		y[i] = x[k->out_size - 1 - i];
	return NB_OK;
}

START_TEST(test_kernel_args_and_buffers)
{
	seen s = {0};
	nb_custom_def d = {.name = "reverse",
	                   .n_inputs = 1,
	                   .shape = same_shape,
	                   .forward_f64 = spy_f64,
	                   .user = &s};
	nb_graph *g = nb_graph_new(NB_F64);
	const nb_custom_op *op = nb_custom_register(g, &d);
	ck_assert_str_eq(nb_custom_name(op), "reverse");
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 4));
	/* relu's buffer dies at the custom node: an elementwise op would take it */
	nb_tensor *r =
	    nb_custom(op, (nb_tensor *[]){nb_relu(x)}, 1, &(nb_custom_attrs){.i = {[3] = 42}});
	nb_tensor *y = nb_add_scalar(r, 1);
	ck_graph_ok(g);
	nb_feed_f64(x, xs, 8);
	nb_graph_set_batch_rows(g, 1);
	ck_assert_int_eq(nb_eval(y), NB_OK);
	ck_assert_int_eq(s.calls, 1);
	ck_assert_int_eq(s.threads, nb_num_threads());
	ck_assert(s.training);
	ck_assert_int_eq(s.batch_rows, 1);
	ck_assert_int_eq(s.out_size, 8);
	ck_assert_int_eq(s.in_size, 8);
	ck_assert_int_eq(s.n_in, 1);
	ck_assert_int_eq(s.dtype, NB_F64);
	ck_assert_int_eq(s.i3, 42);
	double out[8];
	nb_read_f64(y, out, 8);
	for (int i = 0; i < 8; i++)
		ck_near(out[i], fmax(xs[7 - i], 0) + 1, 0);
	nb_graph_set_training(g, false);
	nb_set_num_threads(1);
	ck_assert_int_eq(nb_eval(y), NB_OK);
	ck_assert(!s.training);
	ck_assert_int_eq(s.threads, 1);
	nb_set_num_threads(0);
	nb_graph_free(g);
}
END_TEST

/* ---- errors -------------------------------------------------------------------- */

static nb_status pair_shape(const nb_custom_shape_args *a, nb_shape *out)
{
	char b0[64], b1[64];
	if (a->in[0].ndim != 2 || a->in[1].ndim != 2 || a->in[0].d[1] != a->in[1].d[0]) {
		snprintf(a->err, a->err_len, "want [m,k] and [k,n], got %s and %s",
		         nb_shape_str(a->in[0], b0, sizeof b0),
		         nb_shape_str(a->in[1], b1, sizeof b1));
		return NB_ERR_SHAPE;
	}
	*out = NB_SHAPE(a->in[0].d[0], a->in[1].d[1] - (int64_t)a->attrs->i[0]);
	return NB_OK;
}

static nb_status zero_f32(const nb_custom_kernel_args *k)
{
	memset(k->out, 0, (size_t)k->out_size * sizeof(float));
	return NB_OK;
}

static const nb_custom_def pair_def = {
    .name = "pair", .n_inputs = 2, .shape = pair_shape, .forward_f32 = zero_f32};

START_TEST(test_shape_errors)
{
	nb_graph *g = nb_graph_new(NB_F32);
	const nb_custom_op *op = nb_custom_register(g, &pair_def);
	nb_tensor *a = nb_input(g, "a", NB_SHAPE(2, 3));
	nb_tensor *b = nb_input(g, "b", NB_SHAPE(4, 5));
	nb_tensor *y = nb_custom(op, (nb_tensor *[]){a, b}, 2, NULL);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_SHAPE);
	ck_assert_str_eq(nb_graph_errmsg(g),
	                 "pair(a, b): want [m,k] and [k,n], got [2,3] and [4,5]");
	int nodes = nb_graph_num_nodes(g);
	/* sticky: later constructors give the placeholder, add nothing */
	ck_assert_ptr_eq(nb_relu(y), y);
	ck_assert_ptr_eq(nb_custom(op, (nb_tensor *[]){a, a}, 2, NULL), y);
	ck_assert_int_eq(nb_graph_num_nodes(g), nodes);
	ck_assert_ptr_null(nb_custom_register(g, &swish_def));
	nb_graph_clear_error(g);
	/* a rule that gives a bad shape */
	nb_tensor *c = nb_input(g, "c", NB_SHAPE(3, 4));
	nb_custom(op, (nb_tensor *[]){a, c}, 2, &(nb_custom_attrs){.i = {4}});
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_SHAPE);
	ck_assert_str_eq(nb_graph_errmsg(g),
	                 "pair(a, c): the shape rule gave [2,0]: dimension 1 is not positive");
	nb_graph_clear_error(g);
	nb_tensor *ok = nb_custom(op, (nb_tensor *[]){a, c}, 2, &(nb_custom_attrs){.i = {1}});
	ck_graph_ok(g);
	ck_assert_int_eq(nb_tensor_shape(ok).d[1], 3);
	ck_assert_int_eq(nb_eval(ok), NB_ERR_ARG); /* a and c never fed */
	nb_graph_free(g);
}
END_TEST

static nb_status silent_refusal(const nb_custom_shape_args *a, nb_shape *out)
{
	(void)a, (void)out;
	return (nb_status)77; /* not a status: recorded as a shape error */
}

START_TEST(test_shape_rule_without_message)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_custom_def d = {
	    .name = "mute", .n_inputs = 1, .shape = silent_refusal, .forward_f32 = zero_f32};
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2));
	nb_custom(nb_custom_register(g, &d), &x, 1, NULL);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_SHAPE);
	ck_assert_str_eq(nb_graph_errmsg(g), "mute(x): the shape rule refused the inputs");
	nb_graph_free(g);
}
END_TEST

/* one bad definition in a fresh graph: NULL, the status and the message */
static void bad_def(nb_dtype dt, const nb_custom_def *d, nb_status st, const char *msg)
{
	nb_graph *g = nb_graph_new(dt);
	ck_assert_ptr_null(nb_custom_register(g, d));
	ck_assert_int_eq(nb_graph_status(g), st);
	ck_assert_str_eq(nb_graph_errmsg(g), msg);
	/* the failed registration's NULL op gives the placeholder */
	nb_graph_clear_error(g);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2));
	ck_assert_ptr_null(nb_custom_register(g, d));
	nb_tensor *y = nb_custom(NULL, &x, 1, NULL);
	ck_assert_int_eq(nb_graph_status(g), st);
	ck_assert_ptr_eq(y, nb_relu(y)); /* the placeholder */
	nb_graph_free(g);
}

START_TEST(test_bad_registrations)
{
	ck_assert_ptr_null(nb_custom_register(NULL, &swish_def));
	bad_def(NB_F32, NULL, NB_ERR_ARG, "custom_register: the definition is NULL");
	nb_custom_def d = swish_def;
	d.name = NULL;
	bad_def(NB_F32, &d, NB_ERR_ARG, "custom_register: the op's name is NULL");
	/* shown safely: a control character becomes '?' */
	const char *names[] = {"", "two words", "9lives", "tab\there"};
	const char *shown[] = {"", "two words", "9lives", "tab?here"};
	for (int k = 0; k < 4; k++) {
		char want[256];
		d.name = names[k];
		snprintf(want, sizeof want,
		         "custom_register(\"%s\"): a name is 1 to 63 letters, digits, '_', '.' or "
		         "'-', starting with a letter or '_'",
		         shown[k]);
		bad_def(NB_F32, &d, NB_ERR_ARG, want);
	}
	d.name = "relu";
	bad_def(NB_F32, &d, NB_ERR_ARG,
	        "custom_register(relu): relu is the name of a built-in op; choose another");
	d.name = "custom";
	bad_def(NB_F32, &d, NB_ERR_ARG,
	        "custom_register(custom): custom is the name of a built-in op; choose another");
	d = swish_def;
	d.n_inputs = 0;
	bad_def(NB_F32, &d, NB_ERR_ARG,
	        "custom_register(swish): n_inputs is 0; an op takes 1 to 8");
	d.n_inputs = 9;
	bad_def(NB_F32, &d, NB_ERR_ARG,
	        "custom_register(swish): n_inputs is 9; an op takes 1 to 8");
	d = swish_def;
	d.shape = NULL;
	bad_def(NB_F32, &d, NB_ERR_ARG, "custom_register(swish): no shape rule (.shape is NULL)");
	d = swish_def;
	d.forward_f32 = d.forward_f64 = NULL;
	bad_def(NB_F64, &d, NB_ERR_ARG,
	        "custom_register(swish): no kernel (.forward_f32 and .forward_f64 are NULL)");
	/* the graph's dtype's kernel is missing: refused, nothing crashes */
	d = swish_def;
	d.forward_f32 = NULL;
	bad_def(NB_F32, &d, NB_ERR_DTYPE,
	        "custom_register(swish): no f32 kernel (.forward_f32 is NULL) for this f32 graph");
	d = swish_def;
	d.forward_f64 = NULL;
	bad_def(NB_F64, &d, NB_ERR_DTYPE,
	        "custom_register(swish): no f64 kernel (.forward_f64 is NULL) for this f64 graph");
	/* an f32-only op cannot be gradchecked, which needs f64 */
	nb_gradcheck_report r;
	char err[256];
	ck_assert_int_eq(nb_custom_gradcheck(&d, 1, &r, err, sizeof err), NB_ERR_DTYPE);
	ck_assert(!r.passed);
	ck_assert_str_eq(
	    err, "custom_register(swish): no f64 kernel (.forward_f64 is NULL) for this f64 graph");
	ck_assert_int_eq(nb_custom_gradcheck(NULL, 1, &r, err, sizeof err), NB_ERR_ARG);
	ck_assert_str_eq(err, "custom_register: the definition is NULL");
	ck_assert_int_eq(nb_custom_gradcheck(&swish_def, 1, NULL, err, sizeof err), NB_ERR_ARG);
}
END_TEST

START_TEST(test_long_name)
{
	char name[NB_CUSTOM_NAME_MAX + 2];
	memset(name, 'a', sizeof name - 1);
	name[sizeof name - 1] = 0;
	nb_custom_def d = swish_def;
	d.name = name; /* 64 bytes: one too many */
	nb_graph *g = nb_graph_new(NB_F32);
	ck_assert_ptr_null(nb_custom_register(g, &d));
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_ARG);
	ck_assert(strstr(nb_graph_errmsg(g), "a name is 1 to 63 letters"));
	nb_graph_clear_error(g);
	name[NB_CUSTOM_NAME_MAX] = 0; /* 63: accepted */
	const nb_custom_op *op = nb_custom_register(g, &d);
	ck_graph_ok(g);
	ck_assert_str_eq(nb_custom_name(op), name);
	nb_graph_free(g);
}
END_TEST

START_TEST(test_duplicate_names)
{
	nb_graph *g = nb_graph_new(NB_F32);
	const nb_custom_op *a = nb_custom_register(g, &swish_def);
	nb_custom_def copy = swish_def; /* the same callbacks: the same op */
	ck_assert_ptr_eq(nb_custom_register(g, &copy), a);
	copy.vjp = wrong_vjp;
	ck_assert_ptr_null(nb_custom_register(g, &copy));
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_ARG);
	ck_assert_str_eq(
	    nb_graph_errmsg(g),
	    "custom_register(swish): another op of this name is registered with the graph");
	/* another graph has its own */
	nb_graph *h = nb_graph_new(NB_F32);
	const nb_custom_op *b = nb_custom_register(h, &copy);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(a, b);
	nb_graph_free(h);
	nb_graph_free(g);
}
END_TEST

START_TEST(test_apply_errors)
{
	nb_graph *g = nb_graph_new(NB_F32);
	const nb_custom_op *op = nb_custom_register(g, &swish_def);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2));
	ck_assert_ptr_eq(nb_custom(op, (nb_tensor *[]){x, x}, 2, NULL), g->placeholder);
	ck_assert_str_eq(nb_graph_errmsg(g), "swish: takes 1 input, got 2");
	nb_graph_clear_error(g);
	nb_custom(op, (nb_tensor *[]){NULL}, 1, NULL);
	ck_assert_str_eq(nb_graph_errmsg(g), "swish: input 0 is NULL");
	nb_graph_clear_error(g);
	nb_custom(op, NULL, 1, NULL);
	ck_assert_str_eq(nb_graph_errmsg(g), "swish: takes 1 input, got 0");
	nb_graph_clear_error(g);
	nb_custom(NULL, &x, 1, NULL);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_ARG);
	ck_assert_str_eq(nb_graph_errmsg(g),
	                 "custom: the op is NULL (did nb_custom_register fail?)");
	nb_graph_clear_error(g);
	ck_assert_ptr_null(nb_custom(NULL, NULL, 0, NULL));
	/* an input of another graph: both graphs fail */
	nb_graph *h = nb_graph_new(NB_F32);
	nb_tensor *z = nb_input(h, "z", NB_SHAPE(2));
	nb_custom(op, &z, 1, NULL);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_GRAPH);
	ck_assert_str_eq(nb_graph_errmsg(g),
	                 "swish: input 0 (z) belongs to another graph than the op (registered with "
	                 "nb_custom_register)");
	ck_assert_int_eq(nb_graph_status(h), NB_ERR_GRAPH);
	ck_assert_str_eq(nb_graph_errmsg(h),
	                 "swish: input 0 (z) was given to an op of another graph");
	nb_graph_free(h);
	nb_graph_free(g);
}
END_TEST

/* the kernel rejects a value: nb_run stops there, before the update */
static nb_status picky_f64(const nb_custom_kernel_args *k)
{
	const double *x = k->in[0];
	for (int64_t i = 0; i < k->out_size; i++) {
		if (x[i] < 0) {
			snprintf(k->err, k->err_len, "element %lld is negative (%g)", (long long)i,
			         x[i]);
			return NB_ERR_VALUE;
		}
		((double *)k->out)[i] = sqrt(x[i]);
	}
	return NB_OK;
}

static void picky_vjp(const nb_custom_vjp_args *a, nb_tensor **gin)
{
	gin[0] = nb_div(nb_mul_scalar(a->gout, 0.5), a->out);
}

START_TEST(test_kernel_failure)
{
	nb_custom_def d = {.name = "picky",
	                   .n_inputs = 1,
	                   .shape = same_shape,
	                   .forward_f64 = picky_f64,
	                   .vjp = picky_vjp};
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(3));
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(3), NB_ONES);
	nb_tensor *y = nb_custom(nb_custom_register(g, &d), (nb_tensor *[]){nb_mul(x, w)}, 1, NULL);
	nb_optim *o = nb_sgd(g, nb_sum(y), (nb_sgd_opts){.lr = 0.1});
	ck_graph_ok(g);
	nb_feed_f64(x, (double[]){1, 4, 9}, 3);
	ck_assert_int_eq(nb_step(o), NB_OK);
	double wv[3];
	nb_read_f64(w, wv, 3);
	ck_near(wv[1], 1 - 0.1 * 0.5 * 4 / 2, 1e-15); /* d sqrt(x w)/dw = x / (2 sqrt(x w)) */
	nb_feed_f64(x, (double[]){1, -4, 9}, 3);
	ck_assert_int_eq(nb_step(o), NB_ERR_VALUE);
	char want[128];
	snprintf(want, sizeof want,
	         "picky(mul_%d): the kernel failed: element 1 is negative (-3.6)", y->in[0]->id);
	ck_assert_str_eq(nb_graph_errmsg(g), want);
	double after[3];
	nb_read_f64(w, after, 3);
	ck_assert_mem_eq(after, wv, sizeof wv); /* no update ran */
	nb_graph_free(g);
}
END_TEST

static nb_status failing_quietly(const nb_custom_kernel_args *k)
{
	(void)k;
	return NB_ERR_IO;
}

START_TEST(test_kernel_failure_without_message)
{
	nb_custom_def d = {
	    .name = "quiet", .n_inputs = 1, .shape = same_shape, .forward_f32 = failing_quietly};
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_constant(g, "x", NB_SHAPE(1), NULL);
	ck_assert_int_eq(nb_eval(nb_custom(nb_custom_register(g, &d), &x, 1, NULL)), NB_ERR_IO);
	ck_assert_str_eq(nb_graph_errmsg(g), "quiet(x): the kernel failed: I/O error");
	nb_graph_free(g);
}
END_TEST

static void bad_shape_vjp(const nb_custom_vjp_args *a, nb_tensor **gin)
{
	gin[0] = nb_sum(a->gout);
}

START_TEST(test_vjp_errors)
{
	/* no VJP: differentiating through the op fails naming it */
	nb_custom_def d = swish_def;
	d.name = "novjp";
	d.vjp = NULL;
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(3), NB_ZEROS);
	const nb_custom_op *op = nb_custom_register(g, &d);
	nb_tensor *y = nb_custom(op, &x, 1, NULL);
	ck_assert_ptr_eq(nb_grad(nb_sum(y), x), g->placeholder);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_GRAPH);
	char want[256];
	snprintf(want, sizeof want,
	         "novjp(x): no derivative rule: the op was registered without a vjp, so it "
	         "cannot be differentiated (nb_stop_gradient keeps gradients from reaching it)");
	ck_assert_str_eq(nb_graph_errmsg(g), want);
	nb_graph_clear_error(g);
	/* behind stop_gradient it needs none */
	nb_tensor *L = nb_sum(nb_mul(x, nb_stop_gradient(y)));
	nb_tensor *gx = nb_grad(L, x);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_eval(gx), NB_OK);
	/* a VJP giving the wrong shape */
	d.name = "badvjp";
	d.vjp = bad_shape_vjp;
	nb_tensor *z = nb_custom(nb_custom_register(g, &d), &x, 1, NULL);
	nb_grad(nb_sum(z), x);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_SHAPE);
	snprintf(want, sizeof want, "badvjp(x): the vjp returned [] for input 0 (x) of shape [3]");
	ck_assert_str_eq(nb_graph_errmsg(g), want);
	nb_graph_free(g);
}
END_TEST

/* ONNX export refuses the op by name and writes nothing */
START_TEST(test_onnx_refuses)
{
	char path[] = "/tmp/nb_custom_XXXXXX";
	ck_assert(mkdtemp(path));
	char file[64];
	snprintf(file, sizeof file, "%s/m.onnx", path);
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 3));
	nb_tensor *y = nb_relu(swish(x, 1));
	ck_graph_ok(g);
	ck_assert_int_eq(nb_onnx_save(g, &y, 1, file, (nb_onnx_opts){0}), NB_ERR_FORMAT);
	ck_assert_msg(strstr(nb_graph_errmsg(g), "op swish (computing swish_"), "message: %s",
	              nb_graph_errmsg(g));
	ck_assert_msg(strstr(nb_graph_errmsg(g), "is a custom op (nb_custom_register)"),
	              "message: %s", nb_graph_errmsg(g));
	ck_assert_int_ne(access(file, F_OK), 0);
	nb_graph_free(g);
	rmdir(path);
}
END_TEST

/* the profile times custom nodes under their op's name */
START_TEST(test_profile)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_constant(g, "x", NB_SHAPE(8), xs);
	nb_tensor *y = swish(x, 1);
	nb_program *p = nb_compile(g, &y, 1);
	ck_assert_int_eq(nb_program_profile(p, true), NB_OK);
	ck_assert_int_eq(nb_run(p), NB_OK);
	ck_assert_double_ge(nb_program_profile_op_ms(p, "swish"), 0);
	ck_assert_double_ge(nb_program_profile_op_ms(p, "custom"), 0);
	char *mem = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&mem, &len);
	nb_program_profile_report(p, fp);
	fclose(fp);
	ck_assert_msg(strstr(mem, " swish "), "%s", mem);
	free(mem);
	nb_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("custom");
	TCase *tc = tcase_create("custom");
	tcase_add_test(tc, test_forward_f32_f64_and_builtin);
	tcase_add_test(tc, test_gradcheck);
	tcase_add_test(tc, test_gradcheck_catches_wrong_vjp);
	tcase_add_test(tc, test_second_derivative);
	tcase_add_test(tc, test_dot_label);
	tcase_add_test(tc, test_training_step);
	tcase_add_test(tc, test_kernel_args_and_buffers);
	tcase_add_test(tc, test_shape_errors);
	tcase_add_test(tc, test_shape_rule_without_message);
	tcase_add_test(tc, test_bad_registrations);
	tcase_add_test(tc, test_long_name);
	tcase_add_test(tc, test_duplicate_names);
	tcase_add_test(tc, test_apply_errors);
	tcase_add_test(tc, test_kernel_failure);
	tcase_add_test(tc, test_kernel_failure_without_message);
	tcase_add_test(tc, test_vjp_errors);
	tcase_add_test(tc, test_onnx_refuses);
	tcase_add_test(tc, test_profile);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
