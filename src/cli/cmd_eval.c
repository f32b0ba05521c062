/* veil eval MODEL --tokens ID,ID,...: runs the ids as one sequence (one batch) and prints every
 * position's logits, for comparing the engine with other implementations. */
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "engine/device.h"
#include "model/forward.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: veil eval MODEL.gguf --tokens ID,ID,...\n\n"
               "Runs the token ids as one sequence, all in one batch, and prints for each\n"
               "position a line 'pos N: v0 v1 ... v(vocab-1)' with the raw logits (%%.6g).\n"
               "Nothing is added: include BOS yourself if the model wants it.\n\n"
               "  -t, --tokens LIST   comma-separated token ids (required)\n"
               "  -j, --threads N     threads (default: one per CPU)\n"
               "  -d, --device DEV    cpu (default), cuda or cuda:N\n"
               "  -h, --help          show this help\n");
}

/* Parses "1,2,3" strictly into a malloc'd array. */
static int parse_ids(const char *s, int32_t n_vocab, int32_t **out, int32_t *n_out) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *ids = malloc(cap * sizeof *ids);
    int32_t n = 0;
    if (!ids) return err_set("out of memory");
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= n_vocab || (*end && *end != ',')) {
            err_set("--tokens: item %d ('%.*s') is not a token id in [0, %d)", n + 1,
                    (int)strcspn(p, ","), p, n_vocab);
            free(ids);
            return -1;
        }
        ids[n++] = (int32_t)v;
        if (!*end) break;
        p = end + 1;
    }
    *out = ids;
    *n_out = n;
    return 0;
}

int cmd_eval(int argc, char **argv) {
    static const struct option opts[] = {{"tokens", required_argument, 0, 't'},
                                         {"threads", required_argument, 0, 'j'},
                                         {"device", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *tokens = NULL, *dev_spec = NULL;
    int c, rc = 1, n_threads = 0;
    long long v;
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:j:d:h", opts, NULL)) != -1) {
        if (c == 't') tokens = optarg;
        else if (c == 'd') {
            if (!args_device(optarg)) return 2;
            dev_spec = optarg;
        }
        else if (c == 'j') {
            if (!args_long("--threads", optarg, 1, 512, &v)) return 2;
            n_threads = (int)v;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1 || !tokens) {
        usage(stderr);
        return 2;
    }
    model *m = model_load(argv[optind]);
    model_ctx *ctx = NULL;
    device *dev = NULL;
    int32_t *ids = NULL, n = 0;
    float *logits = NULL;
    if (!m) goto fail;
    if (parse_ids(tokens, m->hp.n_vocab, &ids, &n)) goto fail;
    if (!(dev = device_open(dev_spec, m, n_threads))) goto fail;
    ctx = device_ctx_new(dev, n);
    logits = malloc((size_t)n * (size_t)m->hp.n_vocab * sizeof *logits);
    if (!ctx || !logits) {
        if (!logits) err_set("out of memory");
        goto fail;
    }
    if (model_forward(ctx, ids, n, 0, logits, true)) goto fail;
    for (int32_t p = 0; p < n; p++) {
        printf("pos %d:", p);
        const float *row = logits + (size_t)p * m->hp.n_vocab;
        for (int32_t i = 0; i < m->hp.n_vocab; i++) printf(" %.6g", row[i]);
        putchar('\n');
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
    goto out;
fail:
    fprintf(stderr, "veil eval: %s\n", err_msg());
out:
    free(logits);
    free(ids);
    model_ctx_free(ctx);
    device_close(dev);
    model_free(m);
    return rc;
}
