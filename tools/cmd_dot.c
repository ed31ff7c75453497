/*
 * nabla dot — a model's graph as Graphviz DOT, or rendered to SVG/PNG
 * through libgvc.  The backward view adds an optimizer first, so the
 * picture shows the gradient nodes nabla derived and the update nodes.
 */
#include "cli.h"

#include <string.h>
#include <unistd.h>

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: nabla dot [--model NAME] [--forward|--backward] [-o FILE]\n"
	        "                 [--format dot|svg|png] [--optim NAME] [--batch N]\n\n"
	        "Writes a model's graph: one node per tensor {name | op | shape}, filled by\n"
	        "role (input, parameter, constant, state, forward op, gradient, update).\n\n"
	        "options:\n"
	        "  --model NAME   the model (default mlp; list below)\n"
	        "  --forward      the model as built: inputs, parameters, forward ops (default)\n"
	        "  --backward     also the gradient nodes of the backward pass and the\n"
	        "                 optimizer's update nodes (dashed edges: gradient flow)\n"
	        "  --optim NAME   the optimizer for --backward: sgd (default), momentum,\n"
	        "                 nesterov, rmsprop, adam, adamw\n"
	        "  -o FILE        write to FILE (default: standard output)\n"
	        "  --format F     dot (default; or from FILE's .svg/.png suffix), svg or png;\n"
	        "                 svg and png are rendered in-process through Graphviz's\n"
	        "                 libgvc when nabla was built with it, otherwise use\n"
	        "                 nabla dot ... | dot -Tsvg -o graph.svg\n"
	        "  --batch N      batch size of the shapes (zoo models; default 1), 1 to 1048576\n"
	        "  --dtype T      f32 (default) or f64\n"
	        "  --help         show this help\n\n"
	        "models:\n");
	cli_model_list(fp, false);
}

static const char *suffix_format(const char *path)
{
	const char *dot = path ? strrchr(path, '.') : NULL;
	if (dot && (!strcmp(dot, ".svg") || !strcmp(dot, ".png")))
		return dot + 1;
	return "dot";
}

/* Write the graph; returns the exit status. */
static int write_graph(nb_graph *g, nb_dot_view view, const char *out, const char *format)
{
	nb_status st;
	if (!strcmp(format, "dot")) {
		st = out ? nb_graph_save_dot(g, out, view) : nb_graph_write_dot(g, stdout, view);
	} else {
		if (!out && !strcmp(format, "png") && isatty(1)) {
			fprintf(stderr, "nabla dot: not writing PNG to a terminal; use -o FILE\n");
			return 2;
		}
		fflush(stdout);
		st = nb_graph_render(g, out ? out : "/dev/stdout", format, view);
	}
	if (st == NB_OK && !out && fflush(stdout) != 0)
		st = NB_ERR_IO;
	if (st != NB_OK) {
		fprintf(stderr, "nabla dot: %s\n",
		        nb_graph_status(g) != NB_OK ? nb_graph_errmsg(g)
		                                    : "writing the output failed");
		return 1;
	}
	return 0;
}

static const char *const options[] = {"--model",  "--forward", "--backward", "-o",
                                      "--output", "--format",  "--optim",    "--batch",
                                      "--dtype",  "--help",    NULL};

int cmd_dot(int argc, char **argv)
{
	cli_model_args a = {.name = "mlp", .dtype = NB_F32};
	const char *out = NULL, *format = NULL;
	nb_dot_view view = NB_DOT_FORWARD;
	nb_optim_kind optim = NB_OPTIM_SGD;
	for (int i = 1; i < argc; i++) {
		const char *v;
		int k;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--forward")) {
			view = NB_DOT_FORWARD;
		} else if (!strcmp(argv[i], "--backward")) {
			view = NB_DOT_BACKWARD;
		} else if ((k = cli_model_option(argc, argv, &i, "dot", &a)) != 0) {
			if (k < 0)
				return 2;
		} else if ((v = cli_opt_value(argc, argv, &i, "-o")) ||
		           (v = cli_opt_value(argc, argv, &i, "--output"))) {
			out = strcmp(v, "-") ? v : NULL;
		} else if ((v = cli_opt_value(argc, argv, &i, "--format"))) {
			if (strcmp(v, "dot") && strcmp(v, "svg") && strcmp(v, "png")) {
				fprintf(stderr,
				        "nabla dot: --format must be dot, svg or png, not '%s'\n",
				        v);
				return 2;
			}
			format = v;
		} else if ((v = cli_opt_value(argc, argv, &i, "--optim"))) {
			optim = nb_optim_kind_from_name(v);
			if (optim == NB_OPTIM_INVALID) {
				fprintf(stderr,
				        "nabla dot: unknown optimizer '%s' (sgd, momentum, "
				        "nesterov, rmsprop, adam, adamw)\n",
				        v);
				return 2;
			}
		} else if (cli_missing_value) {
			return 2;
		} else {
			cli_unknown_option("dot", argv[i], options);
			return 2;
		}
	}
	if (!format)
		format = suffix_format(out);
	cli_model m;
	int rc = cli_model_build(&m, "dot", &a);
	if (!rc && view == NB_DOT_BACKWARD &&
	    !nb_optimizer(m.g, m.loss, (nb_optim_opts){.kind = optim})) {
		fprintf(stderr, "nabla dot: %s\n", nb_graph_errmsg(m.g));
		rc = 1;
	}
	if (!rc)
		rc = write_graph(m.g, view, out, format);
	cli_model_free(&m);
	return rc;
}
