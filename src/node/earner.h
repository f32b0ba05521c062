/* The worker's side of payments (docs/PAYMENTS.md "On the network"): the proxy pays the
 * worker's fee for each receipt with cumulative payout vouchers over a channel to the wallet of
 * the worker's attested Ed25519 key (the key that signs its receipts, fresh per process). The
 * worker checks each voucher against the channel on the ledger (payer's key, payee = this key's
 * wallet, raises the total, within the channel's funds), keeps the latest, and redeems it in
 * batches; after a redemption it moves what that wallet holds to its own wallet (--wallet), so
 * the earnings outlive the process's key. */
#ifndef VEIL_EARNER_H
#define VEIL_EARNER_H

#include <stddef.h>
#include <stdint.h>

#include "ledger/keys.h"

typedef struct earner earner;

/* url: the ledger node; key: the attested key (copied); wallet_path: where earnings go, or NULL
 * to leave them in the attested key's wallet. NULL with err_msg(). */
earner *earner_open(const char *url, const keypair *key, const char *wallet_path);
/* Redeems what is pending, then frees. */
void earner_free(earner *e);
/* A payout voucher (a BOC) from the proxy: 0 when kept, -1 with err_msg(). */
int earner_voucher(earner *e, const uint8_t *boc, size_t len);
/* Redeems the latest voucher if it raises the total, then sweeps. 0, or -1 with err_msg(). */
int earner_redeem(earner *e);

#endif
