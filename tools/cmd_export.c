/*
 * nabla export — a model's inference graph as an ONNX file, with the
 * weights of a checkpoint (docs/onnx.md).
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: nabla export --model NAME [--checkpoint FILE] -o FILE.onnx\n"
	        "                    [--dtype f32|f64] [--batch N] [--static-batch]\n\n"
	        "Writes the model's inference graph as ONNX (opset 13): batch normalisation\n"
	        "with its running statistics, dropout removed, the weights as initializers.\n"
	        "Inputs and outputs keep nabla's names: zoo models take x [N, ...] and give\n"
	        "their logits and probs; the notes' models give their output.  Run it with\n"
	        "ONNX Runtime (docs/onnx.md).\n\n"
	        "options:\n"
	        "  --model NAME       the model (list below)\n"
	        "  --checkpoint FILE  the weights: a checkpoint nabla train --save wrote for\n"
	        "                     this model (without it: the model's initial weights)\n"
	        "  -o FILE            the ONNX file, written atomically (required)\n"
	        "  --dtype T          element type of the file: f32 (default) or f64; an f64\n"
	        "                     checkpoint written as f32 is compared with the f64 model\n"
	        "                     on a random batch and the difference printed\n"
	        "  --batch N          batch size the graph is built with (default 1); the\n"
	        "                     file's batch dimension is symbolic (N) unless the model\n"
	        "                     ties it or --static-batch is given\n"
	        "  --static-batch     every dimension as built\n"
	        "  --help             show this help\n\n"
	        "models:\n");
	cli_model_list(fp, false);
}

/* s made safe for a terminal: printable ASCII kept, other bytes as \xNN */
static const char *safe(const char *s, char *buf, size_t n)
{
	size_t k = 0;
	for (; *s && k + 5 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[k++] = (char)c;
		else
			k += (size_t)snprintf(buf + k, n - k, "\\x%02x", c);
	}
	buf[k] = 0;
	return buf;
}

static void print_shape(FILE *fp, nb_tensor *t, bool dynamic)
{
	nb_shape s = nb_tensor_shape(t);
	fputc('[', fp);
	for (int i = 0; i < s.ndim; i++) {
		if (i == 0 && dynamic)
			fputs("N", fp);
		else
			fprintf(fp, "%lld", (long long)s.d[i]);
		if (i + 1 < s.ndim)
			fputc(',', fp);
	}
	fputc(']', fp);
}

int cli_export_onnx(const char *cmd, nb_graph *g, nb_tensor *const *outs, int n, nb_tensor *input,
                    const char *path, bool keep_f64, bool static_batch, FILE *info)
{
	nb_onnx_report r;
	nb_onnx_opts o = {.keep_f64 = keep_f64, .static_batch = static_batch, .report = &r};
	if (nb_onnx_save(g, outs, n, path, o) != NB_OK) {
		fprintf(stderr, "nabla %s: %s\n", cmd, nb_graph_errmsg(g));
		return 1;
	}
	if (!info)
		return 0;
	bool f64 = keep_f64 && nb_graph_dtype(g) == NB_F64;
	bool dyn = r.dynamic_batch;
	fprintf(info,
	        "nabla %s: wrote %s: ONNX opset 13, %s, %d nodes, %d initializers (%lld weights), "
	        "%zu bytes\n",
	        cmd, cli_shown(path), f64 ? "float64" : "float32", r.nodes, r.initializers,
	        (long long)r.weights, r.bytes);
	fprintf(info, "  input  %s ", nb_tensor_name(input));
	print_shape(info, input, dyn);
	for (int i = 0; i < n; i++) {
		fprintf(info, "\n  output %s ", nb_tensor_name(outs[i]));
		print_shape(info, outs[i], dyn && nb_tensor_shape(outs[i]).ndim > 0);
	}
	if (dyn)
		fprintf(info, "\n  batch dimension N: any size\n");
	else
		fprintf(info, "\n  batch fixed at %lld: %s\n",
		        (long long)nb_tensor_shape(input).d[0], r.static_reason);
	if (nb_graph_dtype(g) == NB_F64 && !f64)
		fprintf(
		    info,
		    "  float64 weights rounded to float32: largest change %.3g (relative %.3g)\n",
		    r.cast_max_abs, r.cast_max_rel);
	return 0;
}

/* The checkpoint's metadata: its dtype, and the model and optimizer it was
 * saved with (model and optimizer may be empty). */
static int read_meta(const char *path, nb_dtype *dt, char *model, size_t mlen, char *optim,
                     size_t olen)
{
	nb_safetensors *f;
	char err[512], b[160];
	if (nb_safetensors_open(path, &f, err, sizeof err) != NB_OK) {
		fprintf(stderr, "nabla export: --checkpoint: %s\n", err);
		return 1;
	}
	const char *d = nb_safetensors_meta(f, "dtype"), *m = nb_safetensors_meta(f, "model");
	const char *o = nb_safetensors_meta(f, "optimizer");
	int rc = 0;
	if (!d || (strcmp(d, "F32") && strcmp(d, "F64"))) {
		fprintf(
		    stderr,
		    "nabla export: --checkpoint %s: not a nabla checkpoint (its metadata has no "
		    "dtype F32 or F64%s%s)\n",
		    path, d ? ", but " : "", d ? safe(d, b, sizeof b) : "");
		rc = 1;
	} else {
		*dt = d[1] == '6' ? NB_F64 : NB_F32;
		snprintf(model, mlen, "%s", m ? m : "");
		snprintf(optim, olen, "%s", o ? o : "");
	}
	nb_safetensors_free(f);
	return rc;
}

/* Load the checkpoint into the model: with the optimizer it was saved
 * with, so its state matches and every tensor of the file is checked. */
static int load(cli_model *m, const char *path, const char *optim, bool convert)
{
	nb_optim *o = NULL;
	if (optim[0]) {
		nb_optim_kind k = nb_optim_kind_from_name(optim);
		char b[160];
		if (k == NB_OPTIM_INVALID) {
			fprintf(stderr, "nabla export: --checkpoint %s: unknown optimizer '%s'\n",
			        path, safe(optim, b, sizeof b));
			return 1;
		}
		if (!(o = nb_optimizer(m->g, m->loss, (nb_optim_opts){.kind = k}))) {
			fprintf(stderr, "nabla export: %s\n", nb_graph_errmsg(m->g));
			return 1;
		}
	}
	nb_checkpoint_opts co = {.flags = convert ? NB_CKPT_CONVERT : 0};
	if (nb_checkpoint_load_opts(m->g, o, path, NULL, 0, co) != NB_OK) {
		fprintf(stderr, "nabla export: --checkpoint: %s\n", nb_graph_errmsg(m->g));
		return 1;
	}
	return 0;
}

/* An f64 model written as f32: run it and the same model in f32 on one
 * random batch (eval mode); *worst = the largest difference of the outputs. */
static int cast_difference(const cli_model *m, const cli_model_args *a, const char *ckpt,
                           const char *optim, double *worst_out)
{
	cli_model m32;
	cli_model_args a32 = *a;
	a32.dtype = NB_F32;
	int rc = cli_model_build(&m32, "export", &a32);
	if (!rc && ckpt)
		rc = load(&m32, ckpt, optim, true);
	int64_t n = nb_tensor_size(m->x);
	double *x = malloc(sizeof *x * (size_t)n), worst = 0;
	if (!rc && !x) {
		fprintf(stderr, "nabla export: out of memory\n");
		rc = 1;
	}
	uint64_t seed = 1;
	for (int64_t i = 0; !rc && i < n; i++)
		x[i] = nb__rand_uniform(&seed);
	const cli_model *ms[2] = {m, &m32};
	for (int k = 0; k < 2 && !rc; k++) {
		nb_graph_set_training(ms[k]->g, false);
		nb_program *p = nb_compile(ms[k]->g, ms[k]->outputs, ms[k]->n_outputs);
		if (!p || nb_feed_f64(ms[k]->x, x, n) != NB_OK || nb_run(p) != NB_OK) {
			fprintf(stderr, "nabla export: %s\n", nb_graph_errmsg(ms[k]->g));
			rc = 1;
		}
	}
	for (int o = 0; o < m->n_outputs && !rc; o++) {
		int64_t k = nb_tensor_size(m->outputs[o]);
		double *u = malloc(sizeof *u * (size_t)k), *v = malloc(sizeof *v * (size_t)k);
		if (u && v && nb_read_f64(m->outputs[o], u, k) == NB_OK &&
		    nb_read_f64(m32.outputs[o], v, k) == NB_OK)
			for (int64_t i = 0; i < k; i++)
				if (!(fabs(u[i] - v[i]) <= worst))
					worst = fabs(u[i] - v[i]);
		free(u);
		free(v);
	}
	*worst_out = worst;
	free(x);
	cli_model_free(&m32);
	return rc;
}

static const char *const options[] = {"--model", "--checkpoint",   "-o",     "--output", "--dtype",
                                      "--batch", "--static-batch", "--help", NULL};

int cmd_export(int argc, char **argv)
{
	cli_model_args a = {.name = NULL, .dtype = NB_F32};
	const char *ckpt = NULL, *out = NULL;
	nb_dtype file_dt = NB_F32;
	bool static_batch = false;
	for (int i = 1; i < argc; i++) {
		const char *v;
		int k;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--static-batch")) {
			static_batch = true;
		} else if ((v = cli_opt_value(argc, argv, &i, "--dtype"))) {
			if (!cli_parse_dtype("export", v, &file_dt))
				return 2;
		} else if ((v = cli_opt_value(argc, argv, &i, "--checkpoint"))) {
			ckpt = v;
		} else if ((v = cli_opt_value(argc, argv, &i, "-o")) ||
		           (v = cli_opt_value(argc, argv, &i, "--output"))) {
			out = v;
		} else if ((k = cli_model_option(argc, argv, &i, "export", &a)) != 0) {
			if (k < 0)
				return 2;
		} else if (cli_missing_value) {
			return 2;
		} else {
			cli_unknown_option("export", argv[i], options);
			return 2;
		}
	}
	if (!a.name || !out) {
		fprintf(stderr, "nabla export: %s is required (see nabla export --help)\n",
		        a.name ? "-o FILE" : "--model NAME");
		return 2;
	}
	if (!*out || !*a.name || (ckpt && !*ckpt)) {
		fprintf(stderr, "nabla export: %s is empty\n",
		        !*out      ? "-o"
		        : !*a.name ? "--model"
		                   : "--checkpoint");
		return 2;
	}
	char model[128] = "", optim[64] = "", b[160];
	nb_dtype ck_dt = file_dt;
	if (ckpt && read_meta(ckpt, &ck_dt, model, sizeof model, optim, sizeof optim))
		return 1;
	if (model[0] && strcmp(model, a.name)) {
		fprintf(stderr, "nabla export: --checkpoint %s holds model '%s', not '%s'\n", ckpt,
		        safe(model, b, sizeof b), a.name);
		return 1;
	}
	/* the graph: the checkpoint's dtype, widened to f64 when the file is f64 */
	a.dtype = file_dt == NB_F64 ? NB_F64 : ck_dt;
	cli_model m;
	int rc = cli_model_build(&m, "export", &a);
	if (!rc && ckpt)
		rc = load(&m, ckpt, optim, a.dtype != ck_dt);
	if (!rc && !ckpt)
		fprintf(stderr, "nabla export: no --checkpoint: writing %s's initial weights\n",
		        a.name);
	/* measured before writing, so a failure leaves no file behind */
	double worst = -1;
	if (!rc && a.dtype == NB_F64 && file_dt == NB_F32)
		rc = cast_difference(&m, &a, ckpt, optim, &worst);
	if (!rc && a.dtype == NB_F64 && file_dt == NB_F32 && !isfinite(worst)) {
		fprintf(stderr,
		        "nabla export: on a random batch nabla's float32 outputs differ from the "
		        "float64 ones by %g (an output not finite in one of them): float32 cannot "
		        "reproduce this model; export it with --dtype f64\n",
		        worst);
		rc = 1;
	}
	if (!rc)
		rc = cli_export_onnx("export", m.g, m.outputs, m.n_outputs, m.x, out,
		                     file_dt == NB_F64, static_batch, stdout);
	if (!rc && worst >= 0)
		printf("  float32 from a float64 checkpoint: on a random batch nabla's float32 "
		       "outputs differ from the float64 ones by at most %.3g\n",
		       worst);
	cli_model_free(&m);
	return rc;
}
