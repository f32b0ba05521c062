/* The sim TEE's signing and checking; see sim.h. */
#include "attest/sim.h"

#include "base/err.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int sim_key_load_or_create(const char *path, keypair *k) {
    if (access(path, F_OK) == 0 || errno != ENOENT) return keys_load(path, k);
    if (keys_generate(k) != 0 || keys_save(path, k) != 0) {
        keys_wipe(k);
        return -1;
    }
    return 0;
}

void sim_sign(const keypair *k, evidence *ev) {
    uint8_t msg[EVIDENCE_SIM_SIGNED_MAX];
    size_t n;
    ev->tee = EVIDENCE_TEE_SIM;
    memcpy(ev->sim_key, k->public_key, 32);
    n = evidence_sim_signed_bytes(ev, msg);
    crypto_sign_detached(ev->sim_sig, NULL, msg, n, k->secret_key);
}

int sim_check(const evidence *ev) {
    uint8_t msg[EVIDENCE_SIM_SIGNED_MAX];
    size_t n = evidence_sim_signed_bytes(ev, msg);
    if (sodium_init() < 0) return err_set("libsodium failed to initialise");
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
