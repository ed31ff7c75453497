/*
 * The nabla command line as a user types it: bad numeric flags, crafted
 * checkpoints given to --resume, the notes' models with --save, --resume
 * and --batch, outputs that cannot be written, and training that diverges.
 * Each case checks the exit status, the message (once) and the files
 * written or not.  The zoo's mlp trains on a tiny IDX data set written
 * here, so nothing depends on an installed data set.
 */
#include "test_util.h"

#include "io/safetensors.h"
#include "nabla_config.h"

#include <dirent.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64]; /* the temporary directory, also the --data directory */

/* Run `cd dir && nabla args 2>&1`; the output in *out (malloc'd), the exit
 * status returned (-1 for a signal: a crash fails every expectation). */
static int run(const char *args, char **out)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "cd %s && %s %s 2>&1", dir, NB_NABLA_EXE, args);
	return nb_test_popen(cmd, out);
}

static int count(const char *s, const char *part)
{
	int n = 0;
	for (const char *q = s; (q = strstr(q, part)); q += strlen(part))
		n++;
	return n;
}

/* `nabla args` must exit with `status`, and each NULL-terminated part must
 * be in its output exactly once.  Returns the output (malloc'd). */
static char *expect(int status, const char *args, ...)
{
	char *out;
	int st = run(args, &out);
	ck_assert_msg(st == status, "nabla %s: exit status %d, expected %d; output:\n%s", args, st,
	              status, out);
	va_list ap;
	va_start(ap, args);
	for (const char *part; (part = va_arg(ap, const char *));)
		ck_assert_msg(count(out, part) == 1, "nabla %s: '%s' not once in:\n%s", args, part,
		              out);
	va_end(ap);
	return out;
}

#define EXPECT(...) free(expect(__VA_ARGS__, NULL))

static const char *path(const char *name)
{
	static char p[4][400];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

static bool exists(const char *name)
{
	struct stat sb;
	return stat(path(name), &sb) == 0;
}

/* ---- a tiny Fashion-MNIST-shaped data set ----------------------------------------- */

static void be32(FILE *fp, uint32_t v)
{
	unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 8), (unsigned char)v};
	ck_assert_uint_eq(fwrite(b, 1, 4, fp), 4);
}

static void write_idx(const char *prefix, int n)
{
	char name[64];
	snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
	FILE *fp = fopen(path(name), "wb");
	ck_assert_ptr_nonnull(fp);
	be32(fp, 0x803), be32(fp, (uint32_t)n), be32(fp, 28), be32(fp, 28);
	for (int i = 0; i < n * 28 * 28; i++)
		fputc((i * 37 + i / 784 * 11) & 0xff, fp);
	fclose(fp);
	snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
	fp = fopen(path(name), "wb");
	ck_assert_ptr_nonnull(fp);
	be32(fp, 0x801), be32(fp, (uint32_t)n);
	for (int i = 0; i < n; i++)
		fputc(i % 10, fp);
	fclose(fp);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/nb_cli_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	write_idx("train", 8);
	write_idx("t10k", 4);
}

static void teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlink(path(e->d_name));
	if (d)
		closedir(d);
	rmdir(dir);
}

/* mlp on the tiny set: 2 batches of 4 per epoch */
#define MLP "train --model mlp --data . --batch 4 --out none"

/* ---- crafted checkpoints ------------------------------------------------------------ */

/* A checkpoint of a zoo model as `nabla train` writes it (its default
 * optimizer, "epoch" metadata), at name. */
static void zoo_checkpoint(const char *model, nb_optim_kind kind, const char *epoch,
                           const char *name)
{
	nb_model *m = nb_test_zoo(model, NB_F32, 4, 1);
	nb_optim *o =
	    nb_optimizer(nb_model_graph(m), nb_model_loss(m), (nb_optim_opts){.kind = kind});
	ck_assert_ptr_nonnull(o);
	const char *meta[] = {"epoch", epoch};
	nb_checkpoint_opts co = {.meta = meta, .n_meta = epoch ? 1 : 0};
	ck_assert_int_eq(
	    nb_checkpoint_save_opts(nb_model_graph(m), o, path(name), nb_model_name(m), co), NB_OK);
	nb_graph_free(nb_model_graph(m));
}

/* Replace the value of metadata key in the file's header with json (a
 * JSON string body, escapes allowed), as a hand-edited file would have it. */
static void retag(const char *name, const char *key, const char *json)
{
	char *s;
	FILE *fp = fopen(path(name), "rb");
	ck_assert_ptr_nonnull(fp);
	fseek(fp, 0, SEEK_END);
	long size = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	s = malloc((size_t)size + 1);
	ck_assert_uint_eq(fread(s, 1, (size_t)size, fp), (size_t)size);
	fclose(fp);
	uint64_t h = 0;
	for (int i = 0; i < 8; i++)
		h |= (uint64_t)(unsigned char)s[i] << (8 * i);
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	char *hdr = strndup(s + 8, h);
	char *at = strstr(hdr, pat);
	ck_assert_msg(at != NULL, "%s: no metadata %s", name, key);
	char *val = at + strlen(pat), *end = strchr(val, '"');
	size_t nh = (size_t)(val - hdr) + strlen(json) + strlen(end);
	char *nhdr = malloc(nh + 8);
	snprintf(nhdr, nh + 8, "%.*s%s%s", (int)(val - hdr), hdr, json, end);
	fp = fopen(path(name), "wb");
	ck_assert_ptr_nonnull(fp);
	unsigned char b8[8];
	for (int i = 0; i < 8; i++)
		b8[i] = (unsigned char)((uint64_t)nh >> (8 * i));
	fwrite(b8, 1, 8, fp);
	fwrite(nhdr, 1, nh, fp);
	fwrite(s + 8 + h, 1, (size_t)size - 8 - h, fp);
	ck_assert_int_eq(fclose(fp), 0);
	free(nhdr), free(hdr), free(s);
}

static bool has_control(const char *s)
{
	for (const unsigned char *u = (const unsigned char *)s; *u; u++)
		if ((*u < 0x20 && *u != '\n') || *u == 0x7f ||
		    (u[0] == 0xc2 && u[1] >= 0x80 && u[1] < 0xa0))
			return true;
	return false;
}

/* Metadata "epoch" from the file reaches nb_fit's first_epoch and the
 * history arrays: anything but an integer 0..1000000 below --epochs is
 * refused, without a crash and before training. */
START_TEST(test_resume_epoch_metadata)
{
	static const char *const bad[] = {
	    "-3", "-1", "2147483648", "9223372036854775807", "0x10", " 2", "2.0", "1e3", ""};
	char args[256], want[256];
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		zoo_checkpoint("mlp", NB_OPTIM_ADAM, bad[i], "bad.st");
		snprintf(args, sizeof args, MLP " --epochs 3 --resume bad.st --save out.st");
		snprintf(
		    want, sizeof want,
		    "nabla train: --resume: bad.st: metadata epoch \"%s\" is not an integer from 0 "
		    "to 1000000\n",
		    bad[i]);
		char *out = expect(1, args, want, NULL);
		ck_assert_msg(!strstr(out, "epoch 1/3"), "trained after a bad epoch:\n%s", out);
		free(out);
		ck_assert(!exists("out.st"));
	}
	/* past the end of the run */
	zoo_checkpoint("mlp", NB_OPTIM_ADAM, "3", "done.st");
	EXPECT(2, MLP " --epochs 3 --resume done.st",
	       "nabla train: --resume: done.st was saved after epoch 3, so nothing is left to do "
	       "with --epochs 3 (it counts all the epochs, the resumed ones too); nothing trained "
	       "or written; ask for more, e.g. --epochs 4\n");
	/* a good one resumes where it stopped */
	zoo_checkpoint("mlp", NB_OPTIM_ADAM, "1", "one.st");
	char *out = expect(0, MLP " --epochs 3 --resume one.st --save out.st",
	                   "nabla train: resumed mlp from one.st after epoch 1 (step 0)\n",
	                   "epoch 2/3", "epoch 3/3", "wrote the checkpoint to out.st", NULL);
	ck_assert(!strstr(out, "epoch 1/3"));
	free(out);
	ck_assert(exists("out.st"));
}
END_TEST

/* step 2^63-1 overflowed the step counter; lr "0x10" was read as 16 */
START_TEST(test_resume_step_and_lr_metadata)
{
	zoo_checkpoint("mlp", NB_OPTIM_ADAM, "1", "step.st");
	retag("step.st", "step", "9223372036854775807");
	EXPECT(1, MLP " --epochs 2 --resume step.st",
	       "nabla train: --resume: step.st: metadata step \"9223372036854775807\" is not an "
	       "integer from 0 to 9007199254740992\n");
	zoo_checkpoint("mlp", NB_OPTIM_ADAM, "1", "lr.st");
	retag("lr.st", "lr", "0x10");
	EXPECT(1, MLP " --epochs 2 --resume lr.st",
	       "nabla train: --resume: lr.st: metadata lr \"0x10\" is not a finite non-negative "
	       "decimal number\n");
}
END_TEST

/* escape sequences and newlines in the file's strings never reach the
 * terminal raw */
START_TEST(test_resume_messages_are_escaped)
{
	static const struct {
		const char *key, *json, *want;
	} cases[] = {
	    {"step", "\\u001b[31m1\\n2", "metadata step \"?[31m1?2\""},
	    {"lr", "\\u001b]0;title\\u0007", "metadata lr \"?]0;title?\""},
	    {"rng", "\\r\\u009b2J", "metadata rng \"??2J\""},
	    {"optimizer", "\\u001b[2Jadam\\n", "saved with optimizer ?[2Jadam?, this one is adam"},
	    {"epoch", "\\u001b[1m1", "metadata epoch \"?[1m1\""},
	    {"model", "m\\u001b[0m\\nlp", "the checkpoint is of model \"m?[0m?lp\", not mlp"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		zoo_checkpoint("mlp", NB_OPTIM_ADAM, "1", "esc.st");
		retag("esc.st", cases[i].key, cases[i].json);
		char *out = expect(1, MLP " --epochs 2 --resume esc.st", cases[i].want, NULL);
		ck_assert_msg(!has_control(out), "control bytes in:\n%s", out);
		free(out);
	}
}
END_TEST

/* the model name is checked before the optimizer and the tensors */
START_TEST(test_resume_checks_the_model)
{
	zoo_checkpoint("lenet", NB_OPTIM_MOMENTUM, "1", "lenet.st");
	EXPECT(1, MLP " --epochs 2 --resume lenet.st",
	       "nabla train: --resume: lenet.st: the checkpoint is of model \"lenet\", not mlp\n");
	/* a lenet file claiming to be mlp's is not loaded into lenet */
	retag("lenet.st", "model", "mlp");
	EXPECT(1, "train --model lenet --data . --batch 4 --out none --epochs 2 --resume lenet.st",
	       "nabla train: --resume: lenet.st: the checkpoint is of model \"mlp\", not lenet\n");
}
END_TEST

/* ---- numeric flags ---------------------------------------------------------------- */

START_TEST(test_numeric_flags_are_range_checked)
{
	/* truncated to int they trained nothing or with batch 1, and said they
	 * wrote a checkpoint */
	EXPECT(2, MLP " --epochs 2147483648 --save e.st",
	       "nabla train: --epochs must be an integer from 1 to 1000000, got '2147483648'\n");
	ck_assert(!exists("e.st"));
	EXPECT(2, "train --model mlp --data . --batch 4294967297 --out none",
	       "nabla train: --batch must be an integer from 1 to 1048576, got '4294967297'\n");
	EXPECT(2, MLP " --threads 10000",
	       "nabla train: --threads must be an integer from 0 to 1024, got '10000'\n");
	EXPECT(2, MLP " --seed -1",
	       "nabla train: --seed must be an integer from 0 to 9223372036854775807, got '-1'\n");
	EXPECT(2, MLP " --epochs 0x10",
	       "--epochs must be an integer from 1 to 1000000, got '0x10'\n");
	EXPECT(2, MLP " --epochs ' 3'",
	       "--epochs must be an integer from 1 to 1000000, got ' 3'\n");
	/* 0 is a learning rate (zero_values_take_effect); negative ones are not */
	EXPECT(2, MLP " --lr -1", "nabla train: --lr must be a finite number >= 0, got '-1'\n");
	EXPECT(2, MLP " --lr 0x10", "--lr must be a finite number >= 0, got '0x10'\n");
	EXPECT(2, MLP " --lr inf", "--lr must be a finite number >= 0, got 'inf'\n");
	EXPECT(2, MLP " --momentum 1", "--momentum must be a number >= 0 and < 1, got '1'\n");
	EXPECT(2, MLP " --weight-decay -0.1",
	       "--weight-decay must be a finite number >= 0, got '-0.1'\n");
	EXPECT(2, MLP " --optim sgd --momentum 0.5", "--momentum does not apply to sgd");
	EXPECT(2, MLP " --optim rmsprop --momentum 0", "--momentum does not apply to rmsprop");
	EXPECT(2, MLP " --gamma 0.5", "--gamma applies to --schedule step or exponential only\n");
	/* the other commands share the parser */
	EXPECT(2, "summary --model mlp --batch 2147483648",
	       "nabla summary: --batch must be an integer from 1 to 1048576, got '2147483648'\n");
	EXPECT(2, "dot --model mlp --batch -1", "nabla dot: --batch must be an integer from 1 to");
	EXPECT(2, "gradcheck --seeds 4294967297",
	       "nabla gradcheck: --seeds must be an integer from 1");
	EXPECT(2, "ewma --demo --n 0x10", "nabla ewma: --n must be an integer from 1 to 100000000");
}
END_TEST

/* the parameters (*.w, *.b) of two checkpoints are equal, byte for byte */
static bool same_params(const char *a, const char *b)
{
	nb_safetensors *fa, *fb;
	ck_assert_int_eq(nb_safetensors_open(path(a), &fa, NULL, 0), NB_OK);
	ck_assert_int_eq(nb_safetensors_open(path(b), &fb, NULL, 0), NB_OK);
	bool same = true;
	int n = 0;
	for (int i = 0; i < nb_safetensors_count(fa); i++) {
		nb_safetensors_info ia, ib;
		nb_safetensors_tensor(fa, i, &ia);
		size_t len = strlen(ia.name);
		if (len < 2 || (strcmp(ia.name + len - 2, ".w") && strcmp(ia.name + len - 2, ".b")))
			continue;
		int j = nb_safetensors_find(fb, ia.name);
		ck_assert_int_ge(j, 0);
		nb_safetensors_tensor(fb, j, &ib);
		size_t bytes = ia.end - ia.begin;
		ck_assert_uint_eq(bytes, ib.end - ib.begin);
		char *va = malloc(bytes), *vb = malloc(bytes);
		ck_assert(va && vb);
		nb_safetensors_read(fa, i, va, bytes);
		nb_safetensors_read(fb, j, vb, bytes);
		same = same && !memcmp(va, vb, bytes);
		free(va), free(vb);
		n++;
	}
	ck_assert_int_ge(n, 2);
	nb_safetensors_free(fa);
	nb_safetensors_free(fb);
	return same;
}

static char *last_line(const char *args);
static void drop_timings(char *line);

/* the last JSON line of `nabla train`, without its timings */
static char *last_json(const char *args)
{
	char *l = last_line(args);
	drop_timings(l);
	return l;
}

/* A 0 on the command line is that value, as typed: --lr 0 leaves the
 * parameters where they were, --momentum 0 is plain SGD (or Adam with
 * beta1 0), --weight-decay 0 turns adamw's decay off; each differs from
 * the default it used to be read as, and a resumed run keeps it. */
START_TEST(test_zero_values_take_effect)
{
	/* --lr 0: one epoch or three, the same parameters */
	EXPECT(0, MLP " --lr 0 --epochs 1 --save lr1.st", NULL);
	char *out = expect(0, MLP " --lr 0 --epochs 3 --save lr3.st", "lr 0,", NULL);
	free(out);
	EXPECT(0, MLP " --lr 0.05 --epochs 3 --save moved.st", NULL);
	ck_assert(same_params("lr1.st", "lr3.st"));
	ck_assert(!same_params("lr1.st", "moved.st"));
	/* and with every optimizer, a schedule and a warm-up too */
	const char *kinds[] = {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"};
	char args[512];
	for (int k = 0; k < 6; k++) {
		snprintf(args, sizeof args,
		         MLP
		         " --optim %s --lr 0 --epochs 2 --schedule cosine --warmup 1 --save k.st",
		         kinds[k]);
		EXPECT(0, args, NULL);
		ck_assert_msg(same_params("lr1.st", "k.st"), "%s moved with --lr 0", kinds[k]);
	}

#define RUN2 MLP " --json --lr 0.05 "
	/* --momentum 0 with momentum: sgd, bit for bit; not the default 0.9 */
	char *m0 = last_json(RUN2 "--optim momentum --momentum 0 --epochs 3");
	char *sgd = last_json(RUN2 "--optim sgd --epochs 3");
	char *m9 = last_json(RUN2 "--optim momentum --epochs 3");
	ck_assert_msg(!strcmp(m0, sgd), "momentum 0\n%s\nsgd\n%s", m0, sgd);
	ck_assert_msg(strcmp(m0, m9), "momentum 0 is the default:\n%s", m0);
	/* adam's beta1 (--momentum) 0 is not its default 0.9 */
	char *a0 = last_json(RUN2 "--optim adam --momentum 0 --epochs 3");
	char *adam = last_json(RUN2 "--optim adam --epochs 3");
	ck_assert_msg(strcmp(a0, adam), "adam beta1 0 is the default:\n%s", a0);
	/* adamw --weight-decay 0: no decay, adam's run; not adamw's 0.01 */
	char *w0 = last_json(RUN2 "--optim adamw --weight-decay 0 --epochs 3");
	char *w1 = last_json(RUN2 "--optim adamw --epochs 3");
	ck_assert_msg(!strcmp(w0, adam), "adamw wd 0\n%s\nadam\n%s", w0, adam);
	ck_assert_msg(strcmp(w0, w1), "adamw wd 0 is the default:\n%s", w0);
	/* a resumed run keeps --momentum 0 (the checkpoint records it) */
	EXPECT(0, RUN2 "--optim momentum --momentum 0 --epochs 2 --save m0.st", NULL);
	char *resumed = last_json(MLP " --json --epochs 3 --resume m0.st");
	ck_assert_msg(!strcmp(resumed, m0), "resumed\n%s\nuninterrupted\n%s", resumed, m0);
#undef RUN2
	free(m0), free(sgd), free(m9), free(a0), free(adam), free(w0), free(w1), free(resumed);
}
END_TEST

/* lenet's recipe is momentum 0.9: a run with --optim sgd saves no
 * momentum (sgd has none) and resumes as the uninterrupted run goes on; a
 * file that records the recipe's momentum for sgd (as they were written
 * before) resumes too, and --momentum typed with it is still refused. */
#define LENET_SGD "train --model lenet --data . --batch 4 --out none --optim sgd"
START_TEST(test_resume_sgd_of_a_momentum_recipe)
{
	char *whole = last_json(LENET_SGD " --json --epochs 2");
	EXPECT(0, LENET_SGD " --epochs 1 --save s.st", NULL);
	nb_safetensors *f;
	ck_assert_int_eq(nb_safetensors_open(path("s.st"), &f, NULL, 0), NB_OK);
	ck_assert_ptr_null(nb_safetensors_meta(f, "momentum"));
	nb_safetensors_free(f);
	char *resumed =
	    last_json("train --model lenet --data . --out none --json --epochs 2 --resume s.st");
	ck_assert_msg(!strcmp(whole, resumed), "resumed\n%s\nuninterrupted\n%s", resumed, whole);
	free(whole), free(resumed);
	/* an sgd checkpoint with momentum 0.9 in its metadata */
	nb_model *m = nb_test_zoo("lenet", NB_F32, 4, 1);
	nb_optim *o = nb_optimizer(nb_model_graph(m), nb_model_loss(m),
	                           (nb_optim_opts){.kind = NB_OPTIM_SGD});
	ck_assert_ptr_nonnull(o);
	const char *meta[] = {"epoch", "1", "batch", "4", "momentum", "0.9"};
	nb_checkpoint_opts co = {.meta = meta, .n_meta = 3};
	ck_assert_int_eq(nb_checkpoint_save_opts(nb_model_graph(m), o, path("old.st"), "lenet", co),
	                 NB_OK);
	nb_graph_free(nb_model_graph(m));
	EXPECT(0, "train --model lenet --data . --out none --epochs 2 --resume old.st",
	       "resumed lenet from old.st after epoch 1");
	EXPECT(2,
	       "train --model lenet --data . --out none --epochs 2 --resume old.st --momentum 0.5",
	       "nabla train: --momentum does not apply to sgd (momentum, nesterov, adam, adamw)\n");
}
END_TEST
#undef LENET_SGD

/* --classes is two different ids of digits alone (",4" was 0,4 and "2,"
 * 2,0); a checkpoint's "classes" is held to the same form on --resume */
#define BIN "train --model mlp-binary-sigmoid --data . --batch 2 --out none"
START_TEST(test_classes_are_two_ids)
{
	static const char *const bad[] = {",4",   "2,",    " 2,4", "+2,4", "2,4x",
	                                  "2, 4", "256,1", "2,2",  "-1,2", "2"};
	char args[256];
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		snprintf(args, sizeof args, BIN " --epochs 1 --save c.st --classes '%s'", bad[i]);
		EXPECT(2, args, "nabla train: --classes wants two different class ids, e.g. 2,4\n");
		ck_assert_msg(!exists("c.st"), "--classes '%s' wrote c.st", bad[i]);
	}
	EXPECT(0, BIN " --epochs 1 --classes 2,4 --save b.st", NULL);
	retag("b.st", "classes", ",4");
	EXPECT(1, BIN " --epochs 2 --resume b.st",
	       "nabla train: --resume: b.st: metadata classes \",4\" is not two different class "
	       "ids (A,B)\n");
}
END_TEST
#undef BIN

/* `nabla bench` exited 2 printing nothing, refused --warmup 0, took any
 * thread count */
START_TEST(test_bench_flags)
{
	EXPECT(2, "bench --model mlp --steps 0",
	       "nabla bench: --steps must be an integer from 1 to 1000000, got '0'\n");
	EXPECT(2, "bench --model mlp --batch 0",
	       "nabla bench: --batch must be an integer from 1 to 1048576, got '0'\n");
	EXPECT(2, "bench --model mlp --threads -1",
	       "nabla bench: --threads must be an integer from 0 to 1024, got '-1'\n");
	EXPECT(2, "bench --model mlp --threads 10000",
	       "--threads must be an integer from 0 to 1024");
	EXPECT(2, "bench --model matmul --repeat 0",
	       "nabla bench: --repeat must be an integer from 1 to 1000, got '0'\n");
	EXPECT(2, "bench --model xor --epochs 2147483648", "--epochs must be an integer from 1 to");
	EXPECT(2, "bench --model xor --epochs", "nabla: --epochs needs a value\n");
	char *out = expect(0,
	                   "bench --model mlp --data . --batch 4 --steps 2 --warmup 0 --threads 1 "
	                   "--json",
	                   "\"steps\": 2,", "\"fraction_of_peak\": ", NULL);
	char want[64];
	snprintf(want, sizeof want, "\"isa\": \"%s\"", nb_isa());
	ck_assert_msg(strstr(out, want), "%s", out);
	/* the step's FLOPs (the matrix products' multiply-adds) grow with the
	 * batch: twice the rows, twice the FLOPs */
	double f4 = 0, f8 = 0;
	const char *key = "\"gflop_per_step\": ", *p = strstr(out, key);
	ck_assert_msg(p && sscanf(p + strlen(key), "%lf", &f4) == 1 && f4 > 0, "%s", out);
	free(out);
	out = expect(0,
	             "bench --model mlp --data . --batch 8 --steps 2 --warmup 0 --threads 1 --json",
	             "\"steps\": 2,", NULL);
	p = strstr(out, key);
	ck_assert_msg(p && sscanf(p + strlen(key), "%lf", &f8) == 1, "%s", out);
	ck_assert_msg(fabs(f8 / f4 - 2) < 1e-3, "batch 4: %g GFLOP, batch 8: %g", f4, f8);
	free(out);
}
END_TEST

/* `nabla bench --model peak | gemm` and the environment's NABLA_ISA and
 * NABLA_GEMM, as a user types them */
START_TEST(test_bench_peak_and_gemm)
{
	char *out =
	    expect(0, "bench --model peak --threads 1 --json", "\"bench\": \"fma_peak_f32\"", NULL);
	const char *isa = nb_isa();
	char want[64];
	snprintf(want, sizeof want, "\"isa\": \"%s\"", isa);
	ck_assert_msg(strstr(out, want), "%s", out);
	double g256 = 0;
	const char *key = "\"gflops_256\": ", *p = strstr(out, key);
	ck_assert_ptr_nonnull(p);
	if (strcmp(isa, "baseline")) /* a measured rate, well above zero */
		ck_assert_msg(sscanf(p + strlen(key), "%lf", &g256) == 1 && g256 > 1, "%s", out);
	free(out);
	out = expect(0, "bench --model gemm --threads 1 --repeat 1 --json", "\"sgemm_512\"",
	             "\"sgemm_1024\"", "\"sgemm_2048\"", NULL);
	ck_assert_int_eq(count(out, "\"fraction_of_peak\": "), 3);
	ck_assert_int_eq(count(out, want), 3);
	free(out);
	EXPECT(0, "bench --model gemm --threads 1 --repeat 1", "sgemm n x n x n, 1 threads");
	/* a lower level is taken, an unknown value refused */
	setenv("NABLA_ISA", "baseline", 1);
	EXPECT(0, "bench --model peak --threads 1 --json", "\"isa\": \"baseline\"",
	       "\"gflops_256\": null");
	setenv("NABLA_ISA", "avx3", 1);
	EXPECT(2, "bench --model peak",
	       "nabla: NABLA_ISA must be one of baseline, avx2, avx512, not "
	       "'avx3'\n");
	unsetenv("NABLA_ISA");
	/* NABLA_GEMM=avx512 takes nabla's kernels wherever they apply */
	setenv("NABLA_GEMM", "avx512", 1);
	const char *cfg = nb_blis_config();
	bool ours = !strcmp(isa, "avx512") && strcmp(cfg, "skx") && strcmp(cfg, "knl");
	char line[256];
	snprintf(line, sizeof line,
	         "\"sgemm_512\", \"threads\": 1, \"isa\": \"%s\", \"blis_config\": \"%s\", "
	         "\"gemm_kernel\": \"%s\"",
	         isa, cfg, ours ? "avx512" : "blis");
	EXPECT(0, "bench --model gemm --threads 1 --repeat 1 --json", line);
	setenv("NABLA_GEMM", "fast", 1);
	EXPECT(2, "bench --model gemm",
	       "nabla: NABLA_GEMM must be one of avx512, blis, not 'fast'\n");
	unsetenv("NABLA_GEMM");
}
END_TEST

static char *file_bytes(const char *name, size_t *len); /* below */

/* Which packed GEMM kernel runs (NABLA_GEMM, else a timing measurement a
 * busy machine can tip) never changes a result: the MLP's products (4 rows
 * a batch: the small-matrix path at AVX-512) and its training give the
 * same checkpoint, to the byte, with either, on 1 and 2 threads. */
START_TEST(test_gemm_kernel_keeps_bits)
{
	const char *cfg = nb_blis_config();
	if (strcmp(nb_isa(), "avx512") || !strcmp(cfg, "skx") || !strcmp(cfg, "knl")) {
		/* NABLA_GEMM=avx512 finds nothing to take: both runs would be one */
		printf("nabla's GEMM kernels do not apply here (isa %s, BLIS %s)\n", nb_isa(), cfg);
		return;
	}
	for (int th = 1; th <= 2; th++) {
		char args[256], want[64];
		for (int k = 0; k < 2; k++) {
			setenv("NABLA_GEMM", k ? "blis" : "avx512", 1);
			snprintf(args, sizeof args, MLP " --epochs 2 --threads %d --save g%d.st",
			         th, k);
			snprintf(want, sizeof want, "wrote the checkpoint to g%d.st", k);
			EXPECT(0, args, want);
		}
		unsetenv("NABLA_GEMM");
		size_t n0, n1;
		char *b0 = file_bytes("g0.st", &n0), *b1 = file_bytes("g1.st", &n1);
		ck_assert_msg(n0 == n1 && !memcmp(b0, b1, n0),
		              "%d threads: NABLA_GEMM=avx512 and blis trained other weights", th);
		free(b0), free(b1);
	}
}
END_TEST

/* ---- the notes' models -------------------------------------------------------------- */

/* the last JSON line of `nabla args` without its "seconds" member */
static char *last_line(const char *args)
{
	char *out;
	ck_assert_msg(run(args, &out) == 0, "nabla %s failed:\n%s", args, out);
	size_t n = strlen(out);
	while (n && out[n - 1] == '\n')
		out[--n] = 0;
	char *l = strrchr(out, '\n');
	char *line = strdup(l ? l + 1 : out);
	free(out);
	char *sec = strstr(line, "\"seconds\": ");
	ck_assert_ptr_nonnull(sec);
	char *comma = strchr(sec, ',');
	memmove(sec, comma ? comma + 2 : sec + strlen(sec), strlen(comma ? comma + 2 : "") + 1);
	return line;
}

/* --save writes a checkpoint; --resume continues bit-identically (the
 * last epoch's numbers equal an uninterrupted run's) */
START_TEST(test_notes_models_save_and_resume)
{
	static const struct {
		const char *model;
		int half, all;
	} cases[] = {
	    {"xor", 30, 60},         {"backprop-example", 1, 3}, {"perceptron-and", 2, 4},
	    {"perceptron-or", 1, 3}, {"curve-fit", 10, 20},
	};
	char args[512];
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *m = cases[i].model;
		unlink(path("n.st"));
		snprintf(args, sizeof args, "train --model %s --json --out none --epochs %d", m,
		         cases[i].all);
		char *whole = last_line(args);
		snprintf(args, sizeof args, "train --model %s --out none --epochs %d --save n.st",
		         m, cases[i].half);
		EXPECT(0, args, "nabla train: wrote the checkpoint to n.st\n");
		ck_assert_msg(exists("n.st"), "%s: no checkpoint", m);
		/* the file is a checkpoint of this model */
		nb_safetensors *f;
		char err[512];
		ck_assert_int_eq(nb_safetensors_open(path("n.st"), &f, err, sizeof err), NB_OK);
		ck_assert_str_eq(nb_safetensors_meta(f, "model"), m);
		int64_t ep;
		ck_assert_int_eq(nb_safetensors_meta_int(f, "epoch", 0, 100, &ep, err, sizeof err),
		                 NB_OK);
		ck_assert_int_eq(ep, cases[i].half);
		nb_safetensors_free(f);
		snprintf(args, sizeof args,
		         "train --model %s --json --out none --epochs %d --resume n.st", m,
		         cases[i].all);
		char *resumed = last_line(args);
		ck_assert_msg(!strcmp(whole, resumed), "%s: resumed\n%s\nuninterrupted\n%s", m,
		              resumed, whole);
		free(whole), free(resumed);
		/* another notes model's file is refused by name */
		snprintf(args, sizeof args, "train --model %s --out none --resume n.st",
		         strcmp(m, "xor") ? "xor" : "curve-fit");
		EXPECT(1, args, "n.st: the checkpoint is of model \"");
	}
	/* a missing file is an error, not a fresh start */
	char *out = expect(1, "train --model xor --out none --resume /nonexistent/x.st",
	                   "nabla train: --resume: /nonexistent/x.st: cannot open: No such file or "
	                   "directory\n",
	                   NULL);
	ck_assert(!strstr(out, "epoch "));
	free(out);
}
END_TEST

/* One list of models: `nabla train --help` and an unknown --model name
 * every zoo model and every notes' model once; the commands that build a
 * model rather than train it list the ones they can build. */
START_TEST(test_one_model_list)
{
	static const char *const notes[] = {"perceptron-and", "perceptron-or", "xor",
	                                    "backprop-example", "curve-fit"};
	char *help = expect(0, "train --help", NULL);
	char *bad = expect(2, "train --model nope --out none", "unknown model 'nope'", NULL);
	char *sum = expect(2, "summary --model nope", "unknown model 'nope'", NULL);
	char line[128];
	for (int i = 0; nb_zoo(i); i++) {
		const nb_zoo_entry *z = nb_zoo(i);
		snprintf(line, sizeof line, "\n  %-20s %s\n", z->name, z->summary);
		ck_assert_msg(count(help, line) == 1, "train --help lacks %s", z->name);
		ck_assert_msg(count(sum, line) == 1, "summary lacks %s", z->name);
		snprintf(line, sizeof line, " %s ", z->name);
		ck_assert_msg(count(bad, line) == 1, "the unknown-model message lacks %s", z->name);
	}
	for (size_t i = 0; i < sizeof notes / sizeof *notes; i++) {
		snprintf(line, sizeof line, "\n  %-20s ", notes[i]);
		ck_assert_msg(count(help, line) == 1, "train --help lacks %s", notes[i]);
		ck_assert_msg(count(sum, line) == 1, "summary lacks %s", notes[i]);
		snprintf(line, sizeof line, " %s", notes[i]);
		ck_assert_msg(strstr(bad, line), "the unknown-model message lacks %s", notes[i]);
	}
	free(help), free(bad), free(sum);
	EXPECT(0, "summary --model curve-fit", "dense3  [64,1]");
	EXPECT(0, "summary --model perceptron-or", "perceptron-or");
}
END_TEST

/* Every command takes every model `nabla help train` lists. */
START_TEST(test_every_command_takes_every_model)
{
	char *help = expect(0, "help train", NULL);
	const char *list = strstr(help, "\nmodels:\n");
	ck_assert_ptr_nonnull(list);
	int n = 0;
	for (const char *q = list + 9; q[0] == ' ' && q[1] == ' ' && q[2] != ' '; n++) {
		char name[64], cmd[256];
		ck_assert_int_eq(sscanf(q + 2, "%63s", name), 1);
		snprintf(cmd, sizeof cmd, "summary --model %s", name);
		free(expect(0, cmd, "trainable parameters", NULL));
		snprintf(cmd, sizeof cmd, "dot --model %s -o %s.dot", name, name);
		EXPECT(0, cmd);
		snprintf(cmd, sizeof cmd, "%s.dot", name);
		char *dot = nb_test_read_file(path(cmd));
		ck_assert_msg(strstr(dot, "digraph nabla {") && strstr(dot, "|param|"), "%s", name);
		free(dot);
		snprintf(cmd, sizeof cmd, "dot --backward --model %s", name);
		free(expect(0, cmd, "digraph nabla {", NULL));
		snprintf(cmd, sizeof cmd, "export --model %s -o %s.onnx", name, name);
		EXPECT(0, cmd);
		snprintf(cmd, sizeof cmd, "%s.onnx", name);
		ck_assert_msg(exists(cmd), "export --model %s wrote nothing", name);
		q = strchr(q, '\n');
		ck_assert_ptr_nonnull(q);
		q++;
	}
	ck_assert_int_ge(n, 11);
	ck_assert_ptr_nonnull(strstr(list, "\n  curve-fit "));
	free(help);
}
END_TEST

/* nabla dot -o and nabla train --dot write the format of the extension:
 * DOT text for .dot and .gv, a rendering for what Graphviz renders, and
 * refuse another extension (exit 2, nothing written). */
START_TEST(test_dot_format_by_extension)
{
	static const struct {
		const char *file, *magic;
	} files[] = {{"g.dot", "// nabla"}, {"g.gv", "// nabla"},     {"g", "// nabla"},
	             {"g.svg", "<?xml"},    {"g.png", "\x89PNG\r\n"}, {"g.pdf", "%PDF-"},
	             {"G.PDF", "%PDF-"}};
	char cmd[256];
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		bool picture = strncmp(files[i].magic, "//", 2) != 0;
		snprintf(cmd, sizeof cmd, "dot --model xor -o %s", files[i].file);
		if (picture && !NABLA_HAVE_GVC) {
			EXPECT(2, cmd, "built without Graphviz's libgvc");
			ck_assert(!exists(files[i].file));
			continue;
		}
		EXPECT(0, cmd);
		char *s = nb_test_read_file(path(files[i].file));
		ck_assert_msg(!memcmp(s, files[i].magic, strlen(files[i].magic)), "%s",
		              files[i].file);
		free(s);
	}
	EXPECT(2, "dot --model xor -o g.xyz",
	       "cannot tell the format of 'g.xyz' from its extension", ".dot or .gv");
	if (NABLA_HAVE_GVC) {
		EXPECT(2, "dot -o g.xyz", " svg ", " png ", " pdf ");
		EXPECT(2, "dot -o h.svg --format png", "--format png does not match the extension");
		ck_assert(!exists("h.svg"));
		EXPECT(0, "dot -o h.txt --format svg");
		char *s = nb_test_read_file(path("h.txt"));
		ck_assert(!strncmp(s, "<?xml", 5));
		free(s);
		EXPECT(0, "train --model xor --epochs 2 --out none --dot x.pdf",
		       "wrote the graph to x.pdf");
		s = nb_test_read_file(path("x.pdf"));
		ck_assert(!strncmp(s, "%PDF-", 5));
		free(s);
	}
	EXPECT(2, "dot --format xyz", "unknown --format 'xyz'");
	ck_assert(!exists("g.xyz"));
	/* refused before training */
	char *out = expect(2, "train --model xor --epochs 2 --out none --dot x.xyz",
	                   "cannot tell the format of 'x.xyz'", NULL);
	ck_assert_ptr_null(strstr(out, "epoch"));
	free(out);
	ck_assert(!exists("x.xyz"));
}
END_TEST

/* JSON member "lr" of each epoch line of out, in order, into lr[]; the count */
static int epoch_lrs(const char *out, double *lr, int max)
{
	int n = 0;
	for (const char *q = out; n < max && (q = strstr(q, "\"lr\": ")); q++)
		lr[n++] = strtod(q + 6, NULL);
	return n;
}

/* Every --schedule trains a zoo model, each with its own parameters only
 * (the library refuses another schedule's): step and exponential decay,
 * cosine over the run's length (--max-batches included), and warm-up on
 * the constant rate.  Two steps an epoch; "lr" is the rate of the epoch's
 * last step (step 2e-1, from 0). */
START_TEST(test_every_schedule_trains)
{
	double lr[3];
	char *out =
	    expect(0, MLP " --epochs 3 --json --schedule step --step-size 2 --gamma 0.5", NULL);
	ck_assert_int_eq(epoch_lrs(out, lr, 3), 3);
	for (int e = 0; e < 3; e++) /* step t = 2e+1: t / 2 = e halvings */
		ck_assert_double_eq_tol(lr[e], 1e-3 * pow(0.5, e), 1e-9);
	free(out);
	out = expect(0, MLP " --epochs 3 --json --schedule exponential --gamma 0.5", NULL);
	ck_assert_int_eq(epoch_lrs(out, lr, 3), 3);
	for (int e = 0; e < 3; e++)
		ck_assert_double_eq_tol(lr[e], 1e-3 * pow(0.5, 2 * e + 1), 1e-9);
	free(out);
	out = expect(0, MLP " --epochs 3 --json --schedule cosine", NULL);
	ck_assert_int_eq(epoch_lrs(out, lr, 3), 3);
	for (int e = 0; e < 3; e++) /* over 6 steps */
		ck_assert_double_eq_tol(lr[e], 1e-3 * 0.5 * (1 + cos(M_PI * (2 * e + 1) / 6)),
		                        1e-8);
	free(out);
	out = expect(0, MLP " --epochs 3 --json --schedule cosine --max-batches 1", NULL);
	ck_assert_int_eq(epoch_lrs(out, lr, 3), 3);
	for (int e = 0; e < 3; e++) /* one step an epoch, over 3 steps */
		ck_assert_double_eq_tol(lr[e], 1e-3 * 0.5 * (1 + cos(M_PI * e / 3)), 1e-8);
	free(out);
	out = expect(0, MLP " --epochs 3 --json --warmup 4", NULL);
	ck_assert_int_eq(epoch_lrs(out, lr, 3), 3);
	ck_assert_double_eq_tol(lr[0], 1e-3 * 2 / 4, 1e-9); /* warm-up over steps 0 to 3 */
	ck_assert_double_eq_tol(lr[1], 1e-3, 1e-9);
	ck_assert_double_eq_tol(lr[2], 1e-3, 1e-9);
	free(out);
	EXPECT(2, MLP " --schedule step", "nabla train: --schedule step needs --step-size N");
}
END_TEST

START_TEST(test_notes_models_refuse_what_they_ignore)
{
	EXPECT(2, "train --model xor --batch 2 --out none",
	       "nabla train: --batch does not apply to xor: it trains on the 4 patterns at once "
	       "(full batch)\n");
	EXPECT(2, "train --model perceptron-and --batch=4 --out none",
	       "--batch does not apply to perceptron-and: it trains on one sample at a time");
	EXPECT(2, "train --model curve-fit --batch 8 --out none",
	       "--batch does not apply to curve-fit: it trains on the 64 points at once");
	EXPECT(0, "train --model xor --batch 4 --epochs 2 --out none"); /* its own batch */
	EXPECT(2, "train --model xor --data . --out none",
	       "nabla train: --data applies to the zoo models, not xor\n");
	EXPECT(2, "train --model curve-fit --schedule cosine --out none",
	       "--schedule applies to the zoo models, not curve-fit\n");
	EXPECT(2, "train --model xor --plot x.svg --out none",
	       "nabla train: --plot: xor has no plot\n");
	ck_assert(!exists("x.svg"));
	/* --optim is honoured (it was ignored) */
	char *out = expect(
	    0, "train --model xor --optim adam --lr 0.1 --epochs 2 --out none --save a.st", NULL);
	free(out);
	nb_safetensors *f;
	char err[512];
	ck_assert_int_eq(nb_safetensors_open(path("a.st"), &f, err, sizeof err), NB_OK);
	ck_assert_str_eq(nb_safetensors_meta(f, "optimizer"), "adam");
	nb_safetensors_free(f);
}
END_TEST

/* --plot and --dot that cannot be written exit 1 after one message */
START_TEST(test_unwritable_outputs_fail)
{
	EXPECT(1, "train --model perceptron-and --out none --plot /nonexistent/p.svg",
	       "nabla train: --plot: ");
	EXPECT(1, "train --model curve-fit --epochs 3 --out none --plot /nonexistent/p.svg",
	       "nabla train: --plot: ");
	EXPECT(
	    1, "train --model xor --epochs 3 --out none --dot /nonexistent/d.dot",
	    "nabla train: --dot: /nonexistent/d.dot: the directory /nonexistent does not exist\n");
	EXPECT(1, MLP " --epochs 1 --dot /nonexistent/d.dot", "nabla train: --dot: ");
	EXPECT(1, MLP " --epochs 1 --plot /nonexistent/p.svg", "nabla train: --plot: ");
	EXPECT(1, MLP " --epochs 1 --save /nonexistent/m.st",
	       "nabla train: --save: /nonexistent/m.st");
	char *out;
	ck_assert_int_eq(run(MLP " --epochs 1 --save /nonexistent/m.st", &out), 1);
	ck_assert_msg(!strstr(out, "wrote the checkpoint"), "%s", out);
	free(out);
}
END_TEST

/* a diverging run (lr 1e308) ended with exit 0 */
START_TEST(test_nonfinite_loss_fails)
{
	char *out =
	    expect(1, "train --model xor --lr 1e308 --out none",
	           "nabla train: the loss is NaN at epoch 2 (step 2): training diverged; try "
	           "a lower --lr, or --allow-nonfinite to go on regardless\n",
	           NULL);
	free(out);
	EXPECT(0, "train --model xor --lr 1e308 --epochs 5 --out none --allow-nonfinite");
	EXPECT(1, "train --model curve-fit --lr 1e308 --out none --epochs 50", "training diverged");
	EXPECT(1, "train --model backprop-example --lr 1e308 --out none --epochs 5",
	       "training diverged");
	/* the zoo: stopped inside nb_fit, before the epoch's checkpoint */
	EXPECT(1, MLP " --lr 1e308 --epochs 2 --save nan.st", "training diverged");
	ck_assert(!exists("nan.st"));
	EXPECT(0, MLP " --lr 1e308 --epochs 2 --allow-nonfinite --json");
	EXPECT(0, "train --help", "--allow-nonfinite");
}
END_TEST

/* the series reader quotes the file's text in its messages, escaped */
START_TEST(test_ewma_messages_are_escaped)
{
	FILE *fp = fopen(path("s.txt"), "wb");
	ck_assert_ptr_nonnull(fp);
	fputs("1\n2\n\x1b]0;x\x07\xc2\x9b"
	      "2J\r\n",
	      fp);
	fclose(fp);
	char *out = expect(1, "ewma --beta 0.5 s.txt",
	                   "nabla ewma: s.txt: line 3: '?]0;x??2J' is not "
	                   "a number\n",
	                   NULL);
	ck_assert_msg(!has_control(out), "control bytes in:\n%s", out);
	free(out);
}
END_TEST

/* ---- resume: the checkpoint's recipe and history ------------------------------------ */

/* the README's line that starts with `start`, its comment cut */
static char *readme_line(const char *start)
{
	FILE *fp = fopen(NB_SOURCE_ROOT "/README.md", "r");
	ck_assert_ptr_nonnull(fp);
	char line[1024], *found = NULL;
	while (!found && fgets(line, sizeof line, fp))
		if (!strncmp(line, start, strlen(start))) {
			char *c = strchr(line, '#');
			if (c)
				*c = 0;
			size_t n = strlen(line);
			while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
				line[--n] = 0;
			found = strdup(line + strlen("nabla "));
		}
	fclose(fp);
	ck_assert_msg(found != NULL, "README has no line '%s'", start);
	return found;
}

/* a file's bytes (*n of them; NUL-terminated) */
static char *file_bytes(const char *name, size_t *len)
{
	FILE *fp = fopen(path(name), "rb");
	ck_assert_msg(fp != NULL, "%s is missing", name);
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(s, 1, (size_t)n, fp), (size_t)n);
	s[n] = 0;
	fclose(fp);
	*len = (size_t)n;
	return s;
}

static char *file_text(const char *name)
{
	size_t n;
	return file_bytes(name, &n);
}

static void copy_file(const char *from, const char *to)
{
	size_t n;
	char *b = file_bytes(from, &n);
	FILE *fp = fopen(path(to), "wb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(b, 1, n, fp), n);
	fclose(fp);
	free(b);
}

/* a JSON line without its timings (samples_per_s, ms_per_step) */
static void drop_timings(char *line)
{
	char *a = strstr(line, "\"samples_per_s\": "), *b = strstr(line, "\"steps\": ");
	ck_assert(a && b && b > a);
	memmove(a, b, strlen(b) + 1);
}

/* The README's two commands as typed (on the tiny data set here): the
 * resume needs no --optim, keeps adam's lr 1e-3, trains epochs 6 to 8 and
 * says so; once more, it has nothing left to do and says that. */
START_TEST(test_readme_resume_example)
{
	char *first = readme_line("nabla train --model lenet --epochs 5 --optim adam");
	char *second = readme_line("nabla train --model lenet --resume");
	char args[1200];
	snprintf(args, sizeof args, "%s --data .", first);
	char *out = expect(0, args, "epoch 5/5", "wrote the checkpoint to lenet.safetensors", NULL);
	free(out);
	snprintf(args, sizeof args, "%s --data .", second);
	out = expect(0, args,
	             "nabla train: model lenet, 8 epochs in all (resumed), optimizer adam, lr "
	             "0.001, batch 64, f32, seed 1,",
	             "nabla train: resumed lenet from lenet.safetensors after epoch 5 (step 5)\n",
	             "optimizer adam\n", "epoch 6/8", "epoch 8/8", NULL);
	ck_assert_msg(!strstr(out, "epoch 5/8") && !strstr(out, "overrides"), "%s", out);
	free(out);
	nb_safetensors *f;
	char err[512];
	int64_t ep;
	double lr, h[8];
	/* the resumed run saved to its default nabla-out/lenet.safetensors */
	ck_assert_int_eq(
	    nb_safetensors_open(path("nabla-out/lenet.safetensors"), &f, err, sizeof err), NB_OK);
	ck_assert_int_eq(nb_safetensors_meta_int(f, "epoch", 0, 100, &ep, err, sizeof err), NB_OK);
	ck_assert_int_eq(ep, 8);
	ck_assert_int_eq(nb_safetensors_meta_number(f, "base_lr", 0, 1, &lr, err, sizeof err),
	                 NB_OK);
	ck_assert(lr == 1e-3);
	ck_assert_str_eq(nb_safetensors_meta(f, "optimizer"), "adam");
	ck_assert_int_eq(
	    nb_safetensors_meta_numbers(f, "history_train_loss", 0, 1e300, h, 8, err, sizeof err),
	    NB_OK);
	nb_safetensors_free(f);
	/* nothing left: said, exit 2, nothing trained or rewritten */
	size_t n0, n1;
	char *before = file_bytes("nabla-out/lenet.safetensors", &n0);
	snprintf(args, sizeof args,
	         "train --model lenet --resume nabla-out/lenet.safetensors "
	         "--epochs 8 --data .");
	out =
	    expect(2, args,
	           "nabla train: --resume: nabla-out/lenet.safetensors was saved after epoch 8, so "
	           "nothing is left to do with --epochs 8 (it counts all the epochs, the resumed "
	           "ones too); nothing trained or written; ask for more, e.g. --epochs 9\n",
	           NULL);
	ck_assert_msg(!strstr(out, "epoch 9/") && !strstr(out, "wrote"), "%s", out);
	free(out);
	char *after = file_bytes("nabla-out/lenet.safetensors", &n1);
	ck_assert(n0 == n1 && !memcmp(before, after, n0));
	free(before), free(after);
	/* fewer epochs than done: the same */
	snprintf(args, sizeof args, "%s --data . --epochs 3", second);
	EXPECT(2, args, "saved after epoch 5, so nothing is left to do with --epochs 3");
	free(first), free(second);
}
END_TEST

#define SCHED_RUN                                                                                  \
	"train --model mlp --data . --out none --json --optim momentum --lr 0.05 --momentum 0.8 "  \
	"--weight-decay 0.001 --clip-norm 2 --seed 5 --schedule step --step-size 3 --gamma 0.5 "   \
	"--warmup 1 --batch 2 --max-batches 3 --train-limit 6 --test-limit 3 --standardize"

/* A resumed run with no flags goes on with the whole recipe: its last
 * epoch equals an uninterrupted run's, bit for bit. */
START_TEST(test_resume_keeps_the_recipe)
{
	char *whole = last_line(SCHED_RUN " --epochs 4");
	EXPECT(0, SCHED_RUN " --epochs 2 --save r.st", NULL);
	char *resumed = last_line("train --model mlp --data . --out none --json --epochs 4 "
	                          "--resume r.st");
	drop_timings(whole), drop_timings(resumed);
	ck_assert_msg(!strcmp(whole, resumed), "resumed\n%s\nuninterrupted\n%s", resumed, whole);
	free(whole), free(resumed);
	/* the banner shows the recipe */
	EXPECT(0, "train --model mlp --data . --out none --epochs 3 --resume r.st",
	       "nabla train: model mlp, 3 epochs in all (resumed), optimizer momentum, lr 0.05, "
	       "batch 2, f32, seed 5,",
	       "resumed mlp from r.st after epoch 2 (step 6)\n");
}
END_TEST

/* An explicit flag wins, with a notice; --lr reaches the optimizer (it was
 * replaced by the checkpoint's) */
START_TEST(test_resume_flags_override)
{
	EXPECT(0, MLP " --optim sgd --lr 0.05 --epochs 1 --save c.st", NULL);
	char *out = expect(0, MLP " --json --epochs 2 --resume c.st", NULL);
	ck_assert_msg(strstr(out, "\"lr\": 0.05}"), "%s", out);
	free(out);
	out = expect(0, MLP " --json --epochs 2 --resume c.st --lr 0.01",
	             "nabla train: --lr 0.01 overrides the checkpoint's 0.05\n", NULL);
	ck_assert_msg(strstr(out, "\"lr\": 0.01}"), "%s", out);
	free(out);
	/* the same value: no notice */
	out = expect(0, MLP " --epochs 2 --resume c.st --lr 0.05", "lr 0.05", NULL);
	ck_assert_msg(!strstr(out, "overrides"), "%s", out);
	free(out);
	EXPECT(0, SCHED_RUN " --epochs 1 --save s.st", NULL);
	static const char *const cases[][2] = {
	    {"--batch 4", "--batch 4 overrides the checkpoint's 2\n"},
	    {"--seed 9", "--seed 9 overrides the checkpoint's 5\n"},
	    {"--seed=7", "--seed 7 overrides the checkpoint's 5\n"},
	    {"--momentum 0.5", "--momentum 0.5 overrides the checkpoint's 0.8\n"},
	    {"--weight-decay 0.01", "--weight-decay 0.01 overrides the checkpoint's 0.001\n"},
	    {"--clip-norm 1", "--clip-norm 1 overrides the checkpoint's 2\n"},
	    {"--max-batches 1", "--max-batches 1 overrides the checkpoint's 3\n"},
	    {"--train-limit 4", "--train-limit 4 overrides the checkpoint's 6\n"},
	    {"--test-limit 2", "--test-limit 2 overrides the checkpoint's 3\n"},
	    {"--gamma 0.25", "--gamma 0.25 overrides the checkpoint's 0.5\n"},
	    {"--step-size 2", "--step-size 2 overrides the checkpoint's 3\n"},
	    {"--warmup 0", "--warmup 0 overrides the checkpoint's 1\n"},
	    {"--schedule cosine", "--schedule cosine overrides the checkpoint's step\n"},
	};
	char args[512];
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		snprintf(args, sizeof args,
		         "train --model mlp --data . --out none --epochs 2 "
		         "--resume s.st %s",
		         cases[i][0]);
		out = expect(0, args, cases[i][1], "epoch 2/2", NULL);
		ck_assert_msg(!strstr(out, "epoch 1/2"), "%s", out);
		free(out);
	}
	/* another optimizer or dtype cannot use the file's state */
	out = expect(2, MLP " --epochs 2 --resume c.st --optim adam",
	             "nabla train: --optim adam: c.st was trained with sgd and holds its state; "
	             "resume with sgd (leave --optim out)\n",
	             NULL);
	ck_assert(!strstr(out, "epoch "));
	free(out);
	EXPECT(2, MLP " --epochs 2 --resume c.st --dtype f64",
	       "nabla train: --dtype f64: c.st holds f32 tensors; resume in f32 (leave --dtype "
	       "out)\n");
	/* an f64 checkpoint resumes in f64 */
	EXPECT(0, MLP " --dtype f64 --epochs 1 --save d.st", NULL);
	EXPECT(0, MLP " --epochs 2 --resume d.st", ", f64, ", "epoch 2/2");
}
END_TEST

/* The recipe and history metadata are checked before training. */
START_TEST(test_resume_recipe_metadata_is_checked)
{
	static const struct {
		const char *key, *json, *want;
	} cases[] = {
	    {"base_lr", "-1", "metadata base_lr \"-1\" is not a decimal number from 0 to"},
	    {"base_lr", "0x10", "metadata base_lr \"0x10\" is not a decimal number"},
	    {"batch", "0", "metadata batch \"0\" is not an integer from 1 to 1048576"},
	    {"seed", "1e3", "metadata seed \"1e3\" is not an integer"},
	    {"clip_norm", "inf", "metadata clip_norm \"inf\" is not a decimal number"},
	    {"schedule", "\\u001b[2Jstep", "metadata schedule is not one of constant, step"},
	    {"history_train_loss", "1,2", "metadata history_train_loss \"1,2\" is not 1 "},
	    {"history_test_accuracy", "1.5", "metadata history_test_accuracy \"1.5\" is not 1 "},
	    {"history_test_loss", "-2", "metadata history_test_loss \"-2\" is not 1 "},
	    {"history_train_loss", "nan", "metadata history_train_loss \"nan\" is not 1 "},
	    {"dtype", "F16", "metadata dtype 'F16' is not F32 or F64"},
	    {"dtype", "F32\\u001b[2J", "metadata dtype 'F32?[2J' is not F32 or F64"},
	};
	EXPECT(0, MLP " --epochs 1 --schedule exponential --gamma 0.9 --clip-norm 1 --save good.st",
	       NULL);
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		copy_file("good.st", "m.st");
		retag("m.st", cases[i].key, cases[i].json);
		char *out = expect(1, MLP " --epochs 3 --resume m.st --save out.st", NULL);
		ck_assert_msg(strstr(out, cases[i].want) && count(out, "m.st: metadata") == 1,
		              "%s: %s not in\n%s", cases[i].key, cases[i].want, out);
		ck_assert_msg(!strstr(out, "epoch 2/3") && !has_control(out), "%s", out);
		free(out);
		ck_assert(!exists("out.st"));
	}
	/* saved after the last epoch a run can have: no impossible suggestion */
	copy_file("good.st", "m.st");
	retag("m.st", "epoch", "1000000");
	char *out = expect(2, MLP " --epochs 3 --resume m.st --save out.st", NULL);
	ck_assert_msg(strstr(out, "nothing trained or written (1000000 epochs is the most a run "
	                          "has)") &&
	                  !strstr(out, "--epochs 1000001"),
	              "%s", out);
	free(out);
	ck_assert(!exists("out.st"));
}
END_TEST

/* A one-epoch run draws its point (markers), the x ticks are whole
 * epochs, loss and accuracy have their own panels; a resumed run's plot
 * has every epoch, the same file as an uninterrupted run's. */
START_TEST(test_training_curves)
{
	EXPECT(0, MLP " --epochs 1 --plot one.svg", "wrote the training curves to one.svg\n");
	char *svg = file_text("one.svg");
	ck_assert_int_eq(count(svg, "id=\"panel-0\""), 1);
	ck_assert_int_eq(count(svg, "id=\"panel-1\""), 1);
	/* the point of each of the four series, and the legend's four */
	ck_assert_int_eq(count(svg, "<circle") + count(svg, "<rect x=") -
	                     count(svg, "fill=\"none\" stroke=\"#333333\"") -
	                     count(svg, "fill-opacity"),
	                 8);
	ck_assert_msg(!strstr(svg, ">0.5</text>") || strstr(svg, ">1.0</text>"), "%s", svg);
	ck_assert_msg(!strstr(svg, ">1.5</text>") && !strstr(svg, ">0.8</text>"),
	              "fractional epoch ticks:\n%s", svg);
	free(svg);
	EXPECT(0, MLP " --epochs 3 --plot whole.svg", NULL);
	EXPECT(0, MLP " --epochs 1 --save p.st", NULL);
	EXPECT(0, MLP " --epochs 3 --resume p.st --plot resumed.svg", NULL);
	char *a = file_text("whole.svg"), *b = file_text("resumed.svg");
	ck_assert_msg(!strcmp(a, b), "the resumed run's curves differ:\n%s\n---\n%s", b, a);
	ck_assert(strstr(a, ">3</text>") && !strstr(a, ">2.5</text>"));
	free(a), free(b);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("cli");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_resume_epoch_metadata);
	tcase_add_test(tc, test_resume_step_and_lr_metadata);
	tcase_add_test(tc, test_resume_messages_are_escaped);
	tcase_add_test(tc, test_resume_checks_the_model);
	tcase_add_test(tc, test_numeric_flags_are_range_checked);
	tcase_add_test(tc, test_zero_values_take_effect);
	tcase_add_test(tc, test_resume_sgd_of_a_momentum_recipe);
	tcase_add_test(tc, test_classes_are_two_ids);
	tcase_add_test(tc, test_bench_flags);
	tcase_add_test(tc, test_bench_peak_and_gemm);
	tcase_add_test(tc, test_gemm_kernel_keeps_bits);
	tcase_add_test(tc, test_notes_models_save_and_resume);
	tcase_add_test(tc, test_notes_models_refuse_what_they_ignore);
	tcase_add_test(tc, test_one_model_list);
	tcase_add_test(tc, test_every_command_takes_every_model);
	tcase_add_test(tc, test_dot_format_by_extension);
	tcase_add_test(tc, test_every_schedule_trains);
	tcase_add_test(tc, test_unwritable_outputs_fail);
	tcase_add_test(tc, test_nonfinite_loss_fails);
	tcase_add_test(tc, test_ewma_messages_are_escaped);
	tcase_add_test(tc, test_readme_resume_example);
	tcase_add_test(tc, test_resume_keeps_the_recipe);
	tcase_add_test(tc, test_resume_flags_override);
	tcase_add_test(tc, test_resume_recipe_metadata_is_checked);
	tcase_add_test(tc, test_training_curves);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
