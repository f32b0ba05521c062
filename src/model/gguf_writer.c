/* GGUF v3 writer (see gguf.h). Metadata values are serialized when set, so the writer holds
 * plain bytes; tensors are referenced (or produced by a fill callback, one at a time into a
 * reused buffer) and copied only when the file is written. Files are
 * written to a temporary name and renamed into place, so a crash never leaves half a model
 * under the final name. */
#include "model/gguf.h"

#include "base/err.h"
#include "base/grow.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct wbuf {
    unsigned char *p;
    size_t len, cap;
    bool oom;
} wbuf;

typedef struct wkv {
    char *key;
    wbuf val; /* type tag + value bytes */
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes;
    const void *data;      /* or, when NULL, fill(ud) makes the bytes at write time */
    gguf_tensor_fill fill;
    void *ud;
} wtensor;

struct gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    bool oom;
};

static void wb_put(wbuf *b, const void *p, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void wb_u32(wbuf *b, uint32_t v) { wb_put(b, &v, 4); }
static void wb_u64(wbuf *b, uint64_t v) { wb_put(b, &v, 8); }
static void wb_str(wbuf *b, const char *s) {
    size_t n = strlen(s);
    wb_u64(b, n);
    wb_put(b, s, n);
}

gguf_writer *gguf_writer_new(void) { return calloc(1, sizeof(gguf_writer)); }

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val.p);
    }
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

/* Returns the value buffer for key, emptied; creates the entry if needed. */
static wbuf *slot(gguf_writer *w, const char *key) {
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            w->kvs[i].val.len = 0;
            return &w->kvs[i].val;
        }
    }
    if (grow(&w->kvs, &w->cap_kv, w->n_kv + 1, sizeof *w->kvs, 32, "the metadata table") < 0)
        goto oom;
    w->kvs[w->n_kv].key = strdup(key);
    if (!w->kvs[w->n_kv].key) goto oom;
    memset(&w->kvs[w->n_kv].val, 0, sizeof(wbuf));
    return &w->kvs[w->n_kv++].val;
oom:
    w->oom = true;
    return NULL;
}

#define SETTER(fn, ctype, tag)                                                  \
    void fn(gguf_writer *w, const char *key, ctype v) {                         \
        wbuf *b = slot(w, key);                                                 \
        if (!b) return;                                                         \
        wb_u32(b, tag);                                                         \
        wb_put(b, &v, sizeof v);                                                \
    }
SETTER(gguf_writer_set_u32, uint32_t, GGUF_UINT32)
SETTER(gguf_writer_set_i32, int32_t, GGUF_INT32)
SETTER(gguf_writer_set_u64, uint64_t, GGUF_UINT64)
SETTER(gguf_writer_set_f32, float, GGUF_FLOAT32)

void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    wbuf *b = slot(w, key);
    unsigned char x = v;
    if (!b) return;
    wb_u32(b, GGUF_BOOL);
    wb_put(b, &x, 1);
}

void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    wbuf *b = slot(w, key);
    if (!b) return;
    wb_u32(b, GGUF_STRING);
    wb_str(b, v);
}

void gguf_writer_set_arr(gguf_writer *w, const char *key, enum gguf_vtype elem, const void *data,
                         uint64_t n) {
    wbuf *b = slot(w, key);
    if (!b) return;
    wb_u32(b, GGUF_ARRAY);
    wb_u32(b, elem);
    wb_u64(b, n);
    wb_put(b, data, gguf_vtype_size(elem) * n);
}

void gguf_writer_set_str_arr(gguf_writer *w, const char *key, const char *const *strs,
                             uint64_t n) {
    wbuf *b = slot(w, key);
    if (!b) return;
    wb_u32(b, GGUF_ARRAY);
    wb_u32(b, GGUF_STRING);
    wb_u64(b, n);
    for (uint64_t i = 0; i < n; i++) wb_str(b, strs[i]);
}

/* Re-serializes a parsed value (the reader keeps strings and raw arrays as they were). */
static void put_value(wbuf *b, const gguf_value *v, bool with_tag) {
    if (with_tag) wb_u32(b, v->type);
    switch (v->type) {
    case GGUF_STRING:
        wb_u64(b, v->v.s.len);
        wb_put(b, v->v.s.ptr, v->v.s.len);
        break;
    case GGUF_ARRAY:
        wb_u32(b, v->v.arr.elem);
        wb_u64(b, v->v.arr.n);
        if (v->v.arr.items)
            for (uint64_t i = 0; i < v->v.arr.n; i++) put_value(b, &v->v.arr.items[i], false);
        else
            wb_put(b, v->v.arr.raw, gguf_vtype_size(v->v.arr.elem) * v->v.arr.n);
        break;
    case GGUF_FLOAT32: { float f = (float)v->v.f; wb_put(b, &f, 4); break; }
    case GGUF_FLOAT64: wb_put(b, &v->v.f, 8); break;
    case GGUF_BOOL: { unsigned char x = v->v.b; wb_put(b, &x, 1); break; }
    default: {
        /* integers: the low bytes of the 64-bit value, little-endian */
        uint64_t u = (v->type == GGUF_INT8 || v->type == GGUF_INT16 || v->type == GGUF_INT32 ||
                      v->type == GGUF_INT64) ? (uint64_t)v->v.i : v->v.u;
        wb_put(b, &u, gguf_vtype_size(v->type));
    }
    }
}

void gguf_writer_copy_kvs(gguf_writer *w, const gguf *src) {
    for (size_t i = 0; i < gguf_n_kv(src); i++) {
        const gguf_kv *kv = gguf_kv_at(src, i);
        char *key = gguf_str_dup(kv->key);
        if (!key) {
            w->oom = true;
            return;
        }
        if (strcmp(key, "general.alignment") != 0) {
            wbuf *b = slot(w, key);
            if (b) put_value(b, &kv->val, true);
        }
        free(key);
    }
}

static int add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                      const uint64_t *ne, const void *data, gguf_tensor_fill fill, void *ud) {
    const qtype_info *qi = qtype_get(type);
    if (!qi) return err_set("tensor '%s': unknown type %u", name, type);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return err_set("tensor '%s': %u dimensions", name, n_dims);
    if (ne[0] % qi->block_size)
        return err_set("tensor '%s': row length %llu is not a multiple of %s's block size %u", name,
                       (unsigned long long)ne[0], qi->name, qi->block_size);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return err_set("duplicate tensor '%s'", name);
    if (grow(&w->tensors, &w->cap_tensors, w->n_tensors + 1, sizeof *w->tensors, 64,
             "the tensor table") < 0)
        return -1;
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return err_set("out of memory");
    t->type = type;
    t->n_dims = n_dims;
    uint64_t rows = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = d < n_dims ? ne[d] : 1;
        if (d) rows *= t->ne[d];
    }
    t->nbytes = qtype_row_size(type, t->ne[0]) * rows;
    t->data = data;
    t->fill = fill;
    t->ud = ud;
    w->n_tensors++;
    return 0;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne, const void *data) {
    return add_tensor(w, name, type, n_dims, ne, data, NULL, NULL);
}

int gguf_writer_add_tensor_fill(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                const uint64_t *ne, gguf_tensor_fill fill, void *ud) {
    return add_tensor(w, name, type, n_dims, ne, NULL, fill, ud);
}

/* The bytes of tensor t: its data, or fill's output in *scratch (grown as needed). NULL with
 * err_msg() on failure. */
static const void *tensor_bytes(const wtensor *t, unsigned char **scratch, uint64_t *cap) {
    if (!t->fill) return t->data;
    if (t->nbytes > *cap) {
        unsigned char *p = realloc(*scratch, t->nbytes ? t->nbytes : 1);
        if (!p) {
            err_set("out of memory for tensor '%s' (%llu bytes)", t->name,
                    (unsigned long long)t->nbytes);
            return NULL;
        }
        *scratch = p;
        *cap = t->nbytes;
    }
    if (t->fill(t->ud, *scratch, t->nbytes)) {
        err_prefix("tensor '%s'", t->name);
        return NULL;
    }
    return *scratch;
}

static uint32_t writer_alignment(const gguf_writer *w) {
    for (size_t i = 0; i < w->n_kv; i++) {
        const wbuf *b = &w->kvs[i].val;
        uint32_t tag, a;
        if (strcmp(w->kvs[i].key, "general.alignment") || b->len != 8) continue;
        memcpy(&tag, b->p, 4);
        memcpy(&a, b->p + 4, 4);
        if (tag == GGUF_UINT32 && a && !(a & (a - 1))) return a;
    }
    return GGUF_DEFAULT_ALIGNMENT;
}

static uint64_t align_up(uint64_t x, uint32_t a) { return (x + a - 1) / a * a; }

/* Serializes everything before the tensor data into hdr; returns the data section's start. */
static int build_header(gguf_writer *w, wbuf *hdr, uint32_t align) {
    wb_u32(hdr, 0x46554747u);
    wb_u32(hdr, 3);
    wb_u64(hdr, w->n_tensors);
    wb_u64(hdr, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        wb_str(hdr, w->kvs[i].key);
        wb_put(hdr, w->kvs[i].val.p, w->kvs[i].val.len);
        if (w->kvs[i].val.oom) w->oom = true;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        wtensor *t = &w->tensors[i];
        wb_str(hdr, t->name);
        wb_u32(hdr, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) wb_u64(hdr, t->ne[d]);
        wb_u32(hdr, t->type);
        wb_u64(hdr, off);
        off = align_up(off + t->nbytes, align);
    }
    static const unsigned char zeros[1 << 16];
    wb_put(hdr, zeros, align_up(hdr->len, align) - hdr->len);
    if (w->oom || hdr->oom) return err_set("out of memory while building a GGUF header");
    return 0;
}

int gguf_writer_write_buffer(gguf_writer *w, unsigned char **out, size_t *size) {
    uint32_t align = writer_alignment(w);
    wbuf b = {0};
    unsigned char *scratch = NULL;
    uint64_t scratch_cap = 0;
    static const unsigned char zeros[1 << 16];
    if (build_header(w, &b, align)) goto fail;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const void *data = tensor_bytes(&w->tensors[i], &scratch, &scratch_cap);
        if (!data) goto fail;
        wb_put(&b, data, w->tensors[i].nbytes);
        if (i + 1 < w->n_tensors) wb_put(&b, zeros, align_up(b.len, align) - b.len);
    }
    if (b.oom) {
        err_set("out of memory while building a GGUF file");
        goto fail;
    }
    free(scratch);
    *out = b.p;
    *size = b.len;
    return 0;
fail:
    free(scratch);
    free(b.p);
    return -1;
}

static int write_all(int fd, const void *p, size_t n) {
    const unsigned char *c = p;
    while (n) {
        ssize_t r = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (r < 0) return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

int gguf_writer_write(gguf_writer *w, const char *path) {
    uint32_t align = writer_alignment(w);
    static const unsigned char zeros[1 << 16];
    wbuf hdr = {0};
    char *tmp = NULL;
    unsigned char *scratch = NULL;
    uint64_t scratch_cap = 0;
    int fd = -1;
    if (build_header(w, &hdr, align)) goto fail;
    if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
        tmp = NULL;
        err_set("out of memory");
        goto fail;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        err_errno("%s: cannot create a temporary file", path);
        goto fail;
    }
    if (write_all(fd, hdr.p, hdr.len)) goto io_fail;
    uint64_t pos = hdr.len;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const void *data = tensor_bytes(&w->tensors[i], &scratch, &scratch_cap);
        if (!data) goto fail;
        if (write_all(fd, data, w->tensors[i].nbytes)) goto io_fail;
        pos += w->tensors[i].nbytes;
        if (i + 1 < w->n_tensors) {
            size_t pad = (size_t)(align_up(pos, align) - pos);
            if (write_all(fd, zeros, pad)) goto io_fail;
            pos += pad;
        }
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        goto io_fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) goto io_fail;
    free(hdr.p);
    free(tmp);
    free(scratch);
    return 0;
io_fail:
    err_errno("%s: write failed", path);
fail:
    if (fd >= 0) close(fd);
    if (tmp) unlink(tmp);
    free(tmp);
    free(hdr.p);
    free(scratch);
    return -1;
}
