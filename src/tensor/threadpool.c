/* Persistent worker threads with spin-then-sleep waiting (threadpool.h). A step is published by
 * bumping `generation`; workers that see the bump run their share and increment `done`.
 * tpool_barrier counts arrivals in `bar_count`; the last one to arrive resets it and bumps
 * `bar_phase`, which the others spin on (on a cache line of their own: the barrier is crossed
 * several times per model layer). */
#include "tensor/threadpool.h"

#include "base/err.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

/* Spin iterations before a worker sleeps: long enough to cover the gap between the steps of
 * one token, short enough that an idle server does not burn a core. */
#define SPIN_ITERS 200000

struct tpool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    _Atomic unsigned generation;
    _Atomic int done;
    _Atomic bool stop;
    _Atomic int sleepers;
    _Atomic int spin_iters;
    tpool_fn fn;
    void *arg;
    _Alignas(64) _Atomic int bar_count;
    _Atomic unsigned bar_phase;
};

typedef struct worker_arg {
    tpool *p;
    int ith;
} worker_arg;

/* Spins one iteration of a wait. Every YIELD_EVERY-th iteration gives the CPU away instead:
 * when threads outnumber free cores (a loaded machine, a CPU quota) the thread being waited for
 * may be the one this spinner keeps off the core, and pure spinning then costs whole time
 * slices per step (measured: 100x slower generation on one core). */
#define YIELD_EVERY 64
static inline void spin_wait(unsigned iter) {
    if (iter % YIELD_EVERY == 0) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *v) {
    worker_arg wa = *(worker_arg *)v;
    tpool *p = wa.p;
    unsigned seen = 0;
    free(v);
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load(&p->stop)) {
            if (++spins < atomic_load_explicit(&p->spin_iters, memory_order_relaxed)) {
                spin_wait((unsigned)spins);
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = g;
        p->fn(p->arg, wa.ith, p->n);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

int tpool_cpu_count(void) {
    /* the CPUs this process may run on (taskset, cgroup cpusets), not all the machine's */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

tpool *tpool_new(int n_threads) {
    tpool *p = calloc(1, sizeof *p);
    if (!p) goto oom;
    p->n = n_threads > 0 ? n_threads : tpool_cpu_count();
    p->spin_iters = SPIN_ITERS;
    if (p->n > 512) p->n = 512;
    p->threads = calloc((size_t)p->n, sizeof *p->threads);
    if (!p->threads) goto oom;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    for (int i = 1; i < p->n; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) goto oom_started;
        *wa = (worker_arg){p, i};
        if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n = i; /* the threads that did start are joined by tpool_free */
            tpool_free(p);
            err_set("cannot create worker thread %d", i);
            return NULL;
        }
        continue;
    oom_started:
        p->n = i;
        tpool_free(p);
        goto oom;
    }
    return p;
oom:
    if (p && !p->threads) free(p);
    err_set("out of memory for a thread pool");
    return NULL;
}

void tpool_free(tpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p);
}

int tpool_size(const tpool *p) { return p->n; }

void tpool_set_spin(tpool *p, int iters) { atomic_store(&p->spin_iters, iters > 0 ? iters : 1); }

void tpool_barrier(tpool *p) {
    if (p->n == 1) return;
    /* the phase is read before arriving: it cannot move until this thread has arrived */
    const unsigned phase = atomic_load_explicit(&p->bar_phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&p->bar_count, 1, memory_order_acq_rel) == p->n - 1) {
        /* the others see count 0 once they see the new phase (release), before they can arrive
         * at the next barrier */
        atomic_store_explicit(&p->bar_count, 0, memory_order_relaxed);
        atomic_store_explicit(&p->bar_phase, phase + 1, memory_order_release);
        return;
    }
    for (unsigned i = 1; atomic_load_explicit(&p->bar_phase, memory_order_acquire) == phase; i++)
        spin_wait(i);
}

void tpool_run(tpool *p, tpool_fn fn, void *arg) {
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_fetch_add(&p->generation, 1); /* seq_cst: pairs with the sleepers check (Dekker) */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    for (unsigned i = 1; atomic_load_explicit(&p->done, memory_order_acquire) != p->n - 1; i++)
        spin_wait(i);
}
