/* The transformer forward pass and the per-sequence state it needs (the KV cache and scratch
 * buffers). A prompt is processed in chunks as matrix x matrix products; one new token as
 * matrix x vector. Results are the same however the tokens are split into calls. */
#ifndef VEIL_FORWARD_H
#define VEIL_FORWARD_H

#include "model/model.h"

typedef struct model_ctx model_ctx;

/* n_ctx: positions the KV cache holds (0 = the model's training context). NULL + err_msg(). */
model_ctx *model_ctx_new(const model *m, int32_t n_ctx);
void model_ctx_free(model_ctx *c);
int32_t model_ctx_size(const model_ctx *c);

/* Runs tokens[0..n_tok) at positions pos0.. (the cache must already hold positions < pos0).
 * Writes n_tok rows of n_vocab logits when all_logits, else only the last token's row.
 * Returns 0, or -1 with err_msg() (context full, token id out of range). */
int model_forward(model_ctx *c, const int32_t *tokens, int32_t n_tok, int32_t pos0, float *logits,
                  bool all_logits);

#endif
