/* Hex encoding; see hex.h. */
#include "base/hex.h"

#include <string.h>

#include "base/err.h"

void hex_encode(const uint8_t *src, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[src[i] >> 4];
        out[2 * i + 1] = digits[src[i] & 15];
    }
    out[2 * n] = '\0';
}

static int nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int hex_decode(const char *s, uint8_t *dst, size_t n, const char *what) {
    size_t len = strlen(s);
    if (len != 2 * n) return err_set("%s: expected %zu hex digits, got %zu characters", what, 2 * n, len);
    for (size_t i = 0; i < n; i++) {
        int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return err_set("%s: not a hex digit at character %zu", what, 2 * i + (hi < 0 ? 0 : 1));
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
