/*
 * The packed ternary layout (ternary_pack.h): repacking from the three file
 * formats, and the scalar GEMM over it, which is the fallback kernel and
 * the model the SIMD kernels follow step by step.
 */
#include "ternary_pack.h"

#include <string.h>

#include "formats.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the packed layout stores 32-bit words read as bytes: little-endian hosts only"
#endif

enum { I2S_BLOCK = 128, TQ_BLOCK = 256, TQ2_BYTES = 66, TQ1_BYTES = 54 };

int bn_tpack_check(uint32_t fmt, uint32_t k, uint32_t n)
{
    if (k == 0 || n == 0) return -1;
    switch (fmt) {
    case BN_TFMT_I2_S: return k % I2S_BLOCK == 0 ? 0 : -1;
    case BN_TFMT_TQ1_0:
    case BN_TFMT_TQ2_0: return k % TQ_BLOCK == 0 ? 0 : -1;
    default: return -1;
    }
}

size_t bn_tpack_src_row_bytes(uint32_t fmt, uint32_t k)
{
    switch (fmt) {
    case BN_TFMT_I2_S: return k / 4;
    case BN_TFMT_TQ2_0: return (size_t)k / TQ_BLOCK * TQ2_BYTES;
    case BN_TFMT_TQ1_0: return (size_t)k / TQ_BLOCK * TQ1_BYTES;
    default: return 0;
    }
}

static uint32_t n_tiles_of(uint32_t n) { return (n + BN_TPACK_ROWS - 1) / BN_TPACK_ROWS; }

size_t bn_tpack_codes_bytes(uint32_t k, uint32_t n)
{
    return (size_t)n_tiles_of(n) * (k / BN_TPACK_GROUP) * BN_TPACK_ROWS * sizeof(uint32_t);
}

size_t bn_tpack_scales_bytes(uint32_t fmt, uint32_t k, uint32_t n)
{
    if (fmt == BN_TFMT_I2_S) return 0;
    return (size_t)n_tiles_of(n) * (k / TQ_BLOCK) * BN_TPACK_ROWS * sizeof(float);
}

void bn_tpack_init(struct bn_tpack *p, uint32_t fmt, uint32_t k, uint32_t n, const void *src, uint32_t *codes,
                   float *d)
{
    memset(p, 0, sizeof *p);
    p->k = k;
    p->n = n;
    p->n_tiles = n_tiles_of(n);
    p->block_scales = fmt != BN_TFMT_I2_S;
    p->w_scale = 1.0f;
    if (fmt == BN_TFMT_I2_S) memcpy(&p->w_scale, (const uint8_t *)src + (size_t)k * n / 4, sizeof p->w_scale);
    p->codes = codes;
    p->d = p->block_scales ? d : NULL;
}

static float fp16_at(const uint8_t *b) { return bn_fp16_to_fp32((uint16_t)(b[0] | (b[1] << 8))); }

/* TQ1_0 digit n of a byte: the fixed-point fraction times 3^n, then x3 >> 8. */
static uint8_t tq1_digit(uint8_t b, int n)
{
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    return (uint8_t)(((uint16_t)(uint8_t)(b * pow3[n]) * 3) >> 8);
}

/* One source row -> k codes (one byte each) and, for TQ, k/256 block scales. */
static void unpack_row(uint32_t fmt, const uint8_t *row, uint32_t k, uint8_t *codes, float *d)
{
    switch (fmt) {
    case BN_TFMT_I2_S:
        /* byte p of a 128-block: weights p, p+32, p+64, p+96 in bits 7-6, 5-4, 3-2, 1-0 */
        for (uint32_t b = 0; b < k / I2S_BLOCK; b++) {
            const uint8_t *s = row + 32 * b;
            uint8_t *c = codes + I2S_BLOCK * b;
            for (int p = 0; p < 32; p++) {
                c[p] = (uint8_t)(s[p] >> 6);
                c[p + 32] = (uint8_t)((s[p] >> 4) & 3);
                c[p + 64] = (uint8_t)((s[p] >> 2) & 3);
                c[p + 96] = (uint8_t)(s[p] & 3);
            }
        }
        break;
    case BN_TFMT_TQ2_0:
        /* weight 128g + 32l + m: byte 32g + m, bits 2l */
        for (uint32_t b = 0; b < k / TQ_BLOCK; b++) {
            const uint8_t *s = row + (size_t)TQ2_BYTES * b;
            uint8_t *c = codes + TQ_BLOCK * b;
            for (int g = 0; g < 2; g++)
                for (int l = 0; l < 4; l++)
                    for (int m = 0; m < 32; m++) c[128 * g + 32 * l + m] = (uint8_t)((s[32 * g + m] >> (2 * l)) & 3);
            d[b] = fp16_at(s + 64);
        }
        break;
    case BN_TFMT_TQ1_0:
        for (uint32_t b = 0; b < k / TQ_BLOCK; b++) {
            const uint8_t *s = row + (size_t)TQ1_BYTES * b, *qh = s + 48;
            uint8_t *c = codes + TQ_BLOCK * b;
            for (int n = 0; n < 5; n++)
                for (int m = 0; m < 32; m++) c[m + 32 * n] = tq1_digit(s[m], n);
            for (int n = 0; n < 5; n++)
                for (int m = 0; m < 16; m++) c[160 + m + 16 * n] = tq1_digit(s[32 + m], n);
            for (int n = 0; n < 4; n++)
                for (int j = 0; j < 4; j++) c[240 + j + 4 * n] = tq1_digit(qh[j], n);
            d[b] = fp16_at(s + 52);
        }
        break;
    default: break;
    }
}

static uint32_t load_le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v); /* little-endian host: byte b lands in bits 8b */
    return v;
}

size_t bn_tpack_scratch_bytes(uint32_t k) { return (size_t)k + (size_t)(k / TQ_BLOCK) * sizeof(float); }

void bn_tpack_repack(const struct bn_tpack *p, uint32_t fmt, const void *src, uint32_t tile0, uint32_t tile1,
                     uint8_t *scratch)
{
    const uint32_t k = p->k, ng = k / BN_TPACK_GROUP, nb = k / TQ_BLOCK;
    const size_t row_bytes = bn_tpack_src_row_bytes(fmt, k);
    /* The row's block scales live after its codes: a wide row (ffn_down of
     * 2B4T: k = 6912, 27 blocks) has more blocks than any fixed array. */
    float *dblk = (float *)(void *)(scratch + k);
    for (uint32_t tile = tile0; tile < tile1; tile++) {
        uint32_t *words = p->codes + (size_t)tile * ng * BN_TPACK_ROWS;
        for (uint32_t l = 0; l < BN_TPACK_ROWS; l++) {
            const uint32_t r = tile * BN_TPACK_ROWS + l;
            float *d_row = p->block_scales ? dblk : NULL;
            if (r < p->n) {
                unpack_row(fmt, (const uint8_t *)src + (size_t)r * row_bytes, k, scratch, p->block_scales ? dblk : NULL);
            } else {
                memset(scratch, 1, k); /* padding rows: code 1 is the trit 0 */
            }
            /* word = L0 | L1 << 2 | L2 << 4 | L3 << 6 with Lj the four codes of
             * weights 16g+4j .. +3 as one little-endian word: each code is
             * below 4, so the shifts never carry into the next byte. */
            for (uint32_t g = 0; g < ng; g++) {
                const uint8_t *c = scratch + BN_TPACK_GROUP * g;
                words[(size_t)g * BN_TPACK_ROWS + l] =
                    load_le32(c) | load_le32(c + 4) << 2 | load_le32(c + 8) << 4 | load_le32(c + 12) << 6;
            }
            if (d_row) {
                float *d = p->d + (size_t)tile * nb * BN_TPACK_ROWS;
                for (uint32_t b = 0; b < nb; b++) d[(size_t)b * BN_TPACK_ROWS + l] = r < p->n ? d_row[b] : 0.0f;
            }
        }
    }
}

int bn_tpack_code(const struct bn_tpack *p, uint32_t r, uint32_t i)
{
    const uint32_t ng = p->k / BN_TPACK_GROUP, tile = r / BN_TPACK_ROWS, l = r % BN_TPACK_ROWS;
    const uint32_t g = i / BN_TPACK_GROUP, j = (i % BN_TPACK_GROUP) / 4, b = i % 4;
    const uint32_t w = p->codes[((size_t)tile * ng + g) * BN_TPACK_ROWS + l];
    return (int)((w >> (8 * b + 2 * j)) & 3);
}

void bn_act_sums_scalar(const int8_t *q, size_t k, int32_t *xsum)
{
    for (size_t b = 0; b < k / BN_ACT_SUM_BLOCK; b++) {
        int32_t s = 0;
        for (size_t i = 0; i < BN_ACT_SUM_BLOCK; i++) s += q[BN_ACT_SUM_BLOCK * b + i];
        xsum[b] = s;
    }
}

void bn_ternary_gemm_scalar(const struct bn_tpack *w, uint32_t tile0, uint32_t tile1, const struct bn_tact *a,
                            float lin_scale, float *out, size_t out_stride, bool accumulate)
{
    const uint32_t k = w->k, ng = k / BN_TPACK_GROUP, nb = k / TQ_BLOCK, nsum = k / BN_ACT_SUM_BLOCK;
    for (uint32_t tile = tile0; tile < tile1; tile++) {
        const uint32_t *words = w->codes + (size_t)tile * ng * BN_TPACK_ROWS;
        for (uint32_t l = 0; l < BN_TPACK_ROWS; l++) {
            const uint32_t r = tile * BN_TPACK_ROWS + l;
            if (r >= w->n) break;
            for (uint32_t t = 0; t < a->n_tok; t++) {
                const int8_t *x = a->q + (size_t)t * a->q_stride;
                const int32_t *xs = a->xsum + (size_t)t * nsum;
                float y = 0.0f;
                int32_t acc = 0;
                for (uint32_t g = 0; g < ng; g++) {
                    const uint32_t wd = words[(size_t)g * BN_TPACK_ROWS + l];
                    for (int j = 0; j < 4; j++)
                        for (int b = 0; b < 4; b++)
                            acc += (int32_t)((wd >> (8 * b + 2 * j)) & 3) * x[BN_TPACK_GROUP * g + 4 * j + b];
                    if (w->block_scales && (g + 1) % (TQ_BLOCK / BN_TPACK_GROUP) == 0) {
                        const uint32_t blk = g / (TQ_BLOCK / BN_TPACK_GROUP);
                        acc -= xs[2 * blk] + xs[2 * blk + 1];
                        y += w->d[((size_t)tile * nb + blk) * BN_TPACK_ROWS + l] * (float)acc;
                        acc = 0;
                    }
                }
                if (!w->block_scales) {
                    for (uint32_t b = 0; b < nsum; b++) acc -= xs[b];
                    y = (float)acc * w->w_scale;
                }
                y = y / a->s[t] * lin_scale;
                float *o = out + (size_t)t * out_stride + r;
                *o = accumulate ? *o + y : y;
            }
        }
    }
}
