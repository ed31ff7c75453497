/*
 * Minibatch iterator: walks a dataset in batches, in order or in a new
 * seeded permutation every epoch, copying samples into caller buffers.
 */
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

struct nb_batcher {
	const nb_dataset *d;
	nb_batcher_opts opts;
	int64_t *order; /* this epoch's order of the samples */
	int64_t pos;    /* next position in order */
	int64_t epoch;
	nb_augment augment; /* opts.augment's copy (opts.augment points here) */
};

/* The order of epoch e depends only on (seed, e), so seeking to an epoch
 * reproduces it; hashing e keeps the streams of neighbouring epochs apart. */
static void start_epoch(nb_batcher *b, int64_t epoch)
{
	b->epoch = epoch;
	b->pos = 0;
	if (b->opts.shuffle)
		nb_permutation(b->order, b->d->n, b->opts.seed ^ nb__mix64((uint64_t)epoch + 1));
	else
		for (int64_t i = 0; i < b->d->n; i++)
			b->order[i] = i;
}

nb_status nb_batcher_new(const nb_dataset *d, nb_batcher_opts opts, nb_batcher **out)
{
	if (!out)
		return NB_ERR_ARG;
	*out = NULL;
	if (!d || d->n <= 0 || !d->x || !d->y || opts.batch_size <= 0)
		return NB_ERR_ARG;
	if (opts.augment && nb_augment_check(opts.augment, d->c, d->h, d->w, NULL, 0))
		return NB_ERR_ARG;
	nb_batcher *b = calloc(1, sizeof *b);
	if (!b)
		return NB_ERR_NOMEM;
	b->order = malloc(sizeof *b->order * (size_t)d->n);
	if (!b->order) {
		free(b);
		return NB_ERR_NOMEM;
	}
	b->d = d;
	b->opts = opts;
	if (opts.augment) {
		b->augment = *opts.augment;
		b->opts.augment = &b->augment;
	}
	start_epoch(b, 0);
	*out = b;
	return NB_OK;
}

void nb_batcher_free(nb_batcher *b)
{
	if (!b)
		return;
	free(b->order);
	free(b);
}

int64_t nb_batcher_batches_per_epoch(const nb_batcher *b)
{
	if (!b)
		return 0;
	int64_t n = b->d->n, bs = b->opts.batch_size;
	return b->opts.drop_last ? n / bs : (n + bs - 1) / bs;
}

int64_t nb_batcher_epoch(const nb_batcher *b)
{
	return b ? b->epoch : 0;
}

void nb_batcher_seek_epoch(nb_batcher *b, int64_t epoch)
{
	if (b && epoch >= 0)
		start_epoch(b, epoch);
}

int64_t nb_batcher_next(nb_batcher *b, const nb_batch *out)
{
	if (!b || !out)
		return -1;
	const nb_dataset *d = b->d;
	int64_t bs = b->opts.batch_size, m = d->n - b->pos;
	if (m > bs)
		m = bs;
	if (m <= 0 || (b->opts.drop_last && m < bs)) {
		start_epoch(b, b->epoch + 1);
		return 0;
	}
	int64_t size = nb_dataset_sample_size(d), k = d->num_classes;
	const int64_t *idx = b->order + b->pos;
	b->pos += m;
	for (int64_t i = 0; i < m; i++) {
		int64_t j = idx[i];
		if (out->x && b->opts.augment)
			nb_augment_sample(b->opts.augment, b->opts.seed, b->epoch, j, d->c, d->h,
			                  d->w, d->x + j * size, out->x + i * size);
		else if (out->x)
			memcpy(out->x + i * size, d->x + j * size, sizeof *out->x * (size_t)size);
		if (out->ids)
			out->ids[i] = (float)d->y[j];
		if (out->onehot) {
			memset(out->onehot + i * k, 0, sizeof *out->onehot * (size_t)k);
			if (d->y[j] >= 0 && d->y[j] < k)
				out->onehot[i * k + d->y[j]] = 1.0f;
		}
		if (out->labels)
			out->labels[i] = d->y[j];
		if (out->index)
			out->index[i] = j;
	}
	/* the rest of a partial batch: zeros, and -1 where a label is expected */
	size_t rest = (size_t)(bs - m);
	if (rest) {
		if (out->x)
			memset(out->x + m * size, 0, sizeof *out->x * rest * (size_t)size);
		if (out->ids)
			memset(out->ids + m, 0, sizeof *out->ids * rest);
		if (out->onehot)
			memset(out->onehot + m * k, 0, sizeof *out->onehot * rest * (size_t)k);
		for (size_t i = 0; i < rest; i++) {
			if (out->labels)
				out->labels[m + (int64_t)i] = -1;
			if (out->index)
				out->index[m + (int64_t)i] = -1;
		}
	}
	return m;
}
