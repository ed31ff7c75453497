/*
 * The lecture notes' small models for `nabla train`: perceptron gates with
 * the perceptron rule (SGD on 1/2 e^2 through a straight-through hardlim),
 * the 2-2-1 backprop example, and XOR.
 */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double gate_x[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};

/* ---- perceptron ---------------------------------------------------------- */

int build_perceptron(model *m, const train_args *a, const double w0[2], double b0)
{
	nb_graph *g = m->g = nb_graph_new(a->dtype);
	nb_graph_seed(g, a->seed);
	m->x = nb_input(g, "x", NB_SHAPE(1, 2));
	m->y = nb_input(g, "y", NB_SHAPE(1, 1));
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(2, 1), NB_ZEROS);
	nb_tensor *b = nb_param(g, "b", NB_SHAPE(1), NB_ZEROS);
	nb_feed_f64(w, w0, 2);
	nb_feed_f64(b, &b0, 1);
	m->out = nb_set_name(nb_hardlim_st(nb_add(nb_matmul(m->x, w), b)), "yhat");
	m->loss = nb_set_name(nb_half_sse(m->out, m->y), "loss");
	return nb_graph_status(g) == NB_OK ? 0 : -1;
}

/* x2 on the decision boundary w1 x1 + w2 x2 + b = 0 at x1 (NaN if w2 = 0) */
static double boundary_x2(const double w[2], double b, double x1)
{
	return w[1] != 0 ? -(w[0] * x1 + b) / w[1] : NAN;
}

/* The boundary as a line across the plot's x1 range [lo, hi] (vertical
 * when w2 = 0; nothing when w = 0). */
static void plot_boundary(nb_plot *p, const char *label, const double w[2], double b, double lo,
                          double hi)
{
	double x[2] = {lo, hi}, y[2] = {boundary_x2(w, b, lo), boundary_x2(w, b, hi)};
	if (w[1] == 0 && w[0] != 0)
		x[0] = x[1] = -b / w[0], y[0] = lo, y[1] = hi;
	if (w[0] != 0 || w[1] != 0)
		nb_plot_line(p, label, x, y, 2);
}

/* "label: w1 x1 + w2 x2 + b = 0" with the signs written out */
static void boundary_label(char *buf, size_t n, const char *what, const double w[2], double b)
{
	snprintf(buf, n, "%s: %.4g x1 %c %.4g x2 %c %.4g = 0", what, w[0], w[1] < 0 ? '-' : '+',
	         fabs(w[1]), b < 0 ? '-' : '+', fabs(b));
}

/* FILE.svg: the inputs (a marker per class) with the first and the last
 * decision boundary; FILE-errors.svg: the total error of every epoch
 * trained (first + 1 .. epochs; first > 0 after --resume).  1 after a
 * message when a file could not be written. */
static int write_gate_plots(const train_args *a, const char *gate, const double y[4],
                            const double w0[2], double b0, const double w[2], double b,
                            const double *errors, int first, int epochs)
{
	const double lo = -0.5, hi = 1.5;
	char title[128], label[96], start[32] = "initial";
	snprintf(title, sizeof title, "perceptron %s gate: decision boundary after %d epoch%s",
	         gate, epochs, epochs == 1 ? "" : "s");
	nb_plot *p = nb_plot_new(title, "x1", "x2");
	if (first)
		snprintf(start, sizeof start, "after epoch %d", first);
	boundary_label(label, sizeof label, start, w0, b0);
	plot_boundary(p, label, w0, b0, lo, hi);
	boundary_label(label, sizeof label, "learned", w, b);
	plot_boundary(p, label, w, b, lo, hi);
	for (int c = 0; c < 2; c++) {
		double px[4], py[4];
		size_t n = 0;
		for (int i = 0; i < 4; i++)
			if (y[i] == c)
				px[n] = gate_x[i][0], py[n++] = gate_x[i][1];
		nb_plot_scatter(p, c ? "output 1" : "output 0", px, py, n,
		                c ? NB_MARKER_TRIANGLE : NB_MARKER_CIRCLE);
	}
	nb_plot_set_xrange(p, lo, hi);
	nb_plot_set_yrange(p, lo, hi);
	nb_plot_set_size(p, 560, 520);
	nb_status st = nb_plot_save(p, a->plot);
	if (st != NB_OK)
		fprintf(stderr, "nabla train: --plot: %s\n", nb_plot_errmsg(p));
	nb_plot_free(p);
	if (st != NB_OK)
		return 1;

	/* FILE.svg -> FILE-errors.svg */
	size_t n = strlen(a->plot);
	if (n >= 4 && !strcmp(a->plot + n - 4, ".svg"))
		n -= 4;
	char path[1024];
	snprintf(path, sizeof path, "%.*s-errors.svg", (int)n, a->plot);
	int n_ep = epochs - first;
	double *ep = malloc(sizeof(double) * (size_t)n_ep);
	if (!ep) {
		fprintf(stderr, "nabla train: --plot: out of memory\n");
		return 1;
	}
	for (int e = 0; e < n_ep; e++)
		ep[e] = first + e + 1;
	snprintf(title, sizeof title, "perceptron %s gate: total error per epoch (lr %g)", gate,
	         a->lr);
	p = nb_plot_new(title, "epoch", "total error (misclassified inputs)");
	nb_plot_line(p, NULL, ep, errors, (size_t)n_ep);
	if (n_ep <= 30)
		nb_plot_scatter(p, NULL, ep, errors, (size_t)n_ep, NB_MARKER_CIRCLE);
	nb_plot_set_yrange(p, -0.2, 4.2);
	int rc = 0;
	if (nb_plot_save(p, path) == NB_OK) {
		fprintf(stderr,
		        "nabla train: wrote the decision boundary to %s and the errors to %s\n",
		        cli_shown(a->plot), cli_shown(path));
	} else {
		fprintf(stderr, "nabla train: --plot: %s\n", nb_plot_errmsg(p));
		rc = 1;
	}
	nb_plot_free(p);
	free(ep);
	return rc;
}

/* a model that could not be built: 1 after a message */
static int build_failed(model *m)
{
	if (!m->g) {
		fprintf(stderr, "nabla train: out of memory\n");
		return 1;
	}
	return report_graph_error(m->g);
}

/* The optimizer of the flags (SGD at the model's lr by default) and
 * --resume; 0, or the exit status after a message (the graph is freed). */
static int start_training(model *m, const train_args *a, int *first)
{
	*first = 0;
	if (!m->g) {
		fprintf(stderr, "nabla train: out of memory\n");
		return 1;
	}
	if (!(m->opt = make_optim(a, a->optim, m->g, m->loss)) ||
	    (m->out && nb_optim_keep(m->opt, m->out) != NB_OK))
		return report_graph_error(m->g);
	int rc = a->resume ? resume_checkpoint(m->g, m->opt, a, a->model, first, NULL) : 0;
	if (rc) {
		nb_graph_free(m->g);
		m->g = NULL;
	}
	return rc;
}

int write_trained(const model *m, const train_args *a)
{
	int rc = 0;
	if (a->save) {
		rc = save_checkpoint(m->g, m->opt, a, a->model, a->epochs, NULL);
		if (!rc && !a->json)
			fprintf(stderr, "nabla train: wrote the checkpoint to %s\n",
			        cli_shown(a->save));
	}
	if (!rc && a->export_path) {
		nb_tensor *out = m->pred ? m->pred : m->out;
		rc = cli_export_onnx("train", m->g, &out, 1, m->x, a->export_path, false, false,
		                     a->json ? NULL : stderr);
	}
	return rc;
}

/* after the last epoch: --save and --export, then --dot (the graph is freed) */
static int end_training(model *m, const train_args *a, int rc)
{
	if (!rc)
		rc = write_trained(m, a);
	if (rc) {
		nb_graph_free(m->g);
		m->g = NULL;
		return rc;
	}
	return finish_model(m, a);
}

static int train_gate(const train_args *a, const char *gate, const double y[4], const double w0[2],
                      double b0)
{
	model m = {0};
	int first, rc;
	if (build_perceptron(&m, a, w0, b0) < 0)
		return build_failed(&m);
	m.pred = m.out;
	m.out = NULL; /* the loss alone is read */
	if ((rc = start_training(&m, a, &first)))
		return rc;
	nb_tensor *w = nb_graph_find(m.g, "w"), *b = nb_graph_find(m.g, "b");
	double *errs = malloc(sizeof(double) * (size_t)(a->epochs - first));
	if (!errs) {
		fprintf(stderr, "nabla train: out of memory\n");
		nb_graph_free(m.g);
		return 1;
	}
	double t0 = nb__now(), w_start[2], b_start = nb_item(b), wv[2];
	nb_read_f64(w, w_start, 2);
	for (int e = first + 1; e <= a->epochs && !rc; e++) {
		int errors = 0;
		double loss = 0;
		for (int i = 0; i < 4 && !rc; i++) {
			nb_feed_f64(m.x, gate_x[i], 2);
			nb_feed_f64(m.y, &y[i], 1);
			if (nb_step(m.opt) != NB_OK) {
				fprintf(stderr, "nabla train: %s\n", nb_graph_errmsg(m.g));
				rc = 1;
			} else if (!loss_finite(a, nb_item(m.loss), e, nb_optim_steps(m.opt))) {
				rc = 1;
			} else {
				loss += nb_item(m.loss);
				errors += isfinite(nb_item(m.loss))
				              ? (int)lround(2 * nb_item(m.loss))
				              : 1;
			}
		}
		if (rc)
			break;
		errs[e - first - 1] = errors;
		nb_read_f64(w, wv, 2);
		epoch_report r = {.epoch = e,
		                  .epochs = a->epochs,
		                  .loss = loss,
		                  .accuracy = (4 - errors) / 4.0,
		                  .seconds = nb__now() - t0};
		snprintf(r.extra, sizeof r.extra, "\"errors\": %d, \"w\": [%g, %g], \"b\": %g",
		         errors, wv[0], wv[1], nb_item(b));
		print_epoch(a, &r);
	}
	if (!rc && a->plot)
		rc = write_gate_plots(a, gate, y, w_start, b_start, wv, nb_item(b), errs, first,
		                      a->epochs);
	free(errs);
	return end_training(&m, a, rc);
}

int train_perceptron_and(const train_args *a)
{
	return train_gate(a, "AND", (const double[]){0, 0, 0, 1}, (const double[]){1, 2}, 1);
}

int train_perceptron_or(const train_args *a)
{
	return train_gate(a, "OR", (const double[]){0, 1, 1, 1}, (const double[]){1, 1}, 0);
}

/* ---- XOR: 2-2-1 sigmoid MLP, U(-1, 1), full batch, MSE -------------------- */

int build_xor(model *m, const train_args *a)
{
	nb_graph *g = m->g = nb_graph_new(a->dtype);
	nb_graph_seed(g, a->seed);
	m->x = nb_input(g, "x", NB_SHAPE(4, 2));
	m->y = nb_input(g, "y", NB_SHAPE(4, 1));
	nb_dense_opts u = {
	    .custom_init = true, .w_init = NB_UNIFORM(-1, 1), .b_init = NB_UNIFORM(-1, 1)};
	nb_tensor *h = nb_sigmoid(nb_dense_layer(m->x, 2, "hidden", u));
	m->out = nb_set_name(nb_sigmoid(nb_dense_layer(h, 1, "out", u)), "yhat");
	m->loss = nb_set_name(nb_mse(m->out, m->y, NB_MEAN), "loss");
	nb_feed_f64(m->x, &gate_x[0][0], 8);
	nb_feed_f64(m->y, (const double[]){0, 1, 1, 0}, 4);
	return nb_graph_status(g) == NB_OK ? 0 : -1;
}

int train_xor(const train_args *a)
{
	model m = {0};
	int first, rc;
	if (build_xor(&m, a) < 0)
		return build_failed(&m);
	if ((rc = start_training(&m, a, &first)))
		return rc;
	double t0 = nb__now(), out[4];
	/* --json: every epoch; the lines for people: about 20, and the last one */
	int every = a->epochs >= 20 && !a->json ? a->epochs / 20 : 1;
	for (int e = first + 1; e <= a->epochs && !rc; e++) {
		if (nb_step(m.opt) != NB_OK) {
			fprintf(stderr, "nabla train: %s\n", nb_graph_errmsg(m.g));
			rc = 1;
			break;
		}
		if (!loss_finite(a, nb_item(m.loss), e, nb_optim_steps(m.opt))) {
			rc = 1;
			break;
		}
		if (e % every && e != a->epochs)
			continue;
		nb_read_f64(m.out, out, 4);
		int correct = 0;
		for (int i = 0; i < 4; i++)
			correct += (out[i] > 0.5) == (i == 1 || i == 2);
		epoch_report r = {.epoch = e,
		                  .epochs = a->epochs,
		                  .loss = nb_item(m.loss),
		                  .accuracy = correct / 4.0,
		                  .seconds = nb__now() - t0};
		snprintf(r.extra, sizeof r.extra, "\"outputs\": [%.4f, %.4f, %.4f, %.4f]", out[0],
		         out[1], out[2], out[3]);
		print_epoch(a, &r);
	}
	return end_training(&m, a, rc);
}

/* ---- the backprop example: 2-2-1 sigmoid net without biases --------------- */

int build_backprop_example(model *m, const train_args *a)
{
	nb_graph *g = m->g = nb_graph_new(a->dtype);
	m->x = nb_input(g, "x", NB_SHAPE(1, 2));
	m->y = nb_input(g, "d", NB_SHAPE(1, 1));
	/* [in, out]: column 0 feeds neuron 3, column 1 neuron 4 */
	nb_tensor *wh = nb_param(g, "w_hidden", NB_SHAPE(2, 2), NB_ZEROS);
	nb_tensor *wo = nb_param(g, "w_out", NB_SHAPE(2, 1), NB_ZEROS);
	nb_feed_f64(wh, (const double[]){0.1, 0.3, 0.4, 0.2}, 4); /* w31 w41 / w32 w42 */
	nb_feed_f64(wo, (const double[]){0.2, 0.4}, 2);           /* w53 w54 */
	nb_feed_f64(m->x, (const double[]){0.3, 0.5}, 2);
	nb_feed_f64(m->y, (const double[]){0.5}, 1);
	nb_tensor *y34 = nb_set_name(nb_sigmoid(nb_matmul(m->x, wh)), "y3_y4");
	m->out = nb_set_name(nb_sigmoid(nb_matmul(y34, wo)), "y5");
	m->loss = nb_set_name(nb_half_sse(m->out, m->y), "loss");
	return nb_graph_status(g) == NB_OK ? 0 : -1;
}

int train_backprop_example(const train_args *a)
{
	model m = {0};
	int first, rc;
	if (build_backprop_example(&m, a) < 0)
		return build_failed(&m);
	if ((rc = start_training(&m, a, &first)))
		return rc;
	nb_tensor *wh = nb_graph_find(m.g, "w_hidden"), *wo = nb_graph_find(m.g, "w_out");
	double t0 = nb__now();
	for (int e = first + 1; e <= a->epochs && !rc; e++) {
		if (nb_step(m.opt) != NB_OK) {
			fprintf(stderr, "nabla train: %s\n", nb_graph_errmsg(m.g));
			rc = 1;
			break;
		}
		if (!loss_finite(a, nb_item(m.loss), e, nb_optim_steps(m.opt))) {
			rc = 1;
			break;
		}
		double h[4], o[2];
		nb_read_f64(wh, h, 4);
		nb_read_f64(wo, o, 2);
		epoch_report r = {.epoch = e,
		                  .epochs = a->epochs,
		                  .loss = nb_item(m.loss),
		                  .accuracy = NAN,
		                  .seconds = nb__now() - t0};
		snprintf(r.extra, sizeof r.extra,
		         "\"y5\": %.10f, \"w31\": %.10f, \"w32\": %.10f, \"w41\": %.10f, "
		         "\"w42\": %.10f, \"w53\": %.10f, \"w54\": %.10f",
		         nb_item(m.out), h[0], h[2], h[1], h[3], o[0], o[1]);
		print_epoch(a, &r);
	}
	return end_training(&m, a, rc);
}
