/* Prometheus text exposition of the serving metrics (see metrics.h). Names follow the
 * Prometheus conventions: counters end in _total, units in the name (_seconds, _bytes). */
#include "api/metrics.h"

#include <string.h>

static const double ttft_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                     1, 2.5, 5, 10, 30};
static const double tpot_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25, 0.5, 1};

void metrics_init(metrics *m) {
    memset(m, 0, sizeof *m);
    m->ttft.bounds = ttft_bounds;
    m->ttft.n_bounds = (int)(sizeof ttft_bounds / sizeof ttft_bounds[0]);
    m->tpot.bounds = tpot_bounds;
    m->tpot.n_bounds = (int)(sizeof tpot_bounds / sizeof tpot_bounds[0]);
}

void metrics_count_status(metrics *m, int status) {
    if (status >= 100 && status < 600) m->by_status[status]++;
}

void metrics_observe(metrics_hist *h, double seconds) {
    int b = 0;
    while (b < h->n_bounds && seconds > h->bounds[b]) b++;
    h->counts[b]++;
    h->count++;
    h->sum += seconds;
}

static void header(buf *out, const char *name, const char *type, const char *help) {
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar(buf *out, const char *name, const char *type, const char *help, double v) {
    header(out, name, type, help);
    buf_printf(out, "%s %.17g\n", name, v);
}

static void histogram(buf *out, const char *name, const char *help, const metrics_hist *h) {
    uint64_t cum = 0;
    header(out, name, "histogram", help);
    for (int b = 0; b < h->n_bounds; b++) {
        cum += h->counts[b];
        buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[b], (unsigned long long)cum);
    }
    buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    buf_printf(out, "%s_sum %.17g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

void metrics_render(const metrics *m, const sched_stats *st, int active, buf *out) {
    header(out, "veil_http_requests_total", "counter", "HTTP requests answered, by status code.");
    for (int code = 100; code < 600; code++)
        if (m->by_status[code])
            buf_printf(out, "veil_http_requests_total{code=\"%d\"} %llu\n", code,
                       (unsigned long long)m->by_status[code]);
    scalar(out, "veil_prompt_tokens_total", "counter", "Prompt tokens of finished requests.",
           (double)st->prompt_tokens);
    scalar(out, "veil_prompt_tokens_cached_total", "counter",
           "Prompt tokens whose KV came from the prefix cache.", (double)st->cached_tokens);
    scalar(out, "veil_completion_tokens_total", "counter", "Generated tokens of finished requests.",
           (double)st->completion_tokens);
    scalar(out, "veil_engine_steps_total", "counter", "Batched forward passes run.", (double)st->steps);
    scalar(out, "veil_active_requests", "gauge", "Generation requests in flight (HTTP).", active);
    scalar(out, "veil_queue_depth", "gauge", "Sequences waiting for KV memory.", st->queued);
    scalar(out, "veil_running_sequences", "gauge", "Sequences in the running batch.", st->running);
    scalar(out, "veil_batch_tokens", "gauge", "Tokens in the last forward pass.", st->batch_tokens);
    scalar(out, "veil_kv_bytes_used", "gauge", "KV cache bytes held by requests (not counting the evictable prefix cache).",
           (double)st->kv_bytes_used);
    scalar(out, "veil_kv_bytes_cached", "gauge", "KV cache bytes held only by the prefix cache (evictable).",
           (double)st->kv_bytes_cached);
    scalar(out, "veil_kv_bytes_total", "gauge", "KV cache budget in bytes.", (double)st->kv_bytes_total);
    histogram(out, "veil_time_to_first_token_seconds", "From submission to the first generated token.",
              &m->ttft);
    histogram(out, "veil_time_per_output_token_seconds",
              "Mean time between a request's output tokens (one observation per request).", &m->tpot);
}
