/*
 * `nabla train --grad-norms`: the per-layer gradient statistics nb_fit
 * records (nabla/gradnorms.h) as JSON members, as a line for people and
 * as a plot: the gradient norm against depth (one line per epoch), against
 * epochs (one line per layer) and the update/weight ratio against depth.
 */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* a plot shows at most this many lines per panel (colours repeat after
 * ten); more epochs or layers are sampled evenly, first and last kept */
#define GN_MAX_LINES 10
/* lines of few points get markers */
#define GN_MARKERS_MAX 30

static void json_num(FILE *fp, double v)
{
	if (isfinite(v))
		fprintf(fp, "%.6g", v);
	else
		fputs("null", fp);
}

char *gn_json_members(const nb_grad_norms *n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	if (!fp)
		return NULL;
	for (int k = 0; k < 2; k++) {
		fputs(k ? ", \"update_ratios\": {" : "\"grad_norms\": {", fp);
		for (int l = 0; l < n->n_layers; l++) {
			const nb_layer_norms *r = &n->layers[l];
			fputs(l ? ", " : "", fp);
			cli_json_string(fp, r->name);
			fputs(": ", fp);
			json_num(fp, k ? r->update_ratio : r->grad_norm);
		}
		fputc('}', fp);
	}
	if (fclose(fp) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

void gn_print_text(const nb_grad_norms *n, const char *prefix)
{
	if (n->n_layers < 1)
		return;
	const nb_layer_norms *f = &n->layers[0], *l = &n->layers[n->n_layers - 1];
	printf("%sgrad norm %s %.3g -> %s %.3g (first/last %.3g, %d layers); update/weight %s "
	       "%.3g -> %s %.3g\n",
	       prefix, f->name, f->grad_norm, l->name, l->grad_norm, f->grad_norm / l->grad_norm,
	       n->n_layers, f->name, f->update_ratio, l->name, l->update_ratio);
	fflush(stdout);
}

void gn_print_window(const train_args *a, const nb_grad_norms *n)
{
	if (!a->json) {
		char prefix[64];
		snprintf(prefix, sizeof prefix, "  steps %lld-%lld  ", (long long)n->first_step,
		         (long long)n->last_step);
		gn_print_text(n, prefix);
		return;
	}
	char *m = gn_json_members(n);
	printf("{\"model\": ");
	cli_json_string(stdout, a->model);
	printf(", \"epoch\": %d, \"first_step\": %lld, \"last_step\": %lld, %s}\n", n->epoch,
	       (long long)n->first_step, (long long)n->last_step, m ? m : "\"grad_norms\": null");
	fflush(stdout);
	free(m);
}

void gn_log_free(gn_log *g)
{
	free(g->names), free(g->epoch), free(g->norm), free(g->ratio);
	*g = (gn_log){0};
}

int gn_log_add(gn_log *g, const nb_grad_norms *n)
{
	if (g->n == 0 && !g->names) {
		g->layers = n->n_layers;
		if (!(g->names = calloc((size_t)n->n_layers + 1, sizeof *g->names)))
			return -1;
		for (int l = 0; l < n->n_layers; l++)
			memcpy(g->names[l], n->layers[l].name, sizeof g->names[l]);
	}
	if (n->n_layers != g->layers)
		return -1;
	if (g->n == g->cap) {
		int cap = g->cap ? 2 * g->cap : 16;
		size_t L = (size_t)g->layers + 1;
		int *e = realloc(g->epoch, (size_t)cap * sizeof *e);
		if (e)
			g->epoch = e;
		double *nm = e ? realloc(g->norm, (size_t)cap * L * sizeof *nm) : NULL;
		if (nm)
			g->norm = nm;
		double *r = nm ? realloc(g->ratio, (size_t)cap * L * sizeof *r) : NULL;
		if (!r)
			return -1;
		g->ratio = r;
		g->cap = cap;
	}
	g->epoch[g->n] = n->epoch;
	for (int l = 0; l < g->layers; l++) {
		g->norm[(size_t)g->n * (size_t)g->layers + (size_t)l] = n->layers[l].grad_norm;
		g->ratio[(size_t)g->n * (size_t)g->layers + (size_t)l] = n->layers[l].update_ratio;
	}
	g->n++;
	return 0;
}

/* the k-th of m indices spread evenly over 0..n-1 (first and last kept) */
static int pick(int k, int m, int n)
{
	return m <= 1 ? n - 1 : (int)((double)k * (n - 1) / (m - 1) + 0.5);
}

/* one line per picked epoch of series s (norm or ratio) against depth */
static void by_depth(nb_plot *p, const gn_log *g, const double *s, double *x, double *y)
{
	int m = g->n < GN_MAX_LINES ? g->n : GN_MAX_LINES;
	for (int k = 0; k < m; k++) {
		int e = pick(k, m, g->n);
		char label[32];
		snprintf(label, sizeof label, "epoch %d", g->epoch[e]);
		for (int l = 0; l < g->layers; l++) {
			x[l] = l + 1;
			y[l] = s[(size_t)e * (size_t)g->layers + (size_t)l];
		}
		if (g->layers <= GN_MARKERS_MAX)
			nb_plot_line_markers(p, label, x, y, (size_t)g->layers,
			                     (nb_marker)(k % NB_MARKER_COUNT));
		else
			nb_plot_line(p, label, x, y, (size_t)g->layers);
	}
}

int gn_write_plot(const gn_log *g, const char *path, const char *model)
{
	if (g->n < 1 || g->layers < 1) {
		fprintf(stderr,
		        "nabla train: --grad-norms: no epoch was trained, nothing to plot\n");
		return 1;
	}
	size_t cap = (size_t)(g->layers > g->n ? g->layers : g->n);
	double *x = malloc(cap * sizeof *x), *y = malloc(cap * sizeof *y);
	char title[3][192], xlabel[320];
	snprintf(title[0], sizeof title[0], "%s: gradient norm by depth (mean over each epoch)",
	         model);
	snprintf(title[1], sizeof title[1], "gradient norm by epoch, per layer");
	snprintf(title[2], sizeof title[2], "update / weight norm ratio by depth");
	snprintf(xlabel, sizeof xlabel, "layer (1 = %s, %d = %s)", g->names[0], g->layers,
	         g->names[g->layers - 1]);
	nb_plot *p[3] = {nb_plot_new(title[0], xlabel, "||grad||"),
	                 nb_plot_new(title[1], "epoch", "||grad||"),
	                 nb_plot_new(title[2], xlabel, "||update|| / ||w||")};
	int rc = 0;
	if (!x || !y || !p[0] || !p[1] || !p[2]) {
		fprintf(stderr, "nabla train: --grad-norms: out of memory\n");
		rc = 1;
		goto done;
	}
	by_depth(p[0], g, g->norm, x, y);
	by_depth(p[2], g, g->ratio, x, y);
	int m = g->layers < GN_MAX_LINES ? g->layers : GN_MAX_LINES;
	for (int k = 0; k < m; k++) {
		int l = pick(k, m, g->layers);
		for (int e = 0; e < g->n; e++) {
			x[e] = g->epoch[e];
			y[e] = g->norm[(size_t)e * (size_t)g->layers + (size_t)l];
		}
		if (g->n <= GN_MARKERS_MAX)
			nb_plot_line_markers(p[1], g->names[l], x, y, (size_t)g->n,
			                     (nb_marker)(k % NB_MARKER_COUNT));
		else
			nb_plot_line(p[1], g->names[l], x, y, (size_t)g->n);
	}
	for (int k = 0; k < 3; k++) {
		nb_plot_set_logy(p[k], true);
		nb_plot_set_xinteger(p[k], true);
		nb_plot_set_size(p[k], 640, 320);
	}
	if (g->layers > 1) { /* the depth axis from the first layer to the last */
		nb_plot_set_xrange(p[0], 1, g->layers);
		nb_plot_set_xrange(p[2], 1, g->layers);
	}
	if (g->epoch[g->n - 1] > g->epoch[0])
		nb_plot_set_xrange(p[1], g->epoch[0], g->epoch[g->n - 1]);
	if (nb_plot_save_stack(p, 3, path) == NB_OK) {
		fprintf(stderr, "nabla train: wrote the gradient norms to %s\n", cli_shown(path));
	} else {
		fprintf(stderr, "nabla train: --grad-norms: %s\n", nb_plot_errmsg(p[0]));
		rc = 1;
	}
done:
	for (int k = 0; k < 3; k++)
		nb_plot_free(p[k]);
	free(x), free(y);
	return rc;
}
