/* veil bench's measurements (bench.h). The three throughput figures drive model_runner the way
 * the engine does: a prompt in batches, one token per step, and B sequences per step. */
#include "engine/bench.h"

#include "base/clock.h"
#include "base/err.h"
#include "base/rng.h"
#include "tensor/matmul.h"
#include "tensor/qtype.h"
#include "tensor/threadpool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

void bench_params_default(bench_params *p) {
    *p = (bench_params){.n_pp = 128, .n_tg = 64, .batch = 4, .reps = 3, .seed = 1234};
}

static uint64_t matrix_bytes(const model_matrix *w) {
    return qtype_row_size(w->type, (uint64_t)w->n_in) * (uint64_t)w->n_out;
}

uint64_t bench_bytes_per_token(const model *m) {
    uint64_t b = qtype_row_size(m->tok_embd.type, (uint64_t)m->tok_embd.n_in) + matrix_bytes(&m->output);
    for (int il = 0; il < m->hp.n_layer; il++) {
        const model_layer *l = &m->layers[il];
        const model_matrix *ws[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) b += matrix_bytes(ws[i]);
    }
    return b;
}

const char *bench_weight_type(const model *m) {
    uint64_t by_type[QT_COUNT] = {0};
    by_type[m->output.type] += matrix_bytes(&m->output);
    if (m->output.data != m->tok_embd.data) by_type[m->tok_embd.type] += matrix_bytes(&m->tok_embd);
    for (int il = 0; il < m->hp.n_layer; il++) {
        const model_layer *l = &m->layers[il];
        const model_matrix *ws[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) by_type[ws[i]->type] += matrix_bytes(ws[i]);
    }
    int best = 0;
    for (int t = 1; t < QT_COUNT; t++)
        if (by_type[t] > by_type[best]) best = t;
    return qtype_get((uint32_t)best)->name;
}

uint64_t bench_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

/* ---- throughput ----------------------------------------------------------------------- */

typedef struct bench_state {
    const model *m;
    const bench_params *p;
    model_runner *runner;
    model_seq *one;       /* pp and tg */
    model_seq **many;     /* batched decode */
    model_token *batch;
    float *logits;        /* batch rows of n_vocab */
    int32_t *ids;         /* random ids: max(n_pp, n_tg * batch) */
    int32_t pp_batch;
} bench_state;

static void progress(const bench_state *s, const char *phase, int run) {
    if (s->p->progress) s->p->progress(s->p->ud, phase, run, s->p->reps);
}

/* One prompt of n_pp tokens; only the last token's logits, as a prompt needs. */
static int run_pp(bench_state *s, double *seconds) {
    int32_t n = s->p->n_pp;
    double t0 = clock_now();
    for (int32_t done = 0; done < n; done += s->pp_batch) {
        int32_t k = n - done < s->pp_batch ? n - done : s->pp_batch;
        for (int32_t t = 0; t < k; t++)
            s->batch[t] = (model_token){s->one, s->ids[done + t], done + t,
                                        done + t == n - 1 ? s->logits : NULL};
        if (model_runner_forward(s->runner, s->batch, k)) return -1;
    }
    *seconds = clock_now() - t0;
    return 0;
}

/* n_tg steps of `width` sequences (width 1: s->one), every token with its logits. */
static int run_decode(bench_state *s, int32_t width, double *seconds) {
    int32_t n_vocab = s->m->hp.n_vocab;
    double t0 = clock_now();
    for (int32_t pos = 0; pos < s->p->n_tg; pos++) {
        for (int32_t b = 0; b < width; b++)
            s->batch[b] = (model_token){width == 1 ? s->one : s->many[b],
                                        s->ids[(size_t)pos * width + b], pos,
                                        s->logits + (size_t)b * n_vocab};
        if (model_runner_forward(s->runner, s->batch, width)) return -1;
    }
    *seconds = clock_now() - t0;
    return 0;
}

/* Best tokens/s over reps runs of one phase; per-op times go to prof when profiling. */
static int best_of(bench_state *s, const char *phase, int32_t width, model_profile *prof,
                   double tokens, double *tps) {
    double sec;
    /* a device's first run of a shape loads kernels and picks cuBLAS algorithms: untimed */
    if (s->p->device && (width ? run_decode(s, width, &sec) : run_pp(s, &sec))) return -1;
    model_runner_set_profile(s->runner, s->p->profile ? prof : NULL);
    *tps = 0;
    for (int run = 1; run <= s->p->reps; run++) {
        progress(s, phase, run);
        if ((width ? run_decode(s, width, &sec) : run_pp(s, &sec))) return -1;
        if (tokens / sec > *tps) *tps = tokens / sec;
    }
    model_runner_set_profile(s->runner, NULL);
    return 0;
}

int bench_model(const model *m, const bench_params *p, bench_result *r) {
    bench_state s = {m, p, NULL, NULL, NULL, NULL, NULL, NULL, 0};
    int rc = -1;
    memset(r, 0, sizeof *r);
    if (p->n_pp < 1 || p->n_tg < 1 || p->batch < 1 || p->reps < 1)
        return err_set("bench: pp, tg, batch and reps must be at least 1");
    int32_t n_ctx = p->n_pp > p->n_tg ? p->n_pp : p->n_tg;
    s.pp_batch = p->pp_batch > 0 ? p->pp_batch : p->device ? device_prompt_batch(p->device) : BENCH_PP_BATCH;
    if (s.pp_batch > p->n_pp) s.pp_batch = p->n_pp;
    r->pp_batch = s.pp_batch;
    int32_t max_batch = p->batch > s.pp_batch ? p->batch : s.pp_batch;
    size_t n_ids = (size_t)p->n_tg * (size_t)p->batch > (size_t)p->n_pp ? (size_t)p->n_tg * (size_t)p->batch
                                                                         : (size_t)p->n_pp;
    s.runner = p->device ? device_runner_new(p->device, max_batch) : model_runner_new(m, max_batch, p->n_threads);
    if (!s.runner) goto out;
    s.one = p->device ? device_seq_new(p->device, n_ctx, p->kv_type) : model_seq_new(m, n_ctx, p->kv_type);
    if (!s.one) goto out;
    s.many = calloc((size_t)p->batch, sizeof *s.many);
    s.batch = malloc((size_t)max_batch * sizeof *s.batch);
    s.logits = device_logits_alloc(p->device, (size_t)p->batch * (size_t)m->hp.n_vocab);
    s.ids = malloc(n_ids * sizeof *s.ids);
    if (!s.many || !s.batch || !s.logits || !s.ids) {
        err_set("bench: out of memory");
        goto out;
    }
    for (int32_t b = 0; b < p->batch; b++)
        if (!(s.many[b] = p->device ? device_seq_new(p->device, p->n_tg, p->kv_type)
                                    : model_seq_new(m, p->n_tg, p->kv_type)))
            goto out;
    rng g = rng_stream(p->seed, 0, 0);
    for (size_t i = 0; i < n_ids; i++) s.ids[i] = (int32_t)rng_below(&g, (uint64_t)m->hp.n_vocab);
    r->bytes_per_token = bench_bytes_per_token(m);
    r->kv_bytes = model_seq_bytes(m, n_ctx, p->kv_type) +
                  (size_t)p->batch * model_seq_bytes(m, p->n_tg, p->kv_type);
    if (best_of(&s, "pp", 0, &r->pp_prof, p->n_pp, &r->pp_tps) ||
        best_of(&s, "tg", 1, &r->tg_prof, p->n_tg, &r->tg_tps) ||
        best_of(&s, "batch", p->batch, &r->batch_prof, (double)p->n_tg * p->batch, &r->tg_batch_tps))
        goto out;
    if (p->profile) {
        r->pp_prof_tokens = (int64_t)p->n_pp * p->reps;
        r->tg_prof_tokens = (int64_t)p->n_tg * p->reps;
        r->batch_prof_tokens = (int64_t)p->n_tg * p->batch * p->reps;
    }
    rc = 0;
out:
    for (int32_t b = 0; s.many && b < p->batch; b++) model_seq_free(s.many[b]);
    free(s.many);
    free(s.batch);
    device_logits_free(p->device, s.logits);
    free(s.ids);
    model_seq_free(s.one);
    model_runner_free(s.runner);
    return rc;
}

/* ---- reports ---------------------------------------------------------------------------- */

static double bw_fraction(const bench_report *r, double tps) {
    return r->membw_gbs > 0 ? tps * (double)r->res->bytes_per_token / (r->membw_gbs * 1e9) : NAN;
}

void bench_print_text(FILE *f, const bench_report *r) {
    const bench_params *p = r->params;
    const bench_result *x = r->res;
    double mb = 1e6;
    fprintf(f, "model       %s (%s: %s, %d layers, dim %d, %s, %.1f MB)\n", r->path, r->name,
            model_arch_name(r->hp->arch), r->hp->n_layer, r->hp->n_embd, r->weight_type,
            (double)r->file_bytes / mb);
    if (p->device && device_is_gpu(p->device))
        fprintf(f, "setup       %s, best of %d runs\n", device_describe(p->device), p->reps);
    else
        fprintf(f, "setup       %d threads, %s kernels%s, %s KV cache, best of %d runs\n", r->n_threads,
                matmul_backend_name(matmul_backend()),
                p->device && device_model(p->device)->base ? " (packed weights)" : "",
                model_kv_type_name(p->kv_type), p->reps);
    fprintf(f, "pp %-8d %10.2f tokens/s   (one prompt, batches of %d)\n", p->n_pp, x->pp_tps, x->pp_batch);
    fprintf(f, "tg %-8d %10.2f tokens/s   (one sequence)", p->n_tg, x->tg_tps);
    if (r->membw_gbs > 0)
        fprintf(f, ", %.2f GB/s = %.0f%% of the bandwidth limit\n",
                x->tg_tps * (double)x->bytes_per_token / 1e9, 100 * bw_fraction(r, x->tg_tps));
    else fputc('\n', f);
    fprintf(f, "tg %-3d x %-3d %9.2f tokens/s   (%d sequences together)", p->n_tg, p->batch,
            x->tg_batch_tps, p->batch);
    if (r->membw_gbs > 0)
        fprintf(f, ", weights at %.0f%% of the bandwidth limit\n",
                100 * bw_fraction(r, x->tg_batch_tps / p->batch));
    else fputc('\n', f);
    fprintf(f, "bytes/token %.1f MB\n", (double)x->bytes_per_token / mb);
    if (r->membw_gbs > 0)
        fprintf(f, "membw       %.2f GB/s (%s); tg limit %.2f tokens/s\n", r->membw_gbs,
                r->membw_measured ? "measured" : "given",
                r->membw_gbs * 1e9 / (double)x->bytes_per_token);
    fprintf(f, "peak RSS    %.1f MB (file %.1f MB, KV caches %.1f MB)\n", (double)r->peak_rss / mb,
            (double)r->file_bytes / mb, (double)x->kv_bytes / mb);
    if (!p->profile) return;
    const model_profile *prof[3] = {&x->pp_prof, &x->tg_prof, &x->batch_prof};
    const int64_t tokens[3] = {x->pp_prof_tokens, x->tg_prof_tokens, x->batch_prof_tokens};
    double total[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++)
        for (int op = 0; op < PROF_COUNT; op++) total[k] += prof[k]->seconds[op];
    char batch_ms[32], batch_pc[32];
    snprintf(batch_ms, sizeof batch_ms, "x%d ms/tok", p->batch);
    snprintf(batch_pc, sizeof batch_pc, "x%d %%", p->batch);
    fprintf(f, "profile     %-12s %10s %6s %10s %6s %10s %6s\n", "op", "pp ms/tok", "pp %",
            "tg ms/tok", "tg %", batch_ms, batch_pc);
    for (int op = 0; op < PROF_COUNT; op++) {
        fprintf(f, "            %-12s", model_prof_name(op));
        for (int k = 0; k < 3; k++)
            fprintf(f, " %10.4f %5.1f%%", 1e3 * prof[k]->seconds[op] / (double)tokens[k],
                    total[k] > 0 ? 100 * prof[k]->seconds[op] / total[k] : 0);
        fputc('\n', f);
    }
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}

/* A number, or null for NaN/infinity (JSON has neither). */
static void json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}

static void json_profile(FILE *f, const model_profile *prof, int64_t tokens) {
    fputc('{', f);
    for (int op = 0; op < PROF_COUNT; op++) {
        if (op) fputc(',', f);
        json_str(f, model_prof_name(op));
        fputc(':', f);
        json_num(f, 1e3 * prof->seconds[op] / (double)tokens);
    }
    fputc('}', f);
}

void bench_print_json(FILE *f, const bench_report *r) {
    const bench_params *p = r->params;
    const bench_result *x = r->res;
    fputs("{\"model\":", f);
    json_str(f, r->path);
    fputs(",\"name\":", f);
    json_str(f, r->name);
    fprintf(f, ",\"arch\":\"%s\",\"weight_type\":\"%s\",\"n_layer\":%d,\"n_embd\":%d,"
               "\"file_bytes\":%llu,\"threads\":%d,\"kernels\":\"%s\",\"reps\":%d,\"pp\":%d,"
               "\"tg\":%d,\"batch\":%d,\"kv_type\":\"%s\"",
            model_arch_name(r->hp->arch), r->weight_type, r->hp->n_layer, r->hp->n_embd,
            (unsigned long long)r->file_bytes, r->n_threads, matmul_backend_name(matmul_backend()),
            p->reps, p->n_pp, p->n_tg, p->batch, model_kv_type_name(p->kv_type));
    fputs(",\"device\":", f);
    json_str(f, p->device ? device_describe(p->device) : "cpu");
    fprintf(f, ",\"pp_batch\":%d", x->pp_batch);
    fputs(",\"pp_tps\":", f);
    json_num(f, x->pp_tps);
    fputs(",\"tg_tps\":", f);
    json_num(f, x->tg_tps);
    fputs(",\"tg_batch_tps\":", f);
    json_num(f, x->tg_batch_tps);
    fprintf(f, ",\"bytes_per_token\":%llu,\"kv_bytes\":%llu", (unsigned long long)x->bytes_per_token,
            (unsigned long long)x->kv_bytes);
    fputs(",\"membw_gbs\":", f);
    json_num(f, r->membw_gbs > 0 ? r->membw_gbs : NAN);
    fprintf(f, ",\"membw_measured\":%s", r->membw_gbs > 0 && r->membw_measured ? "true" : "false");
    fputs(",\"tg_bw_gbs\":", f);
    json_num(f, x->tg_tps * (double)x->bytes_per_token / 1e9);
    fputs(",\"tg_bw_fraction\":", f);
    json_num(f, bw_fraction(r, x->tg_tps));
    fputs(",\"tg_batch_bw_fraction\":", f);
    json_num(f, bw_fraction(r, x->tg_batch_tps / p->batch));
    fprintf(f, ",\"peak_rss_bytes\":%llu", (unsigned long long)r->peak_rss);
    if (p->profile) {
        fputs(",\"profile\":{\"unit\":\"ms per token\",\"pp\":", f);
        json_profile(f, &x->pp_prof, x->pp_prof_tokens);
        fputs(",\"tg\":", f);
        json_profile(f, &x->tg_prof, x->tg_prof_tokens);
        fputs(",\"batch\":", f);
        json_profile(f, &x->batch_prof, x->batch_prof_tokens);
        fputc('}', f);
    }
    fputs("}\n", f);
}
