/* veil quantize's logic: which tensors change, byte-exact agreement with llama.cpp's own
 * Q8_0/Q4_0 files, K-quant logits near the F32 model's, fallbacks, errors, determinism. */
#include "test.h"

#include "base/err.h"
#include "base/rng.h"
#include "model/forward.h"
#include "model/gguf.h"
#include "model/quantize.h"
#include "tensor/qtype.h"
#include "tensor/quant.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

TEST(quantize_ftype_codes) {
    /* llama.cpp's LLAMA_FTYPE_MOSTLY_* numbers */
    CHECK_EQ_INT(quantize_ftype(QT_F16), 1);
    CHECK_EQ_INT(quantize_ftype(QT_Q4_0), 2);
    CHECK_EQ_INT(quantize_ftype(QT_Q8_0), 7);
    CHECK_EQ_INT(quantize_ftype(QT_Q4_K), 14);
    CHECK_EQ_INT(quantize_ftype(QT_Q6_K), 18);
    CHECK_EQ_INT(quantize_ftype(QT_BF16), 32);
    CHECK_EQ_INT(quantize_ftype(QT_F32), -1);
    CHECK_EQ_INT(quantize_ftype(QT_Q5_K), -1);
}

TEST(quantize_choose_rules) {
    const char *why;
    uint64_t mat[2] = {512, 64}, k_odd[2] = {96, 64}, odd[2] = {40, 8}, vec[1] = {512};
    CHECK_EQ_INT(quantize_choose(QT_Q4_K, "blk.0.attn_q.weight", 2, mat, QT_F32, &why), QT_Q4_K);
    CHECK(why == NULL);
    CHECK_EQ_INT(quantize_choose(QT_Q4_K, "blk.0.attn_norm.weight", 1, vec, QT_F32, &why), QT_F32);
    CHECK(why != NULL);
    CHECK_EQ_INT(quantize_choose(QT_Q8_0, "blk.0.attn_q.bias", 2, mat, QT_F32, &why), QT_F32);
    CHECK(why != NULL);
    /* K-quants: rows of 96 fall back to Q8_0; Q4_0 takes them as they are */
    CHECK_EQ_INT(quantize_choose(QT_Q6_K, "w.weight", 2, k_odd, QT_F16, &why), QT_Q8_0);
    CHECK(why != NULL);
    CHECK_EQ_INT(quantize_choose(QT_Q4_0, "w.weight", 2, k_odd, QT_F16, &why), QT_Q4_0);
    CHECK(why == NULL);
    /* rows of 40 fit no block type: kept; F16 takes any row */
    CHECK_EQ_INT(quantize_choose(QT_Q4_K, "w.weight", 2, odd, QT_BF16, &why), QT_BF16);
    CHECK(why != NULL);
    CHECK_EQ_INT(quantize_choose(QT_Q8_0, "w.weight", 2, odd, QT_BF16, &why), QT_BF16);
    CHECK_EQ_INT(quantize_choose(QT_F16, "w.weight", 2, odd, QT_BF16, &why), QT_F16);
    CHECK(why == NULL);
    /* a source veil cannot decode stays as it is */
    CHECK_EQ_INT(quantize_choose(QT_Q8_0, "w.weight", 2, mat, QT_Q5_K, &why), QT_Q5_K);
    CHECK(why != NULL);
    CHECK_EQ_INT(quantize_choose(QT_Q5_K, "w.weight", 2, mat, QT_F32, &why), QT_F32);
    CHECK(why != NULL);
}

/* Every tensor that has the same type in our output and in llama.cpp's file is byte-identical;
 * returns how many were compared. */
static int compare_with_llamacpp(const char *ours_path, const char *theirs_path, uint32_t type) {
    gguf *ours = gguf_open(ours_path), *theirs = gguf_open(theirs_path);
    int compared = 0;
    CHECK_MSG(ours && theirs, "%s", err_msg());
    if (!ours || !theirs) goto out;
    CHECK_EQ_INT(gguf_n_tensors(ours), gguf_n_tensors(theirs));
    for (size_t i = 0; i < gguf_n_tensors(ours); i++) {
        const gguf_tensor *a = gguf_tensor_at(ours, i);
        char *name = gguf_str_dup(a->name);
        const gguf_tensor *b = gguf_find_tensor(theirs, name);
        CHECK_MSG(b != NULL, "%s missing in llama.cpp's file", name);
        if (b && a->type == b->type) {
            CHECK_EQ_INT(a->nbytes, b->nbytes);
            CHECK_MSG(a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0,
                      "%s (%s) differs from llama.cpp's", name, qtype_get(a->type)->name);
            if (a->type == type) compared++;
        }
        free(name);
    }
out:
    gguf_close(ours);
    gguf_close(theirs);
    return compared;
}

TEST(quantize_matches_llamacpp_q8_0_q4_0) {
    NEED_SHARED();
    char in[512], ref[512];
    snprintf(in, sizeof in, "%s", test_shared_path("reference/llamacpp/tiny-llama-F32.gguf"));
    static const struct { uint32_t type; const char *file; int ftype; int min_same; } cases[] = {
        /* llama.cpp's Q4_0 mix puts output.weight in Q6_K: 22 of the 23 matrices compare */
        {QT_Q8_0, "reference/llamacpp/tiny-llama-Q8_0.gguf", 7, 23},
        {QT_Q4_0, "reference/llamacpp/tiny-llama-Q4_0.gguf", 2, 22},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *out = test_tmp_path("tiny-q.gguf");
        snprintf(ref, sizeof ref, "%s", test_shared_path(cases[c].file));
        quantize_params p = {cases[c].type, 2, NULL, NULL};
        CHECK_MSG(quantize_file(in, out, &p) == 0, "%s", err_msg());
        int same = compare_with_llamacpp(out, ref, cases[c].type);
        CHECK_MSG(same >= cases[c].min_same, "%s: only %d tensors compared",
                  qtype_get(cases[c].type)->name, same);
        gguf *g = gguf_open(out), *src = gguf_open(in);
        uint32_t ft = 0, qv = 0;
        CHECK(g && src);
        if (g && src) {
            CHECK_EQ_INT(gguf_get_u32(g, "general.file_type", &ft), 1);
            CHECK_EQ_INT(ft, cases[c].ftype);
            CHECK_EQ_INT(gguf_get_u32(g, "general.quantization_version", &qv), 1);
            CHECK_EQ_INT(qv, 2);
            /* every input key is carried over */
            for (size_t k = 0; k < gguf_n_kv(src); k++) {
                char *key = gguf_str_dup(gguf_kv_at(src, k)->key);
                CHECK_MSG(gguf_find(g, key) != NULL, "key %s lost", key);
                free(key);
            }
        }
        gguf_close(g);
        gguf_close(src);
    }
}

/* Logits of 16 fixed tokens, all positions. */
static float *logits_of(const char *path, int32_t *n_vocab) {
    static const int32_t ids[16] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
    model *m = model_load(path);
    CHECK_MSG(m != NULL, "%s", err_msg());
    if (!m) return NULL;
    *n_vocab = m->hp.n_vocab;
    model_ctx *c = model_ctx_new_threads(m, 16, 2);
    float *out = malloc(16 * (size_t)m->hp.n_vocab * sizeof *out);
    if (!c || !out || model_forward(c, ids, 16, 0, out, true)) {
        CHECK_MSG(false, "forward: %s", err_msg());
        free(out);
        out = NULL;
    }
    model_ctx_free(c);
    model_free(m);
    return out;
}

TEST(quantize_k_quants_logits_near_f32) {
    NEED_SHARED();
    char in[512];
    snprintf(in, sizeof in, "%s", test_shared_path("reference/llamacpp/tiny-llama-F32.gguf"));
    int32_t nv = 0, nq = 0;
    float *ref = logits_of(in, &nv);
    /* Bounds: llama.cpp's own Q6_K / Q4_K_M files drift from F32 by max 0.37 / 1.51, mean
     * 0.08 / 0.26 on this model (shared README). Ours measured max 0.39 / 1.46-1.49, mean
     * 0.068-0.075 / 0.275 (Q8_0: 0.107-0.143 / 0.022-0.030), the lower figures with the scalar
     * kernels, the higher with activations quantized as the SIMD kernels do. A wrong scale or
     * nibble order gives errors of order 1. */
    static const struct { uint32_t type; double max, mean; } cases[] = {
        {QT_Q6_K, 0.5, 0.1}, {QT_Q4_K, 2.0, 0.35}, {QT_Q8_0, 0.2, 0.04},
    };
    for (size_t c = 0; ref && c < sizeof cases / sizeof cases[0]; c++) {
        const char *out = test_tmp_path("tiny-k.gguf");
        quantize_params p = {cases[c].type, 2, NULL, NULL};
        CHECK_MSG(quantize_file(in, out, &p) == 0, "%s", err_msg());
        float *q = logits_of(out, &nq);
        if (!q) continue;
        CHECK_EQ_INT(nq, nv);
        double max = 0, mean = 0;
        for (size_t i = 0; i < 16 * (size_t)nv; i++) {
            double e = fabs((double)q[i] - ref[i]);
            if (!(e <= max)) max = e;
            mean += e;
        }
        mean /= 16.0 * nv;
        CHECK_MSG(max <= cases[c].max && mean <= cases[c].mean, "%s: max %g mean %g",
                  qtype_get(cases[c].type)->name, max, mean);
        CHECK(mean > 0); /* it really was quantized */
        free(q);
    }
    free(ref);
}

/* A small input with one tensor of each kind: a K-quant-sized matrix (F16), a 96-wide matrix
 * (only 32-blocks fit), a 40-wide matrix (no block fits), a norm, a bias. */
static void write_mixed(const char *path, float poison) {
    static float big[256 * 4], mid[96 * 3], odd[40 * 2], norm[256], bias[8];
    static uint16_t big16[256 * 4];
    rng r = rng_stream(7, 0, 0);
    rng_normal_fill(&r, big, 256 * 4, 1);
    rng_normal_fill(&r, mid, 96 * 3, 1);
    rng_normal_fill(&r, odd, 40 * 2, 1);
    rng_normal_fill(&r, norm, 256, 1);
    rng_normal_fill(&r, bias, 8, 1);
    for (int i = 0; i < 256 * 4; i++) big16[i] = quant_f32_to_f16(big[i]);
    mid[100] = poison;
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "general.file_type", 1);
    uint64_t ne_big[2] = {256, 4}, ne_mid[2] = {96, 3}, ne_odd[2] = {40, 2}, ne_norm[1] = {256},
             ne_bias[1] = {8};
    CHECK(gguf_writer_add_tensor(w, "big.weight", QT_F16, 2, ne_big, big16) == 0);
    CHECK(gguf_writer_add_tensor(w, "mid.weight", QT_F32, 2, ne_mid, mid) == 0);
    CHECK(gguf_writer_add_tensor(w, "odd.weight", QT_F32, 2, ne_odd, odd) == 0);
    CHECK(gguf_writer_add_tensor(w, "norm.weight", QT_F32, 1, ne_norm, norm) == 0);
    CHECK(gguf_writer_add_tensor(w, "x.bias", QT_F32, 1, ne_bias, bias) == 0);
    CHECK_MSG(gguf_writer_write(w, path) == 0, "%s", err_msg());
    gguf_writer_free(w);
}

typedef struct seen {
    int n, fallbacks, kept;
    size_t last_done, count;
    uint64_t bytes_done, bytes_total;
} seen;

static void note(void *ud, const quantize_tensor *t) {
    seen *s = ud;
    s->n++;
    if (t->why && t->to != t->from) s->fallbacks++;
    if (t->why && t->to == t->from) s->kept++;
    CHECK_EQ_INT(t->done, s->last_done + 1);
    s->last_done = t->done;
    s->count = t->count;
    s->bytes_done = t->bytes_done;
    s->bytes_total = t->bytes_total;
}

TEST(quantize_fallbacks_and_kept_tensors) {
    const char *in = test_tmp_path("mixed.gguf"), *out = test_tmp_path("mixed-q4k.gguf");
    write_mixed(in, 0.5f);
    seen s = {0};
    quantize_params p = {QT_Q4_K, 3, note, &s};
    CHECK_MSG(quantize_file(in, out, &p) == 0, "%s", err_msg());
    CHECK_EQ_INT(s.n, 5);
    CHECK_EQ_INT(s.count, 5);
    CHECK_EQ_INT(s.fallbacks, 1);
    CHECK_EQ_INT(s.kept, 3);
    CHECK_EQ_INT(s.bytes_done, s.bytes_total);
    gguf *g = gguf_open(out), *src = gguf_open(in);
    CHECK_MSG(g && src, "%s", err_msg());
    if (!g || !src) goto out;
    static const struct { const char *name; uint32_t type; } want[] = {
        {"big.weight", QT_Q4_K}, {"mid.weight", QT_Q8_0}, {"odd.weight", QT_F32},
        {"norm.weight", QT_F32}, {"x.bias", QT_F32},
    };
    for (size_t i = 0; i < 5; i++) {
        const gguf_tensor *t = gguf_find_tensor(g, want[i].name), *o = gguf_find_tensor(src, want[i].name);
        CHECK_MSG(t && t->type == want[i].type, "%s has type %d", want[i].name, t ? (int)t->type : -1);
        if (t && o && t->type == o->type) /* kept tensors are copied byte for byte */
            CHECK(t->nbytes == o->nbytes && memcmp(t->data, o->data, t->nbytes) == 0);
    }
    /* the F16 matrix was decoded and encoded: the same bytes as encoding its decoded rows */
    const gguf_tensor *big = gguf_find_tensor(g, "big.weight"), *big_in = gguf_find_tensor(src, "big.weight");
    float row[256];
    unsigned char enc[144];
    quant_dequantize_row(QT_F16, (const unsigned char *)big_in->data + 512, row, 256);
    CHECK(quant_quantize_row(QT_Q4_K, row, enc, 256) == 0);
    CHECK(memcmp(enc, (const unsigned char *)big->data + 144, 144) == 0);
    uint32_t ft;
    CHECK(gguf_get_u32(g, "general.file_type", &ft) == 1 && ft == 14);
out:
    gguf_close(g);
    gguf_close(src);
}

TEST(quantize_bad_value_names_tensor_and_row) {
    const char *in = test_tmp_path("nan.gguf"), *out = test_tmp_path("nan-q8.gguf");
    write_mixed(in, NAN);
    unlink(out);
    quantize_params p = {QT_Q8_0, 2, NULL, NULL};
    CHECK(quantize_file(in, out, &p) == -1);
    CHECK_MSG(strstr(err_msg(), "mid.weight") && strstr(err_msg(), "row 1") && strstr(err_msg(), "NaN"),
              "message: %s", err_msg());
    CHECK(access(out, F_OK) != 0); /* nothing written under the final name */
    CHECK(quantize_file(test_tmp_path("missing.gguf"), out, &p) == -1);
    p.type = QT_Q5_K;
    CHECK(quantize_file(in, out, &p) == -1);
}

TEST(quantize_same_bytes_for_any_thread_count) {
    const char *in = test_tmp_path("mixed.gguf"), *a = test_tmp_path("t1.gguf"), *b = test_tmp_path("t3.gguf");
    write_mixed(in, 0.25f);
    quantize_params p1 = {QT_Q6_K, 1, NULL, NULL}, p3 = {QT_Q6_K, 3, NULL, NULL};
    CHECK(quantize_file(in, a, &p1) == 0);
    CHECK(quantize_file(in, b, &p3) == 0);
    CHECK(test_same_file(a, b));
}
