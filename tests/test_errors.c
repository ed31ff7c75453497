/*
 * The error model: bad input never crashes, gives the right nb_status and a
 * message naming the op, the tensors and their shapes; errors are sticky
 * (later constructors return the placeholder, the first message is kept)
 * until nb_graph_clear_error.  Each case runs in its own forked test.
 */
#include "test_util.h"

#include "ops/kernel.h" /* nb__broadcast_to */

#include <limits.h>
#include <math.h>
#include <string.h>

#define IS_PLACEHOLDER(t)                                                                          \
	ck_assert_msg((t) != NULL && !strcmp(nb_tensor_name(t), "<error>"),                        \
	              "expected the error placeholder, got %s", nb_tensor_name(t))

/* g has failed with st and a message holding every string of subs; then
 * the error is sticky, and clearing it makes the graph usable again. */
static void expect_fail_(nb_graph *g, nb_status st, const char *const *subs, int line)
{
	const char *msg = nb_graph_errmsg(g);
	ck_assert_msg(nb_graph_status(g) == st, "line %d: status '%s', expected '%s' (message: %s)",
	              line, nb_status_string(nb_graph_status(g)), nb_status_string(st), msg);
	for (; *subs; subs++)
		ck_assert_msg(strstr(msg, *subs) != NULL, "line %d: message \"%s\" lacks \"%s\"",
		              line, msg, *subs);
	char first[1024];
	snprintf(first, sizeof first, "%s", msg);
	int nodes = nb_graph_num_nodes(g);

	/* later constructors, good and bad, return the placeholder and leave
	 * the first message alone */
	nb_tensor *later = nb_input(g, "later", NB_SHAPE(2, 2));
	IS_PLACEHOLDER(later);
	IS_PLACEHOLDER(nb_matmul(later, later));
	IS_PLACEHOLDER(nb_add(later, nb_param(g, "p", NB_SHAPE(3), NB_ONES)));
	IS_PLACEHOLDER(nb_reshape(later, NB_SHAPE(5)));
	IS_PLACEHOLDER(nb_grad(nb_sum(later), later));
	ck_assert_ptr_null(nb_compile(g, &later, 1));
	ck_assert_int_eq(nb_eval(later), st);
	ck_assert_int_eq(nb_graph_num_nodes(g), nodes);
	ck_assert_int_eq(nb_graph_status(g), st);
	ck_assert_str_eq(nb_graph_errmsg(g), first);

	nb_graph_clear_error(g);
	ck_assert_int_eq(nb_graph_status(g), NB_OK);
	ck_assert_str_eq(nb_graph_errmsg(g), "");
	nb_tensor *t = nb_input(g, "after", NB_SHAPE(2));
	ck_assert_str_eq(nb_tensor_name(t), "after");
	ck_assert_int_eq(nb_graph_num_nodes(g), nodes + 1);
	ck_assert_int_eq(nb_graph_status(g), NB_OK);
}

#define EXPECT_FAIL(g, st, ...)                                                                    \
	expect_fail_((g), (st), (const char *const[]){__VA_ARGS__, NULL}, __LINE__)

/* ---- shapes of op inputs ----------------------------------------------------- */

START_TEST(test_matmul_inner)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(64, 784));
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(785, 256), NB_ZEROS);
	IS_PLACEHOLDER(nb_matmul(x, w));
	ck_assert_str_eq(nb_graph_errmsg(g),
	                 "matmul(x, w): inner dimensions differ: [64,784] x [785,256]");
	EXPECT_FAIL(g, NB_ERR_SHAPE, "matmul(x, w)");
	/* with a transpose flag the message says which side is transposed */
	IS_PLACEHOLDER(nb_matmul_t(x, w, false, true));
	EXPECT_FAIL(g, NB_ERR_SHAPE,
	            "matmul(x, w): inner dimensions differ: [64,784] x [785,256]^T");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_matmul_rank_and_batch)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *v = nb_input(g, "v", NB_SHAPE(3));
	nb_tensor *w = nb_input(g, "w", NB_SHAPE(3, 2));
	IS_PLACEHOLDER(nb_matmul(v, w));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "matmul(v, w): needs matrices (2-D or more), got [3] x [3,2]");
	nb_tensor *a = nb_input(g, "a", NB_SHAPE(2, 3, 4));
	nb_tensor *b = nb_input(g, "b", NB_SHAPE(5, 4, 2));
	IS_PLACEHOLDER(nb_matmul(a, b));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "matmul(a, b): batch dimensions differ: [2,3,4] x [5,4,2]");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_broadcast_mismatch)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *a = nb_input(g, "a", NB_SHAPE(2, 3));
	nb_tensor *b = nb_input(g, "b", NB_SHAPE(4));
	IS_PLACEHOLDER(nb_add(a, b));
	ck_assert_str_eq(nb_graph_errmsg(g), "add(a, b): shapes [2,3] and [4] do not broadcast");
	EXPECT_FAIL(g, NB_ERR_SHAPE, "add(a, b)", "[2,3]", "[4]");
	IS_PLACEHOLDER(nb_div(b, a));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "div(b, a): shapes [4] and [2,3] do not broadcast");
	nb_graph_free(g);
}
END_TEST

/* ---- feeding and reading -------------------------------------------------------- */

START_TEST(test_feed_wrong_count)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 3));
	float v[5] = {0};
	ck_assert_int_eq(nb_feed_f32(x, v, 5), NB_ERR_SHAPE);
	ck_assert_str_eq(nb_graph_errmsg(g), "feed(x): got 5 values, tensor [2,3] holds 6");
	EXPECT_FAIL(g, NB_ERR_SHAPE, "feed(x)");
	ck_assert_int_eq(nb_feed_f64(x, (double[]){1, 2, 3, 4, 5, 6, 7}, 7), NB_ERR_SHAPE);
	EXPECT_FAIL(g, NB_ERR_SHAPE, "feed(x): got 7 values");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_feed_computed)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(3));
	nb_tensor *e = nb_set_name(nb_exp(x), "e");
	ck_assert_int_eq(nb_feed_f64(e, (double[]){1, 2, 3}, 3), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "feed(e)", "only inputs, parameters and constants can be fed",
	            "not the result of exp");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_read_not_computed)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(3));
	nb_tensor *e = nb_set_name(nb_exp(x), "e");
	double out[3];
	ck_assert_int_eq(nb_read_f64(e, out, 3), NB_ERR_GRAPH);
	EXPECT_FAIL(g, NB_ERR_GRAPH, "read(e): no value: it is not a target");
	ck_assert(isnan(nb_item(nb_sum(e))));
	EXPECT_FAIL(g, NB_ERR_GRAPH, "item(sum_", "no value: it is not a target");
	/* once run, it reads */
	ck_assert_int_eq(nb_feed_f64(x, (const double[]){0, 0, 0}, 3), NB_OK);
	ck_assert_int_eq(nb_eval(e), NB_OK);
	ck_assert_int_eq(nb_read_f64(e, out, 3), NB_OK);
	ck_assert_double_eq(out[0], 1.0);
	nb_graph_free(g);
}
END_TEST

/* Running a program that reads an input never fed is an error naming the
 * input, in nb_run, nb_eval and nb_step; inputs the program does not read
 * need no values, and an input fed once stays fed. */
START_TEST(test_run_unfed_input)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2));
	nb_tensor *labels = nb_input(g, "labels", NB_SHAPE(2));
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(2), NB_ONES);
	nb_tensor *y = nb_set_name(nb_mul(x, w), "y");
	nb_tensor *loss = nb_sum(nb_square(nb_sub(y, labels)));
	nb_program *p = nb_compile(g, &y, 1);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_run(p), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "run: input 'x' was never fed", "nb_feed_f32");
	ck_assert_int_eq(nb_eval(y), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "input 'x' was never fed");
	/* y does not read labels: feeding x is enough, and stays enough */
	ck_assert_int_eq(nb_feed_f64(x, (const double[]){2, 3}, 2), NB_OK);
	ck_assert_int_eq(nb_run(p), NB_OK);
	ck_assert_int_eq(nb_run(p), NB_OK);
	ck_assert_int_eq(nb_eval(y), NB_OK);
	double out[2];
	ck_assert_int_eq(nb_read_f64(y, out, 2), NB_OK);
	ck_assert(out[0] == 2 && out[1] == 3);
	/* the loss reads labels */
	ck_assert_int_eq(nb_eval(loss), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "input 'labels' was never fed");
	nb_optim *o = nb_sgd(g, loss, (nb_sgd_opts){.lr = 0.1});
	ck_graph_ok(g);
	ck_assert_int_eq(nb_step(o), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "input 'labels' was never fed");
	double wv[2];
	ck_assert_int_eq(nb_read_f64(w, wv, 2), NB_OK);
	ck_assert(wv[0] == 1 && wv[1] == 1); /* no update happened */
	ck_assert_int_eq(nb_optim_steps(o), 0);
	/* values given through nb_init_tensor or nb_data count as fed */
	ck_assert_int_eq(nb_init_tensor(labels, NB_ZEROS), NB_OK);
	ck_assert_int_eq(nb_step(o), NB_OK);
	nb_tensor *z = nb_input(g, "z", NB_SHAPE(1));
	nb_tensor *z2 = nb_mul_scalar(z, 2);
	ck_assert_int_eq(nb_eval(z2), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "input 'z' was never fed");
	*(double *)nb_data(z) = 4;
	ck_assert_int_eq(nb_eval(z2), NB_OK);
	ck_assert_double_eq(nb_item(z2), 8);
	nb_graph_free(g);
}
END_TEST

/* A name shown in the message is made safe for a terminal. */
START_TEST(test_run_unfed_input_name_escaped)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "bad\x1b[2Jname", NB_SHAPE(1));
	ck_assert_int_eq(nb_eval(nb_neg(x)), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "input 'bad?[2Jname' was never fed");
	ck_assert_ptr_null(strchr(nb_graph_errmsg(g), '\x1b'));
	nb_graph_free(g);
}
END_TEST

/* nb_predict computes the probabilities alone: a classifier's labels and
 * weights need not be fed */
START_TEST(test_predict_needs_no_labels)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, 1);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(4, 3));
	nb_model *m = nb_classifier(x, nb_dense(x, 2, "fc"), NB_LOSS_SPARSE_CCE);
	ck_assert_ptr_nonnull(m);
	const float xs[6] = {1, 2, 3, -1, 0, 1};
	int32_t ids[2];
	float probs[4];
	ck_assert_int_eq(nb_predict(m, xs, 2, ids, probs), NB_OK);
	ck_assert_float_eq_tol(probs[0] + probs[1], 1, 1e-6);
	nb_graph_free(g);
}
END_TEST

/* Parameter names are unique: the second one is refused when made, by
 * nb_param, by a layer builder and by nb_set_name. */
START_TEST(test_duplicate_param_name)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 3));
	nb_param(g, "w", NB_SHAPE(3), NB_ONES);
	ck_graph_ok(g);
	IS_PLACEHOLDER(nb_param(g, "w", NB_SHAPE(4), NB_ONES));
	EXPECT_FAIL(g, NB_ERR_ARG, "param(w): the graph already has a parameter named 'w'");
	/* an input or a computed tensor may share a parameter's name */
	nb_input(g, "w", NB_SHAPE(1));
	ck_graph_ok(g);
	nb_dense(x, 4, "fc1");
	ck_graph_ok(g);
	IS_PLACEHOLDER(nb_dense(x, 5, "fc1"));
	EXPECT_FAIL(g, NB_ERR_ARG, "parameter named 'fc1.w'");
	nb_tensor *v = nb_param(g, "v", NB_SHAPE(3), NB_ONES);
	ck_assert_ptr_eq(nb_set_name(v, "w"), v);
	EXPECT_FAIL(g, NB_ERR_ARG, "set_name(w): the graph already has a parameter named 'w'");
	ck_assert_str_eq(nb_tensor_name(v), "v");
	ck_assert_ptr_eq(nb_set_name(v, "v"), v); /* its own name again is fine */
	ck_graph_ok(g);
	nb_graph_free(g);
}
END_TEST

START_TEST(test_read_into_null)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(3));
	ck_assert_int_eq(nb_read_f32(x, NULL, 3), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "read(x): data pointer is NULL");
	ck_assert_int_eq(nb_feed_f64(x, NULL, 3), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "feed(x): data pointer is NULL");
	/* NULL tensors: nothing to record on, but no crash */
	float v[3];
	ck_assert_int_eq(nb_read_f32(NULL, v, 3), NB_ERR_ARG);
	ck_assert_int_eq(nb_feed_f32(NULL, v, 3), NB_ERR_ARG);
	ck_assert(isnan(nb_item(NULL)));
	ck_assert_int_eq(nb_graph_status(g), NB_OK);
	nb_graph_free(g);
}
END_TEST

START_TEST(test_item_not_scalar)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_constant(g, "x", NB_SHAPE(3), (double[]){1, 2, 3});
	ck_assert(isnan(nb_item(x)));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "item(x): needs a one-element tensor, not [3] (3 elements)");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_placeholder_use)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(3));
	nb_tensor *bad = nb_matmul(x, x);
	IS_PLACEHOLDER(bad);
	nb_graph_clear_error(g);
	/* the placeholder is inert: feeding, compiling it fail cleanly */
	ck_assert_int_eq(nb_feed_f64(bad, (double[]){1}, 1), NB_ERR_GRAPH);
	EXPECT_FAIL(g, NB_ERR_GRAPH, "feed: tensor is the error placeholder");
	ck_assert_ptr_null(nb_compile(g, &bad, 1));
	EXPECT_FAIL(g, NB_ERR_GRAPH, "compile: target 0 is the error placeholder");
	ck_assert_int_eq(nb_init_tensor(bad, NB_ONES), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "init(<error>): only leaves can be initialised");
	nb_graph_free(g);
}
END_TEST

/* ---- NULLs and graphs ------------------------------------------------------------- */

START_TEST(test_null_inputs)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 2));
	/* all inputs NULL: no graph to record on; NULL back, no crash */
	ck_assert_ptr_null(nb_add(NULL, NULL));
	ck_assert_ptr_null(nb_exp(NULL));
	ck_assert_ptr_null(nb_sum(NULL));
	ck_assert_ptr_null(nb_reshape(NULL, NB_SHAPE(4)));
	ck_assert_ptr_null(nb_transpose(NULL, 0, 1));
	ck_assert_ptr_null(nb_grad(NULL, x));
	ck_assert_int_eq(nb_graph_status(g), NB_OK);
	/* one NULL: recorded on the other input's graph */
	IS_PLACEHOLDER(nb_add(x, NULL));
	EXPECT_FAIL(g, NB_ERR_ARG, "add(x, NULL): input 1 is NULL");
	IS_PLACEHOLDER(nb_matmul(NULL, x));
	EXPECT_FAIL(g, NB_ERR_ARG, "matmul(NULL, x): input 0 is NULL");
	nb_tensor *ts[3] = {x, NULL, x};
	IS_PLACEHOLDER(nb_concat(ts, 3, 0));
	EXPECT_FAIL(g, NB_ERR_ARG, "concat(x, NULL, x): input 1 is NULL");
	IS_PLACEHOLDER(nb_grad(nb_sum(x), NULL));
	EXPECT_FAIL(g, NB_ERR_ARG, "grad(sum_", "wrt[0] is NULL");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_null_graph)
{
	ck_assert_ptr_null(nb_input(NULL, "x", NB_SHAPE(2)));
	ck_assert_ptr_null(nb_param(NULL, "w", NB_SHAPE(2), NB_ONES));
	ck_assert_ptr_null(nb_constant(NULL, "c", NB_SHAPE(2), NULL));
	ck_assert_ptr_null(nb_scalar(NULL, 1.0));
	ck_assert_int_eq(nb_graph_status(NULL), NB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(NULL), "graph is NULL"));
	nb_graph_clear_error(NULL);
	nb_graph_seed(NULL, 1);
	ck_assert_int_eq(nb_graph_num_nodes(NULL), 0);
	ck_assert_int_eq(nb_graph_num_params(NULL), 0);
	ck_assert_ptr_null(nb_graph_find(NULL, "x"));
	ck_assert_ptr_null(nb_compile(NULL, NULL, 0));
	ck_assert_ptr_null(nb_sgd(NULL, NULL, (nb_sgd_opts){0}));
	ck_assert_int_eq(nb_run(NULL), NB_ERR_ARG);
	ck_assert_int_eq(nb_eval(NULL), NB_ERR_ARG);
	ck_assert_int_eq(nb_step(NULL), NB_ERR_ARG);
	nb_graph_free(NULL);
}
END_TEST

START_TEST(test_other_graph)
{
	nb_graph *g1 = nb_graph_new(NB_F32), *g2 = nb_graph_new(NB_F32);
	nb_tensor *a = nb_input(g1, "a", NB_SHAPE(2));
	nb_tensor *b = nb_input(g2, "b", NB_SHAPE(2));
	IS_PLACEHOLDER(nb_add(a, b));
	/* recorded on both graphs, so checking either one finds it */
	EXPECT_FAIL(g1, NB_ERR_GRAPH,
	            "add(a, b): input 1 (b) belongs to another graph than input 0 (a)");
	EXPECT_FAIL(g2, NB_ERR_GRAPH,
	            "add(a, b): input 1 (b) was mixed with a tensor of another graph");
	nb_tensor *L = nb_sum(a);
	nb_program *p = nb_compile(g2, &L, 1);
	ck_assert_ptr_null(p);
	EXPECT_FAIL(g2, NB_ERR_GRAPH, "compile: target 0 (sum_", "belongs to another graph");
	nb_graph_free(g1);
	nb_graph_free(g2);
}
END_TEST

START_TEST(test_unknown_dtype)
{
	nb_graph *g = nb_graph_new((nb_dtype)7);
	ck_assert_ptr_nonnull(g);
	IS_PLACEHOLDER(nb_input(g, "x", NB_SHAPE(2)));
	EXPECT_FAIL(g, NB_ERR_DTYPE, "nb_graph_new: unknown dtype 7 (use NB_F32 or NB_F64)");
	ck_assert_int_eq(nb_graph_dtype(g), NB_F32); /* cleared: an f32 graph */
	nb_graph_free(g);
}
END_TEST

/* ---- leaf shapes and initialisers ------------------------------------------------ */

START_TEST(test_bad_dimensions)
{
	nb_graph *g = nb_graph_new(NB_F32);
	IS_PLACEHOLDER(nb_input(g, "x", NB_SHAPE(3, 0)));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "input(x): dimension 1 of [3,0] is not positive");
	IS_PLACEHOLDER(nb_param(g, "w", NB_SHAPE(-2, 2), NB_ONES));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "param(w): dimension 0 of [-2,2] is not positive");
	IS_PLACEHOLDER(nb_constant(g, "c", NB_SHAPE(1, 2, 0), NULL));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "constant(c): dimension 2 of [1,2,0] is not positive");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_too_many_dimensions)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_shape s7 = {.ndim = 7};
	IS_PLACEHOLDER(nb_input(g, "x", s7));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "input(x): 7 dimensions (at most 6 are supported)");
	IS_PLACEHOLDER(nb_param(g, "w", (nb_shape){.ndim = -1}, NB_ONES));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "param(w): -1 dimensions");
	/* counts that would overflow */
	IS_PLACEHOLDER(nb_input(g, "huge", NB_SHAPE(1 << 30, 1 << 30, 1 << 30)));
	EXPECT_FAIL(g, NB_ERR_SHAPE,
	            "input(huge): [1073741824,1073741824,1073741824] has more than 2^60 elements");
	ck_assert_int_eq(nb_shape_size(NB_SHAPE(1 << 30, 1 << 30, 1 << 30)), -1);
	ck_assert_int_eq(nb_shape_size(s7), -1);
	char buf[32];
	ck_assert_str_eq(nb_shape_str(s7, buf, sizeof buf), "[7 dims?]");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_bad_init)
{
	nb_graph *g = nb_graph_new(NB_F64);
	IS_PLACEHOLDER(nb_param(g, "w", NB_SHAPE(2), (nb_init){.kind = (nb_init_kind)42}));
	EXPECT_FAIL(g, NB_ERR_ARG, "init(w): unknown initialiser kind 42");
	IS_PLACEHOLDER(nb_param(g, "u", NB_SHAPE(2), NB_UNIFORM(1, -1)));
	EXPECT_FAIL(g, NB_ERR_ARG, "init(u): uniform bounds reversed (1 > -1)");
	IS_PLACEHOLDER(nb_param(g, "n", NB_SHAPE(2), NB_NORMAL(0, -0.5)));
	EXPECT_FAIL(g, NB_ERR_ARG, "init(n): normal standard deviation -0.5 is negative");
	IS_PLACEHOLDER(nb_param(g, "nan", NB_SHAPE(2), NB_UNIFORM(NAN, 1)));
	EXPECT_FAIL(g, NB_ERR_ARG, "init(nan): parameters must be finite", "a nan");
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2));
	nb_tensor *e = nb_set_name(nb_exp(x), "e");
	ck_assert_int_eq(nb_init_tensor(e, NB_ONES), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "init(e): only leaves can be initialised");
	nb_graph_free(g);
}
END_TEST

/* ---- shape ops ----------------------------------------------------------------- */

START_TEST(test_reshape_bad)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 3));
	IS_PLACEHOLDER(nb_reshape(x, NB_SHAPE(4)));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "reshape(x): cannot reshape [2,3] (6 elements) to [4]");
	IS_PLACEHOLDER(nb_reshape(x, NB_SHAPE(4, -1)));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "reshape(x): 6 elements do not fill [4,-1]");
	IS_PLACEHOLDER(nb_reshape(x, NB_SHAPE(-1, -1)));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "reshape(x): bad target [-1,-1]");
	IS_PLACEHOLDER(nb_reshape(x, NB_SHAPE(1LL << 40, 1LL << 40, -1)));
	EXPECT_FAIL(g, NB_ERR_SHAPE,
	            "reshape(x): cannot reshape [2,3] (6 elements) to [1099511627776,");
	nb_tensor *s = nb_scalar(g, 2.0);
	IS_PLACEHOLDER(nb_flatten(s));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "flatten(2): needs at least one dimension");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_transpose_bad_axes)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 3));
	IS_PLACEHOLDER(nb_transpose(x, 0, 2));
	EXPECT_FAIL(g, NB_ERR_ARG, "transpose(x): axes 0, 2 out of range for shape [2,3]");
	IS_PLACEHOLDER(nb_transpose(x, -3, 1));
	EXPECT_FAIL(g, NB_ERR_ARG, "transpose(x): axes -3, 1 out of range for shape [2,3]");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_concat_bad)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *a = nb_input(g, "a", NB_SHAPE(2, 3));
	nb_tensor *b = nb_input(g, "b", NB_SHAPE(3, 3));
	nb_tensor *c = nb_input(g, "c", NB_SHAPE(2, 3, 1));
	IS_PLACEHOLDER(nb_concat((nb_tensor *[]){a, a}, 2, 2));
	EXPECT_FAIL(g, NB_ERR_ARG, "concat(a, ...): axis 2 out of range for shape [2,3]");
	IS_PLACEHOLDER(nb_concat((nb_tensor *[]){a, b}, 2, 1));
	EXPECT_FAIL(
	    g, NB_ERR_SHAPE,
	    "concat(a, b): input 1 has shape [3,3], which does not match [2,3] outside axis 1");
	IS_PLACEHOLDER(nb_concat((nb_tensor *[]){a, c}, 2, 0));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "concat(a, c): input 1 has shape [2,3,1]");
	/* nothing to concatenate: no graph to record on */
	ck_assert_ptr_null(nb_concat(NULL, 2, 0));
	ck_assert_ptr_null(nb_concat((nb_tensor *[]){a}, 0, 0));
	ck_graph_ok(g);
	nb_graph_free(g);
}
END_TEST

/* A tensor of 2^60 elements that is never allocated: a broadcast sum of
 * three inputs of 2^20 elements each, reshaped to [rows, 2^60 / rows]. */
static nb_tensor *huge(nb_graph *g, int64_t rows)
{
	const int64_t m = (int64_t)1 << 20;
	nb_tensor *a = nb_input(g, "a", NB_SHAPE(m, 1, 1));
	nb_tensor *b = nb_input(g, "b", NB_SHAPE(1, m, 1));
	nb_tensor *c = nb_input(g, "c", NB_SHAPE(1, 1, m));
	return nb_reshape(nb_add(nb_add(a, b), c), NB_SHAPE(rows, -1));
}

/* Shape rules add and multiply lengths of up to 2^60: each sum or product
 * that could leave int64 is checked before it is formed. */
START_TEST(test_shape_overflow)
{
	nb_graph *g = nb_graph_new(NB_F32);
	/* concat: eight inputs of 2^60 along the axis would sum to 2^63 */
	nb_tensor *h = huge(g, 1);
	ck_graph_ok(g);
	nb_tensor *ts[8] = {h, h, h, h, h, h, h, h};
	IS_PLACEHOLDER(nb_concat(ts, 8, 1));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "concat(", "lengths along axis 1 add up to more than 2^60");
	nb_graph_free(g);

	/* conv2d: a kernel of 2^33 rows at dilation 2^31 - 1 spans about 2^64 */
	g = nb_graph_new(NB_F32);
	nb_tensor *a = nb_input(g, "a", NB_SHAPE((int64_t)1 << 17, 1));
	nb_tensor *b = nb_input(g, "b", NB_SHAPE(1, (int64_t)1 << 16));
	nb_tensor *w = nb_reshape(nb_add(a, b), NB_SHAPE(1, 1, (int64_t)1 << 33, 1));
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(1, 1, 4, 1));
	ck_graph_ok(g);
	for (int pad = 0; pad < 3; pad++) {
		nb_conv2d_opts o = {.dilation_h = INT_MAX, .padding = (nb_padding)pad};
		IS_PLACEHOLDER(nb_conv2d(x, w, NULL, o));
		EXPECT_FAIL(g, NB_ERR_SHAPE, "conv2d(x, ",
		            "kernel size 8589934592 with dilation 2147483647 spans more than 2^60");
	}
	nb_graph_free(g);

	/* a conv layer's init range from C kH kW = 2^40 * 2^12 * 2^12 = 2^64:
	 * the weight's size error, not an overflow on the way there */
	g = nb_graph_new(NB_F32);
	x = nb_reshape(huge(g, 1), NB_SHAPE(1, (int64_t)1 << 40, 1 << 10, 1 << 10));
	ck_graph_ok(g);
	IS_PLACEHOLDER(nb_conv2d_layer(x, 1, 1 << 12, "big", (nb_conv_layer_opts){0}));
	EXPECT_FAIL(g, NB_ERR_SHAPE,
	            "param(big.w): [1,1099511627776,4096,4096] has more than 2^60");
	nb_graph_free(g);
}
END_TEST

/* Two live results of 2^60 f64 elements (legal shapes, broadcast from
 * scalars) need an arena of exactly 2^64 bytes: the compile fails out of
 * memory, where the size wrapped to 0 and the run wrote through a NULL
 * arena. */
START_TEST(test_arena_overflow)
{
	nb_graph *g = nb_graph_new(NB_F64);
	const nb_shape big = NB_SHAPE((int64_t)1 << 30, (int64_t)1 << 30);
	nb_tensor *a = nb_input(g, "a", NB_SHAPE(1, 1)), *b = nb_input(g, "b", NB_SHAPE(1, 1));
	nb_tensor *e = nb_add(nb__broadcast_to(a, big), nb__broadcast_to(b, big));
	ck_graph_ok(g);
	ck_assert_ptr_null(nb_compile(g, &e, 1));
	EXPECT_FAIL(g, NB_ERR_NOMEM, "compile: out of memory");
	nb_graph_free(g);
}
END_TEST

/* Every zoo model at a batch no tensor can hold: the input's size error,
 * and the builders stop there (no layer reads the placeholder's shape). */
START_TEST(test_zoo_batch_too_large)
{
	for (int i = 0; nb_zoo(i); i++) {
		nb_graph *g = nb_graph_new(NB_F32);
		ck_assert_ptr_null(nb_zoo_build(g, nb_zoo(i)->name, (int64_t)1 << 58));
		nb_status st = nb_graph_status(g);
		ck_assert_msg(st == NB_ERR_SHAPE, "%s: %s", nb_zoo(i)->name, nb_status_string(st));
		const char *msg = nb_graph_errmsg(g);
		ck_assert_msg(strstr(msg, "input(x): [288230376151711744,") &&
		                  strstr(msg, "has more than 2^60 elements"),
		              "%s: %s", nb_zoo(i)->name, msg);
		ck_assert_int_eq(nb_graph_num_params(g), 0);
		nb_graph_free(g);
	}
}
END_TEST

START_TEST(test_slice_bad)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 3));
	IS_PLACEHOLDER(nb_slice(x, 2, 0, 1));
	EXPECT_FAIL(g, NB_ERR_ARG, "slice(x): axis 2 out of range for shape [2,3]");
	IS_PLACEHOLDER(nb_slice(x, 1, 2, 5));
	EXPECT_FAIL(g, NB_ERR_ARG, "slice(x): range [2, 5) is empty or outside axis 1 of [2,3]");
	IS_PLACEHOLDER(nb_slice(x, -1, 2, 2));
	EXPECT_FAIL(g, NB_ERR_ARG, "slice(x): range [2, 2) is empty");
	IS_PLACEHOLDER(nb_slice(x, 0, -1, 1));
	EXPECT_FAIL(g, NB_ERR_ARG, "slice(x): range [-1, 1)");
	nb_graph_free(g);
}
END_TEST

/* ---- reductions and elementwise attributes -------------------------------------- */

START_TEST(test_reduce_bad_axes)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 3));
	IS_PLACEHOLDER(nb_sum_axes(x, (int[]){3}, 1, false));
	EXPECT_FAIL(g, NB_ERR_ARG, "sum(x): axis 3 out of range for shape [2,3]");
	IS_PLACEHOLDER(nb_mean_axes(x, (int[]){1, -1}, 2, true));
	EXPECT_FAIL(g, NB_ERR_ARG, "mean(x): axis -1 (= 1 of shape [2,3]) given twice");
	IS_PLACEHOLDER(nb_sum_axes(x, NULL, 2, false));
	EXPECT_FAIL(g, NB_ERR_ARG, "sum(x): axes list is NULL or has negative length");
	IS_PLACEHOLDER(nb_max_axis(x, -3, false));
	EXPECT_FAIL(g, NB_ERR_ARG, "max(x): axis -3 out of range for shape [2,3]");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_clamp_bounds)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(4));
	IS_PLACEHOLDER(nb_clamp(x, 1, -1));
	EXPECT_FAIL(g, NB_ERR_ARG, "clamp(x): lower bound 1 is above upper bound -1");
	IS_PLACEHOLDER(nb_clamp(x, NAN, 1));
	EXPECT_FAIL(g, NB_ERR_ARG, "clamp(x): a bound is NaN");
	ck_assert_str_ne(nb_tensor_name(nb_clamp(x, 0.5, 0.5)), "<error>"); /* lo == hi is fine */
	nb_graph_free(g);
}
END_TEST

/* ---- differentiation ------------------------------------------------------------ */

START_TEST(test_grad_not_scalar)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(3), NB_ONES);
	nb_tensor *v = nb_set_name(nb_exp(w), "v");
	IS_PLACEHOLDER(nb_grad(v, w));
	EXPECT_FAIL(g, NB_ERR_SHAPE,
	            "grad(v): can only differentiate a scalar, but the loss has shape [3]",
	            "nb_sum or nb_mean");
	nb_tensor *out[1];
	ck_assert_int_eq(nb_grads(nb_sum(v), &w, -1, out), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "grad(sum_", "NULL or negative arguments");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_grad_other_graph)
{
	nb_graph *g1 = nb_graph_new(NB_F64), *g2 = nb_graph_new(NB_F64);
	nb_tensor *w1 = nb_param(g1, "w1", NB_SHAPE(3), NB_ONES);
	nb_tensor *w2 = nb_param(g2, "w2", NB_SHAPE(3), NB_ONES);
	nb_tensor *L = nb_set_name(nb_sum(w1), "L");
	IS_PLACEHOLDER(nb_grad(L, w2));
	EXPECT_FAIL(g1, NB_ERR_GRAPH, "grad(L): wrt[0] (w2) belongs to another graph");
	ck_graph_ok(g2);
	nb_graph_free(g1);
	nb_graph_free(g2);
}
END_TEST

/* max's backward kernel has no derivative: a second derivative through
 * max is a clear error, not a crash or a silent zero. */
START_TEST(test_grad_of_grad_max)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(4), NB_UNIFORM(-1, 1));
	nb_tensor *dx = nb_grad(nb_max(x), x);
	ck_graph_ok(g);
	nb_tensor *g2 = nb_set_name(nb_sum(nb_mul(dx, dx)), "g2");
	IS_PLACEHOLDER(nb_grad(g2, x));
	EXPECT_FAIL(g, NB_ERR_GRAPH, "grad(g2): op max_backward (max_backward_",
	            "has no derivative rule");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_gradcheck_f32)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(3), NB_ONES);
	nb_tensor *L = nb_set_name(nb_sum(nb_exp(w)), "L");
	nb_gradcheck_report r;
	ck_assert_int_eq(nb_gradcheck(L, &w, 1, (nb_gradcheck_opts){0}, &r), NB_ERR_DTYPE);
	ck_assert(!r.passed);
	EXPECT_FAIL(g, NB_ERR_DTYPE, "gradcheck(L): needs an f64 graph");
	ck_assert_int_eq(nb_gradcheck(L, &w, 1, (nb_gradcheck_opts){0}, NULL), NB_ERR_ARG);
	EXPECT_FAIL(g, NB_ERR_ARG, "gradcheck(L): the report pointer is NULL");
	/* an op index outside the table */
	char err[128];
	ck_assert_int_eq(nb_op_gradcheck(-1, 1, &r, err, sizeof err), NB_ERR_ARG);
	ck_assert_str_eq(err, "op -1 (?) has no gradcheck example");
	ck_assert_int_eq(nb_op_gradcheck(nb_num_ops(), 1, &r, err, sizeof err), NB_ERR_ARG);
	nb_graph_free(g);
}
END_TEST

/* ---- compile and optimizers ------------------------------------------------------ */

START_TEST(test_compile_bad_targets)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2));
	nb_tensor *y = nb_exp(x);
	ck_assert_ptr_null(nb_compile(g, NULL, 1));
	EXPECT_FAIL(g, NB_ERR_ARG, "compile: no targets given");
	ck_assert_ptr_null(nb_compile(g, &y, 0));
	EXPECT_FAIL(g, NB_ERR_ARG, "compile: no targets given");
	ck_assert_ptr_null(nb_compile(g, (nb_tensor *[]){y, NULL}, 2));
	EXPECT_FAIL(g, NB_ERR_ARG, "compile: target 1 is NULL");
	nb_tensor *ph = nb_reshape(x, NB_SHAPE(3));
	IS_PLACEHOLDER(ph);
	nb_graph_clear_error(g);
	ck_assert_ptr_null(nb_compile(g, (nb_tensor *[]){y, ph}, 2));
	EXPECT_FAIL(g, NB_ERR_GRAPH, "compile: target 1 is the error placeholder");
	ck_assert_ptr_nonnull(nb_compile(g, &y, 1));
	nb_graph_free(g);
}
END_TEST

START_TEST(test_sgd_negative_lr)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(3), NB_ONES);
	nb_tensor *L = nb_set_name(nb_sum(nb_square(w)), "L");
	int nodes = nb_graph_num_nodes(g);
	ck_assert_ptr_null(nb_sgd(g, L, (nb_sgd_opts){.lr = -0.1}));
	ck_assert_int_eq(nb_graph_num_nodes(g), nodes); /* no backward pass built */
	EXPECT_FAIL(g, NB_ERR_ARG, "sgd: learning rate -0.1 must be finite and not negative");
	ck_assert_ptr_null(nb_sgd(g, L, (nb_sgd_opts){.lr = 0.1, .weight_decay = -1}));
	EXPECT_FAIL(g, NB_ERR_ARG, "sgd: weight decay -1 must not be negative");
	ck_assert_ptr_null(nb_sgd(g, L, (nb_sgd_opts){.lr = NAN}));
	EXPECT_FAIL(g, NB_ERR_ARG, "sgd: learning rate nan must be finite and not negative");
	ck_assert_ptr_null(nb_sgd(g, NULL, (nb_sgd_opts){.lr = 0.1}));
	EXPECT_FAIL(g, NB_ERR_ARG, "sgd: loss is NULL");
	/* changing the rate later is checked the same way */
	nb_optim *o = nb_sgd(g, L, (nb_sgd_opts){.lr = 0.1});
	ck_assert_ptr_nonnull(o);
	nb_optim_set_lr(o, -1);
	ck_assert_double_eq(nb_optim_lr(o), 0.1);
	EXPECT_FAIL(g, NB_ERR_ARG, "set_lr(-1): the learning rate must be finite and not negative");
	nb_graph_free(g);
}
END_TEST

START_TEST(test_sgd_no_params)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(3));
	nb_tensor *L = nb_set_name(nb_sum(nb_square(x)), "L");
	ck_assert_ptr_null(nb_sgd(g, L, (nb_sgd_opts){.lr = 0.1}));
	EXPECT_FAIL(g, NB_ERR_GRAPH, "sgd(L): the loss depends on no parameter, nothing to train");
	/* a non-scalar loss is caught by the backward pass */
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(3), NB_ONES);
	nb_tensor *v = nb_set_name(nb_mul(x, w), "v");
	ck_assert_ptr_null(nb_sgd(g, v, (nb_sgd_opts){.lr = 0.1}));
	EXPECT_FAIL(g, NB_ERR_SHAPE, "grad(v): can only differentiate a scalar");
	nb_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("errors");
	TCase *tc = tcase_create("errors");
	tcase_add_test(tc, test_matmul_inner);
	tcase_add_test(tc, test_matmul_rank_and_batch);
	tcase_add_test(tc, test_broadcast_mismatch);
	tcase_add_test(tc, test_feed_wrong_count);
	tcase_add_test(tc, test_feed_computed);
	tcase_add_test(tc, test_read_not_computed);
	tcase_add_test(tc, test_run_unfed_input);
	tcase_add_test(tc, test_run_unfed_input_name_escaped);
	tcase_add_test(tc, test_predict_needs_no_labels);
	tcase_add_test(tc, test_duplicate_param_name);
	tcase_add_test(tc, test_read_into_null);
	tcase_add_test(tc, test_item_not_scalar);
	tcase_add_test(tc, test_placeholder_use);
	tcase_add_test(tc, test_null_inputs);
	tcase_add_test(tc, test_null_graph);
	tcase_add_test(tc, test_other_graph);
	tcase_add_test(tc, test_unknown_dtype);
	tcase_add_test(tc, test_bad_dimensions);
	tcase_add_test(tc, test_too_many_dimensions);
	tcase_add_test(tc, test_bad_init);
	tcase_add_test(tc, test_reshape_bad);
	tcase_add_test(tc, test_transpose_bad_axes);
	tcase_add_test(tc, test_concat_bad);
	tcase_add_test(tc, test_shape_overflow);
	tcase_add_test(tc, test_arena_overflow);
	tcase_add_test(tc, test_zoo_batch_too_large);
	tcase_add_test(tc, test_slice_bad);
	tcase_add_test(tc, test_reduce_bad_axes);
	tcase_add_test(tc, test_clamp_bounds);
	tcase_add_test(tc, test_grad_not_scalar);
	tcase_add_test(tc, test_grad_other_graph);
	tcase_add_test(tc, test_grad_of_grad_max);
	tcase_add_test(tc, test_gradcheck_f32);
	tcase_add_test(tc, test_compile_bad_targets);
	tcase_add_test(tc, test_sgd_negative_lr);
	tcase_add_test(tc, test_sgd_no_params);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
