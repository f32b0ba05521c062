/* Whole-stream reads; see slurp.h. */
#include "base/slurp.h"

#include "base/err.h"

#include <stdlib.h>

char *slurp_stream(FILE *f, const char *name, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) goto oom;
    for (;;) {
        if (n + 1 >= cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) goto oom;
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        err_errno("reading %s", name);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
oom:
    free(buf);
    err_set("out of memory reading %s (%zu bytes so far)", name, n);
    return NULL;
}

char *slurp_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_errno("%s", path);
        return NULL;
    }
    char *buf = slurp_stream(f, path, len);
    fclose(f);
    return buf;
}
