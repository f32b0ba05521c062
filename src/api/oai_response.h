/* OpenAI response bodies, independent of any transport: whole responses for chat and
 * completions, streamed chunks as Server-Sent Events, the usage chunk, the model list and
 * error bodies, shaped as OpenAI's API returns them (and as its SDKs parse them):
 *
 *   chat        {"id":"chatcmpl-...","object":"chat.completion","created":T,"model":M,
 *                "choices":[{"index":0,"message":{"role":"assistant","content":"...",
 *                "refusal":null},"logprobs":null|{"content":[{"token","logprob","bytes",
 *                "top_logprobs":[{"token","logprob","bytes"}]}],"refusal":null},
 *                "finish_reason":"stop"|"length"}],"usage":{...},"system_fingerprint":null}
 *   completions {"id":"cmpl-...","object":"text_completion",...,"choices":[{"index","text",
 *                "logprobs":null|{"tokens","token_logprobs","top_logprobs","text_offset"},
 *                "finish_reason"}],"usage":{...}}
 *   usage       {"prompt_tokens","completion_tokens","total_tokens",
 *                "prompt_tokens_details":{"cached_tokens"}}
 *   chunks      "chat.completion.chunk" with "delta" ({"role":"assistant","content":""} first,
 *                then {"content":...}, then {} with the finish_reason); completions chunks
 *                are "text_completion" objects with "text". With include_usage every chunk
 *                has "usage":null and a last chunk has "choices":[] and the usage.
 *
 * Text that is not valid UTF-8 (a token can end inside a character) is repaired with U+FFFD
 * so the JSON is always valid; logprob entries also carry the exact bytes. Every builder
 * returns a malloc'd NUL-terminated string, or NULL with err_msg() when out of memory. */
#ifndef VEIL_OAI_RESPONSE_H
#define VEIL_OAI_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/oai_error.h"
#include "api/oai_request.h"

#define OAI_SSE_DONE "data: [DONE]\n\n"
#define OAI_SSE_PING ": ping\n\n"

/* One token and its log-probability; text is the token's bytes. */
typedef struct oai_token_logprob {
    int32_t token;
    float logprob;
    const char *text;
    size_t text_len;
} oai_token_logprob;

/* The sampled token and the most likely alternatives at its position. */
typedef struct oai_logprob {
    oai_token_logprob chosen;
    const oai_token_logprob *top;
    int32_t n_top;
} oai_logprob;

typedef struct oai_usage {
    int64_t prompt_tokens, completion_tokens, cached_tokens;
} oai_usage;

/* What every body of one response shares. */
typedef struct oai_meta {
    oai_endpoint endpoint;
    const char *id;
    int64_t created;
    const char *model;
} oai_meta;

typedef struct oai_choice {
    const char *text;
    size_t text_len;
    bool has_logprobs;
    const oai_logprob *logprobs;
    size_t n_logprobs;
    const char *finish_reason;  /* "stop" or "length" */
} oai_choice;

/* One streamed piece of one choice. */
typedef struct oai_delta {
    int32_t index;
    bool first;                 /* chat: carries the role (and empty content) */
    const char *text;           /* NULL: no content in this chunk (e.g. the finishing one) */
    size_t text_len;
    bool has_logprobs;
    const oai_logprob *logprobs;
    size_t n_logprobs;
    size_t text_offset;         /* completions: offset of text in the choice's whole text */
    const char *finish_reason;  /* NULL until the choice's last chunk */
} oai_delta;

/* Writes "chatcmpl-" or "cmpl-" and 24 random characters (NUL-terminated) to out. */
void oai_make_id(oai_endpoint ep, char out[40]);

char *oai_response_json(const oai_meta *m, const oai_choice *choices, size_t n,
                        const oai_usage *u);
char *oai_chunk_json(const oai_meta *m, const oai_delta *d, bool include_usage);
char *oai_usage_chunk_json(const oai_meta *m, const oai_usage *u);
/* {"error":{"message","type","param","code"}} */
char *oai_error_json(const oai_error *e);
/* {"object":"list","data":[{"id":model,"object":"model","created":T,"owned_by":"veil"}]},
 * or the single model object when `list` is false. */
char *oai_models_json(const char *model, int64_t created, bool list);
/* One model object; the list of n models (the client gateway lists every live one). */
char *oai_model_json(const char *model, int64_t created);
char *oai_model_list_json(const char *const *models, size_t n, int64_t created);
/* "data: " json "\n\n" (malloc'd). */
char *oai_sse_event(const char *json);

#endif
