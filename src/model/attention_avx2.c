/* AVX2 attention kernels (attention.h). The Makefile compiles *_avx2.c with -mavx2 -mfma
 * -mf16c; attention.c calls these only when the matmul backend is a SIMD one and the CPU
 * check for AVX2 passed.
 *
 * Per (query, head), with head_dim a multiple of 8 (attention_simd.h, at 8 lanes):
 *   scores  8 positions' dot products at a time from the transposed K block, each a chain of
 *           fused multiply-adds in increasing element order (scores8: the same chain whatever
 *           the lane, so a score does not depend on where its row falls);
 *   softmax a vectorised exp (Cephes' range reduction and polynomial, ~2 ulp; results below
 *           2^-126 become 0), the sum in double;
 *   output  the normalised weights times V rows, fused multiply-adds in position order, 64
 *           output floats held in registers per pass over the rows for one query (8 each for
 *           several, which read each row once for all of them). */
#include "model/attention.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include "model/attention_simd.h"

HEADS_TABLE(heads8, scores8)

void attention_avx2_head(const attn_kv *kv, int32_t hd, const float *q, int32_t n_pos,
                         float scale, float *s, float *out) {
    heads8[0](kv, hd, &q, &n_pos, scale, s, &out);
}

void attention_avx2_heads(const attn_kv *kv, int32_t hd, int n_q, const float *const q[],
                          const int32_t n_pos[], float scale, float *scores, float *const out[]) {
    heads8[n_q - 1](kv, hd, q, n_pos, scale, scores, out);
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
