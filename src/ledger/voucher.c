/* Cumulative signed vouchers; see voucher.h. */
#include "ledger/voucher.h"

#include <inttypes.h>
#include <string.h>

#include "base/err.h"
#include "ledger/amount.h"

cell *voucher_payload(const voucher *v) {
    cell_builder b;
    cell_build_init(&b);
    cell_store_uint(&b, v->op, 32);
    cell_store_uint(&b, v->query_id, 64);
    cell_store_uint(&b, v->amount, 64);
    addr_store(&b, &v->channel);
    cell *c = cell_finish(&b);
    if (!c) err_prefix("voucher payload");
    return c;
}

cell *voucher_body(const voucher *v) {
    cell_builder b;
    cell *payload = voucher_payload(v);
    if (!payload) return NULL;
    cell_build_init(&b);
    cell_store_uint(&b, v->op, 32);
    cell_store_uint(&b, v->query_id, 64);
    if (v->has_excesses) addr_store(&b, &v->excesses_to);
    else addr_store_none(&b);
    cell_store_bytes(&b, v->signature, 64);
    cell_store_ref(&b, payload);
    cell_unref(payload);
    cell *c = cell_finish(&b);
    if (!c) err_prefix("voucher body");
    return c;
}

cell *voucher_sign(voucher *v, const keypair *signer) {
    cell *payload = voucher_payload(v);
    if (!payload) return NULL;
    int rc = keys_sign(signer, cell_hash(payload), v->signature);
    cell_unref(payload);
    return rc ? NULL : voucher_body(v);
}

/* The layout alone. The envelope's op and query_id go to *outer_op / *outer_qid, the payload's
 * to v, and the payload cell (borrowed from body) to *payload. */
static int parse_layout(const cell *body, voucher *v, uint64_t *outer_op, uint64_t *outer_qid, const cell **payload) {
    cell_slice s, p;
    uint64_t op, qid, amount;
    cell_slice_init(&s, body);
    if (cell_load_uint(&s, 32, outer_op) || cell_load_uint(&s, 64, outer_qid) ||
        addr_load_maybe(&s, &v->excesses_to, &v->has_excesses) || cell_load_bytes(&s, 64, v->signature) ||
        cell_load_ref(&s, payload) || cell_slice_end(&s, "voucher body"))
        goto fail;
    cell_slice_init(&p, *payload);
    if (cell_load_uint(&p, 32, &op) || cell_load_uint(&p, 64, &qid) || cell_load_uint(&p, 64, &amount) ||
        addr_load(&p, &v->channel) || cell_slice_end(&p, "voucher payload"))
        goto fail;
    v->op = (uint32_t)op;
    v->query_id = qid;
    v->amount = amount;
    return VOUCHER_OK;
fail:
    err_prefix("malformed voucher");
    return VOUCHER_MALFORMED;
}

static int check_copies(const voucher *v, uint64_t outer_op, uint64_t outer_qid) {
    if (outer_op != v->op || outer_qid != v->query_id) {
        err_set("voucher envelope (op %08" PRIx64 ", query %" PRIu64 ") does not match its signed payload "
                "(op %08" PRIx32 ", query %" PRIu64 ")", outer_op, outer_qid, v->op, v->query_id);
        return VOUCHER_MISMATCH;
    }
    return VOUCHER_OK;
}

int voucher_parse(const cell *body, voucher *out) {
    voucher v;
    uint64_t outer_op, outer_qid;
    const cell *payload;
    int rc = parse_layout(body, &v, &outer_op, &outer_qid, &payload);
    if (rc == VOUCHER_OK) rc = check_copies(&v, outer_op, outer_qid);
    if (rc == VOUCHER_OK) *out = v;
    return rc;
}

int voucher_verify(const cell *body, const voucher_expect *e, voucher *out) {
    voucher v;
    uint64_t outer_op, outer_qid;
    const cell *payload;
    char want[ADDR_RAW_LEN], got[ADDR_RAW_LEN];
    int rc = parse_layout(body, &v, &outer_op, &outer_qid, &payload);
    if (rc != VOUCHER_OK) return rc;
    if (!keys_verify(e->signer, cell_hash(payload), v.signature)) {
        err_set("voucher signature does not verify under the payer's key (forged, altered, or another signer)");
        return VOUCHER_BAD_SIGNATURE;
    }
    if ((rc = check_copies(&v, outer_op, outer_qid)) != VOUCHER_OK) return rc;
    if (v.op != e->op) {
        err_set("voucher op %08" PRIx32 ", expected %08" PRIx32, v.op, e->op);
        return VOUCHER_WRONG_OP;
    }
    if (!addr_equal(&v.channel, e->channel)) {
        addr_to_raw(&v.channel, got);
        addr_to_raw(e->channel, want);
        err_set("voucher is for channel %s, not this channel %s", got, want);
        return VOUCHER_WRONG_CHANNEL;
    }
    if (v.amount <= e->last_amount) {
        err_set("voucher total %" PRIu64 " is not above the last accepted total %" PRIu64 " (replayed or stale)",
                v.amount, e->last_amount);
        return VOUCHER_STALE;
    }
    if (v.amount > e->max_amount) {
        err_set("voucher total %" PRIu64 " is above the channel's cap %" PRIu64, v.amount, e->max_amount);
        return VOUCHER_OVER_LIMIT;
    }
    if (out) *out = v;
    return VOUCHER_OK;
}

int voucher_add(voucher *v, uint64_t delta) { return amount_add(v->amount, delta, &v->amount, "voucher total"); }

const char *voucher_status_name(int status) {
    switch (status) {
    case VOUCHER_OK: return "ok";
    case VOUCHER_MALFORMED: return "malformed";
    case VOUCHER_BAD_SIGNATURE: return "bad signature";
    case VOUCHER_MISMATCH: return "envelope mismatch";
    case VOUCHER_WRONG_OP: return "wrong op";
    case VOUCHER_WRONG_CHANNEL: return "wrong channel";
    case VOUCHER_STALE: return "stale";
    case VOUCHER_OVER_LIMIT: return "over limit";
    default: return "unknown";
    }
}
