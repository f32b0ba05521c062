/* Continuous-batching scheduler (sched.h). The engine thread runs `engine_main`: admit waiting
 * requests while KV blocks allow, build one batch within the token budget (decode tokens and
 * prompt chunks, with a share kept for prompts: build_batch), run the forward pass, sample,
 * stream text, retire finished requests. The mutex guards the queue, the live list, flags and
 * statistics; everything else belongs to the engine thread. */
#include "engine/sched.h"

#include "base/clock.h"
#include "base/err.h"
#include "engine/kvcache.h"
#include "model/forward.h"
#include "model/stopstr.h"
#include "tensor/threadpool.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define B MODEL_KV_BLOCK

typedef enum req_state { REQ_QUEUED, REQ_PREFILL, REQ_DECODE } req_state;

typedef struct req {
    int64_t id;
    struct req *next;                 /* queue link */
    struct req *live_prev, *live_next;
    req_state state;
    _Atomic bool cancelled;
    sched_event_fn fn;
    void *ud;
    int32_t max_tokens, top_logprobs;
    bool render_special;
    sampler *smp;
    stopstr *stop;
    int32_t *tokens;                  /* prompt, then generated */
    int32_t n_prompt, n_tokens, cap;
    int32_t n_past;                   /* positions whose KV is computed */
    int32_t n_cached, n_gen;
    int32_t *blocks;
    int32_t n_blocks;
    int32_t n_registered;             /* leading blocks registered in the prefix cache */
    uint64_t chain;                   /* chain hash after the registered blocks */
    model_seq seq;
    int slot;                         /* index in running[] */
    double t_submit, ttft;
    bool got_first;
    uint64_t last_served;             /* the step that last decoded a token of it */
    /* this step's token, sampled with the others' across the pool (sample_step) */
    const float *pick_logits;         /* its logits row; NULL: no token this step */
    int32_t pick;                     /* the token, or -1 (pick_err says why) */
    char pick_err[256];
    float pick_lp;                    /* with top_logprobs >= 0: its logprob and the top ones */
    int32_t n_pick_top;
    sampler_logprob pick_top[SAMPLER_MAX_TOP_LOGPROBS];
} req;

struct sched {
    const model *m;
    const tokenizer *tok;
    sched_config cfg;
    int32_t n_ctx;
    kvcache *kv;
    model_runner *runner;
    tpool *pool;                      /* sampling's threads: the runner's, or own_pool */
    tpool *own_pool;
    req **picks;                      /* [max_running]: this step's requests to sample */
    float *logits;                    /* [max_running][n_vocab] */
    model_token *batch;
    req **running;
    int32_t n_running;
    char *piece;
    sched_logprob *top;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    req *q_head, *q_tail;
    int32_t n_queued;
    req *live;                        /* every request not yet retired */
    int64_t next_id;
    bool stopping, draining;
    sched_stats stats;
};

static _Thread_local bool last_queue_full;
bool sched_last_error_was_queue_full(void) { return last_queue_full; }

void sched_config_default(sched_config *c) {
    *c = (sched_config){.max_batch = 64, .max_running = 64, .max_queue = 256, .prefix_cache = true,
                        .kv_type = MODEL_KV_F16};
}

/* ---- request lifetime ------------------------------------------------------------------ */

static void req_free(req *r) {
    if (!r) return;
    sampler_free(r->smp);
    stopstr_free(r->stop);
    free(r->tokens);
    free(r->blocks);
    free(r);
}

static void emit(req *r, const sched_event *ev) { r->fn(r->ud, ev); }

/* Engine thread: releases the blocks, unlinks, reports the end, frees. The KV is free before
 * the last event goes out, so a client that saw its request end sees the memory back. */
static void retire(sched *s, req *r, sched_finish finish, const char *error) {
    const char *text;
    size_t len;
    if (!error && finish != SCHED_FINISH_CANCELLED) {
        stopstr_flush(r->stop, &text, &len);
        if (len) emit(r, &(sched_event){.kind = SCHED_TEXT, .text = text, .text_len = len});
    }
    for (int32_t i = 0; i < r->n_blocks; i++)
        if (r->blocks[i] >= 0) kvcache_release(s->kv, r->blocks[i]);
    if (r->state != REQ_QUEUED) {
        s->running[r->slot] = s->running[--s->n_running];
        s->running[r->slot]->slot = r->slot;
    }
    pthread_mutex_lock(&s->mu);
    if (r->live_prev) r->live_prev->live_next = r->live_next; else s->live = r->live_next;
    if (r->live_next) r->live_next->live_prev = r->live_prev;
    s->stats.prompt_tokens += (uint64_t)r->n_prompt;
    s->stats.cached_tokens += (uint64_t)r->n_cached;
    s->stats.completion_tokens += (uint64_t)r->n_gen;
    s->stats.running = s->n_running;
    pthread_mutex_unlock(&s->mu);
    sched_event ev = {.kind = error ? SCHED_ERROR : SCHED_DONE, .finish = finish,
                      .prompt_tokens = r->n_prompt, .cached_tokens = r->n_cached,
                      .completion_tokens = r->n_gen, .ttft_seconds = r->ttft, .message = error};
    emit(r, &ev);
    req_free(r);
}

/* ---- admission ------------------------------------------------------------------------ */

static int32_t blocks_needed(const sched *s, const req *r) {
    int32_t n = r->n_prompt + r->max_tokens;
    if (n > s->n_ctx) n = s->n_ctx;
    return (n + B - 1) / B;
}

/* Engine thread, mutex held: gives r its KV blocks (reusing cached prefix blocks). */
static bool try_admit(sched *s, req *r) {
    int32_t need = blocks_needed(s, r), matched = 0;
    uint64_t chain = 0;
    for (int32_t i = 0; i < need; i++) r->blocks[i] = -1;
    if (s->cfg.prefix_cache) {
        /* never the block holding the last prompt token: its logits must be computed */
        int32_t reusable = (r->n_prompt - 1) / B;
        while (matched < reusable) {
            int32_t b = kvcache_lookup(s->kv, chain, r->tokens + matched * B);
            if (b < 0) break;
            r->blocks[matched] = b;
            chain = kvcache_chain_hash(chain, r->tokens + matched * B);
            matched++;
        }
    }
    if (kvcache_available(s->kv) < need - matched) {
        for (int32_t i = 0; i < matched; i++) kvcache_release(s->kv, r->blocks[i]);
        for (int32_t i = 0; i < matched; i++) r->blocks[i] = -1;
        return false;
    }
    for (int32_t i = matched; i < need; i++) r->blocks[i] = kvcache_alloc(s->kv);
    r->n_blocks = need;
    r->n_registered = matched;
    r->chain = chain;
    r->n_past = r->n_cached = matched * B;
    r->seq = (model_seq){.kv = kvcache_storage(s->kv), .blocks = r->blocks, .n_ctx = need * B};
    if (r->seq.n_ctx > s->n_ctx) r->seq.n_ctx = s->n_ctx;
    r->state = REQ_PREFILL;
    r->slot = s->n_running;
    s->running[s->n_running++] = r;
    return true;
}

/* Engine thread, mutex held: moves requests from the queue head while they fit. */
static void admit(sched *s) {
    while (s->q_head && s->n_running < s->cfg.max_running) {
        req *r = s->q_head;
        if (atomic_load(&r->cancelled)) break; /* retired below, outside the lock */
        if (!try_admit(s, r)) break;
        s->q_head = r->next;
        if (!s->q_head) s->q_tail = NULL;
        s->n_queued--;
    }
}

/* ---- one step ---------------------------------------------------------------------------- */

static void register_blocks(sched *s, req *r) {
    if (!s->cfg.prefix_cache) return;
    while ((r->n_registered + 1) * B <= r->n_past) {
        const int32_t *t = r->tokens + r->n_registered * B;
        kvcache_register(s->kv, r->blocks[r->n_registered], r->chain, t);
        r->chain = kvcache_chain_hash(r->chain, t);
        r->n_registered++;
    }
}

/* r's token of this step, and with top_logprobs >= 0 the log-probabilities: what take_token
 * then streams. On any thread: it touches only r and its logits row. */
static void sample_one(req *r, int32_t V) {
    r->pick = sampler_sample(r->smp, r->pick_logits, r->tokens, (size_t)r->n_tokens);
    r->n_pick_top = 0;
    if (r->pick < 0) {
        snprintf(r->pick_err, sizeof r->pick_err, "%s", err_msg());
    } else if (r->top_logprobs >= 0) {
        r->n_pick_top = sampler_logprobs(r->pick_logits, V, r->pick, &r->pick_lp, r->pick_top, r->top_logprobs);
        if (r->n_pick_top < 0) r->n_pick_top = 0;
    }
}

typedef struct sample_job {
    req *const *picks;
    int32_t n, n_vocab;
} sample_job;

static void sample_worker(void *arg, int ith, int nth) {
    const sample_job *j = arg;
    for (int32_t k = ith; k < j->n; k += nth) sample_one(j->picks[k], j->n_vocab);
}

/* Samples the n requests in s->picks (those that get a token this step), across the pool when
 * there are several: sampling reads the whole vocabulary for each, which with many sequences
 * (or a vocabulary of 150k) is a forward pass's worth of time on one thread. Each request's
 * sampler and RNG are its own, so the tokens do not depend on which thread drew them. */
static void sample_step(sched *s, int32_t n) {
    sample_job j = {s->picks, n, s->m->hp.n_vocab};
    if (n > 1 && s->pool) tpool_run(s->pool, sample_worker, &j);
    else sample_worker(&j, 0, 1);
}

/* Streams r's token of this step (sample_step drew it); returns true when r is finished
 * (already retired). */
static bool take_token(sched *s, req *r) {
    if (!r->got_first) {
        r->got_first = true;
        r->ttft = clock_now() - r->t_submit;
    }
    const int32_t next = r->pick;
    if (next < 0) {
        retire(s, r, SCHED_FINISH_STOP, r->pick_err);
        return true;
    }
    r->n_gen++;
    sched_logprob chosen;
    const int32_t n_top = r->n_pick_top;
    const sampler_logprob *tl = r->pick_top;
    if (r->top_logprobs >= 0) {
        chosen = (sched_logprob){next, r->pick_lp, NULL, 0};
        /* token texts live in one buffer: the chosen piece, then each alternative */
        size_t used = 0, cap = tok_max_piece(s->tok) * (size_t)(SAMPLER_MAX_TOP_LOGPROBS + 2);
        int len = tok_decode(s->tok, r->tokens[r->n_tokens - 1], next, true, s->piece + used, cap - used);
        chosen.text = s->piece + used;
        chosen.text_len = len > 0 ? (size_t)len : 0;
        used += chosen.text_len;
        for (int32_t i = 0; i < n_top; i++) {
            len = tok_decode(s->tok, r->tokens[r->n_tokens - 1], tl[i].id, true, s->piece + used, cap - used);
            s->top[i] = (sched_logprob){tl[i].id, tl[i].logprob, s->piece + used, len > 0 ? (size_t)len : 0};
            used += s->top[i].text_len;
        }
    }
    bool eog = tok_is_eog(s->tok, next);
    const char *text = "";
    size_t text_len = 0;
    int hit = 0;
    if (!eog) {
        char *buf = s->piece + tok_max_piece(s->tok) * (size_t)(SAMPLER_MAX_TOP_LOGPROBS + 2);
        int len = tok_decode(s->tok, r->tokens[r->n_tokens - 1], next, r->render_special, buf,
                             tok_max_piece(s->tok));
        r->tokens[r->n_tokens++] = next;
        hit = stopstr_feed(r->stop, buf, len > 0 ? (size_t)len : 0, &text, &text_len);
        if (hit < 0) {
            retire(s, r, SCHED_FINISH_STOP, err_msg());
            return true;
        }
    }
    if (text_len || r->top_logprobs >= 0)
        emit(r, &(sched_event){.kind = SCHED_TEXT, .text = text, .text_len = text_len,
                               .chosen = r->top_logprobs >= 0 ? &chosen : NULL, .top = s->top,
                               .n_top = n_top});
    if (eog || hit == 1) {
        retire(s, r, SCHED_FINISH_STOP, NULL);
        return true;
    }
    if (r->n_gen >= r->max_tokens || r->n_tokens >= r->seq.n_ctx) {
        retire(s, r, SCHED_FINISH_LENGTH, NULL);
        return true;
    }
    r->state = REQ_DECODE;
    return false;
}

/* A running request as a candidate for this step's batch. */
typedef struct cand {
    uint64_t key; /* decode: the step it last got a token (least recent first); prefill: 0 */
    int64_t id;   /* then admission order */
    int32_t slot;
} cand;

static int cand_cmp(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Builds one step's batch within the token budget (max_batch). Decode tokens come first, so
 * streams keep flowing, but while prompts wait they take at most max_batch - prefill_min
 * tokens (decoding sequences then take turns: least recently served first), so prompts always
 * get a share and time to first token stays bounded however many streams decode. Prompt
 * chunks fill the rest, oldest request first, so prompts complete one after another.
 * take[slot] gets each running request's token count in the batch, row[slot] where its logits
 * go: rows in batch order, so the classifier runs as one product over consecutive rows.
 * Returns the batch size. */
static int32_t build_batch(sched *s, int32_t *take, float **row) {
    int32_t n = 0, n_dec = 0, n_pre = 0, n_rows = 0, V = s->m->hp.n_vocab, budget = s->cfg.max_batch;
    cand dec[s->n_running > 0 ? s->n_running : 1], pre[s->n_running > 0 ? s->n_running : 1];
    int64_t waiting = 0;
    for (int32_t i = 0; i < s->n_running; i++) {
        req *r = s->running[i];
        take[i] = 0;
        if (r->state == REQ_DECODE) {
            dec[n_dec++] = (cand){r->last_served, r->id, i};
        } else {
            pre[n_pre++] = (cand){0, r->id, i};
            waiting += r->n_prompt - r->n_past;
        }
    }
    int32_t dec_room = budget;
    if (waiting > 0) {
        int32_t reserve = waiting < s->cfg.prefill_min ? (int32_t)waiting : s->cfg.prefill_min;
        dec_room = budget - reserve > 1 ? budget - reserve : 1;
    }
    if (n_dec > dec_room) qsort(dec, (size_t)n_dec, sizeof *dec, cand_cmp);
    for (int32_t k = 0; k < n_dec && k < dec_room; k++) {
        req *r = s->running[dec[k].slot];
        r->last_served = s->stats.steps + 1;
        take[dec[k].slot] = 1;
        row[dec[k].slot] = s->logits + (size_t)n_rows++ * V;
        s->batch[n++] = (model_token){&r->seq, r->tokens[r->n_tokens - 1], r->n_tokens - 1,
                                      row[dec[k].slot]};
    }
    qsort(pre, (size_t)n_pre, sizeof *pre, cand_cmp);
    for (int32_t k = 0; k < n_pre && n < budget; k++) {
        int32_t i = pre[k].slot;
        req *r = s->running[i];
        int32_t left = r->n_prompt - r->n_past, room = budget - n;
        int32_t c = left < room ? left : room;
        if (r->n_past + c == r->n_prompt) row[i] = s->logits + (size_t)n_rows++ * V;
        for (int32_t j = 0; j < c; j++) {
            int32_t pos = r->n_past + j;
            s->batch[n++] = (model_token){&r->seq, r->tokens[pos], pos, pos == r->n_prompt - 1 ? row[i] : NULL};
        }
        take[i] = c;
    }
    return n;
}

static void step(sched *s) {
    int32_t take[s->n_running > 0 ? s->n_running : 1];
    float *row[s->n_running > 0 ? s->n_running : 1];
    int32_t n = build_batch(s, take, row);
    if (n == 0) return;
    int rc = model_runner_forward(s->runner, s->batch, n);
    pthread_mutex_lock(&s->mu);
    s->stats.batch_tokens = n;
    s->stats.steps++;
    pthread_mutex_unlock(&s->mu);
    if (rc == 0) {
        int32_t n_picks = 0;
        for (int32_t i = 0; i < s->n_running; i++) {
            req *r = s->running[i];
            const bool token = take[i] && (r->state == REQ_DECODE || r->n_past + take[i] == r->n_prompt);
            r->pick_logits = token ? row[i] : NULL;
            if (token) s->picks[n_picks++] = r;
        }
        sample_step(s, n_picks);
    }
    /* walk backwards: retiring moves the last running request into the freed slot */
    for (int32_t i = s->n_running - 1; i >= 0; i--) {
        req *r = s->running[i];
        if (rc != 0) {
            retire(s, r, SCHED_FINISH_STOP, err_msg());
            continue;
        }
        if (!take[i]) continue;
        r->n_past += take[i];
        register_blocks(s, r);
        if (r->pick_logits) take_token(s, r);
    }
}

/* Retires requests whose client went away: queued ones and running ones. */
static void reap_cancelled(sched *s) {
    for (int32_t i = s->n_running - 1; i >= 0; i--)
        if (atomic_load(&s->running[i]->cancelled)) retire(s, s->running[i], SCHED_FINISH_CANCELLED, NULL);
    pthread_mutex_lock(&s->mu);
    for (req **pp = &s->q_head; *pp;) {
        req *r = *pp;
        if (!atomic_load(&r->cancelled)) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        if (s->q_tail == r) {
            s->q_tail = NULL;
            for (req *t = s->q_head; t; t = t->next) s->q_tail = t;
        }
        s->n_queued--;
        pthread_mutex_unlock(&s->mu);
        retire(s, r, SCHED_FINISH_CANCELLED, NULL);
        pthread_mutex_lock(&s->mu);
        pp = &s->q_head;
    }
    pthread_mutex_unlock(&s->mu);
}

static void *engine_main(void *arg) {
    sched *s = arg;
    for (;;) {
        reap_cancelled(s);
        pthread_mutex_lock(&s->mu);
        if (s->stopping) {
            for (req *r = s->live; r; r = r->live_next) atomic_store(&r->cancelled, true);
            pthread_mutex_unlock(&s->mu);
            reap_cancelled(s);
            return NULL;
        }
        admit(s);
        s->stats.queued = s->n_queued;
        s->stats.running = s->n_running;
        if (s->n_running == 0) {
            s->stats.batch_tokens = 0;
            pthread_cond_broadcast(&s->idle);
            bool cancelled_waiting = false;
            for (req *r = s->q_head; r; r = r->next) cancelled_waiting |= atomic_load(&r->cancelled);
            if (!cancelled_waiting) pthread_cond_wait(&s->work, &s->mu);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        step(s);
    }
}

/* ---- public API ------------------------------------------------------------------------ */

/* Frees what sched_new allocated (the engine thread is not running). */
static void release(sched *s) {
    if (!s) return;
    kvcache_free(s->kv);
    model_runner_free(s->runner);
    tpool_free(s->own_pool);
    free(s->picks);
    device_logits_free(s->cfg.device, s->logits);
    free(s->batch);
    free(s->running);
    free(s->piece);
    free(s->top);
    free(s);
}

sched *sched_new(const model *m, const tokenizer *tok, const sched_config *cfg) {
    sched *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->m = m;
    s->tok = tok;
    sched_config_default(&s->cfg);
    if (cfg) s->cfg = *cfg;
    if (s->cfg.max_batch <= 0) s->cfg.max_batch = 64;
    if (s->cfg.max_running <= 0) s->cfg.max_running = 64;
    if (s->cfg.max_running > s->cfg.max_batch) s->cfg.max_running = s->cfg.max_batch;
    if (s->cfg.prefill_min <= 0) s->cfg.prefill_min = s->cfg.max_batch / 2 > 0 ? s->cfg.max_batch / 2 : 1;
    if (s->cfg.prefill_min > s->cfg.max_batch) s->cfg.prefill_min = s->cfg.max_batch;
    if (s->cfg.max_queue < 0) s->cfg.max_queue = 0;
    s->n_ctx = s->cfg.n_ctx > 0 ? s->cfg.n_ctx : m->hp.n_ctx_train;
    size_t block_bytes = model_kv_block_bytes(m, s->cfg.kv_type), bytes = s->cfg.kv_bytes;
    if (!bytes) {
        bytes = (size_t)s->cfg.max_running * model_seq_bytes(m, s->n_ctx, s->cfg.kv_type);
        if (bytes > ((size_t)1 << 30)) bytes = (size_t)1 << 30;
    }
    int32_t n_blocks = (int32_t)(bytes / block_bytes);
    if (n_blocks < 1) {
        err_set("--kv-mem %zu bytes is less than one KV block (%zu bytes)", bytes, block_bytes);
        goto fail;
    }
    s->kv = kvcache_new(m, s->cfg.device, n_blocks, s->cfg.kv_type);
    if (!s->kv) goto fail;
    s->runner = s->cfg.device ? device_runner_new(s->cfg.device, s->cfg.max_batch)
                              : model_runner_new(m, s->cfg.max_batch, s->cfg.n_threads);
    if (!s->runner) goto fail;
    /* sampling's threads: the CPU runner's (idle between its passes), else as many of our own */
    s->pool = model_runner_pool(s->runner);
    if (!s->pool) {
        s->pool = s->own_pool = tpool_new(s->cfg.n_threads);
        if (!s->pool) goto fail;
        /* its threads have nothing to do until the next step's tokens: sleep soon, not spin
         * through a GPU's whole step */
        tpool_set_spin(s->pool, 1000);
    }
    s->logits = device_logits_alloc(s->cfg.device, (size_t)s->cfg.max_running * (size_t)m->hp.n_vocab);
    s->batch = malloc((size_t)s->cfg.max_batch * sizeof *s->batch);
    s->running = malloc((size_t)s->cfg.max_running * sizeof *s->running);
    s->piece = malloc(tok_max_piece(tok) * (size_t)(SAMPLER_MAX_TOP_LOGPROBS + 3));
    s->top = malloc(SAMPLER_MAX_TOP_LOGPROBS * sizeof *s->top);
    s->picks = malloc((size_t)s->cfg.max_running * sizeof *s->picks);
    if (!s->logits || !s->batch || !s->running || !s->piece || !s->top || !s->picks) goto oom;
    s->next_id = 1;
    s->stats.kv_bytes_total = (size_t)n_blocks * block_bytes;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->idle, NULL);
    if (pthread_create(&s->thread, NULL, engine_main, s) != 0) {
        err_set("cannot start the engine thread");
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->work);
        pthread_cond_destroy(&s->idle);
        goto fail;
    }
    return s;
oom:
    err_set("out of memory for the scheduler");
fail:
    release(s);
    return NULL;
}

void sched_free(sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->idle);
    release(s);
}

static req *req_make(const sched *s, const int32_t *prompt, int32_t n_prompt, const sched_params *p) {
    if (n_prompt <= 0) {
        err_set("the prompt is empty");
        return NULL;
    }
    if (n_prompt >= s->n_ctx) {
        err_set("the prompt has %d tokens; the context holds %d", n_prompt, s->n_ctx);
        return NULL;
    }
    if (p->max_tokens < 1) {
        err_set("max_tokens must be at least 1");
        return NULL;
    }
    for (int32_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= s->m->hp.n_vocab) {
            err_set("prompt token %d at index %d is outside the vocabulary", prompt[i], i);
            return NULL;
        }
    if (p->n_stop < 0 || p->n_stop > STOPSTR_MAX || p->top_logprobs > SAMPLER_MAX_TOP_LOGPROBS) {
        err_set("too many stop strings or top_logprobs");
        return NULL;
    }
    req *r = calloc(1, sizeof *r);
    if (!r) goto oom;
    r->n_prompt = r->n_tokens = n_prompt;
    r->max_tokens = p->max_tokens;
    r->top_logprobs = p->top_logprobs;
    r->render_special = p->render_special;
    int32_t total = n_prompt + p->max_tokens;
    r->cap = total < s->n_ctx ? total : s->n_ctx;
    if (blocks_needed(s, r) > kvcache_total(s->kv)) {
        err_set("the prompt (%d tokens) plus max_tokens (%d) can never fit the KV memory (%d "
                "positions)", n_prompt, p->max_tokens, kvcache_total(s->kv) * B);
        req_free(r);
        return NULL;
    }
    r->tokens = malloc((size_t)r->cap * sizeof *r->tokens);
    r->blocks = malloc((size_t)blocks_needed(s, r) * sizeof *r->blocks);
    r->stop = stopstr_new();
    if (!r->tokens || !r->blocks || !r->stop) goto oom;
    memcpy(r->tokens, prompt, (size_t)n_prompt * sizeof *prompt);
    r->smp = sampler_new(&p->sampling, s->m->hp.n_vocab);
    if (!r->smp) goto fail;
    for (int32_t i = 0; i < p->n_bias; i++)
        if (sampler_set_logit_bias(r->smp, p->bias_tokens[i], p->logit_bias[i])) {
            err_set("logit_bias: token %d is outside the vocabulary or its bias is invalid",
                    p->bias_tokens[i]);
            goto fail;
        }
    for (int32_t i = 0; i < p->n_stop; i++)
        if (stopstr_add(r->stop, p->stop[i], strlen(p->stop[i]))) {
            err_set("stop: string %d is empty or longer than %d bytes", i + 1, STOPSTR_MAX_LEN);
            goto fail;
        }
    return r;
oom:
    err_set("out of memory");
fail:
    req_free(r);
    return NULL;
}

int64_t sched_submit(sched *s, const int32_t *prompt, int32_t n_prompt, const sched_params *p,
                     sched_event_fn fn, void *ud) {
    last_queue_full = false;
    if (sampler_params_check(&p->sampling)) return -1;
    req *r = req_make(s, prompt, n_prompt, p);
    if (!r) return -1;
    r->fn = fn;
    r->ud = ud;
    r->t_submit = clock_now();
    pthread_mutex_lock(&s->mu);
    if (s->draining || s->stopping) {
        pthread_mutex_unlock(&s->mu);
        req_free(r);
        err_set("the server is shutting down");
        last_queue_full = true;
        return -1;
    }
    if (s->n_queued >= s->cfg.max_queue && s->n_running + s->n_queued >= s->cfg.max_running) {
        pthread_mutex_unlock(&s->mu);
        req_free(r);
        last_queue_full = true;
        err_set("the request queue is full (%d waiting)", s->cfg.max_queue);
        return -1;
    }
    r->id = s->next_id++;
    r->state = REQ_QUEUED;
    if (s->q_tail) s->q_tail->next = r; else s->q_head = r;
    s->q_tail = r;
    s->n_queued++;
    s->stats.queued = s->n_queued;
    r->live_next = s->live;
    if (s->live) s->live->live_prev = r;
    s->live = r;
    int64_t id = r->id;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    return id;
}

void sched_cancel(sched *s, int64_t id) {
    pthread_mutex_lock(&s->mu);
    for (req *r = s->live; r; r = r->live_next) {
        if (r->id == id) {
            atomic_store(&r->cancelled, true);
            pthread_cond_signal(&s->work);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

void sched_stats_get(sched *s, sched_stats *out) {
    size_t block_bytes = model_kv_block_bytes(s->m, s->cfg.kv_type);
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
    /* block counts change only on the engine thread; a slightly stale read is fine here */
    out->kv_bytes_used = (size_t)(kvcache_total(s->kv) - kvcache_available(s->kv)) * block_bytes;
    out->kv_bytes_cached = (size_t)kvcache_cached_only(s->kv) * block_bytes;
}

int sched_drain(sched *s, double timeout_s) {
    struct timespec deadline;
    int cancelled = 0;
    clock_gettime(CLOCK_REALTIME, &deadline);
    double secs = timeout_s > 0 ? timeout_s : 0;
    deadline.tv_sec += (time_t)secs;
    deadline.tv_nsec += (long)((secs - floor(secs)) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    while (s->live && pthread_cond_timedwait(&s->idle, &s->mu, &deadline) == 0) {}
    for (req *r = s->live; r; r = r->live_next) {
        atomic_store(&r->cancelled, true);
        cancelled++;
    }
    pthread_cond_signal(&s->work);
    while (s->live) pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return cancelled;
}
