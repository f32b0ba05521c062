/* Ed25519 key files and cell-hash signatures; see keys.h. */
#include "ledger/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/hex.h"

#define KEY_MAGIC "veil-ed25519-key v1"
/* The file is exactly this long; anything else is not a key file of this version. */
#define KEY_FILE_LEN (sizeof KEY_MAGIC - 1 + 1 + 5 + 64 + 1 + 7 + 64 + 1)

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_status;

static void sodium_start(void) { sodium_status = sodium_init(); }

/* libsodium must be initialised once before its random generator is used. */
static int sodium_ready(void) {
    pthread_once(&sodium_once, sodium_start);
    return sodium_status < 0 ? err_set("libsodium failed to initialise") : 0;
}

int keys_generate(keypair *k) {
    if (sodium_ready()) return -1;
    crypto_sign_keypair(k->public_key, k->secret_key);
    return 0;
}

int keys_from_seed(const uint8_t seed[32], keypair *k) {
    if (sodium_ready()) return -1;
    crypto_sign_seed_keypair(k->public_key, k->secret_key, seed);
    return 0;
}

void keys_wipe(keypair *k) { sodium_memzero(k, sizeof *k); }

int keys_sign(const keypair *k, const uint8_t hash[32], uint8_t sig[64]) {
    if (sodium_ready()) return -1;
    crypto_sign_detached(sig, NULL, hash, 32, k->secret_key);
    return 0;
}

bool keys_verify(const uint8_t public_key[32], const uint8_t hash[32], const uint8_t sig[64]) {
    return sodium_ready() == 0 && crypto_sign_verify_detached(sig, hash, 32, public_key) == 0;
}

/* A new key must survive a crash right after its address was shown, so the directory entry
 * is made durable too. */
static int sync_parent(const char *path) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return err_errno("key file %s: opening its directory", path);
    int rc = fsync(fd) ? err_errno("key file %s: syncing its directory", path) : 0;
    close(fd);
    return rc;
}

int keys_save(const char *path, const keypair *k) {
    char text[KEY_FILE_LEN + 1], seed_hex[65], pub_hex[65];
    int fd = -1;
    bool created = false;
    hex_encode(k->secret_key, 32, seed_hex);
    hex_encode(k->public_key, 32, pub_hex);
    snprintf(text, sizeof text, "%s\nseed %s\npublic %s\n", KEY_MAGIC, seed_hex, pub_hex);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) err_set("key file %s already exists; refusing to overwrite a key", path);
        else err_errno("key file %s: creating", path);
        goto fail;
    }
    created = true;
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len) {
        err_errno("key file %s: writing", path);
        goto fail;
    }
    if (fsync(fd)) {
        err_errno("key file %s: syncing", path);
        goto fail;
    }
    close(fd);
    fd = -1;
    if (sync_parent(path)) goto fail;
    sodium_memzero(text, sizeof text);
    sodium_memzero(seed_hex, sizeof seed_hex);
    return 0;
fail:
    if (fd >= 0) close(fd);
    if (created) unlink(path);
    sodium_memzero(text, sizeof text);
    sodium_memzero(seed_hex, sizeof seed_hex);
    return -1;
}

/* The mode is checked on the open descriptor, so the file checked is the file read. */
static int check_private(int fd, const char *path) {
    struct stat st;
    if (fstat(fd, &st)) return err_errno("key file %s: stat", path);
    if (!S_ISREG(st.st_mode)) return err_set("key file %s is not a regular file", path);
    if (st.st_mode & 077)
        return err_set("key file %s has mode %04o: group or others can read or write it, so the key may be "
                       "known to others; refusing to use it (if it is still secret: chmod 600 %s)",
                       path, (unsigned)(st.st_mode & 07777), path);
    if (st.st_uid != geteuid())
        return err_set("key file %s belongs to uid %u, not to this user (uid %u); refusing to use it", path,
                       (unsigned)st.st_uid, (unsigned)geteuid());
    return 0;
}

static int parse_key_text(char *text, size_t len, const char *path, keypair *k) {
    uint8_t seed[32], pub[32];
    char *line2, *line3;
    int rc = -1;
    if (len != KEY_FILE_LEN || text[len - 1] != '\n' || strncmp(text, KEY_MAGIC "\n", sizeof KEY_MAGIC) != 0) {
        err_set("key file %s is not a veil key file (expected first line '%s' and %zu bytes)", path, KEY_MAGIC,
                (size_t)KEY_FILE_LEN);
        goto done;
    }
    line2 = text + sizeof KEY_MAGIC;
    line3 = line2 + 5 + 64 + 1;
    if (strncmp(line2, "seed ", 5) != 0 || line2[5 + 64] != '\n' || strncmp(line3, "public ", 7) != 0) {
        err_set("key file %s: expected lines 'seed HEX' and 'public HEX'", path);
        goto done;
    }
    line2[5 + 64] = '\0';
    text[len - 1] = '\0';
    if (hex_decode(line2 + 5, seed, 32, "seed") || hex_decode(line3 + 7, pub, 32, "public key")) {
        err_prefix("key file %s", path);
        goto done;
    }
    if (keys_from_seed(seed, k)) goto done;
    if (sodium_memcmp(pub, k->public_key, 32) != 0) {
        keys_wipe(k);
        err_set("key file %s: the public key does not match the seed (corrupt file?)", path);
        goto done;
    }
    rc = 0;
done:
    sodium_memzero(seed, sizeof seed);
    return rc;
}

int keys_load(const char *path, keypair *k) {
    char text[KEY_FILE_LEN + 2];
    ssize_t n = 0;
    int rc = -1, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) err_set("key file %s does not exist (create one with 'veil wallet new')", path);
        else err_errno("key file %s: opening", path);
        goto done;
    }
    if (check_private(fd, path)) goto done;
    /* One byte more than a key file holds, to tell a longer file from a key file. */
    for (ssize_t r; (size_t)n < sizeof text - 1; n += r) {
        r = read(fd, text + n, sizeof text - 1 - (size_t)n);
        if (r < 0) {
            err_errno("key file %s: reading", path);
            goto done;
        }
        if (r == 0) break;
    }
    text[n] = '\0';
    rc = parse_key_text(text, (size_t)n, path, k);
done:
    if (fd >= 0) close(fd);
    sodium_memzero(text, sizeof text);
    return rc;
}
