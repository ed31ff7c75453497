/*
 * Internal structures shared by the graph core, the ops and the optimizers.
 * Nothing here is public API.
 */
#ifndef NB_INTERNAL_H
#define NB_INTERNAL_H

#include "nabla.h"
#include "ops/ops.h"

#include <assert.h>
#include <stdarg.h>

#define NB_ALIGN 64

/* n rounded up to a multiple of NB_ALIGN */
static inline size_t nb__align_up(size_t n)
{
	return (n + NB_ALIGN - 1) / NB_ALIGN * NB_ALIGN;
}

/* Readable bytes a tensor's buffer keeps past its end.  BLIS 0.9's small-
 * matrix kernels (the zen3 "sup" path) can read one leading dimension
 * past the end of an A or B operand (e.g. sgemm 4x36x297 with B
 * transposed reads a fifth row of A); the values only feed results that
 * are dropped, but at the end of a mapping the read faults.  Our GEMM
 * operands are rows of the last dimension, or of H*W for [N,C,H,W]. */
static inline size_t nb__blas_slack(nb_shape s, size_t es)
{
	int64_t row = s.ndim >= 4 ? s.d[s.ndim - 2] * s.d[s.ndim - 1]
	              : s.ndim    ? s.d[s.ndim - 1]
	                          : 1;
	return nb__align_up((size_t)row * es);
}
/* Largest element count of a tensor: its bytes (8 per f64) fit an int64. */
#define NB_MAX_SIZE ((int64_t)1 << 60)

/* Role of a node, for DOT colours and for the scheduler. */
enum nb_role {
	NB_ROLE_INPUT = 0,
	NB_ROLE_PARAM,
	NB_ROLE_CONST,
	NB_ROLE_STATE, /* optimizer state, running statistics: persistent */
	NB_ROLE_OP,    /* forward computation */
	NB_ROLE_GRAD,  /* built by the backward pass */
	NB_ROLE_UPDATE /* optimizer update: writes a parameter in place */
};

/* tensor flags */
enum {
	NB_TF_REQUIRES_GRAD = 1u << 0, /* depends on a parameter (or marked input) */
	NB_TF_PERSISTENT = 1u << 1,    /* owns its data; not planned */
	NB_TF_BACKWARD = 1u << 2,      /* a leaf made while building a backward pass */
	/* elements are double whatever the graph's dtype (nb__leaf_f64): an
	 * optimizer's hyper-parameters, which the kernels use as doubles */
	NB_TF_F64 = 1u << 3,
	/* an input that has been given values (nb_feed_*, nb_data, nb_fit):
	 * nb_run refuses a program reading an input never fed */
	NB_TF_FED = 1u << 4,
	/* a state leaf of an optimizer (nb__state_like: velocity, moments), as
	 * opposed to the model's own state (batchnorm's running statistics):
	 * NB_CKPT_MODEL_ONLY and nb_init_from leave it alone */
	NB_TF_OPTIM_STATE = 1u << 5,
};

/* a leaf of the model proper: a parameter, or state that is not an
 * optimizer's (what NB_CKPT_MODEL_ONLY restores) */
#define NB__MODEL_LEAF(t)                                                                          \
	((t)->role == NB_ROLE_PARAM ||                                                             \
	 ((t)->role == NB_ROLE_STATE && !((t)->flags & NB_TF_OPTIM_STATE)))

/* Op attributes: small integers and reals an op keeps beside its inputs.
 * Each op documents which slots it uses. */
typedef struct nb_attrs {
	int64_t i[12]; /* 12: convolution keeps 9 geometry numbers and 2 sizes */
	double f[6];
	void *p; /* custom: the registered op (ops/custom.c); NULL for the others */
} nb_attrs;

struct nb_tensor {
	nb_graph *g;
	int id;   /* index in g->nodes: stable, used by DOT and the planner */
	int op;   /* enum nb_op */
	int role; /* enum nb_role */
	unsigned flags;
	nb_shape shape;
	int64_t size; /* number of elements */
	int n_in;
	nb_tensor **in;
	nb_attrs a;
	char *name;
	void *data; /* persistent storage, or the planned arena slot */
	void *aux;  /* op-private persistent storage (argmax, saved stats) */
	size_t aux_bytes;
	nb_program *eval_prog; /* cache for nb_eval */
};

/* An object the graph frees with itself (nb__graph_own). */
struct nb_owned {
	void *p;
	void (*destroy)(void *);
};

struct nb_graph {
	nb_dtype dtype;
	size_t esize;
	nb_status status;
	char errmsg[1024];
	nb_tensor **nodes;
	int n_nodes, cap_nodes;
	nb_tensor *placeholder;
	nb_program **progs;
	int n_progs, cap_progs;
	struct nb_owned *owned; /* objects freed with the graph (nb__graph_own) */
	int n_owned, cap_owned;
	uint64_t rng[4];
	bool training;
	int64_t batch_rows;   /* leading rows holding real samples, 0 = all (batchnorm) */
	int64_t batch_first;  /* the global row of row 0 (a rank's shard; dropout) */
	int building_role;    /* role given to new op nodes (OP, or GRAD in backward) */
	nb_program *last_run; /* its computed targets are what nb_read may read */
};

/* What a kernel runs with, handed to it by nb_run: everything a kernel may
 * depend on besides its node (inputs, attributes, aux) comes from here, so
 * that no kernel reads the graph's mode, a process-wide thread count or a
 * buffer it was not given.  One nb_exec per step: the fields are the
 * program's, plan the step's own. */
typedef struct nb_exec {
	void *workspace;        /* the program's scratch space, shared by its steps */
	size_t workspace_bytes; /* at least what this step's plan asked for */
	int threads;            /* OpenMP threads the kernel may use (1 or more) */
	int isa;                /* ISA level the kernels may use (nb__isa_level) */
	bool training;          /* training mode: batch statistics, dropout masks */
	int64_t batch_rows;     /* leading rows holding real samples, 0 = all */
	int64_t batch_first;    /* the global row of row 0 (nb_graph_set_batch_first) */
	const void *plan;       /* the step's plan (nb_opdef.plan), or NULL */
} nb_exec;

struct nb_program {
	nb_graph *g;
	int n; /* schedule length */
	nb_tensor **sched;
	int64_t *offset; /* byte offset in arena, -1 for persistent */
	char *arena;
	size_t arena_bytes, naive_bytes;
	void *workspace;
	size_t workspace_bytes;
	/* the plans (nb_opdef.plan) of the steps that have one, made for this
	 * thread count and ISA level; made again when a run finds others */
	void **plan; /* per step: its plan, or NULL */
	char *plan_store;
	int plan_threads, plan_isa;
	/* called after every step of a run when set: a data-parallel
	 * optimizer's program moves its gradient sums along between the
	 * backward kernels (nb__dist_progress) */
	void (*between)(void *user);
	void *between_user;
	nb_tensor **targets; /* what stays readable after a run */
	int n_targets;
	nb_tensor **inputs; /* the inputs (nb_input) the schedule reads */
	int n_inputs;
	double *prof_ns; /* per schedule step, summed over runs; NULL: off */
	int64_t prof_runs;
	/* per step: the fusion whose kernel runs it, or NULL; NULL when the
	 * program has none (see nb_fusion) */
	const struct nb_fusion **fused;
};

/* A fusion: a step whose kernel computes its node t straight from what
 * t's producer t->in[0] reads (its inputs, no other node), so that the
 * producer, which no other step reads and no one asked for, never runs
 * and its output is never stored.  nb_compile fuses every step that
 * matches (unless nb__fusion_off); the fused kernel gives the same bits as
 * the two steps.  The table is in graph/compile.c, the fusions with their
 * ops (ops/pool.c, ops/elementwise.c).  No current fusion removes a
 * producer that has a plan or an aux buffer (maxpool2d's argmax); one that
 * does must plan for its kernel itself. */
typedef struct nb_fusion {
	const char *name; /* in the profile report, e.g. "maxpool2d+relu" */
	int op, producer; /* t's op and its producer's (enum nb_op) */
	/* anything else t must have (attributes, further nodes), or NULL */
	bool (*match)(const nb_tensor *t);
	/* t's kernel in the fused step; it runs with the plan and workspace
	 * t's op asks for (nb_opdef.plan), and the profile names the fusion */
	void (*forward_f32)(const nb_exec *x, nb_tensor *t);
	void (*forward_f64)(const nb_exec *x, nb_tensor *t);
} nb_fusion;

extern const nb_fusion nb__fuse_maxpool_relu, nb__fuse_maxpool_backward_relu, nb__fuse_add_relu;
extern const nb_fusion *const nb__fusions[];
extern const int nb__n_fusions;
/* tests: compile without fusions (to compare their bits with the steps') */
extern bool nb__fusion_off;

/* The op table entry.  Every op has one; see src/ops/optable.c. */
typedef struct nb_opdef {
	const char *name;
	int n_inputs; /* -1: variadic (at least one) */
	/* Infer t->shape from inputs and attributes; on a bad input call
	 * nb__op_fail and return the status. */
	nb_status (*shape)(nb_tensor *t);
	/* The kernels: compute t's data from its inputs' (see nb_exec). */
	void (*forward_f32)(const nb_exec *x, nb_tensor *t);
	void (*forward_f64)(const nb_exec *x, nb_tensor *t);
	/* Emit gradient nodes: gin[i] for every input with need[i], given the
	 * gradient gout of t.  NULL gin[i] means zero. */
	void (*vjp)(nb_tensor *t, nb_tensor *gout, nb_tensor **gin, const bool *need);
	/* Extra DOT label text (e.g. "stride 2"); may be NULL. */
	void (*label)(const nb_tensor *t, char *buf, size_t n);
	/* How a node runs, decided once by nb_compile (and again by nb_run
	 * when the thread count or ISA level changed): plan_bytes of room at
	 * plan for whatever the kernel needs to know (a kernel path, threads,
	 * block sizes), filled for x->threads and x->isa (x->workspace is not
	 * set yet; plan is NULL when plan_bytes is 0).  Returns the workspace
	 * bytes the kernel will use, which the kernel then finds in its
	 * nb_exec.  NULL: no plan, no workspace. */
	size_t (*plan)(const nb_tensor *t, const nb_exec *x, void *plan);
	size_t plan_bytes;
	/* The kernel a planned node runs when the op has several (e.g.
	 * "winograd"), for the profile report; may be NULL. */
	const char *(*kernel)(const nb_tensor *t, const void *plan);
	/* Build a small random instance in an f64 graph for gradcheck: returns
	 * the op's output and fills wrt[] (at most 8) with the leaves to check. */
	nb_tensor *(*example)(nb_graph *g, nb_tensor **wrt, int *n_wrt);
	unsigned flags;
	/* The op's name for a node with these attributes when it is not
	 * .name (custom: the registered op's name); NULL: .name. */
	const char *(*name_of)(const nb_attrs *a);
} nb_opdef;

enum {
	NB_OPF_LEAF = 1u << 0,     /* input, parameter, constant */
	NB_OPF_NO_GRAD = 1u << 1,  /* output never requires grad (ids, masks) */
	NB_OPF_INTERNAL = 1u << 2, /* a backward helper; checked through its parent */
	NB_OPF_UPDATE = 1u << 3,   /* writes an input in place; scheduled last */
	/* output element i depends only on element i of each input of the same
	 * size: the planner may give the output the buffer of such an input
	 * whose last reader this is (elementwise ops, reshape) */
	NB_OPF_INPLACE = 1u << 4,
	/* run as late as possible: just before the first step that reads it
	 * (waiting for communication that overlaps the steps before) */
	NB_OPF_DEFER = 1u << 5,
};

extern const nb_opdef *const nb__ops[NB_OP_COUNT];

/* The name of t's op as messages, node names, DOT and profiles show it:
 * the table's, or a custom op's registered name. */
static inline const char *nb__op_name(const nb_tensor *t)
{
	const nb_opdef *d = nb__ops[t->op];
	return d->name_of ? d->name_of(&t->a) : d->name;
}

/* ---- graph internals ---------------------------------------------------- */

/* Record the first error on the graph (printf-style message). */
void nb__fail(nb_graph *g, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, prefixed with "op(in0, in1, ...): " for node t being built. */
nb_status nb__op_fail(nb_tensor *t, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Create an op node: validates inputs (NULL, other graphs, failed graph),
 * runs the shape rule.  Returns the placeholder on any failure. */
nb_tensor *nb__op(int op, nb_tensor *const *in, int n, const nb_attrs *a);
nb_tensor *nb__op1(int op, nb_tensor *x, const nb_attrs *a);
nb_tensor *nb__op2(int op, nb_tensor *x, nb_tensor *y, const nb_attrs *a);
nb_tensor *nb__leaf(nb_graph *g, int op, int role, const char *name, nb_shape s);
/* A zeroed constant leaf whose elements are double in any graph (flag
 * NB_TF_F64; nb__get, nb__set, feeding and reading convert as for an f64
 * graph). */
nb_tensor *nb__leaf_f64(nb_graph *g, const char *name, nb_shape s);
nb_tensor *nb__zeros_like(nb_tensor *t);
nb_tensor *nb__state_like(nb_tensor *t, const char *suffix); /* zeroed, persistent */
bool nb__is_placeholder(const nb_tensor *t);
nb_graph *nb__graph_of(nb_tensor *const *in, int n);

int nb__register_program(nb_graph *g, nb_program *p);
/* Unregister and free a program (its tensors' eval caches are cleared). */
void nb__program_release(nb_graph *g, nb_program *p);
void nb__program_free(nb_program *p);
/* NB_ERR_ARG, recorded on the graph with the input's name, when p reads an
 * input that was never fed; else NB_OK */
nb_status nb__program_check_fed(nb_program *p);
/* Hand p to the graph: nb_graph_free calls destroy(p), after freeing the
 * programs and before freeing the nodes, the last object handed over
 * first.  NB_ERR_NOMEM (nothing recorded on the graph, p not taken: the
 * caller still owns it) or NB_OK. */
nb_status nb__graph_own(nb_graph *g, void *p, void (*destroy)(void *));

/* shapes */
bool nb__shape_eq(nb_shape a, nb_shape b);
/* NumPy broadcast of a and b into out; false if incompatible. */
bool nb__broadcast_shape(nb_shape a, nb_shape b, nb_shape *out);
int nb__norm_axis(int axis, int ndim); /* -1 -> ndim-1; returns -1 if bad */
/* The same for an op argument: on a bad axis fails the graph with
 * "op(a): axis 3 out of range for shape [2,3]" and returns -1. */
int nb__axis_arg(nb_tensor *a, const char *op, int axis);

/* ISA levels (src/ops/gemm.c): 0 baseline, 1 AVX2 + FMA, 2 AVX-512F; the
 * CPU's, capped by NABLA_ISA.  nb__isa_from_name: the level of a name, -1
 * for an unknown one. */
int nb__isa_level(void);
int nb__isa_from_name(const char *s);

/* RNG (xoshiro256**), owned by the graph */
uint64_t nb__rng_next(nb_graph *g);
double nb__rng_uniform(nb_graph *g); /* [0, 1) */
double nb__rng_normal(nb_graph *g);

/* whether t's elements are float (else double) */
static inline bool nb__is_f32(const nb_tensor *t)
{
	return t->g->dtype == NB_F32 && !(t->flags & NB_TF_F64);
}

/* the element i of a tensor's current data as double */
static inline double nb__get(const nb_tensor *t, int64_t i)
{
	return nb__is_f32(t) ? (double)((const float *)t->data)[i] : ((const double *)t->data)[i];
}
static inline void nb__set(nb_tensor *t, int64_t i, double v)
{
	if (nb__is_f32(t))
		((float *)t->data)[i] = (float)v;
	else
		((double *)t->data)[i] = v;
}

/* UTF-8 (utf8.c): length of the well-formed sequence at s (at most n bytes;
 * no overlong forms, no surrogates, nothing above U+10FFFF), 0 if there is
 * none; and whether all of s[0..n) is well-formed. */
size_t nb__utf8_seq(const unsigned char *s, size_t n);
bool nb__utf8_valid(const char *s, size_t n);
/* s[0..n) as markup text (SVG's XML character data, Graphviz's HTML-like
 * labels) on fp: & < > " escaped, and ' too with NB_MARKUP_APOS; malformed
 * UTF-8 and control characters written as bad, except tab, newline and
 * carriage return with NB_MARKUP_KEEP_SPACE (utf8.c). */
enum { NB_MARKUP_APOS = 1u << 0, NB_MARKUP_KEEP_SPACE = 1u << 1 };
void nb__markup_text(FILE *fp, const char *s, size_t n, const char *bad, unsigned flags);
/* A string read from a file, made safe for a message that may reach a
 * terminal: control characters (C0, DEL, C1) and malformed UTF-8 bytes
 * become '?', and a string longer than buf ends in "...".  Returns buf. */
const char *nb__shown(const char *s, char *buf, size_t n);

/* Example helpers for gradcheck: a random shape with 1..maxdim dims each
 * in [1, maxlen], and a parameter filled U(lo, hi). */
nb_shape nb__rand_shape(nb_graph *g, int min_ndim, int max_ndim, int maxlen);
/* gradcheck of y, an example's output, through the loss sum(y * c) with
 * fixed random weights c in [0.5, 1.5] (nb_op_gradcheck); the graph's
 * status when it has failed or y is NULL */
nb_status nb__gradcheck_weighted(nb_graph *g, nb_tensor *y, nb_tensor *const *wrt, int n,
                                 nb_gradcheck_report *rep);
nb_tensor *nb__rand_param(nb_graph *g, const char *name, nb_shape s, double lo, double hi);

#endif
