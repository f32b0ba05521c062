/* node/accounts: the voucher book survives a reopen (as after kill -9), keeps only the highest
 * voucher per channel, and lists as pending exactly what is not redeemed; the proxy's payout
 * channel per worker survives too, its total only rising, a new channel replacing it; a
 * gateway's signed total per channel reads back after a reopen, never lower. */
#include "test.h"

#include "base/err.h"
#include "node/accounts.h"

#include <string.h>

typedef struct seen {
    int n;
    uint64_t amount;
    uint8_t first;
} seen;

static int note(void *ctx, const ton_addr *ch, uint64_t amount, const uint8_t *boc, size_t len) {
    seen *s = ctx;
    (void)ch;
    s->n++;
    s->amount = amount;
    s->first = len ? boc[0] : 0;
    return 0;
}

TEST(node_accounts_pending_survives_reopen) {
    const char *path = test_tmp_path("accounts.db");
    ton_addr a = {.workchain = 0}, b = {.workchain = 0};
    uint8_t v1[] = {1, 2, 3}, v2[] = {2, 3}, v3[] = {3};
    seen s = {0};
    memset(a.hash, 0xaa, 32);
    memset(b.hash, 0xbb, 32);
    accounts *acc = accounts_open(path);
    CHECK_MSG(acc != NULL, "%s", err_msg());
    if (!acc) return;
    CHECK_EQ_INT(accounts_put(acc, &a, 100, v1, sizeof v1), 0);
    CHECK_EQ_INT(accounts_put(acc, &a, 300, v2, sizeof v2), 0);
    CHECK_EQ_INT(accounts_put(acc, &a, 200, v3, sizeof v3), 0); /* older: ignored */
    CHECK_EQ_INT(accounts_put(acc, &b, 50, v3, sizeof v3), 0);
    CHECK_EQ_INT(accounts_redeemed(acc, &b, 50), 0);
    CHECK_EQ_INT(accounts_put(acc, &a, (uint64_t)1 << 63, v3, sizeof v3), -1); /* out of range */
    accounts_close(acc);
    acc = accounts_open(path);
    CHECK_MSG(acc != NULL, "%s", err_msg());
    if (!acc) return;
    CHECK_EQ_INT(accounts_pending(acc, note, &s), 0);
    CHECK_EQ_INT(s.n, 1);
    CHECK(s.amount == 300 && s.first == 2);
    CHECK_EQ_INT(accounts_redeemed(acc, &a, 300), 0);
    s.n = 0;
    CHECK_EQ_INT(accounts_pending(acc, note, &s), 0);
    CHECK_EQ_INT(s.n, 0);
    accounts_close(acc);
    CHECK(accounts_open("/nonexistent-dir/accounts.db") == NULL);
    CHECK(strstr(err_msg(), "/nonexistent-dir/accounts.db") != NULL);
}

TEST(node_accounts_payouts_survive_reopen) {
    const char *path = test_tmp_path("accounts-payouts.db");
    uint8_t w1[32], w2[32];
    ton_addr a = {.workchain = 0}, b = {.workchain = -1}, got;
    uint64_t total = 0;
    bool found = true;
    memset(w1, 1, 32);
    memset(w2, 2, 32);
    memset(a.hash, 0xaa, 32);
    memset(b.hash, 0xbb, 32);
    accounts *acc = accounts_open(path);
    CHECK_MSG(acc != NULL, "%s", err_msg());
    if (!acc) return;
    CHECK_EQ_INT(accounts_payout(acc, w1, &got, &total, &found), 0);
    CHECK(!found);
    CHECK_EQ_INT(accounts_payout_put(acc, w1, &a, 0), 0);
    CHECK_EQ_INT(accounts_payout_put(acc, w1, &a, 190), 0);
    CHECK_EQ_INT(accounts_payout_put(acc, w1, &a, 95), 0); /* lower on the same channel: ignored */
    CHECK_EQ_INT(accounts_payout_put(acc, w2, &a, 7), 0);
    accounts_close(acc);
    acc = accounts_open(path);
    CHECK_MSG(acc != NULL, "%s", err_msg());
    if (!acc) return;
    CHECK_EQ_INT(accounts_payout(acc, w1, &got, &total, &found), 0);
    CHECK(found && total == 190 && addr_equal(&got, &a));
    /* a new channel (the old one closed) replaces the old, whatever its total */
    CHECK_EQ_INT(accounts_payout_put(acc, w1, &b, 19), 0);
    CHECK_EQ_INT(accounts_payout(acc, w1, &got, &total, &found), 0);
    CHECK(found && total == 19 && addr_equal(&got, &b));
    CHECK_EQ_INT(accounts_payout(acc, w2, &got, &total, &found), 0);
    CHECK(found && total == 7 && addr_equal(&got, &a));
    accounts_close(acc);
}

TEST(node_accounts_voucher_total_survives_reopen) {
    const char *path = test_tmp_path("accounts-gateway.db");
    ton_addr a = {.workchain = 0}, b = {.workchain = -1}, none = {.workchain = 0};
    uint8_t v[] = {7, 7};
    uint64_t amount = 12345;
    bool found = true;
    memset(a.hash, 0xaa, 32);
    memset(b.hash, 0xaa, 32); /* the same hash on another workchain: another channel */
    memset(none.hash, 0xbb, 32);
    accounts *acc = accounts_open(path);
    CHECK_MSG(acc != NULL, "%s", err_msg());
    if (!acc) return;
    CHECK_EQ_INT(accounts_voucher(acc, &a, &amount, &found), 0);
    CHECK(!found && amount == 12345); /* none yet: amount untouched */
    CHECK_EQ_INT(accounts_put(acc, &a, 190, v, sizeof v), 0);
    CHECK_EQ_INT(accounts_put(acc, &a, 380, v, sizeof v), 0);
    CHECK_EQ_INT(accounts_put(acc, &a, 380, v, sizeof v), 0); /* a standing voucher: the same total */
    CHECK_EQ_INT(accounts_put(acc, &b, 5, v, sizeof v), 0);
    accounts_close(acc);
    acc = accounts_open(path); /* as a gateway restarted after kill -9 */
    CHECK_MSG(acc != NULL, "%s", err_msg());
    if (!acc) return;
    CHECK_EQ_INT(accounts_voucher(acc, &a, &amount, &found), 0);
    CHECK(found && amount == 380);
    CHECK_EQ_INT(accounts_put(acc, &a, 200, v, sizeof v), 0); /* lower: ignored */
    CHECK_EQ_INT(accounts_voucher(acc, &a, &amount, &found), 0);
    CHECK(found && amount == 380);
    CHECK_EQ_INT(accounts_voucher(acc, &b, &amount, &found), 0);
    CHECK(found && amount == 5);
    CHECK_EQ_INT(accounts_voucher(acc, &none, &amount, &found), 0);
    CHECK(!found);
    accounts_close(acc);
}
