/* The proxy role (see proxy.h).
 *
 * A request in flight is a `relay`: the client's stream, the worker's stream, and a copy of
 * the sealed request (for failover). It sits on its client's list and its worker's list;
 * when the client leaves first it stays on the worker's until the worker answers the cancel.
 * Lists, not maps: a worker runs tens of requests, a scan is cheaper than hashing. */
#include "node/proxy.h"

#include "attest/hexfile.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/hex.h"
#include "base/log.h"
#include "net/loop.h"
#include "net/ratls.h"
#include "node/payee.h"

#include <sodium.h>

#include <event2/event.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EWMA_ALPHA 0.2
#define EWMA_START_S 0.05      /* a new worker's assumed time to first chunk */
#define MAX_HASHES 1024

typedef struct proxy proxy;
typedef struct pworker pworker;
typedef struct pclient pclient;
typedef struct relay relay;

struct pworker {
    proxy *p;
    pworker *prev, *next;
    conn *c;
    bool registered;
    char model[PROTO_MODEL_MAX + 1];
    uint8_t sha[32];
    uint32_t capacity, price, active, next_stream;
    double ewma_ttft, ok, failed; /* ok/failed: exponentially decayed counts */
    relay *relays;
    uint8_t payout_key[32];     /* whose wallet its fees go to (worker_register) */
    buf evidence;               /* its latest verified evidence (a renewal); empty: the hello's */
};

struct pclient {
    proxy *p;
    pclient *prev, *next;
    conn *c;
    relay *relays;
    payee_account acct;         /* payments on: what this client owes and has signed */
};

struct relay {
    pclient *cl;                /* NULL once the client left */
    relay *cprev, *cnext;
    uint32_t cstream;
    pworker *wk;                /* NULL between workers */
    relay *wprev, *wnext;
    uint32_t wstream;
    char model[PROTO_MODEL_MAX + 1];
    uint32_t max_tokens, prompt_tokens, timeout_ms, max_price;
    uint8_t n_rec, tried;       /* tried: bit i = recipient i was used */
    uint8_t keys[PROTO_RECIPIENTS_MAX][32];
    uint8_t wrapped[PROTO_RECIPIENTS_MAX][PROTO_WRAPPED_KEY_MAX];
    uint16_t wrapped_len[PROTO_RECIPIENTS_MAX];
    uint8_t *payload;
    uint32_t payload_len;
    uint64_t chunks, bytes;
    double t_start;
};

struct proxy {
    const proxy_config *cfg;
    node_ident ident;
    struct event_base *base;
    conn_listener *wl, *cl;
    pworker *workers;
    pclient *clients;
    uint8_t (*hashes)[32];
    size_t n_hashes;
    FILE *dump;
    struct event *sigterm, *sigint, *redeem_timer;
    payee *pay;                 /* NULL: payments off */
};

static void send_error(conn *c, uint32_t stream, uint16_t code, const char *msg) {
    proto_msg m = {.type = PROTO_ERROR, .stream = stream};
    m.error.code = code;
    snprintf(m.error.message, sizeof m.error.message, "%s", msg);
    if (c && conn_send(c, &m) != 0) log_warn("proxy: cannot send an error: %s", err_msg());
}

/* ---- relays ---------------------------------------------------------------------------- */

static void relay_unlink_worker(relay *r) {
    pworker *w = r->wk;
    if (!w) return;
    if (r->wprev) r->wprev->wnext = r->wnext; else w->relays = r->wnext;
    if (r->wnext) r->wnext->wprev = r->wprev;
    r->wk = NULL;
    r->wprev = r->wnext = NULL;
    w->active--;
}

static void relay_unlink_client(relay *r) {
    pclient *cl = r->cl;
    if (!cl) return;
    if (r->cprev) r->cprev->cnext = r->cnext; else cl->relays = r->cnext;
    if (r->cnext) r->cnext->cprev = r->cprev;
    r->cl = NULL;
    r->cprev = r->cnext = NULL;
}

static void relay_free(relay *r) {
    relay_unlink_worker(r);
    relay_unlink_client(r);
    free(r->payload);
    free(r);
}

/* Every request that ends with a worker's final passes here: the counts are logged and, with
 * payments on, the worker's receipt raises what its client may be charged. */
static void meter(const relay *r, pworker *w, const proto_final *f) {
    uint8_t signer[32], hash[32], *boc = NULL;
    uint64_t cost = 0, fee = 0;
    size_t len = 0;
    if (r->cl && w->p->pay) {
        const ratls_peer *peer = conn_peer(w->c);
        crypto_hash_sha256(hash, r->payload, r->payload_len);
        if (ratls_spki_ed25519(peer->spki, peer->spki_len, signer) != 0 ||
            payee_receipt(w->p->pay, &r->cl->acct, signer, hash, f->receipt.data, f->receipt.len, &cost, &fee) != 0)
            log_warn("proxy: a receipt does not verify, the request is unpaid: %s", err_msg());
    }
    if (fee) {
        /* no voucher and no error: the fee is owed (logged) and a later voucher carries it */
        if (payee_pay_worker(w->p->pay, w->payout_key, fee, &boc, &len) != 0)
            log_warn("proxy: cannot pay a worker: %s", err_msg());
        proto_msg v = {.type = PROTO_VOUCHER, .stream = 0, .voucher = {boc, (uint32_t)len}};
        if (boc && conn_send(w->c, &v) != 0) log_warn("proxy: cannot send a payout voucher: %s", err_msg());
        free(boc);
    }
    log_info("proxy: done model=%s prompt_tokens=%u cached=%u completion_tokens=%u "
             "chunks=%llu sealed_bytes=%llu price=%u cost=%llu ms=%.1f",
             r->model, (unsigned)f->prompt_tokens, (unsigned)f->cached_tokens,
             (unsigned)f->completion_tokens, (unsigned long long)r->chunks,
             (unsigned long long)r->bytes, (unsigned)w->price, (unsigned long long)cost,
             (clock_now() - r->t_start) * 1e3);
}

static double worker_score(const pworker *w) {
    double success = (w->ok + 1.0) / (w->ok + w->failed + 1.0);
    return w->ewma_ttft * (1.0 + (double)w->active / w->capacity) / success;
}

/* Sends r to the best untried recipient, with timeout_ms left_ms (0: none); -1 when none is
 * left. */
static int route(proxy *p, relay *r, uint32_t left_ms) {
    pworker *best = NULL;
    int best_i = -1;
    for (int i = 0; i < r->n_rec; i++) {
        if (r->tried & (1u << i)) continue;
        for (pworker *w = p->workers; w; w = w->next) {
            if (!w->registered || memcmp(conn_peer(w->c)->e2e_key, r->keys[i], 32) != 0) continue;
            if (strcmp(w->model, r->model) != 0 || w->price > r->max_price ||
                w->active >= w->capacity)
                continue;
            if (!best || worker_score(w) < worker_score(best)) {
                best = w;
                best_i = i;
            }
        }
    }
    if (!best) return -1;
    r->tried |= 1u << best_i;
    proto_msg m = {.type = PROTO_REQUEST, .stream = ++best->next_stream};
    proto_request *q = &m.request;
    memcpy(q->model, r->model, sizeof q->model);
    q->max_tokens = r->max_tokens;
    q->prompt_tokens = r->prompt_tokens;
    q->timeout_ms = left_ms;
    q->max_price = r->max_price;
    q->n_recipients = 1; /* the worker learns nothing of the other candidates */
    memcpy(q->recipients[0].worker_key, r->keys[best_i], 32);
    q->recipients[0].wrapped_key = (proto_bytes){r->wrapped[best_i], r->wrapped_len[best_i]};
    q->payload = (proto_bytes){r->payload, r->payload_len};
    if (conn_send(best->c, &m) != 0) {
        log_warn("proxy: cannot send to a worker: %s", err_msg());
        return route(p, r, left_ms);
    }
    r->wk = best;
    r->wstream = m.stream;
    r->wnext = best->relays;
    if (best->relays) best->relays->wprev = r;
    best->relays = r;
    best->active++;
    return 0;
}

/* Routes r with the part of its timeout the client has not used up yet (what a worker gets
 * is always a little less than the client asked for, so the worker's timeout error reaches
 * the client before the client's own deadline); when that is gone the proxy answers timeout
 * itself, and when no recipient is left it answers code. True when r went to a worker. */
static bool dispatch(proxy *p, relay *r, uint16_t code, const char *why) {
    double left = r->timeout_ms - (clock_now() - r->t_start) * 1000.0;
    if (r->timeout_ms && left <= 0) {
        code = PROTO_ERR_TIMEOUT;
        why = "timed out before a worker took the request";
        log_info("proxy: request timed out before a worker took it");
    } else if (route(p, r, r->timeout_ms ? (uint32_t)ceil(left) : 0) == 0) {
        return true;
    }
    send_error(r->cl->c, r->cstream, code, why);
    relay_free(r);
    return false;
}

/* The worker of r failed before the first chunk: try another, else tell the client. */
static void fail_over(proxy *p, relay *r, uint16_t code, const char *why) {
    relay_unlink_worker(r);
    if (!r->cl) {
        relay_free(r);
        return;
    }
    if (dispatch(p, r, code, why)) log_info("proxy: failed over (%s)", why);
}

static relay *worker_relay(pworker *w, uint32_t stream) {
    for (relay *r = w->relays; r; r = r->wnext)
        if (r->wstream == stream) return r;
    return NULL;
}

static relay *client_relay(pclient *cl, uint32_t stream) {
    for (relay *r = cl->relays; r; r = r->cnext)
        if (r->cstream == stream) return r;
    return NULL;
}

/* ---- workers --------------------------------------------------------------------------- */

static bool hash_allowed(const proxy *p, const uint8_t sha[32]) {
    if (!p->cfg->allow_models) return true;
    for (size_t i = 0; i < p->n_hashes; i++)
        if (memcmp(p->hashes[i], sha, 32) == 0) return true;
    return false;
}

static void tell_client(pclient *cl, const pworker *w, bool available) {
    const ratls_peer *peer = conn_peer(w->c);
    proto_msg m = {.type = PROTO_WORKER_INFO, .stream = 0};
    proto_worker_info *i = &m.worker_info;
    memcpy(i->e2e_key, peer->e2e_key, 32);
    i->status = available ? PROTO_WORKER_AVAILABLE : PROTO_WORKER_REMOVED;
    memcpy(i->model, w->model, sizeof i->model);
    memcpy(i->model_sha256, w->sha, 32);
    i->price = w->price;
    i->capacity = w->capacity;
    i->active = w->active;
    if (available) {
        i->tls_key = (proto_bytes){peer->spki, (uint32_t)peer->spki_len};
        if (w->evidence.len)
            i->evidence = (proto_bytes){(const uint8_t *)w->evidence.data, (uint32_t)w->evidence.len};
        else
            i->evidence = (proto_bytes){peer->evidence, (uint32_t)peer->evidence_len};
    }
    if (conn_send(cl->c, &m) != 0) log_warn("proxy: cannot send worker_info: %s", err_msg());
}

static void tell_clients(proxy *p, const pworker *w, bool available) {
    for (pclient *cl = p->clients; cl; cl = cl->next) tell_client(cl, w, available);
}

static void w_ready(conn *c, void *ud) {
    proxy *p = ud;
    pworker *w = calloc(1, sizeof *w);
    if (!w) {
        conn_close(c, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    *w = (pworker){.p = p, .c = c, .ewma_ttft = EWMA_START_S, .next = p->workers};
    if (p->workers) p->workers->prev = w;
    p->workers = w;
    conn_set_ud(c, w);
}

/* Fresh evidence from a registration: the worker renews it before it goes stale, so the
 * worker_info we send to gateways stays acceptable to them. 0, or -1 after closing w. */
static int renew_evidence(pworker *w, const proto_bytes *ev) {
    const ratls_peer *peer = conn_peer(w->c);
    char why[300];
    if (!ev->len) return 0;
    if (node_ident_check_worker(&w->p->ident, peer->spki, peer->spki_len, peer->e2e_key, ev->data,
                                ev->len) != 0) {
        snprintf(why, sizeof why, "renewed evidence rejected: %.200s", err_msg());
        conn_close(w->c, PROTO_ERR_ATTESTATION, why);
        return -1;
    }
    buf_clear(&w->evidence);
    buf_append(&w->evidence, ev->data, ev->len);
    if (w->evidence.oom) buf_clear(&w->evidence); /* the hello's still serves until it ages */
    return 0;
}

/* Where w's fees go: the key it announced (else its attested TLS key's wallet). The worker
 * first gets the latest payout voucher the proxy signed it: a connection that broke, or a
 * proxy run that crashed, may have kept it from arriving. 0, or -1 after closing w. */
static int set_payout_key(pworker *w, const uint8_t key[32]) {
    static const uint8_t none[32];
    const ratls_peer *peer = conn_peer(w->c);
    uint8_t *boc = NULL;
    size_t len = 0;
    if (memcmp(key, none, 32) != 0) {
        memcpy(w->payout_key, key, 32);
    } else if (ratls_spki_ed25519(peer->spki, peer->spki_len, w->payout_key) != 0) {
        conn_close(w->c, PROTO_ERR_PROTOCOL, "no payout key and no Ed25519 TLS key");
        return -1;
    }
    proto_msg v = {.type = PROTO_VOUCHER, .stream = 0};
    if (payee_standing_payout(w->p->pay, w->payout_key, &boc, &len) != 0)
        log_warn("proxy: cannot hand a worker its standing payout voucher: %s", err_msg());
    v.voucher = (proto_bytes){boc, (uint32_t)len};
    if (boc && conn_send(w->c, &v) != 0) log_warn("proxy: cannot send a payout voucher: %s", err_msg());
    free(boc);
    return 0;
}

static void on_register(pworker *w, const proto_worker_register *r) {
    proxy *p = w->p;
    char hex[65];
    if (renew_evidence(w, &r->evidence) != 0) return;
    hex_encode(r->model_sha256, 32, hex);
    if (!hash_allowed(p, r->model_sha256)) {
        char why[300];
        snprintf(why, sizeof why, "model '%.128s' sha256 %s is not allowed", r->model, hex);
        conn_close(w->c, PROTO_ERR_MODEL_HASH, why);
        return;
    }
    if (w->registered && strcmp(w->model, r->model) != 0) tell_clients(p, w, false);
    if (!w->registered && p->pay && set_payout_key(w, r->payout_key) != 0) return;
    memcpy(w->model, r->model, sizeof w->model);
    memcpy(w->sha, r->model_sha256, 32);
    w->capacity = r->capacity;
    w->price = r->price;
    w->registered = true;
    log_info("proxy: worker %s serves '%s' (sha256 %s), capacity %u, price %u", conn_name(w->c),
             w->model, hex, (unsigned)w->capacity, (unsigned)w->price);
    tell_clients(p, w, w->capacity > 0);
}

static void w_msg(conn *c, const proto_msg *m, void *ud) {
    pworker *w = ud;
    relay *r;
    if (m->type == PROTO_WORKER_REGISTER) {
        on_register(w, &m->worker_register);
        return;
    }
    if (m->type == PROTO_LOAD_REPORT || m->stream == 0) return;
    if (!(r = worker_relay(w, m->stream))) return; /* answered a request we already dropped */
    switch (m->type) {
    case PROTO_CHUNK:
        if (r->chunks++ == 0) w->ewma_ttft += EWMA_ALPHA * (clock_now() - r->t_start - w->ewma_ttft);
        r->bytes += m->chunk.len;
        if (r->cl) {
            proto_msg out = *m;
            out.stream = r->cstream;
            conn_send(r->cl->c, &out);
        }
        break;
    case PROTO_FINAL:
        w->ok = w->ok * 0.99 + 1;
        w->failed *= 0.99;
        meter(r, w, &m->final);
        if (r->cl) {
            proto_msg out = *m;
            out.stream = r->cstream;
            conn_send(r->cl->c, &out);
        }
        relay_free(r);
        break;
    case PROTO_ERROR:
        log_info("proxy: worker error %u: %s", (unsigned)m->error.code, m->error.message);
        if (r->chunks == 0 && r->cl &&
            (m->error.code == PROTO_ERR_OVERLOADED || m->error.code == PROTO_ERR_WORKER_FAILED ||
             m->error.code == PROTO_ERR_INTERNAL)) {
            w->failed = w->failed * 0.99 + 1;
            fail_over(w->p, r, PROTO_ERR_WORKER_FAILED, "every worker failed before answering");
            return;
        }
        if (r->cl) send_error(r->cl->c, r->cstream, m->error.code, m->error.message);
        relay_free(r);
        break;
    default:
        break;
    }
    (void)c;
}

/* conn_listen hands each connection the listener's ud (the proxy); w_ready re-points it to
 * the pworker, so a connection that never got ready still carries the proxy. */
static void w_close(conn *c, const char *why, void *ud) {
    pworker *w = ud;
    proxy *p;
    (void)why;
    if (!conn_is_ready(c)) return;
    p = w->p;
    if (w->registered && w->capacity > 0) tell_clients(p, w, false);
    w->registered = false; /* route() must not pick it for the failovers below */
    while (w->relays) {
        relay *r = w->relays;
        if (r->chunks == 0) {
            fail_over(p, r, PROTO_ERR_WORKER_FAILED, "the worker failed before answering");
        } else {
            if (r->cl) send_error(r->cl->c, r->cstream, PROTO_ERR_STREAM_BROKEN,
                                  "the worker failed mid-answer; the answer is incomplete");
            relay_free(r);
        }
    }
    if (w->prev) w->prev->next = w->next; else p->workers = w->next;
    if (w->next) w->next->prev = w->prev;
    buf_free(&w->evidence);
    free(w);
}


/* ---- clients --------------------------------------------------------------------------- */

static void c_ready(conn *c, void *ud) {
    proxy *p = ud;
    pclient *cl = calloc(1, sizeof *cl);
    if (!cl) {
        conn_close(c, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    *cl = (pclient){.p = p, .c = c, .next = p->clients};
    if (p->clients) p->clients->prev = cl;
    p->clients = cl;
    conn_set_ud(c, cl);
    for (pworker *w = p->workers; w; w = w->next)
        if (w->registered && w->capacity > 0) tell_client(cl, w, true);
}

static void on_client_request(pclient *cl, const proto_msg *m) {
    const proto_request *q = &m->request;
    relay *r;
    if (client_relay(cl, m->stream)) {
        conn_close(cl->c, PROTO_ERR_PROTOCOL, "a request reused a live stream id");
        return;
    }
    if (!(r = calloc(1, sizeof *r)) || !(r->payload = malloc(q->payload.len))) {
        free(r);
        send_error(cl->c, m->stream, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    r->cstream = m->stream;
    memcpy(r->model, q->model, sizeof r->model);
    r->max_tokens = q->max_tokens;
    r->prompt_tokens = q->prompt_tokens;
    r->timeout_ms = q->timeout_ms;
    r->max_price = q->max_price;
    r->n_rec = q->n_recipients;
    for (int i = 0; i < q->n_recipients; i++) {
        memcpy(r->keys[i], q->recipients[i].worker_key, 32);
        memcpy(r->wrapped[i], q->recipients[i].wrapped_key.data, q->recipients[i].wrapped_key.len);
        r->wrapped_len[i] = (uint16_t)q->recipients[i].wrapped_key.len;
    }
    memcpy(r->payload, q->payload.data, q->payload.len);
    r->payload_len = q->payload.len;
    r->t_start = clock_now();
    r->cl = cl;
    r->cnext = cl->relays;
    if (cl->relays) cl->relays->cprev = r;
    cl->relays = r;
    log_info("proxy: request model=%s sealed_bytes=%u max_tokens=%u recipients=%u", r->model,
             (unsigned)r->payload_len, (unsigned)r->max_tokens, (unsigned)r->n_rec);
    dispatch(cl->p, r, PROTO_ERR_NO_WORKER,
             "no worker with free capacity serves this model within the price");
}

static void c_msg(conn *c, const proto_msg *m, void *ud) {
    pclient *cl = ud;
    relay *r;
    (void)c;
    if (m->type == PROTO_REQUEST) {
        on_client_request(cl, m);
    } else if (m->type == PROTO_CANCEL && (r = client_relay(cl, m->stream))) {
        proto_msg out = {.type = PROTO_CANCEL, .stream = r->wstream};
        if (r->wk) conn_send(r->wk->c, &out);
    } else if (m->type == PROTO_VOUCHER) {
        if (!cl->p->pay) log_warn("proxy: a client sent a voucher but payments are off");
        else if (payee_voucher(cl->p->pay, &cl->acct, m->voucher.data, m->voucher.len) != 0)
            log_warn("proxy: refused a client's voucher: %s", err_msg());
        else
            log_info("proxy: charge voucher kept, total %llu", (unsigned long long)cl->acct.in.last);
    }
}

/* Redeems a client's latest voucher (batched: on a timer and when the client leaves). */
static void redeem(pclient *cl) {
    if (cl->p->pay && payee_redeem(cl->p->pay, &cl->acct) != 0)
        log_warn("proxy: cannot redeem a client's voucher (kept for the next try): %s", err_msg());
}

/* A payout voucher the timer made (an owed total now paid, a closed channel replaced) goes to
 * every connection of the workers paid at that key. */
static void send_payout(void *ctx, const uint8_t key[32], const uint8_t *boc, size_t len) {
    proto_msg v = {.type = PROTO_VOUCHER, .stream = 0, .voucher = {boc, (uint32_t)len}};
    for (pworker *w = ((proxy *)ctx)->workers; w; w = w->next)
        if (w->registered && memcmp(w->payout_key, key, 32) == 0 && conn_send(w->c, &v) != 0)
            log_warn("proxy: cannot send a payout voucher: %s", err_msg());
}

static void on_redeem_timer(evutil_socket_t fd, short what, void *arg) {
    proxy *p = arg;
    (void)fd;
    (void)what;
    for (pclient *cl = p->clients; cl; cl = cl->next) redeem(cl);
    payee_payouts_tick(p->pay, send_payout, p);
}

static void c_close(conn *c, const char *why, void *ud) {
    pclient *cl = ud;
    proxy *p;
    (void)why;
    if (!conn_is_ready(c)) return;
    p = cl->p;
    /* tell the workers to stop; each relay waits on its worker's list for the answer */
    while (cl->relays) {
        relay *r = cl->relays;
        proto_msg out = {.type = PROTO_CANCEL, .stream = r->wstream};
        if (r->wk) conn_send(r->wk->c, &out);
        relay_unlink_client(r);
        if (!r->wk) relay_free(r);
    }
    if (cl->prev) cl->prev->next = cl->next; else p->clients = cl->next;
    if (cl->next) cl->next->prev = cl->prev;
    redeem(cl);
    payee_account_free(&cl->acct);
    free(cl);
}

/* ---- running --------------------------------------------------------------------------- */

static void dump_frame(const conn *c, bool out, const uint8_t *bytes, size_t len, void *ud) {
    (void)c;
    (void)out;
    fwrite(bytes, 1, len, (FILE *)ud);
    fflush((FILE *)ud);
}

static int add_hash(void *ctx, const uint8_t v[32]) {
    proxy *p = ctx;
    if (p->n_hashes == MAX_HASHES) return err_set("more than %d allowed model hashes", MAX_HASHES);
    memcpy(p->hashes[p->n_hashes++], v, 32);
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    proxy *p = arg;
    (void)what;
    fprintf(stderr, "veil proxy: %s, closing\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    event_base_loopbreak(p->base);
}

int proxy_run(const proxy_config *cfg) {
    static const conn_handlers wh = {w_ready, w_msg, w_close}, ch = {c_ready, c_msg, c_close};
    proxy p = {.cfg = cfg};
    int rc = -1;
    signal(SIGPIPE, SIG_IGN);
    if (cfg->allow_models &&
        (!(p.hashes = malloc(MAX_HASHES * sizeof *p.hashes)) ||
         hexfile_read(cfg->allow_models, add_hash, &p) != 0))
        goto done;
    if (cfg->dump_frames) {
        if (!(p.dump = fopen(cfg->dump_frames, "ab"))) {
            err_errno("cannot open %s", cfg->dump_frames);
            goto done;
        }
        conn_set_tap(dump_frame, p.dump);
    }
    if (node_ident_init(&p.ident, PROTO_ROLE_PROXY, &cfg->attest) != 0 || !(p.base = loop_new()))
        goto done;
    if (cfg->chain_url) {
        struct timeval every = {(time_t)cfg->redeem_every_s, 0};
        if (!(p.pay = payee_open(cfg->chain_url, cfg->wallet, cfg->accounts))) goto done;
        if (!(p.redeem_timer = event_new(p.base, -1, EV_PERSIST, on_redeem_timer, &p)) ||
            event_add(p.redeem_timer, &every) != 0) {
            err_set("cannot set up the redeem timer");
            goto done;
        }
    }
    p.sigterm = evsignal_new(p.base, SIGTERM, on_signal, &p);
    p.sigint = evsignal_new(p.base, SIGINT, on_signal, &p);
    if (!p.sigterm || !p.sigint || event_add(p.sigterm, NULL) || event_add(p.sigint, NULL) ||
        node_ident_start_renewal(&p.ident, p.base, NULL, NULL) != 0) {
        err_set("cannot set up the event loop");
        goto done;
    }
    if (!(p.wl = conn_listen(p.base, &p.ident.as_server, cfg->workers_host, cfg->workers_port,
                             PROTO_ROLE_WORKER, &wh, &p)) ||
        !(p.cl = conn_listen(p.base, &p.ident.as_server, cfg->clients_host, cfg->clients_port,
                             PROTO_ROLE_CLIENT, &ch, &p)))
        goto done;
    printf("ready: workers %s:%u clients %s:%u\n", cfg->workers_host,
           (unsigned)conn_listener_port(p.wl), cfg->clients_host, (unsigned)conn_listener_port(p.cl));
    fflush(stdout);
    if (event_base_dispatch(p.base) < 0) {
        err_set("the event loop failed");
        goto done;
    }
    rc = 0;
done:
    conn_listener_free(p.wl);
    conn_listener_free(p.cl);
    while (p.clients) conn_close(p.clients->c, PROTO_ERR_SHUTDOWN, "proxy shutting down");
    while (p.workers) conn_close(p.workers->c, PROTO_ERR_SHUTDOWN, "proxy shutting down");
    if (p.sigterm) event_free(p.sigterm);
    if (p.sigint) event_free(p.sigint);
    if (p.redeem_timer) event_free(p.redeem_timer);
    node_ident_stop_renewal(&p.ident);
    if (p.base) {
        /* let closing connections flush and free themselves (returns early once they have) */
        struct timeval tv = {1, 500000};
        event_base_loopexit(p.base, &tv);
        event_base_dispatch(p.base);
        event_base_free(p.base);
    }
    if (p.dump) {
        conn_set_tap(NULL, NULL);
        fclose(p.dump);
    }
    node_ident_free(&p.ident);
    payee_free(p.pay);
    free(p.hashes);
    return rc;
}
