// rope.glsl - cos and sin of one RoPE angle theta = pos * inv_freq_j.
//
// The scalar reference computes theta in double (float32 loses ~1e-4 rad
// at position 4096). GLSL has no double sin/cos, and many GPUs no float64
// at all, so the host gives each j its frequency in turns per position,
// frac(inv_freq_j / 2pi), as a 64-bit fixed-point fraction f (low, high
// word). The product with the integer position, taken mod 1 turn, is exact
// in 32-bit integer arithmetic (umulExtended). Only the remainder within
// the nearest quarter turn, at most pi/4, becomes a float, so its relative
// error stays at float rounding; short Taylor series then give sin and cos
// to about one ulp, for any position. Agrees with the reference to float
// rounding. rope_f32_f32 and the fused projections (proj_t2_f32_f32) share
// it, so both rotate bit for bit alike.

void rope_cos_sin(uint pos, uvec2 f, out float cs, out float sn)
{
    // frac(pos * f) as 64 bits (w1:w0); the integer turns drop out.
    uint lo_hi, lo_lo, hi_hi, hi_lo, carry;
    umulExtended(pos, f.x, lo_hi, lo_lo);
    umulExtended(pos, f.y, hi_hi, hi_lo);
    const uint w1 = uaddCarry(hi_lo, lo_hi, carry);
    const uint w0 = lo_lo;

    // Nearest quarter turn k and the remainder in [-1/8, 1/8) turn, in units
    // of 2^-32 turn; the bits of w0 below it refine it.
    const uint shifted = w1 + 0x20000000u;
    const uint k = shifted >> 30;
    const int rem = int(shifted & 0x3FFFFFFFu) - 0x20000000;
    const float rf = float(rem) + float(w0 >> 8) * (1.0 / 16777216.0);
    const float a = rf * 1.4629180792671596e-9; // 2 pi / 2^32
    const float a2 = a * a;
    const float s = a * (1.0 + a2 * (-1.0 / 6.0 + a2 * (1.0 / 120.0 + a2 * (-1.0 / 5040.0 + a2 * (1.0 / 362880.0)))));
    const float c = 1.0 + a2 * (-0.5 + a2 * (1.0 / 24.0 + a2 * (-1.0 / 720.0 + a2 * (1.0 / 40320.0 + a2 * (-1.0 / 3628800.0)))));
    if (k == 0u) {
        cs = c;
        sn = s;
    } else if (k == 1u) {
        cs = -s;
        sn = c;
    } else if (k == 2u) {
        cs = -c;
        sn = -s;
    } else {
        cs = s;
        sn = -c;
    }
}

// The pair (x0, x1) rotated by (cs, sn), in the reference's order of
// operations; `precise` keeps the compiler from fusing into fma.
vec2 rope_rotate(float x0, float x1, float cs, float sn)
{
    precise float y0 = x0 * cs - x1 * sn;
    precise float y1 = x0 * sn + x1 * cs;
    return vec2(y0, y1);
}
