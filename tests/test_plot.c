/* SVG plots: tick values, well-formed output, clipping, escaping, errors. */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------- */

/* the SVG of p as a NUL-terminated string */
static char *svg_of(nb_plot *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(fp);
	nb_status st = nb_plot_write(p, fp);
	fclose(fp);
	ck_assert_msg(st == NB_OK, "nb_plot_write: %s", nb_plot_errmsg(p));
	return buf;
}

static int count(const char *s, const char *needle)
{
	int n = 0;
	for (const char *q = s; (q = strstr(q, needle)); q += strlen(needle))
		n++;
	return n;
}

/* A minimal well-formedness check: one root element, tags nest and match,
 * attribute values quoted, only the five predefined entities, no raw '<' or
 * '&' in text.  Returns NULL or what is wrong. */
static const char *xml_problem(const char *s)
{
	static char why[128];
	const char *stack[64];
	size_t slen[64];
	int depth = 0, roots = 0;
	if (!strncmp(s, "<?xml", 5)) {
		const char *e = strstr(s, "?>");
		if (!e)
			return "unterminated XML declaration";
		s = e + 2;
	}
	for (const char *q = s; *q;) {
		if (*q == '&') {
			static const char *const ent[] = {"&amp;", "&lt;", "&gt;", "&quot;",
			                                  "&apos;"};
			int ok = 0;
			for (int i = 0; i < 5; i++)
				ok |= !strncmp(q, ent[i], strlen(ent[i]));
			if (!ok)
				return "bad entity";
			q++;
			continue;
		}
		if (*q != '<') {
			if (depth == 0 && *q != ' ' && *q != '\n')
				return "text outside the root";
			q++;
			continue;
		}
		bool close = q[1] == '/';
		const char *name = q + 1 + close;
		size_t n = strcspn(name, " \t\n/>");
		if (n == 0)
			return "empty tag name";
		const char *r = name + n;
		/* attributes: name="value" */
		while (*r && *r != '>' && *r != '/') {
			while (*r == ' ' || *r == '\n')
				r++;
			if (*r == '>' || *r == '/')
				break;
			size_t an = strcspn(r, "= \t\n>");
			if (an == 0 || r[an] != '=' || r[an + 1] != '"')
				return "unquoted attribute";
			const char *v = r + an + 2, *end = strchr(v, '"');
			if (!end)
				return "unterminated attribute";
			for (const char *c = v; c < end; c++)
				if (*c == '<')
					return "'<' in an attribute";
			r = end + 1;
		}
		bool empty = *r == '/';
		if (empty)
			r++;
		if (*r != '>')
			return "unterminated tag";
		if (close) {
			if (depth == 0 || slen[depth - 1] != n ||
			    strncmp(stack[depth - 1], name, n)) {
				snprintf(why, sizeof why, "mismatched </%.*s>", (int)n, name);
				return why;
			}
			depth--;
		} else if (!empty) {
			if (depth == 0)
				roots++;
			if (depth == 64)
				return "too deep";
			stack[depth] = name;
			slen[depth++] = n;
		} else if (depth == 0)
			roots++;
		q = r + 1;
	}
	if (depth)
		return "unclosed element";
	return roots == 1 ? NULL : "not exactly one root element";
}

/* xml_problem, and xmllint when the machine has it */
static void ck_wellformed(const char *svg)
{
	const char *why = xml_problem(svg);
	ck_assert_msg(!why, "SVG is not well-formed: %s", why);
	if (access("/usr/bin/xmllint", X_OK) != 0)
		return;
	char path[] = "/tmp/nb_plot_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, svg, strlen(svg)), (ssize_t)strlen(svg));
	close(fd);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "/usr/bin/xmllint --noout %s", path);
	int rc = system(cmd);
	unlink(path);
	ck_assert_msg(rc == 0, "xmllint rejected the SVG");
}

/* svg contains every string of the NULL-terminated list */
static void ck_has_all(const char *svg, const char *const *want)
{
	for (; *want; want++)
		ck_assert_msg(strstr(svg, *want) != NULL, "the SVG lacks %s", *want);
}

/* a copy of the group that starts at the first occurrence of tag, up to its
 * </g> (groups are not nested) */
static char *group(const char *svg, const char *tag)
{
	const char *g = strstr(svg, tag);
	ck_assert_msg(g != NULL, "no %s", tag);
	const char *end = strstr(g, "</g>");
	ck_assert_ptr_nonnull(end);
	return strndup(g, (size_t)(end - g));
}

/* number of points in the k-th polyline (0-based) of svg, -1 if none */
static int polyline_points(const char *svg, int k)
{
	const char *q = svg;
	for (int i = 0; i <= k; i++)
		if (!(q = strstr(q, "<polyline")))
			return -1;
		else
			q++;
	q = strstr(q, "points=\"") + 8;
	int n = 1;
	for (; *q != '"'; q++)
		n += *q == ' ';
	return n;
}

/* ---- tick values --------------------------------------------------------- */

static void ck_ticks(double lo, double hi, int max, const double *want, int n)
{
	double t[32];
	int got = nb_nice_ticks(lo, hi, max, t, 32);
	ck_assert_msg(got == n, "ticks(%g, %g, %d): %d ticks, expected %d", lo, hi, max, got, n);
	for (int i = 0; i < n; i++)
		ck_assert_msg(fabs(t[i] - want[i]) <= 1e-12 * fmax(1, fabs(want[i])),
		              "ticks(%g, %g, %d)[%d] = %.17g, expected %g", lo, hi, max, i, t[i],
		              want[i]);
}

START_TEST(test_nice_ticks)
{
	ck_ticks(0, 1, 6, (double[]){0, 0.2, 0.4, 0.6, 0.8, 1}, 6);
	ck_ticks(0, 1, 5, (double[]){0, 0.5, 1}, 3); /* 0.2 gives 6 > 5 */
	ck_ticks(0, 100, 6, (double[]){0, 20, 40, 60, 80, 100}, 6);
	ck_ticks(0, 100, 5, (double[]){0, 50, 100}, 3);
	ck_ticks(-3.7, 12.2, 8, (double[]){-2, 0, 2, 4, 6, 8, 10, 12}, 8);
	ck_ticks(0.001, 0.0095, 5, (double[]){0.002, 0.004, 0.006, 0.008}, 4);
	ck_ticks(-1, 1, 3, (double[]){-1, 0, 1}, 3);
	ck_ticks(1995, 2024, 4, (double[]){2000, 2010, 2020}, 3);
	ck_ticks(-0.3, 0.3, 7, (double[]){-0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3}, 7);
	/* 0 exactly (not -0 or 1e-17) */
	double t[8];
	nb_nice_ticks(-0.3, 0.3, 7, t, 8);
	ck_assert(t[3] == 0 && !signbit(t[3]));
	/* degenerate */
	ck_assert_int_eq(nb_nice_ticks(1, 1, 5, t, 8), 0);
	ck_assert_int_eq(nb_nice_ticks(2, 1, 5, t, 8), 0);
	ck_assert_int_eq(nb_nice_ticks(NAN, 1, 5, t, 8), 0);
	ck_assert_int_eq(nb_nice_ticks(0, INFINITY, 5, t, 8), 0);
	ck_assert_int_eq(nb_nice_ticks(-1e308, 1e308, 5, t, 8), 0); /* span overflows */
	ck_assert_int_eq(nb_nice_ticks(0, 1, 1, t, 8), 0);
	/* a tiny span far from zero: still at most max ticks, inside the range */
	int n = nb_nice_ticks(1e20, 1e20 + 1e7, 5, t, 8);
	ck_assert_int_le(n, 5);
	for (int i = 0; i < n; i++)
		ck_assert(t[i] >= 1e20 && t[i] <= 1e20 + 1e7);
	/* count is returned even when cap is smaller */
	ck_assert_int_eq(nb_nice_ticks(0, 1, 6, t, 2), 6);
}
END_TEST

/* ---- documents ----------------------------------------------------------- */

START_TEST(test_line_plot)
{
	nb_plot *p = nb_plot_new("Loss", "epoch", "loss");
	double x[50], y[50], y2[50];
	for (int i = 0; i < 50; i++) {
		x[i] = i;
		y[i] = 2.0 / (1 + i);
		y2[i] = 1.0 / (1 + i);
	}
	ck_assert_int_eq(nb_plot_line(p, "train", x, y, 50), NB_OK);
	y2[20] = NAN; /* breaks the line in two */
	y2[30] = INFINITY;
	ck_assert_int_eq(nb_plot_line(p, "valid", NULL, y2, 50), NB_OK);
	char *svg = svg_of(p);
	ck_wellformed(svg);
	ck_assert_int_eq(count(svg, "<polyline"), 4);
	ck_assert_int_eq(polyline_points(svg, 0), 50);
	ck_assert_int_eq(polyline_points(svg, 1), 20); /* 0..19 */
	ck_assert_int_eq(polyline_points(svg, 2), 9);  /* 21..29 */
	ck_assert_int_eq(polyline_points(svg, 3), 19); /* 31..49 */
	/* colours in order, a legend with both labels */
	ck_assert_ptr_nonnull(strstr(strstr(svg, "series-0"), "stroke=\"#1f77b4\""));
	ck_assert_ptr_nonnull(strstr(strstr(svg, "series-1"), "stroke=\"#ff7f0e\""));
	ck_assert_ptr_nonnull(strstr(strstr(svg, "class=\"legend\""), ">train</text>"));
	ck_assert_ptr_nonnull(strstr(strstr(svg, "class=\"legend\""), ">valid</text>"));
	/* auto range: x 0..49 -> 0..50 step 10; y 0.02..2 -> 0..2 */
	ck_has_all(svg, (const char *[]){">50</text>", ">2.0</text>", ">0.5</text>", ">Loss</text>",
	                                 ">epoch</text>", "rotate(-90", NULL});
	free(svg);
	nb_plot_free(p);
}
END_TEST

/* A fixed range clips lines exactly at the frame and drops outside markers. */
START_TEST(test_fixed_range_clips)
{
	nb_plot *p = nb_plot_new(NULL, NULL, NULL);
	double x[11], y[11];
	for (int i = 0; i <= 10; i++)
		x[i] = y[i] = i;
	nb_plot_line(p, NULL, x, y, 11);
	nb_plot_scatter(p, "pts", x, y, 11, NB_MARKER_SQUARE);
	ck_assert_int_eq(nb_plot_set_xrange(p, 0, 10), NB_OK);
	ck_assert_int_eq(nb_plot_set_yrange(p, 0, 5), NB_OK);
	char *svg = svg_of(p);
	ck_wellformed(svg);
	ck_assert_int_eq(count(svg, "<polyline"), 1);
	ck_assert_int_eq(polyline_points(svg, 0), 6); /* (0,0) .. (5,5), the last on the edge */
	char *g1 = group(svg, "series-1");
	ck_assert_int_eq(count(g1, "<rect"), 6); /* markers of (0,0) .. (5,5) */
	free(g1);
	/* no coordinate of the line lies outside the frame */
	const char *pts = strstr(svg, "points=\"") + 8;
	double xs, ys, top = 1e9, bottom = -1e9;
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(sscanf(pts, "%lf,%lf", &xs, &ys), 2);
		top = fmin(top, ys), bottom = fmax(bottom, ys);
		pts = strchr(pts, ' ') + 1;
	}
	ck_assert(top >= 16 - 1e-9); /* top of the frame without a title */
	free(svg);
	/* back to automatic: the whole line again */
	nb_plot_set_yrange(p, NAN, NAN);
	svg = svg_of(p);
	ck_assert_int_eq(polyline_points(svg, 0), 11);
	free(svg);
	nb_plot_free(p);
}
END_TEST

START_TEST(test_scatter_markers)
{
	nb_plot *p = nb_plot_new("classes", "x", "y");
	double x[3] = {0, 1, 2}, y[3] = {1, 0, 1};
	const char *kind[NB_MARKER_COUNT] = {"<circle",  "<rect", "<polygon",
	                                     "<polygon", "<path", "<path"};
	for (int m = 0; m < NB_MARKER_COUNT; m++) {
		char label[16];
		snprintf(label, sizeof label, "class %d", m);
		ck_assert_int_eq(nb_plot_scatter(p, label, x, y, 3, (nb_marker)m), NB_OK);
	}
	char *svg = svg_of(p);
	ck_wellformed(svg);
	for (int m = 0; m < NB_MARKER_COUNT; m++) {
		char id[32];
		snprintf(id, sizeof id, "id=\"series-%d\"", m);
		char *g = group(svg, id);
		ck_assert_msg(count(g, kind[m]) == 3, "marker %d: %d of %s", m, count(g, kind[m]),
		              kind[m]);
		free(g);
	}
	/* 6 series -> 6 legend rows, each with its own colour */
	char *legend = group(svg, "class=\"legend\"");
	ck_assert_int_eq(count(legend, "</text>"), 6);
	free(legend);
	ck_assert_ptr_nonnull(strstr(svg, "#8c564b"));
	free(svg);
	ck_assert_int_eq(nb_plot_scatter(p, "bad", x, y, 3, NB_MARKER_COUNT), NB_ERR_ARG);
	ck_assert_int_eq(nb_plot_scatter(p, "bad", NULL, y, 3, NB_MARKER_CIRCLE), NB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(nb_plot_errmsg(p), "x is NULL"));
	nb_plot_free(p);
}
END_TEST

START_TEST(test_escaping)
{
	nb_plot *p = nb_plot_new("a<b & c>\"d'", "bad \x01 byte \xff", "\xce\xbb (lambda)");
	double y[2] = {1, 2};
	nb_plot_line(p, "</text><script>", NULL, y, 2);
	char *svg = svg_of(p);
	ck_wellformed(svg);
	ck_has_all(svg, (const char *[]){">a&lt;b &amp; c&gt;&quot;d&apos;</text>",
	                                 ">bad \xef\xbf\xbd byte \xef\xbf\xbd</text>",
	                                 ">\xce\xbb (lambda)</text>", "&lt;/text&gt;&lt;script&gt;",
	                                 NULL});
	ck_assert_ptr_null(strstr(svg, "<script"));
	free(svg);
	nb_plot_free(p);
}
END_TEST

START_TEST(test_log_y)
{
	nb_plot *p = nb_plot_new("log", NULL, NULL);
	double y[6] = {100, 10, 1, 0, 0.1, 0.01}; /* 0 cannot be shown: skipped */
	nb_plot_line(p, "l", NULL, y, 6);
	ck_assert_int_eq(nb_plot_set_logy(p, true), NB_OK);
	char *svg = svg_of(p);
	ck_wellformed(svg);
	ck_has_all(svg, (const char *[]){">0.01</text>", ">0.1</text>", ">1</text>", ">10</text>",
	                                 ">100</text>", NULL});
	ck_assert_int_eq(count(svg, "<polyline"), 2);
	ck_assert_int_eq(polyline_points(svg, 0), 3);
	ck_assert_int_eq(polyline_points(svg, 1), 2);
	/* decades are equally spaced: y pixel of 100, 10, 1 */
	const char *pts = strstr(svg, "points=\"") + 8;
	double X[3], Y[3];
	for (int i = 0; i < 3; i++) {
		sscanf(pts, "%lf,%lf", &X[i], &Y[i]);
		pts = strchr(pts, ' ') + 1;
	}
	ck_near(Y[1] - Y[0], Y[2] - Y[1], 0.011);
	free(svg);
	/* within one decade: 2 and 5 as well */
	nb_plot_set_yrange(p, 1.5, 6);
	svg = svg_of(p);
	ck_has_all(svg, (const char *[]){">2</text>", ">5</text>", NULL});
	free(svg);
	/* a non-positive fixed range cannot be drawn on a log axis */
	nb_plot_set_yrange(p, -1, 1);
	FILE *fp = fopen("/dev/null", "w");
	ck_assert_int_eq(nb_plot_write(p, fp), NB_ERR_ARG);
	fclose(fp);
	ck_assert_ptr_nonnull(strstr(nb_plot_errmsg(p), "positive range"));
	nb_plot_free(p);
}
END_TEST

START_TEST(test_empty_and_errors)
{
	nb_plot *p = nb_plot_new(NULL, NULL, NULL);
	char *svg = svg_of(p);
	ck_wellformed(svg);
	ck_assert_int_eq(count(svg, "<polyline"), 0);
	ck_assert_ptr_null(strstr(svg, "legend"));
	ck_has_all(svg, (const char *[]){">0.0</text>", ">1.0</text>", NULL}); /* axes 0..1 */
	free(svg);
	/* only NaN: still an empty, valid plot */
	double nan2[2] = {NAN, NAN};
	nb_plot_line(p, "nothing", nan2, nan2, 2);
	svg = svg_of(p);
	ck_wellformed(svg);
	ck_assert_int_eq(count(svg, "<polyline"), 0);
	free(svg);
	ck_assert_int_eq(nb_plot_set_xrange(p, 1, 1), NB_ERR_ARG);
	ck_assert_int_eq(nb_plot_set_xrange(p, 0, INFINITY), NB_ERR_ARG);
	ck_assert_int_eq(nb_plot_set_size(p, 10, 10), NB_ERR_ARG);
	ck_assert_int_eq(nb_plot_line(p, "x", NULL, NULL, 3), NB_ERR_ARG);
	ck_assert_int_eq(nb_plot_line(p, "x", NULL, NULL, 0), NB_OK);
	ck_assert_int_eq(nb_plot_save(p, "/nonexistent/dir/p.svg"), NB_ERR_IO);
	ck_assert_ptr_nonnull(strstr(nb_plot_errmsg(p), "/nonexistent/dir/p.svg: cannot create"));
	ck_assert_int_eq(nb_plot_line(NULL, "x", NULL, NULL, 0), NB_ERR_ARG);
	ck_assert_int_eq(nb_plot_save(NULL, "x"), NB_ERR_ARG);
	/* a file on disk */
	char path[] = "/tmp/nb_plot_XXXXXX";
	close(mkstemp(path));
	ck_assert_int_eq(nb_plot_set_size(p, 800, 300), NB_OK);
	ck_assert_int_eq(nb_plot_save(p, path), NB_OK);
	FILE *fp = fopen(path, "r");
	char head[256] = "";
	ck_assert_uint_gt(fread(head, 1, sizeof head - 1, fp), 100);
	fclose(fp);
	unlink(path);
	ck_assert_ptr_nonnull(strstr(head, "width=\"800\" height=\"300\""));
	nb_plot_free(p);
	nb_plot_free(NULL);
	/* finite data whose range is not a double: refused, not a flat line
	 * with no ticks; with the range set by hand it draws */
	p = nb_plot_new(NULL, NULL, NULL);
	double t[3] = {1, 2, 3}, big[3] = {1e308, -1e308, 1.7e308};
	ck_assert_int_eq(nb_plot_line(p, "big", t, big, 3), NB_OK);
	char *buf = NULL;
	size_t len = 0;
	fp = open_memstream(&buf, &len);
	ck_assert_int_eq(nb_plot_write(p, fp), NB_ERR_ARG);
	fclose(fp);
	free(buf);
	ck_assert_ptr_nonnull(strstr(nb_plot_errmsg(p), "the y values span -1e+308 to 1.7e+308"));
	ck_assert_int_eq(nb_plot_set_yrange(p, -1e307, 1e307), NB_OK);
	svg = svg_of(p);
	ck_wellformed(svg);
	free(svg);
	nb_plot_free(p);
}
END_TEST

/* nb_plot_save writes atomically: through a symbolic link the target gets
 * the plot and the link stays; what a killed save left for the same file
 * (<file>.tmp.<pid>.XXXXXX of a dead pid) is removed. */
START_TEST(test_save_atomic)
{
	char dir[] = "/tmp/nb_plot_XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	pid_t dead = fork();
	ck_assert_int_ge(dead, 0);
	if (dead == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
	char stale[200], link[200], target[200], buf[64];
	snprintf(stale, sizeof stale, "%s/p.svg.tmp.%d.Ab12Cd", dir, (int)dead);
	snprintf(link, sizeof link, "%s/l.svg", dir);
	snprintf(target, sizeof target, "%s/p.svg", dir);
	FILE *fp = fopen(stale, "w");
	ck_assert_ptr_nonnull(fp);
	fclose(fp);
	ck_assert_int_eq(symlink("p.svg", link), 0);
	nb_plot *p = nb_plot_new("atomic", "x", "y");
	double x[2] = {0, 1}, y[2] = {1, 2};
	ck_assert_int_eq(nb_plot_line(p, "a", x, y, 2), NB_OK);
	ck_assert_msg(nb_plot_save(p, link) == NB_OK, "%s", nb_plot_errmsg(p));
	ssize_t n = readlink(link, buf, sizeof buf - 1);
	ck_assert_int_eq(n, 5);
	buf[n] = 0;
	ck_assert_str_eq(buf, "p.svg");
	fp = fopen(target, "r");
	ck_assert_ptr_nonnull(fp);
	char head[128] = "";
	ck_assert_uint_gt(fread(head, 1, sizeof head - 1, fp), 20);
	fclose(fp);
	ck_assert_ptr_nonnull(strstr(head, "<svg"));
	ck_assert_int_ne(access(stale, F_OK), 0);
	/* a special file is written as it is, not replaced */
	ck_assert_int_eq(nb_plot_save(p, "/dev/null"), NB_OK);
	struct stat sb;
	ck_assert(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode));
	nb_plot_free(p);
	unlink(target), unlink(link);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* ---- markers on lines, integer ticks, stacked panels ----------------------- */

START_TEST(test_line_markers)
{
	nb_plot *p = nb_plot_new(NULL, NULL, NULL);
	double x[3] = {1, 2, 3}, y[3] = {0.5, 0.25, 0.125};
	ck_assert_int_eq(nb_plot_line_markers(p, "loss", x, y, 3, NB_MARKER_CIRCLE), NB_OK);
	ck_assert_int_eq(nb_plot_line_markers(p, "one", x, y, 1, NB_MARKER_SQUARE), NB_OK);
	ck_assert_int_eq(nb_plot_line_markers(p, "bad", x, y, 1, NB_MARKER_COUNT), NB_ERR_ARG);
	char *svg = svg_of(p);
	ck_wellformed(svg);
	char *g0 = group(svg, "id=\"series-0\""), *g1 = group(svg, "id=\"series-1\"");
	/* the line and a marker per point, in the line's colour */
	ck_assert_int_eq(count(g0, "<polyline"), 1);
	ck_assert_int_eq(polyline_points(g0, 0), 3);
	ck_assert_int_eq(count(g0, "<circle"), 3);
	ck_assert_int_eq(count(g0, "#1f77b4"), 4);
	/* one point: no line, but its marker */
	ck_assert_int_eq(count(g1, "<polyline"), 0);
	ck_assert_int_eq(count(g1, "<rect"), 1);
	/* the legend shows line and marker */
	char *leg = group(svg, "class=\"legend\"");
	ck_assert_int_eq(count(leg, "<circle"), 1);
	free(g0), free(g1), free(leg), free(svg);
	nb_plot_free(p);
}
END_TEST

/* the x tick labels of a plot, joined by '|' */
static void x_ticks(nb_plot *p, char *out, size_t n)
{
	char *svg = svg_of(p);
	out[0] = 0;
	/* x labels are the text elements right after a vertical grid line */
	for (const char *q = svg; (q = strstr(q, "stroke=\"#e0e0e0\"/>\n<text"));) {
		q = strchr(q + 20, '>') + 1;
		const char *e = strchr(q, '<');
		const char *prev = q - 1;
		while (prev > svg && *prev != '\n')
			prev--;
		if (strstr(prev, "text-anchor=\"middle\"") &&
		    strstr(prev, "text-anchor=\"middle\"") < e)
			snprintf(out + strlen(out), n - strlen(out), "%.*s|", (int)(e - q), q);
	}
	free(svg);
}

START_TEST(test_integer_ticks)
{
	double x[3] = {1, 2, 3}, y[3] = {3, 1, 2};
	char t[256];
	nb_plot *p = nb_plot_new(NULL, "epoch", NULL);
	nb_plot_line(p, NULL, x, y, 3);
	x_ticks(p, t, sizeof t);
	ck_assert_msg(strstr(t, "1.5|"), "fractional ticks expected by default: %s", t);
	ck_assert_int_eq(nb_plot_set_xinteger(p, true), NB_OK);
	x_ticks(p, t, sizeof t);
	ck_assert_str_eq(t, "1|2|3|");
	nb_plot_free(p);
	/* one point: 0, 1, 2 around it */
	p = nb_plot_new(NULL, "epoch", NULL);
	nb_plot_line_markers(p, NULL, x, y, 1, NB_MARKER_CIRCLE);
	nb_plot_set_xinteger(p, true);
	x_ticks(p, t, sizeof t);
	ck_assert_str_eq(t, "0|1|2|");
	nb_plot_free(p);
	/* a long run keeps round steps above 1 */
	double lx[200], ly[200];
	for (int i = 0; i < 200; i++)
		lx[i] = i + 1, ly[i] = 1.0 / (i + 1);
	p = nb_plot_new(NULL, "epoch", NULL);
	nb_plot_line(p, NULL, lx, ly, 200);
	nb_plot_set_xinteger(p, true);
	x_ticks(p, t, sizeof t);
	ck_assert_msg(!strstr(t, ".") && strstr(t, "100|"), "%s", t);
	nb_plot_free(p);
	ck_assert_int_eq(nb_plot_set_xinteger(NULL, true), NB_ERR_ARG);
}
END_TEST

START_TEST(test_stacked_panels)
{
	double x[2] = {1, 2}, y[2] = {1, 0.5};
	nb_plot *p[2] = {nb_plot_new("top", NULL, "loss"), nb_plot_new(NULL, "epoch", "accuracy")};
	nb_plot_line(p[0], "a", x, y, 2);
	nb_plot_line(p[0], "b", x, y, 2);
	nb_plot_line(p[1], "c", x, y, 2);
	nb_plot_set_size(p[0], 500, 300);
	nb_plot_set_size(p[1], 640, 200);
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	ck_assert_int_eq(nb_plot_write_stack(p, 2, fp), NB_OK);
	fclose(fp);
	ck_wellformed(buf);
	static const char *const want[] = {"width=\"640\" height=\"500\"",
	                                   "id=\"panel-0\" transform=\"translate(0 0)\"",
	                                   "id=\"panel-1\" transform=\"translate(0 300)\"",
	                                   "id=\"panel-0-series-1\"",
	                                   "id=\"panel-1-series-0\"",
	                                   ">top</text>",
	                                   ">accuracy</text>",
	                                   NULL};
	ck_has_all(buf, want);
	ck_assert_int_eq(count(buf, "id=\"series-"), 0);
	ck_assert_int_eq(count(buf, "<?xml"), 1);
	ck_assert_int_eq(count(buf, "<svg"), 1);
	free(buf);
	/* saved atomically like one plot; errors name the file */
	char path[] = "/tmp/nb_stack_XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(path));
	char file[128];
	snprintf(file, sizeof file, "%s/s.svg", path);
	ck_assert_int_eq(nb_plot_save_stack(p, 2, file), NB_OK);
	struct stat sb;
	ck_assert_int_eq(stat(file, &sb), 0);
	ck_assert_int_gt(sb.st_size, 1000);
	unlink(file);
	snprintf(file, sizeof file, "%s/missing/s.svg", path);
	ck_assert_int_eq(nb_plot_save_stack(p, 2, file), NB_ERR_IO);
	ck_assert_msg(strstr(nb_plot_errmsg(p[0]), file), "%s", nb_plot_errmsg(p[0]));
	rmdir(path);
	nb_plot *bad[2] = {p[0], NULL};
	fp = fopen("/dev/null", "w");
	ck_assert_int_eq(nb_plot_write_stack(bad, 2, fp), NB_ERR_ARG);
	ck_assert_str_eq(nb_plot_errmsg(p[0]), "nb_plot_write_stack: plot 1 is NULL");
	ck_assert_int_eq(nb_plot_write_stack(p, 0, fp), NB_ERR_ARG);
	fclose(fp);
	nb_plot_free(p[0]);
	nb_plot_free(p[1]);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("plot");
	TCase *tc = tcase_create("plot");
	tcase_add_test(tc, test_nice_ticks);
	tcase_add_test(tc, test_line_plot);
	tcase_add_test(tc, test_fixed_range_clips);
	tcase_add_test(tc, test_scatter_markers);
	tcase_add_test(tc, test_escaping);
	tcase_add_test(tc, test_log_y);
	tcase_add_test(tc, test_empty_and_errors);
	tcase_add_test(tc, test_save_atomic);
	tcase_add_test(tc, test_line_markers);
	tcase_add_test(tc, test_integer_ticks);
	tcase_add_test(tc, test_stacked_panels);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
