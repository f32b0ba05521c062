/* OpenAI request bodies -> oai_request (see oai_request.h). Each field has one reader that
 * either leaves the default (absent or null), stores a checked value, or fills the error
 * naming the field; the parse stops at the first error. */
#include "api/oai_request.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD(e, param, ...) oai_error_set((e), 400, "invalid_request_error", (param), __VA_ARGS__)

typedef struct parse_ctx {
    json_t *root;
    oai_request *r;
    oai_error *e;
    int32_t n_vocab;
} parse_ctx;

/* The field's value, or NULL when it is absent or null. */
static json_t *field(const parse_ctx *c, const char *key) {
    json_t *v = json_object_get(c->root, key);
    return json_is_null(v) ? NULL : v;
}

static bool as_number(const json_t *v, double *out) {
    if (json_is_integer(v)) *out = (double)json_integer_value(v);
    else if (json_is_real(v)) *out = json_real_value(v);
    else return false;
    return true;
}

/* Integers, or reals with no fractional part that fit (JavaScript clients may send 5.0). */
static bool as_integer(const json_t *v, int64_t *out) {
    double d;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (!json_is_real(v)) return false;
    d = json_real_value(v);
    if (!(d >= -9.2e18 && d <= 9.2e18) || d != floor(d)) return false;
    *out = (int64_t)d;
    return true;
}

/* A malloc'd copy of a JSON string with a NUL after its bytes (it may hold NULs itself). */
static char *dup_string(const json_t *v, size_t *len) {
    size_t n = json_string_length(v);
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, json_string_value(v), n);
    s[n] = 0;
    if (len) *len = n;
    return s;
}

static int out_of_memory(parse_ctx *c) {
    return oai_error_set(c->e, 500, "server_error", NULL, "out of memory parsing the request");
}

/* 0: absent or null (default kept); 1: stored; -1: error. */
static int read_float(parse_ctx *c, const char *key, double lo, double hi, float *out) {
    json_t *v = field(c, key);
    double d;
    if (!v) return 0;
    if (!as_number(v, &d))
        return BAD(c->e, key, "Invalid type for '%s': expected a number.", key);
    if (!(d >= lo && d <= hi))
        return BAD(c->e, key, "Invalid value for '%s': %g is not between %g and %g.", key, d, lo, hi);
    *out = (float)d;
    return 1;
}

static int read_int(parse_ctx *c, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    json_t *v = field(c, key);
    int64_t i;
    if (!v) return 0;
    if (!as_integer(v, &i))
        return BAD(c->e, key, "Invalid type for '%s': expected an integer.", key);
    if (i < lo || i > hi)
        return BAD(c->e, key, "Invalid value for '%s': %lld is not between %lld and %lld.", key,
                   (long long)i, (long long)lo, (long long)hi);
    *out = i;
    return 1;
}

static int read_bool(parse_ctx *c, json_t *obj, const char *key, const char *param, bool *out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v))
        return BAD(c->e, param, "Invalid type for '%s': expected a boolean.", param);
    *out = json_is_true(v);
    return 1;
}

/* Names (model, role, user): strings without NUL bytes. */
static int read_name(parse_ctx *c, json_t *v, const char *param, char **out) {
    if (!json_is_string(v))
        return BAD(c->e, param, "Invalid type for '%s': expected a string.", param);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return BAD(c->e, param, "Invalid value for '%s': contains a NUL character.", param);
    if (!(*out = dup_string(v, NULL))) return out_of_memory(c);
    return 1;
}

/* Text parts joined with "\n"; other part types are not supported (no vision here). */
static int read_content(parse_ctx *c, json_t *v, size_t i, oai_message *m) {
    char param[64];
    size_t j, total = 0, at = 0;
    json_t *part;
    snprintf(param, sizeof param, "messages[%zu].content", i);
    if (!v || json_is_null(v)) {
        m->content = calloc(1, 1);
        return m->content ? 0 : out_of_memory(c);
    }
    if (json_is_string(v)) {
        m->content = dup_string(v, &m->content_len);
        return m->content ? 0 : out_of_memory(c);
    }
    if (!json_is_array(v))
        return BAD(c->e, param, "Invalid type for '%s': expected a string or an array of content parts.", param);
    json_array_foreach(v, j, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        snprintf(param, sizeof param, "messages[%zu].content[%zu]", i, j);
        if (!json_is_object(part) || !json_is_string(type))
            return BAD(c->e, param, "Invalid value for '%s': expected an object with a 'type'.", param);
        if (strcmp(json_string_value(type), "text") != 0)
            return BAD(c->e, param, "Unsupported content part type '%.32s' in '%s': only 'text' is supported.",
                       json_string_value(type), param);
        if (!json_is_string(text))
            return BAD(c->e, param, "Invalid value for '%s': 'text' must be a string.", param);
        total += json_string_length(text) + (j > 0);
    }
    if (!(m->content = malloc(total + 1))) return out_of_memory(c);
    json_array_foreach(v, j, part) {
        json_t *text = json_object_get(part, "text");
        if (j > 0) m->content[at++] = '\n';
        memcpy(m->content + at, json_string_value(text), json_string_length(text));
        at += json_string_length(text);
    }
    m->content[at] = 0;
    m->content_len = at;
    return 0;
}

static int read_messages(parse_ctx *c) {
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};
    json_t *v = field(c, "messages"), *msg;
    size_t i;
    char param[64];
    if (!v) return BAD(c->e, "messages", "Missing required parameter: 'messages'.");
    if (!json_is_array(v))
        return BAD(c->e, "messages", "Invalid type for 'messages': expected an array.");
    if (json_array_size(v) == 0)
        return BAD(c->e, "messages", "Invalid value for 'messages': expected a non-empty array.");
    c->r->messages = calloc(json_array_size(v), sizeof *c->r->messages);
    if (!c->r->messages) return out_of_memory(c);
    json_array_foreach(v, i, msg) {
        oai_message *m = &c->r->messages[i];
        json_t *role = json_object_get(msg, "role");
        bool known = false;
        c->r->n_messages = i + 1;
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(msg))
            return BAD(c->e, param, "Invalid type for '%s': expected an object.", param);
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!role) return BAD(c->e, param, "Missing required parameter: '%s'.", param);
        if (read_name(c, role, param, &m->role) < 0) return -1;
        for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++) known |= strcmp(m->role, roles[k]) == 0;
        if (!known)
            return BAD(c->e, param, "Invalid value for '%s': '%s' is not one of system, developer, user, assistant, tool.",
                       param, m->role);
        if (read_content(c, json_object_get(msg, "content"), i, m) < 0) return -1;
    }
    return 0;
}

static int read_token_ids(parse_ctx *c, json_t *arr, const char *param, oai_prompt *p) {
    size_t i;
    json_t *t;
    if (json_array_size(arr) == 0)
        return BAD(c->e, param, "Invalid value for '%s': a token prompt must not be empty.", param);
    p->ids = malloc(json_array_size(arr) * sizeof *p->ids);
    if (!p->ids) return out_of_memory(c);
    json_array_foreach(arr, i, t) {
        int64_t id;
        int64_t hi = c->n_vocab > 0 ? c->n_vocab - 1 : INT32_MAX;
        if (!as_integer(t, &id) || id < 0 || id > hi)
            return BAD(c->e, param, "Invalid value for '%s': element %zu is not a token id in [0, %lld].",
                       param, i, (long long)hi);
        p->ids[i] = (int32_t)id;
        p->n_ids = i + 1;
    }
    return 0;
}

/* A string, strings, token ids, or arrays of token ids. */
static int read_prompts(parse_ctx *c) {
    json_t *v = field(c, "prompt"), *el, *first;
    size_t i, n;
    char param[64];
    if (!v) return BAD(c->e, "prompt", "Missing required parameter: 'prompt'.");
    if (!json_is_string(v) && !json_is_array(v))
        return BAD(c->e, "prompt", "Invalid type for 'prompt': expected a string or an array.");
    if (json_is_array(v) && json_array_size(v) == 0)
        return BAD(c->e, "prompt", "Invalid value for 'prompt': expected a non-empty array.");
    first = json_is_array(v) ? json_array_get(v, 0) : v;
    /* an array of numbers is one prompt in token ids; otherwise one prompt per element */
    n = json_is_array(v) && !json_is_number(first) ? json_array_size(v) : 1;
    c->r->prompts = calloc(n, sizeof *c->r->prompts);
    if (!c->r->prompts) return out_of_memory(c);
    c->r->n_prompts = n;
    if (json_is_string(v)) {
        c->r->prompts[0].text = dup_string(v, &c->r->prompts[0].text_len);
        return c->r->prompts[0].text ? 0 : out_of_memory(c);
    }
    if (json_is_number(first)) return read_token_ids(c, v, "prompt", &c->r->prompts[0]);
    json_array_foreach(v, i, el) {
        snprintf(param, sizeof param, "prompt[%zu]", i);
        if (json_is_string(el) && json_is_string(first)) {
            c->r->prompts[i].text = dup_string(el, &c->r->prompts[i].text_len);
            if (!c->r->prompts[i].text) return out_of_memory(c);
        } else if (json_is_array(el) && json_is_array(first)) {
            if (read_token_ids(c, el, param, &c->r->prompts[i]) < 0) return -1;
        } else {
            return BAD(c->e, param, "Invalid type for '%s': all prompts must be strings, or all arrays of token ids.",
                       param);
        }
    }
    return 0;
}

static int add_stop(parse_ctx *c, json_t *s) {
    oai_request *r = c->r;
    if (!json_is_string(s))
        return BAD(c->e, "stop", "Invalid type for 'stop': expected a string or an array of strings.");
    if (json_string_length(s) == 0 || json_string_length(s) > STOPSTR_MAX_LEN)
        return BAD(c->e, "stop", "Invalid value for 'stop': each stop string must be 1 to %d bytes.",
                   STOPSTR_MAX_LEN);
    if (strlen(json_string_value(s)) != json_string_length(s))
        return BAD(c->e, "stop", "Invalid value for 'stop': contains a NUL character.");
    if (r->n_stop == STOPSTR_MAX)
        return BAD(c->e, "stop", "Invalid value for 'stop': at most %d stop strings.", STOPSTR_MAX);
    if (!(r->stop[r->n_stop] = dup_string(s, &r->stop_len[r->n_stop]))) return out_of_memory(c);
    r->n_stop++;
    return 0;
}

static int read_stop(parse_ctx *c) {
    json_t *v = field(c, "stop"), *s;
    size_t i;
    if (!v) return 0;
    if (!json_is_array(v)) return add_stop(c, v);
    json_array_foreach(v, i, s) if (add_stop(c, s) < 0) return -1;
    return 0;
}

/* Keys are token ids written in decimal. */
static int read_logit_bias(parse_ctx *c) {
    json_t *v = field(c, "logit_bias"), *val;
    const char *key;
    oai_request *r = c->r;
    size_t n;
    if (!v) return 0;
    if (!json_is_object(v))
        return BAD(c->e, "logit_bias", "Invalid type for 'logit_bias': expected an object.");
    n = json_object_size(v);
    if (n == 0) return 0;
    r->bias_tokens = malloc(n * sizeof *r->bias_tokens);
    r->bias_values = malloc(n * sizeof *r->bias_values);
    if (!r->bias_tokens || !r->bias_values) return out_of_memory(c);
    json_object_foreach(v, key, val) {
        int64_t id = 0, hi = c->n_vocab > 0 ? c->n_vocab - 1 : INT32_MAX;
        size_t len = strlen(key);
        double bias;
        bool digits = len > 0 && len <= 10;
        for (size_t k = 0; digits && k < len; k++) {
            digits = key[k] >= '0' && key[k] <= '9';
            id = id * 10 + (key[k] - '0');
        }
        if (!digits || id > hi)
            return BAD(c->e, "logit_bias", "Invalid key in 'logit_bias': '%.32s' is not a token id in [0, %lld].",
                       key, (long long)hi);
        if (!as_number(val, &bias) || !(bias >= -100 && bias <= 100))
            return BAD(c->e, "logit_bias", "Invalid value in 'logit_bias' for token %lld: expected a number between -100 and 100.",
                       (long long)id);
        r->bias_tokens[r->n_bias] = (int32_t)id;
        r->bias_values[r->n_bias] = (float)bias;
        r->n_bias++;
    }
    return 0;
}

static int read_logprobs(parse_ctx *c) {
    oai_request *r = c->r;
    int64_t top = -1;
    if (r->endpoint == OAI_COMPLETIONS) {
        if (read_int(c, "logprobs", 0, OAI_MAX_TOP_LOGPROBS, &top) < 0) return -1;
    } else {
        bool want = false;
        int got;
        if (read_bool(c, c->root, "logprobs", "logprobs", &want) < 0) return -1;
        if ((got = read_int(c, "top_logprobs", 0, OAI_MAX_TOP_LOGPROBS, &top)) < 0) return -1;
        if (got && !want)
            return BAD(c->e, "top_logprobs", "Invalid value for 'top_logprobs': 'logprobs' must be true when 'top_logprobs' is given.");
        top = want ? (got ? top : 0) : -1;
    }
    r->top_logprobs = (int32_t)top;
    return 0;
}

static int read_stream(parse_ctx *c) {
    json_t *opts = field(c, "stream_options");
    if (read_bool(c, c->root, "stream", "stream", &c->r->stream) < 0) return -1;
    if (!opts) return 0;
    if (!c->r->stream)
        return BAD(c->e, "stream_options", "Invalid value for 'stream_options': only allowed when 'stream' is true.");
    if (!json_is_object(opts))
        return BAD(c->e, "stream_options", "Invalid type for 'stream_options': expected an object.");
    return read_bool(c, opts, "include_usage", "stream_options.include_usage", &c->r->include_usage) < 0 ? -1 : 0;
}

static int read_scalars(parse_ctx *c) {
    oai_request *r = c->r;
    int64_t i;
    json_t *v;
    int got;
    if ((v = field(c, "model")) && read_name(c, v, "model", &r->model) < 0) return -1;
    if ((v = field(c, "user")) && read_name(c, v, "user", &r->user) < 0) return -1;
    if (read_int(c, "max_tokens", 1, INT32_MAX, &r->max_tokens) < 0) return -1;
    if (read_int(c, "max_completion_tokens", 1, INT32_MAX, &r->max_tokens) < 0) return -1;
    if (read_float(c, "temperature", 0, 2, &r->temperature) < 0) return -1;
    if (read_float(c, "top_p", 0, 1, &r->top_p) < 0) return -1;
    if (read_float(c, "min_p", 0, 1, &r->min_p) < 0) return -1;
    if ((got = read_int(c, "top_k", 0, INT32_MAX, &i)) < 0) return -1;
    if (got) r->top_k = (int32_t)i;
    if ((got = read_int(c, "seed", INT64_MIN, INT64_MAX, &r->seed)) < 0) return -1;
    r->has_seed = got == 1;
    if ((got = read_int(c, "n", 1, OAI_MAX_N, &i)) < 0) return -1;
    if (got) r->n = (int32_t)i;
    if (read_float(c, "presence_penalty", -2, 2, &r->presence_penalty) < 0) return -1;
    if (read_float(c, "frequency_penalty", -2, 2, &r->frequency_penalty) < 0) return -1;
    return 0;
}

int oai_request_parse(oai_endpoint ep, const char *body, size_t len, int32_t n_vocab,
                      oai_request *r, oai_error *e) {
    json_error_t jerr;
    parse_ctx c = {.r = r, .e = e, .n_vocab = n_vocab};
    *r = (oai_request){.endpoint = ep, .max_tokens = -1, .temperature = 1, .top_p = 1,
                       .n = 1, .top_logprobs = -1};
    c.root = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
    if (!c.root) {
        BAD(e, NULL, "We could not parse the JSON body of your request: %s (line %d, column %d).",
            jerr.text, jerr.line, jerr.column);
        goto fail;
    }
    if (!json_is_object(c.root)) {
        BAD(e, NULL, "The request body must be a JSON object.");
        goto fail;
    }
    if (read_scalars(&c) < 0 || read_stop(&c) < 0 || read_logit_bias(&c) < 0 ||
        read_logprobs(&c) < 0 || read_stream(&c) < 0)
        goto fail;
    if ((ep == OAI_CHAT ? read_messages(&c) : read_prompts(&c)) < 0) goto fail;
    json_decref(c.root);
    return 0;
fail:
    json_decref(c.root);
    oai_request_free(r);
    return -1;
}

void oai_request_free(oai_request *r) {
    for (size_t i = 0; i < r->n_messages; i++) {
        free(r->messages[i].role);
        free(r->messages[i].content);
    }
    for (size_t i = 0; i < r->n_prompts; i++) {
        free(r->prompts[i].text);
        free(r->prompts[i].ids);
    }
    for (int32_t i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->messages);
    free(r->prompts);
    free(r->bias_tokens);
    free(r->bias_values);
    free(r->model);
    free(r->user);
    *r = (oai_request){.endpoint = r->endpoint, .max_tokens = -1, .top_logprobs = -1};
}
