/* The proxy's client payments (see payee.h). */
#include "node/payee.h"

#include "api/chain_client.h"
#include "base/err.h"
#include "base/log.h"
#include "ledger/amount.h"
#include "ledger/boc.h"
#include "ledger/chain.h"
#include "ledger/receipt.h"
#include "node/accounts.h"

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
    accounts *books;        /* NULL: no accounting file */
};

/* Start-up reconciliation: redeems a voucher a previous run accepted but did not redeem. A
 * refusal because the ledger already has it (the crash came after the redemption) settles it
 * too: the ledger's `paid` says so. */
static int settle(void *ctx, const ton_addr *ch, uint64_t amount, const uint8_t *boc, size_t len) {
    payee *p = ctx;
    cell *v = boc_parse(boc, len);
    chain_ack ack;
    channel c;
    bool found;
    if (!v) return -1;
    if (chain_redeem(p->ledger, &p->key, ch, v, &ack) != 0 &&
        (chain_channel(p->ledger, ch, &c, &found) != 0 || !found || c.paid < amount)) {
        log_warn("proxy: a voucher from a previous run does not redeem (kept for the next start): %s", err_msg());
        cell_unref(v);
        return 0;
    }
    cell_unref(v);
    log_info("proxy: settled a voucher of %llu nano-units from a previous run", (unsigned long long)amount);
    return accounts_redeemed(p->books, ch, amount);
}

payee *payee_open(const char *url, const char *key_path, const char *accounts_path) {
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
    if (accounts_path &&
        (!(p->books = accounts_open(accounts_path)) || accounts_pending(p->books, settle, p) != 0))
        goto fail;
    return p;
fail:
    payee_free(p);
    return NULL;
}

void payee_free(payee *p) {
    if (!p) return;
    if (p->ledger) chain_close(p->ledger);
    accounts_close(p->books);
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
    bool standing = !a->in.bound && a->justified == 0;
    uint64_t cap;
    if (amount_add(a->carried, a->justified, &cap, "justified charges") != 0 ||
        inbox_take(&a->in, p->ledger, CHANNEL_CHARGE, &p->addr, standing ? UINT64_MAX : cap, boc, len) != 0)
        return -1;
    if (standing) {
        a->carried = a->in.last - a->in.ch.paid;
        log_info("proxy: a standing voucher carries %llu nano-units signed before this connection",
                 (unsigned long long)a->carried);
    }
    return p->books ? accounts_put(p->books, &a->in.ch.addr, a->in.last, boc, len) : 0;
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
    int rc = inbox_redeem(&a->in, p->ledger, &p->key);
    if (rc < 0) return -1;
    return rc && p->books ? accounts_redeemed(p->books, &a->in.ch.addr, a->in.redeemed) : 0;
}

void payee_account_free(payee_account *a) { inbox_free(&a->in); }
