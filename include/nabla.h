/*
 * nabla — reverse-mode automatic differentiation for neural networks in C.
 *
 * The one public header.  A model is a DAG of tensor operations owned by a
 * graph; gradients are derived symbolically (more nodes of the same DAG);
 * a compiled program runs forward, backward and the optimizer update with
 * no allocation per step.
 *
 * Errors never abort: they are sticky on the graph.  After the first
 * failure every constructor returns a harmless placeholder, so a caller can
 * build a whole model and check nb_graph_status() once.  Functions that do
 * I/O or run programs return an nb_status as well.
 */
#ifndef NABLA_H
#define NABLA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NABLA_VERSION_STRING "0.1.0"

/* What the shared library exports: the functions declared in these
 * headers, nothing else (it is built with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define NB_API __attribute__((visibility("default")))
#else
#define NB_API
#endif

/* ---- basic types ------------------------------------------------------ */

typedef enum nb_dtype { NB_F32 = 0, NB_F64 = 1 } nb_dtype;

typedef enum nb_status {
	NB_OK = 0,
	NB_ERR_ARG,    /* bad argument: NULL, out of range, unknown option */
	NB_ERR_SHAPE,  /* shapes do not fit the op */
	NB_ERR_DTYPE,  /* wrong element type */
	NB_ERR_GRAPH,  /* misuse of the graph: other graph, not scalar, ... */
	NB_ERR_NOMEM,  /* allocation failed */
	NB_ERR_IO,     /* file could not be read or written */
	NB_ERR_FORMAT, /* file contents are corrupt or not what was expected */
	NB_ERR_VALUE,  /* a value fed at run time is out of range */
} nb_status;

#define NB_MAX_DIMS 6

typedef struct nb_shape {
	int ndim;
	int64_t d[NB_MAX_DIMS];
} nb_shape;

#define NB__NARGS_(a, b, c, d, e, f, N, ...) N
#define NB__NARGS(...) NB__NARGS_(__VA_ARGS__, 6, 5, 4, 3, 2, 1, 0)
/* NB_SHAPE(64, 784) is a 2-D shape; NB_SCALAR has no dimensions. */
#define NB_SHAPE(...) ((nb_shape){.ndim = NB__NARGS(__VA_ARGS__), .d = {__VA_ARGS__}})
#define NB_SCALAR ((nb_shape){.ndim = 0})

typedef struct nb_graph nb_graph;
typedef struct nb_tensor nb_tensor;
typedef struct nb_program nb_program;
typedef struct nb_optim nb_optim;
typedef struct nb_dist nb_dist; /* data-parallel training (nabla/dist.h) */

NB_API const char *nb_version(void);
/* The vector instruction set the CPU offers nabla's GEMM: "avx512" (AVX-512F),
 * "avx2" (AVX2 + FMA) or "baseline"; the environment variable NABLA_ISA set to
 * one of these names caps it at a lower level (a higher one than the CPU has,
 * or another value, is ignored; `nabla` refuses it).  With "avx512", GEMMs
 * use nabla's AVX-512 micro-kernels where BLIS chose a configuration without
 * AVX-512 (nb_gemm_kernel).  Fixed when first asked; thread-safe. */
NB_API const char *nb_isa(void);
/* "avx512": nabla's micro-kernels inside BLIS; "blis": BLIS's own for the
 * configuration it chose (nb_blis_config). */
NB_API const char *nb_gemm_kernel(void);
/* The BLIS sub-configuration BLIS chose for this CPU ("zen3", "skx", ...). */
NB_API const char *nb_blis_config(void);
NB_API const char *nb_status_string(nb_status s);
NB_API const char *nb_dtype_name(nb_dtype t);
/* Writes "[64,784]" into buf; returns buf. */
NB_API char *nb_shape_str(nb_shape s, char *buf, size_t n);
/* Number of elements; -1 when ndim is out of range, a dimension is
 * negative or the count exceeds 2^60. */
NB_API int64_t nb_shape_size(nb_shape s);

/* Threads for our loops (OpenMP) and for BLIS GEMM; 0 (or less) = all
 * cores.  The count is process-wide: a kernel uses the count current when
 * it starts, whichever thread runs its graph (OpenMP's own default, which
 * this sets too, is kept per thread).  Until set, the first use
 * (nb_graph_new, nb_num_threads) sets all cores; an explicit count is
 * never overwritten by that.  Results repeat bit for bit at a fixed count,
 * so do not change it while a run is under way (docs/design.md, "Threads
 * and determinism").
 *
 * Thread safety.  These two may be called from any thread at any time.
 * Separate graphs may be built, run, saved and freed on separate threads at
 * the same time; a graph and everything belonging to it (tensors,
 * programs, optimizers, models, its error state: nb_graph_status and
 * nb_graph_errmsg) must be used by one thread at a time.  No function
 * keeps state between calls outside a graph or object it is given, except
 * the thread count and nb_graph_render (Graphviz), which is not
 * thread-safe.  Each running graph uses the whole count: k graphs running
 * at once want about cores / k threads. */
NB_API void nb_set_num_threads(int n);
NB_API int nb_num_threads(void);
/* the former name of nb_num_threads, kept for release 0.1 */
NB_API int nb_get_num_threads(void);

/* ---- graph ------------------------------------------------------------ */

NB_API nb_graph *nb_graph_new(nb_dtype dtype); /* NULL only when out of memory */
NB_API void nb_graph_free(nb_graph *g);
NB_API nb_status nb_graph_status(const nb_graph *g); /* NB_ERR_ARG for NULL */
NB_API const char *nb_graph_errmsg(const nb_graph *g);
NB_API void nb_graph_clear_error(nb_graph *g);
NB_API nb_dtype nb_graph_dtype(const nb_graph *g);
NB_API void nb_graph_seed(nb_graph *g, uint64_t seed);
/* Training mode drives dropout and batch normalisation (default: true). */
NB_API void nb_graph_set_training(nb_graph *g, bool training);
NB_API bool nb_graph_training(const nb_graph *g);
/* How many leading rows (indices along axis 0) of the batch hold real
 * samples; 0 (the default) means all.  A last, partial batch padded to the
 * graph's fixed batch size sets it (nb_fit does): batch normalisation in
 * training mode then takes its statistics, and the running averages, from
 * those rows only, as a batch of that size would.  Read at run time;
 * larger than a batchnorm input's N counts as all rows.  Negative is
 * NB_ERR_ARG, recorded on the graph. */
NB_API nb_status nb_graph_set_batch_rows(nb_graph *g, int64_t rows);
NB_API int64_t nb_graph_batch_rows(const nb_graph *g);
/* The row of the whole (global) batch that row 0 of this batch is: a rank's
 * shard under data parallelism starts at its first sample (nb_dist_shard;
 * nb_fit sets it).  Dropout draws the masks of rows first, first + 1, ...,
 * so N ranks draw what one process on the global batch draws.  0 (the
 * default) for one process; negative or past 2^60 is NB_ERR_ARG. */
NB_API nb_status nb_graph_set_batch_first(nb_graph *g, int64_t first);
NB_API int64_t nb_graph_batch_first(const nb_graph *g);
NB_API int nb_graph_num_nodes(const nb_graph *g);

/* ---- leaves ----------------------------------------------------------- */

typedef enum nb_init_kind {
	NB_INIT_ZEROS = 0,
	NB_INIT_ONES,
	NB_INIT_CONSTANT,       /* a */
	NB_INIT_UNIFORM,        /* U(a, b) */
	NB_INIT_NORMAL,         /* N(a, b^2): mean a, std b */
	NB_INIT_XAVIER_UNIFORM, /* U(-r, r), r = gain*sqrt(6/(fan_in+fan_out)) */
	NB_INIT_XAVIER_NORMAL,  /* std = gain*sqrt(2/(fan_in+fan_out)) */
	NB_INIT_HE_UNIFORM,     /* U(-r, r), r = gain*sqrt(3/fan_in) */
	NB_INIT_HE_NORMAL,      /* std = gain/sqrt(fan_in) */
} nb_init_kind;

/* a, b: parameters of the kind; gain 0 means the default (1 for Xavier,
 * sqrt(2) for He). */
typedef struct nb_init {
	nb_init_kind kind;
	double a, b, gain;
} nb_init;

#define NB_ZEROS ((nb_init){.kind = NB_INIT_ZEROS})
#define NB_ONES ((nb_init){.kind = NB_INIT_ONES})
#define NB_UNIFORM(lo, hi) ((nb_init){.kind = NB_INIT_UNIFORM, .a = (lo), .b = (hi)})
#define NB_NORMAL(mean, std) ((nb_init){.kind = NB_INIT_NORMAL, .a = (mean), .b = (std)})

/* Fan-in/fan-out of a weight: [out,in] for dense, [O,I,kh,kw] for conv. */
NB_API void nb_fans(nb_shape s, double *fan_in, double *fan_out);

/* An input must be fed (nb_feed_*, nb_init_tensor or nb_data) before a
 * program that reads it runs; once fed it stays fed. */
NB_API nb_tensor *nb_input(nb_graph *g, const char *name, nb_shape shape);
/* Parameter names are unique in a graph: a second parameter with an
 * existing parameter's name is NB_ERR_ARG (the placeholder is returned). */
NB_API nb_tensor *nb_param(nb_graph *g, const char *name, nb_shape shape, nb_init init);
/* values may be NULL (zeros); they are copied, converted to the graph dtype */
NB_API nb_tensor *nb_constant(nb_graph *g, const char *name, nb_shape shape, const double *values);
NB_API nb_tensor *nb_scalar(nb_graph *g, double value);
/* Re-initialise a parameter (or any leaf) with the graph's RNG. */
NB_API nb_status nb_init_tensor(nb_tensor *t, nb_init init);
/* Inputs normally get no gradient; this makes nb_grad() reach them. */
NB_API nb_tensor *nb_requires_grad(nb_tensor *t);

/* ---- tensor queries and data ------------------------------------------ */

NB_API nb_graph *nb_tensor_graph(const nb_tensor *t);
NB_API const char *nb_tensor_name(const nb_tensor *t);
/* Renaming a parameter to another parameter's name is NB_ERR_ARG. */
NB_API nb_tensor *nb_set_name(nb_tensor *t, const char *name);
NB_API nb_shape nb_tensor_shape(const nb_tensor *t);
NB_API int64_t nb_tensor_size(const nb_tensor *t);
NB_API const char *nb_tensor_op(const nb_tensor *t); /* a custom op's: its registered name */
NB_API bool nb_is_param(const nb_tensor *t);
/* The i-th parameter of the graph in creation order, NULL past the end. */
NB_API nb_tensor *nb_graph_param(const nb_graph *g, int i);
NB_API int nb_graph_num_params(const nb_graph *g);
NB_API nb_tensor *nb_graph_find(const nb_graph *g, const char *name);

/* Copy n values into a leaf (input, parameter or constant); n must equal the
 * tensor's size.  Values are converted to the graph's dtype. */
NB_API nb_status nb_feed_f32(nb_tensor *t, const float *data, int64_t n);
NB_API nb_status nb_feed_f64(nb_tensor *t, const double *data, int64_t n);
/* Copy a tensor's current values out (after a run for computed tensors). */
NB_API nb_status nb_read_f32(const nb_tensor *t, float *out, int64_t n);
NB_API nb_status nb_read_f64(const nb_tensor *t, double *out, int64_t n);
/* Value of a one-element tensor after a run (NaN on error). */
NB_API double nb_item(const nb_tensor *t);
/* Direct pointer to the data (graph dtype; doubles for an optimizer's
 * hyper-parameter vector), valid until the next run of a different
 * program; NULL before a computed tensor has been planned.  An input
 * whose pointer is taken counts as fed (the caller writes it). */
NB_API void *nb_data(nb_tensor *t);

/* ---- ops: elementwise (NumPy broadcasting) -----------------------------
 * Gradients at kinks and ties follow PyTorch (docs/ops.md, "Kinks and
 * ties"): clamp passes the gradient at its bounds, relu/satlin/satlins
 * give 0 at their corners, abs gives 0 at 0, a tied maximum splits it. */

NB_API nb_tensor *nb_add(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_sub(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_mul(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_div(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_neg(nb_tensor *a);
NB_API nb_tensor *nb_add_scalar(nb_tensor *a, double s);
NB_API nb_tensor *nb_mul_scalar(nb_tensor *a, double s);
NB_API nb_tensor *nb_rsub_scalar(nb_tensor *a, double s); /* s - a */
NB_API nb_tensor *nb_exp(nb_tensor *a);
NB_API nb_tensor *nb_log(nb_tensor *a);
NB_API nb_tensor *nb_sqrt(nb_tensor *a);
NB_API nb_tensor *nb_square(nb_tensor *a);
/* a^p elementwise; gradient p a^(p-1), except p = 0: none (0, also at
 * a = 0).  At a = 0: 1 for p = 1, 0 for p > 1, +-inf for p < 1 (p != 0). */
NB_API nb_tensor *nb_pow(nb_tensor *a, double p);
NB_API nb_tensor *nb_abs(nb_tensor *a); /* gradient sign(a): 0 at a = 0 */
/* min(max(a, lo), hi); gradient 1 for lo <= a <= hi (bounds included, as
 * PyTorch's clamp), else 0.  lo > hi or a NaN bound is NB_ERR_ARG. */
NB_API nb_tensor *nb_clamp(nb_tensor *a, double lo, double hi);
/* Identity forward; no gradient flows back through it. */
NB_API nb_tensor *nb_stop_gradient(nb_tensor *a);

/* ---- ops: linear algebra and shape ------------------------------------ */

/* [M,K]x[K,N] -> [M,N]; with more dims a batched product over the leading
 * dims (b may be 2-D and shared by every batch).  BLIS GEMM underneath. */
NB_API nb_tensor *nb_matmul(nb_tensor *a, nb_tensor *b);
/* op(a) x op(b) where op transposes the last two dims when the flag is set. */
NB_API nb_tensor *nb_matmul_t(nb_tensor *a, nb_tensor *b, bool trans_a, bool trans_b);
NB_API nb_tensor *nb_transpose(nb_tensor *a, int axis0, int axis1);
NB_API nb_tensor *nb_reshape(nb_tensor *a, nb_shape shape); /* one dim may be -1 */
NB_API nb_tensor *nb_flatten(nb_tensor *a);                 /* [N, ...] -> [N, prod] */
NB_API nb_tensor *nb_concat(nb_tensor *const *ts, int n, int axis);
NB_API nb_tensor *nb_slice(nb_tensor *a, int axis, int64_t start, int64_t end);

/* ---- ops: reductions --------------------------------------------------- */

NB_API nb_tensor *nb_sum(nb_tensor *a);  /* over everything -> scalar */
NB_API nb_tensor *nb_mean(nb_tensor *a); /* over everything -> scalar */
NB_API nb_tensor *nb_sum_axes(nb_tensor *a, const int *axes, int n, bool keepdims);
NB_API nb_tensor *nb_mean_axes(nb_tensor *a, const int *axes, int n, bool keepdims);
/* Maximum along an axis.  Where several elements hold the maximum, each
 * gets an equal share of the gradient (as torch.amax and torch.max(a)); a
 * NaN is the maximum of its slice (the NaNs share the gradient). */
NB_API nb_tensor *nb_max_axis(nb_tensor *a, int axis, bool keepdims);
NB_API nb_tensor *nb_max(nb_tensor *a); /* over everything -> scalar */

/* ---- ops: activations (the notes' names) ------------------------------ */

NB_API nb_tensor *nb_hardlim(nb_tensor *v);  /* 1 if v >= 0 else 0 */
NB_API nb_tensor *nb_hardlims(nb_tensor *v); /* +1 if v >= 0 else -1 */
/* Straight-through versions: forward as above, gradient passed unchanged
 * (so the perceptron rule is SGD on the half sum of squares). */
NB_API nb_tensor *nb_hardlim_st(nb_tensor *v);
NB_API nb_tensor *nb_hardlims_st(nb_tensor *v);
NB_API nb_tensor *nb_purelin(nb_tensor *v); /* identity */
/* satlin, satlins: gradient 1 strictly inside, 0 at and beyond the
 * corners (PyTorch's hardtanh; unlike nb_clamp, which passes it there) */
NB_API nb_tensor *nb_satlin(nb_tensor *v);                      /* clamp to [0, 1] */
NB_API nb_tensor *nb_satlins(nb_tensor *v);                     /* clamp to [-1, 1] */
NB_API nb_tensor *nb_logsig(nb_tensor *v, double a);            /* 1/(1+exp(-a v)) */
NB_API nb_tensor *nb_sigmoid(nb_tensor *v);                     /* logsig with a = 1 */
NB_API nb_tensor *nb_tanh_ab(nb_tensor *v, double a, double b); /* a tanh(b v) */
NB_API nb_tensor *nb_tanh(nb_tensor *v);
NB_API nb_tensor *nb_relu(nb_tensor *v);              /* gradient 0 at v = 0, as PyTorch */
NB_API nb_tensor *nb_softmax(nb_tensor *v, int axis); /* stable; axis may be -1 */
NB_API nb_tensor *nb_log_softmax(nb_tensor *v, int axis);

/* ---- ops: losses ------------------------------------------------------- */

typedef enum nb_reduction { NB_MEAN = 0, NB_SUM, NB_NONE } nb_reduction;

NB_API nb_tensor *nb_mse(nb_tensor *pred, nb_tensor *target, nb_reduction r);
/* The notes' L = 1/2 sum (y - yhat)^2. */
NB_API nb_tensor *nb_half_sse(nb_tensor *pred, nb_tensor *target);
/* BCE on probabilities in (0,1) (clamped by 1e-12 inside the logs). */
NB_API nb_tensor *nb_bce(nb_tensor *prob, nb_tensor *target, nb_reduction r);
/* BCE from logits: max(z,0) - z y + log(1 + exp(-|z|)). */
NB_API nb_tensor *nb_bce_logits(nb_tensor *logits, nb_tensor *target, nb_reduction r);
/* Softmax over the last axis fused with cross-entropy; one-hot (or soft)
 * targets of the same shape.  Mean/sum over the batch (leading dims). */
NB_API nb_tensor *nb_cce(nb_tensor *logits, nb_tensor *onehot, nb_reduction r);
/* Same with integer class ids (stored as values) of shape logits[:-1]. */
NB_API nb_tensor *nb_sparse_cce(nb_tensor *logits, nb_tensor *ids, nb_reduction r);
/* ids (class ids as values) -> ids.shape + [classes] of 0/1; no gradient.
 * A bad id (not an integer in [0, classes)) makes nb_run fail with
 * NB_ERR_VALUE, as in nb_sparse_cce. */
NB_API nb_tensor *nb_one_hot(nb_tensor *ids, int classes);

/* ---- differentiation --------------------------------------------------- */

/* Gradient of a scalar loss with respect to wrt, as new nodes of the graph.
 * Where wrt does not influence loss the gradient is a zero constant. */
NB_API nb_tensor *nb_grad(nb_tensor *loss, nb_tensor *wrt);
/* Many at once, sharing one backward pass. */
NB_API nb_status nb_grads(nb_tensor *loss, nb_tensor *const *wrt, int n, nb_tensor **out);

/* ---- compile and run -------------------------------------------------- */

/* A schedule computing the targets (and nothing they do not need), with
 * buffers planned by liveness.  Owned by the graph.  Steps are fused where
 * a node that nothing else reads and no target names can be computed inside
 * its reader's kernel, with the same bits (relu then maxpool2d, both ways:
 * see docs/design.md, "Compile and run"); such a node has no value after
 * a run. */
NB_API nb_program *nb_compile(nb_graph *g, nb_tensor *const *targets, int n);
/* NB_ERR_ARG, naming the input, when the program reads an input that was
 * never fed (nb_eval and nb_step too); nothing runs then. */
NB_API nb_status nb_run(nb_program *p);
/* Compile (cached per tensor) and run a program computing t. */
NB_API nb_status nb_eval(nb_tensor *t);
NB_API int nb_program_num_steps(const nb_program *p);
/* Bytes of transient buffers after liveness reuse, and without reuse. */
NB_API size_t nb_program_planned_bytes(const nb_program *p);
NB_API size_t nb_program_unplanned_bytes(const nb_program *p);
/* Profiling: while on, nb_run times every kernel (a clock read per step)
 * and sums over runs; turning it on or off clears the sums.  The report
 * prints one line per op or fusion (e.g. "maxpool2d+relu"), slowest first
 * (nodes, ms per run, share), then the 12 slowest nodes with their shapes
 * and names. */
NB_API nb_status nb_program_profile(nb_program *p, bool on);
NB_API nb_status nb_program_profile_report(const nb_program *p, FILE *f);
/* Milliseconds per run spent in the nodes of one op or fusion (by name,
 * e.g. "conv2d", "maxpool2d+relu"); -1 when profiling is off, nothing ran,
 * or no node has it. */
NB_API double nb_program_profile_op_ms(const nb_program *p, const char *op);

/* ---- optimizers ------------------------------------------------------- */

/* nb_sgd and the other optimizers' constructors: nabla/optim.h. */
/* One training step: forward, backward and update.  Afterwards the loss
 * and every nb_optim_grad hold this step's values. */
NB_API nb_status nb_step(nb_optim *o);
/* Takes effect at the next nb_step (no recompile); a negative or NaN lr is
 * an error recorded on the graph. */
NB_API void nb_optim_set_lr(nb_optim *o, double lr);
NB_API double nb_optim_lr(const nb_optim *o);
NB_API int64_t nb_optim_steps(const nb_optim *o);
NB_API nb_program *nb_optim_program(nb_optim *o);
/* Gradient tensor of a parameter inside the optimizer's backward pass. */
NB_API nb_tensor *nb_optim_grad(nb_optim *o, nb_tensor *param);
/* Keep t (e.g. the logits) readable after each step: it becomes a target
 * of the step's program, which is recompiled. */
NB_API nb_status nb_optim_keep(nb_optim *o, nb_tensor *t);

/* ---- gradient checking ------------------------------------------------ */

/* An element passes when |analytic - numeric| <= atol + rtol |numeric|.
 * With as_written false (a zero-initialised struct, as in nabla 0.1) a 0
 * field means its default; nb_gradcheck_defaults() gives the defaults with
 * as_written true, from which atol 0 or rtol 0 can be asked for.  eps must
 * be positive, atol and rtol not negative (NB_ERR_ARG). */
typedef struct nb_gradcheck_opts {
	double eps;  /* central-difference step; default 1e-6 */
	double atol; /* default 1e-6 */
	double rtol; /* default 1e-4 */
	/* true: every field is taken as written, 0 included (set by
	 * nb_gradcheck_defaults); false: a 0 field means its default */
	bool as_written;
} nb_gradcheck_opts;

/* {eps 1e-6, atol 1e-6, rtol 1e-4, as_written true} */
NB_API nb_gradcheck_opts nb_gradcheck_defaults(void);

typedef struct nb_gradcheck_report {
	double max_abs_err, max_rel_err;
	int worst_tensor;    /* index into wrt of the worst element */
	int64_t worst_index; /* flat index of the worst element */
	double worst_analytic, worst_numeric;
	int64_t checked, skipped_kinks, failed;
	bool passed;
} nb_gradcheck_report;

/* Compare the symbolic gradient of a scalar loss with central differences,
 * element by element, for every tensor in wrt (parameters or inputs).  The
 * graph must be f64.  Elements where the one-sided differences disagree
 * (a kink such as relu at 0 lies within eps) are skipped and counted. */
NB_API nb_status nb_gradcheck(nb_tensor *loss, nb_tensor *const *wrt, int n, nb_gradcheck_opts opts,
                              nb_gradcheck_report *rep);

/* ---- DOT export -------------------------------------------------------- */

typedef enum nb_dot_view {
	NB_DOT_FORWARD = 0, /* forward nodes only */
	NB_DOT_BACKWARD,    /* forward, gradient and update nodes */
} nb_dot_view;

/* One record node per tensor, {name | op | shape}, filled by role; ids are
 * node indices ("n12"), so output diffs cleanly; edges into gradient and
 * update nodes are dashed (docs/dot.md).  A failed graph can be written
 * too.  Write failures return NB_ERR_IO, recorded on the graph with the
 * path and the system's reason.  nb_graph_save_dot and nb_graph_render
 * write files atomically like nb_checkpoint_save (a temporary file renamed
 * over path's target, its symbolic links followed); an existing special
 * file such as /dev/stdout is written directly. */
NB_API nb_status nb_graph_write_dot(nb_graph *g, FILE *fp, nb_dot_view view);
NB_API nb_status nb_graph_save_dot(nb_graph *g, const char *path, nb_dot_view view);
/* Render with libgvc in any format of nb_graph_render_formats() ("svg",
 * "png", "pdf", ...); NB_ERR_ARG when built without it or for a format
 * not in that list, NB_ERR_FORMAT when Graphviz writes nothing (a plugin
 * it lists but has disabled).  Not thread-safe. */
NB_API nb_status nb_graph_render(nb_graph *g, const char *path, const char *format,
                                 nb_dot_view view);
/* The formats nb_graph_render writes with the Graphviz found at run time,
 * space-separated in Graphviz's order ("bmp canon cmap ... pdf ... png ...
 * svg ..."): its device plugins, without the display devices (gtk, x11,
 * xlib) and vdx (it crashes on tooltips, docs/dot.md); "" when nabla was
 * built without libgvc.  The string is kept for
 * the process.  Not thread-safe (the first call loads Graphviz). */
NB_API const char *nb_graph_render_formats(void);

#ifdef __cplusplus
}
#endif

/* the rest of the API, one part per module */
#include "nabla/nn.h"         /* conv, pooling, batchnorm, dropout */
#include "nabla/layers.h"     /* layer builders */
#include "nabla/train.h"      /* the training loop */
#include "nabla/optim.h"      /* optimizers, schedules, EWMA */
#include "nabla/gradnorms.h"  /* per-layer gradient statistics */
#include "nabla/data.h"       /* dataset readers and batching */
#include "nabla/checkpoint.h" /* safetensors checkpoints */
#include "nabla/plot.h"       /* SVG plots */
#include "nabla/onnx.h"       /* ONNX export */
#include "nabla/op.h"         /* adding your own op */
#include "nabla/dist.h"       /* data-parallel training over MPI */
#include "nabla/debug.h"      /* op-table introspection, plot helpers */

#endif /* NABLA_H */
