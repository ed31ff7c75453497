/*
 * Two figures for looking at a classifier (docs/plot.md): a confusion
 * matrix as a heat map, and a grid of images with a caption each (a
 * prediction against the truth, the wrong ones framed in red).  Both are
 * standalone SVG; the images are embedded as PNG data (zlib's deflate and
 * CRC), shown pixel for pixel at any scale.  The grid is also drawn as a
 * PNG picture by Graphviz's libgvc (cairo), when nabla has it: a table of
 * the images (as PNG files in a temporary directory) and their captions
 * in an HTML-like label, laid out and rendered in-process.
 */
#include "graph/internal.h"
#include "io/wfile.h"

#include "nabla_config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#if NABLA_HAVE_GVC
#include <gvc.h>
#endif

static nb_status ferr(char *err, size_t errlen, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static nb_status ferr(char *err, size_t errlen, nb_status st, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return st;
}

/* XML character data: markup escaped; malformed UTF-8 and control
 * characters become U+FFFD */
static void xml_text(FILE *fp, const char *s)
{
	nb__markup_text(fp, s, strlen(s), "\xef\xbf\xbd", 0);
}

static void text(FILE *fp, int x, int y, const char *anchor, int size, const char *extra,
                 const char *s)
{
	fprintf(fp, "<text x=\"%d\" y=\"%d\" text-anchor=\"%s\" font-size=\"%d\"%s>", x, y, anchor,
	        size, extra);
	xml_text(fp, s);
	fputs("</text>\n", fp);
}

static void svg_open(FILE *fp, int width, int height)
{
	fprintf(fp,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	        "xmlns:xlink=\"http://www.w3.org/1999/xlink\" version=\"1.1\" width=\"%d\" "
	        "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
	        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
	        width, height, width, height);
}

/* write(fp, user) to path atomically (io/wfile.h) */
static nb_status save(const char *path, nb_status (*write)(FILE *, const void *), const void *user,
                      char *err, size_t errlen)
{
	char e[640];
	nb__wfile w;
	if (!path || !*path)
		return ferr(err, errlen, NB_ERR_ARG, "no path");
	if (nb__wfile_open(&w, path, true, e, sizeof e) != 0)
		return ferr(err, errlen, NB_ERR_IO, "%s: cannot create: %s", path, e);
	nb_status st = write(w.fp, user);
	if (st == NB_OK && ferror(w.fp))
		st = NB_ERR_IO;
	if (st) {
		nb__wfile_abort(&w);
		return ferr(err, errlen, st, "%s: %s", path,
		            st == NB_ERR_NOMEM ? "out of memory" : "write error");
	}
	if (nb__wfile_commit(&w, e, sizeof e) < 0)
		return ferr(err, errlen, NB_ERR_IO, "%s: %s", path, e);
	return NB_OK;
}

/* ---- the confusion matrix ------------------------------------------------------ */

typedef struct confusion {
	const int64_t *counts;
	int k;
	const char *const *names;
	const char *title;
} confusion;

static nb_status write_confusion(FILE *fp, const void *user)
{
	const confusion *c = user;
	int k = c->k;
	int cell = k <= 10 ? 44 : k <= 30 ? 440 / k : 14;
	int font = cell >= 40 ? 11 : cell >= 24 ? 9 : 7;
	int left = 130, top = c->title ? 150 : 120, right = 110, bottom = 40;
	int W = left + k * cell + right, H = top + k * cell + bottom;
	svg_open(fp, W, H);
	if (c->title)
		text(fp, W / 2, 24, "middle", 16, " font-weight=\"bold\"", c->title);
	text(fp, left + k * cell / 2, top - 92, "middle", 12, "", "predicted class");
	fprintf(fp,
	        "<text transform=\"translate(18,%d) rotate(-90)\" text-anchor=\"middle\" "
	        "font-size=\"12\">true class</text>\n",
	        top + k * cell / 2);
	char num[64];
	for (int j = 0; j < k; j++) { /* column labels, slanted */
		int x = left + j * cell + cell / 2;
		fprintf(fp, "<text transform=\"translate(%d,%d) rotate(-45)\" font-size=\"%d\">", x,
		        top - 6, font + 1);
		if (c->names)
			xml_text(fp, c->names[j]);
		else
			fprintf(fp, "%d", j);
		fputs("</text>\n", fp);
	}
	text(fp, left + k * cell + 8, top - 8, "start", font + 1, "", "correct");
	for (int i = 0; i < k; i++) {
		int64_t row = 0;
		for (int j = 0; j < k; j++)
			row += c->counts[(int64_t)i * k + j];
		int y = top + i * cell;
		snprintf(num, sizeof num, "%d", i);
		text(fp, left - 6, y + cell / 2 + 4, "end", font + 1, "",
		     c->names ? c->names[i] : num);
		for (int j = 0; j < k; j++) {
			int64_t n = c->counts[(int64_t)i * k + j];
			double f = row ? (double)n / (double)row : 0;
			/* white to blue on the diagonal, white to red elsewhere */
			int r = i == j ? (int)lround(255 - f * (255 - 31))
			               : (int)lround(255 - f * (255 - 214));
			int g = i == j ? (int)lround(255 - f * (255 - 119))
			               : (int)lround(255 - f * (255 - 39));
			int b = i == j ? (int)lround(255 - f * (255 - 180))
			               : (int)lround(255 - f * (255 - 40));
			fprintf(
			    fp,
			    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
			    "fill=\"#%02x%02x%02x\" stroke=\"#dddddd\"><title>true %d, predicted "
			    "%d: %lld</title></rect>\n",
			    left + j * cell, y, cell, cell, r, g, b, i, j, (long long)n);
			if (n) {
				snprintf(num, sizeof num, "%lld", (long long)n);
				text(fp, left + j * cell + cell / 2, y + cell / 2 + font / 2 - 1,
				     "middle", strlen(num) > 4 && cell < 50 ? font - 2 : font,
				     f > 0.55 ? " fill=\"white\"" : "", num);
			}
		}
		int64_t d = c->counts[(int64_t)i * k + i];
		if (row)
			snprintf(num, sizeof num, "%.1f%% of %lld", 100.0 * (double)d / (double)row,
			         (long long)row);
		else
			snprintf(num, sizeof num, "none");
		text(fp, left + k * cell + 8, y + cell / 2 + 4, "start", font, "", num);
	}
	fputs("</svg>\n", fp);
	return NB_OK;
}

nb_status nb_plot_confusion_save(const char *path, const int64_t *counts, int k,
                                 const char *const *names, const char *title, char *err,
                                 size_t errlen)
{
	if (!counts || k < 1 || k > NB_PLOT_MAX_CLASSES)
		return ferr(err, errlen, NB_ERR_ARG,
		            "a confusion matrix needs counts and 1 to %d classes, not %d",
		            NB_PLOT_MAX_CLASSES, k);
	for (int64_t i = 0; i < (int64_t)k * k; i++)
		if (counts[i] < 0)
			return ferr(err, errlen, NB_ERR_ARG, "count %lld is negative (%lld)",
			            (long long)i, (long long)counts[i]);
	confusion c = {counts, k, names, title};
	return save(path, write_confusion, &c, err, errlen);
}

/* ---- PNG ------------------------------------------------------------------------ */

typedef struct bytes {
	unsigned char *p;
	size_t n, cap;
	bool oom;
} bytes;

static void put(bytes *b, const void *s, size_t n)
{
	if (b->oom || n == 0) /* an empty chunk's data may be NULL */
		return;
	if (b->n + n > b->cap) {
		size_t nc = b->cap ? 2 * b->cap : 1024;
		while (nc < b->n + n)
			nc *= 2;
		unsigned char *q = realloc(b->p, nc);
		if (!q) {
			b->oom = true;
			return;
		}
		b->p = q, b->cap = nc;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void put32(bytes *b, uint32_t v)
{
	unsigned char q[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 8), (unsigned char)v};
	put(b, q, 4);
}

static void chunk(bytes *b, const char *type, const unsigned char *data, size_t n)
{
	put32(b, (uint32_t)n);
	put(b, type, 4);
	put(b, data, n);
	uLong crc = crc32(0, (const Bytef *)type, 4);
	crc = n ? crc32(crc, data, (uInt)n) : crc;
	put32(b, (uint32_t)crc);
}

/* 8-bit grey (c = 1) or RGB (c = 3) pixels, rows of w*c bytes, as a PNG */
static bool png(bytes *out, const unsigned char *pix, int c, int h, int w)
{
	size_t row = (size_t)w * (size_t)c, raw_n = (row + 1) * (size_t)h;
	unsigned char *raw = malloc(raw_n);
	uLongf zn = compressBound((uLong)raw_n);
	unsigned char *z = malloc(zn);
	bool ok = raw && z;
	for (int y = 0; ok && y < h; y++) {
		raw[(size_t)y * (row + 1)] = 0; /* filter: none */
		memcpy(raw + (size_t)y * (row + 1) + 1, pix + (size_t)y * row, row);
	}
	ok = ok && compress2(z, &zn, raw, (uLong)raw_n, 9) == Z_OK;
	if (ok) {
		static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
		unsigned char ihdr[13] = {(unsigned char)(w >> 24),
		                          (unsigned char)(w >> 16),
		                          (unsigned char)(w >> 8),
		                          (unsigned char)w,
		                          (unsigned char)(h >> 24),
		                          (unsigned char)(h >> 16),
		                          (unsigned char)(h >> 8),
		                          (unsigned char)h,
		                          8,
		                          c == 3 ? 2 : 0,
		                          0,
		                          0,
		                          0};
		put(out, sig, 8);
		chunk(out, "IHDR", ihdr, 13);
		chunk(out, "IDAT", z, zn);
		chunk(out, "IEND", NULL, 0);
		ok = !out->oom;
	}
	free(raw);
	free(z);
	return ok;
}

static void base64(FILE *fp, const unsigned char *p, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		char q[4] = {a[v >> 18 & 63], a[v >> 12 & 63], i + 1 < n ? a[v >> 6 & 63] : '=',
		             i + 2 < n ? a[v & 63] : '='};
		fwrite(q, 1, 4, fp);
	}
}

/* ---- the image grid --------------------------------------------------------------- */

/* image i of the grid as bytes (HWC) from its NCHW floats */
static void to_bytes(const nb_image_grid *g, int64_t i, double lo, double hi, unsigned char *out)
{
	int64_t plane = (int64_t)g->h * g->w;
	const float *x = g->x + i * plane * g->c;
	for (int64_t p = 0; p < plane; p++)
		for (int ch = 0; ch < g->c; ch++) {
			double v = (x[ch * plane + p] - lo) / (hi - lo);
			v = v > 0 ? v : 0; /* NaN too */
			v = v < 1 ? v : 1;
			out[p * g->c + ch] = (unsigned char)lround(255 * v);
		}
}

/* the values shown black and white */
static void value_range(const nb_image_grid *g, double *lo_out, double *hi_out)
{
	double lo = g->lo, hi = g->hi;
	if (!(lo < hi)) { /* the images' own range */
		lo = INFINITY, hi = -INFINITY;
		for (int64_t i = 0; i < g->n * g->c * g->h * g->w; i++)
			if (isfinite(g->x[i])) {
				lo = g->x[i] < lo ? g->x[i] : lo;
				hi = g->x[i] > hi ? g->x[i] : hi;
			}
		if (!(lo < hi))
			lo = isfinite(lo) ? lo - 1 : 0, hi = lo + 2;
	}
	*lo_out = lo, *hi_out = hi;
}

static nb_status write_grid(FILE *fp, const void *user)
{
	const nb_image_grid *g = user;
	int cols = g->columns ? g->columns : (int)ceil(sqrt((double)g->n));
	if (cols > g->n)
		cols = (int)g->n;
	int rows = (int)((g->n + cols - 1) / cols);
	int scale = g->scale ? g->scale : 3;
	int iw = g->w * scale, ih = g->h * scale;
	int cw = iw + 16 < 150 ? 150 : iw + 16, chh = ih + 48;
	int top = g->title ? 40 : 8;
	int W = cols * cw + 8, H = top + rows * chh + 8;
	int tw = g->title ? 24 + (int)(strlen(g->title) * 16 * 0.6) : 0; /* bold text's width */
	W = W < tw ? tw : W;
	double lo, hi;
	value_range(g, &lo, &hi);
	unsigned char *pix = malloc((size_t)g->h * (size_t)g->w * (size_t)g->c);
	if (!pix)
		return NB_ERR_NOMEM;
	svg_open(fp, W, H);
	if (g->title)
		text(fp, W / 2, 26, "middle", 16, " font-weight=\"bold\"", g->title);
	nb_status st = NB_OK;
	for (int64_t i = 0; i < g->n && !st; i++) {
		int x0 = 4 + (int)(i % cols) * cw, y0 = top + (int)(i / cols) * chh;
		int ix = x0 + (cw - iw) / 2, iy = y0 + 4;
		bool wrong = g->wrong && g->wrong[i];
		fprintf(fp,
		        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
		        "stroke=\"%s\" stroke-width=\"%d\"/>\n",
		        ix - 2, iy - 2, iw + 4, ih + 4, wrong ? "#d62728" : "#2ca02c",
		        wrong ? 3 : 1);
		to_bytes(g, i, lo, hi, pix);
		bytes b = {0};
		if (!png(&b, pix, g->c, g->h, g->w)) {
			free(b.p);
			st = NB_ERR_NOMEM;
			break;
		}
		fprintf(fp,
		        "<image x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
		        "preserveAspectRatio=\"none\" image-rendering=\"optimizeSpeed\" "
		        "style=\"image-rendering:pixelated\" xlink:href=\"data:image/png;base64,",
		        ix, iy, iw, ih);
		base64(fp, b.p, b.n);
		fputs("\"/>\n", fp);
		free(b.p);
		const char *cap = g->captions ? g->captions[i] : NULL;
		for (int line = 0; cap && line < 2; line++) { /* two lines: up to '\n' and after */
			const char *nl = strchr(cap, '\n');
			char buf[256];
			snprintf(buf, sizeof buf, "%.*s", nl ? (int)(nl - cap) : (int)strlen(cap),
			         cap);
			text(fp, x0 + cw / 2, iy + ih + 16 + 14 * line, "middle", 11,
			     wrong ? " fill=\"#d62728\"" : "", buf);
			cap = nl ? nl + 1 : NULL;
		}
	}
	free(pix);
	fputs("</svg>\n", fp);
	return st;
}

/* ---- the image grid as PNG, by libgvc --------------------------------------------------- */

#if NABLA_HAVE_GVC
/* HTML-like label text: markup escaped, control characters and malformed
 * UTF-8 as '?' */
static void html_text(FILE *fp, const char *s, size_t n)
{
	nb__markup_text(fp, s, n, "?", 0);
}

/* image i, scaled by repeating pixels, as dir/i.png */
static bool image_file(const nb_image_grid *g, int64_t i, double lo, double hi, int scale,
                       const char *dir, unsigned char *pix, unsigned char *big)
{
	to_bytes(g, i, lo, hi, pix);
	int W = g->w * scale, c = g->c;
	for (int y = 0; y < g->h * scale; y++)
		for (int x = 0; x < W; x++)
			memcpy(big + ((size_t)y * (size_t)W + (size_t)x) * (size_t)c,
			       pix + ((size_t)(y / scale) * (size_t)g->w + (size_t)(x / scale)) *
			                 (size_t)c,
			       (size_t)c);
	bytes b = {0};
	char path[4200];
	snprintf(path, sizeof path, "%s/%lld.png", dir, (long long)i);
	bool ok = png(&b, big, c, g->h * scale, W);
	FILE *fp = ok ? fopen(path, "wb") : NULL;
	ok = fp && fwrite(b.p, 1, b.n, fp) == b.n;
	if (fp && fclose(fp) != 0)
		ok = false;
	free(b.p);
	return ok;
}

/* the DOT text of the grid: one node, a table of images and captions */
static void grid_dot(FILE *fp, const nb_image_grid *g, const char *dir, int cols)
{
	fputs("digraph grid {\ngraph [pad=\"0.1\", bgcolor=\"white\", dpi=72];\n"
	      "node [shape=plaintext, fontname=\"sans-serif\"];\n"
	      "grid [label=<<TABLE BORDER=\"0\" CELLSPACING=\"6\" CELLPADDING=\"2\">\n",
	      fp);
	if (g->title) {
		fprintf(fp, "<TR><TD COLSPAN=\"%d\"><FONT POINT-SIZE=\"16\"><B>", cols);
		html_text(fp, g->title, strlen(g->title));
		fputs("</B></FONT></TD></TR>\n", fp);
	}
	for (int64_t r = 0; r < g->n; r += cols) {
		fputs("<TR>", fp);
		for (int64_t i = r; i < r + cols && i < g->n; i++) {
			bool wrong = g->wrong && g->wrong[i];
			fprintf(fp,
			        "<TD BORDER=\"%d\" COLOR=\"%s\"><IMG SRC=\"%s/%lld.png\"/></TD>",
			        wrong ? 3 : 1, wrong ? "#d62728" : "#2ca02c", dir, (long long)i);
		}
		fputs("</TR>\n<TR>", fp);
		for (int64_t i = r; i < r + cols && i < g->n; i++) {
			bool wrong = g->wrong && g->wrong[i];
			fprintf(fp, "<TD><FONT POINT-SIZE=\"11\" COLOR=\"%s\">",
			        wrong ? "#d62728" : "black");
			const char *cap = g->captions ? g->captions[i] : "";
			const char *nl = strchr(cap, '\n');
			html_text(fp, cap, nl ? (size_t)(nl - cap) : strlen(cap));
			if (nl) {
				fputs("<BR/>", fp);
				html_text(fp, nl + 1, strcspn(nl + 1, "\n"));
			}
			fputs(" </FONT></TD>", fp);
		}
		fputs("</TR>\n", fp);
	}
	fputs("</TABLE>>];\n}\n", fp);
}

/* the PNG bytes of the grid's DOT text, rendered by libgvc (NULL: failed) */
static char *render_png(const char *dot, unsigned *len)
{
	/* one context for the process, never freed: Graphviz 2.43's pango
	 * plugin keeps pointers into a freed context's fonts, which a second
	 * context then reads */
	static GVC_t *gvc;
	char *out = NULL;
	if (!gvc)
		gvc = gvContext();
	Agraph_t *G = gvc ? agmemread(dot) : NULL;
	if (G && gvLayout(gvc, G, "dot") == 0) {
		char *data = NULL;
		if (gvRenderData(gvc, G, "png", &data, len) == 0 && data && *len > 8 &&
		    (out = malloc(*len)))
			memcpy(out, data, *len);
		if (data)
			gvFreeRenderData(data);
		gvFreeLayout(gvc, G);
	}
	if (G)
		agclose(G);
	return out;
}

static nb_status grid_png(const char *path, const nb_image_grid *g, char *err, size_t errlen)
{
	int cols = g->columns ? g->columns : (int)ceil(sqrt((double)g->n));
	cols = cols > g->n ? (int)g->n : cols;
	int scale = g->scale ? g->scale : 3;
	double lo, hi;
	value_range(g, &lo, &hi);
	const char *base = getenv("TMPDIR");
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/nabla-grid-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(dir))
		return ferr(err, errlen, NB_ERR_IO, "%s: cannot make a temporary directory %s: %s",
		            path, dir, strerror(errno));
	unsigned char *pix = malloc((size_t)g->h * (size_t)g->w * (size_t)g->c);
	unsigned char *big =
	    malloc((size_t)g->h * (size_t)g->w * (size_t)g->c * (size_t)scale * (size_t)scale);
	nb_status st = pix && big ? NB_OK : NB_ERR_NOMEM;
	int64_t made = 0;
	for (; !st && made < g->n; made++)
		if (!image_file(g, made, lo, hi, scale, dir, pix, big))
			st = ferr(err, errlen, NB_ERR_IO, "%s: cannot write an image into %s", path,
			          dir);
	char *dot = NULL, *png_data = NULL;
	size_t dot_n = 0;
	unsigned png_n = 0;
	FILE *mem = st ? NULL : open_memstream(&dot, &dot_n);
	if (!st && !mem)
		st = NB_ERR_NOMEM;
	if (mem) {
		grid_dot(mem, g, dir, cols);
		if (fclose(mem) != 0)
			st = NB_ERR_NOMEM;
	}
	if (!st && !(png_data = render_png(dot, &png_n)))
		st = ferr(err, errlen, NB_ERR_FORMAT,
		          "%s: Graphviz rendered no PNG (its cairo plugin, libgvplugin_pango, may "
		          "be missing); write .svg instead",
		          path);
	if (st == NB_ERR_NOMEM)
		ferr(err, errlen, st, "%s: out of memory", path);
	nb__wfile w;
	char e[640];
	if (!st && nb__wfile_open(&w, path, true, e, sizeof e) != 0)
		st = ferr(err, errlen, NB_ERR_IO, "%s: cannot create: %s", path, e);
	else if (!st && fwrite(png_data, 1, png_n, w.fp) != png_n) {
		nb__wfile_abort(&w);
		st = ferr(err, errlen, NB_ERR_IO, "%s: write error", path);
	} else if (!st && nb__wfile_commit(&w, e, sizeof e) < 0)
		st = ferr(err, errlen, NB_ERR_IO, "%s: %s", path, e);
	for (int64_t i = 0; i < made; i++) {
		char f[4200];
		snprintf(f, sizeof f, "%s/%lld.png", dir, (long long)i);
		unlink(f);
	}
	rmdir(dir);
	free(png_data);
	free(dot);
	free(big);
	free(pix);
	return st;
}
#endif

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && !strcmp(s + n - k, suffix);
}

nb_status nb_plot_image_grid_save(const char *path, const nb_image_grid *g, char *err,
                                  size_t errlen)
{
	if (!g || !g->x)
		return ferr(err, errlen, NB_ERR_ARG, "an image grid needs images");
	if (g->n < 1 || g->n > NB_PLOT_MAX_IMAGES)
		return ferr(err, errlen, NB_ERR_ARG, "an image grid holds 1 to %d images, not %lld",
		            NB_PLOT_MAX_IMAGES, (long long)g->n);
	if ((g->c != 1 && g->c != 3) || g->h < 1 || g->h > 1024 || g->w < 1 || g->w > 1024)
		return ferr(err, errlen, NB_ERR_ARG,
		            "images must have 1 or 3 channels and 1 to 1024 rows and columns, not "
		            "%dx%dx%d",
		            g->c, g->h, g->w);
	int scale = g->scale ? g->scale : 3;
	if (g->columns < 0 || g->columns > NB_PLOT_MAX_IMAGES || g->scale < 0 || g->scale > 16 ||
	    (long long)g->w * scale > 4096 || (long long)g->h * scale > 4096)
		return ferr(err, errlen, NB_ERR_ARG,
		            "columns must be 0 to %d and scale 0 to 16 (at most 4096 pixels), not "
		            "%d and %d",
		            NB_PLOT_MAX_IMAGES, g->columns, g->scale);
	if (isnan(g->lo) || isnan(g->hi))
		return ferr(err, errlen, NB_ERR_ARG, "the value range is NaN");
	if (!path || !*path)
		return ferr(err, errlen, NB_ERR_ARG, "no path");
	if (has_suffix(path, ".png") || has_suffix(path, ".PNG")) {
#if NABLA_HAVE_GVC
		return grid_png(path, g, err, errlen);
#else
		return ferr(err, errlen, NB_ERR_ARG,
		            "%s: PNG needs Graphviz's libgvc, and this nabla was built without it; "
		            "write .svg",
		            path);
#endif
	}
	return save(path, write_grid, g, err, errlen);
}
