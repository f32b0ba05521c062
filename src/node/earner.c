/* The worker's payments (see earner.h). */
#include "node/earner.h"

#include "api/chain_client.h"
#include "base/err.h"
#include "base/log.h"
#include "ledger/amount.h"
#include "ledger/boc.h"
#include "ledger/chain.h"
#include "ledger/voucher.h"

#include <stdbool.h>
#include <stdlib.h>

struct earner {
    chain *ledger;
    keypair key;
    ton_addr self;            /* the attested key's wallet: the payout channels' payee */
    bool sweep;
    ton_addr wallet;          /* where earnings go */
    bool bound;
    channel ch;               /* the payout channel, as read on its first voucher */
    uint64_t last, redeemed;
    cell *latest;
};

earner *earner_open(const char *url, const keypair *key, const char *wallet_path) {
    earner *e = calloc(1, sizeof *e);
    keypair w;
    if (!e) {
        err_set("out of memory");
        return NULL;
    }
    e->key = *key;
    if (addr_of_wallet(key->public_key, &e->self) != 0) goto fail;
    if (wallet_path) {
        if (keys_load(wallet_path, &w) != 0) goto fail;
        e->sweep = addr_of_wallet(w.public_key, &e->wallet) == 0;
        keys_wipe(&w);
        if (!e->sweep) goto fail;
    }
    if (!(e->ledger = chain_client_open(url))) goto fail;
    return e;
fail:
    earner_free(e);
    return NULL;
}

void earner_free(earner *e) {
    if (!e) return;
    if (e->ledger && earner_redeem(e) != 0) log_warn("worker: cannot redeem the last payout: %s", err_msg());
    if (e->ledger) chain_close(e->ledger);
    cell_unref(e->latest);
    keys_wipe(&e->key);
    free(e);
}

static int bind(earner *e, const cell *body) {
    voucher v;
    bool found;
    if (voucher_parse(body, &v) != VOUCHER_OK) return -1;
    if (chain_channel(e->ledger, &v.channel, &e->ch, &found) != 0) return err_prefix("ledger");
    if (!found) return err_set("the payout voucher's channel is not on the ledger");
    if (e->ch.kind != CHANNEL_PAYOUT || !addr_equal(&e->ch.payee, &e->self))
        return err_set("the voucher's channel is not a payout channel to this worker");
    e->bound = true;
    e->last = e->redeemed = e->ch.paid;
    return 0;
}

int earner_voucher(earner *e, const uint8_t *boc, size_t len) {
    cell *c = boc_parse(boc, len);
    voucher v;
    uint64_t held;
    int rc = -1;
    if (!c || (!e->bound && bind(e, c) != 0) ||
        amount_add(e->ch.deposit, e->ch.stake, &held, "channel funds") != 0)
        goto done;
    voucher_expect x = {.op = VOUCHER_OP_PAYOUT, .signer = e->ch.payer_key, .channel = &e->ch.addr,
                        .last_amount = e->last, .max_amount = held};
    if (voucher_verify(c, &x, &v) != VOUCHER_OK) goto done;
    cell_unref(e->latest);
    e->latest = cell_ref(c);
    e->last = v.amount;
    rc = 0;
done:
    cell_unref(c);
    return rc;
}

int earner_redeem(earner *e) {
    chain_ack ack;
    account a;
    if (!e->latest || e->last <= e->redeemed) return 0;
    if (chain_redeem(e->ledger, &e->key, &e->ch.addr, e->latest, &ack) != 0) return err_prefix("redeem");
    e->redeemed = e->last;
    if (!e->sweep) return 0;
    if (chain_account(e->ledger, &e->self, &a) != 0 ||
        (a.balance && chain_transfer(e->ledger, &e->key, &e->wallet, a.balance, &ack) != 0))
        return err_prefix("moving the earnings to the wallet");
    return 0;
}
