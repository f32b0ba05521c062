/* TON account addresses: a workchain and the 256-bit hash of the account's StateInit cell.
 * Their text forms (raw "0:hex" and the 48-character user-friendly base64 form), their cell
 * encoding (MsgAddressInt addr_std, TON.md "Cells"), and the derivations veil uses: a contract
 * address from its code's hash and a data cell, and a wallet's address from its Ed25519 public
 * key (docs/PAYMENTS.md says why wallet v4r2). */
#ifndef VEIL_ADDR_H
#define VEIL_ADDR_H

#include <stdbool.h>
#include <stdint.h>

#include "ledger/cell.h"

typedef struct ton_addr {
    int8_t workchain; /* 0 basechain, -1 masterchain */
    uint8_t hash[32];
} ton_addr;

#define ADDR_RAW_LEN 70  /* "-128:" + 64 hex digits + NUL */
#define ADDR_TEXT_LEN 49 /* 48 base64url characters + NUL */

/* User-friendly form flags (they change the text, never the address). */
enum { ADDR_BOUNCEABLE = 1, ADDR_TESTNET = 2 };

/* The standard subwallet id of TON's wallet v4r2 on workchain 0. */
#define ADDR_WALLET_V4_SUBWALLET 698983191u

bool addr_equal(const ton_addr *a, const ton_addr *b);
void addr_to_raw(const ton_addr *a, char out[ADDR_RAW_LEN]);
/* base64url of tag, workchain, hash and a CRC16-XMODEM, as TON wallets show addresses. */
void addr_to_text(const ton_addr *a, unsigned flags, char out[ADDR_TEXT_LEN]);
/* Parses either form (user-friendly in base64url or standard base64, CRC checked); *flags (may
 * be NULL) gets the user-friendly form's flags, 0 for raw. */
int addr_parse(const char *s, ton_addr *a, unsigned *flags);

/* addr_std$10 anycast:0 workchain:int8 hash:bits256 (267 bits). */
int addr_store(cell_builder *b, const ton_addr *a);
/* addr_none$00, the "no address" value of a MsgAddress field. */
int addr_store_none(cell_builder *b);
/* Loads an addr_std without anycast; any other address kind is an error. */
int addr_load(cell_slice *s, ton_addr *a);
/* Loads a MsgAddress that must be addr_none (*present = false) or addr_std. */
int addr_load_maybe(cell_slice *s, ton_addr *a, bool *present);

/* The address of a contract whose StateInit is (code, data) with no split depth, special
 * flags or libraries: only the code's hash and depth are needed, not the code. */
int addr_of_contract(int8_t workchain, const uint8_t code_hash[32], unsigned code_depth, const cell *data,
                     ton_addr *out);
/* The address TON's wallet v4r2 (subwallet ADDR_WALLET_V4_SUBWALLET) has on workchain 0 for
 * this Ed25519 public key: the same key controls the same account on both ledgers. */
int addr_of_wallet(const uint8_t public_key[32], ton_addr *out);

#endif
