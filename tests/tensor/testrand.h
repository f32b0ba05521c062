/* Deterministic pseudo-random numbers for the tensor tests: the same sequence on every machine,
 * so a failure reproduces. xorshift64* for bits, Box-Muller for normal deviates. */
#ifndef VEIL_TESTRAND_H
#define VEIL_TESTRAND_H

#include <math.h>
#include <stdint.h>

typedef struct testrand {
    uint64_t s;
} testrand;

static inline uint64_t testrand_u64(testrand *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}

/* Uniform in (0, 1): never 0, so log() below is finite. */
static inline double testrand_unit(testrand *r) {
    return ((double)(testrand_u64(r) >> 11) + 0.5) * 0x1p-53;
}

static inline float testrand_normal(testrand *r) {
    const double u = testrand_unit(r), v = testrand_unit(r);
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

#endif
