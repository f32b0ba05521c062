/* Matrix kernels through the public API: a product worked out by hand, batched == one-token bit
 * for bit for every type, awkward sizes and every backend this CPU has, agreement of the scalar
 * reference with a double-precision dot of the decoded weights, row-range splitting, row
 * lookup, NaN outputs on misuse, and the backend setting itself. (AVX2-specific checks:
 * test_matmul_avx2.c.) */
#include "test.h"

#include "base/err.h"
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

/* Sets backend b for a test that loops over backends; false (and nothing changed) when this CPU
 * lacks it. */
static bool use_backend(int b) {
    return matmul_backend_supported((enum matmul_backend)b) &&
           matmul_set_backend((enum matmul_backend)b) == 0;
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
 * plain types), and a length that is not a multiple of the 16 lanes (plain types). 9 tokens:
 * on AVX2 the first 8 go through another kernel shape than the 9th. */
static void batched_vs_one_token(const char *backend) {
    static const int64_t sizes[] = {256, 768, 288, 300, 7};
    const int64_t n_out = 9, n_tok = 9;
    for (size_t t = 0; t < N_TYPES; t++) {
        const uint32_t type = all_types[t];
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            const int64_t n_in = sizes[s];
            if (qtype_row_size(type, (uint64_t)n_in) == 0) continue;
            uint8_t *w = make_weights(type, n_in, n_out, 7 + s);
            float *x = make_inputs(n_in * n_tok, 99 + s);
            float y_mat[9 * 9], y_vec[9];
            matmul_mat(type, w, n_in, n_out, x, n_tok, y_mat);
            for (int64_t k = 0; k < n_tok; k++) {
                matmul_vec(type, w, n_in, n_out, x + k * n_in, y_vec);
                CHECK_MSG(memcmp(y_vec, y_mat + k * n_out, sizeof y_vec) == 0,
                          "%s %s n_in %lld token %lld differs", backend, qtype_get(type)->name,
                          (long long)n_in, (long long)k);
            }
            free(w);
            free(x);
        }
    }
}

TEST(matmul_batched_equals_one_token_bitwise) {
    const enum matmul_backend saved = matmul_backend();
    for (int be = 0; be <= MATMUL_AVX512; be++)
        if (use_backend(be)) batched_vs_one_token(matmul_backend_name(be));
    matmul_set_backend(saved);
}

/* The scalar reference: float accumulation stays within a small multiple of n * eps * sum|w x|
 * of the exact dot of the decoded weights. */
TEST(matmul_matches_double_dot) {
    const int64_t n_in = 1024, n_out = 6, n_tok = 3;
    float *wrow = malloc(sizeof(float) * (size_t)n_in);
    const enum matmul_backend saved = matmul_backend();
    CHECK(wrow != NULL);
    CHECK(matmul_set_backend(MATMUL_SCALAR) == 0);
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
    matmul_set_backend(saved);
}

static void row_ranges(void) {
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

TEST(matmul_row_ranges_compose) {
    const enum matmul_backend saved = matmul_backend();
    for (int be = 0; be <= MATMUL_AVX512; be++)
        if (use_backend(be)) row_ranges();
    matmul_set_backend(saved);
}

TEST(matmul_get_row_decodes_that_row) {
    const enum matmul_backend saved = matmul_backend();
    CHECK(matmul_set_backend(MATMUL_SCALAR) == 0); /* float activations: the one-hot is exact */
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
    matmul_set_backend(saved);
}

TEST(matmul_misuse_gives_nan) {
    uint8_t w[64] = {0};
    float x[32] = {0}, y[2];
    const enum matmul_backend saved = matmul_backend();
    for (int be = 0; be <= MATMUL_AVX512; be++) {
        if (!use_backend(be)) continue;
        y[0] = y[1] = 0;
        matmul_vec(QT_Q5_0, w, 32, 2, x, y);
        CHECK(isnan(y[0]) && isnan(y[1]));
        y[0] = y[1] = 0;
        matmul_vec(QT_Q8_0, w, 20, 2, x, y); /* not a whole block */
        CHECK(isnan(y[0]) && isnan(y[1]));
        y[0] = y[1] = 0;
        matmul_vec(QT_Q4_K, w, 32, 2, x, y);
        CHECK(isnan(y[0]) && isnan(y[1]));
    }
    matmul_set_backend(saved);
}

TEST(matmul_backend_setting) {
    const enum matmul_backend saved = matmul_backend();
    CHECK(matmul_backend_supported(MATMUL_SCALAR));
    CHECK_EQ_STR(matmul_backend_name(MATMUL_SCALAR), "scalar");
    CHECK_EQ_STR(matmul_backend_name(MATMUL_AVX2), "avx2");
    CHECK_EQ_STR(matmul_backend_name((enum matmul_backend)7), "?");
    CHECK(matmul_set_backend(MATMUL_SCALAR) == 0);
    CHECK_EQ_INT(matmul_backend(), MATMUL_SCALAR);
    CHECK(!matmul_backend_supported((enum matmul_backend)7));
    CHECK(matmul_set_backend((enum matmul_backend)7) == -1);
    CHECK(strstr(err_msg(), "not supported") != NULL);
    CHECK_EQ_INT(matmul_backend(), MATMUL_SCALAR); /* a refused setting changes nothing */
    if (matmul_backend_supported(MATMUL_AVX2)) {
        CHECK(matmul_set_backend(MATMUL_AVX2) == 0);
        CHECK_EQ_INT(matmul_backend(), MATMUL_AVX2);
    } else {
        CHECK(matmul_set_backend(MATMUL_AVX2) == -1);
    }
    matmul_set_backend(saved);
}

/* The shared-input API: too little scratch is refused; an input used before it was prepared
 * for a type that needs preparing gives NaN rather than garbage. */
TEST(matmul_input_api) {
    const int64_t n_in = 256, n_out = 3;
    uint8_t *w = make_weights(QT_Q8_0, n_in, n_out, 3);
    float *x = make_inputs(n_in * 2, 4), y[3 * 2], want[3 * 2];
    const size_t size = matmul_input_size(n_in, 2);
    void *scratch = malloc(size + 1);
    const enum matmul_backend saved = matmul_backend();
    CHECK(matmul_input_init(scratch, size - 1, x, n_in, 2) == NULL);
    CHECK(strstr(err_msg(), "scratch") != NULL);
    for (int be = 0; be <= MATMUL_AVX512; be++) {
        if (!use_backend(be)) continue;
        /* any alignment of the scratch works */
        matmul_input *in = matmul_input_init((uint8_t *)scratch + 1, size, x, n_in, 2);
        CHECK(in != NULL);
        if (!in) continue;
        matmul_rows(QT_Q8_0, w, n_out, in, y, 0, n_out);
        if (be != MATMUL_SCALAR) CHECK(isnan(y[0]) && isnan(y[5]));
        matmul_input_prepare(in, QT_Q8_0);
        matmul_input_prepare(in, QT_Q4_0); /* the same form: nothing more to do */
        matmul_rows(QT_Q8_0, w, n_out, in, y, 0, n_out);
        matmul_mat(QT_Q8_0, w, n_in, n_out, x, 2, want);
        CHECK(memcmp(y, want, sizeof y) == 0);
    }
    matmul_set_backend(saved);
    free(scratch);
    free(w);
    free(x);
}
