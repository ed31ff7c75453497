/* Reading a numeric time series (one number per line, or one CSV column). */
#ifndef NB_CLI_SERIES_H
#define NB_CLI_SERIES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cli_series {
	double *v;
	int64_t n, cap;
} cli_series;

/* Read every value from fp into out (which starts empty: {0}).
 *
 * column NULL: each line holds one number.  Otherwise each line is a CSV
 * record (fields separated by commas, optionally "quoted", spaces around
 * fields ignored) and column picks a field: a 1-based index, or the name of
 * a field in the header line.  Blank lines are skipped.  The first
 * non-blank line is taken as a header when its selected field is not a
 * number (a header is required when column is a name).  Values must be
 * finite numbers.
 *
 * Returns 0, or -1 with a message in err naming the line ("line 3: ...");
 * out keeps what was read until then (free it with cli_series_free). */
int cli_read_series(FILE *fp, const char *column, cli_series *out, char *err, size_t errlen);
void cli_series_free(cli_series *s);

#endif
