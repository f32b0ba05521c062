/* AVX-512 kernels: the MATMUL_AVX512 backend (see matmul.h), which is the AVX2 backend with
 * faster products for Q8_0, Q4_0, Q4_K and Q6_K weights (any number of tokens) and for float
 * weights with 2 or more tokens. The Makefile compiles every *_avx512.c with AVX-512
 * F/BW/VL/DQ and VNNI enabled; nothing here runs unless matmul_avx512_usable() said the CPU has
 * those.
 *
 * Why: a one-token product reads every weight once and does little with it, so it should run at
 * the memory's speed; the AVX2 kernels could not keep up with it (about 3.3 cycles per 32-value
 * Q4_0 block, half of the read bandwidth of this development machine). Here 16 rows share each
 * activation load, a byte dot product of 4 values is one VNNI instruction (vpdpbusd: unsigned x
 * signed bytes into 32-bit sums, no intermediate saturation), and the cross-row reduction runs
 * on 512-bit vectors holding 4 rows each.
 *
 * Outputs are bit for bit those of the AVX2 kernels: every (row, token) output is the recurrence
 * documented in matmul_avx2.c, y = fma((float)S_b, dw_b * dx_b, y) over the blocks b in order
 * (Q4_K: then y = fma((float)-M_b, dmin_b * dx_b, y)), where S_b and M_b are exact integers.
 * Only how S_b is computed changes, and integer sums do not depend on their order. One-token
 * float products and matrices of fewer than 16 rows go to the AVX2 kernels.
 *
 * Batches: over each group of 16 rows the tokens go in groups of 4 (then 2, 1); each weight
 * block is decoded once per token group, and the group's weights come from memory once and
 * from L1/L2 for the later token groups.
 *
 * Lane order. Four rows' data sit in one 512-bit vector, row k of the four in 128-bit lane k.
 * After reduce4x4 a vector of 16 outputs holds row 4j + k in element 4k + j; the per-row scales
 * are gathered in the same order and the results put back in row order when stored. */
#include "tensor/matmul_kernels.h"

#include "tensor/cpu.h"
#include "tensor/qtype.h"
#include "tensor/repack.h"

#include <stdbool.h>
#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512DQ__) && defined(__AVX512VNNI__) && defined(__F16C__)
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

/* Rows per call of a one-token kernel: one output per lane of a 512-bit float vector. */
#define ROWS 16

/* How far ahead (bytes) each row stream is prefetched: 16 short streams read side by side,
 * which the hardware prefetchers follow poorly. */
#ifndef PREFETCH
#define PREFETCH 192
#endif
#ifndef PREFETCH_NEXT
#define PREFETCH_NEXT 1
#endif

bool matmul_avx512_usable(void) {
    return matmul_avx2_usable() && (cpu_features() & CPU_AVX512);
}

/* The 16 bytes at rows[i] + off for i = i0..i0+3, row i0 + k in 128-bit lane k. */
INLINE __m512i load4x16(const uint8_t *const rows[ROWS], int i0, size_t off) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(rows[i0] + off)));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rows[i0 + 1] + off)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rows[i0 + 2] + off)), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rows[i0 + 3] + off)), 3);
}

/* The 32 bytes at rows[i0] + off and rows[i0 + 1] + off, in the low and high 256-bit halves. */
INLINE __m512i load2x32(const uint8_t *const rows[ROWS], int i0, size_t off) {
    const __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(rows[i0] + off)));
    return _mm512_inserti64x4(v, _mm256_loadu_si256((const __m256i *)(rows[i0 + 1] + off)), 1);
}

/* Two vectors each holding 2 rows x 8 partial sums (row in the 256-bit half) -> one holding
 * 4 rows x 4 partial sums (a's rows in 128-bit lanes 0-1, b's in 2-3). */
INLINE __m512i fold2x8(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Two vectors each holding 1 row x 16 partial sums -> one holding 2 rows x 8 (a low half). */
INLINE __m512i fold1x16(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                            _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
}

/* p[j] holds rows 4j..4j+3, one per 128-bit lane, as 4 partial sums each. Returns the 16 row
 * totals, row 4j + k in element 4k + j. */
INLINE __m512i reduce4x4(const __m512i p[4]) {
    const __m512i u01 = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]),
                                         _mm512_unpackhi_epi32(p[0], p[1]));
    const __m512i u23 = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]),
                                         _mm512_unpackhi_epi32(p[2], p[3]));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(u01, u23), _mm512_unpackhi_epi64(u01, u23));
}

static uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The half-precision values at rows[i] + off as floats, in reduce4x4's order. Assembled in
 * general-purpose registers and moved over as four 64-bit words: far fewer vector instructions
 * than inserting 16 words one by one, and faster than a gather on the development machine. */
INLINE __m512 row_scales(const uint8_t *const rows[ROWS], size_t off) {
    uint64_t h[4];
    UNROLL
    for (int k = 0; k < 4; k++)
        h[k] = (uint64_t)rd16(rows[k] + off) | (uint64_t)rd16(rows[4 + k] + off) << 16 |
               (uint64_t)rd16(rows[8 + k] + off) << 32 | (uint64_t)rd16(rows[12 + k] + off) << 48;
    return _mm512_cvtph_ps(_mm256_setr_epi64x((long long)h[0], (long long)h[1], (long long)h[2],
                                              (long long)h[3]));
}

INLINE void prefetch_rows(const uint8_t *const rows[ROWS], size_t off) {
#if PREFETCH > 0
    UNROLL
    for (int i = 0; i < ROWS; i++) _mm_prefetch((const char *)rows[i] + off + PREFETCH, _MM_HINT_T0);
#else
    (void)rows, (void)off;
#endif
}

/* While block b of a group of rows is processed, the next group's share: its 16 rows are one
 * stretch of memory (next, 16 row sizes), fetched into L2 in as many equal slices as there are
 * blocks per row, so that it is in cache when the group starts. */
INLINE void prefetch_next(const uint8_t *next, size_t blk_bytes, int64_t b) {
#if PREFETCH_NEXT
    if (!next) return;
    const size_t slice = ROWS * blk_bytes;
    for (size_t o = (size_t)b * slice; o < (size_t)(b + 1) * slice; o += 64)
        _mm_prefetch((const char *)next + o, _MM_HINT_T1);
#else
    (void)next, (void)blk_bytes, (void)b;
#endif
}

/* Stores the outputs of acc (reduce4x4's order) to y[0..16) in row order, those in `keep`. */
INLINE void store_rows(__m512 acc, float *y, __mmask16 keep) {
    /* row i = 4j + k is element 4k + j */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_mask_storeu_ps(y, keep, _mm512_permutexvar_ps(order, acc));
}

/* acc = fma((float)S, dw * dx, acc) in every lane: the recurrence's step. */
INLINE __m512 step(__m512 acc, __m512i S, __m512 dw, float dx) {
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(S), _mm512_mul_ps(dw, _mm512_set1_ps(dx)), acc);
}

/* One call of a kernel: 16 rows (rows[i], consecutive rows of the matrix), tokens t0..t0+T-1
 * (T fixed per compiled kernel), outputs to y[(t0 + t) * n_out + i] for the rows in keep. The
 * next group's rows (next; NULL: none) and the rows' own next bytes are prefetched when pf:
 * only the first token group over the rows, for which they come from memory. */
typedef struct group {
    const uint8_t *rows[ROWS];
    const uint8_t *next;
    bool pf;
    int64_t t0, n_out;
    float *y;
    __mmask16 keep;
} group;

/* For block b of the group's rows (blk_bytes at byte off of each row), on the first token pass
 * (g->pf): the rows' bytes PREFETCH ahead, a cache line at a time, and the next group's slice. */
INLINE void prefetch_block(const group *g, size_t off, size_t blk_bytes, int64_t b) {
    if (!g->pf) return;
    for (size_t o = 0; o < blk_bytes; o += 64) prefetch_rows(g->rows, off + o);
    prefetch_next(g->next, blk_bytes, b);
}

/* ==== Q4_0 and Q8_0 weights x Q8_0 activations ==== */

/* The recurrence's step for T tokens and one block of Q8_0 activations (token t's scale and
 * -offset times its sum at index e + t, nsum in->q8_0's nsum8 or nsum128): S = (the sums in
 * p[t]) - offset * (the activation block's sum). */
INLINE void q8_0_steps(__m512 acc[4], __m512i p[4][4], __m512 dw, const matmul_input *in,
                       int64_t e, const int32_t *nsum, const int T) {
    UNROLL
    for (int t = 0; t < T; t++) {
        const __m512i S = _mm512_add_epi32(reduce4x4(p[t]), _mm512_set1_epi32(nsum[e + t]));
        acc[t] = step(acc[t], S, dw, in->q8_0.d[e + t]);
    }
}

/* Q4_0 (18-byte blocks: half d, 16 bytes of nibbles; byte i holds value i in its low nibble and
 * value i + 16 in its high one): S = sum n*x - 8 * sum x, n the unsigned nibble. */
INLINE void q4_0_tile(const group *g, const matmul_input *in, const int T) {
    const int64_t nb = in->n_in / 32, pad = in->n_tok_pad;
    const int8_t *xq[4];
    for (int t = 0; t < T; t++) xq[t] = in->q8_0.qs + (g->t0 + t) * in->n_in;
    const __m512i lo4 = _mm512_set1_epi8(0x0f);
    __m512 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const size_t off = (size_t)(18 * b);
        prefetch_block(g, off, 18, b);
        /* values 0-15 and 16-31 of each token's activation block in every 128-bit lane */
        __m512i xlo[4], xhi[4], p[4][4];
        UNROLL
        for (int t = 0; t < T; t++) {
            xlo[t] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(xq[t] + 32 * b)));
            xhi[t] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(xq[t] + 32 * b + 16)));
        }
        UNROLL
        for (int j = 0; j < 4; j++) {
            const __m512i v = load4x16(g->rows, 4 * j, off + 2);
            const __m512i n_lo = _mm512_and_si512(v, lo4);
            const __m512i n_hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
            UNROLL
            for (int t = 0; t < T; t++)
                p[t][j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), n_lo, xlo[t]),
                                              n_hi, xhi[t]);
        }
        q8_0_steps(acc, p, row_scales(g->rows, off), in, b * pad + g->t0, in->q8_0.nsum8, T);
    }
    for (int t = 0; t < T; t++) store_rows(acc[t], g->y + (g->t0 + t) * g->n_out, g->keep);
}

/* Q8_0 (34-byte blocks: half d, 32 signed bytes). vpdpbusd wants unsigned x signed bytes, so the
 * weights are offset to w + 128 (flipping the sign bit) and the offset taken back with the
 * activation block's sum: S = sum (w + 128) x - 128 * sum x. */
INLINE void q8_0_tile(const group *g, const matmul_input *in, const int T) {
    const int64_t nb = in->n_in / 32, pad = in->n_tok_pad;
    const int8_t *xq[4];
    for (int t = 0; t < T; t++) xq[t] = in->q8_0.qs + (g->t0 + t) * in->n_in;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const size_t off = (size_t)(34 * b);
        prefetch_block(g, off, 34, b);
        __m512i x[4], p[4][4];
        UNROLL
        for (int t = 0; t < T; t++)
            x[t] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(xq[t] + 32 * b)));
        UNROLL
        for (int j = 0; j < 4; j++) {
            const __m512i wa = _mm512_xor_si512(load2x32(g->rows, 4 * j, off + 2), flip);
            const __m512i wb = _mm512_xor_si512(load2x32(g->rows, 4 * j + 2, off + 2), flip);
            UNROLL
            for (int t = 0; t < T; t++)
                p[t][j] = fold2x8(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wa, x[t]),
                                  _mm512_dpbusd_epi32(_mm512_setzero_si512(), wb, x[t]));
        }
        q8_0_steps(acc, p, row_scales(g->rows, off), in, b * pad + g->t0, in->q8_0.nsum128, T);
    }
    for (int t = 0; t < T; t++) store_rows(acc[t], g->y + (g->t0 + t) * g->n_out, g->keep);
}

/* ==== Q4_K weights x Q8_K activations ====
 *
 * A 144-byte super-block: half d, half dmin, 12 bytes of 6-bit scales and mins for its 8
 * sub-blocks of 32, then 4 chunks of 32 bytes; chunk c holds sub-block 2c in its low nibbles and
 * 2c + 1 in its high ones. S = sum_j sc_j * sum_{i in j} n_i x_i, M = sum_j m_j * sum_{i in j} x_i.
 * A 512-bit load takes two chunks, so its low nibbles are sub-blocks (2c, 2c + 2) and its high
 * ones (2c + 1, 2c + 3), one per 256-bit half; the activations are arranged the same way once
 * per super-block. The byte products are added in pairs (maddubs: 2 * 15 * 127 fits 16 bits),
 * then multiplied by the sub-block's scale and added in 32 bits (vpdpwssd). */

/* Q4_K's 6-bit scales and mins of one super-block (its 12 scale bytes at s), 8 bytes each. */
INLINE void q4k_scale_bytes(const uint8_t *s, uint64_t *sc, uint64_t *m) {
    uint32_t u0, u1, u2;
    memcpy(&u0, s, 4);
    memcpy(&u1, s + 4, 4);
    memcpy(&u2, s + 8, 4);
    const uint32_t sc_lo = u0 & 0x3f3f3f3f, m_lo = u1 & 0x3f3f3f3f;
    const uint32_t sc_hi = (u2 & 0x0f0f0f0f) | (u0 >> 6 & 0x03030303) << 4;
    const uint32_t m_hi = (u2 >> 4 & 0x0f0f0f0f) | (u1 >> 6 & 0x03030303) << 4;
    *sc = (uint64_t)sc_hi << 32 | sc_lo;
    *m = (uint64_t)m_hi << 32 | m_lo;
}

/* The activation block's values arranged as the weight vectors: sub-blocks (a, a + 2) in the
 * two 256-bit halves. */
INLINE __m512i x_pair(const int8_t *xq, int a) {
    const __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(xq + 32 * a)));
    return _mm512_inserti64x4(v, _mm256_loadu_si256((const __m256i *)(xq + 32 * (a + 2))), 1);
}

/* One row's super-block for T tokens: s[t] = 16 partial sums of S for token t, where x[t][q] =
 * x_pair(token t's block, a) for a = 0, 1, 4, 5. The weights are unpacked once for all T. */
INLINE void q4k_row(const uint8_t *blk, const __m512i x[][4], uint64_t sc, __m512i *s, const int T) {
    const __m512i lo4 = _mm512_set1_epi8(0x0f);
    /* the 8 scales as 16-bit words in every 128-bit lane; sel[q] picks, per 256-bit half, the
     * scale of the sub-block that half of x[q] holds */
    const __m512i scw = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
#define SEL(lo, hi) _mm512_set_epi64(hi, hi, hi, hi, lo, lo, lo, lo)
    const __m512i sel[4] = {
        SEL(0x0100010001000100, 0x0504050405040504), SEL(0x0302030203020302, 0x0706070607060706),
        SEL(0x0908090809080908, 0x0d0c0d0c0d0c0d0c), SEL(0x0b0a0b0a0b0a0b0a, 0x0f0e0f0e0f0e0f0e),
    };
#undef SEL
    UNROLL
    for (int t = 0; t < T; t++) s[t] = _mm512_setzero_si512();
    UNROLL
    for (int h = 0; h < 2; h++) {
        const __m512i v = _mm512_loadu_si512((const void *)(blk + 16 + 64 * h));
        const __m512i n_lo = _mm512_and_si512(v, lo4);
        const __m512i n_hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
        const __m512i sc_lo = _mm512_shuffle_epi8(scw, sel[2 * h]);
        const __m512i sc_hi = _mm512_shuffle_epi8(scw, sel[2 * h + 1]);
        UNROLL
        for (int t = 0; t < T; t++) {
            s[t] = _mm512_dpwssd_epi32(s[t], _mm512_maddubs_epi16(n_lo, x[t][2 * h]), sc_lo);
            s[t] = _mm512_dpwssd_epi32(s[t], _mm512_maddubs_epi16(n_hi, x[t][2 * h + 1]), sc_hi);
        }
    }
}

/* 16 rows x T tokens. Per super-block and token: S from the 16 rows' nibbles (q4k_row), M from
 * the rows' mins and the activation's 8 sub-block sums. */
INLINE void q4_k_tile(const group *g, const matmul_input *in, const int T) {
    const uint8_t *const *rows = g->rows;
    const int64_t nb = in->n_in / 256, pad = in->n_tok_pad;
    __m512 acc[4];
    UNROLL
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const size_t off = (size_t)(144 * b);
        prefetch_block(g, off, 144, b);
        __m512i x[4][4], xsum4[4];
        UNROLL
        for (int t = 0; t < T; t++) {
            const int8_t *xq = in->q8_k.qs + (g->t0 + t) * in->n_in + 256 * b;
            const int16_t *bs = in->q8_k.bsums + (g->t0 + t) * (in->n_in / 16) + 16 * b;
            x[t][0] = x_pair(xq, 0);
            x[t][1] = x_pair(xq, 1);
            x[t][2] = x_pair(xq, 4);
            x[t][3] = x_pair(xq, 5);
            /* the 8 sub-block sums of x (each the sum of two 16-value sums), in every 128-bit
             * lane */
            const __m256i bsv = _mm256_loadu_si256((const __m256i *)bs);
            const __m128i xsum = _mm256_castsi256_si128(_mm256_permute4x64_epi64(
                _mm256_hadd_epi16(bsv, _mm256_setzero_si256()), _MM_SHUFFLE(3, 1, 2, 0)));
            xsum4[t] = _mm512_broadcast_i32x4(xsum);
        }
        __m512i p[4][4], mp[4][4];
        UNROLL
        for (int j = 0; j < 4; j++) {
            __m512i s[4][4]; /* [row k][token t] */
            uint64_t mins[4];
            UNROLL
            for (int k = 0; k < 4; k++) {
                const uint8_t *blk = rows[4 * j + k] + off;
                uint64_t sc;
                q4k_scale_bytes(blk + 4, &sc, &mins[k]);
                q4k_row(blk, x, sc, s[k], T);
            }
            /* the 4 rows' mins, row k in 128-bit lane k, times the sub-block sums of x */
            const __m256i m01 = _mm256_cvtepu8_epi16(_mm_set_epi64x((long long)mins[1], (long long)mins[0]));
            const __m256i m23 = _mm256_cvtepu8_epi16(_mm_set_epi64x((long long)mins[3], (long long)mins[2]));
            const __m512i mv = _mm512_inserti64x4(_mm512_castsi256_si512(m01), m23, 1);
            UNROLL
            for (int t = 0; t < T; t++) {
                p[t][j] = fold2x8(fold1x16(s[0][t], s[1][t]), fold1x16(s[2][t], s[3][t]));
                mp[t][j] = _mm512_madd_epi16(mv, xsum4[t]);
            }
        }
        const __m512 dw = row_scales(rows, off), dmin = row_scales(rows, off + 2);
        UNROLL
        for (int t = 0; t < T; t++) {
            const float dx = in->q8_k.d[b * pad + g->t0 + t];
            acc[t] = step(acc[t], reduce4x4(p[t]), dw, dx);
            acc[t] = step(acc[t], _mm512_sub_epi32(_mm512_setzero_si512(), reduce4x4(mp[t])), dmin, dx);
        }
    }
    for (int t = 0; t < T; t++) store_rows(acc[t], g->y + (g->t0 + t) * g->n_out, g->keep);
}

/* ==== Q6_K weights x Q8_K activations ====
 *
 * A 210-byte super-block: 128 bytes of low nibbles (ql), 64 bytes of 2-bit high parts (qh), 16
 * signed 8-bit scales (one per sub-block of 16 values), half d. Values 128h + 0..63 take the low
 * nibbles of ql[64h .. 64h + 63] and 128h + 64..127 the high ones; the high parts of value
 * 128h + 32c + i (c = 0..3) are bits 2c, 2c + 1 of qh[32h + i]. So one 64-byte load of ql and
 * the 32 qh bytes (in both 256-bit halves, the high half shifted by 2 bits) give 64 consecutive
 * values twice: q = 6-bit unsigned. S = sum_s sc_s * (sum_{i in s} q_i x_i - 32 * sum_{i in s}
 * x_i), exactly as matmul_avx2.c computes it. */

/* vpermw indices: vector m of a super-block holds sub-blocks 4m..4m+3, one per 128-bit lane;
 * lane k takes scale word 4m + k in all 8 words. */
INLINE __m512i q6k_sel(int m) {
    return _mm512_setr_epi64(0x0001000100010001LL * (4 * m), 0x0001000100010001LL * (4 * m),
                             0x0001000100010001LL * (4 * m + 1), 0x0001000100010001LL * (4 * m + 1),
                             0x0001000100010001LL * (4 * m + 2), 0x0001000100010001LL * (4 * m + 2),
                             0x0001000100010001LL * (4 * m + 3), 0x0001000100010001LL * (4 * m + 3));
}

/* One row's super-block for T tokens: s[t] = 16 partial sums of S for token t (xq[t], bs[t]:
 * its activation block and 16-value sums). */
INLINE void q6k_row(const uint8_t *blk, const int8_t *const xq[], const int16_t *const bs[], __m512i *s,
                    const int T) {
    const __m512i lo4 = _mm512_set1_epi8(0x0f), hi2 = _mm512_set1_epi8(0x30);
    const __m512i by2 = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 192)));
    const __m512i sc512 = _mm512_castsi256_si512(sc16);
    UNROLL
    for (int t = 0; t < T; t++) {
        /* the correction 32 * sum_s sc_s * bsum_s, as 8 partial sums */
        const __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)bs[t]));
        s[t] = _mm512_castsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5)));
        s[t] = _mm512_inserti64x4(s[t], _mm256_setzero_si256(), 1);
    }
    UNROLL
    for (int h = 0; h < 2; h++) {
        const __m512i v = _mm512_loadu_si512((const void *)(blk + 64 * h));
        const __m512i hb = _mm512_srlv_epi64(
            _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h))), by2);
        const __m512i q[2] = {
            _mm512_or_si512(_mm512_and_si512(v, lo4), _mm512_and_si512(_mm512_slli_epi16(hb, 4), hi2)),
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), lo4), _mm512_and_si512(hb, hi2)),
        };
        UNROLL
        for (int c = 0; c < 2; c++) {
            const int m = 2 * h + c;
            const __m512i sc = _mm512_permutexvar_epi16(q6k_sel(m), sc512);
            UNROLL
            for (int t = 0; t < T; t++)
                s[t] = _mm512_dpwssd_epi32(
                    s[t], _mm512_maddubs_epi16(q[c], _mm512_loadu_si512((const void *)(xq[t] + 64 * m))), sc);
        }
    }
}

INLINE void q6_k_tile(const group *g, const matmul_input *in, const int T) {
    const uint8_t *const *rows = g->rows;
    const int64_t nb = in->n_in / 256, pad = in->n_tok_pad;
    __m512 acc[4];
    UNROLL
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const size_t off = (size_t)(210 * b);
        prefetch_block(g, off, 210, b);
        const int8_t *xq[4];
        const int16_t *bs[4];
        UNROLL
        for (int t = 0; t < T; t++) {
            xq[t] = in->q8_k.qs + (g->t0 + t) * in->n_in + 256 * b;
            bs[t] = in->q8_k.bsums + (g->t0 + t) * (in->n_in / 16) + 16 * b;
        }
        __m512i p[4][4];
        UNROLL
        for (int j = 0; j < 4; j++) {
            __m512i s[4][4]; /* [row k][token t] */
            UNROLL
            for (int k = 0; k < 4; k++) q6k_row(rows[4 * j + k] + off, xq, bs, s[k], T);
            UNROLL
            for (int t = 0; t < T; t++)
                p[t][j] = fold2x8(fold1x16(s[0][t], s[1][t]), fold1x16(s[2][t], s[3][t]));
        }
        const __m512 dw = row_scales(rows, off + 208);
        UNROLL
        for (int t = 0; t < T; t++) acc[t] = step(acc[t], reduce4x4(p[t]), dw, in->q8_k.d[b * pad + g->t0 + t]);
    }
    for (int t = 0; t < T; t++) store_rows(acc[t], g->y + (g->t0 + t) * g->n_out, g->keep);
}

/* ==== F32, F16 and BF16 weights, two or more tokens ====
 *
 * The AVX2 float tiles keep one 8-lane accumulator per output, element i of the row in lane
 * i % 8, fused multiply-adds in order, summed by hsum8's order at the end. Here one 512-bit
 * register holds two such accumulators: the same weight row's output for tokens t and t + 1
 * (weights in both 256-bit halves, the two tokens' activations one per half), so every lane
 * does exactly what the AVX2 lane does, and the outputs are the same bit for bit, with half
 * the multiply-add instructions and 4 rows x 8 tokens in registers (24 of 32). */

/* 8 weights at element i of a row as floats, in both 256-bit halves. */
INLINE __m512 wload8x2(uint32_t type, const uint8_t *row, int64_t i) {
    switch (type) {
    case QT_F16:
        return _mm512_cvtph_ps(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(row + 2 * i))));
    case QT_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(row + 2 * i)))), 16));
    default: return _mm512_broadcast_f32x8(_mm256_loadu_ps((const float *)(row + 4 * i)));
    }
}

/* matmul_avx2.c's hsum8 (lanes k += k+4, k += k+2, then lane 0 + lane 1) of each half. */
INLINE void hsum8x2(__m512 v, float *lo, float *hi) {
    const __m256 h[2] = {_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)};
    float *out[2] = {lo, hi};
    UNROLL
    for (int k = 0; k < 2; k++) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(h[k]), _mm256_extractf128_ps(h[k], 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        *out[k] = _mm_cvtss_f32(s);
    }
}

/* Rows r..r+3 x tokens t..t+2P-1. The next tile's 4 rows (next; NULL: none) are fetched into L2
 * in slices as in the AVX2 one-token tile. */
INLINE void float_tile(uint32_t type, const uint8_t *w, size_t row_bytes, const float *x,
                       int64_t n_in, float *y, int64_t n_out, int64_t r, int64_t t, const int P,
                       const uint8_t *next) {
    enum { R = 4 };
    const size_t es = type == QT_F32 ? 4 : 2;
    const int64_t full = n_in & ~(int64_t)7;
    __m512 acc[R][4];
    UNROLL
    for (int i = 0; i < R; i++)
        UNROLL
        for (int j = 0; j < P; j++) acc[i][j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < full; k += 8) {
        if (next)
            for (size_t o = (size_t)k * R * es; o < (size_t)(k + 8) * R * es; o += 64)
                _mm_prefetch((const char *)next + o, _MM_HINT_T1);
        __m512 wv[R];
        UNROLL
        for (int i = 0; i < R; i++) wv[i] = wload8x2(type, w + (size_t)(r + i) * row_bytes, k);
        UNROLL
        for (int j = 0; j < P; j++) {
            const float *x0 = x + (t + 2 * j) * n_in + k;
            const __m512 xv = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(x0)),
                                                 _mm256_loadu_ps(x0 + n_in), 1);
            UNROLL
            for (int i = 0; i < R; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    if (full < n_in) { /* the last n_in % 8 elements, zero-padded, as the AVX2 tiles do */
        const size_t n = (size_t)(n_in - full);
        for (int i = 0; i < R; i++) {
            uint8_t raw[32] = {0};
            memcpy(raw, w + (size_t)(r + i) * row_bytes + es * (size_t)full, es * n);
            const __m512 wv = wload8x2(type, raw, 0);
            for (int j = 0; j < P; j++) {
                float xt[16] = {0};
                memcpy(xt, x + (t + 2 * j) * n_in + full, sizeof(float) * n);
                memcpy(xt + 8, x + (t + 2 * j + 1) * n_in + full, sizeof(float) * n);
                acc[i][j] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xt), acc[i][j]);
            }
        }
    }
    UNROLL
    for (int i = 0; i < R; i++)
        UNROLL
        for (int j = 0; j < P; j++)
            hsum8x2(acc[i][j], &y[(t + 2 * j) * n_out + r + i], &y[(t + 2 * j + 1) * n_out + r + i]);
}

typedef void (*float_tile_fn)(const uint8_t *w, size_t row_bytes, const float *x, int64_t n_in,
                              float *y, int64_t n_out, int64_t r, int64_t t, const uint8_t *next);

/* [k]: 2 << k tokens (2, 4, 8), per weight type. */
#define FLOAT_TILES(name, type)                                                                  \
    static void name##_2(const uint8_t *w, size_t rb, const float *x, int64_t n_in, float *y,    \
                         int64_t n_out, int64_t r, int64_t t, const uint8_t *next) {              \
        float_tile(type, w, rb, x, n_in, y, n_out, r, t, 1, next);                               \
    }                                                                                             \
    static void name##_4(const uint8_t *w, size_t rb, const float *x, int64_t n_in, float *y,    \
                         int64_t n_out, int64_t r, int64_t t, const uint8_t *next) {              \
        float_tile(type, w, rb, x, n_in, y, n_out, r, t, 2, next);                               \
    }                                                                                             \
    static void name##_8(const uint8_t *w, size_t rb, const float *x, int64_t n_in, float *y,    \
                         int64_t n_out, int64_t r, int64_t t, const uint8_t *next) {              \
        float_tile(type, w, rb, x, n_in, y, n_out, r, t, 4, next);                               \
    }                                                                                             \
    static const float_tile_fn name##_tiles[3] = {name##_2, name##_4, name##_8};
FLOAT_TILES(f32, QT_F32)
FLOAT_TILES(f16, QT_F16)
FLOAT_TILES(bf16, QT_BF16)

/* Rows r0..r1 in tiles of 4 rows; over each, the tokens in groups of 8, 4 and 2 (the first group
 * reads the rows from memory, the others from cache). The rows left over (fewer than 4) and a
 * last odd token go to the AVX2 kernels, which compute them the same way. */
static void float_rows(const float_tile_fn tiles[3], uint32_t type, const uint8_t *w, size_t rb,
                       int64_t n_out, const matmul_input *in, float *y, int64_t r0, int64_t r1) {
    const int64_t n_in = in->n_in, n_pairs = in->n_tok / 2 * 2;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint8_t *next = r + 8 <= n_out ? w + (size_t)(r + 4) * rb : NULL;
        for (int64_t t = 0; t < n_pairs;) {
            const int64_t left = n_pairs - t;
            const int k = left >= 8 ? 2 : left >= 4 ? 1 : 0;
            tiles[k](w, rb, in->x, n_in, y, n_out, r, t, t == 0 ? next : NULL);
            t += 2 << k;
        }
    }
    if (r < r1) {
        /* all tokens of the last rows */
        matmul_avx2_rows(type, w, n_out, in, y, r, r1);
    }
    if (n_pairs < in->n_tok && r0 < r) {
        /* the last token of the rows done above, as a one-token product */
        matmul_input one = *in;
        one.x = in->x + n_pairs * n_in;
        one.n_tok = 1;
        matmul_avx2_rows(type, w, n_out, &one, y + n_pairs * n_out, r0, r);
    }
}

/* ==== packed matrices (repack.h) ====
 *
 * A group's 16 rows are one stream; each 64-byte chunk of a block holds 4 quant bytes of every
 * row, so one vpdpbusd with 4 activation bytes broadcast gives each row's partial sum in its own
 * lane: no cross-lane reduction, and the scales load as one vector in row order. The sums are
 * the same integers as the unpacked kernels', so the outputs are bit for bit theirs. */

/* How far ahead (bytes) a packed group's stream is prefetched. */
#ifndef PACKED_AHEAD
#define PACKED_AHEAD 16384
#endif
#ifndef PACKED_HINT
#define PACKED_HINT _MM_HINT_T0
#endif

/* The 4 activation bytes at p in every 32-bit lane. */
INLINE __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
}

/* A packed group: its first byte, and where its outputs go (rows in keep). */
typedef struct pgroup {
    const uint8_t *q;
    bool pf;
    int64_t t0, n_out;
    float *y;
    __mmask16 keep;
} pgroup;

/* The `bytes` from p on, `ahead` bytes further on, towards the cache (PACKED_HINT). */
INLINE void prefetch_packed(const uint8_t *p, int bytes, size_t ahead) {
#if PREFETCH > 0
    for (int l = 0; l < bytes; l += 64) _mm_prefetch((const char *)p + l + ahead, PACKED_HINT);
#else
    (void)p, (void)bytes, (void)ahead;
#endif
}

/* The T tokens' outputs of a packed group (row order: lane r is row r), the rows in keep. */
INLINE void store_packed(const pgroup *g, const __m512 acc[], const int T) {
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(g->y + (g->t0 + t) * g->n_out, g->keep, acc[t]);
}

/* T tokens over one packed group. qb: quant bytes per row and block (Q4_0 16, Q8_0 32), so that
 * w[k] below always multiplies activation bytes 4k..4k+3 of the block. */
INLINE void packed_tile(const pgroup *g, const matmul_input *in, const int T, const int qb) {
    const int64_t nb = in->n_in / 32, pad = in->n_tok_pad;
    const int32_t *nsum = qb == 16 ? in->q8_0.nsum8 : in->q8_0.nsum128; /* S -= (8 or 128) * sum x */
    const int C = T >= 4 ? 1 : 4 / T;
    const int8_t *xq[8];
    __m512 acc[8];
    for (int t = 0; t < T; t++) {
        xq[t] = in->q8_0.qs + (g->t0 + t) * in->n_in;
        acc[t] = _mm512_setzero_ps();
    }
    const __m512i lo4 = _mm512_set1_epi8(0x0f);
    for (int64_t b = 0; b < nb; b++) {
        /* block pairs: both blocks' scales (64 bytes), then their quants */
        const uint8_t *pair = g->q + (size_t)(b / 2) * (64 + 2 * ROWS * (size_t)qb);
        const uint8_t *scales = pair + 32 * (b & 1), *q = pair + 64 + (size_t)(b & 1) * ROWS * (size_t)qb;
        if (g->pf && !(b & 1)) prefetch_packed(pair, 64 + 2 * ROWS * qb, PACKED_AHEAD);
        __m512i w[8];
        if (qb == 16) {
            UNROLL
            for (int k = 0; k < 4; k++) {
                const __m512i v = _mm512_loadu_si512(q + 64 * k);
                w[k] = _mm512_and_si512(v, lo4);                        /* values 4k.. */
                w[4 + k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4); /* values 16+4k.. */
            }
        } else {
            UNROLL
            for (int k = 0; k < 8; k++) w[k] = _mm512_loadu_si512(q + 64 * k);
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)scales));
        /* k outermost, so that each token's chain of vpdpbusd has the other tokens' between its
         * links; C chains per token keep at least 4 in flight (integer sums: any order is exact) */
        __m512i p[8][4];
        UNROLL
        for (int t = 0; t < T; t++) {
            p[t][0] = _mm512_set1_epi32(nsum[b * pad + g->t0 + t]); /* the offsets, taken back */
            UNROLL
            for (int c = 1; c < C; c++) p[t][c] = _mm512_setzero_si512();
        }
        UNROLL
        for (int k = 0; k < 8; k++) {
            UNROLL
            for (int t = 0; t < T; t++)
                p[t][k % C] = _mm512_dpbusd_epi32(p[t][k % C], w[k], bcast4(xq[t] + 32 * b + 4 * k));
        }
        UNROLL
        for (int t = 0; t < T; t++) {
            __m512i S = p[t][0];
            UNROLL
            for (int c = 1; c < C; c++) S = _mm512_add_epi32(S, p[t][c]);
            acc[t] = step(acc[t], S, dw, in->q8_0.d[b * pad + g->t0 + t]);
        }
    }
    store_packed(g, acc, T);
}

/* The T tokens' Q8_K activations (quants and 16-value sums) from g->t0 on, and zeroed
 * accumulators: the start of a packed K-type tile. */
INLINE void q8k_tokens(const pgroup *g, const matmul_input *in, const int T, const int8_t *xq[],
                       const int16_t *bs[], __m512 acc[]) {
    for (int t = 0; t < T; t++) {
        xq[t] = in->q8_k.qs + (g->t0 + t) * in->n_in;
        bs[t] = in->q8_k.bsums + (g->t0 + t) * (in->n_in / 16);
        acc[t] = _mm512_setzero_ps();
    }
}

/* Packed Q4_K (repack.h): per super-block, a group's d, dmin, scales and mins as vectors in row
 * order, then 32 chunks of 4 nibble bytes per row. Each 16-value half of a sub-block is 4
 * vpdpbusd from zero: |p| <= 16 * 15 * 127 = 30480 fits 16 bits, so S += p * sc is one vpdpwssd
 * against the scale zero-extended to 32 bits (p's high 16 bits, its sign, meet the zero). M is
 * one vpdpwssd per sub-block: the min as a pair of 16-bit words against the pair of the token's
 * two 16-value sums of that sub-block. The scale vectors are made once per super-block for the
 * T tokens. */
INLINE void q4_kp_tile(const pgroup *g, const matmul_input *in, const int T) {
    enum { BLK = 2368, DMIN = 32, SC = 64, MIN = 192, Q = 320 }; /* repack.h's layout */
    const int64_t nb = in->n_in / 256, pad = in->n_tok_pad;
    const int8_t *xq[8];
    const int16_t *bs[8];
    __m512 acc[8];
    q8k_tokens(g, in, T, xq, bs, acc);
    const __m512i lo4 = _mm512_set1_epi8(0x0f);
    /* vpshufb of 16 bytes (one per row) broadcast to every 128-bit lane: row r's byte
     * zero-extended twice, as the 16-bit words of lane r */
    const __m512i pair = _mm512_setr_epi32(0x80008000, 0x80018001, 0x80028002, 0x80038003,
                                           0x80048004, 0x80058005, 0x80068006, 0x80078007,
                                           0x80088008, 0x80098009, 0x800a800a, 0x800b800b,
                                           0x800c800c, 0x800d800d, 0x800e800e, 0x800f800f);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = g->q + (size_t)b * BLK;
        /* several tokens: only the next super-block, as a prefetch PACKED_AHEAD into L1 evicts
         * the tokens' activations there (faster batches and prompts, interleaved runs) */
        if (g->pf) prefetch_packed(p, BLK, T == 1 ? PACKED_AHEAD : BLK);
        __m512i S[8], M[8];
        UNROLL
        for (int t = 0; t < T; t++) S[t] = M[t] = _mm512_setzero_si512();
        UNROLL
        for (int c = 0; c < 4; c++) {
            const __m512i sc_lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + SC + 32 * c)));
            const __m512i sc_hi = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + SC + 32 * c + 16)));
            UNROLL
            for (int h = 0; h < 2; h++) {
                /* chunks 8c + 4h + k: values 64c + 16h + 4k.. (low nibbles) and 32 further */
                __m512i wl[4], wh[4];
                UNROLL
                for (int k = 0; k < 4; k++) {
                    const __m512i v = _mm512_loadu_si512(p + Q + 64 * (8 * c + 4 * h + k));
                    wl[k] = _mm512_and_si512(v, lo4);
                    wh[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
                }
                UNROLL
                for (int t = 0; t < T; t++) {
                    const int8_t *x = xq[t] + 256 * b + 64 * c + 16 * h;
                    __m512i pl = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wl[0], bcast4(x));
                    __m512i ph = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wh[0], bcast4(x + 32));
                    UNROLL
                    for (int k = 1; k < 4; k++) {
                        pl = _mm512_dpbusd_epi32(pl, wl[k], bcast4(x + 4 * k));
                        ph = _mm512_dpbusd_epi32(ph, wh[k], bcast4(x + 32 + 4 * k));
                    }
                    S[t] = _mm512_dpwssd_epi32(S[t], pl, sc_lo);
                    S[t] = _mm512_dpwssd_epi32(S[t], ph, sc_hi);
                }
            }
        }
        UNROLL
        for (int j = 0; j < 8; j++) {
            const __m512i m = _mm512_shuffle_epi8(
                _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(p + MIN + 16 * j))), pair);
            UNROLL
            for (int t = 0; t < T; t++) M[t] = _mm512_dpwssd_epi32(M[t], m, bcast4((const int8_t *)(bs[t] + 16 * b + 2 * j)));
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + DMIN)));
        UNROLL
        for (int t = 0; t < T; t++) {
            const float dx = in->q8_k.d[b * pad + g->t0 + t];
            acc[t] = step(acc[t], S[t], dw, dx);
            acc[t] = step(acc[t], _mm512_sub_epi32(_mm512_setzero_si512(), M[t]), dmin, dx);
        }
    }
    store_packed(g, acc, T);
}

/* Packed Q6_K (repack.h): per super-block, a group's d, its scales as (2k, 2k + 1) pairs per
 * row, then the rows' ql (32 chunks) and qh (16 chunks) interleaved 4 bytes at a time. The
 * chunks of ql bytes 64h + 4m.. and 64h + 32 + 4m.. and of qh bytes 32h + 4m.. give values
 * 128h + 32c + 4m.. (c = 0..3) as whole 6-bit bytes q, and 4 vpdpbusd of those the sum P_s of
 * sub-block s = 8h + 2c + m / 4. |P_s| <= 16 * 63 * 127 needs 17 bits, so it is multiplied by
 * sc_s in 32 bits (vpmulld). S = sum_s sc_s * P_s - 32 * sum_s sc_s * bsum_s: the same integer
 * as matmul_avx2.c's sum_s sc_s * (P_s - 32 * bsum_s); the second sum takes one vpdpwssd per
 * scale pair against the token's pair of 16-value sums. */
INLINE void q6_kp_tile(const pgroup *g, const matmul_input *in, const int T) {
    enum { BLK = 3392, SC = 64, QL = 320, QH = 2368 }; /* repack.h's layout */
    const int64_t nb = in->n_in / 256, pad = in->n_tok_pad;
    const int8_t *xq[8];
    const int16_t *bs[8];
    __m512 acc[8];
    q8k_tokens(g, in, T, xq, bs, acc);
    const __m512i lo4 = _mm512_set1_epi8(0x0f), hi2 = _mm512_set1_epi8(0x30);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = g->q + (size_t)b * BLK;
        if (g->pf) prefetch_packed(p, BLK, T == 1 ? PACKED_AHEAD : BLK); /* as for Q4_K */
        __m512i S[8], C[8];
        UNROLL
        for (int t = 0; t < T; t++) S[t] = C[t] = _mm512_setzero_si512();
        UNROLL
        for (int h = 0; h < 2; h++)
            UNROLL
            for (int mh = 0; mh < 2; mh++)
                UNROLL
                for (int c = 0; c < 4; c++) {
                    /* sub-block 8h + 2c + mh: word mh of each row's scale pair 4h + c */
                    const __m512i pr = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(p + SC + 32 * (4 * h + c))));
                    const __m512i sc = mh ? _mm512_srai_epi32(pr, 16) : _mm512_srai_epi32(_mm512_slli_epi32(pr, 16), 16);
                    /* q[k]: values 128h + 32c + 16mh + 4k.. of each row; ql's low nibbles for
                     * c = 0, 1, high ones for 2, 3; qh's bits 2c, 2c + 1 moved to bits 4, 5 */
                    __m512i q[4];
                    UNROLL
                    for (int k = 0; k < 4; k++) {
                        const int m = 4 * mh + k;
                        const __m512i l = _mm512_loadu_si512(p + QL + 64 * (16 * h + 8 * (c & 1) + m));
                        const __m512i hb = _mm512_loadu_si512(p + QH + 64 * (8 * h + m));
                        const __m512i hs = c == 0 ? _mm512_slli_epi16(hb, 4) : c == 1 ? _mm512_slli_epi16(hb, 2)
                                           : c == 2 ? hb : _mm512_srli_epi16(hb, 2);
                        /* (l & lo4) | (hs & hi2): vpternlogd's (A & C) | B is 0xEC */
                        q[k] = _mm512_ternarylogic_epi32(c < 2 ? l : _mm512_srli_epi16(l, 4),
                                                         _mm512_and_si512(hs, hi2), lo4, 0xEC);
                    }
                    UNROLL
                    for (int t = 0; t < T; t++) {
                        const int8_t *x = xq[t] + 256 * b + 128 * h + 32 * c + 16 * mh;
                        __m512i P = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0], bcast4(x));
                        UNROLL
                        for (int k = 1; k < 4; k++) P = _mm512_dpbusd_epi32(P, q[k], bcast4(x + 4 * k));
                        S[t] = _mm512_add_epi32(S[t], _mm512_mullo_epi32(P, sc));
                    }
                }
        UNROLL
        for (int k = 0; k < 8; k++) {
            const __m512i pr = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(p + SC + 32 * k)));
            UNROLL
            for (int t = 0; t < T; t++)
                C[t] = _mm512_dpwssd_epi32(C[t], pr, bcast4((const int8_t *)(bs[t] + 16 * b + 2 * k)));
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        UNROLL
        for (int t = 0; t < T; t++)
            acc[t] = step(acc[t], _mm512_sub_epi32(S[t], _mm512_slli_epi32(C[t], 5)), dw, in->q8_k.d[b * pad + g->t0 + t]);
    }
    store_packed(g, acc, T);
}

INLINE void q4_0p_tile(const pgroup *g, const matmul_input *in, const int T) { packed_tile(g, in, T, 16); }
INLINE void q8_0p_tile(const pgroup *g, const matmul_input *in, const int T) { packed_tile(g, in, T, 32); }

/* Packed F16 and BF16 (repack.h): a 32-byte load is a row pair's 8 values, converted to one
 * 512-bit vector (row 2j in the low half, 2j + 1 in the high), against the token's 8 floats in
 * both halves: each half does what the AVX2 lane set does for one row (matmul_avx2.c: element i
 * fused-multiply-added into lane i % 8, then k += k+4, k += k+2, lane 0 + lane 1), so the
 * outputs are the AVX2 kernels' bit for bit. Up to 2 tokens per pass: 16 accumulators. */
INLINE __m512 pair_load(const uint8_t *p, bool bf16) {
    const __m256i h = _mm256_loadu_si256((const __m256i *)p);
    if (!bf16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Lane 0 of each 256-bit half: that half's 8 lanes summed in matmul_avx2.c's hsum8 order. */
INLINE __m512 fold_halves(__m512 v) {
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1))); /* k += k+4 */
    v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));      /* k += k+2 */
    return _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));   /* 0 + 1 */
}

INLINE void fpacked_tile(const pgroup *g, const matmul_input *in, const int T, const bool bf16) {
    const int64_t n_in = in->n_in;
    const float *x[2];
    __m512 acc[8][2];
    for (int t = 0; t < T; t++) {
        x[t] = in->x + (g->t0 + t) * n_in;
        UNROLL
        for (int j = 0; j < 8; j++) acc[j][t] = _mm512_setzero_ps();
    }
    for (int64_t c = 0; c < n_in; c += 8) {
        const uint8_t *p = g->q + (size_t)c * ROWS * 2;
        if (g->pf) prefetch_packed(p, ROWS * 16, PACKED_AHEAD);
        __m512 xv[2];
        for (int t = 0; t < T; t++) xv[t] = _mm512_broadcast_f32x8(_mm256_loadu_ps(x[t] + c));
        UNROLL
        for (int j = 0; j < 8; j++) {
            const __m512 w = pair_load(p + 32 * j, bf16);
            for (int t = 0; t < T; t++) acc[j][t] = _mm512_fmadd_ps(w, xv[t], acc[j][t]);
        }
    }
    for (int t = 0; t < T; t++) {
        float out[ROWS], lanes[16];
        for (int j = 0; j < 8; j++) {
            _mm512_storeu_ps(lanes, fold_halves(acc[j][t]));
            out[2 * j] = lanes[0];
            out[2 * j + 1] = lanes[8];
        }
        _mm512_mask_storeu_ps(g->y + (g->t0 + t) * g->n_out, g->keep, _mm512_loadu_ps(out));
    }
}

INLINE void f16p_tile(const pgroup *g, const matmul_input *in, const int T) { fpacked_tile(g, in, T, false); }
INLINE void bf16p_tile(const pgroup *g, const matmul_input *in, const int T) { fpacked_tile(g, in, T, true); }

typedef void (*ptile_fn)(const pgroup *g, const matmul_input *in);
#define PTILES(name, kernel)                                                                \
    static void name##_1(const pgroup *g, const matmul_input *in) { kernel(g, in, 1); }     \
    static void name##_2(const pgroup *g, const matmul_input *in) { kernel(g, in, 2); }     \
    static void name##_4(const pgroup *g, const matmul_input *in) { kernel(g, in, 4); }     \
    static void name##_8(const pgroup *g, const matmul_input *in) { kernel(g, in, 8); }     \
    static const ptile_fn name##_tiles[4] = {name##_1, name##_2, name##_4, name##_8};
PTILES(q4_0p, q4_0p_tile)
PTILES(q8_0p, q8_0p_tile)
PTILES(q4_kp, q4_kp_tile)
PTILES(q6_kp, q6_kp_tile)
/* float tiles take at most 2 tokens (packed_rows never picks [2] or [3] for them) */
#define FPTILES(name, kernel)                                                               \
    static void name##_1(const pgroup *g, const matmul_input *in) { kernel(g, in, 1); }     \
    static void name##_2(const pgroup *g, const matmul_input *in) { kernel(g, in, 2); }     \
    static const ptile_fn name##_tiles[4] = {name##_1, name##_2, name##_2, name##_2};
FPTILES(f16p, f16p_tile)
FPTILES(bf16p, bf16p_tile)

/* Rows r0..r1 of a packed matrix, by the 16-row groups they touch; over each group, the tokens
 * in groups of 8, 4, 2 and 1 (the first reads the group from memory, the others from cache). */
static void packed_rows(uint32_t type, const uint8_t *w, int64_t n_out, const matmul_input *in,
                        float *y, int64_t r0, int64_t r1) {
    const uint32_t base = repack_base(type);
    const ptile_fn *tiles = base == QT_Q4_0   ? q4_0p_tiles
                            : base == QT_Q8_0 ? q8_0p_tiles
                            : base == QT_Q4_K ? q4_kp_tiles
                            : base == QT_Q6_K ? q6_kp_tiles
                            : base == QT_F16  ? f16p_tiles
                                              : bf16p_tiles;
    const int most = base == QT_F16 || base == QT_BF16 ? 1 : 3; /* largest k: 2 or 8 tokens */
    for (int64_t first = r0 / ROWS * ROWS; first < r1; first += ROWS) {
        const int64_t lo = r0 > first ? r0 - first : 0, hi = r1 < first + ROWS ? r1 - first : ROWS;
        pgroup g = {.q = w + repack_bytes(type, in->n_in, first), .pf = true, .n_out = n_out, .y = y + first,
                    .keep = (__mmask16)((0xffffu >> (ROWS - hi)) & (0xffffu << lo))};
        for (g.t0 = 0; g.t0 < in->n_tok;) {
            const int64_t left = in->n_tok - g.t0;
            int k = left >= 8 ? 3 : left >= 4 ? 2 : left >= 2 ? 1 : 0;
            if (k > most) k = most;
            tiles[k](&g, in);
            g.pf = false;
            g.t0 += 1 << k;
        }
    }
}

/* ==== row-range driver ==== */

typedef void (*tile_fn)(const group *g, const matmul_input *in);

/* One compiled function per type and token count; [k] handles T = 1 << k tokens. */
#define TILES(name, kernel)                                                                    \
    static void name##_1(const group *g, const matmul_input *in) { kernel(g, in, 1); }        \
    static void name##_2(const group *g, const matmul_input *in) { kernel(g, in, 2); }        \
    static void name##_4(const group *g, const matmul_input *in) { kernel(g, in, 4); }        \
    static const tile_fn name##_tiles[3] = {name##_1, name##_2, name##_4};
TILES(q4_0, q4_0_tile)
TILES(q8_0, q8_0_tile)
TILES(q4_k, q4_k_tile)
TILES(q6_k, q6_k_tile)

/* Rows r0..r1 in groups of 16 rows; over each group, the tokens in groups of 4, 2 and 1, so
 * that the group's weights come from memory once and from cache for the other tokens. A last
 * row group of fewer than 16 ends at r1 and starts before it, recomputing rows already done
 * (any row of the matrix may be read; only the new ones are stored). The group after the last
 * is prefetched too, up to the matrix's end: callers take rows in consecutive chunks. */
static void tile_rows(const tile_fn tiles[3], const uint8_t *w, size_t rb, int64_t n_out,
                      const matmul_input *in, float *y, int64_t r0, int64_t r1) {
    const int64_t last = r1 - ROWS, end = n_out - ROWS; /* first rows of the last groups */
    for (int64_t r = r0; r < r1; r += ROWS) {
        const int64_t first = r < last ? r : last, after = r + ROWS < end ? r + ROWS : end;
        group g = {.next = after > first ? w + (size_t)after * rb : NULL, .pf = true,
                   .n_out = n_out, .y = y + first, .keep = (__mmask16)(0xffffu << (r - first))};
        for (int i = 0; i < ROWS; i++) g.rows[i] = w + (size_t)(first + i) * rb;
        for (g.t0 = 0; g.t0 < in->n_tok;) {
            const int64_t left = in->n_tok - g.t0;
            const int k = left >= 4 ? 2 : left >= 2 ? 1 : 0;
            tiles[k](&g, in);
            g.pf = false;
            g.next = NULL;
            g.t0 += 1 << k;
        }
    }
}

void matmul_avx512_rows(uint32_t type, const void *w, int64_t n_out, const matmul_input *in,
                        float *y, int64_t row_begin, int64_t row_end) {
    if (repack_is_packed(type)) {
        packed_rows(type, (const uint8_t *)w, n_out, in, y, row_begin, row_end);
        return;
    }
    const size_t rb = qtype_row_size(type, (uint64_t)in->n_in);
    const tile_fn *tiles = type == QT_Q4_0   ? q4_0_tiles
                           : type == QT_Q8_0 ? q8_0_tiles
                           : type == QT_Q4_K ? q4_k_tiles
                           : type == QT_Q6_K ? q6_k_tiles
                                             : NULL;
    const float_tile_fn *ftiles = type == QT_F32   ? f32_tiles
                                  : type == QT_F16 ? f16_tiles
                                  : type == QT_BF16 ? bf16_tiles
                                                    : NULL;
    if (ftiles && in->n_tok >= 2) {
        float_rows(ftiles, type, (const uint8_t *)w, rb, n_out, in, y, row_begin, row_end);
        return;
    }
    /* fewer than 16 rows in the matrix up to row_end: the AVX2 kernels (bit-identical) */
    if (tiles && row_end >= ROWS)
        tile_rows(tiles, (const uint8_t *)w, rb, n_out, in, y, row_begin, row_end);
    else
        matmul_avx2_rows(type, w, n_out, in, y, row_begin, row_end);
}

#else /* built without AVX-512: matmul_avx512_usable() is false, so nothing below is called */

bool matmul_avx512_usable(void) { return false; }
void matmul_avx512_rows(uint32_t type, const void *w, int64_t n_out, const matmul_input *in,
                        float *y, int64_t row_begin, int64_t row_end) {
    (void)type, (void)w, (void)n_out, (void)in, (void)y, (void)row_begin, (void)row_end;
}

#endif
