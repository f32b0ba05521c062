/* chain.h over HTTP; see chain_client.h. A node's error body carries the state_status name as
 * its code, which maps back to the same status here, so callers see the same results from a
 * node as from a local ledger. */
#include "api/chain_client.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/hex.h"
#include "ledger/boc.h"

#define MAX_REPLY (4 << 20)

typedef struct chain_client {
    chain base;
    char host[256], port[8];
} chain_client;

static int dial(chain_client *c) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int fd = -1, rc = getaddrinfo(c->host, c->port, &hints, &res);
    if (rc) return err_set("ledger node %s:%s: %s", c->host, c->port, gai_strerror(rc));
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen)) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) return err_errno("ledger node %s:%s: connecting", c->host, c->port);
    return fd;
}

/* One request; *status and the JSON body (caller decrefs). -1 with err_msg() on transport or
 * a body that is not JSON. */
static int http_call(chain_client *c, const char *method, const char *path, const char *body, int *status,
                     json_t **out) {
    buf req = {0}, reply = {0};
    char chunk[8192];
    int fd = dial(c), rc = -1;
    if (fd < 0) return -1;
    buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n", method, path, c->host, c->port);
    if (body) buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", strlen(body));
    buf_puts(&req, "\r\n");
    if (body) buf_puts(&req, body);
    if (buf_failed(&req)) goto done;
    for (size_t off = 0; off < req.len;) {
        ssize_t n = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            err_errno("ledger node: sending");
            goto done;
        }
        off += (size_t)n;
    }
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            err_errno("ledger node: reading");
            goto done;
        }
        if (n == 0) break;
        buf_append(&reply, chunk, (size_t)n);
        if (reply.len > MAX_REPLY) {
            err_set("ledger node: reply larger than %d bytes", MAX_REPLY);
            goto done;
        }
    }
    if (buf_failed(&reply)) goto done;
    const char *sep = reply.data ? strstr(reply.data, "\r\n\r\n") : NULL;
    if (!sep || sscanf(reply.data, "HTTP/1.%*d %d", status) != 1) {
        err_set("ledger node %s:%s: not an HTTP reply", c->host, c->port);
        goto done;
    }
    json_error_t jerr;
    if (!(*out = json_loads(sep + 4, 0, &jerr))) {
        err_set("ledger node: reply %d is not JSON (%s)", *status, jerr.text);
        goto done;
    }
    rc = 0;
done:
    close(fd);
    buf_free(&req);
    buf_free(&reply);
    return rc;
}

/* A node's error body -> (state_status, err_msg()). */
static int node_error(int status, json_t *j) {
    json_t *e = json_object_get(j, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *code = json_string_value(json_object_get(e, "code"));
    err_set("ledger node: %s", msg ? msg : "error without a message");
    for (int s = STATE_MALFORMED; s >= STATE_NO_MEMORY; s--)
        if (code && strcmp(code, state_status_name(s)) == 0) return s;
    return status == 404 ? STATE_REJECTED : status >= 500 ? STATE_NO_MEMORY : STATE_MALFORMED;
}

/* GET path into *out on 200; else the error's status. *missing (may be NULL) for a 404. */
static int get_json(chain *ch, const char *path, json_t **out, bool *missing) {
    int status;
    if (http_call((chain_client *)ch, "GET", path, NULL, &status, out)) return STATE_NO_MEMORY;
    if (status == 200) return STATE_OK;
    if (missing && status == 404) {
        *missing = true;
        json_decref(*out);
        return STATE_OK;
    }
    int rc = node_error(status, *out);
    json_decref(*out);
    return rc;
}

static int get_u64(json_t *j, const char *key, uint64_t *out) {
    json_t *v = json_object_get(j, key);
    char *end;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || !*s || *s == '-') return err_set("ledger node: field '%s' is missing or not a count", key);
    errno = 0;
    *out = strtoull(s, &end, 10);
    return *end || errno ? err_set("ledger node: field '%s' = '%s' is not an amount", key, s) : 0;
}

static int get_hex(json_t *j, const char *key, uint8_t *out, size_t n) {
    const char *s = json_string_value(json_object_get(j, key));
    return s ? hex_decode(s, out, n, key) : err_set("ledger node: field '%s' is missing", key);
}

static int client_submit(chain *ch, const cell *signed_tx, chain_ack *ack) {
    uint8_t *boc = NULL;
    size_t len;
    char *hex = NULL, *body = NULL;
    json_t *reply = NULL;
    int status, rc = STATE_NO_MEMORY;
    if (boc_serialize(signed_tx, 0, &boc, &len) || !(hex = malloc(2 * len + 1))) goto done;
    hex_encode(boc, len, hex);
    json_t *req = json_pack("{s:s}", "boc", hex);
    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body || http_call((chain_client *)ch, "POST", "/v1/tx", body, &status, &reply)) goto done;
    if (status != 200) {
        rc = node_error(status, reply);
        goto done;
    }
    uint64_t height, index;
    if (get_hex(reply, "hash", ack->hash, 32) || get_u64(reply, "height", &height) ||
        get_u64(reply, "index", &index))
        goto done;
    ack->height = height;
    ack->index = (uint32_t)index;
    rc = STATE_OK;
done:
    free(boc);
    free(hex);
    free(body);
    json_decref(reply);
    return rc;
}

static int client_account(chain *ch, const ton_addr *a, account *out) {
    char path[128], raw[ADDR_RAW_LEN];
    json_t *j;
    addr_to_raw(a, raw);
    snprintf(path, sizeof path, "/v1/account/%s", raw);
    int rc = get_json(ch, path, &j, NULL);
    if (rc) return rc;
    out->addr = *a;
    rc = get_u64(j, "balance", &out->balance) || get_u64(j, "seqno", &out->seqno) ? STATE_MALFORMED : STATE_OK;
    json_decref(j);
    return rc;
}

static int parse_channel(json_t *j, channel *c) {
    uint64_t delay;
    const char *kind = json_string_value(json_object_get(j, "kind"));
    const char *status = json_string_value(json_object_get(j, "status"));
    const char *payer = json_string_value(json_object_get(j, "payer"));
    const char *payee = json_string_value(json_object_get(j, "payee"));
    const char *addr = json_string_value(json_object_get(j, "address"));
    if (!kind || !status || !payer || !payee || !addr || addr_parse(addr, &c->addr, NULL) ||
        addr_parse(payer, &c->payer, NULL) || addr_parse(payee, &c->payee, NULL) ||
        get_hex(j, "payer_key", c->payer_key, 32) || get_u64(j, "nonce", &c->nonce) ||
        get_u64(j, "deposit", &c->deposit) || get_u64(j, "stake", &c->stake) || get_u64(j, "paid", &c->paid) ||
        get_u64(j, "close_delay", &delay) || get_u64(j, "close_at", &c->close_at))
        return err_prefix("ledger node: channel");
    c->kind = strcmp(kind, "charge") == 0 ? CHANNEL_CHARGE : CHANNEL_PAYOUT;
    c->close_delay = (uint32_t)delay;
    for (int s = CHANNEL_OPEN; s <= CHANNEL_WITHDRAWN; s++)
        if (strcmp(status, channel_status_name(s)) == 0) c->status = (uint8_t)s;
    return 0;
}

static int client_channel(chain *ch, const ton_addr *a, channel *out, bool *found) {
    char path[128], raw[ADDR_RAW_LEN];
    json_t *j;
    bool missing = false;
    addr_to_raw(a, raw);
    snprintf(path, sizeof path, "/v1/channel/%s", raw);
    int rc = get_json(ch, path, &j, &missing);
    if (rc) return rc;
    *found = !missing;
    if (missing) return STATE_OK;
    rc = parse_channel(j, out) ? STATE_MALFORMED : STATE_OK;
    json_decref(j);
    return rc;
}

static int parse_registry(json_t *j, registry *r) {
    json_t *p = json_object_get(j, "params"), *lists = json_object_get(j, "lists");
    uint64_t v[5];
    uint8_t owner[32];
    if (get_hex(j, "owner", owner, 32)) return -1;
    registry_init(r, owner);
    registry_params *q = &r->params;
    if (get_u64(p, "price_per_token", &q->price_per_token) ||
        get_u64(p, "worker_fee_per_token", &q->worker_fee_per_token) || get_u64(p, "mult_prompt", &v[0]) ||
        get_u64(p, "mult_cached", &v[1]) || get_u64(p, "mult_completion", &v[2]) ||
        get_u64(p, "min_client_stake", &q->min_client_stake) || get_u64(p, "min_proxy_stake", &q->min_proxy_stake) ||
        get_u64(p, "client_close_delay", &v[3]) || get_u64(p, "proxy_close_delay", &v[4]))
        return -1;
    q->mult_prompt = (uint32_t)v[0];
    q->mult_cached = (uint32_t)v[1];
    q->mult_completion = (uint32_t)v[2];
    q->client_close_delay = (uint32_t)v[3];
    q->proxy_close_delay = (uint32_t)v[4];
    for (int l = 1; l <= REGISTRY_NLISTS; l++) {
        json_t *arr = json_object_get(lists, registry_list_name((registry_list)l)), *e;
        size_t i;
        json_array_foreach(arr, i, e) {
            uint8_t key[32];
            json_t *k = l == REGISTRY_PROXY ? json_object_get(e, "key") : e;
            const char *ks = json_string_value(k);
            const char *ep = l == REGISTRY_PROXY ? json_string_value(json_object_get(e, "endpoint")) : NULL;
            if (!ks || hex_decode(ks, key, 32, "registry key") || registry_set(r, (registry_list)l, key, ep)) {
                registry_free(r);
                return -1;
            }
        }
    }
    return 0;
}

static int client_registry(chain *ch, registry *out) {
    json_t *j;
    int rc = get_json(ch, "/v1/registry", &j, NULL);
    if (rc) return rc;
    rc = parse_registry(j, out) ? STATE_MALFORMED : STATE_OK;
    json_decref(j);
    return rc;
}

static int client_tip(chain *ch, chain_tip *out) {
    json_t *j;
    int rc = get_json(ch, "/v1/status", &j, NULL);
    if (rc) return rc;
    rc = get_u64(j, "height", &out->height) || get_u64(j, "time", &out->time) || get_hex(j, "hash", out->hash, 32)
             ? STATE_MALFORMED : STATE_OK;
    json_decref(j);
    return rc;
}

static int client_find_tx(chain *ch, const uint8_t hash[32], chain_ack *out, bool *found) {
    char path[96], h[65];
    json_t *j;
    bool missing = false;
    uint64_t height = 0, index = 0;
    hex_encode(hash, 32, h);
    snprintf(path, sizeof path, "/v1/tx/%s", h);
    int rc = get_json(ch, path, &j, &missing);
    if (rc) return rc;
    *found = !missing;
    if (missing) return STATE_OK;
    rc = get_u64(j, "height", &height) || get_u64(j, "index", &index) ? STATE_MALFORMED : STATE_OK;
    out->height = height;
    out->index = (uint32_t)index;
    memcpy(out->hash, hash, 32);
    json_decref(j);
    return rc;
}

static void client_close(chain *ch) { free(ch); }

static const chain_backend client_backend = {"http", client_submit, client_account, client_channel,
                                             client_registry, client_tip, client_find_tx, client_close};

chain *chain_client_open(const char *url) {
    const char *p = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    const char *colon = p ? strrchr(p, ':') : NULL;
    chain_client *c = NULL;
    if (!colon || colon == p || strlen(colon + 1) == 0 || strlen(colon + 1) > 5 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || (size_t)(colon - p) >= sizeof c->host) {
        err_set("ledger node URL '%s': expected http://HOST:PORT", url);
        return NULL;
    }
    if (!(c = calloc(1, sizeof *c))) {
        err_set("out of memory");
        return NULL;
    }
    c->base.be = &client_backend;
    const char *h = p, *h_end = colon;
    if (*h == '[' && h_end[-1] == ']') h++, h_end--;
    memcpy(c->host, h, (size_t)(h_end - h));
    snprintf(c->port, sizeof c->port, "%s", colon + 1);
    return &c->base;
}
