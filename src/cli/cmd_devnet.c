/* veil devnet: a proxy, workers and a client gateway on this machine (src/node/devnet.h). */
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "net/conn.h"
#include "node/devnet.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: veil devnet [--listen HOST:PORT] [--model MODEL.gguf] [options]\n\n"
            "Starts a whole veil network on this machine: a proxy, workers on the model and a\n"
            "client gateway, talking attested TLS (sim attestation) with end-to-end encrypted\n"
            "prompts. Prints 'ready: http://HOST:PORT' (the gateway's OpenAI API) once\n"
            "requests will be served. Ctrl-C or SIGTERM stops everything and exits 0.\n\n"
            "  --listen HOST:PORT     the gateway's address (default 127.0.0.1:8080; port 0: any)\n"
            "  --model FILE           the model (default: the bundled models/stories260K.gguf)\n"
            "  --workers N            worker processes (default 2)\n"
            "  --threads N            compute threads per worker (default 1)\n"
            "  --device DEV           where the workers run the model: cpu (default), cuda or\n"
            "                         cuda:N (all on that GPU)\n"
            "  --dir DIR              keep keys and allow-lists in DIR (default: a temporary one)\n"
            "  --log-dir DIR          each process logs to DIR/NAME.log (default: stderr)\n"
            "  --dump-frames FILE     debugging: the proxy appends every frame's bytes to FILE\n"
            "  --no-payments          no ledger node, no wallets: requests are not paid for\n"
            "  --peer-timeout S       every process closes a peer silent for S seconds as dead\n"
            "                         (default 5, at least 3)\n"
            "  --max-evidence-age S   every process accepts evidence up to S seconds old and\n"
            "                         renews its own every S/2 seconds (default 3600)\n"
            "  -h, --help             show this help\n");
}

enum { O_LISTEN = 256, O_MODEL, O_WORKERS, O_THREADS, O_DIR, O_LOGS, O_DUMP, O_NOPAY, O_PEER, O_AGE,
       O_DEVICE };

int cmd_devnet(int argc, char **argv) {
    static const struct option opts[] = {
        {"listen", required_argument, 0, O_LISTEN}, {"model", required_argument, 0, O_MODEL},
        {"workers", required_argument, 0, O_WORKERS}, {"threads", required_argument, 0, O_THREADS},
        {"device", required_argument, 0, O_DEVICE},
        {"dir", required_argument, 0, O_DIR}, {"log-dir", required_argument, 0, O_LOGS},
        {"dump-frames", required_argument, 0, O_DUMP}, {"no-payments", no_argument, 0, O_NOPAY},
        {"peer-timeout", required_argument, 0, O_PEER},
        {"max-evidence-age", required_argument, 0, O_AGE},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    devnet_config cfg = {.listen = "127.0.0.1:8080",
                         .n_workers = 2, .threads = 1, .payments = true};
    char host[256];
    uint16_t port;
    long long v;
    float f;
    int c;
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_LISTEN: ok = args_hostport("--listen", optarg, host, sizeof host, &port); cfg.listen = optarg; break;
        case O_MODEL: cfg.model_path = optarg; break;
        case O_WORKERS: ok = args_long("--workers", optarg, 1, 16, &v); cfg.n_workers = (int)v; break;
        case O_THREADS: ok = args_long("--threads", optarg, 1, 1024, &v); cfg.threads = (int)v; break;
        case O_DEVICE: ok = args_device(optarg); cfg.device = optarg; break;
        case O_DIR: cfg.dir = optarg; break;
        case O_LOGS: cfg.log_dir = optarg; break;
        case O_DUMP: cfg.dump_frames = optarg; break;
        case O_NOPAY: cfg.payments = false; break;
        case O_PEER: ok = args_float("--peer-timeout", optarg, CONN_DEAD_MIN_S, 86400, &f); cfg.peer_timeout = optarg; break;
        case O_AGE: ok = args_long("--max-evidence-age", optarg, 1, 30 * 86400, &v); cfg.max_evidence_age = optarg; break;
        default: usage(stderr); return 2;
        }
        if (!ok) return 2;
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (devnet_run(&cfg) != 0) {
        fprintf(stderr, "veil devnet: %s\n", err_msg());
        return 1;
    }
    return 0;
}
