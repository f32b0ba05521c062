/* veil info MODEL: a GGUF file's header, metadata and tensor table, for humans. */
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "model/gguf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define ARRAY_PREVIEW 8
#define STRING_PREVIEW 120

static void print_str(gguf_str s) {
    putchar('"');
    for (uint64_t i = 0; i < s.len && i < STRING_PREVIEW; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch == '\n') printf("\\n");
        else if (ch < 0x20 || ch == 0x7f) printf("\\x%02x", ch);
        else putchar(ch);
    }
    printf(s.len > STRING_PREVIEW ? "\"... (%" PRIu64 " bytes)" : "\"", s.len);
}

static void print_value(const gguf_value *v) {
    switch (v->type) {
    case GGUF_UINT8: case GGUF_UINT16: case GGUF_UINT32: case GGUF_UINT64:
        printf("%" PRIu64, v->v.u);
        break;
    case GGUF_INT8: case GGUF_INT16: case GGUF_INT32: case GGUF_INT64:
        printf("%" PRId64, v->v.i);
        break;
    case GGUF_FLOAT32: case GGUF_FLOAT64: printf("%g", v->v.f); break;
    case GGUF_BOOL: printf(v->v.b ? "true" : "false"); break;
    case GGUF_STRING: print_str(v->v.s); break;
    case GGUF_ARRAY: {
        uint64_t n = v->v.arr.n;
        printf("[");
        for (uint64_t i = 0; i < n && i < ARRAY_PREVIEW; i++) {
            if (i) printf(", ");
            if (v->v.arr.items) print_value(&v->v.arr.items[i]);
            else if (v->v.arr.elem == GGUF_FLOAT32 || v->v.arr.elem == GGUF_FLOAT64)
                printf("%g", gguf_arr_float(v, i));
            else printf("%" PRId64, gguf_arr_int(v, i));
        }
        printf(n > ARRAY_PREVIEW ? ", ... (%" PRIu64 " items)]" : "]", n);
        break;
    }
    default: printf("?");
    }
}

static void usage(FILE *f) {
    fprintf(f, "usage: veil info MODEL.gguf\n\n"
               "Prints the GGUF header (version, alignment, size), every metadata key with its\n"
               "type and value (long arrays and strings abbreviated), and the tensor table\n"
               "(name, type, shape, data offset, bytes).\n\n"
               "  -h, --help   show this help\n");
}

int cmd_info(int argc, char **argv) {
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "veil info: unknown flag '%s' (see veil info --help)\n", argv[i]);
            return 2;
        }
    if (argc != 2) {
        usage(stderr);
        return 2;
    }
    gguf *g = gguf_open(argv[1]);
    if (!g) {
        fprintf(stderr, "veil info: %s\n", err_msg());
        return 1;
    }
    printf("file: %s\nversion: %u\nalignment: %u\nsize: %zu bytes\nmetadata: %zu keys\n",
           argv[1], gguf_version(g), gguf_alignment(g), gguf_file_size(g), gguf_n_kv(g));
    for (size_t i = 0; i < gguf_n_kv(g); i++) {
        const gguf_kv *kv = gguf_kv_at(g, i);
        const char *t = gguf_vtype_name(kv->val.type);
        printf("  %-44.*s %-8s ", (int)kv->key.len, kv->key.ptr,
               kv->val.type == GGUF_ARRAY ? gguf_vtype_name(kv->val.v.arr.elem) : t);
        print_value(&kv->val);
        putchar('\n');
    }
    uint64_t total = 0, params = 0;
    printf("tensors: %zu\n  %-36s %-6s %-26s %12s %12s\n", gguf_n_tensors(g), "name", "type",
           "shape", "offset", "bytes");
    for (size_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        char shape[64];
        int n = snprintf(shape, sizeof shape, "[");
        uint64_t count = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            n += snprintf(shape + n, sizeof shape - (size_t)n, d ? ", %" PRIu64 : "%" PRIu64, t->ne[d]);
            count *= t->ne[d];
        }
        snprintf(shape + n, sizeof shape - (size_t)n, "]");
        printf("  %-36.*s %-6s %-26s %12" PRIu64 " %12" PRIu64 "\n", (int)t->name.len, t->name.ptr,
               qtype_get(t->type)->name, shape, t->offset, t->nbytes);
        total += t->nbytes;
        params += count;
    }
    printf("total: %" PRIu64 " parameters, %" PRIu64 " bytes of tensor data\n", params, total);
    gguf_close(g);
    return 0;
}
