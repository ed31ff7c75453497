/* libFuzzer target for the CIFAR-10 binary parser: the input is the file. */
#include "nabla.h"
#include "fuzz/fuzz_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	nb_dataset d;
	if (nb_cifar10_parse(data, size, &d, err, sizeof err) == NB_OK) {
		nb_fuzz_exercise(&d, size);
		nb_dataset_free(&d);
	}
	return 0;
}
