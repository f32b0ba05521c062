/* Readers for Karpathy's llama2.c files: model checkpoints (the legacy "v0" layout with a
 * 28-byte header, and the "ak42" version-1 layout with a 256-byte header, both fp32) and the
 * tokenizer.bin vocabulary.
 *
 * Everything is validated before use: header values must be positive and consistent (dim a
 * multiple of n_heads, n_heads a multiple of n_kv_heads, even head size) and the file size
 * must equal exactly what the header implies, so a truncated, padded or foreign file is an
 * error naming the file, never a read past the end. Weights are not copied: the pointers
 * below address the read-only mapping of the checkpoint, in the file's little-endian fp32
 * bytes, each tensor row-major with rows of length `dim` (w2: `hidden_dim`). */
#ifndef VEIL_LLAMA2C_H
#define VEIL_LLAMA2C_H

#include <stdbool.h>
#include <stdint.h>

#include "base/mapfile.h"

typedef struct llama2c_config {
    uint32_t version;           /* 0 (legacy) or 1 ("ak42") */
    uint32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads;
    uint32_t vocab_size;        /* always positive here; see shared_classifier */
    uint32_t seq_len;
    bool shared_classifier;     /* the classifier is the token embedding (no wcls) */
} llama2c_config;

/* Every field is the first layer's tensor; layer i's lies at i times that tensor's size. */
typedef struct llama2c_model {
    mapfile map;
    const char *path;               /* the caller's string, for messages */
    llama2c_config cfg;
    const unsigned char *tok_embd;  /* [vocab][dim] */
    const unsigned char *rms_att;   /* [L][dim] */
    const unsigned char *wq;        /* [L][dim][dim] */
    const unsigned char *wk;        /* [L][kv_dim][dim] */
    const unsigned char *wv;        /* [L][kv_dim][dim] */
    const unsigned char *wo;        /* [L][dim][dim] */
    const unsigned char *rms_ffn;   /* [L][dim] */
    const unsigned char *w1;        /* [L][hidden][dim] */
    const unsigned char *w2;        /* [L][dim][hidden] */
    const unsigned char *w3;        /* [L][hidden][dim] */
    const unsigned char *rms_final; /* [dim] */
    const unsigned char *wcls;      /* [vocab][dim]; NULL when shared_classifier */
} llama2c_model;

/* Maps and validates a checkpoint; `path` must outlive the model. 0, or -1 with err_msg(). */
int llama2c_open(llama2c_model *m, const char *path);
/* Validates an in-memory checkpoint (tests); `data` must outlive the model. */
int llama2c_open_buffer(llama2c_model *m, const void *data, size_t size, const char *name);
void llama2c_close(llama2c_model *m);

/* n_kv_heads * head size: the rows of wk and wv. */
uint32_t llama2c_kv_dim(const llama2c_config *c);

typedef struct llama2c_vocab {
    uint32_t n;
    uint32_t max_token_length;
    char **text;     /* n malloc'd copies of the bytes, NUL added (a token may hold a NUL) */
    uint32_t *len;   /* byte length of each text */
    float *score;
} llama2c_vocab;

/* Reads a tokenizer.bin holding exactly n_vocab tokens (the count is not in the file; it
 * comes from the checkpoint). A short file, a negative or over-long token length, or bytes
 * left after the last token are errors naming the file, offset and token. 0, or -1. */
int llama2c_vocab_load(llama2c_vocab *v, const char *path, uint32_t n_vocab);
int llama2c_vocab_load_buffer(llama2c_vocab *v, const void *data, size_t size, uint32_t n_vocab,
                              const char *name);
void llama2c_vocab_free(llama2c_vocab *v);

#endif
