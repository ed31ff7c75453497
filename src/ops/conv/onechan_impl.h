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
				/* the bias added in vectors; a row's last block
				 * (LeNet's 28 of 32 pixels) stored in the level's
				 * fixed-size moves, not value by value (which took
				 * as long as the taps) */
				const int64_t vn = g->ow - j0 < PX ? g->ow - j0 : PX;
				for (int64_t o = 0; o < on; o++) {
					const T bo = bias ? bias[ob + o] : 0;
					const SFX(d1vec) s0 = a[o][0] + bo, s1 = a[o][1] + bo;
					T *yr = y + (ob + o) * p + i * g->ow + j0;
					if (vn == PX) {
						memcpy(yr, &s0, sizeof s0);
						memcpy(yr + D1_V, &s1, sizeof s1);
						continue;
					}
					T out[PX];
					memcpy(out, &s0, sizeof s0);
					memcpy(out + D1_V, &s1, sizeof s1);
					SFX(copy_row)(yr, out, vn);
				}
			}
	}
}

/* The vector sums of channels o0 and o0 + 1 (va0, va1: [kH][KW] vectors
 * each) += one image's products, for a kW of KW (a constant where it is
 * inlined): per kernel row m, the KW taps of the two channels accumulate
 * over the image in 2 KW vector registers, each load of the plane feeding
 * both channels.  dy0 / dy1: the two channels' dy planes, rows padded to
 * owr with zeros (dy1 all zeros past O).  The lanes stay apart until the
 * thread's last image (d1_weight_lanes): adding them up per image cost as
 * long as the products. */
static inline __attribute__((always_inline)) void SFX(d1_wgrad_rows)(const geom *g, const d1geom *d,
                                                                     const T *xp, const T *dy0,
                                                                     const T *dy1, SFX(d1vec) * va0,
                                                                     SFX(d1vec) * va1, const int KW)
{
	for (int64_t m = 0; m < g->kh; m++) {
		SFX(d1vec) a0[D1_KW], a1[D1_KW];
		for (int k = 0; k < KW; k++) {
			a0[k] = va0[m * KW + k];
			a1[k] = va1[m * KW + k];
		}
		for (int64_t i = 0; i < g->oh; i++)
			for (int64_t j0 = 0; j0 < d->owr; j0 += D1_V) {
				SFX(d1vec) v0, v1, xv;
				D1_LOAD(v0, dy0 + i * d->owr + j0);
				D1_LOAD(v1, dy1 + i * d->owr + j0);
				const T *xr = xp + (i + m) * d->wp + j0;
				for (int k = 0; k < KW; k++) {
					D1_LOAD(xv, xr + k);
					/* one load for both channels, not one
					 * folded into each multiply-add (which
					 * made the loop load-bound) */
#if NB_V == 2
					NB_IN_REGISTER(xv);
#elif NB_V == 1
					TSFX(D1_PIN)(xv); /* 8 doubles take 2 ymm */
#endif
					a0[k] += v0 * xv;
					a1[k] += v1 * xv;
				}
			}
		for (int k = 0; k < KW; k++) {
			va0[m * KW + k] = a0[k];
			va1[m * KW + k] = a1[k];
		}
	}
}

/* the vector sums va ([O rounded to 2][kH kW] vectors) += the products of
 * one image (policy.c takes it for kW 3 or 5) */
NB_TGT static void SFX(d1_weight)(const geom *g, const d1geom *d, const T *x, const T *dy,
                                  SFX(d1vec) * va, T *xp, T *dyp)
{
	SFX(d1_pad)(g, d, x, xp);
	const int64_t kk = g->kh * g->kw, p = g->oh * g->ow, plane = g->oh * d->owr;
	T *dy0 = dyp, *dy1 = dyp + plane;
	for (int64_t o = 0; o < g->o; o += 2) {
		/* dy of channels o and o + 1, rows padded with zeros: vectors of
		 * zeros over a row's end (owr is a multiple of 2 D1_VW), then the
		 * row; a memset of each plane first cost more than the copy */
		const SFX(d1vec) zero = {0};
		for (int c = 0; c < 2; c++) {
			T *dst = c ? dy1 : dy0;
			if (o + c >= g->o) {
				memset(dst, 0, (size_t)plane * sizeof(T));
				continue;
			}
			for (int64_t i = 0; i < g->oh; i++) {
				for (int64_t j = g->ow / D1_V * D1_V; j < d->owr; j += D1_V)
					memcpy(dst + i * d->owr + j, &zero, sizeof zero);
				SFX(copy_row)
				(dst + i * d->owr, dy + (o + c) * p + i * g->ow, g->ow);
			}
		}
		SFX(d1vec) *va0 = va + o * kk, *va1 = va0 + kk;
		if (g->kw == 5)
			SFX(d1_wgrad_rows)(g, d, xp, dy0, dy1, va0, va1, 5);
		else
			SFX(d1_wgrad_rows)(g, d, xp, dy0, dy1, va0, va1, 3);
	}
}

/* dw[e] = the lanes of va[e] added in order, for the O kH kW weights */
NB_TGT static void SFX(d1_weight_lanes)(const geom *g, const SFX(d1vec) * va, T *dw)
{
	for (int64_t e = 0; e < g->o * g->kh * g->kw; e++) {
		T l[D1_V], s = 0;
		memcpy(l, &va[e], sizeof l);
		for (int v = 0; v < D1_V; v++)
			s += l[v];
		dw[e] = s;
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
	const size_t va_off = nb__align_up(part_off + wn * sizeof(T));
	char *ws = wsp;
#pragma omp parallel num_threads(th) if (th > 1)
	{
		/* the team's own size (fewer than th inside another parallel
		 * region) splits the images and sums the parts */
		const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
		T *xp = (T *)(ws + (size_t)tid * sb), *dyp = xp + d.hp * d.wp;
		T *part = (T *)(ws + (size_t)tid * sb + part_off);
		SFX(d1vec) *va = (SFX(d1vec) *)(ws + (size_t)tid * sb + va_off);
		memset(va, 0, (size_t)(d.o2 * g->kh * g->kw) * sizeof *va);
		for (int64_t n = g->n * tid / nt; n < g->n * (tid + 1) / nt; n++)
			SFX(d1_weight)
		(g, &d, x + n * g->h * g->w, dy + n * g->o * g->oh * g->ow, va, xp, dyp);
		SFX(d1_weight_lanes)(g, va, part);
#pragma omp barrier
		nb__sum_parts(dw, (int64_t)wn, ws + part_off, sb, nt);
	}
}
