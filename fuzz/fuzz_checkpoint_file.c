/*
 * libFuzzer target for the checkpoint loader from a file: the input is
 * written to a file, opened with nb_safetensors_open (which must agree with
 * the in-memory parser: same status, same message after the label) and
 * loaded with nb_checkpoint_load into a small graph with an optimizer.
 * Seeds: tests/data/corpus/safetensors (and fuzz/safetensors.dict).
 */
#include "io/safetensors.h"
#include "fuzz/fuzz_file.h"

static nb_graph *g;
static nb_optim *o;

static void build(void)
{
	g = nb_graph_new(NB_F32);
	nb_tensor *w = nb_param(g, "fc1.w", NB_SHAPE(3, 4), NB_ZEROS);
	nb_tensor *b = nb_param(g, "fc1.b", NB_SHAPE(4), NB_ZEROS);
	nb__state_like(w, "m");
	o = nb_sgd(g, nb_add(nb_sum(w), nb_sum(b)), (nb_sgd_opts){.lr = 0.1});
	if (!o)
		__builtin_trap();
}

/* the message after "label: " */
static const char *after_label(const char *err)
{
	const char *q = strstr(err, ": ");
	return q ? q + 2 : err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g)
		build();
	const char *path = nb_fuzz_file(0, "ckpt.safetensors", data, size, false);
	char err_mem[512] = "", err_file[512] = "";
	nb_safetensors *fm = NULL, *ff = NULL;
	nb_status sm = nb_safetensors_parse(data, size, &fm, err_mem, sizeof err_mem);
	nb_status sf = nb_safetensors_open(path, &ff, err_file, sizeof err_file);
	if (sm != sf || (sf != NB_OK && strcmp(after_label(err_mem), after_label(err_file))))
		__builtin_trap();
	nb_safetensors_free(fm);
	for (int i = 0; i < nb_safetensors_count(ff); i++) {
		nb_safetensors_info in;
		if (nb_safetensors_tensor(ff, i, &in) != NB_OK)
			__builtin_trap();
		void *buf = malloc(in.end - in.begin + 1);
		if (!buf || nb_safetensors_read(ff, i, buf, in.end - in.begin) != NB_OK)
			__builtin_trap();
		free(buf);
	}
	nb_safetensors_free(ff);
	/* the flags from the data, so every combination is reached */
	unsigned flags = size ? data[size - 1] & 3u : 0;
	char name[32];
	nb_status st = nb_checkpoint_load_opts(g, (size & 8) ? o : NULL, path, name, sizeof name,
	                                       (nb_checkpoint_opts){.flags = flags});
	if (st != nb_graph_status(g) || (st && !nb_graph_errmsg(g)[0]))
		__builtin_trap();
	nb_graph_clear_error(g);
	return 0;
}
