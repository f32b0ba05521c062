/* Cumulative payment vouchers, as COCOON's contracts take them (TON.md "Signed voucher"):
 *
 *   payload = op:u32 query_id:u64 new_tokens:u64 expected_my_address:MsgAddress
 *   body    = op:u32 query_id:u64 send_excesses_to:MsgAddress signature:bits512 ^payload
 *
 * The channel's payer signs the payload's cell hash with Ed25519: the client for a charge, the
 * proxy for a payout (docs/PAYMENTS.md "Who signs what"). The payload names the channel (the
 * contract address that must execute it) and the channel's new cumulative total: a newer
 * voucher supersedes every older one, so a replayed or stale voucher gains nothing. veil reads
 * new_tokens as nano-units (docs/PAYMENTS.md says why). send_excesses_to is outside the
 * signature on purpose: the holder fills in where the contract's change goes.
 *
 * voucher_verify checks, in this order, and fails with a distinct voucher_status for each:
 * the layout, the signature, the envelope's copies of op and query_id, the op, the channel,
 * that the amount exceeds the last accepted one, and that it stays within the channel's cap. */
#ifndef VEIL_VOUCHER_H
#define VEIL_VOUCHER_H

#include <stdbool.h>
#include <stdint.h>

#include "ledger/addr.h"
#include "ledger/cell.h"
#include "ledger/keys.h"

#define VOUCHER_OP_CHARGE 0xbb63ff93u /* ext_client_charge_signed: a client pays its proxy */
#define VOUCHER_OP_PAYOUT 0xa040ad28u /* ext_worker_payout_request_signed: a proxy pays a worker */

typedef struct voucher {
    uint32_t op;
    uint64_t query_id;
    uint64_t amount;      /* cumulative total of the channel, nano-units (new_tokens) */
    ton_addr channel;     /* expected_my_address */
    bool has_excesses;    /* send_excesses_to: addr_none when false */
    ton_addr excesses_to;
    uint8_t signature[64];
} voucher;

typedef enum voucher_status {
    VOUCHER_OK = 0,
    VOUCHER_MALFORMED = -1,     /* not the layout above (or trailing data) */
    VOUCHER_BAD_SIGNATURE = -2, /* forged, altered, or signed by a key other than the expected one */
    VOUCHER_MISMATCH = -3,      /* the envelope's op or query_id differs from the signed payload's */
    VOUCHER_WRONG_OP = -4,      /* a valid voucher of another kind (charge vs payout) */
    VOUCHER_WRONG_CHANNEL = -5, /* a valid voucher for another channel */
    VOUCHER_STALE = -6,         /* not above the last accepted total: a replay or an old voucher */
    VOUCHER_OVER_LIMIT = -7,    /* above what the channel can pay */
} voucher_status;

/* What the party receiving a voucher expects of it. */
typedef struct voucher_expect {
    uint32_t op;
    const uint8_t *signer;   /* the payer's Ed25519 public key, 32 bytes */
    const ton_addr *channel; /* the channel this voucher must be for */
    uint64_t last_amount;    /* highest total accepted so far (0 for a new channel) */
    uint64_t max_amount;     /* cap on the total (e.g. the channel's deposit); UINT64_MAX for none */
} voucher_expect;

/* The payload cell (what is signed). */
cell *voucher_payload(const voucher *v);
/* Signs the payload into v->signature and returns the body. */
cell *voucher_sign(voucher *v, const keypair *signer);
/* The body from v as it stands, signature included: parse, change excesses_to, rebuild is how
 * a holder repacks a voucher without invalidating it. */
cell *voucher_body(const voucher *v);

/* Reads a body's fields without checking the signature: VOUCHER_MALFORMED, or VOUCHER_MISMATCH
 * when the envelope's op or query_id differ from the payload's. `out` is filled on success. */
int voucher_parse(const cell *body, voucher *out);
/* VOUCHER_OK and *out (may be NULL) filled, or a negative voucher_status with err_msg(). */
int voucher_verify(const cell *body, const voucher_expect *e, voucher *out);

/* Raises v->amount by delta (checked: an overflow fails and leaves v unchanged). */
int voucher_add(voucher *v, uint64_t delta);

const char *voucher_status_name(int status);

#endif
