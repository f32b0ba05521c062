/* `veil devnet`: a whole veil network on one machine, for development and tests: a proxy,
 * N workers (default 2) on one model and a client gateway, each its own process (this same
 * executable, so one measurement), sharing a fresh sim platform key and allow-lists in a
 * state directory. Separate processes because that is what the network is: a worker can be
 * killed (kill -9) without taking the others down, the proxy's memory holds only what the
 * proxy holds, and each role's log is its own.
 *
 * Start order: ledger node (with payments) -> proxy (ports picked by the kernel) -> the
 * ledger's setup (devnet_ledger.h; then "devnet: ledger URL channel ADDRESS" on stdout) ->
 * workers -> gateway, each awaited by its "ready:" line; then "ready: http://..." on stdout. SIGINT/SIGTERM: SIGTERM to the gateway,
 * workers and proxy in that order, wait for each (SIGKILL after a grace period), exit 0. A
 * child that dies meanwhile is reported and not restarted. */
#ifndef VEIL_DEVNET_H
#define VEIL_DEVNET_H

#include <stdbool.h>

typedef struct devnet_config {
    const char *model_path;   /* NULL: the bundled model (./models, else beside the binary) */
    const char *listen;       /* the gateway's HOST:PORT */
    int n_workers;
    int threads;              /* per worker */
    const char *device;       /* --device for every worker; NULL: their default (cpu) */
    const char *dir;          /* state directory; NULL: a fresh one under $TMPDIR, removed at exit */
    const char *log_dir;      /* NULL: children log to our stderr; else DIR/proxy.log, ... */
    const char *dump_frames;  /* passed to the proxy (debugging, the canary test) */
    const char *peer_timeout; /* --peer-timeout for every child; NULL: their default */
    const char *max_evidence_age; /* --max-evidence-age for every child; NULL: their default */
    const char *exe;          /* the veil executable (default /proc/self/exe) */
    bool payments;            /* a ledger node, funded demo wallets and a charge channel */
} devnet_config;

/* Runs until SIGINT/SIGTERM; 0, or -1 with err_msg(). */
int devnet_run(const devnet_config *cfg);

#endif
