/* Generation requests over the scheduler, answered through a reply sink (see gen.h).
 *
 * A request is a `gen` with one `choice` per scheduler request. Its life: submitted ->
 * events stream in (engine thread -> queue -> loop) -> every choice final -> the reply ends
 * -> freed. When the receiver leaves first (gen_detach) the choices are cancelled and the gen
 * waits, silent, for the scheduler to report each one, because the engine thread still holds
 * pointers to its choices until then. */
#include "api/gen.h"

#include "api/oai_plan.h"
#include "api/oai_response.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct choice choice;

/* A scheduler event copied off the engine thread. A text event's strings live in the same
 * allocation, right behind the struct. */
typedef struct pending {
    struct pending *next;
    choice *ch;
    sched_event_kind kind;
    sched_finish finish;
    int32_t prompt_tokens, cached_tokens, completion_tokens;
    double ttft, t;
    char *text;
    size_t text_len;
    bool has_logprobs;
    oai_logprob lp;
    oai_token_logprob top[OAI_MAX_TOP_LOGPROBS];
    char message[256];
} pending;

struct choice {
    gen *g;
    int32_t index;
    int64_t sched_id;         /* 0: not submitted */
    bool final;
    _Atomic bool lost;        /* an event could not be copied (out of memory) */
    double t_submit;
    buf text;                 /* non-streaming: the text so far */
    pending **kept;           /* non-streaming: events carrying logprobs, in order */
    size_t n_kept, cap_kept;
    size_t lp_offset;         /* completions: bytes of the tokens so far (text_offset) */
    const char *finish;       /* "stop" / "length"; NULL when cancelled or failed */
    int32_t prompt_tokens, cached_tokens, completion_tokens;
    pending final_ev;         /* preallocated: the last event must never be lost */
};

struct gen {
    gen_engine *e;
    gen *prev, *next;
    const api_reply *reply;   /* NULL once ended or detached */
    oai_request r;
    oai_plan plan;
    char id[40];
    int64_t created;
    bool streaming;           /* the SSE reply has started */
    int32_t n_choices, n_open;
    choice *choices;
    bool failed;
    oai_error err;
};

struct gen_engine {
    sched *sched;
    const tokenizer *tok;
    gen_config cfg;
    char *model_name;
    metrics *m;
    int64_t created;
    struct event *wake;
    pthread_mutex_t mu;
    pending *q_head, *q_tail;
    gen *live;
    int n_live;
};

/* ---- output ---------------------------------------------------------------------------- */

/* Streams one SSE piece (takes ownership of text; NULL is skipped). */
static void stream_send(gen *g, char *text) {
    if (text && g->reply) g->reply->chunk(g->reply->ctx, text, strlen(text));
    free(text);
}

static void stream_json(gen *g, char *json) {
    if (!json) return;
    stream_send(g, oai_sse_event(json));
    free(json);
}

/* A whole reply; takes ownership of json (NULL: out of memory, a fixed 500 body). */
static void reply_json(gen *g, int status, char *json) {
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                              "\"param\":null,\"code\":null}}";
    const api_reply *r = g->reply;
    g->reply = NULL;
    r->start(r->ctx, json ? status : 500, API_JSON_TYPE);
    r->chunk(r->ctx, json ? json : oom, json ? strlen(json) : sizeof oom - 1);
    r->end(r->ctx);
    free(json);
}

static oai_meta gen_meta(const gen *g) {
    return (oai_meta){g->r.endpoint, g->id, g->created, g->e->model_name};
}

static void start_stream(gen *g) {
    g->streaming = true;
    g->reply->start(g->reply->ctx, 200, API_SSE_TYPE);
    if (g->r.endpoint == OAI_CHAT) {
        oai_meta m = gen_meta(g);
        for (int32_t i = 0; i < g->n_choices; i++) {
            oai_delta d = {.index = i, .first = true};
            stream_json(g, oai_chunk_json(&m, &d, g->r.include_usage));
        }
    }
}

/* ---- lifetime -------------------------------------------------------------------------- */

static void choice_release(choice *ch) {
    buf_free(&ch->text);
    for (size_t i = 0; i < ch->n_kept; i++) free(ch->kept[i]);
    free(ch->kept);
}

static void gen_free(gen *g) {
    gen_engine *e = g->e;
    for (int32_t i = 0; i < g->n_choices; i++) choice_release(&g->choices[i]);
    free(g->choices);
    oai_plan_free(&g->plan);
    oai_request_free(&g->r);
    if (g->prev) g->prev->next = g->next; else e->live = g->next;
    if (g->next) g->next->prev = g->prev;
    e->n_live--;
    free(g);
}

static void gen_cancel(gen *g) {
    for (int32_t i = 0; i < g->n_choices; i++)
        if (g->choices[i].sched_id > 0 && !g->choices[i].final)
            sched_cancel(g->e->sched, g->choices[i].sched_id);
}

void gen_detach(gen *g) {
    g->reply = NULL;
    gen_cancel(g);
}

static oai_usage gen_usage(const gen *g) {
    oai_usage u = {0};
    for (int32_t i = 0; i < g->n_choices; i++) {
        const choice *ch = &g->choices[i];
        if (i % g->plan.n_per_prompt == 0) { /* a prompt counts once, as OpenAI counts it */
            u.prompt_tokens += ch->prompt_tokens;
            u.cached_tokens += ch->cached_tokens;
        }
        u.completion_tokens += ch->completion_tokens;
    }
    return u;
}

void gen_usage_get(const gen *g, int64_t *prompt, int64_t *cached, int64_t *completion) {
    oai_usage u = gen_usage(g);
    *prompt = u.prompt_tokens;
    *cached = u.cached_tokens;
    *completion = u.completion_tokens;
}

static char *whole_response(gen *g) {
    oai_meta m = gen_meta(g);
    oai_usage u = gen_usage(g);
    oai_choice *cs = calloc((size_t)g->n_choices, sizeof *cs);
    oai_logprob **lps = calloc((size_t)g->n_choices, sizeof *lps);
    char *json = NULL;
    if (!cs || !lps) goto done;
    for (int32_t i = 0; i < g->n_choices; i++) {
        choice *ch = &g->choices[i];
        if (ch->n_kept && !(lps[i] = malloc(ch->n_kept * sizeof **lps))) goto done;
        for (size_t k = 0; k < ch->n_kept; k++) lps[i][k] = ch->kept[k]->lp;
        cs[i] = (oai_choice){ch->text.data ? ch->text.data : "", ch->text.len,
                             g->r.top_logprobs >= 0, lps[i], ch->n_kept, ch->finish};
    }
    json = oai_response_json(&m, cs, (size_t)g->n_choices, &u);
done:
    if (lps)
        for (int32_t i = 0; i < g->n_choices; i++) free(lps[i]);
    free(lps);
    free(cs);
    return json;
}

/* Every choice is final: answer (unless the receiver left), then go. */
static void gen_finish(gen *g) {
    if (g->reply && g->r.stream && !g->streaming && !g->failed) start_stream(g);
    if (!g->reply) {
        /* detached: nothing to say */
    } else if (g->streaming) {
        oai_meta m = gen_meta(g);
        const api_reply *r = g->reply;
        if (g->failed) {
            stream_json(g, oai_error_json(&g->err));
        } else if (g->r.include_usage) {
            oai_usage u = gen_usage(g);
            stream_json(g, oai_usage_chunk_json(&m, &u));
        }
        stream_send(g, strdup(OAI_SSE_DONE));
        r->end(r->ctx);
    } else if (g->failed) {
        reply_json(g, g->err.status, oai_error_json(&g->err));
    } else {
        reply_json(g, 200, whole_response(g));
    }
    gen_free(g);
}

static void gen_fail(gen *g, int status, const char *type, const char *msg) {
    if (g->failed) return;
    g->failed = true;
    oai_error_set(&g->err, status, type, NULL, "%s", msg);
}

/* ---- scheduler events ------------------------------------------------------------------ */

static void enqueue(gen_engine *e, pending *p) {
    pthread_mutex_lock(&e->mu);
    if (e->q_tail) e->q_tail->next = p; else e->q_head = p;
    e->q_tail = p;
    pthread_mutex_unlock(&e->mu);
    event_active(e->wake, EV_READ, 0);
}

static pending *copy_text_event(const sched_event *ev) {
    size_t need = ev->text_len + 1;
    if (ev->chosen) {
        need += ev->chosen->text_len + 1;
        for (int32_t k = 0; k < ev->n_top && k < OAI_MAX_TOP_LOGPROBS; k++) need += ev->top[k].text_len + 1;
    }
    pending *p = calloc(1, sizeof *p + need);
    if (!p) return NULL;
    char *at = (char *)(p + 1);
    p->kind = SCHED_TEXT;
    p->text = at;
    p->text_len = ev->text_len;
    if (ev->text_len) memcpy(at, ev->text, ev->text_len);
    at += ev->text_len + 1;
    if (ev->chosen) {
        p->has_logprobs = true;
        p->lp.chosen = (oai_token_logprob){ev->chosen->token, ev->chosen->logprob, at, ev->chosen->text_len};
        if (ev->chosen->text_len) memcpy(at, ev->chosen->text, ev->chosen->text_len);
        at += ev->chosen->text_len + 1;
        for (int32_t k = 0; k < ev->n_top && k < OAI_MAX_TOP_LOGPROBS; k++) {
            p->top[k] = (oai_token_logprob){ev->top[k].token, ev->top[k].logprob, at, ev->top[k].text_len};
            if (ev->top[k].text_len) memcpy(at, ev->top[k].text, ev->top[k].text_len);
            at += ev->top[k].text_len + 1;
            p->lp.n_top = k + 1;
        }
        p->lp.top = p->top;
    }
    return p;
}

/* Engine thread: copy and hand to the loop; never blocks on the loop. */
static void on_sched_event(void *ud, const sched_event *ev) {
    choice *ch = ud;
    pending *p;
    if (ev->kind == SCHED_TEXT) {
        if (!(p = copy_text_event(ev))) {
            atomic_store(&ch->lost, true);
            return;
        }
    } else {
        p = &ch->final_ev;
        p->kind = ev->kind;
        p->finish = ev->finish;
        p->prompt_tokens = ev->prompt_tokens;
        p->cached_tokens = ev->cached_tokens;
        p->completion_tokens = ev->completion_tokens;
        p->ttft = ev->ttft_seconds;
        snprintf(p->message, sizeof p->message, "%s", ev->message ? ev->message : "");
    }
    p->ch = ch;
    p->t = clock_now();
    p->next = NULL;
    enqueue(ch->g->e, p);
}

static void handle_text(gen *g, choice *ch, pending *p) {
    if (!g->reply) {
        free(p);
        return;
    }
    if (g->r.stream && !g->streaming) start_stream(g);
    if (g->streaming) {
        oai_meta m = gen_meta(g);
        oai_delta d = {.index = ch->index, .text = p->text, .text_len = p->text_len,
                       .has_logprobs = p->has_logprobs, .logprobs = &p->lp,
                       .n_logprobs = p->has_logprobs, .text_offset = ch->lp_offset};
        stream_json(g, oai_chunk_json(&m, &d, g->r.include_usage));
        if (p->has_logprobs) ch->lp_offset += p->lp.chosen.text_len;
        free(p);
        return;
    }
    buf_append(&ch->text, p->text, p->text_len);
    if (!p->has_logprobs) {
        free(p);
        return;
    }
    if (ch->n_kept == ch->cap_kept) {
        size_t cap = ch->cap_kept ? ch->cap_kept * 2 : 16;
        pending **k = realloc(ch->kept, cap * sizeof *k);
        if (!k) {
            atomic_store(&ch->lost, true);
            free(p);
            return;
        }
        ch->kept = k;
        ch->cap_kept = cap;
    }
    ch->kept[ch->n_kept++] = p;
}

static void handle_final(gen *g, choice *ch, pending *p) {
    gen_engine *e = g->e;
    ch->final = true;
    g->n_open--;
    ch->prompt_tokens = p->prompt_tokens;
    ch->cached_tokens = p->cached_tokens;
    ch->completion_tokens = p->completion_tokens;
    if (p->kind == SCHED_ERROR) {
        gen_fail(g, 500, "server_error", p->message);
        gen_cancel(g);
    } else if (p->finish == SCHED_FINISH_CANCELLED) {
        if (g->reply) gen_fail(g, 503, "server_error", "the server shut down before the request finished");
    } else {
        ch->finish = p->finish == SCHED_FINISH_LENGTH ? "length" : "stop";
        if (e->m && p->completion_tokens >= 1) metrics_observe(&e->m->ttft, p->ttft);
        if (e->m && p->completion_tokens >= 2)
            metrics_observe(&e->m->tpot, (p->t - ch->t_submit - p->ttft) / (p->completion_tokens - 1));
    }
    if (atomic_load(&ch->lost)) gen_fail(g, 500, "server_error", "out of memory relaying generated text");
    if (g->reply && g->r.stream && !g->streaming && !g->failed) start_stream(g);
    if (g->streaming && g->reply && !g->failed && ch->finish) {
        oai_meta m = gen_meta(g);
        oai_delta d = {.index = ch->index, .finish_reason = ch->finish};
        stream_json(g, oai_chunk_json(&m, &d, g->r.include_usage));
    }
    if (g->n_open == 0) gen_finish(g);
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
    gen_engine *e = arg;
    pending *p, *next;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&e->mu);
    p = e->q_head;
    e->q_head = e->q_tail = NULL;
    pthread_mutex_unlock(&e->mu);
    for (; p; p = next) {
        next = p->next;
        choice *ch = p->ch;
        if (p->kind == SCHED_TEXT) handle_text(ch->g, ch, p);
        else handle_final(ch->g, ch, p); /* may free ch->g: p is inside it, read nothing after */
    }
}

/* ---- starting -------------------------------------------------------------------------- */

static int submit_all(gen *g, oai_error *err) {
    for (int32_t i = 0; i < g->n_choices; i++) {
        choice *ch = &g->choices[i];
        const oai_plan_prompt *pp;
        sched_params sp;
        oai_plan_choice(&g->plan, i, &pp, &sp);
        ch->t_submit = clock_now();
        int64_t id = sched_submit(g->e->sched, pp->ids, pp->n_ids, &sp, on_sched_event, ch);
        if (id < 0) {
            if (sched_last_error_was_queue_full())
                oai_error_set(err, 503, "server_error", NULL, "The server is busy: %s. Retry later.", err_msg());
            else
                oai_error_set(err, 400, "invalid_request_error", NULL, "%s", err_msg());
            return -1;
        }
        ch->sched_id = id;
        g->n_open++;
    }
    return 0;
}

gen *gen_start(gen_engine *e, oai_endpoint ep, const char *body, size_t len,
               const api_reply *reply, oai_error *err) {
    gen *g = calloc(1, sizeof *g);
    if (!g) {
        oai_error_set(err, 500, "server_error", NULL, "out of memory");
        return NULL;
    }
    g->e = e;
    if (e->live) e->live->prev = g;
    g->next = e->live;
    e->live = g;
    e->n_live++;
    if (oai_request_parse(ep, body, len, tok_n_vocab(e->tok), &g->r, err) < 0) goto reject;
    if (g->r.model && strcmp(g->r.model, e->model_name) != 0) {
        oai_error_set(err, 404, "invalid_request_error", "model",
                      "The model '%.200s' does not exist; this server serves '%.200s'.", g->r.model,
                      e->model_name);
        snprintf(err->code, sizeof err->code, "model_not_found");
        goto reject;
    }
    if (oai_plan_build(&g->r, e->tok, e->cfg.tmpl, e->cfg.n_ctx, &g->plan, err) < 0) goto reject;
    g->n_choices = g->plan.n_choices;
    if (!(g->choices = calloc((size_t)g->n_choices, sizeof *g->choices))) {
        oai_error_set(err, 500, "server_error", NULL, "out of memory");
        goto reject;
    }
    for (int32_t i = 0; i < g->n_choices; i++) g->choices[i] = (choice){.g = g, .index = i};
    oai_make_id(ep, g->id);
    g->created = (int64_t)time(NULL);
    g->reply = reply;
    if (submit_all(g, err) < 0) {
        /* what was submitted must still report back before g can go; the error is the answer */
        g->failed = true;
        g->err = *err;
        if (g->n_open == 0) goto reject;
        gen_cancel(g);
        return g;
    }
    if (g->r.stream && !e->cfg.hold_stream) start_stream(g);
    return g;
reject:
    g->reply = NULL;
    gen_free(g);
    return NULL;
}

/* ---- the engine ------------------------------------------------------------------------ */

gen_engine *gen_engine_new(struct event_base *base, sched *s, const tokenizer *tok,
                           const gen_config *cfg, metrics *m) {
    gen_engine *e = calloc(1, sizeof *e);
    if (!e) {
        err_set("out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->mu, NULL);
    e->sched = s;
    e->tok = tok;
    e->cfg = *cfg;
    e->m = m;
    e->created = (int64_t)time(NULL);
    e->model_name = strdup(cfg->model_name);
    e->cfg.model_name = e->model_name;
    e->wake = event_new(base, -1, 0, on_wake, e);
    if (!e->model_name || !e->wake) {
        err_set("cannot set up the generation engine");
        gen_engine_free(e);
        return NULL;
    }
    return e;
}

void gen_engine_free(gen_engine *e) {
    if (!e) return;
    /* events the scheduler sent after the loop stopped (its own shutdown cancels) */
    if (e->wake) on_wake(-1, 0, e);
    while (e->live) gen_free(e->live);
    if (e->wake) event_free(e->wake);
    pthread_mutex_destroy(&e->mu);
    free(e->model_name);
    free(e);
}

const char *gen_engine_model(const gen_engine *e) { return e->model_name; }
sched *gen_engine_sched(const gen_engine *e) { return e->sched; }
metrics *gen_engine_metrics(const gen_engine *e) { return e->m; }
int64_t gen_engine_created(const gen_engine *e) { return e->created; }
int gen_engine_live(const gen_engine *e) { return e->n_live; }
