/*
 * Which kernel a convolution pass runs, on how many threads, in which
 * blocks, and the workspace that needs: the one place that decides.
 * docs/conv.md gives the measurements behind every threshold here.
 *
 * The order of the rules (path_of): depthwise, one channel, the direct
 * kernels (the forward at stride 1 by rows, the forward and weight
 * gradient, then the input gradient at stride 1, then in phases),
 * Winograd, im2col.  An explicit NB_CONV_* algorithm
 * overrides the thresholds; the shape rules of conv.c reject the ones a
 * convolution cannot take.
 */
#include "ops/conv/depthwise.h"
#include "ops/conv/direct.h"
#include "ops/conv/im2col.h"
#include "ops/conv/onechan.h"
#include "ops/conv/plan.h"
#include "ops/conv/winograd.h"

#include <stdint.h>
#include <stdlib.h>

/* The conv op reads x and w directly; backward_input knows w and the
 * gradient, plus H, W from the attributes; backward_weight knows x and the
 * gradient, plus kH, kW.  Shapes must be 4-D (the shape rules check first). */
nb__conv_geom nb__conv_geom_of(const nb_tensor *t)
{
	const int64_t *a = t->a.i;
	nb__conv_geom g = {.sh = a[A_SH],
	                   .sw = a[A_SW],
	                   .pt = a[A_PT],
	                   .pl = a[A_PL],
	                   .pb = a[A_PB],
	                   .pr = a[A_PR],
	                   .dh = a[A_DH],
	                   .dw = a[A_DW],
	                   .groups = a[A_GROUPS],
	                   .algo = (int)a[A_ALGO]};
	const int64_t *s0 = t->in[0]->shape.d, *s1 = t->in[1]->shape.d;
	const int64_t *x = s0, *w = s1;
	int64_t xd[4], wd[4];
	if (t->op == NB_OP_CONV2D_BACKWARD_INPUT) {
		x = xd;
		xd[0] = s0[0], xd[1] = s1[1] * g.groups, xd[2] = a[A_D0], xd[3] = a[A_D1];
	} else if (t->op == NB_OP_CONV2D_BACKWARD_WEIGHT) {
		x = s1, w = wd;
		wd[0] = s0[1], wd[1] = s1[1] / g.groups, wd[2] = a[A_D0], wd[3] = a[A_D1];
	}
	g.n = x[0], g.c = x[1], g.h = x[2], g.w = x[3];
	g.o = w[0], g.cg = w[1], g.kh = w[2], g.kw = w[3];
	g.og = g.o / g.groups;
	g.oh = nb__window_out(g.h, g.kh, g.sh, g.pt + g.pb, g.dh);
	g.ow = nb__window_out(g.w, g.kw, g.sw, g.pl + g.pr, g.dw);
	return g;
}

static nb__conv_pass pass_of(const nb_tensor *t)
{
	return t->op == NB_OP_CONV2D_BACKWARD_INPUT    ? CONV_PASS_INPUT_GRAD
	       : t->op == NB_OP_CONV2D_BACKWARD_WEIGHT ? CONV_PASS_WEIGHT_GRAD
	                                               : CONV_PASS_FORWARD;
}

/* ---- Winograd -------------------------------------------------------------- */

/* the shapes the Winograd kernels take */
bool nb__conv_wino_fits(const nb__conv_geom *g)
{
	nb__wino_geom wg = nb__conv_wino_geom(g, false);
	return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 &&
	       g->groups == 1 && nb__wino_supported(&wg);
}

/* Winograd runs every pass when asked for, and by default in f32 from 16
 * channels in and out, where all three passes measured at least as fast
 * as the banded im2col on one thread and on two (docs/winograd.md).  Below
 * 16 channels its GEMMs are too thin. */
static bool use_wino(size_t es, const nb__conv_geom *g)
{
	if (!nb__conv_wino_fits(g))
		return false;
	if (g->algo == NB_CONV_WINOGRAD)
		return true;
	return g->algo == NB_CONV_AUTO && es == sizeof(float) && g->c >= 16 && g->o >= 16;
}

/* Winograd with the channels in the vector lanes (floats with nabla's
 * AVX-512 kernel: nb__wino_channel_lanes) runs the forward and the input
 * gradient by default from 16 channels in and out, ahead of the direct
 * kernels.  Batch 64 on 2 threads, Intel Xeon (docs/winograd.md, "Channel
 * lanes"; `nabla bench --model conv`, GFLOP/s of the dense count,
 * alternating with the direct kernels' build): ResNet-20's 16 -> 16 at
 * 32x32 forward 183-195 -> 237-241, input gradient 189 -> 240; 32 -> 32
 * at 16x16 192-201 -> 302-307 and 194-197 -> 293-301; 32 -> 64 at 28x28
 * (rows of 28: the direct forward) 7.7-16.0 ms -> 6.3-6.8 ms. */
static bool use_wino_lanes(nb__conv_pass pass, size_t es, const nb__conv_geom *g, int isa)
{
	if (pass == CONV_PASS_WEIGHT_GRAD || g->algo != NB_CONV_AUTO || !use_wino(es, g))
		return false;
	nb__wino_geom wg = nb__conv_wino_geom(g, pass == CONV_PASS_INPUT_GRAD);
	wg.isa = isa;
	return nb__wino_channel_lanes(&wg, es);
}

/* ---- one input channel, depthwise -------------------------------------------- */

/* One group, stride 1, dilation 1, kernels up to D1_KW wide; the weight
 * gradient has kernels for 3- and 5-wide kernels only. */
static bool use_one_channel(nb__conv_pass pass, const nb__conv_geom *g)
{
	const bool shape = g->algo == NB_CONV_AUTO && g->c == 1 && g->groups == 1 && g->sh == 1 &&
	                   g->sw == 1 && g->dh == 1 && g->dw == 1 && g->kw <= D1_KW;
	return shape && (pass == CONV_PASS_FORWARD ||
	                 (pass == CONV_PASS_WEIGHT_GRAD && (g->kw == 3 || g->kw == 5)));
}

/* C/groups == 1 with several groups (or NB_CONV_DIRECT), unless im2col is
 * asked for */
static bool use_depthwise(const nb__conv_geom *g)
{
	return g->cg == 1 && (g->groups > 1 || g->algo == NB_CONV_DIRECT) &&
	       g->algo != NB_CONV_IM2COL;
}

/* ---- the direct kernels (one group, 2 or more input channels) -----------------
 * They run when asked for (NB_CONV_DIRECT: the transposed input gradient
 * where it applies, else phases) and by default (both types) for kernels
 * of 9 taps or more, when the lanes are mostly used (at least 3/4 of O,
 * dx's row or C rounded up to a block), from 2 input channels up to:
 *  - forward: 32, ahead of Winograd;
 *  - weight gradient: 64, when Winograd does not take it;
 *  - input gradient: 32, transposed if dx's rows fill its lanes and one
 *    image's padded dy stays under DT_MAX_DY, else in phases if C fills
 *    them and Winograd does not take it.
 * Measurements: docs/conv.md, "Few input channels". */
#define DT_MAX_DY (128 << 10)

/* The direct kernels copy one image padded (x, or dy for the input
 * gradient) into the workspace and index it in int64: a geometry whose
 * padded image would pass 2^31 elements (a padding near INT_MAX, which
 * the shape rules accept) goes to im2col, which never pads a copy, even
 * when NB_CONV_DIRECT asks (its sizes would overflow) */
static bool direct_sizes_ok(const nb__conv_geom *g)
{
	const double lim = 0x1p31;
	const double x =
	    (double)g->c * (double)(g->h + g->pt + g->pb) * (double)(g->w + g->pl + g->pr);
	const double dy = (double)g->o * ((double)g->oh + 2.0 * (double)g->kh * (double)g->dh) *
	                  ((double)g->ow + 2.0 * (double)g->kw * (double)g->dw);
	return x <= lim && dy <= lim;
}

static bool lanes_used(int64_t n, int64_t block)
{
	return 4 * n >= 3 * ((n + block - 1) / block * block);
}

static bool direct_auto(nb__conv_pass pass, size_t es, const nb__conv_geom *g)
{
	if (g->kh * g->kw < 9)
		return false;
	/* the input gradient's lanes: see use_direct_transposed, use_direct_phases */
	if (pass == CONV_PASS_INPUT_GRAD)
		return g->c <= 32;
	if (!lanes_used(g->o, DC_OB))
		return false;
	if (pass == CONV_PASS_FORWARD)
		return g->c <= 32;
	return g->c <= 64 && !use_wino(es, g);
}

/* The forward at stride 1 in the transposed input gradient's kernel
 * (direct.c, dr_of): by default in f32 at AVX-512, where its block holds
 * 16 output channels by 16 pixels and stores them straight into y's
 * planes, when the direct forward would run, y's rows are whole 16-pixel
 * blocks and one image's padded x stays under DT_MAX_DY.  Batch 64 on 2
 * threads (docs/conv.md): ResNet-20's 32 -> 32 layer at 16x16 measured
 * 185-220 GFLOP/s against the direct forward's 155-195, 3 -> 16 at 32x32
 * 162 against 103, 16 -> 16 3-10% faster; rows of 14, 24 or 28 pixels
 * (a partial block) measured 4-20% slower, and at AVX2 (6 channels by 16
 * pixels) 32 -> 32 10% slower, so the direct forward keeps those.
 * The weight gradient by rows (8 output channels by a 3-tap kernel row in
 * registers, pixels in the lanes) where the direct weight gradient would
 * run, for kernels 3 wide (the blocks of 8 channels) and rows of 32
 * pixels or a multiple:
 * 3 -> 16 at 32x32 0.37-0.40 ms against 0.69-0.84, 2 -> 16 0.28-0.32
 * against 0.61-0.82, 8 -> 16 0.96 against 1.39-1.47, 12 -> 16 1.22-1.31
 * against 1.49-1.54; rows of 16 (8 -> 32 at 16x16: 0.55 against 0.48)
 * and 5x5 kernels (4 channels a block: 32 -> 32 at 16x16 6.0 against 4.0
 * ms) measured slower, other widths (one channel at a time) 3-6 times
 * slower, and Winograd is as fast at 16 -> 16 and faster from 32
 * channels.  Builds without the ISA variants (-Dmultiversion=false,
 * -Dnative=true, clang) run neither at level 2. */
static bool use_direct_rows(nb__conv_pass pass, size_t es, const nb__conv_geom *g, int isa)
{
	if (g->groups != 1 || g->c < 2 || g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1 ||
	    g->algo != NB_CONV_AUTO || es != sizeof(float) || NB_LANE_LEVEL(isa) != 2 ||
	    !direct_sizes_ok(g) || !direct_auto(pass, es, g))
		return false;
	if (pass == CONV_PASS_WEIGHT_GRAD)
		return g->kw == 3 && g->ow % (2 * DT_PX) == 0;
	return pass == CONV_PASS_FORWARD && g->pt < g->kh && g->pl < g->kw && g->ow % DT_PX == 0 &&
	       nb__direct_rows_x_bytes(g, es) <= DT_MAX_DY;
}

static bool use_direct(nb__conv_pass pass, size_t es, const nb__conv_geom *g)
{
	if (g->groups != 1 || g->c < 2 || pass == CONV_PASS_INPUT_GRAD || !direct_sizes_ok(g))
		return false;
	return g->algo == NB_CONV_DIRECT || (g->algo == NB_CONV_AUTO && direct_auto(pass, es, g));
}

static bool use_direct_transposed(nb__conv_pass pass, size_t es, const nb__conv_geom *g)
{
	if (g->groups != 1 || g->c < 2 || pass != CONV_PASS_INPUT_GRAD || g->sh != 1 ||
	    g->sw != 1 || g->dh != 1 || g->dw != 1 || g->pt >= g->kh || g->pl >= g->kw ||
	    !direct_sizes_ok(g))
		return false;
	/* by default only while one image's padded dy, which each block of dx's
	 * channels sweeps, stays small enough for L2: 32 -> 64 channels at
	 * 28x28 (250 KiB) measured 15.2 ms against Winograd's 11.7-16.2 and
	 * im2col's 13.0 (batch 64), ResNet-20's layers take 39-72 KiB */
	return g->algo == NB_CONV_DIRECT ||
	       (g->algo == NB_CONV_AUTO && direct_auto(pass, es, g) && lanes_used(g->w, DT_PX) &&
	        nb__direct_transposed_dy_bytes(g, es) <= DT_MAX_DY);
}

static bool use_direct_phases(nb__conv_pass pass, size_t es, const nb__conv_geom *g)
{
	if (g->groups != 1 || g->c < 2 || pass != CONV_PASS_INPUT_GRAD ||
	    use_direct_transposed(pass, es, g) || !direct_sizes_ok(g))
		return false;
	return g->algo == NB_CONV_DIRECT || (g->algo == NB_CONV_AUTO && direct_auto(pass, es, g) &&
	                                     lanes_used(g->c, DC_OB) && !use_wino(es, g));
}

/* The kernel a pass runs: the one place that orders the rules above. */
static nb__conv_path path_of(nb__conv_pass pass, size_t es, const nb__conv_geom *g, int isa)
{
	if (use_depthwise(g))
		return CONV_PATH_DEPTHWISE;
	if (use_one_channel(pass, g))
		return CONV_PATH_ONE_CHANNEL;
	if (use_wino_lanes(pass, es, g, isa))
		return CONV_PATH_WINOGRAD;
	if (use_direct_rows(pass, es, g, isa))
		return CONV_PATH_DIRECT_ROWS;
	if (use_direct(pass, es, g))
		return CONV_PATH_DIRECT;
	if (use_direct_transposed(pass, es, g))
		return CONV_PATH_DIRECT_TRANSPOSED;
	if (use_direct_phases(pass, es, g))
		return CONV_PATH_DIRECT_PHASES;
	if (use_wino(es, g))
		return CONV_PATH_WINOGRAD;
	return CONV_PATH_IM2COL;
}

/* ---- threads and blocks ---------------------------------------------------------
 * Three ways to run a batch:
 *  - serial: small convolutions (below PAR_WORK multiply-adds) run on the
 *    calling thread only, GEMM included: a parallel region would cost more
 *    than it saves;
 *  - batch threads: each thread takes whole images (with a single-threaded
 *    GEMM) and its own slice of the workspace: for im2col (and the
 *    one-channel kernels) when the batch splits evenly over the threads,
 *    for the direct kernels and Winograd whenever there are 2 images or
 *    more;
 *  - otherwise im2col takes images one at a time with BLIS's threads
 *    inside the GEMM and OpenMP inside im2col / col2im. */
#define PAR_WORK (2 * NB_PAR_MIN)

/* multiply-adds of the pass (at the dense count) */
static double work_of(const nb__conv_geom *g)
{
	return (double)g->n * (double)(g->o * g->oh * g->ow) * (double)(g->cg * g->kh * g->kw);
}

/* Columns per GEMM.  One image of a small layer is a thin GEMM (LeNet's
 * conv2: 16 x 100 x 150; ResNet's last stage: 64 x 64 x 576), far below
 * BLIS's peak, and a large one makes a column matrix that leaves the L2
 * cache (ResNet's first stage: 144 x 1024).  So a GEMM covers a block of
 * about target_cols columns: either a chunk of whole images side by side,
 * or a band of output rows of one image.  The target keeps the column
 * matrix near 256 KiB (f32), and at least 512 columns (docs/conv.md,
 * "Blocks"). */
static int64_t target_cols(const nb__conv_geom *g)
{
	const int64_t t = 65536 / (g->cg * g->kh * g->kw);
	return t > 512 ? t : 512;
}

/* Output rows per band: oH (whole images) unless an image is at least
 * 1.5 targets wide; the wide layout always takes whole images. */
static int64_t rows_for(const nb__conv_geom *g)
{
	const int64_t p = g->oh * g->ow, t = target_cols(g);
	const int64_t bands = (p + t / 2) / t;
	if (nb__im2col_wide(g) || bands < 2)
		return g->oh;
	return (g->oh + bands - 1) / bands;
}

/* Images per chunk: each thread splits its share of the batch evenly into
 * pieces of at most this many images (1 when images are cut into bands). */
static int64_t chunk_for(const nb__conv_geom *g, int threads)
{
	const int64_t per = (g->n + threads - 1) / threads, p = nb__im2col_cols(g);
	const int64_t want = (target_cols(g) + p - 1) / p;
	if (want <= 1 || per <= 1 || rows_for(g) < g->oh)
		return 1;
	const int64_t pieces = (per + want - 1) / want;
	return (per + pieces - 1) / pieces;
}

/* im2col's (and the one-channel kernels') batch threads: all, when the
 * batch splits evenly or is large; else BLIS's threads */
static void even_threads(const nb__conv_geom *g, int th, nb__conv_plan *p)
{
	if (th >= 2 && work_of(g) >= PAR_WORK) {
		if (g->n >= 2 && (g->n % th == 0 || g->n >= 4 * th))
			p->threads = th;
		else
			p->blis_threads = true;
	}
}

/* the plan for th threads, workspace aside */
static nb__conv_plan plan_for(nb__conv_pass pass, size_t es, const nb__conv_geom *g, int th,
                              int isa)
{
	nb__conv_plan p = {.path = path_of(pass, es, g, isa),
	                   .pass = pass,
	                   .es = es,
	                   .threads = 1,
	                   .chunk = 1,
	                   .rows = g->oh};
	const double work = work_of(g);
	switch (p.path) {
	case CONV_PATH_DEPTHWISE: /* parallel over planes, no workspace */
		p.threads = th;
		break;
	case CONV_PATH_DIRECT:
	case CONV_PATH_DIRECT_TRANSPOSED:
	case CONV_PATH_DIRECT_ROWS:
	case CONV_PATH_DIRECT_PHASES: /* images need not split evenly (no GEMM to balance) */
		if (th >= 2 && g->n >= 2 && work >= PAR_WORK)
			p.threads = g->n < th ? (int)g->n : th;
		/* fewer images than threads (one, for inference): the forward
		 * splits each image's rows instead */
		if (pass == CONV_PASS_FORWARD && th >= 2 && g->n < th && g->oh >= 2 &&
		    work >= PAR_WORK)
			p.row_threads = th < g->oh ? th : (int)g->oh;
		break;
	case CONV_PATH_WINOGRAD: /* all threads, for a batch worth splitting */
		p.threads = th > 1 && g->n >= 2 && work >= PAR_WORK ? th : 1;
		break;
	case CONV_PATH_ONE_CHANNEL:
		even_threads(g, th, &p);
		p.blis_threads = false;
		break;
	case CONV_PATH_IM2COL:
	case CONV_PATH_COUNT:
		even_threads(g, th, &p);
		p.rows = rows_for(g);
		p.chunk = chunk_for(g, p.threads);
		break;
	}
	return p;
}

nb__conv_plan nb__conv_plan_of(const nb_tensor *t, const nb__conv_geom *g, int team, int isa)
{
	nb__conv_plan p = plan_for(pass_of(t), t->g->esize, g, team, isa);
	p.team = team;
	p.isa = isa;
	return p;
}

size_t nb__conv_plan_node(const nb_tensor *t, const nb_exec *x, void *out)
{
	nb__conv_node_plan *np = out;
	np->geom = nb__conv_geom_of(t);
	np->plan = nb__conv_plan_of(t, &np->geom, x->threads, x->isa);
	return nb__conv_paths[np->plan.path].workspace(&np->geom, &np->plan);
}

/* ---- the dispatch table ------------------------------------------------------------ */

#define ENTRIES(F, I, W)                                                                           \
	.forward_f32 = NB_ISA_TABLE(F##_f32), .forward_f64 = NB_ISA_TABLE(F##_f64),                \
	.input_grad_f32 = NB_ISA_TABLE(I##_f32), .input_grad_f64 = NB_ISA_TABLE(I##_f64),          \
	.weight_grad_f32 = NB_ISA_TABLE(W##_f32), .weight_grad_f64 = NB_ISA_TABLE(W##_f64)
#define none_f32_base NULL
#define none_f32_avx2 NULL
#define none_f32_avx512 NULL
#define none_f64_base NULL
#define none_f64_avx2 NULL
#define none_f64_avx512 NULL

const nb__conv_family nb__conv_paths[CONV_PATH_COUNT] = {
    [CONV_PATH_IM2COL] = {"im2col", nb__im2col_workspace,
                          ENTRIES(nb__im2col_forward, nb__im2col_input_grad,
                                  nb__im2col_weight_grad)},
    [CONV_PATH_DIRECT] = {"direct", nb__direct_workspace,
                          ENTRIES(nb__direct_forward, none, nb__direct_weight_grad)},
    [CONV_PATH_DIRECT_TRANSPOSED] = {"direct transposed", nb__direct_workspace,
                                     ENTRIES(none, nb__direct_input_grad_transposed, none)},
    [CONV_PATH_DIRECT_ROWS] = {"direct rows", nb__direct_workspace,
                               ENTRIES(nb__direct_forward_rows, none, nb__direct_weight_grad_rows)},
    [CONV_PATH_DIRECT_PHASES] = {"direct phases", nb__direct_workspace,
                                 ENTRIES(none, nb__direct_input_grad_phases, none)},
    [CONV_PATH_ONE_CHANNEL] = {"one-channel", nb__onechan_workspace,
                               ENTRIES(nb__onechan_forward, none, nb__onechan_weight_grad)},
    [CONV_PATH_DEPTHWISE] = {"depthwise", nb__depthwise_workspace,
                             ENTRIES(nb__depthwise_forward, nb__depthwise_input_grad,
                                     nb__depthwise_weight_grad)},
    [CONV_PATH_WINOGRAD] = {"winograd", nb__wino_conv_workspace,
                            ENTRIES(nb__wino_conv_forward, nb__wino_conv_input_grad,
                                    nb__wino_conv_weight_grad)},
};
