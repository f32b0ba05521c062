/* The worker's payments (see earner.h). */
#include "node/earner.h"

#include "api/chain_client.h"
#include "base/err.h"
#include "base/log.h"
#include "ledger/boc.h"
#include "ledger/chain.h"
#include "ledger/voucher.h"
#include "node/accounts.h"
#include "node/inbox.h"

#include <stdbool.h>
#include <stdlib.h>

/* Payout channels watched at once: one per proxy run that paid this worker without an
 * accounting file of its own; a channel all redeemed frees its slot. */
#define EARNER_CHANNELS 8

struct earner {
    chain *ledger;
    keypair key;              /* the payout key: signs the redemptions */
    ton_addr self;            /* its wallet: the payout channels' payee */
    accounts *books;          /* NULL: no accounting file */
    inbox in[EARNER_CHANNELS];
};

/* Start-up reconciliation: redeems a voucher a previous run kept but did not redeem. */
static int settle(void *ctx, const ton_addr *ch, uint64_t amount, const uint8_t *boc, size_t len) {
    earner *e = ctx;
    return inbox_settle(e->ledger, &e->key, ch, amount, boc, len, "worker") ? accounts_redeemed(e->books, ch, amount)
                                                                            : 0;
}

earner *earner_open(const char *url, const keypair *key, const char *wallet_path, const char *accounts_path) {
    earner *e = calloc(1, sizeof *e);
    if (!e) {
        err_set("out of memory");
        return NULL;
    }
    if (!wallet_path) e->key = *key;
    else if (keys_load(wallet_path, &e->key) != 0) goto fail;
    if (addr_of_wallet(e->key.public_key, &e->self) != 0 || !(e->ledger = chain_client_open(url))) goto fail;
    if (accounts_path &&
        (!(e->books = accounts_open(accounts_path)) || accounts_pending(e->books, settle, e) != 0))
        goto fail;
    return e;
fail:
    earner_free(e);
    return NULL;
}

void earner_free(earner *e) {
    if (!e) return;
    if (e->ledger && earner_redeem(e) != 0) log_warn("worker: cannot redeem the last payout: %s", err_msg());
    if (e->ledger) chain_close(e->ledger);
    accounts_close(e->books);
    for (int i = 0; i < EARNER_CHANNELS; i++) inbox_free(&e->in[i]);
    keys_wipe(&e->key);
    free(e);
}

const uint8_t *earner_payout_key(const earner *e) { return e->key.public_key; }

/* The inbox for the voucher's channel: the one bound to it, else a free one (a channel all
 * redeemed is let go). NULL with err_msg(). */
static inbox *slot_for(earner *e, const uint8_t *boc, size_t len) {
    cell *body = boc_parse(boc, len);
    inbox *free_slot = NULL;
    voucher v;
    int rc = body ? voucher_parse(body, &v) : -1;
    cell_unref(body);
    if (rc != VOUCHER_OK) return NULL;
    for (int i = 0; i < EARNER_CHANNELS; i++) {
        inbox *in = &e->in[i];
        if (in->bound && addr_equal(&in->ch.addr, &v.channel)) return in;
        if (!free_slot && (!in->bound || in->redeemed >= in->last)) free_slot = in;
    }
    if (!free_slot) {
        err_set("%d payout channels hold unredeemed vouchers already", EARNER_CHANNELS);
        return NULL;
    }
    inbox_free(free_slot);
    *free_slot = (inbox){0};
    return free_slot;
}

int earner_voucher(earner *e, const uint8_t *boc, size_t len) {
    inbox *in = slot_for(e, boc, len);
    int rc;
    if (!in || (rc = inbox_take(in, e->ledger, CHANNEL_PAYOUT, &e->self, UINT64_MAX, boc, len)) < 0) return -1;
    if (rc == 1) return 0; /* a total we hold already */
    /* on disk before it counts: a kill -9 from here on loses nothing */
    if (e->books && accounts_put(e->books, &in->ch.addr, in->last, boc, len) != 0) return -1;
    log_info("worker: payout voucher kept, total %llu", (unsigned long long)in->last);
    return 0;
}

int earner_redeem(earner *e) {
    int rc = 0;
    for (int i = 0; i < EARNER_CHANNELS; i++) {
        inbox *in = &e->in[i];
        int r = in->bound ? inbox_redeem(in, e->ledger, &e->key) : 0;
        if (r < 0 || (r == 1 && e->books && accounts_redeemed(e->books, &in->ch.addr, in->redeemed) != 0)) rc = -1;
    }
    return rc;
}
