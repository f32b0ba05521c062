/* The chain.h interface over the local backend: every operation a proxy, a client and a
 * worker need, end to end, through one ledger file; results as state_status values. */
#include "test.h"

#include "base/err.h"
#include "ledger/chain.h"
#include "ledger/ledger.h"
#include "ledger_testutil.h"

#define COIN 1000000000ull

TEST(ledger_chain_local_payment_flow) {
    const char *path = test_tmp_path("chain.db");
    keypair owner = lt_key(1), proxy = lt_key(2), client = lt_key(3), worker = lt_key(4);
    ton_addr pa = lt_addr(&proxy), ca = lt_addr(&client), wa = lt_addr(&worker), charge_ch, payout_ch;
    chain_ack ack;
    account acc;
    channel ch;
    bool found;
    ledger *l = ledger_create(path, owner.public_key, 1);
    CHECK_MSG(l != NULL, "%s", err_msg());
    ledger_close(l);
    chain *c = chain_local_open(path);
    CHECK_MSG(c != NULL, "%s", err_msg());
    if (!c) return;
    registry_params p = registry_default_params();
    p.client_close_delay = 0; /* the local backend's clock is the wall clock: no waiting here */
    p.proxy_close_delay = 0;
    CHECK_EQ_INT(chain_set_params(c, &owner, &p, &ack), STATE_OK);
    CHECK_EQ_INT(chain_registry_set(c, &owner, REGISTRY_PROXY, proxy.public_key, "127.0.0.1:7000", &ack), STATE_OK);
    CHECK_EQ_INT(chain_registry_set(c, &proxy, REGISTRY_MODEL, proxy.public_key, NULL, &ack), STATE_FORBIDDEN);
    CHECK_EQ_INT(chain_mint(c, &owner, &ca, 10 * COIN, &ack), STATE_OK);
    CHECK_EQ_INT(chain_mint(c, &owner, &pa, 10 * COIN, &ack), STATE_OK);
    /* client -> proxy */
    CHECK_EQ_INT(chain_open_channel(c, &client, CHANNEL_CHARGE, &pa, 0, 3 * COIN, COIN, &charge_ch, &ack), STATE_OK);
    cell *v = chain_voucher(&client, CHANNEL_CHARGE, &charge_ch, 100, 1);
    CHECK_EQ_INT(chain_redeem(c, &proxy, &charge_ch, v, &ack), STATE_OK);
    CHECK_EQ_INT(chain_redeem(c, &proxy, &charge_ch, v, &ack), STATE_REJECTED); /* replay */
    cell_unref(v);
    /* proxy -> worker */
    CHECK_EQ_INT(chain_open_channel(c, &proxy, CHANNEL_PAYOUT, &wa, 0, COIN, COIN, &payout_ch, &ack), STATE_OK);
    v = chain_voucher(&proxy, CHANNEL_PAYOUT, &payout_ch, 95, 1);
    CHECK_EQ_INT(chain_redeem(c, &worker, &payout_ch, v, &ack), STATE_OK);
    cell_unref(v);
    /* the acknowledged transaction is found where the ack says */
    chain_ack where;
    CHECK_EQ_INT(chain_find_tx(c, ack.hash, &where, &found), STATE_OK);
    CHECK(found && where.height == ack.height && where.index == ack.index);
    CHECK_EQ_INT(chain_account(c, &wa, &acc), STATE_OK);
    CHECK(acc.balance == 95 && acc.seqno == 1);
    /* close: the client asks, then closes (delay 0) and withdraws */
    CHECK_EQ_INT(chain_request_close(c, &client, &charge_ch, &ack), STATE_OK);
    CHECK_EQ_INT(chain_close_channel(c, &client, &charge_ch, &ack), STATE_OK);
    CHECK_EQ_INT(chain_withdraw(c, &client, &charge_ch, &ack), STATE_OK);
    CHECK_EQ_INT(chain_channel(c, &charge_ch, &ch, &found), STATE_OK);
    CHECK(found && ch.status == CHANNEL_WITHDRAWN && ch.paid == 100);
    CHECK_EQ_INT(chain_account(c, &ca, &acc), STATE_OK);
    CHECK(acc.balance == 10 * COIN - 100);
    registry r;
    CHECK_EQ_INT(chain_registry(c, &r), STATE_OK);
    CHECK(registry_find(&r, REGISTRY_PROXY, proxy.public_key) != NULL);
    registry_free(&r);
    chain_tip tip;
    CHECK_EQ_INT(chain_tip_of(c, &tip), STATE_OK);
    CHECK_EQ_INT(tip.height, 11); /* one block per applied transaction */
    chain_close(c);
}

/* A backend over a local chain whose first submit comes after another transaction signed with
 * the same key (another process sharing it, as workers share a payout wallet): the seqno
 * chain_send read is taken by then. */
typedef struct racing {
    chain base;
    chain *inner;
    const keypair *key;
    ton_addr to;
    int submits;
} racing;

static int racing_submit(chain *c, const cell *signed_tx, chain_ack *ack) {
    racing *r = (racing *)c;
    chain_ack other;
    if (r->submits++ == 0 && chain_transfer(r->inner, r->key, &r->to, 1, &other) != STATE_OK) return STATE_NO_MEMORY;
    return chain_submit(r->inner, signed_tx, ack);
}
static int racing_account(chain *c, const ton_addr *a, account *out) {
    return chain_account(((racing *)c)->inner, a, out);
}

TEST(ledger_chain_send_signs_again_over_a_seqno_taken_meanwhile) {
    const char *path = test_tmp_path("chain-race.db");
    keypair owner = lt_key(1), a = lt_key(3);
    ton_addr aa = lt_addr(&a), ba = lt_addr(&owner);
    static const chain_backend be = {.name = "racing", .submit = racing_submit, .account = racing_account};
    chain_ack ack;
    account got;
    ledger *l = ledger_create(path, owner.public_key, 1);
    CHECK_MSG(l != NULL, "%s", err_msg());
    ledger_close(l);
    racing r = {.base = {&be}, .inner = chain_local_open(path), .key = &a, .to = ba};
    CHECK_MSG(r.inner != NULL, "%s", err_msg());
    if (!r.inner) return;
    CHECK_EQ_INT(chain_mint(r.inner, &owner, &aa, 100, &ack), STATE_OK);
    CHECK_EQ_INT(chain_transfer(&r.base, &a, &ba, 5, &ack), STATE_OK);
    CHECK_EQ_INT(r.submits, 2);
    CHECK_EQ_INT(chain_account(r.inner, &aa, &got), STATE_OK);
    CHECK(got.balance == 94 && got.seqno == 2);
    chain_close(r.inner);
}
