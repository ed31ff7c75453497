/* nabla/debug.h — introspection and helpers for tools and tests; part of
 * the public API, included by "nabla.h".
 *
 * The op table by number (the order of `nabla gradcheck --list`; nothing
 * stores the numbers), each op's own gradient check, and the tick rule of
 * the plots.  Programs that train models need none of it.
 */
/* the core types first, outside the guard: whichever header comes first,
 * nabla.h then includes this one with them defined */
#include "nabla.h"

#ifndef NABLA_DEBUG_H
#define NABLA_DEBUG_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the op table ------------------------------------------------------ */

NB_API int nb_num_ops(void);
NB_API const char *nb_op_name(int op);
/* Ops that can be checked by nb_op_gradcheck (not leaves, not internal). */
NB_API bool nb_op_is_checkable(int op);
/* Builds a small random instance of op in an f64 graph, checks it. */
NB_API nb_status nb_op_gradcheck(int op, uint64_t seed, nb_gradcheck_report *rep, char *errbuf,
                                 size_t errlen);

/* ---- plots ------------------------------------------------------------ */

/* Round tick values for an axis from lo to hi: the multiples of the
 * smallest step of the form {1, 2, 5} x 10^k that gives at most max_ticks
 * of them inside [lo, hi].  Writes at most cap values; returns how many
 * there are (0 when lo >= hi, either is not finite, or max_ticks < 2). */
NB_API int nb_nice_ticks(double lo, double hi, int max_ticks, double *ticks, int cap);

#ifdef __cplusplus
}
#endif

#endif /* NABLA_DEBUG_H */
