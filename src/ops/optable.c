/*
 * The op table: one entry per op, indexed by enum nb_op.  Each entry is
 * defined beside its kernels (nb__op_<name> in the op family's file).
 */
#include "graph/internal.h"

#define OPS(X) \
	X(INPUT, input) \
	X(PARAM, param) \
	X(CONST, constant) \
	X(ADD, add) \
	X(SUB, sub) \
	X(MUL, mul) \
	X(DIV, div) \
	X(NEG, neg) \
	X(ADD_SCALAR, add_scalar) \
	X(MUL_SCALAR, mul_scalar) \
	X(RSUB_SCALAR, rsub_scalar) \
	X(EXP, exp) \
	X(LOG, log) \
	X(SQRT, sqrt) \
	X(SQUARE, square) \
	X(POW, pow) \
	X(ABS, abs) \
	X(SIGN, sign) \
	X(CLAMP, clamp) \
	X(MASK_RANGE, mask_range) \
	X(STOP_GRADIENT, stop_gradient) \
	X(MATMUL, matmul) \
	X(TRANSPOSE, transpose) \
	X(RESHAPE, reshape) \
	X(CONCAT, concat) \
	X(SLICE, slice) \
	X(EMBED, embed) \
	X(BROADCAST_TO, broadcast_to) \
	X(SUM_TO, sum_to) \
	X(SUM, sum) \
	X(MEAN, mean) \
	X(MAX, max) \
	X(MAX_BACKWARD, max_backward) \
	X(BATCHNORM, batchnorm) \
	X(BATCHNORM_SUMS, batchnorm_sums) \
	X(BATCHNORM_BACKWARD, batchnorm_backward) \
	X(DROPOUT, dropout) \
	X(DROPOUT_BACKWARD, dropout_backward) \
	X(HARDLIM, hardlim) \
	X(HARDLIMS, hardlims) \
	X(PURELIN, purelin) \
	X(SATLIN, satlin) \
	X(SATLINS, satlins) \
	X(LOGSIG, logsig) \
	X(TANH, tanh) \
	X(RELU, relu) \
	X(SOFTMAX, softmax) \
	X(LOG_SOFTMAX, log_softmax) \
	X(MSE, mse) \
	X(BCE, bce) \
	X(BCE_LOGITS, bce_logits) \
	X(CCE, cce) \
	X(SPARSE_CCE, sparse_cce) \
	X(ONE_HOT, one_hot) \
	X(SGD_UPDATE, sgd_update) \
	X(MOMENTUM_UPDATE, momentum_update) \
	X(RMSPROP_UPDATE, rmsprop_update) \
	X(ADAM_UPDATE, adam_update) \
	X(GLOBAL_NORM, global_norm) \
	X(CONV2D, conv2d) \
	X(CONV2D_BACKWARD_INPUT, conv2d_backward_input) \
	X(CONV2D_BACKWARD_WEIGHT, conv2d_backward_weight) \
	X(CONV2D_BACKWARD_BIAS, conv2d_backward_bias) \
	X(MAXPOOL2D, maxpool2d) \
	X(MAXPOOL2D_BACKWARD, maxpool2d_backward) \
	X(MAXPOOL2D_GATHER, maxpool2d_gather) \
	X(AVGPOOL2D, avgpool2d) \
	X(AVGPOOL2D_BACKWARD, avgpool2d_backward) \
	X(GLOBAL_AVGPOOL, global_avgpool) \
	/* end of the op list */

#define DECLARE(E, N) extern const nb_opdef nb__op_##N;
OPS(DECLARE)

#define ENTRY(E, N) [NB_OP_##E] = &nb__op_##N,
const nb_opdef *const nb__ops[NB_OP_COUNT] = {OPS(ENTRY)};

_Static_assert(sizeof nb__ops / sizeof nb__ops[0] == NB_OP_COUNT,
               "the op table must have one entry per op");

/* Leaves have no kernel: their data is fed or initialised. */
static void leaf_forward(nb_tensor *t)
{
	(void)t;
}

static nb_status leaf_shape(nb_tensor *t)
{
	(void)t;
	return NB_OK;
}

const nb_opdef nb__op_input = {.name = "input", .shape = leaf_shape,
                               .forward_f32 = leaf_forward, .forward_f64 = leaf_forward,
                               .flags = NB_OPF_LEAF};
const nb_opdef nb__op_param = {.name = "param", .shape = leaf_shape,
                               .forward_f32 = leaf_forward, .forward_f64 = leaf_forward,
                               .flags = NB_OPF_LEAF};
const nb_opdef nb__op_constant = {.name = "constant", .shape = leaf_shape,
                                  .forward_f32 = leaf_forward, .forward_f64 = leaf_forward,
                                  .flags = NB_OPF_LEAF};

int nb_num_ops(void)
{
	return NB_OP_COUNT;
}

const char *nb_op_name(int op)
{
	if (op < 0 || op >= NB_OP_COUNT || !nb__ops[op])
		return NULL;
	return nb__ops[op]->name;
}

bool nb_op_is_checkable(int op)
{
	if (op < 0 || op >= NB_OP_COUNT || !nb__ops[op])
		return false;
	return !(nb__ops[op]->flags & (NB_OPF_LEAF | NB_OPF_INTERNAL | NB_OPF_UPDATE));
}
