/* A payee's view of one incoming payment channel (the proxy's for a client's charges, a
 * worker's for its payouts): bound to the channel on the ledger by its first voucher (the
 * channel must be of the expected kind with this payee), then every voucher verified under the
 * channel's payer key, above the last total and within a cap, the latest kept, and redeemed
 * when the holder chooses (in batches). */
#ifndef VEIL_INBOX_H
#define VEIL_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger/chain.h"

typedef struct inbox {
    bool bound;
    channel ch;         /* as read when bound */
    uint64_t last;      /* highest accepted total */
    uint64_t redeemed;  /* highest total redeemed */
    cell *latest;       /* the voucher for `last` */
} inbox;

/* A voucher (BOC) for a channel of this kind to `me`. above_paid caps the total at the
 * channel's `paid` when bound plus above_paid (UINT64_MAX: only the channel's funds cap it).
 * 0 when kept; 1 when it repeats the last total (a standing voucher we hold already: nothing
 * new); -1 with err_msg(). */
int inbox_take(inbox *in, chain *c, channel_kind kind, const ton_addr *me, uint64_t above_paid, const uint8_t *boc,
               size_t len);
/* Redeems the latest voucher with the payee's key if it raises the redeemed total: 1 when it
 * did, or when the ledger refused it because its channel is paid that much already (another
 * holder of the same channel, or an earlier run, redeemed as much or more) or is closed for
 * good (nothing on it redeems any more: the voucher is given up, logged); 0 when there was
 * nothing to; -1 with err_msg() (the voucher stays, for the next try). */
int inbox_redeem(inbox *in, chain *c, const keypair *payee);
void inbox_free(inbox *in);

/* A voucher kept in an accounting file by an earlier run (node/accounts.h): redeems it. 1 when
 * the channel is now paid at least amount (redeemed now, or before the crash) or closed for
 * good (given up, as above), 0 when not (the reason logged with who, e.g. "proxy"; kept for
 * the next start). */
int inbox_settle(chain *c, const keypair *payee, const ton_addr *channel, uint64_t amount, const uint8_t *boc,
                 size_t len, const char *who);

#endif
