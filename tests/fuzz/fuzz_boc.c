/* libFuzzer target: the BOC reader must accept or reject any byte string without a crash, a
 * leak or a read outside the buffer; what it accepts must write back to bytes that read back to
 * the same tree, and writing that tree again must give the same bytes. */
#include "ledger/boc.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* copy so that reads past `size` hit ASan's redzone */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    cell *c = boc_parse(copy, size);
    free(copy);
    if (!c) return 0;
    unsigned flags = size % 4; /* vary BOC_CRC32C / BOC_INDEX with the input */
    uint8_t *a = NULL, *b = NULL;
    size_t alen, blen;
    if (boc_serialize(c, flags, &a, &alen)) abort();
    cell *again = boc_parse(a, alen);
    if (!again || !cell_equal(c, again) || cell_depth(c) != cell_depth(again)) abort();
    if (boc_serialize(again, flags, &b, &blen) || blen != alen || memcmp(a, b, alen) != 0) abort();
    free(a);
    free(b);
    cell_unref(again);
    cell_unref(c);
    return 0;
}
