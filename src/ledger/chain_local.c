/* The chain.h backend over a ledger file in this process (ledger.h): each submit is applied
 * and committed as its own block before it returns. Embedding tests and tools use it; the
 * node (`veil chain serve`) drives ledger.h directly for group commit. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "ledger/chain.h"
#include "ledger/ledger.h"

typedef struct chain_local {
    chain base;
    ledger *l;
} chain_local;

static ledger *of(chain *c) { return ((chain_local *)c)->l; }

static int local_submit(chain *c, const cell *signed_tx, chain_ack *ack) {
    ledger_ack a;
    int rc = ledger_submit(of(c), signed_tx, (uint64_t)time(NULL), &a);
    if (rc != STATE_OK) return rc;
    if (ledger_commit(of(c))) return STATE_NO_MEMORY;
    memcpy(ack->hash, a.hash, 32);
    ack->height = a.height;
    ack->index = a.index;
    return STATE_OK;
}

static int local_account(chain *c, const ton_addr *a, account *out) {
    *out = state_account(ledger_state(of(c)), a);
    return STATE_OK;
}

static int local_channel(chain *c, const ton_addr *a, channel *out, bool *found) {
    const channel *ch = state_channel(ledger_state(of(c)), a);
    *found = ch != NULL;
    if (ch) *out = *ch;
    return STATE_OK;
}

static int local_registry(chain *c, registry *out) {
    return registry_copy(out, state_registry(ledger_state(of(c)))) ? STATE_NO_MEMORY : STATE_OK;
}

static int local_tip(chain *c, chain_tip *out) {
    block_header h = ledger_tip(of(c));
    out->height = h.height;
    out->time = h.time;
    memcpy(out->hash, h.hash, 32);
    return STATE_OK;
}

static int local_find_tx(chain *c, const uint8_t hash[32], chain_ack *out, bool *found) {
    int rc = store_find_tx(ledger_store(of(c)), hash, &out->height, &out->index);
    if (rc < 0) return STATE_NO_MEMORY;
    *found = rc == 1;
    memcpy(out->hash, hash, 32);
    return STATE_OK;
}

static void local_close(chain *c) {
    ledger_close(of(c));
    free(c);
}

static const chain_backend local_backend = {"local", local_submit, local_account, local_channel,
                                            local_registry, local_tip, local_find_tx, local_close};

chain *chain_local_open(const char *path) {
    chain_local *c = calloc(1, sizeof *c);
    if (!c) {
        err_set("chain: out of memory");
        return NULL;
    }
    c->base.be = &local_backend;
    if (!(c->l = ledger_open(path))) {
        free(c);
        return NULL;
    }
    return &c->base;
}
