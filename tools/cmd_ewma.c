/* nabla ewma — exponentially weighted moving average of a time series. */
#include "cli.h"
#include "series.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: nabla ewma --beta B [--bias-correct] [--column K] [-o FILE] [FILE|-]\n"
	        "\n"
	        "Exponentially weighted moving average of a time series, as in the lecture\n"
	        "notes: v_t = B v_{t-1} + (1 - B) x_t with v_0 = 0.  It averages roughly the\n"
	        "last 1/(1-B) values (10 for B = 0.9).\n"
	        "\n"
	        "Input (FILE, or standard input for '-' or no FILE): one number per line, or\n"
	        "with --column one column of a CSV file.  Blank lines are skipped and a header\n"
	        "line is optional.  Output: CSV with the header 'x,ewma' and one row per value.\n"
	        "\n"
	        "options:\n"
	        "  --beta B          weight of the past, 0 <= B < 1 (required)\n"
	        "  --bias-correct    print v_t / (1 - B^t), which removes the pull towards\n"
	        "                    v_0 = 0 in the first values (Adam's correction)\n"
	        "  --column K        the CSV column to read: 1-based index or header name\n"
	        "  -o, --output FILE write the CSV to FILE instead of standard output\n"
	        "  -h, --help        show this help\n"
	        "\n"
	        "example: printf '30\\n35\\n40\\n10\\n' | nabla ewma --beta 0.9\n");
}

/* a is "--name" or "--name=..." */
static bool is_opt(const char *a, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(a, name, n) && (a[n] == 0 || a[n] == '=');
}

static int write_csv(FILE *fp, const cli_series *x, const double *v)
{
	fprintf(fp, "x,ewma\n");
	for (int64_t i = 0; i < x->n; i++)
		fprintf(fp, "%.15g,%.15g\n", x->v[i], v[i]);
	return ferror(fp) ? -1 : 0;
}

int cmd_ewma(int argc, char **argv)
{
	double beta = NAN;
	bool bias = false;
	const char *column = NULL, *in_path = NULL, *out_path = NULL, *v;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--bias-correct")) {
			bias = true;
		} else if (is_opt(a, "--beta")) {
			if (!(v = cli_opt_value(argc, argv, &i, "--beta")) ||
			    !cli_parse_double("--beta", v, &beta))
				return 2;
		} else if (is_opt(a, "--column")) {
			if (!(column = cli_opt_value(argc, argv, &i, "--column")))
				return 2;
		} else if (is_opt(a, "--output") || !strcmp(a, "-o")) {
			if (!(out_path =
			          cli_opt_value(argc, argv, &i, a[1] == 'o' ? "-o" : "--output")))
				return 2;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr,
			        "nabla ewma: unknown option '%s' (see 'nabla ewma --help')\n", a);
			return 2;
		} else if (in_path) {
			fprintf(stderr, "nabla ewma: one input file only ('%s' and '%s')\n",
			        in_path, a);
			return 2;
		} else {
			in_path = a;
		}
	}
	if (isnan(beta)) {
		fprintf(stderr, "nabla ewma: --beta is required (e.g. --beta 0.9)\n");
		return 2;
	}
	if (!(beta >= 0 && beta < 1)) {
		fprintf(stderr, "nabla ewma: --beta %g is outside [0, 1)\n", beta);
		return 2;
	}

	bool use_stdin = !in_path || !strcmp(in_path, "-");
	const char *shown = use_stdin ? "<stdin>" : in_path;
	FILE *in = use_stdin ? stdin : fopen(in_path, "r");
	if (!in) {
		fprintf(stderr, "nabla ewma: cannot open %s: %s\n", in_path, strerror(errno));
		return 1;
	}
	cli_series x = {0};
	char err[512];
	int rc = cli_read_series(in, column, &x, err, sizeof err);
	if (!use_stdin)
		fclose(in);
	if (rc < 0) {
		fprintf(stderr, "nabla ewma: %s: %s\n", shown, err);
		cli_series_free(&x);
		return 1;
	}
	double *ew = malloc((size_t)x.n * sizeof *ew);
	if (!ew || nb_ewma(x.v, x.n, beta, bias, ew) != NB_OK) {
		fprintf(stderr, "nabla ewma: out of memory for %lld values\n", (long long)x.n);
		free(ew);
		cli_series_free(&x);
		return 1;
	}
	FILE *out = out_path ? fopen(out_path, "w") : stdout;
	if (!out) {
		fprintf(stderr, "nabla ewma: cannot write %s: %s\n", out_path, strerror(errno));
		rc = -1;
	} else {
		rc = write_csv(out, &x, ew);
		if ((out_path ? fclose(out) : fflush(out)) != 0)
			rc = -1;
		if (rc < 0)
			fprintf(stderr, "nabla ewma: error writing %s\n",
			        out_path ? out_path : "<stdout>");
	}
	free(ew);
	cli_series_free(&x);
	return rc < 0 ? 1 : 0;
}
