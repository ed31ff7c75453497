/*
 * The convolution's kernel families and the plan that picks one (not
 * public API).  docs/conv.md describes the maths, the rules and the
 * measurements; docs/design.md where to add a family.
 *
 * Every pass of a convolution node (forward, input gradient, weight
 * gradient) runs one path.  policy.c picks it from the geometry and the
 * algorithm asked for, together with the thread count and the blocking
 * (nb__conv_plan_of); the op (conv.c) runs it through the one dispatch
 * table nb__conv_paths.  Each family file documents its maths and adjoint
 * at the top and has the same interface: geometry and plan in, workspace
 * bytes out, f32 / f64 entry points for the passes it implements.
 */
#ifndef NB_CONV_PLAN_H
#define NB_CONV_PLAN_H

#include "ops/conv/conv.h"

/* Geometry of one convolution, whichever of the three ops holds it. */
typedef struct nb__conv_geom {
	int64_t n, c, h, w;    /* input */
	int64_t o, cg, kh, kw; /* weight [O, C/groups, kH, kW] */
	int64_t oh, ow;        /* output */
	int64_t sh, sw, pt, pl, pb, pr, dh, dw;
	int64_t groups, og; /* og = O / groups */
	int algo;           /* nb_conv_algo */
} nb__conv_geom;

/* The pass a node computes. */
typedef enum nb__conv_pass {
	CONV_PASS_FORWARD,     /* conv2d: y = conv(x, w) + b */
	CONV_PASS_INPUT_GRAD,  /* conv2d_backward_input: dx = conv^T(dy, w) */
	CONV_PASS_WEIGHT_GRAD, /* conv2d_backward_weight: dw = sum_n dy_n col(x_n)^T */
} nb__conv_pass;

/* The kernel paths, one per way of computing a pass. */
typedef enum nb__conv_path {
	CONV_PATH_IM2COL,            /* im2col.c: column matrix + BLIS GEMM, any convolution */
	CONV_PATH_DIRECT,            /* direct.c: forward and weight gradient, one group */
	CONV_PATH_DIRECT_TRANSPOSED, /* direct.c: input gradient at stride 1 */
	CONV_PATH_DIRECT_ROWS,       /* direct.c: forward and weight gradient at stride 1 */
	CONV_PATH_DIRECT_PHASES,     /* direct.c: input gradient, any stride */
	CONV_PATH_ONE_CHANNEL,       /* onechan.c: forward and weight gradient, C == 1 */
	CONV_PATH_DEPTHWISE,         /* depthwise.c: C/groups == 1, all passes */
	CONV_PATH_WINOGRAD,          /* winograd.c: F(2x2, 3x3), all passes */
	CONV_PATH_COUNT
} nb__conv_path;

/* How a node runs: computed by nb__conv_plan_of from the geometry, the
 * thread count and the ISA level, once per program (nb_compile) and
 * thread count. */
typedef struct nb__conv_plan {
	nb__conv_path path;
	nb__conv_pass pass;
	size_t es;         /* element size */
	int team;          /* the threads the node may use (nb_exec threads) */
	int isa;           /* the ISA level it runs at (nb_exec isa) */
	int threads;       /* > 1: images split over this many threads */
	bool blis_threads; /* im2col, threads == 1: the GEMM on BLIS's threads */
	int row_threads;   /* direct forward, fewer images than threads: > 0
	                      splits each image's output rows over this many */
	int64_t chunk;     /* im2col: at most this many images per GEMM */
	int64_t rows;      /* im2col: output rows per band (oH: whole images) */
} nb__conv_plan;

/* A family's entry points for one element type; NULL where the path does
 * not compute the pass.  ws: the node's workspace (nb__conv_plan_node's
 * bytes), b: the bias or NULL.  Each is compiled once per ISA level
 * (ops/variants.h): F_f32_base, F_f32_avx2, F_f32_avx512, declared by
 * NB__CONV_FWD(F) / NB__CONV_BWD(F); the table holds them by level and
 * the op runs the one of the plan's isa. */
#define NB__CONV_ENTRY_TYPES(T, SFX)                                                               \
	typedef void nb__conv_fwdfn_##SFX(const nb__conv_geom *g, const nb__conv_plan *p,          \
	                                  const T *x, const T *w, const T *b, T *y, void *ws);     \
	typedef void nb__conv_bwdfn_##SFX(const nb__conv_geom *g, const nb__conv_plan *p,          \
	                                  const T *dy, const T *a, T *out, void *ws);              \
	typedef nb__conv_fwdfn_##SFX *nb__conv_fwd_##SFX;                                          \
	typedef nb__conv_bwdfn_##SFX *nb__conv_bwd_##SFX;
NB__CONV_ENTRY_TYPES(float, f32)
NB__CONV_ENTRY_TYPES(double, f64)
#undef NB__CONV_ENTRY_TYPES
#define NB__CONV_DECL(KIND, F)                                                                     \
	nb__conv_##KIND##fn_f32 F##_f32_base, F##_f32_avx2, F##_f32_avx512;                        \
	nb__conv_##KIND##fn_f64 F##_f64_base, F##_f64_avx2, F##_f64_avx512;
#define NB__CONV_FWD(F) NB__CONV_DECL(fwd, F)
#define NB__CONV_BWD(F) NB__CONV_DECL(bwd, F)

/* A row of the dispatch table: the entry points by ISA level. */
typedef struct nb__conv_family {
	const char *name; /* for the profile */
	size_t (*workspace)(const nb__conv_geom *g, const nb__conv_plan *p);
	nb__conv_fwd_f32 forward_f32[NB_ISA_LEVELS];
	nb__conv_fwd_f64 forward_f64[NB_ISA_LEVELS];
	nb__conv_bwd_f32 input_grad_f32[NB_ISA_LEVELS]; /* (dy, w) -> dx */
	nb__conv_bwd_f64 input_grad_f64[NB_ISA_LEVELS];
	nb__conv_bwd_f32 weight_grad_f32[NB_ISA_LEVELS]; /* (dy, x) -> dw */
	nb__conv_bwd_f64 weight_grad_f64[NB_ISA_LEVELS];
} nb__conv_family;

extern const nb__conv_family nb__conv_paths[CONV_PATH_COUNT];

/* policy.c */
nb__conv_geom nb__conv_geom_of(const nb_tensor *t);
/* The plan of node t with geometry g for `team` threads at ISA level isa:
 * the path, the batch threads and the blocks; its workspace is
 * nb__conv_paths[path].workspace(g, &plan). */
nb__conv_plan nb__conv_plan_of(const nb_tensor *t, const nb__conv_geom *g, int team, int isa);
/* What a convolution node keeps as its nb_exec plan (nb_opdef.plan). */
typedef struct nb__conv_node_plan {
	nb__conv_geom geom;
	nb__conv_plan plan;
} nb__conv_node_plan;
/* The op's nb_opdef.plan: fills *out for x->threads and x->isa and
 * returns the workspace bytes. */
size_t nb__conv_plan_node(const nb_tensor *t, const nb_exec *x, void *out);
/* NB_CONV_WINOGRAD's shape rule, for the error message */
bool nb__conv_wino_fits(const nb__conv_geom *g);

#endif
