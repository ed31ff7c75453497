/*
 * The training loop: partial-batch weighting, evaluation, prediction, and
 * short seeded accuracy runs of the zoo's mlp and lenet on Fashion-MNIST
 * (skipped, with a message, when the dataset is not installed).
 */
#include "test_util.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A tiny linear classifier on hand-made data: 2 features, 3 classes. */
static nb_dataset tiny(int64_t n)
{
	nb_dataset d = {.n = n, .c = 1, .h = 1, .w = 2, .num_classes = 3};
	d.x = malloc(sizeof(float) * 2 * (size_t)n);
	d.y = malloc(sizeof(int32_t) * (size_t)n);
	for (int64_t i = 0; i < n; i++) {
		d.y[i] = (int32_t)(i % 3);
		d.x[2 * i] = (float)(d.y[i] == 1) + 0.01f * (float)i;
		d.x[2 * i + 1] = (float)(d.y[i] == 2) - 0.01f * (float)i;
	}
	return d;
}

static nb_model *tiny_model(int64_t batch)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_graph_seed(g, 3);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(batch, 2));
	nb_tensor *z = nb_dense(x, 3, "fc");
	nb_model *m = nb_classifier(x, z, NB_LOSS_SPARSE_CCE);
	ck_assert_msg(m != NULL, "%s", nb_graph_errmsg(g));
	return m;
}

/* The loss of a batch is the mean over its real samples: the padded rows
 * of a partial batch weigh nothing.  Checked against the per-sample losses
 * computed with batch 1. */
START_TEST(test_partial_batch_is_mean_over_real_samples)
{
	nb_dataset d = tiny(7);
	nb_model *m4, *m1;
	m4 = tiny_model(4);
	m1 = tiny_model(1);
	/* same weights in both */
	for (int i = 0; i < nb_graph_num_params(nb_model_graph(m4)); i++) {
		nb_tensor *a = nb_graph_param(nb_model_graph(m4), i),
		          *b = nb_graph_param(nb_model_graph(m1), i);
		double buf[16];
		nb_eval(a);
		nb_read_f64(a, buf, nb_tensor_size(a));
		nb_feed_f64(b, buf, nb_tensor_size(b));
	}
	double l4, a4, l1, a1;
	ck_assert_int_eq(nb_evaluate(m4, &d, &l4, &a4), NB_OK);
	ck_assert_int_eq(nb_evaluate(m1, &d, &l1, &a1), NB_OK);
	/* batches of 4 + 3 (one padded row) against seven batches of one */
	ck_near(l4, l1, 1e-14);
	ck_near(a4, a1, 0);
	nb_graph_free(nb_model_graph(m4)), nb_graph_free(nb_model_graph(m1));
	nb_dataset_free(&d);
}
END_TEST

/* conv -> batchnorm (+ReLU) -> dense -> batchnorm -> ReLU -> dense: both
 * kinds of batchnorm ([N,C,H,W] and [N,C]) on the tiny data. */
static nb_model *bn_model(int64_t batch)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_graph_seed(g, 7);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(batch, 1, 1, 2));
	nb_tensor *h = nb_conv2d_layer(x, 3, 1, "conv", (nb_conv_layer_opts){0});
	h = nb_batchnorm_layer(h, "bn1", (nb_batchnorm_opts){.relu = true, .momentum = 0.3});
	h = nb_dense(nb_flatten(h), 4, "fc1");
	h = nb_relu(nb_batchnorm_layer(h, "bn2", (nb_batchnorm_opts){0}));
	nb_model *m = nb_classifier(x, nb_dense(h, 3, "fc2"), NB_LOSS_SPARSE_CCE);
	ck_assert_msg(m != NULL, "%s", nb_graph_errmsg(g));
	return m;
}

/* Copy every parameter and running statistic of one graph into another
 * built by the same code. */
static void copy_state(nb_graph *from, nb_graph *to)
{
	static const char *const stats[] = {"bn1.running_mean", "bn1.running_var",
	                                    "bn2.running_mean", "bn2.running_var"};
	double buf[64];
	for (int i = 0; i < nb_graph_num_params(from); i++) {
		nb_tensor *a = nb_graph_param(from, i), *b = nb_graph_param(to, i);
		ck_assert_str_eq(nb_tensor_name(a), nb_tensor_name(b));
		ck_assert_int_le(nb_tensor_size(a), 64);
		ck_assert_int_eq(nb_read_f64(a, buf, nb_tensor_size(a)), NB_OK);
		ck_assert_int_eq(nb_feed_f64(b, buf, nb_tensor_size(b)), NB_OK);
	}
	for (int i = 0; i < 4; i++) {
		nb_tensor *a = nb_graph_find(from, stats[i]), *b = nb_graph_find(to, stats[i]);
		ck_assert_int_eq(nb_read_f64(a, buf, nb_tensor_size(a)), NB_OK);
		ck_assert_int_eq(nb_feed_f64(b, buf, nb_tensor_size(b)), NB_OK);
	}
}

/* One SGD step of a model on the samples [start, start + n) (n = its batch). */
static void manual_step(nb_model *m, nb_optim *o, const nb_dataset *d, int64_t start, int64_t n)
{
	double x[8], y[4], w[4];
	ck_assert_int_eq(nb_model_batch(m), n);
	for (int64_t i = 0; i < n; i++) {
		x[2 * i] = d->x[2 * (start + i)], x[2 * i + 1] = d->x[2 * (start + i) + 1];
		y[i] = d->y[start + i];
		w[i] = 1.0 / (double)n;
	}
	ck_assert_int_eq(nb_feed_f64(nb_model_input(m), x, 2 * n), NB_OK);
	ck_assert_int_eq(nb_feed_f64(nb_model_labels(m), y, n), NB_OK);
	ck_assert_int_eq(nb_feed_f64(nb_model_weights(m), w, n), NB_OK);
	ck_assert_int_eq(nb_step(o), NB_OK);
}

/* nb_fit pads the last batch (11 samples in batches of 4: 4 + 4 + 3), yet
 * it must train exactly as batches of the real sizes would: batchnorm's
 * statistics and running averages (unbiased with the real count) come from
 * the real rows only.  The reference runs the same steps by hand, the
 * full batches through a batch-4 graph and the last through a batch-3
 * graph, handing the weights and running statistics across. */
START_TEST(test_fit_partial_batch_batchnorm)
{
	nb_dataset d = tiny(11);
	nb_model *fit, *r4, *r3;
	fit = bn_model(4), r4 = bn_model(4), r3 = bn_model(3);
	const double lr = 0.5;
	nb_optim *of = nb_sgd(nb_model_graph(fit), nb_model_loss(fit), (nb_sgd_opts){.lr = lr});
	nb_optim *o4 = nb_sgd(nb_model_graph(r4), nb_model_loss(r4), (nb_sgd_opts){.lr = lr});
	nb_optim *o3 = nb_sgd(nb_model_graph(r3), nb_model_loss(r3), (nb_sgd_opts){.lr = lr});
	ck_graph_ok(nb_model_graph(fit)), ck_graph_ok(nb_model_graph(r4));
	ck_graph_ok(nb_model_graph(r3));
	/* the same seed makes them equal already */
	copy_state(nb_model_graph(fit), nb_model_graph(r4));
	const int epochs = 2;
	nb_fit_opts fo = {.epochs = epochs, .no_shuffle = true};
	ck_assert_int_eq(nb_fit(fit, of, &d, fo), NB_OK);
	for (int e = 0; e < epochs; e++) {
		manual_step(r4, o4, &d, 0, 4);
		manual_step(r4, o4, &d, 4, 4);
		copy_state(nb_model_graph(r4), nb_model_graph(r3));
		manual_step(r3, o3, &d, 8, 3);
		copy_state(nb_model_graph(r3), nb_model_graph(r4));
	}
	/* every parameter and running statistic, to rounding */
	int checked = 0;
	for (int i = 0; i < nb_graph_num_params(nb_model_graph(fit)); i++) {
		nb_tensor *a = nb_graph_param(nb_model_graph(fit), i);
		const char *name = nb_tensor_name(a);
		double va[64], vb[64];
		nb_tensor *b = nb_graph_find(nb_model_graph(r4), name);
		nb_read_f64(a, va, nb_tensor_size(a)), nb_read_f64(b, vb, nb_tensor_size(b));
		for (int64_t k = 0; k < nb_tensor_size(a); k++, checked++)
			ck_assert_msg(fabs(va[k] - vb[k]) <= 1e-12 * (1 + fabs(vb[k])),
			              "%s[%lld]: nb_fit %.17g, exact batches %.17g", name,
			              (long long)k, va[k], vb[k]);
	}
	static const char *const stats[] = {"bn1.running_mean", "bn1.running_var",
	                                    "bn2.running_mean", "bn2.running_var"};
	for (int i = 0; i < 4; i++) {
		double va[8], vb[8];
		nb_tensor *a = nb_graph_find(nb_model_graph(fit), stats[i]),
		          *b = nb_graph_find(nb_model_graph(r4), stats[i]);
		nb_read_f64(a, va, nb_tensor_size(a)), nb_read_f64(b, vb, nb_tensor_size(b));
		for (int64_t k = 0; k < nb_tensor_size(a); k++, checked++)
			ck_assert_msg(fabs(va[k] - vb[k]) <= 1e-12 * (1 + fabs(vb[k])),
			              "%s[%lld]: nb_fit %.17g, exact batches %.17g", stats[i],
			              (long long)k, va[k], vb[k]);
	}
	ck_assert_int_eq(checked,
	                 3 * 1 + 3 + 3 + 3 + 6 * 4 + 4 + 4 + 4 + 4 * 3 + 3 + 2 * 3 + 2 * 4);
	/* the padding is switched off again after training */
	ck_assert_int_eq(nb_graph_batch_rows(nb_model_graph(fit)), 0);
	nb_graph_free(nb_model_graph(fit)), nb_graph_free(nb_model_graph(r4));
	nb_graph_free(nb_model_graph(r3));
	nb_dataset_free(&d);
}
END_TEST

static int epochs_seen;
static bool count_epoch(const nb_epoch_stats *s, void *user)
{
	(void)user;
	epochs_seen++;
	ck_assert_int_eq(s->samples, 10); /* 4 + 4 + 2: nothing dropped */
	ck_assert_int_eq(s->steps, 3 * s->epoch);
	return true;
}

START_TEST(test_fit_learns_and_predict_agrees)
{
	nb_dataset d = tiny(10);
	nb_model *m = tiny_model(4);
	nb_optim *o = nb_adam(nb_model_graph(m), nb_model_loss(m), (nb_adam_opts){.lr = 0.1});
	ck_graph_ok(nb_model_graph(m));
	epochs_seen = 0;
	nb_fit_opts fo = {.epochs = 60, .seed = 5, .on_epoch = count_epoch};
	ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_OK);
	ck_assert_int_eq(epochs_seen, 60);
	double loss, acc;
	ck_assert_int_eq(nb_evaluate(m, &d, &loss, &acc), NB_OK);
	ck_near(acc, 1.0, 0);
	int32_t ids[10];
	float probs[30];
	ck_assert_int_eq(nb_predict(m, d.x, 10, ids, probs), NB_OK);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(ids[i], d.y[i]);
		ck_near(probs[3 * i] + probs[3 * i + 1] + probs[3 * i + 2], 1.0, 1e-6);
	}
	nb_graph_free(nb_model_graph(m));
	nb_dataset_free(&d);
}
END_TEST

START_TEST(test_fit_rejects_mismatched_data)
{
	nb_dataset d = tiny(5);
	d.w = 3; /* 3 values per sample, the model takes 2 */
	nb_model *m = tiny_model(2);
	nb_optim *o = nb_sgd(nb_model_graph(m), nb_model_loss(m), (nb_sgd_opts){.lr = 0.1});
	d.n = 3; /* keep the buffers large enough for the wrong shape */
	ck_assert_int_eq(nb_fit(m, o, &d, (nb_fit_opts){0}), NB_ERR_SHAPE);
	ck_assert_ptr_nonnull(
	    strstr(nb_graph_errmsg(nb_model_graph(m)), "dataset samples have 3 values"));
	nb_graph_free(nb_model_graph(m));
	d.n = 5;
	nb_dataset_free(&d);
}
END_TEST

static int first_seen;
static bool note_epoch(const nb_epoch_stats *s, void *user)
{
	(void)user;
	if (!epochs_seen++)
		first_seen = s->epoch;
	return true;
}

/* first_epoch is checked against 0..epochs: a resumed run whose epoch
 * count came from a file must not run before epoch 1 or past the end. */
START_TEST(test_fit_checks_first_epoch)
{
	nb_dataset d = tiny(10);
	nb_model *m = tiny_model(4);
	nb_optim *o = nb_sgd(nb_model_graph(m), nb_model_loss(m), (nb_sgd_opts){.lr = 0.1});
	ck_graph_ok(nb_model_graph(m));
	static const int bad[] = {-3, -1, 7, INT_MAX, INT_MIN};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		epochs_seen = 0;
		nb_fit_opts fo = {.epochs = 6, .first_epoch = bad[i], .on_epoch = note_epoch};
		ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_ERR_ARG);
		char want[96];
		snprintf(want, sizeof want, "fit: first_epoch %d is outside 0..6 (the epochs)",
		         bad[i]);
		ck_assert_str_eq(nb_graph_errmsg(nb_model_graph(m)), want);
		ck_assert_int_eq(epochs_seen, 0);
		ck_assert_int_eq(nb_optim_steps(o), 0);
		nb_graph_clear_error(nb_model_graph(m));
	}
	/* all done already: nothing to train */
	epochs_seen = 0;
	nb_fit_opts fo = {.epochs = 6, .first_epoch = 6, .on_epoch = note_epoch};
	ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_OK);
	ck_assert_int_eq(epochs_seen, 0);
	ck_assert_int_eq(nb_optim_steps(o), 0);
	/* the last two of six */
	fo.first_epoch = 4;
	ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_OK);
	ck_assert_int_eq(epochs_seen, 2);
	ck_assert_int_eq(first_seen, 5);
	ck_assert_int_eq(nb_optim_steps(o), 6);
	nb_graph_free(nb_model_graph(m));
	nb_dataset_free(&d);
}
END_TEST

/* Inputs of 1e30 and a learning rate of 1e300 send the weights to inf
 * after the first step and the loss to NaN: nb_fit stops with NB_ERR_VALUE
 * naming the place, unless allowed. */
static nb_dataset huge(int64_t n)
{
	nb_dataset d = tiny(n);
	for (int64_t i = 0; i < 2 * n; i++)
		d.x[i] *= 1e30f;
	return d;
}

START_TEST(test_fit_stops_on_nonfinite_loss)
{
	for (int allow = 0; allow < 2; allow++) {
		nb_dataset d = huge(10);
		nb_model *m = tiny_model(4);
		nb_optim *o =
		    nb_sgd(nb_model_graph(m), nb_model_loss(m), (nb_sgd_opts){.lr = 1e300});
		ck_graph_ok(nb_model_graph(m));
		epochs_seen = 0;
		nb_fit_opts fo = {.epochs = 3, .on_epoch = note_epoch, .allow_nonfinite = allow};
		nb_status st = nb_fit(m, o, &d, fo);
		if (allow) {
			ck_assert_int_eq(st, NB_OK);
			ck_assert_int_eq(epochs_seen, 3);
			ck_assert_int_eq(nb_optim_steps(o), 9);
		} else {
			ck_assert_int_eq(st, NB_ERR_VALUE);
			const char *msg = nb_graph_errmsg(nb_model_graph(m));
			ck_assert_msg(!strncmp(msg, "fit: the loss is ", 17) &&
			                  strstr(msg, " at epoch 1, batch ") &&
			                  strstr(msg, "training diverged"),
			              "%s", msg);
			ck_assert_int_eq(epochs_seen, 0); /* stopped before on_epoch */
			ck_assert_int_lt(nb_optim_steps(o), 3);
		}
		nb_graph_free(nb_model_graph(m));
		nb_dataset_free(&d);
	}
	/* one batch per epoch: the step's loss is finite, the test loss after
	 * the update is not */
	nb_dataset d = huge(4);
	nb_model *m = tiny_model(4);
	nb_optim *o = nb_sgd(nb_model_graph(m), nb_model_loss(m), (nb_sgd_opts){.lr = 1e300});
	epochs_seen = 0;
	nb_fit_opts fo = {.epochs = 3, .test = &d, .on_epoch = note_epoch};
	ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_ERR_VALUE);
	ck_assert_msg(strstr(nb_graph_errmsg(nb_model_graph(m)), "fit: the test loss is ") &&
	                  strstr(nb_graph_errmsg(nb_model_graph(m)), " after epoch 1 (step 1)"),
	              "%s", nb_graph_errmsg(nb_model_graph(m)));
	ck_assert_int_eq(epochs_seen, 0);
	nb_graph_free(nb_model_graph(m));
	nb_dataset_free(&d);
}
END_TEST

/* ---- short seeded accuracy runs on the real data ------------------------------- */

static bool load(nb_dataset *train, nb_dataset *test, int64_t ntrain, int64_t ntest)
{
	nb_dataset a = {0}, b = {0};
	char err[256];
	if (nb_fashion_mnist_load(NULL, true, &a, err, sizeof err) != NB_OK ||
	    nb_fashion_mnist_load(NULL, false, &b, err, sizeof err) != NB_OK) {
		printf("skipped: Fashion-MNIST not installed (%s)\n", err);
		nb_dataset_free(&a), nb_dataset_free(&b);
		return false;
	}
	ck_assert_int_eq(nb_dataset_slice(&a, 0, ntrain, train), NB_OK);
	ck_assert_int_eq(nb_dataset_slice(&b, 0, ntest, test), NB_OK);
	nb_dataset_free(&a), nb_dataset_free(&b);
	return true;
}

static double short_run(const char *model, int epochs, int64_t ntrain)
{
	nb_dataset train, test;
	if (!load(&train, &test, ntrain, 2000))
		return -1;
	nb_model *m = nb_test_zoo(model, NB_F32, 64, 1);
	nb_optim *o = nb_adam(nb_model_graph(m), nb_model_loss(m), (nb_adam_opts){.lr = 1e-3});
	ck_graph_ok(nb_model_graph(m));
	ck_assert_int_eq(nb_fit(m, o, &train, (nb_fit_opts){.epochs = epochs, .seed = 1}), NB_OK);
	double loss, acc;
	ck_assert_int_eq(nb_evaluate(m, &test, &loss, &acc), NB_OK);
	printf("%s: %d epoch(s) on %lld samples: test accuracy %.4f, loss %.4f\n", model, epochs,
	       (long long)ntrain, acc, loss);
	nb_graph_free(nb_model_graph(m));
	nb_dataset_free(&train), nb_dataset_free(&test);
	return acc;
}

/* The accessors give back what nb_classifier built the model with, for
 * each loss kind, in either dtype; the graph frees the model (no
 * nb_model_free: ASan's leak check holds the suite to it). */
START_TEST(test_model_accessors)
{
	static const nb_loss_kind kinds[] = {NB_LOSS_SPARSE_CCE, NB_LOSS_CCE, NB_LOSS_BCE_LOGITS};
	for (int k = 0; k < 3; k++) {
		nb_graph *g = nb_graph_new(k == 1 ? NB_F64 : NB_F32);
		nb_graph_seed(g, 1);
		int64_t K = kinds[k] == NB_LOSS_BCE_LOGITS ? 1 : 4;
		nb_tensor *x = nb_input(g, "x", NB_SHAPE(5, 2, 3));
		nb_tensor *z = nb_dense(nb_flatten(x), K, "fc");
		nb_model *m = nb_classifier(x, z, kinds[k]);
		ck_assert_msg(m != NULL, "%s", nb_graph_errmsg(g));
		ck_assert_ptr_eq(nb_model_graph(m), g);
		ck_assert_ptr_null(nb_model_name(m));
		ck_assert_ptr_eq(nb_model_input(m), x);
		ck_assert_ptr_eq(nb_model_logits(m), z);
		ck_assert_int_eq(nb_model_loss_kind(m), kinds[k]);
		ck_assert_int_eq(nb_model_batch(m), 5);
		ck_assert_int_eq(nb_model_num_classes(m), kinds[k] == NB_LOSS_BCE_LOGITS ? 2 : 4);
		ck_assert_int_eq(nb_tensor_shape(nb_model_loss(m)).ndim, 0);
		ck_assert_str_eq(nb_tensor_name(nb_model_loss(m)), "loss");
		nb_shape p = nb_tensor_shape(nb_model_probs(m));
		ck_assert(p.ndim == 2 && p.d[0] == 5 && p.d[1] == K);
		ck_assert_str_eq(nb_tensor_name(nb_model_probs(m)), "probs");
		nb_shape w = nb_tensor_shape(nb_model_weights(m));
		ck_assert(w.ndim == 1 && w.d[0] == 5);
		nb_tensor *labels = nb_model_labels(m), *onehot = nb_model_one_hot(m);
		if (kinds[k] == NB_LOSS_CCE) {
			ck_assert_ptr_null(labels);
			nb_shape o = nb_tensor_shape(onehot);
			ck_assert(o.ndim == 2 && o.d[0] == 5 && o.d[1] == 4);
		} else {
			ck_assert_ptr_null(onehot);
			nb_shape l = nb_tensor_shape(labels);
			ck_assert_int_eq(l.ndim, kinds[k] == NB_LOSS_BCE_LOGITS ? 2 : 1);
			ck_assert(l.d[0] == 5 && (l.ndim == 1 || l.d[1] == 1));
		}
		/* a second classifier on the same graph is a model of its own */
		nb_tensor *x2 = nb_input(g, "x2", NB_SHAPE(3, 2));
		nb_model *m2 = nb_classifier(x2, nb_dense(x2, 3, "fc2"), NB_LOSS_SPARSE_CCE);
		ck_assert_msg(m2 != NULL && m2 != m, "%s", nb_graph_errmsg(g));
		ck_assert_int_eq(nb_model_batch(m2), 3);
		ck_assert_int_eq(nb_model_batch(m), 5);
		nb_graph_free(g);
	}
	/* a NULL model reads as nothing */
	ck_assert_ptr_null(nb_model_graph(NULL));
	ck_assert_ptr_null(nb_model_name(NULL));
	ck_assert_ptr_null(nb_model_input(NULL));
	ck_assert_ptr_null(nb_model_logits(NULL));
	ck_assert_ptr_null(nb_model_labels(NULL));
	ck_assert_ptr_null(nb_model_one_hot(NULL));
	ck_assert_ptr_null(nb_model_weights(NULL));
	ck_assert_ptr_null(nb_model_loss(NULL));
	ck_assert_ptr_null(nb_model_probs(NULL));
	ck_assert_int_eq(nb_model_batch(NULL), 0);
	ck_assert_int_eq(nb_model_num_classes(NULL), 0);
	ck_assert_int_eq(nb_fit(NULL, NULL, NULL, (nb_fit_opts){0}), NB_ERR_ARG);
	ck_assert_int_eq(nb_evaluate(NULL, NULL, NULL, NULL), NB_ERR_ARG);
	ck_assert_int_eq(nb_predict(NULL, NULL, 0, NULL, NULL), NB_ERR_ARG);
}
END_TEST

/* nb_classifier(x, logits, kind) on g: NULL, with status st and message
 * msg recorded on g (cleared after). */
static void classifier_fails(nb_graph *g, nb_tensor *x, nb_tensor *logits, nb_loss_kind kind,
                             nb_status st, const char *msg)
{
	ck_assert_ptr_null(nb_classifier(x, logits, kind));
	ck_assert_int_eq(nb_graph_status(g), st);
	ck_assert_str_eq(nb_graph_errmsg(g), msg);
	nb_graph_clear_error(g);
}

/* Every check of nb_classifier: NULL, the error on the graph, nothing
 * leaked (the suite runs under ASan). */
START_TEST(test_classifier_errors)
{
	nb_graph *g = nb_graph_new(NB_F32), *other = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(5, 3));
	nb_tensor *k3 = nb_input(g, "k3", NB_SHAPE(5, 3)), *k1 = nb_input(g, "k1", NB_SHAPE(5, 1));
	ck_assert_ptr_null(nb_classifier(NULL, NULL, NB_LOSS_SPARSE_CCE)); /* no graph to tell */
	classifier_fails(g, NULL, k3, NB_LOSS_SPARSE_CCE, NB_ERR_ARG,
	                 "classifier: the input x is NULL");
	classifier_fails(g, x, NULL, NB_LOSS_SPARSE_CCE, NB_ERR_ARG,
	                 "classifier: the logits tensor is NULL");
	classifier_fails(g, x, nb_input(other, "z", NB_SHAPE(5, 3)), NB_LOSS_SPARSE_CCE,
	                 NB_ERR_GRAPH, "classifier: logits z belong to another graph than x x");
	ck_assert_int_eq(nb_graph_status(other), NB_OK);
	classifier_fails(g, x, nb_input(g, "k", NB_SHAPE(5, 3, 1)), NB_LOSS_SPARSE_CCE,
	                 NB_ERR_SHAPE,
	                 "classifier: logits must be [B, K] with B the input's batch, got [5,3,1]");
	classifier_fails(g, x, nb_input(g, "k4", NB_SHAPE(4, 3)), NB_LOSS_CCE, NB_ERR_SHAPE,
	                 "classifier: logits must be [B, K] with B the input's batch, got [4,3]");
	classifier_fails(g, x, k3, NB_LOSS_BCE_LOGITS, NB_ERR_SHAPE,
	                 "classifier: binary cross-entropy needs logits [B, 1], got [5,3]");
	classifier_fails(g, x, k1, NB_LOSS_SPARSE_CCE, NB_ERR_SHAPE,
	                 "classifier: softmax cross-entropy needs logits [B, K>=2], got [5,1]");
	classifier_fails(g, x, k1, NB_LOSS_CCE, NB_ERR_SHAPE,
	                 "classifier: softmax cross-entropy needs logits [B, K>=2], got [5,1]");
	classifier_fails(g, x, k3, (nb_loss_kind)7, NB_ERR_ARG, "classifier: unknown loss kind 7");
	classifier_fails(g, x, k3, (nb_loss_kind)-1, NB_ERR_ARG,
	                 "classifier: unknown loss kind -1");
	/* a graph in error: its first error stays */
	nb_reshape(x, NB_SHAPE(7));
	nb_status st = nb_graph_status(g);
	char msg[256];
	snprintf(msg, sizeof msg, "%s", nb_graph_errmsg(g));
	ck_assert_int_ne(st, NB_OK);
	classifier_fails(g, x, k3, NB_LOSS_SPARSE_CCE, st, msg);
	/* after all that, the graph still makes a model */
	nb_model *m = nb_classifier(x, k3, NB_LOSS_SPARSE_CCE);
	ck_assert_msg(m != NULL, "%s", nb_graph_errmsg(g));
	nb_graph_free(g), nb_graph_free(other);
}
END_TEST

/* nb_zoo_build's checks: NULL, the error on the graph. */
START_TEST(test_zoo_build_errors)
{
	ck_assert_ptr_null(nb_zoo_build(NULL, "mlp", 2));
	nb_graph *g = nb_graph_new(NB_F32);
	static const struct {
		const char *name;
		int64_t batch;
		const char *msg;
	} bad[] = {
	    {"no-such-model", 2, "zoo: no model named 'no-such-model'"},
	    {NULL, 2, "zoo: no model named NULL"},
	    {"ml\x1b[2Jp", 2, "zoo: no model named 'ml?[2Jp'"},
	    {"mlp", 0, "zoo: mlp: the batch 0 must be at least 1"},
	    {"lenet", -3, "zoo: lenet: the batch -3 must be at least 1"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ck_assert_ptr_null(nb_zoo_build(g, bad[i].name, bad[i].batch));
		ck_assert_int_eq(nb_graph_status(g), NB_ERR_ARG);
		ck_assert_str_eq(nb_graph_errmsg(g), bad[i].msg);
		ck_assert_int_eq(nb_graph_num_params(g), 0);
		nb_graph_clear_error(g);
	}
	/* a graph in error builds nothing and keeps its error */
	nb_reshape(nb_input(g, "y", NB_SHAPE(2)), NB_SHAPE(3));
	nb_status st = nb_graph_status(g);
	ck_assert_int_eq(st, NB_ERR_SHAPE);
	ck_assert_ptr_null(nb_zoo_build(g, "mlp", 2));
	ck_assert_int_eq(nb_graph_status(g), st);
	ck_assert_int_eq(nb_graph_num_params(g), 0);
	nb_graph_free(g);
	/* the seed set on the graph is the one the parameters are drawn with */
	nb_model *a = nb_test_zoo("mlp", NB_F32, 2, 9), *b = nb_test_zoo("mlp", NB_F32, 2, 9),
	         *c = nb_test_zoo("mlp", NB_F32, 2, 10);
	nb_tensor *pa = nb_graph_find(nb_model_graph(a), "fc1.w"),
	          *pb = nb_graph_find(nb_model_graph(b), "fc1.w"),
	          *pc = nb_graph_find(nb_model_graph(c), "fc1.w");
	int64_t n = nb_tensor_size(pa);
	float *wa = malloc(3 * sizeof(float) * (size_t)n), *wb = wa + n, *wc = wb + n;
	ck_assert_ptr_nonnull(wa);
	ck_assert_int_eq(nb_read_f32(pa, wa, n), NB_OK);
	ck_assert_int_eq(nb_read_f32(pb, wb, n), NB_OK);
	ck_assert_int_eq(nb_read_f32(pc, wc, n), NB_OK);
	ck_assert(!memcmp(wa, wb, sizeof *wa * (size_t)n) &&
	          memcmp(wa, wc, sizeof *wa * (size_t)n));
	free(wa);
	nb_graph_free(nb_model_graph(a));
	nb_graph_free(nb_model_graph(b));
	nb_graph_free(nb_model_graph(c));
}
END_TEST

/* measured 0.8025 (mlp) and 0.7050 (lenet) on these seeds; a broken
 * gradient or data path lands far below */
/* Every zoo entry carries its builder and a complete default recipe, and
 * nb_zoo_build builds exactly what the entry describes. */
START_TEST(test_zoo_entries_carry_builder_and_recipe)
{
	int n = 0;
	for (const nb_zoo_entry *z; (z = nb_zoo(n)); n++) {
		ck_assert_ptr_eq(nb_zoo_find(z->name), z);
		ck_assert_msg(z->build != NULL, "%s: no builder", z->name);
		const nb_zoo_recipe *r = &z->recipe;
		ck_assert_msg(r->epochs >= 1 && r->batch >= 1 && r->lr > 0, "%s: recipe", z->name);
		ck_assert_ptr_nonnull(nb_optim_kind_name(r->optim));
		ck_assert(r->data == NB_ZOO_DATA_FASHION_MNIST || r->data == NB_ZOO_DATA_CIFAR10);
		ck_assert_int_eq(r->data == NB_ZOO_DATA_CIFAR10, z->c == 3);
		nb_model *m = nb_test_zoo(z->name, NB_F32, 2, 1);
		ck_assert_str_eq(nb_model_name(m), z->name);
		nb_shape xs = nb_tensor_shape(nb_model_input(m)),
		         ls = nb_tensor_shape(nb_model_logits(m));
		ck_assert_int_eq(xs.ndim, z->flat ? 2 : 4);
		ck_assert_int_eq(xs.d[0], 2);
		ck_assert_int_eq(xs.d[1], z->flat ? z->c * z->h * z->w : z->c);
		ck_assert_int_eq(ls.ndim, 2);
		ck_assert_int_eq(ls.d[1], z->loss == NB_LOSS_BCE_LOGITS ? 1 : z->num_classes);
		nb_graph_free(nb_model_graph(m));
	}
	ck_assert_int_ge(n, 6);
	ck_assert_ptr_null(nb_zoo(n));
	ck_assert_ptr_null(nb_zoo(-1));
	ck_assert_ptr_null(nb_zoo_find("no-such-model"));
}
END_TEST

START_TEST(test_mlp_short_accuracy)
{
	double acc = short_run("mlp", 1, 10000);
	ck_assert(acc < 0 || acc >= 0.78);
}
END_TEST

START_TEST(test_lenet_short_accuracy)
{
	double acc = short_run("lenet", 1, 10000);
	ck_assert(acc < 0 || acc >= 0.66);
}
END_TEST

/* ResNet-50 under its own recipe (the zoo's lr, momentum and weight decay)
 * keeps its first ten steps on synthetic CIFAR-shaped data finite and below
 * 5 (cross-entropy over ten classes starts near 2.3).  With every
 * bottleneck's last batchnorm gamma at 1 and lr 0.1 the loss reached
 * 30-90 within five steps, in PyTorch too (docs/layers.md).  Batch 16
 * instead of the recipe's 32, one thread, to keep the test short: the
 * smaller batch makes the steps noisier, not easier. */
START_TEST(test_resnet50_recipe_first_steps_stay_bounded)
{
	const nb_zoo_entry *z = nb_zoo_find("resnet50");
	ck_assert_ptr_nonnull(z);
	const int64_t batch = 16;
	const int steps = 10;
	nb_set_num_threads(1);
	nb_dataset data;
	ck_assert_int_eq(nb_synthetic_cifar(batch * steps, 1, &data), NB_OK);
	nb_model *m = nb_test_zoo("resnet50", NB_F32, batch, 1);
	nb_graph *mg = nb_model_graph(m);
	/* every bottleneck starts as its shortcut */
	nb_tensor *gamma = nb_graph_find(mg, "layer3.5.bn3.gamma");
	ck_assert_ptr_nonnull(gamma);
	float g[1024];
	ck_assert_int_eq(nb_tensor_size(gamma), 1024);
	ck_assert_int_eq(nb_read_f32(gamma, g, 1024), NB_OK);
	for (int i = 0; i < 1024; i++)
		ck_assert(g[i] == 0.0f);
	const nb_zoo_recipe *r = &z->recipe;
	nb_optim *o = nb_optimizer(mg, nb_model_loss(m),
	                           (nb_optim_opts){.kind = r->optim,
	                                           .lr = r->lr,
	                                           .momentum = r->momentum,
	                                           .weight_decay = r->weight_decay});
	ck_graph_ok(mg);
	for (int s = 0; s < steps; s++) {
		nb_dataset b;
		ck_assert_int_eq(nb_dataset_slice(&data, s * batch, batch, &b), NB_OK);
		nb_fit_opts fo = {.epochs = 1, .no_shuffle = true, .allow_nonfinite = true};
		ck_assert_int_eq(nb_fit(m, o, &b, fo), NB_OK);
		double loss = nb_item(nb_model_loss(m));
		printf("resnet50 step %d: loss %.4f\n", s + 1, loss);
		ck_assert_msg(isfinite(loss) && loss < 5, "step %d: loss %g", s + 1, loss);
		nb_dataset_free(&b);
	}
	nb_set_num_threads(0);
	nb_graph_free(mg);
	nb_dataset_free(&data);
}
END_TEST

/* nb_dist_abort ends a job of several ranks; with one rank (or none) it
 * returns, and the caller reports its error as a single process: the
 * library never exits on its own */
START_TEST(test_dist_abort_returns_on_one_rank)
{
	nb_dist *d = NULL;
	char err[256];
	ck_assert_int_eq(nb_dist_init(NULL, NULL, (nb_dist_opts){.off = true}, &d, err, sizeof err),
	                 NB_OK);
	ck_assert_int_eq(nb_dist_size(d), 1);
	/* one rank sums nothing; the former name of the getter agrees */
	nb_dist_stats st = nb_dist_stats_of(d), old = nb_dist_get_stats(d);
	ck_assert(st.exposed_s == 0 && st.bytes == 0 && st.allreduces == 0);
	ck_assert(old.exposed_s == st.exposed_s && old.bytes == st.bytes &&
	          old.allreduces == st.allreduces);
	ck_assert(nb_dist_stats_of(NULL).bytes == 0);
	nb_dist_abort(d, 3);
	nb_dist_abort(NULL, 3);
	nb_dist_finalize(d);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("train");
	TCase *tc = tcase_create("train");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_partial_batch_is_mean_over_real_samples);
	tcase_add_test(tc, test_fit_partial_batch_batchnorm);
	tcase_add_test(tc, test_fit_learns_and_predict_agrees);
	tcase_add_test(tc, test_fit_rejects_mismatched_data);
	tcase_add_test(tc, test_fit_checks_first_epoch);
	tcase_add_test(tc, test_fit_stops_on_nonfinite_loss);
	tcase_add_test(tc, test_model_accessors);
	tcase_add_test(tc, test_classifier_errors);
	tcase_add_test(tc, test_zoo_build_errors);
	tcase_add_test(tc, test_zoo_entries_carry_builder_and_recipe);
	tcase_add_test(tc, test_mlp_short_accuracy);
	tcase_add_test(tc, test_lenet_short_accuracy);
	tcase_add_test(tc, test_dist_abort_returns_on_one_rank);
	suite_add_tcase(s, tc);
	TCase *slow = tcase_create("resnet50");
	tcase_set_timeout(slow, 600);
	tcase_add_test(slow, test_resnet50_recipe_first_steps_stay_bounded);
	suite_add_tcase(s, slow);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
