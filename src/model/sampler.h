/* Token sampler: turns one row of logits into the next token id, with the controls an
 * OpenAI-style request carries (temperature, top_k, top_p, min_p, seed, presence/frequency
 * penalties, logit_bias) plus llama.cpp's repeat penalty, and a log-softmax helper for
 * logprobs/top_logprobs.
 *
 * Order of operations in sampler_sample (fixed; tests pin it):
 *   1. logit bias      l[t] += bias[t]                      (sampler_set_logit_bias)
 *   2. penalties       over the last repeat_last_n history tokens, for each distinct token t
 *                      seen c times: repeat penalty (l > 0 ? l / rp : l * rp), then
 *                      l -= c * frequency_penalty + presence_penalty
 *   3. clean           NaN -> -inf (never chosen), +inf -> FLT_MAX ("certain")
 *   4. greedy          temperature == 0: argmax, lowest id wins ties; steps 5-10 skipped
 *   5. temperature     p[t] = exp((l[t] - l_max) / temperature)  (0 below e^-87)
 *   6. top-k           keep the k highest logits
 *   7. softmax         (the p above, normalised over what top-k kept)
 *   8. top-p           keep the shortest run of most likely tokens whose mass >= top_p
 *   9. min-p           keep tokens with p >= min_p * p_max
 *  10. draw            renormalise what is left and draw with the sampler's own RNG
 * Every ranking (greedy, the top-k and top-p cut-offs) is by logit, the lower token id first
 * on ties, so the kept set is well defined and never depends on how it was computed.
 *
 * Guarantees: the result is a token id in [0, n_vocab) whose cleaned logit is finite, or -1
 * with err_msg() set (no finite logit, bad history). The RNG is xoshiro256** seeded through
 * splitmix64 and the arithmetic is IEEE float/double in a fixed order with our own exp (no
 * libm in the draw), so a seed and the same logits give the same tokens on every run and, up
 * to the compiler fusing multiply-adds, every machine (sums are taken 16 lanes wide by GCC on
 * x86-64, 4 elsewhere: between the two a draw within rounding of a boundary can differ). No
 * allocation per token: all scratch is sized to n_vocab at sampler_new (about 24 bytes per
 * token). A sampler is not thread-safe; use one per sequence. */
#ifndef VEIL_SAMPLER_H
#define VEIL_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

/* What sampler_params_default puts in seed; callers wanting variety pick a seed themselves. */
#define SAMPLER_DEFAULT_SEED 0x5EED5EED5EED5EEDull
/* Upper bound on n_top in sampler_logprobs (OpenAI allows 20). */
#define SAMPLER_MAX_TOP_LOGPROBS 64

typedef struct sampler_params {
    float temperature;       /* 0: greedy; otherwise finite and > 0 */
    int32_t top_k;           /* 0 = off */
    float top_p;             /* in (0, 1]; 1 = off */
    float min_p;             /* in [0, 1]; 0 = off: drop tokens with p < min_p * p_max */
    float repeat_penalty;    /* > 0; 1 = off: positive logit /= rp, negative *= rp */
    int32_t repeat_last_n;   /* window for all three penalties; -1 = whole history, 0 = none */
    float frequency_penalty; /* OpenAI: logit -= count * f (any finite value) */
    float presence_penalty;  /* OpenAI: logit -= (count > 0) * p (any finite value) */
    uint64_t seed;
} sampler_params;

typedef struct sampler sampler;

typedef struct sampler_logprob {
    int32_t id;
    float logprob;
} sampler_logprob;

/* temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, penalties off (repeat_last_n 64),
 * seed SAMPLER_DEFAULT_SEED. */
void sampler_params_default(sampler_params *p);
/* 0 if usable, else -1 with an error naming the field and its value. */
int sampler_params_check(const sampler_params *p);

/* NULL on bad params, n_vocab <= 0 or out of memory (err_msg() says which). */
sampler *sampler_new(const sampler_params *p, int32_t n_vocab);
void sampler_free(sampler *s);

/* Restarts the random stream as if the sampler had been created with this seed. */
void sampler_set_seed(sampler *s, uint64_t seed);
/* Sets (replaces) the additive bias of one token; -INFINITY bans it. -1 if the token is out of
 * range or the bias is NaN or +inf. */
int sampler_set_logit_bias(sampler *s, int32_t token, float bias);
void sampler_clear_logit_bias(sampler *s);

/* Steps 1-3 above: writes the biased, penalised, cleaned logits to out[n_vocab] (out may be
 * logits itself). history holds the tokens the penalties look at, oldest first (may be NULL
 * when n_history is 0). -1 if a history token is out of range. */
int sampler_adjust_logits(sampler *s, const float *logits, const int32_t *history,
                          size_t n_history, float *out);
/* All ten steps. logits[n_vocab] is not modified. */
int32_t sampler_sample(sampler *s, const float *logits, const int32_t *history,
                       size_t n_history);

/* What the last sampler_sample drew from, after every cut: returns how many tokens, and
 * writes the first max of them (ascending ids) to ids[] and their probabilities (normalised
 * over all of them) to probs[] where those are not NULL. A greedy pick is one token with
 * probability 1; after a failed call, 0. Valid until the next sampler_sample. */
int32_t sampler_last_candidates(const sampler *s, int32_t *ids, float *probs, int32_t max);

/* Log-softmax of logits[n_vocab] as given (cleaned as in step 3, no temperature): writes
 * *token_logprob for `token` (skipped when token is -1 or token_logprob is NULL) and the n_top
 * most likely tokens to top[], most likely first, lower id first on ties, leaving out tokens
 * whose logprob is -inf. Returns how many entries it wrote, or -1 (no finite logit, token out
 * of range, n_top outside [0, SAMPLER_MAX_TOP_LOGPROBS]). */
int sampler_logprobs(const float *logits, int32_t n_vocab, int32_t token, float *token_logprob,
                     sampler_logprob *top, int32_t n_top);

#endif
