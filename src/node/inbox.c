/* Incoming payment channels (see inbox.h). */
#include "node/inbox.h"

#include "base/err.h"
#include "ledger/amount.h"
#include "ledger/boc.h"
#include "ledger/voucher.h"

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
    if (voucher_verify(body, &e, &v) != VOUCHER_OK) goto done;
    cell_unref(in->latest);
    in->latest = cell_ref(body);
    in->last = v.amount;
    rc = 0;
done:
    cell_unref(body);
    return rc;
}

int inbox_redeem(inbox *in, chain *c, const keypair *payee) {
    chain_ack ack;
    if (!in->latest || in->last <= in->redeemed) return 0;
    if (chain_redeem(c, payee, &in->ch.addr, in->latest, &ack) != 0) return err_prefix("redeem");
    in->redeemed = in->last;
    return 1;
}

void inbox_free(inbox *in) {
    cell_unref(in->latest);
    in->latest = NULL;
}
