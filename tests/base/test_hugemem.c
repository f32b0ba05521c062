/* Huge-page buffers: aligned to 2 MiB, zeroed, writable to the last byte, freed without leaks
 * (ASan / the kernel would complain about a bad munmap length through a later mapping). */
#include "test.h"

#include "base/hugemem.h"

#include <stdint.h>

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
