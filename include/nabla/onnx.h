/* nabla/onnx.h — ONNX export; include "nabla.h" instead.
 *
 * nb_onnx_save() writes the inference graph that computes the chosen
 * outputs as an ONNX model (opset 13, IR version 7): the graph's inputs the
 * outputs depend on become the model's inputs, parameters, constants and
 * running statistics become initializers holding their current values,
 * batch normalisation uses the running statistics and dropout is the
 * identity (inference mode, whatever nb_graph_training says).  Names are
 * nabla's tensor names, with bytes other than letters, digits and
 * "_.:/-" replaced by '_' and a suffix "_2", "_3", ... where two would
 * clash.  docs/onnx.md has the op mapping table and the limits.
 */
/* the core types first, outside the guard: whichever header comes first,
 * nabla.h then includes this one with them defined */
#include "nabla.h"

#ifndef NABLA_ONNX_H
#define NABLA_ONNX_H

#ifdef __cplusplus
extern "C" {
#endif

/* What an export produced (filled when nb_onnx_opts.report is set). */
typedef struct nb_onnx_report {
	bool dynamic_batch;      /* dimension 0 of the inputs is the symbolic "N" */
	char static_reason[160]; /* why not, when the batch is fixed */
	int inputs, outputs;     /* the model's graph inputs and outputs */
	int nodes;               /* ONNX nodes written */
	int initializers;
	int64_t weights; /* elements of the nabla leaves written */
	size_t bytes;    /* size of the file */
	/* f64 graph written as FLOAT: the largest |w - (float)w| over the
	 * weights, and the largest relative change |w - (float)w| / |w|
	 * (0 when nothing was rounded). */
	double cast_max_abs, cast_max_rel;
} nb_onnx_report;

/* Zero fields mean the defaults. */
typedef struct nb_onnx_opts {
	/* An f64 graph is written as FLOAT (32-bit) by default, the type every
	 * runtime executes; keep_f64 writes DOUBLE instead (ONNX Runtime's CPU
	 * provider has no double Conv, pooling or Softmax kernels).  An f32
	 * graph is always written as FLOAT. */
	bool keep_f64;
	/* Fixed batch: every dimension as built.  By default dimension 0 of the
	 * inputs is symbolic when every op lets it vary (a reshape that keeps
	 * dimension 0, no reduction or concatenation over it, ...); otherwise
	 * the export falls back to the built batch and says why in the report. */
	bool static_batch;
	const char *graph_name; /* GraphProto.name; default "nabla" */
	nb_onnx_report *report; /* filled when not NULL */
} nb_onnx_opts;

/* Write the inference graph computing outputs[0..n) to path, with opts
 * ((nb_onnx_opts){0}: the defaults).  Atomic like nb_checkpoint_save:
 * written to path.tmp.XXXXXX, fsynced and renamed, so on any failure an
 * existing file at path is left as it was.  Errors (recorded on the graph
 * and returned):
 *   NB_ERR_ARG    no outputs, NULL, an output listed twice, or a tensor of
 *                 another graph (or the error placeholder);
 *   NB_ERR_GRAPH  an output that depends on no input, or that is computed
 *                 by the backward pass or an optimizer update (training
 *                 only, no inference path);
 *   NB_ERR_FORMAT an op with no ONNX mapping (the ops of training: backward
 *                 helpers, optimizer updates), named in the message with
 *                 the tensor it computes;
 *   NB_ERR_VALUE  an f64 graph written as FLOAT with a finite weight beyond
 *                 float32's range (it would become inf; keep_f64 writes it);
 *   NB_ERR_IO     the file could not be written (path and reason). */
NB_API nb_status nb_onnx_save(nb_graph *g, nb_tensor *const *outputs, int n, const char *path,
                              nb_onnx_opts opts);

#ifdef __cplusplus
}
#endif
#endif
