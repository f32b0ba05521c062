/* Sampler micro-benchmark: what sampling one token and its logprobs costs on one thread, for a
 * vocabulary of the given size (bench/README.md, "Sampling").
 *
 *   build/bench-sampler [-V VOCAB] [-r REPS]
 *
 * Logits are 3 x (a sum of 12 uniforms - 6), roughly Gaussian with std 3 (an LLM's are sharper
 * at the top, which only makes the top-k path cheaper), with one token's logit biased by -100
 * as the serving benchmark bans EOS. Times sampler_sample with greedy decoding, with `veil
 * run`'s defaults (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05), with the API's
 * defaults (temperature 1, no cuts), and sampler_logprobs with 5 alternatives; each figure is
 * the fastest of REPS (default 5) rounds of 200 calls, in microseconds per call. Default
 * vocabulary 32000 (Llama 2); 151936 is Qwen's. */
#include "base/clock.h"
#include "base/err.h"
#include "model/sampler.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CALLS 200

static double best_of(int reps, sampler *s, const float *l, int32_t n, bool logprobs) {
    static const int32_t hist[4] = {1, 2, 3, 4};
    sampler_logprob top[5];
    float lp;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = clock_now();
        for (int k = 0; k < CALLS; k++) {
            if (logprobs) sampler_logprobs(l, n, 5, &lp, top, 5);
            else sampler_sample(s, l, hist, 4);
        }
        const double t = (clock_now() - t0) / CALLS;
        if (t < best) best = t;
    }
    return best * 1e6;
}

int main(int argc, char **argv) {
    int32_t n = 32000;
    int reps = 5, c;
    while ((c = getopt(argc, argv, "V:r:h")) != -1) {
        if (c == 'V') n = atoi(optarg);
        else if (c == 'r') reps = atoi(optarg);
        else {
            fprintf(stderr, "usage: bench-sampler [-V VOCAB] [-r REPS]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (n < 8 || reps < 1) {
        fprintf(stderr, "bench-sampler: -V must be at least 8 and -r at least 1\n");
        return 2;
    }
    float *l = malloc(sizeof *l * (size_t)n);
    if (!l) {
        fprintf(stderr, "bench-sampler: out of memory for %d logits\n", (int)n);
        return 1;
    }
    uint32_t st = 12345;
    for (int32_t i = 0; i < n; i++) {
        float g = 0;
        for (int k = 0; k < 12; k++) {
            st = st * 1664525u + 1013904223u;
            g += (float)(st >> 8) * (1.0f / 16777216.0f);
        }
        l[i] = 3.0f * (g - 6.0f);
    }
    struct { const char *name; float temp; int32_t top_k; float top_p, min_p; } modes[] = {
        {"greedy", 0, 0, 1, 0},
        {"run defaults (t 0.8, top-k 40, top-p 0.95, min-p 0.05)", 0.8f, 40, 0.95f, 0.05f},
        {"API defaults (t 1, no cuts)", 1, 0, 1, 0},
    };
    printf("vocabulary %d, one thread, fastest of %d x %d calls\n", (int)n, reps, CALLS);
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        sampler_params p;
        sampler_params_default(&p);
        p.temperature = modes[m].temp, p.top_k = modes[m].top_k, p.top_p = modes[m].top_p, p.min_p = modes[m].min_p;
        sampler *s = sampler_new(&p, n);
        if (!s || sampler_set_logit_bias(s, 2, -100) != 0) {
            fprintf(stderr, "bench-sampler: %s\n", err_msg());
            return 1;
        }
        printf("  sample, %-56s %8.1f us\n", modes[m].name, best_of(reps, s, l, n, false));
        sampler_free(s);
    }
    printf("  logprobs, 5 alternatives %40s %8.1f us\n", "", best_of(reps, NULL, l, n, true));
    free(l);
    return 0;
}
