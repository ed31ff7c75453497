/*
 * libFuzzer target for the CIFAR-10 file loader (nb_cifar10_load_file): the
 * file layer (regular files, gzip or raw, size limits) and the parser.
 * Input: a mode byte (fuzz/fuzz_file.h; bit 0 compresses the file), then
 * the file.
 */
#include "nabla.h"
#include "fuzz/fuzz_data.h"
#include "fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *path = nb_fuzz_file(0, "data.bin", data + 1, size - 1, data[0] & 1);
	char err[512];
	nb_dataset d = {.n = 1};
	if (nb_cifar10_load_file(path, &d, err, sizeof err) == NB_OK) {
		nb_fuzz_exercise(&d, size);
		nb_dataset_free(&d);
	} else if (!err[0] || d.n || d.x || d.y) {
		__builtin_trap();
	}
	return 0;
}
