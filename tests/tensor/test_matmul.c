/* Scalar matrix kernels: a product worked out by hand, batched == one-token bit for bit for
 * every type and awkward sizes, agreement with a double-precision dot of the decoded weights,
 * row-range splitting, row lookup, and NaN outputs on misuse. */
#include "test.h"

#include "tensor/matmul.h"
#include "tensor/qtype.h"
#include "tensor/quant.h"
#include "tensor/testrand.h"

#include <math.h>
#include <stdlib.h>

static const uint32_t all_types[] = {QT_F32, QT_F16, QT_BF16, QT_Q8_0, QT_Q4_0, QT_Q4_K, QT_Q6_K};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

/* A random n_out x n_in weight matrix in `type` (caller frees). */
static uint8_t *make_weights(uint32_t type, int64_t n_in, int64_t n_out, uint64_t seed) {
    const size_t row = qtype_row_size(type, (uint64_t)n_in);
    uint8_t *w = malloc(row * (size_t)n_out);
    float *f = malloc(sizeof(float) * (size_t)n_in);
    testrand r = {seed};
    CHECK(w && f);
    for (int64_t o = 0; o < n_out; o++) {
        for (int64_t i = 0; i < n_in; i++) f[i] = testrand_normal(&r) * 0.5f;
        CHECK_EQ_INT(quant_quantize_row(type, f, w + (size_t)o * row, n_in), 0);
    }
    free(f);
    return w;
}

static float *make_inputs(int64_t n, uint64_t seed) {
    float *x = malloc(sizeof(float) * (size_t)n);
    testrand r = {seed};
    CHECK(x != NULL);
    for (int64_t i = 0; i < n; i++) x[i] = testrand_normal(&r);
    return x;
}

TEST(matmul_f32_by_hand) {
    const float w[2 * 3] = {1, 2, 3, -4, 0.5f, 0}; /* rows (1 2 3) and (-4 0.5 0) */
    const float x[2 * 3] = {1, 1, 1, 2, -2, 4};
    float y[2 * 2];
    matmul_vec(QT_F32, w, 3, 2, x, y);
    CHECK(y[0] == 6.0f && y[1] == -3.5f);
    matmul_mat(QT_F32, w, 3, 2, x, 2, y);
    CHECK(y[0] == 6.0f && y[1] == -3.5f && y[2] == 10.0f && y[3] == -9.0f);
}

/* Sizes: exactly one chunk, several chunks, a partial last chunk (for Q8_0/Q4_0 and the
 * plain types), and a length that is not a multiple of the 16 lanes (plain types). */
TEST(matmul_batched_equals_one_token_bitwise) {
    static const int64_t sizes[] = {256, 768, 288, 300, 7};
    const int64_t n_out = 9, n_tok = 5;
    for (size_t t = 0; t < N_TYPES; t++) {
        const uint32_t type = all_types[t];
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            const int64_t n_in = sizes[s];
            if (qtype_row_size(type, (uint64_t)n_in) == 0) continue;
            uint8_t *w = make_weights(type, n_in, n_out, 7 + s);
            float *x = make_inputs(n_in * n_tok, 99 + s);
            float y_mat[9 * 5], y_vec[9];
            matmul_mat(type, w, n_in, n_out, x, n_tok, y_mat);
            for (int64_t k = 0; k < n_tok; k++) {
                matmul_vec(type, w, n_in, n_out, x + k * n_in, y_vec);
                CHECK_MSG(memcmp(y_vec, y_mat + k * n_out, sizeof y_vec) == 0,
                          "%s n_in %lld token %lld differs", qtype_get(type)->name,
                          (long long)n_in, (long long)k);
            }
            free(w);
            free(x);
        }
    }
}

/* Float accumulation stays within a small multiple of n * eps * sum|w x| of the exact dot of
 * the decoded weights. */
TEST(matmul_matches_double_dot) {
    const int64_t n_in = 1024, n_out = 6, n_tok = 3;
    float *wrow = malloc(sizeof(float) * (size_t)n_in);
    CHECK(wrow != NULL);
    for (size_t t = 0; t < N_TYPES; t++) {
        const uint32_t type = all_types[t];
        uint8_t *w = make_weights(type, n_in, n_out, 1000 + t);
        float *x = make_inputs(n_in * n_tok, 2000 + t);
        float y[6 * 3];
        matmul_mat(type, w, n_in, n_out, x, n_tok, y);
        for (int64_t r = 0; r < n_out; r++) {
            matmul_get_row(type, w, n_in, r, wrow);
            for (int64_t k = 0; k < n_tok; k++) {
                double dot = 0, mag = 0;
                for (int64_t i = 0; i < n_in; i++) {
                    dot += (double)wrow[i] * x[k * n_in + i];
                    mag += fabs((double)wrow[i] * x[k * n_in + i]);
                }
                const double got = y[k * n_out + r];
                CHECK_MSG(fabs(got - dot) <= 64 * 0x1p-24 * mag + 1e-30,
                          "%s row %lld token %lld: %.9g vs %.9g", qtype_get(type)->name,
                          (long long)r, (long long)k, got, dot);
                CHECK(mag > 1); /* the weights decoded to something */
            }
        }
        free(w);
        free(x);
    }
    free(wrow);
}

TEST(matmul_row_ranges_compose) {
    const int64_t n_in = 512, n_out = 10, n_tok = 3;
    uint8_t *w = make_weights(QT_Q4_K, n_in, n_out, 5);
    float *x = make_inputs(n_in * n_tok, 6);
    float full[10 * 3], split[10 * 3];
    for (int i = 0; i < 30; i++) split[i] = -12345.0f;
    matmul_mat(QT_Q4_K, w, n_in, n_out, x, n_tok, full);
    matmul_mat_rows(QT_Q4_K, w, n_in, n_out, x, n_tok, split, 3, 7);
    for (int64_t k = 0; k < n_tok; k++)
        for (int64_t r = 0; r < n_out; r++) {
            const float v = split[k * n_out + r];
            if (r >= 3 && r < 7) CHECK(memcmp(&v, &full[k * n_out + r], sizeof v) == 0);
            else CHECK(v == -12345.0f); /* rows outside the range untouched */
        }
    matmul_mat_rows(QT_Q4_K, w, n_in, n_out, x, n_tok, split, 0, 3);
    matmul_mat_rows(QT_Q4_K, w, n_in, n_out, x, n_tok, split, 7, 10);
    CHECK(memcmp(split, full, sizeof full) == 0);
    free(w);
    free(x);
}

TEST(matmul_get_row_decodes_that_row) {
    for (size_t t = 0; t < N_TYPES; t++) {
        const uint32_t type = all_types[t];
        const int64_t n_in = 512;
        const size_t row = qtype_row_size(type, n_in);
        uint8_t *w = make_weights(type, n_in, 4, 77);
        float a[512], b[512];
        matmul_get_row(type, w, n_in, 2, a);
        quant_dequantize_row(type, w + 2 * row, b, n_in);
        CHECK(memcmp(a, b, sizeof a) == 0);
        /* one-hot input picks the same values out through the product */
        float onehot[512] = {0}, y[4];
        onehot[300] = 1;
        matmul_vec(type, w, n_in, 4, onehot, y);
        CHECK(y[2] == a[300]);
        free(w);
    }
}

TEST(matmul_misuse_gives_nan) {
    uint8_t w[64] = {0};
    float x[32] = {0}, y[2];
    matmul_vec(QT_Q5_0, w, 32, 2, x, y);
    CHECK(isnan(y[0]) && isnan(y[1]));
    matmul_vec(QT_Q8_0, w, 20, 2, x, y); /* not a whole block */
    CHECK(isnan(y[0]) && isnan(y[1]));
}
