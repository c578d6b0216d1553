/*
 * fuzz_tokenizer - libFuzzer harness: arbitrary bytes (valid UTF-8 or not)
 * as text, against the real vocabularies.
 *
 * Input: byte 0 picks the vocabulary, the rest is the text. The text is
 * encoded with control tokens parsed and as plain text, every id is decoded
 * through the streaming decoder, and for byte-level BPE vocabularies the
 * plain encoding must decode back to the text exactly when the text is
 * valid UTF-8 and every byte of it has a byte token (nothing is
 * normalized; invalid sequences come back as U+FFFD by design, and bytes
 * the vocabulary lacks are dropped as the reference tokenizer drops them:
 * Falcon's has no token for 0x11, for one).
 * SentencePiece vocabularies rewrite spaces and add a leading one, so
 * their round trip is not checked here (tests/test_tokenizer.c does).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "tokenizer_impl.h"
#include "tokenizer_utf8.h"

static bool valid_utf8(const uint8_t *s, size_t n);

/* has_byte[v][b]: vocabulary v has a token for byte b alone. */
static bool has_byte[FUZZ_N_VOCABS][256];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_load_vocabs();
    for (size_t v = 0; v < FUZZ_N_VOCABS; v++)
        for (unsigned b = 0; b < 256; b++) {
            char s[4];
            int k = bn_utf8_encode(tok_gpt2_byte_to_cp((unsigned char)b), s);
            has_byte[v][b] = bn_tokenizer_find(fuzz_vocabs[v], s, (size_t)k) >= 0;
        }
    return 0;
}

/* Whether the text is valid UTF-8 and each of its bytes has a token. */
static bool round_trips(size_t v, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!has_byte[v][s[i]]) return false;
    return valid_utf8(s, n);
}

static bool valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k = bn_utf8_decode(s + i, n - i, &cp);
        if (k == 0) return false;
        i += (size_t)k;
    }
    return true;
}

/* Decodes ids through the streaming decoder into a malloc'd buffer. */
static char *decode_all(const bn_tokenizer *tk, const int32_t *ids, size_t n, size_t *out_len)
{
    const size_t cap = bn_tokenizer_max_piece(tk) + 64;
    char *piece = malloc(cap);
    size_t len = 0, room = 256;
    char *out = malloc(room);
    if (!piece || !out) abort();
    struct bn_detok d = {0};
    for (size_t i = 0; i <= n; i++) {
        size_t k = i < n ? bn_tokenizer_decode_stream(tk, &d, ids[i], piece, cap)
                         : bn_tokenizer_decode_flush(tk, &d, piece, cap);
        if (k > cap) abort(); /* wrote (or claims) more than the buffer */
        while (len + k > room) {
            room *= 2;
            out = realloc(out, room);
            if (!out) abort();
        }
        memcpy(out + len, piece, k);
        len += k;
    }
    free(piece);
    *out_len = len;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const size_t v = data[0] % FUZZ_N_VOCABS;
    const bn_tokenizer *tk = fuzz_vocabs[v];
    const char *text = (const char *)data + 1;
    const size_t len = size - 1;
    char err[512];
    for (int special = 0; special < 2; special++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (bn_tokenizer_encode(tk, text, len, special == 1, special == 1, &ids, &n, err, sizeof err) != BN_OK)
            abort(); /* any bytes are text: encoding has no reason to fail but memory */
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || (uint32_t)ids[i] >= bn_tokenizer_n_vocab(tk)) abort();
        size_t dlen = 0;
        char *dec = decode_all(tk, ids, n, &dlen);
        if (!special && bn_tokenizer_pre_name(tk, NULL) != NULL && round_trips(v, data + 1, len) &&
            (dlen != len || memcmp(dec, text, len) != 0)) {
            fprintf(stderr, "round trip differs: %zu bytes in, %zu out\n", len, dlen);
            abort();
        }
        free(dec);
        free(ids);
    }
    return 0;
}
