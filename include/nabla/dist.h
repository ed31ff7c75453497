/*
 * Data-parallel training over MPI (docs/distributed.md).
 *
 * One handle, nb_dist, owns the communicator.  Each rank (process) holds a
 * full replica of the model; an optimizer made with nb_optim_opts.dist
 * sums every gradient over the ranks inside its compiled step (buckets of
 * gradients, each reduced with a non-blocking allreduce that starts as
 * soon as its last gradient is final and is waited for just before the
 * updates that read it), and nb_fit given such an optimizer splits every
 * global batch into one shard per rank.  A program that never calls
 * nb_dist_init runs without MPI initialised; in a build without MPI
 * (meson -Dmpi=disabled) or outside a launcher (mpirun), nb_dist_init
 * gives a handle of one rank, with which everything runs as in a single
 * process.
 */
/* the core types first, outside the guard: whichever header comes first,
 * nabla.h then includes this one with them defined */
#include "nabla.h" /* nb_dist, nb_status, nb_graph */

#ifndef NABLA_DIST_H
#define NABLA_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nb_dist_opts {
	/* one rank whatever the launcher says (nabla train --dist off) */
	bool off;
	/* gradient bucket size in bytes; 0: NB_DIST_BUCKET_BYTES */
	size_t bucket_bytes;
} nb_dist_opts;

#define NB_DIST_BUCKET_BYTES ((size_t)1 << 21) /* 2 MiB */

/* Whether this nabla was built with MPI. */
NB_API bool nb_dist_built(void);
/* The number of ranks a launcher (mpirun, srun) started this process
 * among, from its environment (OMPI_COMM_WORLD_SIZE, PMI_SIZE,
 * PMIX_SIZE... ); 1 when none did.  Needs no MPI. */
NB_API int nb_dist_launcher_size(void);

/* Start: MPI is initialised (when built with it, started by a launcher with
 * more than one rank and opts.off is false; (nb_dist_opts){0}: the
 * defaults) and *out gets the handle.  NB_ERR_ARG with a message in err (n bytes) when the
 * launcher started several ranks but this build has no MPI (N copies
 * would each train alone), NB_ERR_IO when MPI fails to start. */
NB_API nb_status nb_dist_init(int *argc, char ***argv, nb_dist_opts opts, nb_dist **out, char *err,
                              size_t n);
/* Finalise MPI (when nb_dist_init started it) and free the handle.  Free
 * the graphs whose optimizers use d first. */
NB_API void nb_dist_finalize(nb_dist *d);
/* With several ranks, end every rank of the job at once (MPI_Abort, exit
 * status code): after an error on one rank, so that no other waits for it
 * forever.  With one rank (or NULL) nothing happens: the caller returns its
 * error as a single process would. */
NB_API void nb_dist_abort(nb_dist *d, int code);

NB_API int nb_dist_rank(const nb_dist *d); /* 0 for NULL */
NB_API int nb_dist_size(const nb_dist *d); /* 1 for NULL */
/* this rank's index among the ranks on its host, and their number */
NB_API int nb_dist_local_rank(const nb_dist *d);
NB_API int nb_dist_local_size(const nb_dist *d);
/* The rows of a global batch of n samples this rank takes: the shard
 * [*first, *first + count), consecutive shards in rank order, the first
 * n % size ranks one sample more than the others, so the shards are
 * disjoint, cover every sample once and differ in size by at most one
 * (rank 0's is never empty when n > 0).  Returns count. */
NB_API int64_t nb_dist_shard(const nb_dist *d, int64_t n, int64_t *first);
/* The per-rank batch for a global batch of n: the largest shard,
 * ceil(n / size). */
NB_API int64_t nb_dist_local_batch(const nb_dist *d, int64_t n);

/* Sum v[0..n) over the ranks, in place (blocking; every rank must call
 * it).  NB_OK with one rank. */
NB_API nb_status nb_dist_allreduce_sum(nb_dist *d, double *v, int n);
/* Compare the model of graph g on every rank (parameter and state names,
 * shapes and the element type, as one hash): a difference fails g with
 * NB_ERR_GRAPH on every rank, naming the ranks.  Then broadcast every
 * parameter and state tensor (optimizer state, batchnorm running
 * statistics) from rank 0, so that every replica starts equal (after a
 * resume too).  nb_fit does this itself when it starts. */
NB_API nb_status nb_dist_sync_model(nb_dist *d, nb_graph *g);

/* Batch normalisation over all ranks: every batchnorm of g computes its
 * training statistics from the whole global batch (the per-channel sums
 * of every rank added, twice per forward and once per backward), as one
 * process would; without it each rank normalises with its shard's own
 * statistics (PyTorch DDP's default).  Every rank must call it for the
 * same graph; d NULL or of one rank: back to per-rank statistics. */
NB_API nb_status nb_dist_sync_batchnorm(nb_dist *d, nb_graph *g);

/* Communication time of the gradient buckets since the last reset: the
 * seconds spent starting and waiting for allreduces inside the compiled
 * steps (what the rank's step was held up by), the bytes reduced and the
 * allreduces started. */
typedef struct nb_dist_stats {
	double exposed_s;
	int64_t bytes, allreduces;
} nb_dist_stats;
NB_API nb_dist_stats nb_dist_stats_of(const nb_dist *d);
/* Deprecated name of nb_dist_stats_of, kept for this release. */
NB_API nb_dist_stats nb_dist_get_stats(const nb_dist *d);
NB_API void nb_dist_reset_stats(nb_dist *d);
/* The seconds a blocking allreduce of `bytes` bytes (f32 elements) takes,
 * the best of `rounds` (collective): what a step's communication would
 * cost if nothing hid it. */
NB_API double nb_dist_time_allreduce(nb_dist *d, size_t bytes, int rounds);

#endif
