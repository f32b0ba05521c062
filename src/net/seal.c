/* End-to-end sealing (see seal.h): sealed boxes for the payload key, XChaCha20-Poly1305 for
 * the request, a secretstream for the answer. */
#include "net/seal.h"

#include "base/err.h"

#include <stdlib.h>
#include <string.h>

static const char ANSWER_CONTEXT[] = "veil answer v1";
static const char REQUEST_ID_CONTEXT[] = "veil request id v1";

/* sodium_init is idempotent and thread-safe; every entry point that draws randomness runs it
 * so no caller depends on start-up order. */
int seal_keypair_new(seal_keypair *k) {
    if (sodium_init() < 0) return err_set("libsodium failed to initialise");
    crypto_box_keypair(k->pk, k->sk);
    return 0;
}

int seal_new_key(uint8_t key[SEAL_KEY_LEN]) {
    if (sodium_init() < 0) return err_set("libsodium failed to initialise");
    randombytes_buf(key, SEAL_KEY_LEN);
    return 0;
}

void seal_wrap(const uint8_t key[SEAL_KEY_LEN], const uint8_t worker_pk[32],
               uint8_t out[SEAL_WRAPPED_LEN]) {
    crypto_box_seal(out, key, SEAL_KEY_LEN, worker_pk);
}

int seal_unwrap(const uint8_t *wrapped, size_t len, const seal_keypair *me,
                uint8_t key[SEAL_KEY_LEN]) {
    if (len != SEAL_WRAPPED_LEN) return err_set("sealed key: %zu bytes, want %d", len, SEAL_WRAPPED_LEN);
    if (crypto_box_seal_open(key, wrapped, len, me->pk, me->sk) != 0)
        return err_set("sealed key: not addressed to this worker, or altered");
    return 0;
}

uint8_t *seal_payload(const uint8_t key[SEAL_KEY_LEN], const char *model, uint8_t endpoint,
                      const void *body, size_t len, size_t *out_len) {
    size_t n = 1 + len;
    uint8_t *plain = malloc(n), *out = malloc(24 + n + 16);
    unsigned long long clen;
    if (!plain || !out) {
        free(plain);
        free(out);
        err_set("out of memory sealing a request");
        return NULL;
    }
    plain[0] = endpoint;
    if (len) memcpy(plain + 1, body, len);
    randombytes_buf(out, 24);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + 24, &clen, plain, n, (const uint8_t *)model,
                                               strlen(model), NULL, out, key);
    sodium_memzero(plain, n);
    free(plain);
    *out_len = 24 + (size_t)clen;
    return out;
}

char *seal_open_payload(const uint8_t key[SEAL_KEY_LEN], const char *model, const uint8_t *p,
                        size_t n, uint8_t *endpoint, size_t *len) {
    unsigned long long plen;
    uint8_t *plain;
    if (n < SEAL_PAYLOAD_OVERHEAD + 1) {
        err_set("sealed payload: %zu bytes is too short", n);
        return NULL;
    }
    if (!(plain = malloc(n - SEAL_PAYLOAD_OVERHEAD + 1))) {
        err_set("out of memory opening a request");
        return NULL;
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, p + 24, n - 24,
                                                   (const uint8_t *)model, strlen(model), p, key) != 0) {
        free(plain);
        err_set("sealed payload: does not authenticate (altered, or another model's)");
        return NULL;
    }
    *endpoint = plain[0];
    memmove(plain, plain + 1, (size_t)plen - 1);
    plain[plen - 1] = 0;
    *len = (size_t)plen - 1;
    return (char *)plain;
}

void seal_stream_init(seal_stream *s, const uint8_t payload_key[SEAL_KEY_LEN]) {
    memset(s, 0, sizeof *s);
    crypto_generichash(s->key, sizeof s->key, (const uint8_t *)ANSWER_CONTEXT,
                       sizeof ANSWER_CONTEXT - 1, payload_key, SEAL_KEY_LEN);
}

void seal_request_id(const uint8_t payload_key[SEAL_KEY_LEN], uint8_t id[32]) {
    crypto_generichash(id, 32, (const uint8_t *)REQUEST_ID_CONTEXT, sizeof REQUEST_ID_CONTEXT - 1, payload_key,
                       SEAL_KEY_LEN);
}

void seal_stream_wipe(seal_stream *s) { sodium_memzero(s, sizeof *s); }

uint8_t *seal_stream_push(seal_stream *s, const void *data, size_t n, bool final,
                          size_t *out_len) {
    size_t head = s->begun ? 0 : SEAL_HEADER_LEN;
    uint8_t *out;
    if (s->ended) {
        err_set("answer stream: already ended");
        return NULL;
    }
    if (!(out = malloc(head + n + SEAL_PIECE_OVERHEAD))) {
        err_set("out of memory sealing an answer");
        return NULL;
    }
    if (!s->begun) crypto_secretstream_xchacha20poly1305_init_push(&s->st, out, s->key);
    s->begun = true;
    crypto_secretstream_xchacha20poly1305_push(
        &s->st, out + head, NULL, data, n, NULL, 0,
        final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
    s->ended = final;
    *out_len = head + n + SEAL_PIECE_OVERHEAD;
    return out;
}

uint8_t *seal_stream_pull(seal_stream *s, const uint8_t *piece, size_t n, size_t *out_len,
                          bool *final) {
    uint8_t *out;
    unsigned char tag;
    unsigned long long mlen;
    if (s->ended) {
        err_set("answer stream: a piece after the final one");
        return NULL;
    }
    if (!s->begun) {
        if (n < SEAL_HEADER_LEN ||
            crypto_secretstream_xchacha20poly1305_init_pull(&s->st, piece, s->key) != 0) {
            err_set("answer stream: bad header");
            return NULL;
        }
        s->begun = true;
        piece += SEAL_HEADER_LEN;
        n -= SEAL_HEADER_LEN;
    }
    if (n < SEAL_PIECE_OVERHEAD) {
        err_set("answer stream: a piece of %zu bytes is too short", n);
        return NULL;
    }
    if (!(out = malloc(n - SEAL_PIECE_OVERHEAD + 1))) {
        err_set("out of memory opening an answer");
        return NULL;
    }
    if (crypto_secretstream_xchacha20poly1305_pull(&s->st, out, &mlen, &tag, piece, n, NULL, 0) != 0) {
        free(out);
        err_set("answer stream: a piece does not authenticate (altered or out of order)");
        return NULL;
    }
    out[mlen] = 0;
    *out_len = (size_t)mlen;
    *final = s->ended = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    return out;
}
