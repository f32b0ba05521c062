/* libFuzzer target: the llama2.c checkpoint and tokenizer.bin readers must accept or reject any
 * byte string without a crash, a leak, a huge allocation or a read outside the buffer; when
 * they accept, every byte they point at must lie inside it.
 *
 * Input layout: byte 0 chooses the reader. Even: the rest is a checkpoint. Odd: bytes 1..4 are
 * the vocabulary size asked for (little-endian; any value, as a caller could pass) and the rest
 * is a tokenizer.bin. */
#include "model/llama2c.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* First and last byte of a tensor of `floats` fp32 values. */
static unsigned touch(const unsigned char *p, uint64_t floats) {
    return p ? p[0] + p[floats * 4 - 1] : 0;
}

static void fuzz_checkpoint(const unsigned char *buf, size_t size) {
    llama2c_model m;
    if (llama2c_open_buffer(&m, buf, size, "fuzz") != 0) return;
    const llama2c_config *c = &m.cfg;
    uint64_t d = c->dim, h = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    uint64_t kv = llama2c_kv_dim(c);
    volatile unsigned sink = touch(m.tok_embd, V * d) + touch(m.rms_att, L * d) +
                             touch(m.wq, L * d * d) + touch(m.wk, L * kv * d) +
                             touch(m.wv, L * kv * d) + touch(m.wo, L * d * d) +
                             touch(m.rms_ffn, L * d) + touch(m.w1, L * h * d) +
                             touch(m.w2, L * d * h) + touch(m.w3, L * h * d) +
                             touch(m.rms_final, d) + touch(m.wcls, V * d);
    (void)sink;
    /* a separate classifier is present exactly when it is not shared */
    if (!m.wcls != c->shared_classifier) abort();
    llama2c_close(&m);
}

static void fuzz_vocab(const unsigned char *buf, size_t size) {
    if (size < 4) return;
    uint32_t n = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
                 (uint32_t)buf[3] << 24;
    llama2c_vocab v;
    if (llama2c_vocab_load_buffer(&v, buf + 4, size - 4, n, "fuzz") != 0) return;
    volatile unsigned sink = 0;
    for (uint32_t i = 0; i < v.n; i++) {
        if (v.len[i] > v.max_token_length || v.text[i][v.len[i]] != 0) abort();
        uint32_t bits;
        memcpy(&bits, &v.score[i], 4);
        sink += bits + (v.len[i] ? (unsigned char)v.text[i][0] : 0);
    }
    (void)sink;
    llama2c_vocab_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    /* copy so that reads past the end hit ASan's redzone */
    unsigned char *copy = malloc(size - 1 ? size - 1 : 1);
    if (!copy) return 0;
    memcpy(copy, data + 1, size - 1);
    if (data[0] & 1) fuzz_vocab(copy, size - 1);
    else fuzz_checkpoint(copy, size - 1);
    free(copy);
    return 0;
}
