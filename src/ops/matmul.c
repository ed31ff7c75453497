/*
 * Matrix product through BLIS, or nabla's small-matrix kernels for a
 * product with a small dimension where nabla's AVX-512 GEMM kernels are in
 * use (ops/gemm.h, nb__sgemm; the plan asks for their scratch space).
 *
 *   C[..., M, N] = op(A)[..., M, K] . op(B)[..., K, N]
 *
 * op() transposes the last two axes when the attribute flag is set
 * (i[0] for A, i[1] for B).  Transposes never copy: BLIS takes a row and a
 * column stride per operand, so a transposed operand is the same buffer
 * with the strides swapped.  Leading (batch) axes must agree, or one side
 * is 2-D and shared by every batch; when B is shared and A is not
 * transposed, the batch folds into one GEMM with M' = batch * M.
 */
#include "ops/kernel.h"

#include "ops/gemm.h"

typedef struct mm_dims {
	int64_t batch, m, n, k;
	int64_t a_stride, b_stride; /* elements between batches (0: shared) */
	inc_t rsa, csa, rsb, csb;
} mm_dims;

static int64_t lead(nb_shape s)
{
	int64_t b = 1;
	for (int i = 0; i + 2 < s.ndim; i++)
		b *= s.d[i];
	return b;
}

static mm_dims dims(const nb_tensor *t)
{
	nb_shape sa = t->in[0]->shape, sb = t->in[1]->shape;
	bool ta = t->a.i[0], tb = t->a.i[1];
	mm_dims d;
	int64_t ar = sa.d[sa.ndim - 2], ac = sa.d[sa.ndim - 1];
	int64_t br = sb.d[sb.ndim - 2], bc = sb.d[sb.ndim - 1];
	d.m = ta ? ac : ar;
	d.k = ta ? ar : ac;
	d.n = tb ? br : bc;
	/* stored row-major [ar, ac]; logical (i, j) of op(A) */
	d.rsa = ta ? 1 : (inc_t)ac;
	d.csa = ta ? (inc_t)ac : 1;
	d.rsb = tb ? 1 : (inc_t)bc;
	d.csb = tb ? (inc_t)bc : 1;
	int64_t ba = lead(sa), bb = lead(sb);
	d.batch = ba > bb ? ba : bb;
	d.a_stride = sa.ndim > 2 ? ar * ac : 0;
	d.b_stride = sb.ndim > 2 ? br * bc : 0;
	if (sa.ndim > 2 && sb.ndim == 2 && !ta) { /* fold the batch into M */
		d.m *= ba;
		d.batch = 1;
		d.a_stride = 0;
	}
	return d;
}

static nb_status shape_matmul(nb_tensor *t)
{
	nb_shape sa = t->in[0]->shape, sb = t->in[1]->shape;
	char b1[128], b2[128];
	bool ta = t->a.i[0], tb = t->a.i[1];
	if (sa.ndim < 2 || sb.ndim < 2)
		return nb__op_fail(t, NB_ERR_SHAPE, "needs matrices (2-D or more), got %s x %s",
		                   nb_shape_str(sa, b1, sizeof b1),
		                   nb_shape_str(sb, b2, sizeof b2));
	int64_t m = sa.d[sa.ndim - (ta ? 1 : 2)], ka = sa.d[sa.ndim - (ta ? 2 : 1)];
	int64_t kb = sb.d[sb.ndim - (tb ? 1 : 2)], n = sb.d[sb.ndim - (tb ? 2 : 1)];
	if (ka != kb)
		return nb__op_fail(t, NB_ERR_SHAPE, "inner dimensions differ: %s%s x %s%s",
		                   nb_shape_str(sa, b1, sizeof b1), ta ? "^T" : "",
		                   nb_shape_str(sb, b2, sizeof b2), tb ? "^T" : "");
	nb_shape out = sa.ndim >= sb.ndim ? sa : sb;
	if (sa.ndim > 2 && sb.ndim > 2) {
		bool same = sa.ndim == sb.ndim;
		for (int i = 0; same && i + 2 < sa.ndim; i++)
			same = sa.d[i] == sb.d[i];
		if (!same)
			return nb__op_fail(
			    t, NB_ERR_SHAPE,
			    "batch dimensions differ: %s x %s (they must match, or one "
			    "side must be 2-D)",
			    nb_shape_str(sa, b1, sizeof b1), nb_shape_str(sb, b2, sizeof b2));
	}
	out.d[out.ndim - 2] = m;
	out.d[out.ndim - 1] = n;
	t->shape = out;
	return NB_OK;
}

/* Small products cost less as plain loops than a BLIS call's set-up. */
#define SMALL_FLOPS 4096
/* Below this many multiply-adds a product runs on one thread: waking the
 * others costs more than it saves (and spinning threads hurt a busy
 * machine). */
#define SERIAL_FLOPS (128 * 128 * 128)

/* the threads a product runs on */
static int threads_of(mm_dims d, const nb_exec *ex)
{
	return d.batch * d.m * d.n * d.k < SERIAL_FLOPS ? 1 : ex->threads;
}

#define MM_BODY(GEMM)                                                                              \
	mm_dims d = dims(t);                                                                       \
	const T *A = NB_IN(t, 0, T), *B = NB_IN(t, 1, T);                                          \
	T *C = NB_OUT(t, T);                                                                       \
	const int th = threads_of(d, ex);                                                          \
	for (int64_t b = 0; b < d.batch; b++) {                                                    \
		const T *a = A + b * d.a_stride, *bb = B + b * d.b_stride;                         \
		T *c = C + b * d.m * d.n;                                                          \
		if (d.m * d.n * d.k <= SMALL_FLOPS) {                                              \
			for (int64_t i = 0; i < d.m; i++)                                          \
				for (int64_t j = 0; j < d.n; j++) {                                \
					T s = 0;                                                   \
					for (int64_t p = 0; p < d.k; p++)                          \
						s += a[i * d.rsa + p * d.csa] *                    \
						     bb[p * d.rsb + j * d.csb];                    \
					c[i * d.n + j] = s;                                        \
				}                                                                  \
		} else {                                                                           \
			GEMM(ex->isa, th, (dim_t)d.m, (dim_t)d.n, (dim_t)d.k, a, d.rsa, d.csa, bb, \
			     d.rsb, d.csb, c, (inc_t)d.n, ex->workspace, ex->workspace_bytes);     \
		}                                                                                  \
	}

static void matmul_f32(const nb_exec *ex, nb_tensor *t)
{
	typedef float T;
	MM_BODY(nb__sgemm)
}

static void matmul_f64(const nb_exec *ex, nb_tensor *t)
{
	typedef double T;
	MM_BODY(nb__dgemm)
}

/* the scratch space the product's GEMM asks for (gemm.h) */
static size_t plan_matmul(const nb_tensor *t, const nb_exec *x, void *plan)
{
	(void)plan;
	const mm_dims d = dims(t);
	if (d.m * d.n * d.k <= SMALL_FLOPS)
		return 0;
	return nb__gemm_scratch(x->isa, threads_of(d, x), (dim_t)d.m, (dim_t)d.n, (dim_t)d.k, d.rsa,
	                        d.csb, nb__is_f32(t) ? sizeof(float) : sizeof(double));
}

/* VJP of C = op(A) op(B) with gradient G (see the table in the comment):
 *   tA=0 tB=0:  dA = G B^T      dB = A^T G
 *   tA=0 tB=1:  dA = G B        dB = G^T A
 *   tA=1 tB=0:  dA = B G^T      dB = A G
 *   tA=1 tB=1:  dA = B^T G^T    dB = G^T A^T
 * A shared 2-D operand of a batched product gets its gradient summed over
 * the batch (sum_to). */
static void vjp_matmul(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	nb_tensor *a = t->in[0], *b = t->in[1];
	bool ta = t->a.i[0], tb = t->a.i[1];
	if (need[0]) {
		nb_tensor *da = !ta ? nb_matmul_t(g, b, false, !tb) : nb_matmul_t(b, g, tb, true);
		gin[0] = nb__sum_to(da, a->shape);
	}
	if (need[1]) {
		nb_tensor *db;
		if (b->shape.ndim == 2 && a->shape.ndim > 2 && !ta) {
			/* fold the batch: dB = A'^T G over all batch rows at once */
			int64_t k = a->shape.d[a->shape.ndim - 1],
			        n = g->shape.d[g->shape.ndim - 1];
			int64_t rows = a->size / k;
			nb_tensor *a2 = nb_reshape(a, NB_SHAPE(rows, k));
			nb_tensor *g2 = nb_reshape(g, NB_SHAPE(rows, n));
			db = !tb ? nb_matmul_t(a2, g2, true, false)
			         : nb_matmul_t(g2, a2, true, false);
		} else {
			db = !tb ? nb_matmul_t(a, g, !ta, false) : nb_matmul_t(g, a, true, ta);
		}
		gin[1] = nb__sum_to(db, b->shape);
	}
}

static void label_matmul(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s", t->a.i[0] ? "A^T" : "A", t->a.i[1] ? " B^T" : " B");
}

nb_tensor *nb_matmul_t(nb_tensor *a, nb_tensor *b, bool trans_a, bool trans_b)
{
	nb_attrs at = {.i = {trans_a, trans_b}};
	return nb__op2(NB_OP_MATMUL, a, b, &at);
}

nb_tensor *nb_matmul(nb_tensor *a, nb_tensor *b)
{
	return nb_matmul_t(a, b, false, false);
}

/* Random sizes, transposes and batching, some above the BLIS threshold. */
static nb_tensor *ex_matmul(nb_graph *g, nb_tensor **w, int *n)
{
	int64_t m = 1 + (int64_t)(nb__rng_next(g) % 5), k = 1 + (int64_t)(nb__rng_next(g) % 5);
	int64_t nn = 1 + (int64_t)(nb__rng_next(g) % 5);
	bool big = nb__rng_next(g) % 3 == 0;
	if (big)
		m = 20, k = 17, nn = 19;
	bool ta = nb__rng_next(g) & 1, tb = nb__rng_next(g) & 1;
	int mode =
	    (int)(nb__rng_next(g) % 4); /* 0: 2-D, 1: both batched, 2: a batched, 3: b batched */
	int64_t batch = 2 + (int64_t)(nb__rng_next(g) % 2);
	nb_shape sa = ta ? NB_SHAPE(k, m) : NB_SHAPE(m, k);
	nb_shape sb = tb ? NB_SHAPE(nn, k) : NB_SHAPE(k, nn);
	if (mode == 1 || mode == 2)
		sa = NB_SHAPE(batch, sa.d[0], sa.d[1]);
	if (mode == 1 || mode == 3)
		sb = NB_SHAPE(batch, sb.d[0], sb.d[1]);
	w[0] = NB_EX_PARAM(g, "a", sa);
	w[1] = NB_EX_PARAM(g, "b", sb);
	*n = 2;
	return nb_matmul_t(w[0], w[1], ta, tb);
}

const nb_opdef nb__op_matmul = {.name = "matmul",
                                .n_inputs = 2,
                                .shape = shape_matmul,
                                .forward_f32 = matmul_f32,
                                .forward_f64 = matmul_f64,
                                .vjp = vjp_matmul,
                                .label = label_matmul,
                                .plan = plan_matmul,
                                .example = ex_matmul};
