/* The client gateway role (`veil client`): the OpenAI API on a local port (the same HTTP
 * front as `veil serve`, server.h), answered by the network.
 *
 * It keeps an RA-TLS connection to a proxy (a dialer: reconnects with backoff) and learns
 * from it which workers serve which model (worker_info). It verifies each worker's evidence
 * itself against its own policy, so the proxy is not trusted with keys. For each request it
 * validates the body (oai_request.h: bad requests never leave the machine), seals it to up to
 * PROTO_RECIPIENTS_MAX attested workers of the model within its max price (seal.h), and
 * writes the sealed answer it gets back to the HTTP client as the worker wrote it. An HTTP
 * client that leaves cancels its request along the network; a failure is an OpenAI error
 * body (before the answer started) or an SSE error event and [DONE] (after). */
#ifndef VEIL_CLIENT_H
#define VEIL_CLIENT_H

#include "node/ident.h"

#include <stddef.h>
#include <stdint.h>

typedef struct client_config {
    const char *proxy_host;
    uint16_t proxy_port;
    const char *listen_host;
    uint16_t listen_port;          /* 0: any free port */
    uint32_t max_price;            /* highest worker price coefficient accepted */
    int wait_workers;              /* print ready once this many attested workers are live */
    size_t max_body;
    double heartbeat_s, drain_timeout_s;
    int io_timeout_s;
    uint32_t timeout_ms;           /* each request's timeout_ms (PROTOCOL.md "request"); 0: none */
    node_attest_config attest;
    /* Payments: all three, or none (payments off, default registry prices). */
    const char *chain_url;         /* the ledger node, http://HOST:PORT */
    const char *wallet;            /* the client's key file: signs charge vouchers */
    const char *channel;           /* the client's charge channel to the proxy */
    const char *accounts;          /* NULL, or the file of signed totals (needs the three) */
} client_config;

/* Runs until SIGTERM/SIGINT; 0, or -1 with err_msg(). Prints "ready: http://HOST:PORT" on
 * stdout once it listens and knows wait_workers live workers. */
int client_run(const client_config *cfg);

#endif
