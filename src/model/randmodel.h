/* Random-weight models of real shapes, for benchmarks and tests (`veil bench --make-model`):
 * gaussian matrices (std 0.02), norms of 1, the given tensor type, and a small but valid
 * tokenizer vocabulary of the family the architecture uses (SentencePiece `llama` with byte
 * fallback for llama shapes, byte-level BPE `gpt2`/`qwen2` with merges for qwen3), so the file
 * loads everywhere a real model of that shape does. Weights are generated and encoded row by
 * row on a thread pool while the file is written; the same seed gives the same file whatever
 * the thread count. */
#ifndef VEIL_RANDMODEL_H
#define VEIL_RANDMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/quantize.h"

typedef struct randmodel_shape {
    const char *name;
    const char *arch;  /* "llama" or "qwen3" (q/k norms, NEOX RoPE) */
    int32_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
    float rope_theta, rms_eps;
    bool tied;         /* no output.weight: the classifier reuses token_embd */
    bool hidden;       /* a small shape for tests, left out of listings */
} randmodel_shape;

/* Every shape; *n receives the count. */
const randmodel_shape *randmodel_shapes(size_t *n);
/* The shape of that name, or NULL. */
const randmodel_shape *randmodel_find(const char *name);

/* Writes the model to path atomically: matrices in `type` (F32 or any quantize_ftype type;
 * matrices whose rows do not fit it follow quantize_choose), everything else F32. notify (may
 * be NULL) reports each tensor as it is written. 0, or -1 with err_msg(). */
int randmodel_write(const randmodel_shape *s, uint32_t type, const char *path, int n_threads,
                    uint64_t seed, quantize_notify notify, void *ud);

#endif
