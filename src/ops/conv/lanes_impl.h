/*
 * Helpers of the one-channel and direct kernels for one element type
 * (T, SFX as in their _impl.h files): the padded copies they read and the
 * register block of a few channels by one or two vectors of pixels, in
 * the level's lanes.  Included by onechan_impl.h and direct_impl.h.
 */

/* d[0, n) = s[0, n) in moves of fixed sizes, which the compiler inlines as
 * the level's vector moves, rather than a call to memcpy per row (ResNet-20's
 * rows hold 32 values or fewer).  (The empty asm hides the loop's count
 * from GCC, which would turn the loop back into a call.) */
static inline __attribute__((always_inline)) void SFX(copy_row)(T *restrict d, const T *restrict s,
                                                                int64_t n)
{
	int64_t j = 0;
	for (; j + 16 <= n; j += 16) {
		memcpy(d + j, s + j, 16 * sizeof(T));
		__asm__("" : "+r"(j));
	}
	for (int k = 8; k >= 1; k /= 2)
		if (j + k <= n) {
			memcpy(d + j, s + j, (size_t)k * sizeof(T));
			j += k;
		}
}

/* n planes [h, w] of src into dst [n][hp][wp], at row top and column left
 * (top + h <= hp, left + w <= wp), zeros around: the padded copies the
 * direct kernels read.  Each value of dst is written once (zeroing the
 * whole buffer first cost a second pass over it). */
NB_TGT static void SFX(pad_planes)(const T *src, int64_t n, int64_t h, int64_t w, int64_t top,
                                   int64_t left, int64_t hp, int64_t wp, T *restrict dst)
{
	const int64_t right = wp - left - w;
	for (int64_t c = 0; c < n; c++) {
		T *pl = dst + c * hp * wp;
		memset(pl, 0, (size_t)(top * wp) * sizeof(T));
		for (int64_t r = 0; r < h; r++) {
			T *d = pl + (top + r) * wp;
			memset(d, 0, (size_t)left * sizeof(T));
			SFX(copy_row)(d + left, src + (c * h + r) * w, w);
			memset(d + left + w, 0, (size_t)right * sizeof(T));
		}
		memset(pl + (top + h) * wp, 0, (size_t)((hp - top - h) * wp) * sizeof(T));
	}
}

/* the level's lanes, D1_VW_OF (ops/conv/lanes.h), in one vector (GCC
 * vector extension: the compiler maps it to the widest registers of the
 * ISA variant, and to several where needed) */
#define D1_V D1_VW_OF(sizeof(T), NB_V)
typedef T SFX(d1vec) __attribute__((vector_size(D1_V * sizeof(T))));
/* D1_VW values in one vector, at every level */
typedef T SFX(d8vec) __attribute__((vector_size(D1_VW * sizeof(T))));

/* a[c][v] += the kw taps of one kernel row for the first NC channels and
 * NV vectors of pixels: the input row xr at the block's first pixel, the
 * taps' weights wt [kw][OB] (NC <= OB; NC, NV, OB constants where
 * inlined) */
static inline __attribute__((always_inline)) void SFX(d1_taps)(const T *xr, const T *wt, int64_t kw,
                                                               SFX(d1vec) (*a)[2], const int NC,
                                                               const int NV, const int OB)
{
	for (int64_t k = 0; k < kw; k++) {
		SFX(d1vec) x[2];
		for (int v = 0; v < NV; v++)
			D1_LOAD(x[v], xr + k + v * D1_V);
		for (int c = 0; c < NC; c++) {
			const T wv = wt[k * OB + c];
			for (int v = 0; v < NV; v++)
				a[c][v] += wv * x[v];
		}
	}
}
