/*
 * tokenizer.c - text <-> token ids from the tokenizer.ggml.* metadata.
 *
 * Layout of this file, in the order the work happens:
 *   1. small helpers: hashing, UTF-8, GPT-2's byte <-> unicode map
 *   2. vocabulary loading and validation (tokens, types, scores, ids, merges)
 *   3. special-token splitting (control / user-defined tokens in the text)
 *   4. byte-level BPE ("gpt2")
 *   5. SentencePiece ("llama")
 *   6. encode driver
 *   7. decoding: pieces and the streaming UTF-8 repair
 *
 * Scope of this first version: no pre-tokenizer regexes (llama-bpe, gpt-2,
 * ...). Byte-level BPE instead cuts text at whitespace boundaries (section 4),
 * which approximates those regexes for plain words only. The regexes, the
 * finer special-token rules (lstrip/rstrip) and chat templates come later and
 * slot in at encode_fragment() and split_next_special().
 */
#include "tokenizer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * 1. Helpers
 * ------------------------------------------------------------------------- */

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

struct merge_slot {
    uint64_t key;   /* (left id << 32) | right id                 */
    uint32_t rank;  /* position in tokenizer.ggml.merges          */
    int32_t result; /* id of the concatenation; -1 marks empty    */
};

/* An edge of the special-token trie below the root. */
struct trie_edge {
    uint64_t key;   /* (parent node << 8) | byte                  */
    uint32_t child; /* 0 marks an empty slot (the root is no child) */
};

struct bn_tokenizer {
    enum tok_model model;
    uint32_t n_vocab;
    char *name; /* file name, for messages after the gguf is closed */

    char *text;     /* all token texts back to back                  */
    size_t *off;    /* token i is text[off[i] .. off[i+1])           */
    uint8_t *type;  /* enum tok_type                                 */
    uint8_t *flags; /* TF_*                                          */
    float *score;   /* NULL when the file has none (all scores 0)    */

    int32_t *hash; /* open addressing over token texts, -1 = empty  */
    size_t hash_mask;

    struct merge_slot *merge; /* gpt2 only                           */
    size_t merge_mask;

    int32_t byte_tok[256]; /* token of each raw byte, -1 when none     */

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
};

static size_t tok_len(const bn_tokenizer *t, int32_t id) { return t->off[id + 1] - t->off[id]; }
static const char *tok_text(const bn_tokenizer *t, int32_t id) { return t->text + t->off[id]; }

/* memcmp is undefined on NULL even for n == 0; empty ranges can come from
 * empty GGUF strings. */
static bool mem_eq(const void *a, const void *b, size_t n) { return n == 0 || memcmp(a, b, n) == 0; }

/* Allocation of n elements with the product checked. */
static void *alloc_array(size_t n, size_t size, bool zero)
{
    if (n == 0) n = 1;
    if (n > SIZE_MAX / size) return NULL;
    return zero ? calloc(n, size) : malloc(n * size);
}

/* FNV-1a for text, then a 64-bit finalizer so the low bits used as the table
 * index depend on every input byte. The state can be continued, which lets
 * lookup_pair() hash "A" + "B" without building the concatenation. */
#define FNV_OFFSET 0xcbf29ce484222325ULL
static uint64_t fnv_update(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Smallest power of two >= 2n (load factor <= 1/2), 0 on overflow. */
static size_t table_size(size_t n)
{
    size_t c = 16;
    while (c / 2 < n) {
        if (c > SIZE_MAX / 4) return 0;
        c <<= 1;
    }
    return c;
}

/* Id of the token whose text is a followed by b, or -1. */
static int32_t lookup_pair(const bn_tokenizer *t, const char *a, size_t an, const char *b, size_t bn)
{
    uint64_t h = mix64(fnv_update(fnv_update(FNV_OFFSET, a, an), b, bn));
    for (size_t i = (size_t)h & t->hash_mask;; i = (i + 1) & t->hash_mask) {
        int32_t id = t->hash[i];
        if (id < 0) return -1;
        if (tok_len(t, id) == an + bn && mem_eq(tok_text(t, id), a, an) && mem_eq(tok_text(t, id) + an, b, bn))
            return id;
    }
}

static int32_t lookup(const bn_tokenizer *t, const char *s, size_t n) { return lookup_pair(t, s, n, "", 0); }

/* Expected length of a UTF-8 sequence from its first byte; 0 for a byte
 * that cannot start one (continuation bytes, C0/C1 overlong leads, F5..FF
 * beyond U+10FFFF). */
static int utf8_need(unsigned char b)
{
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 0;
}

/* Whether b may be byte idx (1..3) of a sequence led by lead. The narrowed
 * second-byte ranges reject overlong forms (E0, F0), surrogates (ED) and
 * code points above U+10FFFF (F4). */
static bool utf8_cont_ok(unsigned char lead, int idx, unsigned char b)
{
    unsigned char lo = 0x80, hi = 0xBF;
    if (idx == 1) {
        if (lead == 0xE0) lo = 0xA0;
        else if (lead == 0xED) hi = 0x9F;
        else if (lead == 0xF0) lo = 0x90;
        else if (lead == 0xF4) hi = 0x8F;
    }
    return b >= lo && b <= hi;
}

/* Length (1..4) of the valid UTF-8 character at s (n > 0 bytes), its code
 * point in *cp; 0 when s does not start a valid, complete character. */
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    int need = utf8_need(s[0]);
    if (need == 0 || (size_t)need > n) return 0;
    for (int i = 1; i < need; i++)
        if (!utf8_cont_ok(s[0], i, s[i])) return 0;
    static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t c = s[0] & lead_mask[need];
    for (int i = 1; i < need; i++) c = (c << 6) | (s[i] & 0x3F);
    *cp = c;
    return need;
}

static int utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* GPT-2's bytes_to_unicode: byte-level BPE works on printable characters, so
 * the 188 "printable" bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for
 * themselves and the other 68 (0x00..0x20, 0x7F..0xA0, 0xAD), in byte order,
 * become U+0100..U+0143. Both directions are computed, not tabled. */
static bool gpt2_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static uint32_t gpt2_byte_to_cp(unsigned char b)
{
    if (gpt2_printable(b)) return b;
    if (b <= 0x20) return 0x100u + b;             /* 33 bytes: U+0100..U+0120 */
    if (b >= 0x7F && b <= 0xA0) return 0x121u + (b - 0x7Fu); /* 34: U+0121..U+0142 */
    return 0x143;                                 /* 0xAD */
}

/* Inverse of gpt2_byte_to_cp; -1 for code points outside the map. */
static int gpt2_cp_to_byte(uint32_t cp)
{
    if (cp <= 0xFF) return gpt2_printable(cp) ? (int)cp : -1;
    if (cp <= 0x120) return (int)(cp - 0x100);
    if (cp <= 0x142) return (int)(0x7F + (cp - 0x121));
    if (cp == 0x143) return 0xAD;
    return -1;
}

/* "<0xXX>" -> XX, or -1. */
static int parse_byte_token(const char *s, size_t n)
{
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A file string made safe for a one-line message: printable ASCII kept,
 * everything else '?', cut at 48 characters. */
static void quote(char *dst, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap; i++) {
        if (i == 48) {
            memcpy(dst + k, "...", 3);
            k += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        dst[k++] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    dst[k] = '\0';
}

/* ---------------------------------------------------------------------------
 * 2. Vocabulary loading
 * ------------------------------------------------------------------------- */

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_MERGES "tokenizer.ggml.merges"

/* Array elements in the mapping are little-endian and possibly unaligned. */
static uint32_t rd_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static enum bn_status load_model_kind(bn_tokenizer *t, const bn_gguf *g, char *err, size_t errlen)
{
    struct bn_gguf_str s;
    enum bn_status st = bn_gguf_get_str(g, KEY_MODEL, &s, err, errlen);
    if (st != BN_OK) return st;
    if (bn_gguf_str_eq(s, "gpt2")) {
        t->model = TOK_GPT2;
    } else if (bn_gguf_str_eq(s, "llama")) {
        t->model = TOK_SPM;
    } else {
        char q[64];
        quote(q, sizeof q, s.data, s.len);
        return bn_errf(err, errlen, BN_ERR_MODEL,
                       "%s: key '" KEY_MODEL "' is '%s': unsupported tokenizer (expected 'gpt2' or 'llama')",
                       t->name, q);
    }
    return BN_OK;
}

/* An array that must have one element per token. */
static enum bn_status check_len(const bn_tokenizer *t, const char *key, uint64_t n, char *err, size_t errlen)
{
    if (n == t->n_vocab) return BN_OK;
    return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '%s' has %llu elements, expected %u (one per token)", t->name,
                   key, (unsigned long long)n, t->n_vocab);
}

/* Copies the token texts into one pool and builds the text -> id table. */
static enum bn_status load_tokens(bn_tokenizer *t, const bn_gguf *g, char *err, size_t errlen)
{
    const struct bn_gguf_kv *kv = NULL;
    bool found = false;
    enum bn_status st = bn_gguf_get_arr_opt(g, KEY_TOKENS, BN_GGUF_STRING, &kv, &found, err, errlen);
    if (st != BN_OK) return st;
    if (!found) return bn_errf(err, errlen, BN_ERR_MODEL, "%s: missing key '" KEY_TOKENS "'", t->name);
    if (kv->arr_n == 0 || kv->arr_n > (uint64_t)INT32_MAX - 1)
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '" KEY_TOKENS "' has %llu tokens, expected 1..%d", t->name,
                       (unsigned long long)kv->arr_n, INT32_MAX - 1);
    t->n_vocab = (uint32_t)kv->arr_n;
    const uint32_t n = t->n_vocab;

    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t len = kv->arr_str[i].len;
        if (len > TOK_MAX_TEXT)
            return bn_errf(err, errlen, BN_ERR_MODEL,
                           "%s: key '" KEY_TOKENS "': token %u is %llu bytes long (limit %zu)",
                           t->name, i, (unsigned long long)len, TOK_MAX_TEXT);
        if (total > SIZE_MAX - len) return bn_errf(err, errlen, BN_ERR_NOMEM, "%s: token texts too large", t->name);
        total += (size_t)len;
    }
    t->text = alloc_array(total, 1, false);
    t->off = alloc_array((size_t)n + 1, sizeof *t->off, false);
    size_t cap = table_size(n);
    t->hash = cap ? alloc_array(cap, sizeof *t->hash, false) : NULL;
    if (!t->text || !t->off || !t->hash)
        return bn_errf(err, errlen, BN_ERR_NOMEM, "%s: out of memory for %u tokens", t->name, n);
    t->hash_mask = cap - 1;
    memset(t->hash, 0xFF, cap * sizeof *t->hash); /* all -1 */

    size_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        t->off[i] = pos;
        size_t len = (size_t)kv->arr_str[i].len;
        if (len) memcpy(t->text + pos, kv->arr_str[i].data, len);
        pos += len;
    }
    t->off[n] = pos;

    /* Duplicated texts keep the lowest id: encoding then is deterministic and
     * does not depend on the table's probe order. */
    for (uint32_t i = 0; i < n; i++) {
        int32_t id = (int32_t)i;
        uint64_t h = mix64(fnv_update(FNV_OFFSET, tok_text(t, id), tok_len(t, id)));
        size_t j = (size_t)h & t->hash_mask;
        for (;; j = (j + 1) & t->hash_mask) {
            int32_t o = t->hash[j];
            if (o < 0) {
                t->hash[j] = id;
                break;
            }
            if (tok_len(t, o) == tok_len(t, id) && mem_eq(tok_text(t, o), tok_text(t, id), tok_len(t, id))) break;
        }
    }
    return BN_OK;
}

/* token_type is optional; without it every token is normal except, for SPM,
 * texts of the form <0xXX>, which can only be byte-fallback tokens. */
static enum bn_status load_types(bn_tokenizer *t, const bn_gguf *g, char *err, size_t errlen)
{
    const uint32_t n = t->n_vocab;
    t->type = alloc_array(n, 1, false);
    t->flags = alloc_array(n, 1, true);
    if (!t->type || !t->flags) return bn_errf(err, errlen, BN_ERR_NOMEM, "%s: out of memory", t->name);

    int64_t ki = bn_gguf_find_kv(g, KEY_TYPES);
    if (ki < 0) {
        for (uint32_t i = 0; i < n; i++) {
            int32_t id = (int32_t)i;
            t->type[i] = (t->model == TOK_SPM && parse_byte_token(tok_text(t, id), tok_len(t, id)) >= 0) ? TT_BYTE
                                                                                                       : TT_NORMAL;
        }
        return BN_OK;
    }
    const struct bn_gguf_kv *kv = bn_gguf_kv_at(g, ki);
    /* Files write int32; uint32 carries the same values. Anything else gets
     * the reader's own "wrong type" message. */
    if (kv->type != BN_GGUF_ARRAY || (kv->arr_type != BN_GGUF_INT32 && kv->arr_type != BN_GGUF_UINT32)) {
        bool found;
        enum bn_status st = bn_gguf_get_arr_opt(g, KEY_TYPES, BN_GGUF_INT32, &kv, &found, err, errlen);
        if (st != BN_OK) return st;
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '" KEY_TYPES "' has the wrong type", t->name);
    }
    enum bn_status st = check_len(t, KEY_TYPES, kv->arr_n, err, errlen);
    if (st != BN_OK) return st;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = rd_le32(kv->value + 4 * (size_t)i);
        if (v > TT_BYTE)
            return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '" KEY_TYPES "': token %u has type %d, expected 0..6",
                           t->name, i, (int)(int32_t)v);
        t->type[i] = (uint8_t)v;
    }
    return BN_OK;
}

static enum bn_status load_scores(bn_tokenizer *t, const bn_gguf *g, char *err, size_t errlen)
{
    const struct bn_gguf_kv *kv = NULL;
    bool found = false;
    enum bn_status st = bn_gguf_get_arr_opt(g, KEY_SCORES, BN_GGUF_FLOAT32, &kv, &found, err, errlen);
    if (st != BN_OK || !found) return st;
    if ((st = check_len(t, KEY_SCORES, kv->arr_n, err, errlen)) != BN_OK) return st;
    t->score = alloc_array(t->n_vocab, sizeof *t->score, false);
    if (!t->score) return bn_errf(err, errlen, BN_ERR_NOMEM, "%s: out of memory", t->name);
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        uint32_t u = rd_le32(kv->value + 4 * (size_t)i);
        float f;
        memcpy(&f, &u, sizeof f);
        /* A NaN would make the merge order depend on heap layout. */
        if (isnan(f))
            return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '" KEY_SCORES "': token %u has score NaN", t->name, i);
        t->score[i] = f;
    }
    return BN_OK;
}

static enum bn_status load_id(const bn_tokenizer *t, const bn_gguf *g, const char *key, int32_t *out, char *err,
                              size_t errlen)
{
    uint32_t v = 0;
    bool found = false;
    *out = -1;
    /* Some converters write "no such token" as a signed -1. */
    int64_t at = bn_gguf_find_kv(g, key);
    if (at >= 0 && bn_gguf_kv_at(g, at)->type == BN_GGUF_INT32) {
        int32_t sv = 0;
        enum bn_status st = bn_gguf_get_i32_opt(g, key, &sv, &found, err, errlen);
        if (st != BN_OK || sv == -1) return st;
    }
    enum bn_status st = bn_gguf_get_u32_opt(g, key, &v, &found, err, errlen);
    if (st != BN_OK || !found) return st;
    if (v >= t->n_vocab)
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '%s' is %u, but the vocabulary has only %u tokens", t->name,
                       key, v, t->n_vocab);
    *out = (int32_t)v;
    return BN_OK;
}

static enum bn_status load_special_ids(bn_tokenizer *t, const bn_gguf *g, char *err, size_t errlen)
{
    enum bn_status st;
    if ((st = load_id(t, g, "tokenizer.ggml.bos_token_id", &t->bos, err, errlen)) != BN_OK) return st;
    if ((st = load_id(t, g, "tokenizer.ggml.eos_token_id", &t->eos, err, errlen)) != BN_OK) return st;
    if ((st = load_id(t, g, "tokenizer.ggml.eot_token_id", &t->eot, err, errlen)) != BN_OK) return st;
    if ((st = load_id(t, g, "tokenizer.ggml.eom_token_id", &t->eom, err, errlen)) != BN_OK) return st;
    if ((st = load_id(t, g, "tokenizer.ggml.unknown_token_id", &t->unk, err, errlen)) != BN_OK) return st;
    if ((st = load_id(t, g, "tokenizer.ggml.padding_token_id", &t->pad, err, errlen)) != BN_OK) return st;

    /* SentencePiece models conventionally start with BOS; GPT-2 style vocabs
     * only when the file says so (llama.cpp's defaults). */
    t->add_bos = t->model == TOK_SPM;
    if ((st = bn_gguf_get_bool_opt(g, "tokenizer.ggml.add_bos_token", &t->add_bos, NULL, err, errlen)) != BN_OK)
        return st;
    t->add_space_prefix = true;
    if ((st = bn_gguf_get_bool_opt(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, NULL, err, errlen)) !=
        BN_OK)
        return st;
    return BN_OK;
}

static uint64_t merge_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

/* Merges "A B" become (id(A), id(B)) -> (rank, id(AB)). Symbols during BPE
 * are token ids, so a merge whose halves or result are not tokens can never
 * produce a token and is skipped (the Hugging Face converter never writes
 * such merges). A repeated pair keeps its first (lowest) rank. */
static enum bn_status load_merges(bn_tokenizer *t, const bn_gguf *g, char *err, size_t errlen)
{
    const struct bn_gguf_kv *kv = NULL;
    bool found = false;
    enum bn_status st = bn_gguf_get_arr_opt(g, KEY_MERGES, BN_GGUF_STRING, &kv, &found, err, errlen);
    if (st != BN_OK) return st;
    if (!found)
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: missing key '" KEY_MERGES "' (needed by 'gpt2')", t->name);
    if (kv->arr_n > UINT32_MAX)
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '" KEY_MERGES "' has too many elements", t->name);
    size_t cap = table_size((size_t)kv->arr_n);
    t->merge = cap ? alloc_array(cap, sizeof *t->merge, false) : NULL;
    if (!t->merge) return bn_errf(err, errlen, BN_ERR_NOMEM, "%s: out of memory for merges", t->name);
    t->merge_mask = cap - 1;
    for (size_t i = 0; i < cap; i++) t->merge[i].result = -1;

    for (uint64_t r = 0; r < kv->arr_n; r++) {
        const char *s = kv->arr_str[r].data;
        size_t len = (size_t)kv->arr_str[r].len;
        /* Search from the second byte: a part is never empty, so a space in
         * front can only belong to the first part. */
        const char *sp = len >= 2 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp) {
            char q[64];
            quote(q, sizeof q, s, len);
            return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '" KEY_MERGES "': merge %llu ('%s') is not 'A B'",
                           t->name, (unsigned long long)r, q);
        }
        size_t an = (size_t)(sp - s), bn = len - an - 1;
        int32_t a = lookup(t, s, an), b = lookup(t, sp + 1, bn);
        int32_t res = lookup_pair(t, s, an, sp + 1, bn);
        if (a < 0 || b < 0 || res < 0) continue;
        uint64_t key = merge_key(a, b);
        for (size_t j = (size_t)mix64(key) & t->merge_mask;; j = (j + 1) & t->merge_mask) {
            struct merge_slot *m = &t->merge[j];
            if (m->result < 0) {
                m->key = key;
                m->rank = (uint32_t)r;
                m->result = res;
                break;
            }
            if (m->key == key) break;
        }
    }
    return BN_OK;
}

static const struct merge_slot *find_merge(const bn_tokenizer *t, int32_t a, int32_t b)
{
    uint64_t key = merge_key(a, b);
    for (size_t j = (size_t)mix64(key) & t->merge_mask;; j = (j + 1) & t->merge_mask) {
        const struct merge_slot *m = &t->merge[j];
        if (m->result < 0) return NULL;
        if (m->key == key) return m;
    }
}

/* Byte tokens: the mapped character for gpt2, <0xXX> for SPM. */
static void find_byte_tokens(bn_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int n;
        if (t->model == TOK_GPT2) {
            n = utf8_encode(gpt2_byte_to_cp((unsigned char)b), buf);
        } else {
            n = snprintf(buf, sizeof buf, "<0x%02X>", (unsigned)b);
        }
        t->byte_tok[b] = lookup(t, buf, (size_t)n);
    }
}

/* Tokens the splitter looks for in raw text: control and unknown ones (when
 * parse_special) and user-defined ones (always), as in llama.cpp. */
static bool is_special_type(uint8_t ty) { return ty == TT_CONTROL || ty == TT_UNKNOWN || ty == TT_USER; }

static uint64_t trie_key(uint32_t node, unsigned char b) { return (uint64_t)node << 8 | b; }

static uint32_t trie_child(const bn_tokenizer *t, uint32_t node, unsigned char b)
{
    if (node == 0) return t->trie_root[b];
    uint64_t key = trie_key(node, b);
    for (size_t j = (size_t)mix64(key) & t->trie_mask;; j = (j + 1) & t->trie_mask) {
        const struct trie_edge *e = &t->trie_edge[j];
        if (e->child == 0) return 0;
        if (e->key == key) return e->child;
    }
}

static enum bn_status build_special_trie(bn_tokenizer *t, char *err, size_t errlen)
{
    /* Each byte of each special text adds at most one node and one edge. */
    size_t bytes = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++)
        if (is_special_type(t->type[i])) bytes += tok_len(t, (int32_t)i); /* <= total pool size: no overflow */
    if (bytes >= UINT32_MAX) return bn_errf(err, errlen, BN_ERR_MODEL, "%s: special tokens too long", t->name);
    size_t cap = table_size(bytes);
    t->trie_edge = cap ? alloc_array(cap, sizeof *t->trie_edge, true) : NULL;
    t->trie_any = alloc_array(bytes + 1, sizeof *t->trie_any, false);
    t->trie_user = alloc_array(bytes + 1, sizeof *t->trie_user, false);
    if (!t->trie_edge || !t->trie_any || !t->trie_user)
        return bn_errf(err, errlen, BN_ERR_NOMEM, "%s: out of memory", t->name);
    t->trie_mask = cap - 1;
    t->trie_any[0] = t->trie_user[0] = -1;
    uint32_t n_nodes = 1;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        int32_t id = (int32_t)i;
        if (!is_special_type(t->type[i]) || tok_len(t, id) == 0) continue;
        const unsigned char *s = (const unsigned char *)tok_text(t, id);
        uint32_t node = 0;
        for (size_t k = 0; k < tok_len(t, id); k++) {
            uint32_t next = trie_child(t, node, s[k]);
            if (next == 0) {
                next = n_nodes++;
                t->trie_any[next] = t->trie_user[next] = -1;
                if (node == 0) {
                    t->trie_root[s[k]] = next;
                } else {
                    uint64_t key = trie_key(node, s[k]);
                    size_t j = (size_t)mix64(key) & t->trie_mask;
                    while (t->trie_edge[j].child != 0) j = (j + 1) & t->trie_mask;
                    t->trie_edge[j].key = key;
                    t->trie_edge[j].child = next;
                }
            }
            node = next;
        }
        /* Ids ascend, so the first token to claim a node is the lowest. */
        if (t->trie_any[node] < 0) t->trie_any[node] = id;
        if (t->type[i] == TT_USER && t->trie_user[node] < 0) t->trie_user[node] = id;
    }
    return BN_OK;
}

static void piece_emit(const bn_tokenizer *t, int32_t id, void (*put)(void *, unsigned char), void *ctx);
static void count_put(void *ctx, unsigned char b)
{
    (void)b;
    (*(size_t *)ctx)++;
}

/* End-of-generation flags and the longest piece. */
static void finish_tables(bn_tokenizer *t)
{
    static const char *const eog_texts[] = {"<|eot_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "</s>",
                                            "<|eom_id|>"};
    size_t longest = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        int32_t id = (int32_t)i;
        if (t->type[i] == TT_CONTROL) {
            for (size_t k = 0; k < sizeof eog_texts / sizeof eog_texts[0]; k++)
                if (tok_len(t, id) == strlen(eog_texts[k]) && mem_eq(tok_text(t, id), eog_texts[k], tok_len(t, id)))
                    t->flags[i] |= TF_EOG;
        }
        size_t n = 0;
        piece_emit(t, id, count_put, &n);
        if (n > longest) longest = n;
    }
    const int32_t ends[] = {t->eos, t->eot, t->eom};
    for (size_t k = 0; k < 3; k++)
        if (ends[k] >= 0) t->flags[ends[k]] |= TF_EOG;
    /* decode_stream may turn every byte of a piece (plus up to 3 held back)
     * into the 3-byte U+FFFD, and tokenizer.h promises that a buffer of
     * 64 + max_piece always suffices: so report 3x the longest piece. The
     * bound stays valid for bn_tokenizer_piece buffers too. */
    t->max_piece = longest <= SIZE_MAX / 3 ? 3 * longest : SIZE_MAX;
}

enum bn_status bn_tokenizer_create(const bn_gguf *g, bn_tokenizer **out, char *err, size_t errlen)
{
    if (!out) return bn_errf(err, errlen, BN_ERR_USAGE, "bn_tokenizer_create: NULL output");
    *out = NULL;
    if (!g) return bn_errf(err, errlen, BN_ERR_USAGE, "bn_tokenizer_create: NULL gguf");
    bn_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return bn_errf(err, errlen, BN_ERR_NOMEM, "out of memory");
    const char *name = bn_gguf_name(g);
    if (!name) name = "(gguf)";
    t->name = malloc(strlen(name) + 1);
    if (!t->name) {
        free(t);
        return bn_errf(err, errlen, BN_ERR_NOMEM, "out of memory");
    }
    memcpy(t->name, name, strlen(name) + 1);

    enum bn_status st;
    if ((st = load_model_kind(t, g, err, errlen)) != BN_OK || (st = load_tokens(t, g, err, errlen)) != BN_OK ||
        (st = load_types(t, g, err, errlen)) != BN_OK || (st = load_scores(t, g, err, errlen)) != BN_OK ||
        (st = load_special_ids(t, g, err, errlen)) != BN_OK ||
        (t->model == TOK_GPT2 && (st = load_merges(t, g, err, errlen)) != BN_OK) ||
        (st = build_special_trie(t, err, errlen)) != BN_OK) {
        bn_tokenizer_destroy(t);
        return st;
    }
    find_byte_tokens(t);
    finish_tables(t);
    *out = t;
    return BN_OK;
}

void bn_tokenizer_destroy(bn_tokenizer *t)
{
    if (!t) return;
    free(t->name);
    free(t->text);
    free(t->off);
    free(t->type);
    free(t->flags);
    free(t->score);
    free(t->hash);
    free(t->merge);
    free(t->trie_edge);
    free(t->trie_any);
    free(t->trie_user);
    free(t);
}

uint32_t bn_tokenizer_n_vocab(const bn_tokenizer *t) { return t->n_vocab; }
int32_t bn_tokenizer_bos(const bn_tokenizer *t) { return t->bos; }
int32_t bn_tokenizer_eos(const bn_tokenizer *t) { return t->eos; }
int32_t bn_tokenizer_eot(const bn_tokenizer *t) { return t->eot; }
bool bn_tokenizer_add_bos(const bn_tokenizer *t) { return t->add_bos; }
size_t bn_tokenizer_max_piece(const bn_tokenizer *t) { return t->max_piece; }

bool bn_tokenizer_is_eog(const bn_tokenizer *t, int32_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab && (t->flags[id] & TF_EOG);
}

/* ---------------------------------------------------------------------------
 * Encoding state shared by the sections below
 * ------------------------------------------------------------------------- */

struct ids {
    int32_t *v;
    size_t n, cap;
};

static bool ids_push(struct ids *o, int32_t id)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof *o->v) return false;
        int32_t *v = realloc(o->v, cap * sizeof *v);
        if (!v) return false;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = id;
    return true;
}

/* A symbol of the merge loops: a byte range of the fragment in a doubly
 * linked list. len == 0 marks a symbol merged into its left neighbour. */
struct sym {
    int32_t start, len;
    int32_t prev, next;
    int32_t id; /* token of the range, -1 if none (yet) */
};

/* A candidate merge of sym[left] and sym[right]: lowest key first, ties to
 * the leftmost pair. BPE: key = rank, a/b = the two ids. SPM: key = -score,
 * a = combined length. Entries are checked against the symbols when popped,
 * since merges nearby may have made them stale. */
struct pair {
    double key; /* exact for ranks < 2^53 and for every float score */
    int32_t left, right;
    int32_t a, b;
    int32_t result;
};

struct scratch {
    struct sym *sym;
    size_t sym_cap;
    struct pair *heap;
    size_t heap_cap, heap_n;
    char *buf;
    size_t buf_cap;
};

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2) return false;
        c *= 2;
    }
    if (c > SIZE_MAX / elem) return false;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

/* Room for n symbols and every pair they can produce: n - 1 initial pairs
 * plus at most two per merge, and there are at most n - 1 merges. */
static bool scratch_reserve(struct scratch *s, size_t n)
{
    return grow((void **)&s->sym, &s->sym_cap, n, sizeof *s->sym) &&
           grow((void **)&s->heap, &s->heap_cap, 3 * n + 1, sizeof *s->heap);
}

static bool pair_before(const struct pair *x, const struct pair *y)
{
    return x->key < y->key || (x->key == y->key && x->left < y->left);
}

static void heap_push(struct scratch *s, const struct pair *p)
{
    BN_ASSERT(s->heap_n < s->heap_cap);
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_before(p, &s->heap[up])) break;
        s->heap[i] = s->heap[up];
        i = up;
    }
    s->heap[i] = *p;
}

static struct pair heap_pop(struct scratch *s)
{
    struct pair top = s->heap[0];
    struct pair last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&s->heap[c + 1], &s->heap[c])) c++;
        if (!pair_before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n > 0) s->heap[i] = last;
    return top;
}

struct enc {
    const bn_tokenizer *t;
    struct ids out;
    struct scratch s;
    char *err;
    size_t errlen;
};

/* A byte no token covers: the unknown token, else an error (a vocabulary
 * without byte tokens and without <unk> cannot encode arbitrary text). */
static enum bn_status emit_byte(struct enc *e, unsigned char b)
{
    int32_t id = e->t->byte_tok[b] >= 0 ? e->t->byte_tok[b] : e->t->unk;
    if (id < 0)
        return bn_errf(e->err, e->errlen, BN_ERR_MODEL,
                       "%s: the vocabulary has no token for byte 0x%02X and no unknown token", e->t->name, b);
    return ids_push(&e->out, id) ? BN_OK : bn_errf(e->err, e->errlen, BN_ERR_NOMEM, "out of memory");
}

/* ---------------------------------------------------------------------------
 * 3. Special-token splitting
 * ------------------------------------------------------------------------- */

/* Finds the first position >= pos where a special token starts, and the
 * longest such token there. Returns false when none is left. Control and
 * unknown tokens count only with parse_special; user-defined ones always. */
static bool split_next_special(const bn_tokenizer *t, const char *text, size_t len, size_t pos, bool parse_special,
                               size_t *at, int32_t *id, size_t *mlen)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t p = pos; p < len; p++) {
        int32_t best = -1;
        size_t best_len = 0;
        uint32_t node = 0;
        for (size_t q = p; q < len && (node = trie_child(t, node, s[q])) != 0; q++) {
            int32_t cand = parse_special ? t->trie_any[node] : t->trie_user[node];
            if (cand >= 0) {
                best = cand;
                best_len = q - p + 1;
            }
        }
        if (best >= 0) {
            *at = p;
            *id = best;
            *mlen = best_len;
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------------------
 * 4. Byte-level BPE ("gpt2")
 * ------------------------------------------------------------------------- */

static void bpe_try_pair(struct enc *e, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return;
    const struct sym *sl = &e->s.sym[l], *sr = &e->s.sym[r];
    if (sl->id < 0 || sr->id < 0) return;
    const struct merge_slot *m = find_merge(e->t, sl->id, sr->id);
    if (!m) return;
    struct pair p = {(double)m->rank, l, r, sl->id, sr->id, m->result};
    heap_push(&e->s, &p);
}

/* BPE over one word: every byte starts as its own symbol (the token of its
 * mapped character), then the adjacent pair with the lowest merge rank is
 * merged until no pair has a merge. O(n log n) with the heap. */
static enum bn_status bpe_word(struct enc *e, const unsigned char *w, size_t n)
{
    if (!scratch_reserve(&e->s, n)) return bn_errf(e->err, e->errlen, BN_ERR_NOMEM, "out of memory");
    struct sym *sym = e->s.sym;
    for (size_t i = 0; i < n; i++) {
        sym[i].start = (int32_t)i;
        sym[i].len = 1;
        sym[i].prev = (int32_t)i - 1;
        sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
        sym[i].id = e->t->byte_tok[w[i]];
    }
    e->s.heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) bpe_try_pair(e, (int32_t)i, (int32_t)i + 1);
    while (e->s.heap_n > 0) {
        struct pair p = heap_pop(&e->s);
        struct sym *l = &sym[p.left], *r = &sym[p.right];
        if (l->len == 0 || r->len == 0 || l->next != p.right || l->id != p.a || r->id != p.b) continue;
        l->id = p.result;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        bpe_try_pair(e, l->prev, p.left);
        bpe_try_pair(e, p.left, l->next);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) {
        enum bn_status st;
        if (sym[i].id >= 0) {
            if (!ids_push(&e->out, sym[i].id)) return bn_errf(e->err, e->errlen, BN_ERR_NOMEM, "out of memory");
        } else {
            /* Only a lone byte without a token gets here (merged symbols are
             * tokens by construction). */
            for (int32_t k = 0; k < sym[i].len; k++)
                if ((st = emit_byte(e, w[sym[i].start + k])) != BN_OK) return st;
        }
    }
    return BN_OK;
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Stand-in for the pre-tokenizer regexes: cut the text into words at
 * whitespace boundaries, the last space of a whitespace run going with the
 * following word (" word", as GPT-2 does), other whitespace runs alone. BPE
 * then never merges across words. This matches the regexes for plain
 * space-separated words but not their splits at punctuation, digits,
 * contractions or newline runs; a later task replaces it with the regexes. */
static enum bn_status bpe_fragment(struct enc *e, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        if (is_space(s[i])) {
            while (end < len && is_space(s[end])) end++;
            if (end < len && s[end - 1] == ' ') end--; /* leave the space to the word */
            if (end == i) end = i + 1;                 /* just " " before a word: part of it */
            else {
                enum bn_status st = bpe_word(e, s + i, end - i);
                if (st != BN_OK) return st;
                i = end;
                continue;
            }
        }
        while (end < len && !is_space(s[end])) end++;
        enum bn_status st = bpe_word(e, s + i, end - i);
        if (st != BN_OK) return st;
        i = end;
    }
    return BN_OK;
}

/* ---------------------------------------------------------------------------
 * 5. SentencePiece ("llama")
 * ------------------------------------------------------------------------- */

/* SentencePiece only builds pieces that are ordinary vocabulary entries:
 * never control, unknown, unused or byte tokens (so "<s>" or "<0x41>" in the
 * text stay plain characters). */
static bool spm_mergeable(uint8_t ty) { return ty == TT_NORMAL || ty == TT_UNDEFINED || ty == TT_USER; }

static int32_t spm_lookup(const bn_tokenizer *t, const char *s, size_t n)
{
    int32_t id = lookup(t, s, n);
    return id >= 0 && spm_mergeable(t->type[id]) ? id : -1;
}

static void spm_try_pair(struct enc *e, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return;
    const struct sym *sl = &e->s.sym[l], *sr = &e->s.sym[r];
    int32_t len = sl->len + sr->len;
    int32_t id = spm_lookup(e->t, e->s.buf + sl->start, (size_t)len);
    if (id < 0) return;
    float score = e->t->score ? e->t->score[id] : 0.0f;
    struct pair p = {-(double)score, l, r, len, 0, id};
    heap_push(&e->s, &p);
}

/* One text fragment: spaces become U+2581, a U+2581 is put in front when
 * `prefix` (start of the text, or right after a special token, as llama.cpp
 * does), then characters are merged pairwise, best-scoring concatenation
 * first (ties: leftmost), while the concatenation is a vocabulary piece.
 * Characters left without a piece fall back to <0xXX> tokens, else <unk>. */
static enum bn_status spm_fragment(struct enc *e, const char *text, size_t len, bool prefix)
{
    const bn_tokenizer *t = e->t;
    static const char ws[] = "\xE2\x96\x81"; /* U+2581; 3 bytes are copied, not the NUL */
    size_t n = prefix && t->add_space_prefix ? 3 : 0;
    for (size_t i = 0; i < len; i++) n += text[i] == ' ' ? 3 : 1; /* len <= TOK_MAX_INPUT: no overflow */
    if (!grow((void **)&e->s.buf, &e->s.buf_cap, n, 1) || !scratch_reserve(&e->s, n))
        return bn_errf(e->err, e->errlen, BN_ERR_NOMEM, "out of memory");
    char *buf = e->s.buf;
    size_t k = 0;
    if (prefix && t->add_space_prefix) {
        memcpy(buf, ws, 3);
        k = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + k, ws, 3);
            k += 3;
        } else {
            buf[k++] = text[i];
        }
    }

    /* Symbols are characters; an invalid byte is a symbol of its own. */
    struct sym *sym = e->s.sym;
    int32_t ns = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int cl = utf8_decode((const unsigned char *)buf + i, n - i, &cp);
        if (cl == 0) cl = 1;
        sym[ns].start = (int32_t)i;
        sym[ns].len = cl;
        sym[ns].prev = ns - 1;
        sym[ns].next = -1;
        if (ns > 0) sym[ns - 1].next = ns;
        sym[ns].id = spm_lookup(t, buf + i, (size_t)cl);
        ns++;
        i += (size_t)cl;
    }
    e->s.heap_n = 0;
    for (int32_t i = 0; i + 1 < ns; i++) spm_try_pair(e, i, i + 1);
    while (e->s.heap_n > 0) {
        struct pair p = heap_pop(&e->s);
        struct sym *l = &sym[p.left], *r = &sym[p.right];
        /* Left and right starts never move, so adjacency plus the combined
         * length identify the same text as when the pair was pushed. */
        if (l->len == 0 || r->len == 0 || l->next != p.right || l->len + r->len != p.a) continue;
        l->id = p.result;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        spm_try_pair(e, l->prev, p.left);
        spm_try_pair(e, p.left, l->next);
    }
    for (int32_t i = ns > 0 ? 0 : -1; i >= 0; i = sym[i].next) {
        if (sym[i].id >= 0) {
            if (!ids_push(&e->out, sym[i].id)) return bn_errf(e->err, e->errlen, BN_ERR_NOMEM, "out of memory");
            continue;
        }
        for (int32_t b = 0; b < sym[i].len; b++) {
            enum bn_status st = emit_byte(e, (unsigned char)buf[sym[i].start + b]);
            if (st != BN_OK) return st;
        }
    }
    return BN_OK;
}

/* ---------------------------------------------------------------------------
 * 6. Encode driver
 * ------------------------------------------------------------------------- */

/* The text between special tokens; `after_special` is true at the start of
 * the text and right after a special token. */
static enum bn_status encode_fragment(struct enc *e, const char *text, size_t len, bool after_special)
{
    if (e->t->model == TOK_GPT2) return bpe_fragment(e, text, len);
    return spm_fragment(e, text, len, after_special);
}

enum bn_status bn_tokenizer_encode(const bn_tokenizer *t, const char *text, size_t len, bool add_bos,
                                   bool parse_special, int32_t **ids, size_t *n, char *err, size_t errlen)
{
    if (!t || !ids || !n || (!text && len > 0))
        return bn_errf(err, errlen, BN_ERR_USAGE, "bn_tokenizer_encode: NULL argument");
    *ids = NULL;
    *n = 0;
    if (len > TOK_MAX_INPUT)
        return bn_errf(err, errlen, BN_ERR_USAGE, "text of %zu bytes is too long to tokenize (limit %zu)", len,
                       TOK_MAX_INPUT);
    struct enc e = {.t = t, .err = err, .errlen = errlen};
    enum bn_status st = BN_OK;
    if (add_bos && t->bos >= 0 && !ids_push(&e.out, t->bos)) st = bn_errf(err, errlen, BN_ERR_NOMEM, "out of memory");

    size_t pos = 0;
    bool after_special = true;
    while (st == BN_OK && pos < len) {
        size_t at = len, mlen = 0;
        int32_t id = -1;
        bool hit = split_next_special(t, text, len, pos, parse_special, &at, &id, &mlen);
        if (at > pos) {
            st = encode_fragment(&e, text + pos, at - pos, after_special);
            after_special = false;
        }
        if (st == BN_OK && hit) {
            if (!ids_push(&e.out, id)) st = bn_errf(err, errlen, BN_ERR_NOMEM, "out of memory");
            after_special = true;
            pos = at + mlen;
        } else {
            pos = len;
        }
    }
    /* Callers always get an array to free, even for no tokens. */
    if (st == BN_OK && !e.out.v && !(e.out.v = malloc(sizeof *e.out.v)))
        st = bn_errf(err, errlen, BN_ERR_NOMEM, "out of memory");
    free(e.s.sym);
    free(e.s.heap);
    free(e.s.buf);
    if (st != BN_OK) {
        free(e.out.v);
        return st;
    }
    *ids = e.out.v;
    *n = e.out.n;
    return BN_OK;
}

/* ---------------------------------------------------------------------------
 * 7. Decoding
 * ------------------------------------------------------------------------- */

/* Produces the raw bytes of a token through put(): control, unknown and
 * user-defined tokens are their text (user-defined ones are matched in raw
 * text, so that is what they stand for); byte tokens are their byte; normal
 * tokens undo the model's text mapping. */
static void piece_emit(const bn_tokenizer *t, int32_t id, void (*put)(void *, unsigned char), void *ctx)
{
    if (id < 0 || (uint32_t)id >= t->n_vocab) return;
    const unsigned char *s = (const unsigned char *)tok_text(t, id);
    size_t n = tok_len(t, id);
    uint8_t ty = t->type[id];
    if (ty == TT_CONTROL || ty == TT_UNKNOWN || ty == TT_USER) {
        for (size_t i = 0; i < n; i++) put(ctx, s[i]);
        return;
    }
    if (ty == TT_BYTE) {
        int b = parse_byte_token((const char *)s, n);
        if (b >= 0) {
            put(ctx, (unsigned char)b);
            return;
        }
    }
    if (t->model == TOK_GPT2) {
        /* Characters of the byte map become their byte; any other valid
         * character (not produced by BPE, but vocabularies may hold them) is
         * kept as UTF-8, and invalid bytes pass through unchanged. */
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int cl = utf8_decode(s + i, n - i, &cp);
            int b = cl > 0 ? gpt2_cp_to_byte(cp) : -1;
            if (b >= 0) {
                put(ctx, (unsigned char)b);
            } else {
                if (cl == 0) cl = 1;
                for (int k = 0; k < cl; k++) put(ctx, s[i + (size_t)k]);
            }
            i += (size_t)cl;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (i + 3 <= n && s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) {
            put(ctx, ' ');
            i += 2;
        } else {
            put(ctx, s[i]);
        }
    }
}

struct raw_out {
    char *p;
    size_t cap, n; /* n counts every byte, written or not */
};

static void raw_put(void *ctx, unsigned char b)
{
    struct raw_out *o = ctx;
    if (o->n < o->cap) o->p[o->n] = (char)b;
    o->n++;
}

size_t bn_tokenizer_piece(const bn_tokenizer *t, int32_t id, char *buf, size_t cap)
{
    struct raw_out o = {buf, buf ? cap : 0, 0};
    piece_emit(t, id, raw_put, &o);
    return o.n;
}

/* The streaming UTF-8 repair: complete valid characters go out, a valid but
 * unfinished prefix waits in d->pending, and each maximal invalid part
 * becomes one U+FFFD (the Unicode "maximal subpart" practice), after which
 * the offending byte is looked at again as a possible start. */
struct stream_out {
    struct bn_detok *d;
    char *p;
    size_t cap, n;
};

/* Whole characters only: when the caller's buffer is too small a character
 * is dropped rather than cut, so the output stays valid UTF-8. */
static void stream_write(struct stream_out *o, const unsigned char *b, size_t k)
{
    if (k > o->cap - o->n) return;
    memcpy(o->p + o->n, b, k);
    o->n += k;
}

static const unsigned char replacement[3] = {0xEF, 0xBF, 0xBD};

static void stream_put(void *ctx, unsigned char b)
{
    struct stream_out *o = ctx;
    struct bn_detok *d = o->d;
    if (d->n_pending > 0) {
        int need = utf8_need(d->pending[0]);
        if (utf8_cont_ok(d->pending[0], d->n_pending, b)) {
            d->pending[d->n_pending++] = b;
            if (d->n_pending == need) {
                stream_write(o, d->pending, (size_t)need);
                d->n_pending = 0;
            }
            return;
        }
        stream_write(o, replacement, 3);
        d->n_pending = 0;
    }
    int need = utf8_need(b);
    if (need == 1) {
        stream_write(o, &b, 1);
    } else if (need == 0) {
        stream_write(o, replacement, 3);
    } else {
        d->pending[0] = b;
        d->n_pending = 1;
    }
}

/* A state the functions above cannot produce (a caller's uninitialised or
 * corrupted struct) is dropped as one U+FFFD. */
static void stream_check_state(struct stream_out *o)
{
    struct bn_detok *d = o->d;
    if (d->n_pending == 0) return;
    if (d->n_pending < 0 || d->n_pending > 3 || utf8_need(d->pending[0]) <= d->n_pending) {
        d->n_pending = 0;
        stream_write(o, replacement, 3);
    }
}

size_t bn_tokenizer_decode_stream(const bn_tokenizer *t, struct bn_detok *d, int32_t id, char *out, size_t cap)
{
    if (!d) return 0;
    struct stream_out o = {d, out, out ? cap : 0, 0};
    stream_check_state(&o);
    piece_emit(t, id, stream_put, &o);
    return o.n;
}

size_t bn_tokenizer_decode_flush(const bn_tokenizer *t, struct bn_detok *d, char *out, size_t cap)
{
    (void)t;
    if (!d) return 0;
    struct stream_out o = {d, out, out ? cap : 0, 0};
    stream_check_state(&o);
    if (d->n_pending > 0) {
        stream_write(&o, replacement, 3);
        d->n_pending = 0;
    }
    return o.n;
}
