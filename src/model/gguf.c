/* GGUF reader: parses and validates a whole file up front (see gguf.h), so that everything
 * after gguf_open() can trust offsets, sizes and types. All reads go through `cursor`, which
 * checks each access against the end of the buffer. Memory used for parsed metadata is bounded
 * by the file size, because every count is checked against the bytes that remain. */
#include "model/gguf.h"

#include "base/err.h"
#include "base/mapfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define MAX_NESTING 3          /* arrays of arrays of arrays: deeper is surely garbage */
#define MAX_NAME_LEN 4096
#define MAX_ALIGNMENT (1u << 16)

struct gguf {
    char *path;
    mapfile map;      /* zero when opened over a caller's buffer */
    const unsigned char *data;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv, n_tensors;
    gguf_kv *kvs;
    gguf_tensor *tensors;
    const gguf_tensor **by_name; /* tensors sorted by name, for lookup and duplicate checks */
};

typedef struct cursor {
    const unsigned char *p;
    size_t off, size;
    const char *name;
} cursor;

static int cur_need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->off)
        return err_set("%s: truncated file: %s at offset %zu needs %llu bytes, %zu left", c->name,
                       what, c->off, (unsigned long long)n, c->size - c->off);
    return 0;
}

static int cur_u32(cursor *c, uint32_t *v, const char *what) {
    if (cur_need(c, 4, what)) return -1;
    memcpy(v, c->p + c->off, 4);
    c->off += 4;
    return 0;
}

static int cur_u64(cursor *c, uint64_t *v, const char *what) {
    if (cur_need(c, 8, what)) return -1;
    memcpy(v, c->p + c->off, 8);
    c->off += 8;
    return 0;
}

static int cur_str(cursor *c, gguf_str *s, const char *what) {
    uint64_t len;
    if (cur_u64(c, &len, what) || cur_need(c, len, what)) return -1;
    s->ptr = (const char *)c->p + c->off;
    s->len = len;
    c->off += len;
    return 0;
}

size_t gguf_vtype_size(enum gguf_vtype t) {
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

const char *gguf_vtype_name(enum gguf_vtype t) {
    static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32",
                                  "float32", "bool", "string", "array", "uint64", "int64",
                                  "float64"};
    return (unsigned)t < GGUF_VTYPE_COUNT ? names[t] : "invalid";
}

/* Decodes a scalar at p (little-endian, maybe unaligned) into v. */
static void decode_scalar(enum gguf_vtype t, const unsigned char *p, gguf_value *v) {
    v->type = t;
    switch (t) {
    case GGUF_UINT8: v->v.u = p[0]; break;
    case GGUF_INT8: v->v.i = (int8_t)p[0]; break;
    case GGUF_BOOL: v->v.b = p[0] != 0; break;
    case GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); v->v.u = x; break; }
    case GGUF_INT16: { int16_t x; memcpy(&x, p, 2); v->v.i = x; break; }
    case GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); v->v.u = x; break; }
    case GGUF_INT32: { int32_t x; memcpy(&x, p, 4); v->v.i = x; break; }
    case GGUF_FLOAT32: { float x; memcpy(&x, p, 4); v->v.f = x; break; }
    case GGUF_UINT64: { uint64_t x; memcpy(&x, p, 8); v->v.u = x; break; }
    case GGUF_INT64: { int64_t x; memcpy(&x, p, 8); v->v.i = x; break; }
    case GGUF_FLOAT64: { double x; memcpy(&x, p, 8); v->v.f = x; break; }
    default: break;
    }
}

static void free_value(gguf_value *v) {
    if (v->type != GGUF_ARRAY || !v->v.arr.items) return;
    for (uint64_t i = 0; i < v->v.arr.n; i++) free_value(&v->v.arr.items[i]);
    free(v->v.arr.items);
    v->v.arr.items = NULL;
}

static int read_value(cursor *c, enum gguf_vtype t, gguf_value *v, int depth, const char *key) {
    memset(v, 0, sizeof *v);
    v->type = t;
    if (gguf_vtype_size(t)) {
        if (cur_need(c, gguf_vtype_size(t), key)) return -1;
        decode_scalar(t, c->p + c->off, v);
        c->off += gguf_vtype_size(t);
        return 0;
    }
    if (t == GGUF_STRING) return cur_str(c, &v->v.s, key);
    if (t != GGUF_ARRAY)
        return err_set("%s: key '%s' at offset %zu: unknown value type %u", c->name, key, c->off,
                       (unsigned)t);
    if (depth >= MAX_NESTING)
        return err_set("%s: key '%s': arrays nested deeper than %d", c->name, key, MAX_NESTING);
    uint32_t et;
    uint64_t n;
    if (cur_u32(c, &et, key) || cur_u64(c, &n, key)) return -1;
    if (et >= GGUF_VTYPE_COUNT)
        return err_set("%s: key '%s' at offset %zu: unknown array element type %u", c->name, key,
                       c->off - 12, et);
    v->v.arr.elem = (enum gguf_vtype)et;
    v->v.arr.n = n;
    size_t es = gguf_vtype_size((enum gguf_vtype)et);
    /* Smallest encoding of one element: strings take 8 bytes of length, arrays 12 of header. */
    uint64_t min_each = es ? es : et == GGUF_STRING ? 8 : 12;
    if (n > (c->size - c->off) / min_each)
        return err_set("%s: key '%s' at offset %zu: array of %llu elements cannot fit in the %zu "
                       "bytes left", c->name, key, c->off, (unsigned long long)n, c->size - c->off);
    if (es) {
        v->v.arr.raw = c->p + c->off;
        c->off += n * es;
        return 0;
    }
    v->v.arr.items = calloc(n ? n : 1, sizeof *v->v.arr.items);
    if (!v->v.arr.items) return err_set("%s: key '%s': out of memory", c->name, key);
    for (uint64_t i = 0; i < n; i++) {
        if (read_value(c, (enum gguf_vtype)et, &v->v.arr.items[i], depth + 1, key)) {
            v->v.arr.n = i + 1; /* free what was parsed */
            return -1;
        }
    }
    return 0;
}

static int name_cmp(gguf_str a, gguf_str b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int r = memcmp(a.ptr, b.ptr, n);
    if (r) return r;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int tensor_ptr_cmp(const void *a, const void *b) {
    return name_cmp((*(const gguf_tensor *const *)a)->name, (*(const gguf_tensor *const *)b)->name);
}

static int tensor_off_cmp(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int kv_cmp(const void *a, const void *b) {
    return name_cmp((*(const gguf_kv *const *)a)->key, (*(const gguf_kv *const *)b)->key);
}

static int read_kvs(gguf *g, cursor *c) {
    g->kvs = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kvs);
    if (!g->kvs) return err_set("%s: out of memory", g->path);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kvs[i];
        uint32_t t;
        char key[128];
        if (cur_str(c, &kv->key, "metadata key")) return -1;
        if (kv->key.len == 0 || kv->key.len > MAX_NAME_LEN)
            return err_set("%s: metadata key %llu at offset %zu has length %llu", g->path,
                           (unsigned long long)i, c->off, (unsigned long long)kv->key.len);
        snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 100 ? kv->key.len : 100), kv->key.ptr);
        if (cur_u32(c, &t, key)) return -1;
        if (t >= GGUF_VTYPE_COUNT)
            return err_set("%s: key '%s' at offset %zu: unknown value type %u", g->path, key,
                           c->off - 4, t);
        if (read_value(c, (enum gguf_vtype)t, &kv->val, 0, key)) return -1;
    }
    /* Duplicate keys make lookups ambiguous: reject them. */
    const gguf_kv **idx = malloc((g->n_kv ? g->n_kv : 1) * sizeof *idx);
    if (!idx) return err_set("%s: out of memory", g->path);
    for (uint64_t i = 0; i < g->n_kv; i++) idx[i] = &g->kvs[i];
    qsort(idx, g->n_kv, sizeof *idx, kv_cmp);
    for (uint64_t i = 1; i < g->n_kv; i++) {
        if (name_cmp(idx[i - 1]->key, idx[i]->key) == 0) {
            err_set("%s: duplicate metadata key '%.*s'", g->path, (int)idx[i]->key.len,
                    idx[i]->key.ptr);
            free(idx);
            return -1;
        }
    }
    free(idx);
    return 0;
}

static int read_alignment(gguf *g) {
    const gguf_value *v = gguf_find(g, "general.alignment");
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (!v) return 0;
    if (v->type != GGUF_UINT32)
        return err_set("%s: general.alignment has type %s, expected uint32", g->path,
                       gguf_vtype_name(v->type));
    if (v->v.u == 0 || (v->v.u & (v->v.u - 1)) || v->v.u > MAX_ALIGNMENT)
        return err_set("%s: general.alignment %llu is not a power of two in [1, %u]", g->path,
                       (unsigned long long)v->v.u, MAX_ALIGNMENT);
    g->alignment = (uint32_t)v->v.u;
    return 0;
}

static int read_tensor_info(gguf *g, cursor *c, uint64_t i) {
    gguf_tensor *t = &g->tensors[i];
    char name[96];
    if (cur_str(c, &t->name, "tensor name")) return -1;
    if (t->name.len == 0 || t->name.len > MAX_NAME_LEN)
        return err_set("%s: tensor %llu has a name of length %llu", g->path,
                       (unsigned long long)i, (unsigned long long)t->name.len);
    snprintf(name, sizeof name, "%.*s", (int)(t->name.len < 80 ? t->name.len : 80), t->name.ptr);
    if (cur_u32(c, &t->n_dims, name)) return -1;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return err_set("%s: tensor '%s': %u dimensions (1..%d allowed)", g->path, name, t->n_dims,
                       GGUF_MAX_DIMS);
    uint64_t count = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d < t->n_dims && cur_u64(c, &t->ne[d], name)) return -1;
        /* 2^48 elements per dim and 2^56 in all is far beyond any model, and keeps every
         * product below in 64 bits. */
        if (t->ne[d] == 0 || t->ne[d] > (1ull << 48) || count > (1ull << 56) / t->ne[d])
            return err_set("%s: tensor '%s': dimension %u has absurd size %llu", g->path, name, d,
                           (unsigned long long)t->ne[d]);
        count *= t->ne[d];
    }
    if (cur_u32(c, &t->type, name) || cur_u64(c, &t->offset, name)) return -1;
    const qtype_info *qi = qtype_get(t->type);
    if (!qi) return err_set("%s: tensor '%s': unknown tensor type %u", g->path, name, t->type);
    if (t->ne[0] % qi->block_size)
        return err_set("%s: tensor '%s': row length %llu is not a multiple of %s's block size %u",
                       g->path, name, (unsigned long long)t->ne[0], qi->name, qi->block_size);
    t->nbytes = count / qi->block_size * qi->type_size;
    return 0;
}

static int check_tensor_data(gguf *g, size_t data_start) {
    uint64_t avail = g->size - data_start;
    const gguf_tensor **idx = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *idx);
    if (!idx) return err_set("%s: out of memory", g->path);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment) {
            err_set("%s: tensor '%.*s': data offset %llu is not a multiple of the alignment %u",
                    g->path, (int)t->name.len, t->name.ptr, (unsigned long long)t->offset,
                    g->alignment);
            goto fail;
        }
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            err_set("%s: tensor '%.*s': data [%llu, +%llu) lies outside the file's %llu data "
                    "bytes (truncated file?)", g->path, (int)t->name.len, t->name.ptr,
                    (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                    (unsigned long long)avail);
            goto fail;
        }
        t->data = g->data + data_start + t->offset;
        idx[i] = t;
    }
    qsort(idx, g->n_tensors, sizeof *idx, tensor_off_cmp);
    for (uint64_t i = 1; i < g->n_tensors; i++) {
        if (idx[i - 1]->offset + idx[i - 1]->nbytes > idx[i]->offset) {
            err_set("%s: tensors '%.*s' and '%.*s' overlap", g->path, (int)idx[i - 1]->name.len,
                    idx[i - 1]->name.ptr, (int)idx[i]->name.len, idx[i]->name.ptr);
            goto fail;
        }
    }
    free(idx);
    return 0;
fail:
    free(idx);
    return -1;
}

static int parse(gguf *g) {
    cursor c = {g->data, 0, g->size, g->path};
    uint32_t magic;
    if (g->size < 4 || (memcpy(&magic, g->data, 4), magic != GGUF_MAGIC))
        return err_set("%s: not a GGUF file (bad magic)", g->path);
    c.off = 4;
    if (cur_u32(&c, &g->version, "version")) return -1;
    if (g->version != 2 && g->version != 3)
        return err_set("%s: unsupported GGUF version %u (veil reads 2 and 3%s)", g->path,
                       g->version, g->version > 0xffff ? "; big-endian file?" : "");
    if (cur_u64(&c, &g->n_tensors, "tensor count") || cur_u64(&c, &g->n_kv, "metadata count"))
        return -1;
    /* Each KV takes at least 8 (key length) + 1 + 4 (type) + 1 bytes, each tensor info at
     * least 8 + 1 + 4 + 8 + 4 + 8. Larger counts cannot be genuine. */
    if (g->n_kv > (g->size - c.off) / 14)
        return err_set("%s: absurd metadata count %llu for a %zu-byte file", g->path,
                       (unsigned long long)g->n_kv, g->size);
    if (g->n_tensors > (g->size - c.off) / 33)
        return err_set("%s: absurd tensor count %llu for a %zu-byte file", g->path,
                       (unsigned long long)g->n_tensors, g->size);
    if (read_kvs(g, &c) || read_alignment(g)) return -1;

    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    g->by_name = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *g->by_name);
    if (!g->tensors || !g->by_name) return err_set("%s: out of memory", g->path);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if (read_tensor_info(g, &c, i)) return -1;
        g->by_name[i] = &g->tensors[i];
    }
    qsort(g->by_name, g->n_tensors, sizeof *g->by_name, tensor_ptr_cmp);
    for (uint64_t i = 1; i < g->n_tensors; i++)
        if (name_cmp(g->by_name[i - 1]->name, g->by_name[i]->name) == 0)
            return err_set("%s: duplicate tensor name '%.*s'", g->path,
                           (int)g->by_name[i]->name.len, g->by_name[i]->name.ptr);

    size_t data_start = c.off;
    if (g->n_tensors) {
        size_t pad = (g->alignment - data_start % g->alignment) % g->alignment;
        if (pad > g->size - data_start)
            return err_set("%s: truncated file: data section would start at %zu, file has %zu "
                           "bytes", g->path, data_start + pad, g->size);
        data_start += pad;
    }
    return check_tensor_data(g, data_start);
}

static gguf *open_common(gguf *g, const char *name) {
    g->path = strdup(name);
    if (!g->path) {
        err_set("out of memory");
        gguf_close(g);
        return NULL;
    }
    if (parse(g)) {
        gguf_close(g);
        return NULL;
    }
    return g;
}

gguf *gguf_open(const char *path) {
    gguf *g = calloc(1, sizeof *g);
    if (!g) {
        err_set("out of memory");
        return NULL;
    }
    if (mapfile_open(&g->map, path)) {
        free(g);
        return NULL;
    }
    g->data = g->map.data;
    g->size = g->map.size;
    return open_common(g, path);
}

gguf *gguf_open_buffer(const void *data, size_t size, const char *name) {
    gguf *g = calloc(1, sizeof *g);
    if (!g) {
        err_set("out of memory");
        return NULL;
    }
    g->data = data;
    g->size = size;
    return open_common(g, name ? name : "(buffer)");
}

void gguf_close(gguf *g) {
    if (!g) return;
    if (g->kvs)
        for (uint64_t i = 0; i < g->n_kv; i++) free_value(&g->kvs[i].val);
    free(g->kvs);
    free(g->tensors);
    free(g->by_name);
    free(g->path);
    mapfile_close(&g->map);
    free(g);
}

const char *gguf_path(const gguf *g) { return g->path; }
uint32_t gguf_version(const gguf *g) { return g->version; }
uint32_t gguf_alignment(const gguf *g) { return g->alignment; }
size_t gguf_file_size(const gguf *g) { return g->size; }
size_t gguf_n_kv(const gguf *g) { return (size_t)g->n_kv; }
const gguf_kv *gguf_kv_at(const gguf *g, size_t i) { return i < g->n_kv ? &g->kvs[i] : NULL; }
size_t gguf_n_tensors(const gguf *g) { return (size_t)g->n_tensors; }
const gguf_tensor *gguf_tensor_at(const gguf *g, size_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

bool gguf_str_eq(gguf_str a, const char *s) {
    size_t n = strlen(s);
    return a.len == n && memcmp(a.ptr, s, n) == 0;
}

char *gguf_str_dup(gguf_str s) {
    char *r = malloc(s.len + 1);
    if (!r) return NULL;
    memcpy(r, s.ptr, s.len);
    r[s.len] = 0;
    return r;
}

const gguf_value *gguf_find(const gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (gguf_str_eq(g->kvs[i].key, key)) return &g->kvs[i].val;
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf *g, const char *name) {
    gguf_str key = {name, strlen(name)};
    size_t lo = 0, hi = (size_t)g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = name_cmp(g->by_name[mid]->name, key);
        if (r == 0) return g->by_name[mid];
        if (r < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

static bool is_uint(enum gguf_vtype t) {
    return t == GGUF_UINT8 || t == GGUF_UINT16 || t == GGUF_UINT32 || t == GGUF_UINT64;
}
static bool is_sint(enum gguf_vtype t) {
    return t == GGUF_INT8 || t == GGUF_INT16 || t == GGUF_INT32 || t == GGUF_INT64;
}

static int wrong_type(const gguf *g, const char *key, const gguf_value *v, const char *want) {
    return err_set("%s: key '%s' has type %s, expected %s", g->path, key, gguf_vtype_name(v->type),
                   want);
}

int gguf_get_u64(const gguf *g, const char *key, uint64_t *out) {
    const gguf_value *v = gguf_find(g, key);
    if (!v) return 0;
    if (is_uint(v->type)) *out = v->v.u;
    else if (is_sint(v->type) && v->v.i >= 0) *out = (uint64_t)v->v.i;
    else if (is_sint(v->type)) return err_set("%s: key '%s' is negative", g->path, key);
    else return wrong_type(g, key, v, "an unsigned integer");
    return 1;
}

int gguf_get_u32(const gguf *g, const char *key, uint32_t *out) {
    uint64_t x;
    int r = gguf_get_u64(g, key, &x);
    if (r <= 0) return r;
    if (x > UINT32_MAX)
        return err_set("%s: key '%s' value %llu does not fit 32 bits", g->path, key,
                       (unsigned long long)x);
    *out = (uint32_t)x;
    return 1;
}

int gguf_get_i64(const gguf *g, const char *key, int64_t *out) {
    const gguf_value *v = gguf_find(g, key);
    if (!v) return 0;
    if (is_sint(v->type)) *out = v->v.i;
    else if (is_uint(v->type) && v->v.u <= INT64_MAX) *out = (int64_t)v->v.u;
    else if (is_uint(v->type)) return err_set("%s: key '%s' is too large", g->path, key);
    else return wrong_type(g, key, v, "an integer");
    return 1;
}

int gguf_get_f32(const gguf *g, const char *key, float *out) {
    const gguf_value *v = gguf_find(g, key);
    if (!v) return 0;
    if (v->type != GGUF_FLOAT32 && v->type != GGUF_FLOAT64) return wrong_type(g, key, v, "a float");
    *out = (float)v->v.f;
    return 1;
}

int gguf_get_bool(const gguf *g, const char *key, bool *out) {
    const gguf_value *v = gguf_find(g, key);
    if (!v) return 0;
    if (v->type != GGUF_BOOL) return wrong_type(g, key, v, "bool");
    *out = v->v.b;
    return 1;
}

int gguf_get_str(const gguf *g, const char *key, gguf_str *out) {
    const gguf_value *v = gguf_find(g, key);
    if (!v) return 0;
    if (v->type != GGUF_STRING) return wrong_type(g, key, v, "string");
    *out = v->v.s;
    return 1;
}

int gguf_get_arr(const gguf *g, const char *key, enum gguf_vtype elem, const gguf_value **out) {
    const gguf_value *v = gguf_find(g, key);
    if (!v) return 0;
    if (v->type != GGUF_ARRAY) return wrong_type(g, key, v, "array");
    if (elem != GGUF_ARRAY && v->v.arr.elem != elem)
        return err_set("%s: key '%s' is an array of %s, expected %s", g->path, key,
                       gguf_vtype_name(v->v.arr.elem), gguf_vtype_name(elem));
    *out = v;
    return 1;
}

int64_t gguf_arr_int(const gguf_value *arr, uint64_t i) {
    gguf_value x;
    size_t es = gguf_vtype_size(arr->v.arr.elem);
    decode_scalar(arr->v.arr.elem, arr->v.arr.raw + i * es, &x);
    if (is_uint(x.type)) return (int64_t)x.v.u;
    if (x.type == GGUF_BOOL) return x.v.b;
    if (x.type == GGUF_FLOAT32 || x.type == GGUF_FLOAT64) return (int64_t)x.v.f;
    return x.v.i;
}

double gguf_arr_float(const gguf_value *arr, uint64_t i) {
    gguf_value x;
    size_t es = gguf_vtype_size(arr->v.arr.elem);
    decode_scalar(arr->v.arr.elem, arr->v.arr.raw + i * es, &x);
    if (x.type == GGUF_FLOAT32 || x.type == GGUF_FLOAT64) return x.v.f;
    if (is_uint(x.type)) return (double)x.v.u;
    if (x.type == GGUF_BOOL) return x.v.b;
    return (double)x.v.i;
}
