/* Cells: representation hashes and depths against @ton/core's, the builder's limits, and a
 * slice that never reads past the end. */
#include "test.h"

#include "base/err.h"
#include "ledger/cell.h"
#include "ton_vectors.h"

#include <stdint.h>

/* Finishes b and checks the cell's hash against a vector; returns the cell for more checks. */
static cell *finish_expect(cell_builder *b, const char *hash_hex) {
    cell *c = cell_finish(b);
    CHECK_MSG(c != NULL, "cell_finish: %s", err_msg());
    if (c) CHECK_MSG(tv_hash_is(cell_hash(c), hash_hex), "hash mismatch, expected %s", hash_hex);
    return c;
}

TEST(cell_empty_hash_is_the_ton_constant) {
    cell_builder b;
    cell_build_init(&b);
    cell *c = finish_expect(&b, TV_EMPTY_HASH);
    if (!c) return;
    CHECK_EQ_INT(cell_depth(c), 0);
    CHECK_EQ_INT(cell_bits(c), 0);
    CHECK_EQ_INT(cell_d1(c), 0);
    CHECK_EQ_INT(cell_d2(c), 0);
    cell_unref(c);
}

TEST(cell_hashes_match_ton_core) {
    cell_builder b;
    struct {
        uint64_t v;
        unsigned n;
        const char *hash;
    } uints[] = {{1, 1, TV_BIT1_HASH}, {0, 1, TV_BIT0_HASH}, {0xdeadbeef, 32, TV_DEADBEEF_HASH}};
    for (size_t i = 0; i < sizeof uints / sizeof uints[0]; i++) {
        cell_build_init(&b);
        CHECK_EQ_INT(cell_store_uint(&b, uints[i].v, uints[i].n), 0);
        cell_unref(finish_expect(&b, uints[i].hash));
    }
    cell_build_init(&b);
    for (int i = 0; i < CELL_MAX_BITS; i++) cell_store_uint(&b, 1, 1);
    CHECK_EQ_INT(cell_build_bits_left(&b), 0);
    cell_unref(finish_expect(&b, TV_FULL1023_HASH));

    cell_build_init(&b);
    CHECK_EQ_INT(cell_store_int(&b, -1, 8), 0);
    cell_unref(finish_expect(&b, TV_INT8_M1_HASH));
    cell_build_init(&b);
    CHECK_EQ_INT(cell_store_int(&b, -5, 17), 0);
    cell_unref(finish_expect(&b, TV_INT17_M5_HASH));

    struct {
        uint64_t v;
        const char *hash;
    } coins[] = {{0, TV_COINS_0_HASH}, {1, TV_COINS_1_HASH}, {1000000000, TV_COINS_1E9_HASH},
                 {UINT64_MAX, TV_COINS_MAX_HASH}};
    for (size_t i = 0; i < sizeof coins / sizeof coins[0]; i++) {
        cell_build_init(&b);
        CHECK_EQ_INT(cell_store_coins(&b, coins[i].v), 0);
        cell *c = finish_expect(&b, coins[i].hash);
        if (!c) continue;
        cell_slice s;
        uint64_t back = 1;
        cell_slice_init(&s, c);
        CHECK_EQ_INT(cell_load_coins(&s, &back), 0);
        CHECK(back == coins[i].v);
        CHECK_EQ_INT(cell_slice_end(&s, "coins"), 0);
        cell_unref(c);
    }
}

TEST(cell_tree_hash_and_depth_match_ton_core) {
    cell *mid, *root = tv_make_tree(&mid);
    CHECK(root && mid);
    if (!root || !mid) return;
    CHECK(tv_hash_is(cell_hash(root), TV_TREE_ROOT_HASH));
    CHECK(tv_hash_is(cell_hash(mid), TV_TREE_MID_HASH));
    CHECK_EQ_INT(cell_depth(root), TV_TREE_ROOT_DEPTH);
    CHECK_EQ_INT(cell_depth(mid), TV_TREE_MID_DEPTH);
    CHECK_EQ_INT(cell_nrefs(root), 3);
    CHECK(cell_equal(cell_child(root, 0), mid));
    CHECK(cell_child(root, 3) == NULL);
    CHECK_EQ_INT(cell_d1(root), 3);
    CHECK_EQ_INT(cell_d2(root), 8);
    CHECK_EQ_INT(cell_d2(mid), 1);
    cell_unref(mid);
    cell_unref(root);
}

TEST(cell_builder_refuses_what_does_not_fit) {
    cell_builder b;
    cell_build_init(&b);
    CHECK_EQ_INT(cell_store_uint(&b, 2, 1), -1); /* 2 needs two bits */
    CHECK(strstr(err_msg(), "does not fit") != NULL);
    CHECK(cell_finish(&b) == NULL); /* the failed store poisons the builder */
    CHECK(strstr(err_msg(), "earlier store failed") != NULL);

    cell_build_init(&b);
    CHECK_EQ_INT(cell_store_int(&b, 128, 8), -1);
    cell_build_abort(&b);
    cell_build_init(&b);
    CHECK_EQ_INT(cell_store_int(&b, -129, 8), -1);
    cell_build_abort(&b);
    cell_build_init(&b);
    CHECK_EQ_INT(cell_store_int(&b, -128, 8), 0);
    CHECK_EQ_INT(cell_store_int(&b, INT64_MIN, 64), 0);
    CHECK_EQ_INT(cell_store_uint(&b, UINT64_MAX, 64), 0);
    CHECK_EQ_INT(cell_store_uint(&b, 0, 65), -1);
    cell_build_abort(&b);

    cell_build_init(&b);
    CHECK_EQ_INT(cell_store_uint(&b, 0, 1000), -1);
    cell_build_abort(&b);
    cell_build_init(&b);
    for (int i = 0; i < 15; i++) CHECK_EQ_INT(cell_store_uint(&b, 0, 64), 0);
    CHECK_EQ_INT(cell_store_uint(&b, 0, 63), 0);
    CHECK_EQ_INT(cell_store_uint(&b, 0, 1), -1); /* bit 1024 */
    CHECK(strstr(err_msg(), "1023-bit limit") != NULL);
    cell_build_abort(&b);

    cell_build_init(&b);
    cell *empty = cell_finish(&b);
    CHECK(empty != NULL);
    for (int i = 0; i < CELL_MAX_REFS; i++) CHECK_EQ_INT(cell_store_ref(&b, empty), 0);
    CHECK_EQ_INT(cell_store_ref(&b, empty), -1);
    CHECK(strstr(err_msg(), "at most 4") != NULL);
    CHECK(cell_finish(&b) == NULL); /* releases the four references it held */
    cell_unref(empty);
}

TEST(cell_depth_limit_is_enforced) {
    cell_builder b;
    cell_build_init(&b);
    cell *c = cell_finish(&b);
    for (int d = 1; d <= CELL_MAX_DEPTH && c; d++) {
        cell_store_ref(&b, c);
        cell_unref(c);
        c = cell_finish(&b);
    }
    CHECK(c != NULL);
    if (!c) return;
    CHECK_EQ_INT(cell_depth(c), CELL_MAX_DEPTH);
    cell_store_ref(&b, c);
    CHECK(cell_finish(&b) == NULL);
    CHECK(strstr(err_msg(), "depth 1025") != NULL);
    cell_unref(c);
}

TEST(cell_slice_reads_back_and_stops_at_the_end) {
    cell_builder b;
    uint8_t bytes[3] = {0xa5, 0x5a, 0xff}, back[3];
    cell_build_init(&b);
    cell_store_uint(&b, 5, 3);
    cell_store_int(&b, -2, 7);
    cell_store_bits(&b, bytes, 20);
    cell_store_coins(&b, 300);
    cell *leaf = cell_finish(&b);
    cell_store_ref(&b, leaf);
    cell_store_uint(&b, 1, 1);
    cell *c = cell_finish(&b);
    CHECK(leaf && c);
    if (!leaf || !c) return;

    cell_slice s;
    uint64_t u;
    int64_t i;
    const cell *r;
    cell_slice_init(&s, leaf);
    CHECK_EQ_INT(cell_load_uint(&s, 3, &u), 0);
    CHECK_EQ_INT(u, 5);
    CHECK_EQ_INT(cell_load_int(&s, 7, &i), 0);
    CHECK_EQ_INT(i, -2);
    CHECK_EQ_INT(cell_load_bits(&s, 20, back), 0);
    CHECK_EQ_INT(back[0], 0xa5);
    CHECK_EQ_INT(back[1], 0x5a);
    CHECK_EQ_INT(back[2], 0xf0); /* 4 bits of 0xff, the rest cleared */
    CHECK_EQ_INT(cell_load_coins(&s, &u), 0);
    CHECK_EQ_INT(u, 300);
    CHECK_EQ_INT(cell_slice_bits_left(&s), 0);
    CHECK_EQ_INT(cell_load_uint(&s, 1, &u), -1);
    CHECK(strstr(err_msg(), "reading 1 bits at bit 50 of a 50-bit cell") != NULL);
    CHECK_EQ_INT(cell_slice_end(&s, "leaf"), 0);

    cell_slice_init(&s, c);
    CHECK_EQ_INT(cell_slice_end(&s, "parent"), -1);
    CHECK(strstr(err_msg(), "1 bits and 1 references left") != NULL);
    CHECK_EQ_INT(cell_load_ref(&s, &r), 0);
    CHECK(cell_equal(r, leaf));
    CHECK_EQ_INT(cell_load_ref(&s, &r), -1);
    /* a failed multi-bit load leaves the slice where it was */
    CHECK_EQ_INT(cell_load_uint(&s, 2, &u), -1);
    CHECK_EQ_INT(cell_load_uint(&s, 1, &u), 0);
    CHECK_EQ_INT(u, 1);
    cell_unref(c);
    cell_unref(leaf);
}

TEST(cell_coins_beyond_64_bits_are_refused) {
    cell_builder b;
    cell_build_init(&b);
    cell_store_uint(&b, 9, 4); /* 9 bytes: 2^64 */
    cell_store_uint(&b, 1, 8);
    cell_store_uint(&b, 0, 64);
    cell *big = cell_finish(&b);
    cell_store_uint(&b, 9, 4); /* 9 bytes with a leading zero: still u64 */
    cell_store_uint(&b, 0, 8);
    cell_store_uint(&b, UINT64_MAX, 64);
    cell *padded = cell_finish(&b);
    cell_store_uint(&b, 15, 4); /* claims 15 bytes, has none */
    cell *short_coins = cell_finish(&b);
    CHECK(big && padded && short_coins);
    if (!big || !padded || !short_coins) return;
    cell_slice s;
    uint64_t v = 7;
    cell_slice_init(&s, big);
    CHECK_EQ_INT(cell_load_coins(&s, &v), -1);
    CHECK(strstr(err_msg(), "does not fit in 64 bits") != NULL);
    CHECK_EQ_INT(s.bit, 0);
    CHECK_EQ_INT(v, 7);
    cell_slice_init(&s, padded);
    CHECK_EQ_INT(cell_load_coins(&s, &v), 0);
    CHECK(v == UINT64_MAX);
    cell_slice_init(&s, short_coins);
    CHECK_EQ_INT(cell_load_coins(&s, &v), -1);
    CHECK_EQ_INT(s.bit, 0);
    cell_unref(big);
    cell_unref(padded);
    cell_unref(short_coins);
}
