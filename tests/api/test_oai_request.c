/* OpenAI request parsing: every field's accepted shapes land in the struct, and every invalid
 * value is a 400 whose param names the field. */
#include "test.h"

#include "api/oai_request.h"

#include <math.h>

static int parse(oai_endpoint ep, const char *body, oai_request *r, oai_error *e) {
    return oai_request_parse(ep, body, strlen(body), 512, r, e);
}

TEST(oai_req_chat_defaults) {
    oai_request r;
    oai_error e;
    CHECK_EQ_INT(parse(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r, &e), 0);
    CHECK(r.model == NULL && r.user == NULL);
    CHECK_EQ_INT(r.n_messages, 1);
    CHECK_EQ_STR(r.messages[0].role, "user");
    CHECK_EQ_STR(r.messages[0].content, "hi");
    CHECK_EQ_INT(r.max_tokens, -1);
    CHECK(r.temperature == 1 && r.top_p == 1 && r.min_p == 0 && r.top_k == 0);
    CHECK(!r.has_seed && r.n == 1 && r.n_stop == 0 && r.n_bias == 0);
    CHECK(r.presence_penalty == 0 && r.frequency_penalty == 0);
    CHECK_EQ_INT(r.top_logprobs, -1);
    CHECK(!r.stream && !r.include_usage);
    oai_request_free(&r);
}

TEST(oai_req_chat_every_field) {
    static const char body[] =
        "{\"model\":\"m\",\"user\":\"u1\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"sys\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]},"
        "{\"role\":\"developer\",\"content\":\"x\\u0000y\"}],"
        "\"max_tokens\":7,\"max_completion_tokens\":9,\"temperature\":0.5,\"top_p\":0.9,"
        "\"top_k\":5,\"min_p\":0.1,\"seed\":-42,\"stop\":[\"\\n\",\"END\"],\"n\":3,"
        "\"presence_penalty\":-1.5,\"frequency_penalty\":2,\"logit_bias\":{\"7\":-100,\"11\":2.5},"
        "\"logprobs\":true,\"top_logprobs\":4,\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"unknown\":{\"deep\":[1,2]}}";
    oai_request r;
    oai_error e;
    CHECK_EQ_INT(parse(OAI_CHAT, body, &r, &e), 0);
    CHECK_EQ_STR(r.model, "m");
    CHECK_EQ_STR(r.user, "u1");
    CHECK_EQ_INT(r.n_messages, 4);
    CHECK_EQ_STR(r.messages[1].content, "a\nb");
    CHECK_EQ_INT(r.messages[2].content_len, 0);
    CHECK_EQ_STR(r.messages[3].role, "developer");
    CHECK_EQ_INT(r.messages[3].content_len, 3);
    CHECK(memcmp(r.messages[3].content, "x\0y", 3) == 0);
    CHECK_EQ_INT(r.max_tokens, 9); /* max_completion_tokens wins */
    CHECK(r.temperature == 0.5f && r.top_p == 0.9f && r.top_k == 5 && r.min_p == 0.1f);
    CHECK(r.has_seed && r.seed == -42);
    CHECK_EQ_INT(r.n_stop, 2);
    CHECK_EQ_STR(r.stop[0], "\n");
    CHECK_EQ_STR(r.stop[1], "END");
    CHECK_EQ_INT(r.stop_len[1], 3);
    CHECK_EQ_INT(r.n, 3);
    CHECK(r.presence_penalty == -1.5f && r.frequency_penalty == 2);
    CHECK_EQ_INT(r.n_bias, 2);
    for (int i = 0; i < r.n_bias; i++)
        CHECK((r.bias_tokens[i] == 7 && r.bias_values[i] == -100) ||
              (r.bias_tokens[i] == 11 && r.bias_values[i] == 2.5f));
    CHECK_EQ_INT(r.top_logprobs, 4);
    CHECK(r.stream && r.include_usage);
    oai_request_free(&r);
}

TEST(oai_req_chat_logprobs_without_top) {
    oai_request r;
    oai_error e;
    CHECK_EQ_INT(parse(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"\"}],\"logprobs\":true}", &r, &e), 0);
    CHECK_EQ_INT(r.top_logprobs, 0);
    oai_request_free(&r);
    CHECK_EQ_INT(parse(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"\"}],\"logprobs\":false,\"top_logprobs\":null,\"stop\":\"x\",\"seed\":3.0,\"n\":null}", &r, &e), 0);
    CHECK_EQ_INT(r.top_logprobs, -1);
    CHECK_EQ_INT(r.n_stop, 1);
    CHECK(r.has_seed && r.seed == 3);
    CHECK_EQ_INT(r.n, 1);
    oai_request_free(&r);
}

TEST(oai_req_completion_prompt_shapes) {
    oai_request r;
    oai_error e;
    CHECK_EQ_INT(parse(OAI_COMPLETIONS, "{\"prompt\":\"Once\",\"logprobs\":3,\"max_tokens\":5}", &r, &e), 0);
    CHECK_EQ_INT(r.n_prompts, 1);
    CHECK_EQ_STR(r.prompts[0].text, "Once");
    CHECK(r.prompts[0].ids == NULL);
    CHECK_EQ_INT(r.top_logprobs, 3);
    CHECK_EQ_INT(r.max_tokens, 5);
    oai_request_free(&r);

    CHECK_EQ_INT(parse(OAI_COMPLETIONS, "{\"prompt\":[\"a\",\"\"]}", &r, &e), 0);
    CHECK_EQ_INT(r.n_prompts, 2);
    CHECK_EQ_STR(r.prompts[1].text, "");
    CHECK_EQ_INT(r.top_logprobs, -1);
    oai_request_free(&r);

    CHECK_EQ_INT(parse(OAI_COMPLETIONS, "{\"prompt\":[1,2,511]}", &r, &e), 0);
    CHECK_EQ_INT(r.n_prompts, 1);
    CHECK_EQ_INT(r.prompts[0].n_ids, 3);
    CHECK(r.prompts[0].ids && r.prompts[0].ids[2] == 511);
    oai_request_free(&r);

    CHECK_EQ_INT(parse(OAI_COMPLETIONS, "{\"prompt\":[[1],[5,6]]}", &r, &e), 0);
    CHECK_EQ_INT(r.n_prompts, 2);
    CHECK_EQ_INT(r.prompts[1].n_ids, 2);
    CHECK(r.prompts[1].ids && r.prompts[1].ids[1] == 6);
    oai_request_free(&r);
}

typedef struct bad_case {
    oai_endpoint ep;
    const char *body;
    const char *param; /* "" = null */
} bad_case;

#define CHAT_OK "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static const bad_case bad_cases[] = {
    {OAI_CHAT, "", ""},
    {OAI_CHAT, "{\"messages\":", ""},
    {OAI_CHAT, "[1,2]", ""},
    {OAI_CHAT, "{\"a\":1,}", ""},
    {OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", ""},
    {OAI_CHAT, "{}", "messages"},
    {OAI_CHAT, "{\"messages\":null}", "messages"},
    {OAI_CHAT, "{\"messages\":\"hi\"}", "messages"},
    {OAI_CHAT, "{\"messages\":[]}", "messages"},
    {OAI_CHAT, "{\"messages\":[7]}", "messages[0]"},
    {OAI_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role"},
    {OAI_CHAT, "{\"messages\":[{\"role\":5,\"content\":\"x\"}]}", "messages[0].role"},
    {OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"wizard\",\"content\":\"x\"}]}", "messages[1].role"},
    {OAI_CHAT, "{\"messages\":[{\"role\":\"us\\u0000er\",\"content\":\"x\"}]}", "messages[0].role"},
    {OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content"},
    {OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]}", "messages[0].content[0]"},
    {OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\"}]}]}", "messages[0].content[1]"},
    {OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[\"a\"]}]}", "messages[0].content[0]"},
    {OAI_CHAT, "{" CHAT_OK ",\"model\":3}", "model"},
    {OAI_CHAT, "{" CHAT_OK ",\"user\":[]}", "user"},
    {OAI_CHAT, "{" CHAT_OK ",\"max_tokens\":0}", "max_tokens"},
    {OAI_CHAT, "{" CHAT_OK ",\"max_tokens\":\"5\"}", "max_tokens"},
    {OAI_CHAT, "{" CHAT_OK ",\"max_tokens\":2.5}", "max_tokens"},
    {OAI_CHAT, "{" CHAT_OK ",\"max_tokens\":4294967296}", "max_tokens"},
    {OAI_CHAT, "{" CHAT_OK ",\"max_completion_tokens\":-1}", "max_completion_tokens"},
    {OAI_CHAT, "{" CHAT_OK ",\"temperature\":2.01}", "temperature"},
    {OAI_CHAT, "{" CHAT_OK ",\"temperature\":-0.1}", "temperature"},
    {OAI_CHAT, "{" CHAT_OK ",\"temperature\":\"hot\"}", "temperature"},
    {OAI_CHAT, "{" CHAT_OK ",\"top_p\":1.5}", "top_p"},
    {OAI_CHAT, "{" CHAT_OK ",\"top_p\":true}", "top_p"},
    {OAI_CHAT, "{" CHAT_OK ",\"min_p\":-1}", "min_p"},
    {OAI_CHAT, "{" CHAT_OK ",\"top_k\":-1}", "top_k"},
    {OAI_CHAT, "{" CHAT_OK ",\"top_k\":1.5}", "top_k"},
    {OAI_CHAT, "{" CHAT_OK ",\"seed\":\"1\"}", "seed"},
    {OAI_CHAT, "{" CHAT_OK ",\"seed\":0.5}", "seed"},
    {OAI_CHAT, "{" CHAT_OK ",\"n\":0}", "n"},
    {OAI_CHAT, "{" CHAT_OK ",\"n\":129}", "n"},
    {OAI_CHAT, "{" CHAT_OK ",\"presence_penalty\":3}", "presence_penalty"},
    {OAI_CHAT, "{" CHAT_OK ",\"frequency_penalty\":-2.5}", "frequency_penalty"},
    {OAI_CHAT, "{" CHAT_OK ",\"stop\":5}", "stop"},
    {OAI_CHAT, "{" CHAT_OK ",\"stop\":[\"a\",5]}", "stop"},
    {OAI_CHAT, "{" CHAT_OK ",\"stop\":\"\"}", "stop"},
    {OAI_CHAT, "{" CHAT_OK ",\"stop\":\"a\\u0000\"}", "stop"},
    {OAI_CHAT, "{" CHAT_OK ",\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}", "stop"},
    {OAI_CHAT, "{" CHAT_OK ",\"logit_bias\":[1]}", "logit_bias"},
    {OAI_CHAT, "{" CHAT_OK ",\"logit_bias\":{\"abc\":1}}", "logit_bias"},
    {OAI_CHAT, "{" CHAT_OK ",\"logit_bias\":{\"-1\":1}}", "logit_bias"},
    {OAI_CHAT, "{" CHAT_OK ",\"logit_bias\":{\"512\":1}}", "logit_bias"},
    {OAI_CHAT, "{" CHAT_OK ",\"logit_bias\":{\"99999999999\":1}}", "logit_bias"},
    {OAI_CHAT, "{" CHAT_OK ",\"logit_bias\":{\"5\":101}}", "logit_bias"},
    {OAI_CHAT, "{" CHAT_OK ",\"logit_bias\":{\"5\":\"1\"}}", "logit_bias"},
    {OAI_CHAT, "{" CHAT_OK ",\"logprobs\":1}", "logprobs"},
    {OAI_CHAT, "{" CHAT_OK ",\"top_logprobs\":2}", "top_logprobs"},
    {OAI_CHAT, "{" CHAT_OK ",\"logprobs\":true,\"top_logprobs\":21}", "top_logprobs"},
    {OAI_CHAT, "{" CHAT_OK ",\"logprobs\":true,\"top_logprobs\":-1}", "top_logprobs"},
    {OAI_CHAT, "{" CHAT_OK ",\"stream\":\"yes\"}", "stream"},
    {OAI_CHAT, "{" CHAT_OK ",\"stream_options\":{\"include_usage\":true}}", "stream_options"},
    {OAI_CHAT, "{" CHAT_OK ",\"stream\":true,\"stream_options\":5}", "stream_options"},
    {OAI_CHAT, "{" CHAT_OK ",\"stream\":true,\"stream_options\":{\"include_usage\":1}}", "stream_options.include_usage"},
    {OAI_COMPLETIONS, "{}", "prompt"},
    {OAI_COMPLETIONS, "{\"prompt\":5}", "prompt"},
    {OAI_COMPLETIONS, "{\"prompt\":[]}", "prompt"},
    {OAI_COMPLETIONS, "{\"prompt\":[1,\"a\"]}", "prompt"},
    {OAI_COMPLETIONS, "{\"prompt\":[1,512]}", "prompt"},
    {OAI_COMPLETIONS, "{\"prompt\":[-1]}", "prompt"},
    {OAI_COMPLETIONS, "{\"prompt\":[\"a\",1]}", "prompt[1]"},
    {OAI_COMPLETIONS, "{\"prompt\":[\"a\",[1]]}", "prompt[1]"},
    {OAI_COMPLETIONS, "{\"prompt\":[[1],[]]}", "prompt[1]"},
    {OAI_COMPLETIONS, "{\"prompt\":[[1],[1.5]]}", "prompt[1]"},
    {OAI_COMPLETIONS, "{\"prompt\":\"a\",\"logprobs\":true}", "logprobs"},
    {OAI_COMPLETIONS, "{\"prompt\":\"a\",\"logprobs\":21}", "logprobs"},
};

TEST(oai_req_invalid_names_the_field) {
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        oai_request r;
        oai_error e = {0};
        const bad_case *b = &bad_cases[i];
        int rc = parse(b->ep, b->body, &r, &e);
        CHECK_MSG(rc == -1, "accepted: %s", b->body);
        if (rc != -1) {
            oai_request_free(&r);
            continue;
        }
        CHECK_EQ_INT(e.status, 400);
        CHECK_EQ_STR(e.type, "invalid_request_error");
        CHECK_MSG(strcmp(e.param, b->param) == 0, "%s: param '%s', want '%s' (%s)", b->body,
                  e.param, b->param, e.message);
        CHECK_MSG(e.message[0] != 0, "no message for %s", b->body);
        /* a failed parse leaves nothing to free */
        CHECK(r.messages == NULL && r.prompts == NULL && r.model == NULL && r.n_stop == 0);
    }
}

TEST(oai_req_ignores_unknown_and_checks_vocab_only_when_known) {
    oai_request r;
    oai_error e;
    static const char body[] = "{\"prompt\":[100000],\"logit_bias\":{\"70000\":1},\"echo\":true,\"best_of\":\"x\"}";
    CHECK_EQ_INT(oai_request_parse(OAI_COMPLETIONS, body, strlen(body), 0, &r, &e), 0);
    CHECK(r.prompts && r.prompts[0].ids && r.prompts[0].ids[0] == 100000);
    CHECK(r.n_bias == 1 && r.bias_tokens[0] == 70000);
    oai_request_free(&r);
    CHECK_EQ_INT(oai_request_parse(OAI_COMPLETIONS, body, strlen(body), 1000, &r, &e), -1);
    CHECK_EQ_STR(e.param, "logit_bias");
    CHECK_EQ_INT(oai_request_parse(OAI_COMPLETIONS, body, 18, 1000, &r, &e), -1); /* {"prompt":[100000] */
    CHECK_EQ_STR(e.param, "");
    static const char ids_only[] = "{\"prompt\":[100000]}";
    CHECK_EQ_INT(oai_request_parse(OAI_COMPLETIONS, ids_only, strlen(ids_only), 1000, &r, &e), -1);
    CHECK_EQ_STR(e.param, "prompt");
}

TEST(oai_req_max_stop_strings) {
    char body[2048];
    oai_request r;
    oai_error e;
    int at = snprintf(body, sizeof body, "{\"prompt\":\"p\",\"stop\":[");
    for (int i = 0; i < STOPSTR_MAX; i++) at += snprintf(body + at, sizeof body - at, "%s\"s%d\"", i ? "," : "", i);
    snprintf(body + at, sizeof body - at, "]}");
    CHECK_EQ_INT(parse(OAI_COMPLETIONS, body, &r, &e), 0);
    CHECK_EQ_INT(r.n_stop, STOPSTR_MAX);
    oai_request_free(&r);
}
