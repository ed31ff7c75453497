/* nabla/layers.h — layer builders; include "nabla.h" instead. */
/* the core types first, outside the guard: whichever header comes first,
 * nabla.h then includes this one with them defined */
#include "nabla.h"

#ifndef NABLA_LAYERS_H
#define NABLA_LAYERS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Dense (fully connected) layer: y = x W^T + b with W [units, in] and
 * b [units], PyTorch's nn.Linear layout, named "<name>.w" and "<name>.b".
 * x is [N, in] (or [..., in]).  Default initialisation is PyTorch's:
 * U(-1/sqrt(in), 1/sqrt(in)) for both. */
typedef struct nb_dense_opts {
	bool no_bias;
	bool custom_init; /* use w_init and b_init below */
	nb_init w_init, b_init;
} nb_dense_opts;

NB_API nb_tensor *nb_dense(nb_tensor *x, int64_t units, const char *name);
/* The same with options (nb_dense: all zero), as nb_conv2d_layer. */
NB_API nb_tensor *nb_dense_layer(nb_tensor *x, int64_t units, const char *name, nb_dense_opts o);
/* Deprecated name of nb_dense_layer, kept for this release. */
NB_API nb_tensor *nb_dense_ex(nb_tensor *x, int64_t units, const char *name, nb_dense_opts o);

/* 2-D convolution layer: weight "<name>.w" [out, in/groups, k, k] and,
 * unless no_bias, "<name>.b" [out]; PyTorch's default init
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) unless custom_init. */
typedef struct nb_conv_layer_opts {
	nb_conv2d_opts conv;
	bool no_bias;
	bool custom_init;
	nb_init w_init, b_init;
} nb_conv_layer_opts;

NB_API nb_tensor *nb_conv2d_layer(nb_tensor *x, int64_t out_channels, int kernel, const char *name,
                                  nb_conv_layer_opts o);
/* Depthwise K x K (groups = channels) then pointwise 1x1, no biases:
 * "<name>.depthwise.w" [C,1,k,k] and "<name>.pointwise.w" [out,C,1,1]. */
NB_API nb_tensor *nb_separable_conv2d_layer(nb_tensor *x, int64_t out_channels, int kernel,
                                            const char *name, nb_conv2d_opts o);

typedef enum nb_shortcut {
	NB_SHORTCUT_A = 0, /* parameter-free: stride-2 subsampling, zero channels */
	NB_SHORTCUT_B,     /* 1x1 convolution (stride s) + batchnorm */
} nb_shortcut;

/* ResNet basic block: conv3x3(stride) BN ReLU conv3x3 BN, plus the shortcut
 * (identity when the shape is kept), then ReLU.  Layers "<name>.conv1",
 * "<name>.bn1", "<name>.conv2", "<name>.bn2"; a projection shortcut is
 * "<name>.shortcut" (option A: the parameter-free selection, which needs
 * out_channels >= the input's channels; option B: a 1x1 convolution, with
 * "<name>.shortcut_bn").  The result is named "<name>".  docs/layers.md. */
NB_API nb_tensor *nb_basic_block(nb_tensor *x, int64_t out_channels, int stride, nb_shortcut sc,
                                 const char *name);
/* ResNet bottleneck block (ResNet-50): 1x1 (mid) BN ReLU, 3x3 (mid, stride)
 * BN ReLU, 1x1 (out = 4 mid) BN, plus identity or 1x1-projection shortcut,
 * then ReLU. */
NB_API nb_tensor *nb_bottleneck_block(nb_tensor *x, int64_t mid_channels, int stride,
                                      const char *name);

/* ---- model summary ------------------------------------------------------
 * A layer is the set of parameters and state (running statistics) sharing
 * a name prefix up to the last '.': "fc1.w" and "fc1.b" are layer "fc1",
 * "layer1.0.bn1.gamma" is layer "layer1.0.bn1"; a name without a '.' is a
 * layer of its own.  An optimizer's state ("fc1.w.m") is not part of the
 * model and is not counted.  Parameter-free steps (activations, pooling,
 * the option-A shortcut) have no row.
 *
 * A layer's output shape is that of the forward node named like the layer
 * (the builders name their results), else that of the last forward node
 * reading one of the layer's tensors (the bias add of a dense layer whose
 * result was renamed, each half of a separable convolution). */
typedef struct nb_layer_info {
	char name[128];
	nb_shape output; /* ndim -1 when no forward node reads the layer */
	int64_t params;  /* trainable elements */
	int64_t state;   /* non-trainable elements (running statistics) */
} nb_layer_info;

/* Fills up to max rows (rows may be NULL when max is 0), in the order the
 * layers' first tensors were created; returns the number of layers, which
 * may exceed max. */
NB_API int nb_summary(const nb_graph *g, nb_layer_info *rows, int max);
NB_API int64_t nb_count_params(const nb_graph *g);
/* A table: layer, output shape, parameters; then the totals (trainable,
 * and the non-trainable running statistics). */
NB_API void nb_summary_print(const nb_graph *g, FILE *fp);

/* batch normalisation with its own parameters and running statistics
 * (nb_batchnorm and nb_batchnorm_opts: nabla/nn.h) */
/* Creates parameters <name>.gamma (ones) and <name>.beta (zeros) and state
 * <name>.running_mean (zeros) and <name>.running_var (ones), all [C]
 * with C = x's dimension 1, and applies nb_batchnorm. */
NB_API nb_tensor *nb_batchnorm_layer(nb_tensor *x, const char *name, nb_batchnorm_opts o);

#ifdef __cplusplus
}
#endif
#endif
