/*
 * The notes' curve-fitting experiment for `nabla train --model curve-fit`:
 * a dense network (tanh hidden layers, linear output, as the notes' Keras
 * model) fitted to y = 1 + sin(2 pi x) on [0, 1], full batch, with the
 * error on a dense grid after 500, 1000 and 15 000 epochs and a plot of the
 * fit against the target.
 */
#include "train.h"

#include <math.h>
#include <stdlib.h>

enum {
	FIT_SAMPLES = 64, /* training points, evenly spaced on [0, 1] */
	FIT_GRID = 1001,  /* evaluation grid, step 0.001 */
	FIT_LAYERS = 3,   /* 1-16-16-1 */
};
static const int64_t fit_units[FIT_LAYERS + 1] = {1, 16, 16, 1};

static double target(double x)
{
	return 1 + sin(2 * M_PI * x);
}

/* i-th of n points evenly spaced on [0, 1], ends included */
static double grid_point(int i, int n)
{
	return (double)i / (n - 1);
}

/* The network applied to x [N, 1] with the weights w and biases b. */
static nb_tensor *fit_net(nb_tensor *x, nb_tensor *const *w, nb_tensor *const *b)
{
	nb_tensor *h = x;
	for (int l = 0; l < FIT_LAYERS; l++) {
		h = nb_add(nb_matmul_t(h, w[l], false, true), b[l]);
		if (l < FIT_LAYERS - 1)
			h = nb_tanh(h);
	}
	return h;
}

typedef struct fit_model {
	model m;
	nb_tensor *grid_out, *grid_mse;
	nb_program *grid; /* computes grid_out and grid_mse */
} fit_model;

/* Training graph on the samples plus the same network on the grid (for
 * the error and the plot).  Keras' Dense defaults: Glorot-uniform weights,
 * zero biases. */
static int build_fit(fit_model *f, const train_args *a)
{
	nb_graph *g = f->m.g = nb_graph_new(a->dtype);
	if (!g)
		return -1;
	nb_graph_seed(g, a->seed);
	nb_tensor *w[FIT_LAYERS], *b[FIT_LAYERS];
	for (int l = 0; l < FIT_LAYERS; l++) {
		char name[32];
		snprintf(name, sizeof name, "dense%d.w", l + 1);
		w[l] = nb_param(g, name, NB_SHAPE(fit_units[l + 1], fit_units[l]),
		                (nb_init){.kind = NB_INIT_XAVIER_UNIFORM});
		snprintf(name, sizeof name, "dense%d.b", l + 1);
		b[l] = nb_param(g, name, NB_SHAPE(fit_units[l + 1]), NB_ZEROS);
	}
	/* the grid's net first: a layer's output shape (nabla summary) is that
	 * of the last node reading its parameters, the training net's */
	double xs[FIT_GRID], ys[FIT_GRID];
	for (int i = 0; i < FIT_GRID; i++)
		ys[i] = target(xs[i] = grid_point(i, FIT_GRID));
	nb_tensor *grid_x = nb_constant(g, "grid_x", NB_SHAPE(FIT_GRID, 1), xs);
	nb_tensor *grid_y = nb_constant(g, "grid_y", NB_SHAPE(FIT_GRID, 1), ys);
	f->grid_out = nb_set_name(fit_net(grid_x, w, b), "grid_yhat");
	f->grid_mse = nb_set_name(nb_mse(f->grid_out, grid_y, NB_MEAN), "grid_mse");

	for (int i = 0; i < FIT_SAMPLES; i++)
		ys[i] = target(xs[i] = grid_point(i, FIT_SAMPLES));
	f->m.x = nb_input(g, "x", NB_SHAPE(FIT_SAMPLES, 1));
	f->m.y = nb_input(g, "y", NB_SHAPE(FIT_SAMPLES, 1));
	nb_feed_f64(f->m.x, xs, FIT_SAMPLES);
	nb_feed_f64(f->m.y, ys, FIT_SAMPLES);
	f->m.out = nb_set_name(fit_net(f->m.x, w, b), "yhat");
	f->m.loss = nb_set_name(nb_mse(f->m.out, f->m.y, NB_MEAN), "loss");
	return nb_graph_status(g) == NB_OK ? 0 : -1;
}

int build_curve_fit(model *m, const train_args *a)
{
	fit_model f = {0};
	int rc = build_fit(&f, a);
	*m = f.m;
	return rc;
}

/* the fits at the reported checkpoints (the notes' 500, 1000 and the last
 * epoch) */
typedef struct fit_snapshots {
	int n, epoch[3];
	double mse[3];
	double y[3][FIT_GRID];
} fit_snapshots;

/* every PLOT_STEP-th grid point is drawn (201 points: smooth, and a small
 * file) */
#define PLOT_STEP 5
#define PLOT_N ((FIT_GRID - 1) / PLOT_STEP + 1)

static int write_fit_plot(const fit_model *f, const train_args *a, const fit_snapshots *s)
{
	double gx[PLOT_N], gt[PLOT_N], gy[PLOT_N], sx[FIT_SAMPLES], sy[FIT_SAMPLES];
	for (int i = 0; i < PLOT_N; i++)
		gt[i] = target(gx[i] = grid_point(i * PLOT_STEP, FIT_GRID));
	nb_read_f64(f->m.x, sx, FIT_SAMPLES);
	nb_read_f64(f->m.y, sy, FIT_SAMPLES);
	char title[160], label[96];
	snprintf(title, sizeof title, "curve-fit: 1-16-16-1 tanh network, %s lr %g",
	         nb_optim_kind_name(a->optim), a->lr);
	nb_plot *p = nb_plot_new(title, "x", "y");
	nb_plot_line(p, "target 1 + sin(2 pi x)", gx, gt, PLOT_N);
	for (int k = 0; k < s->n; k++) {
		for (int i = 0; i < PLOT_N; i++)
			gy[i] = s->y[k][i * PLOT_STEP];
		snprintf(label, sizeof label, "after %d epochs (grid MSE %.2g)", s->epoch[k],
		         s->mse[k]);
		nb_plot_line(p, label, gx, gy, PLOT_N);
	}
	nb_plot_scatter(p, "training points", sx, sy, FIT_SAMPLES, NB_MARKER_CIRCLE);
	nb_plot_set_xrange(p, 0, 1);
	nb_plot_set_yrange(p, -0.5, 2.5);
	int rc = 0;
	if (nb_plot_save(p, a->plot) == NB_OK) {
		fprintf(stderr, "nabla train: wrote the fitted curves to %s\n", cli_shown(a->plot));
	} else {
		fprintf(stderr, "nabla train: --plot: %s\n", nb_plot_errmsg(p));
		rc = 1;
	}
	nb_plot_free(p);
	return rc;
}

int train_curve_fit(const train_args *a)
{
	fit_model f = {0};
	if (build_fit(&f, a) < 0 ||
	    !(f.grid = nb_compile(f.m.g, (nb_tensor *[]){f.grid_out, f.grid_mse}, 2)) ||
	    !(f.m.opt = make_optim(a, a->optim, f.m.g, f.m.loss))) {
		if (!f.m.g)
			fprintf(stderr, "nabla train: out of memory\n");
		return f.m.g ? report_graph_error(f.m.g) : 1;
	}
	int first = 0,
	    rc = a->resume ? resume_checkpoint(f.m.g, f.m.opt, a, a->model, &first, NULL) : 0;
	if (rc) {
		nb_graph_free(f.m.g);
		return rc;
	}
	/* the grid's error: every tenth of the run, and the checkpoints: the
	 * notes' 500, 1000 and the last epoch.  Lines for people on those
	 * epochs; --json: an object every epoch ("grid_mse" null between) */
	int every = a->epochs >= 10 ? a->epochs / 10 : 1;
	fit_snapshots *snap = calloc(1, sizeof *snap);
	if (!snap) {
		fprintf(stderr, "nabla train: out of memory\n");
		nb_graph_free(f.m.g);
		return 1;
	}
	double t0 = nb__now();
	for (int e = first + 1; e <= a->epochs; e++) {
		if (nb_step(f.m.opt) != NB_OK) {
			fprintf(stderr, "nabla train: %s\n", nb_graph_errmsg(f.m.g));
			rc = 1;
			break;
		}
		double loss = nb_item(f.m.loss);
		if (!loss_finite(a, loss, e, nb_optim_steps(f.m.opt))) {
			rc = 1;
			break;
		}
		bool checkpoint = e == 500 || e == 1000 || e == a->epochs;
		bool grid = !(e % every && e != first + 1 && !checkpoint);
		if (!grid && !a->json)
			continue;
		if (grid && nb_run(f.grid) != NB_OK) {
			fprintf(stderr, "nabla train: %s\n", nb_graph_errmsg(f.m.g));
			rc = 1;
			break;
		}
		double gm = grid ? nb_item(f.grid_mse) : NAN;
		if (checkpoint) {
			snap->epoch[snap->n] = e;
			snap->mse[snap->n] = gm;
			nb_read_f64(f.grid_out, snap->y[snap->n++], FIT_GRID);
		}
		epoch_report r = {.epoch = e,
		                  .epochs = a->epochs,
		                  .loss = loss,
		                  .accuracy = NAN,
		                  .seconds = nb__now() - t0};
		if (!a->json)
			snprintf(r.extra, sizeof r.extra, "grid MSE %.3g", gm);
		else if (grid && isfinite(gm))
			snprintf(r.extra, sizeof r.extra, "\"grid_mse\": %.9g", gm);
		else /* JSON has no NaN */
			snprintf(r.extra, sizeof r.extra, "\"grid_mse\": null");
		print_epoch(a, &r);
	}
	if (!rc && !a->json) {
		fprintf(stderr, "nabla train: MSE on %d grid points after", FIT_GRID);
		for (int k = 0; k < snap->n; k++)
			fprintf(stderr, "%s %d epochs %.3g", k ? "," : "", snap->epoch[k],
			        snap->mse[k]);
		fprintf(stderr, "\n");
	}
	if (!rc)
		rc = write_trained(&f.m, a);
	if (!rc && a->plot)
		rc = write_fit_plot(&f, a, snap);
	free(snap);
	if (rc) {
		nb_graph_free(f.m.g);
		return rc;
	}
	return finish_model(&f.m, a);
}
