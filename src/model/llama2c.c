/* llama2.c checkpoint and tokenizer.bin readers; see llama2c.h. The layouts follow llama2.c's
 * export.py: legacy_export (v0) and version1_export (v1). */
#include "model/llama2c.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define V0_HEADER_BYTES 28
#define V1_HEADER_BYTES 256
#define V1_MAGIC 0x616b3432u /* "ak42" read as a little-endian uint32 */

static uint32_t rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int64_t rd_i32(const unsigned char *p) {
    uint32_t u = rd_u32(p);
    return u < 0x80000000u ? (int64_t)u : (int64_t)u - 0x100000000ll;
}

uint32_t llama2c_kv_dim(const llama2c_config *c) {
    return c->dim / c->n_heads * c->n_kv_heads;
}

/* The 7 header integers in file order with the largest value we accept. The bounds are far
 * beyond any real model yet keep every size product below 2^53, so no size computation can
 * overflow. */
static const struct {
    const char *name;
    int64_t max;
} fields[7] = {
    {"dim", 1 << 16},      {"hidden_dim", 1 << 20}, {"n_layers", 1 << 12},
    {"n_heads", 1 << 12},  {"n_kv_heads", 1 << 12}, {"vocab_size", 1 << 24},
    {"seq_len", 1 << 24},
};

/* Fills c from the header; returns the header's size in bytes, or -1 with err_msg(). */
static int parse_config(llama2c_config *c, const unsigned char *p, size_t size,
                        const char *name) {
    uint32_t v[7];
    size_t header = V0_HEADER_BYTES, at = 0; /* at: file offset of the 7 integers */
    memset(c, 0, sizeof *c);
    if (size >= 4 && rd_u32(p) == V1_MAGIC) {
        if (size < V1_HEADER_BYTES)
            return err_set("%s: %zu bytes, shorter than the 256-byte llama2.c v1 header", name,
                           size);
        int64_t version = rd_i32(p + 4);
        if (version != 1)
            return err_set("%s: llama2.c checkpoint version %lld is not supported (only the fp32 "
                           "versions 0 and 1 are; re-export with export.py --version 1)",
                           name, (long long)version);
        if (p[36] > 1)
            return err_set("%s: shared_classifier flag at offset 36 is %u, not 0 or 1", name,
                           p[36]);
        c->version = 1;
        c->shared_classifier = p[36] == 1;
        at = 8;
        header = V1_HEADER_BYTES;
    } else if (size < V0_HEADER_BYTES) {
        return err_set("%s: %zu bytes, shorter than the 28-byte llama2.c header", name, size);
    }
    for (int i = 0; i < 7; i++) {
        int64_t raw = rd_i32(p + at + 4 * i), x = raw;
        /* v0 encodes an unshared classifier as a negative vocab_size */
        if (i == 5 && c->version == 0 && x < 0) {
            x = -x;
            c->shared_classifier = false;
        } else if (i == 5 && c->version == 0) {
            c->shared_classifier = true;
        }
        if (x <= 0 || x > fields[i].max)
            return err_set("%s: header field %s at offset %zu is %lld, outside [1, %lld]: not a "
                           "llama2.c checkpoint?",
                           name, fields[i].name, at + 4 * i, (long long)raw,
                           (long long)fields[i].max);
        v[i] = (uint32_t)x;
    }
    c->dim = v[0];
    c->hidden_dim = v[1];
    c->n_layers = v[2];
    c->n_heads = v[3];
    c->n_kv_heads = v[4];
    c->vocab_size = v[5];
    c->seq_len = v[6];
    if (c->dim % c->n_heads)
        return err_set("%s: dim %u is not a multiple of n_heads %u", name, c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        return err_set("%s: n_heads %u is not a multiple of n_kv_heads %u", name, c->n_heads,
                       c->n_kv_heads);
    if ((c->dim / c->n_heads) % 2)
        return err_set("%s: head size %u is odd; RoPE rotates pairs", name, c->dim / c->n_heads);
    return (int)header;
}

/* One stretch of fp32 values in file order; dst NULL for the skipped freq_cis tables. */
struct part {
    const unsigned char **dst;
    uint64_t floats;
};

/* The file's tensors in order; returns how many. */
static int plan(llama2c_model *m, struct part out[13]) {
    const llama2c_config *c = &m->cfg;
    uint64_t d = c->dim, h = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    uint64_t kv = llama2c_kv_dim(c), head = c->dim / c->n_heads;
    struct part tok = {&m->tok_embd, V * d}, att = {&m->rms_att, L * d},
                wq = {&m->wq, L * d * d}, wk = {&m->wk, L * kv * d}, wv = {&m->wv, L * kv * d},
                wo = {&m->wo, L * d * d}, ffn = {&m->rms_ffn, L * d}, w1 = {&m->w1, L * h * d},
                w2 = {&m->w2, L * d * h}, w3 = {&m->w3, L * h * d}, fin = {&m->rms_final, d},
                freq = {NULL, c->seq_len * head}, /* cos and sin, seq_len x head/2 each */
        cls = {&m->wcls, V * d};
    int n = 0;
    if (c->version == 0) {
        struct part v0[] = {tok, att, wq, wk, wv, wo, ffn, w1, w2, w3, fin, freq};
        for (size_t i = 0; i < sizeof v0 / sizeof v0[0]; i++) out[n++] = v0[i];
    } else {
        struct part v1[] = {att, ffn, fin, tok, wq, wk, wv, wo, w1, w2, w3};
        for (size_t i = 0; i < sizeof v1 / sizeof v1[0]; i++) out[n++] = v1[i];
    }
    if (!c->shared_classifier) out[n++] = cls;
    return n;
}

static int open_mapped(llama2c_model *m, const unsigned char *data, size_t size,
                       const char *name) {
    struct part parts[13];
    int header = parse_config(&m->cfg, data, size, name);
    if (header < 0) return -1;
    int n = plan(m, parts);
    uint64_t expect = (uint64_t)header;
    for (int i = 0; i < n; i++) expect += parts[i].floats * 4;
    if (expect != (uint64_t)size)
        return err_set("%s: %zu bytes, but a llama2.c v%u checkpoint with dim=%u hidden_dim=%u "
                       "n_layers=%u n_heads=%u n_kv_heads=%u vocab_size=%u seq_len=%u (%s "
                       "classifier) takes exactly %llu bytes: %s",
                       name, size, m->cfg.version, m->cfg.dim, m->cfg.hidden_dim,
                       m->cfg.n_layers, m->cfg.n_heads, m->cfg.n_kv_heads, m->cfg.vocab_size,
                       m->cfg.seq_len, m->cfg.shared_classifier ? "shared" : "separate",
                       (unsigned long long)expect,
                       expect > size ? "truncated?" : "trailing data or a wrong header?");
    const unsigned char *p = data + header;
    for (int i = 0; i < n; i++) {
        if (parts[i].dst) *parts[i].dst = p;
        p += parts[i].floats * 4;
    }
    return 0;
}

int llama2c_open_buffer(llama2c_model *m, const void *data, size_t size, const char *name) {
    memset(m, 0, sizeof *m);
    m->path = name;
    if (open_mapped(m, data, size, name) != 0) {
        memset(m, 0, sizeof *m);
        return -1;
    }
    return 0;
}

int llama2c_open(llama2c_model *m, const char *path) {
    mapfile map;
    if (mapfile_open(&map, path) != 0 || llama2c_open_buffer(m, map.data, map.size, path) != 0) {
        mapfile_close(&map); /* safe after a failed mapfile_open too */
        memset(m, 0, sizeof *m);
        return -1;
    }
    m->map = map;
    return 0;
}

void llama2c_close(llama2c_model *m) {
    mapfile_close(&m->map);
    memset(m, 0, sizeof *m);
}

/* ---- tokenizer.bin ----------------------------------------------------------------------- */

int llama2c_vocab_load_buffer(llama2c_vocab *v, const void *data, size_t size, uint32_t n_vocab,
                              const char *name) {
    const unsigned char *p = data;
    size_t off = 4;
    memset(v, 0, sizeof *v);
    if (n_vocab == 0) {
        err_set("%s: a vocabulary of 0 tokens was asked for", name);
        goto fail;
    }
    if (size < 4) {
        err_set("%s: %zu bytes, too short for a llama2.c tokenizer", name, size);
        goto fail;
    }
    int64_t max_len = rd_i32(p);
    if (max_len <= 0 || max_len > 1 << 16) {
        err_set("%s: max_token_length %lld at offset 0 is outside [1, 65536]: not a llama2.c "
                "tokenizer?",
                name, (long long)max_len);
        goto fail;
    }
    v->max_token_length = (uint32_t)max_len;
    /* every token takes at least 8 bytes (score and length): refuse a count the file cannot
     * hold before allocating arrays for it */
    if ((size - 4) / 8 < n_vocab) {
        err_set("%s: ends at offset %zu, too short for %u tokens of at least 8 bytes each "
                "(truncated, or a tokenizer for a smaller vocabulary)",
                name, size, n_vocab);
        goto fail;
    }
    v->text = calloc(n_vocab, sizeof *v->text);
    v->len = calloc(n_vocab, sizeof *v->len);
    v->score = calloc(n_vocab, sizeof *v->score);
    if (!v->text || !v->len || !v->score) {
        err_set("%s: out of memory for %u tokens", name, n_vocab);
        goto fail;
    }
    v->n = n_vocab;
    for (uint32_t i = 0; i < n_vocab; i++) {
        if (size - off < 8) {
            err_set("%s: ends at offset %zu inside token %u of %u (truncated, or a tokenizer for "
                    "a smaller vocabulary)",
                    name, size, i, n_vocab);
            goto fail;
        }
        uint32_t bits = rd_u32(p + off);
        memcpy(&v->score[i], &bits, 4);
        int64_t len = rd_i32(p + off + 4);
        if (len < 0 || len > max_len) {
            err_set("%s: token %u at offset %zu has length %lld, outside [0, max_token_length "
                    "%lld]",
                    name, i, off + 4, (long long)len, (long long)max_len);
            goto fail;
        }
        off += 8;
        if (size - off < (size_t)len) {
            err_set("%s: token %u needs %lld bytes at offset %zu but the file ends at %zu", name,
                    i, (long long)len, off, size);
            goto fail;
        }
        v->text[i] = malloc((size_t)len + 1);
        if (!v->text[i]) {
            err_set("%s: out of memory", name);
            goto fail;
        }
        memcpy(v->text[i], p + off, (size_t)len);
        v->text[i][len] = 0;
        v->len[i] = (uint32_t)len;
        off += (size_t)len;
    }
    if (off != size) {
        err_set("%s: %zu bytes left after token %u (a tokenizer for a larger vocabulary than the "
                "model's %u?)",
                name, size - off, n_vocab - 1, n_vocab);
        goto fail;
    }
    return 0;
fail:
    llama2c_vocab_free(v);
    return -1;
}

int llama2c_vocab_load(llama2c_vocab *v, const char *path, uint32_t n_vocab) {
    mapfile map;
    memset(v, 0, sizeof *v);
    if (mapfile_open(&map, path) != 0) return -1;
    int rc = llama2c_vocab_load_buffer(v, map.data, map.size, n_vocab, path);
    mapfile_close(&map);
    return rc;
}

void llama2c_vocab_free(llama2c_vocab *v) {
    if (v->text)
        for (uint32_t i = 0; i < v->n; i++) free(v->text[i]);
    free(v->text);
    free(v->len);
    free(v->score);
    memset(v, 0, sizeof *v);
}
