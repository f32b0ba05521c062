/* A transformer model loaded from GGUF: hyperparameters from metadata and weight views into the
 * mmapped file (never copied, except small norm/bias vectors that are not F32). Supports the
 * `llama` (Llama 2/3, TinyLlama, SmolLM, stories), `qwen2` (QKV bias, NEOX RoPE) and `qwen3`
 * (per-head RMSNorm on q and k, head_dim from key_length) architectures. */
#ifndef VEIL_MODEL_H
#define VEIL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "model/gguf.h"

typedef enum model_arch { ARCH_LLAMA, ARCH_QWEN2, ARCH_QWEN3 } model_arch;

typedef struct model_hparams {
    model_arch arch;
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
    int32_t rope_dim;   /* rotated dimensions per head (<= head_dim) */
    bool rope_neox;     /* rotate (x[i], x[i + d/2]) instead of (x[2i], x[2i+1]) */
    float rope_theta, rms_eps;
} model_hparams;

/* A matrix of n_out rows, each n_in elements of `type`, contiguous. */
typedef struct model_matrix {
    uint32_t type;
    int64_t n_in, n_out;
    const void *data;
} model_matrix;

typedef struct model_layer {
    const float *attn_norm, *ffn_norm;
    const float *q_norm, *k_norm;  /* qwen3 */
    const float *bq, *bk, *bv;     /* qwen2 */
    model_matrix wq, wk, wv, wo, w_gate, w_up, w_down;
} model_layer;

typedef struct model {
    gguf *file;
    char *name;           /* general.name or the file name */
    model_hparams hp;
    model_matrix tok_embd;
    model_matrix output;  /* == tok_embd when the embeddings are tied */
    const float *output_norm;
    model_layer *layers;
    float **owned;        /* vectors converted to F32 at load time */
    int n_owned;
    /* a packed copy (model_pack.h): its matrices in pack, all else borrowed from base */
    const struct model *base;
    void *pack;
    size_t pack_bytes;
} model;

/* Loads and checks every tensor's presence, type and shape; NULL with err_msg() naming the
 * file and the problem. */
model *model_load(const char *path);
/* Same over an already opened file (ownership passes to the model, also on failure). */
model *model_from_gguf(gguf *g);
void model_free(model *m);
const char *model_arch_name(model_arch a);

#endif
