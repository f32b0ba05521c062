/* Sample messages of every type for the protocol tests: sample_msg(type, m) fills m with
 * fields that exercise every part of the layout (blobs point into static test data). */
#ifndef VEIL_TEST_PROTO_SAMPLES_H
#define VEIL_TEST_PROTO_SAMPLES_H

#include "net/proto.h"

#include <string.h>

static const uint8_t sample_blob[256] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 255, 128, 77, 42, 13, 10, 0, 0, 9,
};

static inline void sample_key(uint8_t key[PROTO_KEY_LEN], uint8_t seed) {
    for (int i = 0; i < PROTO_KEY_LEN; i++) key[i] = (uint8_t)(seed * 31 + i);
}

static inline proto_bytes sample_bytes(uint32_t len) {
    proto_bytes b = {len ? sample_blob : NULL, len};
    return b;
}

static inline void sample_msg(int type, proto_msg *m) {
    memset(m, 0, sizeof *m);
    m->type = (uint8_t)type;
    switch (type) {
    case PROTO_HELLO:
        m->hello.role = PROTO_ROLE_WORKER;
        m->hello.version_min = 1;
        m->hello.version_max = 1;
        sample_key(m->hello.e2e_key, 1);
        m->hello.evidence = sample_bytes(172);
        break;
    case PROTO_WORKER_REGISTER:
        strcpy(m->worker_register.model, "stories260K");
        sample_key(m->worker_register.model_sha256, 2);
        m->worker_register.capacity = 16;
        m->worker_register.price = 1000;
        m->worker_register.evidence = sample_bytes(172);
        break;
    case PROTO_LOAD_REPORT:
        m->load_report = (proto_load_report){3, 1, 16, 0x01020304};
        break;
    case PROTO_WORKER_INFO:
        sample_key(m->worker_info.e2e_key, 3);
        m->worker_info.status = PROTO_WORKER_AVAILABLE;
        strcpy(m->worker_info.model, "Qwen/Qwen3-8B@q4_k_m");
        sample_key(m->worker_info.model_sha256, 4);
        m->worker_info.price = 1500;
        m->worker_info.capacity = 8;
        m->worker_info.active = 2;
        m->worker_info.tls_key = sample_bytes(44);
        m->worker_info.evidence = sample_bytes(172);
        break;
    case PROTO_REQUEST:
        m->stream = 7;
        strcpy(m->request.model, "stories260K");
        m->request.max_tokens = 256;
        m->request.prompt_tokens = 12;
        m->request.timeout_ms = 120000;
        m->request.max_price = 2000;
        m->request.n_recipients = 2;
        sample_key(m->request.recipients[0].worker_key, 5);
        m->request.recipients[0].wrapped_key = sample_bytes(80);
        sample_key(m->request.recipients[1].worker_key, 6);
        m->request.recipients[1].wrapped_key = sample_bytes(80);
        m->request.payload = sample_bytes(200);
        break;
    case PROTO_CHUNK:
        m->stream = 7;
        m->chunk = sample_bytes(41);
        break;
    case PROTO_FINAL:
        m->stream = 7;
        m->final = (proto_final){12, 4, 100, sample_bytes(96)};
        break;
    case PROTO_ERROR:
        m->stream = 7;
        m->error.code = PROTO_ERR_WORKER_FAILED;
        strcpy(m->error.message, "worker lost before the first token (\xc3\xa9t\xc3\xa9)");
        break;
    case PROTO_CANCEL: m->stream = 7; break;
    case PROTO_VOUCHER: m->voucher = sample_bytes(150); break;
    case PROTO_PING:
    case PROTO_PONG: m->ping = 0x0102030405060708ull; break;
    }
}

#endif
