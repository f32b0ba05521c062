/* The tokenizer object: loading the vocab from GGUF metadata, splitting text on special
 * tokens, handing the plain runs to the family's encoder (tok_spm.c / tok_bpe.c), decoding,
 * and the accessors. See tokenizer.h for the behaviour it guarantees. */
#include "model/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/grow.h"
#include "model/tok_impl.h"

#define SPACE_MARK "\xE2\x96\x81" /* U+2581, SentencePiece's space */

/* Texts that end generation when a CONTROL/USER_DEFINED token has them (llama.cpp's list). */
static const char *const eog_texts[] = {
    "<|eot_id|>",    "<|eom_id|>",      "<|im_end|>", "<|end|>", "<end_of_turn>",
    "<|endoftext|>", "<|end_of_text|>", "<EOT>",      "_<EOT>",
};

int tok_ids_push(tok_ids *a, int32_t id) {
    if (grow(&a->v, &a->cap, a->n + 1, sizeof *a->v, 64, "the token list") < 0) return -1;
    a->v[a->n++] = id;
    return 0;
}

bool tok_lookup(const tokenizer *t, const char *text, size_t len, int32_t *id) {
    return strmap_get(t->by_text, text, len, id);
}

int tok_push_unk(const tokenizer *t, tok_ids *out, unsigned char byte) {
    if (t->unk < 0)
        return err_set("tokenizer: no token for byte 0x%02X and the vocab has no unknown token",
                       byte);
    return tok_ids_push(out, t->unk);
}

/* ---- loading ----------------------------------------------------------------------------- */

static int pick_family(tokenizer *t, const gguf *g) {
    gguf_str model;
    int r = gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (r < 0) return -1;
    if (r == 0) return err_set("%s: no tokenizer (tokenizer.ggml.model is missing)", gguf_path(g));
    if (gguf_str_eq(model, "llama"))
        t->family = TOK_SPM;
    else if (gguf_str_eq(model, "gpt2"))
        t->family = TOK_BPE;
    else
        return err_set("%s: unsupported tokenizer.ggml.model '%.*s' (supported: llama, gpt2)",
                       gguf_path(g), (int)(model.len > 100 ? 100 : model.len), model.ptr);
    return 0;
}

/* A BYTE token must be spelled <0xHH>; its value goes to *byte. */
static bool parse_byte_piece(const char *s, size_t n, uint8_t *byte) {
    unsigned v = 0;
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return false;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0) return false;
        v = v * 16 + (unsigned)d;
    }
    *byte = (uint8_t)v;
    return true;
}

/* Optional per-token array of the right length; *arr stays NULL when absent. */
static int optional_array(const gguf *g, const char *key, uint64_t n, const gguf_value **arr) {
    int r = gguf_get_arr(g, key, GGUF_ARRAY, arr);
    *arr = r == 1 ? *arr : NULL;
    if (r < 0) return -1;
    if (r == 1 && (*arr)->v.arr.n != n)
        return err_set("%s: %s has %llu entries for %llu tokens", gguf_path(g), key,
                       (unsigned long long)(*arr)->v.arr.n, (unsigned long long)n);
    return 0;
}

static int load_pieces(tokenizer *t, const gguf *g) {
    const gguf_value *tokens, *scores, *types;
    int r = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &tokens);
    if (r < 0) return -1;
    if (r == 0 || tokens->v.arr.n == 0)
        return err_set("%s: tokenizer.ggml.tokens is missing or empty", gguf_path(g));
    uint64_t n = tokens->v.arr.n;
    if (n > INT32_MAX)
        return err_set("%s: %llu tokens is too many", gguf_path(g), (unsigned long long)n);
    if (optional_array(g, "tokenizer.ggml.scores", n, &scores) < 0) return -1;
    if (optional_array(g, "tokenizer.ggml.token_type", n, &types) < 0) return -1;
    if (scores && scores->v.arr.elem != GGUF_FLOAT32 && scores->v.arr.elem != GGUF_FLOAT64)
        return err_set("%s: tokenizer.ggml.scores holds %s, not floats", gguf_path(g),
                       gguf_vtype_name(scores->v.arr.elem));
    if (types && (types->v.arr.elem > GGUF_INT32 && types->v.arr.elem != GGUF_UINT64 &&
                  types->v.arr.elem != GGUF_INT64))
        return err_set("%s: tokenizer.ggml.token_type holds %s, not integers", gguf_path(g),
                       gguf_vtype_name(types->v.arr.elem));

    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) total += tokens->v.arr.items[i].v.s.len + 1;
    if (total > UINT32_MAX) return err_set("%s: token texts exceed 4 GiB", gguf_path(g));
    t->n_vocab = (int32_t)n;
    t->arena = malloc(total);
    t->pieces = calloc(n, sizeof *t->pieces);
    t->by_text = strmap_new(n);
    if (!t->arena || !t->pieces || !t->by_text) return err_set("tokenizer: out of memory");

    uint32_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = tokens->v.arr.items[i].v.s;
        tok_piece *p = &t->pieces[i];
        if (s.len) memcpy(t->arena + off, s.ptr, s.len);
        t->arena[off + s.len] = 0;
        p->off = off, p->len = (uint32_t)s.len;
        off += (uint32_t)s.len + 1;
        if (s.len > t->max_piece) t->max_piece = s.len;
        p->type = TOK_NORMAL;
        if (types) {
            int64_t ty = gguf_arr_int(types, i);
            if (ty < TOK_UNDEFINED || ty > TOK_BYTE)
                return err_set("%s: token %llu has unknown token_type %lld", gguf_path(g),
                               (unsigned long long)i, (long long)ty);
            p->type = (uint8_t)ty;
        }
        if (scores) {
            float sc = (float)gguf_arr_float(scores, i);
            /* -0 and NaN would break the integer order of scores (tok_spm.c). */
            p->score = isnan(sc) ? -INFINITY : sc + 0.0f;
        }
        if (p->type == TOK_BYTE && !parse_byte_piece(s.ptr, s.len, &p->byte))
            return err_set("%s: BYTE token %llu is not spelled <0xHH>", gguf_path(g),
                           (unsigned long long)i);
        /* An empty text can never be matched; llama.cpp renames it, we leave it out. */
        if (s.len && strmap_put(t->by_text, t->arena + p->off, s.len, (int32_t)i) < 0) return -1;
    }
    return 0;
}

/* Reads a special id; absent or out of range leaves *id (the default) alone. */
static int read_id(const tokenizer *t, const gguf *g, const char *key, int32_t *id) {
    int64_t v;
    int r = gguf_get_i64(g, key, &v);
    if (r < 0) return -1;
    if (r == 1 && v >= 0 && v < t->n_vocab) *id = (int32_t)v;
    if (*id >= t->n_vocab) *id = -1;
    return 0;
}

static int read_flag(const gguf *g, const char *key, bool *flag) {
    return gguf_get_bool(g, key, flag) < 0 ? -1 : 0;
}

static void add_eog(int32_t *list, size_t *n, int32_t id) {
    if (id < 0) return;
    for (size_t i = 0; i < *n; i++)
        if (list[i] == id) return;
    list[(*n)++] = id;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int find_eog(tokenizer *t, const gguf *g) {
    int32_t eot = -1, eom = -1;
    size_t n_texts = sizeof eog_texts / sizeof eog_texts[0];
    if (read_id(t, g, "tokenizer.ggml.eot_token_id", &eot) < 0) return -1;
    if (read_id(t, g, "tokenizer.ggml.eom_token_id", &eom) < 0) return -1;
    t->eog = malloc((3 + n_texts) * sizeof *t->eog);
    if (!t->eog) return err_set("tokenizer: out of memory");
    add_eog(t->eog, &t->n_eog, t->eos);
    add_eog(t->eog, &t->n_eog, eot);
    add_eog(t->eog, &t->n_eog, eom);
    for (size_t i = 0; i < n_texts; i++) {
        int32_t id;
        if (!tok_lookup(t, eog_texts[i], strlen(eog_texts[i]), &id)) continue;
        uint8_t type = t->pieces[id].type;
        if (type == TOK_CONTROL || type == TOK_USER_DEFINED) add_eog(t->eog, &t->n_eog, id);
    }
    qsort(t->eog, t->n_eog, sizeof *t->eog, cmp_i32);
    return 0;
}

static bool is_special_type(uint8_t type) {
    return type == TOK_CONTROL || type == TOK_USER_DEFINED || type == TOK_UNKNOWN;
}

typedef struct special_key {
    uint32_t len;
    int32_t id;
} special_key;

static int cmp_special(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The tokens matched in the text before splitting, longest first so that a token wins over
 * any shorter one inside it; equal lengths go by id to make the order reproducible. */
static int find_specials(tokenizer *t) {
    special_key *keys = malloc((size_t)t->n_vocab * sizeof *keys);
    t->specials = malloc((size_t)t->n_vocab * sizeof *t->specials);
    if (!keys || !t->specials) {
        free(keys);
        return err_set("tokenizer: out of memory");
    }
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->pieces[i].len && is_special_type(t->pieces[i].type))
            keys[t->n_specials++] = (special_key){t->pieces[i].len, i};
    qsort(keys, t->n_specials, sizeof *keys, cmp_special);
    for (size_t i = 0; i < t->n_specials; i++) t->specials[i] = keys[i].id;
    free(keys);
    return 0;
}

static int read_specials(tokenizer *t, const gguf *g) {
    bool spm = t->family == TOK_SPM;
    t->bos = spm ? 1 : -1;
    t->eos = spm ? 2 : -1;
    t->unk = spm ? 0 : -1;
    t->pad = -1;
    t->add_bos = spm || t->pre == TOK_PRE_LLAMA3;
    t->add_eos = false;
    t->add_space_prefix = spm;
    if (read_id(t, g, "tokenizer.ggml.bos_token_id", &t->bos) < 0 ||
        read_id(t, g, "tokenizer.ggml.eos_token_id", &t->eos) < 0 ||
        read_id(t, g, "tokenizer.ggml.unknown_token_id", &t->unk) < 0 ||
        read_id(t, g, "tokenizer.ggml.padding_token_id", &t->pad) < 0 ||
        read_flag(g, "tokenizer.ggml.add_bos_token", &t->add_bos) < 0 ||
        read_flag(g, "tokenizer.ggml.add_eos_token", &t->add_eos) < 0)
        return -1;
    if (spm && read_flag(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix) < 0) return -1;
    if (t->add_bos && t->bos < 0)
        return err_set("%s: add_bos_token is set but the vocab has no valid bos_token_id",
                       gguf_path(g));
    if (t->add_eos && t->eos < 0)
        return err_set("%s: add_eos_token is set but the vocab has no valid eos_token_id",
                       gguf_path(g));
    return 0;
}

tokenizer *tok_load(const gguf *g) {
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        err_set("tokenizer: out of memory");
        return NULL;
    }
    if (pick_family(t, g) < 0 || load_pieces(t, g) < 0) goto fail;
    if (t->family == TOK_SPM)
        tok_spm_init(t);
    else if (tok_bpe_init(t, g) < 0)
        goto fail;
    if (read_specials(t, g) < 0 || find_eog(t, g) < 0 || find_specials(t) < 0) goto fail;
    return t;
fail:
    tok_free(t);
    return NULL;
}

void tok_free(tokenizer *t) {
    if (!t) return;
    if (t->family == TOK_BPE) tok_bpe_free(t);
    strmap_free(t->by_text);
    free(t->arena);
    free(t->pieces);
    free(t->eog);
    free(t->specials);
    free(t);
}

/* ---- encoding ---------------------------------------------------------------------------- */

/* A run of the input: plain text [off, off+len) when id < 0, else a matched special token. */
typedef struct frag {
    size_t off, len;
    int32_t id;
} frag;

typedef struct frags {
    frag *v;
    size_t n, cap;
} frags;

static int frags_push(frags *f, frag x) {
    if (grow(&f->v, &f->cap, f->n + 1, sizeof *f->v, 16, "the text fragments") < 0) return -1;
    f->v[f->n++] = x;
    return 0;
}

/* Cuts every plain run at each occurrence of special token id (left to right). */
static int split_on(const tokenizer *t, const char *text, int32_t id, const frags *in, frags *out) {
    const char *s = t->arena + t->pieces[id].off;
    size_t sl = t->pieces[id].len;
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        frag f = in->v[i];
        while (f.id < 0 && f.len >= sl) {
            const char *hit = memmem(text + f.off, f.len, s, sl);
            if (!hit) break;
            size_t at = (size_t)(hit - text);
            if (at > f.off && frags_push(out, (frag){f.off, at - f.off, -1}) < 0) return -1;
            if (frags_push(out, (frag){at, sl, id}) < 0) return -1;
            f.len -= at + sl - f.off;
            f.off = at + sl;
        }
        if ((f.id >= 0 || f.len) && frags_push(out, f) < 0) return -1;
    }
    return 0;
}

/* The input cut into plain runs and special tokens, in llama.cpp's order: each special token,
 * longest first, splits whatever plain text is left. */
static int partition(const tokenizer *t, const char *text, size_t len, bool parse_special,
                     frags *res) {
    frags tmp = {0};
    int rc = -1;
    res->n = 0;
    if (len && frags_push(res, (frag){0, len, -1}) < 0) goto done;
    for (size_t k = 0; k < t->n_specials && res->n; k++) {
        int32_t id = t->specials[k];
        const tok_piece *p = &t->pieces[id];
        if (!parse_special && p->type != TOK_USER_DEFINED) continue;
        /* Fragments are pieces of text, so a token absent from all of it is absent from each. */
        if (!memmem(text, len, t->arena + p->off, p->len)) continue;
        if (split_on(t, text, id, res, &tmp) < 0) goto done;
        frags swap = *res;
        *res = tmp, tmp = swap;
    }
    rc = 0;
done:
    free(tmp.v);
    return rc;
}

int tok_encode(const tokenizer *t, const char *text, size_t len, bool add_special,
               bool parse_special, int32_t **ids, size_t *n) {
    frags parts = {0};
    tok_ids out = {0};
    tok_work w = {0};
    bool after_special = true; /* SentencePiece prefixes a space at the start and after specials */
    *ids = NULL, *n = 0;
    if (len > TOK_MAX_TEXT) {
        err_set("tok_encode: text of %zu bytes is over the 1 GiB limit", len);
        goto fail;
    }
    if (partition(t, text, len, parse_special, &parts) < 0) goto fail;
    if (add_special && t->add_bos && tok_ids_push(&out, t->bos) < 0) goto fail;
    for (size_t i = 0; i < parts.n; i++) {
        const frag *f = &parts.v[i];
        int rc;
        if (f->id >= 0) {
            rc = tok_ids_push(&out, f->id);
            after_special = true;
        } else {
            rc = t->family == TOK_SPM ? tok_spm_encode(t, &w, text + f->off, f->len,
                                                       t->add_space_prefix && after_special, &out)
                                      : tok_bpe_encode(t, &w, text + f->off, f->len, &out);
            after_special = false;
        }
        if (rc < 0) goto fail;
    }
    if (add_special && t->add_eos && tok_ids_push(&out, t->eos) < 0) goto fail;
    free(parts.v);
    tok_work_free(&w);
    *ids = out.v, *n = out.n;
    return 0;
fail:
    free(parts.v);
    tok_work_free(&w);
    free(out.v);
    return -1;
}

/* ---- decoding ---------------------------------------------------------------------------- */

/* A SentencePiece piece with U+2581 turned back into spaces, minus one leading space when
 * strip. Returns the byte count or -1 when cap is short. */
static int unescape_spaces(const char *s, size_t n, bool strip, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        bool mark = n - i >= 3 && memcmp(s + i, SPACE_MARK, 3) == 0;
        char c = mark ? ' ' : s[i];
        i += mark ? 3 : 1;
        if (strip && o == 0 && c == ' ') {
            strip = false;
            continue;
        }
        strip = false;
        if (o >= cap) return -1;
        out[o++] = c;
    }
    return (int)o;
}

int tok_decode(const tokenizer *t, int32_t prev, int32_t id, bool special, char *out, size_t cap) {
    if (id < 0 || id >= t->n_vocab)
        return err_set("tok_decode: token id %d is outside the vocab of %d", id, t->n_vocab);
    const tok_piece *p = &t->pieces[id];
    const char *s = t->arena + p->off;
    int n;
    switch (p->type) {
    case TOK_CONTROL:
    case TOK_UNKNOWN:
    case TOK_UNUSED:
        if (!special) return 0;
        /* fall through */
    case TOK_USER_DEFINED:
        n = p->len <= cap ? (int)p->len : -1;
        if (n > 0) memcpy(out, s, p->len);
        break;
    case TOK_BYTE:
        n = cap >= 1 ? 1 : -1;
        if (n > 0) out[0] = (char)p->byte;
        break;
    default: /* NORMAL, UNDEFINED */
        if (t->family == TOK_SPM) {
            bool strip = t->add_space_prefix &&
                         (prev < 0 || (prev < t->n_vocab && is_special_type(t->pieces[prev].type)));
            n = unescape_spaces(s, p->len, strip, out, cap);
        } else {
            n = tok_bpe_decode_piece(t, s, p->len, out, cap);
        }
        break;
    }
    if (n < 0)
        return err_set("tok_decode: a buffer of %zu bytes is too small for token %d", cap, id);
    return n;
}

size_t tok_max_piece(const tokenizer *t) { return t->max_piece; }

/* ---- accessors --------------------------------------------------------------------------- */

int32_t tok_n_vocab(const tokenizer *t) { return t->n_vocab; }
int32_t tok_bos(const tokenizer *t) { return t->bos; }
int32_t tok_eos(const tokenizer *t) { return t->eos; }
int32_t tok_unk(const tokenizer *t) { return t->unk; }
int32_t tok_pad(const tokenizer *t) { return t->pad; }
bool tok_adds_bos(const tokenizer *t) { return t->add_bos; }
bool tok_adds_eos(const tokenizer *t) { return t->add_eos; }

bool tok_is_eog(const tokenizer *t, int32_t id) {
    return bsearch(&id, t->eog, t->n_eog, sizeof *t->eog, cmp_i32) != NULL;
}

const char *tok_piece_text(const tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->arena + t->pieces[id].off : NULL;
}

int tok_type(const tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->pieces[id].type : -1;
}

int32_t tok_find(const tokenizer *t, const char *piece) {
    int32_t id;
    return tok_lookup(t, piece, strlen(piece), &id) ? id : -1;
}
