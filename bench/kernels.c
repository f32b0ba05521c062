/* Kernel micro-benchmark: how fast the matrix products of src/tensor/matmul run, against the
 * machine's memory read bandwidth (tensor/membw.h, `veil bench --membw`'s probe, with as many
 * threads).
 *
 *   build/bench-kernels [-t THREADS] [-b scalar|avx2|avx512] [-s SECONDS] [-c] [-p] [-d] [-H]
 *                       [-S OUTxIN]... [TYPE...]
 *
 * For each weight type and shape (n_out x n_in = 4096x4096 and 11008x4096; with -d those of
 * d1024-l16's layers, 1024x1024, 2816x1024 and 1024x2816; with -S the shapes given, e.g.
 * tinyllama-1.1b's -S 2048x2048 -S 5632x2048 -S 2048x5632) it reports
 *   - decode: one token, GB/s of weights streamed (the bound is the read bandwidth);
 *   - batch8: 8 tokens, and how many times one token's throughput that is (x);
 *   - prefill: 64 tokens, GFLOP/s (2 * n_out * n_in * 64 per product).
 * Products run as the forward pass runs them: the input prepared once on the calling thread
 * (matmul_input_init + matmul_input_prepare), rows split across the pool in groups of 16. The
 * weights are copied enough times to fill ~1 GiB and the copies used in turn, so every product
 * reads its weights from memory, not from cache; on huge pages where the kernel offers them, as
 * the CPU device's packed weights are (4 KiB pages made a one-thread tinyllama-1.1b decode
 * 20-40 % slower). Each figure is the fastest single product
 * of those run in SECONDS / 3 (default 3 s): on a machine busy with other work, the one that
 * ran undisturbed. -c times by the calling thread's CPU time instead of the wall clock: with
 * -t 1, another way to compare kernels on a busy machine (the bandwidth figures then mean
 * little). -p packs Q4_0, Q8_0, Q4_K and Q6_K matrices (tensor/repack.h) as the CPU device does
 * for the AVX-512 kernels. -H ("hot") keeps one copy, so a matrix that fits the caches is read
 * from them: the kernels' arithmetic alone, steadier than the memory-bound figures on a busy
 * host. */
#include "base/err.h"
#include "base/hugemem.h"
#include "tensor/matmul.h"
#include "tensor/membw.h"
#include "tensor/qtype.h"
#include "tensor/quant.h"
#include "tensor/repack.h"
#include "tensor/threadpool.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GIB (1024.0 * 1024.0 * 1024.0)

static clockid_t clock_id = CLOCK_MONOTONIC;
static bool hot; /* -H: one copy of the weights, read from cache after the first product */

static double now(void) {
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float randn(void) {
    double s = 0;
    for (int i = 0; i < 4; i++) {
        rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
        s += (double)((rng * 0x2545F4914F6CDD1Dull) >> 11) * 0x1p-53;
    }
    return (float)((s - 2.0) * 1.732);
}

/* ---- products ---- */

typedef struct mm_job {
    uint32_t type;
    const void *w;
    int64_t n_out;
    const matmul_input *in;
    float *y;
} mm_job;

static void mm_worker(void *arg, int ith, int nth) {
    const mm_job *j = arg;
    const int64_t groups = (j->n_out + 15) / 16;
    const int64_t g0 = groups * ith / nth, g1 = groups * (ith + 1) / nth;
    const int64_t r0 = g0 * 16, r1 = g1 * 16 < j->n_out ? g1 * 16 : j->n_out;
    if (r0 < r1) matmul_rows(j->type, j->w, j->n_out, j->in, j->y, r0, r1);
}

typedef struct bench {
    tpool *pool;
    uint32_t type;
    int64_t n_in, n_out;
    uint8_t *w;        /* n_copies copies of the matrix */
    size_t mat_bytes;
    int n_copies;
    float *x, *y;
    void *scratch;
    size_t scratch_size;
    double seconds;    /* per figure */
} bench;

/* The fastest of the products of n_tok tokens run in b->seconds (at least 3): on a machine
 * shared with other work, the fastest run is the one nothing else interrupted. */
static double time_product(bench *b, int64_t n_tok) {
    double best = INFINITY, start = now();
    for (int reps = 0; reps < 3 || now() - start < b->seconds; reps++) {
        const double t0 = now();
        matmul_input *in = matmul_input_init(b->scratch, b->scratch_size, b->x, b->n_in, n_tok);
        matmul_input_prepare(in, b->type);
        mm_job j = {b->type, b->w + (size_t)(reps % b->n_copies) * b->mat_bytes, b->n_out, in, b->y};
        tpool_run(b->pool, mm_worker, &j);
        const double t = now() - t0;
        if (t < best) best = t;
    }
    return best;
}

static int run_type(tpool *pool, uint32_t type, int64_t n_out, int64_t n_in, double seconds,
                    double bw, bool pack) {
    bench b = {pool, type, n_in, n_out, NULL, 0, 0, NULL, NULL, NULL, 0, seconds};
    const size_t row = qtype_row_size(type, (uint64_t)n_in);
    float *f = malloc(sizeof(float) * (size_t)n_in);
    uint8_t *one = malloc(row * (size_t)n_out);
    b.mat_bytes = row * (size_t)n_out;
    b.n_copies = hot ? 1 : (int)(GIB / (double)b.mat_bytes) + 1;
    b.w = hugemem_alloc(b.mat_bytes * (size_t)b.n_copies);
    b.x = malloc(sizeof(float) * (size_t)(n_in * 64));
    b.y = malloc(sizeof(float) * (size_t)(n_out * 64));
    b.scratch_size = matmul_input_size(n_in, 64);
    b.scratch = malloc(b.scratch_size);
    int rc = -1;
    if (!f || !one || !b.w || !b.x || !b.y || !b.scratch) goto out;
    /* a few distinct rows, repeated: the values do not change the speed */
    for (int64_t r = 0; r < n_out; r++) {
        if (r < 8) {
            for (int64_t i = 0; i < n_in; i++) f[i] = randn() * 0.05f;
            if (quant_quantize_row(type, f, one + (size_t)r * row, n_in)) goto out;
        } else {
            memcpy(one + (size_t)r * row, one + (size_t)(r % 8) * row, row);
        }
    }
    const uint32_t packed = pack ? repack_type_for(type, n_in, n_out) : 0;
    if (packed) { /* the copies as packed (Q4_K's is a little larger) */
        const size_t unpacked = b.mat_bytes * (size_t)b.n_copies;
        b.mat_bytes = repack_bytes(type, n_in, n_out);
        b.n_copies = hot ? 1 : (int)(GIB / (double)b.mat_bytes) + 1;
        hugemem_free(b.w, unpacked);
        if (!(b.w = hugemem_alloc(b.mat_bytes * (size_t)b.n_copies))) goto out;
    }
    for (int c = 0; c < b.n_copies; c++) {
        if (packed) repack_rows(type, one, n_in, b.w + (size_t)c * b.mat_bytes, 0, n_out);
        else memcpy(b.w + (size_t)c * b.mat_bytes, one, b.mat_bytes);
    }
    if (packed) b.type = packed;
    for (int64_t i = 0; i < n_in * 64; i++) b.x[i] = randn();

    const double t1 = time_product(&b, 1), t8 = time_product(&b, 8), t64 = time_product(&b, 64);
    const double gbs = b.mat_bytes / t1 / 1e9;
    printf("%-5s%s %5lldx%-5lld %8.2f MB  decode %6.2f GB/s (%3.0f%% of read bw) %7.3f ms"
           "  batch8 %5.2fx %7.3f ms  prefill %6.1f GFLOP/s %7.2f ms\n",
           qtype_get(type)->name, packed ? "p" : " ", (long long)n_out, (long long)n_in, b.mat_bytes / 1e6, gbs,
           100 * gbs / bw, t1 * 1e3, 8 * t1 / t8, t8 * 1e3, 2.0 * n_out * n_in * 64 / t64 / 1e9,
           t64 * 1e3);
    fflush(stdout);
    rc = 0;
out:
    free(f);
    free(one);
    hugemem_free(b.w, b.mat_bytes * (size_t)b.n_copies);
    free(b.x);
    free(b.y);
    free(b.scratch);
    return rc;
}

int main(int argc, char **argv) {
    int threads = 2;
    double seconds = 3;
    uint32_t types[16];
    int n_types = 0;
    bool pack = false, small = false;
    int64_t given[8][2];
    int n_given = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "-c") == 0) {
            clock_id = CLOCK_THREAD_CPUTIME_ID;
        } else if (strcmp(argv[i], "-H") == 0) {
            hot = true;
        } else if (strcmp(argv[i], "-d") == 0) {
            small = true;
        } else if (strcmp(argv[i], "-p") == 0) {
            pack = true;
        } else if (strcmp(argv[i], "-S") == 0 && i + 1 < argc) {
            long long o, n;
            char end;
            if (n_given == 8 || sscanf(argv[++i], "%lldx%lld%c", &o, &n, &end) != 2 || o < 16 || n < 256 ||
                o > 1 << 20 || n > 1 << 20 || n % 256) {
                fprintf(stderr, "-S %s: want OUTxIN, OUT >= 16, IN a multiple of 256 (at most 8 shapes)\n",
                        argv[i]);
                return 2;
            }
            given[n_given][0] = o;
            given[n_given++][1] = n;
        } else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
            const char *name = argv[++i];
            int be = MATMUL_SCALAR;
            while (be <= MATMUL_AVX512 && strcmp(name, matmul_backend_name((enum matmul_backend)be)))
                be++;
            if (be > MATMUL_AVX512 || matmul_set_backend((enum matmul_backend)be)) {
                fprintf(stderr, "backend %s: unknown or not supported here\n", name);
                return 2;
            }
        } else if (qtype_from_name(argv[i]) >= 0 && qtype_supported((uint32_t)qtype_from_name(argv[i])) &&
                   n_types < 16) {
            types[n_types++] = (uint32_t)qtype_from_name(argv[i]);
        } else {
            fprintf(stderr, "usage: %s [-t THREADS] [-b scalar|avx2|avx512] [-s SECONDS] [-c] [-p] [-d] [-H] [-S OUTxIN]... [TYPE...]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!n_types) {
        const uint32_t all[] = {QT_Q4_0, QT_Q8_0, QT_Q4_K, QT_Q6_K, QT_F16, QT_BF16, QT_F32};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) types[n_types++] = all[i];
    }
    tpool *pool = tpool_new(threads);
    if (!pool) return 1;
    const double bw = membw_read(tpool_size(pool), (size_t)GIB, 20);
    if (bw < 0) {
        fprintf(stderr, "bench-kernels: %s\n", err_msg());
        return 1;
    }
    printf("backend %s, %d threads, read bandwidth %.2f GB/s (1 GiB streamed, best of 20)\n",
           matmul_backend_name(matmul_backend()), threads, bw);
    static const int64_t big[][2] = {{4096, 4096}, {11008, 4096}},
                         d1024[][2] = {{1024, 1024}, {2816, 1024}, {1024, 2816}};
    const int64_t(*shapes)[2] = n_given ? (const int64_t(*)[2])given : small ? d1024 : big;
    const int n_shapes = n_given ? n_given : small ? 3 : 2;
    int rc = 0;
    for (int t = 0; t < n_types; t++)
        for (int s = 0; s < n_shapes; s++)
            if (run_type(pool, types[t], shapes[s][0], shapes[s][1], seconds / 3, bw, pack)) {
                fprintf(stderr, "%s: setup failed\n", qtype_get(types[t])->name);
                rc = 1;
            }
    tpool_free(pool);
    return rc;
}
