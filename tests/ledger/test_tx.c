/* Ledger transactions: every op survives sign -> BOC -> parse with its fields and signature;
 * a padded Coins field, a leftover bit, an unknown op and an altered body are refused. */
#include "test.h"

#include <stdbool.h>
#include <stdlib.h>

#include "base/err.h"
#include "ledger/boc.h"
#include "ledger_testutil.h"

static cell *through_boc(const cell *c) {
    uint8_t *b;
    size_t n;
    if (boc_serialize(c, 0, &b, &n)) return NULL;
    cell *back = boc_parse(b, n);
    free(b);
    return back;
}

TEST(ledger_tx_every_op_round_trips) {
    keypair k = lt_key(9);
    ton_addr a = lt_addr(&k);
    const uint32_t ops[] = {TX_MINT, TX_TRANSFER, TX_OPEN, TX_TOPUP, TX_REDEEM, TX_CLOSE_REQUEST,
                            TX_CLOSE, TX_WITHDRAW, TX_REG_PARAMS, TX_REG_SET, TX_REG_DEL};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        tx t = {.op = ops[i], .to = a, .channel = a, .amount = 123456789, .stake = 5, .nonce = 77,
                .kind = CHANNEL_PAYOUT, .params = registry_default_params(), .list = REGISTRY_PROXY};
        memset(t.key, 0x42, 32);
        snprintf(t.endpoint, sizeof t.endpoint, "host:%zu", i);
        if (ops[i] == TX_REDEEM) t.voucher = lt_voucher(&k, VOUCHER_OP_CHARGE, &a, 10, 1);
        cell *c = lt_sign(t, &k, 1000 + i);
        cell *back = c ? through_boc(c) : NULL;
        tx p;
        bool parsed = back && tx_parse(back, &p) == 0;
        CHECK_MSG(parsed, "%s: %s", tx_op_name(ops[i]), err_msg());
        if (parsed) {
            CHECK(p.op == ops[i] && p.seqno == 1000 + i && memcmp(p.signer, k.public_key, 32) == 0);
            CHECK(tx_signature_ok(back, &p));
            if (ops[i] == TX_OPEN) CHECK(p.amount == 123456789 && p.stake == 5 && p.nonce == 77 && p.kind == 2);
            if (ops[i] == TX_REG_SET) CHECK_EQ_STR(p.endpoint, t.endpoint);
            if (ops[i] == TX_REG_PARAMS) CHECK(p.params.price_per_token == 20 && p.params.proxy_close_delay == 600);
            tx_clear(&p);
        }
        cell_unref(back);
        cell_unref(c);
    }
}

/* A signed_tx of body with this signature (NULL: zeros; parsing does not check it). */
static cell *wrap_sig(cell *body, const uint8_t *sig) {
    static const uint8_t zero[64];
    cell_builder b;
    if (!sig) sig = zero;
    cell_build_init(&b);
    cell_store_bytes(&b, sig, 64);
    cell_store_ref(&b, body);
    cell_unref(body);
    return cell_finish(&b);
}

static cell *wrap(cell *body) { return wrap_sig(body, NULL); }

static cell *transfer_body(unsigned coin_bytes, bool extra_bit) {
    keypair k = lt_key(9);
    ton_addr a = lt_addr(&k);
    cell_builder b;
    cell_build_init(&b);
    cell_store_uint(&b, TX_TRANSFER, 32);
    cell_store_bytes(&b, k.public_key, 32);
    cell_store_uint(&b, 0, 64);
    addr_store(&b, &a);
    cell_store_uint(&b, coin_bytes, 4); /* amount 5 in coin_bytes bytes */
    for (unsigned i = 0; i + 1 < coin_bytes; i++) cell_store_uint(&b, 0, 8);
    cell_store_uint(&b, 5, 8);
    if (extra_bit) cell_store_uint(&b, 1, 1);
    return cell_finish(&b);
}

TEST(ledger_tx_refuses_non_canonical_and_junk) {
    tx p;
    cell *ok = wrap(transfer_body(1, false));
    CHECK_MSG(tx_parse(ok, &p) == 0, "%s", err_msg());
    CHECK(p.amount == 5);
    cell_unref(ok);
    cell *padded = wrap(transfer_body(2, false));
    CHECK_EQ_INT(tx_parse(padded, &p), -1);
    CHECK(strstr(err_msg(), "canonical") != NULL);
    cell_unref(padded);
    cell *extra = wrap(transfer_body(1, true));
    CHECK_EQ_INT(tx_parse(extra, &p), -1);
    CHECK(strstr(err_msg(), "left over") != NULL);
    cell_unref(extra);
    cell_builder b;
    cell_build_init(&b);
    cell_store_uint(&b, 0x12345678, 32);
    cell_store_bytes(&b, (const uint8_t *)"01234567890123456789012345678901", 32);
    cell_store_uint(&b, 0, 64);
    cell *unknown = wrap(cell_finish(&b));
    CHECK_EQ_INT(tx_parse(unknown, &p), -1);
    CHECK(strstr(err_msg(), "unknown") != NULL);
    cell_unref(unknown);
    /* a signed transfer whose amount is changed after signing: its signature no longer holds */
    keypair k = lt_key(9), other = lt_key(10);
    tx t = {.op = TX_TRANSFER, .to = lt_addr(&other), .amount = 5};
    cell *c = lt_sign(t, &k, 0);
    CHECK(tx_parse(c, &p) == 0 && tx_signature_ok(c, &p));
    p.amount = 6;
    cell *altered = wrap_sig(tx_body(&p), p.signature);
    tx q;
    CHECK(tx_parse(altered, &q) == 0 && q.amount == 6);
    CHECK(!tx_signature_ok(altered, &q));
    cell_unref(altered);
    cell_unref(c);
}
