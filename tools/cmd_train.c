/*
 * nabla train — train a model, printing one line (or JSON object) per epoch.
 */
#include "train.h"

#include "graph/internal.h" /* nb__shown */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <strings.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MODEL "mlp"
#define DEFAULT_OUT "nabla-out"

static void json_num(char *buf, size_t n, double v)
{
	if (isfinite(v))
		snprintf(buf, n, "%.9g", v);
	else
		snprintf(buf, n, "null");
}

void print_epoch(const train_args *a, const epoch_report *r)
{
	char loss[32], acc[32];
	json_num(loss, sizeof loss, r->loss);
	json_num(acc, sizeof acc, r->accuracy);
	if (a->json) {
		printf(
		    "{\"model\": \"%s\", \"epoch\": %d, \"loss\": %s, \"accuracy\": %s, \"seconds\": %.6f%s%s%s%s}\n",
		    a->model, r->epoch, loss, acc, r->seconds, r->extra[0] ? ", " : "", r->extra,
		    r->more ? ", " : "", r->more ? r->more : "");
	} else {
		printf("epoch %*d/%d  loss %-12.6g", (int)snprintf(NULL, 0, "%d", r->epochs),
		       r->epoch, r->epochs, r->loss);
		if (isfinite(r->accuracy))
			printf("  accuracy %6.2f%%", 100 * r->accuracy);
		/* the extra members without JSON punctuation: "w": [1, 2] -> w [1, 2] */
		char human[sizeof r->extra];
		size_t k = 0;
		for (const char *c = r->extra; *c && k + 1 < sizeof human; c++) {
			if (*c == '"')
				continue;
			if (*c == ':' && c > r->extra && c[-1] == '"')
				continue;
			human[k++] = *c;
		}
		human[k] = 0;
		printf("  %.3fs%s%s\n", r->seconds, human[0] ? "  " : "", human);
	}
	fflush(stdout);
}

int report_graph_error(nb_graph *g)
{
	fprintf(stderr, "nabla train: %s\n", nb_graph_errmsg(g));
	nb_graph_free(g);
	return 1;
}

int finish_model(model *m, const train_args *a)
{
	int rc = 0;
	if (a->dot_path) {
		const char *fmt = cli_graph_format("train", a->dot_path, NULL); /* checked */
		bool text = !fmt || !strcmp(fmt, "dot");
		nb_status st = text ? nb_graph_save_dot(m->g, a->dot_path, NB_DOT_BACKWARD)
		                    : nb_graph_render(m->g, a->dot_path, fmt, NB_DOT_BACKWARD);
		if (st == NB_OK && text) {
			fprintf(stderr,
			        "nabla train: wrote the graph to %s (render: dot -Tsvg %s -o "
			        "graph.svg)\n",
			        cli_shown(a->dot_path), cli_shown(a->dot_path));
		} else if (st == NB_OK) {
			fprintf(stderr, "nabla train: wrote the graph to %s\n",
			        cli_shown(a->dot_path));
		} else {
			fprintf(stderr, "nabla train: --dot: %s\n", nb_graph_errmsg(m->g));
			rc = 1;
		}
	}
	nb_graph_free(m->g);
	m->g = NULL;
	return rc;
}

bool loss_finite(const train_args *a, double loss, int epoch, int64_t step)
{
	if (isfinite(loss) || a->allow_nonfinite)
		return true;
	fprintf(stderr,
	        "nabla train: the loss is %s at epoch %d (step %lld): training diverged; try a "
	        "lower --lr, or --allow-nonfinite to go on regardless\n",
	        isnan(loss) ? "NaN"
	        : loss > 0  ? "inf"
	                    : "-inf",
	        epoch, (long long)step);
	return false;
}

/* The help text, as data: one string per part (a C99 compiler need accept
 * only 4095 bytes in one), those with a %d formatted with its limits. */
static const char usage_model[] =
    "usage: nabla train [--model NAME] [options]\n\n"
    "Train a model, with a progress bar that fits the terminal and a line (or JSON\n"
    "object) per epoch.  With no options it trains " DEFAULT_MODEL " on Fashion-MNIST and\n"
    "writes its checkpoint, training curves and graph under " DEFAULT_OUT "/.\n\n"
    "model and data:\n"
    "  --model NAME       model to train (default " DEFAULT_MODEL "; list below)\n"
    "  --data DIR|synthetic  IDX directory (default /usr/share/datasets/fashion-mnist)\n"
    "                     (apt install dataset-fashion-mnist) or CIFAR-10 binaries\n"
    "                     (data_batch_1..5.bin, test_batch.bin); resnets default to\n"
    "                     synthetic data\n"
    "  --classes A,B      the two classes for the binary models (default 2,4)\n"
    "  --standardize      per-channel standardisation of the inputs\n"
    "  --train-limit N, --test-limit N   use only the first N samples\n"
    "  --max-batches N    at most N batches per epoch (short runs)\n"
    "  --compare-optim    train the model three times from the same initial weights\n"
    "                     and batch order, with sgd, momentum and adam (each at its\n"
    "                     default lr unless --lr), and plot the three loss curves in\n"
    "                     one SVG (--plot; default OUT/compare-optim-MODEL.svg).\n"
    "                     MODEL: a zoo model, or 'spirals' (the default): a 2-64-64-3\n"
    "                     ReLU MLP on 900 synthetic points of three spiral arms\n"
    "  --compare-depth    the vanishing-gradient experiment: deep-sigmoid, deep-relu-he,\n"
    "                     deep-relu-bn and deep-residual (ten hidden layers of 64) from\n"
    "                     the same seed, with their gradient norms; plots in --plot\n"
    "                     FILE.svg (default OUT/compare-depth.svg: norm by depth and\n"
    "                     first/last-layer ratio) and FILE-accuracy.svg\n";
/* with CLI_MAX_EPOCHS, CLI_MAX_BATCH, CLI_MAX_THREADS */
static const char usage_training[] =
    "training:\n"
    "  --epochs N         epochs in all, 1 to %d (default: per model); with\n"
    "                     --resume the saved epochs count too (--epochs 8 after 5\n"
    "                     trains 6 to 8; at or below the saved ones: nothing is\n"
    "                     trained or written, exit status 2)\n"
    "  --batch N          minibatch size, 1 to %d (default: per model; 1 =\n"
    "                     per-sample SGD, the whole set = full-batch).  The notes'\n"
    "                     models train on a fixed batch (xor and curve-fit: all\n"
    "                     their points at once; the perceptrons and the backprop\n"
    "                     example: one sample at a time) and refuse another\n"
    "  --optim NAME       sgd|momentum|nesterov|rmsprop|adam|adamw (default: per model)\n"
    "  --lr X             learning rate >= 0 (default: per model)\n"
    "  --momentum B       momentum / beta1 in [0, 1) (momentum, nesterov, adam, adamw)\n"
    "  --weight-decay X   weight decay >= 0\n"
    "  --clip-norm X      clip gradients to this global norm (0: no clipping)\n"
    "  --schedule NAME    constant|step|exponential|cosine (default constant)\n"
    "  --gamma X, --step-size N, --warmup N   schedule parameters (gamma in (0, 1];\n"
    "                     step decays by gamma every --step-size steps, which it\n"
    "                     needs; exponential by gamma every step; cosine to 0 over\n"
    "                     the run; --warmup steps ramp up to --lr first)\n"
    "  --seed N           random seed, 0 to 2^63-1 (default 1)\n"
    "  --dtype f32|f64    element type (default f32)\n"
    "  --threads N        threads for BLIS and our loops, 0 to %d (default: all\n"
    "                     cores for the zoo models, 1 for the notes' small ones;\n"
    "                     0: all cores; under mpirun: the host's cores / its ranks)\n";
static const char usage_dist[] =
    "  --dist auto|off    auto (default): started by mpirun with several ranks (and\n"
    "                     built with MPI), train the zoo model data-parallel: --batch\n"
    "                     is the global batch, split over the ranks; rank 0 alone\n"
    "                     prints and writes the outputs (docs/distributed.md).\n"
    "                     off: one process, whatever started it\n"
    "  --sync-bn          batchnorm statistics over the whole global batch (summed\n"
    "                     over the ranks), as one process computes them; without\n"
    "                     it each rank normalises with its shard's statistics\n"
    "  --allow-nonfinite  go on when the loss becomes NaN or infinite (by default\n"
    "                     training stops there with an error naming the epoch)\n";
/* the gradient statistics close the training options */
static const char usage_grad_norms[] =
    "  --grad-norms [FILE.svg]  per-layer gradient statistics (zoo models; the notes'\n"
    "                     refuse it): each epoch line gets the mean L2 norm of every\n"
    "                     layer's gradient and of its update relative to its weights\n"
    "                     (--json: \"grad_norms\" and \"update_ratios\", layer -> value),\n"
    "                     plotted against depth (a line per epoch) and epochs (a line\n"
    "                     per layer) in FILE.svg (default OUT/MODEL-grad-norms.svg)\n"
    "  --grad-norm-interval N  with --grad-norms, also a line with the means over\n"
    "                     every N steps (N >= 1)\n";
/* with CLI_MAX_EPOCHS */
static const char usage_augment[] =
    "augmentation and validation (zoo models):\n"
    "  --augment [SPEC]   augment the training images, new draws every epoch, the same\n"
    "                     for the same --seed at any thread count.  SPEC: crop=N (pad\n"
    "                     N zeros on each side, take a random window of the image's\n"
    "                     size; N from 1 to its side), flip (mirror left-right half\n"
    "                     the time), both (crop=4,flip), none, or default (also no\n"
    "                     SPEC): crop=4,flip for CIFAR-10 models, crop=2 for the\n"
    "                     Fashion-MNIST ones (no flips: the same files may hold\n"
    "                     MNIST digits, which a mirror spoils; add flip for clothes)\n"
    "  --val-split F      hold out the fraction F (0 < F < 1) of the training set,\n"
    "                     chosen by --seed, as a validation set measured every epoch\n"
    "                     (val loss and accuracy in the lines, --json and --plot);\n"
    "                     at least one sample on each side\n"
    "  --early-stop N     stop after N epochs (1 to %d) without a lower validation\n"
    "                     loss and keep the best epoch's parameters: --save then holds\n"
    "                     the checkpoint of that epoch (written when it improves) and\n"
    "                     --export its model; needs --val-split (0: no stopping)\n";
static const char usage_output[] =
    "output:\n"
    "  --json             one JSON object per epoch on stdout, every epoch of every\n"
    "                     model (the lines for people may skip some), no progress bar\n"
    "  --out DIR          where outputs go by default (default " DEFAULT_OUT "; 'none': nowhere)\n"
    "  --save FILE        checkpoint (safetensors), written atomically after each epoch\n"
    "                     (the notes' models: after the last one)\n"
    "  --resume FILE      continue from a checkpoint of the same model, with its\n"
    "                     recipe (optimizer, --lr, --batch, --seed, --momentum,\n"
    "                     --weight-decay, --clip-norm, the schedule, --max-batches,\n"
    "                     the limits, --standardize, --classes, --dtype) unless a\n"
    "                     flag gives another value (a notice says so); another\n"
    "                     --optim or --dtype is refused (the file holds that\n"
    "                     optimizer's state)\n"
    "  --init-from FILE   a new run (zoo models) from the parameters and batchnorm\n"
    "                     running statistics of any safetensors file: a checkpoint,\n"
    "                     or PyTorch's state_dict: P.w is looked up as P.w, then\n"
    "                     P.weight, P.b as P.bias, a batchnorm's P.gamma/P.beta as\n"
    "                     P.weight/P.bias, \"module.\" dropped; F16, BF16 converted;\n"
    "                     every shape checked; a missing name shows the closest\n"
    "                     names in the file (not with --resume)\n"
    "  --plot FILE.svg    training curves (loss above, accuracy below, per epoch; the\n"
    "                     resumed epochs too); curve-fit: the fits against the target;\n"
    "                     perceptron-and/-or: the decision boundary over the inputs,\n"
    "                     and the total error per epoch in FILE-errors.svg (xor and\n"
    "                     backprop-example have no plot)\n"
    "  --dot FILE         the graph (forward + backward) as Graphviz DOT (FILE.dot,\n"
    "                     .gv), or rendered by its extension (.svg, .png, .pdf, ...;\n"
    "                     the formats: nabla dot --help)\n"
    "  --export FILE      the trained model as ONNX, after the last epoch (as nabla "
    "export)\n"
    "The notes' small models (perceptron-and/-or, xor, backprop-example, curve-fit)\n"
    "refuse the data options (--data to --max-batches) and the schedule options.\n"
    "An output that cannot be written (its directory missing or read-only, or the\n"
    "name of a directory or special file) fails before training (exit status 1).\n"
    "\nmodels:\n";

static void usage(FILE *fp)
{
	fputs(usage_model, fp);
	fprintf(fp, usage_training, CLI_MAX_EPOCHS, CLI_MAX_BATCH, CLI_MAX_THREADS);
	fputs(usage_dist, fp);
	fputs(usage_grad_norms, fp);
	fprintf(fp, usage_augment, CLI_MAX_EPOCHS);
	fputs(usage_output, fp);
	cli_model_list(fp, true);
}

/* a class id of one to three digits at *s (nothing else: no sign, no
 * space, not empty), 0 to 255; *s moves past it; -1 otherwise */
static int class_id(const char **s)
{
	int v = 0, n = 0;
	for (; n < 4 && **s >= '0' && **s <= '9'; n++, (*s)++)
		v = 10 * v + (**s - '0');
	return n >= 1 && n <= 3 && v <= 255 ? v : -1;
}

bool train_parse_classes(const char *v, int c[2])
{
	int a = class_id(&v);
	if (a < 0 || *v++ != ',')
		return false;
	int b = class_id(&v);
	if (b < 0 || *v || a == b)
		return false;
	c[0] = a, c[1] = b;
	return true;
}

/* DIR/<model><suffix> into buf (the directory is created); NULL after a
 * message when the directory cannot be made or the name does not fit (a
 * name cut short would make two outputs one file) */
static const char *out_path(char *buf, size_t n, const char *dir, const char *model,
                            const char *suffix)
{
	char shown[256];
	if ((size_t)snprintf(buf, n, "%s/%s%s", dir, model, suffix) >= n) {
		fprintf(stderr, "nabla train: --out %s: the directory's name is too long\n",
		        nb__shown(dir, shown, sizeof shown));
		return NULL;
	}
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		fprintf(stderr, "nabla train: cannot create %s: %s\n",
		        nb__shown(dir, shown, sizeof shown), strerror(errno));
		return NULL;
	}
	return buf;
}

/* The files the run will write, checked before it starts: each one
 * writable, and no two the same file (one would overwrite the other after
 * both were reported written): -1, or 2 or 1 after a message. */
static int check_outputs(const train_args *a)
{
	const char *const flags[] = {"--save", "--plot", "--dot", "--export", "--grad-norms"};
	const char *const paths[] = {a->save, a->plot, a->dot_path, a->export_path,
	                             a->grad_norms_plot};
	for (int k = 0; k < 5; k++)
		if (paths[k] && !cli_check_output("train", flags[k], paths[k]))
			return 1;
	for (int k = 0; k < 5; k++)
		for (int j = 0; j < k; j++)
			if (paths[j] && paths[k] && cli_same_file(paths[j], paths[k])) {
				char shown[256];
				fprintf(stderr, "nabla train: %s and %s name the same file, %s\n",
				        flags[j], flags[k],
				        nb__shown(paths[k], shown, sizeof shown));
				return 2;
			}
	return -1;
}

/* --compare-optim: the learning rate stays 0 (each optimizer's default)
 * unless given */
static int run_compare(train_args *a, const char *out, bool model_given)
{
	if (!model_given)
		a->model = "spirals";
	if (strcmp(a->model, "spirals") && !nb_zoo_find(a->model)) {
		fprintf(stderr,
		        "nabla train: --compare-optim trains 'spirals' or a zoo model, not '%s'\n",
		        a->model);
		return 2;
	}
	if (a->grad_norms) {
		fprintf(stderr, "nabla train: --grad-norms applies to one model's training, not "
		                "--compare-optim\n");
		return 2;
	}
	if (a->save || a->resume || a->dot_path || a->export_path ||
	    a->schedule != NB_SCHED_CONSTANT || a->warmup || (int)a->optim >= 0) {
		fprintf(stderr, "nabla train: --compare-optim trains three models with constant "
		                "learning rates; --optim, --save, --resume, --dot, --export, "
		                "--schedule and --warmup do not apply\n");
		return 2;
	}
	if (a->augment || a->val_split > 0 || a->early_stop > 0) {
		fprintf(stderr, "nabla train: --compare-optim compares plain training runs; "
		                "--augment, --val-split and --early-stop do not apply\n");
		return 2;
	}
	const nb_zoo_entry *z = nb_zoo_find(a->model);
	if (z) { /* a zoo model's epochs and batch */
		if (!a->epochs)
			a->epochs = z->recipe.epochs;
		if (!a->batch)
			a->batch = z->recipe.batch;
	}
	static char plot[CLI_PATH_MAX];
	char name[128];
	snprintf(name, sizeof name, "compare-optim-%s", a->model);
	if (!a->plot && strcmp(out, "none") &&
	    !(a->plot = out_path(plot, sizeof plot, out, name, ".svg")))
		return 1;
	if (check_outputs(a) >= 0)
		return 1;
	nb_set_num_threads(a->threads >= 0 ? a->threads : strcmp(a->model, "spirals") ? 0 : 1);
	return compare_optim(a);
}

/* The options only the zoo models take (data, batches per epoch, learning
 * rate schedules); the notes' models refuse them. */
static const char *const zoo_only[] = {
    "--data",        "--classes",   "--standardize", "--train-limit", "--test-limit",
    "--max-batches", "--schedule",  "--gamma",       "--step-size",   "--warmup",
    "--augment",     "--val-split", "--early-stop",  "--grad-norms",  "--grad-norm-interval",
    "--init-from"};

/* the option argv[i] names, without "=value" */
static bool is_option(const char *arg, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(arg, name, n) && (arg[n] == 0 || arg[n] == '=');
}

/* what the command line asked besides train_args */
typedef struct train_flags {
	const char *out;
	bool compare, compare_depth, model_given;
	const char *zoo_flag; /* the first zoo-only option given */
	train_given given;    /* every option given */
} train_flags;

/* parse_arg's result when argv[i] was taken and parsing goes on */
#define NEXT_ARG (-1)

/* argv[*i] when it is a numeric option: NEXT_ARG, 2 after a message, or 0
 * when it is none of them */
static int parse_number(int argc, char **argv, int *i, train_args *a)
{
	const char *v;
	long n;
	double d;
#define INT_OPT(NAME, FIELD, MIN, MAX)                                                             \
	if ((v = cli_opt_value(argc, argv, i, NAME))) {                                            \
		if (!cli_parse_long("train", NAME, v, MIN, MAX, &n))                               \
			return 2;                                                                  \
		FIELD = n;                                                                         \
		return NEXT_ARG;                                                                   \
	}
#define NUM_OPT(NAME, FIELD, MIN, MIN_OPEN, MAX, MAX_OPEN)                                         \
	if ((v = cli_opt_value(argc, argv, i, NAME))) {                                            \
		if (!cli_parse_num("train", NAME, v, MIN, MIN_OPEN, MAX, MAX_OPEN, &d))            \
			return 2;                                                                  \
		FIELD = d;                                                                         \
		return NEXT_ARG;                                                                   \
	}
	INT_OPT("--epochs", a->epochs, 1, CLI_MAX_EPOCHS)
	INT_OPT("--batch", a->batch, 1, CLI_MAX_BATCH)
	INT_OPT("--seed", a->seed, 0, LONG_MAX)
	INT_OPT("--threads", a->threads, 0, CLI_MAX_THREADS)
	INT_OPT("--train-limit", a->train_limit, 1, LONG_MAX)
	INT_OPT("--test-limit", a->test_limit, 1, LONG_MAX)
	INT_OPT("--max-batches", a->max_batches, 1, LONG_MAX)
	INT_OPT("--step-size", a->step_size, 1, LONG_MAX)
	INT_OPT("--warmup", a->warmup, 0, LONG_MAX)
	INT_OPT("--grad-norm-interval", a->grad_norm_interval, 1, LONG_MAX)
	/* 0 included: the optimizer keeps the parameters as they are */
	NUM_OPT("--lr", a->lr, 0, false, INFINITY, false)
	NUM_OPT("--momentum", a->momentum, 0, false, 1, true)
	NUM_OPT("--weight-decay", a->weight_decay, 0, false, INFINITY, false)
	NUM_OPT("--clip-norm", a->clip_norm, 0, false, INFINITY, false)
	NUM_OPT("--gamma", a->gamma, 0, true, 1, false)
	INT_OPT("--early-stop", a->early_stop, 0, CLI_MAX_EPOCHS)
	NUM_OPT("--val-split", a->val_split, 0, true, 1, true)
#undef INT_OPT
#undef NUM_OPT
	return cli_missing_value ? 2 : 0; /* a missing value: already reported */
}

/* argv[*i] when it is an option with a name or path for its value:
 * NEXT_ARG, 2 after a message, or 0 when it is none of them */
static int parse_named(int argc, char **argv, int *i, train_args *a, train_flags *f)
{
	const char *v;
	if ((v = cli_opt_value(argc, argv, i, "--model"))) {
		a->model = v;
		f->model_given = true;
	} else if ((v = cli_opt_value(argc, argv, i, "--data"))) {
		if (!*v) {
			fprintf(stderr, "nabla train: --data is empty\n");
			return 2;
		}
		a->data = v;
	} else if ((v = cli_opt_value(argc, argv, i, "--save"))) {
		a->save = v;
	} else if ((v = cli_opt_value(argc, argv, i, "--resume"))) {
		a->resume = v;
	} else if ((v = cli_opt_value(argc, argv, i, "--init-from"))) {
		a->init_from = v;
	} else if ((v = cli_opt_value(argc, argv, i, "--plot"))) {
		a->plot = v;
	} else if ((v = cli_opt_value(argc, argv, i, "--dot"))) {
		a->dot_path = v;
		if (!cli_graph_format("train", v, NULL)) /* an extension it cannot write */
			return 2;
	} else if (!strcmp(argv[*i], "--augment") && (*i + 1 >= argc || argv[*i + 1][0] == '-')) {
		a->augment = "default"; /* no SPEC */
	} else if ((v = cli_opt_value(argc, argv, i, "--augment"))) {
		a->augment = v;
	} else if ((v = cli_opt_value(argc, argv, i, "--export"))) {
		a->export_path = v;
	} else if ((v = cli_opt_value(argc, argv, i, "--out"))) {
		f->out = v;
	} else if ((v = cli_opt_value(argc, argv, i, "--classes"))) {
		if (!train_parse_classes(v, a->classes)) {
			fprintf(stderr,
			        "nabla train: --classes wants two different class ids, e.g. 2,4\n");
			return 2;
		}
	} else if ((v = cli_opt_value(argc, argv, i, "--optim"))) {
		a->optim = nb_optim_kind_from_name(v);
		if ((int)a->optim < 0) {
			char sh[128];
			fprintf(stderr,
			        "nabla train: unknown optimizer '%s' (sgd, momentum, nesterov, "
			        "rmsprop, adam, adamw)\n",
			        nb__shown(v, sh, sizeof sh));
			return 2;
		}
	} else if ((v = cli_opt_value(argc, argv, i, "--schedule"))) {
		a->schedule = nb_schedule_kind_from_name(v);
		if ((int)a->schedule < 0) {
			char sh[128];
			fprintf(stderr,
			        "nabla train: unknown schedule '%s' (constant, step, exponential, "
			        "cosine)\n",
			        nb__shown(v, sh, sizeof sh));
			return 2;
		}
	} else if ((v = cli_opt_value(argc, argv, i, "--dtype"))) {
		if (!cli_parse_dtype("train", v, &a->dtype))
			return 2;
	} else if ((v = cli_opt_value(argc, argv, i, "--dist"))) {
		if (strcmp(v, "auto") && strcmp(v, "off")) {
			fprintf(stderr,
			        "nabla train: --dist wants auto (data-parallel over the ranks "
			        "mpirun started) or off (one process), not '%s'\n",
			        v);
			return 2;
		}
		a->dist_off = !strcmp(v, "off");
	} else {
		return cli_missing_value ? 2 : 0; /* a missing value: already reported */
	}
	return NEXT_ARG;
}

/* --grad-norms [FILE.svg] (or --grad-norms=FILE.svg): the file is the next
 * argument unless that is an option; NEXT_ARG, or 2 after a message */
static int parse_grad_norms(int argc, char **argv, int *i, train_args *a)
{
	const char *arg = argv[*i], *v = NULL;
	if (arg[strlen("--grad-norms")] == '=')
		v = arg + strlen("--grad-norms=");
	else if (*i + 1 < argc && argv[*i + 1][0] != '-')
		v = argv[++*i];
	a->grad_norms = true;
	if (!v)
		return NEXT_ARG; /* the plot goes under --out */
	size_t n = strlen(v);
	if (n < 5 || strcasecmp(v + n - 4, ".svg")) {
		fprintf(
		    stderr,
		    "nabla train: --grad-norms: '%s' is not an .svg file name (the plot is SVG)\n",
		    v);
		return 2;
	}
	a->grad_norms_plot = v;
	return NEXT_ARG;
}

/* every option, for the suggestion after a mistyped one */
static const char *const options[] = {"--model",
                                      "--data",
                                      "--classes",
                                      "--standardize",
                                      "--train-limit",
                                      "--test-limit",
                                      "--max-batches",
                                      "--augment",
                                      "--val-split",
                                      "--early-stop",
                                      "--compare-optim",
                                      "--epochs",
                                      "--batch",
                                      "--optim",
                                      "--lr",
                                      "--momentum",
                                      "--weight-decay",
                                      "--clip-norm",
                                      "--schedule",
                                      "--gamma",
                                      "--step-size",
                                      "--warmup",
                                      "--seed",
                                      "--dtype",
                                      "--threads",
                                      "--dist",
                                      "--sync-bn",
                                      "--allow-nonfinite",
                                      "--json",
                                      "--out",
                                      "--save",
                                      "--resume",
                                      "--init-from",
                                      "--plot",
                                      "--dot",
                                      "--export",
                                      "--grad-norms",
                                      "--grad-norm-interval",
                                      "--compare-depth",
                                      "--help",
                                      NULL};

/* argv[*i]: NEXT_ARG, or the exit status (0 after --help) */
static int parse_arg(int argc, char **argv, int *i, train_args *a, train_flags *f)
{
	const char *arg = argv[*i];
	for (size_t k = 0; k < sizeof zoo_only / sizeof *zoo_only && !f->zoo_flag; k++)
		if (is_option(arg, zoo_only[k]))
			f->zoo_flag = zoo_only[k];
	if (!strncmp(arg, "--", 2)) {
		if (f->given.n == (int)(sizeof f->given.opt / sizeof *f->given.opt)) {
			fprintf(stderr, "nabla train: more than %d options\n", f->given.n);
			return 2;
		}
		f->given.opt[f->given.n++] = arg;
	}
	if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
		usage(stdout);
		return 0;
	}
	bool *flag = !strcmp(arg, "--json")              ? &a->json
	             : !strcmp(arg, "--standardize")     ? &a->standardize
	             : !strcmp(arg, "--compare-optim")   ? &f->compare
	             : !strcmp(arg, "--compare-depth")   ? &f->compare_depth
	             : !strcmp(arg, "--allow-nonfinite") ? &a->allow_nonfinite
	             : !strcmp(arg, "--sync-bn")         ? &a->sync_bn
	                                                 : NULL;
	if (flag) {
		*flag = true;
		return NEXT_ARG;
	}
	if (is_option(arg, "--grad-norms"))
		return parse_grad_norms(argc, argv, i, a);
	int rc = parse_number(argc, argv, i, a);
	if (rc == 0)
		rc = parse_named(argc, argv, i, a, f);
	if (rc == 0) {
		cli_unknown_option("train", arg, options);
		return 2;
	}
	return rc;
}

/* The model's recipe where no flag was given, and the optimizer flags
 * checked against the optimizer: -1, or the exit status after a message. */
static int apply_recipe(train_args *a, const cli_model_info *m)
{
	const nb_zoo_recipe *r = &m->recipe;
	if (!a->epochs)
		a->epochs = r->epochs;
	if (a->lr < 0)
		a->lr = r->lr;
	if (!a->batch)
		a->batch = r->batch;
	if ((int)a->optim < 0)
		a->optim = r->optim;
	if (a->momentum >= 0 && !optim_has_momentum(a->optim)) {
		fprintf(stderr,
		        "nabla train: --momentum does not apply to %s (momentum, nesterov, "
		        "adam, adamw)\n",
		        nb_optim_kind_name(a->optim));
		return 2;
	}
	/* not given (-1): the recipe's, where it has one (0 there is the
	 * optimizer's default, which -1 keeps: make_optim) and the optimizer
	 * has a momentum (a recipe's for sgd would be saved with the
	 * checkpoint, and its resume refused as --momentum with sgd) */
	if (a->momentum < 0 && r->momentum > 0 && optim_has_momentum(a->optim))
		a->momentum = r->momentum;
	if (a->weight_decay < 0 && r->weight_decay > 0)
		a->weight_decay = r->weight_decay;
	return -1;
}

/* The flags a model refuses: -1, or the exit status after a message. */
static int check_model_flags(const train_args *a, const train_flags *f, const cli_model_info *m)
{
	if (m->train && f->zoo_flag) {
		fprintf(stderr, "nabla train: %s applies to the zoo models, not %s\n", f->zoo_flag,
		        m->name);
		return 2;
	}
	if (m->train && a->batch && a->batch != m->recipe.batch) {
		fprintf(stderr, "nabla train: --batch does not apply to %s: it trains on %s\n",
		        m->name, m->fixed_batch);
		return 2;
	}
	if (a->plot && !m->plot_suffix) {
		fprintf(stderr, "nabla train: --plot: %s has no plot\n", m->name);
		return 2;
	}
	return -1;
}

/* The outputs under --out that were not named: -1, or 1 after a message. */
static int default_outputs(train_args *a, const cli_model_info *m, const char *out)
{
	static char save[CLI_PATH_MAX], plot[CLI_PATH_MAX], dot[CLI_PATH_MAX], gn[CLI_PATH_MAX];
	if (!strcmp(out, "none"))
		return -1;
	if (!a->dot_path && !(a->dot_path = out_path(dot, sizeof dot, out, a->model, ".dot")))
		return 1;
	if (!m->train && !a->save &&
	    !(a->save = out_path(save, sizeof save, out, a->model, ".safetensors")))
		return 1;
	if (m->plot_suffix && !a->plot &&
	    !(a->plot = out_path(plot, sizeof plot, out, a->model, m->plot_suffix)))
		return 1;
	if (a->grad_norms && !a->grad_norms_plot &&
	    !(a->grad_norms_plot = out_path(gn, sizeof gn, out, a->model, "-grad-norms.svg")))
		return 1;
	return -1;
}

/* the model named by --model, or NULL after a message listing them */
static bool find_model(const char *name, cli_model_info *m)
{
	if (cli_model_find(name, m))
		return true;
	char sh[128];
	fprintf(stderr, "nabla train: unknown model '%s'; models:", nb__shown(name, sh, sizeof sh));
	cli_model_info k;
	for (int i = 0; cli_model_at(i, &k); i++)
		fprintf(stderr, " %s", k.name);
	fprintf(stderr, "\n");
	return false;
}

/* --compare-depth: the four deep-* models with their recipe (or the flags'
 * optimizer, lr, epochs and batch) on Fashion-MNIST */
static int run_compare_depth(train_args *a, const train_flags *f)
{
	if (f->model_given) {
		fprintf(stderr,
		        "nabla train: --compare-depth trains its four models (deep-sigmoid, "
		        "deep-relu-he, deep-relu-bn, deep-residual); --model does not apply\n");
		return 2;
	}
	if (a->grad_norms || a->save || a->resume || a->dot_path || a->export_path ||
	    a->schedule != NB_SCHED_CONSTANT || a->warmup || a->standardize) {
		fprintf(stderr,
		        "nabla train: --compare-depth records the gradient norms itself and "
		        "trains four models at a constant rate; --grad-norms, --save, "
		        "--resume, --dot, --export, --schedule, --warmup and --standardize do "
		        "not apply\n");
		return 2;
	}
	cli_model_info m;
	if (!cli_model_find("deep-sigmoid", &m)) /* the four share one recipe */
		return 1;
	int rc;
	if ((rc = apply_recipe(a, &m)) >= 0)
		return rc;
	a->model = "compare-depth";
	static char plot[CLI_PATH_MAX];
	if (!a->plot && strcmp(f->out, "none") &&
	    !(a->plot = out_path(plot, sizeof plot, f->out, "compare-depth", ".svg")))
		return 1;
	if (check_outputs(a) >= 0)
		return 1;
	char acc[1024];
	if (a->plot) {
		depth_accuracy_path(acc, sizeof acc, a->plot);
		if (!cli_check_output("train", "--plot", acc))
			return 1;
	}
	/* small MLPs: one thread is fastest (see the notes' models) */
	nb_set_num_threads(a->threads >= 0 ? a->threads : 1);
	if (!a->json)
		fprintf(
		    stderr,
		    "nabla train: --compare-depth: deep-sigmoid, deep-relu-he, deep-relu-bn and "
		    "deep-residual, %d epochs, optimizer %s, lr %g, batch %d, seed %llu, %d "
		    "threads\n",
		    a->epochs, nb_optim_kind_name(a->optim), a->lr, a->batch,
		    (unsigned long long)a->seed, nb_num_threads());
	return compare_depth(a);
}

/* the schedule flags against --schedule: -1, or 2 after a message */
static int check_schedule(const train_args *a, const train_flags *f)
{
	bool gamma = train_given_has(&f->given, "--gamma");
	bool step_size = train_given_has(&f->given, "--step-size");
	if (a->grad_norm_interval && !a->grad_norms) {
		fprintf(stderr,
		        "nabla train: --grad-norm-interval applies with --grad-norms only\n");
		return 2;
	}
	if (gamma && a->schedule != NB_SCHED_STEP && a->schedule != NB_SCHED_EXPONENTIAL) {
		fprintf(stderr,
		        "nabla train: --gamma applies to --schedule step or exponential only\n");
		return 2;
	}
	if (step_size && a->schedule != NB_SCHED_STEP) {
		fprintf(stderr, "nabla train: --step-size applies to --schedule step only\n");
		return 2;
	}
	if (!step_size && a->step_size <= 0 && a->schedule == NB_SCHED_STEP) {
		fprintf(stderr, "nabla train: --schedule step needs --step-size N (steps between "
		                "decays)\n");
		return 2;
	}
	return -1;
}

/* --augment's spec against the model, --early-stop against --val-split
 * (either may come from a checkpoint): -1, or 2 after a message */
static int check_validation(const train_args *a, const cli_model_info *m)
{
	nb_augment aug;
	int rc;
	if (m->zoo && a->augment && (rc = augment_parse(a->augment, m->zoo, &aug)) >= 0)
		return rc;
	if (a->early_stop > 0 && a->val_split <= 0) {
		fprintf(stderr, "nabla train: --early-stop needs a validation set to watch: add "
		                "--val-split F (e.g. --val-split 0.1)\n");
		return 2;
	}
	return -1;
}

/* Data-parallel training under mpirun (--dist auto): the ranks, the
 * threads per rank, rank 0 alone printing and writing.  -1, or the exit
 * status after a message. */
static int start_dist(train_args *a, const cli_model_info *m)
{
	int ranks = nb_dist_size(a->dist);
	if (ranks < 2)
		return -1;
	if (m->train) {
		fprintf(stderr,
		        "nabla train: %s trains in one process; data-parallel training (%d ranks) "
		        "is for the zoo models (or --dist off)\n",
		        m->name, ranks);
		return 2;
	}
	if (a->batch < ranks) {
		fprintf(stderr,
		        "nabla train: --batch %d is smaller than the %d ranks: every rank needs at "
		        "least one sample of each (global) batch\n",
		        a->batch, ranks);
		return 2;
	}
	if (a->threads < 0) { /* the host's cores shared by its ranks */
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		int per = (int)(cores / nb_dist_local_size(a->dist));
		nb_set_num_threads(per > 0 ? per : 1);
	}
	if (nb_dist_rank(a->dist) != 0) {
		/* rank 0 prints the lines, the JSON and the bar, and writes the
		 * files; the others report errors only */
		if (!freopen("/dev/null", "w", stdout)) {
			fprintf(stderr, "nabla train: rank %d: cannot silence stdout\n",
			        nb_dist_rank(a->dist));
			return 1;
		}
	}
	return -1;
}

/* cmd_train without the ranks' start and end */
static int train_command(int argc, char **argv, train_args *ap)
{
	train_args a = *ap;
	train_flags f = {.out = DEFAULT_OUT};
	for (int i = 1; i < argc; i++) {
		int rc = parse_arg(argc, argv, &i, &a, &f);
		if (rc != NEXT_ARG)
			return rc;
	}
	char err[512];
	nb_dist_opts dopts = {.off = a.dist_off};
	if (nb_dist_init(NULL, NULL, dopts, &ap->dist, err, sizeof err) != NB_OK) {
		fprintf(stderr, "nabla train: %s\n", err);
		return 2;
	}
	a.dist = ap->dist;
	int rc;
	if (f.compare && f.compare_depth) {
		fprintf(stderr, "nabla train: --compare-optim and --compare-depth are two separate "
		                "experiments: give one\n");
		return 2;
	}
	if (a.init_from && (a.resume || f.compare || f.compare_depth || !*a.init_from)) {
		fprintf(stderr, "nabla train: --init-from %s\n",
		        a.resume    ? "starts a new run from other weights, --resume goes on with "
		                      "one: give one of them"
		        : f.compare ? "does not apply to --compare-optim (each run starts from the "
		                      "same seeded weights)"
		        : f.compare_depth
		            ? "does not apply to --compare-depth (each model starts from "
		              "the same seed)"
		            : "is empty");
		return 2;
	}
	if ((f.compare || f.compare_depth) && nb_dist_size(a.dist) > 1) {
		fprintf(stderr, "nabla train: %s trains in one process (or --dist off)\n",
		        f.compare ? "--compare-optim" : "--compare-depth");
		return 2;
	}
	if (f.compare)
		return (rc = check_schedule(&a, &f)) >= 0 ? rc
		                                          : run_compare(&a, f.out, f.model_given);
	if (f.compare_depth)
		return (rc = check_schedule(&a, &f)) >= 0 ? rc : run_compare_depth(&a, &f);
	cli_model_info m;
	if (!find_model(a.model, &m))
		return 2;
	/* --resume: the checkpoint's recipe where no flag was given */
	if (a.resume && (rc = resume_recipe(&a, &f.given, m.recipe.epochs)) >= 0)
		return rc;
	if ((rc = check_schedule(&a, &f)) >= 0 || (rc = check_model_flags(&a, &f, &m)) >= 0 ||
	    (rc = check_validation(&a, &m)) >= 0)
		return rc;
	/* the notes' small models run fastest on one thread: BLIS would split
	 * even their 2x2 products between threads */
	nb_set_num_threads(a.threads >= 0 ? a.threads : m.train ? 1 : 0);
	if ((rc = apply_recipe(&a, &m)) >= 0 || (rc = start_dist(&a, &m)) >= 0)
		return rc;
	/* only rank 0 writes: the other ranks neither check nor create its
	 * outputs, which are on rank 0's host (a directory there need not
	 * exist on theirs) */
	if (nb_dist_rank(a.dist) != 0)
		a.save = a.plot = a.dot_path = a.export_path = a.grad_norms_plot = NULL;
	else if ((rc = default_outputs(&a, &m, f.out)) >= 0 || (rc = check_outputs(&a)) >= 0)
		return rc;
	const int ranks = nb_dist_size(a.dist);
	if (!a.json && nb_dist_rank(a.dist) == 0) {
		fprintf(
		    stderr,
		    "nabla train: model %s, %d epochs%s, optimizer %s, lr %g, batch %d, %s, seed "
		    "%llu, %d threads\n",
		    a.model, a.epochs, a.resume ? " in all (resumed)" : "",
		    nb_optim_kind_name(a.optim), a.lr, a.batch, nb_dtype_name(a.dtype),
		    (unsigned long long)a.seed, nb_num_threads());
		int64_t lo = a.batch / ranks, hi = nb_dist_local_batch(a.dist, a.batch);
		char per[64];
		snprintf(per, sizeof per, lo == hi ? "%lld" : "%lld or %lld", (long long)hi,
		         (long long)lo);
		if (ranks > 1)
			fprintf(stderr,
			        "nabla train: rank 0 of %d, global batch %d (%s per rank)\n", ranks,
			        a.batch, per);
	}
	if (m.train)
		return m.train(&a);
	return train_zoo(&a, m.zoo);
}

int cmd_train(int argc, char **argv)
{
	train_args a = {.model = DEFAULT_MODEL,
	                .seed = 1,
	                .dtype = NB_F32,
	                .classes = {2, 4},
	                .threads = -1, /* -1: the model's default */
	                .optim = -1,
	                .lr = -1, /* -1: not given, the model's */
	                .momentum = -1,
	                .weight_decay = -1,
	                .gamma = 0.1};
	int rc = train_command(argc, argv, &a);
	/* an error on one rank ends every rank (the others would wait for it
	 * in the next collective) */
	if (rc)
		nb_dist_abort(a.dist, rc);
	nb_dist_finalize(a.dist);
	return rc;
}
