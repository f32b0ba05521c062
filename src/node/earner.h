/* The worker's side of payments (docs/PAYMENTS.md "On the network"): the proxy pays the
 * worker's fee for each receipt with cumulative payout vouchers over a channel to the wallet of
 * the worker's payout key, which the worker announces in worker_register: its --wallet key,
 * stable across restarts, else its attested Ed25519 key (fresh per process, so what is not
 * redeemed at exit is lost). The worker checks each voucher against the channel on the ledger
 * (payer's key, payee = the payout key's wallet, raises the total, within the channel's
 * funds), keeps the latest per channel (a proxy run without an accounting file opens a new
 * one, and a proxy replaces a channel the worker closed), and redeems in batches; a voucher on
 * a channel closed for good is given up (node/inbox.h).
 *
 * With an accounting file (node/accounts.h, the `vouchers` table) every kept voucher is written
 * there first, and at start whatever a previous run left unredeemed is redeemed, so a worker
 * killed with -9 between a payout and its redemption loses nothing. */
#ifndef VEIL_EARNER_H
#define VEIL_EARNER_H

#include <stddef.h>
#include <stdint.h>

#include "ledger/keys.h"

typedef struct earner earner;

/* url: the ledger node; key: the attested key (copied), the payout key when wallet_path is
 * NULL; wallet_path: the payout key's file, or NULL; accounts_path: the accounting file, or
 * NULL. Redeems what the accounting file holds unredeemed. NULL with err_msg(). */
earner *earner_open(const char *url, const keypair *key, const char *wallet_path, const char *accounts_path);
/* Redeems what is pending, then frees. */
void earner_free(earner *e);
/* The Ed25519 public key whose wallet the proxy should pay (worker_register's payout_key). */
const uint8_t *earner_payout_key(const earner *e);
/* A payout voucher (a BOC) from the proxy: 0 when kept (or a total held already), -1 with
 * err_msg(). */
int earner_voucher(earner *e, const uint8_t *boc, size_t len);
/* Redeems each channel's latest voucher if it raises its total. 0, or -1 with err_msg() (the
 * vouchers not redeemed stay, for the next try). */
int earner_redeem(earner *e);

#endif
