/* Reading a numeric time series: one number per line or one CSV column. */
#include "series.h"

#include "graph/internal.h" /* nb__shown */

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void cli_series_free(cli_series *s)
{
	if (!s)
		return;
	free(s->v);
	*s = (cli_series){0};
}

/* Message into err, prefixed "line N: " when line > 0; returns -1.  The
 * messages quote the file's text: nb__shown makes it safe for a terminal
 * (every control character, C0, DEL and C1, and every byte that is not
 * well-formed UTF-8, a lone 0x9b included, becomes '?'). */
static int fail(char *err, size_t n, long line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t n, long line, const char *fmt, ...)
{
	if (!err || !n)
		return -1;
	char raw[1024];
	size_t k = line > 0 ? (size_t)snprintf(raw, sizeof raw, "line %ld: ", line) : 0;
	if (k < sizeof raw) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(raw + k, sizeof raw - k, fmt, ap);
		va_end(ap);
	}
	nb__shown(raw, err, n);
	return -1;
}

/* The longest line read: a number, or a CSV record, is far shorter; a
 * file of one endless line (/dev/zero) must not take all the memory. */
#define SERIES_LINE_MAX ((size_t)1 << 20)

/* Reads one line (its newline kept) into *buf, of capacity *cap, growing
 * it up to SERIES_LINE_MAX + 2 bytes: 1 with the line's length in *len, 0
 * at the end of the file, -1 after a message (a read error, a line too
 * long, a NUL byte: a number file has none, out of memory). */
static int read_line(FILE *fp, char **buf, size_t *cap, size_t *len, long lineno, char *err,
                     size_t errlen)
{
	size_t n = 0;
	int c;
	while ((c = getc(fp)) != EOF) {
		if (n + 2 > *cap) {
			if (n >= SERIES_LINE_MAX)
				return fail(err, errlen, lineno,
				            "longer than %zu bytes (not a series?)",
				            SERIES_LINE_MAX);
			size_t nc = *cap ? 2 * *cap : 256;
			nc = nc < SERIES_LINE_MAX + 2 ? nc : SERIES_LINE_MAX + 2;
			char *nb = realloc(*buf, nc);
			if (!nb)
				return fail(err, errlen, lineno, "out of memory");
			*buf = nb;
			*cap = nc;
		}
		if (c == 0)
			return fail(err, errlen, lineno, "a NUL byte (not a text file?)");
		(*buf)[n++] = (char)c;
		if (c == '\n')
			break;
	}
	if (c == EOF && ferror(fp))
		return fail(err, errlen, lineno, "read error: %s", strerror(errno));
	if (n == 0)
		return 0;
	(*buf)[n] = 0;
	*len = n;
	return 1;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Field k (0-based) of a CSV record, unquoted ("" inside quotes is a quote)
 * and trimmed, into dst, which has room for strlen(rec) + 1 bytes and is ""
 * when the record has no field k.  Returns the number of fields, or -1 for
 * an unterminated quote or text after a closing quote. */
static int csv_field(const char *rec, int k, char *dst)
{
	const char *p = rec;
	dst[0] = 0;
	for (int count = 0;; p++) {
		char *d = count == k ? dst : NULL;
		size_t len = 0;
		while (is_blank(*p))
			p++;
		if (*p == '"') {
			for (p++;; p++) {
				if (!*p)
					return -1;
				if (*p == '"' && p[1] != '"')
					break;
				p += *p == '"'; /* "" stands for one quote */
				if (d)
					d[len++] = *p;
			}
			for (p++; is_blank(*p); p++)
				;
			if (*p && *p != ',')
				return -1;
		} else {
			const char *s = p;
			while (*p && *p != ',')
				p++;
			const char *e = p;
			while (e > s && is_blank(e[-1]))
				e--;
			len = (size_t)(e - s);
			if (d)
				memcpy(d, s, len);
		}
		if (d)
			d[len] = 0;
		count++;
		if (*p != ',')
			return count;
	}
}

static bool parse_number(const char *s, double *v)
{
	char *end;
	errno = 0;
	double x = strtod(s, &end);
	if (!*s || *end || !isfinite(x))
		return false;
	*v = x;
	return true;
}

static bool push(cli_series *s, double v)
{
	if (s->n == s->cap) {
		int64_t nc = s->cap ? 2 * s->cap : 256;
		double *nv = realloc(s->v, (size_t)nc * sizeof *nv);
		if (!nv)
			return false;
		s->v = nv;
		s->cap = nc;
	}
	s->v[s->n++] = v;
	return true;
}

/* The header field named name: its index, or -1 after an error message. */
static int find_column(const char *rec, const char *name, char *field, long line, char *err,
                       size_t errlen)
{
	for (int k = 0;; k++) {
		int nf = csv_field(rec, k, field);
		if (nf < 0)
			return fail(err, errlen, line, "unbalanced quote in the header");
		if (k >= nf)
			return fail(err, errlen, line,
			            "no column named '%s' in the header '%.200s'", name, rec);
		if (!strcmp(field, name))
			return k;
	}
}

/* Column spec: a 1-based index into *col, or a name into *name. */
static int parse_column(const char *column, int *col, const char **name, char *err, size_t errlen)
{
	*col = 0;
	*name = NULL;
	if (!column)
		return 0;
	char *end;
	errno = 0;
	long k = strtol(column, &end, 10);
	if (!*column)
		return fail(err, errlen, 0, "the column name is empty");
	if (*end) {
		*name = column;
		return 0;
	}
	if (errno || k < 1 || k > INT_MAX)
		return fail(err, errlen, 0, "column %s: columns are numbered from 1", column);
	*col = (int)k - 1;
	return 0;
}

int cli_read_series(FILE *fp, const char *column, cli_series *out, char *err, size_t errlen)
{
	int col;
	const char *name;
	if (parse_column(column, &col, &name, err, errlen) < 0)
		return -1;
	char *line = NULL, *field = NULL;
	size_t cap = 0, fcap = 0, len = 0;
	long lineno = 0;
	bool first = true;
	int rc = 0;
	while (rc == 0) {
		const int got = read_line(fp, &line, &cap, &len, lineno + 1, err, errlen);
		if (got <= 0) {
			rc = got;
			break;
		}
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (strspn(line, " \t") == len)
			continue;
		if (len + 1 > fcap) {
			char *nf = realloc(field, len + 1);
			if (!nf) {
				rc = fail(err, errlen, lineno, "out of memory");
				break;
			}
			field = nf;
			fcap = len + 1;
		}
		bool header_line = first;
		first = false;
		if (name && header_line) {
			if ((col = find_column(line, name, field, lineno, err, errlen)) < 0)
				rc = -1;
			continue;
		}
		int nf = csv_field(line, col, field);
		double v;
		if (nf < 0)
			rc = fail(err, errlen, lineno, "unbalanced quote");
		else if (!column && nf > 1)
			rc = fail(err, errlen, lineno,
			          "%d comma-separated fields, expected one number "
			          "(choose a column with --column)",
			          nf);
		else if (col >= nf)
			rc = fail(err, errlen, lineno, "%d field%s, no column %d", nf,
			          nf == 1 ? "" : "s", col + 1);
		else if (parse_number(field, &v)) {
			if (!push(out, v))
				rc = fail(err, errlen, lineno, "out of memory");
		} else if (!(header_line && !name)) { /* else: an optional header */
			if (!column)
				rc = fail(err, errlen, lineno, "'%.60s' is not a number", field);
			else
				rc = fail(err, errlen, lineno, "field %d, '%.60s', is not a number",
				          col + 1, field);
		}
	}
	if (rc == 0 && out->n == 0)
		rc = fail(err, errlen, 0, "no numbers found");
	free(line);
	free(field);
	return rc;
}
