/* Growing an array by doubling: the one place that does it, so every growable array in veil
 * (token lists, merge queues, tables being built) has the same overflow checks and the same
 * out-of-memory behaviour. */
#ifndef VEIL_GROW_H
#define VEIL_GROW_H

#include <stddef.h>

/* Makes room for at least `need` elements of `elem` bytes in the array *arr (a pointer to the
 * caller's T* variable) whose capacity is *cap, doubling from `first`. On failure returns -1
 * with err_msg() naming `what` and leaves the array and *cap as they were. */
int grow(void *arr, size_t *cap, size_t need, size_t elem, size_t first, const char *what);

#endif
