/* model_pack: which matrices are packed and when not at all, that the packed copy does not keep
 * the file's pages resident as well (the resident size grows by one copy, not two), and that a
 * packed model computes the unpacked one's logits bit for bit (the reference models are checked
 * the same way in test_forward.c). */
#include "test.h"

#include "base/err.h"
#include "model/forward.h"
#include "model/model_pack.h"
#include "model/randmodel.h"
#include "tensor/matmul.h"
#include "tensor/qtype.h"
#include "tensor/repack.h"

#include <stdlib.h>
#include <unistd.h>

#define NEED_AVX512()                                                                       \
    do {                                                                                    \
        if (!matmul_backend_supported(MATMUL_AVX512)) SKIP("no AVX-512 (F/BW/VL/DQ/VNNI) on this CPU"); \
    } while (0)

static model *made(const char *shape, uint32_t type, const char *file) {
    const char *path = test_tmp_path(file);
    if (randmodel_write(randmodel_find(shape), type, path, 2, 5, NULL, NULL) != 0) {
        CHECK_MSG(0, "make %s: %s", shape, err_msg());
        return NULL;
    }
    model *m = model_load(path);
    CHECK_MSG(m != NULL, "%s", err_msg());
    return m;
}

/* Prompt logits (all rows) then 3 greedy steps' logits of m, into out (n_vocab * 23 floats). */
static void run(const model *m, float *out) {
    int32_t ids[20];
    for (int i = 0; i < 20; i++) ids[i] = (i * 37 + 5) % m->hp.n_vocab;
    model_ctx *c = model_ctx_new_threads(m, 64, 2);
    CHECK(c && model_forward(c, ids, 20, 0, out, true) == 0);
    for (int k = 0; c && k < 3; k++) {
        const int32_t tok = (k * 11 + 3) % m->hp.n_vocab;
        CHECK(model_forward(c, &tok, 1, 20 + k, out + (size_t)(20 + k) * m->hp.n_vocab, false) == 0);
    }
    model_ctx_free(c);
}

TEST(model_pack_logits_equal_unpacked) {
    NEED_AVX512();
    const enum matmul_backend saved = matmul_backend();
    CHECK(matmul_set_backend(MATMUL_AVX512) == 0);
    static const struct { const char *shape; uint32_t type; } cases[] = {
        {"test-llama", QT_Q4_0}, {"test-qwen3", QT_Q8_0} /* tied: output packed, embeddings not */,
        {"test-llama", QT_Q4_K}, {"test-llama", QT_Q6_K}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        model *m = made(cases[ci].shape, cases[ci].type, "pack.gguf"), *v = NULL;
        if (!m) continue;
        CHECK(model_pack(m, 2, &v) == 0 && v != NULL);
        if (!v) {
            model_free(m);
            continue;
        }
        CHECK_EQ_INT((int)v->layers[1].w_down.type, (int)(REPACK_FLAG | cases[ci].type));
        CHECK_EQ_INT((int)v->output.type, (int)(REPACK_FLAG | cases[ci].type));
        CHECK_EQ_INT((int)v->tok_embd.type, (int)cases[ci].type);
        CHECK(v->layers[0].attn_norm == m->layers[0].attn_norm && m->layers[0].wq.type == cases[ci].type);
        const size_t n = (size_t)m->hp.n_vocab * 23;
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        run(m, a);
        run(v, b);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) bad += memcmp(&a[i], &b[i], sizeof *a) != 0;
        CHECK_MSG(bad == 0, "%s %s: %zu of %zu logits differ", cases[ci].shape,
                  qtype_get(cases[ci].type)->name, bad, n);
        free(a), free(b);
        model_free(v);
        model_free(m);
    }
    matmul_set_backend(saved);
}

TEST(model_pack_not_when_disabled_or_not_avx512) {
    model *m = made("test-llama", QT_Q8_0, "nopack.gguf"), *v = (model *)1;
    if (!m) return;
    const enum matmul_backend saved = matmul_backend();
    CHECK(matmul_set_backend(MATMUL_SCALAR) == 0);
    CHECK(model_pack(m, 2, &v) == 0 && v == NULL);
    if (matmul_backend_supported(MATMUL_AVX512)) {
        CHECK(matmul_set_backend(MATMUL_AVX512) == 0);
        setenv("VEIL_REPACK", "0", 1);
        v = (model *)1;
        CHECK(model_pack(m, 2, &v) == 0 && v == NULL);
        unsetenv("VEIL_REPACK");
    }
    matmul_set_backend(saved);
    model_free(m);
    /* nothing with a packed form (F32): nothing packed */
    NEED_AVX512();
    m = made("test-llama", QT_F32, "f32.gguf");
    CHECK(matmul_set_backend(MATMUL_AVX512) == 0);
    v = (model *)1;
    CHECK(m && model_pack(m, 2, &v) == 0 && v == NULL);
    matmul_set_backend(saved);
    model_free(m);
}

TEST(model_pack_drops_file_pages) {
    NEED_AVX512();
    if (access("/proc/self/statm", R_OK) != 0) SKIP("no /proc/self/statm");
    model *m = made("test-mem", QT_Q8_0, "mem8.gguf"), *v = NULL;
    if (!m) return;
    const enum matmul_backend saved = matmul_backend();
    CHECK(matmul_set_backend(MATMUL_AVX512) == 0);
    const uint64_t before = test_rss_now();
    CHECK(model_pack(m, 1, &v) == 0 && v != NULL); /* on this thread (the others: a pool of 2) */
    const uint64_t grown = test_rss_now() - before;
    /* one copy (the packed one, huge pages rounded) and at most a slice of the file in flight;
     * keeping the file's pages would double it */
    CHECK(v && v->pack_bytes > (16u << 20));
    if (v)
        CHECK_MSG(grown <= v->pack_bytes + (8u << 20), "RSS grew by %llu bytes for %zu packed bytes",
                  (unsigned long long)grown, v->pack_bytes);
    matmul_set_backend(saved);
    model_free(v);
    model_free(m);
}
