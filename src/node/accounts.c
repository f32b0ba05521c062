/* A node's accounting file (see accounts.h). */
#include "node/accounts.h"

#include "base/err.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct accounts {
    sqlite3 *db;
};

static void key_of(const ton_addr *a, uint8_t out[33]) {
    out[0] = (uint8_t)a->workchain;
    memcpy(out + 1, a->hash, 32);
}

static int fail(accounts *a, const char *what) {
    return err_set("accounts: %s: %s", what, sqlite3_errmsg(a->db));
}

accounts *accounts_open(const char *path) {
    accounts *a = calloc(1, sizeof *a);
    if (!a) {
        err_set("out of memory");
        return NULL;
    }
    if (sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        err_set("accounts: cannot open %s: %s", path, a->db ? sqlite3_errmsg(a->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(a->db, 5000);
    if (sqlite3_exec(a->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE IF NOT EXISTS vouchers(channel BLOB PRIMARY KEY, amount INTEGER NOT NULL,"
                     " boc BLOB NOT NULL, redeemed INTEGER NOT NULL DEFAULT 0);"
                     "CREATE TABLE IF NOT EXISTS payouts(worker BLOB PRIMARY KEY, channel BLOB NOT NULL,"
                     " total INTEGER NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK) {
        fail(a, path);
        goto fail;
    }
    return a;
fail:
    accounts_close(a);
    return NULL;
}

void accounts_close(accounts *a) {
    if (!a) return;
    sqlite3_close(a->db);
    free(a);
}

/* Runs one statement over a key, an amount and an optional blob. */
static int run(accounts *a, const char *sql, const uint8_t *key, size_t key_len, uint64_t amount, const uint8_t *boc,
               size_t len) {
    sqlite3_stmt *st = NULL;
    int rc;
    if (amount > INT64_MAX) return err_set("accounts: amount %llu is out of range", (unsigned long long)amount);
    if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) return fail(a, "prepare");
    sqlite3_bind_blob(st, 1, key, (int)key_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)amount);
    if (boc) sqlite3_bind_blob(st, 3, boc, (int)len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(a, "write");
}

int accounts_put(accounts *a, const ton_addr *channel, uint64_t amount, const uint8_t *boc, size_t len) {
    uint8_t key[33];
    key_of(channel, key);
    return run(a,
               "INSERT INTO vouchers(channel, amount, boc) VALUES (?1, ?2, ?3) ON CONFLICT(channel) DO UPDATE"
               " SET amount = ?2, boc = ?3 WHERE ?2 > amount",
               key, sizeof key, amount, boc, len);
}

int accounts_redeemed(accounts *a, const ton_addr *channel, uint64_t amount) {
    uint8_t key[33];
    key_of(channel, key);
    return run(a, "UPDATE vouchers SET redeemed = ?2 WHERE channel = ?1 AND ?2 > redeemed", key, sizeof key, amount,
               NULL, 0);
}

int accounts_pending(accounts *a, accounts_fn fn, void *ctx) {
    sqlite3_stmt *st = NULL;
    int rc = 0, step = SQLITE_DONE;
    if (sqlite3_prepare_v2(a->db, "SELECT channel, amount, boc FROM vouchers WHERE redeemed < amount", -1, &st,
                           NULL) != SQLITE_OK)
        return fail(a, "prepare");
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        ton_addr ch = {0};
        const uint8_t *key = sqlite3_column_blob(st, 0);
        if (!key || sqlite3_column_bytes(st, 0) != 33) {
            rc = err_set("accounts: a malformed channel key");
            break;
        }
        ch.workchain = (int8_t)key[0];
        memcpy(ch.hash, key + 1, 32);
        rc = fn(ctx, &ch, (uint64_t)sqlite3_column_int64(st, 1), sqlite3_column_blob(st, 2),
                (size_t)sqlite3_column_bytes(st, 2));
    }
    if (rc == 0 && step != SQLITE_DONE) rc = fail(a, "read");
    sqlite3_finalize(st);
    return rc;
}

/* Looks one row up by key: SQLITE_ROW with *st positioned on it (the caller finalizes),
 * SQLITE_DONE when there is none, or -1 with err_msg(). */
static int lookup(accounts *a, const char *sql, const uint8_t *key, size_t key_len, sqlite3_stmt **st) {
    int step;
    if (sqlite3_prepare_v2(a->db, sql, -1, st, NULL) != SQLITE_OK) return fail(a, "prepare");
    sqlite3_bind_blob(*st, 1, key, (int)key_len, SQLITE_STATIC);
    step = sqlite3_step(*st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? step : fail(a, "read");
}

int accounts_voucher(accounts *a, const ton_addr *channel, uint64_t *amount, bool *found) {
    sqlite3_stmt *st = NULL;
    uint8_t key[33];
    int rc;
    key_of(channel, key);
    *found = false;
    rc = lookup(a, "SELECT amount FROM vouchers WHERE channel = ?1", key, sizeof key, &st);
    if (rc == SQLITE_ROW) {
        *amount = (uint64_t)sqlite3_column_int64(st, 0);
        *found = true;
    }
    sqlite3_finalize(st);
    return rc < 0 ? -1 : 0;
}

int accounts_payout(accounts *a, const uint8_t worker[32], ton_addr *channel, uint64_t *total, bool *found) {
    sqlite3_stmt *st = NULL;
    int rc;
    *found = false;
    rc = lookup(a, "SELECT channel, total FROM payouts WHERE worker = ?1", worker, 32, &st);
    if (rc == SQLITE_ROW) {
        const uint8_t *key = sqlite3_column_blob(st, 0);
        if (!key || sqlite3_column_bytes(st, 0) != 33) {
            rc = err_set("accounts: a malformed payout channel");
        } else {
            channel->workchain = (int8_t)key[0];
            memcpy(channel->hash, key + 1, 32);
            *total = (uint64_t)sqlite3_column_int64(st, 1);
            *found = true;
        }
    }
    sqlite3_finalize(st);
    return rc < 0 ? -1 : 0;
}

int accounts_payout_put(accounts *a, const uint8_t worker[32], const ton_addr *channel, uint64_t total) {
    uint8_t key[33];
    key_of(channel, key);
    return run(a,
               "INSERT INTO payouts(worker, total, channel) VALUES (?1, ?2, ?3) ON CONFLICT(worker) DO UPDATE"
               " SET channel = ?3, total = ?2 WHERE channel != ?3 OR ?2 > total",
               worker, 32, total, key, sizeof key);
}
