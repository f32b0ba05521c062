/* Growable byte buffer: doubling growth, sticky out-of-memory (see buf.h). */
#include "base/buf.h"

#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool buf_reserve(buf *b, size_t extra) {
    if (b->oom) return false;
    if (extra < b->cap - b->len) return true; /* room for extra bytes plus the NUL */
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len <= extra) {
        if (cap > ((size_t)-1) / 2) goto fail;
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (!d) goto fail;
    b->data = d;
    b->cap = cap;
    return true;
fail:
    b->oom = true;
    err_set("out of memory growing a buffer of %zu bytes", b->len);
    return false;
}

void buf_append(buf *b, const void *data, size_t len) {
    if (!buf_reserve(b, len)) return;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = 0;
}

void buf_puts(buf *b, const char *s) { buf_append(b, s, strlen(s)); }

void buf_printf(buf *b, const char *fmt, ...) {
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        buf_append(b, small, (size_t)n);
        return;
    }
    if (!buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_clear(buf *b) {
    b->len = 0;
    b->oom = false;
    if (b->data) b->data[0] = 0;
}

bool buf_failed(const buf *b) {
    if (b->oom) err_set("out of memory building a buffer");
    return b->oom;
}

char *buf_take(buf *b, size_t *len) {
    char *d;
    if (buf_failed(b)) {
        buf_free(b);
        return NULL;
    }
    if (!b->data) buf_append(b, "", 0);
    if (b->oom) {
        buf_free(b);
        return NULL;
    }
    d = b->data;
    if (len) *len = b->len;
    *b = (buf){0};
    return d;
}

void buf_free(buf *b) {
    free(b->data);
    *b = (buf){0};
}
