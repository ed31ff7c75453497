/*
 * The monotonic clock the library and the tools time things with.
 */
#ifndef NB_UTIL_CLOCK_H
#define NB_UTIL_CLOCK_H

#include <time.h>

/* seconds since an arbitrary fixed point (CLOCK_MONOTONIC) */
static inline double nb__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
