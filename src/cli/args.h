/* Strict parsing of command-line values: the whole string must be a number in range, otherwise
 * a message naming the flag goes to stderr and the parse fails. */
#ifndef VEIL_ARGS_H
#define VEIL_ARGS_H

#include <stdbool.h>
#include <stdint.h>

bool args_long(const char *flag, const char *s, long long lo, long long hi, long long *out);
bool args_u64(const char *flag, const char *s, uint64_t *out);
bool args_float(const char *flag, const char *s, double lo, double hi, float *out);
/* True when argv holds -h or --help (checked before anything else is parsed). */
bool args_want_help(int argc, char **argv);

#endif
