/*
 * nabla summary — a model's layers: output shape and parameter count of
 * each, and the totals (nb_summary_print), or the same as JSON.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *fp)
{
	fprintf(fp, "usage: nabla summary --model NAME [--batch N] [--json] [--dtype f32|f64]\n\n"
	            "Builds a model and prints one row per layer (a layer is the parameters and\n"
	            "running statistics sharing a name prefix: fc1.w and fc1.b are fc1) with its\n"
	            "output shape and parameter count, then the totals.\n\n"
	            "options:\n"
	            "  --model NAME  the model (list below)\n"
	            "  --batch N     batch size of the shapes shown (zoo models; default 1),\n"
	            "                1 to 1048576\n"
	            "  --json        one JSON object instead of the table\n"
	            "  --dtype T     element type of the graph (default f32)\n"
	            "  --help        show this help\n\n"
	            "models:\n");
	cli_model_list(fp, false);
}

static void print_json(const cli_model *m, const char *name)
{
	int n = nb_summary(m->g, NULL, 0);
	nb_layer_info *rows = calloc((size_t)(n ? n : 1), sizeof *rows);
	if (!rows) {
		fprintf(stderr, "nabla summary: out of memory\n");
		return;
	}
	nb_summary(m->g, rows, n);
	int64_t params = 0, state = 0;
	printf("{\"model\": ");
	cli_json_string(stdout, name);
	printf(", \"batch\": %lld, \"dtype\": \"%s\", \"layers\": [", (long long)m->batch,
	       nb_dtype_name(nb_graph_dtype(m->g)));
	for (int i = 0; i < n; i++) {
		printf("%s\n  {\"name\": ", i ? "," : "");
		cli_json_string(stdout, rows[i].name);
		printf(", \"output\": ");
		if (rows[i].output.ndim < 0) {
			printf("null");
		} else {
			printf("[");
			for (int d = 0; d < rows[i].output.ndim; d++)
				printf("%s%lld", d ? ", " : "", (long long)rows[i].output.d[d]);
			printf("]");
		}
		printf(", \"params\": %lld, \"state\": %lld}", (long long)rows[i].params,
		       (long long)rows[i].state);
		params += rows[i].params;
		state += rows[i].state;
	}
	printf("%s], \"params\": %lld, \"state\": %lld}\n", n ? "\n" : "", (long long)params,
	       (long long)state);
	free(rows);
}

static const char *const options[] = {"--model", "--batch", "--dtype", "--json", "--help", NULL};

int cmd_summary(int argc, char **argv)
{
	cli_model_args a = {.dtype = NB_F32};
	bool json = false;
	for (int i = 1; i < argc; i++) {
		int k;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if ((k = cli_model_option(argc, argv, &i, "summary", &a)) != 0) {
			if (k < 0)
				return 2;
		} else {
			cli_unknown_option("summary", argv[i], options);
			return 2;
		}
	}
	if (!a.name) {
		fprintf(stderr, "nabla summary: --model NAME is required; models:\n");
		cli_model_list(stderr, false);
		return 2;
	}
	cli_model m;
	int rc = cli_model_build(&m, "summary", &a);
	if (!rc) {
		if (json) {
			print_json(&m, a.name);
		} else {
			const nb_zoo_entry *z = nb_zoo_find(a.name);
			char shape[128];
			printf("%s%s%s, input %s\n", a.name, z ? ": " : "", z ? z->summary : "",
			       nb_shape_str(nb_tensor_shape(nb_graph_find(m.g, "x")), shape,
			                    sizeof shape));
			nb_summary_print(m.g, stdout);
		}
		if (fflush(stdout) != 0 || ferror(stdout)) {
			fprintf(stderr, "nabla summary: writing the output failed\n");
			rc = 1;
		}
	}
	cli_model_free(&m);
	return rc;
}
