/* AVX2 kernels: the MATMUL_AVX2 backend (see matmul.h). The Makefile compiles every *_avx2.c
 * with -mavx2 -mfma -mf16c; nothing here runs unless matmul_avx2_usable() said the CPU has
 * those. Written from the block layouts in quant.c and the activation rule in
 * matmul_kernels.h. Unaligned loads throughout: rows of 18-, 34-, 144- and 210-byte blocks
 * start anywhere, and no load reaches past the block (or the float row) it reads.
 *
 * Float-activation types (F32, F16, BF16): per (row, token) one 8-float accumulator, element
 * i fused-multiply-added into lane i % 8 in increasing i (the last n_in % 8 elements
 * zero-padded), then the lanes summed as k += k+4, k += k+2, lane 0 + lane 1. (Not the scalar
 * kernels' order: one accumulator per output lets a tile of 3 rows x 4 tokens keep everything
 * in registers.)
 *
 * Quantized types: each (row, token) output is, exactly,
 *     y = 0;  for each block b in order:  y = fma((float)S_b, dw_b * dx_b, y)
 * (Q4_K adds a second step per block: y = fma((float)-M_b, dmin_b * dx_b, y)), where S_b and
 * M_b are the block's exact integer dot products of weight and activation quants (below), dw_b
 * the weight block's scale and dx_b the activation block's. Every step is one IEEE operation
 * per output, so the result does not depend on how outputs are grouped into vector lanes (8
 * rows of one token, 8 tokens of one row, or 4 x 2 and 2 x 4 for small batches: see
 * q8_0_pairs): one-token and batched products give bit-identical outputs, and a scalar
 * evaluation of the recurrence (the tests have one) gives them too. The integer sums come
 * from _mm256_maddubs_epi16 (unsigned x signed bytes; no pair sum can saturate for these
 * ranges), widened and added in 32 bits, and a transpose-and-add (reduce8) that turns 8
 * vectors of partial sums into one vector of 8 totals (Q4_0's small products are added in 16
 * bits first: reduce8_16).
 *   Q8_0 x Q8_0: S = sum w*x; Q4_0 x Q8_0: S = sum (n - 8) * x = sum n*x - 8 * sum x (n the
 *   nibble). Q4_K x Q8_K: S = sum_j sc_j * sum_{i in j} n_i x_i, M = sum_j m_j * sum_{i in j} x_i,
 *   dw = d, and the min term uses dmin. Q6_K x Q8_K: S = sum_s sc_s * (sum_{i in s} q_i x_i
 *   - 32 * sum_{i in s} x_i), q the unsigned 6-bit value. */
#include "tensor/matmul_kernels.h"

#include "tensor/cpu.h"
#include "tensor/qtype.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))
/* Small fixed loops (8 lanes, 8 sub-blocks) fully unrolled, so their vectors stay in registers. */
#define UNROLL _Pragma("GCC unroll 8")

/* How far ahead (bytes) the one-token kernels prefetch each of their 8 row streams: the rows
 * are short streams read side by side, which hardware prefetchers follow poorly. */
#ifndef PREFETCH
#define PREFETCH 512
#endif

bool matmul_avx2_usable(void) {
    const unsigned need = CPU_AVX | CPU_AVX2 | CPU_FMA | CPU_F16C;
    return (cpu_features() & need) == need;
}

static uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Lane i of the result = the sum of the 8 lanes of s[i] (32-bit integers). */
INLINE __m256i reduce8(const __m256i s[8]) {
    const __m256i h01 = _mm256_hadd_epi32(s[0], s[1]), h23 = _mm256_hadd_epi32(s[2], s[3]);
    const __m256i h45 = _mm256_hadd_epi32(s[4], s[5]), h67 = _mm256_hadd_epi32(s[6], s[7]);
    /* q0 = rows 0-3 from the low 128-bit half | the same from the high half */
    const __m256i q0 = _mm256_hadd_epi32(h01, h23), q1 = _mm256_hadd_epi32(h45, h67);
    const __m256i lo = _mm256_permute2x128_si256(q0, q1, 0x20);
    const __m256i hi = _mm256_permute2x128_si256(q0, q1, 0x31);
    return _mm256_add_epi32(lo, hi);
}

/* ==== activation quantization (the rule in matmul_kernels.h) ==== */

/* amax of n floats (n a multiple of 8), or -1 when one of them is infinite or NaN. */
static float block_amax(const float *x, int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f), inf = _mm256_set1_ps(INFINITY);
    __m256 mx = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ)); /* inf or NaN */
        mx = _mm256_max_ps(mx, a);
    }
    if (_mm256_movemask_ps(bad)) return -1;
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* Quantizes 32 floats with multiplier id into q (in order); returns the 4 int32 vectors'
 * sum as a vector of partial sums (caller reduces what it needs). */
static __m256i quant32(const float *x, __m256 id, int8_t *q, __m256i *sum16) {
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id));
    /* packs interleave 4-element groups across the 128-bit halves; the permute undoes it */
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    _mm256_storeu_si256((__m256i *)q,
                        _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    sum16[0] = _mm256_add_epi32(i0, i1); /* values 0..15 */
    sum16[1] = _mm256_add_epi32(i2, i3); /* values 16..31 */
    return _mm256_add_epi32(sum16[0], sum16[1]);
}

static int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* One block of `n` values (32 or 256): q, the scale, and the sums of each 16 q (bsums, may be
 * NULL) and of all of them. */
static void quant_block(const float *x, int n, int8_t *q, float *d, int16_t *bsums, int32_t *sum) {
    const float amax = block_amax(x, n);
    if (!(amax > 0x1p-100f)) {
        memset(q, 0, (size_t)n);
        if (bsums) memset(bsums, 0, (size_t)n / 16 * sizeof *bsums);
        *d = amax < 0 ? NAN : 0.0f;
        *sum = 0;
        return;
    }
    const __m256 id = _mm256_set1_ps(127.0f / amax);
    __m256i total = _mm256_setzero_si256(), s16[2];
    for (int i = 0; i < n; i += 32) {
        total = _mm256_add_epi32(total, quant32(x + i, id, q + i, s16));
        if (bsums) {
            bsums[i / 16] = (int16_t)hsum_epi32(s16[0]);
            bsums[i / 16 + 1] = (int16_t)hsum_epi32(s16[1]);
        }
    }
    if (n == MATMUL_Q8_0_BLOCK) {
        const float v = amax / 127.0f;
        *d = v >= 0x1p-14f && v <= 65504.0f ? _cvtsh_ss(_cvtss_sh(v, 0)) : v;
    } else {
        *d = 1.0f / (127.0f / amax);
    }
    *sum = hsum_epi32(total);
}

void matmul_avx2_quantize(matmul_input *in, unsigned form) {
    const bool k = form == MATMUL_FORM_Q8_K;
    const matmul_q8 *q = k ? &in->q8_k : &in->q8_0;
    const int bs = k ? MATMUL_Q8_K_BLOCK : MATMUL_Q8_0_BLOCK;
    const int64_t n_in = in->n_in, nb = n_in / bs, pad = in->n_tok_pad;
    for (int64_t t = 0; t < pad; t++)
        for (int64_t b = 0; b < nb; b++) {
            float *d = &q->d[b * pad + t];
            int32_t sum = 0;
            if (t >= in->n_tok) /* padding */
                *d = 0;
            else
                quant_block(in->x + t * n_in + b * bs, bs, q->qs + t * n_in + b * bs, d,
                            k ? q->bsums + t * (n_in / 16) + b * (bs / 16) : NULL, &sum);
            if (!k) {
                q->nsum8[b * pad + t] = -8 * sum;
                q->nsum128[b * pad + t] = -128 * sum;
            }
        }
}

/* ==== float activations: F32, F16, BF16 ==== */

/* 8 weights at element i of a row as floats. */
INLINE __m256 wload8(uint32_t type, const uint8_t *row, int64_t i) {
    switch (type) {
    case QT_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * i)));
    case QT_BF16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(row + 2 * i))), 16));
    default: return _mm256_loadu_ps((const float *)(row + 4 * i));
    }
}

/* Lanes k += k+4, k += k+2, then lane 0 + lane 1. */
INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Rows r..r+R-1 x tokens t..t+T-1 of a float-activation product: one 8-lane accumulator per
 * output, in registers (R * T + R + 1 <= 16 vectors). */
INLINE void float_tile(uint32_t type, const uint8_t *w, size_t row_bytes, const float *x,
                       int64_t n_in, float *y, int64_t n_out, int64_t r, int64_t t, const int R,
                       const int T, const uint8_t *next) {
    const size_t es = type == QT_F32 ? 4 : 2;
    const int64_t full = n_in & ~(int64_t)7;
    __m256 acc[4][4];
    UNROLL
    for (int i = 0; i < R; i++)
        UNROLL
        for (int j = 0; j < T; j++) acc[i][j] = _mm256_setzero_ps();
    for (int64_t k = 0; k < full; k += 8) {
        /* the next tile's R rows are one stretch of R * row_bytes bytes: fetched into L2 in
         * equal slices, one per step, so that they are in cache when that tile starts */
        if (next)
            for (size_t o = (size_t)k * R * es; o < (size_t)(k + 8) * R * es; o += 64)
                _mm_prefetch((const char *)next + o, _MM_HINT_T1);
        __m256 wv[4];
        UNROLL
        for (int i = 0; i < R; i++) wv[i] = wload8(type, w + (size_t)(r + i) * row_bytes, k);
        UNROLL
        for (int j = 0; j < T; j++) {
            const __m256 xv = _mm256_loadu_ps(x + (t + j) * n_in + k);
            UNROLL
            for (int i = 0; i < R; i++) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    if (full < n_in) { /* the last n_in % 8 elements, zero-padded */
        const size_t n = (size_t)(n_in - full);
        for (int i = 0; i < R; i++) {
            uint8_t raw[32] = {0};
            memcpy(raw, w + (size_t)(r + i) * row_bytes + es * (size_t)full, es * n);
            const __m256 wv = wload8(type, raw, 0);
            for (int j = 0; j < T; j++) {
                float xt[8] = {0};
                memcpy(xt, x + (t + j) * n_in + full, sizeof(float) * n);
                acc[i][j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xt), acc[i][j]);
            }
        }
    }
    UNROLL
    for (int i = 0; i < R; i++)
        UNROLL
        for (int j = 0; j < T; j++) y[(t + j) * n_out + r + i] = hsum8(acc[i][j]);
}

typedef void (*float_tile_fn)(const uint8_t *w, size_t row_bytes, const float *x, int64_t n_in,
                              float *y, int64_t n_out, int64_t r, int64_t t, const uint8_t *next);

/* One function per weight type and tile shape, so that each is compiled with its loops
 * unrolled and its weight decoding fixed. */
#define FLOAT_TILE(name, type, R, T)                                                          \
    static void name##_##R##x##T(const uint8_t *w, size_t row_bytes, const float *x,          \
                                 int64_t n_in, float *y, int64_t n_out, int64_t r, int64_t t,  \
                                 const uint8_t *next) {                                        \
        float_tile(type, w, row_bytes, x, n_in, y, n_out, r, t, R, T, next);                  \
    }
/* [0]: 4 rows x 1 token (one-token products); [1 + 4 (R - 1) + T - 1]: R rows x T tokens */
#define FLOAT_TILES(name, type)                                                               \
    FLOAT_TILE(name, type, 4, 1)                                                              \
    FLOAT_TILE(name, type, 1, 1) FLOAT_TILE(name, type, 1, 2)                                 \
    FLOAT_TILE(name, type, 1, 3) FLOAT_TILE(name, type, 1, 4)                                 \
    FLOAT_TILE(name, type, 2, 1) FLOAT_TILE(name, type, 2, 2)                                 \
    FLOAT_TILE(name, type, 2, 3) FLOAT_TILE(name, type, 2, 4)                                 \
    FLOAT_TILE(name, type, 3, 1) FLOAT_TILE(name, type, 3, 2)                                 \
    FLOAT_TILE(name, type, 3, 3) FLOAT_TILE(name, type, 3, 4)                                 \
    static const float_tile_fn name##_tiles[13] = {                                           \
        name##_4x1, name##_1x1, name##_1x2, name##_1x3, name##_1x4, name##_2x1, name##_2x2,   \
        name##_2x3, name##_2x4, name##_3x1, name##_3x2, name##_3x3, name##_3x4};
FLOAT_TILES(f32, QT_F32)
FLOAT_TILES(f16, QT_F16)
FLOAT_TILES(bf16, QT_BF16)

static void float_rows(const float_tile_fn tiles[13], const uint8_t *w, size_t row_bytes,
                       int64_t n_out, const matmul_input *in, float *y, int64_t r0, int64_t r1) {
    const int64_t n_in = in->n_in, n_tok = in->n_tok;
    int64_t r = r0;
    if (n_tok == 1)
        for (; r + 4 <= r1; r += 4)
            tiles[0](w, row_bytes, in->x, n_in, y, n_out, r, 0,
                     r + 8 <= r1 ? w + (size_t)(r + 4) * row_bytes : NULL);
    while (r < r1) {
        const int rows = r1 - r < 3 ? (int)(r1 - r) : 3;
        for (int64_t t = 0; t < n_tok; t += 4) {
            const int toks = n_tok - t < 4 ? (int)(n_tok - t) : 4;
            tiles[1 + 4 * (rows - 1) + toks - 1](w, row_bytes, in->x, n_in, y, n_out, r, t, NULL);
        }
        r += rows;
    }
}

/* ==== Q8_0 and Q4_0 weights x Q8_0 activations ==== */

/* A weight block ready to meet activation blocks: Q8_0: a = |w|, s = w; Q4_0: a = the 32
 * nibbles as unsigned bytes in value order. */
typedef struct wq {
    __m256i a, s;
} wq;

INLINE wq wq_load(const uint8_t *blk, bool q4) {
    wq r;
    if (q4) {
        /* the 16 bytes in both halves; the high half shifted down 4 bits: its nibbles */
        const __m256i n = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(blk + 2)));
        r.a = _mm256_and_si256(_mm256_srlv_epi64(n, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
        r.s = r.a;
    } else {
        r.s = _mm256_loadu_si256((const __m256i *)(blk + 2));
        r.a = _mm256_abs_epi8(r.s);
    }
    return r;
}

/* Partial sums of the block's sum n*x (Q4_0: 16 of 16 bits) or w*x (Q8_0: 8 of 32 bits). */
INLINE __m256i wq_dot(wq w, __m256i x, bool q4) {
    if (q4) return _mm256_maddubs_epi16(w.a, x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w.a, _mm256_sign_epi8(x, w.s)), _mm256_set1_epi16(1));
}

/* reduce8 for Q4_0's 16-bit partial sums: |p| <= 2 * 15 * 127, so sums of 8 of them fit in 16
 * bits, and widening after three levels of adds saves the pipes reduce8 and the widening
 * multiply-adds compete for (about 6% faster). */
INLINE __m256i reduce8_16(const __m256i p[8]) {
    const __m256i h01 = _mm256_hadd_epi16(p[0], p[1]), h23 = _mm256_hadd_epi16(p[2], p[3]);
    const __m256i h45 = _mm256_hadd_epi16(p[4], p[5]), h67 = _mm256_hadd_epi16(p[6], p[7]);
    /* rows 0-7 from the low 128-bit half | the same from the high half */
    const __m256i q = _mm256_hadd_epi16(_mm256_hadd_epi16(h01, h23), _mm256_hadd_epi16(h45, h67));
    return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(q)),
                            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(q, 1)));
}

/* ==== Q4_K and Q6_K weights x Q8_K activations ==== */

/* Q4_K's 6-bit scales and mins as int16: sc[j], m[j] for sub-blocks j = 0..7. */
INLINE void q4k_scales(const uint8_t *s, __m128i *sc, __m128i *m) {
    uint32_t u0, u1, u2;
    memcpy(&u0, s, 4);
    memcpy(&u1, s + 4, 4);
    memcpy(&u2, s + 8, 4);
    const uint32_t sc_lo = u0 & 0x3f3f3f3f, m_lo = u1 & 0x3f3f3f3f;
    const uint32_t sc_hi = (u2 & 0x0f0f0f0f) | (u0 >> 6 & 0x03030303) << 4;
    const uint32_t m_hi = (u2 >> 4 & 0x0f0f0f0f) | (u1 >> 6 & 0x03030303) << 4;
    *sc = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)((uint64_t)sc_hi << 32 | sc_lo)));
    *m = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)((uint64_t)m_hi << 32 | m_lo)));
}

/* 16-bit lane k of v (both halves hold the same 8 values) in every lane. */
INLINE __m256i bcast16(__m256i v, int k) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)((2 * k + 1) << 8 | 2 * k)));
}

/* A Q4_K super-block ready to meet activation blocks. */
typedef struct wq4k {
    __m256i q[8];   /* sub-block j's 32 nibbles as bytes */
    __m256i sc[8];  /* sub-block j's scale in every 16-bit lane */
    __m256i mrep;   /* m0 m0 m1 m1 ... m7 m7: the min of each 16 values */
} wq4k;

INLINE void wq4k_load(const uint8_t *blk, wq4k *w) {
    __m128i sc, m;
    q4k_scales(blk + 4, &sc, &m);
    const __m256i scb = _mm256_broadcastsi128_si256(sc), lo4 = _mm256_set1_epi8(0x0f);
    UNROLL
    for (int c = 0; c < 4; c++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * c));
        w->q[2 * c] = _mm256_and_si256(v, lo4);
        w->q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4);
    }
    UNROLL
    for (int j = 0; j < 8; j++) w->sc[j] = bcast16(scb, j);
    w->mrep = _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m));
}

/* Partial sums of S and M for one super-block and one token's activation block. */
INLINE void wq4k_dot(const wq4k *w, const int8_t *xq, const int16_t *bsums, __m256i *S, __m256i *M) {
    __m256i s = _mm256_setzero_si256();
    UNROLL
    for (int j = 0; j < 8; j++) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(xq + 32 * j));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(w->q[j], x), w->sc[j]));
    }
    *S = s;
    *M = _mm256_madd_epi16(w->mrep, _mm256_loadu_si256((const __m256i *)bsums));
}

/* A Q6_K super-block ready to meet activation blocks. */
typedef struct wq6k {
    __m256i q[8];   /* values 32k..32k+31 as unsigned 6-bit bytes */
    __m256i sc[8];  /* the scales of those two sub-blocks of 16: 8 lanes each */
    __m256i sc16;   /* the 16 scales in order */
} wq6k;

INLINE void wq6k_load(const uint8_t *blk, wq6k *w) {
    const __m256i lo4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03);
    UNROLL
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
        /* the 2 high bits g of each value, at bits 4-5 */
        const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4);
        const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4);
        const __m256i h2 = _mm256_and_si256(hb, _mm256_set1_epi8(0x30));
        const __m256i h3 = _mm256_and_si256(_mm256_srli_epi16(hb, 2), _mm256_set1_epi8(0x30));
        w->q[4 * h] = _mm256_or_si256(_mm256_and_si256(l0, lo4), h0);
        w->q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, lo4), h1);
        w->q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), lo4), h2);
        w->q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), lo4), h3);
    }
    const __m128i s_lo = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(blk + 192)));
    const __m128i s_hi = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(blk + 200)));
    w->sc16 = _mm256_set_m128i(s_hi, s_lo);
    const __m256i a = _mm256_broadcastsi128_si256(s_lo), b = _mm256_broadcastsi128_si256(s_hi);
    UNROLL
    for (int k = 0; k < 8; k++) {
        /* scale 2k in the low half, 2k+1 in the high half */
        const int i = 2 * k % 8;
        const __m256i mask = _mm256_set_m128i(_mm_set1_epi16((short)((2 * i + 3) << 8 | (2 * i + 2))),
                                              _mm_set1_epi16((short)((2 * i + 1) << 8 | 2 * i)));
        w->sc[k] = _mm256_shuffle_epi8(k < 4 ? a : b, mask);
    }
}

INLINE __m256i wq6k_dot(const wq6k *w, const int8_t *xq, const int16_t *bsums) {
    __m256i s = _mm256_setzero_si256();
    UNROLL
    for (int k = 0; k < 8; k++) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(xq + 32 * k));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(w->q[k], x), w->sc[k]));
    }
    const __m256i corr = _mm256_madd_epi16(w->sc16, _mm256_loadu_si256((const __m256i *)bsums));
    return _mm256_sub_epi32(s, _mm256_slli_epi32(corr, 5));
}

/* One step of the output recurrence for 8 lanes: acc = fma(S, dw * dx, acc) (and the min term
 * for Q4_K: acc = fma(-M, dmin * dx, acc)). */
INLINE __m256 kq_step(__m256 acc, __m256i S, __m256 dw, __m256 dx) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(S), _mm256_mul_ps(dw, dx), acc);
}

/* ==== the quantized-type kernels: 8 (row, token) outputs per vector ====
 *
 * A call computes R rows x T tokens with R * T = 8: lane i is row i / T, token i % T. One
 * token uses 8 rows (R = 8); 8 tokens one row (R = 1); small batches 4 x 2 or 2 x 4, so that
 * each weight block is decoded once for T tokens and each activation block loaded once for R
 * rows. rows[] repeats the last real row past n_rows; those lanes are computed and dropped. */

/* 8 lanes from T consecutive 32-bit values at p (per-token data), repeated R times. */
INLINE __m256i tok_lanes(const void *p, const int T) {
    switch (T) {
    case 8: return _mm256_loadu_si256((const __m256i *)p);
    case 4: return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    case 2: {
        long long v;
        memcpy(&v, p, sizeof v);
        return _mm256_set1_epi64x(v);
    }
    default: {
        int v;
        memcpy(&v, p, sizeof v);
        return _mm256_set1_epi32(v);
    }
    }
}

/* The R half-precision values at rows[r] + off, r < R, in lanes 0..R-1. Gathered in a
 * register: a vector load of 16-bit values just stored would wait for the stores to retire,
 * which made the one-token kernels twice as slow. */
INLINE __m128i row_halves(const uint8_t *const rows[8], size_t off, const int R) {
#define H(r) (short)(R > (r) ? rd16(rows[r] + off) : 0)
    return _mm_set_epi16(H(7), H(6), H(5), H(4), H(3), H(2), H(1), H(0));
#undef H
}

/* 8 float lanes from the R halves in the low lanes of h (per-row scales), each repeated T
 * times. */
INLINE __m256 row_lanes(__m128i h, const int T) {
    if (T >= 2) h = _mm_unpacklo_epi16(h, h);
    if (T >= 4) h = _mm_unpacklo_epi32(h, h);
    if (T >= 8) h = _mm_unpacklo_epi64(h, h);
    return _mm256_cvtph_ps(h);
}

INLINE void store_pairs(__m256 acc, float *y, int64_t n_out, int64_t t0, int n_rows, const int T) {
    float v[8];
    _mm256_storeu_ps(v, acc);
    for (int i = 0; i < 8; i++)
        if (i / T < n_rows) y[(t0 + i % T) * n_out + i / T] = v[i];
}

/* Q8_0 (q4 false) or Q4_0 (q4 true) weights. */
INLINE void q8_0_pairs(const uint8_t *const rows[8], const matmul_input *in, int64_t t0,
                       float *y, int64_t n_out, int n_rows, const int R, const int T, const bool q4) {
    const int bb = q4 ? 18 : 34;
    const int64_t pad = in->n_tok_pad, nb = in->n_in / 32;
    const int8_t *xq[8];
    for (int t = 0; t < T; t++) xq[t] = in->q8_0.qs + (t0 + t) * in->n_in;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        wq w[8];
        __m256i s[8];
        UNROLL
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = rows[r] + bb * b;
            _mm_prefetch((const char *)blk + PREFETCH, _MM_HINT_T0);
            w[r] = wq_load(blk, q4);
        }
        UNROLL
        for (int t = 0; t < T; t++) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq[t] + 32 * b));
            UNROLL
            for (int r = 0; r < R; r++) s[r * T + t] = wq_dot(w[r], xv, q4);
        }
        __m256i S = q4 ? reduce8_16(s) : reduce8(s);
        const int64_t e = b * pad + t0;
        if (q4) S = _mm256_add_epi32(S, tok_lanes(in->q8_0.nsum8 + e, T));
        const __m256 dx = _mm256_castsi256_ps(tok_lanes(in->q8_0.d + e, T));
        acc = kq_step(acc, S, row_lanes(row_halves(rows, (size_t)(bb * b), R), T), dx);
    }
    store_pairs(acc, y, n_out, t0, n_rows, T);
}

/* Q4_K (k4 true) or Q6_K (k4 false) weights. */
INLINE void kq_pairs(const uint8_t *const rows[8], const matmul_input *in, int64_t t0, float *y,
                     int64_t n_out, int n_rows, const int R, const int T, const bool k4) {
    const int bb = k4 ? 144 : 210;
    const int64_t pad = in->n_tok_pad, n_in = in->n_in, nb = n_in / 256;
    const int8_t *xq[8];
    const int16_t *bs[8];
    for (int t = 0; t < T; t++) {
        xq[t] = in->q8_k.qs + (t0 + t) * n_in;
        bs[t] = in->q8_k.bsums + (t0 + t) * (n_in / 16);
    }
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i s[8], m[8];
        UNROLL
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = rows[r] + bb * b;
            _mm_prefetch((const char *)blk + PREFETCH, _MM_HINT_T0);
            if (k4) {
                wq4k w;
                wq4k_load(blk, &w);
                UNROLL
                for (int t = 0; t < T; t++)
                    wq4k_dot(&w, xq[t] + 256 * b, bs[t] + 16 * b, &s[r * T + t], &m[r * T + t]);
            } else {
                wq6k w;
                wq6k_load(blk, &w);
                UNROLL
                for (int t = 0; t < T; t++) s[r * T + t] = wq6k_dot(&w, xq[t] + 256 * b, bs[t] + 16 * b);
            }
        }
        const size_t off = (size_t)(bb * b);
        const __m256 dx = _mm256_castsi256_ps(tok_lanes(in->q8_k.d + b * pad + t0, T));
        acc = kq_step(acc, reduce8(s), row_lanes(row_halves(rows, off + (k4 ? 0 : 208), R), T), dx);
        if (k4)
            acc = kq_step(acc, _mm256_sub_epi32(_mm256_setzero_si256(), reduce8(m)),
                          row_lanes(row_halves(rows, off + 2, R), T), dx);
    }
    store_pairs(acc, y, n_out, t0, n_rows, T);
}

/* ==== row-range driver ==== */

typedef void (*pairs_fn)(const uint8_t *const rows[8], const matmul_input *in, int64_t t0,
                         float *y, int64_t n_out, int n_rows);

/* One compiled function per weight type and shape; [k] handles T = 1 << k tokens. */
#define PAIRS_SHAPE(name, kernel, flag, R, T)                                                  \
    static void name##_##R##x##T(const uint8_t *const rows[8], const matmul_input *in,        \
                                 int64_t t0, float *y, int64_t n_out, int n_rows) {           \
        kernel(rows, in, t0, y, n_out, n_rows, R, T, flag);                                   \
    }
#define PAIRS(name, kernel, flag)                                                              \
    PAIRS_SHAPE(name, kernel, flag, 8, 1)                                                      \
    PAIRS_SHAPE(name, kernel, flag, 4, 2)                                                      \
    PAIRS_SHAPE(name, kernel, flag, 2, 4)                                                      \
    PAIRS_SHAPE(name, kernel, flag, 1, 8)                                                      \
    static const pairs_fn name##_shapes[4] = {name##_8x1, name##_4x2, name##_2x4, name##_1x8};
PAIRS(q8_0, q8_0_pairs, false)
PAIRS(q4_0, q8_0_pairs, true)
PAIRS(q4_k, kq_pairs, true)
PAIRS(q6_k, kq_pairs, false)

/* Rows per block of the row loop: their weights stay in cache while every token group of the
 * batch passes over them. A multiple of every R. */
#define ROW_BLOCK 16

static void quant_rows(const pairs_fn shapes[4], const uint8_t *w, size_t row_bytes,
                       int64_t n_out, const matmul_input *in, float *y, int64_t r0, int64_t r1) {
    for (int64_t rb = r0; rb < r1; rb += ROW_BLOCK) {
        const int64_t re = rb + ROW_BLOCK < r1 ? rb + ROW_BLOCK : r1;
        for (int64_t t = 0; t < in->n_tok;) {
            /* the widest token group that fits what is left: 8, 4, 2 or 1 */
            const int k = in->n_tok - t >= 8 ? 3 : in->n_tok - t >= 4 ? 2 : in->n_tok - t >= 2 ? 1 : 0;
            const int T = 1 << k, R = 8 / T;
            for (int64_t r = rb; r < re; r += R) {
                const int n = re - r < R ? (int)(re - r) : R;
                const uint8_t *rows[8];
                for (int i = 0; i < R; i++) rows[i] = w + (size_t)(r + (i < n ? i : n - 1)) * row_bytes;
                shapes[k](rows, in, t, y + r, n_out, n);
            }
            t += T;
        }
    }
}

void matmul_avx2_rows(uint32_t type, const void *w, int64_t n_out, const matmul_input *in,
                      float *y, int64_t row_begin, int64_t row_end) {
    const size_t rb = qtype_row_size(type, (uint64_t)in->n_in);
    switch (type) {
    case QT_Q8_0: quant_rows(q8_0_shapes, w, rb, n_out, in, y, row_begin, row_end); break;
    case QT_Q4_0: quant_rows(q4_0_shapes, w, rb, n_out, in, y, row_begin, row_end); break;
    case QT_Q4_K: quant_rows(q4_k_shapes, w, rb, n_out, in, y, row_begin, row_end); break;
    case QT_Q6_K: quant_rows(q6_k_shapes, w, rb, n_out, in, y, row_begin, row_end); break;
    case QT_F32: float_rows(f32_tiles, w, rb, n_out, in, y, row_begin, row_end); break;
    case QT_F16: float_rows(f16_tiles, w, rb, n_out, in, y, row_begin, row_end); break;
    case QT_BF16: float_rows(bf16_tiles, w, rb, n_out, in, y, row_begin, row_end); break;
    }
}

#else /* built without AVX2: matmul_avx2_usable() is false, so nothing below is ever called */

bool matmul_avx2_usable(void) { return false; }
void matmul_avx2_quantize(matmul_input *in, unsigned form) {
    (void)in;
    (void)form;
}
void matmul_avx2_rows(uint32_t type, const void *w, int64_t n_out, const matmul_input *in,
                      float *y, int64_t row_begin, int64_t row_end) {
    (void)type, (void)w, (void)n_out, (void)in, (void)y, (void)row_begin, (void)row_end;
}

#endif
