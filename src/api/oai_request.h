/* Parsing and validation of OpenAI request bodies (POST /v1/chat/completions and
 * /v1/completions) into a plain C struct, independent of any transport: the HTTP server and
 * the network's client gateway both use it.
 *
 * Guarantees: any byte string is either accepted into an oai_request whose fields all hold
 * in-range values, or rejected with an oai_error (status 400) whose param names the field at
 * fault ("temperature", "messages[1].content", "logit_bias"); never a crash. Unknown fields
 * are ignored, as OpenAI does; a known field set to null counts as absent. Message content
 * and prompts may hold NUL bytes; names (model, role, user) and stop strings may not.
 *
 * Accepted shapes and ranges:
 *   model              string (optional here; the server checks it names its model)
 *   messages           chat, required: non-empty array of {role, content}; role one of system,
 *                      developer, user, assistant, tool; content a string, null (empty), or
 *                      an array of {"type":"text","text":...} parts joined with "\n"
 *   prompt             completions, required: a string, an array of strings, an array of
 *                      token ids, or an array of arrays of token ids (one prompt each)
 *   max_tokens, max_completion_tokens   integer >= 1 (the latter wins when both are given)
 *   temperature [0, 2], top_p [0, 1], min_p [0, 1], top_k integer >= 0
 *   seed               integer
 *   stop               string or array of up to STOPSTR_MAX strings, each 1..STOPSTR_MAX_LEN bytes
 *   n                  integer in [1, OAI_MAX_N]
 *   presence_penalty, frequency_penalty  [-2, 2]
 *   logit_bias         object: token id (decimal string, < n_vocab) -> number in [-100, 100]
 *   logprobs           chat: boolean, with top_logprobs integer in [0, 20];
 *                      completions: integer in [0, 20] (the number of top alternatives)
 *   stream             boolean; stream_options {"include_usage": boolean} only with stream
 *   user               string
 * Integers may be written as numbers with no fractional part (5.0). */
#ifndef VEIL_OAI_REQUEST_H
#define VEIL_OAI_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/oai_error.h"
#include "model/stopstr.h"

#define OAI_MAX_N 128
#define OAI_MAX_TOP_LOGPROBS 20

typedef enum oai_endpoint { OAI_CHAT, OAI_COMPLETIONS } oai_endpoint;

typedef struct oai_message {
    char *role;      /* NUL-terminated */
    char *content;   /* content_len bytes, NUL-terminated after them */
    size_t content_len;
} oai_message;

/* One completions prompt: text, or token ids when ids is not NULL. */
typedef struct oai_prompt {
    char *text;
    size_t text_len;
    int32_t *ids;
    size_t n_ids;
} oai_prompt;

typedef struct oai_request {
    oai_endpoint endpoint;
    char *model;                 /* NULL when absent */
    oai_message *messages;       /* chat */
    size_t n_messages;
    oai_prompt *prompts;         /* completions */
    size_t n_prompts;
    int64_t max_tokens;          /* -1 when absent */
    float temperature, top_p, min_p;   /* defaults 1, 1, 0 (OpenAI's) */
    int32_t top_k;               /* default 0: off */
    bool has_seed;
    int64_t seed;
    char *stop[STOPSTR_MAX];     /* NUL-terminated, none empty */
    size_t stop_len[STOPSTR_MAX];
    int32_t n_stop;
    int32_t n;                   /* default 1 */
    float presence_penalty, frequency_penalty;
    int32_t *bias_tokens;        /* n_bias entries each */
    float *bias_values;
    int32_t n_bias;
    int32_t top_logprobs;        /* -1: no logprobs; else alternatives per token (0..20) */
    bool stream, include_usage;
    char *user;                  /* NULL when absent */
} oai_request;

/* Parses len bytes of body for the endpoint. n_vocab bounds token ids (prompt, logit_bias);
 * 0 skips that check. 0 and *r filled (free with oai_request_free), or -1 with *e filled and
 * *r left empty. */
int oai_request_parse(oai_endpoint ep, const char *body, size_t len, int32_t n_vocab,
                      oai_request *r, oai_error *e);
void oai_request_free(oai_request *r);

#endif
