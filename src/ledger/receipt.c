/* Worker-signed receipts; see receipt.h. */
#include "ledger/receipt.h"

#include <inttypes.h>

#include "base/err.h"

static int check_counts(const receipt *r) {
    if (r->cached_tokens > r->prompt_tokens)
        return err_set("receipt: %" PRIu64 " cached tokens but only %" PRIu64 " prompt tokens", r->cached_tokens,
                       r->prompt_tokens);
    return 0;
}

cell *receipt_cell(const receipt *r) {
    cell_builder b;
    if (check_counts(r)) return NULL;
    cell_build_init(&b);
    cell_store_uint(&b, RECEIPT_TAG, 32);
    cell_store_bytes(&b, r->request_id, 32);
    cell_store_bytes(&b, r->request_hash, 32);
    cell_store_bytes(&b, r->model_hash, 32);
    cell_store_uint(&b, r->prompt_tokens, 64);
    cell_store_uint(&b, r->cached_tokens, 64);
    cell_store_uint(&b, r->completion_tokens, 64);
    cell *c = cell_finish(&b);
    if (!c) err_prefix("receipt");
    return c;
}

cell *receipt_sign(const receipt *r, const keypair *worker) {
    uint8_t sig[64];
    cell_builder b;
    cell *body = receipt_cell(r);
    if (!body || keys_sign(worker, cell_hash(body), sig)) {
        cell_unref(body);
        return NULL;
    }
    cell_build_init(&b);
    cell_store_bytes(&b, sig, 64);
    cell_store_ref(&b, body);
    cell_unref(body);
    cell *c = cell_finish(&b);
    if (!c) err_prefix("signed receipt");
    return c;
}

static int parse_receipt(const cell *c, receipt *r) {
    cell_slice s;
    uint64_t tag;
    cell_slice_init(&s, c);
    if (cell_load_uint(&s, 32, &tag)) return -1;
    if (tag != RECEIPT_TAG) return err_set("tag %08" PRIx64 " is not a receipt's (%08x)", tag, RECEIPT_TAG);
    if (cell_load_bytes(&s, 32, r->request_id) || cell_load_bytes(&s, 32, r->request_hash) ||
        cell_load_bytes(&s, 32, r->model_hash) || cell_load_uint(&s, 64, &r->prompt_tokens) ||
        cell_load_uint(&s, 64, &r->cached_tokens) || cell_load_uint(&s, 64, &r->completion_tokens) ||
        cell_slice_end(&s, "receipt"))
        return -1;
    return check_counts(r);
}

int receipt_verify(const cell *signed_receipt, const uint8_t worker_key[32], receipt *out) {
    cell_slice s;
    uint8_t sig[64];
    const cell *body;
    receipt r;
    cell_slice_init(&s, signed_receipt);
    if (cell_load_bytes(&s, 64, sig) || cell_load_ref(&s, &body) || cell_slice_end(&s, "signed receipt") ||
        parse_receipt(body, &r)) {
        err_prefix("malformed receipt");
        return RECEIPT_MALFORMED;
    }
    if (!keys_verify(worker_key, cell_hash(body), sig)) {
        err_set("receipt signature does not verify under the worker's key (forged, altered, or another worker)");
        return RECEIPT_BAD_SIGNATURE;
    }
    *out = r;
    return RECEIPT_OK;
}
