/* veil channel: open, fund, pay through and close payment channels on a ledger node. The
 * rules are src/ledger's (docs/PAYMENTS.md "Channels"); this file parses flags, loads keys and
 * prints. `voucher` works offline: the payer signs a cumulative total and hands the hex BOC to
 * the payee, who redeems it. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/chain_client.h"
#include "base/err.h"
#include "base/hex.h"
#include "cli/args.h"
#include "cli/chain_cli.h"
#include "cli/commands.h"
#include "ledger/boc.h"
#include "ledger/chain.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: veil channel open PAYEE --deposit N --stake N [--kind charge|payout] [--nonce N]\n"
            "                         --node URL --key KEY\n"
            "       veil channel show CHANNEL --node URL\n"
            "       veil channel topup CHANNEL AMOUNT --node URL --key KEY\n"
            "       veil channel voucher CHANNEL TOTAL --key PAYER.key [--kind charge|payout] [--query N]\n"
            "       veil channel redeem CHANNEL VOUCHER_HEX --node URL --key PAYEE.key\n"
            "       veil channel close-request CHANNEL --node URL --key KEY\n"
            "       veil channel close CHANNEL --node URL --key KEY\n"
            "       veil channel withdraw CHANNEL --node URL --key PAYER.key\n\n"
            "Payment channels (docs/PAYMENTS.md). A client opens a charge channel to a registered\n"
            "proxy; a registered proxy opens a payout channel to a worker. The payer signs\n"
            "cumulative vouchers (`voucher` prints one as hex, offline), the payee redeems them.\n"
            "`close-request` by the payer starts the close delay (the payee can still redeem);\n"
            "by the payee it closes at once. After the delay `close`, then `withdraw` returns the\n"
            "remainder to the payer. `open` prints the channel's address. AMOUNTs are nano-units.\n\n"
            "  --node URL       the ledger node, http://HOST:PORT (veil chain serve)\n"
            "  --key PATH       the key file of the account acting\n"
            "  --deposit N      open: the deposit\n"
            "  --stake N        open: the stake (at least the registry's minimum)\n"
            "  --kind K         charge (client -> proxy, default) or payout (proxy -> worker)\n"
            "  --nonce N        open: tells apart channels between the same two accounts (default 0)\n"
            "  --query N        voucher: the query id (default 0)\n"
            "  -h, --help       show this help\n\n"
            "Exit status: 0 on success, 1 on failure (a refused transaction names the rule), 2\n"
            "for bad usage.\n");
}

enum { O_NODE = 256, O_KEY, O_DEPOSIT, O_STAKE, O_KIND, O_NONCE, O_QUERY };

static const struct option long_opts[] = {
    {"node", required_argument, 0, O_NODE},   {"key", required_argument, 0, O_KEY},
    {"deposit", required_argument, 0, O_DEPOSIT}, {"stake", required_argument, 0, O_STAKE},
    {"kind", required_argument, 0, O_KIND},   {"nonce", required_argument, 0, O_NONCE},
    {"query", required_argument, 0, O_QUERY}, {0, 0, 0, 0},
};

typedef struct opts {
    const char *node, *key;
    uint64_t deposit, stake, nonce, query;
    bool has_deposit, has_stake;
    channel_kind kind;
} opts;

static int parse(int argc, char **argv, opts *o) {
    int c;
    optind = 1;
    o->kind = CHANNEL_CHARGE;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_NODE: o->node = optarg; break;
        case O_KEY: o->key = optarg; break;
        case O_DEPOSIT: ok = args_u64("--deposit", optarg, &o->deposit); o->has_deposit = true; break;
        case O_STAKE: ok = args_u64("--stake", optarg, &o->stake); o->has_stake = true; break;
        case O_NONCE: ok = args_u64("--nonce", optarg, &o->nonce); break;
        case O_QUERY: ok = args_u64("--query", optarg, &o->query); break;
        case O_KIND:
            if (strcmp(optarg, "charge") == 0) o->kind = CHANNEL_CHARGE;
            else if (strcmp(optarg, "payout") == 0) o->kind = CHANNEL_PAYOUT;
            else {
                fprintf(stderr, "veil channel: --kind is charge or payout, not '%s'\n", optarg);
                ok = false;
            }
            break;
        default: return 2;
        }
        if (!ok) return 2;
    }
    return 0;
}

static void print_channel(const channel *c) {
    char a[ADDR_RAW_LEN], payer[ADDR_RAW_LEN], payee[ADDR_RAW_LEN];
    addr_to_raw(&c->addr, a);
    addr_to_raw(&c->payer, payer);
    addr_to_raw(&c->payee, payee);
    printf("channel  %s\nkind     %s\nstatus   %s\npayer    %s\npayee    %s\nnonce    %" PRIu64
           "\ndeposit  %" PRIu64 "\nstake    %" PRIu64 "\npaid     %" PRIu64 "\nheld     %" PRIu64 "\n",
           a, channel_kind_name(c->kind), channel_status_name(c->status), payer, payee, c->nonce, c->deposit,
           c->stake, c->paid, channel_held(c));
    if (c->status == CHANNEL_CLOSING) printf("close_at %" PRIu64 "\n", c->close_at);
}

/* The offline half: a payer-signed voucher as hex. */
static int do_voucher(const opts *o, const ton_addr *ch, const char *total_s) {
    uint64_t total;
    keypair k;
    uint8_t *boc = NULL;
    size_t len;
    if (!args_u64("TOTAL", total_s, &total)) return 2;
    if (keys_load(o->key, &k)) return 1;
    cell *v = chain_voucher(&k, o->kind, ch, total, o->query);
    keys_wipe(&k);
    int rc = !v || boc_serialize(v, 0, &boc, &len);
    cell_unref(v);
    if (rc) return 1;
    char *hex = malloc(2 * len + 1);
    if (hex) {
        hex_encode(boc, len, hex);
        printf("%s\n", hex);
    }
    free(hex);
    free(boc);
    return hex ? 0 : 1;
}

/* A hex voucher as a cell, or NULL with err_msg(). */
static cell *voucher_from_hex(const char *hex) {
    size_t n = strlen(hex);
    uint8_t *b = n && n % 2 == 0 ? malloc(n / 2) : NULL;
    cell *c = NULL;
    if (!b) err_set("the voucher must be a non-empty even-length hex string");
    else if (hex_decode(hex, b, n / 2, "voucher") == 0) c = boc_parse(b, n / 2);
    free(b);
    return c;
}

/* The actions that send a transaction (and `show`). */
static int run_action(chain *c, const opts *o, const char *action, const ton_addr *target, int nargs, char **args) {
    keypair k;
    chain_ack ack;
    ton_addr ch;
    uint64_t amount = 0;
    cell *v = NULL;
    int rc;
    if (strcmp(action, "show") == 0) {
        channel info;
        bool found;
        if (chain_cli_check(chain_channel(c, target, &info, &found))) return 1;
        if (!found) {
            err_set("no such channel");
            return 1;
        }
        print_channel(&info);
        return 0;
    }
    if (strcmp(action, "topup") == 0 && (nargs != 1 || !args_u64("AMOUNT", args[0], &amount))) return 2;
    if (strcmp(action, "redeem") == 0 && (nargs != 1 || !(v = voucher_from_hex(args[0])))) {
        if (nargs == 1) fprintf(stderr, "veil channel redeem: %s\n", err_msg());
        return 2;
    }
    if (keys_load(o->key, &k)) {
        cell_unref(v);
        return 1;
    }
    if (strcmp(action, "open") == 0) rc = chain_open_channel(c, &k, o->kind, target, o->nonce, o->deposit, o->stake, &ch, &ack);
    else if (strcmp(action, "topup") == 0) rc = chain_topup(c, &k, target, amount, &ack);
    else if (strcmp(action, "redeem") == 0) rc = chain_redeem(c, &k, target, v, &ack);
    else if (strcmp(action, "close-request") == 0) rc = chain_request_close(c, &k, target, &ack);
    else if (strcmp(action, "close") == 0) rc = chain_close_channel(c, &k, target, &ack);
    else rc = chain_withdraw(c, &k, target, &ack);
    keys_wipe(&k);
    cell_unref(v);
    if (chain_cli_check(rc)) return 1;
    if (strcmp(action, "open") == 0) {
        char raw[ADDR_RAW_LEN];
        addr_to_raw(&ch, raw);
        printf("channel  %s\n", raw);
    }
    chain_cli_print_ack(action, &ack);
    return 0;
}

int cmd_channel(int argc, char **argv) {
    static const char *actions[] = {"open", "show", "topup", "voucher", "redeem", "close-request", "close", "withdraw"};
    static const int extra[] = {0, 0, 1, 1, 1, 0, 0, 0}; /* arguments after the address */
    opts o = {0};
    ton_addr target;
    int rc;
    size_t i = 0;
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if ((rc = parse(argc, argv, &o))) {
        usage(stderr);
        return rc;
    }
    const char *action = optind < argc ? argv[optind] : "";
    while (i < sizeof actions / sizeof actions[0] && strcmp(action, actions[i]) != 0) i++;
    if (i == sizeof actions / sizeof actions[0]) {
        if (*action) fprintf(stderr, "veil channel: unknown action '%s'\n", action);
        usage(stderr);
        return 2;
    }
    int nargs = argc - optind - 2;
    if (nargs != extra[i]) {
        fprintf(stderr, "veil channel %s: expected %s%s\n", action, i == 0 ? "PAYEE" : "CHANNEL",
                extra[i] ? (i == 2 ? " AMOUNT" : i == 3 ? " TOTAL" : " VOUCHER_HEX") : "");
        return 2;
    }
    if (addr_parse(argv[optind + 1], &target, NULL)) {
        fprintf(stderr, "veil channel: address '%s': %s\n", argv[optind + 1], err_msg());
        return 2;
    }
    if (i != 1 && !o.key) {
        fprintf(stderr, "veil channel %s: --key is required\n", action);
        return 2;
    }
    if (i == 0 && (!o.has_deposit || !o.has_stake)) {
        fprintf(stderr, "veil channel open: --deposit and --stake are required\n");
        return 2;
    }
    if (i == 3) {
        rc = do_voucher(&o, &target, argv[optind + 2]);
    } else {
        if (!o.node) {
            fprintf(stderr, "veil channel %s: --node is required\n", action);
            return 2;
        }
        chain *c = chain_client_open(o.node);
        if (!c) {
            fprintf(stderr, "veil channel: %s\n", err_msg());
            return 2;
        }
        rc = run_action(c, &o, action, &target, nargs, argv + optind + 2);
        chain_close(c);
    }
    if (rc == 1) fprintf(stderr, "veil channel %s: %s\n", action, err_msg());
    return rc;
}
