/* Error reporting: a failing function returns -1 or NULL and leaves a message saying what went
 * wrong and where (file, offset, key...). The message is per thread, so concurrent work on
 * different threads does not mix messages. err_msg() reads the last one. */
#ifndef VEIL_ERR_H
#define VEIL_ERR_H

#include <stdarg.h>

/* Sets the message (printf-style); returns -1 so callers can `return err_set(...)`. */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int err_vset(const char *fmt, va_list ap);
/* Prepends "prefix: " to the current message (adds context on the way up); returns -1. */
int err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Sets the message from errno: "what: strerror(errno)"; returns -1. */
int err_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *err_msg(void);

#endif
