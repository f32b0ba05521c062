/* veil worker --model M --proxy HOST:PORT: serve a model to the network (src/node/worker.h).
 * Parses flags (or a config file) and runs the worker until SIGTERM/SIGINT. */
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/node_args.h"
#include "node/worker.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: veil worker --model MODEL.gguf --proxy HOST:PORT [options]\n\n"
            "Serves the model to a veil network: connects to the proxy's worker port over\n"
            "attested TLS (reconnecting with backoff), announces the model's name and SHA-256,\n"
            "answers end-to-end encrypted requests. Prints 'ready: ...' once the proxy took it.\n"
            "SIGTERM or SIGINT: takes no new requests, finishes running ones, exits 0.\n\n"
            "  --model FILE           the GGUF model to serve (required)\n"
            "  --proxy HOST:PORT      the proxy's worker port (required)\n"
            "  --model-name NAME      the model id clients use (default: the GGUF general.name)\n"
            "  --chat-template NAME   chatml, llama3, llama2 or plain (default: detected)\n"
            "  --capacity N           concurrent requests announced (default: --max-running)\n"
            "  --price N              price coefficient, 1000 = 1.0x (default 1000)\n"
            "  --ctx N                context per sequence (default: the model's)\n"
            "  --kv-mem SIZE          KV cache budget, e.g. 512M, committed at start\n"
            "  --max-batch N          tokens per forward pass (default 64)\n"
            "  --max-running N        sequences decoding at once (default 64)\n"
            "  --threads N            compute threads (default: one per CPU)\n"
            "  --device DEV           cpu (default), cuda or cuda:N: where the model runs\n"
            "  --drain-timeout S      seconds to finish running requests on SIGTERM (default 30)\n"
            "  --chain URL            ledger node (veil chain serve): redeem the proxy's payouts\n"
            "  --wallet FILE          the key whose wallet the proxy pays (default: the attested\n"
            "                         key, fresh per process: unredeemed pay is lost at exit)\n"
            "  --accounts FILE        SQLite file of payout vouchers kept; redeemed first at start\n"
            "  --redeem-every S       seconds between batched redemptions (default 2)\n"
            "  -h, --help             show this help\n\n" NODE_ARGS_HELP);
}

enum { O_MODEL = 256, O_PROXY, O_NAME, O_TMPL, O_CAP, O_PRICE, O_CTX, O_KV, O_BATCH, O_RUNNING,
       O_THREADS, O_DRAIN, O_CHAIN, O_WALLET, O_ACCOUNTS, O_REDEEM, O_DEVICE };

/* The role's flags; node_args_main checks the lines of --config files against them too. */
static const struct option opts[] = {
    {"model", required_argument, 0, O_MODEL}, {"proxy", required_argument, 0, O_PROXY},
    {"model-name", required_argument, 0, O_NAME}, {"chat-template", required_argument, 0, O_TMPL},
    {"capacity", required_argument, 0, O_CAP}, {"price", required_argument, 0, O_PRICE},
    {"ctx", required_argument, 0, O_CTX}, {"kv-mem", required_argument, 0, O_KV},
    {"max-batch", required_argument, 0, O_BATCH}, {"max-running", required_argument, 0, O_RUNNING},
    {"threads", required_argument, 0, O_THREADS}, {"device", required_argument, 0, O_DEVICE},
    {"drain-timeout", required_argument, 0, O_DRAIN},
    {"chain", required_argument, 0, O_CHAIN}, {"wallet", required_argument, 0, O_WALLET},
    {"accounts", required_argument, 0, O_ACCOUNTS}, {"redeem-every", required_argument, 0, O_REDEEM},
    NODE_ARGS_OPTIONS, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};

static int run(int argc, char **argv) {
    char host[256] = "";
    worker_config cfg = {.price = 1000, .drain_timeout_s = 30};
    long long v;
    uint64_t u;
    float f;
    int c;
    sched_config_default(&cfg.sched);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        bool ok = true, bad = false;
        switch (c) {
        case O_MODEL: cfg.model_path = optarg; break;
        case O_PROXY: ok = args_hostport("--proxy", optarg, host, sizeof host, &cfg.proxy_port); break;
        case O_NAME: cfg.model_name = optarg; break;
        case O_TMPL: cfg.chat_template = optarg; break;
        case O_CAP: ok = args_long("--capacity", optarg, 1, 1 << 16, &v); cfg.capacity = (uint32_t)v; break;
        case O_CHAIN: cfg.chain_url = optarg; break;
        case O_WALLET: cfg.wallet = optarg; break;
        case O_ACCOUNTS: cfg.accounts = optarg; break;
        case O_REDEEM: ok = args_long("--redeem-every", optarg, 1, 86400, &v); cfg.redeem_every_s = (uint32_t)v; break;
        case O_PRICE: ok = args_long("--price", optarg, 0, UINT32_MAX, &v); cfg.price = (uint32_t)v; break;
        case O_CTX: ok = args_long("--ctx", optarg, 2, 1 << 24, &v); cfg.sched.n_ctx = (int32_t)v; break;
        case O_KV: ok = args_size("--kv-mem", optarg, (uint64_t)1 << 40, &u); cfg.sched.kv_bytes = (size_t)u; break;
        case O_BATCH: ok = args_long("--max-batch", optarg, 1, 1 << 16, &v); cfg.sched.max_batch = (int32_t)v; break;
        case O_RUNNING: ok = args_long("--max-running", optarg, 1, 1 << 16, &v); cfg.sched.max_running = (int32_t)v; break;
        case O_THREADS: ok = args_long("--threads", optarg, 1, 1024, &v); cfg.sched.n_threads = (int)v; break;
        case O_DEVICE: ok = args_device(optarg); cfg.device = optarg; break;
        case O_DRAIN: ok = args_float("--drain-timeout", optarg, 0, 86400, &f); cfg.drain_timeout_s = f; break;
        default:
            if (!node_args_attest(c, optarg, &cfg.attest, &bad)) {
                usage(stderr);
                return 2;
            }
            ok = !bad;
        }
        if (!ok) return 2;
    }
    if (optind != argc || !cfg.model_path || !host[0]) {
        fprintf(stderr, "veil worker: --model and --proxy are required\n");
        usage(stderr);
        return 2;
    }
    if ((cfg.wallet || cfg.accounts) && !cfg.chain_url) {
        fprintf(stderr, "veil worker: --wallet and --accounts need --chain\n");
        return 2;
    }
    cfg.proxy_host = host;
    if (worker_run(&cfg) != 0) {
        fprintf(stderr, "veil worker: %s\n", err_msg());
        return 1;
    }
    return 0;
}

int cmd_worker(int argc, char **argv) { return node_args_main(argc, argv, opts, usage, run); }
