/*
 * Data augmentation: random crops with zero padding and horizontal flips,
 * drawn per sample from (seed, epoch, index) so that the result depends on
 * nothing else (batch order, batch size, threads).
 */
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

/* keeps the augmentation's draws apart from the shuffles of the same seed */
#define AUGMENT_DOMAIN 0x6175676d656e7421ull /* "augment!" */

nb_status nb_augment_check(const nb_augment *a, int c, int h, int w, char *err, size_t errlen)
{
	if (c <= 0 || h <= 0 || w <= 0)
		return nb__data_err(err, errlen, NB_ERR_ARG,
		                    "augment: samples of %dx%dx%d are not images", c, h, w);
	if (!a)
		return NB_OK;
	int side = h < w ? h : w;
	if (a->crop_pad < 0 || a->crop_pad > side)
		return nb__data_err(err, errlen, NB_ERR_ARG,
		                    "augment: a crop padding of %d does not fit %dx%d images "
		                    "(0 to %d)",
		                    a->crop_pad, h, w, side);
	return NB_OK;
}

static bool augment_on(const nb_augment *a)
{
	return a && (a->crop_pad > 0 || a->flip);
}

/* the stream of sample `index` in epoch `epoch` */
static uint64_t sample_stream(uint64_t seed, int64_t epoch, int64_t index)
{
	uint64_t s = nb__mix64(seed ^ AUGMENT_DOMAIN);
	s = nb__mix64(s ^ nb__rand_at((uint64_t)epoch, 0));
	return nb__mix64(s ^ (uint64_t)index);
}

/* a checked augmentation of src into dst (distinct) */
static void augment_one(const nb_augment *a, uint64_t seed, int64_t epoch, int64_t index, int c,
                        int h, int w, const float *src, float *dst)
{
	uint64_t s = sample_stream(seed, epoch, index);
	int p = a->crop_pad;
	int dy = (int)nb__rand_below(&s, (uint64_t)(2 * p + 1)) - p;
	int dx = (int)nb__rand_below(&s, (uint64_t)(2 * p + 1)) - p;
	bool flip = a->flip && (nb__rand64(&s) >> 63);
	int64_t plane = (int64_t)h * w;
	/* out(y, x) = in(y + dy, x' + dx), x' = w-1-x when flipped; 0 outside */
	for (int ch = 0; ch < c; ch++) {
		const float *in = src + ch * plane;
		float *out = dst + ch * plane;
		for (int y = 0; y < h; y++) {
			float *row = out + (int64_t)y * w;
			int sy = y + dy;
			if (sy < 0 || sy >= h) {
				memset(row, 0, sizeof *row * (size_t)w);
				continue;
			}
			const float *irow = in + (int64_t)sy * w;
			for (int x = 0; x < w; x++) {
				int sx = (flip ? w - 1 - x : x) + dx;
				row[x] = sx >= 0 && sx < w ? irow[sx] : 0.0f;
			}
		}
	}
}

nb_status nb_augment_sample(const nb_augment *a, uint64_t seed, int64_t epoch, int64_t index, int c,
                            int h, int w, const float *src, float *dst)
{
	if (!src || !dst || src == dst || epoch < 0 || index < 0)
		return NB_ERR_ARG;
	nb_status st = nb_augment_check(a, c, h, w, NULL, 0);
	if (st)
		return st;
	if (!augment_on(a)) {
		memcpy(dst, src, sizeof *dst * (size_t)c * (size_t)h * (size_t)w);
		return NB_OK;
	}
	augment_one(a, seed, epoch, index, c, h, w, src, dst);
	return NB_OK;
}

nb_status nb_augment_batch(const nb_augment *a, uint64_t seed, int64_t epoch, const int64_t *index,
                           int64_t n, int c, int h, int w, float *x)
{
	if ((n && !x) || n < 0 || epoch < 0)
		return NB_ERR_ARG;
	nb_status st = nb_augment_check(a, c, h, w, NULL, 0);
	if (st || !augment_on(a) || !n)
		return st;
	int64_t size = (int64_t)c * h * w;
	for (int64_t i = 0; index && i < n; i++)
		if (index[i] < 0)
			return NB_ERR_ARG;
	float *tmp = malloc(sizeof *tmp * (size_t)size);
	if (!tmp)
		return NB_ERR_NOMEM;
	for (int64_t i = 0; i < n; i++) {
		float *row = x + i * size;
		memcpy(tmp, row, sizeof *tmp * (size_t)size);
		augment_one(a, seed, epoch, index ? index[i] : i, c, h, w, tmp, row);
	}
	free(tmp);
	return NB_OK;
}
