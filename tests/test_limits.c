/*
 * Limits a hostile model file cannot push past (issue 7): hyperparameters
 * that would size allocations (layers, widths, heads, vocabulary) are
 * checked against fixed bounds and the file's own tensors before anything
 * proportional to them is allocated, and tokenizer texts are bounded. The
 * GGUF reader's own limits (counts and lengths against the file size, no
 * arrays of arrays, so no recursion) are in test_gguf.c; the fuzz harnesses
 * check the same under -malloc_limit_mb (tests/fuzz/run.sh).
 */
#include <stdint.h>

#include "gguf.h"
#include "gguf_writer.h"
#include "model.h"
#include "synth_model.h"
#include "test_util.h"
#include "tokenizer.h"

/* Overwrites the uint32 value of key in a serialized GGUF (key bytes,
 * then type 4, then the value). */
static bool patch_u32(uint8_t *d, size_t n, const char *key, uint32_t v)
{
    size_t kl = strlen(key);
    for (size_t i = 8; i + kl + 8 <= n; i++) {
        uint64_t len;
        memcpy(&len, d + i - 8, 8);
        uint32_t type;
        if (len != kl || memcmp(d + i, key, kl) != 0) continue;
        memcpy(&type, d + i + kl, 4);
        if (type != 4) return false;
        memcpy(d + i + kl + 4, &v, 4);
        return true;
    }
    return false;
}

static enum bn_status load(const uint8_t *d, size_t n, char *err, size_t errlen)
{
    bn_gguf *g = NULL;
    enum bn_status st = bn_gguf_open_memory(d, n, "limits.gguf", &g, err, errlen);
    if (st != BN_OK) return st;
    struct bn_model *m = NULL;
    st = bn_model_from_gguf(g, &m, err, errlen);
    bn_model_close(m);
    return st;
}

static void hparams(void)
{
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    bn_gguf_writer *w = NULL;
    char err[512];
    CHECK(bn_synth_build(&p, &w, err, sizeof err) == BN_OK, err);
    if (!w) return;
    uint8_t *good = NULL;
    size_t n = 0;
    CHECK(bn_gguf_writer_to_memory(w, &good, &n, err, sizeof err) == BN_OK, err);
    bn_gguf_writer_destroy(w);
    if (!good) return;
    CHECKF(load(good, n, err, sizeof err) == BN_OK, "the unpatched model loads: %s", err);

    static const struct {
        const char *key;
        uint32_t value;
        const char *why;
    } cases[] = {
        {"bitnet-b1.58.block_count", 1000000000u, "a billion layers"},
        {"bitnet-b1.58.block_count", 4096u, "4096 layers, tensors for 2"},
        {"bitnet-b1.58.block_count", 0u, "no layers"},
        {"bitnet-b1.58.embedding_length", 0x80000000u, "width 2^31"},
        {"bitnet-b1.58.embedding_length", 0u, "width 0"},
        {"bitnet-b1.58.feed_forward_length", 0xFFFFFFFFu, "n_ff 2^32-1"},
        {"bitnet-b1.58.attention.head_count", 0u, "no heads"},
        {"bitnet-b1.58.attention.head_count", 0xFFFFFFFFu, "2^32-1 heads"},
        {"bitnet-b1.58.attention.head_count_kv", 1000000u, "a million kv heads"},
        {"bitnet-b1.58.vocab_size", 0xFFFFFFFFu, "vocab_size 2^32-1"},
    };
    uint8_t *d = malloc(n);
    if (!d) return;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(d, good, n);
        if (!patch_u32(d, n, cases[i].key, cases[i].value)) {
            fprintf(stderr, "note: %s not in the synthetic file (or not uint32): case skipped\n", cases[i].key);
            continue;
        }
        err[0] = '\0';
        enum bn_status st = load(d, n, err, sizeof err);
        CHECKF(st == BN_ERR_MODEL && strchr(err, '\n') == NULL && strstr(err, "limits.gguf"),
               "%s: status %d, expected a one-line model error: %s", cases[i].why, (int)st, err);
    }
    free(d);
    free(good);
}

/* A token text of more than TOK_MAX_TEXT (1 MiB) is refused by the
 * tokenizer before its tables are sized. */
static void token_length(void)
{
    const size_t big = (1u << 20) + 1;
    char *t0 = malloc(big + 1);
    if (!t0) return;
    memset(t0, 'a', big);
    t0[big] = '\0';
    const char *tokens[] = {"b", t0, "c"};
    bn_gguf_writer *w = bn_gguf_writer_create(0);
    bool ok = w && bn_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2") &&
              bn_gguf_writer_add_str(w, "tokenizer.ggml.pre", "gpt-2") &&
              bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", tokens, 3);
    CHECK(ok, "writer");
    uint8_t *d = NULL;
    size_t n = 0;
    char err[512];
    if (ok) CHECK(bn_gguf_writer_to_memory(w, &d, &n, err, sizeof err) == BN_OK, err);
    bn_gguf_writer_destroy(w);
    free(t0);
    if (!d) return;
    bn_gguf *g = NULL;
    CHECK(bn_gguf_open_memory(d, n, "longtoken.gguf", &g, err, sizeof err) == BN_OK, err);
    bn_tokenizer *tk = NULL;
    enum bn_status st = g ? bn_tokenizer_create(g, &tk, err, sizeof err) : BN_ERR_MODEL;
    CHECKF(st == BN_ERR_MODEL && tk == NULL && strstr(err, "limit"), "2^20+1-byte token: status %d: %s", (int)st,
           err);
    bn_tokenizer_destroy(tk);
    bn_gguf_close(g);
    free(d);
}

int main(void)
{
    hparams();
    token_length();
    return test_report("test_limits");
}
