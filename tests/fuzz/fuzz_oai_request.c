/* libFuzzer target: the OpenAI request parser must accept or reject any body without a crash
 * or a leak; a rejection names an HTTP status and a message, an acceptance holds only
 * in-range values, and the accepted messages render through a chat template. The first byte
 * picks the endpoint (even: chat, odd: completions). */
#include "api/oai_request.h"
#include "model/chat_template.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const oai_request *r) {
    if (r->temperature < 0 || r->temperature > 2 || r->top_p < 0 || r->top_p > 1 || r->n < 1 ||
        r->n > OAI_MAX_N || r->n_stop > STOPSTR_MAX || r->top_logprobs > OAI_MAX_TOP_LOGPROBS ||
        r->max_tokens == 0 || (r->endpoint == OAI_CHAT ? r->n_messages == 0 : r->n_prompts == 0))
        abort();
    for (int32_t i = 0; i < r->n_stop; i++)
        if (r->stop_len[i] == 0 || r->stop_len[i] > STOPSTR_MAX_LEN) abort();
    for (int32_t i = 0; i < r->n_bias; i++)
        if (r->bias_tokens[i] < 0 || r->bias_tokens[i] >= 4096 || !(r->bias_values[i] >= -100) ||
            !(r->bias_values[i] <= 100))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    oai_request r;
    oai_error e;
    char *body;
    if (size == 0) return 0;
    /* copy so that reads past the body hit ASan's redzone */
    body = malloc(size - 1 ? size - 1 : 1);
    if (!body) return 0;
    memcpy(body, data + 1, size - 1);
    if (oai_request_parse(data[0] & 1 ? OAI_COMPLETIONS : OAI_CHAT, body, size - 1, 4096, &r, &e) == 0) {
        check_accepted(&r);
        if (r.n_messages) {
            chat_msg m[8];
            size_t n = r.n_messages < 8 ? r.n_messages : 8, len;
            for (size_t i = 0; i < n; i++)
                m[i] = (chat_msg){r.messages[i].role, r.messages[i].content, r.messages[i].content_len};
            free(chat_tmpl_render((chat_tmpl)(data[0] >> 1 & 3), m, n, &len));
        }
        oai_request_free(&r);
    } else if (e.status < 400 || e.status > 599 || !e.message[0]) {
        abort();
    }
    free(body);
    return 0;
}
