/*
 * Depthwise convolution (CONV_PATH_DEPTHWISE): C/groups == 1, every input
 * channel with its own kernel(s); channel multiplier k = O/C, output
 * channel o reads input channel c = o / k (docs/conv.md, "Groups and
 * depthwise").  With shift_{m,k} the tap (m, k)'s strided, dilated,
 * zero-padded window:
 *   forward      y[n,o]  = b[o] + sum_{m,k} w[o,0,m,k] shift_{m,k}(x[n,c])
 *   input grad   dx[n,c] = sum_{o of c} sum_{m,k} w[o,0,m,k] shift_{m,k}^T(dy[n,o])
 *                (the adjoint: each tap's window scattered back and added)
 *   weight grad  dw[o,0,m,k] = sum_n <dy[n,o], shift_{m,k}(x[n,c])>
 * Each tap is an axpy (or a dot product) over the valid part of an output
 * row (nb__tap_range: no test per element in the padding).  Parallel over
 * (n, o) planes, (n, c) planes (each thread owns the plane it scatters
 * into) and output channels (the batch summed inside): the bits never
 * depend on the thread count.
 */
/* The kernels here are chains of multiply-adds: let GCC fuse them into
 * FMA instructions in the AVX2 and AVX-512 variants (ISO C mode keeps contraction off).
 * The variants then round differently from the baseline, by an ulp per product; results stay
 * deterministic on one machine. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif

#include "ops/conv/depthwise.h"

#include <string.h>

typedef nb__conv_geom geom;

size_t nb__depthwise_workspace(const nb__conv_geom *g, const nb__conv_plan *p)
{
	(void)g, (void)p;
	return 0;
}

#define NB_VARIANTS_IMPL "ops/conv/depthwise_impl.h"
#include "ops/variants.h"
