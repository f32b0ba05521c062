/* Large buffers backed by transparent huge pages where the kernel offers them: the KV cache,
 * which the CPU walks in small scattered pieces (a few KB per layer and head in each block;
 * with 4 KiB pages every piece costs a TLB miss and starts the hardware prefetcher cold, with
 * 2 MiB pages a block's pieces share one TLB entry), and the packed weights, which decode
 * streams (4 KiB pages made a one-thread tinyllama-1.1b decode 20-40 % slower). Memory is
 * zeroed, as mmap's. */
#ifndef VEIL_HUGEMEM_H
#define VEIL_HUGEMEM_H

#include <stddef.h>

/* bytes of zeroed memory aligned to 2 MiB, or NULL with err_msg() set. */
void *hugemem_alloc(size_t bytes);
/* Gives every page of what hugemem_alloc(bytes) returned its memory now (it stays zero): a
 * pool that serving fills piece by piece then takes no page faults, huge-page compaction or
 * zeroing while it serves, and memory the machine lacks shows at once rather than as the OOM
 * killer under load. 0, or -1 with err_msg() set. */
int hugemem_populate(void *p, size_t bytes);
/* Frees what hugemem_alloc(bytes) returned (the same bytes); NULL does nothing. */
void hugemem_free(void *p, size_t bytes);

#endif
