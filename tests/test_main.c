/* Runs every registered test (or those whose name contains one of argv's words) and prints
 * one line per test plus the closing "N passed, N failed, N skipped" line. */
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 4096

struct test_case {
    const char *name, *file;
    test_fn fn;
};

static struct test_case tests[MAX_TESTS];
static int n_tests;
static int cur_failures;
static const char *cur_skip;

void test_register(const char *name, const char *file, test_fn fn) {
    if (n_tests < MAX_TESTS) tests[n_tests++] = (struct test_case){name, file, fn};
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    cur_failures++;
    if (cur_failures > 20) return; /* one broken loop should not flood the log */
    fprintf(stdout, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

void test_skip(const char *why) { cur_skip = why; }

const char *test_shared_dir(void) {
    static char path[4096];
    static int probed;
    if (!probed) {
        const char *env = getenv("VEIL_SHARED");
        struct stat st;
        probed = 1;
        snprintf(path, sizeof path, "%s", env && *env ? env : "../shared");
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) path[0] = 0;
    }
    return path[0] ? path : NULL;
}

const char *test_shared_path(const char *rel) {
    static char buf[4][4096];
    static int slot;
    const char *dir = test_shared_dir();
    if (!dir) return NULL;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", dir, rel);
    return buf[slot];
}

static char tmpdir[256];

static void remove_tmpdir(void) {
    char cmd[300];
    if (!tmpdir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

const char *test_tmpdir(void) {
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/veil-test-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

const char *test_tmp_path(const char *name) {
    static char buf[8][512];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", test_tmpdir(), name);
    return buf[slot];
}

bool test_same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = false;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

uint64_t test_rss_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int selected(const char *name, int argc, char **argv) {
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < n_tests; i++) {
        if (!selected(tests[i].name, argc, argv)) continue;
        cur_failures = 0;
        cur_skip = NULL;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        tests[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (cur_failures) {
            printf("FAIL %s (%s)\n", tests[i].name, tests[i].file);
            failed++;
        } else if (cur_skip) {
            printf("SKIP %s: %s\n", tests[i].name, cur_skip);
            skipped++;
        } else {
            /* slow tests show their time, so the suite's budget stays visible */
            if (ms >= 500) printf("ok   %s (%.1f s)\n", tests[i].name, ms / 1e3);
            else printf("ok   %s\n", tests[i].name);
            passed++;
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
