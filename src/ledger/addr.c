/* TON addresses: text forms, cell encoding, contract and wallet derivation; see addr.h. */
#include "ledger/addr.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/hex.h"

/* Wallet v4r2's code cell, known by hash and depth alone (TON.md "Contract addresses");
 * checked in tests against @ton/ton's WalletContractV4. */
static const uint8_t WALLET_V4R2_CODE_HASH[32] = {
    0xfe, 0xb5, 0xff, 0x68, 0x20, 0xe2, 0xff, 0x0d, 0x94, 0x83, 0xe7, 0xe0, 0xd6, 0x2c, 0x81, 0x7d,
    0x84, 0x67, 0x89, 0xfb, 0x4a, 0xe5, 0x80, 0xc8, 0x78, 0x86, 0x6d, 0x95, 0x9d, 0xab, 0xd5, 0xc0,
};
#define WALLET_V4R2_CODE_DEPTH 7

#define TAG_BOUNCEABLE 0x11
#define TAG_NON_BOUNCEABLE 0x51
#define TAG_TESTNET 0x80

bool addr_equal(const ton_addr *a, const ton_addr *b) {
    return a->workchain == b->workchain && memcmp(a->hash, b->hash, 32) == 0;
}

void addr_to_raw(const ton_addr *a, char out[ADDR_RAW_LEN]) {
    char hex[65];
    hex_encode(a->hash, 32, hex);
    snprintf(out, ADDR_RAW_LEN, "%d:%s", a->workchain, hex);
}

static uint16_t crc16_xmodem(const uint8_t *p, size_t n) {
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int k = 0; k < 8; k++) crc = (uint16_t)((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

static void pack_text(const ton_addr *a, unsigned flags, uint8_t raw[36]) {
    raw[0] = (uint8_t)(((flags & ADDR_BOUNCEABLE) ? TAG_BOUNCEABLE : TAG_NON_BOUNCEABLE) |
                       ((flags & ADDR_TESTNET) ? TAG_TESTNET : 0));
    raw[1] = (uint8_t)a->workchain;
    memcpy(raw + 2, a->hash, 32);
    uint16_t crc = crc16_xmodem(raw, 34);
    raw[34] = (uint8_t)(crc >> 8);
    raw[35] = (uint8_t)crc;
}

void addr_to_text(const ton_addr *a, unsigned flags, char out[ADDR_TEXT_LEN]) {
    uint8_t raw[36];
    pack_text(a, flags, raw);
    sodium_bin2base64(out, ADDR_TEXT_LEN, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE);
}

static int parse_raw(const char *s, const char *colon, ton_addr *a) {
    char *end;
    long wc = strtol(s, &end, 10);
    if (end != colon || end == s || wc < -128 || wc > 127)
        return err_set("address '%.80s': workchain must be an integer from -128 to 127", s);
    a->workchain = (int8_t)wc;
    return hex_decode(colon + 1, a->hash, 32, "address hash");
}

static int parse_text(const char *s, ton_addr *a, unsigned *flags) {
    uint8_t raw[36];
    size_t n = 0;
    bool url = strpbrk(s, "-_") != NULL;
    if (strlen(s) != 48 ||
        sodium_base642bin(raw, sizeof raw, s, 48, NULL, &n, NULL,
                          url ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != sizeof raw)
        return err_set("address '%.80s' is neither wc:hex nor a 48-character base64 address", s);
    uint16_t crc = crc16_xmodem(raw, 34);
    if (raw[34] != (uint8_t)(crc >> 8) || raw[35] != (uint8_t)crc)
        return err_set("address '%s': checksum mismatch (mistyped?)", s);
    unsigned tag = raw[0] & ~TAG_TESTNET;
    if (tag != TAG_BOUNCEABLE && tag != TAG_NON_BOUNCEABLE)
        return err_set("address '%s': unknown tag byte 0x%02x", s, raw[0]);
    a->workchain = (int8_t)raw[1];
    memcpy(a->hash, raw + 2, 32);
    *flags = (tag == TAG_BOUNCEABLE ? ADDR_BOUNCEABLE : 0) | ((raw[0] & TAG_TESTNET) ? ADDR_TESTNET : 0);
    return 0;
}

int addr_parse(const char *s, ton_addr *a, unsigned *flags) {
    unsigned f = 0;
    const char *colon = strchr(s, ':');
    int rc = colon ? parse_raw(s, colon, a) : parse_text(s, a, &f);
    if (rc == 0 && flags) *flags = f;
    return rc;
}

int addr_store(cell_builder *b, const ton_addr *a) {
    if (cell_store_uint(b, 2, 2) || cell_store_uint(b, 0, 1) || cell_store_int(b, a->workchain, 8) ||
        cell_store_bytes(b, a->hash, 32))
        return err_prefix("storing address");
    return 0;
}

int addr_store_none(cell_builder *b) { return cell_store_uint(b, 0, 2); }

/* After the 2-bit tag 10: anycast bit, workchain, hash. */
static int load_std(cell_slice *s, ton_addr *a) {
    uint64_t anycast;
    int64_t wc;
    if (cell_load_uint(s, 1, &anycast)) return -1;
    if (anycast) return err_set("address at bit %u has an anycast prefix (not supported)", s->bit - 1);
    if (cell_load_int(s, 8, &wc) || cell_load_bytes(s, 32, a->hash)) return -1;
    a->workchain = (int8_t)wc;
    return 0;
}

static const char *KIND_NAMES[4] = {"addr_none", "addr_extern", "addr_std", "addr_var"};

int addr_load(cell_slice *s, ton_addr *a) {
    cell_slice save = *s;
    uint64_t kind;
    if (cell_load_uint(s, 2, &kind)) goto fail;
    if (kind != 2) {
        err_set("address at bit %u is %s, expected addr_std", save.bit, KIND_NAMES[kind]);
        goto fail;
    }
    if (load_std(s, a)) goto fail;
    return 0;
fail:
    *s = save;
    return -1;
}

int addr_load_maybe(cell_slice *s, ton_addr *a, bool *present) {
    cell_slice save = *s;
    uint64_t kind;
    if (cell_load_uint(s, 2, &kind)) goto fail;
    if (kind == 0) {
        *present = false;
        memset(a, 0, sizeof *a);
        return 0;
    }
    if (kind != 2) {
        err_set("address at bit %u is %s, expected addr_none or addr_std", save.bit, KIND_NAMES[kind]);
        goto fail;
    }
    if (load_std(s, a)) goto fail;
    *present = true;
    return 0;
fail:
    *s = save;
    return -1;
}

/* StateInit `0 0 1 1 0` + refs (code, data): 5 bits, so d2 = 1 and the data byte is 00110
 * followed by the completion tag: 0x34. The representation is written out directly because the
 * code cell is known only by hash and depth. */
int addr_of_contract(int8_t workchain, const uint8_t code_hash[32], unsigned code_depth, const cell *data,
                     ton_addr *out) {
    uint8_t repr[3 + 2 * 2 + 2 * 32];
    if (code_depth > CELL_MAX_DEPTH) return err_set("contract address: code depth %u passes the limit", code_depth);
    repr[0] = 2;
    repr[1] = 1;
    repr[2] = 0x34;
    repr[3] = (uint8_t)(code_depth >> 8);
    repr[4] = (uint8_t)code_depth;
    repr[5] = (uint8_t)(cell_depth(data) >> 8);
    repr[6] = (uint8_t)cell_depth(data);
    memcpy(repr + 7, code_hash, 32);
    memcpy(repr + 39, cell_hash(data), 32);
    out->workchain = workchain;
    crypto_hash_sha256(out->hash, repr, sizeof repr);
    return 0;
}

/* Wallet v4r2 data: seqno:u32 subwallet_id:u32 public_key:bits256 plugins:(HashmapE 256) = 0. */
int addr_of_wallet(const uint8_t public_key[32], ton_addr *out) {
    cell_builder b;
    cell_build_init(&b);
    cell_store_uint(&b, 0, 32);
    cell_store_uint(&b, ADDR_WALLET_V4_SUBWALLET, 32);
    cell_store_bytes(&b, public_key, 32);
    cell_store_uint(&b, 0, 1);
    cell *data = cell_finish(&b);
    if (!data) return err_prefix("wallet address");
    int rc = addr_of_contract(0, WALLET_V4R2_CODE_HASH, WALLET_V4R2_CODE_DEPTH, data, out);
    cell_unref(data);
    return rc;
}
