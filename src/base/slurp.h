/* Reading a whole stream or file into memory (prompts, stdin text). */
#ifndef VEIL_SLURP_H
#define VEIL_SLURP_H

#include <stddef.h>
#include <stdio.h>

/* All of f in a malloc'd buffer (*len bytes, plus a NUL after them); `name` is for messages.
 * NULL with err_msg() on a read error or out of memory. */
char *slurp_stream(FILE *f, const char *name, size_t *len);
/* The same for a file path. */
char *slurp_file(const char *path, size_t *len);

#endif
