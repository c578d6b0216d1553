/*
 * The float ops of a layer with AArch64 Advanced SIMD (4 lanes), same
 * structure and exactness promises as ops_avx512.c; ragged ends go through
 * a small zero-padded copy.
 */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "kernels_isa.h"

#define BN_INLINE static inline __attribute__((always_inline))

BN_INLINE float32x4_t load4(const float *p, size_t left)
{
    if (left >= 4) return vld1q_f32(p);
    float tmp[4] = {0};
    memcpy(tmp, p, left * sizeof(float));
    return vld1q_f32(tmp);
}

BN_INLINE void store4(float *p, float32x4_t v, size_t left)
{
    if (left >= 4) {
        vst1q_f32(p, v);
        return;
    }
    float tmp[4];
    vst1q_f32(tmp, v);
    memcpy(p, tmp, left * sizeof(float));
}

BN_INLINE float32x4_t load4_f16(const uint16_t *p, size_t left)
{
    if (left >= 4) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
    uint16_t tmp[4] = {0};
    memcpy(tmp, p, left * sizeof(uint16_t));
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(tmp)));
}

static float sum_squares(const float *x, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + 4);
        const float32x4_t c = vld1q_f32(x + i + 8), d = vld1q_f32(x + i + 12);
        s0 = vfmaq_f32(s0, a, a);
        s1 = vfmaq_f32(s1, b, b);
        s2 = vfmaq_f32(s2, c, c);
        s3 = vfmaq_f32(s3, d, d);
    }
    for (; i < n; i += 4) {
        const float32x4_t a = load4(x + i, n - i);
        s0 = vfmaq_f32(s0, a, a);
    }
    return vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
}

BN_INLINE float32x4_t normed(const float *x, const float *w, float scale, size_t left)
{
    const float32x4_t v = load4(x, left);
    if (!w) return v;
    return vmulq_f32(vmulq_n_f32(v, scale), load4(w, left));
}

/* The sum of squares of the fused norm, in the reference's order: one
 * float chain. With it q and s are the reference's bit for bit on every
 * instruction set (the rest of the fused op is elementwise). A tree sum
 * would be faster, but it moves s by an ulp now and then, and one flipped
 * int8 rounding can change every later layer of a trained model (the
 * trained-model test sees it); the chain costs about 2 us per 2560-wide row. */
static float sum_squares_ordered(const float *x, size_t n)
{
    float ss = 0.0f;
    for (size_t i = 0; i < n; i++) ss += x[i] * x[i];
    return ss;
}

float bn_norm_quantize_row_neon(const float *x, const float *w, size_t n, float eps, int8_t *q)
{
    float scale = 1.0f;
    if (w) scale = 1.0f / sqrtf(sum_squares_ordered(x, n) / (float)n + eps);
    /* vmaxnmq ignores a NaN operand, as NaN never wins the reference's comparison */
    float32x4_t mx = vdupq_n_f32(0.0f);
    for (size_t i = 0; i < n; i += 4) mx = vmaxnmq_f32(mx, vabsq_f32(normed(x + i, w ? w + i : NULL, scale, n - i)));
    float m = vmaxnmvq_f32(mx);
    if (!(m >= 1e-5f)) m = 1e-5f;
    const float s = 127.0f / m;
    for (size_t i = 0; i < n; i += 4) {
        float32x4_t r = vrndnq_f32(vmulq_n_f32(normed(x + i, w ? w + i : NULL, scale, n - i), s));
        const uint32x4_t ok = vceqq_f32(r, r);
        r = vminq_f32(vmaxq_f32(r, vdupq_n_f32(-128.0f)), vdupq_n_f32(127.0f));
        r = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(r), ok)); /* NaN -> 0 */
        const int32x4_t v = vcvtnq_s32_f32(r);
        const int8x8_t b = vqmovn_s16(vcombine_s16(vqmovn_s32(v), vqmovn_s32(v)));
        int8_t tmp[8];
        vst1_s8(tmp, b);
        memcpy(q + i, tmp, n - i >= 4 ? 4 : n - i);
    }
    return s;
}

void bn_rmsnorm_row_neon(const float *x, const float *w, size_t n, float eps, float *out)
{
    const float scale = 1.0f / sqrtf(sum_squares(x, n) / (float)n + eps);
    for (size_t i = 0; i < n; i += 4) {
        float32x4_t v = vmulq_n_f32(load4(x + i, n - i), scale);
        if (w) v = vmulq_f32(v, load4(w + i, n - i));
        store4(out + i, v, n - i);
    }
}

/* ---- heads ------------------------------------------------------------- */

/* One F16 head row against one token, four chains over 16 elements a
 * step; one row at a time keeps the weights one sequential stream (see
 * ops_avx512.c), and the sequence never depends on the call's other rows
 * or tokens. */
BN_INLINE float head_row_f16(const uint16_t *w, const float *x, size_t k)
{
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 16 <= k; i += 16) {
        a0 = vfmaq_f32(a0, load4_f16(w + i, 4), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, load4_f16(w + i + 4, 4), vld1q_f32(x + i + 4));
        a2 = vfmaq_f32(a2, load4_f16(w + i + 8, 4), vld1q_f32(x + i + 8));
        a3 = vfmaq_f32(a3, load4_f16(w + i + 12, 4), vld1q_f32(x + i + 12));
    }
    for (; i < k; i += 4) a0 = vfmaq_f32(a0, load4_f16(w + i, k - i), load4(x + i, k - i));
    return vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
}

void bn_head_f16_neon(const uint16_t *w, size_t k, size_t row0, size_t row1, const float *x, uint32_t n_tok,
                      float *out, size_t out_stride)
{
    for (size_t r = row0; r < row1; r++)
        for (uint32_t t = 0; t < n_tok; t++) out[(size_t)t * out_stride + r] = head_row_f16(w + r * k, x + (size_t)t * k, k);
}

/* Exact int8 x int16 row sum (see ops_avx512.c): SMLAL adds one product
 * per 32-bit lane, at most 256 per lane in a 1024-weight chunk, then the
 * chunk is widened to int64. */
BN_INLINE int64_t head_row_q8(const int8_t *w, const int16_t *x, size_t k)
{
    int64x2_t tot = vdupq_n_s64(0);
    int64_t rest = 0;
    size_t i = 0;
    while (i < k) {
        const size_t end = k - i > 1024 ? i + 1024 : k;
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0;
        for (; i + 8 <= end; i += 8) {
            const int16x8_t wv = vmovl_s8(vld1_s8(w + i));
            const int16x8_t xv = vld1q_s16(x + i);
            a0 = vmlal_s16(a0, vget_low_s16(wv), vget_low_s16(xv));
            a1 = vmlal_high_s16(a1, wv, xv);
        }
        for (; i < end; i++) rest += (int32_t)w[i] * x[i];
        tot = vpadalq_s32(tot, vaddq_s32(a0, a1));
    }
    return vaddvq_s64(tot) + rest;
}

void bn_head_q8_neon(const int8_t *wq, const float *d, size_t k, size_t row0, size_t row1, const int16_t *xq,
                     const float *xs, uint32_t n_tok, float *out, size_t out_stride)
{
    for (size_t r = row0; r < row1; r++)
        for (uint32_t t = 0; t < n_tok; t++)
            out[(size_t)t * out_stride + r] = (float)head_row_q8(wq + r * k, xq + (size_t)t * k, k) * d[r] / xs[t];
}

float bn_dot_f32_neon(const float *a, const float *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    for (; i < n; i += 4) s0 = vfmaq_f32(s0, load4(a + i, n - i), load4(b + i, n - i));
    return vaddvq_f32(vaddq_f32(s0, s1));
}

/* ---- exp, attention, activations --------------------------------------- */

/* e^x as in ops_avx512.c, 2^n built in the exponent field (x clamped so it
 * stays a normal float). */
BN_INLINE float32x4_t exp_ps(float32x4_t x)
{
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.0f)), vdupq_n_f32(88.0f));
    const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145751953125f));
    r = vfmsq_f32(r, n, vdupq_n_f32(1.428606765330187045e-06f));
    float32x4_t p = vdupq_n_f32(1.0f / 720.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

BN_INLINE float32x4_t load_kv(const void *base, int f16, size_t off, size_t left)
{
    if (f16) return load4_f16((const uint16_t *)base + off, left);
    return load4((const float *)base + off, left);
}

void bn_attention_head_neon(const float *q, const void *k, const void *v, int f16, size_t stride, uint32_t head_dim,
                            uint32_t n_kv, float *scores, float *out)
{
    const float scale = 1.0f / sqrtf((float)head_dim);
    /* four positions at a time: four independent FMA chains (ops_avx512.c) */
    uint32_t p = 0;
    for (; p + 4 <= n_kv; p += 4) {
        float32x4_t a[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
        for (uint32_t d = 0; d < head_dim; d += 4) {
            const float32x4_t qd = load4(q + d, head_dim - d);
            for (int j = 0; j < 4; j++)
                a[j] = vfmaq_f32(a[j], qd, load_kv(k, f16, (size_t)(p + (uint32_t)j) * stride + d, head_dim - d));
        }
        for (int j = 0; j < 4; j++) scores[p + (uint32_t)j] = vaddvq_f32(a[j]) * scale;
    }
    for (; p < n_kv; p++) {
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (uint32_t d = 0; d < head_dim; d += 4)
            acc = vfmaq_f32(acc, load4(q + d, head_dim - d), load_kv(k, f16, (size_t)p * stride + d, head_dim - d));
        scores[p] = vaddvq_f32(acc) * scale;
    }
    float max = -INFINITY;
    for (p = 0; p < n_kv; p++)
        if (scores[p] > max) max = scores[p];
    float32x4_t sv = vdupq_n_f32(0.0f);
    for (p = 0; p + 4 <= n_kv; p += 4) {
        const float32x4_t e = exp_ps(vsubq_f32(vld1q_f32(scores + p), vdupq_n_f32(max)));
        vst1q_f32(scores + p, e);
        sv = vaddq_f32(sv, e);
    }
    float sum = vaddvq_f32(sv);
    for (; p < n_kv; p++) {
        scores[p] = expf(scores[p] - max);
        sum += scores[p];
    }
    const float inv = 1.0f / sum;
    /* 32 dims at a time in eight registers, positions inner */
    for (uint32_t d0 = 0; d0 < head_dim; d0 += 32) {
        float32x4_t acc[8];
        const int nv = (int)((head_dim - d0 + 3) / 4 < 8 ? (head_dim - d0 + 3) / 4 : 8);
        for (int i = 0; i < 8; i++) acc[i] = vdupq_n_f32(0.0f);
        for (uint32_t j = 0; j < n_kv; j++) {
            const float wp = scores[j] * inv;
            for (int i = 0; i < nv; i++) {
                const uint32_t d = d0 + 4 * (uint32_t)i;
                acc[i] = vfmaq_n_f32(acc[i], load_kv(v, f16, (size_t)j * stride + d, head_dim - d), wp);
            }
        }
        for (int i = 0; i < nv; i++) store4(out + d0 + 4 * (uint32_t)i, acc[i], head_dim - d0 - 4 * (uint32_t)i);
    }
}

void bn_fp32_to_fp16_neon(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i += 4) {
        const uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(load4(x + i, n - i)));
        if (n - i >= 4) {
            vst1_u16(y + i, h);
        } else {
            uint16_t tmp[4];
            vst1_u16(tmp, h);
            memcpy(y + i, tmp, (n - i) * sizeof(uint16_t));
        }
    }
}

void bn_fp16_to_fp32_neon(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i += 4) store4(y + i, load4_f16(x + i, n - i), n - i);
}

void bn_relu2_mul_neon(const float *g, const float *u, size_t n, float *out)
{
    for (size_t i = 0; i < n; i += 4) {
        /* g > 0 ? g : 0, NaN and -0 included */
        const float32x4_t gv = load4(g + i, n - i);
        const float32x4_t r = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(gv), vcgtq_f32(gv, vdupq_n_f32(0.0f))));
        store4(out + i, vmulq_f32(vmulq_f32(r, r), load4(u + i, n - i)), n - i);
    }
}

void bn_silu_mul_neon(const float *g, const float *u, size_t n, float *out)
{
    for (size_t i = 0; i < n; i += 4) {
        const float32x4_t gv = load4(g + i, n - i);
        const float32x4_t s = vdivq_f32(gv, vaddq_f32(vdupq_n_f32(1.0f), exp_ps(vnegq_f32(gv))));
        store4(out + i, vmulq_f32(s, load4(u + i, n - i)), n - i);
    }
}
