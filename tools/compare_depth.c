/*
 * `nabla train --compare-depth`: the lecture notes' vanishing gradients,
 * measured.  The same deep MLP on Fashion-MNIST (ten hidden layers of 64
 * units) trained four ways from the same seed and minibatch order --
 * sigmoid, ReLU with He initialisation, batchnorm + ReLU, and the sigmoid
 * network with identity shortcuts (the zoo's deep-* models) -- with the
 * per-layer gradient norms recorded (nabla/gradnorms.h).  One SVG shows
 * the gradient norm by depth and the first-layer / last-layer ratio per
 * epoch, another the test accuracy per epoch; a table on stderr has the
 * numbers.
 */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const variants[] = {"deep-sigmoid", "deep-relu-he", "deep-relu-bn",
                                       "deep-residual"};
#define N_VARIANTS ((int)(sizeof variants / sizeof *variants))

typedef struct variant {
	train_args a; /* model: the variant */
	gn_log gn;
	double *tacc; /* test accuracy per epoch */
	int n;
	bool failed; /* out of memory (reported) */
} variant;

static bool on_epoch(const nb_epoch_stats *s, void *user)
{
	variant *v = user;
	epoch_report e = {.epoch = s->epoch,
	                  .epochs = s->epochs,
	                  .loss = s->train_loss,
	                  .accuracy = s->train_accuracy,
	                  .seconds = s->seconds};
	char tl[32] = "null", ta[32] = "null";
	if (isfinite(s->test_loss))
		snprintf(tl, sizeof tl, "%.6f", s->test_loss);
	if (isfinite(s->test_accuracy))
		snprintf(ta, sizeof ta, "%.6f", s->test_accuracy);
	if (v->a.json)
		snprintf(e.extra, sizeof e.extra, "\"test_loss\": %s, \"test_accuracy\": %s", tl,
		         ta);
	else
		snprintf(e.extra, sizeof e.extra, "test accuracy %.2f%%", 100 * s->test_accuracy);
	char *more = v->a.json ? gn_json_members(s->grad_norms) : NULL;
	if (v->a.json && !more) {
		fprintf(stderr, "nabla train: --compare-depth: out of memory\n");
		v->failed = true;
		return false;
	}
	e.more = more;
	print_epoch(&v->a, &e);
	free(more);
	if (!v->a.json)
		gn_print_text(s->grad_norms, "  ");
	v->tacc[v->n++] = s->test_accuracy;
	if (gn_log_add(&v->gn, s->grad_norms) < 0) {
		fprintf(stderr, "nabla train: --compare-depth: out of memory\n");
		v->failed = true;
		return false;
	}
	return true;
}

/* one variant on the data: 0, or 1 after a message */
static int train_variant(variant *v, const nb_dataset *train, const nb_dataset *test)
{
	const train_args *a = &v->a;
	nb_graph *g = nb_graph_new(a->dtype);
	nb_graph_seed(g, a->seed);
	nb_model *m = nb_zoo_build(g, a->model, a->batch);
	nb_optim *o = m ? make_optim(a, a->optim, g, nb_model_loss(m)) : NULL;
	int rc = 0;
	if (!a->json) /* the epoch lines for people do not name the model */
		printf("%s: %s\n", a->model, nb_zoo_find(a->model)->summary);
	if (!o) {
		fprintf(stderr, "nabla train: %s: %s\n", a->model, nb_graph_errmsg(g));
		rc = 1;
	} else {
		nb_fit_opts fo = {.epochs = a->epochs,
		                  .seed = a->seed,
		                  .max_batches = a->max_batches,
		                  .test = test,
		                  .allow_nonfinite = a->allow_nonfinite,
		                  .progress = a->json ? NULL : stderr,
		                  .grad_norms = true,
		                  .on_epoch = on_epoch,
		                  .user = v};
		if (nb_fit(m, o, train, fo) != NB_OK || v->failed) {
			if (!v->failed)
				fprintf(stderr, "nabla train: %s: %s\n", a->model,
				        nb_graph_errmsg(g));
			rc = 1;
		}
	}
	nb_graph_free(g); /* and the model */
	return rc;
}

/* the layers the depth plot shows: the dense ones (not the batchnorms,
 * so that every variant has the same depth axis) */
static bool dense_layer(const char *name)
{
	return strncmp(name, "bn", 2) != 0;
}

void depth_accuracy_path(char *buf, size_t size, const char *plot)
{
	size_t n = strlen(plot);
	if (n >= 4 && !strcmp(plot + n - 4, ".svg"))
		n -= 4;
	snprintf(buf, size, "%.*s-accuracy.svg", (int)n, plot);
}

static int write_plots(const variant *v, const char *path)
{
	int E = v[0].n, L = 0;
	for (int l = 0; l < v[0].gn.layers; l++)
		L += dense_layer(v[0].gn.names[l]);
	size_t cap = (size_t)(E > L ? E : L) + 1;
	double *x = malloc(cap * sizeof *x), *y = malloc(cap * sizeof *y);
	char title[128], apath[1024];
	snprintf(title, sizeof title, "gradient norm by depth after epoch %d",
	         v[0].gn.epoch[E - 1]);
	nb_plot *p[3] = {
	    nb_plot_new(title, "dense layer (1 = fc1, 11 = out)", "||grad||"),
	    nb_plot_new("first-layer / last-layer gradient norm (fc1 / out)", "epoch", "ratio"),
	    nb_plot_new("test accuracy", "epoch", "accuracy")};
	int rc = 0;
	if (!x || !y || !p[0] || !p[1] || !p[2]) {
		fprintf(stderr, "nabla train: --compare-depth: out of memory\n");
		rc = 1;
		goto done;
	}
	for (int k = 0; k < N_VARIANTS; k++) {
		const gn_log *g = &v[k].gn;
		const double *last = g->norm + (size_t)(g->n - 1) * (size_t)g->layers;
		int n = 0;
		for (int l = 0; l < g->layers; l++)
			if (dense_layer(g->names[l])) {
				x[n] = n + 1;
				y[n++] = last[l];
			}
		nb_plot_line_markers(p[0], v[k].a.model, x, y, (size_t)n, (nb_marker)k);
		for (int e = 0; e < g->n; e++) {
			x[e] = g->epoch[e];
			y[e] = g->norm[(size_t)e * (size_t)g->layers] /
			       g->norm[(size_t)e * (size_t)g->layers + (size_t)g->layers - 1];
		}
		nb_plot_line_markers(p[1], v[k].a.model, x, y, (size_t)g->n, (nb_marker)k);
		nb_plot_line_markers(p[2], v[k].a.model, x, v[k].tacc, (size_t)v[k].n,
		                     (nb_marker)k);
	}
	for (int k = 0; k < 3; k++) {
		nb_plot_set_xinteger(p[k], true);
		nb_plot_set_size(p[k], 640, 320);
	}
	if (L > 1)
		nb_plot_set_xrange(p[0], 1, L);
	if (E > 1) {
		nb_plot_set_xrange(p[1], v[0].gn.epoch[0], v[0].gn.epoch[E - 1]);
		nb_plot_set_xrange(p[2], v[0].gn.epoch[0], v[0].gn.epoch[E - 1]);
	}
	nb_plot_set_logy(p[0], true);
	nb_plot_set_logy(p[1], true);
	nb_plot_set_yrange(p[2], 0, 1);
	depth_accuracy_path(apath, sizeof apath, path);
	if (nb_plot_save_stack(p, 2, path) != NB_OK) {
		fprintf(stderr, "nabla train: --plot: %s\n", nb_plot_errmsg(p[0]));
		rc = 1;
	} else if (nb_plot_save(p[2], apath) != NB_OK) {
		fprintf(stderr, "nabla train: --plot: %s\n", nb_plot_errmsg(p[2]));
		rc = 1;
	} else if (!v[0].a.json) {
		fprintf(stderr, "nabla train: wrote the gradient norms to %s, the accuracy to %s\n",
		        cli_shown(path), cli_shown(apath));
	}
done:
	for (int k = 0; k < 3; k++)
		nb_plot_free(p[k]);
	free(x), free(y);
	return rc;
}

static void summary(const variant *v)
{
	fprintf(stderr, "\n%-14s %14s %14s %12s %14s\n", "variant", "||grad|| fc1", "||grad|| out",
	        "fc1 / out", "test accuracy");
	for (int k = 0; k < N_VARIANTS; k++) {
		const gn_log *g = &v[k].gn;
		const double *last = g->norm + (size_t)(g->n - 1) * (size_t)g->layers;
		double f = last[0], l = last[g->layers - 1];
		fprintf(stderr, "%-14s %14.3g %14.3g %12.3g %13.2f%%\n", v[k].a.model, f, l, f / l,
		        100 * v[k].tacc[v[k].n - 1]);
	}
	fprintf(stderr, "(means over the last epoch, %d)\n", v[0].gn.epoch[v[0].gn.n - 1]);
}

int compare_depth(const train_args *a)
{
	nb_dataset train = {0}, test = {0};
	if (load_zoo_data(a, nb_zoo_find(variants[0]), &train, &test) < 0)
		return 1;
	variant v[N_VARIANTS] = {0};
	int rc = 0;
	for (int k = 0; k < N_VARIANTS && !rc; k++) {
		v[k].a = *a;
		v[k].a.model = variants[k];
		if (!(v[k].tacc = calloc((size_t)a->epochs, sizeof *v[k].tacc))) {
			fprintf(stderr, "nabla train: --compare-depth: out of memory\n");
			rc = 1;
		} else {
			rc = train_variant(&v[k], &train, &test);
		}
	}
	if (!rc) {
		summary(v);
		if (a->plot)
			rc = write_plots(v, a->plot);
	}
	for (int k = 0; k < N_VARIANTS; k++) {
		gn_log_free(&v[k].gn);
		free(v[k].tacc);
	}
	nb_dataset_free(&train), nb_dataset_free(&test);
	return rc;
}
