/*
 * CIFAR-10 binary reader and a synthetic CIFAR-shaped generator.
 *
 * The binary version of CIFAR-10 is a sequence of 3073-byte records: one
 * label byte (0..9), then 3072 pixel bytes — the 32x32 red plane, then
 * green, then blue, each row-major — which is exactly NCHW, so a record's
 * pixels map one to one onto a sample of x.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

#define CIFAR_PIXELS 3072
#define CIFAR_CLASSES 10
/* records NB_DATA_MAX_VALUES allows */
#define CIFAR_MAX_RECORDS (NB_DATA_MAX_VALUES / CIFAR_PIXELS)
#define CIFAR_CAP ((size_t)CIFAR_MAX_RECORDS * NB_CIFAR10_RECORD)

/* Checks one file's bytes; *records = how many it holds. */
static nb_status cifar_check(const uint8_t *buf, size_t len, const char *name, int64_t *records,
                             char *err, size_t errlen)
{
	if (len == 0 || len % NB_CIFAR10_RECORD)
		return nb__data_err(
		    err, errlen, NB_ERR_FORMAT,
		    "%s: %zu bytes is not a positive multiple of the %d-byte CIFAR-10 "
		    "record (%zu whole records and %zu bytes left over)",
		    name, len, NB_CIFAR10_RECORD, len / NB_CIFAR10_RECORD, len % NB_CIFAR10_RECORD);
	if (len / NB_CIFAR10_RECORD > (size_t)CIFAR_MAX_RECORDS)
		return nb__data_err(err, errlen, NB_ERR_FORMAT,
		                    "%s: %zu records exceed the limit of %lld values", name,
		                    len / NB_CIFAR10_RECORD, (long long)NB_DATA_MAX_VALUES);
	*records = (int64_t)(len / NB_CIFAR10_RECORD);
	for (int64_t i = 0; i < *records; i++) {
		uint8_t label = buf[i * NB_CIFAR10_RECORD];
		if (label >= CIFAR_CLASSES)
			return nb__data_err(
			    err, errlen, NB_ERR_FORMAT,
			    "%s: record %lld (byte offset %lld) has label %u, expected "
			    "0..%d",
			    name, (long long)i, (long long)i * NB_CIFAR10_RECORD, label,
			    CIFAR_CLASSES - 1);
	}
	return NB_OK;
}

/* Decodes records already checked into samples [at, at + records) of d. */
static void cifar_decode(const uint8_t *buf, int64_t records, nb_dataset *d, int64_t at)
{
	for (int64_t i = 0; i < records; i++) {
		const uint8_t *rec = buf + i * NB_CIFAR10_RECORD;
		float *x = d->x + (at + i) * CIFAR_PIXELS;
		d->y[at + i] = rec[0];
		for (int k = 0; k < CIFAR_PIXELS; k++)
			x[k] = (float)rec[1 + k] / 255.0f;
	}
}

/* Parses nfiles buffers into one dataset, in order. */
static nb_status cifar_parse_many(const uint8_t *const *bufs, const size_t *lens,
                                  const char *const *names, int nfiles, nb_dataset *out, char *err,
                                  size_t errlen)
{
	int64_t counts[8], total = 0;
	for (int f = 0; f < nfiles; f++) {
		nb_status st = cifar_check(bufs[f], lens[f], names[f], &counts[f], err, errlen);
		if (st != NB_OK)
			return st;
		total += counts[f];
	}
	if (total > CIFAR_MAX_RECORDS)
		return nb__data_err(err, errlen, NB_ERR_FORMAT,
		                    "%s..%s: %lld records exceed the limit of %lld values",
		                    names[0], names[nfiles - 1], (long long)total,
		                    (long long)NB_DATA_MAX_VALUES);
	if (nb__dataset_alloc(out, total, 3, 32, 32, CIFAR_CLASSES) != NB_OK)
		return nb__data_err(err, errlen, NB_ERR_NOMEM,
		                    "%s: out of memory for %lld CIFAR-10 samples", names[0],
		                    (long long)total);
	int64_t at = 0;
	for (int f = 0; f < nfiles; at += counts[f], f++)
		cifar_decode(bufs[f], counts[f], out, at);
	return NB_OK;
}

nb_status nb_cifar10_parse(const void *buf, size_t len, nb_dataset *out, char *err, size_t errlen)
{
	if (!out || (!buf && len))
		return nb__data_err(err, errlen, NB_ERR_ARG, "nb_cifar10_parse: NULL argument");
	memset(out, 0, sizeof *out);
	const uint8_t *b = buf;
	const char *name = "buffer";
	return cifar_parse_many(&b, &len, &name, 1, out, err, errlen);
}

static nb_status cifar_load_files(const char *const *paths, int nfiles, nb_dataset *out, char *err,
                                  size_t errlen)
{
	uint8_t *bufs[8] = {0};
	size_t lens[8] = {0};
	nb_status st = NB_OK;
	/* each file may hold what the files before it leave of the limit */
	size_t left = CIFAR_CAP;
	for (int f = 0; f < nfiles && st == NB_OK; f++) {
		st = nb__slurp(paths[f], left, &bufs[f], &lens[f], err, errlen);
		left -= st == NB_OK ? lens[f] : 0;
	}
	const uint8_t *cbufs[8];
	for (int f = 0; f < nfiles; f++)
		cbufs[f] = bufs[f];
	if (st == NB_OK)
		st = cifar_parse_many(cbufs, lens, paths, nfiles, out, err, errlen);
	for (int f = 0; f < nfiles; f++)
		free(bufs[f]);
	return st;
}

nb_status nb_cifar10_load_file(const char *path, nb_dataset *out, char *err, size_t errlen)
{
	if (out)
		memset(out, 0, sizeof *out);
	if (!path || !out)
		return nb__data_err(err, errlen, NB_ERR_ARG, "nb_cifar10_load_file: NULL argument");
	return cifar_load_files(&path, 1, out, err, errlen);
}

nb_status nb_cifar10_load(const char *dir, bool train, nb_dataset *out, char *err, size_t errlen)
{
	if (!out)
		return nb__data_err(err, errlen, NB_ERR_ARG, "nb_cifar10_load: out is NULL");
	memset(out, 0, sizeof *out);
	if (!dir)
		dir = NB_CIFAR10_DIR;
	size_t dl = strlen(dir);
	const char *sep = dl && dir[dl - 1] == '/' ? "" : "/";
	char paths[5][4096];
	const char *p[5];
	int nfiles = train ? 5 : 1;
	for (int f = 0; f < nfiles; f++) {
		if (train)
			snprintf(paths[f], sizeof paths[f], "%s%sdata_batch_%d.bin", dir, sep,
			         f + 1);
		else
			snprintf(paths[f], sizeof paths[f], "%s%stest_batch.bin", dir, sep);
		p[f] = paths[f];
	}
	return cifar_load_files(p, nfiles, out, err, errlen);
}

/* ---- synthetic CIFAR ------------------------------------------------------- */

/* Five tints, each shared by two classes (k and k + 5), which differ in the
 * orientation and frequency of their stripes. */
static const float tints[5][3] = {
    {0.85f, 0.25f, 0.25f}, {0.25f, 0.80f, 0.30f}, {0.25f, 0.35f, 0.85f},
    {0.80f, 0.75f, 0.25f}, {0.60f, 0.30f, 0.75f},
};

/* Approximately N(0, 1): the sum of four 16-bit uniforms (Irwin-Hall),
 * centred and scaled; one random word per value keeps generation cheap. */
static float noise(uint64_t *s)
{
	uint64_t r = nb__rand64(s);
	float sum = (float)(r & 0xffff) + (float)(r >> 16 & 0xffff) + (float)(r >> 32 & 0xffff) +
	            (float)(r >> 48);
	/* each term is uniform on [0, 65535]: mean 32767.5, variance 65536^2/12 */
	return (sum - 4 * 32767.5f) * (float)(1.7320508075688772 / 65536.0);
}

nb_status nb_synthetic_cifar(int64_t n, uint64_t seed, nb_dataset *out)
{
	if (!out)
		return NB_ERR_ARG;
	memset(out, 0, sizeof *out);
	if (n <= 0 || n > CIFAR_MAX_RECORDS)
		return NB_ERR_ARG;
	nb_status st = nb__dataset_alloc(out, n, 3, 32, 32, CIFAR_CLASSES);
	if (st != NB_OK)
		return st;
	const double two_pi = 6.283185307179586;
	float stripes[32 * 32];
	for (int64_t i = 0; i < n; i++) {
		/* each sample has its own stream, so sample i does not depend on n */
		uint64_t s = nb__mix64(seed ^ nb__mix64((uint64_t)i + 1));
		int k = (int)nb__rand_below(&s, CIFAR_CLASSES);
		/* stripes varying along (cos t, sin t) in (row, col) coordinates */
		double theta = (k < 5 ? 0.0 : 0.5) * M_PI + (k % 5) * 0.1 * M_PI;
		double freq = 3.0 + (k % 5) * 0.5; /* periods across the image */
		double phase = two_pi * nb__rand_uniform(&s);
		double cr = cos(theta) * freq * two_pi / 32, cq = sin(theta) * freq * two_pi / 32;
		/* sin(cr r + cq q + phase) along each row by rotating (cos, sin) by
		 * cq per column: two trig calls per row instead of one per pixel */
		double dc = cos(cq), ds = sin(cq);
		for (int r = 0; r < 32; r++) {
			double sa = sin(cr * r + phase), ca = cos(cr * r + phase);
			for (int q = 0; q < 32; q++) {
				stripes[r * 32 + q] = (float)(0.2 * sa);
				double t = sa * dc + ca * ds;
				ca = ca * dc - sa * ds, sa = t;
			}
		}
		float *x = out->x + i * CIFAR_PIXELS;
		out->y[i] = k;
		for (int c = 0; c < 3; c++) {
			float base = 0.2f + 0.6f * tints[k % 5][c];
			for (int p = 0; p < 32 * 32; p++) {
				float v = base + stripes[p] + 0.08f * noise(&s);
				x[c * 1024 + p] = v < 0 ? 0 : v > 1 ? 1 : v;
			}
		}
	}
	return NB_OK;
}
