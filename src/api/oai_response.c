/* OpenAI response bodies (see oai_response.h), built as jansson trees and dumped compact.
 * Every insertion goes through put()/push(), which note a failure instead of stopping, so an
 * out-of-memory anywhere turns into one NULL at the end. */
#include "api/oai_response.h"

#include "base/err.h"
#include "base/utf8.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void put(json_t *o, const char *key, json_t *v, bool *ok) {
    if (!o || !v || json_object_set_new(o, key, v) != 0) *ok = false;
}

static void push(json_t *a, json_t *v, bool *ok) {
    if (!a || !v || json_array_append_new(a, v) != 0) *ok = false;
}

/* A JSON string of the text, with U+FFFD for bytes that are not valid UTF-8. */
static json_t *text_json(const char *s, size_t n) {
    size_t len;
    char *fixed;
    json_t *j;
    if (utf8_valid(s, n)) return json_stringn(n ? s : "", n);
    if (!(fixed = utf8_repair(s, n, &len))) return NULL;
    j = json_stringn(fixed, len);
    free(fixed);
    return j;
}

static json_t *bytes_json(const char *s, size_t n, bool *ok) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) push(a, json_integer((unsigned char)s[i]), ok);
    return a;
}

static json_t *usage_json(const oai_usage *u, bool *ok) {
    json_t *o = json_object(), *details = json_object();
    put(o, "prompt_tokens", json_integer(u->prompt_tokens), ok);
    put(o, "completion_tokens", json_integer(u->completion_tokens), ok);
    put(o, "total_tokens", json_integer(u->prompt_tokens + u->completion_tokens), ok);
    put(details, "cached_tokens", json_integer(u->cached_tokens), ok);
    put(o, "prompt_tokens_details", details, ok);
    return o;
}

static json_t *chat_token_json(const oai_token_logprob *t, bool *ok) {
    json_t *o = json_object();
    put(o, "token", text_json(t->text, t->text_len), ok);
    put(o, "logprob", json_real(t->logprob), ok);
    put(o, "bytes", bytes_json(t->text, t->text_len, ok), ok);
    return o;
}

/* {"content":[...],"refusal":null} */
static json_t *chat_logprobs_json(const oai_logprob *lps, size_t n, bool *ok) {
    json_t *o = json_object(), *content = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *entry = chat_token_json(&lps[i].chosen, ok), *top = json_array();
        for (int32_t k = 0; k < lps[i].n_top; k++) push(top, chat_token_json(&lps[i].top[k], ok), ok);
        put(entry, "top_logprobs", top, ok);
        push(content, entry, ok);
    }
    put(o, "content", content, ok);
    put(o, "refusal", json_null(), ok);
    return o;
}

/* The legacy shape: parallel arrays, top alternatives as {token text: logprob}. */
static json_t *completion_logprobs_json(const oai_logprob *lps, size_t n, size_t offset, bool *ok) {
    json_t *o = json_object(), *tokens = json_array(), *lp = json_array(), *top = json_array(),
           *offs = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *alts = json_object();
        push(tokens, text_json(lps[i].chosen.text, lps[i].chosen.text_len), ok);
        push(lp, json_real(lps[i].chosen.logprob), ok);
        for (int32_t k = 0; k < lps[i].n_top; k++) {
            json_t *key = text_json(lps[i].top[k].text, lps[i].top[k].text_len);
            if (!key) *ok = false;
            else put(alts, json_string_value(key), json_real(lps[i].top[k].logprob), ok);
            json_decref(key);
        }
        push(top, alts, ok);
        push(offs, json_integer((json_int_t)offset), ok);
        offset += lps[i].chosen.text_len;
    }
    put(o, "tokens", tokens, ok);
    put(o, "token_logprobs", lp, ok);
    put(o, "top_logprobs", top, ok);
    put(o, "text_offset", offs, ok);
    return o;
}

static json_t *envelope(const oai_meta *m, const char *object, bool *ok) {
    json_t *o = json_object();
    put(o, "id", json_string(m->id), ok);
    put(o, "object", json_string(object), ok);
    put(o, "created", json_integer(m->created), ok);
    put(o, "model", text_json(m->model, strlen(m->model)), ok);
    return o;
}

static char *dump(json_t *root, bool ok) {
    char *s = ok ? json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(root);
    if (!s) err_set("out of memory building a JSON response");
    return s;
}

static const char *object_name(const oai_meta *m, bool chunk) {
    if (m->endpoint == OAI_COMPLETIONS) return "text_completion";
    return chunk ? "chat.completion.chunk" : "chat.completion";
}

char *oai_response_json(const oai_meta *m, const oai_choice *choices, size_t n,
                        const oai_usage *u) {
    bool ok = true;
    json_t *root = envelope(m, object_name(m, false), &ok), *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const oai_choice *c = &choices[i];
        json_t *o = json_object(), *lp;
        put(o, "index", json_integer((json_int_t)i), &ok);
        if (m->endpoint == OAI_CHAT) {
            json_t *msg = json_object();
            put(msg, "role", json_string("assistant"), &ok);
            put(msg, "content", text_json(c->text, c->text_len), &ok);
            put(msg, "refusal", json_null(), &ok);
            put(o, "message", msg, &ok);
            lp = c->has_logprobs ? chat_logprobs_json(c->logprobs, c->n_logprobs, &ok) : json_null();
        } else {
            put(o, "text", text_json(c->text, c->text_len), &ok);
            lp = c->has_logprobs ? completion_logprobs_json(c->logprobs, c->n_logprobs, 0, &ok)
                                 : json_null();
        }
        put(o, "logprobs", lp, &ok);
        put(o, "finish_reason", json_string(c->finish_reason), &ok);
        push(arr, o, &ok);
    }
    put(root, "choices", arr, &ok);
    put(root, "usage", usage_json(u, &ok), &ok);
    if (m->endpoint == OAI_CHAT) put(root, "system_fingerprint", json_null(), &ok);
    return dump(root, ok);
}

char *oai_chunk_json(const oai_meta *m, const oai_delta *d, bool include_usage) {
    bool ok = true;
    json_t *root = envelope(m, object_name(m, true), &ok), *arr = json_array(), *o = json_object();
    json_t *lp = json_null();
    put(o, "index", json_integer(d->index), &ok);
    if (m->endpoint == OAI_CHAT) {
        json_t *delta = json_object();
        if (d->first) put(delta, "role", json_string("assistant"), &ok);
        if (d->text || d->first)
            put(delta, "content", text_json(d->text ? d->text : "", d->text ? d->text_len : 0), &ok);
        put(o, "delta", delta, &ok);
        if (d->has_logprobs) lp = chat_logprobs_json(d->logprobs, d->n_logprobs, &ok);
    } else {
        put(o, "text", text_json(d->text ? d->text : "", d->text ? d->text_len : 0), &ok);
        if (d->has_logprobs) lp = completion_logprobs_json(d->logprobs, d->n_logprobs, d->text_offset, &ok);
    }
    put(o, "logprobs", lp, &ok);
    put(o, "finish_reason", d->finish_reason ? json_string(d->finish_reason) : json_null(), &ok);
    push(arr, o, &ok);
    put(root, "choices", arr, &ok);
    if (include_usage) put(root, "usage", json_null(), &ok);
    return dump(root, ok);
}

char *oai_usage_chunk_json(const oai_meta *m, const oai_usage *u) {
    bool ok = true;
    json_t *root = envelope(m, object_name(m, true), &ok);
    put(root, "choices", json_array(), &ok);
    put(root, "usage", usage_json(u, &ok), &ok);
    return dump(root, ok);
}

char *oai_error_json(const oai_error *e) {
    bool ok = true;
    json_t *root = json_object(), *o = json_object();
    put(o, "message", text_json(e->message, strlen(e->message)), &ok);
    put(o, "type", json_string(e->type ? e->type : "server_error"), &ok);
    put(o, "param", e->param[0] ? text_json(e->param, strlen(e->param)) : json_null(), &ok);
    put(o, "code", e->code[0] ? json_string(e->code) : json_null(), &ok);
    put(root, "error", o, &ok);
    return dump(root, ok);
}

static json_t *model_object(const char *model, int64_t created, bool *ok) {
    json_t *o = json_object();
    put(o, "id", text_json(model, strlen(model)), ok);
    put(o, "object", json_string("model"), ok);
    put(o, "created", json_integer(created), ok);
    put(o, "owned_by", json_string("veil"), ok);
    return o;
}

char *oai_models_json(const char *model, int64_t created, bool list) {
    return list ? oai_model_list_json(&model, 1, created) : oai_model_json(model, created);
}

char *oai_model_json(const char *model, int64_t created) {
    bool ok = true;
    json_t *o = model_object(model, created, &ok);
    return dump(o, ok);
}

char *oai_model_list_json(const char *const *models, size_t n, int64_t created) {
    bool ok = true;
    json_t *root = json_object(), *data = json_array();
    put(root, "object", json_string("list"), &ok);
    for (size_t i = 0; i < n; i++) push(data, model_object(models[i], created, &ok), &ok);
    put(root, "data", data, &ok);
    return dump(root, ok);
}

char *oai_sse_event(const char *json) {
    size_t n = strlen(json);
    char *s = malloc(n + 9);
    if (!s) {
        err_set("out of memory building an SSE event");
        return NULL;
    }
    memcpy(s, "data: ", 6);
    memcpy(s + 6, json, n);
    memcpy(s + 6 + n, "\n\n", 3);
    return s;
}

void oai_make_id(oai_endpoint ep, char out[40]) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[24];
    const char *prefix = ep == OAI_CHAT ? "chatcmpl-" : "cmpl-";
    size_t at = strlen(prefix);
    if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
        /* no entropy yet (early boot): ids need to be unique, not secret */
        static _Atomic uint64_t counter;
        uint64_t x = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull + ++counter;
        for (size_t i = 0; i < sizeof rnd; i++) {
            x ^= x >> 31;
            x *= 0xBF58476D1CE4E5B9ull;
            rnd[i] = (unsigned char)(x >> 56);
        }
    }
    memcpy(out, prefix, at);
    for (size_t i = 0; i < sizeof rnd; i++) out[at++] = alphabet[rnd[i] % 62];
    out[at] = 0;
}
