/* Random-weight models (randmodel.h). Tensor names, shapes and metadata keys follow llama.cpp's
 * GGUF conventions, the same ones model.c loads. */
#include "model/randmodel.h"

#include "base/err.h"
#include "base/rng.h"
#include "model/gguf.h"
#include "tensor/qtype.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEIGHT_STD 0.02f

static const randmodel_shape shapes[] = {
    /* name              arch     embd layers heads kv  hd   ff    vocab   ctx    theta  eps  tied */
    {"d1024-l16",       "llama",  1024, 16, 16, 16, 64,  2816, 32000,  2048,  1e4f, 1e-5f, false, false},
    {"tinyllama-1.1b",  "llama",  2048, 22, 32, 4,  64,  5632, 32000,  2048,  1e4f, 1e-5f, false, false},
    {"qwen3-0.6b",      "qwen3",  1024, 28, 16, 8,  128, 3072, 151936, 40960, 1e6f, 1e-6f, true,  false},
    {"test-llama",      "llama",  256,  2,  4,  2,  64,  512,  512,    256,   1e4f, 1e-5f, false, true},
    {"test-qwen3",      "qwen3",  256,  2,  4,  2,  128, 512,  512,    256,   1e6f, 1e-6f, true,  true},
    /* ~88 MB in F32: big enough that a copy of the weights would show in a memory test */
    {"test-mem",        "llama",  512,  4,  8,  8,  64,  1536, 8192,   256,   1e4f, 1e-5f, false, true},
};

const randmodel_shape *randmodel_shapes(size_t *n) {
    *n = sizeof shapes / sizeof shapes[0];
    return shapes;
}

const randmodel_shape *randmodel_find(const char *name) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (strcmp(shapes[i].name, name) == 0) return &shapes[i];
    return NULL;
}

/* ---- vocabulary ------------------------------------------------------------------------ */

/* Token texts and merges are short: one fixed slot each keeps the bookkeeping trivial. */
#define SLOT 24

typedef struct vocab {
    char (*text)[SLOT];
    const char **tokens;
    int32_t *types;
    float *scores;
    char (*merge_text)[SLOT];
    const char **merges;
    int64_t n, n_merges, eos;
} vocab;

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

/* The k-th non-empty string over a..z in shortlex order: a..z, aa..zz, aaa... For
 * k < 2^24 (every vocabulary model.c accepts) it has at most 6 letters: out needs 7 bytes. */
#define LETTERS_MAX 7
static void letters(uint64_t k, char out[LETTERS_MAX]) {
    int len = 1;
    uint64_t count = 26;
    while (k >= count) {
        k -= count;
        count *= 26;
        len++;
    }
    for (int i = len - 1; i >= 0; i--) {
        out[i] = (char)('a' + k % 26);
        k /= 26;
    }
    out[len] = 0;
}

static void add_token(vocab *v, const char *text, int32_t type, float score) {
    snprintf(v->text[v->n], SLOT, "%s", text);
    v->tokens[v->n] = v->text[v->n];
    v->types[v->n] = type;
    v->scores[v->n] = score;
    v->n++;
}

static void add_merge(vocab *v, const char *left, const char *right) {
    snprintf(v->merge_text[v->n_merges], SLOT, "%s %s", left, right);
    v->merges[v->n_merges] = v->merge_text[v->n_merges];
    v->n_merges++;
}

/* SentencePiece: <unk> <s> </s>, the 256 byte tokens, then "▁" and letter strings with and
 * without a leading "▁", scored so that shorter pieces merge first. */
static void vocab_spm(vocab *v, int64_t n_vocab) {
    char s[LETTERS_MAX], piece[3 + LETTERS_MAX];
    add_token(v, "<unk>", TT_UNKNOWN, 0);
    add_token(v, "<s>", TT_CONTROL, 0);
    add_token(v, "</s>", TT_CONTROL, 0);
    for (int b = 0; b < 256; b++) {
        char byte[8];
        snprintf(byte, sizeof byte, "<0x%02X>", b);
        add_token(v, byte, TT_BYTE, 0);
    }
    add_token(v, "\xe2\x96\x81", TT_NORMAL, -1);
    for (uint64_t k = 0; v->n < n_vocab; k++) {
        letters(k, s);
        snprintf(piece, sizeof piece, "\xe2\x96\x81%s", s);
        add_token(v, piece, TT_NORMAL, -(float)v->n);
        if (v->n < n_vocab) add_token(v, s, TT_NORMAL, -(float)v->n);
    }
}

/* GPT-2's byte-to-character map: printable Latin-1 bytes stand for themselves, the others are
 * moved to U+0100 and up in byte order. Returns the UTF-8 length written to out. */
static bool byte_printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

static int byte_char(int b, char *out) {
    int cp = b;
    if (!byte_printable(b)) {
        cp = 256;
        for (int x = 0; x < b; x++) cp += !byte_printable(x);
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
        return 1;
    }
    out[0] = (char)(0xc0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3f));
    out[2] = 0;
    return 2;
}

/* Byte-level BPE: the 256 byte characters in GPT-2's order (printable bytes first), then letter
 * strings with and without a leading "Ġ" (a space), each with the merge that builds it from a
 * shorter token and one letter, then Qwen's three control tokens. */
static void vocab_bpe(vocab *v, int64_t n_vocab) {
    char s[LETTERS_MAX], left[2 + LETTERS_MAX], right[2] = {0}, piece[2 + LETTERS_MAX];
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            if (byte_printable(b) != (pass == 0)) continue;
            char ch[3];
            byte_char(b, ch);
            add_token(v, ch, TT_NORMAL, 0);
        }
    for (uint64_t k = 0; v->n < n_vocab - 3; k++) {
        letters(k, s);
        size_t len = strlen(s);
        right[0] = s[len - 1];
        snprintf(left, sizeof left, "\xc4\xa0%.*s", (int)(len - 1), s);
        snprintf(piece, sizeof piece, "\xc4\xa0%s", s);
        add_merge(v, left, right);
        add_token(v, piece, TT_NORMAL, 0);
        if (len >= 2 && v->n < n_vocab - 3) {
            snprintf(left, sizeof left, "%.*s", (int)(len - 1), s);
            add_merge(v, left, right);
            add_token(v, s, TT_NORMAL, 0);
        }
    }
    v->eos = v->n;
    add_token(v, "<|endoftext|>", TT_CONTROL, 0);
    add_token(v, "<|im_start|>", TT_CONTROL, 0);
    add_token(v, "<|im_end|>", TT_CONTROL, 0);
}

static void vocab_free(vocab *v) {
    free(v->text);
    free(v->tokens);
    free(v->types);
    free(v->scores);
    free(v->merge_text);
    free(v->merges);
}

static int set_vocab(gguf_writer *w, const randmodel_shape *s) {
    bool spm = strcmp(s->arch, "llama") == 0;
    size_t n = (size_t)s->n_vocab;
    vocab v = {0};
    int rc = -1;
    if (s->n_vocab < (spm ? 260 : 262) || s->n_vocab > (1 << 24)) {
        err_set("shape %s: a vocabulary of %d tokens is too small", s->name, s->n_vocab);
        goto out;
    }
    v.text = malloc(n * SLOT);
    v.tokens = malloc(n * sizeof *v.tokens);
    v.types = malloc(n * sizeof *v.types);
    v.scores = malloc(n * sizeof *v.scores);
    v.merge_text = malloc(n * SLOT);
    v.merges = malloc(n * sizeof *v.merges);
    if (!v.text || !v.tokens || !v.types || !v.scores || !v.merge_text || !v.merges) {
        err_set("out of memory for a vocabulary of %zu tokens", n);
        goto out;
    }
    if (spm) vocab_spm(&v, s->n_vocab);
    else vocab_bpe(&v, s->n_vocab);
    gguf_writer_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    if (!spm) gguf_writer_set_str(w, "tokenizer.ggml.pre", "qwen2");
    gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", v.tokens, (uint64_t)v.n);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, v.types, (uint64_t)v.n);
    if (spm) {
        gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, v.scores, (uint64_t)v.n);
        gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    } else {
        gguf_writer_set_str_arr(w, "tokenizer.ggml.merges", v.merges, (uint64_t)v.n_merges);
        gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v.eos);
        gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v.eos);
        gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    }
    rc = 0;
out:
    vocab_free(&v);
    return rc;
}

/* ---- weights --------------------------------------------------------------------------- */

typedef struct rm_tensor {
    struct rm *rm;
    char name[64];
    uint32_t type;
    uint64_t ne[2];
    uint32_t n_dims;
    bool ones;        /* a norm: all 1 */
    uint64_t index;   /* names the random stream */
} rm_tensor;

typedef struct rm {
    uint64_t seed;
    tpool *pool;
    quantize_notify notify;
    void *ud;
    size_t done, count;
    uint64_t bytes_done, bytes_total;
} rm;

static void gauss_src(void *ud, int64_t row, float *out) {
    const rm_tensor *t = ud;
    rng r = rng_stream(t->rm->seed, t->index, (uint64_t)row);
    rng_normal_fill(&r, out, (size_t)t->ne[0], WEIGHT_STD);
}

static int fill_tensor(void *ud, void *dst, uint64_t nbytes) {
    rm_tensor *t = ud;
    rm *m = t->rm;
    if (t->ones) {
        float one = 1.0f;
        for (uint64_t i = 0; i < nbytes / sizeof one; i++) memcpy((char *)dst + i * sizeof one, &one, sizeof one);
    } else if (quantize_rows(m->pool, t->type, (int64_t)t->ne[0], (int64_t)t->ne[1], gauss_src, t, dst))
        return -1;
    m->done++;
    m->bytes_done += nbytes;
    if (m->notify) {
        quantize_tensor info = {t->name, QT_F32, t->type, NULL, m->done, m->count, m->bytes_done,
                                m->bytes_total};
        m->notify(m->ud, &info);
    }
    return 0;
}

static void add(rm_tensor *ts, size_t *n, uint32_t type, const char *name, int64_t ne0, int64_t ne1) {
    rm_tensor *t = &ts[*n];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ne[0] = (uint64_t)ne0;
    t->ne[1] = (uint64_t)(ne1 ? ne1 : 1);
    t->n_dims = ne1 ? 2 : 1;
    t->ones = ne1 == 0;
    t->type = t->ones ? QT_F32 : quantize_choose(type, name, 2, t->ne, QT_F32, NULL);
    t->index = (uint64_t)*n;
    (*n)++;
}

/* Tensors in llama.cpp's order: embeddings, then each block, then the head. */
static size_t list_tensors(const randmodel_shape *s, uint32_t type, rm_tensor *ts) {
    size_t n = 0;
    int64_t d = s->n_embd, q = (int64_t)s->n_head * s->head_dim, kv = (int64_t)s->n_head_kv * s->head_dim;
    bool qk_norm = strcmp(s->arch, "qwen3") == 0;
    char name[64];
    add(ts, &n, type, "token_embd.weight", d, s->n_vocab);
    for (int il = 0; il < s->n_layer; il++) {
        const struct { const char *suffix; int64_t ne0, ne1; bool qwen3; } parts[] = {
            {"attn_norm", d, 0, false},     {"attn_q", d, q, false},
            {"attn_k", d, kv, false},       {"attn_v", d, kv, false},
            {"attn_output", q, d, false},   {"attn_q_norm", s->head_dim, 0, true},
            {"attn_k_norm", s->head_dim, 0, true}, {"ffn_norm", d, 0, false},
            {"ffn_gate", d, s->n_ff, false}, {"ffn_up", d, s->n_ff, false},
            {"ffn_down", s->n_ff, d, false},
        };
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
            if (parts[i].qwen3 && !qk_norm) continue;
            snprintf(name, sizeof name, "blk.%d.%s.weight", il, parts[i].suffix);
            add(ts, &n, type, name, parts[i].ne0, parts[i].ne1);
        }
    }
    add(ts, &n, type, "output_norm.weight", d, 0);
    if (!s->tied) add(ts, &n, type, "output.weight", d, s->n_vocab);
    return n;
}

static void set_hparams(gguf_writer *w, const randmodel_shape *s, uint32_t type) {
    char key[96], name[96];
    const char *a = s->arch;
    snprintf(name, sizeof name, "veil random %s", s->name);
    gguf_writer_set_str(w, "general.architecture", a);
    gguf_writer_set_str(w, "general.name", name);
    gguf_writer_set_u32(w, "general.file_type", type == QT_F32 ? 0u : (uint32_t)quantize_ftype(type));
    gguf_writer_set_u32(w, "general.quantization_version", 2);
#define HP_U32(k, v) (snprintf(key, sizeof key, "%s." k, a), gguf_writer_set_u32(w, key, (uint32_t)(v)))
#define HP_F32(k, v) (snprintf(key, sizeof key, "%s." k, a), gguf_writer_set_f32(w, key, (v)))
    HP_U32("context_length", s->n_ctx);
    HP_U32("embedding_length", s->n_embd);
    HP_U32("block_count", s->n_layer);
    HP_U32("feed_forward_length", s->n_ff);
    HP_U32("attention.head_count", s->n_head);
    HP_U32("attention.head_count_kv", s->n_head_kv);
    HP_U32("attention.key_length", s->head_dim);
    HP_U32("attention.value_length", s->head_dim);
    HP_U32("rope.dimension_count", s->head_dim);
    HP_F32("rope.freq_base", s->rope_theta);
    HP_F32("attention.layer_norm_rms_epsilon", s->rms_eps);
#undef HP_U32
#undef HP_F32
}

int randmodel_write(const randmodel_shape *s, uint32_t type, const char *path, int n_threads,
                    uint64_t seed, quantize_notify notify, void *ud) {
    rm m = {seed, NULL, notify, ud, 0, 0, 0, 0};
    size_t max_tensors = 3 + 11 * (size_t)s->n_layer;
    rm_tensor *ts = calloc(max_tensors, sizeof *ts);
    gguf_writer *w = gguf_writer_new();
    int rc = -1;
    if (type != QT_F32 && quantize_ftype(type) < 0) {
        err_set("make model: cannot write matrices as %s", qtype_get(type) ? qtype_get(type)->name : "?");
        goto out;
    }
    if (!ts || !w) {
        err_set("out of memory");
        goto out;
    }
    m.pool = tpool_new(n_threads);
    if (!m.pool) goto out;
    set_hparams(w, s, type);
    if (set_vocab(w, s)) goto out;
    m.count = list_tensors(s, type, ts);
    for (size_t i = 0; i < m.count; i++) {
        rm_tensor *t = &ts[i];
        t->rm = &m;
        m.bytes_total += qtype_row_size(t->type, t->ne[0]) * t->ne[1];
        if (gguf_writer_add_tensor_fill(w, t->name, t->type, t->n_dims, t->ne, fill_tensor, t)) goto out;
    }
    if (gguf_writer_write(w, path)) goto out;
    rc = 0;
out:
    if (m.pool) tpool_free(m.pool);
    gguf_writer_free(w);
    free(ts);
    return rc;
}
