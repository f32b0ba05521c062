/* The backend-independent half of chain.h: dispatch, and building each operation's signed
 * transaction. */
#include "ledger/chain.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "ledger/voucher.h"

void chain_close(chain *c) {
    if (c) c->be->close(c);
}

int chain_submit(chain *c, const cell *signed_tx, chain_ack *ack) { return c->be->submit(c, signed_tx, ack); }
int chain_account(chain *c, const ton_addr *a, account *out) { return c->be->account(c, a, out); }
int chain_channel(chain *c, const ton_addr *a, channel *out, bool *found) { return c->be->channel(c, a, out, found); }
int chain_registry(chain *c, registry *out) { return c->be->registry(c, out); }
int chain_tip_of(chain *c, chain_tip *out) { return c->be->tip(c, out); }
int chain_find_tx(chain *c, const uint8_t hash[32], chain_ack *out, bool *found) {
    return c->be->find_tx(c, hash, out, found);
}

/* Another process signing with the same key (workers sharing a payout wallet) may take the
 * seqno between our reading it and our submitting: a refused transaction changed nothing, so it
 * is signed again over the new seqno, a few times. */
#define SEQNO_TRIES 4

int chain_send(chain *c, tx *t, const keypair *k, chain_ack *ack) {
    ton_addr self;
    account a;
    int rc = STATE_NO_MEMORY;
    if (addr_of_wallet(k->public_key, &self)) goto done;
    for (int tries = 1;; tries++) {
        if ((rc = chain_account(c, &self, &a)) != STATE_OK) goto done;
        t->seqno = a.seqno;
        cell *signed_tx = tx_sign(t, k);
        if (!signed_tx) {
            rc = STATE_MALFORMED;
            goto done;
        }
        rc = chain_submit(c, signed_tx, ack);
        cell_unref(signed_tx);
        if (rc != STATE_BAD_SEQNO || tries == SEQNO_TRIES) break;
    }
done:
    tx_clear(t);
    return rc;
}

int chain_mint(chain *c, const keypair *owner, const ton_addr *to, uint64_t amount, chain_ack *ack) {
    tx t = {.op = TX_MINT, .to = *to, .amount = amount};
    return chain_send(c, &t, owner, ack);
}

int chain_transfer(chain *c, const keypair *k, const ton_addr *to, uint64_t amount, chain_ack *ack) {
    tx t = {.op = TX_TRANSFER, .to = *to, .amount = amount};
    return chain_send(c, &t, k, ack);
}

int chain_open_channel(chain *c, const keypair *payer, channel_kind kind, const ton_addr *payee, uint64_t nonce,
                       uint64_t deposit, uint64_t stake, ton_addr *channel_out, chain_ack *ack) {
    tx t = {.op = TX_OPEN, .kind = (uint8_t)kind, .to = *payee, .nonce = nonce, .amount = deposit, .stake = stake};
    ton_addr self;
    if (addr_of_wallet(payer->public_key, &self) || channel_address(kind, &self, payee, nonce, channel_out))
        return STATE_NO_MEMORY;
    return chain_send(c, &t, payer, ack);
}

/* The ops that name only a channel (and maybe an amount). */
static int channel_op(chain *c, uint32_t op, const keypair *k, const ton_addr *channel, uint64_t amount,
                      chain_ack *ack) {
    tx t = {.op = op, .channel = *channel, .amount = amount};
    return chain_send(c, &t, k, ack);
}

int chain_topup(chain *c, const keypair *payer, const ton_addr *channel, uint64_t amount, chain_ack *ack) {
    return channel_op(c, TX_TOPUP, payer, channel, amount, ack);
}

int chain_redeem(chain *c, const keypair *payee, const ton_addr *channel, cell *voucher, chain_ack *ack) {
    tx t = {.op = TX_REDEEM, .channel = *channel, .voucher = cell_ref(voucher)};
    return chain_send(c, &t, payee, ack);
}

int chain_request_close(chain *c, const keypair *k, const ton_addr *channel, chain_ack *ack) {
    return channel_op(c, TX_CLOSE_REQUEST, k, channel, 0, ack);
}

int chain_close_channel(chain *c, const keypair *k, const ton_addr *channel, chain_ack *ack) {
    return channel_op(c, TX_CLOSE, k, channel, 0, ack);
}

int chain_withdraw(chain *c, const keypair *payer, const ton_addr *channel, chain_ack *ack) {
    return channel_op(c, TX_WITHDRAW, payer, channel, 0, ack);
}

int chain_set_params(chain *c, const keypair *owner, const registry_params *p, chain_ack *ack) {
    tx t = {.op = TX_REG_PARAMS, .params = *p};
    return chain_send(c, &t, owner, ack);
}

int chain_registry_set(chain *c, const keypair *owner, registry_list l, const uint8_t key[32], const char *endpoint,
                       chain_ack *ack) {
    tx t = {.op = TX_REG_SET, .list = (uint8_t)l};
    memcpy(t.key, key, 32);
    if (endpoint && strlen(endpoint) > REGISTRY_ENDPOINT_MAX) {
        err_set("proxy endpoint longer than %d bytes", REGISTRY_ENDPOINT_MAX);
        return STATE_MALFORMED;
    }
    if (endpoint) snprintf(t.endpoint, sizeof t.endpoint, "%s", endpoint);
    return chain_send(c, &t, owner, ack);
}

int chain_registry_del(chain *c, const keypair *owner, registry_list l, const uint8_t key[32], chain_ack *ack) {
    tx t = {.op = TX_REG_DEL, .list = (uint8_t)l};
    memcpy(t.key, key, 32);
    return chain_send(c, &t, owner, ack);
}

cell *chain_voucher(const keypair *payer, channel_kind kind, const ton_addr *channel, uint64_t total,
                    uint64_t query_id) {
    voucher v = {.op = kind == CHANNEL_CHARGE ? VOUCHER_OP_CHARGE : VOUCHER_OP_PAYOUT, .query_id = query_id,
                 .amount = total, .channel = *channel};
    return voucher_sign(&v, payer);
}
