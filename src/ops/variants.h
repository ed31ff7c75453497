/*
 * Compiles a kernel file once per element type and ISA level (not public
 * API; docs/design.md, "Kernels for the CPU").  Before including this
 * header, define NB_VARIANTS_IMPL as the file's name; it is included with
 *   T          float or double
 *   TSFX(n)    n_f32 or n_f64 (the type alone)
 *   SFX(n)     n_f32_base, n_f32_avx2, n_f32_avx512 (n_f64_...): the type
 *              and the level, for every function the file defines
 *   NB_V       the level, 0 (baseline), 1 (AVX2 + FMA), 2 (AVX-512F)
 *   NB_TGT     the level's target attribute, on every function that is not
 *              always_inline (those are compiled into their callers)
 * The levels above the baseline only in an NB_MULTIVERSION build; the
 * entry points' tables take NB_ISA_TABLE (kernel.h).  A file whose loops
 * run faster at AVX-512 in 256-bit vectors (loops over fewer lanes than a
 * 512-bit register holds) defines NB_VARIANTS_AVX512_TGT as
 * NB_TARGET_AVX512_256 first.
 */
#include "ops/kernel.h"

#ifndef NB_VARIANTS_AVX512_TGT
#define NB_VARIANTS_AVX512_TGT NB_TARGET_AVX512
#endif

#define T float
#define TSFX(n) n##_f32
#define SFX(n) n##_f32_base
#define NB_V 0
#define NB_TGT
#include NB_VARIANTS_IMPL
#undef T
#undef TSFX
#undef SFX
#undef NB_V
#undef NB_TGT

#define T double
#define TSFX(n) n##_f64
#define SFX(n) n##_f64_base
#define NB_V 0
#define NB_TGT
#include NB_VARIANTS_IMPL
#undef T
#undef TSFX
#undef SFX
#undef NB_V
#undef NB_TGT

#if defined(NB_MULTIVERSION)
#define T float
#define TSFX(n) n##_f32
#define SFX(n) n##_f32_avx2
#define NB_V 1
#define NB_TGT NB_TARGET_AVX2
#include NB_VARIANTS_IMPL
#undef T
#undef TSFX
#undef SFX
#undef NB_V
#undef NB_TGT

#define T double
#define TSFX(n) n##_f64
#define SFX(n) n##_f64_avx2
#define NB_V 1
#define NB_TGT NB_TARGET_AVX2
#include NB_VARIANTS_IMPL
#undef T
#undef TSFX
#undef SFX
#undef NB_V
#undef NB_TGT

#define T float
#define TSFX(n) n##_f32
#define SFX(n) n##_f32_avx512
#define NB_V 2
#define NB_TGT NB_VARIANTS_AVX512_TGT
#include NB_VARIANTS_IMPL
#undef T
#undef TSFX
#undef SFX
#undef NB_V
#undef NB_TGT

#define T double
#define TSFX(n) n##_f64
#define SFX(n) n##_f64_avx512
#define NB_V 2
#define NB_TGT NB_VARIANTS_AVX512_TGT
#include NB_VARIANTS_IMPL
#undef T
#undef TSFX
#undef SFX
#undef NB_V
#undef NB_TGT
#endif

#undef NB_VARIANTS_IMPL
#undef NB_VARIANTS_AVX512_TGT
