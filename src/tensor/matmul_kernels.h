/* The interface between matmul.c (public API, backend choice, activation layout) and the
 * kernel sets matmul_scalar.c, matmul_avx2.c and matmul_avx512.c, and the layout of quantized
 * activations, which the tests check against their own reference quantizer. Internal to src/tensor and its tests.
 *
 * Activation quantization, the one rule every implementation follows bit for bit: each block
 * of B consecutive values of a token (B = 32 for Q8_0, 256 for Q8_K) gets
 *   - if any value is infinite or NaN: q = 0 and d = NaN (so the products are NaN);
 *   - else, with amax = max |x|: if amax <= 2^-100, q = 0 and d = 0 (also keeps 127 / amax
 *     finite); otherwise q[i] = x[i] * (127 / amax) rounded to nearest, ties to even, so
 *     |q| <= 127, and
 *       Q8_0: d = amax / 127 rounded to half precision (round to nearest even) when that is a
 *             normal half (2^-14 .. 65504), else amax / 127;
 *       Q8_K: d = 1 / (127 / amax),
 *     each operation one IEEE float operation. These are the scales llama.cpp's CPU backend
 *     uses (its Q8_0 blocks store d as a half; outside the normal half range, where it would
 *     lose precision or overflow, we keep the float), and matching them matters: on small
 *     random models a one-ulp change of a scale moves later roundings and so the logits by
 *     ~0.1, while with the same scales veil matches llama.cpp's logits to ~1e-5. */
#ifndef VEIL_MATMUL_KERNELS_H
#define VEIL_MATMUL_KERNELS_H

#include "tensor/matmul.h"

#include <stdbool.h>
#include <stdint.h>

#define MATMUL_Q8_0_BLOCK 32
#define MATMUL_Q8_K_BLOCK 256
/* Token counts are padded to this in the per-block arrays, so the scales of a group of 8
 * tokens load as one vector; padding entries are 0. One token is not padded: its arrays stay
 * an eighth the size, which keeps them in L1 cache beside a wide matrix's stream (packed Q4_0
 * 2048x2048, one thread: 25-26 -> 32-34 GB/s). */
#define MATMUL_TOK_GROUP 8

/* The activation forms a backend may need (bits of matmul_input.ready). */
enum { MATMUL_FORM_Q8_0 = 1, MATMUL_FORM_Q8_K = 2 };

/* Activations quantized in blocks (see the rule above). For token t and block b, value i of
 * the block is qs[t * n_in + b * B + i] * d[b * n_tok_pad + t]. */
typedef struct matmul_q8 {
    int8_t *qs;     /* [n_tok][n_in] */
    float *d;       /* [n_in / B][n_tok_pad], token-minor */
    /* Q8_0: [n_in / 32][n_tok_pad], -8 and -128 times the sum of the block's q: what the offsets
     * of Q4_0's nibbles (value + 8) and of packed Q8_0's bytes (value + 128) add to an integer
     * dot product, ready to be added back (or to start the sum from) */
    int32_t *nsum8, *nsum128;
    int16_t *bsums; /* Q8_K: [n_tok][n_in / 16], the sum of the q of each 16 values */
} matmul_q8;

struct matmul_input {
    const float *x; /* [n_tok][n_in] */
    int64_t n_in, n_tok, n_tok_pad;
    enum matmul_backend backend;
    unsigned ready;       /* MATMUL_FORM_* made by matmul_input_prepare */
    matmul_q8 q8_0, q8_k; /* qs NULL when n_in is not a multiple of the block */
};

/* The reference kernels (matmul_mat_rows's contract on MATMUL_SCALAR). */
void matmul_scalar_rows(uint32_t type, const void *w, int64_t n_in, int64_t n_out,
                        const float *x, int64_t n_tok, float *y, int64_t row_begin,
                        int64_t row_end);

/* AVX2 kernels. usable: this CPU has AVX, AVX2, FMA and F16C (with OS support) and the kernels
 * were compiled in (x86 builds); nothing else here is called unless it says so.
 * quantize fills one form of `in` (whose qs is not NULL) from in->x; rows computes a row range
 * for a supported type whose form (if any) is ready and whose n_in fits its blocks. */
bool matmul_avx2_usable(void);
void matmul_avx2_quantize(matmul_input *in, unsigned form);
void matmul_avx2_rows(uint32_t type, const void *w, int64_t n_out, const matmul_input *in,
                      float *y, int64_t row_begin, int64_t row_end);

/* AVX-512 kernels (the AVX2 backend plus these). usable: matmul_avx2_usable() and this CPU has
 * CPU_AVX512. Activations are quantized by matmul_avx2_quantize; rows takes matmul_avx2_rows's
 * arguments and gives its outputs bit for bit (it hands over what it has no kernel for). */
bool matmul_avx512_usable(void);
void matmul_avx512_rows(uint32_t type, const void *w, int64_t n_out, const matmul_input *in,
                        float *y, int64_t row_begin, int64_t row_end);

#endif
