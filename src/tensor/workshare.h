/* Sharing the items of one parallel step (row chunks of a matrix product) among the threads of
 * a pool job so that no thread waits while another still has work: each thread starts with an
 * equal, consecutive share and takes it from the front, one item at a time; a thread done with
 * its own takes items from the back of the others' shares. On a machine whose cores are also
 * busy with other work, the threads of a step finish their equal shares at different times
 * (and one may lose its core for a while); taking over the rest keeps the other going instead
 * of waiting at the next barrier.
 *
 * Use: inside a tpool job, every thread calls workshare_begin(w, ith, n) for the step, then
 * workshare_next(w, ith) until it returns -1, then the threads meet at a barrier before the
 * next step begins. An item is handed out exactly once. Which thread gets which item depends on
 * timing, so a step's items must not depend on who computes them (matrix rows do not). */
#ifndef VEIL_WORKSHARE_H
#define VEIL_WORKSHARE_H

#include <stdint.h>

typedef struct workshare workshare;

/* For n_threads threads (>= 1). NULL + err. */
workshare *workshare_new(int n_threads);
void workshare_free(workshare *w);
/* Thread ith's share of a step of n items (0 <= n < 2^31): [n ith / nth, n (ith + 1) / nth). */
void workshare_begin(workshare *w, int ith, int64_t n);
/* The first item of thread ith's share of n items (what workshare_begin hands it first). */
int64_t workshare_first(const workshare *w, int ith, int64_t n);
/* The same with a share of the caller's choosing, [begin, end) (items of unequal cost split
 * by cost): the threads' shares must not overlap, and their union is the step's items. */
void workshare_begin_range(workshare *w, int ith, int64_t begin, int64_t end);
/* The next item for thread ith, or -1 when every item of the step has been handed out. */
int64_t workshare_next(workshare *w, int ith);

#endif
