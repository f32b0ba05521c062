/* uint64-keyed open-addressing hash map; see u64map.h. Occupancy is kept in a separate bit
 * per slot so that every key and value, 0 and UINT64_MAX included, can be stored. */
#include "base/u64map.h"

#include <stdlib.h>

#include "base/err.h"

typedef struct slot {
    uint64_t key, val;
} slot;

struct u64map {
    slot *slots;
    unsigned char *used;
    size_t cap; /* power of two */
    size_t count;
};

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}

static int alloc_table(u64map *m, size_t cap) {
    m->slots = malloc(cap * sizeof *m->slots);
    m->used = calloc(cap, 1);
    if (!m->slots || !m->used) {
        free(m->slots);
        free(m->used);
        return err_set("u64map: out of memory for %zu slots", cap);
    }
    m->cap = cap;
    return 0;
}

u64map *u64map_new(size_t expected) {
    size_t cap = 16;
    u64map *m = calloc(1, sizeof *m);
    if (!m) {
        err_set("u64map: out of memory");
        return NULL;
    }
    while (cap / 2 < expected) cap *= 2;
    if (alloc_table(m, cap) < 0) {
        free(m);
        return NULL;
    }
    return m;
}

void u64map_free(u64map *m) {
    if (!m) return;
    free(m->slots);
    free(m->used);
    free(m);
}

static size_t find_slot(const u64map *m, uint64_t key) {
    size_t i = (size_t)mix(key) & (m->cap - 1);
    while (m->used[i] && m->slots[i].key != key) i = (i + 1) & (m->cap - 1);
    return i;
}

static int grow(u64map *m) {
    u64map old = *m;
    if (alloc_table(m, old.cap * 2) < 0) {
        *m = old;
        return -1;
    }
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.used[i]) continue;
        size_t j = find_slot(m, old.slots[i].key);
        m->slots[j] = old.slots[i];
        m->used[j] = 1;
    }
    free(old.slots);
    free(old.used);
    return 0;
}

int u64map_put(u64map *m, uint64_t key, uint64_t val) {
    if ((m->count + 1) * 2 > m->cap && grow(m) < 0) return -1;
    size_t i = find_slot(m, key);
    if (!m->used[i]) {
        m->used[i] = 1;
        m->slots[i].key = key;
        m->count++;
    }
    m->slots[i].val = val;
    return 0;
}

bool u64map_get(const u64map *m, uint64_t key, uint64_t *val) {
    size_t i = find_slot(m, key);
    if (!m->used[i]) return false;
    if (val) *val = m->slots[i].val;
    return true;
}

size_t u64map_count(const u64map *m) { return m->count; }
