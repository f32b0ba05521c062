/* llama2.c -> GGUF conversion; see llama2c_gguf.h for the layout and its deliberate
 * differences from llama.cpp's converter. */
#include "model/llama2c_gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* llama.cpp's llama_token_type numbering, as stored in tokenizer.ggml.token_type. */
enum { TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_BYTE = 6 };

/* SentencePiece's Llama ids, which llama2.c's run.c and llama.cpp's converter both assume. */
enum { UNK_ID = 0, BOS_ID = 1, EOS_ID = 2 };

static bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

/* "<0xHH>": SentencePiece's byte-fallback pieces. */
static bool is_byte_piece(const char *s, uint32_t len) {
    return len == 6 && memcmp(s, "<0x", 3) == 0 && is_hex(s[3]) && is_hex(s[4]) && s[5] == '>';
}

/* Token i's GGUF text (malloc'd) and type. llama2.c's exporter turned SentencePiece's "▁"
 * into ' ' and decorated BOS/EOS for printing; this undoes both. */
static char *token_text(const llama2c_vocab *v, uint32_t i, int32_t *type) {
    static const char *const special[] = {"<unk>", "<s>", "</s>"};
    const char *s = v->text[i];
    uint32_t len = v->len[i];
    size_t spaces = 0;
    if (i <= EOS_ID) {
        *type = i == UNK_ID ? TOKEN_UNKNOWN : TOKEN_CONTROL;
        s = special[i];
        len = (uint32_t)strlen(s);
    } else if (len == 0) {
        *type = TOKEN_CONTROL;
    } else if (is_byte_piece(s, len)) {
        *type = TOKEN_BYTE;
    } else {
        *type = TOKEN_NORMAL;
    }
    if (memchr(s, 0, len)) {
        err_set("token %u holds a NUL byte, which a GGUF token text cannot carry here", i);
        return NULL;
    }
    for (uint32_t k = 0; k < len; k++) spaces += s[k] == ' ';
    char *out = malloc(len + 2 * spaces + 1), *o = out;
    if (!out) {
        err_set("out of memory");
        return NULL;
    }
    for (uint32_t k = 0; k < len; k++) {
        if (s[k] == ' ') {
            memcpy(o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            *o++ = s[k];
        }
    }
    *o = 0;
    return out;
}

static int add_vocab(gguf_writer *w, const llama2c_vocab *v) {
    char **texts = calloc(v->n, sizeof *texts);
    int32_t *types = calloc(v->n, sizeof *types);
    int rc = -1;
    if (!texts || !types) {
        err_set("out of memory for %u tokens", v->n);
        goto done;
    }
    for (uint32_t i = 0; i < v->n; i++)
        if (!(texts[i] = token_text(v, i, &types[i]))) goto done;
    /* numeric arrays go in as host bytes: like the GGUF tensors read in place, this assumes a
     * little-endian host */
    gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)texts, v->n);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, v->score, v->n);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, types, v->n);
    rc = 0;
done:
    if (texts)
        for (uint32_t i = 0; i < v->n; i++) free(texts[i]);
    free(texts);
    free(types);
    return rc;
}

/* Tensor number `index` of a run of equal-shaped fp32 tensors starting at base; rows 0 makes
 * a 1-D tensor of cols values. */
static int add(gguf_writer *w, const char *name, uint64_t cols, uint64_t rows,
               const unsigned char *base, uint64_t index) {
    uint64_t ne[2] = {cols, rows ? rows : 1};
    return gguf_writer_add_tensor(w, name, QT_F32, rows ? 2 : 1, ne,
                                  base + index * ne[0] * ne[1] * 4);
}

static int add_tensors(gguf_writer *w, const llama2c_model *m) {
    const llama2c_config *c = &m->cfg;
    uint64_t d = c->dim, h = c->hidden_dim, kv = llama2c_kv_dim(c);
    char name[64];
    if (add(w, "token_embd.weight", d, c->vocab_size, m->tok_embd, 0) ||
        add(w, "output_norm.weight", d, 0, m->rms_final, 0) ||
        (m->wcls && add(w, "output.weight", d, c->vocab_size, m->wcls, 0)))
        return -1;
    /* llama.cpp's order within a block */
    const struct {
        const char *fmt;
        const unsigned char *base;
        uint64_t cols, rows;
    } blk[] = {
        {"blk.%u.attn_q.weight", m->wq, d, d},      {"blk.%u.attn_k.weight", m->wk, d, kv},
        {"blk.%u.attn_v.weight", m->wv, d, kv},     {"blk.%u.attn_output.weight", m->wo, d, d},
        {"blk.%u.attn_norm.weight", m->rms_att, d, 0}, {"blk.%u.ffn_gate.weight", m->w1, d, h},
        {"blk.%u.ffn_down.weight", m->w2, h, d},    {"blk.%u.ffn_up.weight", m->w3, d, h},
        {"blk.%u.ffn_norm.weight", m->rms_ffn, d, 0},
    };
    for (uint32_t l = 0; l < c->n_layers; l++)
        for (size_t t = 0; t < sizeof blk / sizeof blk[0]; t++) {
            snprintf(name, sizeof name, blk[t].fmt, l);
            if (add(w, name, blk[t].cols, blk[t].rows, blk[t].base, l)) return -1;
        }
    return 0;
}

int llama2c_gguf_fill(gguf_writer *w, const llama2c_model *m, const llama2c_vocab *v,
                      const char *name) {
    const llama2c_config *c = &m->cfg;
    if (v->n != c->vocab_size)
        return err_set("%s: the tokenizer has %u tokens but the model %u", m->path, v->n,
                       c->vocab_size);
    if (c->vocab_size <= EOS_ID)
        return err_set("%s: vocab_size %u leaves no room for the <unk>, <s> and </s> tokens",
                       m->path, c->vocab_size);
    /* key order as llama.cpp's converter writes them */
    if (add_vocab(w, v) != 0) return err_prefix("%s", m->path);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "general.name", name);
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", UNK_ID);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", BOS_ID);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", EOS_ID);
    gguf_writer_set_u32(w, "llama.context_length", c->seq_len);
    gguf_writer_set_u32(w, "llama.embedding_length", c->dim);
    gguf_writer_set_u32(w, "llama.feed_forward_length", c->hidden_dim);
    gguf_writer_set_u32(w, "llama.attention.head_count", c->n_heads);
    gguf_writer_set_u32(w, "llama.attention.head_count_kv", c->n_kv_heads);
    gguf_writer_set_u32(w, "llama.block_count", c->n_layers);
    gguf_writer_set_u32(w, "llama.rope.dimension_count", c->dim / c->n_heads);
    /* llama2.c's model.py trains with norm_eps 1e-5 and its header does not record it */
    gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    return add_tensors(w, m);
}
