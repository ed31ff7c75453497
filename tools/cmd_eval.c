/*
 * nabla eval — a trained zoo model on its test set: loss, accuracy and the
 * confusion matrix (text, JSON, and an SVG heat map).
 */
#include "classify.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *fp)
{
	fprintf(fp, "usage: nabla eval --model NAME (--checkpoint FILE | --init-from FILE)\n"
	            "                  [--confusion FILE.svg] [options]\n\n"
	            "Runs the model on its test set in eval mode (batch normalisation with its\n"
	            "running statistics, no dropout) and prints the mean loss, the accuracy and\n"
	            "the confusion matrix (rows: the true class, columns: the predicted one).\n\n"
	            "options:\n");
	classify_usage(fp);
	fprintf(fp, "  --confusion FILE   the confusion matrix as an SVG heat map (.svg)\n"
	            "  --help             show this help\n\n"
	            "models:\n");
	for (int i = 0; nb_zoo(i); i++)
		fprintf(fp, "  %-20s %s\n", nb_zoo(i)->name, nb_zoo(i)->summary);
}

static const char *const options[] = {"--model",      "--checkpoint", "--init-from", "--data",
                                      "--test-limit", "--classes",    "--batch",     "--threads",
                                      "--json",       "--confusion",  "--help",      NULL};

/* an .svg file name (the only format written) */
static bool svg_name(const char *cmd, const char *flag, const char *path)
{
	size_t n = strlen(path);
	if (n > 4 && !strcmp(path + n - 4, ".svg"))
		return true;
	fprintf(stderr, "nabla %s: %s %s: the file name must end in .svg (an SVG picture)\n", cmd,
	        flag, path);
	return false;
}

static void print_text(const classify_ctx *c, const int64_t *cm, double loss, int64_t correct)
{
	int K = nb_model_num_classes(c->m);
	int64_t n = c->test.n;
	printf("loss %.6f  accuracy %.2f%% (%lld of %lld)\n", loss,
	       100.0 * (double)correct / (double)n, (long long)correct, (long long)n);
	printf("confusion matrix (rows: true class, columns: predicted class)\n");
	printf("%17s", "");
	for (int j = 0; j < K; j++)
		printf(" %5d", j);
	printf("  correct\n");
	for (int i = 0; i < K; i++) {
		int64_t row = 0;
		printf("%2d %-14.14s", i, c->names[i]);
		for (int j = 0; j < K; j++) {
			printf(" %5lld", (long long)cm[i * K + j]);
			row += cm[i * K + j];
		}
		if (row)
			printf("  %5.1f%%\n", 100.0 * (double)cm[i * K + i] / (double)row);
		else
			printf("      -\n");
	}
}

static void print_json(const classify_args *a, const classify_ctx *c, const int64_t *cm,
                       double loss, int64_t correct)
{
	int K = nb_model_num_classes(c->m);
	printf("{\"model\": ");
	cli_json_string(stdout, a->model);
	printf(", \"samples\": %lld, \"loss\": %.9g, \"accuracy\": %.9g, \"correct\": %lld, "
	       "\"classes\": [",
	       (long long)c->test.n, loss, (double)correct / (double)c->test.n, (long long)correct);
	for (int i = 0; i < K; i++) {
		printf(i ? ", " : "");
		cli_json_string(stdout, c->names[i]);
	}
	printf("], \"confusion\": [");
	for (int i = 0; i < K; i++) {
		printf(i ? ", [" : "[");
		for (int j = 0; j < K; j++)
			printf(j ? ", %lld" : "%lld", (long long)cm[i * K + j]);
		printf("]");
	}
	printf("]}\n");
}

int cmd_eval(int argc, char **argv)
{
	classify_args a = {.cmd = "eval", .classes = {2, 4}};
	const char *confusion = NULL;
	for (int i = 1; i < argc; i++) {
		const char *v;
		int k;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if ((v = cli_opt_value(argc, argv, &i, "--confusion"))) {
			if (!svg_name("eval", "--confusion", v))
				return 2;
			confusion = v;
		} else if ((k = classify_option(argc, argv, &i, &a)) != 0) {
			if (k < 0)
				return 2;
		} else if (cli_missing_value) {
			return 2;
		} else {
			cli_unknown_option("eval", argv[i], options);
			return 2;
		}
	}
	classify_ctx c;
	int rc = classify_setup(&a, &c, (const char *const[]){"--confusion"},
	                        (const char *const[]){confusion}, 1);
	if (rc)
		return rc;
	int K = nb_model_num_classes(c.m);
	int64_t n = c.test.n, correct = 0;
	int64_t *cm = calloc((size_t)K * (size_t)K, sizeof *cm);
	int32_t *ids = malloc(sizeof *ids * (size_t)n);
	double loss = 0, acc = 0;
	if (!cm || !ids) {
		fprintf(stderr, "nabla eval: out of memory\n");
		rc = 1;
	} else if (nb_evaluate(c.m, &c.test, &loss, &acc) != NB_OK ||
	           nb_predict(c.m, c.test.x, n, ids, NULL) != NB_OK) {
		fprintf(stderr, "nabla eval: %s\n", nb_graph_errmsg(c.g));
		rc = 1;
	}
	for (int64_t s = 0; !rc && s < n; s++) {
		cm[c.test.y[s] * K + ids[s]]++;
		correct += c.test.y[s] == ids[s];
	}
	/* the picture first: the results are printed only when all went well */
	char err[768], title[128];
	snprintf(title, sizeof title, "%s: confusion matrix, %lld test samples, accuracy %.2f%%",
	         a.model, (long long)n, n ? 100.0 * (double)correct / (double)n : 0);
	if (!rc && confusion &&
	    nb_plot_confusion_save(confusion, cm, K, c.names, title, err, sizeof err) != NB_OK) {
		fprintf(stderr, "nabla eval: --confusion: %s\n", err);
		rc = 1;
	}
	if (!rc && !a.json)
		fprintf(stderr, "nabla eval: %s on %lld test samples, weights from %s\n", a.model,
		        (long long)n, a.checkpoint ? a.checkpoint : a.init_from);
	if (!rc && a.json)
		print_json(&a, &c, cm, loss, correct);
	else if (!rc)
		print_text(&c, cm, loss, correct);
	if (!rc && confusion && !a.json)
		fprintf(stderr, "nabla eval: wrote the confusion matrix to %s\n",
		        cli_shown(confusion));
	free(cm);
	free(ids);
	classify_free(&c);
	return rc;
}
