/*
 * dispatch.h - the table of CPU kernels for one instruction set, chosen once
 * at start-up.
 *
 *     const struct bn_cpu_kernels *kr = bn_cpu_kernels_best();
 *     kr->ternary_gemm(&pack, 0, pack.n_tiles, &act, 1.0f, out, n, false);
 *
 * bn_cpu_kernels_best() reads cpuid (x86) or the hwcaps (aarch64) on its
 * first call and picks the widest instruction set that both the CPU and this
 * build support: avx512 (AVX-512 F+BW+VL+VNNI, with F16C and FMA), avx2
 * (AVX2+FMA+F16C), neon-dotprod, neon, or scalar. The environment variable
 * BITNET_CPU=scalar|avx2|avx512|neon|neon-dotprod lowers the choice (to test
 * the slower paths on a fast machine); asking for more than the CPU has
 * falls back to the best it does have, and bn_cpu_kernels_note() says so.
 *
 * The choice is the library's one piece of global state: a pointer written
 * once under pthread_once and read-only afterwards. The tables themselves
 * are const. Tests reach every table directly with bn_cpu_kernels_get().
 *
 * Every entry computes what the scalar reference of kernels.h computes:
 * integers and the int8 quantization (q and s) bit for bit, other floats up
 * to rounding (normalized MSE below 1e-7 in tests/test_simd.c). Entries are pure functions of their arguments and
 * thread-safe; threading is the caller's (kernels_cpu/threadpool.h).
 */
#ifndef BN_DISPATCH_H
#define BN_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ternary_pack.h"

enum bn_cpu_isa {
    BN_CPU_SCALAR,
    BN_CPU_AVX2,
    BN_CPU_AVX512,
    BN_CPU_NEON,
    BN_CPU_NEON_DOTPROD,
    BN_CPU_ISA_COUNT,
};

struct bn_cpu_kernels {
    enum bn_cpu_isa isa;
    const char *name; /* "scalar", "avx2", "avx512", "neon", "neon-dotprod" */

    /* Ternary GEMM (GEMV when a->n_tok == 1) over the packed layout, tiles
     * [tile0, tile1); see ternary_pack.h for the exact numerics. */
    void (*ternary_gemm)(const struct bn_tpack *w, uint32_t tile0, uint32_t tile1, const struct bn_tact *a,
                         float lin_scale, float *out, size_t out_stride, bool accumulate);
    /* xsum[b] = sum of q over weights 128b .. 128b + 127 (k a multiple of 128) */
    void (*act_sums)(const int8_t *q, size_t k, int32_t *xsum);
    /* Fused rmsnorm + int8 quantization of one row (DESIGN.md section 5):
     * h = x / sqrt(mean(x^2) + eps) * w when w != NULL, else h = x; then
     * q = clamp(round_half_even(h * s)), s = 127 / max(1e-5, max|h|). Returns s.
     * q and s are the scalar reference's bit for bit. */
    float (*norm_quantize_row)(const float *x, const float *w, size_t n, float eps, int8_t *q);
    /* out = x / sqrt(mean(x^2) + eps) * w (w may be NULL) */
    void (*rmsnorm_row)(const float *x, const float *w, size_t n, float eps, float *out);
    /* F16 head: out[t * out_stride + r] = sum_i w[r * k + i] * x[t * k + i] for
     * rows [row0, row1) and tokens t < n_tok, float32 accumulation. A row's
     * result does not depend on n_tok or on the row range. */
    void (*head_f16)(const uint16_t *w, size_t k, size_t row0, size_t row1, const float *x, uint32_t n_tok,
                     float *out, size_t out_stride);
    /* Int8 head (--head q8) on int16 activations (bn_quantize_row_i16):
     * out[t * out_stride + r] = (float)acc * d[r] / xs[t] with the exact
     * integer acc = sum_i wq[r * k + i] * xq[t * k + i] (int64), so every
     * instruction set gives the scalar result bit for bit. */
    void (*head_q8)(const int8_t *wq, const float *d, size_t k, size_t row0, size_t row1, const int16_t *xq,
                    const float *xs, uint32_t n_tok, float *out, size_t out_stride);
    /* sum a[i] * b[i], float32 */
    float (*dot_f32)(const float *a, const float *b, size_t n);
    /* As bn_attention_head_scalar (kernels.h). */
    void (*attention_head)(const float *q, const void *k, const void *v, int f16, size_t stride, uint32_t head_dim,
                           uint32_t n_kv, float *scores, float *out);
    /* IEEE half <-> float rows (round to nearest even, as formats.h) */
    void (*fp32_to_fp16)(const float *x, uint16_t *y, size_t n);
    void (*fp16_to_fp32)(const uint16_t *x, float *y, size_t n);
    /* relu(g)^2 * u and silu(g) * u */
    void (*relu2_mul)(const float *g, const float *u, size_t n, float *out);
    void (*silu_mul)(const float *g, const float *u, size_t n, float *out);
};

/* The table the CPU runs best (see above); never NULL. */
const struct bn_cpu_kernels *bn_cpu_kernels_best(void);
/* The table of one instruction set, or NULL when this build lacks it or the
 * CPU cannot run it. */
const struct bn_cpu_kernels *bn_cpu_kernels_get(enum bn_cpu_isa isa);
/* Table by name ("auto" or NULL = best); NULL for an unknown name. An
 * instruction set the CPU lacks falls back as BITNET_CPU does. */
const struct bn_cpu_kernels *bn_cpu_kernels_by_name(const char *name);
/* Why the choice differs from BITNET_CPU ("" when it does not). */
const char *bn_cpu_kernels_note(void);

/* Load-time quantization of one head row for --head q8: d = max|w| / 127,
 * q = clamp(round_half_even(w / d)). Returns d (0 for an all-zero row). */
float bn_head_q8_quantize_row(const float *w, size_t k, int8_t *q);
/* The int8 head's activations, per token: s = 32767 / max|x| (1 for an
 * all-zero or non-finite row), q = clamp(round_half_even(x * s), +-32767)
 * (NaN to 0). Returns s. Its rounding error (about 1e-9 relative) is far
 * below the head's own int8 rounding. */
float bn_quantize_row_i16(const float *x, size_t k, int16_t *q);

#endif
