/* Ledger transactions: what an account asks the ledger to do, as a signed TON cell
 * (docs/PAYMENTS.md "Transactions" has every layout):
 *
 *   signed_tx = signature:bits512 ^body
 *   body      = op:u32 signer:bits256 seqno:u64 <fields of the op> [^ref]
 *
 * The signer is an Ed25519 public key; its account is the key's wallet address
 * (addr_of_wallet). The signature is over the body's cell hash, as vouchers and receipts are
 * signed. seqno is the signer's transaction counter: the ledger takes a transaction only when
 * seqno equals the account's, so a transaction never applies twice. A transaction is
 * identified by the hash of its signed cell.
 *
 * This file builds, signs and parses; it knows nothing of balances (state.c applies). Parsing
 * is strict: a cell with leftover bits or refs, an unknown op, a field out of range, or a
 * non-canonical encoding (a Coins value padded with zero bytes) is MALFORMED, so a signed cell
 * has one meaning and a meaning has one cell. */
#ifndef VEIL_TX_H
#define VEIL_TX_H

#include <stdbool.h>
#include <stdint.h>

#include "ledger/addr.h"
#include "ledger/cell.h"
#include "ledger/keys.h"
#include "ledger/registry.h"

/* Ops, four ASCII letters each so they read in a hex dump. */
#define TX_MINT 0x6d696e74u          /* "mint": the registry owner creates funds (local ledger only) */
#define TX_TRANSFER 0x78666572u      /* "xfer": account -> account */
#define TX_OPEN 0x6f70656eu          /* "open": payer opens a channel with a deposit and a stake */
#define TX_TOPUP 0x74707570u         /* "tpup": payer adds to an open channel */
#define TX_REDEEM 0x7264656du        /* "rdem": payee redeems a payer-signed cumulative voucher */
#define TX_CLOSE_REQUEST 0x636c7271u /* "clrq": payer starts the close delay; payee closes at once */
#define TX_CLOSE 0x636c6f73u         /* "clos": after the delay, the channel takes no more vouchers */
#define TX_WITHDRAW 0x77647277u      /* "wdrw": payer takes a closed channel's remainder */
#define TX_REG_PARAMS 0x72677072u    /* "rgpr": owner sets prices, stakes, delays */
#define TX_REG_SET 0x72677374u       /* "rgst": owner adds or replaces a registry entry */
#define TX_REG_DEL 0x7267646cu       /* "rgdl": owner removes a registry entry */

/* The two kinds of channel: who pays whom, and which voucher op moves the money. */
typedef enum channel_kind {
    CHANNEL_CHARGE = 1, /* client pays proxy; the client signs charge vouchers */
    CHANNEL_PAYOUT = 2, /* proxy pays worker; the proxy signs payout vouchers */
} channel_kind;

typedef struct tx {
    uint32_t op;
    uint8_t signer[32];
    uint64_t seqno;
    /* fields, by op (unused ones are zero) */
    ton_addr to;        /* mint, transfer: recipient; open: payee */
    ton_addr channel;   /* topup, redeem, close_request, close, withdraw */
    uint64_t amount;    /* mint, transfer, topup; open: the deposit */
    uint64_t stake;     /* open */
    uint64_t nonce;     /* open: makes each channel's address new */
    uint8_t kind;       /* open: channel_kind */
    cell *voucher;      /* redeem: the voucher body (owned reference) */
    registry_params params; /* reg_params */
    uint8_t list;       /* reg_set, reg_del: registry_list */
    uint8_t key[32];    /* reg_set, reg_del */
    char endpoint[REGISTRY_ENDPOINT_MAX + 1]; /* reg_set of a proxy */
    uint8_t signature[64];
} tx;

/* Releases what a parsed or built tx holds (the voucher reference). */
void tx_clear(tx *t);
/* The body cell (what is signed). */
cell *tx_body(const tx *t);
/* Signs t's body with k (setting t->signer from k) and returns the signed cell. */
cell *tx_sign(tx *t, const keypair *k);
/* Parses a signed transaction without checking the signature: 0, or -1 with err_msg(). */
int tx_parse(const cell *signed_tx, tx *out);
/* Checks the signature over the body of signed_tx against out->signer (after tx_parse). */
bool tx_signature_ok(const cell *signed_tx, const tx *t);
const char *tx_op_name(uint32_t op);

#endif
