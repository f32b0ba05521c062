/* A pool of worker threads created once and reused for every parallel step of the forward
 * pass (no thread creation per token). tpool_run() runs one function on all threads, the
 * caller included as thread 0, and returns when every thread has finished it. Workers spin
 * briefly between steps (steps of one token follow each other within microseconds) and then
 * sleep on a condition variable, so an idle pool costs no CPU. A job may also synchronise its
 * threads itself with tpool_barrier(), so that a sequence of dependent steps (a model layer)
 * runs as one tpool_run instead of one per step. */
#ifndef VEIL_THREADPOOL_H
#define VEIL_THREADPOOL_H

typedef struct tpool tpool;
typedef void (*tpool_fn)(void *arg, int ith, int nth);

/* n_threads in all, the caller included; <= 0 means tpool_cpu_count(). NULL + err. */
tpool *tpool_new(int n_threads);
void tpool_free(tpool *p);
int tpool_size(const tpool *p);
/* How long idle workers spin before sleeping (iterations; tests use 1 to exercise sleeping). */
void tpool_set_spin(tpool *p, int iters);
/* Runs fn(arg, i, n) for i in [0, n) with n = tpool_size(p), i = 0 on the calling thread.
 * Not reentrant: one tpool_run at a time per pool. */
void tpool_run(tpool *p, tpool_fn fn, void *arg);
/* Inside a job of tpool_run on p: returns once every thread of the pool has called it (each the
 * same number of times in the job), and what each wrote before is visible to all after. Every
 * thread of the job must call it, or the job never ends. No-op on a pool of one thread. */
void tpool_barrier(tpool *p);
/* The number of CPUs this process may run on (its affinity mask; at least 1). */
int tpool_cpu_count(void);

#endif
