/* Worker receipts: sign and verify, every bit flip rejected, another worker's signature
 * rejected, impossible counts (cached > prompt) rejected even when signed. */
#include "test.h"

#include "base/err.h"
#include "ledger/boc.h"
#include "ledger/receipt.h"

#include <stdlib.h>

static receipt sample(void) {
    receipt r = {.prompt_tokens = 120, .cached_tokens = 64, .completion_tokens = 300};
    for (int i = 0; i < 32; i++) {
        r.request_id[i] = (uint8_t)i;
        r.request_hash[i] = (uint8_t)(0xa0 + i);
        r.model_hash[i] = (uint8_t)(0x40 ^ i);
    }
    return r;
}

TEST(receipt_signed_by_worker_verifies) {
    keypair worker, other;
    receipt r = sample(), got;
    CHECK_EQ_INT(keys_generate(&worker), 0);
    CHECK_EQ_INT(keys_generate(&other), 0);
    cell *signed_r = receipt_sign(&r, &worker);
    CHECK(signed_r != NULL);
    if (!signed_r) return;
    CHECK_EQ_INT(cell_bits(cell_child(signed_r, 0)), 992);
    CHECK_EQ_INT(receipt_verify(signed_r, worker.public_key, &got), RECEIPT_OK);
    CHECK(memcmp(&got, &r, sizeof r) == 0);
    CHECK_EQ_INT(receipt_verify(signed_r, other.public_key, &got), RECEIPT_BAD_SIGNATURE);
    CHECK(strstr(err_msg(), "another worker") != NULL);
    cell_unref(signed_r);
}

TEST(receipt_every_bit_flip_is_rejected) {
    keypair worker;
    receipt r = sample(), got;
    uint8_t *boc;
    size_t len;
    CHECK_EQ_INT(keys_generate(&worker), 0);
    cell *signed_r = receipt_sign(&r, &worker);
    if (!signed_r || boc_serialize(signed_r, 0, &boc, &len)) return;
    for (size_t bit = 0; bit < len * 8; bit++) {
        boc[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
        cell *c = boc_parse(boc, len);
        if (c) CHECK_MSG(receipt_verify(c, worker.public_key, &got) != RECEIPT_OK, "flip of bit %zu accepted", bit);
        cell_unref(c);
        boc[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
    }
    free(boc);
    cell_unref(signed_r);
}

TEST(receipt_with_more_cached_than_prompt_tokens_is_refused) {
    keypair worker;
    receipt r = sample(), got;
    CHECK_EQ_INT(keys_generate(&worker), 0);
    r.cached_tokens = r.prompt_tokens + 1;
    CHECK(receipt_cell(&r) == NULL);
    CHECK(strstr(err_msg(), "121 cached tokens but only 120 prompt tokens") != NULL);
    CHECK(receipt_sign(&r, &worker) == NULL);

    /* the same receipt built by hand and signed: the signature is fine, the content is not */
    cell_builder b;
    cell_build_init(&b);
    cell_store_uint(&b, RECEIPT_TAG, 32);
    cell_store_bytes(&b, r.request_id, 32);
    cell_store_bytes(&b, r.request_hash, 32);
    cell_store_bytes(&b, r.model_hash, 32);
    cell_store_uint(&b, r.prompt_tokens, 64);
    cell_store_uint(&b, r.cached_tokens, 64);
    cell_store_uint(&b, r.completion_tokens, 64);
    cell *body = cell_finish(&b);
    uint8_t sig[64];
    CHECK_EQ_INT(keys_sign(&worker, cell_hash(body), sig), 0);
    cell_store_bytes(&b, sig, 64);
    cell_store_ref(&b, body);
    cell *signed_r = cell_finish(&b);
    CHECK_EQ_INT(receipt_verify(signed_r, worker.public_key, &got), RECEIPT_MALFORMED);
    CHECK(strstr(err_msg(), "malformed receipt") != NULL);
    cell_unref(signed_r);
    cell_unref(body);
}
