/* Packed matrices (tensor/repack.h): the layout round-trips to the original rows on any CPU,
 * which matrices get a packed form, and on AVX-512 the packed kernels give the outputs of the
 * unpacked ones bit for bit (token counts 1..17 over their groups of 8/4/2/1, row ranges that
 * start and end inside a 16-row group, raw blocks with every quant value and K-type scale and
 * min, awkward activations with NaN and infinities), while other backends answer NaN for packed
 * matrices. */
#include "test.h"

#include "tensor/matmul.h"
#include "tensor/qtype.h"
#include "tensor/quant.h"
#include "tensor/repack.h"
#include "tensor/testrand.h"

#include <math.h>
#include <stdlib.h>

static const uint32_t types[] = {QT_Q4_0, QT_Q8_0, QT_Q4_K, QT_Q6_K, QT_F16, QT_BF16};
#define N_TYPES (int)(sizeof types / sizeof types[0])

/* Raw random blocks: every quant byte value (Q4_K: every 6-bit scale and min too; Q6_K: every
 * 8-bit scale), scales of varied size and sign (finite halves: d, and Q4_K's dmin); F16 and
 * BF16: every element a random finite value (its "block" is one element). */
static uint8_t *raw_matrix(uint32_t type, int64_t n_in, int64_t n_out, uint64_t seed) {
    const size_t rs = qtype_row_size(type, (uint64_t)n_in), bs = qtype_get(type)->type_size;
    const int halves = type == QT_Q4_K ? 2 : 1, at = type == QT_Q6_K ? 208 : 0;
    uint8_t *w = malloc(rs * (size_t)n_out);
    testrand r = {seed};
    for (size_t i = 0; i < rs * (size_t)n_out; i++) w[i] = (uint8_t)testrand_u64(&r);
    for (size_t blk = 0; blk < rs * (size_t)n_out / bs; blk++)
        for (int h = 0; h < halves; h++) {
            const float v = testrand_normal(&r) * 0.01f;
            const uint16_t d = type == QT_BF16 ? quant_f32_to_bf16(v) : quant_f32_to_f16(v);
            memcpy(w + blk * bs + at + 2 * h, &d, 2);
        }
    return w;
}

static uint8_t *packed_copy(uint32_t type, const uint8_t *w, int64_t n_in, int64_t n_out) {
    const size_t bytes = repack_bytes(type, n_in, n_out);
    uint8_t *p = malloc(bytes);
    memset(p, 0xAA, bytes);
    /* in two calls, as the loader packs a matrix piece by piece */
    const int64_t mid = n_out / 32 * 16;
    repack_rows(type, w, n_in, p, 0, mid);
    repack_rows(type, w, n_in, p, mid, n_out);
    return p;
}

TEST(repack_type_for_only_fitting_matrices) {
    CHECK_EQ_INT((int)repack_type_for(QT_Q4_0, 1024, 32), (int)(REPACK_FLAG | QT_Q4_0));
    CHECK_EQ_INT((int)repack_type_for(QT_Q8_0, 2816, 1024), (int)(REPACK_FLAG | QT_Q8_0));
    CHECK_EQ_INT((int)repack_type_for(QT_Q4_0, 1024, 40), 0); /* not whole groups */
    CHECK_EQ_INT((int)repack_type_for(QT_Q4_0, 96, 16), 0);   /* odd block count */
    CHECK_EQ_INT((int)repack_type_for(QT_Q4_K, 2816, 16), (int)(REPACK_FLAG | QT_Q4_K));
    CHECK_EQ_INT((int)repack_type_for(QT_Q4_K, 1024, 24), 0);
    CHECK_EQ_INT((int)repack_type_for(QT_Q6_K, 1024, 16), (int)(REPACK_FLAG | QT_Q6_K));
    CHECK_EQ_INT((int)repack_type_for(QT_Q6_K, 1000, 16), 0);
    CHECK_EQ_INT((int)repack_type_for(QT_F16, 1024, 16), (int)(REPACK_FLAG | QT_F16));
    CHECK_EQ_INT((int)repack_type_for(QT_BF16, 1000, 32), (int)(REPACK_FLAG | QT_BF16));
    CHECK_EQ_INT((int)repack_type_for(QT_F16, 1003, 16), 0);
    CHECK_EQ_INT((int)repack_type_for(QT_F32, 1024, 16), 0);
    /* Q4_0 and Q8_0 keep the rows' size; a group's super-block grows by 32 bytes of padding in
     * Q6_K, by 64 bytes (scales and mins as bytes) in Q4_K */
    CHECK(repack_bytes(QT_Q6_K, 512, 32) == 2 * 2 * (16 * 210 + 32));
    CHECK(repack_bytes(QT_Q8_0, 2816, 32) == 32 * qtype_row_size(QT_Q8_0, 2816));
    CHECK(repack_bytes(REPACK_FLAG | QT_Q4_K, 1024, 32) == 2 * 4 * (16 * 144 + 64));
    CHECK(repack_bytes(QT_Q4_K, 1024, 16) % 64 == 0);
    CHECK(repack_is_packed(REPACK_FLAG | QT_Q8_0) && !repack_is_packed(QT_Q8_0));
    CHECK_EQ_INT((int)repack_base(REPACK_FLAG | QT_Q8_0), QT_Q8_0);
}

TEST(repack_rows_round_trip) {
    for (int ti = 0; ti < N_TYPES; ti++) {
        const int64_t n_in = types[ti] == QT_Q4_K || types[ti] == QT_Q6_K ? 768 : 192, n_out = 48;
        const size_t rs = qtype_row_size(types[ti], n_in);
        uint8_t *w = raw_matrix(types[ti], n_in, n_out, 7 + ti);
        uint8_t *p = packed_copy(types[ti], w, n_in, n_out);
        uint8_t row[1024];
        int bad = 0;
        for (int64_t r = 0; r < n_out; r++) {
            repack_unpack_row(REPACK_FLAG | types[ti], p, n_in, r, row);
            bad += memcmp(row, w + (size_t)r * rs, rs) != 0;
        }
        CHECK_EQ_INT(bad, 0);
        /* and the layout is an interleave, not the identity */
        CHECK(memcmp(p, w, rs) != 0);
        free(w);
        free(p);
    }
}

static bool same_float(float a, float b) { return (isnan(a) && isnan(b)) || memcmp(&a, &b, 4) == 0; }

static float *acts(int64_t n_in, int64_t n_tok, uint64_t seed) {
    float *x = malloc(sizeof(float) * (size_t)(n_in * n_tok));
    testrand r = {seed};
    for (int64_t i = 0; i < n_in * n_tok; i++) x[i] = testrand_normal(&r) * powf(10.0f, (float)(i / 32 % 5 - 2));
    if (n_tok > 2) {
        x[n_in + 40] = NAN;            /* token 1: NaN in one block */
        x[2 * n_in + 3] = INFINITY;    /* token 2: infinity */
        for (int i = 64; i < 96; i++) x[i] = 0; /* token 0: a zero block */
    }
    return x;
}

TEST(repack_avx512_packed_equal_unpacked) {
    if (!matmul_backend_supported(MATMUL_AVX512)) SKIP("no AVX-512 (F/BW/VL/DQ/VNNI) on this CPU");
    static const int64_t ranges[][3] = {{1024, 64, 0}, {256, 48, 5}, {2816, 32, 17}};
    const enum matmul_backend saved = matmul_backend();
    CHECK(matmul_set_backend(MATMUL_AVX512) == 0);
    int bad = 0;
    for (int ti = 0; ti < N_TYPES; ti++)
        for (size_t ri = 0; ri < sizeof ranges / sizeof ranges[0]; ri++)
            for (int64_t n_tok = 1; n_tok <= 17; n_tok++) {
                const int64_t n_in = ranges[ri][0], n_out = ranges[ri][1], r0 = ranges[ri][2],
                              r1 = n_out - r0 / 2;
                uint8_t *w = raw_matrix(types[ti], n_in, n_out, 100 + 10 * ri + ti);
                uint8_t *p = packed_copy(types[ti], w, n_in, n_out);
                float *x = acts(n_in, n_tok, 5 + (uint64_t)n_tok);
                float *ya = malloc(sizeof(float) * (size_t)(n_out * n_tok));
                float *yb = malloc(sizeof(float) * (size_t)(n_out * n_tok));
                for (int64_t i = 0; i < n_out * n_tok; i++) ya[i] = yb[i] = -1.0f;
                matmul_mat_rows(types[ti], w, n_in, n_out, x, n_tok, ya, r0, r1);
                matmul_mat_rows(REPACK_FLAG | types[ti], p, n_in, n_out, x, n_tok, yb, r0, r1);
                for (int64_t i = 0; i < n_out * n_tok; i++)
                    if (!same_float(ya[i], yb[i]) && bad++ < 5)
                        CHECK_MSG(0, "%s %lldx%lld rows %lld..%lld, %lld tokens: token %lld row %lld packed %.9g unpacked %.9g",
                                  qtype_get(types[ti])->name, (long long)n_out, (long long)n_in,
                                  (long long)r0, (long long)r1, (long long)n_tok,
                                  (long long)(i / n_out), (long long)(i % n_out), yb[i], ya[i]);
                if (n_tok > 2) CHECK(isnan(yb[n_out + r0]));
                free(w), free(p), free(x), free(ya), free(yb);
            }
    CHECK_EQ_INT(bad, 0);
    matmul_set_backend(saved);
}

TEST(repack_other_backends_answer_nan) {
    const int64_t n_in = 64, n_out = 16;
    uint8_t *w = raw_matrix(QT_Q8_0, n_in, n_out, 3);
    uint8_t *p = packed_copy(QT_Q8_0, w, n_in, n_out);
    float *x = acts(n_in, 1, 1), y[16];
    const enum matmul_backend saved = matmul_backend();
    for (int b = MATMUL_SCALAR; b <= MATMUL_AVX2; b++) {
        if (!matmul_backend_supported((enum matmul_backend)b)) continue;
        CHECK(matmul_set_backend((enum matmul_backend)b) == 0);
        matmul_vec(REPACK_FLAG | QT_Q8_0, p, n_in, n_out, x, y);
        for (int i = 0; i < 16; i++) CHECK(isnan(y[i]));
    }
    matmul_set_backend(saved);
    free(w), free(p), free(x);
}
