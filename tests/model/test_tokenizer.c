/* Tokenizers from GGUF metadata: every reference .inp/.out pair in shared/ must give the same
 * ids (SentencePiece, GPT-2, Qwen3, Llama 3; main, NFC and both special-token modes), decode
 * must give the text back, BOS rules per vocab, and small vocabs built here pin down the
 * corner cases (unknown pre-tokenizer, byte fallback, bad ids, invalid UTF-8). */
#include "test.h"

#include "base/err.h"
#include "model/gguf.h"
#include "model/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <utf8proc.h>

#define SEP "\n__ggml_vocab_test__\n"

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f) return NULL;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            char *b = realloc(buf, cap + 1);
            if (!b) break;
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

static tokenizer *load_vocab(const char *rel) {
    const char *path = test_shared_path(rel);
    gguf *g = path ? gguf_open(path) : NULL;
    tokenizer *t = g ? tok_load(g) : NULL;
    CHECK_MSG(t, "loading %s: %s", rel, err_msg());
    gguf_close(g); /* the tokenizer keeps its own copies */
    return t;
}

/* Text as the tokenizer sees it after normalization: NFC for qwen2, as is otherwise. */
static char *normalized(const char *s, size_t n, bool nfc, size_t *out_len) {
    char *r;
    if (nfc) {
        utf8proc_uint8_t *m = NULL;
        utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &m,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (k < 0) return NULL;
        *out_len = (size_t)k;
        return (char *)m;
    }
    r = malloc(n + 1);
    memcpy(r, s, n);
    r[n] = 0;
    *out_len = n;
    return r;
}

/* Decodes ids one by one, as a streaming caller would, into a malloc'd string. */
static char *decode_all(const tokenizer *t, const int32_t *ids, size_t n, bool special,
                        size_t *len) {
    size_t cap = n * tok_max_piece(t) + 1, o = 0;
    char *out = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        int k = tok_decode(t, i ? ids[i - 1] : -1, ids[i], special, out + o, cap - o);
        CHECK_MSG(k >= 0, "decode %d: %s", ids[i], err_msg());
        if (k < 0) break;
        o += (size_t)k;
    }
    out[o] = 0;
    *len = o;
    return out;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    printf("      %s:", what);
    for (size_t i = 0; i < n && i < 40; i++) printf(" %d", ids[i]);
    printf("%s\n", n > 40 ? " ..." : "");
}

/* Checks every string of an .inp file against its .out line; returns how many matched. */
static int check_pairs(const tokenizer *t, const char *inp_rel, const char *out_rel,
                       bool parse_special, bool nfc) {
    size_t inp_len, out_len;
    char *inp = read_all(test_shared_path(inp_rel), &inp_len);
    char *out = read_all(test_shared_path(out_rel), &out_len);
    int cases = 0, good = 0;
    CHECK_MSG(inp && out, "reading %s / %s", inp_rel, out_rel);
    if (!inp || !out) goto done;
    char *s = inp, *line = out;
    for (;;) {
        char *sep = memmem(s, (size_t)(inp + inp_len - s), SEP, strlen(SEP));
        if (!sep) break;
        char *eol = strchr(line, '\n');
        CHECK_MSG(eol, "%s: fewer lines than strings", out_rel);
        if (!eol) break;
        *eol = 0;
        int32_t want[4096];
        size_t n_want = 0;
        for (char *p = line, *end; *p && n_want < sizeof want / sizeof want[0]; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            want[n_want++] = (int32_t)v;
        }
        int32_t *ids;
        size_t n;
        size_t len = (size_t)(sep - s);
        CHECK(tok_encode(t, s, len, false, parse_special, &ids, &n) == 0);
        bool same = n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
        CHECK_MSG(same, "%s case %d ('%.*s'): ids differ", inp_rel, cases,
                  (int)(len > 60 ? 60 : len), s);
        if (!same) {
            print_ids("want", want, n_want);
            print_ids("got ", ids, n);
        }
        /* decode(encode(s)) == s, modulo normalization; specials come back as text. */
        size_t dl, nl;
        char *dec = decode_all(t, ids, n, true, &dl);
        char *norm = normalized(s, len, nfc, &nl);
        CHECK_MSG(norm && dl == nl && memcmp(dec, norm, nl) == 0, "%s case %d: decode gives '%s'",
                  inp_rel, cases, dec);
        free(dec);
        free(norm);
        free(ids);
        good += same;
        cases++;
        s = sep + strlen(SEP);
        line = eol + 1;
    }
    CHECK_MSG(cases > 0 && *line == 0, "%s: %d strings, lines left: '%.20s'", inp_rel, cases, line);
done:
    free(inp);
    free(out);
    return good;
}

#define REF "reference/tokenizers/"

TEST(tok_spm_reference) {
    NEED_SHARED();
    tokenizer *t = load_vocab("models/ggml-vocab-llama-spm.gguf");
    if (!t) return;
    /* No string holds a special token's text, so both modes must agree. */
    CHECK(check_pairs(t, "models/ggml-vocab-llama-spm.gguf.inp",
                      "models/ggml-vocab-llama-spm.gguf.out", false, false) > 0);
    CHECK(check_pairs(t, "models/ggml-vocab-llama-spm.gguf.inp",
                      "models/ggml-vocab-llama-spm.gguf.out", true, false) > 0);
    tok_free(t);
}

TEST(tok_gpt2_reference) {
    NEED_SHARED();
    tokenizer *t = load_vocab(REF "ggml-vocab-gpt-2.gguf");
    if (!t) return;
    CHECK(check_pairs(t, REF "ggml-vocab-gpt-2.gguf.inp", REF "ggml-vocab-gpt-2.gguf.out", false,
                      false) > 0);
    CHECK(check_pairs(t, REF "ggml-vocab-gpt-2.gguf.inp", REF "ggml-vocab-gpt-2.gguf.out", true,
                      false) > 0);
    tok_free(t);
}

static void check_bpe_sets(const char *name, bool nfc) {
    char vocab[128], inp[128], out[128];
    snprintf(vocab, sizeof vocab, REF "ggml-vocab-%s.gguf", name);
    tokenizer *t = load_vocab(vocab);
    if (!t) return;
    static const struct {
        const char *set;
        bool parse;
    } sets[] = {{"gguf", false},
                {"gguf", true},
                {"nfc", false},
                {"special-parse", true},
                {"special-noparse", false}};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        snprintf(inp, sizeof inp, REF "ggml-vocab-%s.%s.inp", name, sets[i].set);
        snprintf(out, sizeof out, REF "ggml-vocab-%s.%s.out", name, sets[i].set);
        CHECK_MSG(check_pairs(t, inp, out, sets[i].parse, nfc) > 0, "%s", inp);
    }
    tok_free(t);
}

TEST(tok_qwen3_reference) {
    NEED_SHARED();
    check_bpe_sets("qwen3", true);
}

TEST(tok_llama3_reference) {
    NEED_SHARED();
    check_bpe_sets("llama3", false);
}

static void check_encode(const tokenizer *t, const char *text, bool add_special, bool parse,
                         const int32_t *want, size_t n_want) {
    int32_t *ids;
    size_t n;
    CHECK(tok_encode(t, text, strlen(text), add_special, parse, &ids, &n) == 0);
    bool same = n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    CHECK_MSG(same, "encode '%s'", text);
    if (!same) {
        print_ids("want", want, n_want);
        print_ids("got ", ids, n);
    }
    free(ids);
}

#define IDS(...)                                                                                   \
    ((const int32_t[]){__VA_ARGS__}), sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)

TEST(tok_bos_rules) {
    NEED_SHARED();
    tokenizer *spm = load_vocab("models/ggml-vocab-llama-spm.gguf");
    tokenizer *gpt2 = load_vocab(REF "ggml-vocab-gpt-2.gguf");
    tokenizer *qwen = load_vocab(REF "ggml-vocab-qwen3.gguf");
    tokenizer *llama3 = load_vocab(REF "ggml-vocab-llama3.gguf");
    if (!spm || !gpt2 || !qwen || !llama3) goto done;
    CHECK(tok_adds_bos(spm) && tok_bos(spm) == 1 && tok_eos(spm) == 2 && tok_unk(spm) == 0);
    CHECK(!tok_adds_bos(gpt2) && tok_bos(gpt2) == 50256 && tok_eos(gpt2) == 50256);
    CHECK(!tok_adds_bos(qwen) && tok_bos(qwen) == 151643 && tok_eos(qwen) == 151645);
    CHECK(tok_pad(qwen) == 151643 && tok_unk(qwen) == -1);
    CHECK(tok_adds_bos(llama3) && tok_bos(llama3) == 128000 && tok_eos(llama3) == 128001);
    CHECK(!tok_adds_eos(spm) && !tok_adds_eos(qwen) && !tok_adds_eos(llama3));

    check_encode(llama3, "Hello world", true, false, IDS(128000, 9906, 1917));
    check_encode(llama3, "Hello world", false, false, IDS(9906, 1917));
    check_encode(llama3, "", true, false, IDS(128000));
    check_encode(qwen, "Hello world", true, false, IDS(9707, 1879));
    check_encode(gpt2, "Hello world", true, false, IDS(15496, 995));
    check_encode(spm, "Hello world", true, false, IDS(1, 15043, 3186));
    check_encode(spm, "", true, false, IDS(1));
    check_encode(spm, "", false, false, NULL, 0);

    /* parse_special: CONTROL tokens only when asked, USER_DEFINED always. */
    check_encode(qwen, "<|im_start|>", false, true, IDS(151644));
    check_encode(qwen, "<think>", false, false, IDS(151667));
    check_encode(llama3, "<|eot_id|>", true, true, IDS(128000, 128009));
    /* SentencePiece puts a space in front of text that follows a special token. */
    check_encode(spm, "<s>Hi</s>", false, true, IDS(1, 6324, 2));

    /* llama-bpe's ignore_merges: a pre-token that is a piece is emitted whole; merging
     * " jeho" would give 503 2701 78. */
    check_encode(llama3, " jeho", false, false, IDS(101503));
    /* qwen2 digits one at a time, llama-bpe in threes from the left, gpt-2 in one run. */
    check_encode(qwen, "12345", false, false, IDS(16, 17, 18, 19, 20));
    check_encode(llama3, "12345", false, false, IDS(4513, 1774));
    check_encode(gpt2, "12345", false, false, IDS(10163, 2231));

    char piece[64];
    CHECK_EQ_INT(tok_decode(qwen, -1, 151644, false, piece, sizeof piece), 0);
    CHECK_EQ_INT(tok_decode(qwen, -1, 151644, true, piece, sizeof piece), 12);
    CHECK_EQ_INT(tok_decode(qwen, -1, 151667, false, piece, sizeof piece), 7); /* <think> */
    CHECK_EQ_INT(tok_decode(qwen, -1, 151700, false, piece, sizeof piece), 0); /* UNUSED */
    CHECK_EQ_INT(tok_decode(gpt2, -1, 220, false, piece, sizeof piece), 1);
    CHECK(piece[0] == ' ');

    CHECK(tok_is_eog(llama3, 128001) && tok_is_eog(llama3, 128009) && !tok_is_eog(llama3, 128000));
    CHECK(tok_is_eog(qwen, 151645) && tok_is_eog(qwen, 151643) && !tok_is_eog(qwen, 151644));
    CHECK(tok_is_eog(spm, 2) && !tok_is_eog(spm, 1) && tok_is_eog(gpt2, 50256));
    CHECK_EQ_INT(tok_find(qwen, "<|im_start|>"), 151644);
    CHECK_EQ_INT(tok_find(qwen, "no such piece"), -1);
    CHECK_EQ_STR(tok_piece_text(llama3, 128009), "<|eot_id|>");
    CHECK(tok_piece_text(llama3, 128256) == NULL && tok_piece_text(llama3, -1) == NULL);
    CHECK_EQ_INT(tok_type(qwen, 151667), TOK_USER_DEFINED);
    CHECK_EQ_INT(tok_type(qwen, 151700), TOK_UNUSED);
    CHECK_EQ_INT(tok_n_vocab(qwen), 151936);
done:
    tok_free(spm);
    tok_free(gpt2);
    tok_free(qwen);
    tok_free(llama3);
}

TEST(tok_stories260k) {
    NEED_SHARED();
    tokenizer *t = load_vocab("models/stories260K.gguf");
    if (!t) return;
    CHECK_EQ_INT(tok_n_vocab(t), 512);
    check_encode(t, "Once upon a time", true, false, IDS(1, 403, 407, 261, 378));
    const char *story = "Once upon a time, there was a little girl named Lily. She loved to play "
                        "outside in the park.";
    int32_t *ids;
    size_t n;
    static const int32_t head[] = {1,   403, 407, 261, 378, 432, 383, 286,
                                   261, 376, 298, 315, 421, 395, 317, 426};
    CHECK(tok_encode(t, story, strlen(story), true, false, &ids, &n) == 0);
    CHECK(n >= 16 && memcmp(ids, head, sizeof head) == 0);
    if (n >= 16 && memcmp(ids, head, sizeof head) != 0) print_ids("got ", ids, n);
    /* The piece after BOS loses its leading space; later ones keep theirs. */
    size_t len;
    char *text = decode_all(t, ids + 1, n - 1, false, &len);
    CHECK_EQ_STR(text, story);
    free(text);
    char piece[64];
    int k = tok_decode(t, 1, ids[1], false, piece, sizeof piece);
    CHECK(k == 4 && memcmp(piece, "Once", 4) == 0);
    k = tok_decode(t, ids[1], ids[2], false, piece, sizeof piece);
    CHECK(k == 5 && memcmp(piece, " upon", 5) == 0);
    CHECK_EQ_INT(tok_decode(t, -1, 1, false, piece, sizeof piece), 0);        /* BOS is CONTROL */
    CHECK_EQ_INT(tok_decode(t, -1, 1, true, piece, sizeof piece), 3);         /* "<s>" */
    CHECK_EQ_INT(tok_decode(t, -1, 3 + 0x41, false, piece, sizeof piece), 1); /* <0x41> */
    CHECK(piece[0] == 'A');
    CHECK_EQ_INT(tok_decode(t, -1, ids[2], false, piece, 2), -1); /* too small */
    CHECK_EQ_INT(tok_decode(t, -1, 512, false, piece, sizeof piece), -1);
    free(ids);
    tok_free(t);
}

/* Invalid UTF-8: byte-level BPE sees U+FFFD per bad byte, SentencePiece falls back to bytes. */
TEST(tok_invalid_utf8) {
    NEED_SHARED();
    tokenizer *qwen = load_vocab(REF "ggml-vocab-qwen3.gguf");
    tokenizer *spm = load_vocab("models/ggml-vocab-llama-spm.gguf");
    if (!qwen || !spm) goto done;
    static const char bad[] = "a\xff"
                              "b\xe2\x82"
                              "c\xed\xa0\x80"
                              "d\xc0\xaf";
    static const char fixed[] = "a\xef\xbf\xbd"
                                "b\xef\xbf\xbd\xef\xbf\xbd"
                                "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                "d\xef\xbf\xbd\xef\xbf\xbd";
    int32_t *a, *b;
    size_t na, nb, len;
    CHECK(tok_encode(qwen, bad, sizeof bad - 1, false, false, &a, &na) == 0);
    CHECK(tok_encode(qwen, fixed, sizeof fixed - 1, false, false, &b, &nb) == 0);
    CHECK(na == nb && memcmp(a, b, na * sizeof *a) == 0);
    free(a);
    free(b);
    CHECK(tok_encode(spm, bad, sizeof bad - 1, false, false, &a, &na) == 0);
    char *back = decode_all(spm, a, na, false, &len);
    CHECK(len == sizeof bad - 1 && memcmp(back, bad, len) == 0);
    CHECK(na > 0 && a[0] == 263); /* "▁a" */
    free(back);
    free(a);
done:
    tok_free(qwen);
    tok_free(spm);
}

/* ---- small vocabs built here --------------------------------------------------------------- */

typedef struct mini {
    const char *model, *pre;
    const char *const *tokens;
    size_t n_tokens;
    const int32_t *types;
    const float *scores;
    const char *const *merges;
    size_t n_merges;
    int64_t bos; /* -1: key absent */
    int add_bos; /* -1: key absent */
} mini;

static gguf *mini_gguf(const mini *m, unsigned char **buf) {
    gguf_writer *w = gguf_writer_new();
    size_t size;
    gguf_writer_set_str(w, "general.architecture", "llama");
    if (m->model) gguf_writer_set_str(w, "tokenizer.ggml.model", m->model);
    if (m->pre) gguf_writer_set_str(w, "tokenizer.ggml.pre", m->pre);
    gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", m->tokens, m->n_tokens);
    if (m->types)
        gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, m->types, m->n_tokens);
    if (m->scores)
        gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, m->scores, m->n_tokens);
    if (m->merges) gguf_writer_set_str_arr(w, "tokenizer.ggml.merges", m->merges, m->n_merges);
    if (m->bos >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)m->bos);
    if (m->add_bos >= 0) gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", m->add_bos);
    CHECK(gguf_writer_write_buffer(w, buf, &size) == 0);
    gguf_writer_free(w);
    gguf *g = gguf_open_buffer(*buf, size, "mini.gguf");
    CHECK_MSG(g, "%s", err_msg());
    return g;
}

static tokenizer *mini_load(const mini *m) {
    unsigned char *buf = NULL;
    gguf *g = mini_gguf(m, &buf);
    tokenizer *t = g ? tok_load(g) : NULL;
    gguf_close(g);
    free(buf);
    return t;
}

/* Byte-level pieces of a tiny vocab: "a", "b", "ab", "Ġ" (space), "<|x|>". */
static const char *const bpe_tokens[] = {"a", "b", "ab", "\xc4\xa0", "<|x|>"};
static const char *const bpe_merges[] = {"a b", "b a", "nonsense", "a zz"};

TEST(tok_rejects_bad_metadata) {
    mini m = {"gpt2", "bogus-pre", bpe_tokens, 5, NULL, NULL, bpe_merges, 4, -1, -1};
    CHECK(mini_load(&m) == NULL);
    CHECK_MSG(strstr(err_msg(), "'bogus-pre'"), "message: %s", err_msg());
    m.pre = NULL;
    CHECK(mini_load(&m) == NULL);
    CHECK_MSG(strstr(err_msg(), "tokenizer.ggml.pre"), "message: %s", err_msg());
    m.pre = "gpt-2", m.model = "t5";
    CHECK(mini_load(&m) == NULL);
    CHECK_MSG(strstr(err_msg(), "'t5'"), "message: %s", err_msg());
    m.model = NULL;
    CHECK(mini_load(&m) == NULL);
    CHECK_MSG(strstr(err_msg(), "tokenizer.ggml.model"), "message: %s", err_msg());
    m.model = "gpt2", m.merges = NULL;
    CHECK(mini_load(&m) == NULL);
    CHECK_MSG(strstr(err_msg(), "merges"), "message: %s", err_msg());
    m.merges = bpe_merges;
    /* llama-bpe adds BOS by default: without a BOS id that cannot work. */
    m.pre = "llama-bpe";
    CHECK(mini_load(&m) == NULL);
    CHECK_MSG(strstr(err_msg(), "bos"), "message: %s", err_msg());
    static const int32_t bad_types[] = {1, 1, 1, 9, 1};
    m.pre = "gpt-2", m.types = bad_types;
    CHECK(mini_load(&m) == NULL);
    CHECK_MSG(strstr(err_msg(), "token_type"), "message: %s", err_msg());
}

TEST(tok_mini_bpe) {
    static const int32_t types[] = {1, 1, 1, 1, 3};
    mini m = {"gpt2", "gpt-2", bpe_tokens, 5, types, NULL, bpe_merges, 4, 99, -1};
    tokenizer *t = mini_load(&m);
    CHECK_MSG(t, "%s", err_msg());
    if (!t) return;
    CHECK_EQ_INT(tok_bos(t), -1); /* 99 is outside the vocab: treated as absent */
    check_encode(t, "ab", true, false, IDS(2));
    check_encode(t, "aab b", false, false, IDS(0, 2, 3, 1));
    check_encode(t, "a<|x|>", false, true, IDS(0, 4));
    /* A byte with no piece and no unknown token is an error, not a crash. */
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(tok_encode(t, "c", 1, false, false, &ids, &n) == -1);
    CHECK(ids == NULL && n == 0);
    CHECK_MSG(strstr(err_msg(), "0x63"), "message: %s", err_msg());
    char out[8];
    CHECK_EQ_INT(tok_decode(t, -1, 3, false, out, sizeof out), 1);
    CHECK(out[0] == ' ');
    tok_free(t);
}

TEST(tok_mini_spm) {
    /* No byte tokens: an unknown character becomes <unk>; scores pick "▁ab" over "ab". */
    static const char *const tokens[] = {"<unk>",
                                         "<s>",
                                         "</s>",
                                         "\xe2\x96\x81",
                                         "a",
                                         "b",
                                         "ab",
                                         "\xe2\x96\x81"
                                         "a",
                                         "\xe2\x96\x81"
                                         "ab"};
    static const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 1, 1};
    static const float scores[] = {0, 0, 0, -1, -2, -2, -3, -1, -5};
    mini m = {"llama", NULL, tokens, 9, types, scores, NULL, 0, 0xFFFFFFFFll, 0};
    tokenizer *t = mini_load(&m);
    CHECK_MSG(t, "%s", err_msg());
    if (!t) return;
    CHECK_EQ_INT(tok_bos(t), 1); /* 0xFFFFFFFF: the default stays */
    CHECK(!tok_adds_bos(t));
    /* "▁a" (-1) merges before "ab" (-3); then "▁a"+"b" -> "▁ab". */
    check_encode(t, "ab", true, false, IDS(8));
    check_encode(t, "ba", false, false, IDS(3, 5, 4));
    check_encode(t, "a\xc3\xa9", false, false, IDS(7, 0, 0));
    check_encode(t, "a<s>a", false, true, IDS(7, 1, 7));
    check_encode(t, "a<s>a", false, false, IDS(7, 0, 0, 0, 4));
    tok_free(t);
}
