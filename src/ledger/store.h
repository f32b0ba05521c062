/* The ledger's durable history in SQLite: hash-chained blocks of signed transactions.
 *
 *   meta(key, value)                 format version, the registry owner, the genesis time
 *   blocks(height, time, prev, hash, ntx, txs)   txs = each transaction's BOC, u32 length first
 *   txindex(hash, height, idx)       where each transaction is (by the hash of its cell)
 *
 * A block's hash is SHA-256("veil-block-v1" height:u64 time:u64 prev:32 ntx:u32 tx hashes),
 * big-endian; block 0 (genesis) has no transactions and prev = the registry owner's key, so
 * the owner is bound into every later hash. The database runs in WAL mode with
 * synchronous=FULL: store_append returns only once its block is on disk, and a block is
 * appended whole or not at all (one SQLite transaction). Transactions are stored as written by
 * their signers and identified by cell hash, never by BOC bytes (docs/PAYMENTS.md). */
#ifndef VEIL_STORE_H
#define VEIL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger/cell.h"

typedef struct store store;

typedef struct block_header {
    uint64_t height;
    uint64_t time;
    uint8_t prev[32];
    uint8_t hash[32];
    uint32_t ntx;
} block_header;

/* Opens the database; `create_owner` non-NULL makes a new one (refusing an existing file)
 * with this registry owner and genesis time. read_only opens for `veil chain verify`. */
store *store_open(const char *path, const uint8_t *create_owner, uint64_t genesis_time, bool read_only);
void store_close(store *s);

int store_owner(store *s, uint8_t owner[32]);
/* The last block (the genesis block when no other). */
int store_tip(store *s, block_header *out);

/* The hash a block with these fields must have. */
void store_block_hash(uint64_t height, uint64_t time, const uint8_t prev[32], const uint8_t (*tx_hashes)[32],
                      uint32_t ntx, uint8_t out[32]);

/* Appends block h (its hash already computed) holding these transactions, durably. */
int store_append(store *s, const block_header *h, cell *const *txs, size_t ntx);

/* Calls fn for every block in height order with its transactions' BOC bytes (borrowed for the
 * call). fn returns 0 to go on, non-zero to stop (returned). -1 with err_msg() on a read error
 * or a block whose transaction list is not well formed. */
typedef int (*store_block_fn)(void *ctx, const block_header *h, const uint8_t *const *bocs, const size_t *lens);
int store_each_block(store *s, store_block_fn fn, void *ctx);

/* Where the transaction with this hash is: 1 found, 0 not, -1 error. */
int store_find_tx(store *s, const uint8_t hash[32], uint64_t *height, uint32_t *idx);
/* Count of rows in txindex, for verify. */
int store_index_count(store *s, uint64_t *count);
/* Bytes the database files take (main file and WAL). */
uint64_t store_disk_bytes(const char *path);

#endif
