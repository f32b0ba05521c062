/* The scheduler on the bundled model: concurrent requests each get exactly the text they get
 * alone, the prefix cache reuses KV without changing results, cancellation frees KV at once,
 * bounded queues refuse, bad requests fail cleanly. */
#include "test.h"

#include "base/err.h"
#include "engine/generate.h"
#include "engine/kvcache.h"
#include "engine/sched.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

typedef struct collector {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char text[8192];
    size_t len;
    int n_text_events, n_logprob_events;
    bool done, error;
    sched_event fin;
    bool gated; /* the engine thread waits in the callback until the test opens the gate */
    _Atomic int *counter; /* NULL, or a count of text events this collector adds to */
    int counter_at_first; /* *watch when this collector's first text event came */
    _Atomic int *watch;
} collector;

static void collector_init(collector *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

static void on_event(void *ud, const sched_event *ev) {
    collector *c = ud;
    pthread_mutex_lock(&c->mu);
    if (ev->kind == SCHED_TEXT) {
        if (c->counter) atomic_fetch_add(c->counter, 1);
        if (c->watch && c->n_text_events == 0) c->counter_at_first = atomic_load(c->watch);
        if (c->len + ev->text_len < sizeof c->text) {
            memcpy(c->text + c->len, ev->text, ev->text_len);
            c->len += ev->text_len;
        }
        c->n_text_events++;
        if (ev->chosen) c->n_logprob_events++;
        pthread_cond_broadcast(&c->cv);
        while (c->gated) pthread_cond_wait(&c->cv, &c->mu);
    } else {
        c->done = true;
        c->error = ev->kind == SCHED_ERROR;
        c->fin = *ev;
        c->fin.message = NULL;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Waits for the end (or at most 60 s, which means the test failed). */
static bool wait_done(collector *c) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 60;
    pthread_mutex_lock(&c->mu);
    while (!c->done && pthread_cond_timedwait(&c->cv, &c->mu, &dl) == 0) {}
    bool done = c->done;
    pthread_mutex_unlock(&c->mu);
    return done;
}

static bool wait_events(collector *c, int n) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 60;
    pthread_mutex_lock(&c->mu);
    while (c->n_text_events < n && !c->done && pthread_cond_timedwait(&c->cv, &c->mu, &dl) == 0) {}
    bool ok = c->n_text_events >= n;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

typedef struct fixture {
    model *m;
    tokenizer *tok;
} fixture;

static bool fixture_open(fixture *f) {
    f->m = model_load("models/stories260K.gguf");
    f->tok = f->m ? tok_load(f->m->file) : NULL;
    CHECK_MSG(f->tok != NULL, "%s", err_msg());
    return f->tok != NULL;
}

static void fixture_close(fixture *f) {
    tok_free(f->tok);
    model_free(f->m);
}

static int append_text(void *ud, const char *t, size_t n) {
    collector *c = ud;
    memcpy(c->text + c->len, t, n);
    c->len += n;
    return 0;
}

/* What generate() gives for the same prompt and parameters: the one-sequence path. */
static void alone(fixture *f, const char *prompt, const sampler_params *sp, int n, collector *out) {
    gen_params gp;
    gen_result res;
    gen_params_default(&gp);
    gp.sampling = *sp;
    gp.n_predict = n;
    collector_init(out);
    CHECK(generate(f->m, f->tok, prompt, strlen(prompt), &gp, append_text, out, &res) == 0);
}

static int32_t *encode(fixture *f, const char *prompt, int32_t *n) {
    int32_t *ids = NULL;
    size_t nn = 0;
    CHECK(tok_encode(f->tok, prompt, strlen(prompt), true, false, &ids, &nn) == 0);
    *n = (int32_t)nn;
    return ids;
}

static void params(sched_params *p, uint64_t seed, int max_tokens) {
    memset(p, 0, sizeof *p);
    sampler_params_default(&p->sampling);
    p->sampling.seed = seed;
    p->max_tokens = max_tokens;
    p->top_logprobs = -1;
}

/* Submits the request alone to a fresh scheduler with cfg and collects its text. */
static void alone_in_sched(fixture *f, const sched_config *cfg, const char *prompt,
                           const sched_params *p, collector *out) {
    sched *s = sched_new(f->m, f->tok, cfg);
    int32_t n;
    int32_t *ids = encode(f, prompt, &n);
    collector_init(out);
    CHECK(s && sched_submit(s, ids, n, p, on_event, out) > 0);
    CHECK(wait_done(out));
    free(ids);
    sched_free(s);
}

/* N requests at once with fewer step slots than tokens and fewer running slots than requests
 * (prefill chunked and mixed with decoding, some requests queued) each get the text they get
 * alone: from generate() with an F32 cache (the same numbers as `veil run`), from a scheduler
 * running only that request with an F16 cache. Sampled with seeds, so the tokens drawn across
 * the pool's threads must be each request's own. */
static void concurrent_vs_alone(model_kv_type kv_type) {
    fixture f;
    if (!fixture_open(&f)) return;
    enum { N = 12 };
    static const char *prompts[] = {"Once upon a time", "The cat", "Lily and Ben", "One day"};
    sched_config cfg;
    sched_config_default(&cfg);
    cfg.max_batch = 16; /* fewer slots than tokens: prefill is chunked and interleaved */
    cfg.max_running = 8; /* more requests than slots: some wait in the queue */
    cfg.n_ctx = 256;
    cfg.kv_type = kv_type;
    cfg.n_threads = 2; /* tokens sampled on two threads (sample_step) on any machine */
    sched *s = sched_new(f.m, f.tok, &cfg);
    CHECK(s != NULL);
    static collector got[N], want[N];
    sched_params p[N];
    for (int i = 0; i < N; i++) {
        int32_t n;
        int32_t *ids = encode(&f, prompts[i % 4], &n);
        params(&p[i], 1000 + (uint64_t)i, 40 + i);
        collector_init(&got[i]);
        CHECK(sched_submit(s, ids, n, &p[i], on_event, &got[i]) > 0);
        free(ids);
    }
    for (int i = 0; i < N; i++) {
        CHECK(wait_done(&got[i]));
        if (kv_type == MODEL_KV_F32) alone(&f, prompts[i % 4], &p[i].sampling, 40 + i, &want[i]);
        else alone_in_sched(&f, &cfg, prompts[i % 4], &p[i], &want[i]);
        CHECK_MSG(got[i].len == want[i].len && memcmp(got[i].text, want[i].text, got[i].len) == 0,
                  "%s request %d: batched '%.*s' vs alone '%.*s'", model_kv_type_name(kv_type), i,
                  (int)got[i].len, got[i].text, (int)want[i].len, want[i].text);
        CHECK(got[i].fin.kind == SCHED_DONE);
        CHECK(got[i].fin.completion_tokens >= 1 && got[i].fin.completion_tokens <= 40 + i);
    }
    sched_stats st;
    sched_stats_get(s, &st);
    CHECK_EQ_INT(st.running, 0);
    CHECK(st.completion_tokens > 0 && st.steps > 0);
    CHECK_EQ_INT(st.kv_bytes_used, 0);
    CHECK(st.kv_bytes_cached > 0); /* the prompts' full blocks stay in the prefix cache */
    sched_free(s);
    fixture_close(&f);
}

TEST(sched_concurrent_requests_match_alone) { concurrent_vs_alone(MODEL_KV_F32); }
TEST(sched_concurrent_requests_match_alone_f16_kv) { concurrent_vs_alone(MODEL_KV_F16); }

TEST(sched_prefix_cache_reuses_and_agrees) {
    fixture f;
    if (!fixture_open(&f)) return;
    const char *prompt = "Once upon a time, there was a little girl named Lily. She loved to play "
                         "outside in the park. One day, she saw a big red ball.";
    int32_t n;
    int32_t *ids = encode(&f, prompt, &n);
    CHECK(n > 2 * MODEL_KV_BLOCK);
    sched_config cfg;
    sched_config_default(&cfg);
    cfg.n_ctx = 256;
    sched *s = sched_new(f.m, f.tok, &cfg);
    collector a, b;
    sched_params p;
    params(&p, 7, 30);
    collector_init(&a);
    collector_init(&b);
    CHECK(sched_submit(s, ids, n, &p, on_event, &a) > 0);
    CHECK(wait_done(&a));
    CHECK_EQ_INT(a.fin.cached_tokens, 0);
    CHECK(sched_submit(s, ids, n, &p, on_event, &b) > 0);
    CHECK(wait_done(&b));
    CHECK_EQ_INT(b.fin.cached_tokens, (n - 1) / MODEL_KV_BLOCK * MODEL_KV_BLOCK);
    CHECK(a.len == b.len && memcmp(a.text, b.text, a.len) == 0);
    sched_free(s);
    /* and without the cache: the same text, nothing cached */
    cfg.prefix_cache = false;
    s = sched_new(f.m, f.tok, &cfg);
    collector c;
    collector_init(&c);
    CHECK(sched_submit(s, ids, n, &p, on_event, &c) > 0);
    collector_init(&b);
    CHECK(wait_done(&c));
    CHECK(sched_submit(s, ids, n, &p, on_event, &b) > 0);
    CHECK(wait_done(&b));
    CHECK_EQ_INT(b.fin.cached_tokens, 0);
    CHECK(c.len == a.len && memcmp(c.text, a.text, a.len) == 0);
    sched_free(s);
    free(ids);
    fixture_close(&f);
}

TEST(sched_cancel_frees_kv) {
    fixture f;
    if (!fixture_open(&f)) return;
    sched_config cfg;
    sched_config_default(&cfg);
    cfg.n_ctx = 512;
    cfg.prefix_cache = false;
    sched *s = sched_new(f.m, f.tok, &cfg);
    int32_t n;
    int32_t *ids = encode(&f, "Once upon a time", &n);
    sched_params p;
    params(&p, 1, 400);
    p.sampling.temperature = 1.5f; /* keep it talking */
    collector c;
    collector_init(&c);
    int64_t id = sched_submit(s, ids, n, &p, on_event, &c);
    CHECK(id > 0);
    CHECK(wait_events(&c, 2));
    sched_cancel(s, id);
    CHECK(wait_done(&c));
    CHECK(c.fin.finish == SCHED_FINISH_CANCELLED);
    sched_stats st;
    sched_stats_get(s, &st);
    CHECK_EQ_INT(st.kv_bytes_used, 0);
    sched_cancel(s, id); /* unknown by now: ignored */
    sched_cancel(s, 999999);
    sched_free(s);
    free(ids);
    fixture_close(&f);
}

TEST(sched_rejects_bad_requests_and_full_queue) {
    fixture f;
    if (!fixture_open(&f)) return;
    sched_config cfg;
    sched_config_default(&cfg);
    cfg.n_ctx = 64;
    cfg.max_running = 1;
    cfg.max_queue = 1;
    cfg.kv_bytes = 4 * model_kv_block_bytes(f.m, cfg.kv_type); /* 64 positions */
    sched *s = sched_new(f.m, f.tok, &cfg);
    int32_t ids[80];
    for (int i = 0; i < 80; i++) ids[i] = 300 + i;
    sched_params p;
    params(&p, 1, 10);
    collector c[4];
    for (int i = 0; i < 4; i++) collector_init(&c[i]);
    CHECK(sched_submit(s, ids, 70, &p, on_event, &c[0]) == -1); /* longer than the context */
    CHECK(strstr(err_msg(), "context") != NULL);
    CHECK(!sched_last_error_was_queue_full());
    CHECK(sched_submit(s, ids, 0, &p, on_event, &c[0]) == -1);
    ids[3] = 100000;
    CHECK(sched_submit(s, ids, 10, &p, on_event, &c[0]) == -1); /* token out of range */
    ids[3] = 303;
    p.sampling.top_p = 2;
    CHECK(sched_submit(s, ids, 10, &p, on_event, &c[0]) == -1);
    CHECK(strstr(err_msg(), "top_p") != NULL);
    p.sampling.top_p = 1;
    /* one runs (held inside its first event), one waits, the third is refused: queue full */
    p.max_tokens = 50;
    c[0].gated = true;
    CHECK(sched_submit(s, ids, 10, &p, on_event, &c[0]) > 0);
    CHECK(wait_events(&c[0], 1));
    CHECK(sched_submit(s, ids, 10, &p, on_event, &c[1]) > 0);
    CHECK(sched_submit(s, ids, 10, &p, on_event, &c[2]) == -1);
    CHECK(sched_last_error_was_queue_full());
    pthread_mutex_lock(&c[0].mu);
    c[0].gated = false;
    pthread_cond_broadcast(&c[0].cv);
    pthread_mutex_unlock(&c[0].mu);
    for (int i = 0; i < 2; i++) CHECK(wait_done(&c[i]));
    CHECK_EQ_INT(sched_drain(s, 5), 0);
    CHECK(sched_submit(s, ids, 10, &p, on_event, &c[3]) == -1); /* draining */
    sched_free(s);
    fixture_close(&f);
}

/* With every running slot decoding, a new prompt still gets prefill_min tokens per step: it
 * starts streaming after a few steps, not after the decoding streams' many tokens (decode
 * first would give it one token per step). The decoding streams take turns and all advance. */
TEST(sched_prompt_share_bounds_first_token) {
    fixture f;
    if (!fixture_open(&f)) return;
    enum { LONG = 7, PROMPT = 40 };
    sched_config cfg;
    sched_config_default(&cfg);
    cfg.max_batch = 8;
    cfg.max_running = 8;
    cfg.prefill_min = 4;
    cfg.n_ctx = 256;
    sched *s = sched_new(f.m, f.tok, &cfg);
    CHECK(s != NULL);
    static _Atomic int decoded;
    atomic_store(&decoded, 0);
    static collector longs[LONG];
    int32_t ids[PROMPT], eos = tok_eos(f.tok);
    float ban = -INFINITY;
    int64_t id[LONG];
    for (int i = 0; i < PROMPT; i++) ids[i] = 300 + i;
    sched_params p;
    params(&p, 5, 200);
    p.top_logprobs = 0; /* an event for every token */
    p.bias_tokens = &eos;
    p.logit_bias = &ban;
    p.n_bias = 1;
    for (int i = 0; i < LONG; i++) {
        collector_init(&longs[i]);
        longs[i].counter = &decoded;
        id[i] = sched_submit(s, ids + i, 3, &p, on_event, &longs[i]);
        CHECK(id[i] > 0);
    }
    for (int i = 0; i < LONG; i++) CHECK(wait_events(&longs[i], 1));
    /* hold the engine inside a step (in longs[0]'s next event) while the prompt is submitted,
     * so no steps slip in between counting and submitting */
    pthread_mutex_lock(&longs[0].mu);
    longs[0].gated = true;
    int seen = longs[0].n_text_events;
    pthread_mutex_unlock(&longs[0].mu);
    CHECK(wait_events(&longs[0], seen + 1));
    collector late;
    collector_init(&late);
    late.watch = &decoded;
    int before = atomic_load(&decoded);
    sched_params short_p = p;
    short_p.max_tokens = 2;
    CHECK(sched_submit(s, ids, PROMPT, &short_p, on_event, &late) > 0);
    pthread_mutex_lock(&longs[0].mu);
    longs[0].gated = false;
    pthread_cond_broadcast(&longs[0].cv);
    pthread_mutex_unlock(&longs[0].mu);
    CHECK(wait_events(&late, 1));
    /* the rest of the held step (at most LONG - 1 tokens), then PROMPT / prefill_min = 10
     * steps of at most 8 - 4 decode tokens; decode first would take 40 steps of 7 */
    int between = late.counter_at_first - before;
    CHECK_MSG(between <= 10 * 4 + LONG, "%d tokens decoded before the new prompt's first", between);
    for (int i = 0; i < LONG; i++) {
        sched_cancel(s, id[i]);
        CHECK(wait_done(&longs[i]));
        CHECK(longs[i].n_text_events > 1);
    }
    CHECK(wait_done(&late));
    sched_free(s);
    fixture_close(&f);
}

TEST(sched_logprobs_events) {
    fixture f;
    if (!fixture_open(&f)) return;
    sched *s = sched_new(f.m, f.tok, NULL);
    int32_t n;
    int32_t *ids = encode(&f, "The dog", &n);
    sched_params p;
    params(&p, 3, 8);
    p.top_logprobs = 3;
    collector c;
    collector_init(&c);
    CHECK(sched_submit(s, ids, n, &p, on_event, &c) > 0);
    CHECK(wait_done(&c));
    CHECK_EQ_INT(c.n_logprob_events, c.fin.completion_tokens);
    sched_free(s);
    free(ids);
    fixture_close(&f);
}

TEST(kvcache_lru_and_verified_lookup) {
    fixture f;
    if (!fixture_open(&f)) return;
    kvcache *c = kvcache_new(f.m, NULL, 3, MODEL_KV_F32);
    int32_t t1[MODEL_KV_BLOCK], t2[MODEL_KV_BLOCK];
    for (int i = 0; i < MODEL_KV_BLOCK; i++) t1[i] = i, t2[i] = 100 + i;
    int32_t a = kvcache_alloc(c), b = kvcache_alloc(c), d = kvcache_alloc(c);
    CHECK(a >= 0 && b >= 0 && d >= 0 && kvcache_alloc(c) == -1);
    kvcache_register(c, a, 0, t1);
    uint64_t h1 = kvcache_chain_hash(0, t1);
    kvcache_register(c, b, h1, t2);
    kvcache_release(c, a);
    kvcache_release(c, b);
    kvcache_release(c, d);
    CHECK_EQ_INT(kvcache_available(c), 3);
    CHECK_EQ_INT(kvcache_cached_only(c), 2);
    CHECK_EQ_INT(kvcache_lookup(c, 0, t1), a);
    CHECK_EQ_INT(kvcache_lookup(c, 0, t2), -1);   /* wrong parent */
    CHECK_EQ_INT(kvcache_lookup(c, h1, t2), b);
    kvcache_release(c, a);
    kvcache_release(c, b);
    /* three fresh blocks: the free one, then the oldest cached (a), then b */
    int32_t x = kvcache_alloc(c), y = kvcache_alloc(c);
    CHECK(x == d && y == a);
    CHECK_EQ_INT(kvcache_lookup(c, 0, t1), -1);   /* evicted */
    CHECK_EQ_INT(kvcache_lookup(c, h1, t2), b);
    kvcache_release(c, b);
    kvcache_clear(c);
    CHECK_EQ_INT(kvcache_cached_only(c), 0);
    CHECK_EQ_INT(kvcache_lookup(c, h1, t2), -1);
    kvcache_free(c);
    fixture_close(&f);
}
