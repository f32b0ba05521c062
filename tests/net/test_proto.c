/* Protocol messages: every type round-trips through the frame decoder to the same bytes, every
 * field bound holds on both sides (the encoder refuses what the decoder would reject), and
 * truncated, padded, misplaced or unknown messages are errors. The raw builders below spell
 * out the layouts of docs/PROTOCOL.md independently of proto.c. */
#include "base/err.h"
#include "net/frame.h"
#include "net/proto.h"
#include "proto_samples.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ---- raw payload builder ---- */

typedef struct raw {
    uint8_t b[FRAME_HEADER_LEN + 70000];
    size_t n;
} raw;

static void put(raw *r, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) r->b[r->n + (size_t)i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    r->n += (size_t)bytes;
}

static void put_fill(raw *r, size_t n, uint8_t byte) {
    memset(r->b + r->n, byte, n);
    r->n += n;
}

static void put_str(raw *r, const char *s, int len_bytes) {
    size_t n = strlen(s);
    put(r, n, len_bytes);
    memcpy(r->b + r->n, s, n);
    r->n += n;
}

/* Decodes r's bytes as the payload of a version-1 frame. */
static int raw_decode(const raw *r, int type, uint32_t stream, proto_msg *m) {
    frame f = {1, (uint8_t)type, 0, stream, (uint32_t)r->n, r->n ? r->b : NULL};
    return proto_decode(&f, m);
}

/* Decodes an encoded frame (header and payload). */
static int bytes_decode(const uint8_t *p, size_t n, proto_msg *m) {
    frame f;
    if (n < FRAME_HEADER_LEN) return err_set("short");
    frame_get_header(p, &f);
    if (f.len != n - FRAME_HEADER_LEN) return err_set("length mismatch");
    f.payload = f.len ? p + FRAME_HEADER_LEN : NULL;
    return proto_decode(&f, m);
}

static void raw_hello(raw *r, int role, int vmin, int vmax, uint32_t evidence_len) {
    r->n = 0;
    put(r, (uint64_t)role, 1);
    put(r, (uint64_t)vmin, 1);
    put(r, (uint64_t)vmax, 1);
    put_fill(r, 32, 0xaa);
    put(r, evidence_len, 4);
    put_fill(r, evidence_len, 0x55);
}

static void raw_request(raw *r, const char *model, uint32_t max_tokens, int n_recip,
                        uint32_t wrapped_len, uint32_t payload_len) {
    r->n = 0;
    put_str(r, model, 1);
    put(r, max_tokens, 4);
    put(r, 10, 4);   /* prompt_tokens */
    put(r, 5000, 4); /* timeout_ms */
    put(r, 1000, 4); /* max_price */
    put(r, (uint64_t)n_recip, 1);
    for (int i = 0; i < n_recip; i++) {
        put_fill(r, 32, (uint8_t)(i + 1));
        put(r, wrapped_len, 2);
        put_fill(r, wrapped_len, 0x77);
    }
    put(r, payload_len, 4);
    put_fill(r, payload_len, 0x99);
}

static void raw_worker_info(raw *r, int status, uint32_t tls_len, uint32_t ev_len) {
    r->n = 0;
    put_fill(r, 32, 1);
    put(r, (uint64_t)status, 1);
    put_str(r, "m", 1);
    put_fill(r, 32, 2);
    put(r, 1000, 4);
    put(r, 4, 4);
    put(r, 0, 4);
    put(r, tls_len, 2);
    put_fill(r, tls_len, 3);
    put(r, ev_len, 4);
    put_fill(r, ev_len, 4);
}

/* ---- round trips ---- */

TEST(proto_round_trip_every_type) {
    for (int t = 1; t <= PROTO_TYPE_LAST; t++) {
        proto_msg m, d;
        size_t len, len2;
        uint8_t *p, *p2;
        sample_msg(t, &m);
        p = proto_encode_alloc(&m, 1, &len);
        CHECK_MSG(p != NULL, "encode %s: %s", proto_type_name(t), err_msg());
        if (!p) continue;
        CHECK_EQ_INT(p[4], 1);
        CHECK_EQ_INT(p[5], t);
        CHECK_MSG(bytes_decode(p, len, &d) == 0, "decode %s: %s", proto_type_name(t), err_msg());
        CHECK_EQ_INT(d.type, t);
        CHECK_EQ_INT(d.stream, m.stream);
        p2 = proto_encode_alloc(&d, 1, &len2);
        CHECK(p2 && len2 == len && memcmp(p, p2, len) == 0);
        free(p);
        free(p2);
    }
}

TEST(proto_round_trip_fields) {
    proto_msg m, d;
    size_t len;
    uint8_t *p;

    sample_msg(PROTO_REQUEST, &m);
    p = proto_encode_alloc(&m, 1, &len);
    CHECK(p && bytes_decode(p, len, &d) == 0);
    CHECK_EQ_STR(d.request.model, "stories260K");
    CHECK_EQ_INT(d.request.max_tokens, 256);
    CHECK_EQ_INT(d.request.prompt_tokens, 12);
    CHECK_EQ_INT(d.request.timeout_ms, 120000);
    CHECK_EQ_INT(d.request.max_price, 2000);
    CHECK_EQ_INT(d.request.n_recipients, 2);
    CHECK(memcmp(d.request.recipients[1].worker_key, m.request.recipients[1].worker_key, 32) == 0);
    CHECK_EQ_INT(d.request.recipients[0].wrapped_key.len, 80);
    CHECK_EQ_INT(d.request.payload.len, 200);
    CHECK(d.request.payload.data && memcmp(d.request.payload.data, sample_blob, 200) == 0);
    /* blobs are views into the frame, not copies */
    CHECK(d.request.payload.data > p && d.request.payload.data < p + len);
    free(p);

    sample_msg(PROTO_FINAL, &m);
    p = proto_encode_alloc(&m, 1, &len);
    CHECK(p && bytes_decode(p, len, &d) == 0);
    CHECK_EQ_INT(d.final.prompt_tokens, 12);
    CHECK_EQ_INT(d.final.cached_tokens, 4);
    CHECK_EQ_INT(d.final.completion_tokens, 100);
    CHECK_EQ_INT(d.final.receipt.len, 96);
    free(p);

    sample_msg(PROTO_ERROR, &m);
    p = proto_encode_alloc(&m, 1, &len);
    CHECK(p && bytes_decode(p, len, &d) == 0);
    CHECK_EQ_INT(d.error.code, PROTO_ERR_WORKER_FAILED);
    CHECK_EQ_STR(d.error.message, m.error.message);
    free(p);

    sample_msg(PROTO_HELLO, &m);
    p = proto_encode_alloc(&m, 1, &len);
    CHECK(p && bytes_decode(p, len, &d) == 0);
    CHECK_EQ_INT(d.hello.role, PROTO_ROLE_WORKER);
    CHECK(memcmp(d.hello.e2e_key, m.hello.e2e_key, 32) == 0);
    CHECK_EQ_INT(d.hello.evidence.len, 172);
    free(p);

    sample_msg(PROTO_PONG, &m);
    p = proto_encode_alloc(&m, 1, &len);
    CHECK(p && bytes_decode(p, len, &d) == 0);
    CHECK(d.ping == 0x0102030405060708ull);
    CHECK_EQ_INT(len, FRAME_HEADER_LEN + 8);
    free(p);

    sample_msg(PROTO_WORKER_INFO, &m);
    p = proto_encode_alloc(&m, 1, &len);
    CHECK(p && bytes_decode(p, len, &d) == 0);
    CHECK_EQ_STR(d.worker_info.model, "Qwen/Qwen3-8B@q4_k_m");
    CHECK_EQ_INT(d.worker_info.price, 1500);
    CHECK_EQ_INT(d.worker_info.tls_key.len, 44);
    free(p);
}

TEST(proto_layout_matches_docs) {
    /* cancel is a bare header; ping is the header and a u64 nonce, all big-endian */
    proto_msg m;
    uint8_t buf[64];
    size_t len;
    static const uint8_t want_cancel[] = {0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 0, 7};
    static const uint8_t want_ping[] = {0, 0, 0, 8, 1, 11, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    sample_msg(PROTO_CANCEL, &m);
    CHECK(proto_encode(&m, 1, buf, sizeof buf, &len) == 0);
    CHECK(len == sizeof want_cancel && memcmp(buf, want_cancel, len) == 0);
    sample_msg(PROTO_PING, &m);
    CHECK(proto_encode(&m, 1, buf, sizeof buf, &len) == 0);
    CHECK(len == sizeof want_ping && memcmp(buf, want_ping, len) == 0);
}

TEST(proto_encode_reports_size_when_buffer_small) {
    proto_msg m;
    uint8_t buf[16];
    size_t len;
    sample_msg(PROTO_CHUNK, &m);
    CHECK(proto_encode(&m, 1, NULL, 0, &len) == -1);
    CHECK_EQ_INT(len, FRAME_HEADER_LEN + 4 + 41);
    CHECK(proto_encode(&m, 1, buf, sizeof buf, &len) == -1);
    CHECK_EQ_INT(len, FRAME_HEADER_LEN + 4 + 41);
}

/* ---- malformed messages ---- */

TEST(proto_rejects_truncation_and_trailing_bytes) {
    for (int t = 1; t <= PROTO_TYPE_LAST; t++) {
        proto_msg m, d;
        size_t len;
        uint8_t *p;
        sample_msg(t, &m);
        p = proto_encode_alloc(&m, 1, &len);
        if (!p) {
            CHECK(p);
            continue;
        }
        for (size_t cut = FRAME_HEADER_LEN; cut < len; cut++) {
            frame f;
            frame_get_header(p, &f);
            f.len = (uint32_t)(cut - FRAME_HEADER_LEN);
            f.payload = f.len ? p + FRAME_HEADER_LEN : NULL;
            CHECK_MSG(proto_decode(&f, &d) == -1, "%s cut at %zu decoded", proto_type_name(t), cut);
        }
        {
            uint8_t *q = malloc(len + 1);
            frame f;
            memcpy(q, p, len);
            q[len] = 0;
            frame_get_header(q, &f);
            f.len++;
            f.payload = q + FRAME_HEADER_LEN;
            CHECK(proto_decode(&f, &d) == -1);
            CHECK(strstr(err_msg(), "trailing") != NULL);
            free(q);
        }
        free(p);
    }
}

TEST(proto_rejects_unknown_types_and_versions) {
    proto_msg d;
    frame f = {1, 0, 0, 0, 0, NULL};
    CHECK(proto_decode(&f, &d) == -1);
    f.type = PROTO_TYPE_LAST + 1;
    CHECK(proto_decode(&f, &d) == -1);
    CHECK(strstr(err_msg(), "unknown message type 13") != NULL);
    f.type = 255;
    CHECK(proto_decode(&f, &d) == -1);
    f.type = PROTO_CANCEL;
    f.stream = 3;
    f.version = 2;
    CHECK(proto_decode(&f, &d) == -1);
    f.version = 1;
    CHECK(proto_decode(&f, &d) == 0);
    d.type = 200;
    {
        size_t len;
        CHECK(proto_encode(&d, 1, NULL, 0, &len) == -1);
    }
}

TEST(proto_stream_rules) {
    proto_msg m, d;
    raw r = {.n = 0};
    uint8_t buf[512];
    size_t len;
    /* request-stream messages on stream 0 */
    CHECK(raw_decode(&r, PROTO_CANCEL, 0, &d) == -1);
    CHECK(strstr(err_msg(), "stream") != NULL);
    sample_msg(PROTO_CHUNK, &m);
    m.stream = 0;
    CHECK(proto_encode(&m, 1, buf, sizeof buf, &len) == -1);
    /* connection messages on a request stream */
    sample_msg(PROTO_PING, &m);
    m.stream = 4;
    CHECK(proto_encode(&m, 1, buf, sizeof buf, &len) == -1);
    sample_msg(PROTO_WORKER_REGISTER, &m);
    m.stream = 1;
    CHECK(proto_encode(&m, 1, buf, sizeof buf, &len) == -1);
    /* error goes on either */
    sample_msg(PROTO_ERROR, &m);
    m.stream = 0;
    CHECK(proto_encode(&m, 1, buf, sizeof buf, &len) == 0);
    m.stream = 9;
    CHECK(proto_encode(&m, 1, buf, sizeof buf, &len) == 0);
}

TEST(proto_hello_bounds) {
    proto_msg d;
    raw *r = malloc(sizeof *r);
    raw_hello(r, PROTO_ROLE_CLIENT, 1, 1, 0);
    CHECK(raw_decode(r, PROTO_HELLO, 0, &d) == 0);
    CHECK_EQ_INT(d.hello.evidence.len, 0);
    raw_hello(r, PROTO_ROLE_PROXY, 1, 3, PROTO_EVIDENCE_MAX);
    CHECK(raw_decode(r, PROTO_HELLO, 0, &d) == 0);
    CHECK_EQ_INT(d.hello.evidence.len, PROTO_EVIDENCE_MAX);
    raw_hello(r, PROTO_ROLE_PROXY, 1, 1, PROTO_EVIDENCE_MAX + 1);
    CHECK(raw_decode(r, PROTO_HELLO, 0, &d) == -1);
    CHECK(strstr(err_msg(), "evidence") != NULL);
    raw_hello(r, 0, 1, 1, 0);
    CHECK(raw_decode(r, PROTO_HELLO, 0, &d) == -1);
    raw_hello(r, PROTO_ROLE_LEDGER + 1, 1, 1, 0);
    CHECK(raw_decode(r, PROTO_HELLO, 0, &d) == -1);
    CHECK(strstr(err_msg(), "role") != NULL);
    raw_hello(r, PROTO_ROLE_WORKER, 0, 1, 0);
    CHECK(raw_decode(r, PROTO_HELLO, 0, &d) == -1);
    raw_hello(r, PROTO_ROLE_WORKER, 3, 2, 0);
    CHECK(raw_decode(r, PROTO_HELLO, 0, &d) == -1);
    CHECK(strstr(err_msg(), "3..2") != NULL);
    /* a hello never travels in a frame of another version */
    {
        proto_msg m;
        size_t len;
        uint8_t buf[512];
        sample_msg(PROTO_HELLO, &m);
        CHECK(proto_encode(&m, 2, buf, sizeof buf, &len) == -1);
    }
    free(r);
}

TEST(proto_model_name_bounds) {
    proto_msg m, d;
    char name[PROTO_MODEL_MAX + 2];
    size_t len;
    uint8_t *p;
    raw *r = malloc(sizeof *r);
    memset(name, 'x', sizeof name);
    name[PROTO_MODEL_MAX] = 0;
    sample_msg(PROTO_WORKER_REGISTER, &m);
    memcpy(m.worker_register.model, name, PROTO_MODEL_MAX + 1);
    p = proto_encode_alloc(&m, 1, &len);
    CHECK(p && bytes_decode(p, len, &d) == 0 && strlen(d.worker_register.model) == PROTO_MODEL_MAX);
    free(p);
    /* 129 bytes: the raw form decodes to an error, the encoder refuses too */
    name[PROTO_MODEL_MAX] = 'x';
    name[PROTO_MODEL_MAX + 1] = 0;
    raw_request(r, name, 1, 1, 80, 1);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    CHECK(strstr(err_msg(), "model") != NULL);
    raw_request(r, "", 1, 1, 80, 1);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    raw_request(r, "has space", 1, 1, 80, 1);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    CHECK(strstr(err_msg(), "printable") != NULL);
    raw_request(r, "tab\there", 1, 1, 80, 1);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    raw_request(r, "caf\xc3\xa9", 1, 1, 80, 1);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    sample_msg(PROTO_WORKER_REGISTER, &m);
    strcpy(m.worker_register.model, "two words");
    CHECK(proto_encode_alloc(&m, 1, &len) == NULL);
    free(r);
}

TEST(proto_request_bounds) {
    proto_msg d;
    raw *r = malloc(sizeof *r);
    raw_request(r, "m", 1, PROTO_RECIPIENTS_MAX, PROTO_WRAPPED_KEY_MAX, 1);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == 0);
    CHECK_EQ_INT(d.request.n_recipients, PROTO_RECIPIENTS_MAX);
    CHECK_EQ_INT(d.request.recipients[7].wrapped_key.len, PROTO_WRAPPED_KEY_MAX);
    raw_request(r, "m", 1, PROTO_RECIPIENTS_MAX + 1, 80, 1);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    CHECK(strstr(err_msg(), "recipients") != NULL);
    raw_request(r, "m", 1, 0, 80, 1);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    raw_request(r, "m", 1, 1, PROTO_WRAPPED_KEY_MAX + 1, 1);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    CHECK(strstr(err_msg(), "wrapped key") != NULL);
    raw_request(r, "m", 1, 1, 0, 1);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    raw_request(r, "m", 1, 1, 80, 0);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    CHECK(strstr(err_msg(), "payload") != NULL);
    raw_request(r, "m", 0, 1, 80, 1);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    CHECK(strstr(err_msg(), "max_tokens") != NULL);
    /* the same worker twice */
    raw_request(r, "m", 1, 2, 80, 1);
    memset(r->b + 2 + 17 + 32 + 2 + 80, 1, 32);
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    CHECK(strstr(err_msg(), "repeats") != NULL);
    /* a payload length that runs past the frame */
    raw_request(r, "m", 1, 1, 80, 10);
    r->n -= 1;
    CHECK(raw_decode(r, PROTO_REQUEST, 1, &d) == -1);
    free(r);
}

TEST(proto_worker_info_bounds) {
    proto_msg d;
    raw *r = malloc(sizeof *r);
    raw_worker_info(r, PROTO_WORKER_AVAILABLE, PROTO_TLS_KEY_MAX, PROTO_EVIDENCE_MAX);
    CHECK(raw_decode(r, PROTO_WORKER_INFO, 0, &d) == 0);
    raw_worker_info(r, PROTO_WORKER_AVAILABLE, PROTO_TLS_KEY_MAX + 1, 10);
    CHECK(raw_decode(r, PROTO_WORKER_INFO, 0, &d) == -1);
    raw_worker_info(r, PROTO_WORKER_AVAILABLE, 10, PROTO_EVIDENCE_MAX + 1);
    CHECK(raw_decode(r, PROTO_WORKER_INFO, 0, &d) == -1);
    raw_worker_info(r, PROTO_WORKER_AVAILABLE, 0, 10);
    CHECK(raw_decode(r, PROTO_WORKER_INFO, 0, &d) == -1);
    raw_worker_info(r, PROTO_WORKER_REMOVED, 0, 0);
    CHECK(raw_decode(r, PROTO_WORKER_INFO, 0, &d) == 0);
    CHECK_EQ_INT(d.worker_info.status, PROTO_WORKER_REMOVED);
    raw_worker_info(r, PROTO_WORKER_REMOVED, 0, 5);
    CHECK(raw_decode(r, PROTO_WORKER_INFO, 0, &d) == -1);
    raw_worker_info(r, 2, 10, 10);
    CHECK(raw_decode(r, PROTO_WORKER_INFO, 0, &d) == -1);
    CHECK(strstr(err_msg(), "status") != NULL);
    free(r);
}

TEST(proto_final_error_voucher_chunk_bounds) {
    proto_msg m, d;
    size_t len;
    uint8_t *p;
    raw *r = malloc(sizeof *r);
    static uint8_t big[PROTO_VOUCHER_MAX + 1];

    sample_msg(PROTO_FINAL, &m);
    m.final.receipt = (proto_bytes){big, PROTO_RECEIPT_MAX};
    p = proto_encode_alloc(&m, 1, &len);
    CHECK(p && bytes_decode(p, len, &d) == 0 && d.final.receipt.len == PROTO_RECEIPT_MAX);
    free(p);
    m.final.receipt.len = PROTO_RECEIPT_MAX + 1;
    CHECK(proto_encode_alloc(&m, 1, &len) == NULL);
    sample_msg(PROTO_FINAL, &m);
    m.final.cached_tokens = m.final.prompt_tokens + 1;
    CHECK(proto_encode_alloc(&m, 1, &len) == NULL);
    CHECK(strstr(err_msg(), "cached_tokens") != NULL);

    r->n = 0;
    put(r, PROTO_ERR_TIMEOUT, 2);
    put(r, PROTO_MESSAGE_MAX, 2);
    put_fill(r, PROTO_MESSAGE_MAX, 'a');
    CHECK(raw_decode(r, PROTO_ERROR, 1, &d) == 0);
    CHECK_EQ_INT(strlen(d.error.message), PROTO_MESSAGE_MAX);
    r->n = 0;
    put(r, PROTO_ERR_TIMEOUT, 2);
    put(r, PROTO_MESSAGE_MAX + 1, 2);
    put_fill(r, PROTO_MESSAGE_MAX + 1, 'a');
    CHECK(raw_decode(r, PROTO_ERROR, 1, &d) == -1);
    r->n = 0;
    put(r, PROTO_ERR_TIMEOUT, 2);
    put_str(r, "line\nbreak", 2);
    CHECK(raw_decode(r, PROTO_ERROR, 1, &d) == -1);
    CHECK(strstr(err_msg(), "control") != NULL);
    r->n = 0;
    put(r, PROTO_ERR_TIMEOUT, 2);
    put_str(r, "bad \xc3(", 2);
    CHECK(raw_decode(r, PROTO_ERROR, 1, &d) == -1);
    CHECK(strstr(err_msg(), "UTF-8") != NULL);
    r->n = 0;
    put(r, 0, 2);
    put_str(r, "", 2);
    CHECK(raw_decode(r, PROTO_ERROR, 0, &d) == -1);

    sample_msg(PROTO_VOUCHER, &m);
    m.voucher = (proto_bytes){big, PROTO_VOUCHER_MAX};
    p = proto_encode_alloc(&m, 1, &len);
    CHECK(p && bytes_decode(p, len, &d) == 0 && d.voucher.len == PROTO_VOUCHER_MAX);
    free(p);
    m.voucher.len = PROTO_VOUCHER_MAX + 1;
    CHECK(proto_encode_alloc(&m, 1, &len) == NULL);
    m.voucher.len = 0;
    CHECK(proto_encode_alloc(&m, 1, &len) == NULL);

    sample_msg(PROTO_CHUNK, &m);
    m.chunk.len = 0;
    m.chunk.data = NULL;
    CHECK(proto_encode_alloc(&m, 1, &len) == NULL);
    free(r);
}

TEST(proto_payload_limit) {
    /* the encoder refuses a frame above the ceiling instead of sending what nobody accepts */
    proto_msg m;
    size_t len;
    sample_msg(PROTO_CHUNK, &m);
    m.chunk = (proto_bytes){sample_blob, FRAME_MAX_PAYLOAD};
    CHECK(proto_encode(&m, 1, NULL, 0, &len) == -1);
    CHECK(strstr(err_msg(), "exceeds") != NULL);
}

TEST(proto_negotiate_versions) {
    proto_hello a = {.role = PROTO_ROLE_CLIENT, .version_min = 1, .version_max = 3};
    proto_hello b = {.role = PROTO_ROLE_PROXY, .version_min = 2, .version_max = 5};
    uint8_t v = 0;
    CHECK(proto_negotiate(&a, &b, &v) == 0);
    CHECK_EQ_INT(v, 3);
    CHECK(proto_negotiate(&b, &a, &v) == 0);
    CHECK_EQ_INT(v, 3);
    b.version_min = 4;
    CHECK(proto_negotiate(&a, &b, &v) == -1);
    CHECK(strstr(err_msg(), "no common protocol version") != NULL);
}

TEST(proto_who_sends_what) {
    CHECK(proto_may_send(PROTO_ROLE_WORKER, PROTO_WORKER_REGISTER));
    CHECK(!proto_may_send(PROTO_ROLE_CLIENT, PROTO_WORKER_REGISTER));
    CHECK(!proto_may_send(PROTO_ROLE_WORKER, PROTO_REQUEST));
    CHECK(proto_may_send(PROTO_ROLE_PROXY, PROTO_REQUEST));
    CHECK(proto_may_send(PROTO_ROLE_CLIENT, PROTO_CANCEL));
    CHECK(!proto_may_send(PROTO_ROLE_CLIENT, PROTO_CHUNK));
    CHECK(proto_may_send(PROTO_ROLE_PROXY, PROTO_WORKER_INFO));
    CHECK(!proto_may_send(PROTO_ROLE_WORKER, PROTO_WORKER_INFO));
    CHECK(proto_may_send(PROTO_ROLE_LEDGER, PROTO_PING));
    CHECK(!proto_may_send(9, PROTO_PING));
    CHECK(!proto_may_send(PROTO_ROLE_PROXY, 99));
}
