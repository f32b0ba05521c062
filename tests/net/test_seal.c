/* End-to-end sealing: a request opens only with the addressed worker's key and the model it
 * was sealed for; an answer stream opens piece by piece in order, and any tampering,
 * reordering, truncation or replay after the end is detected. */
#include "base/err.h"
#include "net/seal.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

TEST(net_seal_request_opens_only_for_its_worker_and_model) {
    seal_keypair w1, w2;
    uint8_t key[SEAL_KEY_LEN], got[SEAL_KEY_LEN], wrapped[SEAL_WRAPPED_LEN];
    const char body[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"secret\"}]}";
    size_t n, len;
    uint8_t ep = 0;
    CHECK(seal_keypair_new(&w1) == 0 && seal_keypair_new(&w2) == 0 && seal_new_key(key) == 0);
    seal_wrap(key, w1.pk, wrapped);
    CHECK(seal_unwrap(wrapped, sizeof wrapped, &w2, got) == -1);
    CHECK(seal_unwrap(wrapped, sizeof wrapped - 1, &w1, got) == -1);
    CHECK(seal_unwrap(wrapped, sizeof wrapped, &w1, got) == 0);
    CHECK(memcmp(got, key, sizeof key) == 0);
    uint8_t *p = seal_payload(key, "m1", 1, body, strlen(body), &n);
    CHECK(p != NULL);
    CHECK_EQ_INT(n, strlen(body) + 1 + SEAL_PAYLOAD_OVERHEAD);
    CHECK(memmem(p, n, "secret", 6) == NULL);
    char *plain = seal_open_payload(key, "m1", p, n, &ep, &len);
    CHECK(plain != NULL);
    CHECK_EQ_INT(ep, 1);
    CHECK_EQ_INT(len, strlen(body));
    CHECK(memcmp(plain, body, len) == 0);
    free(plain);
    CHECK(seal_open_payload(key, "m2", p, n, &ep, &len) == NULL); /* another model */
    CHECK(strstr(err_msg(), "authenticate") != NULL);
    p[30] ^= 1;
    CHECK(seal_open_payload(key, "m1", p, n, &ep, &len) == NULL); /* altered */
    CHECK(seal_open_payload(key, "m1", p, 10, &ep, &len) == NULL); /* too short */
    free(p);
}

TEST(net_seal_answer_stream_in_order_and_complete) {
    uint8_t key[SEAL_KEY_LEN];
    seal_stream out, in;
    size_t n[3], m;
    bool final;
    uint8_t *piece[3];
    const char *text[3] = {"\x00\xc8\x11text/event-stream", "data: hello\n\n", ""};
    size_t tlen[3] = {20, 13, 0};
    CHECK(seal_new_key(key) == 0);
    seal_stream_init(&out, key);
    for (int i = 0; i < 3; i++) {
        piece[i] = seal_stream_push(&out, text[i], tlen[i], i == 2, &n[i]);
        CHECK(piece[i] != NULL);
    }
    CHECK(seal_stream_push(&out, "x", 1, false, &m) == NULL); /* nothing after the end */
    CHECK_EQ_INT(n[0], SEAL_HEADER_LEN + tlen[0] + SEAL_PIECE_OVERHEAD);

    /* in order: every piece opens, the last says final */
    seal_stream_init(&in, key);
    for (int i = 0; i < 3; i++) {
        uint8_t *plain = seal_stream_pull(&in, piece[i], n[i], &m, &final);
        CHECK(plain != NULL);
        CHECK_EQ_INT(m, tlen[i]);
        CHECK(memcmp(plain, text[i], m) == 0);
        CHECK(final == (i == 2));
        free(plain);
    }
    CHECK(seal_stream_pull(&in, piece[2], n[2], &m, &final) == NULL); /* replay after the end */

    /* out of order: the second piece first does not open */
    seal_stream_init(&in, key);
    uint8_t *first = seal_stream_pull(&in, piece[0], n[0], &m, &final);
    CHECK(first != NULL);
    free(first);
    CHECK(seal_stream_pull(&in, piece[2], n[2], &m, &final) == NULL);

    /* another key, or one flipped bit: nothing opens */
    uint8_t other[SEAL_KEY_LEN];
    CHECK(seal_new_key(other) == 0);
    seal_stream_init(&in, other);
    CHECK(seal_stream_pull(&in, piece[0], n[0], &m, &final) == NULL);
    seal_stream_init(&in, key);
    piece[0][SEAL_HEADER_LEN + 3] ^= 1;
    CHECK(seal_stream_pull(&in, piece[0], n[0], &m, &final) == NULL);
    for (int i = 0; i < 3; i++) free(piece[i]);
    seal_stream_wipe(&in);
    seal_stream_wipe(&out);
}

/* The receipt's request id: the same for both ends of one request, different per key, and not
 * the key itself (the id travels past the proxy in the receipt). */
TEST(net_seal_request_id_per_key) {
    uint8_t k1[SEAL_KEY_LEN], k2[SEAL_KEY_LEN], a[32], b[32], c[32];
    CHECK(seal_new_key(k1) == 0 && seal_new_key(k2) == 0);
    seal_request_id(k1, a);
    seal_request_id(k1, b);
    seal_request_id(k2, c);
    CHECK(memcmp(a, b, 32) == 0);
    CHECK(memcmp(a, c, 32) != 0);
    CHECK(memcmp(a, k1, 32) != 0);
}
