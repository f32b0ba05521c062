/* SwiGLU on AVX2 + FMA (swiglu.h): 8 elements at a time, e^-g by tensor/simd_exp.h, then the
 * same division and product as the scalar kernel (gates below -88, where the scalar kernel's
 * expf overflows, give its signed 0). The Makefile compiles *_avx2.c with -mavx2
 * -mfma -mf16c; swiglu.c calls this only when matmul_simd(). */
#include "tensor/swiglu.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "tensor/simd_exp.h"

void swiglu_avx2(float *g, const float *u, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f), low = _mm256_set1_ps(-88.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, exp8(_mm256_xor_ps(x, sign))));
        /* below -88 exp8 saturates at e^88 (expf overflows to inf): silu is a signed 0 there */
        s = _mm256_blendv_ps(s, _mm256_and_ps(x, sign), _mm256_cmp_ps(x, low, _CMP_LT_OQ));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    if (i < n) { /* the tail through the same vector code, so no element depends on where it lies */
        float x[8] = {0}, y[8] = {0};
        for (int64_t k = i; k < n; k++) x[k - i] = g[k], y[k - i] = u[k];
        swiglu_avx2(x, y, 8);
        for (int64_t k = i; k < n; k++) g[k] = x[k - i];
    }
}

#else /* built without AVX2: swiglu.c never calls this */

void swiglu_avx2(float *g, const float *u, int64_t n) { swiglu_scalar(g, u, n); }

#endif
