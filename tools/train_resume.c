/*
 * `nabla train --save/--resume`: the run's recipe (optimizer, learning rate,
 * batch, schedule, seed, data limits) and its per-epoch history are kept in
 * the checkpoint's metadata (docs/checkpoint.md), so that a resumed run
 * goes on with the same recipe unless a flag says otherwise, and its plot
 * shows every epoch.
 */
#include "train.h"
#include "graph/internal.h" /* nb__shown */

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool train_given_has(const train_given *g, const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; i < g->n; i++)
		if (!strncmp(g->opt[i], name, n) && (g->opt[i][n] == 0 || g->opt[i][n] == '='))
			return true;
	return false;
}

/* ---- history ------------------------------------------------------------------- */

/* the validation series (the last two) are there when the run had one */
static const char *const history_key[6] = {"history_train_loss",     "history_test_loss",
                                           "history_train_accuracy", "history_test_accuracy",
                                           "history_val_loss",       "history_val_accuracy"};

static double *history_series(train_history *h, int k)
{
	double *const v[6] = {h->loss, h->tloss, h->acc, h->tacc, h->vloss, h->vacc};
	return v[k];
}

int history_init(train_history *h, int cap)
{
	*h = (train_history){.cap = cap};
	h->loss = calloc((size_t)cap, sizeof(double));
	h->tloss = calloc((size_t)cap, sizeof(double));
	h->acc = calloc((size_t)cap, sizeof(double));
	h->tacc = calloc((size_t)cap, sizeof(double));
	h->vloss = calloc((size_t)cap, sizeof(double));
	h->vacc = calloc((size_t)cap, sizeof(double));
	if (h->loss && h->tloss && h->acc && h->tacc && h->vloss && h->vacc)
		return 0;
	history_free(h);
	return -1;
}

void history_free(train_history *h)
{
	free(h->loss), free(h->tloss), free(h->acc), free(h->tacc);
	free(h->vloss), free(h->vacc);
	*h = (train_history){0};
}

/* The history's four series from the file (it has `epochs` epochs): NB_OK
 * with h->n = epochs, or h->first = epochs (and n = 0) when the file has
 * none; an error in err when it has a malformed one. */
static nb_status history_load(const nb_safetensors *f, int epochs, train_history *h, char *err,
                              size_t errlen)
{
	h->n = 0;
	h->first = epochs;
	if (!nb_safetensors_meta(f, history_key[0]) || epochs > h->cap)
		return NB_OK;
	for (int k = 0; k < 6; k++) {
		if (k >= 4 && !nb_safetensors_meta(f, history_key[k])) { /* no validation */
			for (int i = 0; i < epochs; i++)
				history_series(h, k)[i] = NAN;
			continue;
		}
		nb_status st =
		    nb_safetensors_meta_numbers(f, history_key[k], 0, k < 2 || k == 4 ? DBL_MAX : 1,
		                                history_series(h, k), (size_t)epochs, err, errlen);
		if (st)
			return st;
	}
	h->n = epochs;
	h->first = 0;
	return NB_OK;
}

/* ---- the recipe ---------------------------------------------------------------- */

/* what the restore_* functions share; failed after a message */
typedef struct recipe_ctx {
	const nb_safetensors *f;
	const train_given *given;
	const char *file;
	bool failed;
	bool quiet; /* a rank other than 0: no notices (errors still) */
} recipe_ctx;

/* a notice about the recipe, from rank 0 alone */
#define NOTICE(C, ...)                                                                             \
	do {                                                                                       \
		if (!(C)->quiet)                                                                   \
			fprintf(stderr, __VA_ARGS__);                                              \
	} while (0)

static void meta_fail(recipe_ctx *c, const char *err)
{
	fprintf(stderr, "nabla train: --resume: %s\n", err);
	c->failed = true;
}

/* The checkpoint's value of a numeric flag into *v: the flag's stays when
 * given (with a notice when it differs), else the file's when it has one;
 * a malformed one sets c->failed after a message. */
static void restore_int(recipe_ctx *c, const char *key, const char *flag, int64_t min, int64_t max,
                        int64_t *v)
{
	char err[512];
	int64_t x;
	if (c->failed || !nb_safetensors_meta(c->f, key))
		return;
	if (nb_safetensors_meta_int(c->f, key, min, max, &x, err, sizeof err) != NB_OK) {
		meta_fail(c, err);
		return;
	}
	if (!train_given_has(c->given, flag))
		*v = x;
	else if (*v != x)
		NOTICE(c, "nabla train: %s %lld overrides the checkpoint's %lld\n", flag,
		       (long long)*v, (long long)x);
}

static void restore_num(recipe_ctx *c, const char *key, const char *flag, double min, double max,
                        double *v)
{
	char err[512];
	double x;
	if (c->failed || !nb_safetensors_meta(c->f, key))
		return;
	if (nb_safetensors_meta_number(c->f, key, min, max, &x, err, sizeof err) != NB_OK) {
		meta_fail(c, err);
		return;
	}
	if (!train_given_has(c->given, flag))
		*v = x;
	else if (*v != x)
		NOTICE(c, "nabla train: %s %g overrides the checkpoint's %g\n", flag, *v, x);
}

/* an int field through restore_int */
#define RESTORE_INT(C, KEY, FLAG, MIN, MAX, FIELD)                                                 \
	do {                                                                                       \
		int64_t v_ = (FIELD);                                                              \
		restore_int(C, KEY, FLAG, MIN, MAX, &v_);                                          \
		(FIELD) = v_;                                                                      \
	} while (0)

/* the optimizer and dtype cannot change: the file holds that optimizer's
 * state in that dtype */
static int restore_kinds(recipe_ctx *c, train_args *a)
{
	const char *s = nb_safetensors_meta(c->f, "optimizer");
	int kind = s ? (int)nb_optim_kind_from_name(s) : -1;
	if (kind >= 0 && (int)a->optim < 0) {
		a->optim = (nb_optim_kind)kind;
	} else if (kind >= 0 && (int)a->optim != kind) {
		fprintf(stderr,
		        "nabla train: --optim %s: %s was trained with %s and holds its state; "
		        "resume with %s (leave --optim out)\n",
		        nb_optim_kind_name(a->optim), c->file, nb_optim_kind_name(kind),
		        nb_optim_kind_name(kind));
		return 2;
	}
	/* an unknown optimizer name is reported by the load, escaped */
	s = nb_safetensors_meta(c->f, "dtype");
	if (s && strcmp(s, "F32") && strcmp(s, "F64")) { /* absent: a file Python wrote */
		char b[128], fb[256];
		fprintf(stderr,
		        "nabla train: --resume: %s: metadata dtype '%s' is not F32 or F64 (not a "
		        "checkpoint of nabla train)\n",
		        nb__shown(c->file, fb, sizeof fb), nb__shown(s, b, sizeof b));
		return 1;
	}
	nb_dtype dt = s && !strcmp(s, "F64") ? NB_F64 : NB_F32;
	if (s && (!strcmp(s, "F32") || !strcmp(s, "F64"))) {
		if (!train_given_has(c->given, "--dtype")) {
			a->dtype = dt;
		} else if (a->dtype != dt) {
			fprintf(stderr,
			        "nabla train: --dtype %s: %s holds %s tensors; resume in %s (leave "
			        "--dtype out)\n",
			        nb_dtype_name(a->dtype), c->file, nb_dtype_name(dt),
			        nb_dtype_name(dt));
			return 2;
		}
	}
	return -1;
}

/* the schedule: the file's unless --schedule names another one, whose
 * parameters then come from the flags alone */
static void restore_schedule(recipe_ctx *c, train_args *a)
{
	const char *s = nb_safetensors_meta(c->f, "schedule");
	nb_schedule_kind k = NB_SCHED_CONSTANT;
	if (s && (int)(k = nb_schedule_kind_from_name(s)) < 0) {
		fprintf(
		    stderr,
		    "nabla train: --resume: %s: metadata schedule is not one of constant, step, "
		    "exponential, cosine\n",
		    c->file);
		c->failed = true;
		return;
	}
	if (train_given_has(c->given, "--schedule")) {
		if (a->schedule != k)
			NOTICE(c, "nabla train: --schedule %s overrides the checkpoint's %s\n",
			       nb_schedule_kind_name(a->schedule), nb_schedule_kind_name(k));
		if (a->schedule != k)
			return;
	}
	a->schedule = k;
	restore_num(c, "gamma", "--gamma", 0, 1, &a->gamma);
	RESTORE_INT(c, "step_size", "--step-size", 1, INT64_MAX, a->step_size);
	RESTORE_INT(c, "warmup", "--warmup", 0, INT64_MAX, a->warmup);
}

/* the binary models' two classes: the file's unless --classes names
 * others (then the model goes on learning another pair) */
static void restore_classes(recipe_ctx *c, train_args *a)
{
	const char *s = nb_safetensors_meta(c->f, "classes");
	int k[2];
	char b[64];
	if (!s)
		return;
	if (!train_parse_classes(s, k)) {
		fprintf(stderr,
		        "nabla train: --resume: %s: metadata classes \"%s\" is not two different "
		        "class ids (A,B)\n",
		        c->file, nb__shown(s, b, sizeof b));
		c->failed = true;
	} else if (!train_given_has(c->given, "--classes")) {
		a->classes[0] = k[0], a->classes[1] = k[1];
	} else if (a->classes[0] != k[0] || a->classes[1] != k[1]) {
		NOTICE(c, "nabla train: --classes %d,%d overrides the checkpoint's %d,%d\n",
		       a->classes[0], a->classes[1], k[0], k[1]);
	}
}

/* --augment, --val-split, --early-stop, and the best validation loss so
 * far when this run's validation set is the checkpoint's (the same
 * --val-split, --seed and --train-limit) */
static void restore_validation(recipe_ctx *c, train_args *a, int64_t epoch)
{
	static char spec[32]; /* a->augment points here after the file is closed */
	const char *s = nb_safetensors_meta(c->f, "augment");
	if (s && !augment_spec_ok(s)) {
		fprintf(stderr,
		        "nabla train: --resume: %s: metadata augment is not a spec such as "
		        "crop=4,flip\n",
		        c->file);
		c->failed = true;
		return;
	}
	/* a given "default" compared as the spec it stands for */
	char canon[32];
	const nb_zoo_entry *z = nb_zoo_find(a->model);
	const char *given = a->augment;
	if (given && !strcmp(given, "default") && z) {
		augment_spec(z->recipe.augment ? z->recipe.augment : &(nb_augment){0}, canon,
		             sizeof canon);
		given = canon;
	}
	if (s && !train_given_has(c->given, "--augment")) {
		snprintf(spec, sizeof spec, "%s", s);
		a->augment = spec;
	} else if (train_given_has(c->given, "--augment") && strcmp(given, s ? s : "none")) {
		NOTICE(c, "nabla train: --augment %s overrides the checkpoint's %s\n", a->augment,
		       s ? s : "none");
	}
	int64_t file_seed = 0, file_limit = 0;
	double file_split = 0;
	char err[512];
	restore_num(c, "val_split", "--val-split", nextafter(0, 1), nextafter(1, 0), &a->val_split);
	RESTORE_INT(c, "early_stop", "--early-stop", 0, CLI_MAX_EPOCHS, a->early_stop);
	if (c->failed || !nb_safetensors_meta(c->f, "best_epoch"))
		return;
	int64_t best;
	double loss;
	if (nb_safetensors_meta_int(c->f, "best_epoch", 1, epoch > 0 ? epoch : 1, &best, err,
	                            sizeof err) ||
	    nb_safetensors_meta_number(c->f, "best_val_loss", 0, DBL_MAX, &loss, err, sizeof err)) {
		meta_fail(c, err);
		return;
	}
	/* the values the file was trained with (restore_* checked them) */
	nb_safetensors_meta_number(c->f, "val_split", 0, 1, &file_split, NULL, 0);
	if (nb_safetensors_meta(c->f, "seed"))
		nb_safetensors_meta_int(c->f, "seed", 0, INT64_MAX, &file_seed, NULL, 0);
	if (nb_safetensors_meta(c->f, "train_limit"))
		nb_safetensors_meta_int(c->f, "train_limit", 1, INT64_MAX, &file_limit, NULL, 0);
	if (a->val_split == file_split && (int64_t)a->seed == file_seed &&
	    a->train_limit == file_limit) {
		a->best_epoch = (int)best;
		a->best_val_loss = loss;
	} else if (a->val_split > 0) {
		NOTICE(c,
		       "nabla train: the validation set is not the checkpoint's (another "
		       "--val-split, --seed or --train-limit): its best validation loss (epoch "
		       "%lld) does not carry over\n",
		       (long long)best);
	}
}

/* a checkpoint saved after epoch ep, asked to train to epochs <= ep */
static void nothing_left(const char *path, int64_t ep, int epochs)
{
	char shown[256], more[64] = "";
	if (ep < CLI_MAX_EPOCHS)
		snprintf(more, sizeof more, "; ask for more, e.g. --epochs %lld",
		         (long long)ep + 1);
	else
		snprintf(more, sizeof more, " (%d epochs is the most a run has)", CLI_MAX_EPOCHS);
	fprintf(stderr,
	        "nabla train: --resume: %s was saved after epoch %lld, so nothing is left to "
	        "do with --epochs %d (it counts all the epochs, the resumed ones too); "
	        "nothing trained or written%s\n",
	        nb__shown(path, shown, sizeof shown), (long long)ep, epochs, more);
}

int resume_recipe(train_args *a, const train_given *given, int default_epochs)
{
	nb_safetensors *f;
	char err[768];
	if (nb_safetensors_open(a->resume, &f, err, sizeof err) != NB_OK) {
		fprintf(stderr, "nabla train: --resume: %s\n", err);
		return 1;
	}
	recipe_ctx c = {
	    .f = f, .given = given, .file = a->resume, .quiet = nb_dist_rank(a->dist) != 0};
	int rc = -1;
	/* another model's file: the load says so, before anything else */
	const char *m = nb_safetensors_meta(f, "model");
	if (m && strcmp(m, a->model))
		goto done;
	int64_t ep = 0;
	if (nb_safetensors_meta(f, "epoch") &&
	    nb_safetensors_meta_int(f, "epoch", 0, CLI_MAX_EPOCHS, &ep, err, sizeof err) != NB_OK) {
		fprintf(stderr, "nabla train: --resume: %s\n", err);
		rc = 1;
		goto done;
	}
	int epochs = a->epochs ? a->epochs : default_epochs;
	if (ep >= epochs) {
		nothing_left(a->resume, ep, epochs);
		rc = 2;
		goto done;
	}
	if ((rc = restore_kinds(&c, a)) >= 0)
		goto done;
	/* base_lr is the run's --lr; older files have the current lr only */
	double lr;
	if (nb_safetensors_meta(f, "base_lr"))
		restore_num(&c, "base_lr", "--lr", 0, DBL_MAX, &a->lr);
	else if (nb_safetensors_meta_number(f, "lr", 0, DBL_MAX, &lr, NULL, 0) == NB_OK)
		restore_num(&c, "lr", "--lr", 0, DBL_MAX, &a->lr); /* else the load says why */
	RESTORE_INT(&c, "batch", "--batch", 1, CLI_MAX_BATCH, a->batch);
	RESTORE_INT(&c, "seed", "--seed", 0, INT64_MAX, a->seed);
	/* (files of sgd or rmsprop runs may record their recipe's momentum,
	 * which does not apply to them) */
	if (nb_safetensors_meta(f, "momentum") &&
	    ((int)a->optim < 0 || optim_has_momentum(a->optim)))
		restore_num(&c, "momentum", "--momentum", 0, nextafter(1, 0), &a->momentum);
	restore_num(&c, "weight_decay", "--weight-decay", 0, DBL_MAX, &a->weight_decay);
	restore_num(&c, "clip_norm", "--clip-norm", 0, DBL_MAX, &a->clip_norm);
	RESTORE_INT(&c, "max_batches", "--max-batches", 1, INT64_MAX, a->max_batches);
	RESTORE_INT(&c, "train_limit", "--train-limit", 1, INT64_MAX, a->train_limit);
	RESTORE_INT(&c, "test_limit", "--test-limit", 1, INT64_MAX, a->test_limit);
	if (nb_safetensors_meta(f, "standardize"))
		a->standardize = true;
	if (!c.failed)
		restore_classes(&c, a);
	if (!c.failed)
		restore_schedule(&c, a);
	if (!c.failed)
		restore_validation(&c, a, ep);
	rc = c.failed ? 1 : -1;
done:
	nb_safetensors_free(f);
	return rc;
}

/* ---- saving -------------------------------------------------------------------- */

/* the four series as "v,v,..." (NULL when out of memory) */
static char *history_string(const double *v, int n)
{
	char *s = malloc((size_t)n * 26 + 1), *p = s;
	if (!s)
		return NULL;
	*p = 0;
	for (int i = 0; i < n; i++) {
		if (isfinite(v[i]))
			p += sprintf(p, "%s%.17g", i ? "," : "", v[i]);
		else
			p += sprintf(p, "%snull", i ? "," : "");
	}
	return s;
}

int save_checkpoint(nb_graph *g, nb_optim *o, const train_args *a, const char *model, int epoch,
                    const train_history *h)
{
	char v[24][32];
	const char *meta[2 * 32];
	int n = 0, k = 0;
#define META(KEY, ...)                                                                             \
	(snprintf(v[k], sizeof v[k], __VA_ARGS__), meta[n++] = KEY, meta[n++] = v[k++])
	META("epoch", "%d", epoch);
	META("base_lr", "%.17g", a->lr);
	META("batch", "%d", a->batch);
	META("seed", "%llu", (unsigned long long)a->seed);
	/* given (0 included) or the recipe's; absent: the optimizer's default
	 * (or none, for sgd and rmsprop) */
	if (a->momentum >= 0 && optim_has_momentum(a->optim))
		META("momentum", "%.17g", a->momentum);
	if (a->weight_decay >= 0)
		META("weight_decay", "%.17g", a->weight_decay);
	if (a->clip_norm > 0)
		META("clip_norm", "%.17g", a->clip_norm);
	if (a->max_batches > 0)
		META("max_batches", "%lld", (long long)a->max_batches);
	if (a->train_limit > 0)
		META("train_limit", "%lld", (long long)a->train_limit);
	if (a->test_limit > 0)
		META("test_limit", "%lld", (long long)a->test_limit);
	if (a->standardize)
		META("standardize", "1");
	const nb_zoo_entry *z = nb_zoo_find(model);
	if (z && z->num_classes == 2) /* the binary models' two classes, for nabla eval */
		META("classes", "%d,%d", a->classes[0], a->classes[1]);
	if (a->schedule != NB_SCHED_CONSTANT)
		META("schedule", "%s", nb_schedule_kind_name(a->schedule));
	if (a->schedule == NB_SCHED_STEP || a->schedule == NB_SCHED_EXPONENTIAL)
		META("gamma", "%.17g", a->gamma);
	if (a->schedule == NB_SCHED_STEP)
		META("step_size", "%lld", (long long)a->step_size);
	if (a->warmup > 0)
		META("warmup", "%lld", (long long)a->warmup);
	if (a->augment) {
		/* as a spec that needs no model: "default" resolved (checked before) */
		nb_augment aug = {0};
		const nb_zoo_entry *z = nb_zoo_find(model);
		if (z)
			augment_parse(a->augment, z, &aug);
		augment_spec(&aug, v[k], sizeof v[k]);
		if (strcmp(v[k], "none")) /* none: as without the key */
			meta[n++] = "augment", meta[n++] = v[k++];
	}
	if (a->val_split > 0)
		META("val_split", "%.17g", a->val_split);
	if (a->early_stop > 0)
		META("early_stop", "%d", a->early_stop);
	if (h && h->best_epoch > 0) {
		META("best_epoch", "%d", h->best_epoch);
		META("best_val_loss", "%.17g", h->best_val_loss);
	}
#undef META
	char *hs[6] = {0};
	bool with_history = h && h->first == 0 && h->n == epoch && h->n <= HISTORY_MAX;
	for (int i = 0; i < (a->val_split > 0 ? 6 : 4) && with_history; i++) {
		if (!(hs[i] = history_string(history_series((train_history *)h, i), h->n))) {
			with_history = false;
			break;
		}
		meta[n++] = history_key[i];
		meta[n++] = hs[i];
	}
	int rc = 0;
	if (h && !with_history && h->n == epoch && h->n <= HISTORY_MAX) {
		fprintf(stderr, "nabla train: --save: out of memory\n");
		rc = 1;
	}
	nb_checkpoint_opts co = {.meta = meta, .n_meta = n / 2};
	if (!rc && nb_checkpoint_save_opts(g, o, a->save, model, co) != NB_OK) {
		fprintf(stderr, "nabla train: --save: %s\n", nb_graph_errmsg(g));
		rc = 1;
	}
	for (int i = 0; i < 6; i++)
		free(hs[i]);
	return rc;
}

int resume_checkpoint(nb_graph *g, nb_optim *o, const train_args *a, const char *model,
                      int *first_epoch, train_history *h)
{
	nb_safetensors *f;
	char err[768];
	if (nb_safetensors_open(a->resume, &f, err, sizeof err) != NB_OK) {
		fprintf(stderr, "nabla train: --resume: %s\n", err);
		return 1;
	}
	/* the epochs the checkpoint has done; none when it does not say */
	int64_t ep = 0;
	nb_status st = NB_OK;
	if (nb_safetensors_meta(f, "epoch"))
		st = nb_safetensors_meta_int(f, "epoch", 0, CLI_MAX_EPOCHS, &ep, err, sizeof err);
	if (!st && h && ep < a->epochs)
		st = history_load(f, (int)ep, h, err, sizeof err);
	nb_safetensors_free(f);
	/* the load checks the model name before the rest */
	nb_checkpoint_opts co = {.model = model};
	if (nb_checkpoint_load_opts(g, o, a->resume, NULL, 0, co) != NB_OK) {
		fprintf(stderr, "nabla train: --resume: %s\n", nb_graph_errmsg(g));
		return 1;
	}
	if (st) {
		fprintf(stderr, "nabla train: --resume: %s\n", err);
		return 1;
	}
	if (ep >= a->epochs) {
		nothing_left(a->resume, ep, a->epochs);
		return 2;
	}
	/* the load restored the checkpoint's current rate; an explicit --lr
	 * (a->lr differs only then) replaces it */
	if (o)
		nb_optim_set_lr(o, a->lr);
	*first_epoch = (int)ep;
	if (!a->json && nb_dist_rank(a->dist) == 0)
		fprintf(stderr, "nabla train: resumed %s from %s after epoch %d (step %lld)\n",
		        model, a->resume, *first_epoch, (long long)nb_optim_steps(o));
	return 0;
}
