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
#include "synth_model.h"
#include "test_util.h"

static void run_model(struct bn_model *m);

static void run(const char *path)
{
    char err[512];
    struct bn_model *m;
    if (bn_model_open(path, &m, err, sizeof err) != BN_OK) {
        CHECKF(0, "%s", err);
        return;
    }
    run_model(m);
}

/* Every architecture, weight type, embedding type and optional tensor the
 * binder accepts, on small synthetic models: each must load, bind what the
 * architecture implies, and pass the batch-invariance checks of run_model. */
static void run_synthetic(void)
{
    struct config {
        const char *arch;
        uint32_t wtype, embd_type;
        bool scale_tensors, output_tensor;
        enum bn_ffn_act act;
        enum bn_rope_kind rope;
        bool sub_norms;
    } configs[] = {
        {"bitnet-b1.58", BN_TYPE_I2_S, BN_TYPE_F16, false, false, BN_ACT_RELU2, BN_ROPE_NEOX, true},
        {"bitnet-25", BN_TYPE_I2_S, BN_TYPE_BF16, false, false, BN_ACT_RELU2, BN_ROPE_NEOX, true},
        {"bitnet", BN_TYPE_TQ2_0, BN_TYPE_Q8_0, true, false, BN_ACT_SILU, BN_ROPE_NEOX, true},
        {"bitnet", BN_TYPE_TQ1_0, BN_TYPE_F32, false, false, BN_ACT_SILU, BN_ROPE_NEOX, true},
        {"llama", BN_TYPE_TQ2_0, BN_TYPE_F16, false, true, BN_ACT_SILU, BN_ROPE_NORM, false},
        {"llama", BN_TYPE_I2_S, BN_TYPE_Q8_0, false, false, BN_ACT_SILU, BN_ROPE_NORM, false},
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        const struct config *c = &configs[i];
        struct bn_synth_params p;
        bn_synth_default_params(&p);
        p.arch = c->arch;
        p.wtype = c->wtype;
        p.embd_type = c->embd_type;
        p.scale_tensors = c->scale_tensors;
        p.output_tensor = c->output_tensor;
        p.seed = 100 + i;
        char err[512];
        bn_gguf_writer *w = NULL;
        uint8_t *bytes = NULL;
        size_t n = 0;
        bn_gguf *g = NULL;
        struct bn_model *m = NULL;
        if (bn_synth_build(&p, &w, err, sizeof err) != BN_OK ||
            bn_gguf_writer_to_memory(w, &bytes, &n, err, sizeof err) != BN_OK ||
            bn_gguf_open_memory(bytes, n, c->arch, &g, err, sizeof err) != BN_OK ||
            bn_model_from_gguf(g, &m, err, sizeof err) != BN_OK) {
            CHECKF(0, "config %zu (%s): %s", i, c->arch, err);
            bn_gguf_writer_destroy(w);
            free(bytes);
            continue;
        }
        bn_gguf_writer_destroy(w);
        CHECKF(m->hp.ffn_act == c->act && m->hp.rope_kind == c->rope && m->hp.has_sub_norms == c->sub_norms,
               "config %zu (%s): activation, rope or sub-norms not as the architecture implies", i, c->arch);
        CHECKF(m->hp.tied_head == !c->output_tensor && (m->output == m->tok_embd) == !c->output_tensor,
               "config %zu: head binding", i);
        CHECKF(m->tok_embd->type == c->embd_type && m->layers[0].wq.w->type == c->wtype, "config %zu: types", i);
        float scale = m->layers[0].w_down.scale;
        CHECKF(c->scale_tensors ? (scale != 1.0f && scale > 0.0f) : scale == 1.0f, "config %zu: .scale %g", i,
               (double)scale);
        run_model(m);
        free(bytes);
    }
}

static void run_model(struct bn_model *m)
{
    char err[512];
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
        size_t finite = 0;
        for (size_t i = 0; i < (size_t)N * V; i++) finite += isfinite(batched[i]) ? 1 : 0;
        CHECKF(finite == (size_t)N * V, "%zu of %zu logits are not finite", (size_t)N * V - finite, (size_t)N * V);
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
    run_synthetic();
    return test_report("test_engine");
}
