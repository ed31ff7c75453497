/*
 * One-channel kernels for one element type: onechan.c includes this file
 * once per type, with T (float or double) and SFX(name) (name##_f32 or
 * name##_f64).
 */

#include "ops/conv/lanes_impl.h"

/* the image plane x, zero-padded into xp [hp, wp] */
NB_TGT static void SFX(d1_pad)(const geom *g, const d1geom *d, const T *x, T *restrict xp)
{
	SFX(pad_planes)(x, 1, g->h, g->w, g->pt, g->pl, d->hp, d->wp, xp);
}

/* y of one image: for each block of D1_OB channels and D1_PX pixels (two
 * vectors) of an output row, the kH kW taps accumulate in registers (acc:
 * two vectors per channel, so the additions of a tap do not wait on each
 * other), each tap two loads of the padded plane for 2 D1_OB
 * multiply-adds */
NB_TGT static void SFX(d1_forward)(const geom *g, const d1geom *d, const T *x, const T *wp,
                                   const T *bias, T *y, T *xp)
{
	enum { PX = D1_PX(sizeof(T), NB_V) };
	SFX(d1_pad)(g, d, x, xp);
	const int64_t kk = g->kh * g->kw, p = g->oh * g->ow;
	for (int64_t ob = 0; ob < g->o; ob += D1_OB) {
		const T *wb = wp + ob * kk; /* [kk][D1_OB] */
		const int64_t on = g->o - ob < D1_OB ? g->o - ob : D1_OB;
		for (int64_t i = 0; i < g->oh; i++)
			for (int64_t j0 = 0; j0 < g->ow; j0 += PX) {
				const SFX(d1vec) zero = {0};
				SFX(d1vec) a[D1_OB][2];
				for (int o = 0; o < D1_OB; o++)
					a[o][0] = a[o][1] = zero;
				for (int64_t m = 0; m < g->kh; m++)
					SFX(d1_taps)
				(xp + (i + m) * d->wp + j0, wb + m * g->kw * D1_OB, g->kw, a, D1_OB,
				 2, D1_OB);
				const int64_t vn = g->ow - j0 < PX ? g->ow - j0 : PX;
				for (int64_t o = 0; o < on; o++) {
					T out[PX];
					memcpy(out, &a[o][0], sizeof a[o][0]);
					memcpy(out + D1_V, &a[o][1], sizeof a[o][1]);
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
 * zeros (dy1 all zeros past O).  D1_VW lanes at every level: 16 floats
 * at AVX-512 measured 5-10% slower on Zen 4. */
static inline __attribute__((always_inline)) void SFX(d1_wgrad_rows)(const geom *g, const d1geom *d,
                                                                     const T *xp, const T *dy0,
                                                                     const T *dy1, T *dw0, T *dw1,
                                                                     const int KW)
{
	const SFX(d8vec) zero = {0};
	for (int64_t m = 0; m < g->kh; m++) {
		SFX(d8vec) a0[D1_KW], a1[D1_KW];
		for (int k = 0; k < KW; k++)
			a0[k] = a1[k] = zero;
		for (int64_t i = 0; i < g->oh; i++)
			for (int64_t j0 = 0; j0 < d->owr; j0 += D1_VW) {
				SFX(d8vec) v0, v1, xv;
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

/* dW += the weight gradient of one image (policy.c takes it for kW 3 or 5) */
NB_TGT static void SFX(d1_weight)(const geom *g, const d1geom *d, const T *x, const T *dy, T *dw,
                                  T *xp, T *dyp)
{
	SFX(d1_pad)(g, d, x, xp);
	const int64_t kk = g->kh * g->kw, p = g->oh * g->ow, plane = g->oh * d->owr;
	T *dy0 = dyp, *dy1 = dyp + plane;
	for (int64_t o = 0; o < g->o; o += 2) {
		for (int c = 0; c < 2;
		     c++) { /* dy of channels o and o + 1, rows padded with zeros */
			T *dst = c ? dy1 : dy0;
			memset(dst, 0, (size_t)plane * sizeof(T));
			if (o + c < g->o)
				for (int64_t i = 0; i < g->oh; i++) {
					const T *src = dy + (o + c) * p + i * g->ow;
					SFX(copy_row)(dst + i * d->owr, src, g->ow);
				}
		}
		T *dw1 = o + 1 < g->o ? dw + (o + 1) * kk : NULL;
		if (g->kw == 5)
			SFX(d1_wgrad_rows)(g, d, xp, dy0, dy1, dw + o * kk, dw1, 5);
		else
			SFX(d1_wgrad_rows)(g, d, xp, dy0, dy1, dw + o * kk, dw1, 3);
	}
}

/* ---- over the batch ----------------------------------------------------------- */

NB_TGT void SFX(nb__onechan_forward)(const geom *g, const nb__conv_plan *p, const T *x, const T *w,
                                     const T *b, T *y, void *ws)
{
	NB_ISA_MARK(NB_V);
	const d1geom d = d1_of(g, D1_PX(sizeof(T), NB_V));
	const int64_t kk = g->kh * g->kw;
	T *wp = ws; /* [O / D1_OB][kk][D1_OB] */
	for (int64_t o = 0; o < d.ob; o++)
		for (int64_t e = 0; e < kk; e++)
			wp[(o / D1_OB * kk + e) * D1_OB + o % D1_OB] = o < g->o ? w[o * kk + e] : 0;
	char *slices = (char *)ws + d1_wbytes(g, p);
	const int th = p->threads;
	const size_t sb = d1_slice(g, p);
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1)
	for (int64_t n = 0; n < g->n; n++) {
		void *sl = slices + (size_t)omp_get_thread_num() * sb;
		SFX(d1_forward)
		(g, &d, x + n * g->h * g->w, wp, b, y + n * g->o * g->oh * g->ow, sl);
	}
}

/* the weight gradient over the batch: each thread its share of the images
 * into a private dW, the private sums added in thread order */
NB_TGT void SFX(nb__onechan_weight_grad)(const geom *g, const nb__conv_plan *p, const T *dy,
                                         const T *x, T *dw, void *wsp)
{
	NB_ISA_MARK(NB_V);
	const d1geom d = d1_of(g, 2 * D1_VW);
	const int th = p->threads;
	const size_t sb = d1_slice(g, p), wn = (size_t)(g->o * g->kh * g->kw);
	const size_t part_off = (size_t)(d.hp * d.wp + 2 * g->oh * d.owr) * sizeof(T);
	char *ws = wsp;
#pragma omp parallel num_threads(th) if (th > 1)
	{
		/* the team's own size (fewer than th inside another parallel
		 * region) splits the images and sums the parts */
		const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
		T *xp = (T *)(ws + (size_t)tid * sb), *dyp = xp + d.hp * d.wp;
		T *part = (T *)(ws + (size_t)tid * sb + part_off);
		memset(part, 0, wn * sizeof(T));
		for (int64_t n = g->n * tid / nt; n < g->n * (tid + 1) / nt; n++)
			SFX(d1_weight)
		(g, &d, x + n * g->h * g->w, dy + n * g->o * g->oh * g->ow, part, xp, dyp);
#pragma omp barrier
		nb__sum_parts(dw, (int64_t)wn, ws + part_off, sb, nt);
	}
}
