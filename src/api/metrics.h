/* Serving metrics in the Prometheus text format (version 0.0.4): HTTP requests by status
 * code, token counters, queue depth, running sequences, tokens in the last batch, KV memory,
 * and histograms of time to first token and time per output token. Updated and rendered on
 * one thread (the event loop); no locking. */
#ifndef VEIL_METRICS_H
#define VEIL_METRICS_H

#include <stdint.h>

#include "base/buf.h"
#include "engine/sched.h"

#define METRICS_MAX_BUCKETS 16

typedef struct metrics_hist {
    const double *bounds;                 /* upper bounds, ascending; +Inf implied */
    int n_bounds;
    uint64_t counts[METRICS_MAX_BUCKETS]; /* per bucket, not cumulative */
    uint64_t count;
    double sum;
} metrics_hist;

typedef struct metrics {
    uint64_t by_status[600];              /* index: HTTP status code */
    metrics_hist ttft, tpot;
} metrics;

void metrics_init(metrics *m);
void metrics_count_status(metrics *m, int status);
void metrics_observe(metrics_hist *h, double seconds);
/* Appends the exposition text; `active` is the number of generation requests in flight. */
void metrics_render(const metrics *m, const sched_stats *st, int active, buf *out);

#endif
