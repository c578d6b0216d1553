/*
 * tokenizer.c - the vocabulary: loading and checking the tokenizer.ggml.*
 * metadata into the tables that encoding (tokenizer_encode.c) and decoding
 * (tokenizer_decode.c) read.
 *
 *   1. small helpers: allocation, GPT-2's byte <-> character map
 *   2. loading: model kind and pre-tokenizer, tokens, types, scores, special
 *      ids, merges, byte tokens, the special-token trie, end-of-generation
 *      flags
 *   3. accessors
 */
#include "tokenizer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"
#include "tokenizer_utf8.h"

/* ---------------------------------------------------------------------------
 * 1. Helpers
 * ------------------------------------------------------------------------- */

/* Allocation of n elements with the product checked. */
static void *alloc_array(size_t n, size_t size, bool zero)
{
    if (n == 0) n = 1;
    if (n > SIZE_MAX / size) return NULL;
    return zero ? calloc(n, size) : malloc(n * size);
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


/* GPT-2's bytes_to_unicode: byte-level BPE works on printable characters, so
 * the 188 "printable" bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for
 * themselves and the other 68 (0x00..0x20, 0x7F..0xA0, 0xAD), in byte order,
 * become U+0100..U+0143. Both directions are computed, not tabled. */
static bool gpt2_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t tok_gpt2_byte_to_cp(unsigned char b)
{
    if (gpt2_printable(b)) return b;
    if (b <= 0x20) return 0x100u + b;             /* 33 bytes: U+0100..U+0120 */
    if (b >= 0x7F && b <= 0xA0) return 0x121u + (b - 0x7Fu); /* 34: U+0121..U+0142 */
    return 0x143;                                 /* 0xAD */
}

/* Inverse of tok_gpt2_byte_to_cp; -1 for code points outside the map. */
int tok_gpt2_cp_to_byte(uint32_t cp)
{
    if (cp <= 0xFF) return gpt2_printable(cp) ? (int)cp : -1;
    if (cp <= 0x120) return (int)(cp - 0x100);
    if (cp <= 0x142) return (int)(0x7F + (cp - 0x121));
    if (cp == 0x143) return 0xAD;
    return -1;
}

/* "<0xXX>" -> XX, or -1. */
int tok_parse_byte_token(const char *s, size_t n)
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
#define KEY_PRE "tokenizer.ggml.pre"

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

/* tokenizer.ggml.pre names the pre-tokenizer of a gpt2 vocabulary. Files
 * converted before the key existed lack it: the 128256-token vocabulary is
 * then Llama 3's (microsoft/bitnet-b1.58-2B-4T's official GGUF is such a
 * file), anything else gets llama.cpp's default rules. An unknown name is
 * refused rather than tokenized wrongly. Llama 3's tokenizer.json also sets
 * ignore_merges: a word that is itself a token is taken whole. */
static enum bn_status load_pre(bn_tokenizer *t, const bn_gguf *g, char *err, size_t errlen)
{
    struct bn_gguf_str s;
    bool found = false;
    t->pre = BN_PRETOK_DEFAULT;
    if (t->model != TOK_GPT2) return BN_OK;
    enum bn_status st = bn_gguf_get_str_opt(g, KEY_PRE, &s, &found, err, errlen);
    if (st != BN_OK) return st;
    if (!found) {
        t->pre = t->n_vocab == 128256 ? BN_PRETOK_LLAMA3 : BN_PRETOK_DEFAULT;
        t->pre_guessed = true;
    } else if (!bn_pretok_from_name(s.data, (size_t)s.len, &t->pre)) {
        char q[64];
        quote(q, sizeof q, s.data, (size_t)s.len);
        return bn_errf(err, errlen, BN_ERR_MODEL,
                       "%s: key '" KEY_PRE "' is '%s': unsupported pre-tokenizer (supported: default, llama-bpe, "
                       "gpt-2, mpt, starcoder, refact, falcon, deepseek-coder, deepseek-llm and aliases)",
                       t->name, q);
    }
    t->ignore_merges = t->pre == BN_PRETOK_LLAMA3;
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
    for (size_t i = 0; i < cap; i++) t->hash[i] = (struct tok_slot){0, -1};

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
        uint64_t h = tok_mix64(tok_fnv(TOK_FNV_OFFSET, tok_text(t, id), tok_len(t, id)));
        uint32_t fp = (uint32_t)(h >> 32);
        for (size_t j = (size_t)h & t->hash_mask;; j = (j + 1) & t->hash_mask) {
            struct tok_slot *slot = &t->hash[j];
            if (slot->id < 0) {
                *slot = (struct tok_slot){fp, id};
                break;
            }
            if (slot->fp == fp && tok_len(t, slot->id) == tok_len(t, id) &&
                mem_eq(tok_text(t, slot->id), tok_text(t, id), tok_len(t, id)))
                break;
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
            t->type[i] = (t->model == TOK_SPM && tok_parse_byte_token(tok_text(t, id), tok_len(t, id)) >= 0) ? TT_BYTE
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

    /* SentencePiece models conventionally start with BOS, and so does Llama
     * 3 (its Hugging Face post-processor prepends <|begin_of_text|>); other
     * GPT-2 style vocabs only when the file says so (llama.cpp's defaults). */
    t->add_bos = t->model == TOK_SPM || (t->model == TOK_GPT2 && t->pre == BN_PRETOK_LLAMA3);
    if ((st = bn_gguf_get_bool_opt(g, "tokenizer.ggml.add_bos_token", &t->add_bos, NULL, err, errlen)) != BN_OK)
        return st;
    t->add_space_prefix = true;
    if ((st = bn_gguf_get_bool_opt(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, NULL, err, errlen)) !=
        BN_OK)
        return st;
    return BN_OK;
}

/* Merges "A B" become (id(A), id(B)) -> (rank, id(AB)). Symbols during BPE
 * are token ids, so a merge whose halves or result are not tokens can never
 * produce a token and is skipped (the Hugging Face converter never writes
 * such merges).
 *
 * Layout: the merges grouped by left id (t->merge_first[a] ..
 * t->merge_first[a + 1]), each group sorted by right id then rank, so a
 * lookup is a binary search in a short run and a repeated pair finds its
 * first (lowest) rank. Built by two stable counting sorts, by right id then
 * by left id, over the merges in rank order: a hash table of 2^20 slots
 * would cost a cache miss per merge at load, and loading the 280147 merges
 * of Llama 3 must stay well under 100 ms. */
static enum bn_status load_merges(bn_tokenizer *t, const bn_gguf *g, char *err, size_t errlen)
{
    const struct bn_gguf_kv *kv = NULL;
    bool found = false;
    enum bn_status st = bn_gguf_get_arr_opt(g, KEY_MERGES, BN_GGUF_STRING, &kv, &found, err, errlen);
    if (st != BN_OK) return st;
    if (!found)
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: missing key '" KEY_MERGES "' (needed by 'gpt2')", t->name);
    if (kv->arr_n >= UINT32_MAX)
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '" KEY_MERGES "' has too many elements", t->name);
    size_t n = (size_t)kv->arr_n;
    /* Pass 1: resolve each merge to ids (left ids kept aside) and count the
     * merges per left and per right id. */
    const size_t nv = t->n_vocab;
    int32_t *left = alloc_array(n, sizeof *left, false);
    struct merge_ent *tmp = alloc_array(n, sizeof *tmp, false);
    uint32_t *by_right = alloc_array(nv + 1, sizeof *by_right, true);
    uint32_t *order = alloc_array(n, sizeof *order, false);
    t->merge_first = alloc_array(nv + 1, sizeof *t->merge_first, true);
    t->merge_ent = alloc_array(n, sizeof *t->merge_ent, false);
    if (!left || !tmp || !by_right || !order || !t->merge_first || !t->merge_ent) {
        st = bn_errf(err, errlen, BN_ERR_NOMEM, "%s: out of memory for merges", t->name);
        goto done;
    }
    size_t kept = 0;
    for (size_t r = 0; r < n; r++) {
        const char *s = kv->arr_str[r].data;
        size_t len = (size_t)kv->arr_str[r].len;
        /* Search from the second byte: a part is never empty, so a space in
         * front can only belong to the first part. */
        const char *sp = len >= 2 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp) {
            char q[64];
            quote(q, sizeof q, s, len);
            st = bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '" KEY_MERGES "': merge %zu ('%s') is not 'A B'",
                         t->name, r, q);
            goto done;
        }
        size_t an = (size_t)(sp - s), bn = len - an - 1;
        int32_t a = tok_lookup(t, s, an), b = tok_lookup(t, sp + 1, bn);
        if (a < 0 || b < 0) continue;
        int32_t res = tok_lookup_pair(t, s, an, sp + 1, bn);
        if (res < 0) continue;
        left[kept] = a;
        tmp[kept] = (struct merge_ent){b, res, (uint32_t)r};
        kept++;
        t->merge_first[a + 1]++;
        by_right[b + 1]++;
    }
    /* Pass 2: stable by right id (ranks stay ascending among equal pairs),
     * then stable into the groups by left id. */
    for (size_t i = 0; i < nv; i++) {
        by_right[i + 1] += by_right[i];
        t->merge_first[i + 1] += t->merge_first[i];
    }
    for (size_t k = 0; k < kept; k++) order[by_right[tmp[k].right]++] = (uint32_t)k;
    uint32_t *fill = by_right; /* reused: by_right's counts are spent */
    memcpy(fill, t->merge_first, nv * sizeof *fill);
    for (size_t j = 0; j < kept; j++) {
        uint32_t k = order[j];
        t->merge_ent[fill[left[k]]++] = tmp[k];
    }
done:
    free(order);
    free(by_right);
    free(left);
    free(tmp);
    return st;
}

/* Byte tokens: the mapped character for gpt2, <0xXX> for SPM. */
static void find_byte_tokens(bn_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int n;
        if (t->model == TOK_GPT2) {
            n = bn_utf8_encode(tok_gpt2_byte_to_cp((unsigned char)b), buf);
        } else {
            n = snprintf(buf, sizeof buf, "<0x%02X>", (unsigned)b);
        }
        int32_t id = tok_lookup(t, buf, (size_t)n);
        /* A byte's character that exists only as a user-defined or control
         * token (DeepSeek adds U+00F6 and others that way) is matched in
         * raw text as that token and decodes as its text, so it cannot stand
         * for the raw byte. */
        if (id >= 0 && t->model == TOK_GPT2 && t->type[id] != TT_NORMAL && t->type[id] != TT_UNDEFINED) id = -1;
        t->byte_tok[b] = id;
        if (t->model == TOK_GPT2) {
            memcpy(t->byte_text[b], buf, 2); /* the map's characters are below U+0800 */
            t->byte_text_len[b] = (uint8_t)n;
        }
    }
}

/* Tokens the splitter looks for in raw text: control and unknown ones (when
 * parse_special) and user-defined ones (always), as in llama.cpp. */
static bool is_special_type(uint8_t ty) { return ty == TT_CONTROL || ty == TT_UNKNOWN || ty == TT_USER; }



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
            uint32_t next = tok_trie_child(t, node, s[k]);
            if (next == 0) {
                next = n_nodes++;
                t->trie_any[next] = t->trie_user[next] = -1;
                if (node == 0) {
                    t->trie_root[s[k]] = next;
                } else {
                    uint64_t key = tok_trie_key(node, s[k]);
                    size_t j = (size_t)tok_mix64(key) & t->trie_mask;
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
        /* A piece is never longer than its text (each byte-map character
         * or U+2581 becomes one byte, anything else is copied). */
        if (tok_len(t, id) > longest) longest = tok_len(t, id);
    }
    const int32_t ends[] = {t->eos, t->eot, t->eom};
    for (size_t k = 0; k < 3; k++)
        if (ends[k] >= 0) t->flags[ends[k]] |= TF_EOG;
    /* decode_stream may turn every byte of a piece (plus up to 3 held back)
     * into the 3-byte U+FFFD, and tokenizer.h promises that a buffer of
     * 64 + max_piece always suffices: so report 3x the longest text. The
     * bound stays valid for bn_tokenizer_piece buffers too. */
    t->max_piece = longest <= SIZE_MAX / 3 ? 3 * longest : SIZE_MAX;
    t->max_text = longest;
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
        (st = load_pre(t, g, err, errlen)) != BN_OK ||
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
    free(t->merge_first);
    free(t->merge_ent);
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

const char *bn_tokenizer_pre_name(const bn_tokenizer *t, bool *guessed)
{
    if (guessed) *guessed = t->model == TOK_GPT2 && t->pre_guessed;
    return t->model == TOK_GPT2 ? bn_pretok_name(t->pre) : NULL;
}

int32_t bn_tokenizer_find(const bn_tokenizer *t, const char *s, size_t n)
{
    return s || n == 0 ? tok_lookup(t, s ? s : "", n) : -1;
}

bool bn_tokenizer_is_control(const bn_tokenizer *t, int32_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab && t->type[id] == TT_CONTROL;
}

bool bn_tokenizer_is_eog(const bn_tokenizer *t, int32_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab && (t->flags[id] & TF_EOG);
}

