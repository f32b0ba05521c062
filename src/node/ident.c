/* A node's identity (see ident.h). */
#include "node/ident.h"

#include "attest/sim.h"
#include "base/err.h"
#include "base/hex.h"
#include "base/log.h"

#include <string.h>
#include <time.h>

static int own_measurement(const node_attest_config *cfg, uint8_t out[32]) {
    if (!cfg->measurement) return sim_measure_file("/proc/self/exe", out);
    return hex_decode(cfg->measurement, out, 32, "--measurement");
}

int node_ident_init(node_ident *n, uint8_t role, const node_attest_config *cfg) {
    bool tdx = cfg->tee && strcmp(cfg->tee, "tdx") == 0;
    keypair platform;
    memset(n, 0, sizeof *n);
    policy_init(&n->policy);
    if (cfg->max_age_s) n->policy.max_age_s = cfg->max_age_s;
    n->policy.allow_unverified_tdx = cfg->allow_unverified_tdx;
    if (cfg->tee && !tdx && strcmp(cfg->tee, "sim") != 0)
        return err_set("--tee: want sim or tdx, got '%.40s'", cfg->tee);
    if (seal_keypair_new(&n->e2e) != 0) goto fail;
    if (tdx) {
        if (!(n->prov = provider_tdx_open(NULL))) goto fail;
    } else {
        if (!cfg->sim_key) {
            err_set("the sim provider needs a platform key file (--sim-key FILE)");
            goto fail;
        }
        if (own_measurement(cfg, n->measurement) != 0 ||
            sim_key_load_or_create(cfg->sim_key, &platform) != 0)
            goto fail;
        n->prov = provider_sim_new(&platform, n->measurement);
        if (!cfg->trust_sim_keys) {
            log_warn("trusting only this node's own sim platform key (no --trust-sim-keys)");
            policy_trust_sim_key(&n->policy, platform.public_key);
        }
        keys_wipe(&platform);
        if (!n->prov) goto fail;
    }
    if (cfg->trust_sim_keys && policy_load_sim_keys(&n->policy, cfg->trust_sim_keys) != 0) goto fail;
    if (cfg->allow_measurements) {
        if (policy_load_measurements(&n->policy, cfg->allow_measurements) != 0) goto fail;
    } else if (!tdx) {
        log_warn("allowing only this node's own measurement (no --allow-measurements)");
        policy_allow_measurement(&n->policy, n->measurement);
    }
    if (!(n->id = ratls_identity_new(RATLS_KEY_ED25519, n->e2e.pk, n->prov, (uint64_t)time(NULL))) ||
        !(n->server_ctx = ratls_ctx_new(n->id, &n->policy, 1)) ||
        !(n->client_ctx = ratls_ctx_new(n->id, &n->policy, 0)))
        goto fail;
    conn_self s = {.role = role};
    memcpy(s.e2e_key, n->e2e.pk, 32);
    s.evidence = ratls_identity_evidence(n->id, &s.evidence_len);
    n->as_server = n->as_client = s;
    n->as_server.ctx = n->server_ctx;
    n->as_client.ctx = n->client_ctx;
    return 0;
fail:
    node_ident_free(n);
    return -1;
}

void node_ident_free(node_ident *n) {
    if (n->server_ctx) SSL_CTX_free(n->server_ctx);
    if (n->client_ctx) SSL_CTX_free(n->client_ctx);
    ratls_identity_free(n->id);
    provider_free(n->prov);
    policy_free(&n->policy);
    sodium_memzero(&n->e2e, sizeof n->e2e);
    n->server_ctx = n->client_ctx = NULL;
    n->id = NULL;
    n->prov = NULL;
}

int node_ident_check_worker(const node_ident *n, const uint8_t *tls_spki, size_t spki_len,
                            const uint8_t e2e_key[32], const uint8_t *evidence, size_t len) {
    uint8_t rd[32];
    evidence_bind(tls_spki, spki_len, e2e_key, rd);
    attest_status st = policy_verify(&n->policy, evidence, len, rd, (uint64_t)time(NULL), NULL);
    return st == ATTEST_OK ? 0 : -1;
}
