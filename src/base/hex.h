/* Hexadecimal text for binary values (hashes, keys, signatures). */
#ifndef VEIL_HEX_H
#define VEIL_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2n lowercase hex digits and a NUL into out (2n+1 bytes). */
void hex_encode(const uint8_t *src, size_t n, char *out);
/* Decodes exactly 2n hex digits (either case) from the NUL-terminated s into dst; -1 with
 * err_msg() naming `what` when s is not that. */
int hex_decode(const char *s, uint8_t *dst, size_t n, const char *what);

#endif
