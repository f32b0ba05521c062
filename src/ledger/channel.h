/* Payment channels as the ledger keeps them (docs/PAYMENTS.md "Channels"): money a payer has
 * locked for one payee, released to the payee by the payer's cumulative vouchers.
 *
 * A channel holds deposit + stake - paid. A voucher may raise `paid` up to deposit + stake
 * (the stake is the payee's cover for work done before the next voucher); the proxy serves a
 * client only while paid <= deposit, so the stake is the float it risks. Closing is in two
 * steps so the payee always has the close delay to redeem its last voucher: the payer asks
 * (CLOSING, until close_at), then anyone of the two closes (CLOSED), then the payer withdraws
 * the remainder (WITHDRAWN). The payee may close at once: it only gives up its own claims.
 *
 * A channel's address is a TON contract address (addr_of_contract) over the data cell
 *     kind:u8 payer:MsgAddressInt payee:MsgAddressInt nonce:u64
 * and a placeholder code cell (the bytes "veil-channel-v1") until veil's TON contract exists.
 * Vouchers name this address, so a voucher is good for one channel only; the nonce lets one
 * payer open many channels to one payee, and the ledger never reuses an address, so vouchers
 * of a closed channel are worthless on its successor. */
#ifndef VEIL_CHANNEL_H
#define VEIL_CHANNEL_H

#include <stdint.h>

#include "ledger/addr.h"
#include "ledger/tx.h"

typedef enum channel_status {
    CHANNEL_OPEN = 1,
    CHANNEL_CLOSING = 2,   /* the payer asked to close; vouchers still redeem until close_at */
    CHANNEL_CLOSED = 3,    /* no more vouchers; the remainder waits for the payer */
    CHANNEL_WITHDRAWN = 4, /* the remainder went back to the payer: the channel holds nothing */
} channel_status;

typedef struct channel {
    ton_addr addr;
    uint8_t kind;           /* channel_kind */
    uint8_t status;         /* channel_status */
    uint8_t payer_key[32];  /* signs the vouchers */
    ton_addr payer, payee;
    uint64_t nonce;
    uint64_t deposit;       /* opening deposit plus top-ups */
    uint64_t stake;
    uint64_t paid;          /* cumulative total of the highest redeemed voucher */
    uint32_t close_delay;   /* seconds, fixed at open from the registry */
    uint64_t close_at;      /* CLOSING: the time from which it may close */
} channel;

int channel_address(channel_kind kind, const ton_addr *payer, const ton_addr *payee, uint64_t nonce,
                    ton_addr *out);
/* What the channel holds now: deposit + stake - paid (0 once withdrawn). */
uint64_t channel_held(const channel *c);
/* The voucher op that moves this channel's money. */
uint32_t channel_voucher_op(const channel *c);
const char *channel_status_name(int status);
const char *channel_kind_name(int kind);

#endif
