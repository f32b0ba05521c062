/* OpenAI-style API errors (see oai_error.h). */
#include "api/oai_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int oai_error_set(oai_error *e, int status, const char *type, const char *param,
                  const char *fmt, ...) {
    va_list ap;
    e->status = status;
    e->type = type;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    e->code[0] = 0;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}
