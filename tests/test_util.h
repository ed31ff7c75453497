/* Shared helpers for the Check suites. */
#ifndef NB_TEST_UTIL_H
#define NB_TEST_UTIL_H

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "nabla.h"

/* |a - b| <= tol, with both values in the failure message */
#define ck_near(a, b, tol)                                                                         \
	do {                                                                                       \
		double a_ = (a), b_ = (b);                                                         \
		ck_assert_msg(fabs(a_ - b_) <= (tol), "%s = %.17g, expected %.17g (tol %g)", #a,   \
		              a_, b_, (double)(tol));                                              \
	} while (0)

#define ck_graph_ok(g)                                                                             \
	ck_assert_msg(nb_graph_status(g) == NB_OK, "graph error: %s", nb_graph_errmsg(g))

/* A zoo model in a new graph of dtype dt seeded with seed (the test fails
 * when it cannot be built); nb_graph_free(nb_model_graph(m)) frees both. */
static inline nb_model *nb_test_zoo(const char *name, nb_dtype dt, int64_t batch, uint64_t seed)
{
	nb_graph *g = nb_graph_new(dt);
	ck_assert_ptr_nonnull(g);
	nb_graph_seed(g, seed);
	nb_model *m = nb_zoo_build(g, name, batch);
	ck_assert_msg(m != NULL, "%s: %s", name, nb_graph_errmsg(g));
	return m;
}

/* p's profile report (nb_program_profile_report) into buf, cut to n - 1
 * characters */
static inline void nb_test_profile_text(const nb_program *p, char *buf, size_t n)
{
	FILE *f = tmpfile();
	ck_assert(f != NULL);
	ck_assert_int_eq(nb_program_profile_report(p, f), NB_OK);
	rewind(f);
	buf[fread(buf, 1, n - 1, f)] = 0;
	fclose(f);
}

/* A whole file as a NUL-terminated malloc'd string (the test fails when it
 * cannot be read). */
static inline char *nb_test_read_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	ck_assert(s != NULL);
	ck_assert_int_eq(fread(s, 1, (size_t)n, fp), n);
	s[n] = 0;
	fclose(fp);
	return s;
}

/* Run a shell command (with 2>&1 in it for stderr too) and capture its
 * output into a malloc'd string; returns the exit status, -1 for a signal
 * (a crash then fails every expectation). */
static inline int nb_test_popen(const char *cmd, char **out)
{
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	size_t cap = 1 << 16, n = 0;
	char *s = malloc(cap);
	ck_assert_ptr_nonnull(s);
	for (size_t k; (k = fread(s + n, 1, cap - n - 1, p)) > 0;) {
		n += k;
		if (n + 1 == cap) {
			s = realloc(s, cap *= 2);
			ck_assert_ptr_nonnull(s);
		}
	}
	s[n] = 0;
	*out = s;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The same into a fixed buffer of n bytes (the output cut to fit). */
static inline int nb_test_popen_buf(const char *cmd, char *out, size_t n)
{
	char *s;
	int st = nb_test_popen(cmd, &s);
	snprintf(out, n, "%s", s);
	free(s);
	return st;
}

static inline int nb_test_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

#endif
