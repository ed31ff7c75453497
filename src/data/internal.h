/*
 * Internals shared by the dataset module (src/data/).  The module depends
 * only on libc, libm and zlib, so the fuzz targets compile its sources
 * directly with the fuzzer's instrumentation.
 */
#ifndef NB_DATA_INTERNAL_H
#define NB_DATA_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>

#include "nabla.h"

/* Writes "fmt..." into err (when err and errlen are set); returns st so a
 * caller can `return nb__data_err(...)`. */
nb_status nb__data_err(char *err, size_t errlen, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads a whole file, gzip-compressed or raw, into *buf (malloc'd, *len
 * bytes).  More than cap bytes is an error (NB_ERR_FORMAT) naming the
 * limit; so are corrupt or truncated gzip data.  NB_ERR_IO when the file
 * cannot be opened or read. */
nb_status nb__slurp(const char *path, size_t cap, uint8_t **buf, size_t *len, char *err,
                    size_t errlen);

/* The IDX parser with names for the two buffers (file paths, in messages). */
nb_status nb__idx_parse_named(const uint8_t *img, size_t img_len, const char *img_name,
                              const uint8_t *lab, size_t lab_len, const char *lab_name,
                              int num_classes, nb_dataset *out, char *err, size_t errlen);

/* Allocates x (n*c*h*w floats) and y (n labels), fields set; NB_ERR_NOMEM. */
nb_status nb__dataset_alloc(nb_dataset *d, int64_t n, int c, int h, int w, int num_classes);

/* ---- RNG: splitmix64 ----------------------------------------------------- *
 * A 64-bit state stepped by the golden gamma and hashed; passes BigCrush and
 * is plenty for shuffling and synthetic data.  Kept separate from the
 * graph's xoshiro so this module stands alone. */

/* the splitmix64 finaliser: a bijective hash of 64 bits */
static inline uint64_t nb__mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t nb__rand64(uint64_t *s)
{
	return nb__mix64(*s += 0x9e3779b97f4a7c15ull);
}

/* uniform in [0, bound), bound > 0, without modulo bias (rejection) */
static inline uint64_t nb__rand_below(uint64_t *s, uint64_t bound)
{
	uint64_t threshold = (0 - bound) % bound; /* 2^64 mod bound */
	for (;;) {
		uint64_t r = nb__rand64(s);
		if (r >= threshold)
			return r % bound;
	}
}

/* uniform in [0, 1) with 53 random bits */
static inline double nb__rand_uniform(uint64_t *s)
{
	return (double)(nb__rand64(s) >> 11) * 0x1.0p-53;
}

#endif
