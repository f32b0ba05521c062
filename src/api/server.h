/* The OpenAI-compatible HTTP front on libevent's evhttp, in front of a backend that answers
 * generation requests: the local scheduler (`veil serve`, gen_backend below) or the network
 * (the client gateway, node/client.h). One front for both, so both speak the same HTTP.
 *
 * Endpoints: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions,
 * POST /v1/completions, GET /health, GET /metrics (Prometheus text, when the backend has it).
 *
 * Threading: everything HTTP happens on the thread that runs the event loop; backends answer
 * through the reply sink (reply.h) on that same thread.
 *
 * Lifecycle guarantees:
 *   - a client that disconnects (its socket reads EOF, or evhttp fails writing to it) is
 *     detached from its backend request at once, which cancels it (the scheduler frees its
 *     KV before its next step; the gateway sends cancel along the network);
 *   - streams get an SSE comment (": ping") whenever heartbeat_s passes without output, so
 *     idle streams survive proxies and evhttp's own timeouts;
 *   - a draining server answers 503 with Retry-After; bodies over max_body a 413, all with
 *     the OpenAI error body. evhttp itself stops reading bodies larger than
 *     4 x max_body + 64 KiB and answers those with its own 413 page;
 *   - SIGTERM or SIGINT: stop accepting, let the backend drain within drain_timeout_s,
 *     deliver the replies (2 s grace), return from server_run.
 * SIGPIPE is ignored (a peer that vanished mid-write must not kill the server). */
#ifndef VEIL_SERVER_H
#define VEIL_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "api/gen.h"
#include "api/metrics.h"
#include "api/oai_error.h"
#include "api/oai_request.h"
#include "api/reply.h"
#include "base/buf.h"

struct event_base;

/* What answers the requests. Every function runs on the loop thread. */
typedef struct server_backend {
    void *ctx;
    /* Starts answering a generation request through reply (valid until its end or detach);
     * returns a handle, or NULL with *e when rejected (then reply is never used). */
    void *(*start)(void *ctx, oai_endpoint ep, const char *body, size_t len,
                   const api_reply *reply, oai_error *e);
    /* The client left: stop, and never use the reply again. */
    void (*detach)(void *handle);
    /* Body of GET /v1/models (id NULL) or /v1/models/{id}; NULL with *e (e.g. 404). */
    char *(*models)(void *ctx, const char *id, oai_error *e);
    /* Appends /metrics text; NULL: no /metrics. */
    void (*metrics)(void *ctx, buf *out);
    /* Runs on a helper thread after SIGTERM: stop admitting, wait for running requests up to
     * timeout_s. NULL: nothing to wait for. */
    void (*drain)(void *ctx, double timeout_s);
} server_backend;

typedef struct server_config {
    const char *name;         /* for messages: "veil serve", "veil client" */
    const char *host;         /* address to listen on, e.g. "127.0.0.1" */
    uint16_t port;            /* 0: any free port (see server_port) */
    size_t max_body;          /* bytes */
    double drain_timeout_s;
    double heartbeat_s;       /* SSE keep-alive comment interval */
    int io_timeout_s;         /* evhttp read/write timeout for idle or stuck connections */
    metrics *metrics;         /* HTTP statuses are counted here when not NULL */
} server_config;

typedef struct server server;

/* Binds the listening socket (so server_port is known) and sets up the routes on base; NULL
 * with err_msg(). base must have been made after evthread_use_pthreads() when the backend
 * wakes it from other threads. The backend must outlive the server. */
server *server_new(struct event_base *base, const server_backend *backend,
                   const server_config *cfg);
uint16_t server_port(const server *srv);
/* Serves until SIGTERM/SIGINT and the drain that follows; 0, or -1 with err_msg(). */
int server_run(server *srv);
/* Whether a SIGTERM/SIGINT drain has begun (a backend may refuse new work). */
int server_draining(const server *srv);
void server_free(server *srv);

/* The local backend: the generation engine over the scheduler (gen.h). */
server_backend gen_backend(gen_engine *e);

#endif
