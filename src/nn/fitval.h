/* nb_fit's validation set, early stopping and best parameters (fitval.c) */
#ifndef NB_NN_FITVAL_H
#define NB_NN_FITVAL_H

#include "nabla.h"

typedef struct nb__fitval {
	const nb_dataset *val; /* the validation set, or NULL */
	nb_dataset held;       /* val_split: the held-out samples (a copy) */
	int64_t *train_idx;    /* val_split: training position -> sample of train */
	nb_dataset view;       /* what the batcher walks: train, or its first n_train */
	int patience;
	bool restore;
	int best_epoch; /* 0: none yet */
	double best;
	int snap_epoch;   /* the epoch the snapshot holds (0: none) */
	nb_tensor **keep; /* what the snapshot saves: parameters and model state */
	void **saved;
	int n_keep;
} nb__fitval;

/* Checks the options and sets up the split (training runs on v->view,
 * whose sample k is train's v->train_idx[k] when that is set); the error
 * on m's graph.  nb__fitval_free afterwards in every case. */
nb_status nb__fitval_init(nb__fitval *v, nb_model *m, const nb_dataset *train,
                          const nb_fit_opts *o);
/* After epoch s->epoch: the validation loss and accuracy into s, the best
 * so far, the snapshot when it improved, and early stopping. */
nb_status nb__fitval_epoch(nb__fitval *v, nb_model *m, nb_dist *dist, nb_epoch_stats *s,
                           bool allow_nonfinite);
/* The end of training: the best epoch's parameters back (restore_best). */
void nb__fitval_finish(nb__fitval *v, int last_epoch);
void nb__fitval_free(nb__fitval *v);

#endif
