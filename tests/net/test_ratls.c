/* RA-TLS over a socketpair: a mutual TLS 1.3 handshake with sim evidence succeeds and each
 * side learns the other's attested keys; forged, unbound, unknown, untrusted or stale
 * evidence (on either side) fails the handshake with the matching status. */
#include "../attest/attest_testutil.h"
#include "attest/evidence.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "attest/sim.h"
#include "base/err.h"
#include "net/ratls.h"
#include "test.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct world {
    keypair platform, rogue;       /* trusted and untrusted platform keys */
    uint8_t measurement[32];       /* the allowed image */
    attest_policy policy;
} world;

static void world_init(world *w) {
    memset(w, 0, sizeof *w);
    if (keys_generate(&w->platform) != 0 || keys_generate(&w->rogue) != 0) abort();
    memset(w->measurement, 0xab, 32);
    policy_init(&w->policy);
    policy_allow_measurement(&w->policy, w->measurement);
    policy_trust_sim_key(&w->policy, w->platform.public_key);
}

/* How a node's evidence is made: honestly, or wrong in one way. */
enum forgery { HONEST, TAMPERED, OTHER_KEY, UNKNOWN_IMAGE, UNTRUSTED, STALE };

typedef struct maker {
    const world *w;
    enum forgery how;
} maker;

static uint8_t *make_evidence(void *ctx, const uint8_t *spki, size_t spki_len,
                              const uint8_t report_data[32], size_t *len) {
    const maker *mk = ctx;
    evidence ev;
    memset(&ev, 0, sizeof ev);
    ev.issued_at = (uint64_t)time(NULL) - (mk->how == STALE ? 7200 : 5);
    memcpy(ev.measurement, mk->w->measurement, 32);
    memcpy(ev.report_data, report_data, 32);
    if (mk->how == UNKNOWN_IMAGE || mk->how == TAMPERED) ev.measurement[0] ^= 1;
    if (mk->how == OTHER_KEY) {
        /* evidence for a different TLS key with the same E2E key */
        uint8_t other[RATLS_SPKI_MAX], e2e[32];
        memcpy(other, spki, spki_len);
        other[spki_len - 1] ^= 1;
        memset(e2e, 0, 32);
        evidence_bind(other, spki_len, e2e, ev.report_data);
    }
    sim_sign(mk->how == UNTRUSTED ? &mk->w->rogue : &mk->w->platform, &ev);
    if (mk->how == TAMPERED) ev.measurement[0] ^= 1; /* now it claims the allowed image */
    return evidence_serialize(&ev, len);
}

typedef struct node {
    uint8_t e2e[32];
    ratls_identity *id;
    SSL_CTX *ctx;
} node;

static void node_init(node *n, world *w, ratls_key_type type, enum forgery how, int is_server,
                      uint8_t e2e_seed) {
    maker mk = {w, how};
    memset(n->e2e, e2e_seed, 32);
    if (how == OTHER_KEY) memset(n->e2e, 0, 32);
    n->id = ratls_identity_new_with(type, n->e2e, make_evidence, &mk, (uint64_t)time(NULL));
    n->ctx = n->id ? ratls_ctx_new(n->id, &w->policy, is_server) : NULL;
    if (!n->ctx) {
        fprintf(stderr, "node_init: %s\n", err_msg());
        abort();
    }
}

static void node_free(node *n) {
    SSL_CTX_free(n->ctx);
    ratls_identity_free(n->id);
}

typedef struct outcome {
    int client_ok, server_ok, exchanged;
    int client_has_peer, server_has_peer;
    ratls_peer client_saw, server_saw;       /* evidence pointers are dangling afterwards */
    uint8_t client_saw_evidence[EVIDENCE_SIM_LEN];
    attest_status client_status, server_status;
    char client_failure[800], server_failure[800];
    int hello_ok, hello_wrong_key, hello_wrong_evidence;
} outcome;

static int step(SSL *ssl, int *done, int *failed) {
    int r;
    if (*done || *failed) return 0;
    r = SSL_do_handshake(ssl);
    if (r == 1) *done = 1;
    else {
        int e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) *failed = 1;
    }
    return 1;
}

/* Moves n bytes from one SSL to the other through the socketpair; 1 when they arrived. */
static int transfer(SSL *from, SSL *to, const char *msg) {
    char buf[16];
    size_t n = strlen(msg);
    if (SSL_write(from, msg, (int)n) != (int)n) return 0;
    for (int i = 0; i < 100; i++) {
        int r = SSL_read(to, buf, sizeof buf);
        if (r > 0) return (size_t)r == n && memcmp(buf, msg, n) == 0;
        if (SSL_get_error(to, r) != SSL_ERROR_WANT_READ) return 0;
    }
    return 0;
}

static void run_pair(const node *client, const node *server, outcome *o) {
    int sv[2], cfail = 0, sfail = 0;
    SSL *c, *s;
    log_capture cap;
    memset(o, 0, sizeof *o);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) abort();
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    c = SSL_new(client->ctx);
    s = SSL_new(server->ctx);
    SSL_set_fd(c, sv[0]);
    SSL_set_fd(s, sv[1]);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    capture_start(&cap);
    /* both sides in one thread on non-blocking sockets; each step either advances or waits */
    for (int i = 0; i < 1000; i++)
        if (!step(c, &o->client_ok, &cfail) + !step(s, &o->server_ok, &sfail) == 2) break;
    if (o->client_ok && o->server_ok)
        o->exchanged = transfer(c, s, "ping") && transfer(s, c, "pong");
    else if (o->client_ok)
        o->exchanged = transfer(c, s, "ping"); /* the server's rejection shows up here */
    capture_stop(&cap);
    o->client_has_peer = ratls_peer_of(c) != NULL;
    o->server_has_peer = ratls_peer_of(s) != NULL;
    if (o->client_has_peer) {
        o->client_saw = *ratls_peer_of(c);
        if (o->client_saw.evidence_len == EVIDENCE_SIM_LEN)
            memcpy(o->client_saw_evidence, o->client_saw.evidence, EVIDENCE_SIM_LEN);
    }
    if (o->server_has_peer) {
        const ratls_peer *p = ratls_peer_of(s);
        o->server_saw = *p;
        o->hello_ok = ratls_check_hello(s, client->e2e, p->evidence, p->evidence_len) == 0;
        {
            uint8_t wrong[32];
            memcpy(wrong, client->e2e, 32);
            wrong[7] ^= 1;
            o->hello_wrong_key = ratls_check_hello(s, wrong, NULL, 0) == 0;
            o->hello_wrong_evidence =
                ratls_check_hello(s, client->e2e, p->evidence, p->evidence_len - 1) == 0;
        }
    }
    o->client_status = ratls_failure_status(c);
    o->server_status = ratls_failure_status(s);
    snprintf(o->client_failure, sizeof o->client_failure, "%s",
             ratls_failure(c) ? ratls_failure(c) : "");
    snprintf(o->server_failure, sizeof o->server_failure, "%s",
             ratls_failure(s) ? ratls_failure(s) : "");
    SSL_free(c);
    SSL_free(s);
    close(sv[0]);
    close(sv[1]);
    ERR_clear_error();
    /* one loud warning per accepted sim peer: each side verified exactly once */
    CHECK_EQ_INT(cap.warnings, o->client_has_peer + o->server_has_peer);
}

TEST(ratls_mutual_handshake_with_sim_evidence) {
    world w;
    node cl, sv;
    outcome o;
    size_t len;
    const uint8_t *ev, *spki;
    world_init(&w);
    node_init(&cl, &w, RATLS_KEY_ED25519, HONEST, 0, 0x11);
    node_init(&sv, &w, RATLS_KEY_ED25519, HONEST, 1, 0x22);
    run_pair(&cl, &sv, &o);
    CHECK(o.client_ok && o.server_ok && o.exchanged);
    CHECK(o.client_has_peer && o.server_has_peer);
    CHECK(memcmp(o.client_saw.e2e_key, sv.e2e, 32) == 0);
    CHECK(memcmp(o.server_saw.e2e_key, cl.e2e, 32) == 0);
    CHECK_EQ_INT(o.server_saw.tee, EVIDENCE_TEE_SIM);
    CHECK(memcmp(o.server_saw.measurement, w.measurement, 32) == 0);
    spki = ratls_identity_spki(cl.id, &len);
    CHECK(o.server_saw.spki_len == len && memcmp(o.server_saw.spki, spki, len) == 0);
    ev = ratls_identity_evidence(sv.id, &len);
    CHECK(o.client_saw.evidence_len == len && len == EVIDENCE_SIM_LEN &&
          memcmp(o.client_saw_evidence, ev, len) == 0);
    CHECK(o.hello_ok);
    CHECK(!o.hello_wrong_key);
    CHECK(!o.hello_wrong_evidence);
    CHECK_EQ_STR(o.client_failure, "");
    node_free(&cl);
    node_free(&sv);
    policy_free(&w.policy);
}

TEST(ratls_p256_certificate) {
    world w;
    node cl, sv;
    outcome o;
    size_t len;
    uint8_t *der;
    const unsigned char *p;
    X509 *x;
    world_init(&w);
    node_init(&cl, &w, RATLS_KEY_ED25519, HONEST, 0, 0x11);
    node_init(&sv, &w, RATLS_KEY_P256, HONEST, 1, 0x22);
    run_pair(&cl, &sv, &o);
    CHECK(o.client_ok && o.server_ok && o.exchanged);
    /* the certificate as others see it: P-256, one non-critical extension under our OID */
    der = ratls_identity_cert_der(sv.id, &len);
    p = der;
    x = der ? d2i_X509(NULL, &p, (long)len) : NULL;
    CHECK(x != NULL);
    if (x) {
        char oid[128];
        ASN1_OBJECT *obj = OBJ_txt2obj(RATLS_OID, 1);
        int idx = X509_get_ext_by_OBJ(x, obj, -1);
        X509_EXTENSION *ext = idx >= 0 ? X509_get_ext(x, idx) : NULL;
        CHECK(ext != NULL);
        if (ext) {
            OBJ_obj2txt(oid, sizeof oid, X509_EXTENSION_get_object(ext), 1);
            CHECK_EQ_STR(oid, RATLS_OID);
            CHECK_EQ_INT(X509_EXTENSION_get_critical(ext), 0);
        }
        CHECK(EVP_PKEY_is_a(X509_get0_pubkey(x), "EC"));
        ASN1_OBJECT_free(obj);
        X509_free(x);
    }
    free(der);
    ERR_clear_error();
    node_free(&cl);
    node_free(&sv);
    policy_free(&w.policy);
}

/* A server whose evidence is wrong in one way: the client refuses it. */
static void server_rejected(enum forgery how, attest_status want, const char *words) {
    world w;
    node cl, sv;
    outcome o;
    world_init(&w);
    node_init(&cl, &w, RATLS_KEY_ED25519, HONEST, 0, 0x11);
    node_init(&sv, &w, RATLS_KEY_P256, how, 1, 0x22);
    run_pair(&cl, &sv, &o);
    CHECK(!o.client_ok && !o.server_ok && !o.exchanged);
    CHECK(!o.client_has_peer);
    CHECK_EQ_INT(o.client_status, want);
    CHECK_MSG(strstr(o.client_failure, words) != NULL, "failure '%s' lacks '%s'", o.client_failure,
              words);
    node_free(&cl);
    node_free(&sv);
    policy_free(&w.policy);
}

/* A client whose evidence is wrong: its handshake completes (TLS 1.3), the server refuses it
 * and the client's first exchange fails. */
static void client_rejected(enum forgery how, attest_status want, const char *words) {
    world w;
    node cl, sv;
    outcome o;
    world_init(&w);
    node_init(&cl, &w, RATLS_KEY_ED25519, how, 0, 0x11);
    node_init(&sv, &w, RATLS_KEY_ED25519, HONEST, 1, 0x22);
    run_pair(&cl, &sv, &o);
    CHECK(!o.server_ok && !o.exchanged && !o.server_has_peer);
    CHECK_EQ_INT(o.server_status, want);
    CHECK_MSG(strstr(o.server_failure, words) != NULL, "failure '%s' lacks '%s'", o.server_failure,
              words);
    node_free(&cl);
    node_free(&sv);
    policy_free(&w.policy);
}

TEST(ratls_rejects_forged_evidence) {
    server_rejected(TAMPERED, ATTEST_ERR_SIGNATURE, "forged");
    client_rejected(TAMPERED, ATTEST_ERR_SIGNATURE, "forged");
}

TEST(ratls_rejects_unknown_measurement) {
    server_rejected(UNKNOWN_IMAGE, ATTEST_ERR_MEASUREMENT, "not among the 1 allowed");
    client_rejected(UNKNOWN_IMAGE, ATTEST_ERR_MEASUREMENT, "not among the 1 allowed");
}

TEST(ratls_rejects_evidence_for_another_key) {
    server_rejected(OTHER_KEY, ATTEST_ERR_REPORT_DATA, "bound to other keys");
    client_rejected(OTHER_KEY, ATTEST_ERR_REPORT_DATA, "bound to other keys");
}

TEST(ratls_rejects_untrusted_sim_key) {
    server_rejected(UNTRUSTED, ATTEST_ERR_UNTRUSTED_KEY, "does not trust");
    client_rejected(UNTRUSTED, ATTEST_ERR_UNTRUSTED_KEY, "does not trust");
}

TEST(ratls_rejects_stale_evidence) {
    server_rejected(STALE, ATTEST_ERR_STALE, "s ago");
    client_rejected(STALE, ATTEST_ERR_STALE, "s ago");
}

TEST(ratls_identity_from_provider) {
    world w;
    attest_provider *prov;
    ratls_identity *id;
    uint8_t e2e[32] = {1}, rd[32];
    size_t ev_len, spki_len;
    const uint8_t *ev, *spki;
    world_init(&w);
    prov = provider_sim_new(&w.platform, w.measurement);
    id = prov ? ratls_identity_new(RATLS_KEY_ED25519, e2e, prov, (uint64_t)time(NULL)) : NULL;
    CHECK(id != NULL);
    if (id) {
        log_capture cap;
        ev = ratls_identity_evidence(id, &ev_len);
        spki = ratls_identity_spki(id, &spki_len);
        CHECK_EQ_INT(spki_len, 44); /* Ed25519 SubjectPublicKeyInfo */
        evidence_bind(spki, spki_len, e2e, rd);
        capture_start(&cap);
        CHECK_EQ_INT(policy_verify(&w.policy, ev, ev_len, rd, (uint64_t)time(NULL), NULL),
                     ATTEST_OK);
        capture_stop(&cap);
    }
    ratls_identity_free(id);
    provider_free(prov);
    policy_free(&w.policy);
}

/* Renewal: the same TLS key (receipts and payouts stay valid), evidence issued later, and a
 * context made from it that completes a handshake. */
TEST(ratls_identity_renew_keeps_the_key) {
    world w;
    attest_provider *prov;
    node cl, sv = {{0}, NULL, NULL};
    outcome o;
    uint8_t e2e[32] = {2}, rd[32];
    uint64_t now = (uint64_t)time(NULL);
    size_t len0, len1, ev_len;
    const uint8_t *spki0, *spki1, *ev0, *ev1;
    ratls_identity *old;
    world_init(&w);
    prov = provider_sim_new(&w.platform, w.measurement);
    old = prov ? ratls_identity_new(RATLS_KEY_ED25519, e2e, prov, now) : NULL;
    sv.id = old ? ratls_identity_renew(old, e2e, prov, now + 1) : NULL;
    CHECK(old && sv.id);
    if (old && sv.id) {
        log_capture cap;
        spki0 = ratls_identity_spki(old, &len0);
        spki1 = ratls_identity_spki(sv.id, &len1);
        CHECK(len0 == len1 && memcmp(spki0, spki1, len0) == 0);
        ev0 = ratls_identity_evidence(old, &len0);
        ev1 = ratls_identity_evidence(sv.id, &ev_len);
        CHECK(len0 == ev_len && memcmp(ev0, ev1, ev_len) != 0);
        evidence_bind(spki1, len1, e2e, rd);
        capture_start(&cap);
        CHECK_EQ_INT(policy_verify(&w.policy, ev1, ev_len, rd, now + 1, NULL), ATTEST_OK);
        capture_stop(&cap);
        memcpy(sv.e2e, e2e, 32);
        sv.ctx = ratls_ctx_new(sv.id, &w.policy, 1);
        CHECK(sv.ctx != NULL);
        node_init(&cl, &w, RATLS_KEY_ED25519, HONEST, 0, 0x11);
        if (sv.ctx) {
            run_pair(&cl, &sv, &o);
            CHECK(o.client_ok && o.server_ok && o.exchanged);
            CHECK(o.client_saw.spki_len == len1 && memcmp(o.client_saw.spki, spki1, len1) == 0);
        }
        node_free(&cl);
    }
    node_free(&sv);
    ratls_identity_free(old);
    provider_free(prov);
    policy_free(&w.policy);
}

/* A plain TLS peer (certificate without evidence) and a client without any certificate. */
static SSL_CTX *plain_ctx(int is_server, int with_cert) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (with_cert) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        X509 *x = X509_new();
        X509_set_version(x, X509_VERSION_3);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"plain", -1, -1, 0);
        X509_set_issuer_name(x, X509_get_subject_name(x));
        X509_set_pubkey(x, k);
        X509_sign(x, k, NULL);
        SSL_CTX_use_certificate(ctx, x);
        SSL_CTX_use_PrivateKey(ctx, k);
        X509_free(x);
        EVP_PKEY_free(k);
    }
    (void)is_server;
    return ctx;
}

TEST(ratls_rejects_peers_without_evidence) {
    world w;
    node cl, sv, plain_server = {{0}, NULL, NULL}, plain_client = {{0}, NULL, NULL};
    outcome o;
    world_init(&w);
    node_init(&cl, &w, RATLS_KEY_ED25519, HONEST, 0, 0x11);
    node_init(&sv, &w, RATLS_KEY_ED25519, HONEST, 1, 0x22);
    plain_server.ctx = plain_ctx(1, 1);
    run_pair(&cl, &plain_server, &o);
    CHECK(!o.client_ok && !o.client_has_peer);
    CHECK(strstr(o.client_failure, "no attestation extension") != NULL);
    plain_client.ctx = plain_ctx(0, 0);
    run_pair(&plain_client, &sv, &o);
    CHECK(!o.server_ok && !o.exchanged && !o.server_has_peer);
    SSL_CTX_free(plain_client.ctx);
    plain_client.ctx = plain_ctx(0, 1);
    run_pair(&plain_client, &sv, &o);
    CHECK(!o.server_ok && !o.exchanged);
    CHECK(strstr(o.server_failure, "no attestation extension") != NULL);
    SSL_CTX_free(plain_client.ctx);
    SSL_CTX_free(plain_server.ctx);
    node_free(&cl);
    node_free(&sv);
    policy_free(&w.policy);
}

/* Workers sign receipts with their TLS key: what it signs verifies under the key that peers
 * read from the attested SubjectPublicKeyInfo; a P-256 identity has no such key. */
TEST(ratls_signing_key_matches_spki) {
    world w;
    attest_provider *prov;
    ratls_identity *ed = NULL, *ec = NULL;
    uint8_t e2e[32] = {2}, pub[32], hash[32] = {7}, sig[64];
    size_t spki_len;
    const uint8_t *spki;
    keypair k;
    world_init(&w);
    prov = provider_sim_new(&w.platform, w.measurement);
    if (prov) {
        ed = ratls_identity_new(RATLS_KEY_ED25519, e2e, prov, (uint64_t)time(NULL));
        ec = ratls_identity_new(RATLS_KEY_P256, e2e, prov, (uint64_t)time(NULL));
    }
    CHECK(ed != NULL && ec != NULL);
    if (ed && ec) {
        spki = ratls_identity_spki(ed, &spki_len);
        CHECK_EQ_INT(ratls_identity_signing_key(ed, &k), 0);
        CHECK_EQ_INT(ratls_spki_ed25519(spki, spki_len, pub), 0);
        CHECK(memcmp(pub, k.public_key, 32) == 0);
        CHECK_EQ_INT(keys_sign(&k, hash, sig), 0);
        CHECK(keys_verify(pub, hash, sig));
        keys_wipe(&k);
        CHECK_EQ_INT(ratls_identity_signing_key(ec, &k), -1);
        spki = ratls_identity_spki(ec, &spki_len);
        CHECK_EQ_INT(ratls_spki_ed25519(spki, spki_len, pub), -1);
        CHECK_EQ_INT(ratls_spki_ed25519(spki, 10, pub), -1); /* truncated */
    }
    ratls_identity_free(ed);
    ratls_identity_free(ec);
    provider_free(prov);
    policy_free(&w.policy);
}
