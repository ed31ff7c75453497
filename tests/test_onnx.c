/* ONNX export without a runtime: arguments, training-only graphs, ops
 * without a mapping, atomic writes, names and the protobuf framing.  The
 * files are checked by the ONNX checker and ONNX Runtime in onnx_runtime.c. */
#include "test_util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[96];

static void make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/nbonnxtXXXXXX",
	         base && strlen(base) < 60 ? base : "/tmp");
	ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void remove_tmpdir(void)
{
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *in_tmp(const char *name)
{
	static char buf[4][192];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static unsigned char *slurp(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
	fseek(fp, 0, SEEK_END);
	long len = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	unsigned char *b = malloc((size_t)len + 1);
	ck_assert(b != NULL);
	ck_assert_int_eq(fread(b, 1, (size_t)len, fp), len);
	fclose(fp);
	*n = (size_t)len;
	return b;
}

static bool contains(const unsigned char *b, size_t n, const char *s)
{
	size_t k = strlen(s);
	for (size_t i = 0; i + k <= n; i++)
		if (!memcmp(b + i, s, k))
			return true;
	return false;
}

/* files in tmpdir whose name contains ".tmp." */
static int temporaries(void)
{
	DIR *d = opendir(tmpdir);
	ck_assert(d != NULL);
	int k = 0;
	for (struct dirent *e; (e = readdir(d));)
		k += strstr(e->d_name, ".tmp.") != NULL;
	closedir(d);
	return k;
}

#define ck_fails(call, want, text)                                                                 \
	do {                                                                                       \
		nb_status st_ = (call);                                                            \
		ck_assert_msg(st_ == (want), "%s returned %s, expected %s (%s)", #call,            \
		              nb_status_string(st_), nb_status_string(want), nb_graph_errmsg(g));  \
		ck_assert_msg(strstr(nb_graph_errmsg(g), (text)), "message \"%s\" lacks \"%s\"",   \
		              nb_graph_errmsg(g), (text));                                         \
		nb_graph_clear_error(g);                                                           \
	} while (0)

START_TEST(test_bad_arguments)
{
	make_tmpdir();
	nb_model *m, *other;
	m = nb_test_zoo("mlp", NB_F32, 2, 1);
	other = nb_test_zoo("mlp", NB_F32, 2, 1);
	nb_graph *g = nb_model_graph(m);
	const char *p = in_tmp("m.onnx");
	ck_assert_int_eq(
	    nb_onnx_save(NULL, (nb_tensor *[]){nb_model_logits(m)}, 1, p, (nb_onnx_opts){0}),
	    NB_ERR_ARG);
	ck_fails(nb_onnx_save(g, (nb_tensor *[]){nb_model_logits(m)}, 0, p, (nb_onnx_opts){0}),
	         NB_ERR_ARG, "no outputs");
	ck_fails(nb_onnx_save(g, NULL, 1, p, (nb_onnx_opts){0}), NB_ERR_ARG, "no outputs");
	ck_fails(nb_onnx_save(g, (nb_tensor *[]){nb_model_logits(m)}, 1, NULL, (nb_onnx_opts){0}),
	         NB_ERR_ARG, "no path");
	ck_fails(
	    nb_onnx_save(g, (nb_tensor *[]){nb_model_logits(m), NULL}, 2, p, (nb_onnx_opts){0}),
	    NB_ERR_ARG, "output 1 is NULL");
	ck_fails(nb_onnx_save(g, (nb_tensor *[]){nb_model_logits(other)}, 1, p, (nb_onnx_opts){0}),
	         NB_ERR_ARG, "not a tensor of this graph");
	ck_fails(nb_onnx_save(g, (nb_tensor *[]){nb_model_probs(m), nb_model_probs(m)}, 2, p,
	                      (nb_onnx_opts){0}),
	         NB_ERR_ARG, "output probs is listed twice");
	ck_assert_int_eq(access(p, F_OK), -1); /* nothing written */
	ck_assert_int_eq(temporaries(), 0);
	/* a failed graph exports nothing and keeps its error */
	nb_reshape(nb_model_input(m), NB_SHAPE(7));
	nb_status st = nb_graph_status(g);
	ck_assert_int_ne(st, NB_OK);
	ck_assert_int_eq(
	    nb_onnx_save(g, (nb_tensor *[]){nb_model_logits(m)}, 1, p, (nb_onnx_opts){0}), st);
	ck_assert_int_eq(access(p, F_OK), -1);
	nb_graph_free(nb_model_graph(m));
	nb_graph_free(nb_model_graph(other));
	remove_tmpdir();
}
END_TEST

/* A gradient, an optimizer's update and a tensor that no input reaches
 * have no inference path; an optimizer's helper has no mapping. */
START_TEST(test_no_inference_path)
{
	make_tmpdir();
	nb_model *m = nb_test_zoo("mlp", NB_F32, 2, 1);
	nb_graph *g = nb_model_graph(m);
	const char *p = in_tmp("m.onnx");
	nb_tensor *w = nb_graph_find(g, "fc1.w");
	nb_tensor *gw = nb_grad(nb_model_loss(m), w);
	ck_graph_ok(g);
	ck_fails(nb_onnx_save(g, &gw, 1, p, (nb_onnx_opts){0}), NB_ERR_GRAPH, "training-only");
	nb_tensor *wsum = nb_set_name(nb_sum(nb_square(w)), "l2");
	ck_fails(nb_onnx_save(g, &wsum, 1, p, (nb_onnx_opts){0}), NB_ERR_GRAPH,
	         "output l2 depends on no input, so there is no inference path");
	nb_tensor *norm = nb_global_norm((nb_tensor *[]){nb_model_logits(m)}, 1);
	ck_fails(nb_onnx_save(g, &norm, 1, p, (nb_onnx_opts){0}), NB_ERR_FORMAT,
	         "has no ONNX mapping: it belongs to training");
	ck_fails(nb_onnx_save(g, (nb_tensor *[]){nb_model_probs(m), norm}, 2, p, (nb_onnx_opts){0}),
	         NB_ERR_FORMAT, "no ONNX mapping");
	ck_assert_int_eq(access(p, F_OK), -1);
	ck_assert_int_eq(temporaries(), 0);
	/* the forward tensors still export */
	ck_assert_int_eq(
	    nb_onnx_save(g, (nb_tensor *[]){nb_model_probs(m)}, 1, p, (nb_onnx_opts){0}), NB_OK);
	ck_assert_int_eq(access(p, F_OK), 0);
	nb_graph_free(nb_model_graph(m));
	remove_tmpdir();
}
END_TEST

/* The op without a mapping is named in the message, with its tensor; a
 * loss has one (a scalar fixes the batch). */
START_TEST(test_unmapped_op_named)
{
	make_tmpdir();
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 3)), *y = nb_input(g, "y", NB_SHAPE(2, 3));
	nb_tensor *n = nb_set_name(nb_global_norm((nb_tensor *[]){x, y}, 2), "the_norm");
	ck_fails(nb_onnx_save(g, &n, 1, in_tmp("l.onnx"), (nb_onnx_opts){0}), NB_ERR_FORMAT,
	         "op global_norm (computing the_norm) has no ONNX mapping");
	ck_assert_int_eq(access(in_tmp("l.onnx"), F_OK), -1);
	nb_tensor *l = nb_mse(x, y, NB_MEAN);
	nb_onnx_report r;
	ck_assert_int_eq(nb_onnx_save(g, &l, 1, in_tmp("l.onnx"), (nb_onnx_opts){.report = &r}),
	                 NB_OK);
	ck_assert(!r.dynamic_batch);
	ck_assert_int_eq(r.inputs, 2);
	nb_graph_free(g);
	remove_tmpdir();
}
END_TEST

/* A failed export leaves the file it would have replaced as it was, and no
 * temporary file. */
START_TEST(test_atomic)
{
	make_tmpdir();
	nb_model *m = nb_test_zoo("mlp-binary-sigmoid", NB_F32, 2, 1);
	nb_graph *g = nb_model_graph(m);
	const char *p = in_tmp("model.onnx");
	ck_assert_int_eq(
	    nb_onnx_save(g, (nb_tensor *[]){nb_model_probs(m)}, 1, p, (nb_onnx_opts){0}), NB_OK);
	size_t n0, n1;
	unsigned char *before = slurp(p, &n0);
	nb_tensor *norm = nb_global_norm((nb_tensor *[]){nb_model_logits(m)}, 1);
	ck_fails(nb_onnx_save(g, &norm, 1, p, (nb_onnx_opts){0}), NB_ERR_FORMAT, "no ONNX mapping");
	unsigned char *after = slurp(p, &n1);
	ck_assert(n0 == n1 && !memcmp(before, after, n0));
	free(after);
	/* a target that is not a regular file is left alone */
	const char *dir = in_tmp("adir"), *fifo = in_tmp("fifo");
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_fails(nb_onnx_save(g, (nb_tensor *[]){nb_model_probs(m)}, 1, dir, (nb_onnx_opts){0}),
	         NB_ERR_IO, "not a regular file");
	struct stat sb;
	ck_assert(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));
	ck_assert_int_eq(mkfifo(fifo, 0644), 0);
	ck_fails(nb_onnx_save(g, (nb_tensor *[]){nb_model_probs(m)}, 1, fifo, (nb_onnx_opts){0}),
	         NB_ERR_IO, "not a regular file");
	ck_assert(stat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
	/* a directory that cannot exist: a regular file on the path */
	char bad[256];
	snprintf(bad, sizeof bad, "%s/sub.onnx", p);
	ck_fails(nb_onnx_save(g, (nb_tensor *[]){nb_model_probs(m)}, 1, bad, (nb_onnx_opts){0}),
	         NB_ERR_IO, bad);
	ck_assert_int_eq(temporaries(), 0);
	after = slurp(p, &n1);
	ck_assert(n0 == n1 && !memcmp(before, after, n0));
	/* exporting the same graph twice gives the same bytes */
	ck_assert_int_eq(
	    nb_onnx_save(g, (nb_tensor *[]){nb_model_probs(m)}, 1, p, (nb_onnx_opts){0}), NB_OK);
	free(after);
	after = slurp(p, &n1);
	ck_assert(n0 == n1 && !memcmp(before, after, n0));
	free(before);
	free(after);
	nb_graph_free(nb_model_graph(m));
	remove_tmpdir();
}
END_TEST

/* An f64 graph written as FLOAT: a finite weight beyond float32's range
 * would become inf in the file; refused (the old file kept), and written
 * as DOUBLE with keep_f64. */
START_TEST(test_f64_beyond_float)
{
	make_tmpdir();
	nb_model *m = nb_test_zoo("mlp-binary-sigmoid", NB_F64, 2, 1);
	nb_graph *g = nb_model_graph(m);
	nb_tensor *out[] = {nb_model_probs(m)};
	const char *p = in_tmp("model.onnx");
	nb_onnx_report rep;
	ck_assert_int_eq(nb_onnx_save(g, out, 1, p, (nb_onnx_opts){.report = &rep}), NB_OK);
	ck_assert(isfinite(rep.cast_max_rel));
	size_t n0, n1;
	unsigned char *before = slurp(p, &n0);
	nb_tensor *w = NULL;
	for (int i = 0; i < nb_graph_num_params(g) && !w; i++)
		if (nb_tensor_size(nb_graph_param(g, i)) > 1)
			w = nb_graph_param(g, i);
	ck_assert(w != NULL);
	((double *)nb_data(w))[1] = 4e38; /* FLT_MAX is 3.4e38 */
	char want[96];
	snprintf(want, sizeof want, "%s: element 1 is 4e+38, beyond float32's range",
	         nb_tensor_name(w));
	ck_fails(nb_onnx_save(g, out, 1, p, (nb_onnx_opts){0}), NB_ERR_VALUE, want);
	unsigned char *after = slurp(p, &n1);
	ck_assert(n0 == n1 && !memcmp(before, after, n0));
	ck_assert_int_eq(temporaries(), 0);
	ck_assert_int_eq(nb_onnx_save(g, out, 1, p, (nb_onnx_opts){.keep_f64 = true}), NB_OK);
	free(before);
	free(after);
	nb_graph_free(g);
	remove_tmpdir();
}
END_TEST

/* Names: kept when valid, other bytes replaced, clashes numbered. */
START_TEST(test_names)
{
	make_tmpdir();
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "my input", NB_SHAPE(2, 3));
	nb_tensor *w = nb_param(g, "layer.w\"", NB_SHAPE(3, 3), NB_ONES);
	nb_tensor *y = nb_set_name(nb_matmul(x, w), "my_input");
	nb_tensor *z = nb_set_name(nb_relu(y), "out/relu:0");
	nb_onnx_report r;
	const char *p = in_tmp("n.onnx");
	ck_assert_int_eq(nb_onnx_save(g, (nb_tensor *[]){z, y}, 2, p, (nb_onnx_opts){.report = &r}),
	                 NB_OK);
	size_t n;
	unsigned char *b = slurp(p, &n);
	ck_assert(contains(b, n, "my_input_2"));
	ck_assert(contains(b, n, "out/relu:0"));
	ck_assert(contains(b, n, "layer.w_"));
	ck_assert(!contains(b, n, "my input"));
	ck_assert(!contains(b, n, "layer.w\""));
	ck_assert(r.dynamic_batch);
	ck_assert_int_eq(r.inputs, 1);
	ck_assert_int_eq(r.outputs, 2);
	ck_assert_int_eq(r.initializers, 1);
	ck_assert_int_eq(r.weights, 9);
	ck_assert_int_eq(r.bytes, n);
	free(b);
	nb_graph_free(g);
	remove_tmpdir();
}
END_TEST

/* Protobuf framing: the file is a sequence of well-formed fields (keys,
 * varints, lengths within the file) holding ir_version 7, the producer,
 * one graph and the opset import {"" 13}. */
static uint64_t varint(const unsigned char *b, size_t n, size_t *i)
{
	uint64_t v = 0;
	for (int s = 0; s < 64; s += 7) {
		ck_assert(*i < n);
		unsigned char c = b[(*i)++];
		v |= (uint64_t)(c & 0x7f) << s;
		if (!(c & 0x80))
			return v;
	}
	ck_abort_msg("varint too long");
	return 0;
}

START_TEST(test_framing)
{
	make_tmpdir();
	nb_model *m = nb_test_zoo("lenet", NB_F32, 2, 1);
	const char *p = in_tmp("lenet.onnx");
	ck_assert_int_eq(nb_onnx_save(nb_model_graph(m), (nb_tensor *[]){nb_model_probs(m)}, 1, p,
	                              (nb_onnx_opts){0}),
	                 NB_OK);
	size_t n, i = 0;
	unsigned char *b = slurp(p, &n);
	int graphs = 0;
	int64_t ir = 0, opset = 0;
	while (i < n) {
		uint64_t key = varint(b, n, &i);
		int field = (int)(key >> 3), wt = (int)(key & 7);
		if (wt == 0) {
			uint64_t v = varint(b, n, &i);
			if (field == 1)
				ir = (int64_t)v;
			continue;
		}
		ck_assert_int_eq(wt, 2);
		uint64_t len = varint(b, n, &i);
		ck_assert(len <= n - i);
		if (field == 7)
			graphs++;
		if (field == 2)
			ck_assert(len == 5 && !memcmp(b + i, "nabla", 5));
		if (field == 8) { /* OperatorSetIdProto: domain "" and version */
			size_t j = i;
			while (j < i + len) {
				uint64_t k = varint(b, i + len, &j);
				if ((k & 7) == 0) {
					uint64_t v = varint(b, i + len, &j);
					if (k >> 3 == 2)
						opset = (int64_t)v;
				} else {
					uint64_t l = varint(b, i + len, &j);
					ck_assert_int_eq(l, 0); /* the default domain */
					j += l;
				}
			}
		}
		i += len;
	}
	ck_assert_int_eq(i, n);
	ck_assert_int_eq(ir, 7);
	ck_assert_int_eq(opset, 13);
	ck_assert_int_eq(graphs, 1);
	free(b);
	nb_graph_free(nb_model_graph(m));
	remove_tmpdir();
}
END_TEST

/* Exporting leaves the graph as it was: the mode, and what a run gives. */
START_TEST(test_graph_untouched)
{
	make_tmpdir();
	nb_model *m = nb_test_zoo("resnet20", NB_F32, 2, 1);
	nb_graph *g = nb_model_graph(m);
	ck_assert(nb_graph_training(g));
	float *x = malloc(sizeof(float) * 2 * 3 * 32 * 32);
	for (int i = 0; i < 2 * 3 * 32 * 32; i++)
		x[i] = (float)((i * 37) % 101) / 101.0f;
	nb_feed_f32(nb_model_input(m), x, 2 * 3 * 32 * 32);
	nb_graph_set_training(g, false);
	float a[20], c[20];
	ck_assert_int_eq(nb_eval(nb_model_probs(m)), NB_OK);
	nb_read_f32(nb_model_probs(m), a, 20);
	nb_graph_set_training(g, true);
	ck_assert_int_eq(nb_onnx_save(g, (nb_tensor *[]){nb_model_probs(m)}, 1, in_tmp("r.onnx"),
	                              (nb_onnx_opts){0}),
	                 NB_OK);
	ck_assert(nb_graph_training(g));
	nb_graph_set_training(g, false);
	ck_assert_int_eq(nb_eval(nb_model_probs(m)), NB_OK);
	nb_read_f32(nb_model_probs(m), c, 20);
	ck_assert(!memcmp(a, c, sizeof a));
	free(x);
	nb_graph_free(nb_model_graph(m));
	remove_tmpdir();
}
END_TEST

/* A fixed batch when asked, or when an op works across the batch. */
START_TEST(test_static_batch)
{
	make_tmpdir();
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(3, 4));
	nb_tensor *y = nb_relu(x), *s = nb_set_name(nb_sum(x), "total");
	nb_onnx_report r;
	nb_onnx_opts o = {.report = &r};
	ck_assert_int_eq(nb_onnx_save(g, &y, 1, in_tmp("a.onnx"), o), NB_OK);
	ck_assert(r.dynamic_batch);
	o.static_batch = true;
	ck_assert_int_eq(nb_onnx_save(g, &y, 1, in_tmp("a.onnx"), o), NB_OK);
	ck_assert(!r.dynamic_batch);
	o.static_batch = false;
	ck_assert_int_eq(nb_onnx_save(g, (nb_tensor *[]){y, s}, 2, in_tmp("a.onnx"), o), NB_OK);
	ck_assert(!r.dynamic_batch);
	ck_assert_msg(strstr(r.static_reason, "total (sum) reduces the batch dimension"), "%s",
	              r.static_reason);
	nb_graph_free(g);
	remove_tmpdir();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("onnx");
	TCase *tc = tcase_create("onnx");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_bad_arguments);
	tcase_add_test(tc, test_no_inference_path);
	tcase_add_test(tc, test_unmapped_op_named);
	tcase_add_test(tc, test_atomic);
	tcase_add_test(tc, test_f64_beyond_float);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_framing);
	tcase_add_test(tc, test_graph_untouched);
	tcase_add_test(tc, test_static_batch);
	suite_add_tcase(s, tc);
	return nb_test_run(s);
}
