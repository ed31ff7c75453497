/* nb_model's insides (model.c): what nb_classifier built and the staging
 * buffers nb_fit, nb_evaluate and nb_predict fill one batch in. */
#ifndef NB_NN_MODEL_H
#define NB_NN_MODEL_H

#include "nabla.h"

struct nb_model {
	nb_graph *g;
	const char *name;   /* the zoo entry's, or NULL */
	nb_tensor *x;       /* input batch [B, ...] */
	nb_tensor *logits;  /* [B, K] ([B, 1] for NB_LOSS_BCE_LOGITS) */
	nb_tensor *labels;  /* [B] class ids (sparse kind), [B, 1] (binary kind) */
	nb_tensor *onehot;  /* [B, K] (NB_LOSS_CCE) */
	nb_tensor *weights; /* [B] per-sample loss weights: 1/n real, 0 padding */
	nb_tensor *loss;    /* scalar: weighted mean over the real samples */
	nb_tensor *probs;   /* [B, K] softmax, or [B, 1] sigmoid */
	nb_loss_kind loss_kind;
	int64_t batch;
	int num_classes;
	nb_program *eval_prog;      /* loss + probs, forward only */
	float *xbuf, *ybuf, *ohbuf; /* staging buffers for one batch */
	double *wbuf;               /* weights in double: exact 1/n in f64 graphs */
	int64_t *rows;
};

#endif
