/*
 * Winograd F(2x2, 3x3) convolution: see winograd.h for the operation and
 * docs/winograd.md for the maths.  winograd_impl.h holds the kernels, once
 * per element type.
 */
#include "ops/conv/winograd.h"

#include "ops/conv/plan.h"

#include "ops/conv/conv.h" /* nb__tap_range */
#include "ops/gemm.h"

#include <blis.h>
#include <omp.h>
#include <string.h>

/* V of one chunk (the transformed input tiles) in bytes: a quarter of a
 * Zen core's 1 MiB L2 cache (256 and 128 KiB measured best; 512 KiB and up
 * lose 10-20%). */
#define CHUNK_BYTES (256 * 1024)
/* dM and V of one weight-gradient chunk */
#define WGRAD_CHUNK_BYTES (256 * 1024)

/* The convolution actually computed: the forward one, or for flip the
 * forward convolution of dy with W' and the adjoint padding; and the BLIS
 * micro-kernel that multiplies the transformed tiles. */
typedef struct wplan {
	int64_t n, ci, co;      /* batch; channels in and out */
	int64_t hi, wi, ho, wo; /* input and output planes */
	int64_t pt, pl;         /* padding top, left */
	int64_t th, tw;         /* tile rows and columns per image */
	int64_t rows;           /* at most this many tile rows per chunk */
	int64_t mr, nr;         /* micro-kernel block: MR output channels x NR tiles */
	int64_t nob, opad;      /* MR-blocks of output channels; nob MR */
	int64_t vs;             /* V_xi = V + xi vs: [panel][ci][NR] */
	int64_t ms, mrs, mcs;   /* M_xi = M + xi ms, element (o, tile) at o mrs + tile mcs */
	size_t u_bytes;         /* U [16][nob][ci][MR] */
	size_t v_bytes, m_bytes, row_bytes, slice_bytes;
	/* the weight gradient: chunks of at most kmax tiles; dM (A dy A^T) in
	 * packed-A panels [16][nob][kmax][MR] (slabs of as), V in packed-B
	 * panels [16][ncb][kmax][NR] (slabs of bs), dU_xi = dU + xi ds with
	 * element (o, c) at o drs + c dcs */
	int64_t kmax, ncb, cpad, as, bs, ds, drs, dcs;
	size_t du_bytes;
	bool flip;
	/* the forward's products with channels in the lanes (winograd_avx512.h):
	 * V [16][tiles][clc] in slabs of cvs */
	bool cl;
	int64_t clc, cvs;
	sgemm_ukr_ft sukr; /* the micro-kernel of the plan's element type */
	dgemm_ukr_ft dukr;
	cntx_t *cntx;
	const char *kernel; /* "avx512", "blis" or "portable" (micro_kernel) */
} wplan;

/* BLIS's micro-kernel for the element type (the one BLIS picked for the
 * CPU), with its block sizes; false when its packed panels are wider than
 * its register block or its B rows are not whole cache lines (the layout
 * here would not fit: BLIS's skx kernels, 32 x 12 and 16 x 14). */
static bool blis_kernel(num_t dt, size_t es, wplan *p)
{
	cntx_t *cx = bli_gks_query_cntx();
	if (!cx)
		return false;
	p->cntx = cx;
	/* BLIS hands kernels out as void *: copy the bits (ISO C has no cast
	 * from object to function pointers) */
	void_fp f = bli_cntx_get_l3_nat_ukr_dt(dt, BLIS_GEMM_UKR, cx);
	_Static_assert(sizeof f == sizeof p->sukr && sizeof f == sizeof p->dukr, "pointer sizes");
	if (dt == BLIS_FLOAT)
		memcpy(&p->sukr, &f, sizeof f);
	else
		memcpy(&p->dukr, &f, sizeof f);
	p->mr = bli_cntx_get_blksz_def_dt(dt, BLIS_MR, cx);
	p->nr = bli_cntx_get_blksz_def_dt(dt, BLIS_NR, cx);
	const bool rows = bli_cntx_l3_nat_ukr_prefers_rows_dt(dt, BLIS_GEMM_UKR, cx);
	p->mrs = rows ? p->nr : 1;
	p->kernel = "blis";
	return f && p->mr > 0 && p->nr > 0 && bli_cntx_get_blksz_max_dt(dt, BLIS_MR, cx) == p->mr &&
	       bli_cntx_get_blksz_max_dt(dt, BLIS_NR, cx) == p->nr &&
	       (size_t)p->nr * es % NB_ALIGN == 0;
}

/* The portable kernel, where neither BLIS's kernel fits the layouts nor
 * nabla's AVX-512 one may run (BLIS's skx configuration below the avx512
 * level, ARM's): MR x 16 in plain C, column-preferring, BLIS's interface.
 * Its sums are a * b + c as the baseline compiles them (two roundings
 * where the others fuse them), so its bits are its own. */
#define PORTABLE_UKR(NAME, T, MR)                                                                  \
	static void NAME(dim_t m, dim_t n, dim_t k, T *restrict alpha, T *restrict a,              \
	                 T *restrict b, T *restrict beta, T *restrict c, inc_t rs_c, inc_t cs_c,   \
	                 auxinfo_t *restrict data, cntx_t *restrict cntx)                          \
	{                                                                                          \
		(void)data;                                                                        \
		(void)cntx;                                                                        \
		T ab[16][MR];                                                                      \
		memset(ab, 0, sizeof ab);                                                          \
		for (dim_t q = 0; q < k; q++)                                                      \
			for (int j = 0; j < 16; j++)                                               \
				for (int i = 0; i < MR; i++)                                       \
					ab[j][i] += a[q * MR + i] * b[q * 16 + j];                 \
		for (dim_t j = 0; j < n; j++)                                                      \
			for (dim_t i = 0; i < m; i++) {                                            \
				T *x = c + i * rs_c + j * cs_c;                                    \
				const T v = *alpha * ab[j][i];                                     \
				*x = *beta == 0 ? v : *beta * *x + v;                              \
			}                                                                          \
	}
PORTABLE_UKR(portable_f32, float, 16)
PORTABLE_UKR(portable_f64, double, 8)

/* A column-preferring kernel of one panel of 16 floats or 8 doubles by 16
 * columns: nabla's AVX-512 pair or the portable one (cx: the context it is
 * handed, unused by both) */
static void kernel_16(num_t dt, wplan *p, sgemm_ukr_ft s, dgemm_ukr_ft d, cntx_t *cx,
                      const char *name)
{
	p->cntx = cx;
	p->sukr = s;
	p->dukr = d;
	p->mr = dt == BLIS_FLOAT ? 16 : 8;
	p->nr = 16;
	p->mrs = 1;
	p->kernel = name;
}

/* The gemm micro-kernel for the element type: nabla's 16 x 16 (8 x 16,
 * gemm_avx512.c) for floats at avx512 and where nabla's GEMM context is in
 * use at g->isa (gemm.c); else BLIS's where it fits the layouts; else
 * nabla's at avx512; else the portable one.  g->blis_ukr skips nabla's
 * (for tests).  Floats at avx512 take nabla's whatever BLIS chose, so that
 * the channel lanes (which need its 16-wide panels) follow the ISA level
 * alone: whether nabla's GEMM context is in use is a timing measurement
 * (gemm.c), which must not pick the algorithm. */
static void micro_kernel(size_t es, const nb__wino_geom *g, wplan *p)
{
	const num_t dt = es == sizeof(float) ? BLIS_FLOAT : BLIS_DOUBLE;
	const bool ours = !g->blis_ukr && (nb__gemm_cntx(g->isa) ||
	                                   (NB_GEMM_AVX512 && g->isa >= 2 && dt == BLIS_FLOAT));
	if (!ours && blis_kernel(dt, es, p))
		return;
#if NB_GEMM_AVX512
	if (ours || (!g->blis_ukr && g->isa >= 2)) {
		kernel_16(dt, p, nb__sgemm_avx512_16x16, nb__dgemm_avx512_8x16,
		          nb__gemm_cntx(g->isa), "avx512");
		return;
	}
#endif
	kernel_16(dt, p, portable_f32, portable_f64, bli_gks_query_cntx(), "portable");
}

static bool geom_ok(const nb__wino_geom *g)
{
	if (!g || g->n < 1 || g->c < 1 || g->h < 1 || g->w < 1 || g->o < 1)
		return false;
	const int64_t p[4] = {g->pt, g->pl, g->pb, g->pr};
	for (int k = 0; k < 4; k++)
		if (p[k] < 0 || p[k] > 2)
			return false;
	return g->h + g->pt + g->pb - 2 >= 1 && g->w + g->pl + g->pr - 2 >= 1;
}

const char *nb__wino_kernel(const nb__wino_geom *g, size_t es)
{
	wplan p;
	micro_kernel(es, g, &p);
	return p.kernel;
}

bool nb__wino_supported(const nb__wino_geom *g)
{
	return geom_ok(g);
}

/* Tile rows per chunk: about `bytes` of transformed data (per_row bytes a
 * tile row), each thread's share of the batch split into equal pieces. */
static int64_t chunk_rows(const wplan *p, int threads, int64_t per_row, int64_t bytes)
{
	if (threads < 1)
		threads = 1;
	int64_t want = bytes / per_row;
	if (want < 1)
		want = 1;
	const int64_t share = (p->n + threads - 1) / threads * p->th;
	const int64_t pieces = (share + want - 1) / want;
	return (share + pieces - 1) / pieces;
}

#include "ops/conv/winograd_avx512.h"

/* whether a plan of g with kernel p->kernel takes the channel lanes:
 * floats with nabla's AVX-512 kernel (at avx512: micro_kernel) */
static bool lanes_wanted(const nb__wino_geom *g, size_t es, const wplan *p)
{
	return NB_GEMM_AVX512 && es == sizeof(float) && !strcmp(p->kernel, "avx512") &&
	       !g->tile_lanes;
}

static wplan plan_of(const nb__wino_geom *g, size_t es, int threads)
{
	wplan p = {.n = g->n, .flip = g->flip};
	micro_kernel(es, g, &p);
	const int64_t oh = g->h + g->pt + g->pb - 2, ow = g->w + g->pl + g->pr - 2;
	if (!g->flip) {
		p.ci = g->c, p.co = g->o, p.hi = g->h, p.wi = g->w, p.ho = oh, p.wo = ow;
		p.pt = g->pt, p.pl = g->pl;
	} else {
		p.ci = g->o, p.co = g->c, p.hi = oh, p.wi = ow, p.ho = g->h, p.wo = g->w;
		p.pt = 2 - g->pt, p.pl = 2 - g->pl;
	}
	p.th = (p.ho + 1) / 2;
	p.tw = (p.wo + 1) / 2;
	p.nob = (p.co + p.mr - 1) / p.mr;
	p.opad = p.nob * p.mr;
	/* tile rows per chunk: V near CHUNK_BYTES */
	p.rows = chunk_rows(&p, threads, 16 * p.ci * p.tw * (int64_t)es, CHUNK_BYTES);
	const int64_t panels = (p.rows * p.tw + p.nr - 1) / p.nr;
	p.vs = nb__pad_ld(panels * p.ci * p.nr, es);
	p.ms = nb__pad_ld(p.opad * p.nr, es);
	p.mcs = p.mrs == 1 ? p.opad : 1;
	p.u_bytes = nb__align_up((size_t)(16 * p.opad * p.ci) * es);
	p.v_bytes = nb__align_up((size_t)(16 * p.vs) * es);
	p.m_bytes = nb__align_up((size_t)(16 * p.ms) * es);
	/* an input row split into even and odd columns, a ring of four rows
	 * after B^T, and a spare output row */
	p.row_bytes = nb__align_up((size_t)(2 * (p.tw + 1) + 16 * p.tw + 2 * p.tw) * es);
	p.slice_bytes = p.v_bytes + p.m_bytes + p.row_bytes;
#if NB_GEMM_AVX512
	if (lanes_wanted(g, es, &p))
		cl_plan(&p, threads, es);
#endif
	return p;
}

bool nb__wino_channel_lanes(const nb__wino_geom *g, size_t elem_size)
{
	return nb__wino_supported(g) && plan_of(g, elem_size, 1).cl;
}

size_t nb__wino_workspace(const nb__wino_geom *g, size_t elem_size, int threads)
{
	if (!nb__wino_supported(g))
		return 0;
	const wplan p = plan_of(g, elem_size, threads);
	return p.u_bytes + (size_t)(threads > 1 ? threads : 1) * p.slice_bytes;
}

/* The weight gradient's plan: the forward's geometry (flip false), its
 * chunks sized so that dM and V together are near CHUNK_BYTES */
static wplan plan_wgrad(const nb__wino_geom *g, size_t es, int threads)
{
	nb__wino_geom f = *g;
	f.flip = false;
	wplan p = plan_of(&f, es, threads);
	/* cl here: the transforms in zmm (cl_wg_input, cl_wg_dy) where the
	 * panels are nabla's 16 wide */
	p.cl = lanes_wanted(g, es, &p);
	p.ncb = (p.ci + p.nr - 1) / p.nr;
	p.cpad = p.ncb * p.nr;
	/* chunks sized by the channels rounded up to 16, not by the kernel's
	 * panels: a chunk's tiles are a block of the sums' k, so the same
	 * chunks whatever kernel runs keep the bits the kernel's alone */
	const int64_t ch16 = (p.co + 15) / 16 * 16 + (p.ci + 15) / 16 * 16;
	p.rows = chunk_rows(&p, threads, 16 * ch16 * p.tw * (int64_t)es, WGRAD_CHUNK_BYTES);
	p.kmax = p.rows * p.tw;
	const int64_t line = (int64_t)(NB_ALIGN / es);
	p.as = nb__pad_ld((p.nob * p.kmax * p.mr + line - 1) / line * line, es);
	p.bs = nb__pad_ld(p.ncb * p.kmax * p.nr, es);
	p.ds = nb__pad_ld(p.opad * p.cpad, es);
	p.drs = p.mrs == 1 ? 1 : p.cpad;
	p.dcs = p.mrs == 1 ? p.opad : 1;
	p.du_bytes = nb__align_up((size_t)(16 * p.ds) * es);
	p.m_bytes = nb__align_up((size_t)(16 * p.as) * es);
	p.v_bytes = nb__align_up((size_t)(16 * p.bs) * es);
	/* a ring of four input rows interleaved [2 tw + 2][NR], or two dy
	 * rows interleaved [2 tw][MR] */
	p.row_bytes = nb__align_up((size_t)(4 * (2 * p.tw + 2) * p.nr + 2 * 2 * p.tw * p.mr) * es);
	p.slice_bytes = p.du_bytes + p.m_bytes + p.v_bytes + p.row_bytes;
	return p;
}

size_t nb__wino_wgrad_workspace(const nb__wino_geom *g, size_t elem_size, int threads)
{
	if (!nb__wino_supported(g))
		return 0;
	return (size_t)(threads > 1 ? threads : 1) * plan_wgrad(g, elem_size, threads).slice_bytes;
}

/* helpers inlined into their callers, so into each ISA variant (ops/variants.h) */
#define WINO_INLINE static inline __attribute__((always_inline))

#define ukr_f32 sukr
#define ukr_f64 dukr
#define UKR TSFX(ukr)
/* the transforms loop over a panel's MR or NR lanes (6, 8 or 16 with
 * BLIS's AVX2 kernels): at AVX-512 in 256-bit vectors, which measured
 * 8-10% faster than 512-bit ones on Zen 4 (docs/design.md) */
#define NB_VARIANTS_AVX512_TGT NB_TARGET_AVX512_256
#define NB_VARIANTS_IMPL "ops/conv/winograd_impl.h"
#include "ops/variants.h"

/* ---- the convolution op's entry points ------------------------------------ */

nb__wino_geom nb__conv_wino_geom(const nb__conv_geom *g, bool flip)
{
	return (nb__wino_geom){.n = g->n,
	                       .c = g->c,
	                       .h = g->h,
	                       .w = g->w,
	                       .o = g->o,
	                       .pt = g->pt,
	                       .pl = g->pl,
	                       .pb = g->pb,
	                       .pr = g->pr,
	                       .flip = flip};
}

size_t nb__wino_conv_workspace(const nb__conv_geom *g, const nb__conv_plan *p)
{
	nb__wino_geom wg = nb__conv_wino_geom(g, p->pass == CONV_PASS_INPUT_GRAD);
	wg.isa = p->isa;
	if (p->pass == CONV_PASS_WEIGHT_GRAD)
		return nb__wino_wgrad_workspace(&wg, p->es, p->threads);
	return nb__wino_workspace(&wg, p->es, p->threads);
}

/* the variant of the geometry's ISA level (nb__wino_geom isa) */
void nb__wino_forward_f32(const nb__wino_geom *g, const float *in, const float *w, float *out,
                          void *ws, int threads)
{
	NB_ISA_PICK(g->isa, nb__wino_forward_f32)(g, in, w, out, ws, threads);
}
void nb__wino_forward_f64(const nb__wino_geom *g, const double *in, const double *w, double *out,
                          void *ws, int threads)
{
	NB_ISA_PICK(g->isa, nb__wino_forward_f64)(g, in, w, out, ws, threads);
}
void nb__wino_weight_grad_f32(const nb__wino_geom *g, const float *dy, const float *x, float *dw,
                              void *ws, int threads)
{
	NB_ISA_PICK(g->isa, nb__wino_weight_grad_f32)(g, dy, x, dw, ws, threads);
}
void nb__wino_weight_grad_f64(const nb__wino_geom *g, const double *dy, const double *x, double *dw,
                              void *ws, int threads)
{
	NB_ISA_PICK(g->isa, nb__wino_weight_grad_f64)(g, dy, x, dw, ws, threads);
}
