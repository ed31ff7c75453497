/* Option parsing helpers shared by the subcommands. */
#include "cli.h"
#include "graph/internal.h" /* nb__shown */

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* -?[0-9]+ and nothing else (strtol alone would take spaces and '+') */
static bool decimal_integer(const char *s)
{
	s += *s == '-';
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

bool cli_parse_long(const char *cmd, const char *opt, const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = decimal_integer(s) ? strtol(s, &end, 10) : 0;
	if (!decimal_integer(s) || *end || errno || v < min || v > max) {
		char shown[128];
		fprintf(stderr, "nabla %s: %s must be an integer from %ld to %ld, got '%s'\n", cmd,
		        opt, min, max, nb__shown(s, shown, sizeof shown));
		return false;
	}
	*out = v;
	return true;
}

/* digits, '.', 'e', signs, at least one digit: no spaces, hex, inf or nan */
static bool decimal_number(const char *s)
{
	bool digit = false;
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9')
			digit = true;
		else if (!strchr(".eE+-", *s))
			return false;
	}
	return digit;
}

bool cli_parse_num(const char *cmd, const char *opt, const char *s, double min, bool min_open,
                   double max, bool max_open, double *out)
{
	char *end;
	errno = 0;
	double v = decimal_number(s) ? strtod(s, &end) : NAN;
	bool ok = decimal_number(s) && !*end && isfinite(v) && !(errno == ERANGE && fabs(v) > 1) &&
	          (min_open ? v > min : v >= min) && (max_open ? v < max : v <= max);
	if (!ok) {
		fprintf(stderr, "nabla %s: %s must be a %snumber %s %g", cmd, opt,
		        isfinite(max) ? "" : "finite ", min_open ? ">" : ">=", min);
		if (isfinite(max))
			fprintf(stderr, " and %s %g", max_open ? "<" : "<=", max);
		char shown[128];
		fprintf(stderr, ", got '%s'\n", nb__shown(s, shown, sizeof shown));
		return false;
	}
	*out = v;
	return true;
}

bool cli_missing_value;

const char *cli_opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	if (strncmp(a, name, n))
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != 0)
		return NULL;
	if (*i + 1 >= argc) {
		fprintf(stderr, "nabla: %s needs a value\n", name);
		cli_missing_value = true;
		return NULL;
	}
	return argv[++*i];
}

void cli_json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", fp);
		else if (c < 0x20)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

bool cli_parse_dtype(const char *cmd, const char *s, nb_dtype *out)
{
	if (!strcmp(s, "f32") || !strcmp(s, "f64")) {
		*out = s[1] == '3' ? NB_F32 : NB_F64;
		return true;
	}
	char shown[128];
	fprintf(stderr, "nabla %s: --dtype must be f32 or f64, not '%s'\n", cmd,
	        nb__shown(s, shown, sizeof shown));
	return false;
}

/* Optimal string alignment distance (Levenshtein plus swaps of two
 * neighbours: "trian" is one edit from "train"); strings longer than 63
 * bytes count as far from everything. */
int cli_edit_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	if (n > 63 || m > 63)
		return 64;
	int d[64][64];
	for (size_t i = 0; i <= n; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= n; i++)
		for (size_t j = 1; j <= m; j++) {
			int v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[n][m];
}

const char *cli_nearest(const char *s, const char *const *names, int n)
{
	/* "--epoch=3" is compared as "--epoch" */
	char key[64];
	size_t k = strcspn(s, "=");
	if (k >= sizeof key)
		return NULL;
	memcpy(key, s, k);
	key[k] = 0;
	const char *best = NULL;
	int best_d = 64;
	for (int i = 0; i < n; i++) {
		int d = cli_edit_distance(key, names[i]);
		if (d < best_d)
			best = names[i], best_d = d;
	}
	/* close enough to be a slip: up to 2 edits, and fewer than a third of
	 * the name (a short name's one edit, "-o" for "-x", is a guess) */
	size_t len = best ? strlen(best) : 0;
	return best && best_d > 0 && best_d <= 2 && (size_t)best_d * 3 <= len ? best : NULL;
}

void cli_unknown_option(const char *cmd, const char *arg, const char *const *options)
{
	int n = 0;
	while (options[n])
		n++;
	char buf[128];
	const char *near = arg[0] == '-' ? cli_nearest(arg, options, n) : NULL;
	fprintf(stderr, "nabla %s: unknown option '%s'", cmd, nb__shown(arg, buf, sizeof buf));
	if (near)
		fprintf(stderr, "; did you mean %s?", near);
	fprintf(stderr, " (see nabla %s --help)\n", cmd);
}

void cli_data_error(const char *cmd, const char *model, bool cifar, const char *err)
{
	fprintf(stderr, "nabla %s: %s\n", cmd, err);
	if (!strstr(err, ": cannot open: "))
		return; /* a file that is there but wrong: the message says what */
	if (cifar)
		fprintf(stderr,
		        "nabla %s: %s needs the CIFAR-10 binaries in the --data directory: "
		        "data_batch_1.bin to data_batch_5.bin and test_batch.bin (the "
		        "cifar-10-batches-bin directory of "
		        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz), or --data "
		        "synthetic for CIFAR-shaped synthetic images\n",
		        cmd, model);
	else
		fprintf(stderr,
		        "nabla %s: %s trains on Fashion-MNIST: apt install dataset-fashion-mnist "
		        "(into %s), or --data DIR holding train-images-idx3-ubyte, "
		        "train-labels-idx1-ubyte and the t10k- pair (each may end in .gz)\n",
		        cmd, model, NB_FASHION_MNIST_DIR);
}

const char *cli_shown(const char *s)
{
	static char buf[4][512];
	static int k;
	k = (k + 1) % 4;
	return nb__shown(s, buf[k], sizeof buf[k]);
}

/* path's directory made absolute, and its last component, into buf */
static bool canonical_name(const char *path, char *buf, size_t n)
{
	char dir[CLI_PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if ((size_t)(slash - path) >= sizeof dir)
		return false;
	else
		snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	return realpath(dir, real) && (size_t)snprintf(buf, n, "%s/%s", real, base) < n;
}

bool cli_same_file(const char *a, const char *b)
{
	if (!strcmp(a, b))
		return true;
	struct stat sa, sb;
	bool ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
	if (ea && eb)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	if (ea || eb)
		return false;
	static char ca[CLI_PATH_MAX + PATH_MAX], cb[CLI_PATH_MAX + PATH_MAX];
	return canonical_name(a, ca, sizeof ca) && canonical_name(b, cb, sizeof cb) &&
	       !strcmp(ca, cb);
}

bool cli_check_output(const char *cmd, const char *flag, const char *path)
{
	char shown[256], dir[4096];
	struct stat sb;
	if (!*path) {
		fprintf(stderr, "nabla %s: %s: the file name is empty\n", cmd, flag);
		return false;
	}
	nb__shown(path, shown, sizeof shown);
	size_t n = strlen(path);
	if (path[n - 1] == '/' || (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))) {
		fprintf(stderr, "nabla %s: %s: %s: is a directory, not a file\n", cmd, flag, shown);
		return false;
	}
	if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
		fprintf(stderr, "nabla %s: %s: %s: is not a regular file\n", cmd, flag, shown);
		return false;
	}
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else if ((size_t)(slash - path) < sizeof dir)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	else {
		fprintf(stderr, "nabla %s: %s: %s: the name is too long\n", cmd, flag, shown);
		return false;
	}
	char dshown[256];
	nb__shown(dir, dshown, sizeof dshown);
	bool found = stat(dir, &sb) == 0;
	if (!found || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "nabla %s: %s: %s: the directory %s %s\n", cmd, flag, shown, dshown,
		        !found && errno == ENOENT ? "does not exist" : "is not a directory");
		return false;
	}
	/* access() says yes to root on any directory: a file is made instead */
	char probe[4096 + 32];
	snprintf(probe, sizeof probe, "%s/.nabla-probe-XXXXXX", dir);
	int fd = mkstemp(probe);
	if (fd < 0) {
		fprintf(stderr, "nabla %s: %s: %s: cannot write in %s: %s\n", cmd, flag, shown,
		        dshown, strerror(errno));
		return false;
	}
	close(fd);
	unlink(probe);
	return true;
}
