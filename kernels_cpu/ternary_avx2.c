/*
 * Ternary GEMM/GEMV with AVX2 (compiled with -mavx2 -mfma -mf16c; called
 * only when cpuid says so). For machines without AVX-512 VNNI.
 *
 * A 64-byte group of the packed layout (ternary_pack.h) is two 256-bit
 * halves, rows 0-7 and rows 8-15 of the tile. Per half, (v >> 2j) & 3 gives
 * each 32-bit lane (row) the codes of weights 16g+4j .. +3; VPMADDUBSW
 * multiplies them with a broadcast of the four activation bytes and adds
 * pairs into int16, and VPMADDWD with ones later adds the pairs into int32.
 *
 * Overflow: |code * q| <= 3 * 128 = 384, a VPMADDUBSW pair <= 768, the four
 * j of one group <= 3072, and 8 groups (128 weights) <= 24576 < 32767; so
 * int16 sums are widened to int32 every 8 groups, which also falls on every
 * I2_S 128-block and TQ 256-block boundary. The integers are exact.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels_isa.h"

#define BN_INLINE static inline __attribute__((always_inline))

enum { GROUPS_PER_WIDEN = 8, GROUPS_PER_BLOCK = 256 / BN_TPACK_GROUP, TOKENS_PER_PASS = 4 };

#define PREFETCH_BYTES 3072

BN_INLINE __m256i bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

BN_INLINE void decode_half(const uint32_t *half, __m256i c[4])
{
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i v = _mm256_load_si256((const __m256i *)half);
    c[0] = _mm256_and_si256(v, m3);
    c[1] = _mm256_and_si256(_mm256_srli_epi32(v, 2), m3);
    c[2] = _mm256_and_si256(_mm256_srli_epi32(v, 4), m3);
    c[3] = _mm256_and_si256(_mm256_srli_epi32(v, 6), m3);
}

/* sum over j of code_j * x_j, as int16 pairs */
BN_INLINE __m256i group_dot16(const __m256i c[4], const int8_t *xp)
{
    const __m256i p0 = _mm256_maddubs_epi16(c[0], bcast4(xp));
    const __m256i p1 = _mm256_maddubs_epi16(c[1], bcast4(xp + 4));
    const __m256i p2 = _mm256_maddubs_epi16(c[2], bcast4(xp + 8));
    const __m256i p3 = _mm256_maddubs_epi16(c[3], bcast4(xp + 12));
    return _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
}

/* Integer sums over groups [g0, g1) (a multiple of 8 apart) of one half
 * tile (8 rows) for T tokens. */
BN_INLINE void half_int(const uint32_t *tile_codes, int half, uint32_t g0, uint32_t g1, const int8_t *const *x,
                        const int T, __m256i *acc)
{
    const __m256i ones = _mm256_set1_epi16(1);
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_si256();
    for (uint32_t g = g0; g < g1; g += GROUPS_PER_WIDEN) {
        __m256i s[TOKENS_PER_PASS];
        for (int t = 0; t < T; t++) s[t] = _mm256_setzero_si256();
        for (uint32_t gg = g; gg < g + GROUPS_PER_WIDEN; gg++) {
            __m256i c[4];
            /* the first half's pass streams the tile from memory (see ternary_avx512.c) */
            if (T == 1 && half == 0)
                _mm_prefetch((const char *)(tile_codes + (size_t)gg * BN_TPACK_ROWS) + PREFETCH_BYTES, _MM_HINT_T0);
            decode_half(tile_codes + (size_t)gg * BN_TPACK_ROWS + 8 * half, c);
            for (int t = 0; t < T; t++) s[t] = _mm256_add_epi16(s[t], group_dot16(c, x[t] + BN_TPACK_GROUP * gg));
        }
        for (int t = 0; t < T; t++) acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(s[t], ones));
    }
}

/* Stores (or adds) 8 results for rows row0 .. row0+7, the first `valid` of them. */
BN_INLINE void store8(float *o, __m256 v, uint32_t valid, bool accumulate)
{
    if (valid >= 8) {
        if (accumulate) v = _mm256_add_ps(_mm256_loadu_ps(o), v);
        _mm256_storeu_ps(o, v);
        return;
    }
    float tmp[8];
    _mm256_storeu_ps(tmp, v);
    for (uint32_t i = 0; i < valid; i++) o[i] = accumulate ? o[i] + tmp[i] : tmp[i];
}

BN_INLINE void half_tokens(const struct bn_tpack *w, uint32_t tile, int half, const struct bn_tact *a, uint32_t t0,
                           const int T, float lin_scale, float *out, size_t out_stride, bool accumulate,
                           uint32_t valid)
{
    const uint32_t ng = w->k / BN_TPACK_GROUP, nsum = w->k / BN_ACT_SUM_BLOCK;
    const uint32_t *codes = w->codes + (size_t)tile * ng * BN_TPACK_ROWS;
    const int8_t *x[TOKENS_PER_PASS];
    const int32_t *xs[TOKENS_PER_PASS];
    __m256 y[TOKENS_PER_PASS];
    __m256i acc[TOKENS_PER_PASS];
    for (int t = 0; t < T; t++) {
        x[t] = a->q + (size_t)(t0 + t) * a->q_stride;
        xs[t] = a->xsum + (size_t)(t0 + t) * nsum;
    }
    if (!w->block_scales) {
        half_int(codes, half, 0, ng, x, T, acc);
        const __m256 ws = _mm256_set1_ps(w->w_scale);
        for (int t = 0; t < T; t++) {
            int32_t total = 0;
            for (uint32_t b = 0; b < nsum; b++) total += xs[t][b];
            y[t] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[t], _mm256_set1_epi32(total))), ws);
        }
    } else {
        const uint32_t nb = w->k / 256;
        const float *d = w->d + (size_t)tile * nb * BN_TPACK_ROWS + 8 * half;
        for (int t = 0; t < T; t++) y[t] = _mm256_setzero_ps();
        for (uint32_t b = 0; b < nb; b++) {
            half_int(codes, half, b * GROUPS_PER_BLOCK, (b + 1) * GROUPS_PER_BLOCK, x, T, acc);
            const __m256 db = _mm256_load_ps(d + (size_t)b * BN_TPACK_ROWS);
            for (int t = 0; t < T; t++) {
                const __m256i ab = _mm256_sub_epi32(acc[t], _mm256_set1_epi32(xs[t][2 * b] + xs[t][2 * b + 1]));
                y[t] = _mm256_add_ps(y[t], _mm256_mul_ps(db, _mm256_cvtepi32_ps(ab)));
            }
        }
    }
    const __m256 ls = _mm256_set1_ps(lin_scale);
    for (int t = 0; t < T; t++) {
        const __m256 v = _mm256_mul_ps(_mm256_div_ps(y[t], _mm256_set1_ps(a->s[t0 + t])), ls);
        store8(out + (size_t)(t0 + t) * out_stride + (size_t)tile * BN_TPACK_ROWS + 8 * half, v, valid, accumulate);
    }
}

void bn_ternary_gemm_avx2(const struct bn_tpack *w, uint32_t tile0, uint32_t tile1, const struct bn_tact *a,
                          float lin_scale, float *out, size_t out_stride, bool accumulate)
{
    for (uint32_t tile = tile0; tile < tile1; tile++) {
        for (int half = 0; half < 2; half++) {
            const uint32_t row0 = tile * BN_TPACK_ROWS + 8 * (uint32_t)half;
            if (row0 >= w->n) break;
            const uint32_t valid = w->n - row0;
            for (uint32_t t0 = 0; t0 < a->n_tok; t0 += TOKENS_PER_PASS) {
                const uint32_t nt = a->n_tok - t0 < TOKENS_PER_PASS ? a->n_tok - t0 : TOKENS_PER_PASS;
                switch (nt) {
                case 1: half_tokens(w, tile, half, a, t0, 1, lin_scale, out, out_stride, accumulate, valid); break;
                case 2: half_tokens(w, tile, half, a, t0, 2, lin_scale, out, out_stride, accumulate, valid); break;
                case 3: half_tokens(w, tile, half, a, t0, 3, lin_scale, out, out_stride, accumulate, valid); break;
                default: half_tokens(w, tile, half, a, t0, 4, lin_scale, out, out_stride, accumulate, valid); break;
                }
            }
        }
    }
}

void bn_act_sums_avx2(const int8_t *q, size_t k, int32_t *xsum)
{
    /* VPMADDUBSW with all-ones unsigned bytes: pairs of signed bytes as int16. */
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (size_t b = 0; b < k / BN_ACT_SUM_BLOCK; b++) {
        const int8_t *p = q + BN_ACT_SUM_BLOCK * b;
        __m256i s = _mm256_setzero_si256();
        for (int i = 0; i < 4; i++)
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(ones8, _mm256_loadu_si256((const __m256i *)(p + 32 * i))));
        s = _mm256_madd_epi16(s, ones16);
        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
        xsum[b] = _mm_cvtsi128_si32(h);
    }
}
