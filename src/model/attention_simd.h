/* Pieces shared by the SIMD attention kernels (attention_avx2.c, attention_avx512.c): cache
 * addressing, 8- and 16-float loads of F32/F16 cache elements, the score pass (its order of
 * operations below), the vectorised exp and softmax, the weighted sum, and the cache prefetch. Every
 * kernel that includes this computes a query's result with these same operations, so the AVX2
 * and AVX-512 kernels agree bit for bit. Include only from files compiled with AVX2, FMA and
 * F16C (*_avx2.c, *_avx512.c) and inside their feature checks. */
#ifndef VEIL_ATTENTION_SIMD_H
#define VEIL_ATTENTION_SIMD_H

#include "model/attention.h"
#include "tensor/simd_exp.h"

#include <immintrin.h>
#include <math.h>

#define INLINE static inline __attribute__((always_inline))
/* Loops over a compile-time number of queries or position groups (up to 8), unrolled so their
 * accumulators stay in registers. */
#define UNROLL_Q _Pragma("GCC unroll 8")

INLINE __m256 load8(const void *base, bool f16, size_t e) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + e)));
    return _mm256_loadu_ps((const float *)base + e);
}

/* The element where V row p starts. */
static inline size_t row_elem(const attn_kv *kv, int32_t hd, int32_t p) { return attention_v_elem(kv, hd, p, 0); }

/* Fetches the `bytes` at element e of base towards the cache (hint: _MM_HINT_T0 or
 * _MM_HINT_T1). A block's piece is one stretch of memory, but blocks lie far apart (a block
 * holds every layer and head), so the hardware prefetcher starts cold at each; at the short
 * contexts of batched decode that latency, not the bandwidth, is what attention costs. */
#define PREFETCH_BYTES(base, f16, e, bytes, hint)                                                \
    do {                                                                                         \
        const char *p_ = (const char *)(base) + (e) * ((f16) ? 2 : 4);                            \
        for (size_t o_ = 0; o_ < (size_t)(bytes); o_ += 64) _mm_prefetch(p_ + o_, hint);        \
    } while (0)

/* K blocks prefetched ahead of the one being read. */
#define ATTN_AHEAD 4

/* While the K piece of block b0 (positions b0 .. b0 + ATTN_BLOCK) is read: the K piece
 * ATTN_AHEAD blocks on into L1 (at b0 = 0, every block up to it: the first ones are needed at
 * once), and b0's V rows into L2 for the weighted sum that follows. */
INLINE void prefetch_kv(const attn_kv *kv, bool f16, int32_t hd, int32_t b0, int32_t n_pos) {
    const size_t es = f16 ? 2 : 4;
    for (int32_t k = b0 == 0 ? 0 : ATTN_AHEAD; k <= ATTN_AHEAD; k++) {
        const int32_t p = b0 + k * ATTN_BLOCK;
        if (p >= n_pos) break;
        PREFETCH_BYTES(kv->k, f16, attention_k_elem(kv, hd, p, 0), (size_t)ATTN_BLOCK * (size_t)hd * es, _MM_HINT_T0);
    }
    const int32_t rows = n_pos - b0 < ATTN_BLOCK ? n_pos - b0 : ATTN_BLOCK;
    PREFETCH_BYTES(kv->v, f16, row_elem(kv, hd, b0), (size_t)rows * (size_t)hd * es, _MM_HINT_T1);
}

/* ---- the score pass ----
 * A query's score of position p: q[0] * k_p[0], then q[d] * k_p[d] fused-added for d = 1 ..
 * head_dim - 1 in order, times scale. With K transposed per block (attention.h), element d of
 * W consecutive positions is one vector load, so a vector of accumulators holds W positions'
 * scores and every lane does exactly that chain: the AVX2 (W = 8) and AVX-512 (W = 16) kernels,
 * one query or several, compute every score bit for bit alike. */

/* Groups of W positions a score pass computes together for NQ queries: enough independent
 * chains of fused multiply-adds (groups x queries) to keep both FMA pipes busy. */
#define SCORE_GROUPS(NQ) ((NQ) == 1 ? 8 : (NQ) == 2 ? 4 : (NQ) <= 4 ? 2 : 1)

/* Defines scores##N, a scores_fn (below) over groups of W positions in vectors VT (MUL, FMA,
 * SET1, STORE: its intrinsics): LOAD(base, f16, e) gives W elements from element e as floats;
 * LIVE_MAX(vmax, sv, n) is vmax with its lanes below n (n may be <= 0 or >= W) raised to sv's.
 * s_i's lanes past n_pos[i] get scores of whatever the cache holds there (attention_scratch
 * rounds to whole blocks); they take no part in the maximum, and softmax overwrites them. */
#define SCORES_Q(N, VT, W, LOAD, MUL, FMA, SET1, STORE, LIVE_MAX)                               \
    INLINE void dots##N(const void *k, bool f16, int32_t hd, const int NQ, const int G,          \
                        const float *const q[], const size_t e[], VT acc[][ATTN_MAX_Q]) {       \
        UNROLL_Q for (int g = 0; g < G; g++) {                                                   \
            const VT k0 = LOAD(k, f16, e[g]);                                                    \
            UNROLL_Q for (int i = 0; i < NQ; i++) acc[g][i] = MUL(SET1(q[i][0]), k0);            \
        }                                                                                        \
        for (int32_t d = 1; d < hd; d++)                                                         \
            UNROLL_Q for (int g = 0; g < G; g++) {                                               \
                const VT kd = LOAD(k, f16, e[g] + (size_t)d * ATTN_BLOCK);                       \
                UNROLL_Q for (int i = 0; i < NQ; i++) acc[g][i] = FMA(SET1(q[i][d]), kd, acc[g][i]); \
            }                                                                                    \
    }                                                                                            \
    INLINE void scores##N(const attn_kv *kv, bool f16, int32_t hd, const int NQ,                 \
                          const float *const q[], const int32_t n_pos[], int32_t max_pos,        \
                          bool prefetch, float scale, float *const s[], float max[]) {           \
        VT vmax[ATTN_MAX_Q], acc[8][ATTN_MAX_Q];                                                 \
        const VT vscale = SET1(scale);                                                           \
        UNROLL_Q for (int i = 0; i < NQ; i++) vmax[i] = SET1(-INFINITY);                         \
        const int GMAX = SCORE_GROUPS(NQ);                                                       \
        for (int32_t p0 = 0; p0 < max_pos;) {                                                    \
            const int left = (max_pos - p0 + W - 1) / W, G = left < GMAX ? left : GMAX;          \
            size_t e[8];                                                                         \
            for (int g = 0; g < G; g++) {                                                        \
                const int32_t p = p0 + g * W;                                                    \
                if (prefetch && p % ATTN_BLOCK == 0) prefetch_kv(kv, f16, hd, p, max_pos);       \
                e[g] = attention_k_elem(kv, hd, p, 0);                                           \
            }                                                                                    \
            /* a constant group count per call, so that its accumulators stay in registers */   \
            switch (G) {                                                                         \
            case 8: dots##N(kv->k, f16, hd, NQ, 8, q, e, acc); break;                            \
            case 7: dots##N(kv->k, f16, hd, NQ, 7, q, e, acc); break;                            \
            case 6: dots##N(kv->k, f16, hd, NQ, 6, q, e, acc); break;                            \
            case 5: dots##N(kv->k, f16, hd, NQ, 5, q, e, acc); break;                            \
            case 4: dots##N(kv->k, f16, hd, NQ, 4, q, e, acc); break;                            \
            case 3: dots##N(kv->k, f16, hd, NQ, 3, q, e, acc); break;                            \
            case 2: dots##N(kv->k, f16, hd, NQ, 2, q, e, acc); break;                            \
            default: dots##N(kv->k, f16, hd, NQ, 1, q, e, acc); break;                           \
            }                                                                                    \
            for (int g = 0; g < G; g++, p0 += W)                                                 \
                UNROLL_Q for (int i = 0; i < NQ; i++) {                                          \
                    const VT sv = MUL(acc[g][i], vscale);                                        \
                    STORE(s[i] + p0, sv);                                                        \
                    vmax[i] = LIVE_MAX(vmax[i], sv, n_pos[i] - p0);                              \
                }                                                                                \
        }                                                                                        \
        UNROLL_Q for (int i = 0; i < NQ; i++) {                                                  \
            float lanes[W];                                                                      \
            STORE(lanes, vmax[i]);                                                               \
            for (int j = 0; j < W; j++)                                                          \
                if (lanes[j] > max[i]) max[i] = lanes[j];                                        \
        }                                                                                        \
    }

/* s[p] = exp(s[p] - max) / sum over p < n_pos; s holds attention_scratch(n_pos) floats. The
 * sum in double: lanes 0-3 of each 8 floats into sum0, lanes 4-7 into sum1, in order. Built
 * for AVX-512, 16 floats at a time first, with the same operations per lane and the same
 * order of additions into sum0 and sum1 (lanes 0-3 and 4-7 of one vector of 8 doubles), so
 * the results are the 8-lane loop's bit for bit. */
static inline void softmax(float *s, int32_t n_pos, float max) {
    int32_t n8 = (int32_t)attention_scratch(n_pos), p = 0;
    for (int32_t i = n_pos; i < n8; i++) s[i] = -INFINITY;
    const __m256 vmax = _mm256_set1_ps(max), iota = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    __m256d sum0 = _mm256_setzero_pd(), sum1 = _mm256_setzero_pd();
#ifdef __AVX512F__
    __m512d sum = _mm512_setzero_pd();
    for (; p + 16 <= n8; p += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + p), _mm512_set1_ps(max)));
        const int32_t left = n_pos - p; /* lanes past n_pos are exactly 0 */
        e = _mm512_maskz_mov_ps(left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1), e);
        _mm512_storeu_ps(s + p, e);
        sum = _mm512_add_pd(sum, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        sum = _mm512_add_pd(sum, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
    }
    sum0 = _mm512_castpd512_pd256(sum);
    sum1 = _mm512_extractf64x4_pd(sum, 1);
#endif
    for (; p < n8; p += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + p), vmax));
        /* lanes past n_pos are exactly 0 */
        __m256 live = _mm256_cmp_ps(iota, _mm256_set1_ps((float)(n_pos - p)), _CMP_LT_OQ);
        e = _mm256_and_ps(e, live);
        _mm256_storeu_ps(s + p, e);
        sum0 = _mm256_add_pd(sum0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        sum1 = _mm256_add_pd(sum1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double d[4];
    _mm256_storeu_pd(d, _mm256_add_pd(sum0, sum1));
    const float inv = (float)(1.0 / ((d[0] + d[1]) + (d[2] + d[3])));
    p = 0;
#ifdef __AVX512F__
    for (; p + 16 <= n8; p += 16) _mm512_storeu_ps(s + p, _mm512_mul_ps(_mm512_loadu_ps(s + p), _mm512_set1_ps(inv)));
#endif
    for (; p < n8; p += 8) _mm256_storeu_ps(s + p, _mm256_mul_ps(_mm256_loadu_ps(s + p), _mm256_set1_ps(inv)));
}

/* ---- queries over one cache (attention_heads; one query: attention_head) ----
 * Each cache row is loaded once for NQ queries, which is what long prompts need: their
 * queries re-read the same K and V rows from L2, one query at a time. A query's arithmetic is
 * the same whatever NQ and the vector width: its scores by the same chains (the score pass
 * above, at any width and group count), its own softmax, its weighted sum in position order
 * with fused multiply-adds (a slice of 64 output floats per pass for one query, of 32, 16 or 8
 * for several, which changes no element's order). Rows at or past a query's n_pos are left out
 * of its maximum and of its sum (no 0 * v terms: they could turn -0 into +0). */

/* Defines weighted_q##N: out_i[c0 .. c0 + NV * W) = sum over p < n_pos[i] of w_i[p] v_p[c0 ..],
 * rows taken once for all queries, for an output slice of NV vectors of type VT, W floats each
 * (LOAD: W elements of a V row as floats). Each element is the same chain of fused multiply-adds
 * in position order whatever the slice, so every width gives the same bits; wider slices read
 * each V row in fewer passes and keep more independent chains in flight. Below the smallest
 * n_pos every query takes every row; from there on (`check`) only the queries with p < n_pos[i]. */
#define WEIGHTED_Q(N, VT, W, NV, LOAD, FMA, SET1, ZERO, STORE)                                    \
    INLINE void weighted_rows##N(const attn_kv *kv, bool f16, int32_t hd, const int NQ,           \
                                 float *const w[], const int32_t n_pos[], int32_t lo, int32_t hi, \
                                 int32_t c0, bool check, VT acc[][ATTN_MAX_Q]) {                  \
        for (int32_t p = lo; p < hi;) {                                                           \
            const int32_t b0 = p / ATTN_BLOCK * ATTN_BLOCK,                                       \
                          end = b0 + ATTN_BLOCK < hi ? b0 + ATTN_BLOCK : hi;                      \
            const size_t e0 = row_elem(kv, hd, b0) + (size_t)c0;                                  \
            for (; p < end; p++) {                                                                \
                VT v[NV];                                                                         \
                UNROLL_Q for (int u = 0; u < NV; u++)                                             \
                    v[u] = LOAD(kv->v, f16, e0 + (size_t)(p - b0) * hd + (size_t)(u * W));        \
                UNROLL_Q for (int i = 0; i < NQ; i++) {                                           \
                    if (check && p >= n_pos[i]) continue;                                         \
                    const VT wi = SET1(w[i][p]);                                                  \
                    UNROLL_Q for (int u = 0; u < NV; u++) acc[u][i] = FMA(wi, v[u], acc[u][i]);   \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    INLINE void weighted_q##N(const attn_kv *kv, bool f16, int32_t hd, const int NQ,              \
                              float *const w[], const int32_t n_pos[], int32_t min_pos,           \
                              int32_t max_pos, int32_t c0, float *const out[]) {                  \
        VT acc[NV][ATTN_MAX_Q];                                                                   \
        UNROLL_Q for (int u = 0; u < NV; u++) UNROLL_Q for (int i = 0; i < NQ; i++) acc[u][i] = ZERO(); \
        weighted_rows##N(kv, f16, hd, NQ, w, n_pos, 0, min_pos, c0, false, acc);                  \
        weighted_rows##N(kv, f16, hd, NQ, w, n_pos, min_pos, max_pos, c0, true, acc);             \
        UNROLL_Q for (int u = 0; u < NV; u++)                                                     \
            UNROLL_Q for (int i = 0; i < NQ; i++) STORE(out[i] + c0 + u * W, acc[u][i]);          \
    }

WEIGHTED_Q(8, __m256, 8, 1, load8, _mm256_fmadd_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps)
#ifndef __AVX512F__
/* one query on AVX2: 64 output floats (8 vectors) per pass over the V rows */
WEIGHTED_Q(64, __m256, 8, 8, load8, _mm256_fmadd_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps)
#endif

INLINE __m256 live_max8(__m256 vmax, __m256 sv, int32_t n) {
    const __m256 live = _mm256_cmp_ps(_mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_ps((float)n), _CMP_LT_OQ);
    return _mm256_max_ps(vmax, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), sv, live));
}
SCORES_Q(8, __m256, 8, load8, _mm256_mul_ps, _mm256_fmadd_ps, _mm256_set1_ps, _mm256_storeu_ps, live_max8)

#ifdef __AVX512F__
INLINE __m512 load16(const void *base, bool f16, size_t e) {
    if (f16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + e)));
    return _mm512_loadu_ps((const float *)base + e);
}
/* on AVX-512 (attention_avx512.c): for one query slices of 64 (four vectors), for several
 * slices of 32 (two vectors per query, 16 accumulators for 8 queries); then 16 */
WEIGHTED_Q(64, __m512, 16, 4, load16, _mm512_fmadd_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps)
WEIGHTED_Q(32, __m512, 16, 2, load16, _mm512_fmadd_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps)
WEIGHTED_Q(16, __m512, 16, 1, load16, _mm512_fmadd_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps)

INLINE __m512 live_max16(__m512 vmax, __m512 sv, int32_t n) {
    const __mmask16 live = n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
    return _mm512_mask_max_ps(vmax, live, vmax, sv);
}
SCORES_Q(16, __m512, 16, load16, _mm512_mul_ps, _mm512_fmadd_ps, _mm512_set1_ps, _mm512_storeu_ps, live_max16)
#endif

/* The score pass of one instruction set (scores8, scores16 above): s_i[p] for p < max_pos
 * (every query; a query's scores past its n_pos are unused), and each query's maximum over its
 * own positions into max[i]. With `prefetch`, the cache rows ahead are fetched as decode's
 * kernel does (prefetch_kv): for one token's query heads, whose cache comes from memory.
 * Without, for a prompt's tokens: their group re-reads the rows the previous group of the same
 * head has just read, and the prefetches cost more than they bring (d1024-l16 pp 512,
 * interleaved rounds: attention 0.195-0.203 -> 0.177-0.184 ms/token). */
typedef void (*scores_fn)(const attn_kv *kv, bool f16, int32_t hd, int NQ, const float *const q[],
                          const int32_t n_pos[], int32_t max_pos, bool prefetch, float scale,
                          float *const s[], float max[]);

INLINE void heads_q(const attn_kv *kv, bool f16, int32_t hd, const int NQ, const float *const q[],
                    const int32_t n_pos[], float scale, float *scores, float *const out[],
                    const scores_fn score_pass) {
    int32_t max_pos = 0, min_pos = n_pos[0];
    UNROLL_Q for (int i = 0; i < NQ; i++) {
        if (n_pos[i] > max_pos) max_pos = n_pos[i];
        if (n_pos[i] < min_pos) min_pos = n_pos[i];
    }
    const size_t stride = attention_scratch(max_pos);
    float *s[ATTN_MAX_Q], max[ATTN_MAX_Q];
    UNROLL_Q for (int i = 0; i < NQ; i++) {
        s[i] = scores + (size_t)i * stride;
        max[i] = -INFINITY;
    }
    score_pass(kv, f16, hd, NQ, q, n_pos, max_pos, min_pos == max_pos, scale, s, max);
    UNROLL_Q for (int i = 0; i < NQ; i++) softmax(s[i], n_pos[i], max[i]);
    int32_t c0 = 0;
    if (NQ == 1) /* one query (decode): 64 output floats in registers per pass over V */
        for (; c0 + 64 <= hd; c0 += 64) weighted_q64(kv, f16, hd, NQ, s, n_pos, min_pos, max_pos, c0, out);
#ifdef __AVX512F__
    for (; c0 + 32 <= hd; c0 += 32) weighted_q32(kv, f16, hd, NQ, s, n_pos, min_pos, max_pos, c0, out);
    for (; c0 + 16 <= hd; c0 += 16) weighted_q16(kv, f16, hd, NQ, s, n_pos, min_pos, max_pos, c0, out);
#endif
    for (; c0 < hd; c0 += 8) weighted_q8(kv, f16, hd, NQ, s, n_pos, min_pos, max_pos, c0, out);
}

/* heads_q for one query count, F16 or F32 cache (kv->type), in a function of its own. */
typedef void (*heads_fn)(const attn_kv *kv, int32_t hd, const float *const q[], const int32_t n_pos[],
                         float scale, float *scores, float *const out[]);

/* Defines `static const heads_fn name[ATTN_MAX_Q]`: [n - 1] runs n = 1..ATTN_MAX_Q queries
 * with the score pass `pass` (a scores_fn), one compiled body per count so that each keeps its
 * accumulators in registers. */
#define HEADS_BODY(name, pass, NQ)                                                              \
    static void name##_##NQ(const attn_kv *kv, int32_t hd, const float *const q[],             \
                            const int32_t n_pos[], float scale, float *scores, float *const out[]) { \
        if (kv->type == ATTN_F16) heads_q(kv, true, hd, NQ, q, n_pos, scale, scores, out, pass); \
        else heads_q(kv, false, hd, NQ, q, n_pos, scale, scores, out, pass);                    \
    }
#define HEADS_TABLE(name, pass)                                                                 \
    HEADS_BODY(name, pass, 1) HEADS_BODY(name, pass, 2) HEADS_BODY(name, pass, 3)               \
    HEADS_BODY(name, pass, 4) HEADS_BODY(name, pass, 5) HEADS_BODY(name, pass, 6)               \
    HEADS_BODY(name, pass, 7) HEADS_BODY(name, pass, 8)                                         \
    static const heads_fn name[ATTN_MAX_Q] = {name##_1, name##_2, name##_3, name##_4,           \
                                              name##_5, name##_6, name##_7, name##_8};

#endif
