/* veil wallet new|show: make a wallet key (a private key file) and show its address. The key
 * handling and address rules are src/ledger's (docs/PAYMENTS.md); this file parses flags,
 * picks the default key path and prints. */
#include "base/err.h"
#include "base/hex.h"
#include "cli/args.h"
#include "api/chain_client.h"
#include "cli/commands.h"
#include "ledger/addr.h"
#include "ledger/keys.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fprintf(f, "usage: veil wallet new [--key PATH]\n"
               "       veil wallet show [--key PATH]\n"
               "       veil wallet balance [--key PATH] --node URL\n\n"
               "new   creates a new Ed25519 wallet key in a file only you can read (mode 0600;\n"
               "      an existing file is never overwritten) and prints its address\n"
               "show  prints the address and public key of an existing wallet key\n"
               "balance  prints the wallet's balance (nano-units) and seqno on a ledger node\n"
               "      (veil chain serve; URL as its ready line prints it, http://HOST:PORT)\n\n"
               "The address is the key's TON wallet v4r2 address on workchain 0, the same on\n"
               "veil's local ledger and on TON (docs/PAYMENTS.md). Output lines:\n"
               "  address  user-friendly form (non-bounceable, as wallets show it)\n"
               "  raw      workchain:hash form\n"
               "  public   the Ed25519 public key, hex\n"
               "  key      the key file\n\n"
               "  --key PATH   the key file (default $VEIL_HOME/wallet.key, VEIL_HOME being\n"
               "               ~/.veil when unset; `new` creates that folder, mode 0700)\n"
               "  --node URL   the ledger node (balance)\n"
               "  -h, --help   show this help\n\n"
               "A key file that group or others can read or write is refused.\n"
               "Exit status: 0 on success, 1 when the key cannot be made or read, 2 for bad\n"
               "usage.\n");
}

/* The default key path; `make_dir` creates its folder (only that one) when missing. */
static int default_key_path(char *path, size_t size, bool make_dir) {
    char dir[PATH_MAX];
    const char *home = getenv("VEIL_HOME"), *user = getenv("HOME");
    if (home && *home) snprintf(dir, sizeof dir, "%s", home);
    else if (user && *user) snprintf(dir, sizeof dir, "%s/.veil", user);
    else return err_set("neither VEIL_HOME nor HOME is set; give the key file with --key PATH");
    if (make_dir && mkdir(dir, 0700) != 0 && errno != EEXIST) return err_errno("creating %s", dir);
    if ((size_t)snprintf(path, size, "%s/wallet.key", dir) >= size) return err_set("key path under %s is too long", dir);
    return 0;
}

static int print_balance(const keypair *k, const char *url) {
    ton_addr a;
    account acc;
    char text[ADDR_TEXT_LEN];
    chain *c = chain_client_open(url);
    if (!c) return -1;
    addr_of_wallet(k->public_key, &a);
    int rc = chain_account(c, &a, &acc);
    chain_close(c);
    if (rc != STATE_OK) return -1;
    addr_to_text(&a, 0, text);
    printf("address  %s\nbalance  %" PRIu64 "\nseqno    %" PRIu64 "\n", text, acc.balance, acc.seqno);
    return 0;
}

static void print_wallet(const keypair *k, const char *path) {
    ton_addr a;
    char text[ADDR_TEXT_LEN], raw[ADDR_RAW_LEN], pub[65];
    addr_of_wallet(k->public_key, &a);
    addr_to_text(&a, 0, text);
    addr_to_raw(&a, raw);
    hex_encode(k->public_key, 32, pub);
    printf("address  %s\nraw      %s\npublic   %s\nkey      %s\n", text, raw, pub, path);
}

int cmd_wallet(int argc, char **argv) {
    const char *action = NULL, *key = NULL, *node = NULL;
    char path[PATH_MAX];
    keypair k;
    int rc = 1;
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            key = argv[++i];
        } else if (strcmp(argv[i], "--node") == 0 && i + 1 < argc) {
            node = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            if (strcmp(argv[i], "--key") == 0) fprintf(stderr, "veil wallet: --key needs a PATH\n");
            else if (strcmp(argv[i], "--node") == 0) fprintf(stderr, "veil wallet: --node needs a URL\n");
            else fprintf(stderr, "veil wallet: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (action) {
            fprintf(stderr, "veil wallet: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            action = argv[i];
        }
    }
    bool make = action && strcmp(action, "new") == 0, balance = action && strcmp(action, "balance") == 0;
    if (!action || (!make && !balance && strcmp(action, "show") != 0)) {
        if (action) fprintf(stderr, "veil wallet: unknown action '%s' (new, show or balance)\n", action);
        usage(stderr);
        return 2;
    }
    if (balance != (node != NULL)) {
        fprintf(stderr, "veil wallet: --node is for (and required by) balance\n");
        return 2;
    }
    if (key) snprintf(path, sizeof path, "%s", key);
    else if (default_key_path(path, sizeof path, make)) goto done;
    if (make ? keys_generate(&k) || keys_save(path, &k) : keys_load(path, &k)) goto done;
    if (balance ? print_balance(&k, node) : (print_wallet(&k, path), 0)) goto done;
    if (fflush(stdout) != 0) {
        err_errno("writing stdout");
        goto done;
    }
    rc = 0;
done:
    keys_wipe(&k);
    if (rc) fprintf(stderr, "veil wallet: %s\n", err_msg());
    return rc;
}
