/* SwiGLU's activation, g = silu(g) * u = g / (1 + e^-g) * u element by element: the gated
 * half of a Llama-style feed-forward layer, applied to each row chunk of the gate and up
 * products as soon as it is computed (model/forward.c).
 *
 * The kernel follows the matmul backend (tensor/matmul.h): on a SIMD one, 8 elements at a time
 * with the vectorised exp of tensor/simd_exp.h (about 2 ulp from expf); on the scalar one,
 * libm's expf (the reference). Either way an element's result depends only on its own g and u,
 * so a token's values do not depend on the batch or the thread that computes them. */
#ifndef VEIL_SWIGLU_H
#define VEIL_SWIGLU_H

#include <stdint.h>

void swiglu(float *g, const float *u, int64_t n);

/* The two kernels, for tests that compare them; swiglu_avx2 only when matmul_simd(). */
void swiglu_scalar(float *g, const float *u, int64_t n);
void swiglu_avx2(float *g, const float *u, int64_t n);

#endif
