/* SentencePiece-style BPE (tokenizer.ggml.model = "llama"), as llama.cpp runs it: spaces
 * become U+2581, the text is cut into UTF-8 characters, and neighbours merge when their
 * concatenation is a piece, the highest-scoring pair first (ties: leftmost). A symbol left
 * with no piece falls back to one <0xNN> token per byte, or to the unknown token.
 *
 * Merges only produce NORMAL, UNDEFINED and USER_DEFINED pieces: a CONTROL piece such as
 * "<s>" spelled in the text stays text, as in SentencePiece. (llama.cpp would merge into any
 * piece; no real vocab tells the two apart.) Invalid UTF-8 bytes become one-byte symbols,
 * so they reach the byte fallback and decode back to themselves.
 *
 * Speed: merging a whole text at once keeps one heap the size of the text, and its cache
 * misses dominate. When no piece holds a U+2581 right after another character (true of
 * Llama's and stories' vocabs, checked at load), no merge can cross the start of a U+2581
 * run, so the text is merged word by word, with the same result in the same order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/utf8.h"
#include "model/tok_impl.h"

#define SPACE_MARK "\xE2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK */

static bool mergeable(const tokenizer *t, int32_t id) {
    uint8_t type = t->pieces[id].type;
    return type == TOK_NORMAL || type == TOK_UNDEFINED || type == TOK_USER_DEFINED;
}

/* Whether s[i] starts a U+2581 that follows some other character. */
static bool word_start(const char *s, size_t n, size_t i) {
    return i > 0 && n - i >= 3 && memcmp(s + i, SPACE_MARK, 3) == 0 &&
           (i < 3 || memcmp(s + i - 3, SPACE_MARK, 3) != 0);
}

void tok_spm_init(tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char name[8];
        int32_t id;
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_tok[b] = tok_lookup(t, name, 6, &id) ? id : -1;
    }
    t->spm_by_word = true;
    for (int32_t id = 0; id < t->n_vocab && t->spm_by_word; id++) {
        const tok_piece *p = &t->pieces[id];
        if (!mergeable(t, id)) continue;
        for (size_t i = 0; i < p->len; i++)
            if (word_start(t->arena + p->off, p->len, i)) t->spm_by_word = false;
    }
}

static bool find_piece(const tokenizer *t, const char *s, size_t n, int32_t *id) {
    return tok_lookup(t, s, n, id) && mergeable(t, *id);
}

/* Orders scores as integers: the float's bits, flipped so that larger scores sort first. */
static int64_t score_prio(float score) {
    uint32_t u;
    memcpy(&u, &score, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return -(int64_t)u;
}

static bool spm_pair(const tokenizer *t, const char *text, const tok_sym *l, const tok_sym *r,
                     int64_t *prio, int32_t *id) {
    if (!find_piece(t, text + l->off, (size_t)l->n + r->n, id)) return false;
    *prio = score_prio(t->pieces[*id].score);
    return true;
}

/* text with every space replaced by U+2581, and one in front when asked. */
static char *escape_spaces(const char *text, size_t len, bool space_prefix, size_t *out_len) {
    size_t n = space_prefix ? 3 : 0;
    for (size_t i = 0; i < len; i++) n += text[i] == ' ' ? 3 : 1;
    char *buf = malloc(n ? n : 1);
    if (!buf) {
        err_set("tokenizer: out of memory (%zu bytes)", n);
        return NULL;
    }
    size_t o = 0;
    if (space_prefix) memcpy(buf, SPACE_MARK, 3), o = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ')
            memcpy(buf + o, SPACE_MARK, 3), o += 3;
        else
            buf[o++] = text[i];
    }
    *out_len = n;
    return buf;
}

/* Merges buf[start, end) and emits its tokens. */
static int encode_word(const tokenizer *t, tok_work *w, const char *buf, size_t start, size_t end,
                       tok_ids *out) {
    w->n_syms = 0;
    for (size_t i = start; i < end;) {
        size_t clen = utf8_decode(buf + i, end - i, NULL);
        int32_t id;
        if (!clen) clen = 1;
        if (!find_piece(t, buf + i, clen, &id)) id = -1;
        if (tok_work_add(w, (uint32_t)i, (uint32_t)clen, id) < 0) return -1;
        i += clen;
    }
    if (tok_merge_run(w, t, buf, spm_pair) < 0) return -1;
    for (int32_t s = w->n_syms ? 0 : -1; s >= 0; s = w->syms[s].next) {
        const tok_sym *sym = &w->syms[s];
        if (sym->id >= 0) {
            if (tok_ids_push(out, sym->id) < 0) return -1;
            continue;
        }
        for (uint32_t j = 0; j < sym->n; j++) {
            unsigned char b = (unsigned char)buf[sym->off + j];
            int rc =
                t->byte_tok[b] >= 0 ? tok_ids_push(out, t->byte_tok[b]) : tok_push_unk(t, out, b);
            if (rc < 0) return -1;
        }
    }
    return 0;
}

int tok_spm_encode(const tokenizer *t, tok_work *w, const char *text, size_t len, bool space_prefix,
                   tok_ids *out) {
    size_t n;
    char *buf = escape_spaces(text, len, space_prefix, &n);
    int rc = 0;
    if (!buf) return -1;
    for (size_t start = 0, end; start < n && rc == 0; start = end) {
        end = start + 1;
        while (end < n && !(t->spm_by_word && word_start(buf, n, end))) end++;
        rc = encode_word(t, w, buf, start, end, out);
    }
    free(buf);
    return rc;
}
