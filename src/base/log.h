/* Process-wide log: one line per message, "veil: LEVEL: text", written to stderr by default.
 * The sink and the minimum level are the only global state; they are meant to be set once at
 * start-up (a daemon sends lines to a file, a test captures them to assert on warnings).
 * Lines from different threads never interleave within a line. */
#ifndef VEIL_LOG_H
#define VEIL_LOG_H

typedef enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* Receives each formatted line (no trailing newline). Called with the log's lock held, so it
 * must not log itself. */
typedef void (*log_sink)(log_level level, const char *line, void *ctx);

/* Replaces the sink (NULL restores stderr); returns the previous one in *old and *old_ctx when
 * those are not NULL, so a test can put it back. */
void log_set_sink(log_sink sink, void *ctx, log_sink *old, void **old_ctx);
/* Messages below this level are dropped (default LOG_INFO). */
void log_set_level(log_level min);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *log_level_name(log_level level);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
