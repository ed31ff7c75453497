/* nabla/nn.h — part of the public API; include "nabla.h" instead. */
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include "nabla.h"

#ifdef __cplusplus
extern "C" {
#endif

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
	NB_CONV_AUTO = 0, /* direct kernel for depthwise (C/groups == 1), else im2col */
	NB_CONV_IM2COL,   /* im2col + GEMM (per group), for any convolution */
	NB_CONV_DIRECT,   /* direct loops; only when C/groups == 1 (depthwise) */
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
#define NB_CONV_OPTS(stride, pad)                                                \
	((nb_conv2d_opts){.stride_h = (stride), .stride_w = (stride), .pad_h = (pad), \
	                  .pad_w = (pad)})

/* bias may be NULL.  Gradients flow to x, w and bias. */
nb_tensor *nb_conv2d(nb_tensor *x, nb_tensor *w, nb_tensor *bias, nb_conv2d_opts opts);

/* ---- pooling --------------------------------------------------------------
 * Square windows on [N, C, H, W]; stride 0 means stride = kernel (PyTorch's
 * default); pad (at most kernel/2) is added on every side.  Output size
 * floor((H + 2 pad - kernel) / stride) + 1. */

/* Max over the window; padding never wins (it is -infinity).  Ties and the
 * gradient go to the first maximum in row-major window order; NaN
 * propagates. */
nb_tensor *nb_maxpool2d(nb_tensor *x, int kernel, int stride, int pad);
/* Mean over the window counting padded zeros (PyTorch's default
 * count_include_pad = True): always divided by kernel*kernel. */
nb_tensor *nb_avgpool2d(nb_tensor *x, int kernel, int stride, int pad);
/* Mean over H and W: [N, C, H, W] -> [N, C]. */
nb_tensor *nb_global_avgpool(nb_tensor *x);

#ifdef __cplusplus
}
#endif
#endif
