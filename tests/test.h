/* Minimal test harness: TEST() registers a function at load time, CHECK*() record failures
 * without stopping the test, SKIP() marks a test skipped (e.g. when ../shared is absent).
 * tests/test_main.c runs everything and ends with the line "N passed, N failed, N skipped". */
#ifndef VEIL_TEST_H
#define VEIL_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, const char *file, test_fn fn);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void test_skip(const char *why);

/* Path of the shared data folder (env VEIL_SHARED, else ../shared), or NULL when absent. */
const char *test_shared_dir(void);
/* Joins the shared folder and a relative path into a static buffer; NULL when absent. */
const char *test_shared_path(const char *rel);
/* A fresh temporary directory for this test run (removed at exit). */
const char *test_tmpdir(void);
/* test_tmpdir()/name in one of 8 rotating static buffers. */
const char *test_tmp_path(const char *name);
/* True when both files exist and hold the same bytes. */
bool test_same_file(const char *a, const char *b);
/* This process's resident memory now (not the peak), from /proc/self/statm; 0 without it. */
uint64_t test_rss_now(void);

#define TEST(name)                                                                       \
    static void name(void);                                                              \
    __attribute__((constructor)) static void test_reg_##name(void) {                     \
        test_register(#name, __FILE__, name);                                            \
    }                                                                                    \
    static void name(void)

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                  \
    } while (0)

#define CHECK_MSG(cond, ...)                                                             \
    do {                                                                                 \
        if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__);                         \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                               \
    do {                                                                                 \
        long long va_ = (long long)(a), vb_ = (long long)(b);                            \
        if (va_ != vb_)                                                                  \
            test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, va_, vb_);   \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                               \
    do {                                                                                 \
        const char *sa_ = (a), *sb_ = (b);                                               \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0)                                       \
            test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,          \
                      sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                       \
    } while (0)

#define SKIP(why)                                                                        \
    do {                                                                                 \
        test_skip(why);                                                                  \
        return;                                                                          \
    } while (0)

/* Skips the calling test when ../shared is not there (a user's fresh clone). */
#define NEED_SHARED()                                                                    \
    do {                                                                                 \
        if (!test_shared_dir()) SKIP("needs ../shared (not present in this checkout)");  \
    } while (0)

#endif
