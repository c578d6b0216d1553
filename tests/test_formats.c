/*
 * test_formats - element formats (fp16, bf16, I2_S, TQ2_0, TQ1_0, Q8_0,
 * Q6_K), the GGUF writer and the synthetic model maker.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kernels_cpu/formats.h"
#include "../runtime/gguf.h"
#include "../runtime/tensor_types.h"
#include "../tools/gguf_writer.h"
#include "../tools/synth_model.h"
#include "test_util.h"

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Tiny deterministic generator for test inputs (independent of the one in
 * synth_model.c on purpose). */
static uint64_t test_rng = 0x1234567887654321u;
static uint32_t rnd(void)
{
    test_rng ^= test_rng << 13;
    test_rng ^= test_rng >> 7;
    test_rng ^= test_rng << 17;
    return (uint32_t)(test_rng >> 32);
}

static void random_trits(int8_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) t[i] = (int8_t)((int)(rnd() % 3) - 1);
}

/* ---- fp16 ---------------------------------------------------------------- */

/* Reference: is h the correctly rounded (RNE) half of f? Checked through
 * exact double arithmetic against both neighbours. */
static int fp16_is_rne(float f, uint16_t h)
{
    double x = f;
    if (isnan(f)) return (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0;
    double ax = fabs(x);
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    if ((h & 0x8000) != sign) return 0;
    if (ax >= 65520.0) return (h & 0x7FFF) == 0x7C00; /* 65504 + half an ulp ties to even = inf */
    uint16_t m = h & 0x7FFF;
    if (m >= 0x7C00) return 0;
    double v = fabs((double)bn_fp16_to_fp32(h));
    double lo = m > 0 ? fabs((double)bn_fp16_to_fp32((uint16_t)(m - 1))) : -1.0;
    double hi = fabs((double)bn_fp16_to_fp32((uint16_t)(m + 1)));
    double dv = fabs(ax - v);
    if (m > 0 && fabs(ax - lo) < dv) return 0;
    if (fabs(ax - hi) < dv) return 0;
    if (m > 0 && fabs(ax - lo) == dv && (m & 1)) return 0;
    if (fabs(ax - hi) == dv && (m & 1)) return 0;
    return 1;
}

static void test_fp16(void)
{
    CHECK(bn_fp32_to_fp16(1.0f) == 0x3C00, "fp16(1) = 0x3C00");
    CHECK(bn_fp32_to_fp16(-2.0f) == 0xC000, "fp16(-2) = 0xC000");
    CHECK(bn_fp32_to_fp16(0.0f) == 0x0000, "fp16(+0)");
    CHECK(bn_fp32_to_fp16(-0.0f) == 0x8000, "fp16(-0)");
    CHECK(bn_fp32_to_fp16(65504.0f) == 0x7BFF, "fp16(65504) = 0x7BFF");
    CHECK(bn_fp32_to_fp16(65519.99f) == 0x7BFF, "just below the overflow tie rounds down");
    CHECK(bn_fp32_to_fp16(65520.0f) == 0x7C00, "overflow tie goes to even = inf");
    CHECK(bn_fp32_to_fp16(1e6f) == 0x7C00, "overflow -> inf");
    CHECK(bn_fp32_to_fp16(-1e30f) == 0xFC00, "negative overflow -> -inf");
    CHECK(bn_fp32_to_fp16(INFINITY) == 0x7C00, "inf");
    CHECK(bn_fp32_to_fp16(-INFINITY) == 0xFC00, "-inf");
    uint16_t hn = bn_fp32_to_fp16(NAN);
    CHECKF((hn & 0x7C00) == 0x7C00 && (hn & 0x3FF) != 0, "NaN -> 0x%04x", hn);
    /* A NaN whose payload lives only in the low float bits must not turn into inf. */
    hn = bn_fp32_to_fp16(u2f(0x7F800001u));
    CHECKF((hn & 0x7C00) == 0x7C00 && (hn & 0x3FF) != 0, "low-payload NaN -> 0x%04x", hn);
    hn = bn_fp32_to_fp16(u2f(0xFFC00000u));
    CHECKF(hn & 0x8000, "NaN keeps its sign: 0x%04x", hn);

    CHECK(bn_fp32_to_fp16(ldexpf(1.0f, -24)) == 0x0001, "2^-24 = smallest subnormal");
    CHECK(bn_fp32_to_fp16(ldexpf(1.0f, -25)) == 0x0000, "2^-25 ties to even 0");
    CHECK(bn_fp32_to_fp16(u2f(f2u(ldexpf(1.0f, -25)) + 1)) == 0x0001, "just above 2^-25 -> 0x0001");
    CHECK(bn_fp32_to_fp16(3.0f * ldexpf(1.0f, -25)) == 0x0002, "1.5 subnormal ulps ties to even 2");
    CHECK(bn_fp32_to_fp16(5.0f * ldexpf(1.0f, -25)) == 0x0002, "2.5 subnormal ulps ties to even 2");
    CHECK(bn_fp32_to_fp16(ldexpf(1.0f, -14)) == 0x0400, "2^-14 = smallest normal");
    CHECK(bn_fp32_to_fp16(ldexpf(1.0f, -14) - ldexpf(1.0f, -25)) == 0x0400,
          "tie between the largest subnormal (odd) and smallest normal rounds up");
    CHECK(bn_fp32_to_fp16(-ldexpf(1.0f, -24)) == 0x8001, "-2^-24");
    CHECK(bn_fp32_to_fp16(1e-10f) == 0x0000, "underflow to 0");
    CHECK(bn_fp32_to_fp16(1.0f + ldexpf(1.0f, -11)) == 0x3C00, "1 + 2^-11 ties to even 0x3C00");
    CHECK(bn_fp32_to_fp16(1.0f + 3.0f * ldexpf(1.0f, -11)) == 0x3C02, "1 + 3*2^-11 ties to even 0x3C02");
    CHECK(bn_fp32_to_fp16(1.0f + ldexpf(1.0f, -11) + ldexpf(1.0f, -20)) == 0x3C01, "above the tie rounds up");
    CHECK(bn_fp32_to_fp16(0.1f) == 0x2E66, "fp16(0.1) = 0x2E66");
    CHECK(bn_fp32_to_fp16(2047.0f + 0.5f) == 0x67FF + 1, "2047.5 (ulp 1) ties to even 2048");

    CHECK(bn_fp16_to_fp32(0x3C00) == 1.0f, "0x3C00 = 1");
    CHECK(bn_fp16_to_fp32(0x7BFF) == 65504.0f, "0x7BFF = 65504");
    CHECK(bn_fp16_to_fp32(0x0001) == ldexpf(1.0f, -24), "0x0001 = 2^-24");
    CHECK(bn_fp16_to_fp32(0x03FF) == 1023.0f * ldexpf(1.0f, -24), "0x03FF = 1023 * 2^-24");
    CHECK(bn_fp16_to_fp32(0x0400) == ldexpf(1.0f, -14), "0x0400 = 2^-14");
    CHECK(bn_fp16_to_fp32(0x8000) == 0.0f && signbit(bn_fp16_to_fp32(0x8000)), "0x8000 = -0");
    CHECK(isinf(bn_fp16_to_fp32(0x7C00)) && bn_fp16_to_fp32(0x7C00) > 0, "0x7C00 = inf");
    CHECK(isinf(bn_fp16_to_fp32(0xFC00)) && bn_fp16_to_fp32(0xFC00) < 0, "0xFC00 = -inf");
    CHECK(isnan(bn_fp16_to_fp32(0x7E00)) && isnan(bn_fp16_to_fp32(0x7C01)), "NaNs");
    CHECK(bn_fp16_to_fp32(0xC000) == -2.0f, "0xC000 = -2");

    /* Every half survives half -> float -> half (NaNs stay NaN, same sign). */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bn_fp16_to_fp32((uint16_t)h);
        uint16_t back = bn_fp32_to_fp16(f);
        int is_nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0;
        if (is_nan) {
            if (!isnan(f) || (back & 0x7C00) != 0x7C00 || (back & 0x3FF) == 0 || (back & 0x8000) != (h & 0x8000))
                bad++;
        } else if (back != h) {
            bad++;
        }
    }
    CHECKF(bad == 0, "fp16 round trip: %d of 65536 differ", bad);

    /* A sweep of float bit patterns against the nearest-even reference, and
     * every midpoint between adjacent halves (the ties). */
    bad = 0;
    for (uint64_t u = 0; u < 0x100000000u; u += 4099) {
        float f = u2f((uint32_t)u);
        if (!fp16_is_rne(f, bn_fp32_to_fp16(f))) bad++;
    }
    CHECKF(bad == 0, "fp16 rounding sweep: %d wrong", bad);
    bad = 0;
    for (uint32_t h = 0; h < 0x7BFF; h++) {
        double mid = ((double)bn_fp16_to_fp32((uint16_t)h) + (double)bn_fp16_to_fp32((uint16_t)(h + 1))) / 2;
        float f = (float)mid; /* exact: a half midpoint needs 12 significant bits */
        uint16_t want = (uint16_t)((h & 1) ? h + 1 : h);
        if (bn_fp32_to_fp16(f) != want || bn_fp32_to_fp16(-f) != (want | 0x8000)) bad++;
    }
    CHECKF(bad == 0, "fp16 ties: %d wrong", bad);
}

static void test_bf16(void)
{
    CHECK(bn_fp32_to_bf16(1.0f) == 0x3F80, "bf16(1) = 0x3F80");
    CHECK(bn_fp32_to_bf16(-2.0f) == 0xC000, "bf16(-2) = 0xC000");
    CHECK(bn_fp32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3F80, "1 + 2^-8 ties to even");
    CHECK(bn_fp32_to_bf16(1.0f + 3.0f * ldexpf(1.0f, -8)) == 0x3F82, "1 + 3*2^-8 ties to even 0x3F82");
    CHECK(bn_fp32_to_bf16(1.0f + ldexpf(1.0f, -8) + ldexpf(1.0f, -20)) == 0x3F81, "above the tie rounds up");
    CHECK(bn_fp32_to_bf16(INFINITY) == 0x7F80 && bn_fp32_to_bf16(-INFINITY) == 0xFF80, "bf16 inf");
    CHECK(bn_fp32_to_bf16(u2f(0x7F7FFFFFu)) == 0x7F80, "FLT_MAX rounds to inf");
    uint16_t n = bn_fp32_to_bf16(u2f(0x7F800001u));
    CHECKF((n & 0x7F80) == 0x7F80 && (n & 0x7F) != 0, "low-payload NaN stays NaN: 0x%04x", n);
    CHECK(isnan(bn_bf16_to_fp32(bn_fp32_to_bf16(NAN))), "NaN round trip");
    CHECK(bn_bf16_to_fp32(0x3F80) == 1.0f && bn_bf16_to_fp32(0x4049) == u2f(0x40490000u), "bf16 -> f32");
    CHECK(bn_fp32_to_bf16(u2f(0x00010000u)) == 0x0001, "bf16 subnormal kept");
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        int is_nan = (h & 0x7F80) == 0x7F80 && (h & 0x7F) != 0;
        if (!is_nan && bn_fp32_to_bf16(bn_bf16_to_fp32((uint16_t)h)) != h) bad++;
    }
    CHECKF(bad == 0, "bf16 round trip: %d differ", bad);
}

/* ---- ternary formats ------------------------------------------------------- */

static void test_i2s(void)
{
    int8_t t[256];
    uint8_t out[256 / 4 + 32];
    memset(t, 0, sizeof t);
    /* Byte 0 holds weights 0, 32, 64, 96 in bits 7-6, 5-4, 3-2, 1-0;
     * codes 0 = -1, 1 = 0, 2 = +1. */
    t[0] = 1;
    t[32] = 0;
    t[64] = -1;
    t[96] = 1;
    t[128 + 31] = -1; /* second block, byte 31, top bits */
    t[128 + 127] = 1; /* second block, byte 31, low bits */
    bn_i2s_pack(t, 256, 0.5f, out);
    CHECKF(out[0] == 0x92, "I2_S byte 0 = 0x%02x (want 0x92: 10 01 00 10)", out[0]);
    CHECKF(out[1] == 0x55, "I2_S all-zero byte = 0x%02x (want 0x55)", out[1]);
    CHECKF(out[32 + 31] == ((0u << 6) | (1u << 4) | (1u << 2) | 2u), "I2_S block 2 byte 31 = 0x%02x", out[63]);
    CHECK(out[64] == 0x00 && out[65] == 0x00 && out[66] == 0x00 && out[67] == 0x3F, "scale 0.5 little-endian in tail");
    int tail_zero = 1;
    for (int i = 68; i < 96; i++) tail_zero &= out[i] == 0;
    CHECK(tail_zero, "rest of the tail is zero");
    CHECK(bn_i2s_scale(out, 256) == 0.5f, "bn_i2s_scale");
    CHECK(bn_i2s_get(out, 0) == 1 && bn_i2s_get(out, 64) == -1 && bn_i2s_get(out, 255) == 1, "bn_i2s_get");

    size_t n = 128 * 7;
    int8_t *r = malloc(n);
    uint8_t *p = malloc(n / 4 + 32);
    random_trits(r, n);
    bn_i2s_pack(r, n, -3.25f, p);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += bn_i2s_get(p, i) != r[i];
    CHECKF(bad == 0, "I2_S round trip: %d wrong", bad);
    CHECK(bn_i2s_scale(p, n) == -3.25f, "I2_S scale round trip");
    free(r);
    free(p);
}

static void test_tq2(void)
{
    int8_t t[256], back[256];
    uint8_t blk[66];
    uint16_t d = 0;
    memset(t, 0, sizeof t);
    /* Byte 32g+m holds weights 128g + 32l + m at bits 2l (l 0..3). */
    t[0] = 1;           /* l0 -> code 2 */
    t[32] = -1;         /* l1 -> code 0 */
    t[64] = 0;          /* l2 -> code 1 */
    t[96] = 1;          /* l3 -> code 2 */
    t[128 + 32 * 3 + 5] = -1;
    bn_tq2_pack_block(t, 0x3555, blk);
    CHECKF(blk[0] == 0x92, "TQ2_0 byte 0 = 0x%02x (want 0x92: 2 | 0<<2 | 1<<4 | 2<<6)", blk[0]);
    CHECKF(blk[1] == 0x55, "TQ2_0 zero byte = 0x%02x", blk[1]);
    CHECKF(blk[32 + 5] == 0x15, "TQ2_0 byte 37 = 0x%02x (want 0x15)", blk[37]);
    CHECK(blk[64] == 0x55 && blk[65] == 0x35, "TQ2_0 d little-endian at 64");
    bn_tq2_unpack_block(blk, back, &d);
    CHECK(memcmp(t, back, 256) == 0 && d == 0x3555, "TQ2_0 hand block round trip");
    int bad = 0;
    for (int it = 0; it < 50; it++) {
        random_trits(t, 256);
        uint16_t dd = (uint16_t)rnd();
        bn_tq2_pack_block(t, dd, blk);
        bn_tq2_unpack_block(blk, back, &d);
        bad += memcmp(t, back, 256) != 0 || d != dd;
    }
    CHECKF(bad == 0, "TQ2_0 random round trips: %d wrong", bad);
}

static void test_tq1(void)
{
    int8_t t[256], back[256];
    uint8_t blk[54];
    uint16_t d = 0;

    memset(t, 0, sizeof t); /* all codes 1: v = 121, byte = ceil(121*256/243) = 128 */
    bn_tq1_pack_block(t, 0x3C00, blk);
    CHECKF(blk[0] == 128 && blk[47] == 128, "TQ1_0 all-zero trits: qs byte %u (want 128)", blk[0]);
    CHECKF(blk[48] == 127, "TQ1_0 all-zero trits: qh byte %u (want ceil(120*256/243) = 127)", blk[48]);
    CHECK(blk[52] == 0x00 && blk[53] == 0x3C, "TQ1_0 d little-endian at 52");
    for (int i = 0; i < 256; i++) t[i] = 1; /* v = 242: ceil(242*256/243) = 255 */
    bn_tq1_pack_block(t, 0, blk);
    CHECKF(blk[0] == 255 && blk[40] == 255, "TQ1_0 all +1: %u (want 255)", blk[0]);
    CHECKF(blk[48] == 253, "TQ1_0 qh all +1: %u (want ceil(240*256/243) = 253)", blk[48]);
    for (int i = 0; i < 256; i++) t[i] = -1;
    bn_tq1_pack_block(t, 0, blk);
    CHECK(blk[0] == 0 && blk[32] == 0 && blk[48] == 0, "TQ1_0 all -1 -> 0");

    /* Weight placement: byte m holds m + 32n; byte 32+m holds 160 + m + 16n;
     * qh byte j holds 240 + j + 4n. Digit n = 0 is the most significant. */
    memset(t, 0, sizeof t);
    t[7 + 32 * 4] = 1;   /* byte 7, digit 4 (least significant): v = 121 + 1 */
    t[160 + 3] = -1;     /* byte 35, digit 0: v = 121 - 81 = 40 */
    t[240 + 2 + 4] = 1;  /* qh byte 2, digit 1: v = 120 + 27 = 147 */
    bn_tq1_pack_block(t, 0, blk);
    CHECKF(blk[7] == (122 * 256 + 242) / 243, "TQ1_0 byte 7 = %u", blk[7]);
    CHECKF(blk[35] == (40 * 256 + 242) / 243, "TQ1_0 byte 35 = %u", blk[35]);
    CHECKF(blk[50] == (147 * 256 + 242) / 243, "TQ1_0 qh byte 2 = %u", blk[50]);
    bn_tq1_unpack_block(blk, back, &d);
    CHECK(memcmp(t, back, 256) == 0, "TQ1_0 placement round trip");

    /* Every one of the 243 digit combinations in every byte position (qh
     * bytes take the 81 combinations of their four digits). */
    int bad = 0;
    for (int v = 0; v < 243; v++) {
        int dig[5] = {v / 81 % 3, v / 27 % 3, v / 9 % 3, v / 3 % 3, v % 3};
        for (int n = 0; n < 5; n++) {
            for (int m = 0; m < 32; m++) t[m + 32 * n] = (int8_t)(dig[n] - 1);
            for (int m = 0; m < 16; m++) t[160 + m + 16 * n] = (int8_t)(dig[n] - 1);
            if (n < 4)
                for (int j = 0; j < 4; j++) t[240 + j + 4 * n] = (int8_t)(dig[(n + v) % 5] - 1);
        }
        bn_tq1_pack_block(t, (uint16_t)v, blk);
        if (blk[0] != (uint8_t)((v * 256 + 242) / 243)) bad++;
        bn_tq1_unpack_block(blk, back, &d);
        if (memcmp(t, back, 256) != 0 || d != v) bad++;
    }
    CHECKF(bad == 0, "TQ1_0 all 243 digit combinations: %d wrong", bad);
    for (int it = 0; it < 50; it++) {
        random_trits(t, 256);
        bn_tq1_pack_block(t, 0x1234, blk);
        bn_tq1_unpack_block(blk, back, &d);
        bad += memcmp(t, back, 256) != 0 || d != 0x1234;
    }
    CHECKF(bad == 0, "TQ1_0 random round trips: %d wrong", bad);
}

/* ---- Q8_0 / Q6_K ------------------------------------------------------------ */

static void test_q8_0(void)
{
    uint8_t blk[68];
    float y[64];
    memset(blk, 0, sizeof blk);
    blk[0] = 0x00;
    blk[1] = 0x38; /* d = 0.5 */
    const int8_t qs[6] = {-128, -127, -1, 0, 1, 127};
    memcpy(blk + 2, qs, 6);
    blk[34] = 0x00;
    blk[35] = 0xC0; /* second block d = -2 */
    blk[36] = 3;
    blk[36 + 31] = 0x80; /* -128 */
    bn_dequant_q8_0(blk, y, 64);
    CHECK(y[0] == -64.0f && y[1] == -63.5f && y[2] == -0.5f && y[3] == 0.0f && y[4] == 0.5f && y[5] == 63.5f,
          "Q8_0 block 1 values");
    CHECK(y[31] == 0.0f, "Q8_0 zero tail");
    CHECK(y[32] == -6.0f && y[63] == 256.0f && y[40] == 0.0f, "Q8_0 block 2 values (d = -2)");
}

static void test_q6_k(void)
{
    uint8_t blk[210];
    float y[256];
    memset(blk, 0, sizeof blk);
    /* All 6-bit codes 0 -> q = -32; scales s+1; d = 0.25: y = -8 * (scale). */
    for (int s = 0; s < 16; s++) blk[192 + s] = (uint8_t)(s + 1);
    blk[208] = 0x00;
    blk[209] = 0x34; /* 0.25 */
    /* ql[5] = 0xA3: low nibble 3 (weight 5), high nibble 10 (weight 69).
     * qh[5] = 11 10 01 00b: 2-bit highs 0 (w5), 1 (w37), 2 (w69), 3 (w101). */
    blk[5] = 0xA3;
    blk[128 + 5] = 0xE4;
    blk[64 + 20] = 0x0F; /* second half, l = 20: weight 148 low nibble 15 */
    blk[192 + 15] = 0xFD; /* scale 15 = -3: weights 240..255 */
    bn_dequant_q6_k(blk, y, 256);
    CHECKF(y[0] == -8.0f, "Q6_K y[0] = %g (0.25 * 1 * -32)", (double)y[0]);
    CHECKF(y[5] == -7.25f, "Q6_K y[5] = %g (0.25 * 1 * (3 - 32))", (double)y[5]);
    CHECKF(y[37] == -12.0f, "Q6_K y[37] = %g (0.25 * 3 * (16 - 32))", (double)y[37]);
    CHECKF(y[69] == 12.5f, "Q6_K y[69] = %g (0.25 * 5 * (42 - 32))", (double)y[69]);
    CHECKF(y[101] == 28.0f, "Q6_K y[101] = %g (0.25 * 7 * (48 - 32))", (double)y[101]);
    CHECKF(y[16] == -16.0f, "Q6_K y[16] = %g (scale 2)", (double)y[16]);
    CHECKF(y[148] == -42.5f, "Q6_K y[148] = %g (0.25 * 10 * (15 - 32))", (double)y[148]);
    CHECKF(y[250] == 24.0f, "Q6_K y[250] = %g (0.25 * -3 * -32)", (double)y[250]);
    CHECKF(y[239] == -8.0f * 15, "Q6_K y[239] = %g (scale 15)", (double)y[239]);

    /* Random block against an independent per-weight formula. */
    for (int i = 0; i < 208; i++) blk[i] = (uint8_t)rnd();
    bn_dequant_q6_k(blk, y, 256);
    float d = bn_fp16_to_fp32((uint16_t)(blk[208] | (blk[209] << 8)));
    int bad = 0;
    for (int j = 0; j < 256; j++) {
        int half = j / 128, r = j % 128, c = r / 32, l = r % 32;
        int qlb = blk[half * 64 + l + (c & 1) * 32];
        int lo = c < 2 ? (qlb & 15) : (qlb >> 4);
        int hi = (blk[128 + half * 32 + l] >> (2 * c)) & 3;
        int8_t sc;
        memcpy(&sc, blk + 192 + half * 8 + l / 16 + 2 * c, 1);
        float want = d * (float)sc * (float)((lo | (hi << 4)) - 32);
        bad += y[j] != want;
    }
    CHECKF(bad == 0, "Q6_K random block: %d wrong", bad);
}

/* ---- GGUF writer -------------------------------------------------------------- */

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static void test_writer(void)
{
    char err[256];
    CHECK(bn_gguf_writer_create(3) == NULL, "alignment 3 rejected");
    for (int pass = 0; pass < 2; pass++) {
        uint32_t align = pass == 0 ? 0 : 64;
        bn_gguf_writer *w = bn_gguf_writer_create(align);
        CHECK(w != NULL, "create");
        CHECK(bn_gguf_writer_add_str(w, "general.architecture", "bitnet"), "add str");
        CHECK(bn_gguf_writer_add_u32(w, "a.u32", 0xDEADBEEFu), "add u32");
        CHECK(bn_gguf_writer_add_i32(w, "a.i32", -5), "add i32");
        CHECK(bn_gguf_writer_add_u64(w, "a.u64", 0x0102030405060708u), "add u64");
        CHECK(bn_gguf_writer_add_f32(w, "a.f32", 1.5f), "add f32");
        CHECK(bn_gguf_writer_add_bool(w, "a.bool", true), "add bool");
        const uint8_t arr[8] = {1, 0, 0, 0, 2, 0, 0, 0};
        CHECK(bn_gguf_writer_add_arr(w, "a.arr", BN_GGUF_INT32, arr, 2), "add arr");
        const char *strs[3] = {"x", "", "hello"};
        CHECK(bn_gguf_writer_add_arr_str(w, "a.strs", strs, 3), "add arr str");
        float f3[3] = {1, 2, 3};
        uint64_t ne1[1] = {3};
        CHECK(bn_gguf_writer_add_tensor(w, "t.f32", BN_TYPE_F32, 1, ne1, f3, 12), "add f32 tensor");
        int8_t tr[256];
        random_trits(tr, 256);
        uint8_t tq[66];
        bn_tq2_pack_block(tr, 0x3C00, tq);
        uint64_t ne2[2] = {256, 1};
        CHECK(bn_gguf_writer_add_tensor(w, "t.tq2", BN_TYPE_TQ2_0, 2, ne2, tq, 66), "add tq2 tensor");

        uint8_t *mem = NULL;
        size_t size = 0;
        CHECK(bn_gguf_writer_to_memory(w, &mem, &size, err, sizeof err) == BN_OK, err);
        CHECK(size > 24 && memcmp(mem, "GGUF", 4) == 0 && rd32(mem + 4) == 3, "magic and version");
        CHECK(rd64(mem + 8) == 2, "n_tensors");
        CHECKF(rd64(mem + 16) == (pass == 0 ? 8u : 9u), "n_kv = %llu", (unsigned long long)rd64(mem + 16));
        if (pass == 1) {
            /* general.alignment comes first, written by the writer itself. */
            CHECK(rd64(mem + 24) == 17 && memcmp(mem + 32, "general.alignment", 17) == 0 &&
                      rd32(mem + 49) == BN_GGUF_UINT32 && rd32(mem + 53) == 64,
                  "general.alignment is the first key");
        }
        CHECK(size % (align ? align : 32) == 0, "file size padded to alignment");

        bn_gguf *g = NULL;
        enum bn_status st = bn_gguf_open_memory(mem, size, "writer", &g, err, sizeof err);
        CHECKF(st == BN_OK, "reader accepts writer output: %s", err);
        if (st == BN_OK) {
            CHECK(bn_gguf_alignment(g) == (align ? align : 32), "reader sees alignment");
            CHECK(bn_gguf_data_offset(g) % (align ? align : 32) == 0, "data section aligned");
            uint32_t u = 0;
            float f = 0;
            bool b = false, found = false;
            int32_t i32 = 0;
            struct bn_gguf_str s;
            CHECK(bn_gguf_get_u32(g, "a.u32", &u, err, sizeof err) == BN_OK && u == 0xDEADBEEFu, "u32 back");
            CHECK(bn_gguf_get_i32_opt(g, "a.i32", &i32, &found, err, sizeof err) == BN_OK && found && i32 == -5,
                  "i32 back");
            CHECK(bn_gguf_get_f32(g, "a.f32", &f, err, sizeof err) == BN_OK && f == 1.5f, "f32 back");
            CHECK(bn_gguf_get_bool_opt(g, "a.bool", &b, &found, err, sizeof err) == BN_OK && b, "bool back");
            CHECK(bn_gguf_get_str(g, "general.architecture", &s, err, sizeof err) == BN_OK &&
                      bn_gguf_str_eq(s, "bitnet"),
                  "str back");
            int64_t k = bn_gguf_find_kv(g, "a.u64");
            CHECK(k >= 0 && bn_gguf_kv_at(g, k)->type == BN_GGUF_UINT64 &&
                      rd64(bn_gguf_kv_at(g, k)->value) == 0x0102030405060708u,
                  "u64 back");
            const struct bn_gguf_kv *kv = NULL;
            CHECK(bn_gguf_get_arr_opt(g, "a.arr", BN_GGUF_INT32, &kv, &found, err, sizeof err) == BN_OK && found &&
                      kv->arr_n == 2 && rd32(kv->value + 4) == 2,
                  "int32 array back");
            CHECK(bn_gguf_get_arr_opt(g, "a.strs", BN_GGUF_STRING, &kv, &found, err, sizeof err) == BN_OK && found &&
                      kv->arr_n == 3 && bn_gguf_str_eq(kv->arr_str[0], "x") && kv->arr_str[1].len == 0 &&
                      bn_gguf_str_eq(kv->arr_str[2], "hello"),
                  "string array back");
            int64_t ti = bn_gguf_find_tensor(g, "t.tq2");
            const struct bn_gguf_tensor *t = ti >= 0 ? bn_gguf_tensor_at(g, ti) : NULL;
            CHECK(t && t->type == BN_TYPE_TQ2_0 && t->nbytes == 66 && memcmp(t->data, tq, 66) == 0 &&
                      t->offset % (align ? align : 32) == 0 && t->ne[0] == 256 && t->ne[1] == 1,
                  "tq2 tensor back");
            ti = bn_gguf_find_tensor(g, "t.f32");
            t = ti >= 0 ? bn_gguf_tensor_at(g, ti) : NULL;
            CHECK(t && t->offset == 0 && memcmp(t->data, f3, 12) == 0, "f32 tensor back");
            bn_gguf_close(g);
        }

        /* write_file gives the same bytes, leaves no tmp file. */
        char path[256], tmp[260];
        snprintf(path, sizeof path, "%s/test_formats_%d_%ld.gguf", BN_BINARY_DIR, pass, (long)getpid());
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        CHECK(bn_gguf_writer_write_file(w, path, err, sizeof err) == BN_OK, err);
        size_t fsize = 0;
        uint8_t *fdata = test_read_file(path, &fsize);
        CHECK(fdata && fsize == size && memcmp(fdata, mem, size) == 0, "write_file == to_memory");
        CHECK(!file_exists(tmp), "no tmp file left");
        free(fdata);
        remove(path);
        free(mem);

        /* Failure: directory missing -> BN_ERR_IO and nothing written. */
        snprintf(path, sizeof path, "%s/no-such-dir-%ld/x.gguf", BN_BINARY_DIR, (long)getpid());
        CHECK(bn_gguf_writer_write_file(w, path, err, sizeof err) == BN_ERR_IO, "missing directory -> BN_ERR_IO");

        /* A wrong size is refused and poisons the builder. */
        CHECK(!bn_gguf_writer_add_tensor(w, "bad", BN_TYPE_F32, 1, ne1, f3, 8), "wrong nbytes refused");
        CHECK(bn_gguf_writer_to_memory(w, &mem, &size, err, sizeof err) != BN_OK, "poisoned builder refuses");
        bn_gguf_writer_destroy(w);
    }
    bn_gguf_writer_destroy(NULL);
}

/* Re-creates a golden model through the writer from what the reader parsed:
 * an independent program wrote those files, so equal bytes pin down the
 * writer's layout (header, padding, offsets) and the reader's parse at once. */
static void test_writer_reproduces_golden(const char *dir)
{
    static const char *const models[] = {"i2s_bitnet_b158", "tq2_bitnet"};
    for (int mi = 0; mi < 2; mi++) {
        char path[512], err[256];
        snprintf(path, sizeof path, "%s/golden/%s/model.gguf", dir, models[mi]);
        size_t fsize = 0;
        uint8_t *fdata = test_read_file(path, &fsize);
        bn_gguf *g = NULL;
        if (!fdata || bn_gguf_open_memory(fdata, fsize, path, &g, err, sizeof err) != BN_OK) {
            CHECKF(0, "cannot read %s", path);
            free(fdata);
            continue;
        }
        bn_gguf_writer *w = bn_gguf_writer_create(bn_gguf_alignment(g));
        int ok = w != NULL;
        char key[256];
        for (int64_t i = 0; ok && i < bn_gguf_n_kv(g); i++) {
            const struct bn_gguf_kv *kv = bn_gguf_kv_at(g, i);
            snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.data);
            if (strcmp(key, "general.alignment") == 0 && bn_gguf_alignment(g) != 32) continue; /* the writer adds it */
            switch (kv->type) {
            case BN_GGUF_UINT32: ok = bn_gguf_writer_add_u32(w, key, rd32(kv->value)); break;
            case BN_GGUF_INT32: ok = bn_gguf_writer_add_i32(w, key, (int32_t)rd32(kv->value)); break;
            case BN_GGUF_UINT64: ok = bn_gguf_writer_add_u64(w, key, rd64(kv->value)); break;
            case BN_GGUF_FLOAT32: ok = bn_gguf_writer_add_f32(w, key, u2f(rd32(kv->value))); break;
            case BN_GGUF_BOOL: ok = bn_gguf_writer_add_bool(w, key, kv->value[0] != 0); break;
            case BN_GGUF_STRING: {
                char *v = malloc(kv->str.len + 1);
                memcpy(v, kv->str.data, kv->str.len);
                v[kv->str.len] = '\0';
                ok = bn_gguf_writer_add_str(w, key, v);
                free(v);
                break;
            }
            case BN_GGUF_ARRAY:
                if (kv->arr_type == BN_GGUF_STRING) {
                    char **v = calloc(kv->arr_n ? kv->arr_n : 1, sizeof *v);
                    for (uint64_t k = 0; k < kv->arr_n; k++) {
                        v[k] = malloc(kv->arr_str[k].len + 1);
                        memcpy(v[k], kv->arr_str[k].data, kv->arr_str[k].len);
                        v[k][kv->arr_str[k].len] = '\0';
                    }
                    ok = bn_gguf_writer_add_arr_str(w, key, (const char *const *)v, kv->arr_n);
                    for (uint64_t k = 0; k < kv->arr_n; k++) free(v[k]);
                    free(v);
                } else {
                    ok = bn_gguf_writer_add_arr(w, key, kv->arr_type, kv->value, kv->arr_n);
                }
                break;
            default: ok = 0; CHECKF(0, "golden key %s has an unexpected type %u", key, kv->type);
            }
        }
        for (int64_t i = 0; ok && i < bn_gguf_n_tensors(g); i++) {
            const struct bn_gguf_tensor *t = bn_gguf_tensor_at(g, i);
            snprintf(key, sizeof key, "%.*s", (int)t->name.len, t->name.data);
            ok = bn_gguf_writer_add_tensor(w, key, t->type, t->n_dims, t->ne, t->data, t->nbytes);
        }
        uint8_t *mem = NULL;
        size_t size = 0;
        if (ok) ok = bn_gguf_writer_to_memory(w, &mem, &size, err, sizeof err) == BN_OK;
        CHECKF(ok && size == fsize && memcmp(mem, fdata, size) == 0,
               "writer reproduces golden %s byte for byte (%zu vs %zu bytes)", models[mi], size, fsize);
        free(mem);
        bn_gguf_writer_destroy(w);
        bn_gguf_close(g);
        free(fdata);
    }
}

/* ---- synthetic models --------------------------------------------------------- */

struct built {
    uint8_t *mem;
    size_t size;
    bn_gguf *g;
};

static int build(const struct bn_synth_params *p, struct built *b)
{
    char err[256];
    bn_gguf_writer *w = NULL;
    memset(b, 0, sizeof *b);
    enum bn_status st = bn_synth_build(p, &w, err, sizeof err);
    CHECKF(st == BN_OK, "synth build: %s", err);
    if (st != BN_OK) return 0;
    st = bn_gguf_writer_to_memory(w, &b->mem, &b->size, err, sizeof err);
    bn_gguf_writer_destroy(w);
    CHECKF(st == BN_OK, "synth to_memory: %s", err);
    if (st != BN_OK) return 0;
    st = bn_gguf_open_memory(b->mem, b->size, "synth", &b->g, err, sizeof err);
    CHECKF(st == BN_OK, "reader rejects synth model: %s", err);
    return st == BN_OK;
}

static void unbuild(struct built *b)
{
    bn_gguf_close(b->g);
    free(b->mem);
    memset(b, 0, sizeof *b);
}

static const struct bn_gguf_tensor *tensor(const struct built *b, const char *name)
{
    int64_t i = bn_gguf_find_tensor(b->g, name);
    return i >= 0 ? bn_gguf_tensor_at(b->g, i) : NULL;
}

/* Trits of a ternary tensor whatever its format; per-block d (as floats)
 * into d_out when given (n/256 entries; I2_S: the tensor scale). */
static int8_t *get_trits(const struct bn_gguf_tensor *t, float *d_out)
{
    size_t n = (size_t)t->ne[0] * t->ne[1];
    int8_t *tr = malloc(n);
    if (t->type == BN_TYPE_I2_S) {
        for (size_t i = 0; i < n; i++) tr[i] = (int8_t)bn_i2s_get(t->data, i);
        if (d_out)
            for (size_t b = 0; b < n / 256; b++) d_out[b] = bn_i2s_scale(t->data, n);
    } else {
        for (size_t b = 0; b < n / 256; b++) {
            uint16_t d;
            if (t->type == BN_TYPE_TQ2_0)
                bn_tq2_unpack_block(t->data + b * 66, tr + b * 256, &d);
            else
                bn_tq1_unpack_block(t->data + b * 54, tr + b * 256, &d);
            if (d_out) d_out[b] = bn_fp16_to_fp32(d);
        }
    }
    return tr;
}

static const char *const ternary_names[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

static void test_synth_layout(void)
{
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    struct built b;
    if (!build(&p, &b)) return;
    char err[256];
    uint32_t u = 0;
    CHECK(bn_gguf_get_u32(b.g, "bitnet-b1.58.vocab_size", &u, err, sizeof err) == BN_OK && u == 300, "vocab_size");
    CHECK(bn_gguf_get_u32(b.g, "bitnet-b1.58.rope.dimension_count", &u, err, sizeof err) == BN_OK && u == 64,
          "rope.dimension_count = head dim");
    CHECK(bn_gguf_get_u32(b.g, "general.file_type", &u, err, sizeof err) == BN_OK && u == 40, "file_type 40");
    float f = 0;
    CHECK(bn_gguf_get_f32(b.g, "bitnet-b1.58.rope.freq_base", &f, err, sizeof err) == BN_OK && f == 500000.0f,
          "freq_base");
    bool found = false;
    struct bn_gguf_str s;
    CHECK(bn_gguf_get_str_opt(b.g, "tokenizer.ggml.pre", &s, &found, err, sizeof err) == BN_OK && !found,
          "I2_S model has no tokenizer.ggml.pre");

    const struct bn_gguf_kv *toks = NULL, *types = NULL, *merges = NULL;
    bn_gguf_get_arr_opt(b.g, "tokenizer.ggml.tokens", BN_GGUF_STRING, &toks, &found, err, sizeof err);
    bn_gguf_get_arr_opt(b.g, "tokenizer.ggml.token_type", BN_GGUF_INT32, &types, &found, err, sizeof err);
    bn_gguf_get_arr_opt(b.g, "tokenizer.ggml.merges", BN_GGUF_STRING, &merges, &found, err, sizeof err);
    CHECK(toks && toks->arr_n == 300 && types && types->arr_n == 300 && merges, "tokenizer arrays");
    if (toks && types && merges && toks->arr_n == 300 && types->arr_n == 300) {
        CHECK(bn_gguf_str_eq(toks->arr_str[0], "\xC4\x80"), "byte 0 -> U+0100");
        CHECK(bn_gguf_str_eq(toks->arr_str[32], "\xC4\xA0"), "byte 0x20 -> U+0120 (G-dot)");
        CHECK(bn_gguf_str_eq(toks->arr_str['A'], "A"), "byte 'A' -> A");
        CHECK(bn_gguf_str_eq(toks->arr_str[0x7F], "\xC4\xA1"), "byte 0x7F -> U+0121");
        CHECK(bn_gguf_str_eq(toks->arr_str[0xAD], "\xC5\x83"), "byte 0xAD -> U+0143 (the 68th)");
        CHECK(bn_gguf_str_eq(toks->arr_str[0xE9], "\xC3\xA9"), "byte 0xE9 -> U+00E9");
        uint32_t bos = 0, eos = 0, eot = 0;
        bn_gguf_get_u32(b.g, "tokenizer.ggml.bos_token_id", &bos, err, sizeof err);
        bn_gguf_get_u32(b.g, "tokenizer.ggml.eos_token_id", &eos, err, sizeof err);
        bn_gguf_get_u32(b.g, "tokenizer.ggml.eot_token_id", &eot, err, sizeof err);
        CHECK(bos == 256 + merges->arr_n && eos == bos + 1 && eot == bos + 2, "bos/eos/eot after the merges");
        CHECK(bos < 300 && bn_gguf_str_eq(toks->arr_str[bos], "<|begin_of_text|>") &&
                  bn_gguf_str_eq(toks->arr_str[eot + 2], "<|end_header_id|>"),
              "control token strings");
        CHECK(merges->arr_n > 10, "some merges");
        /* Each merge "A B" joins two tokens into a third; all three exist. */
        int bad = 0;
        for (uint64_t m = 0; m < merges->arr_n; m++) {
            struct bn_gguf_str ms = merges->arr_str[m];
            const char *sp = memchr(ms.data, ' ', ms.len);
            if (!sp) {
                bad++;
                continue;
            }
            size_t la = (size_t)(sp - ms.data), lb = ms.len - la - 1;
            int fa = 0, fb = 0, fab = 0;
            for (uint64_t t = 0; t < toks->arr_n; t++) {
                struct bn_gguf_str ts = toks->arr_str[t];
                fa |= ts.len == la && memcmp(ts.data, ms.data, la) == 0;
                fb |= ts.len == lb && memcmp(ts.data, sp + 1, lb) == 0;
                fab |= ts.len == la + lb && memcmp(ts.data, ms.data, la) == 0 && memcmp(ts.data + la, sp + 1, lb) == 0;
            }
            bad += !(fa && fb && fab);
        }
        CHECKF(bad == 0, "merges whose parts are not tokens: %d", bad);
        int tbad = 0;
        for (uint32_t t = 0; t < 300; t++) {
            int32_t ty = (int32_t)rd32(types->value + 4 * t);
            tbad += ty != (t < bos ? 1 : 3);
        }
        CHECK(tbad == 0, "token types 1 normal, 3 control");
    }
    bool add_bos = false;
    CHECK(bn_gguf_get_bool_opt(b.g, "tokenizer.ggml.add_bos_token", &add_bos, &found, err, sizeof err) == BN_OK &&
              add_bos,
          "add_bos_token");

    const struct bn_gguf_tensor *t = tensor(&b, "token_embd.weight");
    CHECK(t && t->type == BN_TYPE_F16 && t->ne[0] == 256 && t->ne[1] == 300, "token_embd [256, 300] f16");
    t = tensor(&b, "blk.1.attn_k.weight");
    CHECK(t && t->type == BN_TYPE_I2_S && t->ne[0] == 256 && t->ne[1] == 128, "attn_k [n_embd, n_kv*hd]");
    t = tensor(&b, "blk.1.ffn_down.weight");
    CHECK(t && t->ne[0] == 512 && t->ne[1] == 256, "ffn_down [n_ff, n_embd]");
    t = tensor(&b, "blk.1.ffn_sub_norm.weight");
    CHECK(t && t->type == BN_TYPE_F32 && t->ne[0] == 512, "ffn_sub_norm [n_ff]");
    t = tensor(&b, "blk.0.attn_sub_norm.weight");
    CHECK(t && t->ne[0] == 256, "attn_sub_norm [n_embd]");
    t = tensor(&b, "output_norm.weight");
    int bad = 0;
    if (t)
        for (int i = 0; i < 256; i++) {
            float v;
            memcpy(&v, t->data + 4 * i, 4);
            bad += !(v >= 0.9f && v <= 1.1f);
        }
    CHECK(t && bad == 0, "norm weights near 1");
    CHECK(bn_gguf_n_tensors(b.g) == 1 + 2 * 11 + 1, "tensor count");
    CHECK(tensor(&b, "output.weight") == NULL && tensor(&b, "blk.0.attn_q.scale") == NULL, "no optional tensors");

    /* Trits roughly uniform. */
    t = tensor(&b, "blk.0.ffn_up.weight");
    if (t) {
        int8_t *tr = get_trits(t, NULL);
        size_t cnt[3] = {0, 0, 0}, n = 256 * 512;
        for (size_t i = 0; i < n; i++) cnt[tr[i] + 1]++;
        CHECKF(cnt[0] > n / 3 - n / 50 && cnt[1] > n / 3 - n / 50 && cnt[2] > n / 3 - n / 50,
               "trit counts %zu %zu %zu", cnt[0], cnt[1], cnt[2]);
        free(tr);
    }
    /* Embedding values finite and O(1). */
    t = tensor(&b, "token_embd.weight");
    if (t) {
        double ss = 0;
        bad = 0;
        for (size_t i = 0; i < 256 * 300; i++) {
            float v = bn_fp16_to_fp32((uint16_t)(t->data[2 * i] | (t->data[2 * i + 1] << 8)));
            bad += !isfinite(v);
            ss += (double)v * v;
        }
        double rms = sqrt(ss / (256 * 300));
        CHECKF(bad == 0 && rms > 0.5 && rms < 2.0, "embedding rms %g", rms);
    }
    unbuild(&b);

    /* llama: no sub-norms; output tensor and scale tensors when asked. */
    p.arch = "llama";
    p.output_tensor = true;
    p.scale_tensors = true;
    if (build(&p, &b)) {
        CHECK(tensor(&b, "blk.0.attn_sub_norm.weight") == NULL && tensor(&b, "blk.0.ffn_sub_norm.weight") == NULL,
              "llama has no sub-norms");
        t = tensor(&b, "output.weight");
        CHECK(t && t->ne[0] == 256 && t->ne[1] == 300 && t->type == BN_TYPE_F16, "output.weight");
        int nscale = 0;
        for (int l = 0; l < 2; l++)
            for (int k = 0; k < 7; k++) {
                char name[64];
                snprintf(name, sizeof name, "blk.%d.%s.scale", l, ternary_names[k]);
                t = tensor(&b, name);
                float v = 0;
                if (t && t->type == BN_TYPE_F32 && t->n_dims == 1 && t->ne[0] == 1) {
                    memcpy(&v, t->data, 4);
                    nscale += v >= 0.5f && v <= 1.5f;
                }
            }
        CHECKF(nscale == 14, "scale tensors: %d of 14 good", nscale);
        CHECK(bn_gguf_get_u32(b.g, "llama.block_count", &u, err, sizeof err) == BN_OK && u == 2, "llama keys");
        unbuild(&b);
    }
}

static void test_synth_determinism(void)
{
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    p.n_embd = 512;
    p.n_ff = 768;
    p.n_head = 8;
    p.scale_tensors = true;
    struct built a, b, c;
    if (!build(&p, &a)) return;
    if (build(&p, &b)) {
        CHECK(a.size == b.size && memcmp(a.mem, b.mem, a.size) == 0, "same params -> same bytes");
        unbuild(&b);
    }
    p.seed = 2;
    if (build(&p, &b)) {
        CHECK(a.size == b.size && memcmp(a.mem, b.mem, a.size) != 0, "another seed -> other bytes");
        unbuild(&b);
    }
    p.seed = 1;

    /* The same matrices in all three weight formats. */
    p.wtype = BN_TYPE_TQ2_0;
    int ok_b = build(&p, &b);
    p.wtype = BN_TYPE_TQ1_0;
    int ok_c = build(&p, &c);
    if (ok_b && ok_c) {
        char err[256];
        struct bn_gguf_str s;
        bool found = false;
        CHECK(bn_gguf_get_str_opt(b.g, "tokenizer.ggml.pre", &s, &found, err, sizeof err) == BN_OK && found &&
                  bn_gguf_str_eq(s, "llama-bpe"),
              "TQ models say llama-bpe");
        uint32_t ft = 0;
        CHECK(bn_gguf_get_u32(b.g, "general.file_type", &ft, err, sizeof err) == BN_OK && ft == 37, "TQ2_0 ftype 37");
        CHECK(bn_gguf_get_u32(c.g, "general.file_type", &ft, err, sizeof err) == BN_OK && ft == 36, "TQ1_0 ftype 36");
        int same = 0, checked = 0, jitter_ok = 0, jitter_varies = 0;
        for (int l = 0; l < 2; l++)
            for (int k = 0; k < 7; k++) {
                char name[64];
                snprintf(name, sizeof name, "blk.%d.%s.weight", l, ternary_names[k]);
                const struct bn_gguf_tensor *ta = tensor(&a, name), *tb = tensor(&b, name), *tc = tensor(&c, name);
                if (!ta || !tb || !tc) continue;
                checked++;
                size_t n = (size_t)ta->ne[0] * ta->ne[1];
                float *da = malloc(n / 256 * sizeof *da), *db = malloc(n / 256 * sizeof *db);
                int8_t *xa = get_trits(ta, da), *xb = get_trits(tb, db), *xc = get_trits(tc, NULL);
                same += memcmp(xa, xb, n) == 0 && memcmp(xa, xc, n) == 0 &&
                        tb->type == BN_TYPE_TQ2_0 && tc->type == BN_TYPE_TQ1_0;
                /* Block scales within the jitter of the tensor scale, not all equal. */
                int in_range = 1, varies = 0;
                for (size_t q = 0; q < n / 256; q++) {
                    in_range &= db[q] >= da[0] * 0.74f && db[q] <= da[0] * 1.26f;
                    varies |= db[q] != db[0];
                }
                jitter_ok += in_range;
                jitter_varies += varies;
                free(xa);
                free(xb);
                free(xc);
                free(da);
                free(db);
                snprintf(name, sizeof name, "blk.%d.%s.scale", l, ternary_names[k]);
                ta = tensor(&a, name);
                tb = tensor(&b, name);
                CHECKF(ta && tb && memcmp(ta->data, tb->data, 4) == 0, "%s same in I2_S and TQ2_0", name);
            }
        CHECKF(checked == 14 && same == 14, "same trits in I2_S, TQ2_0, TQ1_0: %d of %d", same, checked);
        CHECKF(jitter_ok == 14, "block scales within 25%% of the tensor scale: %d of 14", jitter_ok);
        CHECKF(jitter_varies == 14, "block scales vary: %d of 14", jitter_varies);
        const struct bn_gguf_tensor *ea = tensor(&a, "token_embd.weight"), *eb = tensor(&c, "token_embd.weight");
        const struct bn_gguf_tensor *na = tensor(&a, "blk.1.ffn_norm.weight"), *nb = tensor(&c, "blk.1.ffn_norm.weight");
        CHECK(ea && eb && ea->nbytes == eb->nbytes && memcmp(ea->data, eb->data, ea->nbytes) == 0,
              "embedding independent of wtype");
        CHECK(na && nb && memcmp(na->data, nb->data, na->nbytes) == 0, "norms independent of wtype");
    }
    if (ok_b) unbuild(&b);
    if (ok_c) unbuild(&c);

    /* exact_scales: one power-of-two scale, every block d equal to it. */
    p.exact_scales = true;
    struct built e[3];
    const uint32_t wt[3] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
    int ok[3];
    for (int i = 0; i < 3; i++) {
        p.wtype = wt[i];
        ok[i] = build(&p, &e[i]);
    }
    if (ok[0] && ok[1] && ok[2]) {
        int good = 0;
        for (int k = 0; k < 7; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.1.%s.weight", ternary_names[k]);
            const struct bn_gguf_tensor *t0 = tensor(&e[0], name), *t1 = tensor(&e[1], name), *t2 = tensor(&e[2], name);
            if (!t0 || !t1 || !t2) continue;
            size_t n = (size_t)t0->ne[0] * t0->ne[1];
            float *d0 = malloc(n / 256 * 4), *d1 = malloc(n / 256 * 4), *d2 = malloc(n / 256 * 4);
            free(get_trits(t0, d0));
            free(get_trits(t1, d1));
            free(get_trits(t2, d2));
            int e2;
            int all = frexpf(d0[0], &e2) == 0.5f;
            for (size_t q = 0; q < n / 256; q++) all &= d1[q] == d0[0] && d2[q] == d0[0];
            good += all;
            free(d0);
            free(d1);
            free(d2);
        }
        CHECKF(good == 7, "exact scales: TQ block d == I2_S scale (power of two): %d of 7", good);
    }
    for (int i = 0; i < 3; i++)
        if (ok[i]) unbuild(&e[i]);
    unbuild(&a);
}

static void test_synth_embd_types(void)
{
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    p.embd_type = BN_TYPE_F32;
    struct built f32, o;
    if (!build(&p, &f32)) return;
    const struct bn_gguf_tensor *tf = tensor(&f32, "token_embd.weight");
    size_t n = 256 * 300;
    const uint32_t types[3] = {BN_TYPE_F16, BN_TYPE_BF16, BN_TYPE_Q8_0};
    for (int k = 0; k < 3; k++) {
        p.embd_type = types[k];
        if (!build(&p, &o)) continue;
        const struct bn_gguf_tensor *t = tensor(&o, "token_embd.weight");
        int bad = 0;
        if (t && tf && t->type == types[k]) {
            float *deq = malloc(n * sizeof *deq);
            if (types[k] == BN_TYPE_Q8_0) {
                bn_dequant_q8_0(t->data, deq, n);
            } else {
                for (size_t i = 0; i < n; i++) {
                    uint16_t h = (uint16_t)(t->data[2 * i] | (t->data[2 * i + 1] << 8));
                    deq[i] = types[k] == BN_TYPE_F16 ? bn_fp16_to_fp32(h) : bn_bf16_to_fp32(h);
                }
            }
            for (size_t i = 0; i < n; i++) {
                float x;
                memcpy(&x, tf->data + 4 * i, 4);
                if (types[k] == BN_TYPE_F16)
                    bad += deq[i] != bn_fp16_to_fp32(bn_fp32_to_fp16(x));
                else if (types[k] == BN_TYPE_BF16)
                    bad += deq[i] != bn_bf16_to_fp32(bn_fp32_to_bf16(x));
                else
                    bad += fabsf(deq[i] - x) > 1.7320508f / 127.0f * 0.51f + 1e-3f;
            }
            free(deq);
        } else {
            bad = 1;
        }
        CHECKF(bad == 0, "embedding as %s holds the f32 values: %d differ", bn_type_name(types[k]), bad);
        unbuild(&o);
    }
    unbuild(&f32);
}

static void test_synth_errors(void)
{
    char err[256];
    bn_gguf_writer *w = (bn_gguf_writer *)1;
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    p.n_vocab = 260;
    CHECK(bn_synth_build(&p, &w, err, sizeof err) == BN_ERR_USAGE && w == NULL, "n_vocab 260 -> usage");
    bn_synth_default_params(&p);
    p.n_vocab = 261;
    if (bn_synth_build(&p, &w, err, sizeof err) == BN_OK) {
        CHECK(1, "n_vocab 261 ok");
        bn_gguf_writer_destroy(w);
    } else {
        CHECKF(0, "n_vocab 261: %s", err);
    }
    bn_synth_default_params(&p);
    p.n_embd = 384;
    p.n_head = 6;
    p.wtype = BN_TYPE_TQ2_0;
    CHECK(bn_synth_build(&p, &w, err, sizeof err) == BN_ERR_USAGE, "TQ2_0 with n_embd 384 -> usage");
    p.wtype = BN_TYPE_I2_S;
    if (bn_synth_build(&p, &w, err, sizeof err) == BN_OK) {
        CHECK(1, "I2_S with n_embd 384 ok (golden shape)");
        bn_gguf_writer_destroy(w);
    } else {
        CHECKF(0, "I2_S n_embd 384: %s", err);
    }
    bn_synth_default_params(&p);
    p.n_head = 3;
    CHECK(bn_synth_build(&p, &w, err, sizeof err) == BN_ERR_USAGE, "n_embd % n_head != 0 -> usage");
    bn_synth_default_params(&p);
    p.n_head_kv = 3;
    CHECK(bn_synth_build(&p, &w, err, sizeof err) == BN_ERR_USAGE, "n_head % n_head_kv != 0 -> usage");
    bn_synth_default_params(&p);
    p.arch = "gpt2";
    CHECK(bn_synth_build(&p, &w, err, sizeof err) == BN_ERR_USAGE, "unknown arch -> usage");
    bn_synth_default_params(&p);
    p.embd_type = BN_TYPE_Q6_K;
    CHECK(bn_synth_build(&p, &w, err, sizeof err) == BN_ERR_USAGE, "q6_k embedding -> usage");
    bn_synth_default_params(&p);
    p.wtype = BN_TYPE_F16;
    CHECK(bn_synth_build(&p, &w, err, sizeof err) == BN_ERR_USAGE, "f16 weights -> usage");
}

static int run_mkmodel(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "\"%s\" %s 2>/dev/null", BN_MKMODEL, args);
    int rc = system(cmd);
    return rc == -1 || !WIFEXITED(rc) ? -1 : WEXITSTATUS(rc);
}

static void test_mkmodel_cli(void)
{
    char path[256], args[512], err[256];
    snprintf(path, sizeof path, "%s/test_formats_cli_%ld.gguf", BN_BINARY_DIR, (long)getpid());
    snprintf(args, sizeof args, "-o \"%s\" --n-layer 1 --preset demo --wtype tq1_0 --embd-type q8_0", path);
    CHECK(run_mkmodel(args) == 0, "bn-mkmodel --preset demo runs");
    bn_gguf *g = NULL;
    if (bn_gguf_open(path, &g, err, sizeof err) == BN_OK) {
        uint32_t u = 0;
        CHECK(bn_gguf_get_u32(g, "bitnet-b1.58.embedding_length", &u, err, sizeof err) == BN_OK && u == 512,
              "demo n_embd 512");
        CHECK(bn_gguf_get_u32(g, "bitnet-b1.58.block_count", &u, err, sizeof err) == BN_OK && u == 1,
              "flag overrides the preset even before it");
        CHECK(bn_gguf_get_u32(g, "bitnet-b1.58.attention.head_count_kv", &u, err, sizeof err) == BN_OK && u == 2,
              "demo head_count_kv 2");
        int64_t t = bn_gguf_find_tensor(g, "blk.0.ffn_up.weight");
        CHECK(t >= 0 && bn_gguf_tensor_at(g, t)->type == BN_TYPE_TQ1_0 && bn_gguf_tensor_at(g, t)->ne[1] == 1536,
              "demo ffn_up tq1_0 [512, 1536]");
        t = bn_gguf_find_tensor(g, "token_embd.weight");
        CHECK(t >= 0 && bn_gguf_tensor_at(g, t)->type == BN_TYPE_Q8_0, "q8_0 embedding");
        bn_gguf_close(g);
    } else {
        CHECKF(0, "cannot open bn-mkmodel output: %s", err);
    }
    remove(path);
    snprintf(args, sizeof args, "-o \"%s\" --bogus", path);
    CHECK(run_mkmodel(args) == 1, "unknown flag -> exit 1");
    snprintf(args, sizeof args, "-o \"%s\" --n-embd 100", path);
    CHECK(run_mkmodel(args) == 1, "bad shape -> exit 1");
    CHECK(run_mkmodel("--preset tiny") == 1, "no -o -> exit 1");
    CHECK(!file_exists(path), "no file after failures");
    snprintf(args, sizeof args, "-o \"%s/no-such-dir/x.gguf\"", BN_BINARY_DIR);
    CHECK(run_mkmodel(args) == 3, "unwritable path -> exit 3");
}

int main(void)
{
    test_fp16();
    test_bf16();
    test_i2s();
    test_tq2();
    test_tq1();
    test_q8_0();
    test_q6_k();
    test_writer();
    const char *td = test_testdata();
    if (td)
        test_writer_reproduces_golden(td);
    else if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
        CHECK(0, "shared test data missing under CI");
    test_synth_layout();
    test_synth_determinism();
    test_synth_embd_types();
    test_synth_errors();
    test_mkmodel_cli();
    return test_report("test_formats");
}
