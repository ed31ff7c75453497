/* Convolution: output sizes, the notes' worked example, forward and all
 * three gradients against a naive direct reference, depthwise direct vs
 * im2col, gradchecks (first and second order), shape errors. */
#include "test_util.h"

#include "ops/conv/direct.h"
#include "ops/conv/winograd.h"

/* the kernels with images in the lanes are compiled (images_avx512.h) */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define IL_EXPECTED 1
#else
#define IL_EXPECTED 0
#endif

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* deterministic values in [-1, 1) */
static double lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(*s >> 11) * 0x1.0p-52 - 1.0;
}

static void fill(double *v, int64_t n, uint64_t seed)
{
	for (int64_t i = 0; i < n; i++)
		v[i] = lcg(&seed);
}

static nb_shape out_shape(nb_graph *g, nb_shape xs, nb_shape ws, nb_conv2d_opts o)
{
	nb_tensor *x = nb_input(g, "x", xs), *w = nb_input(g, "w", ws);
	return nb_tensor_shape(nb_conv2d(x, w, NULL, o));
}

/* The notes' output-size formula H1 = (H + 2P - K)/S + 1 and its examples. */
START_TEST(test_output_sizes)
{
	nb_graph *g = nb_graph_new(NB_F32);
	/* 5x5 image, 3x3 kernel, stride 1, padding 0 -> 3x3 */
	nb_shape s = out_shape(g, NB_SHAPE(1, 1, 5, 5), NB_SHAPE(1, 1, 3, 3), (nb_conv2d_opts){0});
	ck_assert_int_eq(s.ndim, 4);
	ck_assert_int_eq(s.d[2], 3);
	ck_assert_int_eq(s.d[3], 3);
	/* 224x224x3 image, 3x3 kernel -> 222x222x1 */
	s = out_shape(g, NB_SHAPE(1, 3, 224, 224), NB_SHAPE(1, 3, 3, 3), (nb_conv2d_opts){0});
	ck_assert(s.d[0] == 1 && s.d[1] == 1 && s.d[2] == 222 && s.d[3] == 222);
	/* 4x4 * 3x3 -> 2x2 */
	s = out_shape(g, NB_SHAPE(1, 1, 4, 4), NB_SHAPE(1, 1, 3, 3), (nb_conv2d_opts){0});
	ck_assert(s.d[2] == 2 && s.d[3] == 2);
	/* stride 2 halves: 224 with a padded 3x3 -> 112; 5x5 -> floor(2/2)+1 = 2 */
	s = out_shape(g, NB_SHAPE(1, 3, 224, 224), NB_SHAPE(64, 3, 3, 3), NB_CONV_OPTS(2, 1));
	ck_assert(s.d[1] == 64 && s.d[2] == 112 && s.d[3] == 112);
	s = out_shape(g, NB_SHAPE(1, 1, 5, 5), NB_SHAPE(1, 1, 3, 3), NB_CONV_OPTS(2, 0));
	ck_assert(s.d[2] == 2 && s.d[3] == 2);
	/* dilation: floor((7 - 2*2 - 1)/1) + 1 = 3 */
	s = out_shape(g, NB_SHAPE(1, 1, 7, 7), NB_SHAPE(1, 1, 3, 3),
	              (nb_conv2d_opts){.dilation_h = 2, .dilation_w = 2});
	ck_assert(s.d[2] == 3 && s.d[3] == 3);
	/* same keeps H x W at stride 1, for odd and even kernels; stride 2:
	 * ceil(H / 2) */
	for (int k = 1; k <= 6; k++) {
		s = out_shape(g, NB_SHAPE(2, 3, 9, 8), NB_SHAPE(4, 3, k, k),
		              (nb_conv2d_opts){.padding = NB_PAD_SAME});
		ck_assert_msg(s.d[2] == 9 && s.d[3] == 8, "same, kernel %d: %lldx%lld", k,
		              (long long)s.d[2], (long long)s.d[3]);
		s = out_shape(
		    g, NB_SHAPE(2, 3, 9, 8), NB_SHAPE(4, 3, k, k),
		    (nb_conv2d_opts){.padding = NB_PAD_SAME, .stride_h = 2, .stride_w = 2});
		ck_assert(s.d[2] == 5 && s.d[3] == 4);
	}
	/* valid = no padding */
	s = out_shape(g, NB_SHAPE(1, 1, 6, 6), NB_SHAPE(1, 1, 3, 3),
	              (nb_conv2d_opts){.padding = NB_PAD_VALID});
	ck_assert(s.d[2] == 4 && s.d[3] == 4);
	ck_graph_ok(g);
	nb_graph_free(g);
}
END_TEST

/* The notes' example: a 4x4 image a..p correlated with a 3x3 kernel q..y
 * gives 2x2, o(0,0) = aq + br + cs + et + fu + gv + iw + jx + ky (no
 * flip).  With a..p = 1..16 and q..y = 1..9:
 *   o(0,0) = 1*1 + 2*2 + 3*3 + 5*4 + 6*5 + 7*6 + 9*7 + 10*8 + 11*9 = 348,
 * one step right adds the kernel sum 45, one step down 4*45 = 180. */
START_TEST(test_notes_4x4_example)
{
	for (int dt = 0; dt < 2; dt++) {
		nb_graph *g = nb_graph_new(dt ? NB_F64 : NB_F32);
		double img[16], ker[9];
		for (int i = 0; i < 16; i++)
			img[i] = i + 1;
		for (int i = 0; i < 9; i++)
			ker[i] = i + 1;
		nb_tensor *x = nb_constant(g, "I", NB_SHAPE(1, 1, 4, 4), img);
		nb_tensor *k = nb_constant(g, "K", NB_SHAPE(1, 1, 3, 3), ker);
		nb_tensor *o = nb_conv2d(x, k, NULL, (nb_conv2d_opts){0});
		ck_graph_ok(g);
		ck_assert_int_eq(nb_eval(o), NB_OK);
		double out[4];
		nb_read_f64(o, out, 4);
		ck_near(out[0], 348, 0);
		ck_near(out[1], 393, 0);
		ck_near(out[2], 528, 0);
		ck_near(out[3], 573, 0);
		/* a flipped kernel (true convolution) would give 1*9 + 2*8 + ... = 192 */
		ck_assert(out[0] != 192);
		nb_graph_free(g);
	}
}
END_TEST

/* ---- the naive reference ---------------------------------------------------------- */

typedef struct cfg {
	int n, c, h, w, o, kh, kw;
	nb_conv2d_opts opt;
	bool bias;
} cfg;

static int dflt(int v)
{
	return v ? v : 1;
}

/* the test's own padding rule (TensorFlow's "same") */
static void pads(const cfg *c, int *pt, int *pl, int *pb, int *pr)
{
	*pt = *pb = c->opt.pad_h;
	*pl = *pr = c->opt.pad_w;
	if (c->opt.padding == NB_PAD_VALID)
		*pt = *pb = *pl = *pr = 0;
	if (c->opt.padding == NB_PAD_SAME) {
		int sh = dflt(c->opt.stride_h), sw = dflt(c->opt.stride_w);
		int th = ((c->h + sh - 1) / sh - 1) * sh + dflt(c->opt.dilation_h) * (c->kh - 1) +
		         1 - c->h;
		int tw = ((c->w + sw - 1) / sw - 1) * sw + dflt(c->opt.dilation_w) * (c->kw - 1) +
		         1 - c->w;
		th = th < 0 ? 0 : th;
		tw = tw < 0 ? 0 : tw;
		*pt = th / 2, *pb = th - th / 2, *pl = tw / 2, *pr = tw - tw / 2;
	}
}

typedef struct ref {
	int oh, ow;
	double *y, *dx, *dw, *db;     /* values */
	double *ay, *adx, *adw, *adb; /* sums of |terms|: the scale of rounding errors */
} ref;

static void ref_free(ref *r)
{
	free(r->y), free(r->dx), free(r->dw), free(r->db);
	free(r->ay), free(r->adx), free(r->adw), free(r->adb);
}

/* y[n,o,i,j] = b[o] + sum_{c,m,k} w[o,c,m,k] x[n, grp*cg + c, i sh - pt + m dh,
 * j sw - pl + k dw]; and for dy: dx, dw, db by the same seven loops */
static ref reference(const cfg *c, const double *x, const double *w, const double *b,
                     const double *dy)
{
	int pt, pl, pb, pr;
	pads(c, &pt, &pl, &pb, &pr);
	int sh = dflt(c->opt.stride_h), sw = dflt(c->opt.stride_w);
	int dh = dflt(c->opt.dilation_h), dw = dflt(c->opt.dilation_w), gr = dflt(c->opt.groups);
	int cg = c->c / gr, og = c->o / gr;
	ref r;
	r.oh = (c->h + pt + pb - dh * (c->kh - 1) - 1) / sh + 1;
	r.ow = (c->w + pl + pr - dw * (c->kw - 1) - 1) / sw + 1;
	size_t ny = (size_t)c->n * c->o * r.oh * r.ow, nx = (size_t)c->n * c->c * c->h * c->w;
	size_t nw = (size_t)c->o * cg * c->kh * c->kw;
	r.y = calloc(ny, sizeof(double)), r.ay = calloc(ny, sizeof(double));
	r.dx = calloc(nx, sizeof(double)), r.adx = calloc(nx, sizeof(double));
	r.dw = calloc(nw, sizeof(double)), r.adw = calloc(nw, sizeof(double));
	r.db = calloc((size_t)c->o, sizeof(double)), r.adb = calloc((size_t)c->o, sizeof(double));
	for (int n = 0; n < c->n; n++)
		for (int o = 0; o < c->o; o++)
			for (int i = 0; i < r.oh; i++)
				for (int j = 0; j < r.ow; j++) {
					size_t yi = (((size_t)n * c->o + o) * r.oh + i) * r.ow + j;
					double g = dy[yi];
					if (b) {
						r.y[yi] = b[o], r.ay[yi] = fabs(b[o]);
						r.db[o] += g, r.adb[o] += fabs(g);
					}
					for (int cc = 0; cc < cg; cc++)
						for (int m = 0; m < c->kh; m++)
							for (int k = 0; k < c->kw; k++) {
								int ih = i * sh - pt + m * dh,
								    iw = j * sw - pl + k * dw;
								if (ih < 0 || ih >= c->h ||
								    iw < 0 || iw >= c->w)
									continue;
								int ch = o / og * cg + cc;
								size_t xi =
								    (((size_t)n * c->c + ch) *
								         c->h +
								     ih) *
								        c->w +
								    iw;
								size_t wi =
								    (((size_t)o * cg + cc) * c->kh +
								     m) *
								        c->kw +
								    k;
								r.y[yi] += w[wi] * x[xi];
								r.ay[yi] += fabs(w[wi] * x[xi]);
								r.dx[xi] += w[wi] * g;
								r.adx[xi] += fabs(w[wi] * g);
								r.dw[wi] += x[xi] * g;
								r.adw[wi] += fabs(x[xi] * g);
							}
				}
	return r;
}

/* |got - want| <= tol * max(scale, 1) for every element */
static void compare(const char *what, int ci, int algo, const double *got, const double *want,
                    const double *scale, int64_t n, double tol)
{
	for (int64_t i = 0; i < n; i++) {
		double lim = tol * (scale[i] > 1 ? scale[i] : 1);
		if (fabs(got[i] - want[i]) <=
		    lim) /* Check records every assertion: only failures */
			continue;
		ck_assert_msg(fabs(got[i] - want[i]) <= lim,
		              "config %d (algo %d) %s[%lld]: got %.17g want %.17g (tol %g)", ci,
		              algo, what, (long long)i, got[i], want[i], lim);
	}
}

static const cfg configs[] = {
    {1, 1, 5, 5, 1, 3, 3, {0}, false},
    {2, 3, 7, 7, 4, 3, 3, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}, true},
    {2, 2, 6, 5, 3, 2, 3, {.padding = NB_PAD_VALID}, false},
    {2, 3, 6, 6, 4, 3, 3, {.padding = NB_PAD_SAME}, true},
    {2, 2, 6, 7, 3, 2, 2, {.padding = NB_PAD_SAME}, false}, /* even: pad 0 top, 1 bottom */
    {1, 2, 7, 6, 2, 4, 4, {.padding = NB_PAD_SAME, .stride_h = 2, .stride_w = 2}, true},
    {2, 2, 9, 8, 3, 3, 3, {.dilation_h = 2, .dilation_w = 2, .pad_h = 2, .pad_w = 2}, false},
    {1, 2, 9, 9, 2, 3, 2, {.dilation_h = 2, .dilation_w = 3, .stride_w = 2}, true},
    {2, 4, 6, 6, 6, 3, 3, {.groups = 2, .pad_h = 1, .pad_w = 1}, true},
    {2, 4, 6, 6, 4, 3, 3, {.groups = 4, .pad_h = 1, .pad_w = 1}, true}, /* depthwise */
    {2,
     3,
     7,
     7,
     6,
     3,
     3,
     {.groups = 3, .stride_h = 2, .stride_w = 2, .padding = NB_PAD_SAME},
     false},
    {2, 4, 6, 6, 4, 3, 3, {.groups = 4, .pad_h = 1, .pad_w = 1, .algo = NB_CONV_IM2COL}, true},
    {4, 8, 5, 5, 6, 1, 1, {0}, true}, /* pointwise */
    {2, 4, 5, 5, 4, 1, 1, {.groups = 2}, false},
    {2, 4, 8, 8, 6, 1, 1, {.stride_h = 2, .stride_w = 2}, false},
    {1, 16, 32, 32, 16, 3, 3, {.pad_h = 1, .pad_w = 1}, true}, /* parallel im2col */
    {4, 16, 16, 16, 8, 3, 3, {.pad_h = 1, .pad_w = 1}, false}, /* batch threads */
    {6,
     8,
     9,
     9,
     8,
     3,
     3,
     {.groups = 2, .stride_h = 2, .stride_w = 2, .padding = NB_PAD_SAME},
     true},
    {3, 2, 6, 8, 2, 1, 3, {.pad_w = 1}, false},
    {2, 1, 12, 12, 6, 5, 5, {0}, true}, /* LeNet's first layer: C = 1 is "depthwise" */
    {1, 1, 3, 3, 1, 2, 2, {.pad_h = 2, .pad_w = 2}, false},
    {8, 32, 10, 10, 32, 3, 3, {.groups = 32, .pad_h = 1, .pad_w = 1}, false}, /* parallel direct */
    {2, 8, 16, 16, 8, 1, 1, {0}, true}, /* 1x1 whose rows (256 floats) get a padded copy */
    /* several images per GEMM (chunk_for): uneven pieces, per thread */
    {13, 4, 8, 8, 6, 3, 3, {.pad_h = 1, .pad_w = 1}, true}, /* pieces of 6 and 7 */
    {5, 6, 14, 14, 16, 5, 5, {.groups = 2}, true},          /* LeNet's conv2, grouped */
    {5, 8, 16, 16, 8, 1, 1, {0}, false},                    /* 1x1: gathered, not in place */
    {7, 4, 16, 16, 8, 3, 3, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}, true},
    /* the wide layout (valid, stride-1 rows): vertical padding and dilation,
     * a tap run clamped at the end of the plane */
    {3, 3, 9, 11, 4, 3, 4, {.pad_h = 2, .dilation_h = 2}, true},
    {4, 2, 5, 7, 3, 5, 7, {.pad_h = 1}, false}, /* a single output column */
    /* images cut into bands of output rows (rows_for) */
    {1, 64, 23, 50, 3, 3, 3, {.pad_h = 1, .pad_w = 1}, true}, /* 12 + 11 rows */
    {2, 16, 64, 64, 4, 3, 3, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}, false},
    {1, 130, 40, 40, 4, 1, 1, {0}, true}, /* 1x1 in place: 14 + 14 + 12 rows */
    /* Winograd: asked for, and by default in f32 from 16 channels in and
     * out (f64 takes im2col there: both paths are checked) */
    {3, 5, 7, 9, 4, 3, 3, {.pad_h = 1, .pad_w = 2, .algo = NB_CONV_WINOGRAD}, true},
    {2, 3, 6, 5, 2, 3, 3, {.padding = NB_PAD_VALID, .algo = NB_CONV_WINOGRAD}, false},
    {3, 64, 6, 6, 64, 3, 3, {.pad_h = 1, .pad_w = 1}, true},
    {3, 16, 10, 10, 16, 3, 3, {.pad_h = 1, .pad_w = 1}, false},
    /* one input channel: the direct forward (blocks of 6 channels, 16 pixels) */
    {3, 1, 19, 37, 13, 3, 8, {.padding = NB_PAD_SAME}, true},
    {2, 1, 9, 9, 7, 1, 1, {0}, false},
    /* ... and its weight gradient (kW 3 and 5, an odd number of channels) */
    {3, 1, 15, 21, 7, 4, 3, {.pad_h = 1, .pad_w = 2}, true},
    {2, 1, 20, 19, 13, 5, 5, {.padding = NB_PAD_SAME}, false},
    /* a few input channels: the direct kernels (dc: output channels in
     * lanes, blocks of 16 and pixel / tap blocks of 6 or 3 with remainders;
     * dt: the stride-1 input gradient, 6 channels by 16 pixels) */
    {5, 6, 14, 14, 16, 5, 5, {0}, true}, /* LeNet's conv2 */
    {3, 7, 13, 37, 20, 3, 3, {.padding = NB_PAD_SAME}, true},
    {2, 3, 11, 10, 37, 4, 4, {.padding = NB_PAD_SAME}, false}, /* even: pad 1 top, 2 bottom */
    {2, 5, 12, 13, 9, 3, 5, {.stride_h = 2, .stride_w = 3, .pad_h = 2, .pad_w = 4}, true},
    {3, 2, 10, 11, 17, 3, 3, {.dilation_h = 2, .dilation_w = 3, .pad_h = 2, .pad_w = 3}, false},
    {2, 8, 7, 19, 32, 5, 3, {.pad_h = 4, .pad_w = 2}, true}, /* padding kH - 1 */
    {2, 13, 6, 6, 3, 3, 3, {.pad_h = 1, .pad_w = 1, .algo = NB_CONV_DIRECT}, false},
    /* ... the input gradient in phases (dp): two channel blocks, a stride
     * of 3 over a 2x2 kernel (phases without taps: zeros) */
    {2, 20, 9, 11, 6, 3, 3, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}, true},
    {2, 4, 10, 10, 5, 2, 2, {.stride_h = 3, .stride_w = 3}, false},
    {3, 16, 12, 12, 16, 3, 3, {.stride_h = 2, .stride_w = 2, .padding = NB_PAD_SAME}, true},
    /* one image: the direct forward splits its rows over the threads */
    {1, 8, 30, 29, 20, 3, 3, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}, true},
};
#define N_CONFIGS ((int)(sizeof configs / sizeof configs[0]))

/* Forward and the three gradients of L = sum(y * dy) for one config (ci:
 * its number in messages). */
static void check_cfg(const cfg *c, int ci, nb_dtype dt, int compile_threads, int run_threads)
{
	nb_shape xs = NB_SHAPE(c->n, c->c, c->h, c->w);
	nb_shape ws = NB_SHAPE(c->o, c->c / dflt(c->opt.groups), c->kh, c->kw);
	int64_t nx = nb_shape_size(xs), nw = nb_shape_size(ws);
	double *x = malloc(sizeof(double) * nx), *w = malloc(sizeof(double) * nw);
	double b[64];
	fill(x, nx, 1 + ci), fill(w, nw, 100 + ci), fill(b, c->o, 200 + ci);

	nb_graph *g = nb_graph_new(dt);
	nb_tensor *tx = nb_param(g, "x", xs, NB_ZEROS), *tw = nb_param(g, "w", ws, NB_ZEROS);
	nb_tensor *tb = c->bias ? nb_param(g, "b", NB_SHAPE(c->o), NB_ZEROS) : NULL;
	nb_feed_f64(tx, x, nx), nb_feed_f64(tw, w, nw);
	if (tb)
		nb_feed_f64(tb, b, c->o);
	nb_tensor *y = nb_conv2d(tx, tw, tb, c->opt);
	ck_graph_ok(g);
	int64_t ny = nb_tensor_size(y);
	double *dy = malloc(sizeof(double) * ny);
	fill(dy, ny, 300 + ci);
	ref r = reference(c, x, w, tb ? b : NULL, dy);
	nb_shape ys = nb_tensor_shape(y);
	ck_assert(ys.d[0] == c->n && ys.d[1] == c->o && ys.d[2] == r.oh && ys.d[3] == r.ow);

	nb_tensor *cdy = nb_constant(g, "dy", ys, dy);
	nb_tensor *L = nb_sum(nb_mul(y, cdy));
	nb_tensor *grads[3];
	nb_tensor *wrt[3] = {tx, tw, tb};
	ck_assert_int_eq(nb_grads(L, wrt, tb ? 3 : 2, grads), NB_OK);
	nb_tensor *targets[4] = {y, grads[0], grads[1], tb ? grads[2] : y};
	nb_set_num_threads(compile_threads);
	nb_program *p = nb_compile(g, targets, 4);
	nb_set_num_threads(run_threads);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_run(p), NB_OK);
	/* twice: the second run must not depend on state left by the first */
	ck_assert_int_eq(nb_run(p), NB_OK);

	double tol = dt == NB_F64 ? 1e-12 : 1e-4;
	double *got =
	    malloc(sizeof(double) * (ny > nx ? (ny > nw ? ny : nw) : (nx > nw ? nx : nw)));
	nb_read_f64(y, got, ny);
	compare("y", ci, c->opt.algo, got, r.y, r.ay, ny, tol);
	nb_read_f64(grads[0], got, nx);
	compare("dx", ci, c->opt.algo, got, r.dx, r.adx, nx, tol);
	nb_read_f64(grads[1], got, nw);
	compare("dw", ci, c->opt.algo, got, r.dw, r.adw, nw, tol);
	if (tb) {
		nb_read_f64(grads[2], got, c->o);
		compare("db", ci, c->opt.algo, got, r.db, r.adb, c->o, tol);
	}
	ref_free(&r);
	free(got), free(x), free(w), free(dy);
	nb_graph_free(g);
}

/* a config with its own algorithm; with NB_CONV_AUTO also every algorithm
 * that takes it (im2col, and direct for one group or depthwise), so each
 * path is checked whatever AUTO picks */
static void check_config(int ci, nb_dtype dt, int compile_threads, int run_threads)
{
	cfg c = configs[ci];
	check_cfg(&c, ci, dt, compile_threads, run_threads);
	if (c.opt.algo != NB_CONV_AUTO)
		return;
	c.opt.algo = NB_CONV_IM2COL;
	check_cfg(&c, ci, dt, compile_threads, run_threads);
	if (dflt(c.opt.groups) == 1 || dflt(c.opt.groups) == c.c) {
		c.opt.algo = NB_CONV_DIRECT;
		check_cfg(&c, ci, dt, compile_threads, run_threads);
	}
}

START_TEST(test_matches_reference_f64)
{
	for (int th = 1; th <= 2; th++)
		for (int ci = 0; ci < N_CONFIGS; ci++)
			check_config(ci, NB_F64, th, th);
	/* 3 threads: the batch of 6 splits over them, the batch of 4 does not */
	check_config(16, NB_F64, 3, 3);
	check_config(17, NB_F64, 3, 3);
	check_config(40, NB_F64, 3, 3); /* direct kernels: 5 images on 3 threads */
	check_config(41, NB_F64, 4, 4); /* 3 images on 3 of 4 threads */
	check_config(50, NB_F64, 3, 3); /* one image's 15 rows on 3 threads */
	nb_set_num_threads(0);
}
END_TEST

START_TEST(test_matches_reference_f32)
{
	for (int th = 1; th <= 2; th++)
		for (int ci = 0; ci < N_CONFIGS; ci++)
			check_config(ci, NB_F32, th, th);
	nb_set_num_threads(0);
}
END_TEST

/* The blocks of the one-channel and direct kernels at every ISA level (the
 * suite runs once per level): 1 to 17 input channels (the transposed
 * input gradient's channel blocks are 6 below AVX-512, 16 floats or 12
 * doubles at it, with the remainders), kernels 1, 3, 5 and 7 wide, rows of
 * whole 16-pixel blocks (16, 32: stored straight into dx, also for a last
 * block of fewer channels than it computes) and rows with a partial block
 * (5, 17, 31, 33, 47); one input channel takes the one-channel kernels
 * (blocks of 16 pixels, 32 floats at AVX-512), more the direct ones. */
START_TEST(test_lane_blocks)
{
	static const int whole[] = {16, 32}, part[] = {5, 17, 31, 33, 47}, ks[] = {1, 3, 5, 7};
	for (int dt = 0; dt < 2; dt++)
		for (int c = 1; c <= 17; c++)
			for (int v = 0; v < 2; v++) {
				const int k = ks[(c + v) % 4], ci = 1000 + 2 * c + v;
				cfg t = {2,
				         c,
				         3 + (c + v) % 4,
				         v ? part[c % 5] : whole[c % 2],
				         1 + (c * 7 + v) % 17,
				         k,
				         k,
				         {.pad_h = k / 2,
				          .pad_w = k / 2,
				          .algo = c == 1 ? NB_CONV_AUTO : NB_CONV_DIRECT},
				         (c + v) % 2 == 0};
				const int th = 1 + 2 * v; /* 1 thread, 3 threads */
				check_cfg(&t, ci, dt ? NB_F64 : NB_F32, th, th);
			}
	nb_set_num_threads(0);
}
END_TEST

/* A program is planned at compile time for that thread count; a run at
 * another count plans it again (and grows its workspace) first, so it is
 * right either way. */
START_TEST(test_threads_changed_after_compile)
{
	const int batched[] = {1,  12, 16, 17, 23, 24, 26, 27, 29,
	                       30, 32, 34, 35, 40, 41, 43, 49, 50};
	for (size_t i = 0; i < sizeof batched / sizeof batched[0]; i++) {
		check_config(batched[i], NB_F64, 1, 2);
		check_config(batched[i], NB_F64, 2, 1);
	}
	nb_set_num_threads(0);
}
END_TEST

/* ---- the plans a program keeps from compile time -------------------------------- */

/* y, dx, dw of a 16 -> 16 3x3 convolution (batch 6, f32) as float bits
 * into out[3][n]: one graph, built the same for every call */
typedef struct conv_bits {
	nb_graph *g;
	nb_tensor *t[3];
	int64_t n[3];
} conv_bits;

static conv_bits bits_graph(nb_conv_algo algo)
{
	conv_bits b = {.g = nb_graph_new(NB_F32)};
	nb_graph_seed(b.g, 11);
	nb_conv2d_opts o = NB_CONV_OPTS(1, 1);
	o.algo = algo;
	nb_tensor *x = nb_param(b.g, "x", NB_SHAPE(6, 16, 12, 12), NB_UNIFORM(-1, 1));
	nb_tensor *w = nb_param(b.g, "w", NB_SHAPE(16, 16, 3, 3), NB_UNIFORM(-1, 1));
	nb_tensor *y = nb_conv2d(x, w, NULL, o);
	nb_tensor *c = nb_param(b.g, "c", nb_tensor_shape(y), NB_UNIFORM(-1, 1));
	nb_tensor *wrt[2] = {x, w}, *gr[2];
	ck_assert_int_eq(nb_grads(nb_sum(nb_mul(y, nb_stop_gradient(c))), wrt, 2, gr), NB_OK);
	b.t[0] = y, b.t[1] = gr[0], b.t[2] = gr[1];
	for (int i = 0; i < 3; i++)
		b.n[i] = nb_tensor_size(b.t[i]);
	return b;
}

static void bits_read(const conv_bits *b, float *out[3])
{
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(nb_read_f32(b->t[i], out[i], b->n[i]), NB_OK);
}

static void bits_eq(const conv_bits *b, float *x[3], float *y[3], const char *what)
{
	for (int i = 0; i < 3; i++)
		ck_assert_msg(!memcmp(x[i], y[i], sizeof(float) * (size_t)b->n[i]),
		              "%s: %s differs", what,
		              i == 0   ? "y"
		              : i == 1 ? "dx"
		                       : "dw");
}

/* the bits of one program compiled at cth threads and run at rth */
static void bits_fresh(nb_conv_algo algo, int cth, int rth, float *out[3])
{
	conv_bits b = bits_graph(algo);
	nb_set_num_threads(cth);
	nb_program *p = nb_compile(b.g, b.t, 3);
	ck_graph_ok(b.g);
	nb_set_num_threads(rth);
	ck_assert_int_eq(nb_run(p), NB_OK);
	bits_read(&b, out);
	nb_graph_free(b.g);
}

/* Two programs sharing the conv nodes, compiled at 2 and at 1 thread, run
 * in turn at 2 and 1 threads: each run gives the bits of a program of its
 * own compiled and run at the run's count, whatever count it was compiled
 * at and whatever the other program ran at last (the weight gradient's sum
 * depends on the batch threads): plans belong to programs, and are made
 * again for the thread count of the run. */
START_TEST(test_cached_plan_follows_threads)
{
	const nb_conv_algo algos[] = {NB_CONV_AUTO, NB_CONV_IM2COL, NB_CONV_DIRECT,
	                              NB_CONV_WINOGRAD};
	for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
		conv_bits b = bits_graph(algos[a]);
		float *got[3], *want[3];
		for (int i = 0; i < 3; i++) {
			got[i] = malloc(sizeof(float) * (size_t)b.n[i]);
			want[i] = malloc(sizeof(float) * (size_t)b.n[i]);
		}
		nb_set_num_threads(2);
		nb_program *p2 = nb_compile(b.g, b.t, 3);
		nb_set_num_threads(1);
		nb_program *p1 = nb_compile(b.g, b.t, 3);
		ck_graph_ok(b.g);
		const struct {
			nb_program *p;
			int cth, rth;
		} runs[] = {{p2, 2, 2}, {p1, 1, 1}, {p2, 2, 1}, {p1, 1, 2}, {p2, 2, 2}, {p1, 1, 1}};
		for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
			char what[64];
			snprintf(what, sizeof what, "algo %d, run %zu", (int)algos[a], r);
			nb_set_num_threads(runs[r].rth);
			ck_assert_int_eq(nb_run(runs[r].p), NB_OK);
			bits_read(&b, got);
			bits_fresh(algos[a], runs[r].rth, runs[r].rth, want);
			bits_eq(&b, got, want, what);
		}
		for (int i = 0; i < 3; i++)
			free(got[i]), free(want[i]);
		nb_graph_free(b.g);
	}
	nb_set_num_threads(0);
}
END_TEST

/* conv of random U(-1, 1) parameters x, w (and b when c->bias) */
static nb_tensor *random_conv(nb_graph *g, const cfg *c, nb_conv2d_opts o, nb_tensor *p[3])
{
	p[0] = nb_param(g, "x", NB_SHAPE(c->n, c->c, c->h, c->w), NB_UNIFORM(-1, 1));
	p[1] = nb_param(g, "w", NB_SHAPE(c->o, c->c / dflt(c->opt.groups), c->kh, c->kw),
	                NB_UNIFORM(-1, 1));
	p[2] = c->bias ? nb_param(g, "b", NB_SHAPE(c->o), NB_UNIFORM(-1, 1)) : NULL;
	return nb_conv2d(p[0], p[1], p[2], o);
}

/* ---- depthwise: the direct kernel agrees with the general grouped path --------- */

static void run_algo(nb_dtype dt, const cfg *c, nb_conv_algo algo, double *out[4])
{
	nb_graph *g = nb_graph_new(dt);
	nb_graph_seed(g, 7);
	nb_conv2d_opts o = c->opt;
	o.algo = algo;
	nb_tensor *p3[3], *y = random_conv(g, c, o, p3);
	nb_tensor *cst = nb_param(g, "c", nb_tensor_shape(y), NB_UNIFORM(-1, 1));
	nb_tensor *L = nb_sum(nb_mul(y, nb_stop_gradient(cst)));
	nb_tensor *gr[3];
	nb_grads(L, p3, 3, gr);
	nb_tensor *t[4] = {y, gr[0], gr[1], gr[2]};
	nb_program *p = nb_compile(g, t, 4);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_run(p), NB_OK);
	for (int i = 0; i < 4; i++) {
		out[i] = malloc(sizeof(double) * nb_tensor_size(t[i]));
		nb_read_f64(t[i], out[i], nb_tensor_size(t[i]));
	}
	nb_graph_free(g);
}

/* The stride-1 forward, input and weight gradients with 16 images in the
 * lanes (floats at AVX-512, rows of at most 16 pixels, 16 images or more:
 * direct.c, images_avx512.h) against im2col: a last group of fewer images, channel
 * blocks of 6 with a tail, padding, a 3 x 5 kernel, rows of 16; on one
 * thread and on three.  Below AVX-512 the same comparison covers the
 * pixel-lane kernel. */
/* whether nb__direct_images_lanes takes each pass of c (forward, input
 * gradient, weight gradient) at this machine's level */
static bool images_lanes(const cfg *c, nb__conv_pass pass)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *p3[3], *y = random_conv(g, c, c->opt, p3);
	ck_graph_ok(g);
	const nb__conv_geom geo = nb__conv_geom_of(y);
	nb_graph_free(g);
	return nb__direct_images_lanes(&geo, pass, sizeof(float), nb__isa_level());
}

/* the element counts of y, dx, dw and db of an ungrouped c */
static void conv_sizes(const cfg *c, int64_t sizes[4])
{
	nb_graph *g = nb_graph_new(NB_F32);
	const nb_shape ys = out_shape(g, NB_SHAPE(c->n, c->c, c->h, c->w),
	                              NB_SHAPE(c->o, c->c, c->kh, c->kw), c->opt);
	ck_graph_ok(g);
	nb_graph_free(g);
	sizes[0] = nb_shape_size(ys);
	sizes[1] = (int64_t)c->n * c->c * c->h * c->w;
	sizes[2] = (int64_t)c->o * c->c * c->kh * c->kw;
	sizes[3] = c->o;
}

START_TEST(test_images_in_lanes)
{
	const cfg cs[] = {
	    {20, 6, 14, 14, 16, 5, 5, {0}, true},
	    {16, 7, 9, 11, 5, 3, 5, {.pad_h = 1, .pad_w = 2}, true},
	    {33, 3, 16, 16, 4, 3, 3, {.pad_h = 1, .pad_w = 1}, true},
	    /* y wider than x (padding 2 on a 3 x 3 kernel) */
	    {17, 4, 12, 12, 9, 3, 3, {.pad_h = 2, .pad_w = 2}, true},
	    /* padding 1 above and left, 2 below and right; a kernel taller
	     * than the image */
	    {16, 5, 3, 10, 6, 4, 4, {.padding = NB_PAD_SAME}, true},
	};
	const bool avx512 = nb__isa_level() >= 2 && IL_EXPECTED;
	double *at1[sizeof cs / sizeof cs[0]][2];
	for (int th = 1; th <= 3; th += 2) {
		nb_set_num_threads(th);
		for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
			for (int pass = 0; pass < 3; pass++) {
				/* the weight gradient's blocks: kernels 3 or 5 wide */
				const bool want = avx512 && (pass != CONV_PASS_WEIGHT_GRAD ||
				                             cs[k].kw == 3 || cs[k].kw == 5);
				ck_assert_msg(images_lanes(&cs[k], (nb__conv_pass)pass) == want,
				              "config %zu pass %d: images in the lanes %s", k, pass,
				              want ? "not taken" : "taken");
			}
			double *a[4], *d[4];
			run_algo(NB_F32, &cs[k], NB_CONV_DIRECT, d);
			run_algo(NB_F32, &cs[k], NB_CONV_IM2COL, a);
			int64_t sizes[4];
			conv_sizes(&cs[k], sizes);
			for (int i = 0; i < 4; i++) /* y, dx, dw, db */
				for (int64_t e = 0; e < sizes[i]; e++)
					ck_assert_msg(
					    fabs(a[i][e] - d[i][e]) <= 2e-5 * (1 + fabs(a[i][e])),
					    "config %zu threads %d output %d [%lld]: im2col %.9g direct "
					    "%.9g",
					    k, th, i, (long long)e, a[i][e], d[i][e]);
			/* each lane sums its image in a fixed order: y and dx have
			 * the same bits on 1 and 3 threads */
			for (int i = 0; i < 2; i++) {
				if (th == 1) {
					at1[k][i] = d[i];
					d[i] = NULL;
				} else {
					if (avx512)
						ck_assert_msg(
						    !memcmp(at1[k][i], d[i],
						            (size_t)sizes[i] * sizeof(double)),
						    "config %zu output %d: 1 and 3 threads differ",
						    k, i);
					free(at1[k][i]);
				}
			}
			for (int i = 0; i < 4; i++)
				free(a[i]), free(d[i]);
		}
	}
	/* the weight gradient sums each thread's groups, then the threads in
	 * order: every result repeats its bits run to run at 3 and 4 threads */
	for (int th = 3; th <= 4; th++) {
		nb_set_num_threads(th);
		for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
			double *r1[4], *r2[4];
			run_algo(NB_F32, &cs[k], NB_CONV_DIRECT, r1);
			run_algo(NB_F32, &cs[k], NB_CONV_DIRECT, r2);
			int64_t n[4];
			conv_sizes(&cs[k], n);
			for (int i = 0; i < 4; i++)
				ck_assert_msg(!memcmp(r1[i], r2[i], (size_t)n[i] * sizeof(double)),
				              "config %zu threads %d output %d: two runs differ", k,
				              th, i);
			for (int i = 0; i < 4; i++)
				free(r1[i]), free(r2[i]);
		}
	}
	nb_set_num_threads(0);
}
END_TEST

/* A padding near INT_MAX (legal: stride INT_MAX keeps y 2x2) would make
 * the direct kernels' padded copy overflow its int64 sizes: every pass
 * runs on im2col instead, asked for or by default, with its results. */
START_TEST(test_huge_padding_runs_im2col)
{
	const nb_conv2d_opts huge = {
	    .pad_h = 2147483644, .pad_w = 2147483644, .stride_h = INT_MAX, .stride_w = INT_MAX};
	for (int ch = 2; ch <= 16; ch += 14)
		for (int k = 0; k < 2; k++) {
			const cfg c = {.n = 1,
			               .c = ch,
			               .h = 8,
			               .w = 8,
			               .o = ch,
			               .kh = 3,
			               .kw = 3,
			               .opt = huge,
			               .bias = true};
			double *a[4], *d[4];
			run_algo(NB_F32, &c, k ? NB_CONV_AUTO : NB_CONV_DIRECT, d);
			run_algo(NB_F32, &c, NB_CONV_IM2COL, a);
			const int64_t sizes[4] = {(int64_t)ch * 4, (int64_t)ch * 64,
			                          (int64_t)ch * ch * 9, ch};
			for (int i = 0; i < 4; i++)
				for (int64_t e = 0; e < sizes[i]; e++)
					ck_assert_msg(a[i][e] == d[i][e],
					              "%d channels, %s, output %d [%lld]", ch,
					              k ? "auto" : "direct", i, (long long)e);
			for (int i = 0; i < 4; i++)
				free(a[i]), free(d[i]);
		}
}
END_TEST

START_TEST(test_depthwise_direct_matches_im2col)
{
	const cfg cs[] = {
	    {2, 4, 7, 6, 4, 3, 3, {.groups = 4, .pad_h = 1, .pad_w = 1}, true},
	    {2,
	     3,
	     8,
	     8,
	     6,
	     3,
	     3,
	     {.groups = 3, .stride_h = 2, .stride_w = 2, .padding = NB_PAD_SAME},
	     true},
	    {1,
	     2,
	     9,
	     9,
	     8,
	     2,
	     3,
	     {.groups = 2, .dilation_h = 2, .dilation_w = 2, .padding = NB_PAD_SAME},
	     true},
	    {3, 5, 6, 9, 5, 5, 5, {.groups = 5, .pad_h = 2, .pad_w = 1, .stride_w = 3}, true},
	    {4, 64, 16, 16, 64, 3, 3, {.groups = 64, .pad_h = 1, .pad_w = 1}, true},
	};
	for (int dt = 0; dt < 2; dt++)
		for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
			double *a[4], *d[4];
			run_algo(dt ? NB_F64 : NB_F32, &cs[k], NB_CONV_DIRECT, d);
			run_algo(dt ? NB_F64 : NB_F32, &cs[k], NB_CONV_IM2COL, a);
			nb_graph *g = nb_graph_new(NB_F32);
			nb_shape ys =
			    out_shape(g, NB_SHAPE(cs[k].n, cs[k].c, cs[k].h, cs[k].w),
			              NB_SHAPE(cs[k].o, 1, cs[k].kh, cs[k].kw), cs[k].opt);
			ck_graph_ok(g);
			nb_graph_free(g);
			int64_t sizes[4] = {nb_shape_size(ys),
			                    (int64_t)cs[k].n * cs[k].c * cs[k].h * cs[k].w,
			                    (int64_t)cs[k].o * cs[k].kh * cs[k].kw, cs[k].o};
			double tol = dt ? 1e-12 : 2e-5;
			for (int i = 0; i < 4; i++) {
				for (int64_t e = 0; e < sizes[i]; e++)
					ck_assert_msg(
					    fabs(a[i][e] - d[i][e]) <= tol * (1 + fabs(a[i][e])),
					    "config %zu output %d [%lld]: im2col %.17g direct %.17g",
					    k, i, (long long)e, a[i][e], d[i][e]);
				free(a[i]), free(d[i]);
			}
		}
}
END_TEST

/* ---- which kernel NB_CONV_AUTO picks ------------------------------------------------ */

/* the profile report of one run of y, dx and dW of a conv of x [4, c, h, h]
 * and w [o, c, k, k] (f32), whose slowest-node lines name each kernel */
static void auto_kernels(int c, int o, int h, int k, int stride, int pad, int groups, char *out,
                         size_t n)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(4, c, h, h), NB_UNIFORM(-1, 1));
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(o, c / groups, k, k), NB_UNIFORM(-1, 1));
	nb_conv2d_opts opt = NB_CONV_OPTS(stride, pad);
	opt.groups = groups;
	nb_tensor *y = nb_conv2d(x, w, NULL, opt);
	nb_tensor *L = nb_sum(nb_square(y));
	nb_tensor *t[3] = {y, nb_grad(L, x), nb_grad(L, w)};
	nb_program *p = nb_compile(g, t, 3);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_program_profile(p, true), NB_OK);
	ck_assert_int_eq(nb_run(p), NB_OK);
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(nb_program_profile_report(p, f), NB_OK);
	rewind(f);
	size_t got = fread(out, 1, n - 1, f);
	out[got] = 0;
	fclose(f);
	nb_graph_free(g);
}

static void expect_kernels(int c, int o, int h, int k, int stride, int pad, int groups,
                           const char *fwd, const char *dx, const char *dw)
{
	char rep[8192], want[3][96];
	auto_kernels(c, o, h, k, stride, pad, groups, rep, sizeof rep);
	snprintf(want[0], sizeof want[0], "conv2d [%s] ", fwd);
	snprintf(want[1], sizeof want[1], "conv2d_backward_input [%s] ", dx);
	snprintf(want[2], sizeof want[2], "conv2d_backward_weight [%s] ", dw);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(strstr(rep, want[i]),
		              "%d->%d %dx%d on %dx%d stride %d: no \"%s\" in\n%s", c, o, k, k, h, h,
		              stride, want[i], rep);
}

/* The rules of policy.c (path_of) on the layers they were measured on
 * (docs/conv.md): a change of the rules shows here. */
START_TEST(test_auto_picks_measured_kernels)
{
	/* f32 at AVX-512: the stride-1 forward of rows of whole 16-pixel
	 * blocks, the weight gradient of 3-wide kernels on rows of 32 */
#if defined(NB_MULTIVERSION)
	const char *rows = !strcmp(nb_isa(), "avx512") ? "direct rows" : "direct";
#else
	const char *rows = "direct"; /* one variant, the baseline's blocks */
#endif
	/* Winograd with channel lanes (floats with nabla's AVX-512 kernel)
	 * takes the stride-1 forward and input gradient from 16 channels */
	const nb__wino_geom lanes_g = {.n = 4,
	                               .c = 16,
	                               .h = 32,
	                               .w = 32,
	                               .o = 16,
	                               .pt = 1,
	                               .pl = 1,
	                               .pb = 1,
	                               .pr = 1,
	                               .isa = nb__isa_level()};
	const bool lanes = nb__wino_channel_lanes(&lanes_g, sizeof(float));
	const char *fw = lanes ? "winograd" : rows, *dt = lanes ? "winograd" : "direct transposed";
	expect_kernels(6, 16, 14, 5, 1, 0, 1, "direct", "direct transposed",
	               "direct"); /* LeNet conv2 */
	expect_kernels(1, 6, 28, 5, 1, 2, 1, "one-channel", "im2col", "one-channel"); /* conv1 */
	expect_kernels(3, 16, 32, 3, 1, 1, 1, rows, "direct transposed", rows); /* ResNet-20 */
	expect_kernels(8, 32, 16, 3, 1, 1, 1, rows, "direct transposed",
	               "direct"); /* 16-pixel rows */
	expect_kernels(8, 16, 32, 5, 1, 2, 1, rows, "direct transposed", "direct"); /* 5 wide */
	expect_kernels(16, 16, 32, 3, 1, 1, 1, fw, dt, "winograd");
	expect_kernels(32, 32, 16, 3, 1, 1, 1, fw, dt, "winograd");
	expect_kernels(6, 16, 28, 5, 1, 0, 1, "direct", "direct transposed", "direct");
	expect_kernels(64, 64, 8, 3, 1, 1, 1, "winograd", "winograd", "winograd");
	expect_kernels(16, 32, 32, 3, 2, 1, 1, "direct", "direct phases", "direct");
	expect_kernels(32, 64, 16, 3, 2, 1, 1, "direct", "direct phases", "direct");
	expect_kernels(32, 64, 28, 3, 1, 1, 1, lanes ? "winograd" : "direct", "winograd",
	               "winograd"); /* dy > 128 KiB */
	expect_kernels(64, 128, 16, 3, 2, 1, 1, "im2col", "im2col", "direct");
	expect_kernels(16, 16, 8, 3, 1, 1, 16, "depthwise", "depthwise", "depthwise");
	expect_kernels(16, 64, 8, 1, 1, 0, 1, "im2col", "im2col", "im2col"); /* 1x1 */
}
END_TEST

/* ---- gradchecks ------------------------------------------------------------------- */

static void gradcheck_cfg(const cfg *c, int ci)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_graph_seed(g, 1000 + (uint64_t)ci);
	nb_tensor *p[3], *y = random_conv(g, c, c->opt, p);
	/* a nonlinear loss, so the gradient depends on y */
	nb_tensor *L = nb_sum(nb_square(y));
	nb_gradcheck_report r;
	ck_assert_int_eq(nb_gradcheck(L, p, c->bias ? 3 : 2, (nb_gradcheck_opts){0}, &r), NB_OK);
	ck_assert_msg(r.passed, "config %d: worst %g (analytic %g numeric %g), %lld failed", ci,
	              r.max_abs_err, r.worst_analytic, r.worst_numeric, (long long)r.failed);
	ck_assert_int_eq(r.skipped_kinks, 0);
	nb_graph_free(g);
}

START_TEST(test_gradcheck_configs)
{
	for (int ci = 0; ci < N_CONFIGS; ci++)
		if ((int64_t)configs[ci].n * configs[ci].c * configs[ci].h * configs[ci].w <= 400)
			gradcheck_cfg(&configs[ci], ci);
	/* the direct kernels for few channels, forward, dW and the stride-1 dx */
	const cfg direct[] = {
	    {2, 3, 6, 7, 5, 3, 3, {.pad_h = 1, .pad_w = 2, .algo = NB_CONV_DIRECT}, true},
	    {1, 2, 7, 6, 3, 3, 2, {.stride_h = 2, .dilation_w = 2, .algo = NB_CONV_DIRECT}, true},
	    {2, 4, 5, 5, 17, 3, 3, {.padding = NB_PAD_SAME, .algo = NB_CONV_DIRECT}, false},
	};
	for (int k = 0; k < 3; k++)
		gradcheck_cfg(&direct[k], 100 + k);
}
END_TEST

/* Second order: the gradient of |dL/dx|^2 with respect to w and x goes
 * through the VJPs of conv2d_backward_input and conv2d_backward_weight. */
START_TEST(test_gradcheck_second_order)
{
	const cfg cs[] = {
	    {2, 4, 6, 5, 4, 3, 3, {.groups = 2, .stride_h = 2, .padding = NB_PAD_SAME}, true},
	    {1, 3, 6, 6, 6, 3, 2, {.groups = 3, .dilation_h = 2, .pad_w = 1}, true},
	    {2, 3, 4, 4, 2, 1, 1, {0}, false},
	};
	for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
		const cfg *c = &cs[k];
		nb_graph *g = nb_graph_new(NB_F64);
		nb_tensor *p[3], *y = random_conv(g, c, c->opt, p);
		int np = c->bias ? 3 : 2;
		nb_tensor *inner = nb_sum(nb_square(y));
		nb_tensor *d[3];
		nb_grads(inner, p, np, d);
		nb_tensor *L = nb_sum(nb_square(d[0]));
		for (int i = 1; i < np; i++)
			L = nb_add(L, nb_sum(nb_square(d[i])));
		nb_gradcheck_report r;
		ck_assert_int_eq(nb_gradcheck(L, p, np, (nb_gradcheck_opts){0}, &r), NB_OK);
		ck_assert_msg(r.passed, "config %zu: worst %g (analytic %g numeric %g)", k,
		              r.max_abs_err, r.worst_analytic, r.worst_numeric);
		nb_graph_free(g);
	}
}
END_TEST

/* ---- errors ------------------------------------------------------------------------ */

static void expect_error(nb_shape xs, nb_shape ws, nb_shape *bs, nb_conv2d_opts o, nb_status st,
                         const char *msg)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", xs), *w = nb_param(g, "w", ws, NB_ZEROS);
	nb_tensor *b = bs ? nb_param(g, "b", *bs, NB_ZEROS) : NULL;
	ck_graph_ok(g);
	nb_tensor *y = nb_conv2d(x, w, b, o);
	ck_assert_int_eq(nb_graph_status(g), st);
	ck_assert_msg(strstr(nb_graph_errmsg(g), msg), "message \"%s\" lacks \"%s\"",
	              nb_graph_errmsg(g), msg);
	ck_assert_msg(strncmp(nb_graph_errmsg(g), "conv2d(x, w", 11) == 0, "message \"%s\"",
	              nb_graph_errmsg(g));
	/* sticky: the result is the placeholder and later ops do nothing */
	ck_assert_int_eq(nb_tensor_shape(y).ndim, 0);
	char saved[1024];
	snprintf(saved, sizeof saved, "%s", nb_graph_errmsg(g));
	nb_tensor *z = nb_conv2d(x, w, NULL, (nb_conv2d_opts){0});
	ck_assert_ptr_eq(z, y);
	ck_assert_str_eq(nb_graph_errmsg(g), saved);
	nb_graph_free(g);
}

START_TEST(test_shape_errors)
{
	nb_conv2d_opts d = {0};
	expect_error(NB_SHAPE(1, 6, 5, 5), NB_SHAPE(4, 2, 3, 3), NULL,
	             (nb_conv2d_opts){.groups = 4}, NB_ERR_SHAPE,
	             "input channels 6 (input [1,6,5,5]) are not divisible by groups 4");
	expect_error(NB_SHAPE(1, 4, 5, 5), NB_SHAPE(6, 1, 3, 3), NULL,
	             (nb_conv2d_opts){.groups = 4}, NB_ERR_SHAPE,
	             "output channels 6 (weight [6,1,3,3]) are not divisible by groups 4");
	expect_error(NB_SHAPE(1, 6, 5, 5), NB_SHAPE(4, 3, 3, 3), NULL, d, NB_ERR_SHAPE,
	             "weight in-channels 3 != input channels 6 / groups 1 = 6");
	expect_error(NB_SHAPE(1, 6, 5, 5), NB_SHAPE(4, 2, 3, 3), NULL,
	             (nb_conv2d_opts){.groups = 2}, NB_ERR_SHAPE,
	             "weight in-channels 2 != input channels 6 / groups 2 = 3");
	expect_error(NB_SHAPE(1, 1, 4, 4), NB_SHAPE(1, 1, 5, 5), NULL, d, NB_ERR_SHAPE,
	             "kernel 5x5 (dilation 1,1: spans 5x5) is larger than the padded input 4x4");
	expect_error(NB_SHAPE(1, 1, 4, 4), NB_SHAPE(1, 1, 3, 3), NULL,
	             (nb_conv2d_opts){.dilation_h = 3, .dilation_w = 3, .pad_h = 1, .pad_w = 1},
	             NB_ERR_SHAPE, "spans 7x7) is larger than the padded input 6x6");
	expect_error(NB_SHAPE(1, 1, 4, 4), NB_SHAPE(1, 1, 3, 3), NULL,
	             (nb_conv2d_opts){.dilation_w = 3}, NB_ERR_SHAPE, "output size would be <= 0");
	nb_shape b3 = NB_SHAPE(3), b2d = NB_SHAPE(4, 1);
	expect_error(NB_SHAPE(1, 2, 5, 5), NB_SHAPE(4, 2, 3, 3), &b3, d, NB_ERR_SHAPE,
	             "bias must be [4] (one per output channel), got [3]");
	expect_error(NB_SHAPE(1, 2, 5, 5), NB_SHAPE(4, 2, 3, 3), &b2d, d, NB_ERR_SHAPE,
	             "bias must be [4] (one per output channel), got [4,1]");
	expect_error(NB_SHAPE(2, 5, 5), NB_SHAPE(4, 2, 3, 3), NULL, d, NB_ERR_SHAPE,
	             "input must be 4-D [N,C,H,W], got [2,5,5]");
	expect_error(NB_SHAPE(1, 2, 5, 5), NB_SHAPE(4, 18), NULL, d, NB_ERR_SHAPE,
	             "weight must be 4-D [O,C/groups,kH,kW], got [4,18]");
	expect_error(NB_SHAPE(1, 2, 5, 5), NB_SHAPE(4, 2, 3, 3), NULL,
	             (nb_conv2d_opts){.stride_h = -1}, NB_ERR_ARG,
	             "stride_h must be positive (0 means 1), got -1");
	expect_error(NB_SHAPE(1, 2, 5, 5), NB_SHAPE(4, 2, 3, 3), NULL,
	             (nb_conv2d_opts){.groups = -2}, NB_ERR_ARG, "groups must be positive");
	expect_error(NB_SHAPE(1, 2, 5, 5), NB_SHAPE(4, 2, 3, 3), NULL,
	             (nb_conv2d_opts){.pad_w = -1}, NB_ERR_ARG, "pad_w must be >= 0, got -1");
	expect_error(NB_SHAPE(1, 2, 5, 5), NB_SHAPE(4, 2, 3, 3), NULL,
	             (nb_conv2d_opts){.padding = NB_PAD_SAME, .pad_h = 1}, NB_ERR_ARG,
	             "are only used with NB_PAD_EXPLICIT, not with NB_PAD_SAME");
	expect_error(NB_SHAPE(1, 2, 5, 5), NB_SHAPE(4, 2, 3, 3), NULL,
	             (nb_conv2d_opts){.padding = 7}, NB_ERR_ARG, "unknown padding mode 7");
	expect_error(
	    NB_SHAPE(1, 4, 5, 5), NB_SHAPE(4, 2, 3, 3), NULL,
	    (nb_conv2d_opts){.algo = NB_CONV_DIRECT, .groups = 2}, NB_ERR_ARG,
	    "NB_CONV_DIRECT needs one group or a depthwise convolution (C/groups == 1), got "
	    "C/groups = 2 (input [1,4,5,5], groups 2)");
	expect_error(NB_SHAPE(1, 2, 5, 5), NB_SHAPE(4, 2, 3, 3), NULL,
	             (nb_conv2d_opts){.algo = NB_CONV_WINOGRAD, .stride_h = 2}, NB_ERR_ARG,
	             "NB_CONV_WINOGRAD needs a 3x3 kernel, stride 1, dilation 1, one group and "
	             "padding 0..2, got kernel 3x3, stride 2,1");
	expect_error(NB_SHAPE(1, 2, 5, 5), NB_SHAPE(4, 2, 5, 5), NULL,
	             (nb_conv2d_opts){.algo = NB_CONV_WINOGRAD}, NB_ERR_ARG, "got kernel 5x5");
	expect_error(NB_SHAPE(1, 2, 5, 5), NB_SHAPE(4, 2, 3, 3), NULL, (nb_conv2d_opts){.algo = 9},
	             NB_ERR_ARG, "unknown algorithm 9");
}
END_TEST

/* A small LeNet-like model trains: conv -> maxpool -> dense. */
START_TEST(test_tiny_cnn_trains)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, 3);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(8, 1, 8, 8));
	nb_tensor *t = nb_input(g, "t", NB_SHAPE(8, 1));
	nb_tensor *w1 =
	    nb_param(g, "w1", NB_SHAPE(4, 1, 3, 3), (nb_init){.kind = NB_INIT_HE_NORMAL});
	nb_tensor *b1 = nb_param(g, "b1", NB_SHAPE(4), NB_ZEROS);
	nb_tensor *w2 = nb_param(g, "w2", NB_SHAPE(4 * 4 * 4, 1), NB_NORMAL(0, 0.1));
	nb_tensor *h = nb_maxpool2d(nb_conv2d(x, w1, b1, NB_CONV_OPTS(1, 1)), 2, 0, 0);
	nb_tensor *z = nb_matmul(nb_flatten(h), w2);
	nb_tensor *L = nb_mean(nb_square(nb_sub(z, t)));
	nb_optim *o = nb_sgd(g, L, (nb_sgd_opts){.lr = 0.01});
	ck_graph_ok(g);
	/* target: the mean brightness of the top-left quadrant */
	float xv[8 * 64], tv[8];
	uint64_t s = 5;
	for (int i = 0; i < 8; i++) {
		tv[i] = 0;
		for (int p = 0; p < 64; p++) {
			xv[i * 64 + p] = (float)(lcg(&s) * 0.5 + 0.5);
			if (p / 8 < 4 && p % 8 < 4)
				tv[i] += xv[i * 64 + p] / 16;
		}
	}
	nb_feed_f32(x, xv, 8 * 64);
	nb_feed_f32(t, tv, 8);
	ck_assert_int_eq(nb_step(o), NB_OK);
	double first = nb_item(L);
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(nb_step(o), NB_OK);
	double last = nb_item(L);
	ck_assert_msg(last < 0.1 * first, "loss %g -> %g", first, last);
	nb_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("conv");
	TCase *tc = tcase_create("conv");
	tcase_add_test(tc, test_output_sizes);
	tcase_add_test(tc, test_notes_4x4_example);
	tcase_add_test(tc, test_matches_reference_f64);
	tcase_add_test(tc, test_matches_reference_f32);
	tcase_add_test(tc, test_lane_blocks);
	tcase_add_test(tc, test_threads_changed_after_compile);
	tcase_add_test(tc, test_cached_plan_follows_threads);
	tcase_add_test(tc, test_depthwise_direct_matches_im2col);
	tcase_add_test(tc, test_huge_padding_runs_im2col);
	tcase_add_test(tc, test_images_in_lanes);
	tcase_add_test(tc, test_auto_picks_measured_kernels);
	tcase_add_test(tc, test_gradcheck_configs);
	tcase_add_test(tc, test_gradcheck_second_order);
	tcase_add_test(tc, test_shape_errors);
	tcase_add_test(tc, test_tiny_cnn_trains);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
