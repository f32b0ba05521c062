/* AVX2 attention kernels (attention.h). The Makefile compiles *_avx2.c with -mavx2 -mfma
 * -mf16c; attention.c calls these only when the matmul backend is a SIMD one and the CPU
 * check for AVX2 passed.
 *
 * Per (query, head), with head_dim a multiple of 8:
 *   scores  each dot product in 8 lanes (element i into lane i % 8, increasing i, fused
 *           multiply-adds), the lanes summed as ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)) — the
 *           same order whether 8 rows are reduced together (reduce8) or one alone (reduce1), so
 *           a score does not depend on where its row falls;
 *   softmax a vectorised exp (Cephes' range reduction and polynomial, ~2 ulp; results below
 *           2^-126 become 0), the sum in double;
 *   output  the normalised weights times V rows, fused multiply-adds in position order, up to
 *           64 output floats held in registers per pass over the rows. */
#include "model/attention.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include "model/attention_simd.h"

/* Lane partial sums of dot(q, row) for the R consecutive rows from element e (R a constant):
 * lane j of d[r] holds elements j, j + 8, ... of row r, multiplied then fused-added in
 * increasing order. The rows' chains of dependent adds are interleaved, so 8 rows take about
 * the time of one. */
INLINE void dot_lanes(const float *q, const void *base, bool f16, size_t e, int32_t hd, const int R,
                      __m256 d[]) {
    const __m256 q0 = _mm256_loadu_ps(q);
    UNROLL_Q for (int j = 0; j < R; j++) d[j] = _mm256_mul_ps(q0, load8(base, f16, e + (size_t)j * hd));
    for (int32_t i = 8; i < hd; i += 8) {
        const __m256 qi = _mm256_loadu_ps(q + i);
        UNROLL_Q for (int j = 0; j < R; j++)
            d[j] = _mm256_fmadd_ps(qi, load8(base, f16, e + (size_t)j * hd + (size_t)i), d[j]);
    }
}

/* s[p] = scale * dot(q, k_p) for p < n_pos; returns the largest. While one block of K is
 * read, K blocks ahead and this block of V (for weighted_sum) are prefetched (prefetch_kv). */
INLINE float scores(const attn_kv *kv, bool f16, int32_t hd, const float *q, int32_t n_pos,
                    float scale, float *s) {
    const __m256 vscale = _mm256_set1_ps(scale);
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    float max = -INFINITY;
    for (int32_t b0 = 0; b0 < n_pos; b0 += ATTN_BLOCK) {
        size_t e0 = row_elem(kv, hd, b0);
        int32_t rows = n_pos - b0 < ATTN_BLOCK ? n_pos - b0 : ATTN_BLOCK, r = 0;
        prefetch_kv(kv, f16, hd, b0, n_pos);
        for (; r + 8 <= rows; r += 8) {
            __m256 d[8];
            dot_lanes(q, kv->k, f16, e0 + (size_t)r * hd, hd, 8, d);
            __m256 sv = _mm256_mul_ps(reduce8(d), vscale);
            _mm256_storeu_ps(s + b0 + r, sv);
            vmax = _mm256_max_ps(vmax, sv);
        }
        for (; r < rows; r++) {
            __m256 d;
            dot_lanes(q, kv->k, f16, e0 + (size_t)r * hd, hd, 1, &d);
            float x = reduce1(d) * scale;
            s[b0 + r] = x;
            if (x > max) max = x;
        }
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, vmax);
    for (int j = 0; j < 8; j++)
        if (lanes[j] > max) max = lanes[j];
    return max;
}

/* out[c0 .. c0 + 8 n_acc) = sum_p w_p v_p[c0 ..]: n_acc accumulators in registers. */
INLINE void weighted_slice(const attn_kv *kv, bool f16, int32_t hd, const float *w,
                           int32_t n_pos, int32_t c0, const int n_acc, float *out) {
    __m256 acc[8];
    UNROLL_Q for (int j = 0; j < n_acc; j++) acc[j] = _mm256_setzero_ps();
    for (int32_t b0 = 0; b0 < n_pos; b0 += ATTN_BLOCK) {
        size_t e0 = row_elem(kv, hd, b0) + (size_t)c0;
        int32_t rows = n_pos - b0 < ATTN_BLOCK ? n_pos - b0 : ATTN_BLOCK;
        for (int32_t r = 0; r < rows; r++) {
            __m256 wv = _mm256_broadcast_ss(w + b0 + r);
            size_t e = e0 + (size_t)r * hd;
            UNROLL_Q for (int j = 0; j < n_acc; j++)
                acc[j] = _mm256_fmadd_ps(wv, load8(kv->v, f16, e + 8 * (size_t)j), acc[j]);
        }
    }
    UNROLL_Q for (int j = 0; j < n_acc; j++) _mm256_storeu_ps(out + c0 + 8 * j, acc[j]);
}

INLINE void weighted_sum(const attn_kv *kv, bool f16, int32_t hd, const float *w, int32_t n_pos,
                         float *out) {
    for (int32_t c0 = 0; c0 < hd; c0 += 64) {
        /* a constant count per case, so each loop is unrolled with its accumulators in registers */
        switch ((hd - c0 < 64 ? hd - c0 : 64) / 8) {
        case 1: weighted_slice(kv, f16, hd, w, n_pos, c0, 1, out); break;
        case 2: weighted_slice(kv, f16, hd, w, n_pos, c0, 2, out); break;
        case 3: weighted_slice(kv, f16, hd, w, n_pos, c0, 3, out); break;
        case 4: weighted_slice(kv, f16, hd, w, n_pos, c0, 4, out); break;
        case 5: weighted_slice(kv, f16, hd, w, n_pos, c0, 5, out); break;
        case 6: weighted_slice(kv, f16, hd, w, n_pos, c0, 6, out); break;
        case 7: weighted_slice(kv, f16, hd, w, n_pos, c0, 7, out); break;
        default: weighted_slice(kv, f16, hd, w, n_pos, c0, 8, out); break;
        }
    }
}

INLINE void head(const attn_kv *kv, bool f16, int32_t hd, const float *q, int32_t n_pos,
                 float scale, float *s, float *out) {
    softmax(s, n_pos, scores(kv, f16, hd, q, n_pos, scale, s));
    weighted_sum(kv, f16, hd, s, n_pos, out);
}

void attention_avx2_head(const attn_kv *kv, int32_t hd, const float *q, int32_t n_pos,
                         float scale, float *s, float *out) {
    if (kv->type == ATTN_F16)
        head(kv, true, hd, q, n_pos, scale, s, out);
    else
        head(kv, false, hd, q, n_pos, scale, s, out);
}

/* Fills part[i][j][0..8) with query i's 8 lane partial sums of dot(q[i], the K row at element
 * e) for i < NQ (lane l the elements l, l + 8, ... of head_dim, multiplied then fused-added in
 * increasing order: dot_lanes' order): the row's 8-float pieces loaded once for all queries. */
INLINE void row_dots8(const void *k, bool f16, int32_t hd, const int NQ, const float *const q[],
                      size_t e, float part[][8][8], int j) {
    __m256 acc[ATTN_MAX_Q];
    const __m256 k0 = load8(k, f16, e);
    UNROLL_Q for (int i = 0; i < NQ; i++) acc[i] = _mm256_mul_ps(_mm256_loadu_ps(q[i]), k0);
    for (int32_t c = 8; c < hd; c += 8) {
        const __m256 kc = load8(k, f16, e + (size_t)c);
        UNROLL_Q for (int i = 0; i < NQ; i++) acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(q[i] + c), kc, acc[i]);
    }
    UNROLL_Q for (int i = 0; i < NQ; i++) _mm256_storeu_ps(part[i][j], acc[i]);
}

/* scores_fn (attention_simd.h) on AVX2: each row's 8-lane partial sums through part[], reduced 8
 * rows at a time by reduce8 (a short group's rows one by one by reduce1, which agrees). */
INLINE void scores8(const attn_kv *kv, bool f16, int32_t hd, const int NQ, const float *const q[],
                    const int32_t n_pos[], int32_t max_pos, bool prefetch, float scale, float *const s[],
                    float max[]) {
    __m256 vmax[ATTN_MAX_Q];
    float part[ATTN_MAX_Q][8][8]; /* [query][row of the group][lane] */
    UNROLL_Q for (int i = 0; i < NQ; i++) vmax[i] = _mm256_set1_ps(-INFINITY);
    const __m256 iota = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    /* groups of 8 rows, never across a block (ATTN_BLOCK is a multiple of 8) */
    for (int32_t p0 = 0; p0 < max_pos; p0 += 8) {
        if (prefetch && p0 % ATTN_BLOCK == 0) prefetch_kv(kv, f16, hd, p0, max_pos);
        const size_t e0 = row_elem(kv, hd, p0);
        const int n = max_pos - p0 < 8 ? max_pos - p0 : 8;
        for (int j = 0; j < n; j++) row_dots8(kv->k, f16, hd, NQ, q, e0 + (size_t)j * hd, part, j);
        UNROLL_Q for (int i = 0; i < NQ; i++) {
            const int32_t valid = n_pos[i] - p0;
            if (n == 8) {
                __m256 a[8];
                UNROLL_Q for (int j = 0; j < 8; j++) a[j] = _mm256_loadu_ps(part[i][j]);
                const __m256 sv = _mm256_mul_ps(reduce8(a), _mm256_set1_ps(scale));
                _mm256_storeu_ps(s[i] + p0, sv);
                const __m256 live = _mm256_cmp_ps(iota, _mm256_set1_ps((float)valid), _CMP_LT_OQ);
                vmax[i] = _mm256_max_ps(vmax[i], _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), sv, live));
            } else {
                for (int j = 0; j < n; j++) {
                    const float x = reduce1(_mm256_loadu_ps(part[i][j])) * scale;
                    s[i][p0 + j] = x;
                    if (j < valid && x > max[i]) max[i] = x;
                }
            }
        }
    }
    UNROLL_Q for (int i = 0; i < NQ; i++) {
        float lanes[8];
        _mm256_storeu_ps(lanes, vmax[i]);
        for (int j = 0; j < 8; j++)
            if (lanes[j] > max[i]) max[i] = lanes[j];
    }
}

HEADS_TABLE(heads8, scores8)

void attention_avx2_heads(const attn_kv *kv, int32_t hd, int n_q, const float *const q[],
                          const int32_t n_pos[], float scale, float *scores, float *const out[]) {
    if (n_q == 1) /* one pass over V with 64 output floats in registers */
        attention_avx2_head(kv, hd, q[0], n_pos[0], scale, scores, out[0]);
    else
        heads8[n_q - 2](kv, hd, q, n_pos, scale, scores, out);
}

void attention_avx2_to_f16(uint16_t *dst, const float *src, int32_t n) {
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(src[i]), _MM_FROUND_TO_NEAREST_INT), 0);
}

#else /* built without AVX2: attention.c never calls these */

void attention_avx2_head(const attn_kv *kv, int32_t hd, const float *q, int32_t n_pos,
                         float scale, float *s, float *out) {
    attention_scalar_head(kv, hd, q, n_pos, scale, s, out);
}

void attention_avx2_to_f16(uint16_t *dst, const float *src, int32_t n) {
    attention_store(dst, ATTN_F16, src, n);
}

void attention_avx2_heads(const attn_kv *kv, int32_t hd, int n_q, const float *const q[],
                          const int32_t n_pos[], float scale, float *scores, float *const out[]) {
    for (int i = 0; i < n_q; i++)
        attention_scalar_head(kv, hd, q[i], n_pos[i], scale, scores, out[i]);
}

#endif
