/*
 * `nabla train --compare-optim`: the same model, from the same initial
 * weights and with the same minibatch order, trained with plain SGD,
 * momentum and Adam; one SVG with the three training-loss curves.
 *
 * The default model is a small MLP on synthetic three-arm spirals (fast,
 * and the optimizers differ clearly); --model takes a zoo model on its data
 * instead (e.g. mlp on a Fashion-MNIST subset with --train-limit).
 */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPIRAL_CLASSES 3
#define SPIRAL_HIDDEN 64
#define SPIRAL_BATCH 32
#define SPIRAL_EPOCHS 30
#define SMOOTH_BETA 0.9 /* EWMA of the batch losses for the plot */

static const nb_optim_kind kinds[] = {NB_OPTIM_SGD, NB_OPTIM_MOMENTUM, NB_OPTIM_ADAM};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

/* n points per class on three interleaved spiral arms: radius t in
 * (0, 1], angle 2 pi k/3 + 4 t plus N(0, 0.2^2) noise */
static nb_status spirals(int64_t per_class, uint64_t seed, nb_dataset *d)
{
	int64_t n = per_class * SPIRAL_CLASSES;
	*d = (nb_dataset){.n = n,
	                  .c = 2,
	                  .h = 1,
	                  .w = 1,
	                  .num_classes = SPIRAL_CLASSES,
	                  .x = malloc((size_t)n * 2 * sizeof(float)),
	                  .y = malloc((size_t)n * sizeof(int32_t))};
	if (!d->x || !d->y) {
		nb_dataset_free(d);
		return NB_ERR_NOMEM;
	}
	uint64_t rng = seed;
	for (int64_t i = 0; i < n; i++) {
		int k = (int)(i % SPIRAL_CLASSES);
		double t = (double)(i / SPIRAL_CLASSES + 1) / (double)per_class;
		double angle = 2 * M_PI * k / SPIRAL_CLASSES + 4 * t + 0.2 * nb__rand_normal(&rng);
		d->x[2 * i] = (float)(t * cos(angle));
		d->x[2 * i + 1] = (float)(t * sin(angle));
		d->y[i] = k;
	}
	return NB_OK;
}

/* 2-64-64-3 ReLU MLP (PyTorch's default init), softmax cross-entropy */
static nb_model *build_spiral_mlp(nb_graph *g, int64_t batch)
{
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(batch, 2));
	nb_tensor *h = nb_relu(nb_dense(x, SPIRAL_HIDDEN, "fc1"));
	h = nb_relu(nb_dense(h, SPIRAL_HIDDEN, "fc2"));
	return nb_classifier(x, nb_dense(h, SPIRAL_CLASSES, "fc3"), NB_LOSS_SPARSE_CCE);
}

typedef struct curve {
	nb_optim_kind kind;
	nb_graph *g;
	nb_model *m; /* g's */
	nb_optim *o;
	double ewma, *x, *y; /* smoothed batch losses against epochs */
	int64_t n, cap;
	double first_loss; /* of the first batch, before any update: equal for all */
	double lr, seconds, final_train_loss, test_loss, test_accuracy;
	const train_args *a;
	int every;
} curve;

static void on_batch(const nb_progress *p, void *user)
{
	curve *c = user;
	if (c->n == c->cap)
		return; /* cannot happen: sized for the whole run */
	double loss = nb_item(nb_model_loss(c->m)), t = (double)p->step;
	if (p->step == 1)
		c->first_loss = loss;
	c->ewma = SMOOTH_BETA * c->ewma + (1 - SMOOTH_BETA) * loss;
	c->x[c->n] = (double)(p->epoch - 1) + (double)p->batch / (double)p->batches;
	c->y[c->n++] = c->ewma / (1 - pow(SMOOTH_BETA, t));
}

static bool on_epoch(const nb_epoch_stats *s, void *user)
{
	curve *c = user;
	c->seconds += s->seconds;
	c->final_train_loss = s->train_loss;
	c->test_loss = s->test_loss;
	c->test_accuracy = s->test_accuracy;
	/* --json: every epoch; the lines for people: about ten */
	if (!c->a->json && s->epoch % c->every && s->epoch != s->epochs && s->epoch != 1)
		return true;
	epoch_report r = {.epoch = s->epoch,
	                  .epochs = s->epochs,
	                  .loss = s->train_loss,
	                  .accuracy = s->train_accuracy,
	                  .seconds = c->seconds};
	if (c->a->json)
		snprintf(
		    r.extra, sizeof r.extra,
		    "\"optim\": \"%s\", \"lr\": %g, \"test_loss\": %.6f, \"test_accuracy\": %.6f, "
		    "\"first_batch_loss\": %.9g",
		    nb_optim_kind_name(c->kind), s->lr, s->test_loss, s->test_accuracy,
		    c->first_loss);
	else
		snprintf(r.extra, sizeof r.extra,
		         "%-8s lr %-6g test loss %.4f  test accuracy %.2f%%",
		         nb_optim_kind_name(c->kind), s->lr, s->test_loss, 100 * s->test_accuracy);
	print_epoch(c->a, &r);
	return true;
}

/* The model in a new graph (*g) seeded with --seed, or NULL. */
static nb_model *build(const train_args *a, const nb_zoo_entry *z, nb_graph **g)
{
	if (!(*g = nb_graph_new(a->dtype)))
		return NULL;
	nb_graph_seed(*g, a->seed);
	return z ? nb_zoo_build(*g, z->name, a->batch) : build_spiral_mlp(*g, a->batch);
}

/* Every parameter of `to` gets the values of the same parameter of
 * `from` (the same model built twice: same names, same order). */
static nb_status copy_params(nb_graph *from, nb_graph *to)
{
	int n = nb_graph_num_params(from);
	if (n != nb_graph_num_params(to))
		return NB_ERR_ARG;
	for (int i = 0; i < n; i++) {
		nb_tensor *s = nb_graph_param(from, i), *d = nb_graph_param(to, i);
		int64_t k = nb_tensor_size(s);
		if (k != nb_tensor_size(d))
			return NB_ERR_ARG;
		double *v = malloc((size_t)k * sizeof *v);
		nb_status st = v ? nb_read_f64(s, v, k) : NB_ERR_NOMEM;
		if (!st)
			st = nb_feed_f64(d, v, k);
		free(v);
		if (st)
			return st;
	}
	return NB_OK;
}

static int write_plot(const train_args *a, const char *model, const curve *c)
{
	char title[160], label[128];
	snprintf(title, sizeof title, "%s: SGD vs momentum vs Adam, same initial weights", model);
	nb_plot *p = nb_plot_new(title, "epoch", "training loss (EWMA 0.9 of the batch losses)");
	for (int k = 0; k < N_KINDS; k++) {
		snprintf(label, sizeof label, "%s, lr %g (test accuracy %.1f%%)",
		         nb_optim_kind_name(c[k].kind), c[k].lr, 100 * c[k].test_accuracy);
		nb_plot_line(p, label, c[k].x, c[k].y, (size_t)c[k].n);
	}
	nb_plot_set_logy(p, true);
	int rc = 0;
	if (nb_plot_save(p, a->plot) == NB_OK) {
		fprintf(stderr, "nabla train: wrote the three loss curves to %s\n",
		        cli_shown(a->plot));
	} else {
		fprintf(stderr, "nabla train: --plot: %s\n", nb_plot_errmsg(p));
		rc = 1;
	}
	nb_plot_free(p);
	return rc;
}

/* Build the model; init: the first optimizer's curve, whose initial
 * weights this one takes (NULL for the first).  Then the optimizer. */
static int setup(const train_args *a, const nb_zoo_entry *z, const curve *init, curve *c)
{
	nb_model *m = build(a, z, &c->g);
	nb_status st = m ? NB_OK : c->g ? nb_graph_status(c->g) : NB_ERR_NOMEM;
	c->o = NULL;
	if (!st && init)
		st = copy_params(init->g, c->g);
	if (!st && !(c->o = make_optim(a, c->kind, c->g, nb_model_loss(m))))
		st = nb_graph_status(c->g);
	if (st) {
		fprintf(stderr, "nabla train: %s\n",
		        c->g ? nb_graph_errmsg(c->g) : nb_status_string(st));
		return 1;
	}
	c->lr = nb_optim_lr(c->o);
	c->m = m;
	return 0;
}

static int run_one(const train_args *a, const nb_dataset *train, const nb_dataset *test, curve *c)
{
	nb_fit_opts fo = {.epochs = a->epochs,
	                  .seed = a->seed,
	                  .max_batches = a->max_batches,
	                  .test = test,
	                  .allow_nonfinite = a->allow_nonfinite,
	                  .progress = a->json ? NULL : stderr, /* on a terminal only */
	                  .on_batch = on_batch,
	                  .on_epoch = on_epoch,
	                  .user = c};
	if (nb_fit(c->m, c->o, train, fo) != NB_OK) {
		fprintf(stderr, "nabla train: %s: %s\n", nb_optim_kind_name(c->kind),
		        nb_graph_errmsg(c->g));
		return 1;
	}
	return 0;
}

int compare_optim(const train_args *a0)
{
	train_args args = *a0, *a = &args;
	/* the caller checked the name: "spirals" or a zoo model */
	const nb_zoo_entry *z = strcmp(a->model, "spirals") ? nb_zoo_find(a->model) : NULL;
	if (!a->epochs) /* zoo models: the caller set their defaults */
		a->epochs = SPIRAL_EPOCHS;
	if (!a->batch)
		a->batch = SPIRAL_BATCH;
	nb_dataset train = {0}, test = {0};
	if (z) {
		if (load_zoo_data(a, z, &train, &test) < 0)
			return 1;
	} else if (spirals(a->train_limit > 0 ? (a->train_limit + 2) / 3 : 300, a->seed, &train) ||
	           spirals(a->test_limit > 0 ? (a->test_limit + 2) / 3 : 300, a->seed + 0x5eed,
	                   &test)) {
		fprintf(stderr, "nabla train: out of memory\n");
		nb_dataset_free(&train);
		return 1;
	}
	int64_t per_epoch = (train.n + a->batch - 1) / a->batch;
	if (a->max_batches > 0 && a->max_batches < per_epoch)
		per_epoch = a->max_batches;
	if (!a->json)
		fprintf(stderr,
		        "nabla train: comparing sgd, momentum and adam on %s: %lld training / %lld "
		        "test samples, %d epochs of %lld batches of %d\n",
		        z ? z->name : "spirals (2-64-64-3 ReLU MLP)", (long long)train.n,
		        (long long)test.n, a->epochs, (long long)per_epoch, a->batch);
	curve c[N_KINDS] = {0};
	int rc = 0;
	for (int k = 0; k < N_KINDS && !rc; k++) {
		c[k] = (curve){.kind = kinds[k],
		               .a = a,
		               .every = a->epochs >= 10 ? a->epochs / 10 : 1,
		               .cap = per_epoch * a->epochs};
		c[k].x = malloc((size_t)c[k].cap * sizeof(double));
		c[k].y = malloc((size_t)c[k].cap * sizeof(double));
		if (!c[k].x || !c[k].y) {
			fprintf(stderr, "nabla train: out of memory\n");
			rc = 1;
			break;
		}
		/* all built before any training: the same initial weights */
		rc = setup(a, z, k ? &c[0] : NULL, &c[k]);
	}
	for (int k = 0; k < N_KINDS && !rc; k++)
		rc = run_one(a, &train, &test, &c[k]);
	if (!rc) {
		if (!a->json)
			for (int k = 0; k < N_KINDS; k++)
				fprintf(
				    stderr,
				    "nabla train: %-8s lr %-6g first batch loss %.6f, final train "
				    "loss %.4f, test loss %.4f, test accuracy %.2f%%, %.2fs\n",
				    nb_optim_kind_name(c[k].kind), c[k].lr, c[k].first_loss,
				    c[k].final_train_loss, c[k].test_loss, 100 * c[k].test_accuracy,
				    c[k].seconds);
		if (a->plot)
			rc = write_plot(a, z ? z->name : "spirals", c);
	}
	for (int k = 0; k < N_KINDS; k++) {
		free(c[k].x), free(c[k].y);
		nb_graph_free(c[k].g); /* and its model */
	}
	nb_dataset_free(&train), nb_dataset_free(&test);
	return rc;
}
