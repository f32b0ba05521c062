/* Work share: every item of every step is handed out exactly once, whatever the thread count and
 * however unevenly the threads run (one sleeps a little now and then, so others take over its
 * share), with steps separated by a pool barrier as the forward pass does. */
#include "test.h"

#include "tensor/threadpool.h"
#include "tensor/workshare.h"

#include <stdatomic.h>
#include <time.h>

#define STEPS 200
#define MAX_ITEMS 300

typedef struct share_arg {
    tpool *p;
    workshare *w;
    _Atomic int taken[STEPS][MAX_ITEMS];
    _Atomic int bad;
    _Atomic int stolen; /* items computed by a thread other than their first owner */
} share_arg;

static void share_fn(void *arg, int ith, int nth) {
    share_arg *a = arg;
    for (int s = 0; s < STEPS; s++) {
        const int64_t n = (s * 37) % MAX_ITEMS; /* 0 included */
        if (s % 2) {
            workshare_begin(a->w, ith, n);
        } else { /* uneven shares: thread i's ends at n (i + 1)^2 / nth^2 */
            const int64_t nn = (int64_t)nth * nth;
            workshare_begin_range(a->w, ith, n * ith * ith / nn, n * (ith + 1) * (ith + 1) / nn);
        }
        for (int64_t i; (i = workshare_next(a->w, ith)) >= 0;) {
            if (i >= n) {
                atomic_fetch_add(&a->bad, 1);
                continue;
            }
            atomic_fetch_add(&a->taken[s][i], 1);
            if (s % 2 && (i < n * ith / nth || i >= n * (ith + 1) / nth)) atomic_fetch_add(&a->stolen, 1);
            if (ith == 1 && i % 16 == 0) nanosleep(&(struct timespec){0, 20000}, NULL);
        }
        tpool_barrier(a->p);
    }
}

TEST(workshare_hands_out_every_item_once) {
    static share_arg a;
    int sizes[] = {1, 2, 3, 5};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        memset(&a, 0, sizeof a);
        a.p = tpool_new(sizes[k]);
        a.w = workshare_new(sizes[k]);
        CHECK(a.p && a.w);
        if (!a.p || !a.w) {
            tpool_free(a.p);
            workshare_free(a.w);
            continue;
        }
        tpool_run(a.p, share_fn, &a);
        int wrong = 0;
        for (int s = 0; s < STEPS; s++)
            for (int i = 0; i < MAX_ITEMS; i++)
                wrong += atomic_load(&a.taken[s][i]) != (i < (s * 37) % MAX_ITEMS);
        CHECK_EQ_INT(wrong, 0);
        CHECK_EQ_INT(atomic_load(&a.bad), 0);
        /* thread 1 sleeps while the others have work left: they must have taken some of it */
        if (sizes[k] > 1) CHECK(atomic_load(&a.stolen) > 0);
        tpool_free(a.p);
        workshare_free(a.w);
    }
}

/* workshare_first names the item workshare_begin hands a thread first (what the forward pass
 * prefetches ahead of a step), whenever the thread's share is not empty. */
TEST(workshare_first_is_first_handed_out) {
    for (int nth = 1; nth <= 5; nth++) {
        workshare *w = workshare_new(nth);
        CHECK(w != NULL);
        if (!w) continue;
        for (int64_t n = 0; n <= 13; n++)
            for (int ith = 0; ith < nth; ith++) {
                for (int j = 0; j < nth; j++) workshare_begin(w, j, n);
                const int64_t first = workshare_first(w, ith, n), end = workshare_first(w, ith + 1, n);
                if (first == end) continue; /* an empty share: the thread would take others' items */
                const int64_t got = workshare_next(w, ith);
                CHECK_MSG(got == first, "%d threads, %d items, thread %d: first %lld, handed %lld", nth,
                          (int)n, ith, (long long)first, (long long)got);
            }
        workshare_free(w);
    }
}
