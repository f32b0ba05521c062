/* veil bench: engine speed on this machine (logic in engine/bench.c), the machine's memory
 * bandwidth, and random-weight models of real shapes to measure with (model/randmodel.c). */
#include "base/err.h"
#include "base/clock.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "engine/bench.h"
#include "engine/device.h"
#include "model/randmodel.h"
#include "tensor/membw.h"
#include "tensor/qtype.h"
#include "tensor/threadpool.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: veil bench MODEL.gguf [--threads N] [--batch B] [--pp N] [--tg N] [--reps R]\n"
            "                  [--kv-type f32|f16] [--pp-batch N] [--membw GBS] [--json] [--profile]\n"
            "                  [--device DEV]\n"
            "       veil bench --membw [--threads N] [--buffer MIB] [--json]\n"
            "       veil bench --make-model SHAPE TYPE OUT.gguf [--threads N] [--seed S]\n\n"
            "Measures prompt processing (one prompt of --pp tokens, default 128, in batches of\n"
            "--pp-batch tokens, default %d on the CPU and 512 on a GPU),\n"
            "decode (--tg tokens one at a time, default 64) and batched decode (--batch sequences,\n"
            "default 4, each advancing one token per step) in tokens/s, best of --reps runs\n"
            "(default 3), with random token ids. Also prints the weight bytes each token reads,\n"
            "the bandwidth that decode speed implies, its fraction of the machine's read\n"
            "bandwidth (measured after the model runs, or --membw GBS) and the peak RSS.\n\n"
            "  -t, --threads N   threads (default: one per CPU)\n"
            "      --device DEV  cpu (default), cuda or cuda:N; on a GPU the bandwidth is the\n"
            "                    GPU's copy bandwidth (bytes read + written per second)\n"
            "      --membw [GBS] alone: measure read bandwidth (%d MiB buffer, best of %d passes)\n"
            "                    with a model: use GBS instead of measuring\n"
            "      --buffer MIB  with --membw alone: the buffer's size instead (a buffer the\n"
            "                    caches can hold shows what they add)\n"
            "      --json        one JSON object instead of text\n"
            "      --profile     time per operation for pp, tg and batched decode\n"
            "      --kv-type T   KV cache elements: f32 (default) or f16\n"
            "      --make-model  write a random-weight model (gaussian, std 0.02) of a named shape\n"
            "                    with matrices in TYPE (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)\n"
            "      --seed S      its random seed (default 1)\n"
            "  -h, --help        show this help\n\nshapes:\n",
            BENCH_PP_BATCH, (int)(BENCH_MEMBW_BYTES >> 20), BENCH_MEMBW_PASSES);
    size_t n;
    const randmodel_shape *s = randmodel_shapes(&n);
    for (size_t i = 0; i < n; i++)
        if (!s[i].hidden)
            fprintf(f, "  %-16s %s, dim %d, %d layers, %d/%d heads, head %d, ffn %d, vocab %d%s\n",
                    s[i].name, s[i].arch, s[i].n_embd, s[i].n_layer, s[i].n_head, s[i].n_head_kv,
                    s[i].head_dim, s[i].n_ff, s[i].n_vocab, s[i].tied ? ", tied embeddings" : "");
}

typedef struct opts {
    long long threads, batch, pp, tg, reps, pp_batch, buffer_mib;
    unsigned long long seed;
    double membw;      /* given GB/s; 0 = measure */
    bool membw_flag, json, profile, make_model;
    model_kv_type kv_type;
    const char *device;
    const char *pos[4];
    int n_pos;
} opts;

/* The value of a flag: "--flag=v" or the next argument. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag) {
    const char *eq = strchr(argv[*i], '=');
    if (eq) return eq + 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "veil bench: %s needs a value\n", flag);
        return NULL;
    }
    return argv[++*i];
}

static bool is_number(const char *s) {
    char *end;
    strtod(s, &end);
    return *s && !*end;
}

/* 0 ok, 2 usage error. */
static int parse(int argc, char **argv, opts *o) {
    static const struct { const char *name; long long lo, hi; size_t off; } nums[] = {
        {"--threads", 1, 1024, offsetof(opts, threads)}, {"--batch", 1, 4096, offsetof(opts, batch)},
        {"--pp", 1, 1 << 20, offsetof(opts, pp)},         {"--tg", 1, 1 << 20, offsetof(opts, tg)},
        {"--reps", 1, 1000, offsetof(opts, reps)},        {"--pp-batch", 1, 1 << 16, offsetof(opts, pp_batch)},
        {"--buffer", 1, 1 << 20, offsetof(opts, buffer_mib)},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        size_t len = strcspn(a, "=");
        bool done = false;
        for (size_t k = 0; k < sizeof nums / sizeof nums[0] && !done; k++) {
            if (!(strlen(nums[k].name) == len && strncmp(a, nums[k].name, len) == 0) &&
                !(k == 0 && strcmp(a, "-t") == 0))
                continue;
            const char *v = flag_value(argc, argv, &i, nums[k].name);
            if (!v || !args_long(nums[k].name, v, nums[k].lo, nums[k].hi,
                                 (long long *)((char *)o + nums[k].off)))
                return 2;
            done = true;
        }
        if (done) continue;
        if (strncmp(a, "--membw", len) == 0 && len == 7) {
            o->membw_flag = true;
            const char *v = a[len] == '=' ? a + len + 1 : i + 1 < argc && is_number(argv[i + 1]) ? argv[++i] : NULL;
            float gbs;
            if (v) {
                if (!args_float("--membw", v, 1e-3, 1e6, &gbs)) return 2;
                o->membw = gbs;
            }
        } else if (strncmp(a, "--seed", len) == 0 && len == 6) {
            const char *v = flag_value(argc, argv, &i, "--seed");
            uint64_t seed;
            if (!v || !args_u64("--seed", v, &seed)) return 2;
            o->seed = seed;
        } else if (strncmp(a, "--kv-type", len) == 0 && len == 9) {
            const char *v = flag_value(argc, argv, &i, "--kv-type");
            if (!v) return 2;
            if (model_kv_type_parse(v, &o->kv_type)) {
                fprintf(stderr, "veil bench: --kv-type: %s\n", err_msg());
                return 2;
            }
        } else if (strncmp(a, "--device", len) == 0 && len == 8) {
            const char *v = flag_value(argc, argv, &i, "--device");
            if (!v) return 2;
            if (!args_device(v)) return 2;
            o->device = v;
        } else if (strcmp(a, "--json") == 0) o->json = true;
        else if (strcmp(a, "--profile") == 0) o->profile = true;
        else if (strcmp(a, "--make-model") == 0) o->make_model = true;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "veil bench: unknown option '%s'\n", a);
            return 2;
        } else if (o->n_pos < 4) o->pos[o->n_pos++] = a;
        else return 2;
    }
    return 0;
}

static void on_tensor(void *ud, const quantize_tensor *t) {
    (void)ud;
    fprintf(stderr, "\r\033[Kmake model: %zu/%zu tensors, %.1f/%.1f MB, %.0f%%", t->done, t->count,
            t->bytes_done / 1e6, t->bytes_total / 1e6,
            t->bytes_total ? 100.0 * (double)t->bytes_done / (double)t->bytes_total : 100.0);
}

static int make_model(const opts *o) {
    const randmodel_shape *s = randmodel_find(o->pos[0]);
    int type = qtype_from_name(o->pos[1]);
    if (!s) {
        fprintf(stderr, "veil bench: unknown shape '%s' (see veil bench --help)\n", o->pos[0]);
        return 2;
    }
    if (type < 0 || (type != QT_F32 && quantize_ftype((uint32_t)type) < 0)) {
        fprintf(stderr, "veil bench: TYPE must be F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K, got '%s'\n",
                o->pos[1]);
        return 2;
    }
    bool tty = isatty(STDERR_FILENO);
    double t0 = clock_now();
    int rc = randmodel_write(s, (uint32_t)type, o->pos[2], (int)o->threads, o->seed,
                             tty ? on_tensor : NULL, NULL);
    if (tty) fputc('\n', stderr);
    if (rc) {
        fprintf(stderr, "veil bench: %s\n", err_msg());
        return 1;
    }
    printf("wrote %s (%s, %s) in %.1f s\n", o->pos[2], s->name, qtype_get((uint32_t)type)->name,
           clock_now() - t0);
    return 0;
}

static int measure_membw(const opts *o) {
    if (o->device && strcmp(o->device, "cpu") != 0) {
        double gbs = device_copy_bandwidth(o->device);
        if (gbs < 0) {
            fprintf(stderr, "veil bench: %s\n", err_msg());
            return 1;
        }
        if (o->json) printf("{\"copy_gbs\":%.6g,\"device\":\"%s\"}\n", gbs, o->device);
        else printf("copy %.2f GB/s (%s, device to device, bytes read + written)\n", gbs, o->device);
        return 0;
    }
    int threads = o->threads > 0 ? (int)o->threads : tpool_cpu_count();
    const size_t bytes = o->buffer_mib > 0 ? (size_t)o->buffer_mib << 20 : BENCH_MEMBW_BYTES;
    double gbs = membw_read(threads, bytes, BENCH_MEMBW_PASSES);
    if (gbs < 0) {
        fprintf(stderr, "veil bench: %s\n", err_msg());
        return 1;
    }
    if (o->json)
        printf("{\"membw_gbs\":%.6g,\"threads\":%d,\"buffer_bytes\":%zu}\n", gbs, threads, bytes);
    else
        printf("membw %.2f GB/s (read, %d threads, %zu MiB buffer, best of %d passes)\n", gbs, threads,
               bytes >> 20, BENCH_MEMBW_PASSES);
    return 0;
}

static void on_progress(void *ud, const char *phase, int run, int reps) {
    (void)ud;
    fprintf(stderr, "\r\033[Kbench: %s run %d/%d", phase, run, reps);
}

static int bench_file(const opts *o) {
    bench_params p;
    bench_result res;
    bench_params_default(&p);
    p.n_threads = o->threads > 0 ? (int)o->threads : tpool_cpu_count();
    if (o->batch) p.batch = (int32_t)o->batch;
    if (o->pp) p.n_pp = (int32_t)o->pp;
    if (o->tg) p.n_tg = (int32_t)o->tg;
    if (o->reps) p.reps = (int32_t)o->reps;
    if (o->pp_batch) p.pp_batch = (int32_t)o->pp_batch;
    p.profile = o->profile;
    p.kv_type = o->kv_type;
    bool tty = isatty(STDERR_FILENO);
    if (tty) p.progress = on_progress;
    device *dev = NULL;
    model *m = model_load(o->pos[0]);
    if (!m || !(dev = device_open(o->device, m, p.n_threads))) goto fail;
    p.device = dev;
    int rc = bench_model(m, &p, &res);
    if (tty) fputs("\r\033[K", stderr);
    if (rc) goto fail;
    /* Peak RSS before the bandwidth buffer exists, which would dominate it. */
    bench_report r = {o->pos[0], m->name, bench_weight_type(m), gguf_file_size(m->file), &m->hp, &p,
                      p.n_threads, &res, o->membw, false, bench_peak_rss()};
    if (r.membw_gbs <= 0) {
        if (tty) fputs("bench: measuring memory bandwidth", stderr);
        r.membw_gbs = device_is_gpu(dev) ? device_gpu_bandwidth(dev)
                                         : membw_read(p.n_threads, BENCH_MEMBW_BYTES, BENCH_MEMBW_PASSES);
        r.membw_measured = true;
        if (tty) fputs("\r\033[K", stderr);
        if (r.membw_gbs < 0) goto fail;
    }
    if (o->json) bench_print_json(stdout, &r);
    else bench_print_text(stdout, &r);
    device_close(dev);
    model_free(m);
    return fflush(stdout) == 0 ? 0 : 1;
fail:
    fprintf(stderr, "veil bench: %s\n", err_msg());
    device_close(dev);
    model_free(m);
    return 1;
}

int cmd_bench(int argc, char **argv) {
    opts o = {.seed = 1};
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (parse(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    if (o.make_model) {
        if (o.n_pos != 3) {
            usage(stderr);
            return 2;
        }
        return make_model(&o);
    }
    if (o.n_pos == 0 && o.membw_flag && o.membw == 0) return measure_membw(&o);
    if (o.buffer_mib) {
        fprintf(stderr, "veil bench: --buffer applies to --membw alone\n");
        return 2;
    }
    if (o.n_pos != 1) {
        usage(stderr);
        return 2;
    }
    return bench_file(&o);
}
