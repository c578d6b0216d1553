/*
 * The three ternary readers agree: one synthetic model written as I2_S,
 * TQ1_0 and TQ2_0 (the same trits; with exact_scales the same scale in
 * every block, a power of two) gives identical integer dot products row by
 * row, and bit-identical logits from the engine.
 */
#include <stdint.h>

#include "backend.h"
#include "engine.h"
#include "kernels.h"
#include "model.h"
#include "synth_model.h"
#include "test_util.h"

static const uint32_t wtypes[3] = {BN_TYPE_I2_S, BN_TYPE_TQ1_0, BN_TYPE_TQ2_0};

struct loaded {
    uint8_t *bytes;
    struct bn_model *m;
};

static int load(uint32_t wtype, bool exact, struct loaded *out)
{
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    p.wtype = wtype;
    p.exact_scales = exact;
    p.seed = 77;
    char err[512];
    bn_gguf_writer *w = NULL;
    size_t n = 0;
    bn_gguf *g = NULL;
    out->bytes = NULL;
    out->m = NULL;
    if (bn_synth_build(&p, &w, err, sizeof err) != BN_OK ||
        bn_gguf_writer_to_memory(w, &out->bytes, &n, err, sizeof err) != BN_OK ||
        bn_gguf_open_memory(out->bytes, n, bn_type_name(wtype), &g, err, sizeof err) != BN_OK ||
        bn_model_from_gguf(g, &out->m, err, sizeof err) != BN_OK) {
        CHECKF(0, "%s: %s", bn_type_name(wtype), err);
        bn_gguf_writer_destroy(w);
        return -1;
    }
    bn_gguf_writer_destroy(w);
    return 0;
}

static void unload(struct loaded *l)
{
    bn_model_close(l->m);
    free(l->bytes);
}

/* Exact integer dot of row r of a ternary tensor with q. */
static int32_t row_dot(const struct bn_tensor *t, size_t r, const int8_t *q)
{
    const size_t k = (size_t)t->ne[0];
    const uint8_t *d = t->data;
    int32_t acc = 0;
    switch (t->type) {
    case BN_TYPE_I2_S: return bn_dot_i2s_i8_scalar(d + r * k / 4, q, k);
    case BN_TYPE_TQ2_0:
        for (size_t b = 0; b < k / 256; b++) acc += bn_dot_tq2_block_i8_scalar(d + (r * (k / 256) + b) * 66, q + 256 * b);
        return acc;
    case BN_TYPE_TQ1_0:
        for (size_t b = 0; b < k / 256; b++) acc += bn_dot_tq1_block_i8_scalar(d + (r * (k / 256) + b) * 54, q + 256 * b);
        return acc;
    }
    return INT32_MIN;
}

static void compare_dots(struct loaded *l)
{
    const struct bn_model *m0 = l[0].m;
    uint64_t s = 99;
    int8_t *q = malloc(m0->hp.n_ff > m0->hp.n_embd ? m0->hp.n_ff : m0->hp.n_embd);
    size_t mismatches = 0, rows = 0;
    for (uint32_t il = 0; il < m0->hp.n_layer; il++) {
        for (int which = 0; which < 7; which++) {
            const struct bn_linear *lin[3];
            for (int f = 0; f < 3; f++) {
                const struct bn_layer *L = &l[f].m->layers[il];
                const struct bn_linear *all[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
                lin[f] = all[which];
            }
            const size_t k = (size_t)lin[0]->w->ne[0], n = (size_t)lin[0]->w->ne[1];
            for (size_t i = 0; i < k; i++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                q[i] = (int8_t)(s >> 56);
            }
            for (size_t r = 0; r < n; r++) {
                int32_t a = row_dot(lin[0]->w, r, q), b = row_dot(lin[1]->w, r, q), c = row_dot(lin[2]->w, r, q);
                rows++;
                if (a != b || a != c) mismatches++;
            }
        }
    }
    CHECKF(mismatches == 0, "%zu of %zu rows differ between i2_s, tq1_0 and tq2_0", mismatches, rows);
    CHECKF(rows > 1000, "compared %zu rows", rows);
    free(q);
}

static void compare_logits(struct loaded *l, bool expect_equal)
{
    const uint32_t V = l[0].m->hp.n_vocab, N = 10;
    int32_t tokens[10];
    for (uint32_t i = 0; i < N; i++) tokens[i] = (int32_t)((i * 29 + 3) % V);
    float *logits[3];
    char err[512];
    for (int f = 0; f < 3; f++) {
        logits[f] = calloc((size_t)N * V, sizeof(float));
        struct bn_backend be;
        bn_engine *e = NULL;
        struct bn_engine_params p = bn_engine_default_params();
        p.n_ctx = 32;
        p.kv_type = BN_KV_F32;
        CHECK(bn_backend_cpu_create(&be, NULL, err, sizeof err) == BN_OK, err);
        CHECK(be.iface.upload_weights(be.ctx, l[f].m, err, sizeof err) == BN_OK, err);
        CHECK(bn_engine_create(l[f].m, &be, &p, &e, err, sizeof err) == BN_OK, err);
        if (e) CHECK(bn_engine_eval(e, tokens, N, true, logits[f], err, sizeof err) == BN_OK, err);
        bn_engine_destroy(e);
        be.iface.destroy(be.ctx);
    }
    const size_t bytes = (size_t)N * V * sizeof(float);
    if (expect_equal) {
        CHECK(memcmp(logits[0], logits[1], bytes) == 0, "i2_s and tq1_0 logits identical");
        CHECK(memcmp(logits[0], logits[2], bytes) == 0, "i2_s and tq2_0 logits identical");
    } else {
        /* With per-block jitter the TQ models are different matrices: the
         * comparison above is not vacuous. */
        CHECK(memcmp(logits[0], logits[2], bytes) != 0, "jittered block scales change the logits");
    }
    double sum = 0;
    for (size_t i = 0; i < (size_t)N * V; i++) sum += fabs(logits[0][i]);
    CHECKF(sum > 0 && isfinite(sum), "logits are finite and non-zero (sum |x| = %g)", sum);
    for (int f = 0; f < 3; f++) free(logits[f]);
}

int main(void)
{
    struct loaded l[3];
    for (int exact = 1; exact >= 0; exact--) {
        int ok = 1;
        for (int f = 0; f < 3; f++) ok &= load(wtypes[f], exact, &l[f]) == 0;
        if (ok) {
            if (exact) compare_dots(l);
            compare_logits(l, exact);
        }
        for (int f = 0; f < 3; f++) unload(&l[f]);
    }
    return test_report("test_reader_agreement");
}
