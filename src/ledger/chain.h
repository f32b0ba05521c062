/* The ledger as the rest of veil sees it: one interface, several backends. Today the backends
 * are the local ledger in this process (chain_local_open, over ledger.h) and a `veil chain
 * serve` node over HTTP (src/api/chain_client.h); a TON backend will implement the same
 * operations with contracts. Callers hold keys and values, never backend details:
 *
 *   - every operation that moves money builds a signed transaction (tx.h) for the key given,
 *     with the signer's current seqno, and returns once the ledger has it durably;
 *   - queries return plain values (account, channel, registry copy).
 *
 * Return values: STATE_OK, or a negative state_status (state.h) with err_msg(), so a caller
 * can tell a refusal by the rules (STATE_REJECTED, STATE_BAD_SEQNO...) from a broken request. */
#ifndef VEIL_CHAIN_H
#define VEIL_CHAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "ledger/channel.h"
#include "ledger/keys.h"
#include "ledger/registry.h"
#include "ledger/state.h"

typedef struct chain chain;

typedef struct chain_ack {
    uint8_t hash[32]; /* the transaction's cell hash */
    uint64_t height;  /* the block it is in */
    uint32_t index;
} chain_ack;

typedef struct chain_tip {
    uint64_t height, time;
    uint8_t hash[32];
} chain_tip;

/* What a backend provides. `found` of channel is false (and STATE_OK) for no such channel. */
typedef struct chain_backend {
    const char *name;
    int (*submit)(chain *c, const cell *signed_tx, chain_ack *ack);
    int (*account)(chain *c, const ton_addr *a, account *out);
    int (*channel)(chain *c, const ton_addr *a, channel *out, bool *found);
    int (*registry)(chain *c, registry *out); /* a copy the caller frees with registry_free */
    int (*tip)(chain *c, chain_tip *out);
    int (*find_tx)(chain *c, const uint8_t hash[32], chain_ack *out, bool *found); /* committed only */
    void (*close)(chain *c);
} chain_backend;

struct chain {
    const chain_backend *be;
};

/* A ledger file in this process: every submit is its own durable block. */
chain *chain_local_open(const char *path);
void chain_close(chain *c);

int chain_submit(chain *c, const cell *signed_tx, chain_ack *ack);
int chain_account(chain *c, const ton_addr *a, account *out);
int chain_channel(chain *c, const ton_addr *a, channel *out, bool *found);
int chain_registry(chain *c, registry *out);
int chain_tip_of(chain *c, chain_tip *out);
int chain_find_tx(chain *c, const uint8_t hash[32], chain_ack *out, bool *found);

/* Builds t's signature with k at k's current seqno and submits it (t's voucher is released). */
int chain_send(chain *c, tx *t, const keypair *k, chain_ack *ack);

/* The operations, each one transaction signed by k. */
int chain_mint(chain *c, const keypair *owner, const ton_addr *to, uint64_t amount, chain_ack *ack);
int chain_transfer(chain *c, const keypair *k, const ton_addr *to, uint64_t amount, chain_ack *ack);
/* Opens a channel from k to payee; *channel_out gets its address. */
int chain_open_channel(chain *c, const keypair *payer, channel_kind kind, const ton_addr *payee, uint64_t nonce,
                       uint64_t deposit, uint64_t stake, ton_addr *channel_out, chain_ack *ack);
int chain_topup(chain *c, const keypair *payer, const ton_addr *channel, uint64_t amount, chain_ack *ack);
/* The payee redeems a payer-signed voucher (a charge by a proxy, a payout by a worker). */
int chain_redeem(chain *c, const keypair *payee, const ton_addr *channel, cell *voucher, chain_ack *ack);
int chain_request_close(chain *c, const keypair *k, const ton_addr *channel, chain_ack *ack);
int chain_close_channel(chain *c, const keypair *k, const ton_addr *channel, chain_ack *ack);
int chain_withdraw(chain *c, const keypair *payer, const ton_addr *channel, chain_ack *ack);
int chain_set_params(chain *c, const keypair *owner, const registry_params *p, chain_ack *ack);
int chain_registry_set(chain *c, const keypair *owner, registry_list l, const uint8_t key[32], const char *endpoint,
                       chain_ack *ack);
int chain_registry_del(chain *c, const keypair *owner, registry_list l, const uint8_t key[32], chain_ack *ack);

/* A payer's cumulative voucher for a channel (kind says charge or payout). */
cell *chain_voucher(const keypair *payer, channel_kind kind, const ton_addr *channel, uint64_t total,
                    uint64_t query_id);

#endif
