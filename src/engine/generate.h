/* Single-sequence text generation: tokenize a prompt, run it, then sample, decode and stream
 * tokens until end of generation, a stop string, the token limit or the end of the context.
 * This is `veil run`'s engine; the server's batched scheduler shares the same pieces
 * (tokenizer, sampler, stop-string matcher, forward pass). */
#ifndef VEIL_GENERATE_H
#define VEIL_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/device.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/tokenizer.h"

typedef struct gen_params {
    int32_t n_predict;        /* tokens to generate; -1 = until end of generation or context */
    int32_t n_ctx;            /* context positions; 0 = the model's, capped at GEN_DEFAULT_CTX */
    int n_threads;            /* 0 = one per CPU */
    device *device;           /* where the forward pass runs; NULL = the CPU (n_threads) */
    sampler_params sampling;
    const char *const *stop;  /* stop strings (not emitted) */
    int n_stop;
    bool add_special;         /* BOS/EOS around the prompt as the model's metadata says */
    bool parse_special;       /* special tokens written in the prompt are matched */
    bool render_special;      /* emit the text of control tokens that are generated */
} gen_params;

#define GEN_DEFAULT_CTX 4096

typedef enum gen_finish { GEN_LENGTH, GEN_STOP, GEN_CONTEXT } gen_finish;

typedef struct gen_result {
    int32_t n_prompt, n_generated;
    gen_finish finish;
    double prompt_seconds, gen_seconds;
} gen_result;

/* Receives generated text as it becomes final; returns nonzero to stop generating. */
typedef int (*gen_emit_fn)(void *ud, const char *text, size_t len);

void gen_params_default(gen_params *p);
/* 0, or -1 with err_msg() (empty prompt for a model without BOS, prompt longer than the
 * context, bad sampling parameters). */
int generate(const model *m, const tokenizer *tok, const char *prompt, size_t prompt_len,
             const gen_params *p, gen_emit_fn emit, void *ud, gen_result *res);

#endif
