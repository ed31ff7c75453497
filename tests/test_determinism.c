/*
 * Determinism: two training runs with the same seed and the same number of
 * threads give bit-identical losses and weights, through everything that
 * draws random numbers or reduces in parallel: initialisation, the shuffled
 * minibatch order, dropout masks, batch normalisation and Adam, via nb_fit.
 * Another seed gives other losses.
 */
#include "test_util.h"

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
	*d = (nb_dataset){.n = SAMPLES, .c = FEATURES, .h = 1, .w = 1, .num_classes = CLASSES,
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
	nb_model m;
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
	r->loss[r->steps++] = nb_item(r->m.loss);
}

/* dense 32, batch norm, ReLU, dropout 0.3, dense 4; Adam */
static nb_optim *build(run *r, uint64_t seed)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, seed);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(BATCH, FEATURES));
	nb_tensor *h = nb_dense(x, 32, "fc1");
	h = nb_dropout(nb_relu(nb_batchnorm_layer(h, "bn1", (nb_batchnorm_opts){0})), 0.3);
	ck_assert_int_eq(nb_classifier(&r->m, x, nb_dense(h, CLASSES, "fc2"), NB_LOSS_SPARSE_CCE),
	                 NB_OK);
	nb_optim *o = nb_adam(g, r->m.loss, (nb_adam_opts){.lr = 0.01});
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
	nb_fit_opts fo = {.epochs = stop ? stop : EPOCHS, .seed = seed, .on_batch = on_batch, .user = r};
	ck_assert_int_eq(nb_fit(&r->m, o, d, fo), NB_OK);
	if (stop) {
		char path[] = "/tmp/nabla-resume-XXXXXX";
		int fd = mkstemp(path);
		ck_assert_int_ge(fd, 0);
		close(fd);
		ck_assert_int_eq(nb_checkpoint_save(r->m.g, o, path, "det"), NB_OK);
		nb_model_free(&r->m);
		nb_graph_free(r->m.g);
		o = build(r, seed + 1000); /* other initial weights: the checkpoint must win */
		ck_assert_int_eq(nb_checkpoint_load(r->m.g, o, path, NULL, 0), NB_OK);
		unlink(path);
		fo.epochs = EPOCHS;
		fo.first_epoch = stop;
		ck_assert_int_eq(nb_fit(&r->m, o, d, fo), NB_OK);
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
	nb_graph *g = r->m.g;
	/* every parameter and the running statistics */
	static const char *const names[] = {"fc1.w",    "fc1.b",           "bn1.gamma",
	                                    "bn1.beta", "bn1.running_mean", "bn1.running_var",
	                                    "fc2.w",    "fc2.b"};
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
	nb_model_free(&r->m);
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
		ck_assert_msg(last < 0.5 * first, "%d threads: loss %g -> %g", threads, first, last);
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

static Suite *suite(void)
{
	Suite *s = suite_create("determinism");
	TCase *tc = tcase_create("determinism");
	tcase_add_test(tc, test_resume_is_bit_identical);
	tcase_add_test(tc, test_same_seed_same_bits);
	tcase_add_test(tc, test_other_seed_other_losses);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
