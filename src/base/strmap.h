/* Hash map from byte strings to int32 values (open addressing, linear probing, grows at 70%
 * full). Keys are NOT copied: they must stay valid and unchanged while the map lives. Built
 * once and then only read, a map may be read from many threads at once. */
#ifndef VEIL_STRMAP_H
#define VEIL_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct strmap strmap;

/* `expected` sizes the table so that this many keys fit without growing. NULL + err_msg(). */
strmap *strmap_new(size_t expected);
void strmap_free(strmap *m);
/* Inserts or replaces. 0, or -1 with err_msg() when out of memory. */
int strmap_put(strmap *m, const char *key, size_t len, int32_t val);
bool strmap_get(const strmap *m, const char *key, size_t len, int32_t *val);
size_t strmap_count(const strmap *m);
/* The hash the map uses (64-bit, not cryptographic); exported for other tables. */
uint64_t strmap_hash(const void *key, size_t len);

#endif
