/* nabla/train.h — the training loop; include "nabla.h" instead.
 *
 * A classifier is a graph whose input x holds one minibatch, with labels
 * fed beside it.  nb_classifier() adds the label and per-sample weight
 * inputs and the loss to logits you built, in a model the graph owns
 * (nb_model_*() read it); nb_fit() runs epochs of shuffled minibatches
 * through an optimizer; nb_evaluate() and nb_predict() run the forward
 * pass only, in eval mode.
 *
 * The graph's batch size is fixed.  A final partial batch is padded with
 * copies of real samples whose loss weight is 0, and the loss is the mean
 * over the real samples only, so no sample is dropped and none counts twice.
 * Batch normalisation takes its statistics from the real rows only
 * (nb_graph_set_batch_rows), so such a step equals a step on a batch of the
 * real size.  In training mode a batchnorm on [B, C] features (one value
 * per channel and sample) cannot take a last batch of one sample
 * (NB_ERR_VALUE, as PyTorch).
 */
/* the core types first, outside the guard: whichever header comes first,
 * nabla.h then includes this one with them defined */
#include "nabla.h"

#ifndef NABLA_TRAIN_H
#define NABLA_TRAIN_H

#include "nabla/data.h"      /* nb_dataset */
#include "nabla/gradnorms.h" /* nb_grad_norms, in the epoch statistics */
#include "nabla/optim.h"     /* nb_optim_kind, in the zoo's recipes; nb_schedule */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nb_loss_kind {
	NB_LOSS_SPARSE_CCE = 0, /* logits [B,K], softmax cross-entropy on class ids */
	NB_LOSS_CCE,            /* the same on one-hot targets (nb_cce) */
	NB_LOSS_BCE_LOGITS,     /* logits [B,1], sigmoid + binary cross-entropy */
} nb_loss_kind;

/* A classifier: the input x of one minibatch, the logits computed from
 * it, the label and per-sample weight inputs and the loss nb_classifier
 * adds, and what nb_fit, nb_evaluate and nb_predict stage a batch in.
 * Opaque; the graph owns it (nb_graph_free frees it). */
typedef struct nb_model nb_model;

/* Finish a classifier: x is the batch input ([B, ...], B >= 1), logits
 * computed from it: [B, K] with K >= 2 (NB_LOSS_SPARSE_CCE, NB_LOSS_CCE)
 * or [B, 1] (NB_LOSS_BCE_LOGITS), in x's graph.  Adds the labels/weights
 * (and one-hot) inputs and the loss; compiles the evaluation program.
 * Returns the model, owned by the graph, or NULL with the error recorded
 * on x's graph (on logits' when x is NULL; none when both are):
 * NB_ERR_ARG for a NULL tensor or an unknown kind, NB_ERR_GRAPH for
 * logits of another graph, NB_ERR_SHAPE for shapes that do not fit, or
 * the graph's earlier error. */
NB_API nb_model *nb_classifier(nb_tensor *x, nb_tensor *logits, nb_loss_kind kind);

/* What the model was built with; NULL, 0 (NB_LOSS_SPARSE_CCE for the
 * kind) for a NULL model. */
NB_API nb_graph *nb_model_graph(const nb_model *m);
NB_API const char *nb_model_name(const nb_model *m);  /* the zoo's name; NULL from nb_classifier */
NB_API nb_tensor *nb_model_input(const nb_model *m);  /* x, [B, ...] */
NB_API nb_tensor *nb_model_logits(const nb_model *m); /* [B, K], [B, 1] (binary) */
/* the inputs nb_fit and nb_evaluate feed: class ids ([B], or [B, 1] for
 * NB_LOSS_BCE_LOGITS; NULL for NB_LOSS_CCE), one-hot targets ([B, K],
 * NB_LOSS_CCE only, else NULL) and the per-sample loss weights [B] */
NB_API nb_tensor *nb_model_labels(const nb_model *m);
NB_API nb_tensor *nb_model_one_hot(const nb_model *m);
NB_API nb_tensor *nb_model_weights(const nb_model *m);
NB_API nb_tensor *nb_model_loss(const nb_model *m);  /* scalar: the weighted mean */
NB_API nb_tensor *nb_model_probs(const nb_model *m); /* softmax [B, K], sigmoid [B, 1] */
NB_API nb_loss_kind nb_model_loss_kind(const nb_model *m);
NB_API int64_t nb_model_batch(const nb_model *m);   /* B */
NB_API int nb_model_num_classes(const nb_model *m); /* K; 2 for NB_LOSS_BCE_LOGITS */

typedef struct nb_progress {
	int epoch, epochs;
	int64_t batch, batches; /* batches done in this epoch, and per epoch */
	int64_t step;           /* optimizer steps so far */
	double loss;            /* running mean of this epoch's batch losses */
	double seconds;         /* since the epoch started */
	double samples_per_s;
} nb_progress;

typedef struct nb_epoch_stats {
	int epoch, epochs;
	double train_loss;               /* mean batch loss over the epoch */
	double train_accuracy;           /* on the batches as trained (before each update) */
	double test_loss, test_accuracy; /* NAN without test data */
	double seconds;                  /* training time of the epoch (no evaluation) */
	double samples_per_s;
	int64_t samples, steps;
	double lr;
	/* with nb_fit_opts.grad_norms: each layer's gradient and update norms,
	 * means over the epoch's steps; else NULL */
	const nb_grad_norms *grad_norms;
	/* with a validation set (nb_fit_opts.val, .val_split), else NAN / 0: */
	double val_loss, val_accuracy;
	int best_epoch;        /* the epoch of the lowest validation loss so far */
	double best_val_loss;  /* that loss */
	int epochs_since_best; /* epoch - best_epoch */
	bool improved;         /* this epoch's validation loss is the lowest so far */
	bool early_stop;       /* early stopping ends training after this epoch */
} nb_epoch_stats;

typedef struct nb_fit_opts {
	int epochs;      /* default 1 */
	bool no_shuffle; /* default: a new seeded order every epoch */
	uint64_t seed;
	int64_t max_batches;         /* per epoch, 0 = all (short runs) */
	const nb_schedule *schedule; /* per-step learning rate, or NULL */
	const nb_dataset *test;      /* evaluated after every epoch, or NULL */
	/* resume: epochs already done, 0 to epochs (NB_ERR_ARG otherwise; equal
	 * to epochs: nothing left to train, NB_OK at once) */
	int first_epoch;
	/* A batch whose loss is NaN or infinite, or a non-finite test loss
	 * after an epoch, stops training with NB_ERR_VALUE naming the epoch and
	 * step, before on_epoch (the update of that step is done, so the
	 * parameters are likely non-finite too).  Checked on the scalar loss
	 * only: nothing is scanned.  true: go on regardless. */
	bool allow_nonfinite;
	/* A progress bar on this stream (e.g. stderr) while an epoch trains:
	 * epoch, bar, batches, running loss, samples/s and ETA on one line
	 * redrawn in place (at most ten times a second) and erased before
	 * on_epoch.  The line fits the terminal (nb_terminal_width): on a
	 * narrow one the rate, then the ETA, then the batch count are left out
	 * and the bar gets shorter.  Drawn only when the stream is a terminal
	 * (a log file gets nothing); NULL: none. */
	FILE *progress;
	/* Per-layer gradient statistics (nabla/gradnorms.h): the optimizer
	 * tracks them from the first step on (and goes on after nb_fit
	 * returns: nb_optim_track_grad_norms(o, false) stops it); each epoch's
	 * means are in nb_epoch_stats.grad_norms.  With grad_norm_interval N >
	 * 0, on_grad_norms (may be NULL) also gets the means over every N
	 * optimizer steps, at the steps that are multiples of N (a window may
	 * span two epochs; the last, partial one is not reported).  A negative
	 * interval, or one without grad_norms, is NB_ERR_ARG.  Off (the
	 * default), the step has no extra node. */
	bool grad_norms;
	int64_t grad_norm_interval;
	void (*on_grad_norms)(const nb_grad_norms *n, void *user);
	void (*on_batch)(const nb_progress *p, void *user);
	/* return false to stop training after this epoch */
	bool (*on_epoch)(const nb_epoch_stats *s, void *user);
	void *user;

	/* ---- augmentation, validation, early stopping (docs/data.md) ---- */
	/* Augment the training batches (nb_augment: random crops, flips) with
	 * seed, each sample keyed by the epoch (from 0) and its position in
	 * the training set; NULL: none.  Validation and test data are never
	 * augmented.  NB_ERR_ARG when it does not fit the samples' shape. */
	const nb_augment *augment;
	/* A validation set evaluated after every epoch (eval mode, after the
	 * test set) into nb_epoch_stats: val, or val_split, the fraction of
	 * train that nb_split_indices(train->n, val_split, seed) holds out
	 * (0 < val_split < 1, both parts non-empty), which then does not
	 * train.  Not both (NB_ERR_ARG).  A run with val_split is the run on
	 * nb_dataset_split's two parts, bit for bit.  Its loss is checked for
	 * NaN and infinity like the test loss. */
	const nb_dataset *val;
	double val_split;
	/* Early stopping: training ends after `patience` epochs in a row whose
	 * validation loss is not below the lowest so far (the stats of that
	 * epoch have early_stop set; on_epoch sees it first).  0: all the
	 * epochs.  Needs a validation set (NB_ERR_ARG). */
	int patience;
	/* At the end, put back the parameters and the model's state (batch
	 * normalisation's running statistics) of the epoch with the lowest
	 * validation loss; the optimizer's state and step count stay the last
	 * epoch's.  A copy of them is kept in memory meanwhile.  Needs a
	 * validation set.  When that epoch came before first_epoch (best_epoch
	 * below) and none since was better, this run never had its parameters:
	 * they stay the last epoch's, and the caller's checkpoint of best_epoch
	 * holds the best. */
	bool restore_best;
	/* Resume: the lowest validation loss of the epochs before first_epoch
	 * and its epoch (1 to first_epoch), so that patience counts on from
	 * there; 0: none yet.  NB_ERR_ARG outside that range, or when
	 * best_val_loss is not finite. */
	int best_epoch;
	double best_val_loss;
	/* Data-parallel training, when the optimizer was made with a handle of
	 * several ranks (nb_optim_opts.dist): the samples of one step on all
	 * ranks together, 0 = the model's batch times the ranks.  Every rank
	 * shuffles with the same seed and takes its shard of each global batch
	 * (nb_dist_shard: sizes differ by at most one; the model's batch must
	 * hold the largest, nb_dist_local_batch), each sample weighted by
	 * 1/global batch, so the summed gradients are those of one process on
	 * the whole batch.  nb_fit first checks the model and broadcasts the
	 * parameters and state from rank 0 (nb_dist_sync_model), the stats it
	 * reports (losses, accuracies, samples) are over all ranks, and the
	 * test set is split over the ranks.  Every rank must call it with the
	 * same options and data.  Fewer samples than ranks: NB_ERR_ARG. */
	int64_t global_batch;
} nb_fit_opts;

NB_API nb_status nb_fit(nb_model *m, nb_optim *o, const nb_dataset *train, nb_fit_opts opts);
/* The width of the terminal fp is on (TIOCGWINSZ), else $COLUMNS (1 to
 * 10000), else 80. */
NB_API int nb_terminal_width(FILE *fp);
/* The progress bar's line for p in buf (n bytes; NUL-terminated), at most
 * width - 1 characters: the line nb_fit_opts.progress draws, for callers
 * drawing their own.  Returns its length. */
NB_API int nb_progress_line(char *buf, size_t n, const nb_progress *p, int width);
/* Mean loss and accuracy over a dataset, in eval mode (restored after). */
NB_API nb_status nb_evaluate(nb_model *m, const nb_dataset *d, double *loss, double *accuracy);
/* The same split over the ranks of dist (each evaluates its shard of d,
 * the sums are added over the ranks): every rank must call it, and every
 * rank gets the loss and accuracy over all of d.  dist NULL or of one
 * rank: nb_evaluate. */
NB_API nb_status nb_evaluate_dist(nb_model *m, const nb_dataset *d, nb_dist *dist, double *loss,
                                  double *accuracy);
/* Class ids (and probabilities, n*K floats; may be NULL) for n samples of
 * x laid out like the model's input.  Computes the probabilities alone:
 * the labels need not be fed. */
NB_API nb_status nb_predict(nb_model *m, const float *x, int64_t n, int32_t *ids, float *probs);

/* ---- the model zoo ----------------------------------------------------
 * Classifiers by name, each built in a graph with the given batch size:
 *   mlp                 784-256-128-10 ReLU (Fashion-MNIST)
 *   lenet               LeNet-5 style: conv5x5 6 (pad 2), pool, conv5x5 16,
 *                       pool, 120, 84, 10 (Fashion-MNIST)
 *   resnet20            CIFAR ResNet-20: 16/32/64 channels, BN, option-A
 *                       shortcuts, global average pool (3x32x32 inputs)
 *   resnet50            bottleneck blocks [3,4,6,3] with a CIFAR stem
 *   mlp-binary-sigmoid  784-128 ReLU, Dense(1) + sigmoid + BCE (two classes)
 *   mlp-binary-softmax  784-128 ReLU, Dense(2) + softmax + CCE (one-hot)
 *   deep-sigmoid, deep-relu-he, deep-relu-bn, deep-residual
 *                       784-10x64-10: sigmoid; ReLU with He init; batchnorm +
 *                       ReLU; sigmoid with identity shortcuts (the
 *                       vanishing-gradient experiment, docs/experiments.md)
 * Each entry carries its builder and the recipe `nabla train` follows by
 * default, so a model is one row of the table in src/nn/models.c. */

/* the data a zoo model trains on */
typedef enum nb_zoo_data {
	NB_ZOO_DATA_FASHION_MNIST = 0, /* IDX files (Fashion-MNIST); two classes of it
	                                * when num_classes is 2 */
	NB_ZOO_DATA_CIFAR10,           /* CIFAR-10 binaries; synthetic CIFAR-shaped data
	                                * unless a directory is given */
} nb_zoo_data;

/* the default training recipe */
typedef struct nb_zoo_recipe {
	int epochs, batch;
	nb_optim_kind optim;
	double lr, momentum, weight_decay; /* momentum, weight decay: 0 = the optimizer's default */
	nb_zoo_data data;
	/* the augmentation `nabla train --augment` applies without a spec:
	 * crops of 4 and flips for CIFAR-10, crops of 2 without flips for
	 * the IDX images (Fashion-MNIST, and MNIST's digits, which a mirror
	 * would spoil).  Training applies none unless asked. */
	const nb_augment *augment;
} nb_zoo_recipe;

/* input_c/h/w describe one sample (e.g. 1x28x28). */
typedef struct nb_zoo_entry {
	const char *name, *summary;
	int c, h, w; /* the sample shape the model expects */
	int num_classes;
	bool flat;                         /* the input is [N, c*h*w] (an MLP), else [N, c, h, w] */
	nb_tensor *(*build)(nb_tensor *x); /* the logits from the input x */
	nb_loss_kind loss;
	nb_zoo_recipe recipe;
} nb_zoo_entry;

NB_API const nb_zoo_entry *nb_zoo(int i); /* NULL past the end */
NB_API const nb_zoo_entry *nb_zoo_find(const char *name);
/* Build the named zoo model in g with the given batch size: its
 * parameters are drawn from g's generator (nb_graph_seed first for a given
 * seed).  Returns the model, owned by g, or NULL with the error recorded
 * on g (NB_ERR_ARG for an unknown name or a batch below 1); NULL g: NULL. */
NB_API nb_model *nb_zoo_build(nb_graph *g, const char *name, int64_t batch);

#ifdef __cplusplus
}
#endif
#endif
