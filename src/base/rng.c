/* splitmix64 and Box-Muller (rng.h). */
#include "base/rng.h"

#include <math.h>

#define GOLDEN 0x9e3779b97f4a7c15ull

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

rng rng_stream(uint64_t seed, uint64_t a, uint64_t b) {
    /* Mixing each part in turn keeps (1, 2) and (2, 1) apart. */
    return (rng){mix(mix(mix(seed) ^ a) + GOLDEN * (b + 1))};
}

uint64_t rng_u64(rng *r) {
    r->s += GOLDEN;
    return mix(r->s);
}

uint64_t rng_below(rng *r, uint64_t n) { return rng_u64(r) % n; }

/* Uniform in (0, 1): never 0, so the log below stays finite. */
static double unit_open(rng *r) { return ((double)(rng_u64(r) >> 11) + 0.5) * 0x1p-53; }

void rng_normal_fill(rng *r, float *x, size_t n, float std) {
    for (size_t i = 0; i < n; i += 2) {
        double rad = sqrt(-2.0 * log(unit_open(r))) * std, ang = 2.0 * M_PI * unit_open(r);
        x[i] = (float)(rad * cos(ang));
        if (i + 1 < n) x[i + 1] = (float)(rad * sin(ang));
    }
}
