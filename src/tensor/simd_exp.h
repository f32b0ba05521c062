/* e^x on 8 floats at once (AVX2 + FMA), and on 16 in files compiled for AVX-512, shared by the
 * kernels that need a vectorised exp: the attention softmax (model/attention_simd.h) and SwiGLU
 * (tensor/swiglu_avx2.c). Include only from files compiled with AVX2 and FMA (*_avx2.c,
 * *_avx512.c) and inside their feature checks. */
#ifndef VEIL_SIMD_EXP_H
#define VEIL_SIMD_EXP_H

#include <immintrin.h>

/* e^x per lane (Cephes expf): x clamped to [-88.376, 88], x = n ln2 + r with n = floor(x log2e +
 * 1/2) and ln2 in two parts, e^r by a degree-7 polynomial, times 2^n built in the exponent
 * field (n = -127 gives exponent field 0: the result is 0). One body for both widths (P: the
 * intrinsics' prefix), so a lane of exp16 computes exactly what a lane of exp8 does. Constants
 * first in min and max: they return their second operand for NaN, so NaN stays NaN. */
#define SIMD_EXP(NAME, VF, VI, P, FLOOR, AS_PS)                                                    \
    static inline __attribute__((always_inline)) VF NAME(VF x) {                                   \
        x = P##_min_ps(P##_set1_ps(88.0f), x);                                                     \
        x = P##_max_ps(P##_set1_ps(-88.3762626647949f), x);                                        \
        VF n = FLOOR(P##_fmadd_ps(x, P##_set1_ps(1.44269504088896341f), P##_set1_ps(0.5f)));       \
        VF r = P##_fnmadd_ps(n, P##_set1_ps(0.693359375f), x);                                     \
        r = P##_fnmadd_ps(n, P##_set1_ps(-2.12194440e-4f), r);                                     \
        VF y = P##_set1_ps(1.9875691500e-4f);                                                      \
        y = P##_fmadd_ps(y, r, P##_set1_ps(1.3981999507e-3f));                                     \
        y = P##_fmadd_ps(y, r, P##_set1_ps(8.3334519073e-3f));                                     \
        y = P##_fmadd_ps(y, r, P##_set1_ps(4.1665795894e-2f));                                     \
        y = P##_fmadd_ps(y, r, P##_set1_ps(1.6666665459e-1f));                                     \
        y = P##_fmadd_ps(y, r, P##_set1_ps(5.0000001201e-1f));                                     \
        y = P##_fmadd_ps(y, P##_mul_ps(r, r), P##_add_ps(r, P##_set1_ps(1.0f)));                   \
        VI e = P##_slli_epi32(P##_add_epi32(P##_cvtps_epi32(n), P##_set1_epi32(127)), 23);         \
        return P##_mul_ps(y, AS_PS(e));                                                            \
    }

SIMD_EXP(exp8, __m256, __m256i, _mm256, _mm256_floor_ps, _mm256_castsi256_ps)
#ifdef __AVX512F__
SIMD_EXP(exp16, __m512, __m512i, _mm512, _mm512_floor_ps, _mm512_castsi512_ps)
#endif

#endif
