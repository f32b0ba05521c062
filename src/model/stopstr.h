/* Streaming stop-string matcher for generated text: feed it the decoded bytes as they come and
 * it hands back the bytes that are safe to show now, holding back a tail that could still grow
 * into a stop string; when a stop string completes, it hands back the text before it and the
 * text ends there.
 *
 * Which stop wins: the occurrence that is complete first (smallest end offset); among stop
 * strings completing at the same byte, the longest (the one starting earliest), then the one
 * added first. Generation can therefore end the moment a stop appears, and the result does not
 * depend on how the text was cut into pieces: the concatenation of everything handed back
 * (feeds, then flush) equals the whole text truncated before that occurrence, or the whole
 * text when no stop string occurs.
 *
 * Pieces handed back also never end inside a UTF-8 sequence that the next bytes could still
 * complete, so each piece of valid UTF-8 text is valid UTF-8 on its own (useful for SSE).
 * Matching is on bytes; the held-back tail is at most STOPSTR_MAX_LEN - 1 bytes (3 for UTF-8
 * alone). Bytes may include NUL. */
#ifndef VEIL_STOPSTR_H
#define VEIL_STOPSTR_H

#include <stddef.h>

#define STOPSTR_MAX 16       /* stop strings per matcher (OpenAI allows 4) */
#define STOPSTR_MAX_LEN 256  /* bytes per stop string */

typedef struct stopstr stopstr;

/* An empty matcher (no stop strings: it only keeps UTF-8 sequences whole). NULL when out of
 * memory. */
stopstr *stopstr_new(void);
void stopstr_free(stopstr *m);

/* Adds a stop string of len bytes. -1 when it is empty or longer than STOPSTR_MAX_LEN, when
 * there are STOPSTR_MAX already, or when text has been fed since the last reset. */
int stopstr_add(stopstr *m, const char *s, size_t len);

/* Feeds n more bytes of text. Sets *out, *out_len to the bytes to emit now (valid until the
 * next call on m). Returns 0 to go on, 1 when a stop string completed (out holds the last of
 * the text before it; generation should end), -1 on error: out of memory, or text fed after
 * the text ended (a stop matched or stopstr_flush was called; stopstr_reset starts anew). */
int stopstr_feed(stopstr *m, const char *bytes, size_t n, const char **out, size_t *out_len);

/* End of text (EOS, token limit): hands back whatever was held; nothing after a stop matched.
 * The text has ended afterwards. */
void stopstr_flush(stopstr *m, const char **out, size_t *out_len);

/* Index (in the order added) of the stop string that ended the text, or -1. */
int stopstr_matched(const stopstr *m);

/* Forgets the text for a new generation; keeps the stop strings. */
void stopstr_reset(stopstr *m);

#endif
