/* String-keyed open-addressing hash map; see strmap.h. A slot keeps the key's pointer, length
 * and the top bits of its hash, so most mismatches are rejected without touching the key. */
#include "base/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

typedef struct slot {
    const char *key; /* NULL: empty */
    uint32_t len;
    uint32_t tag; /* high 32 bits of the hash */
    int32_t val;
} slot;

struct strmap {
    slot *slots;
    size_t cap; /* power of two */
    size_t count;
};

uint64_t strmap_hash(const void *key, size_t len) {
    const unsigned char *p = key;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (len * 0xC2B2AE3D27D4EB4Full);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ (w * 0x87C37B91114253D5ull)) * 0x4CF5AD432745937Full;
        h ^= h >> 31;
        p += 8, len -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, len);
    h = (h ^ (tail * 0x87C37B91114253D5ull)) * 0x4CF5AD432745937Full;
    /* murmur3's finalizer: every input bit reaches the low bits used for the index. */
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return h;
}

static size_t cap_for(size_t n) {
    size_t cap = 16;
    while (cap / 10 * 7 < n) cap *= 2;
    return cap;
}

strmap *strmap_new(size_t expected) {
    strmap *m = calloc(1, sizeof *m);
    if (!m) goto fail;
    m->cap = cap_for(expected);
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) goto fail;
    return m;
fail:
    free(m);
    err_set("strmap: out of memory for %zu keys", expected);
    return NULL;
}

void strmap_free(strmap *m) {
    if (!m) return;
    free(m->slots);
    free(m);
}

static slot *find_slot(slot *slots, size_t cap, const char *key, size_t len, uint64_t h) {
    size_t i = (size_t)h & (cap - 1);
    uint32_t tag = (uint32_t)(h >> 32);
    for (;; i = (i + 1) & (cap - 1)) {
        slot *s = &slots[i];
        if (!s->key) return s;
        if (s->tag == tag && s->len == len && memcmp(s->key, key, len) == 0) return s;
    }
}

static int grow(strmap *m) {
    size_t cap = m->cap * 2;
    slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return err_set("strmap: out of memory growing to %zu slots", cap);
    for (size_t i = 0; i < m->cap; i++) {
        const slot *s = &m->slots[i];
        if (s->key) *find_slot(slots, cap, s->key, s->len, strmap_hash(s->key, s->len)) = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int strmap_put(strmap *m, const char *key, size_t len, int32_t val) {
    if (len > UINT32_MAX) return err_set("strmap: key of %zu bytes is too long", len);
    if (!key) key = ""; /* memcmp may not be handed NULL, even for 0 bytes */
    if ((m->count + 1) * 10 > m->cap * 7 && grow(m) < 0) return -1;
    uint64_t h = strmap_hash(key, len);
    slot *s = find_slot(m->slots, m->cap, key, len, h);
    if (!s->key) {
        *s = (slot){key, (uint32_t)len, (uint32_t)(h >> 32), val};
        m->count++;
    } else {
        s->val = val;
    }
    return 0;
}

bool strmap_get(const strmap *m, const char *key, size_t len, int32_t *val) {
    if (len > UINT32_MAX) return false;
    if (!key) key = "";
    const slot *s = find_slot(m->slots, m->cap, key, len, strmap_hash(key, len));
    if (!s->key) return false;
    if (val) *val = s->val;
    return true;
}

size_t strmap_count(const strmap *m) { return m->count; }
