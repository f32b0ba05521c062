/* hugemem.h: mmap a 2 MiB-aligned region (over-map by 2 MiB, unmap the ends) and ask for huge
 * pages with madvise, which only advises: where the kernel has no transparent huge pages the
 * memory is ordinary pages and everything works the same. */
#include "base/hugemem.h"

#include "base/err.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

static size_t round_up(size_t n) { return (n + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE; }

void *hugemem_alloc(size_t bytes) {
    const size_t len = round_up(bytes ? bytes : 1);
    if (len < bytes || len + HUGE_PAGE < len) goto fail;
    uint8_t *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) goto fail;
    uint8_t *p = (uint8_t *)(((uintptr_t)raw + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE);
    if (p > raw) munmap(raw, (size_t)(p - raw));
    if (raw + len + HUGE_PAGE > p + len) munmap(p + len, (size_t)(raw + len + HUGE_PAGE - (p + len)));
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE);
#endif
    return p;
fail:
    err_set("out of memory for %zu bytes", bytes);
    return NULL;
}

int hugemem_populate(void *p, size_t bytes) {
    if (!p || !bytes) return 0;
    const size_t len = round_up(bytes);
#ifdef MADV_POPULATE_WRITE
    if (madvise(p, len, MADV_POPULATE_WRITE) == 0) return 0;
    if (errno != EINVAL) /* EINVAL: a kernel before 5.14; touch the pages instead */
        return err_set("cannot commit %zu bytes of memory: %s", len, strerror(errno));
#endif
    volatile uint8_t *b = p; /* a write fault gives the page its memory; the zero stays */
    for (size_t o = 0; o < len; o += 4096) b[o] = 0;
    return 0;
}

void hugemem_free(void *p, size_t bytes) {
    if (p) munmap(p, round_up(bytes ? bytes : 1));
}
