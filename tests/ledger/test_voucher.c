/* Vouchers: byte-exact agreement with a voucher built and signed by @ton/core + @ton/crypto;
 * forged, replayed, stale, cross-channel, wrong-op and wrong-signer vouchers each rejected
 * with their own status; checked arithmetic on totals. */
#include "test.h"

#include "base/err.h"
#include "ledger/amount.h"
#include "ledger/boc.h"
#include "ledger/voucher.h"
#include "ton_vectors.h"

#include <stdlib.h>

/* The proxy key of the vectors (seed 1..32), and channel 0:11..11. */
static void setup(keypair *proxy, ton_addr *channel) {
    uint8_t seed[32];
    for (int i = 0; i < 32; i++) seed[i] = (uint8_t)(i + 1);
    keys_from_seed(seed, proxy);
    channel->workchain = 0;
    memset(channel->hash, 0x11, 32);
}

static voucher charge(const ton_addr *channel, uint64_t amount) {
    voucher v = {.op = VOUCHER_OP_CHARGE, .query_id = 0x1122334455667788ull, .amount = amount, .channel = *channel};
    return v;
}

static voucher_expect expect(const keypair *proxy, const ton_addr *channel, uint64_t last) {
    voucher_expect e = {VOUCHER_OP_CHARGE, proxy->public_key, channel, last, UINT64_MAX};
    return e;
}

TEST(voucher_matches_ton_core) {
    keypair proxy;
    ton_addr channel;
    setup(&proxy, &channel);
    voucher v = charge(&channel, 1000000);
    cell *payload = voucher_payload(&v);
    cell *body = voucher_sign(&v, &proxy);
    CHECK(payload && body);
    if (!payload || !body) return;
    CHECK(tv_hash_is(cell_hash(payload), TV_VOUCHER_PAYLOAD_HASH));
    CHECK(tv_hash_is(cell_hash(body), TV_VOUCHER_BODY_HASH));
    char sig[129];
    hex_encode(v.signature, 64, sig);
    CHECK_EQ_STR(sig, TV_VOUCHER_SIGNATURE);

    uint8_t *boc;
    size_t len, want_len;
    uint8_t *want = tv_bytes(TV_VOUCHER_BOC, &want_len);
    CHECK_EQ_INT(boc_serialize(body, 0, &boc, &len), 0);
    CHECK(len == want_len && memcmp(boc, want, len) == 0);

    /* and the other way: what @ton/core wrote verifies here */
    cell *theirs = boc_parse(want, want_len);
    CHECK_MSG(theirs != NULL, "%s", err_msg());
    voucher_expect e = expect(&proxy, &channel, 0);
    voucher got = {0};
    if (theirs) CHECK_EQ_INT(voucher_verify(theirs, &e, &got), VOUCHER_OK);
    CHECK(got.amount == 1000000 && got.query_id == 0x1122334455667788ull && !got.has_excesses);
    cell_unref(theirs);
    free(want);
    free(boc);
    cell_unref(payload);
    cell_unref(body);
}

TEST(voucher_every_bit_flip_is_rejected) {
    keypair proxy;
    ton_addr channel;
    setup(&proxy, &channel);
    voucher v = charge(&channel, 5000);
    cell *body = voucher_sign(&v, &proxy);
    uint8_t *boc;
    size_t len;
    int seen[8] = {0};
    voucher_expect e = expect(&proxy, &channel, 0);
    CHECK(body != NULL);
    if (!body || boc_serialize(body, 0, &boc, &len)) return;
    for (size_t bit = 0; bit < len * 8; bit++) {
        boc[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
        cell *c = boc_parse(boc, len);
        if (c) {
            int rc = voucher_verify(c, &e, NULL);
            CHECK_MSG(rc != VOUCHER_OK, "a flip of bit %zu was accepted", bit);
            if (rc < 0 && rc >= -7) seen[-rc]++;
            cell_unref(c);
        }
        boc[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
    }
    /* flips in the payload and signature break the signature; flips in the envelope's op or
     * query id break the copy check; flips in the address tag break the layout */
    CHECK(seen[-VOUCHER_BAD_SIGNATURE] > 64 * 8);
    CHECK(seen[-VOUCHER_MISMATCH] == 32 + 64);
    CHECK(seen[-VOUCHER_MALFORMED] > 0);
    free(boc);
    cell_unref(body);
}

TEST(voucher_replayed_and_stale_are_rejected) {
    keypair proxy;
    ton_addr channel;
    setup(&proxy, &channel);
    uint64_t last = 0;
    cell *old = NULL;
    for (uint64_t total = 100; total <= 500; total += 100) {
        voucher v = charge(&channel, total);
        cell *body = voucher_sign(&v, &proxy);
        voucher_expect e = expect(&proxy, &channel, last);
        CHECK_EQ_INT(voucher_verify(body, &e, &v), VOUCHER_OK);
        last = v.amount;
        /* the same voucher again gains nothing */
        e.last_amount = last;
        CHECK_EQ_INT(voucher_verify(body, &e, NULL), VOUCHER_STALE);
        CHECK(strstr(err_msg(), "replayed or stale") != NULL);
        if (total == 200) old = cell_ref(body);
        cell_unref(body);
    }
    voucher_expect e = expect(&proxy, &channel, last);
    CHECK_EQ_INT(voucher_verify(old, &e, NULL), VOUCHER_STALE);
    CHECK(strstr(err_msg(), "total 200 is not above the last accepted total 500") != NULL);
    cell_unref(old);
}

TEST(voucher_other_channel_op_or_signer_is_rejected) {
    keypair proxy, mallory;
    ton_addr channel, other;
    setup(&proxy, &channel);
    CHECK_EQ_INT(keys_generate(&mallory), 0);
    other = channel;
    other.hash[31] ^= 1;
    voucher_expect e = expect(&proxy, &channel, 0);

    voucher v = charge(&other, 100);
    cell *body = voucher_sign(&v, &proxy);
    CHECK_EQ_INT(voucher_verify(body, &e, NULL), VOUCHER_WRONG_CHANNEL);
    CHECK(strstr(err_msg(), "not this channel 0:1111") != NULL);
    cell_unref(body);

    v = charge(&channel, 100);
    body = voucher_sign(&v, &mallory);
    CHECK_EQ_INT(voucher_verify(body, &e, NULL), VOUCHER_BAD_SIGNATURE);
    cell_unref(body);

    v = charge(&channel, 100);
    v.op = VOUCHER_OP_PAYOUT;
    body = voucher_sign(&v, &proxy);
    CHECK_EQ_INT(voucher_verify(body, &e, NULL), VOUCHER_WRONG_OP);
    e.op = VOUCHER_OP_PAYOUT;
    CHECK_EQ_INT(voucher_verify(body, &e, NULL), VOUCHER_OK);
    cell_unref(body);

    e = expect(&proxy, &channel, 0);
    e.max_amount = 99;
    v = charge(&channel, 100);
    body = voucher_sign(&v, &proxy);
    CHECK_EQ_INT(voucher_verify(body, &e, NULL), VOUCHER_OVER_LIMIT);
    e.max_amount = 100;
    CHECK_EQ_INT(voucher_verify(body, &e, NULL), VOUCHER_OK);
    cell_unref(body);

    /* each failure has a status of its own */
    static const int all[] = {VOUCHER_OK, VOUCHER_MALFORMED, VOUCHER_BAD_SIGNATURE, VOUCHER_MISMATCH,
                              VOUCHER_WRONG_OP, VOUCHER_WRONG_CHANNEL, VOUCHER_STALE, VOUCHER_OVER_LIMIT};
    for (size_t i = 0; i < 8; i++)
        for (size_t j = i + 1; j < 8; j++) CHECK(strcmp(voucher_status_name(all[i]), voucher_status_name(all[j])) != 0);
}

TEST(voucher_envelope_tampering_and_trailing_data_are_rejected) {
    keypair proxy;
    ton_addr channel;
    setup(&proxy, &channel);
    voucher v = charge(&channel, 100), parsed;
    voucher_expect e = expect(&proxy, &channel, 0);
    cell *body = voucher_sign(&v, &proxy);

    /* another query id on the envelope only */
    voucher w = v;
    w.query_id ^= 1;
    cell_builder b;
    cell *payload = voucher_payload(&v);
    cell_build_init(&b);
    cell_store_uint(&b, w.op, 32);
    cell_store_uint(&b, w.query_id, 64);
    addr_store_none(&b);
    cell_store_bytes(&b, v.signature, 64);
    cell_store_ref(&b, payload);
    cell *tampered = cell_finish(&b);
    CHECK_EQ_INT(voucher_verify(tampered, &e, NULL), VOUCHER_MISMATCH);
    CHECK_EQ_INT(voucher_parse(tampered, &parsed), VOUCHER_MISMATCH);
    cell_unref(tampered);

    /* the signed body plus one extra bit */
    cell_build_init(&b);
    cell_store_uint(&b, v.op, 32);
    cell_store_uint(&b, v.query_id, 64);
    addr_store_none(&b);
    cell_store_bytes(&b, v.signature, 64);
    cell_store_ref(&b, payload);
    cell_store_uint(&b, 0, 1);
    cell *longer = cell_finish(&b);
    CHECK_EQ_INT(voucher_verify(longer, &e, NULL), VOUCHER_MALFORMED);
    CHECK(strstr(err_msg(), "voucher body: 1 bits and 0 references left over") != NULL);
    cell_unref(longer);

    /* a payload with an extra ref, signed properly, is still not a voucher */
    cell_build_init(&b);
    cell_store_uint(&b, v.op, 32);
    cell_store_uint(&b, v.query_id, 64);
    cell_store_uint(&b, v.amount, 64);
    addr_store(&b, &channel);
    cell_store_ref(&b, payload);
    cell *odd = cell_finish(&b);
    uint8_t sig[64];
    keys_sign(&proxy, cell_hash(odd), sig);
    cell_build_init(&b);
    cell_store_uint(&b, v.op, 32);
    cell_store_uint(&b, v.query_id, 64);
    addr_store_none(&b);
    cell_store_bytes(&b, sig, 64);
    cell_store_ref(&b, odd);
    cell *odd_body = cell_finish(&b);
    CHECK_EQ_INT(voucher_verify(odd_body, &e, NULL), VOUCHER_MALFORMED);
    cell_unref(odd_body);
    cell_unref(odd);
    cell_unref(payload);

    CHECK_EQ_INT(voucher_parse(body, &parsed), VOUCHER_OK);
    CHECK(parsed.amount == 100);
    cell_unref(body);
}

TEST(voucher_repacked_with_excesses_address_still_verifies) {
    keypair proxy;
    ton_addr channel;
    setup(&proxy, &channel);
    voucher v = charge(&channel, 777), held;
    voucher_expect e = expect(&proxy, &channel, 0);
    cell *body = voucher_sign(&v, &proxy);
    CHECK_EQ_INT(voucher_parse(body, &held), VOUCHER_OK);
    held.has_excesses = true;
    held.excesses_to.workchain = 0;
    memset(held.excesses_to.hash, 0x42, 32);
    cell *repacked = voucher_body(&held);
    CHECK(!cell_equal(repacked, body));
    voucher got;
    CHECK_EQ_INT(voucher_verify(repacked, &e, &got), VOUCHER_OK);
    CHECK(got.has_excesses && addr_equal(&got.excesses_to, &held.excesses_to));
    cell_unref(repacked);
    cell_unref(body);
}

TEST(voucher_totals_use_checked_arithmetic) {
    ton_addr channel = {0};
    voucher v = charge(&channel, UINT64_MAX - 5);
    CHECK_EQ_INT(voucher_add(&v, 5), 0);
    CHECK(v.amount == UINT64_MAX);
    CHECK_EQ_INT(voucher_add(&v, 1), -1);
    CHECK(strstr(err_msg(), "voucher total: 18446744073709551615 + 1 overflows") != NULL);
    CHECK(v.amount == UINT64_MAX);

    uint64_t r = 3;
    CHECK_EQ_INT(amount_mul(UINT64_MAX / 2, 3, &r, "price"), -1);
    CHECK(r == 3);
    CHECK_EQ_INT(amount_mul(1000, 19, &r, "price"), 0);
    CHECK(r == 19000);
    CHECK_EQ_INT(amount_sub(5, 6, &r, "balance"), -1);
    CHECK(strstr(err_msg(), "balance: 5 - 6 is negative") != NULL);
    CHECK_EQ_INT(amount_sub(6, 5, &r, "balance"), 0);
    CHECK(r == 1);
    CHECK_EQ_INT(amount_add(UINT64_MAX, 0, &r, "sum"), 0);
}
