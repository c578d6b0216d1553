/*
 * Ternary GEMM/GEMV with AArch64 Advanced SIMD. Built twice: as is (every
 * AArch64 CPU) and, through ternary_neon_dotprod.c with
 * -march=armv8.2-a+dotprod, with SDOT (BN_NEON_DOTPROD) for CPUs whose
 * hwcaps list asimddp.
 *
 * A 64-byte group of the packed layout (ternary_pack.h) is four 128-bit
 * quarters of 4 rows each. (v >> 2j) & 3 leaves in each 32-bit lane (row)
 * the codes of weights 16g+4j .. +3, and SDOT by element multiplies them with
 * the four activation bytes x[16g+4j .. +3] (lane j of one 16-byte load of
 * x) and adds them into the lane. Without SDOT the same sum is built from
 * widening multiplies and pairwise adds (|code * q| <= 384, a pair <= 768:
 * int16 is exact). Integers are exact; the float scaling is the scalar
 * sequence, lane by lane.
 */
#include <arm_neon.h>
#include <string.h>

#include "kernels_isa.h"

#define BN_INLINE static inline __attribute__((always_inline))

#if defined(BN_NEON_DOTPROD)
#define GEMM_FN bn_ternary_gemm_neon_dotprod
#define SUMS_FN bn_act_sums_neon_dotprod
#define DOT4(acc, c, x16, lane) vdotq_laneq_s32(acc, c, x16, lane)
#else
#define GEMM_FN bn_ternary_gemm_neon
#define SUMS_FN bn_act_sums_neon
/* acc[r] += sum_b c[4r + b] * x16[4 lane + b] */
#define DOT4(acc, c, x16, lane) dot4_widen(acc, c, x16, lane)
BN_INLINE int32x4_t dot4_widen(int32x4_t acc, int8x16_t c, int8x16_t x16, const int lane)
{
    int8x16_t xb;
    switch (lane) {
    case 0: xb = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x16), 0)); break;
    case 1: xb = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x16), 1)); break;
    case 2: xb = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x16), 2)); break;
    default: xb = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x16), 3)); break;
    }
    const int16x8_t lo = vmull_s8(vget_low_s8(c), vget_low_s8(xb));
    const int16x8_t hi = vmull_high_s8(c, xb);
    return vpadalq_s16(acc, vpaddq_s16(lo, hi));
}
#endif

enum { GROUPS_PER_BLOCK = 256 / BN_TPACK_GROUP, TOKENS_PER_PASS = 4 };

#define PREFETCH_BYTES 3072

/* One quarter (4 rows) of group g, all four j, into acc. */
BN_INLINE int32x4_t quarter_dot(int32x4_t acc, uint8x16_t v, int8x16_t x16)
{
    const uint8x16_t m3 = vdupq_n_u8(3);
    acc = DOT4(acc, vreinterpretq_s8_u8(vandq_u8(v, m3)), x16, 0);
    acc = DOT4(acc, vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 2), m3)), x16, 1);
    acc = DOT4(acc, vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 4), m3)), x16, 2);
    acc = DOT4(acc, vreinterpretq_s8_u8(vshrq_n_u8(v, 6)), x16, 3);
    return acc;
}

/* Integer sums of groups [g0, g1) of one tile, T tokens: acc[4 * t + quarter]. */
BN_INLINE void tile_int(const uint32_t *tile_codes, uint32_t g0, uint32_t g1, const int8_t *const *x, const int T,
                        int32x4_t *acc)
{
    for (int i = 0; i < 4 * T; i++) acc[i] = vdupq_n_s32(0);
    for (uint32_t g = g0; g < g1; g++) {
        const uint8_t *grp = (const uint8_t *)(tile_codes + (size_t)g * BN_TPACK_ROWS);
        if (T == 1) __builtin_prefetch(grp + PREFETCH_BYTES); /* decode streams the weights (see ternary_avx512.c) */
        const uint8x16_t v0 = vld1q_u8(grp), v1 = vld1q_u8(grp + 16), v2 = vld1q_u8(grp + 32), v3 = vld1q_u8(grp + 48);
        for (int t = 0; t < T; t++) {
            const int8x16_t x16 = vld1q_s8(x[t] + BN_TPACK_GROUP * g);
            acc[4 * t + 0] = quarter_dot(acc[4 * t + 0], v0, x16);
            acc[4 * t + 1] = quarter_dot(acc[4 * t + 1], v1, x16);
            acc[4 * t + 2] = quarter_dot(acc[4 * t + 2], v2, x16);
            acc[4 * t + 3] = quarter_dot(acc[4 * t + 3], v3, x16);
        }
    }
}

BN_INLINE void tile_tokens(const struct bn_tpack *w, uint32_t tile, const struct bn_tact *a, uint32_t t0, const int T,
                           float lin_scale, float *out, size_t out_stride, bool accumulate, uint32_t valid)
{
    const uint32_t ng = w->k / BN_TPACK_GROUP, nsum = w->k / BN_ACT_SUM_BLOCK;
    const uint32_t *codes = w->codes + (size_t)tile * ng * BN_TPACK_ROWS;
    const int8_t *x[TOKENS_PER_PASS];
    const int32_t *xs[TOKENS_PER_PASS];
    float32x4_t y[4 * TOKENS_PER_PASS];
    int32x4_t acc[4 * TOKENS_PER_PASS];
    for (int t = 0; t < T; t++) {
        x[t] = a->q + (size_t)(t0 + t) * a->q_stride;
        xs[t] = a->xsum + (size_t)(t0 + t) * nsum;
    }
    if (!w->block_scales) {
        tile_int(codes, 0, ng, x, T, acc);
        for (int t = 0; t < T; t++) {
            int32_t total = 0;
            for (uint32_t b = 0; b < nsum; b++) total += xs[t][b];
            for (int qd = 0; qd < 4; qd++)
                y[4 * t + qd] = vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(acc[4 * t + qd], vdupq_n_s32(total))), w->w_scale);
        }
    } else {
        const uint32_t nb = w->k / 256;
        const float *d = w->d + (size_t)tile * nb * BN_TPACK_ROWS;
        for (int i = 0; i < 4 * T; i++) y[i] = vdupq_n_f32(0.0f);
        for (uint32_t b = 0; b < nb; b++) {
            tile_int(codes, b * GROUPS_PER_BLOCK, (b + 1) * GROUPS_PER_BLOCK, x, T, acc);
            for (int t = 0; t < T; t++) {
                const int32x4_t xb = vdupq_n_s32(xs[t][2 * b] + xs[t][2 * b + 1]);
                for (int qd = 0; qd < 4; qd++) {
                    const float32x4_t db = vld1q_f32(d + (size_t)b * BN_TPACK_ROWS + 4 * qd);
                    const float32x4_t f = vcvtq_f32_s32(vsubq_s32(acc[4 * t + qd], xb));
                    y[4 * t + qd] = vaddq_f32(y[4 * t + qd], vmulq_f32(db, f));
                }
            }
        }
    }
    for (int t = 0; t < T; t++) {
        const float32x4_t s = vdupq_n_f32(a->s[t0 + t]);
        float *o = out + (size_t)(t0 + t) * out_stride + (size_t)tile * BN_TPACK_ROWS;
        for (int qd = 0; qd < 4; qd++) {
            const float32x4_t v = vmulq_n_f32(vdivq_f32(y[4 * t + qd], s), lin_scale);
            if (valid >= (uint32_t)(4 * qd + 4)) {
                vst1q_f32(o + 4 * qd, accumulate ? vaddq_f32(vld1q_f32(o + 4 * qd), v) : v);
            } else {
                float tmp[4];
                vst1q_f32(tmp, v);
                for (uint32_t i = 4 * (uint32_t)qd; i < valid && i < 4 * (uint32_t)qd + 4; i++)
                    o[i] = accumulate ? o[i] + tmp[i - 4 * (uint32_t)qd] : tmp[i - 4 * (uint32_t)qd];
            }
        }
    }
}

void GEMM_FN(const struct bn_tpack *w, uint32_t tile0, uint32_t tile1, const struct bn_tact *a, float lin_scale,
             float *out, size_t out_stride, bool accumulate)
{
    for (uint32_t tile = tile0; tile < tile1; tile++) {
        const uint32_t valid = w->n - tile * BN_TPACK_ROWS;
        for (uint32_t t0 = 0; t0 < a->n_tok; t0 += TOKENS_PER_PASS) {
            const uint32_t nt = a->n_tok - t0 < TOKENS_PER_PASS ? a->n_tok - t0 : TOKENS_PER_PASS;
            switch (nt) {
            case 1: tile_tokens(w, tile, a, t0, 1, lin_scale, out, out_stride, accumulate, valid); break;
            case 2: tile_tokens(w, tile, a, t0, 2, lin_scale, out, out_stride, accumulate, valid); break;
            case 3: tile_tokens(w, tile, a, t0, 3, lin_scale, out, out_stride, accumulate, valid); break;
            default: tile_tokens(w, tile, a, t0, 4, lin_scale, out, out_stride, accumulate, valid); break;
            }
        }
    }
}

void SUMS_FN(const int8_t *q, size_t k, int32_t *xsum)
{
    for (size_t b = 0; b < k / BN_ACT_SUM_BLOCK; b++) {
        const int8_t *p = q + BN_ACT_SUM_BLOCK * b;
        int16x8_t s = vdupq_n_s16(0);
        for (int i = 0; i < 8; i++) s = vpadalq_s8(s, vld1q_s8(p + 16 * i)); /* each lane <= 16 * 128 */
        xsum[b] = vaddlvq_s16(s);
    }
}
