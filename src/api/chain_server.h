/* The ledger node's HTTP JSON API (`veil chain serve`, docs/PAYMENTS.md "Node API"), on
 * evhttp, over a local ledger (ledger/ledger.h):
 *
 *   POST /v1/tx                {"boc": HEX}  -> {"hash","height","index"} once durable
 *   GET  /v1/tx/HASH           where a committed transaction is
 *   GET  /v1/account/ADDR      {"address","raw","balance","seqno"}
 *   GET  /v1/channel/ADDR      the channel's fields
 *   GET  /v1/registry          owner, params, lists
 *   GET  /v1/status            the last block, pending transactions, supply
 *
 * Amounts are JSON strings of decimal nano-units (a JSON number loses precision past 2^53).
 * Errors are {"error":{"message","type","param","code"}} with 400 (malformed), 401 (bad
 * signature), 403 (forbidden), 404, 409 (seqno or rules), 413, 503 (the store failed).
 *
 * Group commit: a submitted transaction is applied at once and joins the pending block; the
 * block is committed (one fsync) from the event loop after the requests read in the same loop
 * pass, and only then is each of its transactions answered. */
#ifndef VEIL_CHAIN_SERVER_H
#define VEIL_CHAIN_SERVER_H

#include <stdint.h>

#include "ledger/ledger.h"

typedef struct chain_server chain_server;

/* Listens on host:port (port 0 picks one) serving l, which the server then uses alone. */
chain_server *chain_server_new(ledger *l, const char *host, uint16_t port);
uint16_t chain_server_port(const chain_server *s);
/* Runs until SIGTERM or SIGINT, then commits what is pending and returns. */
int chain_server_run(chain_server *s);
void chain_server_free(chain_server *s);

#endif
