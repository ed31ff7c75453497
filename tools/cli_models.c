/*
 * Models by name for the commands that look at a model rather than train
 * it (`nabla summary`, `nabla dot`): the zoo, and the notes' small models
 * built exactly as `nabla train` builds them.
 */
#include "train.h"

#include <string.h>

typedef struct notes_model {
	const char *name, *summary;
	int (*build)(model *m, const train_args *a);
} notes_model;

static int build_and(model *m, const train_args *a)
{
	return build_perceptron(m, a, (const double[]){1, 2}, 1);
}

static int build_or(model *m, const train_args *a)
{
	return build_perceptron(m, a, (const double[]){1, 1}, 0);
}

static const notes_model notes[] = {
    {"perceptron-and", "the notes' perceptron (hardlim, 1/2 e^2), AND gate's start", build_and},
    {"perceptron-or", "the same with the OR gate's start", build_or},
    {"xor", "2-2-1 sigmoid MLP for XOR (batch of the 4 patterns, MSE)", build_xor},
    {"backprop-example", "the notes' 2-2-1 backprop example (no biases)", build_backprop_example},
};
#define N_NOTES (sizeof notes / sizeof notes[0])

void cli_model_list(FILE *fp)
{
	for (int i = 0; nb_zoo(i); i++)
		fprintf(fp, "  %-20s %s\n", nb_zoo(i)->name, nb_zoo(i)->summary);
	for (size_t i = 0; i < N_NOTES; i++)
		fprintf(fp, "  %-20s %s\n", notes[i].name, notes[i].summary);
}

static int build_notes(cli_model *m, const char *cmd, const notes_model *n, int64_t batch,
                       nb_dtype dt)
{
	train_args a = {.model = n->name, .dtype = dt, .seed = 1};
	model mm = {0};
	int rc = n->build(&mm, &a);
	m->g = mm.g;
	m->loss = mm.loss;
	m->x = mm.x;
	m->outputs[0] = mm.out;
	m->n_outputs = 1;
	m->notes = true;
	m->batch = nb_tensor_shape(mm.x).d[0];
	if (rc < 0 || !m->g) {
		fprintf(stderr, "nabla %s: %s\n", cmd,
		        m->g ? nb_graph_errmsg(m->g) : "out of memory");
		return 1;
	}
	if (batch && batch != m->batch) {
		fprintf(stderr,
		        "nabla %s: %s has a fixed batch of %lld; --batch is for the zoo models\n",
		        cmd, n->name, (long long)m->batch);
		return 2;
	}
	return 0;
}

int cli_model_option(int argc, char **argv, int *i, const char *cmd, cli_model_args *a)
{
	const char *v;
	if ((v = cli_opt_value(argc, argv, i, "--model"))) {
		a->name = v;
	} else if ((v = cli_opt_value(argc, argv, i, "--batch"))) {
		if (!cli_parse_long(cmd, "--batch", v, 1, CLI_MAX_BATCH, &a->batch))
			return -1;
	} else if ((v = cli_opt_value(argc, argv, i, "--dtype"))) {
		if (!cli_parse_dtype(cmd, v, &a->dtype))
			return -1;
	} else {
		return cli_missing_value ? -1 : 0;
	}
	return 1;
}

int cli_model_build(cli_model *m, const char *cmd, const cli_model_args *a)
{
	memset(m, 0, sizeof *m);
	for (size_t i = 0; i < N_NOTES; i++)
		if (!strcmp(notes[i].name, a->name))
			return build_notes(m, cmd, &notes[i], a->batch, a->dtype);
	if (!nb_zoo_find(a->name)) {
		fprintf(stderr, "nabla %s: unknown model '%s'; models:\n", cmd, a->name);
		cli_model_list(stderr);
		return 2;
	}
	m->batch = a->batch ? a->batch : 1;
	nb_status st = nb_zoo_build(&m->zoo, a->name, a->dtype, m->batch, 1);
	m->g = m->zoo.g;
	m->loss = m->zoo.loss;
	m->x = m->zoo.x;
	m->outputs[0] = m->zoo.logits;
	m->outputs[1] = m->zoo.probs;
	m->n_outputs = 2;
	if (st != NB_OK) {
		fprintf(stderr, "nabla %s: %s\n", cmd,
		        m->g ? nb_graph_errmsg(m->g) : nb_status_string(st));
		return 1;
	}
	return 0;
}

void cli_model_free(cli_model *m)
{
	if (!m->notes)
		nb_model_free(&m->zoo);
	nb_graph_free(m->g);
	memset(m, 0, sizeof *m);
}
