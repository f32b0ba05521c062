/* The proxy role (`veil proxy`): accepts workers on one port and client gateways on
 * another, routes each request to a worker, relays the sealed answer back, and meters.
 *
 * It never holds a key that opens a prompt: requests arrive sealed to workers (seal.h) and
 * the proxy sees only the model, sizes and token counts, which is all it logs.
 *
 *   - Workers: RA-TLS verified at the handshake; a worker_register whose model SHA-256 is
 *     not in the allowed list (when one is configured) closes the connection with code 4.
 *     Clients learn every live worker (worker_info, with its evidence) and are told when one
 *     goes.
 *   - Routing: among the request's recipients that serve its model within its max price and
 *     have free capacity, the lowest of ewma_ttft x (1 + active/capacity) / success_rate.
 *   - Failover: a worker that fails (error, or its connection drops) before the first chunk
 *     was relayed is replaced by the next best recipient, invisibly to the client; after the
 *     first chunk the client gets error 103 (stream broken).
 *   - Cancel: a client's cancel, or its connection dropping, is passed to the worker.
 *   - Payments (with a ledger): each relayed receipt raises what its client may be charged;
 *     the client's charge vouchers are checked and kept, and the latest is redeemed every
 *     redeem_every_s seconds and when the client leaves (node/payee.h).
 *
 * SIGTERM/SIGINT: close every connection (error 5, shutting down) and exit. */
#ifndef VEIL_PROXY_H
#define VEIL_PROXY_H

#include "node/ident.h"

#include <stdint.h>

typedef struct proxy_config {
    const char *workers_host, *clients_host;
    uint16_t workers_port, clients_port;  /* 0: any free port */
    const char *allow_models;             /* file of allowed GGUF SHA-256s; NULL: any model */
    const char *dump_frames;              /* debugging: append every frame's bytes to this file */
    node_attest_config attest;
    /* Payments: the ledger node and the proxy's key file, both or neither (off). */
    const char *chain_url;
    const char *wallet;
    const char *accounts;                 /* the proxy's accounting file (node/accounts.h) */
    uint32_t redeem_every_s;              /* seconds between batched redemptions */
} proxy_config;

/* Runs until SIGTERM/SIGINT; 0, or -1 with err_msg(). Prints
 * "ready: workers HOST:PORT clients HOST:PORT" on stdout once both ports listen. */
int proxy_run(const proxy_config *cfg);

#endif
