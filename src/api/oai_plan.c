/* Request -> scheduler work (see oai_plan.h). */
#include "api/oai_plan.h"

#include "base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define BAD(e, param, ...) oai_error_set((e), 400, "invalid_request_error", (param), __VA_ARGS__)

static int tokenize_prompt(const oai_request *r, const tokenizer *tok, chat_tmpl tmpl, size_t i,
                           oai_plan_prompt *out, oai_error *e) {
    int32_t *ids = NULL;
    size_t n = 0;
    int rc;
    if (r->endpoint == OAI_CHAT) {
        chat_msg *msgs = malloc(r->n_messages * sizeof *msgs);
        if (!msgs) return oai_error_set(e, 500, "server_error", NULL, "out of memory");
        for (size_t k = 0; k < r->n_messages; k++)
            msgs[k] = (chat_msg){r->messages[k].role, r->messages[k].content, r->messages[k].content_len};
        rc = chat_tmpl_encode(tok, tmpl, msgs, r->n_messages, &ids, &n);
        free(msgs);
    } else if (r->prompts[i].ids) {
        n = r->prompts[i].n_ids;
        ids = malloc(n * sizeof *ids);
        rc = ids ? 0 : err_set("out of memory");
        if (ids) memcpy(ids, r->prompts[i].ids, n * sizeof *ids);
    } else {
        rc = tok_encode(tok, r->prompts[i].text, r->prompts[i].text_len, true, true, &ids, &n);
    }
    if (rc != 0) return oai_error_set(e, 500, "server_error", NULL, "tokenizing the prompt: %s", err_msg());
    out->ids = ids;
    out->n_ids = (int32_t)(n > INT32_MAX ? INT32_MAX : n);
    return 0;
}

static int budget(const oai_request *r, int32_t n_ctx, size_t i, oai_plan_prompt *pp, oai_error *e) {
    const char *what = r->endpoint == OAI_CHAT ? "messages" : "prompt";
    int32_t room = n_ctx - pp->n_ids;
    char param[32];
    if (r->endpoint == OAI_COMPLETIONS && r->n_prompts > 1) snprintf(param, sizeof param, "prompt[%zu]", i);
    else snprintf(param, sizeof param, "%s", what);
    if (pp->n_ids == 0)
        return BAD(e, param, "The prompt is empty (this model adds no BOS token to start from).");
    if (room < 1)
        return BAD(e, param, "This model's maximum context length is %d tokens. However, your %s resulted in %d tokens.",
                   n_ctx, what, pp->n_ids);
    if (r->max_tokens > room)
        return BAD(e, "max_tokens", "This model's maximum context length is %d tokens. However, you requested %lld tokens (%d in the %s, %lld for the completion).",
                   n_ctx, (long long)(pp->n_ids + r->max_tokens), pp->n_ids, what, (long long)r->max_tokens);
    if (r->max_tokens > 0) pp->max_tokens = (int32_t)r->max_tokens;
    else if (r->endpoint == OAI_CHAT) pp->max_tokens = room;
    else pp->max_tokens = room < OAI_DEFAULT_COMPLETION_TOKENS ? room : OAI_DEFAULT_COMPLETION_TOKENS;
    return 0;
}

static uint64_t random_seed(void) {
    uint64_t s;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) == (ssize_t)sizeof s) return s;
    return (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ (uint64_t)clock();
}

int oai_plan_build(const oai_request *r, const tokenizer *tok, chat_tmpl tmpl, int32_t n_ctx,
                   oai_plan *p, oai_error *e) {
    int32_t n_prompts = r->endpoint == OAI_CHAT ? 1 : (int32_t)r->n_prompts;
    sampler_params *sp = &p->params.sampling;
    *p = (oai_plan){0};
    if ((int64_t)n_prompts * r->n > OAI_MAX_N) {
        BAD(e, "n", "Invalid value for 'n': %d prompts x n = %d exceeds %d choices.", n_prompts,
            n_prompts * r->n, OAI_MAX_N);
        return -1;
    }
    p->prompts = calloc((size_t)n_prompts, sizeof *p->prompts);
    if (!p->prompts) return oai_error_set(e, 500, "server_error", NULL, "out of memory");
    p->n_prompts = n_prompts;
    for (int32_t i = 0; i < n_prompts; i++)
        if (tokenize_prompt(r, tok, tmpl, (size_t)i, &p->prompts[i], e) < 0 ||
            budget(r, n_ctx, (size_t)i, &p->prompts[i], e) < 0)
            goto fail;
    p->n_per_prompt = r->n;
    p->n_choices = n_prompts * r->n;
    p->seed = r->has_seed ? (uint64_t)r->seed : random_seed();
    sampler_params_default(sp);
    sp->temperature = r->top_p == 0 ? 0 : r->temperature;
    sp->top_k = r->top_k;
    sp->top_p = r->top_p == 0 ? 1 : r->top_p;
    sp->min_p = r->min_p;
    sp->repeat_penalty = 1;
    sp->repeat_last_n = -1;
    sp->presence_penalty = r->presence_penalty;
    sp->frequency_penalty = r->frequency_penalty;
    p->params.logit_bias = r->bias_values;
    p->params.bias_tokens = r->bias_tokens;
    p->params.n_bias = r->n_bias;
    p->params.stop = (const char *const *)r->stop;
    p->params.n_stop = r->n_stop;
    p->params.top_logprobs = r->top_logprobs;
    p->params.render_special = false;
    return 0;
fail:
    oai_plan_free(p);
    return -1;
}

void oai_plan_choice(const oai_plan *p, int32_t i, const oai_plan_prompt **prompt,
                     sched_params *params) {
    *prompt = &p->prompts[i / p->n_per_prompt];
    *params = p->params;
    params->max_tokens = (*prompt)->max_tokens;
    params->sampling.seed = p->seed + (uint64_t)i;
}

void oai_plan_free(oai_plan *p) {
    for (int32_t i = 0; i < p->n_prompts; i++) free(p->prompts[i].ids);
    free(p->prompts);
    *p = (oai_plan){0};
}
