/*
 * Dataset struct lifetime and error messages (file reading: file.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"
#include "graph/internal.h" /* nb__shown */

nb_status nb__data_err(char *err, size_t errlen, nb_status st, const char *fmt, ...)
{
	if (err && errlen) {
		/* paths and file contents in messages: made safe for a terminal */
		char raw[1024];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(raw, sizeof raw, fmt, ap);
		va_end(ap);
		nb__shown(raw, err, errlen);
	}
	return st;
}

void nb_dataset_free(nb_dataset *d)
{
	if (!d)
		return;
	free(d->x);
	free(d->y);
	memset(d, 0, sizeof *d);
}

int64_t nb_dataset_sample_size(const nb_dataset *d)
{
	return d ? (int64_t)d->c * d->h * d->w : 0;
}

nb_status nb__dataset_alloc(nb_dataset *d, int64_t n, int c, int h, int w, int num_classes)
{
	memset(d, 0, sizeof *d);
	int64_t values = n * c * h * w; /* callers keep this under NB_DATA_MAX_VALUES */
	d->x = malloc(sizeof *d->x * (size_t)(values ? values : 1));
	d->y = malloc(sizeof *d->y * (size_t)(n ? n : 1));
	if (!d->x || !d->y) {
		nb_dataset_free(d);
		return NB_ERR_NOMEM;
	}
	d->n = n, d->c = c, d->h = h, d->w = w, d->num_classes = num_classes;
	return NB_OK;
}
