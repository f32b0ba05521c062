/* Runtime CPU feature detection for choosing kernels: which SIMD instruction sets this CPU has
 * AND the operating system lets programs use (AVX state saved on context switch, checked with
 * XGETBV). Detected once per process; the answer never changes afterwards. On non-x86 builds
 * every feature is absent. */
#ifndef VEIL_CPU_H
#define VEIL_CPU_H

enum cpu_feature {
    CPU_AVX = 1u << 0,
    CPU_AVX2 = 1u << 1,
    CPU_FMA = 1u << 2,
    CPU_F16C = 1u << 3,
    /* AVX-512 Foundation, BW (byte/word), VL (128/256-bit forms), DQ and VNNI (byte dot
     * products), with the OS saving the opmask and all 512-bit registers: one flag, because
     * the AVX-512 kernels need them all. */
    CPU_AVX512 = 1u << 4,
};

/* Bit mask of usable enum cpu_feature values. Safe to call from any thread. */
unsigned cpu_features(void);

#endif
