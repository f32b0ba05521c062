/* Generation requests over the scheduler, answered through a reply sink (reply.h): the part
 * of serving that does not depend on the transport. `veil serve` feeds it from evhttp; the
 * network's worker from decrypted requests relayed by a proxy.
 *
 * A request is parsed (oai_request.h), planned (oai_plan.h) and submitted as one scheduler
 * request per choice. Scheduler events arrive on the engine thread, are copied into a queue
 * and handled on the event loop thread (woken with event_active; libevent must be set up
 * with pthreads locking), which writes the answer: SSE chunks as text arrives for a stream,
 * one JSON body at the end otherwise. Everything but the engine callback runs on the loop.
 *
 * Streams start (headers and the role chunk) when the request is accepted, or, with
 * hold_stream, only at the first scheduler event: a worker holds them so that nothing
 * reaches the proxy before the first token, which lets the proxy fail over to another
 * worker until then. A request that fails before its stream started answers with an error
 * status and body; after, with an error event and [DONE]. */
#ifndef VEIL_GEN_H
#define VEIL_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/metrics.h"
#include "api/oai_error.h"
#include "api/oai_request.h"
#include "api/reply.h"
#include "engine/sched.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"

struct event_base;

typedef struct gen_config {
    const char *model_name;   /* what requests must name (copied) */
    chat_tmpl tmpl;
    int32_t n_ctx;            /* the scheduler's per-sequence context */
    bool hold_stream;         /* start streams at the first scheduler event */
} gen_config;

typedef struct gen_engine gen_engine;
typedef struct gen gen;

/* NULL with err_msg(). The scheduler, tokenizer and metrics (NULL: none kept) must outlive
 * the engine; base is the loop that handles events. */
gen_engine *gen_engine_new(struct event_base *base, sched *s, const tokenizer *tok,
                           const gen_config *cfg, metrics *m);
/* Call after sched_free (no engine callback can arrive any more): finishes what is left. */
void gen_engine_free(gen_engine *e);
const char *gen_engine_model(const gen_engine *e);
sched *gen_engine_sched(const gen_engine *e);
metrics *gen_engine_metrics(const gen_engine *e);
int64_t gen_engine_created(const gen_engine *e); /* unix time, for /v1/models */
/* Generation requests not yet finished. */
int gen_engine_live(const gen_engine *e);

/* Starts answering len bytes of an OpenAI request body through reply (which must stay valid
 * until its end, or until gen_detach). NULL with *err when the request is rejected: nothing
 * was started and reply is untouched. */
gen *gen_start(gen_engine *e, oai_endpoint ep, const char *body, size_t len,
               const api_reply *reply, oai_error *err);
/* The receiver is gone: cancel every choice (their KV is freed before the scheduler's next
 * step) and never touch the reply again. g frees itself once the scheduler has reported. */
void gen_detach(gen *g);
/* Token counts so far (for a receipt or metering): valid in the reply's end callback. */
void gen_usage_get(const gen *g, int64_t *prompt, int64_t *cached, int64_t *completion);

#endif
