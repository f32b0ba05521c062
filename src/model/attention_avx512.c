/* AVX-512 attention for one or several queries over one cache (attention_heads and
 * attention_head on the AVX-512 matmul backend). The Makefile compiles *_avx512.c with AVX-512;
 * attention.c calls this only when the matmul backend is MATMUL_AVX512, which the CPU check
 * allowed.
 *
 * The shared code of attention_simd.h at 16 lanes: the score pass reads a whole block's element
 * d (16 positions) per load (scores16), the weighted sum takes slices of 64 output floats for
 * one query, 32 and 16 for several. Every lane does what an AVX2 lane does, so the results are
 * the AVX2 kernels' bit for bit. For one query (decode) it took d1024-l16's attention from
 * 0.22-0.23 to 0.20-0.21 ms per token at 128 positions (bench/README.md, session 8). */
#include "model/attention.h"

#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX2__) && defined(__FMA__) && \
    defined(__F16C__)
#include "model/attention_simd.h"

HEADS_TABLE(heads16, scores16)

void attention_avx512_heads(const attn_kv *kv, int32_t hd, int n_q, const float *const q[],
                            const int32_t n_pos[], float scale, float *scores, float *const out[]) {
    heads16[n_q - 1](kv, hd, q, n_pos, scale, scores, out);
}

#else /* built without AVX-512: attention.c never calls this */

void attention_avx512_heads(const attn_kv *kv, int32_t hd, int n_q, const float *const q[],
                            const int32_t n_pos[], float scale, float *scores, float *const out[]) {
    attention_avx2_heads(kv, hd, n_q, q, n_pos, scale, scores, out);
}

#endif
