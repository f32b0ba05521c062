/* The registry: the network's rules that everyone reads from the ledger (DESIGN.md
 * "Payments", COCOON's root contract): which worker and proxy images (measurements) and which
 * models are allowed, which proxies exist and where, the prices per token class, the worker's
 * fee, minimum stakes and close delays. Only transactions signed by the registry owner change
 * it (state.c checks the signer; this file checks the values).
 *
 * Prices are nano-units per *adjusted* token; a multiplier is in basis points (10000 = 1.0x),
 * and a class's adjusted tokens are floor(tokens x multiplier / 10000), as COCOON adjusts
 * them. The client pays adjusted x price_per_token, the worker earns adjusted x
 * worker_fee_per_token, and the proxy keeps the difference (so the fee may not exceed the
 * price). Every product goes through amount.h: an overflow is an error, never a wrapped bill. */
#ifndef VEIL_REGISTRY_H
#define VEIL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger/addr.h"

#define REGISTRY_MULT_ONE 10000u        /* basis points: 1.0x */
#define REGISTRY_MULT_MAX 1000000u      /* 100x: a larger multiplier is a typo, not a price */
#define REGISTRY_DELAY_MAX (366u * 86400u) /* a close delay above a year would lock funds for good */
#define REGISTRY_MAX_ENTRIES 1024       /* per list: the registry is read whole by every node */
#define REGISTRY_ENDPOINT_MAX 120       /* bytes of a proxy's "host:port" text */

typedef struct registry_params {
    uint64_t price_per_token;      /* nano-units the client pays per adjusted token */
    uint64_t worker_fee_per_token; /* nano-units the worker earns per adjusted token (<= price) */
    uint32_t mult_prompt, mult_cached, mult_completion; /* basis points */
    uint64_t min_client_stake;     /* stake of a client -> proxy channel */
    uint64_t min_proxy_stake;      /* stake of a proxy -> worker channel */
    uint32_t client_close_delay;   /* seconds a client channel stays closing before it closes */
    uint32_t proxy_close_delay;    /* the same for a proxy -> worker channel */
} registry_params;

/* The lists of the registry. Each entry is a 32-byte key; proxies also carry an endpoint. */
typedef enum registry_list {
    REGISTRY_WORKER_MEASUREMENT = 1,
    REGISTRY_PROXY_MEASUREMENT = 2,
    REGISTRY_MODEL = 3,
    REGISTRY_PROXY = 4, /* key: the proxy's Ed25519 public key */
} registry_list;

#define REGISTRY_NLISTS 4

typedef struct registry_entry {
    uint8_t key[32];
    ton_addr addr;                            /* proxies: the key's wallet address */
    char endpoint[REGISTRY_ENDPOINT_MAX + 1]; /* proxies: "host:port" */
} registry_entry;

typedef struct registry {
    uint8_t owner[32]; /* Ed25519 public key that signs registry changes */
    registry_params params;
    registry_entry *lists[REGISTRY_NLISTS];
    size_t counts[REGISTRY_NLISTS];
} registry;

/* The parameters a new ledger starts with (COCOON's test values scaled to whole coins). */
registry_params registry_default_params(void);
void registry_init(registry *r, const uint8_t owner[32]);
void registry_free(registry *r);
/* A deep copy (dst must not hold lists). */
int registry_copy(registry *dst, const registry *src);

/* Rejects parameters that break the rules above (fee > price, multipliers or delays out of
 * range), naming the field. */
int registry_check_params(const registry_params *p);
const char *registry_list_name(registry_list l);
/* Parses "worker", "proxy-image", "model", "proxy"; -1 with err_msg() otherwise. */
int registry_list_parse(const char *s, registry_list *out);

/* Adds or replaces an entry (endpoint: proxies only, NULL otherwise). */
int registry_set(registry *r, registry_list l, const uint8_t key[32], const char *endpoint);
int registry_del(registry *r, registry_list l, const uint8_t key[32]);
const registry_entry *registry_find(const registry *r, registry_list l, const uint8_t key[32]);
/* The registered proxy whose wallet address is a, or NULL. */
const registry_entry *registry_find_proxy_addr(const registry *r, const ton_addr *a);

/* What a request costs at these prices: the client's charge and the worker's fee, from a
 * receipt's token counts (cached <= prompt). -1 with err_msg() on overflow. */
int registry_price(const registry_params *p, uint64_t prompt, uint64_t cached, uint64_t completion,
                   uint64_t *client_cost, uint64_t *worker_fee);

#endif
