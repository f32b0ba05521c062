/* An OpenAI-style API error: the HTTP status plus the fields of the body
 * {"error":{"message":...,"type":...,"param":...,"code":...}} that OpenAI SDKs parse into
 * their exception types. Filled by the request parser and the server; rendered by
 * oai_response.h. Fixed-size so that filling one never fails. */
#ifndef VEIL_OAI_ERROR_H
#define VEIL_OAI_ERROR_H

typedef struct oai_error {
    int status;          /* HTTP status: 400, 404, 413, 503, ... */
    const char *type;    /* "invalid_request_error", "not_found_error", "server_error", ... */
    char param[64];      /* the offending field ("messages[0].content"); "" renders as null */
    char code[32];       /* "" renders as null */
    char message[512];
} oai_error;

/* Fills e (message printf-style, truncated to fit); param may be NULL. Returns -1 so parsers
 * can `return oai_error_set(...)`. */
int oai_error_set(oai_error *e, int status, const char *type, const char *param,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
