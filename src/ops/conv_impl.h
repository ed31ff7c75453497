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
	for (int64_t i = i0; i < i1; i++) {
		const T *src = xc + (i * g->sh + offh) * g->w;
		T *d = dst + i * g->ow;
		SFX(zero_few)(d, j0);
		if (g->sw == 1)
			memcpy(d + j0, src + (j0 + offw), (size_t)(j1 - j0) * sizeof(T));
		else
			for (int64_t j = j0; j < j1; j++)
				d[j] = src[j * g->sw + offw];
		SFX(zero_few)(d + j1, g->ow - j1);
	}
}

/* im2col of nc channels: the [nc kH kW, P] matrix
 *   col[(c kH + m) kW + k][i oW + j] = x[c][i sH - pT + m dH][j sW - pL + k dW]
 * (0 in the padding), so that one output row block is W_g col.  One
 * channel (kH kW rows) per thread. */
static void SFX(im2col)(const geom *g, const T *restrict x, int64_t nc, T *restrict col, bool par)
{
	const int64_t kk = g->kh * g->kw, ohw = g->oh * g->ow, ld = col_ld(g, sizeof(T));
	NB_PAR_FOR_IF(par && nc * kk * ohw >= NB_PAR_MIN, c, nc, {
		for (int64_t m = 0; m < g->kh; m++)
			for (int64_t k = 0; k < g->kw; k++)
				SFX(im2col_row)(g, x + c * g->h * g->w, m, k,
				                col + ((c * g->kh + m) * g->kw + k) * ld);
	});
}

/* col2im, the adjoint of im2col: x[c] = sum over the taps of the rows
 * scattered back (overwrites x).  One thread per channel, so no races. */
static void SFX(col2im)(const geom *g, const T *restrict col, int64_t nc, T *restrict x, bool par)
{
	const int64_t ohw = g->oh * g->ow, hw = g->h * g->w, ld = col_ld(g, sizeof(T));
	NB_PAR_FOR_IF(par && nc * g->kh * g->kw * ohw >= NB_PAR_MIN, c, nc, {
		T *xc = x + c * hw;
		memset(xc, 0, (size_t)hw * sizeof(T));
		for (int64_t m = 0; m < g->kh; m++) {
			const int64_t offh = m * g->dh - g->pt;
			int64_t i0, i1;
			nb__tap_range(g->h, g->oh, g->sh, offh, &i0, &i1);
			for (int64_t k = 0; k < g->kw; k++) {
				const int64_t offw = k * g->dw - g->pl;
				int64_t j0, j1;
				nb__tap_range(g->w, g->ow, g->sw, offw, &j0, &j1);
				const T *src = col + ((c * g->kh + m) * g->kw + k) * ld;
				for (int64_t i = i0; i < i1; i++) {
					T *xr = xc + (i * g->sh + offh) * g->w;
					const T *sr = src + i * g->ow;
					for (int64_t j = j0; j < j1; j++)
						xr[j * g->sw + offw] += sr[j];
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

/* ---- im2col + GEMM, one image at a time ----------------------------------
 * rn: a one-thread runtime (single-threaded GEMM, serial loops: batch
 * threads, or a small convolution) or NULL (BLIS threads, parallel im2col). */

/* y_g = W_g col(x_g)  ([Og, K] x [K, P]), then + bias */
static void SFX(im2col_forward)(const geom *g, const T *x, const T *w, const T *b, T *y, T *col,
                                rntm_t *rn)
{
	const int64_t ohw = g->oh * g->ow, kdim = g->cg * g->kh * g->kw;
	const bool xc = x_is_col(g, sizeof(T));
	const int64_t ld = xc ? ohw : col_ld(g, sizeof(T));
	for (int64_t gi = 0; gi < g->groups; gi++) {
		const T *src = x + gi * g->cg * g->h * g->w; /* 1x1: x_g is col(x_g) */
		if (!xc) {
			SFX(im2col)(g, src, g->cg, col, rn == NULL);
			src = col;
		}
		T *yg = y + gi * g->og * ohw;
		SFX(gemm)(false, false, g->og, ohw, kdim, w + gi * g->og * kdim, kdim, src, ld, 0, yg,
		          ohw, rn);
		if (b)
			for (int64_t o = 0; o < g->og; o++) {
				const T bo = b[gi * g->og + o];
				T *yr = yg + o * ohw;
				for (int64_t e = 0; e < ohw; e++)
					yr[e] += bo;
			}
	}
}

/* dx_g = col2im(W_g^T dy_g)  ([K, Og] x [Og, P]); b is unused */
static void SFX(im2col_backward_input)(const geom *g, const T *dy, const T *w, const T *b, T *dx,
                                       T *col, rntm_t *rn)
{
	(void)b;
	const int64_t ohw = g->oh * g->ow, kdim = g->cg * g->kh * g->kw, ld = col_ld(g, sizeof(T));
	const bool xc = x_is_col(g, sizeof(T));
	T *dyc = copy_dy(NB_OP_CONV2D_BACKWARD_INPUT, g, sizeof(T))
	             ? (T *)((char *)col + col_bytes(g, sizeof(T)))
	             : NULL;
	for (int64_t gi = 0; gi < g->groups; gi++) {
		const T *dyg = dy + gi * g->og * ohw, *wg = w + gi * g->og * kdim;
		T *dxg = dx + gi * g->cg * g->h * g->w;
		int64_t ldy = ohw;
		if (dyc) { /* rows 2^k apart: copy them with a padded stride */
			for (int64_t o = 0; o < g->og; o++)
				memcpy(dyc + o * ld, dyg + o * ohw, (size_t)ohw * sizeof(T));
			dyg = dyc;
			ldy = ld;
		}
		if (xc) {
			SFX(gemm)(true, false, kdim, ohw, g->og, wg, kdim, dyg, ldy, 0, dxg, ohw, rn);
		} else {
			SFX(gemm)(true, false, kdim, ohw, g->og, wg, kdim, dyg, ldy, 0, col, ld, rn);
			SFX(col2im)(g, col, g->cg, dxg, rn == NULL);
		}
	}
}

/* dW_g += dy_g col(x_g)^T  ([Og, P] x [P, K]); beta 0 overwrites */
static void SFX(im2col_backward_weight)(const geom *g, const T *dy, const T *x, T *dw, T *col,
                                        T beta, rntm_t *rn)
{
	const int64_t ohw = g->oh * g->ow, kdim = g->cg * g->kh * g->kw;
	const bool xc = x_is_col(g, sizeof(T));
	const int64_t ld = xc ? ohw : col_ld(g, sizeof(T));
	for (int64_t gi = 0; gi < g->groups; gi++) {
		const T *src = x + gi * g->cg * g->h * g->w;
		if (!xc) {
			SFX(im2col)(g, src, g->cg, col, rn == NULL);
			src = col;
		}
		SFX(gemm)(false, true, g->og, kdim, ohw, dy + gi * g->og * ohw, ohw, src, ld, beta,
		          dw + gi * g->og * kdim, kdim, rn);
	}
}

/* ---- op kernels ------------------------------------------------------------ */

/* one thread's slice of the workspace: [column matrix | padded dy copy or private dW] */
static T *SFX(slice)(const nb_tensor *t, const geom *g, int th, int tid)
{
	if (!t->g->workspace)
		return NULL;
	return (T *)((char *)t->g->workspace + (size_t)tid * slice_bytes(t->op, g, sizeof(T), th));
}

static T *SFX(slice_dw)(const nb_tensor *t, const geom *g, int th, int tid)
{
	return (T *)((char *)SFX(slice)(t, g, th, tid) + col_bytes(g, sizeof(T)));
}

/* Per-image work of the forward (a = x, out = y) and of the input
 * gradient (a = dy, out = dx, no bias). */
typedef void (*SFX(image_fn))(const geom *g, const T *a, const T *w, const T *b, T *out, T *col,
                              rntm_t *rn);

/* Runs fn over the batch, images being independent (see run_plan). */
static void SFX(each_image)(nb_tensor *t, const geom *g, SFX(image_fn) fn, const T *a,
                            int64_t astride, const T *w, const T *b, T *out, int64_t ostride)
{
	const plan pl = run_plan(t, g);
	const int th = pl.threads;
	if (th == 1) {
		ONE_THREAD_RNTM;
		for (int64_t n = 0; n < g->n; n++)
			fn(g, a + n * astride, w, b, out + n * ostride, SFX(slice)(t, g, 1, 0), rn);
		return;
	}
#pragma omp parallel num_threads(th)
	{
		rntm_t one;
		one_thread(&one);
		T *col = SFX(slice)(t, g, th, omp_get_thread_num());
#pragma omp for schedule(static)
		for (int64_t n = 0; n < g->n; n++)
			fn(g, a + n * astride, w, b, out + n * ostride, col, &one);
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
		SFX(each_image)(t, &g, SFX(im2col_forward), x, g.c * g.h * g.w, w, b, y,
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
		SFX(each_image)(t, &g, SFX(im2col_backward_input), dy, g.o * g.oh * g.ow, w, NULL, dx,
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
		for (int64_t n = 0; n < g.n; n++)
			SFX(im2col_backward_weight)(&g, dy + n * ys, x + n * xs, dw,
			                            SFX(slice)(t, &g, 1, 0), n ? 1 : 0, rn);
		return;
	}
#pragma omp parallel num_threads(th)
	{
		rntm_t one;
		one_thread(&one);
		const int tid = omp_get_thread_num();
		T *col = SFX(slice)(t, &g, th, tid), *part = SFX(slice_dw)(t, &g, th, tid);
		memset(part, 0, (size_t)wn * sizeof(T));
#pragma omp for schedule(static)
		for (int64_t n = 0; n < g.n; n++)
			SFX(im2col_backward_weight)(&g, dy + n * ys, x + n * xs, part, col, 1, &one);
		/* the implicit barrier of the loop: every private sum is complete */
		const char *base = (const char *)t->g->workspace + col_bytes(&g, sizeof(T));
		const size_t sb = slice_bytes(t->op, &g, sizeof(T), th);
#pragma omp for schedule(static)
		for (int64_t e = 0; e < wn; e++) {
			T s = 0;
			for (int k = 0; k < th; k++)
				s += ((const T *)(base + (size_t)k * sb))[e];
			dw[e] = s;
		}
	}
}

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
