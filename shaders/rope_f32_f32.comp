// rope: rotates pairs of each head in place, NEOX (j, j + n_rot/2) or NORM
// (2j, 2j + 1), by theta_j = pos * inv_freq_j.
//
// The angle: the scalar reference computes theta in double (float32 loses
// ~1e-4 rad at position 4096). GLSL has no double sin/cos, and many GPUs
// no float64 at all, so the host gives each j its frequency in turns per
// position, frac(inv_freq_j / 2pi), as a 64-bit fixed-point fraction. The
// product with the integer position, taken mod 1 turn, is exact in 32-bit
// integer arithmetic (umulExtended). Only the remainder within the nearest
// quarter turn, at most pi/4, becomes a float, so its relative error stays
// at float rounding; short Taylor series then give sin and cos to about one
// ulp, for any position. Agrees with the reference to float rounding.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

#define PC_ROPE
#include "common/push.glsl"

layout(binding = 0, std430) buffer X { float x[]; };
layout(binding = 1, std430) readonly buffer Freq { uvec2 freq[]; }; // (low, high) words per j

void main()
{
    const uint half_rot = pc.n_rot / 2;
    const uint i = gl_GlobalInvocationID.x;
    const uint t = gl_WorkGroupID.y;
    if (i >= pc.n_head * half_rot) return;
    const uint h = i / half_rot, j = i - h * half_rot;
    const uint pos = pc.pos0 + t;

    // frac(pos * f) as 64 bits (w1:w0); the integer turns drop out.
    const uvec2 f = freq[j];
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
    float cs, sn;
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

    const uint base = (t * pc.n_head + h) * pc.head_dim;
    const uint i0 = base + (pc.neox != 0 ? j : 2 * j);
    const uint i1 = base + (pc.neox != 0 ? j + half_rot : 2 * j + 1);
    const float x0 = x[i0], x1 = x[i1];
    precise float y0 = x0 * cs - x1 * sn;
    precise float y1 = x0 * sn + x1 * cs;
    x[i0] = y0;
    x[i1] = y1;
}
