/*
 * nb_fit's validation set (given, or a seeded fraction of the training
 * set), early stopping on the validation loss, and the parameters of the
 * best epoch.
 */
#include "graph/internal.h"
#include "nn/fitval.h"
#include "nn/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The leaves a prediction depends on: parameters, and the state that
 * forward ops read (batchnorm's running statistics), not the optimizer's
 * (read by update ops only). */
static nb_status find_model_state(nb__fitval *v, nb_graph *g)
{
	bool *read = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *read);
	v->keep = malloc(sizeof *v->keep * (size_t)(g->n_nodes ? g->n_nodes : 1));
	if (!read || !v->keep) {
		free(read);
		return NB_ERR_NOMEM;
	}
	for (int i = 0; i < g->n_nodes; i++) {
		const nb_tensor *t = g->nodes[i];
		if (nb__ops[t->op]->flags & NB_OPF_UPDATE)
			continue;
		for (int k = 0; k < t->n_in; k++)
			read[t->in[k]->id] = true;
	}
	for (int i = 0; i < g->n_nodes; i++) {
		nb_tensor *t = g->nodes[i];
		if ((t->role == NB_ROLE_PARAM || (t->role == NB_ROLE_STATE && read[i])) &&
		    (nb__ops[t->op]->flags & NB_OPF_LEAF) && t->data && !nb__is_placeholder(t))
			v->keep[v->n_keep++] = t;
	}
	free(read);
	v->saved = calloc((size_t)(v->n_keep ? v->n_keep : 1), sizeof *v->saved);
	for (int i = 0; v->saved && i < v->n_keep; i++)
		if (!(v->saved[i] = malloc((size_t)v->keep[i]->size * g->esize)))
			return NB_ERR_NOMEM;
	return v->saved ? NB_OK : NB_ERR_NOMEM;
}

static nb_status fail(nb_graph *g, nb_status st, const char *msg)
{
	nb__fail(g, st, "fit: %s", msg);
	return st;
}

nb_status nb__fitval_init(nb__fitval *v, nb_model *m, const nb_dataset *train, const nb_fit_opts *o)
{
	memset(v, 0, sizeof *v);
	v->view = *train;
	nb_graph *g = m->g;
	bool split = o->val_split != 0;
	if (split && o->val)
		return fail(g, NB_ERR_ARG, "a validation set and val_split: give one of them");
	if (o->patience < 0) {
		nb__fail(g, NB_ERR_ARG, "fit: patience %d is negative", o->patience);
		return NB_ERR_ARG;
	}
	if ((o->patience || o->restore_best || o->best_epoch) && !split && !o->val)
		return fail(g, NB_ERR_ARG,
		            "early stopping and the best epoch's parameters need a validation set "
		            "(val or val_split)");
	if (o->best_epoch < 0 || o->best_epoch > o->first_epoch ||
	    (o->best_epoch && !isfinite(o->best_val_loss))) {
		nb__fail(g, NB_ERR_ARG,
		         "fit: best_epoch %d with loss %g: not an epoch from 1 to first_epoch (%d) "
		         "with a finite loss",
		         o->best_epoch, o->best_val_loss, o->first_epoch);
		return NB_ERR_ARG;
	}
	if (o->augment) {
		char err[256];
		if (nb_augment_check(o->augment, train->c, train->h, train->w, err, sizeof err)) {
			nb__fail(g, NB_ERR_ARG, "fit: %s", err);
			return NB_ERR_ARG;
		}
	}
	v->patience = o->patience;
	v->restore = o->restore_best;
	v->best_epoch = o->best_epoch;
	v->best = o->best_epoch ? o->best_val_loss : INFINITY;
	v->val = o->val;
	if (split) {
		int64_t nv;
		if (nb_split_count(train->n, o->val_split, &nv)) {
			nb__fail(
			    g, NB_ERR_ARG,
			    "fit: val_split %g of %lld samples: it must be in (0, 1) and leave "
			    "at least one sample for training and one for validation",
			    o->val_split, (long long)train->n);
			return NB_ERR_ARG;
		}
		int64_t *idx = malloc(sizeof *idx * (size_t)train->n);
		nb_status st = idx ? NB_OK : NB_ERR_NOMEM;
		if (!st)
			st = nb_split_indices(train->n, o->val_split, o->seed, idx,
			                      idx + (train->n - nv));
		v->train_idx = idx;
		v->view.n = train->n - nv;
		if (!st) { /* the held-out samples, copied (the smaller part, usually) */
			nb_dataset *h = &v->held;
			int64_t size = nb_dataset_sample_size(train);
			*h = (nb_dataset){.n = nv,
			                  .c = train->c,
			                  .h = train->h,
			                  .w = train->w,
			                  .num_classes = train->num_classes};
			h->x = malloc(sizeof *h->x * (size_t)(nv * size));
			h->y = malloc(sizeof *h->y * (size_t)nv);
			st = h->x && h->y ? NB_OK : NB_ERR_NOMEM;
			for (int64_t i = 0; !st && i < nv; i++) {
				int64_t r = idx[train->n - nv + i];
				memcpy(h->x + i * size, train->x + r * size,
				       sizeof *h->x * (size_t)size);
				h->y[i] = train->y[r];
			}
			v->val = &v->held;
		}
		if (st)
			return fail(g, st, "out of memory for the validation split");
	}
	if (v->restore && find_model_state(v, g))
		return fail(g, NB_ERR_NOMEM, "out of memory for a copy of the best parameters");
	return NB_OK;
}

nb_status nb__fitval_epoch(nb__fitval *v, nb_model *m, nb_dist *dist, nb_epoch_stats *s,
                           bool allow_nonfinite)
{
	s->val_loss = s->val_accuracy = s->best_val_loss = NAN;
	if (!v->val)
		return NB_OK;
	/* split over the ranks and summed: every rank gets the same loss, so
	 * all take the same early-stopping decision */
	nb_status st = nb_evaluate_dist(m, v->val, dist, &s->val_loss, &s->val_accuracy);
	if (st)
		return st;
	if (!isfinite(s->val_loss) && !allow_nonfinite) {
		nb__fail(m->g, NB_ERR_VALUE,
		         "fit: the validation loss is %s after epoch %d (step %lld): training "
		         "diverged (a lower learning rate may help)",
		         isnan(s->val_loss) ? "NaN"
		         : s->val_loss > 0  ? "inf"
		                            : "-inf",
		         s->epoch, (long long)s->steps);
		return NB_ERR_VALUE;
	}
	if (s->val_loss < v->best) { /* NaN never improves */
		v->best = s->val_loss;
		v->best_epoch = s->epoch;
		s->improved = true;
		for (int i = 0; v->restore && i < v->n_keep; i++)
			memcpy(v->saved[i], v->keep[i]->data,
			       (size_t)v->keep[i]->size * m->g->esize);
		if (v->restore)
			v->snap_epoch = s->epoch;
	}
	s->best_epoch = v->best_epoch;
	s->best_val_loss = v->best_epoch ? v->best : NAN;
	s->epochs_since_best = s->epoch - v->best_epoch;
	s->early_stop = v->patience > 0 && s->epochs_since_best >= v->patience;
	return NB_OK;
}

void nb__fitval_finish(nb__fitval *v, int last_epoch)
{
	if (!v->restore || !v->snap_epoch || v->snap_epoch == last_epoch)
		return;
	for (int i = 0; i < v->n_keep; i++)
		memcpy(v->keep[i]->data, v->saved[i],
		       (size_t)v->keep[i]->size * v->keep[i]->g->esize);
}

void nb__fitval_free(nb__fitval *v)
{
	for (int i = 0; v->saved && i < v->n_keep; i++)
		free(v->saved[i]);
	free(v->saved);
	free(v->keep);
	free(v->train_idx);
	nb_dataset_free(&v->held);
	memset(v, 0, sizeof *v);
}
