/* libFuzzer target: any byte string must encode without a crash, a leak or an out-of-range
 * id, in both special-token modes, and decoding the ids must give the text back: exactly for
 * valid UTF-8 (up to NFC for a qwen2 vocab), with U+FFFD per bad byte otherwise (byte-level
 * BPE; SentencePiece keeps the bytes, and gives U+2581 back as a space). The vocab is loaded
 * once from $VEIL_FUZZ_VOCAB, else ../shared/reference/tokenizers/ggml-vocab-qwen3.gguf;
 * without one every input passes. */
#include "base/utf8.h"
#include "model/gguf.h"
#include "model/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    tokenizer *tok;
    bool nfc;      /* pre-tokenizer qwen2 normalizes */
    bool byte_bpe; /* gpt2 family: invalid UTF-8 becomes U+FFFD */
} vocab;

static void load_vocab(void) {
    const char *path = getenv("VEIL_FUZZ_VOCAB");
    gguf_str s;
    if (!path || !*path) path = "../shared/reference/tokenizers/ggml-vocab-qwen3.gguf";
    gguf *g = gguf_open(path);
    if (!g) return;
    vocab.tok = tok_load(g);
    if (!vocab.tok) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", "cannot load the vocab");
        abort();
    }
    vocab.nfc = gguf_get_str(g, "tokenizer.ggml.pre", &s) == 1 && gguf_str_eq(s, "qwen2");
    vocab.byte_bpe = gguf_get_str(g, "tokenizer.ggml.model", &s) == 1 && gguf_str_eq(s, "gpt2");
    gguf_close(g);
}

/* NFC of s as a malloc'd string, or a plain copy when nfc is off. */
static char *norm(const char *s, size_t n, bool nfc, size_t *out_len) {
    if (nfc) {
        utf8proc_uint8_t *m = NULL;
        utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &m,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (k < 0) abort(); /* s is valid UTF-8 here */
        *out_len = (size_t)k;
        return (char *)m;
    }
    char *c = malloc(n + 1);
    if (!c) abort();
    memcpy(c, s, n);
    *out_len = n;
    return c;
}

/* text with every U+2581 turned into a space (malloc'd; *len in: text length, out: new). */
static char *spm_spaces(const char *text, size_t *len) {
    char *out = malloc(*len + 1);
    size_t o = 0;
    if (!out) return NULL;
    for (size_t i = 0; i < *len;) {
        if (*len - i >= 3 && memcmp(text + i, "\xE2\x96\x81", 3) == 0) {
            out[o++] = ' ', i += 3;
        } else {
            out[o++] = text[i++];
        }
    }
    *len = o;
    return out;
}

static void check_mode(const char *text, size_t size, bool parse_special, bool add_special) {
    const tokenizer *t = vocab.tok;
    int32_t *ids;
    size_t n;
    if (tok_encode(t, text, size, add_special, parse_special, &ids, &n) < 0) abort();
    size_t first = add_special && tok_adds_bos(t) ? 1 : 0;
    if (first && (n == 0 || ids[0] != tok_bos(t))) abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok_n_vocab(t)) abort();

    size_t cap = n * tok_max_piece(t) + 1, len = 0;
    char *dec = malloc(cap);
    if (!dec) abort();
    for (size_t i = first; i < n; i++) {
        int k = tok_decode(t, i > first ? ids[i - 1] : -1, ids[i], true, dec + len, cap - len);
        if (k < 0) abort();
        len += (size_t)k;
    }
    /* What decoding can give back: byte-level BPE repaired bad bytes; SentencePiece cannot
     * tell a U+2581 in the text from the one that stands for a space. */
    size_t want_len = size, got_len;
    char *want = vocab.byte_bpe ? utf8_repair(text, size, &want_len) : spm_spaces(text, &want_len);
    if (!want) abort();
    /* NFC is applied per run between special tokens; NFC of the whole of both sides still
     * compares them, since canonical equivalence survives concatenation. */
    char *a = norm(want, want_len, vocab.nfc, &want_len);
    char *b = norm(dec, len, vocab.nfc, &got_len);
    if (want_len != got_len || memcmp(a, b, want_len) != 0) abort();
    free(a);
    free(b);
    free(want);
    free(dec);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool loaded;
    if (!loaded) {
        loaded = true;
        load_vocab();
    }
    if (!vocab.tok) return 0;
    /* copy so that reads past `size` hit ASan's redzone */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    memcpy(text, data, size);
    check_mode(text, size, false, false);
    check_mode(text, size, true, true);
    free(text);
    return 0;
}
