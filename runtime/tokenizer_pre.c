/*
 * tokenizer_pre.c - pre-tokenizer regexes written out by hand.
 *
 * The text is decoded once into code points with a class byte each. A regex
 * becomes a matcher: given a start position inside a piece, it returns where
 * the leftmost-first, greedy match of the regex's alternatives ends (or the
 * start itself when nothing matches there). Regexes with backtracking are
 * resolved by reasoning, each next to its matcher.
 *
 * Single-regex pre-tokenizers (Llama 3, GPT-2) emit matches straight away:
 * their last alternative matches any remaining character, so the matches
 * tile the text. Sequences apply each regex to every piece left by the one
 * before, as the Hugging Face Split(behavior = Isolated) step does: a match
 * becomes a piece and so does each gap between matches. Pieces are kept as
 * cut marks between code points.
 */
#include "tokenizer_pre.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer_utf8.h"
#include "unicode_tables.h"

/* ---------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    enum bn_pretok kind;
} pretok_names[] = {
    /* The first name of each kind is its main one. */
    {"default", BN_PRETOK_DEFAULT},
    {"llama-bpe", BN_PRETOK_LLAMA3},
    {"llama3", BN_PRETOK_LLAMA3},
    {"llama-v3", BN_PRETOK_LLAMA3},
    {"falcon3", BN_PRETOK_LLAMA3},
    {"gpt-2", BN_PRETOK_GPT2},
    {"mpt", BN_PRETOK_GPT2},
    {"olmo", BN_PRETOK_GPT2},
    {"jais", BN_PRETOK_GPT2},
    {"falcon", BN_PRETOK_FALCON},
    {"starcoder", BN_PRETOK_STARCODER},
    {"refact", BN_PRETOK_STARCODER},
    {"command-r", BN_PRETOK_STARCODER},
    {"smollm", BN_PRETOK_STARCODER},
    {"codeshell", BN_PRETOK_STARCODER},
    {"deepseek-coder", BN_PRETOK_DEEPSEEK_CODER},
    {"deepseek-llm", BN_PRETOK_DEEPSEEK_LLM},
};

bool bn_pretok_from_name(const char *name, size_t len, enum bn_pretok *out)
{
    for (size_t i = 0; i < sizeof pretok_names / sizeof pretok_names[0]; i++) {
        if (strlen(pretok_names[i].name) == len && (len == 0 || memcmp(pretok_names[i].name, name, len) == 0)) {
            *out = pretok_names[i].kind;
            return true;
        }
    }
    return false;
}

const char *bn_pretok_name(enum bn_pretok kind)
{
    for (size_t i = 0; i < sizeof pretok_names / sizeof pretok_names[0]; i++)
        if (pretok_names[i].kind == kind) return pretok_names[i].name;
    return "?";
}

/* ---------------------------------------------------------------------------
 * Decoding into classes
 * ------------------------------------------------------------------------- */

/* Class bits per code point. "Other" (the regexes' [^\s\p{L}\p{N}]) is a
 * code point with none of L, N, S; punctuation is other too. */
enum { K_L = 1, K_N = 2, K_P = 4, K_S = 8 };

/* Code point stored for an invalid byte: above U+10FFFF, so it is in no
 * class and no range. */
#define BAD_BYTE_CP 0x110000u

static uint8_t class_of(uint32_t cp)
{
    uint8_t p = bn_unicode_props(cp);
    uint8_t k = 0;
    if (bn_ucat_is_letter(p)) k |= K_L;
    if (bn_ucat_is_number(p)) k |= K_N;
    if (bn_ucat_is_punct(p)) k |= K_P;
    if (bn_uprop_is_space(p)) k |= K_S;
    return k;
}

static bool grow_scratch(struct bn_pretok_scratch *s, size_t n)
{
    if (n <= s->cap) return true;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < n) {
        if (cap > SIZE_MAX / 8) return false;
        cap *= 2;
    }
    uint32_t *cp = realloc(s->cp, cap * sizeof *cp);
    if (cp) s->cp = cp;
    uint32_t *off = realloc(s->off, cap * sizeof *off);
    if (off) s->off = off;
    uint8_t *cls = realloc(s->cls, cap);
    if (cls) s->cls = cls;
    uint8_t *cut = realloc(s->cut, cap);
    if (cut) s->cut = cut;
    if (!cp || !off || !cls || !cut) return false;
    s->cap = cap;
    return true;
}

void bn_pretok_scratch_free(struct bn_pretok_scratch *s)
{
    if (!s) return;
    free(s->cp);
    free(s->off);
    free(s->cls);
    free(s->cut);
    memset(s, 0, sizeof *s);
}

/* The view the matchers read: n code points. */
struct view {
    const uint32_t *cp;
    const uint8_t *cls;
    size_t n;
};

static size_t decode(struct bn_pretok_scratch *s, const unsigned char *t, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = bn_utf8_decode(t + i, len - i, &cp);
        if (k == 0) {
            cp = BAD_BYTE_CP;
            k = 1;
        }
        s->cp[n] = cp;
        s->off[n] = (uint32_t)i;
        s->cls[n] = cp == BAD_BYTE_CP ? 0 : class_of(cp);
        n++;
        i += (size_t)k;
    }
    s->off[n] = (uint32_t)len;
    return n;
}

/* ---------------------------------------------------------------------------
 * Building blocks
 * ------------------------------------------------------------------------- */

static bool is_other(uint8_t k) { return (k & (K_L | K_N | K_S)) == 0; }

/* End of the run of code points from i having any of the bits in want. */
static size_t run_any(const struct view *v, size_t i, size_t end, uint8_t want)
{
    while (i < end && (v->cls[i] & want)) i++;
    return i;
}

static size_t run_other(const struct view *v, size_t i, size_t end)
{
    while (i < end && is_other(v->cls[i])) i++;
    return i;
}

static bool is_newline(uint32_t c) { return c == '\r' || c == '\n'; }

/* 's|'t|'re|'ve|'m|'ll|'d, case-insensitively (Llama 3's (?i:...), with
 * Unicode simple case folding, so U+017F LONG S counts as 's') or not. */
static size_t match_contraction(const struct view *v, size_t i, size_t end, bool fold)
{
    if (v->cp[i] != '\'' || i + 1 >= end) return i;
    uint32_t c1 = v->cp[i + 1];
    int a = fold ? bn_unicode_fold_ascii(c1) : (c1 >= 'a' && c1 <= 'z' ? (int)c1 : 0);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 >= end) return i;
    uint32_t c2 = v->cp[i + 2];
    int b = fold ? bn_unicode_fold_ascii(c2) : (c2 >= 'a' && c2 <= 'z' ? (int)c2 : 0);
    if (((a == 'r' || a == 'v') && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return i;
}

/* \s+(?!\S)|\s+ at a space: the whole run when it ends the piece, else all
 * but its last space (which then leads the next word, " word"); a single
 * space before a non-space matches alone through the plain \s+. */
static size_t match_space_tail(const struct view *v, size_t i, size_t end)
{
    size_t k = run_any(v, i, end, K_S);
    if (k == end || k - i == 1) return k;
    return k - 1;
}

/* ---------------------------------------------------------------------------
 * The regexes
 * ------------------------------------------------------------------------- */

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * The optional space is taken only when a non-space follows it; then one of
 * the three classes matches, since every non-space is a letter, a number or
 * other. */
static size_t match_gpt2(const struct view *v, size_t i, size_t end)
{
    size_t e = match_contraction(v, i, end, false);
    if (e > i) return e;
    size_t j = i;
    if (v->cp[i] == ' ' && i + 1 < end && !(v->cls[i + 1] & K_S)) j = i + 1;
    uint8_t k = v->cls[j];
    if (j > i || !(k & K_S)) {
        if (k & K_L) return run_any(v, j, end, K_L);
        if (k & K_N) return run_any(v, j, end, K_N);
        return run_other(v, j, end);
    }
    return match_space_tail(v, i, end);
}

/* Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
 *          | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * \s*[\r\n]+ at a space run: greedy \s* backs off to the last \r or \n of
 * the run, so the match ends just after it. */
static size_t match_llama3(const struct view *v, size_t i, size_t end)
{
    size_t e = match_contraction(v, i, end, true);
    if (e > i) return e;
    uint32_t c = v->cp[i];
    uint8_t k = v->cls[i];
    if (k & K_L) return run_any(v, i, end, K_L);
    if (!(k & K_N) && !is_newline(c) && i + 1 < end && (v->cls[i + 1] & K_L)) return run_any(v, i + 1, end, K_L);
    if (k & K_N) {
        size_t j = i;
        while (j < end && j - i < 3 && (v->cls[j] & K_N)) j++;
        return j;
    }
    size_t j = (c == ' ' && i + 1 < end && is_other(v->cls[i + 1])) ? i + 1 : i;
    if (is_other(v->cls[j])) {
        j = run_other(v, j, end);
        while (j < end && is_newline(v->cp[j])) j++;
        return j;
    }
    /* Only spaces are left here. */
    size_t run = run_any(v, i, end, K_S);
    for (size_t p = run; p > i; p--)
        if (is_newline(v->cp[p - 1])) return p;
    return match_space_tail(v, i, end);
}

/* [\r\n]: each line break alone (the DeepSeek sequences start with it). */
static size_t match_newline(const struct view *v, size_t i, size_t end)
{
    (void)end;
    return is_newline(v->cp[i]) ? i + 1 : i;
}

/* \s?X+ for a class X given as bits. */
static size_t match_space_opt_run(const struct view *v, size_t i, size_t end, uint8_t want)
{
    if ((v->cls[i] & K_S) && i + 1 < end && (v->cls[i + 1] & want)) return run_any(v, i + 1, end, want);
    if (v->cls[i] & want) return run_any(v, i, end, want);
    return i;
}

static size_t match_space_letters(const struct view *v, size_t i, size_t end)
{
    return match_space_opt_run(v, i, end, K_L);
}

static size_t match_space_puncts(const struct view *v, size_t i, size_t end)
{
    return match_space_opt_run(v, i, end, K_P);
}

/* \p{N}: one number character. */
static size_t match_one_number(const struct view *v, size_t i, size_t end)
{
    (void)end;
    return (v->cls[i] & K_N) ? i + 1 : i;
}

/* \p{N}+ */
static size_t match_numbers(const struct view *v, size_t i, size_t end) { return run_any(v, i, end, K_N); }

/* [0-9][0-9][0-9]: ASCII digits only. */
static size_t match_three_digits(const struct view *v, size_t i, size_t end)
{
    if (i + 3 > end) return i;
    for (size_t j = i; j < i + 3; j++)
        if (v->cp[j] < '0' || v->cp[j] > '9') return i;
    return i + 3;
}

/* [\p{P}\$\+<=>\^~\|]+: punctuation plus the ASCII symbols that the
 * Hugging Face Punctuation pre-tokenizer also counts (Rust's
 * is_ascii_punctuation covers them; Unicode files them under S). Falcon's
 * regex adds the backtick; llama.cpp's default one does not. */
static bool is_punct_or_ascii_symbol(const struct view *v, size_t i, bool backtick)
{
    uint32_t c = v->cp[i];
    return (v->cls[i] & K_P) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '~' ||
           c == '|' || (backtick && c == '`');
}

static size_t match_punct_run(const struct view *v, size_t i, size_t end)
{
    while (i < end && is_punct_or_ascii_symbol(v, i, false)) i++;
    return i;
}

static size_t match_punct_run_falcon(const struct view *v, size_t i, size_t end)
{
    while (i < end && is_punct_or_ascii_symbol(v, i, true)) i++;
    return i;
}

/* [一-龥ࠀ-一가-퟿]+ of the DeepSeek tokenizers: U+4E00..U+9FA5 and
 * U+0800..U+4E00 (together U+0800..U+9FA5, far more than CJK: Indic and
 * Khmer scripts, general punctuation, dingbats) and U+AC00..U+D7FF. */
static bool in_deepseek_cjk(uint32_t c) { return (c >= 0x0800 && c <= 0x9FA5) || (c >= 0xAC00 && c <= 0xD7FF); }

static size_t match_deepseek_cjk(const struct view *v, size_t i, size_t end)
{
    while (i < end && in_deepseek_cjk(v->cp[i])) i++;
    return i;
}

/* The letter class of DeepSeek LLM's regex \s?[A-Za-zµÀ-ÖØ-öø-ƺ...𞤀-𞥃]+,
 * as code point ranges in its order (mostly the cased letters). */
static const uint32_t deepseek_letters[][2] = {
    {0x0041, 0x005A},   {0x0061, 0x007A},   {0x00B5, 0x00B5},   {0x00C0, 0x00D6},   {0x00D8, 0x00F6},
    {0x00F8, 0x01BA},   {0x01BC, 0x01BF},   {0x01C4, 0x0293},   {0x0295, 0x02AF},   {0x0370, 0x0373},
    {0x0376, 0x0377},   {0x037B, 0x037D},   {0x037F, 0x037F},   {0x0386, 0x0386},   {0x0388, 0x038A},
    {0x038C, 0x038C},   {0x038E, 0x03A1},   {0x03A3, 0x03F5},   {0x03F7, 0x0481},   {0x048A, 0x052F},
    {0x0531, 0x0556},   {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},   {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B},   {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},   {0x2102, 0x2102},   {0x2107, 0x2107},
    {0x210A, 0x2113},   {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},
    {0x2128, 0x2128},   {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},
    {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},   {0xA722, 0xA76F},
    {0xA771, 0xA787},   {0xA78B, 0xA78E},   {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

static bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid][1] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && r[lo][0] <= c;
}

static bool is_deepseek_letter(uint32_t c)
{
    return in_ranges(deepseek_letters, sizeof deepseek_letters / sizeof deepseek_letters[0], c);
}

/* [!-/:-~！-／：-～‘-‟　-。]: ASCII punctuation and symbols (and, since
 * :-~ spans them, ASCII letters), their fullwidth forms, curly quotes and
 * the ideographic space, comma and full stop. */
static bool is_deepseek_punct(uint32_t c)
{
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x7E) || (c >= 0xFF01 && c <= 0xFF0F) ||
           (c >= 0xFF1A && c <= 0xFF5E) || (c >= 0x2018 && c <= 0x201F) || (c >= 0x3000 && c <= 0x3002);
}

/* \s?C+ for a class given as a predicate on code points. */
static size_t match_space_opt_pred(const struct view *v, size_t i, size_t end, bool (*in)(uint32_t))
{
    size_t j = i;
    if ((v->cls[i] & K_S) && i + 1 < end && in(v->cp[i + 1])) j = i + 1;
    while (j < end && in(v->cp[j])) j++;
    return j;
}

static size_t match_deepseek_letters(const struct view *v, size_t i, size_t end)
{
    return match_space_opt_pred(v, i, end, is_deepseek_letter);
}

static size_t match_deepseek_puncts(const struct view *v, size_t i, size_t end)
{
    return match_space_opt_pred(v, i, end, is_deepseek_punct);
}

/* ---------------------------------------------------------------------------
 * Drivers
 * ------------------------------------------------------------------------- */

typedef size_t (*matcher)(const struct view *v, size_t i, size_t end);

/* One Split(Isolated) step over every current piece: the leftmost match is
 * searched from each position in turn, as a regex search does. */
static void pass_isolated(const struct view *v, uint8_t *cut, matcher m)
{
    size_t a = 0;
    while (a < v->n) {
        size_t b = a + 1;
        while (b < v->n && !cut[b]) b++;
        for (size_t i = a; i < b;) {
            size_t e = m(v, i, b);
            if (e > i) {
                cut[i] = cut[e] = 1;
                i = e;
            } else {
                i++;
            }
        }
        a = b;
    }
}

/* \s+$ of DeepSeek LLM: the leftmost match is the piece's trailing run of
 * spaces (Oniguruma's $ also matches before a final \n, but the pieces hold
 * no line breaks by then). */
static void pass_trailing_spaces(const struct view *v, uint8_t *cut)
{
    size_t a = 0;
    while (a < v->n) {
        size_t b = a + 1;
        while (b < v->n && !cut[b]) b++;
        size_t k = b;
        while (k > a && (v->cls[k - 1] & K_S)) k--;
        if (k < b) cut[k] = 1;
        a = b;
    }
}

static enum bn_status emit_cuts(const struct bn_pretok_scratch *s, size_t n, const char *text, bn_pretok_word_fn fn,
                                void *ctx)
{
    size_t a = 0;
    while (a < n) {
        size_t b = a + 1;
        while (b < n && !s->cut[b]) b++;
        enum bn_status st = fn(ctx, text + s->off[a], s->off[b] - s->off[a]);
        if (st != BN_OK) return st;
        a = b;
    }
    return BN_OK;
}

/* A regex whose matches tile the text: words are emitted as found. */
static enum bn_status split_single(const struct view *v, const struct bn_pretok_scratch *s, const char *text,
                                   matcher m, bn_pretok_word_fn fn, void *ctx)
{
    for (size_t i = 0; i < v->n;) {
        size_t e = m(v, i, v->n);
        if (e <= i) e = i + 1; /* cannot happen: \s+ or a class run matches */
        enum bn_status st = fn(ctx, text + s->off[i], s->off[e] - s->off[i]);
        if (st != BN_OK) return st;
        i = e;
    }
    return BN_OK;
}

enum bn_status bn_pretok_split(enum bn_pretok kind, struct bn_pretok_scratch *s, const char *text, size_t len,
                               bn_pretok_word_fn fn, void *ctx, char *err, size_t errlen)
{
    if (len == 0) return BN_OK;
    /* Offsets are 32-bit: the tokenizer refuses longer texts before this. */
    if (len >= UINT32_MAX || !grow_scratch(s, len + 1))
        return bn_errf(err, errlen, BN_ERR_NOMEM, "out of memory pre-tokenizing %zu bytes", len);
    size_t n = decode(s, (const unsigned char *)text, len);
    struct view v = {s->cp, s->cls, n};
    if (kind == BN_PRETOK_LLAMA3) return split_single(&v, s, text, match_llama3, fn, ctx);
    if (kind == BN_PRETOK_GPT2) return split_single(&v, s, text, match_gpt2, fn, ctx);

    memset(s->cut, 0, n + 1);
    s->cut[0] = s->cut[n] = 1;
    switch (kind) {
    case BN_PRETOK_FALCON:
        pass_isolated(&v, s->cut, match_punct_run_falcon);
        pass_isolated(&v, s->cut, match_gpt2);
        pass_isolated(&v, s->cut, match_three_digits);
        break;
    case BN_PRETOK_STARCODER:
        pass_isolated(&v, s->cut, match_one_number);
        pass_isolated(&v, s->cut, match_gpt2);
        break;
    case BN_PRETOK_DEEPSEEK_CODER:
        pass_isolated(&v, s->cut, match_newline);
        pass_isolated(&v, s->cut, match_space_letters);
        pass_isolated(&v, s->cut, match_space_puncts);
        pass_isolated(&v, s->cut, match_deepseek_cjk);
        pass_isolated(&v, s->cut, match_one_number);
        break;
    case BN_PRETOK_DEEPSEEK_LLM:
        pass_isolated(&v, s->cut, match_newline);
        pass_isolated(&v, s->cut, match_deepseek_letters);
        pass_isolated(&v, s->cut, match_deepseek_puncts);
        pass_trailing_spaces(&v, s->cut);
        pass_isolated(&v, s->cut, match_deepseek_cjk);
        pass_isolated(&v, s->cut, match_numbers);
        break;
    case BN_PRETOK_DEFAULT:
    default:
        pass_isolated(&v, s->cut, match_punct_run);
        pass_isolated(&v, s->cut, match_gpt2);
        pass_isolated(&v, s->cut, match_numbers);
        pass_isolated(&v, s->cut, match_three_digits);
        break;
    }
    return emit_cuts(s, n, text, fn, ctx);
}
