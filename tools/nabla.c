/*
 * nabla — the command-line program: one binary, one subcommand per task.
 */
#include "cli.h"
#include "graph/internal.h"

#include <stdlib.h>
#include <string.h>

static const cli_command commands[] = {
    {"train", "train a model (the notes' examples and more) with progress", cmd_train},
    {"gradcheck", "check every op's gradient against finite differences", cmd_gradcheck},
    {"summary", "a model's layers, output shapes and parameter counts", cmd_summary},
    {"eval", "a trained model's loss, accuracy and confusion matrix on its test set", cmd_eval},
    {"predict", "classify test images, with a picture of them and the predictions", cmd_predict},
    {"dot", "write a model's graph as Graphviz DOT (or SVG, PNG, PDF, ...)", cmd_dot},
    {"export", "write a model's inference graph as ONNX, for ONNX Runtime", cmd_export},
    {"bench", "measure training speed and GEMM throughput", cmd_bench},
    {"ewma", "exponentially weighted moving average of a time series", cmd_ewma},
};

static void usage(FILE *fp)
{
	fprintf(fp, "usage: nabla <command> [options]\n\n"
	            "Reverse-mode automatic differentiation for neural networks in C.\n\n"
	            "commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(fp, "  %-10s %s\n", "help", "show this help, or a command's: nabla help train");
	fprintf(fp, "\noptions: --version, --help.  'nabla <command> --help' for details.\n");
}

/* The environment variables the library reads (docs/design.md): an
 * unknown value is an error here, where the library would ignore it. */
static bool env_ok(const char *name, const char *const *values, int n)
{
	const char *v = getenv(name);
	if (!v)
		return true;
	for (int i = 0; i < n; i++)
		if (!strcmp(v, values[i]))
			return true;
	char buf[128];
	fprintf(stderr, "nabla: %s must be one of", name);
	for (int i = 0; i < n; i++)
		fprintf(stderr, "%s %s", i ? "," : "", values[i]);
	fprintf(stderr, ", not '%s'\n", nb__shown(v, buf, sizeof buf));
	return false;
}

/* "no command 'X'", with the nearest command when X looks like a slip */
static int no_command(const char *cmd)
{
	const char *names[sizeof commands / sizeof commands[0] + 1];
	int n = 0;
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		names[n++] = commands[i].name;
	names[n++] = "help";
	const char *near = cli_nearest(cmd, names, n);
	char buf[128];
	fprintf(stderr, "nabla: no command '%s'", nb__shown(cmd, buf, sizeof buf));
	if (near)
		fprintf(stderr, "; did you mean '%s'?", near);
	fprintf(stderr, " (see 'nabla help')\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const char *const isa[] = {"baseline", "avx2", "avx512"}, *const gemm[] = {"avx512",
	                                                                                  "blis"};
	if (!env_ok("NABLA_ISA", isa, 3) || !env_ok("NABLA_GEMM", gemm, 2))
		return 2;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("nabla %s\n", nb_version());
		return 0;
	}
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "help")) {
		if (argc < 3) {
			usage(stdout);
			return 0;
		}
		cmd = argv[2];
		if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
			usage(stdout);
			return 0;
		}
		char *hargv[] = {(char *)cmd, "--help", NULL};
		for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
			if (!strcmp(commands[i].name, cmd))
				return commands[i].run(2, hargv);
		return no_command(cmd);
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(commands[i].name, cmd))
			return commands[i].run(argc - 1, argv + 1);
	return no_command(cmd);
}
