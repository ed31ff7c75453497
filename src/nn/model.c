/*
 * nb_model: a classifier's loss, labels and staging buffers around logits
 * built by the caller (nb_classifier), owned by the graph, and what it was
 * built with (the accessors).
 */
#include "nn/model.h"

#include "graph/internal.h"

#include <stdlib.h>
#include <string.h>

/* The graph's destructor for a model (nb__graph_own); its tensors and
 * program are the graph's. */
static void model_free(void *p)
{
	nb_model *m = p;
	if (!m)
		return;
	free(m->xbuf);
	free(m->ybuf);
	free(m->wbuf);
	free(m->ohbuf);
	free(m->rows);
	free(m);
}

/* x, logits and kind checked: NB_OK, or the error recorded on x's graph
 * (on logits' when x is NULL). */
static nb_status check(nb_tensor *x, nb_tensor *logits, nb_loss_kind kind)
{
	nb_graph *g = x ? x->g : logits ? logits->g : NULL;
	if (!g)
		return NB_ERR_ARG;
	if (g->status != NB_OK)
		return g->status;
	if (!x || !logits) {
		nb__fail(g, NB_ERR_ARG, "classifier: the %s is NULL",
		         x ? "logits tensor" : "input x");
		return NB_ERR_ARG;
	}
	if (logits->g != g) {
		nb__fail(g, NB_ERR_GRAPH, "classifier: logits %s belong to another graph than x %s",
		         logits->name, x->name);
		return NB_ERR_GRAPH;
	}
	char b[128];
	if (logits->shape.ndim != 2 || x->shape.ndim < 1 || logits->shape.d[0] != x->shape.d[0]) {
		nb__fail(g, NB_ERR_SHAPE,
		         "classifier: logits must be [B, K] with B the input's batch, got %s",
		         nb_shape_str(logits->shape, b, sizeof b));
		return NB_ERR_SHAPE;
	}
	if (kind != NB_LOSS_SPARSE_CCE && kind != NB_LOSS_CCE && kind != NB_LOSS_BCE_LOGITS) {
		nb__fail(g, NB_ERR_ARG, "classifier: unknown loss kind %d", (int)kind);
		return NB_ERR_ARG;
	}
	int64_t K = logits->shape.d[1];
	if (kind == NB_LOSS_BCE_LOGITS ? K != 1 : K < 2) {
		nb__fail(g, NB_ERR_SHAPE, "classifier: %s needs logits [B, %s], got %s",
		         kind == NB_LOSS_BCE_LOGITS ? "binary cross-entropy"
		                                    : "softmax cross-entropy",
		         kind == NB_LOSS_BCE_LOGITS ? "1" : "K>=2",
		         nb_shape_str(logits->shape, b, sizeof b));
		return NB_ERR_SHAPE;
	}
	return NB_OK;
}

/* The label inputs, the loss and the probabilities. */
static void add_loss(nb_model *m)
{
	nb_graph *g = m->g;
	int64_t B = m->batch, K = m->logits->shape.d[1];
	m->weights = nb_input(g, "sample_weights", NB_SHAPE(B));
	nb_tensor *per; /* [B] per-sample losses */
	if (m->loss_kind == NB_LOSS_SPARSE_CCE) {
		m->labels = nb_input(g, "labels", NB_SHAPE(B));
		per = nb_sparse_cce(m->logits, m->labels, NB_NONE);
		m->probs = nb_softmax(m->logits, -1);
	} else if (m->loss_kind == NB_LOSS_CCE) {
		m->onehot = nb_input(g, "onehot", NB_SHAPE(B, K));
		per = nb_cce(m->logits, m->onehot, NB_NONE);
		m->probs = nb_softmax(m->logits, -1);
	} else {
		m->labels = nb_input(g, "labels", NB_SHAPE(B, 1));
		per = nb_reshape(nb_bce_logits(m->logits, m->labels, NB_NONE), NB_SHAPE(B));
		m->probs = nb_sigmoid(m->logits);
	}
	m->loss = nb_set_name(nb_sum(nb_mul(per, m->weights)), "loss");
	nb_set_name(m->probs, "probs");
}

nb_model *nb_classifier(nb_tensor *x, nb_tensor *logits, nb_loss_kind kind)
{
	if (check(x, logits, kind) != NB_OK)
		return NULL;
	nb_graph *g = x->g;
	int64_t B = x->shape.d[0], K = logits->shape.d[1];
	nb_model *m = calloc(1, sizeof *m);
	if (m) {
		m->xbuf = malloc((size_t)x->size * sizeof(float));
		m->ybuf = malloc((size_t)B * sizeof(float));
		m->wbuf = malloc((size_t)B * sizeof(double));
		m->rows = malloc((size_t)B * sizeof(int64_t));
		if (kind == NB_LOSS_CCE)
			m->ohbuf = malloc((size_t)(B * K) * sizeof(float));
	}
	if (!m || !m->xbuf || !m->ybuf || !m->wbuf || !m->rows ||
	    (kind == NB_LOSS_CCE && !m->ohbuf) || nb__graph_own(g, m, model_free) != NB_OK) {
		model_free(m);
		nb__fail(g, NB_ERR_NOMEM,
		         "classifier: out of memory for %lld-sample batches of %lld values",
		         (long long)B, (long long)(x->size / B));
		return NULL;
	}
	m->g = g;
	m->x = x;
	m->logits = logits;
	m->loss_kind = kind;
	m->batch = B;
	m->num_classes = kind == NB_LOSS_BCE_LOGITS ? 2 : (int)K;
	add_loss(m);
	nb_tensor *t[2] = {m->loss, m->probs};
	m->eval_prog = nb_compile(g, t, 2);
	return g->status == NB_OK ? m : NULL;
}

nb_graph *nb_model_graph(const nb_model *m)
{
	return m ? m->g : NULL;
}

const char *nb_model_name(const nb_model *m)
{
	return m ? m->name : NULL;
}

nb_tensor *nb_model_input(const nb_model *m)
{
	return m ? m->x : NULL;
}

nb_tensor *nb_model_logits(const nb_model *m)
{
	return m ? m->logits : NULL;
}

nb_tensor *nb_model_labels(const nb_model *m)
{
	return m ? m->labels : NULL;
}

nb_tensor *nb_model_one_hot(const nb_model *m)
{
	return m ? m->onehot : NULL;
}

nb_tensor *nb_model_weights(const nb_model *m)
{
	return m ? m->weights : NULL;
}

nb_tensor *nb_model_loss(const nb_model *m)
{
	return m ? m->loss : NULL;
}

nb_tensor *nb_model_probs(const nb_model *m)
{
	return m ? m->probs : NULL;
}

nb_loss_kind nb_model_loss_kind(const nb_model *m)
{
	return m ? m->loss_kind : NB_LOSS_SPARSE_CCE;
}

int64_t nb_model_batch(const nb_model *m)
{
	return m ? m->batch : 0;
}

int nb_model_num_classes(const nb_model *m)
{
	return m ? m->num_classes : 0;
}
