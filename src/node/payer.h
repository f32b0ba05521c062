/* The client gateway's side of payments (docs/PAYMENTS.md "Who signs what", "On the network"):
 * the registry's prices, the client's charge channel to its proxy, and the cumulative charge
 * vouchers the client signs, one per paid receipt, up to the receipts' total at those prices.
 *
 * The rule for serving (PAYMENTS.md "Channels"): a client is served while its charges stay
 * below its deposit; the stake is the proxy's float between vouchers. A client whose channel
 * is missing, not open, or spent is refused (HTTP 402 at the gateway). */
#ifndef VEIL_PAYER_H
#define VEIL_PAYER_H

#include <stddef.h>
#include <stdint.h>

#include "ledger/registry.h"

typedef struct payer payer;

/* Reads the prices (and the channel, which may not exist yet) from the ledger node at url.
 * key_path: the client's wallet key (the channel's payer); channel: the channel's address.
 * accounts_path (may be NULL): the gateway's accounting file (accounts.h), where each total is
 * written before its voucher goes out; the gateway continues from the larger of the total it
 * holds for the channel and the ledger's `paid`. Without it a restarted gateway starts from
 * `paid`, below a voucher its proxy may hold unredeemed. NULL with err_msg(). */
payer *payer_open(const char *url, const char *key_path, const char *channel, const char *accounts_path);
void payer_free(payer *p);

const registry_params *payer_prices(const payer *p);
/* 0 when the client may start a request; -1 with err_msg() saying why not. The channel is
 * re-read from the ledger whenever the last reading would refuse, so a top-up counts at once;
 * a channel closed behind the gateway's back is noticed only once its deposit is spent. */
int payer_check(payer *p);
/* Raises the cumulative total by cost and returns the signed charge voucher as a BOC
 * (malloc'd, *len bytes), or NULL with err_msg() (the total is then unchanged). With an
 * accounting file the voucher is in it before this returns. */
uint8_t *payer_charge(payer *p, uint64_t cost, size_t *len);
/* The standing voucher: the total signed so far, again, for a proxy the gateway (re)connects
 * to. A proxy killed or a connection broken between our voucher and its keeping it would
 * otherwise never hear of that charge, and would refuse every later total as above what it
 * relayed (payee.h). Re-reads the channel first. 0 with *boc the voucher (malloc'd, *len
 * bytes), or NULL when the ledger holds the whole total already; -1 with err_msg(). */
int payer_standing(payer *p, uint8_t **boc, size_t *len);

#endif
