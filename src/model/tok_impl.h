/* Private to the tokenizer files (tokenizer.c, tok_spm.c, tok_bpe.c, tok_merge.c): the
 * tokenizer's layout and the pieces the two BPE families share. Nothing outside
 * src/model/tok*.c includes this. */
#ifndef VEIL_TOK_IMPL_H
#define VEIL_TOK_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "base/strmap.h"
#include "base/u64map.h"
#include "model/tokenizer.h"

/* Longest text one tok_encode() call accepts: symbol offsets are 32-bit and SentencePiece
 * triples each space. */
#define TOK_MAX_TEXT ((size_t)1 << 30)

enum tok_family { TOK_SPM, TOK_BPE };
enum tok_pre { TOK_PRE_NONE, TOK_PRE_GPT2, TOK_PRE_LLAMA3, TOK_PRE_QWEN2 };

typedef struct tok_piece {
    uint32_t off, len; /* text in tokenizer.arena */
    float score;
    uint8_t type;      /* enum tok_type */
    uint8_t byte;      /* value of a BYTE token */
} tok_piece;

struct tokenizer {
    enum tok_family family;
    enum tok_pre pre;
    int32_t n_vocab;
    char *arena;       /* every token text, each followed by a NUL */
    tok_piece *pieces;
    strmap *by_text;   /* text -> id; for duplicate texts the last id wins (llama.cpp) */
    size_t max_piece;

    int32_t bos, eos, unk, pad;
    bool add_bos, add_eos, add_space_prefix;
    int32_t *eog;      /* sorted, unique */
    size_t n_eog;
    int32_t *specials; /* CONTROL/USER_DEFINED/UNKNOWN with text, longest first */
    size_t n_specials;

    /* SPM: id of <0xNN> per byte, -1 if absent. BPE: id of the byte's one-character
     * piece in GPT-2's byte-to-unicode table, -1 if absent. */
    int32_t byte_tok[256];
    bool spm_by_word; /* SPM: merges never cross the start of a U+2581 run (tok_spm.c) */

    /* BPE only. */
    u64map *merges;           /* (left id << 32 | right id) -> (rank << 32 | result id) */
    pcre2_code *regex;           /* the pre-tokenizer split */
    uint16_t byte_cp[256];    /* GPT-2 bytes_to_unicode */
    int16_t cp_byte[324];     /* its inverse: code point -> byte, -1 if not an image */
    bool nfc, ignore_merges;
};

/* A growing id array. */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids;
int tok_ids_push(tok_ids *a, int32_t id);

/* Helpers shared by the families (tokenizer.c). */
bool tok_lookup(const tokenizer *t, const char *text, size_t len, int32_t *id);
/* Emits the unknown token for a byte that has no token; fails when the vocab has none. */
int tok_push_unk(const tokenizer *t, tok_ids *out, unsigned char byte);

/* ---- the merge loop both families run (tok_merge.c) ------------------------------------ */

/* A run of bytes of the word being merged; n == 0 once merged into its left neighbour. */
typedef struct tok_sym {
    int32_t prev, next;
    uint32_t off, n;
    int32_t id; /* token of this run, -1 if none */
} tok_sym;

/* Decides whether two neighbours may merge: on yes sets *prio (lower merges first; ties go to
 * the leftmost pair) and *id (token of the merged run). */
typedef bool (*tok_pair_fn)(const tokenizer *t, const char *text, const tok_sym *l,
                            const tok_sym *r, int64_t *prio, int32_t *id);

/* Scratch reused across the words of one encode call. */
typedef struct tok_work {
    tok_sym *syms;
    size_t n_syms, cap_syms;
    struct tok_bigram *heap;
    size_t n_heap, cap_heap;
    char *buf; /* a word mapped through the byte table (ignore_merges lookups) */
    size_t cap_buf;
} tok_work;

/* Appends one symbol covering text[off, off+n) with token id (-1 if none). */
int tok_work_add(tok_work *w, uint32_t off, uint32_t n, int32_t id);
/* Merges the symbols in w (linked left to right) until no pair qualifies. */
int tok_merge_run(tok_work *w, const tokenizer *t, const char *text, tok_pair_fn pair);
void tok_work_free(tok_work *w);

/* ---- families ---------------------------------------------------------------------------- */

/* Finds the <0xNN> byte tokens. */
void tok_spm_init(tokenizer *t);
/* Encodes one run of plain text; space_prefix puts the U+2581 in front. */
int tok_spm_encode(const tokenizer *t, tok_work *w, const char *text, size_t len,
                   bool space_prefix, tok_ids *out);

/* Reads tokenizer.ggml.pre and .merges, builds the byte table, compiles the regex. */
int tok_bpe_init(tokenizer *t, const gguf *g);
void tok_bpe_free(tokenizer *t);
int tok_bpe_encode(const tokenizer *t, tok_work *w, const char *text, size_t len,
                   tok_ids *out);
/* Writes the bytes of a NORMAL byte-level piece; returns the count or -1 when cap is short. */
int tok_bpe_decode_piece(const tokenizer *t, const char *piece, size_t len, char *out,
                         size_t cap);

#endif
