/* GGUF (llama.cpp's model file format, versions 2 and 3): a validating reader over an mmap and
 * a writer.
 *
 * The reader checks everything before anyone touches it: magic, version, every length and
 * count against the file size, value types, tensor types, dimensions, overflow of sizes, that
 * tensor data lies inside the file, is aligned and does not overlap, and that names are unique.
 * Any problem is an error naming the file and the problem (err_msg()); no read ever leaves the
 * mapping. Strings point into the mapping and are NOT NUL-terminated (use len). */
#ifndef VEIL_GGUF_H
#define VEIL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/qtype.h"

enum gguf_vtype {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3,
    GGUF_UINT32 = 4, GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7,
    GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_UINT64 = 10, GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12, GGUF_VTYPE_COUNT
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct gguf_str {
    const char *ptr; /* into the mapping; not NUL-terminated */
    uint64_t len;
} gguf_str;

typedef struct gguf_value gguf_value;
struct gguf_value {
    enum gguf_vtype type;
    union {
        uint64_t u;   /* UINT8..UINT64 */
        int64_t i;    /* INT8..INT64 */
        double f;     /* FLOAT32, FLOAT64 */
        bool b;       /* BOOL */
        gguf_str s;   /* STRING */
        struct {
            enum gguf_vtype elem; /* element type */
            uint64_t n;           /* element count */
            /* Numeric/bool elements: raw little-endian bytes in the mapping (maybe unaligned;
             * read with gguf_arr_*). String and array elements: items[] parsed values. */
            const unsigned char *raw;
            gguf_value *items;
        } arr;
    } v;
};

typedef struct gguf_kv {
    gguf_str key;
    gguf_value val;
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    uint32_t type;              /* enum qtype */
    uint64_t offset;            /* relative to the data section */
    uint64_t nbytes;
    const void *data;           /* into the mapping */
} gguf_tensor;

typedef struct gguf gguf;

/* Opens and validates; NULL with err_msg() on any problem. */
gguf *gguf_open(const char *path);
/* Same over a caller-owned buffer (which must outlive the handle); `name` is for messages.
 * Used by the fuzzer and by tests. */
gguf *gguf_open_buffer(const void *data, size_t size, const char *name);
void gguf_close(gguf *g);

const char *gguf_path(const gguf *g);
uint32_t gguf_version(const gguf *g);
uint32_t gguf_alignment(const gguf *g);
size_t gguf_file_size(const gguf *g);
size_t gguf_n_kv(const gguf *g);
const gguf_kv *gguf_kv_at(const gguf *g, size_t i);
size_t gguf_n_tensors(const gguf *g);
const gguf_tensor *gguf_tensor_at(const gguf *g, size_t i);

const gguf_value *gguf_find(const gguf *g, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf *g, const char *name);

/* Typed getters. Return 1 and set *out when the key exists with a compatible type (any integer
 * type whose value fits; FLOAT32/FLOAT64 for floats), 0 when the key is absent, -1 with
 * err_msg() when it exists with a wrong type or out of range. */
int gguf_get_u32(const gguf *g, const char *key, uint32_t *out);
int gguf_get_u64(const gguf *g, const char *key, uint64_t *out);
int gguf_get_i64(const gguf *g, const char *key, int64_t *out);
int gguf_get_f32(const gguf *g, const char *key, float *out);
int gguf_get_bool(const gguf *g, const char *key, bool *out);
int gguf_get_str(const gguf *g, const char *key, gguf_str *out);
/* An ARRAY of elem type `elem` (GGUF_ARRAY matches any element type). */
int gguf_get_arr(const gguf *g, const char *key, enum gguf_vtype elem, const gguf_value **out);

/* Element i of a numeric array, converted. The caller checks i < n and the element type. */
int64_t gguf_arr_int(const gguf_value *arr, uint64_t i);
double gguf_arr_float(const gguf_value *arr, uint64_t i);
/* True when a gguf_str equals the NUL-terminated s. */
bool gguf_str_eq(gguf_str a, const char *s);
/* Returns a malloc'd NUL-terminated copy (NULL on out of memory). */
char *gguf_str_dup(gguf_str s);
const char *gguf_vtype_name(enum gguf_vtype t);
/* Bytes of one scalar of type t (0 for STRING, ARRAY and unknown types). */
size_t gguf_vtype_size(enum gguf_vtype t);

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
/* Setting a key twice replaces the first value. Strings are copied. */
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Numeric or bool array: n elements of `elem`, raw little-endian bytes copied from data. */
void gguf_writer_set_arr(gguf_writer *w, const char *key, enum gguf_vtype elem, const void *data,
                         uint64_t n);
void gguf_writer_set_str_arr(gguf_writer *w, const char *key, const char *const *strs,
                             uint64_t n);
/* Copies every KV of an open file (except general.alignment), e.g. for quantize. */
void gguf_writer_copy_kvs(gguf_writer *w, const gguf *src);
/* Adds a tensor; `data` (nbytes = row size * rows) is referenced, not copied, and must stay
 * valid until gguf_writer_write() returns. Returns -1 with err_msg() on a bad shape/type. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne, const void *data);
/* Produces a tensor's bytes while the file is being written (nbytes into dst), so a file larger
 * than memory can be generated or converted one tensor at a time. 0, or -1 with err_msg(),
 * which aborts the write. */
typedef int (*gguf_tensor_fill)(void *ud, void *dst, uint64_t nbytes);
/* Like gguf_writer_add_tensor, but the data comes from fill(ud, ...) when the file is written
 * (in the order tensors were added; once per write). */
int gguf_writer_add_tensor_fill(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                const uint64_t *ne, gguf_tensor_fill fill, void *ud);
/* Writes a GGUF v3 file atomically (temp file + rename). 0, or -1 with err_msg(). */
int gguf_writer_write(gguf_writer *w, const char *path);
/* Writes to a malloc'd buffer (*out, *size) for tests and fuzz seeds. */
int gguf_writer_write_buffer(gguf_writer *w, unsigned char **out, size_t *size);

#endif
