/* nabla/checkpoint.h — part of the public API; include "nabla.h" instead.
 *
 * Checkpoints in the safetensors format (docs/checkpoint.md): an 8-byte
 * little-endian header length N, N bytes of JSON naming every tensor with
 * its dtype, shape and byte range, then the raw little-endian tensor bytes.
 * Files we write are readable by Python's `safetensors`, and we read what it
 * writes (F32/F64 tensors).
 */
/* the core types first, outside the guard: whichever header comes first,
 * nabla.h then includes this one with them defined */
#include "nabla.h"

#ifndef NABLA_CHECKPOINT_H
#define NABLA_CHECKPOINT_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- checkpoints of a graph ------------------------------------------- */

/* Load flags (nb_checkpoint_opts.flags). */
enum {
	/* Restore only the model: its parameters and its own state (batchnorm's
	 * running statistics, which inference needs); optimizer state, the step
	 * count, the learning rate and the RNG are left alone, and tensors of
	 * the file that are not the graph's parameters or model state (the
	 * optimizer state of a training run) are ignored.  For inference and
	 * fine-tuning. */
	NB_CKPT_MODEL_ONLY = 1u << 0,
	/* the former name (nabla 0.1), the same flag: it now restores the
	 * running statistics too, without which a batchnorm model predicts
	 * with its initial ones */
	NB_CKPT_PARAMS_ONLY = NB_CKPT_MODEL_ONLY,
	/* Convert F64 <-> F32 when the file's dtype differs from the graph's.
	 * Without it a dtype difference is an NB_ERR_DTYPE error, since a
	 * resumed run would silently stop being bit-identical. */
	NB_CKPT_CONVERT = 1u << 1,
};

typedef struct nb_checkpoint_opts {
	/* save: extra metadata, n_meta key/value pairs as
	 * {key0, value0, key1, value1, ...}; keys must not be reserved
	 * (format, nabla_version, model, dtype, step, rng, optimizer, lr). */
	const char *const *meta;
	int n_meta;
	/* load: NB_CKPT_* flags */
	unsigned flags;
	/* load: the model the caller is loading into, or NULL.  A file whose
	 * model metadata names another model is refused (NB_ERR_FORMAT) before
	 * anything else is checked; a file without model metadata (written by
	 * Python, say) is not refused for it. */
	const char *model;
} nb_checkpoint_opts;

/* Save every parameter and every state leaf (optimizer state, running
 * statistics) of g by name, in the graph's dtype, with metadata: format
 * "nabla", nabla_version, model (model_name, may be NULL), dtype, rng (the
 * graph's RNG state) and, when o is given, optimizer, step and lr.
 *
 * Atomic: the file is written to target.tmp.PID.XXXXXX in the same
 * directory, fsynced and renamed over the target (then the directory is
 * fsynced), so a crash or kill during a save leaves the previous checkpoint
 * intact.  The target is path with its symbolic links followed (the link
 * stays, the file it points to is replaced); a FIFO, device or directory is
 * refused.  Temporary files a killed save of the same target left (their
 * PID no longer running) are removed.  Errors are
 * recorded on the graph and returned. */
NB_API nb_status nb_checkpoint_save(nb_graph *g, nb_optim *o, const char *path,
                                    const char *model_name);
NB_API nb_status nb_checkpoint_save_opts(nb_graph *g, nb_optim *o, const char *path,
                                         const char *model_name, nb_checkpoint_opts opts);

/* Fill the tensors of g (built the same way as the saved one) from path, by
 * name, and restore the RNG state and, when o is given, the step count and
 * learning rate.  The whole file is validated against the graph before
 * anything is changed: a tensor the graph has and the file lacks, a tensor
 * the file has and the graph lacks, a shape or dtype difference, or any
 * corruption of the file is an error naming the file and the tensor
 * (NB_ERR_FORMAT, NB_ERR_SHAPE, NB_ERR_DTYPE, NB_ERR_IO), recorded on the
 * graph.  Metadata the load restores (rng, step, lr) must be well-formed:
 * step an integer from 0 to NB_OPTIM_MAX_STEPS, lr a finite non-negative
 * decimal number (no hex), the optimizer kind the same as o's.  Strings of
 * the file quoted in messages have their control characters replaced.
 * model_name_out (may be NULL) receives the saved model name as stored
 * (file content: escape it before printing it to a terminal). */
NB_API nb_status nb_checkpoint_load(nb_graph *g, nb_optim *o, const char *path,
                                    char *model_name_out, size_t len);
NB_API nb_status nb_checkpoint_load_opts(nb_graph *g, nb_optim *o, const char *path,
                                         char *model_name_out, size_t len, nb_checkpoint_opts opts);

/* ---- parameters from any safetensors file (PyTorch's too) ------------- */

typedef struct nb_init_from_report {
	int loaded;  /* tensors of the graph filled */
	int renamed; /* of them, found under their PyTorch name */
	int ignored; /* tensors of the file that filled nothing (optimizer
	              * state, num_batches_tracked, another head, ...) */
} nb_init_from_report;

/* Fill g's parameters and batch-normalisation running statistics (its
 * state leaves named *.running_mean and *.running_var; not optimizer
 * state, not the RNG or step count) from the safetensors file at path,
 * written by nabla, by PyTorch (safetensors.torch.save_file(
 * model.state_dict(), path)) or by any other writer of the format.
 *
 * Names: a tensor of g called P.w is looked up in the file as P.w, then as
 * P.weight; P.b as P.bias; a batchnorm's P.gamma as P.weight and P.beta as
 * P.bias; P.running_mean and P.running_var as they are.  A file name that
 * begins with "module." (nn.DataParallel) counts without it.  Dense and
 * convolution weights have PyTorch's layouts ([out, in] and OIHW), so no
 * tensor is transposed.  Tensors of the file that no tensor of g asks for
 * are ignored and counted in report->ignored (report may be NULL).
 *
 * Checked before anything changes (a failure leaves g as it was): a tensor
 * of g missing from the file (NB_ERR_FORMAT; the message names the closest
 * names of the file, with their shapes), a shape that differs (NB_ERR_SHAPE),
 * a dtype other than F32, F64, F16 or BF16 (NB_ERR_DTYPE; they are converted
 * to g's dtype), a value that is NaN or infinite (NB_ERR_VALUE), one file
 * tensor that would fill two of g's, and a malformed file (the validation of
 * nb_safetensors_open).  Errors are recorded on g and returned; strings of
 * the file in messages have their control characters replaced. */
NB_API nb_status nb_init_from(nb_graph *g, const char *path, nb_init_from_report *report);

/* ---- reading any safetensors file ------------------------------------- */

/* A parsed and validated safetensors file: the header is checked in full
 * (strict JSON, known dtypes, byte ranges that tile the data exactly). */
typedef struct nb_safetensors nb_safetensors;

/* Pointers stay valid until nb_safetensors_free. */
typedef struct nb_safetensors_info {
	const char *name;
	const char *dtype; /* as in the file: "F32", "F64", "BF16", "I64", ... */
	int ndim;
	const int64_t *shape; /* ndim entries */
	uint64_t begin, end;  /* byte range in the data that follows the header */
} nb_safetensors_info;

/* Open and validate a file (the header is read now, tensor bytes on
 * demand).  On failure *out is NULL and err (may be NULL) holds a message
 * naming the file. */
NB_API nb_status nb_safetensors_open(const char *path, nb_safetensors **out, char *err,
                                     size_t errlen);
/* The same for a file image in memory; buf must outlive the handle.  Never
 * crashes on any input (fuzzed: fuzz/fuzz_safetensors.c). */
NB_API nb_status nb_safetensors_parse(const void *buf, size_t len, nb_safetensors **out, char *err,
                                      size_t errlen);
NB_API void nb_safetensors_free(nb_safetensors *f);

/* Tensors in the order of their bytes in the file. */
NB_API int nb_safetensors_count(const nb_safetensors *f);
NB_API nb_status nb_safetensors_tensor(const nb_safetensors *f, int i, nb_safetensors_info *info);
NB_API int nb_safetensors_find(const nb_safetensors *f, const char *name); /* -1: absent */
/* Copy tensor i's raw (little-endian) bytes; n must be end - begin. */
NB_API nb_status nb_safetensors_read(const nb_safetensors *f, int i, void *dst, size_t n);

/* The __metadata__ strings, in the order of the file. */
NB_API int nb_safetensors_num_meta(const nb_safetensors *f);
NB_API const char *nb_safetensors_meta_key(const nb_safetensors *f, int i);
NB_API const char *nb_safetensors_meta_value(const nb_safetensors *f, int i);
NB_API const char *nb_safetensors_meta(const nb_safetensors *f, const char *key); /* NULL: absent */
/* A metadata value as a number, parsed strictly: the whole string must be
 * a JSON number (no spaces, no '+', no hex such as "0x10", no "inf" or
 * "nan"; for _int no fraction or exponent either) within [min, max].
 * NB_OK with *out set; NB_ERR_FORMAT when the key is absent, the value
 * malformed or out of range, with a message in err (may be NULL) naming the
 * file, the key and the value (control characters shown as '?');
 * NB_ERR_ARG for NULL arguments or min > max. */
NB_API nb_status nb_safetensors_meta_int(const nb_safetensors *f, const char *key, int64_t min,
                                         int64_t max, int64_t *out, char *err, size_t errlen);
NB_API nb_status nb_safetensors_meta_number(const nb_safetensors *f, const char *key, double min,
                                            double max, double *out, char *err, size_t errlen);
/* A list: exactly n elements joined by ',' (no spaces), each a number as
 * above within [min, max] or "null" (stored as NaN: a value that was not
 * finite).  "" is the list of none.  Errors as above. */
NB_API nb_status nb_safetensors_meta_numbers(const nb_safetensors *f, const char *key, double min,
                                             double max, double *out, size_t n, char *err,
                                             size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
