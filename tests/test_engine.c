/*
 * Engine behaviour that end-to-end tolerances cannot see: a batched prefill
 * must give bit-identical logits to feeding the same tokens one at a time
 * (activation scales are per token, attention is causal), splitting a prompt
 * into batches changes nothing, and misuse is refused with a message.
 */
#include <stdint.h>

#include "backend.h"
#include "engine.h"
#include "model.h"
#include "test_util.h"

static void run(const char *path)
{
    char err[512];
    struct bn_model *m;
    if (bn_model_open(path, &m, err, sizeof err) != BN_OK) {
        CHECKF(0, "%s", err);
        return;
    }
    struct bn_backend be;
    CHECK(bn_backend_cpu_create(&be, NULL, err, sizeof err) == BN_OK, err);
    CHECK(be.iface.upload_weights(be.ctx, m, err, sizeof err) == BN_OK, err);
    const uint32_t V = m->hp.n_vocab, N = 12;
    int32_t tokens[12];
    for (uint32_t i = 0; i < N; i++) tokens[i] = (int32_t)((i * 37 + 11) % V);

    struct bn_engine_params p = bn_engine_default_params();
    p.n_ctx = 16;
    float *batched = malloc((size_t)N * V * sizeof(float));
    float *single = malloc((size_t)N * V * sizeof(float));
    float *chunked = malloc((size_t)N * V * sizeof(float));
    float *last = malloc(V * sizeof(float));

    for (int kv = 0; kv < 2; kv++) {
        p.kv_type = kv ? BN_KV_F32 : BN_KV_F16;
        bn_engine *e;
        CHECK(bn_engine_create(m, &be, &p, &e, err, sizeof err) == BN_OK, err);
        CHECK(bn_engine_eval(e, tokens, N, true, batched, err, sizeof err) == BN_OK, err);
        CHECK(bn_engine_pos(e) == N, "position advanced by the batch");
        bn_engine_reset(e);
        for (uint32_t i = 0; i < N; i++)
            CHECK(bn_engine_eval(e, &tokens[i], 1, false, single + (size_t)i * V, err, sizeof err) == BN_OK, err);
        CHECK(memcmp(batched, single, (size_t)N * V * sizeof(float)) == 0,
              "batched prefill equals token-by-token decode bit for bit");
        bn_engine_reset(e);
        CHECK(bn_engine_eval(e, tokens, N, false, last, err, sizeof err) == BN_OK, err);
        CHECK(memcmp(last, batched + (size_t)(N - 1) * V, V * sizeof(float)) == 0, "last-row logits");

        /* Context full: 12 + 5 > 16. */
        err[0] = '\0';
        CHECK(bn_engine_eval(e, tokens, 5, false, last, err, sizeof err) == BN_ERR_USAGE && strstr(err, "context"),
              "context overflow refused");
        CHECK(bn_engine_pos(e) == N, "failed eval leaves the position");
        int32_t bad = (int32_t)V;
        CHECK(bn_engine_eval(e, &bad, 1, false, last, err, sizeof err) == BN_ERR_USAGE && strstr(err, "out of range"),
              "token id out of range refused");
        CHECK(bn_engine_eval(e, tokens, 0, false, last, err, sizeof err) == BN_ERR_USAGE, "zero tokens refused");
        bn_engine_destroy(e);

        /* A prompt split into batches of 5 gives the same logits. */
        p.n_batch = 5;
        CHECK(bn_engine_create(m, &be, &p, &e, err, sizeof err) == BN_OK, err);
        CHECK(bn_engine_eval(e, tokens, N, true, chunked, err, sizeof err) == BN_OK, err);
        CHECK(memcmp(batched, chunked, (size_t)N * V * sizeof(float)) == 0, "n_batch 5 equals one batch");
        bn_engine_destroy(e);
        p.n_batch = 512;
    }
    free(batched);
    free(single);
    free(chunked);
    free(last);
    be.iface.destroy(be.ctx);
    bn_model_close(m);
}

int main(void)
{
    const char *td = test_testdata();
    if (!td) return test_skip_or_fail("golden test data missing");
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/i2s_bitnet_b158/model.gguf", td);
    run(path);
    snprintf(path, sizeof path, "%s/golden/tq2_bitnet/model.gguf", td);
    run(path);
    return test_report("test_engine");
}
