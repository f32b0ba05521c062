/* The ledger node's HTTP JSON API; see chain_server.h. One thread: the event loop owns the
 * ledger, so transactions apply in the order they are read, and the commit event (activated
 * by the first transaction of a block) runs after the other events of that loop pass. */
#include "api/chain_server.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>

#include "api/oai_error.h"
#include "api/oai_response.h"
#include "base/err.h"
#include "base/hex.h"
#include "base/log.h"
#include "ledger/boc.h"

#define MAX_BODY (256 * 1024) /* a transaction is a few hundred bytes */

typedef struct waiter {
    struct evhttp_request *req;
    ledger_ack ack;
} waiter;

struct chain_server {
    ledger *l;
    struct event_base *base;
    struct evhttp *http;
    struct event *commit_ev, *sigterm, *sigint;
    uint16_t port;
    waiter *waiting;
    size_t nwait, capwait;
};

static void reply_json(struct evhttp_request *req, int status, json_t *j) {
    struct evbuffer *out = evbuffer_new();
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!out || !text) {
        free(text);
        if (out) evbuffer_free(out);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add(out, text, strlen(text));
    evbuffer_add(out, "\n", 1);
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", out);
    evbuffer_free(out);
}

static void reply_error(struct evhttp_request *req, int status, const char *code, const char *param,
                        const char *msg) {
    oai_error e;
    oai_error_set(&e, status, status >= 500 ? "server_error" : "invalid_request_error", param, "%s", msg);
    snprintf(e.code, sizeof e.code, "%s", code);
    char *text = oai_error_json(&e);
    struct evbuffer *out = evbuffer_new();
    if (text && out) {
        evbuffer_add(out, text, strlen(text));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
        evhttp_send_reply(req, status, "Error", out);
    } else {
        evhttp_send_error(req, 500, "out of memory");
    }
    free(text);
    if (out) evbuffer_free(out);
}

static json_t *amount_json(uint64_t v) {
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, v);
    return json_string(s);
}

static json_t *hex_json(const uint8_t *b, size_t n) {
    char s[129];
    hex_encode(b, n, s);
    return json_string(s);
}

static json_t *addr_json(const ton_addr *a) {
    char raw[ADDR_RAW_LEN];
    addr_to_raw(a, raw);
    return json_string(raw);
}

static json_t *ack_json(const ledger_ack *a) {
    return json_pack("{s:o,s:I,s:I}", "hash", hex_json(a->hash, 32), "height", (json_int_t)a->height, "index",
                     (json_int_t)a->index);
}

/* ---- POST /v1/tx ---- */

static int status_http(int rc, const char **code) {
    *code = state_status_name(rc);
    switch (rc) {
    case STATE_MALFORMED: return 400;
    case STATE_BAD_SIGNATURE: return 401;
    case STATE_FORBIDDEN: return 403;
    case STATE_NO_MEMORY: return 503;
    default: return 409;
    }
}

/* The body's transaction cell, or NULL with a reply sent. */
static cell *read_tx(struct evhttp_request *req) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_error_t jerr;
    uint8_t *boc = NULL;
    cell *c = NULL;
    json_t *j = NULL;
    char msg[600];
    if (len > MAX_BODY) {
        reply_error(req, 413, "too_large", NULL, "the body is larger than 256 KiB");
        return NULL;
    }
    j = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &jerr);
    if (!j) {
        snprintf(msg, sizeof msg, "the body is not JSON: %s at line %d column %d", jerr.text, jerr.line, jerr.column);
        reply_error(req, 400, "bad_json", NULL, msg);
        goto done;
    }
    json_t *hexv = json_object_get(j, "boc");
    const char *hex = json_string_value(hexv);
    size_t n = hex ? strlen(hex) : 0;
    if (!hex || n == 0 || n % 2 || n / 2 > MAX_BODY) {
        reply_error(req, 400, "bad_boc", "boc", "'boc' must be the transaction's BOC as a non-empty even-length hex string");
        goto done;
    }
    if (!(boc = malloc(n / 2)) || hex_decode(hex, boc, n / 2, "boc")) {
        reply_error(req, 400, "bad_boc", "boc", boc ? err_msg() : "out of memory");
        goto done;
    }
    if (!(c = boc_parse(boc, n / 2))) {
        snprintf(msg, sizeof msg, "boc: %s", err_msg());
        reply_error(req, 400, "bad_boc", "boc", msg);
    }
done:
    free(boc);
    json_decref(j);
    return c;
}

static void on_tx(chain_server *s, struct evhttp_request *req) {
    ledger_ack ack;
    const char *code;
    cell *c = read_tx(req);
    if (!c) return;
    if (s->nwait == s->capwait) {
        size_t want = s->capwait ? s->capwait * 2 : 256;
        waiter *w = realloc(s->waiting, want * sizeof *w);
        if (!w) {
            reply_error(req, 503, "no_memory", NULL, "out of memory");
            cell_unref(c);
            return;
        }
        s->waiting = w;
        s->capwait = want;
    }
    int rc = ledger_submit(s->l, c, (uint64_t)time(NULL), &ack);
    cell_unref(c);
    if (rc != STATE_OK) {
        int http = status_http(rc, &code);
        reply_error(req, http, code, "boc", err_msg());
        return;
    }
    s->waiting[s->nwait++] = (waiter){req, ack};
    if (s->nwait == 1) event_active(s->commit_ev, 0, 0);
}

/* Commits the pending block and answers every transaction in it. */
static void on_commit(evutil_socket_t fd, short what, void *arg) {
    chain_server *s = arg;
    (void)fd;
    (void)what;
    if (ledger_commit(s->l) == 0) {
        for (size_t i = 0; i < s->nwait; i++) reply_json(s->waiting[i].req, 200, ack_json(&s->waiting[i].ack));
    } else {
        log_error("ledger commit failed: %s", err_msg());
        for (size_t i = 0; i < s->nwait; i++)
            reply_error(s->waiting[i].req, 503, "store_failed", NULL, "the block could not be written; resubmit");
    }
    s->nwait = 0;
}

/* ---- queries ---- */

static json_t *channel_json(const channel *c) {
    return json_pack("{s:o,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:I}", "address", addr_json(&c->addr), "kind",
                     channel_kind_name(c->kind), "status", channel_status_name(c->status), "payer",
                     addr_json(&c->payer), "payee", addr_json(&c->payee), "payer_key", hex_json(c->payer_key, 32),
                     "nonce", amount_json(c->nonce), "deposit", amount_json(c->deposit), "stake", amount_json(c->stake), "paid",
                     amount_json(c->paid), "held", amount_json(channel_held(c)), "close_delay",
                     (json_int_t)c->close_delay, "close_at", (json_int_t)c->close_at);
}

static json_t *registry_json(const registry *r) {
    const registry_params *p = &r->params;
    json_t *lists = json_object();
    for (int l = 1; l <= REGISTRY_NLISTS; l++) {
        json_t *arr = json_array();
        for (size_t i = 0; i < r->counts[l - 1]; i++) {
            const registry_entry *e = &r->lists[l - 1][i];
            if (l == REGISTRY_PROXY)
                json_array_append_new(arr, json_pack("{s:o,s:o,s:s}", "key", hex_json(e->key, 32), "address",
                                                     addr_json(&e->addr), "endpoint", e->endpoint));
            else json_array_append_new(arr, hex_json(e->key, 32));
        }
        json_object_set_new(lists, registry_list_name((registry_list)l), arr);
    }
    json_t *params = json_pack("{s:o,s:o,s:I,s:I,s:I,s:o,s:o,s:I,s:I}", "price_per_token",
                               amount_json(p->price_per_token), "worker_fee_per_token",
                               amount_json(p->worker_fee_per_token), "mult_prompt", (json_int_t)p->mult_prompt,
                               "mult_cached", (json_int_t)p->mult_cached, "mult_completion",
                               (json_int_t)p->mult_completion, "min_client_stake", amount_json(p->min_client_stake),
                               "min_proxy_stake", amount_json(p->min_proxy_stake), "client_close_delay",
                               (json_int_t)p->client_close_delay, "proxy_close_delay",
                               (json_int_t)p->proxy_close_delay);
    return json_pack("{s:o,s:o,s:o}", "owner", hex_json(r->owner, 32), "params", params, "lists", lists);
}

static void on_get(chain_server *s, struct evhttp_request *req, const char *path) {
    const state *st = ledger_state(s->l);
    ton_addr a;
    char msg[600];
    if (strncmp(path, "/v1/account/", 12) == 0 || strncmp(path, "/v1/channel/", 12) == 0) {
        char *arg = evhttp_decode_uri(path + 12);
        int bad = !arg || addr_parse(arg, &a, NULL);
        free(arg);
        if (bad) {
            snprintf(msg, sizeof msg, "address: %s", err_msg());
            reply_error(req, 400, "bad_address", "address", msg);
            return;
        }
        if (path[4] == 'a') {
            account acc = state_account(st, &a);
            char text[ADDR_TEXT_LEN];
            addr_to_text(&a, 0, text);
            reply_json(req, 200, json_pack("{s:s,s:o,s:o,s:I}", "address", text, "raw", addr_json(&a), "balance",
                                           amount_json(acc.balance), "seqno", (json_int_t)acc.seqno));
            return;
        }
        const channel *c = state_channel(st, &a);
        if (!c) reply_error(req, 404, "no_channel", "address", "no such channel");
        else reply_json(req, 200, channel_json(c));
    } else if (strncmp(path, "/v1/tx/", 7) == 0) {
        uint8_t h[32];
        uint64_t height;
        uint32_t idx;
        if (strlen(path + 7) != 64 || hex_decode(path + 7, h, 32, "transaction hash")) {
            reply_error(req, 400, "bad_hash", "hash", "a transaction hash is 64 hex digits");
            return;
        }
        int found = store_find_tx(ledger_store(s->l), h, &height, &idx);
        if (found < 0) reply_error(req, 503, "store_failed", NULL, err_msg());
        else if (!found) reply_error(req, 404, "no_tx", "hash", "no committed transaction with this hash");
        else {
            ledger_ack a = {.height = height, .index = idx};
            memcpy(a.hash, h, 32);
            reply_json(req, 200, ack_json(&a));
        }
    } else if (strcmp(path, "/v1/registry") == 0) {
        reply_json(req, 200, registry_json(state_registry(st)));
    } else if (strcmp(path, "/v1/status") == 0 || strcmp(path, "/health") == 0) {
        block_header t = ledger_tip(s->l);
        reply_json(req, 200, json_pack("{s:I,s:I,s:o,s:I,s:o,s:I,s:I}", "height", (json_int_t)t.height, "time",
                                       (json_int_t)t.time, "hash", hex_json(t.hash, 32), "pending",
                                       (json_int_t)ledger_pending(s->l), "supply", amount_json(state_supply(st)),
                                       "accounts", (json_int_t)state_naccounts(st), "channels",
                                       (json_int_t)state_nchannels(st)));
    } else {
        reply_error(req, 404, "not_found", NULL, "no such endpoint (see docs/PAYMENTS.md, Node API)");
    }
}

static void on_request(struct evhttp_request *req, void *arg) {
    chain_server *s = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evhttp_uri *u = evhttp_uri_parse(uri);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (!path) reply_error(req, 400, "bad_uri", NULL, "the request URI does not parse");
    else if (strcmp(path, "/v1/tx") == 0 && m == EVHTTP_REQ_POST) on_tx(s, req);
    else if (m == EVHTTP_REQ_GET) on_get(s, req, path);
    else reply_error(req, 405, "bad_method", NULL, "POST /v1/tx, GET for everything else");
    if (u) evhttp_uri_free(u);
}

static void on_signal(evutil_socket_t fd, short what, void *arg) {
    chain_server *s = arg;
    (void)fd;
    (void)what;
    on_commit(-1, 0, s);
    event_base_loopbreak(s->base);
}

chain_server *chain_server_new(ledger *l, const char *host, uint16_t port) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    chain_server *s = calloc(1, sizeof *s);
    if (!s) {
        err_set("chain server: out of memory");
        return NULL;
    }
    s->l = l;
    s->base = event_base_new();
    s->http = s->base ? evhttp_new(s->base) : NULL;
    if (!s->http) goto loop_fail;
    s->commit_ev = event_new(s->base, -1, 0, on_commit, s);
    s->sigterm = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sigint = evsignal_new(s->base, SIGINT, on_signal, s);
    if (!s->commit_ev || !s->sigterm || !s->sigint || event_add(s->sigterm, NULL) || event_add(s->sigint, NULL))
        goto loop_fail;
    evhttp_set_gencb(s->http, on_request, s);
    evhttp_set_max_body_size(s->http, MAX_BODY + 1);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    struct evhttp_bound_socket *b = evhttp_bind_socket_with_handle(s->http, host, port);
    if (!b) {
        err_errno("cannot listen on %s:%u", host, (unsigned)port);
        goto fail;
    }
    if (getsockname(evhttp_bound_socket_get_fd(b), (struct sockaddr *)&ss, &sl) != 0) {
        err_errno("getsockname");
        goto fail;
    }
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return s;
loop_fail:
    err_set("chain server: cannot set up the event loop");
fail:
    chain_server_free(s);
    return NULL;
}

uint16_t chain_server_port(const chain_server *s) { return s->port; }

int chain_server_run(chain_server *s) {
    if (event_base_dispatch(s->base) < 0) return err_set("the event loop failed");
    return 0;
}

void chain_server_free(chain_server *s) {
    if (!s) return;
    if (s->http) evhttp_free(s->http);
    if (s->commit_ev) event_free(s->commit_ev);
    if (s->sigterm) event_free(s->sigterm);
    if (s->sigint) event_free(s->sigint);
    if (s->base) event_base_free(s->base);
    free(s->waiting);
    free(s);
}
