/* Scalar reference matrix kernels: weights in any supported tensor type, float activations,
 * float math. A weight matrix W is n_out rows of n_in elements, each row
 * qtype_row_size(type, n_in) bytes. SIMD kernels may replace these later as long as they keep
 * the summation order documented in matmul.c, which makes one-token and batched products
 * agree bit for bit. No allocation, no global state: safe to call from many threads at once
 * (for example on disjoint row ranges). type must be qtype_supported() and n_in a multiple of
 * its block size (checked when tensors load); otherwise the outputs are NaN. */
#ifndef VEIL_MATMUL_H
#define VEIL_MATMUL_H

#include <stdint.h>

/* y[r] = dot(row r of W, x) for r < n_out. */
void matmul_vec(uint32_t type, const void *w, int64_t n_in, int64_t n_out, const float *x,
                float *y);

/* The batched product: X is n_tok rows of n_in floats, Y n_tok rows of n_out floats,
 * Y[t][r] = dot(row r of W, X[t]). Each weight row is decoded once for all n_tok inputs.
 * Y[t] is bit-identical to matmul_vec(..., X[t], Y[t]). */
void matmul_mat(uint32_t type, const void *w, int64_t n_in, int64_t n_out, const float *x,
                int64_t n_tok, float *y);

/* matmul_mat restricted to the rows row_begin <= r < row_end (other entries of Y are left
 * alone), so a thread pool can split the rows of one product. */
void matmul_mat_rows(uint32_t type, const void *w, int64_t n_in, int64_t n_out, const float *x,
                     int64_t n_tok, float *y, int64_t row_begin, int64_t row_end);

/* Decodes row `row` of W into out[0..n_in) (embedding lookup). */
void matmul_get_row(uint32_t type, const void *w, int64_t n_in, int64_t row, float *out);

#endif
