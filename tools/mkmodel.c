/*
 * bn-mkmodel - writes a synthetic ternary model (see tools/synth_model.h).
 *
 *     bn-mkmodel -o OUT.gguf [--preset tiny|demo|2b4t] [--arch A]
 *                [--wtype i2_s|tq1_0|tq2_0] [--embd-type f16|f32|bf16|q8_0]
 *                [--n-embd N] [--n-layer N] [--n-head N] [--n-head-kv N]
 *                [--n-ff N] [--n-vocab N] [--n-ctx N] [--seed S]
 *                [--exact-scales] [--scale-tensors] [--output-tensor]
 *                [--rope-base F] [--rms-eps F] [--embd-gain F]
 *
 * The preset is applied first wherever it appears, so every other flag
 * overrides it. Exit status: 0 ok, 1 usage, 3 the file could not be written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/tensor_types.h"
#include "synth_model.h"

static const char usage_text[] =
    "usage: bn-mkmodel -o OUT.gguf [--preset tiny|demo|2b4t] [--arch A]\n"
    "                  [--wtype i2_s|tq1_0|tq2_0] [--embd-type f16|f32|bf16|q8_0]\n"
    "                  [--n-embd N] [--n-layer N] [--n-head N] [--n-head-kv N]\n"
    "                  [--n-ff N] [--n-vocab N] [--n-ctx N] [--seed S]\n"
    "                  [--exact-scales] [--scale-tensors] [--output-tensor]\n"
    "                  [--rope-base F] [--rms-eps F] [--embd-gain F]\n";

static int usage_error(const char *fmt, const char *arg)
{
    fputs("bn-mkmodel: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (--help for usage)\n", stderr);
    return 1;
}

static void preset_demo(struct bn_synth_params *p)
{
    bn_synth_default_params(p);
    p->n_embd = 512;
    p->n_layer = 4;
    p->n_head = 8;
    p->n_head_kv = 2;
    p->n_ff = 1536;
    p->n_vocab = 512;
    p->n_ctx = 2048;
    p->seed = 7;
    /* Logits of a tied head scale with the embedding: a small gain keeps the
     * demo's next-token distribution wide enough for sampling to show. */
    p->embd_gain = 0.1f;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end) return false;
    *out = (uint64_t)v;
    return true;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;
    if (!parse_u64(s, &v) || v > UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_f32(const char *s, float *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_type(const char *s, const char *const *names, const uint32_t *ids, size_t n, uint32_t *out)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = ids[i];
            return true;
        }
    return false;
}

int main(int argc, char **argv)
{
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    const char *out = NULL;

    /* Pass 1: the preset, so that flags override it wherever they stand. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--preset") != 0) continue;
        if (i + 1 >= argc) return usage_error("%s needs a value", argv[i]);
        const char *v = argv[++i];
        if (strcmp(v, "tiny") == 0)
            bn_synth_default_params(&p);
        else if (strcmp(v, "demo") == 0)
            preset_demo(&p);
        else if (strcmp(v, "2b4t") == 0)
            bn_synth_2b4t_params(&p);
        else
            return usage_error("unknown preset '%s' (tiny, demo, 2b4t)", v);
    }

    static const char *const wnames[] = {"i2_s", "tq1_0", "tq2_0"};
    static const uint32_t wids[] = {BN_TYPE_I2_S, BN_TYPE_TQ1_0, BN_TYPE_TQ2_0};
    static const char *const enames[] = {"f16", "f32", "bf16", "q8_0"};
    static const uint32_t eids[] = {BN_TYPE_F16, BN_TYPE_F32, BN_TYPE_BF16, BN_TYPE_Q8_0};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* Flags without a value. */
        if (strcmp(a, "--exact-scales") == 0) {
            p.exact_scales = true;
            continue;
        }
        if (strcmp(a, "--scale-tensors") == 0) {
            p.scale_tensors = true;
            continue;
        }
        if (strcmp(a, "--output-tensor") == 0) {
            p.output_tensor = true;
            continue;
        }
        if (a[0] != '-') return usage_error("unexpected argument '%s'", a);
        if (i + 1 >= argc) return usage_error("%s needs a value", a);
        const char *v = argv[++i];
        uint32_t *u32 = NULL;
        if (strcmp(a, "-o") == 0) {
            out = v;
        } else if (strcmp(a, "--preset") == 0) {
            /* applied in pass 1 */
        } else if (strcmp(a, "--arch") == 0) {
            if (strcmp(v, "bitnet-b1.58") && strcmp(v, "bitnet-25") && strcmp(v, "bitnet") && strcmp(v, "llama"))
                return usage_error("unknown architecture '%s' (bitnet-b1.58, bitnet-25, bitnet, llama)", v);
            p.arch = v;
        } else if (strcmp(a, "--wtype") == 0) {
            if (!parse_type(v, wnames, wids, 3, &p.wtype))
                return usage_error("unknown weight type '%s' (i2_s, tq1_0, tq2_0)", v);
        } else if (strcmp(a, "--embd-type") == 0) {
            if (!parse_type(v, enames, eids, 4, &p.embd_type))
                return usage_error("unknown embedding type '%s' (f16, f32, bf16, q8_0)", v);
        } else if (strcmp(a, "--seed") == 0) {
            if (!parse_u64(v, &p.seed)) return usage_error("bad seed '%s'", v);
        } else if (strcmp(a, "--embd-gain") == 0) {
            if (!parse_f32(v, &p.embd_gain)) return usage_error("bad --embd-gain '%s'", v);
        } else if (strcmp(a, "--rope-base") == 0) {
            if (!parse_f32(v, &p.rope_base)) return usage_error("bad --rope-base '%s'", v);
        } else if (strcmp(a, "--rms-eps") == 0) {
            if (!parse_f32(v, &p.rms_eps)) return usage_error("bad --rms-eps '%s'", v);
        } else if (strcmp(a, "--n-embd") == 0) {
            u32 = &p.n_embd;
        } else if (strcmp(a, "--n-layer") == 0) {
            u32 = &p.n_layer;
        } else if (strcmp(a, "--n-head") == 0) {
            u32 = &p.n_head;
        } else if (strcmp(a, "--n-head-kv") == 0) {
            u32 = &p.n_head_kv;
        } else if (strcmp(a, "--n-ff") == 0) {
            u32 = &p.n_ff;
        } else if (strcmp(a, "--n-vocab") == 0) {
            u32 = &p.n_vocab;
        } else if (strcmp(a, "--n-ctx") == 0) {
            u32 = &p.n_ctx;
        } else {
            return usage_error("unknown option '%s'", a);
        }
        if (u32 && !parse_u32(v, u32)) {
            fprintf(stderr, "bn-mkmodel: bad value '%s' for %s (--help for usage)\n", v, a);
            return 1;
        }
    }
    if (!out) return usage_error("%s", "no output file (-o OUT.gguf)");

    char err[512];
    enum bn_status st = bn_synth_write(&p, out, err, sizeof err);
    if (st != BN_OK) {
        fprintf(stderr, "bn-mkmodel: %s\n", err);
        return st == BN_ERR_USAGE ? 1 : 3;
    }
    return 0;
}
