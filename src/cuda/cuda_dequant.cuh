// Device-side decoding of the tensor types, 4 values at a time: the same expressions, in the
// same order, as src/tensor/quant.c (see the block layouts there), with explicit round-to-
// nearest multiplies so that nvcc does not fuse them and the values stay bit-identical to the
// CPU's. Four consecutive values (e % 4 == 0) always share one block's scales, so lanes of a
// warp can take interleaved groups of four (the matrix-vector kernel reads x coalesced that
// way); dequant32 decodes chunk c (values 32c..32c+31) as eight groups.
//
// Loads are as wide as the layout's alignment allows: rows start where the matrix (256-byte
// aligned) puts them, so a row's alignment is its size's; blocks of Q8_0, Q4_0 and Q6_K (34,
// 18 and 210 bytes) are only 2-aligned. For float types the last group of a row may be short
// (`valid`). Little endian: value 2i of a 16-bit load is its low byte.
#ifndef VEIL_CUDA_DEQUANT_CUH
#define VEIL_CUDA_DEQUANT_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "tensor/qtype.h"
}

// Also compiled for the host (cuda_dequant_host.cu), where tests compare it with quant.c.
#ifdef __CUDA_ARCH__
#define DQ_UNROLL _Pragma("unroll")
#define DQ_MUL(a, b) __fmul_rn(a, b)
#define DQ_SUB(a, b) __fsub_rn(a, b)
__device__ __forceinline__ float dq_bits(unsigned u) { return __uint_as_float(u); }
#else
#define DQ_UNROLL
#define DQ_MUL(a, b) ((a) * (b))
#define DQ_SUB(a, b) ((a) - (b))
static inline float dq_bits(unsigned u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
#endif

__host__ __device__ __forceinline__ float dq_f16(const uint8_t *p) {
    return __half2float(__ushort_as_half(*(const unsigned short *)p)); // 2-byte aligned: see cuda_plan.h
}

// Two bytes at a 2-aligned address.
__host__ __device__ __forceinline__ unsigned dq_u16(const uint8_t *p) { return *(const unsigned short *)p; }

template <int TYPE>
__host__ __device__ __forceinline__ void dequant4(const uint8_t *row, int64_t e, int valid, float v[4]) {
    if (TYPE == QT_F32) {
        const float *r = (const float *)row + e;
        if (valid >= 4 && ((uintptr_t)r & 15) == 0) {
            const float4 f = *(const float4 *)r;
            v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
            return;
        }
DQ_UNROLL
        for (int j = 0; j < 4; j++) v[j] = j < valid ? r[j] : 0.0f;
    } else if (TYPE == QT_F16 || TYPE == QT_BF16) {
        const unsigned short *r = (const unsigned short *)row + e;
        unsigned short h[4];
        if (valid >= 4 && ((uintptr_t)r & 7) == 0) {
            const uint2 u = *(const uint2 *)r;
            h[0] = (unsigned short)(u.x & 0xffff), h[1] = (unsigned short)(u.x >> 16);
            h[2] = (unsigned short)(u.y & 0xffff), h[3] = (unsigned short)(u.y >> 16);
        } else {
DQ_UNROLL
            for (int j = 0; j < 4; j++) h[j] = j < valid ? r[j] : 0;
        }
DQ_UNROLL
        for (int j = 0; j < 4; j++)
            v[j] = j >= valid ? 0.0f
                   : TYPE == QT_BF16 ? dq_bits((unsigned)h[j] << 16)
                                     : __half2float(__ushort_as_half(h[j]));
    } else if (TYPE == QT_Q8_0) {
        const uint8_t *b = row + 34 * (e / 32);
        const float d = dq_f16(b);
        const uint8_t *q = b + 2 + e % 32;
        const unsigned lo = dq_u16(q), hi = dq_u16(q + 2);
        v[0] = DQ_MUL((float)(int8_t)(lo & 0xff), d);
        v[1] = DQ_MUL((float)(int8_t)(lo >> 8), d);
        v[2] = DQ_MUL((float)(int8_t)(hi & 0xff), d);
        v[3] = DQ_MUL((float)(int8_t)(hi >> 8), d);
    } else if (TYPE == QT_Q4_0) {
        const uint8_t *b = row + 18 * (e / 32);
        const float d = dq_f16(b);
        const int o = (int)(e % 32), shift = o < 16 ? 0 : 4; // values 0..15: low nibbles of qs[0..15]
        const uint8_t *q = b + 2 + o % 16;
        const unsigned w = dq_u16(q) | dq_u16(q + 2) << 16;
DQ_UNROLL
        for (int j = 0; j < 4; j++) v[j] = DQ_MUL((float)((int)((w >> (8 * j + shift)) & 0xf) - 8), d);
    } else if (TYPE == QT_Q4_K) {
        const uint8_t *b = row + 144 * (e / 256);
        const int j = (int)(e % 256 / 32), o = (int)(e % 32); // sub-block j, values o..o+3 of it
        const uint8_t *s = b + 4;
        int sc, m;
        if (j < 4) {
            sc = s[j] & 63;
            m = s[j + 4] & 63;
        } else {
            sc = (s[j + 4] & 0xf) | (s[j - 4] >> 6) << 4;
            m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
        }
        const float d1 = DQ_MUL(dq_f16(b), (float)sc), m1 = DQ_MUL(dq_f16(b + 2), (float)m);
        // sub-blocks 2i and 2i+1 share qs[32i..32i+31]: low nibbles, then high ones
        const unsigned w = *(const unsigned *)(b + 16 + 32 * (j / 2) + o); // 144 sb + 16 + 32 i + o: 4-aligned
        const int shift = (j & 1) * 4;
DQ_UNROLL
        for (int l = 0; l < 4; l++) v[l] = DQ_SUB(DQ_MUL(d1, (float)((w >> (8 * l + shift)) & 0xf)), m1);
    } else if (TYPE == QT_Q6_K) {
        const uint8_t *b = row + 210 * (e / 256);
        const int k = (int)(e % 256 / 32), l0 = (int)(e % 32); // values 32k + l0 .. + 3 of the super-block
        const int h = k / 4, g = k % 4;                            // value 128h + 32g + l
        const uint8_t *ql = b + 64 * h + 32 * (g & 1) + l0, *qh = b + 128 + 32 * h + l0;
        const float d = dq_f16(b + 208), s = (float)((const int8_t *)(b + 192))[2 * k + l0 / 16];
        const unsigned lw = dq_u16(ql) | dq_u16(ql + 2) << 16, hw = dq_u16(qh) | dq_u16(qh + 2) << 16;
        const int lo_shift = (g >> 1) * 4, hi_shift = 2 * g;
DQ_UNROLL
        for (int l = 0; l < 4; l++) {
            const int q = ((int)((lw >> (8 * l + lo_shift)) & 0xf) | (int)((hw >> (8 * l + hi_shift)) & 3) << 4) - 32;
            v[l] = DQ_MUL(DQ_MUL(d, s), (float)q);
        }
    }
}

// Chunk c of a row: values 32c .. 32c + valid - 1 (the rest 0).
template <int TYPE>
__host__ __device__ __forceinline__ void dequant32(const uint8_t *row, int64_t c, int valid, float v[32]) {
DQ_UNROLL
    for (int q = 0; q < 8; q++) dequant4<TYPE>(row, 32 * c + 4 * q, valid - 4 * q, v + 4 * q);
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
