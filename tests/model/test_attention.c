/* The attention kernels (model/attention.h) against a double-precision evaluation of the same
 * formula over the same cached values: F32 and F16 caches, head sizes the AVX2 kernel takes
 * (multiples of 8, several 64-float slices) and one it leaves to the scalar kernel, position
 * counts around the 8-row groups and 16-row blocks, a shuffled block table, and scores from
 * flat to sharply peaked. Also: the F16 row conversion of both kernel sets agrees bit for bit
 * with quant_f32_to_f16, and attention_head dispatches on the matmul backend. */
#include "test.h"

#include "model/attention.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"
#include "tensor/testrand.h"

#include <math.h>
#include <stdlib.h>

#define NB 12 /* storage blocks */
#define NL 2  /* layers */
#define NH 3  /* KV heads */

typedef struct cache {
    void *k, *v;
    int32_t blocks[NB];
    attn_kv view; /* layer 1, head 2 */
} cache;

static void cache_fill(cache *c, enum attn_type type, int32_t hd, testrand *g) {
    size_t es = type == ATTN_F16 ? 2 : 4, block = (size_t)NL * NH * ATTN_BLOCK * (size_t)hd;
    c->k = malloc(NB * block * es);
    c->v = malloc(NB * block * es);
    float row[256];
    for (size_t r = 0; r < NB * block / (size_t)hd; r++) {
        for (int32_t i = 0; i < hd; i++) row[i] = testrand_normal(g);
        attention_store((char *)c->k + r * (size_t)hd * es, type, row, hd);
        for (int32_t i = 0; i < hd; i++) row[i] = testrand_normal(g);
        attention_store((char *)c->v + r * (size_t)hd * es, type, row, hd);
    }
    /* a sequence's blocks anywhere in storage, in no particular order */
    for (int i = 0; i < NB; i++) c->blocks[i] = (i * 7 + 3) % NB;
    c->view = (attn_kv){c->k, c->v, type, c->blocks, block, ((size_t)1 * NH + 2) * ATTN_BLOCK * (size_t)hd};
}

static void cache_free(cache *c) {
    free(c->k);
    free(c->v);
}

static double cached(const attn_kv *kv, const void *base, size_t e) {
    return kv->type == ATTN_F16 ? quant_f16_to_f32(((const uint16_t *)base)[e]) : ((const float *)base)[e];
}

static void reference(const attn_kv *kv, int32_t hd, const float *q, int32_t n_pos, float scale,
                      double *out) {
    double s[NB * ATTN_BLOCK], max = -INFINITY, sum = 0;
    for (int32_t p = 0; p < n_pos; p++) {
        double d = 0;
        for (int32_t i = 0; i < hd; i++) d += (double)q[i] * cached(kv, kv->k, attention_k_elem(kv, hd, p, i));
        s[p] = d * scale;
        if (s[p] > max) max = s[p];
    }
    for (int32_t p = 0; p < n_pos; p++) sum += s[p] = exp(s[p] - max);
    for (int32_t i = 0; i < hd; i++) {
        out[i] = 0;
        for (int32_t p = 0; p < n_pos; p++) out[i] += s[p] / sum * cached(kv, kv->v, attention_v_elem(kv, hd, p, i));
    }
}

typedef void (*head_fn)(const attn_kv *, int32_t, const float *, int32_t, float, float *, float *);

/* Every (type, head size, position count, score scale) against the reference. */
static void check_kernel(const char *name, head_fn fn, bool multiple_of_8_only) {
    static const int32_t hds[] = {8, 12, 16, 64, 72, 128};
    static const int32_t n_pos[] = {1, 2, 7, 8, 9, 15, 16, 17, 24, 33, 100, NB * ATTN_BLOCK};
    static const float sharp[] = {1.0f, 8.0f}; /* flat to one position taking nearly all */
    testrand g = {0x5eed};
    double worst = 0;
    for (int type = ATTN_F32; type <= ATTN_F16; type++) {
        for (size_t h = 0; h < sizeof hds / sizeof *hds; h++) {
            int32_t hd = hds[h];
            if (multiple_of_8_only && hd % 8) continue;
            cache c;
            cache_fill(&c, (enum attn_type)type, hd, &g);
            float q[256], out[256], scores[NB * ATTN_BLOCK + 8];
            double want[256];
            for (size_t ni = 0; ni < sizeof n_pos / sizeof *n_pos; ni++) {
                for (size_t si = 0; si < 2; si++) {
                    for (int32_t i = 0; i < hd; i++) q[i] = testrand_normal(&g);
                    float scale = sharp[si] / sqrtf((float)hd);
                    fn(&c.view, hd, q, n_pos[ni], scale, scores, out);
                    reference(&c.view, hd, q, n_pos[ni], scale, want);
                    for (int32_t i = 0; i < hd; i++) {
                        double e = fabs(out[i] - want[i]);
                        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
                        /* float sums of up to 128 products (the scalar kernel's without
                         * fused adds) at the sharp scale: ~1e-5 */
                        if (!(e <= 2e-5)) {
                            CHECK_MSG(false, "%s %s hd %d n_pos %d scale %g: out[%d] %.8g, want %.8g",
                                      name, type == ATTN_F16 ? "f16" : "f32", hd, n_pos[ni],
                                      (double)scale, i, (double)out[i], want[i]);
                            i = hd;
                            ni = sizeof n_pos / sizeof *n_pos - 1;
                            si = 2;
                        }
                    }
                }
            }
            cache_free(&c);
        }
    }
    printf("    %s: worst |out - reference| %.3g\n", name, worst);
}

TEST(attention_scalar_matches_reference) { check_kernel("scalar", attention_scalar_head, false); }

TEST(attention_avx2_matches_reference) {
    if (!matmul_backend_supported(MATMUL_AVX2)) SKIP("no AVX2/FMA/F16C on this CPU");
    check_kernel("avx2", attention_avx2_head, true);
}

/* attention_store_kv writes every element of a (layer, head) piece exactly once over a block's
 * 16 positions, where attention_k_elem and attention_v_elem find it, and nothing outside the
 * piece; F32 and F16 (its bits those of quant_f32_to_f16), head sizes up to two conversion
 * pieces of 64. */
TEST(attention_store_kv_fills_the_piece) {
    static const int32_t hds[] = {8, 72, 128};
    for (int type = ATTN_F32; type <= ATTN_F16; type++)
        for (size_t h = 0; h < sizeof hds / sizeof *hds; h++) {
            const int32_t hd = hds[h];
            const size_t es = type == ATTN_F16 ? 2 : 4, piece = (size_t)ATTN_BLOCK * (size_t)hd;
            const size_t total = 3 * piece; /* storage block 1, pieces at off = piece */
            unsigned char *k = malloc(2 * total * es), *v = malloc(2 * total * es);
            memset(k, 0xA5, 2 * total * es);
            memset(v, 0xA5, 2 * total * es);
            const int32_t blocks[2] = {1, 0};
            const attn_kv kv = {k, v, (enum attn_type)type, blocks, total, piece};
            float kr[128], vr[128];
            for (int32_t p = 0; p < ATTN_BLOCK; p++) {
                for (int32_t d = 0; d < hd; d++) kr[d] = (float)(p * 1000 + d), vr[d] = -(float)(p * 1000 + d);
                attention_store_kv(&kv, hd, p, kr, vr);
            }
            int bad = 0;
            for (int32_t p = 0; p < ATTN_BLOCK; p++)
                for (int32_t d = 0; d < hd; d++) {
                    const size_t ek = attention_k_elem(&kv, hd, p, d), ev = attention_v_elem(&kv, hd, p, d);
                    const float want = (float)(p * 1000 + d);
                    float gk, gv;
                    if (type == ATTN_F16) {
                        gk = quant_f16_to_f32(((const uint16_t *)k)[ek]);
                        gv = quant_f16_to_f32(((const uint16_t *)v)[ev]);
                    } else {
                        gk = ((const float *)k)[ek];
                        gv = ((const float *)v)[ev];
                    }
                    const float wk = type == ATTN_F16 ? quant_f16_to_f32(quant_f32_to_f16(want)) : want;
                    if ((gk != wk || gv != -wk) && bad++ < 3)
                        CHECK_MSG(0, "%s hd %d: position %d element %d: k %g v %g, want %g", type ? "f16" : "f32",
                                  hd, p, d, (double)gk, (double)gv, (double)wk);
                }
            /* the piece (storage block 1 at off) fully written, everything else untouched */
            for (size_t b = 0; b < 2 * total * es; b++) {
                const bool in = b >= (total + piece) * es && b < (total + 2 * piece) * es;
                if (!in && (k[b] != 0xA5 || v[b] != 0xA5) && bad++ < 3)
                    CHECK_MSG(0, "hd %d: byte %zu outside the piece written", hd, b);
            }
            CHECK_EQ_INT(bad, 0);
            free(k);
            free(v);
        }
}

/* F16 rows: scalar and AVX2 conversions give quant_f32_to_f16's bits, edge values included. */
TEST(attention_store_f16_rounds_like_quant) {
    float x[37] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65519.0f, 65520.0f, -1e9f, INFINITY,
                   -INFINITY, 6.1035156e-05f, 6.0e-08f, 2.9e-08f, 1.0e-10f, 1.00048828125f,
                   1.000732421875f, 3.14159265f};
    testrand g = {7};
    for (int i = 17; i < 37; i++) x[i] = testrand_normal(&g) * 100.0f;
    uint16_t want[37], got[37];
    for (int i = 0; i < 37; i++) want[i] = quant_f32_to_f16(x[i]);
    const enum matmul_backend saved = matmul_backend();
    for (int b = 0; b <= MATMUL_AVX512; b++) {
        if (matmul_set_backend((enum matmul_backend)b) != 0) continue;
        memset(got, 0xff, sizeof got);
        attention_store(got, ATTN_F16, x, 37); /* 4 whole vectors and a tail of 5 */
        for (int i = 0; i < 37; i++)
            CHECK_MSG(got[i] == want[i], "%s: %g -> 0x%04x, want 0x%04x",
                      matmul_backend_name((enum matmul_backend)b), (double)x[i], got[i], want[i]);
    }
    float f[37];
    attention_store(f, ATTN_F32, x, 37);
    CHECK(memcmp(f, x, sizeof f) == 0);
    matmul_set_backend(saved);
}

/* attention_head runs the backend's kernel: the scalar one on the scalar backend; on both SIMD
 * backends the AVX2 kernel's results bit for bit (AVX-512 runs its own 16-lane pass, with 64
 * output floats per pass over V), for head sizes 24, 56, 64 and 128 (slices of 64, 32, 16 and 8)
 * and position counts inside and at the ends of 16-row blocks and 128-row score groups, F32 and
 * F16 caches. */
TEST(attention_head_follows_backend) {
    static const int32_t hds[] = {24, 56, 64, 128};
    static const int32_t counts[] = {1, 7, 16, 17, 50, 128, 129, NB * ATTN_BLOCK};
    testrand g = {11};
    float q[128], a[128], b[128], scores[NB * ATTN_BLOCK];
    const enum matmul_backend saved = matmul_backend();
    int bad = 0;
    for (int type = ATTN_F32; type <= ATTN_F16; type++)
        for (size_t h = 0; h < sizeof hds / sizeof *hds; h++) {
            const int32_t hd = hds[h];
            cache c;
            cache_fill(&c, (enum attn_type)type, hd, &g);
            for (int32_t i = 0; i < hd; i++) q[i] = testrand_normal(&g);
            for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++) {
                CHECK(matmul_set_backend(MATMUL_SCALAR) == 0);
                attention_head(&c.view, hd, q, counts[ci], 0.125f, scores, a);
                attention_scalar_head(&c.view, hd, q, counts[ci], 0.125f, scores, b);
                CHECK(memcmp(a, b, sizeof(float) * (size_t)hd) == 0);
                for (int be = MATMUL_AVX2; be <= MATMUL_AVX512; be++) {
                    if (matmul_set_backend((enum matmul_backend)be) != 0) continue;
                    attention_head(&c.view, hd, q, counts[ci], 0.125f, scores, a);
                    attention_avx2_head(&c.view, hd, q, counts[ci], 0.125f, scores, b);
                    if (memcmp(a, b, sizeof(float) * (size_t)hd) != 0 && bad++ < 5)
                        CHECK_MSG(0, "%s backend, %s hd %d, %d positions: not the AVX2 kernel's result",
                                  matmul_backend_name((enum matmul_backend)be),
                                  type == ATTN_F16 ? "f16" : "f32", hd, counts[ci]);
                }
            }
            cache_free(&c);
        }
    CHECK_EQ_INT(bad, 0);
    matmul_set_backend(saved);
}

/* attention_heads gives each query exactly attention_head's result, on every backend: 1 to
 * ATTN_MAX_Q queries, equal and different position counts (rising as a prompt's, falling, one
 * much shorter than the rest, counts inside and at the end of 8-row groups and 16-row blocks),
 * F32 and F16 caches, head sizes 24 and 56 (slices of 32, 16 and 8 on AVX-512), 64 and 128 (and
 * 12 for the scalar path). */
TEST(attention_heads_equal_one_at_a_time) {
    static const int32_t hds[] = {12, 24, 56, 64, 128};
    static const int32_t counts[][ATTN_MAX_Q] = {
        {57, 57, 57, 57, 57, 57, 57, 57}, {1, 2, 3, 4, 5, 6, 7, 8}, {185, 184, 183, 182, 181, 180, 179, 178},
        {9, 100, 16, 17, 33, 1, 192, 64}, {120, 121, 122, 123, 124, 125, 126, 127}};
    const enum matmul_backend saved = matmul_backend();
    testrand g = {21};
    int bad = 0;
    for (int be = MATMUL_SCALAR; be <= MATMUL_AVX512; be++) {
        if (matmul_set_backend((enum matmul_backend)be) != 0) continue;
        for (int type = ATTN_F32; type <= ATTN_F16; type++)
            for (size_t h = 0; h < sizeof hds / sizeof *hds; h++) {
                const int32_t hd = hds[h];
                cache c;
                cache_fill(&c, (enum attn_type)type, hd, &g);
                float qs[ATTN_MAX_Q][128], outs[ATTN_MAX_Q][128], one[128];
                float *scores = malloc(sizeof(float) * ATTN_MAX_Q * (NB * ATTN_BLOCK + 8));
                const float *q[ATTN_MAX_Q];
                float *out[ATTN_MAX_Q];
                for (int i = 0; i < ATTN_MAX_Q; i++) {
                    for (int32_t e = 0; e < hd; e++) qs[i][e] = testrand_normal(&g) * (1.0f + (float)i);
                    q[i] = qs[i];
                    out[i] = outs[i];
                }
                for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++)
                    for (int n_q = 1; n_q <= ATTN_MAX_Q; n_q++) {
                        attention_heads(&c.view, hd, n_q, q, counts[ci], 0.3f, scores, out);
                        for (int i = 0; i < n_q; i++) {
                            attention_head(&c.view, hd, q[i], counts[ci][i], 0.3f, scores, one);
                            if (memcmp(one, outs[i], sizeof(float) * (size_t)hd) != 0 && bad++ < 5)
                                CHECK_MSG(0, "%s %s hd %d: %d queries, counts #%zu: query %d differs",
                                          matmul_backend_name((enum matmul_backend)be),
                                          type == ATTN_F16 ? "f16" : "f32", hd, n_q, ci, i);
                        }
                    }
                free(scores);
                cache_free(&c);
            }
    }
    CHECK_EQ_INT(bad, 0);
    matmul_set_backend(saved);
}
