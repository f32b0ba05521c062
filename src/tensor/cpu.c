/* CPU feature detection (cpu.h) from CPUID leaves 1 and 7 and the OS-enabled state mask in
 * XCR0: an AVX instruction on a CPU that has it still faults when the kernel does not save the
 * YMM registers, so a feature counts only when XCR0 has both the SSE and AVX state bits (and,
 * for AVX-512, the opmask and upper-ZMM state bits too). */
#include "tensor/cpu.h"

#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned detect(void) {
    unsigned a, b, c, d, features = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int osxsave = c >> 27 & 1, avx = c >> 28 & 1, fma = c >> 12 & 1, f16c = c >> 29 & 1;
    if (!osxsave || !avx) return 0;
    unsigned xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    (void)xcr0_hi;
    if ((xcr0_lo & 6) != 6) return 0; /* XMM and YMM state */
    features |= CPU_AVX;
    if (fma) features |= CPU_FMA;
    if (f16c) features |= CPU_F16C;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return features;
    if (b >> 5 & 1) features |= CPU_AVX2;
    /* leaf 7: EBX bit 16 AVX512F, 17 DQ, 30 BW, 31 VL; ECX bit 11 VNNI. XCR0 bits 5-7: opmask,
     * the upper halves of ZMM0-15, ZMM16-31. */
    const int avx512 = (b >> 16 & 1) && (b >> 17 & 1) && (b >> 30 & 1) && (b >> 31 & 1) &&
                       (c >> 11 & 1);
    if (avx512 && (xcr0_lo & 0xe0) == 0xe0) features |= CPU_AVX512;
    return features;
}
#else
static unsigned detect(void) { return 0; }
#endif

unsigned cpu_features(void) {
    /* bit 31 marks "detected"; detection is idempotent, so a race only repeats it */
    static _Atomic unsigned cached;
    unsigned f = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!(f & 1u << 31)) {
        f = detect() | 1u << 31;
        atomic_store_explicit(&cached, f, memory_order_relaxed);
    }
    return f & ~(1u << 31);
}
