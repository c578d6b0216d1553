/*
 * fuzz_gguf_model - libFuzzer harness: arbitrary bytes as a model file.
 *
 * The bytes go through the same path `bitnet-vk generate` takes with a file
 * from the internet: the GGUF reader (bn_gguf_open_memory), the tokenizer
 * metadata (bn_tokenizer_create) and the model binder (bn_model_from_gguf).
 * Whatever loads must be safe to read, so every tensor view's bytes are
 * touched: ASan then catches a view that runs past the buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "gguf.h"
#include "model.h"
#include "tokenizer.h"

/* A sum the optimizer cannot drop: reading every byte is the point. */
static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    bn_gguf *g = NULL;
    if (bn_gguf_open_memory(data, size, "fuzz.gguf", &g, err, sizeof err) != BN_OK) return 0;

    /* Every key and tensor the reader accepted lies inside the buffer. */
    uint8_t acc = 0;
    for (int64_t i = 0; i < bn_gguf_n_kv(g); i++) {
        const struct bn_gguf_kv *kv = bn_gguf_kv_at(g, i);
        for (uint64_t k = 0; k < kv->key.len; k++) acc ^= (uint8_t)kv->key.data[k];
    }
    for (int64_t i = 0; i < bn_gguf_n_tensors(g); i++) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor_at(g, i);
        for (uint64_t k = 0; k < t->nbytes; k++) acc ^= t->data[k];
    }

    /* The tokenizer reads the same metadata; it copies what it keeps. */
    bn_tokenizer *tk = NULL;
    if (bn_tokenizer_create(g, &tk, err, sizeof err) == BN_OK) {
        int32_t *ids = NULL;
        size_t n = 0;
        static const char text[] = "Hello <|eot_id|> world\xff\xfe 123";
        if (bn_tokenizer_encode(tk, text, sizeof text - 1, true, true, &ids, &n, err, sizeof err) == BN_OK) {
            char *piece = malloc(bn_tokenizer_max_piece(tk) + 64);
            struct bn_detok d = {0};
            for (size_t i = 0; piece && i < n; i++)
                acc ^= (uint8_t)bn_tokenizer_decode_stream(tk, &d, ids[i], piece, bn_tokenizer_max_piece(tk) + 64);
            free(piece);
            free(ids);
        }
        bn_tokenizer_destroy(tk);
    }

    /* The binder takes ownership of g, loaded or not. */
    struct bn_model *m = NULL;
    if (bn_model_from_gguf(g, &m, err, sizeof err) == BN_OK) {
        for (uint32_t i = 0; i < m->n_tensors; i++) {
            const struct bn_tensor *t = &m->tensors[i];
            const uint8_t *p = t->data;
            for (size_t k = 0; k < t->nbytes; k++) acc ^= p[k];
        }
        char desc[2048];
        bn_model_describe(m, desc, sizeof desc);
        acc ^= (uint8_t)desc[0];
        bn_model_close(m);
    }
    sink = acc;
    return 0;
}
