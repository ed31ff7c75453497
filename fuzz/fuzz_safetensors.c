/*
 * libFuzzer target for the safetensors reader and the checkpoint loader.
 *
 * Every input runs through nb_safetensors_parse; an accepted file has every
 * tensor read and is then loaded into a small graph with an optimizer (the
 * whole nb_checkpoint_load path after the open: metadata, name matching,
 * shape and dtype checks, conversion).  A rejected file must come with a
 * message and no handle.  Crashes, leaks and sanitizer reports are bugs.
 *
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
 *       -Db_lundef=false -Dbuildtype=debugoptimized
 *   meson compile -C build-fuzz fuzz_safetensors
 *   ./build-fuzz/fuzz/fuzz_safetensors -max_total_time=60 CORPUS_DIR \
 *       tests/data/corpus/safetensors
 */
#include "io/safetensors.h"

#include <stdlib.h>
#include <string.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g)
		build();
	nb_safetensors *f = NULL;
	char err[512] = "";
	nb_status st = nb_safetensors_parse(data, size, &f, err, sizeof err);
	if (st != NB_OK) {
		if (f || st != NB_ERR_FORMAT || strncmp(err, "<buffer>: ", 10) || !err[10])
			__builtin_trap();
		return 0;
	}
	for (int i = 0; i < nb_safetensors_count(f); i++) {
		nb_safetensors_info in;
		if (nb_safetensors_tensor(f, i, &in) != NB_OK || in.end > size)
			__builtin_trap();
		void *buf = malloc(in.end - in.begin + 1);
		if (nb_safetensors_read(f, i, buf, in.end - in.begin) != NB_OK)
			__builtin_trap();
		free(buf);
	}
	/* the flags from the data, so every combination is reached */
	unsigned flags = size ? data[size - 1] & 3u : 0;
	char name[32];
	st = nb__checkpoint_apply(g, (size & 8) ? o : NULL, f, "<fuzz>", flags, name, sizeof name);
	if (st != nb_graph_status(g) || (st && !nb_graph_errmsg(g)[0]))
		__builtin_trap();
	nb_graph_clear_error(g);
	nb_safetensors_free(f);
	return 0;
}
