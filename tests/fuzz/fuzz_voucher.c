/* libFuzzer target: any BOC, read as a voucher and as a worker receipt, must be rejected or
 * accepted without a crash, a leak or an out-of-bounds read; an accepted voucher must satisfy
 * every promise voucher_verify makes (here nothing can carry a valid signature, so nothing may
 * be accepted at all). */
#include "ledger/boc.h"
#include "ledger/receipt.h"
#include "ledger/voucher.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t signer[32] = {1}; /* not a key anyone holds */
    ton_addr channel = {0, {0x11}};
    voucher_expect e = {VOUCHER_OP_CHARGE, signer, &channel, 0, UINT64_MAX};
    voucher v;
    receipt r;
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    cell *c = boc_parse(copy, size);
    free(copy);
    if (!c) return 0;
    if (voucher_parse(c, &v) == VOUCHER_OK) {
        cell *back = voucher_body(&v);
        if (!back || !cell_equal(back, c)) abort(); /* parse and rebuild agree */
        cell_unref(back);
    }
    if (voucher_verify(c, &e, &v) == VOUCHER_OK) abort();
    if (receipt_verify(c, signer, &r) == RECEIPT_OK) abort();
    cell_unref(c);
    return 0;
}
