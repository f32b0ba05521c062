/* The worker role (see worker.h). */
#include "node/worker.h"

#include "api/gen.h"
#include "api/oai_response.h"
#include "attest/sim.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/hex.h"
#include "base/log.h"
#include "engine/device.h"
#include "ledger/boc.h"
#include "ledger/receipt.h"
#include "model/chat_template.h"
#include "model/model.h"
#include "net/dialer.h"
#include "net/loop.h"
#include "net/seal.h"
#include "node/earner.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct worker worker;

/* One request being answered. */
typedef struct wreq {
    worker *w;
    struct wreq *prev, *next;
    conn *c;
    uint32_t stream;
    gen *g;               /* NULL when the request was rejected before generating */
    struct event *timer;  /* the request's timeout_ms, when it has one */
    api_reply reply;
    seal_stream seal;
    buf head;             /* the answer's status and type, until its first piece goes */
    buf whole;            /* a whole (non-stream) answer, until its end */
    bool is_stream;
    uint8_t request_id[32];   /* for the receipt: see seal_request_id */
    uint8_t request_hash[32]; /* SHA-256 of the sealed payload */
} wreq;

struct worker {
    const worker_config *cfg;
    node_ident ident;
    struct event_base *base;
    gen_engine *eng;
    dialer *d;
    char *model_name;
    uint8_t model_sha[32];
    keypair signer;       /* the attested TLS key: signs receipts */
    uint32_t capacity;
    wreq *live;
    int n_live;
    bool announced, draining;
    struct event *sigterm, *sigint, *drain_timer, *redeem_timer;
    earner *earn;         /* NULL: payouts are not redeemed */
};

/* ---- answering ------------------------------------------------------------------------- */

static void wreq_free(wreq *q) {
    worker *w = q->w;
    if (q->prev) q->prev->next = q->next; else w->live = q->next;
    if (q->next) q->next->prev = q->prev;
    w->n_live--;
    if (q->timer) event_free(q->timer);
    seal_stream_wipe(&q->seal);
    buf_free(&q->head);
    buf_free(&q->whole);
    free(q);
    if (w->draining && w->n_live == 0) event_base_loopbreak(w->base);
}

static void send_error(conn *c, uint32_t stream, uint16_t code, const char *msg) {
    proto_msg m = {.type = PROTO_ERROR, .stream = stream};
    m.error.code = code;
    snprintf(m.error.message, sizeof m.error.message, "%s", msg);
    if (conn_send(c, &m) != 0) log_warn("worker: cannot send an error: %s", err_msg());
}

/* Ends q before its answer is complete: stops its generation (its KV is freed before the
 * scheduler's next step) and tells the proxy why. */
static void abandon(wreq *q, uint16_t code, const char *why) {
    log_info("worker: stream %u %s", (unsigned)q->stream, why);
    if (q->g) gen_detach(q->g);
    if (q->c) send_error(q->c, q->stream, code, why);
    wreq_free(q);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    abandon(arg, PROTO_ERR_TIMEOUT, "timed out");
}

/* Seals len bytes (after the pending head, if any) as the next piece and sends it. */
static void send_piece(wreq *q, const char *data, size_t len, bool final) {
    size_t n;
    uint8_t *piece;
    if (q->head.len) {
        buf_append(&q->head, data, len);
        piece = seal_stream_push(&q->seal, q->head.data, q->head.len, final, &n);
        buf_clear(&q->head);
    } else {
        piece = seal_stream_push(&q->seal, data, len, final, &n);
    }
    if (!piece) {
        log_error("worker: %s", err_msg());
        return;
    }
    proto_msg m = {.type = PROTO_CHUNK, .stream = q->stream, .chunk = {piece, (uint32_t)n}};
    if (q->c && conn_send(q->c, &m) != 0) log_warn("worker: cannot send a chunk: %s", err_msg());
    free(piece);
}

static void r_start(void *ctx, int status, const char *type) {
    wreq *q = ctx;
    uint8_t h[3] = {(uint8_t)(status >> 8), (uint8_t)status, (uint8_t)strlen(type)};
    buf_append(&q->head, h, 3);
    buf_append(&q->head, type, h[2]);
    q->is_stream = strcmp(type, API_SSE_TYPE) == 0;
}

static void r_chunk(void *ctx, const char *data, size_t len) {
    wreq *q = ctx;
    if (q->is_stream) send_piece(q, data, len, false);
    else buf_append(&q->whole, data, len);
}

/* The signed receipt for what q served, as a BOC (malloc'd), or NULL with err_msg(). */
static uint8_t *sign_receipt(const wreq *q, int64_t prompt, int64_t cached, int64_t completion, size_t *len) {
    receipt rc = {.prompt_tokens = (uint64_t)prompt, .cached_tokens = (uint64_t)cached,
                  .completion_tokens = (uint64_t)completion};
    uint8_t *boc = NULL;
    cell *c;
    memcpy(rc.request_id, q->request_id, 32);
    memcpy(rc.request_hash, q->request_hash, 32);
    memcpy(rc.model_hash, q->w->model_sha, 32);
    if (!(c = receipt_sign(&rc, &q->w->signer)) || boc_serialize(c, 0, &boc, len) != 0) boc = NULL;
    cell_unref(c);
    return boc;
}

static void r_end(void *ctx) {
    wreq *q = ctx;
    int64_t prompt = 0, cached = 0, completion = 0;
    size_t rlen = 0;
    uint8_t *rcpt;
    send_piece(q, q->whole.data ? q->whole.data : "", q->whole.len, true);
    if (q->g) gen_usage_get(q->g, &prompt, &cached, &completion);
    /* without a receipt the final still goes: the answer is delivered, only not paid */
    if (!(rcpt = sign_receipt(q, prompt, cached, completion, &rlen)))
        log_error("worker: stream %u: cannot sign the receipt: %s", (unsigned)q->stream, err_msg());
    proto_msg m = {.type = PROTO_FINAL, .stream = q->stream};
    m.final = (proto_final){(uint32_t)prompt, (uint32_t)cached, (uint32_t)completion, {rcpt, (uint32_t)rlen}};
    if (q->c && conn_send(q->c, &m) != 0) log_warn("worker: cannot send final: %s", err_msg());
    free(rcpt);
    wreq_free(q);
}

static const proto_recipient *my_recipient(const worker *w, const proto_request *r) {
    for (int i = 0; i < r->n_recipients; i++)
        if (memcmp(r->recipients[i].worker_key, w->ident.e2e.pk, 32) == 0) return &r->recipients[i];
    return NULL;
}

static void on_request(worker *w, conn *c, const proto_msg *m) {
    const proto_request *r = &m->request;
    const proto_recipient *me = my_recipient(w, r);
    uint8_t key[SEAL_KEY_LEN], ep;
    size_t len;
    char *body = NULL;
    oai_error e;
    wreq *q;
    if (w->draining || (uint32_t)w->n_live >= w->capacity) {
        send_error(c, m->stream, PROTO_ERR_OVERLOADED, w->draining ? "draining" : "at capacity");
        return;
    }
    if (strcmp(r->model, w->model_name) != 0) {
        send_error(c, m->stream, PROTO_ERR_BAD_REQUEST, "this worker serves another model");
        return;
    }
    if (!me || seal_unwrap(me->wrapped_key.data, me->wrapped_key.len, &w->ident.e2e, key) != 0 ||
        !(body = seal_open_payload(key, r->model, r->payload.data, r->payload.len, &ep, &len)) ||
        (ep != OAI_CHAT + 1 && ep != OAI_COMPLETIONS + 1)) {
        log_warn("worker: stream %u: cannot open the request: %s", (unsigned)m->stream,
                 me ? err_msg() : "not addressed to this worker");
        send_error(c, m->stream, PROTO_ERR_BAD_REQUEST, "cannot open the sealed request");
        free(body);
        sodium_memzero(key, sizeof key);
        return;
    }
    if (!(q = calloc(1, sizeof *q))) {
        send_error(c, m->stream, PROTO_ERR_INTERNAL, "out of memory");
        free(body);
        return;
    }
    *q = (wreq){.w = w, .c = c, .stream = m->stream};
    q->reply = (api_reply){q, r_start, r_chunk, r_end};
    seal_stream_init(&q->seal, key);
    seal_request_id(key, q->request_id);
    crypto_hash_sha256(q->request_hash, r->payload.data, r->payload.len);
    sodium_memzero(key, sizeof key);
    if (w->live) w->live->prev = q;
    q->next = w->live;
    w->live = q;
    w->n_live++;
    /* the clock starts on arrival; a request rejected below is answered at once anyway */
    if (r->timeout_ms) {
        struct timeval tv = {(time_t)(r->timeout_ms / 1000), (suseconds_t)(r->timeout_ms % 1000) * 1000};
        if (!(q->timer = evtimer_new(w->base, on_timeout, q)) || evtimer_add(q->timer, &tv) != 0) {
            send_error(c, m->stream, PROTO_ERR_INTERNAL, "cannot arm the request's timeout");
            sodium_memzero(body, len);
            free(body);
            wreq_free(q);
            return;
        }
    }
    log_info("worker: stream %u: %s request, %zu bytes", (unsigned)m->stream,
             ep == OAI_CHAT + 1 ? "chat" : "completions", len);
    q->g = gen_start(w->eng, (oai_endpoint)(ep - 1), body, len, &q->reply, &e);
    sodium_memzero(body, len);
    free(body);
    if (!q->g) {
        /* the error is the answer, sealed like any other: only the client may read it */
        char *json = oai_error_json(&e);
        r_start(q, e.status, API_JSON_TYPE);
        if (json) r_chunk(q, json, strlen(json));
        free(json);
        r_end(q);
    }
}

static void on_cancel(worker *w, conn *c, uint32_t stream) {
    for (wreq *q = w->live; q; q = q->next)
        if (q->c == c && q->stream == stream) {
            abandon(q, PROTO_ERR_CANCELLED, "cancelled");
            return;
        }
}

/* ---- the proxy connection -------------------------------------------------------------- */

static void announce(worker *w, conn *c) {
    proto_msg m = {.type = PROTO_WORKER_REGISTER, .stream = 0};
    snprintf(m.worker_register.model, sizeof m.worker_register.model, "%s", w->model_name);
    memcpy(m.worker_register.model_sha256, w->model_sha, 32);
    m.worker_register.capacity = w->draining ? 0 : w->capacity;
    m.worker_register.price = w->cfg->price;
    /* the current evidence: after a renewal it replaces, at the proxy, the hello's */
    m.worker_register.evidence = (proto_bytes){w->ident.as_client.evidence,
                                               (uint32_t)w->ident.as_client.evidence_len};
    if (w->earn) memcpy(m.worker_register.payout_key, earner_payout_key(w->earn), 32);
    if (conn_send(c, &m) != 0) log_error("worker: cannot register: %s", err_msg());
}

static void on_renewed(void *ud) {
    worker *w = ud;
    conn *c = dialer_conn(w->d);
    if (c) announce(w, c);
}

static void w_ready(conn *c, void *ud) {
    worker *w = ud;
    announce(w, c);
    if (!w->announced) {
        printf("ready: worker '%s' on proxy %s:%u\n", w->model_name, w->cfg->proxy_host,
               (unsigned)w->cfg->proxy_port);
        fflush(stdout);
        w->announced = true;
    }
}

static void w_msg(conn *c, const proto_msg *m, void *ud) {
    worker *w = ud;
    switch (m->type) {
    case PROTO_REQUEST: on_request(w, c, m); break;
    case PROTO_CANCEL: on_cancel(w, c, m->stream); break;
    case PROTO_ERROR: log_warn("worker: proxy error %u on stream %u: %s", (unsigned)m->error.code,
                               (unsigned)m->stream, m->error.message); break;
    case PROTO_VOUCHER:
        if (!w->earn) log_warn("worker: the proxy sent a payout voucher but no --chain is set");
        else if (earner_voucher(w->earn, m->voucher.data, m->voucher.len) != 0)
            log_warn("worker: refused a payout voucher: %s", err_msg());
        break;
    default: break;
    }
}

static void on_redeem_timer(evutil_socket_t fd, short what, void *arg) {
    worker *w = arg;
    (void)fd;
    (void)what;
    if (earner_redeem(w->earn) != 0) log_warn("worker: cannot redeem a payout (kept for the next try): %s", err_msg());
}

static void w_close(conn *c, const char *why, void *ud) {
    worker *w = ud;
    wreq *q, *next;
    (void)why;
    /* the proxy is gone: nobody can receive these answers, so free their KV now */
    for (q = w->live; q; q = next) {
        next = q->next;
        if (q->c != c) continue;
        q->c = NULL;
        if (q->g) gen_detach(q->g);
        wreq_free(q);
    }
}

/* ---- running --------------------------------------------------------------------------- */

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    event_base_loopbreak(((worker *)arg)->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    worker *w = arg;
    struct timeval tv = {(time_t)w->cfg->drain_timeout_s, 0};
    conn *c = dialer_conn(w->d);
    (void)what;
    if (w->draining) return;
    fprintf(stderr, "veil worker: %s, draining (up to %g s)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
            w->cfg->drain_timeout_s);
    w->draining = true;
    if (c) announce(w, c);
    if (w->n_live == 0) event_base_loopbreak(w->base);
    else evtimer_add(w->drain_timer, &tv);
}

int worker_run(const worker_config *cfg) {
    static const conn_handlers h = {w_ready, w_msg, w_close};
    worker w = {.cfg = cfg};
    model *m = NULL;
    tokenizer *tok = NULL;
    sched *s = NULL;
    device *dev = NULL;
    sched_config sc = cfg->sched;
    gen_config gc = {.hold_stream = true};
    char hex[65];
    int rc = -1;
    signal(SIGPIPE, SIG_IGN);
    if (!(m = model_load(cfg->model_path)) || !(tok = tok_load(m->file))) goto done;
    /* before anything else starts, so a missing GPU fails the start, not the first request */
    if (!(dev = device_open(cfg->device, m, sc.n_threads))) goto done;
    sc.device = dev;
    if (sim_measure_file(cfg->model_path, w.model_sha) != 0) goto done;
    if (cfg->chat_template) {
        if (chat_tmpl_from_name(cfg->chat_template, &gc.tmpl) != 0) goto done;
    } else {
        gguf_str src = {0};
        gc.tmpl = gguf_get_str(m->file, "tokenizer.chat_template", &src) == 1
                      ? chat_tmpl_detect(src.ptr, src.len) : CHAT_TMPL_PLAIN;
    }
    gc.model_name = cfg->model_name ? cfg->model_name : m->name;
    gc.n_ctx = sc.n_ctx > 0 ? sc.n_ctx : m->hp.n_ctx_train;
    w.capacity = cfg->capacity ? cfg->capacity : (uint32_t)sc.max_running;
    if (!(w.model_name = strdup(gc.model_name))) {
        err_set("out of memory");
        goto done;
    }
    if (node_ident_init(&w.ident, PROTO_ROLE_WORKER, &cfg->attest) != 0 ||
        ratls_identity_signing_key(w.ident.id, &w.signer) != 0)
        goto done;
    if (cfg->chain_url && !(w.earn = earner_open(cfg->chain_url, &w.signer, cfg->wallet, cfg->accounts))) goto done;
    if (!(s = sched_new(m, tok, &sc)) || !(w.base = loop_new()) ||
        !(w.eng = gen_engine_new(w.base, s, tok, &gc, NULL)))
        goto done;
    w.sigterm = evsignal_new(w.base, SIGTERM, on_signal, &w);
    w.sigint = evsignal_new(w.base, SIGINT, on_signal, &w);
    w.drain_timer = evtimer_new(w.base, on_drain_timeout, &w);
    if (w.earn) {
        struct timeval every = {cfg->redeem_every_s ? (time_t)cfg->redeem_every_s : 2, 0}; /* in batches */
        w.redeem_timer = event_new(w.base, -1, EV_PERSIST, on_redeem_timer, &w);
        if (!w.redeem_timer || event_add(w.redeem_timer, &every) != 0) {
            err_set("cannot set up the redeem timer");
            goto done;
        }
    }
    if (!w.sigterm || !w.sigint || !w.drain_timer || event_add(w.sigterm, NULL) ||
        event_add(w.sigint, NULL) || node_ident_start_renewal(&w.ident, w.base, on_renewed, &w) != 0) {
        err_set("cannot set up the event loop");
        goto done;
    }
    hex_encode(w.model_sha, 32, hex);
    log_info("worker: model '%s' sha256 %s, capacity %u, price %u, on %s", w.model_name, hex,
             (unsigned)w.capacity, (unsigned)cfg->price, device_describe(dev));
    if (!(w.d = dialer_new(w.base, &w.ident.as_client, cfg->proxy_host, cfg->proxy_port,
                           PROTO_ROLE_PROXY, &h, &w)))
        goto done;
    if (event_base_dispatch(w.base) < 0) {
        err_set("the event loop failed");
        goto done;
    }
    rc = 0;
done:
    if (w.d) dialer_free(w.d, PROTO_ERR_SHUTDOWN, "worker shutting down");
    while (w.live) {
        if (w.live->g) gen_detach(w.live->g);
        wreq_free(w.live);
    }
    sched_free(s);
    gen_engine_free(w.eng);
    device_close(dev);
    if (w.sigterm) event_free(w.sigterm);
    if (w.sigint) event_free(w.sigint);
    if (w.drain_timer) event_free(w.drain_timer);
    if (w.redeem_timer) event_free(w.redeem_timer);
    node_ident_stop_renewal(&w.ident);
    if (w.base) {
        /* let closing connections flush and free themselves (returns early once they have) */
        struct timeval tv = {1, 500000};
        event_base_loopexit(w.base, &tv);
        event_base_dispatch(w.base);
        event_base_free(w.base);
    }
    earner_free(w.earn);
    node_ident_free(&w.ident);
    keys_wipe(&w.signer);
    free(w.model_name);
    tok_free(tok);
    model_free(m);
    return rc;
}
