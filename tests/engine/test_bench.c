/* veil bench's logic on small random-weight models: the made models have the shapes and
 * tokenizers they claim, the figures are positive and consistent, the JSON parses, and the
 * weights stay mmapped (memory grows by the file, not by a copy of it). */
#include "test.h"

#include "base/err.h"
#include "engine/bench.h"
#include "model/randmodel.h"
#include "model/tokenizer.h"
#include "tensor/matmul.h"
#include "tensor/qtype.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static bool make(const char *shape, uint32_t type, const char *path, int threads, uint64_t seed) {
    const randmodel_shape *s = randmodel_find(shape);
    CHECK(s != NULL);
    bool ok = s && randmodel_write(s, type, path, threads, seed, NULL, NULL) == 0;
    CHECK_MSG(ok, "make %s: %s", shape, err_msg());
    return ok;
}

TEST(bench_shapes_table) {
    const randmodel_shape *d = randmodel_find("d1024-l16"), *t = randmodel_find("tinyllama-1.1b"),
                          *q = randmodel_find("qwen3-0.6b");
    CHECK(d && t && q && !randmodel_find("nope"));
    if (!d || !t || !q) return;
    CHECK(d->n_embd == 1024 && d->n_layer == 16 && d->n_head == 16 && d->n_head_kv == 16 &&
          d->n_vocab == 32000 && d->n_ff == 2816 && !d->tied && !strcmp(d->arch, "llama"));
    CHECK(t->n_embd == 2048 && t->n_layer == 22 && t->n_head == 32 && t->n_head_kv == 4 &&
          t->n_ff == 5632 && t->n_vocab == 32000 && !strcmp(t->arch, "llama"));
    CHECK(q->n_embd == 1024 && q->n_layer == 28 && q->n_head == 16 && q->n_head_kv == 8 &&
          q->head_dim == 128 && q->n_ff == 3072 && q->n_vocab == 151936 && q->tied &&
          !strcmp(q->arch, "qwen3"));
}

/* Checks one tensor's presence, shape and type. */
static void want_tensor(const gguf *g, const char *name, uint64_t ne0, uint64_t ne1, uint32_t type) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    CHECK_MSG(t != NULL, "%s missing", name);
    if (!t) return;
    CHECK_MSG(t->ne[0] == ne0 && t->ne[1] == ne1 && t->n_dims == (ne1 > 1 ? 2u : 1u) && t->type == type,
              "%s: [%llu, %llu] type %u, want [%llu, %llu] type %u", name,
              (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], t->type,
              (unsigned long long)ne0, (unsigned long long)ne1, type);
}

static void check_made_model(const char *shape, uint32_t type) {
    const randmodel_shape *s = randmodel_find(shape);
    const char *path = test_tmp_path("made.gguf");
    if (!make(shape, type, path, 2, 5)) return;
    gguf *g = gguf_open(path);
    CHECK_MSG(g != NULL, "%s", err_msg());
    if (!g) return;
    bool qwen3 = !strcmp(s->arch, "qwen3");
    uint64_t d = (uint64_t)s->n_embd, q = (uint64_t)(s->n_head * s->head_dim),
             kv = (uint64_t)(s->n_head_kv * s->head_dim), ff = (uint64_t)s->n_ff;
    size_t per_layer = qwen3 ? 11 : 9;
    CHECK_EQ_INT(gguf_n_tensors(g), 2 + per_layer * (size_t)s->n_layer + (s->tied ? 0 : 1));
    want_tensor(g, "token_embd.weight", d, (uint64_t)s->n_vocab, type);
    want_tensor(g, "output_norm.weight", d, 1, QT_F32);
    if (!s->tied) want_tensor(g, "output.weight", d, (uint64_t)s->n_vocab, type);
    CHECK(s->tied == (gguf_find_tensor(g, "output.weight") == NULL));
    for (int il = 0; il < s->n_layer; il++) {
        char n[64];
#define BLK(suffix, a, b, t) (snprintf(n, sizeof n, "blk.%d.%s.weight", il, suffix), want_tensor(g, n, a, b, t))
        BLK("attn_norm", d, 1, QT_F32);
        BLK("attn_q", d, q, type);
        BLK("attn_k", d, kv, type);
        BLK("attn_v", d, kv, type);
        BLK("attn_output", q, d, type);
        BLK("ffn_norm", d, 1, QT_F32);
        BLK("ffn_gate", d, ff, type);
        BLK("ffn_up", d, ff, type);
        BLK("ffn_down", ff, d, type);
        if (qwen3) {
            BLK("attn_q_norm", (uint64_t)s->head_dim, 1, QT_F32);
            BLK("attn_k_norm", (uint64_t)s->head_dim, 1, QT_F32);
        }
#undef BLK
    }
    /* norms are exactly 1 */
    const gguf_tensor *norm = gguf_find_tensor(g, "blk.0.attn_norm.weight");
    float first;
    memcpy(&first, norm->data, sizeof first);
    CHECK(first == 1.0f);
    uint32_t ft;
    CHECK(gguf_get_u32(g, "general.file_type", &ft) == 1 && ft == (type == QT_F32 ? 0u : (uint32_t)quantize_ftype(type)));

    /* the tokenizer loads and round-trips plain text */
    tokenizer *tok = tok_load(g);
    CHECK_MSG(tok != NULL, "%s: tokenizer: %s", shape, err_msg());
    if (tok) {
        CHECK_EQ_INT(tok_n_vocab(tok), s->n_vocab);
        int32_t *ids = NULL;
        size_t n = 0;
        const char *text = "hello world, abc";
        CHECK(tok_encode(tok, text, strlen(text), false, false, &ids, &n) == 0);
        char back[256] = {0}, piece[64];
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
            int k = tok_decode(tok, i ? ids[i - 1] : -1, ids[i], false, piece, sizeof piece);
            CHECK(k >= 0 && len + (size_t)k < sizeof back);
            if (k < 0 || len + (size_t)k >= sizeof back) break;
            memcpy(back + len, piece, (size_t)k);
            len += (size_t)k;
        }
        CHECK_EQ_STR(back, text);
        CHECK(n < strlen(text)); /* merges happened: fewer tokens than bytes */
        free(ids);
        tok_free(tok);
    }
    gguf_close(g);

    model *m = model_load(path);
    CHECK_MSG(m != NULL, "%s", err_msg());
    if (m) {
        CHECK(m->hp.n_embd == s->n_embd && m->hp.n_layer == s->n_layer && m->hp.n_head == s->n_head &&
              m->hp.n_head_kv == s->n_head_kv && m->hp.head_dim == s->head_dim &&
              m->hp.n_ff == s->n_ff && m->hp.n_vocab == s->n_vocab);
        CHECK(m->hp.arch == (qwen3 ? ARCH_QWEN3 : ARCH_LLAMA));
        CHECK(qwen3 == (m->layers[0].q_norm != NULL));
    }
    model_free(m);
}

TEST(bench_make_model_llama_shapes) { check_made_model("test-llama", QT_F32); }
TEST(bench_make_model_llama_q4_k) { check_made_model("test-llama", QT_Q4_K); }
TEST(bench_make_model_qwen3_shapes) { check_made_model("test-qwen3", QT_Q8_0); }

TEST(bench_make_model_deterministic) {
    const char *a = test_tmp_path("a.gguf"), *b = test_tmp_path("b.gguf"), *c = test_tmp_path("c.gguf");
    make("test-llama", QT_Q4_0, a, 1, 9);
    make("test-llama", QT_Q4_0, b, 3, 9);
    make("test-llama", QT_Q4_0, c, 3, 10);
    CHECK(test_same_file(a, b));
    CHECK(!test_same_file(a, c));
    const randmodel_shape *s = randmodel_find("test-llama");
    CHECK(randmodel_write(s, QT_Q5_K, a, 1, 1, NULL, NULL) == -1);
}

/* ---- the bench -------------------------------------------------------------------------- */

static int progress_calls;
static void count_progress(void *ud, const char *phase, int run, int reps) {
    (void)ud;
    CHECK(run >= 1 && run <= reps);
    CHECK(!strcmp(phase, "pp") || !strcmp(phase, "tg") || !strcmp(phase, "batch"));
    progress_calls++;
}

static bool finite_pos(double x) { return isfinite(x) && x > 0; }

TEST(bench_model_figures) {
    const char *path = test_tmp_path("bench.gguf");
    if (!make("test-llama", QT_Q8_0, path, 2, 3)) return;
    model *m = model_load(path);
    CHECK_MSG(m != NULL, "%s", err_msg());
    if (!m) return;
    bench_params p;
    bench_result r;
    bench_params_default(&p);
    p.n_threads = 2;
    p.n_pp = 70; /* two batches: 64 + 6 */
    p.n_tg = 8;
    p.batch = 3;
    p.reps = 2;
    p.progress = count_progress;
    progress_calls = 0;
    CHECK_MSG(bench_model(m, &p, &r) == 0, "%s", err_msg());
    CHECK(finite_pos(r.pp_tps) && finite_pos(r.tg_tps) && finite_pos(r.tg_batch_tps));
    CHECK_EQ_INT(progress_calls, 3 * p.reps);
    /* bytes per token: every matrix of the file, except that the embeddings give one row */
    uint64_t want = 0;
    for (size_t i = 0; i < gguf_n_tensors(m->file); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->file, i);
        if (t->n_dims == 2) want += t->nbytes;
    }
    const gguf_tensor *emb = gguf_find_tensor(m->file, "token_embd.weight");
    want -= emb->nbytes - qtype_row_size(emb->type, emb->ne[0]);
    CHECK_EQ_INT(r.bytes_per_token, want);
    CHECK_EQ_INT(bench_bytes_per_token(m), want);
    CHECK_EQ_INT(r.kv_bytes, model_seq_bytes(m, 70, MODEL_KV_F32) + 3 * model_seq_bytes(m, 8, MODEL_KV_F32));
    CHECK_EQ_STR(bench_weight_type(m), "Q8_0");
    /* no profile asked: none recorded */
    CHECK(r.pp_prof_tokens == 0 && r.tg_prof.seconds[PROF_QKV] == 0);

    p.profile = true;
    p.progress = NULL;
    p.reps = 1;
    CHECK(bench_model(m, &p, &r) == 0);
    double pp_sum = 0, tg_sum = 0;
    for (int op = 0; op < PROF_COUNT; op++) {
        pp_sum += r.pp_prof.seconds[op];
        tg_sum += r.tg_prof.seconds[op];
    }
    CHECK(pp_sum > 0 && tg_sum > 0 && r.pp_prof.seconds[PROF_FFN_GATE_UP] > 0);
    CHECK_EQ_INT(r.pp_prof_tokens, 70);
    CHECK_EQ_INT(r.tg_prof_tokens, 8);
    CHECK_EQ_INT(r.batch_prof_tokens, 8 * 3);
    CHECK(r.batch_prof.seconds[PROF_FFN_DOWN] > 0);
    /* profiled intervals lie inside the one timed run */
    CHECK(tg_sum <= 8 / r.tg_tps * (1 + 1e-9));

    p.batch = 0;
    CHECK(bench_model(m, &p, &r) == -1);
    model_free(m);
}

/* ---- a minimal JSON checker: the grammar of RFC 8259, values not kept ---- */

typedef struct jp {
    const char *p;
} jp;

static void j_ws(jp *j) {
    while (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r') j->p++;
}

static bool j_value(jp *j, int depth);

static bool j_string(jp *j) {
    if (*j->p++ != '"') return false;
    while (*j->p && *j->p != '"') {
        if ((unsigned char)*j->p < 0x20) return false;
        if (*j->p == '\\') {
            j->p++;
            if (*j->p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", j->p[i]) || !j->p[i]) return false;
                j->p += 4;
            } else if (!*j->p || !strchr("\"\\/bfnrt", *j->p)) return false;
        }
        j->p++;
    }
    return *j->p++ == '"';
}

static bool j_number(jp *j) {
    const char *s = j->p;
    if (*s == '-') s++;
    if (*s == '0') s++;
    else if (*s >= '1' && *s <= '9') while (*s >= '0' && *s <= '9') s++;
    else return false;
    if (*s == '.') {
        if (!(*++s >= '0' && *s <= '9')) return false;
        while (*s >= '0' && *s <= '9') s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!(*s >= '0' && *s <= '9')) return false;
        while (*s >= '0' && *s <= '9') s++;
    }
    j->p = s;
    return true;
}

static bool j_container(jp *j, char close, int depth) {
    j->p++;
    j_ws(j);
    if (*j->p == close) return j->p++, true;
    for (;;) {
        j_ws(j);
        if (close == '}') {
            if (!j_string(j)) return false;
            j_ws(j);
            if (*j->p++ != ':') return false;
        }
        if (!j_value(j, depth + 1)) return false;
        j_ws(j);
        if (*j->p == ',') j->p++;
        else return *j->p++ == close;
    }
}

static bool j_value(jp *j, int depth) {
    j_ws(j);
    if (depth > 32) return false;
    switch (*j->p) {
    case '{': return j_container(j, '}', depth);
    case '[': return j_container(j, ']', depth);
    case '"': return j_string(j);
    case 't': return strncmp(j->p, "true", 4) == 0 && (j->p += 4);
    case 'f': return strncmp(j->p, "false", 5) == 0 && (j->p += 5);
    case 'n': return strncmp(j->p, "null", 4) == 0 && (j->p += 4);
    default: return j_number(j);
    }
}

static bool json_valid(const char *s) {
    jp j = {s};
    if (*s != '{' || !j_value(&j, 0)) return false;
    j_ws(&j);
    return *j.p == 0;
}

/* The number after "key": in s; NAN when absent or not a number. */
static double json_num(const char *s, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(s, pat);
    if (!at) return NAN;
    char *end;
    double v = strtod(at + strlen(pat), &end);
    return end == at + strlen(pat) ? NAN : v;
}

TEST(bench_json_checker_rejects_bad_json) {
    CHECK(json_valid("{\"a\":[1,2.5e-3,{\"b\":null}],\"c\":\"x\\\"y\"}\n"));
    CHECK(!json_valid("{\"a\":1,}"));
    CHECK(!json_valid("{\"a\":nan}"));
    CHECK(!json_valid("{\"a\":1"));
    CHECK(!json_valid("{\"a\":01}"));
}

static char *report_json(const bench_report *r) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    bench_print_json(f, r);
    fclose(f);
    return buf;
}

TEST(bench_json_parses) {
    const char *path = test_tmp_path("json.gguf");
    if (!make("test-qwen3", QT_Q4_0, path, 2, 4)) return;
    model *m = model_load(path);
    CHECK_MSG(m != NULL, "%s", err_msg());
    if (!m) return;
    bench_params p;
    bench_result res;
    bench_params_default(&p);
    p.n_threads = 2;
    p.n_pp = 9;
    p.n_tg = 5;
    p.batch = 2;
    p.reps = 1;
    p.profile = true;
    CHECK(bench_model(m, &p, &res) == 0);
    /* a name with characters JSON must escape */
    bench_report r = {"dir/\"odd\"\\name\n.gguf", m->name, bench_weight_type(m), gguf_file_size(m->file),
                      &m->hp, &p, 2, &res, 17.5, false, bench_peak_rss()};
    char *js = report_json(&r);
    CHECK(js && json_valid(js));
    static const char *keys[] = {"pp_tps", "tg_tps", "tg_batch_tps", "batch", "bytes_per_token",
                                 "membw_gbs", "peak_rss_bytes", "tg_bw_fraction", "threads"};
    for (size_t i = 0; js && i < sizeof keys / sizeof keys[0]; i++) {
        double v = json_num(js, keys[i]);
        CHECK_MSG(finite_pos(v), "key %s: %g in %s", keys[i], v, js);
    }
    if (js) {
        CHECK_EQ_INT(json_num(js, "batch"), 2);
        CHECK_EQ_INT(json_num(js, "bytes_per_token"), (double)res.bytes_per_token);
        CHECK(fabs(json_num(js, "tg_bw_fraction") - res.tg_tps * (double)res.bytes_per_token / 17.5e9) <
              1e-5 * json_num(js, "tg_bw_fraction") + 1e-12);
        CHECK(strstr(js, "\"profile\":{") && strstr(js, "\"ffn_down\":"));
        CHECK(strstr(js, "\"batch\":{\"embed\":"));
        CHECK(strstr(js, "\"weight_type\":\"Q4_0\""));
        char kern[64];
        snprintf(kern, sizeof kern, "\"kernels\":\"%s\"", matmul_backend_name(matmul_backend()));
        CHECK_MSG(strstr(js, kern) != NULL, "no %s in %s", kern, js);
    }
    free(js);
    /* unknown bandwidth: null, still valid JSON */
    r.membw_gbs = 0;
    js = report_json(&r);
    CHECK(js && json_valid(js) && strstr(js, "\"membw_gbs\":null"));
    free(js);
    model_free(m);
}

TEST(bench_peak_rss_is_known) { CHECK(bench_peak_rss() > 0); }

TEST(bench_weights_stay_mapped) {
    const char *path = test_tmp_path("mem.gguf");
    if (access("/proc/self/statm", R_OK) != 0) SKIP("no /proc/self/statm");
    if (!make("test-mem", QT_F32, path, 2, 6)) return;
    /* Growth of the resident set while a model is loaded and has run: the mapped file (every
     * page touched), the KV cache and scratch. A copy of the 88 MB of weights would add 88 MB
     * more than the 64 MiB allowance. */
    uint64_t before = test_rss_now();
    model *m = model_load(path);
    CHECK_MSG(m != NULL, "%s", err_msg());
    if (!m) return;
    int32_t n_ctx = 64, ids[64];
    for (int i = 0; i < n_ctx; i++) ids[i] = (i * 97) % m->hp.n_vocab;
    model_ctx *c = model_ctx_new_threads(m, n_ctx, 2);
    float *logits = malloc((size_t)m->hp.n_vocab * sizeof *logits);
    CHECK(c && logits && model_forward(c, ids, n_ctx, 0, logits, false) == 0);
    uint64_t grown = test_rss_now() - before, file = gguf_file_size(m->file);
    uint64_t limit = file + model_seq_bytes(m, n_ctx, MODEL_KV_F32) + (64u << 20);
    CHECK_MSG(grown <= limit, "RSS grew by %llu bytes; file %llu, limit %llu",
              (unsigned long long)grown, (unsigned long long)file, (unsigned long long)limit);
    /* and the weights were really read: the file's pages are resident */
    CHECK_MSG(grown >= file / 2, "RSS grew by only %llu bytes for a %llu-byte file",
              (unsigned long long)grown, (unsigned long long)file);
    free(logits);
    model_ctx_free(c);
    model_free(m);
}
