/*
 * safetensors internals shared by the reader (safetensors.c), the
 * checkpoint code (checkpoint.c), the fuzz target and the tests.
 */
#ifndef NB_SAFETENSORS_H
#define NB_SAFETENSORS_H

#include "graph/internal.h"

#include <sys/types.h>

/* Headers longer than this are refused as absurd (the same limit as the
 * reference implementation). */
#define NB_ST_MAX_HEADER 100000000ull
/* More dimensions than this are refused (keeps a hostile header small). */
#define NB_ST_MAX_DIMS 64

/* Byte order of the host; tensor bytes in files are little-endian. */
static inline bool nb__host_is_le(void)
{
	const uint16_t one = 1;
	return *(const unsigned char *)&one == 1;
}
/* Reverse the bytes of each of n elements of size esize, in place. */
void nb__bswap_elems(void *p, size_t n, size_t esize);

/* The strict parsers behind nb_safetensors_meta_int/_number, for the
 * metadata the checkpoint loader restores: the whole of s must be a JSON
 * number (an integer without fraction or exponent for _int) within
 * [min, max]; false otherwise (and for NULL). */
bool nb__parse_meta_int(const char *s, int64_t min, int64_t max, int64_t *out);
bool nb__parse_meta_number(const char *s, double min, double max, double *out);

/* Validate the file f against graph g and copy it in (nb_checkpoint_load
 * without the open), so the fuzz target can run the whole load path on a
 * file image in memory.  Errors are recorded on g, prefixed with label. */
nb_status nb__checkpoint_apply(nb_graph *g, nb_optim *o, const nb_safetensors *f, const char *label,
                               unsigned flags, char *model_out, size_t len);

/* Test hook: when set, nb_checkpoint_save calls it after writing the
 * header and after each tensor (with the bytes written so far), so a test
 * can slow a save down and kill it midway. */
extern void (*nb__checkpoint_write_hook)(size_t bytes_written);

#endif
