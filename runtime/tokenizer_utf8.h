/*
 * tokenizer_utf8.h - strict UTF-8 decoding and encoding for the tokenizer
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
 * Header-only so the encoder's hot loops can inline it.
 */
#ifndef BN_TOKENIZER_UTF8_H
#define BN_TOKENIZER_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Expected length of a UTF-8 sequence from its first byte; 0 for a byte
 * that cannot start one (continuation bytes, C0/C1 overlong leads, F5..FF
 * beyond U+10FFFF). */
static inline int bn_utf8_need(unsigned char b)
{
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 0;
}

/* Whether b may be byte idx (1..3) of a sequence led by lead. The narrowed
 * second-byte ranges reject overlong forms (E0, F0), surrogates (ED) and
 * code points above U+10FFFF (F4). */
static inline bool bn_utf8_cont_ok(unsigned char lead, int idx, unsigned char b)
{
    unsigned char lo = 0x80, hi = 0xBF;
    if (idx == 1) {
        if (lead == 0xE0) lo = 0xA0;
        else if (lead == 0xED) hi = 0x9F;
        else if (lead == 0xF0) lo = 0x90;
        else if (lead == 0xF4) hi = 0x8F;
    }
    return b >= lo && b <= hi;
}

/* Length (1..4) of the valid UTF-8 character at s (n > 0 bytes), its code
 * point in *cp; 0 when s does not start a valid, complete character. */
static inline int bn_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    int need = bn_utf8_need(s[0]);
    if (need == 0 || (size_t)need > n) return 0;
    for (int i = 1; i < need; i++)
        if (!bn_utf8_cont_ok(s[0], i, s[i])) return 0;
    static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t c = s[0] & lead_mask[need];
    for (int i = 1; i < need; i++) c = (c << 6) | (s[i] & 0x3Fu);
    *cp = c;
    return need;
}

/* Writes cp (at most U+10FFFF) as 1..4 bytes; returns the count. */
static inline int bn_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

#endif
