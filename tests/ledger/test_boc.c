/* BOC: byte-exact agreement with @ton/core, round trips of random cell graphs, and a clear
 * error for each kind of damage (never a crash: the ASan build runs these too). */
#include "test.h"

#include "base/crc32c.h"
#include "base/err.h"
#include "ledger/boc.h"
#include "ton_vectors.h"

#include <stdlib.h>

static int bytes_are(const uint8_t *p, size_t n, const char *hex) {
    char *got = malloc(2 * n + 1);
    if (!got) return 0;
    hex_encode(p, n, got);
    int same = strcmp(got, hex) == 0;
    if (!same) fprintf(stderr, "  got      %s\n  expected %s\n", got, hex);
    free(got);
    return same;
}

/* Parses a hex BOC; NULL (with err_msg()) when the parser refuses it. */
static cell *parse_hex(const char *hex) {
    size_t n;
    uint8_t *b = tv_bytes(hex, &n);
    cell *c = boc_parse(b, n);
    free(b);
    return c;
}

/* The parser must refuse the hex BOC with a message containing `why`. */
static void expect_refused(const char *hex, const char *why, int line) {
    cell *c = parse_hex(hex);
    if (c) test_fail(__FILE__, line, "accepted a bad BOC (%s)", why);
    else if (!strstr(err_msg(), why)) test_fail(__FILE__, line, "message '%s' lacks '%s'", err_msg(), why);
    cell_unref(c);
}
#define REFUSED(hex, why) expect_refused(hex, why, __LINE__)

TEST(crc32c_check_value) {
    CHECK(crc32c("123456789", 9) == 0xE3069283u);
    CHECK(crc32c("", 0) == 0);
}

TEST(boc_writes_what_ton_core_writes) {
    cell *mid, *root = tv_make_tree(&mid);
    static const struct {
        unsigned flags;
        const char *hex;
    } forms[] = {{0, TV_TREE_BOC}, {BOC_CRC32C, TV_TREE_BOC_CRC}, {BOC_CRC32C | BOC_INDEX, TV_TREE_BOC_IDX_CRC}};
    CHECK(root != NULL);
    if (!root) return;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        uint8_t *out;
        size_t len;
        CHECK_EQ_INT(boc_serialize(root, forms[i].flags, &out, &len), 0);
        CHECK_MSG(bytes_are(out, len, forms[i].hex), "form %zu", i);
        free(out);
        cell *back = parse_hex(forms[i].hex);
        CHECK_MSG(back != NULL, "%s", err_msg());
        if (back) CHECK(cell_equal(back, root));
        if (back) CHECK_EQ_INT(cell_depth(back), TV_TREE_ROOT_DEPTH);
        cell_unref(back);
    }
    cell_builder b;
    cell_build_init(&b);
    cell *empty = cell_finish(&b);
    uint8_t *out;
    size_t len;
    CHECK_EQ_INT(boc_serialize(empty, 0, &out, &len), 0);
    CHECK(bytes_are(out, len, TV_EMPTY_BOC));
    free(out);
    cell_unref(empty);
    cell_unref(mid);
    cell_unref(root);
}

/* A random DAG: each new cell takes random bits and up to 4 refs to earlier cells (so
 * sharing is common); the last cell is the root. */
static cell *random_graph(uint64_t *rng, int ncells) {
    cell **pool = calloc((size_t)ncells, sizeof *pool);
    cell_builder b;
    cell *root = NULL;
    for (int i = 0; i < ncells; i++) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        unsigned bits = (unsigned)(*rng >> 33) % (CELL_MAX_BITS + 1), nrefs = i ? (unsigned)(*rng >> 20) % 5 : 0;
        cell_build_init(&b);
        for (unsigned k = 0; k < bits; k++) {
            *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
            cell_store_uint(&b, (*rng >> 40) & 1, 1);
        }
        for (unsigned k = 0; k < nrefs; k++) cell_store_ref(&b, pool[(*rng >> (8 + 4 * k)) % (unsigned)i]);
        pool[i] = cell_finish(&b);
    }
    root = cell_ref(pool[ncells - 1]);
    for (int i = 0; i < ncells; i++) cell_unref(pool[i]);
    free(pool);
    return root;
}

TEST(boc_round_trips_random_graphs) {
    uint64_t rng = 42;
    for (int iter = 0; iter < 200; iter++) {
        cell *root = random_graph(&rng, 1 + iter % 40);
        CHECK(root != NULL);
        if (!root) return;
        for (unsigned flags = 0; flags < 4; flags++) {
            uint8_t *a, *b2;
            size_t alen, blen;
            CHECK_EQ_INT(boc_serialize(root, flags, &a, &alen), 0);
            cell *back = boc_parse(a, alen);
            CHECK_MSG(back != NULL, "iter %d flags %u: %s", iter, flags, err_msg());
            if (back) {
                CHECK(cell_equal(back, root));
                CHECK_EQ_INT(cell_depth(back), cell_depth(root));
                CHECK_EQ_INT(boc_serialize(back, flags, &b2, &blen), 0);
                CHECK(blen == alen && memcmp(a, b2, alen) == 0);
                free(b2);
            }
            cell_unref(back);
            free(a);
        }
        cell_unref(root);
    }
}

TEST(boc_refuses_bad_headers) {
    REFUSED("b5ee9c73010101010002000000", "not the standard b5ee9c72");
    REFUSED("b5ee9c72090101010002000000", "reserved flag bits");
    REFUSED("b5ee9c72000101010002000000", "cell reference size 0");
    REFUSED("b5ee9c72050101010002000000", "cell reference size 5");
    REFUSED("b5ee9c72010001010002000000", "offset size 0");
    REFUSED("b5ee9c72010901010002000000", "offset size 9");
    REFUSED("b5ee9c72210101010002000000", "cache bits without an index");
    REFUSED("b5ee9c7201010202000400010000000000", "2 roots");
    REFUSED("b5ee9c72010101010102000000", "absent cells");
    REFUSED("b5ee9c72010100010000", "no cells");
    REFUSED("b5ee9c720101010000020000", "0 roots");
    REFUSED("b5ee9c72010101010002010000", "root index 1 out of 1");
    REFUSED("b5ee9c720101ff010002000000", "cannot fit");
    REFUSED("b5ee9c72010101010010000000", "need more than");
    REFUSED("b5ee9c7201010101000200000000", "trailing data");
    REFUSED("b5ee9c72", "truncated at offset 4 reading flags");
    REFUSED("", "truncated at offset 0 reading magic");
    REFUSED("b5ee9c7241010101000200000000000000", "CRC-32C mismatch");
    REFUSED("b5ee9c724101", "too short for its CRC");
}

TEST(boc_refuses_bad_cells) {
    REFUSED("b5ee9c720101010100070005000000000000", "5 references");
    REFUSED("b5ee9c72010101010002000800", "exotic");
    REFUSED("b5ee9c72010101010002002000", "level mask 1");
    /* a cell that refers to itself: a cycle */
    REFUSED("b5ee9c7201010101000300010000", "refers to cell 0; references must point to later cells");
    /* cell 1 refers back to cell 0 */
    REFUSED("b5ee9c72010102010005010000010000", "cell 1 at offset 13 refers to cell 0");
    REFUSED("b5ee9c72010102010005000100050000", "refers to cell 5 of 2");
    REFUSED("b5ee9c7201010101000300000180", "bad completion tag");
    REFUSED("b5ee9c7201010101000300000100", "bad completion tag");
    REFUSED("b5ee9c72010101010003000000" "00", "cells end at offset");
    REFUSED("b5ee9c72010101010002000100", "truncated at offset 13 reading cell reference");
    REFUSED("b5ee9c72010101010003000004aa", "runs past the end");
}

/* Rewrites the CRC of a hex BOC that has one, so that a damaged body gets past the CRC. */
static char *with_fixed_crc(const char *hex) {
    size_t n;
    uint8_t *b = tv_bytes(hex, &n);
    uint32_t crc = crc32c(b, n - 4);
    for (int i = 0; i < 4; i++) b[n - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    char *out = malloc(2 * n + 1);
    hex_encode(b, n, out);
    free(b);
    return out;
}

TEST(boc_checks_index_and_stored_hashes) {
    /* TV_TREE_BOC_IDX_CRC with the second index entry 0d changed to 0e */
    char *bad = with_fixed_crc("b5ee9c72c1010401001300090e11130308123456780102030101f0020003abc80000e88e8f42");
    REFUSED(bad, "index entry 1 says cell ends at 14, it ends at 13");
    free(bad);

    /* the empty cell stored with its hash and depth (d1 bit 4) parses to the empty cell */
    cell *c = parse_hex("b5ee9c72010101010024001000" TV_EMPTY_HASH "0000");
    CHECK_MSG(c != NULL, "%s", err_msg());
    if (c) CHECK(tv_hash_is(cell_hash(c), TV_EMPTY_HASH));
    cell_unref(c);
    REFUSED("b5ee9c72010101010024001000" TV_BIT0_HASH "0000", "stores a hash or depth that is not its own");
    REFUSED("b5ee9c72010101010024001000" TV_EMPTY_HASH "0001", "stores a hash or depth that is not its own");
}

/* A chain of n cells, each referring to the next, with 2-byte references. */
static uint8_t *chain_boc(unsigned n, size_t *len) {
    size_t total = (size_t)(n - 1) * 4 + 2, pos = 0;
    uint8_t *b = malloc(4 + 2 + 3 * 2 + 2 + 2 + total);
    static const uint8_t head[] = {0xb5, 0xee, 0x9c, 0x72, 0x02, 0x02};
    memcpy(b, head, sizeof head);
    pos = sizeof head;
    uint8_t counts[] = {(uint8_t)(n >> 8), (uint8_t)n, 0, 1, 0, 0, (uint8_t)(total >> 8), (uint8_t)total, 0, 0};
    memcpy(b + pos, counts, sizeof counts);
    pos += sizeof counts;
    for (unsigned i = 0; i + 1 < n; i++) {
        b[pos++] = 1;
        b[pos++] = 0;
        b[pos++] = (uint8_t)((i + 1) >> 8);
        b[pos++] = (uint8_t)(i + 1);
    }
    b[pos++] = 0;
    b[pos++] = 0;
    *len = pos;
    return b;
}

TEST(boc_refuses_cells_deeper_than_ton_allows) {
    size_t len;
    uint8_t *ok = chain_boc(CELL_MAX_DEPTH + 1, &len);
    cell *c = boc_parse(ok, len);
    CHECK_MSG(c != NULL, "%s", err_msg());
    if (c) CHECK_EQ_INT(cell_depth(c), CELL_MAX_DEPTH);
    cell_unref(c);
    free(ok);
    uint8_t *deep = chain_boc(CELL_MAX_DEPTH + 2, &len);
    CHECK(boc_parse(deep, len) == NULL);
    CHECK(strstr(err_msg(), "depth 1025 passes the limit") != NULL);
    free(deep);
}

TEST(boc_every_truncation_and_bit_flip_is_caught) {
    cell *mid, *root = tv_make_tree(&mid);
    size_t n;
    uint8_t *crc = tv_bytes(TV_TREE_BOC_IDX_CRC, &n);
    for (size_t cut = 0; cut < n; cut++) CHECK_MSG(boc_parse(crc, cut) == NULL, "accepted a %zu-byte prefix", cut);
    /* CRC-32C catches every single-bit error */
    for (size_t bit = 0; bit < n * 8; bit++) {
        crc[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
        CHECK_MSG(boc_parse(crc, n) == NULL, "accepted a flip of bit %zu", bit);
        crc[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
    }
    free(crc);
    /* without a CRC a flip may give another valid tree, but never the same one: one encoding
     * per tree (no malleability) */
    uint8_t *plain = tv_bytes(TV_TREE_BOC, &n);
    for (size_t bit = 0; bit < n * 8; bit++) {
        plain[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
        cell *c = boc_parse(plain, n);
        CHECK_MSG(!c || !cell_equal(c, root), "a flip of bit %zu gave the same tree", bit);
        cell_unref(c);
        plain[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
    }
    free(plain);
    cell_unref(mid);
    cell_unref(root);
}
