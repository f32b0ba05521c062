/* Protocol messages of the veil network (docs/PROTOCOL.md): their fields, and their coding into
 * and out of frames (frame.h).
 *
 * Every field is bounded and checked on decode; a message decodes only if it is exactly its
 * type's layout (no trailing bytes, reserved values zero, strings well-formed), so any message
 * that decodes re-encodes to the very same frame. Encoding runs the same checks on what it
 * wrote, so a node can never send what its peers would reject.
 *
 * Stream ids: messages about the connection travel on stream 0; request, chunk, final and
 * cancel travel on the stream of their request (never 0); error on either. Decoded blobs are
 * views into the frame's payload (valid while it is); strings are copied and NUL-terminated. */
#ifndef VEIL_PROTO_H
#define VEIL_PROTO_H

#include "attest/evidence.h"
#include "net/frame.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Versions this build speaks. A hello always travels in a version-1 frame (its layout is
 * frozen); every later frame carries the version the two hellos negotiated. */
#define PROTO_VERSION_MIN 1
#define PROTO_VERSION_MAX 1

#define PROTO_KEY_LEN 32          /* X25519 / Ed25519 public keys, SHA-256 digests */
#define PROTO_MODEL_MAX 128       /* model name: printable ASCII, no spaces */
#define PROTO_EVIDENCE_MAX EVIDENCE_MAX_LEN
#define PROTO_TLS_KEY_MAX 512     /* DER SubjectPublicKeyInfo (P-256: 91, Ed25519: 44) */
#define PROTO_RECIPIENTS_MAX 8
#define PROTO_WRAPPED_KEY_MAX 128 /* a symmetric key in a sealed box is 32 + 48 bytes */
#define PROTO_RECEIPT_MAX 1024
#define PROTO_MESSAGE_MAX 1024    /* error text, UTF-8 */
#define PROTO_VOUCHER_MAX 4096

typedef enum proto_type {
    PROTO_HELLO = 1,
    PROTO_WORKER_REGISTER = 2,
    PROTO_LOAD_REPORT = 3,
    PROTO_WORKER_INFO = 4,
    PROTO_REQUEST = 5,
    PROTO_CHUNK = 6,
    PROTO_FINAL = 7,
    PROTO_ERROR = 8,
    PROTO_CANCEL = 9,
    PROTO_VOUCHER = 10,
    PROTO_PING = 11,
    PROTO_PONG = 12,
} proto_type;
#define PROTO_TYPE_LAST PROTO_PONG

typedef enum proto_role {
    PROTO_ROLE_WORKER = 1,
    PROTO_ROLE_PROXY = 2,
    PROTO_ROLE_CLIENT = 3,
    PROTO_ROLE_LEDGER = 4,
} proto_role;

/* Error codes (error.code). Codes below 100 are about the connection or protocol and close
 * it; from 100 on they end one request. */
enum {
    PROTO_ERR_PROTOCOL = 1,     /* malformed frame or message */
    PROTO_ERR_VERSION = 2,      /* no common protocol version */
    PROTO_ERR_ATTESTATION = 3,  /* evidence rejected */
    PROTO_ERR_MODEL_HASH = 4,   /* worker's model hash not allowed */
    PROTO_ERR_SHUTDOWN = 5,     /* the peer is going away */
    PROTO_ERR_NO_WORKER = 100,  /* no worker for the model within the price */
    PROTO_ERR_OVERLOADED = 101,
    PROTO_ERR_WORKER_FAILED = 102, /* before the first chunk: safe to retry elsewhere */
    PROTO_ERR_STREAM_BROKEN = 103, /* after chunks were relayed: not retryable */
    PROTO_ERR_CANCELLED = 104,
    PROTO_ERR_TIMEOUT = 105,
    PROTO_ERR_BAD_REQUEST = 106,   /* the worker could not open or use the sealed payload */
    PROTO_ERR_PAYMENT = 107,
    PROTO_ERR_INTERNAL = 108,
};

typedef struct proto_bytes {
    const uint8_t *data; /* NULL when len is 0 */
    uint32_t len;
} proto_bytes;

typedef struct proto_hello {
    uint8_t role;                    /* proto_role */
    uint8_t version_min, version_max;
    uint8_t e2e_key[PROTO_KEY_LEN];  /* X25519 key that sealed payloads are addressed to */
    proto_bytes evidence;            /* the sender's evidence (evidence.h); may be empty */
} proto_hello;

typedef struct proto_worker_register {
    char model[PROTO_MODEL_MAX + 1];
    uint8_t model_sha256[PROTO_KEY_LEN]; /* SHA-256 of the GGUF file */
    uint32_t capacity;                   /* concurrent requests; 0 = draining */
    uint32_t price;                      /* coefficient, 1000 = 1.0x the registry price */
    proto_bytes evidence;                /* renewed evidence for the hello's keys; may be empty */
    uint8_t payout_key[PROTO_KEY_LEN];   /* Ed25519 key whose wallet the proxy pays; 0s: the TLS key's */
} proto_worker_register;

typedef struct proto_load_report {
    uint32_t active, queued, capacity, tokens_per_s;
} proto_load_report;

enum { PROTO_WORKER_AVAILABLE = 0, PROTO_WORKER_REMOVED = 1 };

typedef struct proto_worker_info {
    uint8_t e2e_key[PROTO_KEY_LEN];
    uint8_t status;                      /* PROTO_WORKER_AVAILABLE or _REMOVED */
    char model[PROTO_MODEL_MAX + 1];
    uint8_t model_sha256[PROTO_KEY_LEN];
    uint32_t price, capacity, active;
    proto_bytes tls_key;                 /* available: 1..PROTO_TLS_KEY_MAX; removed: empty */
    proto_bytes evidence;                /* available: 1..PROTO_EVIDENCE_MAX; removed: empty */
} proto_worker_info;

typedef struct proto_recipient {
    uint8_t worker_key[PROTO_KEY_LEN];   /* a worker's E2E key */
    proto_bytes wrapped_key;             /* the payload key sealed to it: 1..WRAPPED_KEY_MAX */
} proto_recipient;

typedef struct proto_request {
    char model[PROTO_MODEL_MAX + 1];
    uint32_t max_tokens;
    uint32_t prompt_tokens;              /* the sender's estimate, 0 = unknown */
    uint32_t timeout_ms;                 /* 0 = none */
    uint32_t max_price;                  /* highest worker coefficient accepted */
    uint8_t n_recipients;                /* 1..PROTO_RECIPIENTS_MAX */
    proto_recipient recipients[PROTO_RECIPIENTS_MAX];
    proto_bytes payload;                 /* sealed request, at least 1 byte */
} proto_request;

typedef struct proto_final {
    uint32_t prompt_tokens, cached_tokens, completion_tokens; /* cached <= prompt */
    proto_bytes receipt;                 /* worker-signed receipt, 0..PROTO_RECEIPT_MAX */
} proto_final;

typedef struct proto_error {
    uint16_t code;
    char message[PROTO_MESSAGE_MAX + 1]; /* UTF-8 without NUL */
} proto_error;

typedef struct proto_msg {
    uint8_t type;                        /* proto_type */
    uint32_t stream;
    union {
        proto_hello hello;
        proto_worker_register worker_register;
        proto_load_report load_report;
        proto_worker_info worker_info;
        proto_request request;
        proto_bytes chunk;               /* sealed bytes, at least 1 */
        proto_final final;
        proto_error error;
        proto_bytes voucher;             /* 1..PROTO_VOUCHER_MAX */
        uint64_t ping;                   /* ping and pong: a nonce the pong echoes */
    };
} proto_msg;

const char *proto_type_name(int type);
const char *proto_role_name(int role);

/* Decodes f (whose header the frame decoder already checked) into m. -1 with err_msg() naming
 * the message type, field and payload offset. */
int proto_decode(const frame *f, proto_msg *m);

/* Encodes m as a whole frame (header and payload) of the given version into dst (cap bytes);
 * *len is the frame's size, set even when cap is too small (then -1), so a caller may ask
 * with cap 0 first. -1 with err_msg() when m breaks a rule. */
int proto_encode(const proto_msg *m, uint8_t version, uint8_t *dst, size_t cap, size_t *len);
/* The same into a malloc'd buffer. */
uint8_t *proto_encode_alloc(const proto_msg *m, uint8_t version, size_t *len);

/* The version two hellos agree on: the highest both speak. -1 with err_msg() if none. */
int proto_negotiate(const proto_hello *mine, const proto_hello *theirs, uint8_t *version);

/* Whether a node of this role may send this message type (docs/PROTOCOL.md, "Who sends
 * what"); the connection layer closes a connection whose peer breaks it. */
bool proto_may_send(int role, int type);

#endif
