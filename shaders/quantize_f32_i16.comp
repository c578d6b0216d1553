// quantize_i16: the int8 head's activations (--head q8), one workgroup per
// token row, as the CPU's bn_quantize_row_i16:
//   m = max|x| (NaN never wins), s = 32767 / m (1 when m is 0 or not finite),
//   q = clamp(round_half_even(x * s), -32767, 32767), NaN -> 0.
// The maximum is exact in any order, so q and s equal the CPU's bit for
// bit. q is written as pairs of int16 in uint words (element 2i in the low
// half); width is even. -DUSE_SUBGROUP: subgroup reductions.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two

#define PC_NORM
#include "common/push.glsl"

layout(binding = 0, std430) readonly buffer X { float x[]; };
layout(binding = 1, std430) writeonly buffer Q { uint q[]; };
layout(binding = 2, std430) writeonly buffer S { float qscale[]; };

shared float red[WG];
#include "common/wg_reduce.glsl"

int quant16(float v, float s)
{
    float r = roundEven(v * s);
    if (r > 32767.0) r = 32767.0;
    if (r < -32767.0) r = -32767.0;
    if (r != r) r = 0.0;
    return int(r);
}

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint t = gl_WorkGroupID.x;
    const uint base = t * pc.width;
    float m = 0.0;
    for (uint i = lid; i < pc.width; i += WG) {
        const float a = abs(x[base + i]);
        if (a > m) m = a;
    }
    m = wg_max(m);
    const float s = m > 0.0 && !isinf(m) ? 32767.0 / m : 1.0;
    for (uint w = lid; 2u * w < pc.width; w += WG) {
        const uint lo = uint(quant16(x[base + 2u * w], s)) & 0xFFFFu;
        const uint hi = uint(quant16(x[base + 2u * w + 1u], s)) & 0xFFFFu;
        q[base / 2u + w] = lo | (hi << 16);
    }
    if (lid == 0u) qscale[t] = s;
}
