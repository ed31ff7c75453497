/*
 * Per-layer gradient statistics (nabla/gradnorms.h): the recorded norms
 * against norms computed in f64 from the gradient and parameter tensors,
 * the step without them when off, nb_fit's epochs and windows, and the
 * vanishing gradients of the deep sigmoid network against its residual
 * twin.
 */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* n samples of d features in k classes, from a seed: features N(0, 1)-ish
 * plus a shift by class, so a model can learn something */
static nb_dataset synthetic(int64_t n, int d, int k, uint64_t seed)
{
	nb_dataset ds = {.n = n, .c = 1, .h = 1, .w = d, .num_classes = k};
	ds.x = malloc(sizeof(float) * (size_t)(n * d));
	ds.y = malloc(sizeof(int32_t) * (size_t)n);
	ck_assert(ds.x && ds.y);
	uint64_t s = seed;
	for (int64_t i = 0; i < n; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		ds.y[i] = (int32_t)((s >> 33) % (uint64_t)k);
		for (int j = 0; j < d; j++) {
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			double u = (double)(s >> 11) / 9007199254740992.0;
			ds.x[i * d + j] = (float)(2 * u - 1 + (j % k == ds.y[i] ? 0.8 : 0));
		}
	}
	return ds;
}

/* 6-8-8-3: layers "h1" (w, b), "h2" (w only), "h2.bn" (batchnorm), "out" */
static nb_model *small_model(nb_dtype dt, int64_t batch)
{
	nb_graph *g = nb_graph_new(dt);
	nb_graph_seed(g, 11);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(batch, 6));
	nb_tensor *h = nb_tanh(nb_dense(x, 8, "h1"));
	h = nb_dense_layer(h, 8, "h2", (nb_dense_opts){.no_bias = true});
	h = nb_batchnorm_layer(h, "h2.bn", (nb_batchnorm_opts){.relu = true});
	nb_model *m = nb_classifier(x, nb_dense(h, 3, "out"), NB_LOSS_SPARSE_CCE);
	ck_assert_msg(m != NULL, "%s", nb_graph_errmsg(g));
	return m;
}

/* feed rows [start, start + B) of d */
static void feed(nb_model *m, const nb_dataset *d, int64_t start)
{
	int64_t B = nb_model_batch(m), w = d->w;
	float *y = malloc(sizeof(float) * (size_t)B);
	double *sw = malloc(sizeof(double) * (size_t)B);
	for (int64_t i = 0; i < B; i++) {
		y[i] = (float)d->y[start + i];
		sw[i] = 1.0 / (double)B;
	}
	ck_assert_int_eq(nb_feed_f32(nb_model_input(m), d->x + start * w, B * w), NB_OK);
	ck_assert_int_eq(nb_feed_f32(nb_model_labels(m), y, B), NB_OK);
	ck_assert_int_eq(nb_feed_f64(nb_model_weights(m), sw, B), NB_OK);
	free(y), free(sw);
}

static double *read_all(nb_tensor *t)
{
	int64_t n = nb_tensor_size(t);
	double *v = malloc(sizeof(double) * (size_t)n);
	ck_assert_int_eq(nb_read_f64(t, v, n), NB_OK);
	return v;
}

/* the layer of a parameter name, as nb_summary: up to the last '.' */
static int layer_index(const char *name, const nb_layer_norms *rows, int n)
{
	size_t len = strrchr(name, '.') ? (size_t)(strrchr(name, '.') - name) : strlen(name);
	for (int l = 0; l < n; l++)
		if (strlen(rows[l].name) == len && !strncmp(rows[l].name, name, len))
			return l;
	return -1;
}

#define MAXL 8
#define STEPS 5

/* Steps of an optimizer kind on the small model: each step's per-layer
 * ||g|| and ||w_after - w_before|| / ||w_before||, computed in f64 from
 * the tensors, averaged over the steps, against what was recorded. */
static void check_against_tensors(nb_dtype dt, nb_optim_opts oo)
{
	nb_model *m = small_model(dt, 16);
	nb_optim *o = nb_optimizer(nb_model_graph(m), nb_model_loss(m), oo);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(nb_optim_grad_norms(o, NULL, 0, NULL), 0); /* never tracked */
	ck_assert(!nb_optim_tracks_grad_norms(o));
	ck_assert_int_eq(nb_optim_track_grad_norms(o, true), NB_OK);
	ck_assert(nb_optim_tracks_grad_norms(o));
	nb_layer_norms rows[MAXL];
	int L = nb_optim_grad_norms(o, rows, MAXL, NULL);
	/* in the order of the layers' first parameters */
	ck_assert_int_eq(L, 4);
	ck_assert_str_eq(rows[0].name, "h1");
	ck_assert_str_eq(rows[1].name, "h2");
	ck_assert_str_eq(rows[2].name, "h2.bn");
	ck_assert_str_eq(rows[3].name, "out");
	ck_assert_int_eq(rows[0].n_tensors, 2);
	ck_assert_int_eq(rows[1].n_tensors, 1);
	ck_assert_int_eq(rows[2].n_tensors, 2); /* gamma, beta (not the running stats) */
	ck_assert_int_eq(rows[0].params, 6 * 8 + 8);
	ck_assert_int_eq(rows[1].params, 8 * 8);
	ck_assert(isnan(rows[0].grad_norm)); /* no step yet */

	nb_dataset d = synthetic(16 * STEPS, 6, 3, 5);
	int P = nb_optim_num_params(o);
	double gsum[MAXL] = {0}, rsum[MAXL] = {0};
	for (int s = 0; s < STEPS; s++) {
		feed(m, &d, 16 * s);
		double *before[16];
		ck_assert_int_le(P, 16);
		for (int i = 0; i < P; i++)
			before[i] = read_all(nb_optim_param(o, i));
		ck_assert_int_eq(nb_step(o), NB_OK);
		double g2[MAXL] = {0}, w2[MAXL] = {0}, u2[MAXL] = {0};
		for (int i = 0; i < P; i++) {
			nb_tensor *p = nb_optim_param(o, i);
			int l = layer_index(nb_tensor_name(p), rows, L);
			ck_assert_int_ge(l, 0);
			double *gr = read_all(nb_optim_grad(o, p)), *after = read_all(p);
			for (int64_t k = 0; k < nb_tensor_size(p); k++) {
				g2[l] += gr[k] * gr[k];
				w2[l] += before[i][k] * before[i][k];
				u2[l] += (after[k] - before[i][k]) * (after[k] - before[i][k]);
			}
			free(gr), free(after), free(before[i]);
		}
		for (int l = 0; l < L; l++) {
			gsum[l] += sqrt(g2[l]);
			rsum[l] += sqrt(u2[l]) / sqrt(w2[l]);
		}
	}
	int64_t steps;
	ck_assert_int_eq(nb_optim_grad_norms(o, rows, MAXL, &steps), L);
	ck_assert_int_eq(steps, STEPS);
	/* f32: the norm node's result is rounded to float */
	double tol = dt == NB_F32 ? 1e-6 : 1e-12;
	for (int l = 0; l < L; l++) {
		double g = gsum[l] / STEPS, r = rsum[l] / STEPS;
		ck_assert_msg(g > 0 && r > 0, "%s: no gradient", rows[l].name);
		ck_assert_msg(fabs(rows[l].grad_norm - g) <= tol * g,
		              "%s: grad norm %.17g, f64 %.17g", rows[l].name, rows[l].grad_norm, g);
		ck_assert_msg(fabs(rows[l].update_ratio - r) <= (dt == NB_F32 ? 1e-5 : 1e-12) * r,
		              "%s: update ratio %.17g, f64 %.17g", rows[l].name,
		              rows[l].update_ratio, r);
	}
	/* a reset starts new means */
	nb_optim_grad_norms_reset(o);
	ck_assert_int_eq(nb_optim_grad_norms(o, rows, MAXL, &steps), L);
	ck_assert_int_eq(steps, 0);
	ck_assert(isnan(rows[0].grad_norm) && isnan(rows[0].update_ratio));
	feed(m, &d, 0);
	ck_assert_int_eq(nb_step(o), NB_OK);
	ck_assert_int_eq(nb_optim_grad_norms(o, rows, MAXL, &steps), L);
	ck_assert_int_eq(steps, 1);
	ck_assert(rows[0].grad_norm > 0);
	nb_dataset_free(&d);
	nb_graph_free(nb_model_graph(m));
}

START_TEST(test_norms_match_tensors)
{
	static const nb_dtype dts[2] = {NB_F64, NB_F32};
	const nb_optim_opts kinds[] = {
	    {.kind = NB_OPTIM_SGD, .lr = 0.1, .weight_decay = 0.01, .clip_norm = 0.5},
	    {.kind = NB_OPTIM_MOMENTUM, .lr = 0.05, .nesterov = true},
	    {.kind = NB_OPTIM_RMSPROP},
	    {.kind = NB_OPTIM_ADAMW, .lr = 0.01},
	};
	for (int t = 0; t < 2; t++)
		for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
			check_against_tensors(dts[t], kinds[k]);
}
END_TEST

/* Off, the step is what it was: no node is added to the graph or the
 * program, before or after nb_fit; on adds one reduction per layer, and
 * off again takes them out of the program. */
START_TEST(test_off_adds_no_nodes)
{
	nb_dataset d = synthetic(64, 6, 3, 7);
	nb_model *m = small_model(NB_F32, 16);
	nb_optim *o = nb_sgd(nb_model_graph(m), nb_model_loss(m), (nb_sgd_opts){.lr = 0.1});
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(nb_optim_keep(o, nb_model_logits(m)), NB_OK); /* what nb_fit keeps */
	int nodes = nb_graph_num_nodes(nb_model_graph(m));
	int steps = nb_program_num_steps(nb_optim_program(o));
	ck_assert_int_eq(nb_optim_track_grad_norms(o, false), NB_OK); /* never on: nothing */
	ck_assert_int_eq(nb_fit(m, o, &d, (nb_fit_opts){.epochs = 2, .seed = 1}), NB_OK);
	ck_assert_int_eq(nb_graph_num_nodes(nb_model_graph(m)), nodes);
	ck_assert_int_eq(nb_program_num_steps(nb_optim_program(o)), steps);
	ck_assert(!nb_optim_tracks_grad_norms(o));
	ck_assert_int_eq(nb_optim_grad_norms(o, NULL, 0, NULL), 0);

	ck_assert_int_eq(nb_fit(m, o, &d, (nb_fit_opts){.epochs = 1, .grad_norms = true}), NB_OK);
	int L = nb_optim_grad_norms(o, NULL, 0, NULL);
	ck_assert_int_eq(L, 4);
	ck_assert_int_eq(nb_graph_num_nodes(nb_model_graph(m)), nodes + L);
	ck_assert_int_eq(nb_program_num_steps(nb_optim_program(o)), steps + L);
	ck_assert_int_eq(nb_optim_track_grad_norms(o, false), NB_OK);
	ck_assert_int_eq(nb_program_num_steps(nb_optim_program(o)), steps);
	ck_assert_int_eq(nb_optim_track_grad_norms(o, true), NB_OK); /* the same nodes again */
	ck_assert_int_eq(nb_graph_num_nodes(nb_model_graph(m)), nodes + L);
	ck_assert_int_eq(nb_program_num_steps(nb_optim_program(o)), steps + L);
	ck_assert_int_eq(nb_optim_track_grad_norms(NULL, true), NB_ERR_ARG);
	nb_dataset_free(&d);
	nb_graph_free(nb_model_graph(m));
}
END_TEST

typedef struct fit_log {
	int windows, epochs;
	int64_t first[64], last[64];
	double wsum[64][MAXL]; /* per epoch: the windows' grad norms summed */
	int wcount[64];
	double epoch_norm[64][MAXL];
	int64_t epoch_first[64], epoch_last[64];
	int L;
} fit_log;

static void on_window(const nb_grad_norms *n, void *user)
{
	fit_log *f = user;
	ck_assert_int_lt(f->windows, 64);
	f->first[f->windows] = n->first_step;
	f->last[f->windows] = n->last_step;
	f->windows++;
	for (int l = 0; l < n->n_layers; l++)
		f->wsum[n->epoch][l] += n->layers[l].grad_norm;
	f->wcount[n->epoch]++;
}

static bool on_epoch(const nb_epoch_stats *s, void *user)
{
	fit_log *f = user;
	ck_assert_ptr_nonnull(s->grad_norms);
	ck_assert_int_eq(s->grad_norms->epoch, s->epoch);
	f->L = s->grad_norms->n_layers;
	for (int l = 0; l < f->L; l++)
		f->epoch_norm[s->epoch][l] = s->grad_norms->layers[l].grad_norm;
	f->epoch_first[s->epoch] = s->grad_norms->first_step;
	f->epoch_last[s->epoch] = s->grad_norms->last_step;
	f->epochs++;
	return true;
}

/* nb_fit's epochs and windows: an interval of 1 reports every step, and
 * each epoch's means are the means of its steps; an interval of 3 reports
 * at steps 3, 6, 9 across the epochs' boundaries */
START_TEST(test_fit_epochs_and_windows)
{
	nb_dataset d = synthetic(80, 6, 3, 9); /* 5 batches of 16 per epoch */
	nb_model *m = small_model(NB_F64, 16);
	nb_optim *o = nb_optimizer(nb_model_graph(m), nb_model_loss(m),
	                           (nb_optim_opts){.kind = NB_OPTIM_ADAM});
	fit_log f = {0};
	nb_fit_opts fo = {.epochs = 2,
	                  .seed = 3,
	                  .grad_norms = true,
	                  .grad_norm_interval = 1,
	                  .on_grad_norms = on_window,
	                  .on_epoch = on_epoch,
	                  .user = &f};
	ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_OK);
	ck_assert_int_eq(f.windows, 10);
	ck_assert_int_eq(f.epochs, 2);
	ck_assert_int_eq(f.L, 4);
	for (int e = 1; e <= 2; e++) {
		ck_assert_int_eq(f.wcount[e], 5);
		ck_assert_int_eq(f.epoch_first[e], 5 * (e - 1) + 1);
		ck_assert_int_eq(f.epoch_last[e], 5 * e);
		for (int l = 0; l < f.L; l++) {
			double mean = f.wsum[e][l] / 5;
			ck_near(f.epoch_norm[e][l], mean, 1e-12 * mean);
		}
	}
	for (int w = 0; w < 10; w++) {
		ck_assert_int_eq(f.first[w], w + 1);
		ck_assert_int_eq(f.last[w], w + 1);
	}
	fit_log f3 = {0};
	fo.epochs = 4; /* two more epochs: steps 11-20 */
	fo.first_epoch = 2;
	fo.grad_norm_interval = 3;
	fo.user = &f3;
	ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_OK);
	ck_assert_int_eq(f3.epochs, 2);
	ck_assert_int_eq(f3.windows, 3); /* at steps 12, 15, 18 */
	ck_assert_int_eq(f3.first[0], 11);
	ck_assert_int_eq(f3.last[0], 12);
	ck_assert_int_eq(f3.first[1], 13);
	ck_assert_int_eq(f3.last[1], 15);
	ck_assert_int_eq(f3.first[2], 16);
	ck_assert_int_eq(f3.last[2], 18);
	ck_assert_int_eq(f3.epoch_first[4], 16);
	ck_assert_int_eq(f3.epoch_last[4], 20);
	nb_dataset_free(&d);
	nb_graph_free(nb_model_graph(m));
}
END_TEST

START_TEST(test_fit_refuses_bad_interval)
{
	nb_dataset d = synthetic(32, 6, 3, 9);
	nb_model *m = small_model(NB_F32, 16);
	nb_optim *o = nb_sgd(nb_model_graph(m), nb_model_loss(m), (nb_sgd_opts){0});
	int nodes = nb_graph_num_nodes(nb_model_graph(m));
	nb_fit_opts fo = {.grad_norms = true, .grad_norm_interval = -1};
	ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_ERR_ARG);
	ck_assert_ptr_nonnull(
	    strstr(nb_graph_errmsg(nb_model_graph(m)), "grad_norm_interval -1 must be positive"));
	ck_assert_int_eq(nb_graph_num_nodes(nb_model_graph(m)), nodes);
	ck_assert_int_eq(nb_optim_steps(o), 0);
	nb_graph_free(nb_model_graph(m));

	m = small_model(NB_F32, 16);
	o = nb_sgd(nb_model_graph(m), nb_model_loss(m), (nb_sgd_opts){0});
	fo = (nb_fit_opts){.grad_norm_interval = 5};
	ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(nb_model_graph(m)), "without grad_norms"));
	nb_graph_free(nb_model_graph(m));
	nb_dataset_free(&d);
}
END_TEST

static bool keep_epoch(const nb_epoch_stats *s, void *user);

/* The same seed and data give the same bits, run after run */
START_TEST(test_deterministic)
{
	nb_dataset d = synthetic(96, 6, 3, 4);
	nb_layer_norms rows[2][MAXL];
	for (int run = 0; run < 2; run++) {
		nb_model *m = small_model(NB_F32, 16);
		nb_optim *o = nb_optimizer(nb_model_graph(m), nb_model_loss(m),
		                           (nb_optim_opts){.kind = NB_OPTIM_ADAM});
		nb_fit_opts fo = {.epochs = 2,
		                  .seed = 8,
		                  .grad_norms = true,
		                  .on_epoch = keep_epoch,
		                  .user = rows[run]};
		ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_OK);
		nb_graph_free(nb_model_graph(m));
	}
	for (int l = 0; l < 4; l++) {
		ck_assert(rows[0][l].grad_norm > 0 && rows[0][l].update_ratio > 0);
		ck_assert(!memcmp(&rows[0][l].grad_norm, &rows[1][l].grad_norm, sizeof(double)));
		ck_assert(
		    !memcmp(&rows[0][l].update_ratio, &rows[1][l].update_ratio, sizeof(double)));
		ck_assert(
		    !memcmp(&rows[0][l].weight_norm, &rows[1][l].weight_norm, sizeof(double)));
	}
	nb_dataset_free(&d);
}
END_TEST

static bool keep_epoch(const nb_epoch_stats *s, void *user)
{
	nb_layer_norms *out = user;
	memcpy(out, s->grad_norms->layers, sizeof *out * (size_t)s->grad_norms->n_layers);
	return true;
}

/* first-layer / last-layer gradient norm of a zoo model after a few
 * batches of synthetic 28x28 data, seed 1 */
static double first_last(const char *model, int *layers)
{
	nb_dataset d = synthetic(8 * 32, 784, 10, 1);
	d.w = 28, d.h = 28;
	nb_model *m = nb_test_zoo(model, NB_F32, 32, 1);
	const nb_zoo_recipe *rc = &nb_zoo_find(model)->recipe;
	nb_optim *o = nb_optimizer(
	    nb_model_graph(m), nb_model_loss(m),
	    (nb_optim_opts){.kind = rc->optim, .lr = rc->lr, .momentum = rc->momentum});
	ck_assert_ptr_nonnull(o);
	nb_layer_norms rows[32];
	nb_fit_opts fo = {.seed = 1, .grad_norms = true, .on_epoch = keep_epoch, .user = rows};
	ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_OK);
	*layers = nb_optim_grad_norms(o, NULL, 0, NULL);
	ck_assert_int_le(*layers, 32);
	ck_assert_str_eq(rows[0].name, "fc1");
	ck_assert_str_eq(rows[*layers - 1].name, "out");
	double r = rows[0].grad_norm / rows[*layers - 1].grad_norm;
	nb_dataset_free(&d);
	nb_graph_free(nb_model_graph(m));
	return r;
}

/* The lecture notes' vanishing gradients: through ten sigmoid layers the
 * first layer's gradient is orders of magnitude below the last one's; the
 * same network with identity shortcuts, ReLU with He initialisation, and
 * batchnorm keep it within two orders of magnitude. */
START_TEST(test_sigmoid_vanishes)
{
	int L;
	double sig = first_last("deep-sigmoid", &L);
	ck_assert_int_eq(L, 11);
	double res = first_last("deep-residual", &L);
	ck_assert_int_eq(L, 11);
	double he = first_last("deep-relu-he", &L);
	double bn = first_last("deep-relu-bn", &L);
	ck_assert_int_eq(L, 21);
	printf(
	    "first/last gradient norm: sigmoid %.3g, residual %.3g, relu-he %.3g, relu-bn %.3g\n",
	    sig, res, he, bn);
	ck_assert_msg(sig < 1e-4 * res, "sigmoid %g, residual %g", sig, res);
	ck_assert_msg(sig < 1e-4 * he && sig < 1e-4 * bn, "sigmoid %g, he %g, bn %g", sig, he, bn);
	ck_assert_msg(res > 1e-2 && he > 1e-2 && bn > 1e-2, "residual %g, he %g, bn %g", res, he,
	              bn);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("gradnorms");
	TCase *tc = tcase_create("gradnorms");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_norms_match_tensors);
	tcase_add_test(tc, test_off_adds_no_nodes);
	tcase_add_test(tc, test_fit_epochs_and_windows);
	tcase_add_test(tc, test_fit_refuses_bad_interval);
	tcase_add_test(tc, test_deterministic);
	tcase_add_test(tc, test_sigmoid_vanishes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
