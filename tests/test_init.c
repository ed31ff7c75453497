/*
 * Initialisers: nb_fans for dense and conv weights, and every nb_init kind
 * checked against its definition on ~100k samples.  The statistical bounds
 * are 5 standard errors wide (a false failure has probability below 1e-6
 * per check), and the runs are seeded, so they are also reproducible.
 */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

START_TEST(test_fans)
{
	double fi, fo;
	/* dense: [out, in] as PyTorch's nn.Linear */
	nb_fans(NB_SHAPE(10, 784), &fi, &fo);
	ck_near(fi, 784, 0);
	ck_near(fo, 10, 0);
	/* conv: [O, I, kh, kw], both fans times the receptive field */
	nb_fans(NB_SHAPE(16, 3, 5, 5), &fi, &fo);
	ck_near(fi, 3 * 25, 0);
	ck_near(fo, 16 * 25, 0);
	nb_fans(NB_SHAPE(64, 32, 3, 1), &fi, &fo);
	ck_near(fi, 32 * 3, 0);
	ck_near(fo, 64 * 3, 0);
	/* conv1d [O, I, k] */
	nb_fans(NB_SHAPE(4, 6, 3), &fi, &fo);
	ck_near(fi, 18, 0);
	ck_near(fo, 12, 0);
	/* a vector (bias): both fans are its length; a scalar: 1 */
	nb_fans(NB_SHAPE(7), &fi, &fo);
	ck_near(fi, 7, 0);
	ck_near(fo, 7, 0);
	nb_fans(NB_SCALAR, &fi, &fo);
	ck_near(fi, 1, 0);
	ck_near(fo, 1, 0);
	/* either output may be NULL */
	nb_fans(NB_SHAPE(3, 5), NULL, &fo);
	ck_near(fo, 3, 0);
	nb_fans(NB_SHAPE(3, 5), &fi, NULL);
	ck_near(fi, 5, 0);
}
END_TEST

/* ---- sample statistics ------------------------------------------------------ */

typedef struct stats {
	int64_t n;
	double min, max, mean, sd, skew, kurt; /* kurt: excess kurtosis */
} stats;

static stats sample_stats(const double *v, int64_t n)
{
	stats s = {.n = n, .min = v[0], .max = v[0]};
	double sum = 0;
	for (int64_t i = 0; i < n; i++) {
		sum += v[i];
		s.min = fmin(s.min, v[i]);
		s.max = fmax(s.max, v[i]);
	}
	s.mean = sum / (double)n;
	double m2 = 0, m3 = 0, m4 = 0;
	for (int64_t i = 0; i < n; i++) {
		double d = v[i] - s.mean;
		m2 += d * d, m3 += d * d * d, m4 += d * d * d * d;
	}
	m2 /= (double)n, m3 /= (double)n, m4 /= (double)n;
	s.sd = sqrt(m2);
	s.skew = m3 / (m2 * s.sd);
	s.kurt = m4 / (m2 * m2) - 3;
	return s;
}

/* the values of a fresh parameter of the given shape and init (f64 graph) */
static double *init_values(nb_shape shape, nb_init init, uint64_t seed, int64_t *n)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_graph_seed(g, seed);
	nb_tensor *w = nb_param(g, "w", shape, init);
	ck_graph_ok(g);
	*n = nb_tensor_size(w);
	double *v = malloc((size_t)*n * sizeof *v);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(nb_read_f64(w, v, *n), NB_OK);
	nb_graph_free(g);
	return v;
}

/* U(lo, hi): inside the bounds, reaching near both ends, mean, standard
 * deviation and the fill of ten equal bins as a uniform law gives them */
static void check_uniform(nb_shape shape, nb_init init, double lo, double hi)
{
	int64_t n;
	double *v = init_values(shape, init, 7, &n);
	ck_assert_int_ge(n, 100000);
	stats s = sample_stats(v, n);
	double w = hi - lo, sd = w / sqrt(12.0);
	ck_assert_msg(s.min >= lo && s.max < hi, "[%g, %g] outside [%g, %g)", s.min, s.max, lo, hi);
	/* P(no sample in the lowest 1e-4 of the range) = (1 - 1e-4)^n < e^-10 */
	ck_assert_msg(s.min < lo + 1e-4 * w && s.max > hi - 1e-4 * w,
	              "[%g, %g] does not fill [%g, %g)", s.min, s.max, lo, hi);
	ck_near(s.mean, (lo + hi) / 2, 5 * sd / sqrt((double)n));
	/* var(sample variance) = (mu4 - sd^4)/n with mu4 = w^4/80 */
	double var_se = sqrt((pow(w, 4) / 80 - pow(sd, 4)) / (double)n);
	ck_near(s.sd * s.sd, sd * sd, 5 * var_se);
	int64_t bins[10] = {0};
	for (int64_t i = 0; i < n; i++)
		bins[(int)((v[i] - lo) / w * 10)]++;
	for (int b = 0; b < 10; b++)
		ck_near((double)bins[b] / (double)n, 0.1, 5 * sqrt(0.09 / (double)n));
	free(v);
}

/* N(mean, sd^2): mean, standard deviation, skewness, excess kurtosis and
 * the share within one standard deviation (0.682689...) */
static void check_normal(nb_shape shape, nb_init init, double mean, double sd)
{
	int64_t n;
	double *v = init_values(shape, init, 11, &n);
	ck_assert_int_ge(n, 100000);
	stats s = sample_stats(v, n);
	double rn = sqrt((double)n);
	ck_near(s.mean, mean, 5 * sd / rn);
	ck_near(s.sd, sd, 5 * sd / sqrt(2.0 * (double)n));
	ck_near(s.skew, 0, 5 * sqrt(6.0) / rn);
	ck_near(s.kurt, 0, 5 * sqrt(24.0) / rn);
	int64_t within = 0;
	for (int64_t i = 0; i < n; i++)
		within += fabs(v[i] - mean) <= sd;
	double p1 = erf(1 / sqrt(2.0));
	ck_near((double)within / (double)n, p1, 5 * sqrt(p1 * (1 - p1) / (double)n));
	free(v);
}

/* dense [250, 400]: 100 000 weights, fan_in 400, fan_out 250 */
#define DENSE NB_SHAPE(250, 400)
/* conv [128, 32, 5, 5]: 102 400 weights, fan_in 800, fan_out 3200 */
#define CONV NB_SHAPE(128, 32, 5, 5)

START_TEST(test_constant_kinds)
{
	const struct {
		nb_init init;
		double value;
	} cases[] = {
	    {NB_ZEROS, 0},
	    {NB_ONES, 1},
	    {{.kind = NB_INIT_CONSTANT, .a = -2.5}, -2.5},
	    {NB_UNIFORM(0.75, 0.75), 0.75}, /* an empty interval is its one value */
	    {NB_NORMAL(3, 0), 3},           /* so is a zero standard deviation */
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int64_t n;
		double *v = init_values(NB_SHAPE(30, 40), cases[c].init, 3, &n);
		for (int64_t i = 0; i < n; i++)
			ck_assert_msg(v[i] == cases[c].value, "case %zu: v[%lld] = %g, expected %g",
			              c, (long long)i, v[i], cases[c].value);
		free(v);
	}
}
END_TEST

START_TEST(test_uniform)
{
	check_uniform(DENSE, NB_UNIFORM(-2, 3), -2, 3);
	check_uniform(NB_SHAPE(100000), NB_UNIFORM(0, 1), 0, 1);
}
END_TEST

START_TEST(test_normal)
{
	check_normal(DENSE, NB_NORMAL(1.5, 0.5), 1.5, 0.5);
	check_normal(NB_SHAPE(100000), NB_NORMAL(0, 1), 0, 1);
}
END_TEST

START_TEST(test_xavier)
{
	nb_init xu = {.kind = NB_INIT_XAVIER_UNIFORM}, xn = {.kind = NB_INIT_XAVIER_NORMAL};
	/* r = sqrt(6 / (fan_in + fan_out)), std = sqrt(2 / (fan_in + fan_out)) */
	double r = sqrt(6.0 / 650);
	check_uniform(DENSE, xu, -r, r);
	check_normal(DENSE, xn, 0, sqrt(2.0 / 650));
	check_uniform(CONV, xu, -sqrt(6.0 / 4000), sqrt(6.0 / 4000));
	check_normal(CONV, xn, 0, sqrt(2.0 / 4000));
	/* the gain multiplies both */
	xu.gain = xn.gain = 2;
	check_uniform(DENSE, xu, -2 * r, 2 * r);
	check_normal(DENSE, xn, 0, 2 * sqrt(2.0 / 650));
}
END_TEST

START_TEST(test_he)
{
	nb_init hu = {.kind = NB_INIT_HE_UNIFORM}, hn = {.kind = NB_INIT_HE_NORMAL};
	/* default gain sqrt(2): r = sqrt(6 / fan_in), std = sqrt(2 / fan_in) */
	check_uniform(DENSE, hu, -sqrt(6.0 / 400), sqrt(6.0 / 400));
	check_normal(DENSE, hn, 0, sqrt(2.0 / 400));
	check_uniform(CONV, hu, -sqrt(6.0 / 800), sqrt(6.0 / 800));
	check_normal(CONV, hn, 0, sqrt(2.0 / 800));
	/* gain 1 (linear layers): r = sqrt(3 / fan_in), std = 1 / sqrt(fan_in) */
	hu.gain = hn.gain = 1;
	check_uniform(DENSE, hu, -sqrt(3.0 / 400), sqrt(3.0 / 400));
	check_normal(DENSE, hn, 0, 1 / sqrt(400.0));
}
END_TEST

/* f32 graphs get the same draws, rounded; rounding may reach hi itself */
START_TEST(test_f32_and_seeds)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_graph_seed(g, 7);
	nb_tensor *w = nb_param(g, "w", DENSE, NB_UNIFORM(-2, 3));
	ck_graph_ok(g);
	int64_t n = nb_tensor_size(w);
	float *f = malloc((size_t)n * sizeof *f);
	ck_assert_int_eq(nb_read_f32(w, f, n), NB_OK);
	int64_t n64;
	double *d = init_values(DENSE, NB_UNIFORM(-2, 3), 7, &n64);
	ck_assert_int_eq(n, n64);
	for (int64_t i = 0; i < n; i++) {
		ck_assert(f[i] == (float)d[i]);
		ck_assert(f[i] >= -2 && f[i] <= 3);
	}
	nb_graph_free(g);
	/* the same seed gives the same values, another seed others */
	double *e = init_values(DENSE, NB_UNIFORM(-2, 3), 7, &n64);
	ck_assert(!memcmp(d, e, (size_t)n * sizeof *d));
	free(e);
	e = init_values(DENSE, NB_UNIFORM(-2, 3), 8, &n64);
	int64_t same = 0;
	for (int64_t i = 0; i < n; i++)
		same += d[i] == e[i];
	ck_assert_int_lt(same, 10);
	free(e), free(d), free(f);
}
END_TEST

/* nb_init_tensor re-initialises an existing leaf with the graph's RNG */
START_TEST(test_reinit)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(4, 5), NB_ZEROS);
	ck_assert_int_eq(nb_init_tensor(w, (nb_init){.kind = NB_INIT_CONSTANT, .a = 4}), NB_OK);
	double v[20];
	nb_read_f64(w, v, 20);
	for (int i = 0; i < 20; i++)
		ck_assert(v[i] == 4);
	/* inputs and constants are leaves too */
	nb_tensor *c = nb_constant(g, "c", NB_SHAPE(3), NULL);
	ck_assert_int_eq(nb_init_tensor(c, NB_ONES), NB_OK);
	nb_read_f64(c, v, 3);
	ck_assert(v[0] == 1 && v[1] == 1 && v[2] == 1);
	ck_graph_ok(g);
	nb_graph_free(g);
}
END_TEST

static void check_init_error(nb_init init, const char *msg)
{
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(2, 2), NB_ZEROS);
	ck_assert_int_eq(nb_init_tensor(w, init), NB_ERR_ARG);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_ARG);
	ck_assert_msg(strstr(nb_graph_errmsg(g), msg), "message '%s' lacks '%s'",
	              nb_graph_errmsg(g), msg);
	nb_graph_free(g);
	/* through nb_param: the graph fails the same way */
	g = nb_graph_new(NB_F64);
	nb_param(g, "w", NB_SHAPE(2, 2), init);
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_ARG);
	ck_assert(strstr(nb_graph_errmsg(g), msg));
	nb_graph_free(g);
}

START_TEST(test_init_errors)
{
	check_init_error(NB_UNIFORM(1, -1), "uniform bounds reversed (1 > -1)");
	check_init_error(NB_NORMAL(0, -0.5), "normal standard deviation -0.5 is negative");
	check_init_error(NB_UNIFORM(0, INFINITY), "must be finite");
	check_init_error(NB_NORMAL(NAN, 1), "must be finite");
	check_init_error((nb_init){.kind = NB_INIT_HE_NORMAL, .gain = -1}, "gain not negative");
	check_init_error((nb_init){.kind = (nb_init_kind)99}, "unknown initialiser kind 99");
	/* a computed tensor is not a leaf */
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(2), NB_ONES);
	ck_assert_int_eq(nb_init_tensor(nb_add(w, w), NB_ZEROS), NB_ERR_ARG);
	ck_assert(strstr(nb_graph_errmsg(g), "only leaves can be initialised"));
	nb_graph_free(g);
	ck_assert_int_eq(nb_init_tensor(NULL, NB_ZEROS), NB_ERR_ARG);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("init");
	TCase *tc = tcase_create("init");
	tcase_add_test(tc, test_fans);
	tcase_add_test(tc, test_constant_kinds);
	tcase_add_test(tc, test_uniform);
	tcase_add_test(tc, test_normal);
	tcase_add_test(tc, test_xavier);
	tcase_add_test(tc, test_he);
	tcase_add_test(tc, test_f32_and_seeds);
	tcase_add_test(tc, test_reinit);
	tcase_add_test(tc, test_init_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
