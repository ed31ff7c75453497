/*
 * Learning-rate schedules (pure functions of the step, so a training loop
 * calls nb_optim_set_lr(o, nb_schedule_lr(&s, step)) before each nb_step)
 * and the exponentially weighted moving average of the lecture notes.
 */
#include "nabla.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

static const char *const sched_names[NB_SCHED_KIND_COUNT] = {[NB_SCHED_CONSTANT] = "constant",
                                                             [NB_SCHED_STEP] = "step",
                                                             [NB_SCHED_EXPONENTIAL] = "exponential",
                                                             [NB_SCHED_COSINE] = "cosine"};

const char *nb_schedule_kind_name(nb_schedule_kind kind)
{
	return kind >= 0 && kind < NB_SCHED_KIND_COUNT ? sched_names[kind] : NULL;
}

nb_schedule_kind nb_schedule_kind_from_name(const char *name)
{
	if (name && !strcasecmp(name, "exp"))
		return NB_SCHED_EXPONENTIAL;
	for (int k = 0; name && k < NB_SCHED_KIND_COUNT; k++)
		if (!strcasecmp(name, sched_names[k]))
			return (nb_schedule_kind)k;
	return NB_SCHED_INVALID;
}

static nb_status bad(char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static nb_status bad(char *err, size_t n, const char *fmt, ...)
{
	if (err && n) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, n, fmt, ap);
		va_end(ap);
	}
	return NB_ERR_ARG;
}

nb_status nb_schedule_check(const nb_schedule *s, char *err, size_t n)
{
	if (err && n)
		err[0] = 0;
	if (!s)
		return bad(err, n, "schedule is NULL");
	const char *name = nb_schedule_kind_name(s->kind);
	if (!name)
		return bad(err, n, "schedule: unknown kind %d", (int)s->kind);
	bool step = s->kind == NB_SCHED_STEP, expo = s->kind == NB_SCHED_EXPONENTIAL;
	bool cosine = s->kind == NB_SCHED_COSINE;
	if (!(s->base_lr >= 0 && isfinite(s->base_lr)))
		return bad(err, n,
		           "%s schedule: base learning rate %g must be finite and not negative",
		           name, s->base_lr);
	if (s->warmup_steps < 0)
		return bad(err, n, "%s schedule: warm-up steps %lld must not be negative", name,
		           (long long)s->warmup_steps);
	/* options of other kinds are mistakes, not silently ignored */
	if (!step && s->step_size != 0)
		return bad(err, n, "%s schedule: step_size applies only to the step schedule",
		           name);
	if (!step && !expo && s->gamma != 0)
		return bad(err, n, "%s schedule: gamma applies only to step and exponential", name);
	if (!cosine && s->total_steps != 0)
		return bad(err, n, "%s schedule: total_steps applies only to cosine", name);
	if (s->kind == NB_SCHED_CONSTANT && s->min_lr != 0)
		return bad(err, n, "constant schedule: min_lr does not apply");
	if (step && s->step_size <= 0)
		return bad(err, n, "step schedule: step_size %lld must be positive",
		           (long long)s->step_size);
	if ((step || expo) && !(s->gamma > 0 && isfinite(s->gamma)))
		return bad(err, n, "%s schedule: gamma %g must be positive", name, s->gamma);
	if (cosine && s->total_steps <= s->warmup_steps)
		return bad(err, n,
		           "cosine schedule: total_steps %lld must exceed the %lld warm-up steps",
		           (long long)s->total_steps, (long long)s->warmup_steps);
	if (!(s->min_lr >= 0 && s->min_lr <= s->base_lr))
		return bad(err, n, "%s schedule: min_lr %g must lie in [0, base_lr %g]", name,
		           s->min_lr, s->base_lr);
	return NB_OK;
}

double nb_schedule_lr(const nb_schedule *s, int64_t t)
{
	if (nb_schedule_check(s, NULL, 0) != NB_OK || t < 0)
		return NAN;
	int64_t w = s->warmup_steps;
	if (t < w) /* linear warm-up: base/W, 2 base/W, ..., base */
		return s->base_lr * (double)(t + 1) / (double)w;
	t -= w;
	double lr = s->base_lr;
	switch (s->kind) {
	case NB_SCHED_STEP:
		lr = s->base_lr * pow(s->gamma, (double)(t / s->step_size));
		break;
	case NB_SCHED_EXPONENTIAL:
		lr = s->base_lr * pow(s->gamma, (double)t);
		break;
	case NB_SCHED_COSINE: {
		double T = (double)(s->total_steps - w);
		if ((double)t >= T)
			return s->min_lr;
		return s->min_lr + (s->base_lr - s->min_lr) * (1 + cos(M_PI * (double)t / T)) / 2;
	}
	default:
		break;
	}
	return lr > s->min_lr ? lr : s->min_lr;
}

/* ---- EWMA ---------------------------------------------------------------------------
 * v_t = beta v_{t-1} + (1-beta) x_t, v_0 = 0.  Unrolled, v_t is
 * (1-beta) sum_k beta^(t-k) x_k, whose weights sum to 1 - beta^t; dividing
 * by that is the bias correction (Adam's m^). */

nb_status nb_ewma(const double *x, int64_t n, double beta, bool bias_correct, double *out)
{
	if (n < 0 || (n > 0 && (!x || !out)) || !(beta >= 0 && beta < 1))
		return NB_ERR_ARG;
	double v = 0, bt = 1;
	for (int64_t i = 0; i < n; i++) {
		v = beta * v + (1 - beta) * x[i];
		bt *= beta;
		out[i] = bias_correct ? v / (1 - bt) : v;
	}
	return NB_OK;
}
