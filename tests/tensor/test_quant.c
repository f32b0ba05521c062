/* Tensor formats: half/bfloat16 conversions on known bit patterns, decoding of hand-built
 * blocks against values worked out from the format definitions, ggml-exact bytes for Q8_0 and
 * Q4_0, round-trip error bounds for every type, and the error paths. */
#include "test.h"

#include "base/err.h"
#include "tensor/qtype.h"
#include "tensor/quant.h"
#include "tensor/testrand.h"

#include <math.h>
#include <stdlib.h>

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#define CHECK_F16(f, h) CHECK_EQ_INT(quant_f32_to_f16(f), h)

TEST(quant_f16_from_float_known) {
    CHECK_F16(1.0f, 0x3c00);
    CHECK_F16(-2.0f, 0xc000);
    CHECK_F16(0.0f, 0x0000);
    CHECK_F16(-0.0f, 0x8000);
    CHECK_F16(65504.0f, 0x7bff);        /* largest finite half */
    CHECK_F16(65519.0f, 0x7bff);        /* below the midpoint to 2^16 */
    CHECK_F16(65520.0f, 0x7c00);        /* the midpoint ties away from odd 0x7bff: infinity */
    CHECK_F16(1e6f, 0x7c00);
    CHECK_F16(-1e6f, 0xfc00);
    CHECK_F16(INFINITY, 0x7c00);
    CHECK_F16(-INFINITY, 0xfc00);
    CHECK_F16(0x1p-14f, 0x0400);        /* smallest normal */
    CHECK_F16(0x1p-24f, 0x0001);        /* smallest subnormal */
    CHECK_F16(1023 * 0x1p-24f, 0x03ff); /* largest subnormal */
    CHECK_F16(0x1p-25f, 0x0000);        /* half the smallest subnormal: tie to even zero */
    CHECK_F16(-0x1p-25f, 0x8000);
    CHECK_F16(0x1.000002p-25f, 0x0001); /* just above that tie */
    CHECK_F16(3 * 0x1p-25f, 0x0002);    /* 1.5 units: tie to even 2 */
    CHECK_F16(5 * 0x1p-25f, 0x0002);    /* 2.5 units: tie to even 2 */
    CHECK_F16(0x1.ffcp-15f, 0x0400);    /* 1023.5 units rounds up into the smallest normal */
    CHECK_F16(1e-10f, 0x0000);
    CHECK_F16(1.0f + 0x1p-11f, 0x3c00); /* halfway between 0x3c00 and 0x3c01: even */
    CHECK_F16(1.0f + 3 * 0x1p-11f, 0x3c02); /* halfway between 0x3c01 and 0x3c02: even */
    CHECK_F16(1.0f + 0x1p-11f + 0x1p-20f, 0x3c01); /* just past the tie */
    CHECK_F16(0.1f, 0x2e66);
    CHECK_F16(2047.0f, 0x67ff);
    CHECK_F16(2049.0f, 0x6800); /* 2048 and 2050 representable: tie to even 2048 */
    uint16_t h = quant_f32_to_f16(NAN);
    CHECK((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0);
    /* a signalling NaN whose payload sits only in the dropped bits must not become infinity */
    h = quant_f32_to_f16(float_of(0x7f800001));
    CHECK((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0);
}

TEST(quant_f16_to_float_known) {
    CHECK(quant_f16_to_f32(0x3c00) == 1.0f);
    CHECK(quant_f16_to_f32(0xc000) == -2.0f);
    CHECK(quant_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(quant_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(quant_f16_to_f32(0x8001) == -0x1p-24f);
    CHECK(quant_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
    CHECK(quant_f16_to_f32(0x0400) == 0x1p-14f);
    CHECK(quant_f16_to_f32(0x3555) == 0.333251953125f);
    CHECK(quant_f16_to_f32(0x7c00) == INFINITY);
    CHECK(quant_f16_to_f32(0xfc00) == -INFINITY);
    CHECK(isnan(quant_f16_to_f32(0x7e00)));
    CHECK(isnan(quant_f16_to_f32(0x7c01)));
    CHECK_EQ_INT(bits_of(quant_f16_to_f32(0x8000)), 0x80000000u);
}

/* Every half converts to a float and back to itself; NaNs stay NaN both ways. */
TEST(quant_f16_roundtrip_every_value) {
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const float f = quant_f16_to_f32((uint16_t)h);
        const bool is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan) {
            uint16_t back = quant_f32_to_f16(f);
            bad += !isnan(f) || (back & 0x7c00) != 0x7c00 || !(back & 0x3ff);
        } else {
            bad += quant_f32_to_f16(f) != h;
        }
    }
    CHECK_EQ_INT(bad, 0);
}

#ifdef __FLT16_MAX__
/* The compiler's own float -> _Float16 conversion (IEEE, round to nearest even) agrees on
 * floats spread over every exponent that matters, and on the neighbours of each tie. */
TEST(quant_f16_matches_compiler_conversion) {
    testrand r = {0x1234567u};
    int bad = 0;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)testrand_u64(&r);
        /* mostly exponents 96..160 (2^-31..2^33), where half's normals and subnormals live */
        if (i % 4) u = (u & 0x807fffffu) | (uint32_t)(96 + (u >> 8) % 65) << 23;
        if (i % 3 == 0) u = (u & ~0x1fffu) | (0x0fffu + (uint32_t)(i / 3 % 3)); /* at and beside ties */
        const float f = float_of(u);
        if (isnan(f)) continue;
        _Float16 ref = (_Float16)f;
        uint16_t rb;
        memcpy(&rb, &ref, sizeof rb);
        bad += quant_f32_to_f16(f) != rb;
    }
    CHECK_EQ_INT(bad, 0);
}
#endif

TEST(quant_bf16_known) {
    CHECK_EQ_INT(quant_f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(quant_f32_to_bf16(-2.0f), 0xc000);
    CHECK_EQ_INT(quant_f32_to_bf16(INFINITY), 0x7f80);
    CHECK_EQ_INT(quant_f32_to_bf16(-INFINITY), 0xff80);
    CHECK_EQ_INT(quant_f32_to_bf16(float_of(0x3f808000)), 0x3f80); /* tie: even */
    CHECK_EQ_INT(quant_f32_to_bf16(float_of(0x3f818000)), 0x3f82); /* tie: even */
    CHECK_EQ_INT(quant_f32_to_bf16(float_of(0x3f808001)), 0x3f81); /* past the tie */
    CHECK_EQ_INT(quant_f32_to_bf16(float_of(0x3f807fff)), 0x3f80);
    CHECK_EQ_INT(quant_f32_to_bf16(float_of(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds to inf */
    CHECK_EQ_INT(quant_f32_to_bf16(float_of(0x00000001)), 0x0000); /* subnormals round too */
    CHECK_EQ_INT(quant_f32_to_bf16(float_of(0x00008000)), 0x0000);
    CHECK_EQ_INT(quant_f32_to_bf16(float_of(0x00018000)), 0x0002);
    CHECK_EQ_INT(quant_f32_to_bf16(NAN) & 0x7fc0, 0x7fc0);
    /* a NaN whose payload is all in the dropped half stays NaN (ggml forces the quiet bit) */
    CHECK_EQ_INT(quant_f32_to_bf16(float_of(0x7f800001)), 0x7fc0);
    CHECK_EQ_INT(quant_f32_to_bf16(float_of(0xff800001)), 0xffc0);
    CHECK(quant_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(quant_bf16_to_f32(0xc000) == -2.0f);
    CHECK(quant_bf16_to_f32(0x7f80) == INFINITY);
    CHECK(isnan(quant_bf16_to_f32(0x7fc0)));
    CHECK(quant_bf16_to_f32(0x0001) == 0x1p-133f);
}

TEST(quant_dequant_plain_rows) {
    /* little-endian bytes regardless of the host */
    const uint8_t f32[8] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0}; /* 1, -2 */
    const uint8_t f16[4] = {0x00, 0x3c, 0xff, 0x7b};                         /* 1, 65504 */
    const uint8_t bf16[4] = {0x80, 0x3f, 0x49, 0x40};                        /* 1, 3.140625 */
    float y[2];
    quant_dequantize_row(QT_F32, f32, y, 2);
    CHECK(y[0] == 1.0f && y[1] == -2.0f);
    quant_dequantize_row(QT_F16, f16, y, 2);
    CHECK(y[0] == 1.0f && y[1] == 65504.0f);
    quant_dequantize_row(QT_BF16, bf16, y, 2);
    CHECK(y[0] == 1.0f && y[1] == 3.140625f);
}

TEST(quant_dequant_q8_0_block) {
    uint8_t b[2 * 34];
    float y[64];
    /* block 0: d = 0.5 (half 0x3800), q[j] = j - 16; block 1: d = -0.25, q[j] = 127 - 8j */
    b[0] = 0x00, b[1] = 0x38;
    b[34] = 0x00, b[35] = 0xb4;
    for (int j = 0; j < 32; j++) {
        b[2 + j] = (uint8_t)(j - 16);
        b[36 + j] = (uint8_t)(127 - 8 * j);
    }
    quant_dequantize_row(QT_Q8_0, b, y, 64);
    for (int j = 0; j < 32; j++) {
        CHECK(y[j] == (float)(j - 16) * 0.5f);
        CHECK(y[32 + j] == (float)(127 - 8 * j) * -0.25f);
    }
    CHECK(y[32 + 31] == 30.25f); /* q = -121 */
}

TEST(quant_dequant_q4_0_block) {
    uint8_t b[18];
    float y[32];
    b[0] = 0x00, b[1] = 0x40; /* d = 2 */
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    quant_dequantize_row(QT_Q4_0, b, y, 32);
    for (int j = 0; j < 16; j++) {
        CHECK(y[j] == (float)(j - 8) * 2); /* low nibbles: values 0..15 */
        CHECK(y[16 + j] == (float)(7 - j) * 2); /* high nibbles: values 16..31 */
    }
    CHECK(y[0] == -16.0f && y[15] == 14.0f && y[16] == 14.0f && y[31] == -16.0f);
}

TEST(quant_dequant_q4_k_block) {
    /* scales and mins that use every bit of the 6-bit packing */
    static const int sc[8] = {1, 2, 3, 4, 17, 33, 49, 63};
    static const int mn[8] = {0, 5, 10, 15, 20, 40, 60, 63};
    /* packed by hand: bytes 0-3 = sc0-3 | (sc4-7 >> 4) << 6, bytes 4-7 = m0-3 | (m4-7 >> 4)
     * << 6, bytes 8-11 = (sc4-7 & 15) | (m4-7 & 15) << 4 */
    static const uint8_t scales[12] = {0x41, 0x82, 0xc3, 0xc4, 0x40, 0x85,
                                       0xca, 0xcf, 0x41, 0x81, 0xc1, 0xff};
    uint8_t b[144];
    float y[256];
    b[0] = 0x00, b[1] = 0x3c; /* d = 1 */
    b[2] = 0x00, b[3] = 0x38; /* dmin = 0.5 */
    memcpy(b + 4, scales, 12);
    for (int i = 0; i < 128; i++) b[16 + i] = (uint8_t)((i & 15) | (15 - (i & 15)) << 4);
    quant_dequantize_row(QT_Q4_K, b, y, 256);
    for (int e = 0; e < 256; e++) {
        /* value e lives in byte 32*(e/64) + e%32, low nibble when e%64 < 32 */
        const int byte = 32 * (e / 64) + e % 32, l = byte & 15;
        const int q = e % 64 < 32 ? l : 15 - l, j = e / 32;
        CHECK_MSG(y[e] == (float)(sc[j] * q) - 0.5f * (float)mn[j], "value %d: %g", e, y[e]);
    }
    CHECK(y[0] == 0.0f);                  /* sub-block 0: q 0, scale 1, min 0 */
    CHECK(y[224] == 63.0f * 15 - 31.5f); /* sub-block 7: byte 96's high nibble, 15 */
    CHECK(y[255] == -31.5f);             /* byte 127's high nibble, 0 */
}

TEST(quant_dequant_q6_k_block) {
    int8_t sc[16];
    int q[256];
    uint8_t b[210] = {0};
    float y[256];
    for (int j = 0; j < 16; j++) sc[j] = (int8_t)(j % 2 ? -(j + 1) * 8 : (j + 1) * 7);
    sc[15] = -128;
    for (int e = 0; e < 256; e++) q[e] = (e * 37 + 11) % 64;
    /* pack value 128h + 32g + l: low 4 bits into ql[64h + 32(g&1) + l] (low nibble for g < 2),
     * top 2 bits into bits 2g of qh[32h + l] */
    for (int e = 0; e < 256; e++) {
        const int h = e / 128, g = e % 128 / 32, l = e % 32;
        b[64 * h + 32 * (g & 1) + l] |= (uint8_t)((q[e] & 15) << (g < 2 ? 0 : 4));
        b[128 + 32 * h + l] |= (uint8_t)((q[e] >> 4) << 2 * g);
    }
    memcpy(b + 192, sc, 16);
    b[208] = 0x00, b[209] = 0x34; /* d = 0.25 */
    quant_dequantize_row(QT_Q6_K, b, y, 256);
    for (int e = 0; e < 256; e++)
        CHECK_MSG(y[e] == 0.25f * (float)sc[e / 16] * (float)(q[e] - 32), "value %d: %g", e,
                  y[e]);
    CHECK(y[255] == 0.25f * -128 * (float)((255 * 37 + 11) % 64 - 32));
}

/* Inputs chosen away from rounding ties; the expected bytes come from evaluating ggml's
 * reference definitions in IEEE single precision by hand (a script), not from this code. */
static const float ref_input[32] = {
    0.1f,  -0.7f,  1.3f,  2.9f,   -3.1f, 0.0f,  0.45f,  -1.83f, 3.7f,  -2.2f, 0.05f,
    1.1f,  -0.3f,  2.6f,  -3.55f, 0.8f,  -1.4f, 1.95f,  -0.95f, 3.05f, -2.75f, 0.6f,
    -0.15f, 1.7f,  -2.45f, 2.35f, -1.05f, 0.25f, -3.3f, 1.55f,  -0.55f, 2.15f};

TEST(quant_q8_0_reference_bytes) {
    /* d = 3.7 / 127 -> half 0x2775; q = round(x * 127 / 3.7) */
    static const int8_t q[32] = {3,   -24, 45, 100, -106, 0,  15, -63, 127, -76, 2,
                                 38,  -10, 89, -122, 27,  -48, 67, -33, 105, -94, 21,
                                 -5,  58,  -84, 81,  -36, 9,  -113, 53, -19, 74};
    uint8_t b[34];
    CHECK_EQ_INT(quant_quantize_row(QT_Q8_0, ref_input, b, 32), 0);
    CHECK_EQ_INT(b[0] | b[1] << 8, 0x2775);
    CHECK(memcmp(b + 2, q, 32) == 0);
}

TEST(quant_q4_0_reference_bytes) {
    /* the largest magnitude is 3.7, so d = 3.7 / -8 -> half 0xb766 and 3.7 maps to q = 0;
     * q = min(15, trunc(x / d + 8.5)) */
    static const uint8_t qs[16] = {0xb8, 0x4a, 0xa5, 0x12, 0xef, 0x78, 0x87, 0x4c,
                                   0xd0, 0x3d, 0xa8, 0x76, 0xf9, 0x52, 0x9f, 0x36};
    uint8_t b[18];
    CHECK_EQ_INT(quant_quantize_row(QT_Q4_0, ref_input, b, 32), 0);
    CHECK_EQ_INT(b[0] | b[1] << 8, 0xb766);
    CHECK(memcmp(b + 2, qs, 16) == 0);
}

/* sqrt(mean squared error) / sqrt(mean square) of a quantize -> dequantize round trip. */
static double roundtrip_rel_rms(uint32_t type, const float *x, int64_t n) {
    uint8_t *q = malloc(qtype_row_size(type, (uint64_t)n));
    float *y = malloc(sizeof(float) * (size_t)n);
    double se = 0, ss = 0;
    CHECK(q && y);
    CHECK_EQ_INT(quant_quantize_row(type, x, q, n), 0);
    quant_dequantize_row(type, q, y, n);
    for (int64_t i = 0; i < n; i++) {
        se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        ss += (double)x[i] * x[i];
    }
    free(q);
    free(y);
    return sqrt(se / ss);
}

TEST(quant_roundtrip_error_gaussian) {
    enum { N = 256 * 64 };
    static const struct {
        uint32_t type;
        double bound;
    } cases[] = {{QT_F32, 0},      {QT_F16, 5e-4},   {QT_BF16, 4e-3}, {QT_Q8_0, 0.01},
                 {QT_Q4_0, 0.13},  {QT_Q4_K, 0.1},   {QT_Q6_K, 0.03}};
    float *x = malloc(sizeof(float) * N);
    testrand r = {42};
    CHECK(x != NULL);
    /* rows of weights at different scales, some with a mean, as real layers have */
    for (int i = 0; i < N; i++) {
        const int blk = i / 256;
        x[i] = testrand_normal(&r) * (0.01f + 0.1f * (float)(blk % 7)) + (blk % 5 == 0 ? 0.05f : 0);
    }
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const double err = roundtrip_rel_rms(cases[c].type, x, N);
        CHECK_MSG(err <= cases[c].bound, "%s: relative RMS error %.5f > %.5f",
                  qtype_get(cases[c].type)->name, err, cases[c].bound);
    }
    free(x);
}

/* Rows the searches could trip on: all zero, constant, one outlier, all negative, tiny. */
TEST(quant_roundtrip_awkward_rows) {
    static const uint32_t types[] = {QT_Q8_0, QT_Q4_0, QT_Q4_K, QT_Q6_K};
    float x[256], y[256];
    uint8_t q[256 * 2];
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (int shape = 0; shape < 5; shape++) {
            for (int i = 0; i < 256; i++) {
                switch (shape) {
                case 0: x[i] = 0; break;
                case 1: x[i] = 0.75f; break;
                case 2: x[i] = i == 77 ? 100.0f : (float)(i % 5) * 0.01f; break;
                case 3: x[i] = -1.0f - (float)(i % 9) * 0.125f; break;
                default: x[i] = (float)(i % 11 - 5) * 1e-9f; break;
                }
            }
            CHECK_EQ_INT(quant_quantize_row(types[t], x, q, 256), 0);
            quant_dequantize_row(types[t], q, y, 256);
            double max_err = 0, amax = 0;
            for (int i = 0; i < 256; i++) {
                max_err = fmax(max_err, fabs((double)y[i] - x[i]));
                amax = fmax(amax, fabs(x[i]));
            }
            /* each format's worst case is well under half its coarsest step, relative to the
             * block's largest magnitude; half precision underflow takes the tiny row to 0 */
            CHECK_MSG(max_err <= amax * 0.1 + 1e-7, "%s shape %d: max error %g (max |x| %g)",
                      qtype_get(types[t])->name, shape, max_err, amax);
            if (shape == 0)
                for (int i = 0; i < 256; i++) CHECK(y[i] == 0.0f);
        }
    }
}

TEST(quant_quantize_rejects_bad_input) {
    float x[256] = {0};
    uint8_t q[1024];
    CHECK_EQ_INT(quant_quantize_row(QT_Q5_0, x, q, 32), -1);
    CHECK(strstr(err_msg(), "Q5_0") != NULL);
    CHECK_EQ_INT(quant_quantize_row(99, x, q, 32), -1);
    CHECK(strstr(err_msg(), "99") != NULL);
    CHECK_EQ_INT(quant_quantize_row(QT_Q4_K, x, q, 100), -1);
    CHECK(strstr(err_msg(), "100") != NULL);
    CHECK_EQ_INT(quant_quantize_row(QT_F16, x, q, -1), -1);
    x[40] = NAN;
    CHECK_EQ_INT(quant_quantize_row(QT_Q8_0, x, q, 64), -1);
    CHECK(strstr(err_msg(), "value 40 is NaN") != NULL);
    x[40] = -INFINITY;
    CHECK_EQ_INT(quant_quantize_row(QT_Q6_K, x, q, 256), -1);
    CHECK(strstr(err_msg(), "infinite") != NULL);
    CHECK_EQ_INT(quant_quantize_row(QT_F32, x, q, 64), 0); /* plain floats keep infinities */
    x[40] = 1e30f;
    CHECK_EQ_INT(quant_quantize_row(QT_Q4_0, x, q, 64), -1);
    CHECK(strstr(err_msg(), "block 1") != NULL);
    CHECK_EQ_INT(quant_quantize_row(QT_Q4_K, x, q, 256), -1);
    CHECK_EQ_INT(quant_quantize_row(QT_Q8_0, x, q, 0), 0);
}

TEST(quant_dequant_misuse_gives_nan) {
    uint8_t b[64] = {0};
    float y[40];
    quant_dequantize_row(QT_Q5_0, b, y, 32);
    CHECK(isnan(y[0]) && isnan(y[31]));
    quant_dequantize_row(QT_Q8_0, b, y, 40);
    CHECK(isnan(y[0]) && isnan(y[39]));
}
