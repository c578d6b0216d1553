/*
 * ternary_pack.h - the CPU's own layout of ternary weights, made once at load
 * time from I2_S, TQ1_0 or TQ2_0, and the activation side of the ternary
 * GEMM.
 *
 *     struct bn_tpack p;
 *     bn_tpack_init(&p, BN_TFMT_I2_S, k, n, src, codes, d);   // codes/d: caller's buffers
 *     bn_tpack_repack(&p, BN_TFMT_I2_S, src, 0, p.n_tiles, scratch);
 *     ...
 *     bn_act_sums_scalar(q_row, k, xsum_row);                  // per token
 *     kernels->ternary_gemm(&p, 0, p.n_tiles, &act, lin_scale, out, n, false);
 *
 * Layout. Rows are grouped in tiles of 16 (BN_TPACK_ROWS); the last tile is
 * padded with zero weights. A tile is k/16 groups of 64 bytes, stored one
 * after the other, tiles one after the other, so a kernel streams the whole
 * tensor linearly. Group g of a tile is 16 little-endian 32-bit words, word
 * l for row l of the tile, and a word holds the 16 codes (code = trit + 1,
 * in 0..3) of weights 16g .. 16g+15 of that row:
 *
 *     byte b of the word, bits 2j..2j+1  =  code of weight 16g + 4j + b
 *
 * so (word >> 2j) & 0x03030303 leaves in its four bytes the codes of weights
 * 16g+4j .. 16g+4j+3, which line up with four consecutive activation bytes.
 * One 32-bit broadcast of x[16g+4j .. +3] then serves 16 rows at once: a
 * 512-bit VPDPBUSD, two 256-bit VPMADDUBSW halves, or four NEON SDOT lanes.
 * No activation permutation and no horizontal sum per row are needed.
 *
 * Scales. I2_S has one float per tensor (w_scale). TQ1_0/TQ2_0 have one fp16
 * per 256-block and row; they are widened (exactly) to float and stored as
 * [tile][k/256][16], lane = row, so the per-block scaling of 16 rows is one
 * vector multiply-add done in block order, like the scalar reference.
 *
 * Numerics (docs/numerics.md): every kernel computes, per row and token,
 * the exact int32 acc = sum(code * q) - sum(q) (per 256-block for TQ), with
 * sum(q) precomputed per 128-block by bn_act_sums, then
 *     I2_S:  y = (float)acc * w_scale / s * lin_scale
 *     TQ:    y = (sum over blocks b in order of d_b * (float)acc_b) / s * lin_scale
 * with exactly these float operations in this order (no fused multiply-add),
 * so every kernel gives the scalar reference's result bit for bit, whatever
 * the number of tokens in the batch or the split of rows between threads.
 */
#ifndef BN_TERNARY_PACK_H
#define BN_TERNARY_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BN_TPACK_ROWS 16   /* rows per tile: one 32-bit lane each in 512 bits   */
#define BN_TPACK_GROUP 16  /* weights of one row per 32-bit word                */
#define BN_ACT_SUM_BLOCK 128 /* activation sums are kept per 128 weights        */

/* Source formats; the values are the GGUF type ids (kernels do not include
 * runtime headers; the file format fixes these numbers). */
enum bn_tfmt { BN_TFMT_TQ1_0 = 34, BN_TFMT_TQ2_0 = 35, BN_TFMT_I2_S = 36 };

struct bn_tpack {
    uint32_t k;         /* row length: a multiple of 128 (I2_S) or 256 (TQ)    */
    uint32_t n;         /* rows                                               */
    uint32_t n_tiles;   /* ceil(n / 16)                                       */
    bool block_scales;  /* TQ: d per 256-block; I2_S: one w_scale              */
    float w_scale;      /* I2_S tensor scale                                  */
    uint32_t *codes;    /* [n_tiles][k / 16][16] words, 64-byte aligned        */
    float *d;           /* TQ: [n_tiles][k / 256][16]; NULL for I2_S            */
};

/* Quantized activations of n_tok tokens (rows of the GEMM's right side). */
struct bn_tact {
    const int8_t *q;     /* [n_tok][q_stride] int8                             */
    size_t q_stride;
    const float *s;      /* [n_tok] activation scales s = 127 / max|x|         */
    const int32_t *xsum; /* [n_tok][k / 128] sums of q over each 128 weights   */
    uint32_t n_tok;
};

/* 0 if a k-by-n tensor of format fmt can be packed; -1 otherwise (unknown
 * format, k not a multiple of the format's block, or k == 0). */
int bn_tpack_check(uint32_t fmt, uint32_t k, uint32_t n);
/* Bytes of one source row in the file format. */
size_t bn_tpack_src_row_bytes(uint32_t fmt, uint32_t k);
/* Sizes of the caller's buffers for bn_tpack_init. */
size_t bn_tpack_codes_bytes(uint32_t k, uint32_t n);
size_t bn_tpack_scales_bytes(uint32_t fmt, uint32_t k, uint32_t n); /* 0 for I2_S */

/* Fills the header; codes (bn_tpack_codes_bytes, 64-byte aligned) and d
 * (bn_tpack_scales_bytes, or NULL for I2_S) are the caller's and must
 * outlive p. src is the whole tensor in its file format (the I2_S scale is
 * read from its tail). Call bn_tpack_check first. */
void bn_tpack_init(struct bn_tpack *p, uint32_t fmt, uint32_t k, uint32_t n, const void *src, uint32_t *codes,
                   float *d);
/* Repacks tiles [tile0, tile1) from src (the whole tensor in format fmt).
 * Tiles are independent: threads may repack disjoint ranges at once.
 * scratch: bn_tpack_scratch_bytes(k), 4-byte aligned, one per thread. */
void bn_tpack_repack(const struct bn_tpack *p, uint32_t fmt, const void *src, uint32_t tile0, uint32_t tile1,
                     uint8_t *scratch);
/* Scratch of one repacking thread: a row's k codes, then its k / 256 block
 * scales (TQ formats). A multiple of 4 for any valid k. */
size_t bn_tpack_scratch_bytes(uint32_t k);

/* Code (trit + 1, 0..3) of weight i of row r, read back from the layout. */
int bn_tpack_code(const struct bn_tpack *p, uint32_t r, uint32_t i);

/* xsum[b] = sum of q[128b .. 128b + 127], b < k / 128 (k a multiple of 128). */
void bn_act_sums_scalar(const int8_t *q, size_t k, int32_t *xsum);

/* The ternary GEMM over the layout, scalar: for tiles [tile0, tile1) and
 * every token t of a, out[t * out_stride + r] = y (or += y when accumulate)
 * for the rows r < n of those tiles, y as in the header comment. */
void bn_ternary_gemm_scalar(const struct bn_tpack *w, uint32_t tile0, uint32_t tile1, const struct bn_tact *a,
                            float lin_scale, float *out, size_t out_stride, bool accumulate);

#endif
