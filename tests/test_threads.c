/*
 * Threads: the process-wide thread count set from one thread while another
 * creates the first graph (which sets the default count on first use);
 * separate graphs built, trained and freed on separate threads while
 * another thread changes the count.  Meant also for the ThreadSanitizer
 * build (docs/design.md, "Threads and determinism"), which reports any
 * unsynchronised access these make.
 */
#include "test_util.h"

#include <blis.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the count: an explicit one is never lost to the default --------------- */

static pthread_barrier_t start;

static void *set_three(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&start);
	nb_set_num_threads(3);
	return NULL;
}

/* the first use, which sets the default count: nb_graph_new, or asking
 * for the count (sooner after the start: more often before the other
 * thread's nb_set_num_threads) */
static void *first_use(void *arg)
{
	const bool graph = *(const bool *)arg;
	pthread_barrier_wait(&start);
	if (graph)
		nb_graph_free(nb_graph_new(NB_F32));
	else
		(void)nb_num_threads();
	return NULL;
}

/* In a fresh process (nothing has asked for the count yet), one thread
 * sets 3 threads while another creates a graph or asks for the count;
 * afterwards nabla's count and BLIS's are 3.  Exit status 0 when they
 * are, else 1. */
static int race_once(bool graph)
{
	pthread_t a, b;
	pthread_barrier_init(&start, NULL, 2);
	if (pthread_create(&a, NULL, set_three, NULL) ||
	    pthread_create(&b, NULL, first_use, &graph))
		return 2;
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	pthread_barrier_destroy(&start);
	int n = nb_num_threads(), nb = (int)bli_thread_get_num_threads();
	if (n != 3 || nb != 3) {
		fprintf(stderr,
		        "after nb_set_num_threads(3) beside the first use: %d threads, BLIS %d\n",
		        n, nb);
		return 1;
	}
	return 0;
}

enum { RACES = 256 };

START_TEST(test_set_count_beside_first_graph)
{
	int bad = 0;
	for (int i = 0; i < RACES; i++) {
		fflush(NULL);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			_exit(race_once(i % 2));
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 2, "child %d: status %#x",
		              i, status);
		bad += WEXITSTATUS(status) != 0;
	}
	ck_assert_msg(bad == 0, "%d of %d processes lost the explicit thread count", bad, RACES);
}
END_TEST

START_TEST(test_count_is_set)
{
	nb_set_num_threads(3);
	ck_assert_int_eq(nb_num_threads(), 3);
	ck_assert_int_eq(nb_get_num_threads(), 3); /* the former name */
	ck_assert_int_eq(bli_thread_get_num_threads(), 3);
	nb_set_num_threads(0);
	ck_assert_int_eq(nb_num_threads(), omp_get_num_procs());
	ck_assert_int_eq(bli_thread_get_num_threads(), omp_get_num_procs());
	nb_set_num_threads(-1);
	ck_assert_int_eq(nb_num_threads(), omp_get_num_procs());
}
END_TEST

/* ---- separate graphs on separate threads -------------------------------------- */

enum {
	GRAPHS = 4,
	ROWS = 64,
	FEATURES = 512, /* [64, 512]: the elementwise kernels run on threads */
	HIDDEN = 64,
	CLASSES = 10,
	STEPS = 5,
};

typedef struct job {
	uint64_t seed;
	double loss[STEPS], norm[STEPS];
	double w2[CLASSES * HIDDEN];
	nb_status st;
} job;

/* dense 512 -> 64, ReLU, dense 64 -> 10, softmax cross-entropy; SGD with
 * clipping; f64.  Every value depends on the seed alone. */
static void *train(void *arg)
{
	job *j = arg;
	nb_graph *g = nb_graph_new(NB_F64);
	if (!g) {
		j->st = NB_ERR_NOMEM;
		return NULL;
	}
	nb_graph_seed(g, j->seed);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(ROWS, FEATURES), NB_UNIFORM(-1, 1));
	nb_tensor *w1 = nb_param(g, "w1", NB_SHAPE(FEATURES, HIDDEN), NB_UNIFORM(-0.05, 0.05));
	nb_tensor *w2 = nb_param(g, "w2", NB_SHAPE(HIDDEN, CLASSES), NB_UNIFORM(-0.1, 0.1));
	double ids[ROWS];
	for (int i = 0; i < ROWS; i++)
		ids[i] = (double)((i * 7 + (int)j->seed) % CLASSES);
	nb_tensor *y = nb_constant(g, "y", NB_SHAPE(ROWS), ids);
	nb_tensor *h = nb_relu(nb_matmul(x, w1));
	nb_tensor *loss = nb_sparse_cce(nb_matmul(h, w2), y, NB_MEAN);
	nb_optim *o = nb_sgd(g, loss, (nb_sgd_opts){.lr = 0.5, .clip_norm = 1.0});
	j->st = o ? NB_OK : nb_graph_status(g);
	for (int s = 0; s < STEPS && j->st == NB_OK; s++) {
		j->st = nb_step(o);
		j->loss[s] = nb_item(loss);
		j->norm[s] = nb_optim_grad_norm(o);
	}
	if (j->st == NB_OK)
		j->st = nb_read_f64(w2, j->w2, CLASSES * HIDDEN);
	nb_graph_free(g);
	return NULL;
}

static atomic_bool done;

/* changes the count between 1 and 2 until the graphs are trained */
static void *toggle(void *arg)
{
	(void)arg;
	for (int k = 0; !atomic_load(&done); k++)
		nb_set_num_threads(1 + k % 2);
	return NULL;
}

/* the reference: the graphs trained one after another */
static void train_one_by_one(job *ref)
{
	for (int i = 0; i < GRAPHS; i++) {
		ref[i] = (job){.seed = 40 + (uint64_t)i};
		train(&ref[i]);
		ck_assert_int_eq(ref[i].st, NB_OK);
		ck_assert_msg(ref[i].loss[STEPS - 1] < ref[i].loss[0], "graph %d did not train", i);
	}
}

/* the same values as one after another (the thread count may have changed
 * under them: the same up to rounding) */
static void check_same(const job *run, const job *ref)
{
	for (int i = 0; i < GRAPHS; i++) {
		ck_assert_int_eq(run[i].st, NB_OK);
		for (int s = 0; s < STEPS; s++) {
			ck_near(run[i].loss[s], ref[i].loss[s], 1e-12 * fabs(ref[i].loss[s]));
			ck_near(run[i].norm[s], ref[i].norm[s], 1e-12 * fabs(ref[i].norm[s]));
		}
		for (int k = 0; k < CLASSES * HIDDEN; k++)
			ck_near(run[i].w2[k], ref[i].w2[k], 1e-12);
	}
}

START_TEST(test_graphs_on_threads)
{
	nb_set_num_threads(2);
	job ref[GRAPHS], run[GRAPHS];
	train_one_by_one(ref);
	pthread_t t[GRAPHS], tog;
	atomic_store(&done, false);
	ck_assert_int_eq(pthread_create(&tog, NULL, toggle, NULL), 0);
	for (int i = 0; i < GRAPHS; i++) {
		run[i] = (job){.seed = 40 + (uint64_t)i};
		ck_assert_int_eq(pthread_create(&t[i], NULL, train, &run[i]), 0);
	}
	for (int i = 0; i < GRAPHS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&done, true);
	pthread_join(tog, NULL);
	check_same(run, ref);
}
END_TEST

/* The same from the threads of the caller's own OpenMP parallel region:
 * our regions nested in it run on one thread each, and nothing of ours
 * shares work with the caller's team. */
START_TEST(test_graphs_in_openmp_region)
{
	nb_set_num_threads(2);
	job ref[GRAPHS], run[GRAPHS];
	train_one_by_one(ref);
#pragma omp parallel for num_threads(GRAPHS) schedule(static, 1)
	for (int i = 0; i < GRAPHS; i++) {
		run[i] = (job){.seed = 40 + (uint64_t)i};
		train(&run[i]);
	}
	check_same(run, ref);
}
END_TEST

/* y, dx and dw of a convolution of x [n, c, h, h] by w [o, c, k, k] (pad
 * k / 2, algorithm algo), run as planned for 2 threads, into out (3
 * arrays); from inside the caller's own parallel region (nested: our
 * regions then get one thread, not the 2 planned) when nested */
static void conv_run(nb_dtype dt, int n, int c, int o, int h, int k, nb_conv_algo algo, bool nested,
                     double *out[3])
{
	nb_graph *g = nb_graph_new(dt);
	nb_graph_seed(g, 9);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(n, c, h, h), NB_UNIFORM(-1, 1));
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(o, c, k, k), NB_UNIFORM(-1, 1));
	nb_conv2d_opts opt = NB_CONV_OPTS(1, k / 2);
	opt.algo = algo;
	nb_tensor *y = nb_conv2d(x, w, NULL, opt);
	nb_tensor *u = nb_param(g, "u", nb_tensor_shape(y), NB_UNIFORM(-1, 1));
	nb_tensor *L = nb_sum(nb_mul(y, nb_stop_gradient(u)));
	nb_tensor *t[3] = {y, nb_grad(L, x), nb_grad(L, w)};
	nb_program *p = nb_compile(g, t, 3);
	ck_assert_ptr_nonnull(p);
	nb_status st = NB_OK;
	if (nested) {
#pragma omp parallel num_threads(2)
#pragma omp single
		st = nb_run(p);
	} else {
		st = nb_run(p);
	}
	ck_assert_int_eq(st, NB_OK);
	for (int i = 0; i < 3; i++) {
		const int64_t m = nb_tensor_size(t[i]);
		out[i] = malloc(sizeof(double) * (size_t)m);
		ck_assert_int_eq(nb_read_f64(t[i], out[i], m), NB_OK);
	}
	nb_graph_free(g);
}

/* Convolutions run from inside the caller's parallel region, where their
 * own regions get fewer threads than planned, give what they give outside
 * it (up to the rounding of a different split): the kernels split their
 * work by the team they get, not the one planned.  They split by the plan
 * before, and a nested run silently skipped half the images of the weight
 * gradient.  Every path: direct, by rows and one-channel (images and one
 * image's rows on threads), im2col, Winograd, in f32 and f64. */
START_TEST(test_convs_in_openmp_region)
{
	static const struct {
		int n, c, o, h, k;
		nb_conv_algo algo;
	} cs[] = {
	    {4, 16, 16, 16, 3, NB_CONV_DIRECT},   {1, 16, 16, 16, 3, NB_CONV_DIRECT},
	    {4, 3, 16, 32, 3, NB_CONV_AUTO},      {1, 3, 16, 32, 3, NB_CONV_AUTO},
	    {4, 1, 6, 28, 5, NB_CONV_AUTO},       {4, 8, 16, 16, 3, NB_CONV_IM2COL},
	    {4, 16, 16, 16, 3, NB_CONV_WINOGRAD},
	};
	nb_set_num_threads(2);
	for (int dt = 0; dt < 2; dt++)
		for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
			double *want[3], *got[3];
			const nb_dtype type = dt ? NB_F64 : NB_F32;
			conv_run(type, cs[k].n, cs[k].c, cs[k].o, cs[k].h, cs[k].k, cs[k].algo,
			         false, want);
			conv_run(type, cs[k].n, cs[k].c, cs[k].o, cs[k].h, cs[k].k, cs[k].algo,
			         true, got);
			const int64_t sizes[3] = {(int64_t)cs[k].n * cs[k].o * cs[k].h * cs[k].h,
			                          (int64_t)cs[k].n * cs[k].c * cs[k].h * cs[k].h,
			                          (int64_t)cs[k].o * cs[k].c * cs[k].k * cs[k].k};
			const double tol = dt ? 1e-12 : 1e-5;
			for (int i = 0; i < 3; i++) {
				for (int64_t e = 0; e < sizes[i]; e++)
					ck_assert_msg(
					    fabs(got[i][e] - want[i][e]) <=
					        tol * (1 + fabs(want[i][e])),
					    "config %zu %s, output %d [%lld]: nested %.17g, "
					    "outside %.17g",
					    k, dt ? "f64" : "f32", i, (long long)e, got[i][e],
					    want[i][e]);
				free(want[i]), free(got[i]);
			}
		}
	nb_set_num_threads(0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("threads");
	TCase *tc = tcase_create("threads");
	/* first: it forks, and a process with threads (OpenMP's, after the
	 * other tests) should not */
	tcase_add_test(tc, test_set_count_beside_first_graph);
	tcase_add_test(tc, test_count_is_set);
	tcase_add_test(tc, test_graphs_on_threads);
	tcase_add_test(tc, test_graphs_in_openmp_region);
	tcase_add_test(tc, test_convs_in_openmp_region);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
