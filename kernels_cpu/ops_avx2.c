/*
 * The float ops of a layer with AVX2 + FMA + F16C (compiled with -mavx2
 * -mfma -mf16c; called only through the dispatch table). Same structure
 * and the same exactness promises as ops_avx512.c, 8 lanes wide; ragged
 * ends go through a small zero-padded copy instead of masked loads.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels_isa.h"

#define BN_INLINE static inline __attribute__((always_inline))

/* The first `left` (< 8) floats at p, zero-padded. */
BN_INLINE __m256 load_part(const float *p, size_t left)
{
    float tmp[8] = {0};
    memcpy(tmp, p, left * sizeof(float));
    return _mm256_loadu_ps(tmp);
}

BN_INLINE void store_part(float *p, __m256 v, size_t left)
{
    float tmp[8];
    _mm256_storeu_ps(tmp, v);
    memcpy(p, tmp, left * sizeof(float));
}

BN_INLINE __m256 load8(const float *p, size_t left) { return left >= 8 ? _mm256_loadu_ps(p) : load_part(p, left); }

BN_INLINE void store8(float *p, __m256 v, size_t left)
{
    if (left >= 8) _mm256_storeu_ps(p, v);
    else store_part(p, v, left);
}

BN_INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

BN_INLINE float hmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

BN_INLINE __m256 abs_ps(__m256 x) { return _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }

static float sum_squares(const float *x, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        const __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
        s2 = _mm256_fmadd_ps(c, c, s2);
        s3 = _mm256_fmadd_ps(d, d, s3);
    }
    for (; i < n; i += 8) {
        const __m256 a = load8(x + i, n - i);
        s0 = _mm256_fmadd_ps(a, a, s0);
    }
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

BN_INLINE __m256 normed(const float *x, const float *w, __m256 scale, size_t left)
{
    const __m256 v = load8(x, left);
    if (!w) return v;
    return _mm256_mul_ps(_mm256_mul_ps(v, scale), load8(w, left));
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

float bn_norm_quantize_row_avx2(const float *x, const float *w, size_t n, float eps, int8_t *q)
{
    float scale_s = 1.0f;
    if (w) scale_s = 1.0f / sqrtf(sum_squares_ordered(x, n) / (float)n + eps);
    const __m256 scale = _mm256_set1_ps(scale_s);
    /* padding lanes are 0 and cannot raise the max; NaN lanes lose, as in the reference */
    __m256 mx = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 8) mx = _mm256_max_ps(abs_ps(normed(x + i, w ? w + i : NULL, scale, n - i)), mx);
    float m = hmax(mx);
    if (!(m >= 1e-5f)) m = 1e-5f;
    const float s = 127.0f / m;
    const __m256 sv = _mm256_set1_ps(s), lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
    for (size_t i = 0; i < n; i += 8) {
        __m256 r = _mm256_round_ps(_mm256_mul_ps(normed(x + i, w ? w + i : NULL, scale, n - i), sv),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m256 ok = _mm256_cmp_ps(r, r, _CMP_ORD_Q);
        r = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(r, lo), hi), ok); /* NaN -> 0 */
        const __m256i v = _mm256_cvtps_epi32(r);
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        const __m128i w8 = _mm_packs_epi16(w16, w16);
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, w8);
        memcpy(q + i, tmp, n - i >= 8 ? 8 : n - i);
    }
    return s;
}

void bn_rmsnorm_row_avx2(const float *x, const float *w, size_t n, float eps, float *out)
{
    const __m256 scale = _mm256_set1_ps(1.0f / sqrtf(sum_squares(x, n) / (float)n + eps));
    for (size_t i = 0; i < n; i += 8) {
        __m256 v = _mm256_mul_ps(load8(x + i, n - i), scale);
        if (w) v = _mm256_mul_ps(v, load8(w + i, n - i));
        store8(out + i, v, n - i);
    }
}

/* ---- heads ------------------------------------------------------------- */

/* 8 halves at p (the first `left` of them when fewer), widened exactly. */
BN_INLINE __m256 load_h8(const uint16_t *p, size_t left)
{
    if (left >= 8) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    uint16_t tmp[8] = {0};
    memcpy(tmp, p, left * sizeof(uint16_t));
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tmp));
}

/* One F16 head row against one token, four chains over 32 elements a
 * step; one row at a time keeps the weights one sequential stream (see
 * ops_avx512.c), and the sequence never depends on the call's other rows
 * or tokens. */
BN_INLINE float head_row_f16(const uint16_t *w, const float *x, size_t k)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= k; i += 32) {
        a0 = _mm256_fmadd_ps(load_h8(w + i, 8), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(load_h8(w + i + 8, 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_h8(w + i + 16, 8), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_h8(w + i + 24, 8), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i < k; i += 8) a0 = _mm256_fmadd_ps(load_h8(w + i, k - i), load8(x + i, k - i), a0);
    return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

void bn_head_f16_avx2(const uint16_t *w, size_t k, size_t row0, size_t row1, const float *x, uint32_t n_tok,
                      float *out, size_t out_stride)
{
    for (size_t r = row0; r < row1; r++)
        for (uint32_t t = 0; t < n_tok; t++) out[(size_t)t * out_stride + r] = head_row_f16(w + r * k, x + (size_t)t * k, k);
}

/* Exact int8 x int16 row sum (see ops_avx512.c): VPMADDWD adds two
 * products per 32-bit lane, at most 128 per lane in a 1024-weight chunk,
 * then the chunk is widened to int64. */
BN_INLINE int64_t head_row_q8(const int8_t *w, const int16_t *x, size_t k)
{
    __m256i tot = _mm256_setzero_si256();
    size_t i = 0;
    while (i < k) {
        const size_t end = k - i > 1024 ? i + 1024 : k;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0;
        for (; i + 32 <= end; i += 32) {
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + i))),
                                                        _mm256_loadu_si256((const __m256i *)(x + i))));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + i + 16))),
                                                        _mm256_loadu_si256((const __m256i *)(x + i + 16))));
        }
        int64_t rest = 0;
        for (; i < end; i++) rest += (int32_t)w[i] * x[i];
        const __m256i s = _mm256_add_epi32(a0, a1);
        tot = _mm256_add_epi64(tot, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(s)));
        tot = _mm256_add_epi64(tot, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(s, 1)));
        tot = _mm256_add_epi64(tot, _mm256_set_epi64x(0, 0, 0, rest));
    }
    int64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, tot);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

void bn_head_q8_avx2(const int8_t *wq, const float *d, size_t k, size_t row0, size_t row1, const int16_t *xq,
                     const float *xs, uint32_t n_tok, float *out, size_t out_stride)
{
    for (size_t r = row0; r < row1; r++)
        for (uint32_t t = 0; t < n_tok; t++)
            out[(size_t)t * out_stride + r] = (float)head_row_q8(wq + r * k, xq + (size_t)t * k, k) * d[r] / xs[t];
}

float bn_dot_f32_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i < n; i += 8) s0 = _mm256_fmadd_ps(load8(a + i, n - i), load8(b + i, n - i), s0);
    return hsum(_mm256_add_ps(s0, s1));
}

/* ---- exp, attention, activations --------------------------------------- */

/* e^x as in ops_avx512.c; 2^n is built in the exponent field, so x is
 * clamped to where that stays a normal float. */
BN_INLINE __m256 exp_ps(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

BN_INLINE __m256 load_kv(const void *base, int f16, size_t off, size_t left)
{
    if (f16) return load_h8((const uint16_t *)base + off, left);
    return load8((const float *)base + off, left);
}

void bn_attention_head_avx2(const float *q, const void *k, const void *v, int f16, size_t stride, uint32_t head_dim,
                            uint32_t n_kv, float *scores, float *out)
{
    const float scale = 1.0f / sqrtf((float)head_dim);
    /* four positions at a time: four independent FMA chains (ops_avx512.c) */
    uint32_t p = 0;
    for (; p + 4 <= n_kv; p += 4) {
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (uint32_t d = 0; d < head_dim; d += 8) {
            const __m256 qd = load8(q + d, head_dim - d);
            for (int j = 0; j < 4; j++)
                a[j] = _mm256_fmadd_ps(qd, load_kv(k, f16, (size_t)(p + (uint32_t)j) * stride + d, head_dim - d), a[j]);
        }
        for (int j = 0; j < 4; j++) scores[p + (uint32_t)j] = hsum(a[j]) * scale;
    }
    for (; p < n_kv; p++) {
        __m256 acc = _mm256_setzero_ps();
        for (uint32_t d = 0; d < head_dim; d += 8)
            acc = _mm256_fmadd_ps(load8(q + d, head_dim - d), load_kv(k, f16, (size_t)p * stride + d, head_dim - d), acc);
        scores[p] = hsum(acc) * scale;
    }
    float max = -INFINITY;
    for (p = 0; p < n_kv; p++)
        if (scores[p] > max) max = scores[p];
    const __m256 mv = _mm256_set1_ps(max);
    float sum = 0.0f;
    __m256 sv = _mm256_setzero_ps();
    for (p = 0; p + 8 <= n_kv; p += 8) {
        const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(scores + p), mv));
        _mm256_storeu_ps(scores + p, e);
        sv = _mm256_add_ps(sv, e);
    }
    sum = hsum(sv);
    for (; p < n_kv; p++) {
        scores[p] = expf(scores[p] - max);
        sum += scores[p];
    }
    const float inv = 1.0f / sum;
    /* 32 dims at a time in four registers, positions inner */
    for (uint32_t d0 = 0; d0 < head_dim; d0 += 32) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        const int nv = (int)((head_dim - d0 + 7) / 8 < 4 ? (head_dim - d0 + 7) / 8 : 4);
        for (uint32_t j = 0; j < n_kv; j++) {
            const __m256 wp = _mm256_set1_ps(scores[j] * inv);
            for (int i = 0; i < nv; i++) {
                const uint32_t d = d0 + 8 * (uint32_t)i;
                acc[i] = _mm256_fmadd_ps(wp, load_kv(v, f16, (size_t)j * stride + d, head_dim - d), acc[i]);
            }
        }
        for (int i = 0; i < nv; i++) store8(out + d0 + 8 * (uint32_t)i, acc[i], head_dim - d0 - 8 * (uint32_t)i);
    }
}

void bn_fp32_to_fp16_avx2(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(load8(x + i, n - i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        if (n - i >= 8) {
            _mm_storeu_si128((__m128i *)(y + i), h);
        } else {
            uint16_t tmp[8];
            _mm_storeu_si128((__m128i *)tmp, h);
            memcpy(y + i, tmp, (n - i) * sizeof(uint16_t));
        }
    }
}

void bn_fp16_to_fp32_avx2(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i += 8) store8(y + i, load_h8(x + i, n - i), n - i);
}

void bn_relu2_mul_avx2(const float *g, const float *u, size_t n, float *out)
{
    for (size_t i = 0; i < n; i += 8) {
        const __m256 r = _mm256_max_ps(load8(g + i, n - i), _mm256_setzero_ps());
        store8(out + i, _mm256_mul_ps(_mm256_mul_ps(r, r), load8(u + i, n - i)), n - i);
    }
}

void bn_silu_mul_avx2(const float *g, const float *u, size_t n, float *out)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 8) {
        const __m256 gv = load8(g + i, n - i);
        const __m256 s = _mm256_div_ps(gv, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), gv))));
        store8(out + i, _mm256_mul_ps(s, load8(u + i, n - i)), n - i);
    }
}
