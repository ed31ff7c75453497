/*
 * What `nabla eval` and `nabla predict` share: their common options, a zoo
 * model with the weights of a checkpoint (--checkpoint) or of any
 * safetensors file (--init-from), and the test set the model was trained
 * against, prepared as `nabla train` prepared it (the checkpoint's
 * metadata says whether the inputs were standardised, and the seed and
 * sizes of synthetic data).
 */
#include "classify.h"
#include "graph/internal.h" /* nb__shown */
#include "train.h"          /* cli_model_find */

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *const fashion[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                        "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                        "Bag",         "Ankle boot"};
static const char *const cifar[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                      "dog",      "frog",       "horse", "ship", "truck"};
static const char *const numbers[10] = {"class 0", "class 1", "class 2", "class 3", "class 4",
                                        "class 5", "class 6", "class 7", "class 8", "class 9"};

void classify_usage(FILE *fp)
{
	fprintf(fp,
	        "  --model NAME       the model (a zoo model: list below; required)\n"
	        "  --checkpoint FILE  the weights: a checkpoint nabla train --save wrote for this\n"
	        "                     model (its metadata gives the dtype, whether the inputs\n"
	        "                     were standardised, and synthetic data's seed and sizes)\n"
	        "  --init-from FILE   the weights from any safetensors file instead, PyTorch's\n"
	        "                     names mapped (see nabla train --help); the inputs as\n"
	        "                     nabla train gives them without --standardize\n"
	        "  --data DIR|synthetic  the test set: IDX files (default\n"
	        "                     " NB_FASHION_MNIST_DIR "), CIFAR-10\n"
	        "                     binaries, or synthetic CIFAR-shaped data (the resnets'\n"
	        "                     default)\n"
	        "  --test-limit N     only the first N test samples (default: all; synthetic\n"
	        "                     data: the checkpoint's, else 2000)\n"
	        "  --classes A,B      the binary models' two classes (default 2,4)\n"
	        "  --batch N          samples per forward pass (default: the model's batch)\n"
	        "  --threads N        threads (default 0: all cores)\n"
	        "  --json             JSON on stdout instead of text\n");
}

static bool parse_classes(const char *cmd, const char *v, int c[2])
{
	char a[16], b[16];
	const char *comma = strchr(v, ',');
	long x, y;
	if (!comma || (size_t)(comma - v) >= sizeof a || strlen(comma + 1) >= sizeof b) {
		fprintf(stderr, "nabla %s: --classes wants two class ids 0 to 255, e.g. 2,4\n",
		        cmd);
		return false;
	}
	snprintf(a, sizeof a, "%.*s", (int)(comma - v), v);
	snprintf(b, sizeof b, "%s", comma + 1);
	if (!cli_parse_long(cmd, "--classes", a, 0, 255, &x) ||
	    !cli_parse_long(cmd, "--classes", b, 0, 255, &y))
		return false;
	if (x == y) {
		fprintf(stderr, "nabla %s: --classes wants two different classes, got %ld twice\n",
		        cmd, x);
		return false;
	}
	c[0] = (int)x, c[1] = (int)y;
	return true;
}

int classify_option(int argc, char **argv, int *i, classify_args *a)
{
	const char *v;
	if ((v = cli_opt_value(argc, argv, i, "--model")))
		a->model = v;
	else if ((v = cli_opt_value(argc, argv, i, "--checkpoint")))
		a->checkpoint = v;
	else if ((v = cli_opt_value(argc, argv, i, "--init-from")))
		a->init_from = v;
	else if ((v = cli_opt_value(argc, argv, i, "--data")))
		a->data = v;
	else if ((v = cli_opt_value(argc, argv, i, "--test-limit")))
		return cli_parse_long(a->cmd, "--test-limit", v, 1, INT_MAX, &a->test_limit) ? 1
		                                                                             : -1;
	else if ((v = cli_opt_value(argc, argv, i, "--batch")))
		return cli_parse_long(a->cmd, "--batch", v, 1, CLI_MAX_BATCH, &a->batch) ? 1 : -1;
	else if ((v = cli_opt_value(argc, argv, i, "--threads")))
		return cli_parse_long(a->cmd, "--threads", v, 0, CLI_MAX_THREADS, &a->threads) ? 1
		                                                                               : -1;
	else if ((v = cli_opt_value(argc, argv, i, "--classes")))
		return (a->classes_given = parse_classes(a->cmd, v, a->classes)) ? 1 : -1;
	else if (!strcmp(argv[*i], "--json"))
		a->json = true;
	else
		return cli_missing_value ? -1 : 0;
	return 1;
}

/* what the checkpoint's metadata says about the run */
typedef struct run_meta {
	nb_dtype dtype;
	int classes[2]; /* the binary models' (-1: not said) */
	char optim[32];
	uint64_t seed;
	bool standardize;
	int64_t train_limit, test_limit;
} run_meta;

/* s made safe for a terminal */
static const char *shown(const char *s, char *buf, size_t n)
{
	return nb__shown(s, buf, n);
}

static int read_meta(const classify_args *a, run_meta *r)
{
	nb_safetensors *f;
	char err[768], b[160];
	*r = (run_meta){.dtype = NB_F32, .seed = 1, .classes = {-1, -1}};
	if (nb_safetensors_open(a->checkpoint, &f, err, sizeof err) != NB_OK) {
		fprintf(stderr, "nabla %s: --checkpoint: %s\n", a->cmd, err);
		return 1;
	}
	const char *m = nb_safetensors_meta(f, "model"), *d = nb_safetensors_meta(f, "dtype");
	const char *o = nb_safetensors_meta(f, "optimizer");
	int rc = 0;
	int64_t v;
	if (m && strcmp(m, a->model)) {
		fprintf(stderr,
		        "nabla %s: --checkpoint %s holds model '%s', not '%s' (give --model %s, "
		        "or the checkpoint of %s)\n",
		        a->cmd, a->checkpoint, shown(m, b, sizeof b), a->model,
		        shown(m, b, sizeof b), a->model);
		rc = 1;
	} else if (!m || !d || (strcmp(d, "F32") && strcmp(d, "F64"))) {
		fprintf(stderr,
		        "nabla %s: --checkpoint %s: not a checkpoint of nabla train (its metadata "
		        "has no %s); for weights from elsewhere use --init-from\n",
		        a->cmd, a->checkpoint, !m ? "model" : "dtype F32 or F64");
		rc = 1;
	} else {
		r->dtype = d[1] == '6' ? NB_F64 : NB_F32;
		snprintf(r->optim, sizeof r->optim, "%s", o ? o : "");
		r->standardize = nb_safetensors_meta(f, "standardize") != NULL;
		const char *cl = nb_safetensors_meta(f, "classes");
		if (cl && !train_parse_classes(cl, r->classes)) {
			fprintf(stderr,
			        "nabla %s: --checkpoint %s: metadata classes \"%s\" is not two "
			        "different class ids 0 to 255 (A,B)\n",
			        a->cmd, a->checkpoint, shown(cl, b, sizeof b));
			rc = 1;
		}
		const char *key[3] = {"seed", "train_limit", "test_limit"};
		for (int k = 0; k < 3 && !rc; k++) {
			if (!nb_safetensors_meta(f, key[k]))
				continue;
			if (nb_safetensors_meta_int(f, key[k], k ? 1 : 0, INT64_MAX, &v, err,
			                            sizeof err) != NB_OK) {
				fprintf(stderr, "nabla %s: --checkpoint: %s\n", a->cmd, err);
				rc = 1;
			} else if (k == 0) {
				r->seed = (uint64_t)v;
			} else {
				*(k == 1 ? &r->train_limit : &r->test_limit) = v;
			}
		}
	}
	nb_safetensors_free(f);
	return rc;
}

/* the checkpoint into the model, with the optimizer it was saved with so
 * that every tensor of the file is checked (the running statistics too) */
static int load_checkpoint(const classify_args *a, classify_ctx *c, const run_meta *r)
{
	nb_optim *o = NULL;
	char b[64];
	if (r->optim[0]) {
		nb_optim_kind k = nb_optim_kind_from_name(r->optim);
		if (k == NB_OPTIM_INVALID) {
			fprintf(stderr, "nabla %s: --checkpoint %s: unknown optimizer '%s'\n",
			        a->cmd, a->checkpoint, shown(r->optim, b, sizeof b));
			return 1;
		}
		if (!(o = nb_optimizer(c->g, nb_model_loss(c->m), (nb_optim_opts){.kind = k}))) {
			fprintf(stderr, "nabla %s: %s\n", a->cmd, nb_graph_errmsg(c->g));
			return 1;
		}
	}
	nb_checkpoint_opts co = {.model = a->model};
	if (nb_checkpoint_load_opts(c->g, o, a->checkpoint, NULL, 0, co) != NB_OK) {
		fprintf(stderr, "nabla %s: --checkpoint: %s\n", a->cmd, nb_graph_errmsg(c->g));
		return 1;
	}
	return 0;
}

static int load_init_from(const classify_args *a, classify_ctx *c)
{
	nb_init_from_report r;
	if (nb_init_from(c->g, a->init_from, &r) != NB_OK) {
		fprintf(stderr, "nabla %s: %s\n", a->cmd, nb_graph_errmsg(c->g));
		return 1;
	}
	if (!a->json)
		fprintf(stderr,
		        "nabla %s: --init-from %s: %d tensors loaded (%d under PyTorch's names), "
		        "%d of the file's left unused\n",
		        a->cmd, a->init_from, r.loaded, r.renamed, r.ignored);
	return 0;
}

/* the test set as nabla train prepared it */
static int load_test(const classify_args *a, classify_ctx *c, const run_meta *r)
{
	const nb_zoo_entry *z = c->z;
	bool cf = z->recipe.data == NB_ZOO_DATA_CIFAR10;
	bool synthetic = a->data ? !strcmp(a->data, "synthetic") : cf;
	nb_dataset train = {0};
	char err[512];
	nb_status st = NB_OK;
	if (synthetic && !cf) {
		fprintf(stderr,
		        "nabla %s: --data synthetic is CIFAR-shaped; model %s takes %dx%dx%d "
		        "images\n",
		        a->cmd, z->name, z->c, z->h, z->w);
		return 2;
	}
	if (synthetic) {
		int64_t nt = a->test_limit ? a->test_limit : r->test_limit ? r->test_limit : 2000;
		int64_t n = r->train_limit ? r->train_limit : 10000;
		st = nb_synthetic_cifar(nt, r->seed + 0x5eed, &c->test);
		if (!st && r->standardize)
			st = nb_synthetic_cifar(n, r->seed, &train);
		if (st) {
			fprintf(stderr, "nabla %s: synthetic data: %s\n", a->cmd,
			        nb_status_string(st));
			nb_dataset_free(&c->test);
			return 1;
		}
	} else {
		st = cf ? nb_cifar10_load(a->data, false, &c->test, err, sizeof err)
		        : nb_fashion_mnist_load(a->data, false, &c->test, err, sizeof err);
		if (!st && r->standardize)
			st = cf ? nb_cifar10_load(a->data, true, &train, err, sizeof err)
			        : nb_fashion_mnist_load(a->data, true, &train, err, sizeof err);
		if (st) {
			cli_data_error(a->cmd, z->name, cf, err);
			nb_dataset_free(&c->test);
			return 1;
		}
	}
	if (c->test.c != z->c || c->test.h != z->h || c->test.w != z->w) {
		fprintf(stderr, "nabla %s: the test images are %dx%dx%d; model %s takes %dx%dx%d\n",
		        a->cmd, c->test.c, c->test.h, c->test.w, z->name, z->c, z->h, z->w);
		nb_dataset_free(&train);
		return 1;
	}
	if (r->standardize) { /* with the training set's statistics, as nabla train */
		double mean[3], sd[3];
		nb_dataset_channel_stats(&train, mean, sd);
		nb_dataset_normalize(&c->test, mean, sd);
		c->standardized = true;
	}
	nb_dataset_free(&train);
	const char *const *names = synthetic ? numbers : cf ? cifar : fashion;
	for (int k = 0; k < 10; k++)
		c->names[k] = names[k];
	if (z->num_classes == 2) {
		/* the checkpoint's classes, unless --classes says otherwise */
		const int *cl = a->classes_given || r->classes[0] < 0 ? a->classes : r->classes;
		nb_dataset s;
		if (nb_dataset_select_classes(&c->test, cl, 2, &s) != NB_OK) {
			fprintf(stderr, "nabla %s: --classes %d,%d: not two classes of the data\n",
			        a->cmd, cl[0], cl[1]);
			return 1;
		}
		nb_dataset_free(&c->test);
		c->test = s;
		c->names[0] = names[cl[0]], c->names[1] = names[cl[1]];
		if (c->test.n == 0) { /* a loss and accuracy of no samples are no numbers */
			fprintf(stderr,
			        "nabla %s: --classes %d,%d: the test set has no samples of these "
			        "classes\n",
			        a->cmd, cl[0], cl[1]);
			return 1;
		}
	}
	if (!synthetic && a->test_limit && a->test_limit < c->test.n) {
		nb_dataset s;
		if (nb_dataset_slice(&c->test, 0, a->test_limit, &s) != NB_OK) {
			fprintf(stderr, "nabla %s: out of memory\n", a->cmd);
			return 1;
		}
		nb_dataset_free(&c->test);
		c->test = s;
	}
	return 0;
}

static int setup(const classify_args *a, classify_ctx *c, const char *const *flags,
                 const char *const *outputs, int n)
{
	if (!a->model) {
		fprintf(stderr, "nabla %s: --model NAME is required (see nabla %s --help)\n",
		        a->cmd, a->cmd);
		return 2;
	}
	cli_model_info info;
	bool known = cli_model_find(a->model, &info);
	if (!known || !info.zoo) {
		char b[128];
		fprintf(stderr, "nabla %s: %s '%s'; %s takes the zoo's models:", a->cmd,
		        known ? "no test set for the notes' model" : "unknown model",
		        shown(a->model, b, sizeof b), a->cmd);
		for (int i = 0; nb_zoo(i); i++)
			fprintf(stderr, " %s", nb_zoo(i)->name);
		fprintf(stderr, "\n");
		return 2;
	}
	c->z = info.zoo;
	if (!a->checkpoint == !a->init_from) {
		fprintf(stderr,
		        a->checkpoint ? "nabla %s: --checkpoint and --init-from both give the "
		                        "weights: give one of them\n"
		                      : "nabla %s: the weights are needed: --checkpoint FILE (from "
		                        "nabla train --save) or --init-from FILE (any safetensors "
		                        "file)\n",
		        a->cmd);
		return 2;
	}
	const char *w = a->checkpoint ? a->checkpoint : a->init_from;
	if (!*w || (a->data && !*a->data)) {
		fprintf(stderr, "nabla %s: %s is empty\n", a->cmd,
		        !*w ? (a->checkpoint ? "--checkpoint" : "--init-from") : "--data");
		return 2;
	}
	run_meta r = {.dtype = NB_F32, .seed = 1, .classes = {-1, -1}};
	int rc;
	if (a->checkpoint && (rc = read_meta(a, &r)) != 0)
		return rc;
	for (int k = 0; k < n; k++)
		if (outputs[k] && !cli_check_output(a->cmd, flags[k], outputs[k]))
			return 1;
	nb_set_num_threads((int)a->threads);
	int64_t batch = a->batch ? a->batch : c->z->recipe.batch;
	c->g = nb_graph_new(r.dtype);
	nb_graph_seed(c->g, 1); /* a NULL graph: nothing */
	if (!(c->m = nb_zoo_build(c->g, a->model, batch))) {
		fprintf(stderr, "nabla %s: %s\n", a->cmd,
		        c->g ? nb_graph_errmsg(c->g) : nb_status_string(NB_ERR_NOMEM));
		return 1;
	}
	rc = a->checkpoint ? load_checkpoint(a, c, &r) : load_init_from(a, c);
	if (!rc)
		rc = load_test(a, c, &r);
	return rc;
}

int classify_setup(const classify_args *a, classify_ctx *c, const char *const *flags,
                   const char *const *outputs, int n)
{
	memset(c, 0, sizeof *c);
	int rc = setup(a, c, flags, outputs, n);
	if (rc)
		classify_free(c);
	return rc;
}

void classify_free(classify_ctx *c)
{
	nb_graph_free(c->g); /* and the model */
	nb_dataset_free(&c->test);
	memset(c, 0, sizeof *c);
}
