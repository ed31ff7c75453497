/*
 * The op list: one row X(ENUM, name) per op, in enum order.  It generates
 * both enum nb_op (ops.h: NB_OP_<ENUM>) and the op table (optable.c: entry
 * NB_OP_<ENUM> is &nb__op_<name>, the nb_opdef defined beside the op's
 * kernels in its family's file), so the two cannot disagree: an op without
 * a definition does not link.  The order is the order of nb_op_name()'s
 * ids and of `nabla gradcheck --list`; nothing stores the numbers.
 * Attribute slots (a.i[], a.f[]) are noted beside the ops that use them.
 */
#ifndef NB_OPLIST_H
#define NB_OPLIST_H

/* clang-format off */
#define NB_OPS(X) \
	/* leaves: no kernel; their data is fed or initialised (optable.c) */ \
	X(INPUT, input) \
	X(PARAM, param) \
	X(CONST, constant) \
	/* elementwise binary with broadcasting (elementwise.c) */ \
	X(ADD, add) \
	X(SUB, sub) \
	X(MUL, mul) \
	X(DIV, div) \
	/* elementwise unary (elementwise.c); attrs f[0], f[1] where noted */ \
	X(NEG, neg) \
	X(ADD_SCALAR, add_scalar)         /* a + f0 */ \
	X(MUL_SCALAR, mul_scalar)         /* a * f0 */ \
	X(RSUB_SCALAR, rsub_scalar)       /* f0 - a */ \
	X(EXP, exp) \
	X(LOG, log) \
	X(SQRT, sqrt) \
	X(SQUARE, square) \
	X(POW, pow)                       /* a ^ f0 */ \
	X(ABS, abs) \
	X(SIGN, sign) \
	X(CLAMP, clamp)                   /* clamp(a, f0, f1) */ \
	X(MASK_RANGE, mask_range)         /* (g, x): g where f0 < x < f1, else 0 */ \
	X(STOP_GRADIENT, stop_gradient) \
	/* linear algebra and shape (matmul.c, shape.c) */ \
	X(MATMUL, matmul)                 /* i0 = trans_a, i1 = trans_b */ \
	X(TRANSPOSE, transpose) \
	X(RESHAPE, reshape) \
	X(CONCAT, concat) \
	X(SLICE, slice) \
	X(EMBED, embed)                   /* inverse of slice: place a into zeros (VJP of slice) */ \
	X(BROADCAST_TO, broadcast_to) \
	X(SUM_TO, sum_to) \
	/* reductions (reduce.c) */ \
	X(SUM, sum) \
	X(MEAN, mean) \
	X(MAX, max) \
	X(MAX_BACKWARD, max_backward) \
	/* activations (activation.c) */ \
	X(HARDLIM, hardlim)               /* i0 = straight-through */ \
	X(HARDLIMS, hardlims)             /* i0 = straight-through */ \
	X(PURELIN, purelin) \
	X(SATLIN, satlin) \
	X(SATLINS, satlins) \
	X(LOGSIG, logsig)                 /* 1/(1+exp(-f0 a)) */ \
	X(TANH, tanh)                     /* f0 tanh(f1 a) */ \
	X(RELU, relu) \
	X(SOFTMAX, softmax)               /* along axis i0 */ \
	X(LOG_SOFTMAX, log_softmax)       /* along axis i0 */ \
	/* losses (loss.c); i0 = nb_reduction */ \
	X(MSE, mse) \
	X(BCE, bce) \
	X(BCE_LOGITS, bce_logits) \
	X(CCE, cce) \
	X(SPARSE_CCE, sparse_cce) \
	X(ONE_HOT, one_hot)               /* i0 = classes; no gradient */ \
	/* batch normalisation and dropout (norm.c); the mode (training or \
	 * eval) is read at run time.  BATCHNORM: inputs (x, gamma, beta, \
	 * running_mean, running_var), f0 = eps, f1 = momentum; the backward \
	 * helpers take the forward node y as an input to reach its saved \
	 * statistics (y->aux) and to run after it. */ \
	X(BATCHNORM, batchnorm) \
	X(BATCHNORM_SUMS, batchnorm_sums) /* (g, x, y) or (dx) -> [2,C]: sum g*xhat, sum g */ \
	X(BATCHNORM_BACKWARD, batchnorm_backward) /* (g, x, gamma, y) -> dx, sums in aux */ \
	X(DROPOUT, dropout)               /* f0 = p; the mask lives in aux */ \
	X(DROPOUT_BACKWARD, dropout_backward) /* (g, y) -> dx */ \
	/* optimizer updates (update.c, update.h): inputs (w, g, state..., \
	 * hyper, [norm]), written in place; i0 = number of state inputs, \
	 * i1 = norm given, i2 = variant flags */ \
	X(SGD_UPDATE, sgd_update) \
	X(MOMENTUM_UPDATE, momentum_update) \
	X(RMSPROP_UPDATE, rmsprop_update) \
	X(ADAM_UPDATE, adam_update) \
	/* optimizer helpers (update.c) */ \
	X(GLOBAL_NORM, global_norm)       /* sqrt of the sum of squares of all inputs */ \
	/* convolution (conv/conv.c); attrs: see conv/conv.h */ \
	X(CONV2D, conv2d)                 /* (x, w[, bias]) */ \
	X(CONV2D_BACKWARD_INPUT, conv2d_backward_input) /* (dy, w) -> dx: the transposed convolution */ \
	X(CONV2D_BACKWARD_WEIGHT, conv2d_backward_weight) /* (dy, x) -> dw */ \
	X(CONV2D_BACKWARD_BIAS, conv2d_backward_bias) /* (dy) -> db: sum over N, H, W */ \
	/* pooling (pool.c); attrs: see pool.c */ \
	X(MAXPOOL2D, maxpool2d) \
	X(MAXPOOL2D_BACKWARD, maxpool2d_backward) /* (dy, y): scatter dy to y's argmax */ \
	X(MAXPOOL2D_GATHER, maxpool2d_gather) /* (u, y): u read at y's argmax (VJP of the scatter) */ \
	X(AVGPOOL2D, avgpool2d) \
	X(AVGPOOL2D_BACKWARD, avgpool2d_backward) /* (dy) -> dx */ \
	X(GLOBAL_AVGPOOL, global_avgpool) \
	/* ops added by users (custom.c, include/nabla/op.h): a node of an op \
	 * registered with nb_custom_register; a.p = the op, i[0..7] and \
	 * f[0..5] = the node's nb_custom_attrs */ \
	X(CUSTOM, custom) \
	/* data-parallel gradient buckets (dist.c, src/dist): p = the nb_dist; \
	 * allreduce, wait: i0 = request slot; unpack: i0 = offset, i1 = ndim, \
	 * i2.. = shape */ \
	X(DIST_ALLREDUCE, dist_allreduce) /* (g1..gk) -> [n]: pack, start the sum */ \
	X(DIST_WAIT, dist_wait)           /* (bucket) -> [n]: wait for the sum */ \
	X(DIST_UNPACK, dist_unpack)       /* (reduced) -> one gradient */ \
	/* end of the op list */
/* clang-format on */

#endif
