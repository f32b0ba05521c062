/* Our formats against files llama.cpp wrote (../shared/reference/llamacpp): its F16, Q8_0 and
 * Q4_0 files were made from the F32 file by ggml's reference quantizers, so quantizing the
 * same F32 tensors here must give the very same bytes; its Q4_K and Q6_K tensors, decoded
 * here, must sit as close to the F32 originals as those formats allow (a wrong nibble or scale
 * order is off by the size of the weights), and our own K-quant search must fit them about as
 * well as llama.cpp's. */
#include "test.h"

#include "base/err.h"
#include "model/gguf.h"
#include "tensor/qtype.h"
#include "tensor/quant.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct error_sums {
    double ours, theirs, power; /* squared errors and the originals' sum of squares */
} error_sums;

/* The F16 file was rounded to half from the generator's doubles, the F32 file to float from the
 * same doubles; where a float lands exactly halfway between two halves, the two roundings may
 * legitimately pick different neighbours. Anything else is a mismatch. */
static bool f16_agrees(float x, uint16_t theirs) {
    const uint16_t mine = quant_f32_to_f16(x);
    if (mine == theirs) return true;
    const float a = quant_f16_to_f32(mine), b = quant_f16_to_f32(theirs);
    return x - a == b - x;
}

static double sq_diff(float a, float b) { return ((double)a - b) * ((double)a - b); }

/* Checks one tensor of the quantized file against its F32 original; accumulates K-quant
 * errors into sums[type]. */
static void check_tensor(const gguf_tensor *q, const gguf_tensor *f, error_sums *sums) {
    const int64_t n_in = (int64_t)q->ne[0];
    const size_t row_bytes = qtype_row_size(q->type, q->ne[0]);
    const int64_t rows = (int64_t)(q->nbytes / row_bytes);
    uint8_t *mine = malloc(row_bytes);
    float *dec = malloc(sizeof(float) * (size_t)n_in);
    float *dec_mine = malloc(sizeof(float) * (size_t)n_in);
    int bad_rows = 0;
    CHECK(mine && dec && dec_mine);
    for (int64_t r = 0; mine && dec && dec_mine && r < rows; r++) {
        const float *x = (const float *)f->data + r * n_in;
        const uint8_t *theirs = (const uint8_t *)q->data + (size_t)r * row_bytes;
        CHECK_EQ_INT(quant_quantize_row(q->type, x, mine, n_in), 0);
        if (q->type == QT_F16) {
            bool ok = true;
            for (int64_t i = 0; i < n_in; i++)
                ok &= f16_agrees(x[i], (uint16_t)(theirs[2 * i] | theirs[2 * i + 1] << 8));
            bad_rows += !ok;
        } else if (q->type == QT_Q8_0 || q->type == QT_Q4_0) {
            bad_rows += memcmp(mine, theirs, row_bytes) != 0;
        } else {
            quant_dequantize_row(q->type, theirs, dec, n_in);
            quant_dequantize_row(q->type, mine, dec_mine, n_in);
            for (int64_t i = 0; i < n_in; i++) {
                sums[q->type].theirs += sq_diff(dec[i], x[i]);
                sums[q->type].ours += sq_diff(dec_mine[i], x[i]);
                sums[q->type].power += (double)x[i] * x[i];
            }
        }
    }
    CHECK_MSG(bad_rows == 0, "%.*s (%s): %d of %lld rows differ from llama.cpp's", (int)q->name.len,
              q->name.ptr, qtype_get(q->type)->name, bad_rows, (long long)rows);
    free(mine);
    free(dec);
    free(dec_mine);
}

static void check_file(const char *model, const char *type) {
    char f32_name[128], q_name[128];
    snprintf(f32_name, sizeof f32_name, "reference/llamacpp/tiny-%s-F32.gguf", model);
    snprintf(q_name, sizeof q_name, "reference/llamacpp/tiny-%s-%s.gguf", model, type);
    gguf *f = gguf_open(test_shared_path(f32_name));
    gguf *q = gguf_open(test_shared_path(q_name));
    error_sums sums[QT_COUNT] = {0};
    int checked = 0;
    CHECK_MSG(f && q, "%s", err_msg());
    for (size_t i = 0; f && q && i < gguf_n_tensors(q); i++) {
        const gguf_tensor *qt = gguf_tensor_at(q, i);
        if (qt->type == QT_F32) continue;
        char *name = gguf_str_dup(qt->name);
        const gguf_tensor *ft = name ? gguf_find_tensor(f, name) : NULL;
        free(name);
        CHECK(ft && ft->type == QT_F32 && ft->nbytes / 4 == qt->ne[0] * qt->ne[1] * qt->ne[2] * qt->ne[3]);
        if (!ft || ft->type != QT_F32) continue;
        check_tensor(qt, ft, sums);
        checked++;
    }
    CHECK(checked > 0);
    for (int t = 0; t < QT_COUNT; t++) {
        if (sums[t].power == 0) continue;
        const double theirs = sqrt(sums[t].theirs / sums[t].power);
        const double ours = sqrt(sums[t].ours / sums[t].power);
        /* Gaussian weights: about 0.07 for Q4_K and 0.018 for Q6_K from either encoder; a
         * decoding mistake gives errors near 1 */
        const double bound = t == QT_Q4_K ? 0.08 : 0.02;
        CHECK_MSG(theirs < bound, "%s %s: llama.cpp's %s decodes with relative RMS error %.4f",
                  model, type, qtype_get(t)->name, theirs);
        CHECK_MSG(ours <= theirs * 1.02, "%s %s: our %s error %.5f vs llama.cpp's %.5f", model,
                  type, qtype_get(t)->name, ours, theirs);
    }
    if (q) gguf_close(q);
    if (f) gguf_close(f);
}

static void check_model(const char *model) {
    static const char *types[] = {"F16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) check_file(model, types[i]);
}

TEST(quant_ggml_files_llama) {
    NEED_SHARED();
    check_model("llama");
}

TEST(quant_ggml_files_qwen3) {
    NEED_SHARED();
    check_model("qwen3");
}
