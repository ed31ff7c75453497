/* Checkpoints: safetensors reader, save/load round trips, clear errors,
 * atomic saves under SIGKILL, bit-identical resume. */
#include "test_util.h"

#include "io/safetensors.h"

#include <dirent.h>
#include <float.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/nb_ckpt_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(tmpdir);
}

static const char *tpath(const char *name)
{
	static char p[4][400];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
	return p[k];
}

/* number of entries in tmpdir whose name starts with prefix */
static int count_files(const char *prefix)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d)))
		n += !strncmp(e->d_name, prefix, strlen(prefix));
	if (d)
		closedir(d);
	return n;
}

/* A safetensors image: 8-byte length, the JSON as given, the data. */
static unsigned char *image(const char *json, const void *data, size_t dlen, size_t *len)
{
	size_t h = strlen(json);
	unsigned char *b = malloc(8 + h + dlen + 1);
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)h >> (8 * i));
	memcpy(b + 8, json, h);
	if (dlen)
		memcpy(b + 8 + h, data, dlen);
	*len = 8 + h + dlen;
	return b;
}

/* parse json+data; assert status st and that the message contains want */
static void parse_expect(const char *json, size_t dlen, nb_status st, const char *want)
{
	static const unsigned char zeros[4096];
	size_t len;
	unsigned char *b = image(json, zeros, dlen, &len);
	nb_safetensors *f = (nb_safetensors *)1;
	char err[512] = "";
	nb_status got = nb_safetensors_parse(b, len, &f, err, sizeof err);
	ck_assert_msg(got == st, "%s: status %d, expected %d (%s)", json, got, st, err);
	if (st) {
		ck_assert_ptr_null(f);
		ck_assert_msg(strstr(err, want), "%s: message \"%s\" lacks \"%s\"", json, err,
		              want);
		ck_assert_msg(!strncmp(err, "<buffer>: ", 10), "message names no source: %s", err);
	}
	nb_safetensors_free(f);
	free(b);
}

/* A small model: two params and a state leaf, values from a seed. */
typedef struct model {
	nb_graph *g;
	nb_tensor *w, *b, *m;
} model;

static model small_model(nb_dtype dt, uint64_t seed)
{
	model M;
	M.g = nb_graph_new(dt);
	nb_graph_seed(M.g, seed);
	M.w = nb_param(M.g, "fc1.w", NB_SHAPE(3, 4), NB_NORMAL(0, 1));
	M.b = nb_param(M.g, "fc1.b", NB_SHAPE(4), NB_UNIFORM(-1, 1));
	M.m = nb__state_like(M.w, "m");
	nb_init_tensor(M.m, NB_NORMAL(0, 1));
	ck_graph_ok(M.g);
	return M;
}

static void ck_same_data(nb_tensor *a, nb_tensor *b)
{
	ck_assert_int_eq(nb_tensor_size(a), nb_tensor_size(b));
	size_t es = nb_graph_dtype(nb_tensor_graph(a)) == NB_F64 ? 8 : 4;
	ck_assert_msg(!memcmp(nb_data(a), nb_data(b), (size_t)nb_tensor_size(a) * es),
	              "%s differs after the round trip", nb_tensor_name(a));
}

/* ---- round trips ------------------------------------------------------------ */

START_TEST(test_roundtrip)
{
	make_tmpdir();
	for (int dt = 0; dt < 2; dt++) {
		nb_dtype d = dt ? NB_F64 : NB_F32;
		model A = small_model(d, 1), B = small_model(d, 2);
		const char *p = tpath(dt ? "f64.safetensors" : "f32.safetensors");
		uint64_t draw_a = 0, draw_b = 0;
		ck_assert_int_eq(nb_checkpoint_save(A.g, NULL, p, "tiny mlp"), NB_OK);
		ck_assert_int_eq(count_files(dt ? "f64.safetensors.tmp" : "f32.safetensors.tmp"),
		                 0);
		char name[64];
		ck_assert_int_eq(nb_checkpoint_load(B.g, NULL, p, name, sizeof name), NB_OK);
		ck_graph_ok(B.g);
		ck_assert_str_eq(name, "tiny mlp");
		ck_same_data(A.w, B.w);
		ck_same_data(A.b, B.b);
		ck_same_data(A.m, B.m);
		/* the RNG continues where A's was */
		draw_a = nb__rng_next(A.g), draw_b = nb__rng_next(B.g);
		ck_assert_uint_eq(draw_a, draw_b);
		nb_graph_free(A.g);
		nb_graph_free(B.g);
	}
	remove_tmpdir();
}
END_TEST

/* the lister sees names, dtypes, shapes in data order, and the metadata */
START_TEST(test_reader_lists_tensors)
{
	make_tmpdir();
	model A = small_model(NB_F64, 3);
	const char *p = tpath("m.safetensors");
	const char *extra[] = {"epoch", "7", "note", "quote \" and \\ and\nnewline"};
	ck_assert_int_eq(nb_checkpoint_save_opts(A.g, NULL, p, "m",
	                                         (nb_checkpoint_opts){.meta = extra, .n_meta = 2}),
	                 NB_OK);
	nb_safetensors *f;
	char err[256];
	ck_assert_int_eq(nb_safetensors_open(p, &f, err, sizeof err), NB_OK);
	ck_assert_int_eq(nb_safetensors_count(f), 3);
	const char *names[] = {"fc1.w", "fc1.b", "fc1.w.m"}; /* graph order = data order */
	int64_t sizes[] = {12, 4, 12};
	uint64_t off = 0;
	for (int i = 0; i < 3; i++) {
		nb_safetensors_info in;
		ck_assert_int_eq(nb_safetensors_tensor(f, i, &in), NB_OK);
		ck_assert_str_eq(in.name, names[i]);
		ck_assert_str_eq(in.dtype, "F64");
		ck_assert_uint_eq(in.begin, off);
		ck_assert_uint_eq(in.end, off + (uint64_t)sizes[i] * 8);
		off = in.end;
		ck_assert_int_eq(nb_safetensors_find(f, names[i]), i);
	}
	nb_safetensors_info in;
	nb_safetensors_tensor(f, 0, &in);
	ck_assert_int_eq(in.ndim, 2);
	ck_assert_int_eq(in.shape[0], 3);
	ck_assert_int_eq(in.shape[1], 4);
	double w[12];
	ck_assert_int_eq(nb_safetensors_read(f, 0, w, sizeof w), NB_OK);
	for (int i = 0; i < 12; i++)
		ck_assert(w[i] == ((double *)nb_data(A.w))[i]);
	ck_assert_int_eq(nb_safetensors_read(f, 0, w, 8), NB_ERR_ARG); /* wrong size */
	ck_assert_int_eq(nb_safetensors_find(f, "nope"), -1);
	ck_assert_str_eq(nb_safetensors_meta(f, "format"), "nabla");
	ck_assert_str_eq(nb_safetensors_meta(f, "nabla_version"), nb_version());
	ck_assert_str_eq(nb_safetensors_meta(f, "model"), "m");
	ck_assert_str_eq(nb_safetensors_meta(f, "dtype"), "F64");
	ck_assert_str_eq(nb_safetensors_meta(f, "epoch"), "7");
	ck_assert_str_eq(nb_safetensors_meta(f, "note"), "quote \" and \\ and\nnewline");
	ck_assert_ptr_null(nb_safetensors_meta(f, "step")); /* no optimizer given */
	ck_assert_uint_eq(strlen(nb_safetensors_meta(f, "rng")), 67);
	ck_assert_str_eq(nb_safetensors_meta_key(f, 0), "format");
	ck_assert_int_eq(nb_safetensors_num_meta(f), 7);
	nb_safetensors_free(f);
	/* the data starts 8-aligned: header padded with spaces */
	FILE *fp = fopen(p, "rb");
	unsigned char b8[8];
	ck_assert_uint_eq(fread(b8, 1, 8, fp), 8);
	fclose(fp);
	ck_assert_uint_eq(b8[0] % 8, 0);
	nb_graph_free(A.g);
	remove_tmpdir();
}
END_TEST

START_TEST(test_save_errors)
{
	make_tmpdir();
	model A = small_model(NB_F32, 1);
	const char *bad[] = {"step", "3"};
	ck_assert_int_eq(nb_checkpoint_save_opts(A.g, NULL, tpath("x"), NULL,
	                                         (nb_checkpoint_opts){.meta = bad, .n_meta = 1}),
	                 NB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(A.g), "\"step\" is reserved"));
	nb_graph_clear_error(A.g);
	/* a directory that does not exist: I/O error, nothing left behind */
	ck_assert_int_eq(nb_checkpoint_save(A.g, NULL, tpath("no/such/dir.st"), NULL), NB_ERR_IO);
	ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(A.g), "no/such/dir.st"));
	nb_graph_clear_error(A.g);
	/* a FIFO (or a device) is not replaced by the rename */
	ck_assert_int_eq(mkfifo(tpath("fifo"), 0644), 0);
	ck_assert_int_eq(nb_checkpoint_save(A.g, NULL, tpath("fifo"), NULL), NB_ERR_IO);
	ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(A.g), "not a regular file"));
	struct stat sb;
	ck_assert(stat(tpath("fifo"), &sb) == 0 && S_ISFIFO(sb.st_mode));
	ck_assert_int_eq(unlink(tpath("fifo")), 0);
	nb_graph_clear_error(A.g);
	/* two parameters with one name cannot be made (nb_param refuses the
	 * second); a state tensor named as a parameter cannot be told apart */
	ck_assert(nb__is_placeholder(nb_param(A.g, "fc1.b", NB_SHAPE(2), NB_ZEROS)));
	ck_assert_int_eq(nb_graph_status(A.g), NB_ERR_ARG);
	ck_assert_ptr_nonnull(
	    strstr(nb_graph_errmsg(A.g), "already has a parameter named 'fc1.b'"));
	nb_graph_clear_error(A.g);
	nb__leaf(A.g, NB_OP_CONST, NB_ROLE_STATE, "fc1.b", NB_SHAPE(2));
	ck_graph_ok(A.g);
	ck_assert_int_eq(nb_checkpoint_save(A.g, NULL, tpath("dup"), NULL), NB_ERR_GRAPH);
	ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(A.g), "tensors named \"fc1.b\""));
	ck_assert_int_eq(count_files(""), 2); /* only . and .. */
	nb_graph_free(A.g);
	remove_tmpdir();
}
END_TEST

/* ---- load errors against the graph ------------------------------------------ */

static void ck_errmsg(nb_graph *g, nb_status got, nb_status want, const char *text)
{
	ck_assert_msg(got == want, "status %d, expected %d: %s", got, want, nb_graph_errmsg(g));
	ck_assert_int_eq(nb_graph_status(g), want);
	ck_assert_msg(strstr(nb_graph_errmsg(g), text), "message \"%s\" lacks \"%s\"",
	              nb_graph_errmsg(g), text);
	nb_graph_clear_error(g);
}

START_TEST(test_load_mismatches)
{
	make_tmpdir();
	model A = small_model(NB_F32, 1);
	const char *p = tpath("a.safetensors");
	ck_assert_int_eq(nb_checkpoint_save(A.g, NULL, p, "a"), NB_OK);

	/* shape: the message names file, tensor and both shapes */
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *w = nb_param(g, "fc1.w", NB_SHAPE(2, 4), NB_ONES);
	nb_param(g, "fc1.b", NB_SHAPE(4), NB_ONES);
	nb__state_like(w, "m");
	char want[512];
	snprintf(want, sizeof want, "%s: fc1.w: checkpoint has [3,4], model has [2,4]", p);
	ck_errmsg(g, nb_checkpoint_load(g, NULL, p, NULL, 0), NB_ERR_SHAPE, want);
	/* nothing was changed by the failed load */
	ck_assert(((float *)nb_data(nb_graph_find(g, "fc1.b")))[0] == 1.0f);
	nb_graph_free(g);

	/* the model has a tensor the file lacks */
	g = nb_graph_new(NB_F32);
	w = nb_param(g, "fc1.w", NB_SHAPE(3, 4), NB_ONES);
	nb_param(g, "fc1.b", NB_SHAPE(4), NB_ONES);
	nb__state_like(w, "m");
	nb__state_like(w, "v");
	ck_errmsg(g, nb_checkpoint_load(g, NULL, p, NULL, 0), NB_ERR_FORMAT,
	          "the model's state tensor fc1.w.v is not in the checkpoint (1 tensor missing)");
	nb_graph_free(g);

	/* the file has a tensor the model lacks */
	g = nb_graph_new(NB_F32);
	nb_param(g, "fc1.w", NB_SHAPE(3, 4), NB_ONES);
	nb_param(g, "fc1.b", NB_SHAPE(4), NB_ONES);
	ck_errmsg(g, nb_checkpoint_load(g, NULL, p, NULL, 0), NB_ERR_FORMAT,
	          "tensor \"fc1.w.m\" in the checkpoint is not a parameter or state of the model");
	/* ... unless only the parameters are wanted */
	char name[8];
	ck_assert_int_eq(
	    nb_checkpoint_load_opts(g, NULL, p, name, sizeof name,
	                            (nb_checkpoint_opts){.flags = NB_CKPT_PARAMS_ONLY}),
	    NB_OK);
	ck_same_data(A.w, nb_graph_find(g, "fc1.w"));
	ck_assert_str_eq(name, "a");
	nb_graph_free(g);

	/* dtype: refused unless asked to convert */
	g = nb_graph_new(NB_F64);
	w = nb_param(g, "fc1.w", NB_SHAPE(3, 4), NB_ONES);
	nb_param(g, "fc1.b", NB_SHAPE(4), NB_ONES);
	nb__state_like(w, "m");
	ck_errmsg(g, nb_checkpoint_load(g, NULL, p, NULL, 0), NB_ERR_DTYPE,
	          "fc1.w: checkpoint has F32, model is F64 (load with NB_CKPT_CONVERT");
	ck_assert_int_eq(nb_checkpoint_load_opts(g, NULL, p, NULL, 0,
	                                         (nb_checkpoint_opts){.flags = NB_CKPT_CONVERT}),
	                 NB_OK);
	for (int i = 0; i < 12; i++)
		ck_assert(((double *)nb_data(w))[i] == (double)((float *)nb_data(A.w))[i]);
	/* and back: f64 -> f32 rounds to nearest */
	const char *p64 = tpath("b.safetensors");
	((double *)nb_data(w))[0] = 0.1;
	ck_assert_int_eq(nb_checkpoint_save(g, NULL, p64, NULL), NB_OK);
	ck_assert_int_eq(nb_checkpoint_load_opts(A.g, NULL, p64, NULL, 0,
	                                         (nb_checkpoint_opts){.flags = NB_CKPT_CONVERT}),
	                 NB_OK);
	ck_assert(((float *)nb_data(A.w))[0] == 0.1f);
	/* a finite f64 value beyond float32's range is refused, not made inf,
	 * and nothing changes (fc1.w is loaded before fc1.w.m would be) */
	((double *)nb_data(w))[1] = 0.25;
	((double *)nb_data(nb_graph_find(g, "fc1.w.m")))[5] = -1e300;
	ck_assert_int_eq(nb_checkpoint_save(g, NULL, p64, NULL), NB_OK);
	float before[12];
	memcpy(before, nb_data(A.w), sizeof before);
	ck_errmsg(A.g,
	          nb_checkpoint_load_opts(A.g, NULL, p64, NULL, 0,
	                                  (nb_checkpoint_opts){.flags = NB_CKPT_CONVERT}),
	          NB_ERR_VALUE, "fc1.w.m: element 5 is -1e+300, beyond float32's range");
	ck_assert(!memcmp(before, nb_data(A.w), sizeof before));
	nb_graph_free(g);

	/* missing file, and a file that is not safetensors */
	ck_errmsg(A.g, nb_checkpoint_load(A.g, NULL, tpath("none"), NULL, 0), NB_ERR_IO,
	          "none: cannot open: No such file or directory");
	FILE *fp = fopen(tpath("text"), "w");
	fputs("hello, world!\n", fp);
	fclose(fp);
	ck_errmsg(A.g, nb_checkpoint_load(A.g, NULL, tpath("text"), NULL, 0), NB_ERR_FORMAT,
	          "text: header length 8583909746840200552 is absurd");
	ck_errmsg(A.g, nb_checkpoint_load(A.g, NULL, tmpdir, NULL, 0), NB_ERR_IO,
	          "not a regular file");
	/* a FIFO with no writer: refused at once, the open does not block */
	ck_assert_int_eq(mkfifo(tpath("fifo"), 0600), 0);
	ck_errmsg(A.g, nb_checkpoint_load(A.g, NULL, tpath("fifo"), NULL, 0), NB_ERR_IO,
	          "fifo: not a regular file");
	nb_graph_free(A.g);
	remove_tmpdir();
}
END_TEST

/* ---- the parser on crafted headers --------------------------------------- */

START_TEST(test_parser_errors)
{
	static const unsigned char z[16];
	size_t len;
	nb_safetensors *f;
	char err[512];
	/* too short; length absurd; length beyond the file */
	ck_assert_int_eq(nb_safetensors_parse(z, 7, &f, err, sizeof err), NB_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err, "7 bytes is too short"));
	unsigned char big[16] = {0, 0, 0, 0, 0, 0, 0, 1};
	ck_assert_int_eq(nb_safetensors_parse(big, 16, &f, err, sizeof err), NB_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err, "header length 72057594037927936 is absurd"));
	unsigned char past[16] = {9};
	ck_assert_int_eq(nb_safetensors_parse(past, 16, &f, err, sizeof err), NB_ERR_FORMAT);
	ck_assert_ptr_nonnull(
	    strstr(err, "header length 9 runs past the end of the file (16 bytes)"));

	/* valid: empty, metadata only, padded, zero-size tensor, other dtypes */
	parse_expect("{}", 0, NB_OK, "");
	parse_expect("{\"__metadata__\":{}}    ", 0, NB_OK, "");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}", 0, NB_OK,
	             "");
	parse_expect("{\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,2]},"
	             "\"b\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[2,3]}}",
	             3, NB_OK, "");
	parse_expect("{\"\\u00e9\\ud83d\\ude00\\n\":{\"dtype\":\"U8\",\"shape\":[1],"
	             "\"data_offsets\":[0,1]}}",
	             1, NB_OK, "");

	/* JSON syntax */
	parse_expect(" {}", 0, NB_ERR_FORMAT, "header byte 0: the header must start with '{'");
	parse_expect("{", 0, NB_ERR_FORMAT, "expected a tensor name string, found the end");
	parse_expect("{}x", 0, NB_ERR_FORMAT, "header byte 2: unexpected 'x' after the header");
	parse_expect("{\"a\" {}}", 0, NB_ERR_FORMAT, "header byte 5: expected ':', found '{'");
	parse_expect("{\"a:{}}", 0, NB_ERR_FORMAT, "unterminated string");
	parse_expect("{\"a\\x\":{}}", 0, NB_ERR_FORMAT, "invalid escape \\x");
	parse_expect("{\"a\\ud800\":{}}", 0, NB_ERR_FORMAT, "high surrogate \\ud800 without a low");
	parse_expect("{\"a\\udc00\":{}}", 0, NB_ERR_FORMAT, "lone low surrogate");
	parse_expect("{\"a\\u00\":{}}", 0, NB_ERR_FORMAT, "\\u must be followed by 4 hex digits");
	parse_expect("{\"a\\u0000\":{}}", 0, NB_ERR_FORMAT, "NUL");
	parse_expect("{\"a\tb\":{}}", 0, NB_ERR_FORMAT, "control byte 0x09 inside a string");
	parse_expect("{\"\xc0\xaf\":{}}", 0, NB_ERR_FORMAT, "invalid UTF-8");
	parse_expect("{\"\xed\xa0\x80\":{}}", 0, NB_ERR_FORMAT, "invalid UTF-8");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4,
	             NB_ERR_FORMAT, "leading zero");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
	             NB_ERR_FORMAT, "shape must be a non-negative integer");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
	             NB_ERR_FORMAT, "shape must be a non-negative integer");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e],\"data_offsets\":[0,4]}}", 4,
	             NB_ERR_FORMAT, "expected a digit in the exponent");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,],\"data_offsets\":[0,4]}}", 4,
	             NB_ERR_FORMAT, "expected shape (a number), found ']'");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1 2],\"data_offsets\":[0,4]}}", 4,
	             NB_ERR_FORMAT, "expected ',' or ']' in shape, found '2'");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
	             "\"data_offsets\":[0,4]}}",
	             4, NB_ERR_FORMAT, "shape is too large");
	parse_expect("{\"a\":{},}", 0, NB_ERR_FORMAT, "field \"dtype\" is missing");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 4,
	             NB_ERR_FORMAT, "expected a tensor name string, found '}'");

	/* schema */
	parse_expect("{\"__metadata__\":{\"k\":1}}", 0, NB_ERR_FORMAT,
	             "__metadata__ value of \"k\" must be a string");
	parse_expect("{\"__metadata__\":{},\"__metadata__\":{}}", 0, NB_ERR_FORMAT,
	             "__metadata__ appears twice");
	parse_expect("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, NB_ERR_FORMAT,
	             "__metadata__ key \"k\" appears twice");
	parse_expect("{\"a\":[]}", 0, NB_ERR_FORMAT, "expected '{' (a tensor entry), found '['");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, NB_ERR_FORMAT,
	             "tensor \"a\": field \"data_offsets\" is missing");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", 0, NB_ERR_FORMAT,
	             "field \"dtype\" appears twice");
	parse_expect("{\"a\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
	             NB_ERR_FORMAT, "tensor \"a\": unknown dtype \"F17\"");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
	             NB_ERR_FORMAT, "tensor \"a\": unknown field \"x\"");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
	             NB_ERR_FORMAT, "data_offsets must be [begin, end]");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4,
	             NB_ERR_FORMAT, "data_offsets has more than 2 entries");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
	             8, NB_ERR_FORMAT, "tensor \"a\" appears twice");

	/* byte ranges */
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
	             NB_ERR_FORMAT,
	             "F32 with 2 elements needs 8 bytes, data_offsets [0, 4] hold 4");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
	             NB_ERR_FORMAT, "data_offsets [4, 0] end before they begin");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 4,
	             NB_ERR_FORMAT, "data_offsets [4, 8] run past the end of the data (4 bytes)");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
	             NB_ERR_FORMAT, "data bytes [0, 4) before tensor \"a\" belong to no tensor");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
	             8, NB_ERR_FORMAT, "tensors \"a\" and \"b\" overlap");
	parse_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6,
	             NB_ERR_FORMAT, "2 trailing bytes after the last tensor");
	parse_expect("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2,
	             NB_ERR_FORMAT, "3 elements of F4 are not a whole number of bytes");
	parse_expect("{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
	             "\"data_offsets\":[0,8]}}",
	             8, NB_ERR_FORMAT, "the shape's size overflows");

	/* a header limited to its length: bytes after it are data, not JSON */
	unsigned char *b = image("{}", "}", 1, &len);
	ck_assert_int_eq(nb_safetensors_parse(b, len, &f, err, sizeof err), NB_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err, "1 trailing bytes"));
	free(b);
	/* NULL arguments */
	ck_assert_int_eq(nb_safetensors_parse(NULL, 8, &f, NULL, 0), NB_ERR_ARG);
	ck_assert_int_eq(nb_safetensors_parse(z, 8, NULL, NULL, 0), NB_ERR_ARG);
}
END_TEST

/* A metadata value we restore must be well-formed. */
START_TEST(test_bad_metadata)
{
	make_tmpdir();
	model A = small_model(NB_F32, 1);
	const char *p = tpath("m.safetensors");
	ck_assert_int_eq(nb_checkpoint_save(A.g, NULL, p, NULL), NB_OK);
	/* rewrite the rng word in place with a zero state of the same length */
	FILE *fp = fopen(p, "r+b");
	char hdr[4096];
	size_t n = fread(hdr, 1, sizeof hdr - 1, fp);
	hdr[n] = 0;
	char *r = strstr(hdr + 8, "\"rng\":\""); /* the JSON has no NUL */
	ck_assert_ptr_nonnull(r);
	fseek(fp, r + 7 - hdr, SEEK_SET);
	fputs("0000000000000000,0000000000000000,0000000000000000,0000000000000000", fp);
	fclose(fp);
	ck_errmsg(A.g, nb_checkpoint_load(A.g, NULL, p, NULL, 0), NB_ERR_FORMAT,
	          "metadata rng \"0000000000000000,");
	nb_graph_free(A.g);
	remove_tmpdir();
}
END_TEST

/* ---- metadata values: strict numbers, escaped strings, the model name -------- */

/* A checkpoint file of a graph with one parameter "w" [2] (zeros), with the
 * metadata members given as JSON text (may be empty). */
static const char *meta_file(const char *meta)
{
	static const unsigned char zeros[8];
	char json[1024];
	snprintf(json, sizeof json,
	         "{\"__metadata__\":{%s},\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
	         "\"data_offsets\":[0,8]}}",
	         meta);
	size_t len;
	unsigned char *b = image(json, zeros, sizeof zeros, &len);
	const char *p = tpath("meta.safetensors");
	FILE *fp = fopen(p, "wb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(b, 1, len, fp), len);
	fclose(fp);
	free(b);
	return p;
}

/* w [2] = {1, 2}, loss sum(w^2), an SGD optimizer */
static nb_graph *sgd_graph(nb_optim **o)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(2), NB_ZEROS);
	nb_feed_f64(w, (const double[]){1, 2}, 2);
	*o = nb_sgd(g, nb_sum(nb_square(w)), (nb_sgd_opts){.lr = 0.5});
	ck_graph_ok(g);
	return g;
}

static bool has_control(const char *s)
{
	for (const unsigned char *u = (const unsigned char *)s; *u; u++)
		if (*u < 0x20 || *u == 0x7f || (u[0] == 0xc2 && u[1] >= 0x80 && u[1] < 0xa0))
			return true;
	return false;
}

START_TEST(test_meta_numbers_strict)
{
	static const struct {
		const char *value;
		bool ok;
		int64_t v;
	} ints[] = {
	    {"7", true, 7},
	    {"0", true, 0},
	    {"-3", false, 0},
	    {"0x10", false, 0},
	    {" 5", false, 0},
	    {"5 ", false, 0},
	    {"+5", false, 0},
	    {"05", false, 0},
	    {"1e3", false, 0},
	    {"2.0", false, 0},
	    {"", false, 0},
	    {"2147483648", false, 0},
	    {"99999999999999999999", false, 0},
	    {"12abc", false, 0},
	};
	char json[256], err[512];
	for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
		snprintf(json, sizeof json, "{\"__metadata__\":{\"epoch\":\"%s\"}}", ints[i].value);
		size_t len;
		unsigned char *b = image(json, NULL, 0, &len);
		nb_safetensors *f;
		ck_assert_int_eq(nb_safetensors_parse(b, len, &f, err, sizeof err), NB_OK);
		int64_t v = -1;
		nb_status st =
		    nb_safetensors_meta_int(f, "epoch", 0, 2147483647, &v, err, sizeof err);
		ck_assert_msg((st == NB_OK) == ints[i].ok, "epoch \"%s\": status %d", ints[i].value,
		              st);
		if (ints[i].ok) {
			ck_assert_int_eq(v, ints[i].v);
		} else {
			ck_assert_int_eq(st, NB_ERR_FORMAT);
			ck_assert_int_eq(v, -1); /* untouched */
			char want[128];
			snprintf(want, sizeof want,
			         "<buffer>: metadata epoch \"%s\" is not an integer from 0 to "
			         "2147483647",
			         ints[i].value);
			ck_assert_str_eq(err, want);
		}
		/* the number parser under the same rules: no hex, no spaces */
		double d = -1;
		st = nb_safetensors_meta_number(f, "epoch", 0, 1e300, &d, err, sizeof err);
		bool num_ok = ints[i].ok || !strcmp(ints[i].value, "1e3") ||
		              !strcmp(ints[i].value, "2.0") ||
		              !strcmp(ints[i].value, "2147483648") ||
		              !strcmp(ints[i].value, "99999999999999999999");
		ck_assert_msg((st == NB_OK) == num_ok, "number \"%s\": status %d", ints[i].value,
		              st);
		nb_safetensors_free(f);
		free(b);
	}
	/* the extremes of int64, and absent keys */
	const char *j =
	    "{\"__metadata__\":{\"a\":\"-9223372036854775808\",\"b\":"
	    "\"9223372036854775807\",\"c\":\"9223372036854775808\",\"lr\":\"0x10\","
	    "\"x\":\"inf\",\"y\":\"nan\",\"z\":\"1e400\",\"u\":\"1e-05\",\"e\":\"\\u001b[2J\"}}";
	size_t len;
	unsigned char *b = image(j, NULL, 0, &len);
	nb_safetensors *f;
	ck_assert_int_eq(nb_safetensors_parse(b, len, &f, err, sizeof err), NB_OK);
	int64_t v;
	ck_assert_int_eq(nb_safetensors_meta_int(f, "a", INT64_MIN, INT64_MAX, &v, err, sizeof err),
	                 NB_OK);
	ck_assert(v == INT64_MIN);
	ck_assert_int_eq(nb_safetensors_meta_int(f, "b", INT64_MIN, INT64_MAX, &v, err, sizeof err),
	                 NB_OK);
	ck_assert(v == INT64_MAX);
	ck_assert_int_eq(nb_safetensors_meta_int(f, "c", INT64_MIN, INT64_MAX, &v, NULL, 0),
	                 NB_ERR_FORMAT);
	ck_assert_int_eq(nb_safetensors_meta_int(f, "none", 0, 1, &v, err, sizeof err),
	                 NB_ERR_FORMAT);
	ck_assert_str_eq(err, "<buffer>: metadata none is missing");
	ck_assert_int_eq(nb_safetensors_meta_int(f, "a", 1, 0, &v, NULL, 0), NB_ERR_ARG);
	double d;
	for (const char *k = "lxyz"; *k; k++) {
		ck_assert_int_eq(nb_safetensors_meta_number(f, *k == 'l' ? "lr" : (char[]){*k, 0},
		                                            0, DBL_MAX, &d, err, sizeof err),
		                 NB_ERR_FORMAT);
		ck_assert_ptr_nonnull(strstr(err, "is not a decimal number from 0 to"));
	}
	ck_assert_int_eq(nb_safetensors_meta_number(f, "u", 0, 1, &d, err, sizeof err), NB_OK);
	ck_assert(d == 1e-05);
	/* a value with an escape sequence is quoted with '?' for the controls */
	ck_assert_int_eq(nb_safetensors_meta_int(f, "e", 0, 1, &v, err, sizeof err), NB_ERR_FORMAT);
	ck_assert_str_eq(err, "<buffer>: metadata e \"?[2J\" is not an integer from 0 to 1");
	nb_safetensors_free(f);
	free(b);
}
END_TEST

/* lists of numbers: exactly n elements, each as strict as one number, or
 * null (NaN) */
START_TEST(test_meta_number_lists)
{
	static const struct {
		const char *value;
		size_t n;
		bool ok;
	} cases[] = {
	    {"1,0.5,2e-3", 3, true},
	    {"1,null,0", 3, true},
	    {"", 0, true},
	    {"1", 1, true},
	    {"1,2", 3, false},
	    {"1,2,3,4", 3, false},
	    {"1,,2", 3, false},
	    {"1,2,", 2, false},
	    {",1,2", 2, false},
	    {"1, 2", 2, false},
	    {"1,0x10", 2, false},
	    {"1,nan", 2, false},
	    {"1,inf", 2, false},
	    {"1,-1", 2, false},
	    {"1,3", 2, false}, /* above max */
	    {"1,NULL", 2, false},
	    {"", 1, false},
	    {"1", 0, false},
	    {"1,0.0000000000000000000000000000000000000000000000000000000000000001", 2, false},
	};
	char json[256], err[512];
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		snprintf(json, sizeof json, "{\"__metadata__\":{\"h\":\"%s\"}}", cases[i].value);
		size_t len;
		unsigned char *b = image(json, NULL, 0, &len);
		nb_safetensors *f;
		ck_assert_int_eq(nb_safetensors_parse(b, len, &f, err, sizeof err), NB_OK);
		double v[4] = {-1, -1, -1, -1};
		nb_status st =
		    nb_safetensors_meta_numbers(f, "h", 0, 2, v, cases[i].n, err, sizeof err);
		ck_assert_msg((st == NB_OK) == cases[i].ok, "\"%s\" (%zu): status %d",
		              cases[i].value, cases[i].n, st);
		if (!cases[i].ok) {
			char want[256];
			snprintf(want, sizeof want,
			         "<buffer>: metadata h \"%s\" is not %zu comma-separated numbers",
			         cases[i].value, cases[i].n);
			ck_assert_msg(!strncmp(err, want, strlen(want)) || strstr(err, "..."), "%s",
			              err);
		}
		nb_safetensors_free(f);
		free(b);
	}
	const char *j = "{\"__metadata__\":{\"h\":\"0.25,null,2\",\"e\":\"1,\\u001b[2J\"}}";
	size_t len;
	unsigned char *b = image(j, NULL, 0, &len);
	nb_safetensors *f;
	ck_assert_int_eq(nb_safetensors_parse(b, len, &f, err, sizeof err), NB_OK);
	double v[3];
	ck_assert_int_eq(nb_safetensors_meta_numbers(f, "h", 0, 2, v, 3, err, sizeof err), NB_OK);
	ck_assert(v[0] == 0.25 && isnan(v[1]) && v[2] == 2);
	ck_assert_int_eq(nb_safetensors_meta_numbers(f, "e", 0, 2, v, 2, err, sizeof err),
	                 NB_ERR_FORMAT);
	ck_assert_str_eq(err, "<buffer>: metadata e \"1,?[2J\" is not 2 comma-separated numbers "
	                      "from 0 to 2 (or null)");
	ck_assert(!has_control(err));
	ck_assert_int_eq(nb_safetensors_meta_numbers(f, "none", 0, 2, v, 1, err, sizeof err),
	                 NB_ERR_FORMAT);
	ck_assert_str_eq(err, "<buffer>: metadata none is missing");
	ck_assert_int_eq(nb_safetensors_meta_numbers(f, "h", 0, 2, NULL, 3, NULL, 0), NB_ERR_ARG);
	ck_assert_int_eq(nb_safetensors_meta_numbers(f, "h", 2, 0, v, 3, NULL, 0), NB_ERR_ARG);
	nb_safetensors_free(f);
	free(b);
}
END_TEST

START_TEST(test_load_refuses_bad_step_and_lr)
{
	make_tmpdir();
	nb_optim *o;
	nb_graph *g = sgd_graph(&o);
	static const struct {
		const char *meta, *msg;
	} bad[] = {
	    {"\"step\":\"9223372036854775807\"",
	     "metadata step \"9223372036854775807\" is not an integer from 0 to 9007199254740992"},
	    {"\"step\":\"9007199254740993\"", "metadata step \"9007199254740993\""},
	    {"\"step\":\"-3\"", "metadata step \"-3\" is not an integer"},
	    {"\"step\":\"0x10\"", "metadata step \"0x10\" is not an integer"},
	    {"\"step\":\"3 \"", "metadata step \"3 \" is not an integer"},
	    {"\"lr\":\"0x10\"", "metadata lr \"0x10\" is not a finite non-negative decimal number"},
	    {"\"lr\":\"inf\"", "metadata lr \"inf\""},
	    {"\"lr\":\"1e999\"", "metadata lr \"1e999\""},
	    {"\"lr\":\" 0.5\"", "metadata lr \" 0.5\""},
	    {"\"lr\":\"-0.5\"", "metadata lr \"-0.5\""},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		const char *p = meta_file(bad[i].meta);
		ck_errmsg(g, nb_checkpoint_load(g, o, p, NULL, 0), NB_ERR_FORMAT, bad[i].msg);
		/* nothing was changed */
		ck_assert_int_eq(nb_optim_steps(o), 0);
		ck_assert(nb_optim_lr(o) == 0.5);
		float w[2];
		nb_read_f32(nb_graph_find(g, "w"), w, 2);
		ck_assert(w[0] == 1 && w[1] == 2);
	}
	/* the largest step loads; the next nb_step is refused, no overflow */
	const char *p = meta_file("\"step\":\"9007199254740992\",\"lr\":\"1e-05\"");
	ck_assert_int_eq(nb_checkpoint_load(g, o, p, NULL, 0), NB_OK);
	ck_assert(nb_optim_steps(o) == NB_OPTIM_MAX_STEPS);
	ck_assert(nb_optim_lr(o) == 1e-05);
	ck_errmsg(g, nb_step(o), NB_ERR_VALUE,
	          "sgd: the step count is at its limit 9007199254740992");
	ck_assert(nb_optim_steps(o) == NB_OPTIM_MAX_STEPS);
	nb_optim_set_steps(o, NB_OPTIM_MAX_STEPS + 1);
	ck_errmsg(g, NB_ERR_ARG, NB_ERR_ARG, "the step count must be from 0 to 9007199254740992");
	nb_graph_free(g);
	remove_tmpdir();
}
END_TEST

START_TEST(test_load_checks_the_model_name_first)
{
	make_tmpdir();
	nb_optim *o;
	nb_graph *g = sgd_graph(&o);
	/* another model's file, with another optimizer and tensors: the name is
	 * what is reported */
	const char *p = tpath("lenet.safetensors");
	{
		nb_graph *h = nb_graph_new(NB_F32);
		nb_tensor *k = nb_param(h, "conv1.w", NB_SHAPE(3), NB_ONES);
		nb_optim *ha = nb_adam(h, nb_sum(nb_square(k)), (nb_adam_opts){0});
		ck_assert_ptr_nonnull(ha);
		ck_assert_int_eq(nb_checkpoint_save(h, ha, p, "lenet"), NB_OK);
		nb_graph_free(h);
	}
	nb_checkpoint_opts co = {.model = "mlp"};
	ck_errmsg(g, nb_checkpoint_load_opts(g, o, p, NULL, 0, co), NB_ERR_FORMAT,
	          "lenet.safetensors: the checkpoint is of model \"lenet\", not mlp");
	co.flags = NB_CKPT_PARAMS_ONLY; /* checked whatever the flags */
	ck_errmsg(g, nb_checkpoint_load_opts(g, o, p, NULL, 0, co), NB_ERR_FORMAT,
	          "the checkpoint is of model \"lenet\", not mlp");
	/* a file claiming "mlp" with the right tensors loads; without a model
	 * name it loads too; a name with escapes is quoted safely */
	p = meta_file("\"model\":\"mlp\"");
	co.flags = 0;
	ck_assert_int_eq(nb_checkpoint_load_opts(g, o, p, NULL, 0, co), NB_OK);
	p = meta_file("");
	ck_assert_int_eq(nb_checkpoint_load_opts(g, o, p, NULL, 0, co), NB_OK);
	p = meta_file("\"model\":\"\\u001b]0;pwned\\u0007\\nmlp\"");
	ck_errmsg(g, nb_checkpoint_load_opts(g, o, p, NULL, 0, co), NB_ERR_FORMAT,
	          "the checkpoint is of model \"?]0;pwned??mlp\", not mlp");
	nb_graph_free(g);
	remove_tmpdir();
}
END_TEST

START_TEST(test_load_messages_escape_file_strings)
{
	make_tmpdir();
	nb_optim *o;
	nb_graph *g = sgd_graph(&o);
	/* ESC, BEL, newline, CR, DEL and the C1 CSI (U+009B) in every string
	 * the loader quotes */
	static const struct {
		const char *meta, *want;
	} cases[] = {
	    {"\"step\":\"\\u001b[31m1\\n2\"", "metadata step \"?[31m1?2\""},
	    {"\"lr\":\"0.1\\r\\u007f\"", "metadata lr \"0.1??\""},
	    {"\"rng\":\"\\u009b2J\\u0007\"", "metadata rng \"?2J?\""},
	    {"\"optimizer\":\"\\u001b[2Jadam\"", "saved with optimizer ?[2Jadam, this one is sgd"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *p = meta_file(cases[i].meta);
		nb_status st = nb_checkpoint_load(g, o, p, NULL, 0);
		ck_assert_int_eq(st, NB_ERR_FORMAT);
		ck_assert_msg(!has_control(nb_graph_errmsg(g)), "control bytes in: %s",
		              nb_graph_errmsg(g));
		ck_errmsg(g, st, NB_ERR_FORMAT, cases[i].want);
	}
	/* a tensor of the file the model lacks, named with escapes */
	static const unsigned char zeros[16];
	size_t len;
	unsigned char *b = image("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	                         "\"\\u001b[1mx\\n\":{\"dtype\":\"F32\",\"shape\":[2],"
	                         "\"data_offsets\":[8,16]}}",
	                         zeros, sizeof zeros, &len);
	const char *p = tpath("names.safetensors");
	FILE *fp = fopen(p, "wb");
	ck_assert_uint_eq(fwrite(b, 1, len, fp), len);
	fclose(fp);
	free(b);
	nb_status st = nb_checkpoint_load(g, o, p, NULL, 0);
	ck_assert_msg(!has_control(nb_graph_errmsg(g)), "control bytes in: %s", nb_graph_errmsg(g));
	ck_errmsg(g, st, NB_ERR_FORMAT, "tensor \"?[1mx?\" in the checkpoint is not a parameter");
	nb_graph_free(g);
	remove_tmpdir();
}
END_TEST

START_TEST(test_shown_helper)
{
	char buf[16];
	ck_assert_str_eq(nb__shown("a\x1b[0m\xc2\x9b\x7f", buf, sizeof buf), "a?[0m??");
	/* non-control UTF-8 kept; malformed bytes replaced */
	ck_assert_str_eq(nb__shown("\xc3\xa9t\xc3\xa9\xff", buf, sizeof buf), "\xc3\xa9t\xc3\xa9?");
	/* cut with "...", never inside a sequence */
	ck_assert_str_eq(nb__shown("abcdefghijklmnopqrstuvwxyz", buf, sizeof buf),
	                 "abcdefghijkl...");
	ck_assert_str_eq(nb__shown("abcdefghijk\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", buf, sizeof buf),
	                 "abcdefghijk...");
	ck_assert_str_eq(nb__shown("", buf, sizeof buf), "");
}
END_TEST

/* ---- the regression corpus -------------------------------------------------- */

/* Every file runs through the in-memory parser, the file reader and a load
 * into a small graph: ok_* must be accepted, bad_* refused with a message,
 * anything else (fuzzer finds) must end cleanly either way. */
START_TEST(test_corpus)
{
	const char *dir = NB_SOURCE_ROOT "/tests/data/corpus/safetensors";
	DIR *d = opendir(dir);
	ck_assert_msg(d != NULL, "no corpus at %s", dir);
	struct dirent *e;
	int files = 0, ok = 0, bad = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		FILE *fp = fopen(path, "rb");
		ck_assert_ptr_nonnull(fp);
		fseek(fp, 0, SEEK_END);
		long len = ftell(fp);
		rewind(fp);
		unsigned char *buf = malloc((size_t)len + 1);
		ck_assert_uint_eq(fread(buf, 1, (size_t)len, fp), (size_t)len);
		fclose(fp);
		nb_safetensors *f1, *f2;
		char e1[512] = "", e2[512] = "";
		nb_status s1 = nb_safetensors_parse(buf, (size_t)len, &f1, e1, sizeof e1);
		nb_status s2 = nb_safetensors_open(path, &f2, e2, sizeof e2);
		ck_assert_msg(s1 == s2, "%s: memory %d (%s), file %d (%s)", e->d_name, s1, e1, s2,
		              e2);
		ck_assert_msg(s1 == NB_OK || s1 == NB_ERR_FORMAT, "%s: status %d", e->d_name, s1);
		if (s1) {
			ck_assert_msg(!strcmp(e1 + strlen("<buffer>"), e2 + strlen(path)),
			              "%s: messages differ: %s / %s", e->d_name, e1, e2);
			ck_assert_uint_gt(strlen(e1), 12);
		} else {
			ck_assert_int_eq(nb_safetensors_count(f1), nb_safetensors_count(f2));
			/* every tensor's bytes can be read */
			for (int i = 0; i < nb_safetensors_count(f2); i++) {
				nb_safetensors_info in;
				nb_safetensors_tensor(f2, i, &in);
				void *t = malloc(in.end - in.begin + 1);
				ck_assert_int_eq(nb_safetensors_read(f2, i, t, in.end - in.begin),
				                 NB_OK);
				free(t);
			}
			/* and a load into a graph ends cleanly */
			model M = small_model(NB_F32, 1);
			nb_status s = nb__checkpoint_apply(M.g, NULL, f1, e->d_name, 0, NULL, 0);
			ck_assert_int_eq(s, nb_graph_status(M.g));
			ck_assert(s == NB_OK || strlen(nb_graph_errmsg(M.g)) > 10);
			nb_graph_free(M.g);
		}
		if (!strncmp(e->d_name, "ok_", 3)) {
			ck_assert_msg(s1 == NB_OK, "%s: %s", e->d_name, e1);
			ok++;
		}
		if (!strncmp(e->d_name, "bad_", 4)) {
			ck_assert_msg(s1 == NB_ERR_FORMAT, "%s was accepted", e->d_name);
			bad++;
		}
		nb_safetensors_free(f1);
		nb_safetensors_free(f2);
		free(buf);
		files++;
	}
	closedir(d);
	ck_assert_int_ge(ok, 3);
	ck_assert_int_ge(bad, 10);
	ck_assert_int_ge(files, ok + bad);
}
END_TEST

/* ---- atomic saves ------------------------------------------------------------ */

enum { KILL_PARAMS = 4, KILL_ROWS = 64, KILL_COLS = 256 };

static void slow_writer(size_t bytes)
{
	(void)bytes;
	usleep(2000);
}

/* version k: every element of parameter j is 8k + j */
static void set_version(nb_tensor **p, long k)
{
	for (int j = 0; j < KILL_PARAMS; j++) {
		float *d = nb_data(p[j]);
		for (int i = 0; i < KILL_ROWS * KILL_COLS; i++)
			d[i] = (float)(8 * k + j);
	}
}

static nb_graph *kill_model(nb_tensor **p)
{
	nb_graph *g = nb_graph_new(NB_F32);
	for (int j = 0; j < KILL_PARAMS; j++) {
		char name[16];
		snprintf(name, sizeof name, "p%d", j);
		p[j] = nb_param(g, name, NB_SHAPE(KILL_ROWS, KILL_COLS), NB_ZEROS);
	}
	return g;
}

/* A child saves new versions in a loop with a slowed writer and is killed
 * at a random moment after its first complete save (it says so through a
 * pipe, so a busy machine that is slow to schedule it changes nothing but
 * the wait), several times.  The checkpoint must always load and hold
 * exactly one complete version; the stray temp files must not matter. */
START_TEST(test_atomic_save_survives_sigkill)
{
	make_tmpdir();
	nb_tensor *p[KILL_PARAMS], *q[KILL_PARAMS];
	nb_graph *g = kill_model(p);
	char path[400]; /* tpath's buffers rotate */
	snprintf(path, sizeof path, "%s", tpath("model.safetensors"));
	set_version(p, 0);
	ck_assert_int_eq(nb_checkpoint_save(g, NULL, path, "v0"), NB_OK);
	long last = 0;
	int mid_save = 0;
	for (int round = 1; round <= 8; round++) {
		int saved[2];
		ck_assert_int_eq(pipe(saved), 0);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(saved[0]);
			nb__checkpoint_write_hook = slow_writer;
			for (long k = round * 1000L;; k++) {
				char name[32];
				snprintf(name, sizeof name, "v%ld", k);
				set_version(p, k);
				if (nb_checkpoint_save(g, NULL, path, name) == NB_OK &&
				    saved[1] >= 0) {
					ssize_t w = write(saved[1], "s", 1);
					(void)w;
					close(saved[1]);
					saved[1] = -1;
				}
			}
		}
		close(saved[1]);
		struct pollfd pf = {.fd = saved[0], .events = POLLIN};
		char c = 0;
		ck_assert_msg(poll(&pf, 1, 120000) == 1 && read(saved[0], &c, 1) == 1 && c == 's',
		              "round %d: the writer finished no save in 2 minutes", round);
		close(saved[0]);
		usleep((useconds_t)(4000 + (round * 7919) % 23000));
		kill(pid, SIGKILL);
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		int stray = count_files("model.safetensors.tmp.");
		mid_save += stray > 0;

		nb_graph *h = kill_model(q);
		char name[32];
		nb_status ls = nb_checkpoint_load(h, NULL, path, name, sizeof name);
		ck_assert_msg(ls == NB_OK, "round %d: %s", round, nb_graph_errmsg(h));
		long k = strtol(name + 1, NULL, 10);
		ck_assert_msg(k == last || (k >= round * 1000L && k < round * 1000L + 100000),
		              "round %d loaded version %ld after %ld", round, k, last);
		last = k;
		for (int j = 0; j < KILL_PARAMS; j++) {
			const float *d = nb_data(q[j]);
			for (int i = 0; i < KILL_ROWS * KILL_COLS; i++)
				ck_assert_msg(d[i] == (float)(8 * k + j),
				              "%s[%d] = %g in version %ld", nb_tensor_name(q[j]), i,
				              d[i], k);
		}
		/* a stray temp file is a partial (or complete, unrenamed) save: it
		 * loads cleanly or is refused cleanly, never crashes */
		DIR *dd = opendir(tmpdir);
		struct dirent *e;
		while ((e = readdir(dd)))
			if (!strncmp(e->d_name, "model.safetensors.tmp.", 22)) {
				nb_status s =
				    nb_checkpoint_load(h, NULL, tpath(e->d_name), NULL, 0);
				ck_assert_msg(s == NB_OK || s == NB_ERR_FORMAT, "%s: %s", e->d_name,
				              nb_graph_errmsg(h));
				nb_graph_clear_error(h);
			}
		closedir(dd);
		nb_graph_free(h);
	}
	/* the writer spends nearly all its time inside a save: some kills must
	 * have landed mid-save, or this test proved nothing */
	ck_assert_int_ge(mid_save, 1);
	ck_assert_int_gt(last, 0);
	/* the next save removes what the killed ones left */
	ck_assert_int_eq(nb_checkpoint_save(g, NULL, path, "v1"), NB_OK);
	ck_assert_int_eq(count_files("model.safetensors.tmp."), 0);
	nb_graph_free(g);
	remove_tmpdir();
}
END_TEST

/* ---- saving through links, stale temporary files -------------------------- */

/* the pid of a process that has exited and been reaped */
static pid_t dead_pid(void)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	return pid;
}

static void touch(const char *path)
{
	FILE *fp = fopen(path, "w");
	ck_assert_msg(fp != NULL, "%s", path);
	fclose(fp);
}

static bool exists(const char *path)
{
	struct stat sb;
	return lstat(path, &sb) == 0;
}

static bool is_link_to(const char *path, const char *text)
{
	char buf[512];
	ssize_t n = readlink(path, buf, sizeof buf - 1);
	if (n < 0)
		return false;
	buf[n] = 0;
	return !strcmp(buf, text);
}

/* the model name saved in path */
static void ck_saved_name(const char *path, const char *want)
{
	model B = small_model(NB_F32, 2);
	char name[32] = "";
	ck_assert_msg(nb_checkpoint_load(B.g, NULL, path, name, sizeof name) == NB_OK, "%s",
	              nb_graph_errmsg(B.g));
	ck_assert_str_eq(name, want);
	nb_graph_free(B.g);
}

/* Saving onto a symbolic link writes the file it points to and keeps the
 * link (and the target's permissions); a FIFO or directory is refused. */
START_TEST(test_save_through_symlink)
{
	make_tmpdir();
	model A = small_model(NB_F32, 1);
	char real[400], link[400], link2[400];
	snprintf(real, sizeof real, "%s", tpath("real.safetensors"));
	snprintf(link, sizeof link, "%s", tpath("link.safetensors"));
	snprintf(link2, sizeof link2, "%s", tpath("link2"));
	ck_assert_int_eq(nb_checkpoint_save(A.g, NULL, real, "v1"), NB_OK);
	ck_assert_int_eq(chmod(real, 0640), 0);
	ck_assert_int_eq(symlink("real.safetensors", link), 0); /* relative */
	ck_assert_int_eq(symlink(link, link2), 0);              /* absolute, a chain */
	const char *via[2] = {link, link2}, *names[2] = {"v2", "v3"};
	for (int k = 0; k < 2; k++) {
		ck_assert_msg(nb_checkpoint_save(A.g, NULL, via[k], names[k]) == NB_OK, "%s",
		              nb_graph_errmsg(A.g));
		ck_assert(is_link_to(link, "real.safetensors"));
		ck_assert(is_link_to(link2, link));
		ck_saved_name(real, names[k]);
		struct stat sb;
		ck_assert_int_eq(stat(real, &sb), 0);
		ck_assert_int_eq(sb.st_mode & 07777, 0640);
	}
	/* a dangling link: the save creates its target */
	ck_assert_int_eq(symlink("new.safetensors", tpath("dangling")), 0);
	ck_assert_int_eq(nb_checkpoint_save(A.g, NULL, tpath("dangling"), "v4"), NB_OK);
	ck_assert(is_link_to(tpath("dangling"), "new.safetensors"));
	ck_saved_name(tpath("new.safetensors"), "v4");
	/* a link into another directory: the file is made there */
	ck_assert_int_eq(mkdir(tpath("sub"), 0700), 0);
	ck_assert_int_eq(symlink("sub/in.safetensors", tpath("out")), 0);
	ck_assert_int_eq(nb_checkpoint_save(A.g, NULL, tpath("out"), "v5"), NB_OK);
	ck_assert(is_link_to(tpath("out"), "sub/in.safetensors"));
	ck_saved_name(tpath("sub/in.safetensors"), "v5");
	ck_assert_int_eq(unlink(tpath("sub/in.safetensors")), 0);
	ck_assert_int_eq(rmdir(tpath("sub")), 0);
	/* a loop of links */
	ck_assert_int_eq(symlink("loop", tpath("loop")), 0);
	ck_errmsg(A.g, nb_checkpoint_save(A.g, NULL, tpath("loop"), NULL), NB_ERR_IO,
	          "loop: cannot open for writing: Too many levels of symbolic links");
	nb_graph_clear_error(A.g);
	/* a FIFO (renaming over it would replace it) and a directory */
	ck_assert_int_eq(mkfifo(tpath("fifo"), 0600), 0);
	ck_errmsg(A.g, nb_checkpoint_save(A.g, NULL, tpath("fifo"), NULL), NB_ERR_IO,
	          "fifo: cannot open for writing: not a regular file (a FIFO)");
	nb_graph_clear_error(A.g);
	struct stat sb;
	ck_assert(lstat(tpath("fifo"), &sb) == 0 && S_ISFIFO(sb.st_mode));
	ck_assert_int_eq(mkdir(tpath("dir"), 0700), 0);
	ck_errmsg(A.g, nb_checkpoint_save(A.g, NULL, tpath("dir"), NULL), NB_ERR_IO,
	          "dir: cannot open for writing: not a regular file (a directory)");
	nb_graph_clear_error(A.g);
	ck_assert_int_eq(rmdir(tpath("dir")), 0);
	/* no temporary file is left anywhere */
	ck_assert_int_eq(count_files("real.safetensors.tmp"), 0);
	ck_assert_int_eq(count_files("link"), 2);
	ck_assert_int_eq(count_files("new.safetensors.tmp"), 0);
	ck_assert_int_eq(count_files("fifo.tmp"), 0);
	nb_graph_free(A.g);
	remove_tmpdir();
}
END_TEST

/* A save removes the temporary files a killed save of the same file left
 * (named <file>.tmp.<pid>.XXXXXX, pid no longer running), and nothing else. */
START_TEST(test_save_removes_stale_temp_files)
{
	make_tmpdir();
	model A = small_model(NB_F32, 1);
	pid_t dead = dead_pid(), live = fork();
	ck_assert_int_ge(live, 0);
	if (live == 0) {
		pause();
		_exit(0);
	}
	/* full paths, tmpdir then the name */
	char stale[2][160], keep[7][160];
	const char *d = tmpdir;
	snprintf(stale[0], 160, "%s/m.safetensors.tmp.%d.Ab12Cd", d, (int)dead);
	snprintf(stale[1], 160, "%s/m.safetensors.tmp.%d.zzzzzz", d, (int)dead);
	snprintf(keep[0], 160, "%s/m.safetensors.tmp.%d.Ab12Cd", d, (int)live); /* running */
	snprintf(keep[1], 160, "%s/m.safetensors.tmp.Ab12Cd", d);               /* no pid */
	snprintf(keep[2], 160, "%s/other.safetensors.tmp.%d.Ab12Cd", d, (int)dead);
	snprintf(keep[3], 160, "%s/m.safetensors.tmp.%d.Ab12C", d, (int)dead);
	snprintf(keep[4], 160, "%s/m.safetensors.tmp.%d.Ab12Cd.x", d, (int)dead);
	snprintf(keep[5], 160, "%s/m.safetensors.tmp.%dx.Ab12Cd", d, (int)dead);
	snprintf(keep[6], 160, "%s/m.safetensors.tmp.%d.Dir999", d, (int)dead); /* a directory */
	for (int i = 0; i < 2; i++)
		touch(stale[i]);
	for (int i = 0; i < 6; i++)
		touch(keep[i]);
	ck_assert_int_eq(mkdir(keep[6], 0700), 0);
	ck_assert_int_eq(nb_checkpoint_save(A.g, NULL, tpath("m.safetensors"), "v1"), NB_OK);
	for (int i = 0; i < 2; i++)
		ck_assert_msg(!exists(stale[i]), "%s is still there", stale[i]);
	for (int i = 0; i < 7; i++)
		ck_assert_msg(exists(keep[i]), "%s was removed", keep[i]);
	/* through a link: the target's stale files */
	ck_assert_int_eq(symlink("m.safetensors", tpath("l.safetensors")), 0);
	touch(stale[0]);
	ck_assert_int_eq(nb_checkpoint_save(A.g, NULL, tpath("l.safetensors"), "v2"), NB_OK);
	ck_assert(!exists(stale[0]));
	ck_assert(exists(keep[0]));
	kill(live, SIGKILL);
	ck_assert_int_eq(waitpid(live, NULL, 0), live);
	ck_assert_int_eq(rmdir(keep[6]), 0);
	nb_graph_free(A.g);
	remove_tmpdir();
}
END_TEST

/* ---- resume determinism ---------------------------------------------------- */

/* y = softsign((x + noise) w1 + b1) w2 with softsign(z) = z / (1 + |z|),
 * noise drawn from the graph RNG each step, so a resumed run matches only
 * if the RNG was restored too.  (Built from core ops only.) */
typedef struct net {
	nb_graph *g;
	nb_tensor *x, *y, *noise, *w1, *b1, *w2, *L;
} net;

static net build_net(uint64_t seed)
{
	net n;
	n.g = nb_graph_new(NB_F32);
	nb_graph_seed(n.g, seed);
	n.x = nb_input(n.g, "x", NB_SHAPE(8, 4));
	n.y = nb_input(n.g, "y", NB_SHAPE(8, 1));
	n.noise = nb_input(n.g, "noise", NB_SHAPE(8, 4));
	n.w1 = nb_param(n.g, "fc1.w", NB_SHAPE(4, 6), NB_NORMAL(0, 0.5));
	n.b1 = nb_param(n.g, "fc1.b", NB_SHAPE(6), NB_ZEROS);
	n.w2 = nb_param(n.g, "fc2.w", NB_SHAPE(6, 1), NB_NORMAL(0, 0.5));
	nb_tensor *z = nb_add(nb_matmul(nb_add(n.x, n.noise), n.w1), n.b1);
	nb_tensor *h = nb_div(z, nb_add_scalar(nb_abs(z), 1.0));
	n.L = nb_mean(nb_square(nb_sub(nb_matmul(h, n.w2), n.y)));
	float X[32], Y[8];
	for (int i = 0; i < 32; i++)
		X[i] = (float)((i * 37 % 11) - 5) / 5.0f;
	for (int i = 0; i < 8; i++)
		Y[i] = (float)(i % 3) - 1.0f;
	nb_feed_f32(n.x, X, 32);
	nb_feed_f32(n.y, Y, 8);
	return n;
}

static float sgd_step(net *n, nb_optim *o)
{
	nb_init_tensor(n->noise, NB_NORMAL(0, 0.1));
	ck_assert_int_eq(nb_step(o), NB_OK);
	return (float)nb_item(n->L);
}

START_TEST(test_resume_sgd_bit_identical)
{
	make_tmpdir();
	enum { N = 15 };
	float ref[2 * N], got[2 * N];
	net a = build_net(11);
	nb_optim *o = nb_sgd(a.g, a.L, (nb_sgd_opts){.lr = 0.1});
	ck_graph_ok(a.g);
	for (int i = 0; i < 2 * N; i++)
		ref[i] = sgd_step(&a, o);
	nb_graph_free(a.g);

	net b = build_net(11);
	o = nb_sgd(b.g, b.L, (nb_sgd_opts){.lr = 0.1});
	for (int i = 0; i < N; i++)
		got[i] = sgd_step(&b, o);
	nb_optim_set_lr(o, 0.05); /* a schedule changed it: restored too */
	ck_assert_int_eq(nb_checkpoint_save(b.g, o, tpath("sgd.st"), "net"), NB_OK);
	nb_graph_free(b.g);

	net c = build_net(999); /* other initial values and RNG: all overwritten */
	o = nb_sgd(c.g, c.L, (nb_sgd_opts){.lr = 0.1});
	ck_assert_int_eq(nb_checkpoint_load(c.g, o, tpath("sgd.st"), NULL, 0), NB_OK);
	ck_assert_int_eq(nb_optim_steps(o), N);
	ck_assert(nb_optim_lr(o) == 0.05);
	nb_optim_set_lr(o, 0.1);
	for (int i = N; i < 2 * N; i++)
		got[i] = sgd_step(&c, o);
	ck_assert_msg(!memcmp(ref, got, sizeof ref),
	              "resumed losses differ from the uninterrupted run");
	ck_assert(ref[2 * N - 1] < ref[0]); /* it did train */
	nb_graph_free(c.g);
	remove_tmpdir();
}
END_TEST

/* Loading restores the step count and the learning rate through the
 * optimizer's setters, so even the program run by hand (nb_run, which
 * counts no step) continues with them: Adam's bias corrections and the
 * rate of the saved run, bit for bit. */
START_TEST(test_resume_adam_by_hand)
{
	make_tmpdir();
	enum { N = 6 };
	net a = build_net(21);
	nb_optim *o = nb_adam(a.g, a.L, (nb_adam_opts){.lr = 0.01});
	ck_graph_ok(a.g);
	for (int i = 0; i < N; i++)
		sgd_step(&a, o);
	nb_optim_set_lr(o, 0.004);
	ck_assert_int_eq(nb_checkpoint_save(a.g, o, tpath("adam.st"), "net"), NB_OK);
	nb_init_tensor(a.noise, NB_NORMAL(0, 0.1));
	ck_assert_int_eq(nb_run(nb_optim_program(o)), NB_OK);
	float wa[24], wb[24];
	ck_assert_int_eq(nb_read_f32(a.w1, wa, 24), NB_OK);

	net b = build_net(99);
	o = nb_adam(b.g, b.L, (nb_adam_opts){.lr = 0.01});
	ck_assert_int_eq(nb_checkpoint_load(b.g, o, tpath("adam.st"), NULL, 0), NB_OK);
	nb_init_tensor(b.noise, NB_NORMAL(0, 0.1));
	ck_assert_int_eq(nb_run(nb_optim_program(o)), NB_OK);
	ck_assert_int_eq(nb_read_f32(b.w1, wb, 24), NB_OK);
	ck_assert_msg(!memcmp(wa, wb, sizeof wa), "the resumed step differs");
	ck_assert_int_eq(nb_optim_steps(o), N);
	nb_graph_free(a.g);
	nb_graph_free(b.g);
	remove_tmpdir();
}
END_TEST

/* Momentum built from graph ops with a STATE leaf per parameter:
 * m <- 0.9 m + g,  w <- w - lr m.  The program computes the new values;
 * the test copies them back (there is no in-place assign op). */
typedef struct mom {
	net n;
	nb_tensor *m[3], *mnew[3], *wnew[3];
	nb_program *prog;
} mom;

static mom build_momentum(uint64_t seed)
{
	mom M;
	M.n = build_net(seed);
	nb_tensor *w[3] = {M.n.w1, M.n.b1, M.n.w2}, *gr[3], *targets[7] = {M.n.L};
	ck_assert_int_eq(nb_grads(M.n.L, w, 3, gr), NB_OK);
	for (int i = 0; i < 3; i++) {
		M.m[i] = nb__state_like(w[i], "m");
		M.mnew[i] = nb_add(nb_mul_scalar(M.m[i], 0.9), gr[i]);
		M.wnew[i] = nb_sub(w[i], nb_mul_scalar(M.mnew[i], 0.05));
		targets[1 + 2 * i] = M.mnew[i];
		targets[2 + 2 * i] = M.wnew[i];
	}
	M.prog = nb_compile(M.n.g, targets, 7);
	ck_graph_ok(M.n.g);
	return M;
}

static float momentum_step(mom *M)
{
	nb_tensor *w[3] = {M->n.w1, M->n.b1, M->n.w2};
	nb_init_tensor(M->n.noise, NB_NORMAL(0, 0.1));
	ck_assert_int_eq(nb_run(M->prog), NB_OK);
	for (int i = 0; i < 3; i++) {
		size_t bytes = (size_t)nb_tensor_size(w[i]) * sizeof(float);
		memcpy(nb_data(M->m[i]), nb_data(M->mnew[i]), bytes);
		memcpy(nb_data(w[i]), nb_data(M->wnew[i]), bytes);
	}
	return (float)nb_item(M->n.L);
}

START_TEST(test_resume_momentum_state_bit_identical)
{
	make_tmpdir();
	enum { N = 12 };
	float ref[2 * N], got[2 * N], partial[2 * N];
	mom a = build_momentum(5);
	for (int i = 0; i < 2 * N; i++)
		ref[i] = momentum_step(&a);
	nb_graph_free(a.n.g);

	mom b = build_momentum(5);
	for (int i = 0; i < N; i++)
		got[i] = partial[i] = momentum_step(&b);
	ck_assert_int_eq(nb_checkpoint_save(b.n.g, NULL, tpath("mom.st"), NULL), NB_OK);
	nb_graph_free(b.n.g);

	mom c = build_momentum(77);
	ck_assert_int_eq(nb_checkpoint_load(c.n.g, NULL, tpath("mom.st"), NULL, 0), NB_OK);
	for (int i = N; i < 2 * N; i++)
		got[i] = momentum_step(&c);
	ck_assert_msg(!memcmp(ref, got, sizeof ref),
	              "resumed losses differ from the uninterrupted run");
	nb_graph_free(c.n.g);

	/* the test can fail: restoring only the parameters (momentum zero, RNG
	 * not restored) gives other losses */
	mom d = build_momentum(77);
	ck_assert_int_eq(
	    nb_checkpoint_load_opts(d.n.g, NULL, tpath("mom.st"), NULL, 0,
	                            (nb_checkpoint_opts){.flags = NB_CKPT_PARAMS_ONLY}),
	    NB_OK);
	for (int i = N; i < 2 * N; i++)
		partial[i] = momentum_step(&d);
	ck_assert(memcmp(ref, partial, sizeof ref) != 0);
	nb_graph_free(d.n.g);
	remove_tmpdir();
}
END_TEST

/* NB_CKPT_MODEL_ONLY restores the model: the parameters and batchnorm's
 * running statistics (without them the model predicts with its initial
 * ones), not the optimizer's velocity; NB_CKPT_PARAMS_ONLY is the same */
typedef struct bn_net {
	nb_graph *g;
	nb_tensor *x, *y, *loss;
} bn_net;

static bn_net build_bn_net(uint64_t seed)
{
	bn_net n = {.g = nb_graph_new(NB_F32)};
	nb_graph_seed(n.g, seed);
	n.x = nb_input(n.g, "x", NB_SHAPE(8, 3));
	n.y = nb_dense(nb_batchnorm_layer(nb_dense(n.x, 4, "fc1"), "bn", (nb_batchnorm_opts){0}), 2,
	               "fc2");
	n.loss = nb_mean(nb_square(n.y));
	float xv[24];
	for (int i = 0; i < 24; i++)
		xv[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
	nb_feed_f32(n.x, xv, 24);
	return n;
}

START_TEST(test_model_only_restores_running_stats)
{
	make_tmpdir();
	bn_net a = build_bn_net(3);
	nb_optim *o = nb_momentum(a.g, a.loss, (nb_momentum_opts){.lr = 0.1});
	ck_assert_ptr_nonnull(o);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(nb_step(o), NB_OK);
	ck_assert_int_eq(nb_checkpoint_save(a.g, o, tpath("bn.st"), NULL), NB_OK);
	nb_graph_set_training(a.g, false);
	nb_eval(a.y);
	const unsigned flags[2] = {NB_CKPT_MODEL_ONLY, NB_CKPT_PARAMS_ONLY};
	for (int k = 0; k < 2; k++) {
		bn_net b = build_bn_net(99);
		ck_assert_int_eq(nb_checkpoint_load_opts(b.g, NULL, tpath("bn.st"), NULL, 0,
		                                         (nb_checkpoint_opts){.flags = flags[k]}),
		                 NB_OK);
		const char *names[6] = {"fc1.w",           "fc1.b",          "bn.gamma",
		                        "bn.running_mean", "bn.running_var", "fc2.w"};
		for (int i = 0; i < 6; i++)
			ck_same_data(nb_graph_find(a.g, names[i]), nb_graph_find(b.g, names[i]));
		/* the statistics moved away from their initial 0 and 1 */
		ck_assert(((float *)nb_data(nb_graph_find(b.g, "bn.running_mean")))[0] != 0);
		nb_graph_set_training(b.g, false);
		nb_eval(b.y);
		ck_same_data(a.y, b.y);
		nb_graph_free(b.g);
	}
	/* a graph with an optimizer: its velocity is not the model's */
	bn_net c = build_bn_net(99);
	nb_optim *oc = nb_momentum(c.g, c.loss, (nb_momentum_opts){.lr = 0.1});
	ck_assert_int_eq(nb_checkpoint_load_opts(c.g, oc, tpath("bn.st"), NULL, 0,
	                                         (nb_checkpoint_opts){.flags = NB_CKPT_MODEL_ONLY}),
	                 NB_OK);
	nb_tensor *v = nb_optim_state(oc, nb_graph_find(c.g, "fc1.w"), "v");
	ck_assert_ptr_nonnull(v);
	for (int64_t i = 0; i < nb_tensor_size(v); i++)
		ck_assert(((float *)nb_data(v))[i] == 0);
	ck_same_data(nb_graph_find(a.g, "bn.running_var"), nb_graph_find(c.g, "bn.running_var"));
	nb_graph_free(c.g);
	nb_graph_free(a.g);
	remove_tmpdir();
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *tc = tcase_create("checkpoint");
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_reader_lists_tensors);
	tcase_add_test(tc, test_save_errors);
	tcase_add_test(tc, test_load_mismatches);
	tcase_add_test(tc, test_parser_errors);
	tcase_add_test(tc, test_bad_metadata);
	tcase_add_test(tc, test_meta_numbers_strict);
	tcase_add_test(tc, test_meta_number_lists);
	tcase_add_test(tc, test_load_refuses_bad_step_and_lr);
	tcase_add_test(tc, test_load_checks_the_model_name_first);
	tcase_add_test(tc, test_load_messages_escape_file_strings);
	tcase_add_test(tc, test_shown_helper);
	tcase_add_test(tc, test_corpus);
	tcase_add_test(tc, test_atomic_save_survives_sigkill);
	tcase_add_test(tc, test_save_through_symlink);
	tcase_add_test(tc, test_save_removes_stale_temp_files);
	tcase_add_test(tc, test_resume_sgd_bit_identical);
	tcase_add_test(tc, test_resume_adam_by_hand);
	tcase_add_test(tc, test_resume_momentum_state_bit_identical);
	tcase_add_test(tc, test_model_only_restores_running_stats);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
