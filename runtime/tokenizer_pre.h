/*
 * tokenizer_pre.h - the pre-tokenizers of byte-level BPE vocabularies.
 *
 * A pre-tokenizer cuts text into words before BPE runs, so merges never
 * cross a word boundary. Each kind below is the regex, or the sequence of
 * regexes, that tokenizer.ggml.pre names (as in the models' Hugging Face
 * tokenizer.json and llama.cpp's llama-vocab.cpp), written out by hand over
 * the generated Unicode tables: no regex library. docs/tokenizer.md lists
 * the rules.
 *
 *     struct bn_pretok_scratch s = {0};
 *     bn_pretok_split(BN_PRETOK_LLAMA3, &s, text, len, on_word, ctx, err, sizeof err);
 *     bn_pretok_scratch_free(&s);
 *
 * Invalid UTF-8 bytes count as characters of no category (neither letter,
 * number nor space), so any byte string splits and the words cover it
 * exactly, in order.
 */
#ifndef BN_TOKENIZER_PRE_H
#define BN_TOKENIZER_PRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

enum bn_pretok {
    BN_PRETOK_DEFAULT,        /* what llama.cpp applies when a file names none  */
    BN_PRETOK_LLAMA3,         /* llama-bpe, llama3, llama-v3, falcon3           */
    BN_PRETOK_GPT2,           /* gpt-2, mpt, olmo, jais                         */
    BN_PRETOK_FALCON,         /* falcon                                         */
    BN_PRETOK_STARCODER,      /* starcoder, refact, command-r, smollm, codeshell */
    BN_PRETOK_DEEPSEEK_CODER, /* deepseek-coder                                 */
    BN_PRETOK_DEEPSEEK_LLM,   /* deepseek-llm                                   */
};

/* The kind a tokenizer.ggml.pre value names (len bytes, not NUL-terminated);
 * false for names this build does not know. */
bool bn_pretok_from_name(const char *name, size_t len, enum bn_pretok *out);
/* The main name of a kind, e.g. "llama-bpe". */
const char *bn_pretok_name(enum bn_pretok kind);

/* Per-call working memory, reused across calls; start zeroed. */
struct bn_pretok_scratch {
    uint32_t *cp;  /* code point, or a value above U+10FFFF for an invalid byte */
    uint32_t *off; /* byte offset of each code point; off[n] = length            */
    uint8_t *cls;  /* letter / number / punctuation / space bits                  */
    uint8_t *cut;  /* cut[i]: a word starts at code point i                       */
    size_t cap;
};
void bn_pretok_scratch_free(struct bn_pretok_scratch *s);

/* Called for each word in order; a status other than BN_OK stops the split
 * and is returned. Words are never empty. */
typedef enum bn_status (*bn_pretok_word_fn)(void *ctx, const char *word, size_t len);

/* Splits text (len bytes, any content) into words. BN_ERR_NOMEM (with a
 * message) when the scratch cannot grow, else whatever fn returned. */
enum bn_status bn_pretok_split(enum bn_pretok kind, struct bn_pretok_scratch *s, const char *text, size_t len,
                               bn_pretok_word_fn fn, void *ctx, char *err, size_t errlen);

#endif
