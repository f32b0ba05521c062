/* e^x on 8 floats at once (AVX2 + FMA), shared by the kernels that need a vectorised exp: the
 * attention softmax (model/attention_simd.h) and SwiGLU (tensor/swiglu_avx2.c). Include only
 * from files compiled with AVX2 and FMA (*_avx2.c, *_avx512.c) and inside their feature checks. */
#ifndef VEIL_SIMD_EXP_H
#define VEIL_SIMD_EXP_H

#include <immintrin.h>

/* e^x per lane (Cephes expf): x clamped to [-88.376, 88], x = n ln2 + r with n = floor(x log2e +
 * 1/2) and ln2 in two parts, e^r by a degree-7 polynomial, times 2^n built in the exponent
 * field (n = -127 gives exponent field 0: the result is 0). */
static inline __attribute__((always_inline)) __m256 exp8(__m256 x) {
    /* constants first: min and max return their second operand for NaN, so NaN stays NaN */
    x = _mm256_min_ps(_mm256_set1_ps(88.0f), x);
    x = _mm256_max_ps(_mm256_set1_ps(-88.3762626647949f), x);
    __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

#endif
