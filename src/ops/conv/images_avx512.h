/*
 * The stride-1 direct kernels of floats with 16 images in the vector
 * lanes, at AVX-512 (included by direct.c; docs/conv.md, "Images in the
 * lanes"): the input gradient (CONV_PATH_DIRECT_TRANSPOSED), the forward
 * and the weight gradient (CONV_PATH_DIRECT) take them where the rows are
 * at most 16 pixels and the batch fills the lanes (il_fits, ilw_fits).
 *
 * With pixels in the lanes (dt_rows) a row of 14 pixels fills 14 of 16
 * lanes, and each lane sums every kernel column, reading the zeros
 * around dy for the columns at the edges: on LeNet's conv2 (dy 10 x 10,
 * 5 x 5 kernels) 62% of the multiply-adds count.  With images in the
 * lanes every lane is a real image, and each block of pixels of a row
 * sums only the kernel columns that reach dy for one of its pixels:
 *   dx[n,c,a,b] = sum_{o,m,k} wf[c,o,m,k] dyq[n,o,a+m,b+k]
 * (wf the flipped kernel, dyq dy with kH-1-padT rows above and kW-1-padL
 * columns left of zeros; kernel rows outside dy are skipped), a block of
 * dx's channels by pixels of a row (il_shapes) in registers over every dy
 * channel and tap.  dy is transposed into [o][row][column][16 images] by
 * register transposes (ops/transpose_avx512.h), and each row of dx's
 * block back into the images' planes.  Each lane sums its image's terms
 * in a fixed order, so on this path the bits depend neither on the thread
 * count nor on which images share a group; they differ from the pixel-lane
 * kernels' (another order), which run instead where the batch has fewer
 * than 16 images or (the forward) fewer images than threads.
 */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define IL_AVX512 1

#include "ops/transpose_avx512.h"

#define IL_FN static __attribute__((target("avx512f")))
#define IL_W 16     /* the widest dx and dy rows */
#define IL_N 16     /* images a group (lanes) */
#define IL_CB_MAX 8 /* dx channels a block, at most */
#define IL_WS 24    /* pixels of a row of the block's stage: IL_W rounded up to a block */

/* The register blocks, dx channels by pixels of a row (24, 20 or 21
 * accumulators): the one that computes the fewest multiply-adds for the
 * geometry, padding of the channels and of the row to whole blocks and
 * the kernel columns a block reads over dy's edge counted (LeNet's conv2:
 * 6 x 4 for dx's 6 channels by 14 pixels, 4 x 5 for the forward's 16 by
 * 10). */
static const int il_shapes[][2] = {{6, 4}, {4, 5}, {3, 7}, {8, 3}};
#define IL_SHAPES ((int)(sizeof il_shapes / sizeof il_shapes[0]))

/* dy's transposed rows: kW - 1 - padL zeros on the left, then dy's oW
 * columns, then zeros up to a window past dx's row rounded up to a block */
typedef struct ilgeom {
	int64_t qt, ql; /* kH - 1 - padT, kW - 1 - padL */
	int cb, bp;     /* the block: cb dx channels by bp pixels of a row */
	int64_t wq;     /* row length */
	int64_t ncb;    /* blocks of cb dx channels */
	size_t dyt;     /* bytes of the transposed dy [O][oH][wq][16] */
} ilgeom;

/* the kernel rows [*m0, *m1) whose dy row a + m - qt exists */
static void il_mrange(const geom *g, int64_t qt, int64_t a, int64_t *m0, int64_t *m1)
{
	*m0 = qt - a > 0 ? qt - a : 0;
	*m1 = g->oh + qt - a < g->kh ? g->oh + qt - a : g->kh;
}

/* the kernel columns [*k0, *k1) that reach dy for one of the pixels [b0,
 * b0 + bp): b + k - ql in [0, oW) */
static void il_krange(const geom *g, int64_t ql, int64_t b0, int bp, int64_t *k0, int64_t *k1)
{
	*k0 = ql - b0 - (bp - 1) > 0 ? ql - b0 - (bp - 1) : 0;
	*k1 = g->ow + ql - b0 < g->kw ? g->ow + ql - b0 : g->kw;
}

static ilgeom il_of(const geom *g)
{
	ilgeom q = {.qt = g->kh - 1 - g->pt, .ql = g->kw - 1 - g->pl};
	double best = -1;
	for (int s = 0; s < IL_SHAPES; s++) {
		const int cb = il_shapes[s][0], bp = il_shapes[s][1];
		double taps = 0; /* (kernel row, column) pairs a block pixel sums */
		for (int64_t a = 0; a < g->h; a++) {
			int64_t m0, m1, k0, k1;
			il_mrange(g, q.qt, a, &m0, &m1);
			for (int64_t b0 = 0; b0 < g->w; b0 += bp) {
				il_krange(g, q.ql, b0, bp, &k0, &k1);
				if (m1 > m0 && k1 > k0)
					taps += (double)((m1 - m0) * (k1 - k0) * bp);
			}
		}
		const double work = taps * (double)((g->c + cb - 1) / cb * cb);
		if (best < 0 || work < best)
			best = work, q.cb = cb, q.bp = bp;
	}
	q.ncb = (g->c + q.cb - 1) / q.cb;
	q.wq = (g->w + q.bp - 1) / q.bp * q.bp + g->kw - 1;
	q.dyt = nb__align_up((size_t)(g->o * g->oh * q.wq * IL_N) * sizeof(float));
	return q;
}

/* floats at AVX-512, rows of at most 16 pixels, a batch of at least one
 * group, padding below the kernel on the top and left, dy's row inside
 * the transposed row (a right padding past the kernel makes dy wider than
 * dx needs) and the transposed dy of a group at most 1 MiB */
static bool il_fits(const geom *g, size_t es, int isa)
{
	if (es != sizeof(float) || isa < 2 || g->w > IL_W || g->ow > IL_W || g->n < IL_N ||
	    g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1 || g->pt < 0 || g->pl < 0 ||
	    g->pt >= g->kh || g->pl >= g->kw)
		return false;
	const ilgeom q = il_of(g);
	return q.ql + g->ow <= q.wq && q.dyt <= ((size_t)1 << 20);
}

/* the shared part (flipped weights [C / cb][O][kH][kW][cb], zeros past
 * C) and a thread's slice (the transposed dy, a row of dx's block
 * [cb][IL_WS pixels][16 images]) */
static size_t il_shared_of(const geom *g, const ilgeom *q)
{
	return nb__align_up((size_t)(q->ncb * q->cb * g->o * g->kh * g->kw) * sizeof(float));
}
static size_t il_slice_of(const ilgeom *q)
{
	return q->dyt + (size_t)(IL_CB_MAX * IL_WS * IL_N) * sizeof(float);
}
static size_t il_shared_bytes(const geom *g)
{
	const ilgeom q = il_of(g);
	return il_shared_of(g, &q);
}
static size_t il_slice_bytes(const geom *g)
{
	const ilgeom q = il_of(g);
	return il_slice_of(&q);
}

/* dy of images [n0, n0 + nn) into dyt [O][oH][wq][16] (lanes past nn and
 * the columns outside dy are zeros) */
IL_FN void il_dy(const geom *g, const ilgeom *q, const float *dy, int64_t n0, int64_t nn,
                 float *dyt)
{
	const int64_t ps = g->oh * g->ow, is = g->o * ps;
	for (int64_t o = 0; o < g->o; o++)
		for (int64_t i = 0; i < g->oh; i++) {
			float *d = dyt + (o * g->oh + i) * q->wq * IL_N;
			memset(d, 0, (size_t)(q->ql * IL_N) * sizeof(float));
			nb__rows_to_lanes(dy + n0 * is + o * ps + i * g->ow, is, nn, g->ow,
			                  d + q->ql * IL_N);
			memset(d + (q->ql + g->ow) * IL_N, 0,
			       (size_t)((q->wq - q->ql - g->ow) * IL_N) * sizeof(float));
		}
}

/* Row a of dx for the channels [cb CB, cb CB + CB) of the group's images
 * into blk [CB][IL_WS pixels][16 images], in blocks of CB channels by BP
 * pixels (constants where inlined) */
static inline __attribute__((always_inline, target("avx512f"))) void
il_row(const geom *g, const ilgeom *q, const float *dyt, const float *wf, int64_t cb, int64_t a,
       float *blk, const int CB, const int BP)
{
	const int64_t kk = g->kh * g->kw;
	int64_t m0, m1;
	il_mrange(g, q->qt, a, &m0, &m1);
	for (int64_t b0 = 0; b0 < g->w; b0 += BP) {
		int64_t k0, k1;
		il_krange(g, q->ql, b0, BP, &k0, &k1);
		__m512 acc[IL_CB_MAX][7];
#pragma GCC unroll 8
		for (int c = 0; c < CB; c++)
#pragma GCC unroll 7
			for (int b = 0; b < BP; b++)
				acc[c][b] = _mm512_setzero_ps();
		for (int64_t o = 0; o < g->o; o++)
			for (int64_t m = m0; m < m1; m++) {
				const float *row =
				    dyt + ((o * g->oh + a + m - q->qt) * q->wq + b0) * IL_N;
				const float *wr = wf + ((cb * g->o + o) * kk + m * g->kw) * CB;
				for (int64_t k = k0; k < k1; k++) {
					__m512 v[7];
#pragma GCC unroll 7
					for (int b = 0; b < BP; b++)
						v[b] = _mm512_loadu_ps(row + (k + b) * IL_N);
#pragma GCC unroll 8
					for (int c = 0; c < CB; c++) {
						const __m512 wv = _mm512_set1_ps(wr[k * CB + c]);
#pragma GCC unroll 7
						for (int b = 0; b < BP; b++)
							acc[c][b] =
							    _mm512_fmadd_ps(wv, v[b], acc[c][b]);
					}
				}
			}
#pragma GCC unroll 8
		for (int c = 0; c < CB; c++)
#pragma GCC unroll 7
			for (int b = 0; b < BP; b++)
				_mm512_storeu_ps(blk + (c * IL_WS + b0 + b) * IL_N, acc[c][b]);
	}
}

/* il_row for each block shape of il_shapes */
#define IL_ROW_OF(CB, BP)                                                                          \
	IL_FN void il_row_##CB##x##BP(const geom *g, const ilgeom *q, const float *dyt,            \
	                              const float *wf, int64_t cb, int64_t a, float *blk)          \
	{                                                                                          \
		il_row(g, q, dyt, wf, cb, a, blk, CB, BP);                                         \
	}
IL_ROW_OF(6, 4)
IL_ROW_OF(4, 5)
IL_ROW_OF(3, 7)
IL_ROW_OF(8, 3)

/* blk's channels [c0, c0 + nc) of row a into the planes of images [n0,
 * n0 + nn), plus bias[c0 + c] where there is a bias (the forward) */
IL_FN void il_store(const geom *g, const float *blk, int64_t c0, int64_t nc, int64_t a, int64_t n0,
                    int64_t nn, const float *bias, float *dx)
{
	const int64_t ps = g->h * g->w, is = g->c * ps;
	const __mmask16 cols = nb__lanes16(g->w);
	for (int64_t c = 0; c < nc; c++) {
		__m512 r[16];
#pragma GCC unroll 16
		for (int u = 0; u < 16; u++)
			r[u] = u < g->w ? _mm512_loadu_ps(blk + (c * IL_WS + u) * IL_N)
			                : _mm512_setzero_ps();
		nb__transpose16_ps(r);
		const __m512 bv = _mm512_set1_ps(bias ? bias[c0 + c] : 0.0f);
		float *d = dx + n0 * is + (c0 + c) * ps + a * g->w;
#pragma GCC unroll 16
		for (int l = 0; l < 16; l++)
			if (l < nn)
				_mm512_mask_storeu_ps(d + l * is, cols,
				                      bias ? _mm512_add_ps(r[l], bv) : r[l]);
	}
}

/* out[n,c,a,b] = bias[c] + sum_{o,m,k} wf[c,o,m,k] inq[n,o,a+m,b+k] for
 * the correlation g describes in the input gradient's terms (in: dy [N,
 * O, oH, oW], out: dx [N, C, H, W], wf packed [C / cb][O][kH][kW][cb]
 * at ws (il_of), no bias), groups of 16 images on `threads` threads */
IL_FN void il_corr(const geom *g, int threads, const float *in, const float *bias, float *out,
                   void *ws)
{
	const ilgeom q = il_of(g);
	const float *wf = ws;
	char *const base = (char *)ws + il_shared_of(g, &q);
	const size_t sb = il_slice_of(&q);
	const int64_t groups = (g->n + IL_N - 1) / IL_N;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
	for (int64_t gi = 0; gi < groups; gi++) {
		char *sl = base + (size_t)omp_get_thread_num() * sb;
		float *dyt = (float *)sl, *blk = (float *)(sl + q.dyt);
		const int64_t n0 = gi * IL_N, nn = g->n - n0 < IL_N ? g->n - n0 : IL_N;
		il_dy(g, &q, in, n0, nn, dyt);
		for (int64_t cb = 0; cb < q.ncb; cb++) {
			const int64_t nc = g->c - cb * q.cb < q.cb ? g->c - cb * q.cb : q.cb;
			for (int64_t a = 0; a < g->h; a++) {
				if (q.cb == 6)
					il_row_6x4(g, &q, dyt, wf, cb, a, blk);
				else if (q.cb == 4)
					il_row_4x5(g, &q, dyt, wf, cb, a, blk);
				else if (q.cb == 3)
					il_row_3x7(g, &q, dyt, wf, cb, a, blk);
				else
					il_row_8x3(g, &q, dyt, wf, cb, a, blk);
				il_store(g, blk, cb * q.cb, nc, a, n0, nn, bias, out);
			}
		}
	}
}

/* the input gradient: the forward's kernel flipped, dx's channels in
 * blocks */
IL_FN void il_input_grad(const geom *g, const nb__conv_plan *p, const float *dy, const float *w,
                         float *dx, void *ws)
{
	const ilgeom q = il_of(g);
	const int64_t kk = g->kh * g->kw, cb = q.cb;
	float *wf = ws; /* [C / cb][O][kH][kW][cb], flipped */
	for (int64_t c = 0; c < q.ncb * cb; c++)
		for (int64_t o = 0; o < g->o; o++)
			for (int64_t e = 0; e < kk; e++)
				wf[((c / cb * g->o + o) * kk + e) * cb + c % cb] =
				    c < g->c ? w[(o * g->c + c) * kk + kk - 1 - e] : 0;
	il_corr(g, p->threads, dy, NULL, dx, ws);
}

/* the forward at stride 1 (r = dr_of(g): x as "dy", y as "dx"): the
 * kernel unflipped, y's channels in blocks, then the bias */
IL_FN void il_forward(const geom *g, const geom *r, const nb__conv_plan *p, const float *x,
                      const float *w, const float *b, float *y, void *ws)
{
	const ilgeom q = il_of(r);
	const int64_t kk = g->kh * g->kw, ob = q.cb;
	float *wf = ws; /* [O / ob][C][kH][kW][ob] */
	for (int64_t o = 0; o < q.ncb * ob; o++)
		for (int64_t e = 0; e < g->c * kk; e++)
			wf[(o / ob * g->c * kk + e) * ob + o % ob] =
			    o < g->o ? w[o * g->c * kk + e] : 0;
	il_corr(r, p->threads, x, b, y, ws);
}

/* ---- the weight gradient ------------------------------------------------
 *   dw[o,c,m,k] = sum_{n,i,j} dy[n,o,i,j] xp[n,c,i+m,j+k]
 * (xp: x zero-padded), stride 1: per lane (image) partial sums of a block
 * of OB output channels by the kW taps of one kernel row, held in
 * registers over dy's pixels (8 x 3 or 4 x 5: 24 or 20 zmm), each pixel
 * one load of dy per channel and one of x per tap.  A thread adds its
 * groups' partial sums into its own [O / OB][C][kH][OB][kW][16] vectors;
 * each weight is then the sum of the threads' vectors in thread order,
 * its lanes added in order (bits that depend on the thread count only, as
 * the direct kernel's). */

/* output channels a block for kW (3 or 5) */
#define IL_WOB(kw) ((kw) == 3 ? 8 : 4)

typedef struct ilwgeom {
	int64_t hp, wp;       /* x zero-padded */
	int64_t ob, nob;      /* the block, blocks of output channels */
	size_t xt, dyt, part; /* bytes: x [C][hp][wp][16], dy [nob ob][oH][oW][16], the sums */
} ilwgeom;

static ilwgeom ilw_of(const geom *g)
{
	ilwgeom q = {.hp = g->h + g->pt + g->pb, .wp = g->w + g->pl + g->pr, .ob = IL_WOB(g->kw)};
	q.nob = (g->o + q.ob - 1) / q.ob;
	q.xt = nb__align_up((size_t)(g->c * q.hp * q.wp * IL_N) * sizeof(float));
	q.dyt = nb__align_up((size_t)(q.nob * q.ob * g->oh * g->ow * IL_N) * sizeof(float));
	q.part = nb__align_up((size_t)(q.nob * q.ob * g->c * g->kh * g->kw * IL_N) * sizeof(float));
	return q;
}

/* floats at AVX-512, stride and dilation 1, kernels 3 or 5 wide, x's and
 * dy's rows at most 16 pixels, a batch of at least one group and at most
 * 1 MiB of transposed x and dy */
static bool ilw_fits(const geom *g, size_t es, int isa)
{
	if (es != sizeof(float) || isa < 2 || g->w > IL_W || g->ow > IL_W || g->n < IL_N ||
	    g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1 || (g->kw != 3 && g->kw != 5) ||
	    g->pt < 0 || g->pl < 0 || g->pb < 0 || g->pr < 0 || g->oh < 1 || g->ow < 1)
		return false;
	const ilwgeom q = ilw_of(g);
	return q.xt + q.dyt <= ((size_t)1 << 20);
}

static size_t ilw_slice_bytes(const geom *g)
{
	const ilwgeom q = ilw_of(g);
	return q.xt + q.dyt + q.part;
}

/* the rows of `planes` planes [rows][w] of images [n0, n0 + nn) (image
 * stride is) into dst [plane][hd][wd][16] from row row0 and column off
 * (lanes past nn zeros; the rest of dst as it was) */
IL_FN void ilw_planes(const float *src, int64_t is, int64_t n0, int64_t nn, int64_t planes,
                      int64_t rows, int64_t w, int64_t row0, int64_t hd, int64_t off, int64_t wd,
                      float *dst)
{
	for (int64_t c = 0; c < planes; c++)
		for (int64_t i = 0; i < rows; i++)
			nb__rows_to_lanes(src + n0 * is + (c * rows + i) * w, is, nn, w,
			                  dst + ((c * hd + row0 + i) * wd + off) * IL_N);
}

/* one group's sums into part, kernel width KW (a constant where inlined) */
static inline __attribute__((always_inline, target("avx512f"))) void
ilw_group(const geom *g, const ilwgeom *q, const float *xt, const float *dyt, float *part,
          const int KW)
{
	const int OB = IL_WOB(KW);
	for (int64_t ob = 0; ob < q->nob; ob++)
		for (int64_t c = 0; c < g->c; c++)
			for (int64_t m = 0; m < g->kh; m++) {
				float *pp = part + (((ob * g->c + c) * g->kh + m) * OB * KW) * IL_N;
				__m512 acc[8][5];
#pragma GCC unroll 8
				for (int o = 0; o < OB; o++)
#pragma GCC unroll 5
					for (int k = 0; k < KW; k++)
						acc[o][k] =
						    _mm512_loadu_ps(pp + (o * KW + k) * IL_N);
				for (int64_t i = 0; i < g->oh; i++) {
					const float *xr = xt + ((c * q->hp + i + m) * q->wp) * IL_N;
					const float *dr =
					    dyt + ((ob * OB * g->oh + i) * g->ow) * IL_N;
					for (int64_t j = 0; j < g->ow; j++) {
						__m512 xv[5];
#pragma GCC unroll 5
						for (int k = 0; k < KW; k++)
							xv[k] =
							    _mm512_loadu_ps(xr + (j + k) * IL_N);
#pragma GCC unroll 8
						for (int o = 0; o < OB; o++) {
							const __m512 dv = _mm512_loadu_ps(
							    dr + (o * g->oh * g->ow + j) * IL_N);
#pragma GCC unroll 5
							for (int k = 0; k < KW; k++)
								acc[o][k] = _mm512_fmadd_ps(
								    dv, xv[k], acc[o][k]);
						}
					}
				}
#pragma GCC unroll 8
				for (int o = 0; o < OB; o++)
#pragma GCC unroll 5
					for (int k = 0; k < KW; k++)
						_mm512_storeu_ps(pp + (o * KW + k) * IL_N,
						                 acc[o][k]);
			}
}
IL_FN void ilw_group3(const geom *g, const ilwgeom *q, const float *xt, const float *dyt,
                      float *part)
{
	ilw_group(g, q, xt, dyt, part, 3);
}
IL_FN void ilw_group5(const geom *g, const ilwgeom *q, const float *xt, const float *dyt,
                      float *part)
{
	ilw_group(g, q, xt, dyt, part, 5);
}

/* weight e (o C kH kW + c kH kW + m kW + k) from the nt threads' sums:
 * their vectors added in thread order, then the lanes in order (a
 * function of its own: the body of an OpenMP region is outlined without
 * the caller's target) */
IL_FN float ilw_weight(const geom *g, const ilwgeom *q, const void *ws, size_t sb, int nt,
                       int64_t e)
{
	const int64_t kk = g->kh * g->kw;
	const int64_t o = e / (g->c * kk), c = e / kk % g->c, m = e % kk / g->kw, k = e % g->kw;
	const size_t at =
	    (size_t)((((o / q->ob * g->c + c) * g->kh + m) * q->ob + o % q->ob) * g->kw + k) * IL_N;
	const char *part = (const char *)ws + q->xt + q->dyt;
	__m512 v = _mm512_loadu_ps((const float *)part + at);
	for (int t = 1; t < nt; t++)
		v = _mm512_add_ps(v, _mm512_loadu_ps((const float *)(part + (size_t)t * sb) + at));
	float lanes[16] __attribute__((aligned(64)));
	_mm512_store_ps(lanes, v);
	float s = 0;
	for (int l = 0; l < 16; l++)
		s += lanes[l];
	return s;
}

IL_FN void il_weight_grad(const geom *g, const nb__conv_plan *p, const float *dy, const float *x,
                          float *dw, void *ws)
{
	const ilwgeom q = ilw_of(g);
	const size_t sb = ilw_slice_bytes(g);
	const int th = p->threads;
	const int64_t groups = (g->n + IL_N - 1) / IL_N;
#pragma omp parallel num_threads(th) if (th > 1)
	{
		char *sl = (char *)ws + (size_t)omp_get_thread_num() * sb;
		float *xt = (float *)sl, *dyt = (float *)(sl + q.xt);
		float *part = (float *)(sl + q.xt + q.dyt);
		/* the padding and the channels past O stay zeros */
		memset(sl, 0, sb);
#pragma omp for schedule(static)
		for (int64_t gi = 0; gi < groups; gi++) {
			const int64_t n0 = gi * IL_N, nn = g->n - n0 < IL_N ? g->n - n0 : IL_N;
			ilw_planes(x, g->c * g->h * g->w, n0, nn, g->c, g->h, g->w, g->pt, q.hp,
			           g->pl, q.wp, xt);
			ilw_planes(dy, g->o * g->oh * g->ow, n0, nn, g->o, g->oh, g->ow, 0, g->oh,
			           0, g->ow, dyt);
			if (g->kw == 3)
				ilw_group3(g, &q, xt, dyt, part);
			else
				ilw_group5(g, &q, xt, dyt, part);
		}
		/* the barrier after the loop: every thread's sums are complete */
		const int nt = omp_get_num_threads();
		const int64_t kk = g->kh * g->kw, taps = g->o * g->c * kk;
#pragma omp for schedule(static)
		for (int64_t e = 0; e < taps; e++)
			dw[e] = ilw_weight(g, &q, ws, sb, nt, e);
	}
}

#else
#define IL_AVX512 0
#endif
