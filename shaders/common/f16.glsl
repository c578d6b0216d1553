// f16.glsl - float32 -> IEEE half with round to nearest even, bit for bit as
// bn_fp32_to_fp16 (kernels_cpu/formats.c). The conversion instructions of
// GLSL may round toward zero on some drivers, and the KV cache must match
// the CPU's, so it is done in integer arithmetic on the bits.

uint f32_bits_to_f16(uint x)
{
    uint sign = (x >> 16) & 0x8000u;
    uint a = x & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return sign | 0x7E00u | ((a >> 13) & 0x3FFu); // NaN stays a quiet NaN
    if (a >= 0x47800000u) return sign | 0x7C00u;                        // >= 65536: inf
    uint e = a >> 23;
    if (e >= 113u) {
        // Normal half; a carry out of the mantissa bumps the exponent.
        uint h = ((e - 112u) << 10) | ((a >> 13) & 0x3FFu);
        uint rem = a & 0x1FFFu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0u)) h++;
        return sign | h;
    }
    if (a <= 0x33000000u) return sign; // <= 2^-25 ties to even zero
    // Subnormal half in units of 2^-24.
    uint man = (a & 0x7FFFFFu) | 0x800000u;
    uint shift = 126u - e;
    uint h = man >> shift;
    uint rem = man & ((1u << shift) - 1u);
    uint halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (h & 1u) != 0u)) h++;
    return sign | h;
}
