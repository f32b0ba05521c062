/* The read-bandwidth probe (tensor/membw.h): a finite positive figure, and a clear error for a
 * buffer or a pass count that measures nothing. */
#include "test.h"

#include "base/err.h"
#include "tensor/membw.h"

#include <math.h>

TEST(membw_measures) {
    double gbs = membw_read(2, 8u << 20, 2);
    CHECK_MSG(isfinite(gbs) && gbs > 0, "%g: %s", gbs, err_msg());
    CHECK(membw_read(1, 0, 1) == -1);
    CHECK(membw_read(1, 1 << 20, 0) == -1);
}
