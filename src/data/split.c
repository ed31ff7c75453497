/*
 * The validation split: a seeded choice of a fraction of a dataset's
 * samples, held out of training.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

/* keeps the split apart from the shuffles of the same seed */
#define SPLIT_DOMAIN 0x76616c2d73706c74ull /* "val-splt" */

nb_status nb_split_count(int64_t n, double fraction, int64_t *n_val)
{
	if (!n_val || !(fraction > 0 && fraction < 1) || n < 2)
		return NB_ERR_ARG;
	double v = floor((double)n * fraction + 0.5);
	if (v < 1 || v > (double)(n - 1))
		return NB_ERR_ARG;
	*n_val = (int64_t)v;
	return NB_OK;
}

nb_status nb_split_indices(int64_t n, double fraction, uint64_t seed, int64_t *train_idx,
                           int64_t *val_idx)
{
	int64_t nv;
	nb_status st = nb_split_count(n, fraction, &nv);
	if (st)
		return st;
	int64_t *perm = malloc(sizeof *perm * (size_t)n);
	unsigned char *held = calloc((size_t)n, 1);
	if (!perm || !held) {
		free(perm), free(held);
		return NB_ERR_NOMEM;
	}
	/* the first nv of a seeded permutation are held out */
	nb_permutation(perm, n, seed ^ SPLIT_DOMAIN);
	for (int64_t i = 0; i < nv; i++)
		held[perm[i]] = 1;
	int64_t t = 0, v = 0;
	for (int64_t i = 0; i < n; i++) {
		if (held[i]) {
			if (val_idx)
				val_idx[v] = i;
			v++;
		} else {
			if (train_idx)
				train_idx[t] = i;
			t++;
		}
	}
	free(perm), free(held);
	return NB_OK;
}

nb_status nb_dataset_split(const nb_dataset *src, double fraction, uint64_t seed, nb_dataset *train,
                           nb_dataset *val)
{
	if (!train || !val || train == val || src == train || src == val)
		return NB_ERR_ARG;
	memset(train, 0, sizeof *train);
	memset(val, 0, sizeof *val);
	if (!src || src->n < 2 || !src->x || !src->y || src->c <= 0 || src->h <= 0 || src->w <= 0)
		return NB_ERR_ARG;
	int64_t nv;
	nb_status st = nb_split_count(src->n, fraction, &nv);
	if (st)
		return st;
	int64_t *idx = malloc(sizeof *idx * (size_t)src->n);
	if (!idx)
		return NB_ERR_NOMEM;
	int64_t nt = src->n - nv;
	st = nb_split_indices(src->n, fraction, seed, idx, idx + nt);
	if (!st)
		st = nb__dataset_alloc(train, nt, src->c, src->h, src->w, src->num_classes);
	if (!st)
		st = nb__dataset_alloc(val, nv, src->c, src->h, src->w, src->num_classes);
	if (!st) {
		int64_t size = nb_dataset_sample_size(src);
		for (int64_t i = 0; i < src->n; i++) {
			nb_dataset *d = i < nt ? train : val;
			int64_t k = i < nt ? i : i - nt;
			memcpy(d->x + k * size, src->x + idx[i] * size,
			       sizeof *d->x * (size_t)size);
			d->y[k] = src->y[idx[i]];
		}
	} else {
		nb_dataset_free(train), nb_dataset_free(val);
	}
	free(idx);
	return st;
}
