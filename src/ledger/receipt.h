/* Worker receipts: for each request the worker signs what it served, so the client can check
 * a proxy's charges against work it can prove (issue 6 item 5; COCOON has no such check).
 *
 *   receipt        = tag:u32 (0x72637074, "rcpt") request_id:bits256 request_hash:bits256
 *                    model_hash:bits256 prompt_tokens:u64 cached_tokens:u64 completion_tokens:u64
 *   signed_receipt = signature:bits512 ^receipt
 *
 * 992 bits, one cell; the worker signs the receipt cell's hash with Ed25519, as vouchers are
 * signed, so a TON contract could check receipts with the same CHKSIGNU. Cached tokens are
 * the part of the prompt served from cache, so cached_tokens <= prompt_tokens. */
#ifndef VEIL_RECEIPT_H
#define VEIL_RECEIPT_H

#include <stdint.h>

#include "ledger/cell.h"
#include "ledger/keys.h"

#define RECEIPT_TAG 0x72637074u

typedef struct receipt {
    uint8_t request_id[32];   /* the request's id, unique per client */
    uint8_t request_hash[32]; /* SHA-256 of the sealed (end-to-end encrypted) request bytes */
    uint8_t model_hash[32];   /* SHA-256 of the model file the worker ran */
    uint64_t prompt_tokens;
    uint64_t cached_tokens;
    uint64_t completion_tokens;
} receipt;

typedef enum receipt_status {
    RECEIPT_OK = 0,
    RECEIPT_MALFORMED = -1,     /* not the layout, or cached > prompt */
    RECEIPT_BAD_SIGNATURE = -2, /* forged, altered, or not signed by the expected worker */
} receipt_status;

/* The receipt cell (what is signed). */
cell *receipt_cell(const receipt *r);
/* The signed receipt. */
cell *receipt_sign(const receipt *r, const keypair *worker);
/* RECEIPT_OK and *out filled, or a negative receipt_status with err_msg(). */
int receipt_verify(const cell *signed_receipt, const uint8_t worker_key[32], receipt *out);

#endif
