/* Arithmetic ceiling of one core: the clock (a chain of dependent integer adds, one per cycle)
 * and, on CPUs with AVX-512 VNNI, how many 512-bit byte dot products (vpdpbusd, the Q4_0 / Q8_0 /
 * Q4_K kernels' instruction) and float fused multiply-adds issue per cycle. From these, the
 * GFLOP/s one core can reach (2 operations per multiply-add), against which bench-kernels' hot
 * (-H) and prefill figures read as a fraction.
 *
 *   build/bench-peak
 *
 * Each figure is the best of 5 runs of ~0.1 s on the calling thread. */
#include "base/clock.h"
#include "tensor/cpu.h"

#include <stdint.h>
#include <stdio.h>

void peak_avx512_vnni(int64_t n);
void peak_avx512_fma(int64_t n);

#if defined(__x86_64__)
#define N 25000000

/* seconds per add of a dependent chain: one cycle each */
static double cycle_time(void) {
    double best = 1;
    for (int r = 0; r < 5; r++) {
        uint64_t x = 0;
        const double t0 = clock_now();
        for (int64_t i = 0; i < N; i++)
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
        const double t = (clock_now() - t0) / (4.0 * N);
        if (t < best) best = t;
    }
    return best;
}

/* instructions per cycle of a loop of 12 x n instructions */
static double rate(void (*loop)(int64_t), double cycle) {
    double best = 1;
    for (int r = 0; r < 5; r++) {
        const double t0 = clock_now();
        loop(N / 4);
        const double t = (clock_now() - t0) / (12.0 * (N / 4));
        if (t < best) best = t;
    }
    return cycle / best;
}

int main(void) {
    const double cycle = cycle_time();
    printf("clock        %.2f GHz (dependent adds)\n", 1e-9 / cycle);
    if (!(cpu_features() & CPU_AVX512)) {
        printf("no AVX-512 VNNI on this CPU: nothing more to measure\n");
        return 0;
    }
    const double vnni = rate(peak_avx512_vnni, cycle), fma = rate(peak_avx512_fma, cycle);
    printf("vpdpbusd zmm %.2f per cycle = %.0f GOP/s per core (64 byte products each)\n", vnni,
           vnni * 64 * 2 / cycle * 1e-9);
    printf("vfmadd zmm   %.2f per cycle = %.0f GFLOP/s per core (16 fused multiply-adds each)\n", fma,
           fma * 16 * 2 / cycle * 1e-9);
    return 0;
}
#else
int main(void) {
    printf("bench-peak measures x86-64 only\n");
    return 0;
}
#endif
