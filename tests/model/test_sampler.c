/* Token sampler: greedy and tie rules, seeding, the drawn distribution (chi-square against the
 * expected one, fixed seeds so nothing flakes), each cut and their order, exact penalty and
 * bias arithmetic, parameter validation, non-finite logits, a 152k-token vocabulary against a
 * brute-force reference, and logprobs. */
#include "test.h"

#include "base/err.h"
#include "model/sampler.h"

#include <math.h>
#include <stdlib.h>

/* Test-side generator for logits, independent of the sampler's RNG. */
static uint64_t trng_state;
static double trng(void) {
    uint64_t z = (trng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 33)) * 0xff51afd7ed558ccdull;
    z = (z ^ (z >> 33)) * 0xc4ceb9fe1a85ec53ull;
    return (double)((z ^ (z >> 33)) >> 11) * 0x1.0p-53;
}

static sampler_params params(float temp, int32_t top_k, float top_p, float min_p) {
    sampler_params p;
    sampler_params_default(&p);
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    return p;
}

static sampler *mk(float temp, int32_t top_k, float top_p, float min_p, int32_t n_vocab,
                   uint64_t seed) {
    sampler_params p = params(temp, top_k, top_p, min_p);
    p.seed = seed;
    sampler *s = sampler_new(&p, n_vocab);
    CHECK_MSG(s != NULL, "sampler_new: %s", err_msg());
    return s;
}

/* Logits whose softmax at temperature 1 is probs[]. */
static void logits_of(const double *probs, float *logits, int n) {
    for (int i = 0; i < n; i++) logits[i] = probs[i] > 0 ? (float)log(probs[i]) : -INFINITY;
}

static void draw(sampler *s, const float *logits, int n, int draws, int *counts) {
    memset(counts, 0, (size_t)n * sizeof *counts);
    for (int d = 0; d < draws; d++) {
        int32_t t = sampler_sample(s, logits, NULL, 0);
        CHECK_MSG(t >= 0 && t < n, "sampled %d: %s", (int)t, err_msg());
        if (t >= 0 && t < n) counts[t]++;
    }
}

/* Pearson chi-square of counts against probabilities expect[] (need not sum to 1); a count
 * where nothing is expected makes it infinite. */
static double chi2(const int *counts, const double *expect, int n, int draws) {
    double sum = 0, x = 0;
    for (int i = 0; i < n; i++) sum += expect[i];
    for (int i = 0; i < n; i++) {
        double e = draws * expect[i] / sum;
        if (e == 0) {
            if (counts[i]) return INFINITY;
            continue;
        }
        x += (counts[i] - e) * (counts[i] - e) / e;
    }
    return x;
}

/* 20 is beyond the 0.1% tail for up to 4 degrees of freedom; a wrong distribution over
 * tens of thousands of draws lands in the hundreds or more. */
#define CHI2_LIMIT 20.0

static void check_dist(sampler *s, const float *logits, const double *expect, int n, int draws) {
    int counts[16];
    draw(s, logits, n, draws, counts);
    double x = chi2(counts, expect, n, draws);
    CHECK_MSG(x < CHI2_LIMIT, "chi2 %.2f; counts %d %d %d %d (expected ratios %.3f %.3f %.3f %.3f)",
              x, counts[0], counts[1], counts[2], n > 3 ? counts[3] : 0, expect[0], expect[1],
              expect[2], n > 3 ? expect[3] : 0);
}

TEST(sampler_greedy_argmax_lowest_id_on_ties) {
    float l[5] = {1, 5, 3, 5, -2};
    sampler *s = mk(0, 40, 0.5f, 0.3f, 5, 1);
    CHECK_EQ_INT(sampler_sample(s, l, NULL, 0), 1);
    l[1] = 4;
    CHECK_EQ_INT(sampler_sample(s, l, NULL, 0), 3);
    l[0] = NAN;
    l[3] = NAN;
    CHECK_EQ_INT(sampler_sample(s, l, NULL, 0), 1);
    sampler_free(s);
}

TEST(sampler_top_k_1_equals_greedy) {
    enum { N = 1000 };
    static float l[N];
    sampler *g = mk(0, 0, 1, 0, N, 1), *k1 = mk(1.5f, 1, 1, 0, N, 2);
    trng_state = 7;
    for (int round = 0; round < 50; round++) {
        /* Few distinct values, so the maximum is usually tied. */
        for (int i = 0; i < N; i++) l[i] = (float)(int)(trng() * 20);
        int32_t want = 0;
        for (int i = 1; i < N; i++)
            if (l[i] > l[want]) want = i;
        CHECK_EQ_INT(sampler_sample(g, l, NULL, 0), want);
        CHECK_EQ_INT(sampler_sample(k1, l, NULL, 0), want);
    }
    sampler_free(g);
    sampler_free(k1);
}

TEST(sampler_top_k_ties_keep_lower_ids) {
    float l[5] = {1, 3, 3, 3, 0};
    int counts[5];
    sampler *s = mk(1, 2, 1, 0, 5, 3);
    draw(s, l, 5, 2000, counts);
    CHECK_EQ_INT(counts[0] + counts[3] + counts[4], 0);
    CHECK(counts[1] > 900 && counts[2] > 900);
    sampler_free(s);
}

TEST(sampler_seed_gives_same_sequence) {
    enum { N = 1000, T = 500 };
    static float l[N], flat[N];
    static int32_t a[T];
    trng_state = 11;
    for (int i = 0; i < N; i++) l[i] = (float)(trng() * 2);
    sampler *s1 = mk(1, 0, 1, 0, N, 42), *s2 = mk(1, 0, 1, 0, N, 42), *s3 = mk(1, 0, 1, 0, N, 43);
    int same = 0, differ = 0;
    for (int t = 0; t < T; t++) {
        a[t] = sampler_sample(s1, l, NULL, 0);
        if (sampler_sample(s2, l, NULL, 0) == a[t]) same++;
        if (sampler_sample(s3, l, NULL, 0) != a[t]) differ++;
    }
    CHECK_EQ_INT(same, T);
    /* Two independent draws over ~1000 tokens rarely agree. */
    CHECK_MSG(differ > T * 9 / 10, "seeds 42 and 43 differ at only %d of %d draws", differ, T);
    sampler_set_seed(s3, 42);
    same = 0;
    for (int t = 0; t < T; t++) same += sampler_sample(s3, l, NULL, 0) == a[t];
    CHECK_EQ_INT(same, T);

    /* With equal logits every p is exactly 1, so token = floor(u * 1000) and the sequence pins
     * the generator itself: xoshiro256** seeded by splitmix64(42), checked against an
     * independent implementation. */
    static const int32_t golden[10] = {83, 378, 680, 924, 991, 769, 719, 850, 761, 583};
    sampler_set_seed(s1, 42);
    for (int t = 0; t < 10; t++) CHECK_EQ_INT(sampler_sample(s1, flat, NULL, 0), golden[t]);
    sampler_free(s1);
    sampler_free(s2);
    sampler_free(s3);
}

TEST(sampler_distribution_matches_softmax) {
    const double p[4] = {0.1, 0.2, 0.3, 0.4};
    float l[4];
    logits_of(p, l, 4);
    sampler *s = mk(1, 0, 1, 0, 4, 5);
    check_dist(s, l, p, 4, 40000);
    sampler_free(s);
    /* Temperature t raises each probability to the power 1/t. */
    const double sq[4] = {0.01, 0.04, 0.09, 0.16};
    const double rt[4] = {sqrt(0.1), sqrt(0.2), sqrt(0.3), sqrt(0.4)};
    s = mk(0.5f, 0, 1, 0, 4, 6);
    check_dist(s, l, sq, 4, 40000);
    sampler_free(s);
    s = mk(2, 0, 1, 0, 4, 7);
    check_dist(s, l, rt, 4, 40000);
    sampler_free(s);
    /* A uniform sampler must fail the same test, or the test proves nothing. */
    int counts[4] = {10000, 10000, 10000, 10000};
    CHECK(chi2(counts, p, 4, 40000) > 1000);
}

/* Without cuts the draw passes over whole blocks of tokens by their sums: mass spread over a
 * vocabulary of many blocks, most of it with none (logits below e^-87 of the best), must
 * still come out in proportion, and only where it is. */
TEST(sampler_draw_across_blocks) {
    enum { N = 1000 };
    static const int32_t where[4] = {64, 511, 512, 999}; /* block edges, the last token */
    const double p[4] = {0.1, 0.2, 0.3, 0.4};
    float l[N], lp[4];
    static int counts[N];
    logits_of(p, lp, 4);
    for (int32_t i = 0; i < N; i++) l[i] = -100;
    for (int i = 0; i < 4; i++) l[where[i]] = lp[i];
    sampler *s = mk(1, 0, 1, 0, N, 27);
    draw(s, l, N, 40000, counts);
    int got[4], elsewhere = 0;
    for (int i = 0; i < 4; i++) got[i] = counts[where[i]];
    for (int32_t i = 0; i < N; i++) elsewhere += counts[i];
    elsewhere -= got[0] + got[1] + got[2] + got[3];
    CHECK_MSG(elsewhere == 0, "%d draws of tokens without mass", elsewhere);
    double x = chi2(got, p, 4, 40000);
    CHECK_MSG(x < CHI2_LIMIT, "chi2 %.2f; counts %d %d %d %d", x, got[0], got[1], got[2], got[3]);
    CHECK_EQ_INT(sampler_last_candidates(s, NULL, NULL, 0), N); /* every finite token */
    sampler_free(s);
}

TEST(sampler_top_p) {
    const double p[4] = {0.5, 0.3, 0.15, 0.05};
    const double keep2[4] = {0.5, 0.3, 0, 0}, keep3[4] = {0.5, 0.3, 0.15, 0};
    float l[4];
    logits_of(p, l, 4);
    sampler *s = mk(1, 0, 0.7f, 0, 4, 8); /* 0.5 < 0.7 <= 0.8 */
    check_dist(s, l, keep2, 4, 20000);
    sampler_free(s);
    s = mk(1, 0, 0.85f, 0, 4, 9); /* 0.8 < 0.85 <= 0.95 */
    check_dist(s, l, keep3, 4, 20000);
    sampler_free(s);
    s = mk(1, 0, 0.45f, 0, 4, 9); /* the top token alone reaches 0.45 */
    check_dist(s, l, (const double[4]){1, 0, 0, 0}, 4, 1000);
    sampler_free(s);

    /* A tiny top_p keeps only the most likely token whatever the logits. */
    enum { N = 500 };
    static float big[N];
    trng_state = 13;
    s = mk(1, 0, 0.001f, 0, N, 10);
    for (int round = 0; round < 200; round++) {
        int32_t want = 0;
        for (int i = 0; i < N; i++) big[i] = (float)(trng() * 3);
        for (int i = 1; i < N; i++)
            if (big[i] > big[want]) want = i;
        CHECK_EQ_INT(sampler_sample(s, big, NULL, 0), want);
    }
    sampler_free(s);
}

TEST(sampler_min_p) {
    const double p[4] = {0.5, 0.3, 0.15, 0.05}; /* ratios to the top: 1, .6, .3, .1 */
    float l[4];
    logits_of(p, l, 4);
    sampler *s = mk(1, 0, 1, 0.2f, 4, 11);
    check_dist(s, l, (const double[4]){0.5, 0.3, 0.15, 0}, 4, 20000);
    sampler_free(s);
    s = mk(1, 0, 1, 0.5f, 4, 12);
    check_dist(s, l, (const double[4]){0.5, 0.3, 0, 0}, 4, 20000);
    sampler_free(s);
    s = mk(1, 0, 1, 1, 4, 12);
    check_dist(s, l, (const double[4]){1, 0, 0, 0}, 4, 1000);
    sampler_free(s);
}

/* Cuts whose order is observable: top-k before top-p (top-p sees the renormalised top-k), and
 * temperature before top-p and min-p (they see the tempered distribution). */
TEST(sampler_order_of_operations) {
    const double p[4] = {0.4, 0.3, 0.2, 0.1};
    float l[4];
    logits_of(p, l, 4);
    /* top_p 0.5 alone keeps {0, 1}; after top_k 2 the top token has 0.4/0.7 > 0.5 alone. */
    sampler *s = mk(1, 0, 0.5f, 0, 4, 13);
    check_dist(s, l, (const double[4]){0.4, 0.3, 0, 0}, 4, 20000);
    sampler_free(s);
    s = mk(1, 2, 0.5f, 0, 4, 14);
    check_dist(s, l, (const double[4]){1, 0, 0, 0}, 4, 2000);
    sampler_free(s);
    /* At temperature 0.5 the top token has .16/.30 > 0.5 alone. */
    s = mk(0.5f, 0, 0.5f, 0, 4, 15);
    check_dist(s, l, (const double[4]){1, 0, 0, 0}, 4, 2000);
    sampler_free(s);
    /* min_p 0.3: ratios 1, .75, .5, .25 at t = 1 keep three; 1, .5625, .25, .0625 at t = 0.5
     * keep two. */
    s = mk(1, 0, 1, 0.3f, 4, 16);
    check_dist(s, l, (const double[4]){0.4, 0.3, 0.2, 0}, 4, 20000);
    sampler_free(s);
    s = mk(0.5f, 0, 1, 0.3f, 4, 17);
    check_dist(s, l, (const double[4]){0.16, 0.09, 0, 0}, 4, 20000);
    sampler_free(s);
}

static void check_candidates(sampler *s, const float *l, const int32_t *want, int32_t n_want) {
    int32_t ids[16];
    CHECK(sampler_sample(s, l, NULL, 0) >= 0);
    int32_t got = sampler_last_candidates(s, ids, NULL, 16);
    CHECK_EQ_INT(got, n_want);
    for (int32_t j = 0; j < got && j < n_want; j++) CHECK_EQ_INT(ids[j], want[j]);
}

/* Logits a thousandth apart share one bucket, so the selection inside it decides. Ranked:
 * 1, 3, 4, 6, 0, 7, 2, 5 with p ~ 1 - 0.001 * rank. */
TEST(sampler_cuts_inside_one_bucket) {
    const float l[8] = {-0.004f, 0, -0.006f, -0.001f, -0.002f, -0.007f, -0.003f, -0.005f};
    sampler *s = mk(1, 3, 1, 0, 8, 20);
    check_candidates(s, l, (const int32_t[]){1, 3, 4}, 3);
    sampler_free(s);
    s = mk(1, 5, 1, 0, 8, 21);
    check_candidates(s, l, (const int32_t[]){0, 1, 3, 4, 6}, 5);
    sampler_free(s);
    s = mk(1, 0, 0.3f, 0, 8, 22); /* mass 2.997 of 7.972 reaches 30% at the third */
    check_candidates(s, l, (const int32_t[]){1, 3, 4}, 3);
    sampler_free(s);
    s = mk(1, 0, 0.6f, 0, 8, 23); /* 4.990 reaches 60% at the fifth */
    check_candidates(s, l, (const int32_t[]){0, 1, 3, 4, 6}, 5);
    sampler_free(s);
}

TEST(sampler_last_candidates_reports_distribution) {
    const double p[4] = {0.1, 0.2, 0.3, 0.4};
    float l[4], probs[4];
    int32_t ids[4];
    logits_of(p, l, 4);
    sampler *s = mk(1, 0, 1, 0, 4, 24);
    CHECK(sampler_sample(s, l, NULL, 0) >= 0);
    CHECK_EQ_INT(sampler_last_candidates(s, ids, probs, 4), 4);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(ids[i], i);
        CHECK_MSG(fabs(probs[i] - p[i]) < 1e-6, "p[%d] = %.8f", i, probs[i]);
    }
    /* Probabilities stay accurate far down; below e^-87 they are 0, and -inf is no candidate. */
    const float far[7] = {0, -20, -50, -80, -85, -INFINITY, -90};
    float fp[7];
    int32_t fid[7];
    sampler *f = mk(1, 0, 1, 0, 7, 26);
    CHECK(sampler_sample(f, far, NULL, 0) == 0);
    CHECK_EQ_INT(sampler_last_candidates(f, fid, fp, 7), 6);
    for (int i = 0; i < 5; i++) {
        double want = exp((double)far[i]);
        CHECK_EQ_INT(fid[i], i);
        CHECK_MSG(fabs(fp[i] - want) <= 1e-6 * want, "p[%d] = %g, want %g", i, fp[i], want);
    }
    CHECK(fid[5] == 6 && fp[5] == 0);
    sampler_free(f);
    ids[1] = -7;
    CHECK_EQ_INT(sampler_last_candidates(s, ids, NULL, 1), 4); /* writes one, reports all */
    CHECK_EQ_INT(ids[1], -7);
    const float none[4] = {NAN, NAN, NAN, NAN};
    CHECK_EQ_INT(sampler_sample(s, none, NULL, 0), -1);
    CHECK_EQ_INT(sampler_last_candidates(s, ids, probs, 4), 0);
    sampler_free(s);
    s = mk(0, 0, 1, 0, 4, 25);
    CHECK_EQ_INT(sampler_sample(s, l, NULL, 0), 3);
    CHECK_EQ_INT(sampler_last_candidates(s, ids, probs, 4), 1);
    CHECK(ids[0] == 3 && probs[0] == 1);
    sampler_free(s);
}

TEST(sampler_penalties_exact) {
    sampler_params p = params(0, 0, 1, 0);
    p.repeat_penalty = 2;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    p.repeat_last_n = 4;
    const float l[6] = {2, -2, 1, 0.5f, -1, 3};
    const int32_t hist[7] = {0, 1, 1, 3, 0, 0, 2}; /* window: 3 0 0 2 */
    float out[6];
    sampler *s = sampler_new(&p, 6);
    CHECK(sampler_adjust_logits(s, l, hist, 7, out) == 0);
    /* 0: 2/2 - 2*.5 - .25; 2: 1/2 - .5 - .25; 3: .5/2 - .5 - .25; 1 is outside the window. */
    const float want[6] = {-0.25f, -2, -0.25f, -0.5f, -1, 3};
    for (int i = 0; i < 6; i++)
        CHECK_MSG(out[i] == want[i], "token %d: %g != %g", i, out[i], want[i]);
    sampler_free(s);

    /* Negative logits are multiplied; whole history with -1; in place; repeated calls. */
    p.repeat_last_n = -1;
    p.frequency_penalty = 0;
    p.presence_penalty = 0;
    s = sampler_new(&p, 6);
    float io[6] = {2, -2, 1, 0.5f, -1, 3};
    for (int rep = 0; rep < 2; rep++) {
        float in[6];
        memcpy(in, io, sizeof in);
        CHECK(sampler_adjust_logits(s, in, hist, 7, in) == 0);
        const float want2[6] = {1, -4, 0.5f, 0.25f, -1, 3};
        for (int i = 0; i < 6; i++) CHECK_MSG(in[i] == want2[i], "token %d: %g", i, in[i]);
    }
    /* Penalties come before the greedy pick: 5 in history drops 3 -> 1.5 below token 2. */
    const float g[6] = {0, 0, 2, 0, 0, 3};
    const int32_t h5[1] = {5};
    CHECK_EQ_INT(sampler_sample(s, g, NULL, 0), 5);
    CHECK_EQ_INT(sampler_sample(s, g, h5, 1), 2);
    sampler_free(s);

    /* repeat_last_n 0 disables every penalty. */
    p.repeat_last_n = 0;
    p.frequency_penalty = 3;
    s = sampler_new(&p, 6);
    CHECK(sampler_adjust_logits(s, l, hist, 7, out) == 0);
    CHECK(memcmp(out, l, sizeof out) == 0);
    sampler_free(s);
}

TEST(sampler_history_out_of_range) {
    sampler_params p = params(0, 0, 1, 0);
    p.presence_penalty = 1;
    const float l[4] = {1, 2, 3, 4};
    const int32_t bad[3] = {3, 9, 3}, good[1] = {2};
    float out[4];
    sampler *s = sampler_new(&p, 4);
    CHECK_EQ_INT(sampler_sample(s, l, bad, 3), -1);
    CHECK(strstr(err_msg(), "history token 9 at position 1") != NULL);
    CHECK_EQ_INT(sampler_sample(s, l, (const int32_t[1]){-1}, 1), -1);
    /* The failed call left no counts behind. */
    CHECK(sampler_adjust_logits(s, l, good, 1, out) == 0);
    CHECK(out[3] == 4 && out[2] == 2 && out[1] == 2);
    sampler_free(s);
}

TEST(sampler_logit_bias) {
    sampler_params p = params(0, 0, 1, 0);
    p.repeat_penalty = 2;
    const float l[4] = {-1, 0.25f, 0, 0};
    const int32_t hist[1] = {0};
    float out[4];
    sampler *s = sampler_new(&p, 4);
    CHECK_EQ_INT(sampler_sample(s, l, hist, 1), 1);
    /* Bias before penalty: (-1 + 2) / 2 = 0.5 beats 0.25 (the other order gives 0). */
    CHECK(sampler_set_logit_bias(s, 0, 2) == 0);
    CHECK(sampler_adjust_logits(s, l, hist, 1, out) == 0);
    CHECK(out[0] == 0.5f);
    CHECK_EQ_INT(sampler_sample(s, l, hist, 1), 0);
    CHECK(sampler_set_logit_bias(s, 0, 1) == 0); /* replaces: (-1 + 1) = 0 -> token 1 */
    CHECK_EQ_INT(sampler_sample(s, l, hist, 1), 1);
    CHECK(sampler_set_logit_bias(s, 1, -INFINITY) == 0); /* banned */
    CHECK_EQ_INT(sampler_sample(s, l, hist, 1), 0);
    CHECK(sampler_set_logit_bias(s, 4, 1) == -1);
    CHECK(strstr(err_msg(), "token 4") != NULL);
    CHECK(sampler_set_logit_bias(s, -1, 1) == -1);
    CHECK(sampler_set_logit_bias(s, 2, NAN) == -1);
    CHECK(sampler_set_logit_bias(s, 2, INFINITY) == -1);
    sampler_clear_logit_bias(s);
    CHECK_EQ_INT(sampler_sample(s, l, hist, 1), 1);
    sampler_free(s);

    /* A banned token is never drawn. */
    const double pr[4] = {0.7, 0.1, 0.1, 0.1};
    float lp[4];
    logits_of(pr, lp, 4);
    s = mk(1, 0, 1, 0, 4, 18);
    CHECK(sampler_set_logit_bias(s, 0, -INFINITY) == 0);
    check_dist(s, lp, (const double[4]){0, 1, 1, 1}, 4, 6000);
    sampler_free(s);
}

TEST(sampler_params_validation) {
    sampler_params d;
    sampler_params_default(&d);
    CHECK(d.temperature == 0.8f && d.top_k == 40 && d.top_p == 0.95f && d.min_p == 0.05f);
    CHECK(d.repeat_penalty == 1 && d.frequency_penalty == 0 && d.presence_penalty == 0);
    CHECK(d.seed == SAMPLER_DEFAULT_SEED);
    CHECK(sampler_params_check(&d) == 0);
    struct {
        sampler_params p;
        const char *needle;
    } bad[] = {
        {d, "temperature"}, {d, "temperature"}, {d, "temperature"}, {d, "top_k"},
        {d, "top_p"},       {d, "top_p"},       {d, "top_p"},       {d, "min_p"},
        {d, "min_p"},       {d, "repeat_penalty"}, {d, "repeat_penalty"}, {d, "repeat_last_n"},
        {d, "frequency_penalty"}, {d, "presence_penalty"},
    };
    bad[0].p.temperature = -0.1f;
    bad[1].p.temperature = NAN;
    bad[2].p.temperature = INFINITY;
    bad[3].p.top_k = -1;
    bad[4].p.top_p = 0;
    bad[5].p.top_p = 1.01f;
    bad[6].p.top_p = NAN;
    bad[7].p.min_p = -0.01f;
    bad[8].p.min_p = NAN;
    bad[9].p.repeat_penalty = 0;
    bad[10].p.repeat_penalty = NAN;
    bad[11].p.repeat_last_n = -2;
    bad[12].p.frequency_penalty = NAN;
    bad[13].p.presence_penalty = -INFINITY;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(sampler_params_check(&bad[i].p) == -1, "case %zu accepted", i);
        CHECK_MSG(strstr(err_msg(), bad[i].needle) != NULL, "case %zu: %s", i, err_msg());
        CHECK(sampler_new(&bad[i].p, 10) == NULL);
    }
    sampler_params_check(&bad[0].p);
    CHECK(strstr(err_msg(), "-0.1") != NULL); /* the value is named too */
    CHECK(sampler_new(&d, 0) == NULL);
    CHECK(strstr(err_msg(), "n_vocab 0") != NULL);
}

TEST(sampler_non_finite_logits) {
    float l[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int counts[4];
    sampler *g = mk(0, 0, 1, 0, 4, 1), *s = mk(1, 0, 1, 0, 4, 19);
    CHECK_EQ_INT(sampler_sample(g, l, NULL, 0), -1);
    CHECK(strstr(err_msg(), "finite") != NULL);
    CHECK_EQ_INT(sampler_sample(s, l, NULL, 0), -1);
    for (int i = 0; i < 4; i++) l[i] = NAN;
    CHECK_EQ_INT(sampler_sample(s, l, NULL, 0), -1);
    l[2] = -1e30f; /* the only finite one, however unlikely */
    CHECK_EQ_INT(sampler_sample(g, l, NULL, 0), 2);
    draw(s, l, 4, 100, counts);
    CHECK_EQ_INT(counts[2], 100);
    /* -inf and NaN are never drawn. */
    const float mix[4] = {NAN, 0, -INFINITY, 0};
    draw(s, mix, 4, 4000, counts);
    CHECK_EQ_INT(counts[0] + counts[2], 0);
    CHECK(counts[1] > 1800 && counts[3] > 1800);
    /* +inf is certain; several +inf share the mass. */
    const float inf1[4] = {1e30f, INFINITY, 3, NAN}, inf2[4] = {INFINITY, 2, INFINITY, 3};
    CHECK_EQ_INT(sampler_sample(g, inf1, NULL, 0), 1);
    draw(s, inf1, 4, 100, counts);
    CHECK_EQ_INT(counts[1], 100);
    CHECK_EQ_INT(sampler_sample(g, inf2, NULL, 0), 0);
    draw(s, inf2, 4, 4000, counts);
    CHECK_EQ_INT(counts[1] + counts[3], 0);
    CHECK(counts[0] > 1800 && counts[2] > 1800);
    sampler_free(g);
    sampler_free(s);
}

/* Brute-force reference for the kept set: full sort by rank, then each cut in order, in
 * double precision; returns how many are kept and leaves their probabilities in pr[]. */
static const float *ref_v;
static int ref_cmp(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (ref_v[x] != ref_v[y]) return ref_v[x] > ref_v[y] ? -1 : 1;
    return x < y ? -1 : 1;
}

static int32_t ref_kept(const float *l, int32_t n, const sampler_params *p, int32_t *order,
                        double *pr) {
    int32_t m = n, cut;
    double total = 0, cum = 0, kept = 0;
    for (int32_t i = 0; i < n; i++) order[i] = i;
    ref_v = l;
    qsort(order, (size_t)n, sizeof *order, ref_cmp);
    while (m > 0 && l[order[m - 1]] == -INFINITY) m--;
    if (p->top_k > 0 && p->top_k < m) m = p->top_k;
    for (int32_t j = 0; j < m; j++) {
        pr[j] = exp((double)((l[order[j]] - l[order[0]]) / p->temperature));
        total += pr[j];
    }
    for (cut = 0; cut < m; cut++) {
        if (p->min_p > 0 && pr[cut] < p->min_p) break;
        cum += pr[cut];
        if (p->top_p < 1 && cum >= p->top_p * total) {
            cut++;
            break;
        }
    }
    for (int32_t j = 0; j < cut; j++) kept += pr[j];
    for (int32_t j = 0; j < cut; j++) pr[j] /= kept;
    return cut;
}

/* On a 152k vocabulary the candidates drawn from must be exactly the reference's, with the
 * same probabilities, and draws must stay inside them. */
static void check_large(const float *l, int32_t n, const sampler_params *cases, size_t n_cases) {
    int32_t *order = malloc((size_t)n * sizeof *order), *ids = malloc((size_t)n * sizeof *ids);
    double *pr = malloc((size_t)n * sizeof *pr);
    float *probs = malloc((size_t)n * sizeof *probs), *mine = malloc((size_t)n * sizeof *mine);
    unsigned char *kept = malloc((size_t)n);
    for (size_t c = 0; c < n_cases; c++) {
        int32_t n_kept = ref_kept(l, n, &cases[c], order, pr);
        sampler *s = sampler_new(&cases[c], n);
        int outside = 0, wrong = 0;
        CHECK(sampler_sample(s, l, NULL, 0) >= 0);
        int32_t got = sampler_last_candidates(s, ids, probs, n);
        CHECK_MSG(got == n_kept, "case %zu: %d candidates, reference %d", c, (int)got,
                  (int)n_kept);
        for (int32_t i = 0; i < n; i++) mine[i] = -1;
        for (int32_t j = 0; j < got; j++) {
            if (j > 0 && ids[j] <= ids[j - 1]) wrong++; /* must ascend */
            mine[ids[j]] = probs[j];
        }
        memset(kept, 0, (size_t)n);
        for (int32_t j = 0; j < n_kept; j++) {
            kept[order[j]] = 1;
            if (!(fabs(mine[order[j]] - pr[j]) <= 1e-5 * pr[j] + 1e-30)) wrong++;
        }
        CHECK_MSG(wrong == 0, "case %zu: %d candidates differ from the reference", c, wrong);
        for (int d = 0; d < 100; d++) {
            int32_t t = sampler_sample(s, l, NULL, 0);
            if (t < 0 || t >= n || !kept[t]) outside++;
        }
        CHECK_MSG(outside == 0, "case %zu: %d draws outside the reference set", c, outside);
        sampler_free(s);
    }
    free(order);
    free(ids);
    free(pr);
    free(probs);
    free(mine);
    free(kept);
}

TEST(sampler_large_vocab_matches_reference) {
    enum { N = 152064 };
    float *l = malloc(N * sizeof *l);
    trng_state = 17;
    /* Roughly a language model's shape: a long flat tail and a few strong candidates; rounded
     * to 1/16 so ties occur. The cuts' thresholds land close to the top. */
    for (int32_t i = 0; i < N; i++) {
        double u = trng();
        l[i] = (float)(round((u * 8 + (u > 0.9995 ? 10 * trng() : 0)) * 16) / 16);
    }
    const sampler_params near[] = {
        params(1, 0, 0.9f, 0), params(0.7f, 0, 0.95f, 0.05f), params(1, 40, 0.95f, 0.05f),
        params(1, 0, 1, 0.2f), params(1.3f, 100, 1, 0),       params(1, 7, 1, 0),
        params(1, 0, 1, 0),    params(0.8f, 0, 1, 0),
    };
    check_large(l, N, near, sizeof near / sizeof near[0]);
    /* Ten tokens far above a crowd spread 22 to 38 below them, and some banned tokens: the
     * cuts must reach into and past the deepest bucket. */
    for (int32_t i = 0; i < N; i++) {
        double u = trng();
        l[i] = u < 0.01 ? -INFINITY : (float)(trng() * 16);
    }
    for (int32_t i = 0; i < 10; i++) l[i * 7919] = 38 + 0.25f * (float)i;
    const sampler_params deep[] = {
        params(1, 20, 1, 0),      params(1, 3000, 1, 0),    params(10, 0, 0.5f, 0),
        params(10, 0, 0.9f, 0),   params(10, 0, 0.99f, 0),  params(20, 0, 0.999f, 0.01f),
        params(10, 5000, 0.9f, 0), params(2, 0, 0.99f, 0),    params(1, 80000, 1, 0),
        params(10, 0, 1, 0),
    };
    check_large(l, N, deep, sizeof deep / sizeof deep[0]);
    free(l);
}

TEST(sampler_logprobs_values) {
    const float l[6] = {1, 3, NAN, 2, -INFINITY, 3};
    sampler_logprob top[8];
    float lp = 0;
    double lse = log(exp(1.0) + 2 * exp(3.0) + exp(2.0));
    CHECK_EQ_INT(sampler_logprobs(l, 6, 3, &lp, top, 3), 3);
    CHECK(fabs(lp - (2 - lse)) < 1e-6);
    CHECK_EQ_INT(top[0].id, 1);
    CHECK_EQ_INT(top[1].id, 5);
    CHECK_EQ_INT(top[2].id, 3);
    CHECK(fabs(top[0].logprob - (3 - lse)) < 1e-6 && top[0].logprob == top[1].logprob);
    /* Only the four finite tokens are listed, whatever n_top asks for. */
    CHECK_EQ_INT(sampler_logprobs(l, 6, 4, &lp, top, 8), 4);
    CHECK(lp == -INFINITY);
    CHECK_EQ_INT(top[3].id, 0);
    CHECK_EQ_INT(sampler_logprobs(l, 6, 2, &lp, top, 0), 0);
    CHECK(lp == -INFINITY);
    CHECK_EQ_INT(sampler_logprobs(l, 6, -1, NULL, top, 1), 1);
    CHECK_EQ_INT(sampler_logprobs(l, 6, 6, &lp, top, 1), -1);
    CHECK_EQ_INT(sampler_logprobs(l, 6, 0, &lp, top, SAMPLER_MAX_TOP_LOGPROBS + 1), -1);
    CHECK(strstr(err_msg(), "n_top") != NULL);
    const float none[2] = {NAN, -INFINITY};
    CHECK_EQ_INT(sampler_logprobs(none, 2, 0, &lp, top, 1), -1);
    /* +inf logits share all the mass. */
    const float inf[3] = {INFINITY, 0, INFINITY};
    CHECK_EQ_INT(sampler_logprobs(inf, 3, 1, &lp, top, 3), 3);
    CHECK(fabs(top[0].logprob - log(0.5)) < 1e-6 && top[1].id == 2 && lp < -1e38f);

    /* On a large random vector the probabilities sum to 1 and top[] is the true top. */
    enum { N = 2000 };
    static float big[N];
    trng_state = 19;
    for (int i = 0; i < N; i++) big[i] = (float)(trng() * 10 - 5);
    double sum = 0;
    float best = -INFINITY;
    for (int i = 0; i < N; i++) {
        CHECK(sampler_logprobs(big, N, i, &lp, NULL, 0) == 0);
        sum += exp(lp);
        if (big[i] > best) best = big[i];
    }
    CHECK(fabs(sum - 1) < 1e-4);
    CHECK_EQ_INT(sampler_logprobs(big, N, -1, NULL, top, 8), 8);
    CHECK(big[top[0].id] == best);
    for (int j = 1; j < 8; j++) CHECK(big[top[j].id] <= big[top[j - 1].id]);
}
