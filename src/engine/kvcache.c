/* KV block pool with reference counts and a verified prefix cache (kvcache.h). */
#include "engine/kvcache.h"

#include "base/err.h"
#include "base/u64map.h"

#include <stdlib.h>
#include <string.h>

typedef struct block {
    int32_t ref;
    bool registered;       /* in the hash map */
    uint64_t hash, parent;
    int32_t tokens[MODEL_KV_BLOCK];
    int32_t prev, next;    /* LRU links (registered, ref == 0) or free-list link (next) */
} block;

struct kvcache {
    model_kv *kv;
    block *b;
    int32_t n;
    int32_t free_head;     /* singly linked through next */
    int32_t n_free;
    int32_t lru_head, lru_tail; /* oldest at head */
    int32_t n_lru;
    u64map *map;           /* chain hash -> block */
};

kvcache *kvcache_new(const model *m, device *d, int32_t n_blocks, model_kv_type type) {
    kvcache *c = calloc(1, sizeof *c);
    if (!c) goto oom;
    c->n = n_blocks;
    c->b = calloc((size_t)n_blocks, sizeof *c->b);
    c->map = u64map_new((size_t)n_blocks);
    if (!c->b || !c->map) goto oom;
    c->kv = d ? device_kv_new(d, n_blocks, type) : model_kv_new(m, n_blocks, type);
    /* the whole budget now: blocks first written while serving would each stop every thread
     * of a step for page faults and zeroing (6.6 % of a 16-stream run's samples) */
    if (!c->kv || model_kv_populate(c->kv) != 0) {
        kvcache_free(c);
        return NULL;
    }
    for (int32_t i = 0; i < n_blocks; i++) c->b[i].next = i + 1 < n_blocks ? i + 1 : -1;
    c->free_head = 0;
    c->n_free = n_blocks;
    c->lru_head = c->lru_tail = -1;
    return c;
oom:
    kvcache_free(c);
    err_set("out of memory for a KV cache of %d blocks", n_blocks);
    return NULL;
}

void kvcache_free(kvcache *c) {
    if (!c) return;
    model_kv_free(c->kv);
    u64map_free(c->map);
    free(c->b);
    free(c);
}

model_kv *kvcache_storage(kvcache *c) { return c->kv; }
int32_t kvcache_available(const kvcache *c) { return c->n_free + c->n_lru; }
int32_t kvcache_total(const kvcache *c) { return c->n; }
int32_t kvcache_cached_only(const kvcache *c) { return c->n_lru; }

static void lru_unlink(kvcache *c, int32_t i) {
    block *b = &c->b[i];
    if (b->prev >= 0) c->b[b->prev].next = b->next; else c->lru_head = b->next;
    if (b->next >= 0) c->b[b->next].prev = b->prev; else c->lru_tail = b->prev;
    c->n_lru--;
}

static void lru_push(kvcache *c, int32_t i) {
    block *b = &c->b[i];
    b->prev = c->lru_tail;
    b->next = -1;
    if (c->lru_tail >= 0) c->b[c->lru_tail].next = i; else c->lru_head = i;
    c->lru_tail = i;
    c->n_lru++;
}

static void unregister(kvcache *c, int32_t i) {
    if (!c->b[i].registered) return;
    u64map_del(c->map, c->b[i].hash);
    c->b[i].registered = false;
}

int32_t kvcache_alloc(kvcache *c) {
    int32_t i;
    if (c->n_free) {
        i = c->free_head;
        c->free_head = c->b[i].next;
        c->n_free--;
    } else if (c->n_lru) {
        i = c->lru_head;
        lru_unlink(c, i);
        unregister(c, i);
    } else {
        return -1;
    }
    c->b[i].ref = 1;
    c->b[i].registered = false;
    return i;
}

void kvcache_release(kvcache *c, int32_t i) {
    block *b = &c->b[i];
    if (--b->ref > 0) return;
    if (b->registered) {
        lru_push(c, i);
    } else {
        b->next = c->free_head;
        c->free_head = i;
        c->n_free++;
    }
}

uint64_t kvcache_chain_hash(uint64_t parent, const int32_t *tokens) {
    /* FNV-1a over the parent hash and the token bytes, then a final mix */
    uint64_t h = 0xcbf29ce484222325ull ^ parent;
    for (int i = 0; i < MODEL_KV_BLOCK; i++) {
        uint32_t t = (uint32_t)tokens[i];
        for (int k = 0; k < 4; k++) {
            h ^= (t >> (8 * k)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    h ^= h >> 31;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

int32_t kvcache_lookup(kvcache *c, uint64_t parent, const int32_t *tokens) {
    uint64_t v;
    if (!u64map_get(c->map, kvcache_chain_hash(parent, tokens), &v)) return -1;
    block *b = &c->b[v];
    if (b->parent != parent || memcmp(b->tokens, tokens, sizeof b->tokens) != 0) return -1;
    if (b->ref++ == 0) lru_unlink(c, (int32_t)v);
    return (int32_t)v;
}

void kvcache_register(kvcache *c, int32_t i, uint64_t parent, const int32_t *tokens) {
    block *b = &c->b[i];
    uint64_t h = kvcache_chain_hash(parent, tokens);
    if (b->registered || u64map_get(c->map, h, NULL)) return;
    if (u64map_add(c->map, h, (uint64_t)i, false) < 0) return; /* out of memory: just not cached */
    b->registered = true;
    b->hash = h;
    b->parent = parent;
    memcpy(b->tokens, tokens, sizeof b->tokens);
}

void kvcache_clear(kvcache *c) {
    while (c->n_lru) {
        int32_t i = c->lru_head;
        lru_unlink(c, i);
        unregister(c, i);
        c->b[i].next = c->free_head;
        c->free_head = i;
        c->n_free++;
    }
}
