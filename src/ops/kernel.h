/*
 * Helpers for writing op kernels once for both dtypes.
 *
 * A kernel body is written as a macro of the element type T and expanded
 * twice, so f32 and f64 share one source.  <tgmath.h> makes exp(), log(),
 * ... pick the float or double version from the argument type.
 */
#ifndef NB_KERNEL_H
#define NB_KERNEL_H

#include "graph/internal.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* ISA variants (docs/design.md, "Kernels for the CPU"): a hot kernel is
 * compiled once per ISA level -- AVX-512 (x86-64-v4, 512-bit vectors
 * preferred), AVX2 + FMA (x86-64-v3) and the baseline -- and a dispatcher
 * picks one by the level the kernel is handed (nb_exec isa, a conv plan's
 * isa), so NABLA_ISA lowers every kernel, not only the GEMM.  Without
 * NB_MULTIVERSION (-Dnative=true, -Dmultiversion=false, clang, TSan, not
 * x86-64) there is one variant, compiled for the build's own target, and
 * every level runs it.  A helper a variant calls must be
 * static inline __attribute__((always_inline)) (NB_INLINE) so that it is
 * compiled into each variant at that variant's target; a function called
 * out of line runs at its own (the baseline, unless it is a variant too). */
#define NB_INLINE static inline __attribute__((always_inline))
#define NB_ISA_LEVELS 3
#if defined(NB_MULTIVERSION)
#define NB_TARGET_AVX512 __attribute__((target("arch=x86-64-v4,prefer-vector-width=512")))
/* AVX-512's instructions and 32 registers, loops vectorised at 256 bits */
#define NB_TARGET_AVX512_256 __attribute__((target("arch=x86-64-v4,prefer-vector-width=256")))
#define NB_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))
/* the variant of F (F_base, F_avx2, F_avx512) for ISA level isa */
#define NB_ISA_PICK(isa, F) ((isa) >= 2 ? F##_avx512 : (isa) == 1 ? F##_avx2 : F##_base)
/* a table of F's variants indexed by level */
#define NB_ISA_TABLE(F)                                                                            \
	{                                                                                          \
		F##_base, F##_avx2, F##_avx512                                                     \
	}
#else
#define NB_ISA_PICK(isa, F) ((void)(isa), F##_base)
#define NB_ISA_TABLE(F)                                                                            \
	{                                                                                          \
		F##_base, F##_base, F##_base                                                       \
	}
#endif

/* The level of the variant that last began a kernel on this thread
 * (src/ops/gemm.c): each variant's entry sets it (NB_ISA_MARK), for the
 * tests that check the dispatch.  0 in a build with one variant. */
extern _Thread_local int nb__isa_ran;
#define NB_ISA_MARK(V) (nb__isa_ran = (V))

/* Loops over this many elements or more run on OpenMP threads. */
#define NB_PAR_MIN 32768

/* for (int64_t I = 0; I < N; I++) { ... } on TH OpenMP threads (the
 * kernel's nb_exec threads) when COND holds and TH is more than one, else
 * a plain loop.  (A parallel region costs a team
 * set-up, a malloc and futex calls, even when its if() clause is false or
 * it has one thread; on small graphs, or once per image, that would cost
 * more than the kernels.) */
#define NB_PAR_FOR_IF(TH, COND, I, N, ...)                                                         \
	do {                                                                                       \
		const int64_t npf_n_ = (N);                                                        \
		const int npf_th_ = (COND) ? (TH) : 1;                                             \
		if (npf_th_ > 1) {                                                                 \
			_Pragma("omp parallel for num_threads(npf_th_)") for (int64_t I = 0;       \
			                                                      I < npf_n_; I++)     \
			{                                                                          \
				__VA_ARGS__                                                        \
			}                                                                          \
		} else {                                                                           \
			for (int64_t I = 0; I < npf_n_; I++) {                                     \
				__VA_ARGS__                                                        \
			}                                                                          \
		}                                                                                  \
	} while (0)

/* "#pragma omp parallel for num_threads(TH) if (COND)" before a for loop */
#define NB__PRAGMA(x) _Pragma(#x)
#define NB_OMP_FOR(TH, COND) NB__PRAGMA(omp parallel for num_threads(TH) if (COND))

/* the same when N is at least NB_PAR_MIN */
#define NB_PAR_FOR(TH, I, N, ...) NB_PAR_FOR_IF(TH, (N) >= NB_PAR_MIN, I, N, __VA_ARGS__)

/* Partial sums added in a fixed order: the sum over k < parts of the e-th
 * value of part k (at base + k stride bytes), added in part order, so the
 * bits depend on how the work was cut into parts and never on which thread
 * filled a part or when it finished (nb__part_sum_f32, _f64).
 * nb__sum_parts(dst, wn, ...) writes it for every e < wn into dst, the
 * elements shared among the team of the enclosing parallel region: call it
 * inside one (its own: an orphaned omp for binds to whatever region
 * encloses the caller), after a barrier, when every part is complete. */
#define NB__SUM_PARTS_FN(T, SFX)                                                                   \
	static inline T nb__part_sum_##SFX(const char *base, size_t stride, int parts, int64_t e)  \
	{                                                                                          \
		T s = 0;                                                                           \
		for (int k = 0; k < parts; k++)                                                    \
			s += ((const T *)(base + (size_t)k * stride))[e];                          \
		return s;                                                                          \
	}                                                                                          \
	static inline void nb__sum_parts_##SFX(T *dst, int64_t wn, const char *base,               \
	                                       size_t stride, int parts)                           \
	{                                                                                          \
		_Pragma("omp for schedule(static)") for (int64_t e = 0; e < wn; e++) dst[e] =      \
		    nb__part_sum_##SFX(base, stride, parts, e);                                    \
	}
NB__SUM_PARTS_FN(float, f32)
NB__SUM_PARTS_FN(double, f64)
#undef NB__SUM_PARTS_FN
#define nb__sum_parts(dst, wn, base, stride, parts)                                                \
	_Generic((dst), float *: nb__sum_parts_f32, double *: nb__sum_parts_f64)( \
	    (dst), (wn), (base), (stride), (parts))

/* The parts of NB_PAR_SUM */
#define NB_SUM_PARTS 64

/* The same as NB_PAR_FOR_IF for a sum into a double named s (a reduction)
 * whose bits depend on the data alone, the same at every thread count: the
 * N iterations are cut into NB_SUM_PARTS ranges fixed by N, each range is
 * summed in order into a part's own s (the body's s), and the parts are
 * added in part order (nb__part_sum_f64) to the enclosing s.  When COND does
 * not hold, one plain loop, whatever the thread count. */
#define NB__SUM_PART(K, I, ...)                                                                    \
	{                                                                                          \
		const int64_t nps_lo_ = (K)*nps_ch_;                                               \
		const int64_t nps_hi_ = nps_lo_ + nps_ch_ < nps_n_ ? nps_lo_ + nps_ch_ : nps_n_;   \
		double s = 0;                                                                      \
		for (int64_t I = nps_lo_; I < nps_hi_; I++) {                                      \
			__VA_ARGS__                                                                \
		}                                                                                  \
		nps_part_[K] = s;                                                                  \
	}
#define NB_PAR_SUM_IF(TH, COND, I, N, ...)                                                              \
	do {                                                                                            \
		const int64_t nps_n_ = (N);                                                             \
		if (COND) {                                                                             \
			const int64_t nps_ch_ = (nps_n_ + NB_SUM_PARTS - 1) / NB_SUM_PARTS;             \
			double nps_part_[NB_SUM_PARTS];                                                 \
			const int nps_th_ = (TH);                                                       \
			if (nps_th_ > 1) {                                                              \
				_Pragma("omp parallel for num_threads(nps_th_) schedule(static)") for ( \
				    int64_t nps_k_ = 0; nps_k_ < NB_SUM_PARTS; nps_k_++)                \
				    NB__SUM_PART(nps_k_, I, __VA_ARGS__)                                \
			} else {                                                                        \
				for (int64_t nps_k_ = 0; nps_k_ < NB_SUM_PARTS; nps_k_++)               \
					NB__SUM_PART(nps_k_, I, __VA_ARGS__)                            \
			}                                                                               \
			s += nb__part_sum_f64((const char *)nps_part_, sizeof(double),                  \
			                      NB_SUM_PARTS, 0);                                         \
		} else {                                                                                \
			for (int64_t I = 0; I < nps_n_; I++) {                                          \
				__VA_ARGS__                                                             \
			}                                                                               \
		}                                                                                       \
	} while (0)

#define NB_PAR_SUM(TH, I, N, ...) NB_PAR_SUM_IF(TH, (N) >= NB_PAR_MIN, I, N, __VA_ARGS__)

/* Lanes of NB_PAR_SUM_LANES_IF */
#define NB_SUM_LANES 32

/* The same sum as NB_PAR_SUM_IF (into the enclosing double s, the same
 * parts, added in order) with the body setting a double named v, value I's
 * term, rather than adding to s: within a part, term I goes into lane
 * I mod NB_SUM_LANES (counted from the part's start), NB_SUM_LANES
 * independent sums (whole vectors at every ISA level) where one running sum
 * waits on each addition; the lanes are then added as a tree (halves lane
 * by lane), and the terms past the last whole block of lanes one by one.
 * The order is fixed by N and COND alone: the same bits at every thread
 * count and ISA level.  When COND does not hold, one part. */
#define NB__SUM_LANES_PART(K, CH, NN, PART, I, ...)                                                \
	{                                                                                          \
		const int64_t npl_lo_ = (K) * (CH);                                                \
		const int64_t npl_hi_ = npl_lo_ + (CH) < (NN) ? npl_lo_ + (CH) : (NN);             \
		double npl_acc_[NB_SUM_LANES] = {0};                                               \
		int64_t npl_i_ = npl_lo_;                                                          \
		for (; npl_i_ + NB_SUM_LANES <= npl_hi_; npl_i_ += NB_SUM_LANES)                   \
			for (int npl_j_ = 0; npl_j_ < NB_SUM_LANES; npl_j_++) {                    \
				const int64_t I = npl_i_ + npl_j_;                                 \
				double v;                                                          \
				__VA_ARGS__                                                        \
				npl_acc_[npl_j_] += v;                                             \
			}                                                                          \
		for (int npl_h_ = NB_SUM_LANES / 2; npl_h_ > 0; npl_h_ /= 2)                       \
			for (int npl_j_ = 0; npl_j_ < npl_h_; npl_j_++)                            \
				npl_acc_[npl_j_] += npl_acc_[npl_j_ + npl_h_];                     \
		for (; npl_i_ < npl_hi_; npl_i_++) {                                               \
			const int64_t I = npl_i_;                                                  \
			double v;                                                                  \
			__VA_ARGS__                                                                \
			npl_acc_[0] += v;                                                          \
		}                                                                                  \
		(PART)[K] = npl_acc_[0];                                                           \
	}
#define NB_PAR_SUM_LANES_IF(TH, COND, I, N, ...)                                                   \
	do {                                                                                       \
		const int64_t npl_n_ = (N);                                                        \
		const int npl_parts_ = (COND) ? NB_SUM_PARTS : 1;                                  \
		const int64_t npl_ch_ = (npl_n_ + npl_parts_ - 1) / npl_parts_;                    \
		double npl_part_[NB_SUM_PARTS];                                                    \
		const int npl_th_ = npl_parts_ > 1 ? (TH) : 1;                                     \
		if (npl_th_ > 1) {                                                                 \
			_Pragma("omp parallel for num_threads(npl_th_) schedule(static)") for (    \
			    int npl_k_ = 0; npl_k_ < npl_parts_; npl_k_++)                         \
			    NB__SUM_LANES_PART(npl_k_, npl_ch_, npl_n_, npl_part_, I, __VA_ARGS__) \
		} else {                                                                           \
			for (int npl_k_ = 0; npl_k_ < npl_parts_; npl_k_++)                        \
				NB__SUM_LANES_PART(npl_k_, npl_ch_, npl_n_, npl_part_, I,          \
				                   __VA_ARGS__)                                    \
		}                                                                                  \
		s += nb__part_sum_f64((const char *)npl_part_, sizeof(double), npl_parts_, 0);     \
	} while (0)
#define NB_PAR_SUM_LANES(TH, I, N, ...)                                                            \
	NB_PAR_SUM_LANES_IF(TH, (N) >= NB_PAR_MIN, I, N, __VA_ARGS__)

#define NB_IN(t, k, T) ((const T *)(t)->in[k]->data)
#define NB_OUT(t, T) ((T *)(t)->data)

/* Define the kernels NAME_f32 and NAME_f64 from BODY(T), a statement list
 * that may use the type name T, the node t and its nb_exec ex: each one
 * variant per ISA level and a dispatcher on ex->isa (NB_ISA_PICK). */
#define NB__KERNEL(FN, ATTR, V, TY, ...)                                                           \
	ATTR static void FN(const nb_exec *ex, nb_tensor *t)                                       \
	{                                                                                          \
		typedef TY T;                                                                      \
		(void)ex;                                                                          \
		NB_ISA_MARK(V);                                                                    \
		__VA_ARGS__                                                                        \
	}
#if defined(NB_MULTIVERSION)
#define NB__KERNEL_ISA(FN, TY, ...)                                                                \
	NB__KERNEL(FN##_avx512, NB_TARGET_AVX512, 2, TY, __VA_ARGS__)                              \
	NB__KERNEL(FN##_avx2, NB_TARGET_AVX2, 1, TY, __VA_ARGS__)                                  \
	NB__KERNEL(FN##_base, , 0, TY, __VA_ARGS__)                                                \
	static void FN(const nb_exec *ex, nb_tensor *t)                                            \
	{                                                                                          \
		NB_ISA_PICK(ex->isa, FN)(ex, t);                                                   \
	}
#else
#define NB__KERNEL_ISA(FN, TY, ...) NB__KERNEL(FN, , 0, TY, __VA_ARGS__)
#endif
#define NB_KERNELS(NAME, ...)                                                                      \
	NB__KERNEL_ISA(NAME##_f32, float, __VA_ARGS__)                                             \
	NB__KERNEL_ISA(NAME##_f64, double, __VA_ARGS__)

/* relu's rule, x of type T: relu's kernel and the fusions that apply it
 * (add+relu) share it, so that their bits are relu's */
#define NB_RELU_OF(x) ((x) > 0 ? (x) : (T)0)

/* A unary elementwise kernel from an expression of x (the input element)
 * and the attribute reals f0, f1. */
#define NB_UNARY_KERNELS(NAME, ...)                                                                \
	NB_KERNELS(NAME, {                                                                         \
		const T *X = NB_IN(t, 0, T);                                                       \
		T *Y = NB_OUT(t, T);                                                               \
		const T f0 = (T)t->a.f[0], f1 = (T)t->a.f[1];                                      \
		(void)f0;                                                                          \
		(void)f1;                                                                          \
		NB_PAR_FOR(ex->threads, i, t->size, T x = X[i]; Y[i] = (__VA_ARGS__););            \
	})

/* View shape s as [outer, len, inner] around axis: element (o, k, j) is at
 * (o * len + k) * inner + j.  Ops working along one axis (max, softmax)
 * iterate the outer * inner "rows" of stride inner. */
static inline void nb__split_axis(nb_shape s, int axis, int64_t *outer, int64_t *len,
                                  int64_t *inner)
{
	*outer = *inner = 1;
	for (int i = 0; i < axis; i++)
		*outer *= s.d[i];
	*len = s.d[axis];
	for (int i = axis + 1; i < s.ndim; i++)
		*inner *= s.d[i];
}

/* Max M of a strided row x[k * stride], k < len, and S = sum exp(x - M)
 * accumulated in double: log-sum-exp is M + log(S), with no overflow since
 * every exponent is <= 0 (softmax, log_softmax, cross-entropy). */
#define NB_ROW_MAX_SUMEXP(x, len, stride, M, S)                                                    \
	do {                                                                                       \
		M = (x)[0];                                                                        \
		for (int64_t k_ = 1; k_ < (len); k_++)                                             \
			if ((x)[k_ * (stride)] > M)                                                \
				M = (x)[k_ * (stride)];                                            \
		S = 0;                                                                             \
		for (int64_t k_ = 0; k_ < (len); k_++)                                             \
			S += (double)exp((x)[k_ * (stride)] - M);                                  \
	} while (0)

/* Broadcast iteration: out shape with per-input strides (0 on broadcast
 * axes).  Inputs are right-aligned as in NumPy. */
typedef struct nb_bcast {
	int n;
	int64_t d[NB_MAX_DIMS];
	int64_t s[2][NB_MAX_DIMS];
} nb_bcast;

static inline void nb_bcast_init(nb_bcast *b, nb_shape out, nb_shape x, nb_shape y)
{
	nb_shape in[2] = {x, y};
	b->n = out.ndim;
	for (int i = 0; i < out.ndim; i++)
		b->d[i] = out.d[i];
	for (int k = 0; k < 2; k++) {
		int64_t stride = 1;
		for (int i = out.ndim - 1; i >= 0; i--) {
			int j = in[k].ndim - out.ndim + i;
			int64_t dj = j >= 0 ? in[k].d[j] : 1;
			b->s[k][i] = dj == 1 ? 0 : stride;
			stride *= dj;
		}
	}
}

/* Visit every output element: BODY sees o (output index), ia, ib (input
 * offsets).  The innermost axis is a plain loop. */
#define NB_BCAST_LOOP(b, total, ...)                                                               \
	do {                                                                                       \
		int n_ = (b)->n;                                                                   \
		int64_t inner_ = n_ ? (b)->d[n_ - 1] : 1;                                          \
		int64_t sa_ = n_ ? (b)->s[0][n_ - 1] : 0;                                          \
		int64_t sb_ = n_ ? (b)->s[1][n_ - 1] : 0;                                          \
		int64_t idx_[NB_MAX_DIMS] = {0}, oa_ = 0, ob_ = 0;                                 \
		for (int64_t base_ = 0; base_ < (total); base_ += inner_) {                        \
			for (int64_t j_ = 0; j_ < inner_; j_++) {                                  \
				int64_t o = base_ + j_, ia = oa_ + j_ * sa_, ib = ob_ + j_ * sb_;  \
				(void)ia;                                                          \
				(void)ib;                                                          \
				__VA_ARGS__;                                                       \
			}                                                                          \
			for (int k_ = n_ - 2; k_ >= 0; k_--) {                                     \
				idx_[k_]++;                                                        \
				oa_ += (b)->s[0][k_];                                              \
				ob_ += (b)->s[1][k_];                                              \
				if (idx_[k_] < (b)->d[k_])                                         \
					break;                                                     \
				oa_ -= (b)->s[0][k_] * (b)->d[k_];                                 \
				ob_ -= (b)->s[1][k_] * (b)->d[k_];                                 \
				idx_[k_] = 0;                                                      \
			}                                                                          \
		}                                                                                  \
	} while (0)

/* Constructors used by VJP rules. */
nb_tensor *nb__sum_to(nb_tensor *x, nb_shape s);       /* reduce broadcast axes */
nb_tensor *nb__broadcast_to(nb_tensor *x, nb_shape s); /* inverse of sum_to */
nb_tensor *nb__mask_range(nb_tensor *g, nb_tensor *x, double lo, double hi); /* lo < x < hi */
/* closed: lo <= x <= hi */
nb_tensor *nb__mask_range_ex(nb_tensor *g, nb_tensor *x, double lo, double hi, bool closed);
nb_tensor *nb__sign(nb_tensor *x);

/* shape packed into attrs slots i[0..5], ndim in i[6] */
static inline void nb__pack_shape(nb_attrs *a, nb_shape s)
{
	for (int i = 0; i < NB_MAX_DIMS; i++)
		a->i[i] = i < s.ndim ? s.d[i] : 0;
	a->i[6] = s.ndim;
}
static inline nb_shape nb__unpack_shape(const nb_attrs *a)
{
	nb_shape s = {.ndim = (int)a->i[6]};
	for (int i = 0; i < s.ndim; i++)
		s.d[i] = a->i[i];
	return s;
}

/* the gradcheck seed: examples draw shapes and values from the graph RNG */
#define NB_EX_PARAM(g, name, s) nb__rand_param((g), (name), (s), -1.0, 1.0)

#endif
