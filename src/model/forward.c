/* The forward pass of llama / qwen2 / qwen3 (forward.h), written to be read top to bottom:
 * embeddings, then per layer RMSNorm → QKV (+bias) → (QK-norm) → RoPE → store K/V → causal
 * attention over the cache → output projection → residual → RMSNorm → SwiGLU FFN → residual,
 * then the final norm and the classifier for the tokens that want logits.
 *
 * Activations are F32; the KV cache F32 or F16 (model_kv_type). All the layers run as one job
 * of the thread pool, its threads meeting at a barrier (tpool_barrier) where a step needs what
 * the others computed: 5 per layer. A step dispatched to the pool costs the same as a barrier,
 * but between dispatched steps the calling thread alone ran the norms, the input conversions
 * and the residual adds while the others waited, and a worker had to be woken for every step.
 * Now every thread does those itself: each normalises and converts a product's input into its
 * own copy (a few microseconds, the same values everywhere), and adds the output rows it
 * computed to the residual stream.
 *
 * Matrix products go through tensor/matmul (kernels chosen there), their rows shared by the
 * threads in chunks (tensor/workshare.h: a thread done with its share takes over the rest of
 * another's), the SwiGLU activation fused into the gate/up product; biases, QK-norm,
 * RoPE, the K/V stores and attention (model/attention.h, kernels chosen with matmul's) are one
 * step split by (sequence, KV head) in runs of equal cost, shared the same way. A token's
 * values do not depend on the split (matmul.h), so the number of threads does not change the
 * results. */
#include "model/forward.h"

#include "base/clock.h"
#include "base/err.h"
#include "base/hugemem.h"
#include "model/attention.h"
#include "tensor/matmul.h"
#include "tensor/swiglu.h"
#include "tensor/threadpool.h"
#include "tensor/workshare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Layout: [n_blocks][n_layer][n_head_kv][MODEL_KV_BLOCK * head_dim] elements, so what one
 * (layer, head) of a block holds is one piece (attention.h's layout: V rows, K transposed). */
struct model_kv {
    int32_t n_blocks, n_layer, n_head_kv, head_dim;
    model_kv_type type;
    size_t block_elems;  /* elements of one block: all layers and heads */
    size_t bytes;        /* of k and of v (hugemem: a block's pieces share TLB entries) */
    void *k, *v;
    const model_backend *be; /* another device's store (k, v NULL); forward.h */
    void *impl;
};

struct model_runner {
    const model *m;
    int32_t max_batch;
    int64_t q_dim, kv_dim;
    tpool *pool;
    workshare *share;    /* the row chunks of the product being computed */
    float *x, *q, *k, *v, *att, *gate, *up, *proj, *logit_in;
    float *xn;           /* [n_threads][max_batch * n_embd]: each thread's normalised input */
    float *rope_cs;      /* [max_batch][rope_dim/2][2]: cos, sin of this batch's positions */
    double *rope_freq;   /* [rope_dim/2] */
    float *scores;       /* [n_threads][scores_cap]: attention scratch */
    int64_t *att_split;  /* [n_threads + 1]: each thread's attention units, by cost */
    /* att_plan's grouping of a batch's tokens by sequence ([max_batch] each, +1 for start) */
    int32_t *tok_grp, *grp_tok, *grp_start, *grp_first;
    int64_t *grp_cost;
    void *mm_scratch;    /* [n_threads]: a matmul_input for max_batch rows of the widest
                            product input, mm_scratch_size bytes each */
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

/* Charges the time since the previous mark to op. */
static void prof_mark(model_runner *r, int op) {
    if (!r->prof) return;
    double t = clock_now();
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
    kv->bytes = bytes;
    kv->k = hugemem_alloc(bytes);
    kv->v = hugemem_alloc(bytes);
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
    hugemem_free(kv->k, kv->bytes);
    hugemem_free(kv->v, kv->bytes);
    free(kv);
}

int model_kv_populate(model_kv *kv) {
    if (kv->be) return 0;
    return hugemem_populate(kv->k, kv->bytes) || hugemem_populate(kv->v, kv->bytes) ? -1 : 0;
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
    const attn_kv view = seq_view(s, il, kv_head);
    attention_store_kv(&view, s->kv->head_dim, pos, k, v);
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
    size_t B = (size_t)max_batch;
    r->pool = tpool_new(n_threads);
    if (!r->pool) {
        model_runner_free(r);
        return NULL;
    }
    const size_t nth = (size_t)tpool_size(r->pool);
    r->share = workshare_new((int)nth);
    if (!r->share) {
        model_runner_free(r);
        return NULL;
    }
    r->x = alloc_floats(B * hp->n_embd, &oom);
    r->xn = alloc_floats(nth * B * hp->n_embd, &oom);
    r->proj = alloc_floats(B * hp->n_embd, &oom);
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
    r->mm_scratch = malloc(nth * r->mm_scratch_size);
    if (oom || !r->rope_freq || !r->mm_scratch) goto oom;
    for (int32_t i = 0; i < hp->rope_dim / 2; i++)
        r->rope_freq[i] = pow((double)hp->rope_theta, -2.0 * i / hp->rope_dim);
    r->att_split = malloc((nth + 1) * sizeof *r->att_split);
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

struct tpool *model_runner_pool(model_runner *r) { return r->be ? NULL : r->pool; }

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
    workshare_free(r->share);
    free(r->x);
    free(r->xn);
    free(r->q);
    free(r->k);
    free(r->v);
    free(r->att);
    free(r->gate);
    free(r->up);
    free(r->proj);
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

/* Thread ith's matmul_input for x (n_tok rows of w[0]'s n_in floats), converted for the types of
 * w[0..n_mats), in its own scratch. Every thread converts the same values the same way, so
 * every copy is the same, and no thread waits for another to do it. */
static const matmul_input *thread_input(model_runner *r, int ith, const float *x, int64_t n_tok,
                                        const model_matrix *const w[], int n_mats) {
    void *scratch = (char *)r->mm_scratch + (size_t)ith * r->mm_scratch_size;
    matmul_input *in = matmul_input_init(scratch, r->mm_scratch_size, x, w[0]->n_in, n_tok);
    for (int i = 0; i < n_mats; i++) matmul_input_prepare(in, w[i]->type);
    return in;
}

/* Rows per item of a product step (workshare.h): a multiple of every kernel's row group, large
 * enough that taking an item costs nothing next to computing it (64 rows of a 1024-wide Q4_0
 * matrix are 36 KB of weights), small enough to even out the threads' finishing times. */
#define CHUNK_ROWS 64

/* What a product step does with the rows an item computed, besides storing them. */
typedef enum { MM_PLAIN, MM_SWIGLU, MM_RESIDUAL } mm_mode;

/* The items of a step: chunks[i] of them in w[i], for the *n_parts matrices whose rows are
 * items (SwiGLU: only w[0]'s, each item covering the same rows of w[1]); returns the total. */
static int64_t mm_items(const model_matrix *const w[], int n_mats, mm_mode mode, int64_t chunks[3],
                        int *n_parts) {
    *n_parts = mode == MM_SWIGLU ? 1 : n_mats;
    int64_t total = 0;
    for (int i = 0; i < *n_parts; i++) total += chunks[i] = (w[i]->n_out + CHUNK_ROWS - 1) / CHUNK_ROWS;
    return total;
}

/* Bytes of a thread's first item that mm_warm fetches, and of an item's up rows that a SwiGLU
 * step fetches before the item's gate rows: about what the kernels' own prefetch runs ahead
 * (tensor/matmul_avx512.c, PACKED_AHEAD). */
#define WARM_BYTES 16384

/* Thread ith's first item of an mm_step to come: the start of its rows into L2, issued just
 * before the barrier (or the attention step) that precedes the step, so that the product's
 * first cache lines arrive while the thread would otherwise wait. A product streams its rows
 * with prefetches ahead of itself, but nothing is ahead of its start. */
static void mm_warm(model_runner *r, const model_matrix *const w[], int n_mats, mm_mode mode, int ith) {
    int64_t chunks[3];
    int n_parts, i = 0;
    int64_t c = workshare_first(r->share, ith, mm_items(w, n_mats, mode, chunks, &n_parts));
    while (i < n_parts && c >= chunks[i]) c -= chunks[i++];
    if (i == n_parts) return; /* no item for this thread */
    for (int k = i; k < (mode == MM_SWIGLU ? 2 : i + 1); k++)
        matmul_prefetch(w[k]->type, w[k]->data, w[k]->n_in, w[k]->n_out, c * CHUNK_ROWS, WARM_BYTES);
}

/* 2 and 4 floats anywhere in memory as vectors of the baseline target's width (SSE2: wider
 * generic vectors were split with spills to the stack): the elementwise loops below use them
 * because plain loops stayed scalar at -O2. */
typedef float f32x2 __attribute__((vector_size(8), aligned(4), may_alias));
typedef float f32x4 __attribute__((vector_size(16), aligned(4), may_alias));
#define AT2(p) (*(const f32x2 *)(p))
#define AT4(p) (*(f32x4 *)(p))

/* x[k] += y[k] for k < n, 4 at a time (the plain loop: 3.5 % of a 512-token prompt's time),
 * then the rest one by one. The same sums as the plain loop. */
static void add_into(float *restrict x, const float *restrict y, int64_t n) {
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) AT4(x + k) += AT4(y + k);
    for (; k < n; k++) x[k] += y[k];
}

/* Thread ith's part of a step of up to three products with the same input, in items of
 * CHUNK_ROWS rows of w[0], then of w[1], ... (r->share hands them out). MM_SWIGLU: w[0], w[1]
 * are gate and up; an item is the same rows of both, and y0 = silu(y0) * y1 on them, so the
 * activation needs no step of its own. MM_RESIDUAL: x += y0 on the item's rows (w[0] has n_embd
 * rows). */
static void mm_step(model_runner *r, const matmul_input *in, int64_t n_tok,
                    const model_matrix *const w[], float *const y[], int n_mats, mm_mode mode,
                    int ith) {
    int64_t chunks[3];
    int n_parts;
    workshare_begin(r->share, ith, mm_items(w, n_mats, mode, chunks, &n_parts));
    for (int64_t c; (c = workshare_next(r->share, ith)) >= 0;) {
        int i = 0;
        while (c >= chunks[i]) c -= chunks[i++];
        const int64_t n_out = w[i]->n_out, r0 = c * CHUNK_ROWS;
        const int64_t r1 = r0 + CHUNK_ROWS < n_out ? r0 + CHUNK_ROWS : n_out;
        /* SwiGLU: the up rows are another stream, which the gate rows' prefetching (it runs
         * ahead within one matrix) does not reach: start their first bytes now */
        if (mode == MM_SWIGLU) matmul_prefetch(w[1]->type, w[1]->data, w[1]->n_in, n_out, r0, WARM_BYTES);
        matmul_rows(w[i]->type, w[i]->data, n_out, in, y[i], r0, r1);
        if (mode == MM_SWIGLU) {
            matmul_rows(w[1]->type, w[1]->data, n_out, in, y[1], r0, r1);
            for (int64_t t = 0; t < n_tok; t++) swiglu(y[0] + t * n_out + r0, y[1] + t * n_out + r0, r1 - r0);
        } else if (mode == MM_RESIDUAL) {
            for (int64_t t = 0; t < n_tok; t++) add_into(r->x + t * n_out + r0, y[0] + t * n_out + r0, r1 - r0);
        }
    }
}

/* One product outside the layers' job (the classifier): the input converted on this thread,
 * the rows split across the pool. */
typedef struct mm_job {
    model_runner *r;
    const model_matrix *w;
    const matmul_input *in;
    int64_t n_tok;
    float *y;
} mm_job;

static void mm_worker(void *arg, int ith, int nth) {
    (void)nth;
    const mm_job *j = arg;
    mm_step(j->r, j->in, j->n_tok, &j->w, &j->y, 1, MM_PLAIN, ith);
}

static void mm(model_runner *r, const float *x, int64_t n_tok, const model_matrix *w, float *y) {
    mm_job j = {r, w, thread_input(r, 0, x, n_tok, &w, 1), n_tok, y};
    tpool_run(r->pool, mm_worker, &j);
}

/* ---- elementwise steps -------------------------------------------------------------- */

/* out[i] = x[i] * scale * w[i] for i < n, 4 at a time (the plain loop, out possibly x, which
 * -O2 does not version for: over half of a batched step's norm time), then the rest one by
 * one. The same products in the same order. */
static void scale_rows_into(float *out, const float *x, float scale, const float *w, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) AT4(out + i) = AT4(x + i) * scale * AT4(w + i);
    for (; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* The sum of x[i]^2 for i < n in double: 8 running sums (element i into sum i % 8, as 4 pairs),
 * added pairwise at the end, then the rest one by one. A single chain of dependent additions
 * was bound by the adder's latency; in double, the order moves the float-rounded result only
 * in the rarest ties. */
static double sum_squares(const float *x, int64_t n) {
    typedef double f64x2 __attribute__((vector_size(16)));
    f64x2 s01 = {0, 0}, s23 = s01, s45 = s01, s67 = s01;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const f64x2 a = __builtin_convertvector(AT2(x + i), f64x2), b = __builtin_convertvector(AT2(x + i + 2), f64x2),
                    c = __builtin_convertvector(AT2(x + i + 4), f64x2), d = __builtin_convertvector(AT2(x + i + 6), f64x2);
        s01 += a * a, s23 += b * b, s45 += c * c, s67 += d * d;
    }
    const f64x2 e = (s01 + s45) + (s23 + s67); /* (s0 + s4) + (s2 + s6), (s1 + s5) + (s3 + s7) */
    double ss = e[0] + e[1];
    for (; i < n; i++) ss += (double)x[i] * x[i];
    return ss;
}

/* out = x / sqrt(mean(x^2) + eps) * w. */
static void rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    scale_rows_into(out, x, 1.0f / sqrtf((float)(sum_squares(x, n) / n) + eps), w, n);
}

/* rmsnorm of the n_tok rows of d values at x (row stride d) into out. */
static void rmsnorm_rows(float *out, const float *x, const float *w, int64_t n_tok, int64_t d,
                         float eps) {
    for (int64_t t = 0; t < n_tok; t++) rmsnorm(out + t * d, x + t * d, w, d, eps);
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

/* One step per layer does everything between the QKV product and the output projection, in
 * units of (sequence, KV head): for each of the sequence's tokens in the batch,
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
    /* the unit's queries (its tokens in order, each token's query heads), ATTN_MAX_Q at a time
     * over the cache rows they share */
    const attn_kv kv = seq_view(seq, j->il, kh);
    const float scale = 1.0f / sqrtf((float)hd);
    const float *q[ATTN_MAX_Q];
    float *out[ATTN_MAX_Q];
    int32_t n_pos[ATTN_MAX_Q];
    int n_q = 0;
    for (int32_t i = 0; i < n_tok; i++) {
        const int32_t t = toks[i];
        for (int32_t h = kh * group; h < (kh + 1) * group; h++) {
            const size_t at = (size_t)t * r->q_dim + (size_t)h * hd;
            q[n_q] = r->q + at;
            out[n_q] = r->att + at;
            n_pos[n_q++] = j->batch[t].pos + 1;
            if (n_q == ATTN_MAX_Q) {
                attention_heads(&kv, hd, n_q, q, n_pos, scale, scores, out);
                n_q = 0;
            }
        }
    }
    if (n_q) attention_heads(&kv, hd, n_q, q, n_pos, scale, scores, out);
}

/* Bytes of K and of V that a unit warms for the unit after it (att_share). */
#define ATT_WARM_BYTES 8192

/* Unit u's cache into L2 (attention_warm): the K and V of its sequence's positions so far. */
static void att_warm(const att_job *j, int64_t u) {
    model_runner *r = j->r;
    const model_hparams *hp = &r->m->hp;
    const int32_t g = (int32_t)(u / hp->n_head_kv), kh = (int32_t)(u % hp->n_head_kv);
    const int32_t last = r->grp_tok[r->grp_start[g + 1] - 1];
    const attn_kv kv = seq_view(j->batch[last].seq, j->il, kh);
    attention_warm(&kv, hp->head_dim, j->batch[last].pos + 1, ATT_WARM_BYTES);
}

/* Thread ith's units: its run of att_plan's split, then (workshare.h) units left in others'.
 * Before a unit, the next one's cache starts on its way: a unit's cache is a few KB in blocks
 * far apart, so at the short contexts of batched decode its kernels otherwise wait for memory
 * at each unit's start (d1024-l16, 8 to 16 sequences, F16 cache: attention 10-20 % faster). */
static void att_share(const att_job *j, int ith) {
    model_runner *r = j->r;
    float *scores = r->scores + (size_t)ith * r->scores_cap;
    const int64_t n_units = r->att_split[tpool_size(r->pool)];
    workshare_begin_range(r->share, ith, r->att_split[ith], r->att_split[ith + 1]);
    for (int64_t u; (u = workshare_next(r->share, ith)) >= 0;) {
        if (u + 1 < n_units) att_warm(j, u + 1);
        att_unit(j, u, scores);
    }
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

/* Thread ith's part of layer il. Between barriers each thread reads what the others wrote
 * before the previous barrier and writes only the rows or units it was handed: x is read by
 * the norms and written (each thread the rows it computed) by the residual adds, with a
 * barrier between any read and the next write. The profile's times are thread 0's: its part of
 * a step plus its wait. */
static void layer_step(model_runner *r, int il, const model_token *batch, int32_t n, int ith) {
    const model_hparams *hp = &r->m->hp;
    const model_layer *l = &r->m->layers[il];
    const int64_t d = hp->n_embd;
    float *xn = r->xn + (size_t)ith * (size_t)r->max_batch * (size_t)d;
    const bool t0 = ith == 0;
    const model_matrix *const qkv[3] = {&l->wq, &l->wk, &l->wv};
    const model_matrix *const wo = &l->wo;
    const model_matrix *const gate_up[2] = {&l->w_gate, &l->w_up};
    const model_matrix *const down = &l->w_down;
    if (il == 0) mm_warm(r, qkv, 3, MM_PLAIN, ith);
    rmsnorm_rows(xn, r->x, l->attn_norm, n, d, hp->rms_eps);
    if (t0) prof_mark(r, PROF_NORM);
    float *const qkv_out[3] = {r->q, r->k, r->v};
    mm_step(r, thread_input(r, ith, xn, n, qkv, 3), n, qkv, qkv_out, 3, MM_PLAIN, ith);
    mm_warm(r, &wo, 1, MM_RESIDUAL, ith);
    tpool_barrier(r->pool);
    if (t0) prof_mark(r, PROF_QKV);
    const att_job aj = {r, l, batch, il};
    att_share(&aj, ith);
    tpool_barrier(r->pool);
    if (t0) prof_mark(r, PROF_ATTENTION);
    mm_step(r, thread_input(r, ith, r->att, n, &wo, 1), n, &wo, &r->proj, 1, MM_RESIDUAL, ith);
    mm_warm(r, gate_up, 2, MM_SWIGLU, ith);
    tpool_barrier(r->pool);
    if (t0) prof_mark(r, PROF_ATTN_OUT);

    rmsnorm_rows(xn, r->x, l->ffn_norm, n, d, hp->rms_eps);
    if (t0) prof_mark(r, PROF_NORM);
    float *const gate_up_out[2] = {r->gate, r->up};
    mm_step(r, thread_input(r, ith, xn, n, gate_up, 2), n, gate_up, gate_up_out, 2, MM_SWIGLU, ith);
    mm_warm(r, &down, 1, MM_RESIDUAL, ith);
    tpool_barrier(r->pool);
    if (t0) prof_mark(r, PROF_FFN_GATE_UP);
    mm_step(r, thread_input(r, ith, r->gate, n, &down, 1), n, &down, &r->proj, 1, MM_RESIDUAL, ith);
    if (il + 1 < hp->n_layer) {
        const model_layer *nl = &r->m->layers[il + 1];
        const model_matrix *const next[3] = {&nl->wq, &nl->wk, &nl->wv};
        mm_warm(r, next, 3, MM_PLAIN, ith);
    } else {
        const model_matrix *const out = &r->m->output; /* the classifier's step (mm) */
        mm_warm(r, &out, 1, MM_PLAIN, ith);
    }
    tpool_barrier(r->pool);
    if (t0) prof_mark(r, PROF_FFN_DOWN);
}

typedef struct pass_job {
    model_runner *r;
    const model_token *batch;
    int32_t n;
} pass_job;

static void pass_worker(void *arg, int ith, int nth) {
    (void)nth;
    const pass_job *j = arg;
    for (int il = 0; il < j->r->m->hp.n_layer; il++) layer_step(j->r, il, j->batch, j->n, ith);
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
    const size_t cap = ATTN_MAX_Q * attention_scratch(max_pos); /* attention_heads' scratch */
    if (!r->be && cap > r->scores_cap) {
        int nth = tpool_size(r->pool);
        float *s = realloc(r->scores, (size_t)nth * cap * sizeof *s);
        if (!s) return err_set("out of memory for attention scores");
        r->scores = s;
        r->scores_cap = cap;
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
    pass_job pj = {r, batch, n};
    tpool_run(r->pool, pass_worker, &pj);
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
        mm(r, r->logit_in + (size_t)k * d, run, &m->output, dst);
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
