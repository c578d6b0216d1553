/*
 * kernels_isa.h - the per-instruction-set kernels behind the dispatch table
 * (dispatch.h). Each set lives in its own files, compiled with its own
 * target flags (CMakeLists.txt): ternary_<isa>.c (ternary GEMM, activation
 * sums) and ops_<isa>.c (the float ops). Only dispatch.c and the tests call
 * them by name; everyone else goes through struct bn_cpu_kernels, which
 * documents what each one computes.
 */
#ifndef BN_KERNELS_ISA_H
#define BN_KERNELS_ISA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ternary_pack.h"

#define BN_DECLARE_TERNARY_KERNELS(isa)                                                                            \
    void bn_ternary_gemm_##isa(const struct bn_tpack *w, uint32_t tile0, uint32_t tile1, const struct bn_tact *a,  \
                               float lin_scale, float *out, size_t out_stride, bool accumulate);                   \
    void bn_act_sums_##isa(const int8_t *q, size_t k, int32_t *xsum);

#define BN_DECLARE_FLOAT_KERNELS(isa)                                                                              \
    float bn_norm_quantize_row_##isa(const float *x, const float *w, size_t n, float eps, int8_t *q);              \
    void bn_rmsnorm_row_##isa(const float *x, const float *w, size_t n, float eps, float *out);                    \
    void bn_head_f16_##isa(const uint16_t *w, size_t k, size_t row0, size_t row1, const float *x, uint32_t n_tok,  \
                           float *out, size_t out_stride);                                                         \
    void bn_head_q8_##isa(const int8_t *wq, const float *d, size_t k, size_t row0, size_t row1, const int16_t *xq, \
                          const float *xs, uint32_t n_tok, float *out, size_t out_stride);                         \
    float bn_dot_f32_##isa(const float *a, const float *b, size_t n);                                              \
    void bn_attention_head_##isa(const float *q, const void *k, const void *v, int f16, size_t stride,             \
                                 uint32_t head_dim, uint32_t n_kv, float *scores, float *out);                     \
    void bn_fp32_to_fp16_##isa(const float *x, uint16_t *y, size_t n);                                             \
    void bn_fp16_to_fp32_##isa(const uint16_t *x, float *y, size_t n);                                             \
    void bn_relu2_mul_##isa(const float *g, const float *u, size_t n, float *out);                                 \
    void bn_silu_mul_##isa(const float *g, const float *u, size_t n, float *out);

/* Scalar: bn_ternary_gemm_scalar and bn_act_sums_scalar are in
 * ternary_pack.h; the reference float kernels are in kernels.h; these are
 * the row-batched entries only the table has (ops_scalar_table.c). */
float bn_norm_quantize_row_scalar(const float *x, const float *w, size_t n, float eps, int8_t *q);
void bn_head_f16_scalar(const uint16_t *w, size_t k, size_t row0, size_t row1, const float *x, uint32_t n_tok,
                        float *out, size_t out_stride);
void bn_head_q8_scalar(const int8_t *wq, const float *d, size_t k, size_t row0, size_t row1, const int16_t *xq,
                       const float *xs, uint32_t n_tok, float *out, size_t out_stride);
float bn_dot_f32_scalar(const float *a, const float *b, size_t n);
void bn_fp32_to_fp16_scalar(const float *x, uint16_t *y, size_t n);
void bn_fp16_to_fp32_scalar(const uint16_t *x, float *y, size_t n);

#if defined(BN_KERNELS_X86)
BN_DECLARE_TERNARY_KERNELS(avx2)
BN_DECLARE_FLOAT_KERNELS(avx2)
BN_DECLARE_TERNARY_KERNELS(avx512)
BN_DECLARE_FLOAT_KERNELS(avx512)
#endif

#if defined(BN_KERNELS_NEON)
BN_DECLARE_TERNARY_KERNELS(neon)
BN_DECLARE_FLOAT_KERNELS(neon)
BN_DECLARE_TERNARY_KERNELS(neon_dotprod)
#endif

#endif
