/* Converting a GGUF model's weight matrices to another tensor type (`veil quantize`), and the
 * threaded row converter that the synthetic-model generator shares.
 *
 * What changes: 2-D tensors whose name ends in ".weight" take the target type when their row
 * length is a multiple of its block size. For the K-quants (blocks of 256) a row length that is
 * only a multiple of 32 falls back to Q8_0, as llama.cpp falls back to a 32-block type. Every
 * other tensor (norms, biases, odd shapes, source types veil cannot decode) is copied
 * unchanged. All metadata is copied; general.file_type is set to llama.cpp's code for the
 * target and general.quantization_version to 2. Rows are decoded to float and encoded again,
 * except tensors already of the chosen type, which are copied byte for byte. The output is
 * written one tensor at a time (memory: the largest output tensor) and atomically. */
#ifndef VEIL_QUANTIZE_H
#define VEIL_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/threadpool.h"

/* What happened to one tensor, reported as each is written. */
typedef struct quantize_tensor {
    const char *name;
    uint32_t from, to;            /* tensor types */
    const char *why;              /* NULL when `to` is the target; else why it is not */
    size_t done, count;           /* tensors written so far (this one included), of count */
    uint64_t bytes_done, bytes_total; /* output tensor bytes so far, of the whole file's */
} quantize_tensor;

typedef void (*quantize_notify)(void *ud, const quantize_tensor *t);

typedef struct quantize_params {
    uint32_t type;          /* target: Q8_0, Q4_0, Q4_K, Q6_K, F16 or BF16 (quantize_ftype >= 0) */
    int n_threads;          /* <= 0: one per CPU */
    quantize_notify notify; /* may be NULL; called on the calling thread */
    void *ud;
} quantize_params;

/* llama.cpp's general.file_type (LLAMA_FTYPE_*) for a file converted to `type`; -1 when
 * `type` is not a target veil quantizes to. Q4_K maps to Q4_K_S (14), the plain-type code. */
int quantize_ftype(uint32_t type);

/* The type a tensor gets when the file is converted to `target` (see above); when that is not
 * `target`, *why (if why is not NULL) says why, else it is set to NULL. */
uint32_t quantize_choose(uint32_t target, const char *name, uint32_t n_dims, const uint64_t *ne,
                         uint32_t src_type, const char **why);

/* Converts IN to OUT. 0, or -1 with err_msg() (unreadable input, a value the format cannot
 * hold, a write error); OUT is then left as it was. */
int quantize_file(const char *in, const char *out, const quantize_params *p);

/* Writes row `row` (n_in floats) to out. Called from several threads at once. */
typedef void (*quantize_row_src)(void *ud, int64_t row, float *out);

/* Encodes n_rows rows of n_in floats, produced by src, as `type` into dst (rows of
 * qtype_row_size(type, n_in) bytes), the rows split across the pool's threads. 0, or -1 with
 * err_msg() naming the first row that failed to encode. */
int quantize_rows(tpool *pool, uint32_t type, int64_t n_in, int64_t n_rows, quantize_row_src src,
                  void *ud, void *dst);

#endif
