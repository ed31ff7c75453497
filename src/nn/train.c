/*
 * The training loop: minibatches from a dataset into a fixed-batch graph,
 * optimizer steps, per-epoch statistics, evaluation and prediction.
 */
#include "dist/dist.h"
#include "graph/internal.h"
#include "nn/fitval.h"
#include "nn/model.h"
#include "nn/progress.h"
#include "optim/optim.h"
#include "util/clock.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How a training batch is augmented: row i as sample keys[i] of the
 * epoch (nb_fit_opts.augment). */
typedef struct feed_augment {
	const nb_augment *a;
	uint64_t seed;
	int64_t epoch;
	const int64_t *keys;
} feed_augment;

/* Fill the model's inputs with the samples rows[0..n-1], each weighted
 * 1/denom (n itself, or a rank's shard of a global batch of denom
 * samples); rows n..B-1 repeat real samples with weight 0.  real == false:
 * every row a copy of rows[0] with weight 0 (a rank whose shard of the
 * last batch is empty).  aug (may be NULL) augments the images. */
static nb_status feed_rows_weighted(nb_model *m, const nb_dataset *d, const int64_t *rows,
                                    int64_t n, int64_t denom, bool real, const feed_augment *aug)
{
	int64_t B = m->batch, sample = m->x->size / B;
	if (sample != nb_dataset_sample_size(d)) {
		char b[128];
		nb__fail(
		    m->g, NB_ERR_SHAPE,
		    "fit: dataset samples have %lld values (%dx%dx%d), the model input %s takes %lld",
		    (long long)nb_dataset_sample_size(d), d->c, d->h, d->w,
		    nb_shape_str(m->x->shape, b, sizeof b), (long long)sample);
		return NB_ERR_SHAPE;
	}
	int K = m->num_classes;
	/* an f32 graph takes the samples straight into its input tensor */
	float *xdst = m->g->dtype == NB_F32 ? (float *)m->x->data : m->xbuf;
	if (m->ohbuf)
		memset(m->ohbuf, 0, (size_t)(B * K) * sizeof(float));
	for (int64_t i = 0; i < B; i++) {
		int64_t r = rows[i < n ? i : i % n];
		if (aug)
			nb_augment_sample(aug->a, aug->seed, aug->epoch,
			                  aug->keys[i < n ? i : i % n], d->c, d->h, d->w,
			                  d->x + r * sample, xdst + i * sample);
		else
			memcpy(xdst + i * sample, d->x + r * sample,
			       (size_t)sample * sizeof(float));
		int32_t y = d->y[r];
		if (y < 0 || y >= K) {
			nb__fail(m->g, NB_ERR_VALUE,
			         "fit: sample %lld has label %d, the model has %d classes",
			         (long long)r, (int)y, K);
			return NB_ERR_VALUE;
		}
		m->ybuf[i] = (float)y;
		m->wbuf[i] = real && i < n ? 1.0 / (double)denom : 0.0;
		if (m->ohbuf)
			m->ohbuf[i * K + y] = 1;
	}
	if (xdst != m->xbuf)
		m->x->flags |= NB_TF_FED;
	nb_status st = xdst == m->xbuf ? nb_feed_f32(m->x, m->xbuf, m->x->size) : NB_OK;
	if (!st)
		st = nb_feed_f64(m->weights, m->wbuf, B);
	if (!st && m->labels)
		st = nb_feed_f32(m->labels, m->ybuf, B);
	if (!st && m->onehot)
		st = nb_feed_f32(m->onehot, m->ohbuf, B * K);
	return st;
}

/* the samples rows[0..n-1], weighted 1/n */
static nb_status feed_rows(nb_model *m, const nb_dataset *d, const int64_t *rows, int64_t n,
                           const feed_augment *aug)
{
	return feed_rows_weighted(m, d, rows, n, n, true, aug);
}

/* correct predictions among the first n rows, from probs/logits */
static int64_t count_correct(nb_model *m, nb_tensor *scores, int64_t n)
{
	int64_t correct = 0, K = scores->shape.d[1];
	for (int64_t i = 0; i < n; i++) {
		int best = 0;
		if (m->loss_kind == NB_LOSS_BCE_LOGITS) {
			best = nb__get(scores, i) > (scores == m->probs ? 0.5 : 0.0);
		} else {
			for (int64_t k = 1; k < K; k++)
				if (nb__get(scores, i * K + k) > nb__get(scores, i * K + best))
					best = (int)k;
		}
		correct += best == (int)m->ybuf[i];
	}
	return correct;
}

/* The summed loss and the correct predictions over samples [first,
 * first + count) of d, in eval mode (restored after). */
static nb_status evaluate_range(nb_model *m, const nb_dataset *d, int64_t first, int64_t count,
                                double *lsum, int64_t *correct)
{
	bool was = nb_graph_training(m->g);
	nb_graph_set_training(m->g, false);
	nb_status st = NB_OK;
	*lsum = 0;
	*correct = 0;
	for (int64_t start = 0; start < count && !st; start += m->batch) {
		int64_t n = count - start < m->batch ? count - start : m->batch;
		for (int64_t i = 0; i < n; i++)
			m->rows[i] = first + start + i;
		if ((st = feed_rows(m, d, m->rows, n, NULL)) || (st = nb_run(m->eval_prog)))
			break;
		*lsum += nb_item(m->loss) * (double)n;
		*correct += count_correct(m, m->probs, n);
	}
	nb_graph_set_training(m->g, was);
	return st;
}

nb_status nb_evaluate(nb_model *m, const nb_dataset *d, double *loss, double *accuracy)
{
	return nb_evaluate_dist(m, d, NULL, loss, accuracy);
}

nb_status nb_evaluate_dist(nb_model *m, const nb_dataset *d, nb_dist *dist, double *loss,
                           double *accuracy)
{
	if (!m || !d || !m->eval_prog)
		return NB_ERR_ARG;
	int64_t first, count = nb_dist_shard(dist, d->n, &first), correct;
	double sums[2];
	nb_status st = evaluate_range(m, d, first, count, &sums[0], &correct);
	if (st)
		return st;         /* with several ranks: the caller ends the job (nb_dist_abort) */
	sums[1] = (double)correct; /* exact: counts below 2^53 */
	if (nb_dist_allreduce_sum(dist, sums, 2) != NB_OK) {
		nb__fail(m->g, NB_ERR_IO, "evaluate: summing the counts over the ranks failed");
		return NB_ERR_IO;
	}
	if (loss)
		*loss = sums[0] / (double)d->n;
	if (accuracy)
		*accuracy = sums[1] / (double)d->n;
	return NB_OK;
}

/* The global batch of a data-parallel nb_fit (opts.global_batch, else the
 * model's batch on every rank), checked: at least one sample per rank and
 * no shard larger than the model's batch.  -1 after recording the error. */
static int64_t global_batch(nb_model *m, nb_dist *dist, const nb_fit_opts *opts)
{
	int64_t ranks = nb_dist_size(dist);
	int64_t G = opts->global_batch > 0 ? opts->global_batch : m->batch * ranks;
	if (opts->global_batch < 0 || G < ranks) {
		nb__fail(m->g, NB_ERR_ARG,
		         "fit: the global batch %lld is smaller than the %lld ranks (every rank "
		         "needs at least one sample)",
		         (long long)opts->global_batch, (long long)ranks);
		return -1;
	}
	if (nb_dist_local_batch(dist, G) > m->batch) {
		nb__fail(m->g, NB_ERR_ARG,
		         "fit: a global batch of %lld on %lld ranks needs shards of %lld samples, "
		         "the model's batch is %lld (build it with nb_dist_local_batch)",
		         (long long)G, (long long)ranks, (long long)nb_dist_local_batch(dist, G),
		         (long long)m->batch);
		return -1;
	}
	return G;
}

/* One step on this rank's shard of the global batch rows[0..n): feeds the
 * shard (weights 1/n, so the gradients summed over the ranks are those of
 * the global batch's mean loss), steps, and sums the loss and the correct
 * predictions over the ranks into sums[0..1].  One rank: the whole batch. */
static nb_status fit_step(nb_model *m, nb_optim *o, const nb_dataset *train, const int64_t *rows,
                          int64_t n, const feed_augment *aug, double sums[2])
{
	nb_dist *dist = nb_optim_dist(o);
	int64_t first, count = nb_dist_shard(dist, n, &first);
	nb__dist_set_empty_shard(dist, count == 0);
	feed_augment shard; /* the shard's samples keep their keys */
	if (aug) {
		shard = *aug;
		shard.keys = aug->keys + first;
	}
	nb_status st = count > 0 ? feed_rows_weighted(m, train, rows + first, count, n, true,
	                                              aug ? &shard : NULL)
	                         : feed_rows_weighted(m, train, rows, 1, n, false, NULL);
	if (st)
		return st;
	/* batchnorm's statistics from the real rows only (a rank with none:
	 * every row a copy of one sample, weighted 0, all of them in its own
	 * statistics, which synchronised batchnorm leaves out of the sums) */
	nb_graph_set_batch_rows(m->g, count > 0 && count < m->batch ? count : 0);
	nb_graph_set_batch_first(m->g, count > 0 ? first : 0); /* dropout's masks */
	if ((st = nb_step(o)))
		return st;
	sums[0] = nb_item(m->loss);
	sums[1] = (double)(count > 0 ? count_correct(m, m->logits, count) : 0);
	if (nb_dist_allreduce_sum(dist, sums, 2) != NB_OK) {
		nb__fail(m->g, NB_ERR_IO, "fit: summing the loss over the ranks failed");
		return NB_ERR_IO;
	}
	return NB_OK;
}

/* nb_fit's per-layer gradient statistics: the rows it reports */
typedef struct fit_norms {
	nb_layer_norms *rows;
	int n;
} fit_norms;

static nb_status fit_norms_begin(fit_norms *f, nb_optim *o)
{
	nb_status st = nb_optim_track_grad_norms(o, true);
	if (st)
		return st;
	f->n = nb_optim_grad_norms(o, NULL, 0, NULL);
	if (!(f->rows = calloc((size_t)f->n + 1, sizeof *f->rows))) {
		nb__fail(o->g, NB_ERR_NOMEM, "fit: out of memory for the gradient norms");
		return NB_ERR_NOMEM;
	}
	nb__gradnorms_window_reset(o);
	return NB_OK;
}

/* after a step: the window's means at every grad_norm_interval-th step */
static void fit_norms_step(fit_norms *f, nb_optim *o, const nb_fit_opts *opts, int epoch)
{
	int64_t step = nb_optim_steps(o), N = opts->grad_norm_interval;
	if (N <= 0 || step % N)
		return;
	nb_grad_norms w = {.epoch = epoch, .last_step = step, .n_layers = f->n, .layers = f->rows};
	nb__gradnorms_window(o, f->rows, f->n, &w.first_step);
	if (opts->on_grad_norms)
		opts->on_grad_norms(&w, opts->user);
}

/* the epoch's means into *gn */
static const nb_grad_norms *fit_norms_epoch(fit_norms *f, nb_optim *o, int epoch, nb_grad_norms *gn)
{
	int64_t steps;
	nb_optim_grad_norms(o, f->rows, f->n, &steps);
	*gn = (nb_grad_norms){.epoch = epoch,
	                      .first_step = nb_optim_steps(o) - steps + 1,
	                      .last_step = nb_optim_steps(o),
	                      .n_layers = f->n,
	                      .layers = f->rows};
	return gn;
}

/* One nb_fit: what its epochs share. */
typedef struct fit_run {
	nb_model *m;
	nb_optim *o;
	const nb_dataset *train;
	const nb_fit_opts *opts;
	nb_dist *dist;
	int epochs;
	int64_t G;     /* the global batch (the model's batch on one rank) */
	nb__fitval fv; /* validation, early stopping: the batcher walks fv.view */
	int64_t *pos;  /* the global batch's positions in the batcher */
	int64_t *rows; /* its samples (m->rows, or more with several ranks) */
	fit_norms fn;  /* gradient statistics, when asked for */
	nb_batcher *bt;
	feed_augment aug;
	bool augment;
	int64_t batches; /* per epoch */
	FILE *bar;       /* the progress bar's terminal, or NULL */
	double drawn;    /* when the bar was last drawn */
} fit_run;

/* The options against the model and optimizer: NB_OK, or the error
 * recorded on the graph.  *G: the global batch. */
static nb_status fit_check(const fit_run *r, int64_t *G)
{
	nb_graph *g = r->m->g;
	const nb_fit_opts *opts = r->opts;
	if (opts->first_epoch < 0 || opts->first_epoch > r->epochs) {
		nb__fail(g, NB_ERR_ARG, "fit: first_epoch %d is outside 0..%d (the epochs)",
		         opts->first_epoch, r->epochs);
		return NB_ERR_ARG;
	}
	*G = nb__dist_active(r->dist) ? global_batch(r->m, r->dist, opts) : r->m->batch;
	if (*G < 0)
		return NB_ERR_ARG;
	if (opts->grad_norm_interval < 0 || (opts->grad_norm_interval && !opts->grad_norms)) {
		nb__fail(g, NB_ERR_ARG,
		         opts->grad_norm_interval < 0
		             ? "fit: grad_norm_interval %lld must be positive (0: none)"
		             : "fit: grad_norm_interval %lld without grad_norms",
		         (long long)opts->grad_norm_interval);
		return NB_ERR_ARG;
	}
	return NB_OK;
}

static void fit_free(fit_run *r)
{
	nb__fitval_free(&r->fv);
	nb_batcher_free(r->bt);
	free(r->fn.rows);
	free(r->pos);
	if (r->rows != r->m->rows)
		free(r->rows);
}

/* Everything the epochs need; on an error, nothing kept. */
static nb_status fit_begin(fit_run *r)
{
	nb_model *m = r->m;
	nb_graph *g = m->g;
	const nb_fit_opts *opts = r->opts;
	r->rows = m->rows;
	nb_status st = nb__fitval_init(&r->fv, m, r->train, opts);
	/* every replica starts from rank 0's parameters and state */
	if (!st)
		st = nb_dist_sync_model(r->dist, g);
	/* the logits stay readable after a step: train accuracy for free */
	if (!st)
		st = nb_optim_keep(r->o, m->logits);
	/* the global batch's positions in the batcher (the augmentation's
	 * keys), then its samples: more than the model's batch with several
	 * ranks */
	if (!st && (!(r->pos = malloc(sizeof *r->pos * (size_t)r->G)) ||
	            (r->G > m->batch && !(r->rows = malloc(sizeof *r->rows * (size_t)r->G))))) {
		nb__fail(g, NB_ERR_NOMEM, "fit: out of memory");
		st = NB_ERR_NOMEM;
	}
	if (!st && opts->grad_norms)
		st = fit_norms_begin(&r->fn, r->o);
	nb_batcher_opts bo = {.batch_size = r->G, .shuffle = !opts->no_shuffle, .seed = opts->seed};
	if (!st && (st = nb_batcher_new(&r->fv.view, bo, &r->bt)))
		nb__fail(g, st, "fit: cannot batch the training set (%s)", nb_status_string(st));
	if (st) {
		if (r->rows == NULL)
			r->rows = m->rows;
		fit_free(r);
		return st;
	}
	r->aug = (feed_augment){.a = opts->augment, .seed = opts->seed, .keys = r->pos};
	r->augment = opts->augment && (opts->augment->crop_pad > 0 || opts->augment->flip);
	int64_t per_epoch = nb_batcher_batches_per_epoch(r->bt);
	r->batches =
	    opts->max_batches > 0 && opts->max_batches < per_epoch ? opts->max_batches : per_epoch;
	/* the bar on a terminal only: \r-redraws would fill a log file */
	r->bar = opts->progress && isatty(fileno(opts->progress)) ? opts->progress : NULL;
	r->drawn = -1;
	return NB_OK;
}

/* NB_ERR_VALUE recorded for a non-finite value v (what: "the loss ... at",
 * where: its place) */
static nb_status fit_diverged(nb_graph *g, double v, const char *what, const char *where)
{
	nb__fail(g, NB_ERR_VALUE,
	         "fit: %s %s %s: training diverged (a lower learning rate may help)", what,
	         isnan(v) ? "NaN"
	         : v > 0  ? "inf"
	                  : "-inf",
	         where);
	return NB_ERR_VALUE;
}

/* the progress bar and on_batch after a step */
static void fit_progress(fit_run *r, const nb_progress *p)
{
	const double now = nb__now();
	if (r->bar && (p->batch == 1 || p->batch == r->batches || now - r->drawn >= 0.1)) {
		nb__progress_draw(r->bar, p);
		r->drawn = now;
	}
	if (r->opts->on_batch)
		r->opts->on_batch(p, r->opts->user);
}

/* The training steps of epoch e, and their part of its statistics. */
static nb_status fit_epoch(fit_run *r, int e, nb_epoch_stats *s)
{
	nb_model *m = r->m;
	nb_graph *g = m->g;
	const nb_fit_opts *opts = r->opts;
	nb_batch out = {.index = r->pos};
	nb_batcher_seek_epoch(r->bt, e - 1);
	nb_graph_set_training(g, true);
	double t0 = nb__now(), lsum = 0;
	int64_t correct = 0, samples = 0, done = 0;
	nb_status st = NB_OK;
	if (r->fn.rows)
		nb_optim_grad_norms_reset(r->o);
	for (int64_t b = 0; b < r->batches && !st; b++) {
		int64_t n = nb_batcher_next(r->bt, &out);
		if (n <= 0)
			break;
		for (int64_t i = 0; i < n; i++)
			r->rows[i] = r->fv.train_idx ? r->fv.train_idx[r->pos[i]] : r->pos[i];
		r->aug.epoch = e - 1;
		if (opts->schedule)
			nb_optim_set_lr(r->o, nb_schedule_lr(opts->schedule, nb_optim_steps(r->o)));
		double sums[2];
		if ((st = fit_step(m, r->o, r->train, r->rows, n, r->augment ? &r->aug : NULL,
		                   sums)))
			break;
		if (!isfinite(sums[0]) && !opts->allow_nonfinite) {
			char where[96];
			snprintf(where, sizeof where, "at epoch %d, batch %lld (step %lld)", e,
			         (long long)done + 1, (long long)nb_optim_steps(r->o));
			st = fit_diverged(g, sums[0], "the loss is", where);
			break;
		}
		if (r->fn.rows)
			fit_norms_step(&r->fn, r->o, opts, e);
		lsum += sums[0];
		correct += (int64_t)sums[1];
		samples += n;
		done++;
		if (opts->on_batch || r->bar) {
			const double dt = nb__now() - t0;
			fit_progress(
			    r, &(nb_progress){.epoch = e,
			                      .epochs = r->epochs,
			                      .batch = done,
			                      .batches = r->batches,
			                      .step = nb_optim_steps(r->o),
			                      .loss = lsum / (double)done,
			                      .seconds = dt,
			                      .samples_per_s = dt > 0 ? (double)samples / dt : 0});
		}
	}
	nb_graph_set_batch_rows(g, 0);
	nb_graph_set_batch_first(g, 0);
	if (r->bar)
		nb__progress_clear(r->bar);
	const double dt = nb__now() - t0;
	*s = (nb_epoch_stats){.epoch = e,
	                      .epochs = r->epochs,
	                      .train_loss = done ? lsum / (double)done : NAN,
	                      .train_accuracy = samples ? (double)correct / (double)samples : NAN,
	                      .test_loss = NAN,
	                      .test_accuracy = NAN,
	                      .seconds = dt,
	                      .samples_per_s = dt > 0 ? (double)samples / dt : 0,
	                      .samples = samples,
	                      .steps = nb_optim_steps(r->o),
	                      .lr = nb_optim_lr(r->o)};
	return st;
}

/* After epoch e's steps: rank 0's model everywhere, the test set, the
 * validation set. */
static nb_status fit_measure(fit_run *r, int e, nb_epoch_stats *s)
{
	nb_model *m = r->m;
	const nb_fit_opts *opts = r->opts;
	nb_status st;
	/* per-rank batchnorm statistics: every rank evaluates (and rank 0
	 * saves) rank 0's */
	if (nb__dist_active(r->dist) && (st = nb_dist_sync_model(r->dist, m->g)))
		return st;
	if (opts->test &&
	    (st = nb_evaluate_dist(m, opts->test, r->dist, &s->test_loss, &s->test_accuracy)))
		return st;
	if (opts->test && !isfinite(s->test_loss) && !opts->allow_nonfinite) {
		/* the last update made the parameters non-finite */
		char where[64];
		snprintf(where, sizeof where, "after epoch %d (step %lld)", e,
		         (long long)nb_optim_steps(r->o));
		return fit_diverged(m->g, s->test_loss, "the test loss is", where);
	}
	return nb__fitval_epoch(&r->fv, m, r->dist, s, opts->allow_nonfinite);
}

/* Under data parallelism every rank must run the same training: one rank
 * resuming from an older checkpoint, or holding a data set of another
 * size, would run more collectives than the others and the job would hang.
 * So the ranks compare what sets the run's length and order, before any
 * other collective, and a difference fails nb_fit on every rank naming it
 * (NB_ERR_ARG).  st is this rank's own check: a rank that cannot start
 * stops the others too.  One rank: st. */
static nb_status fit_agree(const fit_run *r, nb_status st)
{
	const int ranks = nb_dist_size(r->dist), me = nb_dist_rank(r->dist);
	if (ranks < 2)
		return st;
	nb_graph *g = r->m->g;
	const nb_fit_opts *o = r->opts;
	enum { K = 13 };
	static const char *const what[K] = {"start",
	                                    "first epoch",
	                                    "epochs",
	                                    "global batch",
	                                    "training set's size",
	                                    "test set's size",
	                                    "validation set's size",
	                                    "validation split",
	                                    "max batches",
	                                    "shuffling",
	                                    "seed's low half",
	                                    "seed's high half",
	                                    "optimizer's step count"};
	const double mine[K] = {st == NB_OK,
	                        o->first_epoch,
	                        r->epochs,
	                        (double)r->G,
	                        (double)r->train->n,
	                        o->test ? (double)o->test->n : -1,
	                        o->val ? (double)o->val->n : -1,
	                        o->val_split,
	                        (double)o->max_batches,
	                        !o->no_shuffle,
	                        (double)(o->seed & 0xffffffffu),
	                        (double)(o->seed >> 32),
	                        (double)nb_optim_steps(r->o)};
	double *all = calloc((size_t)ranks * K, sizeof *all);
	if (!all) {
		nb__fail(g, NB_ERR_NOMEM, "fit: out of memory");
		return NB_ERR_NOMEM;
	}
	memcpy(all + (size_t)me * K, mine, sizeof mine);
	nb_status cs = nb_dist_allreduce_sum(r->dist, all, ranks * K);
	nb_status out = st;
	if (cs && !st) {
		nb__fail(g, NB_ERR_IO, "fit: comparing the ranks' runs failed");
		out = NB_ERR_IO;
	}
	for (int q = 0; q < ranks && !out; q++)
		if (all[(size_t)q * K] == 0) {
			nb__fail(g, NB_ERR_ARG,
			         "fit: rank %d cannot start the run (its message says why)", q);
			out = NB_ERR_ARG;
		}
	for (int q = 1; q < ranks && !out; q++)
		for (int k = 1; k < K && !out; k++)
			if (all[(size_t)q * K + k] != all[k]) {
				nb__fail(
				    g, NB_ERR_ARG,
				    "fit: the ranks differ in the %s: %.17g on rank 0, %.17g on rank %d "
				    "(every rank must start the same run: the same checkpoint, data "
				    "and options)",
				    what[k], all[k], all[(size_t)q * K + k], q);
				out = NB_ERR_ARG;
			}
	free(all);
	return out;
}

nb_status nb_fit(nb_model *m, nb_optim *o, const nb_dataset *train, nb_fit_opts opts)
{
	if (!m || !o || !train || !m->eval_prog)
		return NB_ERR_ARG;
	nb_graph *g = m->g;
	if (g->status != NB_OK)
		return g->status;
	fit_run r = {.m = m,
	             .o = o,
	             .train = train,
	             .opts = &opts,
	             .dist = nb_optim_dist(o),
	             .epochs = opts.epochs > 0 ? opts.epochs : 1};
	nb_status st = fit_agree(&r, fit_check(&r, &r.G));
	if (st || opts.first_epoch == r.epochs || (st = fit_begin(&r)))
		return st;
	int last = opts.first_epoch; /* the last epoch trained */
	for (int e = opts.first_epoch + 1; e <= r.epochs; e++) {
		nb_epoch_stats s;
		nb_grad_norms gn;
		if ((st = fit_epoch(&r, e, &s)))
			break;
		if (r.fn.rows)
			s.grad_norms = fit_norms_epoch(&r.fn, o, e, &gn);
		if ((st = fit_measure(&r, e, &s)))
			break;
		last = e;
		if ((opts.on_epoch && !opts.on_epoch(&s, opts.user)) || s.early_stop)
			break;
	}
	if (!st)
		nb__fitval_finish(&r.fv, last);
	fit_free(&r);
	return st ? st : g->status;
}

nb_status nb_predict(nb_model *m, const float *x, int64_t n, int32_t *ids, float *probs)
{
	if (!m || !x || n < 0 || !m->eval_prog)
		return NB_ERR_ARG;
	int64_t B = m->batch, sample = m->x->size / B, K = m->probs->shape.d[1];
	bool was = nb_graph_training(m->g);
	nb_graph_set_training(m->g, false);
	nb_status st = NB_OK;
	for (int64_t start = 0; start < n && !st; start += B) {
		int64_t k = n - start < B ? n - start : B;
		for (int64_t i = 0; i < B; i++) /* pad with the last real sample */
			memcpy(m->xbuf + i * sample, x + (start + (i < k ? i : k - 1)) * sample,
			       (size_t)sample * sizeof(float));
		/* the probabilities alone: the loss would read labels nobody fed */
		if ((st = nb_feed_f32(m->x, m->xbuf, m->x->size)) || (st = nb_eval(m->probs)))
			break;
		for (int64_t i = 0; i < k; i++) {
			int best = 0;
			for (int64_t c = 0; c < K; c++) {
				double p = nb__get(m->probs, i * K + c);
				if (probs)
					probs[(start + i) * K + c] = (float)p;
				if (p > nb__get(m->probs, i * K + best))
					best = (int)c;
			}
			if (m->loss_kind == NB_LOSS_BCE_LOGITS)
				best = nb__get(m->probs, i) > 0.5;
			if (ids)
				ids[start + i] = best;
		}
	}
	nb_graph_set_training(m->g, was);
	return st;
}
