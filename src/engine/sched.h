/* The serving scheduler: continuous batching of many generation requests over one model.
 *
 * One engine thread owns the model runner. Each step it builds one batch of at most `max_batch`
 * tokens — one token for each sequence that is decoding, plus chunks of prompts being
 * prefilled; while prompts wait, at least `prefill_min` of the tokens go to them (oldest
 * first) and decoding sequences take turns in the rest — runs one forward pass, samples, and
 * hands each request its new text. Requests join and leave between steps. KV memory comes from a
 * paged pool with a byte budget; a request whose KV does not fit waits in a bounded queue.
 * Full KV blocks of finished prompts stay in a prefix cache (LRU), so a prompt that starts
 * with the same tokens reuses them instead of recomputing; results are identical either way.
 *
 * Threading: sched_submit / sched_cancel / sched_stats may be called from any thread. Events
 * are delivered by calling the request's callback ON THE ENGINE THREAD; the callback must be
 * quick (copy and hand off, e.g. to an event loop) and must not call back into the scheduler
 * except sched_cancel. */
#ifndef VEIL_SCHED_H
#define VEIL_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/device.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/tokenizer.h"

typedef struct sched sched;

typedef struct sched_config {
    int32_t max_batch;      /* tokens per forward pass (decode + prefill chunks); default 64 */
    int32_t prefill_min;    /* tokens of a step kept for prompt chunks while prompts wait
                               (decoding streams take turns in the rest); 0 = max_batch / 2 */
    int32_t max_running;    /* sequences decoding at once; default 64 */
    int32_t max_queue;      /* requests waiting for KV memory; beyond: sched_submit fails */
    int32_t n_ctx;          /* per-sequence context limit; 0 = the model's */
    size_t kv_bytes;        /* KV pool budget; 0 = enough for max_running full contexts, capped at 1 GiB */
    int n_threads;          /* 0 = one per CPU */
    device *device;         /* where the forward pass runs (it must outlive the scheduler);
                             * NULL = the CPU with n_threads */
    bool prefix_cache;      /* default true */
    model_kv_type kv_type;  /* element type of the KV cache; default MODEL_KV_F16 */
} sched_config;

void sched_config_default(sched_config *c);

typedef struct sched_params {
    int32_t max_tokens;             /* >= 1 */
    sampler_params sampling;
    const float *logit_bias;        /* NULL or n_bias (token, bias) pairs below */
    const int32_t *bias_tokens;
    int32_t n_bias;
    const char *const *stop;        /* up to STOPSTR_MAX strings (copied) */
    int32_t n_stop;
    int32_t top_logprobs;           /* -1: no logprobs; 0..20: logprob of the chosen token + top N */
    bool render_special;            /* emit the text of generated control tokens */
} sched_params;

typedef enum sched_event_kind {
    SCHED_TEXT,    /* new text (may be empty when only a logprob entry is carried) */
    SCHED_DONE,    /* finished: finish says why; usage filled in */
    SCHED_ERROR,   /* failed: message says why; no more events */
} sched_event_kind;

typedef enum sched_finish { SCHED_FINISH_STOP, SCHED_FINISH_LENGTH, SCHED_FINISH_CANCELLED } sched_finish;

typedef struct sched_logprob {
    int32_t token;
    float logprob;
    const char *text; size_t text_len;  /* the token's bytes (valid during the callback) */
} sched_logprob;

typedef struct sched_event {
    sched_event_kind kind;
    const char *text; size_t text_len;  /* SCHED_TEXT: valid during the callback */
    /* SCHED_TEXT with logprobs: the sampled token and the top alternatives */
    const sched_logprob *chosen;        /* NULL without logprobs */
    const sched_logprob *top; int32_t n_top;
    sched_finish finish;                /* SCHED_DONE */
    int32_t prompt_tokens, cached_tokens, completion_tokens;  /* SCHED_DONE */
    double ttft_seconds;                /* SCHED_DONE: submit to first token */
    const char *message;                /* SCHED_ERROR */
} sched_event;

typedef void (*sched_event_fn)(void *ud, const sched_event *ev);

/* Starts the engine thread. NULL + err_msg(). The model and tokenizer must outlive it. */
sched *sched_new(const model *m, const tokenizer *tok, const sched_config *cfg);
/* Stops the engine thread; running requests get SCHED_DONE with SCHED_FINISH_CANCELLED. */
void sched_free(sched *s);

/* Queues a request for the token ids prompt[0..n_prompt) (copied). Returns a request id > 0,
 * or -1 with err_msg(): bad parameters, prompt longer than the context, prompt + max_tokens
 * that can never fit the KV budget, or the queue is full (sched_is_queue_full_error()). */
int64_t sched_submit(sched *s, const int32_t *prompt, int32_t n_prompt, const sched_params *p,
                     sched_event_fn fn, void *ud);
/* True when the last failed sched_submit on this thread failed because the queue was full. */
bool sched_last_error_was_queue_full(void);
/* Cancels a request (client gone): its sequence stops and its KV is freed before the next
 * step; its callback gets SCHED_DONE (cancelled) and nothing after. Unknown ids are ignored. */
void sched_cancel(sched *s, int64_t id);

typedef struct sched_stats {
    int32_t queued, running;
    int32_t batch_tokens;            /* tokens in the last step */
    size_t kv_bytes_used;            /* held by requests */
    size_t kv_bytes_cached;          /* held only by the prefix cache (evictable) */
    size_t kv_bytes_total;
    uint64_t prompt_tokens, cached_tokens, completion_tokens, steps;
} sched_stats;

void sched_stats_get(sched *s, sched_stats *out);

/* Stops admitting new requests (sched_submit fails) and waits until running and queued ones
 * finish or `timeout_s` passes; then cancels what is left. Returns the number cancelled. */
int sched_drain(sched *s, double timeout_s);

#endif
