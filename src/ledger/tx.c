/* Ledger transactions as cells; see tx.h. */
#include "ledger/tx.h"

#include <inttypes.h>
#include <string.h>

#include "base/err.h"

void tx_clear(tx *t) {
    cell_unref(t->voucher);
    t->voucher = NULL;
}

static void store_params(cell_builder *b, const registry_params *p) {
    cell_store_coins(b, p->price_per_token);
    cell_store_coins(b, p->worker_fee_per_token);
    cell_store_uint(b, p->mult_prompt, 32);
    cell_store_uint(b, p->mult_cached, 32);
    cell_store_uint(b, p->mult_completion, 32);
    cell_store_coins(b, p->min_client_stake);
    cell_store_coins(b, p->min_proxy_stake);
    cell_store_uint(b, p->client_close_delay, 32);
    cell_store_uint(b, p->proxy_close_delay, 32);
}

/* A proxy's endpoint: len:u8 then the bytes, in a ref (it does not fit beside the rest). */
static cell *endpoint_cell(const char *endpoint) {
    cell_builder b;
    size_t n = strlen(endpoint);
    cell_build_init(&b);
    cell_store_uint(&b, n, 8);
    cell_store_bytes(&b, (const uint8_t *)endpoint, n);
    return cell_finish(&b);
}

static int store_fields(cell_builder *b, const tx *t) {
    switch (t->op) {
    case TX_MINT:
    case TX_TRANSFER:
        addr_store(b, &t->to);
        return cell_store_coins(b, t->amount);
    case TX_OPEN:
        cell_store_uint(b, t->kind, 8);
        addr_store(b, &t->to);
        cell_store_uint(b, t->nonce, 64);
        cell_store_coins(b, t->amount);
        return cell_store_coins(b, t->stake);
    case TX_TOPUP:
        addr_store(b, &t->channel);
        return cell_store_coins(b, t->amount);
    case TX_REDEEM:
        addr_store(b, &t->channel);
        return cell_store_ref(b, t->voucher);
    case TX_CLOSE_REQUEST:
    case TX_CLOSE:
    case TX_WITHDRAW: return addr_store(b, &t->channel);
    case TX_REG_PARAMS: store_params(b, &t->params); return 0;
    case TX_REG_SET: {
        cell_store_uint(b, t->list, 8);
        cell_store_bytes(b, t->key, 32);
        if (t->list != REGISTRY_PROXY) return 0;
        cell *ep = endpoint_cell(t->endpoint);
        int rc = ep ? cell_store_ref(b, ep) : -1;
        cell_unref(ep);
        return rc;
    }
    case TX_REG_DEL:
        cell_store_uint(b, t->list, 8);
        return cell_store_bytes(b, t->key, 32);
    default: return err_set("transaction op %08" PRIx32 " is unknown", t->op);
    }
}

cell *tx_body(const tx *t) {
    cell_builder b;
    cell_build_init(&b);
    cell_store_uint(&b, t->op, 32);
    cell_store_bytes(&b, t->signer, 32);
    cell_store_uint(&b, t->seqno, 64);
    if (store_fields(&b, t)) {
        cell_build_abort(&b);
        err_prefix("transaction %s", tx_op_name(t->op));
        return NULL;
    }
    cell *c = cell_finish(&b);
    if (!c) err_prefix("transaction %s", tx_op_name(t->op));
    return c;
}

cell *tx_sign(tx *t, const keypair *k) {
    cell_builder b;
    memcpy(t->signer, k->public_key, 32);
    cell *body = tx_body(t);
    if (!body || keys_sign(k, cell_hash(body), t->signature)) {
        cell_unref(body);
        return NULL;
    }
    cell_build_init(&b);
    cell_store_bytes(&b, t->signature, 64);
    cell_store_ref(&b, body);
    cell_unref(body);
    return cell_finish(&b);
}

static int load_params(cell_slice *s, registry_params *p) {
    uint64_t m[3], d[2];
    if (cell_load_coins(s, &p->price_per_token) || cell_load_coins(s, &p->worker_fee_per_token) ||
        cell_load_uint(s, 32, &m[0]) || cell_load_uint(s, 32, &m[1]) || cell_load_uint(s, 32, &m[2]) ||
        cell_load_coins(s, &p->min_client_stake) || cell_load_coins(s, &p->min_proxy_stake) ||
        cell_load_uint(s, 32, &d[0]) || cell_load_uint(s, 32, &d[1]))
        return -1;
    p->mult_prompt = (uint32_t)m[0];
    p->mult_cached = (uint32_t)m[1];
    p->mult_completion = (uint32_t)m[2];
    p->client_close_delay = (uint32_t)d[0];
    p->proxy_close_delay = (uint32_t)d[1];
    return 0;
}

static int load_endpoint(cell_slice *s, char *out) {
    const cell *c;
    cell_slice e;
    uint64_t n;
    if (cell_load_ref(s, &c)) return -1;
    cell_slice_init(&e, c);
    if (cell_load_uint(&e, 8, &n)) return -1;
    if (n == 0 || n > REGISTRY_ENDPOINT_MAX)
        return err_set("proxy endpoint of %" PRIu64 " bytes (1 to %d)", n, REGISTRY_ENDPOINT_MAX);
    if (cell_load_bytes(&e, n, (uint8_t *)out) || cell_slice_end(&e, "proxy endpoint")) return -1;
    out[n] = '\0';
    if (strlen(out) != n) return err_set("proxy endpoint holds a NUL byte");
    return 0;
}

static int load_u8(cell_slice *s, uint8_t *out) {
    uint64_t v;
    if (cell_load_uint(s, 8, &v)) return -1;
    *out = (uint8_t)v;
    return 0;
}

static int load_fields(cell_slice *s, tx *t) {
    const cell *v;
    switch (t->op) {
    case TX_MINT:
    case TX_TRANSFER: return addr_load(s, &t->to) || cell_load_coins(s, &t->amount) ? -1 : 0;
    case TX_OPEN:
        if (load_u8(s, &t->kind) || addr_load(s, &t->to) || cell_load_uint(s, 64, &t->nonce) ||
            cell_load_coins(s, &t->amount) || cell_load_coins(s, &t->stake))
            return -1;
        if (t->kind != CHANNEL_CHARGE && t->kind != CHANNEL_PAYOUT)
            return err_set("channel kind %u (1 charge, 2 payout)", t->kind);
        return 0;
    case TX_TOPUP: return addr_load(s, &t->channel) || cell_load_coins(s, &t->amount) ? -1 : 0;
    case TX_REDEEM:
        if (addr_load(s, &t->channel) || cell_load_ref(s, &v)) return -1;
        t->voucher = cell_ref((cell *)v);
        return 0;
    case TX_CLOSE_REQUEST:
    case TX_CLOSE:
    case TX_WITHDRAW: return addr_load(s, &t->channel);
    case TX_REG_PARAMS: return load_params(s, &t->params);
    case TX_REG_SET:
    case TX_REG_DEL:
        if (load_u8(s, &t->list) || cell_load_bytes(s, 32, t->key)) return -1;
        if (t->list < 1 || t->list > REGISTRY_NLISTS) return err_set("registry list %u does not exist", t->list);
        if (t->op == TX_REG_SET && t->list == REGISTRY_PROXY) return load_endpoint(s, t->endpoint);
        return 0;
    default: return err_set("op %08" PRIx32 " is unknown", t->op);
    }
}

int tx_parse(const cell *signed_tx, tx *out) {
    cell_slice s, b;
    const cell *body;
    uint64_t op;
    tx t;
    memset(&t, 0, sizeof t);
    cell_slice_init(&s, signed_tx);
    if (cell_load_bytes(&s, 64, t.signature) || cell_load_ref(&s, &body) || cell_slice_end(&s, "signed transaction"))
        goto fail;
    cell_slice_init(&b, body);
    if (cell_load_uint(&b, 32, &op) || cell_load_bytes(&b, 32, t.signer) || cell_load_uint(&b, 64, &t.seqno))
        goto fail;
    t.op = (uint32_t)op;
    if (load_fields(&b, &t) || cell_slice_end(&b, "transaction body")) goto fail;
    /* One transaction, one cell: a Coins field padded with zero bytes reads the same value,
     * so the body must be exactly what tx_body writes for it. */
    cell *canon = tx_body(&t);
    bool same = canon && cell_equal(canon, body);
    cell_unref(canon);
    if (!same) {
        err_set("the body is not in canonical form (a Coins field longer than its value needs)");
        goto fail;
    }
    *out = t;
    return 0;
fail:
    tx_clear(&t);
    err_prefix("malformed transaction");
    return -1;
}

bool tx_signature_ok(const cell *signed_tx, const tx *t) {
    if (cell_nrefs(signed_tx) != 1) return false;
    return keys_verify(t->signer, cell_hash(cell_child(signed_tx, 0)), t->signature);
}

const char *tx_op_name(uint32_t op) {
    switch (op) {
    case TX_MINT: return "mint";
    case TX_TRANSFER: return "transfer";
    case TX_OPEN: return "open";
    case TX_TOPUP: return "topup";
    case TX_REDEEM: return "redeem";
    case TX_CLOSE_REQUEST: return "close-request";
    case TX_CLOSE: return "close";
    case TX_WITHDRAW: return "withdraw";
    case TX_REG_PARAMS: return "registry-params";
    case TX_REG_SET: return "registry-set";
    case TX_REG_DEL: return "registry-del";
    default: return "unknown";
    }
}
