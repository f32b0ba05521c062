/* Replaying a ledger's history: every block of a store, in order, through a fresh state
 * machine. It is how a node rebuilds its state at start and what `veil chain verify` runs:
 * each block's height, time, link to the previous block and hash are recomputed, each
 * transaction is parsed, its signature checked and applied (a stored transaction that the
 * rules refuse means the history was altered), the funds invariants are checked after every
 * block, and each transaction must be in the index at its place. */
#ifndef VEIL_REPLAY_H
#define VEIL_REPLAY_H

#include <stdint.h>

#include "ledger/state.h"
#include "ledger/store.h"

typedef struct replay_stats {
    uint64_t blocks; /* including genesis */
    uint64_t txs;
    block_header tip;
} replay_stats;

/* The state after the whole history (caller frees), or NULL with err_msg() naming the block,
 * the transaction and what is wrong. `full` also checks the index (verify). */
state *replay_store(store *st, bool full, replay_stats *stats);

#endif
