/* The proxy's client payments (see payee.h). */
#include "node/payee.h"

#include "api/chain_client.h"
#include "base/err.h"
#include "ledger/amount.h"
#include "ledger/boc.h"
#include "ledger/chain.h"
#include "ledger/receipt.h"

#include <inttypes.h>
#include <sodium.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

struct payee {
    chain *ledger;
    keypair key;
    ton_addr addr;          /* the proxy's wallet: the payee of its clients' channels */
    registry_params prices;
};

payee *payee_open(const char *url, const char *key_path) {
    payee *p = calloc(1, sizeof *p);
    registry reg;
    if (!p) {
        err_set("out of memory");
        return NULL;
    }
    if (keys_load(key_path, &p->key) != 0 || addr_of_wallet(p->key.public_key, &p->addr) != 0 ||
        !(p->ledger = chain_client_open(url)))
        goto fail;
    if (chain_registry(p->ledger, &reg) != 0) {
        err_prefix("ledger");
        goto fail;
    }
    p->prices = reg.params;
    registry_free(&reg);
    return p;
fail:
    payee_free(p);
    return NULL;
}

void payee_free(payee *p) {
    if (!p) return;
    if (p->ledger) chain_close(p->ledger);
    keys_wipe(&p->key);
    free(p);
}

int payee_receipt(payee *p, payee_account *a, const uint8_t signer[32], const uint8_t request_hash[32],
                  const uint8_t *boc, size_t len, uint64_t *cost, uint64_t *fee) {
    cell *c = len ? boc_parse(boc, len) : NULL;
    receipt r;
    uint64_t sum;
    int rc = -1;
    if (!c) {
        if (!len) err_set("no receipt");
        return -1;
    }
    if (receipt_verify(c, signer, &r) != RECEIPT_OK) goto done;
    if (memcmp(r.request_hash, request_hash, 32) != 0) {
        err_set("the receipt is for another request");
        goto done;
    }
    if (registry_price(&p->prices, r.prompt_tokens, r.cached_tokens, r.completion_tokens, cost, fee) != 0 ||
        amount_add(a->justified, *cost, &sum, "justified charges") != 0)
        goto done;
    a->justified = sum;
    rc = 0;
done:
    cell_unref(c);
    return rc;
}

int payee_voucher(payee *p, payee_account *a, const uint8_t *boc, size_t len) {
    return inbox_take(&a->in, p->ledger, CHANNEL_CHARGE, &p->addr, a->justified, boc, len);
}

uint8_t *payee_pay_worker(payee *p, payee_payout *w, const uint8_t worker_key[32], uint64_t fee, size_t *len) {
    ton_addr worker;
    chain_ack ack;
    uint64_t total;
    uint8_t *boc = NULL;
    cell *v;
    if (!w->open) {
        /* a fresh nonce per connection: the ledger never reuses a channel address */
        uint64_t nonce = ((uint64_t)time(NULL) << 20) ^ randombytes_uniform(1u << 20);
        if (addr_of_wallet(worker_key, &worker) != 0 ||
            chain_open_channel(p->ledger, &p->key, CHANNEL_PAYOUT, &worker, nonce, PAYOUT_DEPOSIT,
                               p->prices.min_proxy_stake, &w->channel, &ack) != 0) {
            err_prefix("opening a payout channel");
            return NULL;
        }
        w->open = true;
    }
    if (amount_add(w->total, fee, &total, "payout total") != 0) return NULL;
    v = chain_voucher(&p->key, CHANNEL_PAYOUT, &w->channel, total, ++w->query_id);
    if (!v || boc_serialize(v, 0, &boc, len) != 0) boc = NULL;
    cell_unref(v);
    if (boc) w->total = total;
    return boc;
}

int payee_redeem(payee *p, payee_account *a) {
    return inbox_redeem(&a->in, p->ledger, &p->key) < 0 ? -1 : 0;
}

void payee_account_free(payee_account *a) { inbox_free(&a->in); }
