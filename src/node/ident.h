/* A node's identity on the network: its end-to-end X25519 key, its attestation provider, its
 * RA-TLS certificate and TLS contexts, and the policy it verifies peers with. Every role
 * (worker, proxy, client gateway) makes one at start from the same flags (node_attest_config).
 *
 * Defaults, for a development network on one machine: the sim provider with the platform key
 * file given (made when missing), claiming the SHA-256 of the running executable; peers are
 * verified against the allowed-measurements and trusted-sim-keys files, or, without them,
 * against this node's own measurement and platform key (logged as such). */
#ifndef VEIL_IDENT_H
#define VEIL_IDENT_H

#include "attest/policy.h"
#include "attest/provider.h"
#include "net/conn.h"
#include "net/ratls.h"
#include "net/seal.h"

#include <stdbool.h>

struct event;
struct event_base;

typedef struct node_attest_config {
    const char *tee;                /* "sim" (default) or "tdx" */
    const char *sim_key;            /* sim platform key file; made when missing */
    const char *measurement;        /* sim claim, 64 hex digits; NULL: SHA-256 of the executable */
    const char *allow_measurements; /* file; NULL: our own measurement only */
    const char *trust_sim_keys;     /* file; NULL: our own platform key only (sim) */
    bool allow_unverified_tdx;
    uint32_t max_age_s;             /* evidence max age; 0: the default */
} node_attest_config;

/* The evidence is renewed (node_ident_renew) before peers would find it stale; the TLS key
 * (which signs receipts and receives payouts) and the E2E key stay. Listeners and dialers hold &as_server / &as_client, so
 * new connections take the current generation; started ones keep theirs (conn_self). */
typedef struct node_ident {
    seal_keypair e2e;
    attest_provider *prov;
    uint8_t role;
    ratls_identity *id;             /* the current generation, with the contexts below */
    attest_policy policy;
    uint8_t measurement[32];
    SSL_CTX *server_ctx, *client_ctx;
    conn_self as_server, as_client;
    uint64_t renewals;
    struct event *renew_timer;
    void (*on_renewed)(void *ud);
    void *renewed_ud;
} node_ident;

/* 0, or -1 with err_msg() naming the file or setting at fault. */
int node_ident_init(node_ident *n, uint8_t role, const node_attest_config *cfg);
/* Frees n; its renewal must have been stopped (node_ident_stop_renewal). */
void node_ident_free(node_ident *n);

/* A new generation: evidence issued now and a certificate carrying it, for new connections.
 * Logs "renewed the node identity". 0, or -1 with err_msg() (the current generation stays). */
int node_ident_renew(node_ident *n);
/* Renews every node_ident_renew_period() seconds (half the evidence max age) on base, then
 * calls on_renewed(ud) when not NULL (a worker re-registers with the fresh evidence). 0, or -1
 * with err_msg(). */
int node_ident_start_renewal(node_ident *n, struct event_base *base, void (*on_renewed)(void *ud),
                             void *ud);
double node_ident_renew_period(const node_ident *n);
/* Stops renewing; call before base is freed. */
void node_ident_stop_renewal(node_ident *n);

/* Verifies a worker announced by a proxy (worker_info): its evidence, bound to its TLS key
 * and E2E key, against this node's policy. 0, or -1 with err_msg(). */
int node_ident_check_worker(const node_ident *n, const uint8_t *tls_spki, size_t spki_len,
                            const uint8_t e2e_key[32], const uint8_t *evidence, size_t len);

#endif
