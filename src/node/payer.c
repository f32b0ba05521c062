/* The gateway's payments (see payer.h). */
#include "node/payer.h"

#include "api/chain_client.h"
#include "base/err.h"
#include "base/log.h"
#include "ledger/amount.h"
#include "ledger/boc.h"
#include "ledger/chain.h"
#include "node/accounts.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct payer {
    chain *ledger;
    keypair key;
    ton_addr addr;          /* the channel */
    registry_params prices;
    channel ch;             /* as last read */
    bool found;
    uint64_t total;         /* cumulative charge signed so far */
    uint64_t query_id;
    accounts *books;        /* NULL: the total lives only in memory */
};

/* Re-reads the channel; a total above the ledger's `paid` is ours and stays. */
static int refresh(payer *p) {
    if (chain_channel(p->ledger, &p->addr, &p->ch, &p->found) != 0) return err_prefix("ledger");
    if (p->found && p->ch.paid > p->total) p->total = p->ch.paid;
    return 0;
}

payer *payer_open(const char *url, const char *key_path, const char *channel_addr, const char *accounts_path) {
    payer *p = calloc(1, sizeof *p);
    registry reg;
    bool held = false;
    if (!p) {
        err_set("out of memory");
        return NULL;
    }
    if (addr_parse(channel_addr, &p->addr, NULL) != 0) {
        err_prefix("--channel");
        goto fail;
    }
    if (keys_load(key_path, &p->key) != 0 || !(p->ledger = chain_client_open(url))) goto fail;
    if (chain_registry(p->ledger, &reg) != 0) {
        err_prefix("ledger");
        goto fail;
    }
    p->prices = reg.params;
    registry_free(&reg);
    /* what an earlier run signed first: refresh then raises it to the ledger's paid */
    if (accounts_path && (!(p->books = accounts_open(accounts_path)) ||
                          accounts_voucher(p->books, &p->addr, &p->total, &held) != 0))
        goto fail;
    if (refresh(p) != 0) goto fail;
    if (held)
        log_info("client: continuing from a total of %" PRIu64 " nano-units signed (the ledger has %" PRIu64 " paid)",
                 p->total, p->found ? p->ch.paid : 0);
    if (p->found && memcmp(p->ch.payer_key, p->key.public_key, 32) != 0) {
        err_set("--channel %.70s: its payer is not the key in %.200s", channel_addr, key_path);
        goto fail;
    }
    return p;
fail:
    payer_free(p);
    return NULL;
}

void payer_free(payer *p) {
    if (!p) return;
    if (p->ledger) chain_close(p->ledger);
    accounts_close(p->books);
    keys_wipe(&p->key);
    free(p);
}

const registry_params *payer_prices(const payer *p) { return &p->prices; }

static bool usable(const payer *p) {
    return p->found && p->ch.kind == CHANNEL_CHARGE && p->ch.status == CHANNEL_OPEN && p->total < p->ch.deposit;
}

int payer_check(payer *p) {
    /* the ledger is asked only when the channel as last read would refuse: a request costs no
     * round trip while the deposit lasts, and a top-up still counts at once */
    if (usable(p)) return 0;
    if (refresh(p) != 0) return -1;
    if (!p->found) return err_set("the client's payment channel is not on the ledger; open it with veil channel open");
    if (p->ch.kind != CHANNEL_CHARGE || p->ch.status != CHANNEL_OPEN)
        return err_set("the client's payment channel is %s, not an open charge channel",
                       channel_status_name(p->ch.status));
    if (p->total >= p->ch.deposit)
        return err_set("the client's deposit is spent (%" PRIu64 " of %" PRIu64 " nano-units charged); top up the channel",
                       p->total, p->ch.deposit);
    return 0;
}

uint8_t *payer_charge(payer *p, uint64_t cost, size_t *len) {
    uint64_t total;
    uint8_t *boc = NULL;
    cell *v;
    if (amount_add(p->total, cost, &total, "charge total") != 0) return NULL;
    v = chain_voucher(&p->key, CHANNEL_CHARGE, &p->addr, total, ++p->query_id);
    if (!v || boc_serialize(v, 0, &boc, len) != 0) boc = NULL;
    cell_unref(v);
    /* recorded before it goes: a restarted gateway must never sign a lower total */
    if (boc && p->books && accounts_put(p->books, &p->addr, total, boc, *len) != 0) {
        free(boc);
        boc = NULL;
    }
    if (boc) p->total = total;
    return boc;
}

int payer_standing(payer *p, uint8_t **boc, size_t *len) {
    *boc = NULL;
    *len = 0;
    if (refresh(p) != 0) return -1;
    if (!p->found || p->total <= p->ch.paid) return 0;
    return (*boc = payer_charge(p, 0, len)) ? 0 : -1;
}
