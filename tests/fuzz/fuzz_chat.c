/*
 * fuzz_chat - libFuzzer harness: the chat prompt path of `generate --chat`
 * with hostile text in every place a user or a model file can put some.
 *
 * Input: byte 0 picks the vocabulary and the format; the rest is split at
 * the first two NUL bytes into a system message, a first user line and a
 * second user line (missing parts are empty). The whole input is also
 * offered to bn_chat_detect as a model's tokenizer.chat_template. Each turn
 * is rendered and tokenized as cli_chat.c does it (control tokens parsed,
 * BOS only when the format does not write it), and every id decoded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_load_vocabs();
    return 0;
}

/* Next NUL-separated field of [*p, end), as a NUL-terminated copy (the
 * system message is a C string in the CLI). */
static char *next_field(const uint8_t **p, const uint8_t *end, size_t *len)
{
    const uint8_t *s = *p;
    const uint8_t *z = memchr(s, 0, (size_t)(end - s));
    const uint8_t *e = z ? z : end;
    *len = (size_t)(e - s);
    char *out = malloc(*len + 1);
    if (!out) abort();
    memcpy(out, s, *len);
    out[*len] = '\0';
    *p = z ? z + 1 : end;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const bn_tokenizer *tk = fuzz_vocabs[data[0] % FUZZ_N_VOCABS];
    static const enum bn_chat_format formats[] = {BN_CHAT_NONE, BN_CHAT_BITNET, BN_CHAT_LLAMA3};
    enum bn_chat_format f = formats[(data[0] / FUZZ_N_VOCABS) % 3];

    bool matched = false;
    enum bn_chat_format detected = bn_chat_detect((const char *)data + 1, size - 1, "bitnet-b1.58", &matched);
    if (detected != BN_CHAT_NONE && detected != BN_CHAT_BITNET && detected != BN_CHAT_LLAMA3) abort();
    (void)bn_chat_detect((const char *)data + 1, size - 1, NULL, NULL);

    char err[512];
    /* A vocabulary without the format's tokens is refused, as the CLI does. */
    if (bn_chat_check(f, tk, err, sizeof err) != BN_OK) f = BN_CHAT_NONE;

    const uint8_t *p = data + 1, *end = data + size;
    size_t sys_len, u1_len, u2_len;
    char *sys = next_field(&p, end, &sys_len);
    char *u1 = next_field(&p, end, &u1_len);
    char *u2 = next_field(&p, end, &u2_len);
    const char *users[2] = {u1, u2};
    const size_t user_lens[2] = {u1_len, u2_len};

    struct bn_chat_text t = {0};
    const size_t cap = bn_tokenizer_max_piece(tk) + 64;
    char *piece = malloc(cap);
    if (!piece) abort();
    for (int turn = 0; turn < 2; turn++) {
        t.n = 0;
        if (bn_chat_render_turn(f, turn == 0, sys, users[turn], user_lens[turn], &t, err, sizeof err) != BN_OK)
            abort(); /* only out of memory may fail */
        bool bos = turn == 0 && !bn_chat_writes_bos(f) && bn_tokenizer_add_bos(tk);
        int32_t *ids = NULL;
        size_t n = 0;
        if (bn_tokenizer_encode(tk, t.p, t.n, bos, true, &ids, &n, err, sizeof err) != BN_OK) abort();
        struct bn_detok d = {0};
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || (uint32_t)ids[i] >= bn_tokenizer_n_vocab(tk)) abort();
            if (bn_tokenizer_decode_stream(tk, &d, ids[i], piece, cap) > cap) abort();
        }
        if (bn_tokenizer_decode_flush(tk, &d, piece, cap) > cap) abort();
        free(ids);
    }
    free(piece);
    free(t.p);
    free(sys);
    free(u1);
    free(u2);
    return 0;
}
