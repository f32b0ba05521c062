/* node/inbox: what a proxy (charges) and a worker (payouts) accept from the vouchers they
 * receive, over a local ledger: the payer's cumulative vouchers up to the cap are kept and
 * redeemed once; stale, over-cap, forged, other-channel and wrong-kind vouchers are refused; a
 * voucher on a channel closed for good is given up, not retried forever. */
#include "test.h"

#include "../ledger/ledger_testutil.h"
#include "base/err.h"
#include "ledger/boc.h"
#include "ledger/chain.h"
#include "ledger/ledger.h"
#include "node/inbox.h"

#include <stdlib.h>

#define COIN 1000000000ull

/* The voucher as it travels: a BOC. */
static int take(inbox *in, chain *c, channel_kind kind, const ton_addr *me, uint64_t cap, cell *v) {
    uint8_t *boc = NULL;
    size_t len = 0;
    int rc = v && boc_serialize(v, 0, &boc, &len) == 0 ? inbox_take(in, c, kind, me, cap, boc, len) : -2;
    free(boc);
    cell_unref(v);
    return rc;
}

/* A new local ledger at the test's path with proxy registered: NULL on failure (reported). */
static chain *new_ledger(const char *name, const keypair *owner, const keypair *proxy) {
    chain_ack ack;
    chain *c = NULL;
    ledger *l = ledger_create(test_tmp_path(name), owner->public_key, 1);
    CHECK_MSG(l != NULL, "%s", err_msg());
    if (l) ledger_close(l);
    if (l && !(c = chain_local_open(test_tmp_path(name)))) CHECK_MSG(0, "%s", err_msg());
    if (c && chain_registry_set(c, owner, REGISTRY_PROXY, proxy->public_key, "127.0.0.1:7000", &ack) != STATE_OK) {
        CHECK_MSG(0, "%s", err_msg());
        chain_close(c);
        c = NULL;
    }
    return c;
}

TEST(node_inbox_charges_up_to_the_cap_then_redeems) {
    keypair owner = lt_key(1), proxy = lt_key(2), client = lt_key(3), rogue = lt_key(5);
    ton_addr pa = lt_addr(&proxy), ca = lt_addr(&client), ch, other;
    chain_ack ack;
    channel got;
    bool found;
    inbox in = {0}, fresh = {0};
    chain *c = new_ledger("inbox.db", &owner, &proxy);
    if (!c) return;
    CHECK_EQ_INT(chain_mint(c, &owner, &ca, 10 * COIN, &ack), STATE_OK);
    CHECK_EQ_INT(chain_open_channel(c, &client, CHANNEL_CHARGE, &pa, 1, 3 * COIN, COIN, &ch, &ack), STATE_OK);
    CHECK_EQ_INT(chain_open_channel(c, &client, CHANNEL_CHARGE, &pa, 2, 3 * COIN, COIN, &other, &ack), STATE_OK);
    /* receipts justify 500: 300 is kept, 600 is more than the receipts, a repeat of 300 (a
     * standing voucher) is nothing new, an older total is stale */
    CHECK_EQ_INT(take(&in, c, CHANNEL_CHARGE, &pa, 500, chain_voucher(&client, CHANNEL_CHARGE, &ch, 300, 1)), 0);
    CHECK(in.bound && in.last == 300);
    CHECK_EQ_INT(take(&in, c, CHANNEL_CHARGE, &pa, 500, chain_voucher(&client, CHANNEL_CHARGE, &ch, 600, 2)), -1);
    CHECK_EQ_INT(take(&in, c, CHANNEL_CHARGE, &pa, 500, chain_voucher(&client, CHANNEL_CHARGE, &ch, 300, 3)), 1);
    CHECK(in.last == 300);
    CHECK_EQ_INT(take(&in, c, CHANNEL_CHARGE, &pa, 500, chain_voucher(&client, CHANNEL_CHARGE, &ch, 200, 4)), -1);
    /* signed by someone else, for the client's other channel, of the payout kind */
    CHECK_EQ_INT(take(&in, c, CHANNEL_CHARGE, &pa, 500, chain_voucher(&rogue, CHANNEL_CHARGE, &ch, 400, 5)), -1);
    CHECK_EQ_INT(take(&in, c, CHANNEL_CHARGE, &pa, 500, chain_voucher(&client, CHANNEL_CHARGE, &other, 400, 6)), -1);
    CHECK_EQ_INT(take(&in, c, CHANNEL_CHARGE, &pa, 500, chain_voucher(&client, CHANNEL_PAYOUT, &ch, 400, 7)), -1);
    /* a channel whose payee is not us binds nothing */
    CHECK_EQ_INT(take(&fresh, c, CHANNEL_CHARGE, &ca, 500, chain_voucher(&client, CHANNEL_CHARGE, &ch, 100, 8)), -1);
    CHECK(!fresh.bound);
    CHECK_EQ_INT(take(&in, c, CHANNEL_CHARGE, &pa, 500, chain_voucher(&client, CHANNEL_CHARGE, &ch, 500, 9)), 0);
    CHECK(in.last == 500);
    /* redeemed once: the ledger's paid follows, a second call has nothing to do */
    CHECK_EQ_INT(inbox_redeem(&in, c, &proxy), 1);
    CHECK_EQ_INT(inbox_redeem(&in, c, &proxy), 0);
    CHECK_EQ_INT(chain_channel(c, &ch, &got, &found), STATE_OK);
    CHECK(found && got.paid == 500);
    inbox_free(&in);
    inbox_free(&fresh);
    chain_close(c);
}

/* A worker's payouts: a voucher above the funds the channel had when bound is kept once the
 * proxy topped it up; a voucher redeemed by another holder of the channel (a sibling worker on
 * the same wallet, an earlier run) counts as redeemed; a stored voucher settles once. */
TEST(node_inbox_payouts_follow_topups_and_other_holders) {
    keypair owner = lt_key(1), proxy = lt_key(2), worker = lt_key(4);
    ton_addr pa = lt_addr(&proxy), wa = lt_addr(&worker), ch;
    chain_ack ack;
    inbox one = {0}, two = {0};
    uint8_t *boc = NULL;
    size_t len = 0;
    chain *c = new_ledger("inbox-payout.db", &owner, &proxy);
    if (!c) return;
    CHECK_EQ_INT(chain_mint(c, &owner, &pa, 10 * COIN, &ack), STATE_OK);
    CHECK_EQ_INT(chain_open_channel(c, &proxy, CHANNEL_PAYOUT, &wa, 1, COIN, COIN, &ch, &ack), STATE_OK);
    CHECK_EQ_INT(take(&one, c, CHANNEL_PAYOUT, &wa, UINT64_MAX, chain_voucher(&proxy, CHANNEL_PAYOUT, &ch, 100, 1)), 0);
    CHECK_EQ_INT(take(&two, c, CHANNEL_PAYOUT, &wa, UINT64_MAX, chain_voucher(&proxy, CHANNEL_PAYOUT, &ch, 100, 1)), 0);
    /* above deposit + stake as bound: refused, until the proxy tops the channel up */
    CHECK_EQ_INT(take(&one, c, CHANNEL_PAYOUT, &wa, UINT64_MAX, chain_voucher(&proxy, CHANNEL_PAYOUT, &ch, 3 * COIN, 2)),
                 -1);
    CHECK_EQ_INT(chain_topup(c, &proxy, &ch, 2 * COIN, &ack), STATE_OK);
    CHECK_EQ_INT(take(&one, c, CHANNEL_PAYOUT, &wa, UINT64_MAX, chain_voucher(&proxy, CHANNEL_PAYOUT, &ch, 3 * COIN, 3)),
                 0);
    CHECK(one.last == 3 * COIN);
    /* one holder redeems the higher total; the other's lower voucher is stale on the ledger
     * but paid for: redeemed, not retried forever */
    CHECK_EQ_INT(inbox_redeem(&one, c, &worker), 1);
    CHECK_EQ_INT(inbox_redeem(&two, c, &worker), 1);
    CHECK(two.redeemed == 100);
    CHECK_EQ_INT(inbox_redeem(&two, c, &worker), 0);
    /* a stored voucher: settles when redeemed now or already; a forged one does not */
    cell *v = chain_voucher(&proxy, CHANNEL_PAYOUT, &ch, 3 * COIN + 5, 4);
    CHECK(v && boc_serialize(v, 0, &boc, &len) == 0);
    cell_unref(v);
    CHECK_EQ_INT(inbox_settle(c, &worker, &ch, 3 * COIN + 5, boc, len, "test"), 1);
    CHECK_EQ_INT(inbox_settle(c, &worker, &ch, 3 * COIN + 5, boc, len, "test"), 1);
    free(boc);
    boc = NULL;
    v = chain_voucher(&worker, CHANNEL_PAYOUT, &ch, 3 * COIN + 9, 5);
    CHECK(v && boc_serialize(v, 0, &boc, &len) == 0);
    cell_unref(v);
    CHECK_EQ_INT(inbox_settle(c, &worker, &ch, 3 * COIN + 9, boc, len, "test"), 0);
    free(boc);
    inbox_free(&one);
    inbox_free(&two);
    chain_close(c);
}

TEST(node_inbox_gives_up_a_voucher_on_a_closed_channel) {
    keypair owner = lt_key(1), proxy = lt_key(2), worker = lt_key(4);
    ton_addr pa = lt_addr(&proxy), wa = lt_addr(&worker), ch;
    chain_ack ack;
    inbox in = {0};
    uint8_t *boc = NULL;
    size_t len = 0;
    channel now;
    bool found = false;
    chain *c = new_ledger("inbox-closed.db", &owner, &proxy);
    if (!c) return;
    CHECK_EQ_INT(chain_mint(c, &owner, &pa, 10 * COIN, &ack), STATE_OK);
    CHECK_EQ_INT(chain_open_channel(c, &proxy, CHANNEL_PAYOUT, &wa, 1, COIN, COIN, &ch, &ack), STATE_OK);
    CHECK_EQ_INT(take(&in, c, CHANNEL_PAYOUT, &wa, UINT64_MAX, chain_voucher(&proxy, CHANNEL_PAYOUT, &ch, 100, 1)), 0);
    CHECK_EQ_INT(inbox_redeem(&in, c, &worker), 1);
    CHECK_EQ_INT(take(&in, c, CHANNEL_PAYOUT, &wa, UINT64_MAX, chain_voucher(&proxy, CHANNEL_PAYOUT, &ch, 150, 2)), 0);
    /* the payee closes the channel: the 150 voucher can never redeem; retrying it is pointless */
    CHECK_EQ_INT(chain_request_close(c, &worker, &ch, &ack), STATE_OK);
    CHECK_EQ_INT(inbox_redeem(&in, c, &worker), 1);
    CHECK(in.redeemed == 150);
    CHECK_EQ_INT(inbox_redeem(&in, c, &worker), 0);
    CHECK_EQ_INT(chain_channel(c, &ch, &now, &found), STATE_OK);
    CHECK(found && now.paid == 100);
    cell *v = chain_voucher(&proxy, CHANNEL_PAYOUT, &ch, 150, 2);
    CHECK(v && boc_serialize(v, 0, &boc, &len) == 0);
    cell_unref(v);
    CHECK_EQ_INT(inbox_settle(c, &worker, &ch, 150, boc, len, "test"), 1);
    free(boc);
    inbox_free(&in);
    chain_close(c);
}
