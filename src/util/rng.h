/*
 * The one random number generator of the library and the tools: splitmix64
 * (a 64-bit state stepped by the golden gamma, each step hashed by a
 * bijective finaliser; it passes BigCrush), header-only so every module,
 * the data readers included, can use it without depending on another.
 *
 *   nb__rand64(&s)        the next 64 bits of the stream whose state is s
 *   nb__rand_at(seed, i)  its (i+1)-th output from state seed, without a state
 *                         (a counter-based stream: draw i of many in parallel)
 *   nb__mix64(z)          the finaliser alone: a hash of 64 bits
 *
 * A graph's generator is xoshiro256** (nb__xoshiro_next), seeded with four
 * splitmix64 outputs (nb__xoshiro_seed).  Doubles take the top 53 bits.
 */
#ifndef NB_UTIL_RNG_H
#define NB_UTIL_RNG_H

#include <math.h>
#include <stdint.h>

#define NB__GOLDEN_GAMMA 0x9e3779b97f4a7c15ull

/* the splitmix64 finaliser: a bijective hash of 64 bits */
static inline uint64_t nb__mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* the next output of the splitmix64 stream whose state is *s */
static inline uint64_t nb__rand64(uint64_t *s)
{
	return nb__mix64(*s += NB__GOLDEN_GAMMA);
}

/* output i (from 0) of the stream started at state seed */
static inline uint64_t nb__rand_at(uint64_t seed, uint64_t i)
{
	return nb__mix64(seed + (i + 1) * NB__GOLDEN_GAMMA);
}

/* 64 random bits to a double in [0, 1) (the top 53) */
static inline double nb__unit53(uint64_t r)
{
	return (double)(r >> 11) * 0x1.0p-53;
}

/* uniform in [0, 1) */
static inline double nb__rand_uniform(uint64_t *s)
{
	return nb__unit53(nb__rand64(s));
}

/* uniform in [0, bound), bound > 0, without modulo bias (rejection) */
static inline uint64_t nb__rand_below(uint64_t *s, uint64_t bound)
{
	uint64_t threshold = (0 - bound) % bound; /* 2^64 mod bound */
	for (;;) {
		uint64_t r = nb__rand64(s);
		if (r >= threshold)
			return r % bound;
	}
}

/* N(0, 1) by Box-Muller from two uniforms u, v in [0, 1), u drawn first
 * (1 - u is in (0, 1], so the log is finite); the pair's second normal
 * is not used */
static inline double nb__box_muller(double u, double v)
{
	return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

static inline double nb__rand_normal(uint64_t *s)
{
	double u = nb__rand_uniform(s);
	return nb__box_muller(u, nb__rand_uniform(s));
}

static inline uint64_t nb__rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256**'s state from a 64-bit seed: four splitmix64 outputs */
static inline void nb__xoshiro_seed(uint64_t s[4], uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		s[i] = nb__rand64(&seed);
}

/* the next output of xoshiro256** */
static inline uint64_t nb__xoshiro_next(uint64_t s[4])
{
	uint64_t r = nb__rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = nb__rotl64(s[3], 45);
	return r;
}

#endif
