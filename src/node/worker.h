/* The worker role (`veil worker`): serves one model to the network through a proxy.
 *
 * It loads the model, opens its device (the CPU or a GPU: engine/device.h), starts the
 * scheduler, keeps an RA-TLS connection to its proxy (a dialer: reconnects with backoff) and
 * announces the model's name, the SHA-256 of its GGUF file, its capacity and price
 * (worker_register). Each request the proxy relays is opened with the worker's E2E key,
 * answered by the same generation code as `veil serve` (gen.h, streams held until the first
 * token so the proxy can fail over until then), and the answer is sealed back piece by piece
 * (seal.h). The final message carries the token counts the proxy meters. A cancel (or the proxy
 * connection dropping) cancels the generation, which frees its KV before the scheduler's next
 * step.
 *
 * SIGTERM/SIGINT: announce capacity 0 (draining), let running requests finish within the
 * drain timeout, then exit. */
#ifndef VEIL_WORKER_H
#define VEIL_WORKER_H

#include "engine/sched.h"
#include "node/ident.h"

#include <stdint.h>

typedef struct worker_config {
    const char *model_path;
    const char *model_name;      /* NULL: the GGUF's general.name */
    const char *chat_template;   /* NULL: detected */
    const char *proxy_host;
    uint16_t proxy_port;
    uint32_t capacity;           /* 0: the scheduler's max_running */
    uint32_t price;              /* coefficient, 1000 = 1.0x */
    double drain_timeout_s;
    const char *device;          /* engine/device.h spec: cpu, cuda, cuda:N; NULL: cpu */
    sched_config sched;          /* its device is the one opened from `device` */
    node_attest_config attest;
    const char *chain_url;       /* ledger node: redeem payouts (node/earner.h); NULL: unpaid */
    const char *wallet;          /* the payout key's file; NULL: the attested key */
    const char *accounts;        /* accounting file of payout vouchers (node/accounts.h); NULL: none */
    uint32_t redeem_every_s;     /* seconds between batched redemptions; 0: 2 */
} worker_config;

/* Runs until SIGTERM/SIGINT; 0, or -1 with err_msg(). Prints "ready: ..." on stdout the
 * first time the proxy accepts it. */
int worker_run(const worker_config *cfg);

#endif
