/* Flags every network role shares (see node_args.h). */
#include "cli/node_args.h"

#include "base/err.h"
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

/* Appends the flags in one config file to *v (n entries, cap). */
static int read_config(const char *path, char ***v, int *n, int *cap) {
    size_t len;
    char *text = slurp_file(path, &len), *save = NULL;
    int line_no = 0;
    if (!text) {
        fprintf(stderr, "veil: --config: %s\n", err_msg());
        return -1;
    }
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *hash = strchr(line, '#'), *name, *value;
        line_no++;
        if (hash) *hash = 0;
        name = line + strspn(line, " \t\r");
        if (!*name) continue;
        value = name + strcspn(name, " \t\r");
        if (*value) *value++ = 0;
        value += strspn(value, " \t\r");
        value[strcspn(value, "\r")] = 0;
        for (char *end = value + strlen(value); end > value && (end[-1] == ' ' || end[-1] == '\t');) *--end = 0;
        if (*n + 3 > *cap) {
            int nc = *cap * 2 + 16;
            char **nv = realloc(*v, (size_t)nc * sizeof *nv);
            if (!nv) goto oom;
            *v = nv;
            *cap = nc;
        }
        char *flag = malloc(strlen(name) + 3);
        if (!flag) goto oom;
        sprintf(flag, "--%s", name);
        (*v)[(*n)++] = flag;
        if (*value && !((*v)[(*n)++] = strdup(value))) goto oom;
    }
    /* the strings point into nothing of text: it can go */
    free(text);
    return 0;
oom:
    free(text);
    fprintf(stderr, "veil: out of memory reading %s\n", path);
    return -1;
}

int node_args_expand(int argc, char **argv, int *out_argc, char ***out_argv) {
    char **v = NULL;
    int n = 0, cap = 0;
    if (!(v = malloc(((size_t)argc + 1) * sizeof *v))) return -1;
    cap = argc + 1;
    if (!(v[n++] = strdup(argv[0]))) {
        node_args_free(n - 1, v);
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0) path = argv[i] + 9;
        if (path && read_config(path, &v, &n, &cap) != 0) {
            node_args_free(n, v);
            return -1;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (n + 2 > cap) {
            char **nv = realloc(v, (size_t)(cap = cap * 2 + 16) * sizeof *nv);
            if (!nv) {
                node_args_free(n, v);
                return -1;
            }
            v = nv;
        }
        if (!(v[n++] = strdup(argv[i]))) {
            node_args_free(n - 1, v);
            return -1;
        }
    }
    v[n] = NULL;
    *out_argc = n;
    *out_argv = v;
    return 0;
}

void node_args_free(int argc, char **argv) {
    if (!argv) return;
    for (int i = 0; i < argc; i++) free(argv[i]);
    free(argv);
}

int node_args_main(int argc, char **argv, void (*usage)(FILE *), int (*run)(int, char **)) {
    int n, rc;
    char **v;
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (node_args_expand(argc, argv, &n, &v) != 0) return 2;
    rc = run(n, v);
    node_args_free(n, v);
    return rc;
}
