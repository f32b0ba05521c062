/* veil client --proxy HOST:PORT: the local OpenAI-compatible gateway to a veil network
 * (src/node/client.h). Parses flags (or a config file) and runs until SIGTERM/SIGINT. */
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/node_args.h"
#include "node/client.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: veil client --proxy HOST:PORT [--listen HOST:PORT] [options]\n\n"
            "Serves the OpenAI API (as veil serve does) on a local port and answers it with\n"
            "the network: requests are sealed to attested workers, so only they read them.\n"
            "Prints 'ready: http://HOST:PORT' once it listens and knows --wait-workers workers.\n\n"
            "  --proxy HOST:PORT      the proxy's client port (required)\n"
            "  --listen HOST:PORT     where apps connect (default 127.0.0.1:8080; port 0: any)\n"
            "  --max-price N          highest worker price coefficient accepted (default: any)\n"
            "  --wait-workers N       workers to know before 'ready' (default 1)\n"
            "  --max-body SIZE        largest request body (default 1M)\n"
            "  --heartbeat S          SSE keep-alive comment after S idle seconds (default 5)\n"
            "  --io-timeout S         drop HTTP connections idle for S seconds (default 60)\n"
            "  --request-timeout S    a request not answered in S seconds (resolution 1 ms)\n"
            "                         ends with 504 timeout, its generation stopped (default:\n"
            "                         none)\n"
            "  --chain URL            ledger node (veil chain serve): prices, and payments on\n"
            "  --wallet FILE          the client's key file; signs the charge vouchers\n"
            "  --channel ADDRESS      the client's charge channel to the proxy\n"
            "                         (--chain, --wallet and --channel go together)\n"
            "  --accounts FILE        SQLite file of the charge totals signed, written before\n"
            "                         each voucher goes; a restart continues from it\n"
            "  -h, --help             show this help\n\n" NODE_ARGS_HELP);
}

enum { O_PROXY = 256, O_LISTEN, O_PRICE, O_WAIT, O_BODY, O_HEART, O_IOTIME, O_CHAIN, O_WALLET, O_CHANNEL,
       O_ACCOUNTS, O_REQTIME };

/* The role's flags; node_args_main checks the lines of --config files against them too. */
static const struct option opts[] = {
    {"proxy", required_argument, 0, O_PROXY}, {"listen", required_argument, 0, O_LISTEN},
    {"max-price", required_argument, 0, O_PRICE}, {"wait-workers", required_argument, 0, O_WAIT},
    {"max-body", required_argument, 0, O_BODY}, {"heartbeat", required_argument, 0, O_HEART},
    {"io-timeout", required_argument, 0, O_IOTIME}, {"chain", required_argument, 0, O_CHAIN},
    {"wallet", required_argument, 0, O_WALLET}, {"channel", required_argument, 0, O_CHANNEL},
    {"accounts", required_argument, 0, O_ACCOUNTS}, {"request-timeout", required_argument, 0, O_REQTIME},
    NODE_ARGS_OPTIONS, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};

static int run(int argc, char **argv) {
    char ph[256] = "", lh[256] = "127.0.0.1";
    client_config cfg = {.listen_port = 8080, .max_price = UINT32_MAX, .wait_workers = 1,
                         .max_body = 1 << 20, .heartbeat_s = 5, .drain_timeout_s = 5,
                         .io_timeout_s = 60};
    long long v;
    uint64_t u;
    float f;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        bool ok = true, bad = false;
        switch (c) {
        case O_PROXY: ok = args_hostport("--proxy", optarg, ph, sizeof ph, &cfg.proxy_port); break;
        case O_LISTEN: ok = args_hostport("--listen", optarg, lh, sizeof lh, &cfg.listen_port); break;
        case O_PRICE: ok = args_long("--max-price", optarg, 0, UINT32_MAX, &v); cfg.max_price = (uint32_t)v; break;
        case O_WAIT: ok = args_long("--wait-workers", optarg, 0, 1 << 20, &v); cfg.wait_workers = (int)v; break;
        case O_BODY: ok = args_size("--max-body", optarg, (uint64_t)1 << 24, &u); cfg.max_body = (size_t)u; break;
        case O_HEART: ok = args_float("--heartbeat", optarg, 0.001, 3600, &f); cfg.heartbeat_s = f; break;
        case O_CHAIN: cfg.chain_url = optarg; break;
        case O_WALLET: cfg.wallet = optarg; break;
        case O_CHANNEL: cfg.channel = optarg; break;
        case O_ACCOUNTS: cfg.accounts = optarg; break;
        case O_REQTIME:
            ok = args_float("--request-timeout", optarg, 0.001, 86400, &f);
            cfg.timeout_ms = (uint32_t)lroundf(f * 1000);
            break;
        case O_IOTIME: ok = args_long("--io-timeout", optarg, 1, 86400, &v); cfg.io_timeout_s = (int)v; break;
        default:
            if (!node_args_attest(c, optarg, &cfg.attest, &bad)) {
                usage(stderr);
                return 2;
            }
            ok = !bad;
        }
        if (!ok) return 2;
    }
    if (optind != argc || !ph[0]) {
        fprintf(stderr, "veil client: --proxy is required\n");
        usage(stderr);
        return 2;
    }
    if (!cfg.chain_url != !cfg.wallet || !cfg.chain_url != !cfg.channel || (cfg.accounts && !cfg.chain_url)) {
        fprintf(stderr, "veil client: --chain, --wallet and --channel go together (and --accounts needs them)\n");
        return 2;
    }
    cfg.proxy_host = ph;
    cfg.listen_host = lh;
    if (client_run(&cfg) != 0) {
        fprintf(stderr, "veil client: %s\n", err_msg());
        return 1;
    }
    return 0;
}

int cmd_client(int argc, char **argv) { return node_args_main(argc, argv, opts, usage, run); }
