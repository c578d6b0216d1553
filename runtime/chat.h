/*
 * chat.h - chat prompt formats: the text of each turn of a conversation, as
 * the model was trained to read it. No Jinja: the formats are known by name
 * and recognised in a model's tokenizer.chat_template by their marks.
 *
 *     enum bn_chat_format f = bn_chat_detect(tmpl, tmpl_len, "bitnet-b1.58", &matched);
 *     bn_chat_check(f, tokenizer, err, sizeof err);        // its special tokens exist
 *     struct bn_chat_text t = {0};
 *     bn_chat_render_turn(f, true, "Be brief.", "Hi", 2, &t, err, sizeof err);
 *     ... tokenize t.p (t.n bytes) with parse_special on, no added BOS ...
 *     t.n = 0; bn_chat_render_turn(f, false, NULL, "More", 4, &t, err, sizeof err);
 *     free(t.p);
 *
 * Formats (docs/chat.md has the sources):
 *   bitnet  microsoft/bitnet-b1.58-2B-4T:
 *           <|begin_of_text|>System: SYS<|eot_id|>User: MSG<|eot_id|>Assistant: REPLY<|eot_id|>User: ...
 *   llama3  Llama 3 instruct:
 *           <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSYS<|eot_id|>
 *           <|start_header_id|>user<|end_header_id|>\n\nMSG<|eot_id|>
 *           <|start_header_id|>assistant<|end_header_id|>\n\nREPLY<|eot_id|>...
 *   none    the user's text as typed, nothing added (BOS per the vocabulary).
 * Messages are trimmed of surrounding white space, as the templates' Jinja
 * `trim` does.
 */
#ifndef BN_CHAT_H
#define BN_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"
#include "tokenizer.h"

enum bn_chat_format { BN_CHAT_NONE, BN_CHAT_BITNET, BN_CHAT_LLAMA3 };

/* "bitnet" | "llama3" | "none"; false for anything else. */
bool bn_chat_format_from_name(const char *name, enum bn_chat_format *out);
const char *bn_chat_format_name(enum bn_chat_format f);

/* The format a model asks for. tmpl is its tokenizer.chat_template (len
 * bytes; NULL when the file has none). *matched (may be NULL) tells whether
 * the template was recognised; when it was not (or is absent), BitNet
 * architectures ("bitnet-b1.58", "bitnet-25", arch may be NULL) get bitnet,
 * everything else none. */
enum bn_chat_format bn_chat_detect(const char *tmpl, size_t len, const char *arch, bool *matched);

/* BN_ERR_MODEL naming the token when the vocabulary lacks a control token
 * the format writes (e.g. <|eot_id|>): its text would be tokenized as
 * plain characters and the model would never see a turn end. */
enum bn_status bn_chat_check(enum bn_chat_format f, const bn_tokenizer *tk, char *err, size_t errlen);

/* Whether the format writes BOS itself (then do not add one when
 * tokenizing the first turn). */
bool bn_chat_writes_bos(enum bn_chat_format f);

/* Whether a message is nothing but white space (Unicode White_Space, as
 * the rendering trims it): such a line is no turn at all. */
bool bn_chat_is_blank(const char *s, size_t n);

/* A growing text buffer; start zeroed, free p when done. */
struct bn_chat_text {
    char *p;
    size_t n, cap;
};

/* Appends the text of one user turn to out: on the first turn the start of
 * the conversation and the system message (system may be NULL or empty:
 * no system message), on later turns first the end of the previous
 * assistant reply; then the user's message (user_len bytes) and the start
 * of the assistant's reply, which the model then writes. BN_ERR_NOMEM on
 * allocation failure. */
enum bn_status bn_chat_render_turn(enum bn_chat_format f, bool first, const char *system, const char *user,
                                   size_t user_len, struct bn_chat_text *out, char *err, size_t errlen);

#endif
