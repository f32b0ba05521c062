/* llama2.c readers and the llama2.c -> GGUF conversion: synthetic checkpoints in both layouts,
 * rejected headers, truncations at many cut points, and (with ../shared) bit-identity with
 * llama.cpp's own conversion of stories260K and with the bundled models/stories260K.gguf. */
#include "test.h"

#include "base/err.h"
#include "model/gguf.h"
#include "model/llama2c.h"
#include "model/llama2c_gguf.h"

#include <stdint.h>
#include <stdlib.h>

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct buf {
    unsigned char *p;
    size_t len;
} buf;

static void put(buf *b, const void *p, size_t n) {
    unsigned char *q = realloc(b->p, b->len + n);
    if (!q) abort();
    b->p = q;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_i32(buf *b, int32_t v) { put(b, &v, 4); }

static bool write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(p, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = false;
    return ok;
}

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    unsigned char *p = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = malloc((size_t)n + 1)) && fread(p, 1, (size_t)n, f) == (size_t)n) {
        *size = (size_t)n;
    } else {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

/* ---- synthetic checkpoints ---------------------------------------------------------------- */

enum { T_TOK, T_ATT, T_WQ, T_WK, T_WV, T_WO, T_FFN, T_W1, T_W2, T_W3, T_FIN, T_FREQ, T_CLS };

/* dim 8, hidden 12, 2 layers, 4 heads (head size 2), 2 kv heads (kv_dim 4), vocab 5, seq 3 */
enum { D = 8, H = 12, L = 2, NH = 4, NKV = 2, KV = 4, V = 5, S = 3 };

/* Element k of tensor kind t (all layers together): distinct everywhere, so a tensor taken
 * from the wrong place or with the wrong stride shows up. Exact in fp32. */
static float val(int t, size_t k) { return (float)t * 1000.0f + (float)k * 0.5f; }

static void put_tensor(buf *b, int t, size_t n) {
    for (size_t k = 0; k < n; k++) {
        float x = val(t, k);
        put(b, &x, 4);
    }
}

static const size_t sizes[] = {
    [T_TOK] = V * D, [T_ATT] = L * D,      [T_WQ] = L * D * D, [T_WK] = L * KV * D,
    [T_WV] = L * KV * D, [T_WO] = L * D * D, [T_FFN] = L * D,  [T_W1] = L * H * D,
    [T_W2] = L * D * H, [T_W3] = L * H * D, [T_FIN] = D,        [T_FREQ] = S * D / NH,
    [T_CLS] = V * D,
};

static buf make_ckpt(int version, bool shared) {
    buf b = {0};
    int32_t hdr[7] = {D, H, L, NH, NKV, V, S};
    static const int v0[] = {T_TOK, T_ATT, T_WQ, T_WK, T_WV, T_WO,
                             T_FFN, T_W1,  T_W2, T_W3, T_FIN, T_FREQ};
    static const int v1[] = {T_ATT, T_FFN, T_FIN, T_TOK, T_WQ, T_WK,
                             T_WV,  T_WO,  T_W1,  T_W2,  T_W3};
    const int *order = version ? v1 : v0;
    size_t n = version ? sizeof v1 / sizeof v1[0] : sizeof v0 / sizeof v0[0];
    if (version) {
        unsigned char flag = shared, zero = 0;
        put_i32(&b, 0x616b3432);
        put_i32(&b, 1);
        for (int i = 0; i < 7; i++) put_i32(&b, hdr[i]);
        put(&b, &flag, 1);
        while (b.len < 256) put(&b, &zero, 1);
    } else {
        if (!shared) hdr[5] = -V;
        for (int i = 0; i < 7; i++) put_i32(&b, hdr[i]);
    }
    for (size_t i = 0; i < n; i++) put_tensor(&b, order[i], sizes[order[i]]);
    if (!shared) put_tensor(&b, T_CLS, sizes[T_CLS]);
    return b;
}

/* llama2.c tokenizer.bin: max_token_length, then (score, len, bytes) per token */
static const char *const syn_text[V] = {"<unk>", "\n<s>\n", "\n</s>\n", "<0x41>", " a b"};

static buf make_tok(void) {
    buf b = {0};
    put_i32(&b, 6);
    for (int i = 0; i < V; i++) {
        float score = -(float)i;
        put(&b, &score, 4);
        put_i32(&b, (int32_t)strlen(syn_text[i]));
        put(&b, syn_text[i], strlen(syn_text[i]));
    }
    return b;
}

/* Converts in memory; returns the GGUF bytes or NULL (with a recorded failure). */
static unsigned char *convert_buf(const llama2c_model *m, const llama2c_vocab *v,
                                  const char *name, size_t *size) {
    gguf_writer *w = gguf_writer_new();
    unsigned char *out = NULL;
    CHECK(w != NULL);
    if (w && (llama2c_gguf_fill(w, m, v, name) != 0 ||
              gguf_writer_write_buffer(w, &out, size) != 0)) {
        CHECK_MSG(0, "convert: %s", err_msg());
        out = NULL;
    }
    gguf_writer_free(w);
    return out;
}

/* Opens checkpoint and tokenizer buffers and converts them. */
static unsigned char *convert_synthetic(buf ck, buf tk, size_t *size) {
    llama2c_model m;
    llama2c_vocab v;
    unsigned char *out = NULL;
    if (llama2c_open_buffer(&m, ck.p, ck.len, "ck") != 0) {
        CHECK_MSG(0, "open: %s", err_msg());
        return NULL;
    }
    if (llama2c_vocab_load_buffer(&v, tk.p, tk.len, m.cfg.vocab_size, "tk") == 0) {
        out = convert_buf(&m, &v, "syn", size);
        llama2c_vocab_free(&v);
    } else {
        CHECK_MSG(0, "vocab: %s", err_msg());
    }
    llama2c_close(&m);
    return out;
}

static bool tensor_is(const gguf *g, const char *name, uint32_t n_dims, uint64_t ne0, uint64_t ne1,
                      int kind, size_t first) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    if (!t || t->type != QT_F32 || t->n_dims != n_dims || t->ne[0] != ne0 || t->ne[1] != ne1)
        return false;
    for (uint64_t k = 0; k < ne0 * ne1; k++) {
        float x;
        memcpy(&x, (const unsigned char *)t->data + 4 * k, 4);
        if (x != val(kind, first + k)) return false;
    }
    return true;
}

/* ---- synthetic tests ---------------------------------------------------------------------- */

TEST(llama2c_synthetic_layout) {
    buf tk = make_tok();
    for (int shared = 0; shared < 2; shared++) {
        buf ck0 = make_ckpt(0, shared), ck1 = make_ckpt(1, shared);
        size_t n0 = 0, n1 = 0;
        unsigned char *g0 = convert_synthetic(ck0, tk, &n0);
        unsigned char *g1 = convert_synthetic(ck1, tk, &n1);
        /* the same weights in the v0 and v1 layouts make the same file */
        CHECK(g0 && g1 && n0 == n1 && memcmp(g0, g1, n0) == 0);
        gguf *g = g0 ? gguf_open_buffer(g0, n0, "converted") : NULL;
        CHECK_MSG(g != NULL, "reopen: %s", err_msg());
        if (g) {
            CHECK_EQ_INT(gguf_n_tensors(g), 2 + 9 * L + !shared);
            CHECK(tensor_is(g, "token_embd.weight", 2, D, V, T_TOK, 0));
            CHECK(tensor_is(g, "output_norm.weight", 1, D, 1, T_FIN, 0));
            if (shared)
                CHECK(gguf_find_tensor(g, "output.weight") == NULL);
            else
                CHECK(tensor_is(g, "output.weight", 2, D, V, T_CLS, 0));
            CHECK(tensor_is(g, "blk.0.attn_q.weight", 2, D, D, T_WQ, 0));
            CHECK(tensor_is(g, "blk.1.attn_q.weight", 2, D, D, T_WQ, D * D));
            CHECK(tensor_is(g, "blk.1.attn_k.weight", 2, D, KV, T_WK, KV * D));
            CHECK(tensor_is(g, "blk.1.attn_v.weight", 2, D, KV, T_WV, KV * D));
            CHECK(tensor_is(g, "blk.1.attn_output.weight", 2, D, D, T_WO, D * D));
            CHECK(tensor_is(g, "blk.1.attn_norm.weight", 1, D, 1, T_ATT, D));
            CHECK(tensor_is(g, "blk.1.ffn_norm.weight", 1, D, 1, T_FFN, D));
            CHECK(tensor_is(g, "blk.1.ffn_gate.weight", 2, D, H, T_W1, H * D));
            CHECK(tensor_is(g, "blk.1.ffn_down.weight", 2, H, D, T_W2, D * H));
            CHECK(tensor_is(g, "blk.1.ffn_up.weight", 2, D, H, T_W3, H * D));
            uint32_t u;
            CHECK(gguf_get_u32(g, "llama.context_length", &u) == 1 && u == S);
            CHECK(gguf_get_u32(g, "llama.rope.dimension_count", &u) == 1 && u == D / NH);
            CHECK(gguf_get_u32(g, "llama.attention.head_count_kv", &u) == 1 && u == NKV);
            CHECK(gguf_get_u32(g, "llama.feed_forward_length", &u) == 1 && u == H);
            gguf_str s;
            CHECK(gguf_get_str(g, "general.name", &s) == 1 && gguf_str_eq(s, "syn"));
            gguf_close(g);
        }
        free(g0);
        free(g1);
        free(ck0.p);
        free(ck1.p);
    }
    free(tk.p);
}

TEST(llama2c_synthetic_tokens) {
    static const char *const want[V] = {"<unk>", "<s>", "</s>", "<0x41>",
                                        "\xe2\x96\x81" "a" "\xe2\x96\x81" "b"};
    static const int32_t want_type[V] = {2, 3, 3, 6, 1};
    buf ck = make_ckpt(0, true), tk = make_tok();
    size_t n = 0;
    unsigned char *out = convert_synthetic(ck, tk, &n);
    gguf *g = out ? gguf_open_buffer(out, n, "converted") : NULL;
    const gguf_value *toks, *scores, *types;
    CHECK(g != NULL);
    if (g && gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &toks) == 1 &&
        gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_FLOAT32, &scores) == 1 &&
        gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_INT32, &types) == 1) {
        CHECK_EQ_INT(toks->v.arr.n, V);
        for (uint64_t i = 0; i < V && i < toks->v.arr.n; i++) {
            CHECK_MSG(gguf_str_eq(toks->v.arr.items[i].v.s, want[i]), "token %u", (unsigned)i);
            CHECK_EQ_INT(gguf_arr_int(types, i), want_type[i]);
            CHECK(gguf_arr_float(scores, i) == -(double)i);
        }
        uint32_t u;
        gguf_str s;
        CHECK(gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) == 1 && u == 1);
        CHECK(gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) == 1 && u == 2);
        CHECK(gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &u) == 1 && u == 0);
        CHECK(gguf_get_str(g, "tokenizer.ggml.model", &s) == 1 && gguf_str_eq(s, "llama"));
    } else {
        CHECK_MSG(0, "tokenizer arrays missing");
    }
    gguf_close(g);
    free(out);
    free(ck.p);
    free(tk.p);
}

/* Writes `b` to a file, expects llama2c_open to fail with a message naming the file and
 * containing `want`. */
static void expect_ckpt_error(const void *p, size_t n, const char *want, const char *what) {
    const char *path = test_tmp_path("bad.bin");
    llama2c_model m;
    CHECK(write_file(path, p, n));
    int rc = llama2c_open(&m, path);
    CHECK_MSG(rc == -1, "%s: accepted", what);
    if (rc == 0) {
        llama2c_close(&m);
        return;
    }
    CHECK_MSG(strstr(err_msg(), path) != NULL, "%s: message lacks the path: %s", what, err_msg());
    CHECK_MSG(strstr(err_msg(), want) != NULL, "%s: message lacks '%s': %s", what, want, err_msg());
}

TEST(llama2c_bad_header) {
    static const struct {
        int version, field; /* field: index of the int32 among the 7 */
        int32_t value;
        const char *want;
    } cases[] = {
        {0, 0, 0, "dim"},         {0, 0, -8, "dim"},        {0, 0, 0x7fffffff, "dim"},
        {0, 1, 0, "hidden_dim"},  {0, 2, 0, "n_layers"},    {0, 3, 0, "n_heads"},
        {0, 4, -2, "n_kv_heads"}, {0, 5, 0, "vocab_size"},  {0, 6, 0, "seq_len"},
        {0, 3, 3, "multiple of n_heads"},   {0, 4, 3, "multiple of n_kv_heads"},
        {0, 4, 8, "multiple of n_kv_heads"}, {0, 3, 8, "odd"},
        {1, 0, 0, "dim"},         {1, 5, -5, "vocab_size"}, {1, 2, 3, "takes exactly"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf b = make_ckpt(cases[i].version, true);
        char what[64];
        memcpy(b.p + (cases[i].version ? 8 : 0) + 4 * cases[i].field, &cases[i].value, 4);
        snprintf(what, sizeof what, "case %zu", i);
        expect_ckpt_error(b.p, b.len, cases[i].want, what);
        free(b.p);
    }
    buf b = make_ckpt(1, true);
    int32_t two = 2;
    memcpy(b.p + 4, &two, 4);
    expect_ckpt_error(b.p, b.len, "version 2", "v1 version field");
    memcpy(b.p + 4, &(int32_t){1}, 4);
    b.p[36] = 7;
    expect_ckpt_error(b.p, b.len, "shared_classifier", "v1 flag");
    expect_ckpt_error(b.p, 100, "256-byte", "short v1 header");
    free(b.p);
    expect_ckpt_error("", 0, "28-byte", "empty file");
    /* a v0 header that claims a shared classifier in front of weights with a separate one */
    b = make_ckpt(0, false);
    memcpy(b.p + 20, &(int32_t){V}, 4);
    expect_ckpt_error(b.p, b.len, "trailing", "shared flag with wcls present");
    free(b.p);
    llama2c_model m;
    CHECK(llama2c_open(&m, test_tmp_path("does-not-exist.bin")) == -1);
    CHECK(strstr(err_msg(), "does-not-exist.bin") != NULL);
}

TEST(llama2c_truncated_synthetic) {
    for (int version = 0; version < 2; version++) {
        buf b = make_ckpt(version, false);
        size_t cuts[] = {1, 4, 27, 28, 29, 255, 256, 257, b.len / 2, b.len - 4, b.len - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            char what[64];
            snprintf(what, sizeof what, "v%d cut at %zu", version, cuts[i]);
            bool in_header = cuts[i] < (version ? 256u : 28u);
            expect_ckpt_error(b.p, cuts[i], in_header ? "shorter" : "truncated", what);
        }
        put(&b, "x", 1);
        expect_ckpt_error(b.p, b.len, "trailing", "one byte too many");
        free(b.p);
    }
}

static void expect_vocab_error(const void *p, size_t n, uint32_t n_vocab, const char *want,
                               const char *what) {
    const char *path = test_tmp_path("bad-tok.bin");
    llama2c_vocab v;
    CHECK(write_file(path, p, n));
    int rc = llama2c_vocab_load(&v, path, n_vocab);
    CHECK_MSG(rc == -1, "%s: accepted", what);
    if (rc == 0) {
        llama2c_vocab_free(&v);
        return;
    }
    CHECK_MSG(strstr(err_msg(), path) != NULL, "%s: message lacks the path: %s", what, err_msg());
    CHECK_MSG(strstr(err_msg(), want) != NULL, "%s: message lacks '%s': %s", what, want, err_msg());
}

TEST(llama2c_bad_tokenizer) {
    buf b = make_tok();
    char what[64];
    llama2c_vocab v;
    CHECK(llama2c_vocab_load_buffer(&v, b.p, b.len, V, "tk") == 0);
    CHECK(v.n == V && v.max_token_length == 6 && v.len[2] == 6 &&
          memcmp(v.text[2], "\n</s>\n", 6) == 0);
    CHECK(v.score[4] == -4.0f);
    llama2c_vocab_free(&v);
    for (size_t cut = 0; cut < b.len; cut++) {
        snprintf(what, sizeof what, "cut at %zu", cut);
        expect_vocab_error(b.p, cut, V, cut < 4 ? "too short" : "end", what);
    }
    expect_vocab_error(b.p, b.len, V + 1, "ends at offset", "one token more than the file");
    expect_vocab_error(b.p, b.len, V - 1, "left after", "one token fewer than the file");
    /* refused from the file size alone, without allocating for 4 billion tokens */
    expect_vocab_error(b.p, b.len, UINT32_MAX, "too short for 4294967295 tokens",
                       "a count no file of this size holds");
    put(&b, "z", 1);
    expect_vocab_error(b.p, b.len, V, "left after", "trailing byte");
    int32_t bad = -1;
    memcpy(b.p + 8, &bad, 4); /* token 0's length */
    expect_vocab_error(b.p, b.len, V, "length -1", "negative length");
    bad = 7; /* > max_token_length 6 */
    memcpy(b.p + 8, &bad, 4);
    expect_vocab_error(b.p, b.len, V, "length 7", "length over the maximum");
    bad = 0;
    memcpy(b.p, &bad, 4);
    expect_vocab_error(b.p, b.len, V, "max_token_length", "zero max_token_length");
    free(b.p);
}

TEST(llama2c_vocab_mismatch) {
    buf ck = make_ckpt(0, true), tk = make_tok();
    llama2c_model m;
    llama2c_vocab v;
    gguf_writer *w = gguf_writer_new();
    CHECK(llama2c_open_buffer(&m, ck.p, ck.len, "ck") == 0);
    CHECK(llama2c_vocab_load_buffer(&v, tk.p, tk.len, V, "tk") == 0);
    v.n = V - 1; /* as if loaded for another model */
    CHECK(llama2c_gguf_fill(w, &m, &v, "x") == -1);
    CHECK(strstr(err_msg(), "tokenizer has 4 tokens") != NULL);
    v.n = V;
    llama2c_vocab_free(&v);
    llama2c_close(&m);
    gguf_writer_free(w);
    free(ck.p);
    free(tk.p);
}

/* ---- stories260K against llama.cpp's conversion ------------------------------------------- */

static unsigned char *convert_stories(size_t *size) {
    llama2c_model m;
    llama2c_vocab v;
    unsigned char *out = NULL;
    if (llama2c_open(&m, test_shared_path("models/stories260K.bin")) != 0) {
        CHECK_MSG(0, "open: %s", err_msg());
        return NULL;
    }
    if (llama2c_vocab_load(&v, test_shared_path("models/tok512.bin"), m.cfg.vocab_size) == 0) {
        out = convert_buf(&m, &v, "stories260K", size);
        llama2c_vocab_free(&v);
    } else {
        CHECK_MSG(0, "vocab: %s", err_msg());
    }
    llama2c_close(&m);
    return out;
}

TEST(llama2c_stories_config) {
    NEED_SHARED();
    llama2c_model m;
    if (llama2c_open(&m, test_shared_path("models/stories260K.bin")) != 0) {
        CHECK_MSG(0, "open: %s", err_msg());
        return;
    }
    const llama2c_config *c = &m.cfg;
    CHECK(c->version == 0 && c->dim == 64 && c->hidden_dim == 172 && c->n_layers == 5 &&
          c->n_heads == 8 && c->n_kv_heads == 4 && c->vocab_size == 512 && c->seq_len == 512 &&
          c->shared_classifier && m.wcls == NULL);
    llama2c_close(&m);
}

TEST(llama2c_stories_tensors_match_llamacpp) {
    NEED_SHARED();
    size_t n = 0;
    unsigned char *out = convert_stories(&n);
    gguf *ours = out ? gguf_open_buffer(out, n, "converted") : NULL;
    gguf *ref = gguf_open(test_shared_path("models/stories260K.gguf"));
    CHECK_MSG(ours && ref, "open: %s", err_msg());
    if (ours && ref) {
        /* every reference tensor, bit for bit; output.weight is the shared embedding, which we
         * leave out */
        CHECK_EQ_INT(gguf_n_tensors(ref), 48);
        CHECK_EQ_INT(gguf_n_tensors(ours), 47);
        for (size_t i = 0; i < gguf_n_tensors(ref); i++) {
            const gguf_tensor *r = gguf_tensor_at(ref, i);
            char *name = gguf_str_dup(r->name);
            bool out_w = strcmp(name, "output.weight") == 0;
            const gguf_tensor *o = gguf_find_tensor(ours, out_w ? "token_embd.weight" : name);
            CHECK_MSG(o != NULL, "missing %s", name);
            if (o)
                CHECK_MSG(o->type == r->type && o->n_dims == r->n_dims &&
                              memcmp(o->ne, r->ne, sizeof o->ne) == 0 && o->nbytes == r->nbytes &&
                              memcmp(o->data, r->data, r->nbytes) == 0,
                          "tensor %s differs", name);
            /* same order, apart from the missing output.weight */
            if (!out_w && o)
                CHECK_MSG(gguf_str_eq(gguf_tensor_at(ours, i - (i > 2))->name, name),
                          "tensor %s out of order", name);
            free(name);
        }
    }
    gguf_close(ours);
    gguf_close(ref);
    free(out);
}

static bool same_value(const gguf_value *a, const gguf_value *b) {
    if (a->type != b->type) return false;
    switch (a->type) {
    case GGUF_STRING:
        return a->v.s.len == b->v.s.len && memcmp(a->v.s.ptr, b->v.s.ptr, a->v.s.len) == 0;
    case GGUF_FLOAT32:
    case GGUF_FLOAT64:
        return memcmp(&a->v.f, &b->v.f, sizeof a->v.f) == 0;
    case GGUF_ARRAY:
        if (a->v.arr.elem != b->v.arr.elem || a->v.arr.n != b->v.arr.n) return false;
        if (a->v.arr.items) {
            for (uint64_t i = 0; i < a->v.arr.n; i++)
                if (!same_value(&a->v.arr.items[i], &b->v.arr.items[i])) return false;
            return true;
        }
        /* numeric arrays byte for byte, so -0.0 must stay -0.0 */
        return a->v.arr.elem == GGUF_INT32 || a->v.arr.elem == GGUF_FLOAT32
                   ? memcmp(a->v.arr.raw, b->v.arr.raw, 4 * a->v.arr.n) == 0
                   : false;
    default:
        return a->v.u == b->v.u;
    }
}

TEST(llama2c_stories_metadata_match_llamacpp) {
    NEED_SHARED();
    size_t n = 0, next = 0;
    unsigned char *out = convert_stories(&n);
    gguf *ours = out ? gguf_open_buffer(out, n, "converted") : NULL;
    gguf *ref = gguf_open(test_shared_path("models/stories260K.gguf"));
    CHECK_MSG(ours && ref, "open: %s", err_msg());
    if (ours && ref) {
        for (size_t i = 0; i < gguf_n_kv(ref); i++) {
            const gguf_kv *r = gguf_kv_at(ref, i);
            char *key = gguf_str_dup(r->key);
            const gguf_value *o = gguf_find(ours, key);
            uint32_t u;
            gguf_str s;
            if (strcmp(key, "tokenizer.ggml.seperator_token_id") == 0 ||
                strcmp(key, "tokenizer.ggml.padding_token_id") == 0) {
                CHECK_MSG(o == NULL, "%s should be left out", key); /* "none" in the reference */
            } else if (strcmp(key, "general.name") == 0) {
                CHECK(gguf_get_str(ours, key, &s) == 1 && gguf_str_eq(s, "stories260K"));
            } else if (strcmp(key, "llama.context_length") == 0) {
                CHECK(gguf_get_u32(ref, key, &u) == 1 && u == 128); /* llama.cpp's default */
                CHECK(gguf_get_u32(ours, key, &u) == 1 && u == 512); /* the checkpoint's seq_len */
            } else {
                CHECK_MSG(o && same_value(o, &r->val), "%s differs", key);
            }
            /* same order, apart from the keys left out */
            if (o) {
                CHECK_MSG(next < gguf_n_kv(ours) && gguf_str_eq(gguf_kv_at(ours, next)->key, key),
                          "%s out of order", key);
                next++;
            }
            free(key);
        }
        CHECK_EQ_INT(gguf_n_kv(ours), gguf_n_kv(ref) - 2);
    }
    gguf_close(ours);
    gguf_close(ref);
    free(out);
}

TEST(llama2c_stories_truncated) {
    NEED_SHARED();
    size_t size = 0, tsize = 0;
    unsigned char *ck = read_file(test_shared_path("models/stories260K.bin"), &size);
    unsigned char *tk = read_file(test_shared_path("models/tok512.bin"), &tsize);
    CHECK(ck && tk);
    if (ck && tk) {
        size_t cuts[] = {3, 27, 28, 4096, size / 2, size - 8 * 512 * 4, size - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            char what[64];
            snprintf(what, sizeof what, "checkpoint cut at %zu", cuts[i]);
            expect_ckpt_error(ck, cuts[i], cuts[i] < 28 ? "shorter" : "truncated", what);
        }
        size_t tcuts[] = {2, 4, 100, tsize / 2, tsize - 1};
        for (size_t i = 0; i < sizeof tcuts / sizeof tcuts[0]; i++) {
            char what[64];
            snprintf(what, sizeof what, "tokenizer cut at %zu", tcuts[i]);
            expect_vocab_error(tk, tcuts[i], 512, tcuts[i] < 4 ? "too short" : "end", what);
        }
        /* the Llama 2 tokenizer is no vocabulary for a 512-token model */
        llama2c_vocab v;
        CHECK(llama2c_vocab_load(&v, test_shared_path("models/tokenizer.bin"), 512) == -1);
        CHECK(strstr(err_msg(), "left after") != NULL);
    }
    free(ck);
    free(tk);
}

TEST(llama2c_bundled_model_is_fresh_conversion) {
    NEED_SHARED();
    size_t n1 = 0, n2 = 0, nb = 0;
    unsigned char *a = convert_stories(&n1), *b = convert_stories(&n2);
    unsigned char *bundled = read_file("models/stories260K.gguf", &nb);
    CHECK_MSG(a && b && n1 == n2 && memcmp(a, b, n1) == 0, "two conversions differ");
    CHECK_MSG(bundled != NULL, "models/stories260K.gguf not found (run from the repo root)");
    CHECK_MSG(bundled && a && nb == n1 && memcmp(bundled, a, n1) == 0,
              "models/stories260K.gguf is not what veil convert makes of stories260K.bin");
    free(a);
    free(b);
    free(bundled);
}
