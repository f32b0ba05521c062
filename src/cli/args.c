/* Strict numeric argument parsing; see args.h. */
#include "cli/args.h"

#include "engine/device.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool args_long(const char *flag, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "veil: %s expects an integer in [%lld, %lld], got '%s'\n", flag, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

bool args_u64(const char *flag, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *s == '-' || *end || errno) {
        fprintf(stderr, "veil: %s expects a non-negative integer, got '%s'\n", flag, s);
        return false;
    }
    *out = v;
    return true;
}

bool args_size(const char *flag, const char *s, uint64_t hi, uint64_t *out) {
    static const char units[] = "KMGT";
    char *end;
    int shift = 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end != s && *end) {
        const char *u = strchr(units, *end >= 'a' ? *end - 32 : *end);
        if (u && *u) {
            shift = 10 * (int)(u - units + 1);
            end++;
            if (*end == 'i' && end[1] == 'B') end += 2;
            else if (*end == 'B' || *end == 'b') end++;
        }
    }
    if (!*s || *s == '-' || end == s || *end || errno || (shift && v > (hi >> shift)) ||
        (v << shift) > hi) {
        fprintf(stderr, "veil: %s expects a size in bytes (e.g. 4096, 512M, 2G) up to %llu, got '%s'\n",
                flag, (unsigned long long)hi, s);
        return false;
    }
    *out = (uint64_t)v << shift;
    return true;
}

bool args_float(const char *flag, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "veil: %s expects a number in [%g, %g], got '%s'\n", flag, lo, hi, s);
        return false;
    }
    *out = (float)v;
    return true;
}

bool args_want_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return true;
    }
    return false;
}

bool args_hostport(const char *flag, const char *s, char *host, size_t cap, uint16_t *port) {
    const char *colon = strrchr(s, ':');
    const char *h = s, *h_end = colon;
    char what[80];
    long long p;
    if (!colon) goto bad;
    if (*s == '[') {
        h = s + 1;
        h_end = strchr(s, ']');
        if (!h_end || h_end + 1 != colon) goto bad;
    }
    if (h_end <= h || (size_t)(h_end - h) >= cap) goto bad;
    memcpy(host, h, (size_t)(h_end - h));
    host[h_end - h] = 0;
    snprintf(what, sizeof what, "%s port", flag);
    if (!args_long(what, colon + 1, 0, 65535, &p)) return false;
    *port = (uint16_t)p;
    return true;
bad:
    fprintf(stderr, "veil: %s expects HOST:PORT (e.g. 127.0.0.1:8080), got '%s'\n", flag, s);
    return false;
}

bool args_device(const char *s) {
    if (device_spec_valid(s)) return true;
    fprintf(stderr, "veil: --device expects cpu, cuda or cuda:N, got '%s'\n", s);
    return false;
}
