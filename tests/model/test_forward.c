/* The forward pass against llama.cpp's reference logits (../shared/reference/llamacpp): every
 * model and tensor type, tolerances as that folder's README gives them; on AVX-512 CPUs also the
 * AVX-512 kernels with packed weights, bit for bit against AVX2. The forward_cuda_*
 * tests run the same checks on the GPU (--device cuda) and skip when there is none. */
#include "test.h"

#include "base/err.h"
#include "cuda/cuda_testutil.h"
#include "engine/device.h"
#include "model/forward.h"
#include "model/randmodel.h"
#include "tensor/matmul.h"
#include "tensor/repack.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Where the helpers below run the model: NULL = the CPU through forward.c directly; "cuda" in
 * the forward_cuda_* tests (set for one test at a time). */
static const char *test_device;

/* The device for m (NULL on the CPU); a failure to open one fails the test. */
static device *open_device(const model *m) {
    if (!test_device) return NULL;
    device *d = device_open(test_device, m, 0);
    CHECK_MSG(d != NULL, "device %s: %s", test_device, err_msg());
    return d;
}

/* A single-sequence context on d, or on the CPU with n_threads when d is NULL. */
static model_ctx *ctx_on(device *d, const model *m, int32_t n_ctx, int n_threads) {
    return d ? device_ctx_new(d, n_ctx) : model_ctx_new_threads(m, n_ctx, n_threads);
}

typedef struct ref_file {
    int32_t n_vocab, n_prompt, n_greedy;
    int32_t prompt[64], greedy[64];
    float margin[64];  /* top1 - top2 of each greedy step */
    float *logits;     /* n_prompt x n_vocab */
} ref_file;

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static int parse_ints(const char *p, int32_t *out, int max) {
    int n = 0;
    char *end;
    while (n < max) {
        long v = strtol(p, &end, 10);
        if (end == p) break;
        out[n++] = (int32_t)v;
        p = end;
    }
    return n;
}

static bool ref_load(const char *path, ref_file *r) {
    char *text = read_text(path);
    memset(r, 0, sizeof *r);
    if (!text) return false;
    int pos_rows = 0, steps = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (sscanf(line, "n_vocab: %d", &r->n_vocab) == 1) continue;
        if (strncmp(line, "prompt: ", 8) == 0) r->n_prompt = parse_ints(line + 8, r->prompt, 64);
        else if (strncmp(line, "greedy: ", 8) == 0) r->n_greedy = parse_ints(line + 8, r->greedy, 64);
        else if (strncmp(line, "pos ", 4) == 0) {
            if (!r->logits) r->logits = calloc((size_t)r->n_prompt * r->n_vocab, sizeof(float));
            char *p = strchr(line, ':') + 1;
            for (int i = 0; i < r->n_vocab; i++) r->logits[(size_t)pos_rows * r->n_vocab + i] = strtof(p, &p);
            pos_rows++;
        } else if (strncmp(line, "step ", 5) == 0 && steps < 64) {
            /* "step k: id:logit id:logit ..." */
            char *p = strchr(line, ':') + 1;
            float top[2] = {0, 0};
            for (int j = 0; j < 2; j++) {
                p = strchr(p, ':');
                if (!p) break;
                top[j] = strtof(p + 1, &p);
            }
            r->margin[steps++] = top[0] - top[1];
        }
    }
    free(text);
    return r->n_vocab > 0 && r->n_prompt > 0 && pos_rows == r->n_prompt && r->n_greedy > 0;
}

typedef struct diff { double max, mean; } diff;

static diff compare(const float *a, const float *b, size_t n) {
    diff d = {0, 0};
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > d.max || isnan(e)) d.max = isnan(e) ? INFINITY : e;
        d.mean += e;
    }
    d.mean /= (double)n;
    return d;
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Runs the prompt in one batch (all logits) then greedy decoding token by token. */
static bool run_model(const char *path, const ref_file *r, float **logits, int32_t *greedy) {
    model *m = model_load(path);
    CHECK_MSG(m != NULL, "%s: %s", path, m ? "" : err_msg());
    if (!m) return false;
    CHECK_EQ_INT(m->hp.n_vocab, r->n_vocab);
    device *dev = open_device(m);
    if (dev && !device_is_gpu(dev)) {
        /* a CPU device on AVX-512 packs what has a packed form */
        const model_matrix *wq = &m->layers[0].wq;
        CHECK_EQ_INT((int)device_model(dev)->layers[0].wq.type, (int)(repack_type_for(wq->type, wq->n_in, wq->n_out)
                                                                    ?: wq->type));
    }
    model_ctx *c = ctx_on(dev, m, 0, 0);
    *logits = malloc((size_t)r->n_prompt * r->n_vocab * sizeof(float));
    float *last = malloc((size_t)r->n_vocab * sizeof(float));
    bool ok = c && *logits && last && m->hp.n_vocab == r->n_vocab &&
              model_forward(c, r->prompt, r->n_prompt, 0, *logits, true) == 0;
    if (ok) {
        int32_t tok = argmax(*logits + (size_t)(r->n_prompt - 1) * r->n_vocab, r->n_vocab);
        for (int32_t k = 0; k < r->n_greedy && ok; k++) {
            greedy[k] = tok;
            ok = model_forward(c, &tok, 1, r->n_prompt + k, last, false) == 0;
            tok = argmax(last, r->n_vocab);
        }
    }
    CHECK_MSG(ok, "%s: forward failed: %s", path, err_msg());
    free(last);
    model_ctx_free(c);
    device_close(dev);
    model_free(m);
    return ok;
}

/* Greedy ids must agree at every step whose reference margin (top1 - top2) exceeds twice the
 * logit error bound `tol`, up to the first that does not: there a near-tie may legitimately
 * flip, and the sequences diverge after it. */
static void check_greedy(const char *name, const ref_file *r, const int32_t *got, double tol) {
    for (int32_t k = 0; k < r->n_greedy && r->margin[k] > 2 * tol; k++) {
        CHECK_MSG(got[k] == r->greedy[k], "%s: greedy step %d: got %d, reference %d", name, k,
                  got[k], r->greedy[k]);
        if (got[k] != r->greedy[k]) break;
    }
}

/* Runs the model on one matmul backend (the process-wide setting, restored afterwards). */
static bool run_on(enum matmul_backend b, const char *path, const ref_file *r, float **logits,
                   int32_t *greedy) {
    const enum matmul_backend saved = matmul_backend();
    CHECK(matmul_set_backend(b) == 0);
    bool ok = run_model(path, r, logits, greedy);
    matmul_set_backend(saved);
    return ok;
}

/* Against llama.cpp's own output (which quantizes activations): within twice what activation
 * quantization costs (the README's rule); greedy ids while margins exceed the deviation seen. */
static void check_vs_llamacpp(const char *name, const char *backend, const float *logits,
                              const int32_t *greedy, const ref_file *exact, const ref_file *deq) {
    size_t n = (size_t)exact->n_prompt * exact->n_vocab;
    diff aq = compare(exact->logits, deq->logits, n);
    diff e = compare(logits, exact->logits, n);
    CHECK_MSG(e.max <= 2 * aq.max + 1e-4 && e.mean <= 2 * aq.mean + 1e-5,
              "%s (%s): vs llama.cpp max %g mean %g, act-quant bound max %g mean %g", name,
              backend, e.max, e.mean, 2 * aq.max, 2 * aq.mean);
    check_greedy(name, exact, greedy, e.max + 1e-4);
}

/* The tight test: same (dequantized) weights, F32 math; the README expects ~1e-5. */
static void check_vs_dequantized(const char *name, const float *logits, const int32_t *greedy,
                                 const ref_file *deq) {
    diff d = compare(logits, deq->logits, (size_t)deq->n_prompt * deq->n_vocab);
    CHECK_MSG(d.max <= 2e-4, "%s: max |logit - dequantized reference| = %g (limit 2e-4)", name, d.max);
    check_greedy(name, deq, greedy, 2e-4);
}

/* The AVX-512 kernels through a CPU device, which packs Q4_0 and Q8_0 matrices (model_pack.h):
 * the AVX2 kernels' logits and greedy ids (want, want_greedy) bit for bit. */
static void check_avx512_packed(const char *name, const char *path, const ref_file *r,
                                const float *want, const int32_t *want_greedy) {
    if (!matmul_backend_supported(MATMUL_AVX512)) {
        printf("    (no AVX-512 on this CPU: AVX-512 kernels and packed weights not checked)\n");
        return;
    }
    float *logits = NULL;
    int32_t greedy[64];
    test_device = "cpu";
    if (run_on(MATMUL_AVX512, path, r, &logits, greedy)) {
        const size_t n = (size_t)r->n_prompt * r->n_vocab;
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) bad += memcmp(&logits[i], &want[i], sizeof *want) != 0;
        CHECK_MSG(bad == 0, "%s: %zu of %zu logits differ between avx512 (packed) and avx2", name, bad, n);
        CHECK_MSG(memcmp(greedy, want_greedy, (size_t)r->n_greedy * sizeof *greedy) == 0,
                  "%s: greedy ids differ between avx512 (packed) and avx2", name);
    }
    test_device = NULL;
    free(logits);
}

/* Scalar kernels: the tight test, and llama.cpp's own file for quantized types. AVX2 kernels
 * quantize activations for the block types as llama.cpp does, so they get llama.cpp's file;
 * for F32 and F16 weights they keep F32 activations and get the tight test as well. */
static void check_model(const char *base, const char *type) {
    char rel[256], name[128];
    ref_file exact, deq;
    bool is_f32 = strcmp(type, "F32") == 0, float_acts = is_f32 || strcmp(type, "F16") == 0;
    snprintf(name, sizeof name, "%s-%s", base, type);
    snprintf(rel, sizeof rel, "reference/llamacpp/%s%s.ref.txt", name, is_f32 ? "" : ".deq");
    CHECK_MSG(ref_load(test_shared_path(rel), &deq), "cannot parse %s", rel);
    snprintf(rel, sizeof rel, "reference/llamacpp/%s.ref.txt", name);
    CHECK_MSG(ref_load(test_shared_path(rel), &exact), "cannot parse %s", rel);
    snprintf(rel, sizeof rel, "reference/llamacpp/%s.gguf", name);
    const char *path = test_shared_path(rel);
    float *logits = NULL;
    int32_t greedy[64];
    if (test_device) {
        /* The GPU: the 16-token prompt goes through cuBLAS, with F16 activations for F16 and
         * block-type weights, as llama.cpp's own GPU path rounds them: llama.cpp's file. F32
         * weights go through SGEMM and attention keeps F32 precision: the tight test. Decode
         * (greedy) runs the matrix-vector kernels, weights decoded exactly. */
        if (deq.logits && exact.logits && run_model(path, &deq, &logits, greedy)) {
            if (is_f32) check_vs_dequantized(name, logits, greedy, &deq);
            else check_vs_llamacpp(name, test_device, logits, greedy, &exact, &deq);
        }
        free(logits);
        free(exact.logits);
        free(deq.logits);
        return;
    }
    if (deq.logits && exact.logits && run_on(MATMUL_SCALAR, path, &deq, &logits, greedy)) {
        check_vs_dequantized(name, logits, greedy, &deq);
        if (!is_f32) check_vs_llamacpp(name, "scalar", logits, greedy, &exact, &deq);
    }
    free(logits);
    logits = NULL;
    if (!matmul_backend_supported(MATMUL_AVX2)) {
        printf("    (no AVX2 on this CPU: AVX2 kernels not checked)\n");
    } else if (deq.logits && exact.logits && run_on(MATMUL_AVX2, path, &deq, &logits, greedy)) {
        if (float_acts) check_vs_dequantized(name, logits, greedy, &deq);
        if (!is_f32) check_vs_llamacpp(name, "avx2", logits, greedy, &exact, &deq);
        check_avx512_packed(name, path, &deq, logits, greedy);
    }
    free(logits);
    free(exact.logits);
    free(deq.logits);
}

#define MODEL_TEST(base, type, id)       \
    TEST(forward_##id) {                 \
        NEED_SHARED();                   \
        check_model(base, type);         \
    }                                    \
    TEST(forward_cuda_##id) {            \
        NEED_SHARED();                   \
        NEED_GPU();                      \
        test_device = "cuda";            \
        check_model(base, type);         \
        test_device = NULL;              \
    }

MODEL_TEST("tiny-llama", "F32", llama_f32)
MODEL_TEST("tiny-llama", "F16", llama_f16)
MODEL_TEST("tiny-llama", "Q8_0", llama_q8_0)
MODEL_TEST("tiny-llama", "Q4_0", llama_q4_0)
MODEL_TEST("tiny-llama", "Q4_K_M", llama_q4_k_m)
MODEL_TEST("tiny-llama", "Q6_K", llama_q6_k)
MODEL_TEST("tiny-qwen2", "F32", qwen2_f32)
MODEL_TEST("tiny-qwen2", "F16", qwen2_f16)
MODEL_TEST("tiny-qwen2", "Q8_0", qwen2_q8_0)
MODEL_TEST("tiny-qwen2", "Q4_0", qwen2_q4_0)
MODEL_TEST("tiny-qwen2", "Q4_K_M", qwen2_q4_k_m)
MODEL_TEST("tiny-qwen2", "Q6_K", qwen2_q6_k)
MODEL_TEST("tiny-qwen3", "F32", qwen3_f32)
MODEL_TEST("tiny-qwen3", "F16", qwen3_f16)
MODEL_TEST("tiny-qwen3", "Q8_0", qwen3_q8_0)
MODEL_TEST("tiny-qwen3", "Q4_0", qwen3_q4_0)
MODEL_TEST("tiny-qwen3", "Q4_K_M", qwen3_q4_k_m)
MODEL_TEST("tiny-qwen3", "Q6_K", qwen3_q6_k)

/* The GPU twin of a test below: the same body with the helpers on --device cuda. */
#define GPU_TWIN(name, body)             \
    TEST(name) {                         \
        NEED_SHARED();                   \
        NEED_GPU();                      \
        test_device = "cuda";            \
        body;                            \
        test_device = NULL;              \
    }

static void stories260k_llamacpp(void) {
    ref_file r;
    float *logits = NULL;
    int32_t greedy[64];
    CHECK(ref_load(test_shared_path("reference/llamacpp/stories260K.ref.txt"), &r));
    if (r.logits && run_model(test_shared_path("models/stories260K.gguf"), &r, &logits, greedy)) {
        diff d = compare(logits, r.logits, (size_t)r.n_prompt * r.n_vocab);
        CHECK_MSG(d.max <= 2e-4, "stories260K: max diff %g", d.max);
        check_greedy("stories260K", &r, greedy, 2e-4);
    }
    free(logits);
    free(r.logits);
}

TEST(forward_stories260k_llamacpp) {
    NEED_SHARED();
    stories260k_llamacpp();
}
GPU_TWIN(forward_cuda_stories260k_llamacpp, stories260k_llamacpp())

/* llama2.c's own logits (reference/stories260K/logits.txt, %.6f), fed token by token. */
static void stories260k_llama2c_logits(void) {
    char *text = read_text(test_shared_path("reference/stories260K/logits.txt"));
    model *m = model_load(test_shared_path("models/stories260K.gguf"));
    device *dev = NULL;
    CHECK(text && m);
    if (!text || !m) goto out;
    dev = open_device(m);
    model_ctx *c = ctx_on(dev, m, 0, 0);
    float got[512], want[512];
    int rows = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        int pos, tok;
        char *p = strstr(line, "logits:");
        if (sscanf(line, "pos %d input_token %d", &pos, &tok) != 2 || !p) continue;
        p += 7;
        for (int i = 0; i < 512; i++) want[i] = strtof(p, &p);
        CHECK(model_forward(c, &tok, 1, pos, got, false) == 0);
        diff d = compare(got, want, 512);
        CHECK_MSG(d.max <= 1e-4, "pos %d: max diff %g", pos, d.max);
        rows++;
    }
    CHECK_EQ_INT(rows, 5);
    model_ctx_free(c);
out:
    device_close(dev);
    model_free(m);
    free(text);
}

TEST(forward_stories260k_llama2c_logits) {
    NEED_SHARED();
    stories260k_llama2c_logits();
}
GPU_TWIN(forward_cuda_stories260k_llama2c_logits, stories260k_llama2c_logits())

static void batch_vs_token_by_token(const char *backend) {
    model *m = model_load(test_shared_path("reference/llamacpp/tiny-qwen3-Q4_0.gguf"));
    CHECK(m != NULL);
    if (!m) return;
    /* 100 tokens: crosses the 64-token chunk boundary */
    int32_t ids[100];
    for (int i = 0; i < 100; i++) ids[i] = (i * 37 + 11) % m->hp.n_vocab;
    int32_t V = m->hp.n_vocab;
    float *all = malloc(100 * (size_t)V * sizeof(float)), *one = malloc((size_t)V * sizeof(float));
    device *dev = open_device(m);
    model_ctx *a = ctx_on(dev, m, 128, 0), *b = ctx_on(dev, m, 128, 0);
    CHECK(model_forward(a, ids, 100, 0, all, true) == 0);
    double worst = 0;
    for (int i = 0; i < 100; i++) {
        CHECK(model_forward(b, &ids[i], 1, i, one, false) == 0);
        diff d = compare(one, all + (size_t)i * V, (size_t)V);
        if (d.max > worst) worst = d.max;
    }
    /* On the CPU a token's logits do not depend on its batch (matmul.h, attention.h): equal bit
     * for bit. On the GPU the 100-token batch goes through cuBLAS with F16 activations while
     * single tokens keep F32 ones: F16 rounding (2^-11 relative) separates them, by far less
     * than a wrong kernel would (units). */
    const double tol = dev ? 0.05 : 0;
    CHECK_MSG(worst <= tol, "%s: batched vs one-by-one: max diff %g", backend, worst);
    /* the context bound is enforced */
    CHECK(model_forward(b, ids, 29, 100, one, false) == -1);
    CHECK(strstr(err_msg(), "context full") != NULL);
    int32_t bad = V;
    CHECK(model_forward(a, &bad, 1, 100, one, false) == -1);
    model_ctx_free(a);
    model_ctx_free(b);
    device_close(dev);
    free(all);
    free(one);
    model_free(m);
}

/* Runs fn once on each matmul backend this CPU has (the setting restored afterwards). */
static void on_each_backend(void (*fn)(const char *backend)) {
    const enum matmul_backend saved = matmul_backend();
    for (int b = 0; b <= MATMUL_AVX512; b++)
        if (matmul_backend_supported((enum matmul_backend)b) &&
            matmul_set_backend((enum matmul_backend)b) == 0)
            fn(matmul_backend_name((enum matmul_backend)b));
    matmul_set_backend(saved);
}

TEST(forward_batch_equals_token_by_token) {
    NEED_SHARED();
    on_each_backend(batch_vs_token_by_token);
}
GPU_TWIN(forward_cuda_batch_equals_token_by_token, batch_vs_token_by_token("cuda"))

/* Two sequences advanced in one batch, interleaved, give what each gives alone. */
static void multi_sequence(const char *backend) {
    model *m = model_load(test_shared_path("reference/llamacpp/tiny-qwen2-Q8_0.gguf"));
    CHECK(m != NULL);
    if (!m) return;
    int32_t V = m->hp.n_vocab, a[20], b[13];
    for (int i = 0; i < 20; i++) a[i] = (i * 53 + 7) % V;
    for (int i = 0; i < 13; i++) b[i] = (i * 29 + 100) % V;
    float *alone_a = malloc(20 * (size_t)V * sizeof(float)), *alone_b = malloc(13 * (size_t)V * sizeof(float));
    float *mixed = malloc(33 * (size_t)V * sizeof(float));
    device *dev = open_device(m);
    model_ctx *ca = ctx_on(dev, m, 64, 2), *cb = ctx_on(dev, m, 64, 1);
    CHECK(model_forward(ca, a, 20, 0, alone_a, true) == 0);
    CHECK(model_forward(cb, b, 13, 0, alone_b, true) == 0);
    model_seq *sa = dev ? device_seq_new(dev, 64, MODEL_KV_F32) : model_seq_new(m, 64, MODEL_KV_F32);
    model_seq *sb = dev ? device_seq_new(dev, 64, MODEL_KV_F32) : model_seq_new(m, 64, MODEL_KV_F32);
    model_runner *r = dev ? device_runner_new(dev, 33) : model_runner_new(m, 33, 2);
    model_token batch[33];
    int n = 0, ia = 0, ib = 0;
    /* first 5 of a alone, then the rest of both interleaved in a second batch */
    for (; ia < 5; ia++, n++) batch[n] = (model_token){sa, a[ia], ia, mixed + (size_t)n * V};
    CHECK(model_runner_forward(r, batch, n) == 0);
    int first = n;
    n = 0;
    while (ia < 20 || ib < 13) {
        if (ib < 13) { batch[n] = (model_token){sb, b[ib], ib, mixed + (size_t)(first + n) * V}; ib++; n++; }
        if (ia < 20) { batch[n] = (model_token){sa, a[ia], ia, mixed + (size_t)(first + n) * V}; ia++; n++; }
    }
    CHECK(model_runner_forward(r, batch, n) == 0);
    double worst = 0;
    for (int i = 0; i < first + n; i++) {
        const model_token *t = i < first ? NULL : &batch[i - first];
        const float *want = i < first ? alone_a + (size_t)i * V
                            : t->seq == sa ? alone_a + (size_t)t->pos * V : alone_b + (size_t)t->pos * V;
        diff d = compare(mixed + (size_t)i * V, want, (size_t)V);
        if (d.max > worst) worst = d.max;
    }
    /* On the GPU batches of more than 8 tokens take cuBLAS with F16 activations, fewer stay in
     * F32: rounding separates them (see batch_vs_token_by_token), a mixed-up sequence would
     * be off by units. */
    const double tol = dev ? 0.05 : 1e-5;
    CHECK_MSG(worst <= tol, "%s: mixed batch vs alone: max diff %g", backend, worst);
    model_runner_free(r);
    model_seq_free(sa);
    model_seq_free(sb);
    model_ctx_free(ca);
    model_ctx_free(cb);
    device_close(dev);
    free(alone_a);
    free(alone_b);
    free(mixed);
    model_free(m);
}

/* The GPU's attention against the CPU's, all in F32 (F32 weights: SGEMM; attention keeps F32
 * precision): a 150-token prompt in two chunks (the second starts mid-block, so the tiled
 * kernel sees several query and key tiles, partial ones and an earlier chunk's keys), then
 * decode steps whose positions are split over many blocks. */
static void gpu_attention_vs_cpu(const char *path) {
    model *m = model_load(path);
    CHECK_MSG(m != NULL, "%s: %s", path, err_msg());
    if (!m) return;
    enum { N = 150, CUT = 70, STEPS = 3 };
    const int32_t V = m->hp.n_vocab, hd = m->hp.head_dim;
    int32_t ids[N + STEPS];
    for (int i = 0; i < N + STEPS; i++) ids[i] = (i * 71 + 5) % V;
    float *got = malloc((size_t)N * V * sizeof(float)), *want = malloc((size_t)N * V * sizeof(float));
    device *dev = device_open("cuda", m, 0);
    CHECK_MSG(dev != NULL, "%s", err_msg());
    model_ctx *g = dev ? device_ctx_new(dev, 256) : NULL, *c = model_ctx_new_threads(m, 256, 0);
    if (!g || !c || !got || !want) goto out;
    CHECK(model_forward(g, ids, CUT, 0, got, true) == 0);
    CHECK(model_forward(g, ids + CUT, N - CUT, CUT, got + (size_t)CUT * V, true) == 0);
    CHECK(model_forward(c, ids, CUT, 0, want, true) == 0);
    CHECK(model_forward(c, ids + CUT, N - CUT, CUT, want + (size_t)CUT * V, true) == 0);
    diff d = compare(got, want, (size_t)N * V);
    CHECK_MSG(d.max <= 1e-3, "head_dim %d: prompt: GPU vs CPU max diff %g", hd, d.max);
    for (int k = 0; k < STEPS; k++) {
        CHECK(model_forward(g, ids + N + k, 1, N + k, got, false) == 0);
        CHECK(model_forward(c, ids + N + k, 1, N + k, want, false) == 0);
        d = compare(got, want, (size_t)V);
        CHECK_MSG(d.max <= 1e-3, "head_dim %d: decode at %d: GPU vs CPU max diff %g", hd, N + k, d.max);
    }
out:
    model_ctx_free(g);
    model_ctx_free(c);
    device_close(dev);
    free(got);
    free(want);
    model_free(m);
}

/* Every head size the tiled attention kernel is built for: 128 (tiny-qwen3), 32 (tiny-llama)
 * and 64 (a random model of the test-llama shape, tinyllama-1.1b's head size). */
TEST(forward_cuda_attention_equals_cpu) {
    NEED_SHARED();
    NEED_GPU();
    gpu_attention_vs_cpu(test_shared_path("reference/llamacpp/tiny-qwen3-F32.gguf"));
    gpu_attention_vs_cpu(test_shared_path("reference/llamacpp/tiny-llama-F32.gguf"));
    const char *path = test_tmp_path("test-llama-F32.gguf");
    CHECK_MSG(randmodel_write(randmodel_find("test-llama"), QT_F32, path, 2, 7, NULL, NULL) == 0, "%s", err_msg());
    gpu_attention_vs_cpu(path);
}

TEST(forward_multi_sequence_batch) {
    NEED_SHARED();
    on_each_backend(multi_sequence);
}
GPU_TWIN(forward_cuda_multi_sequence_batch, multi_sequence("cuda"))

/* BF16 (no llama.cpp reference file): the F32 model converted by `veil quantize` must stay
 * within bf16's rounding of the F32 reference (F16 stays within 0.014 here; bf16 has 3 fewer
 * mantissa bits), while a wrong decoding would be off by whole units. */
#include "model/quantize.h"

static void bf16_close_to_f32(void) {
    char out[512];
    ref_file r;
    float *logits = NULL;
    int32_t greedy[64];
    snprintf(out, sizeof out, "%s/tiny-qwen3-BF16.gguf", test_tmpdir());
    quantize_params qp = {.type = QT_BF16, .n_threads = 2};
    CHECK_MSG(quantize_file(test_shared_path("reference/llamacpp/tiny-qwen3-F32.gguf"), out, &qp) == 0,
              "%s", err_msg());
    CHECK(ref_load(test_shared_path("reference/llamacpp/tiny-qwen3-F32.ref.txt"), &r));
    if (r.logits && run_model(out, &r, &logits, greedy)) {
        diff d = compare(logits, r.logits, (size_t)r.n_prompt * r.n_vocab);
        CHECK_MSG(d.max <= 0.25 && d.mean <= 0.03, "bf16 vs f32: max %g mean %g", d.max, d.mean);
        CHECK_MSG(d.max > 0, "bf16 gave exactly the f32 logits: not converted?");
        check_greedy("tiny-qwen3-BF16", &r, greedy, 0.25);
    }
    free(logits);
    free(r.logits);
}

TEST(forward_bf16_close_to_f32) {
    NEED_SHARED();
    bf16_close_to_f32();
}
GPU_TWIN(forward_cuda_bf16_close_to_f32, bf16_close_to_f32())
