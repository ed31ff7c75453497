/*
 * 16 x 16 floats transposed in AVX-512 registers, rows moved into
 * vectors of one column by them, and lane masks (not public API): shared by the kernels that move
 * NCHW planes into vectors of 16 channels or 16 images and back (ops/conv/winograd_avx512.h,
 * ops/conv/images_avx512.h).  Include only where __x86_64__ and GCC or
 * clang; the functions carry their own target attribute.
 */
#ifndef NB_TRANSPOSE_AVX512_H
#define NB_TRANSPOSE_AVX512_H

#include <immintrin.h>
#include <stdint.h>

/* the mask of the first n of 16 lanes, n clipped to [0, 16] */
static inline __mmask16 nb__lanes16(int64_t n)
{
	return (__mmask16)(n <= 0 ? 0u : n >= 16 ? 0xffffu : (1u << n) - 1u);
}

/* r[i] lane j <-> r[j] lane i: pairs interleaved, then pairs of pairs,
 * then 128-bit quarters twice (64 shuffles) */
static inline __attribute__((always_inline, target("avx512f"))) void
nb__transpose16_ps(__m512 r[16])
{
	__m512 t[16];
#pragma GCC unroll 8
	for (int i = 0; i < 8; i++) {
		t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
	}
#pragma GCC unroll 4
	for (int i = 0; i < 4; i++) {
		r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
		r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
		r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
		r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
	}
	/* r[c + 4 g] now holds column c (and c + 4, c + 8, c + 12 in its
	 * quarters) of rows 4 g .. 4 g + 3 */
#pragma GCC unroll 4
	for (int c = 0; c < 4; c++) {
		t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
		t[c + 4] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
		t[c + 8] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
		t[c + 12] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
	}
#pragma GCC unroll 4
	for (int c = 0; c < 4; c++) {
		r[c] = _mm512_shuffle_f32x4(t[c], t[c + 8], 0x88);
		r[c + 8] = _mm512_shuffle_f32x4(t[c], t[c + 8], 0xdd);
		r[c + 4] = _mm512_shuffle_f32x4(t[c + 4], t[c + 12], 0x88);
		r[c + 12] = _mm512_shuffle_f32x4(t[c + 4], t[c + 12], 0xdd);
	}
}

/* dst[u][16] = src[l stride + u] for the columns u < w and the lanes l <
 * nl (zeros in the lanes past nl): nl rows of w floats, stride apart, into
 * vectors of one column each, 16 columns a transpose (masked loads at the
 * rows' ends) */
static inline __attribute__((target("avx512f"))) void
nb__rows_to_lanes(const float *src, int64_t stride, int64_t nl, int64_t w, float *dst)
{
	for (int64_t c0 = 0; c0 < w; c0 += 16) {
		const int64_t k = w - c0 < 16 ? w - c0 : 16;
		const __mmask16 cols = nb__lanes16(k);
		__m512 r[16];
#pragma GCC unroll 16
		for (int l = 0; l < 16; l++)
			r[l] = l < nl ? _mm512_maskz_loadu_ps(cols, src + l * stride + c0)
			              : _mm512_setzero_ps();
		nb__transpose16_ps(r);
#pragma GCC unroll 16
		for (int u = 0; u < 16; u++)
			if (u < k)
				_mm512_storeu_ps(dst + (c0 + u) * 16, r[u]);
	}
}

#endif
