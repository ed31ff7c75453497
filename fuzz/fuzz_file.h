/*
 * Shared by the file-layer fuzz targets: the input's bytes written to a
 * file, as they are or gzip-compressed, in a temporary directory of the
 * process (removed at exit), for the loaders to open by name.
 *
 * Inputs start with a mode byte; bit k set gzip-compresses file k.  Raw
 * files starting with 1f 8b reach the inflater as they are, so the fuzzer
 * drives the gzip decoder directly too; compressed ones drive the readers
 * on valid gzip data of any content.
 */
#ifndef NB_FUZZ_FILE_H
#define NB_FUZZ_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char nb_fuzz_tmp[64];
static char nb_fuzz_paths[4][128];

static void nb_fuzz_cleanup(void)
{
	for (int i = 0; i < 4; i++)
		if (nb_fuzz_paths[i][0])
			unlink(nb_fuzz_paths[i]);
	if (nb_fuzz_tmp[0])
		rmdir(nb_fuzz_tmp);
}

/* dir/name holding p[0..n), gzip-compressed when gz; slot 0..3 names the
 * path buffer.  Traps when the file cannot be written (not a finding). */
static inline const char *nb_fuzz_file(int slot, const char *name, const uint8_t *p, size_t n,
                                       bool gz)
{
	if (!nb_fuzz_tmp[0]) {
		snprintf(nb_fuzz_tmp, sizeof nb_fuzz_tmp, "/tmp/nb_fuzz_XXXXXX");
		if (!mkdtemp(nb_fuzz_tmp))
			__builtin_trap();
		atexit(nb_fuzz_cleanup);
	}
	char *path = nb_fuzz_paths[slot];
	snprintf(path, sizeof nb_fuzz_paths[slot], "%s/%s", nb_fuzz_tmp, name);
	uint8_t *z = NULL;
	if (gz) {
		/* a gzip member (windowBits 15 + 16), level from the size */
		z_stream s = {0};
		size_t cap = compressBound((uLong)n) + 32;
		z = malloc(cap);
		if (!z || deflateInit2(&s, 1 + (int)(n % 9), Z_DEFLATED, 15 + 16, 8,
		                       Z_DEFAULT_STRATEGY) != Z_OK)
			__builtin_trap();
		s.next_in = (Bytef *)p, s.avail_in = (uInt)n;
		s.next_out = z, s.avail_out = (uInt)cap;
		if (deflate(&s, Z_FINISH) != Z_STREAM_END)
			__builtin_trap();
		n = s.total_out, p = z;
		deflateEnd(&s);
	}
	FILE *fp = fopen(path, "wb");
	if (!fp || (n && fwrite(p, 1, n, fp) != n) || fclose(fp) != 0)
		__builtin_trap();
	free(z);
	return path;
}

#endif
