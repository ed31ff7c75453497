/*
 * Ops added by users (include/nabla/op.h).
 *
 * One built-in op, "custom", stands for all of them: the op table stays
 * fixed, and a custom node carries its registered op in its attributes
 * (a.p) with the user's integers and reals in a.i[0..7] and a.f[0..5].
 * The row's shape rule, kernels, VJP and DOT label forward to the
 * registered op's callbacks, translating the node into the public
 * argument structs, so no internal struct reaches user code and
 * everything the graph does with a node (scheduling, planning, DOT, the
 * profile) treats it as any other.  A registered op is copied into a
 * small object the graph owns (nb__graph_own): one graph, one lifetime.
 *
 * The row is not INPLACE: a custom output never takes an input's
 * buffer, so a kernel may read its inputs after writing its output.  The
 * row's gradcheck example is a custom op of its own (hypot below), so
 * the forwarding itself is checked with every op of the table.
 */
#include "ops/kernel.h"

#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

struct nb_custom_op {
	nb_graph *g;
	nb_custom_def def; /* def.name points at name */
	char name[NB_CUSTOM_NAME_MAX + 1];
};

_Static_assert(NB_CUSTOM_INTS <= 12 && NB_CUSTOM_REALS <= 6,
               "a custom node's attributes must fit nb_attrs");
_Static_assert(NB_CUSTOM_MAX_INPUTS <= 8, "an example checks at most 8 inputs");

static const nb_custom_op *op_of(const nb_tensor *t)
{
	return t->a.p;
}

static nb_custom_attrs attrs_of(const nb_tensor *t)
{
	nb_custom_attrs at;
	for (int k = 0; k < NB_CUSTOM_INTS; k++)
		at.i[k] = t->a.i[k];
	for (int k = 0; k < NB_CUSTOM_REALS; k++)
		at.f[k] = t->a.f[k];
	return at;
}

/* a status a callback returned, as recorded: its own when it is an error
 * status, else fallback */
static nb_status error_status(nb_status st, nb_status fallback)
{
	return st > NB_OK && st <= NB_ERR_VALUE ? st : fallback;
}

static const char *name_of(const nb_attrs *a)
{
	return a->p ? ((const nb_custom_op *)a->p)->name : "custom";
}

/* ---- the row's shape rule, kernels, VJP and label ---------------------------- */

static nb_status custom_shape(nb_tensor *t)
{
	const nb_custom_op *op = op_of(t);
	nb_shape in[NB_CUSTOM_MAX_INPUTS];
	for (int k = 0; k < t->n_in; k++)
		in[k] = t->in[k]->shape;
	const nb_custom_attrs at = attrs_of(t);
	char err[512] = "";
	nb_custom_shape_args a = {.n_in = t->n_in,
	                          .in = in,
	                          .attrs = &at,
	                          .user = op->def.user,
	                          .err = err,
	                          .err_len = sizeof err};
	nb_shape out = {.ndim = -1};
	nb_status st = op->def.shape(&a, &out);
	if (st != NB_OK)
		return nb__op_fail(t, error_status(st, NB_ERR_SHAPE), "%s",
		                   err[0] ? err : "the shape rule refused the inputs");
	char buf[128];
	if (out.ndim < 0 || out.ndim > NB_MAX_DIMS)
		return nb__op_fail(t, NB_ERR_SHAPE,
		                   "the shape rule gave %d dimensions (0 to %d are supported)",
		                   out.ndim, NB_MAX_DIMS);
	for (int k = 0; k < out.ndim; k++)
		if (out.d[k] <= 0)
			return nb__op_fail(t, NB_ERR_SHAPE,
			                   "the shape rule gave %s: dimension %d is not positive",
			                   nb_shape_str(out, buf, sizeof buf), k);
	if (nb_shape_size(out) < 0)
		return nb__op_fail(t, NB_ERR_SHAPE,
		                   "the shape rule gave %s: more than 2^60 elements",
		                   nb_shape_str(out, buf, sizeof buf));
	t->shape = out;
	return NB_OK;
}

static void custom_forward(const nb_exec *ex, nb_tensor *t, bool f64)
{
	const nb_custom_op *op = op_of(t);
	const nb_custom_kernel kernel = f64 ? op->def.forward_f64 : op->def.forward_f32;
	if (!kernel) { /* nb_custom_register refuses this; never reached */
		nb__op_fail(t, NB_ERR_DTYPE, "no %s kernel", f64 ? "f64" : "f32");
		return;
	}
	const void *in[NB_CUSTOM_MAX_INPUTS];
	nb_shape shape[NB_CUSTOM_MAX_INPUTS];
	int64_t size[NB_CUSTOM_MAX_INPUTS];
	for (int k = 0; k < t->n_in; k++) {
		in[k] = t->in[k]->data;
		shape[k] = t->in[k]->shape;
		size[k] = t->in[k]->size;
	}
	const nb_custom_attrs at = attrs_of(t);
	char err[512] = "";
	nb_custom_kernel_args a = {.n_in = t->n_in,
	                           .in = in,
	                           .in_shape = shape,
	                           .in_size = size,
	                           .out = t->data,
	                           .out_shape = t->shape,
	                           .out_size = t->size,
	                           .dtype = f64 ? NB_F64 : NB_F32,
	                           .attrs = &at,
	                           .user = op->def.user,
	                           .threads = ex->threads,
	                           .training = ex->training,
	                           .batch_rows = ex->batch_rows,
	                           .err = err,
	                           .err_len = sizeof err};
	nb_status st = kernel(&a);
	if (st != NB_OK)
		nb__op_fail(t, error_status(st, NB_ERR_VALUE), "the kernel failed: %s",
		            err[0] ? err : nb_status_string(st));
}

static void custom_f32(const nb_exec *ex, nb_tensor *t)
{
	custom_forward(ex, t, false);
}

static void custom_f64(const nb_exec *ex, nb_tensor *t)
{
	custom_forward(ex, t, true);
}

/* The user's VJP, its results checked: a gradient of another graph or of
 * the wrong shape would otherwise reach the graph's sums. */
static void custom_vjp(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	const nb_custom_op *op = op_of(t);
	if (!op->def.vjp) {
		nb__op_fail(
		    t, NB_ERR_GRAPH,
		    "no derivative rule: the op was registered without a vjp, so it cannot "
		    "be differentiated (nb_stop_gradient keeps gradients from reaching it)");
		return;
	}
	const nb_custom_attrs at = attrs_of(t);
	nb_tensor *res[NB_CUSTOM_MAX_INPUTS] = {0};
	nb_custom_vjp_args a = {.n_in = t->n_in,
	                        .in = t->in,
	                        .out = t,
	                        .gout = g,
	                        .need = need,
	                        .attrs = &at,
	                        .user = op->def.user};
	op->def.vjp(&a, res);
	for (int k = 0; k < t->n_in && t->g->status == NB_OK; k++) {
		if (!need[k] || !res[k])
			continue;
		char b1[128], b2[128];
		if (res[k]->g != t->g) {
			nb__op_fail(t, NB_ERR_GRAPH,
			            "the vjp returned a tensor of another graph for "
			            "input %d (%s)",
			            k, t->in[k]->name);
			return;
		}
		if (!nb__shape_eq(res[k]->shape, t->in[k]->shape)) {
			nb__op_fail(t, NB_ERR_SHAPE,
			            "the vjp returned %s for input %d (%s) of shape %s",
			            nb_shape_str(res[k]->shape, b1, sizeof b1), k, t->in[k]->name,
			            nb_shape_str(t->in[k]->shape, b2, sizeof b2));
			return;
		}
		gin[k] = res[k];
	}
}

static void custom_label(const nb_tensor *t, char *buf, size_t n)
{
	const nb_custom_op *op = op_of(t);
	if (n)
		buf[0] = 0;
	if (op->def.label && n) {
		const nb_custom_attrs at = attrs_of(t);
		op->def.label(&at, op->def.user, buf, n);
		buf[n - 1] = 0;
	}
}

/* ---- registration ---------------------------------------------------------- */

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > NB_CUSTOM_NAME_MAX)
		return false;
	for (size_t k = 0; k < n; k++) {
		const unsigned char c = (unsigned char)s[k];
		const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		if (!alpha && (k == 0 || !((c >= '0' && c <= '9') || c == '.' || c == '-')))
			return false;
	}
	return true;
}

/* the destructor the graph calls for a registered op, which also marks
 * the graph's registered ops among the objects it owns */
static void op_free(void *op)
{
	free(op);
}

/* the op registered with g under name, or NULL */
static const nb_custom_op *registered(const nb_graph *g, const char *name)
{
	for (int k = 0; k < g->n_owned; k++)
		if (g->owned[k].destroy == op_free) {
			const nb_custom_op *op = g->owned[k].p;
			if (op->g == g && !strcmp(op->name, name))
				return op;
		}
	return NULL;
}

static bool same_def(const nb_custom_def *a, const nb_custom_def *b)
{
	return a->n_inputs == b->n_inputs && a->shape == b->shape &&
	       a->forward_f32 == b->forward_f32 && a->forward_f64 == b->forward_f64 &&
	       a->vjp == b->vjp && a->label == b->label && a->example == b->example &&
	       a->user == b->user;
}

/* NB_OK, or the failure recorded on g */
static nb_status check_def(nb_graph *g, const nb_custom_def *def)
{
	char shown[96];
	if (!def) {
		nb__fail(g, NB_ERR_ARG, "custom_register: the definition is NULL");
		return NB_ERR_ARG;
	}
	if (!def->name) {
		nb__fail(g, NB_ERR_ARG, "custom_register: the op's name is NULL");
		return NB_ERR_ARG;
	}
	const char *name = nb__shown(def->name, shown, sizeof shown);
	if (!valid_name(def->name)) {
		nb__fail(g, NB_ERR_ARG,
		         "custom_register(\"%s\"): a name is 1 to %d letters, digits, '_', '.' or "
		         "'-', starting with a letter or '_'",
		         name, NB_CUSTOM_NAME_MAX);
		return NB_ERR_ARG;
	}
	for (int op = 0; op < NB_OP_COUNT; op++)
		if (!strcmp(nb__ops[op]->name, def->name)) {
			nb__fail(
			    g, NB_ERR_ARG,
			    "custom_register(%s): %s is the name of a built-in op; choose another",
			    name, name);
			return NB_ERR_ARG;
		}
	if (def->n_inputs < 1 || def->n_inputs > NB_CUSTOM_MAX_INPUTS) {
		nb__fail(g, NB_ERR_ARG, "custom_register(%s): n_inputs is %d; an op takes 1 to %d",
		         name, def->n_inputs, NB_CUSTOM_MAX_INPUTS);
		return NB_ERR_ARG;
	}
	if (!def->shape) {
		nb__fail(g, NB_ERR_ARG, "custom_register(%s): no shape rule (.shape is NULL)",
		         name);
		return NB_ERR_ARG;
	}
	if (!def->forward_f32 && !def->forward_f64) {
		nb__fail(g, NB_ERR_ARG,
		         "custom_register(%s): no kernel (.forward_f32 and .forward_f64 are NULL)",
		         name);
		return NB_ERR_ARG;
	}
	if (!(g->dtype == NB_F64 ? def->forward_f64 : def->forward_f32)) {
		const char *dt = nb_dtype_name(g->dtype);
		nb__fail(
		    g, NB_ERR_DTYPE,
		    "custom_register(%s): no %s kernel (.forward_%s is NULL) for this %s graph",
		    name, dt, dt, dt);
		return NB_ERR_DTYPE;
	}
	return NB_OK;
}

const nb_custom_op *nb_custom_register(nb_graph *g, const nb_custom_def *def)
{
	if (!g || g->status != NB_OK || check_def(g, def) != NB_OK)
		return NULL;
	const nb_custom_op *old = registered(g, def->name);
	if (old) {
		if (same_def(&old->def, def))
			return old;
		nb__fail(g, NB_ERR_ARG,
		         "custom_register(%s): another op of this name is registered with the "
		         "graph",
		         old->name);
		return NULL;
	}
	nb_custom_op *op = calloc(1, sizeof *op);
	if (!op || nb__graph_own(g, op, op_free) != NB_OK) {
		free(op);
		nb__fail(g, NB_ERR_NOMEM, "custom_register(%s): out of memory", def->name);
		return NULL;
	}
	op->g = g;
	op->def = *def;
	memcpy(op->name, def->name, strlen(def->name) + 1);
	op->def.name = op->name;
	return op;
}

const char *nb_custom_name(const nb_custom_op *op)
{
	return op ? op->name : NULL;
}

nb_tensor *nb_custom(const nb_custom_op *op, nb_tensor *const *in, int n,
                     const nb_custom_attrs *attrs)
{
	if (!op) { /* a failed registration: its error is on the graph */
		nb_graph *g = in && n > 0 ? nb__graph_of(in, n) : NULL;
		if (g && g->status == NB_OK)
			nb__fail(g, NB_ERR_ARG,
			         "custom: the op is NULL (did nb_custom_register fail?)");
		return g ? g->placeholder : NULL;
	}
	nb_graph *g = op->g;
	if (g->status != NB_OK)
		return g->placeholder;
	if (n != op->def.n_inputs || (n > 0 && !in)) {
		nb__fail(g, NB_ERR_ARG, "%s: takes %d input%s, got %d", op->name, op->def.n_inputs,
		         op->def.n_inputs == 1 ? "" : "s", in ? n : 0);
		return g->placeholder;
	}
	for (int k = 0; k < n; k++)
		if (!in[k]) {
			nb__fail(g, NB_ERR_ARG, "%s: input %d is NULL", op->name, k);
			return g->placeholder;
		} else if (in[k]->g != g) {
			nb__fail(
			    g, NB_ERR_GRAPH,
			    "%s: input %d (%s) belongs to another graph than the op (registered "
			    "with nb_custom_register)",
			    op->name, k, in[k]->name);
			nb__fail(in[k]->g, NB_ERR_GRAPH,
			         "%s: input %d (%s) was given to an op of another graph", op->name,
			         k, in[k]->name);
			return g->placeholder;
		}
	nb_attrs a = {.p = (void *)op}; /* read back as const (op_of) */
	if (attrs) {
		for (int k = 0; k < NB_CUSTOM_INTS; k++)
			a.i[k] = attrs->i[k];
		for (int k = 0; k < NB_CUSTOM_REALS; k++)
			a.f[k] = attrs->f[k];
	}
	return nb__op(NB_OP_CUSTOM, in, n, &a);
}

nb_status nb_custom_gradcheck(const nb_custom_def *def, uint64_t seed, nb_gradcheck_report *rep,
                              char *errbuf, size_t errlen)
{
	if (errbuf && errlen)
		errbuf[0] = 0;
	if (!rep)
		return NB_ERR_ARG;
	memset(rep, 0, sizeof *rep);
	if (def && !def->example) {
		char shown[96];
		if (errbuf)
			snprintf(errbuf, errlen, "custom op %s has no gradcheck example (.example)",
			         def->name ? nb__shown(def->name, shown, sizeof shown) : "(NULL)");
		return NB_ERR_ARG;
	}
	nb_graph *g = nb_graph_new(NB_F64);
	if (!g)
		return NB_ERR_NOMEM;
	nb_graph_seed(g, seed);
	const nb_custom_op *op = nb_custom_register(g, def);
	nb_tensor *wrt[8] = {0};
	int n = 0;
	nb_tensor *y = op ? def->example(g, op, wrt, &n) : NULL;
	nb_status st = n >= 0 && n <= 8 ? nb__gradcheck_weighted(g, y, wrt, n, rep) : NB_ERR_ARG;
	if (st != NB_OK && errbuf)
		snprintf(errbuf, errlen, "%s",
		         nb_graph_status(g) != NB_OK ? nb_graph_errmsg(g)
		                                     : "the example gave more than 8 tensors");
	nb_graph_free(g);
	return st;
}

/* ---- the row's gradcheck example: a custom op of its own ------------------------
 * hypot(a, b) = sqrt(a^2 + b^2 + c), c = f[0] > 0, of two inputs of one
 * shape; da = g a / y, db = g b / y. */

static nb_status hypot_shape(const nb_custom_shape_args *a, nb_shape *out)
{
	char b0[128], b1[128];
	if (!nb__shape_eq(a->in[0], a->in[1])) {
		snprintf(a->err, a->err_len, "the inputs' shapes differ: %s and %s",
		         nb_shape_str(a->in[0], b0, sizeof b0),
		         nb_shape_str(a->in[1], b1, sizeof b1));
		return NB_ERR_SHAPE;
	}
	if (!(a->attrs->f[0] > 0)) {
		snprintf(a->err, a->err_len, "c (f[0]) must be positive, not %g", a->attrs->f[0]);
		return NB_ERR_ARG;
	}
	*out = a->in[0];
	return NB_OK;
}

#define HYPOT_KERNEL(NAME, T)                                                                      \
	static nb_status NAME(const nb_custom_kernel_args *k)                                      \
	{                                                                                          \
		const T *a = k->in[0], *b = k->in[1];                                              \
		T *y = k->out;                                                                     \
		const T c = (T)k->attrs->f[0];                                                     \
		for (int64_t i = 0; i < k->out_size; i++)                                          \
			y[i] = sqrt(a[i] * a[i] + b[i] * b[i] + c);                                \
		return NB_OK;                                                                      \
	}
HYPOT_KERNEL(hypot_f32, float)
HYPOT_KERNEL(hypot_f64, double)
#undef HYPOT_KERNEL

static void hypot_vjp(const nb_custom_vjp_args *a, nb_tensor **gin)
{
	nb_tensor *gy = nb_div(a->gout, a->out);
	for (int k = 0; k < 2; k++)
		if (a->need[k])
			gin[k] = nb_mul(gy, a->in[k]);
}

static void hypot_label(const nb_custom_attrs *at, void *user, char *buf, size_t n)
{
	(void)user;
	snprintf(buf, n, "c %g", at->f[0]);
}

static nb_tensor *hypot_example(nb_graph *g, const nb_custom_op *op, nb_tensor **w, int *n)
{
	nb_shape s = nb__rand_shape(g, 1, 3, 4);
	w[0] = NB_EX_PARAM(g, "a", s);
	w[1] = NB_EX_PARAM(g, "b", s);
	*n = 2;
	return nb_custom(op, w, 2, &(nb_custom_attrs){.f = {0.25 + nb__rng_uniform(g)}});
}

static const nb_custom_def hypot_def = {.name = "hypot",
                                        .n_inputs = 2,
                                        .shape = hypot_shape,
                                        .forward_f32 = hypot_f32,
                                        .forward_f64 = hypot_f64,
                                        .vjp = hypot_vjp,
                                        .label = hypot_label,
                                        .example = hypot_example};

static nb_tensor *ex_custom(nb_graph *g, nb_tensor **w, int *n)
{
	return hypot_example(g, nb_custom_register(g, &hypot_def), w, n);
}

const nb_opdef nb__op_custom = {.name = "custom",
                                .n_inputs = -1,
                                .shape = custom_shape,
                                .forward_f32 = custom_f32,
                                .forward_f64 = custom_f64,
                                .vjp = custom_vjp,
                                .label = custom_label,
                                .example = ex_custom,
                                .name_of = name_of};
