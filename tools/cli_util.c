/* Option parsing helpers shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
		fprintf(stderr, "nabla %s: %s must be an integer from %ld to %ld, got '%s'\n", cmd,
		        opt, min, max, s);
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
		fprintf(stderr, ", got '%s'\n", s);
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
	fprintf(stderr, "nabla %s: --dtype must be f32 or f64, not '%s'\n", cmd, s);
	return false;
}
