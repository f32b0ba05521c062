/* The forward pass of llama / qwen2 / qwen3 (forward.h), written to be read top to bottom:
 * embeddings, then per layer RMSNorm → QKV (+bias) → (QK-norm) → RoPE → store K/V → causal
 * attention over the cache → output projection → residual → RMSNorm → SwiGLU FFN → residual,
 * then the final norm and the classifier for the tokens that want logits.
 *
 * Activations are F32; the KV cache F32 or F16 (model_kv_type). Matrix products go through
 * tensor/matmul (kernels chosen there), split by rows across the thread pool, the SwiGLU
 * activation fused into the gate/up product's split; biases, QK-norm, RoPE, the K/V stores and
 * attention (model/attention.h, kernels chosen with matmul's) are one parallel step split by
 * (sequence, KV head) in runs of equal cost. The rest (norms, residual adds) runs on the
 * calling thread: a few percent of the work. */
#include "model/forward.h"

#include "base/err.h"
#include "model/attention.h"
#include "tensor/matmul.h"
#include "tensor/threadpool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Layout: [n_blocks][n_layer][n_head_kv][MODEL_KV_BLOCK][head_dim] elements, so the rows one
 * (layer, head) of a block holds are consecutive (attention.h's layout). */
struct model_kv {
    int32_t n_blocks, n_layer, n_head_kv, head_dim;
    model_kv_type type;
    size_t block_elems;  /* elements of one block: all layers and heads */
    void *k, *v;
    const model_backend *be; /* another device's store (k, v NULL); forward.h */
    void *impl;
};

struct model_runner {
    const model *m;
    int32_t max_batch;
    int64_t q_dim, kv_dim;
    tpool *pool;
    float *x, *xn, *q, *k, *v, *att, *gate, *up, *logit_in;
    float *rope_cs;      /* [max_batch][rope_dim/2][2]: cos, sin of this batch's positions */
    double *rope_freq;   /* [rope_dim/2] */
    float *scores;       /* [n_threads][scores_cap]: attention scratch */
    int64_t *att_split;  /* [n_threads + 1]: each thread's attention units, by cost */
    /* att_plan's grouping of a batch's tokens by sequence ([max_batch] each, +1 for start) */
    int32_t *tok_grp, *grp_tok, *grp_start, *grp_first;
    int64_t *grp_cost;
    void *mm_scratch;    /* a matmul_input for max_batch rows of the widest product input */
    size_t mm_scratch_size;
    size_t scores_cap;   /* per thread */
    model_profile *prof;
    double prof_t;       /* start of the current op */
    const model_backend *be; /* another device's runner (nothing above allocated); forward.h */
    void *impl;
};

/* ---- profiling ---------------------------------------------------------------------- */

static const char *prof_names[PROF_COUNT] = {"embed", "norm", "qkv", "attention",
                                             "attn_out", "ffn_gate_up", "ffn_down", "output",
                                             "transfer"};

const char *model_prof_name(int op) { return op >= 0 && op < PROF_COUNT ? prof_names[op] : "?"; }

void model_runner_set_profile(model_runner *r, model_profile *p) {
    r->prof = p;
    if (r->be) r->be->set_profile(r->impl, p);
}

static double prof_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Charges the time since the previous mark to op. */
static void prof_mark(model_runner *r, int op) {
    if (!r->prof) return;
    double t = prof_now();
    if (op >= 0) r->prof->seconds[op] += t - r->prof_t;
    r->prof_t = t;
}

/* ---- KV storage and sequences ----------------------------------------------------- */

const char *model_kv_type_name(model_kv_type t) { return t == MODEL_KV_F16 ? "f16" : "f32"; }

int model_kv_type_parse(const char *name, model_kv_type *out) {
    if (strcmp(name, "f32") == 0) *out = MODEL_KV_F32;
    else if (strcmp(name, "f16") == 0) *out = MODEL_KV_F16;
    else return err_set("unknown KV cache type '%s' (f32 or f16)", name);
    return 0;
}

static size_t kv_elem_size(model_kv_type t) { return t == MODEL_KV_F16 ? sizeof(uint16_t) : sizeof(float); }

size_t model_kv_block_bytes(const model *m, model_kv_type type) {
    return 2 * (size_t)m->hp.n_layer * MODEL_KV_BLOCK * (size_t)m->hp.n_head_kv *
           (size_t)m->hp.head_dim * kv_elem_size(type);
}

model_kv *model_kv_new(const model *m, int32_t n_blocks, model_kv_type type) {
    model_kv *kv = calloc(1, sizeof *kv);
    if (!kv || n_blocks <= 0) goto fail;
    kv->n_blocks = n_blocks;
    kv->n_layer = m->hp.n_layer;
    kv->n_head_kv = m->hp.n_head_kv;
    kv->head_dim = m->hp.head_dim;
    kv->type = type;
    kv->block_elems = (size_t)kv->n_layer * (size_t)kv->n_head_kv * MODEL_KV_BLOCK * (size_t)kv->head_dim;
    size_t bytes = (size_t)n_blocks * kv->block_elems * kv_elem_size(type);
    kv->k = malloc(bytes);
    kv->v = malloc(bytes);
    if (!kv->k || !kv->v) goto fail;
    return kv;
fail:
    model_kv_free(kv);
    err_set("out of memory for %d KV blocks (%zu bytes)", n_blocks,
            (size_t)n_blocks * model_kv_block_bytes(m, type));
    return NULL;
}

void model_kv_free(model_kv *kv) {
    if (!kv) return;
    if (kv->be) kv->be->kv_free(kv->impl);
    free(kv->k);
    free(kv->v);
    free(kv);
}

int32_t model_kv_n_blocks(const model_kv *kv) { return kv->n_blocks; }

void *model_kv_impl(const model_kv *kv) { return kv->impl; }

model_kv *model_kv_wrap(const model *m, int32_t n_blocks, const model_backend *b, void *impl) {
    model_kv *kv = calloc(1, sizeof *kv);
    if (!kv) {
        b->kv_free(impl);
        err_set("out of memory");
        return NULL;
    }
    *kv = (model_kv){.n_blocks = n_blocks, .n_layer = m->hp.n_layer, .n_head_kv = m->hp.n_head_kv,
                     .head_dim = m->hp.head_dim, .type = MODEL_KV_F32, .be = b, .impl = impl};
    return kv;
}

size_t model_seq_bytes(const model *m, int32_t n_ctx, model_kv_type type) {
    if (n_ctx <= 0) n_ctx = m->hp.n_ctx_train;
    return (size_t)((n_ctx + MODEL_KV_BLOCK - 1) / MODEL_KV_BLOCK) * model_kv_block_bytes(m, type);
}

model_seq *model_seq_own(model_kv *kv, int32_t n_ctx) {
    model_seq *s = kv ? calloc(1, sizeof *s) : NULL;
    if (!kv) return NULL;
    if (!s || n_ctx <= 0 || n_ctx > kv->n_blocks * MODEL_KV_BLOCK) goto fail;
    s->n_ctx = n_ctx;
    s->blocks = malloc((size_t)kv->n_blocks * sizeof *s->blocks);
    if (!s->blocks) goto fail;
    s->own_kv = s->kv = kv;
    for (int32_t i = 0; i < kv->n_blocks; i++) s->blocks[i] = i;
    return s;
fail:
    free(s);
    model_kv_free(kv);
    err_set("out of memory for a sequence of %d positions", n_ctx);
    return NULL;
}

model_seq *model_seq_new(const model *m, int32_t n_ctx, model_kv_type type) {
    if (n_ctx <= 0) n_ctx = m->hp.n_ctx_train;
    return model_seq_own(model_kv_new(m, (n_ctx + MODEL_KV_BLOCK - 1) / MODEL_KV_BLOCK, type), n_ctx);
}

void model_seq_free(model_seq *s) {
    if (!s) return;
    model_kv_free(s->own_kv);
    free(s->blocks);
    free(s);
}

int32_t model_seq_capacity(const model_seq *s) { return s->n_ctx; }

/* The view attention.h's kernels take of a sequence's rows of one (layer, KV head). */
static attn_kv seq_view(const model_seq *s, int il, int32_t kv_head) {
    const model_kv *kv = s->kv;
    return (attn_kv){kv->k, kv->v, kv->type == MODEL_KV_F16 ? ATTN_F16 : ATTN_F32, s->blocks,
                     kv->block_elems,
                     ((size_t)il * (size_t)kv->n_head_kv + (size_t)kv_head) * MODEL_KV_BLOCK *
                         (size_t)kv->head_dim};
}

/* Writes the K and V rows (head_dim floats each) of KV head kv_head of the token at pos into
 * its cache. */
static void seq_store(const model_seq *s, int il, int32_t kv_head, int32_t pos, const float *k,
                      const float *v) {
    const model_kv *kv = s->kv;
    const attn_kv view = seq_view(s, il, kv_head);
    size_t e = (size_t)s->blocks[pos / MODEL_KV_BLOCK] * view.block_elems + view.off +
               (size_t)(pos % MODEL_KV_BLOCK) * (size_t)kv->head_dim;
    e *= kv_elem_size(kv->type);
    attention_store((char *)kv->k + e, view.type, k, kv->head_dim);
    attention_store((char *)kv->v + e, view.type, v, kv->head_dim);
}

/* ---- runner ------------------------------------------------------------------------- */

static float *alloc_floats(size_t n, bool *oom) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) *oom = true;
    return p;
}

model_runner *model_runner_new(const model *m, int32_t max_batch, int n_threads) {
    const model_hparams *hp = &m->hp;
    model_runner *r = calloc(1, sizeof *r);
    bool oom = false;
    if (!r) goto oom;
    if (max_batch <= 0) max_batch = 1;
    r->m = m;
    r->max_batch = max_batch;
    r->q_dim = (int64_t)hp->n_head * hp->head_dim;
    r->kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    size_t B = (size_t)max_batch, wide = (size_t)(hp->n_embd > r->q_dim ? hp->n_embd : r->q_dim);
    r->x = alloc_floats(B * hp->n_embd, &oom);
    r->xn = alloc_floats(B * wide, &oom);
    r->q = alloc_floats(B * r->q_dim, &oom);
    r->k = alloc_floats(B * r->kv_dim, &oom);
    r->v = alloc_floats(B * r->kv_dim, &oom);
    r->att = alloc_floats(B * r->q_dim, &oom);
    r->gate = alloc_floats(B * hp->n_ff, &oom);
    r->up = alloc_floats(B * hp->n_ff, &oom);
    r->logit_in = alloc_floats(B * hp->n_embd, &oom);
    r->rope_cs = alloc_floats(B * (size_t)hp->rope_dim, &oom);
    r->rope_freq = malloc((size_t)(hp->rope_dim / 2 + 1) * sizeof *r->rope_freq);
    /* every product's input is n_embd, q_dim or n_ff wide */
    const int64_t widths[3] = {hp->n_embd, r->q_dim, hp->n_ff};
    for (int i = 0; i < 3; i++) {
        size_t need = matmul_input_size(widths[i], max_batch);
        if (need > r->mm_scratch_size) r->mm_scratch_size = need;
    }
    r->mm_scratch = malloc(r->mm_scratch_size);
    if (oom || !r->rope_freq || !r->mm_scratch) goto oom;
    for (int32_t i = 0; i < hp->rope_dim / 2; i++)
        r->rope_freq[i] = pow((double)hp->rope_theta, -2.0 * i / hp->rope_dim);
    r->pool = tpool_new(n_threads);
    if (!r->pool) {
        model_runner_free(r);
        return NULL;
    }
    r->att_split = malloc(((size_t)tpool_size(r->pool) + 1) * sizeof *r->att_split);
    r->tok_grp = malloc(B * sizeof *r->tok_grp);
    r->grp_tok = malloc(B * sizeof *r->grp_tok);
    r->grp_start = malloc((B + 1) * sizeof *r->grp_start);
    r->grp_first = malloc(B * sizeof *r->grp_first);
    r->grp_cost = malloc(B * sizeof *r->grp_cost);
    if (!r->att_split || !r->tok_grp || !r->grp_tok || !r->grp_start || !r->grp_first || !r->grp_cost)
        goto oom;
    return r;
oom:
    model_runner_free(r);
    err_set("out of memory for a batch of %d tokens", max_batch);
    return NULL;
}

model_runner *model_runner_wrap(const model *m, int32_t max_batch, const model_backend *b, void *impl) {
    model_runner *r = calloc(1, sizeof *r);
    if (!r) {
        b->runner_free(impl);
        err_set("out of memory");
        return NULL;
    }
    r->m = m;
    r->max_batch = max_batch;
    r->be = b;
    r->impl = impl;
    return r;
}

void model_runner_free(model_runner *r) {
    if (!r) return;
    if (r->be) r->be->runner_free(r->impl);
    if (r->pool) tpool_free(r->pool);
    free(r->x);
    free(r->xn);
    free(r->q);
    free(r->k);
    free(r->v);
    free(r->att);
    free(r->gate);
    free(r->up);
    free(r->logit_in);
    free(r->rope_cs);
    free(r->rope_freq);
    free(r->scores);
    free(r->att_split);
    free(r->tok_grp);
    free(r->grp_tok);
    free(r->grp_start);
    free(r->grp_first);
    free(r->grp_cost);
    free(r->mm_scratch);
    free(r);
}

int32_t model_runner_max_batch(const model_runner *r) { return r->max_batch; }

/* ---- parallel steps ----------------------------------------------------------------- */

typedef struct mm_job {
    const model_matrix *w[3];
    const matmul_input *in;
    float *y[3];
    int n_mats;
    int64_t n_tok;
    bool swiglu; /* then y0 = silu(y0) * y1 (gate and up of the FFN) */
} mm_job;

/* Splits the rows of up to three products with the same input across the threads. With
 * swiglu, each thread then combines the rows it computed (gate and up split alike), so the
 * activation needs no pass of its own on one thread. */
static void mm_worker(void *arg, int ith, int nth) {
    const mm_job *j = arg;
    int64_t r0 = 0, r1 = 0;
    for (int i = 0; i < j->n_mats; i++) {
        const model_matrix *w = j->w[i];
        /* rows in groups of 4 so that threads do not share output cache lines much */
        int64_t groups = (w->n_out + 3) / 4;
        int64_t g0 = groups * ith / nth, g1 = groups * (ith + 1) / nth;
        r0 = g0 * 4;
        r1 = g1 * 4 < w->n_out ? g1 * 4 : w->n_out;
        if (r0 < r1) matmul_rows(w->type, w->data, w->n_out, j->in, j->y[i], r0, r1);
    }
    if (!j->swiglu) return;
    int64_t n_out = j->w[0]->n_out;
    for (int64_t t = 0; t < j->n_tok; t++) {
        float *g = j->y[0] + t * n_out, *u = j->y[1] + t * n_out;
        for (int64_t i = r0; i < r1; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

/* The input is converted once (quantized, on backends whose kernels read quantized
 * activations) on this thread, before the rows are split: every thread then reads the same
 * copy, and the conversion is a small fraction of a product (n_tok x n_in values against
 * n_out x n_in weights). The products share an input width (n_in of w0). */
static void mm_run(model_runner *r, const float *x, int64_t n_tok, const model_matrix *w0,
                   float *y0, const model_matrix *w1, float *y1, const model_matrix *w2,
                   float *y2, bool swiglu) {
    mm_job j = {{w0, w1, w2}, NULL, {y0, y1, y2}, w2 ? 3 : w1 ? 2 : 1, n_tok, swiglu};
    matmul_input *in = matmul_input_init(r->mm_scratch, r->mm_scratch_size, x, w0->n_in, n_tok);
    for (int i = 0; i < j.n_mats; i++) matmul_input_prepare(in, j.w[i]->type);
    j.in = in;
    tpool_run(r->pool, mm_worker, &j);
}

static void mm(model_runner *r, const float *x, int64_t n_tok, const model_matrix *w0, float *y0,
               const model_matrix *w1, float *y1, const model_matrix *w2, float *y2) {
    mm_run(r, x, n_tok, w0, y0, w1, y1, w2, y2, false);
}

/* ---- elementwise steps -------------------------------------------------------------- */

/* out = x / sqrt(mean(x^2) + eps) * w; the sum in double as the reference does. */
static void rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

static void rope(float *head, const model_hparams *hp, const float *cs) {
    int32_t half = hp->rope_dim / 2;
    for (int32_t i = 0; i < half; i++) {
        /* NORM pairs adjacent elements; NEOX pairs element i with i + rope_dim/2 */
        int32_t a = hp->rope_neox ? i : 2 * i, b = hp->rope_neox ? i + half : 2 * i + 1;
        float x0 = head[a], x1 = head[b], c = cs[2 * i], sn = cs[2 * i + 1];
        head[a] = x0 * c - x1 * sn;
        head[b] = x0 * sn + x1 * c;
    }
}

/* ---- the attention step --------------------------------------------------------- */

/* One parallel job per layer does everything between the QKV product and the output
 * projection, in units of (sequence, KV head): for each of the sequence's tokens in the batch,
 * in order, the biases, QK-norm and RoPE of the KV head and its query heads, and the K/V rows
 * into the cache; then each of those tokens' attention for those query heads. A unit reads
 * only cache rows it wrote itself or that earlier steps wrote, so the units need no barrier
 * between storing and attending, and none of it runs on one thread alone. */
typedef struct att_job {
    model_runner *r;
    const model_layer *l;
    const model_token *batch;
    int il;
} att_job;

/* bias (NULL: none), then QK-norm (NULL: none), then RoPE, on one head of one token. */
static void head_prep(float *x, const float *bias, const float *norm, const model_hparams *hp,
                      const float *cs) {
    if (bias)
        for (int32_t i = 0; i < hp->head_dim; i++) x[i] += bias[i];
    if (norm) rmsnorm(x, x, norm, hp->head_dim, hp->rms_eps);
    rope(x, hp, cs);
}

static void att_unit(const att_job *j, int64_t u, float *scores) {
    model_runner *r = j->r;
    const model_layer *l = j->l;
    const model_hparams *hp = &r->m->hp;
    const int32_t group = hp->n_head / hp->n_head_kv, hd = hp->head_dim;
    const int32_t g = (int32_t)(u / hp->n_head_kv), kh = (int32_t)(u % hp->n_head_kv);
    const int32_t *toks = r->grp_tok + r->grp_start[g], n_tok = r->grp_start[g + 1] - r->grp_start[g];
    const model_seq *seq = j->batch[toks[0]].seq;
    const size_t khd = (size_t)kh * hd;
    for (int32_t i = 0; i < n_tok; i++) {
        int32_t t = toks[i];
        const float *cs = r->rope_cs + (size_t)t * hp->rope_dim;
        float *k = r->k + t * r->kv_dim + khd, *v = r->v + t * r->kv_dim + khd;
        head_prep(k, l->bk ? l->bk + khd : NULL, l->k_norm, hp, cs);
        if (l->bv)
            for (int32_t e = 0; e < hd; e++) v[e] += l->bv[khd + e];
        for (int32_t h = kh * group; h < (kh + 1) * group; h++)
            head_prep(r->q + t * r->q_dim + (size_t)h * hd, l->bq ? l->bq + (size_t)h * hd : NULL,
                      l->q_norm, hp, cs);
        seq_store(seq, j->il, kh, j->batch[t].pos, k, v);
    }
    const attn_kv kv = seq_view(seq, j->il, kh);
    const float scale = 1.0f / sqrtf((float)hd);
    for (int32_t i = 0; i < n_tok; i++) {
        int32_t t = toks[i];
        for (int32_t h = kh * group; h < (kh + 1) * group; h++) {
            size_t at = (size_t)t * r->q_dim + (size_t)h * hd;
            attention_head(&kv, hd, r->q + at, j->batch[t].pos + 1, scale, scores, r->att + at);
        }
    }
}

static void att_worker(void *arg, int ith, int nth) {
    (void)nth;
    const att_job *j = arg;
    float *scores = j->r->scores + (size_t)ith * j->r->scores_cap;
    for (int64_t u = j->r->att_split[ith]; u < j->r->att_split[ith + 1]; u++) att_unit(j, u, scores);
}

/* A token's attention cost in position units: its positions plus a fixed part (the query,
 * RoPE, the stores, the output). */
#define ATT_TOKEN_FIXED 16

/* Groups the batch's tokens by sequence (batch order kept within a sequence), then splits the
 * (sequence, KV head) units into one consecutive run per thread of about equal cost: a
 * token's cost grows with its position, and a step mixes prompt chunks with long-running
 * sequences. The split depends only on the batch, never on timing. */
static void att_plan(model_runner *r, const model_token *batch, int32_t n) {
    const int nth = tpool_size(r->pool);
    const int32_t kv_heads = r->m->hp.n_head_kv;
    int32_t n_groups = 0;
    int64_t total = 0;
    /* group of each token: a linear search over the groups so far (a batch has few) */
    for (int32_t t = 0; t < n; t++) {
        int32_t g = 0;
        while (g < n_groups && batch[r->grp_first[g]].seq != batch[t].seq) g++;
        if (g == n_groups) {
            r->grp_first[n_groups] = t;
            r->grp_cost[n_groups++] = 0;
        }
        r->tok_grp[t] = g;
        r->grp_cost[g] += batch[t].pos + 1 + ATT_TOKEN_FIXED;
        total += (int64_t)kv_heads * (batch[t].pos + 1 + ATT_TOKEN_FIXED);
    }
    /* counting sort of the tokens by group, stable */
    for (int32_t g = 0; g <= n_groups; g++) r->grp_start[g] = 0;
    for (int32_t t = 0; t < n; t++) r->grp_start[r->tok_grp[t] + 1]++;
    for (int32_t g = 0; g < n_groups; g++) r->grp_start[g + 1] += r->grp_start[g];
    for (int32_t g = 0; g < n_groups; g++) r->grp_first[g] = r->grp_start[g]; /* fill cursors */
    for (int32_t t = 0; t < n; t++) r->grp_tok[r->grp_first[r->tok_grp[t]]++] = t;
    int64_t acc = 0;
    int i = 1;
    r->att_split[0] = 0;
    for (int64_t u = 0; u < (int64_t)n_groups * kv_heads; u++) {
        while (i < nth && acc >= total * i / nth) r->att_split[i++] = u;
        acc += r->grp_cost[u / kv_heads];
    }
    while (i <= nth) r->att_split[i++] = (int64_t)n_groups * kv_heads;
}

/* ---- the pass ----------------------------------------------------------------------- */

static void layer_forward(model_runner *r, int il, const model_token *batch, int32_t n) {
    const model_hparams *hp = &r->m->hp;
    const model_layer *l = &r->m->layers[il];
    int64_t d = hp->n_embd;
    for (int32_t t = 0; t < n; t++) rmsnorm(r->xn + t * d, r->x + t * d, l->attn_norm, d, hp->rms_eps);
    prof_mark(r, PROF_NORM);
    mm(r, r->xn, n, &l->wq, r->q, &l->wk, r->k, &l->wv, r->v);
    prof_mark(r, PROF_QKV);
    att_job aj = {r, l, batch, il};
    tpool_run(r->pool, att_worker, &aj);
    prof_mark(r, PROF_ATTENTION);
    mm(r, r->att, n, &l->wo, r->xn, NULL, NULL, NULL, NULL);
    for (int64_t i = 0; i < n * d; i++) r->x[i] += r->xn[i];
    prof_mark(r, PROF_ATTN_OUT);

    for (int32_t t = 0; t < n; t++) rmsnorm(r->xn + t * d, r->x + t * d, l->ffn_norm, d, hp->rms_eps);
    prof_mark(r, PROF_NORM);
    mm_run(r, r->xn, n, &l->w_gate, r->gate, &l->w_up, r->up, NULL, NULL, true);
    prof_mark(r, PROF_FFN_GATE_UP);
    mm(r, r->gate, n, &l->w_down, r->xn, NULL, NULL, NULL, NULL);
    for (int64_t i = 0; i < n * d; i++) r->x[i] += r->xn[i];
    prof_mark(r, PROF_FFN_DOWN);
}

static int check_batch(model_runner *r, const model_token *batch, int32_t n) {
    const model_hparams *hp = &r->m->hp;
    int32_t max_pos = 0;
    if (n <= 0 || n > r->max_batch)
        return err_set("forward: batch of %d tokens (1..%d allowed)", n, r->max_batch);
    for (int32_t t = 0; t < n; t++) {
        const model_token *b = &batch[t];
        if (b->token < 0 || b->token >= hp->n_vocab)
            return err_set("token id %d at index %d is outside the vocabulary [0, %d)", b->token, t,
                           hp->n_vocab);
        if (b->pos < 0 || b->pos >= b->seq->n_ctx || b->seq->blocks[b->pos / MODEL_KV_BLOCK] < 0 ||
            b->seq->blocks[b->pos / MODEL_KV_BLOCK] >= b->seq->kv->n_blocks)
            return err_set("context full: position %d is outside the context of %d", b->pos,
                           b->seq->n_ctx);
        if (b->seq->kv->be != r->be)
            return err_set("forward: token %d's sequence keeps its KV on %s, the runner is on %s", t,
                           b->seq->kv->be ? b->seq->kv->be->name : "cpu", r->be ? r->be->name : "cpu");
        if (b->pos + 1 > max_pos) max_pos = b->pos + 1;
    }
    if (!r->be && attention_scratch(max_pos) > r->scores_cap) {
        int nth = tpool_size(r->pool);
        float *s = realloc(r->scores, (size_t)nth * attention_scratch(max_pos) * sizeof *s);
        if (!s) return err_set("out of memory for attention scores");
        r->scores = s;
        r->scores_cap = attention_scratch(max_pos);
    }
    return 0;
}

int model_runner_forward(model_runner *r, const model_token *batch, int32_t n) {
    const model *m = r->m;
    const model_hparams *hp = &m->hp;
    int64_t d = hp->n_embd;
    if (check_batch(r, batch, n)) return -1;
    if (r->be) return r->be->forward(r->impl, batch, n);
    att_plan(r, batch, n);
    prof_mark(r, -1);
    for (int32_t t = 0; t < n; t++) {
        matmul_get_row(m->tok_embd.type, m->tok_embd.data, d, batch[t].token, r->x + t * d);
        float *cs = r->rope_cs + (size_t)t * hp->rope_dim;
        for (int32_t i = 0; i < hp->rope_dim / 2; i++) {
            double theta = batch[t].pos * r->rope_freq[i]; /* double: long contexts stay exact */
            cs[2 * i] = (float)cos(theta);
            cs[2 * i + 1] = (float)sin(theta);
        }
    }
    prof_mark(r, PROF_EMBED);
    for (int il = 0; il < hp->n_layer; il++) layer_forward(r, il, batch, n);
    /* the classifier only for tokens that want logits, gathered into one product */
    int32_t n_out = 0;
    for (int32_t t = 0; t < n; t++)
        if (batch[t].logits) rmsnorm(r->logit_in + (n_out++) * d, r->x + t * d, m->output_norm, d, hp->rms_eps);
    if (!n_out) return 0;
    /* logit rows whose destinations are consecutive (all logits of a prompt; a scheduler's
     * rows in batch order) share one product, whatever tokens without logits lie between */
    int32_t k = 0, t = 0;
    while (k < n_out) {
        while (!batch[t].logits) t++;
        float *dst = batch[t].logits;
        int32_t run = 1;
        for (t++; t < n && k + run < n_out; t++) {
            if (!batch[t].logits) continue;
            if (batch[t].logits != dst + (size_t)run * hp->n_vocab) break;
            run++;
        }
        mm(r, r->logit_in + (size_t)k * d, run, &m->output, dst, NULL, NULL, NULL, NULL);
        k += run;
    }
    prof_mark(r, PROF_OUTPUT);
    return 0;
}

/* ---- single sequence ------------------------------------------------------------------ */

/* Tokens per batch of a prompt on the CPU: bounds scratch memory; products are matrix x
 * matrix. */
#define CTX_BATCH 64

struct model_ctx {
    model_seq *seq;
    model_runner *runner;
    model_token *batch; /* [runner's max_batch] */
};

model_ctx *model_ctx_wrap(model_seq *seq, model_runner *runner) {
    model_ctx *c = calloc(1, sizeof *c);
    if (c) {
        c->seq = seq;
        c->runner = runner;
        c->batch = malloc((size_t)model_runner_max_batch(runner) * sizeof *c->batch);
    }
    if (!c || !c->batch) {
        free(c);
        model_seq_free(seq);
        model_runner_free(runner);
        err_set("out of memory");
        return NULL;
    }
    return c;
}

model_ctx *model_ctx_new_threads(const model *m, int32_t n_ctx, int n_threads) {
    model_seq *seq = model_seq_new(m, n_ctx, MODEL_KV_F32);
    model_runner *r = seq ? model_runner_new(m, CTX_BATCH, n_threads) : NULL;
    if (!r) {
        model_seq_free(seq);
        return NULL;
    }
    return model_ctx_wrap(seq, r);
}

model_ctx *model_ctx_new(const model *m, int32_t n_ctx) { return model_ctx_new_threads(m, n_ctx, 0); }

void model_ctx_free(model_ctx *c) {
    if (!c) return;
    model_runner_free(c->runner);
    model_seq_free(c->seq);
    free(c->batch);
    free(c);
}

int32_t model_ctx_size(const model_ctx *c) { return c->seq->n_ctx; }

int model_forward(model_ctx *c, const int32_t *tokens, int32_t n_tok, int32_t pos0, float *logits,
                  bool all_logits) {
    int32_t n_vocab = c->runner->m->hp.n_vocab;
    if (n_tok <= 0) return err_set("forward: no tokens");
    if (pos0 < 0 || pos0 > c->seq->n_ctx - n_tok)
        return err_set("context full: %d tokens at position %d exceed the context of %d", n_tok,
                       pos0, c->seq->n_ctx);
    const int32_t max_batch = c->runner->max_batch;
    for (int32_t done = 0; done < n_tok; done += max_batch) {
        int32_t n = n_tok - done < max_batch ? n_tok - done : max_batch;
        for (int32_t t = 0; t < n; t++) {
            int32_t i = done + t;
            float *out = all_logits ? logits + (size_t)i * n_vocab : i == n_tok - 1 ? logits : NULL;
            c->batch[t] = (model_token){c->seq, tokens[i], pos0 + i, out};
        }
        if (model_runner_forward(c->runner, c->batch, n)) return -1;
    }
    return 0;
}
