/* Incoming payment channels (see inbox.h). */
#include "node/inbox.h"

#include "base/err.h"
#include "base/log.h"
#include "ledger/amount.h"
#include "ledger/boc.h"
#include "ledger/voucher.h"

#include <stdio.h>

static int bind(inbox *in, chain *c, channel_kind kind, const ton_addr *me, const cell *body) {
    voucher v;
    bool found;
    if (voucher_parse(body, &v) != VOUCHER_OK) return -1;
    if (chain_channel(c, &v.channel, &in->ch, &found) != 0) return err_prefix("ledger");
    if (!found) return err_set("the voucher's channel is not on the ledger");
    if (in->ch.kind != kind || !addr_equal(&in->ch.payee, me))
        return err_set("the voucher's channel is not a %s channel to us", channel_kind_name(kind));
    in->bound = true;
    in->last = in->redeemed = in->ch.paid;
    return 0;
}

/* The channel's funds again, after a voucher above them: the payer may have topped it up since
 * it was bound (the paid it was bound at stays the base of the cap). */
static int refunded(inbox *in, chain *c, uint64_t *held) {
    channel now;
    bool found;
    if (chain_channel(c, &in->ch.addr, &now, &found) != 0 || !found) return -1;
    if (amount_add(now.deposit, now.stake, held, "channel funds") != 0) return -1;
    in->ch.deposit = now.deposit;
    in->ch.stake = now.stake;
    return 0;
}

int inbox_take(inbox *in, chain *c, channel_kind kind, const ton_addr *me, uint64_t above_paid, const uint8_t *boc,
               size_t len) {
    cell *body = boc_parse(boc, len);
    voucher v;
    uint64_t cap = UINT64_MAX, held;
    int rc = -1;
    if (!body || (!in->bound && bind(in, c, kind, me, body) != 0)) goto done;
    if ((above_paid != UINT64_MAX && amount_add(in->ch.paid, above_paid, &cap, "justified total") != 0) ||
        amount_add(in->ch.deposit, in->ch.stake, &held, "channel funds") != 0)
        goto done;
    voucher_expect e = {.op = kind == CHANNEL_CHARGE ? VOUCHER_OP_CHARGE : VOUCHER_OP_PAYOUT,
                        .signer = in->ch.payer_key, .channel = &in->ch.addr, .last_amount = in->last,
                        .max_amount = cap < held ? cap : held};
    int st = voucher_verify(body, &e, &v);
    if (st == VOUCHER_OVER_LIMIT && held < cap && refunded(in, c, &held) == 0 && held > e.max_amount) {
        e.max_amount = cap < held ? cap : held;
        st = voucher_verify(body, &e, &v);
    }
    /* stale comes after the signature, kind and channel checks: a genuine repeat */
    if (st == VOUCHER_STALE && voucher_parse(body, &v) == VOUCHER_OK && v.amount == in->last) rc = 1;
    if (st != VOUCHER_OK) goto done;
    cell_unref(in->latest);
    in->latest = cell_ref(body);
    in->last = v.amount;
    rc = 0;
done:
    cell_unref(body);
    return rc;
}

/* After a refused redemption: whether there is nothing left to try, because the ledger holds
 * the channel paid up to amount anyway, or the channel is closed for good (its payee closed it,
 * or its close delay ran out), so no voucher on it will ever redeem again (a payer that pays
 * on, as the proxy does its workers, moves what is unpaid to a new channel). The refusal's
 * message stays in err_msg(). */
static bool settled(chain *c, const ton_addr *ch, uint64_t amount) {
    char why[512];
    channel now;
    bool found, ok;
    snprintf(why, sizeof why, "%s", err_msg());
    ok = chain_channel(c, ch, &now, &found) == 0 && found &&
         (now.paid >= amount || now.status == CHANNEL_CLOSED || now.status == CHANNEL_WITHDRAWN);
    if (ok && now.paid < amount)
        log_warn("a voucher of %llu nano-units on a %s channel (paid %llu) can never be redeemed: given up",
                 (unsigned long long)amount, channel_status_name(now.status), (unsigned long long)now.paid);
    err_set("%s", why);
    return ok;
}

int inbox_redeem(inbox *in, chain *c, const keypair *payee) {
    chain_ack ack;
    if (!in->latest || in->last <= in->redeemed) return 0;
    if (chain_redeem(c, payee, &in->ch.addr, in->latest, &ack) != 0 && !settled(c, &in->ch.addr, in->last))
        return err_prefix("redeem");
    in->redeemed = in->last;
    return 1;
}

int inbox_settle(chain *c, const keypair *payee, const ton_addr *channel, uint64_t amount, const uint8_t *boc,
                 size_t len, const char *who) {
    cell *v = boc_parse(boc, len);
    chain_ack ack;
    if (!v || (chain_redeem(c, payee, channel, v, &ack) != 0 && !settled(c, channel, amount))) {
        log_warn("%s: a voucher from a previous run does not redeem (kept for the next start): %s", who, err_msg());
        cell_unref(v);
        return 0;
    }
    cell_unref(v);
    log_info("%s: settled a voucher of %llu nano-units from a previous run", who, (unsigned long long)amount);
    return 1;
}

void inbox_free(inbox *in) {
    cell_unref(in->latest);
    in->latest = NULL;
}
