/* Engine speed measurements behind `veil bench`: prompt processing, single-sequence decode and
 * batched decode throughput of a loaded model, the weight bytes one decoded token reads, the
 * machine's memory read bandwidth (decode is bound by it), and peak memory.
 *
 * Every figure is the best of `reps` runs: the first run also pays for faulting the mmapped
 * weights in, and the best run is the one least disturbed by the rest of the machine. On a
 * device each phase first runs once untimed (kernel loading, cuBLAS's algorithm choice), so
 * profiles show the steady state. Token ids are pseudo-random with a fixed seed, so runs are
 * repeatable. */
#ifndef VEIL_BENCH_H
#define VEIL_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/device.h"
#include "model/forward.h"

typedef struct bench_params {
    int n_threads;  /* <= 0: one per CPU */
    device *device; /* NULL = the CPU with n_threads */
    int32_t n_pp;   /* prompt length (one sequence, in batches of pp_batch tokens) */
    int32_t pp_batch; /* <= 0: BENCH_PP_BATCH on the CPU, device_prompt_batch on a device */
    int32_t n_tg;   /* tokens decoded one at a time, from an empty cache */
    int32_t batch;  /* concurrent sequences for batched decode, each advancing n_tg tokens */
    int32_t reps;
    bool profile;   /* add per-op times (model_runner_set_profile) for pp, tg and batch */
    model_kv_type kv_type; /* KV cache elements (default F32) */
    uint64_t seed;
    /* Called before each run (may be NULL): phase "pp", "tg" or "batch", run 1..reps. */
    void (*progress)(void *ud, const char *phase, int run, int reps);
    void *ud;
} bench_params;

#define BENCH_PP_BATCH 64

typedef struct bench_result {
    double pp_tps, tg_tps, tg_batch_tps; /* tokens per second; batch: all sequences together */
    uint64_t bytes_per_token;            /* bench_bytes_per_token */
    int32_t pp_batch;                    /* prompt tokens per forward pass used */
    size_t kv_bytes;                     /* KV caches allocated for the runs */
    /* With profile: seconds per op summed over all runs, and the tokens they processed
     * (batch: the tokens of all sequences). */
    model_profile pp_prof, tg_prof, batch_prof;
    int64_t pp_prof_tokens, tg_prof_tokens, batch_prof_tokens;
} bench_result;

/* Defaults: pp 128, tg 64, batch 4, reps 3, all CPUs, seed 1234. */
void bench_params_default(bench_params *p);

/* Weight bytes one decoded token reads: every layer matrix, the output matrix and one row of
 * the token embeddings (norm vectors are left out: a few KB). */
uint64_t bench_bytes_per_token(const model *m);

/* Runs pp, tg and batched decode. 0, or -1 with err_msg() (out of memory, bad parameters,
 * a forward error). */
int bench_model(const model *m, const bench_params *p, bench_result *r);

/* What the CLI's read-bandwidth probe (tensor/membw.h) reads, unless told the size
 * (`--buffer`): the same each time, so its figures compare across runs. */
#define BENCH_MEMBW_BYTES ((size_t)1 << 30)
#define BENCH_MEMBW_PASSES 5

/* This process's peak resident set so far (getrusage ru_maxrss), in bytes. */
uint64_t bench_peak_rss(void);

/* Everything `veil bench` prints about one model. */
typedef struct bench_report {
    const char *path, *name;
    const char *weight_type;  /* the type holding most matrix bytes */
    uint64_t file_bytes;
    const model_hparams *hp;
    const bench_params *params;
    int n_threads;            /* the resolved count */
    const bench_result *res;
    double membw_gbs;         /* <= 0: unknown */
    bool membw_measured;
    uint64_t peak_rss;
} bench_report;

/* The type holding most matrix bytes of m (for display). */
const char *bench_weight_type(const model *m);
/* Human-readable lines. */
void bench_print_text(FILE *f, const bench_report *r);
/* One JSON object on one line: at least kernels (the matmul backend), device, pp_batch, pp_tps, tg_tps,
 * tg_batch_tps, batch, bytes_per_token, membw_gbs (null when unknown), tg_bw_fraction (null
 * when unknown), peak_rss_bytes; with profile, "profile": {"unit": ..., "pp": {op: ms per
 * token, ...}, "tg": {...}, "batch": {...}}. */
void bench_print_json(FILE *f, const bench_report *r);

#endif
