/* OpenAI-compatible HTTP server on evhttp (see server.h).
 *
 * A generation request is a `gen` with one `choice` per scheduler request. Its life:
 * submitted -> events stream in (engine thread -> queue -> loop) -> every choice final ->
 * reply sent -> evhttp reports the reply written (on_complete) or the connection gone
 * (closecb) -> freed. The loop also watches each client's socket for EOF while it waits,
 * because evhttp does not read from a connection whose request is being answered. */
#include "api/server.h"

#include "api/metrics.h"
#include "api/oai_plan.h"
#include "api/oai_request.h"
#include "api/oai_response.h"
#include "base/buf.h"
#include "base/err.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define DRAIN_FLUSH_GRACE_S 2.0 /* after the drain, time left for replies to reach clients */

typedef struct gen gen;
typedef struct choice choice;

/* A scheduler event copied off the engine thread. A text event's strings live in the same
 * allocation, right behind the struct. */
typedef struct pending {
    struct pending *next;
    choice *ch;
    sched_event_kind kind;
    sched_finish finish;
    int32_t prompt_tokens, cached_tokens, completion_tokens;
    double ttft, t;
    char *text;
    size_t text_len;
    bool has_logprobs;
    oai_logprob lp;
    oai_token_logprob top[OAI_MAX_TOP_LOGPROBS];
    char message[256];
} pending;

struct choice {
    gen *g;
    int32_t index;
    int64_t sched_id;         /* 0: not submitted */
    bool final;
    _Atomic bool lost;        /* an event could not be copied (out of memory) */
    double t_submit;
    buf text;                 /* non-streaming: the text so far */
    pending **kept;           /* non-streaming: events carrying logprobs, in order */
    size_t n_kept, cap_kept;
    size_t lp_offset;         /* completions: bytes of the tokens so far (text_offset) */
    const char *finish;       /* "stop" / "length"; NULL when cancelled or failed */
    int32_t prompt_tokens, cached_tokens, completion_tokens;
    pending final_ev;         /* preallocated: the last event must never be lost */
};

struct gen {
    server *srv;
    gen *prev, *next;
    struct evhttp_request *req;     /* NULL once evhttp has freed it */
    struct evhttp_connection *conn; /* NULL once closed */
    struct event *watch, *ping;
    oai_request r;
    oai_plan plan;
    char id[40];
    int64_t created;
    bool streaming;                 /* the SSE reply has started */
    bool replied;                   /* the last byte is handed to evhttp */
    bool gone;                      /* the client went away */
    int32_t n_choices, n_open;
    choice *choices;
    bool failed;
    oai_error err;
    double last_send;
};

struct server {
    sched *sched;
    const tokenizer *tok;
    server_config cfg;
    char *model_name;
    int64_t started;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    uint16_t port;
    struct event *wake, *sigterm, *sigint, *drained, *grace;
    pthread_mutex_t mu;
    pending *q_head, *q_tail;
    gen *live;
    int n_live;
    bool draining, drain_done, drain_thread_started;
    pthread_t drain_thread;
    metrics m;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- replies --------------------------------------------------------------------------- */

static void send_body(server *srv, struct evhttp_request *req, int status, const char *type,
                      const char *body, size_t len) {
    struct evbuffer *b = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    if (status == 503) evhttp_add_header(h, "Retry-After", "1");
    if (b) evbuffer_add(b, body, len);
    evhttp_send_reply(req, status, NULL, b);
    if (b) evbuffer_free(b);
    metrics_count_status(&srv->m, status);
}

/* Takes ownership of json (NULL: out of memory, answered with a fixed 500 body). */
static void send_json(server *srv, struct evhttp_request *req, int status, char *json) {
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                              "\"param\":null,\"code\":null}}";
    if (!json) send_body(srv, req, 500, "application/json", oom, sizeof oom - 1);
    else send_body(srv, req, status, "application/json", json, strlen(json));
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

/* Streams one SSE piece (takes ownership of text; NULL is skipped). */
static void stream_send(gen *g, char *text) {
    struct evbuffer *b;
    if (!text) return;
    if (g->req && !g->gone && (b = evbuffer_new())) {
        evbuffer_add(b, text, strlen(text));
        evhttp_send_reply_chunk(g->req, b);
        evbuffer_free(b);
        g->last_send = now_s();
    }
    free(text);
}

static void stream_json(gen *g, char *json) {
    if (!json) return;
    stream_send(g, oai_sse_event(json));
    free(json);
}

/* ---- request lifetime ------------------------------------------------------------------ */

static void maybe_exit(server *srv) {
    if (srv->drain_done && srv->n_live == 0) event_base_loopbreak(srv->base);
}

static void gen_stop_watching(gen *g) {
    if (g->watch) event_free(g->watch);
    if (g->ping) event_free(g->ping);
    g->watch = g->ping = NULL;
}

static void choice_release(choice *ch) {
    buf_free(&ch->text);
    for (size_t i = 0; i < ch->n_kept; i++) free(ch->kept[i]);
    free(ch->kept);
}

static void gen_free(gen *g) {
    server *srv = g->srv;
    gen_stop_watching(g);
    if (g->conn) evhttp_connection_set_closecb(g->conn, NULL, NULL);
    if (g->req) evhttp_request_set_on_complete_cb(g->req, NULL, NULL);
    for (int32_t i = 0; i < g->n_choices; i++) choice_release(&g->choices[i]);
    free(g->choices);
    oai_plan_free(&g->plan);
    oai_request_free(&g->r);
    if (g->prev) g->prev->next = g->next; else srv->live = g->next;
    if (g->next) g->next->prev = g->prev;
    srv->n_live--;
    free(g);
    maybe_exit(srv);
}

static void gen_cancel(gen *g) {
    for (int32_t i = 0; i < g->n_choices; i++)
        if (g->choices[i].sched_id > 0 && !g->choices[i].final)
            sched_cancel(g->srv->sched, g->choices[i].sched_id);
}

/* The client is gone and nothing is left to deliver: release the HTTP side. */
static void gen_abandon(gen *g) {
    if (g->req && !evhttp_request_get_connection(g->req)) {
        evhttp_request_free(g->req); /* detached by evhttp when the connection failed */
    } else if (g->conn) {
        /* only our watcher saw the EOF: close the connection, which frees the request */
        struct evhttp_connection *conn = g->conn;
        evhttp_connection_set_closecb(conn, NULL, NULL);
        if (g->req) evhttp_request_set_on_complete_cb(g->req, NULL, NULL);
        gen_stop_watching(g);
        g->conn = NULL;
        evhttp_connection_free(conn);
    }
    g->req = NULL;
    gen_free(g);
}

static void client_gone(gen *g) {
    if (g->gone) return;
    g->gone = true;
    gen_stop_watching(g);
    gen_cancel(g);
}

/* evhttp wrote the whole reply; it frees the request right after. */
static void on_complete(struct evhttp_request *req, void *arg) {
    gen *g = arg;
    (void)req;
    g->req = NULL;
    gen_free(g);
}

/* evhttp is closing the connection (peer gone, timeout, or shutdown). */
static void on_close(struct evhttp_connection *conn, void *arg) {
    gen *g = arg;
    (void)conn;
    gen_stop_watching(g);
    g->conn = NULL;
    if (g->req && evhttp_request_get_connection(g->req)) g->req = NULL; /* evhttp frees it */
    if (g->replied || g->n_open == 0) {
        if (g->req) evhttp_request_free(g->req);
        g->req = NULL;
        gen_free(g);
        return;
    }
    client_gone(g);
}

/* The client's socket became readable while we answer: EOF means it left. Bytes mean a
 * pipelined request; we cannot peek past them, so stop watching. */
static void on_client_readable(evutil_socket_t fd, short what, void *arg) {
    gen *g = arg;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    (void)what;
    if (n > 0) return;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(g->watch, NULL);
        return;
    }
    client_gone(g);
    if (g->n_open == 0) gen_abandon(g);
}

static void on_ping(evutil_socket_t fd, short what, void *arg) {
    gen *g = arg;
    (void)fd;
    (void)what;
    if (now_s() - g->last_send >= g->srv->cfg.heartbeat_s * 0.5) {
        char *ping = strdup(OAI_SSE_PING);
        stream_send(g, ping);
    }
}

/* ---- finishing ------------------------------------------------------------------------- */

static oai_usage gen_usage(const gen *g) {
    oai_usage u = {0};
    for (int32_t i = 0; i < g->n_choices; i++) {
        const choice *ch = &g->choices[i];
        if (i % g->plan.n_per_prompt == 0) { /* a prompt counts once, as OpenAI counts it */
            u.prompt_tokens += ch->prompt_tokens;
            u.cached_tokens += ch->cached_tokens;
        }
        u.completion_tokens += ch->completion_tokens;
    }
    return u;
}

static oai_meta gen_meta(const gen *g) {
    return (oai_meta){g->r.endpoint, g->id, g->created, g->srv->model_name};
}

static char *whole_response(gen *g) {
    oai_meta m = gen_meta(g);
    oai_usage u = gen_usage(g);
    oai_choice *cs = calloc((size_t)g->n_choices, sizeof *cs);
    oai_logprob **lps = calloc((size_t)g->n_choices, sizeof *lps);
    char *json = NULL;
    if (!cs || !lps) goto done;
    for (int32_t i = 0; i < g->n_choices; i++) {
        choice *ch = &g->choices[i];
        if (ch->n_kept && !(lps[i] = malloc(ch->n_kept * sizeof **lps))) goto done;
        for (size_t k = 0; k < ch->n_kept; k++) lps[i][k] = ch->kept[k]->lp;
        cs[i] = (oai_choice){ch->text.data ? ch->text.data : "", ch->text.len,
                             g->r.top_logprobs >= 0, lps[i], ch->n_kept, ch->finish};
    }
    json = oai_response_json(&m, cs, (size_t)g->n_choices, &u);
done:
    if (lps)
        for (int32_t i = 0; i < g->n_choices; i++) free(lps[i]);
    free(lps);
    free(cs);
    return json;
}

/* Every choice is final: reply (or tidy up when the client left). */
static void gen_finish(gen *g) {
    server *srv = g->srv;
    if (g->gone || !g->req) {
        gen_abandon(g);
        return;
    }
    gen_stop_watching(g);
    g->replied = true;
    if (g->streaming) {
        oai_meta m = gen_meta(g);
        if (g->failed) {
            stream_json(g, oai_error_json(&g->err));
        } else if (g->r.include_usage) {
            oai_usage u = gen_usage(g);
            stream_json(g, oai_usage_chunk_json(&m, &u));
        }
        stream_send(g, strdup(OAI_SSE_DONE));
        evhttp_send_reply_end(g->req);
    } else if (g->failed) {
        send_error(srv, g->req, &g->err);
    } else {
        send_json(srv, g->req, 200, whole_response(g));
    }
    /* on_complete frees g once evhttp has written it all (or on_close, if the peer leaves) */
}

static void gen_fail(gen *g, int status, const char *type, const char *msg) {
    if (g->failed) return;
    g->failed = true;
    oai_error_set(&g->err, status, type, NULL, "%s", msg);
}

/* ---- scheduler events ------------------------------------------------------------------ */

static void enqueue(server *srv, pending *p) {
    pthread_mutex_lock(&srv->mu);
    if (srv->q_tail) srv->q_tail->next = p; else srv->q_head = p;
    srv->q_tail = p;
    pthread_mutex_unlock(&srv->mu);
    event_active(srv->wake, EV_READ, 0);
}

static pending *copy_text_event(const sched_event *ev) {
    size_t need = ev->text_len + 1;
    if (ev->chosen) {
        need += ev->chosen->text_len + 1;
        for (int32_t k = 0; k < ev->n_top && k < OAI_MAX_TOP_LOGPROBS; k++) need += ev->top[k].text_len + 1;
    }
    pending *p = calloc(1, sizeof *p + need);
    if (!p) return NULL;
    char *at = (char *)(p + 1);
    p->kind = SCHED_TEXT;
    p->text = at;
    p->text_len = ev->text_len;
    if (ev->text_len) memcpy(at, ev->text, ev->text_len);
    at += ev->text_len + 1;
    if (ev->chosen) {
        p->has_logprobs = true;
        p->lp.chosen = (oai_token_logprob){ev->chosen->token, ev->chosen->logprob, at, ev->chosen->text_len};
        if (ev->chosen->text_len) memcpy(at, ev->chosen->text, ev->chosen->text_len);
        at += ev->chosen->text_len + 1;
        for (int32_t k = 0; k < ev->n_top && k < OAI_MAX_TOP_LOGPROBS; k++) {
            p->top[k] = (oai_token_logprob){ev->top[k].token, ev->top[k].logprob, at, ev->top[k].text_len};
            if (ev->top[k].text_len) memcpy(at, ev->top[k].text, ev->top[k].text_len);
            at += ev->top[k].text_len + 1;
            p->lp.n_top = k + 1;
        }
        p->lp.top = p->top;
    }
    return p;
}

/* Engine thread: copy and hand to the loop; never blocks on the loop. */
static void on_sched_event(void *ud, const sched_event *ev) {
    choice *ch = ud;
    pending *p;
    if (ev->kind == SCHED_TEXT) {
        if (!(p = copy_text_event(ev))) {
            atomic_store(&ch->lost, true);
            return;
        }
    } else {
        p = &ch->final_ev;
        p->kind = ev->kind;
        p->finish = ev->finish;
        p->prompt_tokens = ev->prompt_tokens;
        p->cached_tokens = ev->cached_tokens;
        p->completion_tokens = ev->completion_tokens;
        p->ttft = ev->ttft_seconds;
        snprintf(p->message, sizeof p->message, "%s", ev->message ? ev->message : "");
    }
    p->ch = ch;
    p->t = now_s();
    p->next = NULL;
    enqueue(ch->g->srv, p);
}

static void handle_text(gen *g, choice *ch, pending *p) {
    if (g->gone) {
        free(p);
        return;
    }
    if (g->streaming) {
        oai_meta m = gen_meta(g);
        oai_delta d = {.index = ch->index, .text = p->text, .text_len = p->text_len,
                       .has_logprobs = p->has_logprobs, .logprobs = &p->lp,
                       .n_logprobs = p->has_logprobs, .text_offset = ch->lp_offset};
        stream_json(g, oai_chunk_json(&m, &d, g->r.include_usage));
        if (p->has_logprobs) ch->lp_offset += p->lp.chosen.text_len;
        free(p);
        return;
    }
    buf_append(&ch->text, p->text, p->text_len);
    if (!p->has_logprobs) {
        free(p);
        return;
    }
    if (ch->n_kept == ch->cap_kept) {
        size_t cap = ch->cap_kept ? ch->cap_kept * 2 : 16;
        pending **k = realloc(ch->kept, cap * sizeof *k);
        if (!k) {
            atomic_store(&ch->lost, true);
            free(p);
            return;
        }
        ch->kept = k;
        ch->cap_kept = cap;
    }
    ch->kept[ch->n_kept++] = p;
}

static void handle_final(gen *g, choice *ch, pending *p) {
    server *srv = g->srv;
    ch->final = true;
    g->n_open--;
    ch->prompt_tokens = p->prompt_tokens;
    ch->cached_tokens = p->cached_tokens;
    ch->completion_tokens = p->completion_tokens;
    if (p->kind == SCHED_ERROR) {
        gen_fail(g, 500, "server_error", p->message);
        gen_cancel(g);
    } else if (p->finish == SCHED_FINISH_CANCELLED) {
        if (!g->gone) gen_fail(g, 503, "server_error", "the server shut down before the request finished");
    } else {
        ch->finish = p->finish == SCHED_FINISH_LENGTH ? "length" : "stop";
        if (p->completion_tokens >= 1) metrics_observe(&srv->m.ttft, p->ttft);
        if (p->completion_tokens >= 2)
            metrics_observe(&srv->m.tpot, (p->t - ch->t_submit - p->ttft) / (p->completion_tokens - 1));
    }
    if (atomic_load(&ch->lost)) gen_fail(g, 500, "server_error", "out of memory relaying generated text");
    if (g->streaming && !g->gone && !g->failed && ch->finish) {
        oai_meta m = gen_meta(g);
        oai_delta d = {.index = ch->index, .finish_reason = ch->finish};
        stream_json(g, oai_chunk_json(&m, &d, g->r.include_usage));
    }
    if (g->n_open == 0) gen_finish(g);
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
    server *srv = arg;
    pending *p, *next;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&srv->mu);
    p = srv->q_head;
    srv->q_head = srv->q_tail = NULL;
    pthread_mutex_unlock(&srv->mu);
    for (; p; p = next) {
        next = p->next;
        choice *ch = p->ch;
        if (p->kind == SCHED_TEXT) handle_text(ch->g, ch, p);
        else handle_final(ch->g, ch, p); /* may free ch->g: p is inside it, read nothing after */
    }
}

/* ---- generation endpoints -------------------------------------------------------------- */

static int submit_all(gen *g, oai_error *e) {
    server *srv = g->srv;
    for (int32_t i = 0; i < g->n_choices; i++) {
        choice *ch = &g->choices[i];
        const oai_plan_prompt *pp;
        sched_params sp;
        oai_plan_choice(&g->plan, i, &pp, &sp);
        ch->t_submit = now_s();
        int64_t id = sched_submit(srv->sched, pp->ids, pp->n_ids, &sp, on_sched_event, ch);
        if (id < 0) {
            if (sched_last_error_was_queue_full())
                oai_error_set(e, 503, "server_error", NULL, "The server is busy: %s. Retry later.", err_msg());
            else
                oai_error_set(e, 400, "invalid_request_error", NULL, "%s", err_msg());
            return -1;
        }
        ch->sched_id = id;
        g->n_open++;
    }
    return 0;
}

static void start_stream(gen *g) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(g->req);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(g->req, 200, NULL);
    metrics_count_status(&g->srv->m, 200);
    g->streaming = true;
    g->last_send = now_s();
    if (g->r.endpoint == OAI_CHAT) {
        oai_meta m = gen_meta(g);
        for (int32_t i = 0; i < g->n_choices; i++) {
            oai_delta d = {.index = i, .first = true};
            stream_json(g, oai_chunk_json(&m, &d, g->r.include_usage));
        }
    }
}

static void watch_client(gen *g) {
    server *srv = g->srv;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(g->conn);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    evhttp_connection_set_closecb(g->conn, on_close, g);
    evhttp_request_set_on_complete_cb(g->req, on_complete, g);
    if (fd >= 0 && (g->watch = event_new(srv->base, fd, EV_READ, on_client_readable, g)))
        event_add(g->watch, NULL);
    if (g->streaming && srv->cfg.heartbeat_s > 0 &&
        (g->ping = event_new(srv->base, -1, EV_PERSIST, on_ping, g))) {
        struct timeval tv = {(time_t)srv->cfg.heartbeat_s,
                             (suseconds_t)((srv->cfg.heartbeat_s - (double)(time_t)srv->cfg.heartbeat_s) * 1e6)};
        event_add(g->ping, &tv);
    }
}

static void handle_generate(server *srv, struct evhttp_request *req, oai_endpoint ep) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    oai_error e;
    gen *g;
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
    if (!(g = calloc(1, sizeof *g))) {
        send_json(srv, req, 500, NULL);
        return;
    }
    g->srv = srv;
    g->req = req;
    g->conn = evhttp_request_get_connection(req);
    if (srv->live) srv->live->prev = g;
    g->next = srv->live;
    srv->live = g;
    srv->n_live++;
    const char *body = (const char *)evbuffer_pullup(in, -1);
    if (oai_request_parse(ep, body ? body : "", len, tok_n_vocab(srv->tok), &g->r, &e) < 0)
        goto reject;
    if (g->r.model && strcmp(g->r.model, srv->model_name) != 0) {
        oai_error_set(&e, 404, "invalid_request_error", "model",
                      "The model '%.200s' does not exist; this server serves '%.200s'.", g->r.model,
                      srv->model_name);
        snprintf(e.code, sizeof e.code, "model_not_found");
        goto reject;
    }
    if (oai_plan_build(&g->r, srv->tok, srv->cfg.tmpl, srv->cfg.n_ctx, &g->plan, &e) < 0) goto reject;
    g->n_choices = g->plan.n_choices;
    if (!(g->choices = calloc((size_t)g->n_choices, sizeof *g->choices))) {
        oai_error_set(&e, 500, "server_error", NULL, "out of memory");
        goto reject;
    }
    for (int32_t i = 0; i < g->n_choices; i++) g->choices[i] = (choice){.g = g, .index = i};
    oai_make_id(ep, g->id);
    g->created = (int64_t)time(NULL);
    if (submit_all(g, &e) < 0) {
        /* what was submitted must still report back before g can go */
        g->failed = true;
        g->err = e;
        if (g->n_open == 0) goto reject;
        gen_cancel(g);
        watch_client(g);
        return;
    }
    if (g->r.stream) start_stream(g);
    watch_client(g);
    return;
reject:
    send_error(srv, req, &e);
    g->req = NULL; /* answered; evhttp owns it again */
    gen_free(g);
}

/* ---- other endpoints ------------------------------------------------------------------- */

static void handle_models(server *srv, struct evhttp_request *req, const char *id) {
    oai_error e;
    if (!id) {
        send_json(srv, req, 200, oai_models_json(srv->model_name, srv->started, true));
    } else if (strcmp(id, srv->model_name) == 0) {
        send_json(srv, req, 200, oai_models_json(srv->model_name, srv->started, false));
    } else {
        oai_error_set(&e, 404, "invalid_request_error", "model", "The model '%.200s' does not exist.", id);
        snprintf(e.code, sizeof e.code, "model_not_found");
        send_error(srv, req, &e);
    }
}

static void handle_metrics(server *srv, struct evhttp_request *req) {
    sched_stats st;
    buf out = {0};
    size_t len;
    sched_stats_get(srv->sched, &st);
    /* counted first, so the scrape that answers includes itself */
    metrics_count_status(&srv->m, 200);
    metrics_render(&srv->m, &st, srv->n_live, &out);
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
    } else if (strcmp(path, "/metrics") == 0) {
        handle_metrics(srv, req);
    } else {
        send_error_msg(srv, req, 404, "invalid_request_error", NULL, "Unknown path.");
    }
}

/* ---- shutdown -------------------------------------------------------------------------- */

static void *drain_main(void *arg) {
    server *srv = arg;
    sched_drain(srv->sched, srv->cfg.drain_timeout_s);
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
    fprintf(stderr, "veil serve: %s, draining (up to %g s)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
            srv->cfg.drain_timeout_s);
    srv->draining = true;
    if (srv->bound) evhttp_del_accept_socket(srv->http, srv->bound);
    srv->bound = NULL;
    if (pthread_create(&srv->drain_thread, NULL, drain_main, srv) == 0) {
        srv->drain_thread_started = true;
    } else {
        sched_drain(srv->sched, 0); /* no thread: cancel everything now rather than hang */
        event_active(srv->drained, EV_READ, 0);
    }
}

/* ---- setup ----------------------------------------------------------------------------- */

server *server_new(sched *s, const tokenizer *tok, const server_config *cfg) {
    server *srv = calloc(1, sizeof *srv);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (!srv) {
        err_set("out of memory");
        return NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    srv->sched = s;
    srv->tok = tok;
    srv->cfg = *cfg;
    srv->started = (int64_t)time(NULL);
    metrics_init(&srv->m);
    pthread_mutex_init(&srv->mu, NULL);
    if (evthread_use_pthreads() != 0) {
        err_set("libevent: no pthreads support");
        goto fail;
    }
    srv->model_name = strdup(cfg->model_name);
    srv->base = event_base_new();
    srv->http = srv->base ? evhttp_new(srv->base) : NULL;
    if (!srv->model_name || !srv->http) {
        err_set("cannot set up the event loop");
        goto fail;
    }
    srv->wake = event_new(srv->base, -1, 0, on_wake, srv);
    srv->drained = event_new(srv->base, -1, 0, on_drained, srv);
    srv->grace = evtimer_new(srv->base, on_grace_over, srv);
    srv->sigterm = evsignal_new(srv->base, SIGTERM, on_signal, srv);
    srv->sigint = evsignal_new(srv->base, SIGINT, on_signal, srv);
    if (!srv->wake || !srv->drained || !srv->grace || !srv->sigterm || !srv->sigint ||
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

int server_run(server *srv) {
    if (event_base_dispatch(srv->base) < 0) return err_set("the event loop failed");
    return 0;
}

void server_free(server *srv) {
    if (!srv) return;
    if (srv->drain_thread_started) pthread_join(srv->drain_thread, NULL);
    /* events the engine sent after the loop stopped (its own shutdown cancels) */
    if (srv->wake) on_wake(-1, 0, srv);
    while (srv->live) {
        gen *g = srv->live;
        if (g->req && !evhttp_request_get_connection(g->req)) evhttp_request_free(g->req);
        g->req = NULL;
        gen_free(g);
    }
    if (srv->http) evhttp_free(srv->http);
    if (srv->wake) event_free(srv->wake);
    if (srv->drained) event_free(srv->drained);
    if (srv->grace) event_free(srv->grace);
    if (srv->sigterm) event_free(srv->sigterm);
    if (srv->sigint) event_free(srv->sigint);
    if (srv->base) event_base_free(srv->base);
    pthread_mutex_destroy(&srv->mu);
    free(srv->model_name);
    free(srv);
}
