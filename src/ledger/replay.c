/* History replay; see replay.h. */
#include "ledger/replay.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/hex.h"
#include "ledger/boc.h"

typedef struct replay {
    store *st;
    state *s;
    bool full;
    bool have_prev;
    block_header prev;
    uint8_t (*hashes)[32];
    size_t cap;
    replay_stats stats;
} replay;

static int check_index(replay *r, const block_header *h, uint32_t i, const uint8_t hash[32]) {
    uint64_t height;
    uint32_t idx;
    int found = store_find_tx(r->st, hash, &height, &idx);
    if (found < 0) return -1;
    if (!found || height != h->height || idx != i) return err_set("it is missing from the index or indexed elsewhere");
    return 0;
}

static int replay_tx(replay *r, const block_header *h, uint32_t i, const uint8_t *boc, size_t len) {
    cell *c = boc_parse(boc, len);
    int rc = -1;
    if (!c) goto done;
    memcpy(r->hashes[i], cell_hash(c), 32);
    if (h->height == 0) {
        err_set("the genesis block holds a transaction");
        goto done;
    }
    if (state_apply(r->s, c, h->time) != STATE_OK) goto done;
    if (r->full && check_index(r, h, i, cell_hash(c))) goto done;
    rc = 0;
done:
    cell_unref(c);
    if (rc) err_prefix("block %" PRIu64 " transaction %" PRIu32, h->height, i);
    return rc;
}

/* Height, link and time, checked before the block's transactions run. */
static int check_link(replay *r, const block_header *h) {
    uint8_t owner[32];
    if (!r->have_prev) {
        if (h->height != 0) return err_set("the first block has height %" PRIu64 ", not 0", h->height);
        if (store_owner(r->st, owner)) return -1;
        if (memcmp(h->prev, owner, 32) != 0) return err_set("block 0 does not name the registry owner");
    } else {
        if (h->height != r->prev.height + 1)
            return err_set("block %" PRIu64 " follows block %" PRIu64, h->height, r->prev.height);
        if (memcmp(h->prev, r->prev.hash, 32) != 0)
            return err_set("block %" PRIu64 " does not link to block %" PRIu64 "'s hash", h->height, r->prev.height);
        if (h->time < r->prev.time)
            return err_set("block %" PRIu64 " has time %" PRIu64 ", before its predecessor's %" PRIu64, h->height,
                           h->time, r->prev.time);
    }
    return 0;
}

static int check_hash(replay *r, const block_header *h) {
    uint8_t want[32];
    char got_hex[65], want_hex[65];
    store_block_hash(h->height, h->time, h->prev, (const uint8_t(*)[32])r->hashes, h->ntx, want);
    if (memcmp(want, h->hash, 32) != 0) {
        hex_encode(h->hash, 32, got_hex);
        hex_encode(want, 32, want_hex);
        return err_set("block %" PRIu64 " has hash %s, its contents hash to %s", h->height, got_hex, want_hex);
    }
    return 0;
}

static int on_block(void *ctx, const block_header *h, const uint8_t *const *bocs, const size_t *lens) {
    replay *r = ctx;
    if (h->ntx > r->cap) {
        free(r->hashes);
        r->cap = h->ntx;
        if (!(r->hashes = malloc(r->cap * 32))) return err_set("replay: out of memory");
    }
    if (check_link(r, h)) return -1;
    for (uint32_t i = 0; i < h->ntx; i++)
        if (replay_tx(r, h, i, bocs[i], lens[i])) return -1;
    if (check_hash(r, h)) return -1;
    if (state_check(r->s)) return err_prefix("after block %" PRIu64, h->height);
    r->prev = *h;
    r->have_prev = true;
    r->stats.blocks++;
    r->stats.txs += h->ntx;
    return 0;
}

state *replay_store(store *st, bool full, replay_stats *stats) {
    uint8_t owner[32];
    uint64_t indexed;
    replay r = {.st = st, .full = full};
    if (store_owner(st, owner) || !(r.s = state_new(owner))) goto fail;
    if (store_each_block(st, on_block, &r)) goto fail;
    if (!r.have_prev) {
        err_set("the ledger has no blocks");
        goto fail;
    }
    if (full) {
        if (store_index_count(st, &indexed)) goto fail;
        if (indexed != r.stats.txs) {
            err_set("the index holds %" PRIu64 " transactions, the blocks %" PRIu64, indexed, r.stats.txs);
            goto fail;
        }
    }
    r.stats.tip = r.prev;
    if (stats) *stats = r.stats;
    free(r.hashes);
    return r.s;
fail:
    free(r.hashes);
    state_free(r.s);
    return NULL;
}
