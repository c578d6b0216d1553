/*
 * Scalar reference for the float ops of a layer: table rows, RoPE, the FFN
 * activations and attention.
 */
#include "kernels.h"

#include <math.h>
#include <string.h>

#include "formats.h"

/* Type ids as in runtime/tensor_types.h (kernels do not include runtime
 * headers; the values are the GGUF file format's and never change). */
enum { TYPE_F32 = 0, TYPE_F16 = 1, TYPE_Q8_0 = 8, TYPE_Q6_K = 14, TYPE_BF16 = 30 };

int bn_row_to_f32_scalar(uint32_t type, const void *row, size_t k, float *out)
{
    const uint8_t *p = row;
    switch (type) {
    case TYPE_F32: memcpy(out, row, k * sizeof(float)); return 0;
    case TYPE_F16:
        for (size_t i = 0; i < k; i++) out[i] = bn_fp16_to_fp32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return 0;
    case TYPE_BF16:
        for (size_t i = 0; i < k; i++) out[i] = bn_bf16_to_fp32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return 0;
    case TYPE_Q8_0: bn_dequant_q8_0(p, out, k); return 0;
    case TYPE_Q6_K: bn_dequant_q6_k(p, out, k); return 0;
    default: return -1;
    }
}

float bn_dot_row_f32_scalar(uint32_t type, const void *row, const float *x, size_t k, float *scratch)
{
    float sum = 0.0f;
    if (type == TYPE_F16) {
        /* The head is the biggest read of a token: skip the scratch copy. */
        const uint8_t *p = row;
        for (size_t i = 0; i < k; i++) sum += bn_fp16_to_fp32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8))) * x[i];
        return sum;
    }
    if (bn_row_to_f32_scalar(type, row, k, scratch) != 0) return NAN;
    for (size_t i = 0; i < k; i++) sum += scratch[i] * x[i];
    return sum;
}

void bn_rope_head_scalar(float *x, uint32_t n_rot, uint32_t pos, float base, int neox, const float *freq_factors)
{
    const uint32_t half = n_rot / 2;
    for (uint32_t j = 0; j < half; j++) {
        double theta = (double)pos * pow((double)base, -2.0 * (double)j / (double)n_rot);
        if (freq_factors) theta /= (double)freq_factors[j];
        const float c = (float)cos(theta), s = (float)sin(theta);
        const uint32_t i0 = neox ? j : 2 * j;
        const uint32_t i1 = neox ? j + half : 2 * j + 1;
        const float a = x[i0], b = x[i1];
        x[i0] = a * c - b * s;
        x[i1] = a * s + b * c;
    }
}

void bn_relu2_mul_scalar(const float *g, const float *u, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        float r = g[i] > 0.0f ? g[i] : 0.0f;
        out[i] = r * r * u[i];
    }
}

void bn_silu_mul_scalar(const float *g, const float *u, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static float cache_at(const void *base, int f16, size_t i)
{
    if (f16) return bn_fp16_to_fp32(((const uint16_t *)base)[i]);
    return ((const float *)base)[i];
}

void bn_attention_head_scalar(const float *q, const void *k, const void *v, int f16, size_t stride, uint32_t head_dim,
                              uint32_t n_kv, float *scores, float *out)
{
    const float scale = 1.0f / sqrtf((float)head_dim);
    float max = -INFINITY;
    for (uint32_t p = 0; p < n_kv; p++) {
        float dot = 0.0f;
        for (uint32_t d = 0; d < head_dim; d++) dot += q[d] * cache_at(k, f16, (size_t)p * stride + d);
        scores[p] = dot * scale;
        if (scores[p] > max) max = scores[p];
    }
    float sum = 0.0f;
    for (uint32_t p = 0; p < n_kv; p++) {
        scores[p] = expf(scores[p] - max);
        sum += scores[p];
    }
    const float inv = 1.0f / sum;
    for (uint32_t d = 0; d < head_dim; d++) out[d] = 0.0f;
    for (uint32_t p = 0; p < n_kv; p++) {
        const float w = scores[p] * inv;
        for (uint32_t d = 0; d < head_dim; d++) out[d] += w * cache_at(v, f16, (size_t)p * stride + d);
    }
}
