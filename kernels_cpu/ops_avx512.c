/*
 * The float ops of a layer with AVX-512 (F, BW, VL; with F16C and FMA):
 * fused rmsnorm + int8 quantization, the F16 and int8 heads, attention over
 * the KV cache, half-precision rows and the FFN activations. Compiled with
 * -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx2 -mfma -mf16c; called
 * only through the dispatch table.
 *
 * Ragged lengths are handled with masked loads and stores, never by reading
 * past the end of a row. Quantization without a norm weight, relu^2 and the
 * half conversions give the scalar reference's bits exactly (the same
 * float operations element by element); sums are reordered across lanes, so
 * norms, dot products, attention and silu (vector exp) agree with the
 * reference to rounding.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels_isa.h"

#define BN_INLINE static inline __attribute__((always_inline))

BN_INLINE __mmask16 tail_mask(size_t left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1); }

BN_INLINE __m512 abs_ps(__m512 x) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff))); }

/* sum of squares, four chains */
static float sum_squares(const float *x, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        const __m512 c = _mm512_loadu_ps(x + i + 32), d = _mm512_loadu_ps(x + i + 48);
        s0 = _mm512_fmadd_ps(a, a, s0);
        s1 = _mm512_fmadd_ps(b, b, s1);
        s2 = _mm512_fmadd_ps(c, c, s2);
        s3 = _mm512_fmadd_ps(d, d, s3);
    }
    for (; i < n; i += 16) {
        const __m512 a = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
        s0 = _mm512_fmadd_ps(a, a, s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
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

/* h = (x * scale) * w, or x when w == NULL, for 16 (masked) elements. */
BN_INLINE __m512 normed(const float *x, const float *w, __m512 scale, __mmask16 m)
{
    const __m512 v = _mm512_maskz_loadu_ps(m, x);
    if (!w) return v;
    return _mm512_mul_ps(_mm512_mul_ps(v, scale), _mm512_maskz_loadu_ps(m, w));
}

float bn_norm_quantize_row_avx512(const float *x, const float *w, size_t n, float eps, int8_t *q)
{
    float scale_s = 1.0f;
    if (w) scale_s = 1.0f / sqrtf(sum_squares_ordered(x, n) / (float)n + eps);
    const __m512 scale = _mm512_set1_ps(scale_s);
    /* max|h|; NaN lanes lose (max_ps returns its second operand on NaN),
     * as NaN never wins the reference's comparison */
    __m512 mx = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        mx = _mm512_mask_max_ps(mx, m, abs_ps(normed(x + i, w ? w + i : NULL, scale, m)), mx);
    }
    float m = _mm512_reduce_max_ps(mx);
    if (!(m >= 1e-5f)) m = 1e-5f;
    const float s = 127.0f / m;
    const __m512 sv = _mm512_set1_ps(s), lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 mk = tail_mask(n - i);
        __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(normed(x + i, w ? w + i : NULL, scale, mk), sv),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __mmask16 nan = _mm512_cmp_ps_mask(r, r, _CMP_UNORD_Q);
        r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
        r = _mm512_mask_mov_ps(r, nan, _mm512_setzero_ps());
        _mm512_mask_cvtsepi32_storeu_epi8(q + i, mk, _mm512_cvtps_epi32(r));
    }
    return s;
}

void bn_rmsnorm_row_avx512(const float *x, const float *w, size_t n, float eps, float *out)
{
    const __m512 scale = _mm512_set1_ps(1.0f / sqrtf(sum_squares(x, n) / (float)n + eps));
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), scale);
        if (w) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

/* ---- heads ------------------------------------------------------------- */

/* One F16 head row against one token: four FMA chains over 64 elements a
 * step, a masked tail, one reduction. Rows go one at a time so the weights
 * are a single sequential stream: four rows interleaved are four streams
 * 5 KB apart, which the prefetchers follow badly (24 against 36 GB/s on one
 * core of the test machine). Every row of every call takes exactly this
 * sequence, so a logit does not depend on the row range or on the other
 * tokens of the call. */
BN_INLINE float head_row_f16(const uint16_t *w, const float *x, size_t k)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= k; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i))), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i + 16))), _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i + 32))), _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i + 48))), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i < k; i += 16) {
        const __mmask16 m = tail_mask(k - i);
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + i)), _mm512_maskz_loadu_ps(m, x + i), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

void bn_head_f16_avx512(const uint16_t *w, size_t k, size_t row0, size_t row1, const float *x, uint32_t n_tok,
                        float *out, size_t out_stride)
{
    for (size_t r = row0; r < row1; r++)
        for (uint32_t t = 0; t < n_tok; t++) out[(size_t)t * out_stride + r] = head_row_f16(w + r * k, x + (size_t)t * k, k);
}

/* Exact sum of int8 weights times int16 activations. VPDPWSSD adds two
 * products per 32-bit lane; a lane sees at most 64 products per 1024-weight
 * chunk (< 2^28 with |w| <= 127, |x| <= 32767), then the chunk is widened
 * into int64 lanes, so nothing overflows whatever k. One row at a time, as
 * the F16 head, and a third of the float path's instructions. */
BN_INLINE int64_t head_row_q8(const int8_t *w, const int16_t *x, size_t k)
{
    __m512i tot = _mm512_setzero_si512();
    size_t i = 0;
    while (i < k) {
        const size_t end = k - i > 1024 ? i + 1024 : k;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0;
        for (; i + 64 <= end; i += 64) {
            a0 = _mm512_dpwssd_epi32(a0, _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(w + i))),
                                     _mm512_loadu_si512((const void *)(x + i)));
            a1 = _mm512_dpwssd_epi32(a1, _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(w + i + 32))),
                                     _mm512_loadu_si512((const void *)(x + i + 32)));
        }
        for (; i < end; i += 32) {
            const size_t left = end - i;
            const __mmask32 m = left >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << left) - 1);
            a0 = _mm512_dpwssd_epi32(a0, _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, w + i)),
                                     _mm512_maskz_loadu_epi16(m, x + i));
        }
        const __m512i s = _mm512_add_epi32(a0, a1);
        tot = _mm512_add_epi64(tot, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(s)));
        tot = _mm512_add_epi64(tot, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(s, 1)));
    }
    return _mm512_reduce_add_epi64(tot);
}

void bn_head_q8_avx512(const int8_t *wq, const float *d, size_t k, size_t row0, size_t row1, const int16_t *xq,
                       const float *xs, uint32_t n_tok, float *out, size_t out_stride)
{
    for (size_t r = row0; r < row1; r++)
        for (uint32_t t = 0; t < n_tok; t++)
            out[(size_t)t * out_stride + r] = (float)head_row_q8(wq + r * k, xq + (size_t)t * k, k) * d[r] / xs[t];
}

float bn_dot_f32_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* ---- exp, attention, activations --------------------------------------- */

/* e^x for |x| up to ~87: x = n ln2 + r with |r| <= ln2/2, e^r by its
 * degree-6 Taylor polynomial (relative error below 2e-7), times 2^n by
 * VSCALEFPS, which also underflows gracefully to zero. */
BN_INLINE __m512 exp_ps(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-103.0f)), _mm512_set1_ps(88.7f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

BN_INLINE __m512 load_kv(const void *base, int f16, size_t off, __mmask16 m)
{
    if (f16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)base + off));
    return _mm512_maskz_loadu_ps(m, (const float *)base + off);
}

/* q . k_p over the head, one chain per position (dims in order). */
BN_INLINE __m512 qk_chain(__m512 acc, const float *q, const void *k, int f16, size_t off, uint32_t d, __mmask16 m)
{
    return _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + d), load_kv(k, f16, off + d, m), acc);
}

void bn_attention_head_avx512(const float *q, const void *k, const void *v, int f16, size_t stride,
                              uint32_t head_dim, uint32_t n_kv, float *scores, float *out)
{
    const float scale = 1.0f / sqrtf((float)head_dim);
    /* Scores four positions at a time: four independent FMA chains instead
     * of one (each position's own chain and reduction are unchanged). */
    uint32_t p = 0;
    for (; p + 4 <= n_kv; p += 4) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (uint32_t d = 0; d < head_dim; d += 16) {
            const __mmask16 m = tail_mask(head_dim - d);
            a0 = qk_chain(a0, q, k, f16, (size_t)p * stride, d, m);
            a1 = qk_chain(a1, q, k, f16, (size_t)(p + 1) * stride, d, m);
            a2 = qk_chain(a2, q, k, f16, (size_t)(p + 2) * stride, d, m);
            a3 = qk_chain(a3, q, k, f16, (size_t)(p + 3) * stride, d, m);
        }
        scores[p] = _mm512_reduce_add_ps(a0) * scale;
        scores[p + 1] = _mm512_reduce_add_ps(a1) * scale;
        scores[p + 2] = _mm512_reduce_add_ps(a2) * scale;
        scores[p + 3] = _mm512_reduce_add_ps(a3) * scale;
    }
    for (; p < n_kv; p++) {
        __m512 a0 = _mm512_setzero_ps();
        for (uint32_t d = 0; d < head_dim; d += 16) a0 = qk_chain(a0, q, k, f16, (size_t)p * stride, d, tail_mask(head_dim - d));
        scores[p] = _mm512_reduce_add_ps(a0) * scale;
    }
    float max = -INFINITY;
    for (p = 0; p < n_kv; p++)
        if (scores[p] > max) max = scores[p];
    const __m512 mv = _mm512_set1_ps(max);
    __m512 sum = _mm512_setzero_ps();
    for (p = 0; p < n_kv; p += 16) {
        const __mmask16 m = tail_mask(n_kv - p);
        const __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + p), mv));
        _mm512_mask_storeu_ps(scores + p, m, e);
        sum = _mm512_mask_add_ps(sum, m, sum, e);
    }
    const float inv = 1.0f / _mm512_reduce_add_ps(sum);
    /* out = sum_p w_p v_p, 128 dims at a time in eight registers: eight
     * independent chains, and each value row is read once per block. */
    for (uint32_t d0 = 0; d0 < head_dim; d0 += 128) {
        __m512 acc[8];
        __mmask16 mk[8];
        const int nv = (int)((head_dim - d0 + 15) / 16 < 8 ? (head_dim - d0 + 15) / 16 : 8);
        for (int i = 0; i < 8; i++) {
            acc[i] = _mm512_setzero_ps();
            mk[i] = i < nv ? tail_mask(head_dim - d0 - 16 * (uint32_t)i) : 0;
        }
        for (p = 0; p < n_kv; p++) {
            const __m512 wp = _mm512_set1_ps(scores[p] * inv);
            const size_t off = (size_t)p * stride + d0;
            /* all eight, so the accumulators stay in registers; a block
             * narrower than 128 has all-zero masks (no load, no effect) */
            for (int i = 0; i < 8; i++) acc[i] = _mm512_fmadd_ps(wp, load_kv(v, f16, off + 16 * (size_t)i, mk[i]), acc[i]);
        }
        for (int i = 0; i < nv; i++) _mm512_mask_storeu_ps(out + d0 + 16 * (size_t)i, mk[i], acc[i]);
    }
}

void bn_fp32_to_fp16_avx512(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(y + i, m, h);
    }
}

void bn_fp16_to_fp32_avx512(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
    }
}

void bn_relu2_mul_avx512(const float *g, const float *u, size_t n, float *out)
{
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        /* max_ps(g, 0) returns 0 for NaN and for -0, like g > 0 ? g : 0 */
        const __m512 r = _mm512_max_ps(_mm512_maskz_loadu_ps(m, g + i), _mm512_setzero_ps());
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(r, r), _mm512_maskz_loadu_ps(m, u + i)));
    }
}

void bn_silu_mul_avx512(const float *g, const float *u, size_t n, float *out)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 gv = _mm512_maskz_loadu_ps(m, g + i);
        const __m512 s = _mm512_div_ps(gv, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), gv))));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
    }
}
