/* Flags every network role shares (see node_args.h). */
#include "cli/node_args.h"

#include "base/err.h"
#include "base/flagfile.h"
#include "base/grow.h"
#include "base/slurp.h"
#include "cli/args.h"
#include "net/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool node_args_attest(int opt, const char *arg, node_attest_config *a, bool *bad) {
    long long v;
    float f;
    switch (opt) {
    case NODE_OPT_TEE: a->tee = arg; return true;
    case NODE_OPT_SIM_KEY: a->sim_key = arg; return true;
    case NODE_OPT_MEASUREMENT: a->measurement = arg; return true;
    case NODE_OPT_ALLOW_MEAS: a->allow_measurements = arg; return true;
    case NODE_OPT_TRUST_SIM: a->trust_sim_keys = arg; return true;
    case NODE_OPT_UNVERIFIED_TDX: a->allow_unverified_tdx = true; return true;
    case NODE_OPT_MAX_AGE:
        if (!args_long("--max-evidence-age", arg, 1, 30 * 86400, &v)) *bad = true;
        a->max_age_s = (uint32_t)v;
        return true;
    case NODE_OPT_CONFIG: return true; /* expanded before parsing */
    case NODE_OPT_PEER_TIMEOUT:
        if (!args_float("--peer-timeout", arg, CONN_DEAD_MIN_S, 86400, &f)) *bad = true;
        else conn_set_peer_timeout(f);
        return true;
    default: return false;
    }
}

/* Appends the flags of one config file to *v (*n entries, room for *cap). */
static int read_config(const char *path, const struct option *opts, char ***v, size_t *n,
                       size_t *cap) {
    size_t len;
    char *text = slurp_file(path, &len);
    int rc = text ? flagfile_parse(text, len, path, opts, v, n, cap) : -1;
    free(text);
    return rc;
}

int node_args_expand(int argc, char **argv, const struct option *opts, int *out_argc,
                     char ***out_argv) {
    char **v = NULL;
    size_t n = 0, cap = 0;
    if (grow(&v, &cap, 1, sizeof *v, (size_t)argc + 1, "arguments") != 0) goto fail;
    if (!(v[n] = strdup(argv[0]))) goto oom;
    n++;
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0) path = argv[i] + 9;
        if (path && read_config(path, opts, &v, &n, &cap) != 0) {
            err_prefix("--config");
            goto fail;
        }
    }
    if (grow(&v, &cap, n + (size_t)argc, sizeof *v, 16, "arguments") != 0) goto fail;
    for (int i = 1; i < argc; i++) {
        if (!(v[n] = strdup(argv[i]))) goto oom;
        n++;
    }
    v[n] = NULL;
    *out_argc = (int)n;
    *out_argv = v;
    return 0;
oom:
    err_set("out of memory");
fail:
    fprintf(stderr, "veil: %s\n", err_msg());
    node_args_free((int)n, v);
    return -1;
}

void node_args_free(int argc, char **argv) {
    if (!argv) return;
    for (int i = 0; i < argc; i++) free(argv[i]);
    free(argv);
}

int node_args_main(int argc, char **argv, const struct option *opts, void (*usage)(FILE *),
                   int (*run)(int, char **)) {
    int n, rc;
    char **v;
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (node_args_expand(argc, argv, opts, &n, &v) != 0) return 2;
    rc = run(n, v);
    node_args_free(n, v);
    return rc;
}
