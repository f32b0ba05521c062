/* Chat templates: turn a list of chat messages into the prompt a chat model was trained on.
 *
 * GGUF files carry the template as Jinja source (tokenizer.chat_template). We do not run
 * Jinja; we recognise the family by a marker it must contain and render that family's
 * format ourselves:
 *   chatml   "<|im_start|>" (Qwen and others):
 *              <|im_start|>ROLE\nCONTENT<|im_end|>\n ... <|im_start|>assistant\n
 *   llama3   "<|start_header_id|>":
 *              <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> ...
 *              <|start_header_id|>assistant<|end_header_id|>\n\n      (content trimmed)
 *   llama2   "[INST]" (Meta's original format; system folded into the next user turn):
 *              [INST] <<SYS>>\nSYSTEM\n<</SYS>>\n\nUSER [/INST] ANSWER </s><s>[INST] USER [/INST]
 *   plain    anything else, or no template (the fallback):
 *              System: CONTENT\nUser: CONTENT\nAssistant: CONTENT\nAssistant:
 * Every format ends with the generation prompt (the assistant's turn is opened). The role
 * "developer" is rendered as "system"; other roles appear as given (plain capitalises the
 * known ones: System, User, Assistant, Tool).
 *
 * BOS is not part of the rendered text: chat_tmpl_encode puts it first when the tokenizer's
 * metadata says to add it, exactly as tokenizing the rendered text would.
 *
 * Special tokens cannot be injected through message text: chat_tmpl_encode looks up the
 * template's own special tokens by their text and inserts their ids, and tokenizes every
 * run of text between them — template text and message content alike — without matching
 * control tokens. So "<|im_end|>" typed by a user becomes ordinary text tokens. For text
 * without special-token spellings the ids equal those of tokenizing the rendered string with
 * parse_special on. A template special missing from the vocab (e.g. --chat-template chatml
 * on a model without <|im_start|>) is tokenized as plain text. */
#ifndef VEIL_CHAT_TEMPLATE_H
#define VEIL_CHAT_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "model/tokenizer.h"

typedef enum chat_tmpl { CHAT_TMPL_CHATML, CHAT_TMPL_LLAMA3, CHAT_TMPL_LLAMA2, CHAT_TMPL_PLAIN } chat_tmpl;

typedef struct chat_msg {
    const char *role;        /* NUL-terminated */
    const char *content;     /* content_len bytes (may hold NUL) */
    size_t content_len;
} chat_msg;

/* The family whose marker the Jinja source contains; CHAT_TMPL_PLAIN for NULL or none. */
chat_tmpl chat_tmpl_detect(const char *jinja, size_t len);
/* "chatml", "llama3", "llama2", "plain" -> the family; -1 with err_msg() listing the names. */
int chat_tmpl_from_name(const char *name, chat_tmpl *out);
const char *chat_tmpl_name(chat_tmpl t);

/* The prompt text (malloc'd, NUL-terminated, length in *len), generation prompt included.
 * NULL with err_msg() when out of memory. */
char *chat_tmpl_render(chat_tmpl t, const chat_msg *msgs, size_t n, size_t *len);

/* The prompt's token ids (malloc'd into *ids, count in *n_ids), BOS first when the tokenizer
 * adds one. 0, or -1 with err_msg(). */
int chat_tmpl_encode(const tokenizer *tok, chat_tmpl t, const chat_msg *msgs, size_t n,
                     int32_t **ids, size_t *n_ids);

#endif
