/* veil chain: the local ledger node and the commands that talk to it. The rules live in
 * src/ledger (docs/PAYMENTS.md), the HTTP API in src/api/chain_server.c; this file parses
 * flags, loads keys and prints. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/chain_client.h"
#include "api/chain_server.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/hex.h"
#include "cli/args.h"
#include "cli/chain_cli.h"
#include "cli/commands.h"
#include "ledger/boc.h"
#include "ledger/chain.h"
#include "ledger/ledger.h"
#include "ledger/replay.h"
#include "ledger/voucher.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: veil chain init --db FILE --key OWNER.key\n"
            "       veil chain serve --db FILE [--listen HOST:PORT]\n"
            "       veil chain verify --db FILE\n"
            "       veil chain status --node URL\n"
            "       veil chain mint ADDRESS AMOUNT --node URL --key OWNER.key\n"
            "       veil chain transfer ADDRESS AMOUNT --node URL --key KEY\n"
            "       veil chain registry show --node URL\n"
            "       veil chain registry set LIST HEX [--endpoint HOST:PORT] --node URL --key OWNER.key\n"
            "       veil chain registry del LIST HEX --node URL --key OWNER.key\n"
            "       veil chain registry params [--price N] [--worker-fee N] [--mult-prompt BP]\n"
            "                 [--mult-cached BP] [--mult-completion BP] [--min-client-stake N]\n"
            "                 [--min-proxy-stake N] [--client-close-delay S] [--proxy-close-delay S]\n"
            "                 --node URL --key OWNER.key\n"
            "       veil chain load --node URL --key KEY --to ADDRESS --count N --acks FILE\n"
            "       veil chain check-acks --node URL --acks FILE\n"
            "       veil chain bench [--db FILE] [--txs N]\n\n"
            "The local ledger node (docs/PAYMENTS.md). `init` makes a ledger whose registry owner\n"
            "is the key's holder; `serve` answers the HTTP JSON API on HOST:PORT (default\n"
            "127.0.0.1:8545; port 0 picks one) and prints 'ready: http://HOST:PORT' once it\n"
            "accepts requests; SIGTERM or SIGINT commit what is pending and stop it. `verify`\n"
            "replays the whole history: every block hash and link, every signature, every rule\n"
            "and the conservation of funds; it prints 'ok: ...' or names the first fault.\n\n"
            "Registry lists: worker (allowed worker measurements), proxy-image (allowed proxy\n"
            "measurements), model (allowed model hashes), proxy (a proxy's Ed25519 public key,\n"
            "with --endpoint). `params` changes only the values given. AMOUNTs are nano-units.\n\n"
            "`load` sends COUNT transfers of 1 nano-unit from KEY, appending each acknowledged\n"
            "transaction's hash to FILE (the crash test's loader); `check-acks` checks that every\n"
            "hash in FILE is committed. `bench` measures voucher checks and durable transactions\n"
            "per second and disk bytes per transaction (bench/README.md).\n\n"
            "  --db FILE        the ledger's SQLite file\n"
            "  --key PATH       a key file (veil wallet new)\n"
            "  --node URL       a node, http://HOST:PORT\n"
            "  --listen H:P     serve: where to listen\n"
            "  -h, --help       show this help\n\n"
            "Exit status: 0 on success, 1 on failure (a refused transaction names the rule), 2\n"
            "for bad usage.\n");
}

enum { O_DB = 256, O_KEY, O_NODE, O_LISTEN, O_ENDPOINT, O_PRICE, O_FEE, O_MP, O_MC, O_MCO, O_MCS, O_MPS, O_CCD,
       O_PCD, O_TO, O_COUNT, O_ACKS, O_TXS };

typedef struct opts {
    const char *db, *key, *node, *endpoint, *to, *acks;
    char host[256];
    uint16_t port;
    uint64_t count, txs;
    /* registry params given on the command line: value and whether set */
    uint64_t pv[9];
    bool pset[9];
} opts;

static const struct option long_opts[] = {
    {"db", required_argument, 0, O_DB},
    {"key", required_argument, 0, O_KEY},
    {"node", required_argument, 0, O_NODE},
    {"listen", required_argument, 0, O_LISTEN},
    {"endpoint", required_argument, 0, O_ENDPOINT},
    {"price", required_argument, 0, O_PRICE},
    {"worker-fee", required_argument, 0, O_FEE},
    {"mult-prompt", required_argument, 0, O_MP},
    {"mult-cached", required_argument, 0, O_MC},
    {"mult-completion", required_argument, 0, O_MCO},
    {"min-client-stake", required_argument, 0, O_MCS},
    {"min-proxy-stake", required_argument, 0, O_MPS},
    {"client-close-delay", required_argument, 0, O_CCD},
    {"proxy-close-delay", required_argument, 0, O_PCD},
    {"to", required_argument, 0, O_TO},
    {"count", required_argument, 0, O_COUNT},
    {"acks", required_argument, 0, O_ACKS},
    {"txs", required_argument, 0, O_TXS},
    {0, 0, 0, 0},
};

/* Parses flags; positional arguments stay in argv[optind..]. 0, or 2 for bad usage. */
static int parse(int argc, char **argv, opts *o) {
    int c;
    optind = 1;
    snprintf(o->host, sizeof o->host, "127.0.0.1");
    o->port = 8545;
    o->txs = 20000;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_DB: o->db = optarg; break;
        case O_KEY: o->key = optarg; break;
        case O_NODE: o->node = optarg; break;
        case O_LISTEN: ok = args_hostport("--listen", optarg, o->host, sizeof o->host, &o->port); break;
        case O_ENDPOINT: o->endpoint = optarg; break;
        case O_TO: o->to = optarg; break;
        case O_ACKS: o->acks = optarg; break;
        case O_COUNT: ok = args_u64("--count", optarg, &o->count); break;
        case O_TXS: ok = args_u64("--txs", optarg, &o->txs) && o->txs > 0; break;
        default:
            if (c >= O_PRICE && c <= O_PCD) {
                ok = args_u64(long_opts[c - O_DB].name, optarg, &o->pv[c - O_PRICE]);
                o->pset[c - O_PRICE] = true;
                break;
            }
            return 2;
        }
        if (!ok) return 2;
    }
    return 0;
}

static int need(const char *v, const char *flag, const char *action) {
    if (v) return 0;
    fprintf(stderr, "veil chain %s: %s is required\n", action, flag);
    return 2;
}

/* ---- the node ---- */

static int do_init(opts *o) {
    keypair k;
    if (keys_load(o->key, &k)) return 1;
    ledger *l = ledger_create(o->db, k.public_key, (uint64_t)time(NULL));
    keys_wipe(&k);
    if (!l) return 1;
    block_header t = ledger_tip(l);
    char h[65];
    hex_encode(t.hash, 32, h);
    printf("created %s\ngenesis %s\n", o->db, h);
    ledger_close(l);
    return 0;
}

static int do_serve(opts *o) {
    ledger *l = ledger_open(o->db);
    if (!l) return 1;
    chain_server *s = chain_server_new(l, o->host, o->port);
    if (!s) {
        ledger_close(l);
        return 1;
    }
    if (strchr(o->host, ':')) printf("ready: http://[%s]:%u\n", o->host, (unsigned)chain_server_port(s));
    else printf("ready: http://%s:%u\n", o->host, (unsigned)chain_server_port(s));
    fflush(stdout);
    int rc = chain_server_run(s);
    chain_server_free(s);
    ledger_close(l);
    return rc ? 1 : 0;
}

static int do_verify(opts *o) {
    replay_stats st;
    char h[65];
    store *s = store_open(o->db, NULL, 0, true);
    state *state = s ? replay_store(s, true, &st) : NULL;
    if (!state) {
        store_close(s);
        err_prefix("%s", o->db);
        return 1;
    }
    hex_encode(st.tip.hash, 32, h);
    printf("ok: %" PRIu64 " blocks, %" PRIu64 " transactions, %zu accounts, %zu channels, supply %" PRIu64
           ", tip %" PRIu64 " %s\n",
           st.blocks, st.txs, state_naccounts(state), state_nchannels(state), state_supply(state), st.tip.height, h);
    state_free(state);
    store_close(s);
    return 0;
}

/* ---- commands against a node ---- */

static int do_status(chain *c) {
    chain_tip t;
    char h[65];
    if (chain_cli_check(chain_tip_of(c, &t))) return 1;
    hex_encode(t.hash, 32, h);
    printf("height %" PRIu64 "\ntime   %" PRIu64 "\nhash   %s\n", t.height, t.time, h);
    return 0;
}

static int do_move(chain *c, opts *o, int argc, char **argv, bool mint) {
    ton_addr to;
    uint64_t amount;
    keypair k;
    chain_ack ack;
    if (argc - optind != 3) {
        fprintf(stderr, "veil chain %s: expected ADDRESS AMOUNT\n", argv[optind]);
        return 2;
    }
    if (addr_parse(argv[optind + 1], &to, NULL)) {
        fprintf(stderr, "veil chain: address '%s': %s\n", argv[optind + 1], err_msg());
        return 2;
    }
    if (!args_u64("AMOUNT", argv[optind + 2], &amount)) return 2;
    if (keys_load(o->key, &k)) return 1;
    int rc = mint ? chain_mint(c, &k, &to, amount, &ack) : chain_transfer(c, &k, &to, amount, &ack);
    keys_wipe(&k);
    if (chain_cli_check(rc)) return 1;
    chain_cli_print_ack(mint ? "minted" : "transferred", &ack);
    return 0;
}

static void print_registry(const registry *r) {
    const registry_params *p = &r->params;
    char h[65];
    hex_encode(r->owner, 32, h);
    printf("owner               %s\nprice_per_token     %" PRIu64 "\nworker_fee_per_token %" PRIu64
           "\nmult_prompt         %" PRIu32 "\nmult_cached         %" PRIu32 "\nmult_completion     %" PRIu32
           "\nmin_client_stake    %" PRIu64 "\nmin_proxy_stake     %" PRIu64 "\nclient_close_delay  %" PRIu32
           "\nproxy_close_delay   %" PRIu32 "\n",
           h, p->price_per_token, p->worker_fee_per_token, p->mult_prompt, p->mult_cached, p->mult_completion,
           p->min_client_stake, p->min_proxy_stake, p->client_close_delay, p->proxy_close_delay);
    for (int l = 1; l <= REGISTRY_NLISTS; l++)
        for (size_t i = 0; i < r->counts[l - 1]; i++) {
            hex_encode(r->lists[l - 1][i].key, 32, h);
            printf("%-11s %s%s%s\n", registry_list_name((registry_list)l), h, l == REGISTRY_PROXY ? " " : "",
                   r->lists[l - 1][i].endpoint);
        }
}

static int do_params(chain *c, opts *o) {
    registry r;
    keypair k;
    chain_ack ack;
    if (chain_cli_check(chain_registry(c, &r))) return 1;
    registry_params p = r.params;
    registry_free(&r);
    uint64_t *u64s[] = {&p.price_per_token, &p.worker_fee_per_token, NULL, NULL, NULL,
                        &p.min_client_stake, &p.min_proxy_stake, NULL, NULL};
    uint32_t *u32s[] = {NULL, NULL, &p.mult_prompt, &p.mult_cached, &p.mult_completion,
                        NULL, NULL, &p.client_close_delay, &p.proxy_close_delay};
    for (int i = 0; i < 9; i++) {
        if (!o->pset[i]) continue;
        if (u64s[i]) *u64s[i] = o->pv[i];
        else if (o->pv[i] > UINT32_MAX) {
            fprintf(stderr, "veil chain: --%s %" PRIu64 " is above 2^32-1\n", long_opts[O_PRICE - O_DB + i].name,
                    o->pv[i]);
            return 2;
        } else *u32s[i] = (uint32_t)o->pv[i];
    }
    if (registry_check_params(&p)) {
        fprintf(stderr, "veil chain: %s\n", err_msg());
        return 2;
    }
    if (keys_load(o->key, &k)) return 1;
    int rc = chain_set_params(c, &k, &p, &ack);
    keys_wipe(&k);
    if (chain_cli_check(rc)) return 1;
    chain_cli_print_ack("params set", &ack);
    return 0;
}

static int do_registry(chain *c, opts *o, int argc, char **argv) {
    const char *action = optind + 1 < argc ? argv[optind + 1] : "";
    registry r;
    registry_list l;
    uint8_t key[32];
    keypair k;
    chain_ack ack;
    if (strcmp(action, "show") == 0) {
        if (chain_cli_check(chain_registry(c, &r))) return 1;
        print_registry(&r);
        registry_free(&r);
        return 0;
    }
    if (strcmp(action, "params") == 0) return need(o->key, "--key", "registry params") ?: do_params(c, o);
    bool set = strcmp(action, "set") == 0;
    if (!set && strcmp(action, "del") != 0) {
        fprintf(stderr, "veil chain registry: expected show, set, del or params, got '%s'\n", action);
        return 2;
    }
    if (argc - optind != 4 || registry_list_parse(argv[optind + 2], &l) ||
        hex_decode(argv[optind + 3], key, 32, "registry key")) {
        fprintf(stderr, "veil chain registry %s: expected LIST HEX (64 hex digits)%s%s\n", action,
                argc - optind == 4 ? ": " : "", argc - optind == 4 ? err_msg() : "");
        return 2;
    }
    if (set && (l == REGISTRY_PROXY) != (o->endpoint != NULL)) {
        fprintf(stderr, "veil chain registry set: --endpoint is for (and required by) the proxy list\n");
        return 2;
    }
    if (need(o->key, "--key", "registry")) return 2;
    if (keys_load(o->key, &k)) return 1;
    int rc = set ? chain_registry_set(c, &k, l, key, o->endpoint, &ack) : chain_registry_del(c, &k, l, key, &ack);
    keys_wipe(&k);
    if (chain_cli_check(rc)) return 1;
    chain_cli_print_ack(set ? "registry entry set" : "registry entry deleted", &ack);
    return 0;
}

/* The crash test's loader: sequential transfers, each acknowledged hash appended and flushed
 * to the acks file before the next is sent. Stops at the first failure (the node died). */
static int do_load(chain *c, opts *o) {
    keypair k;
    ton_addr to;
    chain_ack ack;
    char h[65];
    if (addr_parse(o->to, &to, NULL)) {
        fprintf(stderr, "veil chain load: --to: %s\n", err_msg());
        return 2;
    }
    FILE *f = fopen(o->acks, "a");
    if (!f) {
        fprintf(stderr, "veil chain load: %s: cannot open\n", o->acks);
        return 1;
    }
    if (keys_load(o->key, &k)) {
        fclose(f);
        return 1;
    }
    uint64_t n = 0;
    ton_addr self;
    account me;
    /* the seqno is read once and then counted here: one request per transaction */
    addr_of_wallet(k.public_key, &self);
    int rc = chain_account(c, &self, &me);
    for (; rc == STATE_OK && n < o->count; n++) {
        tx t = {.op = TX_TRANSFER, .to = to, .amount = 1, .seqno = me.seqno + n};
        cell *signed_tx = tx_sign(&t, &k);
        rc = signed_tx ? chain_submit(c, signed_tx, &ack) : STATE_NO_MEMORY;
        cell_unref(signed_tx);
        if (rc != STATE_OK) break;
        hex_encode(ack.hash, 32, h);
        fprintf(f, "%s\n", h);
        fflush(f);
    }
    keys_wipe(&k);
    fclose(f);
    printf("sent %" PRIu64 " transactions\n", n);
    return chain_cli_check(rc);
}

static int do_check_acks(chain *c, opts *o) {
    FILE *f = fopen(o->acks, "r");
    char line[128];
    uint8_t h[32];
    uint64_t n = 0, missing = 0;
    chain_ack ack;
    bool found;
    if (!f) {
        fprintf(stderr, "veil chain check-acks: %s: cannot open\n", o->acks);
        return 1;
    }
    for (; fgets(line, sizeof line, f); n++) {
        line[strcspn(line, "\n")] = 0;
        if (hex_decode(line, h, 32, "acknowledged hash") || chain_cli_check(chain_find_tx(c, h, &ack, &found))) {
            fclose(f);
            return 1;
        }
        if (!found) {
            fprintf(stderr, "veil chain check-acks: transaction %s was acknowledged but is not in the ledger\n", line);
            missing++;
        }
    }
    fclose(f);
    printf("%" PRIu64 " acknowledged, %" PRIu64 " missing\n", n, missing);
    return missing ? 1 : 0;
}

/* ---- bench (bench/README.md "Ledger") ---- */

static int bench_vouchers(uint64_t n) {
    keypair k;
    ton_addr ch = {0, {0x11}};
    uint8_t seed[32] = {1};
    cell **v = calloc(n, sizeof *v);
    if (!v || keys_from_seed(seed, &k)) return err_set("out of memory");
    for (uint64_t i = 0; i < n; i++)
        if (!(v[i] = chain_voucher(&k, CHANNEL_CHARGE, &ch, i + 1, i))) return -1;
    double t0 = clock_now();
    uint64_t ok = 0;
    for (uint64_t i = 0; i < n; i++) {
        voucher_expect e = {VOUCHER_OP_CHARGE, k.public_key, &ch, i, UINT64_MAX};
        ok += voucher_verify(v[i], &e, NULL) == VOUCHER_OK;
    }
    double dt = clock_now() - t0;
    /* the signature check alone, to show what parsing and the other checks add */
    voucher one;
    if (voucher_parse(v[n - 1], &one) != VOUCHER_OK) return -1;
    const uint8_t *payload_hash = cell_hash(cell_child(v[n - 1], 0));
    double t1 = clock_now();
    for (uint64_t i = 0; i < n; i++) ok += keys_verify(k.public_key, payload_hash, one.signature);
    double dt_sig = clock_now() - t1;
    for (uint64_t i = 0; i < n; i++) cell_unref(v[i]);
    free(v);
    if (ok != 2 * n) return err_set("bench: %" PRIu64 " of %" PRIu64 " checks failed", 2 * n - ok, 2 * n);
    printf("vouchers verified      %10.0f /s  (%" PRIu64 " vouchers, one core)\n", (double)n / dt, n);
    printf("  Ed25519 check alone  %10.0f /s\n", (double)n / dt_sig);
    return 0;
}

/* Transfers from `senders` funded keys, signed beforehand (a node receives them signed) and
 * then applied and committed `batch` at a time; *rate is transactions per second. */
static int bench_commit(ledger *l, keypair *keys, uint64_t *seqnos, int senders, const ton_addr *to, uint64_t n,
                        uint64_t batch, double *rate) {
    ledger_ack ack;
    int rc = -1;
    uint64_t made = 0;
    cell **cells = calloc(n, sizeof *cells);
    if (!cells) return err_set("out of memory");
    for (; made < n; made++) {
        int s = (int)(made % (uint64_t)senders);
        tx t = {.op = TX_TRANSFER, .to = *to, .amount = 1, .seqno = seqnos[s]++};
        if (!(cells[made] = tx_sign(&t, &keys[s]))) goto done;
    }
    double t0 = clock_now();
    for (uint64_t i = 0; i < n; i++) {
        if (ledger_submit(l, cells[i], (uint64_t)time(NULL), &ack) != STATE_OK) goto done;
        if (((i + 1) % batch == 0 || i + 1 == n) && ledger_commit(l)) goto done;
    }
    *rate = (double)n / (clock_now() - t0);
    rc = 0;
done:
    for (uint64_t i = 0; i < made; i++) cell_unref(cells[i]);
    free(cells);
    return rc;
}

static int cmd_chain_bench(const char *db, uint64_t txs) {
    enum { SENDERS = 64 };
    char path[4096];
    keypair owner, keys[SENDERS];
    uint64_t seqnos[SENDERS] = {0}, total = 0;
    uint8_t seed[32];
    ton_addr sink;
    ledger_ack ack;
    ledger *l = NULL;
    int rc = 1;
    snprintf(path, sizeof path, "%s", db ? db : "");
    if (!db) snprintf(path, sizeof path, "%s/veil-ledger-bench-%d.db", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                      (int)getpid());
    if (bench_vouchers(txs)) goto done;
    memset(seed, 0xee, 32);
    keys_from_seed(seed, &owner);
    if (!(l = ledger_create(path, owner.public_key, (uint64_t)time(NULL)))) goto done;
    for (int i = 0; i < SENDERS; i++) {
        memset(seed, i + 1, 32);
        keys_from_seed(seed, &keys[i]);
        ton_addr a;
        addr_of_wallet(keys[i].public_key, &a);
        tx t = {.op = TX_MINT, .to = a, .amount = 1000000000000ull, .seqno = (uint64_t)i};
        cell *c = tx_sign(&t, &owner);
        int st = c ? ledger_submit(l, c, (uint64_t)time(NULL), &ack) : STATE_NO_MEMORY;
        cell_unref(c);
        if (st != STATE_OK) goto done;
    }
    if (ledger_commit(l)) goto done;
    addr_of_wallet(owner.public_key, &sink);
    static const uint64_t batches[] = {1, 16, 256, 4096};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        /* one transaction per fsync is slow: fewer of them */
        uint64_t n = batches[b] == 1 ? (txs < 500 ? txs : 500) : txs;
        double r = 0;
        if (bench_commit(l, keys, seqnos, SENDERS, &sink, n, batches[b], &r)) goto done;
        total += n;
        printf("durable txs, block of %-5" PRIu64 "%9.0f /s  (%" PRIu64 " transfers, synchronous=FULL)\n",
               batches[b], r, n);
    }
    ledger_close(l);
    l = NULL;
    /* closing checkpoints the WAL into the main file, so this is what the history takes */
    printf("disk per transaction   %10.1f bytes (%" PRIu64 " bytes for %" PRIu64 " transactions)\n",
           (double)store_disk_bytes(path) / (double)(total + SENDERS), store_disk_bytes(path), total + SENDERS);
    rc = 0;
done:
    if (rc) fprintf(stderr, "veil chain bench: %s\n", err_msg());
    ledger_close(l);
    if (!db) {
        char wal[4200];
        unlink(path);
        snprintf(wal, sizeof wal, "%s-wal", path);
        unlink(wal);
        snprintf(wal, sizeof wal, "%s-shm", path);
        unlink(wal);
    }
    return rc;
}

int cmd_chain(int argc, char **argv) {
    opts o = {0};
    int rc;
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if ((rc = parse(argc, argv, &o))) {
        usage(stderr);
        return rc;
    }
    const char *action = optind < argc ? argv[optind] : "";
    bool local = strcmp(action, "init") == 0 || strcmp(action, "serve") == 0 || strcmp(action, "verify") == 0;
    if (local) {
        if (argc - optind != 1) {
            fprintf(stderr, "veil chain %s: unexpected argument '%s'\n", action, argv[optind + 1]);
            return 2;
        }
        if ((rc = need(o.db, "--db", action)) || (action[0] == 'i' && (rc = need(o.key, "--key", action))))
            return rc;
        rc = action[0] == 'i' ? do_init(&o) : action[0] == 's' ? do_serve(&o) : do_verify(&o);
        if (rc == 1) fprintf(stderr, "veil chain %s: %s\n", action, err_msg());
        return rc;
    }
    if (strcmp(action, "bench") == 0) return cmd_chain_bench(o.db, o.txs);
    static const char *remote[] = {"status", "mint", "transfer", "registry", "load", "check-acks"};
    size_t i = 0;
    while (i < sizeof remote / sizeof remote[0] && strcmp(action, remote[i]) != 0) i++;
    if (i == sizeof remote / sizeof remote[0]) {
        if (*action) fprintf(stderr, "veil chain: unknown action '%s'\n", action);
        usage(stderr);
        return 2;
    }
    if ((rc = need(o.node, "--node", action))) return rc;
    if ((i == 1 || i == 2 || i == 4) && (rc = need(o.key, "--key", action))) return rc;
    if (i == 4 && ((rc = need(o.to, "--to", action)) || (rc = need(o.acks, "--acks", action)))) return rc;
    if (i == 5 && (rc = need(o.acks, "--acks", action))) return rc;
    chain *c = chain_client_open(o.node);
    if (!c) {
        fprintf(stderr, "veil chain: %s\n", err_msg());
        return 2;
    }
    switch (i) {
    case 0: rc = do_status(c); break;
    case 1: rc = do_move(c, &o, argc, argv, true); break;
    case 2: rc = do_move(c, &o, argc, argv, false); break;
    case 3: rc = do_registry(c, &o, argc, argv); break;
    case 4: rc = do_load(c, &o); break;
    default: rc = do_check_acks(c, &o); break;
    }
    if (rc == 1) fprintf(stderr, "veil chain %s: %s\n", action, err_msg());
    chain_close(c);
    return rc;
}
