/*
 * Depthwise kernels for one element type: depthwise.c includes this file
 * once per type, with T (float or double) and SFX(name) (name##_f32 or
 * name##_f64).  th: the plan's threads.
 *
 * Output channel o reads input channel o / mult (mult = O / C).  Each
 * kernel tap is an axpy over the valid part of an output row.
 */

NB_TGT static void SFX(dw_forward)(const geom *g, const T *x, const T *w, const T *b, T *y, int th)
{
	const int64_t mult = g->o / g->c, kk = g->kh * g->kw, ohw = g->oh * g->ow;
	const int64_t planes = g->n * g->o;
#pragma omp parallel for num_threads(th) if (planes * ohw * kk >= NB_PAR_MIN)
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
					const T *xr =
					    xc + (i * g->sh + offh) * g->w + j0 * s + offw;
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
NB_TGT static void SFX(dw_backward_input)(const geom *g, const T *dy, const T *w, T *dx, int th)
{
	const int64_t mult = g->o / g->c, kk = g->kh * g->kw, ohw = g->oh * g->ow;
	const int64_t hw = g->h * g->w, planes = g->n * g->c;
#pragma omp parallel for num_threads(th) if (planes * mult * ohw * kk >= NB_PAR_MIN)
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
						T *xr =
						    xc + (i * g->sh + offh) * g->w + j0 * s + offw;
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
NB_TGT static void SFX(dw_backward_weight)(const geom *g, const T *dy, const T *x, T *dw, int th)
{
	const int64_t mult = g->o / g->c, kk = g->kh * g->kw, ohw = g->oh * g->ow;
	const int64_t hw = g->h * g->w;
#pragma omp parallel for num_threads(th) if (g->n * g->o * ohw * kk >= NB_PAR_MIN)
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
						const T *xr =
						    xc + (i * g->sh + offh) * g->w + j0 * s + offw;
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

NB_TGT void SFX(nb__depthwise_forward)(const geom *g, const nb__conv_plan *p, const T *x,
                                       const T *w, const T *b, T *y, void *ws)
{
	NB_ISA_MARK(NB_V);
	(void)ws;
	SFX(dw_forward)(g, x, w, b, y, p->threads);
}

NB_TGT void SFX(nb__depthwise_input_grad)(const geom *g, const nb__conv_plan *p, const T *dy,
                                          const T *w, T *dx, void *ws)
{
	NB_ISA_MARK(NB_V);
	(void)ws;
	SFX(dw_backward_input)(g, dy, w, dx, p->threads);
}

NB_TGT void SFX(nb__depthwise_weight_grad)(const geom *g, const nb__conv_plan *p, const T *dy,
                                           const T *x, T *dw, void *ws)
{
	NB_ISA_MARK(NB_V);
	(void)ws;
	SFX(dw_backward_weight)(g, dy, x, dw, p->threads);
}
