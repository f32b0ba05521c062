/* uint64-keyed open-addressing hash map; see u64map.h. An empty slot holds the key
 * UINT64_MAX, so a probe touches one cache line; that one key is kept outside the table. */
#include "base/u64map.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define EMPTY UINT64_MAX

typedef struct slot {
    uint64_t key, val;
} slot;

struct u64map {
    slot *slots;
    size_t cap; /* power of two */
    size_t count;
    bool has_empty_key; /* the key EMPTY itself, stored here */
    uint64_t empty_key_val;
};

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}

static slot *alloc_table(size_t cap) {
    slot *s = malloc(cap * sizeof *s);
    if (!s) {
        err_set("u64map: out of memory for %zu slots", cap);
        return NULL;
    }
    memset(s, 0xFF, cap * sizeof *s);
    return s;
}

u64map *u64map_new(size_t expected) {
    size_t cap = 16;
    u64map *m = calloc(1, sizeof *m);
    if (!m) {
        err_set("u64map: out of memory");
        return NULL;
    }
    while (cap / 10 * 7 < expected) cap *= 2;
    m->slots = alloc_table(cap);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    m->cap = cap;
    return m;
}

void u64map_free(u64map *m) {
    if (!m) return;
    free(m->slots);
    free(m);
}

static slot *find_slot(slot *slots, size_t cap, uint64_t key) {
    size_t i = (size_t)mix(key) & (cap - 1);
    while (slots[i].key != EMPTY && slots[i].key != key) i = (i + 1) & (cap - 1);
    return &slots[i];
}

static int grow(u64map *m) {
    size_t cap = m->cap * 2;
    slot *slots = alloc_table(cap);
    if (!slots) return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key != EMPTY) *find_slot(slots, cap, m->slots[i].key) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int u64map_add(u64map *m, uint64_t key, uint64_t val, bool replace) {
    if (key == EMPTY) {
        int added = !m->has_empty_key;
        if (added || replace) m->empty_key_val = val;
        m->count += (size_t)added;
        m->has_empty_key = true;
        return added;
    }
    if ((m->count + 1) * 10 > m->cap * 7 && grow(m) < 0) return -1;
    slot *s = find_slot(m->slots, m->cap, key);
    if (s->key == EMPTY) {
        *s = (slot){key, val};
        m->count++;
        return 1;
    }
    if (replace) s->val = val;
    return 0;
}

bool u64map_get(const u64map *m, uint64_t key, uint64_t *val) {
    if (key == EMPTY) {
        if (m->has_empty_key && val) *val = m->empty_key_val;
        return m->has_empty_key;
    }
    const slot *s = find_slot(m->slots, m->cap, key);
    if (s->key == EMPTY) return false;
    if (val) *val = s->val;
    return true;
}

size_t u64map_count(const u64map *m) { return m->count; }

/* Removal with backward shift: later entries of the probe run move up into the hole, so
 * lookups never need tombstones. */
bool u64map_del(u64map *m, uint64_t key) {
    if (key == EMPTY) {
        bool had = m->has_empty_key;
        m->count -= (size_t)had;
        m->has_empty_key = false;
        return had;
    }
    slot *s = find_slot(m->slots, m->cap, key);
    if (s->key == EMPTY) return false;
    size_t hole = (size_t)(s - m->slots), mask = m->cap - 1;
    for (size_t i = (hole + 1) & mask; m->slots[i].key != EMPTY; i = (i + 1) & mask) {
        size_t home = (size_t)mix(m->slots[i].key) & mask;
        /* the entry at i may fill the hole only if its home is not in (hole, i] cyclically */
        bool movable = hole <= i ? (home <= hole || home > i) : (home <= hole && home > i);
        if (movable) {
            m->slots[hole] = m->slots[i];
            hole = i;
        }
    }
    m->slots[hole].key = EMPTY;
    m->count--;
    return true;
}
