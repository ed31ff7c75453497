/*
 * Winograd F(2x2, 3x3) products of floats with the channels in the vector
 * lanes, at AVX-512 (included by winograd.c; docs/winograd.md, "Channel
 * lanes").  The forward and the input gradient (nb__wino_forward) take it
 * for floats at the avx512 level, where the plan's micro-kernel is nabla's
 * AVX-512 16 x 16 (wplan cl); the weight gradient its transforms.
 *
 * The transforms of winograd_impl.h run along a row of tiles, so a plane
 * 8 pixels wide (4 tiles) fills a quarter of a vector, and the output
 * transform reads M one channel at a time: at ResNet-20's 64 channels on
 * 8 x 8 planes they took twice the time of the products.  Here every
 * transform works on 16 channels at once, whatever the plane's width:
 *  - input: 16 channel planes' rows are transposed in registers into
 *    [column][16 channels], B^T goes along the row (a ring of four rows,
 *    as winograd_impl.h keeps) and down the tile's column, and V is
 *    stored in blocks of 16 tiles by 16 channels (cl_kernel);
 *  - products: M_xi [tile][16 output channels] = sum_c V_xi[tile][c]
 *    U_xi[c][16] for 16 tiles, one FMA chain per element in order of c,
 *    as nabla's 16 x 16 kernel sums the packed panels (same bits);
 *  - output: A^T M A for 16 output channels of a tile, into a row of
 *    [pixel][16 channels], transposed in registers into the 16 planes.
 * Every value is computed by the same operations in the same order as in
 * winograd_impl.h, so the results are the same bits
 * (test_winograd_channel_lanes_bits).
 *
 * Slice of a thread (wplan): V [16][tiles / 16][clc / 16][16][16] (tiles
 * rounded up to 16, slabs of cvs), M [16][16 tiles][16], then rows: a ring of four input rows
 * after B^T along the row ([tw][4][16] each), one interleaved input row
 * ([2 tw + 2][16]) and two output rows ([2 tw][16] each).
 */
#if NB_GEMM_AVX512

#include "ops/transpose_avx512.h"

#define CL_FN static __attribute__((target("avx512f")))

/* Row `row` of the channels [c0, c0 + nc) of one image (planes: plane c0,
 * hw apart), interleaved: dst[u][16] = x[c0 + l][row][u - pl] for u in
 * [0, width), 0 outside the plane and in lanes l >= nc. */
CL_FN void cl_interleave(const float *planes, int64_t hw, int64_t hi, int64_t wi, int64_t nc,
                         int64_t row, int64_t pl, int64_t width, float *restrict dst)
{
	int64_t n = wi < width - pl ? wi : width - pl; /* columns inside the plane */
	if (row < 0 || row >= hi || n < 0)
		n = 0;
	const int64_t lo = pl < width ? pl : width;
	memset(dst, 0, (size_t)(lo * 16) * sizeof(float));
	memset(dst + (lo + n) * 16, 0, (size_t)((width - lo - n) * 16) * sizeof(float));
	if (n > 0)
		nb__rows_to_lanes(planes + row * wi, hw, nc, n, dst + pl * 16);
}

/* B^T along an interleaved input row ([2 tw + 2][16]) for every tile
 * column: h[j][b][16] = (B^T d)[b], d = the row's columns 2j .. 2j + 3 */
CL_FN void cl_row_bt(const float *restrict src, int64_t tw, float *restrict h)
{
	for (int64_t j = 0; j < tw; j++) {
		const float *s = src + 2 * j * 16;
		const __m512 d0 = _mm512_loadu_ps(s), d1 = _mm512_loadu_ps(s + 16);
		const __m512 d2 = _mm512_loadu_ps(s + 32), d3 = _mm512_loadu_ps(s + 48);
		float *o = h + 4 * j * 16;
		_mm512_storeu_ps(o, _mm512_sub_ps(d0, d2));
		_mm512_storeu_ps(o + 16, _mm512_add_ps(d1, d2));
		_mm512_storeu_ps(o + 32, _mm512_sub_ps(d2, d1));
		_mm512_storeu_ps(o + 48, _mm512_sub_ps(d1, d3));
	}
}

/* The four input rows of tile row q for the channels [c0, c0 + nc) in a
 * ring of four slots of `slot` floats (rows 2 ti + 2 and 2 ti + 3 serve
 * tile rows ti and ti + 1; tag records the (image, row) each slot holds,
 * -1 at first), into h: each row interleaved (cl_interleave), and where
 * raw is set interleaved into raw, then B^T along the row (cl_row_bt) */
CL_FN void cl_ring(const wplan *p, const float *in, int64_t c0, int64_t nc, int64_t q, int64_t *tag,
                   float *ring, int64_t slot, float *raw, const float **h)
{
	const int64_t img = q / p->th, ti = q % p->th, hw = p->hi * p->wi, width = 2 * p->tw + 2;
	for (int r = 0; r < 4; r++) {
		const int64_t row = 2 * ti + r - p->pt, s = (row + 4) % 4;
		const int64_t id = img * (p->hi + 8) + row + 4;
		float *hs = ring + s * slot;
		if (tag[s] != id) {
			const float *planes = in + (img * p->ci + c0) * hw;
			if (raw) {
				cl_interleave(planes, hw, p->hi, p->wi, nc, row, p->pl, width, raw);
				cl_row_bt(raw, p->tw, hs);
			} else
				cl_interleave(planes, hw, p->hi, p->wi, nc, row, p->pl, width, hs);
			tag[s] = id;
		}
		h[r] = hs;
	}
}

/* V of the chunk's tile rows [r0, r1): for each block of 16 input
 * channels, the four input rows of a tile row after B^T along the row
 * (cl_ring), then B^T down each tile's columns into V's blocks. */
CL_FN void cl_input(const wplan *p, const float *in, float *v, int64_t r0, int64_t r1, float *rows)
{
	const int64_t tw = p->tw, cvs = p->cvs;
	float *raw = rows + 4 * tw * 64;
	for (int64_t c0 = 0; c0 < p->ci; c0 += 16) {
		const int64_t nc = p->ci - c0 < 16 ? p->ci - c0 : 16;
		int64_t tag[4] = {-1, -1, -1, -1};
		for (int64_t q = r0; q < r1; q++) {
			const float *h[4];
			cl_ring(p, in, c0, nc, q, tag, rows, tw * 64, raw, h);
			for (int64_t j = 0; j < tw; j++) {
				const int64_t t = (q - r0) * tw + j;
				float *o = v + t / 16 * 16 * p->clc + c0 * 16 + t % 16 * 16;
#pragma GCC unroll 4
				for (int b = 0; b < 4; b++) {
					const int64_t at = (4 * j + b) * 16;
					const __m512 a0 = _mm512_loadu_ps(h[0] + at),
					             a1 = _mm512_loadu_ps(h[1] + at);
					const __m512 a2 = _mm512_loadu_ps(h[2] + at),
					             a3 = _mm512_loadu_ps(h[3] + at);
					_mm512_storeu_ps(o + b * cvs, _mm512_sub_ps(a0, a2));
					_mm512_storeu_ps(o + (4 + b) * cvs, _mm512_add_ps(a1, a2));
					_mm512_storeu_ps(o + (8 + b) * cvs, _mm512_sub_ps(a2, a1));
					_mm512_storeu_ps(o + (12 + b) * cvs, _mm512_sub_ps(a1, a3));
				}
			}
		}
	}
}

/* c[j][16] = sum_{q < k} a[q][16] b_j[q] for the 16 tiles j of a panel,
 * b_j[q] = b[(q / 16) 256 + 16 j + q % 16]: one block of M_xi (16 output
 * channels), each element one FMA chain in order of q from zero, as
 * nabla's 16 x 16 kernel sums it.  The panel's blocks of 16 tiles by 16
 * channels put every broadcast at a constant offset of one pointer. */
CL_FN void cl_kernel(const float *restrict a, const float *restrict b, int64_t k, float *restrict c)
{
	__m512 acc[16];
#pragma GCC unroll 16
	for (int j = 0; j < 16; j++)
		acc[j] = _mm512_setzero_ps();
	int64_t q = 0;
	for (; q + 16 <= k; q += 16, a += 256, b += 256)
#pragma GCC unroll 16
		for (int e = 0; e < 16; e++) {
			const __m512 av = _mm512_loadu_ps(a + 16 * e);
#pragma GCC unroll 16
			for (int j = 0; j < 16; j++)
				acc[j] = _mm512_fmadd_ps(av, _mm512_set1_ps(b[16 * j + e]), acc[j]);
		}
	for (int64_t e = 0; e < k - q; e++) { /* the last block's channels */
		const __m512 av = _mm512_loadu_ps(a + 16 * e);
#pragma GCC unroll 16
		for (int j = 0; j < 16; j++)
			acc[j] = _mm512_fmadd_ps(av, _mm512_set1_ps(b[16 * j + e]), acc[j]);
	}
#pragma GCC unroll 16
	for (int j = 0; j < 16; j++)
		_mm512_storeu_ps(c + 16 * j, acc[j]);
}

/* y for the panel's tiles [t0, t0 + cols) of the chunk (first tile row
 * r0) and the output channels [o0, o0 + 16) from m[xi][tile - t0][16]:
 * A^T M A per tile (A^T = [1 1 1 0; 0 1 -1 -1]) into two output rows
 * [pixel][16] (stage), which 16 x 16 transposes move into the planes; an
 * odd width drops the last tile's right column, an odd height its lower
 * row. */
CL_FN void cl_output(const wplan *p, const float *m, float *out, int64_t r0, int64_t t0,
                     int64_t cols, int64_t o0, float *stage)
{
	const int64_t hw = p->ho * p->wo, wo = p->wo;
	const int64_t no = p->co - o0 < 16 ? p->co - o0 : 16;
	float *s0 = stage, *s1 = stage + 2 * p->tw * 16;
	for (int64_t k = 0; k < cols;) { /* runs of tiles in one tile row */
		const int64_t t = t0 + k, q = r0 + t / p->tw, j0 = t % p->tw;
		const int64_t j1 = p->tw - j0 < cols - k ? p->tw : j0 + cols - k;
		const int64_t img = q / p->th, ti = q % p->th;
		for (int64_t j = j0; j < j1; j++) {
			const float *mk = m + (k + j - j0) * 16;
			__m512 s0b[4], s1b[4];
#pragma GCC unroll 4
			for (int b = 0; b < 4; b++) {
				const __m512 m0 = _mm512_loadu_ps(mk + b * 256),
				             m1 = _mm512_loadu_ps(mk + (4 + b) * 256);
				const __m512 m2 = _mm512_loadu_ps(mk + (8 + b) * 256),
				             m3 = _mm512_loadu_ps(mk + (12 + b) * 256);
				s0b[b] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
				s1b[b] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
			}
			float *d0 = s0 + 2 * (j - j0) * 16, *d1 = s1 + 2 * (j - j0) * 16;
			_mm512_storeu_ps(d0, _mm512_add_ps(_mm512_add_ps(s0b[0], s0b[1]), s0b[2]));
			_mm512_storeu_ps(d0 + 16,
			                 _mm512_sub_ps(_mm512_sub_ps(s0b[1], s0b[2]), s0b[3]));
			_mm512_storeu_ps(d1, _mm512_add_ps(_mm512_add_ps(s1b[0], s1b[1]), s1b[2]));
			_mm512_storeu_ps(d1 + 16,
			                 _mm512_sub_ps(_mm512_sub_ps(s1b[1], s1b[2]), s1b[3]));
		}
		/* columns [2 j0, c1) of output rows 2 ti and 2 ti + 1 */
		const int64_t c1 = 2 * j1 < wo ? 2 * j1 : wo;
		for (int rr = 0; rr < 2 && 2 * ti + rr < p->ho; rr++) {
			const float *s = rr ? s1 : s0;
			float *y = out + (img * p->co + o0) * hw + (2 * ti + rr) * wo;
			for (int64_t c = 2 * j0; c < c1; c += 16) {
				const int64_t n = c1 - c < 16 ? c1 - c : 16;
				const float *src = s + (c - 2 * j0) * 16;
				__m512 r[16];
#pragma GCC unroll 16
				for (int u = 0; u < 16; u++)
					r[u] = u < n ? _mm512_loadu_ps(src + u * 16)
					             : _mm512_setzero_ps();
				nb__transpose16_ps(r);
				const __mmask16 mask = nb__lanes16(n);
#pragma GCC unroll 16
				for (int l = 0; l < 16; l++)
					if (l < no)
						_mm512_mask_storeu_ps(y + l * hw + c, mask, r[l]);
			}
		}
		k += j1 - j0;
	}
}

/* One chunk, tile rows [r0, r1): V, then per panel of 16 tiles and block
 * of 16 output channels the 16 products M_xi and the output tiles.  The
 * panel's rows past the chunk's tiles are zeros (the kernel reads whole
 * panels; their results are dropped). */
CL_FN void cl_chunk(const wplan *p, const float *in, const float *u, float *out, int64_t r0,
                    int64_t r1, char *slice)
{
	float *v = (float *)slice, *m = (float *)(slice + p->v_bytes);
	float *rows = (float *)(slice + p->v_bytes + p->m_bytes);
	float *stage = rows + 4 * p->tw * 64 + (2 * p->tw + 2) * 16;
	const int64_t tiles = (r1 - r0) * p->tw, tpad = (tiles + 15) / 16 * 16;
	cl_input(p, in, v, r0, r1, rows);
	for (int xi = 0; xi < 16 && tpad > tiles; xi++) /* the last panel's missing tiles */
		for (int64_t c0 = 0; c0 < p->clc; c0 += 16)
			memset(v + xi * p->cvs + tiles / 16 * 16 * p->clc + c0 * 16 +
			           tiles % 16 * 16,
			       0, (size_t)((tpad - tiles) * 16) * sizeof(float));
	for (int64_t t0 = 0; t0 < tiles; t0 += 16) {
		const int64_t cols = tiles - t0 < 16 ? tiles - t0 : 16;
		for (int64_t ob = 0; ob < p->nob; ob++) {
			for (int xi = 0; xi < 16; xi++)
				cl_kernel(u + (xi * p->nob + ob) * p->ci * 16,
				          v + xi * p->cvs + t0 * p->clc, p->ci, m + xi * 256);
			cl_output(p, m, out, r0, t0, cols, ob * 16, stage);
		}
	}
}

/* U = G g G^T (wino_weights) for the output channels [16 ob, 16 ob +
 * 16), 16 of them a vector (gathered from W; lanes past co are zeros),
 * by the same operations in the same order; x / 2 as x * 0.5, the same
 * correctly rounded quotient.  cl_plan checks that the gathers' offsets
 * fit their 32-bit indices. */
CL_FN void cl_weights(const wplan *p, const float *w, float *u, int64_t ob)
{
	const int64_t o0 = ob * 16, blk = p->opad * p->ci;
	const __mmask16 live = nb__lanes16(p->co - o0);
	const __m512i idx = _mm512_mullo_epi32(
	    _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
	    _mm512_set1_epi32((int32_t)(p->flip ? 9 : p->ci * 9)));
	const __m512 half = _mm512_set1_ps(0.5f), zero = _mm512_setzero_ps();
	for (int64_t c = 0; c < p->ci; c++) {
		const float *src = p->flip ? w + (c * p->co + o0) * 9 : w + (o0 * p->ci + c) * 9;
		__m512 t[4][3];
#pragma GCC unroll 3
		for (int k = 0; k < 3; k++) {
			__m512 g[3];
#pragma GCC unroll 3
			for (int m = 0; m < 3; m++)
				g[m] = _mm512_mask_i32gather_ps(
				    zero, live, idx,
				    src + (p->flip ? (2 - m) * 3 + 2 - k : m * 3 + k), 4);
			t[0][k] = g[0];
			t[1][k] =
			    _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(g[0], g[1]), g[2]), half);
			t[2][k] =
			    _mm512_mul_ps(_mm512_add_ps(_mm512_sub_ps(g[0], g[1]), g[2]), half);
			t[3][k] = g[2];
		}
		float *d = u + (ob * p->ci + c) * 16;
#pragma GCC unroll 4
		for (int a = 0; a < 4; a++) {
			_mm512_storeu_ps(d + (4 * a) * blk, t[a][0]);
			_mm512_storeu_ps(
			    d + (4 * a + 1) * blk,
			    _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(t[a][0], t[a][1]), t[a][2]),
			                  half));
			_mm512_storeu_ps(
			    d + (4 * a + 2) * blk,
			    _mm512_mul_ps(_mm512_add_ps(_mm512_sub_ps(t[a][0], t[a][1]), t[a][2]),
			                  half));
			_mm512_storeu_ps(d + (4 * a + 3) * blk, t[a][2]);
		}
	}
}

/* ---- the weight gradient's transforms -------------------------------------
 * wg_input and wg_dy (winograd_impl.h) for floats where the kernel's
 * panels are 16 wide (nabla's 16 x 16): the same operations in the same
 * order on 16 channels a zmm, with the rows interleaved by cl_interleave's
 * register transposes instead of GCC's shuffles of 256-bit vectors. */

/* V of the chunk's tile rows [r0, r1) into the packed-B panels
 * [16][ncb][kmax][16] (wg_input) */
CL_FN void cl_wg_input(const wplan *p, const float *x, float *v, int64_t r0, int64_t r1,
                       float *rows)
{
	const int64_t tw = p->tw, width = 2 * tw + 2, bs = p->bs;
	for (int64_t cb = 0; cb < p->ncb; cb++) {
		const int64_t c0 = cb * 16, nc = p->ci - c0 < 16 ? p->ci - c0 : 16;
		int64_t tag[4] = {-1, -1, -1, -1};
		for (int64_t q = r0; q < r1; q++) {
			const float *h[4];
			cl_ring(p, x, c0, nc, q, tag, rows, width * 16, NULL, h);
			float *dst = v + (cb * p->kmax + (q - r0) * tw) * 16;
			for (int64_t j = 0; j < tw; j++) {
				__m512 t[4][4]; /* B^T d: rows a, columns s */
#pragma GCC unroll 4
				for (int s2 = 0; s2 < 4; s2++) {
					const int64_t at = (2 * j + s2) * 16;
					const __m512 a0 = _mm512_loadu_ps(h[0] + at),
					             a1 = _mm512_loadu_ps(h[1] + at);
					const __m512 a2 = _mm512_loadu_ps(h[2] + at),
					             a3 = _mm512_loadu_ps(h[3] + at);
					t[0][s2] = _mm512_sub_ps(a0, a2);
					t[1][s2] = _mm512_add_ps(a1, a2);
					t[2][s2] = _mm512_sub_ps(a2, a1);
					t[3][s2] = _mm512_sub_ps(a1, a3);
				}
				float *o = dst + j * 16;
#pragma GCC unroll 4
				for (int a = 0; a < 4; a++) { /* (B^T d) B */
					_mm512_storeu_ps(o + (4 * a) * bs,
					                 _mm512_sub_ps(t[a][0], t[a][2]));
					_mm512_storeu_ps(o + (4 * a + 1) * bs,
					                 _mm512_add_ps(t[a][1], t[a][2]));
					_mm512_storeu_ps(o + (4 * a + 2) * bs,
					                 _mm512_sub_ps(t[a][2], t[a][1]));
					_mm512_storeu_ps(o + (4 * a + 3) * bs,
					                 _mm512_sub_ps(t[a][1], t[a][3]));
				}
			}
		}
	}
}

/* dM = A dy_t A^T of the chunk's tile rows [r0, r1) into the packed-A
 * panels [16][nob][kmax][16] (wg_dy) */
CL_FN void cl_wg_dy(const wplan *p, const float *dy, float *m, int64_t r0, int64_t r1, float *rows)
{
	const int64_t tw = p->tw, width = 2 * tw, hw = p->ho * p->wo, as = p->as;
	float *y0 = rows, *y1 = rows + width * 16;
	const __m512i sign = _mm512_set1_epi32(INT32_MIN);
#define CL_NEG(v) _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), sign))
	for (int64_t ob = 0; ob < p->nob; ob++) {
		const int64_t o0 = ob * 16, nc = p->co - o0 < 16 ? p->co - o0 : 16;
		for (int64_t q = r0; q < r1; q++) {
			const int64_t img = q / p->th, ti = q % p->th;
			const float *planes = dy + (img * p->co + o0) * hw;
			cl_interleave(planes, hw, p->ho, p->wo, nc, 2 * ti, 0, width, y0);
			cl_interleave(planes, hw, p->ho, p->wo, nc, 2 * ti + 1, 0, width, y1);
			float *dst = m + (ob * p->kmax + (q - r0) * tw) * 16;
			for (int64_t j = 0; j < tw; j++) {
				const __m512 u0 = _mm512_loadu_ps(y0 + 2 * j * 16),
				             w0 = _mm512_loadu_ps(y0 + (2 * j + 1) * 16);
				const __m512 u1 = _mm512_loadu_ps(y1 + 2 * j * 16),
				             w1 = _mm512_loadu_ps(y1 + (2 * j + 1) * 16);
				/* A along the columns: rows 0..3 of A dy, columns e and o */
				const __m512 ea[4] = {u0, _mm512_add_ps(u0, u1),
				                      _mm512_sub_ps(u0, u1), CL_NEG(u1)};
				const __m512 oa[4] = {w0, _mm512_add_ps(w0, w1),
				                      _mm512_sub_ps(w0, w1), CL_NEG(w1)};
				float *d = dst + j * 16;
#pragma GCC unroll 4
				for (int r = 0; r < 4; r++) {
					_mm512_storeu_ps(d + (4 * r) * as, ea[r]);
					_mm512_storeu_ps(d + (4 * r + 1) * as,
					                 _mm512_add_ps(ea[r], oa[r]));
					_mm512_storeu_ps(d + (4 * r + 2) * as,
					                 _mm512_sub_ps(ea[r], oa[r]));
					_mm512_storeu_ps(d + (4 * r + 3) * as, CL_NEG(oa[r]));
				}
			}
		}
	}
#undef CL_NEG
}

/* the slice's layout for the channel lanes (plan_of) */
static void cl_plan(wplan *p, int threads, size_t es)
{
	/* the weights' gathers index 16 channels in int32 */
	if ((p->flip ? 9 : p->ci * 9) * 15 + 9 > INT32_MAX)
		return;
	p->cl = true;
	p->clc = (p->ci + 15) / 16 * 16;
	p->rows = chunk_rows(p, threads, 16 * p->clc * p->tw * (int64_t)es, CHUNK_BYTES);
	const int64_t tpad = (p->rows * p->tw + 15) / 16 * 16;
	p->cvs = nb__pad_ld(tpad * p->clc, es);
	p->v_bytes = nb__align_up((size_t)(16 * p->cvs) * es);
	p->m_bytes = nb__align_up((size_t)(16 * 256) * es);
	p->row_bytes =
	    nb__align_up((size_t)(4 * p->tw * 64 + (2 * p->tw + 2) * 16 + 4 * p->tw * 16) * es);
	p->slice_bytes = p->v_bytes + p->m_bytes + p->row_bytes;
}

#endif
