/* GGUF reader and writer: round trips, real files, and a catalogue of corrupted files that
 * must each be rejected with a message (never a crash; the ASan run checks the "never"). */
#include "test.h"

#include "base/err.h"
#include "model/gguf.h"

#include <stdlib.h>

/* A small valid file with every value type, a nested array and two tensors. */
static unsigned char *make_fixture(size_t *size) {
    gguf_writer *w = gguf_writer_new();
    static float t0[64];
    static uint16_t t1[32 * 2];
    int32_t ints[3] = {-1, 0, 7};
    const char *strs[2] = {"alpha", ""};
    unsigned char *out = NULL;
    for (int i = 0; i < 64; i++) t0[i] = (float)i * 0.5f;
    for (int i = 0; i < 64; i++) t1[i] = (uint16_t)(0x3c00 + i);
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "test.u32", 123456);
    gguf_writer_set_i32(w, "test.i32", -5);
    gguf_writer_set_u64(w, "test.u64", 1ull << 40);
    gguf_writer_set_f32(w, "test.f32", 1.5f);
    gguf_writer_set_bool(w, "test.bool", true);
    gguf_writer_set_arr(w, "test.ints", GGUF_INT32, ints, 3);
    gguf_writer_set_str_arr(w, "test.strs", strs, 2);
    uint64_t ne0[2] = {8, 8}, ne1[2] = {32, 2};
    CHECK(gguf_writer_add_tensor(w, "t.two", QT_F32, 2, ne0, t0) == 0);
    CHECK(gguf_writer_add_tensor(w, "t.one", QT_F16, 2, ne1, t1) == 0);
    CHECK(gguf_writer_add_tensor(w, "t.two", QT_F32, 2, ne0, t0) == -1); /* duplicate */
    CHECK(gguf_writer_write_buffer(w, &out, size) == 0);
    gguf_writer_free(w);
    return out;
}

TEST(gguf_roundtrip) {
    size_t size;
    unsigned char *buf = make_fixture(&size);
    gguf *g = gguf_open_buffer(buf, size, "fixture");
    CHECK_MSG(g != NULL, "open: %s", err_msg());
    if (!g) goto out;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    float f;
    bool b;
    gguf_str s;
    const gguf_value *arr;
    CHECK_EQ_INT(gguf_version(g), 3);
    CHECK_EQ_INT(gguf_n_kv(g), 8);
    CHECK(gguf_get_u32(g, "test.u32", &u32) == 1 && u32 == 123456);
    CHECK(gguf_get_i64(g, "test.i32", &i64) == 1 && i64 == -5);
    CHECK(gguf_get_u32(g, "test.i32", &u32) == -1); /* negative into unsigned */
    CHECK(gguf_get_u64(g, "test.u64", &u64) == 1 && u64 == 1ull << 40);
    CHECK(gguf_get_u32(g, "test.u64", &u32) == -1); /* does not fit */
    CHECK(gguf_get_f32(g, "test.f32", &f) == 1 && f == 1.5f);
    CHECK(gguf_get_bool(g, "test.bool", &b) == 1 && b);
    CHECK(gguf_get_str(g, "general.architecture", &s) == 1 && gguf_str_eq(s, "llama"));
    CHECK(gguf_get_str(g, "test.u32", &s) == -1);
    CHECK(gguf_get_u32(g, "absent", &u32) == 0);
    CHECK(gguf_get_arr(g, "test.ints", GGUF_INT32, &arr) == 1 && arr->v.arr.n == 3 &&
          gguf_arr_int(arr, 0) == -1 && gguf_arr_int(arr, 2) == 7);
    CHECK(gguf_get_arr(g, "test.strs", GGUF_STRING, &arr) == 1 && arr->v.arr.n == 2 &&
          gguf_str_eq(arr->v.arr.items[0].v.s, "alpha") && arr->v.arr.items[1].v.s.len == 0);
    CHECK(gguf_get_arr(g, "test.strs", GGUF_INT32, &arr) == -1);
    CHECK_EQ_INT(gguf_n_tensors(g), 2);
    const gguf_tensor *t = gguf_find_tensor(g, "t.one");
    CHECK(t && t->type == QT_F16 && t->ne[0] == 32 && t->ne[1] == 2 && t->nbytes == 128);
    CHECK(t && ((const uint16_t *)t->data)[5] == 0x3c05);
    CHECK(t && ((uintptr_t)t->data - (uintptr_t)buf) % 32 == 0);
    t = gguf_find_tensor(g, "t.two");
    CHECK(t && ((const float *)t->data)[63] == 31.5f);
    CHECK(gguf_find_tensor(g, "t.six") == NULL);
    gguf_close(g);
out:
    free(buf);
}

TEST(gguf_reads_real_files) {
    NEED_SHARED();
    const char *files[] = {"models/stories260K.gguf", "reference/llamacpp/tiny-qwen3-Q4_K_M.gguf",
                           "reference/tokenizers/ggml-vocab-qwen3.gguf"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        gguf *g = gguf_open(test_shared_path(files[i]));
        CHECK_MSG(g != NULL, "%s: %s", files[i], err_msg());
        gguf_close(g);
    }
    gguf *g = gguf_open(test_shared_path("models/stories260K.gguf"));
    if (!g) return;
    uint32_t n;
    CHECK(gguf_get_u32(g, "llama.block_count", &n) == 1 && n == 5);
    const gguf_tensor *t = gguf_find_tensor(g, "blk.0.ffn_down.weight");
    CHECK(t && t->ne[0] == 172 && t->ne[1] == 64 && t->type == QT_F32);
    gguf_close(g);
}

/* Expects rejection of buf with a message containing `want` (NULL: any message). */
static void expect_reject(const unsigned char *buf, size_t size, const char *want, const char *what) {
    /* a private heap copy so ASan sees any read past the end */
    unsigned char *copy = malloc(size ? size : 1);
    memcpy(copy, buf, size);
    gguf *g = gguf_open_buffer(copy, size, "bad.gguf");
    CHECK_MSG(g == NULL, "%s: accepted a corrupt file", what);
    if (g) gguf_close(g);
    else {
        CHECK_MSG(strstr(err_msg(), "bad.gguf") != NULL, "%s: message lacks the file name: %s", what,
                  err_msg());
        if (want)
            CHECK_MSG(strstr(err_msg(), want) != NULL, "%s: message '%s' lacks '%s'", what,
                      err_msg(), want);
    }
    free(copy);
}

TEST(gguf_rejects_truncation_at_every_offset) {
    size_t size;
    unsigned char *buf = make_fixture(&size);
    for (size_t cut = 0; cut < size; cut++) {
        char what[64];
        snprintf(what, sizeof what, "cut at %zu of %zu", cut, size);
        expect_reject(buf, cut, NULL, what);
    }
    free(buf);
}

static size_t find(const unsigned char *buf, size_t size, const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= size; i++)
        if (memcmp(buf + i, s, n) == 0) return i;
    return (size_t)-1;
}

TEST(gguf_rejects_corruptions) {
    size_t size;
    unsigned char *buf = make_fixture(&size), *m = malloc(size);
    uint64_t huge = 1ull << 60;
    uint32_t u;
#define MUTATE(stmt, want, what)          \
    do {                                  \
        memcpy(m, buf, size);             \
        stmt;                             \
        expect_reject(m, size, want, what); \
    } while (0)
    MUTATE(m[0] = 'X', "bad magic", "bad magic");
    MUTATE((u = 1, memcpy(m + 4, &u, 4)), "unsupported GGUF version 1", "version 1");
    MUTATE((u = 4, memcpy(m + 4, &u, 4)), "unsupported GGUF version 4", "version 4");
    MUTATE((u = 0x03000000, memcpy(m + 4, &u, 4)), "big-endian", "big-endian");
    MUTATE(memcpy(m + 8, &huge, 8), "absurd tensor count", "huge tensor count");
    MUTATE(memcpy(m + 16, &huge, 8), "absurd metadata count", "huge kv count");
    /* the string array's count: 8 bytes after its element type, which follows the key */
    size_t k = find(buf, size, "test.strs");
    MUTATE(memcpy(m + k + 9 + 4 + 4, &huge, 8), "cannot fit", "huge array count");
    MUTATE((u = 99, memcpy(m + k + 9 + 4, &u, 4)), "unknown array element type", "bad elem type");
    MUTATE((u = 77, memcpy(m + k + 9, &u, 4)), "unknown value type", "bad value type");
    /* a key's string length pointing past the end */
    k = find(buf, size, "test.u32");
    MUTATE(memcpy(m + k - 8, &huge, 8), "truncated", "huge key length");
    /* tensor infos: name, n_dims, ne..., type, offset */
    size_t t1 = find(buf, size, "t.one");
    size_t dims = t1 + 5, ne0 = dims + 4, type = ne0 + 16, off = type + 4;
    MUTATE((u = 5, memcpy(m + dims, &u, 4)), "dimensions", "too many dims");
    MUTATE((u = 0, memcpy(m + dims, &u, 4)), "dimensions", "zero dims");
    MUTATE(memset(m + ne0, 0, 8), "absurd size", "zero-size dim");
    MUTATE(memcpy(m + ne0, &huge, 8), "absurd size", "huge dim");
    MUTATE((u = 4, memcpy(m + type, &u, 4)), "unknown tensor type 4", "removed type");
    MUTATE((u = 1000, memcpy(m + type, &u, 4)), "unknown tensor type", "unknown type");
    MUTATE((u = QT_Q4_K, memcpy(m + type, &u, 4)), "block size", "row not a block multiple");
    MUTATE((m[off] = 1), "alignment", "misaligned offset");
    MUTATE((m[off] = 32, m[off + 1] = 0), "overlap", "overlapping tensors");
    MUTATE((m[off + 1] = 0x10), "outside", "offset past the end");
    MUTATE(memcpy(m + t1, "t.two", 5), "duplicate tensor", "duplicate tensor name");
    k = find(buf, size, "test.i32");
    MUTATE(memcpy(m + k, "test.u32", 8), "duplicate metadata key", "duplicate key");
#undef MUTATE
    free(m);
    free(buf);
}

TEST(gguf_rejects_bad_alignment) {
    gguf_writer *w = gguf_writer_new();
    unsigned char *out = NULL;
    size_t size = 0;
    gguf_writer_set_u32(w, "general.alignment", 24);
    CHECK(gguf_writer_write_buffer(w, &out, &size) == 0);
    expect_reject(out, size, "power of two", "alignment 24");
    free(out);
    gguf_writer_free(w);
}

TEST(gguf_nested_arrays_and_alignment) {
    /* hand-built: an array of arrays of uint8, alignment 64 */
    unsigned char buf[256];
    size_t n = 0;
#define PUT(v) do { __typeof__(v) x_ = (v); memcpy(buf + n, &x_, sizeof x_); n += sizeof x_; } while (0)
#define PUTS(s) do { PUT((uint64_t)strlen(s)); memcpy(buf + n, s, strlen(s)); n += strlen(s); } while (0)
    PUT((uint32_t)0x46554747u); PUT((uint32_t)2); PUT((uint64_t)0); PUT((uint64_t)2);
    PUTS("general.alignment"); PUT((uint32_t)GGUF_UINT32); PUT((uint32_t)64);
    PUTS("nested"); PUT((uint32_t)GGUF_ARRAY); PUT((uint32_t)GGUF_ARRAY); PUT((uint64_t)2);
    PUT((uint32_t)GGUF_UINT8); PUT((uint64_t)3); PUT((uint8_t)1); PUT((uint8_t)2); PUT((uint8_t)3);
    PUT((uint32_t)GGUF_UINT8); PUT((uint64_t)0);
#undef PUT
#undef PUTS
    gguf *g = gguf_open_buffer(buf, n, "nested.gguf");
    CHECK_MSG(g != NULL, "%s", err_msg());
    if (!g) return;
    const gguf_value *v;
    CHECK_EQ_INT(gguf_version(g), 2);
    CHECK_EQ_INT(gguf_alignment(g), 64);
    CHECK(gguf_get_arr(g, "nested", GGUF_ARRAY, &v) == 1 && v->v.arr.n == 2);
    if (v && v->v.arr.n == 2) {
        const gguf_value *a = &v->v.arr.items[0];
        CHECK(a->type == GGUF_ARRAY && a->v.arr.n == 3 && gguf_arr_int(a, 2) == 3);
        CHECK(v->v.arr.items[1].v.arr.n == 0);
    }
    gguf_close(g);
}

TEST(gguf_open_missing_file_names_it) {
    gguf *g = gguf_open("/nonexistent/x.gguf");
    CHECK(g == NULL);
    CHECK(strstr(err_msg(), "/nonexistent/x.gguf") != NULL);
}

TEST(gguf_write_file_and_copy_kvs) {
    size_t size;
    unsigned char *buf = make_fixture(&size);
    gguf *src = gguf_open_buffer(buf, size, "fixture");
    char path[512];
    snprintf(path, sizeof path, "%s/copy.gguf", test_tmpdir());
    gguf_writer *w = gguf_writer_new();
    gguf_writer_copy_kvs(w, src);
    CHECK(gguf_writer_write(w, path) == 0);
    gguf_writer_free(w);
    gguf *g = gguf_open(path);
    CHECK_MSG(g != NULL, "%s", err_msg());
    if (g) {
        const gguf_value *arr;
        float f;
        CHECK_EQ_INT(gguf_n_kv(g), gguf_n_kv(src));
        CHECK(gguf_get_f32(g, "test.f32", &f) == 1 && f == 1.5f);
        CHECK(gguf_get_arr(g, "test.strs", GGUF_STRING, &arr) == 1 &&
              gguf_str_eq(arr->v.arr.items[0].v.s, "alpha"));
        gguf_close(g);
    }
    gguf_close(src);
    free(buf);
}

/* Tensors produced by a fill callback at write time: in order, once each, the bytes land in the
 * file; a failing callback aborts the write and leaves no file behind. */
typedef struct fill_state {
    int calls;
    int fail_at; /* call number that fails, or 0 */
} fill_state;

static fill_state fill_st;

static int fill_ramp(void *ud, void *dst, uint64_t nbytes) {
    uintptr_t base = (uintptr_t)ud;
    fill_st.calls++;
    if (fill_st.calls == fill_st.fail_at) return err_set("refused on purpose");
    for (uint64_t i = 0; i < nbytes; i++) ((unsigned char *)dst)[i] = (unsigned char)(base + i);
    return 0;
}

TEST(gguf_writer_fill_callbacks) {
    uint64_t ne_a[1] = {100}, ne_b[2] = {32, 3};
    unsigned char *buf = NULL;
    size_t size = 0;
    char path[512];
    snprintf(path, sizeof path, "%s/fill.gguf", test_tmpdir());
    for (int pass = 0; pass < 3; pass++) {
        gguf_writer *w = gguf_writer_new();
        CHECK(gguf_writer_add_tensor_fill(w, "a", QT_F32, 1, ne_a, fill_ramp, (void *)(uintptr_t)1) == 0);
        CHECK(gguf_writer_add_tensor_fill(w, "b", QT_Q8_0, 2, ne_b, fill_ramp, (void *)(uintptr_t)7) == 0);
        fill_st = (fill_state){0, pass == 2 ? 2 : 0};
        if (pass == 0) {
            CHECK(gguf_writer_write_buffer(w, &buf, &size) == 0);
        } else if (pass == 1) {
            CHECK(gguf_writer_write(w, path) == 0);
        } else {
            remove(path);
            CHECK(gguf_writer_write(w, path) == -1);
            CHECK_MSG(strstr(err_msg(), "'b'") && strstr(err_msg(), "refused on purpose"), "%s", err_msg());
            FILE *f = fopen(path, "rb");
            CHECK(f == NULL);
            if (f) fclose(f);
        }
        CHECK_EQ_INT(fill_st.calls, 2);
        gguf_writer_free(w);
    }
    gguf *g = gguf_open_buffer(buf, size, "fill");
    CHECK_MSG(g != NULL, "%s", err_msg());
    if (g) {
        const gguf_tensor *a = gguf_find_tensor(g, "a"), *b = gguf_find_tensor(g, "b");
        CHECK(a && a->nbytes == 400 && ((const unsigned char *)a->data)[5] == 6);
        CHECK(b && b->nbytes == 3 * 34 && ((const unsigned char *)b->data)[101] == (unsigned char)(7 + 101));
    }
    gguf_close(g);
    free(buf);
}
