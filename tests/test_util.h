/* Shared helpers for the Check suites. */
#ifndef NB_TEST_UTIL_H
#define NB_TEST_UTIL_H

#include <check.h>
#include <math.h>

#include "nabla.h"

/* |a - b| <= tol, with both values in the failure message */
#define ck_near(a, b, tol)                                                      \
	do {                                                                    \
		double a_ = (a), b_ = (b);                                      \
		ck_assert_msg(fabs(a_ - b_) <= (tol), "%s = %.17g, expected %.17g (tol %g)", \
		              #a, a_, b_, (double)(tol));                      \
	} while (0)

#define ck_graph_ok(g) ck_assert_msg(nb_graph_status(g) == NB_OK, "graph error: %s", nb_graph_errmsg(g))

static inline int nb_test_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

#endif
