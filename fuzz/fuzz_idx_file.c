/*
 * libFuzzer target for the IDX file loader (nb_idx_load_classes): the file
 * layer (regular files, gzip or raw, the header read and checked before
 * the data) and the parser behind it.  Input: a mode byte (fuzz/fuzz_file.h;
 * bit 0 compresses the images file, bit 1 the labels file, bit 2 asks for
 * 10 classes instead of "max label + 1"), then the two files framed as for
 * fuzz_idx (fuzz/idx_frame.h).
 */
#include "nabla.h"
#include "fuzz/fuzz_data.h"
#include "fuzz/fuzz_file.h"
#include "fuzz/idx_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	nb_idx_frame f = nb_idx_unframe(data + 1, size - 1);
	const char *img = nb_fuzz_file(0, "images", f.images, f.images_len, mode & 1);
	const char *lab = nb_fuzz_file(1, "labels", f.labels, f.labels_len, mode & 2);
	char err[512];
	nb_dataset d = {.n = 1};
	nb_status st = nb_idx_load_classes(img, lab, mode & 4 ? 10 : 0, &d, err, sizeof err);
	if (st == NB_OK) {
		nb_fuzz_exercise(&d, size);
		nb_dataset_free(&d);
	} else if (!err[0] || d.n || d.x || d.y) {
		__builtin_trap(); /* a failure names its reason and leaves d zeroed */
	}
	return 0;
}
