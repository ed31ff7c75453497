/*
 * SVG plots: line and scatter series, legend, round axis ticks, log-y.
 *
 * The picture is computed in pixels and written as plain SVG 1.1 (no
 * scripts, no external fonts; "sans-serif" text).  Lines are clipped to the
 * plot area exactly (Liang-Barsky), so a fixed range never leaves stray
 * strokes or enormous coordinates in the file.  Coordinates are written
 * without printf's locale-dependent decimal point.
 */
#include "graph/internal.h"
#include "io/wfile.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct series {
	char *label;
	double *x, *y; /* x NULL: 0, 1, ..., n-1 */
	size_t n;
	bool scatter;
	bool markers; /* a line with a marker at each point */
	nb_marker marker;
} series;

struct nb_plot {
	char *title, *xlabel, *ylabel;
	series *s;
	int n, cap;
	double xlo, xhi, ylo, yhi; /* NaN: automatic */
	bool logy;
	bool xinteger; /* x ticks at integers only */
	int width, height;
	char err[256];
};

/* Tableau 10: distinct, and legible on white */
static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define N_COLOURS ((int)(sizeof palette / sizeof palette[0]))

enum { MAX_TICKS = 32, FONT = 12, TITLE_FONT = 16 };

static nb_status perr(nb_plot *p, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static nb_status perr(nb_plot *p, nb_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof p->err, fmt, ap);
	va_end(ap);
	return st;
}

static bool dup_text(char **dst, const char *s)
{
	*dst = s ? strdup(s) : NULL;
	return !s || *dst;
}

nb_plot *nb_plot_new(const char *title, const char *xlabel, const char *ylabel)
{
	nb_plot *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->xlo = p->xhi = p->ylo = p->yhi = NAN;
	p->width = 640;
	p->height = 420;
	if (!dup_text(&p->title, title) || !dup_text(&p->xlabel, xlabel) ||
	    !dup_text(&p->ylabel, ylabel)) {
		nb_plot_free(p);
		return NULL;
	}
	return p;
}

void nb_plot_free(nb_plot *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++) {
		free(p->s[i].label);
		free(p->s[i].x);
		free(p->s[i].y);
	}
	free(p->s);
	free(p->title);
	free(p->xlabel);
	free(p->ylabel);
	free(p);
}

const char *nb_plot_errmsg(const nb_plot *p)
{
	return p ? p->err : "plot is NULL";
}

static double *copy(const double *v, size_t n)
{
	double *d = malloc(sizeof *d * (n ? n : 1));
	if (d && n)
		memcpy(d, v, sizeof *d * n);
	return d;
}

static nb_status add_series(nb_plot *p, const char *what, const char *label, const double *x,
                            const double *y, size_t n, bool scatter, nb_marker marker)
{
	if (!p)
		return NB_ERR_ARG;
	p->err[0] = 0;
	if (n && (!y || (scatter && !x)))
		return perr(p, NB_ERR_ARG, "%s(%s): %s is NULL", what, label ? label : "",
		            !y ? "y" : "x");
	if ((unsigned)marker >= NB_MARKER_COUNT)
		return perr(p, NB_ERR_ARG, "%s(%s): unknown marker %d", what, label ? label : "",
		            (int)marker);
	if (p->n == p->cap) {
		int nc = p->cap ? 2 * p->cap : 8;
		series *s = realloc(p->s, sizeof *s * (size_t)nc);
		if (!s)
			return perr(p, NB_ERR_NOMEM, "%s: out of memory", what);
		p->s = s;
		p->cap = nc;
	}
	series s = {.n = n, .scatter = scatter, .marker = marker};
	if (!dup_text(&s.label, label) || !(s.y = copy(y, n)) || (x && !(s.x = copy(x, n)))) {
		free(s.label);
		free(s.y);
		return perr(p, NB_ERR_NOMEM, "%s: out of memory for %zu points", what, n);
	}
	p->s[p->n++] = s;
	return NB_OK;
}

nb_status nb_plot_line(nb_plot *p, const char *label, const double *x, const double *y, size_t n)
{
	return add_series(p, "nb_plot_line", label, x, y, n, false, NB_MARKER_CIRCLE);
}

nb_status nb_plot_scatter(nb_plot *p, const char *label, const double *x, const double *y, size_t n,
                          nb_marker marker)
{
	return add_series(p, "nb_plot_scatter", label, x, y, n, true, marker);
}

nb_status nb_plot_line_markers(nb_plot *p, const char *label, const double *x, const double *y,
                               size_t n, nb_marker marker)
{
	nb_status st = add_series(p, "nb_plot_line_markers", label, x, y, n, false, marker);
	if (!st)
		p->s[p->n - 1].markers = true;
	return st;
}

nb_status nb_plot_set_xinteger(nb_plot *p, bool integer)
{
	if (!p)
		return NB_ERR_ARG;
	p->xinteger = integer;
	return NB_OK;
}

static nb_status set_range(nb_plot *p, const char *what, double lo, double hi, double *dlo,
                           double *dhi)
{
	if (!p)
		return NB_ERR_ARG;
	p->err[0] = 0;
	if (isnan(lo) && isnan(hi)) {
		*dlo = *dhi = NAN;
		return NB_OK;
	}
	if (!isfinite(lo) || !isfinite(hi) || !(lo < hi) || !isfinite(hi - lo))
		return perr(p, NB_ERR_ARG, "%s: range [%g, %g] is not finite and increasing", what,
		            lo, hi);
	*dlo = lo;
	*dhi = hi;
	return NB_OK;
}

nb_status nb_plot_set_xrange(nb_plot *p, double lo, double hi)
{
	return set_range(p, "nb_plot_set_xrange", lo, hi, p ? &p->xlo : NULL, p ? &p->xhi : NULL);
}

nb_status nb_plot_set_yrange(nb_plot *p, double lo, double hi)
{
	return set_range(p, "nb_plot_set_yrange", lo, hi, p ? &p->ylo : NULL, p ? &p->yhi : NULL);
}

nb_status nb_plot_set_logy(nb_plot *p, bool logy)
{
	if (!p)
		return NB_ERR_ARG;
	p->logy = logy;
	return NB_OK;
}

nb_status nb_plot_set_size(nb_plot *p, int width, int height)
{
	if (!p)
		return NB_ERR_ARG;
	if (width < 120 || height < 100 || width > 20000 || height > 20000)
		return perr(p, NB_ERR_ARG,
		            "nb_plot_set_size: %d x %d is outside 120x100 .. 20000x20000", width,
		            height);
	p->width = width;
	p->height = height;
	return NB_OK;
}

/* ---- ticks ------------------------------------------------------------------ */

/* The i-th candidate step above base: 1, 2, 5, 10, 20, 50, ... x base. */
static double nth_step(double base, int i)
{
	static const double m[3] = {1, 2, 5};
	return m[i % 3] * base * pow(10, i / 3);
}

/* Multiples k*step in [lo, hi]: k from *k0, *count of them.  Fails when the
 * multipliers are too large for a double to count exactly. */
static bool multiples(double lo, double hi, double step, double *k0, double *count)
{
	double a = ceil(lo / step - 1e-9), b = floor(hi / step + 1e-9);
	if (!isfinite(a) || !isfinite(b) || fabs(a) > 1e15 || fabs(b) > 1e15)
		return false;
	*k0 = a;
	*count = b >= a ? b - a + 1 : 0;
	return true;
}

/* The smallest round step with at most max multiples in [lo, hi]. */
static bool nice_step(double lo, double hi, int max, double *step, double *k0, double *count)
{
	if (!isfinite(lo) || !isfinite(hi) || !(lo < hi) || !isfinite(hi - lo) || max < 2)
		return false;
	double base = pow(10, floor(log10((hi - lo) / max)));
	for (int i = 0; i < 64; i++) {
		*step = nth_step(base, i);
		if (multiples(lo, hi, *step, k0, count) && *count <= max)
			return true;
	}
	return false;
}

int nb_nice_ticks(double lo, double hi, int max_ticks, double *ticks, int cap)
{
	double step, k0, count;
	if (!nice_step(lo, hi, max_ticks, &step, &k0, &count))
		return 0;
	for (int k = 0; k < (int)count && k < cap && ticks; k++) {
		double v = (k0 + k) * step;
		ticks[k] = fabs(v) < step * 1e-9 ? 0 : v; /* no -0 or 1e-17 */
	}
	return (int)count;
}

/* Widen [lo, hi] to multiples of the step of its ticks. */
static void nice_range(double *lo, double *hi, int max)
{
	if (!isfinite(*hi - *lo))
		return;
	double base = pow(10, floor(log10((*hi - *lo) / max)));
	for (int i = 0; i < 64; i++) {
		double step = nth_step(base, i);
		double a = floor(*lo / step + 1e-9), b = ceil(*hi / step - 1e-9);
		if (fabs(a) > 1e15 || fabs(b) > 1e15)
			return;
		if (b - a + 1 <= max) {
			double nlo = a * step, nhi = b * step;
			if (isfinite(nlo) && isfinite(nhi) && nlo < nhi) {
				*lo = nlo;
				*hi = nhi;
			}
			return;
		}
	}
}

/* Decades 10^k in [lo, hi] (every stride-th if too many); within one
 * decade also 2 and 5 x 10^k. */
static int log_ticks(double lo, double hi, int max, double *t)
{
	int k0 = (int)ceil(log10(lo) - 1e-9), k1 = (int)floor(log10(hi) + 1e-9), n = 0;
	int stride = (k1 - k0 + 1 + max - 1) / max;
	if (stride < 1)
		stride = 1;
	if (k1 - k0 + 1 >= 2) {
		for (int k = k0; k <= k1 && n < MAX_TICKS; k++)
			if ((k - k0) % stride == 0)
				t[n++] = pow(10, k);
		return n;
	}
	for (int k = k0 - 1; k <= k1 && n < MAX_TICKS; k++)
		for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
			double v = m * pow(10, k);
			if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9))
				t[n++] = v;
		}
	return n;
}

/* ---- layout ----------------------------------------------------------------- */

typedef struct axis {
	double lo, hi; /* data units */
	bool log;
	double t[MAX_TICKS];
	int nt;
	char lab[MAX_TICKS][32];
} axis;

/* map a value to [0, 1] along the axis (may fall outside) */
static double unit(const axis *a, double v)
{
	if (a->log)
		return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
	return (v - a->lo) / (a->hi - a->lo);
}

static bool point(const nb_plot *p, const series *s, size_t i, double *x, double *y)
{
	*x = s->x ? s->x[i] : (double)i;
	*y = s->y[i];
	return isfinite(*x) && isfinite(*y) && (!p->logy || *y > 0);
}

static bool data_range(const nb_plot *p, bool yaxis, double *lo, double *hi)
{
	bool any = false;
	for (int k = 0; k < p->n; k++)
		for (size_t i = 0; i < p->s[k].n; i++) {
			double x, y;
			if (!point(p, &p->s[k], i, &x, &y))
				continue;
			double v = yaxis ? y : x;
			if (!any || v < *lo)
				*lo = v;
			if (!any || v > *hi)
				*hi = v;
			any = true;
		}
	return any;
}

/* Tick labels: as many decimals as the step needs; %g for extreme sizes.
 * A ',' from a locale's decimal point becomes '.'. */
static void label_ticks(axis *a)
{
	double step = a->nt > 1 ? a->t[1] - a->t[0] : 1, big = 0;
	for (int i = 0; i < a->nt; i++)
		big = fmax(big, fabs(a->t[i]));
	for (int i = 0; i < a->nt; i++) {
		char *b = a->lab[i];
		if (a->log)
			snprintf(b, sizeof a->lab[i], "%g", a->t[i]);
		else if (big >= 1e6 || step < 1e-4) {
			int sig = (int)(floor(log10(fmax(big, step))) - floor(log10(step))) + 1;
			snprintf(b, sizeof a->lab[i], "%.*g",
			         sig < 1    ? 1
			         : sig > 15 ? 15
			                    : sig,
			         a->t[i]);
		} else {
			int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
			snprintf(b, sizeof a->lab[i], "%.*f", dec, a->t[i]);
		}
		for (char *c = b; *c; c++)
			if (*c == ',')
				*c = '.';
	}
}

static void setup_axis(const nb_plot *p, axis *a, bool yaxis, int max)
{
	double flo = yaxis ? p->ylo : p->xlo, fhi = yaxis ? p->yhi : p->xhi, lo = 0, hi = 1;
	a->log = yaxis && p->logy;
	if (!isnan(flo)) {
		lo = flo, hi = fhi;
	} else if (data_range(p, yaxis, &lo, &hi)) {
		if (a->log) {
			lo = pow(10, floor(log10(lo)));
			hi = pow(10, ceil(log10(hi)));
			if (!(hi > lo))
				hi = lo * 10;
			if (!isfinite(hi) || lo == 0)
				lo = 1, hi = 10;
		} else {
			if (lo == hi) {
				double d = lo == 0 || (!yaxis && p->xinteger) ? 1 : fabs(lo) * 0.1;
				lo -= d, hi += d;
			}
			nice_range(&lo, &hi, max);
		}
	} else if (a->log) {
		lo = 1, hi = 10;
	}
	a->lo = lo;
	a->hi = hi;
	a->nt = a->log ? log_ticks(lo, hi, max, a->t) : nb_nice_ticks(lo, hi, max, a->t, MAX_TICKS);
	if (a->nt > MAX_TICKS)
		a->nt = MAX_TICKS;
	/* integer ticks: a step below 1 becomes 1 (no more ticks than before) */
	if (!yaxis && p->xinteger && (a->nt < 2 || a->t[1] - a->t[0] < 1) && isfinite(lo) &&
	    isfinite(hi) && fabs(lo) < 1e15 && fabs(hi) < 1e15) {
		a->nt = 0;
		for (double v = ceil(lo); v <= hi && a->nt < MAX_TICKS; v++)
			a->t[a->nt++] = v;
	}
	label_ticks(a);
}

/* Display width of UTF-8 text in pixels, roughly (0.6 em per character). */
static double text_width(const char *s, double font)
{
	size_t n = 0;
	for (; s && *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return (double)n * font * 0.6;
}

/* ---- output ------------------------------------------------------------------ */

/* A coordinate with two decimals, independent of the locale. */
static const char *num(char *buf, double v)
{
	long long c = llround(v * 100);
	const char *sign = c < 0 ? "-" : "";
	c = llabs(c);
	if (c % 100)
		snprintf(buf, 32, "%s%lld.%02lld", sign, c / 100, c % 100);
	else
		snprintf(buf, 32, "%s%lld", c ? sign : "", c / 100);
	return buf;
}

/* XML character data: markup characters escaped; malformed UTF-8 and the
 * control characters XML 1.0 forbids become U+FFFD. */
static void xml_text(FILE *fp, const char *s)
{
	nb__markup_text(fp, s, strlen(s), "\xef\xbf\xbd", NB_MARKUP_APOS | NB_MARKUP_KEEP_SPACE);
}

static void text(FILE *fp, double x, double y, const char *anchor, int size, const char *extra,
                 const char *s)
{
	char a[32], b[32];
	fprintf(fp, "<text x=\"%s\" y=\"%s\" text-anchor=\"%s\" font-size=\"%d\"%s>", num(a, x),
	        num(b, y), anchor, size, extra);
	xml_text(fp, s);
	fputs("</text>\n", fp);
}

static void draw_marker(FILE *fp, nb_marker m, double cx, double cy, double r, const char *col)
{
	char a[32], b[32], c[32], d[32], e[32], f[32];
	switch (m) {
	case NB_MARKER_CIRCLE:
		fprintf(fp, "<circle cx=\"%s\" cy=\"%s\" r=\"%s\" fill=\"%s\"/>\n", num(a, cx),
		        num(b, cy), num(c, r), col);
		break;
	case NB_MARKER_SQUARE:
		fprintf(fp, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"%s\"/>\n",
		        num(a, cx - 0.85 * r), num(b, cy - 0.85 * r), num(c, 1.7 * r),
		        num(d, 1.7 * r), col);
		break;
	case NB_MARKER_TRIANGLE:
		fprintf(fp, "<polygon points=\"%s,%s %s,%s %s,%s\" fill=\"%s\"/>\n", num(a, cx),
		        num(b, cy - 1.2 * r), num(c, cx + 1.04 * r), num(d, cy + 0.6 * r),
		        num(e, cx - 1.04 * r), num(f, cy + 0.6 * r), col);
		break;
	case NB_MARKER_DIAMOND:
		fprintf(fp, "<polygon points=\"%s,%s %s,%s %s,%s ", num(a, cx),
		        num(b, cy - 1.2 * r), num(c, cx + 1.2 * r), num(d, cy), num(e, cx),
		        num(f, cy + 1.2 * r));
		fprintf(fp, "%s,%s\" fill=\"%s\"/>\n", num(a, cx - 1.2 * r), num(b, cy), col);
		break;
	case NB_MARKER_CROSS:
	case NB_MARKER_PLUS: {
		double dx = m == NB_MARKER_CROSS ? r : 0, dy = m == NB_MARKER_CROSS ? r : 1.2 * r;
		double ex = m == NB_MARKER_CROSS ? r : 1.2 * r, ey = m == NB_MARKER_CROSS ? -r : 0;
		fprintf(fp, "<path d=\"M%s %sL%s %s", num(a, cx - dx), num(b, cy - dy),
		        num(c, cx + dx), num(d, cy + dy));
		fprintf(fp, "M%s %sL%s %s\" stroke=\"%s\" stroke-width=\"2\" fill=\"none\"/>\n",
		        num(a, cx - ex), num(b, cy - ey), num(c, cx + ex), num(d, cy + ey), col);
		break;
	}
	default:
		break;
	}
}

typedef struct frame {
	double left, top, w, h; /* plot area in pixels */
	axis x, y;
} frame;

static double px(const frame *f, double x)
{
	return f->left + fmin(fmax(unit(&f->x, x), -1e9), 1e9) * f->w;
}

static double py(const frame *f, double y)
{
	return f->top + (1 - fmin(fmax(unit(&f->y, y), -1e9), 1e9)) * f->h;
}

/* Clip segment (x0,y0)-(x1,y1) to the plot area (Liang-Barsky). */
static bool clip(const frame *f, double *x0, double *y0, double *x1, double *y1)
{
	double t0 = 0, t1 = 1, dx = *x1 - *x0, dy = *y1 - *y0;
	double pp[4] = {-dx, dx, -dy, dy};
	double q[4] = {*x0 - f->left, f->left + f->w - *x0, *y0 - f->top, f->top + f->h - *y0};
	for (int i = 0; i < 4; i++) {
		if (pp[i] == 0) {
			if (q[i] < 0)
				return false;
			continue;
		}
		double r = q[i] / pp[i];
		if (pp[i] < 0) {
			if (r > t1)
				return false;
			t0 = fmax(t0, r);
		} else {
			if (r < t0)
				return false;
			t1 = fmin(t1, r);
		}
	}
	if (t0 == t1 && (dx != 0 || dy != 0))
		return false; /* touches a corner or edge only */
	double ax = *x0 + t0 * dx, ay = *y0 + t0 * dy;
	*x1 = *x0 + t1 * dx;
	*y1 = *y0 + t1 * dy;
	*x0 = ax;
	*y0 = ay;
	return true;
}

static void flush_line(FILE *fp, const double *pts, size_t n, const char *col)
{
	char a[32], b[32];
	if (n < 2)
		return;
	fprintf(fp,
	        "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
	        "stroke-linejoin=\"round\" stroke-linecap=\"round\" points=\"",
	        col);
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "%s%s,%s", i ? " " : "", num(a, pts[2 * i]), num(b, pts[2 * i + 1]));
	fputs("\"/>\n", fp);
}

/* A line: consecutive valid points joined, clipped, split where a point is
 * invalid or the line leaves the plot area. */
static nb_status draw_line(FILE *fp, const nb_plot *p, const frame *f, const series *s,
                           const char *col)
{
	double *pts = malloc(sizeof *pts * 2 * (s->n + 1));
	size_t m = 0;
	double lx = 0, ly = 0;
	bool have = false;
	if (!pts)
		return NB_ERR_NOMEM;
	for (size_t i = 0; i < s->n; i++) {
		double x, y;
		if (!point(p, s, i, &x, &y)) {
			flush_line(fp, pts, m, col);
			m = 0;
			have = false;
			continue;
		}
		double X = px(f, x), Y = py(f, y);
		if (have) {
			double x0 = lx, y0 = ly, x1 = X, y1 = Y;
			if (clip(f, &x0, &y0, &x1, &y1)) {
				if (m == 0 || fabs(pts[2 * m - 2] - x0) > 1e-9 ||
				    fabs(pts[2 * m - 1] - y0) > 1e-9) {
					flush_line(fp, pts, m, col);
					pts[0] = x0, pts[1] = y0, m = 1;
				}
				pts[2 * m] = x1, pts[2 * m + 1] = y1, m++;
			}
		}
		lx = X, ly = Y, have = true;
	}
	flush_line(fp, pts, m, col);
	free(pts);
	return NB_OK;
}

static void draw_scatter(FILE *fp, const nb_plot *p, const frame *f, const series *s,
                         const char *col)
{
	for (size_t i = 0; i < s->n; i++) {
		double x, y;
		if (!point(p, s, i, &x, &y))
			continue;
		double X = px(f, x), Y = py(f, y);
		if (X >= f->left - 1e-6 && X <= f->left + f->w + 1e-6 && Y >= f->top - 1e-6 &&
		    Y <= f->top + f->h + 1e-6)
			draw_marker(fp, s->marker, X, Y, 4, col);
	}
}

static void draw_axes(FILE *fp, const frame *f)
{
	char a[32], b[32], c[32], d[32];
	for (int i = 0; i < f->x.nt; i++) {
		double X = px(f, f->x.t[i]);
		fprintf(fp, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"#e0e0e0\"/>\n",
		        num(a, X), num(b, f->top), num(c, X), num(d, f->top + f->h + 5));
		text(fp, X, f->top + f->h + 8 + FONT, "middle", FONT, "", f->x.lab[i]);
	}
	for (int i = 0; i < f->y.nt; i++) {
		double Y = py(f, f->y.t[i]);
		fprintf(fp, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"#e0e0e0\"/>\n",
		        num(a, f->left - 5), num(b, Y), num(c, f->left + f->w), num(d, Y));
		text(fp, f->left - 8, Y + FONT * 0.35, "end", FONT, "", f->y.lab[i]);
	}
	fprintf(fp,
	        "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"none\" "
	        "stroke=\"#333333\"/>\n",
	        num(a, f->left), num(b, f->top), num(c, f->w), num(d, f->h));
}

/* The corner of the plot area (top right, top left, bottom right, bottom
 * left: the first of the least crowded) where a bw x bh legend hides the
 * fewest data points. */
static void legend_corner(const nb_plot *p, const frame *f, double bw, double bh, double *x0,
                          double *y0)
{
	long best = -1;
	for (int c = 0; c < 4; c++) {
		double cx = c % 2 ? f->left + 8 : f->left + f->w - bw - 8;
		double cy = c < 2 ? f->top + 8 : f->top + f->h - bh - 8;
		long hidden = 0;
		for (int k = 0; k < p->n; k++)
			for (size_t i = 0; i < p->s[k].n; i++) {
				double x, y;
				if (!point(p, &p->s[k], i, &x, &y))
					continue;
				double X = px(f, x), Y = py(f, y);
				hidden += X >= cx && X <= cx + bw && Y >= cy && Y <= cy + bh;
			}
		if (best < 0 || hidden < best) {
			best = hidden;
			*x0 = cx;
			*y0 = cy;
		}
	}
}

static void draw_legend(FILE *fp, const nb_plot *p, const frame *f)
{
	char a[32], b[32], c[32], d[32];
	int rows = 0;
	double wmax = 0;
	for (int k = 0; k < p->n; k++)
		if (p->s[k].label && p->s[k].label[0]) {
			rows++;
			wmax = fmax(wmax, text_width(p->s[k].label, FONT));
		}
	if (!rows)
		return;
	double bw = 44 + wmax, bh = 8 + 18.0 * rows, x0 = 0, y0 = 0;
	legend_corner(p, f, bw, bh, &x0, &y0);
	fprintf(fp,
	        "<g class=\"legend\">\n<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" "
	        "fill=\"#ffffff\" fill-opacity=\"0.85\" stroke=\"#999999\"/>\n",
	        num(a, x0), num(b, y0), num(c, bw), num(d, bh));
	int row = 0;
	for (int k = 0; k < p->n; k++) {
		const series *s = &p->s[k];
		if (!s->label || !s->label[0])
			continue;
		const char *col = palette[k % N_COLOURS];
		double cy = y0 + 13 + 18.0 * row++;
		if (s->markers)
			draw_marker(fp, s->marker, x0 + 18, cy, 4, col);
		if (s->scatter)
			draw_marker(fp, s->marker, x0 + 18, cy, 4, col);
		else
			fprintf(fp,
			        "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"%s\" "
			        "stroke-width=\"2\"/>\n",
			        num(a, x0 + 6), num(b, cy), num(c, x0 + 30), num(d, cy), col);
		text(fp, x0 + 36, cy + FONT * 0.35, "start", FONT, "", s->label);
	}
	fputs("</g>\n", fp);
}

static nb_status check_plot(nb_plot *p, FILE *fp, const char *what)
{
	if (!p)
		return NB_ERR_ARG;
	p->err[0] = 0;
	if (!fp)
		return perr(p, NB_ERR_ARG, "%s: fp is NULL", what);
	if (p->logy && !isnan(p->ylo) && p->ylo <= 0)
		return perr(p, NB_ERR_ARG, "log-scale y needs a positive range, not [%g, %g]",
		            p->ylo, p->yhi);
	/* an axis that takes the data's range: its width must be a double (a
	 * range set by hand is checked when it is set) */
	for (int y = 0; y < 2; y++) {
		double lo, hi;
		if (isnan(y ? p->ylo : p->xlo) && !(y && p->logy) && data_range(p, y, &lo, &hi) &&
		    !isfinite(hi - lo))
			return perr(
			    p, NB_ERR_ARG,
			    "the %c values span %g to %g, wider than a double can hold: scale "
			    "them, or set the axis' range",
			    y ? 'y' : 'x', lo, hi);
	}
	return NB_OK;
}

static void svg_open(FILE *fp, int width, int height)
{
	fprintf(fp,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
	        "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
	        width, height, width, height);
}

/* The picture of p, its top at y0 (a panel of a stack when panel >= 0:
 * its series' ids are then panel-P-series-K). */
static nb_status write_body(nb_plot *p, FILE *fp, int y0, int panel)
{
	frame f;
	double W = p->width, H = p->height;
	double top = p->title ? 40 : 16, bottom = 24 + FONT + (p->xlabel ? 24 : 0);
	f.x.log = false;
	setup_axis(p, &f.y, true, (int)fmax(3, fmin(10, (H - top - bottom) / 45)));
	double ylab = 0;
	for (int i = 0; i < f.y.nt; i++)
		ylab = fmax(ylab, text_width(f.y.lab[i], FONT));
	f.left = 16 + ylab + (p->ylabel ? 24 : 0);
	f.top = top;
	f.w = W - f.left - 24;
	f.h = H - top - bottom;
	/* x labels are wide: keep one per ~90 px */
	setup_axis(p, &f.x, false, (int)fmax(3, fmin(10, f.w / 90)));

	char a[32], b[32];
	if (panel >= 0)
		fprintf(fp, "<g class=\"panel\" id=\"panel-%d\" transform=\"translate(0 %d)\">\n",
		        panel, y0);
	if (panel >= 0)
		fprintf(fp, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", p->width,
		        p->height);
	else
		fprintf(fp, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
	draw_axes(fp, &f);
	nb_status st = NB_OK;
	for (int k = 0; k < p->n && !st; k++) {
		const char *col = palette[k % N_COLOURS];
		if (panel >= 0)
			fprintf(fp, "<g class=\"series\" id=\"panel-%d-series-%d\">\n", panel, k);
		else
			fprintf(fp, "<g class=\"series\" id=\"series-%d\">\n", k);
		if (p->s[k].scatter)
			draw_scatter(fp, p, &f, &p->s[k], col);
		else
			st = draw_line(fp, p, &f, &p->s[k], col);
		if (p->s[k].markers)
			draw_scatter(fp, p, &f, &p->s[k], col);
		fputs("</g>\n", fp);
	}
	if (st)
		return perr(p, st, "nb_plot_write: out of memory");
	draw_legend(fp, p, &f);
	if (p->title)
		text(fp, W / 2, 26, "middle", TITLE_FONT, " font-weight=\"bold\"", p->title);
	if (p->xlabel)
		text(fp, f.left + f.w / 2, H - 12, "middle", FONT + 1, "", p->xlabel);
	if (p->ylabel) {
		char extra[96];
		snprintf(extra, sizeof extra, " transform=\"rotate(-90 %s %s)\"", num(a, 18),
		         num(b, f.top + f.h / 2));
		text(fp, 18, f.top + f.h / 2, "middle", FONT + 1, extra, p->ylabel);
	}
	if (panel >= 0)
		fputs("</g>\n", fp);
	return NB_OK;
}

nb_status nb_plot_write(nb_plot *p, FILE *fp)
{
	nb_status st = check_plot(p, fp, "nb_plot_write");
	if (st)
		return st;
	svg_open(fp, p->width, p->height);
	if ((st = write_body(p, fp, 0, -1)))
		return st;
	fputs("</svg>\n", fp);
	if (ferror(fp))
		return perr(p, NB_ERR_IO, "nb_plot_write: write error");
	return NB_OK;
}

nb_status nb_plot_write_stack(nb_plot *const *plots, int n, FILE *fp)
{
	if (!plots || n < 1 || n > 64 || !plots[0])
		return NB_ERR_ARG;
	int width = 0, height = 0;
	for (int i = 0; i < n; i++) {
		nb_status st =
		    plots[i] ? check_plot(plots[i], fp, "nb_plot_write_stack") : NB_ERR_ARG;
		if (st == NB_ERR_ARG && !plots[i])
			return perr(plots[0], NB_ERR_ARG, "nb_plot_write_stack: plot %d is NULL",
			            i);
		if (st)
			return plots[0] == plots[i] ? st : perr(plots[0], st, "%s", plots[i]->err);
		width = width > plots[i]->width ? width : plots[i]->width;
		height += plots[i]->height;
	}
	svg_open(fp, width, height);
	fprintf(fp, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
	for (int i = 0, y = 0; i < n; y += plots[i++]->height) {
		nb_status st = write_body(plots[i], fp, y, i);
		if (st)
			return i ? perr(plots[0], st, "%s", plots[i]->err) : st;
	}
	fputs("</svg>\n", fp);
	if (ferror(fp))
		return perr(plots[0], NB_ERR_IO, "nb_plot_write_stack: write error");
	return NB_OK;
}

static nb_status save_stack(nb_plot *const *plots, int n, const char *path, bool stack)
{
	nb_plot *p = plots[0];
	if (!path)
		return perr(p, NB_ERR_ARG, "%s: path is NULL",
		            stack ? "nb_plot_save_stack" : "nb_plot_save");
	/* atomically (io/wfile.h): a failed or killed save leaves the old
	 * file; an existing special file such as /dev/stdout is written
	 * directly */
	char err[640];
	nb__wfile w;
	if (nb__wfile_open(&w, path, true, err, sizeof err) != 0)
		return perr(p, NB_ERR_IO, "%s: cannot create: %s", path, err);
	nb_status st = stack ? nb_plot_write_stack(plots, n, w.fp) : nb_plot_write(p, w.fp);
	if (st)
		nb__wfile_abort(&w);
	else if (nb__wfile_commit(&w, err, sizeof err) != 0)
		st = perr(p, NB_ERR_IO, "%s: %s", path, err);
	if (st && p->err[0] && !strstr(p->err, path)) {
		char msg[sizeof p->err];
		memcpy(msg, p->err, sizeof msg);
		perr(p, st, "%s: %.*s", path, (int)(sizeof msg / 2), msg);
	}
	return st;
}

nb_status nb_plot_save(nb_plot *p, const char *path)
{
	if (!p)
		return NB_ERR_ARG;
	return save_stack(&p, 1, path, false);
}

nb_status nb_plot_save_stack(nb_plot *const *plots, int n, const char *path)
{
	if (!plots || n < 1 || !plots[0])
		return NB_ERR_ARG;
	return save_stack(plots, n, path, true);
}
