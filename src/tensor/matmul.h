/* Matrix products y = W·x for weights in any supported tensor type and float activations, with
 * a process-wide choice of kernel set (backend). A weight matrix W is n_out rows of n_in
 * elements, each row qtype_row_size(type, n_in) bytes. type must be qtype_supported() and n_in
 * a multiple of its block size (checked when tensors load); otherwise the outputs are NaN.
 *
 * Backends, and what they compute:
 *   MATMUL_SCALAR  portable C, the reference: weights decoded to float, float activations, the
 *                  summation order documented in matmul_scalar.c.
 *   MATMUL_AVX2    x86-64 with AVX2, FMA and F16C (matmul_avx2.c). F32, F16 and BF16 weights:
 *                  float activations, fused multiply-adds in 8 lanes. Q8_0 and Q4_0
 *                  weights: activations quantized to Q8_0 (blocks of 32, scale amax/127),
 *                  Q4_K and Q6_K weights: to Q8_K (blocks of 256), then integer dot products —
 *                  the activation formats llama.cpp's CPU backend uses, so results stay close to
 *                  llama.cpp's. This costs a relative error of about 1/254 per activation block.
 *   MATMUL_AVX512  x86-64 with AVX-512 F/BW/VL/DQ and VNNI as well (matmul_avx512.c): the AVX2
 *                  backend with faster kernels for Q8_0, Q4_0, Q4_K and Q6_K (any number of
 *                  tokens; 16 rows at once, VNNI byte dot products) and for F32, F16 and BF16
 *                  with 2 or more tokens. Its outputs are bit for bit those of AVX2.
 * Packed matrices (tensor/repack.h: Q4_0, Q8_0, Q4_K, Q6_K, F16, BF16 rows interleaved in groups of 16) are
 * computed by MATMUL_AVX512 only, with the outputs of their unpacked originals bit for bit; on
 * other backends their outputs are NaN.
 * Within one backend, a token's outputs do not depend on the batch it is computed in (n_tok,
 * the other tokens) or on how the rows are split: one-token and batched products agree bit for
 * bit. Products never allocate except the float-input convenience calls below.
 *
 * The fast path, used by the forward pass: put the activations in a matmul_input once per set
 * of products that share them (matmul_input_init, then matmul_input_prepare for each weight
 * type), then run matmul_rows on row ranges from any number of threads. */
#ifndef VEIL_MATMUL_H
#define VEIL_MATMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum matmul_backend { MATMUL_SCALAR = 0, MATMUL_AVX2 = 1, MATMUL_AVX512 = 2 };

/* The backend products use from now on. It starts as the one the environment variable
 * VEIL_KERNELS names at the first use ("scalar", "avx2", "avx512") when this CPU supports it,
 * else as the best one this CPU supports.
 * Switching while another thread is inside a product is a race: choose up front (tests switch
 * between products). Returns 0, or -1 with err_msg set when this CPU cannot run it. */
int matmul_set_backend(enum matmul_backend b);
enum matmul_backend matmul_backend(void);
bool matmul_backend_supported(enum matmul_backend b);
/* The backend is a SIMD one (MATMUL_AVX2 or MATMUL_AVX512): the CPU has AVX2, FMA and F16C, so
 * the other *_avx2.c kernels (attention, SwiGLU) may run too. */
bool matmul_simd(void);
/* "scalar", "avx2", "avx512"; "?" for an unknown value. */
const char *matmul_backend_name(enum matmul_backend b);

/* ---- activations shared by several products ---- */

typedef struct matmul_input matmul_input;

/* Bytes of scratch a matmul_input for n_tok rows of n_in activations needs on any backend, for
 * any weight type. */
size_t matmul_input_size(int64_t n_in, int64_t n_tok);

/* Lays out a matmul_input for x (n_tok rows of n_in floats, which must stay unchanged while it
 * is used) in scratch (scratch_size bytes, any alignment), for the current backend. Returns it,
 * or NULL with err_msg set when scratch_size < matmul_input_size(n_in, n_tok). */
matmul_input *matmul_input_init(void *scratch, size_t scratch_size, const float *x, int64_t n_in,
                                int64_t n_tok);

/* Converts the activations into the form weights of `type` need (quantized blocks, or nothing).
 * Call it for each type before matmul_rows; a form already made is not made again. Not thread
 * safe: prepare on one thread, then share the input read-only. */
void matmul_input_prepare(matmul_input *in, uint32_t type);

/* Y[t][r] = dot(row r of W, X[t]) for row_begin <= r < row_end and every token t (Y is n_tok
 * rows of n_out floats; other entries are left alone), on the backend `in` was made for. W has
 * in's n_in columns. Reentrant: threads may share `in` and work on disjoint row ranges. */
void matmul_rows(uint32_t type, const void *w, int64_t n_out, const matmul_input *in, float *y,
                 int64_t row_begin, int64_t row_end);

/* Starts bringing the first `bytes` of W's rows from `row` on (a multiple of 16) into the L2
 * cache, stopping at W's end (n_out rows): a product about to start on those rows then does
 * not wait for its first cache lines. Only a hint: it changes no result. */
void matmul_prefetch(uint32_t type, const void *w, int64_t n_in, int64_t n_out, int64_t row,
                     size_t bytes);

/* ---- convenience: float activations given directly ---- */

/* matmul_rows for X (n_tok rows of n_in floats) on the current backend. A backend that
 * quantizes activations allocates its scratch for the call; if that fails, Y's entries are
 * NaN. */
void matmul_mat_rows(uint32_t type, const void *w, int64_t n_in, int64_t n_out, const float *x,
                     int64_t n_tok, float *y, int64_t row_begin, int64_t row_end);
/* All rows of the batched product: Y[t][r] = dot(row r of W, X[t]). */
void matmul_mat(uint32_t type, const void *w, int64_t n_in, int64_t n_out, const float *x,
                int64_t n_tok, float *y);
/* One token: y[r] = dot(row r of W, x). */
void matmul_vec(uint32_t type, const void *w, int64_t n_in, int64_t n_out, const float *x,
                float *y);

/* Decodes row `row` of W into out[0..n_in) (embedding lookup). */
void matmul_get_row(uint32_t type, const void *w, int64_t n_in, int64_t row, float *out);

#endif
