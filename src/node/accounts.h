/* A node's own accounting of payment vouchers (issue 6, crash safety), in a SQLite file (WAL,
 * synchronous=FULL): the latest voucher each incoming channel gave it and how much of it is
 * redeemed (a proxy's client charges, a worker's payouts), so a node killed between accepting a
 * voucher and redeeming it loses nothing: at start it redeems what the file says is pending
 * (accounts_pending), and the ledger refuses what was redeemed already, so nothing counts
 * twice. A proxy also keeps there its payout channel to each worker and the total the worker
 * earned on it (what the proxy signed, and any fee it owes because the channel could not be
 * funded yet), so the channel outlives connections and restarts, a total never goes back and
 * an owed fee is not forgotten. A client
 * gateway keeps in `vouchers` the latest charge voucher it signed on its channel (`redeemed`
 * unused: the proxy redeems it), so a restarted gateway continues from its own total and never
 * signs one below what its proxy holds.
 *
 *   CREATE TABLE vouchers(channel BLOB PRIMARY KEY,  -- 33 bytes: workchain, hash
 *                         amount INTEGER, boc BLOB, redeemed INTEGER)
 *   CREATE TABLE payouts(worker BLOB PRIMARY KEY,    -- 32 bytes: the worker's payout key
 *                        channel BLOB, total INTEGER)
 *
 * A voucher is written before the node counts on it, a signed total (payout or charge) before
 * its voucher goes out; a row only ever grows. */
#ifndef VEIL_ACCOUNTS_H
#define VEIL_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger/addr.h"

typedef struct accounts accounts;

accounts *accounts_open(const char *path);
void accounts_close(accounts *a);
/* Records a channel's latest voucher (kept only if it raises the amount). 0, or -1 with err_msg(). */
int accounts_put(accounts *a, const ton_addr *channel, uint64_t amount, const uint8_t *boc, size_t len);
/* Records that the channel's total is redeemed up to amount. */
int accounts_redeemed(accounts *a, const ton_addr *channel, uint64_t amount);
/* Calls fn for every channel whose voucher is not all redeemed; fn's non-zero stops the walk
 * and is returned. */
typedef int (*accounts_fn)(void *ctx, const ton_addr *channel, uint64_t amount, const uint8_t *boc, size_t len);
int accounts_pending(accounts *a, accounts_fn fn, void *ctx);
/* The amount of the channel's latest voucher; *found false when there is none. 0, or -1 with
 * err_msg(). */
int accounts_voucher(accounts *a, const ton_addr *channel, uint64_t *amount, bool *found);

/* The payout channel to the worker paid at payout_key's wallet and the total earned on it;
 * *found false when there is none. 0, or -1 with err_msg(). */
int accounts_payout(accounts *a, const uint8_t worker[32], ton_addr *channel, uint64_t *total, bool *found);
/* Records the payout channel to a worker and the total earned on it (a new channel replaces
 * the old; on the same one the total only rises). 0, or -1 with err_msg(). */
int accounts_payout_put(accounts *a, const uint8_t worker[32], const ton_addr *channel, uint64_t total);

#endif
