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
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The proxy's payout channel to one worker payout key. `total` is what the worker has earned on
 * `channel`: recorded in the accounting file before anything is signed for it, so a fee the
 * proxy cannot pay yet (the channel cannot be funded) is owed, not lost, and goes out with the
 * next voucher the channel can cover. */
typedef struct payout {
    struct payout *next;
    uint8_t worker[32];
    ton_addr channel;
    uint64_t total;     /* cumulative fee earned on channel (>= every total signed on it) */
    uint64_t sent;      /* the highest total this run signed on channel */
    uint64_t funds;     /* deposit + stake, as last known */
    uint64_t nonce;     /* with fresh: the nonce channel's address was made from */
    bool live;          /* channel is open (or closing) on the ledger, as last known */
    bool fresh;         /* channel is an address this run chose and has not opened yet */
    bool signed_since;  /* a voucher went out since the ledger was last asked about channel */
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
    chain *c = chain_client_open(url);
    return c ? payee_open_chain(c, key_path, accounts_path) : NULL;
}

payee *payee_open_chain(chain *c, const char *key_path, const char *accounts_path) {
    payee *p = calloc(1, sizeof *p);
    registry reg;
    if (!p) {
        chain_close(c);
        err_set("out of memory");
        return NULL;
    }
    p->ledger = c;
    if (keys_load(key_path, &p->key) != 0 || addr_of_wallet(p->key.public_key, &p->addr) != 0) goto fail;
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

/* Chooses a new address for w's channel (a fresh nonce: the ledger never reuses an address)
 * and records it with carry, what the worker is owed on it from the start. The old channel's
 * row is replaced, so the owed amount moves in one write. The channel opens when a voucher
 * must go out (cover). 0, or -1 with err_msg() (w unchanged). */
static int renew(payee *p, payout *w, uint64_t carry) {
    uint64_t nonce = ((uint64_t)time(NULL) << 20) ^ randombytes_uniform(1u << 20);
    ton_addr to, ch;
    if (addr_of_wallet(w->worker, &to) != 0 || channel_address(CHANNEL_PAYOUT, &p->addr, &to, nonce, &ch) != 0 ||
        (p->books && accounts_payout_put(p->books, w->worker, &ch, carry) != 0))
        return -1;
    w->channel = ch;
    w->nonce = nonce;
    w->total = carry;
    w->sent = w->funds = 0;
    w->live = false;
    w->fresh = true;
    return 0;
}

/* Asks the ledger about w's channel. Open, or closing (it still pays within its funds): its
 * funds are noted. Closed or withdrawn (the worker closed it, or the proxy's operator did):
 * vouchers on it no longer redeem, so what the worker earned on it and was not paid moves to a
 * new channel, and the old one's remainder is withdrawn. Not on the ledger: an address a run
 * recorded but never opened (it crashed, or the open was refused) is replaced, the whole total
 * owed. 0, or -1 with err_msg(). */
static int sync(payee *p, payout *w) {
    chain_ack ack;
    channel ch;
    bool found;
    if (chain_channel(p->ledger, &w->channel, &ch, &found) != 0) return err_prefix("ledger");
    if (found && ch.kind == CHANNEL_PAYOUT && (ch.status == CHANNEL_OPEN || ch.status == CHANNEL_CLOSING)) {
        if (amount_add(ch.deposit, ch.stake, &w->funds, "payout funds") != 0) return -1;
        if (ch.paid > w->total) w->total = ch.paid;
        w->live = true;
        w->fresh = false;
        return 0;
    }
    if (!found) return renew(p, w, w->total);
    if (renew(p, w, w->total > ch.paid ? w->total - ch.paid : 0) != 0) return -1;
    log_info("proxy: a worker's payout channel is %s; the %llu nano-units it was not paid on it move to a new "
             "channel", channel_status_name(ch.status), (unsigned long long)w->total);
    if (ch.status == CHANNEL_CLOSED && chain_withdraw(p->ledger, &p->key, &ch.addr, &ack) != 0)
        log_warn("proxy: cannot withdraw a closed payout channel's remainder: %s", err_msg());
    return 0;
}

/* Makes w's channel able to pay w->total: opens it when it is a new address, tops it up by at
 * least PAYOUT_DEPOSIT when the total passes its funds. -1 with err_msg() when the ledger
 * refuses (the proxy's wallet is short) or cannot be reached: the total stays owed, and the
 * next try first asks the ledger about the channel (it may have been closed, or the lost
 * answer may have been a success). */
static int cover(payee *p, payout *w) {
    chain_ack ack;
    ton_addr to, ch;
    uint64_t more, funds;
    if (!w->live && !w->fresh && sync(p, w) != 0) return -1;
    if (!w->live) {
        w->fresh = false;
        if (addr_of_wallet(w->worker, &to) != 0 ||
            chain_open_channel(p->ledger, &p->key, CHANNEL_PAYOUT, &to, w->nonce, PAYOUT_DEPOSIT,
                               p->prices.min_proxy_stake, &ch, &ack) != 0 ||
            amount_add(PAYOUT_DEPOSIT, p->prices.min_proxy_stake, &w->funds, "payout funds") != 0)
            return err_prefix("opening a payout channel");
        w->live = true;
    }
    if (w->total <= w->funds) return 0;
    more = w->total - w->funds > PAYOUT_DEPOSIT ? w->total - w->funds : PAYOUT_DEPOSIT;
    if (amount_add(w->funds, more, &funds, "payout funds") != 0 ||
        chain_topup(p->ledger, &p->key, &w->channel, more, &ack) != 0) {
        w->live = false;
        return err_prefix("topping up a payout channel");
    }
    w->funds = funds;
    return 0;
}

static uint8_t *sign_payout(payee *p, payout *w, uint64_t total, size_t *len) {
    uint8_t *boc = NULL;
    cell *v = chain_voucher(&p->key, CHANNEL_PAYOUT, &w->channel, total, ++w->query_id);
    if (!v || boc_serialize(v, 0, &boc, len) != 0) boc = NULL;
    cell_unref(v);
    return boc;
}

/* Signs w's total when its channel can pay it: 0 with *boc the voucher (malloc'd, *len bytes),
 * or with *boc NULL when there is nothing to pay or the total stays owed (why is logged; the
 * timer tries again); -1 with err_msg(). */
static int deliver(payee *p, payout *w, uint8_t **boc, size_t *len) {
    *boc = NULL;
    *len = 0;
    if (w->total == 0) return 0;
    if (cover(p, w) != 0) {
        log_warn("proxy: a worker is owed a payout total of %llu nano-units, paid when its channel can be funded "
                 "(retried): %s", (unsigned long long)w->total, err_msg());
        return 0;
    }
    if (!(*boc = sign_payout(p, w, w->total, len))) return -1;
    w->sent = w->total;
    w->signed_since = true;
    return 0;
}

/* The payout channel to worker: known, else the one in the accounting file (its state is asked
 * of the ledger when it must pay: a ledger down now loses nothing), else, when create, a new
 * address. 0 with *out (NULL when !create and the proxy never paid that worker), or -1 with
 * err_msg(). */
static int find_payout(payee *p, const uint8_t worker[32], bool create, payout **out) {
    payout *w;
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
    if (!found && !create) {
        free(w);
        return 0;
    }
    if (!found && renew(p, w, 0) != 0) goto fail;
    w->next = p->payouts;
    p->payouts = w;
    *out = w;
    return 0;
fail:
    free(w);
    return -1;
}

int payee_pay_worker(payee *p, const uint8_t worker[32], uint64_t fee, uint8_t **boc, size_t *len) {
    payout *w;
    uint64_t total;
    *boc = NULL;
    *len = 0;
    if (find_payout(p, worker, true, &w) != 0 || amount_add(w->total, fee, &total, "payout total") != 0) return -1;
    /* owed from here on, whatever the ledger says; and a restarted proxy never signs less */
    if (p->books && accounts_payout_put(p->books, worker, &w->channel, total) != 0) return -1;
    w->total = total;
    return deliver(p, w, boc, len);
}

int payee_standing_payout(payee *p, const uint8_t worker[32], uint8_t **boc, size_t *len) {
    payout *w;
    *boc = NULL;
    *len = 0;
    if (find_payout(p, worker, false, &w) != 0) return -1;
    return w ? deliver(p, w, boc, len) : 0;
}

void payee_payouts_tick(payee *p, payee_send_fn send, void *ctx) {
    for (payout *w = p->payouts; w; w = w->next) {
        uint8_t *boc;
        size_t len;
        if (w->signed_since) {
            w->signed_since = false;
            if (sync(p, w) != 0) {
                log_warn("proxy: cannot check a worker's payout channel: %s", err_msg());
                continue;
            }
        }
        if (w->sent >= w->total) continue;
        if (deliver(p, w, &boc, &len) != 0) log_warn("proxy: cannot pay a worker: %s", err_msg());
        else if (boc) send(ctx, w->worker, boc, len);
        free(boc);
    }
}

int payee_redeem(payee *p, payee_account *a) {
    int rc = inbox_redeem(&a->in, p->ledger, &p->key);
    if (rc < 0) return -1;
    return rc && p->books ? accounts_redeemed(p->books, &a->in.ch.addr, a->in.redeemed) : 0;
}

void payee_account_free(payee_account *a) { inbox_free(&a->in); }
