/* SwiGLU (swiglu.h): the reference kernel and the choice between it and the SIMD one
 * (swiglu_avx2.c). */
#include "tensor/swiglu.h"

#include "tensor/matmul.h"

#include <math.h>

void swiglu_scalar(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void swiglu(float *g, const float *u, int64_t n) {
    if (matmul_simd())
        swiglu_avx2(g, u, n);
    else
        swiglu_scalar(g, u, n);
}
