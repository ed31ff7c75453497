/* nabla/nn.h — part of the public API; include "nabla.h" instead. */
/* the core types first, outside the guard: whichever header comes first,
 * nabla.h then includes this one with them defined */
#include "nabla.h"

#ifndef NABLA_NN_H
#define NABLA_NN_H

#ifdef __cplusplus
extern "C" {
#endif

/* ==== batch normalisation and dropout (src/ops/norm.c, docs/norm.md) ==== */

/* With as_written false (a zero-initialised struct, as in nabla 0.1) a 0
 * eps or momentum means its default; nb_batchnorm_defaults() gives the
 * defaults with as_written true, from which momentum 0 (running
 * statistics that never move, as PyTorch's momentum=0) can be asked for. */
typedef struct nb_batchnorm_opts {
	double eps;      /* added to the variance; default 1e-5 (must be > 0) */
	double momentum; /* running = (1-m) running + m batch (PyTorch's
	                  * convention); default 0.1, must be in [0, 1] (0: the
	                  * running statistics stay as they are) */
	bool relu;       /* y = max(0, batchnorm(x)) in the same pass (and its
	                  * gradient masked inside the backward pass): what
	                  * nb_relu(nb_batchnorm(...)) computes, one pass less
	                  * each way */
	/* true: every field is taken as written, 0 included (set by
	 * nb_batchnorm_defaults); false: a 0 field means its default */
	bool as_written;
} nb_batchnorm_opts;

/* {eps 1e-5, momentum 0.1, relu false, as_written true} */
NB_API nb_batchnorm_opts nb_batchnorm_defaults(void);

/* Batch normalisation of x [N,C] (per feature) or [N,C,H,W] (per channel);
 * gamma, beta, running_mean and running_var have shape [C].
 *
 * Training mode (nb_graph_training): per channel, over the M = N*H*W
 * values, mu = mean, var = BIASED variance (divide by M);
 * y = gamma (x - mu) / sqrt(var + eps) + beta.  The forward run also
 * updates the running statistics in place:
 *   running_mean = (1-m) running_mean + m mu
 *   running_var  = (1-m) running_var  + m var * M/(M-1)   (UNBIASED, as PyTorch)
 * M = 1 in training mode is a run-time error (NB_ERR_VALUE).
 * Eval mode: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta,
 * running statistics untouched.  The mode is read at every run (no
 * recompiling).  Running statistics must be leaves that take no gradient
 * (constants or state); they are written in place. */
NB_API nb_tensor *nb_batchnorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta,
                               nb_tensor *running_mean, nb_tensor *running_var,
                               nb_batchnorm_opts o);

/* Inverted dropout: in training mode each element is kept with
 * probability 1-p and scaled by 1/(1-p), else zeroed; the identity in eval
 * mode.  A new mask is drawn from the graph's seeded RNG at every run, so
 * runs are reproducible given nb_graph_seed.  p must be in [0, 1). */
NB_API nb_tensor *nb_dropout(nb_tensor *x, double p);

/* ==== end of batch normalisation and dropout ==== */

/* ---- convolution --------------------------------------------------------
 * Layouts are PyTorch's, so weights interchange: input x [N, C, H, W],
 * weight w [O, C/groups, kH, kW], optional bias [O], output [N, O, oH, oW].
 * Like every deep-learning framework, "convolution" is cross-correlation:
 * the kernel is not flipped,
 *   y[n,o,i,j] = b[o] + sum_{c,m,k} w[o,c,m,k] x[n, g*C/groups + c,
 *                                               i*sH - padT + m*dH,
 *                                               j*sW - padL + k*dW]
 * with zeros outside the input (g: the group of o).  Output size per axis:
 *   oH = floor((H + padT + padB - dH*(kH-1) - 1) / sH) + 1.
 * See docs/conv.md. */

typedef enum nb_padding {
	NB_PAD_EXPLICIT = 0, /* pad_h rows above and below, pad_w columns left and right */
	NB_PAD_VALID,        /* no padding */
	/* TensorFlow's "same": out = ceil(in / stride); the total padding
	 * max((out-1)*stride + dilation*(k-1) + 1 - in, 0) is split with the
	 * odd pixel at the bottom/right, so even kernels keep H x W at stride 1 */
	NB_PAD_SAME,
} nb_padding;

typedef enum nb_conv_algo {
	NB_CONV_AUTO = 0, /* per pass, the kernel measured fastest for the
	                     geometry: the rules and their thresholds are in
	                     docs/conv.md ("Choosing a kernel") */
	NB_CONV_IM2COL,   /* im2col + GEMM (per group), for any convolution */
	NB_CONV_DIRECT,   /* direct loops: depthwise, or one group (any
	                     stride, padding, dilation) */
	NB_CONV_WINOGRAD, /* Winograd F(2x2, 3x3) for all three passes; only 3x3
	                     kernels, stride 1, dilation 1, groups 1, padding 0..2 */
} nb_conv_algo;

/* Zero means the default for every field: stride 1, no padding, dilation
 * 1, one group, automatic algorithm. */
typedef struct nb_conv2d_opts {
	int stride_h, stride_w;
	int pad_h, pad_w; /* NB_PAD_EXPLICIT only */
	nb_padding padding;
	int dilation_h, dilation_w;
	int groups; /* C and O must be divisible by it; C == groups: depthwise */
	nb_conv_algo algo;
} nb_conv2d_opts;

/* Square stride and symmetric explicit padding, the common case. */
#define NB_CONV_OPTS(stride, pad)                                                                  \
	((nb_conv2d_opts){                                                                         \
	    .stride_h = (stride), .stride_w = (stride), .pad_h = (pad), .pad_w = (pad)})

/* bias may be NULL.  Gradients flow to x, w and bias. */
NB_API nb_tensor *nb_conv2d(nb_tensor *x, nb_tensor *w, nb_tensor *bias, nb_conv2d_opts opts);

/* ---- pooling --------------------------------------------------------------
 * Square windows on [N, C, H, W]; stride 0 means stride = kernel (PyTorch's
 * default); pad (at most kernel/2) is added on every side.  Output size
 * floor((H + 2 pad - kernel) / stride) + 1. */

/* Max over the window; padding never wins (it is -infinity).  Ties and the
 * gradient go to the first maximum in row-major window order; NaN
 * propagates. */
NB_API nb_tensor *nb_maxpool2d(nb_tensor *x, int kernel, int stride, int pad);
/* Mean over the window counting padded zeros (PyTorch's default
 * count_include_pad = True): always divided by kernel*kernel. */
NB_API nb_tensor *nb_avgpool2d(nb_tensor *x, int kernel, int stride, int pad);
/* Mean over H and W: [N, C, H, W] -> [N, C]. */
NB_API nb_tensor *nb_global_avgpool(nb_tensor *x);

#ifdef __cplusplus
}
#endif
#endif
