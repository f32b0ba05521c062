/* OpenAI response bodies: the exact JSON of chat and completions responses, chunks, the
 * usage chunk, errors and the model list; SSE framing; invalid UTF-8 repaired; ids. */
#include "test.h"

#include "api/oai_response.h"

#include <stdlib.h>

static void check_json(char *got, const char *want) {
    CHECK_EQ_STR(got, want);
    free(got);
}

static const oai_token_logprob alts[] = {{5, -0.25f, "Hi", 2}, {9, -1.5f, "\xc3", 1}};
static const oai_logprob lps[] = {{{5, -0.25f, "Hi", 2}, alts, 2}, {{7, -2.0f, "!", 1}, NULL, 0}};
static const oai_usage usage = {10, 3, 4};

TEST(oai_resp_chat) {
    oai_meta m = {OAI_CHAT, "chatcmpl-x", 1700000000, "stories260K"};
    oai_choice c[] = {{"Hi!", 3, false, NULL, 0, "stop"}, {"Hi", 2, true, lps, 2, "length"}};
    check_json(oai_response_json(&m, c, 1, &usage),
               "{\"id\":\"chatcmpl-x\",\"object\":\"chat.completion\",\"created\":1700000000,"
               "\"model\":\"stories260K\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
               "\"assistant\",\"content\":\"Hi!\",\"refusal\":null},\"logprobs\":null,"
               "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,"
               "\"completion_tokens\":3,\"total_tokens\":13,\"prompt_tokens_details\":"
               "{\"cached_tokens\":4}},\"system_fingerprint\":null}");
    char *s = oai_response_json(&m, c, 2, &usage);
    CHECK(s && strstr(s, "\"index\":1,\"message\":{\"role\":\"assistant\",\"content\":\"Hi\""));
    CHECK(s && strstr(s, "\"logprobs\":{\"content\":[{\"token\":\"Hi\",\"logprob\":-0.25,\"bytes\":"
                         "[72,105],\"top_logprobs\":[{\"token\":\"Hi\",\"logprob\":-0.25,\"bytes\":"
                         "[72,105]},{\"token\":\"\xef\xbf\xbd\",\"logprob\":-1.5,\"bytes\":[195]}]},"
                         "{\"token\":\"!\",\"logprob\":-2.0,\"bytes\":[33],\"top_logprobs\":[]}],"
                         "\"refusal\":null},\"finish_reason\":\"length\""));
    free(s);
}

TEST(oai_resp_completion) {
    oai_meta m = {OAI_COMPLETIONS, "cmpl-y", 5, "m"};
    oai_choice c[] = {{"Hi!", 3, true, lps, 2, "length"}};
    check_json(oai_response_json(&m, c, 1, &usage),
               "{\"id\":\"cmpl-y\",\"object\":\"text_completion\",\"created\":5,\"model\":\"m\","
               "\"choices\":[{\"index\":0,\"text\":\"Hi!\",\"logprobs\":{\"tokens\":[\"Hi\",\"!\"],"
               "\"token_logprobs\":[-0.25,-2.0],\"top_logprobs\":[{\"Hi\":-0.25,\"\xef\xbf\xbd\":-1.5},{}],"
               "\"text_offset\":[0,2]},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":10,"
               "\"completion_tokens\":3,\"total_tokens\":13,\"prompt_tokens_details\":"
               "{\"cached_tokens\":4}}}");
}

TEST(oai_resp_chat_chunks) {
    oai_meta m = {OAI_CHAT, "chatcmpl-x", 1, "m"};
    oai_delta first = {.index = 0, .first = true};
    check_json(oai_chunk_json(&m, &first, false),
               "{\"id\":\"chatcmpl-x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
               "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
               "\"logprobs\":null,\"finish_reason\":null}]}");
    oai_delta mid = {.index = 2, .text = "a\"b\xff", .text_len = 4, .has_logprobs = true,
                     .logprobs = lps + 1, .n_logprobs = 1};
    check_json(oai_chunk_json(&m, &mid, true),
               "{\"id\":\"chatcmpl-x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
               "\"choices\":[{\"index\":2,\"delta\":{\"content\":\"a\\\"b\xef\xbf\xbd\"},"
               "\"logprobs\":{\"content\":[{\"token\":\"!\",\"logprob\":-2.0,\"bytes\":[33],"
               "\"top_logprobs\":[]}],\"refusal\":null},\"finish_reason\":null}],\"usage\":null}");
    oai_delta last = {.index = 1, .finish_reason = "stop"};
    check_json(oai_chunk_json(&m, &last, false),
               "{\"id\":\"chatcmpl-x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
               "\"choices\":[{\"index\":1,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}");
    check_json(oai_usage_chunk_json(&m, &usage),
               "{\"id\":\"chatcmpl-x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
               "\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3,"
               "\"total_tokens\":13,\"prompt_tokens_details\":{\"cached_tokens\":4}}}");
}

TEST(oai_resp_completion_chunks) {
    oai_meta m = {OAI_COMPLETIONS, "cmpl-y", 1, "m"};
    oai_delta d = {.index = 0, .text = "x\0y", .text_len = 3, .has_logprobs = true,
                   .logprobs = lps + 1, .n_logprobs = 1, .text_offset = 7};
    check_json(oai_chunk_json(&m, &d, false),
               "{\"id\":\"cmpl-y\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\","
               "\"choices\":[{\"index\":0,\"text\":\"x\\u0000y\",\"logprobs\":{\"tokens\":[\"!\"],"
               "\"token_logprobs\":[-2.0],\"top_logprobs\":[{}],\"text_offset\":[7]},"
               "\"finish_reason\":null}]}");
    oai_delta end = {.index = 3, .finish_reason = "length"};
    check_json(oai_chunk_json(&m, &end, false),
               "{\"id\":\"cmpl-y\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\","
               "\"choices\":[{\"index\":3,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"length\"}]}");
}

TEST(oai_resp_error_and_models) {
    oai_error e;
    oai_error_set(&e, 400, "invalid_request_error", "messages[0].content", "bad \"%s\"", "x");
    check_json(oai_error_json(&e),
               "{\"error\":{\"message\":\"bad \\\"x\\\"\",\"type\":\"invalid_request_error\","
               "\"param\":\"messages[0].content\",\"code\":null}}");
    oai_error_set(&e, 404, "invalid_request_error", NULL, "no such model");
    snprintf(e.code, sizeof e.code, "model_not_found");
    check_json(oai_error_json(&e),
               "{\"error\":{\"message\":\"no such model\",\"type\":\"invalid_request_error\","
               "\"param\":null,\"code\":\"model_not_found\"}}");
    check_json(oai_models_json("m", 9, true),
               "{\"object\":\"list\",\"data\":[{\"id\":\"m\",\"object\":\"model\",\"created\":9,"
               "\"owned_by\":\"veil\"}]}");
    check_json(oai_models_json("m", 9, false),
               "{\"id\":\"m\",\"object\":\"model\",\"created\":9,\"owned_by\":\"veil\"}");
}

TEST(oai_resp_sse_framing) {
    check_json(oai_sse_event("{\"a\":1}"), "data: {\"a\":1}\n\n");
    CHECK_EQ_STR(OAI_SSE_DONE, "data: [DONE]\n\n");
    /* a comment line: SSE clients skip it, proxies see traffic */
    CHECK_EQ_STR(OAI_SSE_PING, ": ping\n\n");
}

TEST(oai_resp_ids) {
    char a[40], b[40];
    oai_make_id(OAI_CHAT, a);
    oai_make_id(OAI_CHAT, b);
    CHECK(strncmp(a, "chatcmpl-", 9) == 0 && strlen(a) == 9 + 24);
    CHECK(strcmp(a, b) != 0);
    oai_make_id(OAI_COMPLETIONS, a);
    CHECK(strncmp(a, "cmpl-", 5) == 0 && strlen(a) == 5 + 24);
    for (size_t i = 5; a[i]; i++) CHECK((a[i] >= 'A' && a[i] <= 'Z') || (a[i] >= 'a' && a[i] <= 'z') || (a[i] >= '0' && a[i] <= '9'));
}
