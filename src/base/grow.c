/* Array growth by doubling (grow.h). */
#include "base/grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

int grow(void *arr, size_t *cap, size_t need, size_t elem, size_t first, const char *what) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : first;
    while (n < need) {
        if (n > SIZE_MAX / 2) goto fail;
        n *= 2;
    }
    if (n > SIZE_MAX / elem) goto fail;
    /* The caller's variable is a T*, not a void*: copy the pointer out and back in rather than
     * writing through a void** alias. */
    void *old;
    memcpy(&old, arr, sizeof old);
    void *p = realloc(old, n * elem);
    if (!p) goto fail;
    memcpy(arr, &p, sizeof p);
    *cap = n;
    return 0;
fail:
    return err_set("out of memory growing %s to %zu entries", what, need);
}
