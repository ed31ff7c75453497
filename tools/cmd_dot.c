/*
 * nabla dot — a model's graph as Graphviz DOT, or rendered through libgvc
 * to any format the installed Graphviz offers (SVG, PNG, PDF, ...), chosen
 * by the output file's extension.  The backward view adds an optimizer first, so the
 * picture shows the gradient nodes nabla derived and the update nodes.
 */
#include "cli.h"
#include "graph/internal.h" /* nb__shown */

#include <ctype.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *fp)
{
	const char *formats = nb_graph_render_formats();
	fprintf(fp,
	        "usage: nabla dot [--model NAME] [--forward|--backward] [-o FILE]\n"
	        "                 [--format F] [--optim NAME] [--batch N]\n\n"
	        "Writes a model's graph: one node per tensor {name | op | shape}, filled by\n"
	        "role (input, parameter, constant, state, forward op, gradient, update).\n\n"
	        "options:\n"
	        "  --model NAME   the model (default mlp; list below)\n"
	        "  --forward      the model as built: inputs, parameters, forward ops (default)\n"
	        "  --backward     also the gradient nodes of the backward pass and the\n"
	        "                 optimizer's update nodes (dashed edges: gradient flow);\n"
	        "                 under mpirun -np N (N > 1), the gradient buckets' allreduce\n"
	        "                 and wait nodes too (rank 0 writes the graph)\n"
	        "  --optim NAME   the optimizer for --backward: sgd (default), momentum,\n"
	        "                 nesterov, rmsprop, adam, adamw\n"
	        "  -o FILE        write to FILE (default: DOT text on standard output); its\n"
	        "                 extension gives the format: .dot or .gv for DOT text, any\n"
	        "                 format Graphviz renders for a picture (graph.svg, graph.png,\n"
	        "                 graph.pdf, ...); another extension is refused (without\n"
	        "                 --format), no extension writes DOT text\n"
	        "  --format F     dot, or a format Graphviz renders; overrides a FILE without\n"
	        "                 a known extension, must agree with a known one\n"
	        "  --batch N      batch size of the shapes (zoo models; default 1), 1 to 1048576\n"
	        "  --dtype T      f32 (default) or f64\n"
	        "  --help         show this help\n\n");
	if (formats[0]) {
		fprintf(fp, "formats Graphviz renders here (in-process, through libgvc):\n");
		int col = 0;
		for (const char *p = formats; *p;) { /* the words, in lines of at most 78 */
			int k = (int)strcspn(p, " ");
			if (col && col + 1 + k > 78)
				fprintf(fp, "\n"), col = 0;
			col += fprintf(fp, "%s%.*s", col ? " " : "  ", k, p);
			p += k + (p[k] == ' ');
		}
		fprintf(fp, "\n\n");
	} else
		fprintf(fp,
		        "This nabla was built without Graphviz's libgvc: it writes DOT text only;\n"
		        "render it with: nabla dot -o graph.dot && dot -Tsvg graph.dot -o "
		        "graph.svg\n\n");
	fprintf(fp, "models:\n");
	cli_model_list(fp, false);
}

/* whether f is one of the words of the space-separated list */
static bool in_list(const char *list, const char *f)
{
	size_t k = strlen(f);
	for (const char *p = list; k && (p = strstr(p, f)); p += k)
		if ((p == list || p[-1] == ' ') && (p[k] == ' ' || p[k] == 0))
			return true;
	return false;
}

/* "dot" for DOT text (dot, gv), the render format, or NULL: unknown */
static const char *known_format(const char *f)
{
	if (!strcmp(f, "dot") || !strcmp(f, "gv"))
		return "dot";
	return in_list(nb_graph_render_formats(), f) ? f : NULL;
}

/* FILE's extension, lower-cased into buf ("" when it has none) */
static const char *extension(const char *path, char *buf, size_t n)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strrchr(base, '.');
	size_t i = 0;
	for (const char *p = dot && dot != base ? dot + 1 : ""; *p && i + 1 < n; p++)
		buf[i++] = (char)tolower((unsigned char)*p);
	buf[i] = 0;
	return buf;
}

/* The supported formats, for an error message. */
static void print_supported(const char *cmd)
{
	const char *formats = nb_graph_render_formats();
	if (formats[0])
		fprintf(
		    stderr,
		    "nabla %s: the extension gives the format: .dot or .gv for DOT text, or one "
		    "Graphviz renders: %s\n",
		    cmd, formats);
	else
		fprintf(
		    stderr,
		    "nabla %s: this nabla was built without Graphviz's libgvc, so it writes DOT "
		    "text only (.dot or .gv); rendering a picture needs libgvc (install "
		    "libgraphviz-dev and rebuild), or run: dot -Tsvg graph.dot -o graph.svg\n",
		    cmd);
}

const char *cli_graph_format(const char *cmd, const char *out, const char *format)
{
	static char buf[32]; /* the result may point here */
	const char *ext = out ? extension(out, buf, sizeof buf) : "";
	const char *from_ext = ext[0] ? known_format(ext) : "dot";
	if (format && from_ext && ext[0] && strcmp(from_ext, format)) {
		fprintf(stderr, "nabla %s: --format %s does not match the extension of '%s'\n", cmd,
		        format, out);
		return NULL;
	}
	if (format)
		return format;
	if (!from_ext) {
		fprintf(stderr,
		        "nabla %s: cannot tell the format of '%s' from its extension '.%s'\n", cmd,
		        out, ext);
		print_supported(cmd);
	}
	return from_ext;
}

/* formats that are not text: not written to a terminal */
static bool binary_format(const char *f)
{
	return in_list("bmp gd gd2 gif ico jpe jpeg jpg pdf png svgz tif tiff vmlz wbmp webp", f);
}

/* Write the graph; returns the exit status. */
static int write_graph(nb_graph *g, nb_dot_view view, const char *out, const char *format)
{
	nb_status st;
	if (!strcmp(format, "dot")) {
		st = out ? nb_graph_save_dot(g, out, view) : nb_graph_write_dot(g, stdout, view);
	} else {
		if (!out && binary_format(format) && isatty(1)) {
			fprintf(stderr, "nabla dot: not writing %s to a terminal; use -o FILE\n",
			        format);
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
			if (!(format = known_format(v))) {
				char sh[128];
				fprintf(stderr, "nabla dot: unknown --format '%s'\n",
				        nb__shown(v, sh, sizeof sh));
				print_supported("dot");
				return 2;
			}
		} else if ((v = cli_opt_value(argc, argv, &i, "--optim"))) {
			optim = nb_optim_kind_from_name(v);
			if (optim == NB_OPTIM_INVALID) {
				char sh[128];
				fprintf(stderr,
				        "nabla dot: unknown optimizer '%s' (sgd, momentum, "
				        "nesterov, rmsprop, adam, adamw)\n",
				        nb__shown(v, sh, sizeof sh));
				return 2;
			}
		} else if (cli_missing_value) {
			return 2;
		} else {
			cli_unknown_option("dot", argv[i], options);
			return 2;
		}
	}
	if (!(format = cli_graph_format("dot", out, format)))
		return 2;
	/* under mpirun, the backward view has the gradient buckets' allreduce
	 * and wait nodes; rank 0 writes it */
	nb_dist *dist;
	char err[512];
	if (nb_dist_init(NULL, NULL, (nb_dist_opts){0}, &dist, err, sizeof err) != NB_OK) {
		fprintf(stderr, "nabla dot: %s\n", err);
		return 2;
	}
	cli_model m;
	int rc = cli_model_build(&m, "dot", &a);
	if (!rc && view == NB_DOT_BACKWARD &&
	    !nb_optimizer(m.g, m.loss, (nb_optim_opts){.kind = optim, .dist = dist})) {
		fprintf(stderr, "nabla dot: %s\n", nb_graph_errmsg(m.g));
		rc = 1;
	}
	if (!rc && nb_dist_rank(dist) == 0)
		rc = write_graph(m.g, view, out, format);
	cli_model_free(&m);
	if (rc)
		nb_dist_abort(dist, rc);
	nb_dist_finalize(dist);
	return rc;
}
