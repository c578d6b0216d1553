/*
 * tokenizer_encode.c - text to token ids.
 *
 *   1. shared state: the output ids, the merge loops' symbols and heap
 *   2. special-token splitting (control / user-defined tokens in the text)
 *   3. byte-level BPE ("gpt2"), after the pre-tokenizer (tokenizer_pre.c)
 *   4. SentencePiece ("llama")
 *   5. the encode driver
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "tokenizer_impl.h"
#include "tokenizer_pre.h"
#include "tokenizer_utf8.h"

/* ---------------------------------------------------------------------------
 * 1. Encoding state
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
    struct bn_pretok_scratch pre;
    char *text;      /* byte-level BPE: the fragment as llama.cpp reads it */
    size_t text_cap;
    char *err;
    size_t errlen;
};

/* A byte no token covers. SentencePiece: the unknown token, else an error
 * (a vocabulary without byte tokens and without <unk> cannot encode
 * arbitrary text). Byte-level BPE: some vocabularies lack the characters of
 * a few bytes (F1, F2, some ASCII controls: StarCoder, Falcon); such a byte
 * becomes the unknown token when there is a real one, else it is dropped,
 * as llama.cpp does. The alternatives would insert a wrong token (MPT's
 * "unknown" is its end-of-text) or refuse the whole prompt. */
static enum bn_status emit_byte(struct enc *e, unsigned char b)
{
    const bn_tokenizer *t = e->t;
    int32_t id = t->byte_tok[b];
    if (id < 0 && t->model == TOK_GPT2) {
        if (t->unk < 0 || t->type[t->unk] != TT_UNKNOWN) return BN_OK;
        id = t->unk;
    }
    if (id < 0) id = t->unk;
    if (id < 0)
        return bn_errf(e->err, e->errlen, BN_ERR_MODEL,
                       "%s: the vocabulary has no token for byte 0x%02X and no unknown token", t->name, b);
    return ids_push(&e->out, id) ? BN_OK : bn_errf(e->err, e->errlen, BN_ERR_NOMEM, "out of memory");
}

/* ---------------------------------------------------------------------------
 * 2. Special-token splitting
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
        for (size_t q = p; q < len && (node = tok_trie_child(t, node, s[q])) != 0; q++) {
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
 * 3. Byte-level BPE ("gpt2")
 * ------------------------------------------------------------------------- */

static void bpe_try_pair(struct enc *e, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return;
    const struct sym *sl = &e->s.sym[l], *sr = &e->s.sym[r];
    if (sl->id < 0 || sr->id < 0) return;
    const struct merge_ent *m = tok_find_merge(e->t, sl->id, sr->id);
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

/* Llama 3's ignore_merges: a word that is a token (its bytes written as
 * the byte map's characters) is that token, even where the merges would
 * split it differently. */
static int32_t whole_word_token(struct enc *e, const unsigned char *w, size_t n)
{
    const bn_tokenizer *t = e->t;
    /* Each byte's character takes at least one byte of token text. */
    if (n > t->max_text) return -1;
    char small[128], *buf = small;
    if (2 * n > sizeof small) {
        if (!grow((void **)&e->s.buf, &e->s.buf_cap, 2 * n, 1)) return -1; /* then merged as usual */
        buf = e->s.buf;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + k, t->byte_text[w[i]], 2);
        k += t->byte_text_len[w[i]];
    }
    return tok_lookup(t, buf, k);
}

static enum bn_status bpe_on_word(void *ctx, const char *word, size_t len)
{
    struct enc *e = ctx;
    const unsigned char *w = (const unsigned char *)word;
    if (e->t->ignore_merges) {
        int32_t id = whole_word_token(e, w, len);
        if (id >= 0) return ids_push(&e->out, id) ? BN_OK : bn_errf(e->err, e->errlen, BN_ERR_NOMEM, "out of memory");
    }
    return bpe_word(e, w, len);
}

/* The text as llama.cpp's byte-level BPE sees it. Its UTF-8 reader is
 * lenient: the lead byte sets the length and the bytes after it need only
 * be continuation bytes, so overlong forms (C0 80 is U+0000) and surrogates
 * pass as code points; any other byte is one U+FFFD. A code point above
 * U+10FFFF (F4 90.., F5..F7) makes llama.cpp fail later; it is one U+FFFD
 * here. Valid UTF-8 comes out unchanged. Writes at most 3 * len bytes. */
static size_t bpe_clean_utf8(const unsigned char *in, size_t len, char *out)
{
    static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        const unsigned char b = in[i];
        const int need = b < 0x80 ? 1 : b < 0xC0 ? 0 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF8 ? 4 : 0;
        bool ok = need > 0 && (size_t)need <= len - i;
        for (int j = 1; ok && j < need; j++) ok = (in[i + j] & 0xC0) == 0x80;
        uint32_t cp = 0;
        if (ok) {
            static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
            cp = b & lead_mask[need];
            for (int j = 1; j < need; j++) cp = (cp << 6) | (in[i + j] & 0x3Fu);
        }
        if (ok && cp <= 0x10FFFF) {
            k += (size_t)bn_utf8_encode(cp, out + k);
            i += (size_t)need;
        } else {
            memcpy(out + k, replacement, 3);
            k += 3;
            i += ok ? (size_t)need : 1;
        }
    }
    return k;
}

/* The pre-tokenizer cuts the text into words; BPE never merges across them. */
static enum bn_status bpe_fragment(struct enc *e, const char *text, size_t len)
{
    if (!grow((void **)&e->text, &e->text_cap, 3 * len, 1))
        return bn_errf(e->err, e->errlen, BN_ERR_NOMEM, "out of memory");
    const size_t n = bpe_clean_utf8((const unsigned char *)text, len, e->text);
    return bn_pretok_split(e->t->pre, &e->pre, e->text, n, bpe_on_word, e, e->err, e->errlen);
}

/* ---------------------------------------------------------------------------
 * 4. SentencePiece ("llama")
 * ------------------------------------------------------------------------- */

/* SentencePiece only builds pieces that are ordinary vocabulary entries:
 * never control, unknown, unused or byte tokens (so "<s>" or "<0x41>" in the
 * text stay plain characters). */
static bool spm_mergeable(uint8_t ty) { return ty == TT_NORMAL || ty == TT_UNDEFINED || ty == TT_USER; }

static int32_t spm_lookup(const bn_tokenizer *t, const char *s, size_t n)
{
    int32_t id = tok_lookup(t, s, n);
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

    /* Symbols are characters, cut as llama.cpp cuts them: the lead byte
     * alone sets the length, so an invalid sequence is one symbol (it then
     * falls back to byte tokens, taking the bytes after a bad lead along). */
    static const uint8_t len_by_high_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    struct sym *sym = e->s.sym;
    int32_t ns = 0;
    for (size_t i = 0; i < n;) {
        int cl = len_by_high_nibble[(unsigned char)buf[i] >> 4];
        if ((size_t)cl > n - i) cl = (int)(n - i);
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
 * 5. Encode driver
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
    free(e.text);
    bn_pretok_scratch_free(&e.pre);
    if (st != BN_OK) {
        free(e.out.v);
        return st;
    }
    *ids = e.out.v;
    *n = e.out.n;
    return BN_OK;
}
