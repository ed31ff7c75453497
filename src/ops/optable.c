/*
 * The op table: one entry per op, indexed by enum nb_op, generated from
 * the op list (oplist.h).  Each entry is defined beside its kernels
 * (nb__op_<name> in the op family's file).
 */
#include "graph/internal.h"

/* One declaration and one entry per row of the op list: an op whose
 * nb__op_<name> is not defined does not link. */
#define DECLARE(E, N) extern const nb_opdef nb__op_##N;
NB_OPS(DECLARE)
#undef DECLARE

/* The table's size comes from its entries, not from a declared bound, so
 * the assertion checks the generated table against the generated enum
 * (and the declaration in graph/internal.h, [NB_OP_COUNT], must agree). */
#define ENTRY(E, N) [NB_OP_##E] = &nb__op_##N,
const nb_opdef *const nb__ops[] = {NB_OPS(ENTRY)};
#undef ENTRY

_Static_assert(sizeof nb__ops / sizeof nb__ops[0] == NB_OP_COUNT,
               "the op table must have exactly one entry per op");

/* Leaves have no kernel: their data is fed or initialised. */
static void leaf_forward(const nb_exec *ex, nb_tensor *t)
{
	(void)ex;
	(void)t;
}

static nb_status leaf_shape(nb_tensor *t)
{
	(void)t;
	return NB_OK;
}

const nb_opdef nb__op_input = {.name = "input",
                               .shape = leaf_shape,
                               .forward_f32 = leaf_forward,
                               .forward_f64 = leaf_forward,
                               .flags = NB_OPF_LEAF};
const nb_opdef nb__op_param = {.name = "param",
                               .shape = leaf_shape,
                               .forward_f32 = leaf_forward,
                               .forward_f64 = leaf_forward,
                               .flags = NB_OPF_LEAF};
const nb_opdef nb__op_constant = {.name = "constant",
                                  .shape = leaf_shape,
                                  .forward_f32 = leaf_forward,
                                  .forward_f64 = leaf_forward,
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
