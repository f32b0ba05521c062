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

/* The proxy's payout channel to one worker payout key. */
typedef struct payout {
    struct payout *next;
    uint8_t worker[32];
    ton_addr channel;
    uint64_t total;     /* cumulative fee signed so far */
    uint64_t funds;     /* deposit + stake: what the channel can pay */
    uint64_t query_id;
} payout;

struct payee {
    chain *ledger;
    keypair key;
    ton_addr addr;          /* the proxy's wallet: the payee of its clients' channels */
    registry_params prices;
    accounts *books;        /* NULL: no accounting file */
    payout *payouts;        /* a list: a proxy pays tens of workers, a scan is cheap */
};

/* Start-up reconciliation: redeems a voucher a previous run accepted but did not redeem. */
static int settle(void *ctx, const ton_addr *ch, uint64_t amount, const uint8_t *boc, size_t len) {
    payee *p = ctx;
    return inbox_settle(p->ledger, &p->key, ch, amount, boc, len, "proxy") ? accounts_redeemed(p->books, ch, amount)
                                                                           : 0;
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
    while (p->payouts) {
        payout *w = p->payouts;
        p->payouts = w->next;
        free(w);
    }
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
    int rc;
    if (amount_add(a->carried, a->justified, &cap, "justified charges") != 0 ||
        (rc = inbox_take(&a->in, p->ledger, CHANNEL_CHARGE, &p->addr, standing ? UINT64_MAX : cap, boc, len)) < 0)
        return -1;
    if (rc == 1) return 0; /* a total we hold already */
    if (standing) {
        a->carried = a->in.last - a->in.ch.paid;
        log_info("proxy: a standing voucher carries %llu nano-units signed before this connection",
                 (unsigned long long)a->carried);
    }
    return p->books ? accounts_put(p->books, &a->in.ch.addr, a->in.last, boc, len) : 0;
}

/* The payout channel to worker: known, else from the accounting file (if still open on the
 * ledger), else (when open_new) a new one, recorded at once so a restart finds it. 0 with *out
 * (NULL when !open_new and there is none), or -1 with err_msg(). */
static int find_payout(payee *p, const uint8_t worker[32], bool open_new, payout **out) {
    payout *w;
    ton_addr to;
    chain_ack ack;
    channel ch;
    bool found = false;
    *out = NULL;
    for (w = p->payouts; w; w = w->next)
        if (memcmp(w->worker, worker, 32) == 0) {
            *out = w;
            return 0;
        }
    if (!(w = calloc(1, sizeof *w))) return err_set("out of memory");
    memcpy(w->worker, worker, 32);
    if (p->books && accounts_payout(p->books, worker, &w->channel, &w->total, &found) != 0) goto fail;
    if (found && chain_channel(p->ledger, &w->channel, &ch, &found) != 0) goto fail;
    if (found && ch.kind == CHANNEL_PAYOUT && ch.status == CHANNEL_OPEN) {
        if (ch.paid > w->total) w->total = ch.paid;
        if (amount_add(ch.deposit, ch.stake, &w->funds, "payout funds") != 0) goto fail;
    } else if (!open_new) {
        free(w);
        return 0;
    } else {
        /* a fresh nonce: the ledger never reuses a channel address. The address is recorded
         * before the channel opens, so a proxy killed in between finds it at restart (and one
         * that never opened is replaced then). */
        uint64_t nonce = ((uint64_t)time(NULL) << 20) ^ randombytes_uniform(1u << 20);
        w->total = 0;
        if (addr_of_wallet(worker, &to) != 0 ||
            channel_address(CHANNEL_PAYOUT, &p->addr, &to, nonce, &w->channel) != 0 ||
            (p->books && accounts_payout_put(p->books, worker, &w->channel, 0) != 0))
            goto fail;
        if (chain_open_channel(p->ledger, &p->key, CHANNEL_PAYOUT, &to, nonce, PAYOUT_DEPOSIT,
                               p->prices.min_proxy_stake, &w->channel, &ack) != 0 ||
            amount_add(PAYOUT_DEPOSIT, p->prices.min_proxy_stake, &w->funds, "payout funds") != 0) {
            err_prefix("opening a payout channel");
            goto fail;
        }
    }
    w->next = p->payouts;
    p->payouts = w;
    *out = w;
    return 0;
fail:
    free(w);
    return -1;
}

static uint8_t *sign_payout(payee *p, payout *w, uint64_t total, size_t *len) {
    uint8_t *boc = NULL;
    cell *v = chain_voucher(&p->key, CHANNEL_PAYOUT, &w->channel, total, ++w->query_id);
    if (!v || boc_serialize(v, 0, &boc, len) != 0) boc = NULL;
    cell_unref(v);
    return boc;
}

uint8_t *payee_pay_worker(payee *p, const uint8_t worker[32], uint64_t fee, size_t *len) {
    payout *w;
    chain_ack ack;
    uint64_t total, more, funds;
    uint8_t *boc;
    if (find_payout(p, worker, true, &w) != 0 || amount_add(w->total, fee, &total, "payout total") != 0) return NULL;
    if (total > w->funds) {
        more = total - w->funds > PAYOUT_DEPOSIT ? total - w->funds : PAYOUT_DEPOSIT;
        if (amount_add(w->funds, more, &funds, "payout funds") != 0 ||
            chain_topup(p->ledger, &p->key, &w->channel, more, &ack) != 0) {
            err_prefix("topping up a payout channel");
            return NULL;
        }
        w->funds = funds;
    }
    if (!(boc = sign_payout(p, w, total, len))) return NULL;
    /* recorded before it goes: a restarted proxy must never sign a lower total */
    if (p->books && accounts_payout_put(p->books, worker, &w->channel, total) != 0) {
        free(boc);
        return NULL;
    }
    w->total = total;
    return boc;
}

int payee_standing_payout(payee *p, const uint8_t worker[32], uint8_t **boc, size_t *len) {
    payout *w;
    *boc = NULL;
    *len = 0;
    if (find_payout(p, worker, false, &w) != 0) return -1;
    if (!w || w->total == 0) return 0;
    return (*boc = sign_payout(p, w, w->total, len)) ? 0 : -1;
}

int payee_redeem(payee *p, payee_account *a) {
    int rc = inbox_redeem(&a->in, p->ledger, &p->key);
    if (rc < 0) return -1;
    return rc && p->books ? accounts_redeemed(p->books, &a->in.ch.addr, a->in.redeemed) : 0;
}

void payee_account_free(payee_account *a) { inbox_free(&a->in); }
