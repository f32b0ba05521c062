/* Attention kernels (attention.h): the portable reference kernel, the F16 row conversion, and
 * the run-time choice between these and the SIMD ones (attention_avx2.c, attention_avx512.c). */
#include "model/attention.h"

#include "tensor/matmul.h"
#include "tensor/quant.h"

#include <math.h>
#include <string.h>

size_t attention_scratch(int32_t n_pos) { return ((size_t)n_pos + ATTN_BLOCK - 1) / ATTN_BLOCK * ATTN_BLOCK; }

/* Element e of the cache at `base` (K or V storage) as a float. */
static float elem(const attn_kv *kv, const void *base, size_t e) {
    return kv->type == ATTN_F16 ? quant_f16_to_f32(((const uint16_t *)base)[e]) : ((const float *)base)[e];
}

/* Dot products in increasing element order, one float accumulator; weights normalised before
 * the weighted sum of V. */
void attention_scalar_head(const attn_kv *kv, int32_t hd, const float *q, int32_t n_pos,
                           float scale, float *s, float *out) {
    float max = -INFINITY;
    for (int32_t p = 0; p < n_pos; p++) {
        float dot = 0;
        for (int32_t i = 0; i < hd; i++) dot += q[i] * elem(kv, kv->k, attention_k_elem(kv, hd, p, i));
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
        float w = s[p] * inv;
        for (int32_t i = 0; i < hd; i++) out[i] += w * elem(kv, kv->v, attention_v_elem(kv, hd, p, i));
    }
}

void attention_head(const attn_kv *kv, int32_t hd, const float *q, int32_t n_pos, float scale,
                    float *scores, float *out) {
    attention_heads(kv, hd, 1, &q, &n_pos, scale, scores, &out);
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

void attention_warm(const attn_kv *kv, int32_t hd, int32_t n_pos, size_t max_bytes) {
    const size_t es = kv->type == ATTN_F16 ? 2 : 4, piece = (size_t)ATTN_BLOCK * (size_t)hd * es;
    size_t done = 0;
    for (int32_t p = 0; p < n_pos && done < max_bytes; p += ATTN_BLOCK, done += piece) {
        const char *k = (const char *)kv->k + attention_k_elem(kv, hd, p, 0) * es;
        const char *v = (const char *)kv->v + attention_v_elem(kv, hd, p, 0) * es;
        for (size_t o = 0; o < piece; o += 64) {
            __builtin_prefetch(k + o, 0, 2);
            __builtin_prefetch(v + o, 0, 2);
        }
    }
}

void attention_store_kv(const attn_kv *kv, int32_t hd, int32_t pos, const float *k, const float *v) {
    const bool f16 = kv->type == ATTN_F16;
    const size_t ek = attention_k_elem(kv, hd, pos, 0), ev = attention_v_elem(kv, hd, pos, 0);
    attention_store(f16 ? (void *)((uint16_t *)kv->v + ev) : (void *)((float *)kv->v + ev), kv->type, v, hd);
    /* the K row goes down a column of its block: element d at d * ATTN_BLOCK */
    if (!f16) {
        float *col = (float *)kv->k + ek;
        for (int32_t d = 0; d < hd; d++) col[(size_t)d * ATTN_BLOCK] = k[d];
        return;
    }
    uint16_t *col = (uint16_t *)kv->k + ek, half[64];
    for (int32_t d0 = 0; d0 < hd; d0 += 64) { /* converted as attention_store converts, in pieces */
        const int32_t n = hd - d0 < 64 ? hd - d0 : 64;
        attention_store(half, ATTN_F16, k + d0, n);
        for (int32_t d = 0; d < n; d++) col[(size_t)(d0 + d) * ATTN_BLOCK] = half[d];
    }
}
