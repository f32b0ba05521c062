/* Token sampler; sampler.h gives the order of operations and the guarantees.
 *
 * Candidates are kept as a list of token ids in ascending order. Each cut (top-k, top-p) finds
 * its threshold token (bucketing, then a quickselect inside one bucket) and then filters the
 * list against the threshold, so the order the final draw walks in is always ascending id and
 * the result does not depend on how the selection shuffled things. Nothing is sorted. With no
 * cut at all (the API's defaults) no list is made: the draw walks every token in id order,
 * passing over whole blocks of them by the softmax's partial sums. */
#include "model/sampler.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/rng.h"

/* Buckets for the top-k and top-p cuts: 32 per unit of logit below the best, 32 units deep;
 * the last bucket takes everything further down. */
#define SAMPLER_BUCKETS 1024
#define SAMPLER_BUCKETS_PER_UNIT 32.0f
/* Tokens per partial sum of a dense softmax (softmax_num's blocks): the draw passes over whole
 * blocks before adding tokens one by one. */
#define DRAW_BLOCK 64

/* The passes over a whole vocabulary (every token sampled runs several) take VL floats at a
 * time through GCC/clang vector extensions. On x86-64, VOCAB_PASS compiles each such pass for
 * AVX-512, AVX2 and the baseline, and the loader picks the widest the CPU has (target_clones):
 * VL is 16, one AVX-512 register (two AVX2 ones; on AVX-512 a sample or logprobs call is
 * 1.7-2.7x faster than with 4 floats at a time). Elsewhere (NEON; clang, which rejects 16-float
 * vectors outside AVX-512 code even inlined), and where VEIL_NO_CLONES is set (the sanitizer
 * builds), VL is 4: the compiler's splitting of 16-float vectors into 4-float registers was
 * 2-5x slower than 4-float code. Lanes are independent IEEE operations and the sums' lane
 * order is fixed by VL, so builds with the same VL give the same results; a VL-4 and a VL-16
 * build may differ in a sum's last bits. (A plain loop calling expf() was several times slower
 * again.) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(VEIL_NO_CLONES)
#define VOCAB_PASS __attribute__((target_clones("avx512f", "avx2", "default")))
#define VL 16
#else
#define VOCAB_PASS
#define VL 4
#endif
typedef float f32xv __attribute__((vector_size(4 * VL)));
typedef int32_t i32xv __attribute__((vector_size(4 * VL)));
typedef float f32xh __attribute__((vector_size(2 * VL)));  /* half a vector */
typedef double f64xh __attribute__((vector_size(4 * VL))); /* VL / 2 doubles */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE f32xv vload(const float *p) {
    f32xv x;
    memcpy(&x, p, sizeof x);
    return x;
}

/* The n < VL floats at p, -inf in the other lanes. */
ALWAYS_INLINE f32xv vload_tail(const float *p, int32_t n) {
    f32xv x;
    for (int l = 0; l < VL; l++) x[l] = l < n ? p[l] : -INFINITY;
    return x;
}

ALWAYS_INLINE f32xv vsplat(float x) { return (f32xv){0} + x; }

/* Whether any lane of m (all ones or all zeros) is set. */
ALWAYS_INLINE bool vany(i32xv m) {
    int32_t a = 0;
    for (int l = 0; l < VL; l++) a |= m[l];
    return a != 0;
}

/* The sum of c's lanes (integers: any order is exact). */
ALWAYS_INLINE int32_t vsum_i(i32xv c) {
    int32_t n = 0;
    for (int l = 0; l < VL; l++) n += c[l];
    return n;
}

/* Adds e's lanes to two VL/2-lane double accumulators (the low half's lanes, then the high
 * half's); vacc_sum is their total in a fixed order. */
ALWAYS_INLINE void vacc(f64xh acc[2], f32xv e) {
#if VL == 16
    const f32xh lo = __builtin_shufflevector(e, e, 0, 1, 2, 3, 4, 5, 6, 7);
    const f32xh hi = __builtin_shufflevector(e, e, 8, 9, 10, 11, 12, 13, 14, 15);
#else
    const f32xh lo = {e[0], e[1]}, hi = {e[2], e[3]};
#endif
    acc[0] += __builtin_convertvector(lo, f64xh);
    acc[1] += __builtin_convertvector(hi, f64xh);
}

ALWAYS_INLINE double vacc_sum(const f64xh acc[2]) {
#if VL == 16
    const f64xh a = acc[0] + acc[1];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
#else
    return (acc[0][0] + acc[0][1]) + (acc[1][0] + acc[1][1]);
#endif
}

struct sampler {
    sampler_params p;
    int32_t n_vocab;
    uint64_t rng[4];
    float *work;    /* adjusted logits */
    float *prob;    /* softmax numerators of the candidates */
    int32_t *cand;  /* surviving token ids, ascending */
    int32_t *near;  /* candidates down to a cut's threshold bucket, ascending */
    int32_t *sel;   /* scratch for selection */
    int32_t *count; /* history counts; all zero between calls */
    float *bias;    /* n_vocab additive biases, NULL until one is set */
    int32_t n_last;   /* candidates the last sample drew from (cand[0, n_last), or when dense
                       * every finite token) */
    double mass_last; /* and their total probability mass */
    bool dense;       /* the last sample cut nothing: no candidate list was made */
    double *blocks;   /* softmax_num's block sums: n_vocab / DRAW_BLOCK, rounded up */
    int32_t bucket_n[SAMPLER_BUCKETS];
    double bucket_mass[SAMPLER_BUCKETS];
};

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256**: small, fast, and specified exactly, so streams match across platforms. */
static uint64_t xoshiro_next(uint64_t st[4]) {
    uint64_t out = rotl64(st[1] * 5, 7) * 9;
    uint64_t t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl64(st[3], 45);
    return out;
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform01(sampler *s) { return (double)(xoshiro_next(s->rng) >> 11) * 0x1.0p-53; }

void sampler_params_default(sampler_params *p) {
    *p = (sampler_params){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .seed = SAMPLER_DEFAULT_SEED,
    };
}

int sampler_params_check(const sampler_params *p) {
    /* Written so that NaN fails every test. */
    if (!(isfinite(p->temperature) && p->temperature >= 0))
        return err_set("sampler: temperature %g must be finite and >= 0 (0 = greedy)",
                       p->temperature);
    if (p->top_k < 0) return err_set("sampler: top_k %d must be >= 0 (0 = off)", p->top_k);
    if (!(p->top_p > 0 && p->top_p <= 1))
        return err_set("sampler: top_p %g must be in (0, 1] (1 = off)", p->top_p);
    if (!(p->min_p >= 0 && p->min_p <= 1))
        return err_set("sampler: min_p %g must be in [0, 1] (0 = off)", p->min_p);
    if (!(isfinite(p->repeat_penalty) && p->repeat_penalty > 0))
        return err_set("sampler: repeat_penalty %g must be finite and > 0 (1 = off)",
                       p->repeat_penalty);
    if (p->repeat_last_n < -1)
        return err_set("sampler: repeat_last_n %d must be >= -1 (-1 = whole history)",
                       p->repeat_last_n);
    if (!isfinite(p->frequency_penalty))
        return err_set("sampler: frequency_penalty %g must be finite", p->frequency_penalty);
    if (!isfinite(p->presence_penalty))
        return err_set("sampler: presence_penalty %g must be finite", p->presence_penalty);
    return 0;
}

sampler *sampler_new(const sampler_params *p, int32_t n_vocab) {
    sampler *s = NULL;
    size_t n = (size_t)n_vocab;
    if (sampler_params_check(p) != 0) goto fail;
    if (n_vocab <= 0) {
        err_set("sampler: n_vocab %d must be > 0", (int)n_vocab);
        goto fail;
    }
    s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->work = malloc(n * sizeof *s->work);
    s->prob = malloc(n * sizeof *s->prob);
    s->cand = malloc(n * sizeof *s->cand);
    s->near = malloc(n * sizeof *s->near);
    s->sel = malloc(n * sizeof *s->sel);
    s->count = calloc(n, sizeof *s->count);
    s->blocks = malloc((n + DRAW_BLOCK - 1) / DRAW_BLOCK * sizeof *s->blocks);
    if (!s->work || !s->prob || !s->cand || !s->near || !s->sel || !s->count || !s->blocks) goto oom;
    sampler_set_seed(s, p->seed);
    return s;
oom:
    err_set("sampler: out of memory for a %d-token vocabulary", (int)n_vocab);
fail:
    sampler_free(s);
    return NULL;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->prob);
    free(s->cand);
    free(s->near);
    free(s->sel);
    free(s->count);
    free(s->blocks);
    free(s->bias);
    free(s);
}

void sampler_set_seed(sampler *s, uint64_t seed) {
    /* splitmix64 is a bijection of its counter, so at most one of the four words is zero and
     * xoshiro never gets the all-zero state it cannot leave. */
    rng r = {seed};
    for (int i = 0; i < 4; i++) s->rng[i] = rng_u64(&r);
}

int sampler_set_logit_bias(sampler *s, int32_t token, float bias) {
    if (token < 0 || token >= s->n_vocab)
        return err_set("sampler: logit_bias token %d is outside the vocabulary (%d tokens)",
                       (int)token, (int)s->n_vocab);
    if (isnan(bias) || bias == INFINITY)
        return err_set("sampler: logit_bias %g for token %d must be finite or -inf", bias,
                       (int)token);
    if (!s->bias) {
        s->bias = calloc((size_t)s->n_vocab, sizeof *s->bias);
        if (!s->bias) return err_set("sampler: out of memory for logit_bias");
    }
    s->bias[token] = bias;
    return 0;
}

void sampler_clear_logit_bias(sampler *s) {
    free(s->bias);
    s->bias = NULL;
}

static float logit_clean(float x) {
    if (isnan(x)) return -INFINITY;
    return x == INFINITY ? FLT_MAX : x;
}

/* out[i] = l[i] + b[i] for i < n (out may be l). */
VOCAB_PASS static void add_bias(float *out, const float *l, const float *b, int32_t n) {
    int32_t i = 0;
    for (; i + VL <= n; i += VL) {
        const f32xv x = vload(l + i) + vload(b + i);
        memcpy(out + i, &x, sizeof x);
    }
    for (; i < n; i++) out[i] = l[i] + b[i];
}

/* Lane-wise mask ? a : b (mask lanes all ones or all zeros). */
ALWAYS_INLINE f32xv vselect(i32xv mask, f32xv a, f32xv b) {
    return (f32xv)(((i32xv)a & mask) | ((i32xv)b & ~mask));
}

/* logit_clean of VL logits. */
ALWAYS_INLINE f32xv vclean(f32xv x) {
    return vselect(x != x, vsplat(-INFINITY), vselect(x == INFINITY, vsplat(FLT_MAX), x));
}

/* The largest logit_clean(l[i]) over l[0, n) (-inf when none is finite), VL at a time; the
 * cleaned values go to out unless it is NULL (it may be l), and how many are finite to
 * *n_finite unless it is NULL. */
VOCAB_PASS static float clean_max(const float *l, float *out, int32_t n, int32_t *n_finite) {
    f32xv m = vsplat(-INFINITY);
    i32xv count = {0};
    int32_t i = 0;
    for (; i + VL <= n; i += VL) {
        const f32xv x = vclean(vload(l + i));
        m = vselect(m > x, m, x);
        count -= x > -INFINITY; /* true lanes are -1 */
        if (out) memcpy(out + i, &x, sizeof x);
    }
    float best = -INFINITY; /* no NaN is left: the largest, whatever the order */
    for (int k = 0; k < VL; k++) best = fmaxf(best, m[k]);
    int32_t finite = vsum_i(count);
    for (; i < n; i++) {
        const float c = logit_clean(l[i]);
        if (out) out[i] = c;
        best = fmaxf(best, c);
        finite += c > -INFINITY;
    }
    if (n_finite) *n_finite = finite;
    return best;
}

static bool penalties_on(const sampler_params *p) {
    return p->repeat_last_n != 0 &&
           (p->repeat_penalty != 1 || p->frequency_penalty != 0 || p->presence_penalty != 0);
}

/* Steps 1 and 2 (bias and penalties) into out, which may be logits, and returns out; with
 * neither to apply returns logits as they are (the caller's clean then makes the only copy).
 * NULL on a history token outside the vocabulary. The caller cleans. */
static const float *bias_and_penalise(sampler *s, const float *logits, const int32_t *history,
                                      size_t n_history, float *out) {
    const sampler_params *p = &s->p;
    const int32_t n = s->n_vocab;
    const bool penalise = penalties_on(p) && n_history > 0;
    if (!s->bias && !penalise) return logits;
    if (s->bias) /* the copy and the bias in one pass */
        add_bias(out, logits, s->bias, n);
    else if (out != logits)
        memcpy(out, logits, (size_t)n * sizeof *out);
    if (penalise) {
        size_t w = n_history;
        if (p->repeat_last_n > 0 && (size_t)p->repeat_last_n < n_history)
            w = (size_t)p->repeat_last_n;
        const int32_t *win = history + (n_history - w);
        /* Check everything before counting so an error leaves count[] all zero. */
        for (size_t i = 0; i < w; i++)
            if (win[i] < 0 || win[i] >= n) {
                err_set("sampler: history token %d at position %zu is outside the vocabulary "
                        "(%d tokens)",
                        (int)win[i], n_history - w + i, (int)n);
                return NULL;
            }
        for (size_t i = 0; i < w; i++) s->count[win[i]]++;
        /* Each distinct token is penalised once, at its first occurrence, and its count is
         * zeroed there, which also marks it done. */
        for (size_t i = 0; i < w; i++) {
            int32_t t = win[i], c = s->count[t];
            if (c == 0) continue;
            float l = out[t];
            if (p->repeat_penalty != 1) l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
            out[t] = l - ((float)c * p->frequency_penalty + p->presence_penalty);
            s->count[t] = 0;
        }
    }
    return out;
}

int sampler_adjust_logits(sampler *s, const float *logits, const int32_t *history,
                          size_t n_history, float *out) {
    const float *adjusted = bias_and_penalise(s, logits, history, n_history, out);
    if (!adjusted) return -1;
    clean_max(adjusted, out, s->n_vocab, NULL);
    return 0;
}

/* Ranking used by every cut: higher logit first, then lower id. A strict total order, so the
 * k-th token (and any threshold) is unique. Probabilities are monotone in the logit, so "most
 * likely" for top-p is the same ranking. */
static bool ranks_before(const float *v, int32_t a, int32_t b) {
    return v[a] > v[b] || (v[a] == v[b] && a < b);
}

/* Moves idx[piv] to its ranked place within idx[lo, hi): tokens ranking before it to its left,
 * the rest to its right. Returns that place. */
static int32_t partition(const float *v, int32_t *idx, int32_t lo, int32_t hi, int32_t piv) {
    int32_t pv = idx[piv], store = lo;
    idx[piv] = idx[hi - 1];
    for (int32_t i = lo; i < hi - 1; i++) {
        if (ranks_before(v, idx[i], pv)) {
            int32_t t = idx[i];
            idx[i] = idx[store];
            idx[store++] = t;
        }
    }
    idx[hi - 1] = idx[store];
    idx[store] = pv;
    return store;
}

/* A pseudo-random pivot so no input order makes selection quadratic; its own fixed stream, so
 * selection never touches the sampling RNG. */
static int32_t pick_pivot(rng *st, int32_t lo, int32_t hi) {
    return lo + (int32_t)rng_below(st, (uint64_t)(hi - lo));
}

/* The token of rank k (0-based) among idx[0, n); reorders idx. */
static int32_t select_rank(const float *v, int32_t *idx, int32_t n, int32_t k) {
    rng st = {0};
    int32_t lo = 0, hi = n;
    for (;;) {
        int32_t pos = partition(v, idx, lo, hi, pick_pivot(&st, lo, hi));
        if (pos == k) return idx[pos];
        if (pos > k) hi = pos;
        else lo = pos + 1;
    }
}

/* The lowest-ranked token of the shortest top-ranked run of idx[0, n) whose mass (sum of p)
 * reaches need; the whole run when rounding leaves it short. Reorders idx. */
static int32_t select_mass(const float *v, const float *p, int32_t *idx, int32_t n, double need) {
    rng st = {0};
    int32_t lo = 0, hi = n;
    for (;;) {
        int32_t pos = partition(v, idx, lo, hi, pick_pivot(&st, lo, hi));
        double left = 0;
        for (int32_t i = lo; i < pos; i++) left += p[idx[i]];
        if (pos > lo && left >= need) {
            hi = pos;
            continue;
        }
        need -= left;
        if (p[idx[pos]] >= need || pos + 1 >= hi) return idx[pos];
        need -= p[idx[pos]];
        lo = pos + 1;
    }
}

/* Both cuts first bucket the candidates by how far their logit is below the best one (a pass
 * of cheap arithmetic), find the bucket the threshold falls in, list the candidates down to
 * that bucket (usually few), and run the selection above only on the threshold bucket's
 * tokens. Higher buckets hold strictly higher logits, so this finds the same threshold that a
 * selection over all candidates would. */
static int bucket_of(float lmax, float l) {
    float x = (lmax - l) * SAMPLER_BUCKETS_PER_UNIT;
    return x < SAMPLER_BUCKETS - 1 ? (int)x : SAMPLER_BUCKETS - 1;
}

/* The first i with v[i] == x (there is one), VL at a time. */
VOCAB_PASS static int32_t first_of(const float *v, int32_t n, float x) {
    int32_t i = 0;
    while (i + VL <= n && !vany(vload(v + i) == x)) i += VL;
    while (v[i] != x) i++;
    return i;
}

/* Lanes of x in buckets 0..b below lmax (bucket_of(lmax, x) <= b), or the finite ones when b is
 * the last bucket: the same float arithmetic as bucket_of, so exactly the tokens it puts there
 * (for x >= 0, (int)x <= b exactly when x < b + 1). */
ALWAYS_INLINE i32xv in_buckets(f32xv x, float lmax, int b) {
    if (b >= SAMPLER_BUCKETS - 1) return x > -INFINITY;
    return (lmax - x) * SAMPLER_BUCKETS_PER_UNIT < (float)(b + 1);
}

static bool in_bucket(float x, float lmax, int b) {
    return b >= SAMPLER_BUCKETS - 1 ? x > -INFINITY : bucket_of(lmax, x) <= b;
}

/* How many tokens lie in buckets 0..b (see in_buckets), counted VL at a time. */
VOCAB_PASS static int32_t count_within(const float *v, int32_t n_vocab, float lmax, int b) {
    i32xv count = {0};
    int32_t i = 0;
    for (; i + VL <= n_vocab; i += VL) count -= in_buckets(vload(v + i), lmax, b); /* true lanes are -1 */
    int32_t n = vsum_i(count);
    for (; i < n_vocab; i++) n += in_bucket(v[i], lmax, b);
    return n;
}

/* Lists the tokens in buckets 0..b ascending in ids; returns how many. */
VOCAB_PASS static int32_t list_within(const float *v, int32_t n_vocab, float lmax, int b, int32_t *ids) {
    int32_t n = 0, i = 0;
    for (; i + VL <= n_vocab; i += VL) {
        const i32xv m = in_buckets(vload(v + i), lmax, b);
        if (!vany(m)) continue;
        for (int l = 0; l < VL; l++)
            if (m[l]) ids[n++] = i + l;
    }
    for (; i < n_vocab; i++)
        if (in_bucket(v[i], lmax, b)) ids[n++] = i;
    return n;
}

/* Lists the n candidates in buckets 0..b in s->near (ascending) and those in bucket b in
 * s->sel; returns how many are in b and sets *n_near. */
static int32_t collect_through(sampler *s, int32_t n, float lmax, int b, int32_t *n_near) {
    int32_t nn = 0, m = 0;
    for (int32_t j = 0; j < n; j++) {
        int32_t t = s->cand[j];
        int bt = bucket_of(lmax, s->work[t]);
        if (bt > b) continue;
        s->near[nn++] = t;
        if (bt == b) s->sel[m++] = t;
    }
    *n_near = nn;
    return m;
}

/* Makes the candidates the listed ones (s->near) that rank at or before token t; returns how
 * many. Order is preserved. */
static int32_t keep_through(sampler *s, int32_t n_near, int32_t t) {
    int32_t m = 0;
    for (int32_t j = 0; j < n_near; j++)
        if (s->near[j] == t || ranks_before(s->work, s->near[j], t)) s->cand[m++] = s->near[j];
    return m;
}

/* Keeps the top k of the n candidates. */
static int32_t cut_top_k(sampler *s, int32_t n, float lmax, int32_t k) {
    int32_t *cnt = s->bucket_n, m, n_near;
    int b = 0;
    memset(cnt, 0, sizeof s->bucket_n);
    for (int32_t j = 0; j < n; j++) cnt[bucket_of(lmax, s->work[s->cand[j]])]++;
    k--; /* now the rank (0-based) of the last token kept */
    for (; k >= cnt[b]; b++) k -= cnt[b];
    m = collect_through(s, n, lmax, b, &n_near);
    return keep_through(s, n_near, select_rank(s->work, s->sel, m, k));
}

/* Keeps the shortest top-ranked run of the n candidates whose probability mass reaches need. */
static int32_t cut_top_p(sampler *s, int32_t n, float lmax, double need) {
    const int deepest = SAMPLER_BUCKETS - 1;
    int32_t m, n_near;
    int b, end = deepest;
    memset(s->bucket_n, 0, sizeof s->bucket_n);
    memset(s->bucket_mass, 0, sizeof s->bucket_mass);
    for (int32_t j = 0; j < n; j++) {
        int32_t t = s->cand[j];
        int bt = bucket_of(lmax, s->work[t]);
        s->bucket_n[bt]++;
        /* The deepest bucket's mass is never needed: the walk below stops there anyway. */
        if (bt < deepest) s->bucket_mass[bt] += s->prob[t];
    }
    /* The walk ends at the last bucket holding anything (bucket 0 holds the best token); if
     * rounding leaves the mass short there, select_mass keeps that whole bucket. */
    while (!s->bucket_n[end]) end--;
    for (b = 0; b < end && s->bucket_mass[b] < need; b++) need -= s->bucket_mass[b];
    m = collect_through(s, n, lmax, b, &n_near);
    return keep_through(s, n_near, select_mass(s->work, s->prob, s->sel, m, need));
}

/* e^x in each lane, for x <= 0 or -inf. Relative error about 1e-7; e^0 is exactly 1; below
 * -87 the answer is 0 (no subnormals), so a banned token's probability is exactly 0. Cody-Waite
 * reduction x = n ln2 + r with |r| <= ln2/2, then a degree-7 Taylor polynomial times 2^n. */
ALWAYS_INLINE f32xv exp_nonpos(f32xv x) {
    i32xv tiny = x < -87.0f;
    f32xv xc = (f32xv)((i32xv)x & ~tiny);
    f32xv fn = (xc * 1.44269504f + 0x1.8p23f) - 0x1.8p23f; /* round to nearest integer */
    f32xv r = (xc - fn * 0.693359375f) - fn * -2.12194440e-4f;
    f32xv e = r * (1.0f / 5040) + 1.0f / 720;
    e = e * r + 1.0f / 120;
    e = e * r + 1.0f / 24;
    e = e * r + 1.0f / 6;
    e = e * r + 0.5f;
    e = e * r + 1.0f;
    e = e * r + 1.0f;
    f32xv scale = (f32xv)((__builtin_convertvector(fn, i32xv) + 127) << 23);
    return (f32xv)((i32xv)(e * scale) & ~tiny);
}

/* prob[t] = e^((v[t] - lmax) / temp) for the n tokens ids[0, n), or for tokens 0..n-1 when
 * ids is NULL; returns the sum. It is summed in blocks of DRAW_BLOCK tokens, each block's sum
 * (lanes in a fixed order) going to blocks[] unless that is NULL, and the block sums added in
 * order. */
VOCAB_PASS static double softmax_num(const float *v, float *prob, const int32_t *ids, int32_t n,
                                     float lmax, float temp, double *blocks) {
    double total = 0;
    for (int32_t b0 = 0; b0 < n; b0 += DRAW_BLOCK) {
        const int32_t end = n - b0 < DRAW_BLOCK ? n : b0 + DRAW_BLOCK;
        f64xh acc[2] = {{0}, {0}};
        for (int32_t j = b0; j < end; j += VL) {
            const int lanes = end - j < VL ? (int)(end - j) : VL;
            f32xv x;
            if (!ids && lanes == VL) {
                x = vload(v + j);
            } else {
                for (int l = 0; l < VL; l++) /* -inf pads: e^-inf is 0 and adds nothing */
                    x[l] = l < lanes ? v[ids ? ids[j + l] : j + l] : -INFINITY;
            }
            x -= lmax;
            if (temp != 1) x /= temp; /* x / 1 is x: the API's default temperature skips the divide */
            const f32xv e = exp_nonpos(x);
            if (!ids && lanes == VL) {
                memcpy(prob + j, &e, sizeof e);
            } else {
                for (int l = 0; l < lanes; l++) prob[ids ? ids[j + l] : j + l] = e[l];
            }
            vacc(acc, e);
        }
        const double sum = vacc_sum(acc);
        if (blocks) blocks[b0 / DRAW_BLOCK] = sum;
        total += sum;
    }
    return total;
}

/* The token r falls on when the n candidates' masses (prob[ids[j]], or prob[j] when ids is
 * NULL) are laid end to end in order, r in [0, their sum): with blocks (softmax_num's), whole
 * blocks before the one r falls in are passed over by their sums, then tokens are added one by
 * one. Tokens without mass are never the answer; when rounding leaves r beyond the last
 * addition, the last token with mass is, or `fallback` if none was met. */
static int32_t draw(const float *prob, const int32_t *ids, int32_t n, const double *blocks, double r,
                    int32_t fallback) {
    double acc = 0;
    int32_t j = 0, last = fallback;
    if (blocks) {
        const int32_t n_blocks = (n + DRAW_BLOCK - 1) / DRAW_BLOCK;
        int32_t k = 0;
        for (; k + 1 < n_blocks && !(r < acc + blocks[k]); k++) acc += blocks[k];
        j = k * DRAW_BLOCK;
    }
    for (; j < n; j++) {
        const int32_t t = ids ? ids[j] : j;
        if (prob[t] <= 0) continue;
        acc += prob[t];
        last = t;
        if (r < acc) return t;
    }
    return last;
}

int32_t sampler_sample(sampler *s, const float *logits, const int32_t *history,
                       size_t n_history) {
    const sampler_params *p = &s->p;
    float *v = s->work, *prob = s->prob, lmax = -INFINITY;
    int32_t *cand = s->cand, n = 0, n_finite, best = -1;
    double total, mass;
    const bool greedy = p->temperature == 0;
    s->n_last = 0;
    s->dense = false;
    const float *adjusted = bias_and_penalise(s, logits, history, n_history, v);
    if (!adjusted) return -1;
    lmax = clean_max(adjusted, v, s->n_vocab, &n_finite);
    if (n_finite == 0) {
        err_set("sampler: no token has a finite logit (all %d are -inf or NaN after bias and "
                "penalties)",
                (int)s->n_vocab);
        return -1;
    }
    best = first_of(v, s->n_vocab, lmax); /* the lowest id with the largest logit */
    if (greedy) {
        cand[0] = best;
        prob[best] = 1;
        s->n_last = 1;
        s->mass_last = 1;
        return best;
    }

    /* No cut at all (the API's defaults): every finite token is a candidate, the softmax runs
     * over the whole vocabulary and the draw passes over its blocks; no list is made. */
    const bool cut_k = p->top_k > 0 && p->top_k < n_finite;
    s->dense = !cut_k && p->top_p >= 1 && p->min_p <= 0;
    if (s->dense) {
        s->n_last = n_finite;
        s->mass_last = softmax_num(v, prob, NULL, s->n_vocab, lmax, p->temperature, s->blocks);
        return draw(prob, NULL, s->n_vocab, s->blocks, uniform01(s) * s->mass_last, best);
    }

    /* the candidates: every finite token, or before a top-k cut only those of the fewest
     * leading buckets that hold k tokens (the cut keeps no token below them) */
    int b = SAMPLER_BUCKETS - 1;
    for (int t = 31; cut_k && t < SAMPLER_BUCKETS - 1; t = 4 * t + 3)
        if (count_within(v, s->n_vocab, lmax, t) >= p->top_k) {
            b = t;
            break;
        }
    n = list_within(v, s->n_vocab, lmax, b, cand);
    if (cut_k) n = cut_top_k(s, n, lmax, p->top_k);

    /* Softmax numerators relative to the best token, whose p is exactly 1; the sum stays
     * unnormalised since only ratios matter from here on. Without a top-k cut every token is
     * a candidate, and the dense loop is faster. */
    if (n == n_finite) total = softmax_num(v, prob, NULL, s->n_vocab, lmax, p->temperature, NULL);
    else total = softmax_num(v, prob, cand, n, lmax, p->temperature, NULL);

    if (p->top_p < 1) n = cut_top_p(s, n, lmax, p->top_p * total);
    if (p->min_p > 0) {
        int32_t m = 0;
        for (int32_t j = 0; j < n; j++)
            if (prob[cand[j]] >= p->min_p) cand[m++] = cand[j];
        n = m;
    }

    mass = total;
    if (p->top_p < 1 || p->min_p > 0) {
        mass = 0;
        for (int32_t j = 0; j < n; j++) mass += prob[cand[j]];
    }
    s->n_last = n;
    s->mass_last = mass;
    /* r can round up to mass itself; then the last token with any mass is the answer. The
     * best token is always kept and has p == 1, so there is one. */
    return draw(prob, cand, n, NULL, uniform01(s) * mass, best);
}

int32_t sampler_last_candidates(const sampler *s, int32_t *ids, float *probs, int32_t max) {
    /* cand[], or without cuts (never listed) every finite token, ascending: the n_last of them */
    for (int32_t t = 0, j = 0; j < s->n_last && j < max; t++) {
        const int32_t id = s->dense ? t : s->cand[j];
        if (s->dense && !(s->work[t] > -INFINITY)) continue;
        if (ids) ids[j] = id;
        if (probs) probs[j] = (float)(s->prob[id] / s->mass_last);
        j++;
    }
    return s->n_last;
}

/* The sum of e^(clean(l[i]) - m) over l[0, n) in double, VL at a time in a fixed order. */
VOCAB_PASS static double sum_exp(const float *l, int32_t n, float m) {
    f64xh acc[2] = {{0}, {0}};
    for (int32_t i = 0; i < n; i += VL) {
        const f32xv x = n - i >= VL ? vload(l + i) : vload_tail(l + i, n - i); /* pads: e^-inf adds 0 */
        vacc(acc, exp_nonpos(vclean(x) - m));
    }
    return vacc_sum(acc);
}

/* The n_top largest logit_clean(l[i]) into top[] (logits, not yet logprobs), largest first,
 * lower ids first on ties, -inf left out; returns how many. Insertion into a short sorted list;
 * once it is full, VL logits none above its last are passed over at once. */
VOCAB_PASS static int32_t top_logits(const float *l, int32_t n, sampler_logprob *top, int32_t n_top) {
    int32_t k = 0;
    for (int32_t i = 0; i < n && n_top > 0; i++) {
        if (k == n_top && i % VL == 0 && i + VL <= n && !vany(vclean(vload(l + i)) > top[k - 1].logprob)) {
            i += VL - 1;
            continue;
        }
        const float c = logit_clean(l[i]);
        if (c == -INFINITY || (k == n_top && !(c > top[k - 1].logprob))) continue;
        int32_t j = k < n_top ? k++ : n_top - 1;
        for (; j > 0 && c > top[j - 1].logprob; j--) top[j] = top[j - 1];
        top[j] = (sampler_logprob){.id = i, .logprob = c};
    }
    return k;
}

int sampler_logprobs(const float *logits, int32_t n_vocab, int32_t token, float *token_logprob,
                     sampler_logprob *top, int32_t n_top) {
    float m = -INFINITY;
    double sum = 0, log_sum;
    int32_t k = 0;
    if (n_vocab <= 0) return err_set("sampler_logprobs: n_vocab %d must be > 0", (int)n_vocab);
    if (token < -1 || token >= n_vocab)
        return err_set("sampler_logprobs: token %d is outside the vocabulary (%d tokens)",
                       (int)token, (int)n_vocab);
    if (n_top < 0 || n_top > SAMPLER_MAX_TOP_LOGPROBS)
        return err_set("sampler_logprobs: n_top %d must be in [0, %d]", (int)n_top,
                       SAMPLER_MAX_TOP_LOGPROBS);
    m = clean_max(logits, NULL, n_vocab, NULL);
    if (m == -INFINITY)
        return err_set("sampler_logprobs: no token has a finite logit (all %d are -inf or NaN)",
                       (int)n_vocab);
    /* e^x in float (relative error ~1e-7, as the sampler's softmax), summed in double: below
     * what a float logprob resolves; libm's double exp took ~6 ns per logit */
    sum = sum_exp(logits, n_vocab, m);
    log_sum = log(sum);
    /* logprob = (l - m) - log_sum keeps the small terms that l - (m + log_sum) would lose
     * when m is huge. */
    if (token >= 0 && token_logprob)
        *token_logprob = (float)(((double)logit_clean(logits[token]) - m) - log_sum);
    k = top_logits(logits, n_vocab, top, n_top);
    for (int32_t j = 0; j < k; j++)
        top[j].logprob = (float)(((double)top[j].logprob - m) - log_sum);
    return k;
}
