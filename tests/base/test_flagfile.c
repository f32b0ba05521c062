/* Tests for config-file text to flags (base/flagfile.h). */
#include "base/err.h"
#include "base/flagfile.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* The flags of text checked against opts (NULL: none) joined by '|', or "error: MESSAGE" (in a
 * static buffer). */
static const char *parse_opts(const char *text, size_t len, const struct option *opts) {
    static char out[16384];
    char **v = NULL;
    size_t n = 0, cap = 0;
    int rc = flagfile_parse(text, len, "f.conf", opts, &v, &n, &cap);
    out[0] = 0;
    if (rc != 0) snprintf(out, sizeof out, "error: %s", err_msg());
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            if (i) strcat(out, "|");
            strncat(out, v[i], sizeof out - strlen(out) - 1);
        }
        free(v[i]);
    }
    free(v);
    return out;
}

static const char *parse(const char *text, size_t len) { return parse_opts(text, len, NULL); }

#define P(s) parse(s, sizeof(s) - 1)

TEST(flagfile_flags_with_and_without_values) {
    CHECK_EQ_STR(P("proxy 127.0.0.1:7002\nallow-unverified-tdx\nmax-evidence-age\t60\n"),
                 "--proxy=127.0.0.1:7002|--allow-unverified-tdx|--max-evidence-age=60");
    /* the value is the rest of the line: inner spaces kept, outer ones dropped, no quoting */
    CHECK_EQ_STR(P("  sim-key   /a b/k \"x\"  \t\n"), "--sim-key=/a b/k \"x\"");
    CHECK_EQ_STR(P("x 'a'"), "--x='a'");
    CHECK_EQ_STR(P("tee ="), "--tee==");
}

TEST(flagfile_comments_blank_lines_and_line_ends) {
    CHECK_EQ_STR(P(""), "");
    CHECK_EQ_STR(P("\n\n  \t\n# only a comment\n   # indented\n"), "");
    CHECK_EQ_STR(P("tee sim # the default\nproxy a:1#b\n"), "--tee=sim|--proxy=a:1#b");
    CHECK(strstr(P("tee#sim\n"), "error: f.conf:1: a flag is its name")); /* '#' inside a word */
    CHECK_EQ_STR(P("tee sim\r\nproxy a:1\r\n"), "--tee=sim|--proxy=a:1");
    CHECK_EQ_STR(P("tee sim\nproxy a:1"), "--tee=sim|--proxy=a:1"); /* no newline at the end */
    CHECK_EQ_STR(P("\xc3\xa9t\xc3\xa9 1"), "error: f.conf:1: a flag is its name (lower-case "
                 "letters, digits and '-', no leading dashes), then a space and its value, e.g. "
                 "'proxy 127.0.0.1:7002'");
}

TEST(flagfile_errors_name_the_line) {
    CHECK(strstr(P("tee sim\n\n--proxy a:1\n"), "error: f.conf:3: a flag is its name"));
    CHECK(strstr(P("proxy=a:1\n"), "error: f.conf:1: a flag is its name"));
    CHECK(strstr(P("-x\n"), "error: f.conf:1:"));
    CHECK(strstr(P("Tee sim\n"), "error: f.conf:1:"));
    CHECK_EQ_STR(P("# c\nconfig other.conf\n"),
                 "error: f.conf:2: a config file cannot name another config file");
    CHECK_EQ_STR(P("tee s\x1bim\n"), "error: f.conf:1: control character in the value");
    CHECK_EQ_STR(P("tee s\rim\n"), "error: f.conf:1: control character in the value");
    CHECK_EQ_STR(P("tee sim\n\nproxy a\0b\n"), "error: f.conf:3: NUL byte");
    CHECK_EQ_STR(P("\0"), "error: f.conf:1: NUL byte");
}

TEST(flagfile_overlong_lines) {
    size_t len = FLAGFILE_MAX_LINE + 10;
    char *text = malloc(len + 1);
    CHECK(text);
    if (!text) return;
    memcpy(text, "tee sim\nproxy ", 14);
    /* line 2 exactly the limit (plus "\r\n"): accepted */
    memset(text + 14, 'a', FLAGFILE_MAX_LINE - 6);
    memcpy(text + 8 + FLAGFILE_MAX_LINE, "\r\n", 2);
    CHECK(strncmp(parse(text, len), "--tee=sim|--proxy=aaa", 21) == 0);
    CHECK_EQ_INT(strlen(parse(text, len)), 12 + FLAGFILE_MAX_LINE);
    /* one byte more: rejected, even as a comment */
    text[8 + FLAGFILE_MAX_LINE] = 'a';
    CHECK_EQ_STR(parse(text, len - 1), "error: f.conf:2: line longer than 4096 bytes");
    text[8] = '#';
    CHECK_EQ_STR(parse(text, len - 1), "error: f.conf:2: line longer than 4096 bytes");
    free(text);
}

TEST(flagfile_appends_and_keeps_flags_on_error) {
    char **v = NULL;
    size_t n = 0, cap = 0;
    CHECK_EQ_INT(flagfile_parse("a 1\nb", 5, "one", NULL, &v, &n, &cap), 0);
    CHECK_EQ_INT(flagfile_parse("c\nd 2\n-e\n", 9, "two", NULL, &v, &n, &cap), -1);
    CHECK_EQ_STR(err_msg(), "two:3: a flag is its name (lower-case letters, digits and '-', no "
                            "leading dashes), then a space and its value, e.g. 'proxy "
                            "127.0.0.1:7002'");
    CHECK_EQ_INT(n, 4);
    if (n == 4) {
        CHECK_EQ_STR(v[0], "--a=1");
        CHECK_EQ_STR(v[1], "--b");
        CHECK_EQ_STR(v[2], "--c");
        CHECK_EQ_STR(v[3], "--d=2");
    }
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

TEST(flagfile_checks_flags_against_the_getopt_table) {
    static const struct option opts[] = {{"proxy", required_argument, 0, 1},
                                         {"allow-unverified-tdx", no_argument, 0, 2},
                                         {"max-age", optional_argument, 0, 3},
                                         {0, 0, 0, 0}};
#define PO(s) parse_opts(s, sizeof(s) - 1, opts)
    CHECK_EQ_STR(PO("proxy a:1\nallow-unverified-tdx\nmax-age\nmax-age 5\n"),
                 "--proxy=a:1|--allow-unverified-tdx|--max-age|--max-age=5");
    /* without the table, "proxy" alone would take the next argument as its value */
    CHECK_EQ_STR(PO("# x\nproxy\n"), "error: f.conf:2: 'proxy' needs a value ('proxy VALUE')");
    CHECK_EQ_STR(PO("allow-unverified-tdx yes\n"), "error: f.conf:1: 'allow-unverified-tdx' takes no value");
    CHECK_EQ_STR(PO("proxy a:1\nprox a:1\n"), "error: f.conf:2: unknown flag 'prox'"); /* no abbreviations */
    CHECK_EQ_STR(PO("proxyy 1\n"), "error: f.conf:1: unknown flag 'proxyy'");
#undef PO
}
