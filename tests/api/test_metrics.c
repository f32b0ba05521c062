/* Prometheus exposition: status counters, gauges from the scheduler, cumulative histogram
 * buckets whose +Inf bucket equals the count. */
#include "test.h"

#include "api/metrics.h"

#include <stdlib.h>

TEST(metrics_render_text) {
    metrics m;
    sched_stats st = {.queued = 2, .running = 3, .batch_tokens = 7, .kv_bytes_used = 4096,
                      .kv_bytes_total = 65536, .prompt_tokens = 11, .cached_tokens = 5,
                      .completion_tokens = 13, .steps = 17};
    buf out = {0};
    metrics_init(&m);
    metrics_count_status(&m, 200);
    metrics_count_status(&m, 200);
    metrics_count_status(&m, 503);
    metrics_count_status(&m, 999); /* ignored */
    metrics_observe(&m.ttft, 0.003);
    metrics_observe(&m.ttft, 0.003);
    metrics_observe(&m.ttft, 100);
    metrics_render(&m, &st, 4, &out);
    char *t = buf_take(&out, NULL);
    CHECK(t && strstr(t, "# TYPE veil_http_requests_total counter\n"));
    CHECK(t && strstr(t, "veil_http_requests_total{code=\"200\"} 2\n"));
    CHECK(t && strstr(t, "veil_http_requests_total{code=\"503\"} 1\n"));
    CHECK(t && !strstr(t, "code=\"999\""));
    CHECK(t && strstr(t, "veil_queue_depth 2\n"));
    CHECK(t && strstr(t, "veil_running_sequences 3\n"));
    CHECK(t && strstr(t, "veil_batch_tokens 7\n"));
    CHECK(t && strstr(t, "veil_active_requests 4\n"));
    CHECK(t && strstr(t, "veil_kv_bytes_used 4096\n"));
    CHECK(t && strstr(t, "veil_prompt_tokens_cached_total 5\n"));
    CHECK(t && strstr(t, "veil_completion_tokens_total 13\n"));
    CHECK(t && strstr(t, "# TYPE veil_time_to_first_token_seconds histogram\n"));
    CHECK(t && strstr(t, "veil_time_to_first_token_seconds_bucket{le=\"0.0025\"} 0\n"));
    CHECK(t && strstr(t, "veil_time_to_first_token_seconds_bucket{le=\"0.005\"} 2\n"));
    CHECK(t && strstr(t, "veil_time_to_first_token_seconds_bucket{le=\"30\"} 2\n"));
    CHECK(t && strstr(t, "veil_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3\n"));
    CHECK(t && strstr(t, "veil_time_to_first_token_seconds_count 3\n"));
    CHECK(t && strstr(t, "veil_time_per_output_token_seconds_count 0\n"));
    free(t);
}
