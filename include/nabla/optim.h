/* nabla/optim.h — part of the public API; include "nabla.h" instead.
 *
 * Optimizers, learning-rate schedules and the exponentially weighted moving
 * average.  nb_step, nb_optim_set_lr and the other basics are declared in
 * nabla.h; docs/optim.md has every update rule as a formula.
 */
/* the core types first, outside the guard: whichever header comes first,
 * nabla.h then includes this one with them defined */
#include "nabla.h"

#ifndef NABLA_OPTIM_H
#define NABLA_OPTIM_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- optimizers ------------------------------------------------------- */

typedef enum nb_optim_kind {
	NB_OPTIM_INVALID = -1, /* what nb_optim_kind_from_name returns for an unknown name */
	NB_OPTIM_SGD = 0,      /* w <- w - lr g */
	NB_OPTIM_MOMENTUM,     /* velocity v, see nb_momentum_style */
	NB_OPTIM_NESTEROV,     /* momentum with the Nesterov look-ahead */
	NB_OPTIM_RMSPROP,      /* s <- rho s + (1-rho) g^2, w <- w - lr g/(sqrt(s)+eps) */
	NB_OPTIM_ADAM,         /* bias-corrected moments; weight decay as L2 on g */
	NB_OPTIM_ADAMW,        /* Adam with decoupled weight decay */
	NB_OPTIM_KIND_COUNT
} nb_optim_kind;

/* The two conventions for the velocity.  They differ by a factor (1-beta)
 * on the gradient, so the same lr gives steps (1-beta) times smaller with
 * EWMA (10x smaller at beta 0.9). */
typedef enum nb_momentum_style {
	/* v <- beta v + g, w <- w - lr v: heavy ball, PyTorch's SGD momentum
	 * (dampening 0).  The default. */
	NB_MOMENTUM_CLASSIC = 0,
	/* v <- beta v + (1-beta) g, w <- w - lr v: the lecture notes' form, an
	 * exponentially weighted average of the gradients (v_0 = 0). */
	NB_MOMENTUM_EWMA,
} nb_momentum_style;

/* All options of every optimizer.  nb_optim_defaults(kind) gives a kind's
 * defaults, every field filled in:
 *
 *   kind       lr     momentum   beta2   eps    weight_decay
 *   sgd        0.01   -          -       -      0
 *   momentum   0.01   0.9        -       -      0
 *   nesterov   0.01   0.9        -       -      0
 *   rmsprop    0.01   -          0.99    1e-8   0      (beta2 is rho/alpha)
 *   adam       0.001  0.9        0.999   1e-8   0      (momentum is beta1)
 *   adamw      0.001  0.9        0.999   1e-8   0.01
 *
 * With as_written false (a zero-initialised struct such as
 * (nb_optim_opts){.kind = NB_OPTIM_ADAM, .lr = 3e-4}, as in nabla 0.1), a
 * field left 0 takes the kind's default, so that lr 0, momentum 0, a beta
 * of 0 or adamw's weight decay 0 cannot be asked for that way; start from
 * nb_optim_defaults(kind) (as_written true) and change the fields you want
 * instead: every value is then taken as written, 0 included.
 *
 * "-": the option does not apply to the kind and must stay 0 (an error
 * says so otherwise).  Weight decay is L2 on the gradient (g + wd w)
 * except for adamw, which decays the weights directly (w <- w - lr wd w).
 * clip_norm > 0 rescales all gradients together when their global L2 norm
 * exceeds it (0: no clipping).  nesterov with kind momentum is the same as
 * kind nesterov.  Errors (a negative or non-finite lr, a beta outside
 * [0, 1), eps <= 0, ...) are recorded on the graph and the constructor
 * returns NULL. */
typedef struct nb_optim_opts {
	nb_optim_kind kind;
	double lr;
	double momentum; /* beta of the velocity; beta1 for adam/adamw */
	double beta2;    /* second-moment decay: adam's beta2, rmsprop's rho */
	double eps;
	double weight_decay;
	double clip_norm;
	bool nesterov;
	nb_momentum_style style;
	/* data-parallel training (include/nabla/dist.h): with more than one
	 * rank, every gradient is summed over the ranks inside the step
	 * (buckets of non-blocking allreduces) before clipping and the
	 * updates, and nb_optim_grad gives the sums.  The loss must be each
	 * rank's share of the global loss (nb_fit weights every sample by
	 * 1/global batch).  NULL or one rank: as in one process. */
	nb_dist *dist;
	/* true: every field is taken as written, 0 included — the
	 * nb_*_defaults() functions set it; false (a zero-initialised struct,
	 * as in nabla 0.1): a 0 field means its default */
	bool as_written;
} nb_optim_opts;

/* The defaults of kind (the table above) with as_written true, for
 * nb_optimizer: nb_optim_opts o = nb_optim_defaults(NB_OPTIM_ADAM);
 * o.momentum = 0; ...  Kind nesterov has nesterov true.  An invalid kind
 * gives {kind, as_written} alone, which nb_optimizer refuses. */
NB_API nb_optim_opts nb_optim_defaults(nb_optim_kind kind);

/* Differentiates loss w.r.t. every parameter it depends on, appends one
 * update node per parameter (optimizer state as persistent leaves named
 * "<param>.<slot>": .v velocity, .s rmsprop's mean square, .m/.v Adam's
 * moments; the hyper-parameters as one constant vector of doubles,
 * "<kind>.hyper", which the optimizer rewrites when the learning rate or
 * the step count changes) and compiles one program; nb_step runs it.
 * Owned by the graph. */
NB_API nb_optim *nb_optimizer(nb_graph *g, nb_tensor *loss, nb_optim_opts opts);
/* the handle the optimizer was made with (nb_optim_opts.dist), or NULL */
NB_API nb_dist *nb_optim_dist(const nb_optim *o);

typedef struct nb_sgd_opts {
	double lr;           /* default 0.01 */
	double weight_decay; /* L2 added to the gradient */
	double clip_norm;    /* > 0: clip the gradients' global norm to this */
	/* true: every field is taken as written, 0 included (set by nb_sgd_defaults);
	 * false (zero-initialised, as in nabla 0.1): a 0 field means its default */
	bool as_written;
} nb_sgd_opts;

/* {lr 0.01, as_written true} */
NB_API nb_sgd_opts nb_sgd_defaults(void);

/* Plain SGD: differentiates loss w.r.t. every parameter, appends the
 * update to the schedule and compiles.  Owned by the graph.  The other
 * optimizers below. */
NB_API nb_optim *nb_sgd(nb_graph *g, nb_tensor *loss, nb_sgd_opts opts);

typedef struct nb_momentum_opts {
	double lr;       /* default 0.01 */
	double momentum; /* beta, default 0.9 */
	double weight_decay, clip_norm;
	bool nesterov;
	nb_momentum_style style; /* default classic (PyTorch) */
	/* true: every field is taken as written, 0 included (set by nb_momentum_defaults);
	 * false (zero-initialised, as in nabla 0.1): a 0 field means its default */
	bool as_written;
} nb_momentum_opts;

typedef struct nb_rmsprop_opts {
	double lr;    /* default 0.01 */
	double alpha; /* decay of the mean square, default 0.99 (PyTorch's name) */
	double eps;   /* default 1e-8 */
	double weight_decay, clip_norm;
	/* true: every field is taken as written, 0 included (set by nb_rmsprop_defaults);
	 * false (zero-initialised, as in nabla 0.1): a 0 field means its default */
	bool as_written;
} nb_rmsprop_opts;

typedef struct nb_adam_opts {
	double lr;           /* default 0.001 */
	double beta1, beta2; /* defaults 0.9, 0.999 */
	double eps;          /* default 1e-8 */
	double weight_decay; /* adam: L2, default 0; adamw: decoupled, default 0.01 */
	double clip_norm;
	/* true: every field is taken as written, 0 included (set by nb_adam_defaults and
	 * nb_adamw_defaults);
	 * false (zero-initialised, as in nabla 0.1): a 0 field means its default */
	bool as_written;
} nb_adam_opts;

/* The defaults above with as_written true: start from these to set a
 * field to 0 (o = nb_adam_defaults(); o.beta1 = 0;). */
NB_API nb_momentum_opts nb_momentum_defaults(void); /* lr 0.01, momentum 0.9, classic */
NB_API nb_rmsprop_opts nb_rmsprop_defaults(void);   /* lr 0.01, alpha 0.99, eps 1e-8 */
/* lr 0.001, beta1 0.9, beta2 0.999, eps 1e-8, weight decay 0 */
NB_API nb_adam_opts nb_adam_defaults(void);
/* the same with weight decay 0.01, for nb_adamw */
NB_API nb_adam_opts nb_adamw_defaults(void);

NB_API nb_optim *nb_momentum(nb_graph *g, nb_tensor *loss, nb_momentum_opts opts);
NB_API nb_optim *nb_rmsprop(nb_graph *g, nb_tensor *loss, nb_rmsprop_opts opts);
NB_API nb_optim *nb_adam(nb_graph *g, nb_tensor *loss, nb_adam_opts opts);
NB_API nb_optim *nb_adamw(nb_graph *g, nb_tensor *loss, nb_adam_opts opts);

/* "sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw" (any case);
 * NB_OPTIM_INVALID for anything else. */
NB_API nb_optim_kind nb_optim_kind_from_name(const char *name);
NB_API const char *nb_optim_kind_name(nb_optim_kind kind); /* NULL when invalid */

/* The optimizer's kind (NB_OPTIM_INVALID for NULL). */
NB_API nb_optim_kind nb_optim_kind_of(const nb_optim *o);
/* The options in effect, every default filled in and as_written true (lr
 * is the current one), so that nb_optimizer(g, loss, nb_optim_opts_of(o))
 * makes the same optimizer again. */
NB_API nb_optim_opts nb_optim_opts_of(const nb_optim *o);
/* Deprecated names of the two above, kept for this release. */
NB_API nb_optim_kind nb_optim_get_kind(const nb_optim *o);
NB_API nb_optim_opts nb_optim_get_opts(const nb_optim *o);
/* Number of trained parameters and the i-th of them. */
NB_API int nb_optim_num_params(const nb_optim *o);
NB_API nb_tensor *nb_optim_param(const nb_optim *o, int i);
/* The state tensor slot ("v", "s", "m": the table of nb_optimizer) of a
 * trained parameter, the persistent leaf "<param>.<slot>"; NULL when the
 * optimizer keeps no such state for param. */
NB_API nb_tensor *nb_optim_state(const nb_optim *o, const nb_tensor *param, const char *slot);
/* The graph the optimizer belongs to (NULL for NULL). */
NB_API nb_graph *nb_optim_graph(const nb_optim *o);
/* The largest step count: 2^53, so that the count is exact as a double
 * (Adam's bias correction and the schedules compute with it).  nb_step past
 * it fails with NB_ERR_VALUE; a checkpoint with a larger step is refused. */
#define NB_OPTIM_MAX_STEPS ((int64_t)1 << 53)

/* The step counter (Adam's t).  nb_step increments it before running;
 * a checkpoint restores it with nb_optim_set_steps (0 to NB_OPTIM_MAX_STEPS,
 * NB_ERR_ARG otherwise). */
NB_API void nb_optim_set_steps(nb_optim *o, int64_t steps);
/* Global L2 norm of all gradients in the last step, before clipping;
 * NaN without clip_norm or before the first step. */
NB_API double nb_optim_grad_norm(const nb_optim *o);

/* sqrt of the sum of squares of every element of every tensor: the global
 * norm that gradient clipping uses, as a differentiable op. */
NB_API nb_tensor *nb_global_norm(nb_tensor *const *ts, int n);

/* ---- learning-rate schedules ------------------------------------------- */

typedef enum nb_schedule_kind {
	NB_SCHED_INVALID = -1,
	NB_SCHED_CONSTANT = 0, /* base_lr */
	NB_SCHED_STEP,         /* base_lr gamma^floor(t / step_size) */
	NB_SCHED_EXPONENTIAL,  /* base_lr gamma^t */
	NB_SCHED_COSINE,       /* min_lr + (base_lr - min_lr)(1 + cos(pi t/T))/2 */
	NB_SCHED_KIND_COUNT
} nb_schedule_kind;

/* Step t counts from 0 (the first nb_step).  With warmup_steps = W > 0 the
 * rate rises linearly, base_lr (t+1)/W for t < W, and the schedule proper
 * then runs on t - W.  Cosine decays over T = total_steps - W steps (the
 * whole run including warm-up is total_steps long) and stays at min_lr
 * after.  min_lr is also a floor for the step and exponential decays. */
typedef struct nb_schedule {
	nb_schedule_kind kind;
	double base_lr;      /* >= 0, as an optimizer's lr */
	int64_t step_size;   /* step */
	double gamma;        /* step, exponential: factor in (0, 1] */
	int64_t total_steps; /* cosine */
	int64_t warmup_steps;
	double min_lr;
} nb_schedule;

/* The learning rate for step t (t >= 0); NaN if the schedule is invalid. */
NB_API double nb_schedule_lr(const nb_schedule *s, int64_t step);
/* NB_OK, or NB_ERR_ARG with a message in err (may be NULL). */
NB_API nb_status nb_schedule_check(const nb_schedule *s, char *err, size_t errlen);
/* "constant", "step", "exponential" (or "exp"), "cosine" (any case). */
NB_API nb_schedule_kind nb_schedule_kind_from_name(const char *name);
NB_API const char *nb_schedule_kind_name(nb_schedule_kind kind);

/* ---- exponentially weighted moving average ----------------------------- */

/* v_t = beta v_{t-1} + (1-beta) x_t with v_0 = 0, for t = 1..n, into out
 * (which may be x).  With bias_correct, out_t = v_t / (1 - beta^t).
 * NB_ERR_ARG for NULL pointers, n < 0 or beta outside [0, 1). */
NB_API nb_status nb_ewma(const double *x, int64_t n, double beta, bool bias_correct, double *out);

#ifdef __cplusplus
}
#endif
#endif
