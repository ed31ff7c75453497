/*
 * The distributed module's interface to the rest of the library: the
 * gradient buckets' non-blocking allreduces, which the ops dist_allreduce
 * and dist_wait (src/ops/dist.c) start and finish from inside a compiled
 * program.  Only src/dist/dist.c sees MPI.
 */
#ifndef NB_DIST_INTERNAL_H
#define NB_DIST_INTERNAL_H

#include "graph/internal.h"

/* Whether d has more than one rank (what makes the optimizer add buckets
 * and nb_fit shard its batches). */
bool nb__dist_active(const nb_dist *d);
size_t nb__dist_bucket_bytes(const nb_dist *d);
/* A new bucket slot (its request); -1 when out of memory. */
int nb__dist_new_bucket(nb_dist *d);
/* Start summing buf[0..count) (float when f32, else double) over the
 * ranks in place, in bucket slot b; then wait for it.  NB_OK, or an error
 * with its message in err (n bytes). */
nb_status nb__dist_start(nb_dist *d, int b, void *buf, int64_t count, bool f32, char *err,
                         size_t n);
nb_status nb__dist_wait(nb_dist *d, int b, char *err, size_t n);
/* Move the gradient sums in flight along (MPI_Test each): Open MPI
 * progresses a non-blocking collective only inside MPI calls, so the
 * optimizer's program calls this between its kernels (nb_program
 * between); nothing when none is in flight.  d: the nb_dist. */
void nb__dist_progress(void *d);
/* Whether this rank's shard of the current step is empty (a last batch of
 * fewer samples than ranks): nb_fit sets it, synchronised batchnorm then
 * counts none of the rank's (padding) rows. */
void nb__dist_set_empty_shard(nb_dist *d, bool empty);
bool nb__dist_empty_shard(const nb_dist *d);
/* Sum v[0..n) over the ranks, in place, blocking (synchronised batchnorm). */
nb_status nb__dist_sum(nb_dist *d, double *v, int n, char *err, size_t errn);

/* Replace the gradients grads[0..n) of params[0..n) by their sums over
 * the ranks (buckets of nodes, src/dist/buckets.c); nothing with one
 * rank.  The graph's status. */
nb_status nb__dist_bucket_grads(nb_dist *d, nb_tensor *const *params, nb_tensor **grads, int n);

#endif
