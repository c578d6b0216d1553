// quantize: per-row int8 quantization, one workgroup per row:
//   m = max(1e-5, max|x'|), s = 127 / m,
//   q = clamp(round_half_even(x' * s), -128, 127), NaN -> 0,
// with x' = x, or with -DNORM x' = rmsnorm(x) * w (common/norm_quant.glsl).
// The row maximum is exact in any order, so without NORM the result equals
// the scalar reference bit for bit. -DUSE_SUBGROUP: subgroup reductions
// (common/wg_reduce.glsl).
#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
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

uint row_base = 0;
float nq_x(uint i) { return x[row_base + i]; }
float nq_w(uint i) { return w[i]; }
#include "common/norm_quant.glsl"

#ifdef NORM
const bool DO_NORM = true;
#else
const bool DO_NORM = false;
#endif

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint t = gl_WorkGroupID.x;
    row_base = t * pc.width;
    const bool has_w = pc.has_w != 0;
    const float f = DO_NORM ? nq_rms_factor(pc.width, pc.eps) : 1.0;
    const float sc = nq_scale(pc.width, DO_NORM, f, has_w);
    for (uint i = lid; i < pc.width; i += WG) q[row_base + i] = int8_t(nq_quant(nq_value(i, DO_NORM, f, has_w), sc));
    if (lid == 0) qscale[t] = sc;
}
