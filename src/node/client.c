/* The client gateway role (see client.h). */
#include "node/client.h"

#include "api/oai_response.h"
#include "api/server.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "ledger/boc.h"
#include "ledger/receipt.h"
#include "ledger/registry.h"
#include "net/dialer.h"
#include "net/loop.h"
#include "net/seal.h"
#include "node/payer.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_TOKENS (1u << 24) /* what the request says when it sets no limit */
#define USAGE_KEY "\"usage\":{"

typedef struct gateway gateway;

/* A worker the proxy announced and we verified. */
typedef struct gworker {
    struct gworker *next;
    uint8_t e2e[32];
    uint8_t signer[32];     /* its attested Ed25519 TLS key: signs its receipts */
    uint8_t model_sha[32];
    char model[PROTO_MODEL_MAX + 1];
    uint32_t price, capacity, active;
} gworker;

/* A worker a request was sealed to: one of them signs the receipt. */
typedef struct gcandidate {
    uint8_t signer[32], model_sha[32];
} gcandidate;

/* One request on the network. */
typedef struct gstream {
    gateway *gw;
    struct gstream *prev, *next;
    uint32_t id;
    const api_reply *reply;   /* NULL once ended or the HTTP client left */
    seal_stream seal;
    bool started, sse;
    bool answered;            /* the last sealed piece came: waiting for the final's receipt */
    bool holding;             /* the usage is in `held`: it goes out once the cost is known */
    buf held;
    uint8_t request_id[32], request_hash[32];
    int n_cand;
    gcandidate cand[PROTO_RECIPIENTS_MAX];
} gstream;

struct gateway {
    const client_config *cfg;
    node_ident ident;
    struct event_base *base;
    dialer *d;
    server *srv;
    gworker *workers;
    int n_workers;
    gstream *streams;
    uint32_t next_id;
    bool announced;
    int64_t started;
    registry_params prices;
    payer *pay;               /* NULL: payments off */
};

/* ---- answers --------------------------------------------------------------------------- */

static void stream_free(gstream *s) {
    gateway *gw = s->gw;
    if (s->prev) s->prev->next = s->next; else gw->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    seal_stream_wipe(&s->seal);
    buf_free(&s->held);
    free(s);
}

static int http_status_of(uint16_t code) {
    switch (code) {
    case PROTO_ERR_NO_WORKER: case PROTO_ERR_OVERLOADED: return 503;
    case PROTO_ERR_TIMEOUT: return 504;
    case PROTO_ERR_PAYMENT: return 402;
    case PROTO_ERR_BAD_REQUEST: return 400;
    default: return 502;
    }
}

/* Ends the HTTP answer with an error: a whole error body before the answer started, an SSE
 * error event and [DONE] after (a started whole answer cannot be: it comes in one piece). */
static void fail_reply(gstream *s, int status, const char *msg) {
    const api_reply *r = s->reply;
    oai_error e;
    char *json;
    if (!r) return;
    s->reply = NULL;
    oai_error_set(&e, status, status == 503 ? "server_error" : "api_error", NULL, "%s", msg);
    json = oai_error_json(&e);
    if (!s->started) {
        r->start(r->ctx, status, API_JSON_TYPE);
        if (json) r->chunk(r->ctx, json, strlen(json));
    } else if (s->sse) {
        char *ev = json ? oai_sse_event(json) : NULL;
        if (ev) r->chunk(r->ctx, ev, strlen(ev));
        r->chunk(r->ctx, OAI_SSE_DONE, strlen(OAI_SSE_DONE));
        free(ev);
    }
    r->end(r->ctx);
    free(json);
}

/* false when there is no proxy connection to send it on */
static bool send_cancel(gateway *gw, uint32_t id) {
    conn *c = dialer_conn(gw->d);
    proto_msg m = {.type = PROTO_CANCEL, .stream = id};
    return c && conn_send(c, &m) == 0;
}

static void on_chunk(gateway *gw, gstream *s, const proto_bytes *piece) {
    size_t n, at = 0;
    bool final;
    uint8_t *plain;
    if (!s->reply) return;
    if (!(plain = seal_stream_pull(&s->seal, piece->data, piece->len, &n, &final))) {
        log_warn("client: stream %u: %s", (unsigned)s->id, err_msg());
        send_cancel(gw, s->id);
        fail_reply(s, 502, "the answer did not authenticate; it was cut off");
        return;
    }
    if (!s->started) {
        char type[256];
        if (n < 3 || n < 3u + plain[2]) {
            free(plain);
            send_cancel(gw, s->id);
            fail_reply(s, 502, "the worker's answer is malformed");
            return;
        }
        memcpy(type, plain + 3, plain[2]);
        type[plain[2]] = 0;
        s->started = true;
        s->sse = strcmp(type, API_SSE_TYPE) == 0;
        s->reply->start(s->reply->ctx, plain[0] << 8 | plain[1], type);
        at = 3u + plain[2];
    }
    /* The usage (the whole answer's, or the stream's usage chunk and what follows) waits for
     * the receipt: its cost is only known then. Inside JSON strings quotes are escaped, so the
     * bare key below is the usage object itself. */
    if (n > at && !s->holding && !final && !memmem(plain + at, n - at, USAGE_KEY, strlen(USAGE_KEY)))
        s->reply->chunk(s->reply->ctx, (const char *)plain + at, n - at);
    else if (n > at) {
        s->holding = true;
        buf_append(&s->held, plain + at, n - at);
    }
    free(plain);
    if (final) s->answered = true;
}

/* The cost of the request the receipt proves, in nano-units; 0 (logged) when it does not
 * verify: the answer is delivered but not paid. */
static uint64_t receipt_cost(const gateway *gw, const gstream *s, const proto_bytes *boc) {
    cell *c = boc->len ? boc_parse(boc->data, boc->len) : NULL;
    uint64_t cost = 0, fee;
    receipt r;
    int i = 0;
    if (!c) {
        log_warn("client: stream %u: unpaid: %s", (unsigned)s->id, boc->len ? err_msg() : "no receipt");
        return 0;
    }
    while (i < s->n_cand && receipt_verify(c, s->cand[i].signer, &r) != RECEIPT_OK) i++;
    if (i == s->n_cand)
        log_warn("client: stream %u: unpaid: the receipt is not signed by a worker it was sealed to",
                 (unsigned)s->id);
    else if (memcmp(r.request_id, s->request_id, 32) != 0 || memcmp(r.request_hash, s->request_hash, 32) != 0)
        log_warn("client: stream %u: unpaid: the receipt is for another request", (unsigned)s->id);
    else if (memcmp(r.model_hash, s->cand[i].model_sha, 32) != 0)
        log_warn("client: stream %u: unpaid: the receipt names another model than the worker's", (unsigned)s->id);
    else if (registry_price(&gw->prices, r.prompt_tokens, r.cached_tokens, r.completion_tokens, &cost, &fee) != 0) {
        log_warn("client: stream %u: unpaid: %s", (unsigned)s->id, err_msg());
        cost = 0;
    }
    cell_unref(c);
    return cost;
}

/* Ends a whole answer: the held usage goes out with its cost. */
static void finish_reply(gstream *s, uint64_t cost) {
    const api_reply *r = s->reply;
    const char *held = (const char *)s->held.data;
    char *at = held ? memmem(held, s->held.len, USAGE_KEY, strlen(USAGE_KEY)) : NULL;
    char field[40];
    s->reply = NULL;
    if (at) {
        size_t head = (size_t)(at - held) + strlen(USAGE_KEY);
        snprintf(field, sizeof field, "\"cost\":%" PRIu64 ",", cost);
        r->chunk(r->ctx, held, head);
        r->chunk(r->ctx, field, strlen(field));
        r->chunk(r->ctx, held + head, s->held.len - head);
    } else if (s->held.len) {
        r->chunk(r->ctx, held, s->held.len);
    }
    r->end(r->ctx);
}

/* ---- the backend the HTTP front calls -------------------------------------------------- */

static const char *default_model(const gateway *gw) {
    for (const gworker *w = gw->workers; w; w = w->next)
        if (strcmp(w->model, gw->workers->model) != 0) return NULL;
    return gw->workers ? gw->workers->model : NULL;
}

static void *gw_start(void *ctx, oai_endpoint ep, const char *body, size_t len,
                      const api_reply *reply, oai_error *e) {
    gateway *gw = ctx;
    conn *c = dialer_conn(gw->d);
    oai_request r;
    proto_msg m = {.type = PROTO_REQUEST};
    proto_request *q = &m.request;
    uint8_t key[SEAL_KEY_LEN], wrapped[PROTO_RECIPIENTS_MAX][SEAL_WRAPPED_LEN];
    uint8_t *payload = NULL;
    size_t payload_len;
    const char *model;
    gstream *s = NULL;
    if (oai_request_parse(ep, body, len, 0, &r, e) < 0) return NULL;
    model = r.model ? r.model : default_model(gw);
    if (!c) {
        oai_error_set(e, 503, "server_error", NULL, "Not connected to a proxy; retry shortly.");
        goto fail;
    }
    if (!model) {
        oai_error_set(e, 400, "invalid_request_error", "model", "Name the model: several are served.");
        goto fail;
    }
    if (gw->pay && payer_check(gw->pay) != 0) {
        oai_error_set(e, 402, "insufficient_quota", NULL, "Payment required: %s", err_msg());
        snprintf(e->code, sizeof e->code, "insufficient_quota");
        goto fail;
    }
    snprintf(q->model, sizeof q->model, "%s", model);
    if (!(s = calloc(1, sizeof *s))) {
        oai_error_set(e, 500, "server_error", NULL, "out of memory");
        goto fail;
    }
    for (gworker *w = gw->workers; w && q->n_recipients < PROTO_RECIPIENTS_MAX; w = w->next)
        if (strcmp(w->model, model) == 0 && w->price <= gw->cfg->max_price) {
            memcpy(s->cand[q->n_recipients].signer, w->signer, 32);
            memcpy(s->cand[q->n_recipients].model_sha, w->model_sha, 32);
            memcpy(q->recipients[q->n_recipients++].worker_key, w->e2e, 32);
        }
    if (q->n_recipients == 0) {
        oai_error_set(e, 404, "invalid_request_error", "model",
                      "No attested worker serves the model '%.200s' within the price.", model);
        snprintf(e->code, sizeof e->code, "model_not_found");
        goto fail;
    }
    if (seal_new_key(key) != 0 ||
        !(payload = seal_payload(key, q->model, (uint8_t)(ep + 1), body, len, &payload_len))) {
        oai_error_set(e, 500, "server_error", NULL, "cannot seal the request: %s", err_msg());
        goto fail;
    }
    for (int i = 0; i < q->n_recipients; i++) {
        seal_wrap(key, q->recipients[i].worker_key, wrapped[i]);
        q->recipients[i].wrapped_key = (proto_bytes){wrapped[i], SEAL_WRAPPED_LEN};
    }
    q->max_tokens = r.max_tokens > 0 && r.max_tokens < DEFAULT_MAX_TOKENS ? (uint32_t)r.max_tokens
                                                                         : DEFAULT_MAX_TOKENS;
    q->max_price = gw->cfg->max_price;
    q->timeout_ms = gw->cfg->timeout_ms;
    q->payload = (proto_bytes){payload, (uint32_t)payload_len};
    m.stream = ++gw->next_id;
    if (conn_send(c, &m) != 0) {
        oai_error_set(e, 502, "server_error", NULL, "cannot send the request: %s", err_msg());
        goto fail;
    }
    s->gw = gw;
    s->id = m.stream;
    s->reply = reply;
    s->next = gw->streams;
    s->n_cand = q->n_recipients;
    seal_stream_init(&s->seal, key);
    seal_request_id(key, s->request_id);
    crypto_hash_sha256(s->request_hash, payload, payload_len);
    if (gw->streams) gw->streams->prev = s;
    gw->streams = s;
    sodium_memzero(key, sizeof key);
    free(payload);
    oai_request_free(&r);
    return s;
fail:
    sodium_memzero(key, sizeof key);
    free(s);
    free(payload);
    oai_request_free(&r);
    return NULL;
}

static void gw_detach(void *handle) {
    gstream *s = handle;
    s->reply = NULL;
    /* freed when the cancel is answered (or the proxy connection goes) */
    if (!send_cancel(s->gw, s->id)) stream_free(s);
}

static char *gw_models(void *ctx, const char *id, oai_error *e) {
    gateway *gw = ctx;
    const char *names[64];
    size_t n = 0;
    for (const gworker *w = gw->workers; w; w = w->next) {
        size_t i = 0;
        while (i < n && strcmp(names[i], w->model) != 0) i++;
        if (id && strcmp(id, w->model) == 0) return oai_model_json(w->model, gw->started);
        if (i == n && n < 64) names[n++] = w->model;
    }
    if (!id) return oai_model_list_json(names, n, gw->started);
    oai_error_set(e, 404, "invalid_request_error", "model", "No live worker serves the model '%.200s'.", id);
    snprintf(e->code, sizeof e->code, "model_not_found");
    return NULL;
}

/* ---- the proxy connection -------------------------------------------------------------- */

static void forget_worker(gateway *gw, const uint8_t key[32]) {
    for (gworker **p = &gw->workers; *p; p = &(*p)->next)
        if (memcmp((*p)->e2e, key, 32) == 0) {
            gworker *w = *p;
            *p = w->next;
            free(w);
            gw->n_workers--;
            return;
        }
}

static void on_worker_info(gateway *gw, const proto_worker_info *i) {
    gworker *w;
    forget_worker(gw, i->e2e_key);
    if (i->status != PROTO_WORKER_AVAILABLE) return;
    if (node_ident_check_worker(&gw->ident, i->tls_key.data, i->tls_key.len, i->e2e_key,
                                i->evidence.data, i->evidence.len) != 0) {
        log_warn("client: ignoring a worker for '%s': %s", i->model, err_msg());
        return;
    }
    if (!(w = calloc(1, sizeof *w))) return;
    if (ratls_spki_ed25519(i->tls_key.data, i->tls_key.len, w->signer) != 0) {
        log_warn("client: ignoring a worker for '%s': it could not sign receipts: %s", i->model, err_msg());
        free(w);
        return;
    }
    memcpy(w->model_sha, i->model_sha256, 32);
    memcpy(w->e2e, i->e2e_key, 32);
    memcpy(w->model, i->model, sizeof w->model);
    w->price = i->price;
    w->capacity = i->capacity;
    w->active = i->active;
    w->next = gw->workers;
    gw->workers = w;
    gw->n_workers++;
    log_info("client: worker for '%s' attested (%d live)", w->model, gw->n_workers);
    if (!gw->announced && gw->n_workers >= gw->cfg->wait_workers) {
        printf("ready: http://%s%s%s:%u\n", strchr(gw->cfg->listen_host, ':') ? "[" : "",
               gw->cfg->listen_host, strchr(gw->cfg->listen_host, ':') ? "]" : "",
               (unsigned)server_port(gw->srv));
        fflush(stdout);
        gw->announced = true;
    }
}

static gstream *find_stream(gateway *gw, uint32_t id) {
    for (gstream *s = gw->streams; s; s = s->next)
        if (s->id == id) return s;
    return NULL;
}

/* Signs the client's new cumulative total and sends it to the proxy. */
static void send_charge(gateway *gw, conn *c, uint64_t cost) {
    size_t len = 0;
    uint8_t *boc = payer_charge(gw->pay, cost, &len);
    proto_msg v = {.type = PROTO_VOUCHER, .stream = 0, .voucher = {boc, (uint32_t)len}};
    if (!boc || conn_send(c, &v) != 0)
        log_warn("client: cannot pay %" PRIu64 " nano-units: %s", cost, err_msg());
    free(boc);
}

static void g_msg(conn *c, const proto_msg *m, void *ud) {
    gateway *gw = ud;
    gstream *s;
    if (m->type == PROTO_WORKER_INFO) {
        on_worker_info(gw, &m->worker_info);
        return;
    }
    if (m->stream == 0 || !(s = find_stream(gw, m->stream))) return;
    if (m->type == PROTO_CHUNK) {
        on_chunk(gw, s, &m->chunk);
    } else if (m->type == PROTO_FINAL) {
        if (s->reply && !s->answered) fail_reply(s, 502, "the answer ended early");
        else if (s->reply) {
            uint64_t cost = receipt_cost(gw, s, &m->final.receipt);
            finish_reply(s, cost);
            if (cost && gw->pay) send_charge(gw, c, cost);
        }
        stream_free(s);
    } else if (m->type == PROTO_ERROR) {
        char msg[PROTO_MESSAGE_MAX + 64];
        snprintf(msg, sizeof msg, "veil network: %s (code %u)", m->error.message, (unsigned)m->error.code);
        fail_reply(s, http_status_of(m->error.code), msg);
        stream_free(s);
    }
}

/* A proxy (new, or the same after a broken connection) first gets the standing voucher: it
 * may have missed the last charge we signed. */
static void g_ready(conn *c, void *ud) {
    gateway *gw = ud;
    size_t len = 0;
    uint8_t *boc = NULL;
    if (!gw->pay) return;
    int rc = payer_standing(gw->pay, &boc, &len);
    proto_msg v = {.type = PROTO_VOUCHER, .stream = 0, .voucher = {boc, (uint32_t)len}};
    if (rc != 0 || (boc && conn_send(c, &v) != 0))
        log_warn("client: cannot hand the proxy the standing voucher: %s", err_msg());
    free(boc);
}

static void g_close(conn *c, const char *why, void *ud) {
    gateway *gw = ud;
    (void)c;
    while (gw->streams) {
        gstream *s = gw->streams;
        char msg[400];
        snprintf(msg, sizeof msg, "lost the proxy connection (%.300s)", why);
        fail_reply(s, 502, msg);
        stream_free(s);
    }
    while (gw->workers) forget_worker(gw, gw->workers->e2e);
}

int client_run(const client_config *cfg) {
    static const conn_handlers h = {g_ready, g_msg, g_close};
    gateway gw = {.cfg = cfg, .started = (int64_t)time(NULL), .prices = registry_default_params()};
    server_backend be = {&gw, gw_start, gw_detach, gw_models, NULL, NULL};
    server_config sc = {.name = "veil client", .host = cfg->listen_host, .port = cfg->listen_port,
                        .max_body = cfg->max_body, .drain_timeout_s = cfg->drain_timeout_s,
                        .heartbeat_s = cfg->heartbeat_s, .io_timeout_s = cfg->io_timeout_s};
    int rc = -1;
    if (cfg->chain_url) {
        if (!(gw.pay = payer_open(cfg->chain_url, cfg->wallet, cfg->channel, cfg->accounts))) goto done;
        gw.prices = *payer_prices(gw.pay);
    }
    if (node_ident_init(&gw.ident, PROTO_ROLE_CLIENT, &cfg->attest) != 0 || !(gw.base = loop_new()) ||
        node_ident_start_renewal(&gw.ident, gw.base, NULL, NULL) != 0 || !(gw.srv = server_new(gw.base, &be, &sc)) ||
        !(gw.d = dialer_new(gw.base, &gw.ident.as_client, cfg->proxy_host, cfg->proxy_port,
                            PROTO_ROLE_PROXY, &h, &gw)))
        goto done;
    if (server_run(gw.srv) != 0) goto done;
    rc = 0;
done:
    if (gw.d) dialer_free(gw.d, PROTO_ERR_SHUTDOWN, "client shutting down");
    server_free(gw.srv);
    while (gw.streams) stream_free(gw.streams);
    while (gw.workers) forget_worker(&gw, gw.workers->e2e);
    node_ident_stop_renewal(&gw.ident);
    if (gw.base) {
        struct timeval tv = {1, 500000};
        event_base_loopexit(gw.base, &tv);
        event_base_dispatch(gw.base);
        event_base_free(gw.base);
    }
    node_ident_free(&gw.ident);
    payer_free(gw.pay);
    return rc;
}
