/*
 * test_tokenizer_pre.c - the pre-tokenizers (runtime/tokenizer_pre.c) and
 * the generated Unicode tables they read.
 *
 * The expected splits below are worked out by hand from each regex's
 * leftmost-first, greedy semantics (comments give the reasoning where it is
 * not obvious); the vocabulary fixtures in test_tokenizer.c check the same
 * code end to end against the reference tokenizers. Random texts then check
 * the invariants every kind must keep: words are non-empty and tile the
 * input exactly, whatever the bytes.
 */
#include <stdint.h>

#include "test_util.h"
#include "tokenizer_pre.h"
#include "unicode_tables.h"

/* ---- Unicode tables -------------------------------------------------------- */

static void test_unicode_tables(void)
{
    struct {
        uint32_t cp;
        enum bn_ucat cat;
        bool space;
    } cases[] = {
        {'A', BN_UCAT_LU, false},     {'a', BN_UCAT_LL, false},    {'5', BN_UCAT_ND, false},
        {0x00BD, BN_UCAT_NO, false},  {0x0660, BN_UCAT_ND, false}, {0x2160, BN_UCAT_NL, false},
        {' ', BN_UCAT_ZS, true},      {'\t', BN_UCAT_CC, true},    {'\n', BN_UCAT_CC, true},
        {0x0085, BN_UCAT_CC, true},   {0x00A0, BN_UCAT_ZS, true},  {0x3000, BN_UCAT_ZS, true},
        {0x2028, BN_UCAT_ZL, true},   {0x200B, BN_UCAT_CF, false}, {0x200D, BN_UCAT_CF, false},
        {0x1F680, BN_UCAT_SO, false}, {0x4E00, BN_UCAT_LO, false}, {0x9FA5, BN_UCAT_LO, false},
        {0xAC00, BN_UCAT_LO, false},  {0xD7A3, BN_UCAT_LO, false}, {0x17B6, BN_UCAT_MC, false},
        {0x17C6, BN_UCAT_MN, false},  {'!', BN_UCAT_PO, false},    {'$', BN_UCAT_SC, false},
        {'+', BN_UCAT_SM, false},     {'_', BN_UCAT_PC, false},    {0xE000, BN_UCAT_CO, false},
        {0xD800, BN_UCAT_CS, false},  {0x10FFFF, BN_UCAT_CN, false}, {0x0378, BN_UCAT_CN, false},
        {0x110000, BN_UCAT_CN, false}, {0xFFFFFFFF, BN_UCAT_CN, false}, {0x20000, BN_UCAT_LO, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t p = bn_unicode_props(cases[i].cp);
        CHECKF((p & BN_UPROP_CAT_MASK) == cases[i].cat && bn_uprop_is_space(p) == cases[i].space,
               "U+%04X: category %u (want %u), space %d", (unsigned)cases[i].cp, p & BN_UPROP_CAT_MASK,
               (unsigned)cases[i].cat, bn_uprop_is_space(p));
    }
    CHECK(bn_ucat_is_letter(bn_unicode_props(0x01C5)) && !bn_ucat_is_letter(bn_unicode_props('1')), "letters");
    CHECK(bn_ucat_is_number(bn_unicode_props(0x00B2)) && !bn_ucat_is_number(bn_unicode_props('x')), "numbers");
    CHECK(bn_ucat_is_punct(bn_unicode_props(0x3002)) && !bn_ucat_is_punct(bn_unicode_props('$')), "punctuation");
    /* Exactly the 25 code points of PropList.txt's White_Space. */
    int spaces = 0;
    for (uint32_t cp = 0; cp < 0x110000; cp++) spaces += bn_uprop_is_space(bn_unicode_props(cp));
    CHECKF(spaces == 25, "%d White_Space code points (Unicode %s has 25)", spaces, BN_UNICODE_VERSION);
    CHECK(bn_unicode_fold_ascii('S') == 's' && bn_unicode_fold_ascii('s') == 's', "S folds to s");
    CHECK(bn_unicode_fold_ascii(0x017F) == 's', "LONG S folds to s");
    CHECK(bn_unicode_fold_ascii(0x212A) == 'k', "KELVIN SIGN folds to k");
    CHECK(bn_unicode_fold_ascii(0x00E9) == 0 && bn_unicode_fold_ascii('\'') == 0 && bn_unicode_fold_ascii(0) == 0,
          "others fold to no ASCII letter");
}

/* ---- splits ------------------------------------------------------------------ */

#define MAX_WORDS 64
struct words {
    char w[MAX_WORDS][64];
    size_t len[MAX_WORDS];
    int n;
    const char *base; /* input, to check that words tile it */
    size_t at;
    bool tiled;
};

static enum bn_status on_word(void *ctx, const char *word, size_t len)
{
    struct words *ws = ctx;
    if (len == 0 || word != ws->base + ws->at) ws->tiled = false;
    ws->at += len;
    if (ws->n < MAX_WORDS && len < sizeof ws->w[0]) {
        memcpy(ws->w[ws->n], word, len);
        ws->w[ws->n][len] = '\0';
        ws->len[ws->n] = len;
    }
    ws->n++;
    return BN_OK;
}

static bool split(enum bn_pretok kind, struct bn_pretok_scratch *s, const char *text, size_t len, struct words *ws)
{
    char err[256];
    memset(ws, 0, sizeof *ws);
    ws->base = text;
    ws->tiled = true;
    if (bn_pretok_split(kind, s, text, len, on_word, ws, err, sizeof err) != BN_OK) return false;
    return ws->tiled && ws->at == len;
}

/* Expected words, terminated by NULL. */
static void expect(enum bn_pretok kind, const char *text, const char *const *want)
{
    struct bn_pretok_scratch s = {0};
    struct words ws;
    bool ok = split(kind, &s, text, strlen(text), &ws);
    int n = 0;
    bool same = ok;
    for (; want[n]; n++)
        if (n >= ws.n || strcmp(ws.w[n], want[n]) != 0) same = false;
    same = same && n == ws.n;
    if (!same) {
        fprintf(stderr, "  %s split of \"%s\":", bn_pretok_name(kind), text);
        for (int i = 0; i < ws.n && i < MAX_WORDS; i++) fprintf(stderr, " [%s]", ws.w[i]);
        fputc('\n', stderr);
    }
    CHECKF(same, "%s: \"%s\" splits as expected", bn_pretok_name(kind), text);
    bn_pretok_scratch_free(&s);
}

#define W(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_llama3(void)
{
    const enum bn_pretok k = BN_PRETOK_LLAMA3;
    expect(k, "Hello world", W("Hello", " world"));
    /* \s+(?!\S) leaves the last space of a run to the word after it. */
    expect(k, "  Hello", W(" ", " Hello"));
    /* A lone space before a digit matches \s+ alone; digits go by three;
     * "!!" takes the line breaks after it ([\r\n]*). */
    expect(k, "I've 12345 apples!!\n\n", W("I", "'ve", " ", "123", "45", " apples", "!!\n\n"));
    /* Contractions ignore case, with Unicode folding (U+017F LONG S is s);
     * they match only where a word starts: after a space the apostrophe
     * joins the space (" ?[^\s\p{L}\p{N}]+"). */
    expect(k, "x'S'LL're'\xC5\xBF", W("x", "'S", "'LL", "'re", "'\xC5\xBF"));
    expect(k, "'S 'LL", W("'S", " '", "LL"));
    expect(k, "it\xE2\x80\x99s", W("it", "\xE2\x80\x99s")); /* U+2019 is no apostrophe: [^\r\n\p{L}\p{N}]?\p{L}+ */
    /* A tab may lead a word; a run of them gives up only its last. */
    expect(k, "\t\tfoo", W("\t", "\tfoo"));
    /* \s*[\r\n]+ ends at the last line break of a space run. */
    expect(k, "a  \n  b", W("a", "  \n", " ", " b"));
    expect(k, "x\r\n\r\ny", W("x", "\r\n\r\n", "y"));
    /* Letters of any script run together; emoji are "other". */
    expect(k, "\xE6\x88\x91\xE6\x83\xB3" "apple\xE5\xB7\xA5", W("\xE6\x88\x91\xE6\x83\xB3" "apple\xE5\xB7\xA5"));
    expect(k, " this is \xF0\x9F\xA6\x99.cpp", W(" this", " is", " \xF0\x9F\xA6\x99.", "cpp"));
    expect(k, "end  ", W("end", "  "));
    /* Invalid bytes are characters of no category. */
    expect(k, "a\xFF b\xC3", W("a", "\xFF", " b", "\xC3"));
}

static void test_gpt2(void)
{
    const enum bn_pretok k = BN_PRETOK_GPT2;
    expect(k, "Hello world", W("Hello", " world"));
    expect(k, "  Hello", W(" ", " Hello"));
    expect(k, "I've 12345", W("I", "'ve", " 12345"));
    /* Case-sensitive contractions: "'S" is punctuation then a letter. */
    expect(k, "'S", W("'", "S"));
    /* Only U+0020 leads a word; a line break before a letter stands alone. */
    expect(k, "a\n\nb", W("a", "\n", "\n", "b"));
    expect(k, "x  ", W("x", "  "));
    expect(k, "(normal) ok!?", W("(", "normal", ")", " ok", "!?"));
}

static void test_sequences(void)
{
    /* Digits one by one, then GPT-2's regex. */
    expect(BN_PRETOK_STARCODER, "abc123 45", W("abc", "1", "2", "3", " ", "4", "5"));
    /* Punctuation runs (with $+<=>^~|`), GPT-2, then ASCII digits by three:
     * " 1234567" is one GPT-2 word, from which 123 and 456 are cut. */
    expect(BN_PRETOK_FALCON, "Hello, world!! 1234567", W("Hello", ",", " world", "!!", " ", "123", "456", "7"));
    expect(BN_PRETOK_FALCON, "a$+b", W("a", "$+", "b"));
    /* [\r\n], \s?\p{L}+, \s?\p{P}+, the CJK-ish ranges, single digits. */
    expect(BN_PRETOK_DEEPSEEK_CODER, "Hello, \xE4\xB8\x96\xE7\x95\x8C 123\n",
           W("Hello", ",", " ", "\xE4\xB8\x96\xE7\x95\x8C", " ", "1", "2", "3", "\n"));
    /* [\r\n], \s?[cased letters]+, \s?[ASCII punctuation...]+, \s+$,
     * the CJK-ish ranges, \p{N}+. */
    expect(BN_PRETOK_DEEPSEEK_LLM, "Hello, \xE4\xB8\x96\xE7\x95\x8C 123  \n",
           W("Hello", ",", " ", "\xE4\xB8\x96\xE7\x95\x8C", " ", "123", "  ", "\n"));
    /* Cyrillic is in DeepSeek LLM's letter class; Hebrew (Lo) is not. */
    expect(BN_PRETOK_DEEPSEEK_LLM, "\xD0\xBD\xD0\xB0 \xD7\xA9\xD7\x9C",
           W("\xD0\xBD\xD0\xB0", " \xD7\xA9\xD7\x9C"));
    /* llama.cpp's default: punctuation runs, GPT-2, \p{N}+, [0-9]{3}. */
    expect(BN_PRETOK_DEFAULT, "Hello, world 1234!", W("Hello", ",", " world", " ", "123", "4", "!"));
    /* The backtick is in Falcon's punctuation run, not in the default's:
     * there it is left to GPT-2's regex, which joins it to the space. */
    expect(BN_PRETOK_FALCON, "Use `foo` here", W("Use", " ", "`", "foo", "`", " here"));
    expect(BN_PRETOK_DEFAULT, "Use `foo` here", W("Use", " `", "foo", "`", " here"));
    expect(BN_PRETOK_DEFAULT, "foo`.", W("foo", "`", "."));
}

static void test_names(void)
{
    struct {
        const char *name;
        enum bn_pretok kind;
    } cases[] = {
        {"default", BN_PRETOK_DEFAULT},    {"llama-bpe", BN_PRETOK_LLAMA3},      {"llama3", BN_PRETOK_LLAMA3},
        {"gpt-2", BN_PRETOK_GPT2},         {"mpt", BN_PRETOK_GPT2},              {"falcon", BN_PRETOK_FALCON},
        {"starcoder", BN_PRETOK_STARCODER}, {"refact", BN_PRETOK_STARCODER},     {"falcon3", BN_PRETOK_LLAMA3},
        {"deepseek-coder", BN_PRETOK_DEEPSEEK_CODER}, {"deepseek-llm", BN_PRETOK_DEEPSEEK_LLM},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum bn_pretok k = BN_PRETOK_DEFAULT;
        bool ok = bn_pretok_from_name(cases[i].name, strlen(cases[i].name), &k);
        CHECKF(ok && k == cases[i].kind, "name %s", cases[i].name);
    }
    enum bn_pretok k;
    CHECK(!bn_pretok_from_name("qwen2", 5, &k) && !bn_pretok_from_name("llama", 5, &k) &&
              !bn_pretok_from_name("", 0, &k),
          "unknown names are refused");
    CHECK(!strcmp(bn_pretok_name(BN_PRETOK_LLAMA3), "llama-bpe") && !strcmp(bn_pretok_name(BN_PRETOK_GPT2), "gpt-2"),
          "main names");
}

/* ---- invariants on random texts ------------------------------------------------ */

static uint64_t rng(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static void test_random(void)
{
    static const char *const atoms[] = {
        "a", "Z", "7", "\xD9\xA0", " ", "  ", "\t", "\r", "\n", "'", "'s", "'LL", "!", "$", "+", "<", "`", "_",
        "\xD0\xBD", "\xE4\xB8\x96", "\xE1\x9E\x80\xE1\x9E\xB6", "\xF0\x9F\x98\xB6\xE2\x80\x8D", "\xE3\x80\x80",
        "\xEF\xBC\x81", "\xC2\xBD", "\xFF", "\xC3", "\xE2\x82", "\xC5\xBF", "\xE2\x80\x99", "\xED\xA0\x80",
    };
    const enum bn_pretok kinds[] = {BN_PRETOK_DEFAULT, BN_PRETOK_LLAMA3, BN_PRETOK_GPT2, BN_PRETOK_FALCON,
                                    BN_PRETOK_STARCODER, BN_PRETOK_DEEPSEEK_CODER, BN_PRETOK_DEEPSEEK_LLM};
    struct bn_pretok_scratch s = {0};
    uint64_t seed = 42;
    int bad = 0;
    char text[1024];
    for (int iter = 0; iter < 2000; iter++) {
        size_t n = 0;
        int parts = (int)(rng(&seed) % 60);
        for (int p = 0; p < parts; p++) {
            const char *a = atoms[rng(&seed) % (sizeof atoms / sizeof atoms[0])];
            size_t al = strlen(a);
            if (n + al > sizeof text) break;
            memcpy(text + n, a, al);
            n += al;
        }
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            struct words ws;
            if (!split(kinds[k], &s, text, n, &ws) || (n > 0) != (ws.n > 0)) bad++;
        }
    }
    CHECKF(bad == 0, "random texts: words are non-empty and tile the text (%d bad)", bad);
    bn_pretok_scratch_free(&s);
    bn_pretok_scratch_free(&s); /* twice is harmless */
}

/* A word callback's error stops the split and comes back. */
static enum bn_status fail_second(void *ctx, const char *word, size_t len)
{
    (void)word;
    (void)len;
    return ++*(int *)ctx == 2 ? BN_ERR_MODEL : BN_OK;
}

static void test_callback_error(void)
{
    struct bn_pretok_scratch s = {0};
    int calls = 0;
    enum bn_status st = bn_pretok_split(BN_PRETOK_LLAMA3, &s, "one two three", 13, fail_second, &calls, NULL, 0);
    CHECK(st == BN_ERR_MODEL && calls == 2, "callback status stops the split");
    calls = 0;
    st = bn_pretok_split(BN_PRETOK_FALCON, &s, "one two three", 13, fail_second, &calls, NULL, 0);
    CHECK(st == BN_ERR_MODEL && calls == 2, "callback status stops a sequence split");
    st = bn_pretok_split(BN_PRETOK_GPT2, &s, "", 0, fail_second, &calls, NULL, 0);
    CHECK(st == BN_OK, "empty text: no words");
    bn_pretok_scratch_free(&s);
}

int main(void)
{
    test_unicode_tables();
    test_llama3();
    test_gpt2();
    test_sequences();
    test_names();
    test_random();
    test_callback_error();
    return test_report("test_tokenizer_pre");
}
