/*
 * NB_SIMD(clauses): `#pragma omp simd clauses` before a loop: leave to
 * vectorise it without alias checks and, with reduction(+ : v), to reorder
 * its sum.  Clang takes the pragma as an order and, where it cannot obey,
 * warns -Wpass-failed (an error under -Werror); UBSan's checks on every
 * load and pointer step keep it from vectorising these loops.  So a clang
 * build with UBSan leaves the pragma out: the checks matter there, not the
 * speed.  GCC, and clang without UBSan, vectorise every such loop.
 */
#ifndef NB_SIMD_H
#define NB_SIMD_H

#if defined(__clang__) && defined(__has_feature)
#if __has_feature(undefined_behavior_sanitizer)
#define NB_SIMD_OFF 1
#endif
#endif

#define NB_PRAGMA(...) _Pragma(#__VA_ARGS__)
#ifdef NB_SIMD_OFF
#define NB_SIMD(...)
#else
#define NB_SIMD(...) NB_PRAGMA(omp simd __VA_ARGS__)
#endif

#endif
