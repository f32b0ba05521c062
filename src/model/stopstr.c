/* Streaming stop-string matcher; stopstr.h says which stop wins and what is guaranteed.
 *
 * Each stop string runs its own KMP automaton whose state is the length of the longest suffix
 * of the text that is a prefix of that string. Only those suffixes can still become a match,
 * so holding back the largest state is exactly enough: every byte before it is safe to emit,
 * and a match, when it comes, starts inside the held tail. Work per byte is O(number of stop
 * strings), amortised. */
#include "model/stopstr.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

struct stop {
    uint16_t len;
    uint16_t state;                      /* bytes of s matched by the text's current suffix */
    unsigned char s[STOPSTR_MAX_LEN];
    uint16_t fail[STOPSTR_MAX_LEN];      /* fail[i]: longest proper border of s[0..i] */
};

struct stopstr {
    struct stop stops[STOPSTR_MAX];
    int n_stops;
    int matched;       /* index of the stop that ended the text, or -1 */
    bool started;      /* text fed (or flushed) since the last reset */
    bool ended;        /* a stop matched or flush was called */
    unsigned char *buf;
    size_t cap;
    size_t handed;     /* buf[0, handed) was handed out by the last call */
    size_t pending;    /* held bytes, at buf[handed, handed + pending) */
};

stopstr *stopstr_new(void) {
    stopstr *m = calloc(1, sizeof *m);
    /* A buffer from the start, so out never points at NULL. */
    if (m) {
        m->cap = 256;
        m->buf = malloc(m->cap);
    }
    if (!m || !m->buf) {
        stopstr_free(m);
        err_set("stopstr: out of memory");
        return NULL;
    }
    m->matched = -1;
    return m;
}

void stopstr_free(stopstr *m) {
    if (!m) return;
    free(m->buf);
    free(m);
}

int stopstr_add(stopstr *m, const char *s, size_t len) {
    struct stop *st;
    uint16_t k = 0;
    if (len == 0) return err_set("stopstr: stop string %d is empty", m->n_stops);
    if (len > STOPSTR_MAX_LEN)
        return err_set("stopstr: stop string %d is %zu bytes long; the limit is %d",
                       m->n_stops, len, STOPSTR_MAX_LEN);
    if (m->n_stops == STOPSTR_MAX)
        return err_set("stopstr: more than %d stop strings", STOPSTR_MAX);
    if (m->started)
        return err_set("stopstr: stop strings must be added before text is fed");
    st = &m->stops[m->n_stops++];
    memcpy(st->s, s, len);
    st->len = (uint16_t)len;
    st->state = 0;
    st->fail[0] = 0;
    for (size_t i = 1; i < len; i++) {
        while (k > 0 && st->s[i] != st->s[k]) k = st->fail[k - 1];
        if (st->s[i] == st->s[k]) k++;
        st->fail[i] = k;
    }
    return 0;
}

/* Moves e back to the start of a UTF-8 sequence that it would otherwise cut: one whose lead
 * byte sits in the 3 bytes before e and that needs more bytes than reach e. */
static size_t utf8_cut(const unsigned char *b, size_t e) {
    for (size_t back = 1; back <= 3 && back <= e; back++) {
        unsigned char c = b[e - back];
        size_t need;
        if ((c & 0xC0) == 0x80) continue;
        need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? e - back : e;
    }
    return e;
}

/* Drops what the last call handed out, so held bytes start at buf[0]. */
static void drop_handed(stopstr *m) {
    if (m->handed && m->pending) memmove(m->buf, m->buf + m->handed, m->pending);
    m->handed = 0;
}

int stopstr_feed(stopstr *m, const char *bytes, size_t n, const char **out, size_t *out_len) {
    size_t total, hold = 0;
    *out = "";
    *out_len = 0;
    if (m->ended)
        return err_set("stopstr: text fed after it ended (%s); reset first",
                       m->matched >= 0 ? "a stop string matched" : "flushed");
    m->started = true;
    drop_handed(m);
    if (n > SIZE_MAX / 2 - m->pending)
        return err_set("stopstr: a piece of %zu bytes is too large", n);
    if (m->pending + n > m->cap) {
        size_t cap = m->cap;
        unsigned char *nb;
        while (cap < m->pending + n) cap *= 2;
        nb = realloc(m->buf, cap);
        if (!nb) return err_set("stopstr: out of memory for %zu bytes of text", m->pending + n);
        m->buf = nb;
        m->cap = cap;
    }
    if (n) memcpy(m->buf + m->pending, bytes, n);
    total = m->pending + n;
    for (size_t i = m->pending; i < total; i++) {
        unsigned char c = m->buf[i];
        int win = -1;
        for (int k = 0; k < m->n_stops; k++) {
            struct stop *st = &m->stops[k];
            uint16_t q = st->state;
            while (q > 0 && st->s[q] != c) q = st->fail[q - 1];
            if (st->s[q] == c) q++;
            st->state = q;
            if (q == st->len && (win < 0 || st->len > m->stops[win].len)) win = k;
        }
        if (win >= 0) {
            m->matched = win;
            m->ended = true;
            m->pending = 0;
            *out = (const char *)m->buf;
            *out_len = i + 1 - m->stops[win].len;
            return 1;
        }
    }
    for (int k = 0; k < m->n_stops; k++)
        if (m->stops[k].state > hold) hold = m->stops[k].state;
    m->handed = utf8_cut(m->buf, total - hold);
    m->pending = total - m->handed;
    *out = (const char *)m->buf;
    *out_len = m->handed;
    return 0;
}

void stopstr_flush(stopstr *m, const char **out, size_t *out_len) {
    *out = "";
    *out_len = 0;
    m->started = true;
    m->ended = true;
    drop_handed(m);
    if (m->pending) {
        *out = (const char *)m->buf;
        *out_len = m->pending;
        m->handed = m->pending;
        m->pending = 0;
    }
}

int stopstr_matched(const stopstr *m) { return m->matched; }

void stopstr_reset(stopstr *m) {
    for (int k = 0; k < m->n_stops; k++) m->stops[k].state = 0;
    m->matched = -1;
    m->started = m->ended = false;
    m->handed = m->pending = 0;
}
