/* Strict parsing of command-line values: the whole string must be a number in range, otherwise
 * a message naming the flag goes to stderr and the parse fails. */
#ifndef VEIL_ARGS_H
#define VEIL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool args_long(const char *flag, const char *s, long long lo, long long hi, long long *out);
bool args_u64(const char *flag, const char *s, uint64_t *out);
/* A byte count: digits with an optional K, M, G or T suffix (powers of 1024, case-insensitive,
 * an optional trailing B or iB: "512M", "1GiB", "4096"), at most hi. */
bool args_size(const char *flag, const char *s, uint64_t hi, uint64_t *out);
bool args_float(const char *flag, const char *s, double lo, double hi, float *out);
/* A --device value: cpu, cuda or cuda:N (engine/device.h). */
bool args_device(const char *s);
/* HOST:PORT or [HOST]:PORT (IPv6) into host (cap bytes) and port (0..65535). */
bool args_hostport(const char *flag, const char *s, char *host, size_t cap, uint16_t *port);
/* True when argv holds -h or --help (checked before anything else is parsed). */
bool args_want_help(int argc, char **argv);

#endif
