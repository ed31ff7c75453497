/*
 * The model zoo: the networks the notes and the benchmarks use, built from
 * the layer builders.  Layouts and initialisations follow the PyTorch
 * scripts in shared/bench so results compare like for like.
 */
#include "graph/internal.h"
#include "nn/model.h"

#include <math.h>
#include <string.h>

static nb_tensor *mlp(nb_tensor *x)
{
	nb_tensor *h = nb_relu(nb_dense(x, 256, "fc1"));
	h = nb_relu(nb_dense(h, 128, "fc2"));
	return nb_dense(h, 10, "fc3");
}

static nb_tensor *lenet(nb_tensor *x)
{
	nb_conv_layer_opts pad2 = {.conv = NB_CONV_OPTS(1, 2)};
	nb_tensor *h = nb_relu(nb_conv2d_layer(x, 6, 5, "conv1", pad2));
	h = nb_set_name(nb_maxpool2d(h, 2, 2, 0), "pool1");
	h = nb_relu(nb_conv2d_layer(h, 16, 5, "conv2", (nb_conv_layer_opts){0}));
	h = nb_set_name(nb_flatten(nb_maxpool2d(h, 2, 2, 0)), "flatten");
	h = nb_relu(nb_dense(h, 120, "fc1"));
	h = nb_relu(nb_dense(h, 84, "fc2"));
	return nb_dense(h, 10, "fc3");
}

/* Kaiming-normal weights for the classifier head, as torch_resnet20.py */
static nb_tensor *fc_he(nb_tensor *x, int64_t units, const char *name)
{
	/* after an error x is the placeholder, a scalar: it has no feature axis */
	if (x->g->status != NB_OK || x->shape.ndim < 1)
		return nb_dense(x, units, name); /* the placeholder, or the error */
	double r = 1.0 / sqrt((double)x->shape.d[x->shape.ndim - 1]);
	nb_dense_opts o = {.custom_init = true,
	                   .w_init = {.kind = NB_INIT_HE_NORMAL},
	                   .b_init = NB_UNIFORM(-r, r)};
	return nb_dense_layer(x, units, name, o);
}

static nb_tensor *stem(nb_tensor *x, int64_t channels)
{
	nb_conv_layer_opts o = {.conv = NB_CONV_OPTS(1, 1),
	                        .no_bias = true,
	                        .custom_init = true,
	                        .w_init = {.kind = NB_INIT_HE_NORMAL}};
	nb_tensor *h = nb_conv2d_layer(x, channels, 3, "conv1", o);
	return nb_batchnorm_layer(h, "bn1", (nb_batchnorm_opts){.relu = true});
}

static nb_tensor *resnet20(nb_tensor *x)
{
	nb_tensor *h = stem(x, 16);
	const int64_t width[3] = {16, 32, 64};
	char name[64];
	for (int s = 0; s < 3; s++)
		for (int b = 0; b < 3; b++) {
			snprintf(name, sizeof name, "layer%d.%d", s + 1, b);
			h = nb_basic_block(h, width[s], s > 0 && b == 0 ? 2 : 1, NB_SHORTCUT_A,
			                   name);
		}
	h = nb_set_name(nb_global_avgpool(h), "pool");
	return fc_he(h, 10, "fc");
}

/* Each bottleneck's last batchnorm starts with gamma = 0 (Goyal et al.
 * 2017, torchvision's zero_init_residual), so every block starts as its
 * shortcut: with gamma = 1 the sixteen residual branches add up, the first
 * gradients are large and the recipe's first steps diverge (loss 30-90
 * within five steps at lr 0.1, in PyTorch too; docs/layers.md).  Zeros
 * draw nothing from the graph's RNG: the other parameters are those of
 * the same seed without it. */
static nb_tensor *resnet50(nb_tensor *x)
{
	nb_tensor *h = stem(x, 64);
	const int blocks[4] = {3, 4, 6, 3};
	const int64_t mid[4] = {64, 128, 256, 512};
	char name[64], bn3[80];
	for (int s = 0; s < 4; s++)
		for (int b = 0; b < blocks[s]; b++) {
			snprintf(name, sizeof name, "layer%d.%d", s + 1, b);
			h = nb_bottleneck_block(h, mid[s], s > 0 && b == 0 ? 2 : 1, name);
			if (h->g->status != NB_OK)
				return h;
			snprintf(bn3, sizeof bn3, "%s.bn3.gamma", name);
			nb_tensor *gamma = nb_graph_find(h->g, bn3);
			nb_status st = gamma ? nb_init_tensor(gamma, NB_ZEROS) : NB_ERR_ARG;
			if (st != NB_OK) {
				nb__fail(h->g, st, "resnet50: cannot zero %s", bn3);
				return h->g->placeholder;
			}
		}
	h = nb_set_name(nb_global_avgpool(h), "pool");
	return fc_he(h, 10, "fc");
}

static nb_tensor *binary_head(nb_tensor *x, int64_t units)
{
	nb_tensor *h = nb_relu(nb_dense(x, 128, "fc1"));
	return nb_dense(h, units, "head");
}

static nb_tensor *binary_sigmoid(nb_tensor *x)
{
	return binary_head(x, 1);
}

static nb_tensor *binary_softmax(nb_tensor *x)
{
	return binary_head(x, 2);
}

/* What --augment means without a spec (nb_zoo_recipe.augment): the
 * standard CIFAR recipe (He et al. 2016: 4 pixels of padding, random 32x32
 * crops, horizontal flips); for the 28x28 IDX images shifts of up to 2
 * pixels and no flips: the same reader loads MNIST, whose digits a mirror
 * turns into non-digits. */
static const nb_augment cifar_augment = {.crop_pad = 4, .flip = true};
static const nb_augment idx_augment = {.crop_pad = 2};

/* The vanishing-gradient experiment (docs/experiments.md): the same deep
 * MLP four ways.  Ten hidden layers of 64 units, "fc1" to "fc10", and the
 * output layer "out". */
#define DEEP_LAYERS 10
#define DEEP_UNITS 64

/* sigmoid after every hidden layer, PyTorch's default initialisation */
static nb_tensor *deep_sigmoid(nb_tensor *x)
{
	char name[16];
	nb_tensor *h = x;
	for (int l = 1; l <= DEEP_LAYERS; l++) {
		snprintf(name, sizeof name, "fc%d", l);
		h = nb_sigmoid(nb_dense(h, DEEP_UNITS, name));
	}
	return nb_dense(h, 10, "out");
}

/* ReLU, He-normal weights and zero biases */
static nb_tensor *deep_relu_he(nb_tensor *x)
{
	char name[16];
	nb_dense_opts he = {
	    .custom_init = true, .w_init = {.kind = NB_INIT_HE_NORMAL}, .b_init = NB_ZEROS};
	nb_tensor *h = x;
	for (int l = 1; l <= DEEP_LAYERS; l++) {
		snprintf(name, sizeof name, "fc%d", l);
		h = nb_relu(nb_dense_layer(h, DEEP_UNITS, name, he));
	}
	return nb_dense(h, 10, "out");
}

/* ReLU after batch normalisation ("bn1" to "bn10"); the dense layers have
 * no bias (batchnorm's beta is one) and PyTorch's default initialisation */
static nb_tensor *deep_relu_bn(nb_tensor *x)
{
	char name[16];
	nb_tensor *h = x;
	for (int l = 1; l <= DEEP_LAYERS; l++) {
		snprintf(name, sizeof name, "fc%d", l);
		h = nb_dense_layer(h, DEEP_UNITS, name, (nb_dense_opts){.no_bias = true});
		snprintf(name, sizeof name, "bn%d", l);
		h = nb_batchnorm_layer(h, name, (nb_batchnorm_opts){.relu = true});
	}
	return nb_dense(h, 10, "out");
}

/* the sigmoid network with an identity shortcut around hidden layers 2 to
 * 10: h <- h + sigmoid(W h + b) */
static nb_tensor *deep_residual(nb_tensor *x)
{
	char name[16];
	nb_tensor *h = nb_sigmoid(nb_dense(x, DEEP_UNITS, "fc1"));
	for (int l = 2; l <= DEEP_LAYERS; l++) {
		snprintf(name, sizeof name, "fc%d", l);
		h = nb_add(h, nb_sigmoid(nb_dense(h, DEEP_UNITS, name)));
	}
	return nb_dense(h, 10, "out");
}

/* the deep MLPs' recipe: SGD with momentum, as the notes' backprop */
#define DEEP_RECIPE                                                                                \
	{                                                                                          \
		.epochs = 5, .batch = 64, .optim = NB_OPTIM_MOMENTUM, .lr = 0.01, .momentum = 0.9, \
		.data = NB_ZOO_DATA_FASHION_MNIST, .augment = &idx_augment                         \
	}
#define DEEP_ROW(NAME, SUMMARY, BUILD)                                                             \
	{                                                                                          \
		.name = NAME, .summary = SUMMARY, .c = 1, .h = 28, .w = 28, .num_classes = 10,     \
		.flat = true, .build = BUILD, .loss = NB_LOSS_SPARSE_CCE, .recipe = DEEP_RECIPE    \
	}

/* One row per model, with its builder and the recipe `nabla train` uses
 * (which the PyTorch scripts mirror): adding a model is adding a row. */
static const nb_zoo_entry zoo[] = {
    {.name = "mlp",
     .summary = "MLP 784-256-128-10, ReLU",
     .c = 1,
     .h = 28,
     .w = 28,
     .num_classes = 10,
     .flat = true,
     .build = mlp,
     .loss = NB_LOSS_SPARSE_CCE,
     .recipe = {.epochs = 5,
                .batch = 64,
                .optim = NB_OPTIM_ADAM,
                .lr = 1e-3,
                .data = NB_ZOO_DATA_FASHION_MNIST,
                .augment = &idx_augment}},
    {.name = "lenet",
     .summary = "LeNet-5: conv5x5(6, pad 2) pool conv5x5(16) pool 120 84 10",
     .c = 1,
     .h = 28,
     .w = 28,
     .num_classes = 10,
     .flat = false,
     .build = lenet,
     .loss = NB_LOSS_SPARSE_CCE,
     .recipe = {.epochs = 5,
                .batch = 64,
                .optim = NB_OPTIM_MOMENTUM,
                .lr = 0.01,
                .momentum = 0.9,
                .data = NB_ZOO_DATA_FASHION_MNIST,
                .augment = &idx_augment}},
    {.name = "resnet20",
     .summary = "ResNet-20 (CIFAR): 16/32/64 channels, BN, option-A shortcuts",
     .c = 3,
     .h = 32,
     .w = 32,
     .num_classes = 10,
     .flat = false,
     .build = resnet20,
     .loss = NB_LOSS_SPARSE_CCE,
     .recipe = {.epochs = 3,
                .batch = 64,
                .optim = NB_OPTIM_MOMENTUM,
                .lr = 0.1,
                .momentum = 0.9,
                .weight_decay = 5e-4,
                .data = NB_ZOO_DATA_CIFAR10,
                .augment = &cifar_augment}},
    {.name = "resnet50",
     .summary = "ResNet-50: bottlenecks [3,4,6,3], CIFAR stem",
     .c = 3,
     .h = 32,
     .w = 32,
     .num_classes = 10,
     .flat = false,
     .build = resnet50,
     .loss = NB_LOSS_SPARSE_CCE,
     /* lr 0.025: the CIFAR ResNets' 0.1 at batch 128 scaled linearly to
      * batch 32 (Goyal et al.); 0.1 diverges even with the zero gammas */
     .recipe = {.epochs = 1,
                .batch = 32,
                .optim = NB_OPTIM_MOMENTUM,
                .lr = 0.025,
                .momentum = 0.9,
                .weight_decay = 5e-4,
                .data = NB_ZOO_DATA_CIFAR10,
                .augment = &cifar_augment}},
    {.name = "mlp-binary-sigmoid",
     .summary = "784-128 ReLU, Dense(1) + sigmoid + binary cross-entropy",
     .c = 1,
     .h = 28,
     .w = 28,
     .num_classes = 2,
     .flat = true,
     .build = binary_sigmoid,
     .loss = NB_LOSS_BCE_LOGITS,
     .recipe = {.epochs = 3,
                .batch = 64,
                .optim = NB_OPTIM_ADAM,
                .lr = 1e-3,
                .data = NB_ZOO_DATA_FASHION_MNIST,
                .augment = &idx_augment}},
    {.name = "mlp-binary-softmax",
     .summary = "784-128 ReLU, Dense(2) + softmax + categorical cross-entropy",
     .c = 1,
     .h = 28,
     .w = 28,
     .num_classes = 2,
     .flat = true,
     .build = binary_softmax,
     .loss = NB_LOSS_CCE,
     .recipe = {.epochs = 3,
                .batch = 64,
                .optim = NB_OPTIM_ADAM,
                .lr = 1e-3,
                .data = NB_ZOO_DATA_FASHION_MNIST,
                .augment = &idx_augment}},
    DEEP_ROW("deep-sigmoid", "MLP 784-10x64-10, sigmoid (vanishing gradients)", deep_sigmoid),
    DEEP_ROW("deep-relu-he", "MLP 784-10x64-10, ReLU, He initialisation", deep_relu_he),
    DEEP_ROW("deep-relu-bn", "MLP 784-10x64-10, batchnorm + ReLU", deep_relu_bn),
    DEEP_ROW("deep-residual", "MLP 784-10x64-10, sigmoid, identity shortcuts", deep_residual),
};

const nb_zoo_entry *nb_zoo(int i)
{
	return i >= 0 && i < (int)(sizeof zoo / sizeof zoo[0]) ? &zoo[i] : NULL;
}

const nb_zoo_entry *nb_zoo_find(const char *name)
{
	for (int i = 0; name && nb_zoo(i); i++)
		if (!strcmp(zoo[i].name, name))
			return &zoo[i];
	return NULL;
}

nb_model *nb_zoo_build(nb_graph *g, const char *name, int64_t batch)
{
	if (!g || g->status != NB_OK)
		return NULL;
	const nb_zoo_entry *e = nb_zoo_find(name);
	if (!e) {
		char b[128];
		nb__fail(g, NB_ERR_ARG, "zoo: no model named %s%s%s", name ? "'" : "",
		         name ? nb__shown(name, b, sizeof b) : "NULL", name ? "'" : "");
		return NULL;
	}
	if (batch < 1) {
		nb__fail(g, NB_ERR_ARG, "zoo: %s: the batch %lld must be at least 1", e->name,
		         (long long)batch);
		return NULL;
	}
	nb_tensor *x = e->flat ? nb_input(g, "x", NB_SHAPE(batch, e->c * e->h * e->w))
	                       : nb_input(g, "x", NB_SHAPE(batch, e->c, e->h, e->w));
	if (g->status != NB_OK) /* e.g. a batch too large: nothing to build on */
		return NULL;
	nb_model *m = nb_classifier(x, e->build(x), e->loss);
	if (m)
		m->name = e->name;
	return m;
}
