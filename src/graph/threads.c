/*
 * The process-wide thread count: what nb_run hands every kernel (nb_exec
 * threads), and BLIS's own count with it.
 */
#include "graph/internal.h"

#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>

#include <blis.h>

/* ---- threads ------------------------------------------------------------ */

/* The process-wide count: 0 until set or first asked for, then read by
 * every kernel (from any thread) without a lock.  Setting it, and the
 * default on first use, take the lock, so that BLIS's count (kept by
 * BLIS) always ends up the same as ours and an explicit count is never
 * overwritten by a concurrent first use. */
static atomic_int nb_threads;
static pthread_mutex_t nb_threads_lock = PTHREAD_MUTEX_INITIALIZER;

static void set_threads_locked(int n)
{
	atomic_store(&nb_threads, n);
	omp_set_num_threads(n); /* the calling thread's OpenMP default, for its own regions */
	bli_thread_set_num_threads(n);
}

void nb_set_num_threads(int n)
{
	if (n <= 0)
		n = omp_get_num_procs();
	pthread_mutex_lock(&nb_threads_lock);
	set_threads_locked(n);
	pthread_mutex_unlock(&nb_threads_lock);
}

int nb_num_threads(void)
{
	int n = atomic_load(&nb_threads);
	if (n > 0)
		return n;
	pthread_mutex_lock(&nb_threads_lock);
	n = atomic_load(&nb_threads);
	if (n == 0) {
		n = omp_get_num_procs();
		set_threads_locked(n);
	}
	pthread_mutex_unlock(&nb_threads_lock);
	return n;
}

int nb_get_num_threads(void)
{
	return nb_num_threads();
}
