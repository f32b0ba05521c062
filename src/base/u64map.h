/* Hash map from uint64 keys to uint64 values (open addressing, linear probing, grows at 70%
 * full). Read-only use from many threads at once is safe. */
#ifndef VEIL_U64MAP_H
#define VEIL_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct u64map u64map;

/* `expected` sizes the table so that this many keys fit without growing. NULL + err_msg(). */
u64map *u64map_new(size_t expected);
void u64map_free(u64map *m);
/* Inserts key -> val. When the key is already there its value is replaced if `replace`, else
 * kept. Returns 1 when the key is new, 0 when it was there, -1 with err_msg() when out of
 * memory. */
int u64map_add(u64map *m, uint64_t key, uint64_t val, bool replace);
bool u64map_get(const u64map *m, uint64_t key, uint64_t *val);
/* Removes key; returns whether it was there. */
bool u64map_del(u64map *m, uint64_t key);
size_t u64map_count(const u64map *m);

#endif
