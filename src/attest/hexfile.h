/* Files of 32-byte values, one per line as 64 hex digits: allowed measurements and trusted
 * sim platform keys. '#' starts a comment; blank lines are skipped; anything else is an error
 * naming the file and line. */
#ifndef VEIL_HEXFILE_H
#define VEIL_HEXFILE_H

#include <stdint.h>

/* Calls add(ctx, value) for each value in order; stops at the first error (add returning -1
 * stops too, with its message). */
int hexfile_read(const char *path, int (*add)(void *ctx, const uint8_t value[32]), void *ctx);

#endif
