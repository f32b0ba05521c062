/* The chain.h backend over a `veil chain serve` node's HTTP JSON API (chain_server.h), with a
 * small blocking HTTP/1.1 client (one connection per call, loopback in practice): what a CLI
 * command, a proxy or a client gateway uses to reach the ledger node. */
#ifndef VEIL_CHAIN_CLIENT_H
#define VEIL_CHAIN_CLIENT_H

#include "ledger/chain.h"

/* url: http://HOST:PORT (the node's ready line). Connects lazily. */
chain *chain_client_open(const char *url);

#endif
