/* The sim TEE's platform key, signing and checking; see sim.h. */
#include "attest/sim.h"

#include "attest/hexfile.h"
#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int init_sodium(void) {
    return sodium_init() < 0 ? err_set("libsodium failed to initialise") : 0;
}

int sim_key_create(const char *path, sim_key *k) {
    uint8_t seed[32];
    char hex[65], text[160];
    int fd = -1, n, ret = -1;
    if (init_sodium() != 0) return -1;
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(k->pk, k->sk, seed);
    hexfile_format(seed, hex);
    n = snprintf(text, sizeof text, "# veil sim platform key (Ed25519 seed): keep it private\n%s\n",
                 hex);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        err_errno("%s: create sim key", path);
        goto out;
    }
    /* umask may only remove bits, but say exactly what the file is */
    if (fchmod(fd, 0600) != 0) {
        err_errno("%s: chmod sim key", path);
        unlink(path);
        goto out;
    }
    if (write(fd, text, (size_t)n) != n) {
        err_set("%s: could not write the sim key", path);
        unlink(path);
        goto out;
    }
    ret = 0;
out:
    if (fd >= 0) close(fd);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(hex, sizeof hex);
    sodium_memzero(text, sizeof text);
    if (ret != 0) sim_key_wipe(k);
    return ret;
}

struct seed_ctx {
    uint8_t seed[32];
    int n;
};

static int take_seed(void *ctx, const uint8_t value[32]) {
    struct seed_ctx *s = ctx;
    if (s->n++) return err_set("a sim key file holds one key");
    memcpy(s->seed, value, 32);
    return 0;
}

int sim_key_load(const char *path, sim_key *k) {
    struct seed_ctx s = {{0}, 0};
    struct stat st;
    int ret = -1;
    memset(k, 0, sizeof *k);
    if (init_sodium() != 0) return -1;
    if (stat(path, &st) != 0) return err_errno("%s", path);
    if (st.st_mode & 077)
        return err_set("%s: sim key file has mode %04o; others must not read it (chmod 600)",
                       path, (unsigned)(st.st_mode & 07777));
    if (hexfile_read(path, take_seed, &s) != 0) goto out;
    if (s.n != 1) {
        err_set("%s: no key in the file", path);
        goto out;
    }
    crypto_sign_seed_keypair(k->pk, k->sk, s.seed);
    ret = 0;
out:
    sodium_memzero(&s, sizeof s);
    return ret;
}

int sim_key_load_or_create(const char *path, sim_key *k) {
    if (access(path, F_OK) != 0 && errno == ENOENT) return sim_key_create(path, k);
    return sim_key_load(path, k);
}

void sim_key_wipe(sim_key *k) { sodium_memzero(k, sizeof *k); }

void sim_sign(const sim_key *k, evidence *ev) {
    uint8_t msg[EVIDENCE_SIM_SIGNED_MAX];
    size_t n;
    ev->tee = EVIDENCE_TEE_SIM;
    memcpy(ev->sim_key, k->pk, 32);
    n = evidence_sim_signed_bytes(ev, msg);
    crypto_sign_detached(ev->sim_sig, NULL, msg, n, k->sk);
}

int sim_check(const evidence *ev) {
    uint8_t msg[EVIDENCE_SIM_SIGNED_MAX];
    size_t n = evidence_sim_signed_bytes(ev, msg);
    if (init_sodium() != 0) return -1;
    if (crypto_sign_verify_detached(ev->sim_sig, msg, n, ev->sim_key) != 0)
        return err_set("sim evidence: the signature does not verify under its platform key "
                       "(forged or altered)");
    return 0;
}

int sim_measure_file(const char *path, uint8_t out[32]) {
    crypto_hash_sha256_state st;
    uint8_t buf[1 << 16];
    size_t n;
    int ret = -1;
    FILE *f = fopen(path, "rbe");
    if (!f) return err_errno("%s", path);
    crypto_hash_sha256_init(&st);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) crypto_hash_sha256_update(&st, buf, n);
    if (ferror(f)) {
        err_errno("%s: read", path);
        goto out;
    }
    crypto_hash_sha256_final(&st, out);
    ret = 0;
out:
    fclose(f);
    return ret;
}
