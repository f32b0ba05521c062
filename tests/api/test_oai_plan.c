/* Planning requests: prompts through the template or the tokenizer, token budgets against
 * the context, per-choice seeds and prompts, sampling parameters, and the 400s. */
#include "test.h"

#include "api/oai_plan.h"
#include "base/err.h"

#include <stdlib.h>

static tokenizer *stories_tok(void) {
    const char *path = test_shared_path("models/stories260K.gguf");
    gguf *g = path ? gguf_open(path) : NULL;
    tokenizer *t = g ? tok_load(g) : NULL;
    CHECK_MSG(t, "loading stories260K: %s", err_msg());
    gguf_close(g);
    return t;
}

static int plan(const char *body, oai_endpoint ep, tokenizer *t, int32_t n_ctx, oai_request *r,
                oai_plan *p, oai_error *e) {
    CHECK_EQ_INT(oai_request_parse(ep, body, strlen(body), tok_n_vocab(t), r, e), 0);
    return oai_plan_build(r, t, CHAT_TMPL_PLAIN, n_ctx, p, e);
}

TEST(oai_plan_chat) {
    NEED_SHARED();
    tokenizer *t = stories_tok();
    oai_request r;
    oai_plan p;
    oai_error e;
    const oai_plan_prompt *pp;
    sched_params sp;
    int32_t *ids = NULL;
    size_t n = 0;
    if (!t) return;
    CHECK_EQ_INT(plan("{\"messages\":[{\"role\":\"user\",\"content\":\"Tell a story\"}],\"n\":3,\"seed\":40,"
                      "\"temperature\":0.5,\"stop\":[\"x\"],\"logprobs\":true,\"top_logprobs\":2}",
                      OAI_CHAT, t, 512, &r, &p, &e), 0);
    chat_msg m = {"user", "Tell a story", 12};
    CHECK_EQ_INT(chat_tmpl_encode(t, CHAT_TMPL_PLAIN, &m, 1, &ids, &n), 0);
    CHECK_EQ_INT(p.n_choices, 3);
    for (int32_t i = 0; i < 3; i++) {
        oai_plan_choice(&p, i, &pp, &sp);
        CHECK_EQ_INT(pp->n_ids, n);
        CHECK(memcmp(pp->ids, ids, n * sizeof *ids) == 0);
        CHECK_EQ_INT(sp.max_tokens, 512 - (int32_t)n);
        CHECK_EQ_INT(sp.sampling.seed, 40 + i);
        CHECK(sp.sampling.temperature == 0.5f && sp.sampling.top_p == 1 && sp.sampling.top_k == 0);
        CHECK(sp.sampling.min_p == 0 && sp.sampling.repeat_penalty == 1);
        CHECK_EQ_INT(sp.n_stop, 1);
        CHECK_EQ_STR(sp.stop[0], "x");
        CHECK_EQ_INT(sp.top_logprobs, 2);
        CHECK(!sp.render_special);
    }
    free(ids);
    oai_plan_free(&p);
    oai_request_free(&r);
    tok_free(t);
}

TEST(oai_plan_completions) {
    NEED_SHARED();
    tokenizer *t = stories_tok();
    oai_request r;
    oai_plan p;
    oai_error e;
    const oai_plan_prompt *pp;
    sched_params sp;
    if (!t) return;
    CHECK_EQ_INT(plan("{\"prompt\":[\"Once upon\",\"The dog\"],\"n\":2,\"top_p\":0}", OAI_COMPLETIONS, t,
                      512, &r, &p, &e), 0);
    CHECK_EQ_INT(p.n_choices, 4);
    oai_plan_choice(&p, 3, &pp, &sp);
    CHECK(pp == &p.prompts[1]);
    CHECK_EQ_INT(pp->ids[0], tok_bos(t));
    CHECK_EQ_INT(sp.max_tokens, OAI_DEFAULT_COMPLETION_TOKENS);
    CHECK(sp.sampling.temperature == 0); /* top_p 0: greedy */
    CHECK_EQ_INT(sp.top_logprobs, -1);
    oai_plan_free(&p);
    oai_request_free(&r);

    /* token ids as given, no BOS added; the default budget shrinks to what the context has */
    CHECK_EQ_INT(plan("{\"prompt\":[5,6,7]}", OAI_COMPLETIONS, t, 10, &r, &p, &e), 0);
    oai_plan_choice(&p, 0, &pp, &sp);
    CHECK_EQ_INT(pp->n_ids, 3);
    CHECK_EQ_INT(pp->ids[0], 5);
    CHECK_EQ_INT(sp.max_tokens, 7);
    oai_plan_free(&p);
    oai_request_free(&r);
    tok_free(t);
}

TEST(oai_plan_errors) {
    NEED_SHARED();
    tokenizer *t = stories_tok();
    oai_request r;
    oai_plan p;
    oai_error e;
    if (!t) return;
    CHECK_EQ_INT(plan("{\"prompt\":[1,2,3],\"max_tokens\":8}", OAI_COMPLETIONS, t, 10, &r, &p, &e), -1);
    CHECK_EQ_STR(e.param, "max_tokens");
    CHECK_EQ_INT(e.status, 400);
    oai_request_free(&r);
    CHECK_EQ_INT(plan("{\"prompt\":[1,2,3],\"max_tokens\":7}", OAI_COMPLETIONS, t, 10, &r, &p, &e), 0);
    oai_plan_free(&p);
    oai_request_free(&r);
    CHECK_EQ_INT(plan("{\"prompt\":[[1],[1,2,3,4,5,6,7,8,9,10]]}", OAI_COMPLETIONS, t, 10, &r, &p, &e), -1);
    CHECK_EQ_STR(e.param, "prompt[1]");
    CHECK(strstr(e.message, "maximum context length is 10"));
    oai_request_free(&r);
    CHECK_EQ_INT(plan("{\"messages\":[{\"role\":\"user\",\"content\":\"a long message that does not fit\"}]}",
                      OAI_CHAT, t, 8, &r, &p, &e), -1);
    CHECK_EQ_STR(e.param, "messages");
    oai_request_free(&r);
    CHECK_EQ_INT(plan("{\"prompt\":[\"a\",\"b\"],\"n\":65}", OAI_COMPLETIONS, t, 512, &r, &p, &e), -1);
    CHECK_EQ_STR(e.param, "n");
    oai_request_free(&r);
    tok_free(t);
}
