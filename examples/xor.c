/* XOR with a 2-2-1 sigmoid network: define, train with SGD, predict. */
#include <nabla.h>
#include <stdio.h>

int main(void)
{
	const float X[8] = {0, 0, 0, 1, 1, 0, 1, 1}, Y[4] = {0, 1, 1, 0};
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, 1);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(4, 2));
	nb_tensor *y = nb_input(g, "y", NB_SHAPE(4, 1));
	nb_dense_opts u = {
	    .custom_init = true, .w_init = NB_UNIFORM(-1, 1), .b_init = NB_UNIFORM(-1, 1)};
	nb_tensor *h = nb_sigmoid(nb_dense_layer(x, 2, "hidden", u));
	nb_tensor *p = nb_sigmoid(nb_dense_layer(h, 1, "out", u));
	nb_tensor *loss = nb_mse(p, y, NB_MEAN);
	nb_optim *opt = nb_sgd(g, loss, (nb_sgd_opts){.lr = 0.5}); /* adds backward + update */
	if (nb_graph_status(g) != NB_OK) {                         /* one check for all of it */
		fprintf(stderr, "%s\n", nb_graph_errmsg(g));
		return 1;
	}
	nb_feed_f32(x, X, 8);
	nb_feed_f32(y, Y, 4);
	for (int epoch = 1; epoch <= 20000; epoch++)
		if (nb_step(opt) != NB_OK || epoch % 5000 == 0)
			printf("epoch %5d  loss %.5f\n", epoch, nb_item(loss));
	float out[4];
	nb_eval(p); /* forward only, with the trained weights */
	nb_read_f32(p, out, 4);
	for (int i = 0; i < 4; i++)
		printf("%g xor %g -> %.3f\n", X[2 * i], X[2 * i + 1], out[i]);
	nb_graph_save_dot(g, "xor.dot", NB_DOT_BACKWARD); /* dot -Tsvg xor.dot > xor.svg */
	nb_graph_free(g);
	return out[0] < 0.5 && out[1] > 0.5 && out[2] > 0.5 && out[3] < 0.5 ? 0 : 1; /* learned? */
}
