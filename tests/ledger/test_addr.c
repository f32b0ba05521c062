/* TON addresses: cell encoding and text forms against @ton/core, contract and wallet
 * derivation against @ton/core and @ton/ton, and refusal of what veil does not accept. */
#include "test.h"

#include "base/err.h"
#include "ledger/addr.h"
#include "ton_vectors.h"

static cell *addr_cell(const ton_addr *a) {
    cell_builder b;
    cell_build_init(&b);
    if (a) addr_store(&b, a);
    else addr_store_none(&b);
    return cell_finish(&b);
}

TEST(addr_forms_match_ton_core) {
    ton_addr a, back;
    unsigned flags = 99;
    char raw[ADDR_RAW_LEN], text[ADDR_TEXT_LEN];
    CHECK_EQ_INT(addr_parse(TV_ADDR_RAW, &a, &flags), 0);
    CHECK_EQ_INT(flags, 0);
    CHECK_EQ_INT(a.workchain, 0);
    addr_to_raw(&a, raw);
    CHECK_EQ_STR(raw, TV_ADDR_RAW);
    addr_to_text(&a, ADDR_BOUNCEABLE, text);
    CHECK_EQ_STR(text, TV_ADDR_BOUNCEABLE);
    addr_to_text(&a, 0, text);
    CHECK_EQ_STR(text, TV_ADDR_NON_BOUNCEABLE);
    addr_to_text(&a, ADDR_BOUNCEABLE | ADDR_TESTNET, text);
    CHECK_EQ_STR(text, TV_ADDR_TESTNET);

    static const struct {
        const char *s;
        unsigned flags;
    } forms[] = {{TV_ADDR_BOUNCEABLE, ADDR_BOUNCEABLE}, {TV_ADDR_NON_BOUNCEABLE, 0},
                 {TV_ADDR_TESTNET, ADDR_BOUNCEABLE | ADDR_TESTNET}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        CHECK_MSG(addr_parse(forms[i].s, &back, &flags) == 0, "%s: %s", forms[i].s, err_msg());
        CHECK(addr_equal(&a, &back));
        CHECK_EQ_INT(flags, forms[i].flags);
    }

    cell *c = addr_cell(&a);
    CHECK(c && tv_hash_is(cell_hash(c), TV_ADDR_CELL_HASH));
    CHECK(c && cell_bits(c) == 267);
    cell_slice s;
    cell_slice_init(&s, c);
    CHECK_EQ_INT(addr_load(&s, &back), 0);
    CHECK(addr_equal(&a, &back));
    cell_unref(c);

    CHECK_EQ_INT(addr_parse(TV_ADDR_M_RAW, &a, NULL), 0);
    CHECK_EQ_INT(a.workchain, -1);
    addr_to_text(&a, ADDR_BOUNCEABLE, text);
    CHECK_EQ_STR(text, TV_ADDR_M_BOUNCEABLE);
    addr_to_raw(&a, raw);
    CHECK_EQ_STR(raw, TV_ADDR_M_RAW);
    c = addr_cell(&a);
    CHECK(c && tv_hash_is(cell_hash(c), TV_ADDR_M_CELL_HASH));
    cell_unref(c);

    c = addr_cell(NULL);
    CHECK(c && tv_hash_is(cell_hash(c), TV_ADDR_NONE_CELL_HASH));
    bool present = true;
    cell_slice_init(&s, c);
    CHECK_EQ_INT(addr_load_maybe(&s, &back, &present), 0);
    CHECK(!present);
    cell_slice_init(&s, c);
    CHECK_EQ_INT(addr_load(&s, &back), -1);
    CHECK(strstr(err_msg(), "addr_none, expected addr_std") != NULL);
    CHECK_EQ_INT(s.bit, 0);
    cell_unref(c);
}

TEST(addr_parse_refuses_bad_text) {
    ton_addr a;
    char typo[] = TV_ADDR_BOUNCEABLE;
    typo[10] = typo[10] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(addr_parse(typo, &a, NULL), -1);
    CHECK(strstr(err_msg(), "checksum mismatch") != NULL);
    CHECK_EQ_INT(addr_parse("EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2", &a, NULL), -1);
    CHECK(strstr(err_msg(), "neither wc:hex nor") != NULL);
    CHECK_EQ_INT(addr_parse("0:83dfd552", &a, NULL), -1);
    CHECK(strstr(err_msg(), "expected 64 hex digits") != NULL);
    CHECK_EQ_INT(addr_parse("300:83dfd552e63729b472fcbcc8c45ebcc6691702558b68ec7527e1ba403a0f31a8", &a, NULL), -1);
    CHECK(strstr(err_msg(), "-128 to 127") != NULL);
    CHECK_EQ_INT(addr_parse(":83dfd552e63729b472fcbcc8c45ebcc6691702558b68ec7527e1ba403a0f31a8", &a, NULL), -1);
    CHECK_EQ_INT(addr_parse("", &a, NULL), -1);
}

TEST(addr_load_refuses_other_address_kinds) {
    cell_builder b;
    cell_slice s;
    ton_addr a;
    bool present;
    static const uint8_t zeros[40];
    cell_build_init(&b);
    cell_store_uint(&b, 1, 2); /* addr_extern */
    cell_store_uint(&b, 0, 9);
    cell *ext = cell_finish(&b);
    cell_store_uint(&b, 2, 2); /* addr_std with an anycast prefix */
    cell_store_uint(&b, 1, 1);
    cell_store_bits(&b, zeros, 300);
    cell *any = cell_finish(&b);
    cell_store_uint(&b, 2, 2); /* addr_std cut short */
    cell_store_bits(&b, zeros, 100);
    cell *cut = cell_finish(&b);
    CHECK(ext && any && cut);
    if (!ext || !any || !cut) return;
    cell_slice_init(&s, ext);
    CHECK_EQ_INT(addr_load_maybe(&s, &a, &present), -1);
    CHECK(strstr(err_msg(), "addr_extern") != NULL);
    cell_slice_init(&s, any);
    CHECK_EQ_INT(addr_load(&s, &a), -1);
    CHECK(strstr(err_msg(), "anycast") != NULL);
    CHECK_EQ_INT(s.bit, 0);
    cell_slice_init(&s, cut);
    CHECK_EQ_INT(addr_load_maybe(&s, &a, &present), -1);
    CHECK_EQ_INT(s.bit, 0);
    cell_unref(ext);
    cell_unref(any);
    cell_unref(cut);
}

TEST(addr_of_contract_matches_ton_core) {
    cell *mid, *root = tv_make_tree(&mid);
    ton_addr a, want;
    CHECK(root && mid);
    if (!root || !mid) return;
    /* contractAddress(0, {code: mid, data: leaf}); leaf is mid's only child */
    CHECK_EQ_INT(addr_of_contract(0, cell_hash(mid), cell_depth(mid), cell_child(mid, 0), &a), 0);
    CHECK_EQ_INT(addr_parse(TV_STATE_INIT_ADDR, &want, NULL), 0);
    CHECK(addr_equal(&a, &want));
    cell_unref(mid);
    cell_unref(root);
}

TEST(addr_of_wallet_matches_ton_wallet_v4) {
    uint8_t pk[32];
    ton_addr a;
    char raw[ADDR_RAW_LEN], text[ADDR_TEXT_LEN];
    CHECK_EQ_INT(hex_decode(TV_PUBLIC_KEY, pk, 32, "pk"), 0);
    CHECK_EQ_INT(addr_of_wallet(pk, &a), 0);
    addr_to_raw(&a, raw);
    CHECK_EQ_STR(raw, TV_WALLET_RAW);
    addr_to_text(&a, ADDR_BOUNCEABLE, text);
    CHECK_EQ_STR(text, TV_WALLET_TEXT);
}
