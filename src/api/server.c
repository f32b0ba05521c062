/* OpenAI-compatible HTTP front on evhttp (see server.h).
 *
 * Each generation request is an `exchange`: the evhttp request, the backend handle that
 * answers it, and the reply sink the backend writes to. Its life: started -> the backend
 * writes (a stream goes out chunk by chunk, a whole reply is buffered and sent with its
 * length) -> the reply ends -> evhttp reports it written (on_complete) or the connection
 * gone (on_close) -> freed. The loop watches each client's socket for EOF while the backend
 * answers, because evhttp does not read from a connection whose request is being answered;
 * a client that leaves is detached from the backend at once. */
#include "api/server.h"

#include "api/oai_response.h"
#include "base/clock.h"
#include "base/err.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#define DRAIN_FLUSH_GRACE_S 2.0 /* after the drain, time left for replies to reach clients */

typedef struct exchange exchange;

struct exchange {
    server *srv;
    exchange *prev, *next;
    struct evhttp_request *req;     /* NULL once evhttp has freed it */
    struct evhttp_connection *conn; /* NULL once closed */
    struct event *watch, *ping;
    void *handle;                   /* the backend's; NULL once the reply ended or detached */
    api_reply reply;
    bool streaming, ended;
    int status;
    char type[64];
    buf body;                       /* a whole reply, until its end */
    double last_send;
};

struct server {
    server_backend be;
    server_config cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    uint16_t port;
    struct event *sigterm, *sigint, *drained, *grace;
    exchange *live;
    int n_live;
    bool draining, drain_done, drain_thread_started;
    pthread_t drain_thread;
};

/* ---- replies --------------------------------------------------------------------------- */

static void count_status(server *srv, int status) {
    if (srv->cfg.metrics) metrics_count_status(srv->cfg.metrics, status);
}

static void send_body(server *srv, struct evhttp_request *req, int status, const char *type,
                      const char *body, size_t len) {
    struct evbuffer *b = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    if (status == 503) evhttp_add_header(h, "Retry-After", "1");
    if (b) evbuffer_add(b, body, len);
    evhttp_send_reply(req, status, NULL, b);
    if (b) evbuffer_free(b);
    count_status(srv, status);
}

/* Takes ownership of json (NULL: out of memory, answered with a fixed 500 body). */
static void send_json(server *srv, struct evhttp_request *req, int status, char *json) {
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                              "\"param\":null,\"code\":null}}";
    if (!json) send_body(srv, req, 500, API_JSON_TYPE, oom, sizeof oom - 1);
    else send_body(srv, req, status, API_JSON_TYPE, json, strlen(json));
    free(json);
}

static void send_error(server *srv, struct evhttp_request *req, const oai_error *e) {
    send_json(srv, req, e->status, oai_error_json(e));
}

static void send_error_msg(server *srv, struct evhttp_request *req, int status, const char *type,
                           const char *param, const char *msg) {
    oai_error e;
    oai_error_set(&e, status, type, param, "%s", msg);
    send_error(srv, req, &e);
}

/* ---- exchange lifetime ----------------------------------------------------------------- */

static void maybe_exit(server *srv) {
    if (srv->drain_done && srv->n_live == 0) event_base_loopbreak(srv->base);
}

static void stop_watching(exchange *x) {
    if (x->watch) event_free(x->watch);
    if (x->ping) event_free(x->ping);
    x->watch = x->ping = NULL;
}

static void exchange_free(exchange *x) {
    server *srv = x->srv;
    stop_watching(x);
    if (x->conn) evhttp_connection_set_closecb(x->conn, NULL, NULL);
    if (x->req) evhttp_request_set_on_complete_cb(x->req, NULL, NULL);
    buf_free(&x->body);
    if (x->prev) x->prev->next = x->next; else srv->live = x->next;
    if (x->next) x->next->prev = x->prev;
    srv->n_live--;
    free(x);
    maybe_exit(srv);
}

static void detach_backend(exchange *x) {
    void *h = x->handle;
    x->handle = NULL;
    if (h) x->srv->be.detach(h);
}

/* evhttp wrote the whole reply; it frees the request right after. */
static void on_complete(struct evhttp_request *req, void *arg) {
    exchange *x = arg;
    (void)req;
    x->req = NULL;
    exchange_free(x);
}

/* evhttp is closing the connection (peer gone, timeout, or shutdown). */
static void on_close(struct evhttp_connection *conn, void *arg) {
    exchange *x = arg;
    (void)conn;
    stop_watching(x);
    x->conn = NULL;
    detach_backend(x);
    if (x->req && evhttp_request_get_connection(x->req)) x->req = NULL; /* evhttp frees it */
    if (x->req) evhttp_request_free(x->req); /* detached by evhttp when the connection failed */
    x->req = NULL;
    exchange_free(x);
}

/* The client's socket became readable while we answer: EOF means it left, so cancel and
 * close. Bytes mean a pipelined request; we cannot peek past them, so stop watching. */
static void on_client_readable(evutil_socket_t fd, short what, void *arg) {
    exchange *x = arg;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    (void)what;
    if (n > 0) return;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(x->watch, NULL);
        return;
    }
    detach_backend(x);
    if (x->req && !evhttp_request_get_connection(x->req)) {
        evhttp_request_free(x->req);
    } else if (x->conn) {
        /* only our watcher saw the EOF: close the connection, which frees the request */
        struct evhttp_connection *conn = x->conn;
        evhttp_connection_set_closecb(conn, NULL, NULL);
        if (x->req) evhttp_request_set_on_complete_cb(x->req, NULL, NULL);
        stop_watching(x);
        x->conn = NULL;
        evhttp_connection_free(conn);
    }
    x->req = NULL;
    exchange_free(x);
}

/* ---- the reply sink ---------------------------------------------------------------------- */

static void stream_write(exchange *x, const char *data, size_t len) {
    struct evbuffer *b;
    if (!x->req || !(b = evbuffer_new())) return;
    evbuffer_add(b, data, len);
    evhttp_send_reply_chunk(x->req, b);
    evbuffer_free(b);
    x->last_send = clock_now();
}

static void on_ping(evutil_socket_t fd, short what, void *arg) {
    exchange *x = arg;
    (void)fd;
    (void)what;
    if (clock_now() - x->last_send >= x->srv->cfg.heartbeat_s * 0.5)
        stream_write(x, OAI_SSE_PING, strlen(OAI_SSE_PING));
}

static void reply_start(void *ctx, int status, const char *type) {
    exchange *x = ctx;
    server *srv = x->srv;
    x->status = status;
    snprintf(x->type, sizeof x->type, "%s", type);
    if (strcmp(type, API_SSE_TYPE) != 0 || !x->req) return;
    struct evkeyvalq *h = evhttp_request_get_output_headers(x->req);
    evhttp_add_header(h, "Content-Type", API_SSE_TYPE);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(x->req, status, NULL);
    count_status(srv, status);
    x->streaming = true;
    x->last_send = clock_now();
    if (srv->cfg.heartbeat_s > 0 && (x->ping = event_new(srv->base, -1, EV_PERSIST, on_ping, x))) {
        double hb = srv->cfg.heartbeat_s;
        struct timeval tv = {(time_t)hb, (suseconds_t)((hb - (double)(time_t)hb) * 1e6)};
        event_add(x->ping, &tv);
    }
}

static void reply_chunk(void *ctx, const char *data, size_t len) {
    exchange *x = ctx;
    if (x->streaming) stream_write(x, data, len);
    else buf_append(&x->body, data, len);
}

static void reply_end(void *ctx) {
    exchange *x = ctx;
    x->handle = NULL;
    x->ended = true;
    stop_watching(x);
    if (!x->req) return;
    if (x->streaming) {
        evhttp_send_reply_end(x->req);
    } else if (buf_failed(&x->body)) {
        send_json(x->srv, x->req, 500, NULL);
    } else {
        send_body(x->srv, x->req, x->status, x->type, x->body.data ? x->body.data : "", x->body.len);
    }
    /* on_complete frees x once evhttp has written it all (or on_close, if the peer leaves) */
}

/* ---- generation endpoints -------------------------------------------------------------- */

static void watch_client(exchange *x) {
    struct bufferevent *bev = evhttp_connection_get_bufferevent(x->conn);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    evhttp_connection_set_closecb(x->conn, on_close, x);
    evhttp_request_set_on_complete_cb(x->req, on_complete, x);
    if (!x->ended && fd >= 0 && (x->watch = event_new(x->srv->base, fd, EV_READ, on_client_readable, x)))
        event_add(x->watch, NULL);
}

static void handle_generate(server *srv, struct evhttp_request *req, oai_endpoint ep) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    oai_error e;
    exchange *x;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        send_error_msg(srv, req, 405, "invalid_request_error", NULL, "Use POST for this endpoint.");
        return;
    }
    if (srv->draining) {
        send_error_msg(srv, req, 503, "server_error", NULL, "The server is shutting down.");
        return;
    }
    if (len > srv->cfg.max_body) {
        oai_error_set(&e, 413, "invalid_request_error", NULL,
                      "The request body has %zu bytes; this server accepts at most %zu.", len,
                      srv->cfg.max_body);
        send_error(srv, req, &e);
        return;
    }
    if (!(x = calloc(1, sizeof *x))) {
        send_json(srv, req, 500, NULL);
        return;
    }
    x->srv = srv;
    x->req = req;
    x->conn = evhttp_request_get_connection(req);
    x->reply = (api_reply){x, reply_start, reply_chunk, reply_end};
    if (srv->live) srv->live->prev = x;
    x->next = srv->live;
    srv->live = x;
    srv->n_live++;
    const char *body = (const char *)evbuffer_pullup(in, -1);
    x->handle = srv->be.start(srv->be.ctx, ep, body ? body : "", len, &x->reply, &e);
    if (!x->handle) {
        send_error(srv, req, &e);
        x->req = NULL; /* answered; evhttp owns it again */
        exchange_free(x);
        return;
    }
    watch_client(x);
}

/* ---- other endpoints ------------------------------------------------------------------- */

static void handle_models(server *srv, struct evhttp_request *req, const char *id) {
    oai_error e;
    char *json = srv->be.models(srv->be.ctx, id, &e);
    if (json) send_json(srv, req, 200, json);
    else send_error(srv, req, &e);
}

static void handle_metrics(server *srv, struct evhttp_request *req) {
    buf out = {0};
    size_t len;
    /* counted first, so the scrape that answers includes itself */
    count_status(srv, 200);
    srv->be.metrics(srv->be.ctx, &out);
    char *text = buf_take(&out, &len);
    struct evbuffer *b = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    if (b && text) evbuffer_add(b, text, len);
    evhttp_send_reply(req, text ? 200 : 500, NULL, b);
    if (b) evbuffer_free(b);
    free(text);
}

static void on_request(struct evhttp_request *req, void *arg) {
    server *srv = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (!path) path = "/";
    if (strcmp(path, "/v1/chat/completions") == 0) {
        handle_generate(srv, req, OAI_CHAT);
    } else if (strcmp(path, "/v1/completions") == 0) {
        handle_generate(srv, req, OAI_COMPLETIONS);
    } else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD &&
               (strcmp(path, "/health") == 0 || strcmp(path, "/metrics") == 0 ||
                strncmp(path, "/v1/models", 10) == 0)) {
        send_error_msg(srv, req, 405, "invalid_request_error", NULL, "Use GET for this endpoint.");
    } else if (strcmp(path, "/v1/models") == 0) {
        handle_models(srv, req, NULL);
    } else if (strncmp(path, "/v1/models/", 11) == 0) {
        char *id = evhttp_uridecode(path + 11, 0, NULL);
        handle_models(srv, req, id ? id : "");
        free(id);
    } else if (strcmp(path, "/health") == 0) {
        if (srv->draining) send_json(srv, req, 503, strdup("{\"status\":\"draining\"}"));
        else send_json(srv, req, 200, strdup("{\"status\":\"ok\"}"));
    } else if (strcmp(path, "/metrics") == 0 && srv->be.metrics) {
        handle_metrics(srv, req);
    } else {
        send_error_msg(srv, req, 404, "invalid_request_error", NULL, "Unknown path.");
    }
}

/* ---- shutdown -------------------------------------------------------------------------- */

static void *drain_main(void *arg) {
    server *srv = arg;
    srv->be.drain(srv->be.ctx, srv->cfg.drain_timeout_s);
    event_active(srv->drained, EV_READ, 0);
    return NULL;
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    event_base_loopbreak(((server *)arg)->base);
}

static void on_drained(evutil_socket_t fd, short what, void *arg) {
    server *srv = arg;
    struct timeval tv = {(time_t)DRAIN_FLUSH_GRACE_S, 0};
    (void)fd;
    (void)what;
    srv->drain_done = true;
    evtimer_add(srv->grace, &tv); /* a client that never reads must not hold the exit */
    maybe_exit(srv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    server *srv = arg;
    (void)what;
    if (srv->draining) return;
    fprintf(stderr, "%s: %s, draining (up to %g s)\n", srv->cfg.name,
            sig == SIGTERM ? "SIGTERM" : "SIGINT", srv->cfg.drain_timeout_s);
    srv->draining = true;
    if (srv->bound) evhttp_del_accept_socket(srv->http, srv->bound);
    srv->bound = NULL;
    if (!srv->be.drain) {
        event_active(srv->drained, EV_READ, 0);
    } else if (pthread_create(&srv->drain_thread, NULL, drain_main, srv) == 0) {
        srv->drain_thread_started = true;
    } else {
        srv->be.drain(srv->be.ctx, 0); /* no thread: cancel everything now rather than hang */
        event_active(srv->drained, EV_READ, 0);
    }
}

/* ---- setup ----------------------------------------------------------------------------- */

server *server_new(struct event_base *base, const server_backend *backend,
                   const server_config *cfg) {
    server *srv = calloc(1, sizeof *srv);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (!srv) {
        err_set("out of memory");
        return NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    srv->be = *backend;
    srv->cfg = *cfg;
    if (!srv->cfg.name) srv->cfg.name = "veil";
    srv->base = base;
    if (!(srv->http = evhttp_new(base))) {
        err_set("cannot set up the HTTP server");
        goto fail;
    }
    srv->drained = event_new(base, -1, 0, on_drained, srv);
    srv->grace = evtimer_new(base, on_grace_over, srv);
    srv->sigterm = evsignal_new(base, SIGTERM, on_signal, srv);
    srv->sigint = evsignal_new(base, SIGINT, on_signal, srv);
    if (!srv->drained || !srv->grace || !srv->sigterm || !srv->sigint ||
        event_add(srv->sigterm, NULL) || event_add(srv->sigint, NULL)) {
        err_set("cannot set up the event loop");
        goto fail;
    }
    evhttp_set_gencb(srv->http, on_request, srv);
    evhttp_set_max_headers_size(srv->http, 64 * 1024);
    /* bodies between max_body and this get our JSON 413; evhttp cuts off larger ones */
    evhttp_set_max_body_size(srv->http, (ev_ssize_t)(cfg->max_body * 4 + 64 * 1024));
    evhttp_set_flags(srv->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_timeout(srv->http, cfg->io_timeout_s > 0 ? cfg->io_timeout_s : 60);
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
    srv->bound = evhttp_bind_socket_with_handle(srv->http, cfg->host, cfg->port);
    if (!srv->bound) {
        err_errno("cannot listen on %s:%u", cfg->host, (unsigned)cfg->port);
        goto fail;
    }
    /* Accepted sockets inherit TCP_NODELAY (Linux). Without it a stream's first chunk waits
     * behind the headers for the client's delayed ACK: ~40 ms more to the first token. */
    int one = 1;
    setsockopt(evhttp_bound_socket_get_fd(srv->bound), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (getsockname(evhttp_bound_socket_get_fd(srv->bound), (struct sockaddr *)&ss, &sl) != 0) {
        err_errno("getsockname");
        goto fail;
    }
    srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return srv;
fail:
    server_free(srv);
    return NULL;
}

uint16_t server_port(const server *srv) { return srv->port; }
int server_draining(const server *srv) { return srv->draining; }

int server_run(server *srv) {
    if (event_base_dispatch(srv->base) < 0) return err_set("the event loop failed");
    return 0;
}

void server_free(server *srv) {
    if (!srv) return;
    if (srv->drain_thread_started) pthread_join(srv->drain_thread, NULL);
    while (srv->live) {
        exchange *x = srv->live;
        detach_backend(x);
        if (x->req && !evhttp_request_get_connection(x->req)) evhttp_request_free(x->req);
        x->req = NULL;
        exchange_free(x);
    }
    if (srv->http) evhttp_free(srv->http);
    if (srv->drained) event_free(srv->drained);
    if (srv->grace) event_free(srv->grace);
    if (srv->sigterm) event_free(srv->sigterm);
    if (srv->sigint) event_free(srv->sigint);
    free(srv);
}

/* ---- the local backend ----------------------------------------------------------------- */

static void *gb_start(void *ctx, oai_endpoint ep, const char *body, size_t len,
                      const api_reply *reply, oai_error *e) {
    return gen_start(ctx, ep, body, len, reply, e);
}

static void gb_detach(void *handle) { gen_detach(handle); }

static char *gb_models(void *ctx, const char *id, oai_error *e) {
    gen_engine *g = ctx;
    if (!id || strcmp(id, gen_engine_model(g)) == 0)
        return oai_models_json(gen_engine_model(g), gen_engine_created(g), !id);
    oai_error_set(e, 404, "invalid_request_error", "model", "The model '%.200s' does not exist.", id);
    snprintf(e->code, sizeof e->code, "model_not_found");
    return NULL;
}

static void gb_metrics(void *ctx, buf *out) {
    sched_stats st;
    sched_stats_get(gen_engine_sched(ctx), &st);
    metrics_render(gen_engine_metrics(ctx), &st, gen_engine_live(ctx), out);
}

static void gb_drain(void *ctx, double timeout_s) { sched_drain(gen_engine_sched(ctx), timeout_s); }

server_backend gen_backend(gen_engine *e) {
    return (server_backend){e, gb_start, gb_detach, gb_models,
                            gen_engine_metrics(e) ? gb_metrics : NULL, gb_drain};
}
