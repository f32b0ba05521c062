/* Thread pool: every thread runs each step exactly once, steps are ordered, pools of any size
 * (including 1) work, and many quick steps in a row (the decode pattern) lose nothing. */
#include "test.h"

#include "tensor/threadpool.h"

#include <stdatomic.h>

typedef struct step_arg {
    _Atomic int calls[64];
    _Atomic long sum;
    int step;
} step_arg;

static void step_fn(void *arg, int ith, int nth) {
    step_arg *a = arg;
    atomic_fetch_add(&a->calls[ith], 1);
    atomic_fetch_add(&a->sum, (long)a->step * nth + ith);
}

TEST(threadpool_runs_every_thread_every_step) {
    int sizes[] = {1, 2, 3, 8, 2, 3};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        tpool *p = tpool_new(sizes[s]);
        CHECK(p != NULL);
        if (!p) continue;
        if (s >= 4) tpool_set_spin(p, 1); /* workers sleep between steps: the wake-up path */
        int n = tpool_size(p);
        CHECK_EQ_INT(n, sizes[s]);
        step_arg a = {0};
        long want = 0;
        for (int step = 0; step < 2000; step++) {
            a.step = step;
            tpool_run(p, step_fn, &a);
            for (int i = 0; i < n; i++) want += (long)step * n + i;
        }
        for (int i = 0; i < n; i++) CHECK_EQ_INT(atomic_load(&a.calls[i]), 2000);
        CHECK_EQ_INT(atomic_load(&a.sum), want);
        tpool_free(p);
    }
    CHECK(tpool_cpu_count() >= 1);
}

typedef struct barrier_arg {
    tpool *p;
    int slot[64];   /* plain ints: the barrier alone must order these writes and reads */
    _Atomic int bad;
} barrier_arg;

/* Round k: every thread writes k to its slot, crosses the barrier, checks that every slot
 * holds k, crosses it again (so nobody writes k + 1 while another still checks k). */
static void barrier_fn(void *arg, int ith, int nth) {
    barrier_arg *a = arg;
    for (int k = 1; k <= 300; k++) {
        a->slot[ith] = k;
        tpool_barrier(a->p);
        for (int i = 0; i < nth; i++)
            if (a->slot[i] != k) atomic_fetch_add(&a->bad, 1);
        tpool_barrier(a->p);
    }
}

TEST(threadpool_barrier_orders_the_threads_of_a_job) {
    int sizes[] = {1, 2, 3, 5, 2};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        tpool *p = tpool_new(sizes[s]);
        CHECK(p != NULL);
        if (!p) continue;
        if (s == 4) tpool_set_spin(p, 1);
        for (int job = 0; job < 20; job++) {
            barrier_arg a = {.p = p};
            tpool_run(p, barrier_fn, &a);
            CHECK_EQ_INT(atomic_load(&a.bad), 0);
            for (int i = 0; i < sizes[s]; i++) CHECK_EQ_INT(a.slot[i], 300);
        }
        tpool_free(p);
    }
}
