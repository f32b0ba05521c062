/* The ledger's state machine: accounts, channels and the registry, changed only by signed
 * transactions (tx.h) applied one at a time at a given time (the block's timestamp, the
 * ledger's only clock). Deterministic: the same transactions at the same times give the same
 * state on every machine, which is what lets `veil chain verify` replay history.
 *
 * state_apply either applies a transaction whole or changes nothing at all (every check and
 * every checked sum comes before the first write). What holds after every transaction, and
 * state_check verifies:
 *   - the sum of all account balances and all channel holdings equals the minted supply;
 *   - no balance is negative (u64, and every subtraction is checked);
 *   - a channel's paid total never decreases and never passes deposit + stake;
 *   - an account's seqno only grows, so no transaction applies twice; a voucher moves only
 *     the difference to the last redeemed total, so no voucher applies twice either. */
#ifndef VEIL_STATE_H
#define VEIL_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "ledger/addr.h"
#include "ledger/cell.h"
#include "ledger/channel.h"
#include "ledger/registry.h"

typedef enum state_status {
    STATE_OK = 0,
    STATE_MALFORMED = -1,     /* not a transaction (layout, unknown op, bad voucher layout) */
    STATE_BAD_SIGNATURE = -2, /* the transaction's or the voucher's signature does not verify */
    STATE_FORBIDDEN = -3,     /* signed, but by someone who may not do this */
    STATE_BAD_SEQNO = -4,     /* not the signer's next seqno: a replay, or out of order */
    STATE_REJECTED = -5,      /* against the rules: funds, channel status, stale voucher, ... */
    STATE_NO_MEMORY = -6,
} state_status;

typedef struct account {
    ton_addr addr;
    uint64_t balance;
    uint64_t seqno; /* the seqno its next transaction must carry */
} account;

typedef struct state state;

state *state_new(const uint8_t registry_owner[32]);
void state_free(state *s);

/* Applies one signed transaction at time `now` (seconds). STATE_OK, or a negative
 * state_status with err_msg() naming the rule, and then nothing changed. */
int state_apply(state *s, const cell *signed_tx, uint64_t now);

/* The account at a (zero balance and seqno when it never appeared). */
account state_account(const state *s, const ton_addr *a);
/* The channel at a, or NULL; valid until the next state_apply. */
const channel *state_channel(const state *s, const ton_addr *a);
const registry *state_registry(const state *s);
uint64_t state_supply(const state *s);

/* Iteration, in order of first appearance (deterministic). */
size_t state_naccounts(const state *s);
const account *state_account_at(const state *s, size_t i);
size_t state_nchannels(const state *s);
const channel *state_channel_at(const state *s, size_t i);

/* Checks the invariants above from scratch; -1 with err_msg() naming the first broken one. */
int state_check(const state *s);
/* SHA-256 of everything the state holds, for comparing two replays. */
void state_digest(const state *s, uint8_t out[32]);

const char *state_status_name(int status);

#endif
