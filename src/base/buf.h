/* Growable byte buffer for building text (JSON pieces, prompts, HTTP bodies). Always keeps a
 * NUL after the last byte, so data can be passed to C string functions when it holds no NUL
 * of its own. Out of memory is sticky: after a failed append the buffer keeps what it had,
 * every later append is a no-op, and buf_failed() tells; callers check once at the end
 * instead of after every append. */
#ifndef VEIL_BUF_H
#define VEIL_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct buf {
    char *data;   /* NULL until the first append */
    size_t len, cap;
    bool oom;
} buf;

void buf_append(buf *b, const void *data, size_t len);
void buf_puts(buf *b, const char *s);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forgets the contents, keeps the memory (and clears a past failure). */
void buf_clear(buf *b);
/* True when an append ran out of memory; also sets err_msg(). */
bool buf_failed(const buf *b);
/* Hands the data (NUL-terminated, never NULL unless out of memory) to the caller and resets
 * the buffer to empty. NULL with err_msg() when an append had failed. */
char *buf_take(buf *b, size_t *len);
void buf_free(buf *b);

#endif
