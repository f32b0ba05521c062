/* node/inbox: what a proxy (charges) and a worker (payouts) accept from the vouchers they
 * receive, over a local ledger: the payer's cumulative vouchers up to the cap are kept and
 * redeemed once; stale, over-cap, forged, other-channel and wrong-kind vouchers are refused. */
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

TEST(node_inbox_charges_up_to_the_cap_then_redeems) {
    const char *path = test_tmp_path("inbox.db");
    keypair owner = lt_key(1), proxy = lt_key(2), client = lt_key(3), rogue = lt_key(5);
    ton_addr pa = lt_addr(&proxy), ca = lt_addr(&client), ch, other;
    chain_ack ack;
    channel got;
    bool found;
    inbox in = {0}, fresh = {0};
    ledger *l = ledger_create(path, owner.public_key, 1);
    CHECK_MSG(l != NULL, "%s", err_msg());
    ledger_close(l);
    chain *c = chain_local_open(path);
    CHECK_MSG(c != NULL, "%s", err_msg());
    if (!c) return;
    CHECK_EQ_INT(chain_registry_set(c, &owner, REGISTRY_PROXY, proxy.public_key, "127.0.0.1:7000", &ack), STATE_OK);
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
