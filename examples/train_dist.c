/* Data-parallel training over MPI: every rank holds the same MLP and trains
 * on its shard of each global batch of 64; the gradients are summed over
 * the ranks inside every step, so the run is the single-process one.
 * Usage: mpirun -np 2 ./train_dist [batches]   (alone, it is one process) */
#include <nabla.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	nb_dist *dist; /* the communicator: MPI starts here, if mpirun started us */
	char err[512];
	if (nb_dist_init(&argc, &argv, (nb_dist_opts){0}, &dist, err, sizeof err) != NB_OK) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	int rank = nb_dist_rank(dist), ranks = nb_dist_size(dist);
	nb_dataset train = {0}, test = {0};
	if (nb_fashion_mnist_load(NULL, true, &train, err, sizeof err) != NB_OK ||
	    nb_fashion_mnist_load(NULL, false, &test, err, sizeof err) != NB_OK) {
		fprintf(stderr, "skipped: %s (apt install dataset-fashion-mnist)\n", err);
		nb_dataset_free(&train);
		nb_dist_finalize(dist);
		return 77; /* "skipped" for meson and automake */
	}
	const int64_t global = 64; /* samples per step, over all ranks */
	int64_t batches = argc > 1 ? atoll(argv[1]) : 0;

	/* every rank builds the same model, its batch one rank's share */
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, 1);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(nb_dist_local_batch(dist, global), 784));
	nb_tensor *h = nb_relu(nb_dense(x, 256, "fc1"));
	nb_model *m = nb_classifier(x, nb_dense(h, 10, "fc2"), NB_LOSS_SPARSE_CCE);
	/* .dist: each step sums the gradients over the ranks */
	nb_optim *opt = nb_optimizer(
	    g, nb_model_loss(m), (nb_optim_opts){.kind = NB_OPTIM_ADAM, .lr = 1e-3, .dist = dist});
	/* nb_fit broadcasts rank 0's weights, then shards every global batch */
	nb_fit_opts fit = {.epochs = 1, .seed = 1, .max_batches = batches, .global_batch = global};
	double loss = 0, acc = 0;
	nb_status st = nb_graph_status(g);
	if (st == NB_OK)
		st = nb_fit(m, opt, &train, fit);
	if (st == NB_OK) /* each rank a part of the test set, the counts summed */
		st = nb_evaluate_dist(m, &test, dist, &loss, &acc);
	if (st == NB_OK && rank == 0) /* one checkpoint, by rank 0 */
		st = nb_checkpoint_save(g, opt, "train_dist.safetensors", "mlp");
	if (st != NB_OK) {
		fprintf(stderr, "rank %d: %s\n", rank, nb_graph_errmsg(g));
		nb_dist_abort(dist, 1); /* several ranks: end them all, none waits for this one */
	} else if (rank == 0) {
		printf("%d rank%s, global batch %lld: test loss %.4f, accuracy %.2f%%\n", ranks,
		       ranks == 1 ? "" : "s", (long long)global, loss, 100 * acc);
	}
	nb_graph_free(g); /* and the model */
	nb_dataset_free(&train);
	nb_dataset_free(&test);
	nb_dist_finalize(dist);
	return st == NB_OK && acc > 0.7 ? 0 : 1; /* learned? */
}
