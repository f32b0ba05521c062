/* From a parsed OpenAI request to what the scheduler runs: the prompt token ids (chat
 * messages through the chat template, completions prompts tokenized or taken as ids), the
 * token budget and sampling parameters of every choice. Transport-free, so the HTTP server
 * and the network's worker plan requests the same way.
 *
 * Rules:
 *   - choices: n per prompt; choice i uses prompt i / n (OpenAI's order for several prompts)
 *   - seed: choice i samples with seed + i, so choice 0 of n equals a lone request with the
 *     same seed; without a seed, a random one per request
 *   - max_tokens: prompt + max_tokens must fit the context (else 400 "max_tokens"); when
 *     absent, chat gets the rest of the context and completions 16 (OpenAI's default),
 *     capped to the rest of the context
 *   - a prompt that leaves no room to generate is a 400 naming "messages" or "prompt"
 *   - completions text is tokenized with BOS as the model wants and special tokens parsed
 *     (the caller owns the whole prompt); token-id prompts are used as given
 *   - sampling: OpenAI's temperature/top_p/penalties, plus top_k and min_p; top_p 0 means
 *     greedy; penalties look at the whole history (prompt and output), as OpenAI's do */
#ifndef VEIL_OAI_PLAN_H
#define VEIL_OAI_PLAN_H

#include <stdint.h>

#include "api/oai_error.h"
#include "api/oai_request.h"
#include "engine/sched.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"

#define OAI_DEFAULT_COMPLETION_TOKENS 16

typedef struct oai_plan_prompt {
    int32_t *ids;
    int32_t n_ids;
    int32_t max_tokens;
} oai_plan_prompt;

typedef struct oai_plan {
    oai_plan_prompt *prompts;
    int32_t n_prompts;
    int32_t n_per_prompt;
    int32_t n_choices;        /* n_prompts * n_per_prompt */
    uint64_t seed;
    sched_params params;      /* shared part; points into the request (stop, logit_bias) */
} oai_plan;

/* 0 and *p filled (free with oai_plan_free; the request must outlive it), or -1 with *e. */
int oai_plan_build(const oai_request *r, const tokenizer *tok, chat_tmpl tmpl, int32_t n_ctx,
                   oai_plan *p, oai_error *e);
/* The prompt and parameters of choice i. */
void oai_plan_choice(const oai_plan *p, int32_t i, const oai_plan_prompt **prompt,
                     sched_params *params);
void oai_plan_free(oai_plan *p);

#endif
