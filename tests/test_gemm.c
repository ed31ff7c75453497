/*
 * The GEMM kernels (src/ops/gemm.c): BLIS's, or nabla's AVX-512 micro-
 * kernels inside BLIS where the CPU has AVX-512F and BLIS chose a
 * configuration without it.  Every shape is checked against a plain f64
 * product: full and edge blocks of the micro-kernels (m, n not multiples
 * of MR, NR; k across the cache block KC), alpha and beta (beta 0 must not
 * read C), transposed operands, C stored by rows, by columns and with a
 * general stride, on one thread and on two.  meson runs this suite with
 * NABLA_GEMM=avx512 (our kernels wherever the CPU can run them, fast or
 * not) and again at each lower ISA level (NABLA_ISA), so each kernel is
 * tested.
 */
#include "test_util.h"

#include "graph/internal.h"
#include "ops/conv/plan.h"
#include "ops/conv/winograd.h"
#include "ops/gemm.h"

typedef struct {
	int m, n, k;
} dims;

static const dims shapes[] = {
    {32, 12, 1},    {32, 12, 7},   {64, 24, 384},  {31, 11, 5},    {33, 13, 385}, {1, 1, 1},
    {100, 37, 333}, {17, 200, 50}, {250, 90, 800}, {64, 256, 784}, {5, 300, 9},   {400, 3, 64},
};

static double urand(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(*s >> 11) / 9007199254740992.0 - 0.5;
}

/* C = beta C + alpha op(A) op(B) through nb__gemm_cntx(nb__isa_level()) against the f64
 * product, for every alpha/beta pair and C layout (by rows, by columns,
 * general stride 3); C(i,j) at c[i rs + j cs].  A is m x k (k x m when
 * ta) and B k x n (n x k when tb), stored by rows. */
static const double alpha_beta[][2] = {{1, 0}, {1, 1}, {-0.5, 2}, {2, 0}};

#define CHECK_GEMM(T, GEMM_EX, EPS)                                                                        \
	static void check_##T(dims d, bool ta, bool tb, int threads)                                       \
	{                                                                                                  \
		const int m = d.m, n = d.n, k = d.k;                                                       \
		uint64_t seed = (uint64_t)(m * 131 + n * 7 + k) * 2 + ta + 4 * tb;                         \
		T *a = malloc(sizeof(T) * (size_t)(m * k)),                                                \
		  *b = malloc(sizeof(T) * (size_t)(k * n));                                                \
		T *c = malloc(sizeof(T) * (size_t)(3 * m * n)),                                            \
		  *c0 = malloc(sizeof(T) * (size_t)(m * n));                                               \
		double *prod = malloc(sizeof(double) * (size_t)(m * n));                                   \
		for (int i = 0; i < m * k; i++)                                                            \
			a[i] = (T)urand(&seed);                                                            \
		for (int i = 0; i < k * n; i++)                                                            \
			b[i] = (T)urand(&seed);                                                            \
		for (int i = 0; i < m * n; i++)                                                            \
			c0[i] = (T)urand(&seed);                                                           \
		const inc_t rsa = ta ? 1 : k, csa = ta ? m : 1, rsb = tb ? 1 : n,                          \
		            csb = tb ? k : 1;                                                              \
		for (int i = 0; i < m; i++)                                                                \
			for (int j = 0; j < n; j++) {                                                      \
				double s = 0;                                                              \
				for (int p = 0; p < k; p++)                                                \
					s += (double)a[i * rsa + p * csa] *                                \
					     (double)b[p * rsb + j * csb];                                 \
				prod[i * n + j] = s;                                                       \
			}                                                                                  \
		rntm_t r;                                                                                  \
		bli_rntm_init(&r);                                                                         \
		bli_rntm_set_num_threads(threads, &r);                                                     \
		bli_rntm_disable_l3_sup(&r); /* every size through the micro-kernel */                     \
		for (int v = 0; v < 4; v++)                                                                \
			for (int layout = 0; layout < 3; layout++) {                                       \
				const double alpha = alpha_beta[v][0], beta = alpha_beta[v][1];            \
				const inc_t ld = layout == 2 ? 3 : 1;                                      \
				const inc_t rsc = layout == 1 ? 1 : n * ld,                                \
				            csc = layout == 1 ? m : ld;                                    \
				for (int i = 0; i < 3 * m * n; i++)                                        \
					c[i] = (T)NAN; /* beta 0 must not read C */                        \
				for (int i = 0; i < m; i++)                                                \
					for (int j = 0; j < n; j++)                                        \
						if (beta != 0)                                             \
							c[i * rsc + j * csc] = c0[i * n + j];              \
				T al = (T)alpha, be = (T)beta;                                             \
				GEMM_EX(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,                           \
				        tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, m, n, k, &al, a,          \
				        ta ? csa : rsa, ta ? rsa : csa, b, tb ? csb : rsb,                 \
				        tb ? rsb : csb, &be, c, rsc, csc,                                  \
				        nb__gemm_cntx(nb__isa_level()), &r);                               \
				for (int i = 0; i < m; i++)                                                \
					for (int j = 0; j < n; j++) {                                      \
						double want =                                              \
						    alpha * prod[i * n + j] +                              \
						    (beta ? beta * (double)c0[i * n + j] : 0);             \
						double got = c[i * rsc + j * csc];                         \
						double tol =                                               \
						    EPS * (k + 2) * (fabs(alpha) + fabs(beta));            \
						if (!(fabs(got - want) <=                                  \
						      tol)) /* Check logs every assert */                  \
							ck_assert_msg(                                     \
							    0,                                             \
							    #T                                             \
							    " %dx%dx%d ta %d tb %d alpha %g beta %g "      \
							    "layout %d: C(%d,%d) = %.17g, expected %.17g " \
							    "(%s kernel)",                                 \
							    m, n, k, ta, tb, alpha, beta, layout,          \
							    i, j, got, want, nb_gemm_kernel());            \
					}                                                                  \
			}                                                                                  \
		free(a), free(b), free(c), free(c0), free(prod);                                           \
	}

CHECK_GEMM(float, bli_sgemm_ex, 1e-6)
CHECK_GEMM(double, bli_dgemm_ex, 1e-15)

static void check_all(void (*check)(dims, bool, bool, int))
{
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (int t = 0; t < 4; t++)
			check(shapes[s], t & 1, t >> 1,
			      t == 0 && s % 3 == 2 ? 2 : 1); /* a few on two threads */
}

START_TEST(test_sgemm_matches_f64)
{
	check_all(check_float);
}
END_TEST

START_TEST(test_dgemm_matches_f64)
{
	check_all(check_double);
}
END_TEST

/* The kernel in use follows the ISA level and NABLA_GEMM: ours only at
 * avx512, only where BLIS's configuration lacks AVX-512, and there when
 * NABLA_GEMM=avx512 asks for it (unset, a measurement decides). */
START_TEST(test_kernel_follows_isa)
{
	const char *isa = nb_isa(), *cfg = nb_blis_config(), *kern = nb_gemm_kernel();
	printf("isa %s, BLIS configuration %s, GEMM kernel %s\n", isa, cfg, kern);
	const char *want_isa = getenv("NABLA_ISA"), *want_gemm = getenv("NABLA_GEMM");
	if (want_isa && *want_isa)
		ck_assert_msg(nb__isa_level() <= nb__isa_from_name(want_isa),
		              "NABLA_ISA=%s, isa %s", want_isa, isa);
	bool possible = !strcmp(isa, "avx512") && strcmp(cfg, "skx") && strcmp(cfg, "knl");
	if (!possible || (want_gemm && !strcmp(want_gemm, "blis")))
		ck_assert_str_eq(kern, "blis");
	else if (want_gemm && !strcmp(want_gemm, "avx512"))
		ck_assert_str_eq(kern, "avx512");
	ck_assert(nb__gemm_cntx(nb__isa_level()) == NULL ? !strcmp(kern, "blis")
	                                                 : !strcmp(kern, "avx512"));
}
END_TEST

/* The variant of a kernel that runs is the one of the level it is handed
 * (nb_exec isa, a conv plan's isa, a Winograd geometry's isa), at every
 * level up to the CPU's: each variant's entry marks nb__isa_ran with its
 * own level.  A build with one variant runs it at every level. */
static int variant_of(int level)
{
#if defined(NB_MULTIVERSION)
	return level;
#else
	(void)level;
	return 0;
#endif
}

START_TEST(test_kernels_run_the_level_variant)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 16, 8, 8));
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(16, 16, 3, 3), NB_UNIFORM(-1, 1));
	nb_conv2d_opts o = {.pad_h = 1, .pad_w = 1};
	nb_tensor *c = nb_conv2d(x, w, NULL, o), *y = nb_relu(c);
	float xv[2 * 16 * 8 * 8];
	for (size_t i = 0; i < sizeof xv / sizeof xv[0]; i++)
		xv[i] = (float)(i % 7) - 3;
	ck_assert_int_eq(nb_feed_f32(x, xv, 2 * 16 * 8 * 8), NB_OK);
	nb_tensor *targets[] = {c, y};
	nb_program *p = nb_compile(g, targets, 2);
	ck_assert_ptr_nonnull(p);
	nb__isa_ran = -1;
	ck_assert_int_eq(nb_run(p), NB_OK); /* the run's last kernel is the ReLU */
	ck_assert_int_eq(nb__isa_ran, variant_of(nb__isa_level()));
	for (int level = 0; level <= nb__isa_level(); level++) {
		nb_exec ex = {.threads = 1, .isa = level};
		nb__isa_ran = -1;
		nb__ops[y->op]->forward_f32(&ex, y);
		ck_assert_int_eq(nb__isa_ran, variant_of(level));
		nb__conv_node_plan np;
		ex.workspace_bytes = nb__conv_plan_node(c, &ex, &np);
		ck_assert_int_eq(np.plan.isa, level);
		ex.workspace = aligned_alloc(64, (ex.workspace_bytes + 64) / 64 * 64 + 64);
		ex.plan = &np;
		nb__isa_ran = -1;
		nb__ops[c->op]->forward_f32(&ex, c);
		ck_assert_int_eq(nb__isa_ran, variant_of(level));
		free(ex.workspace);
		nb__wino_geom wg = {.n = 1, .c = 2, .h = 4, .w = 4, .o = 2, .isa = level};
		float in[32] = {0}, wt[36] = {0}, out[32];
		void *ws =
		    aligned_alloc(64, (nb__wino_workspace(&wg, sizeof(float), 1) + 63) / 64 * 64);
		nb__isa_ran = -1;
		nb__wino_forward_f32(&wg, in, wt, out, ws, 1);
		ck_assert_int_eq(nb__isa_ran, variant_of(level));
		free(ws);
	}
	nb_graph_free(g);
}
END_TEST

/* The same for the bias gradient and the stride-1 input gradient, whose
 * blocks (so the flipped weights' layout, so the workspace) depend on the
 * level: each level's plan sizes a workspace, allocated to the byte (the
 * sanitized build checks it), that the level's variant stays within. */
START_TEST(test_conv_grads_run_the_level_variant)
{
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(2, 7, 9, 20), NB_UNIFORM(-1, 1));
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(5, 7, 3, 3), NB_UNIFORM(-1, 1));
	nb_tensor *b = nb_param(g, "b", NB_SHAPE(5), NB_UNIFORM(-1, 1));
	nb_conv2d_opts o = {.pad_h = 1, .pad_w = 1, .algo = NB_CONV_DIRECT};
	nb_tensor *L = nb_sum(nb_conv2d(x, w, b, o));
	nb_tensor *dx = nb_grad(L, x), *db = nb_grad(L, b);
	ck_assert_int_eq(dx->op, NB_OP_CONV2D_BACKWARD_INPUT);
	ck_assert_int_eq(db->op, NB_OP_CONV2D_BACKWARD_BIAS);
	nb_tensor *targets[] = {dx, db};
	nb_program *p = nb_compile(g, targets, 2);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(nb_run(p), NB_OK); /* the nodes' inputs hold data */
	for (int level = 0; level <= nb__isa_level(); level++) {
		nb_exec ex = {.threads = 1, .isa = level};
		nb__isa_ran = -1;
		nb__ops[db->op]->forward_f32(&ex, db);
		ck_assert_int_eq(nb__isa_ran, variant_of(level));
		nb__conv_node_plan np;
		ex.workspace_bytes = nb__conv_plan_node(dx, &ex, &np);
		ck_assert_int_eq(np.plan.path, CONV_PATH_DIRECT_TRANSPOSED);
		ex.workspace = malloc(ex.workspace_bytes);
		ex.plan = &np;
		nb__isa_ran = -1;
		nb__ops[dx->op]->forward_f32(&ex, dx);
		ck_assert_int_eq(nb__isa_ran, variant_of(level));
		free(ex.workspace);
	}
	nb_graph_free(g);
}
END_TEST

/* the result of conv node t (any pass) run at ISA level `level` on
 * `threads` threads with its plan's path set to `path`, into out */
static void conv_pass_on(nb_tensor *t, int level, int threads, nb__conv_path path, double *out)
{
	nb_exec ex = {.threads = threads, .isa = level};
	nb__conv_node_plan np;
	nb__conv_plan_node(t, &ex, &np);
	np.plan.path = path;
	ex.workspace_bytes = nb__conv_paths[path].workspace(&np.geom, &np.plan);
	ex.workspace = malloc(ex.workspace_bytes);
	ex.plan = &np;
	nb__isa_ran = -1;
	if (t->g->dtype == NB_F32)
		nb__ops[t->op]->forward_f32(&ex, t);
	else
		nb__ops[t->op]->forward_f64(&ex, t);
	ck_assert_int_eq(nb__isa_ran, variant_of(level));
	free(ex.workspace);
	nb_read_f64(t, out, nb_tensor_size(t));
}

/* conv node t under CONV_PATH_DIRECT_ROWS against CONV_PATH_DIRECT at every
 * level up to the CPU's, on 1 to max_th threads (step th_step): within
 * tol (1 + |direct|), exactly (==) when tol is 0 */
static void rows_match_direct(nb_tensor *t, int max_th, int th_step, double tol, size_t k)
{
	const int64_t n = nb_tensor_size(t);
	double *want = malloc(sizeof(double) * (size_t)n),
	       *got = malloc(sizeof(double) * (size_t)n);
	const char *dt = t->g->dtype == NB_F64 ? "f64" : "f32";
	for (int level = 0; level <= nb__isa_level(); level++)
		for (int th = 1; th <= max_th; th += th_step) {
			conv_pass_on(t, level, th, CONV_PATH_DIRECT, want);
			conv_pass_on(t, level, th, CONV_PATH_DIRECT_ROWS, got);
			for (int64_t e = 0; e < n; e++)
				ck_assert_msg(
				    tol == 0 ? got[e] == want[e]
				             : fabs(got[e] - want[e]) <= tol * (1 + fabs(want[e])),
				    "config %zu %s %s level %d, %d threads: [%lld] by rows %.17g, "
				    "direct %.17g",
				    k, nb_op_name(t->op), dt, level, th, (long long)e, got[e],
				    want[e]);
		}
	free(want), free(got);
}

/* a convolution of the tests below: x [n, c, h, w], w [o, c, kh, kw] */
typedef struct rows_cfg {
	int n, c, o, h, w, kh, kw, ph, pw;
	nb_padding pad;
	bool bias;
} rows_cfg;

/* y of the convolution c in a new graph of type dt (seeded) */
static nb_tensor *rows_conv(const rows_cfg *c, bool f64, uint64_t seed)
{
	nb_graph *g = nb_graph_new(f64 ? NB_F64 : NB_F32);
	nb_graph_seed(g, seed);
	nb_tensor *x = nb_param(g, "x", NB_SHAPE(c->n, c->c, c->h, c->w), NB_UNIFORM(-1, 1));
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(c->o, c->c, c->kh, c->kw), NB_UNIFORM(-1, 1));
	nb_tensor *b = c->bias ? nb_param(g, "b", NB_SHAPE(c->o), NB_UNIFORM(-1, 1)) : NULL;
	nb_conv2d_opts o = {.pad_h = c->ph, .pad_w = c->pw, .padding = c->pad};
	return nb_conv2d(x, w, b, o);
}

/* the convolution c's forward (or, wgrad, its weight gradient) by rows
 * against the direct kernel: exactly, or within a few ulps of the sums'
 * magnitude for the weight gradient, which adds in another order */
static void rows_case(const rows_cfg *c, bool f64, uint64_t seed, bool wgrad, size_t k)
{
	nb_tensor *y = rows_conv(c, f64, seed), *t = y;
	nb_graph *g = y->g;
	if (wgrad) {
		nb_tensor *u = nb_param(g, "u", nb_tensor_shape(y), NB_UNIFORM(-1, 1));
		t = nb_grad(nb_sum(nb_mul(y, nb_stop_gradient(u))), y->in[1]);
		ck_assert_int_eq(t->op, NB_OP_CONV2D_BACKWARD_WEIGHT);
	}
	nb_program *p = nb_compile(g, &t, 1);
	ck_graph_ok(g);
	ck_assert_int_eq(nb_run(p), NB_OK);
	rows_match_direct(t, 3, wgrad ? 1 : 2, !wgrad ? 0 : f64 ? 1e-12 : 1e-5, k);
	nb_graph_free(g);
}

/* The stride-1 forward in the transposed input gradient's kernel
 * (CONV_PATH_DIRECT_ROWS) sums each output in the direct forward's order,
 * so the two agree exactly (== : a zero's sign aside), at every level, in
 * f32 and f64: channels 2 to 37 (blocks of 6, 12 and 16 and their
 * remainders), kernels 1 to 7 wide and rectangular, no padding, padding
 * up to the kernel's size - 1, uneven ("same" with even kernels), rows of
 * whole and partial 16-pixel blocks, with and without bias, images on 1
 * or 3 batch threads, and one image's rows on 3 row threads. */
START_TEST(test_direct_rows_forward_equals_direct)
{
	static const rows_cfg cs[] = {
	    {2, 16, 16, 12, 32, 3, 3, 1, 1, NB_PAD_EXPLICIT, true},
	    {3, 32, 32, 9, 16, 3, 3, 1, 1, NB_PAD_EXPLICIT, false},
	    {2, 2, 7, 5, 17, 3, 3, 0, 0, NB_PAD_EXPLICIT, true},
	    {3, 5, 13, 6, 31, 5, 5, 4, 4, NB_PAD_EXPLICIT, false},
	    {1, 9, 19, 7, 33, 3, 5, 2, 1, NB_PAD_EXPLICIT, true},
	    {2, 37, 40, 4, 20, 4, 4, 0, 0, NB_PAD_SAME, true},
	    {1, 3, 6, 8, 47, 2, 2, 0, 0, NB_PAD_SAME, false},
	    {2, 12, 17, 3, 9, 1, 7, 0, 3, NB_PAD_EXPLICIT, true},
	    {2, 6, 12, 10, 16, 7, 7, 6, 0, NB_PAD_EXPLICIT, false},
	    {3, 20, 33, 5, 48, 1, 1, 0, 0, NB_PAD_EXPLICIT, true},
	};
	for (int dt = 0; dt < 2; dt++)
		for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++)
			rows_case(&cs[k], dt, 40 + k, false, k);
}
END_TEST

/* The weight gradient by rows (CONV_PATH_DIRECT_ROWS) against the direct
 * one, at every level, in f32 and f64, on 1 to 3 batch threads: kernels
 * 3 wide (8 channels a block at AVX-512), 5 wide (4), 1, 2 and 7 wide (one
 * channel at a time) and 9 and 15 wide (7 taps at a time), output
 * channels that fill the blocks and that do not (a last block computed
 * over zeros; O = 1), padding none, uneven, up to the kernel and beyond,
 * rows of 16, 32 and 48 pixels, rows short of a vector (1, 7, 20, 40),
 * one output row.  They add in different orders: within a few ulps of
 * the sums' magnitude. */
START_TEST(test_direct_rows_weight_grad_matches_direct)
{
	static const rows_cfg cs[] = {
	    {3, 3, 16, 6, 32, 3, 3, 1, 1, NB_PAD_EXPLICIT, false},
	    {2, 5, 13, 5, 16, 3, 3, 1, 1, NB_PAD_EXPLICIT, false},
	    {4, 2, 20, 4, 48, 5, 5, 2, 2, NB_PAD_EXPLICIT, false},
	    {4, 4, 7, 6, 32, 1, 1, 0, 0, NB_PAD_EXPLICIT, false},
	    {4, 6, 9, 6, 16, 2, 2, 0, 0, NB_PAD_SAME, false},
	    {3, 3, 11, 9, 32, 7, 7, 3, 3, NB_PAD_EXPLICIT, false},
	    {2, 9, 24, 4, 34, 3, 3, 0, 0, NB_PAD_EXPLICIT, false},
	    {2, 4, 17, 5, 20, 3, 3, 1, 1, NB_PAD_EXPLICIT, false},
	    {2, 3, 10, 3, 40, 3, 9, 1, 4, NB_PAD_EXPLICIT, false},
	    {1, 2, 9, 4, 7, 5, 5, 2, 2, NB_PAD_EXPLICIT, false},
	    {3, 5, 1, 3, 20, 3, 15, 0, 7, NB_PAD_EXPLICIT, false},
	    {3, 4, 17, 1, 33, 3, 3, 4, 1, NB_PAD_EXPLICIT, false},
	    {3, 3, 5, 4, 1, 3, 3, 1, 1, NB_PAD_EXPLICIT, false},
	};
	for (int dt = 0; dt < 2; dt++)
		for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++)
			rows_case(&cs[k], dt, 70 + k, true, k);
}
END_TEST

/* NB_CONV_AUTO's weight gradient by rows takes 3-wide kernels only: a 9x1
 * or 5x2 kernel runs the direct kernel (one channel at a time by rows was
 * 3-6 times slower), a 3x3 one the rows at AVX-512 in a build with the
 * ISA variants */
START_TEST(test_direct_rows_weight_grad_policy)
{
	static const int kernels[][3] = {{9, 1, 0}, {5, 2, 0}, {3, 3, 1}, {5, 3, 1}};
	for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; k++) {
		const int kh = kernels[k][0], kw = kernels[k][1];
		rows_cfg c = {4, 8, 16, 32, 32 + kw - 1, kh, kw, 0, 0, NB_PAD_EXPLICIT, false};
		nb_tensor *y = rows_conv(&c, false, 5), *u;
		u = nb_param(y->g, "u", nb_tensor_shape(y), NB_UNIFORM(-1, 1));
		nb_tensor *dw = nb_grad(nb_sum(nb_mul(y, nb_stop_gradient(u))), y->in[1]);
		ck_graph_ok(y->g);
		for (int level = 0; level <= nb__isa_level(); level++) {
			nb_exec ex = {.threads = 2, .isa = level};
			nb__conv_node_plan np;
			nb__conv_plan_node(dw, &ex, &np);
			const bool rows = kernels[k][2] && level == 2 && variant_of(2) == 2;
			ck_assert_msg(
			    np.plan.path == (rows ? CONV_PATH_DIRECT_ROWS : CONV_PATH_DIRECT),
			    "%dx%d at level %d: path %d", kh, kw, level, (int)np.plan.path);
		}
		nb_graph_free(y->g);
	}
}
END_TEST

/* Our kernels sum each element of C in BLIS's blocks of k, each block as
 * one FMA chain in order, so their results are BLIS's to the bit: which
 * kernel runs never changes a result.  Through BLIS's default runtime (the
 * small-matrix path on where BLIS takes it) and with every size packed,
 * on one and two threads. */
START_TEST(test_bits_equal_blis)
{
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (int t = 0; t < 4; t++) {
			const dims d = shapes[s];
			const bool ta = t & 1, tb = t >> 1;
			uint64_t seed = 99 + s;
			float *a = malloc(sizeof(float) * (size_t)(d.m * d.k)),
			      *b = malloc(sizeof(float) * (size_t)(d.k * d.n));
			float *c1 = malloc(sizeof(float) * (size_t)(d.m * d.n)),
			      *c2 = malloc(sizeof(float) * (size_t)(d.m * d.n));
			double *a64 = malloc(sizeof(double) * (size_t)(d.m * d.k)),
			       *b64 = malloc(sizeof(double) * (size_t)(d.k * d.n));
			double *e1 = malloc(sizeof(double) * (size_t)(d.m * d.n)),
			       *e2 = malloc(sizeof(double) * (size_t)(d.m * d.n));
			for (int i = 0; i < d.m * d.k; i++)
				a64[i] = a[i] = (float)urand(&seed);
			for (int i = 0; i < d.k * d.n; i++)
				b64[i] = b[i] = (float)urand(&seed);
			rntm_t r;
			bli_rntm_init(&r);
			bli_rntm_set_num_threads(1 + (int)(s % 2), &r);
			if ((s + t) % 2) /* the packed path for every size */
				bli_rntm_disable_l3_sup(&r);
			float one = 1, zero = 0;
			double one64 = 1, zero64 = 0;
			const trans_t tra = ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
			              trb = tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
			const inc_t lda = ta ? d.m : d.k, ldb = tb ? d.k : d.n;
			for (int pass = 0; pass < 2; pass++) {
				cntx_t *cx = pass ? NULL : nb__gemm_cntx(nb__isa_level());
				bli_sgemm_ex(tra, trb, d.m, d.n, d.k, &one, a, lda, 1, b, ldb, 1,
				             &zero, pass ? c2 : c1, d.n, 1, cx, &r);
				bli_dgemm_ex(tra, trb, d.m, d.n, d.k, &one64, a64, lda, 1, b64, ldb,
				             1, &zero64, pass ? e2 : e1, d.n, 1, cx, &r);
			}
			ck_assert_msg(
			    !memcmp(c1, c2, sizeof(float) * (size_t)(d.m * d.n)) &&
			        !memcmp(e1, e2, sizeof(double) * (size_t)(d.m * d.n)),
			    "%dx%dx%d ta %d tb %d: the %s kernel's bits differ from BLIS's", d.m,
			    d.n, d.k, ta, tb, nb_gemm_kernel());
			free(a), free(b), free(c1), free(c2), free(a64), free(b64), free(e1),
			    free(e2);
		}
}
END_TEST

#if NB_GEMM_AVX512 /* x86-64: the small-matrix kernels exist */
/* gemm_small.c, the products with a small dimension where nabla's kernels
 * are in use: the bits of BLIS's packed path (sup off), through every
 * layout (B by rows; A by columns; A or B copied; strides with padding),
 * edge blocks (rows not a multiple of 12, columns not of 32 or 16), k
 * across KC blocks, on 1 to 4 threads, with scratch space given or
 * allocated. */
#define CHECK_SMALL(T, SMALL, EX, DT)                                                              \
	static void small_case_##T(int m, int n, int k, bool ta, bool tb, int pad, int threads,    \
	                           bool give_ws, uint64_t *seed)                                   \
	{                                                                                          \
		cntx_t *cx = nb__gemm_cntx(nb__isa_level());                                       \
		cntx_t *kx = cx ? cx : (cntx_t *)bli_gks_query_cntx();                             \
		const inc_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad;                    \
		const int64_t na = (int64_t)(ta ? k : m) * lda, nb = (int64_t)(tb ? n : k) * ldb;  \
		T *a = malloc(sizeof(T) * (size_t)na), *b = malloc(sizeof(T) * (size_t)nb);        \
		T *c1 = malloc(sizeof(T) * (size_t)(m * n)),                                       \
		  *c2 = malloc(sizeof(T) * (size_t)(m * n));                                       \
		for (int64_t i = 0; i < na; i++)                                                   \
			a[i] = (T)urand(seed);                                                     \
		for (int64_t i = 0; i < nb; i++)                                                   \
			b[i] = (T)urand(seed);                                                     \
		const inc_t rsa = ta ? 1 : lda, csa = ta ? lda : 1, rsb = tb ? 1 : ldb,            \
		            csb = tb ? ldb : 1;                                                    \
		rntm_t r;                                                                          \
		nb__gemm_rntm(&r, threads);                                                        \
		bli_rntm_disable_l3_sup(&r);                                                       \
		T one = 1, zero = 0;                                                               \
		EX(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &one, a, rsa, csa, b, rsb, csb,  \
		   &zero, c1, n, 1, cx, &r);                                                       \
		const size_t need = nb__gemm_small_bytes(m, n, k, rsa, csb, threads, sizeof(T));   \
		void *ws = give_ws && need ? malloc(need) : NULL;                                  \
		for (int i = 0; i < m * n; i++)                                                    \
			c2[i] = (T)NAN;                                                            \
		ck_assert(SMALL(m, n, k, a, rsa, csa, b, rsb, csb, c2, n, threads,                 \
		                bli_cntx_get_blksz_def_dt(DT, BLIS_KC, kx),                        \
		                bli_cntx_get_blksz_max_dt(DT, BLIS_KC, kx), ws, ws ? need : 0));   \
		ck_assert_msg(!memcmp(c1, c2, sizeof(T) * (size_t)(m * n)),                        \
		              #T " %dx%dx%d ta %d tb %d pad %d, %d threads: the small-matrix "     \
		                 "path's bits differ from BLIS's packed path",                     \
		              m, n, k, ta, tb, pad, threads);                                      \
		free(a), free(b), free(c1), free(c2), free(ws);                                    \
	}

CHECK_SMALL(float, nb__gemm_small_f32, bli_sgemm_ex, BLIS_FLOAT)
CHECK_SMALL(double, nb__gemm_small_f64, bli_dgemm_ex, BLIS_DOUBLE)

START_TEST(test_small_bits_equal_packed)
{
	if (nb__isa_level() < 2) {
		/* below AVX-512 every product goes to BLIS */
		ck_assert_uint_eq(nb__gemm_scratch(nb__isa_level(), 2, 64, 256, 784, 784, 784, 4),
		                  0);
		printf("the small-matrix path runs at the avx512 level (isa %s)\n", nb_isa());
		return;
	}
	static const int sh[][3] = {{64, 256, 784}, {256, 784, 64}, {1, 1, 1},     {13, 33, 257},
	                            {12, 32, 256},  {25, 70, 513},  {128, 5, 300}, {7, 129, 40},
	                            {64, 10, 128},  {3, 200, 600},  {40, 17, 9}};
	uint64_t seed = 11;
	int v = 0;
	/* with a copy of an operand for each thread, and with one copy that
	 * the threads share */
	const size_t private_max = nb__gemm_private_max;
	for (int shared = 0; shared < 2; shared++) {
		nb__gemm_private_max = shared ? 0 : private_max;
		for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++)
			for (int t = 0; t < 4; t++, v++) {
				const int pad = v % 3 == 1 ? 5 : 0, th = 1 + v % 4;
				small_case_float(sh[s][0], sh[s][1], sh[s][2], t & 1, t >> 1, pad,
				                 th, v % 2, &seed);
				small_case_double(sh[s][0], sh[s][1], sh[s][2], t & 1, t >> 1, pad,
				                  5 - th, v % 2 == 0, &seed);
			}
	}
	nb__gemm_private_max = private_max;
	/* each thread's own copy takes scratch space for each thread: A^T
	 * here (64 x 784 floats), C^T once */
	ck_assert_uint_eq(nb__gemm_small_bytes(64, 256, 784, 784, 784, 1, 4),
	                  (64 * 784 + 64 * 256) * 4);
	ck_assert_uint_eq(nb__gemm_small_bytes(64, 256, 784, 784, 784, 3, 4),
	                  (3 * 64 * 784 + 64 * 256) * 4);
	nb__gemm_private_max = 0;
	ck_assert_uint_eq(nb__gemm_small_bytes(64, 256, 784, 784, 784, 3, 4),
	                  (64 * 784 + 64 * 256) * 4);
	nb__gemm_private_max = private_max;
	/* nb__sgemm takes it for a small dimension, with scratch space for
	 * copies, and leaves larger products to BLIS */
	ck_assert_uint_gt(nb__gemm_scratch(nb__isa_level(), 2, 64, 256, 784, 784, 784, 4), 0);
	ck_assert_uint_eq(nb__gemm_scratch(nb__isa_level(), 2, 64, 256, 784, 784, 1, 4), 0);
	ck_assert_uint_eq(nb__gemm_scratch(nb__isa_level(), 2, 512, 512, 512, 512, 512, 4), 0);
}
END_TEST
#endif

/* random values in [-0.5, 0.5) into n floats or doubles */
static void fill(void *p, bool f64, int64_t n, uint64_t *seed)
{
	for (int64_t i = 0; i < n; i++)
		if (f64)
			((double *)p)[i] = urand(seed);
		else
			((float *)p)[i] = (float)urand(seed);
}

static void *wino_run(const nb__wino_geom *g, bool f64, int pass, const void *a, const void *b,
                      int64_t nout, int threads)
{
	const size_t es = f64 ? 8 : 4;
	size_t wb = pass == 2 ? nb__wino_wgrad_workspace(g, es, threads)
	                      : nb__wino_workspace(g, es, threads);
	ck_assert(wb > 0);
	void *ws = aligned_alloc(64, (wb + 63) / 64 * 64), *out = malloc((size_t)nout * es);
	ck_assert(ws && out);
	if (pass == 2 && f64)
		nb__wino_weight_grad_f64(g, a, b, out, ws, threads);
	else if (pass == 2)
		nb__wino_weight_grad_f32(g, a, b, out, ws, threads);
	else if (f64)
		nb__wino_forward_f64(g, a, b, out, ws, threads);
	else
		nb__wino_forward_f32(g, a, b, out, ws, threads);
	free(ws);
	return out;
}

/* the kernel Winograd should pick at g's level: nabla's where its GEMM
 * context is in use, else BLIS's where it fits the layouts (what g with
 * blis_ukr reports), else nabla's at avx512, else the portable one */
static const char *expected_kernel(const nb__wino_geom *g, size_t es)
{
	nb__wino_geom b = *g;
	b.blis_ukr = true;
	const char *own = nb__wino_kernel(&b, es);
	ck_assert(!strcmp(own, "blis") || !strcmp(own, "portable"));
	if (nb__gemm_cntx(g->isa) || (g->isa >= 2 && NB_GEMM_AVX512 && es == sizeof(float)))
		return "avx512";
	if (!strcmp(own, "blis"))
		return "blis";
	return g->isa >= 2 && NB_GEMM_AVX512 ? "avx512" : "portable";
}

/* o2 against o1: the same bits where both kernels fuse their
 * multiply-adds, else within rounding (the portable kernel's own) */
static void same_result(const void *o1, const void *o2, int64_t n, bool f64, bool bits,
                        const char *what)
{
	if (bits) {
		ck_assert_msg(!memcmp(o1, o2, (size_t)n * (f64 ? 8 : 4)), "%s: the bits differ",
		              what);
		return;
	}
	double big = 1, diff = 0;
	for (int64_t i = 0; i < n; i++) {
		const double a = f64 ? ((const double *)o1)[i] : ((const float *)o1)[i];
		const double b = f64 ? ((const double *)o2)[i] : ((const float *)o2)[i];
		big = fmax(big, fabs(a));
		diff = fmax(diff, fabs(a - b));
	}
	ck_assert_msg(diff <= (f64 ? 1e-13 : 1e-5) * big, "%s: off by %g (largest %g)", what, diff,
	              big);
}

/* a random problem of pass `pass` for g: its two inputs and output size */
typedef struct {
	void *a, *b;
	int64_t nout;
} wino_problem;

static wino_problem wino_problem_of(nb__wino_geom *g, bool f64, int pass, uint64_t seed)
{
	g->flip = pass == 1;
	const int64_t oh = g->h + g->pt + g->pb - 2, ow = g->w + g->pl + g->pr - 2;
	const int64_t nx = g->n * g->c * g->h * g->w, ny = g->n * g->o * oh * ow;
	const int64_t nw = g->o * g->c * 9;
	const int64_t na = pass == 0 ? nx : ny, nb = pass == 2 ? nx : nw;
	const size_t es = f64 ? 8 : 4;
	wino_problem w = {malloc((size_t)na * es), malloc((size_t)nb * es),
	                  pass == 0   ? ny
	                  : pass == 1 ? nx
	                              : nw};
	ck_assert(w.a && w.b);
	fill(w.a, f64, na, &seed);
	fill(w.b, f64, nb, &seed);
	return w;
}

static const nb__wino_geom wino_geoms[] = {
    {.n = 3, .c = 16, .h = 9, .w = 10, .o = 16, .pt = 1, .pl = 1, .pb = 1, .pr = 1},
    {.n = 6, .c = 24, .h = 12, .w = 11, .o = 40, .pt = 1, .pl = 1, .pb = 1, .pr = 1},
    {.n = 3, .c = 5, .h = 6, .w = 9, .o = 3, .pt = 0, .pl = 2, .pb = 2, .pr = 1},
    /* several blocks of 16 channels on a narrow plane; rows of more than
     * 16 and 32 columns, odd sizes, tiles across panels and planes */
    {.n = 3, .c = 64, .h = 8, .w = 8, .o = 48, .pt = 1, .pl = 1, .pb = 1, .pr = 1},
    {.n = 2, .c = 17, .h = 5, .w = 37, .o = 33, .pt = 2, .pl = 0, .pb = 0, .pr = 2},
};

/* Winograd's products (ops/conv/winograd.c) run the kernel expected_kernel
 * names; nabla's and BLIS's sum each element as one FMA chain in the same
 * blocks, so every pass gives the same bits with both (the portable one:
 * the same values within rounding), on one thread and on two: channels
 * that fill the panels, that do not, and paddings 0..2. */
START_TEST(test_winograd_kernel_bits)
{
	const int isa = nb__isa_level();
	for (size_t gi = 0; gi < sizeof wino_geoms / sizeof wino_geoms[0]; gi++)
		for (int f64 = 0; f64 < 2; f64++)
			for (int pass = 0; pass < 3; pass++)
				for (int threads = 1; threads <= 2; threads++) {
					nb__wino_geom g = wino_geoms[gi];
					g.isa = isa;
					const size_t es = f64 ? 8 : 4;
					wino_problem w = wino_problem_of(&g, f64, pass, 7 + gi);
					const char *k1 = nb__wino_kernel(&g, es);
					ck_assert_str_eq(k1, expected_kernel(&g, es));
					void *o1 =
					    wino_run(&g, f64, pass, w.a, w.b, w.nout, threads);
					g.blis_ukr = true;
					const char *k2 = nb__wino_kernel(&g, es);
					void *o2 =
					    wino_run(&g, f64, pass, w.a, w.b, w.nout, threads);
					char what[160];
					snprintf(
					    what, sizeof what,
					    "geometry %zu %s pass %d threads %d, %s against %s", gi,
					    f64 ? "f64" : "f32", pass, threads, k1, k2);
					same_result(
					    o1, o2, w.nout, f64,
					    strcmp(k1, "portable") && strcmp(k2, "portable"), what);
					free(w.a), free(w.b), free(o1), free(o2);
				}
}
END_TEST

/* Floats at avx512 run Winograd's forward and input gradient with the
 * channels in the vector lanes, and the weight gradient's transforms in
 * zmm (winograd_avx512.h): the same operations in the same order as the
 * transforms along the tiles, with the same kernel, so the same bits,
 * on 1 to 4 threads.  nb__wino_channel_lanes follows the ISA level alone
 * (not the timing that picks the GEMMs' kernel). */
START_TEST(test_winograd_channel_lanes_bits)
{
	const int isa = nb__isa_level();
	for (size_t gi = 0; gi < sizeof wino_geoms / sizeof wino_geoms[0]; gi++) {
		nb__wino_geom g = wino_geoms[gi];
		g.isa = isa;
		ck_assert_int_eq(nb__wino_channel_lanes(&g, sizeof(float)),
		                 isa >= 2 && NB_GEMM_AVX512);
		ck_assert(!nb__wino_channel_lanes(&g, sizeof(double)));
		for (int pass = 0; pass < 3; pass++)
			for (int threads = 1; threads <= 4; threads++) {
				g.tile_lanes = false;
				wino_problem w = wino_problem_of(&g, false, pass, 11 + gi);
				void *o1 = wino_run(&g, false, pass, w.a, w.b, w.nout, threads);
				g.tile_lanes = true;
				ck_assert(!nb__wino_channel_lanes(&g, sizeof(float)));
				void *o2 = wino_run(&g, false, pass, w.a, w.b, w.nout, threads);
				char what[120];
				snprintf(
				    what, sizeof what,
				    "geometry %zu pass %d threads %d, channel lanes against tiles",
				    gi, pass, threads);
				same_result(o1, o2, w.nout, false, true, what);
				free(w.a), free(w.b), free(o1), free(o2);
			}
	}
}
END_TEST

/* BLIS's context says NR 12 for float and 14 for double, as its skx
 * configuration does */
static void blis_says_skx(blksz_t *nr)
{
	bli_blksz_set_def(12, BLIS_FLOAT, nr);
	bli_blksz_set_max(12, BLIS_FLOAT, nr);
	bli_blksz_set_def(14, BLIS_DOUBLE, nr);
	bli_blksz_set_max(14, BLIS_DOUBLE, nr);
}

/* Where BLIS's own kernel does not fit Winograd's layouts (its skx
 * configuration, sgemm 32 x 12 and dgemm 16 x 14: B rows that are not
 * whole cache lines), Winograd runs nabla's kernel at AVX-512, with the
 * same bits, and the portable one below it; NB_CONV_WINOGRAD builds at
 * every level.  BLIS's context is made to say NR 12 / 14, then restored. */
START_TEST(test_winograd_where_blis_kernel_does_not_fit)
{
	const int isa = nb__isa_level();
	cntx_t *cx = bli_gks_query_cntx();
	blksz_t *nr = bli_cntx_get_blksz(BLIS_NR, cx);
	const blksz_t saved = *nr;
	for (int f64 = 0; f64 < 2; f64++)
		for (int pass = 0; pass < 3; pass++) {
			nb__wino_geom g = wino_geoms[1];
			g.isa = isa;
			const size_t es = f64 ? 8 : 4;
			wino_problem w = wino_problem_of(&g, f64, pass, 5);
			const char *k1 = nb__wino_kernel(&g, es);
			void *o1 = wino_run(&g, f64, pass, w.a, w.b, w.nout, 2);
			blis_says_skx(nr);
			const char *k2 = nb__wino_kernel(&g, es);
			ck_assert_str_eq(k2, isa >= 2 && NB_GEMM_AVX512 ? "avx512" : "portable");
			void *o2 = wino_run(&g, f64, pass, w.a, w.b, w.nout, 2);
			g.blis_ukr = true;
			ck_assert_str_eq(nb__wino_kernel(&g, es), "portable");
			*nr = saved;
			char what[120];
			snprintf(what, sizeof what, "%s pass %d, %s against %s",
			         f64 ? "f64" : "f32", pass, k2, k1);
			same_result(o1, o2, w.nout, f64,
			            strcmp(k1, "portable") && strcmp(k2, "portable"), what);
			free(w.a), free(w.b), free(o1), free(o2);
		}
	/* NB_CONV_WINOGRAD builds and runs with either kernel */
	blis_says_skx(nr);
	nb_graph *gr = nb_graph_new(NB_F32);
	nb_tensor *xi = nb_constant(gr, "x", NB_SHAPE(2, 16, 8, 8), NULL);
	nb_tensor *wi = nb_param(gr, "w", NB_SHAPE(16, 16, 3, 3), NB_UNIFORM(-0.1, 0.1));
	nb_conv2d_opts o = NB_CONV_OPTS(1, 1);
	o.algo = NB_CONV_WINOGRAD;
	nb_tensor *y = nb_conv2d(xi, wi, NULL, o);
	ck_assert_int_eq(nb_graph_status(gr), NB_OK);
	ck_assert_int_eq(nb_eval(y), NB_OK);
	nb_graph_free(gr);
	*nr = saved;
}
END_TEST

/* the matmul op goes through the same context: an f32 product of a
 * non-multiple shape against f64 */
START_TEST(test_matmul_op_uses_it)
{
	nb_graph *g32 = nb_graph_new(NB_F32), *g64 = nb_graph_new(NB_F64);
	nb_tensor *a32 = nb_input(g32, "a", NB_SHAPE(70, 130)),
	          *b32 = nb_input(g32, "b", NB_SHAPE(130, 45));
	nb_tensor *a64 = nb_input(g64, "a", NB_SHAPE(70, 130)),
	          *b64 = nb_input(g64, "b", NB_SHAPE(130, 45));
	nb_tensor *c32 = nb_matmul(a32, b32), *c64 = nb_matmul(a64, b64);
	double *x = malloc(sizeof(double) * 130 * 70), *y = malloc(sizeof(double) * 130 * 45);
	uint64_t s = 5;
	for (int i = 0; i < 70 * 130; i++)
		x[i] = (float)urand(&s);
	for (int i = 0; i < 130 * 45; i++)
		y[i] = (float)urand(&s);
	nb_feed_f64(a32, x, 70 * 130);
	nb_feed_f64(b32, y, 130 * 45);
	nb_feed_f64(a64, x, 70 * 130);
	nb_feed_f64(b64, y, 130 * 45);
	double r32[70 * 45], r64[70 * 45];
	ck_assert_int_eq(nb_eval(c32), NB_OK);
	ck_assert_int_eq(nb_eval(c64), NB_OK);
	nb_read_f64(c32, r32, 70 * 45);
	nb_read_f64(c64, r64, 70 * 45);
	for (int i = 0; i < 70 * 45; i++)
		ck_near(r32[i], r64[i], 1e-5);
	free(x), free(y);
	nb_graph_free(g32), nb_graph_free(g64);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gemm");
	TCase *tc = tcase_create("gemm");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_kernel_follows_isa);
	tcase_add_test(tc, test_kernels_run_the_level_variant);
	tcase_add_test(tc, test_conv_grads_run_the_level_variant);
	tcase_add_test(tc, test_direct_rows_forward_equals_direct);
	tcase_add_test(tc, test_direct_rows_weight_grad_matches_direct);
	tcase_add_test(tc, test_direct_rows_weight_grad_policy);
	tcase_add_test(tc, test_sgemm_matches_f64);
	tcase_add_test(tc, test_dgemm_matches_f64);
	tcase_add_test(tc, test_bits_equal_blis);
#if NB_GEMM_AVX512
	tcase_add_test(tc, test_small_bits_equal_packed);
#endif
	tcase_add_test(tc, test_matmul_op_uses_it);
	tcase_add_test(tc, test_winograd_kernel_bits);
	tcase_add_test(tc, test_winograd_channel_lanes_bits);
	tcase_add_test(tc, test_winograd_where_blis_kernel_does_not_fit);
	suite_add_tcase(s, tc);
	return nb_test_run(s);
}
