/* Strict UTF-8 decoding and repair; see utf8.h. */
#include "base/utf8.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

size_t utf8_decode(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c, min;
    size_t len;
    if (n == 0) return 0;
    if (u[0] < 0x80) {
        if (cp) *cp = u[0];
        return 1;
    }
    if (u[0] >= 0xC2 && u[0] <= 0xDF) {
        len = 2, c = u[0] & 0x1Fu, min = 0x80;
    } else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
        len = 3, c = u[0] & 0x0Fu, min = 0x800;
    } else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
        len = 4, c = u[0] & 0x07u, min = 0x10000;
    } else {
        return 0; /* continuation byte, C0/C1 (always overlong) or F5..FF */
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (u[i] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    if (cp) *cp = c;
    return len;
}

size_t utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool utf8_valid(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = utf8_decode(s + i, n - i, NULL);
        if (!len) return false;
        i += len;
    }
    return true;
}

char *utf8_repair(const char *s, size_t n, size_t *out_len) {
    /* Each bad byte grows to 3 bytes at most. */
    if (n > (SIZE_MAX - 1) / 3) {
        err_set("utf8: text of %zu bytes is too long", n);
        return NULL;
    }
    char *out = malloc(3 * n + 1);
    size_t i = 0, o = 0;
    if (!out) {
        err_set("utf8: out of memory repairing %zu bytes", n);
        return NULL;
    }
    while (i < n) {
        size_t len = utf8_decode(s + i, n - i, NULL);
        if (len) {
            memcpy(out + o, s + i, len);
            o += len, i += len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3, i++;
        }
    }
    out[o] = 0;
    *out_len = o;
    return out;
}
