/* The proxy's own accounting (issue 6, crash safety): the latest charge voucher each client
 * channel gave it and how much of it is redeemed, in a SQLite file (WAL, synchronous=FULL), so
 * a proxy killed between accepting a voucher and redeeming it loses no charge: at start it
 * redeems what the file says is pending (accounts_pending), and the ledger refuses what was
 * redeemed already, so nothing counts twice.
 *
 *   CREATE TABLE vouchers(channel BLOB PRIMARY KEY,  -- 33 bytes: workchain, hash
 *                         amount INTEGER, boc BLOB, redeemed INTEGER)
 *
 * A voucher is written before the proxy counts on it; a row only ever grows. */
#ifndef VEIL_ACCOUNTS_H
#define VEIL_ACCOUNTS_H

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

#endif
