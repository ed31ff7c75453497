/* nabla/plot.h — part of the public API; include "nabla.h" instead.
 *
 * Small 2-D plots written as standalone SVG files (docs/plot.md): line
 * series (loss curves), scatter points with a marker per class, a legend,
 * axes with round tick values, axis labels, a title, optional log-scale y.
 * No display and no library beyond libc are needed; any browser or
 * `rsvg-convert` shows the file.
 */
/* the core types first, outside the guard: whichever header comes first,
 * nabla.h then includes this one with them defined */
#include "nabla.h"

#ifndef NABLA_PLOT_H
#define NABLA_PLOT_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_plot nb_plot;

typedef enum nb_marker {
	NB_MARKER_CIRCLE = 0,
	NB_MARKER_SQUARE,
	NB_MARKER_TRIANGLE,
	NB_MARKER_DIAMOND,
	NB_MARKER_CROSS, /* x */
	NB_MARKER_PLUS,  /* + */
	NB_MARKER_COUNT
} nb_marker;

/* Any of the texts may be NULL (left out).  NULL only when out of memory. */
NB_API nb_plot *nb_plot_new(const char *title, const char *xlabel, const char *ylabel);
NB_API void nb_plot_free(nb_plot *p);

/* A line through n points (x may be NULL: 0, 1, ..., n-1).  The data are
 * copied.  NaN and infinite values are skipped and break the line; so are
 * values <= 0 on a log-scale y axis.  label may be NULL (no legend entry).
 * Series get colours in the order they are added. */
NB_API nb_status nb_plot_line(nb_plot *p, const char *label, const double *x, const double *y,
                              size_t n);
/* n points drawn as markers (one series per class, each its own marker). */
NB_API nb_status nb_plot_scatter(nb_plot *p, const char *label, const double *x, const double *y,
                                 size_t n, nb_marker marker);
/* A line with a marker at each of its points, in the line's colour (for
 * lines of few points, which a line alone hardly shows: one point draws
 * no line at all). */
NB_API nb_status nb_plot_line_markers(nb_plot *p, const char *label, const double *x,
                                      const double *y, size_t n, nb_marker marker);

/* Fixed axis ranges (lo < hi); NaN for both ends restores the automatic
 * range, which covers the data and is widened to round tick values. */
NB_API nb_status nb_plot_set_xrange(nb_plot *p, double lo, double hi);
NB_API nb_status nb_plot_set_yrange(nb_plot *p, double lo, double hi);
NB_API nb_status nb_plot_set_logy(nb_plot *p, bool logy);
/* x ticks at integers only (an x axis of epochs or steps); a single x
 * value gets the range x - 1 .. x + 1. */
NB_API nb_status nb_plot_set_xinteger(nb_plot *p, bool integer);
/* Size of the picture in pixels (default 640 x 420). */
NB_API nb_status nb_plot_set_size(nb_plot *p, int width, int height);

/* Write the SVG document.  NB_ERR_ARG when an axis of automatic range
 * would span more than a double holds (finite data from -1e308 to 1e308:
 * scale it, or set the range). */
NB_API nb_status nb_plot_write(nb_plot *p, FILE *fp);
/* ... to a file, atomically like nb_checkpoint_save (a temporary file
 * renamed over path's target, its symbolic links followed); an existing
 * special file such as /dev/stdout is written directly. */
NB_API nb_status nb_plot_save(nb_plot *p, const char *path);
/* Several plots in one SVG, one above the other (panels sharing nothing
 * but the file: each has its own axes, title and legend), as wide as the
 * widest.  n from 1 to 64; errors are reported on plots[0]. */
NB_API nb_status nb_plot_write_stack(nb_plot *const *plots, int n, FILE *fp);
NB_API nb_status nb_plot_save_stack(nb_plot *const *plots, int n, const char *path);
/* Message of the last failed call ("" when none). */
NB_API const char *nb_plot_errmsg(const nb_plot *p);

/* ---- figures of a classifier (src/plot/figures.c) ---------------------- */

#define NB_PLOT_MAX_CLASSES 1000 /* classes of a confusion matrix */
#define NB_PLOT_MAX_IMAGES 10000 /* images of a grid */

/* A confusion matrix as an SVG heat map, written atomically to path:
 * counts[t*k + p] samples of true class t predicted as p, k classes (1 to
 * NB_PLOT_MAX_CLASSES); the diagonal in blue and the errors in red, each
 * cell as dark as its share of its row, with the count in it and each
 * row's share correct beside it.  names (k strings, may be NULL: the class
 * numbers) label rows and columns; title may be NULL.  NB_ERR_ARG for bad
 * arguments or a negative count, NB_ERR_IO when the file cannot be written,
 * with a message in err (may be NULL). */
NB_API nb_status nb_plot_confusion_save(const char *path, const int64_t *counts, int k,
                                        const char *const *names, const char *title, char *err,
                                        size_t errlen);

/* Images side by side with a caption under each, the wrong ones framed and
 * captioned in red (the others framed in green). */
typedef struct nb_image_grid {
	int64_t n;      /* images, 1 to NB_PLOT_MAX_IMAGES */
	int c, h, w;    /* one image: 1 (grey) or 3 (RGB) channels, 1 to 1024 rows, columns */
	const float *x; /* n*c*h*w values, each image CHW (a dataset's layout) */
	double lo, hi;  /* the values shown black and white (clamped between); lo >= hi:
	                 * the images' own smallest and largest values */
	const char *const *captions; /* n texts (may be NULL), each up to two lines
	                              * split at a '\n' */
	const bool *wrong;           /* n flags (may be NULL) */
	int columns;                 /* 0: about as many as rows */
	int scale;                   /* screen pixels per image pixel, 0: 3 (at most 16) */
	const char *title;           /* may be NULL */
} nb_image_grid;

/* The grid as SVG, written atomically to path; each image is embedded as a
 * PNG (data: URI) and drawn pixel for pixel.  A path ending in .png gets a
 * PNG picture instead, drawn by Graphviz's libgvc (the images go through a
 * temporary directory under $TMPDIR, removed afterwards): NB_ERR_ARG when
 * nabla was built without libgvc, NB_ERR_FORMAT when Graphviz renders no
 * PNG; not thread-safe (Graphviz is not).  Errors as above. */
NB_API nb_status nb_plot_image_grid_save(const char *path, const nb_image_grid *grid, char *err,
                                         size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
