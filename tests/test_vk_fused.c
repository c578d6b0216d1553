/*
 * The fused decode path of the Vulkan backend (shaders/proj_t2_f32_f32.comp:
 * one dispatch for q, k and v with rope and the KV store, one for gate and
 * up with the activation, one per residual projection, each quantizing its
 * input in the prologue), forced on with BN_VK_TUNE fuse=1 whatever the
 * device's tuning says. Token-by-token decoding of the golden models
 * gives the same logits bit for bit as the unfused ops (fuse=0),
 * with both cache types, TQ and I2_S weights, with and without the integer
 * dot product and under a second tuning (workgroup size, rows per
 * workgroup, attention split); the fused logits stay within the golden
 * tolerance of the reference. A decode step makes at most 8 dispatches per
 * layer plus four (embed, final norm, head, argmax); the counts per token
 * are printed. The BN_VK_TUNE parser accepts and rejects what it should.
 * Validation errors (BN_VK_VALIDATION=1) fail the test.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "engine.h"
#include "model.h"
#include "test_util.h"
#include "synth_model.h"
#include "tensor_types.h"
#include "test_vk_util.h"
#include "vk_tuning.h"

#define MAX_TOK 40

struct capture {
    const char *model;  /* name for messages                    */
    const char *path;   /* the model file                       */
    const int32_t *tokens;
    int n_tok;
    const char *tune;   /* BN_VK_TUNE for the backend           */
    enum bn_kv_type kv;
    float *logits;      /* [n_tok][n_vocab], one decode step each */
    uint32_t n_vocab;
};

/* The tokens fed one at a time (every step a decode step), the
 * logits of each step kept; with count, the dispatches of one step are
 * checked against the fused budget and printed. */
static void decode(struct capture *cap, bool count)
{
    char err[512];
    const int32_t *tokens = cap->tokens;
    struct bn_model *m;
    if (bn_model_open(cap->path, &m, err, sizeof err) != BN_OK) {
        CHECKF(0, "%s", err);
        return;
    }
    setenv("BN_VK_TUNE", cap->tune, 1);
    struct bn_backend be;
    if (test_vk_open(&be) != 0) {
        CHECKF(0, "%s: no Vulkan device", cap->tune);
        bn_model_close(m);
        return;
    }
    unsetenv("BN_VK_TUNE");
    enum bn_status st = be.iface.supports(be.ctx, m, err, sizeof err);
    if (st == BN_OK) st = be.iface.upload_weights(be.ctx, m, err, sizeof err);
    CHECKF(st == BN_OK, "%s: %s", cap->model, err);
    const uint32_t V = cap->n_vocab = m->hp.n_vocab;
    cap->logits = calloc((size_t)cap->n_tok * V, sizeof *cap->logits);
    struct bn_engine_params p = bn_engine_default_params();
    p.n_ctx = 64;
    p.n_batch = 1;
    p.kv_type = cap->kv;
    bn_engine *e = NULL;
    if (st == BN_OK && bn_engine_create(m, &be, &p, &e, err, sizeof err) != BN_OK) CHECKF(0, "%s", err);
    for (int t = 0; e && cap->logits && t < cap->n_tok; t++) {
        st = bn_engine_eval(e, &tokens[t], 1, false, cap->logits + (size_t)t * V, err, sizeof err);
        CHECKF(st == BN_OK, "%s step %d: %s", cap->model, t, err);
        if (count && t == cap->n_tok - 1) {
            /* One more step through the argmax op: the token loop of greedy
             * generation, as the budget counts it. */
            int32_t next;
            const struct bn_backend_vk_stats a = test_vk_stats(&be);
            st = bn_engine_eval_argmax(e, &tokens[0], 1, &next, err, sizeof err);
            CHECKF(st == BN_OK, "argmax step: %s", err);
            const struct bn_backend_vk_stats b = test_vk_stats(&be);
            const uint64_t L = m->hp.n_layer, d = b.dispatches - a.dispatches, bar = b.barriers - a.barriers;
            printf("%s (%s, %llu layers): %llu dispatches and %llu barriers per generated token, "
                   "%llu dispatches per layer + 4\n",
                   cap->model, cap->tune, (unsigned long long)L, (unsigned long long)d, (unsigned long long)bar,
                   (unsigned long long)((d - 4) / L));
            CHECKF(d <= 8 * L + 4, "%llu dispatches for one token of %llu layers (budget 8 per layer + 4)",
                   (unsigned long long)d, (unsigned long long)L);
            CHECKF(b.submits - a.submits == 1, "%llu submissions for one token", (unsigned long long)(b.submits - a.submits));
        }
    }
    const struct bn_backend_vk_stats s = test_vk_stats(&be);
    CHECKF(s.validation_errors == 0, "%s: %u validation errors", cap->tune, s.validation_errors);
    bn_engine_destroy(e);
    be.iface.destroy(be.ctx);
    bn_model_close(m);
}

static void same(const struct capture *a, const struct capture *b)
{
    const size_t n = (size_t)a->n_tok * a->n_vocab;
    CHECKF(a->logits && b->logits && a->n_vocab == b->n_vocab &&
               memcmp(a->logits, b->logits, n * sizeof(float)) == 0,
           "%s kv %s: '%s' and '%s' logits differ", a->model, a->kv == BN_KV_F16 ? "f16" : "f32", a->tune, b->tune);
}

/* The last step's logits against the reference's last-row logits. */
static void near_reference(const char *td, const struct capture *c)
{
    char path[1024];
    size_t size = 0;
    snprintf(path, sizeof path, "%s/golden/%s/seq%d.logits.f32", td, c->model, c->n_tok);
    float *ref = test_read_file(path, &size);
    CHECKF(ref && size == c->n_vocab * sizeof(float), "%s: size %zu", path, size);
    if (ref && c->logits) {
        const float *last = c->logits + (size_t)(c->n_tok - 1) * c->n_vocab;
        const double nm = test_nmse(last, ref, c->n_vocab), tol = c->kv == BN_KV_F16 ? 3e-3 : 1e-3;
        CHECKF(nm <= tol, "%s (%s): NMSE %.3g > %.3g", c->model, c->tune, nm, tol);
        printf("%s (%s) kv %s: last-row NMSE %.3g\n", c->model, c->tune, c->kv == BN_KV_F16 ? "f16" : "f32", nm);
    }
    free(ref);
}

/* Fused and unfused decoding of one model under one tuning: the same
 * logits bit for bit. With td, a golden model: the last step near the
 * reference too. */
static void pair(const char *td, const char *model, const char *path, const int32_t *tokens, int n_tok,
                 const char *tune, enum bn_kv_type kv, bool count)
{
    char fused[128], unfused[128];
    snprintf(fused, sizeof fused, "%s%sfuse=1", tune, tune[0] ? "," : "");
    snprintf(unfused, sizeof unfused, "%s%sfuse=0", tune, tune[0] ? "," : "");
    struct capture f = {.model = model, .path = path, .tokens = tokens, .n_tok = n_tok, .tune = fused, .kv = kv};
    struct capture u = f;
    u.tune = unfused;
    decode(&f, count);
    decode(&u, false);
    same(&f, &u);
    if (td) near_reference(td, &f);
    free(f.logits);
    free(u.logits);
}

/* A golden model and its seqN prompt. */
static void golden(const char *td, const char *model, int n_tok, const char *tune, enum bn_kv_type kv, bool count)
{
    char path[1024], tok_path[1024];
    int32_t tokens[64];
    snprintf(tok_path, sizeof tok_path, "%s/golden/%s/seq%d.tokens.txt", td, model, n_tok);
    CHECKF(test_read_ids(tok_path, tokens, 64) == n_tok, "%s: expected %d tokens", tok_path, n_tok);
    snprintf(path, sizeof path, "%s/golden/%s/model.gguf", td, model);
    pair(td, model, path, tokens, n_tok, tune, kv, count);
}

/* Synthetic models of the other architectures and shapes: silu, no
 * sub-norms (llama: the projections quantize without a norm), TQ1_0, one
 * and four query heads per kv head, NEOX and NORM rope with heads split
 * over workgroups, and an n_ff above what the fused shader holds (the down
 * projection then runs unfused). */
static void synthetic(void)
{
    struct shape {
        const char *arch;
        uint32_t wtype, n_embd, n_head, n_head_kv, n_ff;
        const char *tune; /* small rows: q/k/v workgroups hold parts of heads */
    } shapes[] = {
        {"bitnet", BN_TYPE_TQ1_0, 256, 4, 4, 512, ""},
        {"bitnet", BN_TYPE_TQ1_0, 256, 4, 4, 512, "rows=2,wg=128"},
        {"llama", BN_TYPE_TQ2_0, 512, 8, 2, 768, ""},
        {"llama", BN_TYPE_TQ2_0, 512, 8, 2, 768, "rows=5"},
        {"bitnet-25", BN_TYPE_I2_S, 256, 4, 1, 8448, "rows=9"},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        struct bn_synth_params p;
        bn_synth_default_params(&p);
        p.arch = shapes[i].arch;
        p.wtype = shapes[i].wtype;
        p.n_embd = shapes[i].n_embd;
        p.n_head = shapes[i].n_head;
        p.n_head_kv = shapes[i].n_head_kv;
        p.n_ff = shapes[i].n_ff;
        p.seed = 7 + i;
        char path[1024], name[64], err[256];
        snprintf(name, sizeof name, "synthetic %s", shapes[i].arch);
        snprintf(path, sizeof path, "%s/vk_fused_%zu.gguf", BN_BINARY_DIR, i);
        if (bn_synth_write(&p, path, err, sizeof err) != BN_OK) {
            CHECKF(0, "%s: %s", name, err);
            continue;
        }
        int32_t tokens[12];
        for (int t = 0; t < 12; t++) tokens[t] = (int32_t)((t * 37 + 5) % p.n_vocab);
        pair(NULL, name, path, tokens, 12, shapes[i].tune, BN_KV_F16, i == 0);
        remove(path);
    }
}

/* BN_VK_TUNE subgroup=0/1 selects the tree or the subgroup shaders (the
 * latter only where the device has subgroup arithmetic). */
static void check_subgroup_switch(void)
{
    for (int on = 0; on < 2; on++) {
        setenv("BN_VK_TUNE", on ? "subgroup=1" : "subgroup=0", 1);
        struct bn_backend be;
        const int rc = test_vk_open(&be);
        unsetenv("BN_VK_TUNE");
        CHECKF(rc == 0, "subgroup=%d: no Vulkan device", on);
        if (rc != 0) continue;
        const struct bn_backend_vk_stats s = test_vk_stats(&be);
        if (on) printf("subgroup reductions: %s\n", s.subgroup ? "on" : "off (the device has no subgroup arithmetic)");
        else CHECK(!s.subgroup, "subgroup=0 turns the subgroup shaders off");
        be.iface.destroy(be.ctx);
    }
}

static void check_parser(void)
{
    char err[256];
    struct bn_vk_tuning t = {.entry = "x", .wg = 64, .int_dot = true, .fuse = true};
    CHECK(bn_vk_tuning_parse("wg=128,rows=4,dot=0,fuse=0,subgroup=1,attn_chunk=32", &t, err, sizeof err) == BN_OK,
          err);
    CHECK(t.wg == 128 && t.rows == 4 && !t.int_dot && !t.fuse && t.subgroup && t.attn_chunk == 32, "parsed values");
    CHECK(bn_vk_tuning_parse("subgroup=0", &t, err, sizeof err) == BN_OK && !t.subgroup, "subgroup=0");
    const struct bn_vk_tuning keep = t;
    const char *bad[] = {"wg=96", "wg=512", "rows=65", "attn_chunk=300", "speed=1", "wg", "wg=", "wg=-1", "wg=12x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECKF(bn_vk_tuning_parse(bad[i], &t, err, sizeof err) == BN_ERR_USAGE, "'%s' accepted", bad[i]);
        CHECKF(memcmp(&t, &keep, sizeof t) == 0, "'%s' changed the tuning", bad[i]);
    }
    CHECK(bn_vk_tuning_parse("", &t, err, sizeof err) == BN_OK, "empty string");
}

int main(void)
{
    check_parser();
    const char *td = test_testdata();
    if (!td) return test_skip_or_fail("golden test data missing");
    struct bn_backend probe;
    if (test_vk_open(&probe) != 0) return test_skip_or_fail("no usable Vulkan device");
    printf("device: %s\n", test_vk_stats(&probe).device);
    probe.iface.destroy(probe.ctx);
    unsetenv("BN_VK_DISABLE_INTDOT");

    golden(td, "i2s_bitnet_b158", 9, "", BN_KV_F16, true);
    golden(td, "i2s_bitnet_b158", 9, "", BN_KV_F32, false);
    golden(td, "i2s_bitnet_b158", 9, "dot=0", BN_KV_F16, false);
    golden(td, "tq2_bitnet", 9, "", BN_KV_F16, true);
    /* Other tunings: workgroup size, rows per workgroup, and the attention
     * split into several chunks over the 40 positions. */
    golden(td, "tq2_bitnet", 40, "wg=128,rows=3,attn_chunk=16", BN_KV_F16, false);
    golden(td, "i2s_bitnet_b158", 40, "wg=32,rows=7,attn_chunk=8", BN_KV_F32, false);
    /* The two kinds of workgroup reduction (tree, subgroup arithmetic) each
     * keep fused == unfused; and they really are different shaders. */
    golden(td, "i2s_bitnet_b158", 9, "subgroup=0", BN_KV_F16, false);
    golden(td, "tq2_bitnet", 9, "subgroup=1,wg=128", BN_KV_F32, false);
    check_subgroup_switch();
    synthetic();
    return test_report("test_vk_fused");
}
