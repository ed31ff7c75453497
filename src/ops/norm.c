/*
 * Batch normalisation and (inverted) dropout.  Both read the graph's
 * training flag at run time, so one compiled program serves training and
 * evaluation; each forward run records the mode it used in the node's aux
 * storage, and the backward helpers follow that record.
 *
 * Batch normalisation, x viewed as [N, C, S] (S = H*W, or 1 for [N, C]),
 * per channel c over the M = R*S values of its first R rows, R = N unless
 * the graph says only R < N rows hold real samples (nb_graph_set_batch_rows:
 * a padded last batch; the rows past R are normalised with the same
 * statistics but take no part in them):
 *
 *   training: mu = mean(x), var = mean((x - mu)^2)         (biased)
 *             running_mean = (1-m) running_mean + m mu
 *             running_var  = (1-m) running_var  + m var M/(M-1)  (unbiased)
 *   eval:     mu = running_mean, var = running_var
 *   both:     invstd = 1/sqrt(var + eps), xhat = (x - mu) invstd,
 *             y = gamma xhat + beta
 *
 * VJP, with g = dL/dy and sums over the channel's M values:
 *   dbeta = sum g,  dgamma = sum g xhat
 *   eval (mu, var constants):  dx = gamma invstd g
 *   training (mu, var depend on x; see docs/norm.md for the derivation):
 *     dx = (gamma invstd / M) (M g - sum g - xhat sum g xhat)   rows < R
 *     dx = gamma invstd g                                        rows >= R
 *   (the sums over all N rows: every output depends on mu and var)
 * emitted as batchnorm_backward(g, x, gamma, y) -> dx, which computes the
 * sums on its way, and batchnorm_sums(dx) -> [2, C] = (dgamma; dbeta),
 * which copies them (batchnorm_sums(g, x, y) computes them where x takes no
 * gradient).  Those nodes take the forward node y as an input: it orders
 * them after the forward run whose saved mean and invstd (y->aux) they
 * read.
 *
 * Synchronised (a.p = an nb_dist, nb_dist_sync_batchnorm): in training the
 * channel sums behind mu and var, and the backward's sum g and sum g xhat,
 * are summed over the ranks before use, so mu, var and dx are those of
 * the whole global batch (M its values); dgamma and dbeta stay the rank's
 * own (the optimizer sums them with the other gradients).
 *
 * Dropout: y = x * keep / (1-p) with keep ~ Bernoulli(1-p) in training,
 * y = x in eval; dx = g * keep / (1-p) (or g).  The mask is drawn afresh at
 * every run: one 64-bit seed from the graph's RNG, then element i keeps
 * when a hash of (seed, i) is >= p, so the draw is independent of thread
 * count and dtype; i counts from the global batch's first element (a
 * rank's shard starts at row nb_graph_set_batch_first), so N ranks draw
 * the masks one process draws.  The mask stays in aux for the backward
 * helper.
 */
#include "dist/dist.h"
#include "ops/kernel.h"
#include "ops/simd.h"
#include "util/rng.h"

#include <stdlib.h>

/* ---- layout and saved state ----------------------------------------------- */

typedef struct bn_dims {
	int64_t N, C, S, M; /* M = N*S values per channel */
} bn_dims;

static bn_dims bn_dims_of(const nb_tensor *x)
{
	bn_dims d = {.N = x->shape.d[0], .C = x->shape.d[1], .S = 1};
	for (int i = 2; i < x->shape.ndim; i++)
		d.S *= x->shape.d[i];
	d.M = d.N * d.S;
	return d;
}

/* aux of a batchnorm node: what the last forward run used */
typedef struct bn_saved {
	bool training;
	int64_t rows;  /* training: the statistics' rows R (the first R of N) */
	double count;  /* synchronised training: M over all ranks, else 0 */
	double stat[]; /* [0, C): mean, [C, 2C): invstd, [2C, 4C]: scratch of
	                * the synchronised sums, then (from 4C + 1) C scales
	                * and C shifts, the T values y = x scale + shift used */
} bn_saved;

/* the doubles of a bn_saved's stat for C channels */
#define BN_STATS(C) (6 * (size_t)(C) + 1)
/* where the scales and the shifts start in stat */
#define BN_SCALE(C) (4 * (C) + 1)
#define BN_SHIFT(C) (5 * (C) + 1)

/* x scale + shift: the forward's value before the fused ReLU, which the
 * backward recomputes for the ReLU's mask rather than reading y.  One
 * expression in one place: as the C standard's ISO mode compiles it (no
 * contraction into a fused multiply-add by GCC; by Clang, the same
 * contraction in every caller of a level), the backward's value is the
 * forward's to the bit. */
#define BN_AFFINE(x, scale, shift) ((x) * (scale) + (shift))

/* aux of a dropout node */
typedef struct dropout_saved {
	bool training;
	unsigned char keep[]; /* 1 where the element was kept */
} dropout_saved;

/* Give a freshly built node its aux storage (zeroed). */
static nb_tensor *with_aux(nb_tensor *t, size_t bytes)
{
	if (!t || nb__is_placeholder(t))
		return t;
	if (!(t->aux = calloc(1, bytes))) {
		nb__fail(t->g, NB_ERR_NOMEM, "%s(%s): out of memory for saved state",
		         nb__ops[t->op]->name, t->in[0]->name);
		return t->g->placeholder;
	}
	t->aux_bytes = bytes;
	return t;
}

/* ---- batchnorm: shape rule ---------------------------------------------------- */

static nb_status shape_batchnorm(nb_tensor *t)
{
	static const char *const what[] = {"x", "gamma", "beta", "running_mean", "running_var"};
	nb_shape xs = t->in[0]->shape;
	char b1[128], b2[128];
	if (xs.ndim != 2 && xs.ndim != 4)
		return nb__op_fail(t, NB_ERR_SHAPE, "x must be [N,C] or [N,C,H,W], got %s",
		                   nb_shape_str(xs, b1, sizeof b1));
	for (int k = 1; k < 5; k++)
		if (!nb__shape_eq(t->in[k]->shape, NB_SHAPE(xs.d[1])))
			return nb__op_fail(t, NB_ERR_SHAPE,
			                   "%s has shape %s, expected [%lld] (one per channel "
			                   "of x %s)",
			                   what[k], nb_shape_str(t->in[k]->shape, b1, sizeof b1),
			                   (long long)xs.d[1], nb_shape_str(xs, b2, sizeof b2));
	/* the forward run writes them in place: they must own their data,
	 * and they are statistics, not something trained */
	for (int k = 3; k < 5; k++) {
		const nb_tensor *r = t->in[k];
		if (!(r->flags & NB_TF_PERSISTENT) || (r->flags & NB_TF_REQUIRES_GRAD))
			return nb__op_fail(t, NB_ERR_ARG,
			                   "%s must be a leaf that takes no gradient (a constant "
			                   "or state, updated in place), not %s %s",
			                   what[k], nb__ops[r->op]->name, r->name);
	}
	t->shape = xs;
	return NB_OK;
}

/* ---- batchnorm: kernels -------------------------------------------------------- */

/* Record the mode of this run and the rows its statistics come from (*s:
 * d restricted to them); training needs two values per channel for the
 * unbiased variance (PyTorch refuses M = 1 too). */
static bool bn_begin(const nb_exec *ex, nb_tensor *t, bn_dims d, bn_dims *s)
{
	bn_saved *sv = t->aux;
	char b[128];
	sv->training = ex->training;
	sv->rows = ex->batch_rows > 0 && ex->batch_rows < d.N ? ex->batch_rows : d.N;
	*s = d;
	s->N = sv->rows;
	s->M = s->N * s->S;
	if (sv->training && s->M < 2) {
		if (s->N < d.N)
			nb__op_fail(
			    t, NB_ERR_VALUE,
			    "training mode needs more than one value per channel, but only %lld "
			    "of the %lld rows of x %s hold real samples (a last batch of one "
			    "sample: choose a batch size that leaves more, or drop it)",
			    (long long)s->N, (long long)d.N,
			    nb_shape_str(t->in[0]->shape, b, sizeof b));
		else
			nb__op_fail(
			    t, NB_ERR_VALUE,
			    "training mode needs more than one value per channel, x is %s "
			    "(switch to eval mode with nb_graph_set_training; under data "
			    "parallelism x is one rank's share of the batch: give each rank "
			    "more samples, or synchronise batchnorm over the ranks with "
			    "nb_dist_sync_batchnorm, nabla train --sync-bn)",
			    nb_shape_str(t->in[0]->shape, b, sizeof b));
	}
	return sv->training;
}

/* Sums over a channel: each row of S values is summed in the element type
 * in vector lanes (blocks of at most BN_BLOCK values, so a float partial
 * sum never runs long), and the block sums are added in double. */
#define BN_BLOCK 256

#define BN_CHANNEL_SUM(d, c, TOTAL, ...)                                                           \
	for (int64_t n_ = 0; n_ < (d).N; n_++)                                                     \
		for (int64_t b_ = (n_ * (d).C + (c)) * (d).S, e_ = b_ + (d).S; b_ < e_;            \
		     b_ += BN_BLOCK) {                                                             \
			const int64_t be_ = b_ + BN_BLOCK < e_ ? b_ + BN_BLOCK : e_;               \
			T acc_ = 0;                                                                \
			NB_SIMD(reduction(+ : acc_)) for (int64_t i = b_; i < be_; i++)            \
			{                                                                          \
				__VA_ARGS__;                                                       \
			}                                                                          \
			(TOTAL) += acc_;                                                           \
		}

/* The same for two sums in one pass, into TOTAL and TOTAL2 (accumulators
 * acc_ and acc2_) */
#define BN_CHANNEL_SUM2(d, c, TOTAL, TOTAL2, ...)                                                  \
	for (int64_t n_ = 0; n_ < (d).N; n_++)                                                     \
		for (int64_t b_ = (n_ * (d).C + (c)) * (d).S, e_ = b_ + (d).S; b_ < e_;            \
		     b_ += BN_BLOCK) {                                                             \
			const int64_t be_ = b_ + BN_BLOCK < e_ ? b_ + BN_BLOCK : e_;               \
			T acc_ = 0, acc2_ = 0;                                                     \
			NB_SIMD(reduction(+ : acc_, acc2_)) for (int64_t i = b_; i < be_; i++)     \
			{                                                                          \
				__VA_ARGS__;                                                       \
			}                                                                          \
			(TOTAL) += acc_;                                                           \
			(TOTAL2) += acc2_;                                                         \
		}

/* Sum W[0..n) over the ranks of the node's nb_dist (a.p of the batchnorm
 * node bn); false after failing the graph. */
static bool bn_allreduce(nb_tensor *t, const nb_tensor *bn, double *W, int n)
{
	char err[600];
	nb_status st = nb__dist_sum(bn->a.p, W, n, err, sizeof err);
	if (st)
		nb__op_fail(t, st, "synchronised statistics: %s", err);
	return !st;
}

/* The training forward with the statistics summed over the ranks: the
 * channel sums (and the value count), then the squared deviations from
 * the global mean, each summed over the ranks. */
NB_KERNELS(batchnorm_sync, {
	const T *X = NB_IN(t, 0, T), *GA = NB_IN(t, 1, T), *BE = NB_IN(t, 2, T);
	T *RM = (T *)t->in[3]->data, *RV = (T *)t->in[4]->data, *Y = NB_OUT(t, T);
	const bn_dims d = bn_dims_of(t->in[0]);
	bn_saved *sv = t->aux;
	const bool relu = t->a.i[0];
	const double eps = t->a.f[0], mom = t->a.f[1];
	double *W = sv->stat + 2 * d.C;
	sv->training = true;
	sv->rows = ex->batch_rows > 0 && ex->batch_rows < d.N ? ex->batch_rows : d.N;
	if (nb__dist_empty_shard(t->a.p)) /* a padding row only: none of the sums */
		sv->rows = 0;
	bn_dims st = d;
	st.N = sv->rows;
	st.M = st.N * st.S;
	NB_OMP_FOR(ex->threads, t->size >= NB_PAR_MIN) for (int64_t c = 0; c < d.C; c++)
	{
		double s_total = 0;
		BN_CHANNEL_SUM(st, c, s_total, acc_ += X[i]);
		W[c] = s_total;
	}
	W[d.C] = (double)st.M;
	if (!bn_allreduce(t, t, W, (int)d.C + 1))
		return;
	const double M = W[d.C];
	if (M < 2) {
		nb__op_fail(t, NB_ERR_VALUE,
		            "training mode needs more than one value per channel, all ranks have "
		            "%.0f",
		            M);
		return;
	}
	sv->count = M;
	for (int64_t c = 0; c < d.C; c++)
		sv->stat[c] = W[c] / M;
	NB_OMP_FOR(ex->threads, t->size >= NB_PAR_MIN) for (int64_t c = 0; c < d.C; c++)
	{
		const T m = (T)sv->stat[c];
		double q_total = 0;
		BN_CHANNEL_SUM(st, c, q_total, acc_ += (X[i] - m) * (X[i] - m));
		W[c] = q_total;
	}
	if (!bn_allreduce(t, t, W, (int)d.C))
		return;
	NB_OMP_FOR(ex->threads, t->size >= NB_PAR_MIN) for (int64_t c = 0; c < d.C; c++)
	{
		const double mean = sv->stat[c], var = W[c] / M;
		RM[c] = (T)((1 - mom) * RM[c] + mom * mean);
		RV[c] = (T)((1 - mom) * RV[c] + mom * (W[c] / (M - 1)));
		const double is = 1 / sqrt(var + eps);
		const T scale = (T)(GA[c] * is), shift = (T)(BE[c] - mean * GA[c] * is);
		sv->stat[d.C + c] = is;
		sv->stat[BN_SCALE(d.C) + c] = scale;
		sv->stat[BN_SHIFT(d.C) + c] = shift;
		for (int64_t n = 0; n < d.N; n++) {
			const T *restrict xr = X + (n * d.C + c) * d.S;
			T *restrict yr = Y + (n * d.C + c) * d.S;
			for (int64_t i = 0; i < d.S; i++) {
				const T v = BN_AFFINE(xr[i], scale, shift);
				yr[i] = relu ? (v > 0 ? v : 0) : v;
			}
		}
	}
})

/* Statistics in two passes (mean, then squared deviations from it), then
 * y = x scale + shift with scale = gamma invstd, shift = beta - mean scale. */
NB_KERNELS(batchnorm, {
	if (t->a.p && ex->training) { /* synchronised over the ranks */
		_Generic((T)0, float : batchnorm_sync_f32, default : batchnorm_sync_f64)(ex, t);
		return;
	}
	const T *X = NB_IN(t, 0, T), *GA = NB_IN(t, 1, T), *BE = NB_IN(t, 2, T);
	T *RM = (T *)t->in[3]->data, *RV = (T *)t->in[4]->data, *Y = NB_OUT(t, T);
	const bn_dims d = bn_dims_of(t->in[0]);
	bn_dims st; /* the rows the statistics come from */
	bn_saved *sv = t->aux;
	sv->count = 0;
	const bool train = bn_begin(ex, t, d, &st), relu = t->a.i[0];
	const double eps = t->a.f[0], mom = t->a.f[1];
	NB_OMP_FOR(ex->threads, t->size >= NB_PAR_MIN) for (int64_t c = 0; c < d.C; c++)
	{
		double mean = RM[c], var = RV[c];
		if (train) {
			double s_total = 0, q_total = 0;
			BN_CHANNEL_SUM(st, c, s_total, acc_ += X[i]);
			mean = s_total / (double)st.M;
			const T m = (T)mean;
			BN_CHANNEL_SUM(st, c, q_total, acc_ += (X[i] - m) * (X[i] - m));
			var = q_total / (double)st.M;
			if (st.M > 1) {
				double unbiased = q_total / (double)(st.M - 1);
				RM[c] = (T)((1 - mom) * RM[c] + mom * mean);
				RV[c] = (T)((1 - mom) * RV[c] + mom * unbiased);
			}
		}
		const double is = 1 / sqrt(var + eps);
		const T scale = (T)(GA[c] * is), shift = (T)(BE[c] - mean * GA[c] * is);
		sv->stat[c] = mean;
		sv->stat[d.C + c] = is;
		sv->stat[BN_SCALE(d.C) + c] = scale;
		sv->stat[BN_SHIFT(d.C) + c] = shift;
		for (int64_t n = 0; n < d.N; n++) {
			const T *restrict xr = X + (n * d.C + c) * d.S;
			T *restrict yr = Y + (n * d.C + c) * d.S;
			if (relu)
				for (int64_t i = 0; i < d.S; i++) {
					const T v = BN_AFFINE(xr[i], scale, shift);
					yr[i] = v > 0 ? v : 0;
				}
			else
				for (int64_t i = 0; i < d.S; i++)
					yr[i] = BN_AFFINE(xr[i], scale, shift);
		}
	}
})

/* With a fused ReLU the incoming gradient is g where the output is
 * positive, else 0 (ReLU's derivative at 0 is 0, as nb_relu's): where
 * x scale + shift > 0, recomputed from x (BN_AFFINE), so that the backward
 * reads g and x but not y (a quarter less memory traffic: ResNet-20's
 * batchnorm_backward is bound by it). */

/* Channel c's sums into D[c] (sum g xhat = dgamma) and D[C + c] (sum g =
 * dbeta), in T as the gradients are; G, X, sv, relu, d in scope */
#define BN_GRAD_SUMS(c, D)                                                                         \
	do {                                                                                       \
		const T m = (T)sv->stat[c];                                                        \
		const T sc_ = (T)sv->stat[BN_SCALE(d.C) + c],                                      \
		        sh_ = (T)sv->stat[BN_SHIFT(d.C) + c];                                      \
		double sg_total = 0, sgx_total = 0;                                                \
		if (relu) { /* separate loops: a test of relu inside would not vectorise;          \
			     the loads outside the select, so it if-converts */                    \
			BN_CHANNEL_SUM2(d, c, sg_total, sgx_total, const T gv = G[i], xv = X[i];   \
			                const T dv = xv - m;                                       \
			                const T gm = BN_AFFINE(xv, sc_, sh_) > 0 ? gv : (T)0;      \
			                acc_ += gm; acc2_ += gm * dv);                             \
		} else {                                                                           \
			BN_CHANNEL_SUM2(d, c, sg_total, sgx_total, const T gv = G[i]; acc_ += gv;  \
			                acc2_ += gv * (X[i] - m));                                 \
		}                                                                                  \
		(D)[c] = (T)(sgx_total * sv->stat[d.C + c]);                                       \
		(D)[d.C + c] = (T)sg_total;                                                        \
	} while (0)

/* batchnorm_sums(g, x, y) -> [2, C]: row 0 = sum g xhat (dgamma), row 1 =
 * sum g (dbeta); batchnorm_sums(dx) copies the sums the batchnorm_backward
 * node dx computed on its way (its aux) */
NB_KERNELS(batchnorm_sums, {
	T *D = NB_OUT(t, T);
	if (t->n_in == 1) {
		memcpy(D, t->in[0]->aux, (size_t)t->size * sizeof(T));
		return;
	}
	/* y (input 2) only for its saved statistics: the ReLU's mask comes
	 * from x */
	const T *G = NB_IN(t, 0, T), *X = NB_IN(t, 1, T);
	const bn_saved *sv = t->in[2]->aux;
	const bool relu = t->in[2]->a.i[0];
	const bn_dims d = bn_dims_of(t->in[1]);
	_Pragma("omp parallel for num_threads(ex->threads) if (t->in[1]->size >= NB_PAR_MIN)") for (
	    int64_t c = 0; c < d.C; c++) BN_GRAD_SUMS(c, D);
})

/* batchnorm_backward(g, x, gamma, y) -> dx, in the mode of y's run (g
 * masked by y > 0 first when y is a fused batchnorm + ReLU):
 * training dx = a g + b (x - mean) + e with a = gamma invstd,
 * b = -a invstd sum(g xhat) / M, e = -a sum(g) / M in the R rows the
 * statistics came from (M = R S), dx = a g in the rows past them.
 * The sums come first, channel by channel, into the node's aux ([2, C] as
 * batchnorm_sums computes them, which then copies them out for dgamma and
 * dbeta); each channel's dx follows its sums while its values are still
 * in cache.  Synchronised training sums them over the ranks in between,
 * so there every channel's sums come first. */
#define BN_DX(c, SU, W)                                                                            \
	do {                                                                                       \
		const double is = sv->stat[d.C + c], k = GA[c] * is;                               \
		const bool tr = sv->training;                                                      \
		const double su = (W) ? (W)[c] : (SU)[c], sg = (W) ? (W)[d.C + c] : (SU)[d.C + c]; \
		const T a = (T)k, m = (T)sv->stat[c];                                              \
		const T sc = (T)sv->stat[BN_SCALE(d.C) + c], sh = (T)sv->stat[BN_SHIFT(d.C) + c];  \
		const T b0 = tr ? (T)(-k * is * su / M) : 0, e0 = tr ? (T)(-k * sg / M) : 0;       \
		for (int64_t n = 0; n < d.N; n++) {                                                \
			/* rows past the statistics' ones reach mu and var not at all */           \
			const T b = n < sv->rows ? b0 : 0, e = n < sv->rows ? e0 : 0;              \
			const int64_t o = (n * d.C + c) * d.S;                                     \
			const T *restrict gr = G + o, *restrict xr = X + o;                        \
			T *restrict dr = DX + o;                                                   \
			if (relu)                                                                  \
				for (int64_t i = 0; i < d.S; i++) {                                \
					const T gv = gr[i], xv = xr[i];                            \
					const T gm = BN_AFFINE(xv, sc, sh) > 0 ? gv : (T)0;        \
					dr[i] = a * gm + b * (xv - m) + e;                         \
				}                                                                  \
			else                                                                       \
				for (int64_t i = 0; i < d.S; i++)                                  \
					dr[i] = a * gr[i] + b * (xr[i] - m) + e;                   \
		}                                                                                  \
	} while (0)

NB_KERNELS(batchnorm_backward, {
	const T *G = NB_IN(t, 0, T), *X = NB_IN(t, 1, T), *GA = NB_IN(t, 2, T);
	const bn_saved *sv = t->in[3]->aux; /* y: its saved statistics alone */
	const bool relu = t->in[3]->a.i[0];
	T *DX = NB_OUT(t, T), *SU = t->aux;
	const bn_dims d = bn_dims_of(t->in[1]);
	const double M0 = (double)(sv->rows * d.S);
	const double *const W0 = NULL;
	if (!(sv->training && sv->count > 0)) {
		const double M = M0;
		NB_OMP_FOR(ex->threads, t->size >= NB_PAR_MIN) for (int64_t c = 0; c < d.C; c++)
		{
			BN_GRAD_SUMS(c, SU);
			BN_DX(c, SU, W0);
		}
		return;
	}
	/* synchronised: the sums of all ranks */
	const double M = sv->count;
	double *W = ((bn_saved *)t->in[3]->aux)->stat + 2 * d.C;
	NB_OMP_FOR(ex->threads, t->size >= NB_PAR_MIN)
	for (int64_t c = 0; c < d.C; c++)
		BN_GRAD_SUMS(c, SU);
	for (int64_t c = 0; c < 2 * d.C; c++)
		W[c] = SU[c];
	if (!bn_allreduce(t, t->in[3], W, 2 * (int)d.C))
		return;
	NB_OMP_FOR(ex->threads, t->size >= NB_PAR_MIN)
	for (int64_t c = 0; c < d.C; c++)
		BN_DX(c, SU, W);
})

static nb_status shape_bn_sums(nb_tensor *t)
{
	t->shape = NB_SHAPE(2, t->in[t->n_in == 1 ? 0 : 1]->shape.d[1]);
	return NB_OK;
}

static nb_status shape_bn_backward(nb_tensor *t)
{
	t->shape = t->in[1]->shape;
	return NB_OK;
}

static void vjp_batchnorm(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	if (need[3] || need[4]) {
		nb__fail(t->g, NB_ERR_GRAPH,
		         "grad: batchnorm %s has no derivative with respect to its running "
		         "statistics (%s, %s)",
		         t->name, t->in[3]->name, t->in[4]->name);
		return;
	}
	nb_tensor *x = t->in[0];
	int64_t C = x->shape.d[1];
	nb_tensor *sums = NULL;
	if (need[0]) { /* dx computes the sums on its way; dgamma and dbeta copy them */
		gin[0] = with_aux(
		    nb__op(NB_OP_BATCHNORM_BACKWARD, (nb_tensor *[]){g, x, t->in[1], t}, 4, &t->a),
		    2 * (size_t)C * sizeof(double));
		if (need[1] || need[2])
			sums = nb__op(NB_OP_BATCHNORM_SUMS, (nb_tensor *[]){gin[0]}, 1, &t->a);
	} else
		sums = nb__op(NB_OP_BATCHNORM_SUMS, (nb_tensor *[]){g, x, t}, 3, &t->a);
	if (need[1])
		gin[1] = nb_reshape(nb_slice(sums, 0, 0, 1), NB_SHAPE(C));
	if (need[2])
		gin[2] = nb_reshape(nb_slice(sums, 0, 1, 2), NB_SHAPE(C));
}

static void label_batchnorm(const nb_tensor *t, char *buf, size_t n)
{
	const nb_tensor *bn = t;
	if (t->op == NB_OP_BATCHNORM_SUMS)
		bn = t->n_in == 1 ? t->in[0]->in[3] : t->in[2];
	else if (t->op == NB_OP_BATCHNORM_BACKWARD)
		bn = t->in[3];
	snprintf(buf, n, "eps %g momentum %g%s", t->a.f[0], t->a.f[1], bn->a.i[0] ? " +relu" : "");
}

/* ---- batchnorm: constructors -------------------------------------------------------- */

nb_batchnorm_opts nb_batchnorm_defaults(void)
{
	return (nb_batchnorm_opts){.eps = 1e-5, .momentum = 0.1, .as_written = true};
}

nb_tensor *nb_batchnorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_tensor *running_mean,
                        nb_tensor *running_var, nb_batchnorm_opts o)
{
	nb_tensor *in[5] = {x, gamma, beta, running_mean, running_var};
	nb_graph *g = nb__graph_of(in, 5);
	if (!g)
		return NULL;
	if (g->status != NB_OK)
		return g->placeholder;
	nb_batchnorm_opts d = nb_batchnorm_defaults();
	double eps = o.eps == 0 && !o.as_written ? d.eps : o.eps;
	double mom = o.momentum == 0 && !o.as_written ? d.momentum : o.momentum;
	if (!(eps > 0 && isfinite(eps)) || !(mom >= 0 && mom <= 1)) {
		nb__fail(g, NB_ERR_ARG,
		         "batchnorm(%s): eps = %g must be positive and momentum = %g in [0, 1]",
		         x ? x->name : "NULL", eps, mom);
		return g->placeholder;
	}
	nb_attrs at = {.f = {eps, mom}, .i = {o.relu}};
	nb_tensor *t = nb__op(NB_OP_BATCHNORM, in, 5, &at);
	if (!t || nb__is_placeholder(t))
		return t;
	return with_aux(t, sizeof(bn_saved) + BN_STATS(x->shape.d[1]) * sizeof(double));
}

nb_tensor *nb_batchnorm_layer(nb_tensor *x, const char *name, nb_batchnorm_opts o)
{
	if (!x)
		return NULL;
	nb_graph *g = x->g;
	char b[256];
	if (g->status != NB_OK)
		return g->placeholder;
	if (!name) {
		nb__fail(g, NB_ERR_ARG, "batchnorm_layer(%s): name is NULL", x->name);
		return g->placeholder;
	}
	if (x->shape.ndim != 2 && x->shape.ndim != 4) {
		nb__fail(g, NB_ERR_SHAPE,
		         "batchnorm_layer(%s): x must be [N,C] or [N,C,H,W], got %s", x->name,
		         nb_shape_str(x->shape, b, sizeof b));
		return g->placeholder;
	}
	nb_shape s = NB_SHAPE(x->shape.d[1]);
	snprintf(b, sizeof b, "%s.gamma", name);
	nb_tensor *gamma = nb_param(g, b, s, NB_ONES);
	snprintf(b, sizeof b, "%s.beta", name);
	nb_tensor *beta = nb_param(g, b, s, NB_ZEROS);
	snprintf(b, sizeof b, "%s.running_mean", name);
	nb_tensor *rm = nb__leaf(g, NB_OP_CONST, NB_ROLE_STATE, b, s); /* zeros */
	snprintf(b, sizeof b, "%s.running_var", name);
	nb_tensor *rv = nb__leaf(g, NB_OP_CONST, NB_ROLE_STATE, b, s);
	if (g->status != NB_OK || nb_init_tensor(rv, NB_ONES) != NB_OK)
		return g->placeholder;
	return nb_set_name(nb_batchnorm(x, gamma, beta, rm, rv, o), name);
}

/* ---- dropout --------------------------------------------------------------------------- */

/* a counter-based stream: element i of a draw is splitmix64's output i
 * from the draw's seed, uniform in [0, 1) from its top 53 bits (inlined
 * into each ISA variant of the dropout kernels) */
NB_INLINE double uniform_at(uint64_t seed, int64_t i)
{
	return nb__unit53(nb__rand_at(seed, (uint64_t)i));
}

/* OUT = IN * keep / (1-p) in the recorded training mode, else a copy */
#define APPLY_MASK(sv, IN, OUT)                                                                    \
	do {                                                                                       \
		int64_t n = t->size;                                                               \
		if (!(sv)->training) {                                                             \
			memcpy(OUT, IN, (size_t)n * sizeof(T));                                    \
			break;                                                                     \
		}                                                                                  \
		const T scale = (T)(1.0 / (1.0 - t->a.f[0]));                                      \
		const unsigned char *K = (sv)->keep;                                               \
		_Pragma("omp parallel for num_threads(ex->threads) if (n >= NB_PAR_MIN)") for (    \
		    int64_t i = 0; i < n; i++) OUT[i] = K[i] ? IN[i] * scale : 0;                  \
	} while (0)

NB_KERNELS(dropout, {
	dropout_saved *sv = t->aux;
	sv->training = ex->training;
	if (sv->training) {
		const uint64_t seed = nb__rng_next(t->g);
		const double p = t->a.f[0];
		const int64_t n = t->size;
		/* element i of a rank's shard is element i + first row's offset
		 * of the global batch: the masks one process draws */
		const int64_t rows = t->shape.ndim ? t->shape.d[0] : 1;
		const uint64_t base = (uint64_t)ex->batch_first * (uint64_t)(rows ? n / rows : 0);
		_Pragma("omp parallel for num_threads(ex->threads) if (n >= NB_PAR_MIN)") for (
		    int64_t i = 0; i < n; i++) sv->keep[i] =
		    uniform_at(seed, (int64_t)(base + (uint64_t)i)) >= p;
	}
	APPLY_MASK(sv, NB_IN(t, 0, T), NB_OUT(t, T));
})

/* dropout_backward(g, y): the same mask and scale, applied to g */
NB_KERNELS(dropout_backward, {
	const dropout_saved *sv = t->in[1]->aux;
	APPLY_MASK(sv, NB_IN(t, 0, T), NB_OUT(t, T));
})

static nb_status shape_same(nb_tensor *t)
{
	t->shape = t->in[0]->shape;
	return NB_OK;
}

static void vjp_dropout(nb_tensor *t, nb_tensor *g, nb_tensor **gin, const bool *need)
{
	(void)need;
	gin[0] = nb__op2(NB_OP_DROPOUT_BACKWARD, g, t, &t->a);
}

static void label_dropout(const nb_tensor *t, char *buf, size_t n)
{
	snprintf(buf, n, "p %g", t->a.f[0]);
}

nb_tensor *nb_dropout(nb_tensor *x, double p)
{
	if (!x)
		return NULL;
	nb_graph *g = x->g;
	if (g->status != NB_OK)
		return g->placeholder;
	if (!(p >= 0 && p < 1)) {
		nb__fail(g, NB_ERR_ARG, "dropout(%s): p = %g is not a probability in [0, 1)",
		         x->name, p);
		return g->placeholder;
	}
	nb_attrs at = {.f = {p}};
	nb_tensor *t = nb__op1(NB_OP_DROPOUT, x, &at);
	if (!t || nb__is_placeholder(t))
		return t;
	return with_aux(t, sizeof(dropout_saved) + (size_t)t->size);
}

/* ---- gradcheck examples ------------------------------------------------------------------
 * Both run in training mode (the graph default).  Batchnorm gets at least
 * three values per channel: with two, xhat = +-1 whatever x is, and values
 * drawn close together would make the finite differences ill-conditioned.
 * The running statistics change at every forward run of the check but the
 * training-mode output does not read them.  Dropout redraws its mask at
 * every run; nb_gradcheck rewinds the graph RNG before each run, so every
 * finite difference sees the same mask (the function is then linear). */

static nb_tensor *ex_batchnorm(nb_graph *g, nb_tensor **w, int *n)
{
	int64_t N = 2 + (int64_t)(nb__rng_next(g) % 2), C = 1 + (int64_t)(nb__rng_next(g) % 3);
	int64_t H = 1 + (int64_t)(nb__rng_next(g) % 3), W = 2 + (int64_t)(nb__rng_next(g) % 2);
	nb_shape xs = nb__rng_next(g) & 1 ? NB_SHAPE(N, C, H, W) : NB_SHAPE(N + 1, C);
	w[0] = NB_EX_PARAM(g, "x", xs);
	w[1] = nb__rand_param(g, "gamma", NB_SHAPE(C), 0.5, 1.5);
	w[2] = NB_EX_PARAM(g, "beta", NB_SHAPE(C));
	*n = 3;
	nb_tensor *rm = nb__leaf(g, NB_OP_CONST, NB_ROLE_STATE, "running_mean", NB_SHAPE(C));
	nb_tensor *rv = nb__leaf(g, NB_OP_CONST, NB_ROLE_STATE, "running_var", NB_SHAPE(C));
	nb_init_tensor(rm, NB_UNIFORM(-0.5, 0.5));
	nb_init_tensor(rv, NB_UNIFORM(0.5, 1.5));
	/* half of them with statistics from the first rows only, as for a
	 * padded last batch (at least two values per channel) */
	g->batch_rows = xs.d[0] > 2 && nb__rng_next(g) & 1
	                    ? 2 + (int64_t)(nb__rng_next(g) % (uint64_t)(xs.d[0] - 2))
	                    : 0;
	/* half of them fused with a ReLU (gradcheck steps around its kink) */
	return nb_batchnorm(w[0], w[1], w[2], rm, rv,
	                    (nb_batchnorm_opts){.relu = nb__rng_next(g) & 1});
}

static nb_tensor *ex_dropout(nb_graph *g, nb_tensor **w, int *n)
{
	w[0] = NB_EX_PARAM(g, "x", nb__rand_shape(g, 1, 4, 4));
	*n = 1;
	return nb_dropout(w[0], 0.1 + 0.6 * nb__rng_uniform(g));
}

/* ---- op table entries ------------------------------------------------------------------ */

const nb_opdef nb__op_batchnorm = {.name = "batchnorm",
                                   .n_inputs = 5,
                                   .shape = shape_batchnorm,
                                   .forward_f32 = batchnorm_f32,
                                   .forward_f64 = batchnorm_f64,
                                   .vjp = vjp_batchnorm,
                                   .label = label_batchnorm,
                                   .example = ex_batchnorm};

/* Backward helpers: checked through batchnorm's gradcheck; no derivative
 * of their own (a second derivative through batchnorm reports an error). */
const nb_opdef nb__op_batchnorm_sums = {.name = "batchnorm_sums",
                                        .n_inputs = -1, /* (g, x, y) or (dx) */
                                        .shape = shape_bn_sums,
                                        .forward_f32 = batchnorm_sums_f32,
                                        .forward_f64 = batchnorm_sums_f64,
                                        .label = label_batchnorm,
                                        .flags = NB_OPF_INTERNAL};

const nb_opdef nb__op_batchnorm_backward = {.name = "batchnorm_backward",
                                            .n_inputs = 4,
                                            .shape = shape_bn_backward,
                                            .forward_f32 = batchnorm_backward_f32,
                                            .forward_f64 = batchnorm_backward_f64,
                                            .label = label_batchnorm,
                                            .flags = NB_OPF_INTERNAL};

const nb_opdef nb__op_dropout = {.name = "dropout",
                                 .n_inputs = 1,
                                 .shape = shape_same,
                                 .forward_f32 = dropout_f32,
                                 .forward_f64 = dropout_f64,
                                 .vjp = vjp_dropout,
                                 .label = label_dropout,
                                 .example = ex_dropout};

const nb_opdef nb__op_dropout_backward = {.name = "dropout_backward",
                                          .n_inputs = 2,
                                          .shape = shape_same,
                                          .forward_f32 = dropout_backward_f32,
                                          .forward_f64 = dropout_backward_f64,
                                          .label = label_dropout,
                                          .flags = NB_OPF_INTERNAL};
