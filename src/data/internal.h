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

/* ---- RNG: splitmix64 (util/rng.h: nb__mix64, nb__rand64, nb__rand_below,
 * nb__rand_uniform) ----------------------------------------------------- *
 * Plenty for shuffling and synthetic data; header-only, so this module
 * still stands alone. */
#include "util/rng.h"

#endif
