/* `veil devnet`'s ledger and demo wallets (see devnet_ledger.h). */
#include "node/devnet_ledger.h"

#include "api/chain_client.h"
#include "base/err.h"
#include "ledger/chain.h"
#include "ledger/keys.h"
#include "ledger/ledger.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static const char *const WALLETS[] = {"owner", "proxy", "client", "worker"};
static const char *const LEDGER_FILES[] = {"ledger.db",          "ledger.db-wal",          "ledger.db-shm",
                                           "proxy-accounts.db",  "proxy-accounts.db-wal",  "proxy-accounts.db-shm",
                                           "client-accounts.db", "client-accounts.db-wal", "client-accounts.db-shm"};

static void path_of(char *out, size_t cap, const char *dir, const char *name, const char *ext) {
    snprintf(out, cap, "%s/%s%s", dir, name, ext);
}

static int wallet(const char *dir, const char *name, keypair *k) {
    char path[4200];
    path_of(path, sizeof path, dir, name, ".key");
    if (access(path, F_OK) == 0) return keys_load(path, k);
    if (keys_generate(k) != 0 || keys_save(path, k) != 0) return -1;
    return 0;
}

int devnet_ledger_init(const char *dir) {
    char db[4200];
    keypair k;
    ledger *l;
    for (size_t i = 0; i < sizeof WALLETS / sizeof *WALLETS; i++) {
        if (wallet(dir, WALLETS[i], &k) != 0) return -1;
        keys_wipe(&k);
    }
    path_of(db, sizeof db, dir, "ledger", ".db");
    if (access(db, F_OK) == 0) return 0;
    if (wallet(dir, "owner", &k) != 0) return -1;
    l = ledger_create(db, k.public_key, (uint64_t)time(NULL));
    keys_wipe(&k);
    if (!l) return -1;
    ledger_close(l);
    return 0;
}

int devnet_ledger_fund(const char *dir, const char *url, const char *proxy_endpoint, ton_addr *channel) {
    keypair owner = {0}, proxy = {0}, client = {0};
    ton_addr proxy_addr, client_addr;
    chain_ack ack;
    chain *c = NULL;
    int rc = -1;
    if (wallet(dir, "owner", &owner) != 0 || wallet(dir, "proxy", &proxy) != 0 || wallet(dir, "client", &client) != 0 ||
        addr_of_wallet(proxy.public_key, &proxy_addr) != 0 || addr_of_wallet(client.public_key, &client_addr) != 0 ||
        !(c = chain_client_open(url)))
        goto done;
    /* a fresh nonce each run: a state directory kept across runs already holds older channels */
    if (chain_registry_set(c, &owner, REGISTRY_PROXY, proxy.public_key, proxy_endpoint, &ack) != 0 ||
        chain_mint(c, &owner, &client_addr, DEVNET_CLIENT_FUNDS, &ack) != 0 ||
        chain_mint(c, &owner, &proxy_addr, DEVNET_PROXY_FUNDS, &ack) != 0 ||
        chain_open_channel(c, &client, CHANNEL_CHARGE, &proxy_addr, (uint64_t)time(NULL), DEVNET_CLIENT_DEPOSIT,
                           DEVNET_CLIENT_STAKE, channel, &ack) != 0) {
        err_prefix("devnet: setting up the ledger");
        goto done;
    }
    rc = 0;
done:
    if (c) chain_close(c);
    keys_wipe(&owner);
    keys_wipe(&proxy);
    keys_wipe(&client);
    return rc;
}

void devnet_ledger_remove(const char *dir) {
    char path[4200];
    for (size_t i = 0; i < sizeof WALLETS / sizeof *WALLETS; i++) {
        path_of(path, sizeof path, dir, WALLETS[i], ".key");
        unlink(path);
    }
    for (size_t i = 0; i < sizeof LEDGER_FILES / sizeof *LEDGER_FILES; i++) {
        path_of(path, sizeof path, dir, LEDGER_FILES[i], "");
        unlink(path);
    }
}
