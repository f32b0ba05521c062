/* A node's identity (see ident.h). */
#include "node/ident.h"

#include "attest/sim.h"
#include "base/err.h"
#include "base/hex.h"
#include "base/log.h"

#include <event2/event.h>
#include <string.h>
#include <time.h>

static void drop_generation(node_ident *n) {
    if (n->server_ctx) SSL_CTX_free(n->server_ctx);
    if (n->client_ctx) SSL_CTX_free(n->client_ctx);
    ratls_identity_free(n->id);
    n->server_ctx = n->client_ctx = NULL;
    n->id = NULL;
}

static int own_measurement(const node_attest_config *cfg, uint8_t out[32]) {
    if (!cfg->measurement) return sim_measure_file("/proc/self/exe", out);
    return hex_decode(cfg->measurement, out, 32, "--measurement");
}

/* Makes evidence issued now for the TLS key (a fresh one at start), a certificate and contexts
 * for them, replacing the current generation: connections started with it hold its context
 * (SSL_new takes a reference) and a copy of its evidence (conn_self), so it can go. */
static int make_generation(node_ident *n) {
    uint64_t now = (uint64_t)time(NULL);
    ratls_identity *id = n->id ? ratls_identity_renew(n->id, n->e2e.pk, n->prov, now)
                               : ratls_identity_new(RATLS_KEY_ED25519, n->e2e.pk, n->prov, now);
    SSL_CTX *sctx = id ? ratls_ctx_new(id, &n->policy, 1) : NULL;
    SSL_CTX *cctx = sctx ? ratls_ctx_new(id, &n->policy, 0) : NULL;
    if (!cctx) goto fail;
    drop_generation(n);
    n->id = id;
    n->server_ctx = sctx;
    n->client_ctx = cctx;
    conn_self s = {.role = n->role};
    memcpy(s.e2e_key, n->e2e.pk, 32);
    s.evidence = ratls_identity_evidence(id, &s.evidence_len);
    n->as_server = n->as_client = s;
    n->as_server.ctx = sctx;
    n->as_client.ctx = cctx;
    return 0;
fail:
    if (sctx) SSL_CTX_free(sctx);
    ratls_identity_free(id);
    return -1;
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
    n->role = role;
    if (make_generation(n) != 0) goto fail;
    return 0;
fail:
    node_ident_free(n);
    return -1;
}

int node_ident_renew(node_ident *n) {
    if (make_generation(n) != 0) return -1;
    n->renewals++;
    log_info("renewed the node identity (evidence issued now, renewal %llu)",
             (unsigned long long)n->renewals);
    return 0;
}

static void on_renew_timer(evutil_socket_t fd, short what, void *arg) {
    node_ident *n = arg;
    (void)fd;
    (void)what;
    /* On failure the current evidence stays until the next try: peers refuse it only once it
     * is max_age old, and we try again at half that. */
    if (node_ident_renew(n) != 0) log_warn("cannot renew the node identity: %s", err_msg());
    else if (n->on_renewed) n->on_renewed(n->renewed_ud);
}

double node_ident_renew_period(const node_ident *n) { return n->policy.max_age_s / 2.0; }

int node_ident_start_renewal(node_ident *n, struct event_base *base, void (*on_renewed)(void *ud),
                             void *ud) {
    double s = node_ident_renew_period(n);
    n->on_renewed = on_renewed;
    n->renewed_ud = ud;
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    if (!(n->renew_timer = event_new(base, -1, EV_PERSIST, on_renew_timer, n)) ||
        event_add(n->renew_timer, &tv) != 0)
        return err_set("cannot start the identity renewal timer");
    return 0;
}

void node_ident_stop_renewal(node_ident *n) {
    if (n->renew_timer) event_free(n->renew_timer);
    n->renew_timer = NULL;
}

void node_ident_free(node_ident *n) {
    drop_generation(n);
    provider_free(n->prov);
    policy_free(&n->policy);
    sodium_memzero(&n->e2e, sizeof n->e2e);
    n->prov = NULL;
}

int node_ident_check_worker(const node_ident *n, const uint8_t *tls_spki, size_t spki_len,
                            const uint8_t e2e_key[32], const uint8_t *evidence, size_t len) {
    uint8_t rd[32];
    evidence_bind(tls_spki, spki_len, e2e_key, rd);
    attest_status st = policy_verify(&n->policy, evidence, len, rd, (uint64_t)time(NULL), NULL);
    return st == ATTEST_OK ? 0 : -1;
}
