// Device-side decoding of the tensor types, 32 values at a time: the same expressions, in the
// same order, as src/tensor/quant.c (see the block layouts there), with explicit round-to-
// nearest multiplies so that nvcc does not fuse them and the values stay bit-identical to the
// CPU's. Chunk c of a row is values 32c..32c+31: one Q8_0 / Q4_0 block, one Q4_K sub-block,
// two Q6_K sub-blocks; for float types the last chunk of a row may be short (`valid`).
//
// Loads are as wide as the layout's alignment allows (rows start 256-byte aligned, cuda_plan.h):
// 16 bytes for F16/BF16 chunks of aligned rows and Q4_K quants (super-blocks are 144 bytes),
// 2 bytes for Q8_0, Q4_0 and Q6_K, whose 34-, 18- and 210-byte blocks are only 2-aligned.
// Little endian: value 2i of a 16-bit load is its low byte.
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

template <int TYPE>
__host__ __device__ __forceinline__ void dequant32(const uint8_t *row, int64_t c, int valid, float v[32]) {
    if (TYPE == QT_F32) {
        const float *r = (const float *)row + 32 * c;
DQ_UNROLL
        for (int j = 0; j < 32; j++) v[j] = j < valid ? r[j] : 0.0f;
    } else if (TYPE == QT_F16 || TYPE == QT_BF16) {
        const unsigned short *r = (const unsigned short *)row + 32 * c;
        if (valid == 32 && ((uintptr_t)r & 15) == 0) {
DQ_UNROLL
            for (int k = 0; k < 4; k++) {
                const uint4 u = ((const uint4 *)r)[k];
                const unsigned w[4] = {u.x, u.y, u.z, u.w};
DQ_UNROLL
                for (int i = 0; i < 4; i++) {
                    v[8 * k + 2 * i] = TYPE == QT_BF16 ? dq_bits(w[i] << 16)
                                                       : __half2float(__ushort_as_half((unsigned short)(w[i] & 0xffff)));
                    v[8 * k + 2 * i + 1] = TYPE == QT_BF16 ? dq_bits(w[i] & 0xffff0000u)
                                                           : __half2float(__ushort_as_half((unsigned short)(w[i] >> 16)));
                }
            }
        } else {
DQ_UNROLL
            for (int j = 0; j < 32; j++)
                v[j] = j >= valid ? 0.0f
                       : TYPE == QT_BF16 ? dq_bits((unsigned)r[j] << 16)
                                         : __half2float(__ushort_as_half(r[j]));
        }
    } else if (TYPE == QT_Q8_0) {
        const uint8_t *b = row + 34 * c;
        const float d = dq_f16(b);
        const unsigned short *q = (const unsigned short *)(b + 2);
DQ_UNROLL
        for (int j = 0; j < 16; j++) {
            const unsigned short u = q[j];
            v[2 * j] = DQ_MUL((float)(int8_t)(u & 0xff), d);
            v[2 * j + 1] = DQ_MUL((float)(int8_t)(u >> 8), d);
        }
    } else if (TYPE == QT_Q4_0) {
        const uint8_t *b = row + 18 * c;
        const float d = dq_f16(b);
        const unsigned short *q = (const unsigned short *)(b + 2);
DQ_UNROLL
        for (int j = 0; j < 8; j++) {
            const unsigned short u = q[j];
            const int lo = u & 0xff, hi = u >> 8; // qs[2j], qs[2j + 1]
            v[2 * j] = DQ_MUL((float)((lo & 0xf) - 8), d);
            v[2 * j + 1] = DQ_MUL((float)((hi & 0xf) - 8), d);
            v[2 * j + 16] = DQ_MUL((float)((lo >> 4) - 8), d);
            v[2 * j + 17] = DQ_MUL((float)((hi >> 4) - 8), d);
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
        const float d1 = DQ_MUL(dq_f16(b), (float)sc), m1 = DQ_MUL(dq_f16(b + 2), (float)m);
        // sub-blocks 2i and 2i+1 share qs[32i..32i+31]: low nibbles, then high ones
        const uint4 *qs = (const uint4 *)(b + 16 + 32 * (j / 2)); // 144 * sb + 16 + 32 i: 16-aligned
        const int shift = (j & 1) * 4;
DQ_UNROLL
        for (int k = 0; k < 2; k++) {
            const uint4 u = qs[k];
            const unsigned w[4] = {u.x, u.y, u.z, u.w};
DQ_UNROLL
            for (int l = 0; l < 16; l++) { // byte l of these 16: bits 8 (l % 4) of word l / 4
                const int q = (int)((w[l / 4] >> (8 * (l % 4) + shift)) & 0xf);
                v[16 * k + l] = DQ_SUB(DQ_MUL(d1, (float)q), m1);
            }
        }
    } else if (TYPE == QT_Q6_K) {
        const uint8_t *b = row + 210 * (c / 8);
        const int k = (int)(c % 8);       // values 32k..32k+31 of the super-block
        const int h = k / 4, g = k % 4;   // value 128h + 32g + l
        const uint8_t *ql = b + 64 * h + 32 * (g & 1), *qh = b + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(b + 192) + 2 * k; // scale of value e is sc[e / 16]
        const float d = dq_f16(b + 208);
        const int lo_shift = (g >> 1) * 4, hi_shift = 2 * g;
        const unsigned short *ql16 = (const unsigned short *)ql, *qh16 = (const unsigned short *)qh;
DQ_UNROLL
        for (int i = 0; i < 16; i++) { // values l = 2i, 2i + 1
            const unsigned lw = ql16[i], hw = qh16[i];
DQ_UNROLL
            for (int k = 0; k < 2; k++) {
                const int l = 2 * i + k;
                const int q = ((int)((lw >> (8 * k + lo_shift)) & 0xf) | (int)((hw >> (8 * k + hi_shift)) & 3) << 4) - 32;
                v[l] = DQ_MUL(DQ_MUL(d, (float)sc[l / 16]), (float)q);
            }
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
