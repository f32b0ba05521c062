/* Flag files: the text of a config file turned into command-line flags, so a program's one
 * flag parser (getopt) handles both and the two cannot disagree.
 *
 * Format: one flag a line, its long name without the dashes, then (after spaces or tabs) its
 * value if it takes one: "proxy 127.0.0.1:7002" becomes "--proxy=127.0.0.1:7002",
 * "allow-unverified-tdx" becomes "--allow-unverified-tdx". The value is the rest of the line,
 * inner spaces kept and outer ones dropped; there is no quoting (quotes are part of the value).
 * '#' at the start of a line or after a space or tab starts a comment ("a#b" is a value).
 * Blank lines are skipped, "\r\n" line ends are accepted, the last line needs no newline.
 * Rejected, with "NAME:LINE: what": a NUL byte, a line over FLAGFILE_MAX_LINE bytes, a name
 * other than lower-case letters, digits and '-' (e.g. "--proxy" or "proxy=..."), a control
 * character in a value, and "config" (files do not include files); given the program's getopt
 * table, also an unknown flag, a missing value and a value for a flag that takes none (which
 * getopt would take for the next argument, or report without the line). */
#ifndef VEIL_FLAGFILE_H
#define VEIL_FLAGFILE_H

#include <getopt.h>
#include <stddef.h>

#define FLAGFILE_MAX_LINE 4096

/* Appends the flags of text (len bytes; it need not end in a NUL and may hold any bytes) to the
 * growable vector *v (*n strings, room for *cap; NULL/0/0 to start), each a malloc'd string.
 * `name` names the file in messages; opts (NULL: no check) is the getopt_long table the flags
 * must fit, names matched exactly. -1 with err_msg() on malformed text or out of memory; the
 * flags appended before the error stay in *v for the caller to free with the rest. */
int flagfile_parse(const char *text, size_t len, const char *name, const struct option *opts,
                   char ***v, size_t *n, size_t *cap);

#endif
