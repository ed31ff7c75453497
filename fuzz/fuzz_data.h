/*
 * Shared by the fuzz targets: after a parser succeeds, run the dataset
 * through the transforms and one epoch of the batcher, so their indexing is
 * fuzzed on every shape the parsers accept.
 */
#ifndef NB_FUZZ_DATA_H
#define NB_FUZZ_DATA_H

#include <stdlib.h>

#include "nabla.h"

static inline void nb_fuzz_exercise(nb_dataset *d, uint64_t seed)
{
	int64_t size = nb_dataset_sample_size(d), bs = 1 + (int64_t)(seed % 5);
	nb_batch b = {
	    .x = malloc(sizeof(float) * (size_t)(bs * size)),
	    .ids = malloc(sizeof(float) * (size_t)bs),
	    .onehot = malloc(sizeof(float) * (size_t)(bs * d->num_classes)),
	    .labels = malloc(sizeof(int32_t) * (size_t)bs),
	    .index = malloc(sizeof(int64_t) * (size_t)bs),
	};
	nb_batcher *it = NULL;
	if (b.x && b.ids && b.onehot && b.labels && b.index &&
	    nb_batcher_new(d, (nb_batcher_opts){.batch_size = bs, .shuffle = true, .seed = seed},
	                   &it) == NB_OK) {
		while (nb_batcher_next(it, &b) > 0)
			;
	}
	nb_batcher_free(it);
	free(b.x), free(b.ids), free(b.onehot), free(b.labels), free(b.index);

	nb_dataset sub;
	int classes[2] = {d->num_classes - 1, 0};
	if (nb_dataset_select_classes(d, classes, d->num_classes > 1 ? 2 : 1, &sub) == NB_OK)
		nb_dataset_free(&sub);
	nb_dataset_shuffle(d, seed);
	nb_dataset_standardize(d, NULL, NULL);
}

#endif
