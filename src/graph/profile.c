/*
 * Per-kernel timing of a program: nb_run reads the clock around every
 * step while profiling is on, and the report sums the steps by op.
 */
#include "graph/internal.h"

#include <stdlib.h>
#include <string.h>

nb_status nb_program_profile(nb_program *p, bool on)
{
	if (!p)
		return NB_ERR_ARG;
	free(p->prof_ns);
	p->prof_ns = NULL;
	p->prof_runs = 0;
	if (on && !(p->prof_ns = calloc((size_t)(p->n > 0 ? p->n : 1), sizeof *p->prof_ns)))
		return NB_ERR_NOMEM;
	return NB_OK;
}

/* a line of the report: an op or a fusion (id = its row, summed over its
 * nodes) or a node (id = schedule step, calls = 1) */
typedef struct row {
	int id;
	double ns;
	int64_t calls;
} row;

static int by_time(const void *a, const void *b)
{
	double x = ((const row *)a)->ns, y = ((const row *)b)->ns;
	return (x < y) - (x > y);
}

#define SLOWEST_NODES 12

/* the report's row of step s: its op's, or NB_OP_COUNT + its fusion's index */
static int row_of(const nb_program *p, int s)
{
	for (int f = 0; p->fused && p->fused[s] && f < nb__n_fusions; f++)
		if (p->fused[s] == nb__fusions[f])
			return NB_OP_COUNT + f;
	return p->sched[s]->op;
}

static const char *row_name(int id)
{
	return id < NB_OP_COUNT ? nb_op_name(id) : nb__fusions[id - NB_OP_COUNT]->name;
}

/* what step s runs: its op's name, or its fusion's */
static const char *step_name(const nb_program *p, int s)
{
	return p->fused && p->fused[s] ? p->fused[s]->name : nb__op_name(p->sched[s]);
}

nb_status nb_program_profile_report(const nb_program *p, FILE *f)
{
	if (!p || !f)
		return NB_ERR_ARG;
	if (!p->prof_ns || p->prof_runs == 0) {
		fprintf(f, "no profile: call nb_program_profile(p, true) before nb_run\n");
		return NB_OK;
	}
	const int nrow = NB_OP_COUNT + nb__n_fusions, nr = p->n > nrow ? p->n : nrow;
	row *r = calloc((size_t)nr, sizeof *r);
	if (!r)
		return NB_ERR_NOMEM;
	const double runs = (double)p->prof_runs;
	double total = 0;
	for (int id = 0; id < nrow; id++)
		r[id].id = id;
	for (int s = 0; s < p->n; s++) {
		row *x = &r[row_of(p, s)];
		x->ns += p->prof_ns[s];
		x->calls++;
		total += p->prof_ns[s];
	}
	qsort(r, (size_t)nrow, sizeof *r, by_time);
	fprintf(f, "%-28s %6s %11s %7s\n", "op", "nodes", "ms per run", "share");
	for (int i = 0; i < nrow && r[i].calls > 0; i++)
		fprintf(f, "%-28s %6lld %11.3f %6.1f%%\n", row_name(r[i].id), (long long)r[i].calls,
		        r[i].ns / runs / 1e6, total > 0 ? 100.0 * r[i].ns / total : 0.0);
	fprintf(f, "%-28s %6d %11.3f %6.1f%%  (%lld runs)\n", "total", p->n, total / runs / 1e6,
	        100.0, (long long)p->prof_runs);
	/* the slowest nodes */
	for (int s = 0; s < p->n; s++)
		r[s] = (row){.id = s, .ns = p->prof_ns[s], .calls = 1};
	qsort(r, (size_t)p->n, sizeof *r, by_time);
	fprintf(f, "\nslowest nodes:\n");
	for (int i = 0; i < p->n && i < SLOWEST_NODES; i++) {
		const nb_tensor *t = p->sched[r[i].id];
		char sh[96], in0[96], op[64];
		nb_shape_str(t->shape, sh, sizeof sh);
		nb_shape_str(t->n_in > 0 ? t->in[0]->shape : t->shape, in0, sizeof in0);
		const void *plan = p->plan ? p->plan[r[i].id] : NULL;
		const char *k =
		    nb__ops[t->op]->kernel && plan ? nb__ops[t->op]->kernel(t, plan) : NULL;
		snprintf(op, sizeof op, k ? "%s [%s]" : "%s", step_name(p, r[i].id), k);
		fprintf(f, "  %8.3f ms  %-34s %-20s <- %-20s %s\n", r[i].ns / runs / 1e6, op, sh,
		        in0, t->name ? t->name : "");
	}
	free(r);
	return NB_OK;
}

double nb_program_profile_op_ms(const nb_program *p, const char *op)
{
	if (!p || !op || !p->prof_ns || p->prof_runs == 0)
		return -1;
	double ns = 0;
	bool found = false;
	for (int s = 0; s < p->n; s++)
		if (!strcmp(step_name(p, s), op) || !strcmp(row_name(row_of(p, s)), op)) {
			ns += p->prof_ns[s];
			found = true;
		}
	return found ? ns / (double)p->prof_runs / 1e6 : -1;
}
