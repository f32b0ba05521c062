/* Config-file text to command-line flags (flagfile.h). */
#include "base/flagfile.h"

#include "base/err.h"
#include "base/grow.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

static bool is_name_char(char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && !first);
}

/* Checks a flag against opts: NULL when it fits, else why not (in msg, cap bytes). */
static const char *check_option(const struct option *opts, const char *flag, size_t len,
                                bool has_value, char *msg, size_t cap) {
    const struct option *o = opts;
    int shown = (int)(len < 64 ? len : 64);
    /* exact names only: getopt's abbreviations would break when a flag is added */
    while (o->name && !(strlen(o->name) == len && memcmp(o->name, flag, len) == 0)) o++;
    if (!o->name) snprintf(msg, cap, "unknown flag '%.*s'", shown, flag);
    else if (o->has_arg == required_argument && !has_value)
        snprintf(msg, cap, "'%.*s' needs a value ('%.*s VALUE')", shown, flag, shown, flag);
    else if (o->has_arg == no_argument && has_value)
        snprintf(msg, cap, "'%.*s' takes no value", shown, flag);
    else return NULL;
    return msg;
}

/* One line (without its '\n'), numbered line_no from 1: appends its flag, if it has one. */
static int parse_line(const char *s, size_t len, const char *name, size_t line_no,
                      const struct option *opts, char ***v, size_t *n, size_t *cap) {
    size_t start = 0, end, name_end, val;
    const char *why;
    char msg[160], *flag;
    if (len > 0 && s[len - 1] == '\r') len--;
    if (len > FLAGFILE_MAX_LINE) {
        why = "line longer than " STR(FLAGFILE_MAX_LINE) " bytes";
        goto fail;
    }
    /* a NUL would silently end the line (or the file) for every C string function after us */
    if (memchr(s, 0, len)) {
        why = "NUL byte";
        goto fail;
    }
    for (end = 0; end < len && !(s[end] == '#' && (end == 0 || is_blank(s[end - 1]))); end++) {}
    while (end > 0 && is_blank(s[end - 1])) end--;
    while (start < end && is_blank(s[start])) start++;
    if (start == end) return 0;
    for (name_end = start; name_end < end && !is_blank(s[name_end]); name_end++)
        if (!is_name_char(s[name_end], name_end == start)) {
            why = "a flag is its name (lower-case letters, digits and '-', no leading dashes), "
                  "then a space and its value, e.g. 'proxy 127.0.0.1:7002'";
            goto fail;
        }
    /* --config is expanded once, from the command line: a nested one would be ignored */
    if (name_end - start == 6 && memcmp(s + start, "config", 6) == 0) {
        why = "a config file cannot name another config file";
        goto fail;
    }
    for (val = name_end; val < end && is_blank(s[val]); val++) {}
    if (opts && (why = check_option(opts, s + start, name_end - start, val < end, msg, sizeof msg)))
        goto fail;
    for (size_t k = val; k < end; k++)
        if (((unsigned char)s[k] < 0x20 && s[k] != '\t') || s[k] == 0x7f) {
            why = "control character in the value";
            goto fail;
        }
    if (grow(v, cap, *n + 1, sizeof **v, 16, "config flags") != 0) return -1;
    if (!(flag = malloc(2 + (name_end - start) + 1 + (end - val) + 1))) {
        why = "out of memory";
        goto fail;
    }
    /* "--name=value" is one argument: getopt rejects a value given to a flag that takes none
     * instead of taking it for a stray positional argument */
    if (val < end)
        sprintf(flag, "--%.*s=%.*s", (int)(name_end - start), s + start, (int)(end - val), s + val);
    else
        sprintf(flag, "--%.*s", (int)(name_end - start), s + start);
    (*v)[(*n)++] = flag;
    return 0;
fail:
    return err_set("%s:%zu: %s", name, line_no, why);
}

int flagfile_parse(const char *text, size_t len, const char *name, const struct option *opts,
                   char ***v, size_t *n, size_t *cap) {
    size_t line_no = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (parse_line(text + pos, line_len, name, ++line_no, opts, v, n, cap) != 0) return -1;
        pos += line_len + 1;
    }
    return 0;
}
