/* libFuzzer target for the IDX parser (framing: fuzz/idx_frame.h). */
#include "nabla.h"
#include "fuzz/fuzz_data.h"
#include "fuzz/idx_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nb_idx_frame f = nb_idx_unframe(data, size);
	char err[256];
	for (int num_classes = 0; num_classes <= 10; num_classes += 10) {
		nb_dataset d;
		if (nb_idx_parse(f.images, f.images_len, f.labels, f.labels_len, num_classes, &d,
		                 err, sizeof err) == NB_OK) {
			nb_fuzz_exercise(&d, size);
			nb_dataset_free(&d);
		}
	}
	return 0;
}
