/*
 * Helper of tests/safetensors_interop.py: writes a checkpoint for Python to
 * parse, and checks a file that Python wrote.  Every tensor holds values of
 * a known formula, so both sides can check the other without sharing data.
 *
 *   ckpt_interop write f32|f64 PATH   save the model (step 3) to PATH
 *   ckpt_interop check f32|f64 PATH   load PATH and compare with the formula
 */
#include "graph/internal.h" /* nb__state_like: optimizer-style state */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* element i of tensor k: (i - 5) / 4 + 10 k, exact in f32 and f64 */
static double value(int k, int64_t i)
{
	return (double)(i - 5) / 4.0 + 10.0 * k;
}

static nb_tensor *T[4];
static const char *const names[4] = {"fc1.w", "fc1.b", "conv.w", "fc1.w.m"};

static nb_optim *build(nb_graph *g)
{
	T[0] = nb_param(g, names[0], NB_SHAPE(3, 4), NB_ZEROS);
	T[1] = nb_param(g, names[1], NB_SHAPE(4), NB_ZEROS);
	T[2] = nb_param(g, names[2], NB_SHAPE(2, 1, 3, 3), NB_ZEROS);
	nb_tensor *L = nb_add(nb_add(nb_sum(nb_square(T[0])), nb_sum(T[1])), nb_sum(T[2]));
	nb_optim *o = nb_sgd(g, L, (nb_sgd_opts){.lr = 0.125});
	T[3] = nb__state_like(T[0], "m"); /* as a momentum optimizer would */
	return o;
}

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[2], "f32") && strcmp(argv[2], "f64"))) {
		fprintf(stderr, "usage: %s write|check f32|f64 PATH\n", argv[0]);
		return 2;
	}
	nb_graph *g = nb_graph_new(!strcmp(argv[2], "f64") ? NB_F64 : NB_F32);
	nb_optim *o = build(g);
	if (nb_graph_status(g)) {
		fprintf(stderr, "%s\n", nb_graph_errmsg(g));
		return 1;
	}
	int rc = 0;
	if (!strcmp(argv[1], "write")) {
		for (int s = 0; s < 3; s++)
			nb_step(o);
		for (int k = 0; k < 4; k++) {
			int64_t n = nb_tensor_size(T[k]);
			double *v = malloc(sizeof *v * (size_t)n);
			for (int64_t i = 0; i < n; i++)
				v[i] = value(k, i);
			nb_feed_f64(T[k], v, n);
			free(v);
		}
		nb_graph_seed(g, 1234);
		const char *meta[] = {"written_by", "ckpt_interop"};
		if (nb_checkpoint_save_opts(g, o, argv[3], "interop \"model\"",
		                            (nb_checkpoint_opts){.meta = meta, .n_meta = 1}))
			rc = 1;
	} else if (!strcmp(argv[1], "check")) {
		char name[64];
		if (nb_checkpoint_load(g, o, argv[3], name, sizeof name))
			rc = 1;
		for (int k = 0; k < 4 && !rc; k++) {
			int64_t n = nb_tensor_size(T[k]);
			double *v = malloc(sizeof *v * (size_t)n);
			nb_read_f64(T[k], v, n);
			for (int64_t i = 0; i < n; i++)
				if (v[i] != value(k, i)) {
					fprintf(stderr, "%s[%lld] = %g, expected %g\n", names[k],
					        (long long)i, v[i], value(k, i));
					rc = 1;
					break;
				}
			free(v);
		}
		if (!rc && (strcmp(name, "from python") || nb_optim_steps(o) != 7)) {
			fprintf(stderr, "model \"%s\", step %lld\n", name,
			        (long long)nb_optim_steps(o));
			rc = 1;
		}
	} else {
		fprintf(stderr, "unknown command %s\n", argv[1]);
		rc = 2;
	}
	if (rc == 1 && nb_graph_status(g))
		fprintf(stderr, "%s\n", nb_graph_errmsg(g));
	nb_graph_free(g);
	return rc;
}
