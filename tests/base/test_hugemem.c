/* Huge-page buffers: aligned to 2 MiB, zeroed, writable to the last byte, freed without leaks
 * (ASan / the kernel would complain about a bad munmap length through a later mapping). */
#include "test.h"

#include "base/hugemem.h"

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

TEST(hugemem_alloc_is_aligned_zeroed_and_writable) {
    static const size_t sizes[] = {1, 4096, (size_t)2 << 20, ((size_t)3 << 20) + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *p = hugemem_alloc(sizes[i]);
        CHECK(p != NULL);
        if (!p) continue;
        CHECK_EQ_INT((uintptr_t)p % ((uintptr_t)2 << 20), 0);
        CHECK_EQ_INT(p[0], 0);
        CHECK_EQ_INT(p[sizes[i] - 1], 0);
        p[0] = 1;
        p[sizes[i] - 1] = 2;
        CHECK_EQ_INT(p[sizes[i] - 1], 2);
        CHECK_EQ_INT(p[0], sizes[i] == 1 ? 2 : 1);
        hugemem_free(p, sizes[i]);
    }
    hugemem_free(NULL, 10);
}

/* Resident bytes of this process (/proc/self/statm), or 0 where there is no such file. */
static size_t resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f) return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

TEST(hugemem_populate_commits_every_page_and_keeps_zeros) {
    const size_t bytes = ((size_t)16 << 20) + 4096;
    if (resident_bytes() == 0) SKIP("no /proc/self/statm");
    uint8_t *p = hugemem_alloc(bytes);
    CHECK(p != NULL);
    if (!p) return;
    const size_t before = resident_bytes();
    CHECK_EQ_INT(hugemem_populate(p, bytes), 0);
    CHECK_MSG(resident_bytes() >= before + bytes, "resident %zu bytes before, %zu after committing %zu",
              before, resident_bytes(), bytes);
    size_t nonzero = 0;
    for (size_t i = 0; i < bytes; i += 512) nonzero += p[i] != 0;
    CHECK_EQ_INT(nonzero, 0);
    CHECK_EQ_INT(hugemem_populate(NULL, 0), 0);
    hugemem_free(p, bytes);
}
