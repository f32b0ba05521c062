/* The KV block manager behind the scheduler: a pool of MODEL_KV_BLOCK-position blocks with
 * reference counts, and a prefix cache over full blocks.
 *
 * A full block is identified by its chain hash: hash(parent block's chain hash, its tokens).
 * Blocks registered under a chain hash can be found again by a later prompt that starts with
 * the same tokens; entries verify parent hash and tokens, so a hash collision can never hand
 * out the wrong KV. Blocks nobody references but the cache holds sit in an LRU list and are
 * evicted (oldest first) when a fresh block is needed. Not thread-safe: the engine thread
 * owns it. */
#ifndef VEIL_KVCACHE_H
#define VEIL_KVCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/device.h"
#include "model/forward.h"

typedef struct kvcache kvcache;

/* n_blocks of storage for model m on device d (NULL = the CPU), elements of `type` (a GPU
 * keeps its own element type for now). NULL + err_msg(). */
kvcache *kvcache_new(const model *m, device *d, int32_t n_blocks, model_kv_type type);
void kvcache_free(kvcache *c);
model_kv *kvcache_storage(kvcache *c);

/* Blocks that kvcache_alloc could hand out now (free + evictable). */
int32_t kvcache_available(const kvcache *c);
int32_t kvcache_total(const kvcache *c);
/* Blocks held only by the cache (evictable). */
int32_t kvcache_cached_only(const kvcache *c);

/* A fresh block with reference count 1 (evicting an LRU cached block if needed), or -1. */
int32_t kvcache_alloc(kvcache *c);
/* Drops one reference; at zero the block goes to the LRU list if cached, else is freed. */
void kvcache_release(kvcache *c, int32_t block);

/* Chain hash of a full block of tokens after a parent chain hash (0 for the first block). */
uint64_t kvcache_chain_hash(uint64_t parent, const int32_t *tokens);
/* Finds the block holding exactly these tokens after `parent`; takes a reference. -1 if none. */
int32_t kvcache_lookup(kvcache *c, uint64_t parent, const int32_t *tokens);
/* Registers a full, computed block (the caller holds a reference) under its chain hash. If an
 * equal block is already registered, nothing changes. */
void kvcache_register(kvcache *c, int32_t block, uint64_t parent, const int32_t *tokens);
/* Drops every cached-only block (for tests and for --no-prefix-cache). */
void kvcache_clear(kvcache *c);

#endif
