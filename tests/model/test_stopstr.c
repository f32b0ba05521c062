/* Streaming stop-string matcher: hold-back and release, matches across piece boundaries,
 * overlapping prefixes, which of several stops wins, UTF-8 pieces kept whole, errors, and a
 * randomised comparison of streamed output against a brute-force non-streaming reference. */
#include "test.h"

#include "base/err.h"
#include "model/stopstr.h"

#include <stdint.h>
#include <stdlib.h>

static stopstr *mk(const char *const *stops, int n) {
    stopstr *m = stopstr_new();
    CHECK(m != NULL);
    for (int i = 0; i < n; i++)
        CHECK_MSG(stopstr_add(m, stops[i], strlen(stops[i])) == 0, "%s", err_msg());
    return m;
}

/* Feeds one piece and checks what comes out and what feed returns. */
static void feed_expect(stopstr *m, const char *piece, const char *want, int want_ret) {
    const char *out;
    size_t len;
    int ret = stopstr_feed(m, piece, strlen(piece), &out, &len);
    CHECK_MSG(ret == want_ret, "feed \"%s\": returned %d, want %d", piece, ret, want_ret);
    CHECK_MSG(len == strlen(want) && memcmp(out, want, len) == 0,
              "feed \"%s\": emitted \"%.*s\", want \"%s\"", piece, (int)len, out, want);
}

static void flush_expect(stopstr *m, const char *want) {
    const char *out;
    size_t len;
    stopstr_flush(m, &out, &len);
    CHECK_MSG(len == strlen(want) && memcmp(out, want, len) == 0, "flush: \"%.*s\", want \"%s\"",
              (int)len, out, want);
}

TEST(stopstr_basic_match) {
    const char *stops[] = {"END"};
    stopstr *m = mk(stops, 1);
    feed_expect(m, "helloENDworld", "hello", 1);
    CHECK_EQ_INT(stopstr_matched(m), 0);
    flush_expect(m, ""); /* nothing after a stop */
    stopstr_reset(m);
    CHECK_EQ_INT(stopstr_matched(m), -1);
    feed_expect(m, "hel", "hel", 0);
    feed_expect(m, "loE", "lo", 0);
    feed_expect(m, "N", "", 0);
    feed_expect(m, "Dworld", "", 1);
    stopstr_free(m);
}

TEST(stopstr_holds_back_and_releases) {
    const char *stops[] = {"END"};
    stopstr *m = mk(stops, 1);
    feed_expect(m, "helloEN", "hello", 0);
    feed_expect(m, "X", "ENX", 0); /* the prefix broke off: released at once */
    feed_expect(m, "E", "", 0);
    flush_expect(m, "E"); /* end of text releases the rest */
    CHECK_EQ_INT(stopstr_matched(m), -1);
    stopstr_free(m);

    /* Nothing that could start a stop is held. */
    const char *xyz[] = {"xyz"};
    m = mk(xyz, 1);
    feed_expect(m, "hello", "hello", 0);
    feed_expect(m, "abx", "ab", 0);
    feed_expect(m, "y", "", 0);
    feed_expect(m, "yz", "xyyz", 0);
    flush_expect(m, "");
    stopstr_free(m);
}

TEST(stopstr_overlapping_prefixes) {
    const char *stops[] = {"aab"};
    stopstr *m = mk(stops, 1);
    feed_expect(m, "a", "", 0);
    feed_expect(m, "a", "", 0);
    feed_expect(m, "a", "a", 0); /* "aa" may still become "aab" */
    feed_expect(m, "b", "", 1);
    stopstr_free(m);
    const char *abab[] = {"abac"};
    m = mk(abab, 1);
    feed_expect(m, "xababa", "xab", 0);
    feed_expect(m, "c!", "", 1);
    stopstr_free(m);
}

TEST(stopstr_which_stop_wins) {
    /* The first to complete wins, even if another started earlier. */
    const char *a[] = {"abcd", "bc"};
    stopstr *m = mk(a, 2);
    feed_expect(m, "xabcd", "xa", 1);
    CHECK_EQ_INT(stopstr_matched(m), 1);
    stopstr_free(m);
    /* Completing at the same byte: the longer (earlier start) wins. */
    const char *b[] = {"bc", "abc"};
    m = mk(b, 2);
    feed_expect(m, "xa", "x", 0);
    feed_expect(m, "bcz", "", 1);
    CHECK_EQ_INT(stopstr_matched(m), 1);
    stopstr_free(m);
    /* Identical strings: the one added first. */
    const char *c[] = {"q", "zz", "zz"};
    m = mk(c, 3);
    feed_expect(m, "azzq", "a", 1);
    CHECK_EQ_INT(stopstr_matched(m), 1);
    stopstr_free(m);
    /* Several stops hold back the longest possible start among them. */
    const char *d[] = {"foo", "obar"};
    m = mk(d, 2);
    feed_expect(m, "xfo", "x", 0);  /* "fo" may become "foo" */
    feed_expect(m, "b", "f", 0);    /* now "ob" may become "obar" */
    feed_expect(m, "ar", "", 1);
    CHECK_EQ_INT(stopstr_matched(m), 1);
    stopstr_free(m);
}

/* True when b[0, n) is whole UTF-8 sequences (the test texts are valid UTF-8). */
static bool utf8_whole(const unsigned char *b, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t len = b[i] < 0x80 ? 1 : b[i] >= 0xF0 ? 4 : b[i] >= 0xE0 ? 3 : 2;
        if (i + len > n) return false;
        for (size_t k = 1; k < len; k++)
            if ((b[i + k] & 0xC0) != 0x80) return false;
        i += len;
    }
    return true;
}

TEST(stopstr_utf8_pieces_stay_whole) {
    const char *text = "h\xC3\xA9llo w\xC3\xB6rld \xE2\x86\x92 done \xF0\x9F\x98\x80";
    const char *stops[] = {"\xE2\x86\x92"}; /* U+2192 */
    stopstr *m = mk(stops, 1);
    char all[64] = {0};
    size_t n_all = 0;
    int ret = 0;
    for (size_t i = 0; text[i] && ret == 0; i++) {
        const char *out;
        size_t len;
        ret = stopstr_feed(m, text + i, 1, &out, &len);
        CHECK_MSG(utf8_whole((const unsigned char *)out, len), "piece after byte %zu", i);
        memcpy(all + n_all, out, len);
        n_all += len;
    }
    CHECK_EQ_INT(ret, 1);
    CHECK_EQ_STR(all, "h\xC3\xA9llo w\xC3\xB6rld ");
    stopstr_free(m);

    /* Without stops only unfinished sequences wait; flush gives them back. */
    m = stopstr_new();
    feed_expect(m, "a\xF0\x9F", "a", 0);
    feed_expect(m, "\x98", "", 0);
    feed_expect(m, "\x80" "b", "\xF0\x9F\x98\x80" "b", 0);
    feed_expect(m, "\xC3", "", 0);
    feed_expect(m, "x", "\xC3x", 0); /* broken sequence: passed on as it is */
    feed_expect(m, "\x80", "\x80", 0);
    feed_expect(m, "\xE2\x86", "", 0);
    flush_expect(m, "\xE2\x86");
    stopstr_free(m);

    /* A multi-byte stop string. */
    const char *o[] = {"\xC3\xB6"};
    m = mk(o, 1);
    feed_expect(m, "w\xC3", "w", 0);
    feed_expect(m, "\xB6rld", "", 1);
    stopstr_free(m);
}

TEST(stopstr_nul_and_long_stops) {
    stopstr *m = stopstr_new();
    const char *out;
    size_t len;
    CHECK(stopstr_add(m, "\0x", 2) == 0);
    CHECK_EQ_INT(stopstr_feed(m, "ab\0xcd", 6, &out, &len), 1);
    CHECK(len == 2 && memcmp(out, "ab", 2) == 0);
    stopstr_free(m);

    /* A stop of the maximum length: 255 'a's then 'b', in 300 'a's then 'b'. */
    char stop[STOPSTR_MAX_LEN], text[302];
    memset(stop, 'a', sizeof stop - 1);
    stop[sizeof stop - 1] = 'b';
    memset(text, 'a', 300);
    text[300] = 'b';
    text[301] = 0;
    m = stopstr_new();
    CHECK(stopstr_add(m, stop, sizeof stop) == 0);
    size_t emitted = 0;
    for (int i = 0; i < 300; i++) {
        CHECK_EQ_INT(stopstr_feed(m, text + i, 1, &out, &len), 0);
        emitted += len;
        CHECK((size_t)i + 1 - emitted <= STOPSTR_MAX_LEN - 1);
    }
    CHECK_EQ_INT(emitted, 300 - 255);
    CHECK_EQ_INT(stopstr_feed(m, "b", 1, &out, &len), 1);
    CHECK_EQ_INT(len, 0);
    stopstr_free(m);
}

TEST(stopstr_errors) {
    stopstr *m = stopstr_new();
    char big[STOPSTR_MAX_LEN + 1];
    const char *out;
    size_t len;
    memset(big, 'x', sizeof big);
    CHECK(stopstr_add(m, "", 0) == -1);
    CHECK(strstr(err_msg(), "stop string 0 is empty") != NULL);
    CHECK(stopstr_add(m, big, sizeof big) == -1);
    CHECK(strstr(err_msg(), "257 bytes") != NULL);
    for (int i = 0; i < STOPSTR_MAX; i++) CHECK(stopstr_add(m, big, STOPSTR_MAX_LEN) == 0);
    CHECK(stopstr_add(m, "a", 1) == -1);
    CHECK(strstr(err_msg(), "more than 16") != NULL);
    stopstr_free(m);

    const char *stops[] = {"!"};
    m = mk(stops, 1);
    feed_expect(m, "hi", "hi", 0);
    CHECK(stopstr_add(m, "?", 1) == -1); /* too late: text was fed */
    CHECK(strstr(err_msg(), "before text") != NULL);
    feed_expect(m, "!", "", 1);
    CHECK_EQ_INT(stopstr_feed(m, "more", 4, &out, &len), -1);
    CHECK(len == 0 && strstr(err_msg(), "stop string matched") != NULL);
    stopstr_reset(m);
    CHECK(stopstr_add(m, "?", 1) == 0); /* a reset matcher takes stops again */
    feed_expect(m, "a?b", "a", 1);
    CHECK_EQ_INT(stopstr_matched(m), 1);
    stopstr_reset(m);
    feed_expect(m, "abc", "abc", 0);
    flush_expect(m, "");
    CHECK_EQ_INT(stopstr_feed(m, "x", 1, &out, &len), -1);
    CHECK(strstr(err_msg(), "flushed") != NULL);
    stopstr_free(m);
}

/* Non-streaming reference: the earliest end of any stop occurrence; at that end the longest
 * stop, then the first added. Returns the kept length and sets *which. */
static size_t reference(const char *text, size_t n, char stops[][8], const size_t *lens,
                        int n_stops, int *which) {
    for (size_t e = 1; e <= n; e++) {
        int best = -1;
        for (int k = 0; k < n_stops; k++)
            if (lens[k] <= e && memcmp(text + e - lens[k], stops[k], lens[k]) == 0 &&
                (best < 0 || lens[k] > lens[best]))
                best = k;
        if (best >= 0) {
            *which = best;
            return e - lens[best];
        }
    }
    *which = -1;
    return n;
}

TEST(stopstr_streaming_equals_reference) {
    uint64_t st = 12345;
    int stopped = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char text[64], stops[4][8], got[64];
        size_t lens[4], n, n_got = 0, max_len = 0;
        int n_stops, which, ret = 0;
#define RND(k) ((int)((st = st * 6364136223846793005ull + 1442695040888963407ull) >> 33) % (k))
        n = (size_t)RND(60);
        for (size_t i = 0; i < n; i++) text[i] = (char)('a' + RND(3));
        n_stops = RND(5); /* 0 to 4 stops */
        stopstr *m = stopstr_new();
        for (int k = 0; k < n_stops; k++) {
            lens[k] = (size_t)(1 + RND(5));
            for (size_t i = 0; i < lens[k]; i++) stops[k][i] = (char)('a' + RND(3));
            if (lens[k] > max_len) max_len = lens[k];
            CHECK(stopstr_add(m, stops[k], lens[k]) == 0);
        }
        size_t want = reference(text, n, stops, lens, n_stops, &which);
        for (size_t i = 0; i < n && ret == 0;) {
            size_t piece = (size_t)RND(6); /* empty pieces too */
            const char *out;
            size_t len;
            if (piece > n - i) piece = n - i;
            ret = stopstr_feed(m, text + i, piece, &out, &len);
            memcpy(got + n_got, out, len);
            n_got += len;
            i += piece;
            /* Never more held back than a stop's proper prefix. */
            if (ret == 0) CHECK(i - n_got <= (max_len ? max_len - 1 : 0));
        }
        if (ret == 0) {
            const char *out;
            size_t len;
            stopstr_flush(m, &out, &len);
            memcpy(got + n_got, out, len);
            n_got += len;
        }
        stopped += ret == 1;
        CHECK_MSG(n_got == want && memcmp(got, text, want) == 0 && stopstr_matched(m) == which,
                  "iteration %d: got %zu bytes (stop %d), want %zu (stop %d)", iter, n_got,
                  stopstr_matched(m), want, which);
        CHECK_EQ_INT(ret == 1, which >= 0);
        stopstr_free(m);
#undef RND
    }
    CHECK(stopped > 5000 && stopped < 15000); /* both outcomes well exercised */
}
