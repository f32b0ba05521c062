/* Loading a transformer from GGUF: architecture, hyperparameters and weight views (model.h).
 * Every tensor is checked for presence, supported type and exact shape here, so the forward
 * pass never has to. */
#include "model/model.h"

#include "base/err.h"
#include "base/hugemem.h"
#include "tensor/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *model_arch_name(model_arch a) {
    switch (a) {
    case ARCH_LLAMA: return "llama";
    case ARCH_QWEN2: return "qwen2";
    case ARCH_QWEN3: return "qwen3";
    }
    return "?";
}

/* Reads {arch}.{key} as a positive int32; `required` missing → error. */
static int hp_int(const gguf *g, const char *arch, const char *key, bool required, int32_t *out) {
    char full[128];
    uint32_t v;
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int r = gguf_get_u32(g, full, &v);
    if (r < 0) return -1;
    if (r == 0) return required ? err_set("%s: missing metadata key '%s'", gguf_path(g), full) : 0;
    if (v == 0 || v > (1u << 30))
        return err_set("%s: metadata '%s' = %u is out of range", gguf_path(g), full, v);
    *out = (int32_t)v;
    return 0;
}

static int hp_float(const gguf *g, const char *arch, const char *key, float *out) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int r = gguf_get_f32(g, full, out);
    if (r < 0) return -1;
    if (r == 1 && !(*out > 0 && *out < 1e30f))
        return err_set("%s: metadata '%s' = %g is out of range", gguf_path(g), full, (double)*out);
    return 0;
}

static int load_hparams(model *m) {
    const gguf *g = m->file;
    model_hparams *hp = &m->hp;
    gguf_str a;
    char arch[32];
    if (gguf_get_str(g, "general.architecture", &a) != 1)
        return err_set("%s: missing general.architecture", gguf_path(g));
    snprintf(arch, sizeof arch, "%.*s", (int)(a.len < 31 ? a.len : 31), a.ptr);
    if (strcmp(arch, "llama") == 0) hp->arch = ARCH_LLAMA;
    else if (strcmp(arch, "qwen2") == 0) hp->arch = ARCH_QWEN2;
    else if (strcmp(arch, "qwen3") == 0) hp->arch = ARCH_QWEN3;
    else
        return err_set("%s: unsupported architecture '%.*s' (veil runs llama, qwen2, qwen3)",
                       gguf_path(g), (int)a.len, a.ptr);
    hp->rope_neox = hp->arch != ARCH_LLAMA;
    hp->rope_theta = 10000.0f;
    hp->rms_eps = 1e-5f;
    hp->n_ctx_train = 2048;
    hp->n_head_kv = 0;
    hp->head_dim = 0;
    hp->rope_dim = 0;
    if (hp_int(g, arch, "embedding_length", true, &hp->n_embd) ||
        hp_int(g, arch, "block_count", true, &hp->n_layer) ||
        hp_int(g, arch, "feed_forward_length", true, &hp->n_ff) ||
        hp_int(g, arch, "attention.head_count", true, &hp->n_head) ||
        hp_int(g, arch, "attention.head_count_kv", false, &hp->n_head_kv) ||
        hp_int(g, arch, "attention.key_length", false, &hp->head_dim) ||
        hp_int(g, arch, "rope.dimension_count", false, &hp->rope_dim) ||
        hp_int(g, arch, "context_length", false, &hp->n_ctx_train) ||
        hp_float(g, arch, "rope.freq_base", &hp->rope_theta) ||
        hp_float(g, arch, "attention.layer_norm_rms_epsilon", &hp->rms_eps))
        return -1;
    if (!hp->n_head_kv) hp->n_head_kv = hp->n_head;
    if (!hp->head_dim) {
        if (hp->n_embd % hp->n_head)
            return err_set("%s: embedding_length %d is not divisible by head_count %d",
                           gguf_path(g), hp->n_embd, hp->n_head);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    int32_t vlen = hp->head_dim;
    if (hp_int(g, arch, "attention.value_length", false, &vlen)) return -1;
    if (vlen != hp->head_dim)
        return err_set("%s: value_length %d differs from key_length %d (not supported)",
                       gguf_path(g), vlen, hp->head_dim);
    if (!hp->rope_dim) hp->rope_dim = hp->head_dim;
    if (hp->rope_dim > hp->head_dim || hp->rope_dim % 2)
        return err_set("%s: rope.dimension_count %d does not fit head size %d", gguf_path(g),
                       hp->rope_dim, hp->head_dim);
    if (hp->n_head % hp->n_head_kv)
        return err_set("%s: head_count %d is not a multiple of head_count_kv %d", gguf_path(g),
                       hp->n_head, hp->n_head_kv);
    if (hp->n_layer > 4096 || hp->head_dim > 4096)
        return err_set("%s: absurd layer count or head size", gguf_path(g));
    return 0;
}

static const gguf_tensor *find(const model *m, const char *name, bool required) {
    const gguf_tensor *t = gguf_find_tensor(m->file, name);
    if (!t && required) err_set("%s: missing tensor '%s'", gguf_path(m->file), name);
    return t;
}

static int check_shape(const model *m, const gguf_tensor *t, const char *name, int64_t ne0,
                       int64_t ne1) {
    int64_t want_dims = ne1 ? 2 : 1;
    if ((int64_t)t->n_dims > want_dims || (int64_t)t->ne[0] != ne0 ||
        (ne1 && (int64_t)t->ne[1] != ne1) || t->ne[2] != 1 || t->ne[3] != 1)
        return err_set("%s: tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%lld%s%lld]",
                       gguf_path(m->file), name, (unsigned long long)t->ne[0],
                       (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                       (unsigned long long)t->ne[3], (long long)ne0, ne1 ? ", " : "",
                       ne1 ? (long long)ne1 : 0LL);
    return 0;
}

static int load_matrix(model *m, const char *name, int64_t n_in, int64_t n_out, model_matrix *out,
                       bool required) {
    const gguf_tensor *t = find(m, name, required);
    if (!t) return required ? -1 : 0;
    if (check_shape(m, t, name, n_in, n_out)) return -1;
    if (!qtype_supported(t->type))
        return err_set("%s: tensor '%s' has type %s, which veil does not compute with yet",
                       gguf_path(m->file), name, qtype_get(t->type)->name);
    *out = (model_matrix){t->type, n_in, n_out, t->data};
    return 0;
}

/* A 1-D vector as F32: points into the file when it is F32 (and aligned), else converted. */
static int load_vector(model *m, const char *name, int64_t n, const float **out, bool required) {
    const gguf_tensor *t = find(m, name, required);
    *out = NULL;
    if (!t) return required ? -1 : 0;
    if (check_shape(m, t, name, n, 0)) return -1;
    if (t->type == QT_F32 && (uintptr_t)t->data % sizeof(float) == 0) {
        *out = t->data;
        return 0;
    }
    if (!qtype_supported(t->type))
        return err_set("%s: tensor '%s' has unsupported type %s", gguf_path(m->file), name,
                       qtype_get(t->type)->name);
    float *v = malloc((size_t)n * sizeof *v);
    float **owned = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *owned);
    if (!v || !owned) {
        free(v);
        if (owned) m->owned = owned;
        return err_set("out of memory");
    }
    m->owned = owned;
    m->owned[m->n_owned++] = v;
    quant_dequantize_row(t->type, t->data, v, n);
    *out = v;
    return 0;
}

static int load_layer(model *m, int il) {
    const model_hparams *hp = &m->hp;
    model_layer *l = &m->layers[il];
    int64_t q_dim = (int64_t)hp->n_head * hp->head_dim, kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    char n[14][64];
    const char *suffix[14] = {"attn_norm.weight", "ffn_norm.weight", "attn_q.weight",
                              "attn_k.weight", "attn_v.weight", "attn_output.weight",
                              "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
                              "attn_q_norm.weight", "attn_k_norm.weight", "attn_q.bias",
                              "attn_k.bias", "attn_v.bias"};
    for (int i = 0; i < 14; i++) snprintf(n[i], sizeof n[i], "blk.%d.%s", il, suffix[i]);
    bool qwen3 = hp->arch == ARCH_QWEN3, qwen2 = hp->arch == ARCH_QWEN2;
    if (load_vector(m, n[0], hp->n_embd, &l->attn_norm, true) ||
        load_vector(m, n[1], hp->n_embd, &l->ffn_norm, true) ||
        load_matrix(m, n[2], hp->n_embd, q_dim, &l->wq, true) ||
        load_matrix(m, n[3], hp->n_embd, kv_dim, &l->wk, true) ||
        load_matrix(m, n[4], hp->n_embd, kv_dim, &l->wv, true) ||
        load_matrix(m, n[5], q_dim, hp->n_embd, &l->wo, true) ||
        load_matrix(m, n[6], hp->n_embd, hp->n_ff, &l->w_gate, true) ||
        load_matrix(m, n[7], hp->n_embd, hp->n_ff, &l->w_up, true) ||
        load_matrix(m, n[8], hp->n_ff, hp->n_embd, &l->w_down, true) ||
        load_vector(m, n[9], hp->head_dim, &l->q_norm, qwen3) ||
        load_vector(m, n[10], hp->head_dim, &l->k_norm, qwen3) ||
        load_vector(m, n[11], q_dim, &l->bq, qwen2) ||
        load_vector(m, n[12], kv_dim, &l->bk, qwen2) ||
        load_vector(m, n[13], kv_dim, &l->bv, qwen2))
        return -1;
    return 0;
}

model *model_from_gguf(gguf *g) {
    model *m = calloc(1, sizeof *m);
    if (!m) {
        gguf_close(g);
        err_set("out of memory");
        return NULL;
    }
    m->file = g;
    if (load_hparams(m)) goto fail;
    model_hparams *hp = &m->hp;
    const gguf_tensor *emb = find(m, "token_embd.weight", true);
    if (!emb) goto fail;
    hp->n_vocab = (int32_t)emb->ne[1];
    if (emb->ne[1] > (1u << 24) ||
        load_matrix(m, "token_embd.weight", hp->n_embd, hp->n_vocab, &m->tok_embd, true))
        goto fail;
    if (load_matrix(m, "output.weight", hp->n_embd, hp->n_vocab, &m->output, false)) goto fail;
    if (!m->output.data) m->output = m->tok_embd; /* tied embeddings */
    if (load_vector(m, "output_norm.weight", hp->n_embd, &m->output_norm, true)) goto fail;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        err_set("out of memory");
        goto fail;
    }
    for (int il = 0; il < hp->n_layer; il++)
        if (load_layer(m, il)) goto fail;
    gguf_str name;
    m->name = gguf_get_str(g, "general.name", &name) == 1 ? gguf_str_dup(name) : strdup(gguf_path(g));
    if (!m->name) {
        err_set("out of memory");
        goto fail;
    }
    return m;
fail:
    model_free(m);
    return NULL;
}

model *model_load(const char *path) {
    gguf *g = gguf_open(path);
    return g ? model_from_gguf(g) : NULL;
}

void model_free(model *m) {
    if (!m) return;
    if (m->base) {
        hugemem_free(m->pack, m->pack_bytes);
        free(m->layers);
        free(m);
        return;
    }
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->name);
    gguf_close(m->file);
    free(m);
}
