/* For tests that need a GPU: NEED_GPU() skips the calling test, with the reason, when no GPU
 * can be used (none, no driver, or veil built without CUDA). */
#ifndef VEIL_CUDA_TESTUTIL_H
#define VEIL_CUDA_TESTUTIL_H

#include "base/err.h"
#include "cuda/cuda.h"
#include "test.h"

#include <stdio.h>

static char cuda_test_no_gpu[512];
#define NEED_GPU()                                                                              \
    do {                                                                                        \
        if (cuda_device_count() < 1) {                                                          \
            snprintf(cuda_test_no_gpu, sizeof cuda_test_no_gpu, "needs a GPU: %s", err_msg()); \
            SKIP(cuda_test_no_gpu);                                                             \
        }                                                                                       \
    } while (0)

#endif
