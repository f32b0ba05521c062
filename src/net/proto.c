/* Protocol message coding; see proto.h and docs/PROTOCOL.md. Integers are big-endian. Each
 * message has one writer and one reader; the encoder checks what it wrote by reading it back,
 * so the rules live in one place (the readers). */
#include "net/proto.h"

#include "base/err.h"
#include "base/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
    [PROTO_HELLO] = "hello",   [PROTO_WORKER_REGISTER] = "worker_register",
    [PROTO_LOAD_REPORT] = "load_report", [PROTO_WORKER_INFO] = "worker_info",
    [PROTO_REQUEST] = "request", [PROTO_CHUNK] = "chunk",
    [PROTO_FINAL] = "final",   [PROTO_ERROR] = "error",
    [PROTO_CANCEL] = "cancel", [PROTO_VOUCHER] = "voucher",
    [PROTO_PING] = "ping",     [PROTO_PONG] = "pong",
};

const char *proto_type_name(int type) {
    return type > 0 && type <= PROTO_TYPE_LAST ? type_names[type] : "unknown";
}

const char *proto_role_name(int role) {
    switch (role) {
    case PROTO_ROLE_WORKER: return "worker";
    case PROTO_ROLE_PROXY: return "proxy";
    case PROTO_ROLE_CLIENT: return "client";
    case PROTO_ROLE_LEDGER: return "ledger";
    }
    return "unknown";
}

bool proto_may_send(int role, int type) {
    switch (type) {
    case PROTO_HELLO:
    case PROTO_ERROR:
    case PROTO_PING:
    case PROTO_PONG: return role >= PROTO_ROLE_WORKER && role <= PROTO_ROLE_LEDGER;
    case PROTO_WORKER_REGISTER:
    case PROTO_LOAD_REPORT: return role == PROTO_ROLE_WORKER;
    case PROTO_WORKER_INFO: return role == PROTO_ROLE_PROXY;
    case PROTO_REQUEST:
    case PROTO_CANCEL: return role == PROTO_ROLE_CLIENT || role == PROTO_ROLE_PROXY;
    case PROTO_CHUNK:
    case PROTO_FINAL: return role == PROTO_ROLE_WORKER || role == PROTO_ROLE_PROXY;
    case PROTO_VOUCHER: return role == PROTO_ROLE_CLIENT || role == PROTO_ROLE_PROXY;
    }
    return false;
}

/* ---- reading ---- */

typedef struct reader {
    const uint8_t *p;
    size_t len, pos;
    const frame *f;
    int failed;
} reader;

/* Records the first failure with the message type and the field's payload offset. */
static void rd_fail(reader *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rd_fail(reader *r, const char *field, const char *fmt, ...) {
    char what[256];
    va_list ap;
    if (r->failed) return;
    r->failed = 1;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    err_set("%s message (stream %u): %s at payload offset %zu: %s", proto_type_name(r->f->type),
            r->f->stream, field, r->pos, what);
}

static const uint8_t *rd_take(reader *r, const char *field, size_t n) {
    const uint8_t *p;
    if (r->failed) return NULL;
    if (r->len - r->pos < n) {
        rd_fail(r, field, "needs %zu bytes, %zu left", n, r->len - r->pos);
        return NULL;
    }
    p = r->p + r->pos;
    r->pos += n;
    return p;
}

static uint64_t rd_uint(reader *r, const char *field, int bytes) {
    const uint8_t *p = rd_take(r, field, (size_t)bytes);
    uint64_t v = 0;
    if (!p) return 0;
    for (int i = 0; i < bytes; i++) v = v << 8 | p[i];
    return v;
}

static uint8_t rd_u8(reader *r, const char *f) { return (uint8_t)rd_uint(r, f, 1); }
static uint16_t rd_u16(reader *r, const char *f) { return (uint16_t)rd_uint(r, f, 2); }
static uint32_t rd_u32(reader *r, const char *f) { return (uint32_t)rd_uint(r, f, 4); }

static void rd_fixed(reader *r, const char *field, uint8_t *out, size_t n) {
    const uint8_t *p = rd_take(r, field, n);
    if (p) memcpy(out, p, n);
}

/* A blob with a len_bytes-wide length prefix, min..max bytes long. */
static proto_bytes rd_blob(reader *r, const char *field, int len_bytes, uint32_t min,
                           uint32_t max) {
    proto_bytes b = {NULL, 0};
    size_t start = r->pos;
    uint32_t n = (uint32_t)rd_uint(r, field, len_bytes);
    if (r->failed) return b;
    if (n < min || n > max) {
        r->pos = start;
        rd_fail(r, field, "length %u outside %u..%u", n, min, max);
        return b;
    }
    b.data = n ? rd_take(r, field, n) : NULL;
    b.len = r->failed ? 0 : n;
    return b;
}

/* Model names are printable ASCII without spaces: safe in logs, URLs and file names. */
static void rd_model(reader *r, char out[PROTO_MODEL_MAX + 1]) {
    proto_bytes b = rd_blob(r, "model", 1, 1, PROTO_MODEL_MAX);
    out[0] = 0;
    if (r->failed) return;
    for (uint32_t i = 0; i < b.len; i++)
        if (b.data[i] < 0x21 || b.data[i] > 0x7e) {
            r->pos -= b.len - i;
            rd_fail(r, "model", "byte 0x%02x is not printable ASCII", b.data[i]);
            return;
        }
    memcpy(out, b.data, b.len);
    out[b.len] = 0;
}

/* Error text: UTF-8 without control characters, so it can go to a log line as it is. */
static void rd_message(reader *r, char out[PROTO_MESSAGE_MAX + 1]) {
    proto_bytes b = rd_blob(r, "message", 2, 0, PROTO_MESSAGE_MAX);
    out[0] = 0;
    if (r->failed) return;
    for (uint32_t i = 0; i < b.len; i++)
        if (b.data[i] < 0x20 || b.data[i] == 0x7f) {
            r->pos -= b.len - i;
            rd_fail(r, "message", "control character 0x%02x", b.data[i]);
            return;
        }
    if (b.len && !utf8_valid((const char *)b.data, b.len)) {
        r->pos -= b.len;
        rd_fail(r, "message", "not valid UTF-8");
        return;
    }
    if (b.len) memcpy(out, b.data, b.len);
    out[b.len] = 0;
}

static void rd_hello(reader *r, proto_hello *h) {
    h->role = rd_u8(r, "role");
    if (!r->failed && (h->role < PROTO_ROLE_WORKER || h->role > PROTO_ROLE_LEDGER)) {
        r->pos--;
        rd_fail(r, "role", "unknown role %u", h->role);
    }
    h->version_min = rd_u8(r, "version_min");
    h->version_max = rd_u8(r, "version_max");
    if (!r->failed && (h->version_min == 0 || h->version_min > h->version_max)) {
        r->pos -= 2;
        rd_fail(r, "version_min", "bad range %u..%u", h->version_min, h->version_max);
    }
    rd_fixed(r, "e2e_key", h->e2e_key, PROTO_KEY_LEN);
    h->evidence = rd_blob(r, "evidence", 4, 0, PROTO_EVIDENCE_MAX);
}

static void rd_worker_register(reader *r, proto_worker_register *w) {
    rd_model(r, w->model);
    rd_fixed(r, "model_sha256", w->model_sha256, PROTO_KEY_LEN);
    w->capacity = rd_u32(r, "capacity");
    w->price = rd_u32(r, "price");
    w->evidence = rd_blob(r, "evidence", 4, 0, PROTO_EVIDENCE_MAX);
    rd_fixed(r, "payout_key", w->payout_key, PROTO_KEY_LEN);
}

static void rd_load_report(reader *r, proto_load_report *l) {
    l->active = rd_u32(r, "active");
    l->queued = rd_u32(r, "queued");
    l->capacity = rd_u32(r, "capacity");
    l->tokens_per_s = rd_u32(r, "tokens_per_s");
}

static void rd_worker_info(reader *r, proto_worker_info *w) {
    uint32_t min;
    rd_fixed(r, "e2e_key", w->e2e_key, PROTO_KEY_LEN);
    w->status = rd_u8(r, "status");
    if (!r->failed && w->status > PROTO_WORKER_REMOVED) {
        r->pos--;
        rd_fail(r, "status", "unknown status %u", w->status);
    }
    rd_model(r, w->model);
    rd_fixed(r, "model_sha256", w->model_sha256, PROTO_KEY_LEN);
    w->price = rd_u32(r, "price");
    w->capacity = rd_u32(r, "capacity");
    w->active = rd_u32(r, "active");
    /* a removed worker needs no proof; an available one is useless without it */
    min = w->status == PROTO_WORKER_AVAILABLE ? 1 : 0;
    w->tls_key = rd_blob(r, "tls_key", 2, min, min ? PROTO_TLS_KEY_MAX : 0);
    w->evidence = rd_blob(r, "evidence", 4, min, min ? PROTO_EVIDENCE_MAX : 0);
}

static void rd_request(reader *r, proto_request *q) {
    rd_model(r, q->model);
    q->max_tokens = rd_u32(r, "max_tokens");
    if (!r->failed && q->max_tokens == 0) {
        r->pos -= 4;
        rd_fail(r, "max_tokens", "must be at least 1");
    }
    q->prompt_tokens = rd_u32(r, "prompt_tokens");
    q->timeout_ms = rd_u32(r, "timeout_ms");
    q->max_price = rd_u32(r, "max_price");
    q->n_recipients = rd_u8(r, "recipients");
    if (!r->failed && (q->n_recipients == 0 || q->n_recipients > PROTO_RECIPIENTS_MAX)) {
        r->pos--;
        rd_fail(r, "recipients", "count %u outside 1..%d", q->n_recipients, PROTO_RECIPIENTS_MAX);
    }
    for (int i = 0; i < q->n_recipients && !r->failed; i++) {
        proto_recipient *rc = &q->recipients[i];
        size_t at = r->pos;
        rd_fixed(r, "recipient key", rc->worker_key, PROTO_KEY_LEN);
        for (int j = 0; j < i && !r->failed; j++)
            if (memcmp(q->recipients[j].worker_key, rc->worker_key, PROTO_KEY_LEN) == 0) {
                r->pos = at;
                rd_fail(r, "recipient key", "recipient %d repeats recipient %d", i, j);
            }
        rc->wrapped_key = rd_blob(r, "wrapped key", 2, 1, PROTO_WRAPPED_KEY_MAX);
    }
    q->payload = rd_blob(r, "payload", 4, 1, FRAME_MAX_PAYLOAD);
}

static void rd_final(reader *r, proto_final *f) {
    f->prompt_tokens = rd_u32(r, "prompt_tokens");
    f->cached_tokens = rd_u32(r, "cached_tokens");
    if (!r->failed && f->cached_tokens > f->prompt_tokens) {
        r->pos -= 4;
        rd_fail(r, "cached_tokens", "%u cached of %u prompt tokens", f->cached_tokens,
                f->prompt_tokens);
    }
    f->completion_tokens = rd_u32(r, "completion_tokens");
    f->receipt = rd_blob(r, "receipt", 2, 0, PROTO_RECEIPT_MAX);
}

static void rd_error(reader *r, proto_error *e) {
    e->code = rd_u16(r, "code");
    if (!r->failed && e->code == 0) {
        r->pos -= 2;
        rd_fail(r, "code", "0 is not an error code");
    }
    rd_message(r, e->message);
}

/* Which messages belong to stream 0 (the connection) and which to a request's stream. */
static int stream_rule(int type) {
    switch (type) {
    case PROTO_REQUEST:
    case PROTO_CHUNK:
    case PROTO_FINAL:
    case PROTO_CANCEL: return 1;  /* a request stream */
    case PROTO_ERROR: return -1;  /* either */
    }
    return 0;                     /* the connection */
}

int proto_decode(const frame *f, proto_msg *m) {
    reader r = {f->payload, f->len, 0, f, 0};
    int rule = stream_rule(f->type);
    memset(m, 0, sizeof *m);
    m->type = f->type;
    m->stream = f->stream;
    if (f->type == 0 || f->type > PROTO_TYPE_LAST)
        return err_set("frame (stream %u): unknown message type %u", f->stream, f->type);
    if (f->version < PROTO_VERSION_MIN || f->version > PROTO_VERSION_MAX)
        return err_set("%s message (stream %u): protocol version %u not spoken here",
                       proto_type_name(f->type), f->stream, f->version);
    if (f->type == PROTO_HELLO && f->version != 1)
        return err_set("hello message in a version-%u frame: hellos always travel in version 1",
                       f->version);
    if ((rule == 0 && f->stream != 0) || (rule == 1 && f->stream == 0))
        return err_set("%s message on stream %u: belongs on %s", proto_type_name(f->type),
                       f->stream, rule ? "a request's stream (not 0)" : "stream 0");
    switch (f->type) {
    case PROTO_HELLO: rd_hello(&r, &m->hello); break;
    case PROTO_WORKER_REGISTER: rd_worker_register(&r, &m->worker_register); break;
    case PROTO_LOAD_REPORT: rd_load_report(&r, &m->load_report); break;
    case PROTO_WORKER_INFO: rd_worker_info(&r, &m->worker_info); break;
    case PROTO_REQUEST: rd_request(&r, &m->request); break;
    case PROTO_CHUNK: m->chunk = rd_blob(&r, "sealed", 4, 1, FRAME_MAX_PAYLOAD); break;
    case PROTO_FINAL: rd_final(&r, &m->final); break;
    case PROTO_ERROR: rd_error(&r, &m->error); break;
    case PROTO_CANCEL: break;
    case PROTO_VOUCHER: m->voucher = rd_blob(&r, "voucher", 2, 1, PROTO_VOUCHER_MAX); break;
    case PROTO_PING:
    case PROTO_PONG: m->ping = rd_uint(&r, "nonce", 8); break;
    }
    if (!r.failed && r.pos != r.len) rd_fail(&r, "end", "%zu trailing bytes", r.len - r.pos);
    return r.failed ? -1 : 0;
}

/* ---- writing ---- */

/* Counts every byte, stores those that fit: one pass sizes a frame, the next writes it. */
typedef struct writer {
    uint8_t *p;
    size_t cap, pos;
    const char *bad; /* a length that does not fit its prefix */
} writer;

static void wr_bytes(writer *w, const void *src, size_t n) {
    if (n && w->pos <= w->cap && w->cap - w->pos >= n) memcpy(w->p + w->pos, src, n);
    w->pos += n;
}

static void wr_uint(writer *w, uint64_t v, int bytes) {
    uint8_t b[8];
    for (int i = bytes - 1; i >= 0; i--, v >>= 8) b[i] = (uint8_t)v;
    wr_bytes(w, b, (size_t)bytes);
}

static void wr_blob(writer *w, const char *field, const void *data, size_t n, int len_bytes) {
    uint64_t limit = len_bytes == 4 ? UINT32_MAX : (1ull << (8 * len_bytes)) - 1;
    if (n > limit || (n && !data)) {
        if (!w->bad) w->bad = field;
        n = 0;
    }
    wr_uint(w, n, len_bytes);
    wr_bytes(w, data, n);
}

static void wr_str(writer *w, const char *field, const char *s, size_t max, int len_bytes) {
    wr_blob(w, field, s, strnlen(s, max + 1), len_bytes);
}

static void wr_payload(writer *w, const proto_msg *m) {
    switch (m->type) {
    case PROTO_HELLO: {
        const proto_hello *h = &m->hello;
        wr_uint(w, h->role, 1);
        wr_uint(w, h->version_min, 1);
        wr_uint(w, h->version_max, 1);
        wr_bytes(w, h->e2e_key, PROTO_KEY_LEN);
        wr_blob(w, "evidence", h->evidence.data, h->evidence.len, 4);
        break;
    }
    case PROTO_WORKER_REGISTER: {
        const proto_worker_register *g = &m->worker_register;
        wr_str(w, "model", g->model, PROTO_MODEL_MAX, 1);
        wr_bytes(w, g->model_sha256, PROTO_KEY_LEN);
        wr_uint(w, g->capacity, 4);
        wr_uint(w, g->price, 4);
        wr_blob(w, "evidence", g->evidence.data, g->evidence.len, 4);
        wr_bytes(w, g->payout_key, PROTO_KEY_LEN);
        break;
    }
    case PROTO_LOAD_REPORT: {
        const proto_load_report *l = &m->load_report;
        wr_uint(w, l->active, 4);
        wr_uint(w, l->queued, 4);
        wr_uint(w, l->capacity, 4);
        wr_uint(w, l->tokens_per_s, 4);
        break;
    }
    case PROTO_WORKER_INFO: {
        const proto_worker_info *i = &m->worker_info;
        wr_bytes(w, i->e2e_key, PROTO_KEY_LEN);
        wr_uint(w, i->status, 1);
        wr_str(w, "model", i->model, PROTO_MODEL_MAX, 1);
        wr_bytes(w, i->model_sha256, PROTO_KEY_LEN);
        wr_uint(w, i->price, 4);
        wr_uint(w, i->capacity, 4);
        wr_uint(w, i->active, 4);
        wr_blob(w, "tls_key", i->tls_key.data, i->tls_key.len, 2);
        wr_blob(w, "evidence", i->evidence.data, i->evidence.len, 4);
        break;
    }
    case PROTO_REQUEST: {
        const proto_request *q = &m->request;
        wr_str(w, "model", q->model, PROTO_MODEL_MAX, 1);
        wr_uint(w, q->max_tokens, 4);
        wr_uint(w, q->prompt_tokens, 4);
        wr_uint(w, q->timeout_ms, 4);
        wr_uint(w, q->max_price, 4);
        wr_uint(w, q->n_recipients, 1);
        for (int i = 0; i < q->n_recipients && i < PROTO_RECIPIENTS_MAX; i++) {
            wr_bytes(w, q->recipients[i].worker_key, PROTO_KEY_LEN);
            wr_blob(w, "wrapped key", q->recipients[i].wrapped_key.data,
                    q->recipients[i].wrapped_key.len, 2);
        }
        wr_blob(w, "payload", q->payload.data, q->payload.len, 4);
        break;
    }
    case PROTO_CHUNK: wr_blob(w, "sealed", m->chunk.data, m->chunk.len, 4); break;
    case PROTO_FINAL: {
        const proto_final *f = &m->final;
        wr_uint(w, f->prompt_tokens, 4);
        wr_uint(w, f->cached_tokens, 4);
        wr_uint(w, f->completion_tokens, 4);
        wr_blob(w, "receipt", f->receipt.data, f->receipt.len, 2);
        break;
    }
    case PROTO_ERROR:
        wr_uint(w, m->error.code, 2);
        wr_str(w, "message", m->error.message, PROTO_MESSAGE_MAX, 2);
        break;
    case PROTO_CANCEL: break;
    case PROTO_VOUCHER: wr_blob(w, "voucher", m->voucher.data, m->voucher.len, 2); break;
    case PROTO_PING:
    case PROTO_PONG: wr_uint(w, m->ping, 8); break;
    }
}

int proto_encode(const proto_msg *m, uint8_t version, uint8_t *dst, size_t cap, size_t *len) {
    writer w = {dst, dst ? cap : 0, FRAME_HEADER_LEN, NULL};
    frame f = {version, m->type, 0, m->stream, 0, NULL};
    proto_msg check;
    *len = 0;
    if (m->type == 0 || m->type > PROTO_TYPE_LAST)
        return err_set("encode: unknown message type %u", m->type);
    wr_payload(&w, m);
    if (w.bad)
        return err_set("encode %s message: field %s is too long", proto_type_name(m->type), w.bad);
    if (w.pos - FRAME_HEADER_LEN > FRAME_MAX_PAYLOAD)
        return err_set("encode %s message: payload of %zu bytes exceeds %u",
                       proto_type_name(m->type), w.pos - FRAME_HEADER_LEN, FRAME_MAX_PAYLOAD);
    *len = w.pos;
    if (w.pos > w.cap)
        return err_set("encode %s message: needs %zu bytes, buffer has %zu",
                       proto_type_name(m->type), w.pos, cap);
    f.len = (uint32_t)(w.pos - FRAME_HEADER_LEN);
    f.payload = f.len ? dst + FRAME_HEADER_LEN : NULL;
    frame_put_header(dst, &f);
    if (proto_decode(&f, &check) != 0) return err_prefix("encode");
    return 0;
}

uint8_t *proto_encode_alloc(const proto_msg *m, uint8_t version, size_t *len) {
    uint8_t *p;
    if (proto_encode(m, version, NULL, 0, len) != 0 && *len == 0) return NULL;
    p = malloc(*len);
    if (!p) {
        err_set("encode %s message: out of memory for %zu bytes", proto_type_name(m->type), *len);
        return NULL;
    }
    if (proto_encode(m, version, p, *len, len) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

int proto_negotiate(const proto_hello *mine, const proto_hello *theirs, uint8_t *version) {
    uint8_t hi = mine->version_max < theirs->version_max ? mine->version_max : theirs->version_max;
    uint8_t lo = mine->version_min > theirs->version_min ? mine->version_min : theirs->version_min;
    if (hi < lo)
        return err_set("no common protocol version: we speak %u..%u, the %s peer %u..%u",
                       mine->version_min, mine->version_max, proto_role_name(theirs->role),
                       theirs->version_min, theirs->version_max);
    *version = hi;
    return 0;
}
