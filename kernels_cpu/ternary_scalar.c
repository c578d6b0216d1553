/*
 * Scalar reference for activation quantization and the ternary dot products.
 *
 * Codes are q = t + 1 in {0, 1, 2}; every dot is written as
 * sum(q_i * x_i) - sum(x_i), the same identity the SIMD and GLSL kernels use,
 * so a (malformed) code 3 gives the same result (+2) on every backend.
 */
#include "kernels.h"

#include <math.h>

#include "formats.h"

float bn_quantize_row_i8_scalar(const float *x, size_t n, int8_t *q)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m) m = a;
    }
    if (!(m >= 1e-5f)) m = 1e-5f; /* also catches NaN */
    const float s = 127.0f / m;
    for (size_t i = 0; i < n; i++) {
        /* nearbyintf rounds half to even in the default rounding mode. */
        float r = nearbyintf(x[i] * s);
        if (r > 127.0f) r = 127.0f;
        if (r < -128.0f) r = -128.0f;
        if (r != r) r = 0.0f;
        q[i] = (int8_t)r;
    }
    return s;
}

void bn_rmsnorm_row_scalar(const float *x, const float *w, size_t n, float eps, float *out)
{
    float ss = 0.0f;
    for (size_t i = 0; i < n; i++) ss += x[i] * x[i];
    const float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (size_t i = 0; i < n; i++) out[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

/* I2_S: in each 128-weight block of 32 bytes, byte p holds weights p, p+32,
 * p+64, p+96 in bits 7-6, 5-4, 3-2, 1-0. */
int32_t bn_dot_i2s_i8_scalar(const uint8_t *codes, const int8_t *q, size_t k)
{
    int32_t sum_qx = 0, sum_x = 0;
    for (size_t b = 0; b < k; b += 128) {
        const uint8_t *c = codes + b / 4;
        const int8_t *x = q + b;
        for (int p = 0; p < 32; p++) {
            sum_qx += (int32_t)(c[p] >> 6) * x[p] + (int32_t)((c[p] >> 4) & 3) * x[p + 32] +
                      (int32_t)((c[p] >> 2) & 3) * x[p + 64] + (int32_t)(c[p] & 3) * x[p + 96];
        }
        for (int i = 0; i < 128; i++) sum_x += x[i];
    }
    return sum_qx - sum_x;
}

/* TQ2_0: weight 128g + 32l + m sits in byte 32g + m, bits 2l. */
int32_t bn_dot_tq2_block_i8_scalar(const uint8_t *blk, const int8_t *q)
{
    int32_t sum_qx = 0, sum_x = 0;
    for (int g = 0; g < 2; g++)
        for (int l = 0; l < 4; l++)
            for (int m = 0; m < 32; m++) {
                int e = 128 * g + 32 * l + m;
                sum_qx += (int32_t)((blk[32 * g + m] >> (2 * l)) & 3) * q[e];
            }
    for (int i = 0; i < 256; i++) sum_x += q[i];
    return sum_qx - sum_x;
}

/* TQ1_0: base-3 digits stored as fixed-point fractions; digit n of byte b
 * is ((uint8_t)(b * 3^n) * 3) >> 8. */
static int32_t tq1_digit(uint8_t b, int n)
{
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    uint8_t v = (uint8_t)(b * pow3[n]);
    return (int32_t)(((uint16_t)v * 3) >> 8);
}

int32_t bn_dot_tq1_block_i8_scalar(const uint8_t *blk, const int8_t *q)
{
    const uint8_t *qs = blk, *qh = blk + 48;
    int32_t sum_qx = 0, sum_x = 0;
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 32; m++) sum_qx += tq1_digit(qs[m], n) * q[m + 32 * n];
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 16; m++) sum_qx += tq1_digit(qs[32 + m], n) * q[160 + m + 16 * n];
    for (int n = 0; n < 4; n++)
        for (int j = 0; j < 4; j++) sum_qx += tq1_digit(qh[j], n) * q[240 + j + 4 * n];
    for (int i = 0; i < 256; i++) sum_x += q[i];
    return sum_qx - sum_x;
}

float bn_row_i2s_scalar(const uint8_t *codes, float w_scale, const int8_t *q, size_t k)
{
    return (float)bn_dot_i2s_i8_scalar(codes, q, k) * w_scale;
}

static float fp16_at(const uint8_t *p)
{
    return bn_fp16_to_fp32((uint16_t)(p[0] | (p[1] << 8)));
}

float bn_row_tq2_scalar(const uint8_t *row, const int8_t *q, size_t k)
{
    float sum = 0.0f;
    for (size_t b = 0; b < k / 256; b++) {
        const uint8_t *blk = row + b * 66;
        sum += fp16_at(blk + 64) * (float)bn_dot_tq2_block_i8_scalar(blk, q + 256 * b);
    }
    return sum;
}

float bn_row_tq1_scalar(const uint8_t *row, const int8_t *q, size_t k)
{
    float sum = 0.0f;
    for (size_t b = 0; b < k / 256; b++) {
        const uint8_t *blk = row + b * 54;
        sum += fp16_at(blk + 52) * (float)bn_dot_tq1_block_i8_scalar(blk, q + 256 * b);
    }
    return sum;
}
