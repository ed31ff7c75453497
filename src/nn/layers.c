/*
 * Layer builders: small functions that create named parameters and wire
 * ops together.  They add nothing the ops cannot do; they fix names and
 * initialisations so models read like their diagrams.
 */
#include "graph/internal.h"

#include <limits.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

/* "<prefix>.<suffix>", truncated safely */
static const char *join(char *buf, size_t n, const char *prefix, const char *suffix)
{
	if (snprintf(buf, n, "%s.%s", prefix ? prefix : "dense", suffix) >= (int)n)
		buf[n - 1] = 0; /* a truncated name still works; it may collide */
	return buf;
}

nb_tensor *nb_dense_layer(nb_tensor *x, int64_t units, const char *name, nb_dense_opts o)
{
	if (!x)
		return NULL;
	nb_graph *g = x->g;
	if (g->status != NB_OK)
		return g->placeholder;
	char buf[256];
	if (x->shape.ndim < 1 || units <= 0) {
		char b[128];
		nb__fail(
		    g, NB_ERR_SHAPE,
		    "dense(%s): needs units > 0 (got %lld) and an input with a feature axis, got %s",
		    name ? name : "", (long long)units, nb_shape_str(x->shape, b, sizeof b));
		return g->placeholder;
	}
	int64_t in = x->shape.d[x->shape.ndim - 1];
	double r = 1.0 / sqrt((double)in);
	nb_init wi = o.custom_init ? o.w_init : NB_UNIFORM(-r, r);
	nb_init bi = o.custom_init ? o.b_init : NB_UNIFORM(-r, r);
	nb_tensor *w = nb_param(g, join(buf, sizeof buf, name, "w"), NB_SHAPE(units, in), wi);
	nb_tensor *y = nb_matmul_t(x, w, false, true);
	if (!o.no_bias) {
		nb_tensor *b = nb_param(g, join(buf, sizeof buf, name, "b"), NB_SHAPE(units), bi);
		y = nb_add(y, b);
	}
	return nb_set_name(y, name);
}

nb_tensor *nb_dense(nb_tensor *x, int64_t units, const char *name)
{
	return nb_dense_layer(x, units, name, (nb_dense_opts){0});
}

nb_tensor *nb_dense_ex(nb_tensor *x, int64_t units, const char *name, nb_dense_opts o)
{
	return nb_dense_layer(x, units, name, o);
}

/* ---- convolution layers ------------------------------------------------------ */

nb_tensor *nb_conv2d_layer(nb_tensor *x, int64_t out_channels, int kernel, const char *name,
                           nb_conv_layer_opts o)
{
	if (!x)
		return NULL;
	nb_graph *g = x->g;
	if (g->status != NB_OK)
		return g->placeholder;
	char buf[256], b[128];
	int groups = o.conv.groups > 0 ? o.conv.groups : 1;
	if (x->shape.ndim != 4 || out_channels <= 0 || kernel <= 0 || x->shape.d[1] % groups) {
		nb__fail(
		    g, NB_ERR_SHAPE,
		    "conv2d_layer(%s): needs an [N,C,H,W] input with C divisible by groups %d, out_channels > 0 and kernel > 0; got %s, %lld, %d",
		    name ? name : "", groups, nb_shape_str(x->shape, b, sizeof b),
		    (long long)out_channels, kernel);
		return g->placeholder;
	}
	int64_t cin = x->shape.d[1] / groups;
	double r = 1.0 / sqrt((double)cin * kernel * kernel); /* in double: no int64 overflow */
	nb_init wi = o.custom_init ? o.w_init : NB_UNIFORM(-r, r);
	nb_init bi = o.custom_init ? o.b_init : NB_UNIFORM(-r, r);
	nb_tensor *w = nb_param(g, join(buf, sizeof buf, name, "w"),
	                        NB_SHAPE(out_channels, cin, kernel, kernel), wi);
	nb_tensor *bias = NULL;
	if (!o.no_bias)
		bias = nb_param(g, join(buf, sizeof buf, name, "b"), NB_SHAPE(out_channels), bi);
	return nb_set_name(nb_conv2d(x, w, bias, o.conv), name);
}

nb_tensor *nb_separable_conv2d_layer(nb_tensor *x, int64_t out_channels, int kernel,
                                     const char *name, nb_conv2d_opts o)
{
	if (!x)
		return NULL;
	nb_graph *g = x->g;
	if (g->status != NB_OK)
		return g->placeholder;
	char buf[256], b[128];
	if (x->shape.ndim != 4 || x->shape.d[1] > INT_MAX) {
		nb__fail(
		    g, NB_ERR_SHAPE,
		    "separable_conv2d_layer(%s): needs an [N,C,H,W] input with C <= %d, got %s",
		    name ? name : "", INT_MAX, nb_shape_str(x->shape, b, sizeof b));
		return g->placeholder;
	}
	nb_conv_layer_opts dw = {.conv = o, .no_bias = true};
	dw.conv.groups = (int)x->shape.d[1]; /* depthwise: one group per channel */
	nb_tensor *h = nb_conv2d_layer(x, dw.conv.groups, kernel,
	                               join(buf, sizeof buf, name, "depthwise"), dw);
	nb_tensor *y = nb_conv2d_layer(h, out_channels, 1, join(buf, sizeof buf, name, "pointwise"),
	                               (nb_conv_layer_opts){.no_bias = true});
	return nb_set_name(y, name);
}

/* ---- residual blocks ----------------------------------------------------------- */

/* He (Kaiming) normal init, as the ResNet papers and the PyTorch bench use */
static nb_tensor *conv_bn_act(nb_tensor *x, int64_t out, int k, int stride, const char *name,
                              const char *conv, const char *bn, bool relu)
{
	char buf[256];
	nb_conv_layer_opts o = {.conv = NB_CONV_OPTS(stride, k / 2),
	                        .no_bias = true,
	                        .custom_init = true,
	                        .w_init = {.kind = NB_INIT_HE_NORMAL}};
	nb_tensor *h = nb_conv2d_layer(x, out, k, join(buf, sizeof buf, name, conv), o);
	join(buf, sizeof buf, name, bn);
	return nb_set_name(nb_batchnorm_layer(h, buf, (nb_batchnorm_opts){.relu = relu}), buf);
}

static nb_tensor *conv_bn(nb_tensor *x, int64_t out, int k, int stride, const char *name,
                          const char *conv, const char *bn)
{
	return conv_bn_act(x, out, k, stride, name, conv, bn, false);
}

/* conv -> batchnorm -> ReLU, the ReLU fused into the batchnorm */
static nb_tensor *conv_bn_relu(nb_tensor *x, int64_t out, int k, int stride, const char *name,
                               const char *conv, const char *bn)
{
	return conv_bn_act(x, out, k, stride, name, conv, bn, true);
}

/* Option A: y[:, pad + c] = x[:, c, ::s, ::s] with pad = (out - C)/2, other
 * channels 0 (PyTorch's F.pad(x[:, :, ::2, ::2], (0,0,0,0,pad,pad)) when
 * out - C is even): the subsampling is a 1x1 average pool of stride s (it
 * divides by 1), the zero channels an embed along axis 1 (the adjoint of
 * slice), so it has no parameter and its gradient is the adjoint
 * selection, for two memory passes each way.  The caller checks out >= C. */
static nb_tensor *shortcut_a(nb_tensor *x, int64_t out, int stride, const char *name)
{
	const int64_t cin = x->shape.d[1], pad = (out - cin) / 2;
	nb_tensor *h = stride > 1 ? nb_avgpool2d(x, 1, stride, 0) : x;
	if (!h || nb__is_placeholder(h))
		return h;
	if (out > cin) {
		nb_attrs at = {.i = {1, pad, pad + cin, out}};
		h = nb__op1(NB_OP_EMBED, h, &at);
	}
	return nb_set_name(h, name);
}

nb_tensor *nb_basic_block(nb_tensor *x, int64_t out, int stride, nb_shortcut sc, const char *name)
{
	if (!x)
		return NULL;
	nb_graph *g = x->g;
	if (g->status != NB_OK)
		return g->placeholder;
	char buf[256], b[128];
	if (x->shape.ndim != 4 || stride < 1) {
		nb__fail(g, NB_ERR_SHAPE,
		         "basic_block(%s): needs an [N,C,H,W] input and stride >= 1, got %s and %d",
		         name ? name : "", nb_shape_str(x->shape, b, sizeof b), stride);
		return g->placeholder;
	}
	bool project = stride != 1 || x->shape.d[1] != out;
	if (project && sc == NB_SHORTCUT_A && out < x->shape.d[1]) {
		nb__fail(
		    g, NB_ERR_SHAPE,
		    "basic_block(%s): an option-A shortcut pads channels with zeros, so it "
		    "needs out_channels >= the input's %lld channels, got %lld (use NB_SHORTCUT_B)",
		    name ? name : "", (long long)x->shape.d[1], (long long)out);
		return g->placeholder;
	}
	if (sc != NB_SHORTCUT_A && sc != NB_SHORTCUT_B) {
		nb__fail(g, NB_ERR_ARG, "basic_block(%s): unknown shortcut kind %d",
		         name ? name : "", (int)sc);
		return g->placeholder;
	}
	nb_tensor *h = conv_bn_relu(x, out, 3, stride, name, "conv1", "bn1");
	h = conv_bn(h, out, 3, 1, name, "conv2", "bn2");
	nb_tensor *s = x;
	if (project)
		s = sc == NB_SHORTCUT_A
		        ? shortcut_a(x, out, stride, join(buf, sizeof buf, name, "shortcut"))
		        : conv_bn(x, out, 1, stride, name, "shortcut", "shortcut_bn");
	return nb_set_name(nb_relu(nb_add(h, s)), name);
}

nb_tensor *nb_bottleneck_block(nb_tensor *x, int64_t mid, int stride, const char *name)
{
	if (!x)
		return NULL;
	nb_graph *g = x->g;
	if (g->status != NB_OK)
		return g->placeholder;
	if (x->shape.ndim != 4 || stride < 1) {
		char b[128];
		nb__fail(
		    g, NB_ERR_SHAPE,
		    "bottleneck_block(%s): needs an [N,C,H,W] input and stride >= 1, got %s and %d",
		    name ? name : "", nb_shape_str(x->shape, b, sizeof b), stride);
		return g->placeholder;
	}
	int64_t out = 4 * mid;
	nb_tensor *h = conv_bn_relu(x, mid, 1, 1, name, "conv1", "bn1");
	h = conv_bn_relu(h, mid, 3, stride, name, "conv2", "bn2");
	h = conv_bn(h, out, 1, 1, name, "conv3", "bn3");
	nb_tensor *s = x;
	if (stride != 1 || x->shape.d[1] != out)
		s = conv_bn(x, out, 1, stride, name, "shortcut", "shortcut_bn");
	return nb_set_name(nb_relu(nb_add(h, s)), name);
}

/* ---- summary ------------------------------------------------------------------------ */

/* The layer t belongs to: its name up to the last '.', into buf.  Only
 * parameters and state belong to layers, and an optimizer's state does not
 * ("fc1.w.m" has a parameter, "fc1.w", for prefix). */
static bool layer_of(const nb_graph *g, const nb_tensor *t, char *buf, size_t n)
{
	if ((t->role != NB_ROLE_PARAM && t->role != NB_ROLE_STATE) || !t->name)
		return false;
	const char *dot = strrchr(t->name, '.');
	size_t len = dot ? (size_t)(dot - t->name) : strlen(t->name);
	snprintf(buf, n, "%.*s", (int)len, t->name);
	if (t->role == NB_ROLE_STATE) {
		const nb_tensor *owner = nb_graph_find(g, buf);
		if (owner && owner->role == NB_ROLE_PARAM)
			return false;
	}
	return true;
}

/* Whether t belongs to layer `name` (the cheap name test first). */
static bool in_layer(const nb_graph *g, const nb_tensor *t, const char *name)
{
	size_t len = strlen(name);
	if (!t->name || strncmp(t->name, name, len) ||
	    (t->name[len] && (t->name[len] != '.' || strchr(t->name + len + 1, '.'))))
		return false;
	char b[128];
	return layer_of(g, t, b, sizeof b) && !strcmp(b, name);
}

/* Whether a node before node i belongs to layer `name`. */
static bool seen_before(const nb_graph *g, int i, const char *name)
{
	for (int j = 0; j < i; j++)
		if (in_layer(g, g->nodes[j], name))
			return true;
	return false;
}

/* A layer's output: the forward node named like the layer (what the
 * builders name their result), else the last forward node that reads one
 * of the layer's tensors directly -- the bias add of a dense layer, the
 * convolution, the batchnorm -- which still finds a layer whose output
 * was renamed (nb_set_name(nb_dense(h, 10, "fc3"), "logits")) and the two
 * halves of a separable convolution. */
static nb_shape layer_output(const nb_graph *g, const char *name)
{
	const nb_tensor *t = nb_graph_find(g, name);
	if (t && t->role == NB_ROLE_OP)
		return t->shape;
	for (int i = g->n_nodes - 1; i >= 0; i--) {
		t = g->nodes[i];
		if (t->role != NB_ROLE_OP || nb__is_placeholder(t))
			continue;
		for (int k = 0; k < t->n_in; k++)
			if (in_layer(g, t->in[k], name))
				return t->shape;
	}
	return (nb_shape){.ndim = -1};
}

int nb_summary(const nb_graph *g, nb_layer_info *rows, int max)
{
	if (!rows || max < 0)
		max = 0;
	int n = 0;
	char layer[128];
	for (int i = 0; g && i < g->n_nodes; i++) {
		const nb_tensor *t = g->nodes[i];
		if (!layer_of(g, t, layer, sizeof layer))
			continue;
		int k = 0, stored = n < max ? n : max;
		while (k < stored && strcmp(rows[k].name, layer))
			k++;
		if (k == stored) { /* not among the rows kept: new, or past max */
			if (stored < n && seen_before(g, i, layer))
				continue;
			k = n++;
			if (k >= max)
				continue;
			memset(&rows[k], 0, sizeof rows[k]);
			snprintf(rows[k].name, sizeof rows[k].name, "%s", layer);
			rows[k].output = layer_output(g, layer);
		}
		if (t->role == NB_ROLE_PARAM)
			rows[k].params += t->size;
		else
			rows[k].state += t->size;
	}
	return n;
}

int64_t nb_count_params(const nb_graph *g)
{
	int64_t n = 0;
	for (int i = 0; g && i < g->n_nodes; i++)
		if (g->nodes[i]->role == NB_ROLE_PARAM)
			n += g->nodes[i]->size;
	return n;
}

void nb_summary_print(const nb_graph *g, FILE *fp)
{
	if (!fp)
		return;
	int n = nb_summary(g, NULL, 0);
	nb_layer_info *rows = calloc((size_t)(n ? n : 1), sizeof *rows);
	if (!rows) {
		fprintf(fp, "summary: out of memory for %d rows\n", n);
		return;
	}
	nb_summary(g, rows, n);
	/* column widths from the contents */
	int wname = 5, wshape = 12;
	char shape[128];
	for (int i = 0; i < n; i++) {
		int k = (int)strlen(rows[i].name);
		wname = k > wname ? k : wname;
		k = rows[i].output.ndim >= 0
		        ? (int)strlen(nb_shape_str(rows[i].output, shape, sizeof shape))
		        : 1;
		wshape = k > wshape ? k : wshape;
	}
	int64_t total = 0, state = 0;
	fprintf(fp, "%-*s  %-*s  %12s\n", wname, "layer", wshape, "output shape", "parameters");
	for (int i = 0; i < n; i++) {
		snprintf(shape, sizeof shape, "-");
		if (rows[i].output.ndim >= 0)
			nb_shape_str(rows[i].output, shape, sizeof shape);
		fprintf(fp, "%-*s  %-*s  %12lld\n", wname, rows[i].name, wshape, shape,
		        (long long)rows[i].params);
		total += rows[i].params;
		state += rows[i].state;
	}
	fprintf(fp, "total: %lld trainable parameters, %lld non-trainable (running statistics)\n",
	        (long long)total, (long long)state);
	free(rows);
}
