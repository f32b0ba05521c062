/* libFuzzer target: whatever the logits (any bit pattern: NaN, infinities, huge values),
 * parameters, bias and history, sampler_sample returns a token whose adjusted logit is finite,
 * or -1 exactly when there is none; sampler_logprobs likewise never fails on a vector with a
 * finite value and never lists a token that is not. */
#include "model/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sampler_params p;
    int32_t n, hist[8];
    float *logits, *adj;
    sampler *s;
    if (size < 12) return 0;
    sampler_params_default(&p);
    p.temperature = data[0] < 32 ? 0 : (float)data[0] / 40;
    p.top_k = data[1] % 8;
    p.top_p = data[2] < 128 ? 1 : (float)(data[2] - 127) / 128;
    p.min_p = data[3] < 128 ? 0 : (float)(data[3] - 128) / 127;
    p.repeat_penalty = data[4] < 128 ? 1 : (float)data[4] / 100;
    p.frequency_penalty = (float)((int)data[5] - 128) / 64;
    p.presence_penalty = (float)((int)data[6] - 128) / 64;
    p.repeat_last_n = (int32_t)(data[7] % 10) - 1;
    p.seed = data[8];
    data += 12;
    size -= 12;
    n = (int32_t)(size / 4);
    if (n == 0) return 0;
    logits = malloc((size_t)n * sizeof *logits);
    adj = malloc((size_t)n * sizeof *adj);
    s = sampler_new(&p, n);
    if (!logits || !adj || !s) abort();
    memcpy(logits, data, (size_t)n * sizeof *logits);
    for (int i = 0; i < 8; i++) hist[i] = (int32_t)(data[i % size] % n);
    if (data[0] & 1) sampler_set_logit_bias(s, data[1] % n, data[2] & 1 ? -INFINITY : 5);
    for (int round = 0; round < 3; round++) {
        int32_t t = sampler_sample(s, logits, hist, 8);
        int any = 0;
        if (sampler_adjust_logits(s, logits, hist, 8, adj) != 0) abort();
        for (int32_t i = 0; i < n; i++) any |= adj[i] > -INFINITY;
        if (t == -1 ? any : (t < 0 || t >= n || !(adj[t] > -INFINITY) || isnan(adj[t]))) abort();
    }
    sampler_logprob top[4];
    float lp;
    int k = sampler_logprobs(logits, n, 0, &lp, top, 4);
    for (int j = 0; j < k; j++)
        if (top[j].id < 0 || top[j].id >= n || isnan(top[j].logprob) || top[j].logprob > 0) abort();
    sampler_free(s);
    free(logits);
    free(adj);
    return 0;
}
