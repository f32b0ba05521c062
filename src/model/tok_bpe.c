/* Byte-level BPE (tokenizer.ggml.model = "gpt2"): split the text with the pre-tokenizer's
 * regex, map each pre-token's bytes to printable code points (GPT-2's bytes_to_unicode), merge
 * byte symbols by merge rank (lowest first, ties leftmost), look the results up.
 *
 * The regexes are the ones in Hugging Face's tokenizer.json files, with two spellings made
 * exact for PCRE2: \s and \S are written out as Unicode White_Space (PCRE2's \s would also
 * take U+180E), and the case-insensitive contractions as ASCII classes (PCRE2's caseless 's'
 * would also take U+017F); both as llama.cpp does.
 *
 * Merges are held as (left id, right id) -> (rank, result id). A merge whose parts or result
 * are not tokens can never fire in a valid vocab (Hugging Face refuses such files), so it is
 * dropped at load; the first of duplicate merges wins. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/err.h"
#include "base/utf8.h"
#include "model/tok_impl.h"

/* Unicode White_Space. */
#define WS "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}" \
           "\\x{205F}\\x{3000}"
#define CONTRACTIONS "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]"
#define SPACE_RUNS "[" WS "]+(?![^" WS "])|[" WS "]+"

static const char re_gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS
                              "\\p{L}\\p{N}]+|" SPACE_RUNS;
static const char re_qwen2[] = CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^" WS
                               "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|" SPACE_RUNS;
static const char re_llama3[] = CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^" WS
                                "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|" SPACE_RUNS;

static const struct {
    const char *name;
    enum tok_pre pre;
} pre_names[] = {
    {"gpt-2", TOK_PRE_GPT2},     {"llama-bpe", TOK_PRE_LLAMA3}, {"llama3", TOK_PRE_LLAMA3},
    {"llama-v3", TOK_PRE_LLAMA3}, {"qwen2", TOK_PRE_QWEN2},
};

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes
 * take the code points from U+0100 up, in byte order. */
static void build_byte_table(tokenizer *t) {
    uint16_t next = 256;
    for (size_t i = 0; i < sizeof t->cp_byte / sizeof t->cp_byte[0]; i++) t->cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        t->byte_cp[b] = printable ? (uint16_t)b : next++;
        t->cp_byte[t->byte_cp[b]] = (int16_t)b;
    }
}

static int pick_pre(tokenizer *t, const gguf *g) {
    gguf_str pre;
    int r = gguf_get_str(g, "tokenizer.ggml.pre", &pre);
    if (r < 0) return -1;
    if (r == 0)
        return err_set("%s: tokenizer.ggml.pre is missing; a gpt2 tokenizer needs one of "
                       "gpt-2, llama-bpe, qwen2",
                       gguf_path(g));
    for (size_t i = 0; i < sizeof pre_names / sizeof pre_names[0]; i++) {
        if (gguf_str_eq(pre, pre_names[i].name)) {
            t->pre = pre_names[i].pre;
            return 0;
        }
    }
    return err_set("%s: unsupported tokenizer.ggml.pre '%.*s' (supported: gpt-2, llama-bpe, "
                   "qwen2)",
                   gguf_path(g), (int)(pre.len > 100 ? 100 : pre.len), pre.ptr);
}

static int compile_regex(tokenizer *t) {
    const char *pattern = t->pre == TOK_PRE_GPT2     ? re_gpt2
                          : t->pre == TOK_PRE_QWEN2 ? re_qwen2
                                                    : re_llama3;
    int code;
    PCRE2_SIZE where;
    t->regex = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                             &code, &where, NULL);
    if (!t->regex) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return err_set("tokenizer: pre-tokenizer regex does not compile at %zu: %s",
                       (size_t)where, (const char *)msg);
    }
    /* JIT is a speed-up only: without it (or when it fails) the interpreter runs. */
    pcre2_jit_compile(t->regex, PCRE2_JIT_COMPLETE);
    return 0;
}

static int load_merges(tokenizer *t, const gguf *g) {
    const gguf_value *arr;
    char *cat = NULL;
    size_t cap_cat = 0;
    int r = gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STRING, &arr);
    if (r < 0) return -1;
    if (r == 0) return err_set("%s: tokenizer.ggml.merges is missing", gguf_path(g));
    t->merges = u64map_new(arr->v.arr.n);
    if (!t->merges) return -1;
    for (uint64_t i = 0; i < arr->v.arr.n; i++) {
        gguf_str m = arr->v.arr.items[i].v.s;
        const char *sp = m.len > 1 ? memchr(m.ptr + 1, ' ', m.len - 1) : NULL;
        int32_t left, right, result;
        if (!sp) continue;
        size_t ll = (size_t)(sp - m.ptr), rl = m.len - ll - 1;
        if (!tok_lookup(t, m.ptr, ll, &left) || !tok_lookup(t, sp + 1, rl, &right)) continue;
        if (ll + rl > cap_cat) {
            char *c = realloc(cat, ll + rl);
            if (!c) {
                err_set("tokenizer: out of memory reading merges");
                goto fail;
            }
            cat = c, cap_cat = ll + rl;
        }
        memcpy(cat, m.ptr, ll);
        memcpy(cat + ll, sp + 1, rl);
        if (!tok_lookup(t, cat, ll + rl, &result)) continue;
        uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
        if (u64map_add(t->merges, key, i << 32 | (uint32_t)result, false) < 0) goto fail;
    }
    free(cat);
    return 0;
fail:
    free(cat);
    return -1;
}

int tok_bpe_init(tokenizer *t, const gguf *g) {
    if (pick_pre(t, g) < 0) return -1;
    t->nfc = t->pre == TOK_PRE_QWEN2;
    t->ignore_merges = t->pre == TOK_PRE_LLAMA3;
    build_byte_table(t);
    for (int b = 0; b < 256; b++) {
        char s[4];
        int32_t id;
        size_t n = utf8_encode(t->byte_cp[b], s);
        t->byte_tok[b] = tok_lookup(t, s, n, &id) ? id : -1;
    }
    if (load_merges(t, g) < 0) return -1;
    return compile_regex(t);
}

void tok_bpe_free(tokenizer *t) {
    u64map_free(t->merges);
    pcre2_code_free(t->regex);
}

static bool bpe_pair(const tokenizer *t, const char *text, const tok_sym *l, const tok_sym *r,
                     int64_t *prio, int32_t *id) {
    uint64_t v;
    (void)text;
    if (l->id < 0 || r->id < 0) return false;
    if (!u64map_get(t->merges, (uint64_t)(uint32_t)l->id << 32 | (uint32_t)r->id, &v))
        return false;
    *prio = (int64_t)(v >> 32);
    *id = (int32_t)(uint32_t)v;
    return true;
}

/* The whole pre-token as one piece, when ignore_merges allows it and the vocab has it. */
static int whole_word(const tokenizer *t, tok_work *w, const char *s, size_t n, int32_t *id) {
    if (2 * n > w->cap_buf) {
        char *b = realloc(w->buf, 2 * n);
        if (!b) return err_set("tokenizer: out of memory (%zu bytes)", 2 * n);
        w->buf = b, w->cap_buf = 2 * n;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += utf8_encode(t->byte_cp[(unsigned char)s[i]], w->buf + o);
    if (!tok_lookup(t, w->buf, o, id)) return 0;
    uint8_t type = t->pieces[*id].type;
    return type == TOK_NORMAL || type == TOK_UNDEFINED;
}

static int encode_word(const tokenizer *t, tok_work *w, const char *s, size_t n, tok_ids *out) {
    int32_t id;
    if (t->ignore_merges) {
        int r = whole_word(t, w, s, n, &id);
        if (r != 0) return r < 0 ? -1 : tok_ids_push(out, id);
    }
    w->n_syms = 0;
    for (size_t i = 0; i < n; i++)
        if (tok_work_add(w, (uint32_t)i, 1, t->byte_tok[(unsigned char)s[i]]) < 0) return -1;
    if (tok_merge_run(w, t, s, bpe_pair) < 0) return -1;
    for (int32_t k = w->n_syms ? 0 : -1; k >= 0; k = w->syms[k].next) {
        const tok_sym *sym = &w->syms[k];
        /* Only a single byte whose character is missing from the vocab can lack a token. */
        int rc = sym->id >= 0 ? tok_ids_push(out, sym->id)
                              : tok_push_unk(t, out, (unsigned char)s[sym->off]);
        if (rc < 0) return -1;
    }
    return 0;
}

static bool all_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return false;
    return true;
}

static int split_and_encode(const tokenizer *t, tok_work *w, const char *s, size_t n,
                            tok_ids *out) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->regex, NULL);
    size_t pos = 0;
    if (!md) return err_set("tokenizer: out of memory (regex match data)");
    while (pos < n) {
        int rc = pcre2_match(t->regex, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(t->regex, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                             md, NULL);
        size_t a = n, b = n;
        if (rc >= 0) {
            const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            a = ov[0], b = ov[1];
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            err_set("tokenizer: pre-tokenizer regex failed at byte %zu: %s", pos,
                    (const char *)msg);
            goto fail;
        }
        /* Every character matches some branch of these patterns, so neither gap nor empty
         * match occurs; both are still handled rather than trusted (s is valid UTF-8 here,
         * so an empty match still advances by one whole character). */
        if (a > pos && encode_word(t, w, s + pos, a - pos, out) < 0) goto fail;
        if (b == a && a < n) b = a + utf8_decode(s + a, n - a, NULL);
        if (b > a && encode_word(t, w, s + a, b - a, out) < 0) goto fail;
        pos = b;
    }
    pcre2_match_data_free(md);
    return 0;
fail:
    pcre2_match_data_free(md);
    return -1;
}

int tok_bpe_encode(const tokenizer *t, tok_work *w, const char *text, size_t len,
                   tok_ids *out) {
    char *repaired = NULL;
    utf8proc_uint8_t *normal = NULL;
    int rc = -1;
    if (!utf8_valid(text, len)) {
        repaired = utf8_repair(text, len, &len);
        if (!repaired) goto done;
        text = repaired;
    }
    if (t->nfc && !all_ascii(text, len)) {
        utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len,
                                          &normal, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (n < 0) {
            err_set("tokenizer: NFC normalization failed: %s", utf8proc_errmsg(n));
            goto done;
        }
        text = (const char *)normal, len = (size_t)n;
    }
    rc = split_and_encode(t, w, text, len, out);
done:
    free(repaired);
    free(normal);
    return rc;
}

int tok_bpe_decode_piece(const tokenizer *t, const char *piece, size_t len, char *out,
                         size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_decode(piece + i, len - i, &cp);
        if (n && cp < sizeof t->cp_byte / sizeof t->cp_byte[0] && t->cp_byte[cp] >= 0) {
            if (o >= cap) return -1;
            out[o++] = (char)t->cp_byte[cp];
        } else {
            if (!n) n = 1;
            if (cap - o < n) return -1;
            memcpy(out + o, piece + i, n);
            o += n;
        }
        i += n;
    }
    return (int)o;
}
