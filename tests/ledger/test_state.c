/* The ledger state machine: randomized operation sequences (seeded, reproducible) with every
 * invariant and an independent prediction of each operation's outcome checked after every
 * step; then each kind of bad voucher and transaction, one by one. */
#include "test.h"

#include <inttypes.h>
#include <stdlib.h>

#include "base/err.h"
#include "base/rng.h"
#include "ledger/amount.h"
#include "ledger/channel.h"
#include "ledger/state.h"
#include "ledger_testutil.h"

#define NKEYS 8 /* 0 owner, 1-2 proxies, 3-5 clients, 6-7 workers */
#define MAXCH 64
#define COIN 1000000000ull

typedef struct sim {
    state *st;
    keypair keys[NKEYS];
    ton_addr addrs[NKEYS];
    uint64_t now;
    ton_addr chans[MAXCH];
    int nchan;
    uint64_t last_paid[MAXCH];
    cell *history[4096]; /* applied transactions, for replays */
    uint64_t times[4096];
    int nhist;
    int applied, refused;
} sim;

static uint64_t seqno_of(sim *m, int k) { return state_account(m->st, &m->addrs[k]).seqno; }
static uint64_t bal(sim *m, const ton_addr *a) { return state_account(m->st, a).balance; }

/* Applies c; checks that the outcome is `want` (1 applied, 0 refused, -1 either) and that a
 * refusal changed nothing; keeps applied cells for replay. Returns whether it applied. */
static bool apply(sim *m, cell *c, int want, const char *what) {
    uint8_t before[32], after[32];
    state_digest(m->st, before);
    int rc = c ? state_apply(m->st, c, m->now) : STATE_MALFORMED;
    state_digest(m->st, after);
    if (rc == STATE_OK) {
        m->applied++;
        if (m->nhist < 4096) {
            m->times[m->nhist] = m->now;
            m->history[m->nhist++] = cell_ref(c);
        }
    } else {
        m->refused++;
        CHECK_MSG(memcmp(before, after, 32) == 0, "%s: refused (%s) yet the state changed", what, err_msg());
    }
    if (want == 1) CHECK_MSG(rc == STATE_OK, "%s: refused: %s", what, err_msg());
    if (want == 0) CHECK_MSG(rc != STATE_OK, "%s: applied, expected a refusal", what);
    cell_unref(c);
    return rc == STATE_OK;
}

static void setup(sim *m) {
    memset(m, 0, sizeof *m);
    for (int i = 0; i < NKEYS; i++) {
        m->keys[i] = lt_key((uint8_t)(i + 1));
        m->addrs[i] = lt_addr(&m->keys[i]);
    }
    m->st = state_new(m->keys[0].public_key);
    m->now = 1000;
    for (int p = 1; p <= 2; p++) {
        tx t = {.op = TX_REG_SET, .list = REGISTRY_PROXY};
        memcpy(t.key, m->keys[p].public_key, 32);
        snprintf(t.endpoint, sizeof t.endpoint, "127.0.0.1:%d", 9000 + p);
        apply(m, lt_sign(t, &m->keys[0], seqno_of(m, 0)), 1, "register proxy");
    }
    for (int i = 1; i < NKEYS; i++) {
        tx t = {.op = TX_MINT, .to = m->addrs[i], .amount = 100 * COIN};
        apply(m, lt_sign(t, &m->keys[0], seqno_of(m, 0)), 1, "mint");
    }
}

static void teardown(sim *m) {
    for (int i = 0; i < m->nhist; i++) cell_unref(m->history[i]);
    state_free(m->st);
}

/* An amount that is sometimes zero, sometimes huge, mostly modest. */
static uint64_t rand_amount(rng *r) {
    switch (rng_below(r, 10)) {
    case 0: return 0;
    case 1: return UINT64_MAX - rng_below(r, 3);
    case 2: return rng_below(r, 300) * COIN;
    default: return rng_below(r, 5 * COIN) + 1;
    }
}

static void step_transfer(sim *m, rng *r) {
    int from = 1 + (int)rng_below(r, NKEYS - 1), to = (int)rng_below(r, NKEYS);
    uint64_t amount = rand_amount(r), b_from = bal(m, &m->addrs[from]), b_to = bal(m, &m->addrs[to]);
    bool ok = amount && from != to && amount <= b_from;
    tx t = {.op = TX_TRANSFER, .to = m->addrs[to], .amount = amount};
    if (apply(m, lt_sign(t, &m->keys[from], seqno_of(m, from)), ok, "transfer")) {
        CHECK(bal(m, &m->addrs[from]) == b_from - amount);
        CHECK(bal(m, &m->addrs[to]) == b_to + amount);
    }
}

static void step_open(sim *m, rng *r) {
    bool payout = rng_below(r, 3) == 0;
    int payer = payout ? 1 + (int)rng_below(r, 2) : 3 + (int)rng_below(r, 3);
    int payee = payout ? 6 + (int)rng_below(r, 2) : 1 + (int)rng_below(r, 2);
    if (rng_below(r, 8) == 0) payee = 3 + (int)rng_below(r, 3); /* a client is not a proxy */
    uint64_t deposit = rand_amount(r) % (50 * COIN), stake = COIN + rng_below(r, 2 * COIN) - (rng_below(r, 4) ? 0 : COIN);
    uint64_t nonce = rng_below(r, 4), b = bal(m, &m->addrs[payer]);
    ton_addr ch;
    channel_address(payout ? CHANNEL_PAYOUT : CHANNEL_CHARGE, &m->addrs[payer], &m->addrs[payee], nonce, &ch);
    bool payee_proxy = payee == 1 || payee == 2;
    bool ok = (payout || payee_proxy) && payer != payee && stake >= COIN && deposit + stake <= b &&
              !state_channel(m->st, &ch);
    tx t = {.op = TX_OPEN, .kind = payout ? CHANNEL_PAYOUT : CHANNEL_CHARGE, .to = m->addrs[payee], .nonce = nonce,
            .amount = deposit, .stake = stake};
    if (apply(m, lt_sign(t, &m->keys[payer], seqno_of(m, payer)), ok, "open") && m->nchan < MAXCH) {
        const channel *c = state_channel(m->st, &ch);
        CHECK(c && c->deposit == deposit && c->stake == stake && c->paid == 0 && c->status == CHANNEL_OPEN);
        CHECK(bal(m, &m->addrs[payer]) == b - deposit - stake);
        m->last_paid[m->nchan] = 0;
        m->chans[m->nchan++] = ch;
    }
}

static int key_of(sim *m, const ton_addr *a) {
    for (int i = 0; i < NKEYS; i++)
        if (addr_equal(&m->addrs[i], a)) return i;
    return 0;
}

static void step_channel(sim *m, rng *r) {
    if (!m->nchan) return;
    int ci = (int)rng_below(r, (uint64_t)m->nchan);
    channel c = *state_channel(m->st, &m->chans[ci]);
    int payer = key_of(m, &c.payer), payee = key_of(m, &c.payee);
    uint64_t cap = c.deposit + c.stake;
    bool live = c.status == CHANNEL_OPEN || c.status == CHANNEL_CLOSING;
    switch (rng_below(r, 6)) {
    case 0: { /* top up */
        uint64_t amount = rand_amount(r) % (20 * COIN);
        bool ok = c.status == CHANNEL_OPEN && amount && amount <= bal(m, &c.payer);
        tx t = {.op = TX_TOPUP, .channel = c.addr, .amount = amount};
        apply(m, lt_sign(t, &m->keys[payer], seqno_of(m, payer)), ok, "topup");
        break;
    }
    case 1:
    case 2: { /* redeem a voucher: new, stale, replayed, over the cap, or signed by the payee */
        uint64_t total;
        switch (rng_below(r, 5)) {
        case 0: total = c.paid; break;                        /* replay of the last */
        case 1: total = c.paid ? rng_below(r, c.paid) : 0; break; /* older */
        case 2: total = cap + 1 + rng_below(r, 10); break;     /* over the cap */
        default: total = c.paid + 1 + rng_below(r, cap - c.paid + 1); break;
        }
        bool forged = rng_below(r, 10) == 0;
        const keypair *signer = forged ? &m->keys[payee] : &m->keys[payer];
        bool ok = live && !forged && total > c.paid && total <= cap;
        uint64_t b = bal(m, &c.payee);
        tx t = {.op = TX_REDEEM, .channel = c.addr,
                .voucher = lt_voucher(signer, channel_voucher_op(&c), &c.addr, total, rng_u64(r))};
        if (apply(m, lt_sign(t, &m->keys[payee], seqno_of(m, payee)), ok, "redeem"))
            CHECK(bal(m, &c.payee) == b + (total - c.paid));
        break;
    }
    case 3: { /* close request, by payer or payee */
        bool by_payee = rng_below(r, 3) == 0;
        int k = by_payee ? payee : payer;
        tx t = {.op = TX_CLOSE_REQUEST, .channel = c.addr};
        if (apply(m, lt_sign(t, &m->keys[k], seqno_of(m, k)), c.status == CHANNEL_OPEN, "close request"))
            CHECK(state_channel(m->st, &c.addr)->status == (by_payee ? CHANNEL_CLOSED : CHANNEL_CLOSING));
        break;
    }
    case 4: { /* close */
        int k = rng_below(r, 2) ? payer : payee;
        bool ok = c.status == CHANNEL_CLOSING && m->now >= c.close_at;
        tx t = {.op = TX_CLOSE, .channel = c.addr};
        apply(m, lt_sign(t, &m->keys[k], seqno_of(m, k)), ok, "close");
        break;
    }
    default: { /* withdraw, sometimes by the payee (forbidden) */
        bool by_payee = rng_below(r, 4) == 0;
        int k = by_payee ? payee : payer;
        uint64_t b = bal(m, &c.payer), held = channel_held(&c);
        tx t = {.op = TX_WITHDRAW, .channel = c.addr};
        if (apply(m, lt_sign(t, &m->keys[k], seqno_of(m, k)), !by_payee && c.status == CHANNEL_CLOSED, "withdraw"))
            CHECK(bal(m, &c.payer) == b + held);
        break;
    }
    }
}

static void step_misc(sim *m, rng *r) {
    switch (rng_below(r, 4)) {
    case 0: m->now += rng_below(r, 400); break; /* time passes (close delays are 300 and 600 s) */
    case 1: /* a replay of any applied transaction */
        if (m->nhist) apply(m, cell_ref(m->history[rng_below(r, (uint64_t)m->nhist)]), 0, "replay");
        break;
    case 2: { /* mint by someone who is not the owner */
        int k = 1 + (int)rng_below(r, NKEYS - 1);
        tx t = {.op = TX_MINT, .to = m->addrs[k], .amount = COIN};
        apply(m, lt_sign(t, &m->keys[k], seqno_of(m, k)), 0, "mint by non-owner");
        break;
    }
    default: { /* a wrong seqno */
        int k = (int)rng_below(r, NKEYS);
        tx t = {.op = TX_TRANSFER, .to = m->addrs[(k + 1) % NKEYS], .amount = 1};
        apply(m, lt_sign(t, &m->keys[k], seqno_of(m, k) + 1 + rng_below(r, 3)), 0, "future seqno");
        break;
    }
    }
}

/* After every step: conservation, and paid totals and seqnos that never go back. */
static void check_invariants(sim *m, uint64_t *seqnos, const char *where) {
    CHECK_MSG(state_check(m->st) == 0, "%s: %s", where, err_msg());
    for (int i = 0; i < m->nchan; i++) {
        const channel *c = state_channel(m->st, &m->chans[i]);
        CHECK_MSG(c->paid >= m->last_paid[i], "%s: channel %d paid went back", where, i);
        m->last_paid[i] = c->paid;
    }
    for (int k = 0; k < NKEYS; k++) {
        uint64_t s = seqno_of(m, k);
        CHECK_MSG(s >= seqnos[k], "%s: seqno went back", where);
        seqnos[k] = s;
    }
}

static void run_sequence(uint64_t seed, int steps) {
    sim m;
    uint64_t seqnos[NKEYS] = {0};
    char where[64];
    setup(&m);
    rng r = rng_stream(seed, 0x1ed6e5, 0);
    for (int i = 0; i < steps; i++) {
        uint64_t pick = rng_below(&r, 10);
        if (pick < 2) step_transfer(&m, &r);
        else if (pick < 4) step_open(&m, &r);
        else if (pick < 8) step_channel(&m, &r);
        else step_misc(&m, &r);
        snprintf(where, sizeof where, "seed %" PRIu64 " step %d", seed, i);
        check_invariants(&m, seqnos, where);
    }
    /* determinism: the applied history replayed on a fresh state gives the same state */
    state *again = state_new(m.keys[0].public_key);
    uint8_t d1[32], d2[32];
    for (int i = 0; i < m.nhist; i++) CHECK_EQ_INT(state_apply(again, m.history[i], m.times[i]), STATE_OK);
    state_digest(m.st, d1);
    state_digest(again, d2);
    CHECK_MSG(memcmp(d1, d2, 32) == 0, "seed %" PRIu64 ": replay gives another state", seed);
    CHECK_MSG(m.applied > steps / 8 && m.refused > steps / 8, "seed %" PRIu64 ": %d applied, %d refused", seed,
              m.applied, m.refused);
    state_free(again);
    teardown(&m);
}

TEST(ledger_state_random_sequences) {
    /* many short sequences (every early state: empty channels, first vouchers) and a few long
     * ones (many channels, closes, withdrawals); VEIL_LEDGER_SEEDS=N runs N short ones */
    const char *env = getenv("VEIL_LEDGER_SEEDS");
    int seeds = env ? atoi(env) : 300;
    for (int s = 1; s <= seeds; s++) run_sequence((uint64_t)s, 40);
    for (int s = 1; s <= 3; s++) run_sequence(1000000 + (uint64_t)s, 1500);
}

/* ---- one scenario per kind of bad voucher ---- */

typedef struct scene {
    sim m;
    ton_addr ch, ch2; /* client 3 -> proxy 1, client 4 -> proxy 1 */
} scene;

static void open_scene(scene *s) {
    setup(&s->m);
    sim *m = &s->m;
    tx t = {.op = TX_OPEN, .kind = CHANNEL_CHARGE, .to = m->addrs[1], .amount = 10 * COIN, .stake = COIN};
    apply(m, lt_sign(t, &m->keys[3], seqno_of(m, 3)), 1, "open 3");
    apply(m, lt_sign(t, &m->keys[4], seqno_of(m, 4)), 1, "open 4");
    channel_address(CHANNEL_CHARGE, &m->addrs[3], &m->addrs[1], 0, &s->ch);
    channel_address(CHANNEL_CHARGE, &m->addrs[4], &m->addrs[1], 0, &s->ch2);
}

static int redeem(scene *s, const ton_addr *ch, cell *voucher, int proxy) {
    tx t = {.op = TX_REDEEM, .channel = *ch, .voucher = voucher};
    cell *c = lt_sign(t, &s->m.keys[proxy], seqno_of(&s->m, proxy));
    int rc = state_apply(s->m.st, c, s->m.now);
    cell_unref(c);
    return rc;
}

TEST(ledger_state_bad_vouchers) {
    scene s;
    open_scene(&s);
    sim *m = &s.m;
    keypair *client = &m->keys[3];
    /* a good one moves exactly the total to the proxy */
    uint64_t b = bal(m, &m->addrs[1]);
    CHECK_EQ_INT(redeem(&s, &s.ch, lt_voucher(client, VOUCHER_OP_CHARGE, &s.ch, 500, 1), 1), STATE_OK);
    CHECK(bal(m, &m->addrs[1]) == b + 500);
    /* replayed: the same voucher again */
    CHECK_EQ_INT(redeem(&s, &s.ch, lt_voucher(client, VOUCHER_OP_CHARGE, &s.ch, 500, 1), 1), STATE_REJECTED);
    CHECK(strstr(err_msg(), "stale") != NULL);
    /* stale: an older, smaller total */
    CHECK_EQ_INT(redeem(&s, &s.ch, lt_voucher(client, VOUCHER_OP_CHARGE, &s.ch, 400, 2), 1), STATE_REJECTED);
    /* forged: signed by the proxy itself, who is paid by it */
    CHECK_EQ_INT(redeem(&s, &s.ch, lt_voucher(&m->keys[1], VOUCHER_OP_CHARGE, &s.ch, 900, 3), 1),
                 STATE_BAD_SIGNATURE);
    /* wrong signer: another client's key */
    CHECK_EQ_INT(redeem(&s, &s.ch, lt_voucher(&m->keys[4], VOUCHER_OP_CHARGE, &s.ch, 900, 3), 1),
                 STATE_BAD_SIGNATURE);
    /* cross-channel: client 3's genuine voucher for channel 1 redeemed on client 4's channel */
    CHECK_EQ_INT(redeem(&s, &s.ch2, lt_voucher(client, VOUCHER_OP_CHARGE, &s.ch, 900, 4), 1), STATE_BAD_SIGNATURE);
    /* ... and with the right signer but naming the other channel */
    CHECK_EQ_INT(redeem(&s, &s.ch2, lt_voucher(&m->keys[4], VOUCHER_OP_CHARGE, &s.ch, 900, 4), 1), STATE_REJECTED);
    CHECK(strstr(err_msg(), "wrong channel") != NULL);
    /* wrong op: a payout voucher on a charge channel */
    CHECK_EQ_INT(redeem(&s, &s.ch, lt_voucher(client, VOUCHER_OP_PAYOUT, &s.ch, 900, 5), 1), STATE_REJECTED);
    /* over the channel's deposit + stake */
    CHECK_EQ_INT(redeem(&s, &s.ch, lt_voucher(client, VOUCHER_OP_CHARGE, &s.ch, 11 * COIN + 1, 6), 1),
                 STATE_REJECTED);
    /* redeemed by someone other than the payee */
    CHECK_EQ_INT(redeem(&s, &s.ch, lt_voucher(client, VOUCHER_OP_CHARGE, &s.ch, 900, 7), 2), STATE_FORBIDDEN);
    /* an altered voucher: the total changed after signing */
    cell *v = lt_voucher(client, VOUCHER_OP_CHARGE, &s.ch, 900, 8);
    voucher parsed;
    CHECK_EQ_INT(voucher_parse(v, &parsed), VOUCHER_OK);
    parsed.amount = 5 * COIN;
    cell *altered = voucher_body(&parsed);
    cell_unref(v);
    CHECK_EQ_INT(redeem(&s, &s.ch, altered, 1), STATE_BAD_SIGNATURE);
    /* nothing of the above moved money: the channel paid exactly 500 */
    CHECK(state_channel(m->st, &s.ch)->paid == 500);
    CHECK(bal(m, &m->addrs[1]) == b + 500);
    CHECK_EQ_INT(state_check(m->st), 0);
    teardown(&s.m);
}

TEST(ledger_state_close_flow) {
    scene s;
    open_scene(&s);
    sim *m = &s.m;
    uint64_t b3 = bal(m, &m->addrs[3]);
    CHECK_EQ_INT(redeem(&s, &s.ch, lt_voucher(&m->keys[3], VOUCHER_OP_CHARGE, &s.ch, 2 * COIN, 1), 1), STATE_OK);
    tx rq = {.op = TX_CLOSE_REQUEST, .channel = s.ch};
    apply(m, lt_sign(rq, &m->keys[3], seqno_of(m, 3)), 1, "close request");
    /* the payer cannot withdraw or close before the delay; the payee can still redeem */
    tx wd = {.op = TX_WITHDRAW, .channel = s.ch}, cl = {.op = TX_CLOSE, .channel = s.ch};
    apply(m, lt_sign(wd, &m->keys[3], seqno_of(m, 3)), 0, "early withdraw");
    apply(m, lt_sign(cl, &m->keys[3], seqno_of(m, 3)), 0, "early close");
    CHECK_EQ_INT(redeem(&s, &s.ch, lt_voucher(&m->keys[3], VOUCHER_OP_CHARGE, &s.ch, 3 * COIN, 2), 1), STATE_OK);
    m->now += 300;
    apply(m, lt_sign(cl, &m->keys[3], seqno_of(m, 3)), 1, "close");
    CHECK_EQ_INT(redeem(&s, &s.ch, lt_voucher(&m->keys[3], VOUCHER_OP_CHARGE, &s.ch, 4 * COIN, 3), 1),
                 STATE_REJECTED);
    apply(m, lt_sign(wd, &m->keys[1], seqno_of(m, 1)), 0, "withdraw by payee");
    apply(m, lt_sign(wd, &m->keys[3], seqno_of(m, 3)), 1, "withdraw");
    apply(m, lt_sign(wd, &m->keys[3], seqno_of(m, 3)), 0, "second withdraw");
    CHECK(bal(m, &m->addrs[3]) == b3 + 8 * COIN);
    CHECK(channel_held(state_channel(m->st, &s.ch)) == 0);
    /* the same (payer, payee, nonce) cannot open again: its old vouchers would apply */
    tx op = {.op = TX_OPEN, .kind = CHANNEL_CHARGE, .to = m->addrs[1], .amount = COIN, .stake = COIN};
    apply(m, lt_sign(op, &m->keys[3], seqno_of(m, 3)), 0, "reopen same nonce");
    CHECK_EQ_INT(state_check(m->st), 0);
    teardown(&s.m);
}

TEST(ledger_state_registry_owner_only) {
    sim m;
    setup(&m);
    tx t = {.op = TX_REG_PARAMS, .params = registry_default_params()};
    t.params.price_per_token = 30;
    apply(&m, lt_sign(t, &m.keys[1], seqno_of(&m, 1)), 0, "params by a proxy");
    CHECK(state_registry(m.st)->params.price_per_token == 20);
    apply(&m, lt_sign(t, &m.keys[0], seqno_of(&m, 0)), 1, "params by the owner");
    CHECK(state_registry(m.st)->params.price_per_token == 30);
    t.params.worker_fee_per_token = 31; /* above the price */
    apply(&m, lt_sign(t, &m.keys[0], seqno_of(&m, 0)), 0, "fee above price");
    tx del = {.op = TX_REG_DEL, .list = REGISTRY_PROXY};
    memcpy(del.key, m.keys[2].public_key, 32);
    apply(&m, lt_sign(del, &m.keys[0], seqno_of(&m, 0)), 1, "unregister proxy 2");
    apply(&m, lt_sign(del, &m.keys[0], seqno_of(&m, 0)), 0, "unregister twice");
    tx op = {.op = TX_OPEN, .kind = CHANNEL_CHARGE, .to = m.addrs[2], .amount = COIN, .stake = COIN};
    apply(&m, lt_sign(op, &m.keys[3], seqno_of(&m, 3)), 0, "open with an unregistered proxy");
    tx model = {.op = TX_REG_SET, .list = REGISTRY_MODEL};
    memset(model.key, 0xab, 32);
    apply(&m, lt_sign(model, &m.keys[0], seqno_of(&m, 0)), 1, "allow a model");
    CHECK(registry_find(state_registry(m.st), REGISTRY_MODEL, model.key) != NULL);
    teardown(&m);
}

TEST(ledger_state_overflow_is_an_error) {
    sim m;
    setup(&m);
    tx t = {.op = TX_MINT, .to = m.addrs[3], .amount = UINT64_MAX - 50 * COIN};
    apply(&m, lt_sign(t, &m.keys[0], seqno_of(&m, 0)), 0, "mint past 2^64");
    CHECK(strstr(err_msg(), "overflows") != NULL);
    CHECK_EQ_INT(state_check(m.st), 0);
    teardown(&m);
}

TEST(ledger_registry_price) {
    registry_params p = registry_default_params();
    uint64_t cost, fee;
    p.mult_cached = 1000;      /* cached tokens at a tenth */
    p.mult_completion = 20000; /* completion at double */
    CHECK_EQ_INT(registry_price(&p, 100, 40, 10, &cost, &fee), 0);
    /* adjusted: 60 + 4 + 20 = 84 */
    CHECK(cost == 84 * 20 && fee == 84 * 19);
    CHECK_EQ_INT(registry_price(&p, 10, 11, 0, &cost, &fee), -1);
    CHECK_EQ_INT(registry_price(&p, UINT64_MAX, 0, 0, &cost, &fee), -1);
}
