/* veil proxy: route and relay requests between client gateways and workers
 * (src/node/proxy.h). Parses flags (or a config file) and runs until SIGTERM/SIGINT. */
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/node_args.h"
#include "node/proxy.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: veil proxy [--workers HOST:PORT] [--clients HOST:PORT] [options]\n\n"
            "Accepts workers on one port and client gateways on another, both over attested\n"
            "TLS; routes each request to a worker and relays its end-to-end encrypted answer.\n"
            "Prints 'ready: workers HOST:PORT clients HOST:PORT' once both ports listen.\n"
            "SIGTERM or SIGINT: closes every connection and exits 0.\n\n"
            "  --workers HOST:PORT    the workers' port (default 127.0.0.1:7001; port 0: any)\n"
            "  --clients HOST:PORT    the client gateways' port (default 127.0.0.1:7002)\n"
            "  --allow-models FILE    allowed GGUF SHA-256s, one 64-hex value a line (default:\n"
            "                         any model); a worker announcing another is disconnected\n"
            "  --dump-frames FILE     debugging: append every frame's bytes to FILE\n"
            "  --chain URL            ledger node (veil chain serve): payments on; needs --wallet\n"
            "  --wallet FILE          the proxy's key file (the payee of its clients' channels)\n"
            "  --accounts FILE        SQLite file of accepted vouchers; redeemed first at start\n"
            "  -h, --help             show this help\n\n" NODE_ARGS_HELP);
}

enum { O_WORKERS = 256, O_CLIENTS, O_MODELS, O_DUMP, O_CHAIN, O_WALLET, O_ACCOUNTS };

/* The role's flags; node_args_main checks the lines of --config files against them too. */
static const struct option opts[] = {
    {"workers", required_argument, 0, O_WORKERS}, {"clients", required_argument, 0, O_CLIENTS},
    {"allow-models", required_argument, 0, O_MODELS}, {"dump-frames", required_argument, 0, O_DUMP},
    {"chain", required_argument, 0, O_CHAIN}, {"wallet", required_argument, 0, O_WALLET},
    {"accounts", required_argument, 0, O_ACCOUNTS},
    NODE_ARGS_OPTIONS, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};

static int run(int argc, char **argv) {
    char wh[256] = "127.0.0.1", ch[256] = "127.0.0.1";
    proxy_config cfg = {.workers_port = 7001, .clients_port = 7002, .redeem_every_s = 2};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        bool ok = true, bad = false;
        switch (c) {
        case O_WORKERS: ok = args_hostport("--workers", optarg, wh, sizeof wh, &cfg.workers_port); break;
        case O_CLIENTS: ok = args_hostport("--clients", optarg, ch, sizeof ch, &cfg.clients_port); break;
        case O_MODELS: cfg.allow_models = optarg; break;
        case O_DUMP: cfg.dump_frames = optarg; break;
        case O_CHAIN: cfg.chain_url = optarg; break;
        case O_WALLET: cfg.wallet = optarg; break;
        case O_ACCOUNTS: cfg.accounts = optarg; break;
        default:
            if (!node_args_attest(c, optarg, &cfg.attest, &bad)) {
                usage(stderr);
                return 2;
            }
            ok = !bad;
        }
        if (!ok) return 2;
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (!cfg.chain_url != !cfg.wallet || (cfg.accounts && !cfg.chain_url)) {
        fprintf(stderr, "veil proxy: --chain and --wallet go together (and --accounts needs them)\n");
        return 2;
    }
    cfg.workers_host = wh;
    cfg.clients_host = ch;
    if (proxy_run(&cfg) != 0) {
        fprintf(stderr, "veil proxy: %s\n", err_msg());
        return 1;
    }
    return 0;
}

int cmd_proxy(int argc, char **argv) { return node_args_main(argc, argv, opts, usage, run); }
