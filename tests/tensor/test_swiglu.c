/* SwiGLU (tensor/swiglu.h): the SIMD kernel agrees with the reference within its exp's error,
 * keeps the limits (0, large positive and negative gates, NaN), gives an element the same bits
 * wherever it lies in the row (whole vectors or the tail), and swiglu runs the backend's
 * kernel. */
#include "test.h"

#include "tensor/matmul.h"
#include "tensor/swiglu.h"
#include "testrand.h"

#include <math.h>

#define N 203 /* 25 whole vectors and a tail of 3 */

static void fill(float *g, float *u, testrand *r) {
    for (int i = 0; i < N; i++) {
        g[i] = testrand_normal(r) * 6.0f;
        u[i] = testrand_normal(r);
    }
    /* the limits: 0, saturated positive (silu(g) = g), saturated negative (silu(g) -> 0) */
    g[0] = 0.0f, g[1] = -0.0f, g[2] = 100.0f, g[3] = -100.0f, g[4] = 30.0f, g[5] = -30.0f;
    g[6] = 1e-20f, g[7] = -87.0f, g[8] = 88.5f, g[9] = -1e30f;
}

TEST(swiglu_avx2_matches_scalar) {
    if (!matmul_backend_supported(MATMUL_AVX2)) SKIP("no AVX2/FMA on this CPU");
    testrand r = {23};
    float g[N], u[N], a[N], b[N];
    fill(g, u, &r);
    memcpy(a, g, sizeof a);
    memcpy(b, g, sizeof b);
    swiglu_scalar(a, u, N);
    swiglu_avx2(b, u, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        const double err = fabs((double)a[i] - (double)b[i]) / fmax(1e-30, fabs((double)a[i]));
        if (fabs((double)a[i]) < 1e-30) {
            CHECK_MSG(fabs((double)b[i]) < 1e-30, "g %g: %g, want ~0", (double)g[i], (double)b[i]);
            continue;
        }
        CHECK_MSG(err < 1e-6, "g %g u %g: avx2 %.9g, scalar %.9g", (double)g[i], (double)u[i],
                  (double)b[i], (double)a[i]);
        if (err > worst) worst = err;
    }
    CHECK(b[0] == 0.0f && b[2] == 100.0f * u[2] && b[4] == a[4]);
    printf("    worst relative difference %.3g\n", worst);
}

TEST(swiglu_avx2_nan_and_position) {
    if (!matmul_backend_supported(MATMUL_AVX2)) SKIP("no AVX2/FMA on this CPU");
    testrand r = {29};
    float g[N], u[N], whole[N];
    fill(g, u, &r);
    g[11] = NAN;
    memcpy(whole, g, sizeof whole);
    swiglu_avx2(whole, u, N);
    CHECK(isnan(whole[11]));
    /* every start and length: the same bits as in the whole row */
    for (int start = 0; start < 9; start++)
        for (int n = 0; start + n <= N; n += 7) {
            float part[N];
            memcpy(part, g, sizeof part);
            swiglu_avx2(part + start, u + start, n);
            for (int i = 0; i < N; i++) {
                const bool inside = i >= start && i < start + n;
                const float want = inside ? whole[i] : g[i];
                CHECK_MSG(memcmp(&part[i], &want, sizeof want) == 0,
                          "start %d n %d: element %d is %.9g, want %.9g", start, n, i, (double)part[i],
                          (double)want);
            }
        }
}

TEST(swiglu_follows_backend) {
    testrand r = {31};
    float g[N], u[N], a[N], b[N];
    fill(g, u, &r);
    const enum matmul_backend saved = matmul_backend();
    for (int be = MATMUL_SCALAR; be <= MATMUL_AVX512; be++) {
        if (matmul_set_backend((enum matmul_backend)be) != 0) continue;
        memcpy(a, g, sizeof a);
        memcpy(b, g, sizeof b);
        swiglu(a, u, N);
        (be == MATMUL_SCALAR ? swiglu_scalar : swiglu_avx2)(b, u, N);
        CHECK_MSG(memcmp(a, b, sizeof a) == 0, "%s backend: not its kernel",
                  matmul_backend_name((enum matmul_backend)be));
    }
    matmul_set_backend(saved);
}
