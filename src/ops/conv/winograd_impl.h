/*
 * Winograd F(2x2, 3x3) kernels for one element type.  winograd.c includes
 * this file once per type, with
 *   T          float or double
 *   SFX(name)  name##_f32 or name##_f64
 *   UKR        sukr or dukr, the plan's BLIS micro-kernel of the type
 *
 * Layouts (p a wplan, xi = 4 a + b a position in the 4x4 transformed
 * tile), in the packed forms BLIS's gemm micro-kernel reads (MR x k panels
 * of A stored column by column, k x NR panels of B stored row by row):
 *   U [16][nob][ci][MR]   U[xi][ob][c][i] = (G g_oc G^T)[a][b], o = ob MR + i
 *                         (0 for o >= co)
 *   V, slabs of vs:       V[xi vs + (panel ci + c) NR + lane] = (B^T d_ct B)[a][b]
 *                         for tile t = panel NR + lane of the chunk
 *   M, slabs of ms:       M[xi ms + o mrs + lane mcs] = sum_c U V, one panel
 * A chunk is a range of tile rows [r0, r1) of the batch (tile row
 * q = image * th + ti), its tiles numbered t = (q - r0) tw + tj.
 */

/* U = G g G^T for the padded output channels [o0, o1) (zeros past co),
 * all input channels, with
 *   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
 * Forward: g = W[o][c]; flip: g[m][k] = W[c][o][2-m][2-k] (W is the
 * forward's [O, C] = [ci, co] here). */
NB_TGT static void SFX(wino_weights)(const wplan *p, const T *w, T *u, int64_t o0, int64_t o1)
{
#if NB_GEMM_AVX512
	if (sizeof(T) == sizeof(float) && p->cl) { /* whole blocks of 16 (plan_of) */
		for (int64_t ob = o0 / 16; ob < o1 / 16; ob++)
			cl_weights(p, (const float *)w, (float *)u, ob);
		return;
	}
#endif
	const int64_t blk = p->opad * p->ci; /* one xi */
	for (int64_t o = o0; o < o1; o++)
		for (int64_t c = 0; c < p->ci; c++) {
			T g[3][3] = {{0}}, t[4][3];
			const T *src = p->flip ? w + (c * p->co + o) * 9 : w + (o * p->ci + c) * 9;
			if (o < p->co)
				for (int m = 0; m < 3; m++)
					for (int k = 0; k < 3; k++)
						g[m][k] = p->flip ? src[(2 - m) * 3 + 2 - k]
						                  : src[m * 3 + k];
			for (int k = 0; k < 3; k++) {
				t[0][k] = g[0][k];
				t[1][k] = (g[0][k] + g[1][k] + g[2][k]) / 2;
				t[2][k] = (g[0][k] - g[1][k] + g[2][k]) / 2;
				t[3][k] = g[2][k];
			}
			T *d = u + (o / p->mr * p->ci + c) * p->mr + o % p->mr;
			for (int a = 0; a < 4; a++) {
				d[(4 * a + 0) * blk] = t[a][0];
				d[(4 * a + 1) * blk] = (t[a][0] + t[a][1] + t[a][2]) / 2;
				d[(4 * a + 2) * blk] = (t[a][0] - t[a][1] + t[a][2]) / 2;
				d[(4 * a + 3) * blk] = t[a][2];
			}
		}
}

/* Row `row` of plane xc, split by column parity for the tiles of a tile
 * row: e[j] = x[row][2j - pl], od[j] = x[row][2j + 1 - pl] for j in
 * [0, tw], 0 outside the plane. */
WINO_INLINE void SFX(split_row)(const wplan *p, const T *xc, int64_t row, T *restrict e,
                                T *restrict od)
{
	const int64_t n = p->tw + 1, pl = p->pl, wi = p->wi;
	if (row < 0 || row >= p->hi) {
		memset(e, 0, (size_t)n * sizeof(T));
		memset(od, 0, (size_t)n * sizeof(T));
		return;
	}
	const T *restrict xr = xc + row * wi;
	/* [ja, jb): both columns 2j - pl and 2j + 1 - pl inside the row, i.e.
	 * 2j - pl in [0, wi - 1) */
	int64_t ja, jb;
	nb__tap_range(wi - 1, n, 2, -pl, &ja, &jb);
	for (int64_t j = 0; j < n; j++) {
		if (j == ja) /* the interior: no tests */
			for (; j < jb; j++) {
				e[j] = xr[2 * j - pl];
				od[j] = xr[2 * j + 1 - pl];
			}
		if (j >= n)
			break;
		const int64_t col = 2 * j - pl;
		e[j] = col >= 0 && col < wi ? xr[col] : 0;
		od[j] = col + 1 >= 0 && col + 1 < wi ? xr[col + 1] : 0;
	}
}

/* B^T along input row `row` of plane xc for every tile column:
 * h[b tw + j] = (B^T d)[b] with d = x[row][2j - pl .. 2j + 3 - pl] (0
 * outside the plane) and B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
WINO_INLINE void SFX(row_bt)(const wplan *p, const T *xc, int64_t row, T *restrict e,
                             T *restrict od, T *restrict h)
{
	const int64_t tw = p->tw;
	SFX(split_row)(p, xc, row, e, od);
	for (int64_t j = 0; j < tw; j++) {
		h[j] = e[j] - e[j + 1];
		h[tw + j] = od[j] + e[j + 1];
		h[2 * tw + j] = e[j + 1] - od[j];
		h[3 * tw + j] = od[j] - od[j + 1];
	}
}

/* B^T down the columns of tiles [j0, j0 + len) of a tile row whose four
 * input rows are h0..h3 (row_bt): V[(4 a + b) vs + j - j0] for the 16
 * positions, one column b at a time (few live values: no spills). */
NB_TGT static void SFX(col_bt)(const T *h0, const T *h1, const T *h2, const T *h3, int64_t tw,
                               int64_t j0, int64_t len, T *restrict dst, int64_t vs)
{
	for (int64_t b = 0; b < 4; b++) {
		const T *restrict a0 = h0 + b * tw + j0, *restrict a1 = h1 + b * tw + j0;
		const T *restrict a2 = h2 + b * tw + j0, *restrict a3 = h3 + b * tw + j0;
		T *restrict v0 = dst + b * vs, *restrict v1 = dst + (4 + b) * vs;
		T *restrict v2 = dst + (8 + b) * vs, *restrict v3 = dst + (12 + b) * vs;
		/* simd: the four stores are 4 vs apart, alias checks GCC gives up on */
		NB_SIMD()
		for (int64_t j = 0; j < len; j++) {
			v0[j] = a0[j] - a2[j];
			v1[j] = a1[j] + a2[j];
			v2[j] = a2[j] - a1[j];
			v3[j] = a1[j] - a3[j];
		}
	}
}

/* The four input rows of tile row q (image q / th) of channel c after B^T
 * along the rows, into h: each input row's B^T is computed once into a
 * ring of four (rows 2 ti + 2, 2 ti + 3 serve tile rows ti and ti + 1);
 * tag (four entries, -1 at first) records which (image, row) each ring
 * slot holds.  split: room for a split row (2 (tw + 1)); ring: 16 tw. */
WINO_INLINE void SFX(ring_rows)(const wplan *p, const T *in, int64_t c, int64_t q, int64_t *tag,
                                T *split, T *ring, const T **h)
{
	const int64_t tw = p->tw, img = q / p->th, ti = q % p->th;
	const T *xc = in + (img * p->ci + c) * p->hi * p->wi;
	T *e = split, *od = split + tw + 1;
	for (int r = 0; r < 4; r++) {
		const int64_t row = 2 * ti + r - p->pt, slot = (row + 4) % 4;
		const int64_t id = img * (p->hi + 8) + row + 4;
		T *hs = ring + slot * 4 * tw;
		if (tag[slot] != id) {
			SFX(row_bt)(p, xc, row, e, od, hs);
			tag[slot] = id;
		}
		h[r] = hs;
	}
}

/* V for the chunk's tile rows [r0, r1) of the input `in`, channel by
 * channel.  Each input row's B^T is computed once into a ring of four
 * (rows 2 ti + 2, 2 ti + 3 serve tile rows ti and ti + 1); a tile row
 * goes to V in runs that stay inside one panel.  The last panel's unused
 * lanes are zeroed. */
NB_TGT static void SFX(wino_input)(const wplan *p, const T *in, T *v, int64_t r0, int64_t r1,
                                   T *rows)
{
	const int64_t nr = p->nr, tw = p->tw;
	const int64_t tiles = (r1 - r0) * tw, last = (tiles - 1) / nr;
	if (tiles % nr)
		for (int xi = 0; xi < 16; xi++)
			memset(v + xi * p->vs + last * p->ci * nr, 0,
			       (size_t)(p->ci * nr) * sizeof(T));
	for (int64_t c = 0; c < p->ci; c++) {
		int64_t tag[4] = {-1, -1, -1, -1}; /* which (image, row) each ring slot holds */
		for (int64_t q = r0; q < r1; q++) {
			const int64_t t0 = (q - r0) * tw;
			const T *h[4];
			SFX(ring_rows)(p, in, c, q, tag, rows, rows + 2 * (tw + 1), h);
			for (int64_t j = 0; j < tw;) {
				const int64_t t = t0 + j, lane = t % nr;
				const int64_t len = tw - j < nr - lane ? tw - j : nr - lane;
				SFX(col_bt)
				(h[0], h[1], h[2], h[3], tw, j, len,
				 v + (t / nr * p->ci + c) * nr + lane, p->vs);
				j += len;
			}
		}
	}
}

/* Tiles [j0, j1) of one tile row of one output channel into output rows
 * y0, y1 of width wo (an odd width drops the last tile's right column).
 * Tile j's transformed outputs are m[xi] = src[xi ms + (j - j0) ts]; with
 * A^T = [1 1 1 0; 0 1 -1 -1] its outputs are A^T m A. */
NB_TGT static void SFX(out_seg)(const T *restrict src, int64_t ms, int64_t ts, T *restrict y0,
                                T *restrict y1, int64_t j0, int64_t j1, int64_t wo)
{
	const int64_t full = j1 < wo / 2 ? j1 : wo / 2;
	const T *m0 = src - j0 * ts, *m1 = m0 + 4 * ms, *m2 = m0 + 8 * ms, *m3 = m0 + 12 * ms;
#define COL_AT(b)                                                                                  \
	const T s0##b = m0[b * ms + j * ts] + m1[b * ms + j * ts] + m2[b * ms + j * ts];           \
	const T s1##b = m1[b * ms + j * ts] - m2[b * ms + j * ts] - m3[b * ms + j * ts]
#define OUT_TILE                                                                                   \
	COL_AT(0);                                                                                 \
	COL_AT(1);                                                                                 \
	COL_AT(2);                                                                                 \
	COL_AT(3)
	for (int64_t j = j0; j < full; j++) {
		OUT_TILE;
		y0[2 * j] = s00 + s01 + s02;
		y0[2 * j + 1] = s01 - s02 - s03;
		y1[2 * j] = s10 + s11 + s12;
		y1[2 * j + 1] = s11 - s12 - s13;
	}
	if (j1 > full) { /* the last tile of an odd width */
		const int64_t j = full;
		OUT_TILE;
		(void)s03, (void)s13;
		y0[2 * j] = s00 + s01 + s02;
		y1[2 * j] = s10 + s11 + s12;
	}
#undef COL_AT
#undef OUT_TILE
}

/* y for one panel's tiles [t0, t0 + cols) of the chunk starting at tile
 * row r0, from M; an odd height's last tile row writes its lower row to
 * `spare` */
NB_TGT static void SFX(wino_output)(const wplan *p, const T *m, T *out, int64_t r0, int64_t t0,
                                    int64_t cols, T *spare)
{
	const int64_t hw = p->ho * p->wo;
	for (int64_t k = 0; k < cols;) { /* runs of tiles in one tile row */
		const int64_t t = t0 + k, q = r0 + t / p->tw, j0 = t % p->tw;
		const int64_t j1 = p->tw - j0 < cols - k ? p->tw : j0 + cols - k;
		const int64_t img = q / p->th, ti = q % p->th;
		for (int64_t o = 0; o < p->co; o++) {
			T *y0 = out + (img * p->co + o) * hw + 2 * ti * p->wo;
			T *y1 = 2 * ti + 1 < p->ho ? y0 + p->wo : spare;
			SFX(out_seg)
			(m + o * p->mrs + k * p->mcs, p->ms, p->mcs, y0, y1, j0, j1, p->wo);
		}
		k += j1 - j0;
	}
}

/* One chunk: V, then panel by panel the 16 products M_xi = U_xi V_xi
 * (BLIS's micro-kernel on MR x NR blocks, k = ci) and the output tiles */
NB_TGT static void SFX(wino_chunk)(const wplan *p, const T *in, const T *u, T *out, int64_t r0,
                                   int64_t r1, char *slice)
{
#if NB_GEMM_AVX512
	if (sizeof(T) == sizeof(float) && p->cl) { /* floats only (plan_of) */
		cl_chunk(p, (const float *)in, (const float *)u, (float *)out, r0, r1, slice);
		return;
	}
#endif
	T *v = (T *)slice, *m = (T *)(slice + p->v_bytes);
	T *rows = (T *)(slice + p->v_bytes + p->m_bytes);
	SFX(wino_input)(p, in, v, r0, r1, rows);
	const int64_t tiles = (r1 - r0) * p->tw, nr = p->nr, kc = p->ci;
	T one = 1, zero = 0;
	auxinfo_t aux;
	memset(&aux, 0, sizeof aux);
	bli_auxinfo_set_is_a(1, &aux);
	bli_auxinfo_set_is_b(1, &aux);
	for (int64_t t0 = 0; t0 < tiles; t0 += nr) {
		const int64_t cols = tiles - t0 < nr ? tiles - t0 : nr;
		for (int64_t xi = 0; xi < 16; xi++) {
			T *b = v + xi * p->vs + t0 * kc;
			for (int64_t ob = 0; ob < p->nob; ob++) {
				T *a = (T *)u + (xi * p->nob + ob) * kc * p->mr;
				bli_auxinfo_set_next_ab(a + kc * p->mr, b, &aux);
				p->UKR((dim_t)p->mr, (dim_t)cols, (dim_t)kc, &one, a, b, &zero,
				       m + xi * p->ms + ob * p->mr * p->mrs, (inc_t)p->mrs,
				       (inc_t)p->mcs, &aux, p->cntx);
			}
		}
		SFX(wino_output)(p, m, out, r0, t0, cols, rows + 2 * (p->tw + 1) + 16 * p->tw);
	}
}

/* Thread tid of th: images [n tid / th, n (tid + 1) / th), their tile rows
 * in equal pieces of at most p->rows */
NB_TGT static void SFX(wino_share)(const wplan *p, const T *in, const T *u, T *out, char *slice,
                                   int th, int tid)
{
	const int64_t lo = p->n * tid / th * p->th, hi = p->n * (tid + 1) / th * p->th;
	const int64_t cnt = hi - lo, np = (cnt + p->rows - 1) / p->rows;
	for (int64_t k = 0; k < np; k++)
		SFX(wino_chunk)(p, in, u, out, lo + cnt * k / np, lo + cnt * (k + 1) / np, slice);
}

NB_TGT void SFX(nb__wino_forward)(const nb__wino_geom *g, const T *in, const T *w, T *out, void *ws,
                                  int threads)
{
	NB_ISA_MARK(NB_V);
	if (threads < 1)
		threads = 1;
	const wplan p = plan_of(g, sizeof(T), threads);
	T *u = ws;
	char *slices = (char *)ws + p.u_bytes;
	if (threads == 1) {
		SFX(wino_weights)(&p, w, u, 0, p.opad);
		SFX(wino_share)(&p, in, u, out, slices, 1, 0);
		return;
	}
#pragma omp parallel num_threads(threads)
	{
		const int th = omp_get_num_threads(), tid = omp_get_thread_num();
#pragma omp for schedule(static)
		for (int64_t ob = 0; ob < p.nob; ob++)
			SFX(wino_weights)(&p, w, u, ob * p.mr, (ob + 1) * p.mr);
		/* the barrier after the loop: U is complete */
		SFX(wino_share)(&p, in, u, out, slices + (size_t)tid * p.slice_bytes, th, tid);
	}
}

/* ---- the weight gradient -------------------------------------------------
 * The transforms run on L channels at once, L the lane count of the
 * packed panel they write (NR for V, MR for dM): rows of the input are
 * first interleaved, [column][L] (each raw value copied once), and then
 * every transform is a loop over the L lanes that GCC vectorises, with
 * whole-panel-row stores. */

/* dst[u L + l] = src[l hw + u] for u in [u0, u1), l < L (a constant
 * where inlined) */
WINO_INLINE void SFX(transpose_cols)(const T *restrict src, int64_t hw, int64_t u0, int64_t u1,
                                     const int64_t L, T *restrict dst)
{
	for (int64_t u = u0; u < u1; u++)
		for (int64_t l = 0; l < L; l++)
			dst[u * L + l] = src[l * hw + u];
}

/* Row `row` of channels [c0, c0 + nc) of image img, interleaved: dst[u L +
 * l] = plane (c0 + l) at column u - off for u in [0, width), 0 outside the
 * plane and for lanes l >= nc.  planes: the first plane of the image's
 * channel c0; hw, ht, wd: plane size, height and width. */
WINO_INLINE void SFX(interleave)(const T *planes, int64_t hw, int64_t ht, int64_t wd, int64_t nc,
                                 int64_t row, int64_t off, int64_t width, int64_t L,
                                 T *restrict dst)
{
	if (nc < L || row < 0 || row >= ht)
		memset(dst, 0, (size_t)(width * L) * sizeof(T));
	if (row < 0 || row >= ht)
		return;
	const int64_t u0 = off, u1 = wd + off < width ? wd + off : width; /* in-plane columns */
	/* full panels of the common widths: a constant L, so that GCC turns
	 * the copy into vector loads and shuffles (an interleaved store group) */
	if (nc == L && (L == 16 || L == 8 || L == 6 || L == 4)) {
		const T *src = planes + row * wd - off;
		memset(dst, 0, (size_t)(u0 * L) * sizeof(T));
		memset(dst + u1 * L, 0, (size_t)((width - u1) * L) * sizeof(T));
		if (L == 16)
			SFX(transpose_cols)(src, hw, u0, u1, 16, dst);
		else if (L == 8)
			SFX(transpose_cols)(src, hw, u0, u1, 8, dst);
		else if (L == 6)
			SFX(transpose_cols)(src, hw, u0, u1, 6, dst);
		else
			SFX(transpose_cols)(src, hw, u0, u1, 4, dst);
		return;
	}
	for (int64_t l = 0; l < nc; l++) {
		const T *restrict xr = planes + l * hw + row * wd - off;
		for (int64_t u = 0; u < u0; u++)
			dst[u * L + l] = 0;
		for (int64_t u = u0; u < u1; u++)
			dst[u * L + l] = xr[u];
		for (int64_t u = u1; u < width; u++)
			dst[u * L + l] = 0;
	}
}

/* V of the chunk's tile rows [r0, r1) into the packed-B panels
 * [16][ncb][kmax][NR]: channel c is lane c % NR of panel c / NR, tile t =
 * (q - r0) tw + tj its row t.  The four input rows of a tile row are
 * interleaved into a ring of four (consecutive tile rows share two). */
NB_TGT static void SFX(wg_input)(const wplan *p, const T *x, T *v, int64_t r0, int64_t r1, T *rows)
{
	const int64_t L = p->nr, tw = p->tw, width = 2 * tw + 2, hw = p->hi * p->wi, bs = p->bs;
	for (int64_t cb = 0; cb < p->ncb; cb++) {
		const int64_t c0 = cb * L, nc = p->ci - c0 < L ? p->ci - c0 : L;
		int64_t tag[4] = {-1, -1, -1, -1};
		for (int64_t q = r0; q < r1; q++) {
			const int64_t img = q / p->th, ti = q % p->th;
			const T *h[4];
			for (int r = 0; r < 4; r++) {
				const int64_t row = 2 * ti + r - p->pt, slot = (row + 4) % 4;
				const int64_t id = img * (p->hi + 8) + row + 4;
				T *hs = rows + slot * width * L;
				if (tag[slot] != id) {
					SFX(interleave)
					(x + (img * p->ci + c0) * hw, hw, p->hi, p->wi, nc, row,
					 p->pl, width, L, hs);
					tag[slot] = id;
				}
				h[r] = hs;
			}
			T *dst = v + (cb * p->kmax + (q - r0) * tw) * L;
			for (int64_t j = 0; j < tw; j++) {
				const T *restrict d0 = h[0] + 2 * j * L, *restrict d1 =
				                                             h[1] + 2 * j * L;
				const T *restrict d2 = h[2] + 2 * j * L, *restrict d3 =
				                                             h[3] + 2 * j * L;
				T *restrict o = dst + j * L;
				/* simd: sixteen store streams bs apart (alias checks GCC gives up
				 * on) */
				NB_SIMD()
				for (int64_t l = 0; l < L; l++) {
					T t[4][4]; /* B^T d: rows a, columns s */
					for (int s2 = 0; s2 < 4; s2++) {
						const T a0 = d0[s2 * L + l], a1 = d1[s2 * L + l];
						const T a2 = d2[s2 * L + l], a3 = d3[s2 * L + l];
						t[0][s2] = a0 - a2;
						t[1][s2] = a1 + a2;
						t[2][s2] = a2 - a1;
						t[3][s2] = a1 - a3;
					}
					for (int a4 = 0; a4 < 4; a4++) { /* (B^T d) B */
						o[(4 * a4 + 0) * bs + l] = t[a4][0] - t[a4][2];
						o[(4 * a4 + 1) * bs + l] = t[a4][1] + t[a4][2];
						o[(4 * a4 + 2) * bs + l] = t[a4][2] - t[a4][1];
						o[(4 * a4 + 3) * bs + l] = t[a4][1] - t[a4][3];
					}
				}
			}
		}
	}
}

/* dM = A dy_t A^T for the 2x2 tiles dy_t of the chunk's tile rows [r0, r1)
 * into the packed-A panels [16][nob][kmax][MR] (output channel o is lane
 * o % MR of panel o / MR, tile t its row t), with A = [1 0; 1 1; 1 -1;
 * 0 -1]: for a column pair (u, w) of dy, A (u, w) = (u, u + w, u - w, -w).
 * dy past the plane (an odd height's or width's last tiles) is 0. */
NB_TGT static void SFX(wg_dy)(const wplan *p, const T *dy, T *m, int64_t r0, int64_t r1, T *rows)
{
	const int64_t L = p->mr, tw = p->tw, width = 2 * tw, hw = p->ho * p->wo, as = p->as;
	T *y0 = rows, *y1 = rows + width * L;
	for (int64_t ob = 0; ob < p->nob; ob++) {
		const int64_t o0 = ob * L, nc = p->co - o0 < L ? p->co - o0 : L;
		for (int64_t q = r0; q < r1; q++) {
			const int64_t img = q / p->th, ti = q % p->th;
			const T *planes = dy + (img * p->co + o0) * hw;
			SFX(interleave)(planes, hw, p->ho, p->wo, nc, 2 * ti, 0, width, L, y0);
			SFX(interleave)(planes, hw, p->ho, p->wo, nc, 2 * ti + 1, 0, width, L, y1);
			T *dst = m + (ob * p->kmax + (q - r0) * tw) * L;
			for (int64_t j = 0; j < tw; j++) {
				const T *restrict a = y0 + 2 * j * L, *restrict b = y1 + 2 * j * L;
				T *restrict d = dst + j * L;
				NB_SIMD()
				for (int64_t l = 0; l < L; l++) {
					/* A along the columns: rows 0..3 of A dy, columns e and o
					 */
					const T u0 = a[l], w0 = a[L + l], u1 = b[l], w1 = b[L + l];
					const T ea[4] = {u0, u0 + u1, u0 - u1, -u1};
					const T oa[4] = {w0, w0 + w1, w0 - w1, -w1};
					for (int r = 0; r < 4; r++) {
						d[(4 * r + 0) * as + l] = ea[r];
						d[(4 * r + 1) * as + l] = ea[r] + oa[r];
						d[(4 * r + 2) * as + l] = ea[r] - oa[r];
						d[(4 * r + 3) * as + l] = -oa[r];
					}
				}
			}
		}
	}
}

/* One chunk, tile rows [r0, r1): dM and V, then dU_xi += dM_xi V_xi^T
 * (BLIS's micro-kernel on MR x NR blocks of dU, k = the chunk's tiles) */
NB_TGT static void SFX(wg_chunk)(const wplan *p, const T *dy, const T *x, int64_t r0, int64_t r1,
                                 char *slice)
{
	T *du = (T *)slice, *m = (T *)(slice + p->du_bytes);
	T *v = (T *)(slice + p->du_bytes + p->m_bytes);
	T *rows = (T *)(slice + p->du_bytes + p->m_bytes + p->v_bytes);
#if NB_GEMM_AVX512
	if (sizeof(T) == sizeof(float) && p->cl) { /* floats only (plan_wgrad) */
		cl_wg_dy(p, (const float *)dy, (float *)m, r0, r1, (float *)rows);
		cl_wg_input(p, (const float *)x, (float *)v, r0, r1, (float *)rows);
	} else
#endif
	{
		SFX(wg_dy)(p, dy, m, r0, r1, rows);
		SFX(wg_input)(p, x, v, r0, r1, rows);
	}
	const int64_t k = (r1 - r0) * p->tw, kmax = p->kmax, mr = p->mr, nr = p->nr;
	T one = 1, beta = 1; /* distinct objects: the kernel's arguments are restrict */
	auxinfo_t aux;
	memset(&aux, 0, sizeof aux);
	bli_auxinfo_set_is_a(1, &aux);
	bli_auxinfo_set_is_b(1, &aux);
	for (int64_t xi = 0; xi < 16; xi++)
		for (int64_t ob = 0; ob < p->nob; ob++) {
			T *a = m + xi * p->as + ob * kmax * mr;
			for (int64_t cb = 0; cb < p->ncb; cb++) {
				T *b = v + xi * p->bs + cb * kmax * nr;
				bli_auxinfo_set_next_ab(a, b + kmax * nr, &aux);
				p->UKR((dim_t)mr, (dim_t)nr, (dim_t)k, &one, a, b, &beta,
				       du + xi * p->ds + ob * mr * p->drs + cb * nr * p->dcs,
				       (inc_t)p->drs, (inc_t)p->dcs, &aux, p->cntx);
			}
		}
}

/* Thread tid of th: a zero dU, then its images [n tid / th, n (tid + 1) /
 * th) in chunks of at most p->rows tile rows.  The panels are zeroed
 * once, so that the lanes past co and ci hold zeros. */
NB_TGT static void SFX(wg_share)(const wplan *p, const T *dy, const T *x, char *slice, int th,
                                 int tid)
{
	memset(slice, 0, p->du_bytes + p->m_bytes + p->v_bytes);
	const int64_t lo = p->n * tid / th * p->th, hi = p->n * (tid + 1) / th * p->th;
	const int64_t cnt = hi - lo, np = (cnt + p->rows - 1) / p->rows;
	for (int64_t k = 0; k < np; k++)
		SFX(wg_chunk)(p, dy, x, lo + cnt * k / np, lo + cnt * (k + 1) / np, slice);
}

/* dW[o][c] for the pairs e in [e0, e1) (e = o ci + c): the th private dU
 * added in thread order, then G^T dU G with G^T = [1 1/2 1/2 0; 0 1/2
 * -1/2 0; 0 1/2 1/2 1] */
NB_TGT static void SFX(wg_weights)(const wplan *p, const char *slices, int th, T *dw, int64_t e0,
                                   int64_t e1)
{
	for (int64_t e = e0; e < e1; e++) {
		const int64_t o = e / p->ci, c = e % p->ci, at = o * p->drs + c * p->dcs;
		T u[4][4], t[3][4];
		for (int xi = 0; xi < 16; xi++) {
			T s = 0;
			for (int k = 0; k < th; k++)
				s += ((const T *)(slices +
				                  (size_t)k * p->slice_bytes))[xi * p->ds + at];
			u[xi / 4][xi % 4] = s;
		}
		for (int b = 0; b < 4; b++) {
			t[0][b] = u[0][b] + (u[1][b] + u[2][b]) / 2;
			t[1][b] = (u[1][b] - u[2][b]) / 2;
			t[2][b] = (u[1][b] + u[2][b]) / 2 + u[3][b];
		}
		T *d = dw + e * 9;
		for (int a = 0; a < 3; a++) {
			d[a * 3 + 0] = t[a][0] + (t[a][1] + t[a][2]) / 2;
			d[a * 3 + 1] = (t[a][1] - t[a][2]) / 2;
			d[a * 3 + 2] = (t[a][1] + t[a][2]) / 2 + t[a][3];
		}
	}
}

NB_TGT void SFX(nb__wino_weight_grad)(const nb__wino_geom *g, const T *dy, const T *x, T *dw,
                                      void *ws, int threads)
{
	NB_ISA_MARK(NB_V);
	if (threads < 1)
		threads = 1;
	const wplan p = plan_wgrad(g, sizeof(T), threads);
	char *slices = ws;
	if (threads == 1) {
		SFX(wg_share)(&p, dy, x, slices, 1, 0);
		SFX(wg_weights)(&p, slices, 1, dw, 0, p.co * p.ci);
		return;
	}
#pragma omp parallel num_threads(threads)
	{
		const int th = omp_get_num_threads(), tid = omp_get_thread_num();
		SFX(wg_share)(&p, dy, x, slices + (size_t)tid * p.slice_bytes, th, tid);
#pragma omp barrier
		const int64_t pairs = p.co * p.ci;
		SFX(wg_weights)(&p, slices, th, dw, pairs * tid / th, pairs * (tid + 1) / th);
	}
}

/* ---- the convolution op's entry points ------------------------------------ */

/* y[n, o] += b[o] */
NB_TGT static void SFX(add_bias)(const nb__conv_geom *g, const T *b, T *y, int th)
{
	const int64_t p = g->oh * g->ow;
	NB_PAR_FOR_IF(th, g->n * g->o * p >= NB_PAR_MIN, q, g->n * g->o, {
		const T bo = b[q % g->o];
		T *yr = y + q * p;
		for (int64_t e = 0; e < p; e++)
			yr[e] += bo;
	});
}

NB_TGT void SFX(nb__wino_conv_forward)(const nb__conv_geom *g, const nb__conv_plan *p, const T *x,
                                       const T *w, const T *b, T *y, void *ws)
{
	nb__wino_geom wg = nb__conv_wino_geom(g, false);
	wg.isa = p->isa; /* the micro-kernel's level (the transforms run NB_V's) */
	SFX(nb__wino_forward)(&wg, x, w, y, ws, p->threads);
	if (b)
		SFX(add_bias)(g, b, y, p->team);
}

NB_TGT void SFX(nb__wino_conv_input_grad)(const nb__conv_geom *g, const nb__conv_plan *p,
                                          const T *dy, const T *w, T *dx, void *ws)
{
	nb__wino_geom wg = nb__conv_wino_geom(g, true);
	wg.isa = p->isa; /* the micro-kernel's level (the transforms run NB_V's) */
	SFX(nb__wino_forward)(&wg, dy, w, dx, ws, p->threads);
}

NB_TGT void SFX(nb__wino_conv_weight_grad)(const nb__conv_geom *g, const nb__conv_plan *p,
                                           const T *dy, const T *x, T *dw, void *ws)
{
	nb__wino_geom wg = nb__conv_wino_geom(g, false);
	wg.isa = p->isa; /* the micro-kernel's level (the transforms run NB_V's) */
	SFX(nb__wino_weight_grad)(&wg, dy, x, dw, ws, p->threads);
}
