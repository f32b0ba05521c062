/* Deterministic pseudo-random numbers for synthetic models and benchmarks (not for secrets):
 * splitmix64, so any 64-bit seed is a good seed and a stream can be derived from a few
 * integers (a tensor's index and a row number), which lets threads generate rows in any order
 * and still produce the same file. Integer outputs are the same everywhere; normal deviates
 * go through libm's log, so they are the same wherever the libm is. */
#ifndef VEIL_RNG_H
#define VEIL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct rng {
    uint64_t s;
} rng;

/* A generator for the stream named by (seed, a, b): different names give unrelated streams. */
rng rng_stream(uint64_t seed, uint64_t a, uint64_t b);
uint64_t rng_u64(rng *r);
/* Uniform integer in [0, n), n > 0 (the tiny modulo bias is irrelevant for our uses). */
uint64_t rng_below(rng *r, uint64_t n);
/* n normal deviates with mean 0 and standard deviation std. */
void rng_normal_fill(rng *r, float *x, size_t n, float std);

#endif
