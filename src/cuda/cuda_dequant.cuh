// Device-side decoding of the tensor types, 32 values at a time: the same expressions, in the
// same order, as src/tensor/quant.c (see the block layouts there), with explicit round-to-
// nearest multiplies so that nvcc does not fuse them and the values stay bit-identical to the
// CPU's. Chunk c of a row is values 32c..32c+31: one Q8_0 / Q4_0 block, one Q4_K sub-block,
// two Q6_K sub-blocks; for float types the last chunk of a row may be short (`valid`).
#ifndef VEIL_CUDA_DEQUANT_CUH
#define VEIL_CUDA_DEQUANT_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

extern "C" {
#include "tensor/qtype.h"
}

__device__ __forceinline__ float dq_f16(const uint8_t *p) {
    return __half2float(__ushort_as_half(*(const unsigned short *)p)); // 2-byte aligned: see cuda_plan.h
}

template <int TYPE>
__device__ __forceinline__ void dequant32(const uint8_t *row, int64_t c, int valid, float v[32]) {
    if (TYPE == QT_F32) {
        const float *r = (const float *)row + 32 * c;
#pragma unroll
        for (int j = 0; j < 32; j++) v[j] = j < valid ? r[j] : 0.0f;
    } else if (TYPE == QT_F16) {
        const unsigned short *r = (const unsigned short *)row + 32 * c;
#pragma unroll
        for (int j = 0; j < 32; j++) v[j] = j < valid ? __half2float(__ushort_as_half(r[j])) : 0.0f;
    } else if (TYPE == QT_BF16) {
        const unsigned short *r = (const unsigned short *)row + 32 * c;
#pragma unroll
        for (int j = 0; j < 32; j++) v[j] = j < valid ? __uint_as_float((unsigned)r[j] << 16) : 0.0f;
    } else if (TYPE == QT_Q8_0) {
        const uint8_t *b = row + 34 * c;
        const float d = dq_f16(b);
#pragma unroll
        for (int j = 0; j < 32; j++) v[j] = __fmul_rn((float)(int8_t)b[2 + j], d);
    } else if (TYPE == QT_Q4_0) {
        const uint8_t *b = row + 18 * c;
        const float d = dq_f16(b);
#pragma unroll
        for (int j = 0; j < 16; j++) {
            v[j] = __fmul_rn((float)((b[2 + j] & 0xf) - 8), d);
            v[j + 16] = __fmul_rn((float)((b[2 + j] >> 4) - 8), d);
        }
    } else if (TYPE == QT_Q4_K) {
        const uint8_t *b = row + 144 * (c / 8);
        const int j = (int)(c % 8); // sub-block: values 32j..32j+31 of the super-block
        const uint8_t *s = b + 4;
        int sc, m;
        if (j < 4) {
            sc = s[j] & 63;
            m = s[j + 4] & 63;
        } else {
            sc = (s[j + 4] & 0xf) | (s[j - 4] >> 6) << 4;
            m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
        }
        const float d1 = __fmul_rn(dq_f16(b), (float)sc), m1 = __fmul_rn(dq_f16(b + 2), (float)m);
        // sub-blocks 2i and 2i+1 share qs[32i..32i+31]: low nibbles, then high ones
        const uint8_t *qs = b + 16 + 32 * (j / 2);
        const int shift = (j & 1) * 4;
#pragma unroll
        for (int l = 0; l < 32; l++) v[l] = __fsub_rn(__fmul_rn(d1, (float)((qs[l] >> shift) & 0xf)), m1);
    } else if (TYPE == QT_Q6_K) {
        const uint8_t *b = row + 210 * (c / 8);
        const int k = (int)(c % 8);       // values 32k..32k+31 of the super-block
        const int h = k / 4, g = k % 4;   // value 128h + 32g + l
        const uint8_t *ql = b + 64 * h + 32 * (g & 1), *qh = b + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(b + 192) + 2 * k; // scale of value e is sc[e / 16]
        const float d = dq_f16(b + 208);
        const int lo_shift = (g >> 1) * 4, hi_shift = 2 * g;
#pragma unroll
        for (int l = 0; l < 32; l++) {
            const int q = (((ql[l] >> lo_shift) & 0xf) | ((qh[l] >> hi_shift) & 3) << 4) - 32;
            v[l] = __fmul_rn(__fmul_rn(d, (float)sc[l / 16]), (float)q);
        }
    }
}

// Expands CALL(TYPE) for the runtime type; nothing for a type without kernels.
#define DQ_DISPATCH(type, CALL)                                                                \
    switch (type) {                                                                            \
    case QT_F32: CALL(QT_F32); break;                                                          \
    case QT_F16: CALL(QT_F16); break;                                                          \
    case QT_BF16: CALL(QT_BF16); break;                                                        \
    case QT_Q8_0: CALL(QT_Q8_0); break;                                                        \
    case QT_Q4_0: CALL(QT_Q4_0); break;                                                        \
    case QT_Q4_K: CALL(QT_Q4_K); break;                                                        \
    case QT_Q6_K: CALL(QT_Q6_K); break;                                                        \
    default: break;                                                                            \
    }

#endif
