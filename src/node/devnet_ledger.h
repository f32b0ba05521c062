/* `veil devnet`'s payments: the ledger file with its owner, the demo wallets (owner, proxy,
 * client, and one the workers' earnings go to) as key files in the devnet's state directory,
 * and, once the ledger node and the proxy run, the registry entry for the proxy, the client's
 * and the proxy's funds and the client's charge channel. (The proxy opens a payout channel to
 * each worker itself, from its funds: node/payee.h.) */
#ifndef VEIL_DEVNET_LEDGER_H
#define VEIL_DEVNET_LEDGER_H

#include "ledger/addr.h"

#define DEVNET_CLIENT_FUNDS 10000000000ull  /* 10 coins minted to the demo client */
#define DEVNET_CLIENT_DEPOSIT 5000000000ull /* 5 of them in its charge channel */
#define DEVNET_CLIENT_STAKE 1000000000ull   /* and 1 as its stake */
#define DEVNET_PROXY_FUNDS 30000000000ull   /* 30 coins: payout channels of 3 coins each */

/* Makes DIR/{owner,proxy,client,worker}.key (kept if present) and DIR/ledger.db (kept if present). */
int devnet_ledger_init(const char *dir);
/* Through the node at url: registers the proxy (its client port's endpoint), mints the client's
 * funds and opens its channel to the proxy; *channel gets the channel's address. */
int devnet_ledger_fund(const char *dir, const char *url, const char *proxy_endpoint, ton_addr *channel);
/* Removes what devnet_ledger_init made (a temporary state directory's). */
void devnet_ledger_remove(const char *dir);

#endif
