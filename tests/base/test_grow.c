/* grow(): doubling, keeping contents, and refusing sizes that overflow without losing data. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/grow.h"
#include "test.h"

TEST(grow_doubles_and_keeps_contents) {
    int *v = NULL;
    size_t cap = 0;
    CHECK_EQ_INT(grow(&v, &cap, 1, sizeof *v, 4, "ints"), 0);
    CHECK_EQ_INT((int)cap, 4);
    for (int i = 0; i < 4; i++) v[i] = i * 7;
    CHECK_EQ_INT(grow(&v, &cap, 4, sizeof *v, 4, "ints"), 0);
    CHECK_EQ_INT((int)cap, 4); /* enough room already: nothing changes */
    CHECK_EQ_INT(grow(&v, &cap, 9, sizeof *v, 4, "ints"), 0);
    CHECK_EQ_INT((int)cap, 16);
    for (int i = 0; i < 4; i++) CHECK_EQ_INT(v[i], i * 7);
    free(v);
}

TEST(grow_refuses_overflow_and_keeps_the_array) {
    uint64_t *v = NULL;
    size_t cap = 0;
    CHECK_EQ_INT(grow(&v, &cap, 3, sizeof *v, 2, "words"), 0);
    v[0] = 42;
    CHECK_EQ_INT(grow(&v, &cap, SIZE_MAX / 4, sizeof *v, 2, "words"), -1);
    CHECK(strstr(err_msg(), "words") != NULL);
    CHECK_EQ_INT((int)cap, 4);
    CHECK(v[0] == 42);
    free(v);
}
