/* Reader of hex-per-line files; see hexfile.h. */
#include "attest/hexfile.h"

#include "base/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hex_digit(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

void hexfile_format(const uint8_t value[32], char hex[65]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[value[i] >> 4];
        hex[2 * i + 1] = digits[value[i] & 15];
    }
    hex[64] = 0;
}

/* Parses one line in place; 1 = a value, 0 = nothing on it, -1 = bad. */
static int parse_line(char *line, uint8_t value[32]) {
    char *hash = strchr(line, '#'), *s = line, *e;
    if (hash) *hash = 0;
    while (*s == ' ' || *s == '\t') s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) e--;
    if (e == s) return 0;
    if (e - s != 64) return -1;
    for (int i = 0; i < 32; i++) {
        int hi = hex_digit((unsigned char)s[2 * i]), lo = hex_digit((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        value[i] = (uint8_t)(hi << 4 | lo);
    }
    return 1;
}

int hexfile_read(const char *path, int (*add)(void *ctx, const uint8_t value[32]), void *ctx) {
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, ret = -1;
    if (!f) return err_errno("%s", path);
    for (;;) {
        uint8_t value[32];
        ssize_t n = getline(&line, &cap, f);
        int r;
        if (n < 0) break;
        lineno++;
        if (memchr(line, 0, (size_t)n)) {
            err_set("%s:%d: NUL byte (not a text file?)", path, lineno);
            goto fail;
        }
        r = parse_line(line, value);
        if (r < 0) {
            err_set("%s:%d: expected 64 hex digits (a 32-byte value) and an optional # comment",
                    path, lineno);
            goto fail;
        }
        if (r == 1 && add(ctx, value) != 0) {
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
