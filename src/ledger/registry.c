/* The registry's values and prices; see registry.h. */
#include "ledger/registry.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "ledger/amount.h"

#define COIN 1000000000ull

registry_params registry_default_params(void) {
    return (registry_params){
        .price_per_token = 20,
        .worker_fee_per_token = 19,
        .mult_prompt = REGISTRY_MULT_ONE,
        .mult_cached = REGISTRY_MULT_ONE,
        .mult_completion = REGISTRY_MULT_ONE,
        .min_client_stake = COIN,
        .min_proxy_stake = COIN,
        .client_close_delay = 300,
        .proxy_close_delay = 600,
    };
}

void registry_init(registry *r, const uint8_t owner[32]) {
    memset(r, 0, sizeof *r);
    memcpy(r->owner, owner, 32);
    r->params = registry_default_params();
}

void registry_free(registry *r) {
    for (int i = 0; i < REGISTRY_NLISTS; i++) free(r->lists[i]);
    memset(r->lists, 0, sizeof r->lists);
    memset(r->counts, 0, sizeof r->counts);
}

int registry_copy(registry *dst, const registry *src) {
    *dst = *src;
    memset(dst->lists, 0, sizeof dst->lists);
    for (int i = 0; i < REGISTRY_NLISTS; i++) {
        if (!src->counts[i]) continue;
        dst->lists[i] = malloc(src->counts[i] * sizeof *src->lists[i]);
        if (!dst->lists[i]) {
            registry_free(dst);
            return err_set("registry copy: out of memory");
        }
        memcpy(dst->lists[i], src->lists[i], src->counts[i] * sizeof *src->lists[i]);
    }
    return 0;
}

int registry_check_params(const registry_params *p) {
    if (p->worker_fee_per_token > p->price_per_token)
        return err_set("registry: worker_fee_per_token %" PRIu64 " is above price_per_token %" PRIu64
                       " (the proxy would pay workers more than clients pay it)",
                       p->worker_fee_per_token, p->price_per_token);
    const uint32_t mults[3] = {p->mult_prompt, p->mult_cached, p->mult_completion};
    static const char *names[3] = {"mult_prompt", "mult_cached", "mult_completion"};
    for (int i = 0; i < 3; i++)
        if (mults[i] > REGISTRY_MULT_MAX)
            return err_set("registry: %s %" PRIu32 " is above %u (100x)", names[i], mults[i], REGISTRY_MULT_MAX);
    if (p->client_close_delay > REGISTRY_DELAY_MAX || p->proxy_close_delay > REGISTRY_DELAY_MAX)
        return err_set("registry: a close delay (%" PRIu32 ", %" PRIu32 " s) is above %u s (a year)",
                       p->client_close_delay, p->proxy_close_delay, REGISTRY_DELAY_MAX);
    return 0;
}

static const char *const list_names[REGISTRY_NLISTS] = {"worker", "proxy-image", "model", "proxy"};

const char *registry_list_name(registry_list l) {
    return l >= 1 && l <= REGISTRY_NLISTS ? list_names[l - 1] : "unknown";
}

int registry_list_parse(const char *s, registry_list *out) {
    for (int i = 0; i < REGISTRY_NLISTS; i++)
        if (strcmp(s, list_names[i]) == 0) {
            *out = (registry_list)(i + 1);
            return 0;
        }
    return err_set("unknown registry list '%s' (worker, proxy-image, model or proxy)", s);
}

static int check_list(registry_list l) {
    if (l < 1 || l > REGISTRY_NLISTS) return err_set("registry: list %d does not exist", (int)l);
    return 0;
}

/* Linear: the lists are bounded by REGISTRY_MAX_ENTRIES and read far more than changed. */
const registry_entry *registry_find(const registry *r, registry_list l, const uint8_t key[32]) {
    if (check_list(l)) return NULL;
    for (size_t i = 0; i < r->counts[l - 1]; i++)
        if (memcmp(r->lists[l - 1][i].key, key, 32) == 0) return &r->lists[l - 1][i];
    return NULL;
}

const registry_entry *registry_find_proxy_addr(const registry *r, const ton_addr *a) {
    for (size_t i = 0; i < r->counts[REGISTRY_PROXY - 1]; i++)
        if (addr_equal(&r->lists[REGISTRY_PROXY - 1][i].addr, a)) return &r->lists[REGISTRY_PROXY - 1][i];
    return NULL;
}

int registry_set(registry *r, registry_list l, const uint8_t key[32], const char *endpoint) {
    registry_entry e = {0};
    if (check_list(l)) return -1;
    memcpy(e.key, key, 32);
    if (l == REGISTRY_PROXY) {
        size_t n = endpoint ? strlen(endpoint) : 0;
        if (n == 0 || n > REGISTRY_ENDPOINT_MAX)
            return err_set("registry: a proxy needs an endpoint of 1 to %d bytes", REGISTRY_ENDPOINT_MAX);
        memcpy(e.endpoint, endpoint, n);
        if (addr_of_wallet(key, &e.addr)) return -1;
    } else if (endpoint && *endpoint) {
        return err_set("registry: only proxies have endpoints");
    }
    registry_entry *old = (registry_entry *)registry_find(r, l, key);
    if (old) {
        *old = e;
        return 0;
    }
    size_t n = r->counts[l - 1];
    if (n >= REGISTRY_MAX_ENTRIES)
        return err_set("registry: the %s list is full (%d entries)", registry_list_name(l), REGISTRY_MAX_ENTRIES);
    registry_entry *grown = realloc(r->lists[l - 1], (n + 1) * sizeof *grown);
    if (!grown) return err_set("registry: out of memory");
    grown[n] = e;
    r->lists[l - 1] = grown;
    r->counts[l - 1] = n + 1;
    return 0;
}

int registry_del(registry *r, registry_list l, const uint8_t key[32]) {
    const registry_entry *e = registry_find(r, l, key);
    if (!e) return err_set("registry: no such entry in the %s list", registry_list_name(l));
    size_t i = (size_t)(e - r->lists[l - 1]), n = r->counts[l - 1];
    /* Order is kept so that two nodes replaying the same history list entries alike. */
    memmove(&r->lists[l - 1][i], &r->lists[l - 1][i + 1], (n - i - 1) * sizeof *e);
    r->counts[l - 1] = n - 1;
    return 0;
}

/* floor(tokens x mult / 10000), then x price: COCOON's adjust_tokens, checked. */
static int class_cost(uint64_t tokens, uint32_t mult, uint64_t per_token, uint64_t *out, const char *what) {
    uint64_t scaled;
    if (amount_mul(tokens, mult, &scaled, what)) return -1;
    return amount_mul(scaled / REGISTRY_MULT_ONE, per_token, out, what);
}

static int total_cost(const registry_params *p, const uint64_t n[3], uint64_t per_token, uint64_t *out) {
    const uint32_t mult[3] = {p->mult_prompt, p->mult_cached, p->mult_completion};
    static const char *what[3] = {"price of prompt tokens", "price of cached tokens", "price of completion tokens"};
    uint64_t sum = 0, c;
    for (int i = 0; i < 3; i++)
        if (class_cost(n[i], mult[i], per_token, &c, what[i]) || amount_add(sum, c, &sum, "price of a request"))
            return -1;
    *out = sum;
    return 0;
}

int registry_price(const registry_params *p, uint64_t prompt, uint64_t cached, uint64_t completion,
                   uint64_t *client_cost, uint64_t *worker_fee) {
    if (cached > prompt)
        return err_set("price: %" PRIu64 " cached tokens but only %" PRIu64 " prompt tokens", cached, prompt);
    const uint64_t n[3] = {prompt - cached, cached, completion};
    uint64_t c, f;
    if (total_cost(p, n, p->price_per_token, &c) || total_cost(p, n, p->worker_fee_per_token, &f)) return -1;
    *client_cost = c;
    *worker_fee = f;
    return 0;
}
