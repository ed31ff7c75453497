/*
 * How an input of fuzz_idx (and a file of tests/data/corpus/idx/) is split
 * into the two IDX files: 4 big-endian bytes give the length of the images
 * file (clamped to what is there), the images file follows, and the rest is
 * the labels file.  The corpus test in tests/test_data.c uses the same
 * framing, so every corpus file is replayed exactly as the fuzzer saw it.
 */
#ifndef NB_FUZZ_IDX_FRAME_H
#define NB_FUZZ_IDX_FRAME_H

#include <stddef.h>
#include <stdint.h>

typedef struct nb_idx_frame {
	const uint8_t *images, *labels;
	size_t images_len, labels_len;
} nb_idx_frame;

static inline nb_idx_frame nb_idx_unframe(const uint8_t *data, size_t size)
{
	nb_idx_frame f = {0};
	if (size < 4)
		return f;
	size_t len = (size_t)data[0] << 24 | (size_t)data[1] << 16 | (size_t)data[2] << 8 | data[3];
	size -= 4, data += 4;
	if (len > size)
		len = size;
	f.images = data, f.images_len = len;
	f.labels = data + len, f.labels_len = size - len;
	return f;
}

#endif
