/* The AVX2 kernels against references written here from the formats' definitions:
 *   - activation quantization (Q8_0, Q8_K) bit for bit against a scalar implementation of the
 *     rule in matmul_kernels.h, on ordinary and awkward blocks (ties, zeros, tiny and huge
 *     values, infinities, NaN);
 *   - the integer kernels bit for bit against a scalar evaluation of the documented recurrence
 *     y = fma(S_b, dw_b * dx_b, y), on raw random blocks (every scale and quant value the
 *     formats allow, Q8_0's -128 included), odd row counts, 1..9 and 17 tokens, row ranges;
 *   - float-activation kernels (F32, F16, BF16) within float rounding of the scalar reference;
 *   - every quantized type within the error activation quantization allows of the scalar
 *     reference (|x - q d| <= amax (1/254 + 2^-11) per value), and NaN inputs giving NaN.
 * Skipped with a message on CPUs without AVX2. */
#include "test.h"

#include "tensor/matmul.h"
#include "tensor/matmul_kernels.h"
#include "tensor/qtype.h"
#include "tensor/quant.h"
#include "tensor/testrand.h"

#include <math.h>
#include <stdlib.h>

#define NEED_AVX2()                                                                       \
    do {                                                                                  \
        if (!matmul_backend_supported(MATMUL_AVX2)) SKIP("no AVX2/FMA/F16C on this CPU"); \
    } while (0)

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* ---- the activation quantization rule, scalar ---- */

static void ref_quant_block(const float *x, int n, bool k, int8_t *q, float *d, int32_t *sum,
                            int16_t *bsums) {
    bool finite = true;
    float amax = 0;
    for (int i = 0; i < n; i++) {
        finite = finite && isfinite(x[i]);
        amax = fmaxf(amax, fabsf(x[i]));
    }
    *sum = 0;
    for (int i = 0; i < n; i++) q[i] = 0;
    if (!finite || !(amax > 0x1p-100f)) {
        *d = finite ? 0.0f : NAN;
    } else {
        const float id = 127.0f / amax;
        for (int i = 0; i < n; i++) {
            q[i] = (int8_t)lrintf(x[i] * id);
            *sum += q[i];
        }
        const float v = amax / 127.0f;
        *d = k ? 1.0f / id
               : v >= 0x1p-14f && v <= 65504.0f ? quant_f16_to_f32(quant_f32_to_f16(v)) : v;
    }
    if (bsums)
        for (int g = 0; g < n / 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += q[16 * g + i];
            bsums[g] = (int16_t)s;
        }
}

static bool same_float(float a, float b) { return (isnan(a) && isnan(b)) || memcmp(&a, &b, 4) == 0; }

/* Activations with a different magnitude per 32-block; with `awkward` (and n_in >= 512),
 * token 1 made of awkward blocks, infinities and a NaN included. */
static float *make_acts(int64_t n_in, int64_t n_tok, uint64_t seed, bool awkward) {
    float *x = malloc(sizeof(float) * (size_t)(n_in * n_tok));
    testrand r = {seed};
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < n_in; i++)
            x[t * n_in + i] = testrand_normal(&r) * powf(10.0f, (float)((i / 32 + t) % 7 - 3));
    if (awkward && n_tok > 1 && n_in >= 512) {
        float *a = x + n_in;
        for (int i = 0; i < 32; i++) {
            a[i] = 0;                                    /* block 0: zero */
            a[32 + i] = 1e-35f * (float)(i - 16);        /* 1: below 2^-100: zero */
            a[64 + i] = (float)(i % 7) - 3.5f;           /* 2: amax 3.5 */
            a[96 + i] = (float)(i - 16) + 0.5f;          /* 3: amax 16.5 */
            a[128 + i] = i % 2 ? 127.0f : (float)i + 0.5f; /* 4: id = 1: exact ties */
            a[160 + i] = 1e30f * (float)(i - 16);        /* 5: scale beyond half range */
            a[192 + i] = 1e-6f * (float)(i - 16);        /* 6: scale below normal halves */
            a[224 + i] = i % 2 ? -3.0f : 3.0f;           /* 7: +-127 */
        }
        a[256 + 5] = NAN;      /* Q8_K block 1 (and Q8_0 block 8): NaN */
        a[320 + 9] = INFINITY; /* Q8_0 block 10: infinity */
        a[384] = -INFINITY;    /* Q8_0 block 12 */
    }
    return x;
}

TEST(matmul_avx2_act_quant_exact) {
    NEED_AVX2();
    const int64_t n_in = 512;
    static const int64_t toks[] = {1, 2, 5, 9};
    const enum matmul_backend saved = matmul_backend();
    CHECK(matmul_set_backend(MATMUL_AVX2) == 0);
    for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
        const int64_t n_tok = toks[k];
        float *x = make_acts(n_in, n_tok, 10 + k, true);
        const size_t size = matmul_input_size(n_in, n_tok);
        void *scratch = malloc(size);
        matmul_input *in = matmul_input_init(scratch, size, x, n_in, n_tok);
        matmul_input_prepare(in, QT_Q4_0);
        matmul_input_prepare(in, QT_Q6_K);
        CHECK(in->ready == (MATMUL_FORM_Q8_0 | MATMUL_FORM_Q8_K));
        int bad = 0;
        for (int form = 0; form < 2; form++) {
            const bool kk = form == 1;
            const matmul_q8 *q = kk ? &in->q8_k : &in->q8_0;
            const int bs = kk ? 256 : 32;
            for (int64_t t = 0; t < in->n_tok_pad; t++)
                for (int64_t b = 0; b < n_in / bs; b++) {
                    const int64_t e = b * in->n_tok_pad + t;
                    if (t >= n_tok) { /* padding */
                        bad += q->d[e] != 0 || (!kk && (q->nsum8[e] != 0 || q->nsum128[e] != 0));
                        continue;
                    }
                    int8_t rq[256];
                    float rd;
                    int32_t rsum;
                    int16_t rbs[16];
                    ref_quant_block(x + t * n_in + b * bs, bs, kk, rq, &rd, &rsum, kk ? rbs : NULL);
                    const int8_t *gq = q->qs + t * n_in + b * bs;
                    bool ok = memcmp(rq, gq, (size_t)bs) == 0 && same_float(rd, q->d[e]) &&
                              (kk ? memcmp(rbs, q->bsums + t * (n_in / 16) + b * 16, sizeof rbs) == 0
                                  : q->nsum8[e] == -8 * rsum && q->nsum128[e] == -128 * rsum);
                    if (!ok && bad < 5)
                        CHECK_MSG(0, "%s token %lld block %lld: d %g vs %g",
                                  kk ? "Q8_K" : "Q8_0", (long long)t, (long long)b, q->d[e], rd);
                    bad += !ok;
                }
        }
        CHECK_EQ_INT(bad, 0);
        /* the awkward blocks did what the rule says */
        if (n_tok > 1) {
            const int64_t p = in->n_tok_pad;
            CHECK(in->q8_0.d[0 * p + 1] == 0 && in->q8_0.d[1 * p + 1] == 0);
            CHECK(in->q8_0.qs[n_in + 128] == 0 && in->q8_0.qs[n_in + 130] == 2); /* 0.5, 2.5 */
            CHECK(in->q8_0.qs[n_in + 129] == 127 && in->q8_0.qs[n_in + 131] == 127);
            CHECK(in->q8_0.qs[n_in + 224] == 127 && in->q8_0.qs[n_in + 225] == -127);
            CHECK(isnan(in->q8_0.d[8 * p + 1]) && isnan(in->q8_0.d[10 * p + 1]));
            CHECK(isnan(in->q8_0.d[12 * p + 1]) && isnan(in->q8_k.d[1 * p + 1]));
            CHECK(in->q8_0.d[5 * p + 1] > 65504.0f); /* kept as float */
        }
        free(scratch);
        free(x);
    }
    matmul_set_backend(saved);
}

/* ---- raw weight blocks and the integer reference ---- */

/* n_out rows of random raw blocks; scales kept sane so the products stay finite. */
static uint8_t *raw_weights(uint32_t type, int64_t n_in, int64_t n_out, uint64_t seed) {
    const qtype_info *qi = qtype_get(type);
    const size_t row = qtype_row_size(type, (uint64_t)n_in), nb = (size_t)n_in / qi->block_size;
    uint8_t *w = malloc(row * (size_t)n_out);
    testrand r = {seed};
    for (size_t i = 0; i < row * (size_t)n_out; i++) w[i] = (uint8_t)testrand_u64(&r);
    for (int64_t o = 0; o < n_out; o++)
        for (size_t b = 0; b < nb; b++) {
            uint8_t *blk = w + (size_t)o * row + b * qi->type_size;
            const uint16_t h1 = quant_f32_to_f16((float)(0.001 + 0.01 * testrand_unit(&r)));
            const uint16_t h2 = quant_f32_to_f16((float)(0.001 + 0.01 * testrand_unit(&r)));
            uint8_t *d = type == QT_Q6_K ? blk + 208 : blk;
            d[0] = (uint8_t)h1, d[1] = (uint8_t)(h1 >> 8);
            if (type == QT_Q4_K) blk[2] = (uint8_t)h2, blk[3] = (uint8_t)(h2 >> 8);
        }
    return w;
}

/* Q4_K's sub-block j scale and min, from the bit layout documented in quant.c. */
static void q4k_sm(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* One output by the documented recurrence, from the prepared activations of token t. */
static float ref_output(uint32_t type, const uint8_t *row, const matmul_input *in, int64_t t) {
    const int64_t n_in = in->n_in, pad = in->n_tok_pad;
    float y = 0;
    if (type == QT_Q8_0 || type == QT_Q4_0) {
        const int8_t *xq = in->q8_0.qs + t * n_in;
        const int bb = type == QT_Q8_0 ? 34 : 18;
        for (int64_t b = 0; b < n_in / 32; b++) {
            const uint8_t *blk = row + b * bb;
            int32_t S = 0;
            for (int i = 0; i < 32; i++) {
                const int wq = type == QT_Q8_0 ? (int8_t)blk[2 + i]
                                               : (i < 16 ? blk[2 + i] & 15 : blk[2 + i - 16] >> 4) - 8;
                S += wq * xq[32 * b + i];
            }
            const float dw = quant_f16_to_f32(rd16(blk)), dx = in->q8_0.d[b * pad + t];
            y = fmaf((float)S, dw * dx, y);
        }
        return y;
    }
    const int8_t *xq = in->q8_k.qs + t * n_in;
    for (int64_t b = 0; b < n_in / 256; b++) {
        const int8_t *xb = xq + 256 * b;
        const float dx = in->q8_k.d[b * pad + t];
        if (type == QT_Q4_K) {
            const uint8_t *blk = row + b * 144;
            int32_t S = 0, M = 0;
            for (int j = 0; j < 8; j++) {
                int sc, m, sq = 0, sx = 0;
                q4k_sm(blk + 4, j, &sc, &m);
                for (int i = 0; i < 32; i++) {
                    const uint8_t byte = blk[16 + 32 * (j / 2) + i];
                    sq += (j % 2 ? byte >> 4 : byte & 15) * xb[32 * j + i];
                    sx += xb[32 * j + i];
                }
                S += sc * sq;
                M += m * sx;
            }
            y = fmaf((float)S, quant_f16_to_f32(rd16(blk)) * dx, y);
            y = fmaf((float)-M, quant_f16_to_f32(rd16(blk + 2)) * dx, y);
        } else {
            const uint8_t *blk = row + b * 210;
            int32_t S = 0;
            for (int v = 0; v < 256; v++) {
                const int h = v / 128, g = v % 128 / 32, l = v % 32;
                const int lo = blk[64 * h + 32 * (g & 1) + l] >> (g >= 2 ? 4 : 0) & 15;
                const int hi = blk[128 + 32 * h + l] >> 2 * g & 3;
                S += (int8_t)blk[192 + v / 16] * ((lo | hi << 4) - 32) * xb[v];
            }
            y = fmaf((float)S, quant_f16_to_f32(rd16(blk + 208)) * dx, y);
        }
    }
    return y;
}

/* On each SIMD backend this CPU has (AVX-512 shares the recurrence and must match it too). */
TEST(matmul_avx2_integer_kernels_exact) {
    NEED_AVX2();
    static const uint32_t types[] = {QT_Q8_0, QT_Q4_0, QT_Q4_K, QT_Q6_K};
    static const int64_t outs[] = {1, 7, 9, 16, 37};
    static const int64_t toks[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17};
    const enum matmul_backend saved = matmul_backend();
    int bad = 0, checked = 0;
    for (size_t run = 0; run < 8; run++) {
        const int be = MATMUL_AVX2 + (int)(run / 4);
        const size_t ti = run % 4;
        if (!matmul_backend_supported((enum matmul_backend)be)) continue; /* no AVX-512 here */
        CHECK(matmul_set_backend((enum matmul_backend)be) == 0);
        const uint32_t type = types[ti];
        const bool k = type == QT_Q4_K || type == QT_Q6_K;
        const int64_t sizes[2] = {k ? 256 : 32, k ? 768 : 288};
        for (int si = 0; si < 2; si++)
            for (size_t oi = 0; oi < sizeof outs / sizeof outs[0]; oi++)
                for (size_t ki = 0; ki < sizeof toks / sizeof toks[0]; ki++) {
                    const int64_t n_in = sizes[si], n_out = outs[oi], n_tok = toks[ki];
                    const size_t row = qtype_row_size(type, (uint64_t)n_in);
                    uint8_t *w = raw_weights(type, n_in, n_out, 100 * ti + 10 * oi + ki);
                    float *x = make_acts(n_in, n_tok, 7 * ki + oi, true);
                    float *y = malloc(sizeof(float) * (size_t)(n_out * n_tok));
                    const size_t size = matmul_input_size(n_in, n_tok);
                    void *scratch = malloc(size);
                    matmul_input *in = matmul_input_init(scratch, size, x, n_in, n_tok);
                    matmul_input_prepare(in, type);
                    for (int64_t i = 0; i < n_out * n_tok; i++) y[i] = -7.0f;
                    /* a range that starts and ends inside 8-row groups, then the rest */
                    const int64_t r0 = n_out / 3, r1 = n_out - n_out / 4;
                    matmul_rows(type, w, n_out, in, y, r0, r1);
                    for (int64_t t = 0; t < n_tok; t++)
                        for (int64_t r = 0; r < n_out; r++)
                            bad += (r < r0 || r >= r1) && y[t * n_out + r] != -7.0f;
                    matmul_rows(type, w, n_out, in, y, 0, r0);
                    matmul_rows(type, w, n_out, in, y, r1, n_out);
                    for (int64_t t = 0; t < n_tok; t++)
                        for (int64_t r = 0; r < n_out; r++) {
                            const float want = ref_output(type, w + (size_t)r * row, in, t);
                            const float got = y[t * n_out + r];
                            checked++;
                            if (!same_float(want, got) && bad++ < 5)
                                CHECK_MSG(0, "%s %s %lldx%lld, %lld tokens: row %lld token %lld: %.9g, reference %.9g",
                                          matmul_backend_name(be), qtype_get(type)->name, (long long)n_out, (long long)n_in,
                                          (long long)n_tok, (long long)r, (long long)t, got, want);
                        }
                    free(scratch);
                    free(y);
                    free(x);
                    free(w);
                }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(checked > 10000);
    matmul_set_backend(saved);
}

/* ---- against the scalar reference ---- */

static uint8_t *quantized_weights(uint32_t type, int64_t n_in, int64_t n_out, uint64_t seed) {
    const size_t row = qtype_row_size(type, (uint64_t)n_in);
    uint8_t *w = malloc(row * (size_t)n_out);
    float *f = malloc(sizeof(float) * (size_t)n_in);
    testrand r = {seed};
    for (int64_t o = 0; o < n_out; o++) {
        for (int64_t i = 0; i < n_in; i++) f[i] = testrand_normal(&r) * 0.1f;
        CHECK_EQ_INT(quant_quantize_row(type, f, w + (size_t)o * row, n_in), 0);
    }
    free(f);
    return w;
}

/* Y on the given backend through the float-input convenience call. */
static void product_on(enum matmul_backend b, uint32_t type, const uint8_t *w, int64_t n_in,
                       int64_t n_out, const float *x, int64_t n_tok, float *y) {
    const enum matmul_backend saved = matmul_backend();
    CHECK(matmul_set_backend(b) == 0);
    matmul_mat(type, w, n_in, n_out, x, n_tok, y);
    matmul_set_backend(saved);
}

TEST(matmul_avx2_float_kernels_match_scalar) {
    NEED_AVX2();
    static const uint32_t types[] = {QT_F32, QT_F16, QT_BF16};
    static const int64_t sizes[] = {7, 16, 300, 768};
    const int64_t n_out = 11, n_tok = 7;
    for (size_t ti = 0; ti < 3; ti++)
        for (size_t si = 0; si < 4; si++) {
            const uint32_t type = types[ti];
            const int64_t n_in = sizes[si];
            uint8_t *w = quantized_weights(type, n_in, n_out, ti * 10 + si);
            float *x = make_acts(n_in, n_tok, 5 + si, false), *wrow = malloc(sizeof(float) * (size_t)n_in);
            float ys[11 * 7], ya[11 * 7];
            product_on(MATMUL_SCALAR, type, w, n_in, n_out, x, n_tok, ys);
            product_on(MATMUL_AVX2, type, w, n_in, n_out, x, n_tok, ya);
            for (int64_t r = 0; r < n_out; r++) {
                matmul_get_row(type, w, n_in, r, wrow);
                for (int64_t t = 0; t < n_tok; t++) {
                    double mag = 0;
                    for (int64_t i = 0; i < n_in; i++) mag += fabs((double)wrow[i] * x[t * n_in + i]);
                    const double diff = fabs((double)ys[t * n_out + r] - ya[t * n_out + r]);
                    CHECK_MSG(diff <= 32 * 0x1p-24 * mag, "%s n_in %lld row %lld token %lld: %.9g vs %.9g",
                              qtype_get(type)->name, (long long)n_in, (long long)r, (long long)t,
                              ya[t * n_out + r], ys[t * n_out + r]);
                }
            }
            free(wrow);
            free(x);
            free(w);
        }
}

TEST(matmul_avx2_quantized_within_act_quant_error) {
    NEED_AVX2();
    static const uint32_t types[] = {QT_Q8_0, QT_Q4_0, QT_Q4_K, QT_Q6_K};
    const int64_t n_in = 1024, n_out = 13, n_tok = 10;
    for (size_t ti = 0; ti < 4; ti++) {
        const uint32_t type = types[ti];
        const int bs = type == QT_Q8_0 || type == QT_Q4_0 ? 32 : 256;
        uint8_t *w = quantized_weights(type, n_in, n_out, 40 + ti);
        float *x = make_acts(n_in, n_tok, 50 + ti, false), *wrow = malloc(sizeof(float) * (size_t)n_in);
        float ys[13 * 10], ya[13 * 10];
        product_on(MATMUL_SCALAR, type, w, n_in, n_out, x, n_tok, ys);
        product_on(MATMUL_AVX2, type, w, n_in, n_out, x, n_tok, ya);
        double worst = 0;
        for (int64_t r = 0; r < n_out; r++) {
            matmul_get_row(type, w, n_in, r, wrow);
            for (int64_t t = 0; t < n_tok; t++) {
                const float *xt = x + t * n_in;
                double bound = 0, mag = 0;
                for (int64_t b = 0; b < n_in; b += bs) {
                    float amax = 0;
                    for (int i = 0; i < bs; i++) amax = fmaxf(amax, fabsf(xt[b + i]));
                    for (int i = 0; i < bs; i++) {
                        bound += fabs((double)wrow[b + i]) * amax * (1.0 / 254 + 0x1p-11);
                        mag += fabs((double)wrow[b + i] * xt[b + i]);
                    }
                }
                bound += 64 * 0x1p-24 * mag;
                const double diff = fabs((double)ys[t * n_out + r] - ya[t * n_out + r]);
                if (diff / bound > worst) worst = diff / bound;
                CHECK_MSG(diff <= bound, "%s row %lld token %lld: avx2 %.9g scalar %.9g, bound %g",
                          qtype_get(type)->name, (long long)r, (long long)t, ya[t * n_out + r],
                          ys[t * n_out + r], bound);
            }
        }
        CHECK(worst > 0); /* the activations really were quantized */
        free(wrow);
        free(x);
        free(w);
    }
}

TEST(matmul_avx2_nan_activations_give_nan) {
    NEED_AVX2();
    static const uint32_t types[] = {QT_Q8_0, QT_Q4_0, QT_Q4_K, QT_Q6_K};
    const int64_t n_in = 512, n_out = 5, n_tok = 3;
    for (size_t ti = 0; ti < 4; ti++) {
        uint8_t *w = quantized_weights(types[ti], n_in, n_out, 60 + ti);
        float *x = make_acts(n_in, n_tok, 70, true), y[5 * 3];
        product_on(MATMUL_AVX2, types[ti], w, n_in, n_out, x, n_tok, y);
        for (int64_t r = 0; r < n_out; r++) {
            CHECK(isfinite(y[r]) && isfinite(y[2 * n_out + r]));
            CHECK_MSG(isnan(y[n_out + r]), "%s row %lld: %g", qtype_get(types[ti])->name,
                      (long long)r, y[n_out + r]);
        }
        free(x);
        free(w);
    }
}

/* The AVX-512 one-token kernels against the AVX2 ones, bit for bit, on weights from the
 * quantizer, row counts around their 16-row groups, and a token of awkward activation blocks
 * (zeros, ties, huge and tiny scales, infinities and a NaN: those outputs must be NaN on both). */
TEST(matmul_avx512_one_token_equals_avx2) {
    if (!matmul_backend_supported(MATMUL_AVX512)) SKIP("no AVX-512 (F/BW/VL/DQ/VNNI) on this CPU");
    static const uint32_t types[] = {QT_Q8_0, QT_Q4_0, QT_Q4_K, QT_Q6_K, QT_F16, QT_F32, QT_BF16};
    static const int64_t outs[] = {1, 15, 16, 17, 33, 100};
    const enum matmul_backend saved = matmul_backend();
    const int64_t n_in = 1024;
    float *x = make_acts(n_in, 2, 99, true);
    int bad = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t oi = 0; oi < sizeof outs / sizeof outs[0]; oi++)
            for (int tok = 0; tok < 2; tok++) {
                const int64_t n_out = outs[oi];
                uint8_t *w = quantized_weights(types[ti], n_in, n_out, 80 + 7 * ti + oi);
                float ya[100], yb[100];
                product_on(MATMUL_AVX2, types[ti], w, n_in, n_out, x + tok * n_in, 1, ya);
                product_on(MATMUL_AVX512, types[ti], w, n_in, n_out, x + tok * n_in, 1, yb);
                for (int64_t r = 0; r < n_out; r++)
                    if (!same_float(ya[r], yb[r]) && bad++ < 5)
                        CHECK_MSG(0, "%s %lld rows, token %d: row %lld avx512 %.9g avx2 %.9g",
                                  qtype_get(types[ti])->name, (long long)n_out, tok, (long long)r,
                                  yb[r], ya[r]);
                if (tok == 1 && types[ti] != QT_F32 && types[ti] != QT_F16 && types[ti] != QT_BF16)
                    CHECK(isnan(yb[0]));
                free(w);
            }
    CHECK_EQ_INT(bad, 0);
    free(x);
    matmul_set_backend(saved);
}

/* The AVX-512 batched float kernels (two tokens per 512-bit register) against the AVX2 ones, bit
 * for bit: token counts around their groups of 8, 4 and 2 (odd ones leave a token to AVX2),
 * row counts around their 4-row tiles, a width that is not a multiple of 8 (the zero-padded
 * tail), a row range that starts inside the matrix, and awkward activations. */
TEST(matmul_avx512_float_batches_equal_avx2) {
    if (!matmul_backend_supported(MATMUL_AVX512)) SKIP("no AVX-512 (F/BW/VL/DQ/VNNI) on this CPU");
    static const uint32_t types[] = {QT_F16, QT_F32, QT_BF16};
    static const int64_t outs[] = {1, 4, 7, 9, 33};
    static const int64_t toks[] = {2, 3, 4, 5, 8, 9, 17};
    static const int64_t ins[] = {1024, 1003};
    const enum matmul_backend saved = matmul_backend();
    int bad = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t ii = 0; ii < 2; ii++)
            for (size_t oi = 0; oi < sizeof outs / sizeof outs[0]; oi++)
                for (size_t ki = 0; ki < sizeof toks / sizeof toks[0]; ki++) {
                    const int64_t n_in = ins[ii], n_out = outs[oi], n_tok = toks[ki];
                    uint8_t *w = quantized_weights(types[ti], n_in, n_out, 300 + 7 * ti + oi);
                    float *x = make_acts(n_in, n_tok, 50 + ki, true);
                    float *ya = malloc(sizeof(float) * (size_t)(n_out * n_tok));
                    float *yb = malloc(sizeof(float) * (size_t)(n_out * n_tok));
                    product_on(MATMUL_AVX2, types[ti], w, n_in, n_out, x, n_tok, ya);
                    /* rows from 1 on, as a thread's share would be; row 0 stays as set */
                    for (int64_t i = 0; i < n_out * n_tok; i++) yb[i] = ya[i];
                    CHECK(matmul_set_backend(MATMUL_AVX512) == 0);
                    for (int64_t t = 0; t < n_tok; t++) yb[t * n_out] = -1.0f;
                    matmul_mat_rows(types[ti], w, n_in, n_out, x, n_tok, yb, n_out > 1, n_out);
                    matmul_set_backend(saved);
                    for (int64_t t = 0; t < n_tok; t++)
                        for (int64_t r = 0; r < n_out; r++) {
                            const float want = r == 0 && n_out > 1 ? -1.0f : ya[t * n_out + r];
                            if (!same_float(want, yb[t * n_out + r]) && bad++ < 5)
                                CHECK_MSG(0, "%s %lldx%lld, %lld tokens: row %lld token %lld avx512 %.9g avx2 %.9g",
                                          qtype_get(types[ti])->name, (long long)n_out, (long long)n_in,
                                          (long long)n_tok, (long long)r, (long long)t,
                                          yb[t * n_out + r], want);
                        }
                    free(w);
                    free(x);
                    free(ya);
                    free(yb);
                }
    CHECK_EQ_INT(bad, 0);
}
