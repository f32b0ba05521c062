/* libFuzzer target: for any stop strings, text and cut into pieces, the streamed output equals
 * the non-streaming answer (text before the first stop to complete; longest, then first added,
 * on ties), and no more than a stop's proper prefix (plus an unfinished UTF-8 sequence) is
 * ever held back. Input: a byte n (stop count, mod 5), then per stop a length byte (mod 8,
 * plus 1) and its bytes, then the text; piece sizes come from the text bytes. */
#include "model/stopstr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Non-streaming answer: how many bytes of text precede the winning stop (n if none). */
static size_t reference(const uint8_t *text, size_t n, const uint8_t *const *stops,
                        const size_t *lens, int n_stops, int *which) {
    for (size_t e = 1; e <= n; e++) {
        *which = -1;
        for (int k = 0; k < n_stops; k++)
            if (lens[k] <= e && memcmp(text + e - lens[k], stops[k], lens[k]) == 0 &&
                (*which < 0 || lens[k] > lens[*which]))
                *which = k;
        if (*which >= 0) return e - lens[*which];
    }
    *which = -1;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *stops[4];
    size_t lens[4], max_len = 0, pos = 1, want, n_got = 0;
    int n_stops, which, ret = 0;
    stopstr *m;
    unsigned char *got;
    if (size < 1) return 0;
    n_stops = data[0] % 5;
    for (int k = 0; k < n_stops; k++) {
        if (pos >= size) return 0;
        lens[k] = (size_t)(data[pos++] % 8) + 1;
        if (size - pos < lens[k]) return 0;
        stops[k] = data + pos;
        pos += lens[k];
        if (lens[k] > max_len) max_len = lens[k];
    }
    const uint8_t *text = data + pos;
    size_t n = size - pos;
    want = reference(text, n, stops, lens, n_stops, &which);

    m = stopstr_new();
    got = malloc(n + 1);
    if (!m || !got) abort();
    for (int k = 0; k < n_stops; k++)
        if (stopstr_add(m, (const char *)stops[k], lens[k]) != 0) abort();
    for (size_t i = 0, step = 0; i < n && ret == 0; step++) {
        size_t piece = (text[i] + step) % 7; /* empty pieces too, but never forever */
        const char *out;
        size_t len;
        if (piece > n - i) piece = n - i;
        ret = stopstr_feed(m, (const char *)text + i, piece, &out, &len);
        if (ret < 0 || n_got + len > n) abort();
        memcpy(got + n_got, out, len);
        n_got += len;
        i += piece;
        if (ret == 0 && i - n_got > (max_len ? max_len - 1 : 0) + 3) abort();
    }
    if (ret == 0) {
        const char *out;
        size_t len;
        stopstr_flush(m, &out, &len);
        if (n_got + len > n) abort();
        memcpy(got + n_got, out, len);
        n_got += len;
    }
    if (n_got != want || memcmp(got, text, want) != 0 || stopstr_matched(m) != which) abort();
    stopstr_free(m);
    free(got);
    return 0;
}
