/* End-to-end sealing of requests and answers between a client gateway and a worker, so that
 * the proxies between them see ciphertext only (docs/PROTOCOL.md, "End-to-end sealing").
 *
 * Request: the gateway makes a fresh 32-byte payload key, encrypts
 *     endpoint:u8 ‖ body
 * once with XChaCha20-Poly1305 (payload = nonce[24] ‖ ciphertext ‖ tag[16]; associated data:
 * the request's model name, so a proxy cannot pass the request off as another model's), and
 * seals the payload key to each chosen worker's attested X25519 key with a libsodium sealed
 * box (80 bytes each).
 *
 * Answer: the worker encrypts its answer as a libsodium secretstream
 * (XChaCha20-Poly1305, ordered, with an end marker) under
 *     answer key = BLAKE2b-256(key = payload key, "veil answer v1")
 * The first sealed piece starts with the stream's 24-byte header. Pieces decrypt in order
 * only; the last carries the FINAL tag, so a proxy can neither reorder, drop nor cut an
 * answer without the gateway noticing. Inside, the answer is
 *     status:u16 ‖ type_len:u8 ‖ content type ‖ body bytes...
 * spread over the pieces (the first piece holds at least the status and type). */
#ifndef VEIL_SEAL_H
#define VEIL_SEAL_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_LEN 32
#define SEAL_WRAPPED_LEN (32 + crypto_box_SEALBYTES) /* 80 */
#define SEAL_PAYLOAD_OVERHEAD (24 + 16)
#define SEAL_PIECE_OVERHEAD crypto_secretstream_xchacha20poly1305_ABYTES /* 17 */
#define SEAL_HEADER_LEN crypto_secretstream_xchacha20poly1305_HEADERBYTES /* 24 */

typedef struct seal_keypair {
    uint8_t pk[32], sk[32];  /* X25519 */
} seal_keypair;

/* A fresh X25519 key pair; 0, or -1 with err_msg(). */
int seal_keypair_new(seal_keypair *k);
/* Fills key with 32 random bytes; 0, or -1 with err_msg(). */
int seal_new_key(uint8_t key[SEAL_KEY_LEN]);
/* Seals the payload key to a worker's X25519 key. */
void seal_wrap(const uint8_t key[SEAL_KEY_LEN], const uint8_t worker_pk[32],
               uint8_t out[SEAL_WRAPPED_LEN]);
/* Opens a wrapped key addressed to me: 0, or -1 with err_msg(). */
int seal_unwrap(const uint8_t *wrapped, size_t len, const seal_keypair *me,
                uint8_t key[SEAL_KEY_LEN]);

/* The encrypted payload of endpoint ‖ body (malloc'd, *out_len bytes). NULL with err_msg(). */
uint8_t *seal_payload(const uint8_t key[SEAL_KEY_LEN], const char *model, uint8_t endpoint,
                      const void *body, size_t len, size_t *out_len);
/* Opens a payload: the plaintext body (malloc'd, NUL-terminated after *len bytes) and its
 * endpoint byte; NULL with err_msg() when it does not authenticate. */
char *seal_open_payload(const uint8_t key[SEAL_KEY_LEN], const char *model, const uint8_t *p,
                        size_t n, uint8_t *endpoint, size_t *len);

/* The request's id in the worker's receipt (ledger/receipt.h): BLAKE2b-256(key = payload key,
 * "veil request id v1"). Only the gateway and the worker know the payload key, so a proxy can
 * neither predict an id nor pass one request's receipt off as another's, and a fresh key per
 * request makes the id unique without a field in the protocol. */
void seal_request_id(const uint8_t payload_key[SEAL_KEY_LEN], uint8_t id[32]);

/* The answer stream, one direction each. */
typedef struct seal_stream {
    crypto_secretstream_xchacha20poly1305_state st;
    uint8_t key[32];
    bool begun, ended;
} seal_stream;

void seal_stream_init(seal_stream *s, const uint8_t payload_key[SEAL_KEY_LEN]);
void seal_stream_wipe(seal_stream *s);
/* Worker: seals n bytes as the next piece (final: the last one). Returns the malloc'd piece
 * (*out_len bytes), NULL with err_msg() when out of memory or after the final piece. */
uint8_t *seal_stream_push(seal_stream *s, const void *data, size_t n, bool final,
                          size_t *out_len);
/* Gateway: opens the next piece. Returns the malloc'd plaintext (*out_len bytes, may be 0;
 * NUL-terminated), *final set on the last piece; NULL with err_msg() when it does not
 * authenticate, comes out of order, or comes after the final one. */
uint8_t *seal_stream_pull(seal_stream *s, const uint8_t *piece, size_t n, size_t *out_len,
                          bool *final);

#endif
