/*
 * Internals shared by the dataset module (src/data/).  The module depends
 * only on libc, libm and zlib, so the fuzz targets compile its sources
 * directly with the fuzzer's instrumentation.
 */
#ifndef NB_DATA_INTERNAL_H
#define NB_DATA_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>

#include "nabla.h"

/* Writes "fmt..." into err (when err and errlen are set); returns st so a
 * caller can `return nb__data_err(...)`. */
nb_status nb__data_err(char *err, size_t errlen, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Opens path for reading if it is a regular file: a FIFO, device, socket
 * or directory is refused (NB_ERR_IO, "path: not a regular file (a
 * FIFO)") without blocking.  *size is the size on the disk.  Errors name
 * the path and the reason (strerror). */
nb_status nb__open_regular(const char *path, int *fd, uint64_t *size, char *err, size_t errlen);

/* A regular file read sequentially, inflated when it is gzip data (the
 * magic 1f 8b, as zlib decides).  Concatenated gzip members read as one
 * stream; bytes after the last member that are not a member, and a member
 * cut short, are NB_ERR_FORMAT. */
typedef struct nb__rfile {
	const char *path;
	int fd;
	bool gz, z_live, in_member, done;
	uint64_t size;         /* bytes on the disk */
	uint64_t disk;         /* bytes read from the disk */
	uint64_t pos;          /* content bytes delivered */
	uint64_t member_start; /* where a member after the first begins, until it
	                        * yields data; else 0 */
	int members;           /* gzip members ended */
	uint8_t *in;           /* bytes read from the disk */
	size_t have, used;     /* in[used..have): not yet delivered (raw files) */
	z_stream z;
} nb__rfile;

nb_status nb__rfile_open(nb__rfile *f, const char *path, char *err, size_t errlen);
/* Up to n content bytes into dst; *got < n only at the end of the content. */
nb_status nb__rfile_read(nb__rfile *f, void *dst, size_t n, size_t *got, char *err, size_t errlen);
/* How many content bytes are left (counting stops at limit + 1), reading
 * them without keeping them; for an uncompressed file, from its size. */
nb_status nb__rfile_extra(nb__rfile *f, uint64_t limit, uint64_t *extra, char *err, size_t errlen);
void nb__rfile_close(nb__rfile *f); /* safe on a closed or failed file */

/* Reads a whole file (nb__rfile: regular, gzip or raw) into *buf (malloc'd,
 * *len bytes).  More than cap bytes is an error (NB_ERR_FORMAT) naming the
 * limit, found from the size of an uncompressed file before anything is
 * read; so are corrupt, truncated or trailing gzip data.  NB_ERR_IO when
 * the file cannot be opened or read, or is not a regular file. */
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
