/* RA-TLS: mutual TLS 1.3 where each side's certificate carries attestation evidence.
 *
 * A node makes a fresh TLS key (Ed25519 between nodes; P-256 where a browser may connect,
 * since browsers refuse Ed25519 server certificates) and a self-signed X.509 certificate with
 * one extra, non-critical extension:
 *
 *   OID RATLS_OID (2.25.251300455663033844467287959202807656019.1: veil's UUID arc, .1)
 *   extnValue = DER OCTET STRING of the claims:
 *     u8 claims version (1) | E2E public key[32] | serialized evidence (evidence.h), to the end
 *
 * The evidence's report_data is SHA-256(the certificate's SubjectPublicKeyInfo DER ‖ the
 * E2E key), so it vouches for both keys at once. The verify callback runs once per handshake
 * (sessions are never resumed, so no handshake skips it): it takes the peer certificate's
 * key and extension, recomputes report_data and checks the evidence against the policy
 * (policy.h). The certificate's own dates and issuer mean nothing here; freshness comes from
 * the evidence. After the handshake, ratls_peer_of() says whom we talk to, and
 * ratls_check_hello() ties the E2E key the peer announces in its hello to the attested one.
 *
 * In TLS 1.3 the client finishes its handshake before the server has checked the client's
 * certificate; a client the server rejects learns it on its first read. */
#ifndef VEIL_RATLS_H
#define VEIL_RATLS_H

#include "attest/evidence.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "ledger/keys.h"

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#define RATLS_OID "2.25.251300455663033844467287959202807656019.1"
#define RATLS_CLAIMS_VERSION 1
#define RATLS_SPKI_MAX 512

typedef enum ratls_key_type { RATLS_KEY_ED25519, RATLS_KEY_P256 } ratls_key_type;

typedef struct ratls_identity ratls_identity;

/* Makes the evidence for a new key: spki is the key's SubjectPublicKeyInfo DER and
 * report_data its binding with the E2E key. Returns malloc'd serialized evidence, or NULL with
 * err_msg(). */
typedef uint8_t *(*ratls_evidence_fn)(void *ctx, const uint8_t *spki, size_t spki_len,
                                      const uint8_t report_data[32], size_t *len);

/* A fresh key, evidence from prov issued at now (unix seconds), and the certificate. */
ratls_identity *ratls_identity_new(ratls_key_type type, const uint8_t e2e_key[32],
                                   attest_provider *prov, uint64_t now);
/* The same with evidence from any maker (tests use it to forge). */
ratls_identity *ratls_identity_new_with(ratls_key_type type, const uint8_t e2e_key[32],
                                        ratls_evidence_fn make, void *ctx, uint64_t now);
/* The same key as old, with fresh evidence from prov issued at now and a new certificate: a
 * node renews its evidence before peers find it stale while keeping the key that signs its
 * receipts and receives its payouts. NULL with err_msg(). */
ratls_identity *ratls_identity_renew(const ratls_identity *old, const uint8_t e2e_key[32],
                                     attest_provider *prov, uint64_t now);
void ratls_identity_free(ratls_identity *id);
/* The identity's evidence and TLS key (DER SubjectPublicKeyInfo), e.g. for hello and
 * worker_info. Valid while id is. */
const uint8_t *ratls_identity_evidence(const ratls_identity *id, size_t *len);
const uint8_t *ratls_identity_spki(const ratls_identity *id, size_t *len);
/* The identity's Ed25519 TLS key as a signing key pair (workers sign receipts with it, so the
 * receipt's signer is the attested key). -1 with err_msg() for a P-256 identity. */
int ratls_identity_signing_key(const ratls_identity *id, keypair *out);
/* The raw Ed25519 public key in a SubjectPublicKeyInfo DER; -1 with err_msg() for another
 * kind of key or a malformed one. */
int ratls_spki_ed25519(const uint8_t *spki, size_t len, uint8_t out[32]);
/* The certificate as DER (malloc'd), e.g. to inspect it with `openssl x509 -inform der`. */
uint8_t *ratls_identity_cert_der(const ratls_identity *id, size_t *len);

/* An SSL_CTX for mutual TLS 1.3 presenting id and verifying peers with policy. The context
 * keeps its own references to id's key and certificate (id may be freed); policy must outlive
 * it. A node renews its identity by making a new context for new connections. */
SSL_CTX *ratls_ctx_new(const ratls_identity *id, const attest_policy *policy, int is_server);

/* The attested peer after a successful verification, or NULL. */
typedef struct ratls_peer {
    uint8_t e2e_key[32];
    uint8_t tee;               /* evidence_tee */
    uint8_t measurement[32];
    uint64_t issued_at;
    uint8_t spki[RATLS_SPKI_MAX];
    size_t spki_len;
    const uint8_t *evidence;   /* the peer's serialized evidence, valid while the SSL is */
    size_t evidence_len;
} ratls_peer;

const ratls_peer *ratls_peer_of(const SSL *ssl);
/* Why the peer was rejected (NULL if it was not), and the attestation status (ATTEST_OK when
 * the rejection was not about evidence, e.g. a certificate without the extension). */
const char *ratls_failure(const SSL *ssl);
attest_status ratls_failure_status(const SSL *ssl);

/* 0 when a hello's E2E key is the attested one and its evidence (if any) is the
 * certificate's; -1 with err_msg() otherwise, or when the peer was not verified. */
int ratls_check_hello(const SSL *ssl, const uint8_t e2e_key[32], const uint8_t *evidence,
                      size_t evidence_len);

#endif
