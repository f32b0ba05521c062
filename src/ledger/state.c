/* The ledger state machine; see state.h. Each op has a check part, which reads the state and
 * computes every new value with checked arithmetic, and a write part, which cannot fail; the
 * only failure between them is memory for a new account or channel, and an entry that
 * nothing was written to is invisible (a zero account is an absent one). */
#include "ledger/state.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/strmap.h"
#include "ledger/amount.h"
#include "ledger/tx.h"
#include "ledger/voucher.h"

/* Map keys: the workchain byte then the 32-byte hash, stored in the entry itself (strmap does
 * not copy keys) and entries allocated one by one, so keys never move. */
#define KEY_LEN 33

typedef struct acct_entry {
    uint8_t key[KEY_LEN];
    account a;
} acct_entry;

typedef struct chan_entry {
    uint8_t key[KEY_LEN];
    channel c;
} chan_entry;

struct state {
    registry reg;
    uint64_t supply;
    acct_entry **accts;
    size_t nacct, cap_acct;
    strmap *acct_index;
    chan_entry **chans;
    size_t nchan, cap_chan;
    strmap *chan_index;
};

static void addr_key(const ton_addr *a, uint8_t key[KEY_LEN]) {
    key[0] = (uint8_t)a->workchain;
    memcpy(key + 1, a->hash, 32);
}

state *state_new(const uint8_t registry_owner[32]) {
    state *s = calloc(1, sizeof *s);
    if (!s) goto fail;
    registry_init(&s->reg, registry_owner);
    s->acct_index = strmap_new(64);
    s->chan_index = strmap_new(64);
    if (!s->acct_index || !s->chan_index) goto fail;
    return s;
fail:
    state_free(s);
    err_set("ledger state: out of memory");
    return NULL;
}

void state_free(state *s) {
    if (!s) return;
    for (size_t i = 0; i < s->nacct; i++) free(s->accts[i]);
    for (size_t i = 0; i < s->nchan; i++) free(s->chans[i]);
    free(s->accts);
    free(s->chans);
    strmap_free(s->acct_index);
    strmap_free(s->chan_index);
    registry_free(&s->reg);
    free(s);
}

static acct_entry *find_acct(const state *s, const ton_addr *a) {
    uint8_t key[KEY_LEN];
    int32_t i;
    addr_key(a, key);
    return strmap_get(s->acct_index, (const char *)key, KEY_LEN, &i) ? s->accts[i] : NULL;
}

static chan_entry *find_chan(const state *s, const ton_addr *a) {
    uint8_t key[KEY_LEN];
    int32_t i;
    addr_key(a, key);
    return strmap_get(s->chan_index, (const char *)key, KEY_LEN, &i) ? s->chans[i] : NULL;
}

/* Grows an array of entry pointers to hold one more. */
static int grow(void ***arr, size_t n, size_t *cap) {
    if (n < *cap) return 0;
    if (n >= INT32_MAX) return -1; /* the index maps to int32 */
    size_t want = *cap ? *cap * 2 : 64;
    void **p = realloc(*arr, want * sizeof *p);
    if (!p) return -1;
    *arr = p;
    *cap = want;
    return 0;
}

/* The account at a, made (empty) when missing. NULL only when out of memory. */
static account *get_acct(state *s, const ton_addr *a) {
    acct_entry *e = find_acct(s, a);
    if (e) return &e->a;
    if (grow((void ***)&s->accts, s->nacct, &s->cap_acct) || !(e = calloc(1, sizeof *e))) return NULL;
    addr_key(a, e->key);
    e->a.addr = *a;
    if (strmap_put(s->acct_index, (const char *)e->key, KEY_LEN, (int32_t)s->nacct)) {
        free(e);
        return NULL;
    }
    s->accts[s->nacct++] = e;
    return &e->a;
}

static channel *new_chan(state *s, const channel *c) {
    chan_entry *e;
    if (grow((void ***)&s->chans, s->nchan, &s->cap_chan) || !(e = calloc(1, sizeof *e))) return NULL;
    addr_key(&c->addr, e->key);
    e->c = *c;
    if (strmap_put(s->chan_index, (const char *)e->key, KEY_LEN, (int32_t)s->nchan)) {
        free(e);
        return NULL;
    }
    s->chans[s->nchan++] = e;
    return &e->c;
}

/* ---- the ops: each returns STATE_OK or a status with err_msg() ---- */

/* What one transaction is applying: the parsed tx, its signer's account and address. */
typedef struct apply_ctx {
    state *s;
    tx t;
    ton_addr signer_addr;
    account *signer; /* made on demand: seqno must advance even from a zero account */
    uint64_t now;
} apply_ctx;

static int rejected(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int rejected(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_vset(fmt, ap);
    va_end(ap);
    return STATE_REJECTED;
}

static int need_owner(const apply_ctx *x) {
    if (memcmp(x->t.signer, x->s->reg.owner, 32) != 0) {
        err_set("%s: only the registry owner may sign this", tx_op_name(x->t.op));
        return STATE_FORBIDDEN;
    }
    return STATE_OK;
}

static int need_positive(uint64_t amount) {
    return amount ? STATE_OK : rejected("the amount must be above zero");
}

static int op_mint(apply_ctx *x) {
    uint64_t supply, bal;
    int rc = need_owner(x);
    if (rc || (rc = need_positive(x->t.amount))) return rc;
    if (amount_add(x->s->supply, x->t.amount, &supply, "supply")) return STATE_REJECTED;
    account *to = get_acct(x->s, &x->t.to);
    if (!to) return STATE_NO_MEMORY;
    if (amount_add(to->balance, x->t.amount, &bal, "recipient balance")) return STATE_REJECTED;
    to->balance = bal;
    x->s->supply = supply;
    return STATE_OK;
}

static int op_transfer(apply_ctx *x) {
    uint64_t from_bal, to_bal;
    int rc = need_positive(x->t.amount);
    if (rc) return rc;
    if (addr_equal(&x->t.to, &x->signer_addr)) return rejected("transfer to oneself");
    if (amount_sub(x->signer->balance, x->t.amount, &from_bal, "balance")) return STATE_REJECTED;
    account *to = get_acct(x->s, &x->t.to);
    if (!to) return STATE_NO_MEMORY;
    if (amount_add(to->balance, x->t.amount, &to_bal, "recipient balance")) return STATE_REJECTED;
    x->signer->balance = from_bal;
    to->balance = to_bal;
    return STATE_OK;
}

static int op_open(apply_ctx *x) {
    const registry_params *p = &x->s->reg.params;
    channel c = {.kind = x->t.kind, .status = CHANNEL_OPEN, .payer = x->signer_addr, .payee = x->t.to,
                 .nonce = x->t.nonce, .deposit = x->t.amount, .stake = x->t.stake};
    uint64_t locked, bal;
    memcpy(c.payer_key, x->t.signer, 32);
    if (addr_equal(&c.payer, &c.payee)) return rejected("a channel to oneself");
    if (c.kind == CHANNEL_CHARGE) {
        if (!registry_find_proxy_addr(&x->s->reg, &c.payee)) return rejected("the payee is not a registered proxy");
        if (c.stake < p->min_client_stake)
            return rejected("stake %" PRIu64 " is below the minimum client stake %" PRIu64, c.stake,
                            p->min_client_stake);
        c.close_delay = p->client_close_delay;
    } else {
        if (!registry_find(&x->s->reg, REGISTRY_PROXY, x->t.signer))
            return rejected("only a registered proxy opens payout channels");
        if (c.stake < p->min_proxy_stake)
            return rejected("stake %" PRIu64 " is below the minimum proxy stake %" PRIu64, c.stake,
                            p->min_proxy_stake);
        c.close_delay = p->proxy_close_delay;
    }
    if (channel_address(c.kind, &c.payer, &c.payee, c.nonce, &c.addr)) return STATE_NO_MEMORY;
    if (find_chan(x->s, &c.addr)) return rejected("channel with nonce %" PRIu64 " exists already", c.nonce);
    if (amount_add(c.deposit, c.stake, &locked, "deposit + stake") ||
        amount_sub(x->signer->balance, locked, &bal, "balance"))
        return STATE_REJECTED;
    if (!new_chan(x->s, &c)) return STATE_NO_MEMORY;
    x->signer->balance = bal;
    return STATE_OK;
}

/* The channel a transaction names, with its signer's role checked. */
static int channel_for(apply_ctx *x, bool payer_ok, bool payee_ok, channel **out) {
    chan_entry *e = find_chan(x->s, &x->t.channel);
    char raw[ADDR_RAW_LEN];
    if (!e) {
        addr_to_raw(&x->t.channel, raw);
        return rejected("no channel %s", raw);
    }
    bool payer = addr_equal(&e->c.payer, &x->signer_addr), payee = addr_equal(&e->c.payee, &x->signer_addr);
    if (!((payer_ok && payer) || (payee_ok && payee))) {
        err_set("%s: the signer is not the channel's %s", tx_op_name(x->t.op),
                payer_ok && payee_ok ? "payer or payee" : payer_ok ? "payer" : "payee");
        return STATE_FORBIDDEN;
    }
    *out = &e->c;
    return STATE_OK;
}

static int need_status(const channel *c, int a, int b) {
    if (c->status == a || c->status == b) return STATE_OK;
    return rejected("the channel is %s", channel_status_name(c->status));
}

static int op_topup(apply_ctx *x) {
    channel *c;
    uint64_t dep, total, bal;
    int rc = channel_for(x, true, false, &c);
    if (rc || (rc = need_status(c, CHANNEL_OPEN, CHANNEL_OPEN)) || (rc = need_positive(x->t.amount))) return rc;
    if (amount_add(c->deposit, x->t.amount, &dep, "channel deposit") ||
        amount_add(dep, c->stake, &total, "channel deposit + stake") ||
        amount_sub(x->signer->balance, x->t.amount, &bal, "balance"))
        return STATE_REJECTED;
    c->deposit = dep;
    x->signer->balance = bal;
    return STATE_OK;
}

static int voucher_state(int vs) {
    switch (vs) {
    case VOUCHER_MALFORMED:
    case VOUCHER_MISMATCH: return STATE_MALFORMED;
    case VOUCHER_BAD_SIGNATURE: return STATE_BAD_SIGNATURE;
    default: return STATE_REJECTED;
    }
}

static int op_redeem(apply_ctx *x) {
    channel *c;
    voucher v;
    uint64_t delta, bal;
    int rc = channel_for(x, false, true, &c);
    if (rc || (rc = need_status(c, CHANNEL_OPEN, CHANNEL_CLOSING))) return rc;
    voucher_expect e = {channel_voucher_op(c), c->payer_key, &c->addr, c->paid, c->deposit + c->stake};
    int vs = voucher_verify(x->t.voucher, &e, &v);
    if (vs != VOUCHER_OK) {
        err_prefix("voucher (%s)", voucher_status_name(vs));
        return voucher_state(vs);
    }
    delta = v.amount - c->paid; /* > 0: voucher_verify refused totals <= paid */
    if (amount_add(x->signer->balance, delta, &bal, "payee balance")) return STATE_REJECTED;
    c->paid = v.amount;
    x->signer->balance = bal;
    return STATE_OK;
}

static int op_close_request(apply_ctx *x) {
    channel *c;
    uint64_t at;
    int rc = channel_for(x, true, true, &c);
    if (rc || (rc = need_status(c, CHANNEL_OPEN, CHANNEL_OPEN))) return rc;
    if (addr_equal(&c->payee, &x->signer_addr)) {
        c->status = CHANNEL_CLOSED; /* the payee waives the rest of its claims: no delay needed */
        return STATE_OK;
    }
    if (amount_add(x->now, c->close_delay, &at, "close time")) return STATE_REJECTED;
    c->status = CHANNEL_CLOSING;
    c->close_at = at;
    return STATE_OK;
}

static int op_close(apply_ctx *x) {
    channel *c;
    int rc = channel_for(x, true, true, &c);
    if (rc || (rc = need_status(c, CHANNEL_CLOSING, CHANNEL_CLOSING))) return rc;
    if (x->now < c->close_at)
        return rejected("the channel may close at time %" PRIu64 ", it is %" PRIu64, c->close_at, x->now);
    c->status = CHANNEL_CLOSED;
    return STATE_OK;
}

static int op_withdraw(apply_ctx *x) {
    channel *c;
    uint64_t bal;
    int rc = channel_for(x, true, false, &c);
    if (rc || (rc = need_status(c, CHANNEL_CLOSED, CHANNEL_CLOSED))) return rc;
    if (amount_add(x->signer->balance, channel_held(c), &bal, "payer balance")) return STATE_REJECTED;
    x->signer->balance = bal;
    c->status = CHANNEL_WITHDRAWN;
    return STATE_OK;
}

static int op_registry(apply_ctx *x) {
    registry *r = &x->s->reg;
    int rc = need_owner(x);
    if (rc) return rc;
    switch (x->t.op) {
    case TX_REG_PARAMS:
        if (registry_check_params(&x->t.params)) return STATE_REJECTED;
        r->params = x->t.params;
        return STATE_OK;
    case TX_REG_SET:
        /* registry_set checks before it writes */
        return registry_set(r, x->t.list, x->t.key, x->t.list == REGISTRY_PROXY ? x->t.endpoint : NULL)
                   ? STATE_REJECTED : STATE_OK;
    default: return registry_del(r, x->t.list, x->t.key) ? STATE_REJECTED : STATE_OK;
    }
}

static int run_op(apply_ctx *x) {
    switch (x->t.op) {
    case TX_MINT: return op_mint(x);
    case TX_TRANSFER: return op_transfer(x);
    case TX_OPEN: return op_open(x);
    case TX_TOPUP: return op_topup(x);
    case TX_REDEEM: return op_redeem(x);
    case TX_CLOSE_REQUEST: return op_close_request(x);
    case TX_CLOSE: return op_close(x);
    case TX_WITHDRAW: return op_withdraw(x);
    default: return op_registry(x);
    }
}

int state_apply(state *s, const cell *signed_tx, uint64_t now) {
    apply_ctx x = {.s = s, .now = now};
    int rc;
    if (tx_parse(signed_tx, &x.t)) return STATE_MALFORMED;
    if (!tx_signature_ok(signed_tx, &x.t)) {
        err_set("transaction signature does not verify under its signer's key");
        rc = STATE_BAD_SIGNATURE;
        goto done;
    }
    if (addr_of_wallet(x.t.signer, &x.signer_addr)) {
        rc = STATE_NO_MEMORY;
        goto done;
    }
    account cur = state_account(s, &x.signer_addr);
    if (x.t.seqno != cur.seqno) {
        err_set("seqno %" PRIu64 ", the signer's next is %" PRIu64 " (replayed or out of order)", x.t.seqno,
                cur.seqno);
        rc = STATE_BAD_SEQNO;
        goto done;
    }
    if (cur.seqno == UINT64_MAX) {
        rc = rejected("the signer's seqno is exhausted");
        goto done;
    }
    if (!(x.signer = get_acct(s, &x.signer_addr))) {
        rc = STATE_NO_MEMORY;
        goto done;
    }
    rc = run_op(&x);
    if (rc == STATE_OK) x.signer->seqno++;
done:
    if (rc == STATE_NO_MEMORY) err_set("ledger state: out of memory");
    if (rc != STATE_OK) err_prefix("%s (seqno %" PRIu64 ")", tx_op_name(x.t.op), x.t.seqno);
    tx_clear(&x.t);
    return rc;
}

account state_account(const state *s, const ton_addr *a) {
    acct_entry *e = find_acct(s, a);
    if (e) return e->a;
    return (account){.addr = *a};
}

const channel *state_channel(const state *s, const ton_addr *a) {
    chan_entry *e = find_chan(s, a);
    return e ? &e->c : NULL;
}

const registry *state_registry(const state *s) { return &s->reg; }
uint64_t state_supply(const state *s) { return s->supply; }
size_t state_naccounts(const state *s) { return s->nacct; }
const account *state_account_at(const state *s, size_t i) { return &s->accts[i]->a; }
size_t state_nchannels(const state *s) { return s->nchan; }
const channel *state_channel_at(const state *s, size_t i) { return &s->chans[i]->c; }

int state_check(const state *s) {
    unsigned __int128 sum = 0;
    char raw[ADDR_RAW_LEN];
    for (size_t i = 0; i < s->nchan; i++) {
        const channel *c = &s->chans[i]->c;
        unsigned __int128 cap = (unsigned __int128)c->deposit + c->stake;
        if (cap > UINT64_MAX || c->paid > cap) {
            addr_to_raw(&c->addr, raw);
            return err_set("channel %s: paid %" PRIu64 " is above deposit %" PRIu64 " + stake %" PRIu64, raw, c->paid,
                           c->deposit, c->stake);
        }
        sum += channel_held(c);
    }
    for (size_t i = 0; i < s->nacct; i++) sum += s->accts[i]->a.balance;
    if (sum != s->supply)
        return err_set("funds are not conserved: accounts and channels hold %.0f, the supply is %" PRIu64,
                       (double)sum, s->supply);
    return 0;
}

static void digest_u64(crypto_hash_sha256_state *h, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (56 - 8 * i));
    crypto_hash_sha256_update(h, b, 8);
}

static void digest_addr(crypto_hash_sha256_state *h, const ton_addr *a) {
    uint8_t key[KEY_LEN];
    addr_key(a, key);
    crypto_hash_sha256_update(h, key, KEY_LEN);
}

void state_digest(const state *s, uint8_t out[32]) {
    crypto_hash_sha256_state h;
    const registry_params *p = &s->reg.params;
    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, s->reg.owner, 32);
    const uint64_t params[] = {p->price_per_token, p->worker_fee_per_token, p->mult_prompt, p->mult_cached,
                               p->mult_completion, p->min_client_stake, p->min_proxy_stake,
                               p->client_close_delay, p->proxy_close_delay, s->supply};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) digest_u64(&h, params[i]);
    for (int l = 0; l < REGISTRY_NLISTS; l++) {
        digest_u64(&h, s->reg.counts[l]);
        for (size_t i = 0; i < s->reg.counts[l]; i++) {
            crypto_hash_sha256_update(&h, s->reg.lists[l][i].key, 32);
            crypto_hash_sha256_update(&h, (const uint8_t *)s->reg.lists[l][i].endpoint,
                                      strlen(s->reg.lists[l][i].endpoint) + 1);
        }
    }
    /* A zero account is an absent one (a failed transaction may have made it). */
    for (size_t i = 0; i < s->nacct; i++) {
        const account *a = &s->accts[i]->a;
        if (!a->balance && !a->seqno) continue;
        digest_addr(&h, &a->addr);
        digest_u64(&h, a->balance);
        digest_u64(&h, a->seqno);
    }
    for (size_t i = 0; i < s->nchan; i++) {
        const channel *c = &s->chans[i]->c;
        digest_addr(&h, &c->addr);
        const uint64_t f[] = {c->kind, c->status, c->nonce, c->deposit, c->stake, c->paid, c->close_delay, c->close_at};
        for (size_t j = 0; j < sizeof f / sizeof f[0]; j++) digest_u64(&h, f[j]);
        crypto_hash_sha256_update(&h, c->payer_key, 32);
        digest_addr(&h, &c->payer);
        digest_addr(&h, &c->payee);
    }
    crypto_hash_sha256_final(&h, out);
}

const char *state_status_name(int status) {
    switch (status) {
    case STATE_OK: return "ok";
    case STATE_MALFORMED: return "malformed";
    case STATE_BAD_SIGNATURE: return "bad_signature";
    case STATE_FORBIDDEN: return "forbidden";
    case STATE_BAD_SEQNO: return "bad_seqno";
    case STATE_REJECTED: return "rejected";
    case STATE_NO_MEMORY: return "no_memory";
    default: return "unknown";
    }
}
