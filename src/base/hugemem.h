/* Large buffers the CPU walks through in small scattered pieces (the KV cache: a few KB per
 * layer and head in each block), backed by transparent huge pages where the kernel offers them.
 * With 4 KiB pages every such piece costs a TLB miss and starts the hardware prefetcher
 * cold; with 2 MiB pages a block's pieces share one TLB entry. Memory is zeroed, as mmap's. */
#ifndef VEIL_HUGEMEM_H
#define VEIL_HUGEMEM_H

#include <stddef.h>

/* bytes of zeroed memory aligned to 2 MiB, or NULL with err_msg() set. */
void *hugemem_alloc(size_t bytes);
/* Frees what hugemem_alloc(bytes) returned (the same bytes); NULL does nothing. */
void hugemem_free(void *p, size_t bytes);

#endif
