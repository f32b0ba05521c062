/* Local ledger: state + store + the pending block; see ledger.h. */
#include "ledger/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "ledger/replay.h"

struct ledger {
    store *st;
    state *s;
    block_header tip;
    cell **pending;
    size_t npending, cap;
    uint64_t pending_time;
};

static ledger *open_store(store *st) {
    replay_stats stats;
    ledger *l = calloc(1, sizeof *l);
    if (!l) {
        err_set("ledger: out of memory");
        goto fail;
    }
    l->st = st;
    if (!(l->s = replay_store(st, false, &stats))) goto fail;
    l->tip = stats.tip;
    return l;
fail:
    if (l) l->st = NULL;
    ledger_close(l);
    store_close(st);
    return NULL;
}

ledger *ledger_create(const char *path, const uint8_t owner[32], uint64_t now) {
    store *st = store_open(path, owner, now, false);
    return st ? open_store(st) : NULL;
}

ledger *ledger_open(const char *path) {
    store *st = store_open(path, NULL, 0, false);
    return st ? open_store(st) : NULL;
}

static void drop_pending(ledger *l) {
    for (size_t i = 0; i < l->npending; i++) cell_unref(l->pending[i]);
    l->npending = 0;
}

void ledger_close(ledger *l) {
    if (!l) return;
    drop_pending(l);
    free(l->pending);
    state_free(l->s);
    store_close(l->st);
    free(l);
}

int ledger_submit(ledger *l, const cell *tx, uint64_t now, ledger_ack *ack) {
    if (l->npending == l->cap) {
        size_t want = l->cap ? l->cap * 2 : 256;
        cell **p = realloc(l->pending, want * sizeof *p);
        if (!p) {
            err_set("ledger: out of memory");
            return STATE_NO_MEMORY;
        }
        l->pending = p;
        l->cap = want;
    }
    if (l->npending == 0) l->pending_time = now > l->tip.time ? now : l->tip.time;
    int rc = state_apply(l->s, tx, l->pending_time);
    if (rc != STATE_OK) return rc;
    memcpy(ack->hash, cell_hash(tx), 32);
    ack->height = l->tip.height + 1;
    ack->index = (uint32_t)l->npending;
    l->pending[l->npending++] = cell_ref((cell *)tx);
    return STATE_OK;
}

int ledger_commit(ledger *l) {
    block_header h = {.height = l->tip.height + 1, .time = l->pending_time, .ntx = (uint32_t)l->npending};
    uint8_t (*hashes)[32] = NULL;
    if (!l->npending) return 0;
    memcpy(h.prev, l->tip.hash, 32);
    if (!(hashes = malloc(l->npending * 32))) {
        err_set("ledger: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < l->npending; i++) memcpy(hashes[i], cell_hash(l->pending[i]), 32);
    store_block_hash(h.height, h.time, h.prev, (const uint8_t(*)[32])hashes, h.ntx, h.hash);
    free(hashes);
    if (store_append(l->st, &h, l->pending, l->npending)) goto fail;
    l->tip = h;
    drop_pending(l);
    return 0;
fail:
    drop_pending(l);
    /* The state holds the dropped transactions: rebuild it from what the disk has. */
    {
        char why[512];
        replay_stats stats;
        snprintf(why, sizeof why, "%s", err_msg());
        state *fresh = replay_store(l->st, false, &stats);
        if (fresh) {
            state_free(l->s);
            l->s = fresh;
            l->tip = stats.tip;
        }
        err_set("%s%s", why, fresh ? "" : " (and the state could not be rebuilt from the store)");
    }
    return -1;
}

size_t ledger_pending(const ledger *l) { return l->npending; }
const state *ledger_state(const ledger *l) { return l->s; }
block_header ledger_tip(const ledger *l) { return l->tip; }
store *ledger_store(ledger *l) { return l->st; }
