/* veil quantize IN.gguf OUT.gguf TYPE: converts a model's weight matrices to another tensor
 * type (logic in model/quantize.c); prints what happened to every kind of tensor. */
#include "base/err.h"
#include "base/clock.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "model/quantize.h"
#include "tensor/qtype.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_GROUPS 8
#define NAMES_SHOWN 6

static void usage(FILE *f) {
    fprintf(f, "usage: veil quantize IN.gguf OUT.gguf TYPE [--threads N]\n\n"
               "Converts every 2-D weight matrix to TYPE (Q8_0, Q4_0, Q4_K, Q6_K, F16 or BF16;\n"
               "any case) and copies everything else: metadata (general.file_type is set to\n"
               "llama.cpp's code for TYPE), norms and biases. For Q4_K and Q6_K a matrix whose\n"
               "rows are not a multiple of 256 long becomes Q8_0. The input may hold any type\n"
               "veil reads. OUT is written atomically.\n\n"
               "  -t, --threads N   threads (default: one per CPU)\n"
               "  -h, --help        show this help\n");
}

/* Tensors that did not get the target type, grouped by reason. */
typedef struct group {
    const char *why;
    uint32_t to;
    bool changed;
    size_t count;
    char names[NAMES_SHOWN][64];
} group;

typedef struct report {
    bool tty;
    size_t converted;
    group groups[MAX_GROUPS];
    int n_groups;
    size_t ungrouped; /* when there are more kinds than MAX_GROUPS */
} report;

static void on_tensor(void *ud, const quantize_tensor *t) {
    report *r = ud;
    if (!t->why) r->converted++;
    else {
        bool changed = t->to != t->from;
        int g = 0;
        while (g < r->n_groups && (r->groups[g].why != t->why || r->groups[g].to != t->to ||
                                   r->groups[g].changed != changed))
            g++;
        if (g == MAX_GROUPS) r->ungrouped++;
        else {
            if (g == r->n_groups) r->groups[r->n_groups++] = (group){t->why, t->to, changed, 0, {{0}}};
            if (r->groups[g].count < NAMES_SHOWN)
                snprintf(r->groups[g].names[r->groups[g].count], 64, "%s", t->name);
            r->groups[g].count++;
        }
    }
    if (r->tty)
        fprintf(stderr, "\r\033[Kquantize: %zu/%zu tensors, %.1f/%.1f MB, %.0f%%", t->done, t->count,
                t->bytes_done / 1e6, t->bytes_total / 1e6,
                t->bytes_total ? 100.0 * (double)t->bytes_done / (double)t->bytes_total : 100.0);
}

static double file_mb(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0;
}

int cmd_quantize(int argc, char **argv) {
    static const struct option opts[] = {{"threads", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    long long threads = 0;
    int c;
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
        if (c == 't') {
            if (!args_long("--threads", optarg, 1, 1024, &threads)) return 2;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 3) {
        usage(stderr);
        return 2;
    }
    const char *in = argv[optind], *out = argv[optind + 1], *type_name = argv[optind + 2];
    int type = qtype_from_name(type_name);
    if (type < 0 || quantize_ftype((uint32_t)type) < 0) {
        fprintf(stderr, "veil quantize: TYPE must be Q8_0, Q4_0, Q4_K, Q6_K, F16 or BF16, got '%s'\n",
                type_name);
        return 2;
    }
    report r = {.tty = isatty(STDERR_FILENO)};
    quantize_params p = {(uint32_t)type, (int)threads, on_tensor, &r};
    double t0 = clock_now();
    int rc = quantize_file(in, out, &p);
    if (r.tty) fputc('\n', stderr);
    if (rc) {
        fprintf(stderr, "veil quantize: %s\n", err_msg());
        return 1;
    }
    const char *tn = qtype_get((uint32_t)type)->name;
    printf("%s (%.1f MB) -> %s (%.1f MB) in %.1f s\n", in, file_mb(in), out, file_mb(out), clock_now() - t0);
    printf("  %zu tensors converted to %s\n", r.converted, tn);
    for (int g = 0; g < r.n_groups; g++) {
        const group *gr = &r.groups[g];
        printf("  %zu tensors %s %s (%s):", gr->count, gr->changed ? "became" : "kept as",
               qtype_get(gr->to) ? qtype_get(gr->to)->name : "?", gr->why);
        for (size_t i = 0; i < gr->count && i < NAMES_SHOWN; i++) printf(" %s", gr->names[i]);
        printf(gr->count > NAMES_SHOWN ? " ...\n" : "\n");
    }
    if (r.ungrouped) printf("  %zu more tensors did not become %s\n", r.ungrouped, tn);
    return fflush(stdout) == 0 ? 0 : 1;
}
