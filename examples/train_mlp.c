/* Fashion-MNIST with a 784-256-128-10 MLP: define it with layer builders,
 * train one epoch with Adam, save a checkpoint, reload it into a fresh
 * graph and predict.  Usage: train_mlp [batches] (default: the whole epoch) */
#include <nabla.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* The model in g: x [64, 784] -> logits [64, 10]; nb_classifier adds the
 * labels input, the softmax cross-entropy loss and the probabilities, in a
 * model that g owns (nb_graph_free frees it). */
static nb_model *build(nb_graph *g)
{
	nb_graph_seed(g, 1);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(64, 784));
	nb_tensor *h = nb_relu(nb_dense(x, 256, "fc1"));
	h = nb_relu(nb_dense(h, 128, "fc2"));
	return nb_classifier(x, nb_dense(h, 10, "fc3"), NB_LOSS_SPARSE_CCE);
}

int main(int argc, char **argv)
{
	nb_dataset train = {0}, test = {0};
	char err[512];
	if (nb_fashion_mnist_load(NULL, true, &train, err, sizeof err) != NB_OK ||
	    nb_fashion_mnist_load(NULL, false, &test, err, sizeof err) != NB_OK) {
		fprintf(stderr, "skipped: %s (apt install dataset-fashion-mnist)\n", err);
		nb_dataset_free(&train);
		return 77; /* "skipped" for meson and automake */
	}
	int64_t batches = argc > 1 ? atoll(argv[1]) : 0; /* 0: all 938 */

	nb_graph *g = nb_graph_new(NB_F32);
	nb_model *m = build(g);
	nb_optim *opt = nb_adam(g, nb_model_loss(m), (nb_adam_opts){.lr = 1e-3});
	if (nb_graph_status(g) != NB_OK) { /* one check for the whole model */
		fprintf(stderr, "%s\n", nb_graph_errmsg(g));
		return 1;
	}
	printf("%lld parameters\n", (long long)nb_count_params(g));
	double loss, acc;
	/* .progress: a progress bar on stderr when it is a terminal */
	nb_fit_opts fit = {.epochs = 1, .seed = 1, .max_batches = batches, .progress = stderr};
	if (nb_fit(m, opt, &train, fit) != NB_OK || nb_evaluate(m, &test, &loss, &acc) != NB_OK ||
	    nb_checkpoint_save(g, opt, "mlp.safetensors", "mlp") != NB_OK) {
		fprintf(stderr, "%s\n", nb_graph_errmsg(g));
		return 1;
	}
	printf("test loss %.4f, accuracy %.2f%%; saved mlp.safetensors\n", loss, 100 * acc);

	/* A fresh graph, the same model, the trained weights (no optimizer). */
	nb_graph *g2 = nb_graph_new(NB_F32);
	nb_model *m2 = build(g2);
	nb_checkpoint_opts model_only = {.flags = NB_CKPT_MODEL_ONLY};
	if (nb_checkpoint_load_opts(g2, NULL, "mlp.safetensors", NULL, 0, model_only) != NB_OK) {
		fprintf(stderr, "%s\n", nb_graph_errmsg(g2));
		return 1;
	}
	enum { N = 5 };
	int32_t ids[N], ids2[N];
	float p[N * 10], p2[N * 10];
	if (nb_predict(m, test.x, N, ids, p) != NB_OK ||
	    nb_predict(m2, test.x, N, ids2, p2) != NB_OK) {
		fprintf(stderr, "%s\n", nb_graph_errmsg(g2));
		return 1;
	}
	for (int i = 0; i < N; i++)
		printf("test image %d: class %d %-11s p = %.3f  (true: %d %s)\n", i, ids2[i],
		       classes[ids2[i]], p2[i * 10 + ids2[i]], test.y[i], classes[test.y[i]]);
	int same = !memcmp(ids, ids2, sizeof ids) && !memcmp(p, p2, sizeof p);
	printf("reloaded model predicts %s\n", same ? "exactly as the trained one" : "DIFFERENTLY");

	nb_graph_free(g), nb_graph_free(g2); /* and their models */
	nb_dataset_free(&train), nb_dataset_free(&test);
	return same ? 0 : 1;
}
