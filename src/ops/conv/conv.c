/*
 * 2-D convolution (cross-correlation, as deep-learning frameworks define
 * it), NCHW input, OIHW weight, optional bias; strides, explicit / valid /
 * same padding, dilation and groups.  See docs/conv.md for the maths.
 *
 *   conv2d(x, w[, b])               y = W * col(x) (+ b)
 *   conv2d_backward_input(dy, w)    dx = col2im(W^T dy)           transposed conv
 *   conv2d_backward_weight(dy, x)   dW = sum_n dy_n col(x_n)^T
 *   conv2d_backward_bias(dy)        db = sum over N, H, W of dy
 *
 * The two backward ops are linear in both inputs and adjoint to the
 * forward, so their VJPs are the other two ops again: second derivatives
 * work.  This file holds the ops (shape rules, VJPs, constructor, gradcheck
 * examples, DOT labels, op table entries); policy.c picks the kernel path
 * of each node and the family files (im2col.c, direct.c, onechan.c,
 * depthwise.c, winograd.c) compute it.  Attributes: see conv.h.
 */
#include "ops/conv/plan.h"

typedef nb__conv_geom geom;
#define geom_of nb__conv_geom_of

/* ---- kernels: the one dispatch ------------------------------------------------------
 * The node's plan (policy.c, made by nb_compile: nb_exec plan) names the
 * path; the table runs it. */

#define CONV_RUN_FNS(T, SFX)                                                                       \
	static void conv_forward_##SFX(const nb_exec *ex, nb_tensor *t)                            \
	{                                                                                          \
		const nb__conv_node_plan *np = ex->plan;                                           \
		const T *b = t->n_in == 3 ? NB_IN(t, 2, T) : NULL;                                 \
		nb__conv_paths[np->plan.path].forward_##SFX[np->plan.isa](                         \
		    &np->geom, &np->plan, NB_IN(t, 0, T), NB_IN(t, 1, T), b, NB_OUT(t, T),         \
		    ex->workspace);                                                                \
	}                                                                                          \
	static void conv_backward_input_##SFX(const nb_exec *ex, nb_tensor *t)                     \
	{                                                                                          \
		const nb__conv_node_plan *np = ex->plan;                                           \
		nb__conv_paths[np->plan.path].input_grad_##SFX[np->plan.isa](                      \
		    &np->geom, &np->plan, NB_IN(t, 0, T), NB_IN(t, 1, T), NB_OUT(t, T),            \
		    ex->workspace);                                                                \
	}                                                                                          \
	static void conv_backward_weight_##SFX(const nb_exec *ex, nb_tensor *t)                    \
	{                                                                                          \
		const nb__conv_node_plan *np = ex->plan;                                           \
		nb__conv_paths[np->plan.path].weight_grad_##SFX[np->plan.isa](                     \
		    &np->geom, &np->plan, NB_IN(t, 0, T), NB_IN(t, 1, T), NB_OUT(t, T),            \
		    ex->workspace);                                                                \
	}
CONV_RUN_FNS(float, f32)
CONV_RUN_FNS(double, f64)
#undef CONV_RUN_FNS

/* db[o] = sum over n, i, j of dy[n,o,i,j]: each image's plane summed in the
 * vector lanes of the ISA level (omp simd), the images added in order in
 * double.  On threads from 2^20 values: the sum runs at about 19 values
 * per ns on one Zen 4 core, and LeNet's conv1 (301k values) took 0.016 ms
 * on one thread, 0.026 on two (the parallel region's wake-up). */
NB_KERNELS(conv_backward_bias, {
	const nb_shape s = t->in[0]->shape;
	const T *dy = NB_IN(t, 0, T);
	T *db = NB_OUT(t, T);
	const int64_t n = s.d[0], o = s.d[1], hw = s.d[2] * s.d[3];
	/* channels over the threads from 2^17 values on (LeNet's conv1, 300K,
	 * took 0.05 ms on one thread); each channel's sum keeps its order */
	NB_OMP_FOR(ex->threads, n * o * hw >= (1 << 17) && o > 1)
	for (int64_t c = 0; c < o; c++) {
		double acc = 0;
		for (int64_t i = 0; i < n; i++) {
			const T *x = dy + (i * o + c) * hw;
			T r = 0;
			NB_SIMD(reduction(+ : r))
			for (int64_t j = 0; j < hw; j++)
				r += x[j];
			acc += r;
		}
		db[c] = (T)acc;
	}
})

/* ---- shape rules ------------------------------------------------------------------ */

static nb_status need_4d(nb_tensor *t, int k, const char *what, const char *layout)
{
	char b[128];
	nb_shape s = t->in[k]->shape;
	if (s.ndim == 4)
		return NB_OK;
	return nb__op_fail(t, NB_ERR_SHAPE, "%s must be 4-D %s, got %s", what, layout,
	                   nb_shape_str(s, b, sizeof b));
}

#define LL(v) ((long long)(v))

/* The checks all three conv ops share, on the (possibly derived) input and
 * weight shapes; cg_given is the weight's in-channel count. */
static nb_status check_geom(nb_tensor *t, const geom *g, int64_t cg_given)
{
	char bx[128], bw[128];
	nb_shape xs = NB_SHAPE(g->n, g->c, g->h, g->w);
	nb_shape ws = NB_SHAPE(g->o, cg_given, g->kh, g->kw);
	nb_shape_str(xs, bx, sizeof bx);
	nb_shape_str(ws, bw, sizeof bw);
	if (g->c % g->groups)
		return nb__op_fail(
		    t, NB_ERR_SHAPE,
		    "input channels %lld (input %s) are not divisible by groups %lld", LL(g->c), bx,
		    LL(g->groups));
	if (g->o % g->groups)
		return nb__op_fail(
		    t, NB_ERR_SHAPE,
		    "output channels %lld (weight %s) are not divisible by groups %lld", LL(g->o),
		    bw, LL(g->groups));
	if (cg_given != g->c / g->groups)
		return nb__op_fail(
		    t, NB_ERR_SHAPE,
		    "weight in-channels %lld != input channels %lld / groups %lld = %lld "
		    "(input %s, weight %s)",
		    LL(cg_given), LL(g->c), LL(g->groups), LL(g->c / g->groups), bx, bw);
	if (g->oh <= 0 || g->ow <= 0)
		return nb__op_fail(
		    t, NB_ERR_SHAPE,
		    "kernel %lldx%lld (dilation %lld,%lld: spans %lldx%lld) is larger than "
		    "the padded input %lldx%lld (input %s, weight %s, padding top %lld "
		    "left %lld bottom %lld right %lld): the output size would be <= 0",
		    LL(g->kh), LL(g->kw), LL(g->dh), LL(g->dw), LL(g->dh * (g->kh - 1) + 1),
		    LL(g->dw * (g->kw - 1) + 1), LL(g->h + g->pt + g->pb), LL(g->w + g->pl + g->pr),
		    bx, bw, LL(g->pt), LL(g->pl), LL(g->pb), LL(g->pr));
	if (g->algo == NB_CONV_DIRECT && g->cg != 1 && g->groups != 1)
		return nb__op_fail(
		    t, NB_ERR_ARG,
		    "NB_CONV_DIRECT needs one group or a depthwise convolution (C/groups "
		    "== 1), got C/groups = %lld (input %s, groups %lld)",
		    LL(g->c / g->groups), bx, LL(g->groups));
	if (g->algo == NB_CONV_WINOGRAD && !nb__conv_wino_fits(g))
		return nb__op_fail(
		    t, NB_ERR_ARG,
		    "NB_CONV_WINOGRAD needs a 3x3 kernel, stride 1, dilation 1, one group "
		    "and padding 0..2, got kernel %lldx%lld, stride %lld,%lld, dilation "
		    "%lld,%lld, groups %lld, padding top %lld left %lld bottom %lld right "
		    "%lld (input %s, weight %s)",
		    LL(g->kh), LL(g->kw), LL(g->sh), LL(g->sw), LL(g->dh), LL(g->dw), LL(g->groups),
		    LL(g->pt), LL(g->pl), LL(g->pb), LL(g->pr), bx, bw);
	return NB_OK;
}

static nb_status shape_conv2d(nb_tensor *t)
{
	char b1[128];
	if (t->n_in != 2 && t->n_in != 3)
		return nb__op_fail(t, NB_ERR_ARG, "takes (x, w) or (x, w, bias), got %d inputs",
		                   t->n_in);
	nb_status st;
	if ((st = need_4d(t, 0, "input", "[N,C,H,W]")) ||
	    (st = need_4d(t, 1, "weight", "[O,C/groups,kH,kW]")))
		return st;
	geom g = geom_of(t);
	if ((st = check_geom(t, &g, t->in[1]->shape.d[1])))
		return st;
	if (t->n_in == 3) {
		nb_shape bs = t->in[2]->shape;
		if (bs.ndim != 1 || bs.d[0] != g.o)
			return nb__op_fail(t, NB_ERR_SHAPE,
			                   "bias must be [%lld] (one per output channel), got %s",
			                   LL(g.o), nb_shape_str(bs, b1, sizeof b1));
	}
	t->shape = NB_SHAPE(g.n, g.o, g.oh, g.ow);
	return NB_OK;
}

/* the incoming gradient must have the forward output's shape */
static nb_status check_dy(nb_tensor *t, const geom *g)
{
	char b1[128], b2[128];
	nb_shape want = NB_SHAPE(g->n, g->o, g->oh, g->ow), dy = t->in[0]->shape;
	if (!nb__shape_eq(dy, want))
		return nb__op_fail(
		    t, NB_ERR_SHAPE, "gradient %s does not match the convolution output %s",
		    nb_shape_str(dy, b1, sizeof b1), nb_shape_str(want, b2, sizeof b2));
	return NB_OK;
}

/* backward_input (dy, w) -> [N, C, H, W]; backward_weight (dy, x) ->
 * [O, C/groups, kH, kW] */
static nb_status shape_backward(nb_tensor *t)
{
	bool bi = t->op == NB_OP_CONV2D_BACKWARD_INPUT;
	nb_status st;
	if ((st = need_4d(t, 0, "gradient", "[N,O,oH,oW]")) ||
	    (st = need_4d(t, 1, bi ? "weight" : "input", bi ? "[O,C/groups,kH,kW]" : "[N,C,H,W]")))
		return st;
	geom g = geom_of(t);
	if ((st = check_geom(t, &g, bi ? g.cg : g.c / g.groups)) || (st = check_dy(t, &g)))
		return st;
	t->shape = bi ? NB_SHAPE(g.n, g.c, g.h, g.w) : NB_SHAPE(g.o, g.cg, g.kh, g.kw);
	return NB_OK;
}

static nb_status shape_backward_bias(nb_tensor *t)
{
	nb_status st = need_4d(t, 0, "gradient", "[N,O,oH,oW]");
	if (st)
		return st;
	t->shape = NB_SHAPE(t->in[0]->shape.d[1]);
	return NB_OK;
}

/* ---- VJPs ---------------------------------------------------------------------------
 * With C(x, w) the convolution, B(dy, w) = C^T dy the input gradient and
 * V(dy, x) the weight gradient, all three bilinear:
 *   <dy, C(x, w)> = <B(dy, w), x> = <V(dy, x), w>.
 * Hence for upstream gradients u (shaped like x) and v (shaped like w):
 *   y = C(x, w):   dx = B(g, w),      dw = V(g, x),   db = sum_{n,h,w} g
 *   B(dy, w):      d dy = C(u, w),    dw = V(dy, u)
 *   V(dy, x):      d dy = C(x, v),    dx = B(dy, v)                      */

static nb_tensor *conv_node(int op, nb_tensor *a, nb_tensor *b, const nb_attrs *at, int64_t d0,
                            int64_t d1)
{
	nb_attrs c = *at;
	c.i[A_D0] = d0;
	c.i[A_D1] = d1;
	return nb__op2(op, a, b, &c);
}

static void vjp_conv2d(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	geom k = geom_of(t);
	if (need[0])
		gin[0] = conv_node(NB_OP_CONV2D_BACKWARD_INPUT, g, t->in[1], &t->a, k.h, k.w);
	if (need[1])
		gin[1] = conv_node(NB_OP_CONV2D_BACKWARD_WEIGHT, g, t->in[0], &t->a, k.kh, k.kw);
	if (t->n_in == 3 && need[2])
		gin[2] = nb__op1(NB_OP_CONV2D_BACKWARD_BIAS, g, NULL);
}

static void vjp_backward_input(nb_tensor *t, nb_tensor *u, nb_tensor **gin, const bool *need)
{
	geom k = geom_of(t);
	if (need[0])
		gin[0] = conv_node(NB_OP_CONV2D, u, t->in[1], &t->a, 0, 0);
	if (need[1])
		gin[1] = conv_node(NB_OP_CONV2D_BACKWARD_WEIGHT, t->in[0], u, &t->a, k.kh, k.kw);
}

static void vjp_backward_weight(nb_tensor *t, nb_tensor *v, nb_tensor **gin, const bool *need)
{
	geom k = geom_of(t);
	if (need[0])
		gin[0] = conv_node(NB_OP_CONV2D, t->in[1], v, &t->a, 0, 0);
	if (need[1])
		gin[1] = conv_node(NB_OP_CONV2D_BACKWARD_INPUT, t->in[0], v, &t->a, k.h, k.w);
}

/* db = sum of dy over N, H, W is linear; its VJP broadcasts back */
static void vjp_backward_bias(nb_tensor *t, nb_tensor *v, nb_tensor **gin, const bool *need)
{
	(void)need;
	nb_shape s = t->in[0]->shape;
	gin[0] = nb__broadcast_to(nb_reshape(v, NB_SHAPE(1, s.d[1], 1, 1)), s);
}

/* ---- DOT labels ------------------------------------------------------------------------ */

static void label_conv(const nb_tensor *t, char *buf, size_t n)
{
	geom g = geom_of(t);
	size_t k = (size_t)snprintf(buf, n, "%lldx%lld", LL(g.kh), LL(g.kw));
#define PUT(...)                                                                                   \
	do {                                                                                       \
		if (k < n)                                                                         \
			k += (size_t)snprintf(buf + k, n - k, __VA_ARGS__);                        \
	} while (0)
	if (g.sh != 1 || g.sw != 1)
		PUT(g.sh == g.sw ? " stride %lld" : " stride %lld,%lld", LL(g.sh), LL(g.sw));
	if (g.pt || g.pl || g.pb || g.pr) {
		if (g.pt == g.pb && g.pl == g.pr)
			PUT(g.pt == g.pl ? " pad %lld" : " pad %lld,%lld", LL(g.pt), LL(g.pl));
		else
			PUT(" pad %lld,%lld,%lld,%lld", LL(g.pt), LL(g.pl), LL(g.pb), LL(g.pr));
	}
	if (g.dh != 1 || g.dw != 1)
		PUT(g.dh == g.dw ? " dilation %lld" : " dilation %lld,%lld", LL(g.dh), LL(g.dw));
	if (g.groups != 1)
		PUT(g.cg == 1 ? " depthwise" : " groups %lld", LL(g.groups));
	if (g.algo != NB_CONV_AUTO)
		PUT(g.algo == NB_CONV_DIRECT     ? " direct"
		    : g.algo == NB_CONV_WINOGRAD ? " winograd"
		                                 : " im2col");
#undef PUT
}

/* the kernel a conv node runs, for the profile */
static const char *kernel_conv(const nb_tensor *t, const void *plan)
{
	(void)t;
	return nb__conv_paths[((const nb__conv_node_plan *)plan)->plan.path].name;
}

/* ---- constructor -------------------------------------------------------------------------- */

/* TensorFlow's "same": out = ceil(in / s); the total padding goes half
 * before, and the odd pixel after. */
static void same_pad(int64_t in, int64_t k, int64_t s, int64_t d, int64_t *lo, int64_t *hi)
{
	int64_t out = (in + s - 1) / s, total = (out - 1) * s + d * (k - 1) + 1 - in;
	if (total < 0)
		total = 0;
	*lo = total / 2;
	*hi = total - *lo;
}

static bool opts_ok(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_conv2d_opts o)
{
	const char *xn = x ? x->name : "(null)", *wn = w ? w->name : "(null)";
	const struct {
		const char *name;
		int v;
	} pos[] = {{"stride_h", o.stride_h},
	           {"stride_w", o.stride_w},
	           {"dilation_h", o.dilation_h},
	           {"dilation_w", o.dilation_w},
	           {"groups", o.groups}},
	  pads[] = {{"pad_h", o.pad_h}, {"pad_w", o.pad_w}};
	for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
		if (pos[i].v < 0) {
			nb__fail(g, NB_ERR_ARG,
			         "conv2d(%s, %s): %s must be positive (0 means 1), got %d", xn, wn,
			         pos[i].name, pos[i].v);
			return false;
		}
	for (size_t i = 0; i < sizeof pads / sizeof pads[0]; i++)
		if (pads[i].v < 0) {
			nb__fail(g, NB_ERR_ARG, "conv2d(%s, %s): %s must be >= 0, got %d", xn, wn,
			         pads[i].name, pads[i].v);
			return false;
		}
	if ((unsigned)o.padding > NB_PAD_SAME || (unsigned)o.algo > NB_CONV_WINOGRAD) {
		nb__fail(g, NB_ERR_ARG, "conv2d(%s, %s): unknown %s %d", xn, wn,
		         (unsigned)o.padding > NB_PAD_SAME ? "padding mode" : "algorithm",
		         (unsigned)o.padding > NB_PAD_SAME ? (int)o.padding : (int)o.algo);
		return false;
	}
	if (o.padding != NB_PAD_EXPLICIT && (o.pad_h || o.pad_w)) {
		nb__fail(g, NB_ERR_ARG,
		         "conv2d(%s, %s): pad_h/pad_w (%d, %d) are only used with "
		         "NB_PAD_EXPLICIT, not with NB_PAD_%s",
		         xn, wn, o.pad_h, o.pad_w, o.padding == NB_PAD_SAME ? "SAME" : "VALID");
		return false;
	}
	/* the dilated kernel's span d (k - 1) + 1 enters the shape rule and
	 * the SAME padding: keep it far from int64 overflow */
	for (int i = 0; w && w->shape.ndim == 4 && i < 2; i++) {
		int64_t k = w->shape.d[2 + i], d = i ? o.dilation_w : o.dilation_h;
		if (k > 1 && d > 1 && d > NB_MAX_SIZE / (k - 1)) {
			nb__fail(
			    g, NB_ERR_SHAPE,
			    "conv2d(%s, %s): kernel size %lld with dilation %lld spans more than "
			    "2^60 elements",
			    xn, wn, (long long)k, (long long)d);
			return false;
		}
	}
	return true;
}

nb_tensor *nb_conv2d(nb_tensor *x, nb_tensor *w, nb_tensor *bias, nb_conv2d_opts o)
{
	nb_tensor *in[3] = {x, w, bias};
	int n = bias ? 3 : 2;
	nb_graph *g = nb__graph_of(in, n);
	if (!g)
		return NULL;
	if (g->status != NB_OK)
		return g->placeholder;
	if (!opts_ok(g, x, w, o))
		return g->placeholder;
	nb_attrs at = {.i = {[A_SH] = o.stride_h ? o.stride_h : 1,
	                     [A_SW] = o.stride_w ? o.stride_w : 1,
	                     [A_DH] = o.dilation_h ? o.dilation_h : 1,
	                     [A_DW] = o.dilation_w ? o.dilation_w : 1,
	                     [A_GROUPS] = o.groups ? o.groups : 1,
	                     [A_ALGO] = o.algo}};
	int64_t *a = at.i;
	if (o.padding == NB_PAD_EXPLICIT) {
		a[A_PT] = a[A_PB] = o.pad_h;
		a[A_PL] = a[A_PR] = o.pad_w;
	} else if (o.padding == NB_PAD_SAME && x && w && x->shape.ndim == 4 && w->shape.ndim == 4) {
		same_pad(x->shape.d[2], w->shape.d[2], a[A_SH], a[A_DH], &a[A_PT], &a[A_PB]);
		same_pad(x->shape.d[3], w->shape.d[3], a[A_SW], a[A_DW], &a[A_PL], &a[A_PR]);
	}
	return nb__op(NB_OP_CONV2D, in, n, &at);
}

/* ---- gradcheck examples --------------------------------------------------------------------
 * Random small configurations: groups 1-3 with 1-2 channels per group
 * (C/groups == 1 is depthwise, with multiplier O/C of 1 or 2), kernels 1-3
 * (rectangular too), strides and dilations 1-2, every padding mode, with
 * and without bias, both algorithms for depthwise; a quarter of them 3x3
 * stride-1 convolutions on Winograd. */

typedef struct conv_cfg {
	nb_shape x, w;
	nb_conv2d_opts o;
	bool bias;
} conv_cfg;

static int64_t rnd(nb_graph *g, int64_t n)
{
	return (int64_t)(nb__rng_next(g) % (uint64_t)n);
}

static conv_cfg rand_cfg(nb_graph *g)
{
	conv_cfg c = {0};
	int64_t groups = 1 + rnd(g, 3), cg = 1 + rnd(g, 2), og = 1 + rnd(g, 2);
	int64_t kh = 1 + rnd(g, 3), kw = rnd(g, 2) ? kh : 1 + rnd(g, 3);
	c.o.stride_h = 1 + (int)rnd(g, 2);
	c.o.stride_w = rnd(g, 2) ? c.o.stride_h : 1 + (int)rnd(g, 2);
	c.o.dilation_h = 1 + (int)rnd(g, 2);
	c.o.dilation_w = 1 + (int)rnd(g, 2);
	c.o.groups = (int)groups;
	c.o.padding = (nb_padding)rnd(g, 3);
	if (c.o.padding == NB_PAD_EXPLICIT) {
		c.o.pad_h = (int)rnd(g, 3);
		c.o.pad_w = (int)rnd(g, 3);
	}
	if (cg == 1)
		c.o.algo = rnd(g, 2) ? NB_CONV_IM2COL : NB_CONV_AUTO;
	else if (groups == 1 && rnd(g, 2)) /* the direct kernels for few channels */
		c.o.algo = NB_CONV_DIRECT;
	if (rnd(g, 4) == 0) { /* a Winograd convolution */
		groups = 1, kh = kw = 3;
		c.o = (nb_conv2d_opts){
		    .pad_h = (int)rnd(g, 3), .pad_w = (int)rnd(g, 3), .algo = NB_CONV_WINOGRAD};
	}
	int64_t h = (c.o.dilation_h ? c.o.dilation_h : 1) * (kh - 1) + 1 + rnd(g, 4);
	int64_t w = (c.o.dilation_w ? c.o.dilation_w : 1) * (kw - 1) + 1 + rnd(g, 4);
	c.x = NB_SHAPE(1 + rnd(g, 2), groups * cg, h, w);
	c.w = NB_SHAPE(groups * og, cg, kh, kw);
	c.bias = rnd(g, 2);
	return c;
}

static nb_tensor *ex_conv2d(nb_graph *g, nb_tensor **wrt, int *n)
{
	conv_cfg c = rand_cfg(g);
	wrt[0] = NB_EX_PARAM(g, "x", c.x);
	wrt[1] = NB_EX_PARAM(g, "w", c.w);
	*n = 2;
	if (c.bias)
		wrt[(*n)++] = NB_EX_PARAM(g, "b", NB_SHAPE(c.w.d[0]));
	return nb_conv2d(wrt[0], wrt[1], c.bias ? wrt[2] : NULL, c.o);
}

/* the backward ops on their own: a forward conv gives the attributes and
 * the gradient's shape; the checked inputs are fresh parameters */
static nb_tensor *ex_backward(nb_graph *g, nb_tensor **wrt, int *n, int op)
{
	conv_cfg c = rand_cfg(g);
	nb_tensor *x = NB_EX_PARAM(g, "x", c.x), *w = NB_EX_PARAM(g, "w", c.w);
	nb_tensor *y = nb_conv2d(x, w, NULL, c.o);
	if (nb__is_placeholder(y))
		return y;
	wrt[0] = NB_EX_PARAM(g, "dy", y->shape);
	*n = 2;
	if (op == NB_OP_CONV2D_BACKWARD_INPUT) {
		wrt[1] = w;
		return conv_node(op, wrt[0], w, &y->a, c.x.d[2], c.x.d[3]);
	}
	wrt[1] = x;
	return conv_node(op, wrt[0], x, &y->a, c.w.d[2], c.w.d[3]);
}

static nb_tensor *ex_backward_input(nb_graph *g, nb_tensor **wrt, int *n)
{
	return ex_backward(g, wrt, n, NB_OP_CONV2D_BACKWARD_INPUT);
}

static nb_tensor *ex_backward_weight(nb_graph *g, nb_tensor **wrt, int *n)
{
	return ex_backward(g, wrt, n, NB_OP_CONV2D_BACKWARD_WEIGHT);
}

static nb_tensor *ex_backward_bias(nb_graph *g, nb_tensor **wrt, int *n)
{
	wrt[0] = NB_EX_PARAM(g, "dy", nb__rand_shape(g, 4, 4, 4));
	*n = 1;
	return nb__op1(NB_OP_CONV2D_BACKWARD_BIAS, wrt[0], NULL);
}

const nb_opdef nb__op_conv2d = {.name = "conv2d",
                                .n_inputs = -1,
                                .shape = shape_conv2d,
                                .forward_f32 = conv_forward_f32,
                                .forward_f64 = conv_forward_f64,
                                .vjp = vjp_conv2d,
                                .label = label_conv,
                                .plan = nb__conv_plan_node,
                                .plan_bytes = sizeof(nb__conv_node_plan),
                                .kernel = kernel_conv,
                                .example = ex_conv2d};

const nb_opdef nb__op_conv2d_backward_input = {.name = "conv2d_backward_input",
                                               .n_inputs = 2,
                                               .shape = shape_backward,
                                               .forward_f32 = conv_backward_input_f32,
                                               .forward_f64 = conv_backward_input_f64,
                                               .vjp = vjp_backward_input,
                                               .label = label_conv,
                                               .plan = nb__conv_plan_node,
                                               .plan_bytes = sizeof(nb__conv_node_plan),
                                               .kernel = kernel_conv,
                                               .example = ex_backward_input};

const nb_opdef nb__op_conv2d_backward_weight = {.name = "conv2d_backward_weight",
                                                .n_inputs = 2,
                                                .shape = shape_backward,
                                                .forward_f32 = conv_backward_weight_f32,
                                                .forward_f64 = conv_backward_weight_f64,
                                                .vjp = vjp_backward_weight,
                                                .label = label_conv,
                                                .plan = nb__conv_plan_node,
                                                .plan_bytes = sizeof(nb__conv_node_plan),
                                                .kernel = kernel_conv,
                                                .example = ex_backward_weight};

const nb_opdef nb__op_conv2d_backward_bias = {.name = "conv2d_backward_bias",
                                              .n_inputs = 1,
                                              .shape = shape_backward_bias,
                                              .forward_f32 = conv_backward_bias_f32,
                                              .forward_f64 = conv_backward_bias_f64,
                                              .vjp = vjp_backward_bias,
                                              .example = ex_backward_bias};
