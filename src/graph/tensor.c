/*
 * A tensor's values: initialising parameters (nb_init_tensor, fans),
 * feeding inputs, reading results, and random parameters for the ops'
 * gradcheck examples.
 */
#include "graph/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void nb_fans(nb_shape s, double *fan_in, double *fan_out)
{
	double in = 1, out = 1;
	if (s.ndim == 1) {
		in = out = (double)s.d[0];
	} else if (s.ndim >= 2) {
		double rf = 1; /* receptive field of a conv kernel */
		for (int i = 2; i < s.ndim; i++)
			rf *= (double)s.d[i];
		/* dense weights are [out, in] like PyTorch; conv [O, I, kh, kw] */
		in = (double)s.d[1] * rf;
		out = (double)s.d[0] * rf;
	}
	if (fan_in)
		*fan_in = in;
	if (fan_out)
		*fan_out = out;
}

nb_status nb_init_tensor(nb_tensor *t, nb_init init)
{
	if (!t)
		return NB_ERR_ARG;
	nb_graph *g = t->g;
	if (!(t->flags & NB_TF_PERSISTENT) || nb__is_placeholder(t)) {
		nb__fail(g, NB_ERR_ARG, "init(%s): only leaves can be initialised", t->name);
		return NB_ERR_ARG;
	}
	double fi, fo;
	nb_fans(t->shape, &fi, &fo);
	double gain = init.gain;
	double lo = 0, hi = 0, mean = 0, sd = 0;
	if (!isfinite(init.a) || !isfinite(init.b) || !isfinite(gain) || gain < 0) {
		nb__fail(
		    g, NB_ERR_ARG,
		    "init(%s): parameters must be finite and the gain not negative (a %g, b %g, gain %g)",
		    t->name, init.a, init.b, gain);
		return NB_ERR_ARG;
	}
	bool normal = false;
	switch (init.kind) {
	case NB_INIT_ZEROS:
		break;
	case NB_INIT_ONES:
		lo = hi = 1;
		break;
	case NB_INIT_CONSTANT:
		lo = hi = init.a;
		break;
	case NB_INIT_UNIFORM:
		lo = init.a, hi = init.b;
		break;
	case NB_INIT_NORMAL:
		normal = true, mean = init.a, sd = init.b;
		break;
	case NB_INIT_XAVIER_UNIFORM:
		hi = (gain ? gain : 1) * sqrt(6.0 / (fi + fo)), lo = -hi;
		break;
	case NB_INIT_XAVIER_NORMAL:
		normal = true, sd = (gain ? gain : 1) * sqrt(2.0 / (fi + fo));
		break;
	case NB_INIT_HE_UNIFORM:
		hi = (gain ? gain : sqrt(2.0)) * sqrt(3.0 / fi), lo = -hi;
		break;
	case NB_INIT_HE_NORMAL:
		normal = true, sd = (gain ? gain : sqrt(2.0)) / sqrt(fi);
		break;
	default:
		nb__fail(g, NB_ERR_ARG, "init(%s): unknown initialiser kind %d", t->name,
		         (int)init.kind);
		return NB_ERR_ARG;
	}
	if (normal && sd < 0) {
		nb__fail(g, NB_ERR_ARG, "init(%s): normal standard deviation %g is negative",
		         t->name, sd);
		return NB_ERR_ARG;
	}
	if (!normal && hi < lo) {
		nb__fail(g, NB_ERR_ARG, "init(%s): uniform bounds reversed (%g > %g)", t->name, lo,
		         hi);
		return NB_ERR_ARG;
	}
	for (int64_t i = 0; i < t->size; i++) {
		double v = normal ? mean + sd * nb__rng_normal(g)
		                  : (lo == hi ? lo : lo + (hi - lo) * nb__rng_uniform(g));
		nb__set(t, i, v);
	}
	t->flags |= NB_TF_FED; /* an input given values this way counts as fed */
	return NB_OK;
}

/* ---- data in and out -------------------------------------------------------- */

static nb_status check_io(const nb_tensor *t, const void *p, int64_t n, const char *what,
                          bool write)
{
	if (!t)
		return NB_ERR_ARG;
	nb_graph *g = t->g;
	char buf[128];
	if (nb__is_placeholder(t)) {
		nb__fail(g, NB_ERR_GRAPH,
		         "%s: tensor is the error placeholder (an earlier call failed)", what);
		return NB_ERR_GRAPH;
	}
	if (!p) {
		nb__fail(g, NB_ERR_ARG, "%s(%s): data pointer is NULL", what, t->name);
		return NB_ERR_ARG;
	}
	if (n != t->size) {
		nb__fail(g, NB_ERR_SHAPE, "%s(%s): got %lld values, tensor %s holds %lld", what,
		         t->name, (long long)n, nb_shape_str(t->shape, buf, sizeof buf),
		         (long long)t->size);
		return NB_ERR_SHAPE;
	}
	if (write && !(t->flags & NB_TF_PERSISTENT)) {
		nb__fail(
		    g, NB_ERR_ARG,
		    "%s(%s): only inputs, parameters and constants can be fed, not the result of %s",
		    what, t->name, nb__op_name(t));
		return NB_ERR_ARG;
	}
	if (!write && !(t->flags & NB_TF_PERSISTENT)) {
		/* a computed tensor's buffer is reused once its last reader has
		 * run: only the last program's targets still hold their values */
		bool kept = false;
		for (int i = 0; g->last_run && i < g->last_run->n_targets && !kept; i++)
			kept = g->last_run->targets[i] == t;
		if (!kept) {
			nb__fail(
			    g, NB_ERR_GRAPH,
			    "%s(%s): no value: it is not a target of the last program run (use nb_eval, "
			    "make it a target of nb_compile, or nb_optim_keep it)",
			    what, t->name);
			return NB_ERR_GRAPH;
		}
	}
	return NB_OK;
}

nb_status nb_feed_f32(nb_tensor *t, const float *data, int64_t n)
{
	nb_status st = check_io(t, data, n, "feed", true);
	if (st)
		return st;
	if (nb__is_f32(t))
		memcpy(t->data, data, (size_t)n * sizeof *data);
	else
		for (int64_t i = 0; i < n; i++)
			((double *)t->data)[i] = data[i];
	t->flags |= NB_TF_FED;
	return NB_OK;
}

nb_status nb_feed_f64(nb_tensor *t, const double *data, int64_t n)
{
	nb_status st = check_io(t, data, n, "feed", true);
	if (st)
		return st;
	if (!nb__is_f32(t))
		memcpy(t->data, data, (size_t)n * sizeof *data);
	else
		for (int64_t i = 0; i < n; i++)
			((float *)t->data)[i] = (float)data[i];
	t->flags |= NB_TF_FED;
	return NB_OK;
}

nb_status nb_read_f32(const nb_tensor *t, float *out, int64_t n)
{
	nb_status st = check_io(t, out, n, "read", false);
	if (st)
		return st;
	for (int64_t i = 0; i < n; i++)
		out[i] = (float)nb__get(t, i);
	return NB_OK;
}

nb_status nb_read_f64(const nb_tensor *t, double *out, int64_t n)
{
	nb_status st = check_io(t, out, n, "read", false);
	if (st)
		return st;
	for (int64_t i = 0; i < n; i++)
		out[i] = nb__get(t, i);
	return NB_OK;
}

double nb_item(const nb_tensor *t)
{
	if (!t)
		return NAN;
	if (t->size != 1 && !nb__is_placeholder(t)) {
		char b[128];
		nb__fail(
		    t->g, NB_ERR_SHAPE,
		    "item(%s): needs a one-element tensor, not %s (%lld elements); use nb_read_f64",
		    t->name, nb_shape_str(t->shape, b, sizeof b), (long long)t->size);
		return NAN;
	}
	double v;
	if (check_io(t, &v, 1, "item", false) != NB_OK)
		return NAN;
	return nb__get(t, 0);
}

void *nb_data(nb_tensor *t)
{
	if (!t)
		return NULL;
	if (t->op == NB_OP_INPUT) /* the caller may write it: it counts as fed */
		t->flags |= NB_TF_FED;
	return t->data;
}

/* ---- random parameters for op examples (gradcheck) ------------------------ */

nb_tensor *nb__rand_param(nb_graph *g, const char *name, nb_shape s, double lo, double hi)
{
	return nb_param(g, name, s, NB_UNIFORM(lo, hi));
}
