/* Key files: created 0600 and never overwritten, refused when others may read them, when
 * missing or damaged; keys from a seed match @ton/crypto's; signatures over hashes verify. */
#include "test.h"

#include "base/err.h"
#include "ledger/keys.h"
#include "ton_vectors.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *key_path(const char *name) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    return path;
}

static void test_seed(uint8_t seed[32]) {
    for (int i = 0; i < 32; i++) seed[i] = (uint8_t)(i + 1);
}

TEST(keys_from_seed_match_ton_crypto) {
    uint8_t seed[32];
    keypair k;
    test_seed(seed);
    CHECK_EQ_INT(keys_from_seed(seed, &k), 0);
    CHECK(tv_hash_is(k.public_key, TV_PUBLIC_KEY));
    CHECK(memcmp(k.secret_key, seed, 32) == 0);
    keys_wipe(&k);
}

TEST(keys_file_is_created_0600_and_loads_back) {
    const char *path = key_path("wallet.key");
    keypair k, back;
    struct stat st;
    CHECK_EQ_INT(keys_generate(&k), 0);
    CHECK_MSG(keys_save(path, &k) == 0, "%s", err_msg());
    CHECK_EQ_INT(stat(path, &st), 0);
    CHECK_EQ_INT(st.st_mode & 07777, 0600);
    CHECK_MSG(keys_load(path, &back) == 0, "%s", err_msg());
    CHECK(memcmp(&k, &back, sizeof k) == 0);

    /* never overwrites an existing key */
    keypair other;
    CHECK_EQ_INT(keys_generate(&other), 0);
    CHECK_EQ_INT(keys_save(path, &other), -1);
    CHECK(strstr(err_msg(), "already exists") != NULL);
    CHECK_EQ_INT(keys_load(path, &back), 0);
    CHECK(memcmp(k.public_key, back.public_key, 32) == 0);
    unlink(path);
}

TEST(keys_file_readable_by_others_is_refused) {
    const char *path = key_path("shared.key");
    keypair k;
    static const unsigned modes[] = {0644, 0640, 0604, 0660, 0602, 0620};
    CHECK_EQ_INT(keys_generate(&k), 0);
    CHECK_EQ_INT(keys_save(path, &k), 0);
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char want[32];
        CHECK_EQ_INT(chmod(path, modes[i]), 0);
        CHECK_EQ_INT(keys_load(path, &k), -1);
        snprintf(want, sizeof want, "has mode %04o", modes[i]);
        CHECK_MSG(strstr(err_msg(), want) != NULL, "%s", err_msg());
        CHECK(strstr(err_msg(), "chmod 600") != NULL);
    }
    CHECK_EQ_INT(chmod(path, 0400), 0); /* read-only for the owner is fine */
    CHECK_MSG(keys_load(path, &k) == 0, "%s", err_msg());
    unlink(path);
}

TEST(keys_missing_file_is_a_clear_error) {
    keypair k;
    CHECK_EQ_INT(keys_load(key_path("no-such.key"), &k), -1);
    CHECK(strstr(err_msg(), "no-such.key does not exist") != NULL);
    CHECK_EQ_INT(keys_load(test_tmpdir(), &k), -1);
    CHECK(strstr(err_msg(), "not a regular file") != NULL);
}

/* Writes text as a 0600 file and returns keys_load's result. */
static int load_text(const char *text) {
    const char *path = key_path("damaged.key");
    keypair k;
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) return 99;
    close(fd);
    int rc = keys_load(path, &k);
    unlink(path);
    return rc;
}

TEST(keys_damaged_file_is_refused) {
    char good[256];
    snprintf(good, sizeof good, "veil-ed25519-key v1\nseed %s\npublic %s\n",
             "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20", TV_PUBLIC_KEY);
    CHECK_MSG(load_text(good) == 0, "%s", err_msg());

    char text[300];
    memcpy(text, good, sizeof good);
    text[strlen(text) - 2] ^= 1; /* last digit of the public key */
    CHECK_EQ_INT(load_text(text), -1);
    CHECK(strstr(err_msg(), "does not match the seed") != NULL);

    memcpy(text, good, sizeof good);
    text[18] = '2'; /* "v2" */
    CHECK_EQ_INT(load_text(text), -1);
    CHECK(strstr(err_msg(), "is not a veil key file") != NULL);

    memcpy(text, good, sizeof good);
    text[30] = 'x'; /* inside the seed */
    CHECK_EQ_INT(load_text(text), -1);
    CHECK(strstr(err_msg(), "seed: not a hex digit") != NULL);

    memcpy(text, good, sizeof good);
    text[strlen(text) - 1] = '\0'; /* no final newline */
    CHECK_EQ_INT(load_text(text), -1);
    snprintf(text, sizeof text, "%sextra\n", good);
    CHECK_EQ_INT(load_text(text), -1);
    CHECK_EQ_INT(load_text(""), -1);
}

TEST(keys_sign_and_verify_hashes) {
    uint8_t seed[32], hash[32], sig[64];
    keypair k, other;
    test_seed(seed);
    CHECK_EQ_INT(keys_from_seed(seed, &k), 0);
    CHECK_EQ_INT(keys_generate(&other), 0);
    for (int i = 0; i < 32; i++) hash[i] = (uint8_t)(i * 7);
    CHECK_EQ_INT(keys_sign(&k, hash, sig), 0);
    CHECK(keys_verify(k.public_key, hash, sig));
    CHECK(!keys_verify(other.public_key, hash, sig));
    hash[5] ^= 0x10;
    CHECK(!keys_verify(k.public_key, hash, sig));
    hash[5] ^= 0x10;
    sig[63] ^= 0x01;
    CHECK(!keys_verify(k.public_key, hash, sig));
}
