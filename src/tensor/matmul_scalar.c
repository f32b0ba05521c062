/* Scalar reference matrix kernels: the MATMUL_SCALAR backend (see matmul.h), portable C.
 *
 * The summation order, which every path of this backend keeps so that batched and one-token
 * results stay bit-identical (other backends define their own; see matmul.h): a row is cut
 * into chunks of MATMUL_CHUNK elements (the last may be shorter). Within a chunk, element i
 * is multiplied and added into lane i % 16, each lane in increasing i, starting from 0; the
 * 16 lanes are then folded pairwise as lane k += lane k+8, then k += k+4, k += k+2, and the
 * chunk's sum is lane 0 + lane 1. Chunk sums are added to the row's total in order, starting
 * from 0. (The 16 lanes are two 8-float AVX registers or one AVX-512 register, the fold their
 * usual horizontal sum, should a SIMD kernel ever want to reproduce these results.)
 *
 * Weights are decoded a chunk at a time into a buffer on the stack, so there is no allocation
 * and no per-thread state; the chunk is the K-quant super-block, which every supported block
 * size divides, so a chunk always starts on a block boundary. */
#include "tensor/matmul_kernels.h"

#include "tensor/qtype.h"
#include "tensor/quant.h"

#include <math.h>

#define MATMUL_CHUNK 256
#define MATMUL_LANES 16

static float dot_chunk(const float *a, const float *b, int n) {
    float lane[MATMUL_LANES] = {0};
    int i = 0;
    for (; i + MATMUL_LANES <= n; i += MATMUL_LANES)
        for (int k = 0; k < MATMUL_LANES; k++) lane[k] += a[i + k] * b[i + k];
    for (int k = 0; i < n; i++, k++) lane[k] += a[i] * b[i];
    for (int width = MATMUL_LANES / 2; width >= 1; width /= 2)
        for (int k = 0; k < width; k++) lane[k] += lane[k + width];
    return lane[0];
}

void matmul_scalar_rows(uint32_t type, const void *w, int64_t n_in, int64_t n_out,
                        const float *x, int64_t n_tok, float *y, int64_t row_begin,
                        int64_t row_end) {
    const size_t row_bytes = qtype_row_size(type, (uint64_t)n_in);
    const size_t chunk_bytes = qtype_row_size(type, MATMUL_CHUNK);
    const uint8_t *wb = w;
    float buf[MATMUL_CHUNK];
    if (!qtype_supported(type) || n_in <= 0 || row_bytes == 0) {
        for (int64_t t = 0; t < n_tok; t++)
            for (int64_t r = row_begin; r < row_end; r++) y[t * n_out + r] = n_in == 0 ? 0 : NAN;
        return;
    }
    for (int64_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = wb + (size_t)r * row_bytes;
        for (int64_t t = 0; t < n_tok; t++) y[t * n_out + r] = 0;
        for (int64_t c = 0; c < n_in; c += MATMUL_CHUNK, row += chunk_bytes) {
            const int len = (int)(n_in - c < MATMUL_CHUNK ? n_in - c : MATMUL_CHUNK);
            quant_dequantize_row(type, row, buf, len);
            for (int64_t t = 0; t < n_tok; t++)
                y[t * n_out + r] += dot_chunk(buf, x + t * n_in + c, len);
        }
    }
}
