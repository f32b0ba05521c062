/* Tensor element formats (see quant.h). The block layouts, as ggml defines them (all little
 * endian, f16 = IEEE half):
 *   Q8_0, 34 bytes per 32 values: f16 d, int8 q[32].                 x[j] = q[j] * d
 *   Q4_0, 18 bytes per 32 values: f16 d, u8 qs[16].     x[j] = (low nibble of qs[j] - 8) * d,
 *                                                    x[j + 16] = (high nibble of qs[j] - 8) * d
 *   Q4_K, 144 bytes per 256 values: f16 d, f16 dmin, u8 scales[12], u8 qs[128]. Eight
 *     sub-blocks of 32 values, each with a 6-bit scale sc and a 6-bit min m:
 *     x = (d * sc) * q - (dmin * m), q 4 bits. Sub-block j holds values 32j..32j+31; byte
 *     qs[32c + l] holds value 64c + l in its low nibble and value 64c + 32 + l in its high one.
 *     scales[0..3] hold sc0..sc3 in bits 0-5 and the top 2 bits of sc4..sc7 in bits 6-7;
 *     scales[4..7] the same for the mins; scales[8..11] the low 4 bits of sc4..sc7 (low nibble)
 *     and of m4..m7 (high nibble).
 *   Q6_K, 210 bytes per 256 values: u8 ql[128], u8 qh[64], int8 scales[16], f16 d. Sixteen
 *     sub-blocks of 16 values, each with a signed 8-bit scale: x = (d * sc) * (q - 32), q 6
 *     bits. Value 128h + 32g + l (h < 2, g < 4, l < 32) keeps its low 4 bits in
 *     ql[64h + 32(g & 1) + l] (low nibble when g < 2, high when g >= 2) and its top 2 bits in
 *     bits 2g, 2g+1 of qh[32h + l]; its scale is scales[value / 16].
 * Decoding evaluates those expressions in float in that order, as ggml's reference does, so
 * the results are bit-identical to ggml's. */
#include "tensor/quant.h"

#include "base/err.h"
#include "tensor/qtype.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define QK 32    /* values per Q8_0 / Q4_0 block */
#define QK_K 256 /* values per Q4_K / Q6_K super-block */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i);
}

/* Inline so the decoding loops below do not pay a call per element. */
static inline float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, em = h & 0x7fff;
    if (em >= 0x7c00) return bits_f32(sign | 0x7f800000 | (em & 0x3ff) << 13); /* inf, NaN */
    if (em < 0x0400) {
        /* zero or subnormal: units of 2^-24, exact in float */
        const float v = (float)em * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((em << 13) + ((uint32_t)(127 - 15) << 23)));
}

float quant_f16_to_f32(uint16_t h) { return half_to_float(h); }

uint16_t quant_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    const uint16_t sign = (uint16_t)(x >> 16 & 0x8000);
    x &= 0x7fffffff;
    /* NaN: set the quiet bit so dropping payload bits can never turn it into infinity */
    if (x > 0x7f800000) return (uint16_t)(sign | 0x7e00 | (x >> 13 & 0x3ff));
    /* 65520 is halfway between 65504 (odd mantissa) and 2^16: it and above round to inf */
    if (x >= 0x477ff000) return (uint16_t)(sign | 0x7c00);
    if (x >= 0x38800000) {
        /* normal half: rebias, then round the 13 dropped bits to nearest even; a carry out of
         * the mantissa correctly bumps the exponent */
        x -= (uint32_t)(127 - 15) << 23;
        return (uint16_t)(sign | (x + 0xfff + (x >> 13 & 1)) >> 13);
    }
    /* up to 2^-25, half the smallest subnormal, rounds to zero (the tie goes to even 0) */
    if (x <= 0x33000000) return sign;
    /* subnormal half: the significand in units of 2^-24 is m >> (126 - exponent), 14..24 */
    const uint32_t m = (x & 0x7fffff) | 0x800000;
    const int shift = (int)(126 - (x >> 23));
    const uint32_t half = 1u << (shift - 1), rem = m & ((1u << shift) - 1);
    uint32_t q = m >> shift;
    if (rem > half || (rem == half && (q & 1))) q++; /* may reach 0x400: the smallest normal */
    return (uint16_t)(sign | q);
}

float quant_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t quant_f32_to_bf16(float f) {
    const uint32_t x = f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)(x >> 16 | 0x40); /* quiet NaN */
    return (uint16_t)((x + 0x7fff + (x >> 16 & 1)) >> 16);
}

/* ---- decoding ---- */

static void dequant_q8_0(const uint8_t *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, b += 34, y += QK) {
        const float d = half_to_float(rd16(b));
        for (int j = 0; j < QK; j++) y[j] = (float)(int8_t)b[2 + j] * d;
    }
}

static void dequant_q4_0(const uint8_t *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, b += 18, y += QK) {
        const float d = half_to_float(rd16(b));
        const uint8_t *qs = b + 2;
        for (int j = 0; j < QK / 2; j++) {
            y[j] = (float)((qs[j] & 0xf) - 8) * d;
            y[j + QK / 2] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

void quant_q4k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

void quant_q4k_scales_set(uint8_t *s, const int *sc, const int *m) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 0xf) | (m[j + 4] & 0xf) << 4);
    }
}

static void dequant_q4_k(const uint8_t *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, b += 144) {
        const float d = half_to_float(rd16(b)), dmin = half_to_float(rd16(b + 2));
        const uint8_t *scales = b + 4, *qs = b + 16;
        for (int c = 0; c < 4; c++, qs += 32, y += 64) {
            int sc, m;
            quant_q4k_scale_min(scales, 2 * c, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            quant_q4k_scale_min(scales, 2 * c + 1, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) {
                y[l] = d1 * (float)(qs[l] & 0xf) - m1;
                y[l + 32] = d2 * (float)(qs[l] >> 4) - m2;
            }
        }
    }
}

static void dequant_q6_k(const uint8_t *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, b += 210) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const float d = half_to_float(rd16(b + 208));
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xf) | (qh[l] & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0xf) | (qh[l] >> 2 & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (qh[l] >> 6) << 4) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

void quant_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    const uint8_t *s = src;
    if (n <= 0) return;
    if (!qtype_supported(type) || n % qtype_get(type)->block_size) {
        for (int64_t i = 0; i < n; i++) dst[i] = NAN;
        return;
    }
    switch (type) {
    case QT_F32:
        for (int64_t i = 0; i < n; i++) dst[i] = bits_f32(rd32(s + 4 * i));
        break;
    case QT_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = half_to_float(rd16(s + 2 * i));
        break;
    case QT_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = quant_bf16_to_f32(rd16(s + 2 * i));
        break;
    case QT_Q8_0: dequant_q8_0(s, dst, n / QK); break;
    case QT_Q4_0: dequant_q4_0(s, dst, n / QK); break;
    case QT_Q4_K: dequant_q4_k(s, dst, n / QK_K); break;
    case QT_Q6_K: dequant_q6_k(s, dst, n / QK_K); break;
    }
}

/* ---- encoding: ggml's reference Q8_0 and Q4_0 ---- */

static bool f16_is_inf(uint16_t h) { return (h & 0x7fff) == 0x7c00; }

/* 1/d, or 0 when d is 0 or so small that 1/d overflows: such a d is 0 in half precision, so
 * the quants do not matter, and a finite inverse keeps the float-to-int casts defined. */
static float scale_inverse(float d) {
    const float id = d != 0 ? 1 / d : 0;
    return isinf(id) ? 0 : id;
}

/* d = max|x| / 127, q = round(x / d) with halves away from zero. False when d overflows half. */
static bool quant_block_q8_0(const float *x, uint8_t *b) {
    float amax = 0;
    for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127, id = scale_inverse(d);
    const uint16_t dh = quant_f32_to_f16(d);
    wr16(b, dh);
    for (int j = 0; j < QK; j++) b[2 + j] = (uint8_t)(int)roundf(x[j] * id);
    return !f16_is_inf(dh);
}

/* The value of largest magnitude (the first such, sign kept) maps to -8, so the extra negative
 * level holds it exactly; q = trunc(x / d + 8.5) clamped to 15. */
static bool quant_block_q4_0(const float *x, uint8_t *b) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -8, id = scale_inverse(d);
    const uint16_t dh = quant_f32_to_f16(d);
    wr16(b, dh);
    for (int j = 0; j < QK / 2; j++) {
        const float v0 = x[j] * id, v1 = x[j + QK / 2] * id;
        int q0 = (int)(v0 + 8.5f), q1 = (int)(v1 + 8.5f);
        if (q0 > 15) q0 = 15;
        if (q1 > 15) q1 = 15;
        b[2 + j] = (uint8_t)(q0 | q1 << 4);
    }
    return !f16_is_inf(dh);
}

/* ---- encoding: our own Q4_K and Q6_K search ----
 * Both formats decode a sub-block j as x = (d * sc[j]) * q - (dmin * m[j]) (Q6_K has no min),
 * so one search serves both: fit each sub-block's scale (and offset) in float, encode those as
 * integer codes under half-precision super-block scales, then alternately re-pick each
 * sub-block's codes and refit the super-block scales by least squares, keeping whichever state
 * decodes with the least squared error. */

typedef struct kq_format {
    int group;      /* values per sub-block */
    int n_groups;   /* sub-blocks per super-block */
    int qmin, qmax; /* quant range (Q6_K's after taking off its 32 bias) */
    int scmin, scmax;
    bool has_min; /* per-sub-block offset with its own code (Q4_K) */
} kq_format;

static const kq_format kq_q4_k = {32, 8, 0, 15, 0, 63, true};
static const kq_format kq_q6_k = {16, 16, -32, 31, -128, 127, false};

/* One candidate encoding of a super-block. d and dmin are already half-precision values. */
typedef struct kq_state {
    float d, dmin;
    int sc[16], m[16];
    int8_t q[QK_K];
    float err;
} kq_state;

enum { KQ_REFINE_ROUNDS = 3, KQ_FIT_ITERS = 1 };

/* v rounded to nearest (halves up), clamped to [lo, hi]; NaN gives lo. Clamping first keeps
 * huge or infinite ratios (a scale that underflowed) defined and lets a truncating cast of a
 * non-negative number do the rounding: branch-free, where lrintf() is a library call. */
static inline int round_clamp(float v, int lo, int hi) {
    v = v > (float)lo ? v : (float)lo;
    v = v < (float)hi ? v : (float)hi;
    return (int)(v - (float)lo + 0.5f) + lo;
}

static float half_round(float v) { return half_to_float(quant_f32_to_f16(v)); }

/* Quants for one sub-block decoding as s * q - o; returns the squared error. */
static float kq_assign(const kq_format *f, const float *x, float s, float o, int8_t *q) {
    const float inv = s != 0 ? 1 / s : 0;
    float err = 0;
    for (int i = 0; i < f->group; i++) {
        q[i] = (int8_t)round_clamp((x[i] + o) * inv, f->qmin, f->qmax);
        const float e = s * (float)q[i] - o - x[i];
        err += e * e;
    }
    return err;
}

/* Least-squares s (and o >= 0 when the format has offsets) for fixed quants. Leaves them as
 * they are when the quants cannot determine them (all equal) or the fit turns negative. */
static void kq_refit(const kq_format *f, const float *x, const int8_t *q, float *s, float *o) {
    double sq = 0, sx = 0, sqq = 0, sqx = 0;
    const double n = f->group;
    for (int i = 0; i < f->group; i++) {
        sq += q[i];
        sx += x[i];
        sqq += (double)q[i] * q[i];
        sqx += (double)q[i] * x[i];
    }
    if (!f->has_min) {
        if (sqq > 0) *s = (float)(sqx / sqq);
        return;
    }
    const double det = n * sqq - sq * sq;
    if (det <= 0) return;
    double ns = (n * sqx - sq * sx) / det, no = (ns * sq - sx) / n;
    if (no < 0) { /* the offset may only lower values: refit through zero */
        no = 0;
        ns = sqx / sqq;
    }
    if (ns < 0) return;
    *s = (float)ns;
    *o = (float)no;
}

/* The float scale s and offset o that best fit one sub-block: each of several starting scales
 * (the data's range spread over slightly more or fewer steps, trading clipped extremes against
 * finer steps) is refined by alternating assignment and least squares. */
static void kq_fit_group(const kq_format *f, const float *x, float *s_best, float *o_best) {
    static const float spread[] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f};
    const int n_spread = (int)(sizeof spread / sizeof spread[0]);
    float lo = 0, hi = x[0], vmax = 0;
    for (int i = 0; i < f->group; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
        if (fabsf(x[i]) > fabsf(vmax)) vmax = x[i];
    }
    int8_t q[QK_K];
    float best = INFINITY;
    *s_best = 0;
    *o_best = 0;
    /* signed formats try the largest magnitude on either end of the quant range */
    for (int k = 0; k < (f->has_min ? 1 : 2) * n_spread; k++) {
        const float t = spread[k % n_spread];
        float s, o = 0;
        if (f->has_min) {
            s = (hi - lo) / ((float)(f->qmax - f->qmin) + t);
            o = -lo;
        } else {
            s = vmax / (k < n_spread ? (float)f->qmin + t : (float)f->qmax - t);
        }
        for (int it = 0; it < KQ_FIT_ITERS; it++) {
            kq_assign(f, x, s, o, q);
            kq_refit(f, x, q, &s, &o);
        }
        const float err = kq_assign(f, x, s, o, q);
        if (err < best) {
            best = err;
            *s_best = s;
            *o_best = o;
        }
    }
}

/* For each sub-block, the codes around the ideal ones under st's d and dmin that decode with
 * the least error; fills st's quants and err. */
static void kq_pick_codes(const kq_format *f, const float *x, const float *s, const float *o,
                          kq_state *st) {
    const float dinv = st->d != 0 ? 1 / st->d : 0, minv = st->dmin != 0 ? 1 / st->dmin : 0;
    int8_t q[QK_K];
    st->err = 0;
    for (int j = 0; j < f->n_groups; j++) {
        const float *xj = x + j * f->group;
        const float rs = s[j] * dinv, ro = o[j] * minv;
        float best = INFINITY;
        for (int a = 0; a < 2; a++) {
            for (int b = 0; b < (f->has_min ? 2 : 1); b++) {
                const int sc = round_clamp(floorf(rs) + (float)a, f->scmin, f->scmax);
                const int m = f->has_min ? round_clamp(floorf(ro) + (float)b, 0, f->scmax) : 0;
                const float err = kq_assign(f, xj, st->d * (float)sc, st->dmin * (float)m, q);
                if (err < best) {
                    best = err;
                    st->sc[j] = sc;
                    st->m[j] = m;
                    memcpy(st->q + j * f->group, q, (size_t)f->group);
                }
            }
        }
        st->err += best;
    }
}

/* Least-squares d and dmin for st's codes and quants: x ~ d * (sc q) - dmin * m. Returns
 * false when the fit is degenerate or negative (st unchanged). */
static bool kq_refit_super(const kq_format *f, const float *x, kq_state *st) {
    double aa = 0, ab = 0, bb = 0, ax = 0, bx = 0;
    for (int i = 0; i < f->group * f->n_groups; i++) {
        const int j = i / f->group;
        const double a = (double)st->sc[j] * st->q[i], b = st->m[j];
        aa += a * a;
        ab += a * b;
        bb += b * b;
        ax += a * x[i];
        bx += b * x[i];
    }
    double d, dmin = st->dmin;
    const double det = aa * bb - ab * ab;
    if (f->has_min && bb > 0 && det > 0) {
        d = (ax * bb - ab * bx) / det;
        dmin = (ab * ax - aa * bx) / det;
    } else if (aa > 0) {
        d = (ax + dmin * ab) / aa;
    } else {
        return false;
    }
    if (!(d >= 0 && dmin >= 0)) return false;
    st->d = half_round((float)d);
    st->dmin = half_round((float)dmin);
    return true;
}

/* Finds the encoding of one super-block; false when a scale overflows half precision. */
static bool kq_search(const kq_format *f, const float *x, kq_state *best) {
    float s[16], o[16], smax = 0, omax = 0;
    for (int j = 0; j < f->n_groups; j++) {
        kq_fit_group(f, x + j * f->group, &s[j], &o[j]);
        if (fabsf(s[j]) > fabsf(smax)) smax = s[j];
        omax = fmaxf(omax, o[j]);
    }
    kq_state st = {0};
    /* the largest scale gets the extreme code on its side */
    st.d = half_round(smax / (float)(smax < 0 ? f->scmin : f->scmax));
    st.dmin = half_round(omax / (float)f->scmax);
    if (isinf(st.d) || isinf(st.dmin)) return false;
    kq_pick_codes(f, x, s, o, &st);
    *best = st;
    for (int r = 0; r < KQ_REFINE_ROUNDS; r++) {
        if (!kq_refit_super(f, x, &st) || isinf(st.d) || isinf(st.dmin)) break;
        kq_pick_codes(f, x, s, o, &st);
        if (st.err < best->err) *best = st;
    }
    return true;
}

static bool quant_block_q4_k(const float *x, uint8_t *b) {
    kq_state st;
    if (!kq_search(&kq_q4_k, x, &st)) return false;
    wr16(b, quant_f32_to_f16(st.d));
    wr16(b + 2, quant_f32_to_f16(st.dmin));
    uint8_t *scales = b + 4, *qs = b + 16;
    quant_q4k_scales_set(scales, st.sc, st.m);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            qs[32 * c + l] = (uint8_t)(st.q[64 * c + l] | st.q[64 * c + 32 + l] << 4);
    return true;
}

static bool quant_block_q6_k(const float *x, uint8_t *b) {
    kq_state st;
    if (!kq_search(&kq_q6_k, x, &st)) return false;
    uint8_t *ql = b, *qh = b + 128, *scales = b + 192;
    memset(b, 0, 192);
    for (int e = 0; e < QK_K; e++) {
        const int v = st.q[e] + 32, h = e / 128, g = e % 128 / 32, l = e % 32;
        ql[64 * h + 32 * (g & 1) + l] |= (uint8_t)((v & 0xf) << (g >> 1) * 4);
        qh[32 * h + l] |= (uint8_t)((v >> 4) << 2 * g);
    }
    for (int j = 0; j < 16; j++) scales[j] = (uint8_t)st.sc[j];
    wr16(b + 208, quant_f32_to_f16(st.d));
    return true;
}

int quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n) {
    const qtype_info *info = qtype_get(type);
    uint8_t *out = dst;
    if (!qtype_supported(type)) {
        if (info) return err_set("quantize: tensor type %s is not supported", info->name);
        return err_set("quantize: unknown tensor type %u", type);
    }
    if (n < 0 || n % info->block_size)
        return err_set("quantize %s: a row of %lld values is not a multiple of the block size %u",
                       info->name, (long long)n, info->block_size);
    if (info->block_size > 1) {
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(src[i]))
                return err_set("quantize %s: value %lld is %s", info->name, (long long)i,
                               isnan(src[i]) ? "NaN" : "infinite");
    }
    bool (*block_fn)(const float *, uint8_t *) = NULL;
    switch (type) {
    case QT_F32:
        for (int64_t i = 0; i < n; i++) wr32(out + 4 * i, f32_bits(src[i]));
        return 0;
    case QT_F16:
        for (int64_t i = 0; i < n; i++) wr16(out + 2 * i, quant_f32_to_f16(src[i]));
        return 0;
    case QT_BF16:
        for (int64_t i = 0; i < n; i++) wr16(out + 2 * i, quant_f32_to_bf16(src[i]));
        return 0;
    case QT_Q8_0: block_fn = quant_block_q8_0; break;
    case QT_Q4_0: block_fn = quant_block_q4_0; break;
    case QT_Q4_K: block_fn = quant_block_q4_k; break;
    case QT_Q6_K: block_fn = quant_block_q6_k; break;
    }
    for (int64_t i = 0; i < n / info->block_size; i++) {
        if (!block_fn(src + i * info->block_size, out + i * info->type_size))
            return err_set("quantize %s: block %lld (values from %lld) is too large for a "
                           "half-precision scale", info->name, (long long)i,
                           (long long)(i * info->block_size));
    }
    return 0;
}
