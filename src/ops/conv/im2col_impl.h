/*
 * im2col + GEMM kernels for one element type: im2col.c includes this file
 * once per type, with
 *   T          float or double
 *   SFX(name)  name##_f32 or name##_f64
 *   TSFX(gemm_ex)    bli_sgemm_ex or bli_dgemm_ex
 *
 * Notation: one image x [C, H, W], weight [O, Cg, kH, kW] (Cg = C/groups,
 * Og = O/groups), output y [O, oH, oW]; K = Cg kH kW, P = oH oW.
 */

/* C[m,n] = op(A) op(B) + beta C, all row-major with leading dimensions
 * (BLIS takes the strides directly, so transposes cost nothing), with the
 * micro-kernels of nb__gemm_cntx() (ops/gemm.h) for ISA level isa, on
 * rntm's threads (the team's, or one for batch threads). */
NB_TGT static void SFX(gemm)(int isa, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T *a,
                             int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc,
                             rntm_t *rntm)
{
	T one = 1;
	TSFX(gemm_ex)
	(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, (dim_t)m,
	 (dim_t)n, (dim_t)k, &one, (T *)a, (inc_t)lda, 1, (T *)b, (inc_t)ldb, 1, &beta, c,
	 (inc_t)ldc, 1, nb__gemm_cntx(isa), rntm);
}

/* d[0..n) = 0 for the padding at a row's ends, usually one or two
 * elements: stores, not a memset call per row (a zeroing loop would be one) */
NB_INLINE void SFX(zero_few)(T *d, int64_t n)
{
	if (n > 2)
		memset(d, 0, (size_t)n * sizeof(T));
	else if (n > 0)
		d[0] = d[n - 1] = 0;
}

/* Row (c, m, k) of im2col for output rows [r0, r1): dst = the tap (m, k)
 * of channel xc, the [r1 - r0, oW] block of the plane read at stride and
 * offset (0 in the padding). */
NB_TGT static void SFX(im2col_row)(const geom *g, const T *restrict xc, int64_t m, int64_t k,
                                   int64_t r0, int64_t r1, T *restrict dst)
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
		memcpy(dst + (a - r0 * ow), xc + (a + offh * g->w + offw),
		       (size_t)(e - a) * sizeof(T));
		/* the end of row i and the start of row i + 1 are one run */
		SFX(zero_few)(dst + (i0 - r0) * ow, j0);
		for (int64_t i = i0; i < i1; i++)
			SFX(zero_few)
		(dst + (i - r0) * ow + j1, i + 1 < i1 ? ow - j1 + j0 : ow - j1);
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
NB_TGT static void SFX(im2col_row_wide)(const geom *g, const T *restrict xc, int64_t m, int64_t k,
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
NB_TGT static void SFX(im2col)(const geom *g, const T *restrict x, int64_t xs, blk bk, int64_t nc,
                               T *restrict col, int64_t ld, int th)
{
	const int64_t kk = g->kh * g->kw, bc = blk_cols(g, bk);
	const bool wd = wide(g);
	NB_PAR_FOR_IF(th, bk.nb * nc * kk * bc >= NB_PAR_MIN, q, bk.nb * nc, {
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
NB_TGT static void SFX(col2im)(const geom *g, T *restrict col, int64_t ld, blk bk, int64_t nc,
                               T *restrict x, int64_t xs, int th)
{
	const int64_t bc = blk_cols(g, bk), hw = g->h * g->w;
	const bool wd = wide(g);
	NB_PAR_FOR_IF(th, bk.nb * nc * g->kh * g->kw * bc >= NB_PAR_MIN, q, bk.nb * nc, {
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
				const int64_t ia = i0 > bk.r0 ? i0 : bk.r0,
				              ie = i1 < bk.r1 ? i1 : bk.r1;
				if (g->sh == 1 && g->sw == 1 && g->ow == g->w && ia < ie &&
				    j0 < j1) {
					/* "same"-shaped rows, as in im2col: the valid rows are
					 * one run of x; the entries that would wrap into the
					 * next row (padding positions) are zeroed first (the
					 * column matrix is scratch) */
					const int64_t w = g->w, base = bk.r0 * w,
					              shift = offh * w + offw;
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

/* ---- im2col + GEMM, a chunk of images at a time ----------------------------
 * A chunk is nb images side by side in one column matrix (see chunk_for).
 * ws: this thread's workspace slice [column matrix | y / dy block].
 * rn: the GEMM's runtime, whose thread count the loops around it use too:
 * one (batch threads, or a small convolution) or the team's; isa: the ISA
 * level (nb_exec isa). */

/* image strides and block layout, shared by the three passes */
typedef struct SFX(chunk_s) {
	int64_t p, bc, off, kdim, xs, ys, ld; /* oH oW; columns of an image in the block;
	                                         the band's first output (r0 oW); Cg kH kW;
	                                         image strides of x and y; row stride */
	bool wide, direct;                    /* wide layout; one image, plain rows:
	                                         y, dy used in place */
	T *col, *yb;                          /* column matrix; [Og, nb bc] block */
} SFX(chunk);

NB_TGT static SFX(chunk) SFX(chunk_of)(const geom *g, blk bk, T *ws)
{
	SFX(chunk)
	c = {.p = g->oh * g->ow,
	     .bc = blk_cols(g, bk),
	     .off = bk.r0 * g->ow,
	     .kdim = g->cg * g->kh * g->kw,
	     .xs = g->c * g->h * g->w,
	     .ys = g->o * g->oh * g->ow,
	     .wide = wide(g),
	     .col = ws};
	c.ld = nb__pad_ld(bk.nb * c.bc, sizeof(T));
	c.direct = bk.nb == 1 && !c.wide;
	c.yb = (T *)((char *)ws + col_bytes(g, bk.nb, bk.rows, sizeof(T)));
	return c;
}

/* gather the block of dy (group gi) into yb: yb[o][b bc + e] =
 * dy_b[gi Og + o][off + e]; in the wide layout row i of an image goes to
 * columns [i W, i W + oW) and the rest of its W are zero */
NB_TGT static void SFX(gather_dy)(const geom *g, const SFX(chunk) * c, const T *dy, int64_t nb,
                                  int64_t gi)
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
NB_TGT static void SFX(im2col_forward)(const geom *g, const T *x, const T *w, const T *bias, T *y,
                                       blk bk, T *ws, rntm_t *rn, int isa)
{
	const SFX(chunk) c = SFX(chunk_of)(g, bk, ws);
	const bool xc = x_is_col(g, bk.nb, sizeof(T));
	const int64_t rw = c.wide ? g->w : g->ow; /* a row's columns in yb */
	for (int64_t gi = 0; gi < g->groups; gi++) {
		const T *src =
		    x + gi * g->cg * g->h * g->w + (xc ? c.off : 0); /* 1x1: x_g is col(x_g) */
		int64_t ld = c.p;
		if (!xc) {
			SFX(im2col)
			(g, src, c.xs, bk, g->cg, c.col, c.ld, (int)bli_rntm_num_threads(rn));
			src = c.col;
			ld = c.ld;
		}
		const T *wg = w + gi * g->og * c.kdim;
		if (c.direct) { /* straight into y */
			T *yg = y + gi * g->og * c.p + c.off;
			SFX(gemm)
			(isa, false, false, g->og, c.bc, c.kdim, wg, c.kdim, src, ld, 0, yg, c.p,
			 rn);
			if (bias)
				for (int64_t o = 0; o < g->og; o++) {
					const T bo = bias[gi * g->og + o];
					T *yr = yg + o * c.p;
					for (int64_t e = 0; e < c.bc; e++)
						yr[e] += bo;
				}
			continue;
		}
		SFX(gemm)
		(isa, false, false, g->og, bk.nb * c.bc, c.kdim, wg, c.kdim, src, ld, 0, c.yb, c.ld,
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
NB_TGT static void SFX(im2col_backward_input)(const geom *g, const T *dy, const T *w, const T *bias,
                                              T *dx, blk bk, T *ws, rntm_t *rn, int isa)
{
	(void)bias;
	const SFX(chunk) c = SFX(chunk_of)(g, bk, ws);
	const bool xc = x_is_col(g, bk.nb, sizeof(T));
	for (int64_t gi = 0; gi < g->groups; gi++) {
		const T *dyg = dy + gi * g->og * c.p + c.off, *wg = w + gi * g->og * c.kdim;
		int64_t ldy = c.p;
		if (!c.direct ||
		    nb__pad_ld(c.p, sizeof(T)) != c.p) { /* a chunk, wide rows, or rows 2^k apart */
			SFX(gather_dy)(g, &c, dy, bk.nb, gi);
			dyg = c.yb;
			ldy = c.ld;
		}
		T *dxg = dx + gi * g->cg * g->h * g->w;
		if (xc) {
			SFX(gemm)
			(isa, true, false, c.kdim, c.bc, g->og, wg, c.kdim, dyg, ldy, 0,
			 dxg + c.off, c.p, rn);
		} else {
			SFX(gemm)
			(isa, true, false, c.kdim, bk.nb * c.bc, g->og, wg, c.kdim, dyg, ldy, 0,
			 c.col, c.ld, rn);
			SFX(col2im)
			(g, c.col, c.ld, bk, g->cg, dxg, c.xs, (int)bli_rntm_num_threads(rn));
		}
	}
}

/* dW_g = beta dW_g + dy_g col(x_g)^T  ([Og, nb bc] x [nb bc, K]) */
NB_TGT static void SFX(im2col_backward_weight)(const geom *g, const T *dy, const T *x, T *dw,
                                               blk bk, T *ws, T beta, rntm_t *rn, int isa)
{
	const SFX(chunk) c = SFX(chunk_of)(g, bk, ws);
	const bool xc = x_is_col(g, bk.nb, sizeof(T));
	for (int64_t gi = 0; gi < g->groups; gi++) {
		const T *src = x + gi * g->cg * g->h * g->w + (xc ? c.off : 0);
		const T *dyg = dy + gi * g->og * c.p + c.off;
		int64_t ld = c.p, ldy = c.p;
		if (!xc) {
			SFX(im2col)
			(g, src, c.xs, bk, g->cg, c.col, c.ld, (int)bli_rntm_num_threads(rn));
			src = c.col;
			ld = c.ld;
		}
		if (!c.direct) {
			SFX(gather_dy)(g, &c, dy, bk.nb, gi);
			dyg = c.yb;
			ldy = c.ld;
		}
		SFX(gemm)
		(isa, false, true, g->og, c.kdim, bk.nb * c.bc, dyg, ldy, src, ld, beta,
		 dw + gi * g->og * c.kdim, c.kdim, rn);
	}
}

/* ---- over the batch ----------------------------------------------------------- */

/* thread tid's workspace slice: [column matrix | y / dy block | private dW] */
NB_TGT static T *SFX(slice)(const geom *g, const nb__conv_plan *p, void *ws, int tid)
{
	if (!ws)
		return NULL;
	return (T *)((char *)ws + (size_t)tid * slice_bytes(g, p));
}

/* Per-block work of the forward (a = x, out = y) and of the input
 * gradient (a = dy, out = dx, no bias). */
typedef void (*SFX(chunk_fn))(const geom *g, const T *a, const T *w, const T *b, T *out, blk bk,
                              T *ws, rntm_t *rn, int isa);

/* Runs fn over the batch in blocks, images being independent. */
NB_TGT static void SFX(each_chunk)(const geom *g, const nb__conv_plan *p, void *wsp,
                                   SFX(chunk_fn) fn, const T *a, int64_t astride, const T *w,
                                   const T *b, T *out, int64_t ostride)
{
	const int th = p->threads;
	if (th == 1) {
		ONE_THREAD_RNTM(p);
		T *ws = SFX(slice)(g, p, wsp, 0);
		FOR_BLOCKS(g, p, 1, 0, k, b0, bk,
		           fn(g, a + b0 * astride, w, b, out + b0 * ostride, bk, ws, rn, p->isa));
		return;
	}
#pragma omp parallel num_threads(th)
	{
		rntm_t one;
		nb__gemm_rntm(&one, 1);
		/* the team's own size: fewer than th inside another parallel
		 * region */
		const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
		T *ws = SFX(slice)(g, p, wsp, tid);
		FOR_BLOCKS(g, p, nt, tid, k, b0, bk,
		           fn(g, a + b0 * astride, w, b, out + b0 * ostride, bk, ws, &one, p->isa));
	}
}

NB_TGT void SFX(nb__im2col_forward)(const geom *g, const nb__conv_plan *p, const T *x, const T *w,
                                    const T *b, T *y, void *ws)
{
	NB_ISA_MARK(NB_V);
	SFX(each_chunk)
	(g, p, ws, SFX(im2col_forward), x, g->c * g->h * g->w, w, b, y, g->o * g->oh * g->ow);
}

NB_TGT void SFX(nb__im2col_input_grad)(const geom *g, const nb__conv_plan *p, const T *dy,
                                       const T *w, T *dx, void *ws)
{
	NB_ISA_MARK(NB_V);
	SFX(each_chunk)
	(g, p, ws, SFX(im2col_backward_input), dy, g->o * g->oh * g->ow, w, NULL, dx,
	 g->c * g->h * g->w);
}

/* dW = sum over the batch.  With batch threads each thread sums its images
 * into a private dW, and the private sums are added in thread order, so the
 * bits depend only on the thread count. */
NB_TGT void SFX(nb__im2col_weight_grad)(const geom *g, const nb__conv_plan *p, const T *dy,
                                        const T *x, T *dw, void *wsp)
{
	NB_ISA_MARK(NB_V);
	const int64_t xs = g->c * g->h * g->w, ys = g->o * g->oh * g->ow;
	const int64_t wn = g->o * g->cg * g->kh * g->kw;
	const int th = p->threads;
	if (th == 1) {
		ONE_THREAD_RNTM(p);
		T *ws = SFX(slice)(g, p, wsp, 0);
		FOR_BLOCKS(g, p, 1, 0, k, b0, bk,
		           SFX(im2col_backward_weight)(g, dy + b0 * ys, x + b0 * xs, dw, bk, ws,
		                                       k ? 1 : 0, rn, p->isa));
		return;
	}
	const size_t sb = slice_bytes(g, p);
	const size_t part_off = col_bytes(g, p->chunk, p->rows, p->es) + ybuf_bytes(g, p);
#pragma omp parallel num_threads(th)
	{
		rntm_t one;
		nb__gemm_rntm(&one, 1);
		/* the team's own size (fewer than th inside another parallel
		 * region) splits the images and sums the parts */
		const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
		T *ws = SFX(slice)(g, p, wsp, tid), *part = (T *)((char *)ws + part_off);
		memset(part, 0, (size_t)wn * sizeof(T));
		FOR_BLOCKS(g, p, nt, tid, k, b0, bk,
		           SFX(im2col_backward_weight)(g, dy + b0 * ys, x + b0 * xs, part, bk, ws,
		                                       1, &one, p->isa));
#pragma omp barrier /* every private sum is complete */
		nb__sum_parts(dw, wn, (const char *)wsp + part_off, sb, nt);
	}
}
