/* What `nabla eval` and `nabla predict` share (classify.c): their common
 * options, a zoo model with trained weights, and its test set. */
#ifndef NB_CLASSIFY_H
#define NB_CLASSIFY_H

#include "cli.h"

typedef struct classify_args {
	const char *cmd; /* "eval" or "predict" */
	const char *model, *checkpoint, *init_from, *data;
	long batch, threads, test_limit; /* 0: the default */
	int classes[2];                  /* the binary models' two classes */
	bool classes_given;              /* by --classes (else the checkpoint's) */
	bool json;
} classify_args;

/* the model, its weights and its test set */
typedef struct classify_ctx {
	nb_graph *g;
	nb_model *m; /* g's */
	nb_dataset test;
	const nb_zoo_entry *z;
	const char *names[10]; /* class names (num_classes of them) */
	bool standardized;     /* the pixels are standardised, not in [0, 1] */
} classify_ctx;

/* argv[*i] when it is a common option: 1 when it was (value parsed), 0 when
 * not, -1 after a message */
int classify_option(int argc, char **argv, int *i, classify_args *a);
/* the options' usage lines */
void classify_usage(FILE *fp);
/* Check the arguments and the weights' file, build the model, load the
 * weights and the test set: 0, or the exit status after one message.
 * outputs[0..n) (NULL entries skipped) are checked as writable before any
 * work, each named by flags[k]. */
int classify_setup(const classify_args *a, classify_ctx *c, const char *const *flags,
                   const char *const *outputs, int n);
void classify_free(classify_ctx *c);

#endif
