/*
 * Ternary GEMM/GEMV with AVX-512 VNNI (compiled with -mavx512f -mavx512bw
 * -mavx512vl -mavx512vnni; called only when cpuid says so).
 *
 * One 512-bit load is one group of a tile: 16 rows x 16 codes
 * (ternary_pack.h). (v >> 2j) & 3 puts in each 32-bit lane the codes of
 * weights 16g+4j .. +3 of that lane's row, and VPDPBUSD multiplies them
 * (unsigned) with a broadcast of the same four activation bytes (signed),
 * adding the four products into the lane: 64 multiply-adds per instruction,
 * 16 rows at once, no horizontal sums. Lanes are rows, so the per-block
 * float scaling of TQ runs down the lanes in block order, as in the
 * scalar reference, and the result of a row never depends on its tile-mates,
 * the batch size or the thread split.
 *
 * Decode (one token) is bound by memory: four accumulators keep four
 * VPDPBUSD chains in flight so the core can use the bandwidth. Prefill runs
 * up to 8 tokens per pass over a tile, so each decoded code vector feeds 8
 * tokens; two accumulators per token hide the instruction latency.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels_isa.h"

#define BN_INLINE static inline __attribute__((always_inline))

enum { GROUPS_PER_BLOCK = 256 / BN_TPACK_GROUP, TOKENS_PER_PASS = 8 };

/* Decode streams the weights once: the hardware prefetcher alone reaches
 * ~31 GB/s on one core of the test machine, a software prefetch 3 KB ahead
 * ~36 GB/s (bench/bench_kernels.c). A prefetch past the end never faults. */
#define PREFETCH_BYTES 3072

/* The four j of one group: acc_j += per lane the four codes of c[j] times
 * x[p+4j .. p+4j+3] (broadcast). The pair form adds j = 0, 2 into e and
 * j = 1, 3 into o. */
#if defined(__GNUC__) && !defined(__clang__)
/* GCC 12 neither keeps a VPDPBUSD accumulator in place across loop
 * iterations (it copies it through a spare register twice per use) nor
 * folds the broadcast into the instruction: twice the instructions per
 * 64 bytes of weights that clang emits. Spelled out, each instruction takes
 * the four activation bytes as an embedded {1to16} broadcast and updates
 * its accumulator in place; all four of a group go in one statement, or
 * GCC copies the accumulators anyway. */
BN_INLINE void dpbusd_x4_group(__m512i *a0, __m512i *a1, __m512i *a2, __m512i *a3, const __m512i c[4],
                               const int8_t *p)
{
    __asm__("vpdpbusd %8%{1to16%}, %4, %0\n\t"
            "vpdpbusd %9%{1to16%}, %5, %1\n\t"
            "vpdpbusd %10%{1to16%}, %6, %2\n\t"
            "vpdpbusd %11%{1to16%}, %7, %3"
            : "+v"(*a0), "+v"(*a1), "+v"(*a2), "+v"(*a3)
            : "v"(c[0]), "v"(c[1]), "v"(c[2]), "v"(c[3]), "m"(*(const int8_t(*)[4])p),
              "m"(*(const int8_t(*)[4])(p + 4)), "m"(*(const int8_t(*)[4])(p + 8)), "m"(*(const int8_t(*)[4])(p + 12)));
}

BN_INLINE void dpbusd_x4_pair(__m512i *e, __m512i *o, const __m512i c[4], const int8_t *p)
{
    __asm__("vpdpbusd %6%{1to16%}, %2, %0\n\t"
            "vpdpbusd %7%{1to16%}, %3, %1\n\t"
            "vpdpbusd %8%{1to16%}, %4, %0\n\t"
            "vpdpbusd %9%{1to16%}, %5, %1"
            : "+v"(*e), "+v"(*o)
            : "v"(c[0]), "v"(c[1]), "v"(c[2]), "v"(c[3]), "m"(*(const int8_t(*)[4])p),
              "m"(*(const int8_t(*)[4])(p + 4)), "m"(*(const int8_t(*)[4])(p + 8)), "m"(*(const int8_t(*)[4])(p + 12)));
}
#else
BN_INLINE __m512i dpbusd_x4(__m512i acc, __m512i codes, const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_dpbusd_epi32(acc, codes, _mm512_set1_epi32(v));
}

BN_INLINE void dpbusd_x4_group(__m512i *a0, __m512i *a1, __m512i *a2, __m512i *a3, const __m512i c[4],
                               const int8_t *p)
{
    *a0 = dpbusd_x4(*a0, c[0], p);
    *a1 = dpbusd_x4(*a1, c[1], p + 4);
    *a2 = dpbusd_x4(*a2, c[2], p + 8);
    *a3 = dpbusd_x4(*a3, c[3], p + 12);
}

BN_INLINE void dpbusd_x4_pair(__m512i *e, __m512i *o, const __m512i c[4], const int8_t *p)
{
    *e = dpbusd_x4(*e, c[0], p);
    *o = dpbusd_x4(*o, c[1], p + 4);
    *e = dpbusd_x4(*e, c[2], p + 8);
    *o = dpbusd_x4(*o, c[3], p + 12);
}
#endif

/* Codes of one group: c[j] holds, per lane, the codes of weights 16g+4j..+3. */
BN_INLINE void decode_group(const uint32_t *grp, __m512i c[4])
{
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m512i v = _mm512_load_si512((const void *)grp);
    c[0] = _mm512_and_si512(v, m3);
    c[1] = _mm512_and_si512(_mm512_srli_epi32(v, 2), m3);
    c[2] = _mm512_and_si512(_mm512_srli_epi32(v, 4), m3);
    c[3] = _mm512_and_si512(_mm512_srli_epi32(v, 6), m3);
}

/* One token: four chains (one per j), so four VPDPBUSD are in flight and
 * decode runs at memory speed. */
static __m512i tile_int_one(const uint32_t *tile_codes, uint32_t g0, uint32_t g1, const int8_t *x)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (uint32_t g = g0; g < g1; g++) {
        __m512i c[4];
        _mm_prefetch((const char *)(tile_codes + (size_t)g * BN_TPACK_ROWS) + PREFETCH_BYTES, _MM_HINT_T0);
        decode_group(tile_codes + (size_t)g * BN_TPACK_ROWS, c);
        const int8_t *xp = x + BN_TPACK_GROUP * g;
        dpbusd_x4_group(&a0, &a1, &a2, &a3, c, xp);
    }
    return _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
}

/* Integer sums over groups [g0, g1) of one tile for T tokens; more than
 * one token keeps two chains per token. */
BN_INLINE void tile_int(const uint32_t *tile_codes, uint32_t g0, uint32_t g1, const int8_t *const *x, const int T,
                        __m512i *acc)
{
    if (T == 1) {
        acc[0] = tile_int_one(tile_codes, g0, g1, x[0]);
        return;
    }
    __m512i e[TOKENS_PER_PASS], o[TOKENS_PER_PASS];
    for (int t = 0; t < T; t++) e[t] = o[t] = _mm512_setzero_si512();
    for (uint32_t g = g0; g < g1; g++) {
        __m512i c[4];
        decode_group(tile_codes + (size_t)g * BN_TPACK_ROWS, c);
        for (int t = 0; t < T; t++) {
            dpbusd_x4_pair(&e[t], &o[t], c, x[t] + BN_TPACK_GROUP * g);
        }
    }
    for (int t = 0; t < T; t++) acc[t] = _mm512_add_epi32(e[t], o[t]);
}

/* One tile, tokens t0 .. t0+T-1: y as in ternary_pack.h, stored (or added)
 * for the valid rows (mask). */
BN_INLINE void tile_tokens(const struct bn_tpack *w, uint32_t tile, const struct bn_tact *a, uint32_t t0,
                           const int T, float lin_scale, float *out, size_t out_stride, bool accumulate,
                           __mmask16 rows)
{
    const uint32_t ng = w->k / BN_TPACK_GROUP, nsum = w->k / BN_ACT_SUM_BLOCK;
    const uint32_t *codes = w->codes + (size_t)tile * ng * BN_TPACK_ROWS;
    const int8_t *x[TOKENS_PER_PASS];
    const int32_t *xs[TOKENS_PER_PASS];
    __m512 y[TOKENS_PER_PASS];
    __m512i acc[TOKENS_PER_PASS];
    for (int t = 0; t < T; t++) {
        x[t] = a->q + (size_t)(t0 + t) * a->q_stride;
        xs[t] = a->xsum + (size_t)(t0 + t) * nsum;
    }
    if (!w->block_scales) {
        tile_int(codes, 0, ng, x, T, acc);
        const __m512 ws = _mm512_set1_ps(w->w_scale);
        for (int t = 0; t < T; t++) {
            int32_t total = 0;
            for (uint32_t b = 0; b < nsum; b++) total += xs[t][b];
            acc[t] = _mm512_sub_epi32(acc[t], _mm512_set1_epi32(total));
            y[t] = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[t]), ws);
        }
    } else {
        const uint32_t nb = w->k / 256;
        const float *d = w->d + (size_t)tile * nb * BN_TPACK_ROWS;
        for (int t = 0; t < T; t++) y[t] = _mm512_setzero_ps();
        for (uint32_t b = 0; b < nb; b++) {
            tile_int(codes, b * GROUPS_PER_BLOCK, (b + 1) * GROUPS_PER_BLOCK, x, T, acc);
            const __m512 db = _mm512_load_ps(d + (size_t)b * BN_TPACK_ROWS);
            for (int t = 0; t < T; t++) {
                const __m512i ab = _mm512_sub_epi32(acc[t], _mm512_set1_epi32(xs[t][2 * b] + xs[t][2 * b + 1]));
                y[t] = _mm512_add_ps(y[t], _mm512_mul_ps(db, _mm512_cvtepi32_ps(ab)));
            }
        }
    }
    const __m512 ls = _mm512_set1_ps(lin_scale);
    for (int t = 0; t < T; t++) {
        __m512 v = _mm512_mul_ps(_mm512_div_ps(y[t], _mm512_set1_ps(a->s[t0 + t])), ls);
        float *o = out + (size_t)(t0 + t) * out_stride + (size_t)tile * BN_TPACK_ROWS;
        if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(rows, o), v);
        _mm512_mask_storeu_ps(o, rows, v);
    }
}

void bn_ternary_gemm_avx512(const struct bn_tpack *w, uint32_t tile0, uint32_t tile1, const struct bn_tact *a,
                            float lin_scale, float *out, size_t out_stride, bool accumulate)
{
    for (uint32_t tile = tile0; tile < tile1; tile++) {
        const uint32_t left = w->n - tile * BN_TPACK_ROWS;
        const __mmask16 rows = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        for (uint32_t t0 = 0; t0 < a->n_tok; t0 += TOKENS_PER_PASS) {
            const uint32_t nt = a->n_tok - t0 < TOKENS_PER_PASS ? a->n_tok - t0 : TOKENS_PER_PASS;
            /* One specialization per token count keeps the accumulators in registers. */
            switch (nt) {
            case 1: tile_tokens(w, tile, a, t0, 1, lin_scale, out, out_stride, accumulate, rows); break;
            case 2: tile_tokens(w, tile, a, t0, 2, lin_scale, out, out_stride, accumulate, rows); break;
            case 3: tile_tokens(w, tile, a, t0, 3, lin_scale, out, out_stride, accumulate, rows); break;
            case 4: tile_tokens(w, tile, a, t0, 4, lin_scale, out, out_stride, accumulate, rows); break;
            case 5: tile_tokens(w, tile, a, t0, 5, lin_scale, out, out_stride, accumulate, rows); break;
            case 6: tile_tokens(w, tile, a, t0, 6, lin_scale, out, out_stride, accumulate, rows); break;
            case 7: tile_tokens(w, tile, a, t0, 7, lin_scale, out, out_stride, accumulate, rows); break;
            default: tile_tokens(w, tile, a, t0, 8, lin_scale, out, out_stride, accumulate, rows); break;
            }
        }
    }
}

void bn_act_sums_avx512(const int8_t *q, size_t k, int32_t *xsum)
{
    /* VPDPBUSD with all-ones unsigned bytes sums four signed bytes per lane. */
    const __m512i ones = _mm512_set1_epi8(1);
    for (size_t b = 0; b < k / BN_ACT_SUM_BLOCK; b++) {
        const int8_t *p = q + BN_ACT_SUM_BLOCK * b;
        __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512((const void *)p));
        s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512((const void *)(p + 64)));
        xsum[b] = _mm512_reduce_add_epi32(s);
    }
}
