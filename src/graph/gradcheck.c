/*
 * Finite-difference gradient checking.
 *
 * For every element x_i of every checked tensor, the symbolic gradient is
 * compared with the central difference (f(x+h) - f(x-h)) / 2h in f64.  An
 * element lies on a kink (relu at 0, a max tie, a clamp bound) when the two
 * one-sided differences disagree; there the derivative is not defined and
 * the element is skipped (and counted) rather than reported as a failure.
 *
 * Stochastic ops (dropout) draw from the graph's RNG at every run.  Finite
 * differences need one fixed function, so the check rewinds the RNG to its
 * state at the start before every run: each run sees the same random draw
 * (the same dropout mask), as if the randomness were an extra constant
 * input.  Afterwards the RNG is left as one run leaves it.
 */
#include "graph/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* run p with the graph RNG rewound to rng0 (see the top of the file) */
static nb_status run_frozen(nb_program *p, const uint64_t rng0[4])
{
	memcpy(p->g->rng, rng0, sizeof p->g->rng);
	return nb_run(p);
}

/* gradcheck's argument checks: NB_OK or the error recorded on the graph */
static nb_status gradcheck_args(nb_tensor *loss, nb_tensor *const *wrt, int n)
{
	nb_graph *g = loss->g;
	if (g->status != NB_OK)
		return g->status;
	if (g->dtype != NB_F64) {
		nb__fail(
		    g, NB_ERR_DTYPE,
		    "gradcheck(%s): needs an f64 graph (finite differences in f32 are too coarse)",
		    loss->name);
		return NB_ERR_DTYPE;
	}
	if (n <= 0 || !wrt) {
		nb__fail(g, NB_ERR_ARG, "gradcheck(%s): nothing to check", loss->name);
		return NB_ERR_ARG;
	}
	for (int k = 0; k < n; k++)
		if (!wrt[k] || !(wrt[k]->flags & NB_TF_PERSISTENT) || nb__is_placeholder(wrt[k])) {
			nb__fail(g, NB_ERR_ARG,
			         "gradcheck(%s): wrt[%d] must be a parameter or input", loss->name,
			         k);
			return NB_ERR_ARG;
		}
	return NB_OK;
}

/* the comparison of element i of wrt[k]: analytic a against numeric num */
static void record(nb_gradcheck_report *rep, int k, int64_t i, double a, double num, double atol,
                   double rtol)
{
	double err = fabs(a - num);
	double scale = fmax(fabs(a), fabs(num));
	double rel = scale > 0 ? err / scale : 0;
	rep->checked++;
	bool bad = !(err <= atol + rtol * fabs(num)); /* NaN fails */
	rep->failed += bad;
	if (err > rep->max_abs_err || bad || isnan(err)) {
		if (err > rep->max_abs_err || isnan(err))
			rep->max_abs_err = err;
		rep->worst_tensor = k;
		rep->worst_index = i;
		rep->worst_analytic = a;
		rep->worst_numeric = num;
	}
	if (rel > rep->max_rel_err)
		rep->max_rel_err = rel;
}

nb_gradcheck_opts nb_gradcheck_defaults(void)
{
	return (nb_gradcheck_opts){.eps = 1e-6, .atol = 1e-6, .rtol = 1e-4, .as_written = true};
}

nb_status nb_gradcheck(nb_tensor *loss, nb_tensor *const *wrt, int n, nb_gradcheck_opts opts,
                       nb_gradcheck_report *rep)
{
	if (!loss)
		return NB_ERR_ARG;
	nb_graph *g = loss->g;
	if (!rep) {
		nb__fail(g, NB_ERR_ARG, "gradcheck(%s): the report pointer is NULL", loss->name);
		return NB_ERR_ARG;
	}
	memset(rep, 0, sizeof *rep);
	rep->worst_tensor = -1;
	nb_status st = gradcheck_args(loss, wrt, n);
	if (st != NB_OK)
		return st;
	nb_gradcheck_opts d = nb_gradcheck_defaults();
	double h = opts.eps == 0 && !opts.as_written ? d.eps : opts.eps;
	double atol = opts.atol == 0 && !opts.as_written ? d.atol : opts.atol;
	double rtol = opts.rtol == 0 && !opts.as_written ? d.rtol : opts.rtol;
	if (!(h > 0 && isfinite(h)) || !(atol >= 0) || !(rtol >= 0)) {
		nb__fail(g, NB_ERR_ARG,
		         "gradcheck(%s): eps = %g must be positive and finite, atol = %g and "
		         "rtol = %g not negative",
		         loss->name, h, atol, rtol);
		return NB_ERR_ARG;
	}

	nb_tensor **grads = malloc((size_t)n * sizeof *grads);
	nb_tensor **targets = malloc(((size_t)n + 1) * sizeof *targets);
	double **analytic = calloc((size_t)n, sizeof *analytic);
	if (!grads || !targets || !analytic)
		goto nomem;
	if (nb_grads(loss, wrt, n, grads) != NB_OK)
		goto out;
	targets[0] = loss;
	memcpy(targets + 1, grads, (size_t)n * sizeof *grads);
	nb_program *both = nb_compile(g, targets, n + 1);
	nb_program *fwd = nb_compile(g, &loss, 1);
	uint64_t rng0[4];
	memcpy(rng0, g->rng, sizeof rng0);
	if (!both || !fwd || run_frozen(both, rng0) != NB_OK)
		goto out;
	for (int k = 0; k < n; k++) {
		if (!(analytic[k] = malloc((size_t)wrt[k]->size * sizeof(double))))
			goto nomem;
		memcpy(analytic[k], grads[k]->data, (size_t)wrt[k]->size * sizeof(double));
	}
	if (run_frozen(fwd, rng0) != NB_OK)
		goto out;
	double f0 = nb_item(loss);
	for (int k = 0; k < n; k++) {
		double *x = wrt[k]->data;
		for (int64_t i = 0; i < wrt[k]->size; i++) {
			double orig = x[i];
			x[i] = orig + h;
			run_frozen(fwd, rng0);
			double fp = nb_item(loss);
			x[i] = orig - h;
			run_frozen(fwd, rng0);
			double fm = nb_item(loss);
			x[i] = orig;
			double num = (fp - fm) / (2 * h);
			double right = (fp - f0) / h, left = (f0 - fm) / h;
			/* smooth: right - left = f'' h + O(h^2), far below this */
			if (fabs(right - left) > 1e-3 * (1 + fabs(right) + fabs(left))) {
				rep->skipped_kinks++;
				continue;
			}
			record(rep, k, i, analytic[k][i], num, atol, rtol);
		}
	}
	run_frozen(fwd, rng0);
	rep->passed = rep->failed == 0 && rep->checked > 0;
	goto out;
nomem:
	nb__fail(g, NB_ERR_NOMEM, "gradcheck: out of memory");
out:
	for (int k = 0; analytic && k < n; k++)
		free(analytic[k]);
	free(analytic);
	free(grads);
	free(targets);
	return g->status;
}

nb_status nb__gradcheck_weighted(nb_graph *g, nb_tensor *y, nb_tensor *const *wrt, int n,
                                 nb_gradcheck_report *rep)
{
	if (g->status != NB_OK || !y)
		return g->status;
	nb_tensor *c = nb__rand_param(g, "loss_weights", y->shape, 0.5, 1.5);
	/* the weights are not checked: keep them out of the gradient */
	nb_tensor *loss = nb_sum(nb_mul(y, nb_stop_gradient(c)));
	return nb_gradcheck(loss, wrt, n, (nb_gradcheck_opts){0}, rep);
}

/* Check one op of the table on its own random example: the loss is
 * sum(op(...) * c) with a fixed random c, so every output element carries a
 * different weight. */
nb_status nb_op_gradcheck(int op, uint64_t seed, nb_gradcheck_report *rep, char *errbuf,
                          size_t errlen)
{
	if (errbuf && errlen)
		errbuf[0] = 0;
	if (!rep)
		return NB_ERR_ARG;
	memset(rep, 0, sizeof *rep);
	if (!nb_op_is_checkable(op) || !nb__ops[op]->example) {
		if (errbuf)
			snprintf(errbuf, errlen, "op %d (%s) has no gradcheck example", op,
			         nb_op_name(op) ? nb_op_name(op) : "?");
		return NB_ERR_ARG;
	}
	nb_graph *g = nb_graph_new(NB_F64);
	if (!g)
		return NB_ERR_NOMEM;
	nb_graph_seed(g, seed);
	nb_tensor *wrt[8] = {0};
	int n = 0;
	nb_tensor *y = nb__ops[op]->example(g, wrt, &n);
	nb_status st = nb__gradcheck_weighted(g, y, wrt, n, rep);
	if (st != NB_OK && errbuf)
		snprintf(errbuf, errlen, "%s", nb_graph_errmsg(g));
	nb_graph_free(g);
	return st;
}
