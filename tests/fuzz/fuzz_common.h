/*
 * fuzz_common.h - what the text harnesses share: the real vocabularies of
 * ../shared/testdata/vocab, loaded once per process (loading Llama 3's
 * 280k merges takes longer than thousands of fuzz inputs).
 *
 * BN_TESTDATA_DIR (environment) overrides the directory the build was
 * configured with. A vocabulary that is missing aborts: a fuzzer that
 * silently tests nothing would pass CI.
 */
#ifndef BN_FUZZ_COMMON_H
#define BN_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include "gguf.h"
#include "tokenizer.h"

static const char *const fuzz_vocab_names[] = {
    "llama-bpe", "llama-spm", "gpt-2", "mpt", "starcoder", "refact", "falcon", "deepseek-coder", "deepseek-llm",
};
#define FUZZ_N_VOCABS (sizeof fuzz_vocab_names / sizeof fuzz_vocab_names[0])

static bn_tokenizer *fuzz_vocabs[FUZZ_N_VOCABS];

static void fuzz_load_vocabs(void)
{
    const char *dir = getenv("BN_TESTDATA_DIR");
    if (!dir || !*dir) dir = BN_TESTDATA_DIR;
    for (size_t i = 0; i < FUZZ_N_VOCABS; i++) {
        char path[4096], err[512];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", dir, fuzz_vocab_names[i]);
        bn_gguf *g = NULL;
        if (bn_gguf_open(path, &g, err, sizeof err) != BN_OK ||
            bn_tokenizer_create(g, &fuzz_vocabs[i], err, sizeof err) != BN_OK) {
            fprintf(stderr, "fuzz: %s\n", err);
            abort();
        }
        bn_gguf_close(g);
    }
}

#endif
