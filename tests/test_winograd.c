/* Winograd F(2x2, 3x3) kernels (src/ops/conv/winograd.c) against a naive direct
 * convolution and its adjoint: f64 and f32, odd and even planes, every
 * padding 0..2 on each side, several channel counts and batches, chunks
 * that split images, one and two threads (bits repeat run to run), and the
 * geometries the kernels refuse. */
#include "test_util.h"

#include "ops/conv/winograd.h"

#include <stdint.h>

/* deterministic values in [-1, 1) */
static double lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(*s >> 11) * 0x1.0p-52 - 1.0;
}

static int64_t oh_of(const nb__wino_geom *g)
{
	return g->h + g->pt + g->pb - 2;
}

static int64_t ow_of(const nb__wino_geom *g)
{
	return g->w + g->pl + g->pr - 2;
}

/* sizes of the kernel's input and output */
static void io_sizes(const nb__wino_geom *g, int64_t *nin, int64_t *nout)
{
	int64_t nx = g->n * g->c * g->h * g->w, ny = g->n * g->o * oh_of(g) * ow_of(g);
	*nin = g->flip ? ny : nx;
	*nout = g->flip ? nx : ny;
}

/* The definition, by brute force in long double.  Forward:
 *   y[n,o,i,j] = sum_{c,m,k} W[o,c,m,k] x[n,c,i+m-pt,j+k-pl];
 * flip: the adjoint, each term W[o,c,m,k] dy[n,o,i,j] added to
 * dx[n,c,i+m-pt,j+k-pl]. */
static void reference(const nb__wino_geom *g, const double *in, const double *w, double *out)
{
	const int64_t oh = oh_of(g), ow = ow_of(g);
	int64_t nin, nout;
	io_sizes(g, &nin, &nout);
	long double *acc = calloc((size_t)nout, sizeof *acc);
	ck_assert(acc);
	for (int64_t n = 0; n < g->n; n++)
		for (int64_t o = 0; o < g->o; o++)
			for (int64_t i = 0; i < oh; i++)
				for (int64_t j = 0; j < ow; j++)
					for (int64_t c = 0; c < g->c; c++)
						for (int64_t m = 0; m < 3; m++)
							for (int64_t k = 0; k < 3; k++) {
								const int64_t a = i + m - g->pt,
								              b = j + k - g->pl;
								if (a < 0 || a >= g->h || b < 0 ||
								    b >= g->w)
									continue;
								const int64_t xi =
								    ((n * g->c + c) * g->h + a) *
								        g->w +
								    b;
								const int64_t yi =
								    ((n * g->o + o) * oh + i) * ow +
								    j;
								const long double wv =
								    w[((o * g->c + c) * 3 + m) * 3 +
								      k];
								if (g->flip)
									acc[xi] += wv * in[yi];
								else
									acc[yi] += wv * in[xi];
							}
	for (int64_t e = 0; e < nout; e++)
		out[e] = (double)acc[e];
	free(acc);
}

/* The scale of an output's rounding errors.  Winograd computes the 2x2
 * outputs of a tile together from the tile's 4x4 inputs (the window's 3x3
 * and the neighbouring row and column, which cancel exactly only in exact
 * arithmetic), so an output with one small term (a corner of dx) still
 * carries errors of the size of its neighbours.  The scale is
 *   sum_c (sum of |input| over the tile's 4x4 patch of c) (sum of |kernel|)
 * over the convolution the kernels compute: for flip, dy with the adjoint
 * padding 2 - p and W'[c][o] = W[o][c] rotated (the |kernel| sum does not
 * see the rotation). */
static void tile_scale(const nb__wino_geom *g, const double *in, const double *w, double *scale)
{
	const bool f = g->flip;
	const int64_t ci = f ? g->o : g->c, co = f ? g->c : g->o;
	const int64_t hi = f ? oh_of(g) : g->h, wi = f ? ow_of(g) : g->w;
	const int64_t ho = f ? g->h : oh_of(g), wo = f ? g->w : ow_of(g);
	const int64_t pt = f ? 2 - g->pt : g->pt, pl = f ? 2 - g->pl : g->pl;
	for (int64_t n = 0; n < g->n; n++)
		for (int64_t o = 0; o < co; o++)
			for (int64_t i = 0; i < ho; i++)
				for (int64_t j = 0; j < wo; j++) {
					double s = 0;
					for (int64_t c = 0; c < ci; c++) {
						double sd = 0, sw = 0;
						for (int64_t r = 0; r < 4; r++)
							for (int64_t q = 0; q < 4; q++) {
								const int64_t a = i / 2 * 2 + r -
								                  pt,
								              b = j / 2 * 2 + q -
								                  pl;
								if (a >= 0 && a < hi && b >= 0 &&
								    b < wi)
									sd += fabs(
									    in[((n * ci + c) * hi +
									        a) *
									           wi +
									       b]);
							}
						for (int64_t k = 0; k < 9; k++)
							sw += fabs(f ? w[(c * co + o) * 9 + k]
							             : w[(o * ci + c) * 9 + k]);
						s += sd * sw;
					}
					scale[((n * co + o) * ho + i) * wo + j] = s;
				}
}

static void *ws_alloc(const nb__wino_geom *g, size_t es, int threads)
{
	size_t b = nb__wino_workspace(g, es, threads);
	ck_assert(b > 0);
	void *p = aligned_alloc(64, (b + 63) / 64 * 64);
	ck_assert(p != NULL);
	return p;
}

#define GEOM_FMT "n=%lld c=%lld h=%lld w=%lld o=%lld pad t%lld l%lld b%lld r%lld flip=%d"
#define GEOM_ARGS(g)                                                                               \
	(long long)(g)->n, (long long)(g)->c, (long long)(g)->h, (long long)(g)->w,                \
	    (long long)(g)->o, (long long)(g)->pt, (long long)(g)->pl, (long long)(g)->pb,         \
	    (long long)(g)->pr, (int)(g)->flip

/* Runs the kernel of one type on random data, with `threads` threads,
 * twice (the bits must repeat), and checks every output against the
 * reference: |got - want| <= tol * tile_scale (exactly equal where that is
 * 0). */
static void check_geom(const nb__wino_geom *g, bool f64, int threads, uint64_t seed, double tol)
{
	ck_assert_msg(nb__wino_supported(g), GEOM_FMT, GEOM_ARGS(g));
	int64_t nin, nout, nw = g->o * g->c * 9;
	io_sizes(g, &nin, &nout);
	double *in = malloc((size_t)nin * sizeof(double)), *w = malloc((size_t)nw * sizeof(double));
	double *want = malloc((size_t)nout * sizeof(double)),
	       *scale = malloc((size_t)nout * sizeof(double));
	double *got = malloc((size_t)nout * sizeof(double));
	ck_assert(in && w && want && scale && got);
	for (int64_t e = 0; e < nin; e++)
		in[e] = lcg(&seed);
	for (int64_t e = 0; e < nw; e++)
		w[e] = lcg(&seed);
	void *ws = ws_alloc(g, f64 ? sizeof(double) : sizeof(float), threads);
	if (f64) {
		double *out[2];
		for (int run = 0; run < 2; run++) {
			out[run] = malloc((size_t)nout * sizeof(double));
			for (int64_t e = 0; e < nout; e++)
				out[run][e] = NAN; /* every element must be written */
			nb__wino_forward_f64(g, in, w, out[run], ws, threads);
		}
		ck_assert_msg(!memcmp(out[0], out[1], (size_t)nout * sizeof(double)),
		              "f64 threads %d: bits differ between runs, " GEOM_FMT, threads,
		              GEOM_ARGS(g));
		memcpy(got, out[0], (size_t)nout * sizeof(double));
		free(out[0]), free(out[1]);
	} else {
		float *fin = malloc((size_t)nin * sizeof(float)),
		      *fw = malloc((size_t)nw * sizeof(float));
		float *out[2];
		ck_assert(fin && fw);
		for (int64_t e = 0; e < nin; e++)
			in[e] = fin[e] = (float)in[e]; /* the reference sees the float values */
		for (int64_t e = 0; e < nw; e++)
			w[e] = fw[e] = (float)w[e];
		for (int run = 0; run < 2; run++) {
			out[run] = malloc((size_t)nout * sizeof(float));
			for (int64_t e = 0; e < nout; e++)
				out[run][e] = NAN;
			nb__wino_forward_f32(g, fin, fw, out[run], ws, threads);
		}
		ck_assert_msg(!memcmp(out[0], out[1], (size_t)nout * sizeof(float)),
		              "f32 threads %d: bits differ between runs, " GEOM_FMT, threads,
		              GEOM_ARGS(g));
		for (int64_t e = 0; e < nout; e++)
			got[e] = out[0][e];
		free(out[0]), free(out[1]), free(fin), free(fw);
	}
	reference(g, in, w, want);
	tile_scale(g, in, w, scale);
	for (int64_t e = 0; e < nout; e++)
		ck_assert_msg(fabs(got[e] - want[e]) <= tol * scale[e],
		              "%s threads %d, " GEOM_FMT ": element %lld = %.17g, expected %.17g "
		              "(scale %g, tol %g)",
		              f64 ? "f64" : "f32", threads, GEOM_ARGS(g), (long long)e, got[e],
		              want[e], scale[e], tol);
	free(in), free(w), free(want), free(scale), free(ws), free(got);
}

#define TOL64 1e-14
#define TOL32 1e-6

/* all 81 paddings, flip both ways, on odd and even planes */
static void every_padding(bool f64, double tol)
{
	static const int64_t hw[][2] = {{1, 1}, {2, 3}, {5, 4}, {6, 7}};
	uint64_t seed = 1;
	int k = 0;
	for (int64_t p = 0; p < 81; p++)
		for (size_t s = 0; s < sizeof hw / sizeof hw[0]; s++)
			for (int flip = 0; flip < 2; flip++, k++) {
				nb__wino_geom g = {.isa = nb__isa_level(),
				                   .n = 1 + 2 * (k % 3),
				                   .c = k % 2 ? 3 : 1,
				                   .h = hw[s][0],
				                   .w = hw[s][1],
				                   .o = k % 4 < 2 ? 3 : 1,
				                   .pt = p % 3,
				                   .pl = p / 3 % 3,
				                   .pb = p / 9 % 3,
				                   .pr = p / 27,
				                   .flip = flip};
				if (oh_of(&g) < 1 || ow_of(&g) < 1) {
					ck_assert(!nb__wino_supported(&g));
					continue;
				}
				check_geom(&g, f64, 1, seed++, tol);
			}
}

START_TEST(test_every_padding_f64)
{
	every_padding(true, TOL64);
}
END_TEST

START_TEST(test_every_padding_f32)
{
	every_padding(false, TOL32);
}
END_TEST

/* n, c, o in {1, 3, 5} x {1, 3, 16} x {1, 3, 16}, odd and even planes,
 * random paddings, both directions, one and two threads */
static void channels_and_batches(bool f64, double tol)
{
	static const int64_t ns[] = {1, 3, 5}, cs[] = {1, 3, 16};
	static const int64_t hw[][2] = {{7, 9}, {8, 8}};
	uint64_t seed = 99, pick = 7;
	for (int a = 0; a < 3; a++)
		for (int b = 0; b < 3; b++)
			for (int c = 0; c < 3; c++)
				for (int s = 0; s < 2; s++)
					for (int flip = 0; flip < 2; flip++) {
						uint64_t r = (uint64_t)((lcg(&pick) + 1) * 1e6);
						nb__wino_geom g = {.isa = nb__isa_level(),
						                   .n = ns[a],
						                   .c = cs[b],
						                   .o = cs[c],
						                   .h = hw[s][0],
						                   .w = hw[s][1],
						                   .pt = (int64_t)(r % 3),
						                   .pl = (int64_t)(r / 3 % 3),
						                   .pb = (int64_t)(r / 9 % 3),
						                   .pr = (int64_t)(r / 27 % 3),
						                   .flip = flip};
						check_geom(&g, f64, 1 + (a + b + c + s) % 2, seed++,
						           tol);
					}
}

START_TEST(test_channels_batches_f64)
{
	channels_and_batches(true, TOL64);
}
END_TEST

START_TEST(test_channels_batches_f32)
{
	channels_and_batches(false, TOL32);
}
END_TEST

/* Planes big enough that one chunk holds only part of an image (33x33,
 * 16 channels: a few tile rows per chunk) and ResNet's 32x32 (row strides
 * padded off 1 KiB multiples); one and two threads (their chunks differ,
 * and so may the last bits). */
static void big_planes(bool f64, double tol)
{
	static const int64_t hw[][2] = {{33, 33}, {32, 32}};
	uint64_t seed = 5;
	for (size_t s = 0; s < 2; s++)
		for (int flip = 0; flip < 2; flip++) {
			nb__wino_geom g = {.isa = nb__isa_level(),
			                   .n = 3,
			                   .c = 16,
			                   .o = 16,
			                   .h = hw[s][0],
			                   .w = hw[s][1],
			                   .pt = 1,
			                   .pl = 1,
			                   .pb = 1,
			                   .pr = 1,
			                   .flip = flip};
			if (s == 0)
				g.pb = 2, g.pl = 0;
			check_geom(&g, f64, 1, seed, tol);
			check_geom(&g, f64, 2, seed++, tol);
		}
}

START_TEST(test_big_planes_f64)
{
	big_planes(true, TOL64);
}
END_TEST

START_TEST(test_big_planes_f32)
{
	big_planes(false, TOL32);
}
END_TEST

/* More threads than images: the idle thread must not touch the output. */
START_TEST(test_more_threads_than_images)
{
	nb__wino_geom g = {.isa = nb__isa_level(),
	                   .n = 1,
	                   .c = 3,
	                   .o = 2,
	                   .h = 5,
	                   .w = 6,
	                   .pt = 1,
	                   .pl = 1,
	                   .pb = 1,
	                   .pr = 1};
	check_geom(&g, true, 2, 11, TOL64);
	g.flip = true;
	check_geom(&g, false, 2, 12, TOL32);
}
END_TEST

/* Exact values: a 4x4 image 1..16 and the kernel 1..9 (the notes'
 * example, no padding) give 348 393 528 573; the multiplies by 1/2 in G
 * are exact on these integers.  Flipped, a 2x2 dy of ones spreads the
 * kernel: dx[a][b] = sum over the windows covering (a, b) of W[a-i][b-j]. */
START_TEST(test_exact_values)
{
	double x[16], w[9], y[4], dy[4] = {1, 1, 1, 1}, dx[16];
	for (int i = 0; i < 16; i++)
		x[i] = i + 1;
	for (int i = 0; i < 9; i++)
		w[i] = i + 1;
	nb__wino_geom g = {.isa = nb__isa_level(), .n = 1, .c = 1, .o = 1, .h = 4, .w = 4};
	void *ws = ws_alloc(&g, sizeof(double), 1);
	nb__wino_forward_f64(&g, x, w, y, ws, 1);
	ck_near(y[0], 348, 0);
	ck_near(y[1], 393, 0);
	ck_near(y[2], 528, 0);
	ck_near(y[3], 573, 0);
	free(ws);
	g.flip = true;
	ws = ws_alloc(&g, sizeof(double), 1);
	nb__wino_forward_f64(&g, dy, w, dx, ws, 1);
	/* corner (0,0): only window (0,0), tap (0,0) = 1; (1,1): taps (1,1),
	 * (1,0), (0,1), (0,0) = 5 + 4 + 2 + 1 = 12; (3,3): tap (2,2) = 9 */
	ck_near(dx[0], 1, 0);
	ck_near(dx[5], 12, 0);
	ck_near(dx[15], 9, 0);
	ck_near(dx[1], 1 + 2, 0);
	free(ws);
}
END_TEST

START_TEST(test_unsupported)
{
	nb__wino_geom g = {.isa = nb__isa_level(), .n = 1, .c = 1, .o = 1, .h = 4, .w = 4};
	ck_assert(nb__wino_supported(&g));
	g.pt = 3;
	ck_assert(!nb__wino_supported(&g));
	ck_assert_uint_eq(nb__wino_workspace(&g, 4, 1), 0);
	g.pt = -1;
	ck_assert(!nb__wino_supported(&g));
	g.pt = 0, g.h = 2; /* 2 rows, no padding: the 3x3 kernel does not fit */
	ck_assert(!nb__wino_supported(&g));
	g.pb = 1; /* now it does: one output row */
	ck_assert(nb__wino_supported(&g));
	g.c = 0;
	ck_assert(!nb__wino_supported(&g));
	ck_assert(!nb__wino_supported(NULL));
}
END_TEST

/* ---- the weight gradient ------------------------------------------------ */

/* dW[o,c,m,k] = sum_{n,i,j} dy[n,o,i,j] x[n,c,i+m-pt,j+k-pl], by brute
 * force in long double; and the scale of its rounding errors: every dU
 * entry sums, over the tiles t, products of one value of A dy_t A^T (at
 * most the sum of |dy| over the 2x2 tile) and one of B^T d_t B (at most
 * the sum of |x| over the 4x4 patch), so
 *   scale[o,c] = sum_{n,t} (sum |dy_t|) (sum |d_t|). */
static void wgrad_reference(const nb__wino_geom *g, const double *dy, const double *x, double *dw,
                            double *scale)
{
	const int64_t oh = oh_of(g), ow = ow_of(g);
	for (int64_t o = 0; o < g->o; o++)
		for (int64_t c = 0; c < g->c; c++) {
			long double acc[9] = {0};
			double sc = 0;
			for (int64_t n = 0; n < g->n; n++) {
				const double *yp = dy + (n * g->o + o) * oh * ow;
				const double *xp = x + (n * g->c + c) * g->h * g->w;
				for (int64_t i = 0; i < oh; i++)
					for (int64_t j = 0; j < ow; j++)
						for (int64_t m = 0; m < 3; m++)
							for (int64_t k = 0; k < 3; k++) {
								const int64_t a = i + m - g->pt,
								              b = j + k - g->pl;
								if (a >= 0 && a < g->h && b >= 0 &&
								    b < g->w)
									acc[m * 3 + k] +=
									    (long double)
									        yp[i * ow + j] *
									    xp[a * g->w + b];
							}
				for (int64_t ti = 0; ti < (oh + 1) / 2; ti++)
					for (int64_t tj = 0; tj < (ow + 1) / 2; tj++) {
						double sy = 0, sx = 0;
						for (int64_t r = 0; r < 2; r++)
							for (int64_t q = 0; q < 2; q++)
								if (2 * ti + r < oh &&
								    2 * tj + q < ow)
									sy += fabs(
									    yp[(2 * ti + r) * ow +
									       2 * tj + q]);
						for (int64_t r = 0; r < 4; r++)
							for (int64_t q = 0; q < 4; q++) {
								const int64_t a = 2 * ti + r -
								                  g->pt,
								              b = 2 * tj + q -
								                  g->pl;
								if (a >= 0 && a < g->h && b >= 0 &&
								    b < g->w)
									sx +=
									    fabs(xp[a * g->w + b]);
							}
						sc += sy * sx;
					}
			}
			for (int e = 0; e < 9; e++) {
				dw[(o * g->c + c) * 9 + e] = (double)acc[e];
				scale[(o * g->c + c) * 9 + e] = sc;
			}
		}
}

static void *wgrad_ws(const nb__wino_geom *g, size_t es, int threads)
{
	size_t b = nb__wino_wgrad_workspace(g, es, threads);
	ck_assert(b > 0);
	void *p = aligned_alloc(64, (b + 63) / 64 * 64);
	ck_assert(p != NULL);
	return p;
}

/* The weight-gradient kernel of one type on random data with `threads`
 * threads, twice (the bits must repeat), against the reference:
 * |got - want| <= tol * scale. */
static void check_wgrad(const nb__wino_geom *g, bool f64, int threads, uint64_t seed, double tol)
{
	ck_assert_msg(nb__wino_supported(g), GEOM_FMT, GEOM_ARGS(g));
	const int64_t nx = g->n * g->c * g->h * g->w, ny = g->n * g->o * oh_of(g) * ow_of(g);
	const int64_t nw = g->o * g->c * 9;
	double *x = malloc((size_t)nx * sizeof(double)), *dy = malloc((size_t)ny * sizeof(double));
	double *want = malloc((size_t)nw * sizeof(double)),
	       *scale = malloc((size_t)nw * sizeof(double));
	double *got = malloc((size_t)nw * sizeof(double));
	ck_assert(x && dy && want && scale && got);
	for (int64_t e = 0; e < nx; e++)
		x[e] = lcg(&seed);
	for (int64_t e = 0; e < ny; e++)
		dy[e] = lcg(&seed);
	void *ws = wgrad_ws(g, f64 ? sizeof(double) : sizeof(float), threads);
	if (f64) {
		double out[2][16 * 16 * 9];
		ck_assert(nw <= 16 * 16 * 9);
		for (int run = 0; run < 2; run++) {
			for (int64_t e = 0; e < nw; e++)
				out[run][e] = NAN;
			nb__wino_weight_grad_f64(g, dy, x, out[run], ws, threads);
		}
		ck_assert_msg(!memcmp(out[0], out[1], (size_t)nw * sizeof(double)),
		              "f64 threads %d: bits differ between runs, " GEOM_FMT, threads,
		              GEOM_ARGS(g));
		memcpy(got, out[0], (size_t)nw * sizeof(double));
	} else {
		float *fx = malloc((size_t)nx * sizeof(float)),
		      *fy = malloc((size_t)ny * sizeof(float));
		float out[2][16 * 16 * 9];
		ck_assert(fx && fy && nw <= 16 * 16 * 9);
		for (int64_t e = 0; e < nx; e++)
			x[e] = fx[e] = (float)x[e];
		for (int64_t e = 0; e < ny; e++)
			dy[e] = fy[e] = (float)dy[e];
		for (int run = 0; run < 2; run++) {
			for (int64_t e = 0; e < nw; e++)
				out[run][e] = NAN;
			nb__wino_weight_grad_f32(g, fy, fx, out[run], ws, threads);
		}
		ck_assert_msg(!memcmp(out[0], out[1], (size_t)nw * sizeof(float)),
		              "f32 threads %d: bits differ between runs, " GEOM_FMT, threads,
		              GEOM_ARGS(g));
		for (int64_t e = 0; e < nw; e++)
			got[e] = out[0][e];
		free(fx), free(fy);
	}
	wgrad_reference(g, dy, x, want, scale);
	for (int64_t e = 0; e < nw; e++)
		ck_assert_msg(fabs(got[e] - want[e]) <= tol * scale[e],
		              "wgrad %s threads %d, " GEOM_FMT
		              ": element %lld = %.17g, expected %.17g "
		              "(scale %g, tol %g)",
		              f64 ? "f64" : "f32", threads, GEOM_ARGS(g), (long long)e, got[e],
		              want[e], scale[e], tol);
	free(x), free(dy), free(want), free(scale), free(ws), free(got);
}

/* all 81 paddings on odd and even planes, batches 1, 3, 5, channels 1 and
 * 3, one and two threads */
static void wgrad_every_padding(bool f64, double tol)
{
	static const int64_t hw[][2] = {{1, 1}, {2, 3}, {5, 4}, {6, 7}};
	uint64_t seed = 3;
	int k = 0;
	for (int64_t p = 0; p < 81; p++)
		for (size_t s = 0; s < sizeof hw / sizeof hw[0]; s++, k++) {
			nb__wino_geom g = {.isa = nb__isa_level(),
			                   .n = 1 + 2 * (k % 3),
			                   .c = k % 2 ? 3 : 1,
			                   .h = hw[s][0],
			                   .w = hw[s][1],
			                   .o = k % 4 < 2 ? 3 : 1,
			                   .pt = p % 3,
			                   .pl = p / 3 % 3,
			                   .pb = p / 9 % 3,
			                   .pr = p / 27};
			if (oh_of(&g) < 1 || ow_of(&g) < 1) {
				ck_assert_uint_eq(nb__wino_wgrad_workspace(&g, 4, 1), 0);
				continue;
			}
			check_wgrad(&g, f64, 1 + k % 2, seed++, tol);
		}
}

START_TEST(test_wgrad_every_padding_f64)
{
	wgrad_every_padding(true, TOL64);
}
END_TEST

START_TEST(test_wgrad_every_padding_f32)
{
	wgrad_every_padding(false, TOL32);
}
END_TEST

/* n, c, o in {1, 3, 5} x {1, 3, 16} x {1, 3, 16}, odd and even planes,
 * random paddings, one and two threads; and planes big enough that a
 * chunk holds part of an image (33x33, 32x32), both thread counts */
static void wgrad_channels_batches(bool f64, double tol)
{
	static const int64_t ns[] = {1, 3, 5}, cs[] = {1, 3, 16};
	static const int64_t hw[][2] = {{7, 9}, {8, 8}};
	uint64_t seed = 77, pick = 13;
	for (int a = 0; a < 3; a++)
		for (int b = 0; b < 3; b++)
			for (int c = 0; c < 3; c++)
				for (int s = 0; s < 2; s++) {
					uint64_t r = (uint64_t)((lcg(&pick) + 1) * 1e6);
					nb__wino_geom g = {.isa = nb__isa_level(),
					                   .n = ns[a],
					                   .c = cs[b],
					                   .o = cs[c],
					                   .h = hw[s][0],
					                   .w = hw[s][1],
					                   .pt = (int64_t)(r % 3),
					                   .pl = (int64_t)(r / 3 % 3),
					                   .pb = (int64_t)(r / 9 % 3),
					                   .pr = (int64_t)(r / 27 % 3)};
					check_wgrad(&g, f64, 1 + (a + b + c + s) % 2, seed++, tol);
				}
	static const int64_t big[][2] = {{33, 33}, {32, 32}};
	for (size_t s = 0; s < 2; s++) {
		nb__wino_geom g = {.isa = nb__isa_level(),
		                   .n = 3,
		                   .c = 16,
		                   .o = 16,
		                   .h = big[s][0],
		                   .w = big[s][1],
		                   .pt = 1,
		                   .pl = s ? 1 : 0,
		                   .pb = s ? 1 : 2,
		                   .pr = 1};
		check_wgrad(&g, f64, 1, seed, tol);
		check_wgrad(&g, f64, 2, seed++, tol);
	}
	/* more threads than images */
	nb__wino_geom g = {.isa = nb__isa_level(),
	                   .n = 1,
	                   .c = 3,
	                   .o = 2,
	                   .h = 5,
	                   .w = 6,
	                   .pt = 1,
	                   .pl = 1,
	                   .pb = 1,
	                   .pr = 1};
	check_wgrad(&g, f64, 2, seed, tol);
}

START_TEST(test_wgrad_channels_batches_f64)
{
	wgrad_channels_batches(true, TOL64);
}
END_TEST

START_TEST(test_wgrad_channels_batches_f32)
{
	wgrad_channels_batches(false, TOL32);
}
END_TEST

/* Exact values: x = 1..16 (4x4) and dy a 2x2 of ones, no padding:
 * dW[m][k] = sum_{i,j < 2} x[i+m][j+k] = 14 + 16 m + 4 k, i.e. 14 18 22 /
 * 30 34 38 / 46 50 54 (the 2x2 window sum 1 + 2 + 5 + 6 = 14, growing by
 * 4 per column and 16 per row); the halves in G^T are exact here. */
START_TEST(test_wgrad_exact_values)
{
	double x[16], dy[4] = {1, 1, 1, 1}, dw[9];
	for (int i = 0; i < 16; i++)
		x[i] = i + 1;
	nb__wino_geom g = {.isa = nb__isa_level(), .n = 1, .c = 1, .o = 1, .h = 4, .w = 4};
	void *ws = wgrad_ws(&g, sizeof(double), 1);
	nb__wino_weight_grad_f64(&g, dy, x, dw, ws, 1);
	for (int m = 0; m < 3; m++)
		for (int k = 0; k < 3; k++)
			ck_near(dw[m * 3 + k], 14 + 16 * m + 4 * k, 0);
	free(ws);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("winograd");
	TCase *tc = tcase_create("winograd");
	tcase_add_test(tc, test_exact_values);
	tcase_add_test(tc, test_unsupported);
	tcase_add_test(tc, test_every_padding_f64);
	tcase_add_test(tc, test_every_padding_f32);
	tcase_add_test(tc, test_channels_batches_f64);
	tcase_add_test(tc, test_channels_batches_f32);
	tcase_add_test(tc, test_big_planes_f64);
	tcase_add_test(tc, test_big_planes_f32);
	tcase_add_test(tc, test_more_threads_than_images);
	tcase_add_test(tc, test_wgrad_exact_values);
	tcase_add_test(tc, test_wgrad_every_padding_f64);
	tcase_add_test(tc, test_wgrad_every_padding_f32);
	tcase_add_test(tc, test_wgrad_channels_batches_f64);
	tcase_add_test(tc, test_wgrad_channels_batches_f32);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
