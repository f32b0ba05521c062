/* Host-side planning for the CUDA backend, in plain C so that it is compiled and tested on
 * every machine (GPU or not): where each weight goes in the one device allocation that holds
 * them, how big the runner's scratch buffers are, and how one batch is packed into the int32
 * arrays the kernels read (token ids, positions, block tables, which rows want logits).
 * The .cu files only execute these plans. */
#ifndef VEIL_CUDA_PLAN_H
#define VEIL_CUDA_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "model/forward.h"

/* Every device buffer starts on this boundary (cuBLAS and vector loads like 256). */
#define CUDA_ALIGN 256

/* One host array copied to offset `offset` of the weight allocation. */
typedef struct cuda_upload {
    const void *src;
    size_t bytes, offset;
} cuda_upload;

typedef struct cuda_weight_plan {
    cuda_upload *items;
    int n;
    size_t total; /* bytes of the allocation */
} cuda_weight_plan;

/* Plans every matrix (in its file type) and F32 vector (norms, biases) of m. Arrays shared by
 * two roles (tied embeddings) are uploaded once. 0, or -1 + err_msg(). */
int cuda_plan_weights(const model *m, cuda_weight_plan *p);
/* Offset of the host array src in the allocation; (size_t)-1 when it was not planned. */
size_t cuda_plan_offset(const cuda_weight_plan *p, const void *src);
void cuda_plan_weights_free(cuda_weight_plan *p);

/* Products with at most this many tokens run our matrix-vector kernels, which decode each
 * weight once for all of them straight from its file format; larger ones go through cuBLAS
 * (block types dequantized to F16 a slice of rows at a time into a scratch of
 * CUDA_DEQ_SCRATCH bytes). Decode steps of up to CUDA_GRAPH_MAX tokens are CUDA graphs. */
#define CUDA_MMV_TOKENS 8
#define CUDA_GRAPH_MAX 64
#define CUDA_DEQ_SCRATCH ((size_t)64 << 20)
/* Rows of logits computed per product (bounds the logits buffer for long prompts). */
#define CUDA_LOGIT_ROWS 64

/* Attention. Steps with a run of at least CUDA_FLASH_MIN_RUN tokens of one sequence (a
 * prompt) use the tiled tensor-core kernel: tiles of up to CUDA_FLASH_ROWS consecutive tokens
 * of one sequence. Other steps (decode) split each (token, head)'s positions over up to
 * CUDA_ATT_SPLIT_MAX blocks, so that even one token keeps the GPU busy; the blocks' partial
 * results (max, sum, weighted values: head_dim + 2 floats) meet in a scratch of
 * max(max_batch * n_head, CUDA_ATT_MIN_PARTS) entries. */
#define CUDA_FLASH_ROWS 64
#define CUDA_FLASH_MIN_RUN 16
#define CUDA_ATT_SPLIT_MAX 32
#define CUDA_ATT_MIN_PARTS 1024
/* Blocks per (token, head) for n tokens of n_head heads on n_sm multiprocessors: about two
 * blocks per multiprocessor in all, within [1, CUDA_ATT_SPLIT_MAX] and the scratch's parts. */
int32_t cuda_att_splits(int32_t n, int32_t n_head, int32_t n_sm, int64_t parts);

/* Byte offsets of the runner's device buffers inside one allocation. F32 activations are
 * [max_batch][width]; rope_cs the batch's cos/sin table; half an F16/BF16 copy of a product's
 * input for cuBLAS and deq the dequantized slice (both absent, 0 bytes, for runners whose
 * batches never leave the matrix-vector kernels). */
typedef struct cuda_scratch_plan {
    size_t x, xn, q, k, v, att, att_part, gate, up, logit_in, logits, rope_cs, rope_freq, half, deq;
    size_t half_bytes, deq_bytes, total;
    int64_t att_parts;    /* entries of att_part */
    int64_t wide;         /* widest product input: max(n_embd, q_dim, n_ff) */
    int32_t logit_rows;   /* rows of the logits buffer: min(max_batch, CUDA_LOGIT_ROWS) */
} cuda_scratch_plan;

void cuda_plan_scratch(const model_hparams *hp, int32_t max_batch, cuda_scratch_plan *p);

/* Bytes of device KV for n_blocks (K and V, F32, every layer): model_kv_block_bytes each. */
size_t cuda_plan_kv_bytes(const model *m, int32_t n_blocks);

/* ---- one batch ----------------------------------------------------------------------------
 * The int32 arrays are laid out at fixed offsets for a runner of max_batch B, so a captured
 * CUDA graph keeps reading the right place step after step:
 *   token[B] pos[B] bt_off[B] out_tok[B] tile_first[B] tile_n[B] | bt[bt_cap]
 * bt holds block tables: consecutive tokens of the same sequence share one copy, long enough
 * for the furthest position among them; bt_off[t] is where token t's table starts. out_tok
 * lists, in batch order, the tokens that want logits. Tiles cut each run of consecutive tokens
 * of one sequence into pieces of up to CUDA_FLASH_ROWS: tile i is tokens tile_first[i] ..
 * tile_first[i] + tile_n[i] - 1. */
typedef struct cuda_step {
    int32_t n, n_out;
    int32_t bt_len;   /* bt entries used */
    int32_t max_pos;  /* largest pos + 1 in the batch */
    int32_t n_tiles;
    int32_t max_run;  /* longest run of one sequence's consecutive tokens */
} cuda_step;

#define CUDA_STEP_FIXED 6 /* arrays of B entries before bt */
static inline size_t cuda_step_ints(int32_t max_batch, int32_t bt_cap) {
    return (size_t)CUDA_STEP_FIXED * (size_t)max_batch + (size_t)bt_cap;
}

/* Block-table entries batch needs (the bt_cap that cuda_step_pack will accept). */
int32_t cuda_step_bt_need(const model_token *batch, int32_t n);
/* Packs a validated batch (forward.c's checks passed) into ints for a runner of max_batch
 * B with bt_cap table entries. -1 + err_msg() when bt_cap is too small. */
int cuda_step_pack(const model_token *batch, int32_t n, int32_t max_batch, int32_t bt_cap,
                   int32_t *ints, cuda_step *st);

#endif
