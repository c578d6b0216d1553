/*
 * tokenizer_impl.h - what the tokenizer's files share: the vocabulary as
 * loaded (tokenizer.c), read by encoding (tokenizer_encode.c) and decoding
 * (tokenizer_decode.c). Not part of the public interface.
 */
#ifndef BN_TOKENIZER_IMPL_H
#define BN_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tokenizer.h"
#include "tokenizer_pre.h"

enum tok_model { TOK_GPT2, TOK_SPM };

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
enum tok_type {
    TT_UNDEFINED = 0,
    TT_NORMAL = 1,
    TT_UNKNOWN = 2,
    TT_CONTROL = 3,
    TT_USER = 4,
    TT_UNUSED = 5,
    TT_BYTE = 6,
};

/* Per-token flags computed once at load. */
enum { TF_EOG = 1 };

/* A token longer than this is certainly a broken file, and bounding it keeps
 * every length product below far from overflow. */
#define TOK_MAX_TEXT ((size_t)1 << 20)

/* Symbol indices are int32: texts above this are refused (512 MiB). */
#define TOK_MAX_INPUT ((size_t)INT32_MAX / 4)

/* A slot of the text -> id table. The high half of the hash is kept as a
 * fingerprint so that probing past other tokens rarely touches their text
 * (each text compare is a cache miss or two). */
struct tok_slot {
    uint32_t fp;
    int32_t id; /* -1 marks an empty slot */
};

/* A merge of (left, right): left is implied by the group it is in. */
struct merge_ent {
    int32_t right;
    int32_t result; /* id of the concatenation             */
    uint32_t rank;  /* position in tokenizer.ggml.merges   */
};

/* An edge of the special-token trie below the root. */
struct trie_edge {
    uint64_t key;   /* (parent node << 8) | byte                  */
    uint32_t child; /* 0 marks an empty slot (the root is no child) */
};

struct bn_tokenizer {
    enum tok_model model;
    enum bn_pretok pre;  /* gpt2: the pre-tokenizer                   */
    bool pre_guessed;    /* gpt2: tokenizer.ggml.pre was missing        */
    bool ignore_merges;  /* gpt2: a word that is a token is that token */
    uint32_t n_vocab;
    char *name; /* file name, for messages after the gguf is closed */

    char *text;     /* all token texts back to back                  */
    size_t *off;    /* token i is text[off[i] .. off[i+1])           */
    uint8_t *type;  /* enum tok_type                                 */
    uint8_t *flags; /* TF_*                                          */
    float *score;   /* NULL when the file has none (all scores 0)    */

    struct tok_slot *hash; /* open addressing over token texts */
    size_t hash_mask;

    /* gpt2 only: merges grouped by left id, see load_merges(). */
    uint32_t *merge_first; /* n_vocab + 1 group starts       */
    struct merge_ent *merge_ent;

    int32_t byte_tok[256]; /* token of each raw byte, -1 when none     */
    /* gpt2: the UTF-8 text (1 or 2 bytes) of each byte's stand-in
     * character, to look a raw word up among the token texts. */
    char byte_text[256][2];
    uint8_t byte_text_len[256];

    int32_t bos, eos, eot, eom, unk, pad;
    bool add_bos;
    bool add_space_prefix; /* SPM: prefix text with U+2581          */

    /* Trie of the texts of special tokens, so the splitter finds the
     * longest one at a position in time proportional to the match, however
     * many special tokens share a prefix (Llama 3 has 256 "<|..."). Node 0 is
     * the root; its children are a direct table since every text position
     * asks it; deeper edges live in a hash table. Per node: the lowest id of
     * any special token with exactly that text, and of a user-defined one. */
    uint32_t trie_root[256];
    struct trie_edge *trie_edge;
    size_t trie_mask;
    int32_t *trie_any, *trie_user;

    size_t max_piece;
    size_t max_text; /* longest token text, in bytes */
};

static inline size_t tok_len(const bn_tokenizer *t, int32_t id) { return t->off[id + 1] - t->off[id]; }
static inline const char *tok_text(const bn_tokenizer *t, int32_t id) { return t->text + t->off[id]; }

/* memcmp is undefined on NULL even for n == 0; empty ranges can come from
 * empty GGUF strings. */
static inline bool mem_eq(const void *a, const void *b, size_t n) { return n == 0 || memcmp(a, b, n) == 0; }

/* FNV-1a for text, then a 64-bit finalizer so the low bits used as the table
 * index depend on every input byte. The state can be continued, which lets
 * tok_lookup_pair() hash "A" + "B" without building the concatenation. */
#define TOK_FNV_OFFSET 0xcbf29ce484222325ULL
static inline uint64_t tok_fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static inline uint64_t tok_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Id of the token whose text is a followed by b, or -1. */
static inline int32_t tok_lookup_pair(const bn_tokenizer *t, const char *a, size_t an, const char *b, size_t bn)
{
    uint64_t h = tok_mix64(tok_fnv(tok_fnv(TOK_FNV_OFFSET, a, an), b, bn));
    uint32_t fp = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & t->hash_mask;; i = (i + 1) & t->hash_mask) {
        const struct tok_slot *s = &t->hash[i];
        if (s->id < 0) return -1;
        if (s->fp == fp && tok_len(t, s->id) == an + bn && mem_eq(tok_text(t, s->id), a, an) &&
            mem_eq(tok_text(t, s->id) + an, b, bn))
            return s->id;
    }
}

static inline int32_t tok_lookup(const bn_tokenizer *t, const char *s, size_t n)
{
    return tok_lookup_pair(t, s, n, "", 0);
}

/* The merge of tokens a and b (its lowest rank), or NULL. */
static inline const struct merge_ent *tok_find_merge(const bn_tokenizer *t, int32_t a, int32_t b)
{
    uint32_t lo = t->merge_first[a], end = t->merge_first[a + 1], hi = end;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->merge_ent[mid].right < b) lo = mid + 1;
        else hi = mid;
    }
    return lo < end && t->merge_ent[lo].right == b ? &t->merge_ent[lo] : NULL;
}

static inline uint64_t tok_trie_key(uint32_t node, unsigned char b) { return (uint64_t)node << 8 | b; }

static inline uint32_t tok_trie_child(const bn_tokenizer *t, uint32_t node, unsigned char b)
{
    if (node == 0) return t->trie_root[b];
    uint64_t key = tok_trie_key(node, b);
    for (size_t j = (size_t)tok_mix64(key) & t->trie_mask;; j = (j + 1) & t->trie_mask) {
        const struct trie_edge *e = &t->trie_edge[j];
        if (e->child == 0) return 0;
        if (e->key == key) return e->child;
    }
}

/* "<0xXX>" -> XX, or -1. */
int tok_parse_byte_token(const char *s, size_t n);

/* GPT-2's byte <-> character map (tokenizer.c). */
uint32_t tok_gpt2_byte_to_cp(unsigned char b);
int tok_gpt2_cp_to_byte(uint32_t cp); /* -1 outside the map */

/* Produces the raw bytes of a token through put() (tokenizer_decode.c). */
void tok_piece_emit(const bn_tokenizer *t, int32_t id, void (*put)(void *, unsigned char), void *ctx);

#endif
