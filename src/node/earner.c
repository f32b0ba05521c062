/* The worker's payments (see earner.h). */
#include "node/earner.h"

#include "api/chain_client.h"
#include "base/err.h"
#include "base/log.h"
#include "ledger/chain.h"
#include "node/inbox.h"

#include <stdbool.h>
#include <stdlib.h>

struct earner {
    chain *ledger;
    keypair key;
    ton_addr self;            /* the attested key's wallet: the payout channels' payee */
    bool sweep;
    ton_addr wallet;          /* where earnings go */
    inbox in;                 /* the payout channel */
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
    inbox_free(&e->in);
    keys_wipe(&e->key);
    free(e);
}

int earner_voucher(earner *e, const uint8_t *boc, size_t len) {
    return inbox_take(&e->in, e->ledger, CHANNEL_PAYOUT, &e->self, UINT64_MAX, boc, len);
}

int earner_redeem(earner *e) {
    chain_ack ack;
    account a;
    int rc = inbox_redeem(&e->in, e->ledger, &e->key);
    if (rc <= 0 || !e->sweep) return rc < 0 ? -1 : 0;
    if (chain_account(e->ledger, &e->self, &a) != 0 ||
        (a.balance && chain_transfer(e->ledger, &e->key, &e->wallet, a.balance, &ack) != 0))
        return err_prefix("moving the earnings to the wallet");
    return 0;
}
