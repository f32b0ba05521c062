/* The transformer forward pass over a batch of tokens that may belong to different sequences.
 *
 * A model_seq is one sequence's KV cache. A model_runner holds the scratch buffers and the
 * thread pool and runs batches: every weight matrix is read once for all tokens of a batch
 * (matrix x matrix), which is what makes prompt processing and continuous batching fast.
 * Tokens of the same sequence in one batch must come in increasing, consecutive positions;
 * a token at position p attends to positions 0..p of its sequence, so the cache must already
 * hold positions below the batch's first position of that sequence. Results do not depend on
 * how tokens are grouped into batches: each token's attention is computed alone, by a kernel
 * whose arithmetic depends only on that token and its sequence's cache (model/attention.h).
 *
 * model_ctx is the single-sequence convenience used by `veil run` and `veil eval`. */
#ifndef VEIL_FORWARD_H
#define VEIL_FORWARD_H

#include "model/model.h"

typedef struct model_runner model_runner;

/* KV memory is paged: a model_kv holds n_blocks blocks of MODEL_KV_BLOCK positions (all layers,
 * K and V), and a sequence maps its positions to blocks through a block table. A scheduler can
 * so share full blocks between sequences with a common prefix (the prefix cache) and give
 * memory to sequences as they grow. */
#define MODEL_KV_BLOCK 16

typedef struct model_kv model_kv;

/* The element type of cached K and V. F16 halves KV memory and the bytes attention reads; it
 * rounds each cached value to half precision (relative error <= 2^-11), which moves logits by
 * ~1e-3 — outside the reference tests' tolerances, so single-sequence use (model_ctx: `veil
 * run`, `veil eval`) keeps F32. */
typedef enum model_kv_type { MODEL_KV_F32, MODEL_KV_F16 } model_kv_type;
/* "f32", "f16". */
const char *model_kv_type_name(model_kv_type t);
/* 0, or -1 with err_msg() for a name other than "f32" or "f16". */
int model_kv_type_parse(const char *name, model_kv_type *out);

model_kv *model_kv_new(const model *m, int32_t n_blocks, model_kv_type type);
void model_kv_free(model_kv *kv);
/* Commits the memory of a CPU cache's blocks now (hugemem_populate); a device's cache is
 * allocated committed. 0, or -1 with err_msg(). */
int model_kv_populate(model_kv *kv);
int32_t model_kv_n_blocks(const model_kv *kv);
/* Bytes one block takes (K and V, every layer). */
size_t model_kv_block_bytes(const model *m, model_kv_type type);

typedef struct model_seq {
    model_kv *kv;
    int32_t *blocks;   /* blocks[i] holds positions [i * MODEL_KV_BLOCK, (i + 1) * MODEL_KV_BLOCK) */
    int32_t n_ctx;     /* positions usable: at most n_blocks * MODEL_KV_BLOCK */
    model_kv *own_kv;  /* set by model_seq_new: private storage freed with the sequence */
} model_seq;

/* A sequence with private storage for n_ctx positions (0 = the model's training context). */
model_seq *model_seq_new(const model *m, int32_t n_ctx, model_kv_type type);
/* A sequence of n_ctx positions over all of kv's blocks, which it then owns (also on failure;
 * NULL kv gives NULL with kv's error kept). n_ctx must fit kv. */
model_seq *model_seq_own(model_kv *kv, int32_t n_ctx);
void model_seq_free(model_seq *s);
int32_t model_seq_capacity(const model_seq *s);
/* Bytes of KV cache a sequence of n_ctx positions takes. */
size_t model_seq_bytes(const model *m, int32_t n_ctx, model_kv_type type);

/* Batches of up to max_batch tokens on n_threads threads (<= 0: one per CPU). */
model_runner *model_runner_new(const model *m, int32_t max_batch, int n_threads);
void model_runner_free(model_runner *r);
int32_t model_runner_max_batch(const model_runner *r);
/* The CPU runner's threads, for other parallel work between its forward passes on the thread
 * that runs them (tpool_run); NULL for a device's runner. */
struct tpool *model_runner_pool(model_runner *r);

typedef struct model_token {
    model_seq *seq;
    int32_t token, pos;
    float *logits; /* n_vocab floats written here; NULL = this token's logits are not needed */
} model_token;

/* Where the time of model_runner_forward goes (veil bench --profile). PROF_ATTENTION covers
 * biases, QK-norm, RoPE and the K/V stores as well (one parallel step); PROF_FFN_GATE_UP the
 * SwiGLU activation; PROF_TRANSFER a device's copies between host and device and the host's
 * share of a step (always 0 on the CPU). On a device, the ops are timed on the device (its
 * events), so profiling may run the step less efficiently than without (no CUDA graphs). */
enum model_prof_op {
    PROF_EMBED, PROF_NORM, PROF_QKV, PROF_ATTENTION, PROF_ATTN_OUT, PROF_FFN_GATE_UP,
    PROF_FFN_DOWN, PROF_OUTPUT, PROF_TRANSFER, PROF_COUNT
};
typedef struct model_profile {
    double seconds[PROF_COUNT];
} model_profile;
/* Accumulate per-op wall time into p (NULL stops). Costs two clock reads per op. */
void model_runner_set_profile(model_runner *r, model_profile *p);
const char *model_prof_name(int op);

/* Runs n <= max_batch tokens. 0, or -1 with err_msg() (token id or position out of range). */
int model_runner_forward(model_runner *r, const model_token *batch, int32_t n);

/* ---- other devices ---------------------------------------------------------------------
 * A runner or KV store whose work happens on another device (src/engine/device.h makes them,
 * src/cuda implements them). The functions above dispatch to it, so the engine drives every
 * device through the same calls; a batch is validated here first (token ids, positions, block
 * tables) and a sequence's KV must live on the runner's device. */
typedef struct model_backend {
    const char *name;
    int (*forward)(void *impl, const model_token *batch, int32_t n);
    void (*set_profile)(void *impl, model_profile *p); /* model_runner_set_profile */
    void (*runner_free)(void *impl);
    void (*kv_free)(void *impl);
} model_backend;

/* Wraps impl (ownership passes, also on failure). NULL + err_msg() when out of memory. */
model_runner *model_runner_wrap(const model *m, int32_t max_batch, const model_backend *b, void *impl);
model_kv *model_kv_wrap(const model *m, int32_t n_blocks, const model_backend *b, void *impl);
/* The device implementation behind kv (NULL for the CPU's). */
void *model_kv_impl(const model_kv *kv);

/* ---- single sequence ----------------------------------------------------------------- */

typedef struct model_ctx model_ctx;

model_ctx *model_ctx_new(const model *m, int32_t n_ctx);
model_ctx *model_ctx_new_threads(const model *m, int32_t n_ctx, int n_threads);
/* A context over an existing sequence and runner, e.g. on another device (ownership of both
 * passes, also on failure); prompts run in batches of the runner's max_batch. */
model_ctx *model_ctx_wrap(model_seq *seq, model_runner *runner);
void model_ctx_free(model_ctx *c);
int32_t model_ctx_size(const model_ctx *c);

/* Runs tokens[0..n_tok) at positions pos0.. (the cache must already hold positions < pos0),
 * in batches. Writes n_tok rows of n_vocab logits when all_logits, else only the last
 * token's row. 0, or -1 with err_msg() (context full, token id out of range). */
int model_forward(model_ctx *c, const int32_t *tokens, int32_t n_tok, int32_t pos0, float *logits,
                  bool all_logits);

#endif
