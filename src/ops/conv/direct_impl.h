/*
 * Direct kernels for one element type: direct.c includes this file once
 * per type, with T (float or double) and SFX(name) (name##_f32 or
 * name##_f64).
 */

#include "ops/conv/lanes_impl.h"

/* ---- the blocks in registers ------------------------------------------------ */

/* DC_VW(T) values in one vector (the level's register width) */
typedef T SFX(dcvec) __attribute__((vector_size(DC_VW(T) * sizeof(T))));
#define DC_V SFX(dcvec)

/* NP pixels (SW, NP constants where inlined; SW 0: sw) of an output row,
 * DC_OB channels: tmp [NP][DC_OB] (pixel p at tmp + p ts) = the sum over
 * the taps of w x */
static inline __attribute__((always_inline)) void SFX(dc_fblock)(const T *xb, const T *wq,
                                                                 const int64_t *off, int64_t nt,
                                                                 int64_t sw, T *tmp, int64_t ts,
                                                                 const int SW, const int NP)
{
	enum { NV = DC_NV(T), VW = DC_VW(T) };
	const DC_V zero = {0};
	DC_V a[DC_MAX][NV];
	for (int p = 0; p < NP; p++)
		for (int v = 0; v < NV; v++)
			a[p][v] = zero;
	const int64_t s = SW ? SW : sw;
	for (int64_t e = 0; e < nt; e++) {
		DC_V wv[NV];
		for (int v = 0; v < NV; v++)
			D1_LOAD(wv[v], wq + e * DC_OB + v * VW);
		const T *xt = xb + off[e];
		for (int p = 0; p < NP; p++) {
			const T xv = xt[p * s];
			for (int v = 0; v < NV; v++)
				a[p][v] += xv * wv[v];
		}
	}
	for (int p = 0; p < NP; p++)
		for (int v = 0; v < NV; v++)
			memcpy(tmp + p * ts + v * VW, &a[p][v], sizeof a[p][v]);
}

/* output rows [r0, r1) of one image, src its (padded) planes: each row's
 * pixels in even blocks of at most DC_NP */
NB_TGT static void SFX(dc_forward_rows)(const geom *g, const dcgeom *d, const T *src, const T *wq,
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
				const int64_t j0 = g->ow * b / nblk,
				              np = g->ow * (b + 1) / nblk - j0;
				const T *xb = xr + j0 * g->sw;
				if (g->sw == 1) {
					DC_CASES(SFX(dc_fblock), xb, wb, off, d->nt, 1, tmp, DC_OB,
					         1)
				} else {
					DC_CASES(SFX(dc_fblock), xb, wb, off, d->nt, g->sw, tmp,
					         DC_OB, 0)
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
NB_TGT static const T *SFX(dc_src)(const geom *g, const dcgeom *d, const T *x, T *xp)
{
	if (!d->pad)
		return x;
	SFX(pad_planes)(x, g->c, g->h, g->w, g->pt, g->pl, d->hp, d->wp, xp);
	return xp;
}

/* dwq [TB][DC_OB] += the gradient of TB taps (offsets off) over one image's
 * pixels; dyt [oH oW][DC_OB] */
static inline __attribute__((always_inline)) void SFX(dc_wblock)(const geom *g, const dcgeom *d,
                                                                 const T *src, const T *dyt,
                                                                 const int64_t *off, T *dwq,
                                                                 const int SW, const int NP)
{
	enum { NV = DC_NV(T), VW = DC_VW(T) };
	const DC_V zero = {0};
	DC_V a[DC_MAX][NV];
	int64_t of[DC_MAX];
	for (int e = 0; e < NP; e++) {
		for (int v = 0; v < NV; v++)
			a[e][v] = zero;
		of[e] = off[e];
	}
	const int64_t s = SW ? SW : g->sw;
	for (int64_t i = 0; i < g->oh; i++) {
		const T *xr = src + i * g->sh * d->wp, *dr = dyt + i * g->ow * DC_OB;
		for (int64_t j = 0; j < g->ow; j++) {
			DC_V dv[NV];
			for (int v = 0; v < NV; v++)
				D1_LOAD(dv[v], dr + j * DC_OB + v * VW);
			const T *xb = xr + j * s;
			for (int e = 0; e < NP; e++) {
				const T xv = xb[of[e]];
				for (int v = 0; v < NV; v++)
					a[e][v] += xv * dv[v];
			}
		}
	}
	for (int e = 0; e < NP; e++)
		for (int v = 0; v < NV; v++) {
			DC_V sv;
			D1_LOAD(sv, dwq + e * DC_OB + v * VW);
			sv += a[e][v];
			memcpy(dwq + e * DC_OB + v * VW, &sv, sizeof sv);
		}
}

/* dwq [O / DC_OB][C kH kW][DC_OB] += the weight gradient of one image */
NB_TGT static void SFX(dc_weight)(const geom *g, const dcgeom *d, const T *x, const T *dy,
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

/* DT_PX pixels [j0, ...) of dx row i, the first NC channels of the block
 * (wb: its flipped weights): the taps of every dy channel and of the
 * kernel rows inside dy accumulate in registers, DT_NV vectors per channel
 * (KW a constant where inlined; 0: kW); channel c < cn's pixels to
 * out + c os */
#define DT_VW D1_VW_OF(sizeof(T), NB_V)
#define DT_NV DT_NV_OF(sizeof(T), NB_V)
#define DT_OB DT_OB_OF(sizeof(T), NB_V)
static inline __attribute__((always_inline)) void
SFX(dt_block)(const geom *g, const dtgeom *q, const T *dyp, const T *wb, int64_t i, int64_t j0,
              T *out, int64_t os, int64_t cn, const int KW, const int NC)
{
	const int64_t kw = KW ? KW : g->kw, kk = g->kh * kw;
	const int64_t m0 = q->qt - i > 0 ? q->qt - i : 0;
	const int64_t m1 = q->qt - i + g->oh < g->kh ? q->qt - i + g->oh : g->kh;
	const SFX(d1vec) zero = {0};
	SFX(d1vec) a[DT_OB_MAX][2];
	for (int c = 0; c < NC; c++)
		for (int v = 0; v < DT_NV; v++)
			a[c][v] = zero;
	for (int64_t o = 0; o < g->o; o++)
		for (int64_t m = m0; m < m1; m++) {
			const T *xr = dyp + (o * g->oh + i + m - q->qt) * q->wq + j0;
			const T *wt = wb + (o * kk + m * kw) * DT_OB;
			SFX(d1_taps)(xr, wt, kw, a, NC, DT_NV, DT_OB);
		}
	for (int c = 0; c < NC && c < cn; c++)
		for (int v = 0; v < DT_NV; v++)
			memcpy(out + c * os + v * DT_VW, &a[c][v], sizeof a[c][v]);
}

/* dt_block's taps for rows i (UA: into a[c][0], from xa) and i + 1 (UB:
 * a[c][1], from xb) of one kernel row; UA, UB, NC constants where inlined */
static inline __attribute__((always_inline)) void SFX(dt_taps2)(const T *xa, const T *xb,
                                                                const T *wt, int64_t kw,
                                                                SFX(d1vec) (*a)[2], const int NC,
                                                                const int UA, const int UB)
{
	for (int64_t k = 0; k < kw; k++) {
		SFX(d1vec) x0 = {0}, x1 = {0};
		if (UA)
			D1_LOAD(x0, xa + k);
		if (UB)
			D1_LOAD(x1, xb + k);
		for (int c = 0; c < NC; c++) {
			const T wv = wt[k * DT_OB + c];
			if (UA)
				a[c][0] += wv * x0;
			if (UB)
				a[c][1] += wv * x1;
		}
	}
}

/* dt_block for two rows, i and i + 1, where a block holds one vector
 * (DT_NV 1) of few channels (NC <= 8): a dy row loaded once per tap feeds
 * NC multiply-adds, so two rows make the loads do twice the work.  Each
 * row's sums are dt_block's, in its order, to the bit.  Row i's channel
 * c < cn to out0 + c os, row i + 1's to out1 + c os. */
static inline __attribute__((always_inline)) void
SFX(dt_block2)(const geom *g, const dtgeom *q, const T *dyp, const T *wb, int64_t i, int64_t j0,
               T *out0, T *out1, int64_t os, int64_t cn, const int KW, const int NC)
{
	const int64_t kw = KW ? KW : g->kw, kk = g->kh * kw;
	const int64_t m0 = q->qt - i > 0 ? q->qt - i : 0;
	const int64_t m1 = q->qt - i + g->oh < g->kh ? q->qt - i + g->oh : g->kh;
	const int64_t n0 = q->qt - i - 1 > 0 ? q->qt - i - 1 : 0;
	const int64_t n1 = q->qt - i - 1 + g->oh < g->kh ? q->qt - i - 1 + g->oh : g->kh;
	const SFX(d1vec) zero = {0};
	SFX(d1vec) a[8][2];
	for (int c = 0; c < NC; c++)
		a[c][0] = a[c][1] = zero;
	for (int64_t o = 0; o < g->o; o++)
		for (int64_t m = n0 < m0 ? n0 : m0; m < (m1 > n1 ? m1 : n1); m++) {
			const T *xa = dyp + (o * g->oh + i + m - q->qt) * q->wq + j0,
			        *xb = xa + q->wq;
			const T *wt = wb + (o * kk + m * kw) * DT_OB;
			const bool ra = m >= m0 && m < m1, rb = m >= n0 && m < n1;
			if (ra && rb)
				SFX(dt_taps2)(xa, xb, wt, kw, a, NC, 1, 1);
			else if (ra)
				SFX(dt_taps2)(xa, xb, wt, kw, a, NC, 1, 0);
			else
				SFX(dt_taps2)(xa, xb, wt, kw, a, NC, 0, 1);
		}
	for (int c = 0; c < NC && c < cn; c++) {
		memcpy(out0 + c * os, &a[c][0], sizeof a[c][0]);
		memcpy(out1 + c * os, &a[c][1], sizeof a[c][1]);
	}
}

/* rows [r0, r1) of dx (see dt_of) from dyp, dy as dt_pad padded it, and wf
 * [C / DT_OB][O][kH][kW][DT_OB], the flipped kernel */
NB_TGT static void SFX(dt_rows)(const geom *g, const dtgeom *q, const T *dyp, const T *wf, T *dx,
                                int64_t r0, int64_t r1)
{
	const int64_t hw = g->h * g->w;
	T out[DT_OB_MAX * DT_PX], out1[8 * DT_PX];
	for (int64_t cb = 0; cb < g->c; cb += DT_OB) {
		const T *wb = wf + cb * g->o * g->kh * g->kw;
		const int64_t cn = g->c - cb < DT_OB ? g->c - cb : DT_OB;
		int64_t i = r0;
		if (DT_NV == 1 && cn <= 8) /* two rows at a time, see dt_block2 */
			for (; i + 1 < r1; i += 2)
				for (int64_t j0 = 0; j0 < g->w; j0 += DT_PX) {
					T *dst = dx + cb * hw + i * g->w + j0;
					const int64_t vn = g->w - j0 < DT_PX ? g->w - j0 : DT_PX;
					T *b0 = vn == DT_PX ? dst : out,
					  *b1 = vn == DT_PX ? dst + g->w : out1;
					const int64_t os = vn == DT_PX ? hw : DT_PX;
					DT2_NC_CASES;
					if (vn < DT_PX)
						for (int64_t c = 0; c < cn; c++) {
							SFX(copy_row)
							(dst + c * hw, out + c * DT_PX, vn);
							SFX(copy_row)
							(dst + g->w + c * hw, out1 + c * DT_PX, vn);
						}
				}
		for (; i < r1; i++)
			for (int64_t j0 = 0; j0 < g->w; j0 += DT_PX) {
				/* a whole block straight into dx's planes, the last
				 * one of a row through out */
				T *dst = dx + cb * hw + i * g->w + j0;
				const int64_t vn = g->w - j0 < DT_PX ? g->w - j0 : DT_PX;
				T *blk = vn == DT_PX ? dst : out;
				const int64_t os = vn == DT_PX ? hw : DT_PX;
				DT_NC_CASES(DT_OB)
				if (vn < DT_PX)
					for (int64_t c = 0; c < cn; c++)
						SFX(copy_row)(dst + c * hw, out + c * DT_PX, vn);
			}
	}
}

/* dy's planes with dt_of's zeros left and right, into dyp */
NB_TGT static void SFX(dt_pad)(const geom *g, const dtgeom *q, const T *dy, T *dyp)
{
	SFX(pad_planes)(dy, g->o, g->oh, g->ow, 0, q->ql, g->oh, q->wq, dyp);
}

/* dx[c][p0 .. p0 + 8) for the cn <= DC_OB channels of s [.][DC_OB] (pixel
 * p at s + p DC_OB), eight pixels at a time by 8 x 8 transposes in
 * registers, the rest one by one; dx's planes hw apart */
NB_TGT static void SFX(dp_unpack)(const T *s, int64_t hw, int64_t cn, T *dx)
{
	int64_t p0 = 0;
	for (; p0 + D1_VW <= hw; p0 += D1_VW)
		for (int64_t c0 = 0; c0 < cn; c0 += D1_VW) {
			SFX(d8vec) r[D1_VW], t[D1_VW], u[D1_VW], o[D1_VW];
			for (int i = 0; i < D1_VW; i++)
				D1_LOAD(r[i], s + (p0 + i) * DC_OB + c0);
			for (int i = 0; i < D1_VW; i += 2) {
				t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5,
				                               13);
				t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6,
				                                   14, 7, 15);
			}
			for (int i = 0; i < D1_VW; i += 4) {
				u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12,
				                               13);
				u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6,
				                                   7, 14, 15);
				u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9,
				                                   4, 5, 12, 13);
				u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11,
				                                   6, 7, 14, 15);
			}
			for (int i = 0; i < 4; i++) {
				o[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10,
				                               11);
				o[i + 4] = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12,
				                                   13, 14, 15);
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
NB_TGT static void SFX(dp_backward)(const geom *g, const dpgeom *q, const T *dy, const T *wq,
                                    const int64_t *off, const int64_t *ph0, T *dx, T *dyp, T *scr)
{
	SFX(pad_planes)(dy, g->o, g->oh, g->ow, q->pt, q->pl, q->hp, q->wp, dyp);
	const int64_t nt = g->o * g->kh * g->kw, hw = g->h * g->w, ts = g->sw * DC_OB;
	for (int64_t cb = 0; cb < g->c; cb += DC_OB) {
		for (int64_t ph = 0; ph < g->sh; ph++)
			for (int64_t pw = 0; pw < g->sw; pw++) {
				const int64_t f = ph * g->sw + pw, e0 = ph0[f],
				              ne = ph0[f + 1] - e0;
				const int64_t na = (g->h - ph + g->sh - 1) / g->sh;
				const int64_t nb = (g->w - pw + g->sw - 1) / g->sw;
				const int64_t nblk = (nb + DC_NP(T) - 1) / DC_NP(T);
				const T *wb = wq + (cb / DC_OB * nt + e0) * DC_OB;
				for (int64_t a = 0; a < na; a++)
					for (int64_t b = 0; b < nblk; b++) {
						const int64_t b0 = nb * b / nblk,
						              np = nb * (b + 1) / nblk - b0;
						T *dst = scr + ((ph + a * g->sh) * g->w + pw +
						                b0 * g->sw) *
						                   DC_OB;
						DC_CASES(SFX(dc_fblock), dyp + a * q->wp + b0, wb,
						         off + e0, ne, 1, dst, ts, 1)
					}
			}
		SFX(dp_unpack)(scr, hw, g->c - cb < DC_OB ? g->c - cb : DC_OB, dx + cb * hw);
	}
}

/* ---- the weight gradient by rows (CONV_PATH_DIRECT_ROWS) --------------------- */

/* acc [NO][kW][D1_V] (channel o's at acc + o as) += the gradient of one
 * kernel row's kW taps (at most DRW_KW_MAX) for NO channels over one
 * image: xc the padded plane of one input channel at that kernel row (rows
 * q->wp apart, long enough for the last vector's taps), dyt the first channel's
 * vectors in the packed dy (drw_pack: vector j of row i at
 * dyt + (i nv + j) q->ob D1_V, the next channel's D1_V further; KW a
 * constant where inlined, 0: kw) */
static inline __attribute__((always_inline)) void SFX(drw_block)(const geom *g, const drgeom *q,
                                                                 const T *xc, const T *dyt, T *acc,
                                                                 int64_t as, int64_t kw,
                                                                 const int KW, const int NO)
{
	enum { V = D1_V };
	const int64_t nk = KW ? KW : kw, nv = (g->ow + V - 1) / V, vs = q->ob * V;
	SFX(d1vec) a[8][DRW_KW_MAX];
	for (int o = 0; o < NO; o++)
		for (int64_t k = 0; k < nk; k++)
			D1_LOAD(a[o][k], acc + o * as + k * V);
	const T *dr = dyt;
	for (int64_t i = 0; i < g->oh; i++) {
		const T *xr = xc + i * q->wp;
		for (int64_t j = 0; j < nv; j++, xr += V, dr += vs) {
			SFX(d1vec) xv[DRW_KW_MAX];
			for (int64_t k = 0; k < nk; k++)
				D1_LOAD(xv[k], xr + k);
			for (int o = 0; o < NO; o++) {
				SFX(d1vec) dv;
				D1_LOAD(dv, dr + o * V);
				/* one load into a register, not one memory operand per
				 * tap (GCC folds it into each FMA, which made the loop
				 * load-bound: 27 loads to 24 FMAs) */
#if NB_V == 2
				NB_IN_REGISTER(dv);
#elif NB_V == 1
				TSFX(DRW_PIN)(dv); /* floats only: 8 doubles take 2 ymm */
#endif
				for (int64_t k = 0; k < nk; k++)
					a[o][k] += dv * xv[k];
			}
		}
	}
	for (int o = 0; o < NO; o++)
		for (int64_t k = 0; k < nk; k++)
			memcpy(acc + o * as + k * V, &a[o][k], sizeof a[o][k]);
}

/* dyt [O / ob][oH][nv][ob][D1_V] = one image's dy [O][oH][oW], each row's
 * last vector and the channels past O zero-filled */
NB_TGT static void SFX(drw_pack)(const geom *g, const drgeom *q, const T *dy, T *dyt)
{
	enum { V = D1_V };
	const int64_t nv = (g->ow + V - 1) / V, ps = g->oh * g->ow;
	for (int64_t o0 = 0; o0 < g->o; o0 += q->ob)
		for (int64_t i = 0; i < g->oh; i++)
			for (int64_t j = 0; j < nv; j++) {
				T *v = dyt + ((o0 / q->ob * g->oh + i) * nv + j) * q->ob * V;
				const int64_t nj = g->ow - j * V < V ? g->ow - j * V : V;
				for (int64_t o = 0; o < q->ob; o++) {
					if (o0 + o < g->o)
						memcpy(v + o * V,
						       dy + (o0 + o) * ps + i * g->ow + j * V,
						       (size_t)nj * sizeof(T));
					if (o0 + o >= g->o || nj < V)
						memset(v + o * V + (o0 + o < g->o ? nj : 0), 0,
						       (size_t)(o0 + o < g->o ? V - nj : V) *
						           sizeof(T));
				}
			}
}

/* drw_block for any kernel width: the block's channels (b its index) one
 * at a time, DRW_KW_MAX taps at a time.  A function of its own: inlined
 * into drw_image, its accumulators indexed at run time made GCC spill
 * those of the 3- and 5-wide blocks to the stack in their inner loops. */
NB_TGT static __attribute__((noinline)) void
SFX(drw_any)(const geom *g, const drgeom *q, const T *xc, const T *dv, T *acc, int64_t b)
{
	enum { V = D1_V };
	const int64_t rs = g->kw * V;
	for (int64_t o = 0; o < q->ob && b * q->ob + o < g->o; o++)
		for (int64_t k0 = 0; k0 < g->kw; k0 += DRW_KW_MAX) {
			const int64_t nk = g->kw - k0 < DRW_KW_MAX ? g->kw - k0 : DRW_KW_MAX;
			SFX(drw_block)
			(g, q, xc + k0, dv + o * V, acc + o * rs + k0 * V, rs, nk, 0, 1);
		}
}

/* buf [O / ob][C][kH][ob][kW][D1_V] += the lanes' partial sums of one
 * image's weight gradient: xp its padded planes (drw_of's), dyt its packed
 * gradient.  Blocks of q->ob channels for kernels 3 and 5 wide; other
 * widths one channel at a time, DRW_KW_MAX taps at a time. */
NB_TGT static void SFX(drw_image)(const geom *g, const drgeom *q, const T *xp, const T *dyt, T *buf)
{
	enum { V = D1_V };
	const int64_t nv = (g->ow + V - 1) / V, rs = g->kw * V, bs = g->oh * nv * q->ob * V;
	for (int64_t b = 0; b * q->ob < g->o; b++)
		for (int64_t c = 0; c < g->c; c++)
			for (int64_t m = 0; m < g->kh; m++) {
				const T *xc = xp + (c * q->hp + m) * q->wp, *dv = dyt + b * bs;
				T *acc = buf + ((b * g->c + c) * g->kh + m) * q->ob * rs;
				if (g->kw == 3) {
					SFX(drw_block)
					(g, q, xc, dv, acc, rs, 3, 3, DRW_OB_OF(NB_V, 3));
				} else if (g->kw == 5) {
					SFX(drw_block)
					(g, q, xc, dv, acc, rs, 5, 5, DRW_OB_OF(NB_V, 5));
				} else {
					SFX(drw_any)(g, q, xc, dv, acc, b);
				}
			}
}

/* y [O][ps] += b at the pixels [lo, hi) of each plane (none when b is
 * NULL) */
NB_TGT static void SFX(add_bias)(T *y, const T *b, int64_t o, int64_t ps, int64_t lo, int64_t hi)
{
	for (int64_t c = 0; b && c < o; c++)
		for (int64_t i = lo; i < hi; i++)
			y[c * ps + i] += b[c];
}

/* ---- over the batch ----------------------------------------------------------- */

/* the offset of each tap (c, m, k) in the padded image */
NB_TGT static void SFX(dc_offsets)(const geom *g, const dcgeom *d, int64_t *off)
{
	for (int64_t c = 0; c < g->c; c++)
		for (int64_t m = 0; m < g->kh; m++)
			for (int64_t k = 0; k < g->kw; k++)
				off[(c * g->kh + m) * g->kw + k] =
				    (c * d->hp + m * g->dh) * d->wp + k * g->dw;
}

NB_TGT void SFX(nb__direct_forward)(const geom *g, const nb__conv_plan *p, const T *x, const T *w,
                                    const T *b, T *y, void *wsp)
{
	NB_ISA_MARK(NB_V);
#if IL_AVX512
	geom r;
	if (sizeof(T) == sizeof(float) && use_il(g, p, &r)) { /* images in the lanes */
		il_forward(g, &r, p, (const float *)x, (const float *)w, (const float *)b,
		           (float *)y, wsp);
		return;
	}
#endif
	const dcgeom d = dc_of(g);
	char *ws = wsp;
	int64_t *off = (int64_t *)ws;
	T *wq =
	    (T *)(ws + nb__align_up((size_t)d.nt * sizeof(int64_t))); /* [O / DC_OB][nt][DC_OB] */
	SFX(dc_offsets)(g, &d, off);
	for (int64_t o = 0; o < d.ob; o++)
		for (int64_t e = 0; e < d.nt; e++)
			wq[(o / DC_OB * d.nt + e) * DC_OB + o % DC_OB] =
			    o < g->o ? w[o * d.nt + e] : 0;
	const int64_t xs = g->c * g->h * g->w, ys = g->o * g->oh * g->ow;
	if (!p->row_threads) {
		DC_FOR_IMAGES(g, p, ws, n, sl,
		              SFX(dc_forward_rows)(g, &d, SFX(dc_src)(g, &d, x + n * xs, sl), wq,
		                                   off, b, y + n * ys, 0, g->oh));
		return;
	}
	/* fewer images than threads (one, for inference): the threads share
	 * each image's rows, the padded copy in the first slice */
	T *xp = (T *)(ws + dc_shared_bytes(g, p));
	const int tr = p->row_threads;
	for (int64_t n = 0; n < g->n; n++) {
		const T *src = SFX(dc_src)(g, &d, x + n * xs, xp);
#pragma omp parallel num_threads(tr)
		{
			/* the team's own size: fewer than tr inside another
			 * parallel region (nested regions off) */
			const int k = omp_get_thread_num(), nt = omp_get_num_threads();
			SFX(dc_forward_rows)
			(g, &d, src, wq, off, b, y + n * ys, g->oh * k / nt, g->oh * (k + 1) / nt);
		}
	}
}

/* the weight gradient over the batch: each thread its share of the images
 * into a private packed dW, unpacked and added in thread order */
NB_TGT void SFX(nb__direct_weight_grad)(const geom *g, const nb__conv_plan *p, const T *dy,
                                        const T *x, T *dw, void *wsp)
{
	NB_ISA_MARK(NB_V);
#if IL_AVX512
	geom r;
	if (sizeof(T) == sizeof(float) && use_il(g, p, &r)) { /* images in the lanes */
		il_weight_grad(g, p, (const float *)dy, (const float *)x, (float *)dw, wsp);
		return;
	}
#endif
	const dcgeom d = dc_of(g);
	char *ws = wsp;
	int64_t *off = (int64_t *)ws;
	SFX(dc_offsets)(g, &d, off);
	char *slices = ws + dc_shared_bytes(g, p);
	const int th = p->threads;
	const size_t sb = dc_slice(g, p);
	const size_t xpb = d.pad ? nb__align_up((size_t)(g->c * d.hp * d.wp) * sizeof(T)) : 0;
	const size_t dytb = nb__align_up((size_t)(g->oh * g->ow * DC_OB) * sizeof(T));
	const size_t part_off = xpb + dytb + nb__align_up((size_t)(d.ob * d.nt) * sizeof(T));
#pragma omp parallel num_threads(th) if (th > 1)
	{
		/* the team's own size (fewer than th inside another parallel
		 * region) splits the images */
		const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
		char *sl = slices + (size_t)tid * sb;
		T *xp = (T *)sl, *dyt = (T *)(sl + xpb), *dwq = (T *)(sl + xpb + dytb);
		memset(dwq, 0, (size_t)(d.ob * d.nt) * sizeof(T));
		for (int64_t n = g->n * tid / nt; n < g->n * (tid + 1) / nt; n++)
			SFX(dc_weight)
		(g, &d, x + n * g->c * g->h * g->w, dy + n * g->o * g->oh * g->ow, off, dwq, xp,
		 dyt);
		T *dst = nt > 1 ? (T *)(sl + part_off) : dw;
		for (int64_t o = 0; o < g->o; o++)
			for (int64_t e = 0; e < d.nt; e++)
				dst[o * d.nt + e] = dwq[(o / DC_OB * d.nt + e) * DC_OB + o % DC_OB];
		if (nt > 1) {
#pragma omp barrier /* every private sum is complete */
			nb__sum_parts(dw, g->o * d.nt, slices + part_off, sb, nt);
		}
	}
}

/* the input gradient at stride 1 (see dt_of), images on batch threads */
NB_TGT void SFX(nb__direct_input_grad_transposed)(const geom *g, const nb__conv_plan *p,
                                                  const T *dy, const T *w, T *dx, void *ws)
{
	NB_ISA_MARK(NB_V);
#if IL_AVX512
	geom r;
	if (sizeof(T) == sizeof(float) && use_il(g, p, &r)) { /* images in the lanes */
		il_input_grad(g, p, (const float *)dy, (const float *)w, (float *)dx, ws);
		return;
	}
#endif
	const dtgeom q = dt_of(g, sizeof(T), NB_V);
	const int64_t kk = g->kh * g->kw;
	T *wf = ws; /* [C / DT_OB][O][kH][kW][DT_OB], flipped */
	for (int64_t c = 0; c < q.cb; c++)
		for (int64_t o = 0; o < g->o; o++)
			for (int64_t e = 0; e < kk; e++)
				wf[((c / DT_OB * g->o + o) * kk + e) * DT_OB + c % DT_OB] =
				    c < g->c ? w[(o * g->c + c) * kk + kk - 1 - e] : 0;
	DC_FOR_IMAGES(g, p, ws, n, sl, {
		SFX(dt_pad)(g, &q, dy + n * g->o * g->oh * g->ow, sl);
		SFX(dt_rows)(g, &q, sl, wf, dx + n * g->c * g->h * g->w, 0, g->h);
	});
}

/* the forward at stride 1 (see dr_of): the input gradient's kernel on x
 * with the kernel unflipped, then the bias; images on batch threads, or
 * each image's rows on row threads */
NB_TGT void SFX(nb__direct_forward_rows)(const geom *g, const nb__conv_plan *p, const T *x,
                                         const T *w, const T *b, T *y, void *wsp)
{
	NB_ISA_MARK(NB_V);
	const geom r = dr_of(g);
	const dtgeom q = dt_of(&r, sizeof(T), NB_V);
	const int64_t kk = g->kh * g->kw, ps = g->oh * g->ow;
	T *wr = wsp; /* [O / DT_OB][C][kH][kW][DT_OB] */
	for (int64_t o = 0; o < q.cb; o++)
		for (int64_t e = 0; e < g->c * kk; e++)
			wr[(o / DT_OB * g->c * kk + e) * DT_OB + o % DT_OB] =
			    o < g->o ? w[o * g->c * kk + e] : 0;
	const int64_t xs = g->c * g->h * g->w, ys = g->o * ps;
	if (!p->row_threads) {
		DC_FOR_IMAGES(g, p, wsp, n, sl, {
			SFX(dt_pad)(&r, &q, x + n * xs, sl);
			SFX(dt_rows)(&r, &q, sl, wr, y + n * ys, 0, g->oh);
			SFX(add_bias)(y + n * ys, b, g->o, ps, 0, ps);
		});
		return;
	}
	T *xp = (T *)((char *)wsp + dc_shared_bytes(g, p));
	const int tr = p->row_threads;
	for (int64_t n = 0; n < g->n; n++) {
		SFX(dt_pad)(&r, &q, x + n * xs, xp);
#pragma omp parallel num_threads(tr)
		{
			const int k = omp_get_thread_num(), nt = omp_get_num_threads();
			const int64_t r0 = g->oh * k / nt, r1 = g->oh * (k + 1) / nt;
			SFX(dt_rows)(&r, &q, xp, wr, y + n * ys, r0, r1);
			SFX(add_bias)(y + n * ys, b, g->o, ps, r0 * g->ow, r1 * g->ow);
		}
	}
}

/* the weight gradient at stride 1 by rows (see drw_image): each batch
 * thread sums its share of the images' partial sums into its own buffer;
 * then each weight is the sum of the buffers' vectors in thread order,
 * its lanes added in order */
NB_TGT void SFX(nb__direct_weight_grad_rows)(const geom *g, const nb__conv_plan *p, const T *dy,
                                             const T *x, T *dw, void *wsp)
{
	NB_ISA_MARK(NB_V);
	enum { V = D1_V };
	const drgeom q = drw_of(g, NB_V, sizeof(T));
	const int64_t rs = g->kw * V, ne = g->o * g->c * g->kh * g->kw;
	char *slices = (char *)wsp + dc_shared_bytes(g, p);
	const size_t sb = dc_slice(g, p);
	const int th = p->threads;
#pragma omp parallel num_threads(th) if (th > 1)
	{
		/* the team's own size (fewer than th inside another parallel
		 * region) splits the images and sums the buffers */
		const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
		char *sl = slices + (size_t)tid * sb;
		T *xp = (T *)sl, *dyt = (T *)(sl + q.xp_bytes), *buf = (T *)(sl + q.buf_at);
		memset(buf, 0, (size_t)q.buf_len * sizeof(T));
		for (int64_t n = g->n * tid / nt; n < g->n * (tid + 1) / nt; n++) {
			SFX(pad_planes)
			(x + n * g->c * g->h * g->w, g->c, g->h, g->w, g->pt, g->pl, q.hp, q.wp,
			 xp);
			SFX(drw_pack)(g, &q, dy + n * g->o * g->oh * g->ow, dyt);
			SFX(drw_image)(g, &q, xp, dyt, buf);
		}
#pragma omp barrier /* every buffer is complete */
#pragma omp for schedule(static)
		for (int64_t e = 0; e < ne; e++) { /* e = ((o C + c) kH + m) kW + k */
			const int64_t o = e / (ne / g->o), r = e % (ne / g->o);
			const int64_t cm = r / g->kw, k = r % g->kw;
			const int64_t at =
			    ((o / q.ob * g->c * g->kh + cm) * q.ob + o % q.ob) * rs + k * V;
			SFX(d1vec) s;
			D1_LOAD(s, (const T *)(slices + q.buf_at) + at);
			for (int t = 1; t < nt; t++) {
				SFX(d1vec) u;
				D1_LOAD(u, (const T *)(slices + (size_t)t * sb + q.buf_at) + at);
				s += u;
			}
			T sum = 0;
			for (int l = 0; l < V; l++)
				sum += s[l];
			dw[e] = sum;
		}
	}
}

/* the phases' taps, their offsets in the padded dy and their packed
 * weights (see dpgeom) */
NB_TGT static void SFX(dp_tables)(const geom *g, const dpgeom *q, const T *w, int64_t *off,
                                  int64_t *ph0, T *wq)
{
	const int64_t nt = g->o * g->kh * g->kw;
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
						off[n] =
						    (o * q->hp + e + q->pt) * q->wp + f + q->pl;
						const T *src =
						    w + (o * g->c * g->kh + m) * g->kw + k;
						T *dst = wq + n * DC_OB;
						for (int64_t c = 0; c < q->cb; c++)
							dst[c / DC_OB * nt * DC_OB + c % DC_OB] =
							    c < g->c ? src[c * g->kh * g->kw] : 0;
					}
				}
			}
		}
	ph0[g->sh * g->sw] = n;
}

/* the input gradient in phases (see dpgeom), images on batch threads */
NB_TGT void SFX(nb__direct_input_grad_phases)(const geom *g, const nb__conv_plan *p, const T *dy,
                                              const T *w, T *dx, void *wsp)
{
	NB_ISA_MARK(NB_V);
	const dpgeom q = dp_of(g);
	const int64_t nt = g->o * g->kh * g->kw, nph = g->sh * g->sw;
	char *ws = wsp;
	int64_t *off = (int64_t *)ws, *ph0 = off + nt;
	T *wq = (T *)(ws + nb__align_up((size_t)(nt + nph + 1) * sizeof(int64_t)));
	SFX(dp_tables)(g, &q, w, off, ph0, wq);
	const size_t dyb = dp_dy_bytes(g, &q, sizeof(T));
	DC_FOR_IMAGES(g, p, ws, i, sl,
	              SFX(dp_backward)(g, &q, dy + i * g->o * g->oh * g->ow, wq, off, ph0,
	                               dx + i * g->c * g->h * g->w, sl, (T *)((char *)sl + dyb)));
}

#undef DC_V
#undef DT_VW
#undef DT_NV
#undef DT_OB
