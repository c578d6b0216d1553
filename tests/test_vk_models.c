/*
 * Every architecture, ternary format and embedding type the model binder
 * accepts (small synthetic models, as tests/test_engine.c runs on the CPU),
 * through the Vulkan backend against the CPU backend: logits of every
 * position with an F32 cache, NMSE below 1e-6 (the two differ by float
 * rounding only), for a whole-prompt batch, for token-by-token decoding and
 * for batches of 5; the F16 cache within 1e-4 of the CPU's F16 cache.
 * Covers what the golden models do not: bitnet-25, TQ1_0, per-tensor
 * .scale tensors, llama's NORM RoPE without sub-norms and its separate
 * output tensor, BF16 / F32 / Q8_0 embeddings.
 */
#include <stdint.h>

#include "backend.h"
#include "engine.h"
#include "model.h"
#include "synth_model.h"
#include "test_util.h"
#include "test_vk_util.h"

#define N_TOK 12

/* Logits of every position: one batch of n_batch, or token by token (0). */
static bool eval_all(const struct bn_model *m, struct bn_backend *be, enum bn_kv_type kv, uint32_t n_batch,
                     const int32_t *tokens, float *out)
{
    char err[512];
    struct bn_engine_params p = bn_engine_default_params();
    p.n_ctx = 32;
    p.kv_type = kv;
    p.n_batch = n_batch ? n_batch : 1;
    bn_engine *e;
    if (bn_engine_create(m, be, &p, &e, err, sizeof err) != BN_OK) {
        CHECKF(0, "engine: %s", err);
        return false;
    }
    bool ok;
    if (n_batch) {
        ok = bn_engine_eval(e, tokens, N_TOK, true, out, err, sizeof err) == BN_OK;
    } else {
        ok = true;
        for (uint32_t i = 0; ok && i < N_TOK; i++)
            ok = bn_engine_eval(e, &tokens[i], 1, false, out + (size_t)i * m->hp.n_vocab, err, sizeof err) == BN_OK;
    }
    CHECKF(ok, "eval: %s", err);
    bn_engine_destroy(e);
    return ok;
}

int main(void)
{
    struct bn_backend vk, cpu;
    char err[512];
    if (test_vk_open(&vk) != 0) return test_skip_or_fail("no usable Vulkan device");
    CHECK(bn_backend_cpu_create(&cpu, NULL, err, sizeof err) == BN_OK, err);
    struct config {
        const char *arch;
        uint32_t wtype, embd_type;
        bool scale_tensors, output_tensor;
    } configs[] = {
        {"bitnet-b1.58", BN_TYPE_I2_S, BN_TYPE_F16, false, false}, {"bitnet-25", BN_TYPE_I2_S, BN_TYPE_BF16, false, false},
        {"bitnet", BN_TYPE_TQ2_0, BN_TYPE_Q8_0, true, false},      {"bitnet", BN_TYPE_TQ1_0, BN_TYPE_F32, false, false},
        {"llama", BN_TYPE_TQ2_0, BN_TYPE_F16, false, true},        {"llama", BN_TYPE_I2_S, BN_TYPE_Q8_0, false, false},
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
        p.seed = 200 + i;
        bn_gguf_writer *w = NULL;
        uint8_t *bytes = NULL;
        size_t n = 0;
        bn_gguf *g = NULL;
        struct bn_model *m = NULL;
        if (bn_synth_build(&p, &w, err, sizeof err) != BN_OK || bn_gguf_writer_to_memory(w, &bytes, &n, err, sizeof err) != BN_OK ||
            bn_gguf_open_memory(bytes, n, c->arch, &g, err, sizeof err) != BN_OK ||
            bn_model_from_gguf(g, &m, err, sizeof err) != BN_OK) {
            CHECKF(0, "config %zu (%s): %s", i, c->arch, err);
            bn_gguf_writer_destroy(w);
            free(bytes);
            continue;
        }
        bn_gguf_writer_destroy(w);
        enum bn_status st = vk.iface.supports(vk.ctx, m, err, sizeof err);
        if (st == BN_OK) st = vk.iface.upload_weights(vk.ctx, m, err, sizeof err);
        CHECKF(st == BN_OK, "config %zu: vulkan: %s", i, err);
        CHECK(cpu.iface.upload_weights(cpu.ctx, m, err, sizeof err) == BN_OK, err);
        const uint32_t V = m->hp.n_vocab;
        int32_t tokens[N_TOK];
        for (uint32_t t = 0; t < N_TOK; t++) tokens[t] = (int32_t)((t * 53 + 7 + i) % V);
        const size_t all = (size_t)N_TOK * V;
        float *ref = malloc(all * sizeof *ref), *got = malloc(all * sizeof *got);
        const uint32_t batches[] = {N_TOK, 0, 5};
        for (size_t b = 0; st == BN_OK && b < 3; b++) {
            if (!eval_all(m, &cpu, BN_KV_F32, batches[b], tokens, ref) ||
                !eval_all(m, &vk, BN_KV_F32, batches[b], tokens, got))
                continue;
            double e = test_nmse(got, ref, all);
            CHECKF(e < 1e-6, "config %zu (%s %s embd %s) n_batch %u: NMSE %.3g vs the CPU", i, c->arch,
                   bn_type_name(c->wtype), bn_type_name(c->embd_type), batches[b], e);
            printf("%-12s %-5s embd %-4s n_batch %2u: NMSE vs CPU %.3g\n", c->arch, bn_type_name(c->wtype),
                   bn_type_name(c->embd_type), batches[b], e);
        }
        if (st == BN_OK && eval_all(m, &cpu, BN_KV_F16, N_TOK, tokens, ref) &&
            eval_all(m, &vk, BN_KV_F16, N_TOK, tokens, got)) {
            double e = test_nmse(got, ref, all);
            CHECKF(e < 1e-4, "config %zu (%s) f16 cache: NMSE %.3g vs the CPU", i, c->arch, e);
        }
        free(ref);
        free(got);
        bn_model_close(m);
        free(bytes);
    }
    struct bn_backend_vk_stats s = test_vk_stats(&vk);
    CHECKF(s.validation_errors == 0, "%u validation errors", s.validation_errors);
    cpu.iface.destroy(cpu.ctx);
    vk.iface.destroy(vk.ctx);
    return test_report("test_vk_models");
}
