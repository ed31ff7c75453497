/*
 * Determinism: two training runs with the same seed and the same number of
 * threads give bit-identical losses and weights, through everything that
 * draws random numbers or reduces in parallel: initialisation, the shuffled
 * minibatch order, dropout masks, batch normalisation and Adam, via nb_fit.
 * Another seed gives other losses.
 *
 * At 1, 2, 3 and 4 threads: the reductions (sum, mean, global norm, the
 * losses, batch normalisation's statistics) give the same bits run after
 * run and at every thread count, and a training step of a convolutional
 * network with batch normalisation gives the same bits run after run at
 * each thread count.  (Partial sums combined in the order the threads
 * finish differ now and then at 3 or 4 threads; the sizes and repetitions
 * here make that show.)
 */
#include "test_util.h"

#include "util/rng.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	FEATURES = 8,
	CLASSES = 4,
	SAMPLES = 640,
	BATCH = 32,
	EPOCHS = 10, /* 20 batches each: 200 steps */
	STEPS = EPOCHS * SAMPLES / BATCH,
};

/* Four Gaussian blobs in 8 dimensions, from a fixed generator (the data
 * are the same in every run; only the training seed varies). */
static void make_data(nb_dataset *d)
{
	*d = (nb_dataset){.n = SAMPLES,
	                  .c = FEATURES,
	                  .h = 1,
	                  .w = 1,
	                  .num_classes = CLASSES,
	                  .x = malloc(SAMPLES * FEATURES * sizeof(float)),
	                  .y = malloc(SAMPLES * sizeof(int32_t))};
	ck_assert(d->x && d->y);
	uint64_t s = 0x243f6a8885a308d3ULL;
	for (int i = 0; i < SAMPLES; i++) {
		d->y[i] = i % CLASSES;
		for (int j = 0; j < FEATURES; j++) {
			double u = 0;
			for (int k = 0; k < 4; k++) { /* sum of uniforms: roughly normal */
				s = s * 6364136223846793005ULL + 1442695040888963407ULL;
				u += (double)(s >> 11) * 0x1.0p-53 - 0.5;
			}
			double centre = (j % CLASSES == d->y[i]) ? 1.0 : 0.0;
			d->x[i * FEATURES + j] = (float)(centre + u);
		}
	}
}

typedef struct run {
	nb_model *m;
	double loss[STEPS];
	int steps;
	float *params;
	int64_t n_params;
} run;

static void on_batch(const nb_progress *p, void *user)
{
	run *r = user;
	(void)p;
	ck_assert_int_lt(r->steps, STEPS);
	r->loss[r->steps++] = nb_item(nb_model_loss(r->m));
}

/* dense 32, batch norm, ReLU, dropout 0.3, dense 4; Adam */
static nb_optim *build(run *r, uint64_t seed)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, seed);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(BATCH, FEATURES));
	nb_tensor *h = nb_dense(x, 32, "fc1");
	h = nb_dropout(nb_relu(nb_batchnorm_layer(h, "bn1", (nb_batchnorm_opts){0})), 0.3);
	r->m = nb_classifier(x, nb_dense(h, CLASSES, "fc2"), NB_LOSS_SPARSE_CCE);
	ck_assert_ptr_nonnull(r->m);
	nb_optim *o = nb_adam(g, nb_model_loss(r->m), (nb_adam_opts){.lr = 0.01});
	ck_assert_ptr_nonnull(o);
	return o;
}

static void read_params(run *r);

/* nb_fit for all epochs; or (stop > 0) for `stop` epochs, a checkpoint, a
 * fresh graph loading it, and nb_fit from epoch `stop` on */
static void train_with_resume(run *r, const nb_dataset *d, uint64_t seed, int threads, int stop)
{
	nb_set_num_threads(threads);
	memset(r, 0, sizeof *r);
	nb_optim *o = build(r, seed);
	nb_fit_opts fo = {
	    .epochs = stop ? stop : EPOCHS, .seed = seed, .on_batch = on_batch, .user = r};
	ck_assert_int_eq(nb_fit(r->m, o, d, fo), NB_OK);
	if (stop) {
		char path[] = "/tmp/nabla-resume-XXXXXX";
		int fd = mkstemp(path);
		ck_assert_int_ge(fd, 0);
		close(fd);
		ck_assert_int_eq(nb_checkpoint_save(nb_model_graph(r->m), o, path, "det"), NB_OK);
		nb_graph_free(nb_model_graph(r->m));
		o = build(r, seed + 1000); /* other initial weights: the checkpoint must win */
		ck_assert_int_eq(nb_checkpoint_load(nb_model_graph(r->m), o, path, NULL, 0), NB_OK);
		unlink(path);
		fo.epochs = EPOCHS;
		fo.first_epoch = stop;
		ck_assert_int_eq(nb_fit(r->m, o, d, fo), NB_OK);
	}
	ck_assert_int_eq(r->steps, STEPS);
	read_params(r);
}

static void train(run *r, const nb_dataset *d, uint64_t seed, int threads)
{
	train_with_resume(r, d, seed, threads, 0);
}

static void read_params(run *r)
{
	nb_graph *g = nb_model_graph(r->m);
	/* every parameter and the running statistics */
	static const char *const names[] = {
	    "fc1.w",           "fc1.b", "bn1.gamma", "bn1.beta", "bn1.running_mean",
	    "bn1.running_var", "fc2.w", "fc2.b"};
	for (int pass = 0; pass < 2; pass++) {
		int64_t k = 0;
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
			nb_tensor *t = nb_graph_find(g, names[i]);
			ck_assert_msg(t != NULL, "no tensor %s", names[i]);
			int64_t n = nb_tensor_size(t);
			if (pass)
				ck_assert_int_eq(nb_read_f32(t, r->params + k, n), NB_OK);
			k += n;
		}
		if (!pass) {
			r->n_params = k;
			r->params = malloc((size_t)k * sizeof(float));
		}
	}
	nb_graph_free(g);
}

static double mean(const double *v, int n)
{
	double s = 0;
	for (int i = 0; i < n; i++)
		s += v[i];
	return s / n;
}

/* (With 2 threads every GEMM, however small, runs on both threads in BLIS,
 * which is slow on a loaded machine: the 2-thread case trains twice only.) */
START_TEST(test_same_seed_same_bits)
{
	nb_dataset d;
	make_data(&d);
	run *a = malloc(sizeof *a), *b = malloc(sizeof *b);
	for (int threads = 1; threads <= 2; threads++) {
		train(a, &d, 5, threads);
		train(b, &d, 5, threads);
		ck_assert_msg(!memcmp(a->loss, b->loss, sizeof a->loss),
		              "%d threads: the losses of two runs with seed 5 differ", threads);
		ck_assert_int_eq(a->n_params, b->n_params);
		ck_assert_msg(!memcmp(a->params, b->params, (size_t)a->n_params * sizeof(float)),
		              "%d threads: the weights of two runs with seed 5 differ", threads);
		/* it trained: the last epoch's mean loss is well below the first's */
		int per = SAMPLES / BATCH;
		double first = mean(a->loss, per), last = mean(a->loss + STEPS - per, per);
		ck_assert_msg(last < 0.5 * first, "%d threads: loss %g -> %g", threads, first,
		              last);
		free(a->params), free(b->params);
	}
	free(a), free(b);
	nb_dataset_free(&d);
}
END_TEST

/* another seed: other initial weights, minibatch order and dropout masks */
START_TEST(test_other_seed_other_losses)
{
	nb_dataset d;
	make_data(&d);
	run *a = malloc(sizeof *a), *c = malloc(sizeof *c);
	train(a, &d, 5, 1);
	train(c, &d, 6, 1);
	int same = 0;
	for (int i = 0; i < STEPS; i++)
		same += a->loss[i] == c->loss[i];
	ck_assert_msg(same < STEPS / 10, "%d of %d losses equal across seeds", same, STEPS);
	ck_assert(memcmp(a->params, c->params, (size_t)a->n_params * sizeof(float)));
	free(a->params), free(c->params);
	free(a), free(c);
	nb_dataset_free(&d);
}
END_TEST

/* stopping after 4 epochs, saving, loading into a fresh graph and going on
 * gives the same losses and weights, bit for bit, as never stopping: the
 * checkpoint carries parameters, running statistics, Adam's moments and
 * step count, and the RNG (dropout masks); the batch order depends only on
 * the seed and the epoch */
START_TEST(test_resume_is_bit_identical)
{
	nb_dataset d;
	make_data(&d);
	run *a = malloc(sizeof *a), *b = malloc(sizeof *b);
	train(a, &d, 7, 1);
	train_with_resume(b, &d, 7, 1, 4);
	ck_assert_msg(!memcmp(a->loss, b->loss, sizeof a->loss), "losses differ after resuming");
	ck_assert_msg(!memcmp(a->params, b->params, (size_t)a->n_params * sizeof(float)),
	              "weights differ after resuming");
	free(a->params), free(b->params);
	free(a), free(b);
	nb_dataset_free(&d);
}
END_TEST

/* ---- reductions and a training step at 1 to 4 threads ---------------------------- */

enum {
	MAX_THREADS = 4,
	RED_DATA = 12, /* data sets, each run RED_REPEATS times per thread count */
	RED_REPEATS = 12,
	RED_ROWS = 256, /* [256, 256]: twice the size that runs on threads */
	RED_COLS = 256,
	RED_OUTS = 11,
};

/* One graph of the reductions on the data set k (f64: a different
 * order of additions shows in the last bits) */
typedef struct reds {
	nb_graph *g;
	nb_tensor *out[RED_OUTS], *rmean, *rvar;
	nb_program *p;
	double *val[RED_OUTS]; /* the values of the first run */
} reds;

static const char *const red_names[RED_OUTS] = {
    "sum",        "mean",     "global_norm", "mse",          "bce_logits", "cce",
    "sparse_cce", "mse(sum)", "batchnorm",   "running_mean", "running_var"};

static void reds_build(reds *r, int k)
{
	nb_graph *g = r->g = nb_graph_new(NB_F64);
	nb_graph_seed(g, 100 + (uint64_t)k);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(RED_ROWS, RED_COLS), NB_UNIFORM(-3, 3));
	nb_tensor *q = nb_param(g, "q", NB_SHAPE(RED_ROWS, RED_COLS), NB_UNIFORM(0, 1));
	double ids[RED_ROWS];
	for (int i = 0; i < RED_ROWS; i++)
		ids[i] = (i * 37 + k) % RED_COLS;
	nb_tensor *id = nb_constant(g, "ids", NB_SHAPE(RED_ROWS), ids);
	nb_tensor *both[2] = {x, q};
	nb_tensor *bn = nb_batchnorm_layer(nb_reshape(x, NB_SHAPE(64, 4, 16, 16)), "bn",
	                                   (nb_batchnorm_opts){0});
	nb_tensor *out[RED_OUTS] = {
	    nb_sum(x),
	    nb_mean(x),
	    nb_global_norm(both, 2),
	    nb_mse(x, q, NB_MEAN),
	    nb_bce_logits(x, q, NB_SUM),
	    nb_cce(x, q, NB_MEAN),
	    nb_sparse_cce(x, id, NB_SUM),
	    nb_mse(x, q, NB_SUM),
	    bn,
	    r->rmean = nb_graph_find(g, "bn.running_mean"),
	    r->rvar = nb_graph_find(g, "bn.running_var"),
	};
	memcpy(r->out, out, sizeof out);
	ck_graph_ok(g);
	r->p = nb_compile(g, out, RED_OUTS - 2);
	ck_graph_ok(g);
}

/* Runs the reductions from the same state (the running statistics back at
 * 0 and 1); the first call keeps the values, later ones compare.  Returns
 * the index of the first output whose bits differ, or -1. */
static int reds_run(reds *r)
{
	static const double zero[4] = {0}, one[4] = {1, 1, 1, 1};
	ck_assert_int_eq(nb_feed_f64(r->rmean, zero, 4), NB_OK);
	ck_assert_int_eq(nb_feed_f64(r->rvar, one, 4), NB_OK);
	ck_assert_int_eq(nb_run(r->p), NB_OK);
	int bad = -1;
	for (int j = 0; j < RED_OUTS; j++) {
		int64_t n = nb_tensor_size(r->out[j]);
		double *v = malloc((size_t)n * sizeof *v);
		ck_assert_ptr_nonnull(v);
		ck_assert_int_eq(nb_read_f64(r->out[j], v, n), NB_OK);
		if (!r->val[j])
			r->val[j] = v;
		else {
			if (bad < 0 && memcmp(v, r->val[j], (size_t)n * sizeof *v))
				bad = j;
			free(v);
		}
	}
	return bad;
}

static void reds_free(reds *r)
{
	for (int j = 0; j < RED_OUTS; j++)
		free(r->val[j]);
	nb_graph_free(r->g);
	memset(r, 0, sizeof *r);
}

/* Repeated runs at each thread count give the same bits. */
START_TEST(test_reductions_same_bits_each_run)
{
	for (int threads = 1; threads <= MAX_THREADS; threads++) {
		nb_set_num_threads(threads);
		for (int k = 0; k < RED_DATA; k++) {
			reds r = {0};
			reds_build(&r, k);
			for (int rep = 0; rep <= RED_REPEATS; rep++) {
				int bad = reds_run(&r);
				ck_assert_msg(
				    bad < 0,
				    "%d threads, data set %d: %s differs between run 1 and "
				    "run %d",
				    threads, k, bad < 0 ? "" : red_names[bad], rep + 1);
			}
			reds_free(&r);
		}
	}
}
END_TEST

/* ... and the same bits at every thread count: the order of the additions
 * depends on the data alone. */
START_TEST(test_reductions_same_bits_any_thread_count)
{
	for (int k = 0; k < RED_DATA / 3; k++) {
		reds r = {0};
		reds_build(&r, k);
		for (int threads = 1; threads <= MAX_THREADS; threads++) {
			nb_set_num_threads(threads);
			int bad = reds_run(&r);
			ck_assert_msg(bad < 0,
			              "data set %d: %s at %d threads differs from 1 thread", k,
			              bad < 0 ? "" : red_names[bad], threads);
		}
		reds_free(&r);
	}
}
END_TEST

enum {
	STEP_N = 16, /* the loss sums 16 x 8 x 16 x 16 = 32768 values: on threads */
	STEP_C = 3,
	STEP_O = 8,
	STEP_HW = 16,
	STEP_STEPS = 3,
	STEP_REPEATS = 6,
};

/* conv 3x3 (16 channels), batchnorm + ReLU, conv 3x3 (8 channels), mean
 * squared error against a fixed target; SGD with momentum and clipping at
 * the global gradient norm; f64 */
typedef struct step_run {
	double loss[STEP_STEPS], norm[STEP_STEPS];
	double *params;
	int64_t n_params;
} step_run;

static void fill(double *v, int64_t n, uint64_t s)
{
	for (int64_t i = 0; i < n; i++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		v[i] = (double)(s >> 11) * 0x1.0p-53 * 2 - 1;
	}
}

static void train_steps(step_run *r)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_graph_seed(g, 11);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(STEP_N, STEP_C, STEP_HW, STEP_HW));
	nb_tensor *y = nb_input(g, "y", NB_SHAPE(STEP_N, STEP_O, STEP_HW, STEP_HW));
	nb_conv_layer_opts co = {.conv = NB_CONV_OPTS(1, 1)};
	nb_tensor *h = nb_conv2d_layer(x, 16, 3, "c1", co);
	h = nb_batchnorm_layer(h, "bn", (nb_batchnorm_opts){.relu = true});
	h = nb_conv2d_layer(h, STEP_O, 3, "c2", co);
	nb_tensor *loss = nb_mse(h, y, NB_MEAN);
	nb_optim *o = nb_momentum(g, loss, (nb_momentum_opts){.lr = 0.05, .clip_norm = 0.5});
	ck_assert_ptr_nonnull(o);
	ck_graph_ok(g);
	const int64_t nx = nb_tensor_size(x), ny = nb_tensor_size(y);
	double *v = malloc((size_t)(nx + ny) * sizeof *v);
	ck_assert_ptr_nonnull(v);
	fill(v, nx + ny, 0x9e3779b97f4a7c15ULL);
	ck_assert_int_eq(nb_feed_f64(x, v, nx), NB_OK);
	ck_assert_int_eq(nb_feed_f64(y, v + nx, ny), NB_OK);
	free(v);
	for (int s = 0; s < STEP_STEPS; s++) {
		ck_assert_int_eq(nb_step(o), NB_OK);
		r->loss[s] = nb_item(loss);
		r->norm[s] = nb_optim_grad_norm(o);
	}
	/* every parameter and the running statistics */
	static const char *const names[] = {
	    "c1.w",           "c1.b", "bn.gamma", "bn.beta", "bn.running_mean",
	    "bn.running_var", "c2.w", "c2.b"};
	enum { NAMES = sizeof names / sizeof names[0] };
	r->n_params = 0;
	for (int i = 0; i < NAMES; i++) {
		nb_tensor *t = nb_graph_find(g, names[i]);
		ck_assert_msg(t != NULL, "no tensor %s", names[i]);
		r->n_params += nb_tensor_size(t);
	}
	r->params = malloc((size_t)r->n_params * sizeof(double));
	ck_assert_ptr_nonnull(r->params);
	int64_t k = 0;
	for (int i = 0; i < NAMES; i++) {
		nb_tensor *t = nb_graph_find(g, names[i]);
		ck_assert_int_eq(nb_read_f64(t, r->params + k, nb_tensor_size(t)), NB_OK);
		k += nb_tensor_size(t);
	}
	nb_graph_free(g);
}

START_TEST(test_training_step_same_bits_each_run)
{
	for (int threads = 1; threads <= MAX_THREADS; threads++) {
		nb_set_num_threads(threads);
		step_run a, b;
		train_steps(&a);
		for (int rep = 1; rep < STEP_REPEATS; rep++) {
			train_steps(&b);
			ck_assert_msg(!memcmp(a.loss, b.loss, sizeof a.loss),
			              "%d threads: the losses of runs 1 and %d differ", threads,
			              rep + 1);
			ck_assert_msg(!memcmp(a.norm, b.norm, sizeof a.norm),
			              "%d threads: the gradient norms of runs 1 and %d differ",
			              threads, rep + 1);
			ck_assert_int_eq(a.n_params, b.n_params);
			ck_assert_msg(
			    !memcmp(a.params, b.params, (size_t)a.n_params * sizeof(double)),
			    "%d threads: the weights of runs 1 and %d differ", threads, rep + 1);
			free(b.params);
		}
		/* it trained: the loss went down, and clipping was at work */
		ck_assert_msg(a.loss[STEP_STEPS - 1] < a.loss[0], "%d threads: loss %g -> %g",
		              threads, a.loss[0], a.loss[STEP_STEPS - 1]);
		ck_assert_msg(a.norm[0] > 0.5, "%d threads: gradient norm %g", threads, a.norm[0]);
		free(a.params);
	}
}
END_TEST

/* The one generator (util/rng.h) gives the published reference streams:
 * splitmix64 from state 0, and xoshiro256** from the state {1, 2, 3, 4};
 * the counter-based draw is the same stream, and the data module's
 * shuffle and the graph's generator are built on it. */
START_TEST(test_rng_reference_streams)
{
	static const uint64_t sm[4] = {0xe220a8397b1dcdafull, 0x6e789e6aa1b965f4ull,
	                               0x06c45d188009454full, 0xf88bb8a8724c81ecull};
	uint64_t s = 0;
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(nb__rand64(&s), sm[i]);
		ck_assert_uint_eq(nb__rand_at(0, (uint64_t)i), sm[i]);
	}
	static const uint64_t xo[10] = {11520ull,
	                                0ull,
	                                1509978240ull,
	                                1215971899390074240ull,
	                                1216172134540287360ull,
	                                607988272756665600ull,
	                                16172922978634559625ull,
	                                8476171486693032832ull,
	                                10595114339597558777ull,
	                                2904607092377533576ull};
	uint64_t st[4] = {1, 2, 3, 4};
	for (int i = 0; i < 10; i++)
		ck_assert_uint_eq(nb__xoshiro_next(st), xo[i]);
	/* a graph seeded with 5 draws xoshiro256** from four splitmix64 outputs */
	uint64_t seed = 5, want[4];
	for (int i = 0; i < 4; i++)
		want[i] = nb__rand64(&seed);
	nb_graph *g = nb_graph_new(NB_F64);
	nb_graph_seed(g, 5);
	nb_tensor *u = nb_param(g, "u", NB_SHAPE(3), NB_UNIFORM(0, 1));
	double ud[3];
	ck_assert_int_eq(nb_read_f64(u, ud, 3), NB_OK);
	for (int i = 0; i < 3; i++)
		ck_assert_double_eq(ud[i], nb__unit53(nb__xoshiro_next(want)));
	nb_graph_free(g);
	/* the data module's permutation: Fisher-Yates on the same stream */
	int64_t perm[8];
	nb_permutation(perm, 8, 9);
	uint64_t ps = nb__mix64(9);
	int64_t ref[8];
	for (int64_t i = 0; i < 8; i++)
		ref[i] = i;
	for (int64_t i = 7; i > 0; i--) {
		int64_t j = (int64_t)nb__rand_below(&ps, (uint64_t)i + 1), t = ref[i];
		ref[i] = ref[j], ref[j] = t;
	}
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(perm[i], ref[i]);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("determinism");
	TCase *tc = tcase_create("determinism");
	tcase_add_test(tc, test_rng_reference_streams);
	tcase_add_test(tc, test_resume_is_bit_identical);
	tcase_add_test(tc, test_same_seed_same_bits);
	tcase_add_test(tc, test_other_seed_other_losses);
	tcase_add_test(tc, test_reductions_same_bits_each_run);
	tcase_add_test(tc, test_reductions_same_bits_any_thread_count);
	tcase_add_test(tc, test_training_step_same_bits_each_run);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
