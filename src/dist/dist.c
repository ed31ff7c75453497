/*
 * The communicator: MPI's start and end, the model check and broadcast,
 * the small blocking sums of the training loop, and the gradient buckets'
 * non-blocking allreduces.  The only file that includes mpi.h; built
 * without MPI, a handle has one rank and every collective is the
 * identity.
 */
#include "dist/dist.h"
#include "nabla_config.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if NABLA_HAVE_MPI
#include <mpi.h>
#endif

struct nb_dist {
	int rank, size, local_rank, local_size;
	bool empty_shard; /* this rank has no sample in the current step */
	bool started_mpi; /* nb_dist_init called MPI_Init_thread */
	size_t bucket_bytes;
	nb_dist_stats stats;
#if NABLA_HAVE_MPI
	MPI_Comm comm;
	MPI_Request *req; /* one per bucket slot */
	int n_req, cap_req;
	bool in_flight; /* a bucket's sum may be in flight (nb__dist_progress) */
#endif
};

bool nb_dist_built(void)
{
	return NABLA_HAVE_MPI;
}

int nb_dist_launcher_size(void)
{
	static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE",
	                                   "MV2_COMM_WORLD_SIZE"};
	for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
		const char *v = getenv(vars[i]);
		char *end;
		long n = v ? strtol(v, &end, 10) : 0;
		if (v && *v && !*end && n >= 1 && n <= 1 << 24)
			return (int)n;
	}
	return 1;
}

bool nb__dist_active(const nb_dist *d)
{
	return d && d->size > 1;
}

size_t nb__dist_bucket_bytes(const nb_dist *d)
{
	return d && d->bucket_bytes ? d->bucket_bytes : NB_DIST_BUCKET_BYTES;
}

#if NABLA_HAVE_MPI
/* MPI's message for code rc after `what`, into err */
static nb_status mpi_fail(int rc, const char *what, char *err, size_t n)
{
	char msg[MPI_MAX_ERROR_STRING];
	int len = 0;
	if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
		snprintf(msg, sizeof msg, "error %d", rc);
	if (err && n)
		snprintf(err, n, "%s: %s", what, msg);
	return NB_ERR_IO;
}

/* Wait for a request without holding a core: Open MPI's MPI_Wait polls
 * flat out, which on a host with more runnable threads than cores takes
 * the time from the rank that is still computing (the one everyone waits
 * for).  Poll for a few microseconds, then sleep between polls, 10 us at
 * first and at most 200 us (within 1% of a step of 20 ms or more); each
 * MPI_Test also moves the collective along. */
static int wait_request(MPI_Request *r)
{
	int done = 0, rc = MPI_SUCCESS;
	long nap = 10000; /* ns */
	for (int spin = 0; rc == MPI_SUCCESS && !done; spin++) {
		rc = MPI_Test(r, &done, MPI_STATUS_IGNORE);
		if (rc == MPI_SUCCESS && !done && spin >= 64) {
			struct timespec ts = {0, nap};
			nanosleep(&ts, NULL);
			nap = nap < 200000 ? 2 * nap : 200000;
		}
	}
	return rc;
}

/* a blocking sum, waited for as wait_request does */
static int sum_doubles(nb_dist *d, double *v, int n)
{
	MPI_Request r;
	int rc = MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, d->comm, &r);
	return rc == MPI_SUCCESS ? wait_request(&r) : rc;
}

/* ranks on this host: a communicator of the ranks sharing memory */
static int local_ranks(nb_dist *d)
{
	MPI_Comm local;
	int rc = MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local);
	if (rc != MPI_SUCCESS)
		return rc;
	MPI_Comm_rank(local, &d->local_rank);
	MPI_Comm_size(local, &d->local_size);
	return MPI_Comm_free(&local);
}
#endif

nb_status nb_dist_init(int *argc, char ***argv, nb_dist_opts opts, nb_dist **out, char *err,
                       size_t n)
{
	if (err && n)
		err[0] = 0;
	if (!out)
		return NB_ERR_ARG;
	*out = NULL;
	int launched = nb_dist_launcher_size();
	bool off = opts.off;
	if (!NABLA_HAVE_MPI && launched > 1 && !off) {
		if (err && n)
			snprintf(
			    err, n,
			    "started as one of %d ranks by an MPI launcher, but this nabla was "
			    "built without MPI (each rank would train alone): rebuild with "
			    "libopenmpi-dev installed (meson -Dmpi=enabled), or run one process",
			    launched);
		return NB_ERR_ARG;
	}
	nb_dist *d = calloc(1, sizeof *d);
	if (!d) {
		if (err && n)
			snprintf(err, n, "out of memory");
		return NB_ERR_NOMEM;
	}
	d->size = d->local_size = 1;
	d->bucket_bytes = opts.bucket_bytes ? opts.bucket_bytes : NB_DIST_BUCKET_BYTES;
	(void)argc, (void)argv;
#if NABLA_HAVE_MPI
	d->comm = MPI_COMM_NULL;
	int inited = 0;
	MPI_Initialized(&inited);
	if (!off && (launched > 1 || inited)) {
		int rc = MPI_SUCCESS, provided;
		if (!inited) {
			rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
			d->started_mpi = rc == MPI_SUCCESS;
		}
		if (rc == MPI_SUCCESS)
			rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
		if (rc == MPI_SUCCESS)
			rc = MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
		if (rc == MPI_SUCCESS) {
			MPI_Comm_rank(d->comm, &d->rank);
			MPI_Comm_size(d->comm, &d->size);
			rc = local_ranks(d);
		}
		if (rc != MPI_SUCCESS) {
			nb_status st = mpi_fail(rc, "MPI failed to start", err, n);
			nb_dist_finalize(d);
			return st;
		}
	}
#endif
	*out = d;
	return NB_OK;
}

void nb_dist_finalize(nb_dist *d)
{
	if (!d)
		return;
#if NABLA_HAVE_MPI
	if (d->comm != MPI_COMM_NULL)
		MPI_Comm_free(&d->comm);
	free(d->req);
	if (d->started_mpi)
		MPI_Finalize();
#endif
	free(d);
}

void nb_dist_abort(nb_dist *d, int code)
{
#if NABLA_HAVE_MPI
	if (d && d->size > 1) {
		fflush(stdout);
		fflush(stderr);
		MPI_Abort(d->comm, code);
	}
#endif
	(void)d, (void)code;
}

int nb_dist_rank(const nb_dist *d)
{
	return d ? d->rank : 0;
}

int nb_dist_size(const nb_dist *d)
{
	return d ? d->size : 1;
}

int nb_dist_local_rank(const nb_dist *d)
{
	return d ? d->local_rank : 0;
}

int nb_dist_local_size(const nb_dist *d)
{
	return d ? d->local_size : 1;
}

int64_t nb_dist_shard(const nb_dist *d, int64_t n, int64_t *first)
{
	int64_t r = nb_dist_rank(d), s = nb_dist_size(d);
	if (n < 0)
		n = 0;
	/* the first n % s ranks take one sample more */
	int64_t q = n / s, extra = n % s;
	if (first)
		*first = r * q + (r < extra ? r : extra);
	return q + (r < extra);
}

int64_t nb_dist_local_batch(const nb_dist *d, int64_t n)
{
	int64_t s = nb_dist_size(d);
	return n <= 0 ? 0 : (n + s - 1) / s;
}

nb_status nb_dist_allreduce_sum(nb_dist *d, double *v, int n)
{
	if (n < 0 || (n && !v))
		return NB_ERR_ARG;
#if NABLA_HAVE_MPI
	if (nb__dist_active(d) && n) {
		double t0 = nb__now();
		int rc = sum_doubles(d, v, n);
		d->stats.exposed_s += nb__now() - t0;
		if (rc != MPI_SUCCESS)
			return NB_ERR_IO;
	}
#endif
	(void)d;
	return NB_OK;
}

/* ---- the model: check and broadcast --------------------------------------------- */

#if NABLA_HAVE_MPI
static bool is_synced(const nb_tensor *t)
{
	return (t->role == NB_ROLE_PARAM || t->role == NB_ROLE_STATE) &&
	       (nb__ops[t->op]->flags & NB_OPF_LEAF) && t->data && !nb__is_placeholder(t);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

/* names, roles, shapes and element types of the synced leaves, in graph
 * order (the order of the broadcast) */
static uint64_t model_hash(const nb_graph *g)
{
	uint64_t h = 0xcbf29ce484222325ull;
	int dt = (int)g->dtype;
	h = fnv(h, &dt, sizeof dt);
	for (int i = 0; i < g->n_nodes; i++) {
		const nb_tensor *t = g->nodes[i];
		if (!is_synced(t))
			continue;
		int head[3] = {t->role, t->shape.ndim, !!(t->flags & NB_TF_F64)};
		h = fnv(h, head, sizeof head);
		h = fnv(h, t->shape.d, (size_t)t->shape.ndim * sizeof *t->shape.d);
		h = fnv(h, t->name ? t->name : "", t->name ? strlen(t->name) + 1 : 1);
	}
	return h;
}

#endif

nb_status nb_dist_sync_model(nb_dist *d, nb_graph *g)
{
	if (!g)
		return NB_ERR_ARG;
	if (g->status != NB_OK)
		return g->status;
	if (!nb__dist_active(d))
		return NB_OK;
#if NABLA_HAVE_MPI
	uint64_t mine = model_hash(g);
	uint64_t *all = malloc((size_t)d->size * sizeof *all);
	if (!all) {
		nb__fail(g, NB_ERR_NOMEM, "dist: out of memory");
		return NB_ERR_NOMEM;
	}
	int rc = MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, d->comm);
	if (rc != MPI_SUCCESS) {
		free(all);
		char err[600];
		mpi_fail(rc, "the model check failed", err, sizeof err);
		nb__fail(g, NB_ERR_IO, "dist: %s", err);
		return NB_ERR_IO;
	}
	int bad = -1, n_bad = 0;
	for (int r = 1; r < d->size; r++)
		if (all[r] != all[0]) {
			if (bad < 0)
				bad = r;
			n_bad++;
		}
	free(all);
	if (bad >= 0) {
		nb__fail(g, NB_ERR_GRAPH,
		         "dist: the model on rank %d%s differs from rank 0's (parameter or state "
		         "names, shapes or the element type): every rank must build the same "
		         "model",
		         bad, n_bad > 1 ? " (and others)" : "");
		return NB_ERR_GRAPH;
	}
	for (int i = 0; i < g->n_nodes; i++) {
		nb_tensor *t = g->nodes[i];
		if (!is_synced(t))
			continue;
		bool f32 = nb__is_f32(t);
		/* in chunks: MPI counts are int */
		for (int64_t k = 0; k < t->size && rc == MPI_SUCCESS; k += 1 << 28) {
			int64_t c = t->size - k < (1 << 28) ? t->size - k : (1 << 28);
			rc = MPI_Bcast((char *)t->data + k * (f32 ? 4 : 8), (int)c,
			               f32 ? MPI_FLOAT : MPI_DOUBLE, 0, d->comm);
		}
		if (rc != MPI_SUCCESS) {
			char err[600];
			mpi_fail(rc, "broadcasting the model from rank 0 failed", err, sizeof err);
			nb__fail(g, NB_ERR_IO, "dist: %s", err);
			return NB_ERR_IO;
		}
	}
#endif
	return NB_OK;
}

/* ---- gradient buckets --------------------------------------------------------------- */

int nb__dist_new_bucket(nb_dist *d)
{
#if NABLA_HAVE_MPI
	if (d->n_req == d->cap_req) {
		int nc = d->cap_req ? 2 * d->cap_req : 16;
		MPI_Request *r = realloc(d->req, (size_t)nc * sizeof *r);
		if (!r)
			return -1;
		d->req = r;
		d->cap_req = nc;
	}
	d->req[d->n_req] = MPI_REQUEST_NULL;
	return d->n_req++;
#else
	(void)d;
	return 0;
#endif
}

nb_status nb__dist_start(nb_dist *d, int b, void *buf, int64_t count, bool f32, char *err, size_t n)
{
#if NABLA_HAVE_MPI
	if (!nb__dist_active(d))
		return NB_OK;
	if (count > 0x7fffffff) {
		snprintf(err, n, "a bucket of %lld elements is beyond MPI's int count",
		         (long long)count);
		return NB_ERR_ARG;
	}
	double t0 = nb__now();
	int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, f32 ? MPI_FLOAT : MPI_DOUBLE,
	                        MPI_SUM, d->comm, &d->req[b]);
	d->in_flight = true;
	/* Open MPI progresses non-blocking collectives inside MPI calls: move
	 * the earlier buckets along while this one starts */
	for (int k = 0; k < d->n_req && rc == MPI_SUCCESS; k++) {
		int done;
		if (k != b && d->req[k] != MPI_REQUEST_NULL)
			rc = MPI_Test(&d->req[k], &done, MPI_STATUS_IGNORE);
	}
	d->stats.exposed_s += nb__now() - t0;
	d->stats.bytes += count * (f32 ? 4 : 8);
	d->stats.allreduces++;
	if (rc != MPI_SUCCESS)
		return mpi_fail(rc, "starting a gradient allreduce failed", err, n);
#else
	(void)d, (void)b, (void)buf, (void)count, (void)f32, (void)err, (void)n;
#endif
	return NB_OK;
}

void nb__dist_progress(void *dp)
{
#if NABLA_HAVE_MPI
	nb_dist *d = dp;
	if (!d->in_flight)
		return;
	/* a request Open MPI completes becomes MPI_REQUEST_NULL; an error
	 * shows again in the bucket's wait */
	bool left = false;
	for (int k = 0; k < d->n_req; k++) {
		int done = 0;
		if (d->req[k] != MPI_REQUEST_NULL &&
		    (MPI_Test(&d->req[k], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || !done))
			left = true;
	}
	d->in_flight = left;
#else
	(void)dp;
#endif
}

nb_status nb__dist_wait(nb_dist *d, int b, char *err, size_t n)
{
#if NABLA_HAVE_MPI
	if (!nb__dist_active(d))
		return NB_OK;
	double t0 = nb__now();
	int rc = wait_request(&d->req[b]);
	d->stats.exposed_s += nb__now() - t0;
	if (rc != MPI_SUCCESS)
		return mpi_fail(rc, "a gradient allreduce failed", err, n);
#else
	(void)d, (void)b, (void)err, (void)n;
#endif
	return NB_OK;
}

nb_status nb__dist_sum(nb_dist *d, double *v, int n, char *err, size_t errn)
{
#if NABLA_HAVE_MPI
	if (nb__dist_active(d) && n > 0) {
		double t0 = nb__now();
		int rc = sum_doubles(d, v, n);
		d->stats.exposed_s += nb__now() - t0;
		if (rc != MPI_SUCCESS)
			return mpi_fail(rc, "an allreduce failed", err, errn);
	}
#endif
	(void)d, (void)v, (void)n, (void)err, (void)errn;
	return NB_OK;
}

void nb__dist_set_empty_shard(nb_dist *d, bool empty)
{
	if (d)
		d->empty_shard = empty;
}

bool nb__dist_empty_shard(const nb_dist *d)
{
	return d && d->empty_shard;
}

nb_status nb_dist_sync_batchnorm(nb_dist *d, nb_graph *g)
{
	if (!g)
		return NB_ERR_ARG;
	if (g->status != NB_OK)
		return g->status;
	for (int i = 0; i < g->n_nodes; i++)
		if (g->nodes[i]->op == NB_OP_BATCHNORM)
			g->nodes[i]->a.p = nb__dist_active(d) ? d : NULL;
	return NB_OK;
}

nb_dist_stats nb_dist_stats_of(const nb_dist *d)
{
	return d ? d->stats : (nb_dist_stats){0};
}

nb_dist_stats nb_dist_get_stats(const nb_dist *d)
{
	return nb_dist_stats_of(d);
}

void nb_dist_reset_stats(nb_dist *d)
{
	if (d)
		d->stats = (nb_dist_stats){0};
}

double nb_dist_time_allreduce(nb_dist *d, size_t bytes, int rounds)
{
#if NABLA_HAVE_MPI
	if (!nb__dist_active(d) || bytes < 4)
		return 0;
	float *buf = calloc(bytes / 4, sizeof *buf);
	if (!buf)
		return -1;
	double best = -1;
	for (int r = 0; r < (rounds > 0 ? rounds : 1); r++) {
		MPI_Barrier(d->comm);
		double t0 = nb__now();
		size_t done = 0;
		while (done < bytes / 4) { /* the buckets' sizes */
			size_t c = bytes / 4 - done, cap = nb__dist_bucket_bytes(d) / 4;
			c = c < cap ? c : cap;
			MPI_Allreduce(MPI_IN_PLACE, buf + done, (int)c, MPI_FLOAT, MPI_SUM,
			              d->comm);
			done += c;
		}
		double t = nb__now() - t0;
		best = best < 0 || t < best ? t : best;
	}
	free(buf);
	/* the slowest rank's time is the job's */
	MPI_Allreduce(MPI_IN_PLACE, &best, 1, MPI_DOUBLE, MPI_MAX, d->comm);
	return best;
#else
	(void)d, (void)bytes, (void)rounds;
	return 0;
#endif
}
