/*
 * nabla gradcheck — check every op's gradient against central differences.
 *
 * Each checkable op of the table builds its own small random example in an
 * f64 graph (nb_op_gradcheck) for seeds 1..N; a row reports the worst
 * absolute and relative error over the seeds, the elements compared, the
 * elements skipped on kinks, and PASS/FAIL.
 */
#include "cli.h"
#include "graph/internal.h" /* nb__shown */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEEDS 10000

static void usage(FILE *fp)
{
	fprintf(fp, "usage: nabla gradcheck [--seeds N] [--op NAME]... [--json] [--list]\n\n"
	            "Checks each op's symbolic gradient (its VJP) against central finite\n"
	            "differences in f64, on small random examples drawn with seeds 1..N.\n\n"
	            "options:\n"
	            "  --seeds N   examples per op, 1 to 10000 (default 3)\n"
	            "  --op NAME   check only this op (may be repeated)\n"
	            "  --json      one JSON object per op per line on stdout; the summary\n"
	            "              line goes to stderr\n"
	            "  --list      print the names of the checkable ops and exit\n"
	            "  --help      show this help\n\n"
	            "exit status: 0 all passed, 1 some op failed, 2 usage error\n");
}

typedef struct op_result {
	double max_abs, max_rel;
	long long checked, skipped, failed;
	bool passed;
	char why[600]; /* the first failure, for the row's note */
} op_result;

static void check_op(int op, long seeds, op_result *r)
{
	memset(r, 0, sizeof *r);
	r->passed = true;
	for (long s = 1; s <= seeds; s++) {
		nb_gradcheck_report rep;
		char err[512];
		nb_status st = nb_op_gradcheck(op, (uint64_t)s, &rep, err, sizeof err);
		if (st != NB_OK) {
			if (r->passed)
				snprintf(r->why, sizeof r->why, "seed %ld: %s: %s", s,
				         nb_status_string(st), err);
			r->passed = false;
			continue;
		}
		/* NaN errors must show, not vanish in a comparison */
		if (rep.max_abs_err > r->max_abs || isnan(rep.max_abs_err))
			r->max_abs = rep.max_abs_err;
		if (rep.max_rel_err > r->max_rel || isnan(rep.max_rel_err))
			r->max_rel = rep.max_rel_err;
		r->checked += rep.checked;
		r->skipped += rep.skipped_kinks;
		r->failed += rep.failed;
		if (!rep.passed) {
			if (r->passed)
				snprintf(r->why, sizeof r->why,
				         rep.checked ? "seed %ld: input %d element %lld: analytic "
				                       "%.17g, numeric %.17g"
				                     : "seed %ld: no element could be checked",
				         s, rep.worst_tensor, (long long)rep.worst_index,
				         rep.worst_analytic, rep.worst_numeric);
			r->passed = false;
		}
	}
}

/* JSON has no NaN or infinity: those become null */
static void json_number(FILE *fp, double v)
{
	if (isfinite(v))
		fprintf(fp, "%.17g", v);
	else
		fputs("null", fp);
}

static void print_json(const char *name, long seeds, const op_result *r)
{
	printf("{\"op\":");
	cli_json_string(stdout, name);
	printf(",\"seeds\":%ld,\"max_abs_err\":", seeds);
	json_number(stdout, r->max_abs);
	printf(",\"max_rel_err\":");
	json_number(stdout, r->max_rel);
	printf(",\"checked\":%lld,\"skipped_kinks\":%lld,\"failed\":%lld,\"passed\":%s", r->checked,
	       r->skipped, r->failed, r->passed ? "true" : "false");
	if (!r->passed) {
		printf(",\"error\":");
		cli_json_string(stdout, r->why);
	}
	printf("}\n");
}

static void print_row(const char *name, const op_result *r)
{
	printf("%-16s %12.3e %12.3e %9lld %7lld  %s\n", name, r->max_abs, r->max_rel, r->checked,
	       r->skipped, r->passed ? "PASS" : "FAIL");
	if (!r->passed)
		printf("    %s\n", r->why);
}

static void list_ops(FILE *fp, const char *sep)
{
	bool first = true;
	for (int op = 0; op < nb_num_ops(); op++)
		if (nb_op_is_checkable(op)) {
			fprintf(fp, "%s%s", first ? "" : sep, nb_op_name(op));
			first = false;
		}
	fputc('\n', fp);
}

static int find_op(const char *name)
{
	for (int op = 0; op < nb_num_ops(); op++)
		if (nb_op_name(op) && !strcmp(nb_op_name(op), name)) /* NULL: enum slot not built */
			return op;
	return -1;
}

/* "--name" or "--name=value" */
static bool is_opt(const char *arg, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(arg, name, n) && (arg[n] == 0 || arg[n] == '=');
}

static const char *const options[] = {"--seeds", "--op", "--list", "--json", "--help", NULL};

int cmd_gradcheck(int argc, char **argv)
{
	long seeds = 3;
	bool json = false, list = false;
	int n_sel = 0;
	int *sel = calloc((size_t)nb_num_ops(), sizeof *sel); /* selected ops, in order */
	if (!sel) {
		fprintf(stderr, "nabla gradcheck: out of memory\n");
		return 1;
	}
	int status = 2;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			status = 0;
			goto out;
		} else if (!strcmp(a, "--list")) {
			list = true; /* after every option is read: a bad one is still refused */
		} else if (!strcmp(a, "--json")) {
			json = true;
		} else if (is_opt(a, "--seeds")) {
			if (!(v = cli_opt_value(argc, argv, &i, "--seeds")) ||
			    !cli_parse_long("gradcheck", "--seeds", v, 1, MAX_SEEDS, &seeds))
				goto out;
		} else if (is_opt(a, "--op")) {
			if (!(v = cli_opt_value(argc, argv, &i, "--op")))
				goto out;
			int op = find_op(v);
			if (op < 0 || !nb_op_is_checkable(op)) {
				char shown[128];
				nb__shown(v, shown, sizeof shown);
				if (op < 0)
					fprintf(stderr, "nabla gradcheck: no op named '%s'.",
					        shown);
				else
					fprintf(stderr,
					        "nabla gradcheck: '%s' cannot be checked on its "
					        "own (a leaf, "
					        "a backward helper or an optimizer update).",
					        shown);
				fprintf(stderr, " Valid names:\n  ");
				list_ops(stderr, " ");
				goto out;
			}
			bool dup = false;
			for (int k = 0; k < n_sel; k++)
				dup |= sel[k] == op;
			if (!dup)
				sel[n_sel++] = op;
		} else {
			cli_unknown_option("gradcheck", a, options);
			goto out;
		}
	}
	if (list) {
		list_ops(stdout, "\n");
		status = 0;
		goto out;
	}
	if (n_sel == 0)
		for (int op = 0; op < nb_num_ops(); op++)
			if (nb_op_is_checkable(op))
				sel[n_sel++] = op;

	if (!json)
		printf("%-16s %12s %12s %9s %7s  %s\n", "op", "max abs err", "max rel err",
		       "checked", "kinks", "result");
	int passed = 0, failed = 0;
	for (int k = 0; k < n_sel; k++) {
		op_result r;
		check_op(sel[k], seeds, &r);
		if (json)
			print_json(nb_op_name(sel[k]), seeds, &r);
		else
			print_row(nb_op_name(sel[k]), &r);
		fflush(stdout);
		passed += r.passed;
		failed += !r.passed;
	}
	fprintf(json ? stderr : stdout, "%d passed, %d failed\n", passed, failed);
	status = failed ? 1 : 0;
out:
	free(sel);
	return status;
}
