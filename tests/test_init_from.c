/* nb_init_from: parameters from any safetensors file, PyTorch's names
 * mapped, checked before anything changes. */
#include "graph/internal.h" /* a failed graph's tensor data */
#include "test_util.h"

#include <unistd.h>

#define DATA NB_SOURCE_ROOT "/tests/data/"

/* tools/torch_fixture.py's network, built with nabla's layers under the
 * names the mapping turns into PyTorch's: x [n,1,28,28] -> logits [n,10] */
static nb_tensor *tiny(nb_graph *g, int64_t n, int64_t fc1_units, const char *conv2_name)
{
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(n, 1, 28, 28));
	nb_conv_layer_opts pad2 = {.conv = NB_CONV_OPTS(1, 2)};
	nb_tensor *h = nb_conv2d_layer(x, 4, 5, "conv1", pad2);
	h = nb_maxpool2d(nb_batchnorm_layer(h, "bn1", (nb_batchnorm_opts){.relu = true}), 2, 2, 0);
	h = nb_relu(nb_conv2d_layer(h, 8, 5, conv2_name, (nb_conv_layer_opts){0}));
	h = nb_flatten(nb_maxpool2d(h, 2, 2, 0));
	h = nb_relu(nb_dense(h, fc1_units, "fc1"));
	return nb_dense(h, 10, "fc2");
}

/* the fixture's inputs and PyTorch's logits */
static void torch_io(float x[4 * 784], float logits[40])
{
	nb_safetensors *f;
	char err[512];
	ck_assert_msg(nb_safetensors_open(DATA "torch_tiny_io.safetensors", &f, err, sizeof err) ==
	                  NB_OK,
	              "%s", err);
	int ix = nb_safetensors_find(f, "x"), il = nb_safetensors_find(f, "logits");
	ck_assert(ix >= 0 && il >= 0);
	ck_assert_int_eq(nb_safetensors_read(f, ix, x, 4 * 784 * sizeof(float)), NB_OK);
	ck_assert_int_eq(nb_safetensors_read(f, il, logits, 40 * sizeof(float)), NB_OK);
	nb_safetensors_free(f);
}

static void check_torch(nb_dtype dt)
{
	float x[4 * 784], want[40];
	torch_io(x, want);
	nb_graph *g = nb_graph_new(dt);
	nb_tensor *logits = tiny(g, 4, 16, "conv2");
	ck_graph_ok(g);
	nb_init_from_report r;
	ck_assert_msg(nb_init_from(g, DATA "torch_tiny.safetensors", &r) == NB_OK, "%s",
	              nb_graph_errmsg(g));
	ck_assert_int_eq(r.loaded, 12);  /* 10 parameters and 2 running statistics */
	ck_assert_int_eq(r.renamed, 10); /* all but the running statistics */
	ck_assert_int_eq(r.ignored, 1);  /* bn1.num_batches_tracked */
	nb_graph_set_training(g, false);
	ck_assert_int_eq(nb_feed_f32(nb_graph_find(g, "x"), x, 4 * 784), NB_OK);
	ck_assert_int_eq(nb_eval(logits), NB_OK);
	float got[40];
	ck_assert_int_eq(nb_read_f32(logits, got, 40), NB_OK);
	/* float32 sums in another order: agreement to a few ulps of the values */
	for (int i = 0; i < 40; i++)
		ck_assert_msg(fabsf(got[i] - want[i]) <= 2e-6f * (1 + fabsf(want[i])),
		              "logit %d: nabla %.9g, PyTorch %.9g", i, got[i], want[i]);
	for (int s = 0; s < 4; s++) { /* the same predicted classes */
		int a = 0, b = 0;
		for (int k = 1; k < 10; k++) {
			a = got[s * 10 + k] > got[s * 10 + a] ? k : a;
			b = want[s * 10 + k] > want[s * 10 + b] ? k : b;
		}
		ck_assert_int_eq(a, b);
	}
	nb_graph_free(g);
}

START_TEST(test_torch_predictions)
{
	check_torch(NB_F32);
}
END_TEST

START_TEST(test_torch_predictions_f64)
{
	check_torch(NB_F64); /* converted to f64 on load */
}
END_TEST

/* a tensor of the model the file lacks: the closest names of the file */
START_TEST(test_missing_name_suggests)
{
	nb_graph *g = nb_graph_new(NB_F32);
	tiny(g, 1, 16, "conv3");
	ck_graph_ok(g);
	ck_assert_int_eq(nb_init_from(g, DATA "torch_tiny.safetensors", NULL), NB_ERR_FORMAT);
	const char *m = nb_graph_errmsg(g);
	ck_assert_msg(strstr(m, "the model's parameter conv3.w [8,4,5,5] is not in the file "
	                        "(looked for conv3.w or conv3.weight); the closest names there: "
	                        "conv2.weight [8,4,5,5], conv1.weight [4,1,5,5], bn1.weight [4]"),
	              "%s", m);
	ck_assert_msg(strstr(m, "torch_tiny.safetensors"), "%s", m);
	nb_graph_free(g);
}
END_TEST

START_TEST(test_shape_differs)
{
	nb_graph *g = nb_graph_new(NB_F32);
	tiny(g, 1, 17, "conv2");
	ck_graph_ok(g);
	ck_assert_int_eq(nb_init_from(g, DATA "torch_tiny.safetensors", NULL), NB_ERR_SHAPE);
	ck_assert_msg(strstr(nb_graph_errmsg(g),
	                     "fc1.weight has shape [16,200], the model's fc1.w is [17,200]"),
	              "%s", nb_graph_errmsg(g));
	nb_graph_free(g);
}
END_TEST

/* ---- hand-written files ------------------------------------------------- */

static char tmpdir[64];

static void setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/nb_init_from_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* a safetensors file: header JSON (without padding) and the data */
static const char *write_st(const char *name, const char *header, const void *data, size_t n)
{
	static char path[128];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	FILE *fp = fopen(path, "wb");
	ck_assert_ptr_nonnull(fp);
	uint64_t len = strlen(header);
	unsigned char b8[8];
	for (int i = 0; i < 8; i++)
		b8[i] = (unsigned char)(len >> (8 * i));
	ck_assert_int_eq(fwrite(b8, 1, 8, fp), 8);
	ck_assert_int_eq(fwrite(header, 1, len, fp), len);
	ck_assert_int_eq(fwrite(data, 1, n, fp), n);
	fclose(fp);
	return path;
}

/* a dense layer "fc" of 2 units on 2 inputs: fc.w [2,2], fc.b [2] */
static nb_graph *dense_graph(nb_tensor **w, nb_tensor **b)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_dense(nb_input(g, "x", NB_SHAPE(1, 2)), 2, "fc");
	*w = nb_graph_find(g, "fc.w");
	*b = nb_graph_find(g, "fc.b");
	ck_graph_ok(g);
	return g;
}

static void read4(nb_tensor *w, float out[4])
{
	ck_assert_int_eq(nb_read_f32(w, out, 4), NB_OK);
}

/* F16 and BF16 are converted; "module." prefixes are dropped */
START_TEST(test_half_bf16_module_prefix)
{
	/* F16 1, -2, 0.5, 65504; BF16 3, -0.25 */
	const uint16_t d[6] = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x4040, 0xbe80};
	const char *p = write_st(
	    "h.st",
	    "{\"module.fc.weight\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
	    "\"module.fc.bias\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]}}",
	    d, sizeof d);
	nb_tensor *w, *b;
	nb_graph *g = dense_graph(&w, &b);
	nb_init_from_report r;
	ck_assert_msg(nb_init_from(g, p, &r) == NB_OK, "%s", nb_graph_errmsg(g));
	ck_assert_int_eq(r.loaded, 2);
	ck_assert_int_eq(r.renamed, 2);
	ck_assert_int_eq(r.ignored, 0);
	float v[4], c[2];
	read4(w, v);
	ck_assert(v[0] == 1 && v[1] == -2 && v[2] == 0.5f && v[3] == 65504);
	ck_assert_int_eq(nb_read_f32(b, c, 2), NB_OK);
	ck_assert(c[0] == 3 && c[1] == -0.25f);
	nb_graph_free(g);
}
END_TEST

/* nabla's own name wins over the PyTorch one; the other is ignored */
START_TEST(test_exact_name_first)
{
	const float d[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	const char *p =
	    write_st("e.st",
	             "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
	             "\"fc.w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,32]},"
	             "\"fc.b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[32,40]}}",
	             d, sizeof d);
	nb_tensor *w, *b;
	nb_graph *g = dense_graph(&w, &b);
	nb_init_from_report r;
	ck_assert_msg(nb_init_from(g, p, &r) == NB_OK, "%s", nb_graph_errmsg(g));
	ck_assert(r.loaded == 2 && r.renamed == 0 && r.ignored == 1);
	float v[4];
	read4(w, v);
	ck_assert(v[0] == 5 && v[3] == 8);
	nb_graph_free(g);
}
END_TEST

/* a refused file changes nothing: the first tensor fits, the second not */
static void refused(const char *name, const char *header, const void *d, size_t n, nb_status want,
                    const char *msg)
{
	const char *p = write_st(name, header, d, n);
	nb_tensor *w, *b;
	nb_graph *g = dense_graph(&w, &b);
	float before[4], after[4];
	read4(w, before);
	ck_assert_int_eq(nb_init_from(g, p, NULL), want);
	ck_assert_msg(strstr(nb_graph_errmsg(g), msg), "%s", nb_graph_errmsg(g));
	/* the error is sticky on the graph; its parameter is the old one */
	memcpy(after, w->data, sizeof after);
	ck_assert(!memcmp(before, after, sizeof before));
	nb_graph_free(g);
}

START_TEST(test_refusals)
{
	const float d[6] = {1, 2, 3, 4, NAN, 6};
	refused("nan.st",
	        "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
	        "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}",
	        d, sizeof d, NB_ERR_VALUE,
	        "fc.bias: element 0 is NaN; the model's fc.b must be finite");
	/* finite in F64, infinite once rounded to the f32 graph's type */
	const double big[6] = {1, 2, 3, 4, 1e300, 6};
	refused(
	    "big.st",
	    "{\"fc.weight\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]},"
	    "\"fc.bias\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[32,48]}}",
	    big, sizeof big, NB_ERR_VALUE,
	    "fc.bias: element 0 is 1e+300, beyond float32's range; the model's fc.b is float32");
	refused("int.st",
	        "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
	        "\"fc.bias\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[16,32]}}",
	        (const char[32]){0}, 32, NB_ERR_DTYPE,
	        "fc.bias (for the model's fc.b) is I64; nabla reads F32, F64, F16 and BF16");
	refused("twice.st",
	        "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
	        "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}",
	        (const char[28]){0}, 28, NB_ERR_SHAPE,
	        "fc.bias has shape [3], the model's fc.b is [2]");
	/* the reader's validation: a range past the data */
	refused("short.st",
	        "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
	        (const char[8]){0}, 8, NB_ERR_FORMAT, "short.st");
	/* a control character in a file's name is not printed */
	refused("ctl.st",
	        "{\"fc.w\\u001b[2J\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
	        (const char[16]){0}, 16, NB_ERR_FORMAT, "the closest names there: fc.w?[2J [2,2]");
}
END_TEST

/* a nabla checkpoint (with optimizer state) initialises another graph */
START_TEST(test_nabla_checkpoint)
{
	nb_tensor *w, *b, *w2, *b2;
	nb_graph *g = dense_graph(&w, &b);
	nb_tensor *loss = nb_mean(nb_graph_find(g, "fc"));
	nb_optim *o = nb_adam(g, loss, (nb_adam_opts){.lr = 0.1});
	ck_assert_int_eq(nb_feed_f32(nb_graph_find(g, "x"), (float[]){1, 2}, 2), NB_OK);
	ck_assert_int_eq(nb_step(o), NB_OK);
	char path[128];
	snprintf(path, sizeof path, "%s/ck.st", tmpdir);
	ck_assert_int_eq(nb_checkpoint_save(g, o, path, "m"), NB_OK);
	nb_graph *g2 = dense_graph(&w2, &b2);
	nb_init_from_report r;
	ck_assert_msg(nb_init_from(g2, path, &r) == NB_OK, "%s", nb_graph_errmsg(g2));
	ck_assert(r.loaded == 2 && r.renamed == 0 && r.ignored == 4); /* Adam's m and v */
	float u[4], v[4];
	read4(w, u);
	read4(w2, v);
	ck_assert(!memcmp(u, v, sizeof u));
	nb_graph_free(g);
	nb_graph_free(g2);
}
END_TEST

START_TEST(test_bad_arguments)
{
	ck_assert_int_eq(nb_init_from(NULL, "x", NULL), NB_ERR_ARG);
	nb_tensor *w, *b;
	nb_graph *g = dense_graph(&w, &b);
	ck_assert_int_eq(nb_init_from(g, "", NULL), NB_ERR_ARG);
	nb_graph_free(g);
	g = dense_graph(&w, &b);
	ck_assert_int_eq(nb_init_from(g, "/nonexistent/file.st", NULL), NB_ERR_IO);
	ck_assert_msg(strstr(nb_graph_errmsg(g), "/nonexistent/file.st"), "%s", nb_graph_errmsg(g));
	nb_graph_free(g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("init_from");
	TCase *t = tcase_create("torch");
	tcase_add_test(t, test_torch_predictions);
	tcase_add_test(t, test_torch_predictions_f64);
	tcase_add_test(t, test_missing_name_suggests);
	tcase_add_test(t, test_shape_differs);
	suite_add_tcase(s, t);
	TCase *h = tcase_create("files");
	tcase_add_checked_fixture(h, setup, teardown);
	tcase_add_test(h, test_half_bf16_module_prefix);
	tcase_add_test(h, test_exact_name_first);
	tcase_add_test(h, test_refusals);
	tcase_add_test(h, test_nabla_checkpoint);
	tcase_add_test(h, test_bad_arguments);
	suite_add_tcase(s, h);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
