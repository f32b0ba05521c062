/* workshare.h. Each thread's remaining share is one 64-bit word, front << 32 | end, on a cache
 * line of its own: the owner takes the front item and a thief the last one with a
 * compare-and-swap of the whole word, so the two can never take the same item. Shares only
 * shrink during a step and every thread empties its own before leaving it, so when a step ends
 * every word says "empty": a thief that looks at a word its owner has not yet refilled for the
 * next step finds nothing to take, and the owner does that work itself. */
#include "tensor/workshare.h"

#include "base/err.h"

#include <stdatomic.h>
#include <stdlib.h>

typedef struct slot {
    _Alignas(64) _Atomic uint64_t range;
} slot;

struct workshare {
    int n;
    slot *slots;
};

workshare *workshare_new(int n_threads) {
    workshare *w = calloc(1, sizeof *w);
    if (!w || n_threads < 1) goto fail;
    w->n = n_threads;
    w->slots = aligned_alloc(_Alignof(slot), (size_t)n_threads * sizeof(slot));
    if (!w->slots) goto fail;
    for (int i = 0; i < n_threads; i++) atomic_init(&w->slots[i].range, 0);
    return w;
fail:
    free(w);
    err_set("out of memory for a work share of %d threads", n_threads);
    return NULL;
}

void workshare_free(workshare *w) {
    if (!w) return;
    free(w->slots);
    free(w);
}

static uint64_t pack(uint64_t front, uint64_t end) { return front << 32 | end; }

void workshare_begin_range(workshare *w, int ith, int64_t begin, int64_t end) {
    atomic_store_explicit(&w->slots[ith].range, pack((uint64_t)begin, (uint64_t)end), memory_order_relaxed);
}

int64_t workshare_first(const workshare *w, int ith, int64_t n) { return n * ith / w->n; }

void workshare_begin(workshare *w, int ith, int64_t n) {
    workshare_begin_range(w, ith, workshare_first(w, ith, n), workshare_first(w, ith + 1, n));
}

int64_t workshare_next(workshare *w, int ith) {
    for (int k = 0; k < w->n; k++) {
        const int j = (ith + k) % w->n;
        _Atomic uint64_t *r = &w->slots[j].range;
        uint64_t v = atomic_load_explicit(r, memory_order_relaxed);
        for (;;) {
            const uint64_t front = v >> 32, end = v & 0xffffffffu;
            if (front >= end) break;
            /* the owner takes from the front (its rows in order, as the prefetchers like),
             * a thief from the back */
            const uint64_t next = k == 0 ? pack(front + 1, end) : pack(front, end - 1);
            if (atomic_compare_exchange_weak_explicit(r, &v, next, memory_order_relaxed,
                                                      memory_order_relaxed))
                return (int64_t)(k == 0 ? front : end - 1);
        }
    }
    return -1;
}
