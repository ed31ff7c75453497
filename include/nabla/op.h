/* nabla/op.h — adding your own op; include "nabla.h" instead.
 *
 * An op of your own is a definition (nb_custom_def): a shape rule, a
 * forward kernel for float and/or double elements, and a vector-Jacobian
 * product (VJP) written with nabla's public ops.  Register it with a graph
 * (nb_custom_register), then apply it to tensors of that graph
 * (nb_custom).  Its nodes are then like a built-in op's: nb_grads
 * differentiates through them (twice, when the VJP's ops are
 * differentiable), nb_compile schedules and plans them, nb_run runs their
 * kernel, DOT draws them under the op's name, nb_gradcheck checks them,
 * and a bad shape or a failing kernel is an error on the graph (sticky,
 * docs/errors.md).  ONNX export refuses a graph that needs one
 * (NB_ERR_FORMAT, naming the op).
 *
 *     static nb_status swish_shape(const nb_custom_shape_args *a, nb_shape *out)
 *     {
 *             *out = a->in[0];
 *             return NB_OK;
 *     }
 *     static nb_status swish_f64(const nb_custom_kernel_args *k)
 *     {
 *             const double *x = k->in[0];
 *             double *y = k->out;
 *             for (int64_t i = 0; i < k->out_size; i++)
 *                     y[i] = x[i] / (1 + exp(-x[i]));
 *             return NB_OK;
 *     }
 *     static void swish_vjp(const nb_custom_vjp_args *a, nb_tensor **gin)
 *     {
 *             nb_tensor *s = nb_sigmoid(a->in[0]);   // y' = s + y (1 - s)
 *             gin[0] = nb_mul(a->gout, nb_add(s, nb_mul(a->out, nb_rsub_scalar(s, 1))));
 *     }
 *     static const nb_custom_def swish_def = {
 *         .name = "swish", .n_inputs = 1, .shape = swish_shape,
 *         .forward_f64 = swish_f64, .forward_f32 = swish_f32, .vjp = swish_vjp};
 *
 *     const nb_custom_op *swish = nb_custom_register(g, &swish_def);
 *     nb_tensor *h = nb_custom(swish, &x, 1, NULL);
 *
 * examples/custom_op.c is a complete program.  The op's nodes are op
 * "custom" in the op table (nb_op_name); nb_tensor_op names the
 * registered op.
 */
/* the core types first, outside the guard: whichever header comes first,
 * nabla.h then includes this one with them defined */
#include "nabla.h"

#ifndef NABLA_OP_H
#define NABLA_OP_H

#ifdef __cplusplus
extern "C" {
#endif

#define NB_CUSTOM_MAX_INPUTS 8 /* inputs of an op */
#define NB_CUSTOM_INTS 8       /* integer attributes of a node */
#define NB_CUSTOM_REALS 6      /* real attributes of a node */
#define NB_CUSTOM_NAME_MAX 63  /* bytes of an op's name */

/* A node's attributes: small integers and reals kept beside its inputs
 * (an axis, a slope), given to nb_custom and seen by every callback. */
typedef struct nb_custom_attrs {
	int64_t i[NB_CUSTOM_INTS];
	double f[NB_CUSTOM_REALS];
} nb_custom_attrs;

/* What the shape rule sees when a node is built. */
typedef struct nb_custom_shape_args {
	int n_in;
	const nb_shape *in; /* the inputs' shapes */
	const nb_custom_attrs *attrs;
	void *user; /* the definition's user pointer */
	/* A rule that rejects its inputs writes why here (the library
	 * prefixes "name(inputs): ") and returns an error status, usually
	 * NB_ERR_SHAPE (or NB_ERR_ARG for a bad attribute). */
	char *err;
	size_t err_len;
} nb_custom_shape_args;

/* What a kernel sees when nb_run reaches a node.  The elements are float
 * in an NB_F32 graph and double in an NB_F64 one, contiguous, row-major.
 * The kernel writes all out_size elements of out and nothing else: out is
 * the node's own buffer, sized by the shape rule, never shared with an
 * input (nb_compile gives a custom node no input's buffer).  Results
 * should depend on the inputs, attributes, threads and training alone,
 * so that runs repeat bit for bit (docs/design.md). */
typedef struct nb_custom_kernel_args {
	int n_in;
	const void *const *in;    /* input k's elements (const float * or const double *) */
	const nb_shape *in_shape; /* input k's shape */
	const int64_t *in_size;   /* input k's element count */
	void *out;                /* the output's elements (float * or double *) */
	nb_shape out_shape;       /* what the shape rule gave */
	int64_t out_size;
	nb_dtype dtype;
	const nb_custom_attrs *attrs;
	void *user;
	int threads;        /* OpenMP threads the kernel may use: num_threads(threads) */
	bool training;      /* nb_graph_training at the run */
	int64_t batch_rows; /* nb_graph_batch_rows at the run (0 = all rows) */
	/* A kernel that rejects its input values (an index out of range)
	 * writes why here and returns an error status, usually NB_ERR_VALUE:
	 * nb_run stops there and returns it, the message on the graph. */
	char *err;
	size_t err_len;
} nb_custom_kernel_args;

typedef nb_status (*nb_custom_kernel)(const nb_custom_kernel_args *k);

/* What a VJP sees when nb_grads reaches a node. */
typedef struct nb_custom_vjp_args {
	int n_in;
	nb_tensor *const *in; /* the node's inputs */
	nb_tensor *out;       /* the node (its output) */
	nb_tensor *gout;      /* dL/d out, out's shape */
	const bool *need;     /* need[k]: input k wants a gradient */
	const nb_custom_attrs *attrs;
	void *user;
} nb_custom_vjp_args;

/* Sets gin[k], dL/d in[k] of in[k]'s shape, for each k with need[k],
 * built with public ops from the tensors above (NULL: zero).  These
 * nodes are differentiated in turn for a second derivative. */
typedef void (*nb_custom_vjp)(const nb_custom_vjp_args *a, nb_tensor **gin);

typedef struct nb_custom_op nb_custom_op; /* a registered op, owned by its graph */

typedef struct nb_custom_def {
	/* 1 to NB_CUSTOM_NAME_MAX letters, digits, '_', '.' or '-', starting
	 * with a letter or '_'; not a built-in op's name.  Nodes are named
	 * after it ("swish_12"); DOT and profiles show it. */
	const char *name;
	int n_inputs; /* 1 to NB_CUSTOM_MAX_INPUTS */
	/* The output shape from the inputs' shapes and the attributes
	 * (required). */
	nb_status (*shape)(const nb_custom_shape_args *a, nb_shape *out);
	/* The kernels: the graph's dtype's is required, the other optional. */
	nb_custom_kernel forward_f32, forward_f64;
	/* NULL: the op has no gradient, and nb_grads through it fails naming
	 * it (wrap the node in nb_stop_gradient where none should flow). */
	nb_custom_vjp vjp;
	/* Extra DOT label text for a node (e.g. "beta 1.5"); may be NULL. */
	void (*label)(const nb_custom_attrs *attrs, void *user, char *buf, size_t n);
	/* A small random instance in the f64 graph g, for
	 * nb_custom_gradcheck: returns op's output and fills wrt[] (at most
	 * 8) with the leaves to check; may be NULL. */
	nb_tensor *(*example)(nb_graph *g, const nb_custom_op *op, nb_tensor **wrt, int *n_wrt);
	void *user; /* handed to every callback; must outlive the graph */
} nb_custom_def;

/* Registers def with g (the definition is copied; def->user is not) and
 * returns the op, valid as long as g.  A bad definition (NULL def, name,
 * shape rule; no kernel for g's dtype: NB_ERR_DTYPE; 0 or more than
 * NB_CUSTOM_MAX_INPUTS inputs; a name that is malformed, a built-in op's
 * or another registered op's) fails g with a message and returns NULL, as
 * does a failed g.  Registering the same definition (same name and
 * callbacks) again returns the op registered first. */
NB_API const nb_custom_op *nb_custom_register(nb_graph *g, const nb_custom_def *def);
/* A node of op with inputs in[0..n) (tensors of op's graph) and attrs
 * (NULL: all zero).  As every constructor: the placeholder on a failed
 * graph; a wrong input count, a NULL input or one of another graph, or
 * the shape rule's refusal fails the graph.  A NULL op (a failed
 * registration) gives the inputs' graph's placeholder. */
NB_API nb_tensor *nb_custom(const nb_custom_op *op, nb_tensor *const *in, int n,
                            const nb_custom_attrs *attrs);
NB_API const char *nb_custom_name(const nb_custom_op *op);

/* nb_op_gradcheck for a definition: registers def with a new f64 graph
 * seeded with seed, builds def->example there, and checks
 * sum(y * c), c fixed random weights, by central differences.  NB_ERR_ARG
 * without an example; errbuf (may be NULL) gets the graph's message. */
NB_API nb_status nb_custom_gradcheck(const nb_custom_def *def, uint64_t seed,
                                     nb_gradcheck_report *rep, char *errbuf, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* NABLA_OP_H */
