/* The machine's read bandwidth, measured the same way each time: the limit one-token decode
 * (which reads every weight once) is judged against. `veil bench` and bench-kernels use it. */
#ifndef VEIL_MEMBW_H
#define VEIL_MEMBW_H

#include <stddef.h>

/* Read bandwidth in GB/s (1e9 bytes/s): n_threads threads sum a buffer of `bytes` (touched
 * once first, each thread its own part) on huge pages, as the CPU device's packed weights are
 * (4 KiB pages read 10-30 % slower here), best of `passes` passes. -1 with err_msg() on
 * failure (no memory, nothing to measure). */
double membw_read(int n_threads, size_t bytes, int passes);

#endif
