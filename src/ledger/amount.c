/* Checked u64 arithmetic on amounts; see amount.h. */
#include "ledger/amount.h"

#include <inttypes.h>

#include "base/err.h"

int amount_add(uint64_t a, uint64_t b, uint64_t *out, const char *what) {
    uint64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return err_set("%s: %" PRIu64 " + %" PRIu64 " overflows 64 bits", what, a, b);
    *out = r;
    return 0;
}

int amount_sub(uint64_t a, uint64_t b, uint64_t *out, const char *what) {
    uint64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return err_set("%s: %" PRIu64 " - %" PRIu64 " is negative", what, a, b);
    *out = r;
    return 0;
}

int amount_mul(uint64_t a, uint64_t b, uint64_t *out, const char *what) {
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return err_set("%s: %" PRIu64 " * %" PRIu64 " overflows 64 bits", what, a, b);
    *out = r;
    return 0;
}
