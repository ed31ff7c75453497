/*
 * nabla predict — a trained zoo model on some test images: the predicted
 * class and its probability for each, against the true class, and a grid
 * of the images with both (the wrong ones in red).
 */
#include "classify.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_IMAGES 16

static void usage(FILE *fp)
{
	fprintf(
	    fp,
	    "usage: nabla predict --model NAME (--checkpoint FILE | --init-from FILE)\n"
	    "                     [--images N] [--first K | --index I,J,...] [--grid FILE.svg|.png]\n"
	    "                     [options]\n\n"
	    "Classifies test images in eval mode and prints, for each, its index in the test\n"
	    "set, the predicted class with its probability, and the true class; the wrong\n"
	    "ones are marked.\n\n"
	    "options:\n");
	classify_usage(fp);
	fprintf(fp,
	        "  --images N         how many images, from --first (1 to %d, default %d)\n"
	        "  --first K          the first image's index in the test set (default 0)\n"
	        "  --index I,J,...    these images instead (indices in the test set, 0-based;\n"
	        "                     at most %d)\n"
	        "  --grid FILE        the images in a grid, each captioned with the prediction\n"
	        "                     and the truth, the wrong ones framed in red: an SVG picture\n"
	        "                     (.svg), or PNG (.png, drawn by Graphviz's libgvc)\n"
	        "  --help             show this help\n\n"
	        "models:\n",
	        NB_PLOT_MAX_IMAGES, DEFAULT_IMAGES, NB_PLOT_MAX_IMAGES);
	for (int i = 0; nb_zoo(i); i++)
		fprintf(fp, "  %-20s %s\n", nb_zoo(i)->name, nb_zoo(i)->summary);
}

static const char *const options[] = {"--model",      "--checkpoint", "--init-from", "--data",
                                      "--test-limit", "--classes",    "--batch",     "--threads",
                                      "--json",       "--images",     "--first",     "--index",
                                      "--grid",       "--help",       NULL};

/* whether Graphviz renders PNG here (the grid's PNG goes through it) */
static bool have_png(void)
{
	const char *f = nb_graph_render_formats();
	size_t n = strlen(f);
	for (const char *p = f; (p = strstr(p, "png")); p += 3)
		if ((p == f || p[-1] == ' ') && (p + 3 == f + n || p[3] == ' '))
			return true;
	return false;
}

/* --grid's name: .svg, or .png where Graphviz renders it */
static bool grid_name(const char *v)
{
	size_t n = strlen(v);
	bool svg = n > 4 && !strcmp(v + n - 4, ".svg"), png = n > 4 && !strcmp(v + n - 4, ".png");
	if (svg || (png && have_png()))
		return true;
	if (png)
		fprintf(stderr,
		        "nabla predict: --grid %s: PNG needs Graphviz's libgvc with its cairo "
		        "plugin, which this nabla lacks; write .svg\n",
		        v);
	else
		fprintf(stderr,
		        "nabla predict: --grid %s: the file name must end in .svg (an SVG picture) "
		        "or .png\n",
		        v);
	return false;
}

/* "I,J,K": each a whole integer from 0 */
static long *parse_index(const char *v, long *n)
{
	long cap = 1;
	for (const char *p = v; *p; p++)
		cap += *p == ',';
	if (cap > NB_PLOT_MAX_IMAGES) {
		fprintf(stderr, "nabla predict: --index lists at most %d images, got %ld\n",
		        NB_PLOT_MAX_IMAGES, cap);
		return NULL;
	}
	long *idx = malloc(sizeof *idx * (size_t)cap);
	char item[32];
	*n = 0;
	for (const char *p = v; idx;) {
		size_t k = strcspn(p, ",");
		snprintf(item, sizeof item, "%.*s", k < sizeof item ? (int)k : (int)sizeof item - 1,
		         p);
		if (k >= sizeof item ||
		    !cli_parse_long("predict", "--index", item, 0, INT32_MAX, &idx[(*n)++])) {
			if (k >= sizeof item)
				fprintf(
				    stderr,
				    "nabla predict: --index must be an integer from 0, got '%.20s...'\n",
				    p);
			free(idx);
			return NULL;
		}
		if (!p[k])
			break;
		p += k + 1;
	}
	if (!idx)
		fprintf(stderr, "nabla predict: out of memory\n");
	return idx;
}

typedef struct picks {
	long n, first;
	long *index; /* NULL: first .. first + n - 1 */
} picks;

static long pick(const picks *p, long i)
{
	return p->index ? p->index[i] : p->first + i;
}

/* every image within the test set of n images: -1, or 2 after a message */
static int check_range(const picks *p, int64_t n, bool first_given)
{
	for (long i = 0; i < p->n; i++)
		if (pick(p, i) >= n) {
			if (p->index)
				fprintf(
				    stderr,
				    "nabla predict: --index %ld is beyond the test set, which has %lld "
				    "images (0 to %lld)\n",
				    pick(p, i), (long long)n, (long long)n - 1);
			else {
				char first[48] = "";
				if (first_given)
					snprintf(first, sizeof first, "--first %ld ", p->first);
				fprintf(stderr,
				        "nabla predict: %s--images %ld reach image %ld, beyond the "
				        "test set, which has %lld images (0 to %lld)\n",
				        first, p->n, p->first + p->n - 1, (long long)n,
				        (long long)n - 1);
			}
			return 2;
		}
	return -1;
}

/* the probability the model gives its prediction */
static double prob_of(const classify_ctx *c, const float *probs, long i, int id)
{
	if (nb_model_loss_kind(c->m) == NB_LOSS_BCE_LOGITS) /* one sigmoid output: P(class 1) */
		return id ? probs[i] : 1 - probs[i];
	return probs[i * nb_model_num_classes(c->m) + id];
}

static int write_grid(const classify_args *a, const classify_ctx *c, const picks *p,
                      const int32_t *ids, const float *probs, const char *path)
{
	int64_t sample = nb_dataset_sample_size(&c->test);
	float *x = malloc(sizeof *x * (size_t)(p->n * sample));
	char **cap = calloc((size_t)p->n, sizeof *cap);
	bool *wrong = calloc((size_t)p->n, sizeof *wrong);
	int rc = 0;
	for (long i = 0; x && cap && wrong && i < p->n; i++) {
		long s = pick(p, i);
		int t = c->test.y[s];
		memcpy(x + i * sample, c->test.x + s * sample, sizeof *x * (size_t)sample);
		wrong[i] = ids[i] != t;
		if (!(cap[i] = malloc(128)))
			break;
		snprintf(cap[i], 128, "#%ld: %s %.0f%%\ntrue: %s", s, c->names[ids[i]],
		         100 * prob_of(c, probs, i, ids[i]), c->names[t]);
	}
	bool ok = x && cap && wrong;
	for (long i = 0; ok && i < p->n; i++)
		ok = cap[i] != NULL;
	char title[160], err[768];
	snprintf(title, sizeof title, "%s: predicted class and probability (wrong ones in red)",
	         a->model);
	nb_image_grid g = {.n = p->n,
	                   .c = c->test.c,
	                   .h = c->test.h,
	                   .w = c->test.w,
	                   .x = x,
	                   .lo = 0,
	                   .hi = c->standardized ? 0 : 1, /* standardised: their own range */
	                   .captions = (const char *const *)cap,
	                   .wrong = wrong,
	                   .title = title};
	if (!ok) {
		fprintf(stderr, "nabla predict: out of memory\n");
		rc = 1;
	} else if (nb_plot_image_grid_save(path, &g, err, sizeof err) != NB_OK) {
		fprintf(stderr, "nabla predict: --grid: %s\n", err);
		rc = 1;
	}
	for (long i = 0; cap && i < p->n; i++)
		free(cap[i]);
	free(cap);
	free(wrong);
	free(x);
	return rc;
}

static void print_results(const classify_args *a, const classify_ctx *c, const picks *p,
                          const int32_t *ids, const float *probs)
{
	long right = 0;
	if (!a->json)
		printf("%5s  %-18s %7s  %-18s\n", "index", "predicted", "p", "true");
	for (long i = 0; i < p->n; i++) {
		long s = pick(p, i);
		int t = c->test.y[s], id = ids[i];
		double pr = prob_of(c, probs, i, id);
		right += id == t;
		if (a->json) {
			printf("{\"model\": ");
			cli_json_string(stdout, a->model);
			printf(", \"index\": %ld, \"predicted\": %d, \"class\": ", s, id);
			cli_json_string(stdout, c->names[id]);
			printf(", \"probability\": %.6f, \"true\": %d, \"true_class\": ", pr, t);
			cli_json_string(stdout, c->names[t]);
			printf(", \"correct\": %s}\n", id == t ? "true" : "false");
		} else {
			printf("%5ld  %d %-16.16s %7.4f  %d %-16.16s%s\n", s, id, c->names[id], pr,
			       t, c->names[t], id == t ? "" : "  wrong");
		}
	}
	if (!a->json)
		printf("%ld of %ld right\n", right, p->n);
}

int cmd_predict(int argc, char **argv)
{
	classify_args a = {.cmd = "predict", .classes = {2, 4}};
	const char *grid = NULL, *index = NULL;
	picks p = {.n = DEFAULT_IMAGES};
	bool images_given = false, first_given = false;
	for (int i = 1; i < argc; i++) {
		const char *v;
		int k;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if ((v = cli_opt_value(argc, argv, &i, "--images"))) {
			if (!cli_parse_long("predict", "--images", v, 1, NB_PLOT_MAX_IMAGES, &p.n))
				return 2;
			images_given = true;
		} else if ((v = cli_opt_value(argc, argv, &i, "--first"))) {
			if (!cli_parse_long("predict", "--first", v, 0, INT32_MAX, &p.first))
				return 2;
			first_given = true;
		} else if ((v = cli_opt_value(argc, argv, &i, "--index"))) {
			index = v;
		} else if ((v = cli_opt_value(argc, argv, &i, "--grid"))) {
			if (!grid_name(v))
				return 2;
			grid = v;
		} else if ((k = classify_option(argc, argv, &i, &a)) != 0) {
			if (k < 0)
				return 2;
		} else if (cli_missing_value) {
			return 2;
		} else {
			cli_unknown_option("predict", argv[i], options);
			return 2;
		}
	}
	if (index && (images_given || first_given)) {
		fprintf(stderr, "nabla predict: --index names the images; leave out %s\n",
		        images_given ? "--images" : "--first");
		return 2;
	}
	if (index && !(p.index = parse_index(index, &p.n)))
		return 2;
	classify_ctx c;
	int rc =
	    classify_setup(&a, &c, (const char *const[]){"--grid"}, (const char *const[]){grid}, 1);
	if (!rc && (rc = check_range(&p, c.test.n, first_given)) < 0)
		rc = 0;
	int64_t sample = rc ? 0 : nb_dataset_sample_size(&c.test);
	int K = rc ? 1 : nb_model_probs(c.m) ? (int)nb_tensor_shape(nb_model_probs(c.m)).d[1] : 1;
	float *x = rc ? NULL : malloc(sizeof *x * (size_t)(p.n * sample));
	float *probs = rc ? NULL : malloc(sizeof *probs * (size_t)(p.n * K));
	int32_t *ids = rc ? NULL : malloc(sizeof *ids * (size_t)p.n);
	if (!rc && (!x || !probs || !ids)) {
		fprintf(stderr, "nabla predict: out of memory\n");
		rc = 1;
	}
	for (long i = 0; !rc && i < p.n; i++)
		memcpy(x + i * sample, c.test.x + pick(&p, i) * sample, sizeof *x * (size_t)sample);
	if (!rc && nb_predict(c.m, x, p.n, ids, probs) != NB_OK) {
		fprintf(stderr, "nabla predict: %s\n", nb_graph_errmsg(c.g));
		rc = 1;
	}
	/* the picture first: the results are printed only when all went well */
	if (!rc && grid)
		rc = write_grid(&a, &c, &p, ids, probs, grid);
	if (!rc)
		print_results(&a, &c, &p, ids, probs);
	if (!rc && grid && !a.json)
		fprintf(stderr, "nabla predict: wrote the image grid to %s\n", cli_shown(grid));
	free(x);
	free(probs);
	free(ids);
	free(p.index);
	classify_free(&c);
	return rc;
}
