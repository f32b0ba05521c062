/* Test vectors computed by TON's reference libraries (@ton/core 0.63.1, @ton/crypto 3.3.0,
 * @ton/ton 16.3.0) with ton_vectors.mjs beside this file, plus a hex helper for the tests. */
#ifndef VEIL_TEST_TON_VECTORS_H
#define VEIL_TEST_TON_VECTORS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"
#include "ledger/cell.h"

/* cells: beginCell()...endCell().hash() */
#define TV_EMPTY_HASH "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
#define TV_BIT1_HASH "7c6c1a965fd501d2938c2c0e06626bdaa3531357016e169070c9ef79c4c46bc0"       /* storeUint(1,1) */
#define TV_BIT0_HASH "90aec8965afabb16ebc3cb9b408ebae71b618d78788bc80d09843593cac98da4"       /* storeUint(0,1) */
#define TV_DEADBEEF_HASH "270906fd171b9c43f37a353059a73fbc02e0568188ec30186af846caefd09b8c"   /* storeUint(0xdeadbeef,32) */
#define TV_FULL1023_HASH "82970d4664b7683c3d14d49b1f9ff34966128170301a7becc27af1adbe6a31c9"   /* 1023 one bits */
#define TV_INT8_M1_HASH "81f3b92f222078b1606cfc3eebfee22216cc40ac99e6524b00fbaa933a6bcd47"    /* storeInt(-1,8) */
#define TV_INT17_M5_HASH "f40bec5617279b8ff3c13fa2e0b754eccb5ec2d4839d86e10eed31af376acd91"   /* storeInt(-5,17) */
/* storeCoins(0), (1), (1e9), (2^64-1) */
#define TV_COINS_0_HASH "5331fed036518120c7f345726537745c5929b8ea1fa37b99b2bb58f702671541"
#define TV_COINS_1_HASH "d46edee086ccbace01f45c13d26d49b68f74cd1b7616f4662e699c82c6ec728b"
#define TV_COINS_1E9_HASH "e139b2d96d0bd76da98c3c23b0dc0481dcfe19562798fefbb7bf2e56d8ef37b5"
#define TV_COINS_MAX_HASH "adf537331727a5c8f7ea20fab079788a63fa72272bef567d88967d8035d66c45"

/* The tree: leaf = uint(0xabc,12); mid = uint(7,3) ^leaf;
 * root = uint(0x12345678,32) ^mid ^leaf ^empty (leaf shared). */
#define TV_TREE_ROOT_HASH "d9685f645239ef76710ed4415724f063f4be4e23eaaa5659701508ac24693c6b"
#define TV_TREE_ROOT_DEPTH 2
#define TV_TREE_MID_HASH "61b110cccf0782045b6d819c339ba03ced46114614aff989597a7cc5b13d263e"
#define TV_TREE_MID_DEPTH 1
/* root.toBoc({idx, crc32}) */
#define TV_TREE_BOC "b5ee9c72010104010013000308123456780102030101f0020003abc80000"
#define TV_TREE_BOC_CRC "b5ee9c72410104010013000308123456780102030101f0020003abc80000eb64a534"
#define TV_TREE_BOC_IDX_CRC "b5ee9c72c1010401001300090d11130308123456780102030101f0020003abc80000e88e8f42"
#define TV_EMPTY_BOC "b5ee9c72010101010002000000"

/* addresses: storeAddress(a) cell hash, then a.toString() forms */
#define TV_ADDR_RAW "0:83dfd552e63729b472fcbcc8c45ebcc6691702558b68ec7527e1ba403a0f31a8"
#define TV_ADDR_CELL_HASH "58e2d2fc9446d00e70b3ad3ea1eb88797c323bae517f2527f807f62d09a56fdc"
#define TV_ADDR_BOUNCEABLE "EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2N"
#define TV_ADDR_NON_BOUNCEABLE "UQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqEBI"
#define TV_ADDR_TESTNET "kQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqKYH"
#define TV_ADDR_M_RAW "-1:3333333333333333333333333333333333333333333333333333333333333333"
#define TV_ADDR_M_CELL_HASH "809792c63d0514973bba96bde565a2d70eeef1e0fd43ef3a0531d446981a3d7e"
#define TV_ADDR_M_BOUNCEABLE "Ef8zMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM0vF"
#define TV_ADDR_NONE_CELL_HASH "a1bb2a842d54edb8942f95bedaf53923d2d788d698232cfb256571e9e8b10a86"
/* contractAddress(0, {code: mid, data: leaf}) */
#define TV_STATE_INIT_ADDR "0:890aadbc3eec2e2f7176bc082f8b90696927b540314ccb677b40f5b7f52b0016"

/* keys: seed = bytes 1..32; keyPairFromSeed(seed).publicKey; WalletContractV4 on workchain 0 */
#define TV_PUBLIC_KEY "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664"
#define TV_WALLET_RAW "0:e71f2b5f35e5cd52f7dd471e359e5b15a93fc3b88fd6bc5cccacd9d5afb9fc85"
#define TV_WALLET_TEXT "EQDnHytfNeXNUvfdRx41nlsVqT_DuI_WvFzMrNnVr7n8hWAO"

/* voucher: op bb63ff93, query 0x1122334455667788, new_tokens 1000000, channel 0:11..11,
 * signed by the key above, send_excesses_to addr_none */
#define TV_VOUCHER_PAYLOAD_HASH "086ce17ffe54b908f8fc890be0ab09fac01155fc189d2aee31f02a5b65435789"
#define TV_VOUCHER_SIGNATURE \
    "db934f5a9b22b1ac8a8e6676997f4c9e7613e293373e301bf7cdd36b4bf96f58293da7bab520ce7de236f79ace9c5f75" \
    "92043b2887c1e7868433abfbeb9e1c00"
#define TV_VOUCHER_BODY_HASH "e5ce85e443d170791ebfc8e34a14fb4e243d12eaae850886b3937c3a3b61b607"
#define TV_VOUCHER_BOC \
    "b5ee9c72010102010088000199bb63ff93112233445566778836e4d3d6a6c8ac6b22a3999da65fd3279d84f8a4cdcf8c" \
    "06fdf374dad2fe5bd60a4f69eead48339f788dbde6b3a717dd64810eca21f079e1a10ceafefae787002001006bbb63ff" \
    "93112233445566778800000000000f424080022222222222222222222222222222222222222222222222222222222222" \
    "222230"

/* Decodes a hex vector into a malloc'd buffer (*len bytes); aborts on a bad vector. */
static inline uint8_t *tv_bytes(const char *hex, size_t *len) {
    size_t n = strlen(hex) / 2;
    uint8_t *b = malloc(n ? n : 1);
    if (!b || hex_decode(hex, b, n, "test vector")) abort();
    *len = n;
    return b;
}

/* Whether a 32-byte hash equals a hex vector. */
static inline int tv_hash_is(const uint8_t *hash, const char *hex) {
    char got[65];
    hex_encode(hash, 32, got);
    return strcmp(got, hex) == 0;
}

/* Builds the tree of TV_TREE_*; returns root, and mid through *mid_out (a new reference). */
static inline cell *tv_make_tree(cell **mid_out) {
    cell_builder b;
    cell_build_init(&b);
    cell_store_uint(&b, 0xabc, 12);
    cell *leaf = cell_finish(&b);
    cell_store_uint(&b, 7, 3);
    cell_store_ref(&b, leaf);
    cell *mid = cell_finish(&b);
    cell *empty = cell_finish(&b);
    cell_store_uint(&b, 0x12345678, 32);
    cell_store_ref(&b, mid);
    cell_store_ref(&b, leaf);
    cell_store_ref(&b, empty);
    cell *root = cell_finish(&b);
    cell_unref(leaf);
    cell_unref(empty);
    *mid_out = mid;
    return root;
}

#endif
