/* Helpers for the ledger tests: deterministic keys and one-line transaction builders. */
#ifndef VEIL_LEDGER_TESTUTIL_H
#define VEIL_LEDGER_TESTUTIL_H

#include <string.h>

#include "ledger/addr.h"
#include "ledger/keys.h"
#include "ledger/tx.h"
#include "ledger/voucher.h"

/* The key whose seed is 32 bytes of n. */
static inline keypair lt_key(uint8_t n) {
    uint8_t seed[32];
    keypair k;
    memset(seed, n, 32);
    keys_from_seed(seed, &k);
    return k;
}

static inline ton_addr lt_addr(const keypair *k) {
    ton_addr a;
    addr_of_wallet(k->public_key, &a);
    return a;
}

/* Signs t with k at seqno; the caller owns the cell. t's voucher reference is released. */
static inline cell *lt_sign(tx t, const keypair *k, uint64_t seqno) {
    t.seqno = seqno;
    cell *c = tx_sign(&t, k);
    tx_clear(&t);
    return c;
}

static inline cell *lt_voucher(const keypair *payer, uint32_t op, const ton_addr *channel, uint64_t total,
                               uint64_t qid) {
    voucher v = {.op = op, .query_id = qid, .amount = total, .channel = *channel};
    return voucher_sign(&v, payer);
}

#endif
