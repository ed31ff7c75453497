/*
 * Dataset transforms: per-channel standardisation, one-hot labels, class
 * subsets, slices and seeded shuffling.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

static bool dataset_ok(const nb_dataset *d)
{
	return d && d->n >= 0 && d->c > 0 && d->h > 0 && d->w > 0 && (d->x || !d->n) &&
	       (d->y || !d->n);
}

nb_status nb_dataset_channel_stats(const nb_dataset *d, double *mean, double *std)
{
	if (!dataset_ok(d) || !mean || !std || d->n == 0)
		return NB_ERR_ARG;
	int64_t plane = (int64_t)d->h * d->w, size = nb_dataset_sample_size(d);
	double count = (double)d->n * (double)plane;
	for (int c = 0; c < d->c; c++) {
		/* two passes: the mean, then the squared deviations from it, which
		 * avoids the cancellation of E[x^2] - E[x]^2 */
		double s = 0, ss = 0;
		for (int64_t i = 0; i < d->n; i++) {
			const float *p = d->x + i * size + c * plane;
			for (int64_t k = 0; k < plane; k++)
				s += p[k];
		}
		double m = s / count;
		for (int64_t i = 0; i < d->n; i++) {
			const float *p = d->x + i * size + c * plane;
			for (int64_t k = 0; k < plane; k++)
				ss += (p[k] - m) * (p[k] - m);
		}
		mean[c] = m;
		std[c] = sqrt(ss / count);
	}
	return NB_OK;
}

nb_status nb_dataset_normalize(nb_dataset *d, const double *mean, const double *std)
{
	if (!dataset_ok(d) || !mean || !std)
		return NB_ERR_ARG;
	int64_t plane = (int64_t)d->h * d->w, size = nb_dataset_sample_size(d);
	for (int c = 0; c < d->c; c++) {
		if (!isfinite(mean[c]) || !isfinite(std[c]) || std[c] < 0)
			return NB_ERR_VALUE;
	}
	for (int c = 0; c < d->c; c++) {
		double m = mean[c], inv = std[c] > 0 ? 1.0 / std[c] : 1.0;
		for (int64_t i = 0; i < d->n; i++) {
			float *p = d->x + i * size + c * plane;
			for (int64_t k = 0; k < plane; k++)
				p[k] = (float)((p[k] - m) * inv);
		}
	}
	return NB_OK;
}

nb_status nb_dataset_standardize(nb_dataset *d, double *mean, double *std)
{
	if (!dataset_ok(d) || d->n == 0)
		return NB_ERR_ARG;
	double *m = malloc(sizeof *m * (size_t)d->c * 2);
	if (!m)
		return NB_ERR_NOMEM;
	double *s = m + d->c;
	nb_status st = nb_dataset_channel_stats(d, m, s);
	if (st == NB_OK)
		st = nb_dataset_normalize(d, m, s);
	if (st == NB_OK && mean)
		memcpy(mean, m, sizeof *m * (size_t)d->c);
	if (st == NB_OK && std)
		memcpy(std, s, sizeof *s * (size_t)d->c);
	free(m);
	return st;
}

nb_status nb_labels_one_hot(const int32_t *labels, int64_t n, int num_classes, float *out)
{
	if (n < 0 || num_classes <= 0 || (n && (!labels || !out)))
		return NB_ERR_ARG;
	if (n == 0)
		return NB_OK;
	for (int64_t i = 0; i < n; i++)
		if (labels[i] < 0 || labels[i] >= num_classes)
			return NB_ERR_VALUE;
	memset(out, 0, sizeof *out * (size_t)n * (size_t)num_classes);
	for (int64_t i = 0; i < n; i++)
		out[i * num_classes + labels[i]] = 1.0f;
	return NB_OK;
}

nb_status nb_onehot(const int32_t *labels, int64_t n, int num_classes, float *out)
{
	return nb_labels_one_hot(labels, n, num_classes, out);
}

/* Copies the samples listed in idx (count of them) of src into out. */
static nb_status gather(const nb_dataset *src, const int64_t *idx, int64_t count, int num_classes,
                        nb_dataset *out)
{
	nb_status st = nb__dataset_alloc(out, count, src->c, src->h, src->w, num_classes);
	if (st != NB_OK)
		return st;
	int64_t size = nb_dataset_sample_size(src);
	for (int64_t i = 0; i < count; i++) {
		memcpy(out->x + i * size, src->x + idx[i] * size, sizeof *out->x * (size_t)size);
		out->y[i] = src->y[idx[i]];
	}
	return NB_OK;
}

nb_status nb_dataset_select_classes(const nb_dataset *src, const int *classes, int k,
                                    nb_dataset *out)
{
	if (!out || src == out)
		return NB_ERR_ARG;
	memset(out, 0, sizeof *out);
	if (!dataset_ok(src) || !classes || k <= 0 || k > src->num_classes)
		return NB_ERR_ARG;
	/* map[old label] = new label or -1 */
	int *map = malloc(sizeof *map * (size_t)src->num_classes);
	int64_t *idx = calloc((size_t)(src->n ? src->n : 1), sizeof *idx);
	nb_status st = NB_ERR_NOMEM;
	if (!map || !idx)
		goto done;
	st = NB_ERR_ARG;
	for (int c = 0; c < src->num_classes; c++)
		map[c] = -1;
	for (int j = 0; j < k; j++) {
		if (classes[j] < 0 || classes[j] >= src->num_classes || map[classes[j]] >= 0)
			goto done;
		map[classes[j]] = j;
	}
	int64_t count = 0;
	for (int64_t i = 0; i < src->n; i++) {
		int32_t y = src->y[i];
		if (y >= 0 && y < src->num_classes && map[y] >= 0)
			idx[count++] = i;
	}
	st = gather(src, idx, count, k, out);
	for (int64_t i = 0; st == NB_OK && i < count; i++)
		out->y[i] = map[out->y[i]];
done:
	free(map);
	free(idx);
	return st;
}

nb_status nb_dataset_slice(const nb_dataset *src, int64_t start, int64_t count, nb_dataset *out)
{
	if (!out || src == out)
		return NB_ERR_ARG;
	memset(out, 0, sizeof *out);
	if (!dataset_ok(src) || start < 0 || count < 0 || start > src->n || count > src->n - start)
		return NB_ERR_ARG;
	int64_t *idx = malloc(sizeof *idx * (size_t)(count ? count : 1));
	if (!idx)
		return NB_ERR_NOMEM;
	for (int64_t i = 0; i < count; i++)
		idx[i] = start + i;
	nb_status st = gather(src, idx, count, src->num_classes, out);
	free(idx);
	return st;
}

/* ---- shuffling -------------------------------------------------------------- */

/* Fisher-Yates from the top: step i swaps i with a uniform j in [0, i].
 * nb_permutation and nb_dataset_shuffle make the same swaps. */
void nb_permutation(int64_t *idx, int64_t n, uint64_t seed)
{
	if (!idx || n <= 0)
		return;
	uint64_t s = nb__mix64(seed);
	for (int64_t i = 0; i < n; i++)
		idx[i] = i;
	for (int64_t i = n - 1; i > 0; i--) {
		int64_t j = (int64_t)nb__rand_below(&s, (uint64_t)i + 1);
		int64_t t = idx[i];
		idx[i] = idx[j], idx[j] = t;
	}
}

nb_status nb_dataset_shuffle(nb_dataset *d, uint64_t seed)
{
	if (!dataset_ok(d))
		return NB_ERR_ARG;
	int64_t size = nb_dataset_sample_size(d);
	size_t bytes = sizeof *d->x * (size_t)size;
	float *tmp = malloc(bytes);
	if (!tmp)
		return NB_ERR_NOMEM;
	uint64_t s = nb__mix64(seed);
	for (int64_t i = d->n - 1; i > 0; i--) {
		int64_t j = (int64_t)nb__rand_below(&s, (uint64_t)i + 1);
		if (j == i)
			continue;
		float *a = d->x + i * size, *b = d->x + j * size;
		memcpy(tmp, a, bytes), memcpy(a, b, bytes), memcpy(b, tmp, bytes);
		int32_t t = d->y[i];
		d->y[i] = d->y[j], d->y[j] = t;
	}
	free(tmp);
	return NB_OK;
}
