/* AVX-512 attention for several queries over one cache (attention_heads on the AVX-512 matmul
 * backend). The Makefile compiles *_avx512.c with AVX-512; attention.c calls this only when the
 * matmul backend is MATMUL_AVX512, which the CPU check allowed.
 *
 * Two queries share each 512-bit register: query 2j in the low 8 lanes, 2j + 1 in the high 8,
 * and a K row's 8-float piece in both halves, so each lane does exactly what the AVX2 lane does
 * (attention_simd.h: the same products and fused adds in the same order) with half the
 * instructions; the reduction of the lanes follows reduce8's tree in registers (scores16).
 * The softmax and the weighted sum are the shared code of attention_simd.h, so the results are
 * the AVX2 kernels' bit for bit. */
#include "model/attention.h"

#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX2__) && defined(__FMA__) && \
    defined(__F16C__)
#include "model/attention_simd.h"

#include <string.h>

/* Head sizes whose query pairs fit the stack buffer below (larger ones take the AVX2 kernel). */
#define MAX_HD 256

/* An 8-float piece of a K row in both 256-bit halves. */
INLINE __m512 load8x2(const void *base, bool f16, size_t e) {
    if (f16) return _mm512_cvtph_ps(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + e))));
    return _mm512_broadcast_f32x8(_mm256_loadu_ps((const float *)base + e));
}

/* _mm256_hadd_ps in each 256-bit half: per 128-bit lane [x0 + x1, x2 + x3, y0 + y1, y2 + y3]. */
INLINE __m512 hadd2(__m512 x, __m512 y) {
    return _mm512_add_ps(_mm512_shuffle_ps(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* scores_fn over query pairs: pq[j] holds queries 2j and 2j + 1 interleaved by 8-float pieces
 * (piece c of the first, then piece c of the second; see attention_avx512_heads). For each 8
 * rows and query pair, the rows' 8-lane partial sums stay in 8 registers (both queries' in the
 * two halves) and reduce8's tree runs on them in place: hadd2 is its hadd per half, and the
 * last step's halves are gathered by two permutes. The same operations on the same values as
 * scores8 with reduce8 (a short group's missing rows repeat its last row and are not stored),
 * so the scores, and each query's maximum, are bit for bit scores8's (attention_avx2.c). */
INLINE void scores16(const attn_kv *kv, bool f16, int32_t hd, const int NQ, const float *const pq[],
                     const int32_t n_pos[], int32_t max_pos, bool prefetch, float scale,
                     float *const s[], float max[]) {
    const int NP = (NQ + 1) / 2;
    __m512 vmax[ATTN_MAX_Q / 2];
    UNROLL_Q for (int p = 0; p < NP; p++) vmax[p] = _mm512_set1_ps(-INFINITY);
    /* the halves [U.lo, V.lo] and [U.hi, V.hi] of each query (128-bit lanes 0, 2 and 1, 3) */
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    const __m512 vscale = _mm512_set1_ps(scale);
    /* groups of 8 rows, never across a block (ATTN_BLOCK is a multiple of 8) */
    for (int32_t p0 = 0; p0 < max_pos; p0 += 8) {
        if (prefetch && p0 % ATTN_BLOCK == 0) prefetch_kv(kv, f16, hd, p0, max_pos);
        const size_t e0 = row_elem(kv, hd, p0);
        const int n = max_pos - p0 < 8 ? max_pos - p0 : 8;
        size_t e[8];
        for (int j = 0; j < 8; j++) e[j] = e0 + (size_t)(j < n ? j : n - 1) * (size_t)hd;
        UNROLL_Q for (int p = 0; p < NP; p++) {
            __m512 a[8];
            const __m512 q0 = _mm512_loadu_ps(pq[p]);
            UNROLL_Q for (int j = 0; j < 8; j++) a[j] = _mm512_mul_ps(q0, load8x2(kv->k, f16, e[j]));
            for (int32_t c = 8; c < hd; c += 8) {
                const __m512 qc = _mm512_loadu_ps(pq[p] + 2 * c);
                UNROLL_Q for (int j = 0; j < 8; j++)
                    a[j] = _mm512_fmadd_ps(qc, load8x2(kv->k, f16, e[j] + (size_t)c), a[j]);
            }
            const __m512 u = hadd2(hadd2(a[0], a[1]), hadd2(a[2], a[3]));
            const __m512 v = hadd2(hadd2(a[4], a[5]), hadd2(a[6], a[7]));
            const __m512 sv = _mm512_mul_ps(_mm512_add_ps(_mm512_permutex2var_ps(u, lo, v),
                                                          _mm512_permutex2var_ps(u, hi, v)),
                                            vscale);
            const int i0 = 2 * p, i1 = 2 * p + 1 < NQ ? 2 * p + 1 : 2 * p;
            const __mmask8 stored = (__mmask8)((1u << n) - 1);
            _mm256_mask_storeu_ps(s[i0] + p0, stored, _mm512_castps512_ps256(sv));
            if (i1 != i0) _mm256_mask_storeu_ps(s[i1] + p0, stored, _mm512_extractf32x8_ps(sv, 1));
            /* the rows before each query's n_pos take part in its maximum */
            const int32_t v0 = n_pos[i0] - p0, v1 = n_pos[i1] - p0;
            const int l0 = v0 < n ? (v0 > 0 ? v0 : 0) : n, l1 = v1 < n ? (v1 > 0 ? v1 : 0) : n;
            const __mmask16 live = (__mmask16)(((1u << l0) - 1) | ((1u << l1) - 1) << 8);
            vmax[p] = _mm512_mask_max_ps(vmax[p], live, vmax[p], sv);
        }
    }
    UNROLL_Q for (int p = 0; p < NP; p++) {
        float lanes[16];
        _mm512_storeu_ps(lanes, vmax[p]);
        for (int j = 0; j < 16; j++) {
            const int i = j < 8 ? 2 * p : 2 * p + 1;
            if (i < NQ && lanes[j] > max[i]) max[i] = lanes[j];
        }
    }
}

HEADS_TABLE(heads16, scores16)

void attention_avx512_heads(const attn_kv *kv, int32_t hd, int n_q, const float *const q[],
                            const int32_t n_pos[], float scale, float *scores, float *const out[]) {
    if (n_q < 2 || hd > MAX_HD) {
        attention_avx2_heads(kv, hd, n_q, q, n_pos, scale, scores, out);
        return;
    }
    /* the pairs, piece by piece; an odd last query is paired with itself (its copy unused) */
    static _Thread_local float pairs[ATTN_MAX_Q / 2][2 * MAX_HD];
    const float *pq[ATTN_MAX_Q / 2];
    for (int p = 0; p < (n_q + 1) / 2; p++) {
        const float *a = q[2 * p], *b = q[2 * p + 1 < n_q ? 2 * p + 1 : 2 * p];
        for (int32_t c = 0; c < hd; c += 8) {
            memcpy(pairs[p] + 2 * c, a + c, 8 * sizeof(float));
            memcpy(pairs[p] + 2 * c + 8, b + c, 8 * sizeof(float));
        }
        pq[p] = pairs[p];
    }
    heads16[n_q - 2](kv, hd, pq, n_pos, scale, scores, out);
}

#else /* built without AVX-512: attention.c never calls this */

void attention_avx512_heads(const attn_kv *kv, int32_t hd, int n_q, const float *const q[],
                            const int32_t n_pos[], float scale, float *scores, float *const out[]) {
    attention_avx2_heads(kv, hd, n_q, q, n_pos, scale, scores, out);
}

#endif
