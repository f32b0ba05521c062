/* libFuzzer target: any BOC, read as a ledger transaction and applied to a small ledger state,
 * must be refused or applied without a crash, a leak or an out-of-bounds read; a parsed
 * transaction must rebuild to the same body, and whatever happens the funds invariants hold. */
#include "ledger/boc.h"
#include "ledger/state.h"
#include "ledger/tx.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t owner[32] = {7};
    tx t;
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    cell *c = boc_parse(copy, size);
    free(copy);
    if (!c) return 0;
    if (tx_parse(c, &t) == 0) {
        /* parse and rebuild agree: accepted encodings are canonical */
        cell *body = tx_body(&t);
        if (!body || !cell_equal(body, cell_child(c, 0))) abort();
        cell_unref(body);
        tx_clear(&t);
    }
    state *s = state_new(owner);
    if (s) {
        state_apply(s, c, 1000);
        if (state_check(s)) abort();
        state_free(s);
    }
    cell_unref(c);
    return 0;
}
