/*
 * ONNX export checked from outside: every model is exported with
 * nb_onnx_save, validated by the ONNX project's checker (python3-onnx,
 * tests/onnx/check_onnx.py) and run in ONNX Runtime (onnxruntime-node,
 * tests/onnx/run_ort.js); its outputs must match nabla's own forward pass
 * on the same inputs within 1e-5 (f32).  Dynamic exports also run on a
 * smaller batch than they were built with.  Together the graphs use every
 * op that has an ONNX mapping (checked at the end).
 *
 * Exits 77 (skipped) when python3-onnx, node or onnxruntime-node is
 * missing; run.sh installs them.
 */
#include "test_util.h"

#include "graph/internal.h"
#include "ops/kernel.h"

#include <sys/wait.h>
#include <unistd.h>

#ifndef NB_SOURCE_ROOT
#define NB_SOURCE_ROOT "."
#endif
#define PY "/usr/bin/python3"

static char tmpdir[96];
static bool op_used[NB_OP_COUNT]; /* ops of the graphs exported and compared */

static void make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/nbonnxXXXXXX",
	         base && strlen(base) < 60 ? base : "/tmp");
	ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void remove_tmpdir(void)
{
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static int run(const char *cmd)
{
	int st = system(cmd);
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* ---- values ------------------------------------------------------------------- */

static uint64_t rng_state = 12345;

static double uniform(double lo, double hi)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

static void fill(nb_tensor *t, double lo, double hi)
{
	int64_t n = nb_tensor_size(t);
	double *v = malloc(sizeof *v * (size_t)n);
	ck_assert(v != NULL);
	for (int64_t i = 0; i < n; i++)
		v[i] = uniform(lo, hi);
	ck_assert_int_eq(nb_feed_f64(t, v, n), NB_OK);
	free(v);
}

/* Batch normalisation that is not the identity: gamma and beta drawn at
 * random, and running statistics of data (see calibrate). */
static void randomize_batchnorm(nb_graph *g)
{
	for (int i = 0; i < g->n_nodes; i++) {
		nb_tensor *t = g->nodes[i];
		const char *dot = strrchr(t->name, '.');
		if (!dot || !(nb__ops[t->op]->flags & NB_OPF_LEAF))
			continue;
		if (!strcmp(dot, ".gamma") || !strcmp(dot, ".running_var"))
			fill(t, 0.5, 1.5);
		else if (!strcmp(dot, ".beta") || !strcmp(dot, ".running_mean"))
			fill(t, -0.3, 0.3);
	}
}

/* ---- one export, checked and run -------------------------------------------------- */

typedef struct xcase {
	const char *name;
	nb_tensor *in[4];
	int n_in;
	nb_tensor *out[4];
	int n_out;
	bool dynamic;   /* the export must have a symbolic batch */
	bool keep_f64;  /* f64 graph written as DOUBLE */
	int classes[4]; /* > 0: input i holds class ids 0..classes-1 */
	double tol;
} xcase;

static void write_raw(const char *path, const double *v, int64_t n, bool f64)
{
	FILE *fp = fopen(path, "wb");
	ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
	for (int64_t i = 0; i < n; i++) {
		if (f64)
			ck_assert_int_eq(fwrite(&v[i], 8, 1, fp), 1);
		else {
			float f = (float)v[i];
			ck_assert_int_eq(fwrite(&f, 4, 1, fp), 1);
		}
	}
	ck_assert_int_eq(fclose(fp), 0);
}

static double *read_raw(const char *path, int64_t n, bool f64)
{
	FILE *fp = fopen(path, "rb");
	ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
	double *v = malloc(sizeof *v * (size_t)n);
	ck_assert(v != NULL);
	for (int64_t i = 0; i < n; i++) {
		if (f64)
			ck_assert_int_eq(fread(&v[i], 8, 1, fp), 1);
		else {
			float f;
			ck_assert_int_eq(fread(&f, 4, 1, fp), 1);
			v[i] = f;
		}
	}
	ck_assert_msg(fgetc(fp) == EOF, "%s is longer than %lld elements", path, (long long)n);
	fclose(fp);
	return v;
}

/* Run the model in ONNX Runtime on the first `rows` rows of each input
 * (all of it when rows is 0) and compare with want (nabla's outputs). */
static void run_ort(const xcase *c, const char *model, double **inputs, double **want, int64_t rows,
                    bool f64)
{
	char man[256], file[256], cmd[768];
	snprintf(man, sizeof man, "%s/%s-%lld.json", tmpdir, c->name, (long long)rows);
	FILE *fp = fopen(man, "w");
	ck_assert(fp != NULL);
	fprintf(fp, "{\"model\": \"%s\", \"dtype\": \"%s\", \"inputs\": [", model,
	        f64 ? "float64" : "float32");
	for (int i = 0; i < c->n_in; i++) {
		nb_shape s = nb_tensor_shape(c->in[i]);
		int64_t n = nb_tensor_size(c->in[i]);
		if (rows) {
			n = n / s.d[0] * rows;
			s.d[0] = rows;
		}
		snprintf(file, sizeof file, "%s/%s-in%d-%lld.bin", tmpdir, c->name, i,
		         (long long)rows);
		write_raw(file, inputs[i], n, f64);
		fprintf(fp, "%s{\"name\": \"%s\", \"file\": \"%s\", \"dims\": [", i ? ", " : "",
		        nb_tensor_name(c->in[i]), file);
		for (int d = 0; d < s.ndim; d++)
			fprintf(fp, "%s%lld", d ? ", " : "", (long long)s.d[d]);
		fprintf(fp, "]}");
	}
	fprintf(fp, "], \"outputs\": [");
	for (int o = 0; o < c->n_out; o++)
		fprintf(fp, "%s{\"name\": \"%s\", \"file\": \"%s-out%d-%lld.bin\"}", o ? ", " : "",
		        nb_tensor_name(c->out[o]), c->name, o, (long long)rows);
	fprintf(fp, "]}\n");
	ck_assert_int_eq(fclose(fp), 0);
	snprintf(cmd, sizeof cmd, "node '%s/tests/onnx/run_ort.js' '%s'", NB_SOURCE_ROOT, man);
	ck_assert_msg(run(cmd) == 0, "%s: ONNX Runtime failed (%s)", c->name, cmd);
	for (int o = 0; o < c->n_out; o++) {
		nb_shape s = nb_tensor_shape(c->out[o]);
		int64_t n = nb_tensor_size(c->out[o]);
		if (rows)
			n = n / s.d[0] * rows;
		snprintf(file, sizeof file, "%s/%s-out%d-%lld.bin", tmpdir, c->name, o,
		         (long long)rows);
		double *got = read_raw(file, n, f64), worst = 0;
		int64_t at = 0;
		for (int64_t i = 0; i < n; i++) {
			double d = fabs(got[i] - want[o][i]);
			if (!(d <= worst)) /* NaN counts as the worst */
				worst = d, at = i;
		}
		printf("%-28s %-10s batch %-4lld max |nabla - onnxruntime| = %.3g\n", c->name,
		       nb_tensor_name(c->out[o]),
		       (long long)(rows     ? rows
		                   : s.ndim ? s.d[0]
		                            : 1),
		       worst);
		ck_assert_msg(
		    worst <= c->tol,
		    "%s: output %s differs from ONNX Runtime by %g at %lld (%.9g vs %.9g), "
		    "tolerance %g",
		    c->name, nb_tensor_name(c->out[o]), worst, (long long)at, want[o][at], got[at],
		    c->tol);
		free(got);
	}
}

/* U(-1, 1), or class ids */
static void fill_input(const xcase *c, int i)
{
	if (!c->classes[i]) {
		fill(c->in[i], -1, 1);
		return;
	}
	int64_t n = nb_tensor_size(c->in[i]);
	double *v = malloc(sizeof *v * (size_t)n);
	ck_assert(v != NULL);
	for (int64_t k = 0; k < n; k++)
		v[k] = floor(uniform(0, c->classes[i]));
	ck_assert_int_eq(nb_feed_f64(c->in[i], v, n), NB_OK);
	free(v);
}

/* Running statistics as training leaves them: forward passes in training
 * mode on random batches (momentum 0.1: 40 passes leave 1.5% of the
 * start), so the normalised activations and the outputs have the scale of
 * a trained model's. */
static void calibrate(const xcase *c, nb_program *p)
{
	nb_graph *g = nb_tensor_graph(c->out[0]);
	bool bn = false;
	for (int i = 0; i < g->n_nodes; i++)
		bn |= g->nodes[i]->op == NB_OP_BATCHNORM;
	if (!bn)
		return;
	double *saved[4];
	for (int i = 0; i < c->n_in; i++) {
		int64_t n = nb_tensor_size(c->in[i]);
		saved[i] = malloc(sizeof(double) * (size_t)n);
		ck_assert_int_eq(nb_read_f64(c->in[i], saved[i], n), NB_OK);
	}
	nb_graph_set_training(g, true);
	for (int r = 0; r < 40; r++) {
		for (int i = 0; i < c->n_in; i++)
			fill_input(c, i);
		ck_assert_msg(nb_run(p) == NB_OK, "%s: %s", c->name, nb_graph_errmsg(g));
	}
	nb_graph_set_training(g, false);
	for (int i = 0; i < c->n_in; i++) {
		ck_assert_int_eq(nb_feed_f64(c->in[i], saved[i], nb_tensor_size(c->in[i])), NB_OK);
		free(saved[i]);
	}
}

static void check_case(xcase *c)
{
	nb_graph *g = nb_tensor_graph(c->out[0]);
	ck_graph_ok(g);
	nb_graph_set_training(g, false);
	double *inputs[4], *want[4];
	for (int i = 0; i < c->n_in; i++) {
		fill_input(c, i);
		int64_t n = nb_tensor_size(c->in[i]);
		inputs[i] = malloc(sizeof(double) * (size_t)n);
		ck_assert_int_eq(nb_read_f64(c->in[i], inputs[i], n), NB_OK);
	}
	nb_program *p = nb_compile(g, c->out, c->n_out);
	ck_assert_msg(p != NULL, "%s: %s", c->name, nb_graph_errmsg(g));
	calibrate(c, p);
	ck_assert_msg(nb_run(p) == NB_OK, "%s: %s", c->name, nb_graph_errmsg(g));
	for (int o = 0; o < c->n_out; o++) {
		int64_t n = nb_tensor_size(c->out[o]);
		want[o] = malloc(sizeof(double) * (size_t)n);
		ck_assert_int_eq(nb_read_f64(c->out[o], want[o], n), NB_OK);
	}
	for (int i = 0; i < g->n_nodes; i++)
		if (g->nodes[i]->role == NB_ROLE_OP)
			op_used[g->nodes[i]->op] = true;

	char model[160], cmd[768];
	snprintf(model, sizeof model, "%s/%s.onnx", tmpdir, c->name);
	nb_onnx_report rep;
	nb_onnx_opts opts = {.keep_f64 = c->keep_f64, .report = &rep};
	ck_assert_msg(nb_onnx_save(g, c->out, c->n_out, model, opts) == NB_OK, "%s: %s", c->name,
	              nb_graph_errmsg(g));
	ck_assert_msg(rep.dynamic_batch == c->dynamic, "%s: dynamic batch %d (%s), expected %d",
	              c->name, rep.dynamic_batch, rep.static_reason, c->dynamic);
	ck_assert_int_eq(rep.inputs, c->n_in);
	ck_assert_int_eq(rep.outputs, c->n_out);
	bool f64 = nb_graph_dtype(g) == NB_F64 && c->keep_f64;
	if (nb_graph_dtype(g) == NB_F64 && !c->keep_f64)
		printf(
		    "%-28s f64 weights written as f32: max |w - (float)w| = %.3g (relative %.3g)\n",
		    c->name, rep.cast_max_abs, rep.cast_max_rel);

	size_t k = (size_t)snprintf(
	    cmd, sizeof cmd, "%s '%s/tests/onnx/check_onnx.py' '%s' %s%s --inputs ", PY,
	    NB_SOURCE_ROOT, model, c->dynamic ? "--dynamic " : "", f64 ? "--elem double" : "");
	for (int i = 0; i < c->n_in; i++)
		k += (size_t)snprintf(cmd + k, sizeof cmd - k, "%s%s", i ? "," : "",
		                      nb_tensor_name(c->in[i]));
	k += (size_t)snprintf(cmd + k, sizeof cmd - k, " --outputs ");
	for (int o = 0; o < c->n_out; o++)
		k += (size_t)snprintf(cmd + k, sizeof cmd - k, "%s%s", o ? "," : "",
		                      nb_tensor_name(c->out[o]));
	ck_assert_msg(run(cmd) == 0, "%s: the ONNX checker refused the file (%s)", c->name, cmd);

	run_ort(c, model, inputs, want, 0, f64);
	int64_t batch = nb_tensor_shape(c->in[0]).d[0];
	if (c->dynamic && batch > 1)
		run_ort(c, model, inputs, want, batch - 1, f64);
	for (int i = 0; i < c->n_in; i++)
		free(inputs[i]);
	for (int o = 0; o < c->n_out; o++)
		free(want[o]);
}

/* ---- the models ----------------------------------------------------------------- */

static void zoo_case(const char *name, nb_dtype dt, bool keep_f64)
{
	nb_model *m = nb_test_zoo(name, dt, 3, 7);
	randomize_batchnorm(nb_model_graph(m));
	char label[64];
	snprintf(label, sizeof label, "%s%s%s", name, dt == NB_F64 ? "-f64" : "",
	         dt == NB_F64 && !keep_f64 ? "-as-f32" : "");
	xcase c = {.name = label,
	           .in = {nb_model_input(m)},
	           .n_in = 1,
	           .out = {nb_model_logits(m), nb_model_probs(m)},
	           .n_out = 2,
	           .dynamic = true,
	           .keep_f64 = keep_f64,
	           .tol = keep_f64 ? 1e-12 : 1e-5};
	check_case(&c);
	nb_graph_free(nb_model_graph(m));
}

START_TEST(test_mlp)
{
	zoo_case("mlp", NB_F32, false);
}
END_TEST

START_TEST(test_lenet)
{
	zoo_case("lenet", NB_F32, false);
}
END_TEST

START_TEST(test_resnet20)
{
	zoo_case("resnet20", NB_F32, false);
}
END_TEST

START_TEST(test_binary)
{
	zoo_case("mlp-binary-sigmoid", NB_F32, false);
	zoo_case("mlp-binary-softmax", NB_F32, false);
}
END_TEST

/* An f64 model: written as f32 by default (compared with the f64 forward
 * pass), or kept in f64. */
START_TEST(test_f64)
{
	zoo_case("mlp", NB_F64, false);
	zoo_case("mlp", NB_F64, true);
}
END_TEST

/* Depthwise-separable convolutions and the convolution and pooling
 * variants: stride, explicit and "same" padding (odd total: the extra row
 * at the bottom), dilation, groups, bias, padded max and average pools. */
START_TEST(test_separable)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, 3);
	nb_tensor *x = nb_input(g, "image", NB_SHAPE(3, 4, 15, 15));
	nb_conv2d_opts same2 = {.stride_h = 2, .stride_w = 2, .padding = NB_PAD_SAME};
	nb_tensor *h = nb_separable_conv2d_layer(x, 8, 3, "sep1", same2);
	h = nb_relu(nb_batchnorm_layer(h, "bn1", (nb_batchnorm_opts){0}));
	nb_conv2d_opts dil = {.pad_h = 2, .pad_w = 1, .dilation_h = 2, .dilation_w = 1};
	h = nb_separable_conv2d_layer(h, 12, 3, "sep2", dil);
	h = nb_batchnorm_layer(h, "bn2", (nb_batchnorm_opts){.relu = true});
	h = nb_maxpool2d(h, 3, 2, 1);
	nb_conv_layer_opts grp = {.conv = {.groups = 4, .padding = NB_PAD_SAME}};
	h = nb_conv2d_layer(h, 8, 2, "grouped", grp);
	h = nb_avgpool2d(h, 2, 1, 1);
	h = nb_set_name(nb_global_avgpool(h), "pool");
	h = nb_dropout(h, 0.5);
	nb_tensor *logits = nb_set_name(nb_dense(h, 5, "fc"), "logits");
	nb_tensor *probs = nb_set_name(nb_softmax(logits, -1), "probs");
	randomize_batchnorm(g);
	xcase c = {.name = "separable",
	           .in = {x},
	           .n_in = 1,
	           .out = {logits, probs},
	           .n_out = 2,
	           .dynamic = true,
	           .tol = 1e-5};
	check_case(&c);
	nb_graph_free(g);
}
END_TEST

/* The notes' small models, built as `nabla train` builds them. */
START_TEST(test_notes)
{
	/* perceptron: hardlim(x w + b) */
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(1, 2));
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(2, 1), NB_ZEROS);
	nb_tensor *b = nb_param(g, "b", NB_SHAPE(1), NB_ZEROS);
	nb_feed_f64(w, (const double[]){1, 2}, 2);
	nb_feed_f64(b, (const double[]){0.25}, 1);
	nb_tensor *y = nb_set_name(nb_hardlim_st(nb_add(nb_matmul(x, w), b)), "yhat");
	xcase c = {.name = "perceptron",
	           .in = {x},
	           .n_in = 1,
	           .out = {y},
	           .n_out = 1,
	           .dynamic = true,
	           .tol = 0};
	check_case(&c);
	nb_graph_free(g);

	/* XOR: 2-2-1 sigmoid MLP */
	g = nb_graph_new(NB_F32);
	nb_graph_seed(g, 1);
	x = nb_input(g, "x", NB_SHAPE(4, 2));
	nb_dense_opts u = {
	    .custom_init = true, .w_init = NB_UNIFORM(-1, 1), .b_init = NB_UNIFORM(-1, 1)};
	nb_tensor *h = nb_sigmoid(nb_dense_layer(x, 2, "hidden", u));
	y = nb_set_name(nb_sigmoid(nb_dense_layer(h, 1, "out", u)), "yhat");
	c = (xcase){.name = "xor",
	            .in = {x},
	            .n_in = 1,
	            .out = {y},
	            .n_out = 1,
	            .dynamic = true,
	            .tol = 1e-5};
	check_case(&c);
	nb_graph_free(g);

	/* the backprop example: 2-2-1 sigmoid net without biases */
	g = nb_graph_new(NB_F32);
	x = nb_input(g, "x", NB_SHAPE(1, 2));
	nb_tensor *wh = nb_param(g, "w_hidden", NB_SHAPE(2, 2), NB_ZEROS);
	nb_tensor *wo = nb_param(g, "w_out", NB_SHAPE(2, 1), NB_ZEROS);
	nb_feed_f64(wh, (const double[]){0.1, 0.3, 0.4, 0.2}, 4);
	nb_feed_f64(wo, (const double[]){0.2, 0.4}, 2);
	nb_tensor *y34 = nb_set_name(nb_sigmoid(nb_matmul(x, wh)), "y3_y4");
	y = nb_set_name(nb_sigmoid(nb_matmul(y34, wo)), "y5");
	c = (xcase){.name = "backprop-example",
	            .in = {x},
	            .n_in = 1,
	            .out = {y, y34},
	            .n_out = 2,
	            .dynamic = true,
	            .tol = 1e-5};
	check_case(&c);
	nb_graph_free(g);
}
END_TEST

/* The activations and elementwise ops, the shape ops and the reductions
 * that keep the batch, with two inputs and three outputs. */
START_TEST(test_ops)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, 5);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(4, 6)), *z = nb_input(g, "z", NB_SHAPE(4, 6));
	nb_tensor *acts[] = {
	    nb_hardlim(x),
	    nb_hardlims(x),
	    nb_purelin(x),
	    nb_satlin(nb_mul_scalar(x, 2)),
	    nb_satlins(nb_mul_scalar(x, 2)),
	    nb_logsig(x, 2.5),
	    nb_tanh_ab(x, 1.7, 0.6),
	    nb_tanh(x),
	    nb_relu(x),
	    nb_clamp(x, -0.3, 0.4),
	    nb_abs(x),
	    nb__sign(x),
	    nb_exp(x),
	    nb_log(nb_add_scalar(nb_abs(x), 0.5)),
	    nb_sqrt(nb_add_scalar(nb_square(x), 0.1)),
	    nb_pow(nb_add_scalar(nb_abs(x), 1), 1.5),
	    nb_neg(x),
	    nb_rsub_scalar(x, 0.75),
	    nb_stop_gradient(x),
	    nb_sub(x, z),
	    nb_div(x, nb_add_scalar(nb_abs(z), 1)),
	    nb__mask_range(z, x, -0.5, 0.5),
	    nb_hardlims_st(x),
	};
	int na = (int)(sizeof acts / sizeof acts[0]);
	nb_tensor *cat = nb_concat(acts, na, 1); /* [4, 6 na] */
	nb_tensor *r = nb_reshape(cat, NB_SHAPE(4, na, 6));
	r = nb_transpose(r, 1, 2); /* [4, 6, na] */
	nb_tensor *wt = nb_param(g, "wt", NB_SHAPE(5, na), NB_UNIFORM(-0.2, 0.2));
	nb_tensor *mm = nb_matmul_t(r, wt, false, true); /* [4, 6, 5] */
	nb_tensor *wa = nb_param(g, "wa", NB_SHAPE(6, 6), NB_UNIFORM(-0.5, 0.5));
	nb_tensor *mt = nb_matmul_t(r, wa, true, false); /* [4, na, 6] */
	nb_tensor *row = nb_constant(g, "row", NB_SHAPE(1, 5), (const double[]){1, -2, 3, 0.5, 0});
	mm = nb_mul(nb_add(mm, row), nb__broadcast_to(nb_slice(mm, 2, 1, 2), NB_SHAPE(4, 6, 5)));
	nb_tensor *s = nb_sum_axes(mm, (const int[]){1}, 1, true);      /* [4, 1, 5] */
	nb_tensor *mean = nb_mean_axes(mt, (const int[]){2}, 1, false); /* [4, na] */
	nb_tensor *mx = nb_max_axis(mm, 1, false);                      /* [4, 5] */
	nb_tensor *st = nb__sum_to(nb_add(mm, s), NB_SHAPE(4, 1, 5));   /* [4, 1, 5] */
	nb_tensor *flat = nb_flatten(nb_add(s, st));
	nb_tensor *emb = nb__op1(NB_OP_EMBED, mx, &(nb_attrs){.i = {1, 2, 7, 9}}); /* [4, 9] */
	nb_tensor *bn = nb_batchnorm_layer(nb_concat((nb_tensor *[]){flat, emb}, 2, 1), "bn",
	                                   (nb_batchnorm_opts){0});
	nb_tensor *o1 = nb_set_name(nb_log_softmax(bn, 1), "log_probs");
	nb_tensor *o2 = nb_set_name(nb_softmax(nb_mul_scalar(mean, 3), -1), "mean_probs");
	nb_tensor *o3 = nb_set_name(nb_slice(cat, 1, 3, 20), "cut");
	randomize_batchnorm(g);
	xcase c = {.name = "ops",
	           .in = {x, z},
	           .n_in = 2,
	           .out = {o1, o2, o3},
	           .n_out = 3,
	           .dynamic = true,
	           .tol = 1e-5};
	check_case(&c);
	nb_graph_free(g);
}
END_TEST

/* Ops over the batch dimension fix the batch: the export falls back to the
 * shapes as built, and still runs. */
START_TEST(test_static_batch)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(3, 4));
	nb_tensor *total = nb_set_name(nb_sum(nb_square(x)), "total");
	nb_tensor *avg = nb_set_name(nb_mean(x), "avg");
	nb_tensor *big = nb_set_name(nb_max(x), "biggest");
	nb_tensor *col = nb_set_name(nb_softmax(x, 0), "over_batch");
	nb_tensor *tr = nb_set_name(nb_transpose(x, 0, 1), "xt");
	xcase c = {.name = "static",
	           .in = {x},
	           .n_in = 1,
	           .out = {total, avg, big, col},
	           .n_out = 4,
	           .dynamic = false,
	           .tol = 1e-5};
	check_case(&c);
	c.out[0] = tr;
	c.n_out = 1;
	c.name = "static-transpose";
	check_case(&c);
	nb_graph_free(g);
}
END_TEST

/* The losses and one_hot, per sample (the batch stays dynamic) and
 * reduced (a scalar fixes the batch). */
static void loss_case(const char *name, nb_reduction red, bool dynamic)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, 9);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(5, 4)), *q = nb_input(g, "target", NB_SHAPE(5, 4));
	nb_tensor *ids = nb_input(g, "ids", NB_SHAPE(5));
	nb_tensor *z = nb_dense(x, 4, "fc"), *qs = nb_satlin(q);
	nb_tensor *outs[] = {
	    nb_set_name(nb_mse(z, q, red), "mse"),
	    nb_set_name(nb_bce(nb_sigmoid(z), qs, red), "bce"),
	    nb_set_name(nb_bce_logits(nb_mul_scalar(z, 8), qs, red), "bce_logits"),
	    nb_set_name(nb_cce(z, nb_softmax(q, -1), red), "cce"),
	};
	nb_tensor *sparse = nb_set_name(nb_sparse_cce(z, ids, red), "sparse_cce");
	nb_tensor *oh = nb_set_name(nb_one_hot(ids, 4), "one_hot");
	xcase c = {.name = name,
	           .in = {x, q},
	           .n_in = 2,
	           .out = {outs[0], outs[1], outs[2], outs[3]},
	           .n_out = 4,
	           .dynamic = dynamic,
	           .tol = 1e-5};
	check_case(&c);
	char n2[64];
	snprintf(n2, sizeof n2, "%s-ids", name);
	c = (xcase){.name = n2,
	            .in = {x, ids},
	            .n_in = 2,
	            .classes = {0, 4},
	            .out = {sparse, oh},
	            .n_out = 2,
	            .dynamic = dynamic,
	            .tol = 1e-5};
	check_case(&c);
	nb_graph_free(g);
}

START_TEST(test_losses)
{
	loss_case("losses-none", NB_NONE, true);
	loss_case("losses-mean", NB_MEAN, false);
	loss_case("losses-sum", NB_SUM, false);
}
END_TEST

/* Every op with an ONNX mapping was exported and compared above. */
START_TEST(test_coverage)
{
	static const int mapped[] = {
	    NB_OP_ADD,          NB_OP_SUB,         NB_OP_MUL,
	    NB_OP_DIV,          NB_OP_NEG,         NB_OP_ADD_SCALAR,
	    NB_OP_MUL_SCALAR,   NB_OP_RSUB_SCALAR, NB_OP_EXP,
	    NB_OP_LOG,          NB_OP_SQRT,        NB_OP_SQUARE,
	    NB_OP_POW,          NB_OP_ABS,         NB_OP_SIGN,
	    NB_OP_CLAMP,        NB_OP_MASK_RANGE,  NB_OP_STOP_GRADIENT,
	    NB_OP_MATMUL,       NB_OP_TRANSPOSE,   NB_OP_RESHAPE,
	    NB_OP_CONCAT,       NB_OP_SLICE,       NB_OP_EMBED,
	    NB_OP_BROADCAST_TO, NB_OP_SUM_TO,      NB_OP_SUM,
	    NB_OP_MEAN,         NB_OP_MAX,         NB_OP_HARDLIM,
	    NB_OP_HARDLIMS,     NB_OP_PURELIN,     NB_OP_SATLIN,
	    NB_OP_SATLINS,      NB_OP_LOGSIG,      NB_OP_TANH,
	    NB_OP_RELU,         NB_OP_SOFTMAX,     NB_OP_LOG_SOFTMAX,
	    NB_OP_BATCHNORM,    NB_OP_DROPOUT,     NB_OP_CONV2D,
	    NB_OP_MAXPOOL2D,    NB_OP_AVGPOOL2D,   NB_OP_GLOBAL_AVGPOOL,
	};
	for (size_t i = 0; i < sizeof mapped / sizeof *mapped; i++)
		ck_assert_msg(op_used[mapped[i]], "op %s was not run in ONNX Runtime",
		              nb_op_name(mapped[i]));
}
END_TEST

static bool have_tools(void)
{
	if (run(PY " -c 'import onnx' >/dev/null 2>&1") != 0) {
		printf("SKIP: python3-onnx is not installed (apt-get install python3-onnx)\n");
		return false;
	}
	char cmd[512];
	snprintf(
	    cmd, sizeof cmd,
	    "node -e \"require('%s/tests/onnx/node_modules/onnxruntime-node')\" >/dev/null 2>&1",
	    NB_SOURCE_ROOT);
	if (run(cmd) != 0) {
		printf("SKIP: node or onnxruntime-node is missing (./run.sh test installs them: "
		       "npm install --ignore-scripts in tests/onnx)\n");
		return false;
	}
	return true;
}

int main(void)
{
	if (!have_tools())
		return 77;
	Suite *s = suite_create("onnx_runtime");
	TCase *tc = tcase_create("onnx_runtime");
	tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_mlp);
	tcase_add_test(tc, test_lenet);
	tcase_add_test(tc, test_resnet20);
	tcase_add_test(tc, test_binary);
	tcase_add_test(tc, test_f64);
	tcase_add_test(tc, test_separable);
	tcase_add_test(tc, test_notes);
	tcase_add_test(tc, test_ops);
	tcase_add_test(tc, test_static_batch);
	tcase_add_test(tc, test_losses);
	tcase_add_test(tc, test_coverage);
	suite_add_tcase(s, tc);
	/* the coverage test reads what the others recorded: one process */
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
