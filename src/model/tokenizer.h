/* Tokenizers built from a GGUF file's tokenizer.ggml.* metadata, matching llama.cpp and the
 * Hugging Face tokenizers id for id on the reference data in shared/reference/tokenizers.
 *
 * Two families (tokenizer.ggml.model):
 *   "llama"  SentencePiece-style BPE by piece scores (Llama 1/2, TinyLlama, stories):
 *            spaces become U+2581, one U+2581 goes in front of each text run
 *            (tokenizer.ggml.add_space_prefix, default true), bytes without a piece fall back
 *            to <0xNN> tokens, else to the unknown token.
 *   "gpt2"   byte-level BPE by merge rank with the pre-tokenizer tokenizer.ggml.pre names:
 *            "gpt-2", "llama-bpe" (aliases "llama3", "llama-v3"; ignore_merges) or "qwen2"
 *            (NFC-normalizes the text first, as Qwen's tokenizer.json asks). A missing or
 *            other pre value is an error naming it: guessing a split silently changes ids.
 *
 * Special tokens: the text of CONTROL, USER_DEFINED and UNKNOWN tokens is matched in the input
 * (longest first) before anything else; with parse_special false only USER_DEFINED tokens
 * are (llama.cpp's rule). UNUSED and BYTE tokens are never matched.
 *
 * Invalid UTF-8 never fails and never crashes. Byte-level BPE replaces every byte that does
 * not begin a well-formed sequence with U+FFFD before splitting (llama.cpp does the same;
 * surrogates and overlong forms count as invalid here). SentencePiece keeps each such byte as
 * a symbol of its own, so it falls back to its <0xNN> token and decodes back to itself.
 *
 * A loaded tokenizer is immutable and owns copies of everything it needs (the gguf may be
 * closed afterwards); encode and decode may run on several threads at once. */
#ifndef VEIL_TOKENIZER_H
#define VEIL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/gguf.h"

typedef struct tokenizer tokenizer;

/* GGUF token types (tokenizer.ggml.token_type), numbered as in llama.cpp. */
enum tok_type {
    TOK_UNDEFINED = 0, /* treated as NORMAL */
    TOK_NORMAL = 1,
    TOK_UNKNOWN = 2,
    TOK_CONTROL = 3,
    TOK_USER_DEFINED = 4,
    TOK_UNUSED = 5,
    TOK_BYTE = 6,
};

/* Builds the tokenizer; NULL + err_msg() (naming the file and key) on any problem.
 * Special ids (bos/eos/unk/pad/eot/eom) that are absent or >= the vocab size (0xFFFFFFFF is
 * the usual "none") fall back to the family's default, as in llama.cpp: SPM bos 1, eos 2,
 * unk 0; BPE none. A default outside the vocab means "none". add_bos_token defaults to true
 * for SPM and llama-bpe, false otherwise; add_eos_token to false. Asking to add a BOS/EOS
 * that does not exist is an error. */
tokenizer *tok_load(const gguf *g);
void tok_free(tokenizer *t);

/* Encodes len bytes of text into a malloc'd array (*ids, *n; *ids may be NULL when *n is 0).
 * add_special: put BOS in front / EOS behind when the metadata says so. parse_special: match
 * CONTROL tokens written in the text (USER_DEFINED ones are always matched). 0, or -1 with
 * err_msg() (out of memory, text over 1 GiB, a regex engine failure). */
int tok_encode(const tokenizer *t, const char *text, size_t len, bool add_special,
               bool parse_special, int32_t **ids, size_t *n);

/* Writes the bytes of token `id` to out (at most cap bytes, no NUL added) and returns their
 * count, or -1 with err_msg() for a bad id or a too small buffer (tok_max_piece() always
 * suffices). prev is the token before it, or -1 at the start: for SentencePiece with
 * add_space_prefix a piece at the start or right after a special token (BOS, ...) loses one
 * leading space, mirroring the space the encoder put there. CONTROL, UNKNOWN and UNUSED tokens
 * give their text only when `special`, else nothing. BYTE tokens give their byte; byte-level
 * BPE pieces go back through GPT-2's byte table (code points outside it are copied as UTF-8).
 * So decoding encode(s) token by token gives s back (NFC-normalized for qwen2, with U+FFFD for
 * invalid UTF-8 in byte-level BPE). */
int tok_decode(const tokenizer *t, int32_t prev, int32_t id, bool special, char *out,
               size_t cap);
size_t tok_max_piece(const tokenizer *t);

int32_t tok_n_vocab(const tokenizer *t);
/* The ids below are -1 when the vocab has none. */
int32_t tok_bos(const tokenizer *t);
int32_t tok_eos(const tokenizer *t);
int32_t tok_unk(const tokenizer *t);
int32_t tok_pad(const tokenizer *t);
/* Whether tok_encode(add_special) puts BOS in front / EOS at the end. */
bool tok_adds_bos(const tokenizer *t);
bool tok_adds_eos(const tokenizer *t);
/* End of generation: EOS, tokenizer.ggml.eot/eom_token_id, and CONTROL or USER_DEFINED tokens
 * spelled <|eot_id|>, <|eom_id|>, <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>, <EOT>,
 * _<EOT> (llama.cpp's list) or <|end_of_text|>. */
bool tok_is_eog(const tokenizer *t, int32_t id);

/* The stored text of token id (NUL-terminated; pieces with NUL bytes inside end early), or
 * NULL for a bad id. */
const char *tok_piece_text(const tokenizer *t, int32_t id);
/* The type of token id, or -1 for a bad id. */
int tok_type(const tokenizer *t, int32_t id);
/* The id whose stored text is exactly piece, or -1. */
int32_t tok_find(const tokenizer *t, const char *piece);

#endif
