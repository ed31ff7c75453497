/*
 * The stride-1 input gradient of floats with 16 images in the vector
 * lanes, at AVX-512 (included by direct.c; docs/conv.md, "Images in the
 * lanes").  CONV_PATH_DIRECT_TRANSPOSED takes it where dx's and dy's rows
 * are at most 16 pixels and the batch fills the lanes (il_fits).
 *
 * With pixels in the lanes (dt_rows) a row of 14 pixels fills 14 of 16
 * lanes, and each lane sums every kernel column, reading the zeros
 * around dy for the columns at the edges: on LeNet's conv2 (dy 10 x 10,
 * 5 x 5 kernels) 62% of the multiply-adds count.  With images in the
 * lanes every lane is a real image, and each block of 4 pixels of a row
 * sums only the kernel columns that reach dy for one of its pixels:
 *   dx[n,c,a,b] = sum_{o,m,k} wf[c,o,m,k] dyq[n,o,a+m,b+k]
 * (wf the flipped kernel, dyq dy with kH-1-padT rows above and kW-1-padL
 * columns left of zeros; kernel rows outside dy are skipped), 6 channels
 * by 4 pixels of dx (24 zmm) in registers over every dy channel and
 * tap.  dy is transposed into [o][row][column][16 images] by register
 * transposes (ops/transpose_avx512.h), and each row of dx's block back into the
 * images' planes.  Each lane sums its image's terms in a fixed order, so
 * the bits depend neither on the thread count nor on which images share
 * a group; they differ from dt_rows' (another order).
 */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define IL_AVX512 1

#include "ops/transpose_avx512.h"

#define IL_FN static __attribute__((target("avx512f")))
#define IL_CB 6 /* dx channels a block */
#define IL_BP 4 /* dx pixels of a row a block */
#define IL_W 16 /* the widest dx and dy rows */
#define IL_N 16 /* images a group (lanes) */

/* dy's transposed rows: kW - 1 - padL zeros on the left, then dy's oW
 * columns, then zeros up to a window past dx's row rounded up to IL_BP */
typedef struct ilgeom {
	int64_t qt, ql; /* kH - 1 - padT, kW - 1 - padL */
	int64_t wq;     /* row length */
	int64_t ncb;    /* blocks of IL_CB dx channels */
	size_t dyt;     /* bytes of the transposed dy [O][oH][wq][16] */
} ilgeom;

static ilgeom il_of(const geom *g)
{
	ilgeom q = {
	    .qt = g->kh - 1 - g->pt, .ql = g->kw - 1 - g->pl, .ncb = (g->c + IL_CB - 1) / IL_CB};
	q.wq = (g->w + IL_BP - 1) / IL_BP * IL_BP + g->kw - 1;
	q.dyt = nb__align_up((size_t)(g->o * g->oh * q.wq * IL_N) * sizeof(float));
	return q;
}

/* floats at AVX-512, rows of at most 16 pixels, a batch of at least one
 * group, and the transposed dy of a group at most 1 MiB */
static bool il_fits(const geom *g, size_t es, int isa)
{
	return es == sizeof(float) && isa >= 2 && g->w <= IL_W && g->ow <= IL_W && g->n >= IL_N &&
	       g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->pt < g->kh &&
	       g->pl < g->kw && il_of(g).dyt <= ((size_t)1 << 20);
}

/* the shared part (flipped weights [C / IL_CB][O][kH][kW][IL_CB], zeros
 * past C) and a thread's slice (the transposed dy, a row of dx's block
 * [IL_CB][16 pixels][16 images]) */
static size_t il_shared_bytes(const geom *g)
{
	return nb__align_up((size_t)(il_of(g).ncb * IL_CB * g->o * g->kh * g->kw) * sizeof(float));
}
static size_t il_slice_bytes(const geom *g)
{
	return il_of(g).dyt + (size_t)(IL_CB * IL_W * IL_N) * sizeof(float);
}

/* dy of images [n0, n0 + nn) into dyt [O][oH][wq][16] (lanes past nn and
 * the columns outside dy are zeros) */
IL_FN void il_dy(const geom *g, const ilgeom *q, const float *dy, int64_t n0, int64_t nn,
                 float *dyt)
{
	const int64_t ps = g->oh * g->ow, is = g->o * ps;
	const __mmask16 cols = nb__lanes16(g->ow);
	for (int64_t o = 0; o < g->o; o++)
		for (int64_t i = 0; i < g->oh; i++) {
			__m512 r[16];
			const float *src = dy + n0 * is + o * ps + i * g->ow;
#pragma GCC unroll 16
			for (int l = 0; l < 16; l++)
				r[l] = l < nn ? _mm512_maskz_loadu_ps(cols, src + l * is)
				              : _mm512_setzero_ps();
			nb__transpose16_ps(r);
			float *d = dyt + (o * g->oh + i) * q->wq * IL_N;
			memset(d, 0, (size_t)(q->ql * IL_N) * sizeof(float));
#pragma GCC unroll 16
			for (int u = 0; u < 16; u++)
				if (u < g->ow)
					_mm512_storeu_ps(d + (q->ql + u) * IL_N, r[u]);
			memset(d + (q->ql + g->ow) * IL_N, 0,
			       (size_t)((q->wq - q->ql - g->ow) * IL_N) * sizeof(float));
		}
}

/* Row a of dx for the channels [cb IL_CB, cb IL_CB + IL_CB) of the group's
 * images into blk [IL_CB][16 pixels][16 images] */
IL_FN void il_row(const geom *g, const ilgeom *q, const float *dyt, const float *wf, int64_t cb,
                  int64_t a, float *blk)
{
	const int64_t kk = g->kh * g->kw;
	/* the kernel rows whose dy row a + m - qt exists */
	const int64_t m0 = q->qt - a > 0 ? q->qt - a : 0;
	const int64_t m1 = g->oh + q->qt - a < g->kh ? g->oh + q->qt - a : g->kh;
	for (int64_t b0 = 0; b0 < g->w; b0 += IL_BP) {
		/* the kernel columns that reach dy for one of the block's pixels:
		 * b + k - ql in [0, oW) for some b in [b0, b0 + IL_BP) */
		const int64_t k0 = q->ql - b0 - (IL_BP - 1) > 0 ? q->ql - b0 - (IL_BP - 1) : 0;
		const int64_t k1 = g->ow + q->ql - b0 < g->kw ? g->ow + q->ql - b0 : g->kw;
		__m512 acc[IL_CB][IL_BP];
#pragma GCC unroll 6
		for (int c = 0; c < IL_CB; c++)
#pragma GCC unroll 4
			for (int b = 0; b < IL_BP; b++)
				acc[c][b] = _mm512_setzero_ps();
		for (int64_t o = 0; o < g->o; o++)
			for (int64_t m = m0; m < m1; m++) {
				const float *row =
				    dyt + ((o * g->oh + a + m - q->qt) * q->wq + b0) * IL_N;
				const float *wr = wf + ((cb * g->o + o) * kk + m * g->kw) * IL_CB;
				for (int64_t k = k0; k < k1; k++) {
					__m512 v[IL_BP];
#pragma GCC unroll 4
					for (int b = 0; b < IL_BP; b++)
						v[b] = _mm512_loadu_ps(row + (k + b) * IL_N);
#pragma GCC unroll 6
					for (int c = 0; c < IL_CB; c++) {
						const __m512 wv = _mm512_set1_ps(wr[k * IL_CB + c]);
#pragma GCC unroll 4
						for (int b = 0; b < IL_BP; b++)
							acc[c][b] =
							    _mm512_fmadd_ps(wv, v[b], acc[c][b]);
					}
				}
			}
#pragma GCC unroll 6
		for (int c = 0; c < IL_CB; c++)
#pragma GCC unroll 4
			for (int b = 0; b < IL_BP; b++)
				_mm512_storeu_ps(blk + (c * IL_W + b0 + b) * IL_N, acc[c][b]);
	}
}

/* blk's channels [c0, c0 + nc) of row a into the planes of images [n0,
 * n0 + nn) */
IL_FN void il_store(const geom *g, const float *blk, int64_t c0, int64_t nc, int64_t a, int64_t n0,
                    int64_t nn, float *dx)
{
	const int64_t ps = g->h * g->w, is = g->c * ps;
	const __mmask16 cols = nb__lanes16(g->w);
	for (int64_t c = 0; c < nc; c++) {
		__m512 r[16];
#pragma GCC unroll 16
		for (int u = 0; u < 16; u++)
			r[u] = u < g->w ? _mm512_loadu_ps(blk + (c * IL_W + u) * IL_N)
			                : _mm512_setzero_ps();
		nb__transpose16_ps(r);
		float *d = dx + n0 * is + (c0 + c) * ps + a * g->w;
#pragma GCC unroll 16
		for (int l = 0; l < 16; l++)
			if (l < nn)
				_mm512_mask_storeu_ps(d + l * is, cols, r[l]);
	}
}

/* the input gradient, groups of 16 images on the plan's batch threads */
IL_FN void il_input_grad(const geom *g, const nb__conv_plan *p, const float *dy, const float *w,
                         float *dx, void *ws)
{
	const ilgeom q = il_of(g);
	const int64_t kk = g->kh * g->kw;
	float *wf = ws; /* [C / IL_CB][O][kH][kW][IL_CB], flipped */
	for (int64_t c = 0; c < q.ncb * IL_CB; c++)
		for (int64_t o = 0; o < g->o; o++)
			for (int64_t e = 0; e < kk; e++)
				wf[((c / IL_CB * g->o + o) * kk + e) * IL_CB + c % IL_CB] =
				    c < g->c ? w[(o * g->c + c) * kk + kk - 1 - e] : 0;
	char *const base = (char *)ws + il_shared_bytes(g);
	const size_t sb = il_slice_bytes(g);
	const int th = p->threads;
	const int64_t groups = (g->n + IL_N - 1) / IL_N;
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1)
	for (int64_t gi = 0; gi < groups; gi++) {
		char *sl = base + (size_t)omp_get_thread_num() * sb;
		float *dyt = (float *)sl, *blk = (float *)(sl + q.dyt);
		const int64_t n0 = gi * IL_N, nn = g->n - n0 < IL_N ? g->n - n0 : IL_N;
		il_dy(g, &q, dy, n0, nn, dyt);
		for (int64_t cb = 0; cb < q.ncb; cb++) {
			const int64_t nc = g->c - cb * IL_CB < IL_CB ? g->c - cb * IL_CB : IL_CB;
			for (int64_t a = 0; a < g->h; a++) {
				il_row(g, &q, dyt, wf, cb, a, blk);
				il_store(g, blk, cb * IL_CB, nc, a, n0, nn, dx);
			}
		}
	}
}

#else
#define IL_AVX512 0
#endif
