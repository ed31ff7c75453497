/*
 * Data-parallel training checked against one process, run under
 * mpirun -np 2 (tests/meson.build).  Every rank also trains the
 * single-process reference itself (no communication), so the comparison
 * needs no files:
 *
 *   dist_train equivalence DIR  an f64 MLP and an f64 conv + synchronised
 *       batchnorm model (its running statistics included), 10 steps of a global batch of
 *       8 (shards 4 + 4) and of 7 (4 + 3, uneven), momentum SGD: every
 *       parameter and state tensor within 1e-12 (relative) of one
 *       process on the whole batch; the same run twice is bit-identical;
 *       a checkpoint of epoch 1 written by rank 0 of the 2-rank run
 *       resumes on 1 rank, and one of a 1-rank run resumes on 2 ranks,
 *       both ending where the uninterrupted run does
 *       (with buckets of the default size and of one gradient each); the
 *       buckets' allreduces all start before the backward pass ends and
 *       their waits come after the last start
 *   dist_train mismatch  rank 1 builds another model, then holds fewer
 *       samples, then resumes from another epoch: each time nb_fit fails
 *       on every rank with a message naming rank 1 (no hang)
 */
#include <nabla.h>

#include "graph/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IN = 8, HIDDEN = 16, CLASSES = 3, SAMPLES = 35, EPOCHS = 2 };

static int rank;
static bool nb_dist_opts_small; /* the handle in use has one-gradient buckets */

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "rank %d: %s:%d: ", rank, __FILE__, __LINE__);             \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

static void make_data(nb_dataset *d)
{
	*d = (nb_dataset){.n = SAMPLES, .c = 1, .h = 1, .w = IN, .num_classes = CLASSES};
	d->x = malloc(sizeof(float) * SAMPLES * IN);
	d->y = malloc(sizeof(int32_t) * SAMPLES);
	uint64_t s = 12345;
	for (int i = 0; i < SAMPLES * IN; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		d->x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
	}
	for (int i = 0; i < SAMPLES; i++)
		d->y[i] = (d->x[i * IN] > 0) + (d->x[i * IN + 1] > 0.5f);
}

typedef struct run {
	nb_model *m; /* g's */
	nb_graph *g;
	nb_optim *o;
} run;

static bool conv_model;    /* the conv + batchnorm model instead of the MLP */
static bool dropout_model; /* the MLP with dropout (p 0.5) after its hidden layer */

/* the MLP (or conv 3x3 + synchronised batchnorm + ReLU + global average
 * pool + dense, on the samples as 2x2x2 images) with a per-rank batch,
 * its optimizer summing over dist (NULL: one process) */
static int build(run *r, int64_t batch, nb_dist *dist, int hidden)
{
	memset(r, 0, sizeof *r);
	r->g = nb_graph_new(NB_F64);
	nb_graph_seed(r->g, 7);
	nb_tensor *x, *h;
	if (conv_model) {
		x = nb_input(r->g, "x", NB_SHAPE(batch, 2, 2, 2));
		h = nb_conv2d_layer(
		    x, hidden / 4, 3, "conv",
		    (nb_conv_layer_opts){.conv = NB_CONV_OPTS(1, 1), .no_bias = true});
		h = nb_relu(nb_batchnorm_layer(h, "bn", (nb_batchnorm_opts){0}));
		h = nb_global_avgpool(h);
		nb_dist_sync_batchnorm(dist, r->g);
	} else {
		x = nb_input(r->g, "x", NB_SHAPE(batch, IN));
		h = nb_relu(nb_dense(x, hidden, "fc1"));
		if (dropout_model) /* each rank draws its rows' masks of the global batch */
			h = nb_dropout(h, 0.5);
	}
	r->m = nb_classifier(x, nb_dense(h, CLASSES, "fc2"), NB_LOSS_SPARSE_CCE);
	r->o = nb_optimizer(r->g, nb_model_loss(r->m),
	                    (nb_optim_opts){.kind = NB_OPTIM_MOMENTUM, .lr = 0.1, .dist = dist});
	CHECK(nb_graph_status(r->g) == NB_OK, "build: %s", nb_graph_errmsg(r->g));
	return 0;
}

static void drop(run *r)
{
	nb_graph_free(r->g); /* and the model */
	r->g = NULL;
}

static int fit(run *r, const nb_dataset *d, int64_t global, int first, int epochs)
{
	nb_fit_opts f = {.epochs = epochs, .first_epoch = first, .seed = 3, .global_batch = global};
	CHECK(nb_fit(r->m, r->o, d, f) == NB_OK, "fit: %s", nb_graph_errmsg(r->g));
	return 0;
}

/* the parameters and state (optimizer state, running statistics) of g */
static int saved(nb_graph *g, nb_tensor **out)
{
	int n = 0;
	for (int i = 0; i < g->n_nodes; i++)
		if ((g->nodes[i]->role == NB_ROLE_PARAM || g->nodes[i]->role == NB_ROLE_STATE) &&
		    g->nodes[i]->data)
			out[n++] = g->nodes[i];
	return n;
}

/* every parameter and state tensor of a and b: within tol relative (0:
 * the same bits) */
static int compare(const char *what, nb_graph *a, nb_graph *b, double tol)
{
	nb_tensor *ta[64], *tb[64];
	int n = saved(a, ta);
	CHECK(n == saved(b, tb) && n > 0, "%s: tensor counts differ", what);
	double worst = 0;
	for (int i = 0; i < n; i++) {
		nb_tensor *p = ta[i], *q = tb[i];
		CHECK(!strcmp(nb_tensor_name(p), nb_tensor_name(q)), "%s: %s against %s", what,
		      nb_tensor_name(p), nb_tensor_name(q));
		int64_t k = nb_tensor_size(p);
		double *u = malloc(sizeof(double) * k), *v = malloc(sizeof(double) * k);
		nb_read_f64(p, u, k);
		nb_read_f64(q, v, k);
		for (int64_t j = 0; j < k; j++) {
			double e = fabs(u[j] - v[j]) / fmax(fabs(v[j]), 1e-300);
			if (tol == 0 ? memcmp(&u[j], &v[j], sizeof u[j]) != 0 : !(e <= tol)) {
				fprintf(stderr, "rank %d: %s: %s[%lld] = %.17g, expected %.17g\n",
				        rank, what, nb_tensor_name(p), (long long)j, u[j], v[j]);
				free(u), free(v);
				return 1;
			}
			worst = fmax(worst, e);
		}
		free(u), free(v);
	}
	if (rank == 0)
		printf("%s%s: %d parameter and state tensors, largest relative difference %.3g\n",
		       conv_model ? "conv + synchronised batchnorm, " : "", what, n, worst);
	return 0;
}

/* The step's schedule: every bucket's allreduce starts before the last
 * other backward step (communication overlaps the backward pass), every
 * wait comes after the last start, and there are `buckets` of each. */
static int check_schedule(nb_optim *o, int buckets)
{
	nb_program *p = nb_optim_program(o);
	int last_start = -1, first_wait = p->n, first_start = p->n, last_grad = -1, starts = 0,
	    waits = 0;
	for (int s = 0; s < p->n; s++) {
		int op = p->sched[s]->op;
		if (op == NB_OP_DIST_ALLREDUCE) {
			last_start = s;
			first_start = s < first_start ? s : first_start;
			starts++;
		} else if (op == NB_OP_DIST_WAIT) {
			first_wait = s < first_wait ? s : first_wait;
			waits++;
		} else if (p->sched[s]->role == NB_ROLE_GRAD && op != NB_OP_DIST_UNPACK) {
			last_grad = s;
		}
	}
	CHECK(starts == buckets && waits == buckets, "%d allreduces and %d waits, expected %d",
	      starts, waits, buckets);
	CHECK(last_start < first_wait, "a wait (step %d) before the last start (step %d)",
	      first_wait, last_start);
	CHECK(buckets < 2 || first_start < last_grad,
	      "the first allreduce (step %d) starts after the backward pass (step %d)", first_start,
	      last_grad);
	/* and the program moves the sums along between its kernels (Open MPI
	 * progresses them only inside MPI calls) */
	CHECK(p->between != NULL && p->between_user == nb_optim_dist(o),
	      "the program has no progress call between its steps");
	return 0;
}

/* ranks x global batch against one process on the whole batch */
static int equivalence(nb_dist *dist, const nb_dataset *d, int64_t global, const char *dir)
{
	if (global == 8 && d->n == SAMPLES) { /* and with a last batch of one sample */
		nb_dataset e = *d;            /* (rank 1's shard empty) */
		e.n = SAMPLES - 2;
		if (equivalence(dist, &e, global, dir))
			return 1;
	}
	run ref, a, b;
	char name[64];
	snprintf(name, sizeof name, "global batch %lld of %lld samples", (long long)global,
	         (long long)d->n);
	int64_t local = nb_dist_local_batch(dist, global);
	if (build(&ref, global, NULL, HIDDEN) || fit(&ref, d, global, 0, EPOCHS) ||
	    build(&a, local, dist, HIDDEN) || fit(&a, d, global, 0, EPOCHS) ||
	    build(&b, local, dist, HIDDEN) || fit(&b, d, global, 0, EPOCHS))
		return 1;
	/* the default buckets hold the whole model; one-gradient buckets: 4
	 * (conv + batchnorm: 5, conv has no bias) */
	int rc = check_schedule(a.o, nb_dist_opts_small ? (conv_model ? 5 : 4) : 1);
	rc = rc || compare(name, a.g, ref.g, 1e-12);
	snprintf(name, sizeof name, "global batch %lld, run twice", (long long)global);
	rc = rc || compare(name, a.g, b.g, 0);
	drop(&b);

	/* 2 -> 1: rank 0 saves the 2-rank run's first epoch, resumes it alone */
	char path[512];
	snprintf(path, sizeof path, "%s/dist_train_%lld.safetensors", dir, (long long)global);
	if (!rc && build(&b, local, dist, HIDDEN) == 0 && fit(&b, d, global, 0, 1) == 0) {
		if (rank == 0) {
			run c;
			CHECK(nb_checkpoint_save(b.g, b.o, path, "mlp") == NB_OK, "save: %s",
			      nb_graph_errmsg(b.g));
			rc = build(&c, global, NULL, HIDDEN) ||
			     nb_checkpoint_load(c.g, c.o, path, NULL, 0) != NB_OK ||
			     fit(&c, d, global, 1, EPOCHS);
			snprintf(name, sizeof name, "global batch %lld, 2 -> 1 ranks",
			         (long long)global);
			rc = rc || compare(name, c.g, ref.g, 1e-12);
			drop(&c);
		}
		drop(&b);
	} else {
		rc = 1;
	}
	/* 1 -> 2: one process's first epoch (on every rank), rank 0 saves,
	 * every rank resumes on 2 */
	double sync = 0;
	if (!rc && build(&b, global, NULL, HIDDEN) == 0 && fit(&b, d, global, 0, 1) == 0) {
		if (rank == 0 && nb_checkpoint_save(b.g, b.o, path, "mlp") != NB_OK)
			rc = 1;
		drop(&b);
		nb_dist_allreduce_sum(dist, &sync, 1); /* the file is written */
		run c;
		rc = rc || build(&c, local, dist, HIDDEN) ||
		     nb_checkpoint_load(c.g, c.o, path, NULL, 0) != NB_OK ||
		     fit(&c, d, global, 1, EPOCHS);
		snprintf(name, sizeof name, "global batch %lld, 1 -> 2 ranks", (long long)global);
		rc = rc || compare(name, c.g, ref.g, 1e-12);
		drop(&c);
	}
	drop(&a);
	drop(&ref);
	return rc;
}

int main(int argc, char **argv)
{
	nb_dist *dist;
	char err[512];
	if (nb_dist_init(&argc, &argv, (nb_dist_opts){0}, &dist, err, sizeof err) != NB_OK) {
		fprintf(stderr, "dist_train: %s\n", err);
		return 1;
	}
	rank = nb_dist_rank(dist);
	nb_set_num_threads(1);
	nb_dataset d;
	make_data(&d);
	int rc = 1;
	if (argc >= 3 && !strcmp(argv[1], "equivalence")) {
		if (nb_dist_size(dist) < 2)
			fprintf(stderr, "dist_train: run under mpirun -np 2\n");
		else
			rc = equivalence(dist, &d, 8, argv[2]) || equivalence(dist, &d, 7, argv[2]);
		/* every gradient a bucket of its own */
		nb_dist *small;
		nb_dist_opts o = {.bucket_bytes = 8};
		if (!rc && nb_dist_init(&argc, &argv, o, &small, err, sizeof err) == NB_OK) {
			nb_dist_opts_small = true;
			rc = equivalence(small, &d, 7, argv[2]);
			nb_dist_finalize(small);
		}
		dropout_model = true;
		nb_dist_opts_small = false;
		rc = rc || equivalence(dist, &d, 8, argv[2]) || equivalence(dist, &d, 7, argv[2]);
		dropout_model = false;
		conv_model = true;
		nb_dist_opts_small = false;
		rc = rc || equivalence(dist, &d, 8, argv[2]) || equivalence(dist, &d, 7, argv[2]);
		if (!rc && nb_dist_init(&argc, &argv, o, &small, err, sizeof err) == NB_OK) {
			nb_dist_opts_small = true;
			rc = equivalence(small, &d, 7, argv[2]);
			nb_dist_finalize(small);
		}
	} else if (argc >= 2 && !strcmp(argv[1], "mismatch")) {
		run r;
		/* rank 1's hidden layer is wider: the check fails on every rank */
		if (build(&r, 4, dist, rank == 1 ? HIDDEN + 1 : HIDDEN) == 0) {
			nb_status st =
			    nb_fit(r.m, r.o, &d, (nb_fit_opts){.epochs = 1, .global_batch = 8});
			const char *msg = nb_graph_errmsg(r.g);
			printf("rank %d: %s\n", rank, msg);
			rc = !(st == NB_ERR_GRAPH && strstr(msg, "rank 1") &&
			       strstr(msg, "differs from rank 0"));
			drop(&r);
		}
		/* ranks that would run different lengths fail on every rank, named,
		 * before any other collective (one more collective on a rank was a
		 * hang): a smaller data set, an older resume point */
		for (int k = 0; k < 2 && !rc; k++) {
			nb_dataset e = d;
			if (k == 0 && rank == 1)
				e.n = SAMPLES - 5;
			if (build(&r, 4, dist, HIDDEN))
				return 1;
			nb_status st =
			    nb_fit(r.m, r.o, &e,
			           (nb_fit_opts){.epochs = 3,
			                         .first_epoch = k == 1 && rank == 1 ? 1 : 0,
			                         .global_batch = 8});
			const char *msg = nb_graph_errmsg(r.g);
			printf("rank %d: %s\n", rank, msg);
			rc = !(st == NB_ERR_ARG && strstr(msg, "on rank 1") &&
			       strstr(msg, k ? "first epoch: 0 on rank 0, 1 on rank 1"
			                     : "training set's size: 35 on rank 0, 30 on rank 1"));
			drop(&r);
		}
	} else {
		fprintf(stderr, "usage: dist_train equivalence DIR | mismatch\n");
	}
	nb_dataset_free(&d);
	nb_dist_finalize(dist);
	return rc;
}
