/* RA-TLS certificates and the attestation check in the TLS handshake; see ratls.h. */
#include "net/ratls.h"

#include "base/err.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ratls_identity {
    ratls_key_type type;
    EVP_PKEY *key;
    X509 *cert;
    uint8_t *evidence;
    size_t evidence_len;
    uint8_t spki[RATLS_SPKI_MAX];
    size_t spki_len;
};

/* What the verify callback learnt about one SSL's peer (SSL ex_data, freed with the SSL). */
typedef struct ratls_state {
    int verified;
    ratls_peer peer;
    uint8_t *evidence;
    attest_status status;
    char failure[768];
} ratls_state;

/* Set once, read-only afterwards: the SSL ex_data slot and the extension's OID. */
static pthread_once_t ratls_once = PTHREAD_ONCE_INIT;
static int ratls_state_idx = -1;
static ASN1_OBJECT *ratls_oid;

static void free_state(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                       void *argp) {
    ratls_state *st = ptr;
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (st) free(st->evidence);
    free(st);
}

static void ratls_init(void) {
    ratls_state_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_state);
    ratls_oid = OBJ_txt2obj(RATLS_OID, 1);
}

static int ratls_ready(void) {
    pthread_once(&ratls_once, ratls_init);
    if (ratls_state_idx < 0 || !ratls_oid) return err_set("RA-TLS: OpenSSL initialisation failed");
    return 0;
}

/* err_set with OpenSSL's last error appended; clears OpenSSL's queue. */
static int ssl_fail(const char *what) {
    char buf[256] = "no OpenSSL error";
    unsigned long e = ERR_peek_last_error();
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return err_set("RA-TLS: %s: %s", what, buf);
}

/* ---- identity ---- */

static EVP_PKEY *make_key(ratls_key_type type) {
    EVP_PKEY *k = type == RATLS_KEY_P256 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                                         : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!k) ssl_fail("key generation");
    return k;
}

static int spki_of(EVP_PKEY *key, uint8_t out[RATLS_SPKI_MAX], size_t *len) {
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    if (n <= 0) return ssl_fail("encode public key");
    if ((size_t)n > RATLS_SPKI_MAX) {
        OPENSSL_free(der);
        return err_set("RA-TLS: public key of %d bytes (at most %d)", n, RATLS_SPKI_MAX);
    }
    memcpy(out, der, (size_t)n);
    *len = (size_t)n;
    OPENSSL_free(der);
    return 0;
}

/* The extension: an OCTET STRING (DER) wrapping the claims. */
static X509_EXTENSION *make_extension(const uint8_t e2e_key[32], const uint8_t *ev, size_t n) {
    ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *outer = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    unsigned char *claims = malloc(1 + 32 + n), *der = NULL;
    int der_len;
    if (!inner || !outer || !claims) {
        err_set("RA-TLS: out of memory");
        goto out;
    }
    claims[0] = RATLS_CLAIMS_VERSION;
    memcpy(claims + 1, e2e_key, 32);
    memcpy(claims + 33, ev, n);
    if (!ASN1_OCTET_STRING_set(inner, claims, (int)(33 + n)) ||
        (der_len = i2d_ASN1_OCTET_STRING(inner, &der)) <= 0 ||
        !ASN1_OCTET_STRING_set(outer, der, der_len) ||
        !(ext = X509_EXTENSION_create_by_OBJ(NULL, ratls_oid, 0, outer)))
        ssl_fail("build the attestation extension");
out:
    OPENSSL_free(der);
    free(claims);
    ASN1_OCTET_STRING_free(inner);
    ASN1_OCTET_STRING_free(outer);
    return ext;
}

static X509 *make_cert(EVP_PKEY *key, ratls_key_type type, X509_EXTENSION *ext, uint64_t now) {
    X509 *x = X509_new();
    X509_NAME *name;
    uint64_t serial;
    if (!x) goto fail;
    if (RAND_bytes((unsigned char *)&serial, sizeof serial) != 1) goto fail;
    name = X509_get_subject_name(x);
    /* validity is not what makes the certificate good (the evidence's age is), but clients
     * that look at it should see a sane window */
    if (!X509_set_version(x, X509_VERSION_3) ||
        !ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1) ||
        !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)now - 60) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)now + 7 * 86400) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"veil node",
                                    -1, -1, 0) ||
        !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key) || !X509_add_ext(x, ext, -1) ||
        X509_sign(x, key, type == RATLS_KEY_P256 ? EVP_sha256() : NULL) <= 0)
        goto fail;
    return x;
fail:
    ssl_fail("make the certificate");
    X509_free(x);
    return NULL;
}

/* An identity for key (a new reference is taken; NULL: a fresh key of type). */
static ratls_identity *identity_make(ratls_key_type type, EVP_PKEY *key, const uint8_t e2e_key[32],
                                     ratls_evidence_fn make, void *ctx, uint64_t now) {
    ratls_identity *id;
    X509_EXTENSION *ext = NULL;
    uint8_t rd[32];
    if (ratls_ready() != 0) return NULL;
    id = calloc(1, sizeof *id);
    if (!id) {
        err_set("RA-TLS: out of memory");
        return NULL;
    }
    id->type = type;
    if (key && EVP_PKEY_up_ref(key) == 1) id->key = key;
    else if (key) ssl_fail("key reference");
    else id->key = make_key(type);
    if (!id->key) goto fail;
    if (spki_of(id->key, id->spki, &id->spki_len) != 0) goto fail;
    evidence_bind(id->spki, id->spki_len, e2e_key, rd);
    if (!(id->evidence = make(ctx, id->spki, id->spki_len, rd, &id->evidence_len))) goto fail;
    if (!(ext = make_extension(e2e_key, id->evidence, id->evidence_len))) goto fail;
    if (!(id->cert = make_cert(id->key, type, ext, now))) goto fail;
    X509_EXTENSION_free(ext);
    return id;
fail:
    X509_EXTENSION_free(ext);
    ratls_identity_free(id);
    return NULL;
}

ratls_identity *ratls_identity_new_with(ratls_key_type type, const uint8_t e2e_key[32],
                                        ratls_evidence_fn make, void *ctx, uint64_t now) {
    return identity_make(type, NULL, e2e_key, make, ctx, now);
}

struct provider_call {
    attest_provider *prov;
    uint64_t now;
};

static uint8_t *evidence_from_provider(void *ctx, const uint8_t *spki, size_t spki_len,
                                       const uint8_t report_data[32], size_t *len) {
    struct provider_call *c = ctx;
    (void)spki, (void)spki_len;
    return provider_evidence(c->prov, report_data, c->now, len);
}

ratls_identity *ratls_identity_new(ratls_key_type type, const uint8_t e2e_key[32],
                                   attest_provider *prov, uint64_t now) {
    struct provider_call c = {prov, now};
    return ratls_identity_new_with(type, e2e_key, evidence_from_provider, &c, now);
}

ratls_identity *ratls_identity_renew(const ratls_identity *old, const uint8_t e2e_key[32],
                                     attest_provider *prov, uint64_t now) {
    struct provider_call c = {prov, now};
    return identity_make(old->type, old->key, e2e_key, evidence_from_provider, &c, now);
}

void ratls_identity_free(ratls_identity *id) {
    if (!id) return;
    EVP_PKEY_free(id->key);
    X509_free(id->cert);
    free(id->evidence);
    free(id);
}

const uint8_t *ratls_identity_evidence(const ratls_identity *id, size_t *len) {
    *len = id->evidence_len;
    return id->evidence;
}

const uint8_t *ratls_identity_spki(const ratls_identity *id, size_t *len) {
    *len = id->spki_len;
    return id->spki;
}

int ratls_identity_signing_key(const ratls_identity *id, keypair *out) {
    uint8_t seed[32];
    size_t n = sizeof seed;
    int rc;
    if (!EVP_PKEY_is_a(id->key, "ED25519") || EVP_PKEY_get_raw_private_key(id->key, seed, &n) != 1 || n != 32)
        return err_set("ratls: the identity's TLS key is not an Ed25519 key");
    rc = keys_from_seed(seed, out);
    OPENSSL_cleanse(seed, sizeof seed);
    return rc;
}

int ratls_spki_ed25519(const uint8_t *spki, size_t len, uint8_t out[32]) {
    const unsigned char *p = spki;
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
    size_t n = 32;
    int rc = 0;
    if (!k || p != spki + len || !EVP_PKEY_is_a(k, "ED25519") || EVP_PKEY_get_raw_public_key(k, out, &n) != 1 ||
        n != 32)
        rc = err_set("ratls: the TLS key (%zu bytes of SubjectPublicKeyInfo) is not an Ed25519 key", len);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return rc;
}

uint8_t *ratls_identity_cert_der(const ratls_identity *id, size_t *len) {
    unsigned char *der = NULL;
    uint8_t *out;
    int n = i2d_X509(id->cert, &der);
    if (n <= 0) {
        ssl_fail("encode the certificate");
        return NULL;
    }
    out = malloc((size_t)n);
    if (out) memcpy(out, der, (size_t)n);
    else err_set("RA-TLS: out of memory");
    OPENSSL_free(der);
    *len = (size_t)n;
    return out;
}

/* ---- verification ---- */

static ratls_state *state_of(const SSL *ssl) {
    return ratls_state_idx < 0 ? NULL : SSL_get_ex_data(ssl, ratls_state_idx);
}

/* The claims inside the certificate's attestation extension (a view into the certificate). */
static int cert_claims(X509 *cert, const uint8_t **claims, size_t *len) {
    int idx = X509_get_ext_by_OBJ(cert, ratls_oid, -1);
    const ASN1_OCTET_STRING *outer;
    const unsigned char *p;
    ASN1_OCTET_STRING *inner;
    long outer_len;
    if (idx < 0) return err_set("certificate has no attestation extension (%s)", RATLS_OID);
    if (X509_get_ext_by_OBJ(cert, ratls_oid, idx) >= 0)
        return err_set("certificate has two attestation extensions");
    outer = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
    p = ASN1_STRING_get0_data(outer);
    outer_len = ASN1_STRING_length(outer);
    inner = d2i_ASN1_OCTET_STRING(NULL, &p, outer_len);
    if (!inner || p != ASN1_STRING_get0_data(outer) + outer_len) {
        ASN1_OCTET_STRING_free(inner);
        ERR_clear_error();
        return err_set("attestation extension is not one DER OCTET STRING");
    }
    /* in DER the inner string's bytes end outer, so a view into the certificate stays valid;
     * a BER form (constructed, split in pieces) would not match and is refused */
    *len = (size_t)ASN1_STRING_length(inner);
    *claims = ASN1_STRING_get0_data(outer) + (outer_len - (long)*len);
    if (memcmp(*claims, ASN1_STRING_get0_data(inner), *len) != 0) {
        ASN1_OCTET_STRING_free(inner);
        return err_set("attestation extension is not DER");
    }
    ASN1_OCTET_STRING_free(inner);
    return 0;
}

static int check_key_type(EVP_PKEY *key) {
    if (EVP_PKEY_is_a(key, "ED25519")) return 0;
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[32];
        size_t n;
        if (EVP_PKEY_get_group_name(key, group, sizeof group, &n) == 1 &&
            strcmp(group, "prime256v1") == 0)
            return 0;
    }
    ERR_clear_error();
    return err_set("certificate key is %s; RA-TLS takes Ed25519 or P-256",
                   EVP_PKEY_get0_type_name(key));
}

/* Checks the peer certificate; fills st. */
static int verify_peer(X509 *cert, const attest_policy *policy, ratls_state *st) {
    EVP_PKEY *key = X509_get0_pubkey(cert);
    const uint8_t *claims = NULL;
    size_t claims_len = 0;
    uint8_t rd[32];
    evidence ev;
    st->status = ATTEST_OK;
    if (!key) return err_set("certificate without a usable public key");
    if (check_key_type(key) != 0) return -1;
    if (X509_get_extension_flags(cert) & EXFLAG_CRITICAL)
        return err_set("certificate has a critical extension RA-TLS does not know");
    if (X509_verify(cert, key) != 1) {
        ERR_clear_error();
        return err_set("certificate is not signed by its own key");
    }
    if (spki_of(key, st->peer.spki, &st->peer.spki_len) != 0) return -1;
    if (cert_claims(cert, &claims, &claims_len) != 0) return -1;
    if (claims_len < 33 || claims[0] != RATLS_CLAIMS_VERSION)
        return err_set("attestation extension: claims version %d or length %zu unknown",
                       claims_len ? claims[0] : -1, claims_len);
    memcpy(st->peer.e2e_key, claims + 1, 32);
    evidence_bind(st->peer.spki, st->peer.spki_len, st->peer.e2e_key, rd);
    st->status = policy_verify(policy, claims + 33, claims_len - 33, rd, (uint64_t)time(NULL),
                               &ev);
    if (st->status != ATTEST_OK) return -1;
    st->evidence = malloc(claims_len - 33);
    if (!st->evidence) return err_set("RA-TLS: out of memory");
    memcpy(st->evidence, claims + 33, claims_len - 33);
    st->peer.evidence = st->evidence;
    st->peer.evidence_len = claims_len - 33;
    st->peer.tee = ev.tee;
    memcpy(st->peer.measurement, ev.measurement, 32);
    st->peer.issued_at = ev.issued_at;
    return 0;
}

static int verify_callback(X509_STORE_CTX *xctx, void *arg) {
    SSL *ssl = X509_STORE_CTX_get_ex_data(xctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    X509 *cert = X509_STORE_CTX_get0_cert(xctx);
    ratls_state *st;
    if (!ssl || !cert) return 0;
    st = state_of(ssl);
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st || !SSL_set_ex_data(ssl, ratls_state_idx, st)) {
            free(st);
            return 0;
        }
    }
    free(st->evidence);
    memset(st, 0, sizeof *st);
    if (verify_peer(cert, arg, st) == 0) {
        st->verified = 1;
        return 1;
    }
    snprintf(st->failure, sizeof st->failure, "peer rejected: %s", err_msg());
    X509_STORE_CTX_set_error(xctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

SSL_CTX *ratls_ctx_new(const ratls_identity *id, const attest_policy *policy, int is_server) {
    SSL_CTX *ctx;
    if (ratls_ready() != 0) return NULL;
    ctx = SSL_CTX_new(TLS_method());
    if (!ctx) {
        ssl_fail("SSL_CTX_new");
        return NULL;
    }
    /* no resumption: every connection proves its attestation afresh */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_num_tickets(ctx, 0) || SSL_CTX_use_certificate(ctx, id->cert) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, id->key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ssl_fail("configure the TLS context");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (is_server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       NULL);
    SSL_CTX_set_cert_verify_callback(ctx, verify_callback, (void *)policy);
    return ctx;
}

const ratls_peer *ratls_peer_of(const SSL *ssl) {
    const ratls_state *st = state_of(ssl);
    return st && st->verified ? &st->peer : NULL;
}

const char *ratls_failure(const SSL *ssl) {
    const ratls_state *st = state_of(ssl);
    return st && !st->verified && st->failure[0] ? st->failure : NULL;
}

attest_status ratls_failure_status(const SSL *ssl) {
    const ratls_state *st = state_of(ssl);
    return st && !st->verified ? st->status : ATTEST_OK;
}

int ratls_check_hello(const SSL *ssl, const uint8_t e2e_key[32], const uint8_t *evidence,
                      size_t evidence_len) {
    const ratls_peer *peer = ratls_peer_of(ssl);
    if (!peer) return err_set("hello from a peer whose attestation was not verified");
    if (memcmp(peer->e2e_key, e2e_key, 32) != 0)
        return err_set("hello announces an E2E key other than the one its evidence binds");
    if (evidence_len &&
        (evidence_len != peer->evidence_len || memcmp(evidence, peer->evidence, evidence_len)))
        return err_set("hello carries evidence other than its certificate's");
    return 0;
}
