/* veil serve MODEL: the one-node OpenAI-compatible HTTP server (src/api/server.h) over the
 * continuous-batching scheduler (src/engine/sched.h). Parses flags, loads the model, starts
 * both, prints "ready: http://HOST:PORT" once requests will be served, runs until SIGTERM or
 * SIGINT has drained, exits 0. */
#include "api/server.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "model/chat_template.h"
#include "engine/device.h"
#include "model/model.h"
#include "net/loop.h"

#include <event2/event.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: veil serve MODEL.gguf [--listen HOST:PORT] [options]\n\n"
            "Serves the model over an OpenAI-compatible HTTP API: GET /v1/models,\n"
            "POST /v1/chat/completions, POST /v1/completions, GET /health, GET /metrics.\n"
            "Prints 'ready: http://HOST:PORT' on stdout when it accepts requests. SIGTERM or\n"
            "SIGINT stops accepting, finishes running requests (see --drain-timeout), exits 0.\n\n"
            "  --listen HOST:PORT     address to listen on (default 127.0.0.1:8080; port 0 picks\n"
            "                         a free one; IPv6 as [::1]:8080)\n"
            "  --model-name NAME      the model id clients use (default: the GGUF general.name)\n"
            "  --chat-template NAME   chatml, llama3, llama2 or plain (default: chosen from the\n"
            "                         GGUF tokenizer.chat_template; plain when there is none)\n"
            "  --ctx N                context per sequence in tokens (default: the model's)\n"
            "  --kv-mem SIZE          KV cache budget, e.g. 512M, committed at start (default: room\n"
            "                         for --max-running full contexts, at most 1G)\n"
            "  --kv-type TYPE         f16 or f32: element type of cached keys and values (default\n"
            "                         f16: half the memory; f32 matches `veil run` exactly)\n"
            "  --max-batch N          tokens per forward pass (default 64)\n"
            "  --max-running N        sequences decoding at once (default 64, at most --max-batch)\n"
            "  --prefill-min N        tokens of each step kept for prompts while prompts wait;\n"
            "                         decoding streams take turns in the rest (default: half of\n"
            "                         --max-batch; --max-batch = prompts first)\n"
            "  --max-queue N          requests waiting for KV memory; beyond that 503 (default 256)\n"
            "  --threads N            compute threads (default: one per CPU)\n"
            "  --device DEV           cpu (default), cuda or cuda:N\n"
            "  --no-prefix-cache      do not reuse the KV of earlier prompts' common prefixes\n"
            "  --max-body SIZE        largest request body, e.g. 1M (default 1M); larger is 413\n"
            "  --drain-timeout S      seconds to let running requests finish on SIGTERM (default 30)\n"
            "  --heartbeat S          SSE keep-alive comment after S idle seconds (default 5)\n"
            "  --io-timeout S         drop connections idle or stuck for S seconds (default 60)\n"
            "  -h, --help             show this help\n");
}

enum { O_LISTEN = 256, O_NAME, O_TMPL, O_CTX, O_KV, O_BATCH, O_RUNNING, O_QUEUE, O_THREADS,
       O_NOPREFIX, O_BODY, O_DRAIN, O_HEART, O_IOTIME, O_KVTYPE, O_DEVICE, O_PREFILL };

int cmd_serve(int argc, char **argv) {
    static const struct option opts[] = {
        {"listen", required_argument, 0, O_LISTEN}, {"model-name", required_argument, 0, O_NAME},
        {"chat-template", required_argument, 0, O_TMPL}, {"ctx", required_argument, 0, O_CTX},
        {"kv-mem", required_argument, 0, O_KV}, {"kv-type", required_argument, 0, O_KVTYPE},
        {"max-batch", required_argument, 0, O_BATCH},
        {"max-running", required_argument, 0, O_RUNNING},
        {"prefill-min", required_argument, 0, O_PREFILL},
        {"max-queue", required_argument, 0, O_QUEUE}, {"threads", required_argument, 0, O_THREADS},
        {"no-prefix-cache", no_argument, 0, O_NOPREFIX}, {"max-body", required_argument, 0, O_BODY},
        {"drain-timeout", required_argument, 0, O_DRAIN}, {"heartbeat", required_argument, 0, O_HEART},
        {"io-timeout", required_argument, 0, O_IOTIME}, {"device", required_argument, 0, O_DEVICE},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char host[256] = "127.0.0.1";
    const char *name = NULL, *tmpl_name = NULL, *dev_spec = NULL;
    server_config sc = {.name = "veil serve", .host = host, .port = 8080, .max_body = 1 << 20,
                        .drain_timeout_s = 30, .heartbeat_s = 5, .io_timeout_s = 60};
    gen_config gc = {0};
    metrics mt;
    sched_config cfg;
    uint64_t u;
    long long v;
    float f;
    int c, rc = 1;
    model *m = NULL;
    tokenizer *tok = NULL;
    sched *s = NULL;
    struct event_base *base = NULL;
    gen_engine *ge = NULL;
    server *srv = NULL;
    device *dev = NULL;
    sched_config_default(&cfg);
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_LISTEN: ok = args_hostport("--listen", optarg, host, sizeof host, &sc.port); break;
        case O_NAME: name = optarg; break;
        case O_TMPL: tmpl_name = optarg; break;
        case O_CTX: ok = args_long("--ctx", optarg, 2, 1 << 24, &v); cfg.n_ctx = (int32_t)v; break;
        case O_KV: ok = args_size("--kv-mem", optarg, (uint64_t)1 << 40, &u); cfg.kv_bytes = (size_t)u; break;
        case O_KVTYPE:
            if (model_kv_type_parse(optarg, &cfg.kv_type)) {
                fprintf(stderr, "veil serve: --kv-type: %s\n", err_msg());
                ok = false;
            }
            break;
        case O_BATCH: ok = args_long("--max-batch", optarg, 1, 1 << 16, &v); cfg.max_batch = (int32_t)v; break;
        case O_RUNNING: ok = args_long("--max-running", optarg, 1, 1 << 16, &v); cfg.max_running = (int32_t)v; break;
        case O_PREFILL: ok = args_long("--prefill-min", optarg, 1, 1 << 16, &v); cfg.prefill_min = (int32_t)v; break;
        case O_QUEUE: ok = args_long("--max-queue", optarg, 0, 1 << 20, &v); cfg.max_queue = (int32_t)v; break;
        case O_THREADS: ok = args_long("--threads", optarg, 1, 1024, &v); cfg.n_threads = (int)v; break;
        case O_NOPREFIX: cfg.prefix_cache = false; break;
        case O_BODY: ok = args_size("--max-body", optarg, (uint64_t)1 << 30, &u); sc.max_body = (size_t)u; break;
        case O_DRAIN: ok = args_float("--drain-timeout", optarg, 0, 86400, &f); sc.drain_timeout_s = f; break;
        case O_HEART: ok = args_float("--heartbeat", optarg, 0.001, 3600, &f); sc.heartbeat_s = f; break;
        case O_IOTIME: ok = args_long("--io-timeout", optarg, 1, 86400, &v); sc.io_timeout_s = (int)v; break;
        case O_DEVICE:
            ok = args_device(optarg);
            dev_spec = optarg;
            break;
        default: usage(stderr); return 2;
        }
        if (!ok) return 2;
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    if (tmpl_name && chat_tmpl_from_name(tmpl_name, &gc.tmpl) != 0) {
        fprintf(stderr, "veil serve: %s\n", err_msg());
        return 2;
    }
    if (!(m = model_load(argv[optind])) || !(tok = tok_load(m->file))) goto fail;
    if (cfg.n_ctx > m->hp.n_ctx_train) {
        err_set("--ctx %d exceeds the model's context length %d", cfg.n_ctx, m->hp.n_ctx_train);
        goto fail;
    }
    if (!tmpl_name) {
        gguf_str src = {0};
        gc.tmpl = gguf_get_str(m->file, "tokenizer.chat_template", &src) == 1
                      ? chat_tmpl_detect(src.ptr, src.len) : CHAT_TMPL_PLAIN;
    }
    gc.model_name = name ? name : m->name;
    gc.n_ctx = cfg.n_ctx > 0 ? cfg.n_ctx : m->hp.n_ctx_train;
    metrics_init(&mt);
    sc.metrics = &mt;
    if (!(dev = device_open(dev_spec, m, cfg.n_threads))) goto fail;
    cfg.device = dev;
    if (!(s = sched_new(m, tok, &cfg)) || !(base = loop_new()) ||
        !(ge = gen_engine_new(base, s, tok, &gc, &mt)))
        goto fail;
    server_backend be = gen_backend(ge);
    if (!(srv = server_new(base, &be, &sc))) goto fail;
    fprintf(stderr, "veil serve: model '%s', chat template %s, context %d, on %s\n", gc.model_name,
            chat_tmpl_name(gc.tmpl), gc.n_ctx, device_describe(dev));
    if (strchr(host, ':')) printf("ready: http://[%s]:%u\n", host, (unsigned)server_port(srv));
    else printf("ready: http://%s:%u\n", host, (unsigned)server_port(srv));
    fflush(stdout);
    if (server_run(srv) != 0) goto fail;
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "veil serve: %s\n", err_msg());
done:
    server_free(srv);
    sched_free(s);
    gen_engine_free(ge);
    if (base) event_base_free(base);
    device_close(dev);
    tok_free(tok);
    model_free(m);
    return rc;
}
