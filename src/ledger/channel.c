/* Channel addresses and helpers; see channel.h. */
#include "ledger/channel.h"

#include <pthread.h>
#include <string.h>

#include "base/err.h"
#include "ledger/voucher.h"

static const char CODE_TAG[] = "veil-channel-v1";
static pthread_once_t code_once = PTHREAD_ONCE_INIT;
static uint8_t code_hash[32];
static unsigned code_depth;
static int code_status = -1;

/* The placeholder code cell, made once: its hash is part of every channel address. */
static void make_code(void) {
    cell_builder b;
    cell_build_init(&b);
    cell_store_bytes(&b, (const uint8_t *)CODE_TAG, sizeof CODE_TAG - 1);
    cell *c = cell_finish(&b);
    if (!c) return;
    memcpy(code_hash, cell_hash(c), 32);
    code_depth = cell_depth(c);
    code_status = 0;
    cell_unref(c);
}

int channel_address(channel_kind kind, const ton_addr *payer, const ton_addr *payee, uint64_t nonce,
                    ton_addr *out) {
    cell_builder b;
    pthread_once(&code_once, make_code);
    if (code_status) return err_set("channel code cell: out of memory");
    cell_build_init(&b);
    cell_store_uint(&b, (uint64_t)kind, 8);
    addr_store(&b, payer);
    addr_store(&b, payee);
    cell_store_uint(&b, nonce, 64);
    cell *data = cell_finish(&b);
    if (!data) return err_prefix("channel data");
    int rc = addr_of_contract(0, code_hash, code_depth, data, out);
    cell_unref(data);
    return rc;
}

uint64_t channel_held(const channel *c) {
    /* paid <= deposit + stake always (state.c never lets a voucher pass it), and the sum
     * cannot overflow (open and top-up check it), so this is exact. */
    return c->status == CHANNEL_WITHDRAWN ? 0 : c->deposit + c->stake - c->paid;
}

uint32_t channel_voucher_op(const channel *c) {
    return c->kind == CHANNEL_CHARGE ? VOUCHER_OP_CHARGE : VOUCHER_OP_PAYOUT;
}

const char *channel_status_name(int status) {
    switch (status) {
    case CHANNEL_OPEN: return "open";
    case CHANNEL_CLOSING: return "closing";
    case CHANNEL_CLOSED: return "closed";
    case CHANNEL_WITHDRAWN: return "withdrawn";
    default: return "unknown";
    }
}

const char *channel_kind_name(int kind) {
    return kind == CHANNEL_CHARGE ? "charge" : kind == CHANNEL_PAYOUT ? "payout" : "unknown";
}
