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

/* Row (c, m, k) of im2col for output rows [r0, r1): dst = the tap (m, k)
 * of channel xc, the [r1 - r0, oW] block of the plane read at stride and
 * offset (0 in the padding). */
NB_HOT static void SFX(im2col_row)(const geom *g, const T *restrict xc, int64_t m, int64_t k, int64_t r0,
                            int64_t r1, T *restrict dst)
{
	const int64_t offh = m * g->dh - g->pt, offw = k * g->dw - g->pl, ow = g->ow;
	int64_t i0, i1, j0, j1;
	nb__tap_range(g->h, g->oh, g->sh, offh, &i0, &i1);
	nb__tap_range(g->w, g->ow, g->sw, offw, &j0, &j1);
	i0 = i0 > r0 ? i0 : r0;
	i1 = i1 < r1 ? i1 : r1;
	i1 = i1 > i0 ? i1 : i0; /* rows [i0, i1) of the block are in range */
	if (i0 > r0)
		memset(dst, 0, (size_t)((i0 - r0) * ow) * sizeof(T));
	if (i1 < r1)
		memset(dst + (i1 - r0) * ow, 0, (size_t)((r1 - i1) * ow) * sizeof(T));
	if (j0 >= j1) {
		memset(dst + (i0 - r0) * ow, 0, (size_t)((i1 - i0) * ow) * sizeof(T));
		return;
	}
	if (i0 < i1 && g->sh == 1 && g->sw == 1 && ow == g->w) {
		/* "same"-shaped rows: the valid rows are one shifted copy
		 * of the input (row ends wrap into the neighbouring row
		 * and are zeroed after), not a call per short row */
		const int64_t a = i0 * ow + j0, e = (i1 - 1) * ow + j1;
		memcpy(dst + (a - r0 * ow), xc + (a + offh * g->w + offw), (size_t)(e - a) * sizeof(T));
		/* the end of row i and the start of row i + 1 are one run */
		SFX(zero_few)(dst + (i0 - r0) * ow, j0);
		for (int64_t i = i0; i < i1; i++)
			SFX(zero_few)(dst + (i - r0) * ow + j1, i + 1 < i1 ? ow - j1 + j0 : ow - j1);
		return;
	}
	/* short rows (LeNet's conv2: 10 floats) are copied inline: a memcpy
	 * call per row cost more than the copy */
	const bool inline_copy = g->sw == 1 && j1 - j0 < 64;
	for (int64_t i = i0; i < i1; i++) {
		const T *src = xc + (i * g->sh + offh) * g->w;
		T *d = dst + (i - r0) * ow;
		SFX(zero_few)(d, j0);
		if (inline_copy)
			for (int64_t j = j0; j < j1; j++)
				d[j] = src[j + offw];
		else if (g->sw == 1)
			memcpy(d + j0, src + (j0 + offw), (size_t)(j1 - j0) * sizeof(T));
		else if (g->sw == 2) /* a constant stride: vectorised with shuffles */
			for (int64_t j = j0; j < j1; j++)
				d[j] = src[2 * j + offw];
		else
			for (int64_t j = j0; j < j1; j++)
				d[j] = src[j * g->sw + offw];
		SFX(zero_few)(d + j1, ow - j1);
	}
}

/* Row (c, m, k) of im2col in the wide layout (see wide()): rows of W
 * columns, the valid ones one contiguous run of x (never read past the
 * channel plane: the run's tail there is zeroed, it holds only dropped
 * columns). */
NB_HOT static void SFX(im2col_row_wide)(const geom *g, const T *restrict xc, int64_t m, int64_t k,
                                 T *restrict dst)
{
	const int64_t W = g->w, offh = m * g->dh - g->pt, end = g->oh * W;
	int64_t i0, i1;
	nb__tap_range(g->h, g->oh, 1, offh, &i0, &i1);
	const int64_t s0 = (i0 + offh) * W + k, a = i0 * W;
	int64_t n = (i1 - i0) * W;
	if (n > g->h * W - s0)
		n = g->h * W - s0;
	if (n < 0)
		n = 0;
	memset(dst, 0, (size_t)a * sizeof(T));
	memcpy(dst + a, xc + s0, (size_t)n * sizeof(T));
	memset(dst + a + n, 0, (size_t)(end - a - n) * sizeof(T));
}

/* im2col of a block (see blk): nb images (image b at x + b xs), nc
 * channels each, output rows [r0, r1): the [nc kH kW, nb bc] matrix with
 * row stride ld, image b in columns [b bc, (b + 1) bc), bc = (r1 - r0) oW:
 *   col[(c kH + m) kW + k][b bc + (i - r0) oW + j]
 *       = x_b[c][i sH - pT + m dH][j sW - pL + k dW]
 * (0 in the padding), so that the block's outputs are W_g col; in the
 * wide layout oW is W (whole images only).  One (image, channel) pair per
 * thread. */
NB_HOT static void SFX(im2col)(const geom *g, const T *restrict x, int64_t xs, blk bk, int64_t nc,
                        T *restrict col, int64_t ld, bool par)
{
	const int64_t kk = g->kh * g->kw, bc = blk_cols(g, bk);
	const bool wd = wide(g);
	NB_PAR_FOR_IF(par && bk.nb * nc * kk * bc >= NB_PAR_MIN, q, bk.nb * nc, {
		const int64_t b = q / nc, c = q % nc;
		const T *xc = x + b * xs + c * g->h * g->w;
		for (int64_t m = 0; m < g->kh; m++)
			for (int64_t k = 0; k < g->kw; k++) {
				T *dst = col + ((c * g->kh + m) * g->kw + k) * ld + b * bc;
				if (wd)
					SFX(im2col_row_wide)(g, xc, m, k, dst);
				else
					SFX(im2col_row)(g, xc, m, k, bk.r0, bk.r1, dst);
			}
	});
}

/* col2im, the adjoint of im2col: x_b[c] += the block's rows scattered back
 * over the taps (the first block of an image, r0 = 0, overwrites).  One
 * (image, channel) plane per thread, so no races.  In the wide layout a
 * tap is one contiguous run (its dropped columns hold zeros: dy was
 * gathered with zeros there). */
NB_HOT static void SFX(col2im)(const geom *g, T *restrict col, int64_t ld, blk bk, int64_t nc,
                        T *restrict x, int64_t xs, bool par)
{
	const int64_t bc = blk_cols(g, bk), hw = g->h * g->w;
	const bool wd = wide(g);
	NB_PAR_FOR_IF(par && bk.nb * nc * g->kh * g->kw * bc >= NB_PAR_MIN, q, bk.nb * nc, {
		const int64_t b = q / nc, c = q % nc;
		T *xc = x + b * xs + c * hw;
		if (bk.r0 == 0)
			memset(xc, 0, (size_t)hw * sizeof(T));
		for (int64_t m = 0; m < g->kh; m++) {
			const int64_t offh = m * g->dh - g->pt;
			int64_t i0, i1;
			nb__tap_range(g->h, g->oh, g->sh, offh, &i0, &i1);
			for (int64_t k = 0; k < g->kw; k++) {
				const int64_t offw = k * g->dw - g->pl;
				T *src = col + ((c * g->kh + m) * g->kw + k) * ld + b * bc;
				if (wd) {
					const int64_t s0 = (i0 + offh) * g->w + offw;
					int64_t n = (i1 - i0) * g->w;
					if (n > hw - s0)
						n = hw - s0;
					T *restrict xr = xc + s0;
					const T *restrict sr = src + i0 * g->w;
					for (int64_t e = 0; e < n; e++)
						xr[e] += sr[e];
					continue;
				}
				int64_t j0, j1;
				nb__tap_range(g->w, g->ow, g->sw, offw, &j0, &j1);
				const int64_t ia = i0 > bk.r0 ? i0 : bk.r0, ie = i1 < bk.r1 ? i1 : bk.r1;
				if (g->sh == 1 && g->sw == 1 && g->ow == g->w && ia < ie && j0 < j1) {
					/* "same"-shaped rows, as in im2col: the valid rows are
					 * one run of x; the entries that would wrap into the
					 * next row (padding positions) are zeroed first (the
					 * column matrix is scratch) */
					const int64_t w = g->w, base = bk.r0 * w, shift = offh * w + offw;
					for (int64_t i = ia; i + 1 < ie; i++) {
						for (int64_t j = j1; j < w; j++)
							src[i * w + j - base] = 0;
						for (int64_t j = 0; j < j0; j++)
							src[(i + 1) * w + j - base] = 0;
					}
					const int64_t a = ia * w + j0, e = (ie - 1) * w + j1;
					T *restrict xr = xc + (a + shift);
					const T *restrict sr = src + (a - base);
					for (int64_t q = 0; q < e - a; q++)
						xr[q] += sr[q];
					continue;
				}
				for (int64_t i = ia; i < ie; i++) {
					T *restrict xr = xc + (i * g->sh + offh) * g->w + offw;
					const T *restrict sr = src + (i - bk.r0) * g->ow;
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

/* ---- one input channel (see use_one) ----------------------------------------- */

/* n planes [h, w] of src into dst [n][hp][wp], at row top and column left,
 * zeros around: the padded copies the direct kernels read */
static void SFX(pad_planes)(const T *src, int64_t n, int64_t h, int64_t w, int64_t top,
                            int64_t left, int64_t hp, int64_t wp, T *restrict dst)
{
	memset(dst, 0, (size_t)(n * hp * wp) * sizeof(T));
	for (int64_t c = 0; c < n; c++)
		for (int64_t r = 0; r < h; r++)
			memcpy(dst + (c * hp + top + r) * wp + left, src + (c * h + r) * w,
			       (size_t)w * sizeof(T));
}

/* the image plane x, zero-padded into xp [hp, wp] */
static void SFX(d1_pad)(const geom *g, const d1geom *d, const T *x, T *restrict xp)
{
	SFX(pad_planes)(x, 1, g->h, g->w, g->pt, g->pl, d->hp, d->wp, xp);
}

/* D1_VW values in one vector (GCC vector extension: the compiler maps it to
 * the widest registers of the clone, and to several where needed) */
typedef T SFX(d1vec) __attribute__((vector_size(D1_VW * sizeof(T))));

/* a0 / a1 [NC] += the kw taps of one kernel row for the first NC <= D1_OB
 * channels: the input row xr at the block's first pixel, the taps' weights
 * wt [kw][D1_OB] */
static inline __attribute__((always_inline)) void SFX(d1_taps)(const T *xr, const T *wt, int64_t kw,
                                                                SFX(d1vec) *a0, SFX(d1vec) *a1,
                                                                const int NC)
{
	for (int64_t k = 0; k < kw; k++) {
		SFX(d1vec) x0, x1;
		D1_LOAD(x0, xr + k);
		D1_LOAD(x1, xr + k + D1_VW);
		for (int c = 0; c < NC; c++) {
			const T wv = wt[k * D1_OB + c];
			a0[c] += wv * x0;
			a1[c] += wv * x1;
		}
	}
}

/* y of one image: for each block of D1_OB channels and 2 D1_VW pixels of
 * an output row, the kH kW taps accumulate in registers (acc: two vectors
 * per channel, so the additions of a tap do not wait on each other), each
 * tap two loads of the padded plane for 2 D1_OB multiply-adds */
NB_HOT static void SFX(d1_forward)(const geom *g, const d1geom *d, const T *x, const T *wp,
                                   const T *bias, T *y, T *xp)
{
	SFX(d1_pad)(g, d, x, xp);
	const int64_t kk = g->kh * g->kw, p = g->oh * g->ow;
	for (int64_t ob = 0; ob < g->o; ob += D1_OB) {
		const T *wb = wp + ob * kk; /* [kk][D1_OB] */
		const int64_t on = g->o - ob < D1_OB ? g->o - ob : D1_OB;
		for (int64_t i = 0; i < g->oh; i++)
			for (int64_t j0 = 0; j0 < g->ow; j0 += 2 * D1_VW) {
				const SFX(d1vec) zero = {0};
				SFX(d1vec) a0[D1_OB], a1[D1_OB];
				for (int o = 0; o < D1_OB; o++)
					a0[o] = a1[o] = zero;
				for (int64_t m = 0; m < g->kh; m++)
					SFX(d1_taps)(xp + (i + m) * d->wp + j0, wb + m * g->kw * D1_OB, g->kw,
					             a0, a1, D1_OB);
				const int64_t vn = g->ow - j0 < 2 * D1_VW ? g->ow - j0 : 2 * D1_VW;
				for (int64_t o = 0; o < on; o++) {
					T out[2 * D1_VW];
					memcpy(out, &a0[o], sizeof a0[o]);
					memcpy(out + D1_VW, &a1[o], sizeof a1[o]);
					const T bo = bias ? bias[ob + o] : 0;
					T *yr = y + (ob + o) * p + i * g->ow + j0;
					for (int64_t v = 0; v < vn; v++)
						yr[v] = out[v] + bo;
				}
			}
	}
}

/* dW[o0, o0 + 1] += one image's weight gradient for a kW of KW (a constant
 * where it is inlined): per kernel row m, the KW taps of two output
 * channels accumulate over the image in 2 KW vector registers, each load
 * of the plane feeding both channels; the lanes are added in a fixed
 * order.  dy0 / dy1: the two channels' dy planes, rows padded to owr with
 * zeros (dy1 all zeros past O). */
static inline __attribute__((always_inline)) void
SFX(d1_wgrad_rows)(const geom *g, const d1geom *d, const T *xp, const T *dy0, const T *dy1,
                   T *dw0, T *dw1, const int KW)
{
	const SFX(d1vec) zero = {0};
	for (int64_t m = 0; m < g->kh; m++) {
		SFX(d1vec) a0[D1_KW], a1[D1_KW];
		for (int k = 0; k < KW; k++)
			a0[k] = a1[k] = zero;
		for (int64_t i = 0; i < g->oh; i++)
			for (int64_t j0 = 0; j0 < d->owr; j0 += D1_VW) {
				SFX(d1vec) v0, v1, xv;
				D1_LOAD(v0, dy0 + i * d->owr + j0);
				D1_LOAD(v1, dy1 + i * d->owr + j0);
				const T *xr = xp + (i + m) * d->wp + j0;
				for (int k = 0; k < KW; k++) {
					D1_LOAD(xv, xr + k);
					a0[k] += v0 * xv;
					a1[k] += v1 * xv;
				}
			}
		for (int k = 0; k < KW; k++) {
			T l0[D1_VW], l1[D1_VW], s0 = 0, s1 = 0;
			memcpy(l0, &a0[k], sizeof l0);
			memcpy(l1, &a1[k], sizeof l1);
			for (int v = 0; v < D1_VW; v++) {
				s0 += l0[v];
				s1 += l1[v];
			}
			dw0[m * KW + k] += s0;
			if (dw1)
				dw1[m * KW + k] += s1;
		}
	}
}

/* dW += the weight gradient of one image (see use_one: kW 3 or 5) */
NB_HOT static void SFX(d1_weight)(const geom *g, const d1geom *d, const T *x, const T *dy, T *dw,
                                  T *xp, T *dyp)
{
	SFX(d1_pad)(g, d, x, xp);
	const int64_t kk = g->kh * g->kw, p = g->oh * g->ow, plane = g->oh * d->owr;
	T *dy0 = dyp, *dy1 = dyp + plane;
	for (int64_t o = 0; o < g->o; o += 2) {
		for (int c = 0; c < 2; c++) { /* dy of channels o and o + 1, rows padded with zeros */
			T *dst = c ? dy1 : dy0;
			memset(dst, 0, (size_t)plane * sizeof(T));
			if (o + c < g->o)
				for (int64_t i = 0; i < g->oh; i++)
					memcpy(dst + i * d->owr, dy + (o + c) * p + i * g->ow,
					       (size_t)g->ow * sizeof(T));
		}
		T *dw1 = o + 1 < g->o ? dw + (o + 1) * kk : NULL;
		if (g->kw == 5)
			SFX(d1_wgrad_rows)(g, d, xp, dy0, dy1, dw + o * kk, dw1, 5);
		else
			SFX(d1_wgrad_rows)(g, d, xp, dy0, dy1, dw + o * kk, dw1, 3);
	}
}

/* ---- direct kernels for up to a few dozen channels (see use_dc, use_dt, use_dp) */

/* NP pixels (SW, NP constants where inlined; SW 0: sw) of an output row,
 * DC_OB channels: tmp [NP][DC_OB] (pixel p at tmp + p ts) = the sum over
 * the taps of w x */
static inline __attribute__((always_inline)) void
SFX(dc_fblock)(const T *xb, const T *wq, const int64_t *off, int64_t nt, int64_t sw, T *tmp,
               int64_t ts, const int SW, const int NP)
{
	const SFX(d1vec) zero = {0};
	SFX(d1vec) a0[DC_MAX], a1[DC_MAX];
	for (int p = 0; p < NP; p++)
		a0[p] = a1[p] = zero;
	const int64_t s = SW ? SW : sw;
	for (int64_t e = 0; e < nt; e++) {
		SFX(d1vec) w0, w1;
		D1_LOAD(w0, wq + e * DC_OB);
		D1_LOAD(w1, wq + e * DC_OB + D1_VW);
		const T *xt = xb + off[e];
		for (int p = 0; p < NP; p++) {
			const T xv = xt[p * s];
			a0[p] += xv * w0;
			a1[p] += xv * w1;
		}
	}
	for (int p = 0; p < NP; p++) {
		memcpy(tmp + p * ts, &a0[p], sizeof a0[p]);
		memcpy(tmp + p * ts + D1_VW, &a1[p], sizeof a1[p]);
	}
}

/* output rows [r0, r1) of one image, src its (padded) planes: each row's
 * pixels in even blocks of at most DC_NP */
NB_HOT static void SFX(dc_forward_rows)(const geom *g, const dcgeom *d, const T *src, const T *wq,
                                        const int64_t *off, const T *bias, T *y, int64_t r0,
                                        int64_t r1)
{
	const int64_t p = g->oh * g->ow, nblk = (g->ow + DC_NP(T) - 1) / DC_NP(T);
	T tmp[DC_MAX * DC_OB];
	for (int64_t ob = 0; ob < g->o; ob += DC_OB) {
		const T *wb = wq + ob * d->nt;
		const int64_t on = g->o - ob < DC_OB ? g->o - ob : DC_OB;
		for (int64_t i = r0; i < r1; i++) {
			const T *xr = src + i * g->sh * d->wp;
			for (int64_t b = 0; b < nblk; b++) {
				const int64_t j0 = g->ow * b / nblk, np = g->ow * (b + 1) / nblk - j0;
				const T *xb = xr + j0 * g->sw;
				if (g->sw == 1) {
					DC_CASES(SFX(dc_fblock), xb, wb, off, d->nt, 1, tmp, DC_OB, 1)
				} else {
					DC_CASES(SFX(dc_fblock), xb, wb, off, d->nt, g->sw, tmp, DC_OB, 0)
				}
				for (int64_t o = 0; o < on; o++) {
					const T bo = bias ? bias[ob + o] : 0;
					T *yr = y + (ob + o) * p + i * g->ow + j0;
					for (int64_t q = 0; q < np; q++)
						yr[q] = tmp[q * DC_OB + o] + bo;
				}
			}
		}
	}
}

/* the planes the dc kernels read: x, or its zero-padded copy in xp */
static const T *SFX(dc_src)(const geom *g, const dcgeom *d, const T *x, T *xp)
{
	if (!d->pad)
		return x;
	SFX(pad_planes)(x, g->c, g->h, g->w, g->pt, g->pl, d->hp, d->wp, xp);
	return xp;
}

/* dwq [TB][DC_OB] += the gradient of TB taps (offsets off) over one image's
 * pixels; dyt [oH oW][DC_OB] */
static inline __attribute__((always_inline)) void
SFX(dc_wblock)(const geom *g, const dcgeom *d, const T *src, const T *dyt, const int64_t *off,
               T *dwq, const int SW, const int NP)
{
	const SFX(d1vec) zero = {0};
	SFX(d1vec) a0[DC_MAX], a1[DC_MAX];
	int64_t of[DC_MAX];
	for (int e = 0; e < NP; e++) {
		a0[e] = a1[e] = zero;
		of[e] = off[e];
	}
	const int64_t s = SW ? SW : g->sw;
	for (int64_t i = 0; i < g->oh; i++) {
		const T *xr = src + i * g->sh * d->wp, *dr = dyt + i * g->ow * DC_OB;
		for (int64_t j = 0; j < g->ow; j++) {
			SFX(d1vec) d0, d1;
			D1_LOAD(d0, dr + j * DC_OB);
			D1_LOAD(d1, dr + j * DC_OB + D1_VW);
			const T *xb = xr + j * s;
			for (int e = 0; e < NP; e++) {
				const T xv = xb[of[e]];
				a0[e] += xv * d0;
				a1[e] += xv * d1;
			}
		}
	}
	for (int e = 0; e < NP; e++) {
		SFX(d1vec) s0, s1;
		D1_LOAD(s0, dwq + e * DC_OB);
		D1_LOAD(s1, dwq + e * DC_OB + D1_VW);
		s0 += a0[e];
		s1 += a1[e];
		memcpy(dwq + e * DC_OB, &s0, sizeof s0);
		memcpy(dwq + e * DC_OB + D1_VW, &s1, sizeof s1);
	}
}

/* dwq [O / DC_OB][C kH kW][DC_OB] += the weight gradient of one image */
NB_HOT static void SFX(dc_weight)(const geom *g, const dcgeom *d, const T *x, const T *dy,
                                  const int64_t *off, T *dwq, T *xp, T *dyt)
{
	const T *src = SFX(dc_src)(g, d, x, xp);
	const int64_t p = g->oh * g->ow;
	for (int64_t ob = 0; ob < g->o; ob += DC_OB) {
		const int64_t on = g->o - ob < DC_OB ? g->o - ob : DC_OB;
		for (int64_t q = 0; q < p; q++) /* dy of the block, pixel-major, zeros past O */
			for (int64_t o = 0; o < DC_OB; o++)
				dyt[q * DC_OB + o] = o < on ? dy[(ob + o) * p + q] : 0;
		T *db = dwq + ob * d->nt;
		for (int64_t e = 0; e < d->nt; e += DC_TB(T)) {
			const int64_t np = d->nt - e < DC_TB(T) ? d->nt - e : DC_TB(T);
			if (g->sw == 1) {
				DC_CASES(SFX(dc_wblock), g, d, src, dyt, off + e, db + e * DC_OB, 1)
			} else {
				DC_CASES(SFX(dc_wblock), g, d, src, dyt, off + e, db + e * DC_OB, 0)
			}
		}
	}
}

/* 2 D1_VW pixels [j0, ...) of dx row i, channels [cb, cb + D1_OB): the taps
 * of every dy channel and of the kernel rows inside dy accumulate in
 * registers (KW a constant where inlined; 0: kW) */
static inline __attribute__((always_inline)) void
SFX(dt_block)(const geom *g, const dtgeom *q, const T *dyp, const T *wb, int64_t i, int64_t j0,
              T *out, const int KW, const int NC)
{
	const int64_t kw = KW ? KW : g->kw, kk = g->kh * kw;
	const int64_t m0 = q->qt - i > 0 ? q->qt - i : 0;
	const int64_t m1 = q->qt - i + g->oh < g->kh ? q->qt - i + g->oh : g->kh;
	const SFX(d1vec) zero = {0};
	SFX(d1vec) a0[D1_OB], a1[D1_OB];
	for (int c = 0; c < NC; c++)
		a0[c] = a1[c] = zero;
	for (int64_t o = 0; o < g->o; o++)
		for (int64_t m = m0; m < m1; m++) {
			const T *xr = dyp + (o * g->oh + i + m - q->qt) * q->wq + j0;
			const T *wt = wb + (o * kk + m * kw) * D1_OB;
			SFX(d1_taps)(xr, wt, kw, a0, a1, NC);
		}
	for (int c = 0; c < NC; c++) {
		memcpy(out + c * 2 * D1_VW, &a0[c], sizeof a0[c]);
		memcpy(out + c * 2 * D1_VW + D1_VW, &a1[c], sizeof a1[c]);
	}
}

/* dx of one image (see dt_of), from dy and wf [C / D1_OB][O][kH][kW][D1_OB],
 * the flipped kernel */
NB_HOT static void SFX(dt_backward)(const geom *g, const dtgeom *q, const T *dy, const T *wf, T *dx,
                                    T *dyp)
{
	SFX(pad_planes)(dy, g->o, g->oh, g->ow, 0, q->ql, g->oh, q->wq, dyp);
	const int64_t hw = g->h * g->w;
	T out[D1_OB * 2 * D1_VW];
	for (int64_t cb = 0; cb < g->c; cb += D1_OB) {
		const T *wb = wf + cb * g->o * g->kh * g->kw;
		const int64_t cn = g->c - cb < D1_OB ? g->c - cb : D1_OB;
		for (int64_t i = 0; i < g->h; i++)
			for (int64_t j0 = 0; j0 < g->w; j0 += 2 * D1_VW) {
				/* a last block of 1-4 channels computes 2 or 4 of them, not 6 */
				if (cn <= 2)
					DT_KW_CASES(2);
				else if (cn <= 4)
					DT_KW_CASES(4);
				else
					DT_KW_CASES(D1_OB);
				const int64_t vn = g->w - j0 < 2 * D1_VW ? g->w - j0 : 2 * D1_VW;
				for (int64_t c = 0; c < cn; c++)
					memcpy(dx + (cb + c) * hw + i * g->w + j0, out + c * 2 * D1_VW,
					       (size_t)vn * sizeof(T));
			}
	}
}

/* dx[c][p0 .. p0 + 8) for the cn <= DC_OB channels of s [.][DC_OB] (pixel
 * p at s + p DC_OB), eight pixels at a time by 8 x 8 transposes in
 * registers, the rest one by one; dx's planes hw apart */
NB_HOT static void SFX(dp_unpack)(const T *s, int64_t hw, int64_t cn, T *dx)
{
	int64_t p0 = 0;
	for (; p0 + D1_VW <= hw; p0 += D1_VW)
		for (int64_t c0 = 0; c0 < cn; c0 += D1_VW) {
			SFX(d1vec) r[D1_VW], t[D1_VW], u[D1_VW], o[D1_VW];
			for (int i = 0; i < D1_VW; i++)
				D1_LOAD(r[i], s + (p0 + i) * DC_OB + c0);
			for (int i = 0; i < D1_VW; i += 2) {
				t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
				t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
			}
			for (int i = 0; i < D1_VW; i += 4) {
				u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
				u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
				u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
				u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
			}
			for (int i = 0; i < 4; i++) {
				o[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
				o[i + 4] = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
			}
			for (int64_t c = 0; c < D1_VW && c0 + c < cn; c++)
				memcpy(dx + (c0 + c) * hw + p0, &o[c], sizeof o[c]);
		}
	for (; p0 < hw; p0++)
		for (int64_t c = 0; c < cn; c++)
			dx[c * hw + p0] = s[p0 * DC_OB + c];
}

/* dx of one image in phases (see dpgeom): off / ph0 the taps' offsets in
 * the padded dy and each phase's first tap, wq [C / DC_OB][taps][DC_OB].
 * A block of channels goes pixel-major into scr [H W][DC_OB], every phase
 * storing its pixels' vectors in place, then into dx's planes by
 * transposes. */
NB_HOT static void SFX(dp_backward)(const geom *g, const dpgeom *q, const T *dy, const T *wq,
                                    const int64_t *off, const int64_t *ph0, T *dx, T *dyp, T *scr)
{
	SFX(pad_planes)(dy, g->o, g->oh, g->ow, q->pt, q->pl, q->hp, q->wp, dyp);
	const int64_t nt = g->o * g->kh * g->kw, hw = g->h * g->w, ts = g->sw * DC_OB;
	for (int64_t cb = 0; cb < g->c; cb += DC_OB) {
		for (int64_t ph = 0; ph < g->sh; ph++)
			for (int64_t pw = 0; pw < g->sw; pw++) {
				const int64_t f = ph * g->sw + pw, e0 = ph0[f], ne = ph0[f + 1] - e0;
				const int64_t na = (g->h - ph + g->sh - 1) / g->sh;
				const int64_t nb = (g->w - pw + g->sw - 1) / g->sw;
				const int64_t nblk = (nb + DC_NP(T) - 1) / DC_NP(T);
				const T *wb = wq + (cb / DC_OB * nt + e0) * DC_OB;
				for (int64_t a = 0; a < na; a++)
					for (int64_t b = 0; b < nblk; b++) {
						const int64_t b0 = nb * b / nblk, np = nb * (b + 1) / nblk - b0;
						T *dst = scr + ((ph + a * g->sh) * g->w + pw + b0 * g->sw) * DC_OB;
						DC_CASES(SFX(dc_fblock), dyp + a * q->wp + b0, wb, off + e0, ne, 1, dst, ts, 1)
					}
			}
		SFX(dp_unpack)(scr, hw, g->c - cb < DC_OB ? g->c - cb : DC_OB, dx + cb * hw);
	}
}

/* ---- depthwise (Cg == 1): direct loops, no im2col ------------------------
 * Output channel o reads input channel o / mult (mult = O / C).  Each
 * kernel tap is an axpy over the valid part of an output row. */

NB_HOT static void SFX(dw_forward)(const geom *g, const T *x, const T *w, const T *b, T *y)
{
	const int64_t mult = g->o / g->c, kk = g->kh * g->kw, ohw = g->oh * g->ow;
	const int64_t planes = g->n * g->o;
#pragma omp parallel for num_threads(nb_get_num_threads()) if (planes * ohw * kk >= NB_PAR_MIN)
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
NB_HOT static void SFX(dw_backward_input)(const geom *g, const T *dy, const T *w, T *dx)
{
	const int64_t mult = g->o / g->c, kk = g->kh * g->kw, ohw = g->oh * g->ow;
	const int64_t hw = g->h * g->w, planes = g->n * g->c;
#pragma omp parallel for num_threads(nb_get_num_threads()) if (planes * mult * ohw * kk >= NB_PAR_MIN)
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
NB_HOT static void SFX(dw_backward_weight)(const geom *g, const T *dy, const T *x, T *dw)
{
	const int64_t mult = g->o / g->c, kk = g->kh * g->kw, ohw = g->oh * g->ow;
	const int64_t hw = g->h * g->w;
#pragma omp parallel for num_threads(nb_get_num_threads()) if (g->n * g->o * ohw * kk >= NB_PAR_MIN)
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
							NB_SIMD(reduction(+ : acc))
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

/* image strides and block layout, shared by the three passes */
typedef struct SFX(chunk_s) {
	int64_t p, bc, off, kdim, xs, ys, ld; /* oH oW; columns of an image in the block;
	                                         the band's first output (r0 oW); Cg kH kW;
	                                         image strides of x and y; row stride */
	bool wide, direct;                    /* wide layout; one image, plain rows:
	                                         y, dy used in place */
	T *col, *yb;                          /* column matrix; [Og, nb bc] block */
} SFX(chunk);

static SFX(chunk) SFX(chunk_of)(const geom *g, blk bk, T *ws)
{
	SFX(chunk) c = {.p = g->oh * g->ow, .bc = blk_cols(g, bk), .off = bk.r0 * g->ow,
	                .kdim = g->cg * g->kh * g->kw, .xs = g->c * g->h * g->w,
	                .ys = g->o * g->oh * g->ow, .wide = wide(g), .col = ws};
	c.ld = nb__pad_ld(bk.nb * c.bc, sizeof(T));
	c.direct = bk.nb == 1 && !c.wide;
	c.yb = (T *)((char *)ws + col_bytes(g, bk.nb, sizeof(T)));
	return c;
}

/* gather the block of dy (group gi) into yb: yb[o][b bc + e] =
 * dy_b[gi Og + o][off + e]; in the wide layout row i of an image goes to
 * columns [i W, i W + oW) and the rest of its W are zero */
NB_HOT static void SFX(gather_dy)(const geom *g, const SFX(chunk) * c, const T *dy, int64_t nb, int64_t gi)
{
	for (int64_t o = 0; o < g->og; o++)
		for (int64_t b = 0; b < nb; b++) {
			const T *src = dy + b * c->ys + (gi * g->og + o) * c->p + c->off;
			T *dst = c->yb + o * c->ld + b * c->bc;
			if (!c->wide) {
				memcpy(dst, src, (size_t)c->bc * sizeof(T));
				continue;
			}
			for (int64_t i = 0; i < g->oh; i++) {
				T *d = dst + i * g->w;
				const T *sr = src + i * g->ow;
				for (int64_t j = 0; j < g->ow; j++)
					d[j] = sr[j];
				for (int64_t j = g->ow; j < g->w; j++)
					d[j] = 0;
			}
		}
}

/* y_g = W_g col(x_g)  ([Og, K] x [K, nb bc]), then + bias */
NB_HOT static void SFX(im2col_forward)(const geom *g, const T *x, const T *w, const T *bias, T *y, blk bk,
                                T *ws, rntm_t *rn)
{
	const SFX(chunk) c = SFX(chunk_of)(g, bk, ws);
	const bool xc = x_is_col(g, bk.nb, sizeof(T));
	const int64_t rw = c.wide ? g->w : g->ow; /* a row's columns in yb */
	for (int64_t gi = 0; gi < g->groups; gi++) {
		const T *src = x + gi * g->cg * g->h * g->w + (xc ? c.off : 0); /* 1x1: x_g is col(x_g) */
		int64_t ld = c.p;
		if (!xc) {
			SFX(im2col)(g, src, c.xs, bk, g->cg, c.col, c.ld, rn == NULL);
			src = c.col;
			ld = c.ld;
		}
		const T *wg = w + gi * g->og * c.kdim;
		if (c.direct) { /* straight into y */
			T *yg = y + gi * g->og * c.p + c.off;
			SFX(gemm)(false, false, g->og, c.bc, c.kdim, wg, c.kdim, src, ld, 0, yg, c.p, rn);
			if (bias)
				for (int64_t o = 0; o < g->og; o++) {
					const T bo = bias[gi * g->og + o];
					T *yr = yg + o * c.p;
					for (int64_t e = 0; e < c.bc; e++)
						yr[e] += bo;
				}
			continue;
		}
		SFX(gemm)(false, false, g->og, bk.nb * c.bc, c.kdim, wg, c.kdim, src, ld, 0, c.yb, c.ld,
		          rn);
		for (int64_t b = 0; b < bk.nb; b++) /* scatter to the images, adding the bias */
			for (int64_t o = 0; o < g->og; o++) {
				const T bo = bias ? bias[gi * g->og + o] : 0;
				const T *yr = c.yb + o * c.ld + b * c.bc;
				T *out = y + b * c.ys + (gi * g->og + o) * c.p;
				for (int64_t i = 0; i < g->oh; i++)
					for (int64_t j = 0; j < g->ow; j++)
						out[i * g->ow + j] = yr[i * rw + j] + bo;
			}
	}
}

/* dx_g = col2im(W_g^T dy_g)  ([K, Og] x [Og, nb bc]); bias is unused */
static void SFX(im2col_backward_input)(const geom *g, const T *dy, const T *w, const T *bias, T *dx,
                                       blk bk, T *ws, rntm_t *rn)
{
	(void)bias;
	const SFX(chunk) c = SFX(chunk_of)(g, bk, ws);
	const bool xc = x_is_col(g, bk.nb, sizeof(T));
	for (int64_t gi = 0; gi < g->groups; gi++) {
		const T *dyg = dy + gi * g->og * c.p + c.off, *wg = w + gi * g->og * c.kdim;
		int64_t ldy = c.p;
		if (!c.direct || nb__pad_ld(c.p, sizeof(T)) != c.p) { /* a chunk, wide rows, or rows 2^k apart */
			SFX(gather_dy)(g, &c, dy, bk.nb, gi);
			dyg = c.yb;
			ldy = c.ld;
		}
		T *dxg = dx + gi * g->cg * g->h * g->w;
		if (xc) {
			SFX(gemm)(true, false, c.kdim, c.bc, g->og, wg, c.kdim, dyg, ldy, 0, dxg + c.off, c.p,
			          rn);
		} else {
			SFX(gemm)(true, false, c.kdim, bk.nb * c.bc, g->og, wg, c.kdim, dyg, ldy, 0, c.col,
			          c.ld, rn);
			SFX(col2im)(g, c.col, c.ld, bk, g->cg, dxg, c.xs, rn == NULL);
		}
	}
}

/* dW_g = beta dW_g + dy_g col(x_g)^T  ([Og, nb bc] x [nb bc, K]) */
static void SFX(im2col_backward_weight)(const geom *g, const T *dy, const T *x, T *dw, blk bk,
                                        T *ws, T beta, rntm_t *rn)
{
	const SFX(chunk) c = SFX(chunk_of)(g, bk, ws);
	const bool xc = x_is_col(g, bk.nb, sizeof(T));
	for (int64_t gi = 0; gi < g->groups; gi++) {
		const T *src = x + gi * g->cg * g->h * g->w + (xc ? c.off : 0);
		const T *dyg = dy + gi * g->og * c.p + c.off;
		int64_t ld = c.p, ldy = c.p;
		if (!xc) {
			SFX(im2col)(g, src, c.xs, bk, g->cg, c.col, c.ld, rn == NULL);
			src = c.col;
			ld = c.ld;
		}
		if (!c.direct) {
			SFX(gather_dy)(g, &c, dy, bk.nb, gi);
			dyg = c.yb;
			ldy = c.ld;
		}
		SFX(gemm)(false, true, g->og, c.kdim, bk.nb * c.bc, dyg, ldy, src, ld, beta,
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

/* Per-block work of the forward (a = x, out = y) and of the input
 * gradient (a = dy, out = dx, no bias). */
typedef void (*SFX(chunk_fn))(const geom *g, const T *a, const T *w, const T *b, T *out, blk bk,
                              T *ws, rntm_t *rn);

/* Runs fn over the batch in blocks, images being independent (see run_plan). */
static void SFX(each_chunk)(nb_tensor *t, const geom *g, SFX(chunk_fn) fn, const T *a,
                            int64_t astride, const T *w, const T *b, T *out, int64_t ostride)
{
	const plan pl = run_plan(t, g);
	const int th = pl.threads;
	if (th == 1) {
		ONE_THREAD_RNTM;
		T *ws = SFX(slice)(t, g, &pl, 0);
		FOR_BLOCKS(g, &pl, 1, 0, k, b0, bk,
		           fn(g, a + b0 * astride, w, b, out + b0 * ostride, bk, ws, rn));
		return;
	}
#pragma omp parallel num_threads(th)
	{
		rntm_t one;
		one_thread(&one);
		const int tid = omp_get_thread_num();
		T *ws = SFX(slice)(t, g, &pl, tid);
		FOR_BLOCKS(g, &pl, th, tid, k, b0, bk,
		           fn(g, a + b0 * astride, w, b, out + b0 * ostride, bk, ws, &one));
	}
}

/* Winograd on as many threads as the workspace has room for (the thread
 * count may have changed since compile) */
static void SFX(wino_run)(const nb_tensor *t, const geom *g, const T *in, const T *w, T *out,
                          bool flip)
{
	const nb__wino_geom wg = wino_geom(g, flip);
	int th = wino_threads(g);
	while (th > 1 && nb__wino_workspace(&wg, sizeof(T), th) > t->g->workspace_bytes)
		th--;
	SFX(nb__wino_forward)(&wg, in, w, out, t->g->workspace, th);
}

/* the Winograd weight gradient, on as many threads as the workspace has
 * room for */
static void SFX(wino_run_wgrad)(const nb_tensor *t, const geom *g, const T *dy, const T *x, T *dw)
{
	const nb__wino_geom wg = wino_geom(g, false);
	int th = wino_threads(g);
	while (th > 1 && nb__wino_wgrad_workspace(&wg, sizeof(T), th) > t->g->workspace_bytes)
		th--;
	SFX(nb__wino_weight_grad)(&wg, dy, x, dw, t->g->workspace, th);
}

/* y[n, o] += b[o] */
NB_HOT static void SFX(add_bias)(const geom *g, const T *b, T *y)
{
	const int64_t p = g->oh * g->ow;
	NB_PAR_FOR_IF(g->n * g->o * p >= NB_PAR_MIN, q, g->n * g->o, {
		const T bo = b[q % g->o];
		T *yr = y + q * p;
		for (int64_t e = 0; e < p; e++)
			yr[e] += bo;
	});
}

/* batch threads for the one-channel kernels: as many as the workspace has
 * slices for */
static int SFX(d1_threads)(const nb_tensor *t, const geom *g)
{
	int th = plan_for(g).threads;
	while (th > 1 && d1_wbytes(t, g) + (size_t)th * d1_slice(t, g) > t->g->workspace_bytes)
		th--;
	return th;
}

static void SFX(d1_run_forward)(nb_tensor *t, const geom *g, const T *x, const T *w, const T *b,
                                T *y)
{
	const d1geom d = d1_of(g);
	const int64_t kk = g->kh * g->kw;
	T *wp = t->g->workspace; /* [O / D1_OB][kk][D1_OB] */
	for (int64_t o = 0; o < d.ob; o++)
		for (int64_t e = 0; e < kk; e++)
			wp[(o / D1_OB * kk + e) * D1_OB + o % D1_OB] = o < g->o ? w[o * kk + e] : 0;
	char *slices = (char *)t->g->workspace + d1_wbytes(t, g);
	const int th = SFX(d1_threads)(t, g);
	const size_t sb = d1_slice(t, g);
	FOR_IMAGES(g, th, slices, sb, n, sl,
	           SFX(d1_forward)(g, &d, x + n * g->h * g->w, wp, b, y + n * g->o * g->oh * g->ow, sl));
}

/* the weight gradient over the batch: each thread its share of the images
 * into a private dW, the private sums added in thread order */
static void SFX(d1_run_weight)(nb_tensor *t, const geom *g, const T *dy, const T *x, T *dw)
{
	const d1geom d = d1_of(g);
	const int th = SFX(d1_threads)(t, g);
	const size_t sb = d1_slice(t, g), wn = (size_t)t->size;
	const size_t part_off = (size_t)(d.hp * d.wp + 2 * g->oh * d.owr) * sizeof(T);
	char *ws = t->g->workspace;
#pragma omp parallel num_threads(th) if (th > 1)
	{
		const int tid = omp_get_thread_num();
		T *xp = (T *)(ws + (size_t)tid * sb), *dyp = xp + d.hp * d.wp;
		T *part = (T *)(ws + (size_t)tid * sb + part_off);
		memset(part, 0, wn * sizeof(T));
		for (int64_t n = g->n * tid / th; n < g->n * (tid + 1) / th; n++)
			SFX(d1_weight)(g, &d, x + n * g->h * g->w, dy + n * g->o * g->oh * g->ow, part, xp,
			               dyp);
#pragma omp barrier
		nb__sum_parts(dw, (int64_t)wn, ws + part_off, sb, th);
	}
}

/* the offset of each tap (c, m, k) in the padded image */
static void SFX(dc_offsets)(const geom *g, const dcgeom *d, int64_t *off)
{
	for (int64_t c = 0; c < g->c; c++)
		for (int64_t m = 0; m < g->kh; m++)
			for (int64_t k = 0; k < g->kw; k++)
				off[(c * g->kh + m) * g->kw + k] = (c * d->hp + m * g->dh) * d->wp + k * g->dw;
}

static void SFX(dc_run_forward)(nb_tensor *t, const geom *g, const T *x, const T *w, const T *b,
                                T *y)
{
	const dcgeom d = dc_of(g);
	char *ws = t->g->workspace;
	int64_t *off = (int64_t *)ws;
	T *wq = (T *)(ws + nb__align_up((size_t)d.nt * sizeof(int64_t))); /* [O / DC_OB][nt][DC_OB] */
	SFX(dc_offsets)(g, &d, off);
	for (int64_t o = 0; o < d.ob; o++)
		for (int64_t e = 0; e < d.nt; e++)
			wq[(o / DC_OB * d.nt + e) * DC_OB + o % DC_OB] = o < g->o ? w[o * d.nt + e] : 0;
	const int64_t xs = g->c * g->h * g->w, ys = g->o * g->oh * g->ow;
	const int th = nb_get_num_threads();
	if (th < 2 || g->n >= th || g->oh < 2 || dc_work(g) < PAR_WORK) {
		DC_FOR_IMAGES(t, g, n, sl,
		              SFX(dc_forward_rows)(g, &d, SFX(dc_src)(g, &d, x + n * xs, sl), wq, off,
		                                   b, y + n * ys, 0, g->oh));
		return;
	}
	/* fewer images than threads (one, for inference): the threads share
	 * each image's rows, the padded copy in the first slice */
	T *xp = (T *)(ws + dc_shared_bytes(t, g));
	for (int64_t n = 0; n < g->n; n++) {
		const T *src = SFX(dc_src)(g, &d, x + n * xs, xp);
		const int tr = th < g->oh ? th : (int)g->oh;
#pragma omp parallel num_threads(tr)
		{
			const int k = omp_get_thread_num();
			SFX(dc_forward_rows)(g, &d, src, wq, off, b, y + n * ys, g->oh * k / tr,
			                     g->oh * (k + 1) / tr);
		}
	}
}

/* the weight gradient over the batch: each thread its share of the images
 * into a private packed dW, unpacked and added in thread order */
static void SFX(dc_run_weight)(nb_tensor *t, const geom *g, const T *dy, const T *x, T *dw)
{
	const dcgeom d = dc_of(g);
	char *ws = t->g->workspace;
	int64_t *off = (int64_t *)ws;
	SFX(dc_offsets)(g, &d, off);
	char *slices = ws + dc_shared_bytes(t, g);
	const int th = dc_threads(t, g);
	const size_t sb = dc_slice(t, g);
	const size_t xpb = d.pad ? nb__align_up((size_t)(g->c * d.hp * d.wp) * sizeof(T)) : 0;
	const size_t dytb = nb__align_up((size_t)(g->oh * g->ow * DC_OB) * sizeof(T));
	const size_t part_off = xpb + dytb + nb__align_up((size_t)(d.ob * d.nt) * sizeof(T));
#pragma omp parallel num_threads(th) if (th > 1)
	{
		const int tid = omp_get_thread_num();
		char *sl = slices + (size_t)tid * sb;
		T *xp = (T *)sl, *dyt = (T *)(sl + xpb), *dwq = (T *)(sl + xpb + dytb);
		memset(dwq, 0, (size_t)(d.ob * d.nt) * sizeof(T));
		for (int64_t n = g->n * tid / th; n < g->n * (tid + 1) / th; n++)
			SFX(dc_weight)(g, &d, x + n * g->c * g->h * g->w, dy + n * g->o * g->oh * g->ow, off,
			               dwq, xp, dyt);
		T *dst = th > 1 ? (T *)(sl + part_off) : dw;
		for (int64_t o = 0; o < g->o; o++)
			for (int64_t e = 0; e < d.nt; e++)
				dst[o * d.nt + e] = dwq[(o / DC_OB * d.nt + e) * DC_OB + o % DC_OB];
		if (th > 1) {
#pragma omp barrier /* every private sum is complete */
			nb__sum_parts(dw, g->o * d.nt, slices + part_off, sb, th);
		}
	}
}

/* the input gradient at stride 1 (see dt_of), images on batch threads */
static void SFX(dt_run)(nb_tensor *t, const geom *g, const T *dy, const T *w, T *dx)
{
	const dtgeom q = dt_of(g);
	const int64_t kk = g->kh * g->kw;
	T *wf = t->g->workspace; /* [C / D1_OB][O][kH][kW][D1_OB], flipped */
	for (int64_t c = 0; c < q.cb; c++)
		for (int64_t o = 0; o < g->o; o++)
			for (int64_t e = 0; e < kk; e++)
				wf[((c / D1_OB * g->o + o) * kk + e) * D1_OB + c % D1_OB] =
				    c < g->c ? w[(o * g->c + c) * kk + kk - 1 - e] : 0;
	DC_FOR_IMAGES(t, g, n, sl,
	           SFX(dt_backward)(g, &q, dy + n * g->o * g->oh * g->ow, wf,
	                            dx + n * g->c * g->h * g->w, sl));
}

/* the input gradient in phases (see dpgeom), images on batch threads */
static void SFX(dp_run)(nb_tensor *t, const geom *g, const T *dy, const T *w, T *dx)
{
	const dpgeom q = dp_of(g);
	const int64_t nt = g->o * g->kh * g->kw, nph = g->sh * g->sw;
	char *ws = t->g->workspace;
	int64_t *off = (int64_t *)ws, *ph0 = off + nt;
	T *wq = (T *)(ws + nb__align_up((size_t)(nt + nph + 1) * sizeof(int64_t)));
	int64_t n = 0, e, f;
	for (int64_t ph = 0; ph < g->sh; ph++)
		for (int64_t pw = 0; pw < g->sw; pw++) {
			ph0[ph * g->sw + pw] = n;
			for (int64_t m = 0; m < g->kh; m++) {
				if (!dp_tap(ph, g->pt, m, g->dh, g->sh, &e))
					continue;
				for (int64_t k = 0; k < g->kw; k++) {
					if (!dp_tap(pw, g->pl, k, g->dw, g->sw, &f))
						continue;
					for (int64_t o = 0; o < g->o; o++, n++) {
						off[n] = (o * q.hp + e + q.pt) * q.wp + f + q.pl;
						const T *src = w + (o * g->c * g->kh + m) * g->kw + k;
						T *dst = wq + n * DC_OB;
						for (int64_t c = 0; c < q.cb; c++)
							dst[c / DC_OB * nt * DC_OB + c % DC_OB] =
							    c < g->c ? src[c * g->kh * g->kw] : 0;
					}
				}
			}
		}
	ph0[nph] = n;
	const size_t dyb = dp_dy_bytes(g, &q, sizeof(T));
	DC_FOR_IMAGES(t, g, i, sl,
	           SFX(dp_backward)(g, &q, dy + i * g->o * g->oh * g->ow, wq, off, ph0,
	                            dx + i * g->c * g->h * g->w, sl, (T *)((char *)sl + dyb)));
}

static void SFX(conv_forward)(nb_tensor *t)
{
	const geom g = geom_of(t);
	const T *x = NB_IN(t, 0, T), *w = NB_IN(t, 1, T);
	const T *b = t->n_in == 3 ? NB_IN(t, 2, T) : NULL;
	T *y = NB_OUT(t, T);
	switch (path_of(t, &g)) {
	case PATH_DEPTHWISE:
		SFX(dw_forward)(&g, x, w, b, y);
		break;
	case PATH_ONE:
		SFX(d1_run_forward)(t, &g, x, w, b, y);
		break;
	case PATH_DC:
		SFX(dc_run_forward)(t, &g, x, w, b, y);
		break;
	case PATH_WINO:
		SFX(wino_run)(t, &g, x, w, y, false);
		if (b)
			SFX(add_bias)(&g, b, y);
		break;
	default: /* im2col (dt and dp are input gradients) */
		SFX(each_chunk)(t, &g, SFX(im2col_forward), x, g.c * g.h * g.w, w, b, y,
		                g.o * g.oh * g.ow);
	}
}

static void SFX(conv_backward_input)(nb_tensor *t)
{
	const geom g = geom_of(t);
	const T *dy = NB_IN(t, 0, T), *w = NB_IN(t, 1, T);
	T *dx = NB_OUT(t, T);
	switch (path_of(t, &g)) {
	case PATH_DEPTHWISE:
		SFX(dw_backward_input)(&g, dy, w, dx);
		break;
	case PATH_DT:
		SFX(dt_run)(t, &g, dy, w, dx);
		break;
	case PATH_DP:
		SFX(dp_run)(t, &g, dy, w, dx);
		break;
	case PATH_WINO:
		SFX(wino_run)(t, &g, dy, w, dx, true);
		break;
	default: /* im2col (one-channel and dc are forward and weight-gradient kernels) */
		SFX(each_chunk)(t, &g, SFX(im2col_backward_input), dy, g.o * g.oh * g.ow, w, NULL, dx,
		                g.c * g.h * g.w);
	}
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
	switch (path_of(t, &g)) {
	case PATH_DEPTHWISE:
		SFX(dw_backward_weight)(&g, dy, x, dw);
		return;
	case PATH_ONE:
		SFX(d1_run_weight)(t, &g, dy, x, dw);
		return;
	case PATH_DC:
		SFX(dc_run_weight)(t, &g, dy, x, dw);
		return;
	case PATH_WINO:
		SFX(wino_run_wgrad)(t, &g, dy, x, dw);
		return;
	default: /* im2col, below */
		break;
	}
	const plan pl = run_plan(t, &g);
	const int th = pl.threads;
	if (th == 1) {
		ONE_THREAD_RNTM;
		T *ws = SFX(slice)(t, &g, &pl, 0);
		FOR_BLOCKS(&g, &pl, 1, 0, k, b0, bk,
		           SFX(im2col_backward_weight)(&g, dy + b0 * ys, x + b0 * xs, dw, bk, ws,
		                                       k ? 1 : 0, rn));
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
		FOR_BLOCKS(&g, &pl, th, tid, k, b0, bk,
		           SFX(im2col_backward_weight)(&g, dy + b0 * ys, x + b0 * xs, part, bk, ws, 1,
		                                       &one));
#pragma omp barrier /* every private sum is complete */
		nb__sum_parts(dw, wn, (const char *)t->g->workspace + part_off, sb, th);
	}
}

/* db[o] = sum over n, i, j of dy[n,o,i,j] */
static void SFX(conv_backward_bias)(nb_tensor *t)
{
	const nb_shape s = t->in[0]->shape;
	const T *dy = NB_IN(t, 0, T);
	T *db = NB_OUT(t, T);
	const int64_t n = s.d[0], o = s.d[1], hw = s.d[2] * s.d[3];
#pragma omp parallel for num_threads(nb_get_num_threads()) if (n * o * hw >= NB_PAR_MIN)
	for (int64_t c = 0; c < o; c++) {
		double acc = 0;
		for (int64_t i = 0; i < n; i++)
			acc += nb__sum(dy + (i * o + c) * hw, hw);
		db[c] = (T)acc;
	}
}
