// quantize: per-row int8 quantization, one workgroup per row:
//   m = max(1e-5, max|x'|), s = 127 / m,
//   q = clamp(round_half_even(x' * s), -128, 127), NaN -> 0,
// with x' = x, or with -DNORM x' = rmsnorm(x) * w computed as in rmsnorm.
// The row maximum is exact in any order, so without NORM the result equals
// the scalar reference bit for bit.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two

#define PC_NORM
#include "common/push.glsl"

layout(binding = 0, std430) readonly buffer X { float x[]; };
layout(binding = 1, std430) readonly buffer W { float w[]; };
layout(binding = 2, std430) writeonly buffer Q { int8_t q[]; };
layout(binding = 3, std430) writeonly buffer S { float qscale[]; };

shared float red[WG];

float scale_row = 1.0;

float value(uint base, uint i)
{
#ifdef NORM
    precise float v = x[base + i] * scale_row;
    if (pc.has_w != 0) v = v * w[i];
    return v;
#else
    return x[base + i];
#endif
}

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint t = gl_WorkGroupID.x;
    const uint base = t * pc.width;
#ifdef NORM
    precise float ss = 0.0;
    for (uint i = lid; i < pc.width; i += WG) ss += x[base + i] * x[base + i];
    red[lid] = ss;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (lid < s) red[lid] += red[lid + s];
        barrier();
    }
    scale_row = 1.0 / sqrt(red[0] / float(pc.width) + pc.eps);
    barrier(); // everyone has read red[0] before it is reused below
#endif
    // "a > m" skips NaN, as the reference's comparison does.
    float m = 0.0;
    for (uint i = lid; i < pc.width; i += WG) {
        const float a = abs(value(base, i));
        if (a > m) m = a;
    }
    red[lid] = m;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (lid < s && red[lid + s] > red[lid]) red[lid] = red[lid + s];
        barrier();
    }
    m = red[0];
    if (!(m >= 1e-5)) m = 1e-5;
    const float sc = 127.0 / m;
    for (uint i = lid; i < pc.width; i += WG) {
        float r = roundEven(value(base, i) * sc);
        if (r > 127.0) r = 127.0;
        if (r < -128.0) r = -128.0;
        if (r != r) r = 0.0;
        q[base + i] = int8_t(int(r));
    }
    if (lid == 0) qscale[t] = sc;
}
