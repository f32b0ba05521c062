/* Causal attention of one query head over one sequence's cached keys and values — the inner
 * loop of the forward pass — and the conversion of new K/V rows into the cache's element type.
 *
 * Two kernel sets, chosen at run time with the matrix kernels (tensor/matmul.h): when
 * matmul_backend() is a SIMD one (MATMUL_AVX2 or MATMUL_AVX512: the CPU has AVX2, FMA and
 * F16C) the AVX2 kernels of attention_avx2.c run (several queries at once on AVX-512 by
 * attention_avx512.c, with the same results), else the portable ones of attention.c (the
 * reference). VEIL_KERNELS=scalar and matmul_set_backend() so switch both at once.
 *
 * Cache layout, as the kernels see it: positions come in blocks of ATTN_BLOCK rows; a block
 * table maps block i of a sequence (positions [i * ATTN_BLOCK, (i + 1) * ATTN_BLOCK)) to a
 * block of storage, and within a block the piece of one (layer, KV head) is ATTN_BLOCK *
 * head_dim consecutive elements (F32, or IEEE half precision for ATTN_F16). A V piece holds
 * its rows one after another (row r: head_dim elements from r * head_dim); a K piece holds them
 * transposed (element d of row r at d * ATTN_BLOCK + r), so that one vector load gives element d
 * of 16 positions and a block's scores come out of fused multiply-adds with no horizontal sums
 * (attention_k_elem, attention_v_elem).
 *
 * What a kernel computes for a query q of head_dim floats and n_pos positions:
 *     s_p = scale * dot(q, k_p),  w_p = exp(s_p - max s) / sum_p' exp(s_p' - max s),
 *     out = sum_p w_p * v_p,
 * the exponentials' sum in double. The result depends only on (q, the cached rows, n_pos): not
 * on the batch a token is computed in or on the thread that runs it, so a sequence's outputs
 * are the same alone and batched. The kernels differ from each other by float rounding. */
#ifndef VEIL_ATTENTION_H
#define VEIL_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATTN_BLOCK 16

enum attn_type { ATTN_F32, ATTN_F16 };

/* One sequence's cached K and V rows of one (layer, KV head). */
typedef struct attn_kv {
    const void *k, *v;       /* storage: float, or uint16_t halves for ATTN_F16 */
    enum attn_type type;
    const int32_t *blocks;   /* block table: storage block of each ATTN_BLOCK positions */
    size_t block_elems;      /* elements from one storage block to the next */
    size_t off;              /* elements from a block's start to this (layer, head)'s piece */
} attn_kv;

/* Element d of the K row of position p, and of its V row, counted from kv->k and kv->v. */
static inline size_t attention_k_elem(const attn_kv *kv, int32_t head_dim, int32_t p, int32_t d) {
    (void)head_dim;
    return (size_t)kv->blocks[p / ATTN_BLOCK] * kv->block_elems + kv->off + (size_t)d * ATTN_BLOCK +
           (size_t)(p % ATTN_BLOCK);
}
static inline size_t attention_v_elem(const attn_kv *kv, int32_t head_dim, int32_t p, int32_t d) {
    return (size_t)kv->blocks[p / ATTN_BLOCK] * kv->block_elems + kv->off +
           (size_t)(p % ATTN_BLOCK) * (size_t)head_dim + (size_t)d;
}

/* Scratch floats a call with n_pos positions needs (rounded up to whole blocks: the kernels
 * compute a block's scores together). */
size_t attention_scratch(int32_t n_pos);

/* out[0..head_dim) = attention of q over positions [0, n_pos) of kv (n_pos >= 1), with
 * `scores` as scratch of attention_scratch(n_pos) floats. out must not overlap q. */
void attention_head(const attn_kv *kv, int32_t head_dim, const float *q, int32_t n_pos,
                    float scale, float *scores, float *out);

/* Most queries one attention_heads call takes. */
#define ATTN_MAX_Q 8

/* For i < n_q (1..ATTN_MAX_Q): out[i] = attention_head(kv, head_dim, q[i], n_pos[i], ...), bit
 * for bit, with each cache row read once for all the queries (a prompt's tokens, the query
 * heads that share a KV head). scores: n_q * attention_scratch(the largest n_pos) floats. No
 * out[i] may overlap any q[j]. */
void attention_heads(const attn_kv *kv, int32_t head_dim, int n_q, const float *const q[],
                     const int32_t n_pos[], float scale, float *scores, float *const out[]);

/* Writes n floats into the cache's element type at dst (rounding to nearest even for F16). */
void attention_store(void *dst, enum attn_type type, const float *src, int32_t n);

/* Writes position pos's K and V rows (head_dim floats each), in the layout above, into the
 * cache that kv views; its storage (kv->k, kv->v) must be writable. */
void attention_store_kv(const attn_kv *kv, int32_t head_dim, int32_t pos, const float *k, const float *v);

/* Starts bringing the K and V pieces of positions [0, n_pos) into the L2 cache, at most
 * max_bytes of each: attention about to run over a cache that is not in any cache yet then
 * does not wait for its first blocks. Only a hint: it changes no result. */
void attention_warm(const attn_kv *kv, int32_t head_dim, int32_t n_pos, size_t max_bytes);

/* The kernel sets, for tests that compare them; attention_heads (and so attention_head) picks
 * one. The AVX2 ones must only be called when matmul_backend_supported(MATMUL_AVX2) and need
 * head_dim % 8 == 0; attention_avx2_head is attention_avx2_heads with one query. */
void attention_scalar_head(const attn_kv *kv, int32_t head_dim, const float *q, int32_t n_pos,
                           float scale, float *scores, float *out);
void attention_avx2_head(const attn_kv *kv, int32_t head_dim, const float *q, int32_t n_pos,
                         float scale, float *scores, float *out);
void attention_avx2_heads(const attn_kv *kv, int32_t hd, int n_q, const float *const q[],
                          const int32_t n_pos[], float scale, float *scores, float *const out[]);
void attention_avx2_to_f16(uint16_t *dst, const float *src, int32_t n);
/* attention_avx2_heads on AVX-512 (16 positions per register, the same results), one query or
 * several; only when matmul_backend() is MATMUL_AVX512. */
void attention_avx512_heads(const attn_kv *kv, int32_t hd, int n_q, const float *const q[],
                            const int32_t n_pos[], float scale, float *scores, float *const out[]);

#endif
