/* libFuzzer target: config-file text (base/flagfile.h) of any bytes is parsed or rejected with a
 * message naming the file and line, never read past its end; what it accepts are well-formed
 * flags ("--name" or "--name=value", name of [a-z0-9-], value without control characters other
 * than tab and without outer blanks), and writing them back as "name value" lines and parsing
 * again gives the same flags; checked against a getopt table it is rejected or gives the same
 * flags. Input: the file's bytes. */
#include "base/err.h"
#include "base/flagfile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void free_flags(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void check_flag(const char *f) {
    size_t name_len, i;
    if (strncmp(f, "--", 2) != 0) abort();
    name_len = strcspn(f + 2, "=");
    if (name_len == 0 || f[2] == '-') abort();
    for (i = 2; i < 2 + name_len; i++)
        if (!((f[i] >= 'a' && f[i] <= 'z') || (f[i] >= '0' && f[i] <= '9') || f[i] == '-')) abort();
    if (f[i] == '=') {
        const char *val = f + i + 1;
        size_t len = strlen(val);
        if (len == 0 || val[0] == ' ' || val[0] == '\t' || val[len - 1] == ' ' || val[len - 1] == '\t')
            abort();
        for (size_t k = 0; k < len; k++)
            if (((unsigned char)val[k] < 0x20 && val[k] != '\t') || val[k] == 0x7f) abort();
    }
}

/* a table with each kind of flag, some of them prefixes of others */
static const struct option opts[] = {
    {"a", required_argument, 0, 1}, {"ab", no_argument, 0, 2}, {"b", optional_argument, 0, 3},
    {"proxy", required_argument, 0, 4}, {"tee", required_argument, 0, 5},
    {"allow-unverified-tdx", no_argument, 0, 6}, {0, 0, 0, 0}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char **v = NULL, **w = NULL, *text, *p;
    size_t n = 0, cap = 0, m = 0, wcap = 0, text_len = 0;
    /* a copy of exactly `size` bytes, so ASan catches a read past the end */
    char *copy = malloc(size ? size : 1);
    if (!copy) abort();
    memcpy(copy, data, size);
    if (flagfile_parse(copy, size, "fuzz", NULL, &v, &n, &cap) != 0) {
        if (strncmp(err_msg(), "fuzz:", 5) != 0) abort();
        free_flags(v, n);
        free(copy);
        return 0;
    }
    /* checked against a getopt table: rejected (naming the line), or the same flags */
    if (flagfile_parse(copy, size, "fuzz", opts, &w, &m, &wcap) != 0) {
        if (strncmp(err_msg(), "fuzz:", 5) != 0) abort();
    } else {
        if (m != n) abort();
        for (size_t i = 0; i < n; i++)
            if (strcmp(v[i], w[i]) != 0) abort();
    }
    free_flags(w, m);
    w = NULL;
    m = wcap = 0;
    free(copy);
    for (size_t i = 0; i < n; i++) {
        check_flag(v[i]);
        text_len += strlen(v[i]) + 1;
    }
    if (!(text = malloc(text_len + 1))) abort();
    p = text;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]) - 2;
        memcpy(p, v[i] + 2, len);
        char *eq = memchr(p, '=', len);
        if (eq) *eq = ' ';
        p += len;
        *p++ = '\n';
    }
    if (flagfile_parse(text, (size_t)(p - text), "again", NULL, &w, &m, &wcap) != 0 || m != n) abort();
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], w[i]) != 0) abort();
    free(text);
    free_flags(v, n);
    free_flags(w, m);
    return 0;
}
