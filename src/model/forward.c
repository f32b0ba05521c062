/* The forward pass of llama / qwen2 / qwen3 (forward.h), written to be read top to bottom:
 * embeddings, then per layer RMSNorm → QKV (+bias) → (QK-norm) → RoPE → causal attention over
 * the KV cache → output projection → residual → RMSNorm → SwiGLU FFN → residual, then the final
 * norm and the classifier. Activations are F32; matrix products go through tensor/matmul, so
 * faster kernels slot in there without touching this file. */
#include "model/forward.h"

#include "base/err.h"
#include "tensor/matmul.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Tokens per chunk of a prompt: bounds scratch memory; the products are matrix x matrix. */
#define CHUNK 64

struct model_ctx {
    const model *m;
    int32_t n_ctx;
    int64_t q_dim, kv_dim;
    float *k_cache, *v_cache; /* [n_layer][n_ctx][kv_dim] */
    float *x, *xn, *q, *k, *v, *att, *gate, *up, *scores;
    float *rope_cos, *rope_sin; /* [n_ctx][rope_dim / 2], computed once */
};

static void *alloc_floats(size_t n, bool *oom) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) *oom = true;
    return p;
}

model_ctx *model_ctx_new(const model *m, int32_t n_ctx) {
    const model_hparams *hp = &m->hp;
    model_ctx *c = calloc(1, sizeof *c);
    bool oom = false;
    if (!c) goto oom;
    if (n_ctx <= 0) n_ctx = hp->n_ctx_train;
    c->m = m;
    c->n_ctx = n_ctx;
    c->q_dim = (int64_t)hp->n_head * hp->head_dim;
    c->kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    size_t cache = (size_t)hp->n_layer * (size_t)n_ctx * (size_t)c->kv_dim;
    c->k_cache = alloc_floats(cache, &oom);
    c->v_cache = alloc_floats(cache, &oom);
    c->x = alloc_floats((size_t)CHUNK * hp->n_embd, &oom);
    c->xn = alloc_floats((size_t)CHUNK * (hp->n_embd > c->q_dim ? hp->n_embd : c->q_dim), &oom);
    c->q = alloc_floats((size_t)CHUNK * c->q_dim, &oom);
    c->k = alloc_floats((size_t)CHUNK * c->kv_dim, &oom);
    c->v = alloc_floats((size_t)CHUNK * c->kv_dim, &oom);
    c->att = alloc_floats((size_t)CHUNK * c->q_dim, &oom);
    c->gate = alloc_floats((size_t)CHUNK * hp->n_ff, &oom);
    c->up = alloc_floats((size_t)CHUNK * hp->n_ff, &oom);
    c->scores = alloc_floats((size_t)n_ctx, &oom);
    c->rope_cos = alloc_floats((size_t)n_ctx * (hp->rope_dim / 2), &oom);
    c->rope_sin = alloc_floats((size_t)n_ctx * (hp->rope_dim / 2), &oom);
    if (oom) goto oom;
    /* theta = pos * base^(-2i/d), in double so that long contexts keep their precision */
    for (int32_t p = 0; p < n_ctx; p++) {
        for (int32_t i = 0; i < hp->rope_dim / 2; i++) {
            double theta = p * pow((double)hp->rope_theta, -2.0 * i / hp->rope_dim);
            c->rope_cos[(size_t)p * (hp->rope_dim / 2) + i] = (float)cos(theta);
            c->rope_sin[(size_t)p * (hp->rope_dim / 2) + i] = (float)sin(theta);
        }
    }
    return c;
oom:
    model_ctx_free(c);
    err_set("out of memory for a context of %d positions", n_ctx);
    return NULL;
}

void model_ctx_free(model_ctx *c) {
    if (!c) return;
    free(c->k_cache);
    free(c->v_cache);
    free(c->x);
    free(c->xn);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->att);
    free(c->gate);
    free(c->up);
    free(c->scores);
    free(c->rope_cos);
    free(c->rope_sin);
    free(c);
}

int32_t model_ctx_size(const model_ctx *c) { return c->n_ctx; }

/* out = x / sqrt(mean(x^2) + eps) * w; the sum in double as the reference does. */
static void rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

static void rope(float *head, const model_hparams *hp, const float *cs, const float *sn) {
    int32_t half = hp->rope_dim / 2;
    for (int32_t i = 0; i < half; i++) {
        /* NORM pairs adjacent elements; NEOX pairs element i with i + rope_dim/2 */
        int32_t a = hp->rope_neox ? i : 2 * i, b = hp->rope_neox ? i + half : 2 * i + 1;
        float x0 = head[a], x1 = head[b];
        head[a] = x0 * cs[i] - x1 * sn[i];
        head[b] = x0 * sn[i] + x1 * cs[i];
    }
}

static void add_bias(float *x, const float *b, int32_t n_tok, int64_t dim) {
    if (!b) return;
    for (int32_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < dim; i++) x[t * dim + i] += b[i];
}

static void mm(const model_matrix *w, const float *x, int32_t n_tok, float *y) {
    matmul_mat(w->type, w->data, w->n_in, w->n_out, x, n_tok, y);
}

/* Causal attention of n_tok new tokens at positions pos0.. over the cache of layer il. */
static void attention(model_ctx *c, int il, int32_t n_tok, int32_t pos0) {
    const model_hparams *hp = &c->m->hp;
    const float *kc = c->k_cache + (size_t)il * c->n_ctx * c->kv_dim;
    const float *vc = c->v_cache + (size_t)il * c->n_ctx * c->kv_dim;
    int32_t group = hp->n_head / hp->n_head_kv, hd = hp->head_dim;
    float scale = 1.0f / sqrtf((float)hd);
    for (int32_t t = 0; t < n_tok; t++) {
        int32_t n_pos = pos0 + t + 1;
        for (int32_t h = 0; h < hp->n_head; h++) {
            const float *q = c->q + (size_t)t * c->q_dim + (size_t)h * hd;
            int64_t koff = (int64_t)(h / group) * hd;
            float *s = c->scores, max = -INFINITY;
            for (int32_t p = 0; p < n_pos; p++) {
                const float *k = kc + (size_t)p * c->kv_dim + koff;
                float dot = 0;
                for (int32_t i = 0; i < hd; i++) dot += q[i] * k[i];
                s[p] = dot * scale;
                if (s[p] > max) max = s[p];
            }
            double sum = 0;
            for (int32_t p = 0; p < n_pos; p++) {
                s[p] = expf(s[p] - max);
                sum += s[p];
            }
            float inv = (float)(1.0 / sum);
            float *out = c->att + (size_t)t * c->q_dim + (size_t)h * hd;
            memset(out, 0, (size_t)hd * sizeof *out);
            for (int32_t p = 0; p < n_pos; p++) {
                const float *v = vc + (size_t)p * c->kv_dim + koff;
                float w = s[p] * inv;
                for (int32_t i = 0; i < hd; i++) out[i] += w * v[i];
            }
        }
    }
}

static void layer_forward(model_ctx *c, int il, int32_t n_tok, int32_t pos0) {
    const model_hparams *hp = &c->m->hp;
    const model_layer *l = &c->m->layers[il];
    int64_t d = hp->n_embd, hd = hp->head_dim;
    for (int32_t t = 0; t < n_tok; t++)
        rmsnorm(c->xn + t * d, c->x + t * d, l->attn_norm, d, hp->rms_eps);
    mm(&l->wq, c->xn, n_tok, c->q);
    mm(&l->wk, c->xn, n_tok, c->k);
    mm(&l->wv, c->xn, n_tok, c->v);
    add_bias(c->q, l->bq, n_tok, c->q_dim);
    add_bias(c->k, l->bk, n_tok, c->kv_dim);
    add_bias(c->v, l->bv, n_tok, c->kv_dim);
    int32_t half = hp->rope_dim / 2;
    for (int32_t t = 0; t < n_tok; t++) {
        int32_t pos = pos0 + t;
        const float *cs = c->rope_cos + (size_t)pos * half, *sn = c->rope_sin + (size_t)pos * half;
        for (int32_t h = 0; h < hp->n_head; h++) {
            float *q = c->q + t * c->q_dim + h * hd;
            if (l->q_norm) rmsnorm(q, q, l->q_norm, hd, hp->rms_eps);
            rope(q, hp, cs, sn);
        }
        for (int32_t h = 0; h < hp->n_head_kv; h++) {
            float *k = c->k + t * c->kv_dim + h * hd;
            if (l->k_norm) rmsnorm(k, k, l->k_norm, hd, hp->rms_eps);
            rope(k, hp, cs, sn);
        }
        size_t slot = ((size_t)il * c->n_ctx + (size_t)pos) * c->kv_dim;
        memcpy(c->k_cache + slot, c->k + t * c->kv_dim, (size_t)c->kv_dim * sizeof(float));
        memcpy(c->v_cache + slot, c->v + t * c->kv_dim, (size_t)c->kv_dim * sizeof(float));
    }
    attention(c, il, n_tok, pos0);
    mm(&l->wo, c->att, n_tok, c->xn);
    for (int64_t i = 0; i < n_tok * d; i++) c->x[i] += c->xn[i];

    for (int32_t t = 0; t < n_tok; t++)
        rmsnorm(c->xn + t * d, c->x + t * d, l->ffn_norm, d, hp->rms_eps);
    mm(&l->w_gate, c->xn, n_tok, c->gate);
    mm(&l->w_up, c->xn, n_tok, c->up);
    for (int64_t i = 0; i < (int64_t)n_tok * hp->n_ff; i++) {
        float g = c->gate[i];
        c->gate[i] = g / (1.0f + expf(-g)) * c->up[i];
    }
    mm(&l->w_down, c->gate, n_tok, c->xn);
    for (int64_t i = 0; i < n_tok * d; i++) c->x[i] += c->xn[i];
}

/* One chunk of at most CHUNK tokens; logits == NULL skips the classifier (an earlier chunk of
 * a prompt only has to fill the cache). */
static void chunk_forward(model_ctx *c, const int32_t *tokens, int32_t n_tok, int32_t pos0,
                          float *logits, bool all_logits) {
    const model *m = c->m;
    int64_t d = m->hp.n_embd;
    for (int32_t t = 0; t < n_tok; t++)
        matmul_get_row(m->tok_embd.type, m->tok_embd.data, d, tokens[t], c->x + t * d);
    for (int il = 0; il < m->hp.n_layer; il++) layer_forward(c, il, n_tok, pos0);
    if (!logits) return;
    int32_t first = all_logits ? 0 : n_tok - 1;
    for (int32_t t = first; t < n_tok; t++)
        rmsnorm(c->xn + (t - first) * d, c->x + t * d, m->output_norm, d, m->hp.rms_eps);
    mm(&m->output, c->xn, n_tok - first, logits);
}

int model_forward(model_ctx *c, const int32_t *tokens, int32_t n_tok, int32_t pos0, float *logits,
                  bool all_logits) {
    const model_hparams *hp = &c->m->hp;
    if (n_tok <= 0) return err_set("forward: no tokens");
    if (pos0 < 0 || pos0 > c->n_ctx - n_tok)
        return err_set("context full: %d tokens at position %d exceed the context of %d", n_tok,
                       pos0, c->n_ctx);
    for (int32_t t = 0; t < n_tok; t++)
        if (tokens[t] < 0 || tokens[t] >= hp->n_vocab)
            return err_set("token id %d at index %d is outside the vocabulary [0, %d)", tokens[t],
                           t, hp->n_vocab);
    for (int32_t done = 0; done < n_tok; done += CHUNK) {
        int32_t n = n_tok - done < CHUNK ? n_tok - done : CHUNK;
        bool last = done + n == n_tok;
        float *out = all_logits ? logits + (size_t)done * hp->n_vocab : last ? logits : NULL;
        chunk_forward(c, tokens + done, n, pos0 + done, out, all_logits);
    }
    return 0;
}
