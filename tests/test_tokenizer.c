/*
 * test_tokenizer.c - runtime/tokenizer.c against llama.cpp's vocabulary
 * fixtures (shared/testdata/vocab), the golden model's small vocabulary, and
 * hand-built broken files.
 *
 * What is asserted: every reference id line of the nine fixtures (9 x 46,
 * add BOS off, parse specials off, as llama.cpp's test-tokenizer-0 runs
 * them), metadata (ids, flags, sizes, the pre-tokenizer, including the
 * guess for a file without tokenizer.ggml.pre), byte-exact round trips of
 * encode -> decode for valid UTF-8 (broken UTF-8: llama.cpp's ids and the
 * text llama.cpp reads), special-token splitting, the streaming UTF-8 repair
 * (mixed scripts and emoji streamed one token at a time give the one-shot
 * bytes), and error messages.
 */
#include <stdint.h>
#include <time.h>

#include "gguf.h"
#include "gguf_writer.h"
#include "test_util.h"
#include "tokenizer.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- helpers ------------------------------------------------------------ */

struct vocab {
    bn_gguf *g;
    bn_tokenizer *tk;
};

static bool vocab_open(const char *path, struct vocab *v, double *seconds)
{
    char err[512];
    v->g = NULL;
    v->tk = NULL;
    if (bn_gguf_open(path, &v->g, err, sizeof err) != BN_OK) {
        fprintf(stderr, "%s\n", err);
        return false;
    }
    double t0 = now_s();
    enum bn_status st = bn_tokenizer_create(v->g, &v->tk, err, sizeof err);
    if (seconds) *seconds = now_s() - t0;
    if (st != BN_OK) fprintf(stderr, "%s\n", err);
    /* The tokenizer must not keep pointers into the file. */
    bn_gguf_close(v->g);
    v->g = NULL;
    return st == BN_OK;
}

/* The text llama.cpp's byte-level BPE reads, written out independently of
 * the tokenizer: a lead byte (C0..F7) with enough continuation bytes
 * (10xxxxxx) is one code point, overlong and surrogate forms included; a
 * code point above U+10FFFF, and every other byte, is U+FFFD. out holds
 * 3 * n bytes; returns the length. */
static size_t llama_reads(const unsigned char *in, size_t n, unsigned char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char b = in[i];
        size_t need = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        bool ok = need > 0 && need <= n - i;
        for (size_t j = 1; ok && j < need; j++) ok = (in[i + j] & 0xC0) == 0x80;
        uint32_t cp = 0;
        if (ok) {
            cp = need == 1 ? b : need == 2 ? (b & 0x1Fu) : need == 3 ? (b & 0x0Fu) : (b & 0x07u);
            for (size_t j = 1; j < need; j++) cp = (cp << 6) | (in[i + j] & 0x3Fu);
        }
        if (!ok || cp > 0x10FFFF) {
            out[k++] = 0xEF, out[k++] = 0xBF, out[k++] = 0xBD;
            i += ok ? need : 1;
            continue;
        }
        if (cp < 0x80) {
            out[k++] = (unsigned char)cp;
        } else if (cp < 0x800) {
            out[k++] = (unsigned char)(0xC0 | (cp >> 6)), out[k++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[k++] = (unsigned char)(0xE0 | (cp >> 12)), out[k++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            out[k++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else {
            out[k++] = (unsigned char)(0xF0 | (cp >> 18)), out[k++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
            out[k++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), out[k++] = (unsigned char)(0x80 | (cp & 0x3F));
        }
        i += need;
    }
    return k;
}

/* Concatenated pieces of ids, malloc'd; *len its length. */
static char *decode_all(const bn_tokenizer *tk, const int32_t *ids, size_t n, size_t *len)
{
    size_t cap = 64, k = 0;
    char *out = malloc(cap);
    for (size_t i = 0; out && i < n; i++) {
        size_t need = bn_tokenizer_piece(tk, ids[i], NULL, 0);
        if (k + need > cap) {
            while (k + need > cap) cap *= 2;
            char *grown = realloc(out, cap);
            if (!grown) {
                free(out);
                return NULL;
            }
            out = grown;
        }
        size_t got = bn_tokenizer_piece(tk, ids[i], out + k, cap - k);
        if (got != need) {
            free(out);
            return NULL;
        }
        k += got;
    }
    *len = k;
    return out;
}

static bool encode(const bn_tokenizer *tk, const char *s, size_t len, bool bos, bool special, int32_t **ids, size_t *n)
{
    char err[512];
    if (bn_tokenizer_encode(tk, s, len, bos, special, ids, n, err, sizeof err) != BN_OK) {
        fprintf(stderr, "encode: %s\n", err);
        *ids = NULL;
        *n = 0;
        return false;
    }
    return true;
}

/* The .inp file split on "\n__ggml_vocab_test__\n" (the file ends with one). */
#define SEP "\n__ggml_vocab_test__\n"
#define MAX_CASES 64
struct cases {
    char *data;
    const char *s[MAX_CASES];
    size_t len[MAX_CASES];
    int n;
    char *out_data;
    const char *out_line[MAX_CASES];
    int n_out;
};

static bool cases_load(const char *inp, const char *outp, struct cases *c)
{
    size_t size = 0, osize = 0;
    memset(c, 0, sizeof *c);
    c->data = test_read_file(inp, &size);
    c->out_data = test_read_file(outp, &osize);
    if (!c->data || !c->out_data) return false;
    const size_t sl = strlen(SEP);
    size_t pos = 0;
    while (pos < size && c->n < MAX_CASES) {
        const char *hit = NULL;
        for (size_t i = pos; i + sl <= size; i++)
            if (memcmp(c->data + i, SEP, sl) == 0) {
                hit = c->data + i;
                break;
            }
        if (!hit) break;
        c->s[c->n] = c->data + pos;
        c->len[c->n] = (size_t)(hit - (c->data + pos));
        c->n++;
        pos = (size_t)(hit - c->data) + sl;
    }
    /* .out: one line per case; turn newlines into terminators. */
    char *line = c->out_data;
    for (size_t i = 0; i < osize && c->n_out < MAX_CASES; i++) {
        if (c->out_data[i] == '\n') {
            c->out_data[i] = '\0';
            c->out_line[c->n_out++] = line;
            line = c->out_data + i + 1;
        }
    }
    return true;
}

static void cases_free(struct cases *c)
{
    free(c->data);
    free(c->out_data);
}

static bool ids_equal_line(const int32_t *ids, size_t n, const char *line)
{
    size_t k = 0;
    const char *p = line;
    for (;;) {
        while (*p == ' ') p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) return false;
        if (k >= n || ids[k] != v) return false;
        k++;
        p = end;
    }
    return k == n;
}

/* Independent strict UTF-8 check (RFC 3629 ranges). */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c == 0xE0) {
            need = 2, lo = 0xA0;
        } else if (c >= 0xE1 && c <= 0xEC) {
            need = 2;
        } else if (c == 0xED) {
            need = 2, hi = 0x9F;
        } else if (c >= 0xEE && c <= 0xEF) {
            need = 2;
        } else if (c == 0xF0) {
            need = 3, lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            need = 3;
        } else if (c == 0xF4) {
            need = 3, hi = 0x8F;
        } else {
            return false;
        }
        if (i + need + 1 > n) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return false;
        i += need + 1;
    }
    return true;
}

static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* ---- llama.cpp fixtures -------------------------------------------------- */

/* U+2581 in the input decodes as a space: the only way SPM decoding is not
 * the identity after the leading space. */
static size_t spm_expected(const char *s, size_t n, char *out)
{
    size_t k = 0;
    if (n == 0) return 0;
    out[k++] = ' ';
    for (size_t i = 0; i < n; i++) {
        if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
            out[k++] = ' ';
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    return k;
}

/* Encodes each .inp case of the fixture at `path` (without BOS, without
 * parse_special, as llama.cpp's test does), asserts the round trip, and
 * returns how many .out id lines were reproduced exactly. Round trip: gpt2
 * gives the bytes back exactly; SPM gives " " + x (leading-space rule) for
 * non-empty x and nothing for the empty text. */
static int run_cases(const bn_tokenizer *tk, const char *path, bool spm, const char *label)
{
    char inp[1100], outp[1100];
    snprintf(inp, sizeof inp, "%s.inp", path);
    snprintf(outp, sizeof outp, "%s.out", path);
    struct cases c;
    if (!cases_load(inp, outp, &c)) {
        CHECKF(0, "%s: .inp/.out readable", label);
        cases_free(&c);
        return 0;
    }
    CHECKF(c.n == 46 && c.n_out == 46, "%s: 46 cases (got %d inputs, %d outputs)", label, c.n, c.n_out);
    int matched = 0;
    for (int i = 0; i < c.n; i++) {
        int32_t *ids;
        size_t n, dl = 0;
        if (!encode(tk, c.s[i], c.len[i], false, false, &ids, &n)) {
            CHECKF(0, "%s: case %d encodes", label, i);
            continue;
        }
        char *dec = decode_all(tk, ids, n, &dl);
        char *want = malloc(c.len[i] + 2);
        size_t wl = 0;
        if (want && spm) {
            wl = spm_expected(c.s[i], c.len[i], want);
        } else if (want) {
            memcpy(want, c.s[i], c.len[i]);
            wl = c.len[i];
        }
        CHECKF(dec && want && dl == wl && memcmp(dec, want, dl) == 0, "%s case %d: decode(encode(x)) == %sx", label, i,
               spm ? "\" \" + " : "");
        CHECKF((n == 0) == (c.len[i] == 0), "%s case %d: tokens iff text", label, i);
        bool same = i < c.n_out && ids_equal_line(ids, n, c.out_line[i]);
        if (same) {
            matched++;
        } else {
            fprintf(stderr, "  %s case %d: want [%s], got [", label, i, i < c.n_out ? c.out_line[i] : "?");
            for (size_t k = 0; k < n; k++) fprintf(stderr, " %d", (int)ids[k]);
            fprintf(stderr, " ]\n");
        }
        CHECKF(same, "%s case %d: the reference ids", label, i);
        free(want);
        free(dec);
        free(ids);
    }
    cases_free(&c);
    return matched;
}

/* The other byte-level BPE fixtures: each pre-tokenizer against its
 * reference ids. */
static int32_t byte_token(const bn_tokenizer *tk, unsigned char b);

static void test_other_fixtures(const char *dir)
{
    /* With how many of the 256 bytes each byte alphabet lacks: C0, C1 and
     * F5..FF never occur in UTF-8; StarCoder and Refact lack F1 too, Falcon
     * also 15 ASCII control characters. */
    static const char *const names[] = {"gpt-2", "mpt", "starcoder", "refact", "falcon", "deepseek-coder",
                                        "deepseek-llm"};
    /* ASCII bytes without a token (Falcon: 14 controls). The bytes that
     * never occur in UTF-8 (C0, C1, F5..FF), which some also lack, no
     * longer reach BPE: llama.cpp reads them as U+FFFD. */
    static const int lacking[] = {0, 0, 0, 0, 14, 0, 0};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", dir, names[i]);
        struct vocab v;
        bool ok = vocab_open(path, &v, NULL);
        CHECKF(ok, "%s vocab loads", names[i]);
        if (!ok) continue;
        int matched = run_cases(v.tk, path, false, names[i]);
        printf("%s: %d of 46 reference id lines matched exactly\n", names[i], matched);
        bool guessed = true;
        const char *pre = bn_tokenizer_pre_name(v.tk, &guessed);
        CHECKF(pre && !guessed, "%s: pre-tokenizer named by the file (%s)", names[i], pre ? pre : "none");
        /* Random bytes (mostly invalid UTF-8) through this pre-tokenizer
         * and BPE: the text llama.cpp reads (each invalid byte a U+FFFD)
         * back, less the ASCII bytes the vocabulary has no token for,
         * which are dropped as in llama.cpp. */
        bool keeps[256];
        int n_dropped = 0;
        /* Above 0x7F only parts of valid UTF-8 arrive; StarCoder and Refact
         * lack F1, Falcon F1 and F2 (leads of rare 4-byte characters). */
        for (int b = 128; b < 256; b++) keeps[b] = byte_token(v.tk, (unsigned char)b) >= 0;
        for (int b = 0; b < 128; b++) {
            char one = (char)b;
            int32_t *ids;
            size_t nid, dl = 0;
            keeps[b] = false;
            if (encode(v.tk, &one, 1, false, false, &ids, &nid)) {
                char *dec = decode_all(v.tk, ids, nid, &dl);
                keeps[b] = dec && dl == 1 && dec[0] == one;
                CHECKF(keeps[b] || nid == 0, "%s: byte 0x%02X is kept or dropped, nothing else", names[i], b);
                free(dec);
                free(ids);
            }
            n_dropped += !keeps[b];
        }
        CHECKF(n_dropped == lacking[i], "%s: %d ASCII bytes without a token (want %d)", names[i], n_dropped,
               lacking[i]);
        /* A byte that cannot start UTF-8 is U+FFFD, as llama.cpp reads it. */
        int32_t *fids;
        size_t fn, fl = 0;
        if (encode(v.tk, "\xFF", 1, false, false, &fids, &fn)) {
            char *dec = decode_all(v.tk, fids, fn, &fl);
            CHECKF(dec && fl == 3 && memcmp(dec, "\xEF\xBF\xBD", 3) == 0, "%s: 0xFF reads as U+FFFD", names[i]);
            free(dec);
            free(fids);
        }
        uint64_t seed = 1000 + i;
        int bad = 0;
        for (int iter = 0; iter < 200; iter++) {
            unsigned char text[160];
            size_t n = (size_t)(rng_next(&seed) % sizeof text);
            for (size_t k = 0; k < n; k++) text[k] = (unsigned char)rng_next(&seed);
            int32_t *ids;
            size_t nid, dl = 0;
            if (!encode(v.tk, (const char *)text, n, false, iter & 1, &ids, &nid)) {
                bad++;
                continue;
            }
            char *dec = decode_all(v.tk, ids, nid, &dl);
            unsigned char read[3 * 160], want[3 * 160];
            const size_t rn = llama_reads(text, n, read);
            size_t wn = 0;
            for (size_t k = 0; k < rn; k++)
                if (keeps[read[k]]) want[wn++] = read[k];
            if (!dec || dl != wn || (wn && memcmp(dec, want, wn) != 0)) bad++;
            free(dec);
            free(ids);
        }
        CHECKF(bad == 0, "%s: random bytes round-trip (%d bad)", names[i], bad);
        bn_tokenizer_destroy(v.tk);
    }
}

static void test_llama_bpe(const bn_tokenizer *tk, const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-bpe.gguf", dir);
    CHECKF(bn_tokenizer_n_vocab(tk) == 128256, "n_vocab %u", bn_tokenizer_n_vocab(tk));
    CHECKF(bn_tokenizer_bos(tk) == 128000, "bos %d", bn_tokenizer_bos(tk));
    CHECKF(bn_tokenizer_eos(tk) == 128001, "eos %d", bn_tokenizer_eos(tk));
    CHECKF(bn_tokenizer_eot(tk) == -1, "eot %d (no key in this file)", bn_tokenizer_eot(tk));
    CHECK(bn_tokenizer_add_bos(tk), "llama-bpe has no add_bos_token key: Llama 3 adds BOS");
    bool guessed = true;
    const char *pre = bn_tokenizer_pre_name(tk, &guessed);
    CHECK(pre && !strcmp(pre, "llama-bpe") && !guessed, "pre-tokenizer llama-bpe, named by the file");
    CHECK(bn_tokenizer_find(tk, "<|eot_id|>", 10) == 128009 && bn_tokenizer_is_control(tk, 128009),
          "find <|eot_id|>: a control token");
    CHECK(bn_tokenizer_find(tk, "\xC4\xA0Hello", 7) == 22691 && !bn_tokenizer_is_control(tk, 22691),
          "find \"\xC4\xA0Hello\" (U+0120 for the space)");
    CHECK(bn_tokenizer_find(tk, "no such token text", 18) == -1 && bn_tokenizer_find(tk, NULL, 3) == -1,
          "find: unknown texts");
    CHECK(bn_tokenizer_is_eog(tk, 128001), "eos is eog");
    CHECK(bn_tokenizer_is_eog(tk, 128009), "<|eot_id|> is eog by its text");
    CHECK(!bn_tokenizer_is_eog(tk, 128000), "bos is not eog");
    CHECK(!bn_tokenizer_is_eog(tk, 9906), "'Hello' is not eog");
    CHECK(!bn_tokenizer_is_eog(tk, -1) && !bn_tokenizer_is_eog(tk, 128256), "out of range ids are not eog");
    CHECK(bn_tokenizer_max_piece(tk) >= 256 && bn_tokenizer_max_piece(tk) < 4096, "max_piece bounds the longest piece");

    int matched = run_cases(tk, path, false, "llama-bpe");
    printf("llama-bpe: %d of 46 reference id lines matched exactly\n", matched);

    /* ignore_merges for long words too: 128 spaces are token 58040 (text
     * 256 bytes of U+0120), taken whole. */
    {
        char sp128[128];
        memset(sp128, ' ', sizeof sp128);
        int32_t *ids;
        size_t n;
        if (encode(tk, sp128, sizeof sp128, false, false, &ids, &n)) {
            CHECKF(n == 1 && ids[0] == 58040, "128 spaces: the one token 58040 (n=%zu)", n);
            free(ids);
        }
    }
    /* Plain words need no regex: these must match the reference. */
    int32_t *ids;
    size_t n;
    if (encode(tk, "Hello world", 11, false, false, &ids, &n)) {
        CHECKF(n == 2 && ids[0] == 9906 && ids[1] == 1917, "'Hello world' -> 9906 1917 (n=%zu)", n);
        free(ids);
    }
    if (encode(tk, "Hello", 5, true, false, &ids, &n)) {
        CHECKF(n == 2 && ids[0] == 128000 && ids[1] == 9906, "add_bos prepends 128000");
        free(ids);
    }
    const char *sp = "<|begin_of_text|>Hi<|eot_id|>";
    if (encode(tk, sp, strlen(sp), false, true, &ids, &n)) {
        CHECKF(n == 3 && ids[0] == 128000 && ids[2] == 128009, "control tokens split out with parse_special (n=%zu)",
               n);
        free(ids);
    }
    if (encode(tk, sp, strlen(sp), false, false, &ids, &n)) {
        bool none = true;
        for (size_t i = 0; i < n; i++) none = none && ids[i] < 128000;
        CHECKF(n > 3 && none, "without parse_special control texts are plain text (n=%zu)", n);
        size_t dl;
        char *dec = decode_all(tk, ids, n, &dl);
        CHECK(dec && dl == strlen(sp) && memcmp(dec, sp, dl) == 0, "and round-trip");
        free(dec);
        free(ids);
    }
    /* Longest match: "<|eot_id|>" must not lose to a shorter prefix token. */
    if (encode(tk, "<|eot_id|><|eot_id|", 19, false, true, &ids, &n)) {
        CHECKF(n >= 2 && ids[0] == 128009 && ids[1] != 128009, "special at start, broken one left as text");
        free(ids);
    }
    /* An empty text gives no tokens (but a valid array), BOS alone with add_bos. */
    if (encode(tk, "", 0, false, true, &ids, &n)) {
        CHECK(n == 0 && ids != NULL, "empty text: no tokens");
        free(ids);
    }
    if (encode(tk, NULL, 0, true, true, &ids, &n)) {
        CHECK(n == 1 && ids[0] == 128000, "empty text + add_bos: BOS only");
        free(ids);
    }
    /* Piece truncation: returns the full length, writes at most cap. */
    char small[3] = {'x', 'x', 'x'};
    size_t full = bn_tokenizer_piece(tk, 128000, small, 2);
    CHECKF(full == 17 && small[0] == '<' && small[1] == '|' && small[2] == 'x', "piece truncates (%zu)", full);
    CHECK(bn_tokenizer_piece(tk, -5, small, 3) == 0 && bn_tokenizer_piece(tk, 128256, small, 3) == 0,
          "invalid ids have empty pieces");
}

static void test_llama_spm(const bn_tokenizer *tk, const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-spm.gguf", dir);
    CHECKF(bn_tokenizer_n_vocab(tk) == 32000, "n_vocab %u", bn_tokenizer_n_vocab(tk));
    CHECKF(bn_tokenizer_bos(tk) == 1 && bn_tokenizer_eos(tk) == 2, "bos %d eos %d", bn_tokenizer_bos(tk),
           bn_tokenizer_eos(tk));
    CHECK(bn_tokenizer_add_bos(tk), "add_bos true");
    CHECK(bn_tokenizer_is_eog(tk, 2) && !bn_tokenizer_is_eog(tk, 1), "</s> is eog, <s> not");

    int matched = run_cases(tk, path, true, "llama-spm");
    printf("llama-spm: %d of 46 reference id lines matched exactly\n", matched);

    int32_t *ids;
    size_t n;
    if (encode(tk, "Hello", 5, true, false, &ids, &n)) {
        CHECKF(n == 2 && ids[0] == 1 && ids[1] == 15043, "BOS + '▁Hello' 15043");
        free(ids);
    }
    if (encode(tk, "<s>", 3, false, true, &ids, &n)) {
        CHECKF(n == 1 && ids[0] == 1, "'<s>' with parse_special -> 1");
        free(ids);
    }
    if (encode(tk, "<s>", 3, false, false, &ids, &n)) {
        bool none = true;
        for (size_t i = 0; i < n; i++) none = none && ids[i] != 1;
        CHECKF(n >= 2 && none, "'<s>' as text is not the control token (n=%zu)", n);
        free(ids);
    }
    /* Byte fallback: a character outside the vocabulary becomes <0xXX>
     * tokens (ids 3..258), U+10FFFF here. */
    if (encode(tk, "\xF4\x8F\xBF\xBF", 4, false, false, &ids, &n)) {
        CHECKF(n == 5 && ids[1] == 3 + 0xF4 && ids[4] == 3 + 0xBF, "byte fallback (n=%zu)", n);
        free(ids);
    }
    /* Invalid UTF-8 bytes are their own symbols and round-trip. */
    const char bad[] = "a\xFF\xC3(\xE2\x82";
    if (encode(tk, bad, sizeof bad - 1, false, false, &ids, &n)) {
        size_t dl;
        char *dec = decode_all(tk, ids, n, &dl);
        CHECK(dec && dl == sizeof bad && dec[0] == ' ' && memcmp(dec + 1, bad, dl - 1) == 0,
              "invalid UTF-8 round-trips");
        free(dec);
        free(ids);
    }
}

/* ---- the golden model's vocabulary --------------------------------------- */

static void test_golden(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/i2s_bitnet_b158/model.gguf", dir);
    struct vocab v;
    bool ok = vocab_open(path, &v, NULL);
    CHECK(ok, "golden model vocab loads");
    if (!ok) return;
    const bn_tokenizer *tk = v.tk;
    CHECKF(bn_tokenizer_n_vocab(tk) == 320, "n_vocab %u", bn_tokenizer_n_vocab(tk));
    CHECK(bn_tokenizer_bos(tk) == 315 && bn_tokenizer_eos(tk) == 316 && bn_tokenizer_eot(tk) == 317, "bos/eos/eot");
    CHECK(bn_tokenizer_add_bos(tk), "add_bos_token true in the file");
    CHECK(bn_tokenizer_is_eog(tk, 316) && bn_tokenizer_is_eog(tk, 317) && !bn_tokenizer_is_eog(tk, 315), "eog ids");
    const char *s = "<|begin_of_text|>";
    int32_t *ids;
    size_t n;
    if (encode(tk, s, strlen(s), false, true, &ids, &n)) {
        CHECKF(n == 1 && ids[0] == 315, "parse_special: 315 (n=%zu)", n);
        free(ids);
    }
    if (encode(tk, s, strlen(s), false, false, &ids, &n)) {
        size_t bytes = 0;
        for (size_t i = 0; i < n; i++) bytes += ids[i] < 256;
        CHECKF(n > 5 && bytes >= n - 2, "without parse_special: mostly byte tokens (n=%zu, %zu bytes)", n, bytes);
        size_t dl;
        char *dec = decode_all(tk, ids, n, &dl);
        CHECK(dec && dl == strlen(s) && memcmp(dec, s, dl) == 0, "and round-trips");
        free(dec);
        free(ids);
    }
    /* The merges of this vocab build " the" from bytes. */
    if (encode(tk, "of the", 6, true, false, &ids, &n)) {
        CHECKF(n == 3 && ids[0] == 315 && ids[1] == 268 && ids[2] == 258, "'of the' -> BOS of Ġthe (n=%zu)", n);
        free(ids);
    }
    bn_tokenizer_destroy(v.tk);
}

/* ---- streaming detokenization -------------------------------------------- */

/* The token of one raw byte, found by its stored text (encoding the byte
 * would read a lone byte above 0x7F as U+FFFD): SentencePiece's "<0xXX>",
 * or byte-level BPE's character for it, GPT-2's byte-to-unicode map (the
 * printable bytes stand for themselves, the others for U+0100 + k in
 * order). */
static bool gpt2_printable(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

static int32_t byte_token(const bn_tokenizer *tk, unsigned char b)
{
    char s[8];
    snprintf(s, sizeof s, "<0x%02X>", b);
    int32_t id = bn_tokenizer_find(tk, s, 6);
    if (id >= 0) return id;
    uint32_t cp = b;
    if (!gpt2_printable(b)) {
        cp = 256;
        for (unsigned x = 0; x < b; x++) cp += !gpt2_printable(x);
    }
    int n = 0;
    if (cp < 0x80) {
        s[n++] = (char)cp;
    } else {
        s[n++] = (char)(0xC0 | (cp >> 6));
        s[n++] = (char)(0x80 | (cp & 0x3F));
    }
    return bn_tokenizer_find(tk, s, (size_t)n);
}

/* Feeds bytes one byte token each; returns all output, checks per-step output
 * against expected cumulative lengths when given. */
static size_t stream_bytes(const bn_tokenizer *tk, const unsigned char *in, size_t n, char *out, size_t cap, bool flush)
{
    struct bn_detok d = {0};
    size_t cap1 = bn_tokenizer_max_piece(tk) + 64;
    char *buf = malloc(cap1);
    size_t k = 0;
    for (size_t i = 0; buf && i < n; i++) {
        size_t got = bn_tokenizer_decode_stream(tk, &d, byte_token(tk, in[i]), buf, cap1);
        if (k + got <= cap) memcpy(out + k, buf, got);
        k += got;
    }
    if (buf && flush) {
        size_t got = bn_tokenizer_decode_flush(tk, &d, buf, cap1);
        if (k + got <= cap) memcpy(out + k, buf, got);
        k += got;
    }
    free(buf);
    return k;
}

static void test_stream(const bn_tokenizer *tk, const char *what)
{
    const unsigned char s[] = "h\xC3\xA9llo \xE2\x82\xAC"; /* "héllo €" */
    const size_t n = sizeof s - 1;
    struct bn_detok d = {0};
    size_t cap = bn_tokenizer_max_piece(tk) + 64;
    char *buf = malloc(cap);
    char acc[64];
    size_t k = 0;
    /* After each byte: how many bytes may be out so far (complete chars). */
    static const size_t expect_total[] = {1, 1, 3, 4, 5, 6, 7, 7, 7, 10};
    bool early_ok = true;
    for (size_t i = 0; buf && i < n; i++) {
        int32_t id = byte_token(tk, s[i]);
        size_t got = bn_tokenizer_decode_stream(tk, &d, id, buf, cap);
        if (k + got <= sizeof acc) memcpy(acc + k, buf, got);
        k += got;
        if (k != expect_total[i]) early_ok = false;
        if (!valid_utf8((const unsigned char *)acc, k < sizeof acc ? k : 0)) early_ok = false;
    }
    CHECKF(early_ok, "%s: no incomplete character printed early", what);
    CHECKF(k == n && memcmp(acc, s, n) == 0, "%s: streamed bytes equal the input", what);
    CHECKF(buf && bn_tokenizer_decode_flush(tk, &d, buf, cap) == 0, "%s: nothing left to flush", what);

    char out[64];
    struct {
        const char *in;
        size_t n;
        const char *want;
        size_t wn;
        const char *name;
    } cases[] = {
        {"\xFF", 1, "\xEF\xBF\xBD", 3, "0xFF cannot start a sequence"},
        {"\x80", 1, "\xEF\xBF\xBD", 3, "lone continuation"},
        {"\xC3" "A", 2, "\xEF\xBF\xBD" "A", 4, "continuation mismatch, then the byte itself"},
        {"\xC0\x80", 2, "\xEF\xBF\xBD\xEF\xBF\xBD", 6, "overlong C0 80"},
        {"\xE0\x80\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 9, "overlong E0 80 80"},
        {"\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 9, "surrogate ED A0 80"},
        {"\xF4\x90\x80\x80", 4, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 12, "above U+10FFFF"},
        {"\xE2\x82", 2, "\xEF\xBF\xBD", 3, "incomplete at flush"},
        {"\xF0\x9F\x98\x81", 4, "\xF0\x9F\x98\x81", 4, "4-byte character"},
        {"\xE2\x82\xE2\x82\xAC", 5, "\xEF\xBF\xBD\xE2\x82\xAC", 6, "truncated sequence then a full one"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t got = stream_bytes(tk, (const unsigned char *)cases[c].in, cases[c].n, out, sizeof out, true);
        CHECKF(got == cases[c].wn && memcmp(out, cases[c].want, got) == 0, "%s: %s", what, cases[c].name);
    }

    /* Random ids, fixed seed: the output is always valid UTF-8 and each call
     * fits the documented buffer size. */
    uint64_t seed = 12345;
    uint32_t nv = bn_tokenizer_n_vocab(tk);
    size_t total_cap = 1 << 20, total = 0;
    unsigned char *all = malloc(total_cap);
    bool fits = true;
    struct bn_detok rd = {0};
    for (int i = 0; all && buf && i < 20000; i++) {
        int32_t id;
        /* Half the time a byte token, to provoke broken sequences. */
        if (rng_next(&seed) & 1) id = byte_token(tk, (unsigned char)rng_next(&seed));
        else id = (int32_t)(rng_next(&seed) % nv);
        size_t full = bn_tokenizer_piece(tk, id, NULL, 0);
        size_t got = bn_tokenizer_decode_stream(tk, &rd, id, buf, cap);
        if (got > 3 * (full + 3)) fits = false;
        if (total + got > total_cap) break;
        memcpy(all + total, buf, got);
        total += got;
    }
    if (all && buf) {
        size_t got = bn_tokenizer_decode_flush(tk, &rd, buf, cap);
        if (total + got <= total_cap) {
            memcpy(all + total, buf, got);
            total += got;
        }
    }
    CHECKF(all && valid_utf8(all, total), "%s: random ids stream to valid UTF-8 (%zu bytes)", what, total);
    CHECKF(fits, "%s: outputs bounded", what);
    /* A garbage state is repaired, not trusted. */
    struct bn_detok bad = {{0x41, 0, 0, 0}, 7};
    size_t got = buf ? bn_tokenizer_decode_flush(tk, &bad, buf, cap) : 0;
    CHECK(bad.n_pending == 0 && got == 3, "corrupt detok state becomes one U+FFFD");
    free(all);
    free(buf);
}

static void test_streams(const bn_tokenizer *bpe, const char *dir)
{
    test_stream(bpe, "llama-bpe");
    char path[1024];
    struct vocab v;
    snprintf(path, sizeof path, "%s/golden/i2s_bitnet_b158/model.gguf", dir);
    if (vocab_open(path, &v, NULL)) {
        test_stream(v.tk, "golden");
        bn_tokenizer_destroy(v.tk);
    }
}

/* ---- random texts ---------------------------------------------------------- */

/* Random byte strings drawn from an alphabet that provokes special-token
 * prefixes, whitespace runs and U+2581: gpt2 round-trips with or without
 * parse_special (control tokens decode to their text); SPM without
 * parse_special gives " " + x. (Broken UTF-8 reads as llama.cpp reads it:
 * test_invalid_utf8.) */
static void test_random_texts(const bn_tokenizer *bpe_tk, const bn_tokenizer *spm_tk)
{
    static const char *const atoms[] = {"<|", "|>", "<", "eot_id", "<|eot_id|>", "<s>", "</s>", " ", "  ", "\n",
                                        "\t", "a", "the", "\xC3\xA9", "\xE2\x96\x81", "\xF0\x9F\x98\x81", "3", "'s",
                                        "\x00"};
    struct vocab bpe = {NULL, (bn_tokenizer *)bpe_tk}, spm = {NULL, (bn_tokenizer *)spm_tk};
    bool have_bpe = bpe_tk != NULL, have_spm = spm_tk != NULL;
    uint64_t seed = 7;
    int bad_bpe = 0, bad_spm = 0;
    char text[512], want[1100];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 0;
        int parts = (int)(rng_next(&seed) % 40);
        for (int k = 0; k < parts; k++) {
            const char *a = atoms[rng_next(&seed) % (sizeof atoms / sizeof atoms[0])];
            size_t al = strcmp(a, "\x00") == 0 ? 1 : strlen(a);
            if (n + al > sizeof text) break;
            memcpy(text + n, a, al);
            n += al;
        }
        for (int mode = 0; have_bpe && mode < 2; mode++) {
            int32_t *ids;
            size_t k, dl;
            if (!encode(bpe.tk, text, n, false, mode == 1, &ids, &k)) {
                bad_bpe++;
                continue;
            }
            char *dec = decode_all(bpe.tk, ids, k, &dl);
            if (!dec || dl != n || memcmp(dec, text, n) != 0) bad_bpe++;
            free(dec);
            free(ids);
        }
        if (have_spm) {
            int32_t *ids;
            size_t k, dl;
            if (!encode(spm.tk, text, n, false, false, &ids, &k)) {
                bad_spm++;
                continue;
            }
            char *dec = decode_all(spm.tk, ids, k, &dl);
            size_t wl = spm_expected(text, n, want);
            if (!dec || dl != wl || memcmp(dec, want, wl) != 0) bad_spm++;
            free(dec);
            free(ids);
        }
    }
    CHECKF(have_bpe && bad_bpe == 0, "llama-bpe: random texts round-trip (%d bad)", bad_bpe);
    CHECKF(have_spm && bad_spm == 0, "llama-spm: random texts give \" \" + x (%d bad)", bad_spm);
}

/* ---- invalid UTF-8 ------------------------------------------------------ */

/* Broken UTF-8 gets llama.cpp's ids. Byte-level BPE reads it leniently
 * (overlong forms as code points, every other bad byte as U+FFFD);
 * SentencePiece cuts characters by their lead byte alone, so a bad lead
 * takes the next bytes into one symbol, which falls back to byte tokens.
 * Expected ids follow llama.cpp's algorithm (llama-vocab.cpp and
 * unicode.cpp), without special-token parsing and without BOS. */
static void test_invalid_utf8(const char *dir)
{
    static const struct {
        const char *vocab, *text, *ids;
    } cases[] = {
        {"llama-bpe", "\xFF", "5809"},
        {"llama-bpe", "a\x80" "b", "64 5809 65"},
        {"llama-bpe", "\xE4\xB8", "10178"},  /* a truncated character and its lone continuation byte */
        {"llama-bpe", "\xC0\x80", "188"},    /* overlong NUL: the NUL byte's token */
        {"llama-bpe", "\xE0\x80\x80", "188"},
        {"gpt-2", "\xFF", "4210"},
        {"mpt", "x\xFFy", "89 21478 90"}, /* MPT has no token for byte FF: its U+FFFD instead of nothing */
        {"falcon", "\xFF", "13112 133"},
        {"deepseek-coder", "\xFF", "10006"},
        {"llama-spm", "\xE4" "ab", "29871 231 100 101"},
        {"llama-spm", "x\xFFy", "921 258 124"},
        {"llama-spm", " \xFF ", "259 258 229 153 132"}, /* FF takes the next U+2581's three bytes */
        {"llama-spm", "\xC3(", "29871 198 43"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[1024], got[256] = "";
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", dir, cases[c].vocab);
        struct vocab v;
        if (!vocab_open(path, &v, NULL)) {
            CHECKF(0, "%s vocab loads", cases[c].vocab);
            continue;
        }
        int32_t *ids;
        size_t n;
        if (encode(v.tk, cases[c].text, strlen(cases[c].text), false, false, &ids, &n)) {
            for (size_t i = 0; i < n; i++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%d", i ? " " : "", (int)ids[i]);
            free(ids);
        }
        CHECKF(strcmp(got, cases[c].ids) == 0, "%s, case %zu: ids '%s', want '%s'", cases[c].vocab, c, got,
               cases[c].ids);
        bn_tokenizer_destroy(v.tk);
    }
}

/* ---- big inputs ----------------------------------------------------------- */

static void big_roundtrip(const bn_tokenizer *tk, const char *what, const char *s, size_t n, bool spm)
{
    int32_t *ids;
    size_t k, dl = 0;
    double t0 = now_s();
    bool ok = encode(tk, s, n, false, false, &ids, &k);
    double dt = now_s() - t0;
    CHECKF(ok, "%s encodes", what);
    if (!ok) return;
    char *dec = decode_all(tk, ids, k, &dl);
    size_t off = spm ? 1 : 0;
    bool same = dec && dl == n + off && memcmp(dec + off, s, n) == 0 && (!spm || dec[0] == ' ');
    CHECKF(same, "%s round-trips", what);
    printf("  %s: %zu bytes -> %zu tokens in %.3f s\n", what, n, k, dt);
    free(dec);
    free(ids);
}

static void test_big(const bn_tokenizer *bpe_tk, const bn_tokenizer *spm_tk)
{
    /* 128 KiB: big enough that a quadratic step would show (and time out),
     * small enough for the sanitizer build. */
    const size_t n = 1 << 17;
    char *s = malloc(n);
    if (!s) return;
    struct vocab bpe = {NULL, (bn_tokenizer *)bpe_tk}, spm = {NULL, (bn_tokenizer *)spm_tk};
    bool have_bpe = bpe_tk != NULL, have_spm = spm_tk != NULL;
    printf("128 KiB inputs:\n");

    /* Words of random letters and two-byte characters, one space apart. */
    uint64_t seed = 99;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng_next(&seed);
        if (r % 31 == 0 && i + 1 < n) {
            const unsigned c = 0x80 + (unsigned)(rng_next(&seed) % 0x780); /* U+0080 .. U+07FF */
            s[i++] = (char)(0xC0 | (c >> 6));
            s[i] = (char)(0x80 | (c & 0x3F));
        } else {
            s[i] = r % 7 == 0 ? ' ' : (char)('a' + r % 26);
        }
    }
    if (have_bpe) big_roundtrip(bpe.tk, "bpe random words", s, n, false);
    if (have_spm) big_roundtrip(spm.tk, "spm random words", s, n, true);
    memset(s, 'a', n); /* one 128 KiB word */
    if (have_bpe) big_roundtrip(bpe.tk, "bpe one word", s, n, false);
    if (have_spm) big_roundtrip(spm.tk, "spm one word", s, n, true);
    memset(s, ' ', n);
    if (have_bpe) big_roundtrip(bpe.tk, "bpe spaces", s, n, false);
    if (have_spm) big_roundtrip(spm.tk, "spm spaces", s, n, true);
    /* Every position starts a partial match of the 256 "<|...|>" tokens. */
    for (size_t i = 0; i < n; i++) s[i] = "<|reserved_special_token_1"[i % 26];
    if (have_bpe) big_roundtrip(bpe.tk, "bpe unclosed specials", s, n, false);
    free(s);
}

/* ---- a Llama 3 vocabulary without tokenizer.ggml.pre ----------------------- */

/* microsoft/bitnet-b1.58-2B-4T's GGUF names no pre-tokenizer: the 128256-token
 * vocabulary must still be read as Llama 3's. The llama-bpe fixture is
 * rewritten without the key (strings copied with their NUL, which none of
 * its texts contains) and must give every reference line. */
static char **copy_strs(const struct bn_gguf_kv *kv)
{
    char **v = calloc((size_t)kv->arr_n, sizeof *v);
    for (uint64_t i = 0; v && i < kv->arr_n; i++) {
        size_t n = (size_t)kv->arr_str[i].len;
        if (!(v[i] = malloc(n + 1))) return v;
        if (n) memcpy(v[i], kv->arr_str[i].data, n);
        v[i][n] = '\0';
    }
    return v;
}

static void free_strs(char **v, uint64_t n)
{
    for (uint64_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

static void test_missing_pre(const char *dir)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-bpe.gguf", dir);
    bn_gguf *g = NULL;
    if (bn_gguf_open(path, &g, err, sizeof err) != BN_OK) {
        CHECKF(0, "%s", err);
        return;
    }
    const struct bn_gguf_kv *tokens = NULL, *types = NULL, *merges = NULL;
    bool found = false;
    bn_gguf_get_arr_opt(g, "tokenizer.ggml.tokens", BN_GGUF_STRING, &tokens, &found, err, sizeof err);
    bn_gguf_get_arr_opt(g, "tokenizer.ggml.token_type", BN_GGUF_INT32, &types, &found, err, sizeof err);
    bn_gguf_get_arr_opt(g, "tokenizer.ggml.merges", BN_GGUF_STRING, &merges, &found, err, sizeof err);
    if (!tokens || !types || !merges) {
        CHECK(0, "llama-bpe fixture has tokens, types, merges");
        bn_gguf_close(g);
        return;
    }
    char **tok = copy_strs(tokens), **mrg = copy_strs(merges);
    bn_gguf_writer *w = bn_gguf_writer_create(0);
    bn_gguf_writer_add_str(w, "general.architecture", "bitnet-b1.58");
    bn_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, tokens->arr_n);
    bn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", BN_GGUF_INT32, types->value, types->arr_n);
    bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)mrg, merges->arr_n);
    bn_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 128000);
    bn_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 128001);
    uint8_t *mem = NULL;
    size_t size = 0;
    enum bn_status st = bn_gguf_writer_to_memory(w, &mem, &size, err, sizeof err);
    bn_gguf_writer_destroy(w);
    free_strs(tok, tokens->arr_n);
    free_strs(mrg, merges->arr_n);
    bn_gguf_close(g);
    bn_gguf *g2 = NULL;
    bn_tokenizer *tk = NULL;
    if (st == BN_OK) st = bn_gguf_open_memory(mem, size, "no-pre.gguf", &g2, err, sizeof err);
    if (st == BN_OK) st = bn_tokenizer_create(g2, &tk, err, sizeof err);
    CHECKF(st == BN_OK, "llama-bpe without tokenizer.ggml.pre loads: %s", st == BN_OK ? "" : err);
    if (st == BN_OK) {
        bool guessed = false;
        const char *pre = bn_tokenizer_pre_name(tk, &guessed);
        CHECK(pre && !strcmp(pre, "llama-bpe") && guessed, "128256 tokens without tokenizer.ggml.pre: llama-bpe");
        CHECK(bn_tokenizer_add_bos(tk), "and BOS is added, as for Llama 3");
        int matched = run_cases(tk, path, false, "llama-bpe (no pre key)");
        printf("llama-bpe without tokenizer.ggml.pre: %d of 46 reference id lines matched exactly\n", matched);
    }
    bn_tokenizer_destroy(tk);
    bn_gguf_close(g2);
    free(mem);
}

/* ---- streaming text of mixed scripts ------------------------------------------ */

/* Latin with accents, Cyrillic, CJK, Khmer (combining marks), emoji with
 * ZWJ sequences, variation selectors and flags: byte-level BPE splits many
 * of these characters across tokens. Streamed one token at a time, every
 * prefix printed is valid UTF-8 and the whole equals the one-shot decode. */
static const char mixed_text[] =
    "Gr\xC3\xBC\xC3\x9F" "e, \xD0\xBC\xD0\xB8\xD1\x80! \xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C "
    "\xF0\x9F\xA6\x99\xF0\x9F\x9A\x80 \xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F \xE2\x9C\x85 "
    "\xE1\x9E\x80\xE1\x9F\x92\xE1\x9E\x9A\xE1\x9E\xBB\xE1\x9E\x98 \xF0\x9F\x87\xAB\xF0\x9F\x87\xB7 "
    "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 na\xC3\xAFve caf\xC3\xA9 "
    "\xCE\xB1\xCE\xB2\xCE\xB3 \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D \xF0\x9D\x94\xB8 \xE2\x82\xAC""100";

static void test_stream_mixed(const bn_tokenizer *tk, const char *what, bool spm)
{
    const size_t n = sizeof mixed_text - 1;
    int32_t *ids;
    size_t k;
    if (!encode(tk, mixed_text, n, false, false, &ids, &k)) return;
    size_t one_len = 0;
    char *one = decode_all(tk, ids, k, &one_len);
    size_t off = spm ? 1 : 0;
    CHECKF(one && one_len == n + off && memcmp(one + off, mixed_text, n) == 0, "%s: one-shot decode is the text",
           what);
    size_t cap = bn_tokenizer_max_piece(tk) + 64, total = 0;
    char *buf = malloc(cap), *acc = malloc(2 * n + 64);
    struct bn_detok d = {0};
    bool prefix_ok = true;
    int held = 0;
    for (size_t i = 0; buf && acc && i < k; i++) {
        size_t got = bn_tokenizer_decode_stream(tk, &d, ids[i], buf, cap);
        if (got != bn_tokenizer_piece(tk, ids[i], NULL, 0)) held++;
        if (total + got > 2 * n + 64) {
            prefix_ok = false;
            break;
        }
        memcpy(acc + total, buf, got);
        total += got;
        if (!valid_utf8((const unsigned char *)acc, total) || !one || total > one_len ||
            memcmp(acc, one, total) != 0)
            prefix_ok = false;
    }
    if (buf && acc) total += bn_tokenizer_decode_flush(tk, &d, acc + total, 2 * n + 64 - total);
    CHECKF(prefix_ok, "%s: each streamed step is a valid UTF-8 prefix of the one-shot text", what);
    CHECKF(one && acc && total == one_len && memcmp(acc, one, total) == 0,
           "%s: streamed bytes equal the one-shot decode (%zu of %zu)", what, total, one_len);
    CHECKF(held > 0, "%s: some characters were split across tokens and held back (%d tokens)", what, held);
    free(buf);
    free(acc);
    free(one);
    free(ids);
}

static void test_streams_mixed(const bn_tokenizer *bpe, const bn_tokenizer *spm, const char *dir)
{
    test_stream_mixed(bpe, "llama-bpe", false);
    test_stream_mixed(spm, "llama-spm", true);
    static const char *const names[] = {"gpt-2", "deepseek-llm"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", dir, names[i]);
        struct vocab v;
        if (!vocab_open(path, &v, NULL)) {
            CHECKF(0, "%s loads", names[i]);
            continue;
        }
        test_stream_mixed(v.tk, names[i], false);
        bn_tokenizer_destroy(v.tk);
    }
}

/* ---- hand-built files ----------------------------------------------------- */

/* A small gpt2 vocab: the 256 byte characters, "ab", "abc", two control
 * tokens; merges "a b", "ab c". Options break one thing at a time. */
enum breakage {
    B_NONE,
    B_MODEL,
    B_NO_TOKENS,
    B_TYPES_LEN,
    B_SCORES_LEN,
    B_BOS_RANGE,
    B_HUGE_TOKEN,
    B_NO_MERGES,
    B_BAD_MERGE,
    B_TYPE_VALUE,
    B_TYPES_WRONG,
    B_PRE_UNKNOWN,
};

static enum bn_status build_vocab(enum breakage br, bn_tokenizer **tk, char *err, size_t errlen)
{
    enum { N = 260 };
    char texts[N][8];
    const char *tokens[N];
    int32_t types[N];
    float scores[N];
    for (int b = 0; b < 256; b++) {
        /* Byte b's GPT-2 character, written here independently. */
        unsigned cp;
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) {
            cp = (unsigned)b;
        } else {
            unsigned k = 0;
            for (int x = 0; x < b; x++)
                if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE))) k++;
            cp = 256 + k;
        }
        if (cp < 0x80) {
            texts[b][0] = (char)cp;
            texts[b][1] = 0;
        } else {
            texts[b][0] = (char)(0xC0 | (cp >> 6));
            texts[b][1] = (char)(0x80 | (cp & 0x3F));
            texts[b][2] = 0;
        }
        tokens[b] = texts[b];
        types[b] = 1;
        scores[b] = 0;
    }
    tokens[256] = "ab";
    tokens[257] = "abc";
    tokens[258] = "<|end|>";
    tokens[259] = "<|endoftext|>";
    types[256] = types[257] = 1;
    types[258] = types[259] = 3;
    scores[256] = scores[257] = scores[258] = scores[259] = 0;
    const char *merges[] = {"a b", br == B_BAD_MERGE ? "abc" : "ab c"};

    bn_gguf_writer *w = bn_gguf_writer_create(0);
    bn_gguf_writer_add_str(w, "general.architecture", "test");
    bn_gguf_writer_add_str(w, "tokenizer.ggml.model", br == B_MODEL ? "bert" : "gpt2");
    char *huge = NULL;
    if (br == B_HUGE_TOKEN) {
        huge = malloc((1 << 20) + 2);
        if (huge) {
            memset(huge, 'x', (1 << 20) + 1);
            huge[(1 << 20) + 1] = 0;
            tokens[257] = huge;
        }
    }
    if (br != B_NO_TOKENS) bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", tokens, N);
    if (br == B_TYPE_VALUE) types[5] = 9;
    if (br == B_TYPES_WRONG) bn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", BN_GGUF_FLOAT32, scores, N);
    else bn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", BN_GGUF_INT32, types, br == B_TYPES_LEN ? N - 1 : N);
    if (br == B_SCORES_LEN) bn_gguf_writer_add_arr(w, "tokenizer.ggml.scores", BN_GGUF_FLOAT32, scores, 3);
    if (br != B_NO_MERGES) bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", merges, 2);
    if (br == B_PRE_UNKNOWN) bn_gguf_writer_add_str(w, "tokenizer.ggml.pre", "qwen9");
    bn_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 259);
    bn_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", br == B_BOS_RANGE ? N : 258);
    uint8_t *mem = NULL;
    size_t size = 0;
    enum bn_status st = bn_gguf_writer_to_memory(w, &mem, &size, err, errlen);
    bn_gguf_writer_destroy(w);
    free(huge);
    *tk = NULL;
    if (st != BN_OK) return st;
    bn_gguf *g;
    st = bn_gguf_open_memory(mem, size, "test.gguf", &g, err, errlen);
    if (st == BN_OK) {
        st = bn_tokenizer_create(g, tk, err, errlen);
        bn_gguf_close(g);
    }
    free(mem);
    return st;
}

static void test_errors(void)
{
    char err[512];
    bn_tokenizer *tk;
    enum bn_status st = build_vocab(B_NONE, &tk, err, sizeof err);
    CHECKF(st == BN_OK, "hand-built vocab loads: %s", st == BN_OK ? "" : err);
    if (st == BN_OK) {
        int32_t *ids;
        size_t n;
        CHECK(!bn_tokenizer_add_bos(tk), "gpt2 default add_bos false");
        if (encode(tk, "abc ab\n<|end|>", 14, true, true, &ids, &n)) {
            /* Words "abc", " ab", "\n", then the control token. Token i of
             * this vocab is byte i, so "abc" -> a b c -> ab c -> abc (257)
             * and " ab" -> Ġ(32) ab(256): "Ġ a" has no merge. */
            CHECKF(n == 6 && ids[0] == 258 && ids[1] == 257 && ids[2] == 32 && ids[3] == 256 && ids[4] == 10 &&
                       ids[5] == 258,
                   "hand-built encode (n=%zu)", n);
            free(ids);
        }
        CHECK(bn_tokenizer_is_eog(tk, 259) && !bn_tokenizer_is_eog(tk, 258), "eog");
        bool guessed = false;
        const char *pre = bn_tokenizer_pre_name(tk, &guessed);
        CHECK(pre && !strcmp(pre, "default") && guessed, "no tokenizer.ggml.pre, 260 tokens: llama.cpp's default");
        bn_tokenizer_destroy(tk);
    }
    struct {
        enum breakage br;
        const char *key;
        const char *also;
    } cases[] = {
        {B_MODEL, "tokenizer.ggml.model", "bert"},
        {B_NO_TOKENS, "tokenizer.ggml.tokens", "missing"},
        {B_TYPES_LEN, "tokenizer.ggml.token_type", "259"},
        {B_SCORES_LEN, "tokenizer.ggml.scores", "260"},
        {B_BOS_RANGE, "tokenizer.ggml.bos_token_id", "260"},
        {B_HUGE_TOKEN, "tokenizer.ggml.tokens", "1048577"},
        {B_NO_MERGES, "tokenizer.ggml.merges", "missing"},
        {B_BAD_MERGE, "tokenizer.ggml.merges", "abc"},
        {B_TYPE_VALUE, "tokenizer.ggml.token_type", "9"},
        {B_TYPES_WRONG, "tokenizer.ggml.token_type", "float32"},
        {B_PRE_UNKNOWN, "tokenizer.ggml.pre", "qwen9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = 0;
        st = build_vocab(cases[i].br, &tk, err, sizeof err);
        CHECKF(st == BN_ERR_MODEL && !tk, "breakage %zu fails with BN_ERR_MODEL (%d)", i, (int)st);
        CHECKF(strstr(err, "test.gguf") && strstr(err, cases[i].key) && strstr(err, cases[i].also) &&
                   !strchr(err, '\n'),
               "breakage %zu message names file, key, value: %s", i, err);
        bn_tokenizer_destroy(tk);
    }
    bn_tokenizer_destroy(NULL);
}

int main(void)
{
    const char *dir = test_testdata();
    test_errors();
    if (!dir) {
        test_report("test_tokenizer");
        return test_skip_or_fail("tokenizer fixtures need shared/testdata");
    }
    /* The two big vocabularies are loaded once and shared by the tests. */
    char path[1024];
    struct vocab bpe, spm;
    double secs = 0;
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-bpe.gguf", dir);
    bool have_bpe = vocab_open(path, &bpe, &secs);
    CHECK(have_bpe, "llama-bpe vocab loads");
    printf("llama-bpe: tokenizer built in %.3f s (128256 tokens, 280147 merges)\n", secs);
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-spm.gguf", dir);
    bool have_spm = vocab_open(path, &spm, &secs);
    CHECK(have_spm, "llama-spm vocab loads");
    printf("llama-spm: tokenizer built in %.3f s (32000 tokens)\n", secs);
    if (have_bpe && have_spm) {
        test_llama_bpe(bpe.tk, dir);
        test_llama_spm(spm.tk, dir);
        test_streams(bpe.tk, dir);
        test_streams_mixed(bpe.tk, spm.tk, dir);
        test_random_texts(bpe.tk, spm.tk);
        test_big(bpe.tk, spm.tk);
    }
    bn_tokenizer_destroy(bpe.tk);
    bn_tokenizer_destroy(spm.tk);
    test_other_fixtures(dir);
    test_invalid_utf8(dir);
    test_golden(dir);
    test_missing_pre(dir);
    return test_report("test_tokenizer");
}
