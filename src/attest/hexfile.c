/* Reader of hex-per-line files; see hexfile.h. */
#include "attest/hexfile.h"

#include "base/err.h"
#include "base/hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strips the comment and the blanks around the value, in place. */
static char *trim_line(char *line) {
    char *hash = strchr(line, '#'), *s = line, *e;
    if (hash) *hash = 0;
    while (*s == ' ' || *s == '\t') s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) e--;
    *e = 0;
    return s;
}

int hexfile_read(const char *path, int (*add)(void *ctx, const uint8_t value[32]), void *ctx) {
    FILE *f = fopen(path, "re");
    char *line = NULL, *s;
    size_t cap = 0;
    int lineno = 0, ret = -1;
    if (!f) return err_errno("%s", path);
    for (;;) {
        uint8_t value[32];
        ssize_t n = getline(&line, &cap, f);
        if (n < 0) break;
        lineno++;
        if (memchr(line, 0, (size_t)n)) {
            err_set("%s:%d: NUL byte (not a text file?)", path, lineno);
            goto fail;
        }
        s = trim_line(line);
        if (!*s) continue;
        if (hex_decode(s, value, 32, "value") != 0) {
            err_set("%s:%d: expected 64 hex digits (a 32-byte value) and an optional # comment",
                    path, lineno);
            goto fail;
        }
        if (add(ctx, value) != 0) {
            err_prefix("%s:%d", path, lineno);
            goto fail;
        }
    }
    if (ferror(f)) {
        err_errno("%s: read", path);
        goto fail;
    }
    ret = 0;
fail:
    free(line);
    fclose(f);
    return ret;
}
