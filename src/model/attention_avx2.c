/* AVX2 attention kernels (attention.h). The Makefile compiles *_avx2.c with -mavx2 -mfma
 * -mf16c; attention.c calls these only when the matmul backend is a SIMD one and the CPU
 * check for AVX2 passed.
 *
 * Per (query, head), with head_dim a multiple of 8:
 *   scores  8 positions' dot products at a time from the transposed K block, each a chain of
 *           fused multiply-adds in increasing element order (attention_simd.h's scores8: the
 *           same chain whatever the lane, so a score does not depend on where its row falls);
 *   softmax a vectorised exp (Cephes' range reduction and polynomial, ~2 ulp; results below
 *           2^-126 become 0), the sum in double;
 *   output  the normalised weights times V rows, fused multiply-adds in position order, up to
 *           64 output floats held in registers per pass over the rows. */
#include "model/attention.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include "model/attention_simd.h"

/* out[c0 .. c0 + 8 n_acc) = sum_p w_p v_p[c0 ..]: n_acc accumulators in registers. */
INLINE void weighted_slice(const attn_kv *kv, bool f16, int32_t hd, const float *w,
                           int32_t n_pos, int32_t c0, const int n_acc, float *out) {
    __m256 acc[8];
    UNROLL_Q for (int j = 0; j < n_acc; j++) acc[j] = _mm256_setzero_ps();
    for (int32_t b0 = 0; b0 < n_pos; b0 += ATTN_BLOCK) {
        size_t e0 = row_elem(kv, hd, b0) + (size_t)c0;
        int32_t rows = n_pos - b0 < ATTN_BLOCK ? n_pos - b0 : ATTN_BLOCK;
        for (int32_t r = 0; r < rows; r++) {
            __m256 wv = _mm256_broadcast_ss(w + b0 + r);
            size_t e = e0 + (size_t)r * hd;
            UNROLL_Q for (int j = 0; j < n_acc; j++)
                acc[j] = _mm256_fmadd_ps(wv, load8(kv->v, f16, e + 8 * (size_t)j), acc[j]);
        }
    }
    UNROLL_Q for (int j = 0; j < n_acc; j++) _mm256_storeu_ps(out + c0 + 8 * j, acc[j]);
}

INLINE void weighted_sum(const attn_kv *kv, bool f16, int32_t hd, const float *w, int32_t n_pos,
                         float *out) {
    for (int32_t c0 = 0; c0 < hd; c0 += 64) {
        /* a constant count per case, so each loop is unrolled with its accumulators in registers */
        switch ((hd - c0 < 64 ? hd - c0 : 64) / 8) {
        case 1: weighted_slice(kv, f16, hd, w, n_pos, c0, 1, out); break;
        case 2: weighted_slice(kv, f16, hd, w, n_pos, c0, 2, out); break;
        case 3: weighted_slice(kv, f16, hd, w, n_pos, c0, 3, out); break;
        case 4: weighted_slice(kv, f16, hd, w, n_pos, c0, 4, out); break;
        case 5: weighted_slice(kv, f16, hd, w, n_pos, c0, 5, out); break;
        case 6: weighted_slice(kv, f16, hd, w, n_pos, c0, 6, out); break;
        case 7: weighted_slice(kv, f16, hd, w, n_pos, c0, 7, out); break;
        default: weighted_slice(kv, f16, hd, w, n_pos, c0, 8, out); break;
        }
    }
}

INLINE void head(const attn_kv *kv, bool f16, int32_t hd, const float *q, int32_t n_pos,
                 float scale, float *s, float *out) {
    const float *const qs[1] = {q};
    float *const ss[1] = {s};
    float max = -INFINITY;
    scores8(kv, f16, hd, 1, qs, &n_pos, n_pos, true, scale, ss, &max);
    softmax(s, n_pos, max);
    weighted_sum(kv, f16, hd, s, n_pos, out);
}

void attention_avx2_head(const attn_kv *kv, int32_t hd, const float *q, int32_t n_pos,
                         float scale, float *s, float *out) {
    if (kv->type == ATTN_F16)
        head(kv, true, hd, q, n_pos, scale, s, out);
    else
        head(kv, false, hd, q, n_pos, scale, s, out);
}

HEADS_TABLE(heads8, scores8)

void attention_avx2_heads(const attn_kv *kv, int32_t hd, int n_q, const float *const q[],
                          const int32_t n_pos[], float scale, float *scores, float *const out[]) {
    if (n_q == 1) /* one pass over V with 64 output floats in registers */
        attention_avx2_head(kv, hd, q[0], n_pos[0], scale, scores, out[0]);
    else
        heads8[n_q - 2](kv, hd, q, n_pos, scale, scores, out);
}

void attention_avx2_to_f16(uint16_t *dst, const float *src, int32_t n) {
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(src[i]), _MM_FROUND_TO_NEAREST_INT), 0);
}

#else /* built without AVX2: attention.c never calls these */

void attention_avx2_head(const attn_kv *kv, int32_t hd, const float *q, int32_t n_pos,
                         float scale, float *s, float *out) {
    attention_scalar_head(kv, hd, q, n_pos, scale, s, out);
}

void attention_avx2_to_f16(uint16_t *dst, const float *src, int32_t n) {
    attention_store(dst, ATTN_F16, src, n);
}

void attention_avx2_heads(const attn_kv *kv, int32_t hd, int n_q, const float *const q[],
                          const int32_t n_pos[], float scale, float *scores, float *const out[]) {
    for (int i = 0; i < n_q; i++)
        attention_scalar_head(kv, hd, q[i], n_pos[i], scale, scores, out[i]);
}

#endif
