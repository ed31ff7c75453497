/*
 * nb_fit with augmentation, a validation set (given or split off), early
 * stopping and the best epoch's parameters, and resuming such a run.
 */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

/* A small linear problem: 2 features, 3 classes (as in test_train.c);
 * shift moves every label by one class, which makes a validation set that
 * training can only get worse on. */
static nb_dataset tiny(int64_t n, int shift)
{
	nb_dataset d = {.n = n, .c = 1, .h = 1, .w = 2, .num_classes = 3};
	d.x = malloc(sizeof(float) * 2 * (size_t)n);
	d.y = malloc(sizeof(int32_t) * (size_t)n);
	for (int64_t i = 0; i < n; i++) {
		int32_t y = (int32_t)(i % 3);
		d.x[2 * i] = (float)(y == 1) + 0.01f * (float)i;
		d.x[2 * i + 1] = (float)(y == 2) - 0.01f * (float)i;
		d.y[i] = (y + shift) % 3;
	}
	return d;
}

/* dense, or conv -> batchnorm -> dense (running statistics to restore) */
static nb_model *model(int64_t batch, bool bn)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_graph_seed(g, 3);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(batch, 1, 1, 2)), *z;
	if (bn) {
		nb_tensor *h = nb_conv2d_layer(x, 3, 1, "conv", (nb_conv_layer_opts){0});
		h = nb_batchnorm_layer(h, "bn", (nb_batchnorm_opts){.relu = true, .momentum = 0.3});
		z = nb_dense(nb_flatten(h), 3, "fc");
	} else {
		z = nb_dense(nb_flatten(x), 3, "fc");
	}
	nb_model *m = nb_classifier(x, z, NB_LOSS_SPARSE_CCE);
	ck_assert_msg(m != NULL, "%s", nb_graph_errmsg(g));
	return m;
}

/* every parameter and state tensor of a and b, bit for bit (optimizer
 * state too unless params_only) */
static bool same_state(nb_graph *a, nb_graph *b, bool model_only)
{
	static const char *const names[] = {
	    "fc.w",           "fc.b",  "conv.w", "conv.b", "bn.gamma", "bn.beta", "bn.running_mean",
	    "bn.running_var", "fc.w.m"};
	int n = model_only ? 8 : 9;
	for (int i = 0; i < n; i++) {
		nb_tensor *ta = nb_graph_find(a, names[i]), *tb = nb_graph_find(b, names[i]);
		if (!ta && !tb)
			continue;
		ck_assert_msg(ta && tb, "%s", names[i]);
		double va[64], vb[64];
		ck_assert_int_le(nb_tensor_size(ta), 64);
		nb_read_f64(ta, va, nb_tensor_size(ta));
		nb_read_f64(tb, vb, nb_tensor_size(tb));
		if (memcmp(va, vb, sizeof(double) * (size_t)nb_tensor_size(ta)))
			return false;
	}
	return true;
}

typedef struct seen {
	int n;
	nb_epoch_stats s[32];
} seen;

static bool record(const nb_epoch_stats *s, void *user)
{
	seen *r = user;
	ck_assert_int_lt(r->n, 32);
	r->s[r->n++] = *s;
	return true;
}

static void free_model(nb_model *m)
{
	nb_graph_free(nb_model_graph(m));
}

/* val_split trains and validates exactly as nb_dataset_split's two parts
 * given as train and val, augmentation included (keyed by the position in
 * the training set). */
START_TEST(test_val_split_is_the_split)
{
	nb_dataset d = tiny(23, 0), t, v;
	nb_augment aug = {.crop_pad = 1, .flip = true};
	ck_assert_int_eq(nb_dataset_split(&d, 0.3, 4, &t, &v), NB_OK);
	nb_model *a, *b;
	a = model(4, true), b = model(4, true);
	nb_optim *oa = nb_adam(nb_model_graph(a), nb_model_loss(a), (nb_adam_opts){.lr = 0.05});
	nb_optim *ob = nb_adam(nb_model_graph(b), nb_model_loss(b), (nb_adam_opts){.lr = 0.05});
	seen ra = {0}, rb = {0};
	nb_fit_opts fa = {.epochs = 4,
	                  .seed = 4,
	                  .augment = &aug,
	                  .val_split = 0.3,
	                  .on_epoch = record,
	                  .user = &ra};
	nb_fit_opts fb = {
	    .epochs = 4, .seed = 4, .augment = &aug, .val = &v, .on_epoch = record, .user = &rb};
	ck_assert_int_eq(nb_fit(a, oa, &d, fa), NB_OK);
	ck_assert_int_eq(nb_fit(b, ob, &t, fb), NB_OK);
	ck_assert_int_eq(ra.n, 4);
	ck_assert_int_eq(rb.n, 4);
	for (int e = 0; e < 4; e++) {
		ck_assert_int_eq(ra.s[e].samples, 16); /* 23 - round(6.9) */
		ck_assert(ra.s[e].val_loss == rb.s[e].val_loss);
		ck_assert(ra.s[e].val_accuracy == rb.s[e].val_accuracy);
		ck_assert(ra.s[e].train_loss == rb.s[e].train_loss);
		ck_assert(isfinite(ra.s[e].val_loss) && isnan(ra.s[e].test_loss));
	}
	ck_assert(same_state(nb_model_graph(a), nb_model_graph(b), false));
	free_model(a), free_model(b);
	nb_dataset_free(&d), nb_dataset_free(&t), nb_dataset_free(&v);
}
END_TEST

/* Augmentation in nb_fit: the same bits at 1 and 3 threads; off ({0})
 * trains exactly as without; on, it changes the training. */
START_TEST(test_fit_augment_deterministic)
{
	nb_dataset d = tiny(20, 0);
	nb_augment on = {.crop_pad = 1, .flip = true}, off = {0};
	const nb_augment *which[4] = {&on, &on, &off, NULL};
	nb_model *m[4];
	for (int k = 0; k < 4; k++) {
		nb_set_num_threads(k == 1 ? 3 : 1);
		m[k] = model(8, true);
		nb_optim *o = nb_momentum(nb_model_graph(m[k]), nb_model_loss(m[k]),
		                          (nb_momentum_opts){.lr = 0.1});
		ck_graph_ok(nb_model_graph(m[k]));
		nb_fit_opts fo = {.epochs = 3, .seed = 2, .augment = which[k]};
		ck_assert_int_eq(nb_fit(m[k], o, &d, fo), NB_OK);
	}
	nb_set_num_threads(0);
	ck_assert(same_state(nb_model_graph(m[0]), nb_model_graph(m[1]), false));
	ck_assert(same_state(nb_model_graph(m[2]), nb_model_graph(m[3]), false));
	ck_assert(!same_state(nb_model_graph(m[0]), nb_model_graph(m[3]), true));
	for (int k = 0; k < 4; k++)
		free_model(m[k]);
	nb_dataset_free(&d);
}
END_TEST

/* A validation set that training only gets worse on: epoch 1 is the best,
 * patience 2 stops after epoch 3, and restore_best puts back epoch 1's
 * parameters and running statistics (those of a one-epoch run), not the
 * optimizer's state. */
START_TEST(test_early_stopping_restores_best)
{
	nb_dataset d = tiny(24, 0), v = tiny(9, 1);
	nb_model *m, *one;
	m = model(8, true), one = model(8, true);
	nb_optim *o = nb_adam(nb_model_graph(m), nb_model_loss(m), (nb_adam_opts){.lr = 0.05});
	nb_optim *o1 = nb_adam(nb_model_graph(one), nb_model_loss(one), (nb_adam_opts){.lr = 0.05});
	seen r = {0};
	nb_fit_opts fo = {.epochs = 20,
	                  .seed = 6,
	                  .val = &v,
	                  .patience = 2,
	                  .restore_best = true,
	                  .on_epoch = record,
	                  .user = &r};
	ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_OK);
	ck_assert_int_eq(r.n, 3);
	ck_assert(r.s[0].improved && !r.s[1].improved && !r.s[2].improved);
	ck_assert(r.s[1].val_loss > r.s[0].val_loss && r.s[2].val_loss > r.s[0].val_loss);
	for (int e = 0; e < 3; e++) {
		ck_assert_int_eq(r.s[e].best_epoch, 1);
		ck_assert(r.s[e].best_val_loss == r.s[0].val_loss);
		ck_assert_int_eq(r.s[e].epochs_since_best, e);
		ck_assert_int_eq(r.s[e].early_stop, e == 2);
	}
	ck_assert_int_eq(nb_optim_steps(o), 9);
	ck_assert_int_eq(nb_fit(one, o1, &d, (nb_fit_opts){.epochs = 1, .seed = 6}), NB_OK);
	ck_assert(same_state(nb_model_graph(m), nb_model_graph(one), true));
	/* Adam's moments: the third epoch's */
	ck_assert(!same_state(nb_model_graph(m), nb_model_graph(one), false));
	double loss;
	ck_assert_int_eq(nb_evaluate(m, &v, &loss, NULL), NB_OK);
	ck_assert(loss == r.s[0].val_loss);
	/* without restore_best the last epoch's parameters stay */
	nb_model *last = model(8, true);
	nb_optim *ol =
	    nb_adam(nb_model_graph(last), nb_model_loss(last), (nb_adam_opts){.lr = 0.05});
	fo.restore_best = false, fo.on_epoch = NULL;
	ck_assert_int_eq(nb_fit(last, ol, &d, fo), NB_OK);
	ck_assert_int_eq(nb_optim_steps(ol), 9);
	ck_assert(!same_state(nb_model_graph(last), nb_model_graph(one), true));
	ck_assert_int_eq(nb_evaluate(last, &v, &loss, NULL), NB_OK);
	ck_assert(loss == r.s[2].val_loss);
	free_model(m), free_model(one), free_model(last);
	nb_dataset_free(&d), nb_dataset_free(&v);
}
END_TEST

/* A run resumed after epoch 2 with the best so far (best_epoch,
 * best_val_loss) stops where the whole run stops, with its parameters;
 * without them, patience would count from the resume. */
START_TEST(test_resume_counts_patience_on)
{
	nb_dataset d = tiny(24, 0), v = tiny(9, 1);
	nb_model *whole, *part, *fresh;
	whole = model(8, false), part = model(8, false), fresh = model(8, false);
	nb_optim *ow =
	    nb_adam(nb_model_graph(whole), nb_model_loss(whole), (nb_adam_opts){.lr = 0.05});
	nb_optim *op =
	    nb_adam(nb_model_graph(part), nb_model_loss(part), (nb_adam_opts){.lr = 0.05});
	nb_optim *of =
	    nb_adam(nb_model_graph(fresh), nb_model_loss(fresh), (nb_adam_opts){.lr = 0.05});
	seen rw = {0}, rp = {0}, rf = {0};
	nb_fit_opts fo = {.epochs = 20, .seed = 6, .val = &v, .patience = 3, .on_epoch = record};
	fo.user = &rw;
	ck_assert_int_eq(nb_fit(whole, ow, &d, fo), NB_OK);
	ck_assert_int_eq(rw.n, 4); /* best epoch 1, then three worse */
	nb_fit_opts f2 = fo;
	f2.epochs = 2, f2.user = &rp;
	ck_assert_int_eq(nb_fit(part, op, &d, f2), NB_OK);
	f2.user = &rf;
	ck_assert_int_eq(nb_fit(fresh, of, &d, f2), NB_OK);
	ck_assert_int_eq(rp.n, 2);
	rf.n = 0;
	f2 = fo;
	f2.first_epoch = 2, f2.user = &rp;
	f2.best_epoch = rp.s[1].best_epoch, f2.best_val_loss = rp.s[1].best_val_loss;
	ck_assert_int_eq(nb_fit(part, op, &d, f2), NB_OK);
	ck_assert_int_eq(rp.n, 4);
	ck_assert(rp.s[3].early_stop && rp.s[3].epochs_since_best == 3);
	ck_assert(same_state(nb_model_graph(whole), nb_model_graph(part), false));
	/* counting afresh: the resumed epochs 3 and 4 look like improvements */
	f2.best_epoch = 0, f2.best_val_loss = 0, f2.user = &rf;
	ck_assert_int_eq(nb_fit(fresh, of, &d, f2), NB_OK);
	ck_assert_int_gt(rf.s[rf.n - 1].epoch, rw.s[rw.n - 1].epoch);
	ck_assert(rf.s[0].improved && rf.s[0].epoch == 3 && rf.s[0].best_epoch == 3);
	free_model(whole), free_model(part), free_model(fresh);
	nb_dataset_free(&d), nb_dataset_free(&v);
}
END_TEST

/* bad options: NB_ERR_ARG with a message, nothing trained */
START_TEST(test_fit_val_errors)
{
	nb_dataset d = tiny(10, 0), v = tiny(3, 0);
	nb_model *m = model(4, false);
	nb_optim *o = nb_sgd(nb_model_graph(m), nb_model_loss(m), (nb_sgd_opts){.lr = 0.1});
	nb_augment wide = {.crop_pad = 2};
	struct {
		nb_fit_opts fo;
		const char *msg;
	} bad[] = {
	    {{.val = &v, .val_split = 0.5},
	     "fit: a validation set and val_split: give one of them"},
	    {{.patience = 2},
	     "fit: early stopping and the best epoch's parameters need a validation set (val or "
	     "val_split)"},
	    {{.restore_best = true},
	     "fit: early stopping and the best epoch's parameters need a validation set (val or "
	     "val_split)"},
	    {{.val = &v, .patience = -1}, "fit: patience -1 is negative"},
	    {{.val_split = 0.01},
	     "fit: val_split 0.01 of 10 samples: it must be in (0, 1) and leave at least one "
	     "sample for training and one for validation"},
	    {{.val_split = 1.5},
	     "fit: val_split 1.5 of 10 samples: it must be in (0, 1) and leave at least one "
	     "sample for training and one for validation"},
	    {{.val_split = -0.2},
	     "fit: val_split -0.2 of 10 samples: it must be in (0, 1) and leave at least one "
	     "sample for training and one for validation"},
	    {{.epochs = 5, .first_epoch = 2, .val = &v, .best_epoch = 3, .best_val_loss = 1},
	     "fit: best_epoch 3 with loss 1: not an epoch from 1 to first_epoch (2) with a finite "
	     "loss"},
	    {{.epochs = 5, .first_epoch = 2, .val = &v, .best_epoch = 1, .best_val_loss = NAN},
	     "fit: best_epoch 1 with loss nan: not an epoch from 1 to first_epoch (2) with a "
	     "finite loss"},
	    {{.augment = &wide},
	     "fit: augment: a crop padding of 2 does not fit 1x2 images (0 to 1)"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ck_assert_int_eq(nb_fit(m, o, &d, bad[i].fo), NB_ERR_ARG);
		ck_assert_str_eq(nb_graph_errmsg(nb_model_graph(m)), bad[i].msg);
		ck_assert_int_eq(nb_optim_steps(o), 0);
		nb_graph_clear_error(nb_model_graph(m));
	}
	free_model(m);
	nb_dataset_free(&d), nb_dataset_free(&v);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("fitval");
	TCase *tc = tcase_create("fitval");
	tcase_add_test(tc, test_val_split_is_the_split);
	tcase_add_test(tc, test_fit_augment_deterministic);
	tcase_add_test(tc, test_early_stopping_restores_best);
	tcase_add_test(tc, test_resume_counts_patience_on);
	tcase_add_test(tc, test_fit_val_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
