/* Flags every network role shares: attestation settings, the dead-peer timeout and config
 * files.
 *
 * Config file (--config FILE): one flag per line, its long name without the dashes, then its
 * value if it takes one ("proxy 127.0.0.1:7001", "allow-measurements m.txt"); '#' starts a
 * comment; blank lines are skipped (the format in full: base/flagfile.h). The file's flags go
 * before the command line's, so the command line wins where both set one. */
#ifndef VEIL_NODE_ARGS_H
#define VEIL_NODE_ARGS_H

#include "node/ident.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

enum {
    NODE_OPT_TEE = 1000, NODE_OPT_SIM_KEY, NODE_OPT_MEASUREMENT, NODE_OPT_ALLOW_MEAS,
    NODE_OPT_TRUST_SIM, NODE_OPT_UNVERIFIED_TDX, NODE_OPT_MAX_AGE, NODE_OPT_CONFIG,
    NODE_OPT_PEER_TIMEOUT,
};

#define NODE_ARGS_OPTIONS                                                                  \
    {"tee", required_argument, 0, NODE_OPT_TEE},                                           \
    {"sim-key", required_argument, 0, NODE_OPT_SIM_KEY},                                   \
    {"measurement", required_argument, 0, NODE_OPT_MEASUREMENT},                           \
    {"allow-measurements", required_argument, 0, NODE_OPT_ALLOW_MEAS},                     \
    {"trust-sim-keys", required_argument, 0, NODE_OPT_TRUST_SIM},                          \
    {"allow-unverified-tdx", no_argument, 0, NODE_OPT_UNVERIFIED_TDX},                     \
    {"max-evidence-age", required_argument, 0, NODE_OPT_MAX_AGE},                          \
    {"config", required_argument, 0, NODE_OPT_CONFIG},                                     \
    {"peer-timeout", required_argument, 0, NODE_OPT_PEER_TIMEOUT}

#define NODE_ARGS_HELP                                                                     \
    "attestation (RA-TLS):\n"                                                              \
    "  --tee sim|tdx             evidence provider (default sim: a software stand-in)\n"   \
    "  --sim-key FILE            sim platform key (made when missing; mode 0600)\n"        \
    "  --measurement HEX         sim: the image hash to claim (default: SHA-256 of veil)\n" \
    "  --allow-measurements FILE peers' allowed measurements, one 64-hex value a line\n"   \
    "                            (default: this node's own)\n"                             \
    "  --trust-sim-keys FILE     sim platform keys to trust (default: this node's own)\n"  \
    "  --allow-unverified-tdx    accept TDX quotes without checking their signature chain\n" \
    "  --max-evidence-age S      reject evidence older than S seconds (default 3600);\n"   \
    "                            this node renews its own every S/2 seconds\n"            \
    "  --config FILE             read flags from FILE: 'name value' per line, # comments\n" \
    "  --peer-timeout S          close a peer silent for S seconds as dead (default 5,\n"   \
    "                            at least 3); its requests fail over elsewhere\n"

/* Handles one of the shared options; false when opt is not one (or its value is bad, with a
 * message on stderr: then *bad is set). --peer-timeout applies to the whole process at once
 * (conn_set_peer_timeout). */
bool node_args_attest(int opt, const char *arg, node_attest_config *a, bool *bad);

/* argv with the flags of every --config FILE put in front of the command line's: a new vector
 * of copies (free with node_args_free). Each file's lines are checked against opts, the role's
 * getopt_long table. -1 with a message on stderr. */
int node_args_expand(int argc, char **argv, const struct option *opts, int *out_argc,
                     char ***out_argv);
void node_args_free(int argc, char **argv);

/* A role's command: -h/--help prints usage on stdout (exit 0); otherwise the --config files are
 * expanded into argv (checked against opts, the table run() parses with) and run() parses and
 * runs it. Returns the exit status. */
int node_args_main(int argc, char **argv, const struct option *opts, void (*usage)(FILE *),
                   int (*run)(int, char **));

#endif
