/*
 * formats.h - element formats: IEEE half and bfloat16 conversions, the three
 * ternary weight formats (pack and unpack), and dequantization of the
 * embedding/head formats. Pure functions, no allocation; the scalar reference
 * for every faster path.
 *
 * Ternary formats (trits t in {-1, 0, +1}; codes q = t + 1 in {0, 1, 2}):
 *   I2_S:  a tensor of n weights is one stream of 128-weight blocks of 32
 *          bytes; byte p of a block holds weights p, p+32, p+64, p+96 in bits
 *          7-6, 5-4, 3-2, 1-0. After the n/4 code bytes comes a 32-byte tail
 *          whose first 4 bytes are the float32 scale of the whole tensor.
 *   TQ2_0: blocks of 256 weights, 66 bytes: qs[64], then fp16 d. Weight
 *          e = 128g + 32l + m (g 0..1, l 0..3, m 0..31) is in byte 32g + m at
 *          bits 2l..2l+1. w = (q - 1) * d.
 *   TQ1_0: blocks of 256 weights, 54 bytes: qs[48], qh[4], fp16 d. Five base-3
 *          digits per byte as a fixed-point fraction: byte = ceil(v*256/243),
 *          v = sum_n q_n 3^(4-n); digit n = ((uint8_t)(byte * 3^n) * 3) >> 8.
 *          qs[0..31]: weights m + 32n (n 0..4); qs[32..47]: weights
 *          160 + m + 16n; qh[0..3]: weights 240 + j + 4n (n 0..3; the fifth
 *          digit of qh bytes is 0). w = (q - 1) * d.
 */
#ifndef BN_FORMATS_H
#define BN_FORMATS_H

#include <stddef.h>
#include <stdint.h>

/* IEEE binary16 <-> binary32. To-half rounds to nearest even and handles
 * subnormals, infinities and NaN. */
float bn_fp16_to_fp32(uint16_t h);
uint16_t bn_fp32_to_fp16(float f);
float bn_bf16_to_fp32(uint16_t h);
uint16_t bn_fp32_to_bf16(float f); /* round to nearest even; NaN stays NaN */

/* I2_S. trits has n entries; n must be a multiple of 128. out receives
 * n/4 + 32 bytes (codes, then the tail with the scale, rest zero). */
void bn_i2s_pack(const int8_t *trits, size_t n, float scale, uint8_t *out);
/* Trit i (0 <= i < n) of an I2_S code stream. */
int bn_i2s_get(const uint8_t *codes, size_t i);
/* Scale stored after n weights' codes. */
float bn_i2s_scale(const uint8_t *data, size_t n);

/* TQ2_0 / TQ1_0: one 256-weight block at a time; d is the fp16 bit pattern. */
void bn_tq2_pack_block(const int8_t *trits, uint16_t d, uint8_t out[66]);
void bn_tq2_unpack_block(const uint8_t blk[66], int8_t trits[256], uint16_t *d);
void bn_tq1_pack_block(const int8_t *trits, uint16_t d, uint8_t out[54]);
void bn_tq1_unpack_block(const uint8_t blk[54], int8_t trits[256], uint16_t *d);

/* Dequantize n elements (n a multiple of the type's block) to float. */
void bn_dequant_q8_0(const uint8_t *src, float *dst, size_t n);  /* 32: fp16 d, int8 qs[32] */
void bn_dequant_q6_k(const uint8_t *src, float *dst, size_t n);  /* 256: ql[128] qh[64] scales[16] d */

#endif
