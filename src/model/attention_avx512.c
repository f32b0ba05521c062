/* AVX-512 attention for several queries over one cache (attention_heads on the AVX-512 matmul
 * backend). The Makefile compiles *_avx512.c with AVX-512; attention.c calls this only when the
 * matmul backend is MATMUL_AVX512, which the CPU check allowed.
 *
 * Two queries share each 512-bit register: query 2j in the low 8 lanes, 2j + 1 in the high 8,
 * and a K row's 8-float piece in both halves, so each lane does exactly what the AVX2 lane does
 * (attention_simd.h: the same products and fused adds in the same order) with half the
 * instructions. Everything after the dot products (reductions, softmax, the weighted sum) is
 * the shared code of attention_simd.h, so the results are the AVX2 kernels' bit for bit. */
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

/* row_dots_fn over query pairs: pq[j] holds queries 2j and 2j + 1 interleaved by 8-float
 * pieces (piece c of the first, then piece c of the second; see attention_avx512_heads). Two
 * rows at a time: twice the independent chains of fused adds, each query piece loaded once. */
INLINE void row_dots16(const void *k, bool f16, int32_t hd, const int NQ, const float *const pq[],
                       size_t e, float part[][8][8], int j, const int R) {
    const int NP = (NQ + 1) / 2;
    __m512 acc[2][ATTN_MAX_Q / 2];
    UNROLL_Q for (int r = 0; r < R; r++) {
        const __m512 k0 = load8x2(k, f16, e + (size_t)r * (size_t)hd);
        UNROLL_Q for (int p = 0; p < NP; p++) acc[r][p] = _mm512_mul_ps(_mm512_loadu_ps(pq[p]), k0);
    }
    for (int32_t c = 8; c < hd; c += 8) {
        __m512 kc[2];
        UNROLL_Q for (int r = 0; r < R; r++) kc[r] = load8x2(k, f16, e + (size_t)r * (size_t)hd + (size_t)c);
        UNROLL_Q for (int p = 0; p < NP; p++) {
            const __m512 qp = _mm512_loadu_ps(pq[p] + 2 * c);
            UNROLL_Q for (int r = 0; r < R; r++) acc[r][p] = _mm512_fmadd_ps(qp, kc[r], acc[r][p]);
        }
    }
    UNROLL_Q for (int r = 0; r < R; r++) UNROLL_Q for (int p = 0; p < NP; p++) {
        _mm256_storeu_ps(part[2 * p][j + r], _mm512_castps512_ps256(acc[r][p]));
        if (2 * p + 1 < NQ) _mm256_storeu_ps(part[2 * p + 1][j + r], _mm512_extractf32x8_ps(acc[r][p], 1));
    }
}

HEADS_TABLE(heads16, row_dots16)

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
