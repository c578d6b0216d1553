/*
 * kernels.h - scalar reference kernels: the numerics of DESIGN.md section 5
 * written plainly. Every faster kernel (SIMD, GLSL) is tested against these;
 * integer results must match them bit for bit.
 *
 * Conventions: float rows are contiguous; ternary rows are in their file
 * format (I2_S codes, TQ1_0/TQ2_0 blocks) and k is the row length.
 */
#ifndef BN_KERNELS_H
#define BN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Activation quantization of one token row: m = max(1e-5, max|x|),
 * s = 127 / m, q = clamp(round_half_even(x * s), -128, 127). Returns s. */
float bn_quantize_row_i8_scalar(const float *x, size_t n, int8_t *q);

/* out = x / sqrt(mean(x^2) + eps) * w (w may be NULL: no weight). In place is fine. */
void bn_rmsnorm_row_scalar(const float *x, const float *w, size_t n, float eps, float *out);

/* Exact ternary x int8 dot products (sum of t_i * q_i). */
int32_t bn_dot_i2s_i8_scalar(const uint8_t *codes, const int8_t *q, size_t k); /* codes of one row: k/4 bytes */
int32_t bn_dot_tq2_block_i8_scalar(const uint8_t *blk, const int8_t *q);       /* one 256-weight block */
int32_t bn_dot_tq1_block_i8_scalar(const uint8_t *blk, const int8_t *q);       /* one 256-weight block */

/* One output of a ternary matmul before the activation scale: I2_S gives
 * acc * w_scale; TQ gives sum over blocks b (in order) of d_b * acc_b.
 * The caller divides by the activation scale s. */
float bn_row_i2s_scalar(const uint8_t *codes, float w_scale, const int8_t *q, size_t k);
float bn_row_tq2_scalar(const uint8_t *row, const int8_t *q, size_t k);
float bn_row_tq1_scalar(const uint8_t *row, const int8_t *q, size_t k);

/* One row of a float table (embedding / head) as float32; type is an
 * enum bn_type (F32, F16, BF16, Q8_0, Q6_K). Returns 0, or -1 for a type it
 * cannot read. */
int bn_row_to_f32_scalar(uint32_t type, const void *row, size_t k, float *out);
/* Dot product of one table row with x, float32 accumulation. */
float bn_dot_row_f32_scalar(uint32_t type, const void *row, const float *x, size_t k, float *scratch);

/* RoPE on one head of one row at position pos. NEOX rotates pairs
 * (j, j + n_rot/2); NORM rotates (2j, 2j+1). theta_j = pos * base^(-2j/n_rot),
 * divided by freq_factors[j] when given. The angle is computed in double:
 * float32 loses ~1e-4 rad at position 4096. */
void bn_rope_head_scalar(float *x, uint32_t n_rot, uint32_t pos, float base, int neox, const float *freq_factors);

/* Activations of the gated FFN: relu(g)^2 * u and silu(g) * u. */
void bn_relu2_mul_scalar(const float *g, const float *u, size_t n, float *out);
void bn_silu_mul_scalar(const float *g, const float *u, size_t n, float *out);

/* Attention of one query head over cache rows 0 .. n_kv - 1 (keys and values
 * of that head at stride `stride` elements). f16 != 0: the cache holds
 * IEEE half values, else float32. scores is scratch of n_kv floats. */
void bn_attention_head_scalar(const float *q, const void *k, const void *v, int f16, size_t stride, uint32_t head_dim,
                              uint32_t n_kv, float *scores, float *out);

#endif
