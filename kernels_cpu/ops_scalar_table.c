/*
 * The scalar entries of the kernel table that kernels.h does not already
 * provide row by row: fused norm + quantize, the head over row ranges and
 * token batches, the int8 head, and half-precision rows. They are written
 * plainly from the reference kernels; the SIMD files are tested against them.
 */
#include <math.h>

#include "dispatch.h"
#include "formats.h"
#include "kernels.h"
#include "kernels_isa.h"

float bn_norm_quantize_row_scalar(const float *x, const float *w, size_t n, float eps, int8_t *q)
{
    if (!w) return bn_quantize_row_i8_scalar(x, n, q);
    /* Two passes over x instead of a scratch row: the normalized value is
     * recomputed with the same float operations for the max and for q. */
    float ss = 0.0f;
    for (size_t i = 0; i < n; i++) ss += x[i] * x[i];
    const float scale = 1.0f / sqrtf(ss / (float)n + eps);
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf((x[i] * scale) * w[i]);
        if (a > m) m = a;
    }
    if (!(m >= 1e-5f)) m = 1e-5f;
    const float s = 127.0f / m;
    for (size_t i = 0; i < n; i++) {
        float r = nearbyintf(((x[i] * scale) * w[i]) * s);
        if (r > 127.0f) r = 127.0f;
        if (r < -128.0f) r = -128.0f;
        if (r != r) r = 0.0f;
        q[i] = (int8_t)r;
    }
    return s;
}

void bn_head_f16_scalar(const uint16_t *w, size_t k, size_t row0, size_t row1, const float *x, uint32_t n_tok,
                        float *out, size_t out_stride)
{
    for (size_t r = row0; r < row1; r++)
        for (uint32_t t = 0; t < n_tok; t++) {
            const uint16_t *wr = w + r * k;
            const float *xt = x + (size_t)t * k;
            float sum = 0.0f;
            for (size_t i = 0; i < k; i++) sum += bn_fp16_to_fp32(wr[i]) * xt[i];
            out[(size_t)t * out_stride + r] = sum;
        }
}

void bn_head_q8_scalar(const int8_t *wq, const float *d, size_t k, size_t row0, size_t row1, const int16_t *xq,
                       const float *xs, uint32_t n_tok, float *out, size_t out_stride)
{
    for (size_t r = row0; r < row1; r++)
        for (uint32_t t = 0; t < n_tok; t++) {
            const int8_t *wr = wq + r * k;
            const int16_t *xt = xq + (size_t)t * k;
            int64_t acc = 0;
            for (size_t i = 0; i < k; i++) acc += (int32_t)wr[i] * xt[i];
            out[(size_t)t * out_stride + r] = (float)acc * d[r] / xs[t];
        }
}

float bn_dot_f32_scalar(const float *a, const float *b, size_t n)
{
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
}

void bn_fp32_to_fp16_scalar(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = bn_fp32_to_fp16(x[i]);
}

void bn_fp16_to_fp32_scalar(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = bn_fp16_to_fp32(x[i]);
}

float bn_head_q8_quantize_row(const float *w, size_t k, int8_t *q)
{
    float m = 0.0f;
    for (size_t i = 0; i < k; i++) {
        float a = fabsf(w[i]);
        if (a > m) m = a;
    }
    if (!(m > 0.0f) || !isfinite(m)) {
        for (size_t i = 0; i < k; i++) q[i] = 0;
        return 0.0f;
    }
    const float d = m / 127.0f, inv = 127.0f / m;
    for (size_t i = 0; i < k; i++) {
        float r = nearbyintf(w[i] * inv);
        if (r > 127.0f) r = 127.0f;
        if (r < -127.0f) r = -127.0f;
        if (r != r) r = 0.0f;
        q[i] = (int8_t)r;
    }
    return d;
}

float bn_quantize_row_i16(const float *x, size_t k, int16_t *q)
{
    float m = 0.0f;
    for (size_t i = 0; i < k; i++) {
        float a = fabsf(x[i]);
        if (a > m) m = a; /* NaN never wins */
    }
    const float s = m > 0.0f && isfinite(m) ? 32767.0f / m : 1.0f;
    for (size_t i = 0; i < k; i++) {
        float r = nearbyintf(x[i] * s);
        if (r > 32767.0f) r = 32767.0f;
        if (r < -32767.0f) r = -32767.0f;
        if (r != r) r = 0.0f;
        q[i] = (int16_t)r;
    }
    return s;
}
