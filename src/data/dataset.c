/*
 * Dataset struct lifetime, error messages and whole-file reading through
 * zlib (gzip or raw, transparently).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/internal.h"

nb_status nb__data_err(char *err, size_t errlen, nb_status st, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
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

/* ---- reading files -------------------------------------------------------- */

static nb_status gz_fail(gzFile f, const char *path, char *err, size_t errlen)
{
	int code;
	const char *msg = gzerror(f, &code);
	if (code == Z_ERRNO)
		return nb__data_err(err, errlen, NB_ERR_IO, "%s: read error: %s", path,
		                    strerror(errno));
	if (code == Z_MEM_ERROR)
		return nb__data_err(err, errlen, NB_ERR_NOMEM, "%s: out of memory decompressing",
		                    path);
	/* Z_DATA_ERROR (corrupt) or Z_BUF_ERROR (compressed stream cut short) */
	return nb__data_err(err, errlen, NB_ERR_FORMAT, "%s: bad gzip data: %s", path, msg);
}

nb_status nb__slurp(const char *path, size_t cap, uint8_t **buf, size_t *len, char *err,
                    size_t errlen)
{
	*buf = NULL, *len = 0;
	errno = 0;
	gzFile f = gzopen(path, "rb");
	if (!f)
		return nb__data_err(err, errlen, errno ? NB_ERR_IO : NB_ERR_NOMEM,
		                    "%s: cannot open: %s", path,
		                    errno ? strerror(errno) : "out of memory");
	gzbuffer(f, 1u << 17);
	nb_status st = NB_OK;
	size_t size = 0, alloc = 0;
	uint8_t *p = NULL;
	for (;;) {
		if (size == alloc) {
			/* one byte past the cap tells "too large" from "exactly cap" */
			if (alloc > cap) {
				st = nb__data_err(err, errlen, NB_ERR_FORMAT,
				                  "%s: larger than %zu bytes, the most this reader "
				                  "accepts",
				                  path, cap);
				goto fail;
			}
			size_t na = alloc ? alloc * 2 : (size_t)1 << 16;
			if (na > cap + 1)
				na = cap + 1;
			uint8_t *np = realloc(p, na);
			if (!np) {
				st = nb__data_err(err, errlen, NB_ERR_NOMEM,
				                  "%s: out of memory reading %zu bytes", path, na);
				goto fail;
			}
			p = np, alloc = na;
		}
		size_t want = alloc - size;
		if (want > (size_t)1 << 30)
			want = (size_t)1 << 30;
		int got = gzread(f, p + size, (unsigned)want);
		if (got < 0) {
			st = gz_fail(f, path, err, errlen);
			goto fail;
		}
		if (got == 0)
			break;
		size += (size_t)got;
	}
	/* gzread reports a stream cut short only through gzerror */
	int code;
	gzerror(f, &code);
	if (code != Z_OK) {
		st = gz_fail(f, path, err, errlen);
		goto fail;
	}
	gzclose_r(f);
	*buf = p, *len = size;
	return NB_OK;
fail:
	gzclose_r(f);
	free(p);
	return st;
}
