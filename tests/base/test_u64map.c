/* u64map against a plain array model: random inserts, replaces and deletes (deletion shifts
 * entries back, the subtle part), including the reserved all-ones key. */
#include "test.h"

#include "base/u64map.h"

#include <stdint.h>
#include <stdlib.h>

TEST(u64map_random_ops_match_model) {
    enum { KEYS = 512 };
    static uint64_t present[KEYS], vals[KEYS];
    u64map *m = u64map_new(4);
    uint64_t rng = 12345;
    CHECK(m != NULL);
    if (!m) return;
    memset(present, 0, sizeof present);
    for (int step = 0; step < 200000; step++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        int k = (int)((rng >> 33) % KEYS);
        /* keys collide in the low bits often, to exercise probe runs; key KEYS-1 is UINT64_MAX */
        uint64_t key = k == KEYS - 1 ? UINT64_MAX : (uint64_t)k << 40;
        switch ((rng >> 20) % 3) {
        case 0:
            CHECK_EQ_INT(u64map_add(m, key, (uint64_t)step, true), present[k] ? 0 : 1);
            present[k] = 1;
            vals[k] = (uint64_t)step;
            break;
        case 1:
            CHECK_EQ_INT(u64map_del(m, key), present[k]);
            present[k] = 0;
            break;
        default: {
            uint64_t v = 0;
            CHECK_EQ_INT(u64map_get(m, key, &v), present[k]);
            if (present[k]) CHECK(v == vals[k]);
        }
        }
    }
    size_t count = 0;
    for (int k = 0; k < KEYS; k++) {
        count += present[k];
        uint64_t key = k == KEYS - 1 ? UINT64_MAX : (uint64_t)k << 40, v;
        CHECK_EQ_INT(u64map_get(m, key, &v), present[k]);
    }
    CHECK_EQ_INT(u64map_count(m), count);
    u64map_free(m);
}
