/* The one-node OpenAI-compatible HTTP server (`veil serve`) on libevent's evhttp, in front of
 * the continuous-batching scheduler.
 *
 * Endpoints: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions,
 * POST /v1/completions, GET /health, GET /metrics (Prometheus text).
 *
 * Threading: everything HTTP happens on the thread that calls server_run (the event loop).
 * The scheduler calls back on its engine thread; each event is copied into a queue and the
 * loop is woken (event_active under evthread pthreads locking) to handle it, so requests are
 * only ever touched by the loop thread.
 *
 * Lifecycle guarantees:
 *   - n > 1 (and several completions prompts) become one scheduler request per choice;
 *   - a client that disconnects (its socket reads EOF, or evhttp fails writing to it) has all
 *     its choices cancelled at once, which frees their KV before the scheduler's next step;
 *   - streams get an SSE comment (": ping") whenever heartbeat_s passes without output, so
 *     idle streams survive proxies and evhttp's own timeouts;
 *   - a full queue (or a draining server) is a 503 with Retry-After; bodies over max_body a
 *     413, bad requests 400, an unknown model 404, all with the OpenAI error body. evhttp
 *     itself stops reading bodies larger than 4 x max_body + 64 KiB and answers those with
 *     its own 413 page;
 *   - SIGTERM or SIGINT: stop accepting, let the scheduler finish in-flight requests within
 *     drain_timeout_s (cancelling what is left), deliver their replies, return from
 *     server_run.
 * SIGPIPE is ignored (a peer that vanished mid-write must not kill the server). */
#ifndef VEIL_SERVER_H
#define VEIL_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "engine/sched.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"

typedef struct server_config {
    const char *host;         /* address to listen on, e.g. "127.0.0.1" */
    uint16_t port;            /* 0: any free port (see server_port) */
    const char *model_name;   /* what /v1/models lists and requests must name */
    chat_tmpl tmpl;
    int32_t n_ctx;            /* the scheduler's per-sequence context */
    size_t max_body;          /* bytes */
    double drain_timeout_s;
    double heartbeat_s;       /* SSE keep-alive comment interval */
    int io_timeout_s;         /* evhttp read/write timeout for idle or stuck connections */
} server_config;

typedef struct server server;

/* Binds the listening socket (so server_port is known) and sets up the routes; NULL with
 * err_msg(). The scheduler and tokenizer must outlive the server. */
server *server_new(sched *s, const tokenizer *tok, const server_config *cfg);
uint16_t server_port(const server *srv);
/* Serves until SIGTERM/SIGINT and the drain that follows; 0, or -1 with err_msg(). */
int server_run(server *srv);
/* Call after sched_free (so no engine callback can still arrive). */
void server_free(server *srv);

#endif
