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

/* Option parsing helpers: parse a number from an option's argument, with a
 * clear message on failure.  Return false (after printing) when bad. */
bool cli_parse_int(const char *opt, const char *s, long *out);
bool cli_parse_double(const char *opt, const char *s, double *out);
/* "--name=value" or "--name value": returns the value or NULL (advancing *i) */
const char *cli_opt_value(int argc, char **argv, int *i, const char *name);
/* set when an option was given without its value (already reported) */
extern bool cli_missing_value;

/* A small seeded generator (splitmix64) for the tools' synthetic data;
 * *state is the seed and advances. */
uint64_t cli_rng_next(uint64_t *state);
double cli_rng_uniform(uint64_t *state); /* [0, 1) */
double cli_rng_normal(uint64_t *state);  /* N(0, 1) */

#endif
