/* Shared pieces of the nabla command-line program. */
#ifndef NB_CLI_H
#define NB_CLI_H

#include "nabla.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* A subcommand: run(argc, argv) gets argv[0] = its own name; returns the
 * process exit status (0 ok, 1 failure, 2 usage error). */
typedef struct cli_command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
} cli_command;

int cmd_gradcheck(int argc, char **argv);
int cmd_dot(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_ewma(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_eval(int argc, char **argv);    /* cmd_eval.c */
int cmd_predict(int argc, char **argv); /* cmd_predict.c */

/* Limits of the numeric options every command shares (documented in the
 * commands' --help). */
#define CLI_MAX_THREADS 1024   /* --threads */
#define CLI_MAX_BATCH 1048576  /* --batch (2^20) */
#define CLI_MAX_EPOCHS 1000000 /* --epochs */

/* The one parser of numeric options: the whole of s must be a decimal
 * integer (an optional '-', digits; no spaces, '+' or hex) within
 * [min, max], or a finite decimal number (no hex, inf or nan) within the
 * bounds, each bound open or closed.  Otherwise one line "nabla CMD: OPT
 * must be ..., got 'S'" goes to stderr and false is returned. */
bool cli_parse_long(const char *cmd, const char *opt, const char *s, long min, long max, long *out);
bool cli_parse_num(const char *cmd, const char *opt, const char *s, double min, bool min_open,
                   double max, bool max_open, double *out);
/* "--name=value" or "--name value": returns the value or NULL (advancing *i) */
const char *cli_opt_value(int argc, char **argv, int *i, const char *name);
/* set when an option was given without its value (already reported) */
extern bool cli_missing_value;
/* "f32" or "f64"; prints "nabla <cmd>: ..." and returns false otherwise */
bool cli_parse_dtype(const char *cmd, const char *s, nb_dtype *out);
/* The edit distance between a and b (insertions, deletions, changes and
 * swaps of neighbours count one each). */
int cli_edit_distance(const char *a, const char *b);
/* The one of names[0..n) that s (up to a '=') is a slip of, or NULL when
 * none is within 2 edits and a third of its length. */
const char *cli_nearest(const char *s, const char *const *names, int n);
/* "nabla CMD: unknown option 'ARG'; did you mean --NAME? (see nabla CMD
 * --help)" on stderr; options: the command's option names, NULL-terminated */
void cli_unknown_option(const char *cmd, const char *arg, const char *const *options);
/* A data set that could not be read: "nabla CMD: ERR" (the reader's
 * message), and when a file is missing, where the files come from: for
 * Fashion-MNIST `apt install dataset-fashion-mnist` or --data DIR; for
 * CIFAR-10 (cifar) the binaries to put in --data DIR, or --data synthetic. */
void cli_data_error(const char *cmd, const char *model, bool cifar, const char *err);
/* An output file named by flag, checked before any work: not empty, not a
 * directory or special file, in a directory that exists and takes a new
 * file (a probe file is made and removed).  false after one message
 * "nabla CMD: FLAG: PATH: why". */
bool cli_check_output(const char *cmd, const char *flag, const char *path);

/* s made safe for a terminal (nb__shown) in one of four rotating static
 * buffers: up to four in one message */
const char *cli_shown(const char *s);

/* The longest output path the commands build (DIR/<model><suffix>) */
#define CLI_PATH_MAX 4096

/* true when paths a and b name the same file: the same string, the same
 * inode when both exist, or the same directory and name when neither does */
bool cli_same_file(const char *a, const char *b);
/* s as a JSON string literal, quotes included */
void cli_json_string(FILE *fp, const char *s);

/* A model by name for `nabla summary` and `nabla dot` (cli_models.c): a zoo
 * model (nb_zoo_build) or one of the notes' small models (train_notes.c),
 * whose shapes are fixed. */
typedef struct cli_model_args {
	const char *name; /* --model */
	long batch;       /* --batch; 0: the default (1 for zoo models; the
	                   * notes' models have their own and refuse another) */
	nb_dtype dtype;   /* --dtype */
} cli_model_args;

typedef struct cli_model {
	nb_graph *g;
	nb_tensor *loss;
	nb_tensor *x;          /* the input the outputs are computed from */
	nb_tensor *outputs[2]; /* what inference computes: a zoo model's logits
	                        * and probs, a notes model's output */
	int n_outputs;
	nb_model *zoo; /* zoo models: the classifier (the graph's) */
	bool notes;    /* one of the notes' models */
	int64_t batch; /* the batch size the graph was built with */
} cli_model;

/* Parses --model, --batch and --dtype at argv[*i]: 1 when it was one of
 * them, 0 when not, -1 after printing a usage error. */
int cli_model_option(int argc, char **argv, int *i, const char *cmd, cli_model_args *a);
/* Returns 0, or the exit status after printing a message prefixed with
 * "nabla <cmd>: " (2 for an unknown model or a batch the model does not
 * take, 1 when the graph could not be built). */
int cli_model_build(cli_model *m, const char *cmd, const cli_model_args *a);
void cli_model_free(cli_model *m);
/* Write the inference graph computing outs[0..n) (from input) as ONNX
 * (cmd_export.c) and describe what was written on info (may be NULL);
 * returns 0, or 1 after printing the error prefixed with "nabla <cmd>: ". */
int cli_export_onnx(const char *cmd, nb_graph *g, nb_tensor *const *outs, int n, nb_tensor *input,
                    const char *path, bool keep_f64, bool static_batch, FILE *info);
/* The format of a graph written to path (NULL: standard output), for
 * `nabla dot -o` and `nabla train --dot`: format when given (NULL: none;
 * it must agree with a known extension), else path's extension, lower-
 * cased: .dot and .gv give "dot" (DOT text), a format libgvc renders here
 * (nb_graph_render_formats: "svg", "png", "pdf", ...) that format, no
 * extension "dot".  NULL after a message "nabla <cmd>: ..." listing the
 * supported formats when the extension is another. */
const char *cli_graph_format(const char *cmd, const char *path, const char *format);
/* "  name  summary" lines for a usage text: every model (all), or the
 * ones cli_model_build builds */
void cli_model_list(FILE *fp, bool all);

/* The tools' synthetic data and timings use the library's generator
 * (splitmix64: nb__rand_uniform, nb__rand_normal; *state is the seed and
 * advances) and clock (nb__now). */
#include "util/clock.h"
#include "util/rng.h"

#endif
