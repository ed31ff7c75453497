/*
 * The one list of models the command line knows: the zoo's rows (with
 * their builders and default recipes, src/nn/models.c), then the notes'
 * small models, which `nabla train` trains itself.  The commands that look
 * at a model rather than train it (`nabla summary`, `nabla dot`, `nabla
 * export`) build the zoo's and the notes' models exactly as `nabla train`
 * builds them.
 */
#include "train.h"

#include "graph/internal.h" /* nb__shown */

#include <string.h>

static int build_and(model *m, const train_args *a)
{
	return build_perceptron(m, a, (const double[]){1, 2}, 1);
}

static int build_or(model *m, const train_args *a)
{
	return build_perceptron(m, a, (const double[]){1, 1}, 0);
}

/* The notes' small models, after the zoo's rows: a model is one row.  The
 * recipe: epochs, the fixed batch, the optimizer and its lr; no data
 * options (the trainers make their own). */
static const cli_model_info notes[] = {
    {.name = "perceptron-and",
     .summary = "perceptron learning the AND gate (the notes: w=[1,2], b=1, eta=1)",
     .recipe = {.epochs = 3, .batch = 1, .optim = NB_OPTIM_SGD, .lr = 1.0},
     .train = train_perceptron_and,
     .build = build_and,
     .fixed_batch = "one sample at a time (the perceptron rule)",
     .plot_suffix = ".svg"},
    {.name = "perceptron-or",
     .summary = "perceptron learning the OR gate (the notes: w=[1,1], b=0, eta=1)",
     .recipe = {.epochs = 2, .batch = 1, .optim = NB_OPTIM_SGD, .lr = 1.0},
     .train = train_perceptron_or,
     .build = build_or,
     .fixed_batch = "one sample at a time (the perceptron rule)",
     .plot_suffix = ".svg"},
    {.name = "xor",
     .summary = "2-2-1 sigmoid MLP on XOR, U(-1,1) init, full batch, MSE",
     .recipe = {.epochs = 10000, .batch = 4, .optim = NB_OPTIM_SGD, .lr = 0.5},
     .train = train_xor,
     .build = build_xor,
     .fixed_batch = "the 4 patterns at once (full batch)"},
    {.name = "backprop-example",
     .summary = "the notes' 2-2-1 backprop example (no biases, eta=1)",
     .recipe = {.epochs = 2, .batch = 1, .optim = NB_OPTIM_SGD, .lr = 1.0},
     .train = train_backprop_example,
     .build = build_backprop_example,
     .fixed_batch = "its one sample"},
    {.name = "curve-fit",
     .summary = "1-16-16-1 tanh net fitting y = 1 + sin(2 pi x), 64 points, full batch, MSE",
     .recipe = {.epochs = 15000, .batch = 64, .optim = NB_OPTIM_ADAM, .lr = 1e-3},
     .train = train_curve_fit,
     .build = build_curve_fit,
     .fixed_batch = "the 64 points at once (full batch)",
     .plot_suffix = ".svg"},
};
#define N_NOTES (int)(sizeof notes / sizeof notes[0])

bool cli_model_at(int i, cli_model_info *out)
{
	int nz = 0;
	while (nb_zoo(nz))
		nz++;
	if (i < 0 || i >= nz + N_NOTES)
		return false;
	if (i >= nz) {
		*out = notes[i - nz];
		return true;
	}
	const nb_zoo_entry *z = nb_zoo(i);
	*out = (cli_model_info){.name = z->name,
	                        .summary = z->summary,
	                        .recipe = z->recipe,
	                        .zoo = z,
	                        .plot_suffix = "-curves.svg"};
	return true;
}

bool cli_model_find(const char *name, cli_model_info *out)
{
	for (int i = 0; cli_model_at(i, out); i++)
		if (!strcmp(out->name, name))
			return true;
	return false;
}

nb_optim_opts cli_recipe_optim(const nb_zoo_recipe *r)
{
	/* a recipe's 0 momentum or weight decay is the optimizer's default */
	nb_optim_opts o = nb_optim_defaults(r->optim);
	o.lr = r->lr;
	if (r->momentum > 0)
		o.momentum = r->momentum;
	if (r->weight_decay > 0)
		o.weight_decay = r->weight_decay;
	return o;
}

void cli_model_list(FILE *fp, bool all)
{
	cli_model_info m;
	for (int i = 0; cli_model_at(i, &m); i++)
		if (all || m.zoo || m.build)
			fprintf(fp, "  %-20s %s\n", m.name, m.summary);
}

static int build_notes(cli_model *m, const char *cmd, const cli_model_info *n, int64_t batch,
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
	cli_model_info info;
	if (!cli_model_find(a->name, &info) || (!info.zoo && !info.build)) {
		char sh[128];
		fprintf(stderr, "nabla %s: unknown model '%s'; models:\n", cmd,
		        nb__shown(a->name, sh, sizeof sh));
		cli_model_list(stderr, false);
		return 2;
	}
	if (!info.zoo)
		return build_notes(m, cmd, &info, a->batch, a->dtype);
	m->batch = a->batch ? a->batch : 1;
	m->g = nb_graph_new(a->dtype);
	nb_graph_seed(m->g, 1); /* a NULL graph: nothing */
	if (!(m->zoo = nb_zoo_build(m->g, a->name, m->batch))) {
		fprintf(stderr, "nabla %s: %s\n", cmd,
		        m->g ? nb_graph_errmsg(m->g) : nb_status_string(NB_ERR_NOMEM));
		return 1;
	}
	m->loss = nb_model_loss(m->zoo);
	m->x = nb_model_input(m->zoo);
	m->outputs[0] = nb_model_logits(m->zoo);
	m->outputs[1] = nb_model_probs(m->zoo);
	m->n_outputs = 2;
	return 0;
}

void cli_model_free(cli_model *m)
{
	nb_graph_free(m->g); /* and the zoo model */
	memset(m, 0, sizeof *m);
}
