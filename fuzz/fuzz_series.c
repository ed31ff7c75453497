/*
 * libFuzzer target for the time-series reader of `nabla ewma`
 * (tools/series.c, cli_read_series): one number per line, or one CSV
 * column picked by index or by header name.
 *
 * The first byte picks the mode (no column, column 2, column "value"), the
 * rest is the file.  An accepted input must give at least one value, every
 * one finite; a refused one a message safe for a terminal (no control
 * byte: the file's text is quoted through nb__shown).  Crashes, leaks and
 * sanitizer reports are bugs.
 *
 *   meson compile -C build-fuzz fuzz_series
 *   ./build-fuzz/fuzz/fuzz_series -max_total_time=60 CORPUS_DIR tests/data/corpus/series
 */
#include "series.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const char *const columns[3] = {NULL, "2", "value"};
	const char *column = columns[data[0] % 3];
	FILE *fp = fmemopen((void *)(data + 1), size - 1 ? size - 1 : 1, "rb");
	if (!fp)
		return 0;
	if (size == 1) /* fmemopen needs a buffer: read nothing from it */
		fgetc(fp);
	cli_series s = {0};
	char err[512] = "";
	int rc = cli_read_series(fp, column, &s, err, sizeof err);
	fclose(fp);
	if (rc == 0) {
		if (s.n < 1)
			__builtin_trap();
		for (int64_t i = 0; i < s.n; i++)
			if (!isfinite(s.v[i]))
				__builtin_trap();
	} else {
		if (!err[0])
			__builtin_trap();
		for (const unsigned char *u = (const unsigned char *)err; *u; u++)
			if (*u < 0x20 || *u == 0x7f ||
			    (u[0] == 0xc2 && u[1] >= 0x80 && u[1] < 0xa0))
				__builtin_trap();
	}
	cli_series_free(&s);
	return 0;
}
