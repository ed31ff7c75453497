/* Optimizers, learning-rate schedules, EWMA and the `nabla ewma` command. */
#include "test_util.h"

#include "graph/internal.h" /* roles and the op table, to check state and labels */
#include "ops/update.h"     /* the update ops' inputs, to build update nodes by hand */
#include "series.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the test problem -------------------------------------------------------------
 * L = sum_i (a_i w_i^2 / 2 + b_i w_i) over two parameters w0 [3] and w1 [2]
 * (elements 0-2 and 3-4 below), so dL/dw_i = a_i w_i + b_i. */

#define NQ 5
static const double qa[NQ] = {1.0, 2.0, 0.5, 3.0, 1.5};
static const double qb[NQ] = {0.3, -0.2, 0.1, -0.4, 0.25};
static const double qw[NQ] = {1.0, -0.5, 2.0, 0.7, -1.2};

typedef struct quad {
	nb_graph *g;
	nb_tensor *w[2], *L;
} quad;

static quad quad_new(nb_dtype dt)
{
	quad q = {.g = nb_graph_new(dt)};
	for (int k = 0, off = 0; k < 2; k++) {
		int n = k ? 2 : 3;
		q.w[k] = nb_param(q.g, k ? "w1" : "w0", NB_SHAPE(n), NB_ZEROS);
		nb_feed_f64(q.w[k], qw + off, n);
		nb_tensor *a = nb_constant(q.g, "a", NB_SHAPE(n), qa + off);
		nb_tensor *b = nb_constant(q.g, "b", NB_SHAPE(n), qb + off);
		nb_tensor *Lk = nb_add(nb_mul_scalar(nb_sum(nb_mul(a, nb_square(q.w[k]))), 0.5),
		                       nb_sum(nb_mul(b, q.w[k])));
		q.L = q.L ? nb_add(q.L, Lk) : Lk;
		off += n;
	}
	return q;
}

static void quad_read(const quad *q, double *w)
{
	ck_assert_int_eq(nb_read_f64(q->w[0], w, 3), NB_OK);
	ck_assert_int_eq(nb_read_f64(q->w[1], w + 3, 2), NB_OK);
}

/* ---- references: the update rules written out in f64 ----------------------------- */

typedef struct ref {
	double w[NQ], s1[NQ], s2[NQ]; /* weights and up to two state slots */
	int64_t t;
	double norm; /* global gradient norm before clipping */
} ref;

static ref ref_new(void)
{
	ref r = {0};
	memcpy(r.w, qw, sizeof r.w);
	return r;
}

/* g = a w + b, rescaled to clip / ||g|| when the global norm exceeds clip */
static void ref_grad(ref *r, double clip, double *g)
{
	double ss = 0;
	for (int i = 0; i < NQ; i++) {
		g[i] = qa[i] * r->w[i] + qb[i];
		ss += g[i] * g[i];
	}
	r->norm = sqrt(ss);
	if (clip > 0 && r->norm > clip)
		for (int i = 0; i < NQ; i++)
			g[i] *= clip / r->norm;
}

/* w <- w - lr (g + wd w) */
static void ref_sgd(ref *r, const nb_optim_opts *o)
{
	double g[NQ];
	ref_grad(r, o->clip_norm, g);
	for (int i = 0; i < NQ; i++)
		r->w[i] -= o->lr * (g[i] + o->weight_decay * r->w[i]);
}

/* classic: v <- beta v + g;  EWMA: v <- beta v + (1-beta) g;  w <- w - lr v;
 * Nesterov: w <- w - lr (g + beta v) (EWMA: (1-beta) g + beta v) */
static void ref_momentum(ref *r, const nb_optim_opts *o)
{
	double g[NQ], beta = o->momentum;
	double k = o->style == NB_MOMENTUM_EWMA ? 1 - beta : 1;
	ref_grad(r, o->clip_norm, g);
	for (int i = 0; i < NQ; i++) {
		double gi = g[i] + o->weight_decay * r->w[i];
		r->s1[i] = beta * r->s1[i] + k * gi;
		r->w[i] -= o->lr * (o->nesterov ? k * gi + beta * r->s1[i] : r->s1[i]);
	}
}

/* s <- rho s + (1-rho) g^2, w <- w - lr g / (sqrt(s) + eps) */
static void ref_rmsprop(ref *r, const nb_optim_opts *o)
{
	double g[NQ];
	ref_grad(r, o->clip_norm, g);
	for (int i = 0; i < NQ; i++) {
		double gi = g[i] + o->weight_decay * r->w[i];
		r->s1[i] = o->beta2 * r->s1[i] + (1 - o->beta2) * gi * gi;
		r->w[i] -= o->lr * gi / (sqrt(r->s1[i]) + o->eps);
	}
}

/* Adam (L2: g + wd w) and AdamW (w <- w - lr wd w), bias-corrected */
static void ref_adam(ref *r, const nb_optim_opts *o)
{
	double g[NQ], b1 = o->momentum, b2 = o->beta2;
	bool adamw = o->kind == NB_OPTIM_ADAMW;
	ref_grad(r, o->clip_norm, g);
	r->t++;
	for (int i = 0; i < NQ; i++) {
		double gi = g[i] + (adamw ? 0 : o->weight_decay * r->w[i]);
		r->s1[i] = b1 * r->s1[i] + (1 - b1) * gi;
		r->s2[i] = b2 * r->s2[i] + (1 - b2) * gi * gi;
		double mh = r->s1[i] / (1 - pow(b1, (double)r->t));
		double vh = r->s2[i] / (1 - pow(b2, (double)r->t));
		if (adamw)
			r->w[i] -= o->lr * o->weight_decay * r->w[i];
		r->w[i] -= o->lr * mh / (sqrt(vh) + o->eps);
	}
}

typedef void (*ref_step)(ref *, const nb_optim_opts *);

static ref_step ref_for(nb_optim_kind k)
{
	switch (k) {
	case NB_OPTIM_SGD:
		return ref_sgd;
	case NB_OPTIM_MOMENTUM:
	case NB_OPTIM_NESTEROV:
		return ref_momentum;
	case NB_OPTIM_RMSPROP:
		return ref_rmsprop;
	default:
		return ref_adam;
	}
}

/* Run the optimizer and its reference side by side for steps steps; every
 * weight after every step must agree to tol. */
static void check_reference(nb_optim_opts opts, int steps, nb_dtype dt, double tol)
{
	quad q = quad_new(dt);
	nb_optim *o = nb_optimizer(q.g, q.L, opts);
	ck_graph_ok(q.g);
	ck_assert_ptr_nonnull(o);
	nb_optim_opts eff = nb_optim_opts_of(o);
	ref r = ref_new();
	for (int s = 1; s <= steps; s++) {
		ck_assert_int_eq(nb_step(o), NB_OK);
		ref_for(eff.kind)(&r, &eff);
		double w[NQ];
		quad_read(&q, w);
		for (int i = 0; i < NQ; i++)
			ck_assert_msg(fabs(w[i] - r.w[i]) <= tol,
			              "%s step %d w[%d] = %.17g, reference %.17g",
			              nb_optim_kind_name(eff.kind), s, i, w[i], r.w[i]);
		if (eff.clip_norm > 0)
			ck_near(nb_optim_grad_norm(o), r.norm, tol);
		/* the weights did move */
		ck_assert(fabs(r.w[0] - qw[0]) > 1e-6);
	}
	ck_assert_int_eq(nb_optim_steps(o), steps);
	nb_graph_free(q.g);
}

#define STEPS 6

START_TEST(test_sgd_reference)
{
	check_reference((nb_optim_opts){.kind = NB_OPTIM_SGD, .lr = 0.1}, STEPS, NB_F64, 1e-12);
	check_reference((nb_optim_opts){.kind = NB_OPTIM_SGD, .lr = 0.1, .weight_decay = 0.05},
	                STEPS, NB_F64, 1e-12);
}
END_TEST

START_TEST(test_momentum_reference)
{
	for (int style = 0; style < 2; style++)
		for (int nest = 0; nest < 2; nest++) {
			nb_optim_opts o = {.kind = NB_OPTIM_MOMENTUM,
			                   .lr = 0.05,
			                   .momentum = 0.8,
			                   .nesterov = nest,
			                   .style = (nb_momentum_style)style};
			check_reference(o, STEPS, NB_F64, 1e-12);
			o.weight_decay = 0.1;
			check_reference(o, STEPS, NB_F64, 1e-12);
		}
	/* kind nesterov is momentum with nesterov set */
	check_reference((nb_optim_opts){.kind = NB_OPTIM_NESTEROV, .lr = 0.05}, STEPS, NB_F64,
	                1e-12);

	/* v_ewma = (1-beta) v_classic: EWMA at lr is classic at lr (1-beta) */
	double w[2][NQ];
	for (int style = 0; style < 2; style++) {
		quad q = quad_new(NB_F64);
		nb_optim *o = nb_momentum(q.g, q.L,
		                          (nb_momentum_opts){.lr = style ? 0.5 : 0.05,
		                                             .style = (nb_momentum_style)style});
		for (int s = 0; s < 20; s++)
			ck_assert_int_eq(nb_step(o), NB_OK);
		quad_read(&q, w[style]);
		nb_graph_free(q.g);
	}
	for (int i = 0; i < NQ; i++) {
		ck_near(w[0][i], w[1][i], 1e-13);
		ck_assert(fabs(w[0][i] - qw[i]) > 0.1);
	}
}
END_TEST

/* L = w^2 / 2 from w = 1, so g = w; lr 0.1, beta 0.9.  Values by hand. */
static void scalar_steps(nb_optim_opts opts, double *w, int steps)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *x = nb_param(g, "w", NB_SHAPE(1), NB_ONES);
	nb_optim *o = nb_optimizer(g, nb_mul_scalar(nb_sum(nb_square(x)), 0.5), opts);
	ck_graph_ok(g);
	for (int s = 0; s < steps; s++) {
		ck_assert_int_eq(nb_step(o), NB_OK);
		w[s] = nb_item(x);
	}
	nb_graph_free(g);
}

START_TEST(test_momentum_conventions_by_hand)
{
	double w[3];
	nb_optim_opts o = {.kind = NB_OPTIM_MOMENTUM, .lr = 0.1, .momentum = 0.9};
	/* classic: v1 = 1, w1 = 0.9; v2 = 0.9 + 0.9 = 1.8, w2 = 0.72;
	 * v3 = 1.62 + 0.72 = 2.34, w3 = 0.486 */
	scalar_steps(o, w, 3);
	ck_near(w[0], 0.9, 1e-15);
	ck_near(w[1], 0.72, 1e-15);
	ck_near(w[2], 0.486, 1e-15);
	/* EWMA: v1 = 0.1, w1 = 0.99; v2 = 0.09 + 0.099 = 0.189, w2 = 0.9711 */
	o.style = NB_MOMENTUM_EWMA;
	scalar_steps(o, w, 2);
	ck_near(w[0], 0.99, 1e-15);
	ck_near(w[1], 0.9711, 1e-15);
	/* the first steps differ exactly by the factor 1 - beta: 0.1 vs 0.01 */
	ck_near((1 - w[0]) / (1 - 0.9), 1 - 0.9, 1e-14);
	/* Nesterov (classic): w1 = 1 - 0.1 (1 + 0.9) = 0.81;
	 * g2 = 0.81, v2 = 1.71, w2 = 0.81 - 0.1 (0.81 + 1.539) = 0.5751 */
	o.style = NB_MOMENTUM_CLASSIC;
	o.nesterov = true;
	scalar_steps(o, w, 2);
	ck_near(w[0], 0.81, 1e-15);
	ck_near(w[1], 0.5751, 1e-15);
	/* Nesterov (EWMA): w1 = 1 - 0.1 (0.1 + 0.09) = 0.981 */
	o.style = NB_MOMENTUM_EWMA;
	scalar_steps(o, w, 1);
	ck_near(w[0], 0.981, 1e-15);
	/* plain SGD for comparison: 0.9, 0.81 */
	scalar_steps((nb_optim_opts){.kind = NB_OPTIM_SGD, .lr = 0.1}, w, 2);
	ck_near(w[1], 0.81, 1e-15);
}
END_TEST

START_TEST(test_rmsprop_reference)
{
	nb_optim_opts o = {.kind = NB_OPTIM_RMSPROP, .lr = 0.01};
	check_reference(o, STEPS, NB_F64, 1e-12);
	o.beta2 = 0.9;
	o.weight_decay = 0.1;
	check_reference(o, STEPS, NB_F64, 1e-12);
	/* the first step: s = (1-rho) g^2, so w moves by lr g / (|g| sqrt(0.01) + eps):
	 * 10 lr against the gradient at the default rho 0.99 */
	double w[1];
	scalar_steps((nb_optim_opts){.kind = NB_OPTIM_RMSPROP, .lr = 0.01}, w, 1);
	ck_near(1 - w[0], 0.01 / (sqrt(1 - 0.99) + 1e-8), 1e-15);
}
END_TEST

START_TEST(test_adam_reference)
{
	nb_optim_opts o = {.kind = NB_OPTIM_ADAM, .lr = 0.01};
	check_reference(o, STEPS, NB_F64, 1e-12);
	o.weight_decay = 0.1;
	o.momentum = 0.8;
	o.beta2 = 0.99;
	check_reference(o, STEPS, NB_F64, 1e-12);
	o.kind = NB_OPTIM_ADAMW;
	check_reference(o, STEPS, NB_F64, 1e-12);
	check_reference((nb_optim_opts){.kind = NB_OPTIM_ADAMW, .lr = 0.01}, STEPS, NB_F64, 1e-12);
}
END_TEST

/* After bias correction the first step is lr g / (|g| + eps): lr times the
 * sign of the gradient, whatever its size. */
START_TEST(test_adam_first_step_is_sign)
{
	quad q = quad_new(NB_F64);
	double lr = 0.01;
	nb_optim *o = nb_adam(q.g, q.L, (nb_adam_opts){.lr = lr});
	ck_graph_ok(q.g);
	ck_assert_int_eq(nb_step(o), NB_OK);
	double w[NQ];
	quad_read(&q, w);
	for (int i = 0; i < NQ; i++) {
		double g = qa[i] * qw[i] + qb[i];
		ck_near(qw[i] - w[i], lr * g / (fabs(g) + 1e-8), 1e-15);
		ck_near(fabs(qw[i] - w[i]), lr, lr * 1e-6);
		ck_assert((qw[i] - w[i] > 0) == (g > 0));
	}
	nb_graph_free(q.g);
}
END_TEST

/* Adam's weight decay goes into the gradient and is normalised with it:
 * first step lr (g + wd w) / (|g + wd w| + eps).  AdamW's is decoupled:
 * lr wd w + lr g / (|g| + eps).  Different by exactly that. */
START_TEST(test_adam_vs_adamw_decay)
{
	double lr = 0.01, wd = 0.5, w[2][NQ];
	for (int k = 0; k < 2; k++) {
		quad q = quad_new(NB_F64);
		nb_adam_opts ao = {.lr = lr, .weight_decay = wd};
		nb_optim *o = k ? nb_adamw(q.g, q.L, ao) : nb_adam(q.g, q.L, ao);
		ck_graph_ok(q.g);
		ck_assert_int_eq(nb_step(o), NB_OK);
		quad_read(&q, w[k]);
		nb_graph_free(q.g);
	}
	for (int i = 0; i < NQ; i++) {
		double g = qa[i] * qw[i] + qb[i], gl2 = g + wd * qw[i];
		ck_near(qw[i] - w[0][i], lr * gl2 / (fabs(gl2) + 1e-8), 1e-15);
		ck_near(qw[i] - w[1][i], lr * wd * qw[i] + lr * g / (fabs(g) + 1e-8), 1e-15);
	}
	/* element 1: g = 2(-0.5) - 0.2 = -1.2, g + wd w = -1.45: Adam moves by
	 * lr, AdamW by lr + lr wd |w| = lr (1 + 0.25) */
	ck_near(fabs(qw[1] - w[0][1]), lr, 1e-9);
	ck_near(fabs(qw[1] - w[1][1]), lr * 1.25, 1e-9);
}
END_TEST

/* ---- clipping ------------------------------------------------------------------------ */

START_TEST(test_clip_global_norm)
{
	double g0 = 0, g1 = 0, g[NQ];
	for (int i = 0; i < NQ; i++) {
		g[i] = qa[i] * qw[i] + qb[i];
		*(i < 3 ? &g0 : &g1) += g[i] * g[i];
	}
	double norm = sqrt(g0 + g1);
	/* each parameter's own norm is below the bound, the global one above:
	 * only global clipping scales */
	double clip = 0.95 * norm;
	ck_assert(sqrt(g0) < clip && sqrt(g1) < clip);
	nb_optim_kind kinds[] = {NB_OPTIM_SGD, NB_OPTIM_MOMENTUM, NB_OPTIM_RMSPROP, NB_OPTIM_ADAM,
	                         NB_OPTIM_ADAMW};
	for (int k = 0; k < 5; k++)
		check_reference((nb_optim_opts){.kind = kinds[k], .lr = 0.05, .clip_norm = clip},
		                STEPS, NB_F64, 1e-12);

	/* one SGD step by hand: the update is exactly lr g clip / ||g|| */
	quad q = quad_new(NB_F64);
	nb_optim *o = nb_sgd(q.g, q.L, (nb_sgd_opts){.lr = 0.1, .clip_norm = 1.0});
	ck_graph_ok(q.g);
	ck_assert(isnan(nb_optim_grad_norm(o)));
	ck_assert_int_eq(nb_step(o), NB_OK);
	ck_near(nb_optim_grad_norm(o), norm, 1e-14);
	double w[NQ], dn = 0;
	quad_read(&q, w);
	for (int i = 0; i < NQ; i++) {
		ck_near(qw[i] - w[i], 0.1 * g[i] / norm, 1e-15);
		dn += (qw[i] - w[i]) * (qw[i] - w[i]);
	}
	ck_near(sqrt(dn), 0.1 * 1.0, 1e-15); /* the step has length lr * clip */
	/* the gradients read back after the step are the unclipped ones */
	double gr[3];
	ck_assert_int_eq(nb_read_f64(nb_optim_grad(o, q.w[0]), gr, 3), NB_OK);
	for (int i = 0; i < 3; i++)
		ck_near(gr[i], g[i], 1e-15);
	nb_graph_free(q.g);
}
END_TEST

/* below the bound the gradients are untouched: bit-identical to no clipping */
START_TEST(test_clip_below_max_untouched)
{
	nb_optim_kind kinds[] = {NB_OPTIM_SGD, NB_OPTIM_NESTEROV, NB_OPTIM_RMSPROP, NB_OPTIM_ADAMW};
	for (int k = 0; k < 4; k++) {
		double w[2][NQ];
		for (int c = 0; c < 2; c++) {
			quad q = quad_new(NB_F64);
			nb_optim *o = nb_optimizer(q.g, q.L,
			                           (nb_optim_opts){.kind = kinds[k],
			                                           .lr = 0.05,
			                                           .clip_norm = c ? 100 : 0});
			ck_graph_ok(q.g);
			for (int s = 0; s < STEPS; s++)
				ck_assert_int_eq(nb_step(o), NB_OK);
			if (c)
				ck_assert(nb_optim_grad_norm(o) < 100);
			quad_read(&q, w[c]);
			nb_graph_free(q.g);
		}
		for (int i = 0; i < NQ; i++)
			ck_assert_msg(w[0][i] == w[1][i], "%s w[%d]: %.17g vs %.17g",
			              nb_optim_kind_name(kinds[k]), i, w[0][i], w[1][i]);
	}
}
END_TEST

START_TEST(test_global_norm_op)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *a = nb_constant(g, "a", NB_SHAPE(2), (double[]){3, 0});
	nb_tensor *b = nb_constant(g, "b", NB_SHAPE(1, 1), (double[]){-4});
	nb_tensor *n = nb_global_norm((nb_tensor *[]){a, b}, 2);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_eval(n), NB_OK);
	ck_near(nb_item(n), 5, 0);
	ck_assert_ptr_null(nb_global_norm(NULL, 2));
	nb_graph_free(g);
}
END_TEST

/* The global norm (and a full sum, the same scheme: NB_PAR_SUM_LANES) sums
 * each tensor in independent lanes, parts of it on threads from NB_PAR_MIN
 * values: the result is the sum to double rounding, and its bits are the
 * same at every thread count and ISA level (the kernel's variant of each
 * level called in turn), for sizes around the lanes' blocks and the
 * threshold. */
START_TEST(test_global_norm_sizes)
{
	const int64_t sizes[] = {1, 31, 32, 33, 1000, 32767, 32768, 65569, 300017};
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		const int64_t n = sizes[k];
		double *v = malloc(sizeof(double) * (size_t)n);
		long double ref = 0, sref = 0, aref = 0;
		uint64_t seed = 17 + k;
		for (int64_t i = 0; i < n; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			v[i] = (double)(seed >> 11) * 0x1.0p-53 * (i % 3 ? 1 : -1e3);
			ref += (long double)v[i] * v[i];
			sref += v[i];
			aref += fabs(v[i]);
		}
		nb_graph *g = nb_graph_new(NB_F64);
		nb_tensor *a = nb_constant(g, "a", NB_SHAPE(n), v);
		nb_tensor *b = nb_constant(g, "b", NB_SHAPE(3), (double[]){1, -2, 3});
		nb_tensor *t = nb_global_norm((nb_tensor *[]){a, b}, 2), *sa = nb_sum(a);
		ck_graph_ok(g);
		nb_tensor *targets[] = {t, sa};
		nb_program *p = nb_compile(g, targets, 2);
		ck_graph_ok(g);
		ck_assert_int_eq(nb_run(p), NB_OK);
		const double got = nb_item(t), want = (double)sqrtl(ref + 14);
		const double sgot = nb_item(sa);
		ck_assert_msg(fabs(got - want) <= 1e-14 * want, "n %lld: %.17g vs %.17g",
		              (long long)n, got, want);
		ck_assert_msg(fabs(sgot - (double)sref) <= 1e-14 * (double)aref,
		              "sum, n %lld: %.17g vs %.17g", (long long)n, sgot, (double)sref);
		for (int level = 0; level <= nb__isa_level(); level++)
			for (int th = 1; th <= 3; th++) {
				nb_exec ex = {.threads = th, .isa = level};
				((double *)t->data)[0] = ((double *)sa->data)[0] = -1;
				nb__ops[t->op]->forward_f64(&ex, t);
				nb__ops[sa->op]->forward_f64(&ex, sa);
				ck_assert_msg(((double *)t->data)[0] == got,
				              "n %lld, level %d, %d threads: %.17g vs %.17g",
				              (long long)n, level, th, ((double *)t->data)[0], got);
				ck_assert_msg(((double *)sa->data)[0] == sgot,
				              "sum, n %lld, level %d, %d threads: %.17g vs %.17g",
				              (long long)n, level, th, ((double *)sa->data)[0],
				              sgot);
			}
		nb_graph_free(g);
		free(v);
	}
}
END_TEST

/* ---- scheduling, state, parameters ----------------------------------------------- */

/* L = sum(w0 * w1): each gradient is the other parameter.  Both updates
 * must read the old values (no update may run before every gradient). */
static nb_graph *two_params(nb_tensor **w0, nb_tensor **w1)
{
	nb_graph *g = nb_graph_new(NB_F64);
	*w0 = nb_param(g, "w0", NB_SHAPE(2), NB_ZEROS);
	*w1 = nb_param(g, "w1", NB_SHAPE(2), NB_ZEROS);
	nb_feed_f64(*w0, (double[]){1, 2}, 2);
	nb_feed_f64(*w1, (double[]){3, 4}, 2);
	return g;
}

START_TEST(test_updates_after_all_gradients)
{
	nb_tensor *w0, *w1;
	nb_graph *g = two_params(&w0, &w1);
	nb_optim *o = nb_sgd(g, nb_sum(nb_mul(w0, w1)), (nb_sgd_opts){.lr = 0.1});
	ck_graph_ok(g);
	ck_assert_int_eq(nb_step(o), NB_OK);
	double a[2], b[2];
	nb_read_f64(w0, a, 2);
	nb_read_f64(w1, b, 2);
	ck_near(a[0], 0.7, 1e-15);
	ck_near(a[1], 1.6, 1e-15);
	ck_near(b[0], 2.9, 1e-15); /* 2.93 if w0 had been updated first */
	ck_near(b[1], 3.8, 1e-15);
	nb_graph_free(g);

	/* the same with update nodes built by hand and compiled alone: the
	 * scheduler itself runs every update's inputs before any update */
	g = two_params(&w0, &w1);
	nb_tensor *gr[2], *up[2];
	ck_assert_int_eq(nb_grads(nb_sum(nb_mul(w0, w1)), (nb_tensor *[]){w0, w1}, 2, gr), NB_OK);
	nb_tensor *h = nb__hyper_new(g, "hyper");
	((double *)h->data)[NB_HYPER_LR] = 0.1;
	up[0] = nb__op(NB_OP_SGD_UPDATE, (nb_tensor *[]){w0, gr[0], h}, 3, NULL);
	up[1] = nb__op(NB_OP_SGD_UPDATE, (nb_tensor *[]){w1, gr[1], h}, 3, NULL);
	nb_program *p = nb_compile(g, up, 2);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_run(p), NB_OK);
	nb_read_f64(w1, b, 2);
	ck_near(b[0], 2.9, 1e-15);
	ck_near(b[1], 3.8, 1e-15);
	nb_graph_free(g);
}
END_TEST

START_TEST(test_state_tensors)
{
	quad q = quad_new(NB_F64);
	nb_tensor *unused = nb_param(q.g, "unused", NB_SHAPE(2), NB_ONES);
	nb_optim *o = nb_adamw(q.g, q.L, (nb_adam_opts){.lr = 0.01});
	ck_graph_ok(q.g);
	/* only the parameters the loss depends on are trained */
	ck_assert_int_eq(nb_optim_num_params(o), 2);
	ck_assert_ptr_eq(nb_optim_param(o, 0), q.w[0]);
	ck_assert_ptr_eq(nb_optim_param(o, 1), q.w[1]);
	ck_assert_ptr_null(nb_optim_param(o, 2));
	ck_assert_ptr_null(nb_graph_find(q.g, "unused.m"));
	ref r = ref_new();
	nb_optim_opts eff = nb_optim_opts_of(o);
	for (int s = 0; s < 3; s++) {
		nb_step(o);
		ref_adam(&r, &eff);
	}
	const char *slots[] = {"w0.m", "w0.v", "w1.m", "w1.v"};
	for (int k = 0; k < 4; k++) {
		nb_tensor *t = nb_graph_find(q.g, slots[k]);
		ck_assert_msg(t != NULL, "no state tensor %s", slots[k]);
		ck_assert_int_eq(t->role, NB_ROLE_STATE);
		ck_assert(t->flags & NB_TF_PERSISTENT);
		double v[3];
		int w = k / 2, n = w ? 2 : 3;
		ck_assert_int_eq(nb_read_f64(t, v, n), NB_OK);
		for (int i = 0; i < n; i++)
			ck_near(v[i], (k % 2 ? r.s2 : r.s1)[w * 3 + i], 1e-12);
	}
	double u[2];
	nb_read_f64(unused, u, 2);
	ck_assert(u[0] == 1 && u[1] == 1); /* untouched, not even decayed */
	ck_assert_ptr_nonnull(nb_graph_find(q.g, "w0.update"));
	nb_graph_free(q.g);

	/* one state slot for momentum (v) and RMSprop (s), none for SGD */
	struct {
		nb_optim_kind k;
		const char *slot;
	} one[] = {{NB_OPTIM_MOMENTUM, "w1.v"}, {NB_OPTIM_RMSPROP, "w1.s"}};
	for (int k = 0; k < 2; k++) {
		q = quad_new(NB_F64);
		nb_optimizer(q.g, q.L, (nb_optim_opts){.kind = one[k].k});
		ck_graph_ok(q.g);
		ck_assert_ptr_nonnull(nb_graph_find(q.g, one[k].slot));
		ck_assert_ptr_null(nb_graph_find(q.g, "w1.m"));
		nb_graph_free(q.g);
	}
}
END_TEST

/* Restoring weights, state and the step count resumes a run exactly. */
START_TEST(test_resume_with_set_steps)
{
	quad a = quad_new(NB_F64), b = quad_new(NB_F64);
	nb_optim *oa = nb_adam(a.g, a.L, (nb_adam_opts){.lr = 0.05});
	nb_optim *ob = nb_adam(b.g, b.L, (nb_adam_opts){.lr = 0.05});
	ck_graph_ok(a.g);
	ck_graph_ok(b.g);
	for (int s = 0; s < 3; s++)
		nb_step(oa);
	const char *names[] = {"w0", "w1", "w0.m", "w0.v", "w1.m", "w1.v"};
	for (int k = 0; k < 6; k++) {
		nb_tensor *ta = nb_graph_find(a.g, names[k]), *tb = nb_graph_find(b.g, names[k]);
		double v[3];
		nb_read_f64(ta, v, nb_tensor_size(ta));
		nb_feed_f64(tb, v, nb_tensor_size(tb));
	}
	nb_optim_set_steps(ob, 3);
	for (int s = 0; s < 2; s++) {
		nb_step(oa);
		nb_step(ob);
	}
	double wa[NQ], wb[NQ];
	quad_read(&a, wa);
	quad_read(&b, wb);
	for (int i = 0; i < NQ; i++)
		ck_assert(wa[i] == wb[i]);
	ck_assert_int_eq(nb_optim_steps(ob), 5);
	nb_optim_set_steps(ob, -1);
	ck_assert_int_eq(nb_graph_status(b.g), NB_ERR_ARG);
	nb_graph_free(a.g);
	nb_graph_free(b.g);
}
END_TEST

/* A schedule drives the learning rate step by step without recompiling. */
START_TEST(test_schedule_drives_lr)
{
	quad q = quad_new(NB_F64);
	nb_optim *o = nb_sgd(q.g, q.L, (nb_sgd_opts){.lr = 0.1});
	ck_graph_ok(q.g);
	nb_program *p = nb_optim_program(o);
	nb_schedule s = {
	    .kind = NB_SCHED_STEP, .base_lr = 0.2, .step_size = 2, .gamma = 0.5, .warmup_steps = 2};
	ref r = ref_new();
	for (int t = 0; t < 8; t++) {
		double lr = nb_schedule_lr(&s, t);
		nb_optim_set_lr(o, lr);
		ck_near(nb_optim_lr(o), lr, 0);
		ck_assert_int_eq(nb_step(o), NB_OK);
		ref_sgd(&r, &(nb_optim_opts){.lr = lr});
	}
	ck_assert_ptr_eq(nb_optim_program(o), p);
	double w[NQ];
	quad_read(&q, w);
	for (int i = 0; i < NQ; i++)
		ck_near(w[i], r.w[i], 1e-12);
	nb_optim_set_lr(o, -0.1);
	ck_assert_int_eq(nb_graph_status(q.g), NB_ERR_ARG);
	ck_assert(strstr(nb_graph_errmsg(q.g), "set_lr(-0.1)"));
	nb_graph_free(q.g);
}
END_TEST

/* ---- convergence ----------------------------------------------------------------------
 * Least squares y = 1 + x1 + 2 x2 on four points; every optimizer reaches
 * w = (1, 2), b = 1 to 1e-6 (most to 1e-9 or better).  RMSprop and Adam
 * take normalised steps of about lr, so they need a decaying rate (cosine)
 * to settle.  AdamW's decoupled decay stops where lr wd w balances the
 * Adam step m^/(sqrt(v^)+eps); that step vanishes only when v^ has
 * forgotten the large early gradients, which takes ~1/(1-beta2) steps: with
 * the default 0.999 and 3000 steps AdamW stops 3e-3 away, with 0.9 at 1e-8. */

typedef struct conv_case {
	nb_optim_opts o;
	int steps;
	bool cosine;
} conv_case;

static void converge(conv_case c, nb_dtype dt, double tol)
{
	nb_graph *g = nb_graph_new(dt);
	nb_tensor *X = nb_constant(g, "X", NB_SHAPE(4, 2), (double[]){0, 0, 0, 1, 1, 0, 1, 1});
	nb_tensor *y = nb_constant(g, "y", NB_SHAPE(4, 1), (double[]){1, 3, 2, 4});
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(2, 1), NB_ZEROS);
	nb_tensor *b = nb_param(g, "b", NB_SHAPE(1), NB_ZEROS);
	nb_tensor *L = nb_mean(nb_square(nb_sub(nb_add(nb_matmul(X, w), b), y)));
	nb_optim *o = nb_optimizer(g, L, c.o);
	ck_graph_ok(g);
	nb_schedule s = {
	    .kind = NB_SCHED_COSINE, .base_lr = nb_optim_lr(o), .total_steps = c.steps};
	for (int t = 0; t < c.steps; t++) {
		if (c.cosine)
			nb_optim_set_lr(o, nb_schedule_lr(&s, t));
		ck_assert_int_eq(nb_step(o), NB_OK);
	}
	double wv[2];
	nb_read_f64(w, wv, 2);
	const char *name = nb_optim_kind_name(nb_optim_kind_of(o));
	ck_assert_msg(fabs(wv[0] - 1) <= tol && fabs(wv[1] - 2) <= tol &&
	                  fabs(nb_item(b) - 1) <= tol,
	              "%s: w = (%.9g, %.9g), b = %.9g", name, wv[0], wv[1], nb_item(b));
	nb_graph_free(g);
}

static const conv_case conv_cases[] = {
    {{.kind = NB_OPTIM_SGD, .lr = 0.2}, 600, false},
    {{.kind = NB_OPTIM_MOMENTUM, .lr = 0.05}, 400, false},
    {{.kind = NB_OPTIM_MOMENTUM, .lr = 0.5, .style = NB_MOMENTUM_EWMA}, 400, false},
    {{.kind = NB_OPTIM_NESTEROV, .lr = 0.05}, 400, false},
    {{.kind = NB_OPTIM_RMSPROP, .lr = 0.01}, 3000, true},
    {{.kind = NB_OPTIM_ADAM, .lr = 0.05}, 3000, true},
    {{.kind = NB_OPTIM_ADAMW, .lr = 0.05, .beta2 = 0.9}, 3000, true},
};

START_TEST(test_convergence)
{
	for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
		converge(conv_cases[i], NB_F64, 1e-6);
}
END_TEST

/* f32 graphs run every optimizer; they follow the f64 reference closely */
START_TEST(test_f32_runs)
{
	for (int k = 0; k < NB_OPTIM_KIND_COUNT; k++)
		check_reference(
		    (nb_optim_opts){.kind = (nb_optim_kind)k, .lr = 0.02, .clip_norm = 2.5}, STEPS,
		    NB_F32, 1e-5);
	converge(conv_cases[1], NB_F32, 1e-4);
}
END_TEST

/* ---- options: defaults, names, errors ------------------------------------------------- */

/* the documented defaults of each kind (optim.h's table) */
static const struct {
	nb_optim_kind k;
	double lr, mom, b2, eps, wd;
} kind_defaults[] = {
    {NB_OPTIM_SGD, 0.01, 0, 0, 0, 0},
    {NB_OPTIM_MOMENTUM, 0.01, 0.9, 0, 0, 0},
    {NB_OPTIM_NESTEROV, 0.01, 0.9, 0, 0, 0},
    {NB_OPTIM_RMSPROP, 0.01, 0, 0.99, 1e-8, 0},
    {NB_OPTIM_ADAM, 0.001, 0.9, 0.999, 1e-8, 0},
    {NB_OPTIM_ADAMW, 0.001, 0.9, 0.999, 1e-8, 0.01},
};

START_TEST(test_defaults)
{
	for (int i = 0; i < 6; i++) {
		quad q = quad_new(NB_F32);
		nb_optim *o = nb_optimizer(q.g, q.L, (nb_optim_opts){.kind = kind_defaults[i].k});
		ck_graph_ok(q.g);
		nb_optim_opts e = nb_optim_opts_of(o);
		ck_assert_int_eq(e.kind, kind_defaults[i].k);
		ck_assert(e.lr == kind_defaults[i].lr && e.momentum == kind_defaults[i].mom &&
		          e.beta2 == kind_defaults[i].b2 && e.eps == kind_defaults[i].eps &&
		          e.weight_decay == kind_defaults[i].wd && e.clip_norm == 0);
		ck_assert(e.nesterov == (kind_defaults[i].k == NB_OPTIM_NESTEROV));
		nb_graph_free(q.g);
	}
	/* the convenience constructors map their fields */
	quad q = quad_new(NB_F64);
	nb_optim *o = nb_rmsprop(q.g, q.L, (nb_rmsprop_opts){.alpha = 0.5, .eps = 1e-3});
	ck_assert(nb_optim_opts_of(o).beta2 == 0.5 && nb_optim_opts_of(o).eps == 1e-3);
	o = nb_momentum(q.g, q.L, (nb_momentum_opts){.nesterov = true, .style = NB_MOMENTUM_EWMA});
	ck_assert_int_eq(nb_optim_kind_of(o), NB_OPTIM_NESTEROV);
	ck_assert_int_eq(nb_optim_opts_of(o).style, NB_MOMENTUM_EWMA);
	o = nb_adam(q.g, q.L, (nb_adam_opts){.beta1 = 0.5, .beta2 = 0.6, .clip_norm = 3});
	nb_optim_opts e = nb_optim_opts_of(o);
	ck_assert(e.momentum == 0.5 && e.beta2 == 0.6 && e.clip_norm == 3);
	ck_graph_ok(q.g);
	nb_graph_free(q.g);
}
END_TEST

/* every field equal (a memcmp would compare the padding too) */
static bool opts_eq(const nb_optim_opts *a, const nb_optim_opts *b)
{
	return a->kind == b->kind && a->lr == b->lr && a->momentum == b->momentum &&
	       a->beta2 == b->beta2 && a->eps == b->eps && a->weight_decay == b->weight_decay &&
	       a->clip_norm == b->clip_norm && a->nesterov == b->nesterov && a->style == b->style &&
	       a->dist == b->dist && a->as_written == b->as_written;
}

/* The nb_*_defaults functions: the documented table, as_written set, and
 * the same values nb_optimizer fills into a zero-initialised struct. */
START_TEST(test_defaults_functions)
{
	for (int i = 0; i < 6; i++) {
		nb_optim_opts d = nb_optim_defaults(kind_defaults[i].k);
		ck_assert_int_eq(d.kind, kind_defaults[i].k);
		ck_assert(d.as_written);
		ck_assert(d.lr == kind_defaults[i].lr && d.momentum == kind_defaults[i].mom &&
		          d.beta2 == kind_defaults[i].b2 && d.eps == kind_defaults[i].eps &&
		          d.weight_decay == kind_defaults[i].wd && d.clip_norm == 0 && !d.dist);
		ck_assert(d.nesterov == (kind_defaults[i].k == NB_OPTIM_NESTEROV));
		ck_assert_int_eq(d.style, NB_MOMENTUM_CLASSIC);
		/* what the optimizer reports is the defaults, ready to pass back */
		quad q = quad_new(NB_F64);
		nb_optim *o = nb_optimizer(q.g, q.L, d);
		ck_graph_ok(q.g);
		nb_optim_opts e = nb_optim_opts_of(o);
		ck_assert(opts_eq(&e, &d));
		nb_optim *z = nb_optimizer(q.g, q.L, (nb_optim_opts){.kind = kind_defaults[i].k});
		nb_optim_opts ez = nb_optim_opts_of(z);
		ck_assert(ez.lr == d.lr && ez.momentum == d.momentum && ez.beta2 == d.beta2 &&
		          ez.eps == d.eps && ez.weight_decay == d.weight_decay && ez.as_written);
		ck_graph_ok(q.g);
		nb_graph_free(q.g);
	}
	nb_optim_opts bad = nb_optim_defaults((nb_optim_kind)42);
	ck_assert(bad.kind == 42 && bad.as_written && bad.lr == 0);

	nb_sgd_opts sg = nb_sgd_defaults();
	ck_assert(sg.lr == 0.01 && sg.weight_decay == 0 && sg.clip_norm == 0 && sg.as_written);
	nb_momentum_opts mo = nb_momentum_defaults();
	ck_assert(mo.lr == 0.01 && mo.momentum == 0.9 && mo.weight_decay == 0 && !mo.nesterov &&
	          mo.style == NB_MOMENTUM_CLASSIC && mo.as_written);
	nb_rmsprop_opts rm = nb_rmsprop_defaults();
	ck_assert(rm.lr == 0.01 && rm.alpha == 0.99 && rm.eps == 1e-8 && rm.weight_decay == 0 &&
	          rm.as_written);
	nb_adam_opts ad = nb_adam_defaults(), aw = nb_adamw_defaults();
	ck_assert(ad.lr == 1e-3 && ad.beta1 == 0.9 && ad.beta2 == 0.999 && ad.eps == 1e-8 &&
	          ad.weight_decay == 0 && ad.clip_norm == 0 && ad.as_written);
	ck_assert(aw.lr == 1e-3 && aw.beta1 == 0.9 && aw.beta2 == 0.999 && aw.eps == 1e-8 &&
	          aw.weight_decay == 0.01 && aw.as_written);
}
END_TEST

/* the weights after steps steps of o, into w */
static void run_steps(nb_optim *o, const quad *q, int steps, double *w)
{
	for (int s = 0; s < steps; s++)
		ck_assert_int_eq(nb_step(o), NB_OK);
	quad_read(q, w);
}

/* With as_written a 0 is a 0: every value the update rules allow can be
 * asked for; a zero-initialised struct still gets the defaults. */
START_TEST(test_as_written_zero)
{
	/* Adam's beta1 = 0 (m is the last gradient): the f64 reference */
	nb_optim_opts o = nb_optim_defaults(NB_OPTIM_ADAM);
	o.momentum = 0;
	check_reference(o, STEPS, NB_F64, 1e-12);
	quad q = quad_new(NB_F64);
	nb_adam_opts ao = nb_adam_defaults();
	ao.beta1 = 0;
	ck_assert(nb_optim_opts_of(nb_adam(q.g, q.L, ao)).momentum == 0);
	/* a zero-initialised struct: beta1 0 is the default 0.9, as in 0.1 */
	ck_assert(nb_optim_opts_of(nb_adam(q.g, q.L, (nb_adam_opts){.lr = 1e-3})).momentum == 0.9);
	ck_graph_ok(q.g);
	nb_graph_free(q.g);
	/* Adam's beta2 = 0, rmsprop's alpha = 0, adamw without weight decay */
	o = nb_optim_defaults(NB_OPTIM_ADAM);
	o.beta2 = 0;
	check_reference(o, STEPS, NB_F64, 1e-12);
	o = nb_optim_defaults(NB_OPTIM_RMSPROP);
	o.beta2 = 0;
	check_reference(o, STEPS, NB_F64, 1e-12);
	o = nb_optim_defaults(NB_OPTIM_ADAMW);
	o.weight_decay = 0;
	check_reference(o, STEPS, NB_F64, 1e-12);

	/* momentum 0 is plain SGD, bit for bit (f32 and f64) */
	for (int f64 = 0; f64 < 2; f64++) {
		nb_dtype dt = f64 ? NB_F64 : NB_F32;
		quad a = quad_new(dt), b = quad_new(dt);
		nb_momentum_opts m = nb_momentum_defaults();
		m.lr = 0.1;
		m.momentum = 0;
		nb_sgd_opts sg = nb_sgd_defaults();
		sg.lr = 0.1;
		nb_optim *om = nb_momentum(a.g, a.L, m), *os = nb_sgd(b.g, b.L, sg);
		ck_graph_ok(a.g);
		ck_graph_ok(b.g);
		ck_assert(nb_optim_opts_of(om).momentum == 0);
		double wa[NQ], wb[NQ];
		run_steps(om, &a, STEPS, wa);
		run_steps(os, &b, STEPS, wb);
		ck_assert(!memcmp(wa, wb, sizeof wa));
		ck_assert(wa[0] != qw[0]); /* they moved */
		/* the zero-initialised struct takes momentum 0.9: another path */
		quad c = quad_new(dt);
		double wc[NQ];
		run_steps(nb_momentum(c.g, c.L, (nb_momentum_opts){.lr = 0.1}), &c, STEPS, wc);
		ck_assert(memcmp(wa, wc, sizeof wa));
		nb_graph_free(a.g);
		nb_graph_free(b.g);
		nb_graph_free(c.g);
	}

	/* lr 0: no kind moves a weight (adamw's decay is lr wd w too) */
	for (int k = 0; k < NB_OPTIM_KIND_COUNT; k++) {
		quad z = quad_new(NB_F64);
		o = nb_optim_defaults((nb_optim_kind)k);
		o.lr = 0;
		nb_optim *oz = nb_optimizer(z.g, z.L, o);
		ck_graph_ok(z.g);
		ck_assert(nb_optim_lr(oz) == 0 && nb_optim_opts_of(oz).lr == 0);
		double w[NQ];
		run_steps(oz, &z, 3, w);
		ck_assert_msg(!memcmp(w, qw, sizeof w), "%s with lr 0 moved the weights",
		              nb_optim_kind_name((nb_optim_kind)k));
		nb_graph_free(z.g);
	}

	/* as written, eps 0 is the error it always was */
	q = quad_new(NB_F64);
	o = nb_optim_defaults(NB_OPTIM_ADAM);
	o.eps = 0;
	ck_assert_ptr_null(nb_optimizer(q.g, q.L, o));
	ck_assert(strstr(nb_graph_errmsg(q.g), "adam: eps = 0 must be positive"));
	nb_graph_free(q.g);
	q = quad_new(NB_F64);
	ck_assert_ptr_null(nb_rmsprop(q.g, q.L, (nb_rmsprop_opts){.lr = 0.1, .as_written = true}));
	ck_assert(strstr(nb_graph_errmsg(q.g), "rmsprop: eps = 0 must be positive"));
	nb_graph_free(q.g);
	/* options of another kind are refused as written too */
	q = quad_new(NB_F64);
	o = nb_optim_defaults(NB_OPTIM_SGD);
	o.beta2 = 0.5;
	ck_assert_ptr_null(nb_optimizer(q.g, q.L, o));
	ck_assert(strstr(nb_graph_errmsg(q.g), "sgd: option beta2"));
	nb_graph_free(q.g);
}
END_TEST

/* nb_optim_opts_of's result made into an optimizer is the same optimizer,
 * its zeros included; the deprecated getters give the same answers */
START_TEST(test_opts_of_round_trip)
{
	quad a = quad_new(NB_F64), b = quad_new(NB_F64);
	nb_optim_opts o = nb_optim_defaults(NB_OPTIM_ADAMW);
	o.momentum = 0;
	o.weight_decay = 0;
	o.clip_norm = 0.5;
	nb_optim *oa = nb_optimizer(a.g, a.L, o);
	nb_optim_opts e = nb_optim_opts_of(oa);
	ck_assert(e.as_written && e.momentum == 0 && e.weight_decay == 0 && e.clip_norm == 0.5);
	nb_optim *ob = nb_optimizer(b.g, b.L, e);
	ck_graph_ok(a.g);
	ck_graph_ok(b.g);
	double wa[NQ], wb[NQ];
	run_steps(oa, &a, STEPS, wa);
	run_steps(ob, &b, STEPS, wb);
	ck_assert(!memcmp(wa, wb, sizeof wa));
	/* the former names */
	nb_optim_opts g = nb_optim_get_opts(oa);
	ck_assert(opts_eq(&g, &e));
	ck_assert_int_eq(nb_optim_get_kind(oa), NB_OPTIM_ADAMW);
	ck_assert_int_eq(nb_optim_kind_of(oa), NB_OPTIM_ADAMW);
	ck_assert_int_eq(nb_optim_kind_of(NULL), NB_OPTIM_INVALID);
	ck_assert_int_eq(nb_optim_opts_of(NULL).kind, NB_OPTIM_INVALID);
	nb_graph_free(a.g);
	nb_graph_free(b.g);
}
END_TEST

START_TEST(test_kind_names)
{
	const char *names[] = {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"};
	for (int k = 0; k < 6; k++) {
		ck_assert_int_eq(nb_optim_kind_from_name(names[k]), k);
		ck_assert_str_eq(nb_optim_kind_name((nb_optim_kind)k), names[k]);
	}
	ck_assert_int_eq(nb_optim_kind_from_name("AdamW"), NB_OPTIM_ADAMW);
	ck_assert_int_eq(nb_optim_kind_from_name("adagrad"), NB_OPTIM_INVALID);
	ck_assert_int_eq(nb_optim_kind_from_name(NULL), NB_OPTIM_INVALID);
	ck_assert_ptr_null(nb_optim_kind_name(NB_OPTIM_KIND_COUNT));
	const char *sn[] = {"constant", "step", "exponential", "cosine"};
	for (int k = 0; k < 4; k++) {
		ck_assert_int_eq(nb_schedule_kind_from_name(sn[k]), k);
		ck_assert_str_eq(nb_schedule_kind_name((nb_schedule_kind)k), sn[k]);
	}
	ck_assert_int_eq(nb_schedule_kind_from_name("exp"), NB_SCHED_EXPONENTIAL);
	ck_assert_int_eq(nb_schedule_kind_from_name("Cosine"), NB_SCHED_COSINE);
	ck_assert_int_eq(nb_schedule_kind_from_name("linear"), NB_SCHED_INVALID);
}
END_TEST

START_TEST(test_bad_options)
{
	struct {
		nb_optim_opts o;
		const char *msg;
	} bad[] = {
	    {{.kind = NB_OPTIM_SGD, .lr = -1},
	     "sgd: learning rate -1 must be finite and not negative"},
	    {{.kind = NB_OPTIM_ADAM, .lr = NAN},
	     "adam: learning rate nan must be finite and not negative"},
	    {{.kind = NB_OPTIM_MOMENTUM, .momentum = 1},
	     "momentum: momentum = 1 is outside [0, 1)"},
	    {{.kind = NB_OPTIM_NESTEROV, .momentum = -0.1}, "momentum = -0.1 is outside [0, 1)"},
	    {{.kind = NB_OPTIM_ADAM, .momentum = 1.5}, "adam: beta1 = 1.5 is outside [0, 1)"},
	    {{.kind = NB_OPTIM_ADAMW, .beta2 = 1}, "adamw: beta2 = 1 is outside [0, 1)"},
	    {{.kind = NB_OPTIM_RMSPROP, .beta2 = -0.5}, "rmsprop: rho (alpha) = -0.5 is outside"},
	    {{.kind = NB_OPTIM_ADAM, .eps = -1e-8}, "adam: eps = -1e-08 must be positive"},
	    {{.kind = NB_OPTIM_SGD, .weight_decay = -0.1},
	     "weight decay -0.1 must not be negative"},
	    {{.kind = NB_OPTIM_ADAM, .clip_norm = -1}, "clip norm -1 must not be negative"},
	    {{.kind = NB_OPTIM_SGD, .momentum = 0.9}, "sgd: option momentum (use kind"},
	    {{.kind = NB_OPTIM_MOMENTUM, .eps = 1e-8}, "momentum: option eps"},
	    {{.kind = NB_OPTIM_SGD, .beta2 = 0.9}, "sgd: option beta2"},
	    {{.kind = NB_OPTIM_ADAM, .nesterov = true}, "adam: option nesterov"},
	    {{.kind = NB_OPTIM_RMSPROP, .style = NB_MOMENTUM_EWMA},
	     "rmsprop: option a momentum style"},
	    {{.kind = NB_OPTIM_MOMENTUM, .style = (nb_momentum_style)7},
	     "unknown momentum style 7"},
	    {{.kind = (nb_optim_kind)42}, "optimizer: unknown kind 42"},
	    {{.kind = NB_OPTIM_INVALID}, "optimizer: unknown kind -1"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		quad q = quad_new(NB_F64);
		int nodes = nb_graph_num_nodes(q.g);
		ck_assert_ptr_null(nb_optimizer(q.g, q.L, bad[i].o));
		ck_assert_int_eq(nb_graph_status(q.g), NB_ERR_ARG);
		ck_assert_msg(strstr(nb_graph_errmsg(q.g), bad[i].msg), "case %zu: '%s' lacks '%s'",
		              i, nb_graph_errmsg(q.g), bad[i].msg);
		ck_assert_int_eq(nb_graph_num_nodes(q.g), nodes); /* nothing was built */
		nb_graph_free(q.g);
	}
}
END_TEST

START_TEST(test_bad_loss)
{
	nb_graph *g = nb_graph_new(NB_F64);
	ck_assert_ptr_null(nb_adam(g, NULL, (nb_adam_opts){0}));
	ck_assert_str_eq(nb_graph_errmsg(g), "adam: loss is NULL");
	nb_graph_free(g);

	g = nb_graph_new(NB_F64);
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(3), NB_ONES);
	ck_assert_ptr_null(nb_sgd(g, nb_square(w), (nb_sgd_opts){0}));
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_SHAPE);
	ck_assert(strstr(nb_graph_errmsg(g), "can only differentiate a scalar"));
	nb_graph_free(g);

	g = nb_graph_new(NB_F64);
	nb_param(g, "w", NB_SHAPE(3), NB_ONES);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(3));
	ck_assert_ptr_null(nb_momentum(g, nb_sum(x), (nb_momentum_opts){0}));
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_GRAPH);
	ck_assert(
	    strstr(nb_graph_errmsg(g), "): the loss depends on no parameter, nothing to train"));
	ck_assert_int_eq(nb_step(NULL), NB_ERR_ARG);
	nb_graph_free(g);

	/* a loss from another graph */
	nb_graph *g1 = nb_graph_new(NB_F64), *g2 = nb_graph_new(NB_F64);
	nb_tensor *w2 = nb_param(g2, "w", NB_SHAPE(1), NB_ONES);
	ck_assert_ptr_null(nb_rmsprop(g1, nb_sum(w2), (nb_rmsprop_opts){0}));
	ck_assert_int_eq(nb_graph_status(g1), NB_ERR_GRAPH);
	nb_graph_free(g1);
	nb_graph_free(g2);
}
END_TEST

START_TEST(test_update_labels)
{
	quad q = quad_new(NB_F64);
	nb_adamw(q.g, q.L, (nb_adam_opts){.clip_norm = 1});
	ck_graph_ok(q.g);
	nb_tensor *u = nb_graph_find(q.g, "w1.update");
	ck_assert_str_eq(nb_tensor_op(u), "adam_update");
	char buf[256];
	nb__ops[u->op]->label(u, buf, sizeof buf);
	ck_assert_str_eq(buf, "lr 0.001 b1 0.9 b2 0.999 eps 1e-08 wd 0.01 decoupled clip 1");
	nb_tensor *n = nb_graph_find(q.g, "grad_norm");
	ck_assert_int_eq(n->role, NB_ROLE_GRAD);
	nb__ops[n->op]->label(n, buf, sizeof buf);
	ck_assert_str_eq(buf, "2 tensors");
	nb_graph_free(q.g);

	q = quad_new(NB_F64);
	nb_momentum(q.g, q.L,
	            (nb_momentum_opts){.lr = 0.5, .nesterov = true, .style = NB_MOMENTUM_EWMA});
	u = nb_graph_find(q.g, "w0.update");
	nb__ops[u->op]->label(u, buf, sizeof buf);
	ck_assert_str_eq(buf, "lr 0.5 beta 0.9 ewma nesterov");
	nb_graph_free(q.g);
}
END_TEST

/* The update nodes read their hyper-parameters from one tensor input,
 * "<kind>.hyper": doubles even in an f32 graph (the options are not
 * rounded to float), rewritten by the optimizer whenever the learning rate
 * or the step count changes. */
START_TEST(test_hyper_input)
{
	quad q = quad_new(NB_F32);
	nb_optim *o =
	    nb_adamw(q.g, q.L, (nb_adam_opts){.lr = 0.1, .weight_decay = 0.3, .clip_norm = 0.7});
	ck_graph_ok(q.g);
	nb_tensor *h = nb_graph_find(q.g, "adamw.hyper");
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(h->role, NB_ROLE_CONST);
	ck_assert(h->flags & NB_TF_F64);
	ck_assert_int_eq(nb_tensor_size(h), NB_HYPER_COUNT);
	for (int k = 0; k < 2; k++) {
		nb_tensor *u = nb_graph_find(q.g, k ? "w1.update" : "w0.update");
		ck_assert_int_eq(u->n_in, 6); /* w, g, m, v, hyper, norm */
		ck_assert_ptr_eq(u->in[4], h);
		ck_assert_ptr_eq(u->in[5], nb_graph_find(q.g, "grad_norm"));
	}
	double H[NB_HYPER_COUNT];
	ck_assert_int_eq(nb_read_f64(h, H, NB_HYPER_COUNT), NB_OK);
	ck_assert(H[NB_HYPER_LR] == 0.1 && H[NB_HYPER_WD] == 0.3 && H[NB_HYPER_CLIP] == 0.7);
	ck_assert(H[NB_HYPER_BETA1] == 0.9 && H[NB_HYPER_BETA2] == 0.999);
	ck_assert(H[NB_HYPER_EPS] == 1e-8);
	/* at step count 0 a program run by hand is the first step */
	ck_assert(H[NB_HYPER_STEP] == 1);
	ck_assert(H[NB_HYPER_BC1] == 1.0 - pow(0.9, 1.0));
	ck_assert(H[NB_HYPER_BC2] == 1.0 - pow(0.999, 1.0));
	nb_optim_set_steps(o, 6);
	nb_optim_set_lr(o, 0.02);
	nb_read_f64(h, H, NB_HYPER_COUNT);
	ck_assert(H[NB_HYPER_LR] == 0.02 && H[NB_HYPER_STEP] == 6);
	ck_assert(H[NB_HYPER_BC1] == 1.0 - pow(0.9, 6.0));
	ck_assert(H[NB_HYPER_BC2] == 1.0 - pow(0.999, 6.0));
	ck_assert_int_eq(nb_step(o), NB_OK);
	nb_read_f64(h, H, NB_HYPER_COUNT);
	ck_assert(H[NB_HYPER_STEP] == 7 && H[NB_HYPER_BC1] == 1.0 - pow(0.9, 7.0));
	/* read as f32, it rounds like any value */
	float Hf[NB_HYPER_COUNT];
	ck_assert_int_eq(nb_read_f32(h, Hf, NB_HYPER_COUNT), NB_OK);
	ck_assert(Hf[NB_HYPER_LR] == 0.02f && Hf[NB_HYPER_EPS] == 1e-8f);
	ck_graph_ok(q.g);
	/* no other op reads it (its kernels would take the doubles for floats) */
	ck_assert(nb__is_placeholder(nb_mul_scalar(h, 2)));
	ck_assert_int_eq(nb_graph_status(q.g), NB_ERR_ARG);
	ck_assert(strstr(nb_graph_errmsg(q.g),
	                 "mul_scalar(adamw.hyper): input 0 (adamw.hyper) is an "
	                 "optimizer's hyper-parameter vector, which only "
	                 "update ops read"));
	nb_graph_free(q.g);

	/* one vector per optimizer, named by its kind; SGD keeps no bias
	 * correction */
	q = quad_new(NB_F64);
	nb_sgd(q.g, q.L, (nb_sgd_opts){.lr = 0.25});
	h = nb_graph_find(q.g, "sgd.hyper");
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_eq(nb_graph_find(q.g, "w0.update")->in[2], h);
	nb_read_f64(h, H, NB_HYPER_COUNT);
	ck_assert(H[NB_HYPER_LR] == 0.25 && H[NB_HYPER_CLIP] == 0 && H[NB_HYPER_BC1] == 1);
	nb_graph_free(q.g);
}
END_TEST

/* A new learning rate or step count reaches a program run by hand (nb_run
 * rather than nb_step) at once, with no recompile. */
START_TEST(test_hyper_by_hand)
{
	quad q = quad_new(NB_F64);
	nb_optim *o = nb_adam(q.g, q.L, (nb_adam_opts){.lr = 0.1});
	ck_graph_ok(q.g);
	nb_optim_opts eff = nb_optim_opts_of(o);
	ref r = ref_new();
	ck_assert_int_eq(nb_step(o), NB_OK);
	ref_adam(&r, &eff);
	/* the program run by hand with the count set to 4 and lr 0.03: Adam's
	 * bias corrections for t = 4 and the new rate, as in the reference */
	nb_optim_set_lr(o, 0.03);
	nb_optim_set_steps(o, 4);
	r.t = 3; /* ref_adam counts the step itself */
	eff.lr = 0.03;
	ck_assert_int_eq(nb_run(nb_optim_program(o)), NB_OK);
	ref_adam(&r, &eff);
	double w[NQ];
	quad_read(&q, w);
	for (int i = 0; i < NQ; i++)
		ck_near(w[i], r.w[i], 1e-12);
	ck_assert_int_eq(nb_optim_steps(o), 4); /* nb_run does not count */
	nb_graph_free(q.g);
}
END_TEST

/* The float Adam update to the bit, with moments decayed into subnormals:
 * the kernel takes vectors holding tiny values in double (update.c, at
 * AVX-512) and must give the bits of the float formula written out here,
 * op by op, for Adam with L2 decay and for AdamW.  Values: subnormal and
 * tiny m and v, tiny, zero and normal gradients and weights, infinities;
 * 40 007 elements (threads and a partial vector), on 1, 3 and 4 threads,
 * three steps. */
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
START_TEST(test_adam_subnormal_bits)
{
	enum { N = 40007 };
	float *w0 = malloc(sizeof(float) * N), *g0 = malloc(sizeof(float) * N),
	      *m0 = malloc(sizeof(float) * N), *v0 = malloc(sizeof(float) * N);
	float *rw = malloc(sizeof(float) * N), *rm = malloc(sizeof(float) * N),
	      *rv = malloc(sizeof(float) * N), *got = malloc(sizeof(float) * N);
	static const float tiny[] = {1e-45f, 3e-45f,  2.5e-40f, 1e-38f,  1.2e-38f, 1e-35f, 1e-31f,
	                             0.0f,   -1e-44f, 1e-20f,   -3e-33f, 1e-4f,    0.5f,   -2.0f};
	uint64_t sd = 3;
	for (int i = 0; i < N; i++) {
		sd = sd * 6364136223846793005ull + 1442695040888963407ull;
		const unsigned r = (unsigned)(sd >> 33);
		const float u = (float)((r >> 8) % 2001) / 1000.0f - 1.0f;
		w0[i] = r % 11 == 0 ? tiny[r % 14] : u;
		g0[i] = r % 5 == 0 ? 0.0f : r % 7 == 0 ? tiny[(r >> 3) % 14] : u * 1e-2f;
		m0[i] = r % 3 == 0 ? tiny[(r >> 5) % 8] : u * 1e-3f;
		v0[i] = r % 4 == 0 ? fabsf(tiny[(r >> 7) % 8]) : u * u * 1e-5f;
	}
	g0[17] = INFINITY, m0[18] = -INFINITY;
	for (int variant = 0; variant < 2; variant++)
		for (int th = 1; th <= 4; th += th == 1 ? 2 : 1) { /* 1, 3, 4 */
			nb_graph *g = nb_graph_new(NB_F32);
			nb_tensor *w = nb_param(g, "w", NB_SHAPE(N), NB_ZEROS),
			          *m = nb_param(g, "m", NB_SHAPE(N), NB_ZEROS),
			          *v = nb_param(g, "v", NB_SHAPE(N), NB_ZEROS);
			nb_tensor *gr = nb_input(g, "g", NB_SHAPE(N)), *h = nb__hyper_new(g, "h");
			nb_attrs at = {.i = {2, 0, variant ? NB_UPDATE_DECOUPLED : 0}};
			nb_tensor *u =
			    nb__op(NB_OP_ADAM_UPDATE, (nb_tensor *[]){w, gr, m, v, h}, 5, &at);
			ck_graph_ok(g);
			nb_set_num_threads(th);
			nb_program *p = nb_compile(g, &u, 1);
			ck_assert_ptr_nonnull(p);
			memcpy(w->data, w0, sizeof(float) * N);
			memcpy(m->data, m0, sizeof(float) * N);
			memcpy(v->data, v0, sizeof(float) * N);
			ck_assert_int_eq(nb_feed_f32(gr, g0, N), NB_OK);
			memcpy(rw, w0, sizeof(float) * N);
			memcpy(rm, m0, sizeof(float) * N);
			memcpy(rv, v0, sizeof(float) * N);
			double *H = (double *)h->data;
			for (int step = 1; step <= 3; step++) {
				H[NB_HYPER_LR] = 1e-3, H[NB_HYPER_BETA1] = 0.9,
				H[NB_HYPER_BETA2] = 0.999;
				H[NB_HYPER_EPS] = 1e-8, H[NB_HYPER_WD] = 1e-2,
				H[NB_HYPER_STEP] = step;
				H[NB_HYPER_BC1] = 1 - pow(0.9, step),
				H[NB_HYPER_BC2] = 1 - pow(0.999, step);
				ck_assert_int_eq(nb_run(p), NB_OK);
				/* the kernel's float constants and formula */
				const float sc = 1, l2 = variant ? 0 : (float)H[NB_HYPER_WD];
				const float lrwd =
				    variant ? (float)(H[NB_HYPER_LR] * H[NB_HYPER_WD]) : 0;
				const float b1 = (float)H[NB_HYPER_BETA1],
				            b2 = (float)H[NB_HYPER_BETA2],
				            eps = (float)H[NB_HYPER_EPS];
				const float omb1 = (float)(1.0 - H[NB_HYPER_BETA1]),
				            omb2 = (float)(1.0 - H[NB_HYPER_BETA2]);
				const float alpha = (float)(H[NB_HYPER_LR] / H[NB_HYPER_BC1]);
				const float rs2 = (float)(1.0 / sqrt(H[NB_HYPER_BC2]));
				for (int i = 0; i < N; i++) {
					float wi = rw[i];
					float gi = sc * g0[i] + l2 * wi;
					float mi = b1 * rm[i] + omb1 * gi,
					      vi = b2 * rv[i] + omb2 * gi * gi;
					rm[i] = mi;
					rv[i] = vi;
					wi -= lrwd * wi;
					rw[i] = wi - alpha * mi / (sqrtf(vi) * rs2 + eps);
				}
			}
			const float *ref[3] = {rw, rm, rv};
			nb_tensor *out[3] = {w, m, v};
			for (int k = 0; k < 3; k++) {
				memcpy(got, out[k]->data, sizeof(float) * N);
				for (int i = 0; i < N; i++)
					ck_assert_msg(!memcmp(got + i, ref[k] + i, sizeof(float)),
					              "%s %s, %d threads: %s[%d] = %a, want %a",
					              variant ? "AdamW" : "Adam", nb_isa(), th,
					              k == 0   ? "w"
					              : k == 1 ? "m"
					                       : "v",
					              i, (double)got[i], (double)ref[k][i]);
			}
			nb_graph_free(g);
		}
	nb_set_num_threads(0);
	free(w0), free(g0), free(m0), free(v0), free(rw), free(rm), free(rv), free(got);
}
END_TEST

/* The shape rule of the update ops checks the hyper-parameter input. */
START_TEST(test_update_inputs_checked)
{
	nb_tensor *w0, *w1;
	nb_graph *g = two_params(&w0, &w1);
	nb_tensor *gr[2];
	ck_assert_int_eq(nb_grads(nb_sum(nb_mul(w0, w1)), (nb_tensor *[]){w0, w1}, 2, gr), NB_OK);
	nb__op2(NB_OP_SGD_UPDATE, w0, gr[0], NULL);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_ARG);
	ck_assert(
	    strstr(nb_graph_errmsg(g),
	           "takes 3 inputs (parameter, gradient, 0 states, hyper-parameters), got 2"));
	nb_graph_clear_error(g);
	/* a vector of the graph's type is not the f64 hyper-parameters */
	nb_tensor *c = nb_constant(g, "c", NB_SHAPE(NB_HYPER_COUNT), NULL);
	nb__op(NB_OP_SGD_UPDATE, (nb_tensor *[]){w0, gr[0], c}, 3, NULL);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_ARG);
	ck_assert(
	    strstr(nb_graph_errmsg(g), "input 2 (c) is not a hyper-parameter vector of 9 doubles"));
	nb_graph_free(g);
}
END_TEST

/* nb_optim_state finds a parameter's state by slot; nb_optim_graph. */
START_TEST(test_state_and_graph_getters)
{
	quad q = quad_new(NB_F64);
	nb_tensor *other = nb_param(q.g, "other", NB_SHAPE(2), NB_ONES);
	nb_optim *o = nb_adam(q.g, q.L, (nb_adam_opts){0});
	ck_graph_ok(q.g);
	ck_assert_ptr_eq(nb_optim_graph(o), q.g);
	ck_assert_ptr_null(nb_optim_graph(NULL));
	ck_assert_ptr_eq(nb_optim_state(o, q.w[0], "m"), nb_graph_find(q.g, "w0.m"));
	ck_assert_ptr_eq(nb_optim_state(o, q.w[1], "v"), nb_graph_find(q.g, "w1.v"));
	nb_set_name(q.w[0], "renamed"); /* found by parameter, not by name */
	ck_assert_ptr_eq(nb_optim_state(o, q.w[0], "v"), nb_graph_find(q.g, "w0.v"));
	ck_assert_ptr_null(nb_optim_state(o, q.w[1], "s"));
	ck_assert_ptr_null(nb_optim_state(o, other, "m")); /* not trained */
	ck_assert_ptr_null(nb_optim_state(o, q.w[1], NULL));
	ck_assert_ptr_null(nb_optim_state(o, NULL, "m"));
	ck_assert_ptr_null(nb_optim_state(NULL, q.w[0], "m"));
	nb_graph_free(q.g);

	static const struct {
		nb_optim_kind kind;
		const char *has, *hasnt;
	} k[] = {
	    {NB_OPTIM_SGD, NULL, "v"}, {NB_OPTIM_NESTEROV, "v", "m"}, {NB_OPTIM_RMSPROP, "s", "v"}};
	for (int i = 0; i < 3; i++) {
		q = quad_new(NB_F64);
		o = nb_optimizer(q.g, q.L, (nb_optim_opts){.kind = k[i].kind});
		ck_graph_ok(q.g);
		if (k[i].has) {
			char name[16];
			snprintf(name, sizeof name, "w1.%s", k[i].has);
			ck_assert_ptr_eq(nb_optim_state(o, q.w[1], k[i].has),
			                 nb_graph_find(q.g, name));
		}
		ck_assert_ptr_null(nb_optim_state(o, q.w[1], k[i].hasnt));
		nb_graph_free(q.g);
	}
}
END_TEST

/* ---- schedules --------------------------------------------------------------------------- */

START_TEST(test_schedule_values)
{
	nb_schedule c = {.kind = NB_SCHED_CONSTANT, .base_lr = 0.1};
	ck_near(nb_schedule_lr(&c, 0), 0.1, 0);
	ck_near(nb_schedule_lr(&c, 1000000), 0.1, 0);
	/* a base rate of 0, which an optimizer takes too, is 0 throughout */
	nb_schedule z = {.kind = NB_SCHED_COSINE, .total_steps = 10, .warmup_steps = 2};
	ck_assert_int_eq(nb_schedule_check(&z, NULL, 0), NB_OK);
	for (int t = 0; t < 12; t++)
		ck_assert(nb_schedule_lr(&z, t) == 0);

	/* step: 0.1 * 0.5^floor(t/10) */
	nb_schedule st = {.kind = NB_SCHED_STEP, .base_lr = 0.1, .step_size = 10, .gamma = 0.5};
	ck_near(nb_schedule_lr(&st, 0), 0.1, 0);
	ck_near(nb_schedule_lr(&st, 9), 0.1, 0);
	ck_near(nb_schedule_lr(&st, 10), 0.05, 1e-17);
	ck_near(nb_schedule_lr(&st, 25), 0.025, 1e-17);
	ck_near(nb_schedule_lr(&st, 30), 0.0125, 1e-17);

	/* exponential: 1 * 0.9^t, with a floor */
	nb_schedule ex = {.kind = NB_SCHED_EXPONENTIAL, .base_lr = 1, .gamma = 0.9};
	ck_near(nb_schedule_lr(&ex, 0), 1, 0);
	ck_near(nb_schedule_lr(&ex, 1), 0.9, 1e-16);
	ck_near(nb_schedule_lr(&ex, 3), 0.729, 1e-15);
	ex.min_lr = 0.5;
	ck_near(nb_schedule_lr(&ex, 6), 0.531441, 1e-15);
	ck_near(nb_schedule_lr(&ex, 7), 0.5, 0); /* 0.478 floored */

	/* cosine over 100 steps from 1 to 0 */
	nb_schedule cs = {.kind = NB_SCHED_COSINE, .base_lr = 1, .total_steps = 100};
	ck_near(nb_schedule_lr(&cs, 0), 1, 0);
	ck_near(nb_schedule_lr(&cs, 25), (1 + sqrt(0.5)) / 2, 1e-15);
	ck_near(nb_schedule_lr(&cs, 50), 0.5, 1e-15);
	ck_near(nb_schedule_lr(&cs, 75), (1 - sqrt(0.5)) / 2, 1e-15);
	ck_near(nb_schedule_lr(&cs, 100), 0, 0);
	ck_near(nb_schedule_lr(&cs, 500), 0, 0);
	cs.min_lr = 0.1; /* 0.1 + 0.9 (1 + cos(pi/2)) / 2 */
	ck_near(nb_schedule_lr(&cs, 50), 0.55, 1e-15);
	ck_near(nb_schedule_lr(&cs, 100), 0.1, 0);
	/* monotone decreasing */
	for (int t = 1; t <= 100; t++)
		ck_assert(nb_schedule_lr(&cs, t) < nb_schedule_lr(&cs, t - 1));
}
END_TEST

START_TEST(test_schedule_warmup)
{
	/* 10 warm-up steps: 0.1, 0.2, ..., 1, then cosine over the other 100 */
	nb_schedule cs = {
	    .kind = NB_SCHED_COSINE, .base_lr = 1, .total_steps = 110, .warmup_steps = 10};
	ck_near(nb_schedule_lr(&cs, 0), 0.1, 1e-16);
	ck_near(nb_schedule_lr(&cs, 4), 0.5, 1e-16);
	ck_near(nb_schedule_lr(&cs, 9), 1, 0);
	ck_near(nb_schedule_lr(&cs, 10), 1, 0);
	ck_near(nb_schedule_lr(&cs, 60), 0.5, 1e-15);
	ck_near(nb_schedule_lr(&cs, 110), 0, 0);
	for (int t = 1; t < 10; t++)
		ck_near(nb_schedule_lr(&cs, t) - nb_schedule_lr(&cs, t - 1), 0.1, 1e-15);

	/* warm-up composes with step decay: t' = t - 5 */
	nb_schedule st = {.kind = NB_SCHED_STEP,
	                  .base_lr = 0.4,
	                  .step_size = 10,
	                  .gamma = 0.1,
	                  .warmup_steps = 5};
	ck_near(nb_schedule_lr(&st, 0), 0.08, 1e-17);
	ck_near(nb_schedule_lr(&st, 5), 0.4, 0);
	ck_near(nb_schedule_lr(&st, 14), 0.4, 0);
	ck_near(nb_schedule_lr(&st, 15), 0.04, 1e-17);

	nb_schedule c = {.kind = NB_SCHED_CONSTANT, .base_lr = 0.2, .warmup_steps = 4};
	ck_near(nb_schedule_lr(&c, 0), 0.05, 0);
	ck_near(nb_schedule_lr(&c, 2), 0.15, 1e-16);
	ck_near(nb_schedule_lr(&c, 3), 0.2, 0);
	ck_near(nb_schedule_lr(&c, 1000), 0.2, 0);

	nb_schedule ex = {
	    .kind = NB_SCHED_EXPONENTIAL, .base_lr = 1, .gamma = 0.5, .warmup_steps = 2};
	ck_near(nb_schedule_lr(&ex, 0), 0.5, 0);
	ck_near(nb_schedule_lr(&ex, 2), 1, 0);
	ck_near(nb_schedule_lr(&ex, 4), 0.25, 0);
}
END_TEST

START_TEST(test_schedule_errors)
{
	struct {
		nb_schedule s;
		const char *msg;
	} bad[] = {
	    {{.kind = NB_SCHED_CONSTANT, .base_lr = -1},
	     "constant schedule: base learning rate -1 must be finite and not negative"},
	    {{.kind = NB_SCHED_COSINE, .base_lr = INFINITY, .total_steps = 10},
	     "cosine schedule: base learning rate inf must be finite and not negative"},
	    {{.kind = NB_SCHED_STEP, .base_lr = 1, .gamma = 0.5}, "step_size 0 must be positive"},
	    {{.kind = NB_SCHED_STEP, .base_lr = 1, .step_size = 5}, "gamma 0 must be positive"},
	    {{.kind = NB_SCHED_EXPONENTIAL, .base_lr = 1, .gamma = -1},
	     "gamma -1 must be positive"},
	    {{.kind = NB_SCHED_COSINE, .base_lr = 1},
	     "total_steps 0 must exceed the 0 warm-up steps"},
	    {{.kind = NB_SCHED_COSINE, .base_lr = 1, .total_steps = 10, .warmup_steps = 10},
	     "must exceed the 10 warm-up"},
	    {{.kind = NB_SCHED_COSINE, .base_lr = 1, .total_steps = 10, .gamma = 0.5},
	     "gamma applies only to step and exponential"},
	    {{.kind = NB_SCHED_COSINE, .base_lr = 1, .total_steps = 10, .min_lr = 2},
	     "min_lr 2 must lie in [0, base_lr 1]"},
	    {{.kind = NB_SCHED_EXPONENTIAL, .base_lr = 1, .gamma = 0.5, .total_steps = 9},
	     "total_steps applies only to cosine"},
	    {{.kind = NB_SCHED_CONSTANT, .base_lr = 1, .step_size = 9}, "step_size applies only"},
	    {{.kind = NB_SCHED_CONSTANT, .base_lr = 1, .min_lr = 0.5}, "min_lr does not apply"},
	    {{.kind = NB_SCHED_CONSTANT, .base_lr = 1, .warmup_steps = -1}, "warm-up steps -1"},
	    {{.kind = (nb_schedule_kind)9, .base_lr = 1}, "unknown kind 9"},
	};
	char err[256];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(nb_schedule_check(&bad[i].s, err, sizeof err), NB_ERR_ARG);
		ck_assert_msg(strstr(err, bad[i].msg), "case %zu: '%s' lacks '%s'", i, err,
		              bad[i].msg);
		ck_assert(isnan(nb_schedule_lr(&bad[i].s, 0)));
	}
	nb_schedule ok = {.kind = NB_SCHED_CONSTANT, .base_lr = 1};
	ck_assert_int_eq(nb_schedule_check(&ok, err, sizeof err), NB_OK);
	ck_assert_str_eq(err, "");
	ck_assert(isnan(nb_schedule_lr(&ok, -1)));
	ck_assert_int_eq(nb_schedule_check(NULL, NULL, 0), NB_ERR_ARG);
}
END_TEST

/* ---- EWMA ---------------------------------------------------------------------------------- */

/* The notes' worked example: beta 0.9, temperatures 30, 35, 40, 10. */
START_TEST(test_ewma_notes_example)
{
	double x[4] = {30, 35, 40, 10}, v[4];
	ck_assert_int_eq(nb_ewma(x, 4, 0.9, false, v), NB_OK);
	ck_near(v[0], 3, 1e-12);     /* 0.1 * 30 */
	ck_near(v[1], 6.2, 1e-12);   /* 2.7 + 3.5 */
	ck_near(v[2], 9.58, 1e-12);  /* 5.58 + 4 */
	ck_near(v[3], 9.622, 1e-12); /* 8.622 + 1 */
	/* bias-corrected: v_t / (1 - 0.9^t) */
	ck_assert_int_eq(nb_ewma(x, 4, 0.9, true, v), NB_OK);
	ck_near(v[0], 30, 1e-12);
	ck_near(v[1], 6.2 / 0.19, 1e-12);
	ck_near(v[2], 9.58 / 0.271, 1e-12);
	ck_near(v[3], 9.622 / 0.3439, 1e-12);
	/* in place */
	ck_assert_int_eq(nb_ewma(x, 4, 0.9, false, x), NB_OK);
	ck_near(x[3], 9.622, 1e-12);
}
END_TEST

/* The unrolled form: v_t = (1-beta) sum_k beta^(t-k) x_k.  (The notes write
 * the last term of v_4 as beta(1-beta) sigma_4 and of v_t as beta sigma_t;
 * the recursion gives (1-beta) sigma_4 and sigma_t, as checked here.) */
START_TEST(test_ewma_unrolled)
{
	enum { N = 20 };
	double x[N], v[N], vb[N];
	for (int i = 0; i < N; i++)
		x[i] = sin(0.7 * i) * 10 + i;
	double beta = 0.8;
	ck_assert_int_eq(nb_ewma(x, N, beta, false, v), NB_OK);
	ck_assert_int_eq(nb_ewma(x, N, beta, true, vb), NB_OK);
	for (int t = 1; t <= N; t++) {
		double s = 0, wsum = 0;
		for (int k = 1; k <= t; k++) {
			s += pow(beta, t - k) * x[k - 1];
			wsum += (1 - beta) * pow(beta, t - k);
		}
		ck_near(v[t - 1], (1 - beta) * s, 1e-12);
		ck_near(wsum, 1 - pow(beta, t), 1e-15); /* the weights' sum: the bias */
		ck_near(vb[t - 1], (1 - beta) * s / wsum, 1e-12);
	}
	/* beta 0 copies the series */
	ck_assert_int_eq(nb_ewma(x, N, 0, true, v), NB_OK);
	for (int i = 0; i < N; i++)
		ck_near(v[i], x[i], 0);
}
END_TEST

START_TEST(test_ewma_errors)
{
	double x[2] = {1, 2}, v[2];
	ck_assert_int_eq(nb_ewma(x, 2, 1.0, false, v), NB_ERR_ARG);
	ck_assert_int_eq(nb_ewma(x, 2, -0.1, false, v), NB_ERR_ARG);
	ck_assert_int_eq(nb_ewma(x, 2, NAN, false, v), NB_ERR_ARG);
	ck_assert_int_eq(nb_ewma(NULL, 2, 0.5, false, v), NB_ERR_ARG);
	ck_assert_int_eq(nb_ewma(x, 2, 0.5, false, NULL), NB_ERR_ARG);
	ck_assert_int_eq(nb_ewma(x, -1, 0.5, false, v), NB_ERR_ARG);
	ck_assert_int_eq(nb_ewma(NULL, 0, 0.5, false, NULL), NB_OK);
}
END_TEST

/* ---- reading a series (tools/series.c) -------------------------------------------- */

/* Parse text; returns the status and fills v (up to 16 values) and err. */
static int parse(const char *text, const char *column, double *v, int64_t *n, char *err)
{
	FILE *fp = fmemopen((void *)text, strlen(text), "r");
	ck_assert_ptr_nonnull(fp);
	cli_series s = {0};
	err[0] = 0;
	int rc = cli_read_series(fp, column, &s, err, 256);
	fclose(fp);
	*n = s.n;
	for (int64_t i = 0; i < s.n && i < 16; i++)
		v[i] = s.v[i];
	cli_series_free(&s);
	return rc;
}

START_TEST(test_series_parse)
{
	double v[16];
	int64_t n;
	char err[256];
	ck_assert_int_eq(parse("30\n35\n\n  40 \n10", NULL, v, &n, err), 0);
	ck_assert_int_eq(n, 4);
	ck_assert(v[0] == 30 && v[1] == 35 && v[2] == 40 && v[3] == 10);
	/* optional header, CRLF line ends, exponents */
	ck_assert_int_eq(parse("temp\r\n1.5e1\r\n-2\r\n", NULL, v, &n, err), 0);
	ck_assert_int_eq(n, 2);
	ck_assert(v[0] == 15 && v[1] == -2);
	/* column 2 of a CSV, with a header, quotes and spaces */
	const char *csv = "day,\"temp, C\",note\n1, 30 ,a\n2,\"35\",\"b, \"\"c\"\"\"\n3,40,\n";
	ck_assert_int_eq(parse(csv, "2", v, &n, err), 0);
	ck_assert_int_eq(n, 3);
	ck_assert(v[0] == 30 && v[1] == 35 && v[2] == 40);
	ck_assert_int_eq(parse(csv, "temp, C", v, &n, err), 0);
	ck_assert_int_eq(n, 3);
	ck_assert(v[2] == 40);
	ck_assert_int_eq(parse(csv, "1", v, &n, err), 0);
	ck_assert(n == 3 && v[0] == 1 && v[2] == 3);
	/* no header */
	ck_assert_int_eq(parse("1,10\n2,20\n", "2", v, &n, err), 0);
	ck_assert(n == 2 && v[0] == 10 && v[1] == 20);
}
END_TEST

START_TEST(test_series_errors)
{
	struct {
		const char *text, *column, *msg;
	} bad[] = {
	    {"1\n2\nabc\n", NULL, "line 3: 'abc' is not a number"},
	    {"x\n1\ny\n", NULL, "line 3: 'y' is not a number"}, /* a header only comes first */
	    {"1\n\n2,3\n", NULL, "line 3: 2 comma-separated fields, expected one number"},
	    {"a,b\n1,2\n3\n", "2", "line 3: 1 field, no column 2"},
	    {"a,b\n1,2\n3,\n", "2", "line 3: field 2, '', is not a number"},
	    {"a,b\n1,x\n", "b", "line 2: field 2, 'x', is not a number"},
	    {"a,b\n1,2\n", "c", "line 1: no column named 'c' in the header 'a,b'"},
	    {"1,\"2\n", "2", "line 1: unbalanced quote"},
	    {"1,\"2\"x\n", "2", "line 1: unbalanced quote"},
	    {"1\ninf\n", NULL, "line 2: 'inf' is not a number"},
	    {"1\n1e999\n", NULL, "line 2: '1e999' is not a number"},
	    {"1\n", "0", "column 0: columns are numbered from 1"},
	    {"1\n", "", "the column name is empty"},
	    {"", NULL, "no numbers found"},
	    {"\n  \nheader\n", NULL, "no numbers found"},
	};
	double v[16];
	int64_t n;
	char err[256];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(parse(bad[i].text, bad[i].column, v, &n, err), -1);
		ck_assert_msg(!strcmp(err, bad[i].msg) || strstr(err, bad[i].msg),
		              "case %zu: '%s' lacks '%s'", i, err, bad[i].msg);
	}
}
END_TEST

/* ---- the `nabla ewma` command ------------------------------------------------------- */

#define DATA NB_SOURCE_ROOT "/tests/data/"

/* Run a shell command, capture stdout+stderr; returns the exit status. */
static int run(const char *cmd, char *out, size_t n)
{
	return nb_test_popen_buf(cmd, out, n);
}

START_TEST(test_ewma_command)
{
	char out[4096];
	ck_assert_int_eq(
	    run(NB_NABLA_EXE " ewma --beta 0.9 " DATA "ewma_notes.txt", out, sizeof out), 0);
	ck_assert_str_eq(out, "x,ewma\n30,3\n35,6.2\n40,9.58\n10,9.622\n");
	/* stdin, '-' */
	ck_assert_int_eq(
	    run("printf '30\\n35\\n' | " NB_NABLA_EXE " ewma --beta=0.9 -", out, sizeof out), 0);
	ck_assert_str_eq(out, "x,ewma\n30,3\n35,6.2\n");
	/* CSV column by name, bias-corrected, to a file */
	char path[] = "/tmp/nabla-ewma-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s ewma --beta 0.9 --bias-correct --column temperature -o %s %s",
	         NB_NABLA_EXE, path, DATA "ewma_temps.csv");
	ck_assert_int_eq(run(cmd, out, sizeof out), 0);
	ck_assert_str_eq(out, "");
	FILE *fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	size_t k = fread(out, 1, sizeof out - 1, fp);
	out[k] = 0;
	fclose(fp);
	remove(path);
	ck_assert_str_eq(
	    out, "x,ewma\n30,30\n35,32.6315789473684\n40,35.3505535055351\n10,27.9790636813027\n");
	/* bad input: the line is named, exit status 1 */
	ck_assert_int_eq(
	    run(NB_NABLA_EXE " ewma --beta 0.5 " DATA "ewma_bad.txt 2>&1", out, sizeof out), 1);
	ck_assert_str_eq(out,
	                 "nabla ewma: " DATA "ewma_bad.txt: line 4: 'three' is not a number\n");
	/* usage errors: exit status 2 */
	ck_assert_int_eq(run(NB_NABLA_EXE " ewma " DATA "ewma_notes.txt 2>&1", out, sizeof out), 2);
	ck_assert(strstr(out, "--beta is required"));
	ck_assert_int_eq(run(NB_NABLA_EXE " ewma --beta 1 2>&1 </dev/null", out, sizeof out), 2);
	ck_assert(strstr(out, "nabla ewma: --beta must be a number >= 0 and < 1, got '1'\n"));
	ck_assert_int_eq(
	    run(NB_NABLA_EXE " ewma --beta 0.5 --smooth 2>&1 </dev/null", out, sizeof out), 2);
	ck_assert(strstr(out, "unknown option '--smooth'"));
	ck_assert_int_eq(
	    run(NB_NABLA_EXE " ewma --beta 0.5 --plot 2>&1 </dev/null", out, sizeof out), 2);
	ck_assert(strstr(out, "--plot needs a value"));
	/* several betas only with --demo */
	ck_assert_int_eq(run(NB_NABLA_EXE " ewma --beta 0.5,0.9 2>&1 </dev/null", out, sizeof out),
	                 2);
	ck_assert(strstr(out, "one --beta only"));
	ck_assert_int_eq(run(NB_NABLA_EXE " ewma --demo --beta 0.5,1 2>&1", out, sizeof out), 2);
	ck_assert(strstr(out, "nabla ewma: --beta must be a number >= 0 and < 1, got '1'\n"));
	/* the demo: seeded, so the same numbers every time; columns per beta */
	ck_assert_int_eq(run(NB_NABLA_EXE " ewma --demo --n 3 --beta 0.5,0.9", out, sizeof out), 0);
	const char *header = "t,x,ewma_0.5,ewma_0.9\n";
	ck_assert(!strncmp(out, header, strlen(header)));
	char again[4096];
	ck_assert_int_eq(run(NB_NABLA_EXE " ewma --demo --n 3 --beta 0.5,0.9", again, sizeof again),
	                 0);
	ck_assert_str_eq(out, again);
	double t1, x1, e1, f1;
	ck_assert_int_eq(sscanf(out + strlen(header), "%lf,%lf,%lf,%lf", &t1, &x1, &e1, &f1), 4);
	ck_near(t1, 1, 0);
	ck_near(e1, 0.5 * x1, 1e-12 * fabs(x1)); /* v_1 = (1 - beta) x_1 */
	ck_near(f1, 0.1 * x1, 1e-12 * fabs(x1));
	ck_assert_int_eq(run(NB_NABLA_EXE " ewma --demo --n 3 --seed 2", again, sizeof again), 0);
	ck_assert_str_ne(out, again);
	ck_assert_int_eq(run(NB_NABLA_EXE " ewma --beta 0.5 /nonexistent 2>&1", out, sizeof out),
	                 1);
	ck_assert(strstr(out, "cannot open /nonexistent"));
	ck_assert_int_eq(run(NB_NABLA_EXE " ewma --help", out, sizeof out), 0);
	ck_assert(strstr(out, "usage: nabla ewma --beta B"));
	ck_assert_int_eq(run(NB_NABLA_EXE " help ewma", out, sizeof out), 0);
	ck_assert(strstr(out, "usage: nabla ewma --beta B"));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("optim");
	TCase *tc = tcase_create("optim");
	tcase_add_test(tc, test_sgd_reference);
	tcase_add_test(tc, test_momentum_reference);
	tcase_add_test(tc, test_momentum_conventions_by_hand);
	tcase_add_test(tc, test_rmsprop_reference);
	tcase_add_test(tc, test_adam_reference);
	tcase_add_test(tc, test_adam_first_step_is_sign);
	tcase_add_test(tc, test_adam_vs_adamw_decay);
	tcase_add_test(tc, test_clip_global_norm);
	tcase_add_test(tc, test_clip_below_max_untouched);
	tcase_add_test(tc, test_global_norm_op);
	tcase_add_test(tc, test_global_norm_sizes);
	tcase_add_test(tc, test_updates_after_all_gradients);
	tcase_add_test(tc, test_state_tensors);
	tcase_add_test(tc, test_resume_with_set_steps);
	tcase_add_test(tc, test_schedule_drives_lr);
	tcase_add_test(tc, test_convergence);
	tcase_add_test(tc, test_f32_runs);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_kind_names);
	tcase_add_test(tc, test_bad_options);
	tcase_add_test(tc, test_bad_loss);
	tcase_add_test(tc, test_defaults_functions);
	tcase_add_test(tc, test_as_written_zero);
	tcase_add_test(tc, test_opts_of_round_trip);
	tcase_add_test(tc, test_update_labels);
	tcase_add_test(tc, test_hyper_input);
	tcase_add_test(tc, test_hyper_by_hand);
	tcase_add_test(tc, test_adam_subnormal_bits);
	tcase_add_test(tc, test_update_inputs_checked);
	tcase_add_test(tc, test_state_and_graph_getters);
	tcase_add_test(tc, test_schedule_values);
	tcase_add_test(tc, test_schedule_warmup);
	tcase_add_test(tc, test_schedule_errors);
	tcase_add_test(tc, test_ewma_notes_example);
	tcase_add_test(tc, test_ewma_unrolled);
	tcase_add_test(tc, test_ewma_errors);
	tcase_add_test(tc, test_series_parse);
	tcase_add_test(tc, test_series_errors);
	tcase_add_test(tc, test_ewma_command);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
