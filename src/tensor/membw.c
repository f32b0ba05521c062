/* membw.h: a read-bandwidth probe over a buffer on huge pages, with a pool of its own. */
#include "tensor/membw.h"

#include "base/clock.h"
#include "base/err.h"
#include "base/hugemem.h"
#include "tensor/threadpool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 16-byte vectors (SSE2 / NEON width, portable through the compiler's vector extension):
 * four independent accumulators keep enough loads in flight to saturate memory. */
typedef uint64_t u64x2 __attribute__((vector_size(16)));

typedef struct membw_job {
    const u64x2 *buf;
    size_t n;            /* vectors */
    uint64_t *sums;      /* per thread, so the reads cannot be optimized away */
    unsigned char *fill; /* first touch: non-NULL during the fill pass */
} membw_job;

static void membw_worker(void *arg, int ith, int nth) {
    membw_job *j = arg;
    size_t a = j->n * (size_t)ith / (size_t)nth, b = j->n * (size_t)(ith + 1) / (size_t)nth;
    if (j->fill) {
        memset(j->fill + a * sizeof(u64x2), ith + 1, (b - a) * sizeof(u64x2));
        return;
    }
    u64x2 s0 = {0, 0}, s1 = s0, s2 = s0, s3 = s0;
    size_t i = a;
    for (; i + 4 <= b; i += 4) {
        s0 += j->buf[i];
        s1 += j->buf[i + 1];
        s2 += j->buf[i + 2];
        s3 += j->buf[i + 3];
    }
    for (; i < b; i++) s0 += j->buf[i];
    u64x2 s = s0 + s1 + s2 + s3;
    j->sums[ith] += s[0] + s[1];
}

double membw_read(int n_threads, size_t bytes, int passes) {
    double best = -1;
    tpool *pool = tpool_new(n_threads);
    unsigned char *buf = NULL;
    uint64_t *sums = NULL;
    if (!pool) return -1;
    bytes -= bytes % (4 * sizeof(u64x2));
    if (bytes == 0 || passes < 1) {
        err_set("membw: a buffer of %zu bytes and %d passes measure nothing", bytes, passes);
        goto out;
    }
    buf = hugemem_alloc(bytes);
    sums = calloc((size_t)tpool_size(pool), sizeof *sums);
    if (!buf || !sums) {
        err_set("membw: out of memory for a %zu-byte buffer", bytes);
        goto out;
    }
    /* Each thread touches its own part first, so its pages sit near it on NUMA machines. */
    membw_job j = {(const u64x2 *)buf, bytes / sizeof(u64x2), sums, buf};
    tpool_run(pool, membw_worker, &j);
    j.fill = NULL;
    best = 0;
    for (int i = 0; i < passes; i++) {
        double t0 = clock_now();
        tpool_run(pool, membw_worker, &j);
        double gbs = (double)bytes / (clock_now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    uint64_t total = 0;
    for (int i = 0; i < tpool_size(pool); i++) total += sums[i];
    /* Every byte was set to ith + 1 > 0, so a zero total would mean the reads were skipped. */
    if (total == 0) best = err_set("membw: the buffer read back as zeros");
out:
    hugemem_free(buf, bytes);
    free(sums);
    tpool_free(pool);
    return best;
}
