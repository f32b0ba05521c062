/* The ledger's store: blocks survive a reopen with the same state, every committed
 * transaction is found by hash, a refused one is not stored, and a replay detects a tampered
 * block, a tampered transaction and a broken index. */
#include "test.h"

#include <sqlite3.h>

#include "base/err.h"
#include "ledger/ledger.h"
#include "ledger/replay.h"
#include "ledger_testutil.h"

#define COIN 1000000000ull

/* A ledger with two blocks: mints, then a transfer and a refused transfer. */
static void make_ledger(const char *path, uint8_t digest[32], uint8_t tx_hash[32]) {
    keypair owner = lt_key(1), alice = lt_key(2), bob = lt_key(3);
    ledger_ack ack;
    ledger *l = ledger_create(path, owner.public_key, 1000);
    CHECK_MSG(l != NULL, "%s", err_msg());
    if (!l) return;
    tx mint = {.op = TX_MINT, .to = lt_addr(&alice), .amount = 10 * COIN};
    cell *c = lt_sign(mint, &owner, 0);
    CHECK_EQ_INT(ledger_submit(l, c, 1001, &ack), STATE_OK);
    cell_unref(c);
    CHECK_EQ_INT(ledger_commit(l), 0);
    tx pay = {.op = TX_TRANSFER, .to = lt_addr(&bob), .amount = 3 * COIN};
    c = lt_sign(pay, &alice, 0);
    CHECK_EQ_INT(ledger_submit(l, c, 1002, &ack), STATE_OK);
    memcpy(tx_hash, ack.hash, 32);
    CHECK_EQ_INT(ledger_submit(l, c, 1002, &ack), STATE_BAD_SEQNO); /* the same again */
    cell_unref(c);
    CHECK_EQ_INT(ledger_pending(l), 1);
    CHECK_EQ_INT(ledger_commit(l), 0);
    CHECK_EQ_INT(ledger_tip(l).height, 2);
    state_digest(ledger_state(l), digest);
    ledger_close(l);
}

TEST(ledger_store_reopen_same_state) {
    const char *path = test_tmp_path("reopen.db");
    uint8_t d1[32], d2[32], h[32];
    make_ledger(path, d1, h);
    ledger *l = ledger_open(path);
    CHECK_MSG(l != NULL, "%s", err_msg());
    if (!l) return;
    state_digest(ledger_state(l), d2);
    CHECK(memcmp(d1, d2, 32) == 0);
    uint64_t height;
    uint32_t idx;
    CHECK_EQ_INT(store_find_tx(ledger_store(l), h, &height, &idx), 1);
    CHECK(height == 2 && idx == 0);
    keypair bob = lt_key(3);
    ton_addr b = lt_addr(&bob);
    CHECK(state_account(ledger_state(l), &b).balance == 3 * COIN);
    ledger_close(l);
    CHECK(ledger_create(path, d1, 0) == NULL); /* never over an existing ledger */
}

/* Runs one SQL statement on the ledger file behind the store's back. */
static void tamper(const char *path, const char *sql) {
    sqlite3 *db;
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void expect_replay_fails(const char *path, const char *words) {
    store *st = store_open(path, NULL, 0, true);
    CHECK_MSG(st != NULL, "%s", err_msg());
    if (!st) return;
    state *s = replay_store(st, true, NULL);
    CHECK_MSG(s == NULL, "replay accepted a ledger tampered with (%s)", words);
    if (!s) CHECK_MSG(strstr(err_msg(), words) != NULL, "message '%s' lacks '%s'", err_msg(), words);
    state_free(s);
    store_close(st);
}

TEST(ledger_store_detects_tampering) {
    uint8_t d[32], h[32];
    const char *p1 = test_tmp_path("tamper-time.db"), *p2 = test_tmp_path("tamper-tx.db"),
               *p3 = test_tmp_path("tamper-index.db"), *p4 = test_tmp_path("tamper-drop.db");
    make_ledger(p1, d, h);
    make_ledger(p2, d, h);
    make_ledger(p3, d, h);
    make_ledger(p4, d, h);
    /* an untouched ledger replays */
    store *st = store_open(p1, NULL, 0, true);
    state *s = st ? replay_store(st, true, NULL) : NULL;
    CHECK_MSG(s != NULL, "%s", err_msg());
    state_free(s);
    store_close(st);
    tamper(p1, "UPDATE blocks SET time = time + 1 WHERE height = 1");
    expect_replay_fails(p1, "hash");
    /* flip one byte of the transfer's BOC (inside its signature) */
    tamper(p2, "UPDATE blocks SET txs = substr(txs, 1, 20) || char((unicode(substr(txs, 21, 1)) + 1) % 256)"
               " || substr(txs, 22) WHERE height = 2");
    tamper(p2, "UPDATE blocks SET txs = CAST(txs AS BLOB) WHERE height = 2");
    expect_replay_fails(p2, "block 2");
    tamper(p3, "DELETE FROM txindex WHERE height = 1");
    expect_replay_fails(p3, "index");
    tamper(p4, "DELETE FROM blocks WHERE height = 1");
    expect_replay_fails(p4, "follows");
}
