#include "formats.h"

#include <string.h>

/* Bit casts go through memcpy: the only aliasing-safe way in C11. */
static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Little-endian fp16 fields inside blocks: assembled bytewise so neither
 * host endianness nor alignment matters. */
static uint16_t rd_u16le(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((unsigned)p[1] << 8));
}

static void wr_u16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

float bn_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;

    if (exp == 0x1F) /* inf keeps a zero mantissa, NaN keeps its payload */
        return bits_f32(sign | 0x7F800000u | (man << 13));
    if (exp != 0)
        return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
    if (man == 0) return bits_f32(sign);

    /* Subnormal half: every one is a normal float, so shift the leading 1
     * up to the implicit position and lower the exponent to match. */
    uint32_t e = 113;
    while ((man & 0x400u) == 0) {
        man <<= 1;
        e--;
    }
    return bits_f32(sign | (e << 23) | ((man & 0x3FFu) << 13));
}

uint16_t bn_fp32_to_fp16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t abs = x & 0x7FFFFFFFu;

    if (abs > 0x7F800000u) /* NaN: keep the top payload bits, force quiet so it cannot become inf */
        return (uint16_t)(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
    if (abs >= 0x47800000u) /* >= 65536 (or inf): beyond any rounding to 65504 */
        return (uint16_t)(sign | 0x7C00u);

    uint32_t exp = abs >> 23;
    if (exp >= 113) {
        /* Normal half. A carry out of the mantissa on round-up correctly bumps
         * the exponent, and from 65504 + half an ulp on it lands on inf. */
        uint32_t h = ((exp - 112u) << 10) | ((abs >> 13) & 0x3FFu);
        uint32_t rem = abs & 0x1FFFu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    if (abs <= 0x33000000u) /* <= 2^-25: half of the smallest subnormal ties to even 0 */
        return sign;

    /* Subnormal half: units of 2^-24. exp in [102, 112] gives shift 14..24. */
    uint32_t man = (abs & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - exp;
    uint32_t h = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (h & 1u))) h++; /* may reach 0x400: the smallest normal */
    return (uint16_t)(sign | h);
}

float bn_bf16_to_fp32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t bn_fp32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) /* truncating could clear the payload: force quiet */
        return (uint16_t)((x >> 16) | 0x40u);
    /* Adding 0x7FFF plus the lsb of the kept part rounds half to even; overflow
     * past the largest finite value carries into the inf pattern. */
    x += 0x7FFFu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* ---- I2_S ---------------------------------------------------------------- */

void bn_i2s_pack(const int8_t *trits, size_t n, float scale, uint8_t *out)
{
    for (size_t b = 0; b < n / 128; b++) {
        const int8_t *t = trits + b * 128;
        uint8_t *o = out + b * 32;
        for (size_t p = 0; p < 32; p++) {
            unsigned v = ((unsigned)(t[p] + 1) << 6) | ((unsigned)(t[p + 32] + 1) << 4) |
                         ((unsigned)(t[p + 64] + 1) << 2) | (unsigned)(t[p + 96] + 1);
            o[p] = (uint8_t)v;
        }
    }
    uint8_t *tail = out + n / 4;
    memset(tail, 0, 32);
    uint32_t s = f32_bits(scale); /* little-endian, whatever the host */
    for (unsigned k = 0; k < 4; k++) tail[k] = (uint8_t)(s >> (8 * k));
}

int bn_i2s_get(const uint8_t *codes, size_t i)
{
    size_t r = i % 128;
    unsigned byte = codes[(i / 128) * 32 + r % 32];
    unsigned shift = 6u - 2u * (unsigned)(r / 32);
    /* Code 3 never occurs in valid data; it reads as +2 so checkers can see it. */
    return (int)((byte >> shift) & 3u) - 1;
}

float bn_i2s_scale(const uint8_t *data, size_t n)
{
    const uint8_t *p = data + n / 4;
    return bits_f32((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24));
}

/* ---- TQ2_0 --------------------------------------------------------------- */

void bn_tq2_pack_block(const int8_t *trits, uint16_t d, uint8_t out[66])
{
    for (unsigned g = 0; g < 2; g++) {
        for (unsigned m = 0; m < 32; m++) {
            unsigned v = 0;
            for (unsigned l = 0; l < 4; l++)
                v |= (unsigned)(trits[128 * g + 32 * l + m] + 1) << (2 * l);
            out[32 * g + m] = (uint8_t)v;
        }
    }
    wr_u16le(out + 64, d);
}

void bn_tq2_unpack_block(const uint8_t blk[66], int8_t trits[256], uint16_t *d)
{
    for (unsigned g = 0; g < 2; g++)
        for (unsigned l = 0; l < 4; l++)
            for (unsigned m = 0; m < 32; m++)
                trits[128 * g + 32 * l + m] = (int8_t)((int)((blk[32 * g + m] >> (2 * l)) & 3u) - 1);
    if (d) *d = rd_u16le(blk + 64);
}

/* ---- TQ1_0 --------------------------------------------------------------- */

/* Five base-3 digits, most significant first, as the fraction v/243 scaled
 * to a byte and rounded up: rounding up is what lets the multiply-by-3^n
 * unpack recover each digit from the top bits without division. */
static uint8_t tq1_pack5(const int8_t *t, size_t stride, unsigned n_digits)
{
    unsigned v = 0;
    for (unsigned n = 0; n < 5; n++) {
        unsigned q = n < n_digits ? (unsigned)(t[n * stride] + 1) : 0u; /* qh bytes: digit 4 is 0 */
        v = v * 3u + q;
    }
    return (uint8_t)((v * 256u + 242u) / 243u);
}

static int tq1_digit(uint8_t byte, unsigned pow3)
{
    uint8_t q = (uint8_t)(byte * pow3); /* the wrap mod 256 drops the digits above n */
    return (int)(((unsigned)q * 3u) >> 8);
}

static const uint8_t tq1_pow3[5] = {1, 3, 9, 27, 81};

void bn_tq1_pack_block(const int8_t *trits, uint16_t d, uint8_t out[54])
{
    for (size_t m = 0; m < 32; m++) out[m] = tq1_pack5(trits + m, 32, 5);
    for (size_t m = 0; m < 16; m++) out[32 + m] = tq1_pack5(trits + 160 + m, 16, 5);
    for (size_t j = 0; j < 4; j++) out[48 + j] = tq1_pack5(trits + 240 + j, 4, 4);
    wr_u16le(out + 52, d);
}

void bn_tq1_unpack_block(const uint8_t blk[54], int8_t trits[256], uint16_t *d)
{
    for (unsigned n = 0; n < 5; n++) {
        for (unsigned m = 0; m < 32; m++) trits[m + 32 * n] = (int8_t)(tq1_digit(blk[m], tq1_pow3[n]) - 1);
        for (unsigned m = 0; m < 16; m++)
            trits[160 + m + 16 * n] = (int8_t)(tq1_digit(blk[32 + m], tq1_pow3[n]) - 1);
    }
    for (unsigned n = 0; n < 4; n++)
        for (unsigned j = 0; j < 4; j++) trits[240 + j + 4 * n] = (int8_t)(tq1_digit(blk[48 + j], tq1_pow3[n]) - 1);
    if (d) *d = rd_u16le(blk + 52);
}

/* ---- embedding / head formats ---------------------------------------------- */

void bn_dequant_q8_0(const uint8_t *src, float *dst, size_t n)
{
    for (size_t b = 0; b < n / 32; b++) {
        const uint8_t *blk = src + b * 34;
        float d = bn_fp16_to_fp32(rd_u16le(blk));
        for (size_t i = 0; i < 32; i++) {
            int8_t q;
            memcpy(&q, blk + 2 + i, 1);
            dst[b * 32 + i] = d * (float)q;
        }
    }
}

void bn_dequant_q6_k(const uint8_t *src, float *dst, size_t n)
{
    for (size_t b = 0; b < n / 256; b++) {
        const uint8_t *blk = src + b * 210;
        const uint8_t *ql = blk;
        const uint8_t *qh = blk + 128;
        const uint8_t *sc_bytes = blk + 192;
        float d = bn_fp16_to_fp32(rd_u16le(blk + 208));
        float *y = dst + b * 256;
        for (unsigned half = 0; half < 2; half++) {
            int8_t sc[8];
            memcpy(sc, sc_bytes + 8 * half, 8);
            for (unsigned l = 0; l < 32; l++) {
                unsigned is = l / 16;
                int q1 = (int)((ql[l] & 0xFu) | (((qh[l] >> 0) & 3u) << 4)) - 32;
                int q2 = (int)((ql[l + 32] & 0xFu) | (((qh[l] >> 2) & 3u) << 4)) - 32;
                int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3u) << 4)) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3u) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            ql += 64;
            qh += 32;
            y += 128;
        }
    }
}
