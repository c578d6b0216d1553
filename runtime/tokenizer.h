/*
 * tokenizer.h - text <-> token ids, from the tokenizer.ggml.* metadata of a
 * model file. Independent of backends.
 *
 *     bn_tokenizer *tk;
 *     bn_tokenizer_create(model->gguf, &tk, err, sizeof err);
 *     int32_t *ids; size_t n;
 *     bn_tokenizer_encode(tk, text, strlen(text), bn_tokenizer_add_bos(tk), true, &ids, &n, err, sizeof err);
 *     ... free(ids);
 *     struct bn_detok d = {0};
 *     char out[64]; size_t k = bn_tokenizer_decode_stream(tk, &d, id, out, sizeof out);  // print k bytes
 *     k = bn_tokenizer_decode_flush(tk, &d, out, sizeof out);                             // at the end
 *     bn_tokenizer_destroy(tk);
 *
 * Models: "gpt2" (byte-level BPE over GPT-2's byte-to-unicode map, merges by
 * rank, after the pre-tokenizer that tokenizer.ggml.pre names: see
 * tokenizer_pre.h) and "llama" (SentencePiece: U+2581 for spaces,
 * score-driven merges, <0xXX> byte fallback). The tokenizer copies what it
 * needs: the gguf may be closed afterwards. docs/tokenizer.md has the rules.
 */
#ifndef BN_TOKENIZER_H
#define BN_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "status.h"

typedef struct bn_tokenizer bn_tokenizer;

/* BN_ERR_MODEL naming the key when the tokenizer metadata is missing or
 * malformed (e.g. an unknown tokenizer.ggml.model). */
enum bn_status bn_tokenizer_create(const bn_gguf *g, bn_tokenizer **out, char *err, size_t errlen);
void bn_tokenizer_destroy(bn_tokenizer *t); /* accepts NULL */

uint32_t bn_tokenizer_n_vocab(const bn_tokenizer *t);
int32_t bn_tokenizer_bos(const bn_tokenizer *t); /* -1 when the model has none */
int32_t bn_tokenizer_eos(const bn_tokenizer *t);
int32_t bn_tokenizer_eot(const bn_tokenizer *t);
bool bn_tokenizer_add_bos(const bn_tokenizer *t); /* tokenizer.ggml.add_bos_token */
/* End of generation: eos, eot (and other end tokens the vocabulary marks). */
bool bn_tokenizer_is_eog(const bn_tokenizer *t, int32_t id);

/* The pre-tokenizer's main name ("llama-bpe", "gpt-2", ...; NULL for
 * SentencePiece). *guessed (may be NULL) tells whether the file named none
 * and the kind was inferred (a 128256-token vocabulary is Llama 3's). */
const char *bn_tokenizer_pre_name(const bn_tokenizer *t, bool *guessed);

/* Id of the token whose text is exactly s (n bytes), or -1. Texts are as
 * stored: byte-level vocabularies write a space as U+0120, SentencePiece as
 * U+2581; special tokens are plain ("<|eot_id|>"). */
int32_t bn_tokenizer_find(const bn_tokenizer *t, const char *s, size_t n);
/* Whether id is a control token (BOS, EOS, <|eot_id|>, ...). */
bool bn_tokenizer_is_control(const bn_tokenizer *t, int32_t id);

/* Text (len bytes, any content) to ids, into a malloc'd array the caller
 * frees. add_bos prepends BOS when the model has one; parse_special makes
 * control tokens written in the text count as those tokens. */
enum bn_status bn_tokenizer_encode(const bn_tokenizer *t, const char *text, size_t len, bool add_bos,
                                   bool parse_special, int32_t **ids, size_t *n, char *err, size_t errlen);

/* Raw bytes of one token's piece (control tokens: their text). Returns the
 * length; writes at most cap bytes. */
size_t bn_tokenizer_piece(const bn_tokenizer *t, int32_t id, char *buf, size_t cap);

/* Streaming detokenization: bytes of a UTF-8 character split across tokens
 * are held back until complete; invalid sequences come out as U+FFFD. */
struct bn_detok {
    unsigned char pending[4];
    int n_pending;
};
/* Appends token id; writes the bytes now safe to print (at most cap; cap of
 * 64 + the longest piece is always enough) and returns their count. */
size_t bn_tokenizer_decode_stream(const bn_tokenizer *t, struct bn_detok *d, int32_t id, char *out, size_t cap);
/* Flushes what is held back (as U+FFFD if incomplete). */
size_t bn_tokenizer_decode_flush(const bn_tokenizer *t, struct bn_detok *d, char *out, size_t cap);
/* Bytes a buffer needs for one decode_stream call, less 64: three times
 * the longest piece, since every byte may become a 3-byte U+FFFD. */
size_t bn_tokenizer_max_piece(const bn_tokenizer *t);

#endif
