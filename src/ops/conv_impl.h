/*
 * Convolution kernels for one element type.  conv.c includes this file
 * once per type, with
 *   T          float or double
 *   SFX(name)  name##_f32 or name##_f64
 *   GEMM_EX    bli_sgemm_ex or bli_dgemm_ex
 * (A template file rather than NB_KERNELS: there are a dozen helpers, and
 * errors and profiles point at real lines this way.)
 *
 * Notation: one image x [C, H, W], weight [O, Cg, kH, kW] (Cg = C/groups,
 * Og = O/groups), output y [O, oH, oW]; K = Cg kH kW, P = oH oW.
 */

/* C[m,n] = op(A) op(B) + beta C, all row-major with leading dimensions
 * (BLIS takes the strides directly, so transposes cost nothing).  rntm
 * NULL: BLIS's global threads; else a one-thread runtime for batch threads. */
static void SFX(gemm)(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T *a, int64_t lda,
                      const T *b, int64_t ldb, T beta, T *c, int64_t ldc, rntm_t *rntm)
{
	T one = 1;
	GEMM_EX(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
	        (dim_t)m, (dim_t)n, (dim_t)k, &one, (T *)a, (inc_t)lda, 1, (T *)b, (inc_t)ldb, 1,
	        &beta, c, (inc_t)ldc, 1, NULL, rntm);
}

/* d[0..n) = 0 for the padding at a row's ends, usually one or two
 * elements: stores, not a memset call per row (a zeroing loop would be one) */
static inline void SFX(zero_few)(T *d, int64_t n)
{
	if (n > 2)
		memset(d, 0, (size_t)n * sizeof(T));
	else if (n > 0)
		d[0] = d[n - 1] = 0;
}

/* Row (c, m, k) of im2col: dst = the tap (m, k) of channel xc, the
 * [oH, oW] plane read at stride and offset (0 in the padding). */
static void SFX(im2col_row)(const geom *g, const T *restrict xc, int64_t m, int64_t k,
                            T *restrict dst)
{
	const int64_t offh = m * g->dh - g->pt, offw = k * g->dw - g->pl;
	int64_t i0, i1, j0, j1;
	nb__tap_range(g->h, g->oh, g->sh, offh, &i0, &i1);
	nb__tap_range(g->w, g->ow, g->sw, offw, &j0, &j1);
	if (i0 > 0)
		memset(dst, 0, (size_t)(i0 * g->ow) * sizeof(T));
	if (i1 < g->oh)
		memset(dst + i1 * g->ow, 0, (size_t)((g->oh - i1) * g->ow) * sizeof(T));
	if (j0 >= j1) {
		for (int64_t i = i0; i < i1; i++)
			memset(dst + i * g->ow, 0, (size_t)g->ow * sizeof(T));
		return;
	}
	if (i0 < i1 && g->sh == 1 && g->sw == 1 && g->ow == g->w) {
		/* "same"-shaped rows: the valid rows are one shifted copy
		 * of the input (row ends wrap into the neighbouring row
		 * and are zeroed after), not a call per short row */
		const int64_t a = i0 * g->ow + j0, e = (i1 - 1) * g->ow + j1;
		memcpy(dst + a, xc + (a + offh * g->w + offw), (size_t)(e - a) * sizeof(T));
		/* the end of row i and the start of row i + 1 are one run */
		SFX(zero_few)(dst + i0 * g->ow, j0);
		for (int64_t i = i0; i < i1; i++)
			SFX(zero_few)(dst + i * g->ow + j1, i + 1 < i1 ? g->ow - j1 + j0 : g->ow - j1);
		return;
	}
	/* short rows (LeNet's conv2: 10 floats) are copied inline: a memcpy
	 * call per row cost more than the copy */
	const bool inline_copy = g->sw == 1 && j1 - j0 < 64;
	for (int64_t i = i0; i < i1; i++) {
		const T *src = xc + (i * g->sh + offh) * g->w;
		T *d = dst + i * g->ow;
		SFX(zero_few)(d, j0);
		if (inline_copy)
			for (int64_t j = j0; j < j1; j++)
				d[j] = src[j + offw];
		else if (g->sw == 1)
			memcpy(d + j0, src + (j0 + offw), (size_t)(j1 - j0) * sizeof(T));
		else
			for (int64_t j = j0; j < j1; j++)
				d[j] = src[j * g->sw + offw];
		SFX(zero_few)(d + j1, g->ow - j1);
	}
}

/* im2col of a chunk of nb images (image b at x + b xs), nc channels each:
 * the [nc kH kW, nb P] matrix with row stride ld, image b in columns
 * [b P, (b + 1) P):
 *   col[(c kH + m) kW + k][b P + i oW + j] = x_b[c][i sH - pT + m dH][j sW - pL + k dW]
 * (0 in the padding), so that one output row block is W_g col.  One
 * (image, channel) pair per thread. */
static void SFX(im2col)(const geom *g, const T *restrict x, int64_t xs, int64_t nb, int64_t nc,
                        T *restrict col, int64_t ld, bool par)
{
	const int64_t kk = g->kh * g->kw, ohw = g->oh * g->ow;
	NB_PAR_FOR_IF(par && nb * nc * kk * ohw >= NB_PAR_MIN, q, nb * nc, {
		const int64_t b = q / nc, c = q % nc;
		for (int64_t m = 0; m < g->kh; m++)
			for (int64_t k = 0; k < g->kw; k++)
				SFX(im2col_row)(g, x + b * xs + c * g->h * g->w, m, k,
				                col + ((c * g->kh + m) * g->kw + k) * ld + b * ohw);
	});
}

/* col2im, the adjoint of im2col: x_b[c] = sum over the taps of the rows
 * scattered back (overwrites x).  One (image, channel) plane per thread,
 * so no races. */
static void SFX(col2im)(const geom *g, const T *restrict col, int64_t ld, int64_t nb, int64_t nc,
                        T *restrict x, int64_t xs, bool par)
{
	const int64_t ohw = g->oh * g->ow, hw = g->h * g->w;
	NB_PAR_FOR_IF(par && nb * nc * g->kh * g->kw * ohw >= NB_PAR_MIN, q, nb * nc, {
		const int64_t b = q / nc, c = q % nc;
		T *xc = x + b * xs + c * hw;
		memset(xc, 0, (size_t)hw * sizeof(T));
		for (int64_t m = 0; m < g->kh; m++) {
			const int64_t offh = m * g->dh - g->pt;
			int64_t i0, i1;
			nb__tap_range(g->h, g->oh, g->sh, offh, &i0, &i1);
			for (int64_t k = 0; k < g->kw; k++) {
				const int64_t offw = k * g->dw - g->pl;
				int64_t j0, j1;
				nb__tap_range(g->w, g->ow, g->sw, offw, &j0, &j1);
				const T *src = col + ((c * g->kh + m) * g->kw + k) * ld + b * ohw;
				for (int64_t i = i0; i < i1; i++) {
					T *restrict xr = xc + (i * g->sh + offh) * g->w + offw;
					const T *restrict sr = src + i * g->ow;
					if (g->sw == 1) /* contiguous: vectorised */
						for (int64_t j = j0; j < j1; j++)
							xr[j] += sr[j];
					else
						for (int64_t j = j0; j < j1; j++)
							xr[j * g->sw] += sr[j];
				}
			}
		}
	});
}

/* ---- depthwise (Cg == 1): direct loops, no im2col ------------------------
 * Output channel o reads input channel o / mult (mult = O / C).  Each
 * kernel tap is an axpy over the valid part of an output row. */

static void SFX(dw_forward)(const geom *g, const T *x, const T *w, const T *b, T *y)
{
	const int64_t mult = g->o / g->c, kk = g->kh * g->kw, ohw = g->oh * g->ow;
	const int64_t planes = g->n * g->o;
#pragma omp parallel for if (planes * ohw * kk >= NB_PAR_MIN)
	for (int64_t p = 0; p < planes; p++) {
		const int64_t n = p / g->o, o = p % g->o;
		const T *restrict xc = x + (n * g->c + o / mult) * g->h * g->w;
		const T *wo = w + o * kk;
		T *restrict yo = y + p * ohw;
		const T bias = b ? b[o] : 0;
		for (int64_t e = 0; e < ohw; e++)
			yo[e] = bias;
		for (int64_t m = 0; m < g->kh; m++) {
			const int64_t offh = m * g->dh - g->pt;
			int64_t i0, i1;
			nb__tap_range(g->h, g->oh, g->sh, offh, &i0, &i1);
			for (int64_t k = 0; k < g->kw; k++) {
				const int64_t offw = k * g->dw - g->pl;
				int64_t j0, j1;
				nb__tap_range(g->w, g->ow, g->sw, offw, &j0, &j1);
				const T wv = wo[m * g->kw + k];
				const int64_t nj = j1 - j0, s = g->sw;
				for (int64_t i = i0; i < i1 && nj > 0; i++) {
					/* from the first valid column: never before the row */
					const T *xr = xc + (i * g->sh + offh) * g->w + j0 * s + offw;
					T *yr = yo + i * g->ow + j0;
					if (s == 1)
						for (int64_t j = 0; j < nj; j++)
							yr[j] += wv * xr[j];
					else
						for (int64_t j = 0; j < nj; j++)
							yr[j] += wv * xr[j * s];
				}
			}
		}
	}
}

/* dx[n,c] = sum over the mult channels o of c and the taps of w[o,m,k]
 * dy[n,o] scattered back: one (n, c) plane per thread. */
static void SFX(dw_backward_input)(const geom *g, const T *dy, const T *w, T *dx)
{
	const int64_t mult = g->o / g->c, kk = g->kh * g->kw, ohw = g->oh * g->ow;
	const int64_t hw = g->h * g->w, planes = g->n * g->c;
#pragma omp parallel for if (planes * mult * ohw * kk >= NB_PAR_MIN)
	for (int64_t p = 0; p < planes; p++) {
		const int64_t n = p / g->c, c = p % g->c;
		T *restrict xc = dx + p * hw;
		memset(xc, 0, (size_t)hw * sizeof(T));
		for (int64_t o = c * mult; o < (c + 1) * mult; o++) {
			const T *restrict go = dy + (n * g->o + o) * ohw;
			for (int64_t m = 0; m < g->kh; m++) {
				const int64_t offh = m * g->dh - g->pt;
				int64_t i0, i1;
				nb__tap_range(g->h, g->oh, g->sh, offh, &i0, &i1);
				for (int64_t k = 0; k < g->kw; k++) {
					const int64_t offw = k * g->dw - g->pl;
					int64_t j0, j1;
					nb__tap_range(g->w, g->ow, g->sw, offw, &j0, &j1);
					const T wv = w[o * kk + m * g->kw + k];
					const int64_t nj = j1 - j0, s = g->sw;
					for (int64_t i = i0; i < i1 && nj > 0; i++) {
						T *xr = xc + (i * g->sh + offh) * g->w + j0 * s + offw;
						const T *gr = go + i * g->ow + j0;
						if (s == 1)
							for (int64_t j = 0; j < nj; j++)
								xr[j] += wv * gr[j];
						else
							for (int64_t j = 0; j < nj; j++)
								xr[j * s] += wv * gr[j];
					}
				}
			}
		}
	}
}

/* dw[o,m,k] = sum over n, i, j of dy[n,o,i,j] x[n, o/mult, i sH + m dH - pT,
 * j sW + k dW - pL]: one output channel per thread, the batch inside, so
 * the summation order never depends on the thread count. */
static void SFX(dw_backward_weight)(const geom *g, const T *dy, const T *x, T *dw)
{
	const int64_t mult = g->o / g->c, kk = g->kh * g->kw, ohw = g->oh * g->ow;
	const int64_t hw = g->h * g->w;
#pragma omp parallel for if (g->n * g->o * ohw * kk >= NB_PAR_MIN)
	for (int64_t o = 0; o < g->o; o++) {
		T *wo = dw + o * kk;
		memset(wo, 0, (size_t)kk * sizeof(T));
		for (int64_t n = 0; n < g->n; n++) {
			const T *xc = x + (n * g->c + o / mult) * hw;
			const T *go = dy + (n * g->o + o) * ohw;
			for (int64_t m = 0; m < g->kh; m++) {
				const int64_t offh = m * g->dh - g->pt;
				int64_t i0, i1;
				nb__tap_range(g->h, g->oh, g->sh, offh, &i0, &i1);
				for (int64_t k = 0; k < g->kw; k++) {
					const int64_t offw = k * g->dw - g->pl;
					int64_t j0, j1;
					nb__tap_range(g->w, g->ow, g->sw, offw, &j0, &j1);
					T acc = 0;
					const int64_t nj = j1 - j0, s = g->sw;
					for (int64_t i = i0; i < i1 && nj > 0; i++) {
						const T *xr = xc + (i * g->sh + offh) * g->w + j0 * s + offw;
						const T *gr = go + i * g->ow + j0;
						if (s == 1) {
#pragma omp simd reduction(+ : acc)
							for (int64_t j = 0; j < nj; j++)
								acc += gr[j] * xr[j];
						} else {
							for (int64_t j = 0; j < nj; j++)
								acc += gr[j] * xr[j * s];
						}
					}
					wo[m * g->kw + k] += acc;
				}
			}
		}
	}
}

/* ---- im2col + GEMM, a chunk of images at a time ----------------------------
 * A chunk is nb images side by side in one column matrix (see chunk_for).
 * ws: this thread's workspace slice [column matrix | y / dy block].
 * rn: a one-thread runtime (single-threaded GEMM, serial loops: batch
 * threads, or a small convolution) or NULL (BLIS threads, parallel loops). */

/* image strides and chunk layout, shared by the three passes */
typedef struct SFX(chunk_s) {
	int64_t p, kdim, xs, ys, ld; /* P; Cg kH kW; image strides of x and y; row stride */
	T *col, *yb;                 /* column matrix; [Og, nb P] block */
} SFX(chunk);

static SFX(chunk) SFX(chunk_of)(const geom *g, int64_t nb, T *ws)
{
	SFX(chunk) c = {.p = g->oh * g->ow, .kdim = g->cg * g->kh * g->kw, .xs = g->c * g->h * g->w,
	                .ys = g->o * g->oh * g->ow, .col = ws};
	c.ld = ld_for(nb * c.p, sizeof(T));
	c.yb = (T *)((char *)ws + col_bytes(g, nb, sizeof(T)));
	return c;
}

/* gather dy of the chunk's images, group gi, into yb: yb[o][b P + e] = dy_b[gi Og + o][e] */
static void SFX(gather_dy)(const geom *g, const SFX(chunk) * c, const T *dy, int64_t nb, int64_t gi)
{
	for (int64_t o = 0; o < g->og; o++)
		for (int64_t b = 0; b < nb; b++)
			memcpy(c->yb + o * c->ld + b * c->p, dy + b * c->ys + (gi * g->og + o) * c->p,
			       (size_t)c->p * sizeof(T));
}

/* y_g = W_g col(x_g)  ([Og, K] x [K, nb P]), then + bias */
static void SFX(im2col_forward)(const geom *g, const T *x, const T *w, const T *bias, T *y,
                                int64_t nb, T *ws, rntm_t *rn)
{
	const SFX(chunk) c = SFX(chunk_of)(g, nb, ws);
	const bool xc = x_is_col(g, nb, sizeof(T));
	for (int64_t gi = 0; gi < g->groups; gi++) {
		const T *src = x + gi * g->cg * g->h * g->w; /* 1x1: x_g is col(x_g) */
		int64_t ld = c.p;
		if (!xc) {
			SFX(im2col)(g, src, c.xs, nb, g->cg, c.col, c.ld, rn == NULL);
			src = c.col;
			ld = c.ld;
		}
		const T *wg = w + gi * g->og * c.kdim;
		if (nb == 1) { /* straight into y */
			T *yg = y + gi * g->og * c.p;
			SFX(gemm)(false, false, g->og, c.p, c.kdim, wg, c.kdim, src, ld, 0, yg, c.p, rn);
			if (bias)
				for (int64_t o = 0; o < g->og; o++) {
					const T bo = bias[gi * g->og + o];
					T *yr = yg + o * c.p;
					for (int64_t e = 0; e < c.p; e++)
						yr[e] += bo;
				}
			continue;
		}
		SFX(gemm)(false, false, g->og, nb * c.p, c.kdim, wg, c.kdim, src, ld, 0, c.yb, c.ld, rn);
		for (int64_t b = 0; b < nb; b++) /* scatter to the images, adding the bias */
			for (int64_t o = 0; o < g->og; o++) {
				const T bo = bias ? bias[gi * g->og + o] : 0;
				const T *yr = c.yb + o * c.ld + b * c.p;
				T *out = y + b * c.ys + (gi * g->og + o) * c.p;
				for (int64_t e = 0; e < c.p; e++)
					out[e] = yr[e] + bo;
			}
	}
}

/* dx_g = col2im(W_g^T dy_g)  ([K, Og] x [Og, nb P]); bias is unused */
static void SFX(im2col_backward_input)(const geom *g, const T *dy, const T *w, const T *bias, T *dx,
                                       int64_t nb, T *ws, rntm_t *rn)
{
	(void)bias;
	const SFX(chunk) c = SFX(chunk_of)(g, nb, ws);
	const bool xc = x_is_col(g, nb, sizeof(T));
	for (int64_t gi = 0; gi < g->groups; gi++) {
		const T *dyg = dy + gi * g->og * c.p, *wg = w + gi * g->og * c.kdim;
		int64_t ldy = c.p;
		if (nb > 1 || c.ld != c.p) { /* a chunk, or rows 2^k apart: gather with the padded stride */
			SFX(gather_dy)(g, &c, dy, nb, gi);
			dyg = c.yb;
			ldy = c.ld;
		}
		T *dxg = dx + gi * g->cg * g->h * g->w;
		if (xc) {
			SFX(gemm)(true, false, c.kdim, c.p, g->og, wg, c.kdim, dyg, ldy, 0, dxg, c.p, rn);
		} else {
			SFX(gemm)(true, false, c.kdim, nb * c.p, g->og, wg, c.kdim, dyg, ldy, 0, c.col, c.ld,
			          rn);
			SFX(col2im)(g, c.col, c.ld, nb, g->cg, dxg, c.xs, rn == NULL);
		}
	}
}

/* dW_g = beta dW_g + dy_g col(x_g)^T  ([Og, nb P] x [nb P, K]) */
static void SFX(im2col_backward_weight)(const geom *g, const T *dy, const T *x, T *dw, int64_t nb,
                                        T *ws, T beta, rntm_t *rn)
{
	const SFX(chunk) c = SFX(chunk_of)(g, nb, ws);
	const bool xc = x_is_col(g, nb, sizeof(T));
	for (int64_t gi = 0; gi < g->groups; gi++) {
		const T *src = x + gi * g->cg * g->h * g->w, *dyg = dy + gi * g->og * c.p;
		int64_t ld = c.p, ldy = c.p;
		if (!xc) {
			SFX(im2col)(g, src, c.xs, nb, g->cg, c.col, c.ld, rn == NULL);
			src = c.col;
			ld = c.ld;
		}
		if (nb > 1) {
			SFX(gather_dy)(g, &c, dy, nb, gi);
			dyg = c.yb;
			ldy = c.ld;
		}
		SFX(gemm)(false, true, g->og, c.kdim, nb * c.p, dyg, ldy, src, ld, beta,
		          dw + gi * g->og * c.kdim, c.kdim, rn);
	}
}

/* ---- op kernels ------------------------------------------------------------ */

/* thread tid's workspace slice: [column matrix | y / dy block | private dW] */
static T *SFX(slice)(const nb_tensor *t, const geom *g, const plan *pl, int tid)
{
	if (!t->g->workspace)
		return NULL;
	return (T *)((char *)t->g->workspace +
	             (size_t)tid * slice_bytes(t->op, g, sizeof(T), pl->threads, pl->chunk));
}

/* Thread tid of th takes images [lo, hi) of the batch and splits them
 * evenly into pieces of at most chunk images; piece k is [*b0, *b1). */
static int64_t SFX(pieces)(const geom *g, int th, int tid, int64_t chunk, int64_t *lo, int64_t *hi)
{
	*lo = g->n * tid / th;
	*hi = g->n * (tid + 1) / th;
	const int64_t cnt = *hi - *lo;
	return cnt > 0 ? (cnt + chunk - 1) / chunk : 0;
}

#define PIECE(lo, hi, np, k) ((lo) + ((hi) - (lo)) * (k) / (np))

/* Per-chunk work of the forward (a = x, out = y) and of the input
 * gradient (a = dy, out = dx, no bias). */
typedef void (*SFX(chunk_fn))(const geom *g, const T *a, const T *w, const T *b, T *out,
                              int64_t nb, T *ws, rntm_t *rn);

/* Runs fn over the batch in chunks, images being independent (see run_plan). */
static void SFX(each_chunk)(nb_tensor *t, const geom *g, SFX(chunk_fn) fn, const T *a,
                            int64_t astride, const T *w, const T *b, T *out, int64_t ostride)
{
	const plan pl = run_plan(t, g);
	const int th = pl.threads;
	if (th == 1) {
		ONE_THREAD_RNTM;
		int64_t lo, hi, np = SFX(pieces)(g, 1, 0, pl.chunk, &lo, &hi);
		for (int64_t k = 0; k < np; k++) {
			const int64_t b0 = PIECE(lo, hi, np, k), b1 = PIECE(lo, hi, np, k + 1);
			fn(g, a + b0 * astride, w, b, out + b0 * ostride, b1 - b0, SFX(slice)(t, g, &pl, 0),
			   rn);
		}
		return;
	}
#pragma omp parallel num_threads(th)
	{
		rntm_t one;
		one_thread(&one);
		const int tid = omp_get_thread_num();
		T *ws = SFX(slice)(t, g, &pl, tid);
		int64_t lo, hi, np = SFX(pieces)(g, th, tid, pl.chunk, &lo, &hi);
		for (int64_t k = 0; k < np; k++) {
			const int64_t b0 = PIECE(lo, hi, np, k), b1 = PIECE(lo, hi, np, k + 1);
			fn(g, a + b0 * astride, w, b, out + b0 * ostride, b1 - b0, ws, &one);
		}
	}
}

static void SFX(conv_forward)(nb_tensor *t)
{
	const geom g = geom_of(t);
	const T *x = NB_IN(t, 0, T), *w = NB_IN(t, 1, T);
	const T *b = t->n_in == 3 ? NB_IN(t, 2, T) : NULL;
	T *y = NB_OUT(t, T);
	if (use_direct(&g))
		SFX(dw_forward)(&g, x, w, b, y);
	else
		SFX(each_chunk)(t, &g, SFX(im2col_forward), x, g.c * g.h * g.w, w, b, y,
		                g.o * g.oh * g.ow);
}

static void SFX(conv_backward_input)(nb_tensor *t)
{
	const geom g = geom_of(t);
	const T *dy = NB_IN(t, 0, T), *w = NB_IN(t, 1, T);
	T *dx = NB_OUT(t, T);
	if (use_direct(&g))
		SFX(dw_backward_input)(&g, dy, w, dx);
	else
		SFX(each_chunk)(t, &g, SFX(im2col_backward_input), dy, g.o * g.oh * g.ow, w, NULL, dx,
		                g.c * g.h * g.w);
}

/* dW = sum over the batch.  With batch threads each thread sums its images
 * into a private dW, and the private sums are added in thread order, so the
 * bits depend only on the thread count. */
static void SFX(conv_backward_weight)(nb_tensor *t)
{
	const geom g = geom_of(t);
	const T *dy = NB_IN(t, 0, T), *x = NB_IN(t, 1, T);
	T *dw = NB_OUT(t, T);
	const int64_t xs = g.c * g.h * g.w, ys = g.o * g.oh * g.ow, wn = t->size;
	if (use_direct(&g)) {
		SFX(dw_backward_weight)(&g, dy, x, dw);
		return;
	}
	const plan pl = run_plan(t, &g);
	const int th = pl.threads;
	if (th == 1) {
		ONE_THREAD_RNTM;
		int64_t lo, hi, np = SFX(pieces)(&g, 1, 0, pl.chunk, &lo, &hi);
		for (int64_t k = 0; k < np; k++) {
			const int64_t b0 = PIECE(lo, hi, np, k), b1 = PIECE(lo, hi, np, k + 1);
			SFX(im2col_backward_weight)(&g, dy + b0 * ys, x + b0 * xs, dw, b1 - b0,
			                            SFX(slice)(t, &g, &pl, 0), k ? 1 : 0, rn);
		}
		return;
	}
	const size_t sb = slice_bytes(t->op, &g, sizeof(T), th, pl.chunk);
	const size_t part_off = col_bytes(&g, pl.chunk, sizeof(T)) + ybuf_bytes(t->op, &g, pl.chunk, sizeof(T));
#pragma omp parallel num_threads(th)
	{
		rntm_t one;
		one_thread(&one);
		const int tid = omp_get_thread_num();
		T *ws = SFX(slice)(t, &g, &pl, tid), *part = (T *)((char *)ws + part_off);
		memset(part, 0, (size_t)wn * sizeof(T));
		int64_t lo, hi, np = SFX(pieces)(&g, th, tid, pl.chunk, &lo, &hi);
		for (int64_t k = 0; k < np; k++) {
			const int64_t b0 = PIECE(lo, hi, np, k), b1 = PIECE(lo, hi, np, k + 1);
			SFX(im2col_backward_weight)(&g, dy + b0 * ys, x + b0 * xs, part, b1 - b0, ws, 1,
			                            &one);
		}
#pragma omp barrier
		/* every private sum is complete: add them in thread order */
		const char *base = (const char *)t->g->workspace + part_off;
#pragma omp for schedule(static)
		for (int64_t e = 0; e < wn; e++) {
			T s = 0;
			for (int k = 0; k < th; k++)
				s += ((const T *)(base + (size_t)k * sb))[e];
			dw[e] = s;
		}
	}
}

#undef PIECE

/* db[o] = sum over n, i, j of dy[n,o,i,j] */
static void SFX(conv_backward_bias)(nb_tensor *t)
{
	const nb_shape s = t->in[0]->shape;
	const T *dy = NB_IN(t, 0, T);
	T *db = NB_OUT(t, T);
	const int64_t n = s.d[0], o = s.d[1], hw = s.d[2] * s.d[3];
#pragma omp parallel for if (n * o * hw >= NB_PAR_MIN)
	for (int64_t c = 0; c < o; c++) {
		double acc = 0;
		for (int64_t i = 0; i < n; i++)
			acc += nb__sum(dy + (i * o + c) * hw, hw);
		db[c] = (T)acc;
	}
}
