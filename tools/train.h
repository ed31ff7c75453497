/* `nabla train`: arguments, model table, reporting helpers. */
#ifndef NB_TRAIN_H
#define NB_TRAIN_H

#include "cli.h"

#include <stdint.h>

typedef struct train_args {
	const char *model;
	int epochs; /* 0: the model's default */
	double lr;  /* -1: the model's default; 0 and up: as given */
	int batch;  /* 0: the model's default */
	uint64_t seed;
	nb_dtype dtype;
	bool json;
	bool allow_nonfinite; /* go on when the loss becomes NaN or infinite */
	int threads;
	const char *dot_path; /* write the graph (forward + backward) here */
	/* zoo models on data */
	const char *data; /* directory, or "synthetic"; NULL: the default */
	bool standardize; /* per-channel standardisation of the inputs */
	int64_t train_limit, test_limit, max_batches;
	int classes[2]; /* the binary models' two classes */
	nb_optim_kind optim;
	/* momentum, weight decay: -1 the optimizer's default, 0 and up as given */
	double momentum, weight_decay, clip_norm;
	nb_schedule_kind schedule;
	double gamma;
	int64_t step_size, warmup;
	const char *save, *resume, *plot;
	const char *export_path; /* --export: the trained model as ONNX */
	/* --grad-norms [FILE.svg]: per-layer gradient statistics in the epoch
	 * lines, and their plot at grad_norms_plot (NULL: none) */
	bool grad_norms;
	const char *grad_norms_plot;
	int64_t grad_norm_interval; /* --grad-norm-interval N: also every N steps */
	/* --augment SPEC (train_augment.c): NULL none, "default" the model's */
	const char *augment;
	double val_split; /* --val-split: 0 none, else in (0, 1) */
	int early_stop;   /* --early-stop: patience in epochs, 0 none */
	/* --resume: the checkpoint's best validation loss and its epoch, when
	 * it was measured on the same validation set (0: none) */
	int best_epoch;
	double best_val_loss;
	const char *init_from; /* --init-from: the weights of a safetensors file */
	bool dist_off;         /* --dist off: one process even under mpirun */
	bool sync_bn;          /* --sync-bn: batchnorm statistics over all ranks */
	nb_dist *dist;         /* the ranks (one without MPI or a launcher) */
} train_args;

/* A built model: the graph and its named ends. */
typedef struct model {
	nb_graph *g;
	nb_tensor *x, *y, *out, *loss;
	nb_tensor *pred; /* what --export writes when out is not kept (NULL: out) */
	nb_optim *opt;
} model;

typedef struct epoch_report {
	int epoch, epochs;
	double loss, accuracy, seconds;
	char extra[512];  /* more JSON members, "k": v, ... (may be empty) */
	const char *more; /* still more JSON members (--json only), or NULL */
} epoch_report;

void print_epoch(const train_args *a, const epoch_report *r);
int report_graph_error(nb_graph *g);
/* write --dot if asked, free the graph; 1 (after a message) when --dot
 * could not be written, else 0 */
int finish_model(model *m, const train_args *a);
/* after the last epoch of the notes' models: --save and --export (0, or 1
 * after a message) */
int write_trained(const model *m, const train_args *a);
/* false (after a message naming the epoch and step) when the loss of the
 * step just taken is NaN or infinite, unless --allow-nonfinite */
bool loss_finite(const train_args *a, double loss, int epoch, int64_t step);
/* The per-epoch history of a zoo run (epochs first + 1 .. first + n),
 * kept across --resume in the checkpoint's metadata (train_resume.c):
 * first is 0 unless the resumed file had no history. */
typedef struct train_history {
	double *loss, *tloss, *acc, *tacc;
	double *vloss, *vacc; /* validation: NAN without one */
	int best_epoch;       /* the lowest validation loss so far and its epoch (0: none) */
	double best_val_loss;
	int first, n, cap;
} train_history;
/* the history is saved up to this many epochs (its metadata grows with it) */
#define HISTORY_MAX 10000
int history_init(train_history *h, int cap); /* -1 when out of memory */
void history_free(train_history *h);

/* The options given on the command line, as typed ("--lr" or "--lr=0.1"). */
typedef struct train_given {
	const char *opt[128];
	int n;
} train_given;
bool train_given_has(const train_given *g, const char *name);
/* --classes A,B: two different class ids 0 to 255 (digits alone) into c;
 * false otherwise */
bool train_parse_classes(const char *v, int c[2]);

/* Before --resume loads anything: the checkpoint's recipe (optimizer, lr,
 * batch, seed, momentum, weight decay, clipping, schedule, data limits,
 * dtype) into the fields of a whose flags were not given, a notice for each
 * given flag that overrides it, and a refusal of another --optim or --dtype
 * or of an --epochs (default_epochs when not given) the file has already
 * done.  -1, or the exit status after a message. */
int resume_recipe(train_args *a, const train_given *given, int default_epochs);
/* --resume into the graph g and optimizer o of model `model`: the file's
 * epoch metadata (when present) must be an integer below --epochs and its
 * model name `model`; h (may be NULL) gets the file's history.  The
 * optimizer's lr is set to --lr.  0 with *first_epoch set, or the exit
 * status after a message. */
int resume_checkpoint(nb_graph *g, nb_optim *o, const train_args *a, const char *model,
                      int *first_epoch, train_history *h);
/* --save after `epoch` epochs (atomic), with the recipe and the history h
 * (may be NULL) in its metadata; 0, or 1 after a message */
int save_checkpoint(nb_graph *g, nb_optim *o, const train_args *a, const char *model, int epoch,
                    const train_history *h);

/* --augment (train_augment.c): SPEC is "default" (the model's recipe),
 * "none", or crop=N and/or flip separated by commas; N from 1 to the
 * images' smaller side.  -1 with *out set, or 2 after a message. */
int augment_parse(const char *spec, const nb_zoo_entry *z, nb_augment *out);
/* *a as the spec that gives it back ("crop=4,flip", "flip", "none") */
void augment_spec(const nb_augment *a, char *buf, size_t n);
/* a spec as augment_spec writes it (checks a checkpoint's metadata) */
bool augment_spec_ok(const char *spec);
/* --val-split against the training set's n samples: -1, or 2 after a
 * message saying which side would be empty */
int check_val_split(const train_args *a, int64_t n);

/* the notes' models (train_notes.c) */
int build_perceptron(model *m, const train_args *a, const double w0[2], double b0);
int build_xor(model *m, const train_args *a);
int build_backprop_example(model *m, const train_args *a);
int train_perceptron_and(const train_args *a);
int train_perceptron_or(const train_args *a);
int train_xor(const train_args *a);
int train_backprop_example(const train_args *a);

/* the curve-fitting experiment (train_fit.c): its graph (the network on
 * the training points and on the evaluation grid), and its trainer */
int build_curve_fit(model *m, const train_args *a);
int train_curve_fit(const train_args *a);

/* The models the command line knows, in one list (cli_models.c): the
 * zoo's rows (src/nn/models.c), then the notes' small models, which the
 * CLI trains itself.  A model is one row. */
typedef struct cli_model_info {
	const char *name, *summary;
	nb_zoo_recipe recipe;    /* the default epochs, batch, optimizer, lr, ... */
	const nb_zoo_entry *zoo; /* the zoo model, or NULL: one of the notes' */
	/* the notes' models: */
	int (*train)(const train_args *a);
	int (*build)(model *m, const train_args *a); /* the graph `nabla summary`,
	                                              * `dot` and `export` show
	                                              * (every model has one) */
	const char *fixed_batch;                     /* what their batch is */
	/* --plot's default under --out (zoo models: "-curves.svg"); NULL: no plot */
	const char *plot_suffix;
} cli_model_info;

/* row i of the list (false past its end); the row called name */
bool cli_model_at(int i, cli_model_info *out);
bool cli_model_find(const char *name, cli_model_info *out);
/* the optimizer of a recipe */
nb_optim_opts cli_recipe_optim(const nb_zoo_recipe *r);

/* the model zoo on data (train_data.c) */
int train_zoo(const train_args *a, const nb_zoo_entry *z);
/* the zoo model's training and test data as the flags ask (both freed on
 * failure, after a message) */
int load_zoo_data(const train_args *a, const nb_zoo_entry *z, nb_dataset *train, nb_dataset *test);
/* the optimizer `kind` with the flags' lr, momentum, weight decay and
 * clipping (-1 = the kind's default; 0 and up as written) */
nb_optim *make_optim(const train_args *a, nb_optim_kind kind, nb_graph *g, nb_tensor *loss);
/* whether --momentum applies to kind (its velocity's beta, Adam's beta1):
 * momentum, nesterov, adam, adamw */
bool optim_has_momentum(nb_optim_kind kind);

/* --grad-norms (grad_norms.c): the per-epoch means of a run */
typedef struct gn_log {
	int layers;
	char (*names)[128];
	int n, cap;
	int *epoch;
	double *norm, *ratio; /* n x layers */
} gn_log;
/* "grad_norms": {layer: norm, ...}, "update_ratios": {...} (malloc'd; NULL
 * when out of memory) */
char *gn_json_members(const nb_grad_norms *n);
/* one line for people: the first and last layers' norms and ratios */
void gn_print_text(const nb_grad_norms *n, const char *prefix);
/* a window of --grad-norm-interval steps: a JSON object or a text line */
void gn_print_window(const train_args *a, const nb_grad_norms *n);
int gn_log_add(gn_log *g, const nb_grad_norms *n); /* -1 when out of memory */
void gn_log_free(gn_log *g);
/* norm by depth (a line per epoch), norm by epoch (a line per layer) and
 * update/weight ratio by depth, stacked in one SVG; 0, or 1 after a message */
int gn_write_plot(const gn_log *g, const char *path, const char *model);

/* SGD vs momentum vs Adam from the same initialisation (compare_optim.c) */
int compare_optim(const train_args *a);
/* the vanishing-gradient experiment: the deep-* models side by side
 * (compare_depth.c) */
int compare_depth(const train_args *a);
/* its second plot: --plot FILE.svg -> FILE-accuracy.svg */
void depth_accuracy_path(char *buf, size_t size, const char *plot);

#endif
