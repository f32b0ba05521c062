/* A local ledger: the state machine (state.h) over a durable history (store.h). Transactions
 * are applied to the state as they arrive and collected into the next block; ledger_commit
 * writes that block durably. Whoever acknowledges a transaction does so only after the commit
 * of its block returned: that is the group commit the node uses (one fsync for every
 * transaction that arrived while the previous block was being written).
 *
 * Every transaction of a block applies at the block's time, fixed when its first transaction
 * arrives and never before the previous block's. If a commit fails, the transactions of the
 * unwritten block are dropped and the state is rebuilt from the store, so the state never
 * holds what the disk does not. */
#ifndef VEIL_LEDGER_H
#define VEIL_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "ledger/cell.h"
#include "ledger/state.h"
#include "ledger/store.h"

typedef struct ledger ledger;

typedef struct ledger_ack {
    uint8_t hash[32];
    uint64_t height; /* the block it is in */
    uint32_t index;  /* its place in the block */
} ledger_ack;

/* Makes a new ledger file (genesis at `now`) and opens it. */
ledger *ledger_create(const char *path, const uint8_t owner[32], uint64_t now);
/* Opens an existing ledger, replaying its history (every signature checked). */
ledger *ledger_open(const char *path);
/* Commits nothing: the pending block is dropped (its transactions were never acknowledged). */
void ledger_close(ledger *l);

/* Applies tx at time `now` and adds it to the pending block; *ack says where it will be once
 * committed. STATE_OK, or a negative state_status with err_msg(), and nothing changed. */
int ledger_submit(ledger *l, const cell *tx, uint64_t now, ledger_ack *ack);
/* Writes the pending block durably (nothing to do when it is empty). -1 with err_msg() when
 * the write failed; the pending transactions are then gone and the state is the store's. */
int ledger_commit(ledger *l);
size_t ledger_pending(const ledger *l);

const state *ledger_state(const ledger *l);
/* The last committed block. */
block_header ledger_tip(const ledger *l);
store *ledger_store(ledger *l);

#endif
