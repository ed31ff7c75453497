/* nabla ewma — exponentially weighted moving average of a time series. */
#include "cli.h"
#include "series.h"

#include "graph/internal.h" /* nb__shown */
#include "io/wfile.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_BETAS = 8, DEMO_N = 200 };

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: nabla ewma --beta B [--bias-correct] [--column K] [-o FILE] [--plot SVG]\n"
	        "                  [FILE|-]\n"
	        "       nabla ewma --demo [--beta B1,B2,...] [--bias-correct] [--n N] [--seed S]\n"
	        "                  [-o FILE] [--plot SVG]\n"
	        "\n"
	        "Exponentially weighted moving average of a time series, as in the lecture\n"
	        "notes: v_t = B v_{t-1} + (1 - B) x_t with v_0 = 0.  It averages roughly the\n"
	        "last 1/(1-B) values (10 for B = 0.9).\n"
	        "\n"
	        "Input (FILE, or standard input for '-' or no FILE): one number per line, or\n"
	        "with --column one column of a CSV file.  Blank lines are skipped and a header\n"
	        "line is optional.  Output: CSV with the header 'x,ewma' and one row per value.\n"
	        "\n"
	        "--demo is the notes' exercise \"generate time series data & plot the variations\n"
	        "with EWMA\": N noisy daily temperatures (a seasonal wave plus Gaussian noise,\n"
	        "from the seed) averaged with several betas (default 0.5,0.9,0.98); the CSV\n"
	        "has the columns t,x,ewma_B1,ewma_B2,...\n"
	        "\n"
	        "options:\n"
	        "  --beta B          weight of the past, 0 <= B < 1 (required without --demo;\n"
	        "                    with --demo a comma-separated list of up to %d)\n"
	        "  --bias-correct    print v_t / (1 - B^t), which removes the pull towards\n"
	        "                    v_0 = 0 in the first values (Adam's correction)\n"
	        "  --column K        the CSV column to read: 1-based index or header name\n"
	        "  -o, --output FILE write the CSV to FILE instead of standard output\n"
	        "  --plot FILE.svg   plot the series and its average(s) against t = 1..n; the\n"
	        "                    CSV is then written only with -o\n"
	        "  --demo            generate the series instead of reading one\n"
	        "  --n N             --demo: number of values, 1 to 10^8 (default %d)\n"
	        "  --seed S          --demo: random seed, 0 to 10^8 (default 1)\n"
	        "  -h, --help        show this help\n"
	        "\n"
	        "examples: printf '30\\n35\\n40\\n10\\n' | nabla ewma --beta 0.9\n"
	        "          nabla ewma --demo --plot ewma-demo.svg\n",
	        MAX_BETAS, DEMO_N);
}

/* a is "--name" or "--name=..." */
static bool is_opt(const char *a, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(a, name, n) && (a[n] == 0 || a[n] == '=');
}

/* Comma-separated betas in [0, 1) into b; returns how many, or -1 after a
 * message (an empty item, more than max). */
static int parse_betas(const char *v, double *b, int max)
{
	int n = 0;
	char tok[64];
	if (!*v) {
		fprintf(stderr, "nabla ewma: --beta needs a value\n");
		return -1;
	}
	for (const char *p = v;; p++) {
		const size_t len = strcspn(p, ",");
		if (!len) {
			fprintf(stderr, "nabla ewma: --beta: an empty item in the list\n");
			return -1;
		}
		if (n == max) {
			fprintf(stderr, "nabla ewma: at most %d betas\n", max);
			return -1;
		}
		if (len >= sizeof tok) {
			fprintf(stderr,
			        "nabla ewma: --beta: an item of %zu characters is no beta\n", len);
			return -1;
		}
		snprintf(tok, sizeof tok, "%.*s", (int)len, p);
		if (!cli_parse_num("ewma", "--beta", tok, 0, false, 1, true, &b[n]))
			return -1;
		n++;
		p += len;
		if (!*p)
			return n;
	}
}

/* The notes' temperatures, made up: a seasonal wave (period 100 days)
 * around 25 degrees plus N(0, 4^2) noise. */
static void demo_series(cli_series *x, int64_t n, uint64_t seed)
{
	uint64_t rng = seed;
	for (int64_t t = 0; t < n; t++)
		x->v[t] = 25 + 8 * sin(2 * M_PI * (double)t / 100) + 4 * nb__rand_normal(&rng);
	x->n = n;
}

/* header "x,ewma" (one average) or "t,x,ewma_B1,..." (demo) */
static int write_csv(FILE *fp, const cli_series *x, double *const *ew, const double *beta, int nb,
                     bool demo)
{
	if (demo) {
		fprintf(fp, "t,x");
		for (int k = 0; k < nb; k++)
			fprintf(fp, ",ewma_%g", beta[k]);
		fprintf(fp, "\n");
	} else {
		fprintf(fp, "x,ewma\n");
	}
	for (int64_t i = 0; i < x->n; i++) {
		if (demo)
			fprintf(fp, "%lld,", (long long)i + 1);
		fprintf(fp, "%.15g", x->v[i]);
		for (int k = 0; k < nb; k++)
			fprintf(fp, ",%.15g", ew[k][i]);
		fprintf(fp, "\n");
	}
	return ferror(fp) ? -1 : 0;
}

static int write_plot(const char *path, const char *title, const char *ylabel, const cli_series *x,
                      double *const *ew, const double *beta, int nb, bool bias)
{
	double *t = malloc((size_t)x->n * sizeof *t);
	if (!t) {
		fprintf(stderr, "nabla ewma: out of memory\n");
		return -1;
	}
	for (int64_t i = 0; i < x->n; i++)
		t[i] = (double)i + 1;
	nb_plot *p = nb_plot_new(title, "t", ylabel);
	nb_plot_line(p, "raw series", t, x->v, (size_t)x->n);
	for (int k = 0; k < nb; k++) {
		char label[96];
		snprintf(label, sizeof label, "EWMA beta %g (~%.3g values)%s", beta[k],
		         1 / (1 - beta[k]), bias ? ", bias-corrected" : "");
		nb_plot_line(p, label, t, ew[k], (size_t)x->n);
	}
	int rc = 0;
	if (nb_plot_save(p, path) != NB_OK) {
		fprintf(stderr, "nabla ewma: %s\n", nb_plot_errmsg(p));
		rc = -1;
	}
	nb_plot_free(p);
	free(t);
	return rc;
}

typedef struct ewma_args {
	double beta[MAX_BETAS];
	int nb;
	bool bias, demo;
	long demo_n, seed;
	const char *demo_flag; /* --n or --seed, given (they go with --demo) */
	const char *column, *in_path, *out_path, *plot_path;
} ewma_args;

static const char *const options[] = {"--beta",   "--bias-correct", "--demo", "--n",
                                      "--seed",   "--column",       "--plot", "-o",
                                      "--output", "--help",         NULL};

/* argv[*i] into e: -1 to go on, or the exit status (0 after --help) */
static int parse_arg(int argc, char **argv, int *i, ewma_args *e)
{
	const char *a = argv[*i], *v;
	if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
		usage(stdout);
		return 0;
	} else if (!strcmp(a, "--bias-correct")) {
		e->bias = true;
	} else if (!strcmp(a, "--demo")) {
		e->demo = true;
	} else if (is_opt(a, "--beta")) {
		if (!(v = cli_opt_value(argc, argv, i, "--beta")) ||
		    (e->nb = parse_betas(v, e->beta, MAX_BETAS)) < 0)
			return 2;
	} else if (is_opt(a, "--n") || is_opt(a, "--seed")) {
		const char *name = a[2] == 'n' ? "--n" : "--seed";
		e->demo_flag = name;
		long *dst = a[2] == 'n' ? &e->demo_n : &e->seed;
		if (!(v = cli_opt_value(argc, argv, i, name)) ||
		    !cli_parse_long("ewma", name, v, dst == &e->demo_n ? 1 : 0, 100000000, dst))
			return 2;
	} else if (is_opt(a, "--column")) {
		if (!(e->column = cli_opt_value(argc, argv, i, "--column")))
			return 2;
	} else if (is_opt(a, "--plot")) {
		if (!(e->plot_path = cli_opt_value(argc, argv, i, "--plot")))
			return 2;
	} else if (is_opt(a, "--output") || !strcmp(a, "-o")) {
		if (!(e->out_path = cli_opt_value(argc, argv, i, a[1] == 'o' ? "-o" : "--output")))
			return 2;
	} else if (a[0] == '-' && a[1]) {
		cli_unknown_option("ewma", a, options);
		return 2;
	} else if (e->in_path) {
		fprintf(stderr, "nabla ewma: one input file only ('%s' and '%s')\n", e->in_path, a);
		return 2;
	} else {
		e->in_path = a;
	}
	return -1;
}

/* The arguments and how they go together: -1, or the exit status. */
static int parse_args(int argc, char **argv, ewma_args *e)
{
	for (int i = 1; i < argc; i++) {
		int rc = parse_arg(argc, argv, &i, e);
		if (rc >= 0)
			return rc;
	}
	if (e->demo && (e->in_path || e->column)) {
		fprintf(stderr, "nabla ewma: --demo makes its own series (no FILE or --column)\n");
		return 2;
	}
	if (!e->demo && e->demo_flag) {
		fprintf(stderr,
		        "nabla ewma: %s goes with --demo (it sizes or seeds the made-up "
		        "series)\n",
		        e->demo_flag);
		return 2;
	}
	if (e->demo && !e->nb) {
		e->beta[0] = 0.5, e->beta[1] = 0.9, e->beta[2] = 0.98;
		e->nb = 3;
	}
	if (!e->nb) {
		fprintf(stderr, "nabla ewma: --beta is required (e.g. --beta 0.9)\n");
		return 2;
	}
	if (!e->demo && e->nb > 1) {
		fprintf(stderr, "nabla ewma: one --beta only (several go with --demo)\n");
		return 2;
	}
	if (e->out_path && e->plot_path && cli_same_file(e->out_path, e->plot_path)) {
		char shown[256];
		fprintf(stderr, "nabla ewma: -o and --plot name the same file, %s\n",
		        nb__shown(e->plot_path, shown, sizeof shown));
		return 2;
	}
	return -1;
}

/* The series (made up, or read) into x and the plot's title: 0, or 1
 * after a message. */
static int load_series(const ewma_args *e, cli_series *x, char *title, size_t tn)
{
	if (e->demo) {
		if (!(x->v = malloc((size_t)e->demo_n * sizeof *x->v))) {
			fprintf(stderr, "nabla ewma: out of memory for %ld values\n", e->demo_n);
			return 1;
		}
		demo_series(x, e->demo_n, (uint64_t)e->seed);
		snprintf(title, tn, "EWMA of %ld noisy daily temperatures (seed %ld)", e->demo_n,
		         e->seed);
		return 0;
	}
	const char *in_path = e->in_path;
	bool use_stdin = !in_path || !strcmp(in_path, "-");
	char path_shown[256];
	const char *shown =
	    use_stdin ? "<stdin>" : nb__shown(in_path, path_shown, sizeof path_shown);
	FILE *in = use_stdin ? stdin : fopen(in_path, "r");
	if (!in) {
		fprintf(stderr, "nabla ewma: cannot open %s: %s\n", shown, strerror(errno));
		return 1;
	}
	char err[512];
	int rc = cli_read_series(in, e->column, x, err, sizeof err);
	if (!use_stdin)
		fclose(in);
	if (rc < 0) {
		fprintf(stderr, "nabla ewma: %s: %s\n", shown, err);
		cli_series_free(x);
		return 1;
	}
	snprintf(title, tn, "EWMA of %.100s", use_stdin ? "standard input" : in_path);
	return 0;
}

/* the CSV to -o or standard output: 0, or -1 after a message.  -o is
 * written atomically (io/wfile.h): a failed write leaves the file that was
 * there, and no partial one; an existing special file such as /dev/stdout
 * is written directly. */
static int write_output(const ewma_args *e, const cli_series *x, double *const *ew)
{
	char shown[256];
	if (!e->out_path) {
		if (write_csv(stdout, x, ew, e->beta, e->nb, e->demo) < 0 || fflush(stdout) != 0) {
			fprintf(stderr, "nabla ewma: error writing <stdout>\n");
			return -1;
		}
		return 0;
	}
	nb__shown(e->out_path, shown, sizeof shown);
	char err[640];
	nb__wfile w;
	if (nb__wfile_open(&w, e->out_path, true, err, sizeof err) != 0) {
		fprintf(stderr, "nabla ewma: cannot write %s: %s\n", shown, err);
		return -1;
	}
	if (write_csv(w.fp, x, ew, e->beta, e->nb, e->demo) < 0) {
		nb__wfile_abort(&w);
		fprintf(stderr, "nabla ewma: error writing %s\n", shown);
		return -1;
	}
	if (nb__wfile_commit(&w, err, sizeof err) != 0) {
		fprintf(stderr, "nabla ewma: %s: %s\n", shown, err);
		return -1;
	}
	return 0;
}

int cmd_ewma(int argc, char **argv)
{
	ewma_args e = {.demo_n = DEMO_N, .seed = 1};
	int rc = parse_args(argc, argv, &e);
	if (rc >= 0)
		return rc;
	cli_series x = {0};
	char title[160];
	if ((rc = load_series(&e, &x, title, sizeof title)) != 0)
		return rc;
	double *ew[MAX_BETAS] = {0};
	for (int k = 0; k < e.nb && !rc; k++)
		if (!(ew[k] = malloc((size_t)x.n * sizeof *ew[k])) ||
		    nb_ewma(x.v, x.n, e.beta[k], e.bias, ew[k]) != NB_OK) {
			fprintf(stderr, "nabla ewma: out of memory for %lld values\n",
			        (long long)x.n);
			rc = -1;
		}
	if (!rc && e.plot_path)
		rc = write_plot(e.plot_path, title, e.demo ? "temperature" : "value", &x, ew,
		                e.beta, e.nb, e.bias);
	if (!rc && (e.out_path || !e.plot_path))
		rc = write_output(&e, &x, ew);
	for (int k = 0; k < e.nb; k++)
		free(ew[k]);
	cli_series_free(&x);
	return rc < 0 ? 1 : 0;
}
