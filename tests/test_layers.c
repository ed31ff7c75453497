/* Layer builders and the model summary: the notes' parameter counts, dense
 * and convolution layers, residual blocks (identity, option-A and option-B
 * shortcuts) checked by hand and by gradcheck, the zoo's totals against
 * PyTorch's, summary rows, and the `nabla summary` / `nabla dot` commands. */
#include "test_util.h"

#include "nabla_config.h"

#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

/* deterministic values in [-1, 1) */
static double lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(*s >> 11) * 0x1.0p-52 - 1.0;
}

static void ck_shape(nb_shape s, nb_shape want)
{
	char a[128], b[128];
	ck_assert_msg(s.ndim == want.ndim && !memcmp(s.d, want.d, sizeof(int64_t) * (size_t)s.ndim),
	              "shape %s, expected %s", nb_shape_str(s, a, sizeof a),
	              nb_shape_str(want, b, sizeof b));
}

static nb_tensor *find(nb_graph *g, const char *name)
{
	nb_tensor *t = nb_graph_find(g, name);
	ck_assert_msg(t != NULL, "no node named %s", name);
	return t;
}

/* the row of layer `name` */
static nb_layer_info row(nb_graph *g, const char *name)
{
	nb_layer_info rows[256];
	int n = nb_summary(g, rows, 256);
	ck_assert_int_le(n, 256);
	for (int i = 0; i < n; i++)
		if (!strcmp(rows[i].name, name))
			return rows[i];
	ck_abort_msg("no summary row %s", name);
	return rows[0];
}

/* ---- the notes' parameter counts ------------------------------------------------ */

/* lecture-notes.txt, "Depthwise convolution" (around line 2291): on an
 * H x W x 32 image, Conv2D(64, (3, 3)) has (3 x 3 x 32) x 64 = 18432
 * parameters, "(K x K x C_i) C_o"; the depthwise convolution has
 * 3 x 3 x 32 = 288; and (around line 2372) "Separable convolutions:
 * Depthwise convolution + pointwise convolution" on 64 x 64 x 32 with 64
 * filters: "Depthwise Pointwise = 288 + 2048", (K x K x C_in) +
 * (1 x 1 x C_in x C_out), with output H x W x C_out (same padding).  The
 * notes count no biases. */
START_TEST(test_notes_param_counts)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(1, 32, 64, 64));
	nb_conv_layer_opts same = {.conv = {.padding = NB_PAD_SAME}, .no_bias = true};
	nb_tensor *y = nb_conv2d_layer(x, 64, 3, "conv", same);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_count_params(g), 18432);
	ck_assert_int_eq(nb_count_params(g), (3 * 3 * 32) * 64);
	ck_shape(nb_tensor_shape(find(g, "conv.w")), NB_SHAPE(64, 32, 3, 3));
	ck_shape(nb_tensor_shape(y), NB_SHAPE(1, 64, 64, 64));
	nb_graph_free(g);

	g = nb_graph_new(NB_F32);
	x = nb_input(g, "x", NB_SHAPE(1, 32, 64, 64));
	y = nb_separable_conv2d_layer(x, 64, 3, "sep", (nb_conv2d_opts){.padding = NB_PAD_SAME});
	ck_graph_ok(g);
	ck_assert_int_eq(nb_count_params(g), 2336);
	ck_shape(nb_tensor_shape(y), NB_SHAPE(1, 64, 64, 64));
	ck_assert_str_eq(nb_tensor_name(y), "sep");
	/* separate rows for the two halves, each with its own output */
	ck_assert_int_eq(nb_summary(g, NULL, 0), 2);
	nb_layer_info d = row(g, "sep.depthwise"), p = row(g, "sep.pointwise");
	ck_assert_int_eq(d.params, 288);
	ck_assert_int_eq(d.params, 3 * 3 * 32);
	ck_assert_int_eq(p.params, 2048);
	ck_assert_int_eq(p.params, 1 * 1 * 32 * 64);
	ck_shape(d.output, NB_SHAPE(1, 32, 64, 64));
	ck_shape(p.output, NB_SHAPE(1, 64, 64, 64)); /* its node was renamed "sep" */
	ck_shape(nb_tensor_shape(find(g, "sep.depthwise.w")), NB_SHAPE(32, 1, 3, 3));
	ck_shape(nb_tensor_shape(find(g, "sep.pointwise.w")), NB_SHAPE(64, 32, 1, 1));
	nb_graph_free(g);
}
END_TEST

/* ---- dense ------------------------------------------------------------------------ */

START_TEST(test_dense)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_graph_seed(g, 3);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(5, 7));
	nb_tensor *y = nb_dense(x, 3, "fc");
	ck_graph_ok(g);
	ck_assert_str_eq(nb_tensor_name(y), "fc");
	ck_shape(nb_tensor_shape(y), NB_SHAPE(5, 3));
	nb_tensor *w = find(g, "fc.w"), *b = find(g, "fc.b");
	ck_assert(nb_is_param(w) && nb_is_param(b));
	ck_shape(nb_tensor_shape(w), NB_SHAPE(3, 7)); /* nn.Linear's [out, in] */
	ck_shape(nb_tensor_shape(b), NB_SHAPE(3));
	/* PyTorch's default: U(-1/sqrt(in), 1/sqrt(in)) for both */
	double r = 1 / sqrt(7.0), wv[21], bv[3], wmax = 0;
	nb_read_f64(w, wv, 21);
	nb_read_f64(b, bv, 3);
	for (int i = 0; i < 21; i++) {
		ck_assert_msg(fabs(wv[i]) <= r, "w[%d] = %g outside +-%g", i, wv[i], r);
		wmax = fmax(wmax, fabs(wv[i]));
	}
	for (int i = 0; i < 3; i++)
		ck_assert_msg(fabs(bv[i]) <= r && bv[i] != 0, "b[%d] = %g", i, bv[i]);
	ck_assert(wmax > r / 2); /* drawn over the range, not squeezed near 0 */
	/* y = x W^T + b */
	double xv[35];
	uint64_t s = 5;
	for (int i = 0; i < 35; i++)
		xv[i] = lcg(&s);
	nb_feed_f64(x, xv, 35);
	ck_assert_int_eq(nb_eval(y), NB_OK);
	double yv[15];
	nb_read_f64(y, yv, 15);
	for (int n = 0; n < 5; n++)
		for (int o = 0; o < 3; o++) {
			double e = bv[o];
			for (int k = 0; k < 7; k++)
				e += xv[n * 7 + k] * wv[o * 7 + k];
			ck_near(yv[n * 3 + o], e, 1e-14);
		}
	/* no bias, custom init */
	nb_dense_opts o = {.no_bias = true, .custom_init = true, .w_init = NB_ONES};
	nb_tensor *z = nb_dense_layer(x, 2, "nb", o);
	ck_graph_ok(g);
	ck_assert_ptr_null(nb_graph_find(g, "nb.b"));
	ck_assert_int_eq(row(g, "nb").params, 14);
	ck_shape(row(g, "nb").output, NB_SHAPE(5, 2));
	ck_assert_int_eq(nb_eval(z), NB_OK);
	double zv[10];
	nb_read_f64(z, zv, 10);
	double sum0 = 0;
	for (int k = 0; k < 7; k++)
		sum0 += xv[k];
	ck_near(zv[0], sum0, 1e-14);
	ck_near(zv[1], sum0, 1e-14);
	/* the former name nb_dense_ex builds the same layer */
	nb_tensor *z2 = nb_dense_ex(x, 2, "nb_old", o);
	ck_graph_ok(g);
	ck_assert_ptr_null(nb_graph_find(g, "nb_old.b"));
	ck_assert_int_eq(nb_eval(z2), NB_OK);
	double z2v[10];
	nb_read_f64(z2, z2v, 10);
	ck_assert(!memcmp(zv, z2v, sizeof zv));
	/* leading batch dims are kept */
	nb_tensor *x3 = nb_input(g, "x3", NB_SHAPE(2, 4, 7));
	ck_shape(nb_tensor_shape(nb_dense(x3, 6, "fc3")), NB_SHAPE(2, 4, 6));
	/* errors name the layer */
	nb_dense(x, 0, "bad");
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_SHAPE);
	ck_assert_msg(strstr(nb_graph_errmsg(g), "dense(bad)"), "%s", nb_graph_errmsg(g));
	nb_graph_free(g);
}
END_TEST

/* ---- convolution layers ----------------------------------------------------------- */

START_TEST(test_conv_layers)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 3, 9, 9));
	/* (9 + 2 - 3)/2 + 1 = 5 */
	nb_tensor *y =
	    nb_conv2d_layer(x, 8, 3, "a", (nb_conv_layer_opts){.conv = NB_CONV_OPTS(2, 1)});
	ck_shape(nb_tensor_shape(y), NB_SHAPE(2, 8, 5, 5));
	ck_shape(nb_tensor_shape(find(g, "a.w")), NB_SHAPE(8, 3, 3, 3));
	ck_shape(nb_tensor_shape(find(g, "a.b")), NB_SHAPE(8));
	ck_assert_int_eq(row(g, "a").params, 8 * 3 * 3 * 3 + 8);
	/* valid 5x5: 9 - 5 + 1 */
	y = nb_conv2d_layer(x, 4, 5, "b", (nb_conv_layer_opts){0});
	ck_shape(nb_tensor_shape(y), NB_SHAPE(2, 4, 5, 5));
	/* same padding with an even kernel keeps 9x9 */
	y = nb_conv2d_layer(x, 4, 4, "c", (nb_conv_layer_opts){.conv = {.padding = NB_PAD_SAME}});
	ck_shape(nb_tensor_shape(y), NB_SHAPE(2, 4, 9, 9));
	/* groups: weight [out, in/groups, k, k] */
	y = nb_conv2d_layer(x, 6, 3, "d",
	                    (nb_conv_layer_opts){.conv = {.groups = 3}, .no_bias = true});
	ck_shape(nb_tensor_shape(y), NB_SHAPE(2, 6, 7, 7));
	ck_shape(nb_tensor_shape(find(g, "d.w")), NB_SHAPE(6, 1, 3, 3));
	ck_assert_ptr_null(nb_graph_find(g, "d.b"));
	ck_graph_ok(g);
	/* PyTorch's default init: U(-1/sqrt(fan_in), ..), fan_in = 3*3*3 */
	float wv[8 * 27];
	nb_read_f32(find(g, "a.w"), wv, 8 * 27);
	for (int i = 0; i < 8 * 27; i++)
		ck_assert(fabs(wv[i]) <= 1 / sqrt(27.0) + 1e-7);
	/* errors */
	nb_conv2d_layer(x, 4, 3, "e", (nb_conv_layer_opts){.conv = {.groups = 2}});
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_SHAPE);
	ck_assert_msg(strstr(nb_graph_errmsg(g), "conv2d_layer(e)"), "%s", nb_graph_errmsg(g));
	nb_graph_free(g);
	g = nb_graph_new(NB_F32);
	nb_conv2d_layer(nb_input(g, "x", NB_SHAPE(2, 9)), 4, 3, "f", (nb_conv_layer_opts){0});
	ck_assert_msg(strstr(nb_graph_errmsg(g), "[2,9]"), "%s", nb_graph_errmsg(g));
	nb_graph_free(g);
}
END_TEST

/* ---- residual blocks ---------------------------------------------------------------- */

/* x[n,c,i,j] = distinct values of both signs */
static void fill_x(nb_tensor *x, double *xv)
{
	for (int64_t i = 0; i < nb_tensor_size(x); i++)
		xv[i] = (double)((i * 7) % 23) - 11.5;
	nb_feed_f64(x, xv, nb_tensor_size(x));
}

static void zero_convs(nb_graph *g, const char *block)
{
	char name[64];
	for (int k = 1; k <= 2; k++) {
		snprintf(name, sizeof name, "%s.conv%d.w", block, k);
		ck_assert_int_eq(nb_init_tensor(find(g, name), NB_ZEROS), NB_OK);
	}
}

START_TEST(test_basic_block_identity)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 4, 5, 5));
	nb_tensor *y = nb_basic_block(x, 4, 1, NB_SHORTCUT_A, "blk");
	ck_graph_ok(g);
	ck_assert_str_eq(nb_tensor_name(y), "blk");
	ck_shape(nb_tensor_shape(y), NB_SHAPE(2, 4, 5, 5));
	/* two 3x3 convolutions without bias, two batchnorms (gamma, beta) */
	ck_assert_int_eq(nb_count_params(g), 2 * (4 * 4 * 9) + 2 * (4 + 4));
	ck_assert_int_eq(nb_summary(g, NULL, 0), 4);
	ck_assert_ptr_null(nb_graph_find(g, "blk.shortcut"));
	ck_assert_ptr_null(nb_graph_find(g, "blk.shortcut.select"));
	ck_assert_ptr_null(nb_graph_find(g, "blk.shortcut.w"));
	ck_assert_int_eq(row(g, "blk.bn2").state, 8); /* running mean and variance */
	/* with zero convolutions the residual branch is BN(0) = beta = 0, so
	 * the block is relu(x) exactly */
	zero_convs(g, "blk");
	double xv[200], yv[200];
	fill_x(x, xv);
	ck_assert_int_eq(nb_eval(y), NB_OK);
	nb_read_f64(y, yv, 200);
	for (int i = 0; i < 200; i++)
		ck_assert(yv[i] == fmax(xv[i], 0));
	nb_graph_free(g);
}
END_TEST

/* Option A: a 1x1 stride-2 convolution with a constant 0/1 weight that
 * copies x[:, c, ::2, ::2] into channel pad + c, pad = (out - C)/2, and
 * leaves the other channels 0 (PyTorch: F.pad(x[:, :, ::2, ::2],
 * (0, 0, 0, 0, pad, pad))). */
START_TEST(test_basic_block_option_a)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 2, 4, 4));
	nb_tensor *y = nb_basic_block(x, 4, 2, NB_SHORTCUT_A, "blk");
	ck_graph_ok(g);
	ck_shape(nb_tensor_shape(y), NB_SHAPE(2, 4, 2, 2));
	/* parameter-free: only conv1 (4*2*9), conv2 (4*4*9) and the batchnorms */
	ck_assert_int_eq(nb_count_params(g), 72 + 144 + 16);
	ck_assert_int_eq(nb_summary(g, NULL, 0), 4);
	/* a subsampling (1x1 average pool, stride 2) embedded into zero channels */
	nb_tensor *sc = find(g, "blk.shortcut");
	ck_assert_str_eq(nb_tensor_op(sc), "embed");
	ck_shape(nb_tensor_shape(sc), NB_SHAPE(2, 4, 2, 2));

	double xv[64], yv[32];
	fill_x(x, xv);
	ck_assert_int_eq(nb_eval(sc), NB_OK);
	nb_read_f64(sc, yv, 32);
	for (int n = 0; n < 2; n++)
		for (int o = 0; o < 4; o++)
			for (int i = 0; i < 2; i++)
				for (int j = 0; j < 2; j++) {
					int c = o - 1; /* pad = (4 - 2)/2 = 1 */
					double want =
					    c >= 0 && c < 2
					        ? xv[((n * 2 + c) * 4 + 2 * i) * 4 + 2 * j]
					        : 0;
					ck_assert_msg(yv[((n * 4 + o) * 2 + i) * 2 + j] == want,
					              "shortcut[%d,%d,%d,%d] = %g, expected %g", n,
					              o, i, j, yv[((n * 4 + o) * 2 + i) * 2 + j],
					              want);
				}
	/* the whole block with zero convolutions: relu(shortcut) */
	zero_convs(g, "blk");
	double bv[32];
	ck_assert_int_eq(nb_eval(y), NB_OK);
	nb_read_f64(y, bv, 32);
	for (int i = 0; i < 32; i++)
		ck_assert(bv[i] == fmax(yv[i], 0));
	nb_graph_free(g);

	/* an odd channel difference puts the extra zero channel last */
	g = nb_graph_new(NB_F64);
	x = nb_input(g, "x", NB_SHAPE(1, 3, 2, 2));
	nb_basic_block(x, 4, 1, NB_SHORTCUT_A, "odd");
	ck_graph_ok(g);
	double x3[12], s3[16];
	fill_x(x, x3);
	nb_tensor *sc3 = find(g, "odd.shortcut");
	ck_assert_int_eq(nb_eval(sc3), NB_OK);
	nb_read_f64(sc3, s3, 16);
	for (int o = 0; o < 4; o++)
		for (int e = 0; e < 4; e++)
			ck_assert(s3[o * 4 + e] == (o < 3 ? x3[o * 4 + e] : 0));
	/* fewer output channels cannot be zero-padded */
	nb_basic_block(x, 2, 2, NB_SHORTCUT_A, "narrow");
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_SHAPE);
	ck_assert_msg(strstr(nb_graph_errmsg(g), "basic_block(narrow): an option-A shortcut"), "%s",
	              nb_graph_errmsg(g));
	nb_graph_free(g);
}
END_TEST

START_TEST(test_basic_block_option_b)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(1, 2, 4, 4));
	nb_tensor *y = nb_basic_block(x, 4, 2, NB_SHORTCUT_B, "blk");
	ck_graph_ok(g);
	ck_shape(nb_tensor_shape(y), NB_SHAPE(1, 4, 2, 2));
	ck_assert_ptr_null(nb_graph_find(g, "blk.shortcut.select"));
	ck_shape(nb_tensor_shape(find(g, "blk.shortcut.w")), NB_SHAPE(4, 2, 1, 1));
	ck_assert_ptr_null(nb_graph_find(g, "blk.shortcut.b"));
	const char *names[6] = {"blk.conv1", "blk.bn1",      "blk.conv2",
	                        "blk.bn2",   "blk.shortcut", "blk.shortcut_bn"};
	const int64_t params[6] = {72, 8, 144, 8, 8, 8};
	nb_layer_info rows[8];
	ck_assert_int_eq(nb_summary(g, rows, 8), 6);
	for (int i = 0; i < 6; i++) {
		ck_assert_str_eq(rows[i].name, names[i]);
		ck_assert_int_eq(rows[i].params, params[i]);
		ck_assert_int_eq(rows[i].state, i % 2 ? 8 : 0);
		ck_shape(rows[i].output, NB_SHAPE(1, 4, 2, 2));
	}
	ck_assert_int_eq(nb_count_params(g), 248);
	nb_graph_free(g);
}
END_TEST

START_TEST(test_bottleneck_block)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 8, 6, 6));
	/* projection: 8 -> 4*4 channels, stride 2 on the 3x3 */
	nb_tensor *y = nb_bottleneck_block(x, 4, 2, "b1");
	ck_graph_ok(g);
	ck_assert_str_eq(nb_tensor_name(y), "b1");
	ck_shape(nb_tensor_shape(y), NB_SHAPE(2, 16, 3, 3));
	ck_shape(row(g, "b1.conv1").output, NB_SHAPE(2, 4, 6, 6));
	ck_shape(row(g, "b1.conv2").output, NB_SHAPE(2, 4, 3, 3));
	ck_shape(row(g, "b1.conv3").output, NB_SHAPE(2, 16, 3, 3));
	ck_shape(row(g, "b1.shortcut").output, NB_SHAPE(2, 16, 3, 3));
	ck_assert_int_eq(row(g, "b1.conv1").params, 8 * 4);
	ck_assert_int_eq(row(g, "b1.conv2").params, 4 * 4 * 9);
	ck_assert_int_eq(row(g, "b1.conv3").params, 4 * 16);
	ck_assert_int_eq(row(g, "b1.shortcut").params, 8 * 16);
	ck_assert_int_eq(row(g, "b1.shortcut_bn").params, 32);
	int64_t p = nb_count_params(g);
	ck_assert_int_eq(p, 32 + 144 + 64 + 128 + 2 * (4 + 4 + 16 + 16));
	/* identity: 16 channels in and out, stride 1 */
	y = nb_bottleneck_block(y, 4, 1, "b2");
	ck_graph_ok(g);
	ck_shape(nb_tensor_shape(y), NB_SHAPE(2, 16, 3, 3));
	ck_assert_ptr_null(nb_graph_find(g, "b2.shortcut.w"));
	ck_assert_int_eq(nb_count_params(g) - p, 16 * 4 + 144 + 4 * 16 + 2 * (4 + 4 + 16));
	nb_bottleneck_block(nb_input(g, "x2", NB_SHAPE(2, 8)), 4, 1, "b3");
	ck_assert_msg(strstr(nb_graph_errmsg(g), "bottleneck_block(b3)"), "%s", nb_graph_errmsg(g));
	nb_graph_free(g);
}
END_TEST

/* Finite differences through a whole block in training mode: both
 * convolutions, the batchnorms, the shortcut and the ReLUs, for the input
 * and every parameter. */
static void gradcheck_block(int kind)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_graph_seed(g, 40 + (uint64_t)kind);
	nb_tensor *x, *y;
	if (kind < 3) {
		x = nb_param(g, "x", kind == 0 ? NB_SHAPE(2, 3, 3, 3) : NB_SHAPE(2, 2, 4, 4),
		             NB_UNIFORM(-2, 2));
		y = nb_basic_block(x, 3 + (kind > 0), kind == 0 ? 1 : 2,
		                   kind == 2 ? NB_SHORTCUT_B : NB_SHORTCUT_A, "blk");
	} else {
		x = nb_param(g, "x", kind == 3 ? NB_SHAPE(2, 4, 4, 4) : NB_SHAPE(2, 8, 3, 3),
		             NB_UNIFORM(-2, 2));
		y = nb_bottleneck_block(x, 2, kind == 3 ? 2 : 1, "blk");
	}
	/* a nonlinear loss with random weights, so every output matters */
	nb_tensor *c = nb_param(g, "c", nb_tensor_shape(y), NB_UNIFORM(-1, 1));
	nb_tensor *L = nb_sum(nb_mul(nb_square(y), nb_stop_gradient(c)));
	ck_graph_ok(g);
	nb_tensor *wrt[32];
	int n = 0;
	for (int i = 0; i < nb_graph_num_params(g); i++)
		if (nb_graph_param(g, i) != c)
			wrt[n++] = nb_graph_param(g, i);
	ck_assert_int_ge(n, kind == 2 ? 9 : 7);
	nb_gradcheck_report r;
	ck_assert_int_eq(nb_gradcheck(L, wrt, n, (nb_gradcheck_opts){0}, &r), NB_OK);
	ck_assert_msg(r.passed,
	              "block kind %d: tensor %s element %lld: analytic %.12g, numeric %.12g", kind,
	              nb_tensor_name(wrt[r.worst_tensor]), (long long)r.worst_index,
	              r.worst_analytic, r.worst_numeric);
	ck_assert_int_gt(r.checked, 100);
	nb_graph_free(g);
}

START_TEST(test_block_gradcheck)
{
	gradcheck_block(_i);
}
END_TEST

/* ---- the zoo ---------------------------------------------------------------------- */

static int64_t zoo_params(const char *name, int64_t *state)
{
	nb_model *m = nb_test_zoo(name, NB_F32, 1, 1);
	int64_t n = nb_count_params(nb_model_graph(m));
	nb_layer_info *rows = calloc(256, sizeof *rows);
	ck_assert_ptr_nonnull(rows);
	int k = nb_summary(nb_model_graph(m), rows, 256);
	ck_assert_int_le(k, 256);
	int64_t sum = 0;
	*state = 0;
	for (int i = 0; i < k; i++) {
		sum += rows[i].params;
		*state += rows[i].state;
		ck_assert_msg(rows[i].output.ndim > 0, "%s: layer %s has no output", name,
		              rows[i].name);
	}
	ck_assert_int_eq(sum, n); /* every parameter is in exactly one row */
	free(rows);
	nb_graph_free(nb_model_graph(m));
	return n;
}

/* ResNet-20 as torch_resnet20.py builds it, with either shortcut */
static int64_t resnet20_params(nb_shortcut sc, int64_t *state)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(1, 3, 32, 32));
	nb_tensor *h = nb_relu(nb_batchnorm_layer(
	    nb_conv2d_layer(x, 16, 3, "conv1",
	                    (nb_conv_layer_opts){.conv = NB_CONV_OPTS(1, 1), .no_bias = true}),
	    "bn1", (nb_batchnorm_opts){0}));
	char name[32];
	for (int s = 0; s < 3; s++)
		for (int b = 0; b < 3; b++) {
			snprintf(name, sizeof name, "layer%d.%d", s + 1, b);
			h = nb_basic_block(h, 16 << s, s > 0 && b == 0 ? 2 : 1, sc, name);
		}
	nb_dense(nb_global_avgpool(h), 10, "fc");
	ck_graph_ok(g);
	int64_t n = nb_count_params(g);
	nb_layer_info rows[64];
	int k = nb_summary(g, rows, 64);
	ck_assert_int_le(k, 64);
	*state = 0;
	for (int i = 0; i < k; i++)
		*state += rows[i].state;
	nb_graph_free(g);
	return n;
}

/* Totals checked against PyTorch (torch 1.13, Debian's python3-torch):
 * sum(p.numel() for p in model.parameters()), which includes BN's gamma
 * and beta, and the running mean/var buffers for the state. */
START_TEST(test_zoo_totals)
{
	int64_t st;
	/* 784*256+256 + 256*128+128 + 128*10+10 */
	ck_assert_int_eq(zoo_params("mlp", &st), 235146);
	ck_assert_int_eq(st, 0);
	/* conv1 6*1*5*5+6, conv2 16*6*5*5+16, fc 400*120+120, 120*84+84, 84*10+10 */
	ck_assert_int_eq(zoo_params("lenet", &st), (6 * 25 + 6) + (16 * 6 * 25 + 16) +
	                                               (400 * 120 + 120) + (120 * 84 + 84) +
	                                               (84 * 10 + 10));
	ck_assert_int_eq(zoo_params("lenet", &st), 61706);
	/* ResNet-20 with option-A shortcuts: torch_resnet20.py's ResNet20("A")
	 * has 269 722 parameters (and 1 376 running-statistics elements), the
	 * "0.27M" of He et al.'s table.  The 272 474 sometimes quoted for it
	 * is the option-B count: the two projections add 16*32 + 2*32 and
	 * 32*64 + 2*64 = 2 752 (torch: ResNet20("B") has 272 474). */
	ck_assert_int_eq(zoo_params("resnet20", &st), 269722);
	ck_assert_int_eq(st, 1376);
	ck_assert_int_eq(resnet20_params(NB_SHORTCUT_A, &st), 269722);
	ck_assert_int_eq(st, 1376);
	ck_assert_int_eq(resnet20_params(NB_SHORTCUT_B, &st), 272474);
	ck_assert_int_eq(st, 1568);
	ck_assert_int_eq(272474 - 269722, (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64));
	/* ResNet-50 with a CIFAR stem (3x3 conv 3->64, no max-pool) and 10
	 * classes: torchvision's resnet50() has 25 557 032 parameters; less its
	 * 7x7 stem (3*64*49 = 9 408) and 1000-class head (2048*1000+1000),
	 * plus the 3x3 stem (1 728) and a 10-class head (20 490): 23 520 842.
	 * The same structure written out in torch counts 23 520 842 and 53 120
	 * buffer elements. */
	ck_assert_int_eq(25557032 - 9408 - (2048 * 1000 + 1000) + 1728 + 20490, 23520842);
	ck_assert_int_eq(zoo_params("resnet50", &st), 23520842);
	ck_assert_int_eq(st, 53120);
	/* 784*128+128, then 128+1 or 2*128+2 */
	ck_assert_int_eq(zoo_params("mlp-binary-sigmoid", &st), 100609);
	ck_assert_int_eq(zoo_params("mlp-binary-softmax", &st), 100738);
}
END_TEST

/* ---- summary ------------------------------------------------------------------------ */

START_TEST(test_summary_lenet)
{
	nb_model *m = nb_test_zoo("lenet", NB_F32, 2, 1);
	const struct {
		const char *name;
		nb_shape out;
		int64_t params;
	} want[5] = {
	    {"conv1", NB_SHAPE(2, 6, 28, 28), 156}, {"conv2", NB_SHAPE(2, 16, 10, 10), 2416},
	    {"fc1", NB_SHAPE(2, 120), 48120},       {"fc2", NB_SHAPE(2, 84), 10164},
	    {"fc3", NB_SHAPE(2, 10), 850},
	};
	nb_layer_info rows[6];
	memset(rows, 0x5a, sizeof rows);
	ck_assert_int_eq(nb_summary(nb_model_graph(m), NULL, 0), 5);
	ck_assert_int_eq(nb_summary(nb_model_graph(m), rows, 6), 5);
	for (int i = 0; i < 5; i++) {
		ck_assert_str_eq(rows[i].name, want[i].name);
		ck_shape(rows[i].output, want[i].out);
		ck_assert_int_eq(rows[i].params, want[i].params);
		ck_assert_int_eq(rows[i].state, 0);
	}
	ck_assert_int_eq((unsigned char)rows[5].name[0], 0x5a); /* untouched */
	/* fewer rows than layers: the first ones, and the full count */
	nb_layer_info two[3];
	memset(two, 0x5a, sizeof two);
	ck_assert_int_eq(nb_summary(nb_model_graph(m), two, 2), 5);
	ck_assert_str_eq(two[1].name, "conv2");
	ck_assert_int_eq(two[1].params, 2416);
	ck_assert_int_eq((unsigned char)two[2].name[0], 0x5a);

	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(fp);
	nb_summary_print(nb_model_graph(m), fp);
	fclose(fp);
	ck_assert_str_eq(
	    text, "layer  output shape    parameters\n"
	          "conv1  [2,6,28,28]            156\n"
	          "conv2  [2,16,10,10]          2416\n"
	          "fc1    [2,120]              48120\n"
	          "fc2    [2,84]               10164\n"
	          "fc3    [2,10]                 850\n"
	          "total: 61706 trainable parameters, 0 non-trainable (running statistics)\n");
	free(text);
	/* an optimizer's state is not part of the model */
	ck_assert_ptr_nonnull(nb_adam(nb_model_graph(m), nb_model_loss(m), (nb_adam_opts){0}));
	ck_assert_ptr_nonnull(nb_graph_find(nb_model_graph(m), "fc1.w.m"));
	ck_assert_int_eq(nb_summary(nb_model_graph(m), rows, 6), 5);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(rows[i].state, 0);
		ck_shape(rows[i].output, want[i].out); /* not a gradient node's shape */
	}
	nb_graph_free(nb_model_graph(m));
}
END_TEST

START_TEST(test_summary_renamed_and_plain)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(3, 5));
	nb_tensor *h = nb_relu(nb_dense(x, 4, "fc1"));
	nb_set_name(nb_dense(h, 2, "fc2"), "logits");
	/* a bare parameter is a layer of its own; its output is its reader */
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(5, 6), NB_ZEROS);
	nb_matmul(x, w);
	nb_param(g, "unused.p", NB_SHAPE(7), NB_ZEROS);
	ck_graph_ok(g);
	ck_shape(row(g, "fc1").output, NB_SHAPE(3, 4));
	ck_shape(row(g, "fc2").output, NB_SHAPE(3, 2)); /* the add renamed "logits" */
	ck_shape(row(g, "w").output, NB_SHAPE(3, 6));
	ck_assert_int_eq(row(g, "w").params, 30);
	ck_assert_int_eq(row(g, "unused").output.ndim, -1);
	ck_assert_int_eq(row(g, "unused").params, 7);
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	nb_summary_print(g, fp);
	fclose(fp);
	ck_assert_msg(strstr(text, "\nunused  -                        7\n"), "%s", text);
	free(text);
	nb_graph_free(g);
	ck_assert_int_eq(nb_summary(NULL, NULL, 0), 0);
	ck_assert_int_eq(nb_count_params(NULL), 0);
}
END_TEST

/* ---- the commands ----------------------------------------------------------------- */

/* Run a shell command, capture its stdout (and stderr when the command
 * says 2>&1) into a malloc'd string; returns the exit status. */
static int run(const char *cmd, char **out)
{
	return nb_test_popen(cmd, out);
}

/* Run `nabla args 2>&1`: the exit status must be `status` and the output
 * must hold every one of the NULL-terminated parts. */
static void expect(const char *args, int status, ...)
{
	char cmd[1024], *out;
	snprintf(cmd, sizeof cmd, "%s %s 2>&1", NB_NABLA_EXE, args);
	int st = run(cmd, &out);
	ck_assert_msg(st == status, "nabla %s: exit status %d, expected %d; output:\n%s", args, st,
	              status, out);
	va_list ap;
	va_start(ap, status);
	for (const char *part; (part = va_arg(ap, const char *));)
		ck_assert_msg(strstr(out, part), "nabla %s: '%s' not in:\n%s", args, part, out);
	va_end(ap);
	free(out);
}

/* stdout of `nabla args`, which must succeed */
static char *output_of(const char *args)
{
	char cmd[1024], *out;
	snprintf(cmd, sizeof cmd, "%s %s", NB_NABLA_EXE, args);
	ck_assert_msg(run(cmd, &out) == 0, "nabla %s failed:\n%s", args, out);
	return out;
}

START_TEST(test_summary_command)
{
	char *out = output_of("summary --model lenet");
	ck_assert_str_eq(
	    out,
	    "lenet: LeNet-5: conv5x5(6, pad 2) pool conv5x5(16) pool 120 84 10, input [1,1,28,28]\n"
	    "layer  output shape    parameters\n"
	    "conv1  [1,6,28,28]            156\n"
	    "conv2  [1,16,10,10]          2416\n"
	    "fc1    [1,120]              48120\n"
	    "fc2    [1,84]               10164\n"
	    "fc3    [1,10]                 850\n"
	    "total: 61706 trainable parameters, 0 non-trainable (running statistics)\n");
	free(out);
	out = output_of("summary --model xor --json");
	ck_assert_str_eq(
	    out, "{\"model\": \"xor\", \"batch\": 4, \"dtype\": \"f32\", \"layers\": [\n"
	         "  {\"name\": \"hidden\", \"output\": [4, 2], \"params\": 6, \"state\": 0},\n"
	         "  {\"name\": \"out\", \"output\": [4, 1], \"params\": 3, \"state\": 0}\n"
	         "], \"params\": 9, \"state\": 0}\n");
	free(out);
	expect("summary --model resnet20 --batch 8", 0,
	       "\nlayer3.2.bn2    [8,64,8,8]             128\n",
	       "total: 269722 trainable parameters, 1376 non-trainable", NULL);
	expect("summary --model=mlp --json --batch=3 --dtype f64", 0,
	       "\"batch\": 3, \"dtype\": \"f64\"",
	       "{\"name\": \"fc1\", \"output\": [3, 256], \"params\": 200960, \"state\": 0}",
	       "], \"params\": 235146, \"state\": 0}\n", NULL);
	/* usage errors */
	expect("summary", 2, "--model NAME is required", NULL);
	expect("summary --model vgg", 2, "unknown model 'vgg'", "\n  resnet50 ", "\n  xor ", NULL);
	expect("summary --model lenet --batch 0", 2,
	       "nabla summary: --batch must be an integer from 1 to 1048576, got '0'\n", NULL);
	/* a batch beyond the flag's range is refused before any model is built
	 * (the library's own size checks: test_errors) */
	expect("summary --model resnet50 --batch 1000000000000000", 2,
	       "--batch must be an integer from 1 to 1048576, got '1000000000000000'\n", NULL);
	expect("summary --model xor --batch 2", 2, "xor has a fixed batch of 4", NULL);
	expect("summary --model lenet --batch", 2, "--batch needs a value", NULL);
	expect("summary --model lenet --dtype f16", 2, "--dtype must be f32 or f64", NULL);
	expect("summary --model lenet --verbose", 2, "unknown option '--verbose'", NULL);
	expect("help summary", 0, "usage: nabla summary --model NAME", NULL);
}
END_TEST

static bool have_dot(void)
{
	return access("/usr/bin/dot", X_OK) == 0;
}

START_TEST(test_dot_command)
{
	char tmpdir[64], path[160], args[512];
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/nblayersXXXXXX",
	         base && strlen(base) < 40 ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));

	/* forward view: the model only */
	char *out = output_of("dot --model lenet");
	ck_assert(!strncmp(out, "// nabla f32 graph, forward view", 32));
	ck_assert_ptr_nonnull(strstr(out, "digraph nabla {"));
	ck_assert_ptr_nonnull(strstr(out, "[label=\"{conv1.w|param|[6,1,5,5]}\""));
	ck_assert_ptr_nonnull(strstr(out, "[label=\"{fc3|add|[1,10]}\""));
	ck_assert_ptr_null(strstr(out, "#fb9a99\", tooltip")); /* no gradient node */
	ck_assert_ptr_null(strstr(out, "_update"));
	free(out);

	/* backward view: gradients and SGD updates, to a file, which `dot`
	 * accepts; the same bytes on stdout */
	snprintf(path, sizeof path, "%s/lenet.dot", tmpdir);
	snprintf(args, sizeof args, "dot --model lenet --backward -o %s", path);
	free(output_of(args));
	char *file = nb_test_read_file(path);
	ck_assert(!strncmp(file, "// nabla f32 graph, backward view", 33));
	ck_assert_ptr_nonnull(strstr(file, "|sgd_update"));
	ck_assert_ptr_nonnull(strstr(file, "fillcolor=\"#fb9a99\", tooltip=\"gradient\""));
	ck_assert_ptr_nonnull(strstr(file, "style=dashed"));
	out = output_of("dot --model lenet --backward");
	ck_assert_str_eq(out, file);
	free(out);
	free(file);
	if (have_dot()) {
		char cmd[512];
		snprintf(cmd, sizeof cmd, "/usr/bin/dot -Tsvg %s 2>&1", path);
		ck_assert_int_eq(run(cmd, &out), 0);
		ck_assert_ptr_nonnull(strstr(out, "<svg"));
		ck_assert_ptr_nonnull(strstr(out, "sgd_update"));
		free(out);
	}

	/* the notes' models, another optimizer */
	expect("dot --model xor --backward --optim adam", 0, "{hidden.w|param|[2,2]}",
	       "{hidden.w.m|state|[2,2]}", "|adam_update", NULL);
	expect("dot --model backprop-example", 0, "{w_hidden|param|[2,2]}", "{y5|logsig", NULL);

	/* rendering through libgvc, the format from the suffix or --format */
#if NABLA_HAVE_GVC
	snprintf(path, sizeof path, "%s/xor.svg", tmpdir);
	snprintf(args, sizeof args, "dot --model xor --backward -o %s", path);
	free(output_of(args));
	file = nb_test_read_file(path);
	ck_assert_ptr_nonnull(strstr(file, "<svg"));
	ck_assert_ptr_nonnull(strstr(file, "hidden.w"));
	free(file);
	expect("dot --model xor --format svg", 0, "<svg", NULL);
	snprintf(path, sizeof path, "%s/xor.out", tmpdir);
	snprintf(args, sizeof args, "dot --model xor --format png -o %s", path);
	free(output_of(args));
	file = nb_test_read_file(path);
	ck_assert(!memcmp(file, "\x89PNG", 4));
	free(file);
#else
	expect("dot --model xor --format svg", 2, "without Graphviz's libgvc", NULL);
#endif
	/* errors */
	expect("dot --model xor --format xyz", 2, "unknown --format 'xyz'", NULL);
	expect("dot --model xor --backward --optim lbfgs", 2, "unknown optimizer 'lbfgs'", NULL);
	expect("dot --model nope", 2, "unknown model 'nope'", NULL);
	expect("dot --model xor -o /nonexistent/dir/x.dot", 1,
	       "nabla dot: save_dot(/nonexistent/dir/x.dot): cannot open for writing", NULL);
	expect("dot --help", 0, "usage: nabla dot", "--backward", NULL);

	snprintf(args, sizeof args, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(args), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("layers");
	TCase *tc = tcase_create("layers");
	tcase_add_test(tc, test_notes_param_counts);
	tcase_add_test(tc, test_dense);
	tcase_add_test(tc, test_conv_layers);
	tcase_add_test(tc, test_basic_block_identity);
	tcase_add_test(tc, test_basic_block_option_a);
	tcase_add_test(tc, test_basic_block_option_b);
	tcase_add_test(tc, test_bottleneck_block);
	/* 0 identity, 1 option A, 2 option B, 3 bottleneck projection, 4 identity */
	tcase_add_loop_test(tc, test_block_gradcheck, 0, 5);
	tcase_add_test(tc, test_zoo_totals);
	tcase_add_test(tc, test_summary_lenet);
	tcase_add_test(tc, test_summary_renamed_and_plain);
	tcase_add_test(tc, test_summary_command);
	tcase_add_test(tc, test_dot_command);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
