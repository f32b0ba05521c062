/* SQLite store of hash-chained blocks; see store.h. */
#include "ledger/store.h"

#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "ledger/boc.h"

#define STORE_FORMAT "veil-ledger-v1"
#define MAX_BLOCK_TXS 1000000 /* far above any block the node makes; bounds a damaged count */

/* Checkpoints (copying the WAL into the main file, then fsyncing it) run on a thread of their
 * own with its own connection, every CHECKPOINT_EVERY_S or when a commit asks: SQLite's
 * automatic checkpoint would run inside a commit, and on a busy disk one took seconds, which
 * every transaction of that block waited for. A passive checkpoint never blocks a commit. */
#define CHECKPOINT_EVERY_S 1
#define CHECKPOINT_PAGES 1000 /* SQLite's own automatic threshold */

struct store {
    sqlite3 *db;
    char *path;
    /* the checkpointer (writable stores only) */
    pthread_t ckpt_thread;
    bool ckpt_running, ckpt_stop, ckpt_wanted;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cond;
    sqlite3 *ckpt_db;
};

static void *checkpointer(void *arg) {
    store *s = arg;
    pthread_mutex_lock(&s->ckpt_mu);
    while (!s->ckpt_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += CHECKPOINT_EVERY_S;
        while (!s->ckpt_stop && !s->ckpt_wanted)
            if (pthread_cond_timedwait(&s->ckpt_cond, &s->ckpt_mu, &until)) break;
        s->ckpt_wanted = false;
        pthread_mutex_unlock(&s->ckpt_mu);
        sqlite3_wal_checkpoint_v2(s->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&s->ckpt_mu);
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    return NULL;
}

/* The commit hook: a WAL past CHECKPOINT_PAGES wakes the checkpointer. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int pages) {
    store *s = arg;
    (void)db;
    (void)name;
    if (pages >= CHECKPOINT_PAGES) {
        pthread_mutex_lock(&s->ckpt_mu);
        s->ckpt_wanted = true;
        pthread_cond_signal(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_mu);
    }
    return SQLITE_OK;
}

static int start_checkpointer(store *s) {
    if (sqlite3_open_v2(s->path, &s->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        return err_set("ledger %s: opening the checkpoint connection: %s", s->path, sqlite3_errmsg(s->ckpt_db));
    sqlite3_busy_timeout(s->ckpt_db, 5000);
    /* a connection learns that the file is in WAL mode only by reading it */
    if (sqlite3_exec(s->ckpt_db, "PRAGMA journal_mode", NULL, NULL, NULL) != SQLITE_OK)
        return err_set("ledger %s: the checkpoint connection: %s", s->path, sqlite3_errmsg(s->ckpt_db));
    pthread_mutex_init(&s->ckpt_mu, NULL);
    pthread_cond_init(&s->ckpt_cond, NULL);
    if (pthread_create(&s->ckpt_thread, NULL, checkpointer, s)) {
        pthread_mutex_destroy(&s->ckpt_mu);
        pthread_cond_destroy(&s->ckpt_cond);
        return err_set("ledger %s: cannot start the checkpoint thread", s->path);
    }
    s->ckpt_running = true;
    sqlite3_wal_hook(s->db, on_wal, s);
    return 0;
}

static void stop_checkpointer(store *s) {
    if (!s->ckpt_running) return;
    pthread_mutex_lock(&s->ckpt_mu);
    s->ckpt_stop = true;
    pthread_cond_signal(&s->ckpt_cond);
    pthread_mutex_unlock(&s->ckpt_mu);
    pthread_join(s->ckpt_thread, NULL);
    pthread_mutex_destroy(&s->ckpt_mu);
    pthread_cond_destroy(&s->ckpt_cond);
    s->ckpt_running = false;
}

static int db_err(store *s, const char *what) {
    return err_set("ledger %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(store *s, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    err_set("ledger %s: %s: %s", s->path, sql, msg ? msg : "?");
    sqlite3_free(msg);
    return -1;
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}

void store_block_hash(uint64_t height, uint64_t time, const uint8_t prev[32], const uint8_t (*tx_hashes)[32],
                      uint32_t ntx, uint8_t out[32]) {
    static const char tag[] = "veil-block-v1";
    uint8_t head[8 + 8 + 32 + 4];
    crypto_hash_sha256_state h;
    put_u64(head, height);
    put_u64(head + 8, time);
    memcpy(head + 16, prev, 32);
    for (int i = 0; i < 4; i++) head[48 + i] = (uint8_t)(ntx >> (24 - 8 * i));
    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, (const uint8_t *)tag, sizeof tag - 1);
    crypto_hash_sha256_update(&h, head, sizeof head);
    for (uint32_t i = 0; i < ntx; i++) crypto_hash_sha256_update(&h, tx_hashes[i], 32);
    crypto_hash_sha256_final(&h, out);
}

static int insert_block(store *s, const block_header *h, const void *txs, size_t len) {
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO blocks(height, time, prev, hash, ntx, txs) VALUES (?,?,?,?,?,?)", -1,
                           &st, NULL) != SQLITE_OK) {
        db_err(s, "preparing a block insert");
        goto done;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)h->height);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)h->time);
    sqlite3_bind_blob(st, 3, h->prev, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, h->hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, h->ntx);
    sqlite3_bind_blob(st, 6, txs ? txs : "", (int)len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) db_err(s, "writing a block");
    else rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

static int create_schema(store *s, const uint8_t owner[32], uint64_t time) {
    block_header g = {.height = 0, .time = time};
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (exec(s, "BEGIN; CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
                "CREATE TABLE blocks(height INTEGER PRIMARY KEY, time INTEGER NOT NULL, prev BLOB NOT NULL,"
                " hash BLOB NOT NULL, ntx INTEGER NOT NULL, txs BLOB NOT NULL);"
                "CREATE TABLE txindex(hash BLOB PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL)"
                " WITHOUT ROWID;"))
        goto done;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO meta VALUES ('format', ?), ('owner', ?)", -1, &st, NULL) !=
        SQLITE_OK) {
        db_err(s, "preparing meta");
        goto done;
    }
    sqlite3_bind_text(st, 1, STORE_FORMAT, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, owner, 32, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        db_err(s, "writing meta");
        goto done;
    }
    memcpy(g.prev, owner, 32);
    store_block_hash(0, time, g.prev, NULL, 0, g.hash);
    if (insert_block(s, &g, NULL, 0) || exec(s, "COMMIT")) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    if (rc) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int check_format(store *s) {
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'format'", -1, &st, NULL) != SQLITE_OK) {
        err_set("%s is not a veil ledger (%s)", s->path, sqlite3_errmsg(s->db));
        goto done;
    }
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_type(st, 0) != SQLITE_TEXT ||
        strcmp((const char *)sqlite3_column_text(st, 0), STORE_FORMAT) != 0) {
        err_set("%s is not a %s ledger", s->path, STORE_FORMAT);
        goto done;
    }
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

store *store_open(const char *path, const uint8_t *create_owner, uint64_t genesis_time, bool read_only) {
    struct stat sb;
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        err_set("ledger %s: out of memory", path);
        goto fail;
    }
    bool exists = stat(path, &sb) == 0;
    if (create_owner && exists) {
        err_set("ledger %s exists already; refusing to make a new one over it", path);
        goto fail;
    }
    if (!create_owner && !exists) {
        err_set("ledger %s does not exist (make one with 'veil chain init')", path);
        goto fail;
    }
    int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | (create_owner ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        db_err(s, "opening");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    /* WAL: a commit is one append and one fsync of the log; FULL: that fsync happens before
     * COMMIT returns, which is what makes an acknowledged block durable. */
    if (!read_only && exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;"))
        goto fail;
    if (create_owner && create_schema(s, create_owner, genesis_time)) goto fail;
    if (check_format(s)) goto fail;
    if (!read_only && start_checkpointer(s)) goto fail;
    return s;
fail:
    store_close(s);
    return NULL;
}

void store_close(store *s) {
    if (!s) return;
    stop_checkpointer(s);
    sqlite3_close(s->ckpt_db);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

int store_owner(store *s, uint8_t owner[32]) {
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'owner'", -1, &st, NULL) != SQLITE_OK) {
        db_err(s, "reading the owner");
        goto done;
    }
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_bytes(st, 0) != 32) {
        err_set("ledger %s: no registry owner in meta", s->path);
        goto done;
    }
    memcpy(owner, sqlite3_column_blob(st, 0), 32);
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* Reads a blocks row (height, time, prev, hash, ntx) into h. */
static int read_header(store *s, sqlite3_stmt *st, block_header *h) {
    if (sqlite3_column_bytes(st, 2) != 32 || sqlite3_column_bytes(st, 3) != 32 || sqlite3_column_int64(st, 0) < 0 ||
        sqlite3_column_int64(st, 1) < 0 || sqlite3_column_int64(st, 4) < 0 ||
        sqlite3_column_int64(st, 4) > MAX_BLOCK_TXS)
        return err_set("ledger %s: block row %lld is damaged (field sizes)", s->path,
                       (long long)sqlite3_column_int64(st, 0));
    h->height = (uint64_t)sqlite3_column_int64(st, 0);
    h->time = (uint64_t)sqlite3_column_int64(st, 1);
    memcpy(h->prev, sqlite3_column_blob(st, 2), 32);
    memcpy(h->hash, sqlite3_column_blob(st, 3), 32);
    h->ntx = (uint32_t)sqlite3_column_int64(st, 4);
    return 0;
}

int store_tip(store *s, block_header *out) {
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT height, time, prev, hash, ntx FROM blocks ORDER BY height DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        db_err(s, "reading the last block");
        goto done;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        err_set("ledger %s has no genesis block", s->path);
        goto done;
    }
    rc = read_header(s, st, out);
done:
    sqlite3_finalize(st);
    return rc;
}

int store_append(store *s, const block_header *h, cell *const *txs, size_t ntx) {
    buf blob = {0};
    sqlite3_stmt *st = NULL;
    bool begun = false;
    int rc = -1;
    if (exec(s, "BEGIN")) goto done;
    begun = true;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO txindex(hash, height, idx) VALUES (?,?,?)", -1, &st, NULL) !=
        SQLITE_OK) {
        db_err(s, "preparing an index insert");
        goto done;
    }
    for (size_t i = 0; i < ntx; i++) {
        uint8_t *boc, len4[4];
        size_t len;
        if (boc_serialize(txs[i], 0, &boc, &len)) goto done;
        for (int k = 0; k < 4; k++) len4[k] = (uint8_t)(len >> (24 - 8 * k));
        buf_append(&blob, len4, 4);
        buf_append(&blob, boc, len);
        free(boc);
        sqlite3_reset(st);
        sqlite3_bind_blob(st, 1, cell_hash(txs[i]), 32, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)h->height);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)i);
        if (sqlite3_step(st) != SQLITE_DONE) {
            db_err(s, "indexing a transaction");
            goto done;
        }
    }
    if (buf_failed(&blob) || insert_block(s, h, blob.data, blob.len) || exec(s, "COMMIT")) goto done;
    begun = false;
    rc = 0;
done:
    sqlite3_finalize(st);
    buf_free(&blob);
    if (begun) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc) err_prefix("block %" PRIu64, h->height);
    return rc;
}

/* Splits a block's transaction list into ntx (pointer, length) pairs. */
static int split_txs(store *s, const block_header *h, const uint8_t *p, size_t len, const uint8_t **bocs,
                     size_t *lens) {
    size_t off = 0;
    for (uint32_t i = 0; i < h->ntx; i++) {
        if (len - off < 4) goto bad;
        size_t n = (size_t)p[off] << 24 | (size_t)p[off + 1] << 16 | (size_t)p[off + 2] << 8 | p[off + 3];
        off += 4;
        if (n > len - off) goto bad;
        bocs[i] = p + off;
        lens[i] = n;
        off += n;
    }
    if (off == len) return 0;
bad:
    return err_set("ledger %s: block %" PRIu64 ": its transaction list does not hold %" PRIu32
                   " well-formed entries (byte %zu of %zu)", s->path, h->height, h->ntx, off, len);
}

int store_each_block(store *s, store_block_fn fn, void *ctx) {
    sqlite3_stmt *st = NULL;
    const uint8_t **bocs = NULL;
    size_t *lens = NULL, cap = 0;
    int rc = -1, step;
    if (sqlite3_prepare_v2(s->db, "SELECT height, time, prev, hash, ntx, txs FROM blocks ORDER BY height", -1, &st,
                           NULL) != SQLITE_OK) {
        db_err(s, "reading blocks");
        goto done;
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        block_header h;
        if (read_header(s, st, &h)) goto done;
        if (h.ntx > cap) {
            free(bocs);
            free(lens);
            cap = h.ntx;
            bocs = malloc(cap * sizeof *bocs);
            lens = malloc(cap * sizeof *lens);
            if (!bocs || !lens) {
                err_set("ledger %s: out of memory", s->path);
                goto done;
            }
        }
        const uint8_t *blob = sqlite3_column_blob(st, 5);
        if (split_txs(s, &h, blob, (size_t)sqlite3_column_bytes(st, 5), bocs, lens)) goto done;
        if ((rc = fn(ctx, &h, bocs, lens)) != 0) goto done;
    }
    if (step != SQLITE_DONE) {
        db_err(s, "reading blocks");
        goto done;
    }
    rc = 0;
done:
    sqlite3_finalize(st);
    free(bocs);
    free(lens);
    return rc;
}

int store_find_tx(store *s, const uint8_t hash[32], uint64_t *height, uint32_t *idx) {
    sqlite3_stmt *st = NULL;
    int rc = -1, step;
    if (sqlite3_prepare_v2(s->db, "SELECT height, idx FROM txindex WHERE hash = ?", -1, &st, NULL) != SQLITE_OK) {
        db_err(s, "looking up a transaction");
        goto done;
    }
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *height = (uint64_t)sqlite3_column_int64(st, 0);
        *idx = (uint32_t)sqlite3_column_int64(st, 1);
        rc = 1;
    } else if (step == SQLITE_DONE) {
        rc = 0;
    } else {
        db_err(s, "looking up a transaction");
    }
done:
    sqlite3_finalize(st);
    return rc;
}

int store_index_count(store *s, uint64_t *count) {
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM txindex", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        db_err(s, "counting the index");
        goto done;
    }
    *count = (uint64_t)sqlite3_column_int64(st, 0);
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

uint64_t store_disk_bytes(const char *path) {
    char wal[4096];
    struct stat a, b;
    uint64_t n = stat(path, &a) == 0 ? (uint64_t)a.st_size : 0;
    snprintf(wal, sizeof wal, "%s-wal", path);
    return n + (stat(wal, &b) == 0 ? (uint64_t)b.st_size : 0);
}
