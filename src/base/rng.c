/* splitmix64 and normal deviates (rng.h). */
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

/* Marsaglia's polar method: no sin/cos, one log and one sqrt per pair of deviates, about
 * three times faster than Box-Muller's trigonometric form (it decides how long making a
 * billion-weight model takes). */
void rng_normal_fill(rng *r, float *x, size_t n, float std) {
    for (size_t i = 0; i < n; i += 2) {
        double u, v, s;
        do {
            u = (double)(rng_u64(r) >> 11) * 0x1p-52 - 1.0;
            v = (double)(rng_u64(r) >> 11) * 0x1p-52 - 1.0;
            s = u * u + v * v;
        } while (s >= 1.0 || s == 0.0);
        double f = sqrt(-2.0 * log(s) / s) * std;
        x[i] = (float)(u * f);
        if (i + 1 < n) x[i + 1] = (float)(v * f);
    }
}
