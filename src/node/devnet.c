/* `veil devnet` (see devnet.h): starts and stops the processes of a local network. */
#include "node/devnet.h"

#include "attest/sim.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/hex.h"
#include "node/devnet_ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 300000 /* a worker may load a large model, sanitizer builds are slow */
#define STOP_GRACE_S 40        /* a worker may take its drain timeout (30 s) */
#define MAX_WORKERS 16
#define MAX_ARGS 48

typedef struct child {
    char name[32];
    pid_t pid;
    bool done;
    int status;      /* waitpid's, once done */
} child;

static int write_hex_file(const char *path, const uint8_t v[32], const char *comment) {
    char hex[65];
    FILE *f = fopen(path, "w");
    if (!f) return err_errno("cannot write %s", path);
    hex_encode(v, 32, hex);
    fprintf(f, "# %s\n%s\n", comment, hex);
    if (fclose(f) != 0) return err_errno("cannot write %s", path);
    return 0;
}

/* Puts flag and value (when there is one) in the first free slots of args, a NULL-ended
 * vector that keeps a spare NULL pair for each optional flag. */
static void add_flag(char **args, const char *flag, const char *value) {
    if (!value) return;
    while (*args) args++;
    args[0] = (char *)flag;
    args[1] = (char *)value;
}

/* Starts exe with args; its stdout comes back on *out_fd, its stderr goes to log (or ours). */
static int spawn(child *ch, const char *exe, char *const *args, const char *log, int *out_fd,
                 const sigset_t *old_mask) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return err_errno("pipe");
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return err_errno("fork");
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, old_mask, NULL);
        dup2(p[1], 1);
        if (log) {
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) dup2(fd, 2);
        }
        execv(exe, args);
        fprintf(stderr, "veil devnet: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    ch->pid = pid;
    *out_fd = p[0];
    return 0;
}

/* Reads the child's stdout until its "ready: " line; copies the rest of that line to out. */
static int await_ready(child *ch, int fd, char *out, size_t cap) {
    char line[512];
    size_t n = 0;
    double deadline = clock_now() + READY_TIMEOUT_MS / 1000.0;
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        int left = (int)((deadline - clock_now()) * 1000);
        if (left <= 0) return err_set("%s did not get ready within %d s", ch->name, READY_TIMEOUT_MS / 1000);
        int r = poll(&pf, 1, left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        ssize_t k = read(fd, line + n, sizeof line - 1 - n);
        if (k <= 0) return err_set("%s exited before it was ready (see its log)", ch->name);
        n += (size_t)k;
        line[n] = 0;
        char *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = 0;
            if (strncmp(line, "ready: ", 7) == 0) {
                snprintf(out, cap, "%s", line + 7);
                return 0;
            }
            memmove(line, nl + 1, n - (size_t)(nl + 1 - line) + 1);
            n -= (size_t)(nl + 1 - line);
        }
        if (n == sizeof line - 1) n = 0; /* an endless line: drop it */
    }
}

static int start(child *ch, const char *name, const char *exe, char *const *args,
                 const devnet_config *cfg, char *ready, size_t cap, const sigset_t *old) {
    char log[4096];
    int fd = -1, rc;
    snprintf(ch->name, sizeof ch->name, "%s", name);
    if (cfg->log_dir) snprintf(log, sizeof log, "%s/%s.log", cfg->log_dir, name);
    if (spawn(ch, exe, args, cfg->log_dir ? log : NULL, &fd, old) != 0) return -1;
    rc = await_ready(ch, fd, ready, cap);
    close(fd); /* children print nothing after ready on stdout */
    if (rc == 0) {
        printf("devnet: %s pid %d\n", ch->name, (int)ch->pid);
        fflush(stdout);
    }
    return rc;
}

static void reap(child *kids, int n, bool report) {
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        for (int i = 0; i < n; i++)
            if (kids[i].pid == pid && !kids[i].done) {
                kids[i].done = true;
                kids[i].status = st;
                if (!report) break;
                if (WIFSIGNALED(st))
                    fprintf(stderr, "veil devnet: %s (pid %d) killed by signal %d\n", kids[i].name, (int)pid, WTERMSIG(st));
                else
                    fprintf(stderr, "veil devnet: %s (pid %d) exited with %d\n", kids[i].name, (int)pid, WEXITSTATUS(st));
            }
}

/* SIGTERM to each child in order, waiting for it before the next. Returns how many of those
 * running until now failed to stop cleanly (exit status not 0: a leak under ASan, a crash). */
static int stop_all(child *kids, int n) {
    int failed = 0;
    for (int i = n - 1; i >= 0; i--) {
        double deadline = clock_now() + STOP_GRACE_S;
        if (kids[i].done || kids[i].pid <= 0) continue; /* gone before: already reported */
        kill(kids[i].pid, SIGTERM);
        while (!kids[i].done && clock_now() < deadline) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            reap(kids, n, false);
            if (!kids[i].done) nanosleep(&ts, NULL); /* polling a child's exit, bounded */
        }
        if (!kids[i].done) {
            fprintf(stderr, "veil devnet: %s did not stop in %d s; killing it\n", kids[i].name, STOP_GRACE_S);
            kill(kids[i].pid, SIGKILL);
            waitpid(kids[i].pid, NULL, 0);
            kids[i].done = true;
            failed++;
        } else if (!WIFEXITED(kids[i].status) || WEXITSTATUS(kids[i].status) != 0) {
            fprintf(stderr, "veil devnet: %s (pid %d) did not stop cleanly (status 0x%x)\n",
                    kids[i].name, (int)kids[i].pid, (unsigned)kids[i].status);
            failed++;
        }
    }
    return failed;
}

int devnet_run(const devnet_config *cfg) {
    char dir[4096], key[4200], trust[4200], meas[4200], models[4200], exe[4096];
    char pready[512], cready[512], wport[300], cport[300], threads[16], nw[16];
    char db[4200], accounts_db[4200], client_accounts[4200], lready[512], proxy_key[4200], client_key[4200], worker_key[4200], chan[ADDR_RAW_LEN];
    child kids[MAX_WORKERS + 3];
    ton_addr channel;
    int n_kids = 0, rc = -1;
    bool made_dir = false;
    keypair platform;
    uint8_t m[32];
    sigset_t mask, old;
    ssize_t k;
    memset(kids, 0, sizeof kids);
    if (cfg->n_workers < 1 || cfg->n_workers > MAX_WORKERS)
        return err_set("devnet: 1 to %d workers", MAX_WORKERS);
    if (cfg->exe) snprintf(exe, sizeof exe, "%s", cfg->exe);
    else if ((k = readlink("/proc/self/exe", exe, sizeof exe - 1)) > 0) exe[k] = 0;
    else return err_errno("cannot find the veil executable");
    /* the bundled model: from the working directory (a checkout), else beside the binary */
    const char *model_path = cfg->model_path;
    char bundled[4200];
    if (!model_path) {
        char *slash = strrchr(exe, '/');
        model_path = "models/stories260K.gguf";
        if (access(model_path, R_OK) != 0 && slash) {
            snprintf(bundled, sizeof bundled, "%.*s/../models/stories260K.gguf", (int)(slash - exe), exe);
            model_path = bundled;
        }
    }
    if (cfg->dir) {
        snprintf(dir, sizeof dir, "%s", cfg->dir);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) return err_errno("cannot make %s", dir);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/veil-devnet-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) return err_errno("cannot make a state directory");
        made_dir = true;
    }
    snprintf(key, sizeof key, "%s/platform.key", dir);
    snprintf(trust, sizeof trust, "%s/trusted-sim-keys.txt", dir);
    snprintf(meas, sizeof meas, "%s/measurements.txt", dir);
    snprintf(models, sizeof models, "%s/models.txt", dir);
    if (sim_key_load_or_create(key, &platform) != 0) goto done;
    if (write_hex_file(trust, platform.public_key, "devnet sim platform key") != 0) goto done;
    keys_wipe(&platform);
    if (sim_measure_file(exe, m) != 0 || write_hex_file(meas, m, "SHA-256 of the veil executable") != 0)
        goto done;
    if (sim_measure_file(model_path, m) != 0 || write_hex_file(models, m, model_path) != 0)
        goto done;
    snprintf(db, sizeof db, "%s/ledger.db", dir);
    snprintf(proxy_key, sizeof proxy_key, "%s/proxy.key", dir);
    snprintf(client_key, sizeof client_key, "%s/client.key", dir);
    snprintf(worker_key, sizeof worker_key, "%s/worker.key", dir);
    snprintf(accounts_db, sizeof accounts_db, "%s/proxy-accounts.db", dir);
    snprintf(client_accounts, sizeof client_accounts, "%s/client-accounts.db", dir);
    if (cfg->payments && devnet_ledger_init(dir) != 0) goto done;
    snprintf(threads, sizeof threads, "%d", cfg->threads);
    snprintf(nw, sizeof nw, "%d", cfg->n_workers);

    /* SIGINT/SIGTERM/SIGCHLD are taken synchronously (sigtimedwait) */
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, &old);

#define ATTEST "--sim-key", key, "--trust-sim-keys", trust, "--allow-measurements", meas
    char *largs[] = {exe, "chain", "serve", "--db", db, "--listen", "127.0.0.1:0", NULL};
    if (cfg->payments && start(&kids[n_kids++], "ledger", exe, largs, cfg, lready, sizeof lready, &old) != 0)
        goto done;
    char *pargs[] = {exe, "proxy", "--workers", "127.0.0.1:0", "--clients", "127.0.0.1:0",
                     "--allow-models", models, ATTEST, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                     NULL, NULL, NULL, NULL};
    add_flag(pargs, "--dump-frames", cfg->dump_frames);
    add_flag(pargs, "--peer-timeout", cfg->peer_timeout);
    add_flag(pargs, "--max-evidence-age", cfg->max_evidence_age);
    if (cfg->payments) {
        add_flag(pargs, "--chain", lready);
        add_flag(pargs, "--wallet", proxy_key);
        add_flag(pargs, "--accounts", accounts_db);
    }
    if (start(&kids[n_kids++], "proxy", exe, pargs, cfg, pready, sizeof pready, &old) != 0) goto done;
    if (sscanf(pready, "workers %299s clients %299s", wport, cport) != 2) {
        err_set("devnet: cannot read the proxy's ports from '%s'", pready);
        goto done;
    }
    /* for tools and tests that add nodes of their own */
    printf("devnet: proxy workers %s clients %s dir %s\n", wport, cport, dir);
    if (cfg->payments) {
        if (devnet_ledger_fund(dir, lready, cport, &channel) != 0) goto done;
        addr_to_raw(&channel, chan);
        printf("devnet: ledger %s channel %s\n", lready, chan);
    }
    fflush(stdout);
    for (int i = 0; i < cfg->n_workers; i++) {
        char name[32], wready[512], waccounts[4200];
        char *wargs[] = {exe, "worker", "--model", (char *)model_path, "--proxy", wport,
                         "--threads", threads, ATTEST, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                         NULL, NULL, NULL, NULL};
        add_flag(wargs, "--device", cfg->device);
        add_flag(wargs, "--peer-timeout", cfg->peer_timeout);
        add_flag(wargs, "--max-evidence-age", cfg->max_evidence_age);
        snprintf(name, sizeof name, "worker%d", i + 1);
        snprintf(waccounts, sizeof waccounts, "%s/%s-accounts.db", dir, name);
        if (cfg->payments) {
            add_flag(wargs, "--chain", lready);
            add_flag(wargs, "--wallet", worker_key);
            add_flag(wargs, "--accounts", waccounts);
        }
        if (start(&kids[n_kids++], name, exe, wargs, cfg, wready, sizeof wready, &old) != 0) goto done;
    }
    char *cargs[] = {exe, "client", "--proxy", cport, "--listen", (char *)cfg->listen,
                     "--wait-workers", nw, ATTEST, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                     NULL, NULL};
    add_flag(cargs, "--peer-timeout", cfg->peer_timeout);
    add_flag(cargs, "--max-evidence-age", cfg->max_evidence_age);
    if (cfg->payments) {
        add_flag(cargs, "--chain", lready);
        add_flag(cargs, "--wallet", client_key);
        add_flag(cargs, "--channel", chan);
        add_flag(cargs, "--accounts", client_accounts);
    }
#undef ATTEST
    if (start(&kids[n_kids++], "client", exe, cargs, cfg, cready, sizeof cready, &old) != 0) goto done;
    printf("ready: %s\n", cready);
    fflush(stdout);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&mask, &si);
        if (sig == SIGCHLD) {
            reap(kids, n_kids, true);
            continue;
        }
        if (sig == SIGINT || sig == SIGTERM) {
            fprintf(stderr, "veil devnet: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
    }
    rc = 0;
done:
    if (stop_all(kids, n_kids) > 0 && rc == 0) rc = err_set("devnet: a process did not stop cleanly");
    if (made_dir) {
        unlink(key);
        unlink(trust);
        unlink(meas);
        unlink(models);
        devnet_ledger_remove(dir);
        for (int i = 1; i <= cfg->n_workers; i++)
            for (int j = 0; j < 3; j++) {
                char f[4300];
                snprintf(f, sizeof f, "%s/worker%d-accounts.db%s", dir, i, (const char *[]){"", "-wal", "-shm"}[j]);
                unlink(f);
            }
        rmdir(dir);
    }
    return rc;
}
