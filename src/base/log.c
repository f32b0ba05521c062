/* Process-wide log with a replaceable sink; see log.h. */
#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static log_sink log_cur_sink;
static void *log_cur_ctx;
static log_level log_min = LOG_INFO;

const char *log_level_name(log_level level) {
    switch (level) {
    case LOG_DEBUG: return "debug";
    case LOG_INFO: return "info";
    case LOG_WARN: return "WARNING";
    case LOG_ERROR: return "ERROR";
    }
    return "?";
}

void log_set_sink(log_sink sink, void *ctx, log_sink *old, void **old_ctx) {
    pthread_mutex_lock(&log_lock);
    if (old) *old = log_cur_sink;
    if (old_ctx) *old_ctx = log_cur_ctx;
    log_cur_sink = sink;
    log_cur_ctx = ctx;
    pthread_mutex_unlock(&log_lock);
}

void log_set_level(log_level min) {
    pthread_mutex_lock(&log_lock);
    log_min = min;
    pthread_mutex_unlock(&log_lock);
}

void log_msg(log_level level, const char *fmt, ...) {
    char line[2048];
    int n = snprintf(line, sizeof line, "veil: %s: ", log_level_name(level));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    if (level >= log_min) {
        if (log_cur_sink)
            log_cur_sink(level, line, log_cur_ctx);
        else
            fprintf(stderr, "%s\n", line);
    }
    pthread_mutex_unlock(&log_lock);
}
