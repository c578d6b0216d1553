/*
 * Every kernel of every instruction set this machine runs (scalar, avx2,
 * avx512 on x86; neon, neon-dotprod on aarch64, also under qemu) against
 * the scalar reference of kernels.h, on random and ragged shapes:
 *  - ternary GEMM on the packed layout: the exact reference result bit for
 *    bit (integers exact; the float scaling is the same sequence), for all
 *    three file formats, including malformed code 3, any number of tokens,
 *    any split of tiles, and independent of the batch;
 *  - integer sums, half conversions, relu^2 and the fused norm + int8
 *    quantization: bit for bit;
 *  - float ops (norms, heads, attention, silu): normalized MSE below 1e-7.
 */
#include <stdint.h>

#include "dispatch.h"
#include "formats.h"
#include "kernels.h"
#include "kernels_isa.h"
#include "ternary_pack.h"
#include "test_util.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}
static float rndf(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() >> 8) / 16777216.0f; }

static void *xaligned(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) abort();
    memset(p, 0, bytes ? bytes : 64);
    return p;
}

/* ---- ternary ------------------------------------------------------------ */

static const uint32_t fmts[3] = {BN_TFMT_I2_S, BN_TFMT_TQ1_0, BN_TFMT_TQ2_0};
static const char *fmt_name(uint32_t f) { return f == BN_TFMT_I2_S ? "i2_s" : f == BN_TFMT_TQ1_0 ? "tq1_0" : "tq2_0"; }

/* A random tensor in file format. exact_one: scales 1 (the output is then
 * the integer acc itself). */
static uint8_t *make_tensor(uint32_t fmt, uint32_t k, uint32_t n, bool exact_one)
{
    const size_t row = bn_tpack_src_row_bytes(fmt, k);
    const size_t bytes = row * n + (fmt == BN_TFMT_I2_S ? 32 : 0);
    uint8_t *t = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) t[i] = (uint8_t)rnd(); /* every code value, 3 included */
    if (fmt == BN_TFMT_I2_S) {
        float sc = exact_one ? 1.0f : rndf(0.01f, 2.0f);
        memset(t + row * n, 0, 32);
        memcpy(t + row * n, &sc, sizeof sc);
    } else {
        const size_t bb = fmt == BN_TFMT_TQ2_0 ? 66 : 54;
        for (size_t b = 0; b < (size_t)n * (k / 256); b++) {
            uint16_t d = exact_one ? 0x3c00 : bn_fp32_to_fp16(rndf(-0.1f, 0.1f));
            t[b * bb + bb - 2] = (uint8_t)d;
            t[b * bb + bb - 1] = (uint8_t)(d >> 8);
        }
    }
    return t;
}

static float ref_row(uint32_t fmt, const uint8_t *t, uint32_t k, uint32_t n, uint32_t r, const int8_t *q)
{
    const uint8_t *row = t + (size_t)r * bn_tpack_src_row_bytes(fmt, k);
    switch (fmt) {
    case BN_TFMT_I2_S: return bn_row_i2s_scalar(row, bn_i2s_scale(t, (size_t)k * n), q, k);
    case BN_TFMT_TQ2_0: return bn_row_tq2_scalar(row, q, k);
    default: return bn_row_tq1_scalar(row, q, k);
    }
}

static int32_t ref_int(uint32_t fmt, const uint8_t *t, uint32_t k, uint32_t r, const int8_t *q)
{
    const uint8_t *row = t + (size_t)r * bn_tpack_src_row_bytes(fmt, k);
    int32_t acc = 0;
    switch (fmt) {
    case BN_TFMT_I2_S: return bn_dot_i2s_i8_scalar(row, q, k);
    case BN_TFMT_TQ2_0:
        for (uint32_t b = 0; b < k / 256; b++) acc += bn_dot_tq2_block_i8_scalar(row + 66 * b, q + 256 * b);
        return acc;
    default:
        for (uint32_t b = 0; b < k / 256; b++) acc += bn_dot_tq1_block_i8_scalar(row + 54 * b, q + 256 * b);
        return acc;
    }
}

struct packed {
    struct bn_tpack p;
    uint8_t *src;
};

static void pack(struct packed *pk, uint32_t fmt, uint32_t k, uint32_t n, bool exact_one)
{
    pk->src = make_tensor(fmt, k, n, exact_one);
    uint32_t *codes = xaligned(bn_tpack_codes_bytes(k, n));
    float *d = fmt == BN_TFMT_I2_S ? NULL : xaligned(bn_tpack_scales_bytes(fmt, k, n));
    bn_tpack_init(&pk->p, fmt, k, n, pk->src, codes, d);
    uint8_t *scratch = malloc(bn_tpack_scratch_bytes(k));
    bn_tpack_repack(&pk->p, fmt, pk->src, 0, pk->p.n_tiles, scratch);
    free(scratch);
}

static void unpack_free(struct packed *pk)
{
    free(pk->p.codes);
    free(pk->p.d);
    free(pk->src);
}

struct acts {
    int8_t *q;
    float *s;
    int32_t *xsum;
    struct bn_tact a;
};

static void make_acts(struct acts *ac, uint32_t k, uint32_t n_tok, bool exact_one)
{
    const size_t stride = k + 32; /* a stride wider than k, as the engine's */
    ac->q = malloc(stride * n_tok);
    ac->s = malloc(n_tok * sizeof(float));
    ac->xsum = malloc((size_t)n_tok * (k / 128) * sizeof(int32_t));
    for (size_t i = 0; i < stride * n_tok; i++) ac->q[i] = (int8_t)rnd();
    for (uint32_t t = 0; t < n_tok; t++) {
        if (t % 3 == 2) memset(ac->q + t * stride, t % 2 ? 127 : -128, k); /* extremes */
        ac->s[t] = exact_one ? 1.0f : rndf(0.5f, 400.0f);
        bn_act_sums_scalar(ac->q + t * stride, k, ac->xsum + (size_t)t * (k / 128));
    }
    ac->a = (struct bn_tact){.q = ac->q, .q_stride = stride, .s = ac->s, .xsum = ac->xsum, .n_tok = n_tok};
}

static void free_acts(struct acts *ac)
{
    free(ac->q);
    free(ac->s);
    free(ac->xsum);
}

static void test_layout(void)
{
    /* the codes read back from the layout are the file's codes */
    for (int f = 0; f < 3; f++) {
        struct packed pk;
        const uint32_t k = 512, n = 19;
        pack(&pk, fmts[f], k, n, false);
        size_t bad = 0;
        for (uint32_t r = 0; r < n; r++) {
            const uint8_t *row = pk.src + (size_t)r * bn_tpack_src_row_bytes(fmts[f], k);
            for (uint32_t i = 0; i < k; i++) {
                int want;
                if (fmts[f] == BN_TFMT_I2_S) {
                    want = (row[(i / 128) * 32 + i % 32] >> (6 - 2 * ((i % 128) / 32))) & 3;
                } else {
                    int8_t trits[256];
                    uint16_t d;
                    if (fmts[f] == BN_TFMT_TQ2_0) bn_tq2_unpack_block(row + 66 * (i / 256), trits, &d);
                    else bn_tq1_unpack_block(row + 54 * (i / 256), trits, &d);
                    want = trits[i % 256] + 1;
                    if (fmts[f] == BN_TFMT_TQ2_0) want = (row[66 * (i / 256) + 32 * ((i % 256) / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3;
                }
                if (bn_tpack_code(&pk.p, r, i) != want) bad++;
            }
        }
        CHECKF(bad == 0, "%s: %zu codes differ after repacking", fmt_name(fmts[f]), bad);
        /* padding rows hold trit 0 */
        CHECK(bn_tpack_code(&pk.p, n, 5) == 1 && bn_tpack_code(&pk.p, 31, k - 1) == 1, "padding rows are zero weights");
        unpack_free(&pk);
    }
}

static void test_gemm(const struct bn_cpu_kernels *kr)
{
    static const uint32_t ks[] = {128, 256, 384, 768, 1280, 2560, 6912}; /* 6912: more blocks than a tile has rows */
    static const uint32_t ns[] = {1, 7, 16, 17, 40, 65};
    static const uint32_t toks[] = {1, 2, 3, 5, 8, 9, 13, 17};
    size_t cases = 0, bad_bits = 0, bad_int = 0, bad_split = 0, bad_batch = 0, bad_accum = 0;
    for (int f = 0; f < 3; f++)
        for (size_t ik = 0; ik < sizeof ks / sizeof ks[0]; ik++) {
            const uint32_t k = ks[ik];
            if (bn_tpack_check(fmts[f], k, 1) != 0) continue;
            for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++) {
                const uint32_t n = ns[in], nt = toks[(ik + in + (size_t)f) % (sizeof toks / sizeof toks[0])];
                for (int exact = 0; exact < 2; exact++) {
                    struct packed pk;
                    struct acts ac;
                    pack(&pk, fmts[f], k, n, exact);
                    make_acts(&ac, k, nt, exact);
                    const float lin = exact ? 1.0f : rndf(0.5f, 2.0f);
                    const size_t os = n + 3;
                    float *out = calloc(os * nt, sizeof(float)), *out2 = calloc(os * nt, sizeof(float));
                    kr->ternary_gemm(&pk.p, 0, pk.p.n_tiles, &ac.a, lin, out, os, false);
                    for (uint32_t t = 0; t < nt; t++)
                        for (uint32_t r = 0; r < n; r++) {
                            const int8_t *q = ac.q + t * ac.a.q_stride;
                            const float want = ref_row(fmts[f], pk.src, k, n, r, q) / ac.s[t] * lin;
                            const float got = out[t * os + r];
                            if (memcmp(&want, &got, sizeof got) != 0) bad_bits++;
                            if (exact && got != (float)ref_int(fmts[f], pk.src, k, r, q)) bad_int++;
                        }
                    for (uint32_t t = 0; t < nt; t++) /* rows past n untouched */
                        for (uint32_t r = n; r < os; r++)
                            if (out[t * os + r] != 0.0f) bad_bits++;
                    /* tiles in three calls, as threads split them */
                    const uint32_t a1 = pk.p.n_tiles / 3, a2 = 2 * pk.p.n_tiles / 3;
                    kr->ternary_gemm(&pk.p, 0, a1, &ac.a, lin, out2, os, false);
                    kr->ternary_gemm(&pk.p, a1, a2, &ac.a, lin, out2, os, false);
                    kr->ternary_gemm(&pk.p, a2, pk.p.n_tiles, &ac.a, lin, out2, os, false);
                    if (memcmp(out, out2, os * nt * sizeof(float)) != 0) bad_split++;
                    /* one token at a time */
                    for (uint32_t t = 0; t < nt; t++) {
                        struct bn_tact one = ac.a;
                        one.q += t * ac.a.q_stride;
                        one.s += t;
                        one.xsum += (size_t)t * (k / 128);
                        one.n_tok = 1;
                        memset(out2, 0, os * sizeof(float));
                        kr->ternary_gemm(&pk.p, 0, pk.p.n_tiles, &one, lin, out2, os, false);
                        if (memcmp(out + t * os, out2, n * sizeof(float)) != 0) bad_batch++;
                    }
                    /* accumulate adds y to what is there, in the reference order out + y */
                    for (size_t i = 0; i < os * nt; i++) out2[i] = rndf(-3.0f, 3.0f);
                    float *pre = malloc(os * nt * sizeof(float));
                    memcpy(pre, out2, os * nt * sizeof(float));
                    kr->ternary_gemm(&pk.p, 0, pk.p.n_tiles, &ac.a, lin, out2, os, true);
                    for (uint32_t t = 0; t < nt; t++)
                        for (uint32_t r = 0; r < os; r++) {
                            const float want = r < n ? pre[t * os + r] + out[t * os + r] : pre[t * os + r];
                            if (memcmp(&want, &out2[t * os + r], sizeof want) != 0) bad_accum++;
                        }
                    free(pre);
                    free(out);
                    free(out2);
                    free_acts(&ac);
                    unpack_free(&pk);
                    cases++;
                }
            }
        }
    CHECKF(bad_bits == 0, "%s gemm: %zu outputs differ from the scalar reference", kr->name, bad_bits);
    CHECKF(bad_int == 0, "%s gemm: %zu integer results differ", kr->name, bad_int);
    CHECKF(bad_split == 0, "%s gemm: %zu cases depend on the tile split", kr->name, bad_split);
    CHECKF(bad_batch == 0, "%s gemm: %zu token rows depend on the batch", kr->name, bad_batch);
    CHECKF(bad_accum == 0, "%s gemm: %zu accumulated outputs differ", kr->name, bad_accum);
    CHECKF(cases > 50, "%s gemm: %zu cases", kr->name, cases);
}

static void test_act_sums(const struct bn_cpu_kernels *kr)
{
    int8_t q[1024];
    int32_t a[8], b[8];
    for (int rep = 0; rep < 20; rep++) {
        for (int i = 0; i < 1024; i++) q[i] = rep == 0 ? -128 : rep == 1 ? 127 : (int8_t)rnd();
        bn_act_sums_scalar(q, 1024, a);
        kr->act_sums(q, 1024, b);
        CHECKF(memcmp(a, b, sizeof a) == 0, "%s act_sums rep %d", kr->name, rep);
    }
}

/* ---- float ops ---------------------------------------------------------- */

static const size_t lens[] = {1, 3, 8, 15, 16, 17, 31, 64, 100, 257, 2560, 6912};

static void fill(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = rndf(lo, hi);
}

static void test_quantize(const struct bn_cpu_kernels *kr)
{
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const size_t n = lens[li];
        float *x = malloc(n * sizeof(float)), *w = malloc(n * sizeof(float));
        int8_t *q0 = malloc(n), *q1 = malloc(n);
        fill(x, n, -3.0f, 3.0f);
        fill(w, n, 0.2f, 2.0f);
        if (n > 4) {
            x[1] = 0.0f;
            x[2] = -x[0]; /* ties of the max */
        }
        /* no norm: bit for bit */
        float s0 = bn_quantize_row_i8_scalar(x, n, q0), s1 = kr->norm_quantize_row(x, NULL, n, 1e-5f, q1);
        CHECKF(s0 == s1 && memcmp(q0, q1, n) == 0, "%s quantize n=%zu exact", kr->name, n);
        /* an all-zero row takes the 1e-5 floor */
        memset(x, 0, n * sizeof(float));
        s1 = kr->norm_quantize_row(x, NULL, n, 1e-5f, q1);
        CHECKF(s1 == 127.0f / 1e-5f && q1[0] == 0, "%s zero row", kr->name);
        /* with the norm: bit for bit too (the sum of squares runs in the reference's order) */
        fill(x, n, -3.0f, 3.0f);
        s0 = bn_norm_quantize_row_scalar(x, w, n, 1e-5f, q0);
        s1 = kr->norm_quantize_row(x, w, n, 1e-5f, q1);
        CHECKF(s0 == s1 && memcmp(q0, q1, n) == 0, "%s norm+quantize n=%zu exact", kr->name, n);
        /* the fused op equals rmsnorm then quantize of the reference (scalar table) */
        if (kr->isa == BN_CPU_SCALAR) {
            float *h = malloc(n * sizeof(float));
            bn_rmsnorm_row_scalar(x, w, n, 1e-5f, h);
            s1 = bn_quantize_row_i8_scalar(h, n, q1);
            CHECKF(s0 == s1 && memcmp(q0, q1, n) == 0, "scalar fused norm+quantize is the reference n=%zu", n);
            free(h);
        }
        /* NaN quantizes to 0 and does not win the max */
        x[0] = NAN;
        s0 = bn_quantize_row_i8_scalar(x, n, q0);
        s1 = kr->norm_quantize_row(x, NULL, n, 1e-5f, q1);
        CHECKF(s0 == s1 && memcmp(q0, q1, n) == 0, "%s NaN n=%zu", kr->name, n);
        free(x);
        free(w);
        free(q0);
        free(q1);
    }
}

static void test_norm(const struct bn_cpu_kernels *kr)
{
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const size_t n = lens[li];
        float *x = malloc(n * sizeof(float)), *w = malloc(n * sizeof(float));
        float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
        fill(x, n, -5.0f, 5.0f);
        fill(w, n, -2.0f, 2.0f);
        bn_rmsnorm_row_scalar(x, w, n, 1e-5f, a);
        kr->rmsnorm_row(x, w, n, 1e-5f, b);
        CHECKF(test_nmse(b, a, n) < 1e-7, "%s rmsnorm n=%zu nmse %g", kr->name, n, test_nmse(b, a, n));
        bn_rmsnorm_row_scalar(x, NULL, n, 1e-5f, a);
        kr->rmsnorm_row(x, NULL, n, 1e-5f, b);
        CHECKF(test_nmse(b, a, n) < 1e-7, "%s rmsnorm (no weight) n=%zu", kr->name, n);
        free(x);
        free(w);
        free(a);
        free(b);
    }
}

static void test_heads(const struct bn_cpu_kernels *kr)
{
    static const size_t ks[] = {1, 7, 16, 33, 100, 256, 1030, 2560, 4099};
    for (size_t ik = 0; ik < sizeof ks / sizeof ks[0]; ik++) {
        const size_t k = ks[ik], rows = 37, nt = 3;
        uint16_t *wh = malloc(rows * k * sizeof(uint16_t));
        float *wf = malloc(rows * k * sizeof(float)), *x = malloc(nt * k * sizeof(float));
        int8_t *wq = malloc(rows * k);
        float *d = malloc(rows * sizeof(float));
        fill(wf, rows * k, -1.0f, 1.0f);
        for (size_t i = 0; i < rows * k; i++) wh[i] = bn_fp32_to_fp16(wf[i]);
        for (size_t r = 0; r < rows; r++) d[r] = bn_head_q8_quantize_row(wf + r * k, k, wq + r * k);
        fill(x, nt * k, -2.0f, 2.0f);
        float *a = calloc(nt * rows, sizeof(float)), *b = calloc(nt * rows, sizeof(float)), *c = calloc(nt * rows, sizeof(float));
        int16_t *xq = malloc(nt * k * sizeof(int16_t));
        float xs[3];
        for (size_t t = 0; t < nt; t++) xs[t] = bn_quantize_row_i16(x + t * k, k, xq + t * k);
        for (int q8 = 0; q8 < 2; q8++) {
            const char *what = q8 ? "head_q8" : "head_f16";
            if (q8) bn_head_q8_scalar(wq, d, k, 0, rows, xq, xs, (uint32_t)nt, a, rows);
            else bn_head_f16_scalar(wh, k, 0, rows, x, (uint32_t)nt, a, rows);
            if (q8) kr->head_q8(wq, d, k, 0, rows, xq, xs, (uint32_t)nt, b, rows);
            else kr->head_f16(wh, k, 0, rows, x, (uint32_t)nt, b, rows);
            if (q8) /* exact integer sums, the same float scaling */
                CHECKF(memcmp(a, b, nt * rows * sizeof(float)) == 0, "%s %s k=%zu bit for bit", kr->name, what, k);
            else
                CHECKF(test_nmse(b, a, nt * rows) < 1e-7, "%s %s k=%zu nmse %g", kr->name, what, k, test_nmse(b, a, nt * rows));
            /* a logit does not depend on the row range or the batch */
            for (uint32_t t = 0; t < nt; t++) {
                if (q8) {
                    kr->head_q8(wq, d, k, 0, 5, xq + t * k, xs + t, 1, c + t * rows, rows);
                    kr->head_q8(wq, d, k, 5, rows, xq + t * k, xs + t, 1, c + t * rows, rows);
                } else {
                    kr->head_f16(wh, k, 0, 5, x + t * k, 1, c + t * rows, rows);
                    kr->head_f16(wh, k, 5, rows, x + t * k, 1, c + t * rows, rows);
                }
            }
            CHECKF(memcmp(b, c, nt * rows * sizeof(float)) == 0, "%s %s k=%zu independent of rows and batch", kr->name,
                   what, k);
        }
        /* the int8 head on int16 activations is close to the F16 head */
        bn_head_f16_scalar(wh, k, 0, rows, x, (uint32_t)nt, a, rows);
        bn_head_q8_scalar(wq, d, k, 0, rows, xq, xs, (uint32_t)nt, b, rows);
        CHECKF(test_nmse(b, a, nt * rows) < 1e-3, "q8 head k=%zu near the f16 head: nmse %g", k, test_nmse(b, a, nt * rows));
        free(xq);
        /* the head of the reference kernels.h agrees with the table's scalar head */
        if (kr->isa == BN_CPU_SCALAR) {
            float one = bn_dot_row_f32_scalar(1 /* F16 */, wh + 3 * k, x, k, NULL), four[4];
            bn_head_f16_scalar(wh, k, 3, 4, x, 1, four, 0);
            CHECK(one == four[3], "scalar head row matches bn_dot_row_f32_scalar");
        }
        const float da = bn_dot_f32_scalar(wf, x, k), db = kr->dot_f32(wf, x, k);
        CHECKF(fabsf(da - db) <= 1e-5f * (1.0f + fabsf(da)) * sqrtf((float)k), "%s dot_f32 k=%zu", kr->name, k);
        free(wh);
        free(wf);
        free(x);
        free(wq);
        free(d);
        free(a);
        free(b);
        free(c);
    }
}

static void test_q8_quantize(void)
{
    float w[300];
    int8_t q[300];
    fill(w, 300, -0.5f, 0.5f);
    w[7] = -0.75f;
    const float d = bn_head_q8_quantize_row(w, 300, q);
    CHECKF(fabsf(d - 0.75f / 127.0f) < 1e-9f && q[7] == -127, "q8 row scale %g", (double)d);
    double num = 0, den = 0;
    for (int i = 0; i < 300; i++) {
        num += ((double)q[i] * d - w[i]) * ((double)q[i] * d - w[i]);
        den += (double)w[i] * w[i];
    }
    CHECKF(num / den < 1e-4, "q8 row nmse %g", num / den);
    memset(w, 0, sizeof w);
    CHECK(bn_head_q8_quantize_row(w, 300, q) == 0.0f && q[0] == 0, "all-zero row");
}

static void test_quantize_i16(void)
{
    float x[5] = {1.0f, -0.5f, 0.25f, 0.0f, -1.0f};
    int16_t q[5];
    float s = bn_quantize_row_i16(x, 5, q);
    CHECKF(s == 32767.0f && q[0] == 32767 && q[4] == -32767 && q[2] == 8192 && q[3] == 0, "i16 row: s %g q %d %d %d",
           (double)s, q[0], q[2], q[4]);
    CHECKF(q[1] == -16384, "half to even: -16383.5 -> %d", q[1]);
    const float z[3] = {0, 0, 0};
    s = bn_quantize_row_i16(z, 3, q);
    CHECK(s == 1.0f && q[0] == 0, "all-zero row");
    x[2] = NAN;
    s = bn_quantize_row_i16(x, 5, q);
    CHECK(s == 32767.0f && q[2] == 0, "NaN quantizes to 0 and does not set the scale");
}

static void test_attention(const struct bn_cpu_kernels *kr)
{
    static const uint32_t dims[] = {1, 7, 16, 64, 100, 128};
    static const uint32_t kvs[] = {1, 2, 9, 17, 70};
    for (size_t id = 0; id < sizeof dims / sizeof dims[0]; id++)
        for (size_t iv = 0; iv < sizeof kvs / sizeof kvs[0]; iv++)
            for (int f16 = 0; f16 < 2; f16++) {
                const uint32_t hd = dims[id], n_kv = kvs[iv];
                const size_t stride = (size_t)hd * 3 + 5;
                float *q = malloc(hd * sizeof(float)), *kf = malloc(stride * n_kv * sizeof(float));
                float *vf = malloc(stride * n_kv * sizeof(float));
                uint16_t *kh = malloc(stride * n_kv * 2), *vh = malloc(stride * n_kv * 2);
                float *s0 = malloc(n_kv * sizeof(float)), *s1 = malloc(n_kv * sizeof(float));
                float *o0 = malloc(hd * sizeof(float)), *o1 = malloc(hd * sizeof(float));
                fill(q, hd, -2.0f, 2.0f);
                fill(kf, stride * n_kv, -2.0f, 2.0f);
                fill(vf, stride * n_kv, -1.0f, 1.0f);
                for (size_t i = 0; i < stride * n_kv; i++) {
                    kh[i] = bn_fp32_to_fp16(kf[i]);
                    vh[i] = bn_fp32_to_fp16(vf[i]);
                }
                const void *K = f16 ? (const void *)kh : kf, *V = f16 ? (const void *)vh : vf;
                bn_attention_head_scalar(q, K, V, f16, stride, hd, n_kv, s0, o0);
                kr->attention_head(q, K, V, f16, stride, hd, n_kv, s1, o1);
                CHECKF(test_nmse(o1, o0, hd) < 1e-7, "%s attention hd=%u n_kv=%u f16=%d nmse %g", kr->name, hd, n_kv,
                       f16, test_nmse(o1, o0, hd));
                free(q);
                free(kf);
                free(vf);
                free(kh);
                free(vh);
                free(s0);
                free(s1);
                free(o0);
                free(o1);
            }
}

static void test_elementwise(const struct bn_cpu_kernels *kr)
{
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const size_t n = lens[li];
        float *g = malloc(n * sizeof(float)), *u = malloc(n * sizeof(float));
        float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
        uint16_t *h0 = malloc(n * 2), *h1 = malloc(n * 2);
        fill(g, n, -12.0f, 12.0f);
        fill(u, n, -3.0f, 3.0f);
        if (n > 3) {
            g[0] = -0.0f;
            g[1] = 70000.0f;   /* overflows half */
            g[2] = 3.0e-6f;    /* half subnormal */
        }
        bn_relu2_mul_scalar(g, u, n, a);
        kr->relu2_mul(g, u, n, b);
        CHECKF(memcmp(a, b, n * sizeof(float)) == 0, "%s relu2_mul n=%zu exact", kr->name, n);
        for (size_t i = 0; i < n; i++) g[i] = g[i] > 1000.0f ? 50.0f : g[i];
        bn_silu_mul_scalar(g, u, n, a);
        kr->silu_mul(g, u, n, b);
        CHECKF(test_nmse(b, a, n) < 1e-7, "%s silu_mul n=%zu nmse %g", kr->name, n, test_nmse(b, a, n));
        if (n > 3) g[1] = 70000.0f;
        bn_fp32_to_fp16_scalar(g, h0, n);
        kr->fp32_to_fp16(g, h1, n);
        CHECKF(memcmp(h0, h1, n * 2) == 0, "%s fp32_to_fp16 n=%zu exact", kr->name, n);
        bn_fp16_to_fp32_scalar(h0, a, n);
        kr->fp16_to_fp32(h0, b, n);
        CHECKF(memcmp(a, b, n * sizeof(float)) == 0, "%s fp16_to_fp32 n=%zu exact", kr->name, n);
        free(g);
        free(u);
        free(a);
        free(b);
        free(h0);
        free(h1);
    }
}

static void test_dispatch(void)
{
    const struct bn_cpu_kernels *best = bn_cpu_kernels_best();
    CHECK(best != NULL && best->name != NULL, "a best table");
    CHECK(bn_cpu_kernels_get(BN_CPU_SCALAR) != NULL, "scalar always there");
    CHECK(bn_cpu_kernels_by_name("scalar")->isa == BN_CPU_SCALAR, "by name: scalar");
    CHECK(bn_cpu_kernels_by_name("nonsense") == NULL, "unknown name refused");
    CHECK(bn_cpu_kernels_by_name("auto") == best, "auto is the best");
    /* asking for the other architecture's set gives scalar, not a mix */
#if defined(BN_KERNELS_X86)
    CHECK(bn_cpu_kernels_by_name("neon")->isa == BN_CPU_SCALAR, "neon on x86 is scalar");
#elif defined(BN_KERNELS_NEON)
    CHECK(bn_cpu_kernels_by_name("avx2")->isa == BN_CPU_SCALAR, "avx2 on arm is scalar");
#endif
    const char *env = getenv("BITNET_CPU");
    printf("best kernels: %s (BITNET_CPU=%s)%s%s\n", best->name, env ? env : "", bn_cpu_kernels_note()[0] ? ": " : "",
           bn_cpu_kernels_note());
}

int main(void)
{
    test_dispatch();
    test_layout();
    test_q8_quantize();
    test_quantize_i16();
    for (int isa = 0; isa < BN_CPU_ISA_COUNT; isa++) {
        const struct bn_cpu_kernels *kr = bn_cpu_kernels_get((enum bn_cpu_isa)isa);
        if (!kr) continue;
        printf("testing %s kernels\n", kr->name);
        test_gemm(kr);
        test_act_sums(kr);
        test_quantize(kr);
        test_norm(kr);
        test_heads(kr);
        test_attention(kr);
        test_elementwise(kr);
    }
    return test_report("test_simd");
}
