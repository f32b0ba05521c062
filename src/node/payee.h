/* The proxy's side of client payments (docs/PAYMENTS.md "Who signs what", "On the network"):
 * for each client connection, the worker receipts the proxy relayed to it (each verified
 * under the worker's attested key and priced at the registry's prices), the client-signed
 * cumulative charge vouchers it sent back, and their redemption on the ledger.
 *
 * A voucher is kept only if it verifies under the channel's payer key, names this client's
 * channel (a charge channel whose payee is this proxy), raises the total, and stays within
 * what the receipts justify: the ledger's `paid` when the channel was first seen plus the
 * relayed receipts' cost (and within deposit + stake). A connection's first voucher, when it
 * comes before any receipt, is the gateway's standing voucher (payer_standing): the charges it
 * signed for answers relayed over an earlier connection or by a proxy run that crashed before
 * keeping them; it is kept up to the channel's funds, and later vouchers stay within it plus
 * the receipts. The proxy redeems the latest voucher in batches (payee_redeem), so a client
 * pays one ledger transaction per batch.
 *
 * Workers are paid the registry's worker fee for each receipt with proxy-signed cumulative
 * payout vouchers over one payout channel per worker payout key (the key a worker announces
 * in worker_register: its --wallet, else its attested key), reused by all its connections and,
 * with an accounting file, across the proxy's restarts: the proxy opens it on the first paid
 * request (PAYOUT_DEPOSIT and the registry's minimum stake), tops it up by PAYOUT_DEPOSIT when
 * a total would pass its funds, and records each new total before its voucher goes out, so a
 * total never goes back; the worker redeems them (node/earner.h).
 *
 * A fee is recorded as earned before the ledger is asked for anything: when the channel cannot
 * be opened or topped up (the proxy's wallet is short, the ledger is down) the fee stays owed
 * and goes out with the next voucher the channel can cover (the next paid request, the
 * worker's next registration, or payee_payouts_tick). A channel found closed or withdrawn (a
 * worker may close its payout channel at any time) is replaced by a new one that starts with
 * what the worker earned on the old one and was not paid there. */
#ifndef VEIL_PAYEE_H
#define VEIL_PAYEE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger/chain.h"
#include "node/inbox.h"

typedef struct payee payee;

#define PAYOUT_DEPOSIT 2000000000ull /* what the proxy locks in a worker's payout channel, and each top-up */

/* One client connection's account. Zero-initialised; payee_account_free releases it. */
typedef struct payee_account {
    inbox in;           /* the client's charge channel */
    uint64_t justified; /* cost of the receipts relayed to this client */
    uint64_t carried;   /* the standing voucher's total above the ledger's paid */
} payee_account;

/* The ledger node at url, the proxy's wallet key file, and its accounting file (accounts.h;
 * NULL: none, a crash may then lose the charges not yet redeemed). With accounts, the vouchers
 * a previous run left unredeemed are redeemed first. NULL with err_msg(). */
payee *payee_open(const char *url, const char *key_path, const char *accounts_path);
/* The same over a ledger backend the payee takes over (closed on failure too). */
payee *payee_open_chain(chain *c, const char *key_path, const char *accounts_path);
void payee_free(payee *p);

/* A receipt the proxy relays (a BOC), signed by the worker whose Ed25519 key is signer, for
 * the sealed request with this SHA-256: its cost is added to a's justified total. -1 with
 * err_msg() when it does not verify (nothing is added). */
int payee_receipt(payee *p, payee_account *a, const uint8_t signer[32], const uint8_t request_hash[32],
                  const uint8_t *boc, size_t len, uint64_t *cost, uint64_t *fee);
/* Pays the worker whose payout key is worker fee more: records the new total it earned, then
 * makes its payout channel able to pay it (opens, replaces a closed one, tops up) and signs
 * the cumulative payout voucher. 0 with *boc the voucher (malloc'd, *len bytes), or with *boc
 * NULL when the channel cannot be funded now (logged; the fee stays owed, see above); -1 with
 * err_msg() when the fee could not be recorded. */
int payee_pay_worker(payee *p, const uint8_t worker[32], uint64_t fee, uint8_t **boc, size_t *len);
/* The latest payout voucher to that worker, for a worker that (re)connects: it may have
 * missed it. 0 with *boc (malloc'd, *len bytes), or NULL when the proxy never paid it or the
 * total is owed; -1 with err_msg(). */
int payee_standing_payout(payee *p, const uint8_t worker[32], uint8_t **boc, size_t *len);
/* Where payee_payouts_tick hands a payout voucher (borrowed) for the workers on that key. */
typedef void (*payee_send_fn)(void *ctx, const uint8_t worker[32], const uint8_t *boc, size_t len);
/* On a timer: asks the ledger about each payout channel a voucher went out on since the last
 * tick (one read per such channel: a worker that closed its channel is noticed within a tick,
 * and what it was not paid there moves to a new channel), and tries once again to pay each
 * total that is owed; each voucher that results goes to send. Problems are logged. */
void payee_payouts_tick(payee *p, payee_send_fn send, void *ctx);
/* A charge voucher (a BOC) from the client of a. 0 when kept; -1 with err_msg() otherwise. */
int payee_voucher(payee *p, payee_account *a, const uint8_t *boc, size_t len);
/* Redeems a's latest voucher on the ledger if it raises the redeemed total. 0, or -1 with
 * err_msg() (the voucher stays, to be tried again). */
int payee_redeem(payee *p, payee_account *a);
void payee_account_free(payee_account *a);

#endif
