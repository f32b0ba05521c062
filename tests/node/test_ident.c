/* node/ident: renewing a node's identity gives new connections evidence issued later for the
 * same TLS and E2E keys (so receipts and payouts stay valid), and a worker's renewed evidence
 * passes the check a gateway makes on worker_info. */
#include "test.h"

#include "../attest/attest_testutil.h"
#include "node/ident.h"

#include <string.h>

/* The old context still makes connections' SSLs after the node dropped it. */
static bool ssl_new_ok(SSL_CTX *ctx) {
    SSL *ssl = SSL_new(ctx);
    SSL_free(ssl);
    return ssl != NULL;
}

TEST(ident_renew_keeps_keys_and_makes_new_evidence) {
    node_attest_config cfg = {.sim_key = test_tmp_path("ident-platform.key"), .max_age_s = 4};
    node_ident n;
    log_capture cap;
    uint8_t e2e[32], spki0[RATLS_SPKI_MAX];
    size_t spki_len0, spki_len1, ev_len;
    const uint8_t *spki1, *ev;
    SSL_CTX *ctx0;
    capture_start(&cap);
    int rc = node_ident_init(&n, PROTO_ROLE_WORKER, &cfg);
    capture_stop(&cap);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0) return;
    CHECK(node_ident_renew_period(&n) == 2.0);
    memcpy(e2e, n.e2e.pk, 32);
    spki1 = ratls_identity_spki(n.id, &spki_len0);
    memcpy(spki0, spki1, spki_len0);
    ctx0 = n.as_server.ctx;
    SSL_CTX_up_ref(ctx0); /* as a connection's SSL holds it */
    capture_start(&cap);
    CHECK_EQ_INT(node_ident_renew(&n), 0);
    CHECK_EQ_INT(node_ident_renew(&n), 0); /* twice: each frees the one it replaces */
    capture_stop(&cap);
    CHECK_EQ_INT(n.renewals, 2);
    CHECK(n.as_server.ctx != ctx0 && n.as_server.ctx == n.server_ctx && n.as_client.ctx == n.client_ctx);
    CHECK(memcmp(n.e2e.pk, e2e, 32) == 0 && memcmp(n.as_client.e2e_key, e2e, 32) == 0);
    spki1 = ratls_identity_spki(n.id, &spki_len1);
    CHECK(spki_len0 == spki_len1 && memcmp(spki0, spki1, spki_len0) == 0);
    ev = ratls_identity_evidence(n.id, &ev_len);
    CHECK(n.as_client.evidence == ev && n.as_client.evidence_len == ev_len);
    capture_start(&cap);
    CHECK_EQ_INT(node_ident_check_worker(&n, spki1, spki_len1, e2e, ev, ev_len), 0);
    capture_stop(&cap);
    CHECK(ssl_new_ok(ctx0));
    SSL_CTX_free(ctx0);
    node_ident_free(&n);
}
