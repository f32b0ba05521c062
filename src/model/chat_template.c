/* Chat templates by family (see chat_template.h). Rendering goes through a sink so that one
 * description of each format serves both the text (chat_tmpl_render) and the token ids
 * (chat_tmpl_encode), which therefore cannot drift apart. */
#include "model/chat_template.h"

#include "base/buf.h"
#include "base/err.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Receives the template's output. Without a tokenizer it only collects text; with one, `text`
 * holds the run of text since the last special token, and specials become ids at once. */
typedef struct tmpl_sink {
    const tokenizer *tok;
    buf text;
    int32_t *ids;
    size_t n_ids, cap_ids;
    bool failed;
} tmpl_sink;

static void sink_push_ids(tmpl_sink *s, const int32_t *ids, size_t n) {
    if (s->failed) return;
    if (s->n_ids + n > s->cap_ids) {
        size_t cap = s->cap_ids ? s->cap_ids : 64;
        while (cap < s->n_ids + n) cap *= 2;
        int32_t *p = realloc(s->ids, cap * sizeof *p);
        if (!p) {
            s->failed = true;
            err_set("out of memory encoding a chat prompt");
            return;
        }
        s->ids = p;
        s->cap_ids = cap;
    }
    memcpy(s->ids + s->n_ids, ids, n * sizeof *ids);
    s->n_ids += n;
}

/* Tokenizes the pending text run without matching control tokens: it may hold user text. */
static void sink_flush(tmpl_sink *s) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (!s->tok || s->failed || s->text.len == 0) return;
    if (buf_failed(&s->text) ||
        tok_encode(s->tok, s->text.data, s->text.len, false, false, &ids, &n) != 0) {
        s->failed = true;
        return;
    }
    sink_push_ids(s, ids, n);
    free(ids);
    buf_clear(&s->text);
}

static void sink_text(tmpl_sink *s, const char *p, size_t n) { buf_append(&s->text, p, n); }
static void sink_str(tmpl_sink *s, const char *p) { buf_puts(&s->text, p); }

static void sink_special(tmpl_sink *s, const char *piece) {
    int32_t id = s->tok ? tok_find(s->tok, piece) : -1;
    if (id < 0) {
        sink_str(s, piece); /* rendering, or the vocab lacks it: the model sees characters */
        return;
    }
    sink_flush(s);
    sink_push_ids(s, &id, 1);
}

static const char *role_of(const chat_msg *m) {
    return strcmp(m->role, "developer") == 0 ? "system" : m->role;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Meta's Llama templates strip each message. */
static void sink_trimmed(tmpl_sink *s, const chat_msg *m) {
    const char *p = m->content;
    size_t n = m->content_len;
    while (n && is_space(*p)) p++, n--;
    while (n && is_space(p[n - 1])) n--;
    sink_text(s, p, n);
}

static void render_chatml(tmpl_sink *s, const chat_msg *msgs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        sink_special(s, "<|im_start|>");
        sink_str(s, role_of(&msgs[i]));
        sink_str(s, "\n");
        sink_text(s, msgs[i].content, msgs[i].content_len);
        sink_special(s, "<|im_end|>");
        sink_str(s, "\n");
    }
    sink_special(s, "<|im_start|>");
    sink_str(s, "assistant\n");
}

static void llama3_header(tmpl_sink *s, const char *role) {
    sink_special(s, "<|start_header_id|>");
    sink_str(s, role);
    sink_special(s, "<|end_header_id|>");
    sink_str(s, "\n\n");
}

static void render_llama3(tmpl_sink *s, const chat_msg *msgs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        llama3_header(s, role_of(&msgs[i]));
        sink_trimmed(s, &msgs[i]);
        sink_special(s, "<|eot_id|>");
    }
    llama3_header(s, "assistant");
}

/* Turns are "[INST] user [/INST] answer </s><s>[INST] ...": the system text waits for the
 * next user turn and goes inside it; one left at the end gets a turn of its own. */
static void render_llama2(tmpl_sink *s, const chat_msg *msgs, size_t n) {
    const chat_msg *sys = NULL;
    bool after_answer = false, open = false;
    for (size_t i = 0; i <= n; i++) {
        const chat_msg *m = i < n ? &msgs[i] : NULL;
        const char *role = m ? role_of(m) : NULL;
        if (m && strcmp(role, "system") == 0) {
            sys = m;
            continue;
        }
        if (m && strcmp(role, "assistant") == 0) {
            if (open) sink_str(s, " ");
            sink_trimmed(s, m);
            sink_str(s, " ");
            after_answer = true;
            open = false;
            continue;
        }
        if (!m && !sys) break;
        if (after_answer) {
            sink_special(s, "</s>");
            sink_special(s, "<s>");
        }
        sink_str(s, "[INST] ");
        if (sys) {
            sink_str(s, "<<SYS>>\n");
            sink_trimmed(s, sys);
            sink_str(s, "\n<</SYS>>\n\n");
            sys = NULL;
        }
        if (m) sink_trimmed(s, m);
        sink_str(s, " [/INST]");
        after_answer = false;
        open = true;
    }
}

static void render_plain(tmpl_sink *s, const chat_msg *msgs, size_t n) {
    static const char *const known[][2] = {
        {"system", "System"}, {"user", "User"}, {"assistant", "Assistant"}, {"tool", "Tool"}};
    for (size_t i = 0; i < n; i++) {
        const char *role = role_of(&msgs[i]);
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (strcmp(role, known[k][0]) == 0) role = known[k][1];
        sink_str(s, role);
        sink_str(s, ": ");
        sink_text(s, msgs[i].content, msgs[i].content_len);
        sink_str(s, "\n");
    }
    sink_str(s, "Assistant:");
}

static void render(tmpl_sink *s, chat_tmpl t, const chat_msg *msgs, size_t n) {
    switch (t) {
    case CHAT_TMPL_CHATML: render_chatml(s, msgs, n); break;
    case CHAT_TMPL_LLAMA3: render_llama3(s, msgs, n); break;
    case CHAT_TMPL_LLAMA2: render_llama2(s, msgs, n); break;
    case CHAT_TMPL_PLAIN: render_plain(s, msgs, n); break;
    }
}

static const char *const tmpl_names[] = {"chatml", "llama3", "llama2", "plain"};

/* Tried in this order: a template that mentions several markers (multi-format templates
 * exist) gets the first one found, ChatML's being the most specific. */
chat_tmpl chat_tmpl_detect(const char *jinja, size_t len) {
    static const struct { const char *marker; chat_tmpl t; } markers[] = {
        {"<|im_start|>", CHAT_TMPL_CHATML},
        {"<|start_header_id|>", CHAT_TMPL_LLAMA3},
        {"[INST]", CHAT_TMPL_LLAMA2},
    };
    if (!jinja) return CHAT_TMPL_PLAIN;
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        if (memmem(jinja, len, markers[i].marker, strlen(markers[i].marker)))
            return markers[i].t;
    return CHAT_TMPL_PLAIN;
}

int chat_tmpl_from_name(const char *name, chat_tmpl *out) {
    for (size_t i = 0; i < sizeof tmpl_names / sizeof tmpl_names[0]; i++)
        if (strcmp(name, tmpl_names[i]) == 0) {
            *out = (chat_tmpl)i;
            return 0;
        }
    return err_set("unknown chat template '%s' (known: chatml, llama3, llama2, plain)", name);
}

const char *chat_tmpl_name(chat_tmpl t) {
    return (unsigned)t < sizeof tmpl_names / sizeof tmpl_names[0] ? tmpl_names[t] : "?";
}

char *chat_tmpl_render(chat_tmpl t, const chat_msg *msgs, size_t n, size_t *len) {
    tmpl_sink s = {0};
    render(&s, t, msgs, n);
    return buf_take(&s.text, len);
}

int chat_tmpl_encode(const tokenizer *tok, chat_tmpl t, const chat_msg *msgs, size_t n,
                     int32_t **ids, size_t *n_ids) {
    tmpl_sink s = {.tok = tok};
    if (tok_adds_bos(tok)) {
        int32_t bos = tok_bos(tok);
        sink_push_ids(&s, &bos, 1);
    }
    render(&s, t, msgs, n);
    sink_flush(&s);
    if (s.failed) goto fail;
    buf_free(&s.text);
    *ids = s.ids;
    *n_ids = s.n_ids;
    return 0;
fail:
    buf_free(&s.text);
    free(s.ids);
    return err_prefix("chat template %s", chat_tmpl_name(t));
}
