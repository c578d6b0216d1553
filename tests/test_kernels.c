/*
 * Kernel-level checks of the numerics against hand-computed values: the
 * mistakes that hide inside end-to-end tolerances (a wrong rms epsilon, one
 * activation scale per batch instead of per token, half rounding) are caught
 * here, and the ternary dot products are checked to be exact integers in
 * every format.
 */
#include <stdint.h>

#include "backend.h"
#include "formats.h"
#include "kernels.h"
#include "test_util.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

static void test_quantize(void)
{
    /* m = 127 gives s = 1 exactly, so rounding is visible directly. */
    const float x[8] = {127.0f, 2.5f, -2.5f, 3.5f, 0.5f, -0.5f, 1.5f, -126.5f};
    const int8_t want[8] = {127, 2, -2, 4, 0, 0, 2, -126};
    int8_t q[8];
    float s = bn_quantize_row_i8_scalar(x, 8, q);
    CHECKF(s == 1.0f, "scale %g, expected 1", (double)s);
    CHECK(memcmp(q, want, 8) == 0, "round half to even");

    /* s = 127 / max|x|: 0.25 -> 127/0.25 = 508. */
    const float y[4] = {0.25f, -0.125f, 0.0625f, 0.001f};
    s = bn_quantize_row_i8_scalar(y, 4, q);
    CHECKF(s == 508.0f, "scale %g, expected 508", (double)s);
    CHECKF(q[0] == 127 && q[1] == -64 && q[2] == 32 && q[3] == 1, "q = %d %d %d %d", q[0], q[1], q[2], q[3]);

    /* An all-zero row uses the floor m = 1e-5. */
    const float z[3] = {0, 0, 0};
    s = bn_quantize_row_i8_scalar(z, 3, q);
    CHECKF(s == 127.0f / 1e-5f, "zero row scale %g", (double)s);
    CHECK(q[0] == 0 && q[1] == 0 && q[2] == 0, "zero row quantizes to 0");
}

/* One scale per token: two rows that differ by a factor of 100 quantize to
 * the same int8 values with scales 100 apart. */
static void test_quantize_per_row_backend(void)
{
    struct bn_backend be;
    char err[256];
    CHECK(bn_backend_cpu_create(&be, NULL, err, sizeof err) == BN_OK, err);
    const uint32_t W = 256;
    float x[2 * 256];
    for (uint32_t i = 0; i < W; i++) {
        x[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
        x[W + i] = x[i] * 100.0f;
    }
    bn_buf *bx = be.iface.buf_alloc(be.ctx, sizeof x, err, sizeof err);
    bn_buf *bq = be.iface.buf_alloc(be.ctx, 2 * W, err, sizeof err);
    bn_buf *bs = be.iface.buf_alloc(be.ctx, 2 * sizeof(float), err, sizeof err);
    be.iface.buf_write(be.ctx, bx, 0, x, sizeof x);
    be.iface.quantize(be.ctx, bx, 2, W, NULL, 1e-5f, bq, bs);
    CHECK(be.iface.synchronize(be.ctx, err, sizeof err) == BN_OK, err);
    int8_t q[512];
    float s[2];
    be.iface.buf_read(be.ctx, bq, 0, q, sizeof q, err, sizeof err);
    be.iface.buf_read(be.ctx, bs, 0, s, sizeof s, err, sizeof err);
    CHECK(memcmp(q, q + W, W) == 0, "rows differing by a factor quantize alike");
    CHECKF(fabs(s[0] / s[1] - 100.0) < 1e-4, "per-row scales %g %g", (double)s[0], (double)s[1]);
    be.iface.buf_free(be.ctx, bx);
    be.iface.buf_free(be.ctx, bq);
    be.iface.buf_free(be.ctx, bs);
    be.iface.destroy(be.ctx);
}

static void test_rmsnorm(void)
{
    /* mean(x^2) = 1e-6, so eps = 1e-5 dominates: 1e-3 / sqrt(1.1e-5). */
    const float x[4] = {1e-3f, -1e-3f, 1e-3f, -1e-3f};
    const float w[4] = {1.0f, 2.0f, 1.0f, 0.5f};
    float out[4];
    bn_rmsnorm_row_scalar(x, w, 4, 1e-5f, out);
    const double want = 1e-3 / sqrt(1.1e-5);
    CHECKF(fabs(out[0] - want) < 1e-6, "eps 1e-5: %.7f, expected %.7f", (double)out[0], want);
    CHECKF(fabs(out[1] + 2 * want) < 2e-6, "weight applied: %.7f", (double)out[1]);
    CHECKF(fabs(out[3] + 0.5 * want) < 1e-6, "weight applied: %.7f", (double)out[3]);
    bn_rmsnorm_row_scalar(x, NULL, 4, 1e-6f, out);
    const double want6 = 1e-3 / sqrt(2e-6);
    CHECKF(fabs(out[0] - want6) < 1e-6, "eps 1e-6: %.7f, expected %.7f", (double)out[0], want6);
    /* Large values: eps negligible, output has unit RMS. */
    const float big[2] = {3.0f, 4.0f};
    bn_rmsnorm_row_scalar(big, NULL, 2, 1e-5f, out);
    CHECKF(fabs(out[0] - 3.0 / sqrt(12.5 + 1e-5)) < 1e-6, "rms of (3,4): %.7f", (double)out[0]);
}

/* Exact integer dots in all three formats against sum t*q. */
static void test_ternary_dots(void)
{
    enum { K = 1024 };
    static int8_t t[K], q[K];
    static uint8_t i2s[K / 4 + 32], tq2[K / 256 * 66], tq1[K / 256 * 54];
    for (int trial = 0; trial < 200; trial++) {
        int32_t want = 0;
        for (int i = 0; i < K; i++) {
            if (trial == 0) {
                t[i] = 1;
                q[i] = 127;
            } else if (trial == 1) {
                t[i] = -1;
                q[i] = -128;
            } else {
                t[i] = (int8_t)((int)(rnd() % 3) - 1);
                q[i] = (int8_t)(rnd() & 0xFF);
            }
            want += t[i] * q[i];
        }
        bn_i2s_pack(t, K, 0.5f, i2s);
        for (int b = 0; b < K / 256; b++) {
            bn_tq2_pack_block(t + 256 * b, 0x3C00, tq2 + 66 * b);
            bn_tq1_pack_block(t + 256 * b, 0x3C00, tq1 + 54 * b);
        }
        int32_t got_i2s = bn_dot_i2s_i8_scalar(i2s, q, K), got_tq2 = 0, got_tq1 = 0;
        for (int b = 0; b < K / 256; b++) {
            got_tq2 += bn_dot_tq2_block_i8_scalar(tq2 + 66 * b, q + 256 * b);
            got_tq1 += bn_dot_tq1_block_i8_scalar(tq1 + 54 * b, q + 256 * b);
        }
        CHECKF(got_i2s == want && got_tq2 == want && got_tq1 == want, "trial %d: i2s %d tq2 %d tq1 %d, expected %d",
               trial, got_i2s, got_tq2, got_tq1, want);
        /* d = 1: the float rows are the exact integer. */
        CHECKF(bn_row_tq2_scalar(tq2, q, K) == (float)want, "tq2 row with d=1");
        CHECKF(bn_row_tq1_scalar(tq1, q, K) == (float)want, "tq1 row with d=1");
        CHECKF(bn_row_i2s_scalar(i2s, 0.5f, q, K) == (float)want * 0.5f, "i2s row with scale 0.5");
    }
}

/* TQ scales apply per 256-block, not per row. */
static void test_tq_block_scales(void)
{
    int8_t t[512], q[512];
    uint8_t tq2[132];
    for (int i = 0; i < 512; i++) {
        t[i] = 1;
        q[i] = 1;
    }
    bn_tq2_pack_block(t, 0x3C00, tq2);       /* d = 1 */
    bn_tq2_pack_block(t + 256, 0x4000, tq2 + 66); /* d = 2 */
    CHECKF(bn_row_tq2_scalar(tq2, q, 512) == 256.0f * 1 + 256.0f * 2, "per-block d: %g",
           (double)bn_row_tq2_scalar(tq2, q, 512));
}

static void test_rope(void)
{
    /* NEOX rotates (j, j + n_rot/2); NORM rotates (2j, 2j+1). pos 3, base 100, n_rot 4:
     * theta_0 = 3, theta_1 = 3 * 100^(-1/2) = 0.3. */
    float x[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    bn_rope_head_scalar(x, 4, 3, 100.0f, 1, NULL);
    const double c0 = cos(3.0), s0 = sin(3.0), c1 = cos(0.3), s1 = sin(0.3);
    CHECKF(fabs(x[0] - (1 * c0 - 3 * s0)) < 1e-6 && fabs(x[2] - (1 * s0 + 3 * c0)) < 1e-6, "neox pair (0,2)");
    CHECKF(fabs(x[1] - (2 * c1 - 4 * s1)) < 1e-6 && fabs(x[3] - (2 * s1 + 4 * c1)) < 1e-6, "neox pair (1,3)");
    float y[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    bn_rope_head_scalar(y, 4, 3, 100.0f, 0, NULL);
    CHECKF(fabs(y[0] - (1 * c0 - 2 * s0)) < 1e-6 && fabs(y[1] - (1 * s0 + 2 * c0)) < 1e-6, "norm pair (0,1)");
    CHECKF(fabs(y[2] - (3 * c1 - 4 * s1)) < 1e-6 && fabs(y[3] - (3 * s1 + 4 * c1)) < 1e-6, "norm pair (2,3)");
    /* Partial rotation leaves dims past n_rot alone; position 0 is the identity. */
    float z[6] = {1, 2, 3, 4, 5, 6};
    bn_rope_head_scalar(z, 4, 0, 10000.0f, 1, NULL);
    CHECK(z[0] == 1 && z[1] == 2 && z[2] == 3 && z[3] == 4 && z[4] == 5 && z[5] == 6, "position 0 is identity");
    /* Large positions: the angle is exact enough (double) at 4095 * 1 rad. */
    float u[2] = {1.0f, 0.0f};
    bn_rope_head_scalar(u, 2, 4095, 10000.0f, 1, NULL);
    CHECKF(fabs(u[0] - cos(4095.0)) < 1e-6 && fabs(u[1] - sin(4095.0)) < 1e-6, "pos 4095 angle");
}

static void test_attention(void)
{
    /* head_dim 2, two cached positions: scores = q.k / sqrt(2). */
    const float q[2] = {1.0f, 0.0f};
    const float k[4] = {1.0f, 0.0f, 0.0f, 1.0f};
    const float v[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    float scores[2], out[2];
    bn_attention_head_scalar(q, k, v, 0, 2, 2, 2, scores, out);
    const double a = exp(1.0 / sqrt(2.0)), b = 1.0;
    const double w0 = a / (a + b), w1 = b / (a + b);
    CHECKF(fabs(out[0] - (w0 * 1 + w1 * 3)) < 1e-6 && fabs(out[1] - (w0 * 2 + w1 * 4)) < 1e-6, "attention %g %g",
           (double)out[0], (double)out[1]);
    /* One position: the output is that value row. */
    bn_attention_head_scalar(q, k, v, 0, 2, 2, 1, scores, out);
    CHECK(out[0] == 1.0f && out[1] == 2.0f, "single position");
    /* F16 cache holds the same values (exactly representable). */
    uint16_t kh[4], vh[4];
    for (int i = 0; i < 4; i++) {
        kh[i] = bn_fp32_to_fp16(k[i]);
        vh[i] = bn_fp32_to_fp16(v[i]);
    }
    float out16[2];
    bn_attention_head_scalar(q, kh, vh, 1, 2, 2, 2, scores, out16);
    CHECKF(fabs(out16[0] - (w0 * 1 + w1 * 3)) < 1e-6 && fabs(out16[1] - (w0 * 2 + w1 * 4)) < 1e-6, "f16 cache");
}

static void test_activations(void)
{
    const float g[3] = {-1.0f, 0.5f, 2.0f}, u[3] = {3.0f, 4.0f, 0.5f};
    float o[3];
    bn_relu2_mul_scalar(g, u, 3, o);
    CHECK(o[0] == 0.0f && o[1] == 1.0f && o[2] == 2.0f, "relu^2 * up");
    bn_silu_mul_scalar(g, u, 3, o);
    CHECKF(fabs(o[0] - (-1.0 / (1 + exp(1.0)) * 3)) < 1e-6 && fabs(o[2] - (2.0 / (1 + exp(-2.0)) * 0.5)) < 1e-6,
           "silu * up");
}

static void test_head_rows(void)
{
    /* An F16 row dotted with x equals the float computation of the same halves. */
    uint16_t row[8];
    float x[8], want = 0, scratch[8];
    for (int i = 0; i < 8; i++) {
        row[i] = bn_fp32_to_fp16((float)i * 0.25f - 1.0f);
        x[i] = (float)(i + 1);
        want += ((float)i * 0.25f - 1.0f) * x[i];
    }
    CHECK(bn_dot_row_f32_scalar(1, row, x, 8, scratch) == want, "f16 row dot");
    float back[8];
    CHECK(bn_row_to_f32_scalar(1, row, 8, back) == 0 && back[4] == 0.0f && back[7] == 0.75f, "f16 row to f32");
    CHECK(bn_row_to_f32_scalar(99, row, 8, back) == -1, "unknown type refused");
}

int main(void)
{
    test_quantize();
    test_quantize_per_row_backend();
    test_rmsnorm();
    test_ternary_dots();
    test_tq_block_scales();
    test_rope();
    test_attention();
    test_activations();
    test_head_rows();
    return test_report("test_kernels");
}
