/* The deterministic generator: streams are reproducible and distinct, and the normal deviates
 * have the right moments (fixed seeds, so these checks give the same answer on every run). */
#include "test.h"

#include "base/rng.h"

#include <math.h>
#include <stdlib.h>

TEST(rng_streams_reproducible_and_distinct) {
    rng a = rng_stream(42, 3, 7), b = rng_stream(42, 3, 7), c = rng_stream(42, 7, 3),
        d = rng_stream(43, 3, 7);
    uint64_t x = rng_u64(&a);
    CHECK(x == rng_u64(&b));
    CHECK(x != rng_u64(&c));
    CHECK(x != rng_u64(&d));
    for (int i = 0; i < 1000; i++) CHECK(rng_below(&a, 10) < 10);
}

TEST(rng_normal_moments) {
    size_t n = 200001; /* odd: the last deviate is half a pair */
    float *x = malloc(n * sizeof *x);
    rng r = rng_stream(1, 2, 3);
    rng_normal_fill(&r, x, n, 0.02f);
    double sum = 0, sq = 0, within1 = 0;
    for (size_t i = 0; i < n; i++) {
        sum += x[i];
        sq += (double)x[i] * x[i];
        within1 += fabs(x[i]) < 0.02;
    }
    double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    CHECK_MSG(fabs(mean) < 2e-4, "mean %g", mean);
    CHECK_MSG(fabs(sd / 0.02 - 1) < 0.01, "sd %g", sd);
    /* a normal distribution keeps 68.3% within one standard deviation */
    CHECK_MSG(fabs(within1 / n - 0.6827) < 0.005, "within 1 sd: %g", within1 / n);
    CHECK(isfinite(x[n - 1]));
    free(x);
}
