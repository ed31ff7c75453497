/*
 * `nabla train` for the model zoo on real data: Fashion-MNIST (or MNIST)
 * IDX files, CIFAR-10 binaries or synthetic CIFAR-shaped data, with the
 * library's training loop, progress, checkpoints and plots.
 */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- data -------------------------------------------------------------------- */

static int load_data(const train_args *a, const nb_zoo_entry *z, nb_dataset *train,
                     nb_dataset *test)
{
	char err[512];
	nb_status st;
	bool cifar = z->recipe.data == NB_ZOO_DATA_CIFAR10;
	const char *src = a->data;
	if (cifar && (!src || !strcmp(src, "synthetic"))) {
		int64_t n = a->train_limit > 0 ? a->train_limit : 10000;
		int64_t nt = a->test_limit > 0 ? a->test_limit : 2000;
		if ((st = nb_synthetic_cifar(n, a->seed, train)) ||
		    (st = nb_synthetic_cifar(nt, a->seed + 0x5eed, test))) {
			fprintf(stderr, "nabla train: synthetic data: %s\n", nb_status_string(st));
			return -1;
		}
		return 0;
	}
	if (cifar) {
		if ((st = nb_cifar10_load(src, true, train, err, sizeof err)) ||
		    (st = nb_cifar10_load(src, false, test, err, sizeof err)))
			goto fail;
	} else {
		if (src && !strcmp(src, "synthetic")) {
			fprintf(
			    stderr,
			    "nabla train: --data synthetic is CIFAR-shaped; model %s takes %dx%dx%d images\n",
			    z->name, z->c, z->h, z->w);
			return -1;
		}
		if ((st = nb_fashion_mnist_load(src, true, train, err, sizeof err)) ||
		    (st = nb_fashion_mnist_load(src, false, test, err, sizeof err)))
			goto fail;
	}
	if (a->standardize) {
		double mean[3], sd[3];
		nb_dataset_standardize(train, mean, sd);
		nb_dataset_normalize(test, mean, sd);
	}
	return 0;
fail:
	cli_data_error("train", z->name, cifar, err);
	return -1;
}

/* keep two classes (binary models), then optional size limits */
static int shape_data(const train_args *a, const nb_zoo_entry *z, nb_dataset *train,
                      nb_dataset *test)
{
	if (z->num_classes == 2 && train->num_classes != 2) {
		nb_dataset t2, s2;
		if (nb_dataset_select_classes(train, a->classes, 2, &t2) ||
		    nb_dataset_select_classes(test, a->classes, 2, &s2)) {
			fprintf(
			    stderr,
			    "nabla train: --classes %d,%d: not two distinct classes of the data\n",
			    a->classes[0], a->classes[1]);
			return -1;
		}
		nb_dataset_free(train), nb_dataset_free(test);
		*train = t2, *test = s2;
	}
	for (int k = 0; k < 2; k++) {
		nb_dataset *d = k ? test : train;
		int64_t lim = k ? a->test_limit : a->train_limit;
		if (lim > 0 && lim < d->n) {
			nb_dataset s;
			if (nb_dataset_slice(d, 0, lim, &s))
				return -1;
			nb_dataset_free(d);
			*d = s;
		}
	}
	return 0;
}

int load_zoo_data(const train_args *a, const nb_zoo_entry *z, nb_dataset *train, nb_dataset *test)
{
	if (load_data(a, z, train, test) < 0 || shape_data(a, z, train, test) < 0) {
		nb_dataset_free(train), nb_dataset_free(test);
		return -1;
	}
	return 0;
}

/* ---- reporting ----------------------------------------------------------------- */

typedef struct run {
	const train_args *a;
	nb_epoch_stats last; /* the last epoch's */
	train_history h;     /* every epoch, the resumed ones too: plot and --save */
	int saved;           /* checkpoints written */
	bool save_failed;    /* (reported) */
	nb_model *m;
	nb_optim *o;
	const char *ckpt;
	gn_log gn;      /* --grad-norms: every epoch's means */
	bool gn_failed; /* out of memory (reported) */
} run;

/* The validation members of an epoch's report (JSON, or words), ending
 * in a separator; empty without a validation set. */
static void val_report(const train_args *a, const nb_epoch_stats *s, char *buf, size_t n)
{
	*buf = 0;
	if (a->val_split <= 0)
		return;
	char vl[32] = "null", va[32] = "null";
	if (isfinite(s->val_loss))
		snprintf(vl, sizeof vl, "%.6f", s->val_loss);
	if (isfinite(s->val_accuracy))
		snprintf(va, sizeof va, "%.6f", s->val_accuracy);
	if (a->json)
		snprintf(buf, n, "\"val_loss\": %s, \"val_accuracy\": %s, \"best_epoch\": %d, %s",
		         vl, va, s->best_epoch, s->early_stop ? "\"early_stop\": true, " : "");
	else
		snprintf(buf, n, "val loss %.4f%s  val accuracy %.2f%%  ", s->val_loss,
		         s->improved ? " (best)" : "", 100 * s->val_accuracy);
}

static bool on_epoch(const nb_epoch_stats *s, void *user)
{
	run *r = user;
	const train_args *a = r->a;
	train_history *h = &r->h;
	if (h->first + h->n >= h->cap)
		return false; /* cannot happen: nb_fit runs at most epochs - first_epoch */
	h->loss[h->n] = s->train_loss;
	h->acc[h->n] = s->train_accuracy;
	h->tloss[h->n] = s->test_loss;
	h->tacc[h->n] = s->test_accuracy;
	h->vloss[h->n] = s->val_loss;
	h->vacc[h->n] = s->val_accuracy;
	h->n++;
	h->best_epoch = s->best_epoch;
	h->best_val_loss = s->best_val_loss;
	r->last = *s;
	epoch_report e = {.epoch = s->epoch,
	                  .epochs = s->epochs,
	                  .loss = s->train_loss,
	                  .accuracy = s->train_accuracy,
	                  .seconds = s->seconds};
	char tl[32] = "null", ta[32] = "null"; /* JSON has no NaN */
	char val[160] = "";
	val_report(a, s, val, sizeof val);
	if (isfinite(s->test_loss))
		snprintf(tl, sizeof tl, "%.6f", s->test_loss);
	if (isfinite(s->test_accuracy))
		snprintf(ta, sizeof ta, "%.6f", s->test_accuracy);
	if (a->json)
		snprintf(e.extra, sizeof e.extra,
		         "%s\"test_loss\": %s, \"test_accuracy\": %s, \"samples_per_s\": %.1f, "
		         "\"ms_per_step\": %.4f, \"steps\": %lld, \"lr\": %g",
		         val, tl, ta, s->samples_per_s,
		         s->samples ? 1e3 * s->seconds / ceil((double)s->samples / (double)a->batch)
		                    : 0,
		         (long long)s->steps, s->lr);
	else
		snprintf(e.extra, sizeof e.extra,
		         "%stest loss %.4f  test accuracy %.2f%%  %.0f samples/s", val,
		         s->test_loss, 100 * s->test_accuracy, s->samples_per_s);
	char *more = NULL;
	if (s->grad_norms && a->json && !(e.more = more = gn_json_members(s->grad_norms)))
		e.more = "\"grad_norms\": null";
	print_epoch(a, &e);
	free(more);
	if (s->grad_norms && !a->json)
		gn_print_text(s->grad_norms, "  ");
	if (s->grad_norms && a->grad_norms_plot && gn_log_add(&r->gn, s->grad_norms) < 0) {
		fprintf(stderr, "nabla train: --grad-norms: out of memory\n");
		r->gn_failed = true;
		return false;
	}
	/* early stopping: the checkpoint holds the best epoch, written when
	 * one improves */
	if (r->ckpt && (a->early_stop <= 0 || s->improved)) {
		if (save_checkpoint(nb_model_graph(r->m), r->o, a, nb_model_name(r->m), s->epoch,
		                    &r->h) != 0) {
			r->save_failed = true;
			return false;
		}
		r->saved++;
	}
	return true;
}

static void on_grad_norms(const nb_grad_norms *n, void *user)
{
	gn_print_window(((run *)user)->a, n);
}

/* the lines of few points get markers (a single point has no line) */
#define PLOT_MARKERS_MAX 30

/* Loss above, accuracy below, against the epoch: every epoch of the run,
 * the resumed ones too (when the checkpoint had their history). */
static int write_plot(const run *r, const char *path, const char *model)
{
	const train_history *h = &r->h;
	double *x = malloc(sizeof(double) * (size_t)(h->n ? h->n : 1));
	if (!x) {
		fprintf(stderr, "nabla train: --plot: out of memory\n");
		return 1;
	}
	for (int i = 0; i < h->n; i++)
		x[i] = h->first + i + 1;
	char title[128];
	snprintf(title, sizeof title, "%s: training curves", model);
	nb_plot *p[2] = {nb_plot_new(title, NULL, "loss"), nb_plot_new(NULL, "epoch", "accuracy")};
	/* loss panel: train, test[, validation]; accuracy panel likewise */
	const double *y[6] = {h->loss, h->tloss, h->vloss, h->acc, h->tacc, h->vacc};
	static const char *const label[6] = {"train loss",     "test loss",     "val loss",
	                                     "train accuracy", "test accuracy", "val accuracy"};
	static const nb_marker marker[3] = {NB_MARKER_CIRCLE, NB_MARKER_SQUARE, NB_MARKER_TRIANGLE};
	for (int k = 0; k < 6 && p[0] && p[1]; k++) {
		if (k % 3 == 2 && r->a->val_split <= 0)
			continue; /* no validation set */
		if (h->n <= PLOT_MARKERS_MAX)
			nb_plot_line_markers(p[k / 3], label[k], x, y[k], (size_t)h->n,
			                     marker[k % 3]);
		else
			nb_plot_line(p[k / 3], label[k], x, y[k], (size_t)h->n);
	}
	int rc = 0;
	if (!p[0] || !p[1]) {
		fprintf(stderr, "nabla train: --plot: out of memory\n");
		rc = 1;
	} else {
		nb_plot_set_size(p[0], 640, 300);
		nb_plot_set_size(p[1], 640, 280);
		for (int k = 0; k < 2; k++)
			nb_plot_set_xinteger(p[k], true);
		nb_plot_set_yrange(p[1], 0, 1);
		if (nb_plot_save_stack(p, 2, path) == NB_OK) {
			fprintf(stderr, "nabla train: wrote the training curves to %s\n",
			        cli_shown(path));
		} else {
			fprintf(stderr, "nabla train: --plot: %s\n", nb_plot_errmsg(p[0]));
			rc = 1;
		}
	}
	nb_plot_free(p[0]);
	nb_plot_free(p[1]);
	free(x);
	return rc;
}

/* ---- augmentation, validation ------------------------------------------------- */

/* what the run trains on: the samples of each set, the augmentation */
static void print_data_banner(const train_args *a, const nb_zoo_entry *z, const nb_dataset *train,
                              const nb_dataset *test, const nb_augment *aug, int64_t params)
{
	int64_t nv = 0;
	if (a->val_split > 0)
		nb_split_count(train->n, a->val_split, &nv); /* checked */
	char val[64] = "", spec[32] = "";
	if (nv)
		snprintf(val, sizeof val, "%lld validation / ", (long long)nv);
	bool augmented = aug->crop_pad > 0 || aug->flip;
	if (augmented)
		augment_spec(aug, spec, sizeof spec);
	fprintf(stderr,
	        "nabla train: %s on %lld training / %s%lld test samples%s%s, %lld parameters, "
	        "optimizer %s\n",
	        z->name, (long long)(train->n - nv), val, (long long)test->n,
	        augmented ? ", augmented " : "", spec, (long long)params,
	        nb_optim_kind_name(a->optim));
}

/* After a run with --early-stop: where it stopped, which epoch was the
 * best, and what --save and the model hold. */
static void print_early_stop(const train_args *a, const run *r)
{
	const nb_epoch_stats *s = &r->last;
	if (!r->h.n)
		return;
	if (s->early_stop)
		fprintf(
		    stderr,
		    "nabla train: stopped early after epoch %d: no lower validation loss for %d "
		    "epochs\n",
		    s->epoch, s->epochs_since_best);
	if (!s->best_epoch)
		return;
	/* the best carried over from the checkpoint, never bettered since */
	bool before = a->best_epoch > 0 && s->best_epoch == a->best_epoch;
	fprintf(stderr, "nabla train: the best epoch was %d (validation loss %.4f)", s->best_epoch,
	        s->best_val_loss);
	if (before)
		fprintf(stderr,
		        ", before the resume: %s holds its checkpoint (the model has the last "
		        "epoch's parameters)\n",
		        a->resume);
	else if (r->saved)
		fprintf(stderr, "; wrote its checkpoint to %s (--save holds the best epoch)\n",
		        cli_shown(a->save));
	else
		fprintf(stderr, "%s\n", a->export_path ? "; --export writes its parameters" : "");
}

/* ---- optimizer from the flags --------------------------------------------------- */

bool optim_has_momentum(nb_optim_kind kind)
{
	return kind == NB_OPTIM_MOMENTUM || kind == NB_OPTIM_NESTEROV || kind == NB_OPTIM_ADAM ||
	       kind == NB_OPTIM_ADAMW;
}

nb_optim *make_optim(const train_args *a, nb_optim_kind kind, nb_graph *g, nb_tensor *loss)
{
	/* the kind's defaults, each flag given (>= 0) as written: 0 included */
	nb_optim_opts o = nb_optim_defaults(kind);
	if (a->lr >= 0)
		o.lr = a->lr;
	if (a->weight_decay >= 0)
		o.weight_decay = a->weight_decay;
	o.clip_norm = a->clip_norm;
	o.dist = a->dist;
	/* --momentum: the velocity's beta, Adam's beta1 */
	if (a->momentum >= 0 && optim_has_momentum(kind))
		o.momentum = a->momentum;
	return nb_optimizer(g, loss, o);
}

/* --init-from: the parameters and running statistics of a safetensors file */
static int init_from(nb_graph *g, const train_args *a)
{
	nb_init_from_report r;
	if (nb_init_from(g, a->init_from, &r) != NB_OK) {
		fprintf(stderr, "nabla train: %s\n", nb_graph_errmsg(g));
		return 1;
	}
	if (!a->json && nb_dist_rank(a->dist) == 0)
		fprintf(
		    stderr,
		    "nabla train: --init-from %s: %d tensors loaded (%d under PyTorch's names), "
		    "%d of the file's left unused\n",
		    a->init_from, r.loaded, r.renamed, r.ignored);
	return 0;
}

/* The learning-rate schedule of --schedule and --warmup for a training
 * set of n samples; false: a constant rate.  Each schedule gets its own
 * parameters only (the library refuses the others'); cosine's length is
 * the run's, --max-batches included. */
static bool zoo_schedule(const train_args *a, int64_t n, nb_schedule *sched)
{
	*sched = (nb_schedule){.kind = a->schedule, .base_lr = a->lr, .warmup_steps = a->warmup};
	if (a->schedule == NB_SCHED_STEP)
		sched->step_size = a->step_size;
	if (a->schedule == NB_SCHED_STEP || a->schedule == NB_SCHED_EXPONENTIAL)
		sched->gamma = a->gamma;
	if (a->schedule == NB_SCHED_COSINE) {
		int64_t per_epoch = (n + a->batch - 1) / a->batch;
		if (a->max_batches > 0 && a->max_batches < per_epoch)
			per_epoch = a->max_batches;
		sched->total_steps = (int64_t)a->epochs * per_epoch;
	}
	return a->schedule != NB_SCHED_CONSTANT || a->warmup > 0;
}

/* The files a finished run writes: --plot, --grad-norms' plot, --export.
 * 0, or the exit status after a message. */
static int zoo_outputs(run *r, const nb_zoo_entry *z)
{
	const train_args *a = r->a;
	nb_model *m = r->m;
	int rc = 0;
	if (a->plot)
		rc = write_plot(r, a->plot, z->name);
	if (!rc && a->grad_norms_plot)
		rc = gn_write_plot(&r->gn, a->grad_norms_plot, z->name);
	if (!rc && a->export_path)
		rc = cli_export_onnx("train", nb_model_graph(m),
		                     (nb_tensor *[]){nb_model_logits(m), nb_model_probs(m)}, 2,
		                     nb_model_input(m), a->export_path, false, false,
		                     a->json ? NULL : stderr);
	return rc;
}

int train_zoo(const train_args *a, const nb_zoo_entry *z)
{
	nb_dataset train = {0}, test = {0};
	if (load_zoo_data(a, z, &train, &test) < 0)
		return 1;
	nb_augment aug = {0};
	int vrc = check_val_split(a, train.n);
	if (vrc < 0 && a->augment)
		vrc = augment_parse(a->augment, z, &aug); /* checked before: no message */
	if (vrc >= 0) {
		nb_dataset_free(&train), nb_dataset_free(&test);
		return vrc;
	}
	nb_graph *g = nb_graph_new(a->dtype);
	nb_graph_seed(g, a->seed);
	/* data-parallel: each rank's graph holds its shard of the global batch */
	nb_model *m = nb_zoo_build(g, z->name, nb_dist_local_batch(a->dist, a->batch));
	nb_status st = m ? NB_OK : nb_graph_status(g);
	if (!st && a->sync_bn) /* before the first run; one rank: nothing to do */
		st = nb_dist_sync_batchnorm(a->dist, g);
	nb_optim *o = st ? NULL : make_optim(a, a->optim, g, nb_model_loss(m));
	int first_epoch = 0, rc = 0;
	run r = {.a = a, .m = m, .o = o, .ckpt = a->save};
	if (history_init(&r.h, a->epochs) < 0) {
		fprintf(stderr, "nabla train: out of memory for the history of %d epochs\n",
		        a->epochs);
		rc = 1;
	} else if (!o || nb_graph_status(g) != NB_OK) {
		fprintf(stderr, "nabla train: %s\n", nb_graph_errmsg(g));
		rc = 1;
	} else if (a->resume) {
		rc = resume_checkpoint(g, o, a, nb_model_name(m), &first_epoch, &r.h);
	} else if (a->init_from) {
		rc = init_from(g, a);
	}
	if (rc) {
		history_free(&r.h);
		nb_graph_free(g);
		nb_dataset_free(&train), nb_dataset_free(&test);
		return rc;
	}
	bool rank0 = nb_dist_rank(a->dist) == 0;
	if (!a->json && rank0)
		print_data_banner(a, z, &train, &test, &aug, nb_count_params(g));
	nb_schedule sched;
	const bool use_sched = zoo_schedule(a, train.n, &sched);
	char err[256];
	nb_fit_opts fo = {.epochs = a->epochs,
	                  .seed = a->seed,
	                  .max_batches = a->max_batches,
	                  .schedule = use_sched ? &sched : NULL,
	                  .test = &test,
	                  .first_epoch = first_epoch,
	                  .allow_nonfinite = a->allow_nonfinite,
	                  .progress = a->json || !rank0 ? NULL : stderr, /* on a terminal only */
	                  .on_epoch = on_epoch,
	                  .grad_norms = a->grad_norms,
	                  .grad_norm_interval = a->grad_norm_interval,
	                  .on_grad_norms = on_grad_norms,
	                  .user = &r,
	                  .augment = a->augment ? &aug : NULL,
	                  .val_split = a->val_split,
	                  .patience = a->early_stop,
	                  .restore_best = a->early_stop > 0,
	                  .best_epoch = a->best_epoch,
	                  .best_val_loss = a->best_val_loss,
	                  .global_batch = a->batch};
	if (use_sched && nb_schedule_check(&sched, err, sizeof err) != NB_OK) {
		fprintf(stderr, "nabla train: schedule: %s\n", err);
		rc = 2;
	} else if ((st = nb_fit(m, o, &train, fo)) != NB_OK || r.save_failed || r.gn_failed) {
		/* (on_epoch stops a run it failed in: nb_fit returns NB_OK) */
		const char *msg = nb_graph_errmsg(g);
		if (r.save_failed || r.gn_failed)
			; /* reported by on_epoch */
		else if (st == NB_ERR_VALUE && strstr(msg, "training diverged"))
			fprintf(stderr, "nabla train: %s; --allow-nonfinite goes on regardless\n",
			        msg);
		else
			fprintf(stderr, "nabla train: %s\n", msg);
		rc = 1;
	}
	if (!rc && !a->json && rank0 && a->early_stop > 0)
		print_early_stop(a, &r);
	else if (!rc && r.saved && !a->json && rank0)
		fprintf(stderr, "nabla train: wrote the checkpoint to %s\n", cli_shown(a->save));
	if (!rc)
		rc = zoo_outputs(&r, z);
	history_free(&r.h);
	gn_log_free(&r.gn);
	model mm = {.g = g}; /* and the zoo model with it */
	if (finish_model(&mm, a) && !rc)
		rc = 1;
	nb_dataset_free(&train), nb_dataset_free(&test);
	return rc;
}
