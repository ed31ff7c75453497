/* Pooling: the notes' 4x4 example, padding semantics, ties, overlapping
 * windows, NaN, global average, gradchecks, errors. */
#include "test_util.h"
#include "graph/internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* run y = op(x) and dx of sum(y * c); c = 1 when NULL */
static void pool_run(nb_dtype dt, nb_shape xs, const double *xv, int kind, int k, int s, int p,
                     double *y, double *dx, const double *c, nb_shape *ys)
{
	nb_graph *g = nb_graph_new(dt);
	nb_tensor *x = nb_param(g, "x", xs, NB_ZEROS);
	nb_feed_f64(x, xv, nb_shape_size(xs));
	nb_tensor *out = kind == 0   ? nb_maxpool2d(x, k, s, p)
	                 : kind == 1 ? nb_avgpool2d(x, k, s, p)
	                             : nb_global_avgpool(x);
	ck_graph_ok(g);
	*ys = nb_tensor_shape(out);
	nb_tensor *cc = c ? nb_constant(g, "c", *ys, c) : NULL;
	nb_tensor *L = nb_sum(cc ? nb_mul(out, cc) : out);
	nb_tensor *d = nb_grad(L, x);
	nb_program *pr = nb_compile(g, (nb_tensor *[]){out, d}, 2);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_run(pr), NB_OK);
	nb_read_f64(out, y, nb_tensor_size(out));
	nb_read_f64(d, dx, nb_shape_size(xs));
	nb_graph_free(g);
}

/* The notes' 4x4 image a..p (here 1..16), 2x2 windows, stride 2:
 *   max pool -> f h / n p = 6 8 / 14 16.  (The notes write "f h / m p";
 *   the bottom-left window is i j m n, whose maximum is n, not m.)
 *   average pool -> (a+b+e+f)/4 ... = 3.5 5.5 / 11.5 13.5.  (The notes'
 *   sums "a+b+t", "t+u+v+w" are slips for a+b+e+f and k+l+o+p.) */
START_TEST(test_notes_4x4_example)
{
	double x[16];
	for (int i = 0; i < 16; i++)
		x[i] = i + 1;
	for (int dt = 0; dt < 2; dt++) {
		double y[4], dx[16];
		nb_shape ys;
		pool_run(dt ? NB_F64 : NB_F32, NB_SHAPE(1, 1, 4, 4), x, 0, 2, 2, 0, y, dx, NULL,
		         &ys);
		ck_assert(ys.ndim == 4 && ys.d[2] == 2 && ys.d[3] == 2);
		double want_max[4] = {6, 8, 14, 16};
		for (int i = 0; i < 4; i++)
			ck_near(y[i], want_max[i], 0);
		/* the gradient lands on f, h, n, p (flat 5, 7, 13, 15) */
		for (int i = 0; i < 16; i++)
			ck_near(dx[i], i == 5 || i == 7 || i == 13 || i == 15, 0);

		pool_run(dt ? NB_F64 : NB_F32, NB_SHAPE(1, 1, 4, 4), x, 1, 2, 0, 0, y, dx, NULL,
		         &ys);
		double want_avg[4] = {3.5, 5.5, 11.5, 13.5};
		for (int i = 0; i < 4; i++)
			ck_near(y[i], want_avg[i], 0);
		for (int i = 0; i < 16; i++)
			ck_near(dx[i], 0.25, 0);
	}
}
END_TEST

/* Padding never wins the max, even when every value is negative. */
START_TEST(test_max_padding_never_wins)
{
	double x[9], y[9], dx[9];
	for (int i = 0; i < 9; i++)
		x[i] = -10 - i;
	nb_shape ys;
	pool_run(NB_F64, NB_SHAPE(1, 1, 3, 3), x, 0, 3, 1, 1, y, dx, NULL, &ys);
	ck_assert(ys.d[2] == 3 && ys.d[3] == 3);
	/* window of (0,0) covers x[0..1][0..1]: max -10 (not the padding's 0) */
	ck_near(y[0], -10, 0);
	ck_near(y[4], -10, 0);
	ck_near(y[8], -14, 0); /* x[1][1] = -14 is the largest of rows/cols 1..2 */
	ck_near(y[2], -11, 0);
	/* -10 wins 4 windows, -11 two, -13 two, -14 one */
	double want[9] = {4, 2, 0, 2, 1, 0, 0, 0, 0};
	for (int i = 0; i < 9; i++)
		ck_near(dx[i], want[i], 0);
}
END_TEST

/* Average pooling counts padded zeros (count_include_pad): 2x2 ones with a
 * 3x3 window, pad 1: every window holds the 4 ones -> 4/9. */
START_TEST(test_avg_counts_padding)
{
	double x[4] = {1, 1, 1, 1}, y[4], dx[4];
	nb_shape ys;
	pool_run(NB_F64, NB_SHAPE(1, 1, 2, 2), x, 1, 3, 1, 1, y, dx, NULL, &ys);
	ck_assert(ys.d[2] == 2 && ys.d[3] == 2);
	for (int i = 0; i < 4; i++) {
		ck_near(y[i], 4.0 / 9, 1e-15);
		ck_near(dx[i], 4.0 / 9, 1e-15); /* each pixel sits in 4 windows of weight 1/9 */
	}
}
END_TEST

/* Ties: the first maximum in row-major window order gets the gradient. */
START_TEST(test_max_ties_first)
{
	double x[4] = {2, 5, 5, 5}, y[1], dx[4];
	nb_shape ys;
	pool_run(NB_F64, NB_SHAPE(1, 1, 2, 2), x, 0, 2, 0, 0, y, dx, NULL, &ys);
	ck_near(y[0], 5, 0);
	ck_near(dx[0], 0, 0);
	ck_near(dx[1], 1, 0);
	ck_near(dx[2], 0, 0);
	ck_near(dx[3], 0, 0);
}
END_TEST

/* Overlapping windows (3x3, stride 1) accumulate: one global maximum
 * shared by every window collects all the weights. */
START_TEST(test_max_overlapping_windows)
{
	double x[16], y[4], dx[16], c[4] = {1, 2, 3, 4};
	for (int i = 0; i < 16; i++)
		x[i] = i == 5 ? 100 : i * 0.1;
	nb_shape ys;
	pool_run(NB_F64, NB_SHAPE(1, 1, 4, 4), x, 0, 3, 1, 0, y, dx, c, &ys);
	for (int i = 0; i < 4; i++)
		ck_near(y[i], 100, 0);
	ck_near(dx[5], 10, 0);
}
END_TEST

START_TEST(test_max_nan_propagates)
{
	double x[4] = {1, NAN, 3, 2}, y[1], dx[4];
	nb_shape ys;
	pool_run(NB_F64, NB_SHAPE(1, 1, 2, 2), x, 0, 2, 2, 0, y, dx, NULL, &ys);
	ck_assert(isnan(y[0]));
	ck_near(dx[1], 1, 0);
}
END_TEST

/* The 2x2 stride-2 fast path against the rule written out: several planes
 * (one holding NaNs, one with -0 and +0 ties and infinities), values drawn
 * from a few levels so ties are common, odd width (last column unused). */
START_TEST(test_max_2x2_matches_rule)
{
	enum { P = 3, H = 6, W = 7, OH = 3, OW = 3 };
	double x[P * H * W], y[P * OH * OW], dx[P * H * W];
	unsigned r = 12345;
	for (int i = 0; i < P * H * W; i++) {
		r = r * 1103515245u + 12345u;
		x[i] = (double)((r >> 16) % 5) - 2;
	}
	x[0 * H * W + 1 * W + 0] = NAN; /* plane 0: NaN second in row-major order */
	x[0 * H * W + 2 * W + 3] = NAN, x[0 * H * W + 3 * W + 2] = NAN; /* two NaNs */
	for (int k = 0; k < H * W; k++)
		x[2 * H * W + k] = k % 3 == 0 ? -0.0 : k % 3 == 1 ? 0.0 : -INFINITY;
	x[2 * H * W + 3] = INFINITY;
	for (int dt = 0; dt < 2; dt++) {
		nb_shape ys;
		pool_run(dt ? NB_F64 : NB_F32, NB_SHAPE(1, P, H, W), x, 0, 2, 2, 0, y, dx, NULL,
		         &ys);
		ck_assert(ys.d[2] == OH && ys.d[3] == OW);
		double want_dx[P * H * W] = {0};
		for (int p = 0; p < P; p++)
			for (int i = 0; i < OH; i++)
				for (int j = 0; j < OW; j++) {
					int best = p * H * W + 2 * i * W + 2 * j;
					for (int q = 1; q < 4; q++) {
						int e =
						    p * H * W + (2 * i + q / 2) * W + 2 * j + q % 2;
						if (x[e] > x[best] ||
						    (isnan(x[e]) && !isnan(x[best])))
							best = e;
					}
					double got = y[(p * OH + i) * OW + j];
					ck_assert(isnan(x[best]) ? isnan(got) : got == x[best]);
					if (x[best] == 0) /* the zero's sign too */
						ck_assert_int_eq(signbit(got) != 0,
						                 signbit(x[best]) != 0);
					want_dx[best] += 1;
				}
		for (int k = 0; k < P * H * W; k++)
			ck_near(dx[k], want_dx[k], 0);
	}
}
END_TEST

/* The 2x2 stride-2 path on the shapes its whole-vector stores meet: rows
 * of 14, 5, 16, 35 and 33 outputs (one block of 16, several, a partial
 * one), odd and even H and W (a row and a column no window covers),
 * several planes and images (a plane's last row, the tensor's end), on 1,
 * 3 and 4 threads; ties common, and an upstream gradient holding -0 (the
 * scatter adds it to +0). */
START_TEST(test_max_2x2_wide)
{
	static const int hw[][2] = {{28, 28}, {10, 10}, {5, 5}, {35, 33}, {7, 70}, {3, 66}};
	for (size_t s = 0; s < sizeof hw / sizeof hw[0]; s++)
		for (int v = 0; v < 4; v++) {
			const int N = 2, P = 3, H = hw[s][0], W = hw[s][1], OH = H / 2, OW = W / 2;
			const int nx = N * P * H * W, ny = N * P * OH * OW;
			double *x = malloc(sizeof(double) * (size_t)nx),
			       *y = malloc(sizeof(double) * (size_t)ny),
			       *c = malloc(sizeof(double) * (size_t)ny),
			       *dx = malloc(sizeof(double) * (size_t)nx),
			       *want = calloc((size_t)nx, sizeof(double));
			unsigned r = 777u + (unsigned)(s * 4 + (size_t)v);
			for (int i = 0; i < nx; i++) {
				r = r * 1103515245u + 12345u;
				x[i] = (double)((r >> 16) % 7) - 3;
			}
			for (int i = 0; i < ny; i++) {
				r = r * 1103515245u + 12345u;
				c[i] = (r >> 16) % 5 == 0 ? -0.0 : (double)((r >> 16) % 9) - 4.5;
			}
			nb_set_num_threads(v == 1 ? 3 : v == 3 ? 4 : 1);
			nb_shape ys;
			pool_run(v < 2 ? NB_F32 : NB_F64, NB_SHAPE(N, P, H, W), x, 0, 2, 2, 0, y,
			         dx, c, &ys);
			for (int p = 0; p < N * P; p++)
				for (int i = 0; i < OH; i++)
					for (int j = 0; j < OW; j++) {
						int best = p * H * W + 2 * i * W + 2 * j;
						for (int q = 1; q < 4; q++) {
							const int e = p * H * W +
							              (2 * i + q / 2) * W + 2 * j +
							              q % 2;
							if (x[e] > x[best])
								best = e;
						}
						const int o = (p * OH + i) * OW + j;
						ck_assert_msg(y[o] == x[best],
						              "%dx%d y[%d] = %g, want %g", H, W, o,
						              y[o], x[best]);
						want[best] += c[o];
					}
			for (int k = 0; k < nx; k++)
				ck_assert_msg(dx[k] == want[k] &&
				                  !signbit(dx[k]) == !signbit(want[k]),
				              "%dx%d %s dx[%d] = %g, want %g", H, W,
				              v < 2 ? "f32" : "f64", k, dx[k], want[k]);
			free(x), free(y), free(c), free(dx), free(want);
		}
	nb_set_num_threads(0);
}
END_TEST

/* bit for bit, NaNs equal to NaNs */
static bool same_bits(const double *a, const double *b, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		if (isnan(a[i]) ? !isnan(b[i]) : memcmp(&a[i], &b[i], sizeof a[i]) != 0)
			return false;
	return true;
}

/* y = maxpool2d(relu(conv2d(x, w))), L = sum(y * c) and its gradients
 * for x and w, compiled with fusions unless off (and with the relu as a
 * target too when keep_relu); returns the program's step count */
static int relu_pool_run(nb_dtype dt, nb_shape xs, const double *xv, int k, int s, int p, bool off,
                         bool keep_relu, bool special, double *y, double *dx, double *dw,
                         char *prof, size_t np)
{
	nb_graph *g = nb_graph_new(dt);
	nb_tensor *x = nb_param(g, "x", xs, NB_ZEROS);
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(xs.d[1], 1, 1, 1), NB_ZEROS);
	nb_feed_f64(x, xv, nb_shape_size(xs));
	/* a 1x1 depthwise convolution by powers of 2: x's NaNs, infinities and
	 * ties reach the relu */
	const double wv[4] = {1, 2, 0.5, 4};
	nb_feed_f64(w, wv, xs.d[1]);
	nb_tensor *r = nb_relu(nb_conv2d(x, w, NULL, (nb_conv2d_opts){.groups = (int)xs.d[1]}));
	nb_tensor *out = nb_maxpool2d(r, k, s, p);
	ck_graph_ok(g);
	const int64_t ny = nb_tensor_size(out);
	double *cv = malloc(sizeof(double) * (size_t)ny);
	/* the upstream gradient: -0 and, with special, NaN and infinities */
	for (int64_t i = 0; i < ny; i++)
		cv[i] = i % 7 == 3                ? -0.0
		        : special && i % 11 == 5  ? NAN
		        : special && i % 13 == 6  ? INFINITY
		        : special && i % 17 == 10 ? -INFINITY
		                                  : 0.5 * (double)(i % 5) - 1;
	nb_tensor *L = nb_sum(nb_mul(out, nb_constant(g, "c", nb_tensor_shape(out), cv)));
	nb_tensor *d[2];
	ck_assert_int_eq(nb_grads(L, (nb_tensor *[]){x, w}, 2, d), NB_OK);
	nb__fusion_off = off;
	nb_program *pr = nb_compile(g, (nb_tensor *[]){out, d[0], d[1], r}, keep_relu ? 4 : 3);
	nb__fusion_off = false;
	ck_graph_ok(g);
	nb_program_profile(pr, true);
	ck_assert_int_eq(nb_run(pr), NB_OK);
	ck_assert_int_eq(nb_run(pr), NB_OK); /* again: the same buffers' second use */
	nb_read_f64(out, y, ny);
	nb_read_f64(d[0], dx, nb_shape_size(xs));
	nb_read_f64(d[1], dw, xs.d[1]);
	nb_test_profile_text(pr, prof, np);
	const int steps = nb_program_num_steps(pr);
	free(cv);
	nb_graph_free(g);
	return steps;
}

/* relu then max pooling runs as two fused steps (maxpool2d+relu and
 * maxpool2d_backward+relu) with the bits of the four separate ones: values
 * with and without NaN, +-inf and +-0 (in x and in the upstream gradient),
 * ties; the 2x2 path (rows of 14 and 5, odd sizes) and the general one
 * (overlapping windows, padding); floats and doubles; 1 and 3 threads (16
 * images of 28x28 split the planes).  With the relu a target, only the
 * backward is fused. */
START_TEST(test_relu_pool_fused_bits)
{
	static const int geo[][6] = {/* N, H, W, k, s, p */
	                             {16, 28, 28, 2, 2, 0}, {2, 10, 10, 2, 2, 0},
	                             {2, 7, 9, 2, 2, 0},    {2, 9, 8, 3, 2, 1},
	                             {2, 6, 7, 3, 1, 1},    {2, 5, 5, 2, 1, 0}};
	static const double special[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1.0, -1.0};
	for (size_t q = 0; q < sizeof geo / sizeof geo[0]; q++)
		for (int v = 0; v < 8; v++) { /* threads, dtype, specials */
			const int N = geo[q][0], C = 3, H = geo[q][1], W = geo[q][2];
			const int k = geo[q][3], st = geo[q][4], pd = geo[q][5];
			const bool sp = v & 4;
			const nb_shape xs = NB_SHAPE(N, C, H, W);
			const int64_t nx = N * C * H * W;
			double *x = malloc(sizeof(double) * (size_t)nx);
			unsigned rs = 99u + (unsigned)(q * 8 + (size_t)v);
			for (int64_t i = 0; i < nx; i++) {
				rs = rs * 1103515245u + 12345u;
				const unsigned u = (rs >> 16) % 40;
				x[i] = sp && u < 7 ? special[u] : (double)(u % 9) - 4;
			}
			double *y[3], *dx[3], dw[3][9];
			char prof[3][4096];
			int steps[3];
			for (int m = 0; m < 3; m++) {
				y[m] = malloc(sizeof(double) * (size_t)nx);
				dx[m] = malloc(sizeof(double) * (size_t)nx);
			}
			nb_set_num_threads(v & 1 ? 3 : 1);
			const nb_dtype dt = v & 2 ? NB_F64 : NB_F32;
			for (int m = 0; m < 3; m++) /* fused, fusions off, relu kept */
				steps[m] =
				    relu_pool_run(dt, xs, x, k, st, pd, m == 1, m == 2, sp, y[m],
				                  dx[m], dw[m], prof[m], sizeof prof[m]);
			ck_assert_msg(strstr(prof[0], "maxpool2d+relu") &&
			                  strstr(prof[0], "maxpool2d_backward+relu"),
			              "%s", prof[0]);
			/* a kept relu is computed; the backward still fuses */
			ck_assert(!strstr(prof[1], "+relu") && !strstr(prof[2], "maxpool2d+relu") &&
			          strstr(prof[2], "maxpool2d_backward+relu"));
			ck_assert_int_eq(steps[0], steps[1] - 2);
			ck_assert_int_eq(steps[2], steps[1] - 1);
			const int64_t ny =
			    N * C * ((H + 2 * pd - k) / st + 1) * ((W + 2 * pd - k) / st + 1);
			for (int m = 1; m < 3; m++) {
				ck_assert_msg(same_bits(y[0], y[m], ny), "y, geometry %zu v %d", q,
				              v);
				ck_assert_msg(same_bits(dx[0], dx[m], nx), "dx, geometry %zu v %d",
				              q, v);
				ck_assert_msg(same_bits(dw[0], dw[m], C), "dw, geometry %zu v %d",
				              q, v);
				/* without specials dw is finite: the comparison means something */
				for (int c = 0; !sp && c < C; c++)
					ck_assert(isfinite(dw[m][c]));
			}
			for (int m = 0; m < 3; m++)
				free(y[m]), free(dx[m]);
			free(x);
		}
	nb_set_num_threads(0);
}
END_TEST

/* stride 0 means stride = kernel; 5x5 with 2x2 windows -> floor(3/2)+1 = 2 */
START_TEST(test_default_stride_and_sizes)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 3, 5, 5));
	nb_shape s = nb_tensor_shape(nb_maxpool2d(x, 2, 0, 0));
	ck_assert(s.d[0] == 2 && s.d[1] == 3 && s.d[2] == 2 && s.d[3] == 2);
	s = nb_tensor_shape(nb_avgpool2d(x, 3, 2, 1));
	ck_assert(s.d[2] == 3 && s.d[3] == 3);
	nb_tensor *x2 = nb_input(g, "x2", NB_SHAPE(1, 64, 224, 224));
	s = nb_tensor_shape(nb_maxpool2d(x2, 2, 2, 0)); /* the notes: 2x2 halves */
	ck_assert(s.d[2] == 112 && s.d[3] == 112);
	s = nb_tensor_shape(nb_global_avgpool(x));
	ck_assert(s.ndim == 2 && s.d[0] == 2 && s.d[1] == 3);
	ck_graph_ok(g);
	nb_graph_free(g);
}
END_TEST

/* mean over H, W: [N, C, H, W] -> [N, C]; gradient 1/(H W) everywhere */
START_TEST(test_global_avgpool)
{
	for (int dt = 0; dt < 2; dt++) {
		double x[2 * 3 * 2 * 2], y[6], dx[24], c[6] = {1, 2, 3, 4, 5, 6};
		for (int i = 0; i < 24; i++)
			x[i] = i;
		nb_shape ys;
		pool_run(dt ? NB_F64 : NB_F32, NB_SHAPE(2, 3, 2, 2), x, 2, 0, 0, 0, y, dx, c, &ys);
		for (int p = 0; p < 6; p++)
			ck_near(y[p], 4 * p + 1.5, 0);
		for (int i = 0; i < 24; i++)
			ck_near(dx[i], c[i / 4] / 4, 0);
	}
}
END_TEST

/* Larger random inputs (parallel loops) agree between f32 and f64 and with
 * a direct evaluation of the window formula. */
START_TEST(test_pool_vs_reference)
{
	const int n = 3, ch = 8, h = 33, w = 31;
	/* kernel, stride, pad; 1x1 windows are a subsampling (a fast path) */
	const int ks[5][3] = {{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {1, 2, 0}, {1, 3, 0}};
	int64_t nx = (int64_t)n * ch * h * w;
	double *x = malloc(sizeof(double) * nx), *dx = malloc(sizeof(double) * nx);
	double *y = malloc(sizeof(double) * nx);
	uint64_t s = 11;
	for (int64_t i = 0; i < nx; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = (double)(s >> 11) * 0x1.0p-53;
	}
	for (int kind = 0; kind < 2; kind++)
		for (int kc = 0; kc < 5; kc++)
			for (int dt = 0; dt < 2; dt++) {
				int k = ks[kc][0], st = ks[kc][1], p = ks[kc][2];
				nb_shape ys;
				pool_run(dt ? NB_F64 : NB_F32, NB_SHAPE(n, ch, h, w), x, kind, k,
				         st, p, y, dx, NULL, &ys);
				int oh = (h + 2 * p - k) / st + 1, ow = (w + 2 * p - k) / st + 1;
				ck_assert(ys.d[2] == oh && ys.d[3] == ow);
				double tot_want = 0;
				for (int pl = 0; pl < n * ch; pl++)
					for (int i = 0; i < oh; i++)
						for (int j = 0; j < ow; j++) {
							double m = -INFINITY, sum = 0, cnt = 0;
							for (int a = 0; a < k; a++)
								for (int b = 0; b < k; b++) {
									int ih = i * st - p + a,
									    iw = j * st - p + b;
									if (ih < 0 || ih >= h ||
									    iw < 0 || iw >= w)
										continue;
									double v =
									    x[((int64_t)pl * h +
									       ih) *
									          w +
									      iw];
									m = v > m ? v : m;
									sum += v;
									cnt++;
								}
							double want = kind == 0 ? m : sum / (k * k);
							tot_want += kind == 0 ? 1 : cnt / (k * k);
							double got =
							    y[((int64_t)pl * oh + i) * ow + j];
							ck_assert_msg(
							    fabs(got - want) <= (dt ? 1e-15 : 1e-6),
							    "kind %d cfg %d dt %d: %g vs %g", kind,
							    kc, dt, got, want);
						}
				/* the gradient of sum(y) spreads each output's 1 over its
				 * window: 1 for max, the real pixels' share for avg */
				double tot = 0;
				for (int64_t i = 0; i < nx; i++)
					tot += dx[i];
				ck_near(tot, tot_want, 1e-6 * tot_want);
			}
	free(x), free(y), free(dx);
}
END_TEST

START_TEST(test_gradcheck_configs)
{
	const int cf[][4] = {{2, 2, 0, 0}, {3, 2, 1, 0}, {3, 1, 1, 0}, {2, 1, 0, 1},
	                     {3, 3, 1, 1}, {1, 1, 0, 0}, {3, 2, 0, 2}};
	for (size_t i = 0; i < sizeof cf / sizeof cf[0]; i++) {
		nb_graph *g = nb_graph_new(NB_F64);
		nb_graph_seed(g, 50 + i);
		nb_tensor *x = nb_param(g, "x", NB_SHAPE(2, 2, 7, 6), NB_UNIFORM(-1, 1));
		int k = cf[i][0], s = cf[i][1], p = cf[i][2];
		nb_tensor *y = cf[i][3] == 0   ? nb_maxpool2d(x, k, s, p)
		               : cf[i][3] == 1 ? nb_avgpool2d(x, k, s, p)
		                               : nb_global_avgpool(x);
		nb_tensor *L = nb_sum(nb_square(y));
		nb_gradcheck_report r;
		ck_assert_int_eq(nb_gradcheck(L, &x, 1, (nb_gradcheck_opts){0}, &r), NB_OK);
		ck_assert_msg(r.passed, "config %zu: worst %g", i, r.max_abs_err);
		nb_graph_free(g);
	}
}
END_TEST

/* second order through the scatter/gather pair and avgpool's backward */
START_TEST(test_gradcheck_second_order)
{
	for (int kind = 0; kind < 2; kind++) {
		nb_graph *g = nb_graph_new(NB_F64);
		nb_tensor *x = nb_param(g, "x", NB_SHAPE(1, 2, 6, 6), NB_UNIFORM(-1, 1));
		nb_tensor *y = kind ? nb_avgpool2d(x, 3, 2, 1) : nb_maxpool2d(x, 3, 2, 1);
		nb_tensor *dx = nb_grad(nb_sum(nb_pow(y, 3)), x);
		nb_tensor *L = nb_sum(nb_square(dx));
		nb_gradcheck_report r;
		ck_assert_int_eq(nb_gradcheck(L, &x, 1, (nb_gradcheck_opts){0}, &r), NB_OK);
		ck_assert_msg(r.passed, "kind %d: worst %g (analytic %g numeric %g)", kind,
		              r.max_abs_err, r.worst_analytic, r.worst_numeric);
		nb_graph_free(g);
	}
}
END_TEST

static void expect_error(nb_shape xs, int kind, int k, int s, int p, nb_status st, const char *msg)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", xs);
	nb_tensor *y = kind == 0   ? nb_maxpool2d(x, k, s, p)
	               : kind == 1 ? nb_avgpool2d(x, k, s, p)
	                           : nb_global_avgpool(x);
	ck_assert_int_eq(nb_graph_status(g), st);
	ck_assert_msg(strstr(nb_graph_errmsg(g), msg), "message \"%s\" lacks \"%s\"",
	              nb_graph_errmsg(g), msg);
	ck_assert_int_eq(nb_tensor_shape(y).ndim, 0);
	nb_graph_free(g);
}

START_TEST(test_errors)
{
	expect_error(NB_SHAPE(4, 4), 0, 2, 2, 0, NB_ERR_SHAPE,
	             "maxpool2d(x): input must be 4-D [N,C,H,W], got [4,4]");
	expect_error(NB_SHAPE(1, 1, 3, 3), 1, 5, 1, 0, NB_ERR_SHAPE,
	             "avgpool2d(x): window 5x5 is larger than the padded input 3x3");
	expect_error(NB_SHAPE(1, 1, 3, 3), 0, 3, 1, 2, NB_ERR_ARG,
	             "maxpool2d(x): pad 2 must be at most half the kernel 3");
	/* 2 * pad overflows int: still the same rule */
	expect_error(NB_SHAPE(1, 1, 8, 8), 0, 2, INT_MAX, 1 << 30, NB_ERR_ARG,
	             "maxpool2d(x): pad 1073741824 must be at most half the kernel 2");
	expect_error(NB_SHAPE(1, 1, 8, 8), 1, 2, INT_MAX, 1 << 30, NB_ERR_ARG,
	             "avgpool2d(x): pad 1073741824 must be at most half the kernel 2");
	expect_error(NB_SHAPE(1, 1, 3, 3), 0, 0, 1, 0, NB_ERR_ARG, "kernel must be >= 1");
	expect_error(NB_SHAPE(1, 1, 3, 3), 1, 2, -1, 0, NB_ERR_ARG, "got kernel 2 stride -1 pad 0");
	expect_error(NB_SHAPE(2, 3, 4), 2, 0, 0, 0, NB_ERR_SHAPE,
	             "global_avgpool(x): input must be 4-D [N,C,H,W], got [2,3,4]");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("pool");
	tcase_add_test(tc, test_notes_4x4_example);
	tcase_add_test(tc, test_max_padding_never_wins);
	tcase_add_test(tc, test_avg_counts_padding);
	tcase_add_test(tc, test_max_ties_first);
	tcase_add_test(tc, test_max_overlapping_windows);
	tcase_add_test(tc, test_max_nan_propagates);
	tcase_add_test(tc, test_max_2x2_matches_rule);
	tcase_add_test(tc, test_max_2x2_wide);
	tcase_add_test(tc, test_relu_pool_fused_bits);
	tcase_add_test(tc, test_default_stride_and_sizes);
	tcase_add_test(tc, test_global_avgpool);
	tcase_add_test(tc, test_pool_vs_reference);
	tcase_add_test(tc, test_gradcheck_configs);
	tcase_add_test(tc, test_gradcheck_second_order);
	tcase_add_test(tc, test_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
