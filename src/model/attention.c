/* Attention kernels (attention.h): the portable reference kernel, the F16 row conversion, and
 * the run-time choice between these and the SIMD ones (attention_avx2.c, attention_avx512.c). */
#include "model/attention.h"

#include "tensor/matmul.h"
#include "tensor/quant.h"

#include <math.h>
#include <string.h>

size_t attention_scratch(int32_t n_pos) { return ((size_t)n_pos + 7) / 8 * 8; }

/* Row p of the cache at `base` (K or V storage). */
static const void *row_at(const attn_kv *kv, const void *base, int32_t hd, int32_t p) {
    size_t e = (size_t)kv->blocks[p / ATTN_BLOCK] * kv->block_elems + kv->off +
               (size_t)(p % ATTN_BLOCK) * (size_t)hd;
    return kv->type == ATTN_F16 ? (const void *)((const uint16_t *)base + e)
                                : (const void *)((const float *)base + e);
}

static float elem(const attn_kv *kv, const void *row, int32_t i) {
    return kv->type == ATTN_F16 ? quant_f16_to_f32(((const uint16_t *)row)[i])
                                : ((const float *)row)[i];
}

/* Dot products in increasing element order, one float accumulator; weights normalised before
 * the weighted sum of V. */
void attention_scalar_head(const attn_kv *kv, int32_t hd, const float *q, int32_t n_pos,
                           float scale, float *s, float *out) {
    float max = -INFINITY;
    for (int32_t p = 0; p < n_pos; p++) {
        const void *k = row_at(kv, kv->k, hd, p);
        float dot = 0;
        for (int32_t i = 0; i < hd; i++) dot += q[i] * elem(kv, k, i);
        s[p] = dot * scale;
        if (s[p] > max) max = s[p];
    }
    double sum = 0;
    for (int32_t p = 0; p < n_pos; p++) {
        s[p] = expf(s[p] - max);
        sum += s[p];
    }
    float inv = (float)(1.0 / sum);
    memset(out, 0, (size_t)hd * sizeof *out);
    for (int32_t p = 0; p < n_pos; p++) {
        const void *v = row_at(kv, kv->v, hd, p);
        float w = s[p] * inv;
        for (int32_t i = 0; i < hd; i++) out[i] += w * elem(kv, v, i);
    }
}

void attention_head(const attn_kv *kv, int32_t hd, const float *q, int32_t n_pos, float scale,
                    float *scores, float *out) {
    if (hd % 8 == 0 && matmul_simd())
        attention_avx2_head(kv, hd, q, n_pos, scale, scores, out);
    else
        attention_scalar_head(kv, hd, q, n_pos, scale, scores, out);
}

void attention_heads(const attn_kv *kv, int32_t hd, int n_q, const float *const q[],
                     const int32_t n_pos[], float scale, float *scores, float *const out[]) {
    if (hd % 8 == 0 && matmul_backend() == MATMUL_AVX512) {
        attention_avx512_heads(kv, hd, n_q, q, n_pos, scale, scores, out);
        return;
    }
    if (hd % 8 == 0 && matmul_simd()) {
        attention_avx2_heads(kv, hd, n_q, q, n_pos, scale, scores, out);
        return;
    }
    for (int i = 0; i < n_q; i++) attention_scalar_head(kv, hd, q[i], n_pos[i], scale, scores, out[i]);
}

void attention_store(void *dst, enum attn_type type, const float *src, int32_t n) {
    if (type == ATTN_F32) {
        memcpy(dst, src, (size_t)n * sizeof *src);
    } else if (matmul_simd()) {
        attention_avx2_to_f16(dst, src, n);
    } else {
        uint16_t *h = dst;
        for (int32_t i = 0; i < n; i++) h[i] = quant_f32_to_f16(src[i]);
    }
}
