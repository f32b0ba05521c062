/* UTF-8 helpers: strict decoding (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF), encoding, and repair of invalid input. Nothing here reads past the given length. */
#ifndef VEIL_UTF8_H
#define VEIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the well-formed sequence at s (n bytes available) and its code point in *cp
 * (cp may be NULL); 0 when s does not start one (n == 0, stray continuation byte, overlong,
 * surrogate, out of range, or truncated). */
size_t utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Writes the encoding of cp (must be <= U+10FFFF) to out; returns its length (1-4). */
size_t utf8_encode(uint32_t cp, char out[4]);
bool utf8_valid(const char *s, size_t n);
/* A malloc'd, NUL-terminated copy of s in which every byte that does not begin a well-formed
 * sequence is replaced by U+FFFD (one replacement per bad byte, as llama.cpp does). Length in
 * *out_len. NULL with err_msg() when out of memory. */
char *utf8_repair(const char *s, size_t n, size_t *out_len);

#endif
