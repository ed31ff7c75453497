/*
 * Helpers of the one-channel and direct kernels for one element type
 * (T, SFX as in their _impl.h files): the padded copies they read and the
 * register block of D1_OB channels by 2 D1_VW pixels.  Included by
 * onechan_impl.h and direct_impl.h.
 */

/* n planes [h, w] of src into dst [n][hp][wp], at row top and column left,
 * zeros around: the padded copies the direct kernels read */
NB_TGT static void SFX(pad_planes)(const T *src, int64_t n, int64_t h, int64_t w, int64_t top,
                                   int64_t left, int64_t hp, int64_t wp, T *restrict dst)
{
	memset(dst, 0, (size_t)(n * hp * wp) * sizeof(T));
	for (int64_t c = 0; c < n; c++)
		for (int64_t r = 0; r < h; r++)
			memcpy(dst + (c * hp + top + r) * wp + left, src + (c * h + r) * w,
			       (size_t)w * sizeof(T));
}

/* D1_VW values in one vector (GCC vector extension: the compiler maps it to
 * the widest registers of the ISA variant, and to several where needed) */
typedef T SFX(d1vec) __attribute__((vector_size(D1_VW * sizeof(T))));

/* a0 / a1 [NC] += the kw taps of one kernel row for the first NC <= D1_OB
 * channels: the input row xr at the block's first pixel, the taps' weights
 * wt [kw][D1_OB] */
static inline __attribute__((always_inline)) void
SFX(d1_taps)(const T *xr, const T *wt, int64_t kw, SFX(d1vec) * a0, SFX(d1vec) * a1, const int NC)
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
