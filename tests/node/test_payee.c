/* node/payee: the proxy's payouts to a worker over a local ledger, as the worker sees them
 * (node/inbox): a fee earned while the payout channel cannot be funded (the proxy's wallet is
 * short, the ledger is down) stays owed, in the accounting file across a restart, and the next
 * voucher the channel can cover carries it; a payout channel the worker closed is replaced by
 * a new one that starts with what the worker was not paid on the old, found on the timer's
 * check while the proxy runs and at the first payout after a restart. */
#include "test.h"

#include "../ledger/ledger_testutil.h"
#include "base/err.h"
#include "ledger/boc.h"
#include "ledger/chain.h"
#include "ledger/ledger.h"
#include "node/accounts.h"
#include "node/inbox.h"
#include "node/payee.h"

#include <stdlib.h>

#define COIN 1000000000ull

/* The test's ledger lent to a payee (which closes what it is given) that can be taken down. */
typedef struct lent {
    chain base;
    chain *inner;
    bool down;
} lent;

static int lent_submit(chain *c, const cell *t, chain_ack *ack) {
    lent *l = (lent *)c;
    return l->down ? err_set("the ledger is down"), STATE_MALFORMED : chain_submit(l->inner, t, ack);
}
static int lent_account(chain *c, const ton_addr *a, account *out) {
    lent *l = (lent *)c;
    return l->down ? err_set("the ledger is down"), STATE_MALFORMED : chain_account(l->inner, a, out);
}
static int lent_channel(chain *c, const ton_addr *a, channel *out, bool *found) {
    lent *l = (lent *)c;
    return l->down ? err_set("the ledger is down"), STATE_MALFORMED : chain_channel(l->inner, a, out, found);
}
static int lent_registry(chain *c, registry *out) { return chain_registry(((lent *)c)->inner, out); }
static void lent_close(chain *c) { (void)c; }

static const chain_backend LENT = {.name = "lent", .submit = lent_submit, .account = lent_account,
                                   .channel = lent_channel, .registry = lent_registry, .close = lent_close};

/* What payee_payouts_tick handed out: the last voucher. */
typedef struct sent {
    int n;
    uint8_t worker[32];
    uint8_t *boc;
    size_t len;
} sent;

static void on_send(void *ctx, const uint8_t worker[32], const uint8_t *boc, size_t len) {
    sent *s = ctx;
    s->n++;
    memcpy(s->worker, worker, 32);
    free(s->boc);
    s->boc = malloc(len);
    if (s->boc) memcpy(s->boc, boc, len);
    s->len = len;
}

/* A voucher's channel and total (0 total when there is none). */
static uint64_t total_of(const uint8_t *boc, size_t len, ton_addr *ch) {
    voucher v = {0};
    cell *c = boc ? boc_parse(boc, len) : NULL;
    if (!c || voucher_parse(c, &v) != VOUCHER_OK) v.amount = 0;
    cell_unref(c);
    if (ch) *ch = v.channel;
    return v.amount;
}

/* The worker keeps the voucher and redeems it: its channel's paid afterwards (0 on failure). */
static uint64_t worker_redeems(chain *c, const keypair *worker, const uint8_t *boc, size_t len) {
    ton_addr me = lt_addr(worker);
    inbox in = {0};
    channel ch;
    bool found = false;
    int taken = boc ? inbox_take(&in, c, CHANNEL_PAYOUT, &me, UINT64_MAX, boc, len) : -1;
    CHECK_MSG(taken == 0, "%s", err_msg());
    int redeemed = taken == 0 ? inbox_redeem(&in, c, worker) : -1;
    CHECK_MSG(redeemed == 1, "%s", err_msg());
    if (redeemed == 1) CHECK_EQ_INT(chain_channel(c, &in.ch.addr, &ch, &found), STATE_OK);
    inbox_free(&in);
    return found ? ch.paid : 0;
}

/* A new local ledger with proxy registered and funded, the proxy's key in a file. */
static chain *setup(const char *name, const keypair *owner, const keypair *proxy, uint64_t funds, const char **key_path) {
    chain_ack ack;
    ton_addr pa = lt_addr(proxy);
    chain *c = NULL;
    char file[64];
    snprintf(file, sizeof file, "%s.key", name);
    *key_path = test_tmp_path(file);
    CHECK_MSG(keys_save(*key_path, proxy) == 0, "%s", err_msg());
    snprintf(file, sizeof file, "%s.db", name);
    ledger *l = ledger_create(test_tmp_path(file), owner->public_key, 1);
    CHECK_MSG(l != NULL, "%s", err_msg());
    if (l) ledger_close(l);
    if (l && !(c = chain_local_open(test_tmp_path(file)))) CHECK_MSG(0, "%s", err_msg());
    if (c && (chain_registry_set(c, owner, REGISTRY_PROXY, proxy->public_key, "127.0.0.1:7000", &ack) != STATE_OK ||
              chain_mint(c, owner, &pa, funds, &ack) != STATE_OK)) {
        CHECK_MSG(0, "%s", err_msg());
        chain_close(c);
        c = NULL;
    }
    return c;
}

static uint64_t booked(const char *books_path, const uint8_t worker[32], ton_addr *ch) {
    accounts *a = accounts_open(books_path);
    uint64_t total = 0;
    bool found = false;
    CHECK_MSG(a != NULL, "%s", err_msg());
    if (a) CHECK_EQ_INT(accounts_payout(a, worker, ch, &total, &found), 0);
    CHECK(found);
    accounts_close(a);
    return total;
}

TEST(node_payee_fee_stays_owed_while_the_payout_channel_cannot_be_funded) {
    keypair owner = lt_key(1), proxy = lt_key(2), worker = lt_key(4);
    ton_addr pa = lt_addr(&proxy), ch, ch2;
    const char *key_path, *books = test_tmp_path("payee-owed-accounts.db");
    chain_ack ack;
    uint8_t *boc = NULL;
    size_t len = 0;
    sent s = {0};
    /* the first payout channel (2 coins and the 1-coin stake) and half a coin: no top-up */
    chain *c = setup("payee-owed", &owner, &proxy, 3 * COIN + COIN / 2, &key_path);
    if (!c) return;
    lent net = {.base = {&LENT}, .inner = c};
    payee *p = payee_open_chain(&net.base, key_path, books);
    CHECK_MSG(p != NULL, "%s", err_msg());
    if (!p) goto done;
    CHECK_EQ_INT(payee_pay_worker(p, worker.public_key, COIN, &boc, &len), 0);
    CHECK(total_of(boc, len, &ch) == COIN);
    CHECK(worker_redeems(c, &worker, boc, len) == COIN);
    free(boc);
    CHECK_EQ_INT(payee_pay_worker(p, worker.public_key, COIN, &boc, &len), 0);
    CHECK(total_of(boc, len, NULL) == 2 * COIN);
    free(boc);
    /* 3.5 coins pass the channel's 3: the top-up is refused, the fee is owed, on disk */
    CHECK_EQ_INT(payee_pay_worker(p, worker.public_key, COIN + COIN / 2, &boc, &len), 0);
    CHECK(boc == NULL);
    CHECK(booked(books, worker.public_key, &ch2) == 3 * COIN + COIN / 2);
    CHECK(addr_equal(&ch, &ch2));
    payee_payouts_tick(p, on_send, &s);
    CHECK_EQ_INT(s.n, 0);
    /* a restart: the owed total is in the accounting file; still short */
    payee_free(p);
    p = payee_open_chain(&net.base, key_path, books);
    CHECK_MSG(p != NULL, "%s", err_msg());
    if (!p) goto done;
    CHECK_EQ_INT(payee_standing_payout(p, worker.public_key, &boc, &len), 0);
    CHECK(boc == NULL);
    CHECK_EQ_INT(payee_pay_worker(p, worker.public_key, COIN / 2, &boc, &len), 0);
    CHECK(boc == NULL);
    /* the wallet refilled: the timer's retry pays everything in one voucher, on the same channel */
    CHECK_EQ_INT(chain_mint(c, &owner, &pa, 10 * COIN, &ack), STATE_OK);
    payee_payouts_tick(p, on_send, &s);
    CHECK_EQ_INT(s.n, 1);
    CHECK(memcmp(s.worker, worker.public_key, 32) == 0);
    CHECK(total_of(s.boc, s.len, &ch2) == 4 * COIN);
    CHECK(addr_equal(&ch, &ch2));
    CHECK(worker_redeems(c, &worker, s.boc, s.len) == 4 * COIN);
    payee_payouts_tick(p, on_send, &s);
    CHECK_EQ_INT(s.n, 1); /* nothing owed: nothing sent */
    /* the ledger down: 6 coins pass the 5 the channel holds now; owed until it is back */
    net.down = true;
    CHECK_EQ_INT(payee_pay_worker(p, worker.public_key, 2 * COIN, &boc, &len), 0);
    CHECK(boc == NULL);
    payee_payouts_tick(p, on_send, &s);
    CHECK_EQ_INT(s.n, 1);
    net.down = false;
    CHECK_EQ_INT(payee_pay_worker(p, worker.public_key, 1, &boc, &len), 0);
    CHECK(total_of(boc, len, NULL) == 6 * COIN + 1);
    CHECK(worker_redeems(c, &worker, boc, len) == 6 * COIN + 1);
    free(boc);
    CHECK(booked(books, worker.public_key, &ch2) == 6 * COIN + 1);
done:
    free(s.boc);
    payee_free(p);
    chain_close(c);
}

TEST(node_payee_replaces_a_payout_channel_the_worker_closed) {
    keypair owner = lt_key(1), proxy = lt_key(2), worker = lt_key(4);
    ton_addr a, b, c3, booked_ch;
    const char *key_path, *books = test_tmp_path("payee-closed-accounts.db");
    chain_ack ack;
    channel old;
    bool found = false;
    uint8_t *boc = NULL;
    size_t len = 0;
    sent s = {0};
    chain *c = setup("payee-closed", &owner, &proxy, 20 * COIN, &key_path);
    if (!c) return;
    lent net = {.base = {&LENT}, .inner = c};
    payee *p = payee_open_chain(&net.base, key_path, books);
    CHECK_MSG(p != NULL, "%s", err_msg());
    if (!p) goto done;
    CHECK_EQ_INT(payee_pay_worker(p, worker.public_key, 100, &boc, &len), 0);
    CHECK(total_of(boc, len, &a) == 100);
    CHECK(worker_redeems(c, &worker, boc, len) == 100);
    free(boc);
    CHECK_EQ_INT(payee_pay_worker(p, worker.public_key, 50, &boc, &len), 0);
    free(boc);
    payee_payouts_tick(p, on_send, &s); /* the channel is open: nothing to do */
    CHECK_EQ_INT(s.n, 0);
    /* the worker closes it (at once, as its payee) holding 150 it did not redeem; the proxy
     * signs one more on it before its timer looks */
    CHECK_EQ_INT(chain_request_close(c, &worker, &a, &ack), STATE_OK);
    CHECK_EQ_INT(payee_pay_worker(p, worker.public_key, 30, &boc, &len), 0);
    CHECK(total_of(boc, len, NULL) == 180);
    free(boc);
    payee_payouts_tick(p, on_send, &s);
    CHECK_EQ_INT(s.n, 1);
    CHECK(total_of(s.boc, s.len, &b) == 80); /* 180 earned, 100 paid on the old channel */
    CHECK(!addr_equal(&a, &b));
    CHECK(worker_redeems(c, &worker, s.boc, s.len) == 80);
    CHECK_EQ_INT(chain_channel(c, &a, &old, &found), STATE_OK);
    CHECK(found && old.status == CHANNEL_WITHDRAWN && old.paid == 100);
    CHECK(booked(books, worker.public_key, &booked_ch) == 80);
    CHECK(addr_equal(&booked_ch, &b));
    CHECK_EQ_INT(payee_pay_worker(p, worker.public_key, 20, &boc, &len), 0);
    CHECK(total_of(boc, len, &c3) == 100 && addr_equal(&c3, &b));
    free(boc);
    /* closed while the proxy is down: the restarted proxy's first payout finds it */
    payee_free(p);
    CHECK_EQ_INT(chain_request_close(c, &worker, &b, &ack), STATE_OK);
    p = payee_open_chain(&net.base, key_path, books);
    CHECK_MSG(p != NULL, "%s", err_msg());
    if (!p) goto done;
    CHECK_EQ_INT(payee_pay_worker(p, worker.public_key, 7, &boc, &len), 0);
    CHECK(total_of(boc, len, &c3) == 27); /* 107 earned on b, 80 paid there */
    CHECK(!addr_equal(&c3, &a) && !addr_equal(&c3, &b));
    CHECK(worker_redeems(c, &worker, boc, len) == 27);
    free(boc);
    CHECK(booked(books, worker.public_key, &booked_ch) == 27);
    CHECK(addr_equal(&booked_ch, &c3));
done:
    free(s.boc);
    payee_free(p);
    chain_close(c);
}
