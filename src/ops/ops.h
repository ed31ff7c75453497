/*
 * The op enum.  Each op has exactly one entry in the op table
 * (src/ops/optable.c), whose size is checked against NB_OP_COUNT.
 */
#ifndef NB_OPS_H
#define NB_OPS_H

enum nb_op {
	/* leaves */
	NB_OP_INPUT = 0,
	NB_OP_PARAM,
	NB_OP_CONST,
	/* elementwise binary with broadcasting (elementwise.c) */
	NB_OP_ADD,
	NB_OP_SUB,
	NB_OP_MUL,
	NB_OP_DIV,
	/* elementwise unary (elementwise.c); attrs f[0], f[1] where noted */
	NB_OP_NEG,
	NB_OP_ADD_SCALAR,  /* a + f0 */
	NB_OP_MUL_SCALAR,  /* a * f0 */
	NB_OP_RSUB_SCALAR, /* f0 - a */
	NB_OP_EXP,
	NB_OP_LOG,
	NB_OP_SQRT,
	NB_OP_SQUARE,
	NB_OP_POW,  /* a ^ f0 */
	NB_OP_ABS,
	NB_OP_SIGN,
	NB_OP_CLAMP,      /* clamp(a, f0, f1) */
	NB_OP_MASK_RANGE, /* (g, x): g where f0 < x < f1, else 0 */
	NB_OP_STOP_GRADIENT,
	/* linear algebra and shape (matmul.c, shape.c) */
	NB_OP_MATMUL, /* i0 = trans_a, i1 = trans_b */
	NB_OP_TRANSPOSE,
	NB_OP_RESHAPE,
	NB_OP_CONCAT,
	NB_OP_SLICE,
	NB_OP_EMBED, /* inverse of slice: place a into zeros (VJP of slice) */
	NB_OP_BROADCAST_TO,
	NB_OP_SUM_TO,
	/* reductions (reduce.c) */
	NB_OP_SUM,
	NB_OP_MEAN,
	NB_OP_MAX,
	NB_OP_MAX_BACKWARD,
	/* activations (activation.c) */
	NB_OP_HARDLIM,  /* i0 = straight-through */
	NB_OP_HARDLIMS, /* i0 = straight-through */
	NB_OP_PURELIN,
	NB_OP_SATLIN,
	NB_OP_SATLINS,
	NB_OP_LOGSIG, /* 1/(1+exp(-f0 a)) */
	NB_OP_TANH,   /* f0 tanh(f1 a) */
	NB_OP_RELU,
	NB_OP_SOFTMAX,     /* along axis i0 */
	NB_OP_LOG_SOFTMAX, /* along axis i0 */
	/* losses (loss.c); i0 = nb_reduction */
	NB_OP_MSE,
	NB_OP_BCE,
	NB_OP_BCE_LOGITS,
	NB_OP_CCE,
	NB_OP_SPARSE_CCE,
	NB_OP_ONE_HOT, /* i0 = classes; no gradient */
	/* batch normalisation and dropout (norm.c); the mode (training or
	 * eval) is read at run time.  BATCHNORM: inputs (x, gamma, beta,
	 * running_mean, running_var), f0 = eps, f1 = momentum; the backward
	 * helpers take the forward node y as an input to reach its saved
	 * statistics (y->aux) and to run after it. */
	NB_OP_BATCHNORM,
	NB_OP_BATCHNORM_SUMS,     /* (g, x, y) -> [2,C]: sum g*xhat, sum g */
	NB_OP_BATCHNORM_BACKWARD, /* (g, x, gamma, y, sums) -> dx */
	NB_OP_DROPOUT,            /* f0 = p; the mask lives in aux */
	NB_OP_DROPOUT_BACKWARD,   /* (g, y) -> dx */
	/* optimizer updates (src/optim/update.c): inputs (w, g, state..., [norm]),
	 * written in place; i0 = number of state inputs, i1 = norm given */
	NB_OP_SGD_UPDATE,
	NB_OP_MOMENTUM_UPDATE,
	NB_OP_RMSPROP_UPDATE,
	NB_OP_ADAM_UPDATE,
	/* optimizer helpers (src/optim/update.c) */
	NB_OP_GLOBAL_NORM, /* sqrt of the sum of squares of all inputs */
	/* convolution (conv/conv.c); attrs: see conv/conv.h */
	NB_OP_CONV2D,                 /* (x, w[, bias]) */
	NB_OP_CONV2D_BACKWARD_INPUT,  /* (dy, w) -> dx: the transposed convolution */
	NB_OP_CONV2D_BACKWARD_WEIGHT, /* (dy, x) -> dw */
	NB_OP_CONV2D_BACKWARD_BIAS,   /* (dy) -> db: sum over N, H, W */
	/* pooling (pool.c); attrs: see pool.c */
	NB_OP_MAXPOOL2D,
	NB_OP_MAXPOOL2D_BACKWARD, /* (dy, y): scatter dy to y's argmax */
	NB_OP_MAXPOOL2D_GATHER,   /* (u, y): u read at y's argmax (VJP of the scatter) */
	NB_OP_AVGPOOL2D,
	NB_OP_AVGPOOL2D_BACKWARD, /* (dy) -> dx */
	NB_OP_GLOBAL_AVGPOOL,

	NB_OP_COUNT
};

#endif
